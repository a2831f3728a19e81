/*
 * executor_plan: the executor's planning round (see executor.h): the
 * scheduler's snapshot from the database (snapshot.c), the requests held
 * back while their guests' I/O is busy, sched_plan(), its rejects failed
 * and its starts carried out, and when to plan again (the next due row,
 * the start gap, a round's own cost deferring the next). Apart from
 * executor.c, which drives the migrations once started; they share
 * executor_internal.h.
 */
#include "executor_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "snapshot.h"
#include "util.h"

/* ---- planning --------------------------------------------------------- */

/* Fail a queued row in the open transaction. */
static int fail_queued(struct executor *ex, struct db_migration *m, int64_t now,
		       const char *why)
{
	fail_row(m, now, why);
	int rc = db_mig_update(ex->db, m);
	if (rc == 0)
		rc = db_event(ex->db, mig_event("migration.failed", m, now));
	if (rc == 0)
		log_info("migration %" PRId64 " of %s refused: %s", m->id, m->guest, m->error);
	return rc;
}

/*
 * 1 when a rank of job is migrating or starts in this plan. The planner
 * refuses a rank when every other host holds or receives a rank of its job,
 * counting the source of a rank in flight as held; once that rank lands
 * its source is free, so such a refusal is premature and the request waits.
 */
static int job_in_flight(const struct snapshot *s, const struct sched_plan *plan, uint64_t job)
{
	if (job == 0)
		return 0;
	for (size_t i = 0; i < s->n_sr; i++)
		if (s->sg[s->sr[i].guest].job_id == job)
			return 1;
	for (size_t i = 0; i < plan->n_starts; i++)
		if (s->sg[plan->starts[i].guest].job_id == job)
			return 1;
	return 0;
}

/* Rows the snapshot could not map and rows the planner can never place. */
static int fail_unplaceable(struct executor *ex, struct snapshot *s,
			    const struct sched_plan *plan)
{
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < s->n_gone; i++)
		rc = fail_queued(ex, &s->queue[s->gone[i].row], s->now_ns, s->gone[i].reason);
	for (size_t i = 0; rc == 0 && i < plan->n_rejects; i++) {
		const struct sched_reject *r = &plan->rejects[i];
		if (job_in_flight(s, plan, s->sg[r->guest].job_id))
			continue; /* planned again when that rank lands */
		rc = fail_queued(ex, &s->queue[s->req_row[r->request]], s->now_ns, r->reason);
	}
	return rc;
}

/*
 * run[i]'s row to migrating (with its quiesce outcome), committed, then
 * the backend asked. When the backend refuses, a quiesced guest is resumed
 * before the row fails. -errno only when the row could not be written.
 */
int launch(struct executor *ex, size_t i, struct db_migration *m)
{
	struct running *r = &ex->run[i];
	struct db_host src, dst;
	struct backend *be = NULL;
	struct hv_migrate_params params = ex->o.knobs;
	char err[256] = "";
	int rc = -ENODEV;
	m->state = DB_MIG_MIGRATING;
	m->migrating_ns = exec_now_ns(ex);
	/* in a group commit this is durable at its end, which is enough: the
	 * row said started (durable) before any backend was asked, and a restart
	 * reconciles started and migrating rows alike */
	if ((rc = commit_row(ex, m, "migration.migrating")) < 0)
		return rc;
	r->phase = RUN_MIGRATING;
	params.bandwidth_bps = r->cap_bps > 0 ? (uint64_t)r->cap_bps : 0;
	rc = -ENODEV;
	if (db_host_get(ex->db, m->src, &src) < 0 || db_host_get(ex->db, m->dst, &dst) < 0)
		snprintf(err, sizeof(err), "host %s or %s is gone", m->src, m->dst);
	else if (!(be = backend_of(ex, src.uri)))
		snprintf(err, sizeof(err), "host %s: its backend is not available", src.name);
	else if (backend_of(ex, dst.uri) != be)
		snprintf(err, sizeof(err), "hosts %s and %s are on different backends", src.name,
			 dst.name);
	else
		rc = be->ops->migrate_start(be->hv, m->guest, src.name, dst.name, &params,
					    &r->hv_id, err, sizeof(err));
	if (rc == 0) {
		r->be = be;
		r->launched = 1;
		log_info("migration %" PRId64 " started: %s %s -> %s (%s%s), quiesce %s", m->id,
			 m->guest, m->src, m->dst, *m->policy ? "policy " : "",
			 *m->policy ? m->policy : db_priority_name(m->priority),
			 *m->quiesce ? m->quiesce : "-");
		return 0;
	}
	log_warnx("migration %" PRId64 " of %s failed to start: %s", m->id, m->guest,
		  *err ? err : "the backend refused");
	r->end = END_FAIL;
	snprintf(r->end_why, sizeof(r->end_why), "%s", *err ? err : "the backend refused");
	if (!r->q || start_resume(ex, i, m) == 1)
		end_row(ex, i, m);
	return 0;
}

/* What the knobs and the agent say about a row that just started. */
enum quiesce_step { Q_MIGRATE, Q_ASK, Q_REFUSE };

static enum quiesce_step quiesce_step(struct executor *ex, struct db_migration *m)
{
	if (m->knobs.quiesce == DB_QUIESCE_OFF) {
		snprintf(m->quiesce, sizeof(m->quiesce), "off");
		return Q_MIGRATE;
	}
	if (agent_connected(ex, m->guest))
		return Q_ASK;
	snprintf(m->quiesce, sizeof(m->quiesce), "no-agent");
	return m->knobs.quiesce == DB_QUIESCE_REQUIRED ? Q_REFUSE : Q_MIGRATE;
}

/* A new entry for a started row; -ENOMEM. */
static int run_add(struct executor *ex, const struct db_migration *m, double cap_bps,
		   size_t *index)
{
	if (GROW(ex->run, ex->cap_run, ex->n_run + 1) < 0)
		return -ENOMEM;
	struct running *r = &ex->run[ex->n_run];
	memset(r, 0, sizeof(*r));
	r->id = m->id;
	r->cap_bps = cap_bps;
	snprintf(r->guest, sizeof(r->guest), "%s", m->guest);
	snprintf(r->src, sizeof(r->src), "%s", m->src);
	snprintf(r->dst, sizeof(r->dst), "%s", m->dst);
	*index = ex->n_run++;
	return 0;
}

/* One started row on its way: quiesce asked (the row says so first), or
 * straight to the backend, or refused with no agent to quiesce. */
static void start_one(struct executor *ex, struct db_migration *m, double cap_bps)
{
	size_t i;
	enum quiesce_step step = quiesce_step(ex, m);
	if (run_add(ex, m, cap_bps, &i) < 0) {
		fail_row(m, exec_now_ns(ex), "out of memory");
		commit_row(ex, m, "migration.failed");
		return;
	}
	struct running *r = &ex->run[i];
	if (step == Q_MIGRATE) {
		if (launch(ex, i, m) < 0) /* the row stays started: reconciled at a restart */
			remove_running(ex, i);
		return;
	}
	if (step == Q_REFUSE) {
		r->end = m->knobs.miss_aborts ? END_REFUSE : END_DEFER;
		snprintf(r->end_why, sizeof(r->end_why), "quiesce required: no agent connected");
		db_event_transient(ex->db, mig_event("migration.quiesced", m, exec_now_ns(ex)));
		end_row(ex, i, m);
		return;
	}
	m->quiesce_ns = exec_now_ns(ex);
	/* durable before the agent is asked: a restart owes a quiesced guest
	 * its resume only when its row says it was quiesced */
	if (commit_row(ex, m, "migration.quiescing") < 0 || db_batch_flush(ex->db) < 0) {
		remove_running(ex, i);
		return;
	}
	r->phase = RUN_QUIESCING;
	const char *name = m->guest;
	if (!(r->q = qgroup_new(ex->agents, &name, 1))) {
		fail_row(m, exec_now_ns(ex), "out of memory");
		commit_row(ex, m, "migration.failed");
		remove_running(ex, i);
		return;
	}
	/* an agent gone between the look and the send: settled at the next poll */
	qgroup_quiesce(r->q, m->knobs.quiesce_deadline_ms);
}

/* Starts: every row to started in one transaction, then each on its way
 * (start_one), their steps in one group commit (flushed before an agent is
 * asked to quiesce). */
static int start_all(struct executor *ex, struct snapshot *s, const struct sched_plan *plan)
{
	int rc = db_begin(ex->db);
	for (size_t i = 0; rc == 0 && i < plan->n_starts; i++) {
		const struct sched_start *st = &plan->starts[i];
		struct db_migration *m = &s->queue[s->req_row[st->request]];
		snprintf(m->src, sizeof(m->src), "%s", s->hosts[st->src].name);
		snprintf(m->dst, sizeof(m->dst), "%s", s->hosts[st->dst].name);
		m->state = DB_MIG_STARTED;
		m->started_ns = s->now_ns;
		m->error[0] = '\0'; /* a deferral's reason: this attempt has its own */
		m->quiesce[0] = m->resume[0] = '\0';
		m->quiesce_ns = m->resume_ns = 0;
		m->quiesce_ms = m->resume_ms = m->drained_requests = m->drained_bytes = -1;
		rc = db_mig_update(ex->db, m);
		if (rc == 0 && *m->policy && s->now_ns > m->not_before_ns)
			rc = db_mig_delay_firing(ex->db, m->policy, m->queued_ns, m->not_before_ns,
						 s->now_ns - m->not_before_ns);
		if (rc == 0)
			rc = db_event(ex->db, mig_event("migration.started", m, s->now_ns));
	}
	if (rc == 0)
		rc = db_commit(ex->db);
	if (rc < 0) {
		db_rollback(ex->db);
		return rc;
	}
	ex->last_start_ns = s->now_ns;
	/* every row says started, durably: their next steps go in one group
	 * commit (64 starts were 64 fsyncs of the thread that answers the API) */
	int batch = plan->n_starts > 1 && db_batch_begin(ex->db) == 0;
	for (size_t i = 0; i < plan->n_starts; i++) {
		const struct sched_start *st = &plan->starts[i];
		start_one(ex, &s->queue[s->req_row[st->request]], st->bandwidth_cap_bps);
	}
	if (batch)
		db_batch_end(ex->db);
	return 0;
}

/* ---- I/O lulls ---------------------------------------------------------- */

static struct lull_hold *find_hold(struct executor *ex, int64_t id)
{
	for (size_t i = 0; i < ex->n_holds; i++)
		if (ex->holds[i].id == id)
			return &ex->holds[i];
	return NULL;
}

static void drop_hold(struct executor *ex, struct lull_hold *h)
{
	*h = ex->holds[--ex->n_holds];
}

/* A row that gave up waiting: its reason, and it may go. */
static int lull_gave_up(struct db_migration *m, const struct lull_hold *h)
{
	m->lull_wait_ms = (int64_t)h->gave_up_after_ms;
	snprintf(m->lull_reason, sizeof(m->lull_reason), "gave up after %" PRIu64 " ms: I/O %.0f "
		 "B/s at or above %" PRIu64 " B/s", h->gave_up_after_ms, h->gave_up_rate,
		 m->knobs.io_lull_bps);
	return 1;
}

/*
 * Whether due row m may go to the planner now, by its guest's I/O: 1 yes
 * (its lull fields say how long it waited and why), 0 not yet (it stays
 * queued; the first time, the row says it waits, with an event).
 */
static int lull_allows(struct executor *ex, struct db_migration *m)
{
	struct agent_status st;
	uint64_t threshold = m->knobs.io_lull_bps, now = now_ms();
	if (!threshold)
		return 1;
	struct lull_hold *h = find_hold(ex, m->id);
	uint64_t waited = h ? now - h->since_ms : 0;
	if (h)
		h->seen = 1;
	/* kept (not dropped) until it starts, so that a round that cannot
	 * start it yet does not make it wait all over again */
	if (h && h->gave_up_after_ms)
		return lull_gave_up(m, h);
	if (!ex->agents || agent_link_status(ex->agents, m->guest, &st) < 0 || !st.connected ||
	    !st.has_activity) {
		m->lull_wait_ms = (int64_t)waited;
		if (h)
			snprintf(m->lull_reason, sizeof(m->lull_reason), "no agent: gone after %"
				 PRIu64 " ms of waiting", waited);
		else
			snprintf(m->lull_reason, sizeof(m->lull_reason), "no agent: did not wait");
		if (h)
			drop_hold(ex, h);
		return 1;
	}
	double rate = st.read_bps + st.write_bps;
	if (rate < (double)threshold) {
		m->lull_wait_ms = (int64_t)waited;
		if (h) {
			snprintf(m->lull_reason, sizeof(m->lull_reason), "lull after %" PRIu64 " ms: "
				 "I/O %.0f B/s below %" PRIu64 " B/s", waited, rate, threshold);
			drop_hold(ex, h);
		}
		return 1;
	}
	if (h && waited >= m->knobs.io_lull_wait_ms) {
		h->gave_up_after_ms = waited ? waited : 1;
		h->gave_up_rate = rate;
		return lull_gave_up(m, h);
	}
	if (!h) {
		if (GROW(ex->holds, ex->cap_holds, ex->n_holds + 1) < 0)
			return 1;
		ex->holds[ex->n_holds++] = (struct lull_hold){ .id = m->id, .since_ms = now, .seen = 1 };
		snprintf(m->lull_reason, sizeof(m->lull_reason), "waiting for an I/O lull: %.0f B/s "
			 "at or above %" PRIu64 " B/s", rate, threshold);
		if (commit_row(ex, m, "migration.waiting") < 0)
			log_warnx("migration %" PRId64 ": waiting not written", m->id);
		log_info("migration %" PRId64 " of %s waits for an I/O lull (%.0f B/s >= %" PRIu64
			 " B/s, at most %u ms)", m->id, m->guest, rate, threshold,
			 m->knobs.io_lull_wait_ms);
	}
	return 0;
}

/* Take the requests whose guests are busy out of the planner's input. */
static void hold_busy(struct executor *ex, struct snapshot *s)
{
	size_t w = 0;
	for (size_t i = 0; i < ex->n_holds; i++)
		ex->holds[i].seen = 0;
	for (size_t i = 0; i < s->n_req; i++) {
		if (!lull_allows(ex, &s->queue[s->req_row[i]]))
			continue;
		s->req[w] = s->req[i];
		s->req_row[w++] = s->req_row[i];
	}
	s->n_req = w;
	for (size_t i = ex->n_holds; i-- > 0;) /* rows no longer due: aborted, removed */
		if (!ex->holds[i].seen)
			drop_hold(ex, &ex->holds[i]);
	ex->next_lull_check_ms = now_ms() + LULL_CHECK_MS;
}

/* When to plan again without a change: the start gap, or the next
 * staggered row falling due. */
static void schedule_wake(struct executor *ex, int64_t now, const struct sched_plan *plan)
{
	int64_t at = db_mig_next_due_ns(ex->db, now);
	for (size_t i = 0; i < plan->n_waits; i++) {
		if (plan->waits[i].why != SCHED_WAIT_GAP)
			continue;
		int64_t gap_ns = (int64_t)ceil(plan->next_start_s * 1e9);
		if (!at || gap_ns < at)
			at = gap_ns;
		break;
	}
	ex->wake_at_ns = at;
}

/* CPU time of this thread: what a round costs, whatever else the machine
 * runs (a wall-clock figure would defer planning on a busy machine). */
static uint64_t thread_cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int plan_round(struct executor *ex, struct snapshot *s, struct sched_plan *plan)
{
	struct sched_input in;
	uint64_t cpu0 = thread_cpu_us();
	int rc = snapshot_take(ex->snap, ex->db, exec_now_ns(ex),
			       snapshot_window(ex->o.limits.max_concurrent), s);
	ex->stats.rounds++;
	if (rc < 0 || s->n_queue == 0) {
		ex->n_holds = 0;
		ex->stats.plan_cpu_us += thread_cpu_us() - cpu0;
		return rc;
	}
	hold_busy(ex, s);
	snapshot_input(s, &ex->o.limits, ex->last_start_ns, &in);
	if (s->n_req > 0 && (rc = sched_plan(&in, plan)) < 0)
		return rc;
	if (s->n_gone + plan->n_rejects > 0) {
		if ((rc = db_begin(ex->db)) < 0)
			return rc;
		rc = fail_unplaceable(ex, s, plan);
		rc = db_end(ex->db, rc);
	}
	uint64_t cpu1 = thread_cpu_us();
	ex->stats.plan_cpu_us += cpu1 - cpu0;
	if (rc == 0 && plan->n_starts > 0) {
		rc = start_all(ex, s, plan);
		ex->stats.start_cpu_us += thread_cpu_us() - cpu1;
		ex->stats.started += plan->n_starts;
	}
	return rc;
}

void exec_plan_stats(const struct executor *ex, struct exec_plan_stats *out)
{
	*out = ex->stats;
}

void plan_and_start(struct executor *ex)
{
	struct snapshot s;
	struct sched_plan plan = { 0 };
	uint64_t t0 = now_ns(), cpu0 = thread_cpu_us();
	ex->plan_ms = t0 / 1000000;
	ex->dirty = 0;
	int rc = plan_round(ex, &s, &plan);
	schedule_wake(ex, s.now_ns, &plan);
	log_debug("plan: %zu due, %zu hosts, %zu guests: %zu started, %zu refused, %zu wait,"
		  " %zu for a lull; %.2f ms", s.n_queue, s.n_hosts, s.n_guests, plan.n_starts,
		  plan.n_rejects + s.n_gone, plan.n_waits, ex->n_holds,
		  (double)(now_ns() - t0) / 1e6);
	if (rc < 0) {
		log_warnx("planning failed: %s; trying again in a second", strerror(-rc));
		int64_t retry = s.now_ns + 1000000000;
		if (!ex->wake_at_ns || retry < ex->wake_at_ns)
			ex->wake_at_ns = retry;
	}
	ex->plan_cost_us = thread_cpu_us() - cpu0;
	sched_plan_release(&plan);
	snapshot_release(&s);
}

/* A round of planning reads the queue and the cluster: at 100,000 guests
 * and thousands queued it takes milliseconds, and a request per queued
 * migration (an evacuation of many hosts) would plan once per request:
 * quadratic. So a round that took more than PLAN_DEFER_US of CPU waits for
 * ten times its own cost since the last one began, and requests meanwhile are
 * planned together: planning stays under a tenth of migd's time. Small
 * clusters (every round far below it) plan at once, as before. */
#define PLAN_DEFER_US 2000
int plan_deferred(const struct executor *ex)
{
	return ex->plan_cost_us > PLAN_DEFER_US &&
	       now_ms() - ex->plan_ms < ex->plan_cost_us * 10 / 1000;
}
