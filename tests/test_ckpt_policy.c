/*
 * The checkpoint policy as pure logic: Young's and Daly's intervals against
 * values computed apart from this code, Daly's efficiency model and its
 * optimum, the parameters and their errors, and firing: one period after
 * the last checkpoint, following a d that is measured as it goes, no burst
 * after downtime, pause and resume.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <string.h>

/* policies/policy.h comes through checkpoint.h: daemon/ has a policy.h too */
#include "checkpoint.h"

#define DAY 86400.0
#define HOUR 3600.0

static char err[256];

/* Relative closeness, for values of any size. */
static void assert_close(double got, double want, double rel, const char *what)
{
	cr_assert(fabs(got - want) <= rel * fabs(want), "%s: %.9g, expected %.9g", what, got,
		  want);
}

/* ---- the models ---- */

/* Expected values from Python's math module (double precision), and by
 * hand: d=60, M=24 h: sqrt(10,368,000) = 3219.938; x = 60/172800,
 * 1 + sqrt(x)/3 + x/9 = 1.00624994; 3219.938 * 1.00624994 - 60 = 3180.062. */
Test(ckpt_policy, daly_matches_values_computed_independently)
{
	assert_close(ckpt_daly_s(60, DAY), 3180.0621135984475, 1e-12, "d=60 s, M=24 h");
	assert_close(ckpt_daly_s(600, HOUR), 1697.7059780556401, 1e-12, "d=600 s, M=1 h");
	assert_close(ckpt_daly_s(10, HOUR), 261.70289929955806, 1e-12, "d=10 s, M=1 h");
	assert_close(ckpt_daly_s(300, 4 * HOUR), 2742.789760427013, 1e-12, "d=5 min, M=4 h");
	assert_close(ckpt_young_s(60, DAY), 3219.937887599697, 1e-12, "Young d=60 s, M=24 h");
	assert_close(ckpt_young_s(600, HOUR), 2078.460969082653, 1e-12, "Young d=600 s, M=1 h");
}

Test(ckpt_policy, daly_is_M_once_a_checkpoint_costs_twice_the_mtbf)
{
	cr_assert_float_eq(ckpt_daly_s(7200, HOUR), HOUR, 1e-9);
	cr_assert_float_eq(ckpt_daly_s(2 * HOUR, HOUR), HOUR, 1e-9, "d = 2M exactly");
	cr_assert_float_eq(ckpt_daly_s(1e6, HOUR), HOUR, 1e-9);
	/* just below 2M the formula gives 8M/9 */
	assert_close(ckpt_daly_s(2 * HOUR * (1 - 1e-12), HOUR), HOUR * 8 / 9, 1e-6, "d -> 2M");
}

Test(ckpt_policy, daly_is_below_young_by_about_two_thirds_of_d_when_d_is_small)
{
	static const double cases[][2] = {
		{ 1, DAY }, { 60, DAY }, { 10, HOUR }, { 30, 4 * HOUR }, { 600, 30 * DAY },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double d = cases[i][0], M = cases[i][1];
		double young = ckpt_young_s(d, M), daly = ckpt_daly_s(d, M);
		cr_assert_lt(daly, young, "d=%g M=%g: Daly %g, Young %g", d, M, daly, young);
		/* sqrt(2dM) (sqrt(d/2M)/3 + d/18M) - d = -2d/3 + O(d^1.5 / M^0.5) */
		cr_assert(fabs((young - daly) - 2 * d / 3) < 0.01 * d + 1e-9,
			  "d=%g M=%g: Young - Daly = %g, 2d/3 = %g", d, M, young - daly, 2 * d / 3);
	}
}

Test(ckpt_policy, bad_inputs_give_nan_never_a_period)
{
	static const double bad[][2] = {
		{ 0, HOUR }, { -60, HOUR }, { 60, 0 }, { 60, -HOUR }, { NAN, HOUR },
		{ 60, NAN }, { INFINITY, HOUR }, { 60, INFINITY },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert(isnan(ckpt_daly_s(bad[i][0], bad[i][1])), "Daly case %zu", i);
		cr_assert(isnan(ckpt_young_s(bad[i][0], bad[i][1])), "Young case %zu", i);
	}
	cr_assert(isnan(ckpt_daly_efficiency(0, 60, 0, HOUR)));
	cr_assert(isnan(ckpt_daly_efficiency(600, -1, 0, HOUR)));
	cr_assert(isnan(ckpt_daly_efficiency(600, 60, -1, HOUR)));
	cr_assert(isnan(ckpt_daly_efficiency(600, 60, 0, 0)));
	cr_assert(isnan(ckpt_daly_efficiency(NAN, 60, 0, HOUR)));
}

Test(ckpt_policy, efficiency_follows_dalys_wall_time)
{
	/* T_s / (M e^(R/M) (e^((tau+d)/M) - 1) T_s / tau), from Python */
	assert_close(ckpt_daly_efficiency(3600, 60, 120, DAY), 0.9615838458339234, 1e-12,
		     "tau=1 h, d=60 s, R=2 min, M=24 h");
	/* no checkpoint cost, no restart, failures rare: almost all work */
	double e = ckpt_daly_efficiency(1, 0, 0, 1e9);
	cr_assert(e < 1 && e > 1 - 1e-8, "%.12f", e);
	/* first order: 1 - d/tau - tau/2M - R/M */
	assert_close(ckpt_daly_efficiency(600, 0.6, 36, DAY),
		     1 - 0.001 - 600 / (2 * DAY) - 36 / DAY, 3e-5, "first order");
	/* a restart costs */
	cr_assert_lt(ckpt_daly_efficiency(3600, 60, 600, DAY), ckpt_daly_efficiency(3600, 60, 0, DAY));
}

/* The tau of highest efficiency, by golden-section search. */
static double best_tau(double d, double R, double M)
{
	const double g = (sqrt(5) - 1) / 2;
	double a = 1e-3, b = 5 * M;
	for (int i = 0; i < 300; i++) {
		double c = b - g * (b - a), e = a + g * (b - a);
		if (ckpt_daly_efficiency(c, d, R, M) > ckpt_daly_efficiency(e, d, R, M))
			b = e;
		else
			a = c;
	}
	return (a + b) / 2;
}

Test(ckpt_policy, dalys_interval_is_the_optimum_of_his_efficiency_model)
{
	static const double cases[][2] = { { 60, DAY }, { 600, HOUR }, { 10, HOUR } };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double d = cases[i][0], M = cases[i][1];
		double best = best_tau(d, 0, M), daly = ckpt_daly_s(d, M);
		assert_close(daly, best, 1e-3, "Daly's tau against the numerical optimum");
		double e_best = ckpt_daly_efficiency(best, d, 0, M);
		cr_assert(e_best - ckpt_daly_efficiency(daly, d, 0, M) < 1e-6, "case %zu", i);
		/* Young's is no closer */
		cr_assert_geq(ckpt_daly_efficiency(daly, d, 0, M),
			      ckpt_daly_efficiency(ckpt_young_s(d, M), d, 0, M), "case %zu", i);
	}
}

/* ---- the period in effect ---- */

Test(ckpt_policy, interval_is_fixed_daly_plus_d_or_the_fallback)
{
	const char *which = NULL;
	struct ckpt_params fixed = { .every_s = 1800 }, autom = { .every_s = 0 };
	cr_assert_float_eq(ckpt_interval_s(&fixed, 60, DAY, &which), 1800, 1e-9);
	cr_assert_str_eq(which, "fixed");
	cr_assert_float_eq(ckpt_interval_s(&fixed, 0, 0, &which), 1800, 1e-9);
	cr_assert_str_eq(which, "fixed");

	cr_assert_float_eq(ckpt_interval_s(&autom, 60, DAY, &which), 3180.0621135984475 + 60, 1e-6);
	cr_assert_str_eq(which, "daly");
	cr_assert_float_eq(ckpt_interval_s(&autom, 7200, HOUR, &which), HOUR + 7200, 1e-9);
	cr_assert_str_eq(which, "daly");

	static const double unknown[][2] = { { 0, DAY }, { -1, DAY }, { NAN, DAY }, { 60, 0 } };
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		which = NULL;
		cr_assert_float_eq(ckpt_interval_s(&autom, unknown[i][0], unknown[i][1], &which),
				   CKPT_FALLBACK_S, 1e-9, "case %zu", i);
		cr_assert_str_eq(which, "fallback", "case %zu", i);
	}
	cr_assert_float_eq(ckpt_interval_s(&autom, 60, DAY, NULL), 3240.0621135984475, 1e-6);
}

/* ---- parameters ---- */

static int parse(const char *const *kv_text, size_t n, struct ckpt_params *p)
{
	struct policy_kv kv[8];
	for (size_t i = 0; i < n; i++)
		kv[i] = (struct policy_kv){ kv_text[2 * i], kv_text[2 * i + 1] };
	err[0] = '\0';
	return ckpt_parse(kv, n, p, err, sizeof(err));
}

Test(ckpt_policy, parses_every_keep_on_failure_and_mtbf)
{
	struct ckpt_params p;
	const char *a[] = { "type", "checkpoint", "name", "nightly", "job", "bt-io.4",
			    "every", "30m" };
	cr_assert_eq(parse(a, 4, &p), 0, "%s", err);
	cr_assert_str_eq(p.job, "bt-io.4");
	cr_assert_float_eq(p.every_s, 1800, 1e-9);
	cr_assert_eq(p.keep, 3, "keep defaults to 3");
	cr_assert_eq(p.on_failure, CKPT_NOTIFY, "notify by default");
	cr_assert_float_eq(p.mtbf_s, 0, 1e-9, "no M unless given");

	const char *b[] = { "job", "lu", "every", "auto", "keep", "7", "on_failure", "restore",
			    "mtbf", "24h" };
	cr_assert_eq(parse(b, 5, &p), 0, "%s", err);
	cr_assert_float_eq(p.every_s, 0, 1e-9, "auto");
	cr_assert_eq(p.keep, 7);
	cr_assert_eq(p.on_failure, CKPT_RESTORE);
	cr_assert_float_eq(p.mtbf_s, DAY, 1e-9);

	/* as migctl sends them: seconds under _s keys */
	const char *c[] = { "job", "lu", "every_s", "90", "mtbf_s", "3600", "on_failure", "notify" };
	cr_assert_eq(parse(c, 4, &p), 0, "%s", err);
	cr_assert_float_eq(p.every_s, 90, 1e-9);
	cr_assert_float_eq(p.mtbf_s, HOUR, 1e-9);
	cr_assert_eq(p.on_failure, CKPT_NOTIFY);
}

Test(ckpt_policy, refuses_bad_parameters_naming_key_and_value)
{
	static const struct {
		const char *kv[6];
		size_t n;
		const char *names;
	} bad[] = {
		{ { "job", "lu", "every", "abc" }, 2, "every \"abc\"" },
		{ { "job", "lu", "every", "0" }, 2, "every \"0\"" },
		{ { "job", "lu", "every", "-30m" }, 2, "every \"-30m\"" },
		{ { "job", "lu", "every", "Auto" }, 2, "every \"Auto\"" },
		{ { "job", "lu", "every_s", "inf" }, 2, "every_s \"inf\"" },
		{ { "job", "lu", "every", "30m", "keep", "0" }, 3, "keep \"0\"" },
		{ { "job", "lu", "every", "30m", "keep", "-1" }, 3, "keep \"-1\"" },
		{ { "job", "lu", "every", "30m", "keep", "2.5" }, 3, "keep \"2.5\"" },
		{ { "job", "lu", "every", "30m", "keep", "" }, 3, "keep \"\"" },
		{ { "job", "lu", "every", "30m", "on_failure", "maybe" }, 3,
		  "on_failure \"maybe\"" },
		{ { "job", "lu", "every", "auto", "mtbf", "0" }, 3, "mtbf \"0\"" },
		{ { "job", "lu", "every", "auto", "mtbf", "soon" }, 3, "mtbf \"soon\"" },
		{ { "job", "l u", "every", "30m" }, 2, "job \"l u\"" },
		{ { "job", "", "every", "30m" }, 2, "job \"\"" },
		{ { "every", "30m" }, 1, "job: missing" },
		{ { "job", "lu" }, 1, "every: missing" },
		{ { "job", "lu", "every", "30m", "guests", "all" }, 3, NULL }, /* common: fine */
		{ { "job", "lu", "every", "30m", "stagger", "1s" }, 3, "\"stagger\"" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ckpt_params p;
		int rc = parse(bad[i].kv, bad[i].n, &p);
		if (!bad[i].names) {
			cr_assert_eq(rc, 0, "case %zu: %s", i, err);
			continue;
		}
		cr_assert_eq(rc, -EINVAL, "case %zu", i);
		cr_assert(strstr(err, bad[i].names), "case %zu: \"%s\" lacks %s", i, err,
			  bad[i].names);
	}
}

/* ---- firing ---- */

static struct ckpt_params fixed_every(double every_s)
{
	return (struct ckpt_params){ .job = "lu", .every_s = every_s, .keep = 3 };
}

static struct ckpt_params auto_with_mtbf(double mtbf_s)
{
	return (struct ckpt_params){ .job = "lu", .every_s = 0, .keep = 3, .mtbf_s = mtbf_s };
}

static int fire(const struct ckpt_params *p, struct policy_state *st, double now_s)
{
	int rc = ckpt_fire(p, st, now_s);
	cr_assert_geq(rc, 0, "fire at %g: %d", now_s, rc);
	return rc;
}

Test(ckpt_policy, fires_one_period_after_the_last_checkpoint_began)
{
	struct ckpt_params p = fixed_every(1800);
	struct policy_state st;
	ckpt_start(&p, &st, 1000);
	cr_assert_float_eq(ckpt_next_fire_s(&p, &st), 2800, 1e-9);
	cr_assert_eq(fire(&p, &st, 1000), 0, "not at creation");
	cr_assert_eq(fire(&p, &st, 2799.9), 0);
	cr_assert_eq(fire(&p, &st, 2800), 1);
	cr_assert(st.has_fired);
	cr_assert_float_eq(st.last_fire_s, 2800, 1e-9);
	cr_assert_eq(fire(&p, &st, 2800), 0, "twice at the same time");
	/* late by 100 s: the next is a period after this one, not on a grid */
	cr_assert_eq(fire(&p, &st, 4700), 1);
	cr_assert_float_eq(ckpt_next_fire_s(&p, &st), 6500, 1e-9);
	cr_assert_eq(ckpt_fire(&p, &st, NAN), -EINVAL);
}

Test(ckpt_policy, an_overdue_checkpoint_fires_once_after_downtime)
{
	struct ckpt_params p = fixed_every(600);
	struct policy_state st;
	ckpt_start(&p, &st, 0);
	cr_assert_eq(fire(&p, &st, 600), 1);
	/* migd down from 601 s to 10,000 s: fifteen periods missed */
	int fired = 0;
	for (int call = 0; call < 20; call++)
		fired += fire(&p, &st, 10000);
	cr_assert_eq(fired, 1);
	cr_assert_float_eq(ckpt_next_fire_s(&p, &st), 10600, 1e-9);
	cr_assert_eq(fire(&p, &st, 10599), 0);
	cr_assert_eq(fire(&p, &st, 10600), 1);
}

Test(ckpt_policy, a_paused_policy_never_fires_and_resumes_a_whole_period_on)
{
	struct ckpt_params p = fixed_every(600);
	struct policy_state st;
	ckpt_start(&p, &st, 0);
	cr_assert_eq(fire(&p, &st, 650), 1); /* next due 1250 */
	ckpt_pause(&p, &st, 700);
	cr_assert(isinf(ckpt_next_fire_s(&p, &st)));
	cr_assert_eq(fire(&p, &st, 1250), 0);
	cr_assert_eq(fire(&p, &st, 5000), 0);
	ckpt_resume(&p, &st, 2000);
	/* 650 + k * 600 after 2000: 2450; what fell due while paused is dropped */
	cr_assert_float_eq(ckpt_next_fire_s(&p, &st), 2450, 1e-9);
	cr_assert_eq(fire(&p, &st, 2001), 0);
	cr_assert_eq(fire(&p, &st, 2450), 1);
	cr_assert_float_eq(ckpt_next_fire_s(&p, &st), 3050, 1e-9);
	/* resuming a running policy changes nothing */
	ckpt_resume(&p, &st, 2500);
	cr_assert_float_eq(ckpt_next_fire_s(&p, &st), 3050, 1e-9);
}

Test(ckpt_policy, auto_waits_the_fallback_until_d_is_measured_then_follows_daly)
{
	struct ckpt_params p = auto_with_mtbf(DAY);
	struct policy_state st;
	const char *which;
	ckpt_start(&p, &st, 0);
	cr_assert_float_eq(ckpt_period_s(&p, &st, &which), CKPT_FALLBACK_S, 1e-9);
	cr_assert_str_eq(which, "fallback");
	cr_assert_float_eq(ckpt_next_fire_s(&p, &st), CKPT_FALLBACK_S, 1e-9);
	cr_assert_eq(fire(&p, &st, CKPT_FALLBACK_S), 1);
	/* the first checkpoint took 60 s: Daly's period from its start */
	ckpt_observe(&p, &st, 60, CKPT_FALLBACK_S + 60);
	cr_assert_float_eq(st.cost_s, 60, 1e-9);
	cr_assert_float_eq(ckpt_period_s(&p, &st, &which), 3240.0621135984475, 1e-6);
	cr_assert_str_eq(which, "daly");
	cr_assert_float_eq(ckpt_next_fire_s(&p, &st), CKPT_FALLBACK_S + 3240.0621135984475, 1e-6);
	double t = ckpt_next_fire_s(&p, &st);
	cr_assert_eq(fire(&p, &st, t - 1), 0);
	cr_assert_eq(fire(&p, &st, t), 1);
	cr_assert_float_eq(ckpt_next_fire_s(&p, &st), t + 3240.0621135984475, 1e-6);
}

Test(ckpt_policy, auto_follows_a_changing_d)
{
	struct ckpt_params p = auto_with_mtbf(HOUR);
	struct policy_state st;
	ckpt_start(&p, &st, 0);
	ckpt_observe(&p, &st, 10, 5);
	double small = ckpt_daly_s(10, HOUR) + 10;
	cr_assert_float_eq(ckpt_next_fire_s(&p, &st), small, 1e-6, "moved at once");
	cr_assert_eq(fire(&p, &st, small), 1);
	/* the guest grew: checkpoints now take 600 s; a longer period */
	ckpt_observe(&p, &st, 600, small + 600);
	double big = ckpt_daly_s(600, HOUR) + 600;
	cr_assert_gt(big, small);
	cr_assert_float_eq(ckpt_next_fire_s(&p, &st), small + big, 1e-6);
	/* the store got faster again: a shorter period, due at once if past */
	ckpt_observe(&p, &st, 10, small + 700);
	cr_assert_float_eq(ckpt_next_fire_s(&p, &st), 2 * small, 1e-6);
	cr_assert_eq(fire(&p, &st, small + 700), 1, "overdue under the new d: now");
	cr_assert_float_eq(ckpt_next_fire_s(&p, &st), small + 700 + small, 1e-6);
	/* nonsense measurements are ignored */
	double before = ckpt_next_fire_s(&p, &st);
	ckpt_observe(&p, &st, 0, small + 800);
	ckpt_observe(&p, &st, -5, small + 800);
	ckpt_observe(&p, &st, NAN, small + 800);
	ckpt_observe(&p, &st, INFINITY, small + 800);
	cr_assert_float_eq(st.cost_s, 10, 1e-9);
	cr_assert_float_eq(ckpt_next_fire_s(&p, &st), before, 1e-9);
}

Test(ckpt_policy, a_d_measured_while_paused_applies_from_the_resume)
{
	struct ckpt_params p = auto_with_mtbf(DAY);
	struct policy_state st;
	ckpt_start(&p, &st, 0);
	ckpt_pause(&p, &st, 100);
	ckpt_observe(&p, &st, 60, 200);
	cr_assert(isinf(ckpt_next_fire_s(&p, &st)), "still paused");
	ckpt_resume(&p, &st, 10000);
	double period = 3240.0621135984475;
	/* the first multiple of the new period after the resume: 4 * period */
	cr_assert_float_eq(ckpt_next_fire_s(&p, &st), 4 * period, 1e-6);
	/* a new d after the resume counts from the period's start, not from 0 */
	ckpt_observe(&p, &st, 61, 10001);
	cr_assert_float_eq(ckpt_next_fire_s(&p, &st), 3 * period + ckpt_daly_s(61, DAY) + 61,
			   1e-6);
	cr_assert_gt(ckpt_next_fire_s(&p, &st), 10001, "nothing made up for the pause");
}

Test(ckpt_policy, a_fixed_period_ignores_d)
{
	struct ckpt_params p = fixed_every(900);
	p.mtbf_s = HOUR;
	struct policy_state st;
	const char *which;
	ckpt_start(&p, &st, 0);
	ckpt_observe(&p, &st, 60, 10);
	cr_assert_float_eq(ckpt_next_fire_s(&p, &st), 900, 1e-9);
	cr_assert_float_eq(ckpt_period_s(&p, &st, &which), 900, 1e-9);
	cr_assert_str_eq(which, "fixed");
}

Test(ckpt_policy, auto_without_an_mtbf_stays_on_the_fallback)
{
	struct ckpt_params p = auto_with_mtbf(0);
	struct policy_state st;
	const char *which;
	ckpt_start(&p, &st, 0);
	cr_assert_eq(fire(&p, &st, CKPT_FALLBACK_S), 1);
	ckpt_observe(&p, &st, 60, CKPT_FALLBACK_S + 60);
	cr_assert_float_eq(ckpt_period_s(&p, &st, &which), CKPT_FALLBACK_S, 1e-9);
	cr_assert_str_eq(which, "fallback");
	cr_assert_float_eq(ckpt_next_fire_s(&p, &st), 2 * CKPT_FALLBACK_S, 1e-9);
}
