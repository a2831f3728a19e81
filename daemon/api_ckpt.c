/*
 * api_ckpt: the API commands of checkpoints, restores and jobs (ckpt.h).
 *
 *   job.set {name, data}              the job's sfs data path ("" clears)
 *   job.list {}                       [{name, data, guests}]
 *   checkpoint.create {job | guests[], keep}
 *   checkpoint.list {job, limit}      newest first
 *   checkpoint.show {id}
 *   checkpoint.rm {id}
 *   restore {checkpoint | manifest, hosts[], skip_rollback}
 *   restore.list {job, limit}
 *   restore.show {id}
 *   checkpoint.predict {job, mtbf_s}  what a checkpoint and a restore of the job
 *                                     would cost, from the history or the model
 */
#include "api.h"
#include "api_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>

#include "checkpoint.h"
#include "ckpt.h"
#include "config.h"
#include "db_ckpt.h"
#include "migd_proto.h"

#define MAX_LIST 256

void api_set_ckpt(struct api *api, struct ckpt *ck)
{
	api->ck = ck;
}

static int need_ckpt(struct api *api, char *err, size_t errlen)
{
	if (api->ck)
		return 0;
	snprintf(err, errlen, "checkpoints are not available in this migd");
	return -ENOTSUP;
}

/* Names of an array argument into names (at most max); -EINVAL naming the
 * bad element. */
static int arg_names(json_t *args, const char *key, const char **names, size_t max, size_t *n,
		     char *err, size_t errlen)
{
	json_t *a = json_object_get(args, key);
	*n = 0;
	if (!a)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > max) {
		snprintf(err, errlen, "argument \"%s\": expected an array of at most %zu names", key,
			 max);
		return -EINVAL;
	}
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v) {
		const char *s = json_string_value(v);
		if (!s || db_name_check(s) < 0) {
			snprintf(err, errlen, "argument \"%s\"[%zu] = %.80s: expected a name", key, i,
				 s ? s : "(not a string)");
			return -EINVAL;
		}
		names[(*n)++] = s;
	}
	return 0;
}

static int cmd_job_set(struct api *api, json_t *args, json_t **result, char *err,
		       size_t errlen)
{
	const char *name = NULL, *data = NULL;
	int rc = arg_name(args, "name", 1, &name, err, errlen);
	if (rc == 0)
		rc = migd_arg_str(args, "data", 1, &data, err, errlen);
	if (rc < 0)
		return rc;
	const char *path = data;
	if (strncmp(path, "sfs:", 4) == 0)
		path += 4;
	if (*path && (*path != '/' || strlen(path) > 1000 || strstr(path, "/../"))) {
		snprintf(err, errlen, "argument \"data\" = \"%.80s\": expected sfs:/PATH, an absolute"
			 " directory of sfs (or \"\" to clear)", data);
		return -EINVAL;
	}
	rc = db_begin(api->db);
	if (rc == 0)
		rc = db_job_set_data_path(api->db, name, path);
	if (rc == 0) {
		json_t *ev = migd_event_new("job.changed", exec_now_ns(api->ex));
		json_object_set_new(ev, "job", json_string(name));
		json_object_set_new(ev, "data", json_string(path));
		rc = db_event(api->db, ev);
	}
	rc = db_end(api->db, rc);
	if (rc < 0)
		return db_error(rc, err, errlen);
	*result = json_pack("{s:s, s:s}", "name", name, "data", path);
	return 0;
}

static int append_job(void *arg, const char *name, const char *data, unsigned n)
{
	return json_array_append_new(arg, json_pack("{s:s, s:s, s:i}", "name", name, "data", data,
						    "guests", n));
}

static int cmd_job_list(struct api *api, json_t *args, json_t **result, char *err,
			size_t errlen)
{
	(void)args;
	*result = json_array();
	int rc = db_job_list(api->db, append_job, *result);
	return rc < 0 ? db_error(rc, err, errlen) : 0;
}

static int cmd_checkpoint_create(struct api *api, json_t *args, json_t **result, char *err,
				 size_t errlen)
{
	const char *job = NULL, *names[MAX_LIST];
	size_t n = 0;
	uint64_t keep = 0;
	int rc = need_ckpt(api, err, errlen);
	if (rc == 0)
		rc = arg_name(args, "job", 0, &job, err, errlen);
	if (rc == -ENOENT)
		rc = 0;
	if (rc == 0)
		rc = arg_names(args, "guests", names, MAX_LIST, &n, err, errlen);
	if (rc == 0)
		rc = arg_u64(args, "keep", 0, 100000, &keep, err, errlen);
	if (rc == 0 && !!job == !!n) {
		snprintf(err, errlen, "name a job or guests (not both)");
		rc = -EINVAL;
	}
	if (rc < 0)
		return rc;
	struct ckpt_request rq = { .job = job, .guests = n ? names : NULL, .n_guests = n,
				   .keep = (unsigned)keep };
	struct db_op op = { 0 };
	rc = ckpt_create(api->ck, &rq, &op, err, errlen);
	if (rc < 0)
		return rc;
	*result = ckpt_op_json(&op);
	db_op_clear(&op);
	return 0;
}

static int append_op(void *arg, const struct db_op *op)
{
	return json_array_append_new(arg, ckpt_op_json(op));
}

static int list_ops(struct api *api, enum db_op_kind kind, json_t *args, json_t **result,
		    char *err, size_t errlen)
{
	const char *job = NULL;
	uint64_t limit = 0;
	int rc = arg_name(args, "job", 0, &job, err, errlen);
	if (rc == -ENOENT)
		rc = 0;
	if (rc == 0)
		rc = arg_u64(args, "limit", 0, 1000000, &limit, err, errlen);
	if (rc < 0)
		return rc;
	*result = json_array();
	rc = db_op_list(api->db, kind, job, NULL, (unsigned)limit, append_op, *result);
	return rc < 0 ? db_error(rc, err, errlen) : 0;
}

static int show_op(struct api *api, enum db_op_kind kind, json_t *args, json_t **result,
		   char *err, size_t errlen)
{
	uint64_t id = 0;
	struct db_op op;
	int rc = arg_u64(args, "id", 1, INT64_MAX, &id, err, errlen);
	if (rc < 0)
		return rc;
	rc = db_op_get(api->db, kind, (int64_t)id, &op);
	if (rc == -ENOENT)
		snprintf(err, errlen, "%s %" PRIu64 ": no such %s",
			 kind == DB_OP_CHECKPOINT ? "checkpoint" : "restore", id,
			 kind == DB_OP_CHECKPOINT ? "checkpoint" : "restore");
	if (rc < 0)
		return db_error(rc, err, errlen);
	*result = ckpt_op_json(&op);
	db_op_clear(&op);
	return 0;
}

static int cmd_checkpoint_list(struct api *api, json_t *args, json_t **result, char *err,
			       size_t errlen)
{
	return list_ops(api, DB_OP_CHECKPOINT, args, result, err, errlen);
}

static int cmd_checkpoint_show(struct api *api, json_t *args, json_t **result, char *err,
			       size_t errlen)
{
	return show_op(api, DB_OP_CHECKPOINT, args, result, err, errlen);
}

static int cmd_checkpoint_rm(struct api *api, json_t *args, json_t **result, char *err,
			     size_t errlen)
{
	uint64_t id = 0;
	int rc = need_ckpt(api, err, errlen);
	if (rc == 0)
		rc = arg_u64(args, "id", 1, INT64_MAX, &id, err, errlen);
	if (rc == 0)
		rc = ckpt_remove(api->ck, (int64_t)id, err, errlen);
	if (rc < 0)
		return rc;
	*result = json_pack("{s:I, s:b}", "id", (json_int_t)id, "removed", 1);
	return 0;
}

static int cmd_restore(struct api *api, json_t *args, json_t **result, char *err,
		       size_t errlen)
{
	uint64_t id = 0;
	const char *manifest = NULL, *hosts[MAX_LIST];
	size_t n = 0;
	int rc = need_ckpt(api, err, errlen);
	if (rc == 0)
		rc = arg_u64(args, "checkpoint", 0, INT64_MAX, &id, err, errlen);
	if (rc == 0)
		rc = migd_arg_str(args, "manifest", 0, &manifest, err, errlen);
	if (rc == -ENOENT)
		rc = 0;
	if (rc == 0)
		rc = arg_names(args, "hosts", hosts, MAX_LIST, &n, err, errlen);
	json_t *skip = json_object_get(args, "skip_rollback");
	if (rc == 0 && skip && !json_is_boolean(skip)) {
		snprintf(err, errlen, "argument \"skip_rollback\": expected true or false");
		rc = -EINVAL;
	}
	if (rc == 0 && !id == !manifest) {
		snprintf(err, errlen, "name a checkpoint or a manifest (not both)");
		rc = -EINVAL;
	}
	if (rc < 0)
		return rc;
	struct ckpt_restore_request rq = {
		.checkpoint_id = (int64_t)id, .manifest = manifest, .hosts = n ? hosts : NULL,
		.n_hosts = n, .skip_rollback = json_is_true(skip), .reason = "manual",
	};
	struct db_op op = { 0 };
	rc = ckpt_restore(api->ck, &rq, &op, err, errlen);
	if (rc < 0)
		return rc;
	*result = ckpt_op_json(&op);
	db_op_clear(&op);
	return 0;
}

static int cmd_restore_list(struct api *api, json_t *args, json_t **result, char *err,
			    size_t errlen)
{
	return list_ops(api, DB_OP_RESTORE, args, result, err, errlen);
}

static int cmd_restore_show(struct api *api, json_t *args, json_t **result, char *err,
			    size_t errlen)
{
	return show_op(api, DB_OP_RESTORE, args, result, err, errlen);
}

/* ---- predict ---- */

struct hist {
	double bytes, mem, write_ms, pause_ms, load_ms;
	unsigned n, n_job, n_restore;
	const char *job;
};

static int add_hist(void *arg, const struct db_op *op)
{
	struct hist *h = arg;
	json_t *b = op->body;
	double bytes = json_number_value(json_object_get(b, "bytes"));
	double wms = json_number_value(json_object_get(json_object_get(b, "phases"), "write_ms"));
	double mem = 0, moved = 0;
	size_t i;
	json_t *g;
	json_array_foreach(json_object_get(b, "guests"), i, g) {
		mem += json_number_value(json_object_get(g, "memory_bytes"));
		moved += json_number_value(json_object_get(g, "backend_bytes"));
	}
	if (moved > bytes) /* the backend's own count (the sim's image is a small header) */
		bytes = moved;
	if (!(bytes > 0 && wms > 0 && mem > 0))
		return 0;
	h->bytes += bytes;
	h->mem += mem;
	h->write_ms += wms;
	h->n++;
	if (h->job && strcmp(op->job, h->job) == 0) {
		h->pause_ms += json_number_value(json_object_get(b, "job_pause_ms"));
		h->n_job++;
	}
	return h->n >= 20;
}

static int add_restore(void *arg, const struct db_op *op)
{
	struct hist *h = arg;
	double ms = json_number_value(json_object_get(op->body, "load_ms"));
	if (ms > 0) {
		h->load_ms += ms;
		h->n_restore++;
	}
	return h->n_restore >= 20;
}

struct mem_sum {
	double mem;
	unsigned n;
};

static int add_guest_mem(void *arg, const struct db_guest *g)
{
	struct mem_sum *m = arg;
	m->mem += (double)g->memory_bytes;
	m->n++;
	return 0;
}

/* From the completed checkpoints (up to 20, any job): the store's write rate
 * and how full images are for their memory; the job's own pauses. Without
 * history: the configured store bandwidth (the sim's model), images as
 * large as memory, the pause of the model (5 ms device state in background
 * mode, the whole write in paused mode). */
static int cmd_checkpoint_predict(struct api *api, json_t *args, json_t **result, char *err,
				  size_t errlen)
{
	const char *job = NULL;
	double mtbf = 0;
	int rc = arg_name(args, "job", 1, &job, err, errlen);
	if (rc == 0 && (rc = migd_arg_num(args, "mtbf_s", 0, &mtbf, err, errlen)) == -ENOENT)
		rc = 0;
	if (rc == 0 && (!isfinite(mtbf) || mtbf < 0)) {
		snprintf(err, errlen, "argument \"mtbf_s\": expected seconds >= 0");
		rc = -EINVAL;
	}
	if (rc < 0)
		return rc;
	struct mem_sum m = { 0 };
	char dp[8];
	if ((rc = db_job_data_path(api->db, job, dp, sizeof(dp))) == -ENOENT)
		snprintf(err, errlen, "job \"%s\": no such job", job);
	if (rc == 0)
		rc = db_guest_list(api->db, NULL, job, add_guest_mem, &m);
	if (rc < 0)
		return db_error(rc, err, errlen);
	struct hist h = { .job = job };
	db_op_list(api->db, DB_OP_CHECKPOINT, NULL, "completed", 0, add_hist, &h);
	db_op_list(api->db, DB_OP_RESTORE, NULL, "completed", 0, add_restore, &h);
	double store_bps = h.n ? h.bytes / (h.write_ms / 1e3) : (double)api->conf->ckpt_sim_store_bps;
	double fill = h.n ? h.bytes / h.mem : 1.0;
	double bytes = m.mem * fill;
	double write_s = bytes / store_bps;
	double pause_ms = h.n_job ? h.pause_ms / h.n_job
			 : api->conf->ckpt_background ? 5.0 + m.n : write_s * 1e3;
	/* a restore reads every image twice (checksums first, then the load) */
	double restore_s = 2 * write_s + 0.1 * m.n;
	if (h.n_restore) /* measured loads, scaled to this job's bytes */
		restore_s = write_s + h.load_ms / h.n_restore / 1e3;
	*result = json_pack("{s:s, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:s, s:i}", "job", job,
			    "guests", m.n, "memory_bytes", m.mem, "bytes", bytes, "store_bps",
			    store_bps, "write_s", write_s, "job_pause_ms", pause_ms, "restore_s",
			    restore_s, "source", h.n ? "history" : "model", "samples", h.n);
	double d = api->ck ? ckpt_cost_s(api->ck, job, 5) : 0;
	if (!(d > 0))
		d = pause_ms / 1e3;
	json_object_set_new(*result, "cost_s", json_real(d));
	if (mtbf > 0) {
		json_object_set_new(*result, "mtbf_s", json_real(mtbf));
		json_object_set_new(*result, "daly_s", json_real(ckpt_daly_s(d, mtbf)));
		json_object_set_new(*result, "young_s", json_real(ckpt_young_s(d, mtbf)));
		double tau = ckpt_daly_s(d, mtbf);
		json_object_set_new(*result, "efficiency", json_real(
			ckpt_daly_efficiency(tau, d, restore_s, mtbf)));
	}
	return 0;
}

const struct api_cmd api_ckpt_cmds[] = {
	{ "checkpoint.predict", cmd_checkpoint_predict, "job,mtbf_s" },
	{ "job.set", cmd_job_set, "name,data" },
	{ "job.list", cmd_job_list, "" },
	{ "checkpoint.create", cmd_checkpoint_create, "job,guests,keep" },
	{ "checkpoint.list", cmd_checkpoint_list, "job,limit" },
	{ "checkpoint.show", cmd_checkpoint_show, "id" },
	{ "checkpoint.rm", cmd_checkpoint_rm, "id" },
	{ "restore", cmd_restore, "checkpoint,manifest,hosts,skip_rollback" },
	{ "restore.list", cmd_restore_list, "job,limit" },
	{ "restore.show", cmd_restore_show, "id" },
	{ NULL, NULL, NULL },
};
