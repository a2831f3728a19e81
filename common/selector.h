/*
 * selector: which guests a policy, `migctl migrate` or `migctl evacuate`
 * means. A selector is comma-separated terms: "all", "host:PATTERN",
 * "job:PATTERN" or a guest PATTERN, where a pattern is a name or an
 * fnmatch(3) glob (`bt*`, `n[1-4]`): "g1,g2,host:n3", "job:bt-*". A guest
 * is selected when any term matches it.
 *
 * One definition for migd's policies and migctl's commands, so that the
 * same words select the same guests everywhere.
 */
#ifndef MIGD_SELECTOR_H
#define MIGD_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>

#define SELECTOR_MAX 512

/* 0, or -EINVAL with err naming the bad term (or the whole, when empty or
 * longer than SELECTOR_MAX - 1 bytes). what names the argument in err
 * ("argument \"guests\"", "GUEST"). */
int selector_check(const char *sel, const char *what, char *err, size_t errlen);

/* Does sel select the guest named guest, on host, of job ("" or NULL: in
 * none)? sel must have passed selector_check. */
bool selector_match(const char *sel, const char *guest, const char *host, const char *job);

/* A single plain name (no comma, prefix or glob): it means that guest
 * alone, so callers can look it up directly. */
bool selector_is_name(const char *sel);

/* A host pattern list ("n1,n[5-8]"): does it match host? Checked with
 * selector_check_hosts (no prefixes, no "all"). */
int selector_check_hosts(const char *sel, char *err, size_t errlen);
bool selector_match_host(const char *sel, const char *host);

#endif
