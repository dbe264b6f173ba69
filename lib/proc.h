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

/* Starts argv[0] (a path). 0, or -1 with err. opts may be NULL. */
int	proc_spawn(struct proc *, char *const argv[], int flags,
	    const struct proc_opts *, char *err, size_t errlen);
/*
 * Waits at most timeout_ms (-1: forever); on timeout kills the child
 * (SIGTERM, then SIGKILL) and returns EX_TEMPFAIL. Returns the exit
 * status, or 128+signal, or -1 on error. Closes the pipes still open.
 */
int	proc_wait(struct proc *, int timeout_ms);
/* Short name of a sysexits code: "EX_TEMPFAIL", or "exit N". */
const char *proc_exitname(int status);
/* 1 when the status means "try again later" (75, signals, unknown). */
int	proc_exit_temporary(int status);

#endif
