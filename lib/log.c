/*
 * log -- line-per-event logging to stderr or syslog.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

static char		log_prog[64] = "courriel";
static enum log_dest	log_to = LOG_TO_STDERR;
static int		log_verbose;
static long		log_mypid;

void
log_init(const char *progname, enum log_dest dest, int verbose)
{
	const char	*p = strrchr(progname, '/');

	str_lcpy(log_prog, p ? p + 1 : progname, sizeof(log_prog));
	log_to = dest;
	log_verbose = verbose;
	log_mypid = (long)getpid();
	if (dest == LOG_TO_SYSLOG)
		openlog(log_prog, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_setverbose(int v)
{
	log_verbose = v;
}

int
log_getverbose(void)
{
	return log_verbose;
}

void
log_pid(void)
{
	log_mypid = (long)getpid();
}

/* Formats, escapes control characters, appends strerror when err != 0. */
static void
log_emit(int prio, int err, const char *fmt, va_list ap)
{
	char	 raw[2048], line[4096];
	size_t	 i, o = 0;
	int	 saved = errno;

	vsnprintf(raw, sizeof(raw), fmt, ap);
	for (i = 0; raw[i] != '\0' && o < sizeof(line) - 5; i++) {
		unsigned char	c = (unsigned char)raw[i];

		if (c < 0x20 || c == 0x7f) {
			snprintf(line + o, sizeof(line) - o, "\\x%02x", c);
			o += 4;
		} else
			line[o++] = (char)c;
	}
	line[o] = '\0';
	if (err != 0) {
		str_lcat(line, ": ", sizeof(line));
		str_lcat(line, strerror(err), sizeof(line));
	}
	if (log_to == LOG_TO_SYSLOG)
		syslog(prio, "%s", line);
	else {
		char	out[4200];
		int	n;

		n = snprintf(out, sizeof(out), "%s[%ld]: %s\n", log_prog,
		    log_mypid ? log_mypid : (long)getpid(), line);
		if (n > 0) {
			size_t	len = (size_t)n < sizeof(out) ? (size_t)n :
			    sizeof(out) - 1;
			/* one write(2) per line keeps lines whole */
			if (write(STDERR_FILENO, out, len) == -1)
				(void)0;
		}
	}
	errno = saved;
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_emit(LOG_INFO, 0, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	if (log_verbose <= 0)
		return;
	va_start(ap, fmt);
	log_emit(LOG_DEBUG, 0, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list	ap;
	int	e = errno;

	va_start(ap, fmt);
	log_emit(LOG_WARNING, e, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_emit(LOG_WARNING, 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;
	int	e = errno;

	va_start(ap, fmt);
	log_emit(LOG_CRIT, e, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_emit(LOG_CRIT, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
