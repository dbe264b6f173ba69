/*
 * imapd -- an IMAP4rev1 server (RFC 3501, with IDLE, UIDPLUS, MOVE,
 * LITERAL+, NAMESPACE, ID, ENABLE, UNSELECT, CHILDREN and SPECIAL-USE)
 * over Maildir++ folders laid out as Dovecot lays them out, so that both
 * can serve one Maildir.
 *
 * It does not do POP3, mbox, quotas, ACLs, shared folders, Sieve, or any
 * SASL mechanism but PLAIN; it keeps no index beyond Dovecot's
 * dovecot-uidlist (which carries the sizes), because a Maildir scan is
 * fast enough. Parts: server.c (listeners, processes, privilege
 * separation), auth.c (before login), session.c (commands), mailbox.c
 * (the Maildir index), fetch.c, search.c, folders.c, config.c.
 *
 * Exit status: 0 after a clean stop or a valid -n check, 1 on a fatal
 * error, 78 (EX_CONFIG) for a configuration error.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "imapd.h"
#include "log.h"

static void
usage(void)
{
	fprintf(stderr, "usage: imapd [-Finv] [-c file]\n");
	exit(EX_USAGE);
}

int
main(int argc, char *argv[])
{
	struct settings	 cfg;
	const char	*path = SYSCONFDIR "/courriel/imapd.conf";
	char		 err[1024];
	int		 ch, check = 0, inetd = 0;

	memset(&cfg, 0, sizeof(cfg));
	while ((ch = getopt(argc, argv, "c:Finv")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'F':
			cfg.foreground = 1;
			break;
		case 'i':
			inetd = 1;
			break;
		case 'n':
			check = 1;
			break;
		case 'v':
			cfg.verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("imapd", cfg.foreground || inetd || check ? LOG_TO_STDERR :
	    LOG_TO_SYSLOG, cfg.verbose);
	if (settings_load(&cfg, path, 0, err, sizeof(err)) == -1) {
		fprintf(stderr, "imapd: %s\n", err);
		return EX_CONFIG;
	}
	if (check) {
		fprintf(stderr, "imapd: %s: configuration OK\n", path);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	if (inetd)
		return serve_connection(&cfg, 0, 1, 0, "inetd") == 0 ? 0 : 1;
	if (cfg.nlisten + cfg.nlisten_tls == 0) {
		fprintf(stderr, "imapd: %s: no listen or listen_tls address\n", path);
		return EX_CONFIG;
	}
	if (!cfg.foreground && daemon(0, 0) == -1)
		fatal("daemon");
	return server_run(&cfg) == 0 ? 0 : 1;
}
