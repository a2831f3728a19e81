/*
 * snapshot: see snapshot.h. Host and guest rows come in id order, so a
 * row id becomes the scheduler's index by binary search.
 *
 * The scheduler's arrays of hosts and guests (with each host's memory in
 * use) are kept in the cache too, built once after the rows were read and
 * then patched by a move or a host change: a round costs the queue and the
 * running migrations, not a pass over 100,000 guests (at 10,000 hosts and
 * 100,000 guests that pass was 1-2 ms, and an evacuation of 1,000 hosts
 * plans thousands of rounds).
 */
#include "snapshot.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "htab.h"
#include "util.h"

struct cached_guest {
	int64_t id, host_id, job_id;
	uint64_t mem_bytes;
	int rank;
	char name[DB_NAME_MAX];
};

/* Rows by name: open addressing over indexes into a cache array (slot
 * value index + 1, 0 empty), built on first use after the array was read. */
struct name_index {
	uint32_t *slots;
	size_t n_slots; /* a power of two, at least twice the rows; 0: not built */
};

struct snap_cache {
	int have_hosts, have_guests;
	uint64_t hosts_gen, guests_gen;
	struct db_host *hosts;
	size_t n_hosts, cap_hosts;
	struct cached_guest *guests;
	size_t n_guests, cap_guests;
	struct name_index host_names, guest_names;
	/* the scheduler's view of hosts and guests, index i of each = row i;
	 * views_ok is 0 when it must be built again from the rows */
	int views_ok;
	struct sched_host *sh;
	struct sched_guest *sg;
};

int snap_cache_new(struct snap_cache **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void snap_cache_free(struct snap_cache *c)
{
	if (!c)
		return;
	free(c->hosts);
	free(c->guests);
	free(c->host_names.slots);
	free(c->guest_names.slots);
	free(c->sh);
	free(c->sg);
	free(c);
}

/* ---- names -------------------------------------------------------------- */

static void index_drop(struct name_index *x)
{
	free(x->slots);
	x->slots = NULL;
	x->n_slots = 0;
}

/* The name of row i of n rows of stride bytes, name at offset off. */
#define ROW_NAME(base, stride, off, i) ((const char *)(base) + (i) * (stride) + (off))

static int index_build(struct name_index *x, const void *base, size_t stride, size_t off,
		       size_t n)
{
	size_t cap = 64;
	while (cap < 2 * n)
		cap *= 2;
	uint32_t *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t k = hash_str(ROW_NAME(base, stride, off, i)) & (cap - 1);
		while (slots[k])
			k = (k + 1) & (cap - 1);
		slots[k] = (uint32_t)i + 1;
	}
	index_drop(x);
	x->slots = slots;
	x->n_slots = cap;
	return 0;
}

/* The row named name, or SIZE_MAX; builds the index when it is missing. */
static size_t index_find(struct name_index *x, const void *base, size_t stride, size_t off,
			 size_t n, const char *name)
{
	if (!x->n_slots && index_build(x, base, stride, off, n) < 0)
		return SIZE_MAX;
	for (size_t k = hash_str(name) & (x->n_slots - 1); x->slots[k];
	     k = (k + 1) & (x->n_slots - 1)) {
		size_t i = x->slots[k] - 1;
		if (strcmp(ROW_NAME(base, stride, off, i), name) == 0)
			return i;
	}
	return SIZE_MAX;
}

/* ---- the cache ---------------------------------------------------------- */

static int cache_host(void *arg, const struct db_host *h)
{
	struct snap_cache *c = arg;
	if (GROW(c->hosts, c->cap_hosts, c->n_hosts + 1) < 0)
		return -ENOMEM;
	c->hosts[c->n_hosts++] = *h;
	return 0;
}

static int cache_guest(void *arg, const struct db_guest *g)
{
	struct snap_cache *c = arg;
	if (GROW(c->guests, c->cap_guests, c->n_guests + 1) < 0)
		return -ENOMEM;
	struct cached_guest *cg = &c->guests[c->n_guests++];
	cg->id = g->id;
	cg->host_id = g->host_id;
	cg->job_id = g->job_id;
	cg->mem_bytes = g->memory_bytes < SCHED_MAX_BYTES ? g->memory_bytes : SCHED_MAX_BYTES;
	cg->rank = g->rank;
	memcpy(cg->name, g->name, DB_NAME_MAX);
	return 0;
}

/* Read hosts and guests again where the database says they may differ. */
static int cache_refresh(struct snap_cache *c, struct db *db)
{
	uint64_t hosts_gen, guests_gen;
	int rc;
	db_generations(db, &hosts_gen, &guests_gen);
	if (!c->have_hosts || hosts_gen != c->hosts_gen) {
		c->have_hosts = 0;
		c->views_ok = 0;
		c->n_hosts = 0;
		index_drop(&c->host_names);
		if ((rc = db_host_scan(db, cache_host, c)) < 0)
			return rc;
		c->have_hosts = 1;
		c->hosts_gen = hosts_gen;
	}
	if (!c->have_guests || guests_gen != c->guests_gen) {
		c->have_guests = 0;
		c->views_ok = 0;
		c->n_guests = 0;
		index_drop(&c->guest_names);
		if ((rc = db_guest_scan(db, cache_guest, c)) < 0)
			return rc;
		c->have_guests = 1;
		c->guests_gen = guests_gen;
	}
	return 0;
}

void snap_cache_moved(struct snap_cache *c, uint64_t gen_before, uint64_t gen_after,
		      const char *guest, const char *host)
{
	if (!c->have_guests || !c->have_hosts || c->guests_gen != gen_before ||
	    gen_after != gen_before + 1)
		return;
	size_t gi = index_find(&c->guest_names, c->guests, sizeof(*c->guests),
			       offsetof(struct cached_guest, name), c->n_guests, guest);
	size_t hi = index_find(&c->host_names, c->hosts, sizeof(*c->hosts),
			       offsetof(struct db_host, name), c->n_hosts, host);
	struct cached_guest *g = gi == SIZE_MAX ? NULL : &c->guests[gi];
	const struct db_host *h = hi == SIZE_MAX ? NULL : &c->hosts[hi];
	if (!g || !h)
		return; /* not what the cache knows: let the next round read it all */
	if (c->views_ok) {
		struct sched_guest *sg = &c->sg[gi];
		struct sched_host *from = &c->sh[sg->host], *to = &c->sh[hi];
		if (from->mem_used_bytes >= SCHED_MAX_BYTES || to->mem_used_bytes >= SCHED_MAX_BYTES ||
		    to->mem_used_bytes + sg->mem_bytes >= SCHED_MAX_BYTES)
			c->views_ok = 0; /* a clamped sum cannot be taken apart: build it again */
		else {
			from->mem_used_bytes -= sg->mem_bytes;
			to->mem_used_bytes += sg->mem_bytes;
			sg->host = (uint32_t)hi;
		}
	}
	g->host_id = h->id;
	c->guests_gen = gen_after;
}

static struct sched_host host_view(const struct db_host *h, uint64_t mem_used_bytes)
{
	return (struct sched_host){
		.name = h->name,
		.mem_capacity_bytes = h->memory_bytes && h->memory_bytes < SCHED_MAX_BYTES
					      ? h->memory_bytes : SCHED_MAX_BYTES,
		.mem_used_bytes = mem_used_bytes,
		.disabled = !h->enabled,
		.degraded = strcmp(h->health, "ok") != 0,
		.max_outbound = h->max_outbound,
		.max_inbound = h->max_inbound,
	};
}

void snap_cache_host_changed(struct snap_cache *c, uint64_t gen_before, uint64_t gen_after,
			     const struct db_host *h)
{
	if (!c->have_hosts || c->hosts_gen != gen_before || gen_after != gen_before + 1)
		return;
	size_t i = index_find(&c->host_names, c->hosts, sizeof(*c->hosts),
			      offsetof(struct db_host, name), c->n_hosts, h->name);
	if (i == SIZE_MAX || c->hosts[i].id != h->id)
		return; /* let the next round read them all */
	c->hosts[i] = *h;
	if (c->views_ok)
		c->sh[i] = host_view(&c->hosts[i], c->sh[i].mem_used_bytes);
	c->hosts_gen = gen_after;
}

/* ---- indexes ------------------------------------------------------------ */

/* Index of id among n records of stride bytes sorted by the int64_t id at
 * their start, or SCHED_NONE. */
static uint32_t index_of(const void *base, size_t stride, size_t n, int64_t id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int64_t v = *(const int64_t *)((const char *)base + mid * stride);
		if (v == id)
			return (uint32_t)mid;
		if (v < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return SCHED_NONE;
}

static uint32_t host_index(const struct snap_cache *c, int64_t id)
{
	_Static_assert(offsetof(struct db_host, id) == 0, "db_host starts with its id");
	return index_of(c->hosts, sizeof(*c->hosts), c->n_hosts, id);
}

static uint32_t guest_index(const struct snap_cache *c, int64_t id)
{
	_Static_assert(offsetof(struct cached_guest, id) == 0, "cached_guest starts with its id");
	return index_of(c->guests, sizeof(*c->guests), c->n_guests, id);
}

/* ---- one round ------------------------------------------------------------- */

/* Hosts and guests in the scheduler's form, with each host's memory used:
 * once after the rows were read, then patched (snap_cache_moved). */
static int build_views(struct snap_cache *c)
{
	free(c->sh);
	free(c->sg);
	c->sh = calloc(c->n_hosts + 1, sizeof(*c->sh));
	c->sg = calloc(c->n_guests + 1, sizeof(*c->sg));
	if (!c->sh || !c->sg)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_hosts; i++)
		c->sh[i] = host_view(&c->hosts[i], 0);
	for (size_t i = 0; i < c->n_guests; i++) {
		const struct cached_guest *g = &c->guests[i];
		uint32_t h = host_index(c, g->host_id);
		if (h == SCHED_NONE)
			return -EIO; /* the foreign key makes this impossible */
		c->sg[i] = (struct sched_guest){
			.name = g->name, .host = h, .mem_bytes = g->mem_bytes,
			.job_id = (uint64_t)g->job_id, .rank = g->rank < 0 ? 0 : (uint32_t)g->rank,
		};
		uint64_t used = c->sh[h].mem_used_bytes + g->mem_bytes;
		c->sh[h].mem_used_bytes = used < SCHED_MAX_BYTES ? used : SCHED_MAX_BYTES;
	}
	c->views_ok = 1;
	return 0;
}

static int build_cluster(struct snap_cache *c, struct snapshot *s)
{
	int rc = c->views_ok ? 0 : build_views(c);
	if (rc < 0)
		return rc;
	s->hosts = c->hosts;
	s->n_hosts = c->n_hosts;
	s->sh = c->sh;
	s->sg = c->sg;
	s->n_guests = c->n_guests;
	return 0;
}

struct running_ctx {
	const struct snap_cache *c;
	struct snapshot *s;
};

static int add_running(void *arg, const struct db_migration *m)
{
	struct running_ctx *r = arg;
	struct sched_running sr = {
		guest_index(r->c, m->guest_id), host_index(r->c, m->src_id),
		host_index(r->c, m->dst_id),
		(double)(m->started_ns ? m->started_ns : r->s->now_ns) / 1e9,
	};
	if (sr.guest == SCHED_NONE || sr.src == SCHED_NONE || sr.dst == SCHED_NONE)
		return 0; /* cannot be: hosts and guests in a migration are not removed */
	if (GROW(r->s->sr, r->s->cap_sr, r->s->n_sr + 1) < 0)
		return -ENOMEM;
	r->s->sr[r->s->n_sr++] = sr;
	return 0;
}

static int add_queued(void *arg, const struct db_migration *m)
{
	struct snapshot *s = arg;
	if (GROW(s->queue, s->cap_queue, s->n_queue + 1) < 0)
		return -ENOMEM;
	s->queue[s->n_queue++] = *m;
	return 0;
}

/* Requests by index; rows whose guest or destination vanished go to gone. */
static int build_requests(const struct snap_cache *c, struct snapshot *s)
{
	s->req = calloc(s->n_queue, sizeof(*s->req));
	s->req_row = calloc(s->n_queue, sizeof(*s->req_row));
	s->gone = calloc(s->n_queue, sizeof(*s->gone));
	if (!s->req || !s->req_row || !s->gone)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_queue; i++) {
		const struct db_migration *m = &s->queue[i];
		uint32_t g = guest_index(c, m->guest_id);
		uint32_t d = *m->dst ? host_index(c, m->dst_id) : SCHED_NONE;
		if (g == SCHED_NONE || (*m->dst && d == SCHED_NONE)) {
			struct snap_gone *x = &s->gone[s->n_gone++];
			x->row = i;
			snprintf(x->reason, sizeof(x->reason), "%s %s no longer exists",
				 g == SCHED_NONE ? "guest" : "host",
				 g == SCHED_NONE ? m->guest : m->dst);
			continue;
		}
		int prio = m->priority < SCHED_PRIO_PERIODIC ? SCHED_PRIO_PERIODIC
			   : m->priority > SCHED_PRIO_MANUAL ? SCHED_PRIO_MANUAL : m->priority;
		s->req[s->n_req] = (struct sched_request){ (uint64_t)m->id, g, d,
							   (enum sched_prio)prio,
							   (double)m->queued_ns / 1e9 };
		s->req_row[s->n_req++] = i;
	}
	return 0;
}

/*
 * Due queued rows a round reads at most, from the head of the queue: eight
 * times what the cluster may run at once (64 by default: 512 rows), at
 * least 256, and 4,096 when nothing limits it. An evacuation of 1,000
 * hosts queues 10,000: reading (and copying) them all at every round made
 * planning quadratic in the evacuation (2.3 s of CPU at 10,000 hosts), and
 * even a window of 2,048 was most of a round's cost. The head holds far
 * more startable requests than one round can take, and the rows behind it
 * come up as it drains, in queue order as before.
 */
size_t snapshot_window(unsigned max_concurrent)
{
	if (max_concurrent == 0 || max_concurrent > 512)
		return 4096;
	return max_concurrent * 8u < 256 ? 256 : max_concurrent * 8u;
}

int snapshot_take(struct snap_cache *c, struct db *db, int64_t now_ns, size_t window,
		  struct snapshot *s)
{
	struct db_mig_filter queued = { .states = DB_MIG_BIT(DB_MIG_QUEUED),
					.not_before_max_ns = now_ns,
					.order = DB_ORDER_QUEUE, .with_ids = 1,
					.page = 1, .limit = (unsigned)window };
	struct db_mig_filter running = { .states = DB_MIG_RUNNING, .with_ids = 1 };
	struct running_ctx rctx = { c, s };
	memset(s, 0, sizeof(*s));
	s->now_ns = now_ns;
	int rc = db_mig_list(db, &queued, add_queued, s);
	if (rc < 0 || s->n_queue == 0)
		return rc;
	if ((rc = cache_refresh(c, db)) < 0 || (rc = build_cluster(c, s)) < 0 ||
	    (rc = db_mig_list(db, &running, add_running, &rctx)) < 0)
		return rc;
	return build_requests(c, s);
}

void snapshot_release(struct snapshot *s)
{
	free(s->queue);
	free(s->sr);
	free(s->req);
	free(s->req_row);
	free(s->gone);
	memset(s, 0, sizeof(*s));
}

void snapshot_input(const struct snapshot *s, const struct sched_limits *limits,
		    int64_t last_start_ns, struct sched_input *in)
{
	*in = (struct sched_input){
		.hosts = s->sh, .n_hosts = s->n_hosts, .guests = s->sg, .n_guests = s->n_guests,
		.running = s->sr, .n_running = s->n_sr, .queue = s->req, .n_queue = s->n_req,
		.limits = *limits, .now_s = (double)s->now_ns / 1e9,
		.have_last_start = last_start_ns != 0,
		.last_start_s = (double)last_start_ns / 1e9,
	};
}
