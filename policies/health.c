/*
 * health: see health.h. Parsing is strict about structure (column count, a
 * number where a number belongs) and loose about spacing, because hook
 * output is written by hand as often as by ipmitool.
 */
#include "health.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IPMI_COLUMNS 10

static const char *const threshold_names[HEALTH_N_THRESHOLDS] = {
	"lower non-recoverable", "lower critical", "lower non-critical",
	"upper non-critical", "upper critical", "upper non-recoverable",
};

const char *health_threshold_name(enum health_threshold t)
{
	return (unsigned)t < HEALTH_N_THRESHOLDS ? threshold_names[t] : "?";
}

const char *health_unit_short(const char *unit)
{
	if (strncasecmp(unit, "degrees ", 8) == 0)
		return unit + 8;
	return unit;
}

/* Trim blanks on both ends, in place. */
static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int parse_number(const char *text, double *out)
{
	char *end;
	if (!*text)
		return -EINVAL;
	double v = strtod(text, &end);
	if (*end || !isfinite(v))
		return -EINVAL;
	*out = v;
	return 0;
}

static bool is_na(const char *s)
{
	return strcasecmp(s, "na") == 0 || strcasecmp(s, "n/a") == 0 || !*s;
}

static void reading_clear(struct health_reading *r)
{
	memset(r, 0, sizeof(*r));
	for (int i = 0; i < HEALTH_N_THRESHOLDS; i++)
		r->threshold[i] = NAN;
}

static int copy_text(char *dst, size_t len, const char *src, const char *what, char *err,
		     size_t errlen)
{
	if (snprintf(dst, len, "%s", src) >= (int)len) {
		snprintf(err, errlen, "%s \"%.40s...\": longer than %zu bytes", what, src, len - 1);
		return -EINVAL;
	}
	return 0;
}

/* name | value | unit | status | lnr | lcr | lnc | unc | ucr | unr */
static int parse_ipmitool(char *line, struct health_reading *r, char *err, size_t errlen)
{
	char *col[IPMI_COLUMNS + 1];
	int n = 0;
	for (char *p = line; n <= IPMI_COLUMNS;) {
		char *bar = strchr(p, '|');
		col[n++] = p;
		if (!bar)
			break;
		*bar = '\0';
		p = bar + 1;
	}
	if (n != IPMI_COLUMNS) {
		snprintf(err, errlen, "expected %d '|'-separated columns (ipmitool sensor), got %s%d",
			 IPMI_COLUMNS, n > IPMI_COLUMNS ? "more than " : "",
			 n > IPMI_COLUMNS ? IPMI_COLUMNS : n);
		return -EINVAL;
	}
	for (int i = 0; i < n; i++)
		col[i] = trim(col[i]);
	if (!*col[0]) {
		snprintf(err, errlen, "no sensor name in the first column");
		return -EINVAL;
	}
	if (copy_text(r->sensor, sizeof(r->sensor), col[0], "sensor", err, errlen) < 0 ||
	    copy_text(r->unit, sizeof(r->unit), col[2], "unit", err, errlen) < 0 ||
	    copy_text(r->status, sizeof(r->status), col[3], "status", err, errlen) < 0)
		return -EINVAL;
	r->discrete = strcasecmp(col[2], "discrete") == 0;
	if (r->discrete && strncasecmp(col[1], "0x", 2) == 0) {
		char *end;
		unsigned long v = strtoul(col[1] + 2, &end, 16);
		if (col[1][2] == '\0' || *end) {
			snprintf(err, errlen, "value \"%s\": expected a hex number like 0x1", col[1]);
			return -EINVAL;
		}
		r->value = (double)v;
		r->has_value = true;
	} else if (!is_na(col[1])) {
		if (parse_number(col[1], &r->value) < 0) {
			snprintf(err, errlen, "value \"%s\": expected a number or na", col[1]);
			return -EINVAL;
		}
		r->has_value = true;
	}
	for (int i = 0; i < HEALTH_N_THRESHOLDS; i++) {
		const char *t = col[4 + i];
		if (is_na(t))
			continue;
		if (parse_number(t, &r->threshold[i]) < 0) {
			snprintf(err, errlen, "%s threshold \"%s\": expected a number or na",
				 threshold_names[i], t);
			return -EINVAL;
		}
	}
	return 1;
}

/* sensor value [unit]; the sensor may be "double quoted". */
static int parse_simple(char *line, struct health_reading *r, char *err, size_t errlen)
{
	char *p = line, *name;
	if (*p == '"') {
		name = ++p;
		char *q = strchr(p, '"');
		if (!q) {
			snprintf(err, errlen, "sensor name: no closing '\"'");
			return -EINVAL;
		}
		*q = '\0';
		p = q + 1;
		if (*p && !isspace((unsigned char)*p)) {
			snprintf(err, errlen, "expected a blank after the quoted sensor name");
			return -EINVAL;
		}
	} else {
		name = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
	char *value = trim(p);
	char *unit = value;
	while (*unit && !isspace((unsigned char)*unit))
		unit++;
	if (*unit)
		*unit++ = '\0';
	unit = trim(unit);
	if (!*name) {
		snprintf(err, errlen, "empty sensor name");
		return -EINVAL;
	}
	if (!*value) {
		snprintf(err, errlen, "sensor \"%.40s\": no value (expected \"sensor value [unit]\" "
			 "or ipmitool sensor columns)", name);
		return -EINVAL;
	}
	if (copy_text(r->sensor, sizeof(r->sensor), name, "sensor", err, errlen) < 0 ||
	    copy_text(r->unit, sizeof(r->unit), unit, "unit", err, errlen) < 0)
		return -EINVAL;
	if (is_na(value))
		return 1;
	if (parse_number(value, &r->value) < 0) {
		snprintf(err, errlen, "sensor \"%.40s\": value \"%.40s\": expected a number or na",
			 name, value);
		return -EINVAL;
	}
	r->has_value = true;
	return 1;
}

int health_parse_line(const char *line, struct health_reading *out, char *err, size_t errlen)
{
	char buf[1024];
	reading_clear(out);
	if (snprintf(buf, sizeof(buf), "%s", line) >= (int)sizeof(buf)) {
		snprintf(err, errlen, "line longer than %zu bytes", sizeof(buf) - 1);
		return -EINVAL;
	}
	char *s = trim(buf);
	if (!*s || *s == '#')
		return 0;
	return strchr(s, '|') ? parse_ipmitool(s, out, err, errlen)
			      : parse_simple(s, out, err, errlen);
}

void health_reading_simple(struct health_reading *r, const char *sensor, double value,
			   const char *unit)
{
	reading_clear(r);
	snprintf(r->sensor, sizeof(r->sensor), "%s", sensor);
	snprintf(r->unit, sizeof(r->unit), "%s", unit ? unit : "");
	r->value = value;
	r->has_value = isfinite(value);
}

/* "96 C" or "12" */
static void value_text(double v, const char *unit, char *buf, size_t len)
{
	const char *u = health_unit_short(unit);
	snprintf(buf, len, "%g%s%s", v, *u ? " " : "", u);
}

int health_reading_critical(const struct health_reading *r, char *reason, size_t len)
{
	static const struct {
		enum health_threshold t;
		int upper;
	} checks[] = { { HEALTH_UNR, 1 }, { HEALTH_UCR, 1 }, { HEALTH_LNR, 0 }, { HEALTH_LCR, 0 } };
	char v[64], lim[64];
	if (r->discrete)
		return 0;
	if (r->has_value) {
		for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
			double t = r->threshold[checks[i].t];
			if (isnan(t))
				continue;
			/* ipmitool flags a reading at the threshold too */
			if (checks[i].upper ? r->value >= t : r->value <= t) {
				value_text(r->value, r->unit, v, sizeof(v));
				value_text(t, r->unit, lim, sizeof(lim));
				snprintf(reason, len, "%s %s %s %s %s", r->sensor, v,
					 checks[i].upper ? ">" : "<", threshold_names[checks[i].t],
					 lim);
				return 1;
			}
		}
	}
	static const char *const bad_status[] = { "cr", "nr", "ucr", "lcr", "unr", "lnr" };
	for (size_t i = 0; i < sizeof(bad_status) / sizeof(bad_status[0]); i++) {
		if (strcasecmp(r->status, bad_status[i]) == 0) {
			if (r->has_value)
				value_text(r->value, r->unit, v, sizeof(v));
			snprintf(reason, len, "%s %s: ipmitool status %s", r->sensor,
				 r->has_value ? v : "na", r->status);
			return 1;
		}
	}
	return 0;
}

bool health_rule_matches(const struct health_rule *r, const char *sensor)
{
	return fnmatch(r->sensor, sensor, FNM_CASEFOLD) == 0;
}

/* "1h", "90s", "2.5m" for messages. */
static void duration_text(double s, char *buf, size_t len)
{
	if (s >= 86400 && fmod(s, 86400) == 0)
		snprintf(buf, len, "%gd", s / 86400);
	else if (s >= 3600 && fmod(s, 3600) == 0)
		snprintf(buf, len, "%gh", s / 3600);
	else if (s >= 60 && fmod(s, 60) == 0)
		snprintf(buf, len, "%gm", s / 60);
	else
		snprintf(buf, len, "%gs", s);
}

int health_rule_eval(const struct health_rule *r, const char *sensor, const char *unit,
		     const struct health_sample *s, size_t n, bool degraded, char *reason,
		     size_t len)
{
	char v[64], lim[64], win[32];
	if (n == 0 || !health_rule_matches(r, sensor))
		return 0;
	const struct health_sample *last = &s[n - 1];
	if (r->kind == HEALTH_ABOVE || r->kind == HEALTH_BELOW) {
		int above = r->kind == HEALTH_ABOVE;
		double limit = r->value;
		if (degraded && r->has_clear) /* hysteresis: ok again only past clear */
			limit = r->clear;
		int bad = above ? last->value > limit : last->value < limit;
		if (!bad)
			return 0;
		value_text(last->value, unit, v, sizeof(v));
		value_text(r->value, unit, lim, sizeof(lim));
		snprintf(reason, len, "%s %s %s %s (rule %s)", sensor, v, above ? ">" : "<", lim,
			 r->name);
		return 1;
	}
	/* rise: the latest value against the lowest within the window before it */
	double low = last->value;
	for (size_t i = n; i-- > 0;) {
		if (s[i].t_s < last->t_s - r->within_s)
			break;
		if (s[i].value < low)
			low = s[i].value;
	}
	if (last->value - low < r->value)
		return 0;
	value_text(last->value, unit, v, sizeof(v));
	duration_text(r->within_s, win, sizeof(win));
	snprintf(reason, len, "%s %s rose by %g within %s (rule %s)", sensor, v,
		 last->value - low, win, r->name);
	return 1;
}
