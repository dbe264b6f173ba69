/*
 * smtpd-lite -- SMTP, submission, SMTPS and LMTP server with a durable
 * queue and local delivery through lda (or any mda, a Maildir, LMTP).
 *
 * It listens, takes mail for the recipients its rules accept (and
 * refuses the rest at RCPT time: no open relay), says 250 only once the
 * message and its envelope are fsync'd in the queue, and delivers each
 * recipient with retries and bounces. It does not relay to other hosts
 * yet (a relay rule is refused by the configuration check).
 *
 * Processes: the master (root when started as root) binds and reads the
 * keys and tables; one process per connection runs as `user`; the queue
 * runner starts deliveries as each rule's user.
 *
 * Exit status: 0 after a clean stop or a good -n check, 1 on a fatal
 * error, 78 (EX_CONFIG) for a bad configuration, 64 for bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "log.h"
#include "smtpd.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/usr/local/etc"
#endif

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: smtpd-lite [-Finv] [-c file]\n");
	exit(EX_USAGE);
}

int
main(int argc, char *argv[])
{
	static struct config	 cf;
	const char		*path = SYSCONFDIR "/courriel/smtpd-lite.conf";
	char			 err[1024];
	int			 ch, check = 0, inetd = 0, verbose = 0;

	while ((ch = getopt(argc, argv, "c:Finv")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'F':
			break;	/* never daemonizes: supervisors want that */
		case 'i':
			inetd = 1;
			break;
		case 'n':
			check = 1;
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("smtpd-lite", LOG_TO_STDERR, verbose);

	if (config_load(&cf, path, err, sizeof(err)) == -1 ||
	    config_tls(&cf, err, sizeof(err)) == -1) {
		fprintf(stderr, "smtpd-lite: %s\n", err);
		return EX_CONFIG;
	}
	if (check) {
		printf("%s: configuration ok (%zu listeners, %zu rules)\n", path,
		    cf.nlisteners, cf.nrules);
		return 0;
	}
	if (master_run(&cf, inetd) == -1)
		return 1;
	config_free(&cf);
	return 0;
}
