/*
 * calibrate: see calibrate.h. How each figure of the model comes from the
 * rows, and what is assumed.
 *
 * The model is precopy.h's: round 0 sends the guest's memory at the link
 * rate L, every later round sends what the guest dirtied (rate D) during
 * the round before, and once that fits into the downtime limit the guest
 * stops, the rest goes (stop-and-copy) and a fixed switch-over follows.
 * Its parameters per migration are the RAM sent in round 0 (M), D and L,
 * plus one switch-over time for the cluster. Each is the MEDIAN of what the
 * rows say, per guest (M, D), per direction between two hosts (L) and over
 * all rows (L, switch-over): a median, not a mean, because one migration
 * that shared its link, hit a busy guest or waited on a slow destination
 * must not move the model.
 *
 * Per row, a figure the hypervisor measured wins; one it did not is
 * derived from the row's totals (bytes B, total T, downtime T_down, setup
 * T_setup) through the model itself:
 *
 *   L: link_bps (QEMU's ram.mbps at completion: B over T - T_setup),
 *      else B / (T - T_setup).
 *   M: ram_bytes (round 0's normal pages: what really had to go; zero
 *      pages cost next to nothing and the model does not know them), else
 *      the guest's memory (the model's own assumption that all of it goes).
 *   D: dirty_rate_bps (QEMU's dirty-pages-rate times the page size, the
 *      last one measured), else (B - M) / (T - T_down - T_setup). In the
 *      model every byte beyond round 0 was dirtied during pre-copy, which
 *      lasts from the start to the stop (T - T_down): B - M = D * that time,
 *      exactly when D is constant and the working set never fills up.
 *   switch-over: T_down minus what the model attributes to the last round
 *      (the stop-and-copy of what was dirtied during it, at L), with the
 *      row's own M, D, L; rows the model would not converge are left out.
 *
 * Assumed: the dirty rate is constant during a migration (a guest whose
 * writes come in bursts gets its rate at the last sync); dirtied pages are
 * new pages (no working-set cap: the twin's guests have none) and not
 * throttled (auto-converge rows measure a throttled rate); a direction's
 * rate does not depend on what else ran (rows that shared a link pull the
 * median down only when they are the majority); one host's rate in the sim
 * twin is the fastest of its directions' medians, since the sim runs a
 * migration at the slower of its two hosts' links, and min over the two
 * ends of "fastest seen" never undercuts the rate of the pair that was
 * seen; a direction with history is predicted at its own median.
 */
#include "calibrate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv_sim.h"
#include "precopy.h"

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double calib_median(double *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), dbl_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int calib_row_usable(const struct calib_row *r)
{
	return r->total_ms > 0 && r->bytes > 0;
}

static double setup_ms(const struct calib_row *r)
{
	return r->setup_ms > 0 && r->setup_ms < r->total_ms ? (double)r->setup_ms : 0;
}

double calib_row_link_bps(const struct calib_row *r)
{
	if (r->link_bps > 0)
		return (double)r->link_bps;
	double transfer_ms = (double)r->total_ms - setup_ms(r);
	return transfer_ms > 0 ? (double)r->bytes * 1000.0 / transfer_ms : 0;
}

double calib_row_ram_bytes(const struct calib_row *r)
{
	if (r->ram_bytes > 0)
		return (double)r->ram_bytes;
	if (r->memory_bytes > 0)
		return (double)r->memory_bytes;
	return (double)r->bytes; /* nothing better: as if one round sent it all */
}

double calib_row_dirty_rate_bps(const struct calib_row *r)
{
	if (r->dirty_rate_bps > 0)
		return (double)r->dirty_rate_bps;
	double down_ms = r->downtime_ms > 0 ? (double)r->downtime_ms : 0;
	double precopy_ms = (double)r->total_ms - down_ms - setup_ms(r);
	double again = (double)r->bytes - calib_row_ram_bytes(r);
	return precopy_ms > 0 && again > 0 ? again * 1000.0 / precopy_ms : 0;
}

double calib_row_stop_copy_ms(const struct calib_row *r, double max_downtime_s)
{
	struct precopy_result res;
	double ram = calib_row_ram_bytes(r), link = calib_row_link_bps(r);
	struct precopy_params pp = {
		.memory_bytes = ram >= 1 ? (uint64_t)llround(ram) : 1,
		.dirty_rate_bps = calib_row_dirty_rate_bps(r),
		.max_downtime_s = max_downtime_s > 0 ? max_downtime_s : 0,
		/* switchover_s 0: the downtime it reports is the copy alone */
	};
	if (!(link > 0) || precopy_estimate(&pp, link, &res) < 0 || !res.converged)
		return -1;
	return res.downtime_s * 1000.0;
}

/* ---- grouping ---- */

/* The rows' values of one group, grown as rows come. */
struct series {
	double *v;
	size_t n, cap;
};

static int series_add(struct series *s, double v)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		double *p = realloc(s->v, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		s->v = p;
		s->cap = cap;
	}
	s->v[s->n++] = v;
	return 0;
}

/* A guest or a direction of the model being fitted, with its rows' values. */
struct guest_acc {
	struct calib_guest g;
	struct series ram, dirty, total, down;
};

struct link_acc {
	struct calib_link l;
	struct series rate;
};

struct fit {
	struct guest_acc *guests;
	size_t n_guests, guest_cap;
	struct link_acc *links;
	size_t n_links, link_cap;
	struct series all_links, switchover;
	unsigned migrations;
};

/* A new zeroed element at the end of *arr (n, cap updated), or NULL. */
static void *append_zeroed(void **arr, size_t *n, size_t *cap, size_t size)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		void *p = realloc(*arr, c * size);
		if (!p)
			return NULL;
		*arr = p;
		*cap = c;
	}
	void *e = (char *)*arr + (*n)++ * size;
	memset(e, 0, size);
	return e;
}

/* Find or add: linear, a cluster's history has few guests and links. */
static struct guest_acc *guest_slot(struct fit *f, const char *name)
{
	for (size_t i = 0; i < f->n_guests; i++)
		if (strcmp(f->guests[i].g.name, name) == 0)
			return &f->guests[i];
	struct guest_acc *a = append_zeroed((void **)&f->guests, &f->n_guests, &f->guest_cap,
					    sizeof(*a));
	if (a)
		snprintf(a->g.name, sizeof(a->g.name), "%s", name);
	return a;
}

static struct link_acc *link_slot(struct fit *f, const char *src, const char *dst)
{
	for (size_t i = 0; i < f->n_links; i++)
		if (strcmp(f->links[i].l.src, src) == 0 && strcmp(f->links[i].l.dst, dst) == 0)
			return &f->links[i];
	struct link_acc *a = append_zeroed((void **)&f->links, &f->n_links, &f->link_cap,
					   sizeof(*a));
	if (a) {
		snprintf(a->l.src, sizeof(a->l.src), "%s", src);
		snprintf(a->l.dst, sizeof(a->l.dst), "%s", dst);
	}
	return a;
}

static void host_raise(struct calib *c, const char *name, double link_bps)
{
	for (size_t i = 0; i < c->n_hosts; i++) {
		if (strcmp(c->hosts[i].name, name) == 0) {
			if (link_bps > c->hosts[i].link_bps)
				c->hosts[i].link_bps = link_bps;
			return;
		}
	}
	struct calib_host *h = &c->hosts[c->n_hosts++]; /* room for 2 per link */
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->link_bps = link_bps;
}

static int guest_cmp(const void *a, const void *b)
{
	return strcmp(((const struct calib_guest *)a)->name, ((const struct calib_guest *)b)->name);
}

static int host_cmp(const void *a, const void *b)
{
	return strcmp(((const struct calib_host *)a)->name, ((const struct calib_host *)b)->name);
}

static int link_cmp(const void *a, const void *b)
{
	const struct calib_link *x = a, *y = b;
	int d = strcmp(x->src, y->src);
	return d ? d : strcmp(x->dst, y->dst);
}

/* ---- the fit ---- */

static int fit_row(struct fit *f, const struct calib_row *r, double max_downtime_s)
{
	struct guest_acc *g = guest_slot(f, r->guest);
	struct link_acc *l = link_slot(f, r->src, r->dst);
	if (!g || !l)
		return -ENOMEM;
	double link = calib_row_link_bps(r), stop_ms = calib_row_stop_copy_ms(r, max_downtime_s);
	double down = r->downtime_ms > 0 ? (double)r->downtime_ms : 0;
	int rc = series_add(&g->ram, calib_row_ram_bytes(r));
	rc |= series_add(&g->dirty, calib_row_dirty_rate_bps(r));
	rc |= series_add(&g->total, (double)r->total_ms);
	rc |= series_add(&g->down, down);
	if (link > 0) {
		rc |= series_add(&l->rate, link);
		rc |= series_add(&f->all_links, link);
	}
	if (stop_ms >= 0)
		rc |= series_add(&f->switchover, down - stop_ms);
	if (rc)
		return -ENOMEM;
	g->g.migrations++;
	l->l.migrations++;
	if (r->memory_bytes)
		g->g.memory_bytes = r->memory_bytes;
	snprintf(g->g.host, sizeof(g->g.host), "%s", r->dst); /* rows come oldest first */
	f->migrations++;
	return 0;
}

/* The medians into a new model; hosts from the directions. */
static int fit_settle(struct fit *f, struct calib *c)
{
	c->migrations = f->migrations;
	c->guests = calloc(f->n_guests + 1, sizeof(*c->guests));
	c->links = calloc(f->n_links + 1, sizeof(*c->links));
	c->hosts = calloc(2 * f->n_links + 1, sizeof(*c->hosts));
	if (!c->guests || !c->links || !c->hosts)
		return -ENOMEM;
	for (size_t i = 0; i < f->n_guests; i++) {
		struct guest_acc *a = &f->guests[i];
		struct calib_guest *g = &c->guests[c->n_guests++];
		*g = a->g;
		g->ram_bytes = calib_median(a->ram.v, a->ram.n);
		g->dirty_rate_bps = calib_median(a->dirty.v, a->dirty.n);
		g->total_ms = calib_median(a->total.v, a->total.n);
		g->downtime_ms = calib_median(a->down.v, a->down.n);
	}
	for (size_t i = 0; i < f->n_links; i++) {
		struct calib_link *l = &c->links[c->n_links++];
		*l = f->links[i].l;
		l->link_bps = calib_median(f->links[i].rate.v, f->links[i].rate.n);
		host_raise(c, l->src, l->link_bps);
		host_raise(c, l->dst, l->link_bps);
	}
	c->link_bps = calib_median(f->all_links.v, f->all_links.n);
	double sw = calib_median(f->switchover.v, f->switchover.n);
	c->switchover_ms = sw > 0 ? sw : 0;
	if (c->n_guests > 1)
		qsort(c->guests, c->n_guests, sizeof(*c->guests), guest_cmp);
	if (c->n_links > 1)
		qsort(c->links, c->n_links, sizeof(*c->links), link_cmp);
	if (c->n_hosts > 1)
		qsort(c->hosts, c->n_hosts, sizeof(*c->hosts), host_cmp);
	return 0;
}

static void fit_release(struct fit *f)
{
	for (size_t i = 0; i < f->n_guests; i++) {
		free(f->guests[i].ram.v);
		free(f->guests[i].dirty.v);
		free(f->guests[i].total.v);
		free(f->guests[i].down.v);
	}
	for (size_t i = 0; i < f->n_links; i++)
		free(f->links[i].rate.v);
	free(f->guests);
	free(f->links);
	free(f->all_links.v);
	free(f->switchover.v);
}

int calib_fit(const struct calib_row *rows, size_t n, double max_downtime_s,
	      struct calib **out)
{
	struct fit f = { 0 };
	struct calib *c = calloc(1, sizeof(*c));
	int rc = c ? 0 : -ENOMEM;
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (calib_row_usable(&rows[i]))
			rc = fit_row(&f, &rows[i], max_downtime_s);
	if (rc == 0)
		rc = fit_settle(&f, c);
	fit_release(&f);
	if (rc < 0) {
		calib_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void calib_free(struct calib *c)
{
	if (!c)
		return;
	free(c->links);
	free(c->hosts);
	free(c->guests);
	free(c);
}

/* ---- output ---- */

static json_t *whole(double v)
{
	return json_integer((json_int_t)llround(v));
}

void calib_sim_uri(const char *name, double link_bps, char *buf, size_t len)
{
	snprintf(buf, len, "sim:///%s?link=%.0fbit", name, link_bps * 8);
}

static json_t *sim_json(const struct calib *c)
{
	json_t *hosts = json_array(), *guests = json_array();
	char text[256];
	for (size_t i = 0; i < c->n_hosts; i++) {
		calib_sim_uri(c->hosts[i].name, c->hosts[i].link_bps, text, sizeof(text));
		json_array_append_new(hosts, json_pack("{s:s, s:s}", "name", c->hosts[i].name,
						       "uri", text));
	}
	for (size_t i = 0; i < c->n_guests; i++) {
		const struct calib_guest *g = &c->guests[i];
		char memory[32], dirty[32];
		snprintf(memory, sizeof(memory), "%.0f", g->ram_bytes);
		snprintf(dirty, sizeof(dirty), "%.0f/s", g->dirty_rate_bps);
		json_array_append_new(guests, json_pack("{s:s, s:s, s:s, s:s}", "name", g->name,
							"host", g->host, "memory", memory,
							"dirty_rate", dirty));
	}
	return json_pack("{s:o, s:o}", "hosts", hosts, "guests", guests);
}

json_t *calib_json(const struct calib *c)
{
	json_t *links = json_array(), *guests = json_array();
	for (size_t i = 0; i < c->n_links; i++) {
		const struct calib_link *l = &c->links[i];
		json_array_append_new(links, json_pack("{s:s, s:s, s:o, s:i}", "src", l->src, "dst",
						       l->dst, "link_bps", whole(l->link_bps),
						       "migrations", (int)l->migrations));
	}
	for (size_t i = 0; i < c->n_guests; i++) {
		const struct calib_guest *g = &c->guests[i];
		json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:i, s:o, s:o}", "name", g->name,
				      "ram_bytes", whole(g->ram_bytes), "dirty_rate_bps",
				      whole(g->dirty_rate_bps), "total_ms", whole(g->total_ms),
				      "migrations", (int)g->migrations, "downtime_ms",
				      whole(g->downtime_ms), "memory_bytes",
				      g->memory_bytes ? json_integer((json_int_t)g->memory_bytes)
						      : json_null());
		json_array_append_new(guests, o);
	}
	return json_pack("{s:i, s:o, s:o, s:o, s:o, s:o}", "migrations", (int)c->migrations,
			 "link_bps", c->migrations ? whole(c->link_bps) : json_null(), "links",
			 links, "guests", guests, "switchover_ms", whole(c->switchover_ms), "sim",
			 sim_json(c));
}

/* ---- prediction ---- */

static const struct calib_guest *find_guest(const struct calib *c, const char *name)
{
	for (size_t i = 0; i < c->n_guests; i++)
		if (strcmp(c->guests[i].name, name) == 0)
			return &c->guests[i];
	return NULL;
}

static double host_rate(const struct calib *c, const char *name)
{
	for (size_t i = 0; i < c->n_hosts; i++)
		if (strcmp(c->hosts[i].name, name) == 0 && c->hosts[i].link_bps > 0)
			return c->hosts[i].link_bps;
	return c->link_bps;
}

/* The rate of src -> dst: its own median, else the slower host's. */
static double direction_rate(const struct calib *c, const char *src, const char *dst)
{
	for (size_t i = 0; i < c->n_links; i++)
		if (strcmp(c->links[i].src, src) == 0 && strcmp(c->links[i].dst, dst) == 0 &&
		    c->links[i].link_bps > 0)
			return c->links[i].link_bps;
	return fmin(host_rate(c, src), host_rate(c, dst));
}

int calib_predict(const struct calib *c, const char *guest, const char *src, const char *dst,
		  const struct hv_migrate_params *p, struct hv_progress *out, char *err,
		  size_t errlen)
{
	const struct calib_guest *g = find_guest(c, guest);
	double rate = direction_rate(c, src, dst);
	if (!g || !(rate > 0)) {
		snprintf(err, errlen, "guest %s: no completed migration of it in the history to "
			 "calibrate from", guest);
		return -ENOENT;
	}
	char src_uri[256], dst_uri[256];
	calib_sim_uri(src, rate, src_uri, sizeof(src_uri));
	calib_sim_uri(dst, rate, dst_uri, sizeof(dst_uri));
	uint64_t ram = g->ram_bytes >= 1 ? (uint64_t)llround(g->ram_bytes) : 1;
	int rc = hv_sim_estimate(src_uri, dst_uri, ram, (uint64_t)llround(g->dirty_rate_bps), p,
				 out);
	if (rc < 0) {
		snprintf(err, errlen, "guest %s: %s", guest, out->error);
		return rc;
	}
	if (out->state == HV_MIG_COMPLETED) {
		double delta_ms = c->switchover_ms - HV_SIM_SWITCHOVER_S * 1000.0;
		double down = (double)out->downtime_ms + delta_ms;
		double total = (double)out->total_time_ms + delta_ms;
		out->downtime_ms = down > 0 ? (uint64_t)llround(down) : 0;
		out->total_time_ms = total > 0 ? (uint64_t)llround(total) : 0;
	}
	return 0;
}
