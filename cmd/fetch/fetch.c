/*
 * fetch -- polls IMAP and POP3 accounts and delivers new mail into a
 * Maildir or through an MDA (lda), exactly once: the state file says
 * what was fetched, and a message is marked done, flagged or deleted on
 * the server only after its delivery is durable. One shot for cron, or
 * a daemon (-d SECONDS) with optional IMAP IDLE.
 *
 * It does not rewrite headers, forward by SMTP, filter, or keep a copy
 * of the server's folders in sync (that is mbsync's job): new mail in,
 * nothing else.
 *
 * Exit: 0 all went well (new mail or none); 1 an account failed (server
 * down, wrong password, protocol error, a message refused for good);
 * 75 only temporary trouble (an MDA said 75, the account was locked by
 * another run); 64 usage; 78 configuration.
 */
#include <err.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "fetch.h"
#include "log.h"
#include "priv.h"

enum {
	OPT_STARTTLS = 256, OPT_CAFILE, OPT_INSECURE, OPT_PLAINTEXT,
	OPT_PWFILE, OPT_MAILDIR, OPT_MDA, OPT_KEEP, OPT_DELETE, OPT_FOLDER,
	OPT_STATE, OPT_ALL, OPT_MARKSEEN, OPT_IDLE, OPT_TIMEOUT, OPT_BATCH,
	OPT_NOTLS
};

static const struct option longopts[] = {
	{ "starttls", no_argument, NULL, OPT_STARTTLS },
	{ "no-tls", no_argument, NULL, OPT_NOTLS },
	{ "cafile", required_argument, NULL, OPT_CAFILE },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ "allow-plaintext", no_argument, NULL, OPT_PLAINTEXT },
	{ "password-file", required_argument, NULL, OPT_PWFILE },
	{ "maildir", required_argument, NULL, OPT_MAILDIR },
	{ "mda", required_argument, NULL, OPT_MDA },
	{ "keep", no_argument, NULL, OPT_KEEP },
	{ "delete", no_argument, NULL, OPT_DELETE },
	{ "folder", required_argument, NULL, OPT_FOLDER },
	{ "state", required_argument, NULL, OPT_STATE },
	{ "all", no_argument, NULL, OPT_ALL },
	{ "mark-seen-now", no_argument, NULL, OPT_MARKSEEN },
	{ "idle", no_argument, NULL, OPT_IDLE },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "batch", required_argument, NULL, OPT_BATCH },
	{ "config", required_argument, NULL, 'c' },
	{ "daemon", required_argument, NULL, 'd' },
	{ "verbose", no_argument, NULL, 'v' },
	{ NULL, 0, NULL, 0 }
};

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
	    "usage: fetch [-nFqv] [-c file] [-d seconds] [-u user] [account ...]\n"
	    "       fetch [options] imap[s]|pop3[s]://user@host[:port][/FOLDER]\n"
	    "options: --maildir DIR | --mda 'COMMAND', --keep | --delete,\n"
	    "  --folder NAME, --state FILE, --starttls, --cafile FILE, --insecure,\n"
	    "  --allow-plaintext, --password-file FILE, --all, --mark-seen-now,\n"
	    "  --idle, --timeout SECONDS, --batch N\n");
	exit(EX_USAGE);
}

static long
number(const char *s, long min, long max, const char *what)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < min || v > max)
		errx(EX_USAGE, "%s: expected a number from %ld to %ld", what,
		    min, max);
	return v;
}

static void
options(int argc, char **argv, struct options *o)
{
	int ch, quiet = 0;

	memset(o, 0, sizeof(*o));
	o->tls = -1;
	o->delete = -1;
	while ((ch = getopt_long(argc, argv, "c:d:Fnqu:v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->config = optarg; break;
		case 'd': o->daemon = number(optarg, 1, 86400 * 7, "-d"); break;
		case 'F': break;	/* always in the foreground */
		case 'n': o->check = 1; break;
		case 'q': quiet = 1; break;
		case 'u': o->runas = optarg; break;
		case 'v': o->verbose++; break;
		case OPT_STARTTLS: o->tls = TLS_STARTTLS; break;
		case OPT_NOTLS: o->tls = TLS_OFF; break;
		case OPT_CAFILE: o->cafile = optarg; break;
		case OPT_INSECURE: o->insecure = 1; break;
		case OPT_PLAINTEXT: o->allow_plaintext = 1; break;
		case OPT_PWFILE: o->password_file = optarg; break;
		case OPT_MAILDIR: o->maildir = optarg; o->mda = NULL; break;
		case OPT_MDA: o->mda = optarg; o->maildir = NULL; break;
		case OPT_KEEP: o->delete = 0; break;
		case OPT_DELETE: o->delete = 1; break;
		case OPT_FOLDER:
			if (o->nfolders == sizeof(o->folders) / sizeof(o->folders[0]))
				errx(EX_USAGE, "too many --folder");
			o->folders[o->nfolders++] = optarg;
			break;
		case OPT_STATE: o->state = optarg; break;
		case OPT_ALL: o->all = 1; break;
		case OPT_MARKSEEN: o->mark_seen_now = 1; break;
		case OPT_IDLE: o->idle = 1; break;
		case OPT_TIMEOUT: o->timeout = number(optarg, 1, 3600, "--timeout"); break;
		case OPT_BATCH: o->batch = number(optarg, 1, 1000, "--batch"); break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 1 && strstr(argv[0], "://") != NULL)
		o->url = argv[0];
	else {
		o->names = argv;
		o->nnames = argc;
	}
	if (o->url == NULL && o->config == NULL) {
		if (argc > 0 || access(SYSCONFDIR "/courriel/fetch.conf", F_OK) == 0)
			o->config = SYSCONFDIR "/courriel/fetch.conf";
		else
			usage();
	}
	if (o->all && o->mark_seen_now)
		errx(EX_USAGE, "--all and --mark-seen-now contradict each other");
	o->progress = !quiet && !o->verbose && o->daemon == 0 && isatty(2);
}

/* Started as root: become -u USER before anything else (seed 001's
 * www-data); mail is never written as root. */
static void
privileges(const struct options *o)
{
	uid_t uid;
	gid_t gid;
	char e[512];

	if (!priv_is_root()) {
		if (o->runas != NULL)
			errx(EX_USAGE, "-u needs root");
		return;
	}
	if (o->runas == NULL) {
		if (o->check)
			return;	/* -n writes nothing */
		errx(EX_USAGE, "refusing to run as root: give -u USER (the owner "
		    "of the Maildir)");
	}
	if (priv_lookup(o->runas, &uid, &gid, e, sizeof(e)) == -1 ||
	    priv_drop(uid, gid, e, sizeof(e)) == -1)
		errx(EX_NOPERM, "-u %s: %s", o->runas, e);
}

int
main(int argc, char **argv)
{
	struct options o;
	struct account **accts;
	size_t n, i;
	long interval;
	char e[1024];

	signal(SIGPIPE, SIG_IGN);
	options(argc, argv, &o);
	log_init("fetch", LOG_TO_STDERR, o.verbose);
	privileges(&o);
	if (accounts_load(&o, &accts, &n, &interval, e, sizeof(e)) == -1)
		errx(EX_CONFIG, "%s", e);
	if (o.daemon > 0)
		interval = o.daemon;
	for (i = 0; i < n; i++)
		if (accts[i]->insecure)
			log_warnx("%s: WARNING: --insecure: the server's "
			    "certificate is NOT checked; anyone on the path can "
			    "read the password and the mail", accts[i]->name);
	if (o.idle && n > 1)
		errx(EX_USAGE, "--idle watches one account: run one fetch per "
		    "account");
	if (o.check) {
		for (i = 0; i < n; i++)
			printf("%s: %s://%s@%s:%s, state %s\n", accts[i]->name,
			    accts[i]->proto == PROTO_IMAP ? "imap" : "pop3",
			    accts[i]->user, accts[i]->host, accts[i]->port,
			    accts[i]->state);
		accounts_free(accts, n);
		return 0;
	}
	if (o.idle && interval <= 0)
		interval = 60;
	return run_accounts(&o, accts, n, interval);
}
