/* interval: see interval.h. */
#include "interval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Keys of a policy.add that are not this type's business. */
static const char *const common_keys[] = { "type", "name", "guests" };

int policy_parse_duration_s(const char *text, double *out_s)
{
	static const struct {
		const char *unit;
		double seconds;
	} units[] = {
		{ "", 1 }, { "ms", 1e-3 }, { "s", 1 }, { "m", 60 }, { "min", 60 },
		{ "h", 3600 }, { "d", 86400 },
	};
	char *end;
	if (!text || (!(*text >= '0' && *text <= '9') && *text != '.'))
		return -EINVAL;
	double v = strtod(text, &end);
	if (!isfinite(v) || v < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(end, units[i].unit) == 0) {
			*out_s = v * units[i].seconds;
			return isfinite(*out_s) ? 0 : -EINVAL;
		}
	}
	return -EINVAL;
}

static int parse_count(const char *text, unsigned *out)
{
	char *end;
	if (!text || !(*text >= '0' && *text <= '9'))
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno == ERANGE || *end != '\0' || v > 0xffffffffull)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

bool policy_is_common_key(const char *key)
{
	for (size_t i = 0; i < sizeof(common_keys) / sizeof(common_keys[0]); i++)
		if (strcmp(key, common_keys[i]) == 0)
			return true;
	return false;
}

int interval_parse(const struct policy_kv *kv, size_t n_kv, struct interval_params *p,
		   char *err, size_t errlen)
{
	bool have_every = false;
	*p = (struct interval_params){ 0 };
	for (size_t i = 0; i < n_kv; i++) {
		const char *key = kv[i].key, *value = kv[i].value ? kv[i].value : "";
		if (strcmp(key, "every") == 0 || strcmp(key, "every_s") == 0) {
			if (policy_parse_duration_s(value, &p->every_s) < 0 || !(p->every_s > 0)) {
				snprintf(err, errlen,
					 "every \"%s\": expected a period above zero like 4m, 90s or 240",
					 value);
				return -EINVAL;
			}
			have_every = true;
		} else if (strcmp(key, "stagger") == 0 || strcmp(key, "stagger_s") == 0) {
			if (policy_parse_duration_s(value, &p->stagger_s) < 0) {
				snprintf(err, errlen,
					 "stagger \"%s\": expected a duration like 30s, 1m or 0", value);
				return -EINVAL;
			}
		} else if (strcmp(key, "count") == 0) {
			if (parse_count(value, &p->count) < 0) {
				snprintf(err, errlen,
					 "count \"%s\": expected a whole number of guests (0: all)",
					 value);
				return -EINVAL;
			}
		} else if (!policy_is_common_key(key)) {
			snprintf(err, errlen,
				 "\"%s\": not a parameter of an interval policy (every, stagger, count)",
				 key);
			return -EINVAL;
		}
	}
	if (!have_every) {
		snprintf(err, errlen, "every: missing; an interval policy needs a period like 4m");
		return -EINVAL;
	}
	return 0;
}

/* The first grid point strictly after now_s. Computed from the anchor, not
 * by adding periods to the last fire, so lateness never accumulates. */
static double grid_after(const struct interval_params *p, const struct policy_state *st,
			 double now_s)
{
	if (now_s < st->anchor_s)
		return st->anchor_s + p->every_s;
	double k = floor((now_s - st->anchor_s) / p->every_s) + 1;
	double t = st->anchor_s + k * p->every_s;
	/* floor() of a rounded quotient can land one point short */
	while (t <= now_s)
		t += p->every_s;
	return t;
}

void interval_start(const struct interval_params *p, struct policy_state *st, double now_s)
{
	*st = (struct policy_state){ 0 };
	st->anchor_s = now_s;
	st->next_fire_s = now_s + p->every_s;
}

double interval_next_fire_s(const struct interval_params *p, const struct policy_state *st)
{
	(void)p;
	return st->paused ? INFINITY : st->next_fire_s;
}

int interval_fire(const struct interval_params *p, struct policy_state *st, double now_s,
		  size_t n_selected, struct policy_pick *picks, size_t *n_picks)
{
	if (!isfinite(now_s) || (n_selected > 0 && !picks))
		return -EINVAL;
	*n_picks = 0;
	if (st->paused || now_s < st->next_fire_s)
		return 0;
	size_t k = p->count == 0 || p->count > n_selected ? n_selected : p->count;
	uint64_t cursor = n_selected ? st->cursor % n_selected : 0;
	for (size_t i = 0; i < k; i++) {
		picks[i].guest = (size_t)((cursor + i) % n_selected);
		picks[i].offset_s = (double)i * p->stagger_s;
	}
	*n_picks = k;
	st->cursor = n_selected ? (cursor + k) % n_selected : st->cursor;
	st->has_fired = true;
	st->last_fire_s = now_s;
	st->next_fire_s = grid_after(p, st, now_s);
	return 1;
}

void interval_pause(const struct interval_params *p, struct policy_state *st, double now_s)
{
	(void)p;
	(void)now_s;
	st->paused = true;
}

void interval_resume(const struct interval_params *p, struct policy_state *st, double now_s)
{
	if (!st->paused)
		return;
	st->paused = false;
	/* what fell due while paused is dropped, not made up for */
	st->next_fire_s = grid_after(p, st, now_s);
}

/* The generic face (policy.h): the same functions behind void pointers. */

static int type_parse(const struct policy_kv *kv, size_t n_kv, void *params, char *err,
		      size_t errlen)
{
	return interval_parse(kv, n_kv, params, err, errlen);
}

static void type_start(const void *params, struct policy_state *st, double now_s)
{
	interval_start(params, st, now_s);
}

static double type_next_fire_s(const void *params, const struct policy_state *st)
{
	return interval_next_fire_s(params, st);
}

static int type_fire(const void *params, struct policy_state *st, double now_s,
		     size_t n_selected, struct policy_pick *picks, size_t *n_picks)
{
	return interval_fire(params, st, now_s, n_selected, picks, n_picks);
}

static void type_pause(const void *params, struct policy_state *st, double now_s)
{
	interval_pause(params, st, now_s);
}

static void type_resume(const void *params, struct policy_state *st, double now_s)
{
	interval_resume(params, st, now_s);
}

const struct policy_type policy_interval_type = {
	.name = "interval",
	.params_size = sizeof(struct interval_params),
	.parse = type_parse,
	.start = type_start,
	.next_fire_s = type_next_fire_s,
	.fire = type_fire,
	.pause = type_pause,
	.resume = type_resume,
};
