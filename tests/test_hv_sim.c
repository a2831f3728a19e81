/*
 * The sim backend: URIs, one migration against the closed-form model, link
 * sharing, the independence of results from polling, abort, post-copy,
 * persistence across a kill -9, and the cost of a 10,000-guest world.
 *
 * Most tests drive the virtual clock by hand (hv_sim_clock_set), so that
 * start times are exact and nothing depends on the machine's speed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hv.h"
#include "hv_sim.h"
#include "precopy.h"

#define GIB (1ull << 30)
#define NS_PER_S 1000000000ll

static const struct hv_ops *ops = &hv_sim_ops;
static char err[256];

/* ---- helpers ---- */

static struct hv *open_sim(const char *state_dir)
{
	struct hv_env env = { .state_dir = state_dir };
	struct hv *hv = NULL;
	int rc = ops->open(&env, &hv, err, sizeof(err));
	cr_assert_eq(rc, 0, "open: %d %s", rc, err);
	return hv;
}

/* A sim on a hand-driven clock; returns its time zero in *t0_ns. */
static struct hv *open_manual(const char *state_dir, int64_t *t0_ns)
{
	struct hv *hv = open_sim(state_dir);
	*t0_ns = ops->now_ns(hv) + NS_PER_S;
	cr_assert_eq(hv_sim_clock_set(hv, *t0_ns), 0);
	return hv;
}

static void at(struct hv *hv, int64_t t0_ns, double t_s)
{
	int rc = hv_sim_clock_set(hv, t0_ns + llround(t_s * 1e9));
	cr_assert_eq(rc, 0, "clock to %.3f s: %d", t_s, rc);
}

static void host(struct hv *hv, const char *name, const char *uri)
{
	int rc = ops->host_add(hv, name, uri, err, sizeof(err));
	cr_assert_eq(rc, 0, "host_add %s: %d %s", name, rc, err);
}

static void guest(struct hv *hv, const char *name, const char *on, uint64_t mem,
		  uint64_t dirty_bps)
{
	struct hv_guest_spec spec = { .name = name, .memory_bytes = mem, .dirty_rate_bps = dirty_bps };
	int rc = ops->guest_create(hv, on, &spec, err, sizeof(err));
	cr_assert_eq(rc, 0, "guest_create %s: %d %s", name, rc, err);
}

static uint64_t migrate(struct hv *hv, const char *g, const char *src, const char *dst,
			const struct hv_migrate_params *p)
{
	uint64_t id = 0;
	int rc = ops->migrate_start(hv, g, src, dst, p, &id, err, sizeof(err));
	cr_assert_eq(rc, 0, "migrate %s: %d %s", g, rc, err);
	return id;
}

static struct hv_progress poll_mig(struct hv *hv, uint64_t id)
{
	struct hv_progress pr;
	int rc = ops->migrate_poll(hv, id, &pr, err, sizeof(err));
	cr_assert_eq(rc, 0, "poll %llu: %d %s", (unsigned long long)id, rc, err);
	return pr;
}

static const char *where(struct hv *hv, const char *g)
{
	static struct hv_guest_info info;
	int rc = ops->guest_info(hv, g, &info, err, sizeof(err));
	cr_assert_eq(rc, 0, "guest_info %s: %d %s", g, rc, err);
	return info.host;
}

/* Poll every step_s from t_s until the migration ends; its final figures. */
static struct hv_progress run_to_end(struct hv *hv, int64_t t0_ns, double t_s, double step_s,
				     uint64_t id)
{
	for (int i = 0; i < 1000000; i++) {
		struct hv_progress pr = poll_mig(hv, id);
		if (pr.state != HV_MIG_ACTIVE)
			return pr;
		t_s += step_s;
		at(hv, t0_ns, t_s);
	}
	cr_assert_fail("migration %llu never ended", (unsigned long long)id);
	return (struct hv_progress){ 0 };
}

static char *temp_dir(void)
{
	char *dir = strdup("/tmp/test_hv_sim.XXXXXX");
	cr_assert(dir && mkdtemp(dir), "mkdtemp");
	return dir;
}

static void remove_dir(char *dir)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
	free(dir);
}

/* ---- URIs and the registry ---- */

Test(hv_sim, uri_gives_name_link_in_bytes_and_memory)
{
	struct hv_sim_uri u;
	cr_assert_eq(hv_sim_parse_uri("sim:///n1?link=10gbit&mem=64g", &u, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_str_eq(u.name, "n1");
	cr_assert_float_eq(u.link_bps, 1.25e9, 1e-3);
	cr_assert_eq(u.mem_bytes, 64 * GIB);

	cr_assert_eq(hv_sim_parse_uri("sim:///rack2.node-07", &u, err, sizeof(err)), 0, "%s", err);
	cr_assert_float_eq(u.link_bps, HV_SIM_DEFAULT_LINK_BPS, 1e-3);
	cr_assert_eq(u.mem_bytes, 0);

	static const struct {
		const char *rate;
		double bytes_per_s;
	} rates[] = { { "100mbit", 12.5e6 }, { "1gbit", 125e6 }, { "2.5g", 312.5e6 },
		      { "10gbit/s", 1.25e9 }, { "800", 100 }, { "40Gbit", 5e9 } };
	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		char uri[64];
		snprintf(uri, sizeof(uri), "sim:///h?link=%s", rates[i].rate);
		cr_assert_eq(hv_sim_parse_uri(uri, &u, err, sizeof(err)), 0, "%s: %s", uri, err);
		cr_assert_float_eq(u.link_bps, rates[i].bytes_per_s, 1e-6, "%s", uri);
	}
}

Test(hv_sim, malformed_uri_is_refused_naming_the_bad_part)
{
	static const struct {
		const char *uri, *names;
	} bad[] = {
		{ "qmp:///n1", "expected sim:///NAME" },
		{ "sim:/n1", "expected sim:///NAME" },
		{ "sim://node9/n1", "\"node9\"" },
		{ "sim:///", "host name \"\"" },
		{ "sim:///n 1", "host name \"n 1\"" },
		{ "sim:///n1?link=fast", "link \"fast\"" },
		{ "sim:///n1?link=0", "link \"0\"" },
		{ "sim:///n1?link=1gb", "link \"1gb\"" },
		{ "sim:///n1?mem=64x", "mem \"64x\"" },
		{ "sim:///n1?mem=0", "mem \"0\"" },
		{ "sim:///n1?speed=1g", "\"speed\"" },
		{ "sim:///n1?link", "\"link\": expected key=value" },
		{ "sim:///n1?link=1g&link=2g", "\"link\" given twice" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct hv_sim_uri u;
		err[0] = '\0';
		cr_assert_eq(hv_sim_parse_uri(bad[i].uri, &u, err, sizeof(err)), -EINVAL, "%s",
			     bad[i].uri);
		cr_assert(strstr(err, bad[i].names), "%s: message \"%s\" lacks %s", bad[i].uri,
			  err, bad[i].names);
	}
	/* host_add says the same */
	struct hv *hv = open_sim(NULL);
	cr_assert_eq(ops->host_add(hv, "n1", "sim:///n1?link=fast", err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "link \"fast\""), "%s", err);
	ops->close(hv);
}

Test(hv_sim, registry_maps_a_scheme_to_its_driver)
{
	cr_assert_eq(hv_ops_for_uri("sim:///n1?link=1gbit"), &hv_sim_ops);
	cr_assert_eq(hv_ops_for_uri("sim:n1"), &hv_sim_ops);
	cr_assert_null(hv_ops_for_uri("simulator:///n1"));
	cr_assert_null(hv_ops_for_uri("nosuch+ssh://node/system")); /* qemu+ssh: libvirt */
	cr_assert_null(hv_ops_for_uri("sim"));
	cr_assert_null(hv_ops_for_uri(":///x"));
	cr_assert_null(hv_ops_for_uri(NULL));
	int found = 0;
	for (size_t i = 0; hv_drivers[i]; i++)
		found += hv_drivers[i] == &hv_sim_ops;
	cr_assert_eq(found, 1);
}

/* ---- one migration ---- */

Test(hv_sim, lone_migration_matches_precopy_estimate)
{
	int64_t t0;
	struct hv *hv = open_manual(NULL, &t0);
	host(hv, "a", "sim:///a?link=1gbit");
	host(hv, "b", "sim:///b?link=10gbit");
	guest(hv, "g", "a", 2 * GIB, 40000000);
	struct hv_migrate_params p = { .max_downtime_ms = 100 };
	uint64_t id = migrate(hv, "g", "a", "b", &p);
	struct hv_progress got = run_to_end(hv, t0, 0, 0.25, id);

	struct precopy_params pp = { .memory_bytes = 2 * GIB, .dirty_rate_bps = 40e6,
				     .max_downtime_s = 0.1, .switchover_s = HV_SIM_SWITCHOVER_S };
	struct precopy_result want;
	cr_assert_eq(precopy_estimate(&pp, 125e6, &want), 0); /* the slower link */
	cr_assert(want.converged && want.rounds > 2, "a case with several rounds");
	cr_assert_eq(got.state, HV_MIG_COMPLETED, "%s", got.error);
	cr_assert_eq(got.rounds, want.rounds);
	cr_assert_eq(got.total_time_ms, (uint64_t)llround(want.total_s * 1000));
	cr_assert_eq(got.downtime_ms, (uint64_t)llround(want.downtime_s * 1000));
	cr_assert(fabs((double)got.transferred_bytes - want.bytes_sent) <= 1e-9 * want.bytes_sent,
		  "bytes %llu, want %.0f", (unsigned long long)got.transferred_bytes,
		  want.bytes_sent);
	cr_assert_eq(got.total_bytes, 2 * GIB);

	struct hv_progress est;
	cr_assert_eq(hv_sim_estimate("sim:///a?link=1gbit", "sim:///b?link=10gbit", 2 * GIB,
				     40000000, &p, &est), 0, "%s", est.error);
	cr_assert_eq(est.total_time_ms, got.total_time_ms);
	cr_assert_eq(est.downtime_ms, got.downtime_ms);
	cr_assert_eq(est.rounds, got.rounds);

	cr_assert_str_eq(where(hv, "g"), "b");
	ops->migrate_forget(hv, id);
	cr_assert_eq(ops->migrate_poll(hv, id, &got, err, sizeof(err)), -ENOENT);
	ops->close(hv);
}

Test(hv_sim, progress_moves_during_a_round)
{
	int64_t t0;
	struct hv *hv = open_manual(NULL, &t0);
	host(hv, "a", "sim:///a");
	host(hv, "b", "sim:///b");
	guest(hv, "g", "a", GIB, 0);
	uint64_t id = migrate(hv, "g", "a", "b", NULL);
	at(hv, t0, 4.0); /* 4 s of a 8.59 s round at 125e6 bytes/s */
	struct hv_progress pr = poll_mig(hv, id);
	cr_assert_eq(pr.state, HV_MIG_ACTIVE);
	cr_assert_eq(pr.rounds, 1);
	cr_assert_eq(pr.transferred_bytes, 500000000ull);
	cr_assert_eq(pr.remaining_bytes, GIB - 500000000ull);
	struct hv_guest_info info;
	cr_assert_eq(ops->guest_info(hv, "g", &info, err, sizeof(err)), 0);
	cr_assert_str_eq(info.host, "a");
	cr_assert(info.running);
	ops->close(hv);
}

Test(hv_sim, estimate_refuses_a_bad_uri_with_the_reason)
{
	struct hv_progress out;
	cr_assert_eq(hv_sim_estimate("sim:///a", "sim:///b?link=x", GIB, 0, NULL, &out), -EINVAL);
	cr_assert(strstr(out.error, "link \"x\""), "%s", out.error);
	cr_assert_eq(hv_sim_estimate("sim:///a", "sim:///b", 0, 0, NULL, &out), -EINVAL);
	cr_assert(strstr(out.error, "memory"), "%s", out.error);
}

/* ---- sharing links ---- */

Test(hv_sim, two_migrations_on_one_link_each_take_twice_as_long)
{
	int64_t t0;
	struct hv *hv = open_manual(NULL, &t0);
	host(hv, "a", "sim:///a?link=1gbit");
	host(hv, "b", "sim:///b?link=10gbit");
	host(hv, "c", "sim:///c?link=10gbit");
	guest(hv, "solo", "a", GIB, 0);
	guest(hv, "g1", "a", GIB, 0);
	guest(hv, "g2", "a", GIB, 0);

	uint64_t solo = migrate(hv, "solo", "a", "b", NULL);
	struct hv_progress alone = run_to_end(hv, t0, 0, 1.0, solo);
	cr_assert_eq(alone.state, HV_MIG_COMPLETED);

	double start_s = 100;
	at(hv, t0, start_s);
	uint64_t id1 = migrate(hv, "g1", "a", "b", NULL);
	uint64_t id2 = migrate(hv, "g2", "a", "c", NULL);
	struct hv_progress p1 = run_to_end(hv, t0, start_s, 1.0, id1);
	struct hv_progress p2 = run_to_end(hv, t0, start_s, 1.0, id2);
	cr_assert_eq(p1.state, HV_MIG_COMPLETED);
	cr_assert_eq(p2.state, HV_MIG_COMPLETED);
	/* idle guests: one round each, at half of a's link */
	double copy_ms = (double)alone.total_time_ms - HV_SIM_SWITCHOVER_S * 1000;
	cr_assert(fabs((double)p1.total_time_ms - (2 * copy_ms + 10)) <= 2,
		  "g1 took %llu ms, alone %llu ms", (unsigned long long)p1.total_time_ms,
		  (unsigned long long)alone.total_time_ms);
	cr_assert_eq(p1.total_time_ms, p2.total_time_ms);
	ops->close(hv);
}

Test(hv_sim, a_capped_migration_leaves_the_rest_of_the_link_to_the_other)
{
	int64_t t0;
	struct hv *hv = open_manual(NULL, &t0);
	host(hv, "a", "sim:///a?link=1gbit");
	host(hv, "b", "sim:///b?link=10gbit");
	guest(hv, "slow", "a", 1000000000, 0);
	guest(hv, "fast", "a", 1000000000, 0);
	struct hv_migrate_params capped = { .bandwidth_bps = 25000000 };
	uint64_t slow = migrate(hv, "slow", "a", "b", &capped);
	uint64_t fast = migrate(hv, "fast", "a", "b", NULL);
	struct hv_progress pf = run_to_end(hv, t0, 0, 0.5, fast);
	/* fast gets 125e6 - 25e6 = 100e6 bytes/s: 10 s, plus the switch-over */
	cr_assert_eq(pf.total_time_ms, 10010);
	/* then slow is alone, still capped: 1e9 / 25e6 = 40 s in all */
	struct hv_progress ps = run_to_end(hv, t0, 10.5, 0.5, slow);
	cr_assert_eq(ps.total_time_ms, 40010);
	ops->close(hv);
}

Test(hv_sim, a_migration_runs_at_the_slower_of_its_two_shares)
{
	int64_t t0;
	struct hv *hv = open_manual(NULL, &t0);
	host(hv, "a", "sim:///a?link=10gbit");
	host(hv, "b", "sim:///b?link=100mbit");
	guest(hv, "g", "a", 125000000, 0);
	uint64_t id = migrate(hv, "g", "a", "b", NULL);
	struct hv_progress pr = run_to_end(hv, t0, 0, 1.0, id);
	cr_assert_eq(pr.total_time_ms, 10010); /* 125e6 bytes at 12.5e6 bytes/s */
	ops->close(hv);
}

/* ---- determinism ---- */

struct scenario_result {
	struct hv_progress p[4];
};

/* Four migrations sharing links, started at fixed times, polled every
 * poll_s (or only at the starts and at the end when poll_s is 0). */
static struct scenario_result scenario(double poll_s)
{
	static const struct {
		const char *guest, *src, *dst;
		double start_s;
		struct hv_migrate_params p;
	} migs[] = {
		{ "g1", "a", "b", 0.0, { .max_downtime_ms = 50 } },
		{ "g2", "a", "c", 0.7, { 0 } },
		{ "g3", "b", "c", 3.1, { .auto_converge = 1 } },
		{ "g4", "c", "a", 5.3, { .bandwidth_bps = 30000000 } },
	};
	int64_t t0;
	struct hv *hv = open_manual(NULL, &t0);
	host(hv, "a", "sim:///a?link=1gbit");
	host(hv, "b", "sim:///b?link=2gbit");
	host(hv, "c", "sim:///c?link=1gbit");
	guest(hv, "g1", "a", 2 * GIB, 30000000);
	guest(hv, "g2", "a", GIB, 5000000);
	guest(hv, "g3", "b", 3 * GIB, 90000000);
	guest(hv, "g4", "c", GIB / 2, 1000000);

	struct scenario_result r;
	uint64_t ids[4];
	double t_s = 0;
	size_t started = 0;
	const double end_s = 600;
	while (t_s < end_s) {
		while (started < 4 && migs[started].start_s <= t_s) {
			at(hv, t0, migs[started].start_s);
			ids[started] = migrate(hv, migs[started].guest, migs[started].src,
					       migs[started].dst, &migs[started].p);
			started++;
		}
		double next_s = started < 4 ? migs[started].start_s : end_s;
		if (poll_s > 0 && t_s + poll_s < next_s)
			next_s = t_s + poll_s;
		t_s = next_s;
		at(hv, t0, t_s);
		for (size_t i = 0; poll_s > 0 && i < started; i++)
			poll_mig(hv, ids[i]);
	}
	for (size_t i = 0; i < 4; i++) {
		r.p[i] = poll_mig(hv, ids[i]);
		cr_assert_neq(r.p[i].state, HV_MIG_ACTIVE, "g%zu still running", i + 1);
	}
	ops->close(hv);
	return r;
}

Test(hv_sim, results_do_not_depend_on_how_often_migd_polls)
{
	struct scenario_result base = scenario(0);
	const double polls_s[] = { 0.01, 0.137, 1.0, 7.3 };
	for (size_t k = 0; k < sizeof(polls_s) / sizeof(polls_s[0]); k++) {
		struct scenario_result r = scenario(polls_s[k]);
		for (size_t i = 0; i < 4; i++) {
			const struct hv_progress *a = &base.p[i], *b = &r.p[i];
			cr_assert(a->state == b->state && a->rounds == b->rounds &&
					  a->total_time_ms == b->total_time_ms &&
					  a->downtime_ms == b->downtime_ms &&
					  a->transferred_bytes == b->transferred_bytes,
				  "g%zu polled every %.3f s: %llu ms %llu bytes %u rounds, "
				  "unpolled: %llu ms %llu bytes %u rounds",
				  i + 1, polls_s[k], (unsigned long long)b->total_time_ms,
				  (unsigned long long)b->transferred_bytes, b->rounds,
				  (unsigned long long)a->total_time_ms,
				  (unsigned long long)a->transferred_bytes, a->rounds);
		}
	}
	/* the scenario really shares: g2 is slower than it would be alone */
	struct hv_progress alone;
	cr_assert_eq(hv_sim_estimate("sim:///a?link=1gbit", "sim:///c?link=1gbit", GIB, 5000000,
				     NULL, &alone), 0);
	cr_assert_gt(base.p[1].total_time_ms, alone.total_time_ms + 1000);
}

/* ---- abort, failure, post-copy ---- */

Test(hv_sim, abort_leaves_the_guest_on_its_source)
{
	int64_t t0;
	struct hv *hv = open_manual(NULL, &t0);
	host(hv, "a", "sim:///a");
	host(hv, "b", "sim:///b?mem=2g");
	guest(hv, "g1", "a", 3 * GIB / 2, 10000000);
	guest(hv, "g2", "a", 3 * GIB / 2, 0);
	uint64_t id = migrate(hv, "g1", "a", "b", NULL);

	/* b holds room for g1 while it comes */
	uint64_t other;
	cr_assert_eq(ops->migrate_start(hv, "g2", "a", "b", NULL, &other, err, sizeof(err)),
		     -ENOSPC);
	cr_assert(strstr(err, "host b"), "%s", err);
	cr_assert_eq(ops->migrate_start(hv, "g1", "a", "b", NULL, &other, err, sizeof(err)),
		     -EBUSY);

	at(hv, t0, 2.0);
	cr_assert_eq(ops->migrate_abort(hv, id, err, sizeof(err)), 0, "%s", err);
	struct hv_progress pr = poll_mig(hv, id);
	cr_assert_eq(pr.state, HV_MIG_CANCELLED);
	cr_assert_str_eq(where(hv, "g1"), "a");
	cr_assert_eq(ops->migrate_abort(hv, id, err, sizeof(err)), -EALREADY);

	/* and b's room is free again */
	migrate(hv, "g2", "a", "b", NULL);
	ops->close(hv);
}

Test(hv_sim, a_migration_that_cannot_converge_fails_on_the_source)
{
	int64_t t0;
	struct hv *hv = open_manual(NULL, &t0);
	host(hv, "a", "sim:///a?link=100mbit");
	host(hv, "b", "sim:///b");
	guest(hv, "busy", "a", GIB, 50000000); /* dirties 4x what the link carries */
	uint64_t id = migrate(hv, "busy", "a", "b", NULL);
	struct hv_progress pr = run_to_end(hv, t0, 0, 10.0, id);
	cr_assert_eq(pr.state, HV_MIG_FAILED);
	cr_assert_eq(pr.rounds, PRECOPY_DEFAULT_MAX_ROUNDS);
	cr_assert(strstr(pr.error, "converge"), "%s", pr.error);
	cr_assert_str_eq(where(hv, "busy"), "a");
	ops->close(hv);
}

Test(hv_sim, postcopy_moves_the_guest_at_the_switch_over_and_cannot_be_aborted_after)
{
	int64_t t0;
	struct hv *hv = open_manual(NULL, &t0);
	host(hv, "a", "sim:///a?link=100mbit");
	host(hv, "b", "sim:///b");
	guest(hv, "busy", "a", GIB, 50000000);
	struct hv_migrate_params p = { .postcopy = 1 };
	uint64_t id = migrate(hv, "busy", "a", "b", &p);
	/* round 0: 2^30 / 12.5e6 = 85.9 s; then 10 ms of switch-over */
	at(hv, t0, 86.0);
	struct hv_progress pr = poll_mig(hv, id);
	cr_assert_eq(pr.state, HV_MIG_ACTIVE);
	cr_assert_str_eq(where(hv, "busy"), "b");
	cr_assert_eq(ops->migrate_abort(hv, id, err, sizeof(err)), -EBUSY);
	cr_assert(strstr(err, "switch-over"), "%s", err);
	pr = run_to_end(hv, t0, 86.0, 5.0, id);
	cr_assert_eq(pr.state, HV_MIG_COMPLETED);
	cr_assert_eq(pr.downtime_ms, 10);
	ops->close(hv);
}

Test(hv_sim, bad_requests_name_what_is_wrong)
{
	struct hv *hv = open_sim(NULL);
	host(hv, "a", "sim:///a?mem=4g");
	host(hv, "b", "sim:///b");
	guest(hv, "g", "a", GIB, 0);
	struct hv_guest_spec big = { .name = "big", .memory_bytes = 4 * GIB };
	cr_assert_eq(ops->guest_create(hv, "a", &big, err, sizeof(err)), -ENOSPC);
	cr_assert(strstr(err, "host a"), "%s", err);
	struct hv_guest_spec dup = { .name = "g", .memory_bytes = GIB };
	cr_assert_eq(ops->guest_create(hv, "b", &dup, err, sizeof(err)), -EEXIST);
	struct hv_guest_spec lost = { .name = "x", .memory_bytes = GIB };
	cr_assert_eq(ops->guest_create(hv, "nowhere", &lost, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "nowhere"), "%s", err);
	uint64_t id;
	cr_assert_eq(ops->migrate_start(hv, "g", "b", "a", NULL, &id, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "runs on a"), "%s", err);
	cr_assert_eq(ops->migrate_start(hv, "g", "a", "a", NULL, &id, err, sizeof(err)), -EINVAL);
	cr_assert_eq(ops->migrate_start(hv, "nope", "a", "b", NULL, &id, err, sizeof(err)),
		     -ENOENT);
	cr_assert_eq(ops->host_remove(hv, "a", err, sizeof(err)), -EBUSY);
	cr_assert_eq(ops->host_remove(hv, "zz", err, sizeof(err)), -ENOENT);
	/* the same host again is fine (migd re-adds after a restart), another URI is not */
	cr_assert_eq(ops->host_add(hv, "b", "sim:///b", err, sizeof(err)), 0);
	cr_assert_eq(ops->host_add(hv, "b", "sim:///b?link=10gbit", err, sizeof(err)), -EEXIST);
	ops->close(hv);
}

/* ---- persistence ---- */

Test(hv_sim, after_kill_9_the_reopened_sim_knows_where_each_guest_is)
{
	char *dir = temp_dir();
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* the "migd" that dies: one switch-over done, one migration in flight */
		int64_t t0;
		struct hv *hv = open_manual(dir, &t0);
		host(hv, "a", "sim:///a");
		host(hv, "b", "sim:///b");
		guest(hv, "moved", "a", GIB, 0);
		guest(hv, "inflight", "a", GIB, 0);
		guest(hv, "stayed", "b", GIB, 0);
		uint64_t id = migrate(hv, "moved", "a", "b", NULL);
		run_to_end(hv, t0, 0, 1.0, id);
		at(hv, t0, 20);
		migrate(hv, "inflight", "a", "b", NULL);
		at(hv, t0, 25);
		poll_mig(hv, id);
		raise(SIGKILL);
		_exit(3);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);

	struct hv *hv = open_sim(dir);
	cr_assert_str_eq(where(hv, "moved"), "b");
	cr_assert_str_eq(where(hv, "inflight"), "a");
	cr_assert_str_eq(where(hv, "stayed"), "b");
	struct hv_guest_info *list;
	size_t n;
	cr_assert_eq(ops->list_guests(hv, "b", &list, &n, err, sizeof(err)), 0);
	cr_assert_eq(n, 2);
	free(list);
	/* the world goes on: the guest that was in flight can migrate again */
	uint64_t id = migrate(hv, "inflight", "a", "b", NULL);
	cr_assert_gt(id >> 32, 1, "ids of a new run differ from the last run's");
	ops->close(hv);

	/* and a clean close/reopen keeps it all too */
	hv = open_sim(dir);
	cr_assert_str_eq(where(hv, "moved"), "b");
	cr_assert_str_eq(where(hv, "inflight"), "a");
	ops->close(hv);
	remove_dir(dir);
}

Test(hv_sim, virtual_time_follows_the_scale_and_survives_a_restart)
{
	char *dir = temp_dir();
	struct hv_env env = { .state_dir = dir, .time_scale = 1000 };
	struct hv *hv;
	cr_assert_eq(ops->open(&env, &hv, err, sizeof(err)), 0, "%s", err);
	int64_t before = ops->now_ns(hv);
	struct timespec pause = { 0, 20 * 1000 * 1000 };
	nanosleep(&pause, NULL);
	int64_t after = ops->now_ns(hv);
	cr_assert_geq(after - before, 19 * NS_PER_S, "20 ms real is >= 19 s virtual: %lld ns",
		      (long long)(after - before));
	host(hv, "a", "sim:///a"); /* a write carries the clock */
	int64_t last = ops->now_ns(hv);
	ops->close(hv);
	cr_assert_eq(ops->open(&env, &hv, err, sizeof(err)), 0, "%s", err);
	cr_assert_geq(ops->now_ns(hv), last, "virtual time went back across a restart");
	ops->close(hv);

	struct hv_env bad = { .time_scale = -1 };
	cr_assert_eq(ops->open(&bad, &hv, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "-1"), "%s", err);
	remove_dir(dir);
}

/* ---- scale ---- */

Test(hv_sim, a_world_of_1000_hosts_and_10000_guests_is_cheap, .timeout = 120)
{
	char *dir = temp_dir();
	struct timespec t_start, t_end;
	clock_gettime(CLOCK_MONOTONIC, &t_start);
	struct hv *hv = open_sim(dir);
	char name[32], uri[64];
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "h%d", i);
		snprintf(uri, sizeof(uri), "sim:///h%d?link=10gbit&mem=256g", i);
		host(hv, name, uri);
	}
	for (int i = 0; i < 10000; i++) {
		char on[32];
		snprintf(name, sizeof(name), "g%d", i);
		snprintf(on, sizeof(on), "h%d", i % 1000);
		guest(hv, name, on, 4 * GIB, 1000000);
	}
	clock_gettime(CLOCK_MONOTONIC, &t_end);
	double create_s = (double)(t_end.tv_sec - t_start.tv_sec) +
			  (double)(t_end.tv_nsec - t_start.tv_nsec) / 1e9;
	/* about a second under ASan on a slow disk; the bound catches O(n^2) */
	cr_assert_lt(create_s, 30.0, "creating the world took %.2f s", create_s);

	struct hv_guest_info *list;
	size_t n;
	cr_assert_eq(ops->list_guests(hv, NULL, &list, &n, err, sizeof(err)), 0);
	cr_assert_eq(n, 10000);
	cr_assert_str_eq(list[9999].name, "g9999");
	cr_assert_str_eq(list[9999].host, "h999");
	free(list);
	cr_assert_eq(ops->list_guests(hv, "h7", &list, &n, err, sizeof(err)), 0);
	cr_assert_eq(n, 10);
	free(list);
	ops->close(hv);

	clock_gettime(CLOCK_MONOTONIC, &t_start);
	hv = open_sim(dir);
	clock_gettime(CLOCK_MONOTONIC, &t_end);
	double reopen_s = (double)(t_end.tv_sec - t_start.tv_sec) +
			  (double)(t_end.tv_nsec - t_start.tv_nsec) / 1e9;
	cr_assert_lt(reopen_s, 10.0, "reopening took %.2f s", reopen_s);
	cr_assert_str_eq(where(hv, "g4321"), "h321");
	ops->close(hv);
	cr_log_info("1,000 hosts + 10,000 guests: created in %.3f s, reopened in %.3f s",
		    create_s, reopen_s);
	remove_dir(dir);
}

/* ---- checkpoint and restore ---- */

#include <fcntl.h>
#include <sqlite3.h>

static void pause_guest(struct hv *hv, const char *g)
{
	int rc = ops->guest_pause(hv, g, err, sizeof(err));
	cr_assert_eq(rc, 0, "pause %s: %d %s", g, rc, err);
}

static int running(struct hv *hv, const char *g)
{
	struct hv_guest_info info;
	int rc = ops->guest_info(hv, g, &info, err, sizeof(err));
	cr_assert_eq(rc, 0, "guest_info %s: %d %s", g, rc, err);
	return info.running;
}

/* A save of g into a new pipe; *rfd is the pipe's read end (the store's). */
static uint64_t save(struct hv *hv, const char *g, int background, int *rfd)
{
	int p[2];
	uint64_t id = 0;
	cr_assert_eq(pipe(p), 0);
	struct hv_image img = { .fd = p[1] };
	struct hv_save_params sp = { .background = background };
	int rc = ops->save_start(hv, g, &img, &sp, &id, err, sizeof(err));
	cr_assert_eq(rc, 0, "save %s: %d %s", g, rc, err);
	close(p[1]); /* as migd does after the call */
	*rfd = p[0];
	return id;
}

/* Everything the backend wrote to a save's pipe (it closed its end). */
static size_t drain(int rfd, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;
	while (got < len - 1 && (n = read(rfd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(rfd);
	return got;
}

/* A load of g on host from image (len bytes) through a pipe. */
static int load(struct hv *hv, const char *g, const char *on, const char *image, size_t len,
		uint64_t *id)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(write(p[1], image, len), (ssize_t)len);
	close(p[1]);
	struct hv_image img = { .fd = p[0] };
	int rc = ops->load_start(hv, g, on, &img, id, err, sizeof(err));
	close(p[0]);
	return rc;
}

Test(hv_sim, a_paused_save_takes_device_state_plus_memory_over_the_store)
{
	int64_t t0;
	struct hv *hv = open_manual(NULL, &t0); /* store: 1 GiB/s by default */
	host(hv, "a", "sim:///a");
	guest(hv, "g1", "a", GIB, 50000000);
	pause_guest(hv, "g1");
	cr_assert_eq(running(hv, "g1"), 0);
	int rfd;
	uint64_t id = save(hv, "g1", 0, &rfd);

	at(hv, t0, 0.505);
	struct hv_progress pr = poll_mig(hv, id);
	cr_assert_eq(pr.state, HV_MIG_ACTIVE);
	cr_assert_lt(llabs((long long)pr.transferred_bytes - (long long)(GIB / 2)), 1000,
		     "%llu", (unsigned long long)pr.transferred_bytes);
	at(hv, t0, 1.0049);
	cr_assert_eq(poll_mig(hv, id).state, HV_MIG_ACTIVE);
	at(hv, t0, 1.0051);
	pr = poll_mig(hv, id);
	cr_assert_eq(pr.state, HV_MIG_COMPLETED, "%d %s", pr.state, pr.error);
	cr_assert_eq(pr.total_time_ms, 1005); /* 5 ms of devices + 1 GiB at 1 GiB/s */
	cr_assert_eq(pr.pause_ms, 1005);
	cr_assert_str_eq(pr.mode, "paused");
	cr_assert_eq(pr.transferred_bytes, GIB);
	cr_assert_eq(pr.total_bytes, GIB);
	cr_assert_eq(running(hv, "g1"), 0, "a paused save leaves the guest paused");

	char image[4096];
	size_t len = drain(rfd, image, sizeof(image));
	cr_assert(len > 50 && len < 1000 && image[len - 1] == '\n', "%zu: %s", len, image);
	cr_assert(strstr(image, "\"guest\":\"g1\""), "%s", image);
	cr_assert(strstr(image, "\"memory_bytes\":1073741824"), "%s", image);
	cr_assert(strstr(image, "\"dirty_rate_bps\":50000000"), "%s", image);
	char as_of[64];
	snprintf(as_of, sizeof(as_of), "\"saved_at_ns\":%lld", (long long)t0);
	cr_assert(strstr(image, as_of), "%s in %s", as_of, image);
	ops->migrate_forget(hv, id);
	cr_assert_eq(ops->migrate_poll(hv, id, &pr, err, sizeof(err)), -ENOENT);
	ops->close(hv);
}

Test(hv_sim, a_background_save_resumes_the_guest_after_its_device_state)
{
	int64_t t0;
	struct hv_env env = { .store_bps = 512ull << 20 };
	struct hv *hv;
	cr_assert_eq(ops->open(&env, &hv, err, sizeof(err)), 0, "%s", err);
	t0 = ops->now_ns(hv) + NS_PER_S;
	at(hv, t0, 0);
	host(hv, "a", "sim:///a");
	guest(hv, "g1", "a", GIB, 0);
	pause_guest(hv, "g1");
	int rfd;
	uint64_t id = save(hv, "g1", 1, &rfd);
	at(hv, t0, 0.004);
	cr_assert_eq(running(hv, "g1"), 0, "paused while its devices are saved");
	/* it cannot be resumed by hand meanwhile: the device state is not taken */
	cr_assert_eq(ops->guest_resume(hv, "g1", err, sizeof(err)), -EBUSY);
	at(hv, t0, 0.006);
	cr_assert_eq(running(hv, "g1"), 1, "running again while memory is written");
	at(hv, t0, 2.006); /* 1 GiB at 512 MiB/s */
	struct hv_progress pr = poll_mig(hv, id);
	cr_assert_eq(pr.state, HV_MIG_COMPLETED);
	cr_assert_eq(pr.total_time_ms, 2005);
	cr_assert_eq(pr.pause_ms, 5);
	cr_assert_str_eq(pr.mode, "background");
	cr_assert_eq(running(hv, "g1"), 1);
	char image[4096];
	drain(rfd, image, sizeof(image));
	cr_assert(strstr(image, "\"mode\":\"background\""), "%s", image);
	ops->close(hv);
}

Test(hv_sim, saves_and_loads_share_the_store_bandwidth)
{
	int64_t t0;
	struct hv *hv = open_manual(NULL, &t0);
	host(hv, "a", "sim:///a");
	host(hv, "b", "sim:///b");
	guest(hv, "g1", "a", GIB, 0);
	guest(hv, "g2", "b", GIB, 0);
	pause_guest(hv, "g1");
	pause_guest(hv, "g2");
	int r1, r2;
	uint64_t s1 = save(hv, "g1", 0, &r1);
	at(hv, t0, 0.5);
	uint64_t s2 = save(hv, "g2", 0, &r2);
	/* g1: 0.5 GiB alone by 0.505, then the rest at half rate: ends at 1.505;
	 * g2: 0.5 GiB at half rate by 1.505, the rest alone: ends at 2.005 */
	struct hv_progress p1 = run_to_end(hv, t0, 0.5, 0.25, s1);
	cr_assert_eq(p1.total_time_ms, 1505);
	struct hv_progress p2 = run_to_end(hv, t0, 1.5, 0.25, s2);
	cr_assert_eq(p2.total_time_ms, 1505); /* started at 0.5 */
	char image[4096];
	drain(r1, image, sizeof(image));
	drain(r2, image, sizeof(image));

	/* a load and a save at once: each at half the store */
	size_t len = strlen(image);
	cr_assert_eq(ops->guest_destroy(hv, "g2", err, sizeof(err)), 0, "%s", err);
	at(hv, t0, 10);
	uint64_t l2;
	cr_assert_eq(load(hv, "g2", "a", image, len, &l2), 0, "%s", err);
	uint64_t s3 = save(hv, "g1", 0, &r1);
	/* the load starts its guest for 0.1 s; the save has the store alone
	 * from 10.005 to 10.1 (0.095 GiB), then both at half: the save's other
	 * 0.905 GiB take 1.81 s (ends 11.91), then the load has the store
	 * alone for its last 0.095 GiB (ends 12.005) */
	struct hv_progress pl = run_to_end(hv, t0, 10, 0.25, l2);
	struct hv_progress ps = poll_mig(hv, s3);
	cr_assert_eq(pl.state, HV_MIG_COMPLETED, "%s", pl.error);
	cr_assert_eq(pl.total_time_ms, 2005);
	cr_assert_eq(ps.state, HV_MIG_COMPLETED);
	cr_assert_eq(ps.total_time_ms, 1910);
	close(r1);
	ops->close(hv);
}

Test(hv_sim, a_paused_guest_dirties_no_memory)
{
	int64_t t0;
	struct hv *hv = open_manual(NULL, &t0);
	host(hv, "a", "sim:///a?link=100mbit");
	host(hv, "b", "sim:///b");
	/* dirties 4x what the link carries: running, it never converges */
	guest(hv, "busy", "a", GIB, 50000000);
	pause_guest(hv, "busy");
	pause_guest(hv, "busy"); /* idempotent */
	uint64_t id = migrate(hv, "busy", "a", "b", NULL);
	cr_assert_eq(ops->guest_resume(hv, "busy", err, sizeof(err)), -EBUSY);
	struct hv_progress pr = run_to_end(hv, t0, 0, 1.0, id);
	cr_assert_eq(pr.state, HV_MIG_COMPLETED, "%s", pr.error);
	cr_assert_leq(pr.rounds, 2);
	cr_assert_lt(pr.transferred_bytes, GIB + (1 << 20), "%llu",
		     (unsigned long long)pr.transferred_bytes);
	cr_assert_str_eq(where(hv, "busy"), "b");
	cr_assert_eq(running(hv, "busy"), 0, "still paused where it went");
	cr_assert_eq(ops->guest_resume(hv, "busy", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(ops->guest_resume(hv, "busy", err, sizeof(err)), 0, "idempotent");
	cr_assert_eq(running(hv, "busy"), 1);
	ops->close(hv);
}

Test(hv_sim, a_destroyed_guest_is_loaded_on_another_host_paused)
{
	int64_t t0;
	struct hv *hv = open_manual(NULL, &t0);
	host(hv, "a", "sim:///a");
	host(hv, "b", "sim:///b?mem=1g");
	guest(hv, "g1", "a", GIB, 1000);
	pause_guest(hv, "g1");
	int rfd;
	uint64_t id = save(hv, "g1", 0, &rfd);
	run_to_end(hv, t0, 0, 0.5, id);
	char image[4096];
	size_t len = drain(rfd, image, sizeof(image));

	cr_assert_eq(ops->guest_destroy(hv, "g1", err, sizeof(err)), 0, "%s", err);
	struct hv_guest_info info;
	cr_assert_eq(ops->guest_info(hv, "g1", &info, err, sizeof(err)), -ENOENT);
	cr_assert_eq(ops->guest_destroy(hv, "g1", err, sizeof(err)), -ENOENT);
	struct hv_guest_info *list;
	size_t n;
	cr_assert_eq(ops->list_guests(hv, NULL, &list, &n, err, sizeof(err)), 0);
	cr_assert_eq(n, 0, "a destroyed guest runs nowhere");
	free(list);
	cr_assert_eq(ops->migrate_start(hv, "g1", "a", "b", NULL, &id, err, sizeof(err)), -ENOENT);

	at(hv, t0, 10);
	cr_assert_eq(load(hv, "g1", "b", image, len, &id), 0, "%s", err);
	at(hv, t0, 10.05);
	cr_assert_str_eq(where(hv, "g1"), "b"); /* there, paused, while it loads */
	cr_assert_eq(running(hv, "g1"), 0);
	cr_assert_eq(ops->guest_resume(hv, "g1", err, sizeof(err)), -EBUSY);
	cr_assert_eq(ops->guest_destroy(hv, "g1", err, sizeof(err)), -EBUSY);
	at(hv, t0, 11.0999);
	cr_assert_eq(poll_mig(hv, id).state, HV_MIG_ACTIVE);
	at(hv, t0, 11.1);
	struct hv_progress pr = poll_mig(hv, id);
	cr_assert_eq(pr.state, HV_MIG_COMPLETED, "%s", pr.error);
	cr_assert_eq(pr.total_time_ms, 1100); /* start 0.1 s + 1 GiB at 1 GiB/s */
	cr_assert_eq(pr.transferred_bytes, GIB);
	cr_assert_str_eq(pr.mode, "");
	cr_assert_str_eq(where(hv, "g1"), "b");
	cr_assert_eq(running(hv, "g1"), 0, "loaded paused");
	cr_assert_eq(ops->guest_resume(hv, "g1", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(running(hv, "g1"), 1);
	/* b had room for one such guest only */
	guest(hv, "g2", "a", GIB, 0);
	cr_assert_eq(ops->guest_destroy(hv, "g2", err, sizeof(err)), 0);
	cr_assert_eq(load(hv, "g2", "b", image, len, &id), -ENOSPC);
	ops->close(hv);
}

Test(hv_sim, a_load_of_a_running_guest_or_of_an_unknown_one_is_refused)
{
	int64_t t0;
	struct hv *hv = open_manual(NULL, &t0);
	host(hv, "a", "sim:///a");
	host(hv, "b", "sim:///b");
	guest(hv, "g1", "a", GIB, 0);
	uint64_t id;
	cr_assert_eq(load(hv, "g1", "b", "x", 1, &id), -EEXIST);
	cr_assert(strstr(err, "g1") && strstr(err, "runs on a"), "%s", err);
	cr_assert_eq(load(hv, "nobody", "b", "x", 1, &id), -ENOENT);
	cr_assert(strstr(err, "nobody"), "%s", err);
	/* a save needs a paused guest and a pipe */
	int p[2];
	cr_assert_eq(pipe(p), 0);
	struct hv_image img = { .fd = p[1] };
	cr_assert_eq(ops->save_start(hv, "g1", &img, NULL, &id, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "paused"), "%s", err);
	pause_guest(hv, "g1");
	struct hv_image file = { .fd = -1, .path = "/store/g1.img" };
	cr_assert_eq(ops->save_start(hv, "g1", &file, NULL, &id, err, sizeof(err)), -ENOTSUP);
	cr_assert(strstr(err, "fd") && strstr(err, "/store/g1.img"), "%s", err);
	close(p[0]);
	close(p[1]);
	ops->close(hv);
}

Test(hv_sim, a_bad_image_fails_the_load_and_leaves_nothing_on_the_host)
{
	int64_t t0;
	struct hv *hv = open_manual(NULL, &t0);
	host(hv, "a", "sim:///a");
	guest(hv, "g1", "a", GIB, 0);
	guest(hv, "g2", "a", GIB / 2, 0);
	pause_guest(hv, "g2");
	int rfd;
	uint64_t id = save(hv, "g2", 0, &rfd);
	run_to_end(hv, t0, 0, 0.5, id);
	char g2_image[4096];
	size_t g2_len = drain(rfd, g2_image, sizeof(g2_image));
	cr_assert_eq(ops->guest_destroy(hv, "g1", err, sizeof(err)), 0);

	static const struct {
		const char *image, *why;
	} bad[] = {
		{ "garbage\n", "not a sim checkpoint image" },
		{ "", "empty" },
		{ "{\"format\":\"other\",\"version\":1,\"guest\":\"g1\",\"memory_bytes\":1}\n",
		  "not a sim checkpoint image" },
		{ NULL, "of guest \"g2\", not of g1" },
	};
	double t = 1;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *image = bad[i].image ? bad[i].image : g2_image;
		size_t len = bad[i].image ? strlen(image) : g2_len;
		at(hv, t0, t);
		cr_assert_eq(load(hv, "g1", "a", image, len, &id), 0, "%s", err);
		struct hv_progress pr = run_to_end(hv, t0, t, 0.5, id);
		cr_assert_eq(pr.state, HV_MIG_FAILED, "image %zu", i);
		cr_assert(strstr(pr.error, bad[i].why), "image %zu: %s", i, pr.error);
		struct hv_guest_info info;
		cr_assert_eq(ops->guest_info(hv, "g1", &info, err, sizeof(err)), -ENOENT,
			     "nothing of g1 is left on a");
		t += 5;
	}
	ops->close(hv);
}

Test(hv_sim, an_aborted_save_leaves_the_guest_paused_on_its_host)
{
	int64_t t0;
	struct hv *hv = open_manual(NULL, &t0);
	host(hv, "a", "sim:///a");
	guest(hv, "g1", "a", GIB, 0);
	for (int background = 0; background <= 1; background++) {
		at(hv, t0, background * 10);
		pause_guest(hv, "g1");
		int rfd;
		uint64_t id = save(hv, "g1", background, &rfd);
		at(hv, t0, background * 10 + 0.5);
		cr_assert_eq(running(hv, "g1"), background);
		cr_assert_eq(ops->migrate_abort(hv, id, err, sizeof(err)), 0, "%s", err);
		struct hv_progress pr = poll_mig(hv, id);
		cr_assert_eq(pr.state, HV_MIG_CANCELLED);
		cr_assert_lt(pr.transferred_bytes, GIB * 6 / 10);
		cr_assert_str_eq(where(hv, "g1"), "a");
		cr_assert_eq(running(hv, "g1"), 0, "paused again (background %d)", background);
		cr_assert_eq(ops->migrate_abort(hv, id, err, sizeof(err)), -EALREADY);
		char image[64];
		cr_assert_eq(drain(rfd, image, sizeof(image)), 0, "no image after an abort");
		ops->migrate_forget(hv, id);
		cr_assert_eq(ops->guest_resume(hv, "g1", err, sizeof(err)), 0, "%s", err);
	}
	ops->close(hv);
}

Test(hv_sim, a_guests_spec_defines_it_again_and_destroyed_guests_survive_a_restart)
{
	char *dir = temp_dir();
	int64_t t0;
	struct hv *hv = open_manual(dir, &t0);
	host(hv, "a", "sim:///a");
	host(hv, "b", "sim:///b");
	guest(hv, "kept", "a", GIB, 123);
	guest(hv, "gone", "a", GIB / 2, 456);
	guest(hv, "idle", "b", GIB, 0);
	pause_guest(hv, "idle");
	cr_assert_eq(ops->guest_destroy(hv, "gone", err, sizeof(err)), 0, "%s", err);
	char *config = NULL;
	cr_assert_eq(ops->guest_config(hv, "gone", &config, err, sizeof(err)), 0, "%s", err);
	cr_assert(strstr(config, "\"memory_bytes\":536870912") && strstr(config, "456"), "%s",
		  config);
	cr_assert_eq(ops->guest_define(hv, "gone", config, err, sizeof(err)), -EEXIST);
	cr_assert_eq(ops->guest_define(hv, "other", config, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "another guest"), "%s", err);
	cr_assert_eq(ops->guest_define(hv, "x", "{\"name\":\"x\"", err, sizeof(err)), -EINVAL);
	ops->close(hv);

	/* a new sim (migd lost everything) learns it from the config */
	struct hv *fresh = open_sim(NULL);
	host(fresh, "c", "sim:///c");
	cr_assert_eq(ops->guest_define(fresh, "gone", config, err, sizeof(err)), 0, "%s", err);
	struct hv_guest_info info;
	cr_assert_eq(ops->guest_info(fresh, "gone", &info, err, sizeof(err)), -ENOENT,
		     "defined, not running");
	char *again = NULL;
	cr_assert_eq(ops->guest_config(fresh, "gone", &again, err, sizeof(err)), 0);
	cr_assert_str_eq(again, config);
	free(again);
	ops->close(fresh);
	free(config);

	hv = open_sim(dir);
	cr_assert_str_eq(where(hv, "kept"), "a");
	cr_assert_eq(running(hv, "kept"), 1);
	cr_assert_eq(running(hv, "idle"), 0, "paused across a restart");
	cr_assert_eq(ops->guest_info(hv, "gone", &info, err, sizeof(err)), -ENOENT);
	cr_assert_eq(ops->guest_config(hv, "gone", &config, err, sizeof(err)), 0,
		     "destroyed but known after a restart: %s", err);
	free(config);
	struct hv_guest_spec spec = { .name = "gone", .memory_bytes = GIB };
	cr_assert_eq(ops->guest_create(hv, "b", &spec, err, sizeof(err)), -EEXIST);
	ops->close(hv);
	remove_dir(dir);
}

Test(hv_sim, a_version_1_sim_db_is_upgraded_in_place)
{
	char *dir = temp_dir();
	char path[300];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/sim.db", dir);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db,
		"CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
		"CREATE TABLE hosts(name TEXT PRIMARY KEY, uri TEXT NOT NULL);"
		"CREATE TABLE guests(name TEXT PRIMARY KEY, host TEXT NOT NULL REFERENCES hosts(name),"
		" memory_bytes INTEGER NOT NULL, dirty_rate_bps INTEGER NOT NULL);"
		"INSERT INTO hosts VALUES ('a', 'sim:///a');"
		"INSERT INTO guests VALUES ('g1', 'a', 1073741824, 7);"
		"PRAGMA user_version = 1;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	struct hv *hv = open_sim(dir);
	cr_assert_str_eq(where(hv, "g1"), "a");
	cr_assert_eq(running(hv, "g1"), 1);
	cr_assert_eq(ops->guest_destroy(hv, "g1", err, sizeof(err)), 0, "%s", err);
	ops->close(hv);
	hv = open_sim(dir);
	struct hv_guest_info info;
	cr_assert_eq(ops->guest_info(hv, "g1", &info, err, sizeof(err)), -ENOENT);
	ops->close(hv);
	remove_dir(dir);
}

/* Two saves and a load overlapping, their figures polled every step_s. */
static void ckpt_scenario(double step_s, uint64_t out_ms[3])
{
	int64_t t0;
	struct hv *hv = open_manual(NULL, &t0);
	host(hv, "a", "sim:///a");
	guest(hv, "g1", "a", GIB, 0);
	guest(hv, "g2", "a", GIB / 2, 0);
	guest(hv, "g3", "a", GIB / 4, 0);
	pause_guest(hv, "g1");
	pause_guest(hv, "g2");
	cr_assert_eq(ops->guest_destroy(hv, "g3", err, sizeof(err)), 0);
	char image[200];
	int len = snprintf(image, sizeof(image),
			   "{\"format\":\"migd-sim-image\",\"version\":1,\"guest\":\"g3\","
			   "\"memory_bytes\":%llu}\n", GIB / 4);
	int r1, r2;
	uint64_t ids[3];
	ids[0] = save(hv, "g1", 1, &r1);
	at(hv, t0, 0.3);
	ids[1] = save(hv, "g2", 0, &r2);
	at(hv, t0, 0.7);
	cr_assert_eq(load(hv, "g3", "a", image, (size_t)len, &ids[2]), 0, "%s", err);
	for (int i = 0; i < 3; i++) {
		struct hv_progress pr = run_to_end(hv, t0, 0.7, step_s, ids[i]);
		cr_assert_eq(pr.state, HV_MIG_COMPLETED, "%d: %s", i, pr.error);
		out_ms[i] = pr.total_time_ms;
	}
	close(r1);
	close(r2);
	ops->close(hv);
}

Test(hv_sim, save_and_load_figures_do_not_depend_on_how_often_migd_polls)
{
	uint64_t fine[3], coarse[3];
	ckpt_scenario(0.001, fine);
	ckpt_scenario(0.37, coarse);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(fine[i], coarse[i], "job %d: %llu vs %llu ms", i,
			     (unsigned long long)fine[i], (unsigned long long)coarse[i]);
	/* g1 alone from 0.005 to 0.305 (0.3 GiB); g1 and g2 at half to 0.8
	 * (0.2475 GiB each) while g3 starts; all three at a third: g3's 0.25
	 * GiB end at 1.55; g2's last 0.0025 GiB at half end at 1.555; g1's
	 * last 0.2 GiB alone end at 1.755 */
	cr_assert_eq(fine[0], 1755);
	cr_assert_eq(fine[1], 1255);
	cr_assert_eq(fine[2], 850);
}
