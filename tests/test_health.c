/*
 * Health input and rules as pure logic: ipmitool `sensor` output (normal
 * rows, "na" readings, discrete sensors with hex status, odd spacing), the
 * "sensor value [unit]" format, bad lines refused with the reason, the
 * critical thresholds ipmitool reports, threshold rules with hysteresis
 * and trend rules (rise by N within T).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "health.h"

static char err[256], reason[256];

static struct health_reading parse_ok(const char *line)
{
	struct health_reading r;
	int rc = health_parse_line(line, &r, err, sizeof(err));
	cr_assert_eq(rc, 1, "\"%s\": %d %s", line, rc, err);
	return r;
}

static void parse_bad(const char *line, const char *word)
{
	struct health_reading r;
	err[0] = '\0';
	cr_assert_eq(health_parse_line(line, &r, err, sizeof(err)), -EINVAL, "\"%s\" accepted",
		     line);
	cr_assert(strstr(err, word), "\"%s\": \"%s\" does not say \"%s\"", line, err, word);
}

Test(health, ipmitool_normal_rows)
{
	struct health_reading r = parse_ok("CPU1 Temp        | 45.000     | degrees C  | ok    "
					   "| 0.000     | 0.000     | 0.000     | 90.000    | 95.000"
					   "    | 100.000");
	cr_assert_str_eq(r.sensor, "CPU1 Temp");
	cr_assert(r.has_value && !r.discrete);
	cr_assert_float_eq(r.value, 45, 1e-9);
	cr_assert_str_eq(r.unit, "degrees C");
	cr_assert_str_eq(r.status, "ok");
	cr_assert_float_eq(r.threshold[HEALTH_UCR], 95, 1e-9);
	cr_assert_float_eq(r.threshold[HEALTH_UNR], 100, 1e-9);
	cr_assert_eq(health_reading_critical(&r, reason, sizeof(reason)), 0);

	r = parse_ok("FAN1|3000.000|RPM|ok|300.000|500.000|700.000|na|na|na");
	cr_assert_str_eq(r.sensor, "FAN1");
	cr_assert(isnan(r.threshold[HEALTH_UCR]));
	cr_assert_float_eq(r.threshold[HEALTH_LCR], 500, 1e-9);
}

Test(health, ipmitool_na_readings_and_discrete_sensors)
{
	struct health_reading r = parse_ok("CPU2 Temp  | na | degrees C | na | na | na | na | "
					   "90.000 | 95.000 | 100.000");
	cr_assert(!r.has_value);
	cr_assert_eq(health_reading_critical(&r, reason, sizeof(reason)), 0);
	r = parse_ok("PS1 Status | 0x1 | discrete | 0x0180| na | na | na | na | na | na");
	cr_assert(r.discrete && r.has_value);
	cr_assert_float_eq(r.value, 1, 1e-9);
	cr_assert_str_eq(r.status, "0x0180");
	cr_assert_eq(health_reading_critical(&r, reason, sizeof(reason)), 0,
		     "discrete states need a rule");
	r = parse_ok("Intrusion        | 0x0        | discrete   | 0x0080| na        | na  "
		     "      | na        | na        | na        | na");
	cr_assert_float_eq(r.value, 0, 1e-9);
}

Test(health, ipmitool_critical_thresholds_degrade_without_a_rule)
{
	struct health_reading r = parse_ok("CPU1 Temp | 96.000 | degrees C | ucr | 0.000 | 0.000 "
					   "| 0.000 | 90.000 | 95.000 | 100.000");
	cr_assert_eq(health_reading_critical(&r, reason, sizeof(reason)), 1);
	cr_assert_str_eq(reason, "CPU1 Temp 96 C > upper critical 95 C");
	r = parse_ok("FAN2 | 200.000 | RPM | lcr | 100.000 | 300.000 | 500.000 | na | na | na");
	cr_assert_eq(health_reading_critical(&r, reason, sizeof(reason)), 1);
	cr_assert_str_eq(reason, "FAN2 200 RPM < lower critical 300 RPM");
	r = parse_ok("CPU1 Temp | 92.000 | degrees C | unc | na | na | na | 90.000 | 95.000 | na");
	cr_assert_eq(health_reading_critical(&r, reason, sizeof(reason)), 0,
		     "non-critical is not degraded");
	r = parse_ok("VRM | na | Volts | cr | na | na | na | na | na | na");
	cr_assert_eq(health_reading_critical(&r, reason, sizeof(reason)), 1,
		     "the status column alone counts");
	cr_assert(strstr(reason, "status cr"), "%s", reason);
}

Test(health, simple_sensor_value_lines)
{
	struct health_reading r = parse_ok("cpu_temp 96 C");
	cr_assert_str_eq(r.sensor, "cpu_temp");
	cr_assert_float_eq(r.value, 96, 1e-9);
	cr_assert_str_eq(r.unit, "C");
	r = parse_ok("  ecc_errors\t12  ");
	cr_assert_str_eq(r.sensor, "ecc_errors");
	cr_assert_str_eq(r.unit, "");
	r = parse_ok("\"CPU1 Temp\" 71.5 degrees C");
	cr_assert_str_eq(r.sensor, "CPU1 Temp");
	cr_assert_str_eq(r.unit, "degrees C");
	r = parse_ok("fan na");
	cr_assert(!r.has_value);
	struct health_reading skip;
	cr_assert_eq(health_parse_line("", &skip, err, sizeof(err)), 0);
	cr_assert_eq(health_parse_line("   # a comment", &skip, err, sizeof(err)), 0);
}

Test(health, bad_lines_say_why)
{
	parse_bad("CPU1 Temp | 45.000 | degrees C | ok", "expected 10 '|'-separated columns");
	parse_bad("a|b|c|d|e|f|g|h|i|j|k|l", "more than 10");
	parse_bad("CPU1 Temp | hot | degrees C | ok | na | na | na | na | na | na",
		  "value \"hot\"");
	parse_bad("CPU1 Temp | 45 | degrees C | ok | na | na | na | na | 95,0 | na",
		  "upper critical threshold \"95,0\"");
	parse_bad("PS1 | 0xZZ | discrete | 0x0 | na | na | na | na | na | na", "hex");
	parse_bad(" | 45 | C | ok | na | na | na | na | na | na", "no sensor name");
	parse_bad("cpu_temp", "no value");
	parse_bad("cpu_temp warm", "value \"warm\"");
	parse_bad("\"CPU1 Temp 45", "closing");
}

static struct health_rule rule(const char *sensor, enum health_rule_kind kind, double value,
			       double within_s)
{
	struct health_rule r = { .kind = kind, .value = value, .within_s = within_s };
	snprintf(r.name, sizeof(r.name), "r1");
	snprintf(r.sensor, sizeof(r.sensor), "%s", sensor);
	return r;
}

Test(health, threshold_rules_and_hysteresis)
{
	struct health_rule hot = rule("CPU* Temp", HEALTH_ABOVE, 90, 0);
	struct health_sample s[] = { { 0, 85 }, { 30, 91 } };
	cr_assert(health_rule_matches(&hot, "cpu2 temp"), "glob, any case");
	cr_assert(!health_rule_matches(&hot, "FAN1"));
	cr_assert_eq(health_rule_eval(&hot, "CPU1 Temp", "degrees C", s, 2, false, reason,
				      sizeof(reason)), 1);
	cr_assert_str_eq(reason, "CPU1 Temp 91 C > 90 C (rule r1)");
	cr_assert_eq(health_rule_eval(&hot, "CPU1 Temp", "degrees C", s, 1, false, reason,
				      sizeof(reason)), 0, "85 is fine");
	cr_assert_eq(health_rule_eval(&hot, "FAN1", "", s, 2, false, reason, sizeof(reason)), 0);
	hot.has_clear = true;
	hot.clear = 80;
	struct health_sample cooling[] = { { 60, 85 } };
	cr_assert_eq(health_rule_eval(&hot, "CPU1 Temp", "C", cooling, 1, true, reason,
				      sizeof(reason)), 1, "degraded: still bad until <= 80");
	cr_assert_eq(health_rule_eval(&hot, "CPU1 Temp", "C", cooling, 1, false, reason,
				      sizeof(reason)), 0, "not degraded: 85 is under 90");
	struct health_sample cool[] = { { 90, 79 } };
	cr_assert_eq(health_rule_eval(&hot, "CPU1 Temp", "C", cool, 1, true, reason,
				      sizeof(reason)), 0);
	struct health_rule slow = rule("FAN*", HEALTH_BELOW, 500, 0);
	struct health_sample fan[] = { { 0, 450 } };
	cr_assert_eq(health_rule_eval(&slow, "FAN3", "RPM", fan, 1, false, reason,
				      sizeof(reason)), 1);
	cr_assert_str_eq(reason, "FAN3 450 RPM < 500 RPM (rule r1)");
}

Test(health, trend_rule_rise_within_a_window)
{
	struct health_rule ecc = rule("ecc_errors", HEALTH_RISE, 10, 3600);
	struct health_sample slow_rise[] = { { 0, 0 }, { 1800, 5 }, { 3700, 11 } };
	cr_assert_eq(health_rule_eval(&ecc, "ecc_errors", "", slow_rise, 3, false, reason,
				      sizeof(reason)), 0, "11 over 3700 s: 0 is outside the hour");
	struct health_sample fast_rise[] = { { 0, 0 }, { 1800, 5 }, { 3000, 12 } };
	cr_assert_eq(health_rule_eval(&ecc, "ecc_errors", "", fast_rise, 3, false, reason,
				      sizeof(reason)), 1);
	cr_assert_str_eq(reason, "ecc_errors 12 rose by 12 within 1h (rule r1)");
	struct health_sample dip[] = { { 0, 20 }, { 100, 3 }, { 200, 13 } };
	cr_assert_eq(health_rule_eval(&ecc, "ecc_errors", "", dip, 3, false, reason,
				      sizeof(reason)), 1, "from the lowest in the window");
	struct health_sample flat[] = { { 0, 100 }, { 100, 100 } };
	cr_assert_eq(health_rule_eval(&ecc, "ecc_errors", "", flat, 2, false, reason,
				      sizeof(reason)), 0);
	cr_assert_eq(health_rule_eval(&ecc, "ecc_errors", "", flat, 0, false, reason,
				      sizeof(reason)), 0, "no samples, no verdict");
}
