/*
 * health: sensor readings and the rules that call a host degraded.
 *
 * Readings come from a host's health hook (a command migd runs), from
 * `migctl health report` or from the API. A hook prints one reading per
 * line in either of two formats, told apart line by line:
 *
 *   ipmitool sensor   "CPU1 Temp | 96.000 | degrees C | ucr | na | 0.000 |
 *                      5.000 | 85.000 | 95.000 | 100.000"
 *                     name | value | unit | status | lower non-recoverable |
 *                     lower critical | lower non-critical | upper
 *                     non-critical | upper critical | upper non-recoverable;
 *                     "na" where there is none, discrete sensors with hex
 *                     value and status ("0x0", "discrete", "0x0180").
 *   sensor value      "cpu_temp 96 C", "ecc_errors 12": a name without
 *                     blanks (or "double quoted"), a number, an optional
 *                     unit. Blank lines and lines starting with '#' are
 *                     skipped.
 *
 * A reading that crosses its own ipmitool critical or non-recoverable
 * threshold degrades the host with no rule needed. Rules add thresholds
 * and trends per sensor (a glob, case-insensitive: "CPU* Temp"): above V,
 * below V, or rising by N within T (ECC error counts).
 *
 * Pure logic: parsing lines and judging a sensor's recent samples; migd's
 * daemon/health.c runs the hooks, stores the readings and acts.
 */
#ifndef MIGD_HEALTH_H
#define MIGD_HEALTH_H

#include <stdbool.h>
#include <stddef.h>

#define HEALTH_SENSOR_MAX 64
#define HEALTH_UNIT_MAX 24
#define HEALTH_STATUS_MAX 16

enum health_threshold {
	HEALTH_LNR, HEALTH_LCR, HEALTH_LNC, HEALTH_UNC, HEALTH_UCR, HEALTH_UNR,
	HEALTH_N_THRESHOLDS,
};

struct health_reading {
	char sensor[HEALTH_SENSOR_MAX];
	bool has_value;                 /* false: "na" */
	double value;
	char unit[HEALTH_UNIT_MAX];     /* "degrees C", "RPM", "" */
	char status[HEALTH_STATUS_MAX]; /* ipmitool's: ok, ucr, lcr, nr, 0x0180, na; "" */
	bool discrete;
	double threshold[HEALTH_N_THRESHOLDS]; /* NAN: none */
};

/* The names people read: "upper critical", ... */
const char *health_threshold_name(enum health_threshold t);

/*
 * Parse one line of hook output. Returns 1 with *out filled, 0 for a line
 * with nothing in it (blank, comment), or -EINVAL with the reason in err
 * ("expected 10 '|'-separated columns (ipmitool sensor), got 4"). The line
 * has no newline.
 */
int health_parse_line(const char *line, struct health_reading *out, char *err, size_t errlen);

/* A reading with only a sensor, a value and a unit (health.report). */
void health_reading_simple(struct health_reading *r, const char *sensor, double value,
			   const char *unit);

/*
 * Does the reading cross its own critical or non-recoverable threshold
 * (or does its status column say so)? 1 with a reason such as "CPU1 Temp
 * 96 C > upper critical 95 C", else 0. Non-critical thresholds do not
 * count.
 */
int health_reading_critical(const struct health_reading *r, char *reason, size_t len);

enum health_rule_kind { HEALTH_ABOVE, HEALTH_BELOW, HEALTH_RISE };

struct health_rule {
	char name[64];
	char sensor[HEALTH_SENSOR_MAX]; /* a glob, matched case-insensitively */
	enum health_rule_kind kind;
	double value;                   /* above/below: the limit; rise: N */
	double within_s;                /* rise: the window */
	bool has_clear;                 /* above/below: hysteresis level */
	double clear;                   /* above: ok again at <= clear; below: >= clear */
	double clear_after_s;           /* back to service after this long ok; 0: by hand */
};

bool health_rule_matches(const struct health_rule *r, const char *sensor);

/* One stored sample of a sensor. */
struct health_sample {
	double t_s;
	double value;
};

/*
 * Judge one sensor against a rule from its samples (oldest first, the
 * latest last; samples without a value are left out by the caller).
 * degraded says whether the host is degraded by this rule now, so the
 * hysteresis level applies. Returns 1 (violated) with a reason like "CPU1
 * Temp 96 C > 90 (rule hot)", or "ECC 12 rose by 10 within 1h (rule ecc)",
 * else 0.
 */
int health_rule_eval(const struct health_rule *r, const char *sensor, const char *unit,
		     const struct health_sample *s, size_t n, bool degraded, char *reason,
		     size_t len);

/* "degrees C" -> "C", for messages. */
const char *health_unit_short(const char *unit);

#endif
