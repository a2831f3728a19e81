/*
 * health (daemon side): sensor readings in, degraded hosts evacuated.
 *
 * Readings arrive three ways: a host's health hook (a shell command migd
 * runs per host every health_interval, with MIGD_HOST and MIGD_HOST_URI in
 * its environment, killed after health_timeout), `migctl health report`,
 * and the health.report API command. A hook runs as a child process whose
 * stdout and stderr are non-blocking pipes drained from migd's loop, so a
 * slow or stuck hook never holds up requests or migrations. Its lines are
 * parsed by policies/health.c; a bad line is logged and becomes a
 * health.bad_line event with its line number and text.
 *
 * Every batch of readings is stored, then the host is judged from the
 * latest reading of each of its sensors: ipmitool's own critical
 * thresholds, and the rules (health.rule.add). The first violation turns a
 * healthy host degraded, in one transaction with its host.degraded event
 * (reason: "CPU1 Temp 96 C > upper critical 95 C") and a health-priority
 * migration for each of its guests; the scheduler places nothing on a
 * degraded host and keeps its limits for these migrations as for any.
 *
 * Back to service: `migctl host enable` at any time (a hook that still
 * reports a violation degrades the host again at its next run), or
 * automatically when the rule that degraded the host has --clear-after T
 * (ipmitool thresholds: health_clear_after in migd.conf) and no rule or
 * threshold has been violated for T, judged whenever readings arrive.
 * Intervals and clear-after times are on the cluster clock (virtual on
 * the sim backend); the hook timeout is real time.
 */
#ifndef MIGD_DAEMON_HEALTH_H
#define MIGD_DAEMON_HEALTH_H

#include <jansson.h>
#include <stddef.h>

#include "db.h"
#include "executor.h"

struct health_opts {
	const char *default_hook;  /* for hosts without their own; "" none */
	double interval_s;         /* between runs of a host's hook */
	double timeout_s;          /* real seconds a hook may take */
	double clear_after_s;      /* ipmitool thresholds: auto return after; 0 never */
	double retention_s;        /* readings kept (each sensor's latest always) */
};

struct health;

int health_new(struct db *db, struct executor *ex, const struct health_opts *o,
	       struct health **out, char *err, size_t errlen);
/* Kills hooks still running. */
void health_free(struct health *hm);

/* Start hooks that are due, drain the running ones, act on what they said. */
void health_tick(struct health *hm);

/* A host was enabled by hand: forget its degraded state here too. */
void health_host_reset(struct health *hm, const char *host);

/* API commands: 0 with *result, or a negative errno with err naming the
 * bad value. */
int health_report(struct health *hm, json_t *args, json_t **result, char *err, size_t errlen);
int health_rule_add(struct health *hm, json_t *args, json_t **result, char *err,
		    size_t errlen);
int health_rule_list(struct health *hm, json_t **result, char *err, size_t errlen);
int health_rule_rm(struct health *hm, const char *name, json_t **result, char *err,
		   size_t errlen);
/* host NULL: every host. */
int health_show(struct health *hm, const char *host, json_t **result, char *err, size_t errlen);

#endif
