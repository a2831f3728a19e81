/*
 * selector: see selector.h. Terms are checked as names are (letters,
 * digits, '.', '_', '-', starting with a letter or digit) except that the
 * glob characters * ? [ ] ! are allowed too, so a typo is refused at once
 * rather than silently selecting nothing.
 */
#include "selector.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#define NAME_MAX_LEN 64 /* as migd's names: 1 to 63 bytes */

static bool has_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

static bool pattern_ok(const char *p, size_t n)
{
	if (n == 0 || n >= NAME_MAX_LEN)
		return false;
	if (!isalnum((unsigned char)p[0]) && !strchr("*?[", p[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)p[i]) && !strchr("._-*?[]!", p[i]))
			return false;
	return true;
}

/* Calls fn for each term of sel, blanks around it trimmed; stops at the
 * first non-zero return and returns it. */
static int for_each_term(const char *sel, int (*fn)(const char *t, size_t n, void *arg),
			 void *arg)
{
	const char *p = sel;
	for (;;) {
		size_t len = strcspn(p, ",");
		const char *t = p, *end = p + len;
		while (t < end && *t == ' ')
			t++;
		while (end > t && end[-1] == ' ')
			end--;
		int rc = fn(t, (size_t)(end - t), arg);
		if (rc)
			return rc;
		if (!p[len])
			return 0;
		p += len + 1;
	}
}

struct check {
	bool hosts_only;
	const char *what;
	char *err;
	size_t errlen;
};

static int check_term(const char *t, size_t n, void *arg)
{
	struct check *c = arg;
	const char *name = t;
	size_t name_n = n;
	if (!c->hosts_only && n == 3 && strncmp(t, "all", 3) == 0)
		return 0;
	if (!c->hosts_only && n > 5 && strncmp(t, "host:", 5) == 0)
		name += 5, name_n -= 5;
	else if (!c->hosts_only && n > 4 && strncmp(t, "job:", 4) == 0)
		name += 4, name_n -= 4;
	if (pattern_ok(name, name_n))
		return 0;
	snprintf(c->err, c->errlen, "%s: \"%.*s\" is not %s", c->what, (int)(n < 80 ? n : 80), t,
		 c->hosts_only ? "a host name or glob"
			       : "all, host:NAME, job:NAME or a guest name (names may be globs)");
	return -EINVAL;
}

static int check(const char *sel, bool hosts_only, const char *what, char *err, size_t errlen)
{
	if (!sel || !*sel || strlen(sel) >= SELECTOR_MAX) {
		snprintf(err, errlen, "%s = \"%.40s\": expected a selector of 1 to %d bytes", what,
			 sel ? sel : "", SELECTOR_MAX - 1);
		return -EINVAL;
	}
	struct check c = { hosts_only, what, err, errlen };
	return for_each_term(sel, check_term, &c);
}

int selector_check(const char *sel, const char *what, char *err, size_t errlen)
{
	return check(sel, false, what, err, errlen);
}

int selector_check_hosts(const char *sel, char *err, size_t errlen)
{
	return check(sel, true, "HOST", err, errlen);
}

/* fnmatch of the n bytes at p against s. */
static bool match_n(const char *p, size_t n, const char *s)
{
	char pat[NAME_MAX_LEN];
	if (!s || !*s || n >= sizeof(pat))
		return false;
	memcpy(pat, p, n);
	pat[n] = '\0';
	return fnmatch(pat, s, 0) == 0;
}

struct match {
	const char *guest, *host, *job;
};

static int match_term(const char *t, size_t n, void *arg)
{
	const struct match *m = arg;
	if (n == 3 && strncmp(t, "all", 3) == 0)
		return 1;
	if (n > 5 && strncmp(t, "host:", 5) == 0)
		return match_n(t + 5, n - 5, m->host);
	if (n > 4 && strncmp(t, "job:", 4) == 0)
		return match_n(t + 4, n - 4, m->job);
	return match_n(t, n, m->guest);
}

bool selector_match(const char *sel, const char *guest, const char *host, const char *job)
{
	struct match m = { guest, host, job };
	return for_each_term(sel, match_term, &m) != 0;
}

static int match_host_term(const char *t, size_t n, void *arg)
{
	return match_n(t, n, arg);
}

bool selector_match_host(const char *sel, const char *host)
{
	return for_each_term(sel, match_host_term, (void *)host) != 0;
}

bool selector_is_name(const char *sel)
{
	return sel && !strchr(sel, ',') && !strchr(sel, ':') && !has_glob(sel) &&
	       strcmp(sel, "all") != 0;
}
