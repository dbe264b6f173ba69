/*
 * runner -- the queue runner: delivers each recipient of each queued
 * message, several at a time, through deliver.c. A success is marked
 * done durably at once (never delivered twice after a restart); a
 * temporary failure is retried with growing delays until the queue
 * lifetime; a permanent one becomes a bounce (RFC 3464) to the sender,
 * never to the null sender. On start it takes every message in msg/.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "msg.h"
#include "proc.h"
#include "smtp.h"
#include "smtpd.h"

#define HASH_SIZE	65536
#define ERRTEXT_MAX	400
#define RESCAN_SECS	30
#define GROUP_MAX	RELAY_GROUP_MAX	/* relay recipients on one connection */
#define GROUP_OUT_MAX	(GROUP_MAX * 600)

enum { D_PENDING, D_RUNNING, D_DONE };

struct rmsg {
	char		 id[ID_LEN + 1];
	struct envelope	 env;
	unsigned char	*state;
	int		*attempts;
	time_t		*next;
	char		**lasterr;	/* per dest: the last failure, or NULL */
	size_t		 left;		/* destinations not done */
	int		 recovered;	/* found in the queue, not announced:
					   attempts may have been made */
	struct rmsg	*prev, *nextm;	/* arrival order */
	struct rmsg	*hnext;		/* hash chain */
};

struct job {
	pid_t		 pid;
	struct rmsg	*m;
	size_t		 i;
	int		 errfd;
	char		 err[ERRTEXT_MAX];
	size_t		 errlen;
	time_t		 started;
	int		 exited;
	int		 status;
	/* a relay group or an lda batch: these dests, results as lines in gout */
	struct rmsg	*gm[GROUP_MAX];
	size_t		 grp[GROUP_MAX];
	size_t		 ngrp;
	char		*gout;
	size_t		 goutlen;
};

static struct config	*cf;
static char		 msgdir[4096];
static struct rmsg	*head, *tail, *hash[HASH_SIZE];
static struct job	*jobs;
static size_t		 njobs;
static int		 sigp[2];
static int		 need_sync;	/* marks made, directory not synced */
static char		 pending[256][160];	/* "delivered" lines after sync */
static size_t		 npending;
static volatile sig_atomic_t stop;
/* mailctl: pause, and the figures of show stats */
static int		 paused;
static time_t		 started_at;
static unsigned long long st_sessions, st_accepted, st_delivered, st_bounced;

static void
on_sig(int sig)
{
	int	 e = errno;
	char	 c = (char)sig;

	if (sig == SIGTERM || sig == SIGINT)
		stop = 1;
	(void)!write(sigp[1], &c, 1);
	errno = e;
}

static unsigned
hash_id(const char *id)
{
	unsigned	 h = 5381;

	while (*id)
		h = h * 33 + (unsigned char)*id++;
	return h % HASH_SIZE;
}

static struct rmsg *
find(const char *id)
{
	struct rmsg	*m;

	for (m = hash[hash_id(id)]; m; m = m->hnext)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

static void
forget(struct rmsg *m)
{
	struct rmsg	**pp;

	for (pp = &hash[hash_id(m->id)]; *pp; pp = &(*pp)->hnext)
		if (*pp == m) {
			*pp = m->hnext;
			break;
		}
	if (m->prev)
		m->prev->nextm = m->nextm;
	else
		head = m->nextm;
	if (m->nextm)
		m->nextm->prev = m->prev;
	else
		tail = m->prev;
	if (m->lasterr != NULL)
		for (size_t i = 0; i < m->env.ndests; i++)
			free(m->lasterr[i]);
	free(m->lasterr);
	queue_envelope_free(&m->env);
	free(m->state);
	free(m->attempts);
	free(m->next);
	free(m);
}

static void
add(const char *id, int recovered)
{
	struct rmsg	*m;
	char		 err[512];
	size_t		 i;
	time_t		 now = time(NULL);

	if (!queue_id_ok(id) || find(id) != NULL)
		return;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return;
	str_lcpy(m->id, id, sizeof(m->id));
	m->recovered = recovered;
	if (queue_read(msgdir, id, &m->env, err, sizeof(err)) == -1) {
		log_warnx("queue: %s (left in the queue)", err);
		free(m);
		return;
	}
	m->state = calloc(m->env.ndests, 1);
	m->attempts = calloc(m->env.ndests, sizeof(int));
	m->next = calloc(m->env.ndests, sizeof(time_t));
	m->lasterr = calloc(m->env.ndests, sizeof(char *));
	if (!m->state || !m->attempts || !m->next || !m->lasterr) {
		free(m->lasterr);
		free(m->state);
		free(m->attempts);
		free(m->next);
		queue_envelope_free(&m->env);
		free(m);
		return;
	}
	for (i = 0; i < m->env.ndests; i++) {
		m->state[i] = m->env.done[i] ? D_DONE : D_PENDING;
		m->next[i] = now;
		if (!m->env.done[i])
			m->left++;
	}
	m->hnext = hash[hash_id(id)];
	hash[hash_id(id)] = m;
	m->prev = tail;
	if (tail)
		tail->nextm = m;
	else
		head = m;
	tail = m;
	if (m->left == 0) {
		queue_remove(msgdir, id);
		forget(m);
	}
}

static void
scan(void)
{
	DIR		*d;
	struct dirent	*de;
	size_t		 n;

	if ((d = opendir(msgdir)) == NULL) {
		log_warn("queue: %s", msgdir);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		n = strlen(de->d_name);
		if (n == ID_LEN + 4 && strcmp(de->d_name + ID_LEN, ".tmp") == 0)
			unlinkat(dirfd(d), de->d_name, 0);	/* a torn bounce */
		else if (n == ID_LEN)
			add(de->d_name, 1);
	}
	closedir(d);
}

/* Keeps printable ASCII of the agent's error output, on one line. */
static void
clean_text(char *s)
{
	char	*p, *o;

	for (p = o = s; *p; p++) {
		if (*p == '\n' || *p == '\r' || *p == '\t') {
			if (o > s && o[-1] != ' ')
				*o++ = ' ';
		} else if ((unsigned char)*p >= 32 && (unsigned char)*p < 127)
			*o++ = *p;
	}
	while (o > s && o[-1] == ' ')
		o--;
	*o = '\0';
}

/* The original's header block, for text/rfc822-headers. */
static void
orig_headers(struct rmsg *m, struct buf *b)
{
	char	 path[4096], chunk[8192];
	ssize_t	 n;
	int	 fd;
	char	*end;

	str_fmt(path, sizeof(path), "%s/%s", msgdir, m->id);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	if (lseek(fd, m->env.body_off, SEEK_SET) != -1) {
		struct buf h;
		buf_init(&h, 64 * 1024);
		while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
			if (buf_add(&h, chunk, n) == -1)
				break;
			if (memmem(h.data, h.len, "\n\n", 2) != NULL)
				break;
		}
		if (h.len > 0) {
			end = memmem(h.data, h.len, "\n\n", 2);
			buf_add(b, h.data, end ? (size_t)(end - h.data) + 1 : h.len);
		}
		buf_free(&h);
	}
	close(fd);
}

/* RFC 3464: a multipart/report to the sender, from the null sender. */
static void
bounce(struct rmsg *m, size_t i, const struct smtp_status *st,
    const char *diag)
{
	struct buf	 b;
	struct origin	 o;
	struct dest	*d = NULL;
	size_t		 nd = 0;
	struct buf	 reply;
	char		 date[64], arrival[64], bid[ID_LEN + 1];
	const char	*rcpt = m->env.dests[i].rcpt;
	const char	*orig = m->env.dests[i].orig;
	time_t		 at = (time_t)m->env.time;

	if (m->env.sender[0] == '\0') {
		log_info("id=%s rcpt=<%s> bounce not sent: null sender", m->id,
		    rcpt);
		return;
	}
	memset(&o, 0, sizeof(o));
	o.local = 1;
	buf_init(&reply, 4096);
	if (rules_resolve(cf, &o, "", m->env.sender, &d, &nd, 100, &reply) != 1) {
		log_info("id=%s bounce to <%s> not sent: %.*s", m->id,
		    m->env.sender, (int)strcspn(reply.data ? reply.data : "",
		    "\r\n"), reply.data ? reply.data : "");
		buf_free(&reply);
		free(d);
		return;
	}
	buf_free(&reply);
	msg_date(date, sizeof(date), time(NULL));
	msg_date(arrival, sizeof(arrival), at);
	buf_init(&b, 0);
	buf_printf(&b,
	    "From: Mail Delivery System <MAILER-DAEMON@%s>\n"
	    "To: <%s>\n"
	    "Subject: Undelivered Mail Returned to Sender\n"
	    "Date: %s\n"
	    "Message-ID: <%s.bounce@%s>\n"
	    "Auto-Submitted: auto-replied\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\n"
	    "\tboundary=\"%s/%s\"\n"
	    "\n"
	    "This is a MIME-encapsulated delivery status notification.\n"
	    "\n"
	    "--%s/%s\n"
	    "Content-Type: text/plain; charset=us-ascii\n"
	    "\n"
	    "This is smtpd-lite at %s. Your message could not be delivered\n"
	    "to the following recipient:\n"
	    "\n"
	    "  <%s>: %d %s %s%s%s\n"
	    "\n"
	    "--%s/%s\n"
	    "Content-Type: message/delivery-status\n"
	    "\n"
	    "Reporting-MTA: dns; %s\n"
	    "X-Queue-ID: %s\n"
	    "Arrival-Date: %s\n"
	    "\n"
	    "Final-Recipient: rfc822; %s\n",
	    cf->hostname, m->env.sender, date, m->id, cf->hostname,
	    m->id, cf->hostname, m->id, cf->hostname, cf->hostname,
	    rcpt, st->code, st->esc, st->text, *diag ? ": " : "", diag,
	    m->id, cf->hostname, cf->hostname, m->id, arrival, rcpt);
	if (strcmp(orig, rcpt) != 0)
		buf_printf(&b, "Original-Recipient: rfc822; %s\n", orig);
	buf_printf(&b,
	    "Action: failed\n"
	    "Status: %s\n"
	    "Diagnostic-Code: x-unix; %d %s %s%s%s\n"
	    "Last-Attempt-Date: %s\n"
	    "\n"
	    "--%s/%s\n"
	    "Content-Type: text/rfc822-headers\n"
	    "\n",
	    st->esc, st->code, st->esc, st->text, *diag ? ": " : "", diag, date,
	    m->id, cf->hostname);
	orig_headers(m, &b);
	buf_printf(&b, "\n--%s/%s--\n", m->id, cf->hostname);
	if (queue_inject(msgdir, "", d, nd, b.data, b.len, bid) == -1)
		log_warn("id=%s bounce to <%s>: queue", m->id, m->env.sender);
	else {
		log_info("id=%s rcpt=<%s> bounced to=<%s> bounce_id=%s", m->id,
		    rcpt, m->env.sender, bid);
		add(bid, 0);
	}
	buf_free(&b);
	free(d);
}

static void
mark_done(struct rmsg *m, size_t i)
{
	m->state[i] = D_DONE;
	need_sync = 1;
	if (--m->left == 0) {
		if (queue_unlink(msgdir, m->id) == -1)
			log_warn("queue: remove %s", m->id);
		/* forgotten when no job of it is running */
	} else if (queue_mark_done(msgdir, m->id, i) == -1)
		log_warn("queue: mark %s %zu done", m->id, i);
}

static int
job_uses(const struct job *j, const struct rmsg *m)
{
	size_t	 g;

	if (j->m == m)
		return 1;
	for (g = 0; j->ngrp > 1 && g < j->ngrp; g++)
		if (j->gm[g] == m)
			return 1;
	return 0;
}

/* What became of dest i: status is an exit code, err its words. */
static void
outcome(struct rmsg *m, size_t i, int status, char *err)
{
	const struct smtp_status	*st = smtp_exit_status(status);
	time_t				 now = time(NULL), delay;
	size_t				 k;
	int				 perm;

	if (m->state[i] != D_RUNNING)
		return;		/* a group's line given twice */
	clean_text(err);
	perm = smtp_code_permanent(st->code);
	if (status == 0) {
		/* logged once the mark is durable: the log never overstates */
		mark_done(m, i);
		st_delivered++;
		if (npending < sizeof(pending) / sizeof(pending[0]))
			str_fmt(pending[npending++], sizeof(pending[0]),
			    "id=%s rcpt=<%.80s> rule=%.20s delivered", m->id,
			    m->env.dests[i].rcpt, m->env.dests[i].rule);
	} else if (!perm && now - (time_t)m->env.time < cf->lifetime) {
		m->attempts[i]++;
		delay = cf->retry_min;
		for (k = 1; k < (size_t)m->attempts[i] && delay < cf->retry_max; k++)
			delay *= 2;
		if (delay > cf->retry_max)
			delay = cf->retry_max;
		m->next[i] = now + delay;
		m->state[i] = D_PENDING;
		free(m->lasterr[i]);
		m->lasterr[i] = strdup(err[0] ? err : proc_exitname(status));
		log_info("id=%s rcpt=<%s> rule=%s deferred status=%s attempt=%d "
		    "retry_in=%lds%s%s", m->id, m->env.dests[i].rcpt,
		    m->env.dests[i].rule, proc_exitname(status),
		    m->attempts[i], (long)delay, err[0] ? " error=" : "",
		    err);
	} else {
		static const struct smtp_status expired = { 550, "5.4.7",
		    "delivery time expired" };
		if (!perm)
			st = &expired;
		log_info("id=%s rcpt=<%s> rule=%s failed status=%s%s%s", m->id,
		    m->env.dests[i].rcpt, m->env.dests[i].rule,
		    proc_exitname(status), err[0] ? " error=" : "", err);
		bounce(m, i, st, err);
		mark_done(m, i);
		st_bounced++;
	}
}

static void
finish_job(struct job *j)
{
	struct rmsg	*m = j->m;
	size_t		 i = j->i, k, g;
	int		 busy;

	j->err[j->errlen] = '\0';
	log_debug("id=%s rcpt=<%s> delivery pid=%ld exited status=%d%s", m->id,
	    m->env.dests[i].rcpt, (long)j->pid, j->status,
	    j->ngrp > 1 ? " (a group)" : "");
	if (j->ngrp > 1) {
		/* "INDEX EXITCODE TEXT" lines, one per recipient */
		char *line, *save = NULL, *end;
		if (j->gout != NULL) {
			j->gout[j->goutlen] = '\0';
			/* the child's words if it died before its results */
			str_lcpy(j->err, j->gout, sizeof(j->err));
			for (line = strtok_r(j->gout, "\n", &save); line != NULL;
			    line = strtok_r(NULL, "\n", &save)) {
				unsigned long pos = strtoul(line, &end, 10);
				long code;
				if (end == line || *end != ' ')
					continue;
				code = strtol(end + 1, &end, 10);
				if (*end == ' ')
					end++;
				if (pos >= j->ngrp || code < 0 || code > 255)
					continue;
				outcome(j->gm[pos], j->grp[pos], (int)code, end);
			}
		}
		/* a recipient the child did not report: retried */
		for (g = 0; g < j->ngrp; g++)
			if (j->gm[g]->state[j->grp[g]] == D_RUNNING) {
				char why[ERRTEXT_MAX + 64];
				str_fmt(why, sizeof(why), "%s", j->err[0] &&
				    !isdigit((unsigned char)j->err[0]) ? j->err :
				    "relay: no result");
				outcome(j->gm[g], j->grp[g], j->status ?
				    j->status : EX_TEMPFAIL, why);
			}
		free(j->gout);
	} else
		outcome(m, i, j->status, j->err);
	if (j->errfd != -1)
		close(j->errfd);
	{
		/* the messages this job touched, forgotten once done and idle */
		struct rmsg	*touched[GROUP_MAX + 1];
		size_t		 nt = 0, t;

		touched[nt++] = m;
		for (g = 0; g < j->ngrp && j->ngrp > 1; g++)
			if (j->gm[g] != touched[nt - 1] && nt < GROUP_MAX + 1)
				touched[nt++] = j->gm[g];
		*j = jobs[--njobs];
		for (t = 0; t < nt; t++) {
			if (touched[t]->left != 0)
				continue;
			for (k = 1; k < t; k++)
				if (touched[k] == touched[t])
					break;
			if (t > 0 && k < t)
				continue;	/* already forgotten */
			busy = 0;
			for (k = 0; k < njobs; k++)
				if (job_uses(&jobs[k], touched[t]))
					busy = 1;
			if (!busy)
				forget(touched[t]);
		}
	}
}

static void
drain(struct job *j)
{
	char	 tmp[1024];
	ssize_t	 n = -1;
	size_t	 room;

	while (j->ngrp > 1 && (n = read(j->errfd, tmp, sizeof(tmp))) > 0) {
		if (j->gout == NULL && (j->gout = malloc(GROUP_OUT_MAX + 1)) == NULL)
			continue;	/* drained; the results count as missing */
		room = GROUP_OUT_MAX - j->goutlen;
		if ((size_t)n > room)
			n = (ssize_t)room;
		memcpy(j->gout + j->goutlen, tmp, n);
		j->goutlen += n;
	}
	while (j->ngrp <= 1 && (n = read(j->errfd, tmp, sizeof(tmp))) > 0) {
		room = sizeof(j->err) - 1 - j->errlen;
		if ((size_t)n > room)
			n = (ssize_t)room;
		memcpy(j->err + j->errlen, tmp, n);
		j->errlen += n;
	}
	if (n == 0) {
		close(j->errfd);
		j->errfd = -1;
	}
}

/*
 * For a rule lda delivers in batches: the due recipients that have dest
 * i's rule, address and local user (so the same lda command line but for
 * -f), from m and later messages, i first. Looks at BATCH_SCAN of them at
 * most, so that a long queue does not make each dispatch slow.
 */
#define BATCH_SCAN	5000
static size_t
batch_group(struct rmsg *m, size_t i, struct rmsg **gm, size_t *grp)
{
	const struct dest	*d = &m->env.dests[i], *d2;
	time_t			 now = time(NULL);
	struct rmsg		*m2;
	size_t			 n = 1, k, seen = 0;

	for (m2 = m; m2 != NULL && n < GROUP_MAX && seen < BATCH_SCAN;
	    m2 = m2->nextm)
		for (k = m2 == m ? i + 1 : 0; k < m2->env.ndests &&
		    n < GROUP_MAX; k++, seen++) {
			d2 = &m2->env.dests[k];
			if (m2->state[k] != D_PENDING || m2->next[k] > now ||
			    strcmp(d2->rcpt, d->rcpt) != 0 ||
			    strcmp(d2->rule, d->rule) != 0 ||
			    strcmp(d2->user, d->user) != 0 ||
			    strcmp(d2->orig, d->orig) != 0)
				continue;
			gm[n] = m2;
			grp[n++] = k;
		}
	return n;
}

/*
 * The due recipients of m that share dest i's relay rule and route (the
 * smarthost, or the domain) go in one transaction: their indexes into
 * grp (i first). Returns how many; 1 for anything but a relay.
 */
static size_t
group(struct rmsg *m, size_t i, struct rmsg **gm, size_t *grp)
{
	const struct rule	*r = rules_find(cf, m->env.dests[i].rule);
	const char		*dom, *d2;
	time_t			 now = time(NULL);
	struct rmsg		*m2;
	size_t			 n = 0, k;

	gm[n] = m;
	grp[n++] = i;
	if (r != NULL && r->batch)
		return batch_group(m, i, gm, grp);
	if (r == NULL || r->action != ACT_RELAY)
		return n;
	dom = strrchr(m->env.dests[i].rcpt, '@');
	/* this message's, then later messages' (kept together per message) */
	for (m2 = m; m2 != NULL && n < GROUP_MAX; m2 = m2->nextm)
		for (k = m2 == m ? i + 1 : 0; k < m2->env.ndests &&
		    n < GROUP_MAX; k++) {
			if (m2->state[k] != D_PENDING || m2->next[k] > now ||
			    strcmp(m2->env.dests[k].rule,
			    m->env.dests[i].rule) != 0)
				continue;
			d2 = strrchr(m2->env.dests[k].rcpt, '@');
			if (r->smarthost == NULL && (dom == NULL || d2 == NULL ||
			    strcasecmp(dom, d2) != 0))
				continue;
			gm[n] = m2;
			grp[n++] = k;
		}
	return n;
}

static void
dispatch(void)
{
	struct rmsg	*m;
	char		 path[4096], err[512];
	time_t		 now = time(NULL);
	size_t		 i, k, ngrp, grp[GROUP_MAX];
	struct rmsg	*gm[GROUP_MAX];
	struct relay_item items[GROUP_MAX];
	unsigned char	 retry[GROUP_MAX];
	const struct rule *r;
	int		 errfd;
	pid_t		 pid;

	if (paused)
		return;
	for (m = head; m && njobs < (size_t)cf->max_deliveries; m = m->nextm) {
		for (i = 0; i < m->env.ndests; i++) {
			if (njobs >= (size_t)cf->max_deliveries)
				break;
			if (m->state[i] != D_PENDING || m->next[i] > now)
				continue;
			str_fmt(path, sizeof(path), "%s/%s", msgdir, m->id);
			ngrp = group(m, i, gm, grp);
			for (k = 0; k < ngrp; k++) {
				items[k].e = &gm[k]->env;
				items[k].i = grp[k];
				/* an earlier attempt may have completed */
				retry[k] = gm[k]->recovered ||
				    gm[k]->attempts[grp[k]] > 0;
			}
			r = rules_find(cf, m->env.dests[i].rule);
			if (ngrp > 1 && r != NULL && r->batch)
				pid = deliver_start_batch(cf, items, ngrp, retry,
				    &errfd, err, sizeof(err));
			else if (ngrp > 1)
				pid = deliver_start_relay(cf, items, ngrp, path,
				    &errfd, err, sizeof(err));
			else
				pid = deliver_start(cf, &m->env, i, path,
				    retry[0], &errfd, err, sizeof(err));
			if (pid == -1) {
				log_warnx("id=%s rcpt=<%s> cannot start: %s", m->id,
				    m->env.dests[i].rcpt, err);
				m->attempts[i]++;
				m->next[i] = now + cf->retry_min;
				continue;
			}
			memset(&jobs[njobs], 0, sizeof(jobs[0]));
			jobs[njobs].pid = pid;
			jobs[njobs].m = m;
			jobs[njobs].i = i;
			jobs[njobs].errfd = errfd;
			jobs[njobs].started = now;
			jobs[njobs].ngrp = ngrp;
			memcpy(jobs[njobs].grp, grp, ngrp * sizeof(grp[0]));
			memcpy(jobs[njobs].gm, gm, ngrp * sizeof(gm[0]));
			njobs++;
			log_debug("id=%s rcpt=<%s> delivery pid=%ld started%s",
			    m->id, m->env.dests[i].rcpt, (long)pid, ngrp > 1 ?
			    " (a group of its route or recipient)" : "");
			for (k = 0; k < ngrp; k++)
				gm[k]->state[grp[k]] = D_RUNNING;
		}
	}
}

/* One directory fsync for all the marks of a round, then their logs. */
static void
sync_marks(void)
{
	size_t	 k;

	if (need_sync && fsync_dir(msgdir) == -1)
		log_warn("queue: fsync %s", msgdir);
	need_sync = 0;
	for (k = 0; k < npending; k++)
		log_info("%s", pending[k]);
	npending = 0;
}

static void
reap(void)
{
	pid_t	 pid;
	int	 st;
	size_t	 k;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (k = 0; k < njobs; k++)
			if (jobs[k].pid == pid) {
				jobs[k].exited = 1;
				jobs[k].status = WIFEXITED(st) ? WEXITSTATUS(st) :
				    128 + WTERMSIG(st);
				break;
			}
	}
	for (k = 0; k < njobs; ) {
		if (jobs[k].exited) {
			if (jobs[k].errfd != -1)
				drain(&jobs[k]);
			finish_job(&jobs[k]);
		} else
			k++;
		if (npending == sizeof(pending) / sizeof(pending[0]))
			sync_marks();
	}
	sync_marks();
}

static int
next_timeout(void)
{
	struct rmsg	*m;
	time_t		 now = time(NULL), best = now + RESCAN_SECS;
	size_t		 i;

	if (njobs < (size_t)cf->max_deliveries && !paused)
		for (m = head; m; m = m->nextm)
			for (i = 0; i < m->env.ndests; i++)
				if (m->state[i] == D_PENDING && m->next[i] < best)
					best = m->next[i];
	for (i = 0; i < njobs; i++)
		if (jobs[i].started + cf->mda_timeout < best)
			best = jobs[i].started + cf->mda_timeout;
	if (best <= now)
		return 0;
	return (int)(best - now) * 1000;
}

/* ---- mailctl: the control socket (text lines, root or the owner) ---- */

static const char *
age_str(time_t secs, char *buf, size_t len)
{
	if (secs < 0)
		secs = 0;
	if (secs < 120)
		str_fmt(buf, len, "%lds", (long)secs);
	else if (secs < 7200)
		str_fmt(buf, len, "%ldm", (long)secs / 60);
	else if (secs < 2 * 86400)
		str_fmt(buf, len, "%ldh", (long)secs / 3600);
	else
		str_fmt(buf, len, "%ldd", (long)secs / 86400);
	return buf;
}

static void
show_queue(struct buf *out)
{
	static const char *const states[] = { "pending", "running", "done" };
	struct rmsg	*m;
	time_t		 now = time(NULL);
	char		 a[32], n[32];
	size_t		 i, count = 0;

	for (m = head; m != NULL; m = m->nextm) {
		if (m->left == 0)
			continue;
		count++;
		buf_printf(out, "%s age=%s from=<%s> recipients=%zu\n", m->id,
		    age_str(now - (time_t)m->env.time, a, sizeof(a)),
		    m->env.sender, m->left);
		for (i = 0; i < m->env.ndests; i++) {
			if (m->state[i] == D_DONE)
				continue;
			buf_printf(out, "\tto=<%s> state=%s attempts=%d "
			    "next=%s%s%s%s\n", m->env.dests[i].rcpt,
			    paused && m->state[i] == D_PENDING ? "paused" :
			    states[m->state[i]], m->attempts[i],
			    m->state[i] == D_RUNNING ? "now" :
			    age_str(m->next[i] - now, n, sizeof(n)),
			    m->lasterr[i] ? " last_error=\"" : "",
			    m->lasterr[i] ? m->lasterr[i] : "",
			    m->lasterr[i] ? "\"" : "");
		}
		if (out->len > 4 * 1024 * 1024) {
			buf_printf(out, "(truncated)\n");
			return;
		}
	}
	if (count == 0)
		buf_printf(out, "queue empty\n");
}

static void
control_exec(char *line, struct buf *out)
{
	char		*av[4], *save = NULL, *p = line;
	struct rmsg	*m;
	size_t		 ac = 0, i, k, left;
	time_t		 now = time(NULL);

	while (ac < 4 && (av[ac] = strtok_r(p, " \t", &save)) != NULL) {
		ac++;
		p = NULL;
	}
	if (ac == 2 && strcmp(av[0], "show") == 0 &&
	    strcmp(av[1], "queue") == 0)
		show_queue(out);
	else if (ac == 2 && strcmp(av[0], "show") == 0 &&
	    strcmp(av[1], "stats") == 0) {
		for (left = 0, m = head; m != NULL; m = m->nextm)
			if (m->left > 0)
				left++;
		buf_printf(out, "sessions=%llu\naccepted=%llu\ndelivered=%llu\n"
		    "bounced=%llu\nin_queue=%zu\ndeliveries_running=%zu\n"
		    "paused=%s\nuptime=%lds\n", st_sessions, st_accepted,
		    st_delivered, st_bounced, left, njobs, paused ? "yes" : "no",
		    (long)(now - started_at));
	} else if (ac == 2 && strcmp(av[0], "schedule") == 0) {
		k = 0;
		for (m = head; m != NULL; m = m->nextm) {
			if (strcmp(av[1], "all") != 0 && strcmp(av[1], m->id) != 0)
				continue;
			for (i = 0; i < m->env.ndests; i++)
				if (m->state[i] == D_PENDING) {
					m->next[i] = now;
					k++;
				}
		}
		if (k == 0 && strcmp(av[1], "all") != 0 && find(av[1]) == NULL)
			buf_printf(out, "error: no message %s\n", av[1]);
		else
			buf_printf(out, "scheduled %zu recipient%s\n", k,
			    k == 1 ? "" : "s");
		log_info("mailctl: schedule %s (%zu recipients)", av[1], k);
	} else if (ac == 2 && strcmp(av[0], "remove") == 0) {
		if ((m = find(av[1])) == NULL)
			buf_printf(out, "error: no message %s\n", av[1]);
		else {
			for (k = 0; k < njobs; k++)
				if (job_uses(&jobs[k], m))
					break;
			if (k < njobs)
				buf_printf(out, "error: %s is being delivered, "
				    "try again\n", m->id);
			else if (queue_remove(msgdir, m->id) == -1)
				buf_printf(out, "error: %s: %s\n", m->id,
				    strerror(errno));
			else {
				log_info("id=%s removed by mailctl", m->id);
				buf_printf(out, "removed %s\n", m->id);
				forget(m);
			}
		}
	} else if (ac == 1 && (strcmp(av[0], "pause") == 0 ||
	    strcmp(av[0], "resume") == 0)) {
		paused = av[0][0] == 'p';
		log_info("mailctl: deliveries %s", paused ? "paused" : "resumed");
		buf_printf(out, "deliveries %s\n", paused ? "paused" : "resumed");
	} else if (ac == 2 && strcmp(av[0], "log") == 0 &&
	    (strcmp(av[1], "verbose") == 0 || strcmp(av[1], "brief") == 0)) {
		log_setverbose(av[1][0] == 'v');
		kill(getppid(), av[1][0] == 'v' ? SIGUSR1 : SIGUSR2);
		log_info("mailctl: log %s", av[1]);
		buf_printf(out, "log %s\n", av[1]);
	} else if (ac == 2 && strcmp(av[0], "trace") == 0) {
		if (strcmp(av[1], "smtp") == 0)
			kill(getppid(), SIGUSR1);	/* new sessions */
		else if (strcmp(av[1], "queue") == 0 ||
		    strcmp(av[1], "deliver") == 0 || strcmp(av[1], "relay") == 0)
			log_setverbose(1);	/* the runner and its deliveries */
		else {
			buf_printf(out, "error: trace smtp|queue|deliver|relay\n");
			return;
		}
		log_info("mailctl: trace %s", av[1]);
		buf_printf(out, "tracing %s\n", av[1]);
	} else
		buf_printf(out, "error: unknown command (show queue|show stats|"
		    "schedule all|ID|remove ID|pause|resume|log verbose|brief|"
		    "trace SUBSYSTEM)\n");
}

/*
 * One request per connection: a line of at most 255 bytes, read within a
 * second, from root or the daemon's owner (SO_PEERCRED); the answer is
 * text, then the connection closes.
 */
static void
control_serve(void)
{
	struct ucred	 uc;
	struct timeval	 tv = { 1, 0 };
	socklen_t	 ul = sizeof(uc);
	struct buf	 out;
	char		 line[256];
	size_t		 len = 0, off;
	ssize_t		 n;
	int		 fd;

	if ((fd = accept4(cf->control_fd, NULL, NULL, SOCK_CLOEXEC)) == -1)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	tv.tv_sec = 2;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	buf_init(&out, 8 * 1024 * 1024);
	memset(&uc, 0, sizeof(uc));
	uc.uid = (uid_t)-1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) == -1 ||
	    (uc.uid != 0 && uc.uid != geteuid())) {
		log_warnx("mailctl: refused a client (uid %ld)", (long)uc.uid);
		buf_printf(&out, "error: permission denied\n");
		goto reply;
	}
	while (len < sizeof(line) - 1 && memchr(line, '\n', len) == NULL) {
		n = read(fd, line + len, sizeof(line) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (memchr(line, '\n', len) == NULL) {
		buf_printf(&out, "error: a request is one line under 256 bytes\n");
		goto reply;
	}
	line[len] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	control_exec(line, &out);
reply:
	for (off = 0; off < out.len; off += (size_t)n)
		if ((n = write(fd, out.data + off, out.len - off)) <= 0)
			break;
	buf_free(&out);
	close(fd);
}

void
runner_run(struct config *config, int notify)
{
	struct sigaction	 sa;
	struct pollfd		*pfd;
	char			 ids[ID_LEN * 256 + 1], id[ID_LEN + 1];
	time_t			 lastscan, now;
	ssize_t			 n;
	size_t			 i, k, npfd;
	char			 c;

	cf = config;
	str_fmt(msgdir, sizeof(msgdir), "%s/msg", cf->queue);
	if (pipe2(sigp, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("pipe");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sig;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	jobs = calloc(cf->max_deliveries, sizeof(*jobs));
	pfd = calloc(cf->max_deliveries + 3, sizeof(*pfd));
	if (jobs == NULL || pfd == NULL)
		fatal("calloc");
	scan();
	lastscan = started_at = time(NULL);
	log_info("runner started queue=%s messages=%s", cf->queue,
	    head ? "some" : "none");

	while (!stop) {
		dispatch();
		pfd[0].fd = notify;
		pfd[0].events = POLLIN;
		pfd[1].fd = sigp[0];
		pfd[1].events = POLLIN;
		pfd[2].fd = cf->control_fd;	/* -1: ignored by poll */
		pfd[2].events = POLLIN;
		npfd = 3;
		for (k = 0; k < njobs; k++)
			if (jobs[k].errfd != -1) {
				pfd[npfd].fd = jobs[k].errfd;
				pfd[npfd++].events = POLLIN;
			}
		if (poll(pfd, npfd, next_timeout()) == -1 && errno != EINTR)
			fatal("poll");
		if (pfd[0].revents & (POLLIN | POLLHUP)) {
			n = read(notify, ids, sizeof(ids) - 1);
			if (n == 0) {
				log_info("runner: master gone, exiting");
				break;
			}
			for (i = 0; n > 0 && i + ID_LEN <= (size_t)n; i += ID_LEN) {
				memcpy(id, ids + i, ID_LEN);
				id[ID_LEN] = '\0';
				if (id[0] == 'S') {
					st_sessions++;
					continue;
				}
				st_accepted++;
				add(id, 0);
			}
		}
		if (pfd[2].revents & POLLIN)
			control_serve();
		for (i = 3; i < npfd; i++)
			if (pfd[i].revents)
				for (k = 0; k < njobs; k++)
					if (jobs[k].errfd == pfd[i].fd) {
						drain(&jobs[k]);
						break;
					}
		if (pfd[1].revents & POLLIN)
			while (read(sigp[0], &c, 1) == 1)
				;
		reap();
		now = time(NULL);
		for (k = 0; k < njobs; k++)
			if (now - jobs[k].started > cf->mda_timeout) {
				log_warnx("id=%s delivery timed out, killing pid %ld",
				    jobs[k].m->id, (long)jobs[k].pid);
				kill(jobs[k].pid, SIGKILL);
			}
		if (now - lastscan >= RESCAN_SECS) {
			scan();
			lastscan = now;
		}
	}
	for (k = 0; k < njobs; k++)
		kill(jobs[k].pid, SIGTERM);
	_exit(0);
}
