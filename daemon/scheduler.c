/*
 * scheduler: see scheduler.h. One call builds its indexes from the snapshot
 * (hosts sorted by free memory, per-host counters, hash sets of the jobs that
 * matter), walks the queue once in priority order and throws the indexes
 * away: O(G + H log H + Q log Q) plus, per request, the hosts its
 * destination search has to skip.
 */
#include "scheduler.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"

/* --- a fixed-size open-addressing set of (job, host) pairs -------------- */

struct pair {
	uint64_t job;   /* 0: empty slot (job 0 is "no job" and never stored) */
	uint32_t host;
};

struct pairset {
	struct pair *slots;
	size_t mask;
	size_t count;
};

/* Room for max_count pairs at a load of at most one half. */
static int pairset_init(struct pairset *s, size_t max_count)
{
	size_t cap = 16;
	while (cap < 2 * max_count)
		cap *= 2;
	s->slots = calloc(cap, sizeof(*s->slots));
	s->mask = cap - 1;
	s->count = 0;
	return s->slots ? 0 : -ENOMEM;
}

static void pairset_fini(struct pairset *s)
{
	free(s->slots);
	s->slots = NULL;
}

static size_t pair_hash(uint64_t job, uint32_t host)
{
	uint64_t x = job * 0x9e3779b97f4a7c15ull ^ ((uint64_t)host + 0x632be59bd9b4e019ull);
	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 29;
	return (size_t)x;
}

/* The slot holding (job, host), or the empty one where it would go. */
static struct pair *pairset_slot(const struct pairset *s, uint64_t job, uint32_t host)
{
	size_t i = pair_hash(job, host) & s->mask;
	while (s->slots[i].job != 0 && (s->slots[i].job != job || s->slots[i].host != host))
		i = (i + 1) & s->mask;
	return &s->slots[i];
}

static bool pairset_has(const struct pairset *s, uint64_t job, uint32_t host)
{
	return job != 0 && pairset_slot(s, job, host)->job != 0;
}

static void pairset_add(struct pairset *s, uint64_t job, uint32_t host)
{
	if (job == 0)
		return;
	struct pair *slot = pairset_slot(s, job, host);
	if (slot->job != 0)
		return;
	assert(2 * (s->count + 1) <= s->mask + 1); /* sized by the caller */
	slot->job = job;
	slot->host = host;
	s->count++;
}

/* --- the planning state of one call ------------------------------------ */

struct plan_ctx {
	const struct sched_input *in;
	int64_t *free_bytes;      /* per host, after reservations; may go negative */
	unsigned *out_count;      /* per host: migrations from it */
	unsigned *in_count;       /* per host: migrations to it */
	uint32_t *order;          /* eligible hosts, most free first, then lowest index */
	uint32_t *pos;            /* host -> place in order, SCHED_NONE if not eligible */
	size_t n_order;
	bool *guest_busy;         /* per guest: migrating */
	struct pairset queued_jobs;  /* (job, 0): jobs with a queued rank */
	struct pairset job_hosts;    /* (job, host): a rank is on or migrating to host */
	struct pairset busy_jobs;    /* (job, 0): a rank is migrating */
	unsigned n_active;
	bool have_last_start;
	double last_start_s;
	struct sched_plan *plan;
	size_t rejects_cap;
};

static bool bad_time(double t)
{
	return !isfinite(t);
}

static bool bad_figure(double v)
{
	return !(v >= 0) || !isfinite(v);
}

static int validate(const struct sched_input *in)
{
	if (bad_time(in->now_s) || bad_figure(in->limits.min_gap_s) ||
	    bad_figure(in->limits.bandwidth_cap_bps) ||
	    (in->have_last_start && bad_time(in->last_start_s)))
		return -EINVAL;
	for (size_t i = 0; i < in->n_hosts; i++)
		if (in->hosts[i].mem_capacity_bytes > SCHED_MAX_BYTES ||
		    in->hosts[i].mem_used_bytes > SCHED_MAX_BYTES)
			return -EINVAL;
	for (size_t i = 0; i < in->n_guests; i++)
		if (in->guests[i].host >= in->n_hosts || in->guests[i].mem_bytes > SCHED_MAX_BYTES)
			return -EINVAL;
	for (size_t i = 0; i < in->n_running; i++) {
		const struct sched_running *r = &in->running[i];
		if (r->guest >= in->n_guests || r->src >= in->n_hosts || r->dst >= in->n_hosts ||
		    bad_time(r->start_s))
			return -EINVAL;
	}
	for (size_t i = 0; i < in->n_queue; i++) {
		const struct sched_request *q = &in->queue[i];
		if (q->guest >= in->n_guests || (q->dst != SCHED_NONE && q->dst >= in->n_hosts) ||
		    bad_time(q->enqueue_s))
			return -EINVAL;
	}
	return 0;
}

static unsigned host_out_limit(const struct plan_ctx *c, uint32_t h)
{
	unsigned l = c->in->hosts[h].max_outbound;
	return l ? l : c->in->limits.max_outbound_per_host;
}

static unsigned host_in_limit(const struct plan_ctx *c, uint32_t h)
{
	unsigned l = c->in->hosts[h].max_inbound;
	return l ? l : c->in->limits.max_inbound_per_host;
}

static bool under_limit(unsigned count, unsigned limit)
{
	return limit == 0 || count < limit;
}

static bool host_eligible(const struct sched_host *h)
{
	return !h->disabled && !h->degraded;
}

/* Host a before host b in the order of destinations. */
static bool host_before(const struct plan_ctx *c, uint32_t a, uint32_t b)
{
	return c->free_bytes[a] > c->free_bytes[b] ||
	       (c->free_bytes[a] == c->free_bytes[b] && a < b);
}

struct host_key {
	int64_t free_bytes;
	uint32_t host;
};

static int host_key_cmp(const void *pa, const void *pb)
{
	const struct host_key *a = pa, *b = pb;
	if (a->free_bytes != b->free_bytes)
		return a->free_bytes > b->free_bytes ? -1 : 1;
	return a->host < b->host ? -1 : a->host > b->host;
}

/* Fill free_bytes, the counters and the sorted order from the snapshot. */
static int index_hosts(struct plan_ctx *c)
{
	const struct sched_input *in = c->in;
	for (size_t h = 0; h < in->n_hosts; h++) {
		const struct sched_host *host = &in->hosts[h];
		c->free_bytes[h] = (int64_t)host->mem_capacity_bytes - (int64_t)host->mem_used_bytes;
	}
	for (size_t i = 0; i < in->n_running; i++) {
		const struct sched_running *r = &in->running[i];
		c->out_count[r->src]++;
		c->in_count[r->dst]++;
		c->free_bytes[r->dst] -= (int64_t)in->guests[r->guest].mem_bytes;
	}
	struct host_key *keys = malloc((in->n_hosts ? in->n_hosts : 1) * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	size_t n = 0;
	for (size_t h = 0; h < in->n_hosts; h++) {
		c->pos[h] = SCHED_NONE;
		if (host_eligible(&in->hosts[h]))
			keys[n++] = (struct host_key){ c->free_bytes[h], (uint32_t)h };
	}
	qsort(keys, n, sizeof(*keys), host_key_cmp);
	for (size_t i = 0; i < n; i++) {
		c->order[i] = keys[i].host;
		c->pos[keys[i].host] = (uint32_t)i;
	}
	c->n_order = n;
	free(keys);
	return 0;
}

/* Jobs of queued guests, where their ranks are, which are migrating. */
static int index_jobs(struct plan_ctx *c)
{
	const struct sched_input *in = c->in;
	int rc;
	if ((rc = pairset_init(&c->queued_jobs, in->n_queue)) < 0 ||
	    (rc = pairset_init(&c->job_hosts, in->n_guests + in->n_running + in->n_queue)) < 0 ||
	    (rc = pairset_init(&c->busy_jobs, in->n_running + in->n_queue)) < 0)
		return rc;
	for (size_t i = 0; i < in->n_queue; i++)
		pairset_add(&c->queued_jobs, in->guests[in->queue[i].guest].job_id, 0);
	/* only jobs with a queued rank are ever asked about */
	for (size_t g = 0; g < in->n_guests; g++) {
		uint64_t job = in->guests[g].job_id;
		if (pairset_has(&c->queued_jobs, job, 0))
			pairset_add(&c->job_hosts, job, in->guests[g].host);
	}
	for (size_t i = 0; i < in->n_running; i++) {
		const struct sched_running *r = &in->running[i];
		uint64_t job = in->guests[r->guest].job_id;
		c->guest_busy[r->guest] = true;
		pairset_add(&c->busy_jobs, job, 0);
		if (pairset_has(&c->queued_jobs, job, 0))
			pairset_add(&c->job_hosts, job, r->dst);
		if (r->start_s > c->last_start_s || !c->have_last_start) {
			c->last_start_s = r->start_s;
			c->have_last_start = true;
		}
	}
	c->n_active = (unsigned)in->n_running;
	return 0;
}

/* dst has less free memory now: move it down the order. */
static void host_sink(struct plan_ctx *c, uint32_t dst)
{
	uint32_t p = c->pos[dst];
	if (p == SCHED_NONE)
		return;
	while (p + 1 < c->n_order && host_before(c, c->order[p + 1], dst)) {
		c->order[p] = c->order[p + 1];
		c->pos[c->order[p]] = p;
		p++;
	}
	c->order[p] = dst;
	c->pos[dst] = p;
}

/*
 * Walk the destinations, most free first, until one lacks the memory:
 * *placeable tells whether any could take the guest at all, the return value
 * is the first that can take it now (SCHED_NONE: none has an inbound slot).
 */
static uint32_t choose_dst(const struct plan_ctx *c, uint32_t src, uint64_t job,
			   uint64_t mem_bytes, bool *placeable)
{
	*placeable = false;
	for (size_t i = 0; i < c->n_order; i++) {
		uint32_t h = c->order[i];
		if (c->free_bytes[h] < (int64_t)mem_bytes)
			break;
		if (h == src || pairset_has(&c->job_hosts, job, h))
			continue;
		*placeable = true;
		if (under_limit(c->in_count[h], host_in_limit(c, h)))
			return h;
	}
	return SCHED_NONE;
}

static const char *host_label(const struct sched_input *in, uint32_t h, char *buf, size_t len)
{
	if (in->hosts[h].name)
		return in->hosts[h].name;
	snprintf(buf, len, "#%" PRIu32, h);
	return buf;
}

static const char *guest_label(const struct sched_input *in, uint32_t g, char *buf, size_t len)
{
	if (in->guests[g].name)
		return in->guests[g].name;
	snprintf(buf, len, "#%" PRIu32, g);
	return buf;
}

static int add_reject(struct plan_ctx *c, size_t qi, struct sched_reject **out)
{
	struct sched_plan *plan = c->plan;
	if (plan->n_rejects == c->rejects_cap) {
		size_t cap = c->rejects_cap ? 2 * c->rejects_cap : 16;
		struct sched_reject *r = realloc(plan->rejects, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		plan->rejects = r;
		c->rejects_cap = cap;
	}
	struct sched_reject *r = &plan->rejects[plan->n_rejects++];
	r->request = qi;
	r->request_id = c->in->queue[qi].id;
	r->guest = c->in->queue[qi].guest;
	r->reason[0] = '\0';
	*out = r;
	return 0;
}

/* Why an explicit destination can never take the guest; NULL when it can. */
static const char *explicit_problem(const struct plan_ctx *c, const struct sched_guest *g,
				    uint32_t dst, char *need, size_t need_len)
{
	const struct sched_host *h = &c->in->hosts[dst];
	if (dst == g->host)
		return "is its current host";
	if (h->disabled)
		return "is disabled";
	if (h->degraded)
		return "is degraded";
	if (c->free_bytes[dst] < (int64_t)g->mem_bytes) {
		char have_text[32], mem_text[32];
		format_size(c->free_bytes[dst] > 0 ? (uint64_t)c->free_bytes[dst] : 0, have_text,
			    sizeof(have_text));
		format_size(g->mem_bytes, mem_text, sizeof(mem_text));
		snprintf(need, need_len, "has %s free, the guest needs %s", have_text, mem_text);
		return need;
	}
	if (pairset_has(&c->job_hosts, g->job_id, dst)) {
		snprintf(need, need_len, "holds or receives another rank of job %" PRIu64,
			 g->job_id);
		return need;
	}
	return NULL;
}

/* The reason no automatic destination exists: a full scan, on this rare path. */
static void explain_unplaceable(const struct plan_ctx *c, const struct sched_guest *g,
				const char *guest_name, char *out, size_t len)
{
	const struct sched_input *in = c->in;
	size_t n_healthy = 0, n_job = 0;
	int64_t best_free = INT64_MIN;
	for (size_t h = 0; h < in->n_hosts; h++) {
		if (h == g->host || !host_eligible(&in->hosts[h]))
			continue;
		n_healthy++;
		if (pairset_has(&c->job_hosts, g->job_id, (uint32_t)h))
			n_job++;
		else if (c->free_bytes[h] > best_free)
			best_free = c->free_bytes[h];
	}
	char src_buf[24];
	const char *src = host_label(in, g->host, src_buf, sizeof(src_buf));
	if (n_healthy == 0) {
		snprintf(out, len, "guest %s: no enabled, healthy host other than its own (%s)",
			 guest_name, src);
	} else if (n_job == n_healthy) {
		snprintf(out, len,
			 "guest %s: every enabled, healthy host other than %s holds or receives "
			 "another rank of job %" PRIu64, guest_name, src, g->job_id);
	} else {
		char best_text[32], mem_text[32];
		format_size(best_free > 0 ? (uint64_t)best_free : 0, best_text, sizeof(best_text));
		format_size(g->mem_bytes, mem_text, sizeof(mem_text));
		snprintf(out, len, "guest %s: needs %s free, the most on any eligible host is %s",
			 guest_name, mem_text, best_text);
	}
}

/* Rule 1; 1 when rejected, 0 when placeable (*dst: where it could go now). */
static int check_placeable(struct plan_ctx *c, size_t qi, uint32_t *dst)
{
	const struct sched_input *in = c->in;
	const struct sched_request *q = &in->queue[qi];
	const struct sched_guest *g = &in->guests[q->guest];
	char need[128], guest_buf[24], dst_buf[24];
	const char *problem = NULL;
	bool placeable = true;

	if (q->dst != SCHED_NONE) {
		problem = explicit_problem(c, g, q->dst, need, sizeof(need));
		*dst = q->dst;
	} else {
		*dst = choose_dst(c, g->host, g->job_id, g->mem_bytes, &placeable);
	}
	if (!problem && placeable)
		return 0;

	struct sched_reject *r;
	int rc = add_reject(c, qi, &r);
	if (rc < 0)
		return rc;
	const char *guest_name = guest_label(in, q->guest, guest_buf, sizeof(guest_buf));
	if (problem)
		snprintf(r->reason, sizeof(r->reason), "guest %s: destination %s %s", guest_name,
			 host_label(in, q->dst, dst_buf, sizeof(dst_buf)), problem);
	else
		explain_unplaceable(c, g, guest_name, r->reason, sizeof(r->reason));
	return 1;
}

/* Rule 2: why it must wait, or -1 when it can start now. */
static int wait_reason(const struct plan_ctx *c, const struct sched_request *q, uint32_t dst)
{
	const struct sched_input *in = c->in;
	const struct sched_guest *g = &in->guests[q->guest];
	if (c->guest_busy[q->guest])
		return SCHED_WAIT_GUEST_BUSY;
	if (pairset_has(&c->busy_jobs, g->job_id, 0))
		return SCHED_WAIT_JOB_BUSY;
	if (!under_limit(c->n_active, in->limits.max_concurrent))
		return SCHED_WAIT_CLUSTER_FULL;
	if (c->have_last_start && in->limits.min_gap_s > 0 &&
	    in->now_s - c->last_start_s < in->limits.min_gap_s)
		return SCHED_WAIT_GAP;
	if (!under_limit(c->out_count[g->host], host_out_limit(c, g->host)))
		return SCHED_WAIT_SOURCE_BUSY;
	if (dst == SCHED_NONE || !under_limit(c->in_count[dst], host_in_limit(c, dst)))
		return SCHED_WAIT_DEST_BUSY;
	return -1;
}

/* Rule 3: start it, and let later requests see what it took. */
static void start(struct plan_ctx *c, size_t qi, uint32_t dst)
{
	const struct sched_input *in = c->in;
	const struct sched_request *q = &in->queue[qi];
	const struct sched_guest *g = &in->guests[q->guest];
	struct sched_plan *plan = c->plan;

	plan->starts[plan->n_starts++] = (struct sched_start){
		.request = qi, .request_id = q->id, .guest = q->guest, .src = g->host,
		.dst = dst, .bandwidth_cap_bps = in->limits.bandwidth_cap_bps,
	};
	c->guest_busy[q->guest] = true;
	pairset_add(&c->busy_jobs, g->job_id, 0);
	pairset_add(&c->job_hosts, g->job_id, dst);
	c->out_count[g->host]++;
	c->in_count[dst]++;
	c->free_bytes[dst] -= (int64_t)g->mem_bytes;
	host_sink(c, dst);
	c->n_active++;
	c->have_last_start = true;
	c->last_start_s = in->now_s;
}

struct queue_key {
	int prio;
	double enqueue_s;
	uint64_t id;
	size_t index;
};

static int queue_key_cmp(const void *pa, const void *pb)
{
	const struct queue_key *a = pa, *b = pb;
	if (a->prio != b->prio)
		return a->prio > b->prio ? -1 : 1;
	if (a->enqueue_s != b->enqueue_s)
		return a->enqueue_s < b->enqueue_s ? -1 : 1;
	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return a->index < b->index ? -1 : a->index > b->index;
}

static int plan_queue(struct plan_ctx *c)
{
	const struct sched_input *in = c->in;
	struct sched_plan *plan = c->plan;
	struct queue_key *keys = malloc((in->n_queue ? in->n_queue : 1) * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (size_t i = 0; i < in->n_queue; i++)
		keys[i] = (struct queue_key){ (int)in->queue[i].prio, in->queue[i].enqueue_s,
					      in->queue[i].id, i };
	qsort(keys, in->n_queue, sizeof(*keys), queue_key_cmp);

	int rc = 0;
	for (size_t k = 0; k < in->n_queue; k++) {
		size_t qi = keys[k].index;
		uint32_t dst;
		rc = check_placeable(c, qi, &dst);
		if (rc < 0)
			break;
		if (rc == 1)
			continue;
		int why = wait_reason(c, &in->queue[qi], dst);
		if (why < 0)
			start(c, qi, dst);
		else
			plan->waits[plan->n_waits++] = (struct sched_wait){
				qi, in->queue[qi].id, (enum sched_wait_reason)why };
	}
	free(keys);
	return rc < 0 ? rc : 0;
}

static int alloc_ctx(struct plan_ctx *c)
{
	const struct sched_input *in = c->in;
	size_t nh = in->n_hosts ? in->n_hosts : 1, ng = in->n_guests ? in->n_guests : 1;
	size_t nq = in->n_queue ? in->n_queue : 1;
	c->free_bytes = calloc(nh, sizeof(*c->free_bytes));
	c->out_count = calloc(nh, sizeof(*c->out_count));
	c->in_count = calloc(nh, sizeof(*c->in_count));
	c->order = calloc(nh, sizeof(*c->order));
	c->pos = calloc(nh, sizeof(*c->pos));
	c->guest_busy = calloc(ng, sizeof(*c->guest_busy));
	c->plan->starts = calloc(nq, sizeof(*c->plan->starts));
	c->plan->waits = calloc(nq, sizeof(*c->plan->waits));
	if (!c->free_bytes || !c->out_count || !c->in_count || !c->order || !c->pos ||
	    !c->guest_busy || !c->plan->starts || !c->plan->waits)
		return -ENOMEM;
	return 0;
}

static void free_ctx(struct plan_ctx *c)
{
	free(c->free_bytes);
	free(c->out_count);
	free(c->in_count);
	free(c->order);
	free(c->pos);
	free(c->guest_busy);
	pairset_fini(&c->queued_jobs);
	pairset_fini(&c->job_hosts);
	pairset_fini(&c->busy_jobs);
}

int sched_plan(const struct sched_input *in, struct sched_plan *plan)
{
	*plan = (struct sched_plan){ 0 };
	int rc = validate(in);
	if (rc < 0)
		return rc;

	struct plan_ctx c = {
		.in = in, .plan = plan,
		.have_last_start = in->have_last_start, .last_start_s = in->last_start_s,
	};
	if ((rc = alloc_ctx(&c)) < 0 || (rc = index_hosts(&c)) < 0 ||
	    (rc = index_jobs(&c)) < 0 || (rc = plan_queue(&c)) < 0)
		goto out;
	plan->next_start_s = in->now_s;
	if (c.have_last_start && c.last_start_s + in->limits.min_gap_s > in->now_s)
		plan->next_start_s = c.last_start_s + in->limits.min_gap_s;
out:
	free_ctx(&c);
	if (rc < 0)
		sched_plan_release(plan);
	return rc;
}

void sched_plan_release(struct sched_plan *plan)
{
	if (!plan)
		return;
	free(plan->starts);
	free(plan->rejects);
	free(plan->waits);
	*plan = (struct sched_plan){ 0 };
}

int sched_evacuation(const struct sched_guest *guests, size_t n_guests, uint32_t host,
		     enum sched_prio prio, double now_s, uint64_t first_id,
		     struct sched_request **out, size_t *n_out)
{
	if (bad_time(now_s))
		return -EINVAL;
	size_t n = 0;
	for (size_t g = 0; g < n_guests; g++)
		n += guests[g].host == host;
	*out = NULL;
	*n_out = 0;
	if (n == 0)
		return 0;
	struct sched_request *reqs = malloc(n * sizeof(*reqs));
	if (!reqs)
		return -ENOMEM;
	size_t k = 0;
	for (size_t g = 0; g < n_guests; g++) {
		if (guests[g].host != host)
			continue;
		reqs[k] = (struct sched_request){ .id = first_id + k, .guest = (uint32_t)g,
						  .dst = SCHED_NONE, .prio = prio,
						  .enqueue_s = now_s };
		k++;
	}
	*out = reqs;
	*n_out = n;
	return 0;
}

const char *sched_prio_name(enum sched_prio prio)
{
	switch (prio) {
	case SCHED_PRIO_PERIODIC: return "periodic";
	case SCHED_PRIO_HEALTH: return "health";
	case SCHED_PRIO_MANUAL: return "manual";
	}
	return "unknown";
}

const char *sched_wait_reason_name(enum sched_wait_reason why)
{
	switch (why) {
	case SCHED_WAIT_GUEST_BUSY: return "guest is migrating";
	case SCHED_WAIT_JOB_BUSY: return "another rank of its job is migrating";
	case SCHED_WAIT_CLUSTER_FULL: return "cluster migration limit reached";
	case SCHED_WAIT_GAP: return "minimum gap between starts";
	case SCHED_WAIT_SOURCE_BUSY: return "source host outbound limit reached";
	case SCHED_WAIT_DEST_BUSY: return "no destination with a free inbound slot";
	}
	return "unknown";
}
