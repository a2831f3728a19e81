/*
 * cron: five-field cron schedules and the cron policy type.
 *
 * "0 2 * * *", "0,30 8-18 * * mon-fri", "0 0 29 feb *": minute, hour, day
 * of month, month, day of week, each a list of numbers, ranges (a-b), steps
 * (star-slash-n, a-b/n, a/n meaning a-max/n), month names (jan..dec) and weekday
 * names (sun..sat), 0 and 7 both Sunday. No C cron library is in Debian, so
 * the parser is here; its semantics are Vixie cron's (and cronie's):
 *
 *   - When both day fields are restricted, a day matches if EITHER matches
 *     ("0 0 13 * 5": the 13th and every Friday). A field that starts with
 *     '*' (also a step of it) counts as unrestricted, as in Vixie cron.
 *   - Times are wall-clock times in the policy's time zone (an Olson name
 *     like Europe/Berlin, read through libc's tzset/localtime_r with TZ
 *     saved and restored; migd is single-threaded).
 *   - Daylight saving time, like cronie: a job at a fixed time (no '*' in
 *     its minute and hour fields) whose time falls into the hour skipped in
 *     spring runs once at the moment of the change; when an hour repeats in
 *     autumn it runs at the first occurrence only. A job with '*' in the
 *     minute or hour field follows the wall clock as it is: the skipped
 *     minutes do not exist, the repeated ones fire twice.
 *
 * The cron policy fires its action at each firing time (the action itself
 * -- evacuate, rebalance, migrate -- is carried out by migd's policy glue,
 * which owns hosts and guests). A firing missed while migd was down runs
 * once at start-up (missed = run-once, the default) or is skipped.
 *
 * Pure logic: no clock and no I/O apart from libc reading the zone's rules.
 */
#ifndef MIGD_CRON_H
#define MIGD_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#define CRON_TZ_MAX 64
#define CRON_ACTION_MAX 512

struct cron_expr {
	uint64_t minute;   /* bits 0..59 */
	uint32_t hour;     /* bits 0..23 */
	uint32_t dom;      /* bits 1..31 */
	uint16_t month;    /* bits 1..12 */
	uint8_t dow;       /* bits 0..6, Sunday 0 */
	bool dom_star, dow_star; /* the field starts with '*' */
	bool fixed_time;   /* neither minute nor hour starts with '*' (DST rule) */
};

/*
 * Parse a five-field expression. Returns 0, or -EINVAL with a message in err
 * that names the field and the bad text ("cron \"0 25 * * *\": hour \"25\":
 * out of range 0-23"). An expression that can never fire ("0 0 31 2 *") is
 * refused too.
 */
int cron_parse(const char *text, struct cron_expr *out, char *err, size_t errlen);

/* 0 when tz (an Olson name such as "Europe/Berlin", "UTC", or a POSIX TZ
 * string such as "CET-1CEST,M3.5.0,M10.5.0/3") is usable, else -EINVAL
 * with the reason in err. "" means UTC. */
int cron_tz_check(const char *tz, char *err, size_t errlen);

/*
 * The first firing time strictly after after_s (seconds since the epoch)
 * in zone tz, by the rules above; INFINITY when there is none within 30
 * years. Whole minutes, so the result is an integer.
 */
double cron_next_s(const struct cron_expr *e, const char *tz, double after_s);

/* ---- the cron policy type ---- */

enum cron_missed { CRON_MISSED_RUN_ONCE, CRON_MISSED_SKIP };

struct cron_params {
	struct cron_expr expr;
	char schedule[128];          /* as given */
	char tz[CRON_TZ_MAX];        /* "" = UTC */
	enum cron_missed missed;
	char action[CRON_ACTION_MAX];/* "evacuate n3", "rebalance", "migrate job:bt" */
	double stagger_s;            /* between starts of one firing */
	double spread;               /* rebalance: allowed memory-load spread, 0..1 */
};

/*
 * Keys: schedule (required), action (required: "evacuate HOST[,HOST...]",
 * "rebalance" or "migrate SELECTOR"), tz, missed (run-once | skip), stagger
 * (duration), spread (rebalance only: "10%" or 0.1). 0 or -EINVAL naming
 * the key and value in err.
 */
int cron_policy_parse(const struct policy_kv *kv, size_t n_kv, struct cron_params *p,
		      char *err, size_t errlen);

/* The action's verb and its argument ("" for rebalance) into verb/arg. */
void cron_action_split(const char *action, char *verb, size_t verb_len, char *arg,
		       size_t arg_len);

/* The next n firing times after after_s into out; returns how many (fewer
 * when the schedule runs out within 30 years). */
size_t cron_next_n(const struct cron_params *p, double after_s, double *out, size_t n);

extern const struct policy_type policy_cron_type;

#endif
