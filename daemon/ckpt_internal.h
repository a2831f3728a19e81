/*
 * ckpt_internal: what ckpt.c (checkpoints, the shared machinery) and
 * ckpt_restore.c (restores, failure detection) share. Not for other files.
 */
#ifndef MIGD_CKPT_INTERNAL_H
#define MIGD_CKPT_INTERNAL_H

#include "ckpt.h"
#include "ckpt_store.h"
#include "hv.h"
#include "quiesce.h"

#define CKPT_MANIFEST "manifest.json"
#define CKPT_MANIFEST_MAX (4u << 20)
#define CKPT_FORMAT "migd-checkpoint/1"
#define CKPT_OWED_RESUME_MS 60000  /* a restored or reconciled agent is resumed if heard this soon */

enum ophase {
	/* checkpoints */
	P_QUIESCE, P_PAUSE, P_SNAPSHOT, P_SAVE, P_RESUME_AGENTS, P_WRITE, P_MANIFEST, P_KEEP,
	/* a checkpoint that failed: undo in this order */
	P_UNDO_SAVES, P_UNDO_AGENTS, P_UNDO_STORE,
	/* restores */
	R_VERIFY, R_STOP, R_ROLLBACK, R_LOAD, R_RESUME,
	P_DONE,
};

/* One guest of an operation. */
struct opguest {
	char name[DB_NAME_MAX];
	char host[DB_NAME_MAX];       /* where it runs (checkpoint) or will run (restore) */
	uint64_t memory_bytes;
	int rank;
	const struct hv_ops *ops;
	struct hv *hv;
	uint64_t hv_id;
	int launched;                 /* a save or load was started under hv_id */
	int abort_sent;
	int be_done;                  /* the backend said it ended (prog.state) */
	struct hv_progress prog;
	struct ckpt_stream *stream;
	int stream_done;              /* 1 ok, < 0 failed, 0 running */
	uint64_t bytes;
	char sha[CKPT_SHA_HEX];
	int by_path;                  /* the backend wrote the image file itself */
	int paused;                   /* we paused it (a checkpoint) */
	int captured;                 /* its state is taken (the cut) */
	char *config;                 /* backend's description, for the manifest */
	char err[256];
};

struct old_list; /* ckpt.c: checkpoints retention removes */

struct op {
	struct ckpt *ck;              /* for its tasks */
	struct old_list *old;
	struct db_op row;             /* row.body: owned */
	enum ophase phase;
	struct opguest *g;
	size_t n;
	struct qgroup *q;
	struct ckpt_task *task;
	int task_rc;
	char task_err[512];
	char rel[160];                /* JOB/ID in the store */
	char data_path[1024];         /* the job's sfs directory; "" none */
	int background;
	unsigned keep;
	int skip_rollback;
	char avoid[DB_NAME_MAX];
	int64_t failure_ns;
	int required;                 /* quiesce required */
	unsigned deadline_ms;
	/* real-time marks (now_ms), 0 until reached */
	uint64_t t_start, t_quiesced, t_paused, t_snapshot, t_captured, t_resumed, t_agents,
		t_written, t_end;
	char why[DB_TEXT_MAX];        /* why it failed */
};

struct watch {
	char job[DB_NAME_MAX];
	char on_failure[16];
	char policy[DB_NAME_MAX];
	unsigned keep;
	uint64_t failed_ms;           /* a failure seen and handled: wait for the restore */
	unsigned strikes;             /* scans in a row the backend did not answer */
	int restore_waits;            /* its restore waits for a migration in flight to end */
	char reason[256];             /* the failure the waiting restore is for */
	char avoid[DB_NAME_MAX];      /* and the host it failed on */
	int64_t failure_ns;
};

struct ckpt {
	struct db *db;
	struct executor *ex;
	struct ckpt_opts o;
	struct ckpt_store *store;     /* opened on first use */
	char store_err[256];
	struct op **ops;
	size_t n_ops, cap_ops;
	struct watch *w;
	size_t n_w;
	uint64_t watch_ms;            /* last failure scan */
	struct qowed *owed;
	size_t n_owed;
};

/* ckpt.c, for ckpt_restore.c */
int ck_store(struct ckpt *ck, char *err, size_t errlen);
int64_t ck_now(struct ckpt *ck);
struct op *ck_op_new(struct ckpt *ck);
void ck_op_free(struct op *op);
int ck_commit(struct ckpt *ck, struct op *op, const char *event);
/* A new row for op with its KIND.queued event; on failure op is dropped. */
int ck_op_insert(struct ckpt *ck, struct op *op, char *err, size_t errlen);
/* The row to state, with its KIND.STATE event. */
void ck_set_state(struct ckpt *ck, struct op *op, const char *state);
/* The row ends (completed or failed, with op->why): ended, logged, P_DONE. */
void ck_finish(struct ckpt *ck, struct op *op, const char *state);
void ck_fail(struct ckpt *ck, struct op *op, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int ck_task(struct ckpt *ck, struct op *op, ckpt_task_fn fn);
int ck_task_done(struct op *op);
/* A resume owed to guest's agent (quiesce.h, qowed); reconnect after a restore. */
void ck_owe_resume(struct ckpt *ck, const char *guest, int reconnect);
int ck_guest_driver(struct ckpt *ck, struct opguest *g, char *err, size_t errlen);
const struct op *ck_op_of_guest(const struct ckpt *ck, const char *guest);
const struct op *ck_op_of_job(const struct ckpt *ck, const char *job);
json_t *ck_guests_json(const struct op *op);
void ck_poll_guest(struct ckpt *ck, struct op *op, struct opguest *g);

/* ckpt_restore.c, for ckpt.c */
void ck_restore_step(struct ckpt *ck, struct op *op);
void ck_watch_tick(struct ckpt *ck);
int ck_reconcile_restore(struct ckpt *ck, struct db_op *row);

#endif
