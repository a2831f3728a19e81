/*
 * mtbf: see mtbf.h. The firing logic is the interval type's, run with the
 * period Young's formula gives for the cost in effect; the grid is anchored
 * at the last firing (or creation), so a new cost moves the next firing at
 * once instead of at the end of the old period.
 */
#include "mtbf.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double mtbf_young_interval_s(double cost_s, double mtbf_s)
{
	if (!(cost_s > 0) || !(mtbf_s > 0) || !isfinite(cost_s) || !isfinite(mtbf_s))
		return NAN;
	double t = sqrt(2 * cost_s * mtbf_s);
	return t < cost_s ? cost_s : t;
}

int mtbf_parse(const struct policy_kv *kv, size_t n_kv, struct mtbf_params *p, char *err,
	       size_t errlen)
{
	int have_mtbf = 0;
	*p = (struct mtbf_params){ .cost_s = 60 };
	for (size_t i = 0; i < n_kv; i++) {
		const char *key = kv[i].key, *value = kv[i].value ? kv[i].value : "";
		double *dst = NULL;
		const char *what = NULL;
		if (strcmp(key, "mtbf") == 0 || strcmp(key, "mtbf_s") == 0) {
			dst = &p->mtbf_s, what = "a mean time between failures like 30d or 720h";
			have_mtbf = 1;
		} else if (strcmp(key, "cost") == 0 || strcmp(key, "cost_s") == 0) {
			dst = &p->cost_s, what = "the cost of one firing like 2m or 90s";
		} else if (strcmp(key, "stagger") == 0 || strcmp(key, "stagger_s") == 0) {
			if (policy_parse_duration_s(value, &p->stagger_s) < 0) {
				snprintf(err, errlen, "stagger \"%s\": expected a duration like 30s",
					 value);
				return -EINVAL;
			}
			continue;
		} else if (strcmp(key, "count") == 0) {
			char *end;
			unsigned long v = strtoul(value, &end, 10);
			if (!*value || *end || v > 0xffffffffu) {
				snprintf(err, errlen, "count \"%s\": expected a whole number of guests "
					 "(0: all)", value);
				return -EINVAL;
			}
			p->count = (unsigned)v;
			continue;
		} else if (!policy_is_common_key(key)) {
			snprintf(err, errlen, "\"%s\": not a parameter of an mtbf policy (mtbf, cost, "
				 "stagger, count)", key);
			return -EINVAL;
		} else {
			continue;
		}
		if (policy_parse_duration_s(value, dst) < 0 || !(*dst > 0)) {
			snprintf(err, errlen, "%s \"%s\": expected %s, above zero", key, value, what);
			return -EINVAL;
		}
	}
	if (!have_mtbf) {
		snprintf(err, errlen, "mtbf: missing; an mtbf policy needs the mean time between "
			 "failures, like 30d");
		return -EINVAL;
	}
	return 0;
}

double mtbf_cost_s(const struct mtbf_params *p, const struct policy_state *st)
{
	return st->cost_s > 0 ? st->cost_s : p->cost_s;
}

double mtbf_interval_s(const struct mtbf_params *p, const struct policy_state *st)
{
	return mtbf_young_interval_s(mtbf_cost_s(p, st), p->mtbf_s);
}

/* The interval machinery with the period in effect. */
static struct interval_params as_interval(const struct mtbf_params *p,
					  const struct policy_state *st)
{
	return (struct interval_params){ .every_s = mtbf_interval_s(p, st),
					 .stagger_s = p->stagger_s, .count = p->count };
}

static int type_parse(const struct policy_kv *kv, size_t n_kv, void *params, char *err,
		      size_t errlen)
{
	return mtbf_parse(kv, n_kv, params, err, errlen);
}

static void type_start(const void *params, struct policy_state *st, double now_s)
{
	struct policy_state zero = { 0 };
	struct interval_params ip = as_interval(params, &zero);
	interval_start(&ip, st, now_s);
}

static double type_next_fire_s(const void *params, const struct policy_state *st)
{
	struct interval_params ip = as_interval(params, st);
	return interval_next_fire_s(&ip, st);
}

static int type_fire(const void *params, struct policy_state *st, double now_s,
		     size_t n_selected, struct policy_pick *picks, size_t *n_picks)
{
	struct interval_params ip = as_interval(params, st);
	int rc = interval_fire(&ip, st, now_s, n_selected, picks, n_picks);
	if (rc == 1) /* the grid restarts at each firing: the period may change */
		st->anchor_s = now_s;
	if (rc == 1)
		st->next_fire_s = now_s + ip.every_s;
	return rc;
}

static void type_pause(const void *params, struct policy_state *st, double now_s)
{
	struct interval_params ip = as_interval(params, st);
	interval_pause(&ip, st, now_s);
}

static void type_resume(const void *params, struct policy_state *st, double now_s)
{
	struct interval_params ip = as_interval(params, st);
	interval_resume(&ip, st, now_s);
}

static void type_observe(const void *params, struct policy_state *st, double cost_s,
			 double now_s)
{
	(void)now_s;
	if (!(cost_s > 0) || !isfinite(cost_s) || cost_s == st->cost_s)
		return;
	st->cost_s = cost_s;
	if (!st->paused) /* one period of the new length from the grid's anchor */
		st->next_fire_s = st->anchor_s + mtbf_interval_s(params, st);
}

const struct policy_type policy_mtbf_type = {
	.name = "mtbf",
	.params_size = sizeof(struct mtbf_params),
	.parse = type_parse,
	.start = type_start,
	.next_fire_s = type_next_fire_s,
	.fire = type_fire,
	.pause = type_pause,
	.resume = type_resume,
	.observe = type_observe,
};
