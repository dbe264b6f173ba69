/*
 * proc -- children started with execv and an argv array (never a shell),
 * a fresh environment, pipes to stdin and from stdout/stderr, waited for
 * with a timeout; and the sysexits vocabulary of the mail path.
 */
#ifndef PROC_H
#define PROC_H

#include <stddef.h>
#include <sys/types.h>

struct proc {
	pid_t	pid;
	int	in;	/* write end to the child's stdin, or -1 */
	int	out;	/* read end of its stdout, or -1 */
	int	err;	/* read end of its stderr, or -1 */
};

#define PROC_STDIN	0x01	/* make a pipe for stdin (else /dev/null) */
#define PROC_STDOUT	0x02	/* make a pipe for stdout (else /dev/null) */
#define PROC_STDERR	0x04	/* make a pipe for stderr (else inherited) */

struct proc_opts {
	const char	*const *envp;	/* NULL: PATH=/usr/bin:/bin only */
	uid_t		 uid;		/* switch to uid/gid when root */
	gid_t		 gid;
	int		 setid;		/* use uid/gid */
	const char	*dir;		/* chdir here, or NULL */
};

/*
 * Starts argv[0] (an absolute path; no PATH search). 0, or -1 with err,
 * which includes failures in the child before exec (chdir, the id switch,
 * exec itself). opts may be NULL. The child gets default signal handling
 * and no descriptors but 0, 1, 2. A setid switch to uid 0 is refused.
 */
int	proc_spawn(struct proc *, char *const argv[], int flags,
	    const struct proc_opts *, char *err, size_t errlen);
/*
 * Waits at most timeout_ms (-1: forever); on timeout kills the child
 * (SIGTERM, then SIGKILL) and returns EX_TEMPFAIL. Returns the exit
 * status, or 128+signal, or -1 on error. Closes the pipes still open.
 * The child runs in its own process group, and the kills go to the whole
 * group. The stdin pipe is closed first; what the child still writes to
 * stdout/stderr pipes is read and thrown away, so it cannot block on a
 * full pipe. SIGCHLD must not be ignored (the child must stay waitable).
 */
int	proc_wait(struct proc *, int timeout_ms);
/* Short name of a sysexits code: "EX_TEMPFAIL", "signal N" (128+N), or
 * "exit N". */
const char *proc_exitname(int status);
/*
 * 1 when the status means "try again later": 75, EX_OSERR, EX_CONFIG (an
 * administrator can fix it; the mail should wait), signals, -1, and any
 * code that is not a sysexits code. Other sysexits codes are permanent.
 */
int	proc_exit_temporary(int status);

#endif
