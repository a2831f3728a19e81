/*
 * api_report: the API's commands over the cost history: report (counts and
 * the distribution of every cost per policy), calibrate (the pre-copy
 * model fitted to what was measured) and predict (one migration planned
 * with that model). They only read; see api.c for the rest.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "calibrate.h"
#include "config.h"
#include "executor.h"
#include "hv_sim.h"
#include "log.h"
#include "migd_proto.h"
#include "util.h"

/* ---- report ---------------------------------------------------------------- */

struct cost {
	char policy[DB_NAME_MAX + 2];  /* "(manual)" for requests by people */
	enum db_mig_state state;
	int64_t total_ms, downtime_ms, bytes;
	int64_t quiesce_ms, resume_ms, drained_requests, drained_bytes, lull_wait_ms;
	char quiesce[16];              /* the outcome's first word: ok, missed, error... */
	int gave_up;                   /* stopped waiting for a lull */
};

struct costs {
	struct cost *c;
	size_t n, cap;
};

static int collect_cost(void *arg, const struct db_migration *m)
{
	struct costs *cs = arg;
	if (GROW(cs->c, cs->cap, cs->n + 1) < 0)
		return -ENOMEM;
	struct cost *c = &cs->c[cs->n++];
	snprintf(c->policy, sizeof(c->policy), "%s", *m->policy ? m->policy : "(manual)");
	c->state = m->state;
	c->total_ms = m->total_ms;
	c->downtime_ms = m->downtime_ms;
	c->bytes = m->bytes;
	c->quiesce_ms = m->quiesce_ms;
	c->resume_ms = m->resume_ms;
	c->drained_requests = m->drained_requests;
	c->drained_bytes = m->drained_bytes;
	c->lull_wait_ms = m->lull_wait_ms;
	c->gave_up = strncmp(m->lull_reason, "gave up", 7) == 0;
	snprintf(c->quiesce, sizeof(c->quiesce), "%.*s", (int)strcspn(m->quiesce, ":"), m->quiesce);
	return 0;
}

static int cost_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cost *)a)->policy, ((const struct cost *)b)->policy);
}

static int i64_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* {mean, p50, p99} of v (sorted here), scaled; nulls when empty.
 * Percentiles by nearest rank. */
static json_t *summary(int64_t *v, size_t n, double scale)
{
	if (n == 0)
		return json_pack("{s:n, s:n, s:n}", "mean", "p50", "p99");
	double sum = 0;
	qsort(v, n, sizeof(*v), i64_cmp);
	for (size_t i = 0; i < n; i++)
		sum += (double)v[i];
	size_t p50 = (n * 50 + 99) / 100, p99 = (n * 99 + 99) / 100;
	return json_pack("{s:f, s:f, s:f}", "mean", sum / (double)n * scale, "p50",
			 (double)v[p50 ? p50 - 1 : 0] * scale, "p99",
			 (double)v[p99 ? p99 - 1 : 0] * scale);
}

/* The agent side of c[0..n): quiesce and resume times (every migration
 * that asked, whatever its end), what was drained, outcomes counted by
 * their first word, and the waits for I/O lulls. */
static json_t *agent_stats(const struct cost *c, size_t n)
{
	int64_t *q = calloc(n + 1, sizeof(int64_t)), *r = calloc(n + 1, sizeof(int64_t));
	int64_t *lull = calloc(n + 1, sizeof(int64_t));
	size_t nq = 0, nr = 0, nl = 0, nd = 0, gave_up = 0;
	double drained_bytes = 0, drained_requests = 0;
	json_t *outcomes = json_object();
	for (size_t i = 0; q && r && lull && i < n; i++) {
		if (c[i].quiesce_ms >= 0)
			q[nq++] = c[i].quiesce_ms;
		if (c[i].resume_ms >= 0)
			r[nr++] = c[i].resume_ms;
		if (c[i].lull_wait_ms > 0)
			lull[nl++] = c[i].lull_wait_ms;
		gave_up += (size_t)c[i].gave_up;
		if (c[i].drained_bytes >= 0) {
			drained_bytes += (double)c[i].drained_bytes;
			drained_requests += (double)(c[i].drained_requests < 0 ? 0
								   : c[i].drained_requests);
			nd++;
		}
		if (*c[i].quiesce) {
			json_t *k = json_object_get(outcomes, c[i].quiesce);
			json_object_set_new(outcomes, c[i].quiesce,
					    json_integer(k ? json_integer_value(k) + 1 : 1));
		}
	}
	json_t *o = json_pack("{s:o, s:o, s:o, s:I, s:o, s:I}", "quiesce_ms", summary(q, nq, 1),
			      "resume_ms", summary(r, nr, 1), "quiesce_outcomes", outcomes,
			      "lull_waits", (json_int_t)nl, "lull_wait_ms", summary(lull, nl, 1),
			      "lull_gave_up", (json_int_t)gave_up);
	json_object_set_new(o, "drained_bytes", nd ? json_pack("{s:f}", "mean",
							       drained_bytes / (double)nd)
						  : json_pack("{s:n}", "mean"));
	json_object_set_new(o, "drained_requests", nd ? json_pack("{s:f}", "mean",
								  drained_requests / (double)nd)
						     : json_pack("{s:n}", "mean"));
	free(q);
	free(r);
	free(lull);
	return o;
}

/* Statistics of c[0..n); costs of completed migrations with figures only
 * (a reconciled one has none). */
static json_t *stats(const struct cost *c, size_t n)
{
	int64_t *total = calloc(n + 1, sizeof(int64_t)), *down = calloc(n + 1, sizeof(int64_t));
	size_t counts[DB_MIG_N_STATES] = { 0 }, k = 0;
	double bytes = 0;
	for (size_t i = 0; i < n; i++) {
		counts[c[i].state]++;
		if (c[i].state != DB_MIG_COMPLETED || c[i].total_ms < 0 || !total || !down)
			continue;
		total[k] = c[i].total_ms;
		down[k] = c[i].downtime_ms < 0 ? 0 : c[i].downtime_ms;
		bytes += c[i].bytes < 0 ? 0 : (double)c[i].bytes;
		k++;
	}
	json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:o, s:o}", "count", (json_int_t)n,
			      "completed", (json_int_t)counts[DB_MIG_COMPLETED], "failed",
			      (json_int_t)counts[DB_MIG_FAILED], "aborted",
			      (json_int_t)counts[DB_MIG_ABORTED], "total_s", summary(total, k, 1e-3),
			      "downtime_ms", summary(down, k, 1));
	json_object_set_new(o, "bytes", k ? json_pack("{s:f}", "mean", bytes / (double)k)
					  : json_pack("{s:n}", "mean"));
	json_object_update_new(o, agent_stats(c, n));
	free(total);
	free(down);
	return o;
}

int cmd_report(struct api *api, json_t *args, json_t **result, char *err,
		      size_t errlen)
{
	struct db_mig_filter f;
	struct costs cs = { 0 };
	int rc = finished_filter(args, &f, err, errlen);
	if (rc == 0)
		rc = db_error(db_mig_list(api->db, &f, collect_cost, &cs), err, errlen);
	if (rc < 0) {
		free(cs.c);
		return rc;
	}
	json_t *per = json_object();
	*result = json_pack("{s:o, s:o}", "overall", stats(cs.c, cs.n), "policies", per);
	if (cs.n > 1)
		qsort(cs.c, cs.n, sizeof(*cs.c), cost_cmp);
	for (size_t i = 0, j; i < cs.n; i = j) {
		for (j = i + 1; j < cs.n && strcmp(cs.c[j].policy, cs.c[i].policy) == 0; j++)
			;
		json_object_set_new(per, cs.c[i].policy, stats(cs.c + i, j - i));
	}
	free(cs.c);
	return 0;
}

/* ---- calibration and prediction (calibrate.h) ----------------------------- */

struct calib_rows {
	struct api *api;
	struct calib_row *r;
	size_t n, cap;
};

static int collect_calib_row(void *arg, const struct db_migration *m)
{
	struct calib_rows *cr = arg;
	struct db_guest g;
	if (GROW(cr->r, cr->cap, cr->n + 1) < 0)
		return -ENOMEM;
	struct calib_row *r = &cr->r[cr->n++];
	*r = (struct calib_row){
		.total_ms = m->total_ms, .downtime_ms = m->downtime_ms, .bytes = m->bytes,
		.link_bps = m->link_bps, .dirty_rate_bps = m->dirty_rate_bps,
		.ram_bytes = m->ram_bytes, .setup_ms = m->setup_ms,
	};
	snprintf(r->guest, sizeof(r->guest), "%s", m->guest);
	snprintf(r->src, sizeof(r->src), "%s", m->src);
	snprintf(r->dst, sizeof(r->dst), "%s", m->dst);
	if (db_guest_get(cr->api->db, m->guest, &g) == 0)
		r->memory_bytes = g.memory_bytes;
	return 0;
}

/* The model of the completed migrations f selects (oldest first). */
static int fit_history(struct api *api, struct db_mig_filter *f, struct calib **out, char *err,
		       size_t errlen)
{
	struct calib_rows cr = { .api = api };
	f->states = DB_MIG_BIT(DB_MIG_COMPLETED);
	f->order = DB_ORDER_FINISHED;
	int rc = db_error(db_mig_list(api->db, f, collect_calib_row, &cr), err, errlen);
	if (rc == 0 && (rc = calib_fit(cr.r, cr.n, api->conf->max_downtime_ms / 1000.0, out)) < 0)
		snprintf(err, errlen, "calibrating from %zu migrations: out of memory", cr.n);
	free(cr.r);
	return rc;
}

int cmd_calibrate(struct api *api, json_t *args, json_t **result, char *err,
			 size_t errlen)
{
	struct db_mig_filter f;
	struct calib *c;
	int rc = finished_filter(args, &f, err, errlen);
	if (rc == 0)
		rc = fit_history(api, &f, &c, err, errlen);
	if (rc < 0)
		return rc;
	*result = calib_json(c);
	calib_free(c);
	return 0;
}

static int is_sim_uri(const char *uri)
{
	return strncmp(uri, "sim:", 4) == 0;
}

/* guest (running on src) to dst: on the calibrated model when the history
 * has the guest, else on a sim migd with the guest's own parameters. */
static int predict(struct api *api, const struct db_guest *g, const struct db_host *src,
		   const struct db_host *dst, struct hv_progress *out, const char **model,
		   char *err, size_t errlen)
{
	const struct migd_config *conf = api->conf;
	struct hv_migrate_params p = { .max_downtime_ms = conf->max_downtime_ms,
				       .bandwidth_bps = conf->bandwidth_cap_bps,
				       .auto_converge = conf->auto_converge,
				       .postcopy = conf->postcopy };
	struct db_mig_filter f = { 0 };
	struct calib *c;
	int rc = fit_history(api, &f, &c, err, errlen);
	if (rc < 0)
		return rc;
	*model = "history";
	rc = calib_predict(c, g->name, src->name, dst->name, &p, out, err, errlen);
	calib_free(c);
	if (rc != -ENOENT || !is_sim_uri(src->uri) || !is_sim_uri(dst->uri))
		return rc;
	*model = "sim";
	rc = hv_sim_estimate(src->uri, dst->uri, g->memory_bytes, g->dirty_rate_bps, &p, out);
	if (rc < 0)
		snprintf(err, errlen, "guest %s: %s", g->name, out->error);
	return rc;
}

int cmd_predict(struct api *api, json_t *args, json_t **result, char *err,
		       size_t errlen)
{
	const char *guest, *to, *model;
	struct db_guest g;
	struct db_host src, dst;
	struct hv_progress out;
	int rc;
	if ((rc = arg_name(args, "guest", 1, &guest, err, errlen)) < 0 ||
	    (rc = arg_name(args, "to", 1, &to, err, errlen)) < 0)
		return rc;
	if ((rc = db_guest_get(api->db, guest, &g)) == -ENOENT)
		snprintf(err, errlen, "guest \"%s\": no such guest", guest);
	if (rc < 0)
		return db_error(rc, err, errlen);
	if ((rc = host_lookup(api, to, &dst, err, errlen)) < 0 ||
	    (rc = host_lookup(api, g.host, &src, err, errlen)) < 0)
		return rc;
	if (strcmp(g.host, to) == 0) {
		snprintf(err, errlen, "guest %s: already on %s", guest, to);
		return -EINVAL;
	}
	if ((rc = predict(api, &g, &src, &dst, &out, &model, err, errlen)) < 0)
		return rc;
	*result = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:i, s:s, s:s}", "guest", guest,
			    "src", src.name, "dst", dst.name, "total_ms",
			    (json_int_t)out.total_time_ms, "downtime_ms",
			    (json_int_t)out.downtime_ms, "bytes", (json_int_t)out.transferred_bytes,
			    "rounds", (int)out.rounds, "state",
			    out.state == HV_MIG_COMPLETED ? "completed" : "failed", "model", model);
	if (out.state != HV_MIG_COMPLETED)
		json_object_set_new(*result, "error", json_string(out.error));
	return 0;
}

