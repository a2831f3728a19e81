/*
 * The interval policy's timing as pure logic: fire times on a grid that
 * does not drift, staggered offsets, rotation when K < N, pause and resume,
 * and missed periods firing once. Times are plain numbers: no clock.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <string.h>

/* policies/policy.h comes through interval.h: daemon/ has a policy.h too */
#include "interval.h"

#define MAX_GUESTS 16

static char err[256];

static struct interval_params params(double every_s, double stagger_s, unsigned count)
{
	return (struct interval_params){ .every_s = every_s, .stagger_s = stagger_s, .count = count };
}

/* Fire at now_s; returns 1/0 and the picks' guest indexes in order. */
static int fire(const struct interval_params *p, struct policy_state *st, double now_s,
		size_t n_selected, struct policy_pick *picks, size_t *n_picks)
{
	int rc = interval_fire(p, st, now_s, n_selected, picks, n_picks);
	cr_assert_geq(rc, 0, "fire at %g: %d", now_s, rc);
	return rc;
}

Test(interval, fires_once_per_period_on_a_grid_from_creation)
{
	struct interval_params p = params(240, 0, 0);
	struct policy_state st;
	struct policy_pick picks[MAX_GUESTS];
	size_t n;
	interval_start(&p, &st, 1000);
	cr_assert_float_eq(interval_next_fire_s(&p, &st), 1240, 1e-9);
	cr_assert_eq(fire(&p, &st, 1000, 3, picks, &n), 0, "not at creation");
	cr_assert_eq(fire(&p, &st, 1239.999, 3, picks, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(fire(&p, &st, 1240, 3, picks, &n), 1);
	cr_assert_eq(n, 3);
	cr_assert(st.has_fired);
	cr_assert_float_eq(st.last_fire_s, 1240, 1e-9);
	cr_assert_float_eq(interval_next_fire_s(&p, &st), 1480, 1e-9);
	cr_assert_eq(fire(&p, &st, 1240, 3, picks, &n), 0, "twice at the same time");
	cr_assert_eq(fire(&p, &st, 1300, 3, picks, &n), 0);
	/* late by 7 s: fires, but the next one stays on the grid */
	cr_assert_eq(fire(&p, &st, 1487, 3, picks, &n), 1);
	cr_assert_float_eq(interval_next_fire_s(&p, &st), 1720, 1e-9);
}

Test(interval, starts_of_one_period_are_staggered)
{
	struct interval_params p = params(240, 30, 0);
	struct policy_state st;
	struct policy_pick picks[MAX_GUESTS];
	size_t n;
	interval_start(&p, &st, 0);
	cr_assert_eq(fire(&p, &st, 240, 4, picks, &n), 1);
	cr_assert_eq(n, 4);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(picks[i].guest, i);
		cr_assert_float_eq(picks[i].offset_s, 30.0 * (double)i, 1e-9, "pick %zu", i);
	}
}

Test(interval, fewer_than_all_rotates_through_the_selection)
{
	struct interval_params p = params(60, 10, 2);
	struct policy_state st;
	struct policy_pick picks[MAX_GUESTS];
	size_t n;
	static const size_t want[][2] = { { 0, 1 }, { 2, 3 }, { 4, 0 }, { 1, 2 }, { 3, 4 } };
	unsigned times_picked[5] = { 0 };
	interval_start(&p, &st, 0);
	for (size_t period = 0; period < 5; period++) {
		double now_s = 60.0 * (double)(period + 1);
		cr_assert_eq(fire(&p, &st, now_s, 5, picks, &n), 1);
		cr_assert_eq(n, 2);
		for (size_t i = 0; i < 2; i++) {
			cr_assert_eq(picks[i].guest, want[period][i], "period %zu pick %zu: %zu",
				     period, i, picks[i].guest);
			times_picked[picks[i].guest]++;
		}
		cr_assert_float_eq(picks[1].offset_s, 10, 1e-9);
	}
	for (size_t g = 0; g < 5; g++)
		cr_assert_eq(times_picked[g], 2, "every guest gets its turn");
}

Test(interval, a_selection_that_shrinks_keeps_rotating_within_it)
{
	struct interval_params p = params(60, 0, 3);
	struct policy_state st;
	struct policy_pick picks[MAX_GUESTS];
	size_t n;
	interval_start(&p, &st, 0);
	cr_assert_eq(fire(&p, &st, 60, 10, picks, &n), 1);
	cr_assert_eq(fire(&p, &st, 120, 10, picks, &n), 1); /* cursor now 6 */
	cr_assert_eq(fire(&p, &st, 180, 4, picks, &n), 1);
	cr_assert_eq(n, 3);
	for (size_t i = 0; i < n; i++)
		cr_assert_lt(picks[i].guest, 4);
	cr_assert_eq(picks[0].guest, 2); /* 6 mod 4 */
	cr_assert_eq(fire(&p, &st, 240, 2, picks, &n), 1);
	cr_assert_eq(n, 2, "K above the selection takes all of it");
}

Test(interval, missed_periods_fire_once_not_in_a_burst)
{
	struct interval_params p = params(60, 5, 1);
	struct policy_state st;
	struct policy_pick picks[MAX_GUESTS];
	size_t n;
	interval_start(&p, &st, 0);
	cr_assert_eq(fire(&p, &st, 60, 3, picks, &n), 1);
	/* migd down from 61 s to 600 s: nine periods missed */
	int fired = 0;
	for (int call = 0; call < 20; call++)
		fired += fire(&p, &st, 600, 3, picks, &n);
	cr_assert_eq(fired, 1);
	cr_assert_float_eq(interval_next_fire_s(&p, &st), 660, 1e-9);
	cr_assert_eq(fire(&p, &st, 659, 3, picks, &n), 0);
	cr_assert_eq(fire(&p, &st, 660, 3, picks, &n), 1);
}

Test(interval, a_paused_policy_never_fires_and_resumes_on_its_grid)
{
	struct interval_params p = params(60, 0, 0);
	struct policy_state st;
	struct policy_pick picks[MAX_GUESTS];
	size_t n;
	interval_start(&p, &st, 0);
	interval_pause(&p, &st, 30);
	cr_assert(isinf(interval_next_fire_s(&p, &st)));
	cr_assert_eq(fire(&p, &st, 60, 2, picks, &n), 0);
	cr_assert_eq(fire(&p, &st, 500, 2, picks, &n), 0);
	interval_resume(&p, &st, 130);
	/* what fell due while paused is dropped; the grid is kept */
	cr_assert_float_eq(interval_next_fire_s(&p, &st), 180, 1e-9);
	cr_assert_eq(fire(&p, &st, 131, 2, picks, &n), 0);
	cr_assert_eq(fire(&p, &st, 180, 2, picks, &n), 1);
	/* resuming a running policy changes nothing */
	interval_resume(&p, &st, 200);
	cr_assert_float_eq(interval_next_fire_s(&p, &st), 240, 1e-9);
}

Test(interval, with_nothing_selected_the_period_passes_with_no_picks)
{
	struct interval_params p = params(60, 0, 2);
	struct policy_state st;
	size_t n = 99;
	interval_start(&p, &st, 0);
	cr_assert_eq(interval_fire(&p, &st, 60, 0, NULL, &n), 1);
	cr_assert_eq(n, 0);
	cr_assert_float_eq(interval_next_fire_s(&p, &st), 120, 1e-9);
	cr_assert_eq(interval_fire(&p, &st, NAN, 0, NULL, &n), -EINVAL);
}

Test(interval, the_grid_does_not_drift_over_many_periods)
{
	struct interval_params p = params(0.1, 0, 0); /* fractional periods round badly */
	struct policy_state st;
	struct policy_pick picks[MAX_GUESTS];
	size_t n;
	interval_start(&p, &st, 1.7e9);
	for (int k = 1; k <= 10000; k++) {
		double due = interval_next_fire_s(&p, &st);
		cr_assert(fabs(due - (1.7e9 + 0.1 * k)) < 1e-5, "period %d due at %.6f", k, due);
		cr_assert_eq(fire(&p, &st, due + 0.03, 1, picks, &n), 1, "period %d", k);
	}
}

/* ---- parameters ---- */

static int parse(const char *const *kv_text, size_t n, struct interval_params *p)
{
	struct policy_kv kv[8];
	for (size_t i = 0; i < n; i++)
		kv[i] = (struct policy_kv){ kv_text[2 * i], kv_text[2 * i + 1] };
	err[0] = '\0';
	return interval_parse(kv, n, p, err, sizeof(err));
}

Test(interval, parses_durations_and_count)
{
	struct interval_params p;
	const char *a[] = { "type", "interval", "name", "btio", "every", "4m",
			    "stagger", "30s", "count", "3", "guests", "job:bt" };
	cr_assert_eq(parse(a, 6, &p), 0, "%s", err);
	cr_assert_float_eq(p.every_s, 240, 1e-9);
	cr_assert_float_eq(p.stagger_s, 30, 1e-9);
	cr_assert_eq(p.count, 3);

	const char *b[] = { "every_s", "90.5", "stagger_s", "250ms" };
	cr_assert_eq(parse(b, 2, &p), 0, "%s", err);
	cr_assert_float_eq(p.every_s, 90.5, 1e-9);
	cr_assert_float_eq(p.stagger_s, 0.25, 1e-9);
	cr_assert_eq(p.count, 0, "all by default");

	const char *c[] = { "every", "1h" };
	cr_assert_eq(parse(c, 1, &p), 0, "%s", err);
	cr_assert_float_eq(p.every_s, 3600, 1e-9);
}

Test(interval, refuses_bad_parameters_naming_them)
{
	static const struct {
		const char *kv[4];
		size_t n;
		const char *names;
	} bad[] = {
		{ { "stagger", "30s" }, 1, "every: missing" },
		{ { "every", "0" }, 1, "every \"0\"" },
		{ { "every", "4x" }, 1, "every \"4x\"" },
		{ { "every", "-4m" }, 1, "every \"-4m\"" },
		{ { "every", "inf" }, 1, "every \"inf\"" },
		{ { "every", "4m", "stagger", "soon" }, 2, "stagger \"soon\"" },
		{ { "every", "4m", "count", "-1" }, 2, "count \"-1\"" },
		{ { "every", "4m", "count", "2.5" }, 2, "count \"2.5\"" },
		{ { "every", "4m", "speed", "1" }, 2, "\"speed\"" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct interval_params p;
		cr_assert_eq(parse(bad[i].kv, bad[i].n, &p), -EINVAL, "case %zu", i);
		cr_assert(strstr(err, bad[i].names), "case %zu: \"%s\" lacks %s", i, err,
			  bad[i].names);
	}
}

/* ---- the generic face ---- */

Test(interval, works_through_the_policy_interface)
{
	const struct policy_type *t = policy_type_find("interval");
	cr_assert_not_null(t);
	cr_assert_null(policy_type_find("health"));
	cr_assert_null(policy_type_find(NULL));
	cr_assert_eq(t->params_size, sizeof(struct interval_params));
	struct interval_params p;
	struct policy_kv kv[] = { { "every", "2m" }, { "stagger", "15s" }, { "count", "1" } };
	cr_assert_eq(t->parse(kv, 3, &p, err, sizeof(err)), 0, "%s", err);
	struct policy_state st;
	struct policy_pick picks[MAX_GUESTS];
	size_t n;
	t->start(&p, &st, 0);
	cr_assert_float_eq(t->next_fire_s(&p, &st), 120, 1e-9);
	cr_assert_eq(t->fire(&p, &st, 120, 3, picks, &n), 1);
	cr_assert_eq(n, 1);
	t->pause(&p, &st, 130);
	cr_assert(isinf(t->next_fire_s(&p, &st)));
	t->resume(&p, &st, 250);
	cr_assert_float_eq(t->next_fire_s(&p, &st), 360, 1e-9);
}
