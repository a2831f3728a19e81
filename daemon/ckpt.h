/*
 * ckpt: checkpoints of whole jobs at one consistent cut, restores from
 * them, and restarting a job whose guests died.
 *
 * A checkpoint (ARCHITECTURE.md, "One checkpoint"):
 *
 *   queued -> quiescing (every agent of the job, quiesce.h) -> pausing
 *   (every guest, all before any capture) -> snapshot (the job's sfs data
 *   path, a barrier over every server) -> saving (each guest's device and
 *   memory state as of the pause, streamed into the store, ckpt_store.h)
 *   -> resuming (every guest, then every agent) -> [images still being
 *   written, background mode] -> manifest -> completed | failed
 *
 * With QEMU's background-snapshot a guest runs again as soon as its device
 * state is taken and its memory is written as of the pause afterwards; the
 * guests are still all paused before the first is captured, so the cut is
 * one instant for the whole job (a packet one guest sends after resuming
 * reaches a guest whose image already says it had not arrived: TCP
 * retransmits it after a restore).
 *
 * A restore:
 *
 *   queued -> verifying (manifest, every image's length and SHA-256, the
 *   snapshot, memory on the target hosts: a refusal here has stopped
 *   nothing) -> stopping (whatever of the job still runs: never two copies)
 *   -> rollback (the data path to the snapshot) -> loading (each guest on
 *   its host, paused) -> resuming (all together; agents told to resume as
 *   they reconnect) -> completed | failed
 *
 * Every step is written to the row (db_ckpt.h) before it is taken. A
 * restart finds unfinished rows and settles them (ckpt_reconcile): a
 * checkpoint is failed, its guests resumed, its agents resumed when heard
 * from, its snapshot and images removed; a restore is failed, and every
 * guest of the job ends on exactly one host (the backend's reconciliation
 * has already killed half-loaded instances).
 *
 * Failure detection (ckpt_watch): for a watched job, a guest that the
 * backend says runs nowhere, or whose host is disabled or down, is a
 * failure; with on_failure "restore" the job is restored from its latest
 * complete checkpoint onto hosts other than the one that failed.
 */
#ifndef MIGD_CKPT_H
#define MIGD_CKPT_H

#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_link.h"
#include "db.h"
#include "db_ckpt.h"
#include "executor.h"

struct ckpt;

struct ckpt_opts {
	char store[PATH_MAX];         /* "sfs:/.migd/checkpoints", or a directory */
	char sfs_conf[PATH_MAX];      /* the store's and the data paths' sfs.conf */
	int background;               /* ask for background snapshots (default 1) */
	unsigned keep;                /* checkpoints kept per job by default; 0: all */
	char stream_exe[PATH_MAX];    /* migd-stream; "": saves stream through a thread */
	char state_dir[PATH_MAX];     /* migd-stream's outcome files */
};

/* The store is opened at the first checkpoint (so migd starts without sfs
 * running). */
int ckpt_new(struct db *db, struct executor *ex, const struct ckpt_opts *o, struct ckpt **out,
	     char *err, size_t errlen);
void ckpt_free(struct ckpt *ck);

/* After exec_restore: settle rows a crash left unfinished. */
int ckpt_reconcile(struct ckpt *ck);
/* Advance every operation; watch for failures. Never blocks for long. */
void ckpt_tick(struct ckpt *ck);

struct ckpt_request {
	const char *job;              /* a job, or NULL with guests */
	const char *const *guests;    /* NULL: every guest of job */
	size_t n_guests;
	const char *policy;           /* NULL: asked by a person */
	const char *reason;
	unsigned keep;                /* 0: the policy's, else ckpt_opts.keep */
};
/* Queue a checkpoint (the row is written and committed): -ENOENT no such
 * job or guest, -EBUSY a guest is migrating or in another operation,
 * -EINVAL no guests, a backend that cannot checkpoint. */
int ckpt_create(struct ckpt *ck, const struct ckpt_request *rq, struct db_op *out, char *err,
		size_t errlen);

struct ckpt_restore_request {
	int64_t checkpoint_id;        /* or 0 with manifest */
	const char *manifest;         /* a manifest's path in the store (JOB/ID/manifest.json) */
	const char *const *hosts;     /* NULL: chosen (the guests' hosts when healthy) */
	size_t n_hosts;
	const char *avoid_host;       /* never use this one (it failed) */
	int skip_rollback;            /* leave the data path as it is (a demonstration) */
	const char *reason;
	int64_t failure_ns;           /* 0: not after a failure */
};
int ckpt_restore(struct ckpt *ck, const struct ckpt_restore_request *rq, struct db_op *out,
		 char *err, size_t errlen);

/* Remove a finished checkpoint: its images, manifest and sfs snapshot,
 * then its row. -EBUSY while it runs or a restore uses it. */
int ckpt_remove(struct ckpt *ck, int64_t id, char *err, size_t errlen);

/* Watch job for failures (ckpt.h, top); on_failure: "restore" or
 * "notify"; NULL stops watching. policy names who asked. */
void ckpt_watch(struct ckpt *ck, const char *job, const char *on_failure, const char *policy,
		unsigned keep);

/* The row as an API object (the body's fields at the top level). */
json_t *ckpt_op_json(const struct db_op *op);
/* Measured cost of job's checkpoints (Daly's d): the mean whole duration,
 * quiesce to the last image written, seconds, over the last n completed;
 * 0 when none (ckpt.c, add_cost, says why not only the pause). */
double ckpt_cost_s(struct ckpt *ck, const char *job, unsigned n);

#endif
