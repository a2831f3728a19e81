/*
 * executor: the life of a migration, from the queue to its cost row.
 *
 *   queued -> [I/O lull wait] -> started -> [quiesce] -> migrating
 *          -> [resume] -> completed / failed / aborted
 *   (a required quiesce that fails: resume, then queued again later
 *    (deferred) or aborted)
 *
 * The agent phases (agent_link.h) follow the migration's knobs (struct
 * db_mig_knobs, fixed when it is queued): wait, in real time and at most
 * io_lull_wait_ms, while the guest's agent reports I/O at or above
 * io_lull_bps (the row stays queued and the planner does not see it);
 * quiesce with the deadline; and after any quiesce was asked, resume,
 * whatever happened (success, failure, abort, refusal), before the row
 * takes its final state. A restart owes a resume to every row it finds
 * quiesced and sends it when that guest's agent is heard from (for a
 * while; the agent's watchdog covers the rest).
 *
 * Every move is committed to the database (with its event) before migd
 * acts on it: the row says "migrating" before the backend is asked, so a
 * crash at any point leaves a row that the next start reconciles against
 * where the backend says the guest runs (exec_restore).
 *
 * The executor owns the hypervisor drivers and the cluster clock: the clock
 * of the first driver (the sim's virtual clock on the sim backend), which
 * stamps every row, gap and policy time. It never blocks: exec_tick() polls
 * the running migrations, and plans when something changed (a request, a
 * migration ending, a host coming or going) or when a wait runs out (the
 * start gap, a staggered start falling due): it builds the scheduler's
 * snapshot from the database, calls sched_plan() and carries out its
 * starts and rejects.
 */
#ifndef MIGD_EXECUTOR_H
#define MIGD_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#include "agent_link.h"
#include "db.h"
#include "hv.h"
#include "scheduler.h"

struct executor;

struct exec_opts {
	struct sched_limits limits;
	struct hv_migrate_params knobs;     /* bandwidth_bps is the planner's cap */
	unsigned progress_interval_ms;      /* migration.progress at most this often */
	struct hv_env env;                  /* for opening the drivers */
	struct db_mig_knobs knobs_default;  /* a request without knobs gets these */
	int64_t defer_delay_ns;             /* cluster clock */
	unsigned max_defers;
};

/* The agents to quiesce and to ask for I/O rates; NULL (the default): no
 * agents, every quiesce outcome is "no-agent". Borrowed. */
void exec_set_agents(struct executor *ex, struct agent_link *agents);
struct agent_link *exec_agents(struct executor *ex);
/* The knobs of a migration that sets none (migd.conf's [agent]). */
const struct db_mig_knobs *exec_knobs_default(const struct executor *ex);

/* Open every driver built in. The executor keeps db (borrowed). */
int exec_new(struct db *db, const struct exec_opts *opts, struct executor **out, char *err,
	     size_t errlen);
void exec_free(struct executor *ex);

/*
 * After a (re)start: hand every host to its driver, reconcile every row left
 * started or migrating with the backend (on the destination: completed; on
 * the source: failed, "interrupted by a migd restart"; a `reconciled` event
 * each), then make the guests table follow the backend. Queued rows stay.
 */
int exec_restore(struct executor *ex);

/* Poll running migrations; plan and start if anything changed or fell due. */
void exec_tick(struct executor *ex);
/* Something the planner sees changed: plan at the next tick. */
void exec_wake(struct executor *ex);
/* A bulk registration begins (1) or ends (0): each backend groups its own
 * writes meanwhile (hv_ops.batch). */
void exec_batch(struct executor *ex, int begin);
/* Host h's row was changed and committed, the hosts counter going from
 * gen_before (db_generations before the change): the planner's cache takes
 * the row instead of reading every host again. */
void exec_host_changed(struct executor *ex, uint64_t gen_before, const struct db_host *h);

/* The cluster clock, ns since the epoch. */
int64_t exec_now_ns(struct executor *ex);
/* 1 when the clock is a simulation's (status reports it as sim_time_ns). */
int exec_clock_is_sim(const struct executor *ex);
unsigned exec_n_running(const struct executor *ex);

/* What planning cost since migd started, in its own thread's CPU time: the
 * rounds, the part that reads the snapshot and plans (what grows with the
 * cluster), and the part that writes the started rows and asks the
 * backends (what grows with the migrations started). */
struct exec_plan_stats {
	uint64_t rounds;
	uint64_t plan_cpu_us;
	uint64_t start_cpu_us;
	uint64_t started;
};
void exec_plan_stats(const struct executor *ex, struct exec_plan_stats *out);

/* The driver of a URI's scheme: NULL with the reason in err when none is
 * built in or it did not open. */
const struct hv_ops *exec_backend_check(struct executor *ex, const char *uri, char *err,
					size_t errlen);
/* Backend side of host.add / host.rm / guest.add. */
int exec_host_add(struct executor *ex, const char *name, const char *uri, char *err,
		  size_t errlen);
int exec_host_remove(struct executor *ex, const char *name, const char *uri, char *err,
		     size_t errlen);
int exec_guest_create(struct executor *ex, const char *host_uri, const struct db_guest *g,
		      char *err, size_t errlen);

/* The backend's truth about a guest of the table (where it runs, its
 * address): a guest.show asks this; 0 or the backend's error. */
int exec_guest_info(struct executor *ex, const struct db_guest *g, struct hv_guest_info *out,
		    char *err, size_t errlen);

/* The driver of host (by name) for an operation other than a migration
 * (ckpt.c): -ENOENT no such host, -ENODEV its backend is not available. */
int exec_driver_of_host(struct executor *ex, const char *host, const struct hv_ops **ops,
			struct hv **hv, char *err, size_t errlen);
/* Guests another operation holds: fn returns what holds guest ("checkpoint
 * 4") or NULL; a held guest cannot be queued for migration (-EBUSY). */
typedef const char *(*exec_hold_fn)(void *arg, const char *guest);
void exec_set_hold(struct executor *ex, exec_hold_fn fn, void *arg);

struct exec_request {
	const char *guest;
	const char *to;              /* NULL: the planner chooses */
	int priority;                /* enum sched_prio */
	const char *policy;          /* NULL: asked for by a person */
	const char *reason;          /* why, for the row: "evacuate n3" */
	int64_t queued_ns;           /* 0: now; a policy gives its whole firing one time */
	int64_t not_before_ns;       /* 0: now */
	const struct db_mig_knobs *knobs; /* NULL: exec_opts.knobs_default */
};

/*
 * Queue a migration inside the caller's transaction (the row and its
 * migration.queued event): -ENOENT no such guest or host, -EBUSY the guest
 * is already queued or migrating, -EINVAL the destination is where it runs
 * or takes no guests. Fills *out.
 *
 * Rows of one policy firing (same policy, same queued_ns) are spaced by
 * their not_before offsets; when one of them starts late (the previous
 * rank still migrating, a limit, the loop's period), the later ones are
 * pushed back by as much, so that consecutive starts stay at least the
 * stagger apart.
 */
int exec_enqueue(struct executor *ex, const struct exec_request *rq, struct db_migration *out,
		 char *err, size_t errlen);
/* Abort a queued row inside the caller's transaction. */
int exec_cancel_queued(struct executor *ex, struct db_migration *m, const char *why);
/*
 * Abort migration id: a queued one at once, a running one through the
 * backend (the row turns aborted when the backend confirms; the guest stays
 * on its source). -ENOENT, -EALREADY (finished), or the backend's error
 * (a post-copy past its switch-over cannot go back). *out: the row now.
 */
int exec_abort(struct executor *ex, int64_t id, struct db_migration *out, char *err,
	       size_t errlen);

#endif
