/*
 * sched-bench: how fast the scheduler plans at the scale. 1,000
 * hosts, 10,000 guests in 8-rank jobs (ranks on distinct hosts), 100 hosts
 * evacuated at once (1,000 requests). Prints the CPU time of
 *   - one plan with no concurrency limits: every guest placed in one call;
 *   - one plan under the limits (100 at once, 2 out and 2 in per host);
 *   - the whole evacuation under the limits on a virtual clock, each
 *     migration lasting what precopy_estimate() says at 1 Gbit/s, the planner
 *     called again after every batch of migrations that end together.
 * A benchmark, not a test: run it by hand or with `meson test --benchmark`.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "precopy.h"
#include "scheduler.h"

#define N_HOSTS 1000
#define N_GUESTS 10000
#define RANKS 8
#define N_EVACUATED 100
#define GIB (1ull << 30)

struct bench {
	struct sched_host hosts[N_HOSTS];
	struct sched_guest guests[N_GUESTS];
	double dirty_bps[N_GUESTS];
	struct sched_running running[N_GUESTS];
	double finish_s[N_GUESTS];
	struct sched_request *queue;
	size_t n_running, n_queue;
};

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int build(struct bench *b)
{
	uint64_t seed = 42;
	memset(b, 0, sizeof(*b));
	for (size_t h = 0; h < N_HOSTS; h++)
		b->hosts[h].mem_capacity_bytes = 256 * GIB;
	for (size_t i = 0; i < N_GUESTS; i++) {
		uint64_t job = i / RANKS + 1;
		uint32_t rank = (uint32_t)(i % RANKS);
		uint32_t host = (uint32_t)((rank * (N_HOSTS / RANKS) + job) % N_HOSTS);
		uint64_t mem = (4 + rng(&seed) % 29) * GIB;
		b->guests[i] = (struct sched_guest){ NULL, host, mem, job, rank };
		b->hosts[host].mem_used_bytes += mem;
		b->dirty_bps[i] = (double)(rng(&seed) % 50) * 1e6;
	}
	b->queue = calloc(N_GUESTS, sizeof(*b->queue));
	if (!b->queue)
		return -ENOMEM;
	for (uint32_t h = 0; h < N_EVACUATED; h++) {
		struct sched_request *reqs;
		size_t n;
		int rc = sched_evacuation(b->guests, N_GUESTS, h, SCHED_PRIO_HEALTH, 0,
					  b->n_queue + 1, &reqs, &n);
		if (rc < 0)
			return rc;
		memcpy(b->queue + b->n_queue, reqs, n * sizeof(*reqs));
		b->n_queue += n;
		free(reqs);
		b->hosts[h].disabled = true;
	}
	return 0;
}

static struct sched_input input(const struct bench *b, const struct sched_limits *limits,
				double now_s)
{
	return (struct sched_input){
		.hosts = b->hosts, .n_hosts = N_HOSTS, .guests = b->guests, .n_guests = N_GUESTS,
		.running = b->running, .n_running = b->n_running,
		.queue = b->queue, .n_queue = b->n_queue, .limits = *limits, .now_s = now_s,
	};
}

static int one_plan(struct bench *b, const struct sched_limits *limits, const char *what)
{
	struct sched_input in = input(b, limits, 0);
	struct sched_plan plan;
	double t0 = cpu_s();
	int rc = sched_plan(&in, &plan);
	double t1 = cpu_s();
	if (rc < 0)
		return rc;
	printf("%-40s %6.1f ms CPU: %zu started, %zu waiting, %zu rejected\n", what,
	       (t1 - t0) * 1e3, plan.n_starts, plan.n_waits, plan.n_rejects);
	sched_plan_release(&plan);
	return 0;
}

/* Start what the plan says; drop started and rejected requests. */
static int apply(struct bench *b, const struct sched_plan *plan, double now_s)
{
	char *gone = calloc(b->n_queue ? b->n_queue : 1, 1);
	if (!gone)
		return -ENOMEM;
	for (size_t i = 0; i < plan->n_starts; i++) {
		const struct sched_start *st = &plan->starts[i];
		struct precopy_params p = { .memory_bytes = b->guests[st->guest].mem_bytes,
					    .dirty_rate_bps = b->dirty_bps[st->guest],
					    .auto_converge = true };
		struct precopy_result res;
		int rc = precopy_estimate(&p, PRECOPY_GBIT_BPS, &res);
		if (rc < 0) {
			free(gone);
			return rc;
		}
		b->running[b->n_running] = (struct sched_running){ st->guest, st->src, st->dst, now_s };
		b->finish_s[b->n_running++] = now_s + res.total_s;
		gone[st->request] = 1;
	}
	for (size_t i = 0; i < plan->n_rejects; i++)
		gone[plan->rejects[i].request] = 1;
	size_t k = 0;
	for (size_t i = 0; i < b->n_queue; i++)
		if (!gone[i])
			b->queue[k++] = b->queue[i];
	b->n_queue = k;
	free(gone);
	return 0;
}

/* Move the guests of migrations that have ended by now_s. */
static void finish(struct bench *b, double now_s)
{
	size_t k = 0;
	for (size_t r = 0; r < b->n_running; r++) {
		if (b->finish_s[r] > now_s) {
			b->running[k] = b->running[r];
			b->finish_s[k++] = b->finish_s[r];
			continue;
		}
		struct sched_guest *g = &b->guests[b->running[r].guest];
		b->hosts[g->host].mem_used_bytes -= g->mem_bytes;
		b->hosts[b->running[r].dst].mem_used_bytes += g->mem_bytes;
		g->host = b->running[r].dst;
	}
	b->n_running = k;
}

static int full_evacuation(struct bench *b, const struct sched_limits *limits)
{
	double now_s = 0, plan_cpu_s = 0;
	size_t calls = 0, started = 0, rejected = 0;
	while (b->n_queue > 0 || b->n_running > 0) {
		struct sched_input in = input(b, limits, now_s);
		struct sched_plan plan;
		double t0 = cpu_s();
		int rc = sched_plan(&in, &plan);
		plan_cpu_s += cpu_s() - t0;
		calls++;
		if (rc < 0)
			return rc;
		started += plan.n_starts;
		rejected += plan.n_rejects;
		rc = apply(b, &plan, now_s);
		sched_plan_release(&plan);
		if (rc < 0)
			return rc;
		double next = INFINITY;
		for (size_t r = 0; r < b->n_running; r++)
			next = fmin(next, b->finish_s[r]);
		if (isinf(next))
			break;
		now_s = next;
		finish(b, now_s);
	}
	printf("%-40s %6.1f ms CPU: %zu calls (%.3f ms each), %zu started, %zu rejected, "
	       "%zu stuck, %.0f s of virtual time\n", "whole evacuation, limits, stepped",
	       plan_cpu_s * 1e3, calls, plan_cpu_s * 1e3 / (double)calls, started, rejected,
	       b->n_queue, now_s);
	return 0;
}

int main(void)
{
	static struct bench b;
	int rc = build(&b);
	if (rc < 0) {
		fprintf(stderr, "sched-bench: %s\n", strerror(-rc));
		return 1;
	}
	printf("%d hosts, %d guests, %zu requests evacuating %d hosts\n", N_HOSTS, N_GUESTS,
	       b.n_queue, N_EVACUATED);
	struct sched_limits none = { 0 };
	struct sched_limits limits = { .max_concurrent = 100, .max_outbound_per_host = 2,
				       .max_inbound_per_host = 2,
				       .bandwidth_cap_bps = PRECOPY_GBIT_BPS };
	if ((rc = one_plan(&b, &none, "one plan, no limits (all placed)")) < 0 ||
	    (rc = one_plan(&b, &limits, "one plan, limits")) < 0 ||
	    (rc = full_evacuation(&b, &limits)) < 0) {
		fprintf(stderr, "sched-bench: %s\n", strerror(-rc));
		return 1;
	}
	free(b.queue);
	return 0;
}
