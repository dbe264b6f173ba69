/*
 * smtpc_cred.c -- credentials for smarthost AUTH (see smtpc.h), apart
 * from smtpc.c so that the client links without lib/table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "smtpc.h"
#include "table.h"

#define CRED_MAX	512

int
smtpc_credentials(struct table *secrets, const char *label,
    const char *passenv, char *user, size_t userlen, char *pass,
    size_t passlen, char *err, size_t errlen)
{
	char val[2 * CRED_MAX];
	const char *v;
	char *colon;
	int r;

	if (secrets != NULL) {
		r = table_lookup(secrets, label, val, sizeof(val));
		if (r != 1) {
			str_fmt(err, errlen, "%s: label '%.100s' %s",
			    table_spec(secrets), label, r == 0 ? "not found" :
			    strerror(errno));
			explicit_bzero(val, sizeof(val));
			return -1;
		}
		if ((colon = strchr(val, ':')) == NULL) {
			str_fmt(err, errlen, "%s: label '%.100s': expected"
			    " user:password", table_spec(secrets), label);
			explicit_bzero(val, sizeof(val));
			return -1;
		}
		*colon = '\0';
		if (str_lcpy(user, val, userlen) >= userlen ||
		    str_lcpy(pass, colon + 1, passlen) >= passlen) {
			str_fmt(err, errlen, "label '%.100s': credentials too"
			    " long", label);
			explicit_bzero(val, sizeof(val));
			explicit_bzero(pass, passlen);
			return -1;
		}
		explicit_bzero(val, sizeof(val));
		return 0;
	}
	if (passenv == NULL || (v = getenv(passenv)) == NULL) {
		str_fmt(err, errlen, "no secrets table and $%s is not set",
		    passenv != NULL ? passenv : "(none)");
		return -1;
	}
	if (str_lcpy(user, label, userlen) >= userlen ||
	    str_lcpy(pass, v, passlen) >= passlen) {
		str_fmt(err, errlen, "credentials too long");
		explicit_bzero(pass, passlen);
		return -1;
	}
	return 0;
}
