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

#include "executor_internal.h"
#include "db_ckpt.h"
#include "htab.h"
#include "log.h"
#include "migd_proto.h"
#include "snapshot.h"
#include "util.h"

#define RESTART_REASON "interrupted by a migd restart"

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

void exec_batch(struct executor *ex, int begin)
{
	for (size_t i = 0; i < ex->n_be; i++)
		if (ex->be[i].hv && ex->be[i].ops->batch)
			ex->be[i].ops->batch(ex->be[i].hv, begin);
}

struct backend *backend_of(struct executor *ex, const char *uri)
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

json_t *mig_event(const char *type, const struct db_migration *m, int64_t now)
{
	json_t *ev = migd_event_new(type, now);
	json_object_update_new(ev, db_mig_json(m));
	return ev;
}

/* Write m, with its event, in a transaction of its own. */
int commit_row(struct executor *ex, const struct db_migration *m, const char *event)
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

void fail_row(struct db_migration *m, int64_t now, const char *why)
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
	o->id = id;
	qowed_init(&o->q, guest, OWED_RESUME_MS, 0);
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

/* A guest of the table, by name: the backend's guests are checked against
 * these in memory (a query per guest was 60% of a restart at 50,000). */
struct known_guest {
	struct hnode node;
	char name[DB_NAME_MAX];
};

struct guest_sync {
	struct executor *ex;
	struct db_host *hosts;  /* by id */
	size_t n_hosts, cap_hosts;
	struct known_guest *known;
	size_t n_known, cap_known;
	struct htab known_names; /* over known, built once they are all read */
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
	if (GROW(s->known, s->cap_known, s->n_known + 1) < 0)
		return -ENOMEM;
	snprintf(s->known[s->n_known++].name, DB_NAME_MAX, "%s", g->name);
	if (!be)
		return 0;
	int rc = be->ops->guest_info(be->hv, g->name, &info, err, sizeof(err));
	struct db_guest full = *g;
	struct db_op ck;
	if (rc == -ENOENT && g->job_id && db_guest_get(s->ex->db, g->name, &full) == 0 && *full.job &&
	    db_ckpt_latest(s->ex->db, full.job, &ck) == 0) {
		/* booting it afresh would break its job: a restore from the
		 * job's checkpoint brings it back (ckpt.c) */
		log_warnx("guest %s: runs nowhere; left for a restore of job %s (latest checkpoint %"
			  PRId64 ")", g->name, full.job, ck.id);
		db_op_clear(&ck);
		return 0;
	}
	if (rc == -ENOENT) {
		full = *g;
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

static int known_index(struct guest_sync *s)
{
	for (size_t i = 0; i < s->n_known; i++)
		if (htab_insert(&s->known_names, &s->known[i].node, hash_str(s->known[i].name)) < 0)
			return -ENOMEM;
	return 0;
}

static int is_known(const struct guest_sync *s, const char *name)
{
	uint64_t hash = hash_str(name);
	for (struct hnode *n = htab_bucket(&s->known_names, hash); n; n = n->next)
		if (n->hash == hash &&
		    strcmp(container_of(n, struct known_guest, node)->name, name) == 0)
			return 1;
	return 0;
}

/* Guests the backend runs on our hosts that the table does not know (a
 * crash between creating one and committing its row): adopted. Without
 * the names in memory (out of memory), each is looked up in the table. */
static void adopt_unknown_guests(struct executor *ex, const struct db_host *h,
				 const struct guest_sync *s, int have_known)
{
	struct backend *be = backend_of(ex, h->uri);
	struct hv_guest_info *list = NULL;
	size_t n = 0;
	char err[256];
	if (!be || be->ops->list_guests(be->hv, h->name, &list, &n, err, sizeof(err)) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct db_guest g = { .rank = -1 };
		if (have_known ? is_known(s, list[i].name)
			       : db_guest_get(ex->db, list[i].name, &g) == 0)
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
	int have_known = 0;
	if (db_host_scan(ex->db, sync_collect_host, &s) < 0 ||
	    db_guest_scan(ex->db, sync_guest, &s) < 0)
		log_warnx("guests: could not compare every guest with the backend");
	else
		have_known = known_index(&s) == 0;
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
		adopt_unknown_guests(ex, &s.hosts[i], &s, have_known);
	htab_release(&s.known_names);
	free(s.known);
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
	if (rc == 0 && r->q && qgroup_member(r->q, 0)->quiesce_sent)
		owe_resume(ex, m.id, m.guest);
	return rc;
}

void remove_running(struct executor *ex, size_t i)
{
	struct running *r = &ex->run[i];
	if (r->launched && r->be->ops->migrate_forget)
		r->be->ops->migrate_forget(r->be->hv, r->hv_id);
	qgroup_free(r->q);
	ex->run[i] = ex->run[--ex->n_run];
	ex->dirty = 1; /* a slot and maybe a job freed up */
}

/* ---- the agent phases ------------------------------------------------- */

/* 1 when guest's agent is connected. */
int agent_connected(struct executor *ex, const char *guest)
{
	struct agent_status st;
	return ex->agents && agent_link_status(ex->agents, guest, &st) == 0 && st.connected;
}

/*
 * Ask for a resume after a quiesce and let r end once it is answered
 * (poll_resuming); the row says so before the agent hears it. When the
 * agent is gone the row ends now: its watchdog resumes the guest.
 */
int start_resume(struct executor *ex, size_t i, struct db_migration *m)
{
	struct running *r = &ex->run[i];
	m->resume_ns = exec_now_ns(ex);
	m->resume[0] = '\0';
	int rc = commit_row(ex, m, "migration.resuming");
	if (rc < 0)
		return rc;
	r->phase = RUN_RESUMING;
	if (r->q && qgroup_member(r->q, 0)->quiesce_sent) {
		qgroup_resume(r->q);
		const struct qgroup_member *qm = qgroup_member(r->q, 0);
		if (qm->req)
			return 0;
		snprintf(m->resume, sizeof(m->resume), "%s", qm->resume);
		return 1;
	}
	snprintf(m->resume, sizeof(m->resume), "no-agent (its watchdog resumes)");
	return 1; /* over: the caller ends the row */
}

/* End r's row as decided, with m the row as it stands; r leaves the list. */
int end_row(struct executor *ex, size_t i, struct db_migration *m)
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
	struct db_migration m;
	if (!qgroup_poll(r->q) || db_mig_get(ex->db, r->id, &m) < 0)
		return;
	const struct qgroup_member *qm = qgroup_member(r->q, 0);
	m.resume_ms = qm->resume_ms;
	snprintf(m.resume, sizeof(m.resume), "%s", qm->resume);
	if (strcmp(m.resume, "ok") != 0)
		log_warnx("migration %" PRId64 ": resume of %s: %s", m.id, m.guest, m.resume);
	json_t *ev = mig_event("migration.resumed", &m, exec_now_ns(ex));
	db_event_transient(ex->db, ev); /* the row's end event carries it too */
	end_row(ex, i, &m);
}

/*
 * The quiesce of r answered, missed its deadline or the agent went: the
 * outcome goes on the row and decides what follows: migrate (ok, or
 * best-effort), or resume and then defer or refuse (required). An abort
 * asked meanwhile resumes and aborts.
 */
static void poll_quiescing(struct executor *ex, size_t i)
{
	struct running *r = &ex->run[i];
	struct db_migration m;
	int settled = qgroup_poll(r->q);
	if ((!settled && !r->abort_requested) || db_mig_get(ex->db, r->id, &m) < 0)
		return;
	if (!settled)
		qgroup_cancel(r->q, "aborted while quiescing");
	const struct qgroup_member *qm = qgroup_member(r->q, 0);
	int ok = strcmp(qm->quiesce, "ok") == 0;
	m.quiesce_ms = qm->quiesce_ms;
	m.drained_requests = qm->drained_requests;
	m.drained_bytes = qm->drained_bytes;
	snprintf(m.quiesce, sizeof(m.quiesce), "%s", qm->quiesce);
	if (strcmp(m.quiesce, "no-agent") == 0) /* gone between the look and the send */
		snprintf(m.quiesce, sizeof(m.quiesce), "error: agent gone");
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
	if (start_resume(ex, i, &m) == 1)
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
	if (!r->q || (rc = start_resume(ex, i, &m)) == 1)
		end_row(ex, i, &m);
}

static void poll_running(struct executor *ex)
{
	/* The rows of one pass go in one group commit: what they record has
	 * already happened in the backend (an end, a switch-over begun), so a
	 * crash before the commit loses nothing the next start's
	 * reconciliation does not find again; with 64 migrations running,
	 * one fsync per pass instead of one per row keeps the API answering. */
	int batch = ex->n_run > 1 && db_batch_begin(ex->db) == 0;
	/* backwards: removal swaps the last entry into the freed place */
	for (size_t i = ex->n_run; i-- > 0;)
		poll_one(ex, i);
	if (batch)
		db_batch_end(ex->db);
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
	log_info("migration %" PRId64 ": resume of %s after the restart: %s", o->id, o->q.guest,
		 what);
}

static void pay_owed(struct executor *ex)
{
	for (size_t i = ex->n_owed; i-- > 0;) {
		struct owed_resume *o = &ex->owed[i];
		if (qowed_poll(ex->agents, &o->q) == 0)
			continue;
		char what[DB_TEXT_MAX];
		if (strncmp(o->q.outcome, "ok", 2) == 0 || strncmp(o->q.outcome, "error", 5) == 0)
			snprintf(what, sizeof(what), "%s (after a restart)", o->q.outcome);
		else
			snprintf(what, sizeof(what), "%s after a restart (its watchdog resumes)",
				 o->q.outcome);
		owed_done(ex, o, what, o->q.ms);
		*o = ex->owed[--ex->n_owed];
	}
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
