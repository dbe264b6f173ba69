/*
 * driver -- drives lib/dns and lib/smtpc for the relay tests. Built by
 * the tests with cc against the build's libmail.a and `pkg-config
 * libunbound`.
 *
 *   driver mx [-F fwd] [-T ms] [-m max] DOMAIN
 *   driver host [-F fwd] NAME
 *   driver send -a ADDR -p PORT [-H host] [-t no|maybe|starttls|implicit]
 *       [-c cafile] [-k] [-u user -w PASSVAR] [-A] [-n times] [-T ms]
 *       [-8] [-x] -f SENDER RCPT... < message
 *   driver relay [-F fwd] [-T ms] [-e helo] [-n batch] (-d DOMAIN -p PORT | -U URL [-S secrets]
 *       [-w PASSVAR]) [-c cafile] [-x] -f SENDER RCPT... < message
 *
 * Output: "status ok|temp|perm: why", "host PREF NAME ADDRS", and for
 * each recipient "result N RCPT ok|temp|perm CODE TEXT".
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns.h"
#include "smtpc.h"
#include "table.h"

static const char *
status_name(int st)
{
	return st == 0 ? "ok" : st == -1 ? "temp" : "perm";
}

static void
tracer(void *arg, int dir, const char *line)
{
	(void)arg;
	fprintf(stderr, "%c: %s\n", dir, line);
}

static void
print_host(const struct dns_host *h)
{
	size_t i;

	printf("host %u %s ", h->pref, h->name);
	for (i = 0; i < h->naddrs; i++)
		printf("%s%s", i ? "," : "", h->addrs[i]);
	printf("%s%s\n", h->naddrs ? "" : "-", h->temp ? " temp" : "");
}

static void
print_results(int k, const char *const *rcpts, const struct smtpc_result *r,
    size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		printf("result %d %s %s %d %s\n", k, rcpts[i],
		    status_name(r[i].status), r[i].code, r[i].text);
}

int
main(int argc, char **argv)
{
	struct dns_opts dopt;
	struct smtpc_opts o;
	struct smtpc_url url;
	struct smtpc_result *res;
	struct dns *dns = NULL;
	struct table *secrets = NULL;
	const char *cmd, *addr = "127.0.0.1", *host = NULL, *sender = NULL;
	const char *passvar = NULL, *user = NULL, *urlstr = NULL, *domain = NULL;
	char errbuf[512], pass[512], userbuf[512], info[128];
	struct stat sb;
	int ch, port = 25, times = 1, eightbit = 0, st, k;
	size_t n;

	if (argc < 2)
		errx(2, "usage: driver mx|host|send|relay ...");
	cmd = argv[1];
	argc--;
	argv++;
	memset(&dopt, 0, sizeof(dopt));
	memset(&o, 0, sizeof(o));
	o.helo = "driver.test";
	o.tls = SMTPC_TLS_NO;
	o.timeout_ms = 10000;
	o.data_timeout_ms = 10000;
	o.connect_timeout_ms = 5000;
	while ((ch = getopt(argc, argv, "8a:Ac:d:e:f:F:H:km:n:p:S:t:T:u:U:w:x")) != -1) {
		switch (ch) {
		case 'e': o.helo = optarg; break;
		case '8': eightbit = 1; break;
		case 'a': addr = optarg; break;
		case 'A': o.auth_plaintext = 1; break;
		case 'c': o.cafile = optarg; break;
		case 'd': domain = optarg; break;
		case 'f': sender = optarg; break;
		case 'F': dopt.forwarder = optarg; break;
		case 'H': host = optarg; break;
		case 'k': o.noverify = 1; break;
		case 'm': dopt.max_hosts = (size_t)atoi(optarg); break;
		case 'n': times = atoi(optarg); break;
		case 'p': port = atoi(optarg); break;
		case 'S':
			if (table_open(&secrets, optarg, errbuf, sizeof(errbuf)) == -1)
				errx(2, "%s", errbuf);
			break;
		case 't':
			o.tls = strcmp(optarg, "maybe") == 0 ? SMTPC_TLS_MAYBE :
			    strcmp(optarg, "starttls") == 0 ? SMTPC_TLS_STARTTLS :
			    strcmp(optarg, "implicit") == 0 ? SMTPC_TLS_IMPLICIT :
			    SMTPC_TLS_NO;
			break;
		case 'T':
			dopt.timeout_ms = o.timeout_ms = o.data_timeout_ms =
			    atoi(optarg);
			break;
		case 'u': user = optarg; break;
		case 'U': urlstr = optarg; break;
		case 'w': passvar = optarg; break;
		case 'x': o.trace = tracer; break;
		default: errx(2, "bad option");
		}
	}
	argc -= optind;
	argv += optind;
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (strcmp(cmd, "mx") == 0 || strcmp(cmd, "host") == 0) {
		struct dns_mx mx;
		size_t i;

		if (argc != 1)
			errx(2, "%s: one name", cmd);
		if ((dns = dns_new(&dopt, errbuf, sizeof(errbuf))) == NULL)
			errx(2, "%s", errbuf);
		if (cmd[0] == 'm') {
			st = dns_resolve_mx(dns, argv[0], &mx, errbuf, sizeof(errbuf));
		} else {
			memset(&mx, 0, sizeof(mx));
			mx.nhosts = 1;
			st = dns_resolve_host(dns, argv[0], &mx.hosts[0], errbuf,
			    sizeof(errbuf));
		}
		printf("status %s: %s\n", status_name(st), errbuf);
		if (st == DNS_OK) {
			printf("implicit %d\n", mx.implicit);
			for (i = 0; i < mx.nhosts; i++)
				print_host(&mx.hosts[i]);
		}
		dns_free(dns);
		return 0;
	}

	if (sender == NULL || argc < 1)
		errx(2, "%s: -f SENDER RCPT...", cmd);
	n = (size_t)argc;
	if ((res = calloc(n, sizeof(*res))) == NULL)
		err(2, "calloc");
	if (fstat(0, &sb) == -1 || !S_ISREG(sb.st_mode))
		errx(2, "stdin must be a file");
	if (user != NULL || (urlstr != NULL && (secrets != NULL ||
	    passvar != NULL))) {
		const char *label = user;

		if (urlstr != NULL) {
			if (smtpc_url_parse(urlstr, &url, errbuf, sizeof(errbuf)) == -1)
				errx(2, "%s", errbuf);
			label = url.label;
		}
		if (smtpc_credentials(secrets, label, passvar, userbuf,
		    sizeof(userbuf), pass, sizeof(pass), errbuf, sizeof(errbuf)) == -1)
			errx(2, "%s", errbuf);
		o.auth_user = userbuf;
		o.auth_pass = pass;
	}

	if (strcmp(cmd, "send") == 0) {
		struct smtpc *c;

		st = smtpc_connect(&c, &o, host != NULL ? host : addr, addr, port,
		    errbuf, sizeof(errbuf));
		printf("connect %s: %s\n", status_name(st), errbuf);
		if (st != 0) {
			free(res);
			return 1;
		}
		printf("tls %s\n", smtpc_tls_info(c, info, sizeof(info))[0] ?
		    info : "none");
		for (k = 1; k <= times; k++) {
			if (lseek(0, 0, SEEK_SET) == -1)
				err(2, "lseek");
			st = smtpc_send_fd(c, sender, (const char *const *)argv,
			    n, 0, (long long)sb.st_size, eightbit, res, errbuf,
			    sizeof(errbuf));
			printf("send %d %s: %s\n", k, status_name(st), errbuf);
			print_results(k, (const char *const *)argv, res, n);
			if (st != 0)
				break;
		}
		if (smtpc_usable(c))
			smtpc_quit(c);
		else
			smtpc_close(c);
	} else if (strcmp(cmd, "relay") == 0) {
		struct smtpc_route route;
		size_t done;

		memset(&route, 0, sizeof(route));
		if (urlstr != NULL) {
			if (smtpc_url_parse(urlstr, &url, errbuf, sizeof(errbuf)) == -1)
				errx(2, "%s", errbuf);
			route.smarthost = &url;
		} else if (domain == NULL)
			errx(2, "relay: -d DOMAIN or -U URL");
		route.domain = domain;
		route.port = port;
		if ((dns = dns_new(&dopt, errbuf, sizeof(errbuf))) == NULL)
			errx(2, "%s", errbuf);
		if (times <= 1) {
			done = smtpc_deliver(dns, &o, &route, sender,
			    (const char *const *)argv, n, 0, 0,
			    (long long)sb.st_size, eightbit, res);
			printf("delivered %zu\n", done);
			print_results(1, (const char *const *)argv, res, n);
		} else {
			/* -n: the same message times times, as one batch */
			struct smtpc_msg *m = calloc((size_t)times, sizeof(*m));
			struct smtpc_result *all = calloc((size_t)times * n,
			    sizeof(*all));

			if (m == NULL || all == NULL)
				err(2, "calloc");
			for (k = 0; k < times; k++) {
				m[k].sender = sender;
				m[k].rcpts = (const char *const *)argv;
				m[k].n = n;
				m[k].fd = 0;
				m[k].size = (long long)sb.st_size;
				m[k].eightbit = eightbit;
				m[k].results = all + (size_t)k * n;
			}
			done = smtpc_deliver_batch(dns, &o, &route, m,
			    (size_t)times);
			printf("delivered %zu\n", done);
			for (k = 0; k < times; k++)
				print_results(k + 1, (const char *const *)argv,
				    m[k].results, n);
			free(m);
			free(all);
		}
		dns_free(dns);
	} else
		errx(2, "unknown command %s", cmd);
	explicit_bzero(pass, sizeof(pass));
	if (secrets != NULL)
		table_close(secrets);
	free(res);
	return 0;
}
