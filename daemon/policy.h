/*
 * policy (daemon side): runs the policies of policies/ inside migd.
 *
 * The policy types are pure logic (policies/policy.h: given parameters, a
 * small state and the time, they say when to fire and which of the selected
 * guests to move, with stagger offsets). This module is their glue: it loads
 * policies from the database, resolves each one's guest selector ("all",
 * "host:NAME", "job:NAME", a guest name, or a comma-separated list) to a
 * list sorted by name, feeds the cluster clock, queues the picks as
 * periodic-priority migrations that may not start before their offset, and
 * writes the policy's state back in the same transaction, so a restart
 * continues the schedule where it was.
 *
 * The glue also owns what needs the cluster: a cron policy's action
 * (evacuate hosts: disable and queue their guests; rebalance: plan moves
 * from the most to the least memory-loaded healthy host until the loads
 * are within the spread; migrate a selector), the rule for firings missed
 * while migd was down (type->restore at load, a policy.missed event), and
 * an mtbf policy's measured cost (type->observe, from the policy's own
 * completed migrations, at most once a second, a policy.interval event
 * when the interval moves).
 *
 * (This header guards as MIGD_DAEMON_POLICY_H: policies/policy.h is the
 * types' interface and keeps MIGD_POLICY_H.)
 */
#ifndef MIGD_DAEMON_POLICY_H
#define MIGD_DAEMON_POLICY_H

#include <jansson.h>
#include <stddef.h>

#include "db.h"
#include "executor.h"

struct policy_engine;

/* Load every policy of the database; one that cannot be read is logged
 * and left alone in the database. */
int policy_engine_new(struct db *db, struct executor *ex, struct policy_engine **out,
		      char *err, size_t errlen);
void policy_engine_free(struct policy_engine *pe);
/* Checkpoint policies create checkpoints and watch jobs through ck. */
struct ckpt;
void policy_set_ckpt(struct policy_engine *pe, struct ckpt *ck);

/* Fire the policies that are due on the cluster clock. */
void policy_tick(struct policy_engine *pe);

unsigned policy_count(const struct policy_engine *pe);

/*
 * The API commands; each returns 0 with *result (the caller's), or a
 * negative errno with a message naming the bad field or value in err.
 * policy.add args: {type, name, guests (not for cron), the knobs
 * (policy_knobs_parse), and the type's own: every_s, stagger_s, count for
 * interval; schedule, action, tz, missed, stagger_s, spread for cron;
 * mtbf_s, cost_s, stagger_s, count for mtbf (numbers, or strings like
 * "4m")}. policy.show adds next_fires_ns (the next five) and for mtbf the
 * cost in effect, its source and the interval.
 */
/*
 * The migration knobs every policy type shares, and `migrate` takes too:
 * quiesce (required | best-effort | off), quiesce_deadline (seconds, or
 * "500ms", "2s"), on_quiesce_miss (abort | defer), io_lull (bytes/s, or
 * "10m", "100mbit"; 0 off) and io_lull_wait (a duration); the _s and _bps
 * spellings (quiesce_deadline_s, io_lull_bps, io_lull_wait_s) too. Those in
 * args override *defaults into *out; when canonical is not NULL, each one
 * given is set on it in canonical form (quiesce_deadline_s, io_lull_bps,
 * io_lull_wait_s...). 0 or -EINVAL naming the key and value in err.
 */
int policy_knobs_parse(json_t *args, const struct db_mig_knobs *defaults,
		       struct db_mig_knobs *out, json_t *canonical, char *err, size_t errlen);
/* 1 when key is one of the knobs above (so not the policy type's). */
int policy_knob_key(const char *key);

int policy_add(struct policy_engine *pe, json_t *args, json_t **result, char *err,
	       size_t errlen);
int policy_show(struct policy_engine *pe, const char *name, json_t **result, char *err,
		size_t errlen);
json_t *policy_list(struct policy_engine *pe);
int policy_pause(struct policy_engine *pe, const char *name, json_t **result, char *err,
		 size_t errlen);
int policy_resume(struct policy_engine *pe, const char *name, json_t **result, char *err,
		  size_t errlen);
/* Also aborts the policy's migrations that have not started. */
int policy_remove(struct policy_engine *pe, const char *name, json_t **result, char *err,
		  size_t errlen);

#endif
