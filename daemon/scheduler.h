/*
 * scheduler: which queued migrations start now, and where to.
 *
 * Pure planning over a snapshot: the caller (migd's executor) passes hosts,
 * guests, the migrations running and the queue, all by index into its own
 * arrays, plus the limits and the time; the planner answers with the
 * requests to start now (with their destination), those that can never be
 * placed (with a reason a person can read) and those that must wait (with
 * why). It keeps nothing between calls and reads no clock, so the executor
 * calls it again whenever something changes (a request, a migration ending,
 * the start gap running out) and the tests can drive it on a virtual clock.
 *
 * The rules, in the order the planner applies them to each request, taken in
 * priority order (manual, then health, then periodic), oldest first:
 *  1. Reject a request that no host can take whatever the concurrency
 *     limits: the destination (explicit, or any enabled, not degraded host
 *     other than the source) must have the guest's memory free (capacity
 *     minus what it runs minus what is migrating to it, including what this
 *     call has started) and must not hold, or be receiving, another rank of
 *     the guest's job.
 *  2. Wait while the guest is migrating; while another rank of its job is
 *     (ranks of a job are staggered); while the cluster runs max_concurrent
 *     migrations; until min_gap_s has passed since the last start; while its
 *     source runs its outbound limit; while no destination has an inbound slot.
 *  3. Otherwise start: to the explicit destination, else to the eligible host
 *     with the most free memory (ties: lowest index). Later requests see the
 *     slots and memory this one took.
 * A request that must wait does not hold back lower ones that can start
 * (backfill); only cluster-wide limits hold back everyone.
 *
 * Built for 1,000s of hosts and 10,000s of guests: eligible hosts sit in an
 * array sorted by free memory, so choosing a destination walks only past the
 * hosts it must skip; jobs are found through hash tables, not scans.
 */
#ifndef MIGD_SCHEDULER_H
#define MIGD_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCHED_NONE UINT32_MAX /* no index: "choose the destination" */
#define SCHED_REASON_MAX 200
#define SCHED_MAX_BYTES (1ull << 52) /* any one memory figure; sums stay in int64_t */

enum sched_prio {
	SCHED_PRIO_PERIODIC = 0,
	SCHED_PRIO_HEALTH = 1,
	SCHED_PRIO_MANUAL = 2,
};

struct sched_host {
	const char *name;            /* for reasons; may be NULL */
	uint64_t mem_capacity_bytes;
	uint64_t mem_used_bytes;     /* by the guests it runs now */
	bool disabled;               /* takes no guests (being drained, maintenance) */
	bool degraded;               /* health policy says: takes no guests */
	unsigned max_outbound;       /* concurrent migrations from it; 0: the cluster default */
	unsigned max_inbound;        /* concurrent migrations to it; 0: the cluster default */
};

struct sched_guest {
	const char *name;            /* for reasons; may be NULL */
	uint32_t host;               /* index into hosts: where it runs now */
	uint64_t mem_bytes;
	uint64_t job_id;             /* 0: not a rank of any job */
	uint32_t rank;
};

struct sched_running {
	uint32_t guest, src, dst;    /* indexes */
	double start_s;
};

struct sched_request {
	uint64_t id;                 /* the caller's, copied to the answer */
	uint32_t guest;
	uint32_t dst;                /* explicit destination, or SCHED_NONE */
	enum sched_prio prio;
	double enqueue_s;
};

/* Zero means "no limit" everywhere. */
struct sched_limits {
	unsigned max_concurrent;          /* migrations at once in the cluster */
	unsigned max_outbound_per_host;   /* default for hosts that set none */
	unsigned max_inbound_per_host;
	double min_gap_s;                 /* between two starts */
	double bandwidth_cap_bps;         /* bytes/s per migration, passed through */
};

struct sched_input {
	const struct sched_host *hosts;
	size_t n_hosts;
	const struct sched_guest *guests;
	size_t n_guests;
	const struct sched_running *running;
	size_t n_running;
	const struct sched_request *queue;
	size_t n_queue;
	struct sched_limits limits;
	double now_s;
	bool have_last_start;             /* last_start_s is set */
	double last_start_s;              /* most recent start, running or not */
};

struct sched_start {
	size_t request;                   /* index into queue */
	uint64_t request_id;
	uint32_t guest, src, dst;
	double bandwidth_cap_bps;
};

struct sched_reject {
	size_t request;
	uint64_t request_id;
	uint32_t guest;
	char reason[SCHED_REASON_MAX];    /* "guest g7: ..." */
};

enum sched_wait_reason {
	SCHED_WAIT_GUEST_BUSY,   /* the guest is migrating */
	SCHED_WAIT_JOB_BUSY,     /* another rank of its job is migrating */
	SCHED_WAIT_CLUSTER_FULL, /* max_concurrent reached */
	SCHED_WAIT_GAP,          /* min_gap_s since the last start not over */
	SCHED_WAIT_SOURCE_BUSY,  /* its host's outbound limit reached */
	SCHED_WAIT_DEST_BUSY,    /* every destination it may use has its inbound limit reached */
};

struct sched_wait {
	size_t request;
	uint64_t request_id;
	enum sched_wait_reason why;
};

/* Every queued request is in exactly one of the three lists. */
struct sched_plan {
	struct sched_start *starts;       /* in the order they were chosen */
	size_t n_starts;
	struct sched_reject *rejects;
	size_t n_rejects;
	struct sched_wait *waits;
	size_t n_waits;
	double next_start_s;              /* earliest the gap allows another start */
};

/*
 * Plan at in->now_s. Fills *plan, whose arrays the caller releases with
 * sched_plan_release(). Returns 0, -EINVAL (an index out of range, a
 * non-finite time, a negative gap or cap, a memory figure above
 * SCHED_MAX_BYTES) or -ENOMEM; on error *plan holds nothing.
 */
int sched_plan(const struct sched_input *in, struct sched_plan *plan);
/* Free the arrays of a plan; accepts a zeroed one. */
void sched_plan_release(struct sched_plan *plan);

/*
 * Queue entries that take every guest off host (index), in guest order,
 * destination left to the planner, ids first_id, first_id + 1, ...
 * *out is malloc'ed (NULL when there are none): the caller frees it.
 * Returns 0, -EINVAL or -ENOMEM.
 */
int sched_evacuation(const struct sched_guest *guests, size_t n_guests, uint32_t host,
		     enum sched_prio prio, double now_s, uint64_t first_id,
		     struct sched_request **out, size_t *n_out);

const char *sched_prio_name(enum sched_prio prio);
const char *sched_wait_reason_name(enum sched_wait_reason why);

#endif
