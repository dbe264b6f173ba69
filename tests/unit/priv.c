/* Unit tests for lib/priv. Dropping is tested in forked children. */
#include <sys/wait.h>

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "priv.h"
#include "t.h"

/* Runs fn in a child; returns its exit status (0 = all its checks held). */
static int
in_child(int (*fn)(void))
{
	pid_t	pid;
	int	st;

	fflush(stdout);
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0)
		_exit(fn());
	if (waitpid(pid, &st, 0) == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* Each bit of the exit status is one failed expectation. */
static int
drop_nobody(void)
{
	char	err[256];
	gid_t	g[4];
	int	bad = 0;

	if (priv_drop(65534, 65534, err, sizeof(err)) == -1) {
		printf("# priv_drop: %s\n", err);
		return 1;
	}
	if (getuid() != 65534 || geteuid() != 65534 || getgid() != 65534 ||
	    getegid() != 65534)
		bad |= 2;
	if (setuid(0) != -1 || errno != EPERM)
		bad |= 4;
	if (setgid(0) != -1 || seteuid(0) != -1)
		bad |= 8;
	if (getgroups(4, g) != 1 || g[0] != 65534)
		bad |= 16;
	/* Dropping again to the same ids is a no-op, to others an error. */
	if (priv_drop(65534, 65534, err, sizeof(err)) != 0)
		bad |= 32;
	if (priv_drop(5001, 5001, err, sizeof(err)) != -1)
		bad |= 64;
	return bad;
}

static int
drop_numeric(void)
{
	char	err[256];

	if (priv_drop(5001, 5002, err, sizeof(err)) == -1) {
		printf("# priv_drop: %s\n", err);
		return 1;
	}
	return (getuid() != 5001 || getgid() != 5002) ? 2 :
	    setuid(0) != -1 ? 4 : 0;
}

static int
drop_root(void)
{
	char	err[256];

	return priv_drop(0, 0, err, sizeof(err)) == -1 ? 0 : 1;
}

int
main(void)
{
	char	err[256];
	uid_t	u;
	gid_t	g;

	T_EQ_INT(priv_lookup("nobody", &u, &g, err, sizeof(err)), 0,
	    "lookup nobody");
	T_EQ_INT(u, 65534, "nobody's uid");
	T_EQ_INT(priv_lookup("5001:5002", &u, &g, err, sizeof(err)), 0,
	    "lookup uid:gid");
	T_OK(u == 5001 && g == 5002, "uid:gid parsed (%u:%u)", u, g);
	T_EQ_INT(priv_lookup("5003", &u, &g, err, sizeof(err)), 0,
	    "lookup bare uid without passwd entry");
	T_OK(u == 5003 && g == 5003, "bare uid's gid is its number (%u)", g);
	T_EQ_INT(priv_lookup("0", &u, &g, err, sizeof(err)), 0, "lookup 0");
	T_OK(u == 0 && g == 0, "uid 0 takes root's gid from passwd");
	T_EQ_INT(priv_lookup("nobody:5", &u, &g, err, sizeof(err)), 0,
	    "lookup name:gid");
	T_OK(u == 65534 && g == 5, "name:gid parsed (%u:%u)", u, g);
	T_EQ_INT(priv_lookup("root:root", &u, &g, err, sizeof(err)), 0,
	    "lookup name:group");
	T_EQ_INT(priv_lookup("no-such-user-here", &u, &g, err, sizeof(err)), -1,
	    "unknown user refused");
	T_OK(strstr(err, "no-such-user-here") != NULL, "error names the user: %s",
	    err);
	T_EQ_INT(priv_lookup("nobody:no-such-group", &u, &g, err, sizeof(err)),
	    -1, "unknown group refused");
	T_EQ_INT(priv_lookup("", &u, &g, err, sizeof(err)), -1, "empty refused");
	T_EQ_INT(priv_lookup("4294967295", &u, &g, err, sizeof(err)), -1,
	    "(uid_t)-1 refused");
	T_EQ_INT(priv_lookup("99999999999", &u, &g, err, sizeof(err)), -1,
	    "uid overflow refused");

	T_EQ_INT(in_child(drop_root), 0, "dropping to uid 0 refused");
	if (!priv_is_root()) {
		T_OK(1, "priv_drop to nobody: skipped, not root");
		T_EQ_INT(priv_drop(5001, 5001, err, sizeof(err)), -1,
		    "priv_drop as non-root to other ids fails");
		T_OK(strstr(err, "not running as root") != NULL, "%s", err);
		return t_done();
	}
	T_EQ_INT(in_child(drop_nobody), 0,
	    "drop to nobody: all ids changed, setuid(0) fails, one group");
	T_EQ_INT(in_child(drop_numeric), 0,
	    "drop to numeric 5001:5002 without passwd entry");
	T_EQ_INT(getuid(), 0, "parent still root");
	return t_done();
}
