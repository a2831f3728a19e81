/*
 * checkpoint: see checkpoint.h. The firing logic is the interval type's,
 * run with the period in effect and with the grid anchored at the start of
 * the current period (as mtbf does), so a new d moves the next checkpoint
 * at once instead of at the end of the old period.
 */
#include "checkpoint.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interval.h"

double ckpt_young_s(double d, double M)
{
	if (!(d > 0) || !(M > 0) || !isfinite(d) || !isfinite(M))
		return NAN;
	return sqrt(2 * d * M);
}

double ckpt_daly_s(double d, double M)
{
	if (!(d > 0) || !(M > 0) || !isfinite(d) || !isfinite(M))
		return NAN;
	if (d >= 2 * M)
		return M;
	double x = d / (2 * M);
	return sqrt(2 * d * M) * (1 + sqrt(x) / 3 + x / 9) - d;
}

double ckpt_daly_efficiency(double tau, double d, double R, double M)
{
	if (!(tau > 0) || !(d >= 0) || !(R >= 0) || !(M > 0) || !isfinite(tau) || !isfinite(d) ||
	    !isfinite(R) || !isfinite(M))
		return NAN;
	/* T_s / T_w; expm1 keeps the digits when tau + d << M */
	return tau / (M * exp(R / M) * expm1((tau + d) / M));
}

double ckpt_interval_s(const struct ckpt_params *p, double d, double M, const char **which)
{
	const char *from = "fixed";
	double period = p->every_s;
	if (!(p->every_s > 0)) {
		double tau = ckpt_daly_s(d, M);
		from = isnan(tau) ? "fallback" : "daly";
		period = isnan(tau) ? CKPT_FALLBACK_S : tau + d;
	}
	if (which)
		*which = from;
	return period;
}

double ckpt_period_s(const struct ckpt_params *p, const struct policy_state *st,
		     const char **which)
{
	return ckpt_interval_s(p, st->cost_s, p->mtbf_s, which);
}

/* ---- parameters --------------------------------------------------------- */

/* migd's rule for names (db_name_check): what a job may be called. */
static bool job_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n >= CKPT_JOB_MAX || !isalnum((unsigned char)name[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
			return false;
	return true;
}

static int parse_keep(const char *text, unsigned *out)
{
	char *end;
	if (!isdigit((unsigned char)*text))
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno == ERANGE || *end != '\0' || v < 1 || v > 0xffffffffull)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* One key into p: 0, 1 when it is no key of this type, or -EINVAL. */
static int parse_one(const char *key, const char *value, struct ckpt_params *p, char *err,
		     size_t errlen)
{
	if (strcmp(key, "job") == 0) {
		if (!job_name_ok(value)) {
			snprintf(err, errlen, "job \"%s\": expected a job's name (letters, digits, "
				 "'.', '_' and '-')", value);
			return -EINVAL;
		}
		snprintf(p->job, sizeof(p->job), "%s", value);
	} else if (strcmp(key, "every") == 0 || strcmp(key, "every_s") == 0) {
		p->every_s = 0;
		if (strcmp(value, "auto") != 0 &&
		    (policy_parse_duration_s(value, &p->every_s) < 0 || !(p->every_s > 0))) {
			snprintf(err, errlen, "%s \"%s\": expected a period above zero like 30m or "
				 "1h, or auto", key, value);
			return -EINVAL;
		}
	} else if (strcmp(key, "keep") == 0) {
		if (parse_keep(value, &p->keep) < 0) {
			snprintf(err, errlen, "keep \"%s\": expected a whole number of checkpoints "
				 "to keep, 1 or more", value);
			return -EINVAL;
		}
	} else if (strcmp(key, "on_failure") == 0) {
		if (strcmp(value, "restore") == 0) {
			p->on_failure = CKPT_RESTORE;
		} else if (strcmp(value, "notify") == 0) {
			p->on_failure = CKPT_NOTIFY;
		} else {
			snprintf(err, errlen, "on_failure \"%s\": expected restore or notify", value);
			return -EINVAL;
		}
	} else if (strcmp(key, "mtbf") == 0 || strcmp(key, "mtbf_s") == 0) {
		if (policy_parse_duration_s(value, &p->mtbf_s) < 0 || !(p->mtbf_s > 0)) {
			snprintf(err, errlen, "%s \"%s\": expected a mean time between failures "
				 "above zero, like 24h or 30d", key, value);
			return -EINVAL;
		}
	} else {
		return 1;
	}
	return 0;
}

int ckpt_parse(const struct policy_kv *kv, size_t n_kv, struct ckpt_params *p, char *err,
	       size_t errlen)
{
	bool have_every = false;
	*p = (struct ckpt_params){ .keep = CKPT_KEEP_DEFAULT, .on_failure = CKPT_NOTIFY };
	for (size_t i = 0; i < n_kv; i++) {
		const char *key = kv[i].key, *value = kv[i].value ? kv[i].value : "";
		int rc = parse_one(key, value, p, err, errlen);
		if (rc < 0)
			return rc;
		if (rc == 1 && !policy_is_common_key(key)) {
			snprintf(err, errlen, "\"%s\": not a parameter of a checkpoint policy (job, "
				 "every, keep, on_failure, mtbf)", key);
			return -EINVAL;
		}
		have_every |= strcmp(key, "every") == 0 || strcmp(key, "every_s") == 0;
	}
	if (!*p->job) {
		snprintf(err, errlen, "job: missing; a checkpoint policy needs the job to "
			 "checkpoint, like --job bt-io");
		return -EINVAL;
	}
	if (!have_every) {
		snprintf(err, errlen, "every: missing; a checkpoint policy needs a period like "
			 "--every 30m, or --every auto");
		return -EINVAL;
	}
	return 0;
}

/* ---- firing -------------------------------------------------------------- */

/* The interval machinery with the period in effect; no guests: a
 * checkpoint takes the whole job. */
static struct interval_params as_interval(const struct ckpt_params *p,
					  const struct policy_state *st)
{
	return (struct interval_params){ .every_s = ckpt_period_s(p, st, NULL) };
}

void ckpt_start(const struct ckpt_params *p, struct policy_state *st, double now_s)
{
	struct policy_state zero = { 0 };
	struct interval_params ip = as_interval(p, &zero);
	interval_start(&ip, st, now_s);
}

double ckpt_next_fire_s(const struct ckpt_params *p, const struct policy_state *st)
{
	struct interval_params ip = as_interval(p, st);
	return interval_next_fire_s(&ip, st);
}

int ckpt_fire(const struct ckpt_params *p, struct policy_state *st, double now_s)
{
	struct interval_params ip = as_interval(p, st);
	size_t n_picks;
	int rc = interval_fire(&ip, st, now_s, 0, NULL, &n_picks);
	if (rc == 1) { /* a period starts at each checkpoint: its length may change */
		st->anchor_s = now_s;
		st->next_fire_s = now_s + ip.every_s;
	}
	return rc;
}

void ckpt_observe(const struct ckpt_params *p, struct policy_state *st, double d_s,
		  double now_s)
{
	(void)now_s;
	if (!(d_s > 0) || !isfinite(d_s) || d_s == st->cost_s)
		return;
	st->cost_s = d_s;
	if (!st->paused)
		st->next_fire_s = st->anchor_s + ckpt_period_s(p, st, NULL);
}

void ckpt_pause(const struct ckpt_params *p, struct policy_state *st, double now_s)
{
	struct interval_params ip = as_interval(p, st);
	interval_pause(&ip, st, now_s);
}

void ckpt_resume(const struct ckpt_params *p, struct policy_state *st, double now_s)
{
	if (!st->paused)
		return;
	struct interval_params ip = as_interval(p, st);
	interval_resume(&ip, st, now_s);
	/* the period that ends at the next checkpoint starts one before it */
	st->anchor_s = st->next_fire_s - ip.every_s;
}

/* ---- as a policy type (policy.h) ---- */

static int type_parse(const struct policy_kv *kv, size_t n_kv, void *params, char *err,
		      size_t errlen)
{
	return ckpt_parse(kv, n_kv, params, err, errlen);
}

static void type_start(const void *params, struct policy_state *st, double now_s)
{
	ckpt_start(params, st, now_s);
}

static double type_next_fire_s(const void *params, const struct policy_state *st)
{
	return ckpt_next_fire_s(params, st);
}

/* A checkpoint policy picks no guests: its firing checkpoints its job. */
static int type_fire(const void *params, struct policy_state *st, double now_s,
		     size_t n_selected, struct policy_pick *picks, size_t *n_picks)
{
	(void)n_selected;
	(void)picks;
	*n_picks = 0;
	return ckpt_fire(params, st, now_s);
}

static void type_pause(const void *params, struct policy_state *st, double now_s)
{
	ckpt_pause(params, st, now_s);
}

static void type_resume(const void *params, struct policy_state *st, double now_s)
{
	ckpt_resume(params, st, now_s);
}

static void type_observe(const void *params, struct policy_state *st, double d_s, double now_s)
{
	ckpt_observe(params, st, d_s, now_s);
}

const struct policy_type policy_checkpoint_type = {
	.name = "checkpoint",
	.params_size = sizeof(struct ckpt_params),
	.parse = type_parse,
	.start = type_start,
	.next_fire_s = type_next_fire_s,
	.fire = type_fire,
	.pause = type_pause,
	.resume = type_resume,
	.observe = type_observe,
};
