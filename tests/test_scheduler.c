/*
 * The staggered scheduler: targeted cases for each rule, then a property
 * test that drives the planner through many seeded random clusters on a
 * virtual clock (migrations finish or fail after random durations, requests
 * and evacuations arrive, hosts go bad) and checks at every step that no
 * limit is exceeded, no guest is double-booked, no migration puts two ranks
 * of a job on one host, the start gap holds and cluster-wide waits hold back
 * lower priorities; each plan is also compared with a brute-force reference
 * written from the rules in scheduler.h. Failures print the seed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler.h"

#define GIB (1ull << 30)

/* --- helpers for the targeted cases ------------------------------------ */

struct cluster {
	struct sched_host hosts[16];
	struct sched_guest guests[32];
	struct sched_running running[16];
	struct sched_request queue[32];
	struct sched_input in;
	struct sched_plan plan;
};

static void cluster_init(struct cluster *c, size_t n_hosts, uint64_t capacity_gib)
{
	static const char *names[] = { "h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7" };
	memset(c, 0, sizeof(*c));
	for (size_t h = 0; h < n_hosts; h++) {
		c->hosts[h].name = h < 8 ? names[h] : NULL;
		c->hosts[h].mem_capacity_bytes = capacity_gib * GIB;
	}
	c->in.hosts = c->hosts;
	c->in.n_hosts = n_hosts;
	c->in.guests = c->guests;
	c->in.running = c->running;
	c->in.queue = c->queue;
}

static uint32_t add_guest(struct cluster *c, const char *name, uint32_t host, uint64_t mem_gib,
			  uint64_t job, uint32_t rank)
{
	uint32_t g = (uint32_t)c->in.n_guests++;
	c->guests[g] = (struct sched_guest){ name, host, mem_gib * GIB, job, rank };
	c->hosts[host].mem_used_bytes += mem_gib * GIB;
	return g;
}

static void add_request(struct cluster *c, uint32_t guest, uint32_t dst, enum sched_prio prio,
			double enqueue_s)
{
	size_t i = c->in.n_queue++;
	c->queue[i] = (struct sched_request){ 100 + i, guest, dst, prio, enqueue_s };
}

static void add_running(struct cluster *c, uint32_t guest, uint32_t dst, double start_s)
{
	c->running[c->in.n_running++] =
		(struct sched_running){ guest, c->guests[guest].host, dst, start_s };
}

static void plan(struct cluster *c)
{
	sched_plan_release(&c->plan);
	cr_assert_eq(sched_plan(&c->in, &c->plan), 0);
	cr_assert_eq(c->plan.n_starts + c->plan.n_rejects + c->plan.n_waits, c->in.n_queue);
}

static const struct sched_wait *wait_of(const struct cluster *c, size_t request)
{
	for (size_t i = 0; i < c->plan.n_waits; i++)
		if (c->plan.waits[i].request == request)
			return &c->plan.waits[i];
	return NULL;
}

static void fini(struct cluster *c)
{
	sched_plan_release(&c->plan);
}

/* --- targeted cases ---------------------------------------------------- */

Test(scheduler, chooses_the_host_with_most_free_memory)
{
	struct cluster c;
	cluster_init(&c, 4, 64);
	uint32_t g = add_guest(&c, "g0", 0, 4, 0, 0);
	add_guest(&c, "x1", 1, 8, 0, 0);
	add_guest(&c, "x2", 2, 2, 0, 0);
	add_guest(&c, "x3", 3, 2, 0, 0);
	add_request(&c, g, SCHED_NONE, SCHED_PRIO_MANUAL, 0);
	plan(&c);
	cr_assert_eq(c.plan.n_starts, 1);
	cr_assert_eq(c.plan.starts[0].dst, 2, "h2 and h3 tie: lowest index");
	cr_assert_eq(c.plan.starts[0].src, 0);
	cr_assert_eq(c.plan.starts[0].request_id, 100);
	fini(&c);
}

Test(scheduler, counts_running_migrations_against_destination_memory)
{
	struct cluster c;
	cluster_init(&c, 3, 64);
	uint32_t g = add_guest(&c, "g0", 0, 4, 0, 0);
	uint32_t moving = add_guest(&c, "m", 0, 16, 0, 0);
	add_guest(&c, "x", 2, 8, 0, 0);
	add_running(&c, moving, 1, 0); /* h1 will hold 16 GiB: h2 has more free */
	add_request(&c, g, SCHED_NONE, SCHED_PRIO_MANUAL, 0);
	plan(&c);
	cr_assert_eq(c.plan.n_starts, 1);
	cr_assert_eq(c.plan.starts[0].dst, 2);
	fini(&c);
}

Test(scheduler, passes_the_bandwidth_cap_through)
{
	struct cluster c;
	cluster_init(&c, 2, 64);
	add_request(&c, add_guest(&c, "g0", 0, 1, 0, 0), SCHED_NONE, SCHED_PRIO_MANUAL, 0);
	c.in.limits.bandwidth_cap_bps = 50e6;
	plan(&c);
	cr_assert_eq(c.plan.n_starts, 1);
	cr_assert_eq(c.plan.starts[0].bandwidth_cap_bps, 50e6);
	fini(&c);
}

Test(scheduler, never_places_two_ranks_of_a_job_on_one_host)
{
	struct cluster c;
	cluster_init(&c, 4, 64);
	uint32_t r0 = add_guest(&c, "r0", 0, 4, 7, 0);
	add_guest(&c, "r1", 1, 4, 7, 1);
	add_guest(&c, "r2", 2, 4, 7, 2);
	add_guest(&c, "busy", 3, 32, 0, 0); /* least free, but the only job-free host */
	add_request(&c, r0, SCHED_NONE, SCHED_PRIO_MANUAL, 0);
	plan(&c);
	cr_assert_eq(c.plan.n_starts, 1);
	cr_assert_eq(c.plan.starts[0].dst, 3);
	fini(&c);
}

Test(scheduler, excludes_hosts_receiving_a_rank_of_the_job)
{
	struct cluster c;
	cluster_init(&c, 3, 64);
	uint32_t r0 = add_guest(&c, "r0", 0, 4, 7, 0);
	uint32_t r1 = add_guest(&c, "r1", 0, 4, 7, 1);
	add_running(&c, r1, 1, 0);
	add_request(&c, r0, SCHED_NONE, SCHED_PRIO_MANUAL, 0);
	c.hosts[2].disabled = true;
	plan(&c);
	cr_assert_eq(c.plan.n_rejects, 1, "h1 receives r1, h2 is disabled");
	cr_assert(strstr(c.plan.rejects[0].reason, "r0"), "%s", c.plan.rejects[0].reason);
	cr_assert(strstr(c.plan.rejects[0].reason, "job 7"), "%s", c.plan.rejects[0].reason);
	fini(&c);
}

Test(scheduler, staggers_ranks_of_one_job)
{
	struct cluster c;
	cluster_init(&c, 6, 64);
	uint32_t r0 = add_guest(&c, "r0", 0, 4, 7, 0);
	uint32_t r1 = add_guest(&c, "r1", 1, 4, 7, 1);
	uint32_t other = add_guest(&c, "other", 2, 4, 0, 0);
	add_request(&c, r0, SCHED_NONE, SCHED_PRIO_MANUAL, 0);
	add_request(&c, r1, SCHED_NONE, SCHED_PRIO_MANUAL, 1);
	add_request(&c, other, SCHED_NONE, SCHED_PRIO_PERIODIC, 2);
	plan(&c);
	cr_assert_eq(c.plan.n_starts, 2);
	cr_assert_eq(c.plan.starts[0].guest, r0);
	cr_assert_eq(c.plan.starts[1].guest, other, "backfilled past the waiting rank");
	cr_assert_eq(wait_of(&c, 1)->why, SCHED_WAIT_JOB_BUSY);

	/* while r0 migrates, r1 still waits */
	c.queue[0] = c.queue[1];
	c.in.n_queue = 1;
	add_running(&c, r0, 3, 0);
	plan(&c);
	cr_assert_eq(c.plan.n_starts, 0);
	cr_assert_eq(c.plan.waits[0].why, SCHED_WAIT_JOB_BUSY);
	fini(&c);
}

Test(scheduler, never_starts_a_guest_that_is_migrating)
{
	struct cluster c;
	cluster_init(&c, 3, 64);
	uint32_t g = add_guest(&c, "g0", 0, 4, 0, 0);
	add_running(&c, g, 1, 0);
	add_request(&c, g, SCHED_NONE, SCHED_PRIO_MANUAL, 0);
	add_request(&c, g, 2, SCHED_PRIO_MANUAL, 0);
	plan(&c);
	cr_assert_eq(c.plan.n_starts, 0);
	cr_assert_eq(wait_of(&c, 0)->why, SCHED_WAIT_GUEST_BUSY);
	cr_assert_eq(wait_of(&c, 1)->why, SCHED_WAIT_GUEST_BUSY);

	/* two requests for one idle guest: the first starts, the second waits */
	c.in.n_running = 0;
	plan(&c);
	cr_assert_eq(c.plan.n_starts, 1);
	cr_assert_eq(wait_of(&c, 1)->why, SCHED_WAIT_GUEST_BUSY);
	fini(&c);
}

Test(scheduler, starts_manual_then_health_then_periodic_then_oldest)
{
	struct cluster c;
	cluster_init(&c, 8, 64);
	uint32_t g[5];
	for (uint32_t i = 0; i < 5; i++)
		g[i] = add_guest(&c, NULL, i, 1, 0, 0);
	add_request(&c, g[0], SCHED_NONE, SCHED_PRIO_PERIODIC, 0);
	add_request(&c, g[1], SCHED_NONE, SCHED_PRIO_HEALTH, 5);
	add_request(&c, g[2], SCHED_NONE, SCHED_PRIO_MANUAL, 9);
	add_request(&c, g[3], SCHED_NONE, SCHED_PRIO_HEALTH, 3);
	add_request(&c, g[4], SCHED_NONE, SCHED_PRIO_PERIODIC, 1);
	plan(&c);
	size_t want[] = { 2, 3, 1, 0, 4 };
	cr_assert_eq(c.plan.n_starts, 5);
	for (size_t i = 0; i < 5; i++)
		cr_assert_eq(c.plan.starts[i].request, want[i], "start %zu is request %zu", i,
			     c.plan.starts[i].request);

	c.in.limits.max_concurrent = 2;
	plan(&c);
	cr_assert_eq(c.plan.n_starts, 2);
	cr_assert_eq(c.plan.starts[0].request, 2);
	cr_assert_eq(c.plan.starts[1].request, 3);
	cr_assert_eq(wait_of(&c, 0)->why, SCHED_WAIT_CLUSTER_FULL);
	fini(&c);
}

Test(scheduler, min_gap_allows_one_start_and_says_when_the_next_may_go)
{
	struct cluster c;
	cluster_init(&c, 4, 64);
	add_request(&c, add_guest(&c, "a", 0, 1, 0, 0), SCHED_NONE, SCHED_PRIO_MANUAL, 0);
	add_request(&c, add_guest(&c, "b", 1, 1, 0, 0), SCHED_NONE, SCHED_PRIO_MANUAL, 1);
	c.in.limits.min_gap_s = 30;
	c.in.now_s = 100;
	plan(&c);
	cr_assert_eq(c.plan.n_starts, 1);
	cr_assert_eq(wait_of(&c, 1)->why, SCHED_WAIT_GAP);
	cr_assert_eq(c.plan.next_start_s, 130);

	/* the last start, finished or not, counts */
	c.in.have_last_start = true;
	c.in.last_start_s = 80;
	plan(&c);
	cr_assert_eq(c.plan.n_starts, 0);
	cr_assert_eq(c.plan.next_start_s, 110);
	c.in.now_s = 110;
	plan(&c);
	cr_assert_eq(c.plan.n_starts, 1);
	fini(&c);
}

Test(scheduler, outbound_limit_holds_back_only_its_host)
{
	struct cluster c;
	cluster_init(&c, 4, 64);
	uint32_t a = add_guest(&c, "a", 0, 1, 0, 0);
	uint32_t b = add_guest(&c, "b", 0, 1, 0, 0);
	uint32_t d = add_guest(&c, "d", 1, 1, 0, 0);
	c.in.limits.max_outbound_per_host = 1;
	add_request(&c, a, SCHED_NONE, SCHED_PRIO_MANUAL, 0);
	add_request(&c, b, SCHED_NONE, SCHED_PRIO_MANUAL, 1);
	add_request(&c, d, SCHED_NONE, SCHED_PRIO_PERIODIC, 2);
	plan(&c);
	cr_assert_eq(c.plan.n_starts, 2);
	cr_assert_eq(c.plan.starts[1].guest, d);
	cr_assert_eq(wait_of(&c, 1)->why, SCHED_WAIT_SOURCE_BUSY);

	c.hosts[0].max_outbound = 2; /* a host's own limit wins over the default */
	plan(&c);
	cr_assert_eq(c.plan.n_starts, 3);
	fini(&c);
}

Test(scheduler, inbound_limit_sends_the_guest_to_the_next_best_host)
{
	struct cluster c;
	cluster_init(&c, 3, 64);
	uint32_t a = add_guest(&c, "a", 0, 1, 0, 0);
	uint32_t b = add_guest(&c, "b", 0, 1, 0, 0);
	uint32_t e = add_guest(&c, "e", 0, 1, 0, 0);
	add_guest(&c, "x", 2, 8, 0, 0);
	c.in.limits.max_inbound_per_host = 1;
	add_request(&c, a, SCHED_NONE, SCHED_PRIO_MANUAL, 0);
	add_request(&c, b, SCHED_NONE, SCHED_PRIO_MANUAL, 1);
	add_request(&c, e, SCHED_NONE, SCHED_PRIO_MANUAL, 2);
	plan(&c);
	cr_assert_eq(c.plan.n_starts, 2);
	cr_assert_eq(c.plan.starts[0].dst, 1);
	cr_assert_eq(c.plan.starts[1].dst, 2, "h1 has no inbound slot left");
	cr_assert_eq(wait_of(&c, 2)->why, SCHED_WAIT_DEST_BUSY);

	/* an explicit destination waits for its own slot */
	c.in.n_queue = 0;
	add_running(&c, a, 1, 0);
	add_request(&c, b, 1, SCHED_PRIO_MANUAL, 0);
	plan(&c);
	cr_assert_eq(c.plan.n_starts, 0);
	cr_assert_eq(c.plan.waits[0].why, SCHED_WAIT_DEST_BUSY);
	fini(&c);
}

Test(scheduler, explicit_destination_is_used_or_rejected_with_a_reason)
{
	struct cluster c;
	cluster_init(&c, 5, 16);
	uint32_t g = add_guest(&c, "web1", 0, 4, 3, 0);
	add_guest(&c, "rank1", 4, 4, 3, 1);
	add_guest(&c, "fat", 3, 14, 0, 0);
	c.hosts[1].disabled = true;
	c.hosts[2].degraded = true;
	struct { uint32_t dst; const char *needle; } cases[] = {
		{ 0, "h0 is its current host" }, { 1, "h1 is disabled" },
		{ 2, "h2 is degraded" }, { 3, "h3 has 2 GiB free, the guest needs 4 GiB" },
		{ 4, "h4 holds or receives another rank of job 3" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c.in.n_queue = 0;
		add_request(&c, g, cases[i].dst, SCHED_PRIO_MANUAL, 0);
		plan(&c);
		cr_assert_eq(c.plan.n_rejects, 1, "dst %u", cases[i].dst);
		cr_assert(strstr(c.plan.rejects[0].reason, "guest web1: destination "),
			  "%s", c.plan.rejects[0].reason);
		cr_assert(strstr(c.plan.rejects[0].reason, cases[i].needle), "%s",
			  c.plan.rejects[0].reason);
	}
	c.hosts[2].degraded = false;
	c.in.n_queue = 0;
	add_request(&c, g, 2, SCHED_PRIO_MANUAL, 0);
	plan(&c);
	cr_assert_eq(c.plan.n_starts, 1);
	cr_assert_eq(c.plan.starts[0].dst, 2);
	fini(&c);
}

Test(scheduler, rejects_a_guest_no_host_can_take_and_says_why)
{
	struct cluster c;
	cluster_init(&c, 3, 16);
	uint32_t big = add_guest(&c, "big", 0, 12, 0, 0);
	add_guest(&c, "x1", 1, 8, 0, 0);
	add_guest(&c, "x2", 2, 6, 0, 0);
	add_request(&c, big, SCHED_NONE, SCHED_PRIO_HEALTH, 0);
	plan(&c);
	cr_assert_eq(c.plan.n_rejects, 1);
	cr_assert_str_eq(c.plan.rejects[0].reason,
			 "guest big: needs 12 GiB free, the most on any eligible host is 10 GiB");

	c.hosts[1].disabled = c.hosts[2].degraded = true;
	plan(&c);
	cr_assert_str_eq(c.plan.rejects[0].reason,
			 "guest big: no enabled, healthy host other than its own (h0)");
	fini(&c);
}

Test(scheduler, evacuation_queues_every_guest_of_the_host)
{
	struct cluster c;
	cluster_init(&c, 4, 64);
	for (uint32_t i = 0; i < 9; i++)
		add_guest(&c, NULL, i % 3, 2, i % 3 == 0 ? 5 : 0, i);
	struct sched_request *reqs;
	size_t n;
	cr_assert_eq(sched_evacuation(c.guests, c.in.n_guests, 0, SCHED_PRIO_HEALTH, 42, 1000,
				      &reqs, &n), 0);
	cr_assert_eq(n, 3);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(reqs[i].guest, 3 * i);
		cr_assert_eq(reqs[i].id, 1000 + i);
		cr_assert_eq(reqs[i].dst, SCHED_NONE);
		cr_assert_eq(reqs[i].prio, SCHED_PRIO_HEALTH);
		cr_assert_eq(reqs[i].enqueue_s, 42);
		c.queue[i] = reqs[i];
	}
	free(reqs);
	/* three ranks of job 5: staggered, one at a time */
	c.in.n_queue = n;
	c.hosts[0].disabled = true;
	plan(&c);
	cr_assert_eq(c.plan.n_starts, 1);
	cr_assert_eq(c.plan.n_waits, 2);

	cr_assert_eq(sched_evacuation(c.guests, c.in.n_guests, 3, SCHED_PRIO_HEALTH, 0, 1, &reqs,
				      &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_null(reqs);
	fini(&c);
}

Test(scheduler, rejects_malformed_input)
{
	struct cluster c;
	cluster_init(&c, 2, 64);
	uint32_t g = add_guest(&c, "g", 0, 1, 0, 0);
	add_request(&c, g, 5, SCHED_PRIO_MANUAL, 0);
	cr_assert_eq(sched_plan(&c.in, &c.plan), -EINVAL, "destination out of range");
	c.queue[0].dst = SCHED_NONE;
	c.queue[0].guest = 9;
	cr_assert_eq(sched_plan(&c.in, &c.plan), -EINVAL, "guest out of range");
	c.queue[0].guest = g;
	c.in.now_s = NAN;
	cr_assert_eq(sched_plan(&c.in, &c.plan), -EINVAL, "NaN clock");
	c.in.now_s = 0;
	c.in.limits.min_gap_s = -1;
	cr_assert_eq(sched_plan(&c.in, &c.plan), -EINVAL, "negative gap");
	c.in.limits.min_gap_s = 0;
	cr_assert_null(c.plan.starts, "nothing left behind on error");

	struct sched_input empty = { 0 };
	cr_assert_eq(sched_plan(&empty, &c.plan), 0);
	cr_assert_eq(c.plan.n_starts + c.plan.n_rejects + c.plan.n_waits, 0);
	fini(&c);
	sched_plan_release(NULL);
}

/* --- the property test ------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static unsigned rng_below(uint64_t *s, unsigned n)
{
	return n ? (unsigned)(rng_next(s) % n) : 0;
}

#define MAX_H 12
#define MAX_G 60
#define MAX_Q 256

struct sim {
	uint64_t seed, rng;
	struct sched_host hosts[MAX_H];
	struct sched_guest guests[MAX_G];
	struct sched_running running[MAX_G];
	double finish_s[MAX_G];
	bool fails[MAX_G];
	struct sched_request queue[MAX_Q];
	size_t n_hosts, n_guests, n_running, n_queue;
	struct sched_limits limits;
	double now_s;
	bool have_last_start;
	double last_start_s;
	uint64_t next_id;
};

/* What the brute-force reference decides for one request. */
struct outcome {
	int kind; /* 0 wait, 1 start, 2 reject */
	uint32_t dst;
	int why;
};

static void sim_input(const struct sim *s, struct sched_input *in)
{
	*in = (struct sched_input){
		.hosts = s->hosts, .n_hosts = s->n_hosts,
		.guests = s->guests, .n_guests = s->n_guests,
		.running = s->running, .n_running = s->n_running,
		.queue = s->queue, .n_queue = s->n_queue,
		.limits = s->limits, .now_s = s->now_s,
		.have_last_start = s->have_last_start, .last_start_s = s->last_start_s,
	};
}

/* Is a rank of job (other than guest) on, or migrating to, host h? */
static bool ref_job_on(const struct sim *s, const uint32_t *started_dst, uint32_t guest,
		       uint64_t job, uint32_t h)
{
	if (job == 0)
		return false;
	for (size_t g = 0; g < s->n_guests; g++) {
		if (s->guests[g].job_id != job)
			continue;
		if (g != guest && s->guests[g].host == h)
			return true;
		if (started_dst[g] == h)
			return true;
	}
	for (size_t i = 0; i < s->n_running; i++)
		if (s->guests[s->running[i].guest].job_id == job && s->running[i].dst == h)
			return true;
	return false;
}

static int64_t ref_free(const struct sim *s, const uint32_t *started_dst, uint32_t h)
{
	int64_t f = (int64_t)s->hosts[h].mem_capacity_bytes - (int64_t)s->hosts[h].mem_used_bytes;
	for (size_t i = 0; i < s->n_running; i++)
		if (s->running[i].dst == h)
			f -= (int64_t)s->guests[s->running[i].guest].mem_bytes;
	for (size_t g = 0; g < s->n_guests; g++)
		if (started_dst[g] == h)
			f -= (int64_t)s->guests[g].mem_bytes;
	return f;
}

static unsigned ref_count(const struct sim *s, const uint32_t *started_dst, uint32_t h,
			  bool inbound)
{
	unsigned n = 0;
	for (size_t i = 0; i < s->n_running; i++)
		n += (inbound ? s->running[i].dst : s->running[i].src) == h;
	for (size_t g = 0; g < s->n_guests; g++)
		if (started_dst[g] != SCHED_NONE)
			n += (inbound ? started_dst[g] : s->guests[g].host) == h;
	return n;
}

static bool ref_job_busy(const struct sim *s, const uint32_t *started_dst, uint64_t job)
{
	if (job == 0)
		return false;
	for (size_t i = 0; i < s->n_running; i++)
		if (s->guests[s->running[i].guest].job_id == job)
			return true;
	for (size_t g = 0; g < s->n_guests; g++)
		if (started_dst[g] != SCHED_NONE && s->guests[g].job_id == job)
			return true;
	return false;
}

static bool ref_under(unsigned count, unsigned host_limit, unsigned default_limit)
{
	unsigned limit = host_limit ? host_limit : default_limit;
	return limit == 0 || count < limit;
}

static bool ref_ranks_before(const struct sched_request *a, size_t ia,
			     const struct sched_request *b, size_t ib)
{
	if (a->prio != b->prio)
		return a->prio > b->prio;
	if (a->enqueue_s != b->enqueue_s)
		return a->enqueue_s < b->enqueue_s;
	if (a->id != b->id)
		return a->id < b->id;
	return ia < ib;
}

/* The rules of scheduler.h, written the slow and obvious way. */
static void ref_plan(const struct sim *s, struct outcome *out, size_t *rank_order)
{
	uint32_t started_dst[MAX_G];
	bool guest_busy[MAX_G] = { false };
	for (size_t g = 0; g < MAX_G; g++)
		started_dst[g] = SCHED_NONE;
	for (size_t i = 0; i < s->n_running; i++)
		guest_busy[s->running[i].guest] = true;
	bool have_last = s->have_last_start;
	double last = s->last_start_s;
	for (size_t i = 0; i < s->n_running; i++)
		if (!have_last || s->running[i].start_s > last)
			last = s->running[i].start_s, have_last = true;
	unsigned active = (unsigned)s->n_running;

	/* insertion sort by rank */
	for (size_t i = 0; i < s->n_queue; i++) {
		size_t j = i;
		while (j > 0 && ref_ranks_before(&s->queue[i], i, &s->queue[rank_order[j - 1]],
						 rank_order[j - 1])) {
			rank_order[j] = rank_order[j - 1];
			j--;
		}
		rank_order[j] = i;
	}
	for (size_t k = 0; k < s->n_queue; k++) {
		size_t qi = rank_order[k];
		const struct sched_request *q = &s->queue[qi];
		const struct sched_guest *g = &s->guests[q->guest];
		uint32_t dst = SCHED_NONE;
		bool placeable = false;
		if (q->dst != SCHED_NONE) {
			const struct sched_host *h = &s->hosts[q->dst];
			placeable = q->dst != g->host && !h->disabled && !h->degraded &&
				    ref_free(s, started_dst, q->dst) >= (int64_t)g->mem_bytes &&
				    !ref_job_on(s, started_dst, q->guest, g->job_id, q->dst);
			dst = q->dst;
		} else {
			int64_t best = INT64_MIN;
			for (uint32_t h = 0; h < s->n_hosts; h++) {
				int64_t f = ref_free(s, started_dst, h);
				if (h == g->host || s->hosts[h].disabled || s->hosts[h].degraded ||
				    f < (int64_t)g->mem_bytes ||
				    ref_job_on(s, started_dst, q->guest, g->job_id, h))
					continue;
				placeable = true;
				if (ref_under(ref_count(s, started_dst, h, true),
					      s->hosts[h].max_inbound, s->limits.max_inbound_per_host) &&
				    f > best)
					best = f, dst = h;
			}
		}
		out[qi] = (struct outcome){ .kind = 2, .dst = dst, .why = -1 };
		if (!placeable)
			continue;
		out[qi].kind = 0;
		if (guest_busy[q->guest])
			out[qi].why = SCHED_WAIT_GUEST_BUSY;
		else if (ref_job_busy(s, started_dst, g->job_id))
			out[qi].why = SCHED_WAIT_JOB_BUSY;
		else if (s->limits.max_concurrent && active >= s->limits.max_concurrent)
			out[qi].why = SCHED_WAIT_CLUSTER_FULL;
		else if (have_last && s->limits.min_gap_s > 0 &&
			 s->now_s - last < s->limits.min_gap_s)
			out[qi].why = SCHED_WAIT_GAP;
		else if (!ref_under(ref_count(s, started_dst, g->host, false),
				    s->hosts[g->host].max_outbound, s->limits.max_outbound_per_host))
			out[qi].why = SCHED_WAIT_SOURCE_BUSY;
		else if (dst == SCHED_NONE ||
			 !ref_under(ref_count(s, started_dst, dst, true), s->hosts[dst].max_inbound,
				    s->limits.max_inbound_per_host))
			out[qi].why = SCHED_WAIT_DEST_BUSY;
		if (out[qi].why >= 0)
			continue;
		out[qi].kind = 1;
		started_dst[q->guest] = dst;
		guest_busy[q->guest] = true;
		active++;
		have_last = true;
		last = s->now_s;
	}
}

static void sim_build(struct sim *s, uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->seed = s->rng = seed;
	s->n_hosts = 2 + rng_below(&s->rng, MAX_H - 1);
	for (size_t h = 0; h < s->n_hosts; h++) {
		s->hosts[h].mem_capacity_bytes = (8 + rng_below(&s->rng, 40)) * GIB;
		if (rng_below(&s->rng, 4) == 0)
			s->hosts[h].max_outbound = 1 + rng_below(&s->rng, 2);
		if (rng_below(&s->rng, 4) == 0)
			s->hosts[h].max_inbound = 1 + rng_below(&s->rng, 2);
	}
	size_t want = 1 + rng_below(&s->rng, MAX_G);
	unsigned n_jobs = 1 + rng_below(&s->rng, 6);
	uint32_t next_rank[8] = { 0 };
	for (size_t i = 0; i < want; i++) {
		uint64_t mem = (1 + rng_below(&s->rng, 8)) * GIB;
		uint32_t h = rng_below(&s->rng, (unsigned)s->n_hosts);
		if (s->hosts[h].mem_used_bytes + mem > s->hosts[h].mem_capacity_bytes)
			continue;
		uint64_t job = rng_below(&s->rng, 3) ? 1 + rng_below(&s->rng, n_jobs) : 0;
		s->guests[s->n_guests++] = (struct sched_guest){
			NULL, h, mem, job, job ? next_rank[job]++ : 0 };
		s->hosts[h].mem_used_bytes += mem;
	}
	unsigned concurrency[] = { 0, 1, 2, 3, 5 };
	double gaps[] = { 0, 0, 2, 10, 30 };
	s->limits.max_concurrent = concurrency[rng_below(&s->rng, 5)];
	s->limits.max_outbound_per_host = rng_below(&s->rng, 3);
	s->limits.max_inbound_per_host = rng_below(&s->rng, 3);
	s->limits.min_gap_s = gaps[rng_below(&s->rng, 5)];
	s->next_id = 1;
}

static void sim_enqueue(struct sim *s, uint32_t guest, uint32_t dst, enum sched_prio prio)
{
	if (s->n_queue == MAX_Q)
		return;
	s->queue[s->n_queue++] = (struct sched_request){ s->next_id++, guest, dst, prio, s->now_s };
}

/* New requests, an evacuation, a host going bad or coming back. */
static void sim_arrivals(struct sim *s)
{
	if (s->n_guests == 0)
		return;
	unsigned n = rng_below(&s->rng, 4);
	for (unsigned i = 0; i < n; i++) {
		uint32_t g = rng_below(&s->rng, (unsigned)s->n_guests);
		uint32_t dst = rng_below(&s->rng, 4) == 0 ? rng_below(&s->rng, (unsigned)s->n_hosts)
							  : SCHED_NONE;
		sim_enqueue(s, g, dst, (enum sched_prio)rng_below(&s->rng, 3));
	}
	uint32_t h = rng_below(&s->rng, (unsigned)s->n_hosts);
	switch (rng_below(&s->rng, 12)) {
	case 0: {
		struct sched_request *reqs;
		size_t nr;
		s->hosts[h].disabled = true;
		cr_assert_eq(sched_evacuation(s->guests, s->n_guests, h, SCHED_PRIO_HEALTH,
					      s->now_s, s->next_id, &reqs, &nr), 0);
		for (size_t i = 0; i < nr && s->n_queue < MAX_Q; i++)
			s->queue[s->n_queue++] = reqs[i];
		s->next_id += nr;
		free(reqs);
		break;
	}
	case 1:
		s->hosts[h].degraded = !s->hosts[h].degraded;
		break;
	case 2:
		s->hosts[h].disabled = false;
		break;
	}
}

/* The invariants of one plan, checked against the state it was made in. */
static void check_plan(const struct sim *s, const struct sched_plan *p, const size_t *rank_order)
{
	uint64_t seed = s->seed;
	bool seen[MAX_Q] = { false };
	for (size_t i = 0; i < p->n_starts; i++)
		seen[p->starts[i].request] = true;
	for (size_t i = 0; i < p->n_rejects; i++) {
		cr_assert(!seen[p->rejects[i].request], "seed %" PRIu64 ": request twice", seed);
		seen[p->rejects[i].request] = true;
	}
	for (size_t i = 0; i < p->n_waits; i++) {
		cr_assert(!seen[p->waits[i].request], "seed %" PRIu64 ": request twice", seed);
		seen[p->waits[i].request] = true;
	}
	for (size_t i = 0; i < s->n_queue; i++)
		cr_assert(seen[i], "seed %" PRIu64 ": request %zu lost", seed, i);

	cr_assert(p->n_starts <= 1 || s->limits.min_gap_s == 0,
		  "seed %" PRIu64 ": %zu starts at once with a gap", seed, p->n_starts);
	if (p->n_starts > 0 && s->have_last_start)
		cr_assert(s->now_s - s->last_start_s >= s->limits.min_gap_s,
			  "seed %" PRIu64 ": start %.1f s after the last, gap %.1f", seed,
			  s->now_s - s->last_start_s, s->limits.min_gap_s);

	/* starts come in rank order; a cluster-wide wait holds back every later rank */
	size_t pos_of[MAX_Q];
	for (size_t k = 0; k < s->n_queue; k++)
		pos_of[rank_order[k]] = k;
	for (size_t i = 1; i < p->n_starts; i++)
		cr_assert(pos_of[p->starts[i - 1].request] < pos_of[p->starts[i].request],
			  "seed %" PRIu64 ": starts out of priority order", seed);
	for (size_t w = 0; w < p->n_waits; w++) {
		if (p->waits[w].why != SCHED_WAIT_CLUSTER_FULL && p->waits[w].why != SCHED_WAIT_GAP)
			continue;
		for (size_t i = 0; i < p->n_starts; i++)
			cr_assert(pos_of[p->starts[i].request] < pos_of[p->waits[w].request],
				  "seed %" PRIu64 ": a lower priority started past a cluster-wide "
				  "wait", seed);
	}
	for (size_t i = 0; i < p->n_starts; i++) {
		const struct sched_start *st = &p->starts[i];
		const struct sched_guest *g = &s->guests[st->guest];
		cr_assert_neq(st->dst, st->src, "seed %" PRIu64, seed);
		cr_assert_eq(st->src, g->host, "seed %" PRIu64, seed);
		cr_assert(!s->hosts[st->dst].disabled && !s->hosts[st->dst].degraded,
			  "seed %" PRIu64 ": started to a bad host", seed);
		for (size_t o = 0; g->job_id && o < s->n_guests; o++)
			cr_assert(o == st->guest || s->guests[o].job_id != g->job_id ||
				  s->guests[o].host != st->dst,
				  "seed %" PRIu64 ": two ranks of job %" PRIu64 " on host %u", seed,
				  g->job_id, st->dst);
	}
}

/* Apply the starts, then check what is running now against every limit. */
static void sim_apply(struct sim *s, const struct sched_plan *p)
{
	uint64_t seed = s->seed;
	for (size_t i = 0; i < p->n_starts; i++) {
		const struct sched_start *st = &p->starts[i];
		size_t r = s->n_running++;
		s->running[r] = (struct sched_running){ st->guest, st->src, st->dst, s->now_s };
		s->finish_s[r] = s->now_s + 1 + rng_below(&s->rng, 120);
		s->fails[r] = rng_below(&s->rng, 10) == 0;
		s->have_last_start = true;
		s->last_start_s = s->now_s;
	}
	/* drop started and rejected requests, keep the order of the rest */
	bool gone[MAX_Q] = { false };
	for (size_t i = 0; i < p->n_starts; i++)
		gone[p->starts[i].request] = true;
	for (size_t i = 0; i < p->n_rejects; i++)
		gone[p->rejects[i].request] = true;
	size_t k = 0;
	for (size_t i = 0; i < s->n_queue; i++)
		if (!gone[i])
			s->queue[k++] = s->queue[i];
	s->n_queue = k;

	cr_assert(!s->limits.max_concurrent || s->n_running <= s->limits.max_concurrent,
		  "seed %" PRIu64 ": %zu running, limit %u", seed, s->n_running,
		  s->limits.max_concurrent);
	int64_t reserved[MAX_H] = { 0 };
	for (size_t h = 0; h < s->n_hosts; h++) {
		unsigned out = 0, in = 0;
		for (size_t r = 0; r < s->n_running; r++) {
			out += s->running[r].src == h;
			in += s->running[r].dst == h;
			if (s->running[r].dst == h)
				reserved[h] += (int64_t)s->guests[s->running[r].guest].mem_bytes;
		}
		unsigned out_limit = s->hosts[h].max_outbound ? s->hosts[h].max_outbound
							      : s->limits.max_outbound_per_host;
		unsigned in_limit = s->hosts[h].max_inbound ? s->hosts[h].max_inbound
							    : s->limits.max_inbound_per_host;
		cr_assert(!out_limit || out <= out_limit,
			  "seed %" PRIu64 ": host %zu runs %u outbound, limit %u", seed, h, out,
			  out_limit);
		cr_assert(!in_limit || in <= in_limit,
			  "seed %" PRIu64 ": host %zu runs %u inbound, limit %u", seed, h, in,
			  in_limit);
		cr_assert((int64_t)(s->hosts[h].mem_used_bytes) + reserved[h] <=
			  (int64_t)s->hosts[h].mem_capacity_bytes,
			  "seed %" PRIu64 ": host %zu overcommitted", seed, h);
	}
	for (size_t a = 0; a < s->n_running; a++) {
		for (size_t b = a + 1; b < s->n_running; b++) {
			const struct sched_guest *ga = &s->guests[s->running[a].guest];
			const struct sched_guest *gb = &s->guests[s->running[b].guest];
			cr_assert_neq(s->running[a].guest, s->running[b].guest,
				      "seed %" PRIu64 ": guest double-booked", seed);
			cr_assert(!ga->job_id || ga->job_id != gb->job_id,
				  "seed %" PRIu64 ": two ranks of job %" PRIu64 " migrating", seed,
				  ga->job_id);
		}
	}
}

/* Finish every migration due by now: the guest moves, or stays on failure. */
static void sim_finish(struct sim *s)
{
	size_t k = 0;
	for (size_t r = 0; r < s->n_running; r++) {
		if (s->finish_s[r] > s->now_s) {
			s->running[k] = s->running[r];
			s->finish_s[k] = s->finish_s[r];
			s->fails[k] = s->fails[r];
			k++;
			continue;
		}
		struct sched_guest *g = &s->guests[s->running[r].guest];
		if (s->fails[r])
			continue;
		for (size_t o = 0; g->job_id && o < s->n_guests; o++)
			cr_assert(&s->guests[o] == g || s->guests[o].job_id != g->job_id ||
				  s->guests[o].host != s->running[r].dst,
				  "seed %" PRIu64 ": migration joined two ranks of a job", s->seed);
		s->hosts[g->host].mem_used_bytes -= g->mem_bytes;
		s->hosts[s->running[r].dst].mem_used_bytes += g->mem_bytes;
		g->host = s->running[r].dst;
	}
	s->n_running = k;
}

/* How often each outcome came up over all seeds: the test must reach them all. */
static struct {
	size_t starts, rejects, waits[SCHED_WAIT_DEST_BUSY + 1], explicit_starts, job_starts;
} seen_total;

static void count_outcomes(const struct sim *s, const struct sched_plan *p)
{
	seen_total.starts += p->n_starts;
	seen_total.rejects += p->n_rejects;
	for (size_t i = 0; i < p->n_waits; i++)
		seen_total.waits[p->waits[i].why]++;
	for (size_t i = 0; i < p->n_starts; i++) {
		seen_total.explicit_starts += s->queue[p->starts[i].request].dst != SCHED_NONE;
		seen_total.job_starts += s->guests[p->starts[i].guest].job_id != 0;
	}
}

/* One planning step: plan, compare with the reference, check, apply. */
static void sim_step(struct sim *s, double *wake_s)
{
	struct sched_input in;
	struct sched_plan p;
	struct outcome want[MAX_Q];
	size_t rank_order[MAX_Q];
	sim_input(s, &in);
	cr_assert_eq(sched_plan(&in, &p), 0, "seed %" PRIu64, s->seed);
	ref_plan(s, want, rank_order);
	for (size_t i = 0; i < p.n_starts; i++) {
		const struct outcome *o = &want[p.starts[i].request];
		cr_assert(o->kind == 1 && o->dst == p.starts[i].dst,
			  "seed %" PRIu64 " t %.1f: request %zu started to %u, reference says "
			  "kind %d dst %u", s->seed, s->now_s, p.starts[i].request,
			  p.starts[i].dst, o->kind, o->dst);
	}
	for (size_t i = 0; i < p.n_rejects; i++)
		cr_assert_eq(want[p.rejects[i].request].kind, 2,
			     "seed %" PRIu64 ": rejected %zu (%s)", s->seed, p.rejects[i].request,
			     p.rejects[i].reason);
	for (size_t i = 0; i < p.n_waits; i++) {
		const struct outcome *o = &want[p.waits[i].request];
		cr_assert(o->kind == 0 && o->why == (int)p.waits[i].why,
			  "seed %" PRIu64 ": request %zu waits for %s, reference says kind %d "
			  "why %d", s->seed, p.waits[i].request,
			  sched_wait_reason_name(p.waits[i].why), o->kind, o->why);
	}
	check_plan(s, &p, rank_order);
	count_outcomes(s, &p);
	bool gap_wait = false;
	for (size_t i = 0; i < p.n_waits; i++)
		gap_wait |= p.waits[i].why == SCHED_WAIT_GAP;
	*wake_s = gap_wait ? p.next_start_s : INFINITY;
	sim_apply(s, &p);
	sched_plan_release(&p);
}

static double sim_next_finish(const struct sim *s)
{
	double t = INFINITY;
	for (size_t r = 0; r < s->n_running; r++)
		t = fmin(t, s->finish_s[r]);
	return t;
}

static void run_scenario(uint64_t seed)
{
	static struct sim s; /* big: keep it off the stack */
	sim_build(&s, seed);
	double wake_s;
	/* a busy period with arrivals ... */
	for (int step = 0; step < 150; step++) {
		sim_arrivals(&s);
		sim_step(&s, &wake_s);
		double next = fmin(sim_next_finish(&s), wake_s);
		next = fmin(next, s.now_s + 1 + rng_below(&s.rng, 20)); /* next arrival */
		s.now_s = next;
		sim_finish(&s);
	}
	/* ... then no more: everything must drain */
	for (int step = 0; step < 5000 && (s.n_queue > 0 || s.n_running > 0); step++) {
		sim_step(&s, &wake_s);
		double next = fmin(sim_next_finish(&s), wake_s);
		if (isinf(next))
			break;
		s.now_s = next;
		sim_finish(&s);
	}
	cr_assert_eq(s.n_queue, 0, "seed %" PRIu64 ": %zu requests stuck", seed, s.n_queue);
	cr_assert_eq(s.n_running, 0, "seed %" PRIu64, seed);
}

Test(scheduler, random_clusters_never_break_a_rule, .timeout = 300)
{
	const char *env = getenv("SCHED_TEST_SEED");
	if (env) {
		run_scenario(strtoull(env, NULL, 0));
		return;
	}
	for (uint64_t seed = 1; seed <= 400; seed++)
		run_scenario(seed);
	cr_log_info("starts %zu (explicit %zu, ranks %zu), rejects %zu, waits %zu %zu %zu %zu "
		    "%zu %zu", seen_total.starts, seen_total.explicit_starts,
		    seen_total.job_starts, seen_total.rejects, seen_total.waits[0],
		    seen_total.waits[1], seen_total.waits[2], seen_total.waits[3],
		    seen_total.waits[4], seen_total.waits[5]);
	cr_assert(seen_total.starts > 1000 && seen_total.rejects > 100 &&
		  seen_total.explicit_starts > 100 && seen_total.job_starts > 100,
		  "the scenarios hardly exercise the planner");
	for (int why = 0; why <= SCHED_WAIT_DEST_BUSY; why++)
		cr_assert(seen_total.waits[why] > 100, "wait reason %s came up %zu times",
			  sched_wait_reason_name((enum sched_wait_reason)why), seen_total.waits[why]);
}
