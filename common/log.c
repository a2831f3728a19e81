/*
 * log: see log.h. Lines are written with one write(2) each so that lines
 * from the threads and processes of one sfsd --all do not interleave.
 *
 * Under systemd, stderr is a stream to the journal ($JOURNAL_STREAM names
 * its device and inode): lines then start with the "<N>" priority prefix
 * of sd-daemon(3) and carry no time or pid, which the journal records
 * itself, so `journalctl -p warning` finds our warnings.
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *log_ident = "migd";
static int log_syslog;
static enum log_level log_level = LOG_LEVEL_INFO;
static int log_journal;
static char log_prefix[64];

/* stderr is the journal stream systemd gave us (not one a child of ours
 * redirected elsewhere): $JOURNAL_STREAM is "DEV:INODE" of that stream. */
static int stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	if (!env || sscanf(env, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *ident, int to_syslog)
{
	log_ident = ident;
	log_syslog = to_syslog;
	log_journal = stderr_is_journal();
	if (to_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	const char *env = getenv("MIGD_DEBUG");
	if (env && *env && strcmp(env, "0") != 0)
		log_level = LOG_LEVEL_DEBUG;
}

void log_set_level(enum log_level level) { log_level = level; }
enum log_level log_get_level(void) { return log_level; }

void log_set_prefix(const char *prefix)
{
	snprintf(log_prefix, sizeof(log_prefix), "%s", prefix ? prefix : "");
}

/* One line of stderr: "<N>" and the message for the journal, else time,
 * ident, pid and level first. Returns its length (truncated lines keep
 * their '\n'). */
static size_t format_line(char *line, size_t len, enum log_level level, int prio,
			  const char *msg, const char *suffix)
{
	static const char *names[] = { "error", "warning", "info", "debug" };
	const char *sep = *log_prefix ? ": " : "";
	int n;
	if (log_journal) {
		n = snprintf(line, len, "<%d>%s%s%s%s%s\n", prio, log_prefix, sep, msg,
			     suffix ? ": " : "", suffix ? suffix : "");
	} else {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		n = snprintf(line, len, "%02d:%02d:%02d.%03ld %s[%d] %s: %s%s%s%s%s\n", tm.tm_hour,
			     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, log_ident, (int)getpid(),
			     names[level], log_prefix, sep, msg, suffix ? ": " : "",
			     suffix ? suffix : "");
	}
	if (n < 0)
		return 0;
	if ((size_t)n >= len) {
		n = (int)len - 1;
		line[n - 1] = '\n';
	}
	return (size_t)n;
}

static void vlog(enum log_level level, const char *fmt, va_list ap, const char *suffix)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char msg[1024];
	char line[1280];

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_syslog) {
		syslog(prio[level], "%s%s%s%s%s", log_prefix, *log_prefix ? ": " : "",
		       msg, suffix ? ": " : "", suffix ? suffix : "");
		return;
	}
	size_t n = format_line(line, sizeof(line), level, prio[level], msg, suffix);
	if (n == 0)
		return;
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}

void log_info(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LEVEL_INFO, fmt, ap, NULL);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LEVEL_WARN, fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
}

void log_warnx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LEVEL_WARN, fmt, ap, NULL);
	va_end(ap);
}

void log_debug_(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LEVEL_DEBUG, fmt, ap, NULL);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, fmt, ap, strerror(saved));
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
