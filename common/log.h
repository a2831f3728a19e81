/*
 * log: the one logging module of every migd/sfs program.
 *
 * Shaped after OpenBSD's log.c: stderr in the foreground, syslog when
 * daemonized; the level is checked before arguments are formatted so a
 * disabled log_debug costs one comparison. log_warn appends strerror(errno),
 * log_warnx does not. fatal() logs and exits 1. Under systemd (stderr is
 * the stream in $JOURNAL_STREAM) stderr lines carry sd-daemon(3)'s "<N>"
 * priority prefix instead of a time and pid.
 */
#ifndef MIGD_LOG_H
#define MIGD_LOG_H

#include <stdarg.h>

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* ident: program name shown in every line; to_syslog: 0 = stderr. */
void log_init(const char *ident, int to_syslog);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Prefix every line (e.g. the server name of an sfsd role). May be NULL. */
void log_set_prefix(const char *prefix);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define log_debug(...)                                         \
	do {                                                   \
		if (log_get_level() >= LOG_LEVEL_DEBUG)        \
			log_debug_(__VA_ARGS__);               \
	} while (0)

#endif
