/*
 * The pre-copy model against cases computed by hand, the stepped object
 * against the closed-form estimate, and link sharing between concurrent
 * migrations. A 1 GiB guest over a 1 Gbit/s link (125e6 bytes/s) is the
 * recurring case: one full copy takes 2^30 / 125e6 = 8.589934592 s.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>

#include "precopy.h"

#define GIB 1073741824.0
#define LINK PRECOPY_GBIT_BPS
#define FULL_COPY_S (GIB / LINK) /* 8.589934592 */

static void near(double got, double want, double rel, const char *what)
{
	double tol = rel * fmax(fabs(want), 1e-9);
	cr_assert(fabs(got - want) <= tol, "%s: got %.12g, want %.12g", what, got, want);
}

/* Step m at a constant rate in slices of dt_s until it finishes. */
static void run_stepped(struct precopy *m, double dt_s, double rate_bps)
{
	for (int i = 0; i < 10000000 && !precopy_finished(m); i++)
		cr_assert_eq(precopy_advance(m, dt_s, rate_bps), 0);
	cr_assert(precopy_finished(m), "did not finish");
}

static struct precopy_result stepped(const struct precopy_params *p, double dt_s, double rate)
{
	struct precopy *m;
	struct precopy_result r;
	cr_assert_eq(precopy_new(p, &m), 0);
	run_stepped(m, dt_s, rate);
	cr_assert_eq(precopy_result(m, &r), 0);
	precopy_free(m);
	return r;
}

static struct precopy_result estimate(const struct precopy_params *p, double rate)
{
	struct precopy_result r;
	cr_assert_eq(precopy_estimate(p, rate, &r), 0);
	return r;
}

Test(precopy, idle_guest_takes_one_round_of_8_59_s)
{
	struct precopy_params p = { .memory_bytes = 1ull << 30 };
	struct precopy_result e = estimate(&p, LINK), s = stepped(&p, 0.5, LINK);
	cr_assert(e.converged && !e.postcopy);
	cr_assert_eq(e.rounds, 1);
	near(e.total_s, 8.589934592, 1e-12, "total");
	near(e.downtime_s + 1, 1, 1e-12, "downtime");
	near(e.bytes_sent, GIB, 1e-12, "bytes");
	cr_assert(s.converged);
	cr_assert_eq(s.rounds, 1);
	near(s.total_s, 8.589934592, 1e-9, "stepped total");
	near(s.bytes_sent, GIB, 1e-9, "stepped bytes");
}

/*
 * 1 GiB, dirty rate 25e6 B/s (a fifth of the link), max downtime 0.3 s
 * (threshold 0.3 * 125e6 = 37.5e6 bytes), switch-over 0.05 s:
 *   round 0: 2^30 B in 8.589934592 s, dirtied 0.2 * 2^30 = 214748364.8 B > 37.5e6
 *   round 1: 214748364.8 B in 1.7179869184 s, dirtied 42949672.96 B > 37.5e6
 *   round 2: 42949672.96 B in 0.34359738368 s, dirtied 8589934.592 B <= 37.5e6
 *   stop-and-copy: 8589934.592 B in 0.068719476736 s, then 0.05 s switch-over
 * rounds 3, downtime 0.118719476736 s, total 10.720238370816 + 0.05 s,
 * bytes 2^30 * (1 + 0.2 + 0.04 + 0.008) = 1340029796.352.
 */
Test(precopy, three_rounds_computed_by_hand)
{
	struct precopy_params p = { .memory_bytes = 1ull << 30, .dirty_rate_bps = 25e6,
				    .max_downtime_s = 0.3, .switchover_s = 0.05 };
	struct precopy_result e = estimate(&p, LINK), s = stepped(&p, 0.1, LINK);
	struct precopy_result both[2] = { e, s };
	for (int i = 0; i < 2; i++) {
		const struct precopy_result *r = &both[i];
		cr_assert(r->converged, "%s", i ? "stepped" : "estimate");
		cr_assert_eq(r->rounds, 3);
		near(r->downtime_s, 0.118719476736, 1e-9, "downtime");
		near(r->total_s, 10.770238370816, 1e-9, "total");
		near(r->bytes_sent, 1340029796.352, 1e-9, "bytes");
	}
}

Test(precopy, dirty_rate_above_link_rate_fails_after_the_round_bound)
{
	/* twice the link: every round dirties all memory again */
	struct precopy_params p = { .memory_bytes = 1ull << 30, .dirty_rate_bps = 2 * LINK };
	struct precopy_result e = estimate(&p, LINK), s = stepped(&p, 1.0, LINK);
	cr_assert(!e.converged);
	cr_assert_eq(e.failure, PRECOPY_FAIL_ROUNDS);
	cr_assert_eq(e.rounds, PRECOPY_DEFAULT_MAX_ROUNDS);
	near(e.total_s, 30 * FULL_COPY_S, 1e-12, "total");
	near(e.bytes_sent, 30 * GIB, 1e-12, "bytes");
	cr_assert_eq(e.downtime_s, 0);
	cr_assert(!s.converged);
	cr_assert_eq(s.failure, PRECOPY_FAIL_ROUNDS);
	cr_assert_eq(s.rounds, 30);
	near(s.total_s, 30 * FULL_COPY_S, 1e-9, "stepped total");
}

Test(precopy, time_bound_fails_in_the_middle_of_a_round)
{
	/* rounds start at 0, 8.59 and 17.18 s; the bound falls in round 2 */
	struct precopy_params p = { .memory_bytes = 1ull << 30, .dirty_rate_bps = 2 * LINK,
				    .max_total_s = 20 };
	struct precopy_result e = estimate(&p, LINK), s = stepped(&p, 0.3, LINK);
	cr_assert_eq(e.failure, PRECOPY_FAIL_TIME);
	cr_assert_eq(e.rounds, 3);
	near(e.total_s, 20, 1e-12, "total");
	near(e.bytes_sent, 20 * LINK, 1e-12, "bytes");
	cr_assert_eq(s.failure, PRECOPY_FAIL_TIME);
	cr_assert_eq(s.rounds, 3);
	near(s.total_s, 20, 1e-12, "stepped total");
	near(s.bytes_sent, 20 * LINK, 1e-9, "stepped bytes");
}

Test(precopy, force_stop_copies_the_rest_at_the_round_bound)
{
	struct precopy_params p = { .memory_bytes = 1ull << 30, .dirty_rate_bps = 2 * LINK,
				    .max_rounds = 3, .force_stop = true, .switchover_s = 0.1 };
	struct precopy_result e = estimate(&p, LINK), s = stepped(&p, 0.25, LINK);
	cr_assert(e.converged);
	cr_assert_eq(e.rounds, 3);
	near(e.downtime_s, FULL_COPY_S + 0.1, 1e-12, "downtime: all memory is dirty");
	near(e.total_s, 4 * FULL_COPY_S + 0.1, 1e-12, "total");
	cr_assert(s.converged);
	near(s.downtime_s, e.downtime_s, 1e-9, "stepped downtime");
	near(s.total_s, e.total_s, 1e-9, "stepped total");
}

Test(precopy, writable_working_set_caps_dirtying)
{
	/* 4 GiB dirtied at 1 GB/s, but only 16 MiB of it is ever written: after
	 * round 0 the 16 MiB go in 16777216 / 125e6 = 0.134217728 s < 0.3 s */
	struct precopy_params p = { .memory_bytes = 4ull << 30, .dirty_rate_bps = 1e9,
				    .working_set_bytes = 16ull << 20 };
	struct precopy_result e = estimate(&p, LINK), s = stepped(&p, 0.2, LINK);
	cr_assert(e.converged);
	cr_assert_eq(e.rounds, 1);
	near(e.downtime_s, 0.134217728, 1e-12, "downtime");
	near(e.total_s, 4 * FULL_COPY_S + 0.134217728, 1e-12, "total");
	cr_assert(s.converged);
	cr_assert_eq(s.rounds, 1);
	near(s.downtime_s, 0.134217728, 1e-9, "stepped downtime");

	p.working_set_bytes = 0; /* all memory: never converges */
	cr_assert(!estimate(&p, LINK).converged);
}

/*
 * Dirty rate twice the link, auto-converge 20% then +10% a round, max 99%.
 * While the throttled rate is >= the link rate each round dirties all of
 * memory (throttles 0, 20, 30, 40, 50 in rounds 0-4); then 60% leaves 0.8 of
 * memory dirty, 70% 0.6 of that, 80% 0.4, 90% 0.2 (41.2e6 B, still above
 * 37.5e6) and 99% 0.02: 824634 B, which goes in 6.6 ms. Ten rounds.
 */
Test(precopy, auto_converge_throttles_until_it_converges)
{
	struct precopy_params p = { .memory_bytes = 1ull << 30, .dirty_rate_bps = 2 * LINK };
	cr_assert(!estimate(&p, LINK).converged);
	p.auto_converge = true;
	struct precopy_result e = estimate(&p, LINK), s = stepped(&p, 0.5, LINK);
	cr_assert(e.converged);
	cr_assert_eq(e.rounds, 10);
	cr_assert_eq(e.throttle_pct, 99);
	near(e.downtime_s, 0.006597069766656, 1e-9, "downtime");
	near(e.total_s, 64.52044182952345, 1e-9, "total");
	cr_assert(s.converged);
	cr_assert_eq(s.rounds, 10);
	cr_assert_eq(s.throttle_pct, 99);
	near(s.total_s, e.total_s, 1e-9, "stepped total");
}

Test(precopy, auto_converge_steps_the_throttle_each_round)
{
	struct precopy_params p = { .memory_bytes = 1ull << 30, .dirty_rate_bps = 2 * LINK,
				    .auto_converge = true };
	struct precopy *m;
	struct precopy_status st;
	cr_assert_eq(precopy_new(&p, &m), 0);
	unsigned want[] = { 0, 20, 30, 40, 50, 60 };
	/* rounds 0-5 each copy all memory: look in the middle of each */
	cr_assert_eq(precopy_advance(m, FULL_COPY_S / 2, LINK), 0);
	for (unsigned round = 0; round < 6; round++) {
		precopy_status(m, &st);
		cr_assert_eq(st.round, round);
		cr_assert_eq(st.throttle_pct, want[round], "round %u: throttle %u", round,
			     st.throttle_pct);
		cr_assert_eq(precopy_advance(m, FULL_COPY_S, LINK), 0);
	}
	precopy_free(m);
}

Test(precopy, postcopy_switches_after_round_zero)
{
	struct precopy_params p = { .memory_bytes = 1ull << 30, .dirty_rate_bps = 2 * LINK,
				    .postcopy = true, .switchover_s = 0.1 };
	struct precopy_result e = estimate(&p, LINK), s = stepped(&p, 0.7, LINK);
	cr_assert(e.converged && e.postcopy);
	cr_assert_eq(e.rounds, 1);
	near(e.downtime_s, 0.1, 1e-12, "downtime is the switch-over only");
	near(e.total_s, 2 * FULL_COPY_S + 0.1, 1e-12, "total");
	near(e.bytes_sent, 2 * GIB, 1e-12, "bytes");
	cr_assert(s.converged && s.postcopy);
	near(s.downtime_s, 0.1, 1e-9, "stepped downtime");
	near(s.total_s, e.total_s, 1e-9, "stepped total");

	/* a guest that converges in round 0 never needs post-copy */
	p.dirty_rate_bps = 0;
	e = estimate(&p, LINK);
	cr_assert(e.converged && !e.postcopy);
}

Test(precopy, bandwidth_cap_limits_the_rate)
{
	struct precopy_params p = { .memory_bytes = 1ull << 30, .bandwidth_cap_bps = 50e6 };
	near(estimate(&p, LINK).total_s, GIB / 50e6, 1e-12, "estimate");
	near(stepped(&p, 1, LINK).total_s, GIB / 50e6, 1e-9, "stepped");
	cr_assert_eq(precopy_estimate(&p, 0, &(struct precopy_result){ 0 }), -EINVAL);
}

Test(precopy, stop_copy_slows_when_the_link_is_shared)
{
	/* the three-round case; halve the rate once the guest is stopped */
	struct precopy_params p = { .memory_bytes = 1ull << 30, .dirty_rate_bps = 25e6 };
	struct precopy *m;
	struct precopy_status st;
	cr_assert_eq(precopy_new(&p, &m), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(precopy_advance(m, precopy_next_event_s(m, LINK), LINK), 0);
	precopy_status(m, &st);
	cr_assert_eq(st.phase, PRECOPY_STOP_COPY, "phase %s", precopy_phase_name(st.phase));
	run_stepped(m, 0.01, LINK / 2);
	struct precopy_result r;
	cr_assert_eq(precopy_result(m, &r), 0);
	near(r.downtime_s, 2 * 0.068719476736, 1e-9, "downtime at half rate");
	precopy_free(m);
}

Test(precopy, stepped_matches_estimate)
{
	const struct precopy_params cases[] = {
		{ .memory_bytes = 1ull << 30, .dirty_rate_bps = 25e6, .switchover_s = 0.02 },
		{ .memory_bytes = 3ull << 30, .dirty_rate_bps = 90e6, .max_downtime_s = 0.5 },
		{ .memory_bytes = 2ull << 30, .dirty_rate_bps = 300e6, .auto_converge = true,
		  .throttle_initial_pct = 30, .throttle_increment_pct = 15 },
		{ .memory_bytes = 8ull << 30, .dirty_rate_bps = 1e9, .working_set_bytes = 64ull << 20 },
		{ .memory_bytes = 1ull << 30, .dirty_rate_bps = 200e6, .max_total_s = 30 },
		{ .memory_bytes = 1ull << 30, .dirty_rate_bps = 120e6, .max_rounds = 5 },
		{ .memory_bytes = 512ull << 20, .dirty_rate_bps = 150e6, .postcopy = true,
		  .switchover_s = 0.2, .bandwidth_cap_bps = 100e6 },
	};
	const double steps_s[] = { 0.001, 0.0137, 0.25, 3.0 };
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct precopy_result e = estimate(&cases[c], LINK);
		for (size_t k = 0; k < sizeof(steps_s) / sizeof(steps_s[0]); k++) {
			struct precopy_result s = stepped(&cases[c], steps_s[k], LINK);
			cr_assert_eq(s.converged, e.converged, "case %zu dt %g", c, steps_s[k]);
			cr_assert_eq(s.failure, e.failure, "case %zu dt %g", c, steps_s[k]);
			cr_assert_eq(s.rounds, e.rounds, "case %zu dt %g: rounds %u vs %u", c,
				     steps_s[k], s.rounds, e.rounds);
			cr_assert_eq(s.postcopy, e.postcopy, "case %zu", c);
			cr_assert_eq(s.throttle_pct, e.throttle_pct, "case %zu", c);
			near(s.total_s, e.total_s, 1e-6, "total");
			near(s.downtime_s + 1, e.downtime_s + 1, 1e-6, "downtime");
			near(s.bytes_sent, e.bytes_sent, 1e-6, "bytes");
		}
	}
}

Test(link_share, two_uncapped_flows_get_half_each)
{
	double demand[] = { INFINITY, INFINITY }, rate[2];
	cr_assert_eq(link_share(LINK, demand, 2, rate), 0);
	near(rate[0], LINK / 2, 1e-12, "flow 0");
	near(rate[1], LINK / 2, 1e-12, "flow 1");
}

Test(link_share, caps_are_respected_and_the_rest_is_shared)
{
	double demand[] = { 10e6, INFINITY, 50e6, 0 }, rate[4];
	cr_assert_eq(link_share(100e6, demand, 4, rate), 0);
	cr_assert_eq(rate[0], 10e6);
	cr_assert_eq(rate[3], 0, "a flow that wants nothing gets nothing");
	near(rate[1], 45e6, 1e-12, "uncapped");
	near(rate[2], 45e6, 1e-12, "capped above its share");

	double small[] = { 10e6, 20e6 }, out[2];
	cr_assert_eq(link_share(100e6, small, 2, out), 0);
	cr_assert(out[0] == 10e6 && out[1] == 20e6, "under-subscribed link: caps only");
}

Test(link_share, rejects_bad_input)
{
	double demand[] = { -1 }, rate[1];
	cr_assert_eq(link_share(LINK, demand, 1, rate), -EINVAL);
	demand[0] = NAN;
	cr_assert_eq(link_share(LINK, demand, 1, rate), -EINVAL);
	demand[0] = 1;
	cr_assert_eq(link_share(INFINITY, demand, 1, rate), -EINVAL);
	cr_assert_eq(link_share(LINK, demand, 0, rate), 0);
}

/* Event-driven: re-share the link whenever one of the migrations changes phase. */
static void run_shared(struct precopy **m, size_t n, double link_bps, double *finish_s)
{
	double demand[8], rate[8], now = 0;
	for (int steps = 0; steps < 100000; steps++) {
		size_t running = 0;
		for (size_t i = 0; i < n; i++) {
			demand[i] = precopy_link_demand_bps(m[i]);
			running += !precopy_finished(m[i]);
		}
		if (running == 0)
			return;
		cr_assert_eq(link_share(link_bps, demand, n, rate), 0);
		double dt = INFINITY;
		for (size_t i = 0; i < n; i++)
			dt = fmin(dt, precopy_next_event_s(m[i], rate[i]));
		cr_assert(isfinite(dt));
		for (size_t i = 0; i < n; i++) {
			bool was = precopy_finished(m[i]);
			cr_assert_eq(precopy_advance(m[i], dt, rate[i]), 0);
			if (!was && precopy_finished(m[i]))
				finish_s[i] = now + dt;
		}
		now += dt;
	}
	cr_assert_fail("never finished");
}

Test(link_share, two_concurrent_migrations_each_get_half)
{
	struct precopy_params p = { .memory_bytes = 1ull << 30 };
	struct precopy *m[2];
	double finish[2];
	cr_assert_eq(precopy_new(&p, &m[0]), 0);
	cr_assert_eq(precopy_new(&p, &m[1]), 0);
	run_shared(m, 2, LINK, finish);
	near(finish[0], 2 * FULL_COPY_S, 1e-9, "first");
	near(finish[1], 2 * FULL_COPY_S, 1e-9, "second");
	precopy_free(m[0]);
	precopy_free(m[1]);
}

Test(link_share, a_capped_migration_leaves_the_rest_to_the_other)
{
	/* capped at 25e6: the other gets 100e6 and is done at 2^30 / 100e6 s;
	 * the capped one stays at 25e6 throughout: 2^30 / 25e6 s */
	struct precopy_params capped = { .memory_bytes = 1ull << 30, .bandwidth_cap_bps = 25e6 };
	struct precopy_params open = { .memory_bytes = 1ull << 30 };
	struct precopy *m[2];
	double finish[2];
	cr_assert_eq(precopy_new(&capped, &m[0]), 0);
	cr_assert_eq(precopy_new(&open, &m[1]), 0);
	run_shared(m, 2, LINK, finish);
	near(finish[0], GIB / 25e6, 1e-9, "capped");
	near(finish[1], GIB / 100e6, 1e-9, "uncapped");
	precopy_free(m[0]);
	precopy_free(m[1]);
}

Test(link_share, a_migration_speeds_up_when_the_other_finishes)
{
	/* 0.5 GiB and 1 GiB: both at half rate until the small one is done at
	 * 2^29 / 62.5e6 = 8.59 s; the big one has 0.5 GiB left, at full rate
	 * 4.29 s more: 12.88 s */
	struct precopy_params small = { .memory_bytes = 1ull << 29 };
	struct precopy_params big = { .memory_bytes = 1ull << 30 };
	struct precopy *m[2];
	double finish[2];
	cr_assert_eq(precopy_new(&small, &m[0]), 0);
	cr_assert_eq(precopy_new(&big, &m[1]), 0);
	run_shared(m, 2, LINK, finish);
	near(finish[0], FULL_COPY_S, 1e-9, "small");
	near(finish[1], 1.5 * FULL_COPY_S, 1e-9, "big");
	precopy_free(m[0]);
	precopy_free(m[1]);
}

Test(precopy, no_rate_no_progress_but_the_time_bound_still_runs)
{
	struct precopy_params p = { .memory_bytes = 1ull << 30, .max_total_s = 5 };
	struct precopy *m;
	struct precopy_status st;
	struct precopy_result r;
	cr_assert_eq(precopy_new(&p, &m), 0);
	cr_assert_eq(precopy_advance(m, 3, 0), 0);
	precopy_status(m, &st);
	cr_assert_eq(st.bytes_sent, 0);
	near(st.elapsed_s, 3, 1e-12, "elapsed");
	cr_assert_eq(precopy_result(m, &r), -EAGAIN);
	cr_assert_eq(precopy_advance(m, 3, 0), 0);
	cr_assert_eq(precopy_result(m, &r), 0);
	cr_assert_eq(r.failure, PRECOPY_FAIL_TIME);
	near(r.total_s, 5, 1e-12, "stopped at the bound");
	precopy_free(m);
}

Test(precopy, abort_fails_a_running_migration_only)
{
	struct precopy_params p = { .memory_bytes = 1ull << 30 };
	struct precopy *m;
	struct precopy_result r;
	cr_assert_eq(precopy_new(&p, &m), 0);
	cr_assert_eq(precopy_advance(m, 1, LINK), 0);
	cr_assert_eq(precopy_abort(m), 0);
	cr_assert_eq(precopy_result(m, &r), 0);
	cr_assert(!r.converged);
	cr_assert_eq(r.failure, PRECOPY_FAIL_ABORTED);
	cr_assert_eq(precopy_abort(m), -EALREADY);
	cr_assert_eq(precopy_advance(m, 1, LINK), 0, "a finished migration ignores time");
	cr_assert_eq(precopy_link_demand_bps(m), 0);
	precopy_free(m);
	precopy_free(NULL);
}

Test(precopy, rejects_bad_parameters)
{
	struct precopy *m = NULL;
	struct precopy_result r;
	struct precopy_params p = { 0 };
	cr_assert_eq(precopy_new(&p, &m), -EINVAL, "no memory");
	p.memory_bytes = 1 << 20;
	p.dirty_rate_bps = -1;
	cr_assert_eq(precopy_new(&p, &m), -EINVAL, "negative dirty rate");
	p.dirty_rate_bps = NAN;
	cr_assert_eq(precopy_estimate(&p, LINK, &r), -EINVAL, "NaN dirty rate");
	p.dirty_rate_bps = 0;
	p.throttle_max_pct = 101;
	cr_assert_eq(precopy_new(&p, &m), -EINVAL, "throttle above 100%%");
	p.throttle_max_pct = 0;
	cr_assert_eq(precopy_new(&p, &m), 0);
	cr_assert_eq(precopy_advance(m, -1, LINK), -EINVAL);
	cr_assert_eq(precopy_advance(m, 1, INFINITY), -EINVAL);
	cr_assert_eq(precopy_advance(m, NAN, LINK), -EINVAL);
	precopy_free(m);
}
