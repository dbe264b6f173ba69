/*
 * priv -- dropping privileges for good. The order is groups first (they
 * need root), then the gids, then the uids; afterwards we check that
 * every real, effective and saved id is the new one and that neither
 * setuid(0) nor setgid(0) can bring root back.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "priv.h"

/* A decimal id: 0 and the value, or -1 (not a number, or (id_t)-1). */
static int
parse_id(const char *s, size_t n, unsigned long *r)
{
	unsigned long	v = 0;
	size_t		i;

	if (n == 0 || n > 10)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v >= UINT_MAX)	/* (uid_t)-1 means "no change" to set*id */
		return -1;
	*r = v;
	return 0;
}

static int
lookup_group(const char *g, size_t n, gid_t *gid_r, char *err, size_t errlen)
{
	struct group	 gr, *res;
	char		 name[256], buf[4096];
	unsigned long	 v;
	int		 e;

	if (parse_id(g, n, &v) == 0) {
		*gid_r = (gid_t)v;
		return 0;
	}
	if (n >= sizeof(name)) {
		snprintf(err, errlen, "group name too long");
		return -1;
	}
	memcpy(name, g, n);
	name[n] = '\0';
	e = getgrnam_r(name, &gr, buf, sizeof(buf), &res);
	if (res == NULL) {
		snprintf(err, errlen, "%s: %s", name,
		    e ? strerror(e) : "no such group");
		return -1;
	}
	*gid_r = gr.gr_gid;
	return 0;
}

int
priv_lookup(const char *user, uid_t *uid_r, gid_t *gid_r, char *err,
    size_t errlen)
{
	struct passwd	 pw, *res;
	char		 name[256], buf[4096];
	const char	*colon;
	unsigned long	 v;
	size_t		 n;
	int		 e;

	colon = strchr(user, ':');
	n = colon ? (size_t)(colon - user) : strlen(user);
	if (parse_id(user, n, &v) == 0) {
		*uid_r = (uid_t)v;
		/* A bare uid takes its passwd entry's group, or its own number. */
		e = getpwuid_r(*uid_r, &pw, buf, sizeof(buf), &res);
		*gid_r = res ? pw.pw_gid : (gid_t)v;
	} else {
		if (n == 0 || n >= sizeof(name)) {
			snprintf(err, errlen, "\"%s\": bad user name", user);
			return -1;
		}
		memcpy(name, user, n);
		name[n] = '\0';
		e = getpwnam_r(name, &pw, buf, sizeof(buf), &res);
		if (res == NULL) {
			snprintf(err, errlen, "%s: %s", name,
			    e ? strerror(e) : "no such user");
			return -1;
		}
		*uid_r = pw.pw_uid;
		*gid_r = pw.pw_gid;
	}
	if (colon != NULL &&
	    lookup_group(colon + 1, strlen(colon + 1), gid_r, err, errlen) == -1)
		return -1;
	return 0;
}

int
priv_is_root(void)
{
	return geteuid() == 0;
}

int
priv_drop(uid_t uid, gid_t gid, char *err, size_t errlen)
{
	uid_t	ru, eu, su;
	gid_t	rg, eg, sg, groups[2];
	int	n;

	if (getresuid(&ru, &eu, &su) == -1 || getresgid(&rg, &eg, &sg) == -1) {
		snprintf(err, errlen, "getresuid: %s", strerror(errno));
		return -1;
	}
	if (ru == uid && eu == uid && su == uid && rg == gid && eg == gid &&
	    sg == gid && uid != 0)
		return 0;
	if (uid == 0) {
		snprintf(err, errlen, "refusing to run as uid 0");
		return -1;
	}
	if (eu != 0) {
		snprintf(err, errlen, "cannot become %lu:%lu: not running as "
		    "root", (unsigned long)uid, (unsigned long)gid);
		return -1;
	}
	if (setgroups(1, &gid) == -1) {
		snprintf(err, errlen, "setgroups %lu: %s", (unsigned long)gid,
		    strerror(errno));
		return -1;
	}
	if (setresgid(gid, gid, gid) == -1) {
		snprintf(err, errlen, "setresgid %lu: %s", (unsigned long)gid,
		    strerror(errno));
		return -1;
	}
	if (setresuid(uid, uid, uid) == -1) {
		snprintf(err, errlen, "setresuid %lu: %s", (unsigned long)uid,
		    strerror(errno));
		return -1;
	}

	/* Trust, but verify: nothing of root may remain. */
	if (getresuid(&ru, &eu, &su) == -1 || getresgid(&rg, &eg, &sg) == -1 ||
	    ru != uid || eu != uid || su != uid ||
	    rg != gid || eg != gid || sg != gid) {
		snprintf(err, errlen, "ids did not all change to %lu:%lu",
		    (unsigned long)uid, (unsigned long)gid);
		return -1;
	}
	n = getgroups(2, groups);
	if (n < 0 || n > 1 || (n == 1 && groups[0] != gid)) {
		snprintf(err, errlen, "supplementary groups remain");
		return -1;
	}
	if (setuid(0) != -1 || seteuid(0) != -1) {
		snprintf(err, errlen, "could become root again after dropping "
		    "to %lu", (unsigned long)uid);
		return -1;
	}
	if (gid != 0 && (setgid(0) != -1 || setegid(0) != -1)) {
		snprintf(err, errlen, "could regain gid 0 after dropping to "
		    "%lu:%lu", (unsigned long)uid, (unsigned long)gid);
		return -1;
	}
	return 0;
}
