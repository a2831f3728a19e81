/*
 * checkpoint: when to checkpoint a job, as pure logic.
 *
 *   migctl policy add checkpoint NAME --job JOB (--every 30m | --every auto)
 *          [--keep 3] [--on-failure restore|notify] [--mtbf 24h]
 *
 * A fixed policy checkpoints every period. An automatic one follows the
 * optimum of the checkpoint/restart model: a checkpoint costs the job d
 * seconds (the guests are paused while they are saved), a failure (mean
 * time between failures M) loses the work since the last checkpoint plus a
 * restart R, and the work tau between checkpoints that minimises the
 * expected wall time is, to first order, Young's sqrt(2 d M) and, to a
 * higher order, Daly's (J. T. Daly, "A higher order estimate of the optimum
 * checkpoint interval for restart dumps", FGCS 22(3), 2006):
 *
 *     tau = sqrt(2 d M) (1 + sqrt(d / 2M) / 3 + (d / 2M) / 9) - d    d < 2M
 *     tau = M                                                        d >= 2M
 *
 * d is measured: migd feeds the duration of each checkpoint through
 * ckpt_observe() (kept in policy_state.cost_s), so the interval follows the
 * job as its memory grows or the store slows down. Until one is measured
 * the policy checkpoints after CKPT_FALLBACK_S, which also gives it the
 * first measurement.
 *
 * Firing: the next checkpoint is due one period after the start of the
 * current one, policy_state.anchor_s: the last checkpoint's start, or the
 * creation (not a fixed grid, since the period moves with d). A checkpoint
 * overdue after migd was down fires once and the next is a full period
 * later: no burst. A paused policy never fires; on resume it waits for the
 * first time after the resume that lies a whole number of periods after
 * the anchor, as an interval policy does with its grid, and that time less
 * one period becomes the anchor.
 *
 * Pure logic over struct policy_state (policy.h): no clock, no I/O.
 */
#ifndef MIGD_CHECKPOINT_H
#define MIGD_CHECKPOINT_H

#include <stddef.h>

#include "policy.h"

#define CKPT_JOB_MAX 64          /* with the NUL, as migd's names (DB_NAME_MAX) */
#define CKPT_KEEP_DEFAULT 3
/* The period of an automatic policy with no d measured yet (or no M): soon
 * enough that the first checkpoint measures d, whatever M is. */
#define CKPT_FALLBACK_S 1800.0

enum ckpt_on_failure {
	CKPT_NOTIFY,                 /* tell, leave the job as it is (the default) */
	CKPT_RESTORE,                /* restore the job from its latest checkpoint */
};

struct ckpt_params {
	char job[CKPT_JOB_MAX];
	double every_s;              /* the fixed period, start to start; 0: auto */
	unsigned keep;               /* checkpoints kept, >= 1 */
	enum ckpt_on_failure on_failure;
	/* M for auto. 0 when not given: the daemon puts the MTBF it has (that
	 * of the MTBF policies) here before the policy runs; still 0, auto
	 * stays on CKPT_FALLBACK_S. */
	double mtbf_s;
};

/*
 * Keys: job (required: a name of letters, digits, '.', '_', '-', starting
 * with a letter or digit), every or every_s (required: a duration as
 * policy_parse_duration_s() reads it, above zero, or "auto"), keep (a whole
 * number >= 1, default 3), on_failure ("restore" or "notify", default
 * "notify"), mtbf or mtbf_s (a duration above zero). The keys every policy
 * carries (policy_is_common_key()) are skipped. 0, or -EINVAL with the key
 * and the value in err: `keep "0": expected ...`.
 */
int ckpt_parse(const struct policy_kv *kv, size_t n_kv, struct ckpt_params *p, char *err,
	       size_t errlen);

/*
 * The models, all in seconds. d is the cost of one checkpoint, M the mean
 * time between failures, R the cost of a restart, tau the work between
 * the end of one checkpoint and the start of the next. Inputs that are not
 * finite, d or M not above zero, or R below zero give NAN: to a caller, "no
 * cost measured yet" (or no M), never a period.
 */

/* Young's first-order optimum: sqrt(2 d M). */
double ckpt_young_s(double d, double M);

/* Daly's higher-order optimum (above): M when d >= 2M. Below Young's by
 * about 2d/3 when d << M. */
double ckpt_daly_s(double d, double M);

/*
 * The fraction of wall time spent on work, in Daly's model, when a job
 * checkpoints after every tau of work:
 *
 *     T_w(tau) = M e^(R/M) (e^((tau+d)/M) - 1) T_s / tau,   efficiency = T_s / T_w
 *
 * (d = 0 is allowed here: no checkpoint cost). A benchmark compares its
 * measured efficiency with this; for a fixed policy tau = every - d. NAN when
 * tau or M is not above zero, d or R is below zero, or any is not finite.
 */
double ckpt_daly_efficiency(double tau, double d, double R, double M);

/*
 * The period from the start of one checkpoint to the start of the next,
 * with d the measured cost (<= 0 or NAN: none yet) and M the MTBF (<= 0 or
 * NAN: unknown). *which (if which is not NULL) says where it comes from:
 *   "fixed"     every_s;
 *   "daly"      auto with d and M known: ckpt_daly_s(d, M) + d, Daly's tau
 *               of work plus the checkpoint itself (the guests do no work
 *               while they are saved);
 *   "fallback"  auto without d or M: CKPT_FALLBACK_S.
 */
double ckpt_interval_s(const struct ckpt_params *p, double d, double M, const char **which);

/* ckpt_interval_s() for a running policy: d from st->cost_s, M p->mtbf_s. */
double ckpt_period_s(const struct ckpt_params *p, const struct policy_state *st,
		     const char **which);

/* A new policy at now_s: first due one period later. */
void ckpt_start(const struct ckpt_params *p, struct policy_state *st, double now_s);

/* Due time; INFINITY while paused. */
double ckpt_next_fire_s(const struct ckpt_params *p, const struct policy_state *st);

/*
 * If due at now_s: the checkpoint begins now (last_fire_s = now_s), the
 * next is due one current period later; returns 1. Not due, or paused:
 * returns 0 and changes nothing. -EINVAL on a non-finite now_s.
 */
int ckpt_fire(const struct ckpt_params *p, struct policy_state *st, double now_s);

/*
 * A checkpoint took d_s (measured, > 0 and finite; other values are
 * ignored): kept as the policy's d (st->cost_s). The next checkpoint moves
 * to one period, as it now is, after the anchor, which may be at once;
 * while paused only d is kept.
 */
void ckpt_observe(const struct ckpt_params *p, struct policy_state *st, double d_s,
		  double now_s);

void ckpt_pause(const struct ckpt_params *p, struct policy_state *st, double now_s);
void ckpt_resume(const struct ckpt_params *p, struct policy_state *st, double now_s);

#endif
