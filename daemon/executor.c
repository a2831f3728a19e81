/*
 * executor: see executor.h.
 *
 * The database is the truth about migrations; the executor keeps in memory
 * only what the database cannot: the backend's handle of each running
 * migration and when its last progress event went out. The scheduler's
 * snapshot is taken from the database at each planning round (snapshot.c,
 * which caches hosts and guests until the database says they changed), and
 * a round happens only when something changed or fell due.
 */
#include "executor.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "migd_proto.h"
#include "snapshot.h"
#include "util.h"

#define MAX_BACKENDS 8
#define RESTART_REASON "interrupted by a migd restart"
/* Real-time bounds of the agent phases: a quiesce answer is awaited for its
 * deadline plus this grace (the agent answers at its deadline at the
 * latest); a resume answer this long; a resume owed after a restart is
 * sent if the agent shows up within OWED_RESUME_MS (its watchdog, 10 s by
 * default, has resumed the guest by then anyway); the lull is checked again
 * this often while a migration waits for one. */
#define QUIESCE_GRACE_MS 1000
#define RESUME_WAIT_MS 3000
#define OWED_RESUME_MS 15000
#define LULL_CHECK_MS 100

struct backend {
	const struct hv_ops *ops;
	struct hv *hv;                 /* NULL when it did not open */
	char open_error[200];
};

enum run_phase {
	RUN_QUIESCING,                 /* row started, quiesce asked, answer awaited */
	RUN_MIGRATING,                 /* the backend migrates */
	RUN_RESUMING,                  /* resume asked; then the row takes its end */
};

/* How a row ends once its resume is answered. */
enum run_end {
	END_BACKEND,                   /* the backend's result, in final */
	END_DEFER,                     /* required quiesce failed: queued again */
	END_REFUSE,                    /* required quiesce failed: aborted */
	END_ABORT,                     /* aborted by request before migrating */
	END_FAIL,                      /* the backend would not start it */
};

struct running {
	int64_t id;                    /* the row */
	enum run_phase phase;
	struct backend *be;            /* set once launched */
	uint64_t hv_id;
	int launched;
	uint64_t last_progress_ms;     /* real time of the last progress event */
	int abort_requested;
	char guest[DB_NAME_MAX], src[DB_NAME_MAX], dst[DB_NAME_MAX];
	double cap_bps;                /* the planner's bandwidth cap */
	/* the agent side */
	int quiesce_sent;              /* so a resume is owed */
	uint64_t req_id;               /* the quiesce or resume awaited */
	uint64_t req_sent_ms;
	enum run_end end;
	struct hv_progress final;      /* END_BACKEND */
	char end_why[DB_TEXT_MAX];     /* the others */
};

/* A due queued row held back while its guest's I/O is busy. */
struct lull_hold {
	int64_t id;
	uint64_t since_ms;             /* real time */
	int seen;                      /* in this planning round's queue */
	uint64_t gave_up_after_ms;     /* 0: still waiting; else it no longer waits */
	double gave_up_rate;
};

/* A resume owed after a restart, to a guest whose agent may come back. */
struct owed_resume {
	int64_t id;
	char guest[DB_NAME_MAX];
	uint64_t until_ms;
	uint64_t req_id;               /* 0: not sent yet */
	uint64_t sent_ms;
};

struct executor {
	struct db *db;
	struct exec_opts o;
	struct backend be[MAX_BACKENDS];
	size_t n_be;
	struct backend *clock;         /* NULL: the wall clock */
	struct running *run;
	size_t n_run, cap_run;
	int dirty;                     /* plan at the next tick */
	uint64_t plan_ms;              /* the last planning round: when it began (real ms) */
	uint64_t plan_cost_us;         /* and how long it took */
	int64_t wake_at_ns;            /* plan then even if nothing changed; 0: never */
	int64_t last_start_ns;
	struct snap_cache *snap;       /* hosts and guests between planning rounds */
	struct agent_link *agents;     /* NULL: none */
	exec_hold_fn hold;             /* guests in a checkpoint or restore */
	void *hold_arg;
	struct lull_hold *holds;
	size_t n_holds, cap_holds;
	uint64_t next_lull_check_ms;
	struct owed_resume *owed;
	size_t n_owed, cap_owed;
};

/* ---- backends and clock ----------------------------------------------- */

int exec_new(struct db *db, const struct exec_opts *opts, struct executor **out, char *err,
	     size_t errlen)
{
	struct executor *ex = calloc(1, sizeof(*ex));
	if (!ex) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ex->db = db;
	ex->o = *opts;
	if (snap_cache_new(&ex->snap) < 0) {
		free(ex);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; hv_drivers[i] && ex->n_be < MAX_BACKENDS; i++) {
		struct backend *be = &ex->be[ex->n_be++];
		be->ops = hv_drivers[i];
		int rc = be->ops->open(&ex->o.env, &be->hv, be->open_error, sizeof(be->open_error));
		if (rc < 0) {
			be->hv = NULL;
			log_warnx("backend %s: %s", be->ops->scheme, be->open_error);
			continue;
		}
		log_debug("backend %s open", be->ops->scheme);
		if (!ex->clock)
			ex->clock = be;
	}
	*out = ex;
	return 0;
}

void exec_free(struct executor *ex)
{
	if (!ex)
		return;
	for (size_t i = 0; i < ex->n_be; i++)
		if (ex->be[i].hv && ex->be[i].ops->close)
			ex->be[i].ops->close(ex->be[i].hv);
	snap_cache_free(ex->snap);
	free(ex->run);
	free(ex->holds);
	free(ex->owed);
	free(ex);
}

void exec_set_agents(struct executor *ex, struct agent_link *agents)
{
	ex->agents = agents;
}

struct agent_link *exec_agents(struct executor *ex)
{
	return ex->agents;
}

const struct db_mig_knobs *exec_knobs_default(const struct executor *ex)
{
	return &ex->o.knobs_default;
}

int64_t exec_now_ns(struct executor *ex)
{
	return ex->clock ? ex->clock->ops->now_ns(ex->clock->hv) : wall_ns();
}

int exec_clock_is_sim(const struct executor *ex)
{
	return ex->clock && strcmp(ex->clock->ops->scheme, "sim") == 0;
}

unsigned exec_n_running(const struct executor *ex)
{
	return (unsigned)ex->n_run;
}

void exec_wake(struct executor *ex)
{
	ex->dirty = 1;
}

static struct backend *backend_of(struct executor *ex, const char *uri)
{
	const struct hv_ops *ops = hv_ops_for_uri(uri);
	for (size_t i = 0; ops && i < ex->n_be; i++)
		if (ex->be[i].ops == ops)
			return ex->be[i].hv ? &ex->be[i] : NULL;
	return NULL;
}

const struct hv_ops *exec_backend_check(struct executor *ex, const char *uri, char *err,
					size_t errlen)
{
	const struct hv_ops *ops = hv_ops_for_uri(uri);
	char built[128] = "";
	for (size_t i = 0; i < ex->n_be; i++)
		snprintf(built + strlen(built), sizeof(built) - strlen(built), "%s%s",
			 i ? ", " : "", ex->be[i].ops->scheme);
	if (!ops) {
		snprintf(err, errlen, "uri \"%s\": no backend for its scheme (built in: %s)", uri,
			 built);
		return NULL;
	}
	for (size_t i = 0; i < ex->n_be; i++) {
		if (ex->be[i].ops != ops)
			continue;
		if (ex->be[i].hv)
			return ops;
		snprintf(err, errlen, "uri \"%s\": backend %s is not available: %s", uri,
			 ops->scheme, ex->be[i].open_error);
		return NULL;
	}
	snprintf(err, errlen, "uri \"%s\": backend %s is not available", uri, ops->scheme);
	return NULL;
}

/* The backend of a host by name, through its row. */
static struct backend *backend_of_host(struct executor *ex, const char *host)
{
	struct db_host h;
	return db_host_get(ex->db, host, &h) == 0 ? backend_of(ex, h.uri) : NULL;
}

int exec_driver_of_host(struct executor *ex, const char *host, const struct hv_ops **ops,
			struct hv **hv, char *err, size_t errlen)
{
	struct db_host h;
	if (db_host_get(ex->db, host, &h) < 0) {
		snprintf(err, errlen, "host \"%s\": no such host", host);
		return -ENOENT;
	}
	struct backend *be = backend_of(ex, h.uri);
	if (!be) {
		exec_backend_check(ex, h.uri, err, errlen);
		return -ENODEV;
	}
	*ops = be->ops;
	*hv = be->hv;
	return 0;
}

void exec_set_hold(struct executor *ex, exec_hold_fn fn, void *arg)
{
	ex->hold = fn;
	ex->hold_arg = arg;
}

int exec_host_add(struct executor *ex, const char *name, const char *uri, char *err,
		  size_t errlen)
{
	struct backend *be = backend_of(ex, uri);
	if (!be) {
		exec_backend_check(ex, uri, err, errlen); /* says why */
		return -EPROTONOSUPPORT;
	}
	return be->ops->host_add(be->hv, name, uri, err, errlen);
}

int exec_host_remove(struct executor *ex, const char *name, const char *uri, char *err,
		     size_t errlen)
{
	struct backend *be = backend_of(ex, uri);
	if (!be)
		return 0; /* its backend is gone: nothing to tell it */
	int rc = be->ops->host_remove(be->hv, name, err, errlen);
	return rc == -ENOENT ? 0 : rc;
}

int exec_guest_create(struct executor *ex, const char *host_uri, const struct db_guest *g,
		      char *err, size_t errlen)
{
	struct backend *be = backend_of(ex, host_uri);
	struct hv_guest_spec spec = { g->name, g->memory_bytes, g->dirty_rate_bps };
	if (!be) {
		exec_backend_check(ex, host_uri, err, errlen);
		return -EPROTONOSUPPORT;
	}
	if (!be->ops->guest_create) {
		snprintf(err, errlen, "backend %s cannot create guests", be->ops->scheme);
		return -EOPNOTSUPP;
	}
	return be->ops->guest_create(be->hv, g->host, &spec, err, errlen);
}

int exec_guest_info(struct executor *ex, const struct db_guest *g, struct hv_guest_info *out,
		    char *err, size_t errlen)
{
	struct backend *be = backend_of_host(ex, g->host);
	if (!be) {
		snprintf(err, errlen, "guest %s: the backend of host %s is not available", g->name,
			 g->host);
		return -ENODEV;
	}
	return be->ops->guest_info(be->hv, g->name, out, err, errlen);
}

/* ---- rows and their events -------------------------------------------- */

static json_t *mig_event(const char *type, const struct db_migration *m, int64_t now)
{
	json_t *ev = migd_event_new(type, now);
	json_object_update_new(ev, db_mig_json(m));
	return ev;
}

/* Write m, with its event, in a transaction of its own. */
static int commit_row(struct executor *ex, const struct db_migration *m, const char *event)
{
	int rc = db_begin(ex->db);
	if (rc < 0)
		return rc;
	rc = db_mig_update(ex->db, m);
	if (rc == 0 && event)
		rc = db_event(ex->db, mig_event(event, m, exec_now_ns(ex)));
	if (rc == 0)
		return db_commit(ex->db);
	db_rollback(ex->db);
	return rc;
}

static void fail_row(struct db_migration *m, int64_t now, const char *why)
{
	m->state = DB_MIG_FAILED;
	m->finished_ns = now;
	snprintf(m->error, sizeof(m->error), "%s", why);
}

/* ---- queueing and aborting -------------------------------------------- */

static int check_destination(struct executor *ex, const struct db_guest *g, const char *to,
			     char *err, size_t errlen)
{
	struct db_host h;
	int rc = db_host_get(ex->db, to, &h);
	if (rc == -ENOENT)
		snprintf(err, errlen, "host \"%s\": no such host", to);
	if (rc < 0)
		return rc;
	if (strcmp(to, g->host) == 0) {
		snprintf(err, errlen, "guest %s already runs on %s", g->name, to);
		return -EINVAL;
	}
	if (!h.enabled || strcmp(h.health, "ok") != 0) {
		snprintf(err, errlen, "host %s takes no guests (%s)", to,
			 !h.enabled ? "disabled" : h.health);
		return -EINVAL;
	}
	return 0;
}

int exec_enqueue(struct executor *ex, const struct exec_request *rq, struct db_migration *out,
		 char *err, size_t errlen)
{
	struct db_guest g;
	struct db_migration busy;
	int rc = db_guest_get(ex->db, rq->guest, &g);
	if (rc == -ENOENT)
		snprintf(err, errlen, "guest \"%s\": no such guest", rq->guest);
	if (rc < 0)
		return rc;
	if (g.migration_id && db_mig_get(ex->db, g.migration_id, &busy) == 0) {
		snprintf(err, errlen, "guest %s is already in migration %" PRId64 " (%s)", g.name,
			 busy.id, db_mig_state_name(busy.state));
		return -EBUSY;
	}
	const char *held = ex->hold ? ex->hold(ex->hold_arg, g.name) : NULL;
	if (held) {
		snprintf(err, errlen, "guest %s is in %s", g.name, held);
		return -EBUSY;
	}
	if (rq->to && (rc = check_destination(ex, &g, rq->to, err, errlen)) < 0)
		return rc;
	int64_t now = rq->queued_ns ? rq->queued_ns : exec_now_ns(ex);
	struct db_migration *m = out;
	memset(m, 0, sizeof(*m));
	snprintf(m->guest, sizeof(m->guest), "%s", g.name);
	snprintf(m->src, sizeof(m->src), "%s", g.host);
	snprintf(m->dst, sizeof(m->dst), "%s", rq->to ? rq->to : "");
	snprintf(m->policy, sizeof(m->policy), "%s", rq->policy ? rq->policy : "");
	snprintf(m->reason, sizeof(m->reason), "%s", rq->reason ? rq->reason : "");
	m->state = DB_MIG_QUEUED;
	m->priority = rq->priority;
	m->queued_ns = now;
	m->not_before_ns = rq->not_before_ns > now ? rq->not_before_ns : now;
	m->total_ms = m->downtime_ms = m->bytes = -1;
	m->rounds = -1;
	m->knobs = rq->knobs ? *rq->knobs : ex->o.knobs_default;
	db_mig_figures_unknown(m);
	if ((rc = db_mig_add(ex->db, m)) == 0)
		rc = db_event(ex->db, mig_event("migration.queued", m, now));
	if (rc < 0)
		snprintf(err, errlen, "database error queueing the migration of %s", g.name);
	ex->dirty = 1;
	return rc;
}

int exec_cancel_queued(struct executor *ex, struct db_migration *m, const char *why)
{
	int64_t now = exec_now_ns(ex);
	m->state = DB_MIG_ABORTED;
	m->finished_ns = now;
	snprintf(m->error, sizeof(m->error), "%s", why);
	int rc = db_mig_update(ex->db, m);
	if (rc == 0)
		rc = db_event(ex->db, mig_event("migration.aborted", m, now));
	ex->dirty = 1;
	return rc;
}

static struct running *find_running(struct executor *ex, int64_t id)
{
	for (size_t i = 0; i < ex->n_run; i++)
		if (ex->run[i].id == id)
			return &ex->run[i];
	return NULL;
}

static void poll_one(struct executor *ex, size_t i);

static int abort_running(struct executor *ex, struct running *r, struct db_migration *m,
			 char *err, size_t errlen)
{
	if (r->abort_requested) {
		snprintf(err, errlen, "migration %" PRId64 ": abort already requested", m->id);
		return -EALREADY;
	}
	if (r->phase == RUN_RESUMING) {
		snprintf(err, errlen, "migration %" PRId64 ": already ending (resuming the guest's "
			 "I/O)", m->id);
		return -EALREADY;
	}
	/* the request is on the row before the backend hears it */
	snprintf(m->error, sizeof(m->error), "abort requested");
	int rc = db_mig_update(ex->db, m);
	if (rc < 0) {
		snprintf(err, errlen, "migration %" PRId64 ": database error", m->id);
		return rc;
	}
	if (r->phase == RUN_QUIESCING) { /* nothing migrates yet: resume, then aborted */
		r->abort_requested = 1;
		poll_one(ex, (size_t)(r - ex->run));
		return db_mig_get(ex->db, m->id, m);
	}
	rc = r->be->ops->migrate_abort(r->be->hv, r->hv_id, err, errlen);
	if (rc < 0) {
		m->error[0] = '\0';
		db_mig_update(ex->db, m);
		return rc;
	}
	r->abort_requested = 1;
	poll_one(ex, (size_t)(r - ex->run)); /* settle it now if the backend already has */
	return db_mig_get(ex->db, m->id, m);
}

int exec_abort(struct executor *ex, int64_t id, struct db_migration *out, char *err,
	       size_t errlen)
{
	int rc = db_mig_get(ex->db, id, out);
	if (rc == -ENOENT)
		snprintf(err, errlen, "migration %" PRId64 ": no such migration", id);
	if (rc < 0)
		return rc;
	if (DB_MIG_BIT(out->state) & DB_MIG_FINISHED) {
		snprintf(err, errlen, "migration %" PRId64 " already %s", id,
			 db_mig_state_name(out->state));
		return -EALREADY;
	}
	if (out->state == DB_MIG_QUEUED) {
		if ((rc = db_begin(ex->db)) < 0)
			return rc;
		rc = exec_cancel_queued(ex, out, "aborted by request");
		if (rc == 0)
			return db_commit(ex->db);
		db_rollback(ex->db);
		return rc;
	}
	struct running *r = find_running(ex, id);
	if (!r) { /* started rows are launched in the same tick: should not happen */
		snprintf(err, errlen, "migration %" PRId64 " is between phases; try again", id);
		return -EAGAIN;
	}
	return abort_running(ex, r, out, err, errlen);
}

/* ---- reconciliation with the backend ---------------------------------- */

/* Make the guests table say host for guest, with a reconciled event. */
static int move_guest_row(struct executor *ex, const char *guest, const char *from,
			  const char *to)
{
	int rc = db_guest_set_host(ex->db, guest, to);
	if (rc < 0)
		return rc;
	json_t *ev = migd_event_new("reconciled", exec_now_ns(ex));
	json_object_set_new(ev, "guest", json_string(guest));
	json_object_set_new(ev, "from", json_string(from));
	json_object_set_new(ev, "host", json_string(to));
	return db_event(ex->db, ev);
}

/*
 * Finish row m from where the backend says its guest runs: on the
 * destination it completed (figures unknown, reconciled), anywhere else it
 * failed for the reason why. The guests table follows the backend.
 */
static int reconcile_row(struct executor *ex, struct db_migration *m, const char *why)
{
	struct hv_guest_info info = { 0 };
	struct db_guest g;
	char err[256] = "";
	struct backend *be = backend_of_host(ex, m->src);
	int rc = be ? be->ops->guest_info(be->hv, m->guest, &info, err, sizeof(err)) : -ENODEV;
	int64_t now = exec_now_ns(ex);
	m->reconciled = 1;
	if (rc == 0 && *m->dst && strcmp(info.host, m->dst) == 0) {
		m->state = DB_MIG_COMPLETED;
		m->finished_ns = now;
		m->error[0] = '\0';
	} else if (rc == 0) {
		char text[DB_TEXT_MAX];
		snprintf(text, sizeof(text), "%s%s%s", why, strcmp(info.host, m->src) ? "; now on " : "",
			 strcmp(info.host, m->src) ? info.host : "");
		fail_row(m, now, text);
	} else {
		char text[DB_TEXT_MAX];
		snprintf(text, sizeof(text), "%s; the backend does not know where it runs: %s", why,
			 *err ? err : "no backend");
		fail_row(m, now, text);
	}
	if ((rc = db_begin(ex->db)) < 0)
		return rc;
	rc = db_mig_update(ex->db, m);
	if (rc == 0 && *info.host && db_guest_get(ex->db, m->guest, &g) == 0 &&
	    strcmp(g.host, info.host) != 0)
		rc = db_guest_set_host(ex->db, m->guest, info.host);
	if (rc == 0) {
		json_t *ev = mig_event("reconciled", m, now);
		json_object_set_new(ev, "host", json_string(info.host));
		rc = db_event(ex->db, ev);
	}
	if (rc < 0) {
		db_rollback(ex->db);
		return rc;
	}
	log_info("migration %" PRId64 " of %s reconciled: %s, guest on %s", m->id, m->guest,
		 db_mig_state_name(m->state), *info.host ? info.host : "no host");
	ex->dirty = 1;
	return db_commit(ex->db);
}

struct id_list {
	int64_t *ids;
	size_t n, cap;
};

static int collect_id(void *arg, const struct db_migration *m)
{
	struct id_list *l = arg;
	if (GROW(l->ids, l->cap, l->n + 1) < 0)
		return -ENOMEM;
	l->ids[l->n++] = m->id;
	return 0;
}

/* The guest of row id may be quiesced with no one left to resume it: send
 * a resume when its agent is heard from (exec_tick). */
static void owe_resume(struct executor *ex, int64_t id, const char *guest)
{
	if (GROW(ex->owed, ex->cap_owed, ex->n_owed + 1) < 0) {
		log_warnx("migration %" PRId64 ": out of memory; %s is left to its agent's watchdog",
			  id, guest);
		return;
	}
	struct owed_resume *o = &ex->owed[ex->n_owed++];
	memset(o, 0, sizeof(*o));
	o->id = id;
	snprintf(o->guest, sizeof(o->guest), "%s", guest);
	o->until_ms = now_ms() + OWED_RESUME_MS;
	log_info("migration %" PRId64 ": %s may be quiesced; resuming it when its agent answers",
		 id, guest);
}

static void reconcile_running_rows(struct executor *ex)
{
	struct db_mig_filter f = { .states = DB_MIG_RUNNING };
	struct id_list l = { 0 };
	struct db_migration m;
	if (db_mig_list(ex->db, &f, collect_id, &l) < 0)
		log_warnx("cannot list the migrations to reconcile");
	for (size_t i = 0; i < l.n; i++) {
		if (db_mig_get(ex->db, l.ids[i], &m) < 0)
			continue;
		int quiesced = m.quiesce_ns && !*m.resume;
		if (reconcile_row(ex, &m, RESTART_REASON) < 0)
			log_warnx("migration %" PRId64 ": reconciliation not written", l.ids[i]);
		if (quiesced)
			owe_resume(ex, m.id, m.guest);
	}
	free(l.ids);
}

static int register_host(void *arg, const struct db_host *h)
{
	struct executor *ex = arg;
	char err[256];
	if (exec_host_add(ex, h->name, h->uri, err, sizeof(err)) < 0)
		log_warnx("host %s: %s", h->name, err);
	return 0;
}

struct guest_sync {
	struct executor *ex;
	struct db_host *hosts;  /* by id */
	size_t n_hosts, cap_hosts;
	struct db_guest *moved; /* guests the backend has elsewhere: name, host = from */
	char (*moved_to)[DB_NAME_MAX];
	size_t n_moved, cap_moved, cap_moved_to;
};

static int sync_collect_host(void *arg, const struct db_host *h)
{
	struct guest_sync *s = arg;
	if (GROW(s->hosts, s->cap_hosts, s->n_hosts + 1) < 0)
		return -ENOMEM;
	s->hosts[s->n_hosts++] = *h;
	return 0;
}

static const struct db_host *host_by_id(const struct guest_sync *s, int64_t id)
{
	size_t lo = 0, hi = s->n_hosts;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->hosts[mid].id == id)
			return &s->hosts[mid];
		if (s->hosts[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* One guest of the table against the backend: found elsewhere, it is
 * noted for moving; unknown to the backend, it is created again there
 * (the sim lost its world) when the backend can. */
static int sync_guest(void *arg, const struct db_guest *g)
{
	struct guest_sync *s = arg;
	const struct db_host *h = host_by_id(s, g->host_id);
	struct backend *be = h ? backend_of(s->ex, h->uri) : NULL;
	struct hv_guest_info info;
	char err[256];
	if (!be)
		return 0;
	int rc = be->ops->guest_info(be->hv, g->name, &info, err, sizeof(err));
	if (rc == -ENOENT) {
		struct db_guest full = *g;
		snprintf(full.host, sizeof(full.host), "%s", h->name);
		rc = exec_guest_create(s->ex, h->uri, &full, err, sizeof(err));
		if (rc < 0)
			log_warnx("guest %s: not in the backend and not created again: %s", g->name, err);
		else
			log_warnx("guest %s: was not in the backend; created again on %s", g->name,
				  h->name);
		return 0;
	}
	if (rc < 0 || strcmp(info.host, h->name) == 0)
		return 0;
	if (GROW(s->moved, s->cap_moved, s->n_moved + 1) < 0 ||
	    GROW(s->moved_to, s->cap_moved_to, s->n_moved + 1) < 0)
		return -ENOMEM;
	s->moved[s->n_moved] = *g;
	snprintf(s->moved[s->n_moved].host, DB_NAME_MAX, "%s", h->name);
	snprintf(s->moved_to[s->n_moved++], DB_NAME_MAX, "%s", info.host);
	return 0;
}

/* Guests the backend runs on our hosts that the table does not know (a
 * crash between creating one and committing its row): adopted. */
static void adopt_unknown_guests(struct executor *ex, const struct db_host *h)
{
	struct backend *be = backend_of(ex, h->uri);
	struct hv_guest_info *list = NULL;
	size_t n = 0;
	char err[256];
	if (!be || be->ops->list_guests(be->hv, h->name, &list, &n, err, sizeof(err)) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct db_guest g = { .rank = -1 };
		if (db_guest_get(ex->db, list[i].name, &g) == 0)
			continue;
		snprintf(g.name, sizeof(g.name), "%s", list[i].name);
		snprintf(g.host, sizeof(g.host), "%s", h->name);
		g.memory_bytes = list[i].memory_bytes;
		g.dirty_rate_bps = list[i].dirty_rate_bps;
		g.rank = -1;
		if (db_guest_add(ex->db, &g, exec_now_ns(ex)) == 0) {
			json_t *ev = migd_event_new("guest.added", exec_now_ns(ex));
			json_object_set_new(ev, "guest", db_guest_json(&g));
			db_event(ex->db, ev);
			log_warnx("guest %s: found on %s in the backend only; adopted", g.name, h->name);
		}
	}
	free(list);
}

static void sync_guests(struct executor *ex)
{
	struct guest_sync s = { .ex = ex };
	if (db_host_scan(ex->db, sync_collect_host, &s) < 0 ||
	    db_guest_scan(ex->db, sync_guest, &s) < 0)
		log_warnx("guests: could not compare every guest with the backend");
	for (size_t i = 0; i < s.n_moved; i++) {
		log_warnx("guest %s: the backend runs it on %s, not %s; following the backend",
			  s.moved[i].name, s.moved_to[i], s.moved[i].host);
		if (db_begin(ex->db) == 0) {
			if (move_guest_row(ex, s.moved[i].name, s.moved[i].host, s.moved_to[i]) == 0)
				db_commit(ex->db);
			else
				db_rollback(ex->db);
		}
	}
	for (size_t i = 0; i < s.n_hosts; i++)
		adopt_unknown_guests(ex, &s.hosts[i]);
	free(s.hosts);
	free(s.moved);
	free(s.moved_to);
}

int exec_restore(struct executor *ex)
{
	int rc = db_host_list(ex->db, register_host, ex);
	if (rc < 0)
		return rc;
	reconcile_running_rows(ex);
	sync_guests(ex);
	ex->last_start_ns = db_mig_last_start_ns(ex->db);
	ex->dirty = 1;
	return 0;
}

/* ---- running migrations ------------------------------------------------ */

static void progress_event(struct executor *ex, struct running *r, const struct hv_progress *p)
{
	uint64_t now = now_ms();
	if (r->last_progress_ms && now - r->last_progress_ms < ex->o.progress_interval_ms)
		return;
	r->last_progress_ms = now;
	json_t *ev = migd_event_new("migration.progress", exec_now_ns(ex));
	json_object_set_new(ev, "id", json_integer(r->id));
	json_object_set_new(ev, "guest", json_string(r->guest));
	json_object_set_new(ev, "src", json_string(r->src));
	json_object_set_new(ev, "dst", json_string(r->dst));
	json_object_set_new(ev, "transferred_bytes", json_integer((json_int_t)p->transferred_bytes));
	json_object_set_new(ev, "remaining_bytes", json_integer((json_int_t)p->remaining_bytes));
	json_object_set_new(ev, "total_bytes", json_integer((json_int_t)p->total_bytes));
	json_object_set_new(ev, "rounds", json_integer(p->rounds));
	db_event_transient(ex->db, ev);
}

/* A guest that lands on a host disabled or degraded while it was on its
 * way (an evacuation, `host disable`, a health rule) is moved on at once,
 * with the priority of the migration that brought it (at least health
 * priority off a degraded host): evacuating a host covers its arrivals too. */
static int move_off_disabled(struct executor *ex, const struct db_migration *m)
{
	struct db_host h;
	struct db_migration next;
	char reason[DB_TEXT_MAX], err[256];
	if (db_host_get(ex->db, m->dst, &h) < 0 || (h.enabled && strcmp(h.health, "ok") == 0))
		return 0;
	int degraded = h.enabled;
	snprintf(reason, sizeof(reason), "arrived on %s host %s", degraded ? "degraded" : "disabled",
		 m->dst);
	struct exec_request rq = {
		.guest = m->guest, .reason = reason, .knobs = &m->knobs,
		.priority = degraded && m->priority < SCHED_PRIO_HEALTH ? SCHED_PRIO_HEALTH
									 : m->priority,
	};
	int rc = db_begin(ex->db);
	if (rc == 0) {
		rc = exec_enqueue(ex, &rq, &next, err, sizeof(err));
		rc = db_end(ex->db, rc);
	} else {
		snprintf(err, sizeof(err), "cannot begin a transaction");
	}
	if (rc < 0)
		log_warnx("guest %s arrived on %s host %s and stays: %s", m->guest,
			  degraded ? "degraded" : "disabled", m->dst, err);
	return 0;
}

/* The backend's final word on r: the row gets its figures and end state;
 * on success the guests table moves the guest. m holds the row as it is
 * (with the resume recorded, when there was one). */
static int finish(struct executor *ex, struct running *r, struct db_migration *m,
		  const struct hv_progress *p)
{
	const char *event = "migration.failed";
	int64_t now = exec_now_ns(ex);
	int rc;
	m->finished_ns = now;
	m->total_ms = (int64_t)p->total_time_ms;
	m->downtime_ms = (int64_t)p->downtime_ms;
	m->bytes = (int64_t)p->transferred_bytes;
	m->rounds = (int)p->rounds;
	/* calibration figures: 0 is "not measured" in hv_progress, NULL here */
	m->link_bps = p->link_bps ? (int64_t)p->link_bps : -1;
	m->dirty_rate_bps = p->dirty_rate_bps ? (int64_t)p->dirty_rate_bps : -1;
	m->ram_bytes = p->ram_bytes ? (int64_t)p->ram_bytes : -1;
	m->setup_ms = p->setup_ms ? (int64_t)p->setup_ms : -1;
	if (p->state == HV_MIG_COMPLETED) {
		m->state = DB_MIG_COMPLETED;
		m->error[0] = '\0';
		event = "migration.completed";
	} else if (p->state == HV_MIG_CANCELLED && r->abort_requested) {
		m->state = DB_MIG_ABORTED;
		snprintf(m->error, sizeof(m->error), "aborted by request");
		event = "migration.aborted";
	} else {
		m->state = DB_MIG_FAILED;
		snprintf(m->error, sizeof(m->error), "%s",
			 *p->error ? p->error : p->state == HV_MIG_CANCELLED
				 ? "cancelled by the backend" : "the backend reports a failure");
	}
	uint64_t hosts_gen, gen_before, gen_after;
	db_generations(ex->db, &hosts_gen, &gen_before);
	if ((rc = db_begin(ex->db)) < 0)
		return rc;
	rc = db_mig_update(ex->db, m);
	if (rc == 0 && m->state == DB_MIG_COMPLETED)
		rc = db_guest_set_host(ex->db, m->guest, m->dst);
	if (rc == 0)
		rc = db_event(ex->db, mig_event(event, m, now));
	rc = db_end(ex->db, rc);
	db_generations(ex->db, &hosts_gen, &gen_after);
	if (rc == 0 && m->state == DB_MIG_COMPLETED)
		snap_cache_moved(ex->snap, gen_before, gen_after, m->guest, m->dst);
	if (rc == 0)
		log_info("migration %" PRId64 " %s: %s %s -> %s, %.3f s, downtime %" PRId64
			 " ms, %u rounds, quiesce %s%s%s", m->id, db_mig_state_name(m->state),
			 m->guest, m->src, m->dst, (double)m->total_ms / 1e3, m->downtime_ms,
			 p->rounds, *m->quiesce ? m->quiesce : "-", *m->error ? ": " : "", m->error);
	if (rc == 0 && m->state == DB_MIG_COMPLETED)
		rc = move_off_disabled(ex, m);
	return rc;
}

/* A row that never migrated ends (after its resume): deferred back to
 * the queue, refused, aborted or failed. */
static int finish_unmigrated(struct executor *ex, struct running *r, struct db_migration *m)
{
	int64_t now = exec_now_ns(ex);
	const char *event;
	enum run_end end = r->end;
	if (end == END_DEFER && (unsigned)m->defers >= ex->o.max_defers) {
		end = END_REFUSE;
		snprintf(m->error, sizeof(m->error), "%.180s (deferred %d times)", r->end_why,
			 m->defers);
	} else {
		snprintf(m->error, sizeof(m->error), "%s", r->end_why);
	}
	if (end == END_DEFER) {
		m->state = DB_MIG_QUEUED;
		m->defers++;
		m->started_ns = m->migrating_ns = 0;
		m->not_before_ns = now + ex->o.defer_delay_ns;
		event = "migration.deferred";
	} else {
		m->state = end == END_FAIL ? DB_MIG_FAILED : DB_MIG_ABORTED;
		m->finished_ns = now;
		event = end == END_FAIL ? "migration.failed" : "migration.aborted";
	}
	int rc = commit_row(ex, m, event);
	if (rc == 0)
		log_info("migration %" PRId64 " of %s %s: %s", m->id, m->guest,
			 end == END_DEFER ? "deferred" : db_mig_state_name(m->state), m->error);
	return rc;
}

/* The backend no longer knows a migration it was running: settle the row
 * from where the guest is. */
static int lost(struct executor *ex, struct running *r, const char *err)
{
	struct db_migration m;
	char why[DB_TEXT_MAX];
	int rc = db_mig_get(ex->db, r->id, &m);
	if (rc < 0)
		return rc;
	snprintf(why, sizeof(why), "the backend lost the migration: %s", err);
	rc = reconcile_row(ex, &m, why);
	if (rc == 0 && r->quiesce_sent)
		owe_resume(ex, m.id, m.guest);
	return rc;
}

static void remove_running(struct executor *ex, size_t i)
{
	struct running *r = &ex->run[i];
	if (r->launched && r->be->ops->migrate_forget)
		r->be->ops->migrate_forget(r->be->hv, r->hv_id);
	if (r->req_id && ex->agents)
		agent_link_forget(ex->agents, r->req_id);
	ex->run[i] = ex->run[--ex->n_run];
	ex->dirty = 1; /* a slot and maybe a job freed up */
}

/* ---- the agent phases ------------------------------------------------- */

/* 1 when guest's agent is connected. */
static int agent_connected(struct executor *ex, const char *guest)
{
	struct agent_status st;
	return ex->agents && agent_link_status(ex->agents, guest, &st) == 0 && st.connected;
}

static int64_t result_int(json_t *result, const char *key)
{
	json_t *v = json_object_get(result, key);
	return json_is_number(v) && json_number_value(v) >= 0 ? (int64_t)json_number_value(v) : -1;
}

/*
 * Ask for a resume after a quiesce and let r end once it is answered
 * (poll_resuming); the row says so before the agent hears it. When the
 * agent is gone the row ends now: its watchdog resumes the guest.
 */
static int start_resume(struct executor *ex, size_t i, struct db_migration *m)
{
	struct running *r = &ex->run[i];
	m->resume_ns = exec_now_ns(ex);
	m->resume[0] = '\0';
	int rc = commit_row(ex, m, "migration.resuming");
	if (rc < 0)
		return rc;
	r->phase = RUN_RESUMING;
	r->req_id = 0;
	rc = ex->agents ? agent_link_send(ex->agents, r->guest, "resume", 0, RESUME_WAIT_MS,
					 &r->req_id) : -ENOTCONN;
	if (rc == 0) {
		r->req_sent_ms = now_ms();
		return 0;
	}
	snprintf(m->resume, sizeof(m->resume), "no-agent (its watchdog resumes)");
	return 1; /* over: the caller ends the row */
}

/* End r's row as decided, with m the row as it stands; r leaves the list. */
static int end_row(struct executor *ex, size_t i, struct db_migration *m)
{
	struct running *r = &ex->run[i];
	int rc = r->end == END_BACKEND ? finish(ex, r, m, &r->final)
				       : finish_unmigrated(ex, r, m);
	if (rc == 0)
		remove_running(ex, i);
	return rc;
}

/* The resume of r answered (or not): recorded, then the row ends. */
static void poll_resuming(struct executor *ex, size_t i)
{
	struct running *r = &ex->run[i];
	struct agent_reply rep;
	struct db_migration m;
	int rc = agent_link_reply(ex->agents, r->req_id, &rep);
	if (rc == 0 || db_mig_get(ex->db, r->id, &m) < 0)
		return;
	if (rc == 1) {
		m.resume_ms = (int64_t)rep.rtt_ms;
		if (rep.ok)
			snprintf(m.resume, sizeof(m.resume), "ok");
		else
			snprintf(m.resume, sizeof(m.resume), "error: %.200s", rep.error);
	} else {
		m.resume_ms = -1;
		snprintf(m.resume, sizeof(m.resume), "%s (its watchdog resumes)",
			 rc == -ETIMEDOUT ? "no reply" : "agent gone");
	}
	if (strcmp(m.resume, "ok") != 0)
		log_warnx("migration %" PRId64 ": resume of %s: %s", m.id, m.guest, m.resume);
	json_t *ev = mig_event("migration.resumed", &m, exec_now_ns(ex));
	db_event_transient(ex->db, ev); /* the row's end event carries it too */
	end_row(ex, i, &m);
}

static int launch(struct executor *ex, size_t i, struct db_migration *m);

/*
 * The quiesce of r answered, missed its deadline or the agent went: the
 * outcome goes on the row and decides what follows: migrate (ok, or
 * best-effort), or resume and then defer or refuse (required). An abort
 * asked meanwhile resumes and aborts.
 */
static void poll_quiescing(struct executor *ex, size_t i)
{
	struct running *r = &ex->run[i];
	struct agent_reply rep = { 0 };
	struct db_migration m;
	int rc = agent_link_reply(ex->agents, r->req_id, &rep);
	if ((rc == 0 && !r->abort_requested) || db_mig_get(ex->db, r->id, &m) < 0)
		return;
	int ok = rc == 1 && rep.ok;
	m.quiesce_ms = rc == 1 ? (int64_t)rep.rtt_ms : (int64_t)(now_ms() - r->req_sent_ms);
	if (rc == 1) {
		m.drained_requests = result_int(rep.result, "drained_requests");
		m.drained_bytes = result_int(rep.result, "drained_bytes");
	}
	if (ok)
		snprintf(m.quiesce, sizeof(m.quiesce), "ok");
	else if (rc == 1 && json_is_true(json_object_get(rep.result, "missed_deadline")))
		snprintf(m.quiesce, sizeof(m.quiesce), "missed: %.200s", rep.error);
	else if (rc == 1)
		snprintf(m.quiesce, sizeof(m.quiesce), "error: %.200s", rep.error);
	else if (rc == -ETIMEDOUT)
		snprintf(m.quiesce, sizeof(m.quiesce), "missed: no answer within %u ms",
			 m.knobs.quiesce_deadline_ms + QUIESCE_GRACE_MS);
	else if (rc == 0)
		snprintf(m.quiesce, sizeof(m.quiesce), "error: aborted while quiescing");
	else
		snprintf(m.quiesce, sizeof(m.quiesce), "error: agent gone");
	agent_link_forget(ex->agents, r->req_id);
	r->req_id = 0;
	log_info("migration %" PRId64 ": quiesce of %s: %s in %" PRId64 " ms", m.id, m.guest,
		 m.quiesce, m.quiesce_ms);
	db_event_transient(ex->db, mig_event("migration.quiesced", &m, exec_now_ns(ex)));
	if (r->abort_requested) {
		r->end = END_ABORT;
		snprintf(r->end_why, sizeof(r->end_why), "aborted by request");
	} else if (!ok && m.knobs.quiesce == DB_QUIESCE_REQUIRED) {
		r->end = m.knobs.miss_aborts ? END_REFUSE : END_DEFER;
		snprintf(r->end_why, sizeof(r->end_why), "quiesce required: %.200s", m.quiesce);
	} else {
		if (launch(ex, i, &m) < 0)
			log_warnx("migration %" PRId64 ": not written; trying again", m.id);
		return;
	}
	rc = start_resume(ex, i, &m);
	if (rc == 1)
		end_row(ex, i, &m);
}

/* Poll run[i]; when it ended and its row is written, it leaves the list
 * (so the caller must not hold pointers into it). */
static void poll_one(struct executor *ex, size_t i)
{
	struct running *r = &ex->run[i];
	if (r->phase == RUN_QUIESCING) {
		poll_quiescing(ex, i);
		return;
	}
	if (r->phase == RUN_RESUMING) {
		poll_resuming(ex, i);
		return;
	}
	struct hv_progress p = { 0 };
	struct db_migration m;
	char err[256] = "";
	int rc = r->be->ops->migrate_poll(r->be->hv, r->hv_id, &p, err, sizeof(err));
	if (rc == 0 && p.state == HV_MIG_ACTIVE) {
		progress_event(ex, r, &p);
		return;
	}
	if (rc < 0) {
		if (lost(ex, r, err) == 0)
			remove_running(ex, i);
		return; /* else the database refused: the backend keeps the result, try next tick */
	}
	if (db_mig_get(ex->db, r->id, &m) < 0)
		return;
	r->end = END_BACKEND;
	r->final = p;
	if (!r->quiesce_sent || (rc = start_resume(ex, i, &m)) == 1)
		end_row(ex, i, &m);
}

static void poll_running(struct executor *ex)
{
	/* backwards: removal swaps the last entry into the freed place */
	for (size_t i = ex->n_run; i-- > 0;)
		poll_one(ex, i);
}

/* ---- planning --------------------------------------------------------- */

/* Fail a queued row in the open transaction. */
static int fail_queued(struct executor *ex, struct db_migration *m, int64_t now,
		       const char *why)
{
	fail_row(m, now, why);
	int rc = db_mig_update(ex->db, m);
	if (rc == 0)
		rc = db_event(ex->db, mig_event("migration.failed", m, now));
	if (rc == 0)
		log_info("migration %" PRId64 " of %s refused: %s", m->id, m->guest, m->error);
	return rc;
}

/*
 * 1 when a rank of job is migrating or starts in this plan. The planner
 * refuses a rank when every other host holds or receives a rank of its job,
 * counting the source of a rank in flight as held; once that rank lands
 * its source is free, so such a refusal is premature and the request waits.
 */
static int job_in_flight(const struct snapshot *s, const struct sched_plan *plan, uint64_t job)
{
	if (job == 0)
		return 0;
	for (size_t i = 0; i < s->n_sr; i++)
		if (s->sg[s->sr[i].guest].job_id == job)
			return 1;
	for (size_t i = 0; i < plan->n_starts; i++)
		if (s->sg[plan->starts[i].guest].job_id == job)
			return 1;
	return 0;
}

/* Rows the snapshot could not map and rows the planner can never place. */
static int fail_unplaceable(struct executor *ex, struct snapshot *s,
			    const struct sched_plan *plan)
{
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < s->n_gone; i++)
		rc = fail_queued(ex, &s->queue[s->gone[i].row], s->now_ns, s->gone[i].reason);
	for (size_t i = 0; rc == 0 && i < plan->n_rejects; i++) {
		const struct sched_reject *r = &plan->rejects[i];
		if (job_in_flight(s, plan, s->sg[r->guest].job_id))
			continue; /* planned again when that rank lands */
		rc = fail_queued(ex, &s->queue[s->req_row[r->request]], s->now_ns, r->reason);
	}
	return rc;
}

/*
 * run[i]'s row to migrating (with its quiesce outcome), committed, then
 * the backend asked. When the backend refuses, a quiesced guest is resumed
 * before the row fails. -errno only when the row could not be written.
 */
static int launch(struct executor *ex, size_t i, struct db_migration *m)
{
	struct running *r = &ex->run[i];
	struct db_host src, dst;
	struct backend *be = NULL;
	struct hv_migrate_params params = ex->o.knobs;
	char err[256] = "";
	int rc = -ENODEV;
	m->state = DB_MIG_MIGRATING;
	m->migrating_ns = exec_now_ns(ex);
	if ((rc = commit_row(ex, m, "migration.migrating")) < 0)
		return rc;
	r->phase = RUN_MIGRATING;
	params.bandwidth_bps = r->cap_bps > 0 ? (uint64_t)r->cap_bps : 0;
	rc = -ENODEV;
	if (db_host_get(ex->db, m->src, &src) < 0 || db_host_get(ex->db, m->dst, &dst) < 0)
		snprintf(err, sizeof(err), "host %s or %s is gone", m->src, m->dst);
	else if (!(be = backend_of(ex, src.uri)))
		snprintf(err, sizeof(err), "host %s: its backend is not available", src.name);
	else if (backend_of(ex, dst.uri) != be)
		snprintf(err, sizeof(err), "hosts %s and %s are on different backends", src.name,
			 dst.name);
	else
		rc = be->ops->migrate_start(be->hv, m->guest, src.name, dst.name, &params,
					    &r->hv_id, err, sizeof(err));
	if (rc == 0) {
		r->be = be;
		r->launched = 1;
		log_info("migration %" PRId64 " started: %s %s -> %s (%s%s), quiesce %s", m->id,
			 m->guest, m->src, m->dst, *m->policy ? "policy " : "",
			 *m->policy ? m->policy : db_priority_name(m->priority),
			 *m->quiesce ? m->quiesce : "-");
		return 0;
	}
	log_warnx("migration %" PRId64 " of %s failed to start: %s", m->id, m->guest,
		  *err ? err : "the backend refused");
	r->end = END_FAIL;
	snprintf(r->end_why, sizeof(r->end_why), "%s", *err ? err : "the backend refused");
	if (!r->quiesce_sent || start_resume(ex, i, m) == 1)
		end_row(ex, i, m);
	return 0;
}

/* What the knobs and the agent say about a row that just started. */
enum quiesce_step { Q_MIGRATE, Q_ASK, Q_REFUSE };

static enum quiesce_step quiesce_step(struct executor *ex, struct db_migration *m)
{
	if (m->knobs.quiesce == DB_QUIESCE_OFF) {
		snprintf(m->quiesce, sizeof(m->quiesce), "off");
		return Q_MIGRATE;
	}
	if (agent_connected(ex, m->guest))
		return Q_ASK;
	snprintf(m->quiesce, sizeof(m->quiesce), "no-agent");
	return m->knobs.quiesce == DB_QUIESCE_REQUIRED ? Q_REFUSE : Q_MIGRATE;
}

/* A new entry for a started row; -ENOMEM. */
static int run_add(struct executor *ex, const struct db_migration *m, double cap_bps,
		   size_t *index)
{
	if (GROW(ex->run, ex->cap_run, ex->n_run + 1) < 0)
		return -ENOMEM;
	struct running *r = &ex->run[ex->n_run];
	memset(r, 0, sizeof(*r));
	r->id = m->id;
	r->cap_bps = cap_bps;
	snprintf(r->guest, sizeof(r->guest), "%s", m->guest);
	snprintf(r->src, sizeof(r->src), "%s", m->src);
	snprintf(r->dst, sizeof(r->dst), "%s", m->dst);
	*index = ex->n_run++;
	return 0;
}

/* One started row on its way: quiesce asked (the row says so first), or
 * straight to the backend, or refused with no agent to quiesce. */
static void start_one(struct executor *ex, struct db_migration *m, double cap_bps)
{
	size_t i;
	enum quiesce_step step = quiesce_step(ex, m);
	if (run_add(ex, m, cap_bps, &i) < 0) {
		fail_row(m, exec_now_ns(ex), "out of memory");
		commit_row(ex, m, "migration.failed");
		return;
	}
	struct running *r = &ex->run[i];
	if (step == Q_MIGRATE) {
		if (launch(ex, i, m) < 0) /* the row stays started: reconciled at a restart */
			remove_running(ex, i);
		return;
	}
	if (step == Q_REFUSE) {
		r->end = m->knobs.miss_aborts ? END_REFUSE : END_DEFER;
		snprintf(r->end_why, sizeof(r->end_why), "quiesce required: no agent connected");
		db_event_transient(ex->db, mig_event("migration.quiesced", m, exec_now_ns(ex)));
		end_row(ex, i, m);
		return;
	}
	m->quiesce_ns = exec_now_ns(ex);
	if (commit_row(ex, m, "migration.quiescing") < 0) {
		remove_running(ex, i);
		return;
	}
	r->phase = RUN_QUIESCING;
	r->quiesce_sent = 1;
	r->req_sent_ms = now_ms();
	int rc = agent_link_send(ex->agents, m->guest, "quiesce", m->knobs.quiesce_deadline_ms,
				 m->knobs.quiesce_deadline_ms + QUIESCE_GRACE_MS, &r->req_id);
	if (rc < 0) /* the agent went between the look and the send: settled at the next poll */
		log_warnx("migration %" PRId64 ": quiesce not sent to %s: %s", m->id, m->guest,
			  strerror(-rc));
}

/* Starts: every row to started in one transaction, then each on its way
 * (start_one), each step committed before the next. */
static int start_all(struct executor *ex, struct snapshot *s, const struct sched_plan *plan)
{
	int rc = db_begin(ex->db);
	for (size_t i = 0; rc == 0 && i < plan->n_starts; i++) {
		const struct sched_start *st = &plan->starts[i];
		struct db_migration *m = &s->queue[s->req_row[st->request]];
		snprintf(m->src, sizeof(m->src), "%s", s->hosts[st->src].name);
		snprintf(m->dst, sizeof(m->dst), "%s", s->hosts[st->dst].name);
		m->state = DB_MIG_STARTED;
		m->started_ns = s->now_ns;
		m->error[0] = '\0'; /* a deferral's reason: this attempt has its own */
		m->quiesce[0] = m->resume[0] = '\0';
		m->quiesce_ns = m->resume_ns = 0;
		m->quiesce_ms = m->resume_ms = m->drained_requests = m->drained_bytes = -1;
		rc = db_mig_update(ex->db, m);
		if (rc == 0 && *m->policy && s->now_ns > m->not_before_ns)
			rc = db_mig_delay_firing(ex->db, m->policy, m->queued_ns, m->not_before_ns,
						 s->now_ns - m->not_before_ns);
		if (rc == 0)
			rc = db_event(ex->db, mig_event("migration.started", m, s->now_ns));
	}
	if (rc == 0)
		rc = db_commit(ex->db);
	if (rc < 0) {
		db_rollback(ex->db);
		return rc;
	}
	ex->last_start_ns = s->now_ns;
	for (size_t i = 0; i < plan->n_starts; i++) {
		const struct sched_start *st = &plan->starts[i];
		start_one(ex, &s->queue[s->req_row[st->request]], st->bandwidth_cap_bps);
	}
	return 0;
}

/* ---- I/O lulls ---------------------------------------------------------- */

static struct lull_hold *find_hold(struct executor *ex, int64_t id)
{
	for (size_t i = 0; i < ex->n_holds; i++)
		if (ex->holds[i].id == id)
			return &ex->holds[i];
	return NULL;
}

static void drop_hold(struct executor *ex, struct lull_hold *h)
{
	*h = ex->holds[--ex->n_holds];
}

/* A row that gave up waiting: its reason, and it may go. */
static int lull_gave_up(struct db_migration *m, const struct lull_hold *h)
{
	m->lull_wait_ms = (int64_t)h->gave_up_after_ms;
	snprintf(m->lull_reason, sizeof(m->lull_reason), "gave up after %" PRIu64 " ms: I/O %.0f "
		 "B/s at or above %" PRIu64 " B/s", h->gave_up_after_ms, h->gave_up_rate,
		 m->knobs.io_lull_bps);
	return 1;
}

/*
 * Whether due row m may go to the planner now, by its guest's I/O: 1 yes
 * (its lull fields say how long it waited and why), 0 not yet (it stays
 * queued; the first time, the row says it waits, with an event).
 */
static int lull_allows(struct executor *ex, struct db_migration *m)
{
	struct agent_status st;
	uint64_t threshold = m->knobs.io_lull_bps, now = now_ms();
	if (!threshold)
		return 1;
	struct lull_hold *h = find_hold(ex, m->id);
	uint64_t waited = h ? now - h->since_ms : 0;
	if (h)
		h->seen = 1;
	/* kept (not dropped) until it starts, so that a round that cannot
	 * start it yet does not make it wait all over again */
	if (h && h->gave_up_after_ms)
		return lull_gave_up(m, h);
	if (!ex->agents || agent_link_status(ex->agents, m->guest, &st) < 0 || !st.connected ||
	    !st.has_activity) {
		m->lull_wait_ms = (int64_t)waited;
		if (h)
			snprintf(m->lull_reason, sizeof(m->lull_reason), "no agent: gone after %"
				 PRIu64 " ms of waiting", waited);
		else
			snprintf(m->lull_reason, sizeof(m->lull_reason), "no agent: did not wait");
		if (h)
			drop_hold(ex, h);
		return 1;
	}
	double rate = st.read_bps + st.write_bps;
	if (rate < (double)threshold) {
		m->lull_wait_ms = (int64_t)waited;
		if (h) {
			snprintf(m->lull_reason, sizeof(m->lull_reason), "lull after %" PRIu64 " ms: "
				 "I/O %.0f B/s below %" PRIu64 " B/s", waited, rate, threshold);
			drop_hold(ex, h);
		}
		return 1;
	}
	if (h && waited >= m->knobs.io_lull_wait_ms) {
		h->gave_up_after_ms = waited ? waited : 1;
		h->gave_up_rate = rate;
		return lull_gave_up(m, h);
	}
	if (!h) {
		if (GROW(ex->holds, ex->cap_holds, ex->n_holds + 1) < 0)
			return 1;
		ex->holds[ex->n_holds++] = (struct lull_hold){ .id = m->id, .since_ms = now, .seen = 1 };
		snprintf(m->lull_reason, sizeof(m->lull_reason), "waiting for an I/O lull: %.0f B/s "
			 "at or above %" PRIu64 " B/s", rate, threshold);
		if (commit_row(ex, m, "migration.waiting") < 0)
			log_warnx("migration %" PRId64 ": waiting not written", m->id);
		log_info("migration %" PRId64 " of %s waits for an I/O lull (%.0f B/s >= %" PRIu64
			 " B/s, at most %u ms)", m->id, m->guest, rate, threshold,
			 m->knobs.io_lull_wait_ms);
	}
	return 0;
}

/* Take the requests whose guests are busy out of the planner's input. */
static void hold_busy(struct executor *ex, struct snapshot *s)
{
	size_t w = 0;
	for (size_t i = 0; i < ex->n_holds; i++)
		ex->holds[i].seen = 0;
	for (size_t i = 0; i < s->n_req; i++) {
		if (!lull_allows(ex, &s->queue[s->req_row[i]]))
			continue;
		s->req[w] = s->req[i];
		s->req_row[w++] = s->req_row[i];
	}
	s->n_req = w;
	for (size_t i = ex->n_holds; i-- > 0;) /* rows no longer due: aborted, removed */
		if (!ex->holds[i].seen)
			drop_hold(ex, &ex->holds[i]);
	ex->next_lull_check_ms = now_ms() + LULL_CHECK_MS;
}

/* ---- resumes owed after a restart --------------------------------------- */

/* Record on the (finished) row what became of the resume owed to it. */
static void owed_done(struct executor *ex, const struct owed_resume *o, const char *what,
		      int64_t resume_ms)
{
	struct db_migration m;
	if (db_mig_get(ex->db, o->id, &m) < 0)
		return;
	snprintf(m.resume, sizeof(m.resume), "%s", what);
	m.resume_ms = resume_ms;
	if (!m.resume_ns)
		m.resume_ns = exec_now_ns(ex);
	if (commit_row(ex, &m, "migration.resumed") < 0)
		log_warnx("migration %" PRId64 ": resume after restart not written", o->id);
	log_info("migration %" PRId64 ": resume of %s after the restart: %s", o->id, o->guest,
		 what);
}

static void pay_owed(struct executor *ex)
{
	uint64_t now = now_ms();
	for (size_t i = ex->n_owed; i-- > 0;) {
		struct owed_resume *o = &ex->owed[i];
		struct agent_reply rep;
		int rc = 1, over = 0;
		if (!o->req_id && agent_connected(ex, o->guest) &&
		    agent_link_send(ex->agents, o->guest, "resume", 0, RESUME_WAIT_MS, &o->req_id) == 0)
			o->sent_ms = now;
		if (o->req_id && (rc = agent_link_reply(ex->agents, o->req_id, &rep)) != 0) {
			char what[DB_TEXT_MAX];
			if (rc == 1)
				snprintf(what, sizeof(what), "%s%.200s (after a restart)",
					 rep.ok ? "ok" : "error: ", rep.ok ? "" : rep.error);
			else
				snprintf(what, sizeof(what), "no reply after a restart (its watchdog "
					 "resumes)");
			owed_done(ex, o, what, rc == 1 ? (int64_t)rep.rtt_ms : -1);
			agent_link_forget(ex->agents, o->req_id);
			over = 1;
		} else if (!o->req_id && now >= o->until_ms) {
			owed_done(ex, o, "no-agent after a restart (its watchdog resumes)", -1);
			over = 1;
		}
		if (over)
			*o = ex->owed[--ex->n_owed];
	}
}

/* When to plan again without a change: the start gap, or the next
 * staggered row falling due. */
static void schedule_wake(struct executor *ex, int64_t now, const struct sched_plan *plan)
{
	int64_t at = db_mig_next_due_ns(ex->db, now);
	for (size_t i = 0; i < plan->n_waits; i++) {
		if (plan->waits[i].why != SCHED_WAIT_GAP)
			continue;
		int64_t gap_ns = (int64_t)ceil(plan->next_start_s * 1e9);
		if (!at || gap_ns < at)
			at = gap_ns;
		break;
	}
	ex->wake_at_ns = at;
}

static int plan_round(struct executor *ex, struct snapshot *s, struct sched_plan *plan)
{
	struct sched_input in;
	int rc = snapshot_take(ex->snap, ex->db, exec_now_ns(ex), s);
	if (rc < 0 || s->n_queue == 0) {
		ex->n_holds = 0;
		return rc;
	}
	hold_busy(ex, s);
	snapshot_input(s, &ex->o.limits, ex->last_start_ns, &in);
	if (s->n_req > 0 && (rc = sched_plan(&in, plan)) < 0)
		return rc;
	if (s->n_gone + plan->n_rejects > 0) {
		if ((rc = db_begin(ex->db)) < 0)
			return rc;
		rc = fail_unplaceable(ex, s, plan);
		rc = db_end(ex->db, rc);
	}
	if (rc == 0 && plan->n_starts > 0)
		rc = start_all(ex, s, plan);
	return rc;
}

/* CPU time of this thread: what a round costs, whatever else the machine
 * runs (a wall-clock figure would defer planning on a busy machine). */
static uint64_t thread_cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void plan_and_start(struct executor *ex)
{
	struct snapshot s;
	struct sched_plan plan = { 0 };
	uint64_t t0 = now_ns(), cpu0 = thread_cpu_us();
	ex->plan_ms = t0 / 1000000;
	ex->dirty = 0;
	int rc = plan_round(ex, &s, &plan);
	schedule_wake(ex, s.now_ns, &plan);
	log_debug("plan: %zu due, %zu hosts, %zu guests: %zu started, %zu refused, %zu wait,"
		  " %zu for a lull; %.2f ms", s.n_queue, s.n_hosts, s.n_guests, plan.n_starts,
		  plan.n_rejects + s.n_gone, plan.n_waits, ex->n_holds,
		  (double)(now_ns() - t0) / 1e6);
	if (rc < 0) {
		log_warnx("planning failed: %s; trying again in a second", strerror(-rc));
		int64_t retry = s.now_ns + 1000000000;
		if (!ex->wake_at_ns || retry < ex->wake_at_ns)
			ex->wake_at_ns = retry;
	}
	ex->plan_cost_us = thread_cpu_us() - cpu0;
	sched_plan_release(&plan);
	snapshot_release(&s);
}

/* A round of planning reads the queue and the cluster: at 100,000 guests
 * and thousands queued it takes milliseconds, and a request per queued
 * migration (an evacuation of many hosts) would plan once per request:
 * quadratic. So a round that took more than PLAN_DEFER_US of CPU waits for
 * ten times its own cost since the last one began, and requests meanwhile are
 * planned together: planning stays under a tenth of migd's time. Small
 * clusters (every round far below it) plan at once, as before. */
#define PLAN_DEFER_US 2000
static int plan_deferred(const struct executor *ex)
{
	return ex->plan_cost_us > PLAN_DEFER_US &&
	       now_ms() - ex->plan_ms < ex->plan_cost_us * 10 / 1000;
}

void exec_host_changed(struct executor *ex, uint64_t gen_before, const struct db_host *h)
{
	uint64_t hosts_gen, guests_gen;
	db_generations(ex->db, &hosts_gen, &guests_gen);
	snap_cache_host_changed(ex->snap, gen_before, hosts_gen, h);
}

void exec_tick(struct executor *ex)
{
	if (ex->n_run)
		poll_running(ex);
	if (ex->n_owed)
		pay_owed(ex);
	if (ex->n_holds && now_ms() >= ex->next_lull_check_ms)
		ex->dirty = 1; /* a hold that gave up is rechecked too: harmless, and rare */
	if ((ex->dirty || (ex->wake_at_ns && exec_now_ns(ex) >= ex->wake_at_ns)) &&
	    !plan_deferred(ex))
		plan_and_start(ex);
}
