/*
 * ckpt_restore: restores (ckpt.h) and failure detection. A restore checks
 * everything it can before it stops anything: the manifest, every image's
 * length and SHA-256, the snapshot, memory on the target hosts. Only then
 * does it stop what still runs of the job, roll the data path back, load
 * every guest paused and resume them together.
 */
#include "ckpt_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "migd_proto.h"
#include "sfs.h"
#include "util.h"

#define WATCH_EVERY_MS 1000
#define WATCH_ERRORS 3   /* a backend error this many scans in a row is a failure */

/* ---- the source: a checkpoint's row or a manifest ---- */

/* Guests of the source (manifest or row body) into op->g, with their image
 * length and checksum, and op's snapshot, data path and store path. */
static int load_source(struct op *op, json_t *src, char *err, size_t errlen)
{
	json_t *gs = json_object_get(src, "guests");
	size_t n = json_array_size(gs);
	if (!n) {
		snprintf(err, errlen, "checkpoint %" PRId64 ": no guests in it", op->row.checkpoint_id);
		return -EINVAL;
	}
	op->g = calloc(n, sizeof(*op->g));
	if (!op->g)
		return -ENOMEM;
	op->n = n;
	for (size_t i = 0; i < n; i++) {
		json_t *g = json_array_get(gs, i);
		struct opguest *og = &op->g[i];
		const char *name = json_string_value(json_object_get(g, "name"));
		const char *host = json_string_value(json_object_get(g, "host"));
		const char *sha = json_string_value(json_object_get(g, "sha256"));
		json_t *bytes = json_object_get(g, "bytes");
		if (!name || db_name_check(name) < 0 || !sha || strlen(sha) != 64 ||
		    !json_is_integer(bytes) || json_integer_value(bytes) <= 0) {
			snprintf(err, errlen, "checkpoint %" PRId64 ": guest %zu (%s) has no valid name,"
				 " bytes or sha256", op->row.checkpoint_id, i, name ? name : "?");
			return -EINVAL;
		}
		snprintf(og->name, sizeof(og->name), "%s", name);
		snprintf(og->host, sizeof(og->host), "%s", host ? host : "");
		snprintf(og->sha, sizeof(og->sha), "%s", sha);
		og->bytes = (uint64_t)json_integer_value(bytes);
		og->memory_bytes = (uint64_t)json_integer_value(json_object_get(g, "memory_bytes"));
		json_t *rank = json_object_get(g, "rank");
		og->rank = json_is_integer(rank) ? (int)json_integer_value(rank) : -1;
		const char *config = json_string_value(json_object_get(g, "config"));
		og->config = config ? strdup(config) : NULL;
	}
	const char *s = json_string_value(json_object_get(src, "snapshot"));
	snprintf(op->row.snapshot, sizeof(op->row.snapshot), "%s", s ? s : "");
	s = json_string_value(json_object_get(src, "data_path"));
	snprintf(op->data_path, sizeof(op->data_path), "%s", s ? s : "");
	s = json_string_value(json_object_get(src, "store_path"));
	snprintf(op->rel, sizeof(op->rel), "%s", s ? s : "");
	return 0;
}

/* ---- placing the guests ---- */

struct cand {
	char name[DB_NAME_MAX];
	uint64_t cap, used;          /* cap 0: unlimited */
};

struct cands {
	struct cand c[256];
	size_t n;
	const struct op *op;
};

static int job_guest_on(const struct op *op, const char *guest)
{
	for (size_t i = 0; i < op->n; i++)
		if (strcmp(op->g[i].name, guest) == 0)
			return 1;
	return 0;
}

static int add_cand(void *arg, const struct db_host *h)
{
	struct cands *c = arg;
	if (!h->enabled || strcmp(h->health, "ok") != 0 || c->n == 256 ||
	    strcmp(h->name, c->op->avoid) == 0)
		return 0;
	struct cand *x = &c->c[c->n++];
	snprintf(x->name, sizeof(x->name), "%s", h->name);
	x->cap = h->memory_bytes;
	x->used = h->memory_used_bytes;
	return 0;
}

static struct cand *cand_find(struct cands *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->c[i].name, name) == 0)
			return &c->c[i];
	return NULL;
}

/* The job's own guests free their memory when stopped: take them off. */
static int free_own(void *arg, const struct db_guest *g)
{
	struct cands *c = arg;
	struct cand *x = cand_find(c, g->host);
	if (x && job_guest_on(c->op, g->name))
		x->used = x->used > g->memory_bytes ? x->used - g->memory_bytes : 0;
	return 0;
}

static int fits(const struct cand *x, uint64_t mem)
{
	return !x->cap || x->used + mem <= x->cap;
}

/* Each guest's target host: the given list (in turn); else its old host
 * when that may take guests and has room; else, for the others (a failed
 * host's guests), the host with the fewest guests of this job placed on it,
 * then the most room (ranks of a job spread as migrations keep them). */
static int place(struct ckpt *ck, struct op *op, const char *const *hosts, size_t n_hosts,
		 char *err, size_t errlen)
{
	static struct cands c;
	unsigned placed[256] = { 0 };
	memset(&c, 0, sizeof(c));
	c.op = op;
	db_host_list(ck->db, add_cand, &c);
	db_guest_list(ck->db, NULL, NULL, free_own, &c);
	for (size_t i = 0; i < n_hosts; i++) {
		if (!cand_find(&c, hosts[i])) {
			struct db_host h;
			if (db_host_get(ck->db, hosts[i], &h) < 0)
				snprintf(err, errlen, "host \"%s\": no such host", hosts[i]);
			else
				snprintf(err, errlen, "host %s cannot take guests (%s%s)", hosts[i],
					 !h.enabled ? "disabled" : h.health,
					 strcmp(hosts[i], op->avoid) == 0 ? ", it failed" : "");
			return -EINVAL;
		}
	}
	struct cand **to = calloc(op->n, sizeof(*to));
	if (!to)
		return -ENOMEM;
	/* pass 1: the given hosts, or each guest's own host when it can stay */
	for (size_t i = 0; i < op->n; i++) {
		struct opguest *g = &op->g[i];
		struct cand *x = n_hosts ? cand_find(&c, hosts[i % n_hosts]) : cand_find(&c, g->host);
		if (x && (n_hosts || fits(x, g->memory_bytes))) {
			to[i] = x;
			x->used += g->memory_bytes;
			placed[x - c.c]++;
		}
	}
	/* pass 2: the rest */
	for (size_t i = 0; i < op->n; i++) {
		struct opguest *g = &op->g[i];
		if (to[i])
			continue;
		struct cand *x = NULL;
		for (size_t j = 0; j < c.n; j++) {
			struct cand *y = &c.c[j];
			uint64_t fy = y->cap ? y->cap - y->used : UINT64_MAX;
			uint64_t fx = x && x->cap ? x->cap - x->used : UINT64_MAX;
			if (!fits(y, g->memory_bytes))
				continue;
			if (!x || placed[j] < placed[x - c.c] ||
			    (placed[j] == placed[x - c.c] && (fy > fx || (fy == fx && y->used < x->used))))
				x = y;
		}
		if (!x) {
			snprintf(err, errlen, "no host can take guest %s (%" PRIu64 " MiB): every "
				 "enabled, healthy host is full%s%s", g->name, g->memory_bytes >> 20,
				 *op->avoid ? " or is " : "", op->avoid);
			free(to);
			return -ENOSPC;
		}
		to[i] = x;
		x->used += g->memory_bytes;
		placed[x - c.c]++;
	}
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < op->n; i++) {
		struct opguest *g = &op->g[i];
		struct cand *x = to[i];
		if (!fits(x, 0) || (x->cap && x->used > x->cap)) {
			snprintf(err, errlen, "host %s lacks memory for the guests placed on it: %" PRIu64
				 " MiB needed, %" PRIu64 " MiB there", x->name, x->used >> 20,
				 x->cap >> 20);
			rc = -ENOSPC;
			break;
		}
		snprintf(g->host, sizeof(g->host), "%s", x->name);
		rc = ck_guest_driver(ck, g, err, errlen);
		if (rc == 0 && (!g->ops->load_start || !g->ops->guest_resume)) {
			snprintf(err, errlen, "host %s: backend %s cannot restore", g->host,
				 g->ops->scheme);
			rc = -EOPNOTSUPP;
		}
	}
	free(to);
	return rc;
}

/* A guest of a manifest that the database lost: added on its target host
 * (and defined again in the backend when it lost it too). */
static int ensure_known(struct ckpt *ck, struct op *op, struct opguest *g, char *err,
			size_t errlen)
{
	struct db_guest dg;
	if (db_guest_get(ck->db, g->name, &dg) == 0)
		return 0;
	if (g->ops->guest_define && g->config) {
		int rc = g->ops->guest_define(g->hv, g->name, g->config, err, errlen);
		if (rc < 0 && rc != -EEXIST)
			return rc;
	}
	memset(&dg, 0, sizeof(dg));
	snprintf(dg.name, sizeof(dg.name), "%s", g->name);
	snprintf(dg.host, sizeof(dg.host), "%s", g->host);
	dg.memory_bytes = g->memory_bytes;
	dg.rank = g->rank;
	if (g->rank >= 0)
		snprintf(dg.job, sizeof(dg.job), "%s", op->row.job);
	int rc = db_begin(ck->db);
	if (rc == 0)
		rc = db_guest_add(ck->db, &dg, ck_now(ck));
	rc = db_end(ck->db, rc);
	if (rc < 0)
		snprintf(err, errlen, "guest %s: could not add it to the database", g->name);
	return rc;
}

/* ---- the request ---- */

/* Abort queued migration m of a guest of job, superseded by its restore. */
static int drop_queued(struct ckpt *ck, struct db_migration *m, const char *job, char *err,
		       size_t errlen)
{
	char why[DB_TEXT_MAX];
	snprintf(why, sizeof(why), "superseded by a restore of job %s after a failure", job);
	int rc = db_begin(ck->db);
	if (rc == 0) {
		rc = exec_cancel_queued(ck->ex, m, why);
		if (rc == 0)
			rc = db_commit(ck->db);
		else
			db_rollback(ck->db);
	}
	if (rc < 0)
		snprintf(err, errlen, "guest %s: dropping its queued migration %" PRId64 ": %s",
			 m->guest, m->id, strerror(-rc));
	else
		log_info("migration %" PRId64 " of %s aborted: %s", m->id, m->guest, why);
	return rc;
}

int ckpt_restore(struct ckpt *ck, const struct ckpt_restore_request *rq, struct db_op *out,
		 char *err, size_t errlen)
{
	json_t *src = NULL;
	char job[DB_NAME_MAX] = "";
	int64_t ckpt_id = rq->checkpoint_id;
	int rc = ck_store(ck, err, errlen);
	if (rc < 0)
		return -EIO;
	if (rq->manifest) {
		char *text = NULL;
		size_t len;
		json_error_t je;
		rc = ckpt_store_get(ck->store, rq->manifest, CKPT_MANIFEST_MAX, &text, &len, err,
				    errlen);
		if (rc < 0)
			return rc;
		src = json_loads(text, 0, &je);
		free(text);
		const char *fmt = json_string_value(json_object_get(src, "format"));
		if (!src || !fmt || strcmp(fmt, CKPT_FORMAT) != 0) {
			snprintf(err, errlen, "%s: not a migd checkpoint manifest (%s)", rq->manifest,
				 src ? "format is not " CKPT_FORMAT : je.text);
			json_decref(src);
			return -EINVAL;
		}
		/* the store path is where the manifest is */
		char rel[PATH_MAX];
		snprintf(rel, sizeof(rel), "%s", rq->manifest);
		char *slash = strrchr(rel, '/');
		*(slash ? slash : rel) = '\0';
		json_object_set_new(src, "store_path", json_string(rel));
		ckpt_id = json_integer_value(json_object_get(src, "id"));
		const char *j = json_string_value(json_object_get(src, "job"));
		snprintf(job, sizeof(job), "%s", j && db_name_check(j) == 0 ? j : "");
	} else {
		struct db_op row;
		rc = db_op_get(ck->db, DB_OP_CHECKPOINT, ckpt_id, &row);
		if (rc == -ENOENT)
			snprintf(err, errlen, "checkpoint %" PRId64 ": no such checkpoint", ckpt_id);
		if (rc < 0)
			return rc;
		if (strcmp(row.state, "completed") != 0) {
			snprintf(err, errlen, "checkpoint %" PRId64 " is %s, not completed", ckpt_id,
				 row.state);
			db_op_clear(&row);
			return -EINVAL;
		}
		src = json_incref(row.body);
		json_object_set_new(src, "snapshot", json_string(row.snapshot));
		snprintf(job, sizeof(job), "%s", row.job);
		db_op_clear(&row);
	}
	if (!*job) {
		snprintf(err, errlen, "checkpoint %" PRId64 ": no job named in it", ckpt_id);
		json_decref(src);
		return -EINVAL;
	}
	if (ck_op_of_job(ck, job)) {
		const struct op *o = ck_op_of_job(ck, job);
		snprintf(err, errlen, "job %s is in %s %" PRId64, job,
			 o->row.kind == DB_OP_CHECKPOINT ? "checkpoint" : "restore", o->row.id);
		json_decref(src);
		return -EBUSY;
	}
	struct op *op = ck_op_new(ck);
	if (!op) {
		json_decref(src);
		return -ENOMEM;
	}
	op->row.kind = DB_OP_RESTORE;
	op->row.checkpoint_id = ckpt_id;
	snprintf(op->row.job, sizeof(op->row.job), "%s", job);
	snprintf(op->avoid, sizeof(op->avoid), "%s", rq->avoid_host ? rq->avoid_host : "");
	rc = load_source(op, src, err, errlen);
	if (rc == 0 && !*op->rel) {
		snprintf(err, errlen, "checkpoint %" PRId64 ": its store path is unknown", ckpt_id);
		rc = -EINVAL;
	}
	if (rc == 0 && !*op->row.snapshot && *op->data_path && !rq->skip_rollback) {
		snprintf(err, errlen, "checkpoint %" PRId64 ": its sfs snapshot is gone", ckpt_id);
		rc = -ENOENT;
	}
	for (size_t i = 0; rc == 0 && i < op->n; i++) {
		struct db_migration m;
		/* After a failure the job does not run: a migration of one of
		 * its guests that has not started is dropped, not waited for
		 * (it may wait for good, deferred for an agent the failure
		 * took away). A running one is waited for: -EBUSY, and the
		 * failure watch asks again (restore_after_failure). */
		for (int k = 0; rc == 0 && k < 64 && rq->failure_ns &&
				db_mig_active_for_guest(ck->db, op->g[i].name, &m) == 0 &&
				m.state == DB_MIG_QUEUED; k++)
			rc = drop_queued(ck, &m, job, err, errlen);
		if (rc == 0 && db_mig_active_for_guest(ck->db, op->g[i].name, &m) == 0) {
			snprintf(err, errlen, "guest %s is in migration %" PRId64 "; abort it first",
				 op->g[i].name, m.id);
			rc = -EBUSY;
		}
	}
	if (rc == 0)
		rc = place(ck, op, rq->hosts, rq->n_hosts, err, errlen);
	for (size_t i = 0; rc == 0 && i < op->n; i++)
		rc = ensure_known(ck, op, &op->g[i], err, errlen);
	if (rc < 0) {
		json_decref(src);
		ck->n_ops--;
		ck_op_free(op);
		return rc;
	}
	op->skip_rollback = rq->skip_rollback;
	op->failure_ns = rq->failure_ns;
	snprintf(op->row.state, sizeof(op->row.state), "verifying");
	snprintf(op->row.reason, sizeof(op->row.reason), "%s", rq->reason ? rq->reason : "manual");
	op->row.requested_ns = ck_now(ck);
	op->row.body = json_object();
	json_object_set_new(op->row.body, "store", json_string(ckpt_store_uri(ck->store)));
	json_object_set_new(op->row.body, "rollback", json_boolean(!op->skip_rollback));
	json_object_set_new(op->row.body, "snapshot", json_string(op->row.snapshot));
	if (rq->failure_ns)
		json_object_set_new(op->row.body, "failure_ns", json_integer(rq->failure_ns));
	json_object_set_new(op->row.body, "guests", ck_guests_json(op));
	json_t *cut = json_object_get(src, "cut_ns");
	if (json_is_integer(cut))
		json_object_set(op->row.body, "cut_ns", cut);
	json_decref(src);
	if ((rc = ck_op_insert(ck, op, err, errlen)) < 0)
		return rc;
	op->t_start = now_ms();
	op->phase = R_VERIFY;
	log_info("restore %" PRId64 " of %s from checkpoint %" PRId64 " queued: %s%s", op->row.id,
		 job, ckpt_id, op->row.reason, op->skip_rollback ? " (sfs rollback skipped)" : "");
	if (out) {
		*out = op->row;
		out->body = json_incref(op->row.body);
	}
	return 0;
}

/* ---- the steps ---- */

static int snapshot_named(void *arg, const struct sfs_snapshot *snap)
{
	return strcmp(snap->name, arg) == 0;
}

static int verify_task(void *arg, char *err, size_t errlen)
{
	struct op *op = arg;
	struct ckpt *ck = op->ck;
	for (size_t i = 0; i < op->n; i++) {
		char rel[PATH_MAX];
		snprintf(rel, sizeof(rel), "%s/%s.img", op->rel, op->g[i].name);
		int rc = ckpt_store_verify(ck->store, rel, op->g[i].bytes, op->g[i].sha, err, errlen);
		if (rc < 0) {
			char e2[512];
			snprintf(e2, sizeof(e2), "guest %s: %s", op->g[i].name, err);
			snprintf(err, errlen, "%s", e2);
			return rc;
		}
	}
	if (!*op->row.snapshot || op->skip_rollback)
		return 0;
	struct sfs *fs;
	int rc = sfs_connect(ck->o.sfs_conf, NULL, &fs);
	if (rc < 0) {
		snprintf(err, errlen, "sfs %s: %s", ck->o.sfs_conf, sfs_strerror(rc));
		return rc;
	}
	/* the snapshot must be there: a rollback to it is what comes next */
	rc = sfs_snapshot_list(fs, snapshot_named, op->row.snapshot);
	sfs_disconnect(fs);
	if (rc == 1)
		return 0;
	if (rc == 0) {
		snprintf(err, errlen, "sfs snapshot %s is gone", op->row.snapshot);
		return -ENOENT;
	}
	snprintf(err, errlen, "sfs snapshot list: %s", sfs_strerror(rc));
	return rc;
}

static int rollback_task(void *arg, char *err, size_t errlen)
{
	struct op *op = arg;
	struct sfs *fs;
	int rc = sfs_connect(op->ck->o.sfs_conf, NULL, &fs);
	if (rc < 0) {
		snprintf(err, errlen, "sfs %s: %s", op->ck->o.sfs_conf, sfs_strerror(rc));
		return rc;
	}
	rc = sfs_snapshot_rollback(fs, op->row.snapshot, SFS_ROLLBACK_FORCE);
	if (rc < 0)
		snprintf(err, errlen, "sfs rollback of %s to %s: %s", op->data_path, op->row.snapshot,
			 *sfs_last_error() ? sfs_last_error() : sfs_strerror(rc));
	sfs_disconnect(fs);
	return rc;
}

/* Kill what runs of the job's guests, wherever that is. */
static int stop_all(struct ckpt *ck, struct op *op)
{
	for (size_t i = 0; i < op->n; i++) {
		struct opguest *g = &op->g[i];
		struct hv_guest_info info;
		char err[256] = "";
		int rc = g->ops->guest_info(g->hv, g->name, &info, err, sizeof(err));
		if (rc == -ENOENT)
			continue;
		if (rc == 0 && g->ops->guest_destroy)
			rc = g->ops->guest_destroy(g->hv, g->name, err, sizeof(err));
		else if (rc == 0)
			rc = -EOPNOTSUPP;
		if (rc < 0 && rc != -ENOENT) {
			ck_fail(ck, op, "stop of %s: %s", g->name, *err ? err : strerror(-rc));
			return rc;
		}
		log_info("restore %" PRId64 ": stopped %s on %s", op->row.id, g->name, info.host);
	}
	return 0;
}

static int start_loads(struct ckpt *ck, struct op *op)
{
	for (size_t i = 0; i < op->n; i++) {
		struct opguest *g = &op->g[i];
		char rel[PATH_MAX], err[320] = "";
		int fd = -1;
		snprintf(rel, sizeof(rel), "%s/%s.img", op->rel, g->name);
		int rc = ckpt_stream_load(ck->store, rel, g->bytes, g->sha, &fd, &g->stream, err,
					  sizeof(err));
		if (rc == 0) {
			struct hv_image img = { .fd = fd, .path = NULL };
			rc = g->ops->load_start(g->hv, g->name, g->host, &img, &g->hv_id, err,
						sizeof(err));
			close(fd);
			g->launched = rc == 0;
		}
		char path[PATH_MAX];
		if (rc == -ENOTSUP && ckpt_store_local_path(ck->store, rel, path, sizeof(path)) == 0) {
			/* a backend that reads files itself (libvirt); verified already */
			ckpt_stream_free(g->stream);
			g->stream = NULL;
			struct hv_image img = { .fd = -1, .path = path };
			rc = g->ops->load_start(g->hv, g->name, g->host, &img, &g->hv_id, err,
						sizeof(err));
			g->launched = rc == 0;
			g->by_path = 1;
		}
		if (rc < 0) {
			snprintf(g->err, sizeof(g->err), "load: %s", err);
			ck_fail(ck, op, "load of %s on %s: %s", g->name, g->host, err);
			return rc;
		}
	}
	return 0;
}

/* A failed load: nothing of the job may be left half-started. */
static void unload(struct ckpt *ck, struct op *op)
{
	for (size_t i = 0; i < op->n; i++) {
		struct opguest *g = &op->g[i];
		char err[160];
		if (g->launched && !g->be_done) {
			g->ops->migrate_abort(g->hv, g->hv_id, err, sizeof(err));
			for (int k = 0; k < 200 && !g->be_done; k++) { /* bounded: a kill */
				ck_poll_guest(ck, op, g);
				if (!g->be_done)
					usleep(10000);
			}
		}
		if (g->launched && g->ops->guest_destroy)
			g->ops->guest_destroy(g->hv, g->name, err, sizeof(err));
		ckpt_stream_free(g->stream);
		g->stream = NULL;
	}
}

void ck_restore_step(struct ckpt *ck, struct op *op)
{
	switch (op->phase) {
	case R_VERIFY:
		if (!op->task && !op->t_quiesced) {
			op->t_quiesced = 1; /* marks "verify started" */
			if (ck_task(ck, op, verify_task) < 0) {
				ck_fail(ck, op, "%s", op->task_err);
				ck_finish(ck, op, "failed");
			}
			return;
		}
		if (!ck_task_done(op))
			return;
		if (op->task_rc < 0) {
			ck_fail(ck, op, "%s (nothing was stopped)", op->task_err);
			ck_finish(ck, op, "failed");
			return;
		}
		op->phase = R_STOP;
		ck_set_state(ck, op, "stopping");
		/* fall through */
	case R_STOP:
		if (stop_all(ck, op) < 0) {
			ck_finish(ck, op, "failed");
			return;
		}
		op->t_paused = now_ms();
		op->phase = R_ROLLBACK;
		if (op->skip_rollback || !*op->row.snapshot) {
			op->t_snapshot = 0; /* set when R_ROLLBACK passes below */
			log_info("restore %" PRId64 ": sfs rollback %s", op->row.id,
				 op->skip_rollback ? "skipped as asked" : "not needed: no data path");
			return;
		}
		ck_set_state(ck, op, "rollback");
		if (ck_task(ck, op, rollback_task) < 0) {
			ck_fail(ck, op, "%s", op->task_err);
			ck_finish(ck, op, "failed");
		}
		return;
	case R_ROLLBACK:
		if (!ck_task_done(op))
			return;
		if (op->task_rc < 0) {
			ck_fail(ck, op, "%s", op->task_err);
			ck_finish(ck, op, "failed");
			return;
		}
		op->t_snapshot = now_ms();
		op->phase = R_LOAD;
		ck_set_state(ck, op, "loading");
		if (start_loads(ck, op) < 0) {
			unload(ck, op);
			ck_finish(ck, op, "failed");
		}
		return;
	case R_LOAD: {
		int all = 1;
		for (size_t i = 0; i < op->n; i++) {
			ck_poll_guest(ck, op, &op->g[i]);
			all &= op->g[i].be_done && (op->g[i].stream_done == 1 || op->g[i].by_path);
		}
		if (*op->why) {
			unload(ck, op);
			ck_finish(ck, op, "failed");
			return;
		}
		if (!all)
			return;
		op->t_resumed = now_ms();
		op->phase = R_RESUME;
	}
		/* fall through */
	case R_RESUME: {
		/* all loaded and paused: now together */
		int rc = 0;
		for (size_t i = 0; i < op->n; i++) {
			struct opguest *g = &op->g[i];
			char err[256] = "";
			if (g->ops->guest_resume(g->hv, g->name, err, sizeof(err)) < 0 && !rc) {
				ck_fail(ck, op, "resume of %s: %s", g->name, err);
				rc = -EIO;
			}
			ck_owe_resume(ck, g->name, 1); /* its agent was quiesced at the cut */
		}
		op->t_agents = now_ms();
		if (db_begin(ck->db) == 0) {
			int r = 0;
			for (size_t i = 0; r == 0 && i < op->n; i++)
				r = db_guest_set_host(ck->db, op->g[i].name, op->g[i].host);
			db_end(ck->db, r);
		}
		int64_t cut = json_integer_value(json_object_get(op->row.body, "cut_ns"));
		if (op->failure_ns && cut && op->failure_ns > cut)
			json_object_set_new(op->row.body, "lost_work_ms",
					    json_integer((op->failure_ns - cut) / 1000000));
		json_object_set_new(op->row.body, "guests", ck_guests_json(op));
		ck_finish(ck, op, rc < 0 ? "failed" : "completed");
		return;
	}
	default:
		return;
	}
}

/* A restore a crash interrupted: failed. The backend's own reconciliation
 * at open has killed half-loaded instances, so none runs twice; when the
 * restore had begun stopping the job's guests, it is started again from the
 * same manifest, so that every guest ends on one host. */
int ck_reconcile_restore(struct ckpt *ck, struct db_op *row)
{
	int again = strcmp(row->state, "queued") != 0 && strcmp(row->state, "verifying") != 0;
	const char *rel = json_string_value(json_object_get(row->body, "store_path"));
	char manifest[PATH_MAX] = "", reason[DB_TEXT_MAX];
	if (again && rel)
		snprintf(manifest, sizeof(manifest), "%s/%s", rel, CKPT_MANIFEST);
	snprintf(reason, sizeof(reason), "again after a migd restart (restore %" PRId64 ")",
		 row->id);
	snprintf(row->state, sizeof(row->state), "failed");
	snprintf(row->error, sizeof(row->error), "interrupted by a migd restart");
	row->ended_ns = ck_now(ck);
	int rc = db_begin(ck->db);
	if (rc == 0)
		rc = db_op_save(ck->db, row);
	if (rc == 0) {
		json_t *ev = migd_event_new("restore.reconciled", ck_now(ck));
		json_object_update_new(ev, ckpt_op_json(row));
		rc = db_event(ck->db, ev);
	}
	rc = db_end(ck->db, rc);
	if (rc == 0 && *manifest) {
		char err[512] = "";
		struct ckpt_restore_request rq = {
			.manifest = manifest, .reason = reason,
			.skip_rollback = json_is_false(json_object_get(row->body, "rollback")),
			.failure_ns = json_integer_value(json_object_get(row->body, "failure_ns")),
		};
		struct db_op out = { 0 };
		if (ckpt_restore(ck, &rq, &out, err, sizeof(err)) < 0)
			log_warnx("restore %" PRId64 " of %s: not started again: %s", row->id, row->job,
				  err);
		db_op_clear(&out);
	}
	return rc;
}

/* ---- failure detection ---- */

void ckpt_watch(struct ckpt *ck, const char *job, const char *on_failure, const char *policy,
		unsigned keep)
{
	size_t i;
	for (i = 0; i < ck->n_w && strcmp(ck->w[i].job, job) != 0; i++)
		;
	if (!on_failure) {
		if (i < ck->n_w)
			ck->w[i] = ck->w[--ck->n_w];
		return;
	}
	if (i == ck->n_w) {
		struct watch *p = realloc(ck->w, (ck->n_w + 1) * sizeof(*p));
		if (!p)
			return;
		ck->w = p;
		memset(&ck->w[ck->n_w++], 0, sizeof(*p));
	}
	struct watch *w = &ck->w[i];
	snprintf(w->job, sizeof(w->job), "%s", job);
	snprintf(w->on_failure, sizeof(w->on_failure), "%s", on_failure);
	snprintf(w->policy, sizeof(w->policy), "%s", policy ? policy : "");
	w->keep = keep;
}

struct scan {
	struct ckpt *ck;
	char guest[DB_NAME_MAX], host[DB_NAME_MAX];
	char why[256];
	int found;
};

static int scan_guest(void *arg, const struct db_guest *g)
{
	struct scan *s = arg;
	struct hv_guest_info info;
	struct db_migration m;
	char err[200] = "";
	if (db_mig_active_for_guest(s->ck->db, g->name, &m) == 0 && m.state != DB_MIG_QUEUED)
		return 0; /* between hosts: not a failure (a queued one has not left) */
	int rc = exec_guest_info(s->ck->ex, g, &info, err, sizeof(err));
	if (rc == 0)
		return 0;
	snprintf(s->guest, sizeof(s->guest), "%s", g->name);
	snprintf(s->host, sizeof(s->host), "%s", g->host);
	if (rc == -ENOENT)
		snprintf(s->why, sizeof(s->why), "guest %s on %s runs nowhere", g->name, g->host);
	else
		snprintf(s->why, sizeof(s->why), "guest %s on %s: %s", g->name, g->host, err);
	s->found = rc == -ENOENT ? 2 : 1;
	return 1;
}

/*
 * The restore of w's job after the failure it noted, from the latest
 * complete checkpoint. Another guest of the job in a migration that has
 * left its queue is waited for (ckpt_restore refuses with -EBUSY): the
 * watch tries again at each scan until it ends, rather than leave the job
 * down until migd restarts (bench/fault-campaign, seed 31, fault 3: a
 * source QEMU killed while the other guest's manual migration ran).
 */
static void restore_after_failure(struct ckpt *ck, struct watch *w)
{
	struct db_op latest;
	char err[512] = "";
	if (db_ckpt_latest(ck->db, w->job, &latest) < 0) {
		log_warnx("job %s: no complete checkpoint to restore from", w->job);
		w->restore_waits = 0;
		return;
	}
	struct ckpt_restore_request rq = { .checkpoint_id = latest.id, .avoid_host = w->avoid,
					   .reason = w->reason, .failure_ns = w->failure_ns };
	struct db_op out = { 0 };
	int rc = ckpt_restore(ck, &rq, &out, err, sizeof(err));
	if (rc == -EBUSY) {
		if (!w->restore_waits)
			log_info("job %s: its restore from checkpoint %" PRId64 " waits: %s",
				 w->job, latest.id, err);
		w->restore_waits = 1;
	} else {
		if (rc < 0)
			log_warnx("job %s: restore from checkpoint %" PRId64 " refused: %s",
				  w->job, latest.id, err);
		w->restore_waits = 0;
	}
	db_op_clear(&out);
	db_op_clear(&latest);
}

static void job_failed(struct ckpt *ck, struct watch *w, const struct scan *s)
{
	int64_t now = ck_now(ck);
	struct db_op latest;
	int have = db_ckpt_latest(ck->db, w->job, &latest) == 0;
	json_t *ev = migd_event_new("job.failed", now);
	json_object_set_new(ev, "job", json_string(w->job));
	json_object_set_new(ev, "guest", json_string(s->guest));
	json_object_set_new(ev, "host", json_string(s->host));
	json_object_set_new(ev, "reason", json_string(s->why));
	json_object_set_new(ev, "on_failure", json_string(w->on_failure));
	if (have)
		json_object_set_new(ev, "checkpoint", json_integer(latest.id));
	if (db_begin(ck->db) == 0)
		db_end(ck->db, db_event(ck->db, ev));
	else
		json_decref(ev);
	log_warnx("job %s failed: %s", w->job, s->why);
	w->failed_ms = now_ms();
	if (have)
		db_op_clear(&latest);
	if (strcmp(w->on_failure, "restore") != 0)
		return;
	snprintf(w->reason, sizeof(w->reason), "failure: %.200s", s->why);
	snprintf(w->avoid, sizeof(w->avoid), "%s", s->host);
	w->failure_ns = now;
	w->restore_waits = 0;
	restore_after_failure(ck, w);
}

void ck_watch_tick(struct ckpt *ck)
{
	uint64_t now = now_ms();
	if (!ck->n_w || now - ck->watch_ms < WATCH_EVERY_MS)
		return;
	ck->watch_ms = now;
	for (size_t i = 0; i < ck->n_w; i++) {
		struct watch *w = &ck->w[i];
		if (ck_op_of_job(ck, w->job))
			continue; /* its own checkpoint or restore: guests come and go */
		struct scan s = { .ck = ck };
		db_guest_list(ck->db, NULL, w->job, scan_guest, &s);
		if (!s.found) {
			w->failed_ms = 0;
			w->strikes = 0;
			w->restore_waits = 0;
			continue;
		}
		if (w->failed_ms && w->restore_waits) {
			restore_after_failure(ck, w); /* a migration in flight may have ended */
			continue;
		}
		if (w->failed_ms)
			continue; /* handled; waits until the job runs whole again */
		if (s.found == 1 && ++w->strikes < WATCH_ERRORS)
			continue; /* the backend did not answer: a few times before it counts */
		w->strikes = 0;
		job_failed(ck, w, &s);
	}
}
