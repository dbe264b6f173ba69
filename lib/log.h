/*
 * log -- one line per event, on stderr (`program[pid]: key=value ...`, what
 * supervisord and a terminal want) or to syslog. Messages are printf
 * formats, checked by the compiler. Control characters in the formatted
 * text are escaped so a peer cannot forge log lines. Passwords never go
 * through here.
 */
#ifndef LOG_H
#define LOG_H

#include <stdarg.h>

enum log_dest { LOG_TO_STDERR, LOG_TO_SYSLOG };

/* Sets the program name, the destination and verbosity (0 normal, >0 debug). */
void	log_init(const char *progname, enum log_dest, int verbose);
void	log_setverbose(int);
int	log_getverbose(void);
/* Re-reads getpid() for the prefix; call it in a child after fork(). */
void	log_pid(void);

/* Informational event. */
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Shown only when verbose. */
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Warning with ": strerror(errno)" appended. */
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Warning without errno. */
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Logs (with errno when non-zero at the call) and exits with status 1. */
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
/* Logs without errno and exits with status 1. */
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
