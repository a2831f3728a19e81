/*
 * interval: "every 4 minutes, migrate K of these guests, 30 s apart" -- the
 * seed's BT-IO experiment as a policy.
 *
 * Fire times sit on a grid: anchor + k * every, the anchor being the time
 * the policy was created. A late fire (migd busy, or down for a while) does
 * not shift the grid, so the cadence never drifts, and however many grid
 * points were missed the policy fires once and then waits for the next
 * point after now: no burst after a restart. A paused policy never fires;
 * on resume it waits for the next grid point after the resume time.
 *
 * When K is below the number of selected guests, a round-robin cursor makes
 * successive periods take the next K guests of the list, so every guest gets
 * its turn. The caller passes the list in a stable order (by name); the
 * cursor is taken modulo the list's current length, so guests joining or
 * leaving the selection only shift the rotation.
 *
 * Pure logic over struct policy_state (policy.h): no clock, no I/O.
 */
#ifndef MIGD_INTERVAL_H
#define MIGD_INTERVAL_H

#include <stddef.h>

#include "policy.h"

struct interval_params {
	double every_s;   /* period, > 0 */
	double stagger_s; /* between two starts of one period, >= 0 */
	unsigned count;   /* guests per period; 0: all selected */
};

/*
 * Keys: every (or every_s), stagger (or stagger_s), count. Durations are a
 * number of seconds or a number with a unit: ms, s, m, min, h, d ("4m",
 * "30s", "240", "0.5"). Returns 0 or -EINVAL naming the key in err.
 */
int interval_parse(const struct policy_kv *kv, size_t n_kv, struct interval_params *p,
		   char *err, size_t errlen);

/* A new policy at now_s: first due one period later. */
void interval_start(const struct interval_params *p, struct policy_state *st, double now_s);

/* Due time, INFINITY while paused. */
double interval_next_fire_s(const struct interval_params *p, const struct policy_state *st);

/*
 * If due at now_s: picks[i] = { guest index, i * stagger_s } for
 * min(count, n_selected) guests (picks has room for n_selected), the cursor
 * moves past them, the next fire goes to the first grid point after now_s;
 * returns 1. With no guest selected it still fires (and uses up the period)
 * with *n_picks 0. Not due, or paused: returns 0 and changes nothing.
 * -EINVAL on non-finite now_s or picks NULL with guests selected.
 */
int interval_fire(const struct interval_params *p, struct policy_state *st, double now_s,
		  size_t n_selected, struct policy_pick *picks, size_t *n_picks);

void interval_pause(const struct interval_params *p, struct policy_state *st, double now_s);
void interval_resume(const struct interval_params *p, struct policy_state *st, double now_s);

#endif
