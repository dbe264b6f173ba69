/*
 * priv -- dropping privileges. A switch sets the supplementary groups,
 * the real, effective and saved gid, then uid, and verifies that it
 * cannot be undone (setuid(0) and setgid(0) must fail).
 */
#ifndef PRIV_H
#define PRIV_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Looks up "user[:group]", each a name or a number: 0, or -1 with err. A
 * user without a group takes its passwd entry's gid, and a numeric uid
 * without a passwd entry its own number as gid.
 */
int	priv_lookup(const char *user, uid_t *uid_r, gid_t *gid_r, char *err,
	    size_t errlen);
/*
 * Becomes uid/gid for good. With the same ids as now (not root) it
 * does nothing. 0, or -1 with err (and the process should exit).
 * Supplementary groups become just gid. uid 0 is refused.
 */
int	priv_drop(uid_t uid, gid_t gid, char *err, size_t errlen);
/* 1 when running as root (euid 0). */
int	priv_is_root(void);

#endif
