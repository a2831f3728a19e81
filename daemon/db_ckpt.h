/*
 * db_ckpt: the checkpoints and restores tables, and a job's data path.
 *
 * A checkpoint or restore is one row: the columns a query needs (job,
 * state, times, the sfs snapshot, the error) and a JSON body with the rest
 * (per guest: host, image, bytes, checksum, phases; per phase: times), so
 * that what migctl shows grows without a schema step each time. The row is
 * written before migd acts, like a migration's (db.h), and its state says
 * what a restart must clean up (ckpt.c).
 *
 * Checkpoint states: queued, quiescing, pausing, snapshot, saving,
 * resuming, completed, failed. Restore states: queued, verifying,
 * stopping, rollback, loading, resuming, completed, failed.
 * Every call runs inside the caller's transaction (db_begin/db_commit).
 */
#ifndef MIGD_DB_CKPT_H
#define MIGD_DB_CKPT_H

#include <jansson.h>
#include <stdint.h>

#include "db.h"

enum db_op_kind { DB_OP_CHECKPOINT, DB_OP_RESTORE };

struct db_op {
	enum db_op_kind kind;
	int64_t id;
	char job[DB_NAME_MAX];
	char state[16];
	char policy[DB_NAME_MAX];     /* "" when asked by a person */
	char reason[DB_TEXT_MAX];
	int64_t requested_ns;
	int64_t ended_ns;             /* 0 while it runs */
	char snapshot[160];           /* checkpoints: the sfs snapshot's name */
	int64_t checkpoint_id;        /* restores: the checkpoint restored */
	char error[DB_TEXT_MAX];
	json_t *body;                 /* owned; an object */
};

/* Frees body. */
void db_op_clear(struct db_op *op);
/* 1 for completed and failed. */
int db_op_state_final(const char *state);

/* A new row from op (id and the times filled in op). */
int db_op_add(struct db *db, struct db_op *op);
/* Write op's state, ended_ns, snapshot, error and body. */
int db_op_save(struct db *db, const struct db_op *op);
int db_op_get(struct db *db, enum db_op_kind kind, int64_t id, struct db_op *out);
int db_op_delete(struct db *db, enum db_op_kind kind, int64_t id);
/* Rows of one kind, newest first; job or state NULL: any; limit 0: all.
 * fn's op is freed after it returns; non-zero from fn stops. */
typedef int (*db_op_fn)(void *arg, const struct db_op *op);
int db_op_list(struct db *db, enum db_op_kind kind, const char *job, const char *state,
	       unsigned limit, db_op_fn fn, void *arg);
/* The newest completed checkpoint of job: -ENOENT when none. */
int db_ckpt_latest(struct db *db, const char *job, struct db_op *out);

/* A job's data path ("" when none is set); -ENOENT: no such job. */
int db_job_data_path(struct db *db, const char *job, char *buf, size_t len);
/* Set it (the job is made when new); "" clears it. */
int db_job_set_data_path(struct db *db, const char *job, const char *path);
/* Every job: name, data path, guests. */
typedef int (*db_job_fn)(void *arg, const char *name, const char *data_path, unsigned n_guests);
int db_job_list(struct db *db, db_job_fn fn, void *arg);

#endif
