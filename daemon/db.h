/*
 * db: migd's state and cost history in SQLite.
 *
 * One file beside the daemon holds everything migd knows: hosts, guests,
 * jobs, policies, every migration with its phase timestamps and the
 * backend's figures, and an event log. migd writes a change here (and
 * commits it) before it acts on it, so that after a crash the rows say what
 * was under way and the restart can reconcile them with the backend. WAL
 * with synchronous=FULL: a commit survives power loss, readers never block
 * the writer.
 *
 * The schema is versioned with PRAGMA user_version and moves forward one
 * step at a time (db.c keeps the steps); a fresh file runs every step from
 * 0, so the upgrade path is the path every database takes.
 *
 * Events are rows too. db_event() stores one in the current transaction and
 * keeps it for publishing; only once the transaction commits does
 * db_events_take() hand it out, so no one hears of a change that a crash
 * could still undo.
 *
 * Everything returns 0 or a negative errno: -ENOENT (no such row), -EEXIST
 * (name taken), -EIO (SQLite failed; the reason is logged).
 */
#ifndef MIGD_DB_H
#define MIGD_DB_H

#include <jansson.h>
#include <stdint.h>

#define DB_SCHEMA_VERSION 8
#define DB_NAME_MAX 64   /* names of hosts, guests, jobs, policies, with the NUL */
#define DB_URI_MAX 256
#define DB_TEXT_MAX 256  /* reasons and errors */
#define DB_HOOK_MAX 512  /* a host's health hook command */
#define DB_SENSOR_MAX 64

struct db;

struct db_host {
	int64_t id;
	char name[DB_NAME_MAX];
	char uri[DB_URI_MAX];
	unsigned max_outbound;       /* 0: the cluster default */
	unsigned max_inbound;
	uint64_t memory_bytes;       /* capacity; 0: unlimited */
	int enabled;
	char health[16];             /* "ok", "degraded" */
	char health_reason[DB_TEXT_MAX]; /* why it is degraded; "" when ok */
	int64_t health_since_ns;     /* when it turned degraded; 0 when ok */
	char health_hook[DB_HOOK_MAX];   /* command run for readings; "": migd.conf's */
	int64_t health_interval_ns;  /* 0: migd.conf's health_interval */
	int64_t health_timeout_ns;   /* 0: migd.conf's health_timeout */
	/* filled on read */
	uint64_t memory_used_bytes;  /* by the guests it runs */
	unsigned n_guests;
};

struct db_guest {
	int64_t id;
	char name[DB_NAME_MAX];
	char host[DB_NAME_MAX];      /* where it runs */
	uint64_t memory_bytes;
	uint64_t dirty_rate_bps;
	char job[DB_NAME_MAX];       /* "" when not a rank of a job */
	int rank;                    /* -1 when not a rank */
	/* filled on read */
	int64_t host_id;
	int64_t job_id;              /* 0: none */
	int64_t migration_id;        /* its queued or running migration, 0: none */
};

enum db_mig_state {
	DB_MIG_QUEUED,
	DB_MIG_STARTED,
	DB_MIG_MIGRATING,
	DB_MIG_COMPLETED,
	DB_MIG_FAILED,
	DB_MIG_ABORTED,
	DB_MIG_N_STATES,
};

/* Bits of enum db_mig_state for list filters. */
#define DB_MIG_BIT(s) (1u << (s))
#define DB_MIG_ACTIVE (DB_MIG_BIT(DB_MIG_QUEUED) | DB_MIG_BIT(DB_MIG_STARTED) | \
		       DB_MIG_BIT(DB_MIG_MIGRATING))
#define DB_MIG_RUNNING (DB_MIG_BIT(DB_MIG_STARTED) | DB_MIG_BIT(DB_MIG_MIGRATING))
#define DB_MIG_FINISHED (DB_MIG_BIT(DB_MIG_COMPLETED) | DB_MIG_BIT(DB_MIG_FAILED) | \
			 DB_MIG_BIT(DB_MIG_ABORTED))

/* How a migration treats the guest's agent (migagent): quiesce the guest's
 * parallel file system I/O around the switch-over, and maybe wait for an
 * I/O lull before starting. Fixed when the row is queued. */
enum db_quiesce_mode {
	DB_QUIESCE_BEST_EFFORT,      /* quiesce when an agent answers; go on anyway */
	DB_QUIESCE_REQUIRED,         /* no quiesce, no migration: defer or abort */
	DB_QUIESCE_OFF,
};

struct db_mig_knobs {
	enum db_quiesce_mode quiesce;
	unsigned quiesce_deadline_ms;  /* sent to the agent; real time */
	int miss_aborts;               /* required and missed: 1 abort, 0 defer */
	uint64_t io_lull_bps;          /* start below this read+write rate; 0: no wait */
	unsigned io_lull_wait_ms;      /* at most this long (real time) */
};

/* Timestamps are ns on the cluster clock, 0 when the phase was not reached;
 * figures are -1 when unknown (not finished, or reconciled after a crash). */
struct db_migration {
	int64_t id;
	char guest[DB_NAME_MAX];
	char src[DB_NAME_MAX];
	char dst[DB_NAME_MAX];       /* "" while queued without an explicit destination */
	enum db_mig_state state;
	int priority;                /* enum sched_prio: 0 periodic, 1 health, 2 manual */
	char policy[DB_NAME_MAX];    /* "" for a manual request */
	char reason[DB_TEXT_MAX];    /* why it was asked for */
	int64_t queued_ns, not_before_ns, started_ns, migrating_ns, finished_ns;
	int64_t total_ms, downtime_ms, bytes;
	int rounds;                  /* -1 unknown */
	int reconciled;              /* finished by a restart's reconciliation */
	char error[DB_TEXT_MAX];     /* why it failed or was aborted */
	struct db_mig_knobs knobs;
	/* the agent's side (schema 3); _ns on the cluster clock (0: not
	 * reached), _ms real time (-1: unknown) */
	int64_t quiesce_ns;          /* quiesce asked */
	int64_t quiesce_ms;          /* quiesce asked to answered */
	int64_t resume_ns, resume_ms;
	int64_t drained_requests, drained_bytes;
	char quiesce[DB_TEXT_MAX];   /* "ok", "missed", "no-agent", "off", "error: ..." */
	char resume[DB_TEXT_MAX];    /* "ok", "no-agent", "no reply", "error: ..." */
	int64_t lull_wait_ms;        /* waited for an I/O lull before starting */
	char lull_reason[DB_TEXT_MAX];
	int defers;                  /* times a required quiesce put it back in the queue */
	/* what the cost model is calibrated from (schema 5, calibrate.h);
	 * -1 unknown: rates in bytes/s */
	int64_t link_bps;            /* the hypervisor's measured throughput */
	int64_t dirty_rate_bps;      /* the guest's dirty rate, as last measured */
	int64_t ram_bytes;           /* RAM content sent in round 0 */
	int64_t setup_ms;            /* before the first byte went */
	/* filled by db_mig_list with DB_LIST_IDS: row ids of the names, 0 when gone */
	int64_t guest_id, src_id, dst_id;
};

struct db_policy {
	int64_t id;
	char name[DB_NAME_MAX];
	char type[16];               /* "interval" */
	json_t *params;              /* type-specific, owned by the struct: db_policy_clear() */
	int paused;
	int64_t created_ns;
	/* the policy type's memory (struct policy_state in policies/policy.h) */
	int64_t anchor_ns;           /* its periods are counted from here */
	int64_t last_fire_ns;        /* 0: never fired */
	int64_t next_fire_ns;        /* 0: not scheduled (paused) */
	uint64_t cursor;             /* round-robin position in its selection */
	uint64_t fired;              /* times it fired */
	int64_t cost_ns;             /* mtbf: the measured cost last observed; 0: none */
};

/* One sensor reading of a host (health_readings). */
struct db_reading {
	char host[DB_NAME_MAX];
	char sensor[DB_SENSOR_MAX];
	int64_t ts_ns;
	int has_value;               /* 0: "na" */
	double value;
	char unit[24];
	char status[16];             /* ipmitool's status column; "" */
	double threshold[6];         /* lnr, lcr, lnc, unc, ucr, unr; NAN: none */
	char source[16];             /* "hook", "report" */
};

/* A health rule (health_rules). */
struct db_health_rule {
	int64_t id;
	char name[DB_NAME_MAX];
	char sensor[DB_SENSOR_MAX];  /* a glob */
	char kind[8];                /* "above", "below", "rise" */
	double value;
	int64_t within_ns;           /* rise */
	int has_clear;
	double clear;                /* hysteresis level */
	int64_t clear_after_ns;      /* 0: back to service only by hand */
	int64_t created_ns;
};

struct db_counts {
	unsigned hosts, guests, policies;
	unsigned queued, running;    /* running: started or migrating */
};

/* Open (creating and upgrading) the database at path; one migd at a time
 * (-EBUSY when another process holds it). */
int db_open(const char *path, struct db **out, char *err, size_t errlen);
void db_close(struct db *db);
int db_schema_version(struct db *db);

/*
 * Counters that move whenever hosts (added, removed, enabled, disabled) or
 * guests (added, removed, moved) may have changed, rollbacks included:
 * a cache of either is good while its counter stands still.
 */
void db_generations(struct db *db, uint64_t *hosts, uint64_t *guests);

/* The SQLite connection, for the modules that keep tables of their own
 * (db_ckpt.c); they use it inside db_begin/db_commit like everything else. */
struct sqlite3 *db_handle(struct db *db);

/* A transaction around several changes; db_rollback after any failure. */
int db_begin(struct db *db);
/*
 * A group commit: from db_batch_begin to db_batch_end, every transaction
 * (db_begin .. db_commit) is a savepoint of one outer transaction, so that
 * fifty migrations ending in one pass of the executor cost one fsync, not
 * fifty (each was milliseconds of a single thread that also answers the
 * API). A transaction's rollback undoes it alone; its events leave when
 * the batch commits. Only for changes whose loss in a crash before the end
 * the next start reconciles (the backend's truth wins), never for a row
 * that must be durable before something is done.
 */
int db_batch_begin(struct db *db);
int db_batch_end(struct db *db);
/* Commit what the open batch holds now and go on with a new one (no batch:
 * nothing to do): before something that needs its row durable first. */
int db_batch_flush(struct db *db);
int db_commit(struct db *db);
void db_rollback(struct db *db);
/* Inside a transaction, one item of a batch: db_savepoint, the item's
 * changes, then db_savepoint_end with the item's result (0 or -errno). A
 * failed item's changes and events are undone and the transaction goes on.
 * Both return 0, or -EIO when the database itself failed (then roll the
 * whole transaction back). */
int db_savepoint(struct db *db, size_t *mark);
int db_savepoint_end(struct db *db, size_t mark, int item_rc);
/* Commit when rc is 0, else roll back: returns rc, or the commit's error. */
int db_end(struct db *db, int rc);

/* ---- hosts ---- */
int db_host_add(struct db *db, struct db_host *h, int64_t now_ns);          /* sets h->id */
int db_host_get(struct db *db, const char *name, struct db_host *out);
int db_host_remove(struct db *db, const char *name);
int db_host_set_enabled(struct db *db, const char *name, int enabled);
/* Every host in id order; stops at the first callback that returns non-zero
 * and returns that. */
typedef int (*db_host_fn)(void *arg, const struct db_host *h);
int db_host_list(struct db *db, db_host_fn fn, void *arg);
/* A page: at most limit hosts in name order whose names sort after after
 * ("" from the start). The next page starts after the last name. */
int db_host_page(struct db *db, const char *after, unsigned limit, db_host_fn fn, void *arg);
/* The same without memory_used_bytes and n_guests, which cost a look at
 * every guest: for the scheduler's snapshot. */
int db_host_scan(struct db *db, db_host_fn fn, void *arg);

/* Health state: "ok" (reason "" and since 0) or "degraded". */
int db_host_set_health(struct db *db, const char *name, const char *health, const char *reason,
		       int64_t since_ns);

/* ---- guests ---- */
/* Adds the job if it is new. -ENOENT: no such host; -EEXIST: name taken or
 * the job already has that rank. */
int db_guest_add(struct db *db, struct db_guest *g, int64_t now_ns);
int db_guest_get(struct db *db, const char *name, struct db_guest *out);
int db_guest_remove(struct db *db, const char *name);
int db_guest_set_host(struct db *db, const char *guest, const char *host);
/* Guests in id order, of one host and/or one job when those are not NULL. */
typedef int (*db_guest_fn)(void *arg, const struct db_guest *g);
int db_guest_list(struct db *db, const char *host, const char *job, db_guest_fn fn, void *arg);
/* A page of the same: at most limit guests in name order whose names sort
 * after after ("" from the start). */
int db_guest_page(struct db *db, const char *host, const char *job, const char *after,
		  unsigned limit, db_guest_fn fn, void *arg);
/* Every guest in id order with only id, name, host_id, memory_bytes,
 * dirty_rate_bps, job_id and rank filled: the scheduler's snapshot, cheap
 * enough to take at every planning round. */
int db_guest_scan(struct db *db, db_guest_fn fn, void *arg);

/* ---- migrations ---- */
/* Insert m (its id is set); ids are never reused. */
int db_mig_add(struct db *db, struct db_migration *m);
/* Set the agent-side and calibration figures of a new row to -1 (unknown). */
void db_mig_figures_unknown(struct db_migration *m);
int db_mig_get(struct db *db, int64_t id, struct db_migration *out);
/* Write every mutable field of m (state, dst, timestamps, figures, error). */
int db_mig_update(struct db *db, const struct db_migration *m);
/* The guest's queued or running migration, -ENOENT when none. */
int db_mig_active_for_guest(struct db *db, const char *guest, struct db_migration *out);

enum db_mig_order {
	DB_ORDER_ID,                 /* the order they were asked for */
	DB_ORDER_QUEUE,              /* priority (highest first), then id */
	DB_ORDER_FINISHED,           /* finish time, then id */
};

struct db_mig_filter {
	unsigned states;             /* DB_MIG_BIT mask; 0: all */
	int64_t since_ns;            /* finished at or after; 0: any */
	const char *policy;          /* NULL: any; "" manual only */
	int64_t not_before_max_ns;   /* only rows due by then; 0: any */
	unsigned limit;              /* the last N in the order; 0: all */
	/* paging: with page set, the first limit rows in the order after the row
	 * whose id is after_id (0: from the first), in any order. */
	int page;
	int64_t after_id;
	enum db_mig_order order;
	int with_ids;                /* fill guest_id, src_id, dst_id */
};
typedef int (*db_mig_fn)(void *arg, const struct db_migration *m);
int db_mig_list(struct db *db, const struct db_mig_filter *f, db_mig_fn fn, void *arg);
/* Push back by delay_ns the queued rows of one policy firing (policy,
 * queued_ns) that are due after after_ns. */
int db_mig_delay_firing(struct db *db, const char *policy, int64_t queued_ns, int64_t after_ns,
			int64_t delay_ns);
/* Earliest not_before_ns of a queued row after now_ns; 0 when none. */
int64_t db_mig_next_due_ns(struct db *db, int64_t now_ns);
/* Most recent started_ns; 0 when none. */
int64_t db_mig_last_start_ns(struct db *db);

const char *db_mig_state_name(enum db_mig_state s);
int db_mig_state_parse(const char *name, enum db_mig_state *out);

/* ---- policies ---- */
int db_policy_add(struct db *db, struct db_policy *p);   /* sets p->id; params borrowed */
int db_policy_get(struct db *db, const char *name, struct db_policy *out);
int db_policy_update(struct db *db, const struct db_policy *p);
int db_policy_remove(struct db *db, const char *name);
/* The callback borrows p (and p->params) for the call only. */
typedef int (*db_policy_fn)(void *arg, const struct db_policy *p);
int db_policy_list(struct db *db, db_policy_fn fn, void *arg);
void db_policy_clear(struct db_policy *p);  /* drops params */

/* The mean total time (ms) of the policy's last `last` completed
 * migrations that have figures, and how many there were (0: none). */
int db_policy_cost(struct db *db, const char *policy, unsigned last, double *mean_ms,
		   unsigned *count);

/* ---- health ---- */
int db_reading_add(struct db *db, const struct db_reading *r);
typedef int (*db_reading_fn)(void *arg, const struct db_reading *r);
/* The latest reading of each sensor of host (every host when NULL), by
 * host then sensor. */
int db_reading_latest(struct db *db, const char *host, db_reading_fn fn, void *arg);
/* The readings with a value of one sensor of a host since since_ns,
 * oldest first. */
int db_reading_history(struct db *db, const char *host, const char *sensor, int64_t since_ns,
		       db_reading_fn fn, void *arg);
/* Drop readings older than before_ns, except each sensor's latest. */
int db_reading_prune(struct db *db, int64_t before_ns);

int db_rule_add(struct db *db, struct db_health_rule *r);   /* -EEXIST: name taken */
int db_rule_remove(struct db *db, const char *name);
typedef int (*db_rule_fn)(void *arg, const struct db_health_rule *r);
int db_rule_list(struct db *db, db_rule_fn fn, void *arg);

/* ---- rows as API objects (migd_proto.h); the caller owns the result ---- */
json_t *db_host_json(const struct db_host *h);
json_t *db_guest_json(const struct db_guest *g);
json_t *db_mig_json(const struct db_migration *m);
json_t *db_reading_json(const struct db_reading *r);
json_t *db_rule_json(const struct db_health_rule *r);
json_t *db_knobs_json(const struct db_mig_knobs *k);
const char *db_quiesce_mode_name(enum db_quiesce_mode mode); /* "required", ... */
int db_quiesce_mode_parse(const char *name, enum db_quiesce_mode *out);
const char *db_priority_name(int priority);      /* "periodic", "health", "manual" */
/* Names of hosts, guests, jobs and policies: 1 to 63 of [A-Za-z0-9._-],
 * starting with a letter or digit (they appear in URIs, selectors, logs).
 * 0 or -EINVAL. */
int db_name_check(const char *name);
int db_priority_parse(const char *name, int *out);

/* ---- events and counts ---- */
/* Store an event (from migd_event_new) in the current transaction; steals ev. */
int db_event(struct db *db, json_t *ev);
/* The event log a page at a time: the first limit events with an id above
 * after_id (of a type starting with type_prefix, when not NULL), oldest
 * first, each its stored body with its "event_id"; fn borrows ev for the call. */
typedef int (*db_event_fn)(void *arg, json_t *ev);
int db_event_page(struct db *db, int64_t after_id, unsigned limit, const char *type_prefix,
		  db_event_fn fn, void *arg);
/* An event that goes out with the others but is not logged
 * (migration.progress: it would be most of the log); steals ev. */
void db_event_transient(struct db *db, json_t *ev);
/* Committed events not yet handed out, oldest first; the caller owns the
 * array (NULL when there are none). */
json_t *db_events_take(struct db *db);
int db_counts(struct db *db, struct db_counts *out);

#endif
