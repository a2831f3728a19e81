/*
 * mtbf: migrate at the interval Young's formula gives for a failure rate.
 *
 * Proactive migration plays the part a checkpoint plays in Young's model:
 * each one costs the job some time (C), and the longer the gap between
 * them the more a failure (mean time between failures M, of a host or the
 * whole cluster, as the operator knows it) can cost. The interval that
 * minimises the expected loss is, to first order, Young's
 *
 *     T = sqrt(2 * C * M)
 *
 * (J. W. Young, "A first order approximation to the optimum checkpoint
 * interval", CACM 17(9), 1974). It is never shorter than C itself.
 *
 * C is measured: migd feeds the cost of one firing (the mean migration time
 * of the policy's completed migrations times the guests one firing moves)
 * through policy_type.observe as its history grows; until the policy has a
 * history the configured cost is used. Everything else is the interval
 * policy's: a grid of firings, K guests per firing, staggered, round-robin.
 *
 * Pure logic: no clock, no I/O.
 */
#ifndef MIGD_MTBF_H
#define MIGD_MTBF_H

#include <stddef.h>

#include "interval.h"
#include "policy.h"

/* Young's interval for a cost and an MTBF (both seconds, > 0): never below
 * cost_s; NAN when either is not a positive number. */
double mtbf_young_interval_s(double cost_s, double mtbf_s);

struct mtbf_params {
	double mtbf_s;    /* mean time between failures, > 0 */
	double cost_s;    /* configured cost of one firing until one is measured, > 0 */
	double stagger_s;
	unsigned count;   /* guests per firing; 0: all selected */
};

/* Keys: mtbf (required), cost (default 60s), stagger, count. */
int mtbf_parse(const struct policy_kv *kv, size_t n_kv, struct mtbf_params *p, char *err,
	       size_t errlen);

/* The cost in effect (measured if any, else configured) and the interval. */
double mtbf_cost_s(const struct mtbf_params *p, const struct policy_state *st);
double mtbf_interval_s(const struct mtbf_params *p, const struct policy_state *st);

#endif
