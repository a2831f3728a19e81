/*
 * metrics: see metrics.h. The event table at the bottom is the whole map
 * from what migd publishes to what Prometheus sees; a figure a row does
 * not know (-1 or null in the event) is left out of its histogram rather
 * than counted as zero.
 */
#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_link.h"
#include "db.h"
#include "httpd.h"
#include "hv.h"
#include "log.h"
#include "prom.h"
#include "util.h"

#ifndef MIGD_VERSION
#define MIGD_VERSION "0.0.0"
#endif

#define REFRESH_MS 1000

struct migd_metrics {
	struct prom_registry *reg;
	struct httpd *httpd;
	struct db *db;
	struct agent_link *agents;
	uint64_t refreshed_ms;
	/* migrations, labelled policy,backend (+ result) */
	struct prom_metric *mig_queued, *mig_started, *mig_ended, *mig_deferred;
	struct prom_metric *mig_total_s, *mig_downtime_s, *mig_quiesce_s, *mig_resume_s;
	struct prom_metric *mig_bytes, *mig_drained_bytes;
	struct prom_metric *queue_depth, *running;
	struct prom_metric *prog_sent, *prog_left, *prog_total, *prog_rounds; /* {guest} */
	/* checkpoints and restores, labelled policy,backend (+ result) */
	struct prom_metric *ck_started, *ck_ended, *ck_total_s, *ck_pause_s, *ck_quiesce_s;
	struct prom_metric *ck_resume_s, *ck_bytes, *restores;
	/* the cluster */
	struct prom_metric *hosts, *guests, *policies, *firings;
	struct prom_metric *agent_connects, *agent_gone, *agents_connected;
	struct prom_metric *agent_up, *agent_read, *agent_write, *agent_inflight;
	struct prom_metric *info;
};

static const char *str_or(json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : dflt;
}

/* A duration in ms from the event, as seconds; -1 when unknown. */
static double seconds(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_number(v) || json_number_value(v) < 0)
		return -1;
	return json_number_value(v) / 1e3;
}

static double number(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : 0;
}

static void observe(struct prom_metric *m, const char *const *labels, double value)
{
	if (value >= 0)
		prom_histogram_observe(m, labels, value);
}

/* The backend of a host: its URI's driver ("sim", "qmp", "libvirt"). */
static void host_backend(struct migd_metrics *m, const char *host, char *buf, size_t len)
{
	struct db_host h;
	const struct hv_ops *ops = NULL;
	if (host && *host && db_host_get(m->db, host, &h) == 0)
		ops = hv_ops_for_uri(h.uri);
	snprintf(buf, len, "%s", ops ? ops->scheme : "unknown");
}

static int one_of(const char *what, const char *const *words)
{
	for (; *words; words++)
		if (strcmp(what, *words) == 0)
			return 1;
	return 0;
}

static void on_migration(struct migd_metrics *m, const char *what, json_t *ev)
{
	static const char *const counted[] = { "queued", "started", "deferred", "completed",
					       "failed", "aborted", NULL };
	static const char *const ended[] = { "completed", "failed", "aborted", NULL };
	char backend[32];
	const char *guest[] = { str_or(ev, "guest", "") };
	if (strcmp(what, "progress") == 0) {
		prom_lock(m->reg);
		prom_gauge_set_unlocked(m->prog_sent, guest, number(ev, "transferred_bytes"));
		prom_gauge_set_unlocked(m->prog_left, guest, number(ev, "remaining_bytes"));
		prom_gauge_set_unlocked(m->prog_total, guest, number(ev, "total_bytes"));
		prom_gauge_set_unlocked(m->prog_rounds, guest, number(ev, "rounds"));
		prom_unlock(m->reg);
		return;
	}
	if (one_of(what, ended)) {
		prom_series_remove(m->prog_sent, guest);
		prom_series_remove(m->prog_left, guest);
		prom_series_remove(m->prog_total, guest);
		prom_series_remove(m->prog_rounds, guest);
	}
	if (!one_of(what, counted))
		return; /* progress and the phases in between: nothing to count */
	host_backend(m, str_or(ev, "src", ""), backend, sizeof(backend));
	const char *policy = str_or(ev, "policy", "");
	const char *pb[] = { policy, backend };
	if (strcmp(what, "queued") == 0) {
		prom_counter_add(m->mig_queued, pb, 1);
	} else if (strcmp(what, "started") == 0) {
		prom_counter_add(m->mig_started, pb, 1);
	} else if (strcmp(what, "deferred") == 0) {
		prom_counter_add(m->mig_deferred, pb, 1);
	} else if (strcmp(what, "completed") == 0 || strcmp(what, "failed") == 0 ||
		   strcmp(what, "aborted") == 0) {
		const char *rpb[] = { what, policy, backend };
		prom_counter_add(m->mig_ended, rpb, 1);
		observe(m->mig_total_s, rpb, seconds(ev, "total_ms"));
		observe(m->mig_downtime_s, rpb, seconds(ev, "downtime_ms"));
		observe(m->mig_quiesce_s, rpb, seconds(ev, "quiesce_ms"));
		observe(m->mig_resume_s, rpb, seconds(ev, "resume_ms"));
		json_int_t bytes = json_integer_value(json_object_get(ev, "bytes"));
		if (bytes > 0)
			prom_counter_add(m->mig_bytes, pb, (double)bytes);
		bytes = json_integer_value(json_object_get(ev, "drained_bytes"));
		if (bytes > 0)
			prom_counter_add(m->mig_drained_bytes, pb, (double)bytes);
	}
}

static void on_checkpoint(struct migd_metrics *m, const char *what, json_t *ev)
{
	static const char *const counted[] = { "queued", "completed", "failed", NULL };
	char backend[32];
	if (!one_of(what, counted))
		return;
	json_t *first = json_array_get(json_object_get(ev, "guests"), 0);
	host_backend(m, str_or(first, "host", ""), backend, sizeof(backend));
	const char *pb[] = { str_or(ev, "policy", ""), backend };
	if (strcmp(what, "queued") == 0) {
		prom_counter_add(m->ck_started, pb, 1);
		return;
	}
	const char *rpb[] = { what, pb[0], pb[1] };
	json_t *phases = json_object_get(ev, "phases");
	prom_counter_add(m->ck_ended, rpb, 1);
	observe(m->ck_total_s, rpb, seconds(phases, "total_ms"));
	observe(m->ck_pause_s, rpb, seconds(ev, "job_pause_ms"));
	observe(m->ck_quiesce_s, rpb, seconds(phases, "quiesce_ms"));
	observe(m->ck_resume_s, rpb, seconds(phases, "resume_ms"));
	json_int_t bytes = json_integer_value(json_object_get(ev, "bytes"));
	if (bytes > 0)
		prom_counter_add(m->ck_bytes, pb, (double)bytes);
}

void metrics_event(struct migd_metrics *m, json_t *ev)
{
	if (!m)
		return;
	const char *type = str_or(ev, "type", "");
	const char *dot = strchr(type, '.');
	if (!dot)
		return;
	size_t kind_len = (size_t)(dot - type);
	const char *what = dot + 1;
	if (strncmp(type, "migration", kind_len) == 0 && kind_len == 9) {
		on_migration(m, what, ev);
	} else if (strncmp(type, "checkpoint", kind_len) == 0 && kind_len == 10) {
		on_checkpoint(m, what, ev);
	} else if (strncmp(type, "restore", kind_len) == 0 && kind_len == 7) {
		if (strcmp(what, "completed") == 0 || strcmp(what, "failed") == 0)
			prom_counter_add(m->restores, (const char *[]){ what }, 1);
	} else if (strcmp(type, "policy.fired") == 0) {
		json_t *p = json_object_get(ev, "policy");
		const char *labels[] = { str_or(ev, "name", ""), str_or(p, "type", "") };
		prom_counter_add(m->firings, labels, 1);
	} else if (strcmp(type, "agent.connected") == 0) {
		prom_counter_add(m->agent_connects, NULL, 1);
	} else if (strcmp(type, "agent.gone") == 0) {
		prom_counter_add(m->agent_gone, NULL, 1);
	}
}

/* ---- gauges, refreshed from the database ------------------------------- */

struct host_tally {
	char health[16];
	int enabled;
	unsigned n;
};

struct host_tallies {
	struct host_tally t[16];
	size_t n;
};

static int tally_host(void *arg, const struct db_host *h)
{
	struct host_tallies *ht = arg;
	for (size_t i = 0; i < ht->n; i++) {
		if (strcmp(ht->t[i].health, h->health) == 0 && ht->t[i].enabled == !!h->enabled) {
			ht->t[i].n++;
			return 0;
		}
	}
	if (ht->n < ARRAY_SIZE(ht->t)) {
		snprintf(ht->t[ht->n].health, sizeof(ht->t[ht->n].health), "%s", h->health);
		ht->t[ht->n].enabled = !!h->enabled;
		ht->t[ht->n++].n = 1;
	}
	return 0;
}

static void refresh_agents(struct migd_metrics *m, json_t *list)
{
	size_t i, connected = 0;
	json_t *a;
	prom_metric_clear_unlocked(m->agent_up);
	prom_metric_clear_unlocked(m->agent_read);
	prom_metric_clear_unlocked(m->agent_write);
	prom_metric_clear_unlocked(m->agent_inflight);
	json_array_foreach(list, i, a) {
		const char *guest[] = { str_or(a, "guest", "") };
		int up = json_is_true(json_object_get(a, "connected"));
		connected += up;
		prom_gauge_set_unlocked(m->agent_up, guest, up);
		json_t *v;
		if (json_is_number(v = json_object_get(a, "read_bps")))
			prom_gauge_set_unlocked(m->agent_read, guest, json_number_value(v));
		if (json_is_number(v = json_object_get(a, "write_bps")))
			prom_gauge_set_unlocked(m->agent_write, guest, json_number_value(v));
		if (json_is_number(v = json_object_get(a, "inflight")))
			prom_gauge_set_unlocked(m->agent_inflight, guest, json_number_value(v));
	}
	prom_gauge_set_unlocked(m->agents_connected, NULL, (double)connected);
}

void metrics_tick(struct migd_metrics *m)
{
	if (!m || now_ms() - m->refreshed_ms < REFRESH_MS)
		return;
	m->refreshed_ms = now_ms();
	struct db_counts c;
	struct host_tallies ht = { .n = 0 };
	int counts_ok = db_counts(m->db, &c) == 0;
	int hosts_ok = db_host_scan(m->db, tally_host, &ht) == 0; /* no per-guest look */
	json_t *agents = m->agents ? agent_link_list(m->agents) : NULL;
	/* one critical section: a scrape sees the whole refresh or none of it */
	prom_lock(m->reg);
	if (counts_ok) {
		prom_gauge_set_unlocked(m->queue_depth, NULL, c.queued);
		prom_gauge_set_unlocked(m->running, NULL, c.running);
		prom_gauge_set_unlocked(m->guests, NULL, c.guests);
		prom_gauge_set_unlocked(m->policies, NULL, c.policies);
	}
	if (hosts_ok) {
		prom_metric_clear_unlocked(m->hosts);
		for (size_t i = 0; i < ht.n; i++) {
			const char *labels[] = { ht.t[i].health, ht.t[i].enabled ? "yes" : "no" };
			prom_gauge_set_unlocked(m->hosts, labels, ht.t[i].n);
		}
	}
	if (agents)
		refresh_agents(m, agents);
	prom_unlock(m->reg);
	json_decref(agents);
}

/* ---- definitions ---------------------------------------------------------- */

#define COUNTER(name, help, labels) prom_metric_new(r, PROM_COUNTER, name, help, labels, NULL, 0)
#define GAUGE(name, help, labels) prom_metric_new(r, PROM_GAUGE, name, help, labels, NULL, 0)
#define HISTOGRAM(name, help, labels) \
	prom_metric_new(r, PROM_HISTOGRAM, name, help, labels, prom_buckets_phase_s, \
			prom_buckets_phase_n)

static int define_migrations(struct migd_metrics *m)
{
	struct prom_registry *r = m->reg;
	m->mig_queued = COUNTER("migd_migrations_queued_total",
		"Migrations queued, by policy (empty: asked by hand) and source backend",
		"policy,backend");
	m->mig_started = COUNTER("migd_migrations_started_total",
		"Migrations started (left the queue), by policy and source backend",
		"policy,backend");
	m->mig_ended = COUNTER("migd_migrations_total",
		"Migrations ended, by result (completed, failed, aborted), policy and backend",
		"result,policy,backend");
	m->mig_deferred = COUNTER("migd_migrations_deferred_total",
		"Times a migration went back to the queue (required quiesce missed)",
		"policy,backend");
	m->mig_total_s = HISTOGRAM("migd_migration_duration_seconds",
		"Total time of ended migrations, as the backend measured it",
		"result,policy,backend");
	m->mig_downtime_s = HISTOGRAM("migd_migration_downtime_seconds",
		"Guest pause at the switch-over of ended migrations", "result,policy,backend");
	m->mig_quiesce_s = HISTOGRAM("migd_migration_quiesce_seconds",
		"Time the guest's agent took to drain and hold sfs I/O", "result,policy,backend");
	m->mig_resume_s = HISTOGRAM("migd_migration_resume_seconds",
		"Time the guest's agent took to let sfs I/O go again", "result,policy,backend");
	m->mig_bytes = COUNTER("migd_migration_data_processed_bytes_total",
		"Bytes the backend sent for ended migrations", "policy,backend");
	m->mig_drained_bytes = COUNTER("migd_migration_drained_bytes_total",
		"sfs bytes drained (written out) by quiesces of ended migrations",
		"policy,backend");
	m->queue_depth = GAUGE("migd_migration_queue_depth",
		"Migrations queued and not started", NULL);
	m->running = GAUGE("migd_migrations_running", "Migrations started and not ended", NULL);
	m->prog_sent = GAUGE("migd_migration_progress_transferred_bytes",
		"Running migration of the guest: bytes sent so far (last progress event)", "guest");
	m->prog_left = GAUGE("migd_migration_progress_remaining_bytes",
		"Running migration of the guest: bytes still to send", "guest");
	m->prog_total = GAUGE("migd_migration_progress_memory_bytes",
		"Running migration of the guest: the guest's memory to move", "guest");
	m->prog_rounds = GAUGE("migd_migration_progress_rounds",
		"Running migration of the guest: pre-copy rounds so far", "guest");
	return m->mig_queued && m->mig_started && m->mig_ended && m->mig_deferred &&
	       m->mig_total_s && m->mig_downtime_s && m->mig_quiesce_s && m->mig_resume_s &&
	       m->mig_bytes && m->mig_drained_bytes && m->queue_depth && m->running &&
	       m->prog_sent && m->prog_left && m->prog_total && m->prog_rounds ? 0 : -ENOMEM;
}

static int define_checkpoints(struct migd_metrics *m)
{
	struct prom_registry *r = m->reg;
	m->ck_started = COUNTER("migd_checkpoints_started_total",
		"Checkpoints begun, by policy (empty: asked by hand) and backend",
		"policy,backend");
	m->ck_ended = COUNTER("migd_checkpoints_total",
		"Checkpoints ended, by result (completed, failed), policy and backend",
		"result,policy,backend");
	m->ck_total_s = HISTOGRAM("migd_checkpoint_duration_seconds",
		"Total time of ended checkpoints", "result,policy,backend");
	m->ck_pause_s = HISTOGRAM("migd_checkpoint_pause_seconds",
		"Time the job's guests were paused by a checkpoint (its downtime)",
		"result,policy,backend");
	m->ck_quiesce_s = HISTOGRAM("migd_checkpoint_quiesce_seconds",
		"Time to quiesce the job's sfs I/O for a checkpoint", "result,policy,backend");
	m->ck_resume_s = HISTOGRAM("migd_checkpoint_resume_seconds",
		"Time from the capture to the agents' resume", "result,policy,backend");
	m->ck_bytes = COUNTER("migd_checkpoint_data_bytes_total",
		"Bytes of guest images written by ended checkpoints", "policy,backend");
	m->restores = COUNTER("migd_restores_total",
		"Restores ended, by result (completed, failed)", "result");
	return m->ck_started && m->ck_ended && m->ck_total_s && m->ck_pause_s &&
	       m->ck_quiesce_s && m->ck_resume_s && m->ck_bytes && m->restores ? 0 : -ENOMEM;
}

static int define_cluster(struct migd_metrics *m)
{
	struct prom_registry *r = m->reg;
	m->hosts = GAUGE("migd_hosts", "Hosts, by health (ok, degraded) and enabled (yes, no)",
			 "health,enabled");
	m->guests = GAUGE("migd_guests", "Guests migd manages", NULL);
	m->policies = GAUGE("migd_policies", "Policies defined", NULL);
	m->firings = COUNTER("migd_policy_firings_total", "Times a policy fired, by policy and type",
			     "policy,type");
	m->agent_connects = COUNTER("migd_agent_connections_total",
		"Times a guest's migagent connected (or came back)", NULL);
	m->agent_gone = COUNTER("migd_agent_disconnections_total",
		"Times a guest's migagent went silent", NULL);
	m->agents_connected = GAUGE("migd_agents_connected", "migagents heard from recently",
				    NULL);
	m->agent_up = GAUGE("migd_agent_connected", "1 when the guest's migagent is connected",
			    "guest");
	m->agent_read = GAUGE("migd_agent_read_bytes_per_second",
		"sfs read rate in the guest, as its migagent last reported", "guest");
	m->agent_write = GAUGE("migd_agent_write_bytes_per_second",
		"sfs write rate in the guest, as its migagent last reported", "guest");
	m->agent_inflight = GAUGE("migd_agent_inflight_requests",
		"sfs requests in flight in the guest, as its migagent last reported", "guest");
	m->info = GAUGE("migd_build_info", "Always 1; the version of this migd", "version");
	if (!m->hosts || !m->guests || !m->policies || !m->firings || !m->agent_connects ||
	    !m->agent_gone || !m->agents_connected || !m->agent_up || !m->agent_read ||
	    !m->agent_write || !m->agent_inflight || !m->info)
		return -ENOMEM;
	prom_gauge_set(m->info, (const char *[]){ MIGD_VERSION }, 1);
	prom_counter_add(m->agent_connects, NULL, 0); /* shown from the start */
	prom_counter_add(m->agent_gone, NULL, 0);
	return 0;
}

int metrics_new(const char *listen, struct db *db, struct agent_link *agents,
		struct migd_metrics **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!listen || !*listen)
		return 0;
	struct migd_metrics *m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->db = db;
	m->agents = agents;
	int rc = -ENOMEM;
	if (!(m->reg = prom_registry_new(NULL)) || define_migrations(m) < 0 ||
	    define_checkpoints(m) < 0 || define_cluster(m) < 0) {
		snprintf(err, errlen, "metrics: out of memory");
		goto fail;
	}
	metrics_tick(m); /* the gauges are there for the first scrape */
	rc = httpd_start(listen, m->reg, &m->httpd, err, errlen);
	if (rc < 0)
		goto fail;
	log_info("metrics on http://%s/metrics", listen);
	*out = m;
	return 0;
fail:
	metrics_free(m);
	return rc;
}

void metrics_free(struct migd_metrics *m)
{
	if (!m)
		return;
	httpd_free(m->httpd); /* first: no scrape may run on a freed registry */
	prom_registry_free(m->reg);
	free(m);
}
