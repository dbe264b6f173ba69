/*
 * wipe -- what a process forked from the master forgets at once. The
 * master holds every secret of the configuration: the listeners' passwd
 * tables (hashes) and the relay rules' secrets tables (smarthost
 * passwords in the clear). A session parses hostile input and needs
 * neither: AUTH is checked by the master's checkers (master.c), relays
 * are the runner's. The runner relays, so it keeps the secrets, but it
 * never checks a password. Tables are wiped (explicit_bzero) before they
 * are freed, and so are the configuration's own copies of their specs
 * (an inline table is its spec).
 */
#include <string.h>

#include "conf.h"
#include "smtpd.h"
#include "table.h"

/* Wipes the values of key in every section of type (the spec text). */
static void
conf_wipe_key(struct conf *c, const char *type, const char *key)
{
	struct conf_section	*s;
	size_t			 i, j;

	if (c == NULL)
		return;
	for (i = 0; i < c->nsections; i++) {
		s = &c->sections[i];
		if (strcmp(s->type, type) != 0)
			continue;
		for (j = 0; j < s->nentries; j++)
			if (strcmp(s->entries[j].key, key) == 0)
				explicit_bzero(s->entries[j].value,
				    strlen(s->entries[j].value));
	}
}

void
config_wipe_auth(struct config *cf)
{
	size_t	 i;

	for (i = 0; i < cf->nlisteners; i++) {
		table_wipe_free(cf->listeners[i].auth);
		cf->listeners[i].auth = NULL;
	}
	conf_wipe_key(cf->conf, "listener", "auth");
}

void
config_wipe_secrets(struct config *cf)
{
	size_t	 i;

	config_wipe_auth(cf);
	for (i = 0; i < cf->nrules; i++) {
		table_wipe_free(cf->rules[i].secrets);
		cf->rules[i].secrets = NULL;
	}
	conf_wipe_key(cf->conf, "rule", "secrets");
}
