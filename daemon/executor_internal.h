/*
 * executor_internal: what executor.c and executor_plan.c share: the
 * executor's state (struct executor and the entries it keeps in memory)
 * and the few steps of a migration's life that both take. executor.c holds
 * the backends, the queue, reconciliation, the running migrations and the
 * agent phases; executor_plan.c the planning round: the scheduler's
 * snapshot, sched_plan(), the I/O lull holds, and carrying out the plan's
 * starts and rejects.
 */
#ifndef MIGD_EXECUTOR_INTERNAL_H
#define MIGD_EXECUTOR_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "executor.h"
#include "quiesce.h"

#define MAX_BACKENDS 8
/* Real-time bounds of the agent phases: a quiesce answer is awaited for its
 * deadline plus this grace (the agent answers at its deadline at the
 * latest); a resume answer this long; a resume owed after a restart is
 * sent if the agent shows up within OWED_RESUME_MS (its watchdog, 10 s by
 * default, has resumed the guest by then anyway); the lull is checked again
 * this often while a migration waits for one. */
#define QUIESCE_GRACE_MS QGROUP_GRACE_MS
#define RESUME_WAIT_MS QGROUP_RESUME_MS
#define OWED_RESUME_MS 15000
#define LULL_CHECK_MS 100

struct backend {
	const struct hv_ops *ops;
	struct hv *hv;                 /* NULL when it did not open */
	char open_error[200];
};

enum run_phase {
	RUN_QUIESCING,                 /* row started, quiesce asked, answer awaited */
	RUN_MIGRATING,                 /* the backend migrates */
	RUN_RESUMING,                  /* resume asked; then the row takes its end */
};

/* How a row ends once its resume is answered. */
enum run_end {
	END_BACKEND,                   /* the backend's result, in final */
	END_DEFER,                     /* required quiesce failed: queued again */
	END_REFUSE,                    /* required quiesce failed: aborted */
	END_ABORT,                     /* aborted by request before migrating */
	END_FAIL,                      /* the backend would not start it */
};

struct running {
	int64_t id;                    /* the row */
	enum run_phase phase;
	struct backend *be;            /* set once launched */
	uint64_t hv_id;
	int launched;
	uint64_t last_progress_ms;     /* real time of the last progress event */
	int abort_requested;
	char guest[DB_NAME_MAX], src[DB_NAME_MAX], dst[DB_NAME_MAX];
	double cap_bps;                /* the planner's bandwidth cap */
	/* the agent side */
	struct qgroup *q;              /* the quiesce and resume (quiesce.h); NULL: none asked */
	enum run_end end;
	struct hv_progress final;      /* END_BACKEND */
	char end_why[DB_TEXT_MAX];     /* the others */
};

/* A due queued row held back while its guest's I/O is busy. */
struct lull_hold {
	int64_t id;
	uint64_t since_ms;             /* real time */
	int seen;                      /* in this planning round's queue */
	uint64_t gave_up_after_ms;     /* 0: still waiting; else it no longer waits */
	double gave_up_rate;
};

/* A resume owed after a restart, to a guest whose agent may come back. */
struct owed_resume {
	int64_t id;                    /* the row it is recorded on */
	struct qowed q;
};

struct executor {
	struct db *db;
	struct exec_opts o;
	struct backend be[MAX_BACKENDS];
	size_t n_be;
	struct backend *clock;         /* NULL: the wall clock */
	struct running *run;
	size_t n_run, cap_run;
	int dirty;                     /* plan at the next tick */
	uint64_t plan_ms;              /* the last planning round: when it began (real ms) */
	uint64_t plan_cost_us;         /* and how long it took */
	struct exec_plan_stats stats;  /* every round since start (status) */
	int64_t wake_at_ns;            /* plan then even if nothing changed; 0: never */
	int64_t last_start_ns;
	struct snap_cache *snap;       /* hosts and guests between planning rounds */
	struct agent_link *agents;     /* NULL: none */
	exec_hold_fn hold;             /* guests in a checkpoint or restore */
	void *hold_arg;
	struct lull_hold *holds;
	size_t n_holds, cap_holds;
	uint64_t next_lull_check_ms;
	struct owed_resume *owed;
	size_t n_owed, cap_owed;
};

/* ---- executor.c ---------------------------------------------------------- */

/* The driver of hosts at uri; NULL when none is open for it. */
struct backend *backend_of(struct executor *ex, const char *uri);
/* An event of type about row m, stamped now. */
json_t *mig_event(const char *type, const struct db_migration *m, int64_t now);
/* Write m, with its event, in a transaction of its own. */
int commit_row(struct executor *ex, const struct db_migration *m, const char *event);
/* m failed at now for why (not written). */
void fail_row(struct db_migration *m, int64_t now, const char *why);
/* run[i] leaves the list (the last entry takes its place). */
void remove_running(struct executor *ex, size_t i);
/* 1 when guest's agent is connected. */
int agent_connected(struct executor *ex, const char *guest);
/* Ask for a resume after a quiesce and let run[i] end once it is answered;
 * 1 when the agent is gone and the row is to end now. */
int start_resume(struct executor *ex, size_t i, struct db_migration *m);
/* End run[i]'s row as decided, with m the row as it stands; it leaves the list. */
int end_row(struct executor *ex, size_t i, struct db_migration *m);

/* ---- executor_plan.c ----------------------------------------------------- */

/* run[i]'s row to migrating, committed, then the backend asked. */
int launch(struct executor *ex, size_t i, struct db_migration *m);
/* A planning round: snapshot, plan, rejects and starts; the next wake. */
void plan_and_start(struct executor *ex);
/* 1 while the last round's cost says to gather requests a while longer. */
int plan_deferred(const struct executor *ex);

#endif
