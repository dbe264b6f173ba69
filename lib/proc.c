/*
 * proc -- starting children without a shell. The child gets an argv
 * array, a fresh environment, its own process group (so a timeout kills
 * whatever it started too), default signal handling, and no descriptor of
 * ours but its three standard ones. A failure between fork and exec
 * comes back to the parent as text through a close-on-exec pipe, so
 * "exec /usr/bin/x: No such file" is the caller's error, not a mystery
 * exit status.
 */
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "priv.h"
#include "proc.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC	(1U << 2)
#endif

/* How long a child gets between SIGTERM and SIGKILL. */
#define PROC_GRACE_MS	2000

static const char *const default_env[] = { "PATH=/usr/bin:/bin", NULL };

static void
closep(int *fd)
{
	if (*fd != -1) {
		close(*fd);
		*fd = -1;
	}
}

/* In the child: tell the parent what failed, then exit. */
static void __attribute__((noreturn))
child_fail(int fd, const char *what, int e)
{
	char	msg[512];
	int	n;

	n = snprintf(msg, sizeof(msg), "%s: %s", what, strerror(e));
	if (n > 0)
		(void)!write(fd, msg, (size_t)n < sizeof(msg) ? (size_t)n :
		    sizeof(msg) - 1);
	_exit(127);
}

/* In the child: fd moved to 3 or above (close-on-exec), or -1. */
static int
above2(int fd, int report)
{
	int	nfd;

	if (fd == -1 || fd > 2)
		return fd;
	if ((nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) == -1)
		child_fail(report, "fcntl", errno);
	return nfd;
}

static void __attribute__((noreturn))
child(char *const argv[], const struct proc_opts *o, int in, int out,
    int errfd, int report)
{
	char		 err[256], what[300];
	sigset_t	 all;
	int		 sig, null = -1;

	/* A daemon's ignored or caught signals must not leak into the child. */
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	setpgid(0, 0);

	/*
	 * A parent started with a closed 0, 1 or 2 may have got pipes there:
	 * move everything above 2 first so the dup2s cannot clobber a source.
	 */
	report = above2(report, report);
	in = above2(in, report);
	out = above2(out, report);
	errfd = above2(errfd, report);
	if (in == -1 || out == -1)
		if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1 ||
		    (null = above2(null, report)) == -1)
			child_fail(report, "/dev/null", errno);
	if (dup2(in != -1 ? in : null, 0) == -1 ||
	    dup2(out != -1 ? out : null, 1) == -1 ||
	    (errfd != -1 && dup2(errfd, 2) == -1))
		child_fail(report, "dup2", errno);
	/* Everything but 0, 1, 2 is closed at exec. */
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == -1) {
		int	fd;

		for (fd = 3; fd < 1024; fd++)
			if (fd != report)
				(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	}

	if (o != NULL && o->setid && priv_is_root() &&
	    priv_drop(o->uid, o->gid, err, sizeof(err)) == -1) {
		/* err already names the step; report it whole. */
		(void)!write(report, err, strlen(err));
		_exit(127);
	}
	if (o != NULL && o->setid && !priv_is_root() &&
	    (getuid() != o->uid || getgid() != o->gid)) {
		snprintf(err, sizeof(err), "cannot become %lu:%lu: not root",
		    (unsigned long)o->uid, (unsigned long)o->gid);
		(void)!write(report, err, strlen(err));
		_exit(127);
	}
	if (o != NULL && o->dir != NULL && chdir(o->dir) == -1) {
		snprintf(what, sizeof(what), "chdir %s", o->dir);
		child_fail(report, what, errno);
	}
	execve(argv[0], argv, (char *const *)(o != NULL && o->envp != NULL ?
	    o->envp : default_env));
	snprintf(what, sizeof(what), "exec %s", argv[0]);
	child_fail(report, what, errno);
}

int
proc_spawn(struct proc *p, char *const argv[], int flags,
    const struct proc_opts *o, char *err, size_t errlen)
{
	int	in[2] = { -1, -1 }, out[2] = { -1, -1 }, er[2] = { -1, -1 };
	int	rep[2] = { -1, -1 }, status;
	char	msg[512];
	ssize_t	n;

	p->pid = -1;
	p->in = p->out = p->err = -1;
	if (argv == NULL || argv[0] == NULL || argv[0][0] != '/') {
		snprintf(err, errlen, "spawn: program must be an absolute path");
		return -1;
	}
	if (((flags & PROC_STDIN) && pipe2(in, O_CLOEXEC) == -1) ||
	    ((flags & PROC_STDOUT) && pipe2(out, O_CLOEXEC) == -1) ||
	    ((flags & PROC_STDERR) && pipe2(er, O_CLOEXEC) == -1) ||
	    pipe2(rep, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "spawn %s: pipe: %s", argv[0],
		    strerror(errno));
		goto fail;
	}
	switch (p->pid = fork()) {
	case -1:
		snprintf(err, errlen, "spawn %s: fork: %s", argv[0],
		    strerror(errno));
		goto fail;
	case 0:
		child(argv, o, in[0], out[1], er[1], rep[1]);
	}
	/* Also here, so the group exists before we might signal it. */
	(void)setpgid(p->pid, p->pid);
	closep(&in[0]);
	closep(&out[1]);
	closep(&er[1]);
	closep(&rep[1]);
	do
		n = read(rep[0], msg, sizeof(msg) - 1);
	while (n == -1 && errno == EINTR);
	closep(&rep[0]);
	if (n > 0) {
		msg[n] = '\0';
		snprintf(err, errlen, "spawn: %s", msg);
		while (waitpid(p->pid, &status, 0) == -1 && errno == EINTR)
			;
		p->pid = -1;
		goto fail;
	}
	p->in = in[1];
	p->out = out[0];
	p->err = er[0];
	return 0;

fail:
	closep(&in[0]); closep(&in[1]);
	closep(&out[0]); closep(&out[1]);
	closep(&er[0]); closep(&er[1]);
	closep(&rep[0]); closep(&rep[1]);
	return -1;
}

static long long
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Waits for the child until deadline (-1: none), reading and discarding
 * what it still writes to pipes nobody reads any more (a child blocked on
 * a full pipe would never exit). 1 exited (status in *st), 0 timed out,
 * -1 error.
 */
static int
wait_until(struct proc *p, long long deadline, int *st)
{
	struct pollfd	pfd[3];
	char		junk[4096];
	long long	left;
	int		pidfd, n, i, tick = 1;
	pid_t		r;

	pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
	for (;;) {
		r = waitpid(p->pid, st, WNOHANG);
		if (r == p->pid)
			break;
		if (r == -1 && errno != EINTR) {
			if (pidfd != -1)
				close(pidfd);
			return -1;
		}
		left = deadline < 0 ? -1 : deadline - now_ms();
		if (deadline >= 0 && left <= 0) {
			if (pidfd != -1)
				close(pidfd);
			return 0;
		}
		n = 0;
		if (pidfd != -1) {
			pfd[n].fd = pidfd;
			pfd[n++].events = POLLIN;
		} else {
			/* No pidfd (old kernel): poll in growing steps. */
			if (left < 0 || left > tick)
				left = tick;
			if (tick < 50)
				tick *= 2;
		}
		if (p->out != -1) {
			pfd[n].fd = p->out;
			pfd[n++].events = POLLIN;
		}
		if (p->err != -1) {
			pfd[n].fd = p->err;
			pfd[n++].events = POLLIN;
		}
		if (n == 0) {
			struct timespec ts = { 0, left * 1000000L };

			nanosleep(&ts, NULL);
			continue;
		}
		if (poll(pfd, n, left > 0x7fffffff ? 0x7fffffff : (int)left)
		    == -1 && errno != EINTR)
			break;
		for (i = 0; i < n; i++) {
			if (pfd[i].fd == pidfd || !pfd[i].revents)
				continue;
			if (read(pfd[i].fd, junk, sizeof(junk)) <= 0) {
				if (pfd[i].fd == p->out)
					closep(&p->out);
				else
					closep(&p->err);
			}
		}
	}
	if (pidfd != -1)
		close(pidfd);
	return r == p->pid ? 1 : -1;
}

int
proc_wait(struct proc *p, int timeout_ms)
{
	int	st, r;

	if (p->pid <= 0) {
		errno = ECHILD;
		return -1;
	}
	/* Whatever the caller did not write is all the child gets. */
	closep(&p->in);
	r = wait_until(p, timeout_ms < 0 ? -1 : now_ms() + timeout_ms, &st);
	if (r == 0) {
		kill(-p->pid, SIGTERM);
		kill(p->pid, SIGTERM);
		r = wait_until(p, now_ms() + PROC_GRACE_MS, &st);
		if (r == 0) {
			kill(-p->pid, SIGKILL);
			kill(p->pid, SIGKILL);
			r = wait_until(p, -1, &st);
		}
		if (r == 1)
			r = 2;	/* killed: the status is ours, not its */
	}
	closep(&p->out);
	closep(&p->err);
	if (r == -1)
		return -1;
	p->pid = -1;
	if (r == 2)
		return EX_TEMPFAIL;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

static const struct {
	int		 code;
	const char	*name;
	int		 temporary;
} exits[] = {
	{ EX_OK,		"EX_OK",		0 },
	{ EX_USAGE,		"EX_USAGE",		0 },
	{ EX_DATAERR,		"EX_DATAERR",		0 },
	{ EX_NOINPUT,		"EX_NOINPUT",		0 },
	{ EX_NOUSER,		"EX_NOUSER",		0 },
	{ EX_NOHOST,		"EX_NOHOST",		0 },
	{ EX_UNAVAILABLE,	"EX_UNAVAILABLE",	0 },
	{ EX_SOFTWARE,		"EX_SOFTWARE",		0 },
	{ EX_OSERR,		"EX_OSERR",		1 },
	{ EX_OSFILE,		"EX_OSFILE",		0 },
	{ EX_CANTCREAT,		"EX_CANTCREAT",		0 },
	{ EX_IOERR,		"EX_IOERR",		0 },
	{ EX_TEMPFAIL,		"EX_TEMPFAIL",		1 },
	{ EX_PROTOCOL,		"EX_PROTOCOL",		0 },
	{ EX_NOPERM,		"EX_NOPERM",		0 },
	/* An administrator can fix a config; the mail should wait. */
	{ EX_CONFIG,		"EX_CONFIG",		1 },
};

const char *
proc_exitname(int status)
{
	static _Thread_local char	buf[32];
	size_t				i;

	for (i = 0; i < sizeof(exits) / sizeof(exits[0]); i++)
		if (exits[i].code == status)
			return exits[i].name;
	if (status > 128 && status < 128 + NSIG)
		snprintf(buf, sizeof(buf), "signal %d", status - 128);
	else
		snprintf(buf, sizeof(buf), "exit %d", status);
	return buf;
}

int
proc_exit_temporary(int status)
{
	size_t	i;

	for (i = 0; i < sizeof(exits) / sizeof(exits[0]); i++)
		if (exits[i].code == status)
			return exits[i].temporary;
	return 1;
}
