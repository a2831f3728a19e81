/*
 * cron: see cron.h.
 *
 * The next firing is searched on the wall clock of the zone, field by field
 * (a month that does not match skips to the next month, a day to the next
 * day, ...), on a "naive" calendar where a local time is just a number of
 * seconds as if the zone were UTC (timegm). Each matching local time is
 * then mapped back to real instants: none (the hour skipped in spring),
 * one, or two (the hour repeated in autumn), and the DST rules of cron.h
 * pick which of those fire. Real time is not monotonic in local time
 * around a change, so the search starts a few hours before the local time
 * of `after` and keeps the earliest instant.
 */
#include "cron.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define DST_WINDOW_S (3 * 3600) /* no zone shifts its clock by more */
#define SEARCH_YEARS 30

/* ---- parsing ------------------------------------------------------------- */

struct field_def {
	const char *name;
	int min, max;
	const char *const *names; /* names[i] is value min + i... see name_value */
};

static const char *const month_names[] = { "jan", "feb", "mar", "apr", "may", "jun",
					   "jul", "aug", "sep", "oct", "nov", "dec" };
static const char *const dow_names[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };

static const struct field_def fields[5] = {
	{ "minute", 0, 59, NULL },
	{ "hour", 0, 23, NULL },
	{ "day of month", 1, 31, NULL },
	{ "month", 1, 12, month_names },
	{ "day of week", 0, 7, dow_names },
};

/* A number or (for month and weekday) a three-letter name at *p. */
static int parse_value(const struct field_def *f, const char **p, int *out)
{
	const char *s = *p;
	if (isdigit((unsigned char)*s)) {
		long v = 0;
		while (isdigit((unsigned char)*s) && v < 1000)
			v = v * 10 + (*s++ - '0');
		*out = (int)v;
		*p = s;
		return 0;
	}
	if (!f->names || !isalpha((unsigned char)s[0]) || !isalpha((unsigned char)s[1]) ||
	    !isalpha((unsigned char)s[2]) || isalpha((unsigned char)s[3]))
		return -EINVAL;
	size_t n = f->min == 1 ? 12 : 7;
	for (size_t i = 0; i < n; i++) {
		if (strncasecmp(s, f->names[i], 3) == 0) {
			*out = (int)i + (f->min == 1 ? 1 : 0);
			*p = s + 3;
			return 0;
		}
	}
	return -EINVAL;
}

/* One comma-separated element: "*", "*\/n", "a", "a-b", "a-b/n", "a/n". */
static int parse_element(const struct field_def *f, const char *text, uint64_t *bits,
			 const char **why)
{
	const char *p = text;
	int lo, hi, step = 1;
	if (*p == '*') {
		lo = f->min;
		hi = f->max == 7 ? 6 : f->max;
		p++;
	} else {
		if (parse_value(f, &p, &lo) < 0) {
			*why = f->names ? "expected a number or a name" : "expected a number";
			return -EINVAL;
		}
		hi = lo;
		if (*p == '-') {
			p++;
			if (parse_value(f, &p, &hi) < 0) {
				*why = "expected the end of the range";
				return -EINVAL;
			}
		} else if (*p == '/') {
			hi = f->max == 7 ? 6 : f->max; /* "a/n": from a to the end */
		}
	}
	if (*p == '/') {
		p++;
		long v = 0;
		if (!isdigit((unsigned char)*p)) {
			*why = "expected a step number after '/'";
			return -EINVAL;
		}
		while (isdigit((unsigned char)*p) && v < 1000)
			v = v * 10 + (*p++ - '0');
		if (v < 1 || v > f->max) {
			*why = "step out of range";
			return -EINVAL;
		}
		step = (int)v;
	}
	if (*p != '\0') {
		*why = "unexpected character";
		return -EINVAL;
	}
	if (lo < f->min || lo > f->max || hi < f->min || hi > f->max) {
		*why = "out of range";
		return -ERANGE;
	}
	if (hi < lo) {
		*why = "range backwards";
		return -EINVAL;
	}
	for (int v = lo; v <= hi; v += step)
		*bits |= 1ull << (f->max == 7 && v == 7 ? 0 : v); /* 7 is Sunday too */
	return 0;
}

static int parse_field(const struct field_def *f, const char *text, uint64_t *bits,
		       const char *whole, char *err, size_t errlen)
{
	char copy[128], *save = NULL;
	*bits = 0;
	if (snprintf(copy, sizeof(copy), "%s", text) >= (int)sizeof(copy)) {
		snprintf(err, errlen, "cron \"%s\": %s: too long", whole, f->name);
		return -EINVAL;
	}
	if (*text == ',' || text[strlen(text) - 1] == ',' || strstr(text, ",,")) {
		snprintf(err, errlen, "cron \"%s\": %s \"%s\": empty list element", whole, f->name,
			 text);
		return -EINVAL;
	}
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		const char *why = "";
		int rc = parse_element(f, t, bits, &why);
		if (rc == -ERANGE) {
			snprintf(err, errlen, "cron \"%s\": %s \"%s\": out of range %d-%d", whole,
				 f->name, t, f->min, f->max);
			return -EINVAL;
		}
		if (rc < 0) {
			snprintf(err, errlen, "cron \"%s\": %s \"%s\": %s", whole, f->name, t, why);
			return -EINVAL;
		}
	}
	return 0;
}

/* Can a month of the mask ever have one of the days of dom? (Only matters
 * when the weekday is unrestricted: "0 0 30 2 *" never fires.) */
static bool dom_possible(const struct cron_expr *e)
{
	static const int max_days[13] = { 0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	for (int m = 1; m <= 12; m++)
		for (int d = 1; d <= max_days[m]; d++)
			if ((e->month & (1u << m)) && (e->dom & (1u << d)))
				return true;
	return false;
}

int cron_parse(const char *text, struct cron_expr *out, char *err, size_t errlen)
{
	char copy[256], *save = NULL, *part[6];
	int n = 0;
	memset(out, 0, sizeof(*out));
	if (!text || snprintf(copy, sizeof(copy), "%s", text) >= (int)sizeof(copy)) {
		snprintf(err, errlen, "cron expression: missing or longer than 255 bytes");
		return -EINVAL;
	}
	for (char *t = strtok_r(copy, " \t", &save); t && n < 6; t = strtok_r(NULL, " \t", &save))
		part[n++] = t;
	if (n != 5) {
		snprintf(err, errlen, "cron \"%s\": expected 5 fields (minute hour day-of-month "
			 "month day-of-week), got %s%d", text, n == 6 ? "more than " : "",
			 n == 6 ? 5 : n);
		return -EINVAL;
	}
	uint64_t bits[5];
	for (int i = 0; i < 5; i++)
		if (parse_field(&fields[i], part[i], &bits[i], text, err, errlen) < 0)
			return -EINVAL;
	out->minute = bits[0];
	out->hour = (uint32_t)bits[1];
	out->dom = (uint32_t)bits[2];
	out->month = (uint16_t)bits[3];
	out->dow = (uint8_t)bits[4];
	out->dom_star = part[2][0] == '*';
	out->dow_star = part[4][0] == '*';
	out->fixed_time = part[0][0] != '*' && part[1][0] != '*';
	if (out->dow_star && !dom_possible(out)) {
		snprintf(err, errlen, "cron \"%s\": day of month \"%s\" never occurs in month "
			 "\"%s\"", text, part[2], part[3]);
		return -EINVAL;
	}
	return 0;
}

/* ---- time zones ------------------------------------------------------------ */

/* migd is single-threaded: TZ is switched for a computation and put back. */
struct tz_saved {
	char *old;
	bool had;
};

static void tz_push(const char *tz, struct tz_saved *s)
{
	const char *old = getenv("TZ");
	s->had = old != NULL;
	s->old = old ? strdup(old) : NULL;
	setenv("TZ", tz && *tz ? tz : "UTC0", 1);
	tzset();
}

static void tz_pop(struct tz_saved *s)
{
	if (s->had && s->old)
		setenv("TZ", s->old, 1);
	else
		unsetenv("TZ");
	free(s->old);
	tzset();
}

int cron_tz_check(const char *tz, char *err, size_t errlen)
{
	char path[512];
	const char *dir = getenv("TZDIR");
	if (!tz || !*tz || strcmp(tz, "UTC") == 0)
		return 0;
	if (strlen(tz) >= CRON_TZ_MAX || strstr(tz, "..") || tz[0] == '/') {
		snprintf(err, errlen, "tz \"%.80s\": expected a zone name like Europe/Berlin", tz);
		return -EINVAL;
	}
	/* an Olson name has its file; a POSIX string ("CET-1CEST,...") has an offset */
	snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", tz);
	if (access(path, R_OK) == 0)
		return 0;
	if (strpbrk(tz, "0123456789") && isalpha((unsigned char)tz[0]) && !strchr(tz, '/'))
		return 0;
	snprintf(err, errlen, "tz \"%s\": unknown time zone (no %s; expected a name like "
		 "Europe/Berlin or UTC)", tz, path);
	return -EINVAL;
}

/* ---- the search ------------------------------------------------------------ */

static bool day_matches(const struct cron_expr *e, const struct tm *tm)
{
	bool dom = e->dom & (1u << tm->tm_mday), dow = e->dow & (1u << tm->tm_wday);
	/* Vixie: with a star (a plain '*' has every bit set) both must match;
	 * with both restricted either will do */
	return e->dom_star || e->dow_star ? dom && dow : dom || dow;
}

/* The first naive local minute >= naive that matches, or -1 past limit. */
static int64_t next_match(const struct cron_expr *e, int64_t naive, int64_t limit)
{
	struct tm tm;
	time_t t = (time_t)naive;
	while (t <= limit) {
		gmtime_r(&t, &tm);
		if (!(e->month & (1u << (tm.tm_mon + 1)))) {
			tm.tm_mon++, tm.tm_mday = 1, tm.tm_hour = 0, tm.tm_min = 0;
		} else if (!day_matches(e, &tm)) {
			tm.tm_mday++, tm.tm_hour = 0, tm.tm_min = 0;
		} else if (!(e->hour & (1u << tm.tm_hour))) {
			tm.tm_hour++, tm.tm_min = 0;
		} else if (!(e->minute & (1ull << tm.tm_min))) {
			tm.tm_min++;
		} else {
			return (int64_t)t;
		}
		tm.tm_sec = 0;
		t = timegm(&tm);
	}
	return -1;
}

/* The zone's local time of real instant u, as a naive number. */
static int64_t naive_of(int64_t u)
{
	struct tm tm;
	time_t t = (time_t)u;
	localtime_r(&t, &tm);
	return (int64_t)timegm(&tm);
}

/* The real instants whose local time is naive: 0, 1 or 2 of them, in order. */
static int instants_of(int64_t naive, int64_t out[2])
{
	int64_t offsets[3];
	int n_off = 0, n = 0;
	for (int k = -1; k <= 1; k++) {
		struct tm tm;
		time_t t = (time_t)(naive + k * 86400);
		localtime_r(&t, &tm);
		bool dup = false;
		for (int i = 0; i < n_off; i++)
			dup |= offsets[i] == tm.tm_gmtoff;
		if (!dup)
			offsets[n_off++] = tm.tm_gmtoff;
	}
	for (int i = 0; i < n_off; i++) {
		int64_t u = naive - offsets[i];
		if (naive_of(u) != naive)
			continue;
		bool dup = false;
		for (int j = 0; j < n; j++)
			dup |= out[j] == u;
		if (!dup && n < 2)
			out[n++] = u;
	}
	if (n == 2 && out[0] > out[1]) {
		int64_t x = out[0];
		out[0] = out[1];
		out[1] = x;
	}
	return n;
}

/* The moment the clock jumped over naive (spring): the first instant whose
 * local time is past it. Local time rises with real time around a gap. */
static int64_t gap_end(int64_t naive)
{
	int64_t lo = naive - 14 * 3600 - DST_WINDOW_S, hi = naive + 14 * 3600 + DST_WINDOW_S;
	while (hi - lo > 1) {
		int64_t mid = lo + (hi - lo) / 2;
		if (naive_of(mid) > naive)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

/* The instant local time naive fires at, the first one after after; or -1. */
static int64_t fire_instant(const struct cron_expr *e, int64_t naive, int64_t after)
{
	int64_t u[2];
	int n = instants_of(naive, u);
	if (n == 0) /* skipped by a change forward */
		return e->fixed_time && gap_end(naive) > after ? gap_end(naive) : -1;
	if (n == 2 && e->fixed_time) /* repeated: the first occurrence only */
		return u[0] > after ? u[0] : -1;
	for (int i = 0; i < n; i++)
		if (u[i] > after)
			return u[i];
	return -1;
}

static double next_in_zone(const struct cron_expr *e, int64_t after)
{
	int64_t naive = naive_of(after);
	int64_t limit = naive + (int64_t)SEARCH_YEARS * 366 * 86400;
	int64_t best = -1, best_naive = 0;
	/* start a DST window early: after a change back, earlier local times
	 * can still lie ahead in real time */
	int64_t cur = naive - DST_WINDOW_S;
	cur -= ((cur % 60) + 60) % 60;
	for (;;) {
		int64_t m = next_match(e, cur, limit);
		if (m < 0 || (best >= 0 && m > best_naive + DST_WINDOW_S))
			break;
		int64_t u = fire_instant(e, m, after);
		if (u >= 0 && (best < 0 || u < best)) {
			best = u;
			best_naive = m;
		}
		cur = m + 60;
	}
	return best < 0 ? INFINITY : (double)best;
}

double cron_next_s(const struct cron_expr *e, const char *tz, double after_s)
{
	if (!isfinite(after_s))
		return INFINITY;
	struct tz_saved saved;
	tz_push(tz, &saved);
	double r = next_in_zone(e, (int64_t)floor(after_s));
	tz_pop(&saved);
	return r;
}

size_t cron_next_n(const struct cron_params *p, double after_s, double *out, size_t n)
{
	struct tz_saved saved;
	size_t k = 0;
	if (!isfinite(after_s))
		return 0;
	tz_push(p->tz, &saved);
	double t = floor(after_s);
	while (k < n) {
		t = next_in_zone(&p->expr, (int64_t)t);
		if (!isfinite(t))
			break;
		out[k++] = t;
	}
	tz_pop(&saved);
	return k;
}

/* ---- the policy type -------------------------------------------------------- */

void cron_action_split(const char *action, char *verb, size_t verb_len, char *arg,
		       size_t arg_len)
{
	while (*action == ' ')
		action++;
	size_t n = strcspn(action, " \t");
	snprintf(verb, verb_len, "%.*s", (int)n, action);
	action += n;
	while (*action == ' ' || *action == '\t')
		action++;
	snprintf(arg, arg_len, "%s", action);
	for (char *e = arg + strlen(arg); e > arg && (e[-1] == ' ' || e[-1] == '\t');)
		*--e = '\0';
}

static int check_action(const char *action, char *err, size_t errlen)
{
	char verb[32], arg[CRON_ACTION_MAX];
	cron_action_split(action, verb, sizeof(verb), arg, sizeof(arg));
	if (strcmp(verb, "rebalance") == 0 && !*arg)
		return 0;
	if ((strcmp(verb, "evacuate") == 0 || strcmp(verb, "migrate") == 0) && *arg)
		return 0;
	snprintf(err, errlen, "action \"%s\": expected \"evacuate HOST[,HOST...]\", \"rebalance\" "
		 "or \"migrate SELECTOR\"", action);
	return -EINVAL;
}

static int parse_spread(const char *value, double *out)
{
	char *end;
	double v = strtod(value, &end);
	if (end == value || !isfinite(v) || v < 0)
		return -EINVAL;
	if (strcmp(end, "%") == 0)
		v /= 100;
	else if (*end)
		return -EINVAL;
	if (v > 1)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_one(const char *key, const char *value, struct cron_params *p, int *seen,
		     char *err, size_t errlen)
{
	if (strcmp(key, "schedule") == 0) {
		if (cron_parse(value, &p->expr, err, errlen) < 0)
			return -EINVAL;
		snprintf(p->schedule, sizeof(p->schedule), "%s", value);
		*seen |= 1;
	} else if (strcmp(key, "action") == 0) {
		if (strlen(value) >= sizeof(p->action)) {
			snprintf(err, errlen, "action: longer than %zu bytes", sizeof(p->action) - 1);
			return -EINVAL;
		}
		if (check_action(value, err, errlen) < 0)
			return -EINVAL;
		snprintf(p->action, sizeof(p->action), "%s", value);
		*seen |= 2;
	} else if (strcmp(key, "tz") == 0) {
		if (cron_tz_check(value, err, errlen) < 0)
			return -EINVAL;
		snprintf(p->tz, sizeof(p->tz), "%s", value);
	} else if (strcmp(key, "missed") == 0) {
		if (strcmp(value, "run-once") == 0)
			p->missed = CRON_MISSED_RUN_ONCE;
		else if (strcmp(value, "skip") == 0)
			p->missed = CRON_MISSED_SKIP;
		else {
			snprintf(err, errlen, "missed \"%s\": expected run-once or skip", value);
			return -EINVAL;
		}
	} else if (strcmp(key, "stagger") == 0 || strcmp(key, "stagger_s") == 0) {
		if (policy_parse_duration_s(value, &p->stagger_s) < 0) {
			snprintf(err, errlen, "stagger \"%s\": expected a duration like 30s, 1m or 0",
				 value);
			return -EINVAL;
		}
	} else if (strcmp(key, "spread") == 0) {
		if (parse_spread(value, &p->spread) < 0) {
			snprintf(err, errlen, "spread \"%s\": expected a share of memory like 10%% "
				 "or 0.1 (0 to 1)", value);
			return -EINVAL;
		}
	} else if (!policy_is_common_key(key)) {
		snprintf(err, errlen, "\"%s\": not a parameter of a cron policy (schedule, action, "
			 "tz, missed, stagger, spread)", key);
		return -EINVAL;
	}
	return 0;
}

int cron_policy_parse(const struct policy_kv *kv, size_t n_kv, struct cron_params *p,
		      char *err, size_t errlen)
{
	int seen = 0;
	*p = (struct cron_params){ .spread = 0.1 };
	for (size_t i = 0; i < n_kv; i++)
		if (parse_one(kv[i].key, kv[i].value ? kv[i].value : "", p, &seen, err, errlen) < 0)
			return -EINVAL;
	if (!(seen & 1)) {
		snprintf(err, errlen, "schedule: missing; a cron policy needs one like \"0 2 * * *\"");
		return -EINVAL;
	}
	if (!(seen & 2)) {
		snprintf(err, errlen, "action: missing (evacuate HOST, rebalance or migrate SELECTOR)");
		return -EINVAL;
	}
	return 0;
}

static void type_start(const void *params, struct policy_state *st, double now_s)
{
	const struct cron_params *p = params;
	*st = (struct policy_state){ 0 };
	st->anchor_s = now_s;
	st->next_fire_s = cron_next_s(&p->expr, p->tz, now_s);
}

static double type_next_fire_s(const void *params, const struct policy_state *st)
{
	(void)params;
	return st->paused ? INFINITY : st->next_fire_s;
}

static int type_fire(const void *params, struct policy_state *st, double now_s,
		     size_t n_selected, struct policy_pick *picks, size_t *n_picks)
{
	const struct cron_params *p = params;
	if (!isfinite(now_s) || (n_selected > 0 && !picks))
		return -EINVAL;
	*n_picks = 0;
	if (st->paused || now_s < st->next_fire_s)
		return 0;
	for (size_t i = 0; i < n_selected; i++) {
		picks[i].guest = i;
		picks[i].offset_s = (double)i * p->stagger_s;
	}
	*n_picks = n_selected;
	st->has_fired = true;
	st->last_fire_s = now_s;
	st->next_fire_s = cron_next_s(&p->expr, p->tz, now_s); /* late: no burst */
	return 1;
}

static void type_pause(const void *params, struct policy_state *st, double now_s)
{
	(void)params;
	(void)now_s;
	st->paused = true;
}

static void type_resume(const void *params, struct policy_state *st, double now_s)
{
	const struct cron_params *p = params;
	if (!st->paused)
		return;
	st->paused = false;
	st->next_fire_s = cron_next_s(&p->expr, p->tz, now_s);
}

static unsigned type_restore(const void *params, struct policy_state *st, double now_s)
{
	const struct cron_params *p = params;
	unsigned missed = 0;
	if (st->paused || !(st->next_fire_s <= now_s))
		return 0;
	for (double t = st->next_fire_s; t <= now_s && missed < 10000;
	     t = cron_next_s(&p->expr, p->tz, t))
		missed++;
	if (p->missed == CRON_MISSED_SKIP)
		st->next_fire_s = cron_next_s(&p->expr, p->tz, now_s);
	/* run-once: next_fire_s stays in the past, so it fires at the first
	 * tick, once; fire() then moves on to the first time after now */
	return missed;
}

static int type_parse(const struct policy_kv *kv, size_t n_kv, void *params, char *err,
		      size_t errlen)
{
	return cron_policy_parse(kv, n_kv, params, err, errlen);
}

const struct policy_type policy_cron_type = {
	.name = "cron",
	.params_size = sizeof(struct cron_params),
	.parse = type_parse,
	.start = type_start,
	.next_fire_s = type_next_fire_s,
	.fire = type_fire,
	.pause = type_pause,
	.resume = type_resume,
	.restore = type_restore,
};
