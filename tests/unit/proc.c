/* Unit tests for lib/proc: real children, real pipes. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "priv.h"
#include "proc.h"
#include "t.h"

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Reads fd to EOF into buf (NUL-terminated); closes it. */
static size_t
slurp(int *fd, char *buf, size_t size)
{
	size_t	len = 0;
	ssize_t	n;

	while (len < size - 1 && (n = read(*fd, buf + len, size - 1 - len)) > 0)
		len += n;
	buf[len] = '\0';
	close(*fd);
	*fd = -1;
	return len;
}

/* Runs argv, returns its stdout in out and its status in *st. */
static int
run(char *const argv[], const struct proc_opts *o, char *out, size_t size,
    int *st)
{
	struct proc	p;
	char		err[256];

	if (proc_spawn(&p, argv, PROC_STDOUT, o, err, sizeof(err)) == -1) {
		printf("# spawn %s: %s\n", argv[0], err);
		return -1;
	}
	slurp(&p.out, out, size);
	*st = proc_wait(&p, 10000);
	return 0;
}

static int
alive(pid_t pid)
{
	char	path[64], buf[512], *p;
	FILE	*f;

	/* A zombie nobody reaps (no init in a container) counts as dead. */
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (p == NULL || (p = strrchr(buf, ')')) == NULL)
		return 0;
	return p[2] != 'Z';
}

int
main(void)
{
	struct proc		 p;
	struct proc_opts	 o;
	char			 buf[65536], err[256];
	const char		*env[] = { "A=b", "C=d", NULL };
	double			 t0;
	int			 st, fd;
	pid_t			 gc;

	signal(SIGPIPE, SIG_IGN);
	setenv("COURRIEL_SECRET", "leak", 1);

	/* Round trip through cat. */
	T_EQ_INT(proc_spawn(&p, (char *[]){ "/bin/cat", NULL },
	    PROC_STDIN | PROC_STDOUT, NULL, err, sizeof(err)), 0, "spawn cat");
	T_OK(write(p.in, "hello\nworld\n", 12) == 12, "write to cat");
	close(p.in);
	p.in = -1;
	slurp(&p.out, buf, sizeof(buf));
	T_EQ_STR(buf, "hello\nworld\n", "cat echoes its input");
	T_EQ_INT(proc_wait(&p, 5000), 0, "cat exits 0");

	/* Exit codes and signals. */
	T_EQ_INT(run((char *[]){ "/bin/sh", "-c", "exit 75", NULL }, NULL, buf,
	    sizeof(buf), &st), 0, "spawn sh");
	T_EQ_INT(st, 75, "exit status 75 comes back");
	run((char *[]){ "/bin/sh", "-c", "exit 67", NULL }, NULL, buf,
	    sizeof(buf), &st);
	T_EQ_INT(st, EX_NOUSER, "exit status 67 comes back");
	run((char *[]){ "/bin/sh", "-c", "kill -9 $$", NULL }, NULL, buf,
	    sizeof(buf), &st);
	T_EQ_INT(st, 128 + 9, "killed by a signal is 128+signal");

	/* A fresh environment, and the one asked for. */
	run((char *[]){ "/usr/bin/env", NULL }, NULL, buf, sizeof(buf), &st);
	T_EQ_STR(buf, "PATH=/usr/bin:/bin\n", "default environment is PATH only");
	memset(&o, 0, sizeof(o));
	o.envp = env;
	run((char *[]){ "/usr/bin/env", NULL }, &o, buf, sizeof(buf), &st);
	T_EQ_STR(buf, "A=b\nC=d\n", "given environment, nothing inherited");

	/* chdir. */
	memset(&o, 0, sizeof(o));
	o.dir = "/tmp";
	run((char *[]){ "/bin/pwd", NULL }, &o, buf, sizeof(buf), &st);
	T_EQ_STR(buf, "/tmp\n", "child runs in dir");
	o.dir = "/nonexistent-dir";
	T_EQ_INT(proc_spawn(&p, (char *[]){ "/bin/pwd", NULL }, 0, &o, err,
	    sizeof(err)), -1, "chdir failure is a spawn error");
	T_OK(strstr(err, "chdir /nonexistent-dir") != NULL, "%s", err);

	/* exec failures come back as errors with a reason. */
	T_EQ_INT(proc_spawn(&p, (char *[]){ "/nonexistent/prog", NULL }, 0, NULL,
	    err, sizeof(err)), -1, "missing program is a spawn error");
	T_OK(strstr(err, "No such file") != NULL, "%s", err);
	T_EQ_INT(proc_spawn(&p, (char *[]){ "cat", NULL }, 0, NULL, err,
	    sizeof(err)), -1, "relative program refused (no PATH search)");

	/* No descriptor of ours leaks into the child. */
	fd = open("/dev/null", O_RDONLY);	/* deliberately not O_CLOEXEC */
	{
		char	script[128];

		snprintf(script, sizeof(script), "for f in 0 1 2 %d 9 10; do "
		    "[ -e /proc/$$/fd/$f ] && printf '%%s ' $f; done", fd);
		run((char *[]){ "/bin/sh", "-c", script, NULL }, NULL, buf,
		    sizeof(buf), &st);
	}
	T_EQ_STR(buf, "0 1 2 ", "our descriptors are not inherited");
	close(fd);

	/* stderr pipe. */
	T_EQ_INT(proc_spawn(&p, (char *[]){ "/bin/sh", "-c",
	    "echo out; echo err >&2", NULL }, PROC_STDOUT | PROC_STDERR, NULL,
	    err, sizeof(err)), 0, "spawn with stderr pipe");
	slurp(&p.err, buf, sizeof(buf));
	T_EQ_STR(buf, "err\n", "stderr read separately");
	T_EQ_INT(proc_wait(&p, 5000), 0, "wait drains unread stdout");

	/* A child writing more than a pipe holds, never read: no deadlock. */
	T_EQ_INT(proc_spawn(&p, (char *[]){ "/usr/bin/head", "-c", "1000000",
	    "/dev/zero", NULL }, PROC_STDOUT, NULL, err, sizeof(err)), 0,
	    "spawn a big writer");
	T_EQ_INT(proc_wait(&p, 5000), 0, "big unread output does not block");

	/* Timeout: SIGTERM first. */
	t0 = now();
	T_EQ_INT(proc_spawn(&p, (char *[]){ "/bin/sleep", "30", NULL }, 0, NULL,
	    err, sizeof(err)), 0, "spawn sleep");
	T_EQ_INT(proc_wait(&p, 200), EX_TEMPFAIL, "timeout gives EX_TEMPFAIL");
	T_OK(now() - t0 < 1.9, "SIGTERM ends it within the grace period "
	    "(%.2fs)", now() - t0);

	/* Timeout on a child that ignores SIGTERM, and its own child. */
	t0 = now();
	T_EQ_INT(proc_spawn(&p, (char *[]){ "/bin/sh", "-c",
	    "trap '' TERM; /bin/sleep 30 & echo $!; wait", NULL }, PROC_STDOUT,
	    NULL, err, sizeof(err)), 0, "spawn a stubborn child");
	buf[0] = '\0';
	{
		ssize_t n = read(p.out, buf, 32);
		buf[n > 0 ? n : 0] = '\0';
	}
	gc = (pid_t)atol(buf);
	T_OK(gc > 0 && alive(gc), "grandchild %ld runs", (long)gc);
	T_EQ_INT(proc_wait(&p, 200), EX_TEMPFAIL, "stubborn child timed out");
	T_OK(now() - t0 >= 1.9 && now() - t0 < 8, "SIGKILL after the grace "
	    "period (%.2fs)", now() - t0);
	/* SIGKILL is delivered asynchronously: give the grandchild 2 s. */
	for (t0 = now(); alive(gc) && now() - t0 < 2; )
		usleep(1000);
	T_OK(!alive(gc), "its process group was killed too");

	T_EQ_INT(proc_wait(&p, 100), -1, "waiting twice is an error");

	/* Switching ids in the child. */
	if (priv_is_root()) {
		memset(&o, 0, sizeof(o));
		o.setid = 1;
		o.uid = 65534;
		o.gid = 65534;
		run((char *[]){ "/usr/bin/id", NULL }, &o, buf, sizeof(buf), &st);
		T_EQ_STR(buf, "uid=65534(nobody) gid=65534(nogroup) "
		    "groups=65534(nogroup)\n", "child runs as nobody");
		o.uid = 0;
		T_EQ_INT(proc_spawn(&p, (char *[]){ "/usr/bin/id", NULL }, 0, &o,
		    err, sizeof(err)), -1, "switching to uid 0 refused");
		T_OK(strstr(err, "uid 0") != NULL, "%s", err);
	} else
		T_OK(1, "child runs as nobody: skipped, not root");

	/* The sysexits vocabulary. */
	T_EQ_STR(proc_exitname(75), "EX_TEMPFAIL", "name of 75");
	T_EQ_STR(proc_exitname(0), "EX_OK", "name of 0");
	T_EQ_STR(proc_exitname(1), "exit 1", "name of 1");
	T_EQ_STR(proc_exitname(137), "signal 9", "name of 137");
	T_EQ_INT(proc_exit_temporary(75), 1, "75 is temporary");
	T_EQ_INT(proc_exit_temporary(EX_NOUSER), 0, "67 is permanent");
	T_EQ_INT(proc_exit_temporary(EX_DATAERR), 0, "65 is permanent");
	T_EQ_INT(proc_exit_temporary(1), 1, "unknown 1 is temporary");
	T_EQ_INT(proc_exit_temporary(137), 1, "a signal is temporary");
	T_EQ_INT(proc_exit_temporary(-1), 1, "an error is temporary");
	T_EQ_INT(proc_exit_temporary(0), 0, "success is not temporary");
	return t_done();
}
