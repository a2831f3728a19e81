/*
 * db_ckpt: see db_ckpt.h. Rare statements (a few per checkpoint), so each
 * is prepared when used rather than cached.
 */
#include "db_ckpt.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char *table(enum db_op_kind k)
{
	return k == DB_OP_CHECKPOINT ? "checkpoints" : "restores";
}

static int fail(struct db *db, const char *what)
{
	log_warnx("database: %s: %s", what, sqlite3_errmsg(db_handle(db)));
	return -EIO;
}

static sqlite3_stmt *prepare(struct db *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db_handle(db), sql, -1, &st, NULL) != SQLITE_OK) {
		fail(db, sql);
		return NULL;
	}
	return st;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s && *s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static void col_text(sqlite3_stmt *st, int i, char *buf, size_t len)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	snprintf(buf, len, "%s", s ? (const char *)s : "");
}

void db_op_clear(struct db_op *op)
{
	json_decref(op->body);
	op->body = NULL;
}

int db_op_state_final(const char *state)
{
	return strcmp(state, "completed") == 0 || strcmp(state, "failed") == 0;
}

int db_op_add(struct db *db, struct db_op *op)
{
	char sql[320];
	if (op->kind == DB_OP_CHECKPOINT)
		snprintf(sql, sizeof(sql), "INSERT INTO checkpoints (job, state, policy, reason,"
			 " requested_ns, snapshot, body) VALUES (?, ?, ?, ?, ?, ?, ?)");
	else
		snprintf(sql, sizeof(sql), "INSERT INTO restores (job, state, reason, requested_ns,"
			 " checkpoint_id, body) VALUES (?, ?, ?, ?, ?, ?)");
	sqlite3_stmt *st = prepare(db, sql);
	if (!st)
		return -EIO;
	if (!op->body)
		op->body = json_object();
	char *body = json_dumps(op->body, JSON_COMPACT);
	sqlite3_bind_text(st, 1, op->job, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, op->state, -1, SQLITE_TRANSIENT);
	if (op->kind == DB_OP_CHECKPOINT) {
		bind_text(st, 3, op->policy);
		bind_text(st, 4, op->reason);
		sqlite3_bind_int64(st, 5, op->requested_ns);
		bind_text(st, 6, op->snapshot);
		sqlite3_bind_text(st, 7, body ? body : "{}", -1, SQLITE_TRANSIENT);
	} else {
		bind_text(st, 3, op->reason);
		sqlite3_bind_int64(st, 4, op->requested_ns);
		sqlite3_bind_int64(st, 5, op->checkpoint_id);
		sqlite3_bind_text(st, 6, body ? body : "{}", -1, SQLITE_TRANSIENT);
	}
	free(body);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : fail(db, "op add");
	sqlite3_finalize(st);
	if (rc == 0)
		op->id = sqlite3_last_insert_rowid(db_handle(db));
	return rc;
}

int db_op_save(struct db *db, const struct db_op *op)
{
	char sql[256];
	snprintf(sql, sizeof(sql), "UPDATE %s SET state = ?, ended_ns = ?, error = ?, body = ?%s"
		 " WHERE id = ?", table(op->kind),
		 op->kind == DB_OP_CHECKPOINT ? ", snapshot = ?" : "");
	sqlite3_stmt *st = prepare(db, sql);
	if (!st)
		return -EIO;
	char *body = json_dumps(op->body ? op->body : json_object(), JSON_COMPACT);
	sqlite3_bind_text(st, 1, op->state, -1, SQLITE_TRANSIENT);
	if (op->ended_ns)
		sqlite3_bind_int64(st, 2, op->ended_ns);
	else
		sqlite3_bind_null(st, 2);
	bind_text(st, 3, op->error);
	sqlite3_bind_text(st, 4, body ? body : "{}", -1, SQLITE_TRANSIENT);
	int i = 5;
	if (op->kind == DB_OP_CHECKPOINT)
		bind_text(st, i++, op->snapshot);
	sqlite3_bind_int64(st, i, op->id);
	free(body);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : fail(db, "op save");
	if (rc == 0 && sqlite3_changes(db_handle(db)) == 0)
		rc = -ENOENT;
	sqlite3_finalize(st);
	return rc;
}

#define COLS "id, job, state, policy, reason, requested_ns, ended_ns, snapshot, error, body"
#define RCOLS "id, job, state, NULL, reason, requested_ns, ended_ns, checkpoint_id, error, body"

static void read_row(sqlite3_stmt *st, enum db_op_kind kind, struct db_op *op)
{
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->id = sqlite3_column_int64(st, 0);
	col_text(st, 1, op->job, sizeof(op->job));
	col_text(st, 2, op->state, sizeof(op->state));
	col_text(st, 3, op->policy, sizeof(op->policy));
	col_text(st, 4, op->reason, sizeof(op->reason));
	op->requested_ns = sqlite3_column_int64(st, 5);
	op->ended_ns = sqlite3_column_int64(st, 6);
	if (kind == DB_OP_CHECKPOINT)
		col_text(st, 7, op->snapshot, sizeof(op->snapshot));
	else
		op->checkpoint_id = sqlite3_column_int64(st, 7);
	col_text(st, 8, op->error, sizeof(op->error));
	const char *body = (const char *)sqlite3_column_text(st, 9);
	op->body = body ? json_loads(body, 0, NULL) : NULL;
	if (!json_is_object(op->body)) {
		json_decref(op->body);
		op->body = json_object();
	}
}

static const char *cols(enum db_op_kind k)
{
	return k == DB_OP_CHECKPOINT ? COLS : RCOLS;
}

int db_op_get(struct db *db, enum db_op_kind kind, int64_t id, struct db_op *out)
{
	char sql[256];
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s WHERE id = ?", cols(kind), table(kind));
	sqlite3_stmt *st = prepare(db, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_row(st, kind, out);
	int ret = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : fail(db, "op get");
	sqlite3_finalize(st);
	return ret;
}

int db_op_delete(struct db *db, enum db_op_kind kind, int64_t id)
{
	char sql[96];
	snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = ?", table(kind));
	sqlite3_stmt *st = prepare(db, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : fail(db, "op delete");
	if (rc == 0 && sqlite3_changes(db_handle(db)) == 0)
		rc = -ENOENT;
	sqlite3_finalize(st);
	return rc;
}

int db_op_list(struct db *db, enum db_op_kind kind, const char *job, const char *state,
	       unsigned limit, db_op_fn fn, void *arg)
{
	char sql[384];
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s WHERE (?1 IS NULL OR job = ?1) AND"
		 " (?2 IS NULL OR state = ?2) ORDER BY id DESC LIMIT ?3", cols(kind), table(kind));
	sqlite3_stmt *st = prepare(db, sql);
	if (!st)
		return -EIO;
	bind_text(st, 1, job);
	bind_text(st, 2, state);
	sqlite3_bind_int64(st, 3, limit ? (int64_t)limit : -1);
	int rc, ret = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct db_op op;
		read_row(st, kind, &op);
		ret = fn(arg, &op);
		db_op_clear(&op);
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = fail(db, "op list");
	sqlite3_finalize(st);
	return ret;
}

static int take_first(void *arg, const struct db_op *op)
{
	struct db_op *out = arg;
	*out = *op;
	out->body = json_incref(op->body);
	return 1;
}

int db_ckpt_latest(struct db *db, const char *job, struct db_op *out)
{
	memset(out, 0, sizeof(*out));
	int rc = db_op_list(db, DB_OP_CHECKPOINT, job, "completed", 1, take_first, out);
	return rc == 1 ? 0 : rc < 0 ? rc : -ENOENT;
}

int db_job_data_path(struct db *db, const char *job, char *buf, size_t len)
{
	sqlite3_stmt *st = prepare(db, "SELECT data_path FROM jobs WHERE name = ?");
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, job, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		col_text(st, 0, buf, len);
	int ret = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : fail(db, "job data path");
	sqlite3_finalize(st);
	return ret;
}

int db_job_set_data_path(struct db *db, const char *job, const char *path)
{
	sqlite3_stmt *st = prepare(db, "INSERT INTO jobs (name, data_path) VALUES (?1, ?2)"
				   " ON CONFLICT(name) DO UPDATE SET data_path = ?2");
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, job, -1, SQLITE_TRANSIENT);
	bind_text(st, 2, path);
	int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : fail(db, "job set data path");
	sqlite3_finalize(st);
	return rc;
}

int db_job_list(struct db *db, db_job_fn fn, void *arg)
{
	sqlite3_stmt *st = prepare(db, "SELECT j.name, j.data_path, (SELECT count(*) FROM guests g"
				   " WHERE g.job_id = j.id) FROM jobs j ORDER BY j.name");
	if (!st)
		return -EIO;
	int rc, ret = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char name[DB_NAME_MAX], path[1024];
		col_text(st, 0, name, sizeof(name));
		col_text(st, 1, path, sizeof(path));
		if ((ret = fn(arg, name, path, (unsigned)sqlite3_column_int(st, 2))))
			break;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = fail(db, "job list");
	sqlite3_finalize(st);
	return ret;
}
