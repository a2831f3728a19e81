/*
 * ckpt: see ckpt.h. This file: the shared machinery of operations (rows,
 * tasks, owed resumes), checkpoints from request to manifest, their undo,
 * retention and the reconciliation after a restart. ckpt_restore.c:
 * restores and failure detection.
 */
#include "ckpt_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "migd_proto.h"
#include "sfs.h"
#include "util.h"

#define RESTART_REASON "interrupted by a migd restart"

/* ---- the shared machinery ---- */

int64_t ck_now(struct ckpt *ck)
{
	return exec_now_ns(ck->ex);
}

int ck_store(struct ckpt *ck, char *err, size_t errlen)
{
	if (ck->store)
		return 0;
	int rc = ckpt_store_open(ck->o.store, ck->o.sfs_conf, &ck->store, err, errlen);
	if (rc < 0)
		log_warnx("checkpoint store: %s", err);
	return rc;
}

struct op *ck_op_new(struct ckpt *ck)
{
	if (ck->n_ops == ck->cap_ops) {
		size_t cap = ck->cap_ops ? 2 * ck->cap_ops : 8;
		struct op **p = realloc(ck->ops, cap * sizeof(*p));
		if (!p)
			return NULL;
		ck->ops = p;
		ck->cap_ops = cap;
	}
	struct op *op = calloc(1, sizeof(*op));
	if (op) {
		op->ck = ck;
		ck->ops[ck->n_ops++] = op;
	}
	return op;
}

void ck_op_free(struct op *op)
{
	if (!op)
		return;
	ckpt_task_free(op->task);
	for (size_t i = 0; i < op->n; i++) {
		struct opguest *g = &op->g[i];
		/* a save still going at a shutdown is left to end by itself (its
		 * migd-stream reads on; the restart settles the row); a load is
		 * stopped (the restart kills the half-loaded QEMU anyway) */
		ckpt_stream_free(g->stream);
		if (g->launched && !g->be_done && op->row.kind == DB_OP_RESTORE &&
		    g->ops->migrate_abort) {
			char err[128];
			g->ops->migrate_abort(g->hv, g->hv_id, err, sizeof(err));
		}
		if (g->launched && g->ops->migrate_forget && (g->be_done || op->row.kind ==
								   DB_OP_RESTORE))
			g->ops->migrate_forget(g->hv, g->hv_id);
		free(g->config);
	}
	free(op->g);
	free(op->old);
	qgroup_free(op->q);
	db_op_clear(&op->row);
	free(op);
}

static const char *kind_name(const struct op *op)
{
	return op->row.kind == DB_OP_CHECKPOINT ? "checkpoint" : "restore";
}

json_t *ck_guests_json(const struct op *op)
{
	json_t *a = json_array();
	json_t *q = op->q ? qgroup_json(op->q) : NULL;
	for (size_t i = 0; i < op->n; i++) {
		const struct opguest *g = &op->g[i];
		json_t *o = json_pack("{s:s, s:s, s:I}", "name", g->name, "host", g->host,
				      "memory_bytes", (json_int_t)g->memory_bytes);
		if (g->rank >= 0)
			json_object_set_new(o, "rank", json_integer(g->rank));
		if (g->bytes)
			json_object_set_new(o, "bytes", json_integer((json_int_t)g->bytes));
		if (*g->sha)
			json_object_set_new(o, "sha256", json_string(g->sha));
		if (op->row.kind == DB_OP_CHECKPOINT || *g->sha) {
			char img[DB_NAME_MAX + 8];
			snprintf(img, sizeof(img), "%s.img", g->name);
			json_object_set_new(o, "image", json_string(img));
		}
		if (g->be_done && *g->prog.mode)
			json_object_set_new(o, "mode", json_string(g->prog.mode));
		if (g->be_done && op->row.kind == DB_OP_CHECKPOINT)
			json_object_set_new(o, "pause_ms", json_integer((json_int_t)g->prog.pause_ms));
		if (g->be_done) {
			json_object_set_new(o, "backend_ms",
					    json_integer((json_int_t)g->prog.total_time_ms));
			json_object_set_new(o, "backend_bytes",
					    json_integer((json_int_t)g->prog.transferred_bytes));
		}
		if (*g->err)
			json_object_set_new(o, "error", json_string(g->err));
		json_t *qm = q ? json_array_get(q, i) : NULL;
		if (qm) {
			json_object_del(qm, "guest");
			json_object_update(o, qm);
		}
		json_array_append_new(a, o);
	}
	json_decref(q);
	return a;
}

static void put_ms(json_t *o, const char *key, uint64_t from, uint64_t to)
{
	if (from && to && to >= from)
		json_object_set_new(o, key, json_integer((json_int_t)(to - from)));
}

/* The row's body from what the operation knows now. */
static void body_update(struct op *op)
{
	json_t *b = op->row.body;
	json_object_set_new(b, "guests", ck_guests_json(op));
	json_object_set_new(b, "data_path", json_string(op->data_path));
	json_object_set_new(b, "store_path", json_string(op->rel));
	if (op->row.kind == DB_OP_RESTORE) {
		put_ms(b, "verify_ms", op->t_start, op->t_paused);
		put_ms(b, "load_ms", op->t_snapshot, op->t_resumed);
		put_ms(b, "total_ms", op->t_start, op->t_end);
		return;
	}
	json_t *ph = json_object();
	uint64_t pause_at = op->t_quiesced ? op->t_quiesced : op->t_start;
	put_ms(ph, "quiesce_ms", op->t_start, op->t_quiesced);
	put_ms(ph, "pause_ms", pause_at, op->t_paused);
	put_ms(ph, "snapshot_ms", op->t_paused, op->t_snapshot);
	put_ms(ph, "capture_ms", op->t_snapshot, op->t_captured);
	put_ms(ph, "resume_ms", op->t_captured, op->t_agents);
	put_ms(ph, "write_ms", op->t_snapshot, op->t_written);
	put_ms(ph, "total_ms", op->t_start, op->t_end);
	json_object_set_new(b, "phases", ph);
	/* what the job saw: its vCPUs stopped from the first pause to the
	 * resume; its sfs I/O held from the quiesce to the agents' resume */
	put_ms(b, "job_pause_ms", pause_at, op->t_resumed);
	put_ms(b, "job_lost_ms", op->t_start, op->t_agents ? op->t_agents : op->t_resumed);
	uint64_t bytes = 0;
	int bg = 0, paused = 0;
	for (size_t i = 0; i < op->n; i++) {
		bytes += op->g[i].bytes;
		bg += strcmp(op->g[i].prog.mode, "background") == 0;
		paused += strcmp(op->g[i].prog.mode, "paused") == 0;
	}
	if (bytes) {
		json_object_set_new(b, "bytes", json_integer((json_int_t)bytes));
		if (op->t_written > op->t_snapshot)
			json_object_set_new(b, "mb_s", json_real((double)bytes / 1e6 /
				((double)(op->t_written - op->t_snapshot) / 1e3)));
	}
	if (bg || paused)
		json_object_set_new(b, "mode", json_string(bg && paused ? "mixed" : bg ? "background"
												: "paused"));
}

int ck_commit(struct ckpt *ck, struct op *op, const char *event)
{
	body_update(op);
	int rc = db_begin(ck->db);
	if (rc == 0)
		rc = db_op_save(ck->db, &op->row);
	if (rc == 0 && event) {
		json_t *ev = migd_event_new(event, ck_now(ck));
		json_object_update_new(ev, ckpt_op_json(&op->row));
		rc = db_event(ck->db, ev);
	}
	rc = db_end(ck->db, rc);
	if (rc < 0)
		log_warnx("%s %" PRId64 ": could not write its row", kind_name(op), op->row.id);
	return rc;
}

void ck_fail(struct ckpt *ck, struct op *op, const char *fmt, ...)
{
	(void)ck;
	if (*op->why)
		return; /* the first cause is the one to tell */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(op->why, sizeof(op->why), fmt, ap);
	va_end(ap);
	log_warnx("%s %" PRId64 " of %s: %s", kind_name(op), op->row.id, op->row.job, op->why);
}

int ck_task(struct ckpt *ck, struct op *op, ckpt_task_fn fn)
{
	(void)ck;
	op->task_rc = 0;
	op->task_err[0] = '\0';
	int rc = ckpt_task_start(fn, op, &op->task);
	if (rc < 0)
		snprintf(op->task_err, sizeof(op->task_err), "thread: %s", strerror(-rc));
	return rc;
}

/* 1 when op's task ended (its result in task_rc / task_err). */
int ck_task_done(struct op *op)
{
	if (!op->task)
		return 1;
	if (!ckpt_task_poll(op->task, &op->task_rc, op->task_err, sizeof(op->task_err)))
		return 0;
	ckpt_task_free(op->task);
	op->task = NULL;
	return 1;
}

void ck_owe_resume(struct ckpt *ck, const char *guest, int reconnect)
{
	struct qowed *p = realloc(ck->owed, (ck->n_owed + 1) * sizeof(*p));
	if (!p) {
		log_warnx("out of memory: %s's agent is left to its watchdog", guest);
		return;
	}
	ck->owed = p;
	qowed_init(&ck->owed[ck->n_owed++], guest, CKPT_OWED_RESUME_MS, reconnect);
}

/* Send owed resumes to agents that are back; drop settled ones. */
static void owed_tick(struct ckpt *ck)
{
	struct agent_link *al = exec_agents(ck->ex);
	for (size_t i = ck->n_owed; i-- > 0;) {
		struct qowed *o = &ck->owed[i];
		if (qowed_poll(al, o) == 0)
			continue;
		log_info("owed resume of %s%s: %s", o->guest, o->reconnect ? " (reconnect)" : "",
			 o->outcome);
		ck->owed[i] = ck->owed[--ck->n_owed];
	}
}

int ck_guest_driver(struct ckpt *ck, struct opguest *g, char *err, size_t errlen)
{
	return exec_driver_of_host(ck->ex, g->host, &g->ops, &g->hv, err, errlen);
}

/* Operations whose row is final (a retention still running after it) hold
 * nothing. */
const struct op *ck_op_of_guest(const struct ckpt *ck, const char *guest)
{
	for (size_t i = 0; i < ck->n_ops; i++)
		for (size_t j = 0; !db_op_state_final(ck->ops[i]->row.state) && j < ck->ops[i]->n;
		     j++)
			if (strcmp(ck->ops[i]->g[j].name, guest) == 0)
				return ck->ops[i];
	return NULL;
}

const struct op *ck_op_of_job(const struct ckpt *ck, const char *job)
{
	for (size_t i = 0; i < ck->n_ops; i++)
		if (strcmp(ck->ops[i]->row.job, job) == 0 && !db_op_state_final(ck->ops[i]->row.state))
			return ck->ops[i];
	return NULL;
}

/* exec_hold_fn: a guest in an operation cannot be queued for migration. */
static const char *hold_fn(void *arg, const char *guest)
{
	static char buf[64];
	const struct op *op = ck_op_of_guest(arg, guest);
	if (!op)
		return NULL;
	snprintf(buf, sizeof(buf), "%s %" PRId64, kind_name(op), op->row.id);
	return buf;
}

/* Write op's new row (the checkpoint's store path follows from its id) and
 * its queued event; on failure the op is dropped. */
int ck_op_insert(struct ckpt *ck, struct op *op, char *err, size_t errlen)
{
	int rc = db_begin(ck->db);
	if (rc == 0)
		rc = db_op_add(ck->db, &op->row);
	if (rc == 0 && op->row.kind == DB_OP_CHECKPOINT) {
		snprintf(op->rel, sizeof(op->rel), "%s/%" PRId64, op->row.job, op->row.id);
		body_update(op);
		rc = db_op_save(ck->db, &op->row);
	}
	if (rc == 0) {
		char type[32];
		snprintf(type, sizeof(type), "%s.queued", kind_name(op));
		json_t *ev = migd_event_new(type, ck_now(ck));
		json_object_update_new(ev, ckpt_op_json(&op->row));
		rc = db_event(ck->db, ev);
	}
	rc = db_end(ck->db, rc);
	if (rc < 0) {
		snprintf(err, errlen, "could not write the %s's row", kind_name(op));
		ck->n_ops--;
		ck_op_free(op);
	}
	return rc;
}

/* ---- life cycle ---- */

int ckpt_new(struct db *db, struct executor *ex, const struct ckpt_opts *o, struct ckpt **out,
	     char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	struct ckpt *ck = calloc(1, sizeof(*ck));
	if (!ck)
		return -ENOMEM;
	ck->db = db;
	ck->ex = ex;
	ck->o = *o;
	if (!*ck->o.store)
		snprintf(ck->o.store, sizeof(ck->o.store), "sfs:/.migd/checkpoints");
	exec_set_hold(ex, hold_fn, ck);
	*out = ck;
	return 0;
}

void ckpt_free(struct ckpt *ck)
{
	if (!ck)
		return;
	exec_set_hold(ck->ex, NULL, NULL);
	for (size_t i = 0; i < ck->n_ops; i++)
		ck_op_free(ck->ops[i]);
	free(ck->ops);
	free(ck->w);
	free(ck->owed);
	ckpt_store_close(ck->store);
	free(ck);
}

json_t *ckpt_op_json(const struct db_op *op)
{
	json_t *o = json_object();
	json_object_update(o, op->body);
	json_object_set_new(o, "id", json_integer(op->id));
	json_object_set_new(o, "job", json_string(op->job));
	json_object_set_new(o, "state", json_string(op->state));
	if (*op->policy)
		json_object_set_new(o, "policy", json_string(op->policy));
	if (*op->reason)
		json_object_set_new(o, "reason", json_string(op->reason));
	json_object_set_new(o, "requested_ns", json_integer(op->requested_ns));
	if (op->ended_ns)
		json_object_set_new(o, "ended_ns", json_integer(op->ended_ns));
	if (op->kind == DB_OP_CHECKPOINT && *op->snapshot)
		json_object_set_new(o, "snapshot", json_string(op->snapshot));
	if (op->kind == DB_OP_RESTORE)
		json_object_set_new(o, "checkpoint", json_integer(op->checkpoint_id));
	if (*op->error)
		json_object_set_new(o, "error", json_string(op->error));
	return o;
}

/* ---- a checkpoint's request ---- */

struct collect {
	struct opguest *g;
	size_t n, cap;
	int rc;
};

static int collect_guest(void *arg, const struct db_guest *dg)
{
	struct collect *c = arg;
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 8;
		struct opguest *p = realloc(c->g, cap * sizeof(*p));
		if (!p)
			return c->rc = -ENOMEM;
		c->g = p;
		c->cap = cap;
	}
	struct opguest *g = &c->g[c->n++];
	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "%s", dg->name);
	snprintf(g->host, sizeof(g->host), "%s", dg->host);
	g->memory_bytes = dg->memory_bytes;
	g->rank = dg->job_id ? dg->rank : -1;
	return 0;
}

/* The guests of a request, each checked: -ENOENT, -EBUSY, -EOPNOTSUPP. */
static int request_guests(struct ckpt *ck, const char *job, const char *const *names, size_t n,
			  struct collect *c, char *err, size_t errlen)
{
	int rc = 0;
	if (names) {
		for (size_t i = 0; rc == 0 && i < n; i++) {
			struct db_guest dg;
			rc = db_guest_get(ck->db, names[i], &dg);
			if (rc == -ENOENT)
				snprintf(err, errlen, "guest \"%s\": no such guest", names[i]);
			if (rc == 0)
				rc = collect_guest(c, &dg);
		}
	} else {
		char dp[8];
		rc = db_job_data_path(ck->db, job, dp, sizeof(dp));
		if (rc == -ENOENT)
			snprintf(err, errlen, "job \"%s\": no such job", job);
		if (rc == 0)
			rc = db_guest_list(ck->db, NULL, job, collect_guest, c);
		if (rc == 0 && c->rc)
			rc = c->rc;
		if (rc == 0 && c->n == 0) {
			snprintf(err, errlen, "job \"%s\" has no guests", job);
			rc = -EINVAL;
		}
	}
	for (size_t i = 0; rc == 0 && i < c->n; i++) {
		struct opguest *g = &c->g[i];
		struct db_migration m;
		const struct op *other = ck_op_of_guest(ck, g->name);
		if (db_mig_active_for_guest(ck->db, g->name, &m) == 0) {
			snprintf(err, errlen, "guest %s is in migration %" PRId64 " (%s)", g->name, m.id,
				 db_mig_state_name(m.state));
			rc = -EBUSY;
		} else if (other) {
			snprintf(err, errlen, "guest %s is in %s %" PRId64, g->name, kind_name(other),
				 other->row.id);
			rc = -EBUSY;
		} else if ((rc = ck_guest_driver(ck, g, err, errlen)) == 0 &&
			   (!g->ops->save_start || !g->ops->guest_pause || !g->ops->guest_resume)) {
			snprintf(err, errlen, "guest %s: backend %s cannot checkpoint", g->name,
				 g->ops->scheme);
			rc = -EOPNOTSUPP;
		}
	}
	return rc;
}

int ckpt_create(struct ckpt *ck, const struct ckpt_request *rq, struct db_op *out, char *err,
		size_t errlen)
{
	struct collect c = { 0 };
	char job[DB_NAME_MAX] = "";
	if (!rq->job && (!rq->guests || !rq->n_guests)) {
		snprintf(err, errlen, "name a job or guests");
		return -EINVAL;
	}
	int rc = request_guests(ck, rq->job, rq->job ? NULL : rq->guests, rq->n_guests, &c, err,
				errlen);
	if (rc == 0 && (rc = ck_store(ck, err, errlen)) < 0)
		rc = -EIO;
	if (rc < 0) {
		free(c.g);
		return rc;
	}
	if (rq->job) {
		snprintf(job, sizeof(job), "%s", rq->job);
	} else { /* guests: their job when they share one, else the first guest's name */
		struct db_guest dg;
		if (db_guest_get(ck->db, c.g[0].name, &dg) == 0 && *dg.job)
			snprintf(job, sizeof(job), "%s", dg.job);
		for (size_t i = 1; *job && i < c.n; i++)
			if (db_guest_get(ck->db, c.g[i].name, &dg) < 0 || strcmp(dg.job, job) != 0)
				job[0] = '\0';
		if (!*job)
			snprintf(job, sizeof(job), "%s", c.g[0].name);
	}
	struct op *op = ck_op_new(ck);
	if (!op) {
		free(c.g);
		return -ENOMEM;
	}
	op->g = c.g;
	op->n = c.n;
	op->row.kind = DB_OP_CHECKPOINT;
	snprintf(op->row.job, sizeof(op->row.job), "%s", job);
	snprintf(op->row.state, sizeof(op->row.state), "queued");
	snprintf(op->row.policy, sizeof(op->row.policy), "%s", rq->policy ? rq->policy : "");
	snprintf(op->row.reason, sizeof(op->row.reason), "%s",
		 rq->reason ? rq->reason : rq->policy ? "policy" : "manual");
	op->row.requested_ns = ck_now(ck);
	op->row.body = json_object();
	if (db_job_data_path(ck->db, job, op->data_path, sizeof(op->data_path)) < 0)
		op->data_path[0] = '\0';
	op->background = ck->o.background;
	op->keep = rq->keep ? rq->keep : ck->o.keep;
	const struct db_mig_knobs *k = exec_knobs_default(ck->ex);
	op->required = k->quiesce == DB_QUIESCE_REQUIRED;
	op->deadline_ms = k->quiesce == DB_QUIESCE_OFF ? 0 : k->quiesce_deadline_ms;
	op->phase = P_QUIESCE;
	json_object_set_new(op->row.body, "store", json_string(ckpt_store_uri(ck->store)));
	json_object_set_new(op->row.body, "quiesce", json_string(db_quiesce_mode_name(k->quiesce)));
	json_object_set_new(op->row.body, "keep", json_integer(op->keep));
	body_update(op);
	if ((rc = ck_op_insert(ck, op, err, errlen)) < 0)
		return rc;
	op->t_start = now_ms();
	log_info("checkpoint %" PRId64 " of %s queued: %zu guests, %s", op->row.id, job, op->n,
		 op->row.reason);
	if (out) {
		*out = op->row;
		out->body = json_incref(op->row.body);
	}
	return 0;
}

/* ---- the steps of a checkpoint ---- */

/* A task's own sfs connection (the store's is the synchronous calls'). */
static int sfs_open_task(struct ckpt *ck, struct sfs **fs, char *err, size_t errlen)
{
	if (!*ck->o.sfs_conf) {
		snprintf(err, errlen, "no sfs.conf (migd.conf checkpoint.sfs_conf)");
		return -EINVAL;
	}
	int rc = sfs_connect(ck->o.sfs_conf, NULL, fs);
	if (rc < 0)
		snprintf(err, errlen, "sfs %s: %s", ck->o.sfs_conf,
			 *sfs_last_error() ? sfs_last_error() : strerror(-rc));
	return rc;
}

static int snap_create_task(void *arg, char *err, size_t errlen)
{
	struct op *op = arg;
	struct sfs *fs;
	int rc = sfs_open_task(op->ck, &fs, err, errlen);
	if (rc < 0)
		return rc;
	rc = sfs_snapshot_create(fs, op->row.snapshot, op->data_path, NULL);
	if (rc < 0)
		snprintf(err, errlen, "sfs snapshot %s of %s: %s", op->row.snapshot, op->data_path,
			 *sfs_last_error() ? sfs_last_error() : sfs_strerror(rc));
	sfs_disconnect(fs);
	return rc;
}

/* Remove a checkpoint's snapshot (name) and images (rel); missing is fine. */
static int remove_stored(struct ckpt *ck, const char *snapshot, const char *rel, char *err,
			 size_t errlen)
{
	int rc = 0;
	if (snapshot && *snapshot) {
		struct sfs *fs;
		rc = sfs_open_task(ck, &fs, err, errlen);
		if (rc == 0) {
			rc = sfs_snapshot_rm(fs, snapshot);
			if (rc == -ENOENT)
				rc = 0;
			if (rc < 0)
				snprintf(err, errlen, "sfs snapshot rm %s: %s", snapshot,
					 *sfs_last_error() ? sfs_last_error() : sfs_strerror(rc));
			sfs_disconnect(fs);
		}
	}
	if (rc == 0 && rel && *rel && ck_store(ck, err, errlen) == 0)
		rc = ckpt_store_rmtree(ck->store, rel, err, errlen);
	return rc;
}

static int undo_store_task(void *arg, char *err, size_t errlen)
{
	struct op *op = arg;
	return remove_stored(op->ck, op->row.snapshot, op->rel, err, errlen);
}

static json_t *manifest_json(struct ckpt *ck, const struct op *op)
{
	json_t *m = json_pack("{s:s, s:I, s:s, s:I, s:s, s:s, s:s}", "format", CKPT_FORMAT, "id",
			      (json_int_t)op->row.id, "job", op->row.job, "created_ns",
			      (json_int_t)op->row.requested_ns, "snapshot", op->row.snapshot,
			      "data_path", op->data_path, "store", ckpt_store_uri(ck->store));
	json_t *gs = json_array();
	for (size_t i = 0; i < op->n; i++) {
		const struct opguest *g = &op->g[i];
		char img[DB_NAME_MAX + 8];
		snprintf(img, sizeof(img), "%s.img", g->name);
		json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:I, s:s, s:s, s:s}", "name", g->name,
				      "host", g->host, "memory_bytes", (json_int_t)g->memory_bytes,
				      "image", img, "bytes", (json_int_t)g->bytes, "sha256", g->sha,
				      "backend", g->ops->scheme, "mode", g->prog.mode);
		if (g->rank >= 0)
			json_object_set_new(o, "rank", json_integer(g->rank));
		if (g->config)
			json_object_set_new(o, "config", json_string(g->config));
		json_array_append_new(gs, o);
	}
	json_object_set_new(m, "guests", gs);
	json_t *cut = json_object_get(op->row.body, "cut_ns");
	if (json_is_integer(cut))
		json_object_set(m, "cut_ns", cut);
	return m;
}

static int manifest_task(void *arg, char *err, size_t errlen)
{
	struct op *op = arg;
	for (size_t i = 0; i < op->n; i++) { /* images a backend wrote itself */
		struct opguest *g = &op->g[i];
		char rel[PATH_MAX];
		snprintf(rel, sizeof(rel), "%s/%s.img", op->rel, g->name);
		if (g->by_path) {
			int rc = ckpt_store_digest(op->ck->store, rel, &g->bytes, g->sha, err, errlen);
			if (rc < 0)
				return rc;
		}
	}
	json_t *m = manifest_json(op->ck, op);
	char *text = json_dumps(m, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(m);
	if (!text)
		return -ENOMEM;
	char rel[PATH_MAX];
	snprintf(rel, sizeof(rel), "%s/%s", op->rel, CKPT_MANIFEST);
	int rc = ckpt_store_put(op->ck->store, rel, text, strlen(text), err, errlen);
	free(text);
	return rc;
}

/* Retention: the job's completed checkpoints beyond op->keep (newest
 * first, op's own counted) go: stored data in the task, rows after. */
struct old_list {
	int64_t id[64];
	char snap[64][160];
	char rel[64][PATH_MAX];
	size_t n;
	unsigned seen, keep;
};

static int collect_old(void *arg, const struct db_op *row)
{
	struct old_list *l = arg;
	if (++l->seen <= l->keep || l->n == 64)
		return 0;
	l->id[l->n] = row->id;
	snprintf(l->snap[l->n], sizeof(l->snap[l->n]), "%s", row->snapshot);
	const char *rel = json_string_value(json_object_get(row->body, "store_path"));
	snprintf(l->rel[l->n], sizeof(l->rel[l->n]), "%s", rel ? rel : "");
	l->n++;
	return 0;
}

static int keep_task(void *arg, char *err, size_t errlen)
{
	struct op *op = arg;
	struct old_list *keep_list = op->old;
	int rc = 0;
	for (size_t i = 0; i < keep_list->n; i++) {
		int r = remove_stored(op->ck, keep_list->snap[i], keep_list->rel[i], err, errlen);
		if (r < 0) {
			keep_list->id[i] = 0; /* keep its row: its data is still there */
			rc = r;
		}
	}
	return rc;
}

void ck_set_state(struct ckpt *ck, struct op *op, const char *state)
{
	snprintf(op->row.state, sizeof(op->row.state), "%s", state);
	char ev[48];
	snprintf(ev, sizeof(ev), "%s.%s", kind_name(op), state);
	ck_commit(ck, op, ev);
}

static void to_undo(struct ckpt *ck, struct op *op)
{
	(void)ck;
	op->phase = P_UNDO_SAVES;
}

/* Every paused guest runs again; 0 or the first error (named). */
static int resume_guests(struct ckpt *ck, struct op *op)
{
	int ret = 0;
	for (size_t i = 0; i < op->n; i++) {
		struct opguest *g = &op->g[i];
		char err[256] = "";
		if (!g->paused)
			continue;
		int rc = g->ops->guest_resume(g->hv, g->name, err, sizeof(err));
		if (rc < 0) {
			log_warnx("checkpoint %" PRId64 ": resume of %s: %s", op->row.id, g->name, err);
			if (!ret)
				ck_fail(ck, op, "resume of %s: %s", g->name, err);
			ret = rc;
			continue;
		}
		g->paused = 0;
	}
	return ret;
}

static void step_quiesce(struct ckpt *ck, struct op *op)
{
	if (!op->q) {
		ck_set_state(ck, op, "quiescing");
		const char **names = calloc(op->n, sizeof(*names));
		for (size_t i = 0; names && i < op->n; i++)
			names[i] = op->g[i].name;
		op->q = names ? qgroup_new(op->deadline_ms ? exec_agents(ck->ex) : NULL, names, op->n)
			      : NULL;
		free(names);
		if (!op->q) {
			ck_fail(ck, op, "out of memory");
			to_undo(ck, op);
			return;
		}
		if (op->deadline_ms)
			qgroup_quiesce(op->q, op->deadline_ms);
		else
			qgroup_quiesce(op->q, 0); /* agents off: every outcome no-agent */
	}
	if (!qgroup_poll(op->q))
		return;
	char why[256];
	if (op->deadline_ms && !qgroup_ok(op->q, op->required, why, sizeof(why))) {
		if (op->required) {
			ck_fail(ck, op, "quiesce required: %s", why);
			to_undo(ck, op);
			return;
		}
		log_info("checkpoint %" PRId64 ": quiesce best-effort: %s", op->row.id, why);
	}
	op->t_quiesced = now_ms();
	op->phase = P_PAUSE;
}

static void step_pause(struct ckpt *ck, struct op *op)
{
	ck_set_state(ck, op, "pausing");
	for (size_t i = 0; i < op->n; i++) {
		struct opguest *g = &op->g[i];
		char err[256] = "";
		int rc = g->ops->guest_pause(g->hv, g->name, err, sizeof(err));
		if (rc < 0) {
			snprintf(g->err, sizeof(g->err), "pause: %s", err);
			ck_fail(ck, op, "pause of %s: %s", g->name, err);
			to_undo(ck, op);
			return;
		}
		g->paused = 1;
	}
	op->t_paused = now_ms();
	/* the cut: what a restore after a failure counts lost work from */
	json_object_set_new(op->row.body, "cut_ns", json_integer(ck_now(ck)));
	op->phase = P_SNAPSHOT;
}

static void step_snapshot(struct ckpt *ck, struct op *op)
{
	if (!*op->data_path) {
		op->t_snapshot = now_ms();
		op->phase = P_SAVE;
		return;
	}
	if (!*op->row.snapshot) {
		snprintf(op->row.snapshot, sizeof(op->row.snapshot), "migd-%s-%" PRId64, op->row.job,
			 op->row.id);
		ck_set_state(ck, op, "snapshot"); /* the name is on the row before it exists */
		if (ck_task(ck, op, snap_create_task) < 0) {
			ck_fail(ck, op, "sfs snapshot: %s", op->task_err);
			to_undo(ck, op);
		}
		return;
	}
	if (!ck_task_done(op))
		return;
	if (op->task_rc < 0) {
		ck_fail(ck, op, "%s", op->task_err);
		to_undo(ck, op);
		return;
	}
	op->t_snapshot = now_ms();
	op->phase = P_SAVE;
}

static int start_saves(struct ckpt *ck, struct op *op)
{
	char err[320];
	if (ckpt_store_mkdir(ck->store, op->rel, err, sizeof(err)) < 0) {
		ck_fail(ck, op, "%s", err);
		return -EIO;
	}
	for (size_t i = 0; i < op->n; i++) {
		struct opguest *g = &op->g[i];
		char rel[PATH_MAX];
		int fd = -1;
		snprintf(rel, sizeof(rel), "%s/%s.img", op->rel, g->name);
		if (g->ops->guest_config &&
		    g->ops->guest_config(g->hv, g->name, &g->config, err, sizeof(err)) < 0)
			g->config = NULL;
		struct hv_save_params p = { .background = op->background };
		char result[PATH_MAX];
		snprintf(result, sizeof(result), "%.3900s/ckpt-%" PRId64 "-%s.result", ck->o.state_dir,
			 op->row.id, g->name);
		int rc = *ck->o.stream_exe
				 ? ckpt_stream_save_proc(ck->store, ck->o.stream_exe, rel, result, &fd,
							 &g->stream, err, sizeof(err))
				 : ckpt_stream_save(ck->store, rel, &fd, &g->stream, err, sizeof(err));
		if (rc == 0) {
			struct hv_image img = { .fd = fd, .path = NULL };
			rc = g->ops->save_start(g->hv, g->name, &img, &p, &g->hv_id, err, sizeof(err));
			close(fd);
			g->launched = rc == 0;
		}
		char path[PATH_MAX];
		if (rc == -ENOTSUP && ckpt_store_local_path(ck->store, rel, path, sizeof(path)) == 0) {
			/* a backend that writes files itself (libvirt): into the store */
			ckpt_stream_free(g->stream);
			g->stream = NULL;
			struct hv_image img = { .fd = -1, .path = path };
			rc = g->ops->save_start(g->hv, g->name, &img, &p, &g->hv_id, err, sizeof(err));
			g->launched = rc == 0;
			g->by_path = 1;
		}
		if (rc < 0) {
			snprintf(g->err, sizeof(g->err), "save: %.240s", err);
			ck_fail(ck, op, "save of %s: %s", g->name, err);
			return rc;
		}
	}
	return 0;
}

/* Poll g's save and stream; a failure is recorded on op. */
/* Poll g's save or load in the backend and its stream; a failure is
 * recorded on op. A save's stream gives the image's length and checksum; a
 * load's keeps the manifest's. */
void ck_poll_guest(struct ckpt *ck, struct op *op, struct opguest *g)
{
	int save = op->row.kind == DB_OP_CHECKPOINT;
	const char *what = save ? "save" : "load";
	char err[320] = "";
	if (g->launched && !g->be_done) {
		int rc = g->ops->migrate_poll(g->hv, g->hv_id, &g->prog, err, sizeof(err));
		if (rc < 0) {
			snprintf(g->prog.error, sizeof(g->prog.error), "%s", err);
			g->prog.state = HV_MIG_FAILED;
		}
		if (g->prog.state != HV_MIG_ACTIVE) {
			g->be_done = 1;
			if (g->prog.state != HV_MIG_COMPLETED) {
				const char *why = *g->prog.error ? g->prog.error : "failed";
				snprintf(g->err, sizeof(g->err), "%s: %.200s", what, why);
				ck_fail(ck, op, "%s of %s: %s", what, g->name, why);
			}
		}
	}
	if (g->stream && !g->stream_done) {
		uint64_t bytes = 0;
		int rc = ckpt_stream_poll(g->stream, &bytes, save ? g->sha : NULL, err, sizeof(err));
		if (save)
			g->bytes = bytes;
		if (rc != 0)
			g->stream_done = rc;
		if (rc < 0) {
			snprintf(g->err, sizeof(g->err), "%s: %.240s", save ? "store" : "image", err);
			ck_fail(ck, op, "image of %s: %s", g->name, err);
		}
	}
}

static void step_save(struct ckpt *ck, struct op *op)
{
	if (strcmp(op->row.state, "saving") != 0) {
		ck_set_state(ck, op, "saving");
		if (start_saves(ck, op) < 0) {
			to_undo(ck, op);
			return;
		}
	}
	int all = 1;
	for (size_t i = 0; i < op->n; i++) {
		struct opguest *g = &op->g[i];
		ck_poll_guest(ck, op, g);
		if (!g->captured) {
			struct hv_guest_info info;
			char err[128];
			if (g->be_done && g->prog.state == HV_MIG_COMPLETED)
				g->captured = 1;
			else if (op->background && !g->be_done &&
				 g->ops->guest_info(g->hv, g->name, &info, err, sizeof(err)) == 0 &&
				 info.running)
				g->captured = 1; /* background: it runs again, its memory follows */
			if (g->captured && (!g->be_done || strcmp(g->prog.mode, "background") == 0))
				g->paused = 0; /* the backend let it go itself */
		}
		all &= g->captured;
	}
	if (*op->why) {
		to_undo(ck, op);
		return;
	}
	if (!all)
		return;
	op->t_captured = now_ms();
	if (resume_guests(ck, op) < 0) {
		to_undo(ck, op);
		return;
	}
	op->t_resumed = now_ms();
	log_info("checkpoint %" PRId64 " of %s: the cut is taken, %zu guests run again after %" PRIu64
		 " ms paused", op->row.id, op->row.job, op->n, op->t_resumed - op->t_paused);
	qgroup_resume(op->q);
	op->phase = P_RESUME_AGENTS;
	ck_set_state(ck, op, "resuming");
}

static void step_resume_agents(struct ckpt *ck, struct op *op)
{
	for (size_t i = 0; i < op->n; i++)
		ck_poll_guest(ck, op, &op->g[i]); /* images go on meanwhile */
	if (!qgroup_poll(op->q))
		return;
	op->t_agents = now_ms();
	op->phase = P_WRITE;
}

static void step_write(struct ckpt *ck, struct op *op)
{
	int all = 1;
	for (size_t i = 0; i < op->n; i++) {
		ck_poll_guest(ck, op, &op->g[i]);
		all &= op->g[i].be_done && (op->g[i].stream_done == 1 || op->g[i].by_path);
	}
	if (*op->why) {
		to_undo(ck, op);
		return;
	}
	if (!all)
		return;
	op->t_written = now_ms();
	ck_set_state(ck, op, "manifest");
	if (ck_task(ck, op, manifest_task) < 0) {
		ck_fail(ck, op, "manifest: %s", op->task_err);
		to_undo(ck, op);
		return;
	}
	op->phase = P_MANIFEST;
}

void ck_finish(struct ckpt *ck, struct op *op, const char *state)
{
	op->t_end = now_ms();
	op->row.ended_ns = ck_now(ck);
	snprintf(op->row.error, sizeof(op->row.error), "%s", op->why);
	ck_set_state(ck, op, state);
	log_info("%s %" PRId64 " of %s %s%s%s", kind_name(op), op->row.id, op->row.job, state,
		 *op->why ? ": " : "", op->why);
	op->phase = P_DONE;
}

static void step_manifest(struct ckpt *ck, struct op *op)
{
	if (!ck_task_done(op))
		return;
	if (op->task_rc < 0) {
		ck_fail(ck, op, "%s", op->task_err);
		to_undo(ck, op);
		return;
	}
	ck_finish(ck, op, "completed");
	if (!op->keep)
		return;
	op->old = calloc(1, sizeof(*op->old));
	if (!op->old)
		return;
	op->old->keep = op->keep;
	db_op_list(ck->db, DB_OP_CHECKPOINT, op->row.job, "completed", 0, collect_old, op->old);
	if (!op->old->n)
		return;
	op->phase = ck_task(ck, op, keep_task) == 0 ? P_KEEP : P_DONE;
}

static void step_keep(struct ckpt *ck, struct op *op)
{
	struct old_list *keep_list = op->old;
	if (!ck_task_done(op))
		return;
	if (op->task_rc < 0)
		log_warnx("checkpoint retention of %s: %s", op->row.job, op->task_err);
	if (db_begin(ck->db) == 0) {
		int rc = 0;
		for (size_t i = 0; rc == 0 && i < keep_list->n; i++) {
			if (!keep_list->id[i])
				continue;
			rc = db_op_delete(ck->db, DB_OP_CHECKPOINT, keep_list->id[i]);
			json_t *ev = migd_event_new("checkpoint.removed", ck_now(ck));
			json_object_set_new(ev, "id", json_integer(keep_list->id[i]));
			json_object_set_new(ev, "job", json_string(op->row.job));
			json_object_set_new(ev, "reason", json_string("retention"));
			if (rc == 0)
				rc = db_event(ck->db, ev);
			else
				json_decref(ev);
			log_info("checkpoint %" PRId64 " of %s removed (keep %u)", keep_list->id[i],
				 op->row.job, op->keep);
		}
		db_end(ck->db, rc);
	}
	op->phase = P_DONE;
}

/* Undo: saves aborted and settled, guests running, agents resumed, the
 * snapshot and images gone, then the row fails. */
static void step_undo(struct ckpt *ck, struct op *op)
{
	if (op->phase == P_UNDO_SAVES) {
		int all = 1;
		for (size_t i = 0; i < op->n; i++) {
			struct opguest *g = &op->g[i];
			char err[160];
			if (!g->launched || g->be_done)
				continue;
			if (op->background) {
				/* never cancel a background snapshot (QEMU 7.2 could not save
				 * or migrate the guest again): its stream drops the rest, and
				 * it ends by itself */
				ckpt_stream_free(g->stream);
				g->stream = NULL;
			} else if (!g->abort_sent) {
				g->ops->migrate_abort(g->hv, g->hv_id, err, sizeof(err));
				g->abort_sent = 1;
			}
			ck_poll_guest(ck, op, g);
			all &= g->be_done;
		}
		if (!all)
			return;
		for (size_t i = 0; i < op->n; i++) {
			ckpt_stream_free(op->g[i].stream);
			op->g[i].stream = NULL;
		}
		resume_guests(ck, op); /* an error is logged; nothing else can be done */
		if (!op->t_resumed)
			op->t_resumed = now_ms();
		if (op->q)
			qgroup_resume(op->q);
		op->phase = P_UNDO_AGENTS;
	}
	if (op->phase == P_UNDO_AGENTS) {
		if (op->q && !qgroup_poll(op->q))
			return;
		op->t_agents = now_ms();
		if (ck_task(ck, op, undo_store_task) < 0) {
			ck_finish(ck, op, "failed");
			return;
		}
		op->phase = P_UNDO_STORE;
	}
	if (op->phase == P_UNDO_STORE) {
		if (!ck_task_done(op))
			return;
		if (op->task_rc < 0)
			log_warnx("checkpoint %" PRId64 ": cleaning up: %s", op->row.id, op->task_err);
		else
			op->row.snapshot[0] = '\0';
		ck_finish(ck, op, "failed");
	}
}

static void step(struct ckpt *ck, struct op *op)
{
	switch (op->phase) {
	case P_QUIESCE: step_quiesce(ck, op); break;
	case P_PAUSE: step_pause(ck, op); break;
	case P_SNAPSHOT: step_snapshot(ck, op); break;
	case P_SAVE: step_save(ck, op); break;
	case P_RESUME_AGENTS: step_resume_agents(ck, op); break;
	case P_WRITE: step_write(ck, op); break;
	case P_MANIFEST: step_manifest(ck, op); break;
	case P_KEEP: step_keep(ck, op); break;
	case P_UNDO_SAVES:
	case P_UNDO_AGENTS:
	case P_UNDO_STORE: step_undo(ck, op); break;
	case R_VERIFY:
	case R_STOP:
	case R_ROLLBACK:
	case R_LOAD:
	case R_RESUME: ck_restore_step(ck, op); break;
	case P_DONE: break;
	}
}

void ckpt_tick(struct ckpt *ck)
{
	for (size_t i = 0; i < ck->n_ops;) {
		struct op *op = ck->ops[i];
		enum ophase before;
		do { /* steps that finish at once run on in the same tick */
			before = op->phase;
			step(ck, op);
		} while (op->phase != before && op->phase != P_DONE && !op->task);
		if (op->phase == P_DONE && !op->task) {
			ck_op_free(op);
			ck->ops[i] = ck->ops[--ck->n_ops];
			exec_wake(ck->ex); /* its guests may migrate again */
		} else {
			i++;
		}
	}
	owed_tick(ck);
	ck_watch_tick(ck);
	ckpt_stream_reap();
}

/* ---- removal, cost ---- */

int ckpt_remove(struct ckpt *ck, int64_t id, char *err, size_t errlen)
{
	struct db_op row;
	int rc = db_op_get(ck->db, DB_OP_CHECKPOINT, id, &row);
	if (rc == -ENOENT)
		snprintf(err, errlen, "checkpoint %" PRId64 ": no such checkpoint", id);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < ck->n_ops; i++) {
		const struct op *op = ck->ops[i];
		if ((op->row.kind == DB_OP_CHECKPOINT && op->row.id == id) ||
		    (op->row.kind == DB_OP_RESTORE && op->row.checkpoint_id == id)) {
			snprintf(err, errlen, "checkpoint %" PRId64 " is in use by %s %" PRId64, id,
				 kind_name(op), op->row.id);
			db_op_clear(&row);
			return -EBUSY;
		}
	}
	const char *rel = json_string_value(json_object_get(row.body, "store_path"));
	rc = ck_store(ck, err, errlen);
	if (rc == 0)
		rc = remove_stored(ck, row.snapshot, rel, err, errlen);
	if (rc == 0) {
		rc = db_begin(ck->db);
		if (rc == 0)
			rc = db_op_delete(ck->db, DB_OP_CHECKPOINT, id);
		if (rc == 0) {
			json_t *ev = migd_event_new("checkpoint.removed", ck_now(ck));
			json_object_set_new(ev, "id", json_integer(id));
			json_object_set_new(ev, "job", json_string(row.job));
			rc = db_event(ck->db, ev);
		}
		rc = db_end(ck->db, rc);
	}
	db_op_clear(&row);
	return rc;
}

struct cost_acc {
	double sum;
	unsigned n;
};

/* A checkpoint's cost to its job: its whole duration, quiesce to the last
 * image written. In background mode the job runs again during the write,
 * but beside it (the guests' write faults, the store's link, the CPUs):
 * bench/checkpoint-cost measured btio losing about the write's length per
 * checkpoint, 8x the time its I/O was held (job_lost_ms). Daly's d is
 * what the job loses, so the whole duration is the honest figure. */
static int add_cost(void *arg, const struct db_op *row)
{
	struct cost_acc *a = arg;
	json_t *v = json_object_get(json_object_get(row->body, "phases"), "total_ms");
	if (!json_is_integer(v))
		v = json_object_get(row->body, "job_lost_ms");
	if (json_is_integer(v)) {
		a->sum += (double)json_integer_value(v) / 1e3;
		a->n++;
	}
	return 0;
}

double ckpt_cost_s(struct ckpt *ck, const char *job, unsigned n)
{
	struct cost_acc a = { 0 };
	db_op_list(ck->db, DB_OP_CHECKPOINT, job, "completed", n, add_cost, &a);
	return a.n ? a.sum / a.n : 0;
}

/* ---- after a restart ---- */

struct unfinished {
	struct db_op rows[64];
	size_t n;
};

static int take_unfinished(void *arg, const struct db_op *row)
{
	struct unfinished *u = arg;
	if (db_op_state_final(row->state) || u->n == 64)
		return 0;
	u->rows[u->n] = *row;
	u->rows[u->n].body = json_incref(row->body);
	u->n++;
	return 0;
}

/* A checkpoint a crash interrupted: its guests run, agents are owed a
 * resume, its snapshot and images go, the row fails. */
static int reconcile_checkpoint(struct ckpt *ck, struct db_op *row)
{
	json_t *gs = json_object_get(row->body, "guests");
	size_t i;
	json_t *g;
	json_array_foreach(gs, i, g) {
		struct opguest og = { 0 };
		const char *name = json_string_value(json_object_get(g, "name"));
		struct db_guest dg;
		char err[256] = "";
		if (!name || db_guest_get(ck->db, name, &dg) < 0)
			continue;
		snprintf(og.name, sizeof(og.name), "%s", name);
		snprintf(og.host, sizeof(og.host), "%s", dg.host);
		if (ck_guest_driver(ck, &og, err, sizeof(err)) == 0 && og.ops->guest_resume &&
		    og.ops->guest_resume(og.hv, name, err, sizeof(err)) < 0)
			log_warnx("checkpoint %" PRId64 ": resume of %s after a restart: %s", row->id,
				  name, err);
		ck_owe_resume(ck, name, 0);
	}
	char err[320] = "";
	const char *rel = json_string_value(json_object_get(row->body, "store_path"));
	int rc = ck_store(ck, err, sizeof(err));
	if (rc == 0)
		rc = remove_stored(ck, row->snapshot, rel, err, sizeof(err));
	if (rc < 0)
		log_warnx("checkpoint %" PRId64 ": cleaning up after a restart: %s", row->id, err);
	else
		row->snapshot[0] = '\0';
	snprintf(row->state, sizeof(row->state), "failed");
	snprintf(row->error, sizeof(row->error), "%s", RESTART_REASON);
	row->ended_ns = ck_now(ck);
	rc = db_begin(ck->db);
	if (rc == 0)
		rc = db_op_save(ck->db, row);
	if (rc == 0) {
		json_t *ev = migd_event_new("checkpoint.reconciled", ck_now(ck));
		json_object_update_new(ev, ckpt_op_json(row));
		rc = db_event(ck->db, ev);
	}
	return db_end(ck->db, rc);
}

int ckpt_reconcile(struct ckpt *ck)
{
	static struct unfinished u;
	int ret = 0;
	for (int kind = DB_OP_CHECKPOINT; kind <= DB_OP_RESTORE; kind++) {
		memset(&u, 0, sizeof(u));
		db_op_list(ck->db, kind, NULL, NULL, 0, take_unfinished, &u);
		for (size_t i = 0; i < u.n; i++) {
			log_info("%s %" PRId64 " of %s was %s when migd stopped: settling it",
				 kind == DB_OP_CHECKPOINT ? "checkpoint" : "restore", u.rows[i].id,
				 u.rows[i].job, u.rows[i].state);
			int rc = kind == DB_OP_CHECKPOINT ? reconcile_checkpoint(ck, &u.rows[i])
							  : ck_reconcile_restore(ck, &u.rows[i]);
			if (rc < 0)
				ret = rc;
			db_op_clear(&u.rows[i]);
		}
	}
	return ret;
}
