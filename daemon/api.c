/*
 * api: see api.h. The dispatch table at the bottom is the list of commands;
 * each handler checks its arguments first (so a refusal changes nothing),
 * then writes the change with its event in one transaction. A change the
 * backend must make too (a host, a guest) is asked of the backend inside
 * that transaction: when the backend refuses, nothing was written. The
 * executor is woken last.
 */
#include "api.h"
#include "api_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "calibrate.h"
#include "hv_sim.h"
#include "log.h"
#include "metrics.h"
#include "migd_proto.h"
#include "scheduler.h"
#include "util.h"

#ifndef MIGD_VERSION
#define MIGD_VERSION "0.0.0"
#endif

#define ERR_MAX 1024
#define MAX_REQUESTS_PER_SERVE 32
/* Larger requests make ZeroMQ drop the connection instead of buffering
 * them; up to this size they get an EMSGSIZE reply from migd_req_parse. */
#define MAX_FRAME_BYTES (4 * (int64_t)MIGD_MAX_MSG_BYTES)
#define PUB_HWM 100000

/* ---- argument helpers ------------------------------------------------- */

int arg_name(json_t *args, const char *key, int required, const char **out, char *err,
		    size_t errlen)
{
	int rc = migd_arg_str(args, key, required, out, err, errlen);
	if (rc == 0 && db_name_check(*out) < 0) {
		snprintf(err, errlen, "argument \"%s\" = \"%.80s\": expected 1 to %d letters, digits,"
			 " '.', '_' or '-', starting with a letter or digit", key, *out,
			 DB_NAME_MAX - 1);
		return -EINVAL;
	}
	return rc;
}

/* An optional or required integer in [0, max]; *out keeps its value when
 * the argument is absent. */
int arg_u64(json_t *args, const char *key, int required, uint64_t max, uint64_t *out,
		   char *err, size_t errlen)
{
	unsigned long long v;
	int rc = migd_arg_u64(args, key, required, &v, err, errlen);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	if (v > max) {
		snprintf(err, errlen, "argument \"%s\" = %llu: at most %" PRIu64, key, v, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int arg_priority(json_t *args, int *out, char *err, size_t errlen)
{
	const char *text;
	int rc = migd_arg_str(args, "priority", 0, &text, err, errlen);
	if (rc == -ENOENT)
		return 0;
	if (rc == 0 && db_priority_parse(text, out) < 0) {
		snprintf(err, errlen, "argument \"priority\" = \"%.40s\": expected manual, health or "
			 "periodic", text);
		rc = -EINVAL;
	}
	return rc;
}

/* Every member of args must be in allowed ("a,b,c"). */
static int check_args(const char *cmd, const char *allowed, json_t *args, char *err,
		      size_t errlen)
{
	const char *key;
	json_t *value;
	json_object_foreach(args, key, value) {
		size_t n = strlen(key);
		const char *p = allowed;
		int found = 0;
		while (p && *p && !found) {
			size_t len = strcspn(p, ",");
			found = len == n && strncmp(p, key, n) == 0;
			p += len + (p[len] == ',');
		}
		if (!found) {
			snprintf(err, errlen, "unknown argument \"%.60s\" for %s (it takes: %s)", key,
				 cmd, *allowed ? allowed : "none");
			return -EINVAL;
		}
	}
	return 0;
}

/* Run a handler's writes in a transaction: commit when rc is 0. */
static int finish_txn(struct api *api, int rc, char *err, size_t errlen)
{
	if (rc < 0) {
		db_rollback(api->db);
		return rc;
	}
	rc = db_commit(api->db);
	if (rc < 0)
		snprintf(err, errlen, "database error: the change was not made");
	return rc;
}

int db_error(int rc, char *err, size_t errlen)
{
	if (rc < 0 && !*err)
		snprintf(err, errlen, "database error");
	return rc;
}

static json_t *event_with(const char *type, struct api *api, const char *key, json_t *obj)
{
	json_t *ev = migd_event_new(type, exec_now_ns(api->ex));
	json_object_set_new(ev, key, obj);
	return ev;
}

/* ---- status ------------------------------------------------------------ */

static int cmd_status(struct api *api, json_t *args, json_t **result, char *err, size_t errlen)
{
	struct db_counts c;
	int rc = db_counts(api->db, &c);
	if (rc < 0)
		return db_error(rc, err, errlen);
	*result = json_pack("{s:s, s:i, s:f, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:s}", "version",
			    MIGD_VERSION, "api_version", MIGD_API_VERSION, "uptime_s",
			    (double)(now_ms() - api->start_ms) / 1e3, "hosts", (json_int_t)c.hosts,
			    "guests", (json_int_t)c.guests, "running", (json_int_t)c.running,
			    "queued", (json_int_t)c.queued, "policies",
			    (json_int_t)policy_count(api->pe), "listen", api->conf->listen, "events",
			    api->conf->events, "db", api->conf->db);
	json_object_set_new(*result, "clock_ns", json_integer(exec_now_ns(api->ex)));
	struct exec_plan_stats ps;
	exec_plan_stats(api->ex, &ps);
	json_object_set_new(*result, "planning",
			    json_pack("{s:I, s:f, s:f, s:I}", "rounds", (json_int_t)ps.rounds,
				      "plan_cpu_s", (double)ps.plan_cpu_us / 1e6, "start_cpu_s",
				      (double)ps.start_cpu_us / 1e6, "started",
				      (json_int_t)ps.started));
	if (exec_clock_is_sim(api->ex)) {
		json_object_set_new(*result, "sim_time_ns", json_integer(exec_now_ns(api->ex)));
		json_object_set_new(*result, "time_scale", json_real(api->conf->time_scale));
	}
	return 0;
}

/* ---- hosts --------------------------------------------------------------- */

int host_lookup(struct api *api, const char *name, struct db_host *h, char *err,
		       size_t errlen)
{
	int rc = db_host_get(api->db, name, h);
	if (rc == -ENOENT)
		snprintf(err, errlen, "host \"%s\": no such host", name);
	return db_error(rc, err, errlen);
}

/* The host named by args' "name": the name and the host's row. */
static int host_arg(struct api *api, json_t *args, const char **name, struct db_host *h,
		    char *err, size_t errlen)
{
	int rc = arg_name(args, "name", 1, name, err, errlen);
	return rc < 0 ? rc : host_lookup(api, *name, h, err, errlen);
}

/* A duration in seconds, > 0, into ns; absent leaves *out. */
static int arg_seconds(json_t *args, const char *key, int64_t *out, char *err, size_t errlen)
{
	double v;
	int rc = migd_arg_num(args, key, 0, &v, err, errlen);
	if (rc == -ENOENT)
		return 0;
	if (rc == 0 && !(v > 0 && v < 1e9)) {
		snprintf(err, errlen, "argument \"%s\" = %g: expected seconds above 0", key, v);
		rc = -EINVAL;
	}
	if (rc == 0)
		*out = (int64_t)(v * 1e9);
	return rc;
}

/* host.add's health hook and its interval and timeout. */
static int host_health_args(json_t *args, struct db_host *h, char *err, size_t errlen)
{
	const char *hook;
	int rc = migd_arg_str(args, "health_hook", 0, &hook, err, errlen);
	if (rc == 0 && (strlen(hook) >= DB_HOOK_MAX || strchr(hook, '\n'))) {
		snprintf(err, errlen, "argument \"health_hook\": one line of at most %d bytes",
			 DB_HOOK_MAX - 1);
		return -EINVAL;
	}
	if (rc == 0)
		snprintf(h->health_hook, sizeof(h->health_hook), "%s", hook);
	else if (rc != -ENOENT)
		return rc;
	if ((rc = arg_seconds(args, "health_interval_s", &h->health_interval_ns, err, errlen)) < 0)
		return rc;
	return arg_seconds(args, "health_timeout_s", &h->health_timeout_ns, err, errlen);
}

/* What host.add needs besides the name: URI, limits, memory (a sim URI's
 * mem= when not given). */
static int host_add_args(struct api *api, json_t *args, struct db_host *h, char *err,
			 size_t errlen)
{
	const char *uri;
	uint64_t out = 0, in = 0, mem = 0;
	int rc = migd_arg_str(args, "uri", 1, &uri, err, errlen);
	if (rc == 0 && strlen(uri) >= DB_URI_MAX) {
		snprintf(err, errlen, "argument \"uri\": longer than %d bytes", DB_URI_MAX - 1);
		rc = -EINVAL;
	}
	if (rc == 0 && !exec_backend_check(api->ex, uri, err, errlen))
		rc = -EPROTONOSUPPORT;
	if (rc == 0 && !(rc = arg_u64(args, "max_outbound", 0, 1000000, &out, err, errlen)) &&
	    !(rc = arg_u64(args, "max_inbound", 0, 1000000, &in, err, errlen)))
		rc = arg_u64(args, "memory_bytes", 0, SCHED_MAX_BYTES, &mem, err, errlen);
	if (rc < 0)
		return rc;
	struct hv_sim_uri sim;
	char ignored[256]; /* a bad sim URI: the sim's host_add says why */
	if (!mem && strncmp(uri, "sim:", 4) == 0 &&
	    hv_sim_parse_uri(uri, &sim, ignored, sizeof(ignored)) == 0)
		mem = sim.mem_bytes;
	if ((rc = host_health_args(args, h, err, errlen)) < 0)
		return rc;
	snprintf(h->uri, sizeof(h->uri), "%s", uri);
	h->max_outbound = (unsigned)out;
	h->max_inbound = (unsigned)in;
	h->memory_bytes = mem;
	return 0;
}

#define HOST_ADD_ARGS "name,uri,max_outbound,max_inbound,memory_bytes,health_hook," \
	"health_interval_s,health_timeout_s"

/* One host.add inside the caller's transaction; h is the new row. */
static int host_add_item(struct api *api, json_t *args, struct db_host *h, char *err,
			 size_t errlen)
{
	const char *name;
	*h = (struct db_host){ .enabled = 1 };
	int rc = arg_name(args, "name", 1, &name, err, errlen);
	if (rc == 0)
		rc = host_add_args(api, args, h, err, errlen);
	if (rc < 0)
		return rc;
	snprintf(h->name, sizeof(h->name), "%s", name);
	snprintf(h->health, sizeof(h->health), "ok");
	rc = db_host_add(api->db, h, exec_now_ns(api->ex));
	if (rc == -EEXIST)
		snprintf(err, errlen, "host \"%s\" already exists", name);
	if (rc == 0)
		rc = exec_host_add(api->ex, h->name, h->uri, err, errlen);
	if (rc == 0)
		rc = db_host_get(api->db, name, h);
	if (rc == 0)
		rc = db_event(api->db, event_with("host.added", api, "host", db_host_json(h)));
	if (rc == 0)
		log_info("host %s added (%s)", h->name, h->uri);
	return rc;
}

static int cmd_host_add(struct api *api, json_t *args, json_t **result, char *err,
			size_t errlen)
{
	struct db_host h;
	int rc = db_begin(api->db);
	if (rc < 0)
		return db_error(rc, err, errlen);
	rc = host_add_item(api, args, &h, err, errlen);
	if ((rc = finish_txn(api, rc, err, errlen)) < 0)
		return db_error(rc, err, errlen);
	exec_wake(api->ex);
	*result = db_host_json(&h);
	return 0;
}

static int append_host(void *arg, const struct db_host *h)
{
	return json_array_append_new(arg, db_host_json(h));
}

/* Paging of a list: {limit?, after?}. Without limit the whole list (as
 * before); with it one page in name order after the name after. A page
 * keeps every reply far below the message limit at any cluster size. */
#define PAGE_MAX 10000
static int page_args(json_t *args, unsigned *limit, const char **after, char *err,
		     size_t errlen)
{
	uint64_t n = 0;
	int rc = arg_u64(args, "limit", 0, PAGE_MAX, &n, err, errlen);
	if (rc < 0)
		return rc;
	if (json_object_get(args, "limit") && n == 0) {
		snprintf(err, errlen, "argument \"limit\" = 0: expected 1 to %d", PAGE_MAX);
		return -EINVAL;
	}
	*limit = (unsigned)n;
	*after = "";
	rc = arg_name(args, "after", 0, after, err, errlen);
	if (rc == 0 && !n) {
		snprintf(err, errlen, "argument \"after\" needs \"limit\"");
		return -EINVAL;
	}
	return rc == -ENOENT ? 0 : rc;
}

static int cmd_host_list(struct api *api, json_t *args, json_t **result, char *err,
			 size_t errlen)
{
	unsigned limit;
	const char *after;
	int rc = page_args(args, &limit, &after, err, errlen);
	if (rc < 0)
		return rc;
	*result = json_array();
	return db_error(limit ? db_host_page(api->db, after, limit, append_host, *result)
			      : db_host_list(api->db, append_host, *result), err, errlen);
}

static int append_guest_name(void *arg, const struct db_guest *g)
{
	return json_array_append_new(arg, json_string(g->name));
}

static int cmd_host_show(struct api *api, json_t *args, json_t **result, char *err,
			 size_t errlen)
{
	struct db_host h;
	const char *name;
	int rc = host_arg(api, args, &name, &h, err, errlen);
	if (rc < 0)
		return rc;
	json_t *names = json_array();
	*result = db_host_json(&h);
	json_object_set_new(*result, "guests", names);
	json_object_set_new(*result, "n_guests", json_integer(h.n_guests));
	return db_error(db_guest_list(api->db, name, NULL, append_guest_name, names), err, errlen);
}

struct host_use {
	const char *host;
	int64_t id;
};

static int find_host_use(void *arg, const struct db_migration *m)
{
	struct host_use *u = arg;
	if (strcmp(m->src, u->host) == 0 || strcmp(m->dst, u->host) == 0) {
		u->id = m->id;
		return 1;
	}
	return 0;
}

static int cmd_host_rm(struct api *api, json_t *args, json_t **result, char *err,
		       size_t errlen)
{
	struct db_host h;
	const char *name;
	int rc = host_arg(api, args, &name, &h, err, errlen);
	if (rc < 0)
		return rc;
	if (h.n_guests) {
		snprintf(err, errlen, "host %s still runs %u guest%s: evacuate it first", name,
			 h.n_guests, h.n_guests == 1 ? "" : "s");
		return -EBUSY;
	}
	struct host_use use = { name, 0 };
	struct db_mig_filter active = { .states = DB_MIG_ACTIVE };
	if (db_mig_list(api->db, &active, find_host_use, &use) < 0 || use.id) {
		snprintf(err, errlen, "host %s is part of migration %" PRId64 "; wait or abort it",
			 name, use.id);
		return -EBUSY;
	}
	if ((rc = db_begin(api->db)) < 0)
		return db_error(rc, err, errlen);
	rc = db_host_remove(api->db, name);
	if (rc == 0)
		rc = exec_host_remove(api->ex, name, h.uri, err, errlen);
	if (rc == 0)
		rc = db_event(api->db, event_with("host.removed", api, "host", db_host_json(&h)));
	if ((rc = finish_txn(api, rc, err, errlen)) < 0)
		return db_error(rc, err, errlen);
	log_info("host %s removed", name);
	exec_wake(api->ex);
	*result = json_object();
	return 0;
}

static int host_recovered(struct api *api, struct db_host *h)
{
	char message[DB_TEXT_MAX + DB_NAME_MAX + 64];
	int rc = db_host_set_health(api->db, h->name, "ok", "", 0);
	snprintf(message, sizeof(message), "host %s back in service: enabled by hand (was: %s)",
		 h->name, h->health_reason);
	snprintf(h->health, sizeof(h->health), "ok");
	h->health_reason[0] = '\0';
	h->health_since_ns = 0;
	if (rc == 0) {
		json_t *ev = migd_event_new("host.recovered", exec_now_ns(api->ex));
		json_object_set_new(ev, "host", json_string(h->name));
		json_object_set_new(ev, "reason", json_string("enabled by hand"));
		json_object_set_new(ev, "message", json_string(message));
		json_object_set_new(ev, "health", json_string("ok"));
		rc = db_event(api->db, ev);
	}
	if (rc == 0)
		log_info("%s", message);
	return rc;
}

static int set_enabled(struct api *api, json_t *args, int enabled, json_t **result, char *err,
		       size_t errlen)
{
	struct db_host h;
	const char *name;
	int rc = host_arg(api, args, &name, &h, err, errlen);
	if (rc < 0)
		return rc;
	int recovered = enabled && strcmp(h.health, "ok") != 0;
	if ((rc = db_begin(api->db)) < 0)
		return db_error(rc, err, errlen);
	rc = db_host_set_enabled(api->db, name, enabled);
	h.enabled = enabled;
	if (rc == 0 && recovered) /* enabling by hand also ends a degraded state */
		rc = host_recovered(api, &h);
	if (rc == 0)
		rc = db_event(api->db, event_with(enabled ? "host.enabled" : "host.disabled", api,
						  "host", db_host_json(&h)));
	if ((rc = finish_txn(api, rc, err, errlen)) < 0)
		return db_error(rc, err, errlen);
	if (recovered)
		health_host_reset(api->hm, name);
	exec_wake(api->ex);
	*result = db_host_json(&h);
	return 0;
}

static int cmd_host_enable(struct api *api, json_t *args, json_t **result, char *err,
			   size_t errlen)
{
	return set_enabled(api, args, 1, result, err, errlen);
}

#define DISABLE_NAMES_MAX 10000

/* host.disable of many hosts ("names"), one transaction: what an
 * evacuation of more hosts than one request takes does first. */
static int disable_many(struct api *api, json_t *names, json_t **result, char *err,
			size_t errlen)
{
	size_t i;
	json_t *v, *out = json_array();
	int rc = db_begin(api->db);
	json_array_foreach(names, i, v) {
		struct db_host h;
		if (rc < 0)
			break;
		if (!json_is_string(v)) {
			snprintf(err, errlen, "argument \"names\": item %zu is not a host name", i);
			rc = -EINVAL;
		} else if ((rc = host_lookup(api, json_string_value(v), &h, err, errlen)) == 0 &&
			   h.enabled) {
			h.enabled = 0;
			rc = db_host_set_enabled(api->db, h.name, 0);
			if (rc == 0)
				rc = db_event(api->db, event_with("host.disabled", api, "host",
								  db_host_json(&h)));
		}
		if (rc == 0)
			json_array_append_new(out, db_host_json(&h));
	}
	if ((rc = finish_txn(api, rc, err, errlen)) < 0) {
		json_decref(out);
		return db_error(rc, err, errlen);
	}
	exec_wake(api->ex);
	*result = out;
	return 0;
}

static int cmd_host_disable(struct api *api, json_t *args, json_t **result, char *err,
			    size_t errlen)
{
	json_t *names = json_object_get(args, "names");
	if (!names)
		return set_enabled(api, args, 0, result, err, errlen);
	if (json_object_get(args, "name") || !json_is_array(names) ||
	    json_array_size(names) == 0 || json_array_size(names) > DISABLE_NAMES_MAX) {
		snprintf(err, errlen, "argument \"names\": expected an array of 1 to %d host names"
			 " (and no \"name\")", DISABLE_NAMES_MAX);
		return -EINVAL;
	}
	return disable_many(api, names, result, err, errlen);
}

/* ---- guests --------------------------------------------------------------- */

static int guest_add_args(json_t *args, struct db_guest *g, char *err, size_t errlen)
{
	const char *name, *host, *job = NULL;
	uint64_t rank = UINT64_MAX;
	int rc;
	if ((rc = arg_name(args, "name", 1, &name, err, errlen)) < 0 ||
	    (rc = arg_name(args, "host", 1, &host, err, errlen)) < 0 ||
	    (rc = arg_u64(args, "memory_bytes", 1, SCHED_MAX_BYTES, &g->memory_bytes, err,
			  errlen)) < 0 ||
	    (rc = arg_u64(args, "dirty_rate_bps", 0, SCHED_MAX_BYTES, &g->dirty_rate_bps, err,
			  errlen)) < 0 ||
	    (rc = arg_u64(args, "rank", 0, INT_MAX, &rank, err, errlen)) < 0)
		return rc;
	if ((rc = arg_name(args, "job", 0, &job, err, errlen)) < 0 && rc != -ENOENT)
		return rc;
	if (g->memory_bytes == 0) {
		snprintf(err, errlen, "argument \"memory_bytes\" = 0: a guest needs memory");
		return -EINVAL;
	}
	if (rank != UINT64_MAX && !job) {
		snprintf(err, errlen, "argument \"rank\" = %" PRIu64 ": a rank needs a \"job\"", rank);
		return -EINVAL;
	}
	snprintf(g->name, sizeof(g->name), "%s", name);
	snprintf(g->host, sizeof(g->host), "%s", host);
	snprintf(g->job, sizeof(g->job), "%s", job ? job : "");
	g->rank = rank == UINT64_MAX ? -1 : (int)rank;
	return 0;
}

/* Where the guest goes must exist and have room (when it has a size). */
static int guest_add_check(struct api *api, const struct db_guest *g, struct db_host *h,
			   char *err, size_t errlen)
{
	struct db_guest other;
	char have[32], want[32];
	int rc = host_lookup(api, g->host, h, err, errlen);
	if (rc < 0)
		return rc;
	if (db_guest_get(api->db, g->name, &other) == 0) {
		snprintf(err, errlen, "guest \"%s\" already exists (on %s)", g->name, other.host);
		return -EEXIST;
	}
	if (h->memory_bytes && h->memory_used_bytes + g->memory_bytes > h->memory_bytes) {
		snprintf(err, errlen, "host %s has %s free, guest %s needs %s", h->name,
			 format_size(h->memory_bytes - h->memory_used_bytes, have, sizeof(have)),
			 g->name, format_size(g->memory_bytes, want, sizeof(want)));
		return -ENOSPC;
	}
	return 0;
}

#define GUEST_ADD_ARGS "name,host,memory_bytes,dirty_rate_bps,job,rank"

/* One guest.add inside the caller's transaction; g is the new row. */
static int guest_add_item(struct api *api, json_t *args, struct db_guest *g, char *err,
			  size_t errlen)
{
	struct db_host h;
	*g = (struct db_guest){ .rank = -1 };
	int rc = guest_add_args(args, g, err, errlen);
	if (rc == 0)
		rc = guest_add_check(api, g, &h, err, errlen);
	if (rc < 0)
		return rc;
	rc = db_guest_add(api->db, g, exec_now_ns(api->ex));
	if (rc == -EEXIST)
		snprintf(err, errlen, "job %s already has a rank %d", g->job, g->rank);
	/* the row exists (uncommitted) before the backend creates the guest;
	 * a crash in between is covered by the restart adopting backend guests */
	if (rc == 0)
		rc = exec_guest_create(api->ex, h.uri, g, err, errlen);
	if (rc == 0)
		rc = db_guest_get(api->db, g->name, g);
	if (rc == 0)
		rc = db_event(api->db, event_with("guest.added", api, "guest", db_guest_json(g)));
	if (rc == 0)
		log_info("guest %s added on %s", g->name, g->host);
	return rc;
}

static int cmd_guest_add(struct api *api, json_t *args, json_t **result, char *err,
			 size_t errlen)
{
	struct db_guest g;
	int rc = db_begin(api->db);
	if (rc < 0)
		return db_error(rc, err, errlen);
	rc = guest_add_item(api, args, &g, err, errlen);
	if ((rc = finish_txn(api, rc, err, errlen)) < 0)
		return db_error(rc, err, errlen);
	exec_wake(api->ex);
	*result = db_guest_json(&g);
	return 0;
}

/* ---- many at once ------------------------------------------------------------ */

/* host.add_many and guest.add_many: {items: [args of the single add]}, all
 * in one transaction (one commit, one fsync, however many items), each
 * item in a savepoint of its own: an item that fails is left out and
 * reported by its index, name and error; the others are added. -> {added,
 * failed: [{index, name, error, code}]} */
#define ADD_MANY_MAX 10000
static int add_many(struct api *api, json_t *args, const char *cmd, const char *item_args,
		    int (*item)(struct api *, json_t *, void *, char *, size_t), void *row,
		    json_t **result, char *err, size_t errlen)
{
	json_t *items = json_object_get(args, "items"), *failed = json_array(), *it;
	size_t i, added = 0, mark;
	if (!json_is_array(items) || json_array_size(items) > ADD_MANY_MAX) {
		snprintf(err, errlen, "argument \"items\": expected an array of at most %d objects",
			 ADD_MANY_MAX);
		json_decref(failed);
		return -EINVAL;
	}
	int rc = db_begin(api->db);
	exec_batch(api->ex, 1); /* the backends' own records: one commit too */
	json_array_foreach(items, i, it) {
		if (rc < 0)
			break;
		char why[ERR_MAX] = "";
		int item_rc = json_is_object(it) ? check_args(cmd, item_args, it, why, sizeof(why))
						 : (snprintf(why, sizeof(why), "not an object"), -EINVAL);
		if ((rc = db_savepoint(api->db, &mark)) < 0)
			break;
		if (item_rc == 0)
			item_rc = item(api, it, row, why, sizeof(why));
		rc = db_savepoint_end(api->db, mark, item_rc);
		if (item_rc == 0) {
			added++;
			continue;
		}
		const char *name = json_string_value(json_object_get(it, "name"));
		json_array_append_new(failed, json_pack("{s:I, s:s?, s:s, s:s}", "index", (json_int_t)i,
							"name", name, "error",
							*why ? why : strerror(-item_rc), "code",
							migd_errno_name(-item_rc)));
	}
	exec_batch(api->ex, 0);
	if ((rc = finish_txn(api, rc, err, errlen)) < 0) {
		json_decref(failed);
		return db_error(rc, err, errlen);
	}
	exec_wake(api->ex);
	*result = json_pack("{s:I, s:o}", "added", (json_int_t)added, "failed", failed);
	return 0;
}

static int host_item(struct api *api, json_t *args, void *row, char *err, size_t errlen)
{
	return host_add_item(api, args, row, err, errlen);
}

static int guest_item(struct api *api, json_t *args, void *row, char *err, size_t errlen)
{
	return guest_add_item(api, args, row, err, errlen);
}

static int cmd_host_add_many(struct api *api, json_t *args, json_t **result, char *err,
			     size_t errlen)
{
	struct db_host h;
	return add_many(api, args, "host.add", HOST_ADD_ARGS, host_item, &h, result, err, errlen);
}

static int cmd_guest_add_many(struct api *api, json_t *args, json_t **result, char *err,
			      size_t errlen)
{
	struct db_guest g;
	return add_many(api, args, "guest.add", GUEST_ADD_ARGS, guest_item, &g, result, err,
			errlen);
}

/* A guest as an API object, with what its agent last said. */
static json_t *guest_json(struct api *api, const struct db_guest *g)
{
	json_t *o = db_guest_json(g);
	json_object_set_new(o, "agent", agent_link_json(exec_agents(api->ex), g->name));
	return o;
}

struct guest_list {
	struct api *api;
	json_t *arr;
};

static int append_guest(void *arg, const struct db_guest *g)
{
	struct guest_list *l = arg;
	return json_array_append_new(l->arr, guest_json(l->api, g));
}

static int cmd_agent_list(struct api *api, json_t *args, json_t **result, char *err,
			  size_t errlen)
{
	*result = agent_link_list(exec_agents(api->ex));
	return 0;
}

static int cmd_guest_list(struct api *api, json_t *args, json_t **result, char *err,
			  size_t errlen)
{
	const char *host = NULL, *job = NULL;
	struct db_host h;
	int rc;
	if ((rc = arg_name(args, "host", 0, &host, err, errlen)) < 0 && rc != -ENOENT)
		return rc;
	if ((rc = arg_name(args, "job", 0, &job, err, errlen)) < 0 && rc != -ENOENT)
		return rc;
	if (host && (rc = host_lookup(api, host, &h, err, errlen)) < 0)
		return rc;
	unsigned limit;
	const char *after;
	if ((rc = page_args(args, &limit, &after, err, errlen)) < 0)
		return rc;
	struct guest_list l = { api, json_array() };
	*result = l.arr;
	return db_error(limit ? db_guest_page(api->db, host, job, after, limit, append_guest, &l)
			      : db_guest_list(api->db, host, job, append_guest, &l), err, errlen);
}

static int cmd_guest_show(struct api *api, json_t *args, json_t **result, char *err,
			  size_t errlen)
{
	struct db_guest g;
	const char *name;
	int rc = arg_name(args, "name", 1, &name, err, errlen);
	if (rc < 0)
		return rc;
	rc = db_guest_get(api->db, name, &g);
	if (rc == -ENOENT)
		snprintf(err, errlen, "guest \"%s\": no such guest", name);
	if (rc < 0)
		return db_error(rc, err, errlen);
	*result = guest_json(api, &g);
	/* the backend's view: where the hypervisor says it runs, its address */
	struct hv_guest_info info;
	char berr[256];
	if (exec_guest_info(api->ex, &g, &info, berr, sizeof(berr)) == 0)
		json_object_set_new(*result, "backend",
				    json_pack("{s:s, s:b, s:s}", "host", info.host, "running",
					      info.running, "address", info.addr));
	else
		json_object_set_new(*result, "backend", json_pack("{s:s}", "error", berr));
	return 0;
}

/* ---- migrations ------------------------------------------------------------ */

static int cmd_migrate(struct api *api, json_t *args, json_t **result, char *err,
		       size_t errlen)
{
	struct exec_request rq = { .priority = SCHED_PRIO_MANUAL, .reason = "requested" };
	struct db_migration m;
	struct db_mig_knobs knobs;
	int rc;
	if ((rc = arg_name(args, "guest", 1, &rq.guest, err, errlen)) < 0 ||
	    ((rc = arg_name(args, "to", 0, &rq.to, err, errlen)) < 0 && rc != -ENOENT) ||
	    (rc = arg_priority(args, &rq.priority, err, errlen)) < 0 ||
	    (rc = policy_knobs_parse(args, exec_knobs_default(api->ex), &knobs, NULL, err,
				     errlen)) < 0)
		return rc;
	rq.knobs = &knobs;
	if ((rc = db_begin(api->db)) < 0)
		return db_error(rc, err, errlen);
	rc = exec_enqueue(api->ex, &rq, &m, err, errlen);
	if ((rc = finish_txn(api, rc, err, errlen)) < 0)
		return db_error(rc, err, errlen);
	*result = db_mig_json(&m);
	return 0;
}

static int collect_guest(void *arg, const struct db_guest *g)
{
	return json_array_append_new(arg, json_pack("{s:s, s:I}", "name", g->name, "migration",
						    (json_int_t)g->migration_id));
}

/* Queue every guest of h (in the open transaction); a guest already in a
 * migration keeps it, and that migration is listed too. */
static int evacuate_guests(struct api *api, const struct db_host *h, int priority,
			   json_t *guests, json_t *out, char *err, size_t errlen)
{
	char reason[DB_TEXT_MAX];
	size_t i;
	json_t *g;
	snprintf(reason, sizeof(reason), "evacuate %s", h->name);
	json_array_foreach(guests, i, g) {
		struct db_migration m;
		int64_t busy = json_integer_value(json_object_get(g, "migration"));
		int rc;
		if (busy)
			rc = db_mig_get(api->db, busy, &m);
		else {
			struct exec_request rq = {
				.guest = json_string_value(json_object_get(g, "name")),
				.priority = priority, .reason = reason,
			};
			rc = exec_enqueue(api->ex, &rq, &m, err, errlen);
		}
		if (rc < 0)
			return rc;
		json_array_append_new(out, db_mig_json(&m));
	}
	return 0;
}

/* Hosts one evacuate request takes: its reply holds every migration
 * queued (about 750 bytes each) under the 4 MiB message limit, so migctl
 * sends at most 4,000 guests' hosts per request, all disabled first. */
#define EVACUATE_HOSTS_MAX 1000

/* The hosts of an evacuation: args' "host" (one name) or "hosts" (an array
 * of 1 to EVACUATE_HOSTS_MAX names, each once), each looked up; *out is
 * malloc'ed for the caller to free. */
static int evacuate_hosts(struct api *api, json_t *args, struct db_host **out, size_t *n,
			  char *err, size_t errlen)
{
	json_t *list = json_object_get(args, "hosts"), *v;
	const char *name;
	size_t i;
	*out = NULL;
	*n = 0;
	if (!list) {
		int rc = arg_name(args, "host", 1, &name, err, errlen);
		if (rc < 0 || !(*out = calloc(1, sizeof(**out))))
			return rc < 0 ? rc : -ENOMEM;
		*n = 1;
		return host_lookup(api, name, *out, err, errlen);
	}
	if (json_object_get(args, "host") || !json_is_array(list) || json_array_size(list) == 0 ||
	    json_array_size(list) > EVACUATE_HOSTS_MAX) {
		snprintf(err, errlen, "argument \"hosts\": expected an array of 1 to %d host names"
			 " (and no \"host\")", EVACUATE_HOSTS_MAX);
		return -EINVAL;
	}
	if (!(*out = calloc(json_array_size(list), sizeof(**out))))
		return -ENOMEM;
	json_array_foreach(list, i, v) {
		name = json_string_value(v);
		if (!name) {
			snprintf(err, errlen, "argument \"hosts\": item %zu is not a host name", i);
			return -EINVAL;
		}
		int rc = host_lookup(api, name, &(*out)[i], err, errlen);
		if (rc < 0)
			return rc;
		for (size_t j = 0; j < i; j++)
			if (strcmp((*out)[j].name, name) == 0) {
				snprintf(err, errlen, "argument \"hosts\": host %s given twice", name);
				return -EINVAL;
			}
		*n = i + 1;
	}
	return 0;
}

/* One evacuation of one or many hosts in one transaction: every host is
 * disabled before any guest is queued (a guest of the first must not be
 * planned onto the next), then the guests of each are queued. */
static int evacuate_txn(struct api *api, struct db_host *hosts, size_t n, int priority,
			json_t *out, char *err, size_t errlen)
{
	int rc = db_begin(api->db);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		/* drained hosts take no guests, or the planner could send some back */
		if (hosts[i].enabled && (rc = db_host_set_enabled(api->db, hosts[i].name, 0)) == 0) {
			hosts[i].enabled = 0;
			rc = db_event(api->db, event_with("host.disabled", api, "host",
							  db_host_json(&hosts[i])));
		}
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		json_t *guests = json_array();
		rc = db_error(db_guest_list(api->db, hosts[i].name, NULL, collect_guest, guests),
			      err, errlen);
		if (rc == 0)
			rc = evacuate_guests(api, &hosts[i], priority, guests, out, err, errlen);
		json_decref(guests);
	}
	return finish_txn(api, rc, err, errlen); /* a failed begin: nothing to roll back, harmless */
}

static int cmd_evacuate(struct api *api, json_t *args, json_t **result, char *err,
			size_t errlen)
{
	struct db_host *hosts = NULL;
	size_t n = 0;
	int priority = SCHED_PRIO_MANUAL;
	int rc = arg_priority(args, &priority, err, errlen);
	if (rc == 0)
		rc = evacuate_hosts(api, args, &hosts, &n, err, errlen);
	if (rc < 0) {
		free(hosts);
		return rc;
	}
	json_t *out = json_array();
	uint64_t hosts_gen, guests_gen;
	db_generations(api->db, &hosts_gen, &guests_gen);
	rc = evacuate_txn(api, hosts, n, priority, out, err, errlen);
	if (rc == 0 && n == 1)
		exec_host_changed(api->ex, hosts_gen, &hosts[0]);
	/* several: the hosts' generation moved by more than one, the cache reads them again */
	if (rc < 0) {
		json_decref(out);
		free(hosts);
		return db_error(rc, err, errlen);
	}
	if (n == 1)
		log_info("evacuating %s: %zu guest%s", hosts[0].name, json_array_size(out),
			 json_array_size(out) == 1 ? "" : "s");
	else
		log_info("evacuating %zu hosts, %s to %s: %zu guest%s", n, hosts[0].name,
			 hosts[n - 1].name, json_array_size(out), json_array_size(out) == 1 ? "" : "s");
	free(hosts);
	*result = out;
	return 0;
}

static int arg_id(json_t *args, int64_t *id, char *err, size_t errlen)
{
	uint64_t v = 0;
	int rc = arg_u64(args, "id", 1, INT64_MAX, &v, err, errlen);
	*id = (int64_t)v;
	return rc;
}

static int cmd_abort(struct api *api, json_t *args, json_t **result, char *err, size_t errlen)
{
	struct db_migration m;
	int64_t id;
	int rc = arg_id(args, &id, err, errlen);
	if (rc == 0)
		rc = exec_abort(api->ex, id, &m, err, errlen);
	if (rc < 0)
		return db_error(rc, err, errlen);
	log_info("migration %" PRId64 " of %s: abort %s", id, m.guest,
		 m.state == DB_MIG_ABORTED ? "done" : "requested");
	*result = db_mig_json(&m);
	return 0;
}

static int cmd_migration_show(struct api *api, json_t *args, json_t **result, char *err,
			      size_t errlen)
{
	struct db_migration m;
	int64_t id;
	int rc = arg_id(args, &id, err, errlen);
	if (rc < 0)
		return rc;
	rc = db_mig_get(api->db, id, &m);
	if (rc == -ENOENT)
		snprintf(err, errlen, "migration %" PRId64 ": no such migration", id);
	if (rc < 0)
		return db_error(rc, err, errlen);
	*result = db_mig_json(&m);
	return 0;
}

static int append_mig(void *arg, const struct db_migration *m)
{
	return json_array_append_new(arg, db_mig_json(m));
}

/* A page of migrations at most (history, queue): a reply of 10,000 is
 * about 5 MB, over the message limit; 5,000 leaves room for long reasons. */
#define HISTORY_PAGE_MAX 5000

/* queue: every queued and running migration in queue order; running
 * (true) keeps the running ones only; with after (a migration's id, 0 the
 * start) or limit, a page of limit (default 1,000, at most 5,000) after it,
 * so that 10,000 queued migrations can be read (a 5 MB reply whole). */
static int cmd_queue(struct api *api, json_t *args, json_t **result, char *err, size_t errlen)
{
	struct db_mig_filter f = { .states = DB_MIG_ACTIVE, .order = DB_ORDER_QUEUE };
	uint64_t after = 0, limit = 0;
	json_t *running = json_object_get(args, "running");
	int rc = arg_u64(args, "after", 0, INT64_MAX, &after, err, errlen);
	if (rc == 0)
		rc = arg_u64(args, "limit", 0, HISTORY_PAGE_MAX, &limit, err, errlen);
	if (rc == 0 && running && !json_is_boolean(running)) {
		snprintf(err, errlen, "argument \"running\": expected true or false");
		rc = -EINVAL;
	}
	if (rc < 0)
		return rc;
	if (json_is_true(running))
		f.states = DB_MIG_RUNNING;
	if (json_object_get(args, "after") || limit) {
		f.page = 1;
		f.after_id = (int64_t)after;
		f.limit = limit ? (unsigned)limit : 1000;
	}
	*result = json_array();
	return db_error(db_mig_list(api->db, &f, append_mig, *result), err, errlen);
}

/* since_ns and policy, shared by history and report. */
int finished_filter(json_t *args, struct db_mig_filter *f, char *err, size_t errlen)
{
	uint64_t since = 0;
	const char *policy = NULL;
	int rc = arg_u64(args, "since_ns", 0, INT64_MAX, &since, err, errlen);
	if (rc == 0 && (rc = migd_arg_str(args, "policy", 0, &policy, err, errlen)) == -ENOENT)
		rc = 0;
	if (rc < 0)
		return rc;
	*f = (struct db_mig_filter){ .states = DB_MIG_FINISHED, .since_ns = (int64_t)since,
				     .policy = policy, .order = DB_ORDER_FINISHED };
	return 0;
}

/* history: without after, every finished migration (or the newest limit);
 * with after (a migration's id, 0 for the start), the next page of limit
 * (default 1,000) in the order they finished, so that any history can be
 * read whatever its size. */
static int cmd_history(struct api *api, json_t *args, json_t **result, char *err,
		       size_t errlen)
{
	struct db_mig_filter f;
	struct db_migration cursor;
	uint64_t limit = 0, after = 0;
	int rc = finished_filter(args, &f, err, errlen);
	if (rc == 0)
		rc = arg_u64(args, "limit", 0, UINT_MAX, &limit, err, errlen);
	if (rc == 0 && json_object_get(args, "after")) {
		rc = arg_u64(args, "after", 0, INT64_MAX, &after, err, errlen);
		f.page = 1;
		if (rc == 0 && limit > HISTORY_PAGE_MAX) {
			snprintf(err, errlen, "argument \"limit\" = %" PRIu64 ": a page is 1 to %d "
				 "migrations", limit, HISTORY_PAGE_MAX);
			rc = -EINVAL;
		}
		if (rc == 0 && after &&
		    (db_mig_get(api->db, (int64_t)after, &cursor) < 0 || !cursor.finished_ns)) {
			snprintf(err, errlen, "argument \"after\" = %" PRIu64 ": no finished "
				 "migration has that id", after);
			rc = -ENOENT;
		}
		if (!limit)
			limit = 1000;
	}
	if (rc < 0)
		return rc;
	f.limit = (unsigned)limit;
	f.after_id = (int64_t)after;
	*result = json_array();
	return db_error(db_mig_list(api->db, &f, append_mig, *result), err, errlen);
}

/* ---- the event log -------------------------------------------------------- */

#define EVENT_PAGE_MAX 10000

static int append_event(void *arg, json_t *ev)
{
	return json_array_append(arg, ev);
}

/* event.list: the stored events after a cursor (an event's id), a page of
 * limit (default 1,000) at a time, oldest first; type keeps those whose
 * type starts with it ("migration.", "host.disabled"). */
static int cmd_event_list(struct api *api, json_t *args, json_t **result, char *err,
			  size_t errlen)
{
	uint64_t after = 0, limit = 1000;
	const char *type = NULL;
	int rc = arg_u64(args, "after", 0, INT64_MAX, &after, err, errlen);
	if (rc == 0)
		rc = arg_u64(args, "limit", 0, EVENT_PAGE_MAX, &limit, err, errlen);
	if (rc == 0 && limit == 0) {
		snprintf(err, errlen, "argument \"limit\" = 0: a page is 1 to %d events",
			 EVENT_PAGE_MAX);
		rc = -EINVAL;
	}
	if (rc == 0 && (rc = migd_arg_str(args, "type", 0, &type, err, errlen)) == -ENOENT)
		rc = 0;
	if (rc < 0)
		return rc;
	*result = json_array();
	return db_error(db_event_page(api->db, (int64_t)after, (unsigned)limit, type,
				      append_event, *result), err, errlen);
}

/* ---- policies ------------------------------------------------------------- */

static int cmd_policy_add(struct api *api, json_t *args, json_t **result, char *err,
			  size_t errlen)
{
	return policy_add(api->pe, args, result, err, errlen);
}

static int cmd_policy_list(struct api *api, json_t *args, json_t **result, char *err,
			   size_t errlen)
{
	*result = policy_list(api->pe);
	return 0;
}

typedef int (*policy_fn)(struct policy_engine *pe, const char *name, json_t **result,
			 char *err, size_t errlen);

static int by_name(struct api *api, json_t *args, policy_fn fn, json_t **result, char *err,
		   size_t errlen)
{
	const char *name;
	int rc = arg_name(args, "name", 1, &name, err, errlen);
	return rc < 0 ? rc : fn(api->pe, name, result, err, errlen);
}

static int cmd_policy_show(struct api *api, json_t *args, json_t **result, char *err,
			   size_t errlen)
{
	return by_name(api, args, policy_show, result, err, errlen);
}

static int cmd_policy_pause(struct api *api, json_t *args, json_t **result, char *err,
			    size_t errlen)
{
	return by_name(api, args, policy_pause, result, err, errlen);
}

static int cmd_policy_resume(struct api *api, json_t *args, json_t **result, char *err,
			     size_t errlen)
{
	return by_name(api, args, policy_resume, result, err, errlen);
}

static int cmd_policy_rm(struct api *api, json_t *args, json_t **result, char *err,
			 size_t errlen)
{
	return by_name(api, args, policy_remove, result, err, errlen);
}

/* ---- health --------------------------------------------------------------- */

static int cmd_health_report(struct api *api, json_t *args, json_t **result, char *err,
			     size_t errlen)
{
	int rc = health_report(api->hm, args, result, err, errlen);
	if (rc == 0)
		exec_wake(api->ex);
	return rc;
}

static int cmd_health_rule_add(struct api *api, json_t *args, json_t **result, char *err,
			       size_t errlen)
{
	return health_rule_add(api->hm, args, result, err, errlen);
}

static int cmd_health_rule_list(struct api *api, json_t *args, json_t **result, char *err,
				size_t errlen)
{
	return health_rule_list(api->hm, result, err, errlen);
}

static int cmd_health_rule_rm(struct api *api, json_t *args, json_t **result, char *err,
			      size_t errlen)
{
	const char *name;
	int rc = arg_name(args, "name", 1, &name, err, errlen);
	return rc < 0 ? rc : health_rule_rm(api->hm, name, result, err, errlen);
}

static int cmd_health_show(struct api *api, json_t *args, json_t **result, char *err,
			   size_t errlen)
{
	const char *host = NULL;
	int rc = arg_name(args, "host", 0, &host, err, errlen);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	return health_show(api->hm, host, result, err, errlen);
}

/* ---- dispatch ---------------------------------------------------------------- */

static const struct api_cmd commands[] = {
	{ "status", cmd_status, "" },
	{ "host.add", cmd_host_add, HOST_ADD_ARGS },
	{ "host.add_many", cmd_host_add_many, "items" },
	{ "host.list", cmd_host_list, "limit,after" },
	{ "host.show", cmd_host_show, "name" },
	{ "host.rm", cmd_host_rm, "name" },
	{ "host.enable", cmd_host_enable, "name" },
	{ "host.disable", cmd_host_disable, "name,names" },
	{ "guest.add", cmd_guest_add, GUEST_ADD_ARGS },
	{ "guest.add_many", cmd_guest_add_many, "items" },
	{ "guest.list", cmd_guest_list, "host,job,limit,after" },
	{ "guest.show", cmd_guest_show, "name" },
	{ "agent.list", cmd_agent_list, "" },
	{ "migrate", cmd_migrate, "guest,to,priority,quiesce,quiesce_deadline,quiesce_deadline_s,"
	  "on_quiesce_miss,io_lull,io_lull_bps,io_lull_wait,io_lull_wait_s" },
	{ "evacuate", cmd_evacuate, "host,hosts,priority" },
	{ "abort", cmd_abort, "id" },
	{ "migration.show", cmd_migration_show, "id" },
	{ "queue", cmd_queue, "running,after,limit" },
	{ "history", cmd_history, "since_ns,limit,policy,after" },
	{ "event.list", cmd_event_list, "after,limit,type" },
	{ "report", cmd_report, "since_ns,policy" },
	{ "calibrate", cmd_calibrate, "since_ns,policy" },
	{ "predict", cmd_predict, "guest,to" },
	{ "policy.add", cmd_policy_add, NULL },
	{ "policy.list", cmd_policy_list, "" },
	{ "policy.show", cmd_policy_show, "name" },
	{ "policy.pause", cmd_policy_pause, "name" },
	{ "policy.resume", cmd_policy_resume, "name" },
	{ "policy.rm", cmd_policy_rm, "name" },
	{ "health.report", cmd_health_report, "host,sensor,value,unit" },
	{ "health.rule.add", cmd_health_rule_add, "name,sensor,above,below,rise,within_s,clear,"
	  "clear_after_s" },
	{ "health.rule.list", cmd_health_rule_list, "" },
	{ "health.rule.rm", cmd_health_rule_rm, "name" },
	{ "health.show", cmd_health_show, "host" },
};

static json_t *dispatch(struct api *api, const char *cmd, json_t *args)
{
	char err[ERR_MAX] = "";
	json_t *result = NULL;
	const struct api_cmd *c = NULL;
	for (size_t i = 0; !c && i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, cmd) == 0)
			c = &commands[i];
	for (size_t i = 0; !c && api_ckpt_cmds[i].name; i++)
		if (strcmp(api_ckpt_cmds[i].name, cmd) == 0)
			c = &api_ckpt_cmds[i];
	if (c) {
		int rc = c->args ? check_args(cmd, c->args, args, err, sizeof(err)) : 0;
		if (rc == 0)
			rc = c->fn(api, args, &result, err, sizeof(err));
		if (rc == 0)
			return migd_reply_ok(result);
		json_decref(result);
		log_debug("%s refused: %s", cmd, err);
		return migd_reply_error(-rc, "%s", *err ? err : strerror(-rc));
	}
	return migd_reply_error(EOPNOTSUPP, "unknown command \"%.64s\" (status, host.*, guest.*, agent.list, "
				"migrate, evacuate, abort, migration.show, queue, history, event.list, report, "
				"policy.*, health.*, job.*, checkpoint.*, restore)", cmd);
}

static json_t *handle(struct api *api, const char *data, size_t len)
{
	json_t *root = NULL, *args = NULL, *reply;
	const char *cmd = NULL;
	char err[ERR_MAX] = "";
	int rc = migd_req_parse(data, len, &root, &cmd, &args, err, sizeof(err));
	if (rc < 0) {
		log_debug("malformed request: %s", err);
		reply = migd_reply_error(-rc, "%s", err);
	} else {
		reply = dispatch(api, cmd, args);
	}
	json_decref(root);
	return reply;
}

static void free_text(void *data, void *hint)
{
	free(data);
}

static void send_reply(struct api *api, json_t *reply)
{
	zmq_msg_t msg;
	char *text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
	json_decref(reply);
	if (!text) /* out of memory building it: still answer, REP must */
		text = strdup("{\"v\":1,\"ok\":false,\"error\":\"out of memory\",\"code\":\"ENOMEM\"}");
	/* ZeroMQ takes the text as it is (a 10,000-guest list is megabytes) */
	if (!text || zmq_msg_init_data(&msg, text, strlen(text), free_text, NULL) < 0) {
		free(text);
		log_warnx("reply not sent: out of memory");
		return;
	}
	if (zmq_msg_send(&msg, api->rep, ZMQ_DONTWAIT) < 0) {
		log_warnx("reply not sent: %s", zmq_strerror(zmq_errno()));
		zmq_msg_close(&msg);
	}
}

/* One request: 1 when one was answered, 0 when none was waiting. */
static int serve_one(struct api *api)
{
	zmq_msg_t msg;
	int more = 0;
	size_t more_len = sizeof(more);
	zmq_msg_init(&msg);
	if (zmq_msg_recv(&msg, api->rep, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&msg);
		return 0;
	}
	zmq_getsockopt(api->rep, ZMQ_RCVMORE, &more, &more_len);
	json_t *reply;
	if (more) { /* take the rest of it, then refuse */
		zmq_msg_t rest;
		zmq_msg_init(&rest);
		while (more && zmq_msg_recv(&rest, api->rep, 0) >= 0)
			zmq_getsockopt(api->rep, ZMQ_RCVMORE, &more, &more_len);
		zmq_msg_close(&rest);
		reply = migd_reply_error(EINVAL, "request has several frames; send one JSON object");
	} else {
		reply = handle(api, zmq_msg_data(&msg), zmq_msg_size(&msg));
	}
	zmq_msg_close(&msg);
	send_reply(api, reply);
	return 1;
}

void api_poll_also(struct api *api, void *socket)
{
	api->also = socket;
}

int api_serve(struct api *api, long timeout_ms)
{
	zmq_pollitem_t item[2] = { { api->rep, 0, ZMQ_POLLIN, 0 }, { api->also, 0, ZMQ_POLLIN, 0 } };
	if (zmq_poll(item, api->also ? 2 : 1, timeout_ms) < 0)
		return zmq_errno() == EINTR ? -EINTR : -zmq_errno();
	for (int i = 0; i < MAX_REQUESTS_PER_SERVE && serve_one(api); i++)
		api_publish(api); /* events of each request go out before the next one */
	return 0;
}

void api_set_metrics(struct api *api, struct migd_metrics *m)
{
	api->metrics = m;
}

void api_publish(struct api *api)
{
	json_t *events = db_events_take(api->db);
	size_t i;
	json_t *ev;
	json_array_foreach(events, i, ev) {
		char topic[96];
		char *body = json_dumps(ev, JSON_COMPACT);
		snprintf(topic, sizeof(topic), "event.%s",
			 json_string_value(json_object_get(ev, "type")));
		metrics_event(api->metrics, ev);
		/* a slow subscriber loses events (PUB's high-water mark), never blocks migd */
		if (body && zmq_send(api->pub, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
			zmq_send(api->pub, body, strlen(body), ZMQ_DONTWAIT);
		free(body);
	}
	json_decref(events);
}

static void *bind_socket(void *zctx, int type, const char *what, const char *endpoint,
			 char *err, size_t errlen)
{
	void *s = zmq_socket(zctx, type);
	int linger = 0, hwm = PUB_HWM;
	int64_t max = MAX_FRAME_BYTES;
	if (!s) {
		snprintf(err, errlen, "%s: %s", what, zmq_strerror(zmq_errno()));
		return NULL;
	}
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	if (type == ZMQ_REP)
		zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof(max));
	else
		zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	if (zmq_bind(s, endpoint) < 0) {
		snprintf(err, errlen, "%s %s: %s", what, endpoint, zmq_strerror(zmq_errno()));
		zmq_close(s);
		return NULL;
	}
	return s;
}

int api_new(const struct migd_config *conf, struct db *db, struct executor *ex,
	    struct policy_engine *pe, struct health *hm, struct api **out, char *err,
	    size_t errlen)
{
	struct api *api = calloc(1, sizeof(*api));
	if (!api) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	api->conf = conf;
	api->db = db;
	api->ex = ex;
	api->pe = pe;
	api->hm = hm;
	api->start_ms = now_ms();
	api->zctx = zmq_ctx_new();
	if (!api->zctx ||
	    !(api->rep = bind_socket(api->zctx, ZMQ_REP, "listen", conf->listen, err, errlen)) ||
	    !(api->pub = bind_socket(api->zctx, ZMQ_PUB, "events", conf->events, err, errlen))) {
		if (!api->zctx)
			snprintf(err, errlen, "ZeroMQ: %s", zmq_strerror(zmq_errno()));
		api_free(api);
		return -EADDRINUSE;
	}
	*out = api;
	return 0;
}

void api_free(struct api *api)
{
	if (!api)
		return;
	if (api->rep)
		zmq_close(api->rep);
	if (api->pub)
		zmq_close(api->pub);
	if (api->zctx)
		zmq_ctx_term(api->zctx);
	free(api);
}
