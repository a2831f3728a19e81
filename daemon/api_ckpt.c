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
 */
#include "api.h"
#include "api_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
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

const struct api_cmd api_ckpt_cmds[] = {
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
