/*
 * deliver.c -- where a fetched message goes, and when it counts as
 * delivered.
 *
 * Maildir mode delivers in batches, so that a fast server is not held
 * back by one state-file rewrite per message, without giving up exactly
 * once:
 *   1. each message of the batch is written whole into tmp/ (a message
 *      cut short by the server or the network is removed, never
 *      delivered);
 *   2. the state file is replaced with an intent record per message
 *      ("pending FOLDER UID - UNIQUE"), durably;
 *   3. the messages are linked into new/ and new/ is fsync'd (the
 *      batch commit below: lda's durability, one sync per batch);
 *   4. the state file is replaced with the UIDs done and no intents;
 *   5. only then may the caller flag or delete them on the server.
 * After a crash, fstate_recover finds each intent's unique name in new/
 * or cur/: there means delivered (recorded as done), absent means not
 * delivered (fetched again). No message is lost or delivered twice.
 *
 * MDA mode spools the message to an unlinked temp file, then runs the
 * MDA with it on stdin, one process per message, and records the state
 * after each success. The MDA's own delivery cannot be checked after a
 * crash: a crash between its exit and the state rename (microseconds)
 * can fetch that message again. Exit 75 leaves the message on the
 * server for the next poll; other failures are reported and the poll
 * goes on.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "buf.h"
#include "fetch.h"
#include "io.h"
#include "log.h"
#include "maildir.h"
#include "proc.h"

#define BATCH_BYTES	(16ULL << 20)
#define MDA_TIMEOUT_MS	(10 * 60 * 1000)

struct slot {
	struct maildir_tmp	 tmp;
	char			*folder;
	unsigned long		 uid;
	char			*uidl;
};

struct deliver {
	const struct account	*acct;
	struct fstate		*st;
	struct slot		*slots;
	int			 nslots;	/* capacity */
	int			 used;		/* complete messages in the batch */
	int			 writing;	/* slot[used] is open */
	unsigned long long	 batchbytes;
	/* MDA mode */
	int			 spool;
	int			 pending_cr;
	unsigned long long	 spoolsize;
	/* what was delivered and not yet taken for --delete */
	unsigned long		*done;
	size_t			 ndone, capdone;
	unsigned long		 count, tempfails, permfails;
	unsigned long long	 bytes;
};

struct deliver *
deliver_new(const struct account *a, struct fstate *st, int batch)
{
	struct deliver *d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->acct = a;
	d->st = st;
	d->spool = -1;
	if (batch < 1)
		batch = 1;
	if (a->maildir != NULL) {
		d->nslots = batch;
		if ((d->slots = calloc((size_t)batch, sizeof(*d->slots))) == NULL) {
			free(d);
			return NULL;
		}
	}
	return d;
}

static int
done_add(struct deliver *d, unsigned long uid)
{
	if (d->ndone == d->capdone) {
		size_t nc = d->capdone ? d->capdone * 2 : 256;
		unsigned long *n = reallocarray(d->done, nc, sizeof(*n));

		if (n == NULL)
			return -1;
		d->done = n;
		d->capdone = nc;
	}
	d->done[d->ndone++] = uid;
	return 0;
}

/* Marks one message done in the state (not yet saved). */
static int
state_done(struct fstate *st, const char *folder, unsigned long uid,
    const char *uidl)
{
	if (uidl != NULL)
		return fstate_uidl_add(st, uidl);
	else {
		struct fstate_folder *f = fstate_folder(st, folder, 1);

		if (f == NULL)
			return -1;
		return uidset_add(&f->done, uid, uid);
	}
}

static int
spool_open(struct deliver *d, char *err, size_t errlen)
{
	const char *tmpdir = getenv("TMPDIR");
	char path[PATH_MAX];

	if (tmpdir == NULL || *tmpdir == '\0')
		tmpdir = "/tmp";
	d->spool = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (d->spool == -1) {
		/* file systems without O_TMPFILE */
		if (str_fmt(path, sizeof(path), "%s/fetch.XXXXXX", tmpdir) == -1 ||
		    (d->spool = mkostemp(path, O_CLOEXEC)) == -1) {
			snprintf(err, errlen, "%s: temp file: %s", tmpdir,
			    strerror(errno));
			return -1;
		}
		unlink(path);
	}
	return 0;
}

int
deliver_begin(struct deliver *d, char *err, size_t errlen)
{
	if (d->slots != NULL) {
		struct slot *s = &d->slots[d->used];

		if (d->writing || d->used >= d->nslots) {
			snprintf(err, errlen, "internal: batch slot busy");
			return -1;
		}
		if (maildir_tmp_open(&s->tmp, d->acct->maildir, err, errlen) == -1)
			return -1;
		d->spoolsize = 0;
		d->writing = 1;
		return 0;
	}
	if (d->spool == -1 && spool_open(d, err, errlen) == -1)
		return -1;
	if (ftruncate(d->spool, 0) == -1 || lseek(d->spool, 0, SEEK_SET) == -1) {
		snprintf(err, errlen, "spool: %s", strerror(errno));
		return -1;
	}
	d->pending_cr = 0;
	d->spoolsize = 0;
	d->writing = 1;
	return 0;
}

/* The spool holds LF line ends, like the Maildir (the MDA expects them). */
static int
spool_write(struct deliver *d, const char *p, size_t n)
{
	char out[16384];
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (d->pending_cr) {
			d->pending_cr = 0;
			if (p[i] != '\n')
				out[o++] = '\r';
		}
		if (p[i] == '\r') {
			d->pending_cr = 1;
			continue;
		}
		out[o++] = p[i];
		if (o >= sizeof(out) - 2) {
			if (io_write_all(d->spool, out, o) == -1)
				return -1;
			o = 0;
		}
	}
	if (o > 0 && io_write_all(d->spool, out, o) == -1)
		return -1;
	return 0;
}

int
deliver_write(struct deliver *d, const void *p, size_t n, char *err,
    size_t errlen)
{
	if (!d->writing) {
		snprintf(err, errlen, "internal: no message open");
		return -1;
	}
	d->spoolsize += n;
	if (d->slots != NULL)
		return maildir_tmp_write(&d->slots[d->used].tmp, p, n, err, errlen);
	if (spool_write(d, p, n) == -1) {
		snprintf(err, errlen, "spool: write: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void
deliver_abort(struct deliver *d)
{
	if (!d->writing)
		return;
	if (d->slots != NULL)
		maildir_tmp_abort(&d->slots[d->used].tmp);
	d->writing = 0;
	d->spoolsize = 0;
}

static int
mda_run(struct deliver *d, char *err, size_t errlen)
{
	struct proc p;
	char buf[65536];
	ssize_t r;
	int status, wfail = 0;

	if (d->pending_cr) {
		if (io_write_all(d->spool, "\r", 1) == -1) {
			snprintf(err, errlen, "spool: write: %s", strerror(errno));
			return -1;
		}
		d->pending_cr = 0;
	}
	if (lseek(d->spool, 0, SEEK_SET) == -1) {
		snprintf(err, errlen, "spool: %s", strerror(errno));
		return -1;
	}
	if (proc_spawn(&p, d->acct->mda, PROC_STDIN, NULL, err, errlen) == -1)
		return -1;
	while ((r = read(d->spool, buf, sizeof(buf))) != 0) {
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			snprintf(err, errlen, "spool: read: %s", strerror(errno));
			close(p.in);
			p.in = -1;
			(void)proc_wait(&p, MDA_TIMEOUT_MS);
			return -1;
		}
		/* an MDA that exits early (EPIPE) says why in its status */
		if (!wfail && io_write_all(p.in, buf, (size_t)r) == -1)
			wfail = 1;
	}
	close(p.in);
	p.in = -1;
	status = proc_wait(&p, MDA_TIMEOUT_MS);
	if (status == 0 && wfail)
		status = EX_TEMPFAIL;	/* it did not read the whole message */
	return status;
}

int
deliver_end(struct deliver *d, const char *folder, unsigned long uid,
    const char *uidl, char *err, size_t errlen)
{
	struct slot *s;
	int status;

	if (!d->writing) {
		snprintf(err, errlen, "internal: no message open");
		return -1;
	}
	d->writing = 0;
	if (d->slots != NULL) {
		s = &d->slots[d->used];
		s->uid = uid;
		s->folder = folder ? strdup(folder) : NULL;
		s->uidl = uidl ? strdup(uidl) : NULL;
		if ((folder && s->folder == NULL) || (uidl && s->uidl == NULL)) {
			snprintf(err, errlen, "%s", strerror(errno));
			maildir_tmp_abort(&s->tmp);
			return -1;
		}
		d->used++;
		d->batchbytes += d->spoolsize;
		return 0;
	}
	status = mda_run(d, err, errlen);
	if (status == -1)
		return -1;
	if (status != 0) {
		snprintf(err, errlen, "%s: %s", d->acct->mda[0],
		    proc_exitname(status));
		if (proc_exit_temporary(status)) {
			d->tempfails++;
			return 1;
		}
		d->permfails++;
		return 2;
	}
	if (state_done(d->st, folder, uid, uidl) == -1) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	if (fstate_save(d->st, err, errlen) == -1)
		return -1;
	d->count++;
	d->bytes += d->spoolsize;
	if (done_add(d, uid) == -1) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	return 0;
}

int
deliver_batch_full(const struct deliver *d)
{
	return d->slots != NULL &&
	    (d->used >= d->nslots || d->batchbytes >= BATCH_BYTES);
}

static void
slots_release(struct deliver *d, int from)
{
	int i;

	for (i = from; i < d->used; i++)
		maildir_tmp_abort(&d->slots[i].tmp);
	for (i = 0; i < d->used; i++) {
		free(d->slots[i].folder);
		free(d->slots[i].uidl);
		d->slots[i].folder = d->slots[i].uidl = NULL;
	}
	d->used = 0;
	d->batchbytes = 0;
}

/*
 * The batch commit. fsync per message costs a journal commit each
 * (milliseconds on a busy disk), so a batch is made durable with one
 * syncfs(2) for all its files and the intent file, one fsync of the
 * state directory for the intents, one fsync of new/ for all the links:
 *   a. every message written out; the state with the intents written
 *      to STATE.tmp;
 *   b. syncfs: the messages' data and STATE.tmp are on disk;
 *   c. STATE.tmp renamed over STATE, its directory fsync'd: the intents
 *      are durable before any message appears in new/;
 *   d. each message linked into new/ (its final name); new/ fsync'd:
 *      delivered;
 *   e. the state with the UIDs done and no intents, fsync'd and renamed
 *      (the directory is not fsync'd: if this rename is lost in a
 *      crash, the intents of step c are found in new/ and recorded by
 *      fstate_recover, the same outcome).
 */
int
deliver_flush(struct deliver *d, char *err, size_t errlen)
{
	int i, linked = 0, rc = 0;
	char serr[512];

	if (d->slots == NULL || d->used == 0)
		return 0;
	for (i = 0; i < d->used; i++) {
		struct slot *s = &d->slots[i];

		if (maildir_tmp_finish(&s->tmp, err, errlen) == -1 ||
		    fstate_pending_add(d->st, s->folder, s->uid, s->uidl,
		    s->tmp.base) == -1) {
			if (errno == ENOMEM)
				snprintf(err, errlen, "%s", strerror(errno));
			goto fail;
		}
	}
	if (fstate_write_temp(d->st, 0, err, errlen) == -1)
		goto fail;
	if (syncfs(d->slots[0].tmp.fd) == -1) {
		snprintf(err, errlen, "%s: syncfs: %s", d->acct->maildir,
		    strerror(errno));
		goto fail;
	}
	if (fstate_install(d->st, 1, err, errlen) == -1)
		goto fail;
	for (i = 0; i < d->used; i++) {
		if (maildir_tmp_link(&d->slots[i].tmp, NULL, NULL, 0, err,
		    errlen) == -1) {
			rc = -1;
			break;
		}
		linked++;
	}
	if (linked > 0 && maildir_sync_dir(d->acct->maildir, "new",
	    rc == -1 ? serr : err, rc == -1 ? sizeof(serr) : errlen) == -1) {
		/* not known to be durable: the intents decide next time */
		fstate_pending_clear(d->st);
		slots_release(d, 0);
		return -1;
	}
	for (i = 0; i < linked; i++) {
		struct slot *s = &d->slots[i];

		if (state_done(d->st, s->folder, s->uid, s->uidl) == -1 ||
		    done_add(d, s->uid) == -1) {
			snprintf(err, errlen, "%s", strerror(errno));
			fstate_pending_clear(d->st);
			slots_release(d, 0);
			return -1;
		}
		d->count++;
		d->bytes += s->tmp.wsize;
	}
	fstate_pending_clear(d->st);
	if (fstate_write_temp(d->st, 1, rc == -1 ? serr : err,
	    rc == -1 ? sizeof(serr) : errlen) == -1 ||
	    fstate_install(d->st, 0, rc == -1 ? serr : err,
	    rc == -1 ? sizeof(serr) : errlen) == -1) {
		/* the intents on disk say the same: fstate_recover */
		d->ndone -= (size_t)linked <= d->ndone ? (size_t)linked : d->ndone;
		rc = -1;
	}
	slots_release(d, linked);
	return rc;
fail:
	fstate_pending_clear(d->st);
	slots_release(d, 0);
	return -1;
}

unsigned long
deliver_count(const struct deliver *d)
{
	return d->count;
}

unsigned long long
deliver_bytes(const struct deliver *d)
{
	return d->bytes;
}

unsigned long
deliver_tempfails(const struct deliver *d)
{
	return d->tempfails;
}

unsigned long
deliver_permfails(const struct deliver *d)
{
	return d->permfails;
}

size_t
deliver_take_done(struct deliver *d, unsigned long **uids_r)
{
	size_t n = d->ndone;

	*uids_r = d->done;
	d->ndone = 0;
	return n;
}

void
deliver_free(struct deliver *d)
{
	if (d == NULL)
		return;
	deliver_abort(d);
	if (d->slots != NULL) {
		slots_release(d, 0);
		free(d->slots);
	}
	if (d->spool != -1)
		close(d->spool);
	free(d->done);
	free(d);
}
