/*
 * daemon.c -- the run loop. One shot (cron): every account once, the
 * worst status wins, nothing printed when all went well. Daemon (-d
 * SECONDS or `interval`): the same every SECONDS; SIGHUP re-reads the
 * config between polls, SIGTERM and SIGINT let the current message
 * finish and then exit. With idle, the one account stays in IMAP IDLE
 * between polls (re-issued every 25 minutes) and reconnects with an
 * exponential backoff (5 s to 5 min) when the link dies.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fetch.h"
#include "log.h"
#include "maildir.h"

static volatile sig_atomic_t stop_flag, reload_flag;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_flag = 1;
	else
		stop_flag = 1;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
progress_update(struct run *run, unsigned long n, unsigned long long bytes)
{
	double t = now();

	if (!run->opt->progress || n == 0)
		return;
	if (run->shown && t - run->tlast < 0.25)
		return;
	run->tlast = t;
	run->shown = 1;
	fprintf(stderr, "\rfetch: %s: %lu messages, %.1f MB, %.0f msg/s   ",
	    run->name, n, (double)bytes / 1e6,
	    t > run->t0 ? (double)n / (t - run->t0) : 0.0);
	fflush(stderr);
}

void
progress_end(struct run *run)
{
	if (run->shown) {
		fprintf(stderr, "\n");
		run->shown = 0;
	}
}

/*
 * Removes files older than 36 hours from the Maildir's tmp/ (the
 * Maildir rule): a run killed while writing a batch leaves its temp
 * files there, invisible to readers; nothing that recent is touched, so
 * an lda writing into the same Maildir is safe.
 */
static void
tmp_sweep(const char *maildir)
{
	char path[PATH_MAX];
	DIR *d;
	struct dirent *e;
	struct stat sb;
	time_t old = time(NULL) - 36 * 3600;
	int dfd;

	if (str_fmt(path, sizeof(path), "%s/tmp", maildir) == -1 ||
	    (d = opendir(path)) == NULL)
		return;
	dfd = dirfd(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (fstatat(dfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(sb.st_mode) && sb.st_mtime < old)
			(void)unlinkat(dfd, e->d_name, 0);
	}
	closedir(d);
}

/* Polls one account: its state locked, crash leftovers recovered. */
static int
poll_account(struct run *run, const struct account *a, int wait_lock)
{
	struct fstate st;
	char err[1024];
	int rc, r;

	if ((r = fstate_open(&st, a->state, wait_lock, err, sizeof(err))) != 1) {
		if (r == 0)
			log_warnx("%s: another fetch is polling this account "
			    "(lock on %s.lock): skipped", a->name, a->state);
		else
			log_warnx("%s: state: %s", a->name, err);
		fstate_close(&st);
		return r == 0 ? EX_TEMPFAIL : FETCH_FAIL;
	}
	if (a->maildir != NULL && maildir_make(a->maildir, err, sizeof(err)) == -1) {
		log_warnx("%s: %s", a->name, err);
		fstate_close(&st);
		return FETCH_FAIL;
	}
	if (a->maildir != NULL)
		tmp_sweep(a->maildir);
	if (st.npending > 0) {
		r = fstate_recover(&st, a->maildir, err, sizeof(err));
		if (r == -1 || fstate_save(&st, err, sizeof(err)) == -1) {
			log_warnx("%s: state: %s", a->name, err);
			fstate_close(&st);
			return FETCH_FAIL;
		}
		if (r > 0)
			log_info("%s: %d messages of an interrupted run were "
			    "delivered: recorded", a->name, r);
	}
	run->name = a->name;
	run->t0 = now();
	run->shown = 0;
	rc = a->proto == PROTO_IMAP ? imap_poll(a, &st, run) :
	    pop3_poll(a, &st, run);
	progress_end(run);
	fstate_close(&st);
	return rc;
}

static int
worse(int a, int b)
{
	if (a == FETCH_FAIL || b == FETCH_FAIL)
		return FETCH_FAIL;
	if (a != 0)
		return a;
	return b;
}

/* Sleeps until the time is up or a signal came. */
static void
pause_for(long seconds)
{
	struct timespec ts = { .tv_sec = seconds, .tv_nsec = 0 };

	while (!stop_flag && !reload_flag &&
	    nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Takes the accounts (frees them). */
int
run_accounts(struct options *o, struct account **accts, size_t n, long interval)
{
	struct run run;
	struct sigaction sa;
	size_t i;
	int rc = 0;
	long backoff = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: a blocking read returns EINTR and sees the flag */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	memset(&run, 0, sizeof(run));
	run.opt = o;
	run.stop = &stop_flag;
	run.reload = &reload_flag;
	if (interval <= 0) {
		for (i = 0; i < n && !stop_flag; i++) {
			run.idle_wait = 0;
			rc = worse(rc, poll_account(&run, accts[i], 0));
		}
		accounts_free(accts, n);
		return rc;
	}
	log_info("polling %zu account%s every %ld s%s", n, n == 1 ? "" : "s",
	    interval, n == 1 && accts[0]->idle ? " and in IDLE" : "");
	while (!stop_flag) {
		int failed = 0;

		for (i = 0; i < n && !stop_flag; i++) {
			/* IDLE keeps the one account's poll going */
			run.idle_wait = (n == 1 && accts[0]->idle) ? 25 * 60 : 0;
			if (poll_account(&run, accts[i], 1) == FETCH_FAIL)
				failed = 1;
		}
		if (stop_flag)
			break;
		if (reload_flag) {
			struct account **nv;
			size_t nn;
			long ni;
			char err[1024];

			reload_flag = 0;
			if (accounts_load(o, &nv, &nn, &ni, err, sizeof(err)) == -1)
				log_warnx("SIGHUP: %s: keeping the old "
				    "configuration", err);
			else {
				accounts_free(accts, n);
				accts = nv;
				n = nn;
				if (ni > 0 && o->daemon == 0)
					interval = ni;
				log_info("configuration re-read: %zu account%s",
				    n, n == 1 ? "" : "s");
			}
			continue;
		}
		if (failed && n == 1 && accts[0]->idle) {
			backoff = backoff ? backoff * 2 : 5;
			if (backoff > 300)
				backoff = 300;
			log_info("reconnecting in %ld s", backoff);
			pause_for(backoff);
			continue;
		}
		backoff = 0;
		pause_for(interval);
	}
	log_info("stopped");
	accounts_free(accts, n);
	return 0;
}
