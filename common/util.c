/* util: see util.h. */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t now_ms(void) { return now_ns() / 1000000ull; }

int64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

int parse_rate(const char *text, uint64_t *out)
{
	static const struct {
		const char *suffix;
		double bps;
	} units[] = { { "", 1 }, { "k", 1024.0 }, { "m", 1048576.0 }, { "g", 1073741824.0 },
		      { "t", 1099511627776.0 }, { "bit", 1 / 8.0 }, { "kbit", 1e3 / 8 },
		      { "mbit", 1e6 / 8 }, { "gbit", 1e9 / 8 }, { "tbit", 1e12 / 8 } };
	char *end, suffix[16];
	if (!text || (!isdigit((unsigned char)*text) && *text != '.'))
		return -EINVAL;
	double v = strtod(text, &end);
	if (strlen(end) >= sizeof(suffix))
		return -EINVAL;
	snprintf(suffix, sizeof(suffix), "%s", end);
	size_t n = strlen(suffix);
	if (n >= 2 && strcmp(suffix + n - 2, "/s") == 0)
		suffix[n - 2] = '\0';
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(suffix, units[i].suffix) == 0) {
			double bps = v * units[i].bps;
			if (!(bps >= 0 && bps <= 1e18)) /* also NaN */
				return -ERANGE;
			*out = (uint64_t)(bps + 0.5);
			return 0;
		}
	}
	/* parse_size's spellings: "10MiB", "10mb" (/s stripped) */
	char whole[64];
	n = strlen(text);
	if (n >= sizeof(whole))
		return -EINVAL;
	memcpy(whole, text, n + 1);
	if (n >= 2 && strcmp(whole + n - 2, "/s") == 0)
		whole[n - 2] = '\0';
	return parse_size(whole, out);
}

int parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	if (!text || !isdigit((unsigned char)*text))
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end != '\0')
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int parse_size(const char *text, uint64_t *out)
{
	char *end;
	if (!text || !isdigit((unsigned char)*text))
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	while (*end == ' ')
		end++;
	unsigned shift = 0;
	switch (tolower((unsigned char)*end)) {
	case '\0': break;
	case 'b': shift = 0; end++; break;
	case 'k': shift = 10; end++; break;
	case 'm': shift = 20; end++; break;
	case 'g': shift = 30; end++; break;
	case 't': shift = 40; end++; break;
	default: return -EINVAL;
	}
	if (shift && *end) {
		/* accept k, kb, kib (any case) */
		if (strcasecmp(end, "b") != 0 && strcasecmp(end, "ib") != 0)
			return -EINVAL;
	} else if (*end) {
		return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

int parse_bool(const char *text, int *out)
{
	static const char *yes[] = { "1", "yes", "true", "on" };
	static const char *no[] = { "0", "no", "false", "off" };
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(text, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(text, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -EINVAL;
}

char *errno_text(int errnum, char *buf, size_t len)
{
	snprintf(buf, len, "%s", strerror(errnum));
	buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

char *format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	size_t u = 0;
	while (v >= 1024.0 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " B", bytes);
	else if (v == (double)(uint64_t)v)
		snprintf(buf, len, "%.0f %s", v, units[u]);
	else
		snprintf(buf, len, "%.2f %s", v, units[u]);
	return buf;
}

int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int mkdir_p(const char *path, mode_t mode)
{
	char tmp[4096];
	if (snprintf_checked(tmp, sizeof(tmp), "%s", path) < 0)
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int snprintf_checked(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return n;
}

void *grow_to(void *arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return arr;
	size_t n = *cap ? *cap * 2 : 64;
	while (n < need)
		n *= 2;
	void *p = realloc(arr, n * elem);
	if (p)
		*cap = n;
	return p;
}
