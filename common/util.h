/*
 * util: small helpers every part needs: clocks, sizes written by people
 * ("64k", "1m"), durations, and full reads/writes on plain descriptors.
 */
#ifndef MIGD_UTIL_H
#define MIGD_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Monotonic clock. */
uint64_t now_ms(void);
uint64_t now_ns(void);
/* Wall clock, nanoseconds since the epoch. */
int64_t wall_ns(void);

/*
 * Parse a size: a decimal number with an optional binary suffix
 * k/K, m/M, g/G, t/T (powers of 1024; "KiB", "MB" style suffixes also
 * accepted, all binary). Returns 0 or -EINVAL (junk) / -ERANGE (overflow).
 */
int parse_size(const char *text, uint64_t *out);
/*
 * Parse a rate in bytes per second: "125000000", "100m", "100m/s", "1.5g",
 * "10MiB/s" (binary multiples, as parse_size), or bits with a "bit" suffix, decimal
 * as network people mean it: "1gbit", "100mbit/s". Returns 0, -EINVAL
 * (junk) or -ERANGE (above 1e18).
 */
int parse_rate(const char *text, uint64_t *out);
/* Parse a non-negative integer that must fit in [min, max]. */
int parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out);
/* Parse yes/no/true/false/on/off/1/0. */
int parse_bool(const char *text, int *out);

/* strerror(errnum) with a lower-case first letter ("no such file or
 * directory"), for the end of a message: into buf, returns buf. */
char *errno_text(int errnum, char *buf, size_t len);

/* "64 KiB", "1.50 GiB": into buf, returns buf. */
char *format_size(uint64_t bytes, char *buf, size_t len);

/* Loop over short writes and EINTR. Returns 0 or -errno. */
int write_full(int fd, const void *buf, size_t len);

/* arr with room for need elements of elem bytes (a new block with *cap
 * updated, or arr itself when it has the room); NULL when out of memory,
 * arr then still valid. */
void *grow_to(void *arr, size_t *cap, size_t need, size_t elem);

/* 0 with arr (any pointer lvalue) grown to need elements, or -ENOMEM
 * (the caller includes errno.h). */
#define GROW(arr, cap, need)                                                  \
	__extension__({                                                       \
		void *p_ = grow_to((arr), &(cap), (need), sizeof(*(arr)));    \
		if (p_)                                                       \
			(arr) = p_;                                           \
		p_ ? 0 : -ENOMEM;                                             \
	})

/* mkdir -p; 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);

/* snprintf that reports truncation as -ENAMETOOLONG. */
int snprintf_checked(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
