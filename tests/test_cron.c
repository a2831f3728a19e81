/*
 * Cron schedules as pure logic: parsing (fields, names, steps, lists, bad
 * expressions named in the error), next firing across month ends and leap
 * years, Vixie's day-of-month OR day-of-week rule, daylight saving changes
 * in Europe/Berlin (cronie's rules: fixed-time jobs once, wildcard jobs by
 * the wall clock), and, when Debian's libschedule-cron-events-perl is
 * there, many expressions compared with it as an oracle in UTC.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"

static char err[512];

static double utc(int y, int mon, int d, int h, int min)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d, .tm_hour = h,
			 .tm_min = min };
	return (double)timegm(&tm);
}

static struct cron_expr parse_ok(const char *text)
{
	struct cron_expr e;
	int rc = cron_parse(text, &e, err, sizeof(err));
	cr_assert_eq(rc, 0, "cron_parse(\"%s\"): %s", text, err);
	return e;
}

static void expect_bad(const char *text, const char *word)
{
	struct cron_expr e;
	err[0] = '\0';
	cr_assert_eq(cron_parse(text, &e, err, sizeof(err)), -EINVAL, "\"%s\" accepted", text);
	cr_assert(strstr(err, word), "\"%s\": error \"%s\" does not name \"%s\"", text, err, word);
}

static void expect_times(const char *expr, const char *tz, double after, const double *want,
			 size_t n)
{
	struct cron_params p = { 0 };
	double got[16];
	p.expr = parse_ok(expr);
	snprintf(p.tz, sizeof(p.tz), "%s", tz);
	size_t k = cron_next_n(&p, after, got, n);
	cr_assert_eq(k, n, "%s: %zu firings, expected %zu", expr, k, n);
	for (size_t i = 0; i < n; i++) {
		time_t g = (time_t)got[i], w = (time_t)want[i];
		char gs[32], ws[32];
		strftime(gs, sizeof(gs), "%F %T", gmtime(&g));
		strftime(ws, sizeof(ws), "%F %T", gmtime(&w));
		cr_assert_eq(got[i], want[i], "%s in %s: firing %zu at %s UTC, expected %s UTC", expr,
			     *tz ? tz : "UTC", i + 1, gs, ws);
	}
}

Test(cron, parses_lists_ranges_steps_and_names)
{
	struct cron_expr e = parse_ok("5-20/5,50 */6 1,15 jan-mar,DEC mon-fri");
	cr_assert_eq(e.minute, (1ull << 5) | (1ull << 10) | (1ull << 15) | (1ull << 20) |
			       (1ull << 50));
	cr_assert_eq(e.hour, (1u << 0) | (1u << 6) | (1u << 12) | (1u << 18));
	cr_assert_eq(e.dom, (1u << 1) | (1u << 15));
	cr_assert_eq(e.month, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 12));
	cr_assert_eq(e.dow, 0x3e);
	cr_assert(!e.dom_star && !e.dow_star && !e.fixed_time);
	e = parse_ok("0 12 * * 7");
	cr_assert_eq(e.dow, 1u, "7 is Sunday");
	e = parse_ok("0 12 * * 0");
	cr_assert_eq(e.dow, 1u, "0 is Sunday");
	e = parse_ok("0 12 * * 5-7");
	cr_assert_eq(e.dow, (1u << 5) | (1u << 6) | 1u, "5-7 is Fri, Sat, Sun");
	e = parse_ok("10/20 * * * *");
	cr_assert_eq(e.minute, (1ull << 10) | (1ull << 30) | (1ull << 50), "a/n runs to the end");
	e = parse_ok("  0\t2  * * *  ");
	cr_assert(e.fixed_time && e.dom_star && e.dow_star);
	e = parse_ok("0 0 */2 * sun");
	cr_assert(e.dom_star, "a field starting with * counts as unrestricted (Vixie)");
}

Test(cron, bad_expressions_are_named_in_the_error)
{
	expect_bad("0 25 * * *", "hour \"25\": out of range 0-23");
	expect_bad("60 * * * *", "minute \"60\"");
	expect_bad("* * * *", "expected 5 fields");
	expect_bad("* * * * * *", "expected 5 fields");
	expect_bad("*/0 * * * *", "minute \"*/0\": step out of range");
	expect_bad("0 0 0 * *", "day of month \"0\"");
	expect_bad("0 0 * 13 *", "month \"13\"");
	expect_bad("0 0 * foo *", "month \"foo\"");
	expect_bad("0 0 * * 8", "day of week \"8\"");
	expect_bad("0 0 * * mon-", "day of week \"mon-\"");
	expect_bad("0 0 * * fri-mon", "range backwards");
	expect_bad("0 0 31 2 *", "never occurs");
	expect_bad("0 0 30 feb *", "never occurs");
	expect_bad("1,,2 * * * *", "empty list element");
	expect_bad("0 x * * *", "hour \"x\"");
	expect_bad("", "expected 5 fields");
}

Test(cron, crosses_month_and_year_ends)
{
	double want[] = { utc(2025, 2, 1, 0, 0), utc(2025, 3, 1, 0, 0), utc(2025, 4, 1, 0, 0) };
	expect_times("0 0 1 * *", "", utc(2025, 1, 31, 12, 0), want, 3);
	double want31[] = { utc(2025, 1, 31, 6, 0), utc(2025, 3, 31, 6, 0),
			    utc(2025, 5, 31, 6, 0), utc(2025, 7, 31, 6, 0) };
	expect_times("0 6 31 * *", "", utc(2025, 1, 1, 0, 0), want31, 4);
	double want_ny[] = { utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0) };
	expect_times("0 0 1 1 *", "", utc(2025, 12, 31, 23, 59), want_ny, 2);
	double last[] = { utc(2025, 12, 31, 23, 59), utc(2026, 1, 1, 0, 0) };
	expect_times("* * * * *", "", utc(2025, 12, 31, 23, 58), last, 2);
}

Test(cron, feb_29_only_in_leap_years)
{
	double want[] = { utc(2028, 2, 29, 0, 0), utc(2032, 2, 29, 0, 0) };
	expect_times("0 0 29 2 *", "", utc(2025, 3, 1, 0, 0), want, 2);
	double centuries[] = { utc(2096, 2, 29, 0, 0), utc(2104, 2, 29, 0, 0) };
	expect_times("0 0 29 feb *", "", utc(2095, 1, 1, 0, 0), centuries, 2); /* 2100 is not */
	double after_leap[] = { utc(2024, 2, 29, 12, 0), utc(2024, 3, 1, 12, 0) };
	expect_times("0 12 28-31 2,3 *", "", utc(2024, 2, 29, 0, 0), after_leap, 1);
	expect_times("0 12 * * *", "", utc(2024, 2, 29, 0, 0), after_leap, 2);
}

Test(cron, day_of_month_or_day_of_week_when_both_are_restricted)
{
	/* 2026-01-01 is a Thursday: Fridays 2, 9, 16 and the 13th */
	double want[] = { utc(2026, 1, 2, 0, 0), utc(2026, 1, 9, 0, 0), utc(2026, 1, 13, 0, 0),
			  utc(2026, 1, 16, 0, 0) };
	expect_times("0 0 13 * 5", "", utc(2026, 1, 1, 0, 0), want, 4);
	/* one restricted: AND with the star */
	double fridays[] = { utc(2026, 1, 2, 0, 0), utc(2026, 1, 9, 0, 0) };
	expect_times("0 0 * * fri", "", utc(2026, 1, 1, 0, 0), fridays, 2);
	/* "*\/2" counts as a star: odd days that are Sundays (Jan 11, 25) */
	double odd_sundays[] = { utc(2026, 1, 11, 0, 0), utc(2026, 1, 25, 0, 0) };
	expect_times("0 0 */2 * sun", "", utc(2026, 1, 1, 0, 0), odd_sundays, 2);
}

Test(cron, day_of_month_steps_start_at_1)
{
	double want[] = { utc(2026, 1, 1, 4, 20), utc(2026, 1, 4, 4, 20), utc(2026, 1, 31, 4, 20),
			  utc(2026, 2, 1, 4, 20) };
	struct cron_params p = { 0 };
	double got[12];
	p.expr = parse_ok("20 4 */3 * *");
	cr_assert_eq(cron_next_n(&p, utc(2025, 12, 31, 23, 59), got, 12), 12);
	cr_assert_eq(got[0], want[0]);
	cr_assert_eq(got[1], want[1]);
	cr_assert_eq(got[10], want[2], "31 = 1 + 10 * 3");
	cr_assert_eq(got[11], want[3], "the step starts again each month");
}

Test(cron, step_range_list_combinations)
{
	double want[] = { utc(2026, 3, 2, 0, 50), utc(2026, 3, 2, 6, 5), utc(2026, 3, 2, 6, 10),
			  utc(2026, 3, 2, 6, 15), utc(2026, 3, 2, 6, 20), utc(2026, 3, 2, 6, 50) };
	expect_times("5-20/5,50 */6 * * mon-fri", "", utc(2026, 3, 2, 0, 30), want, 6);
	/* 2026-03-07 is a Saturday: the weekend is skipped */
	double weekdays[] = { utc(2026, 3, 6, 18, 50), utc(2026, 3, 9, 0, 5) };
	expect_times("5-20/5,50 */6 * * mon-fri", "", utc(2026, 3, 6, 18, 20), weekdays, 2);
}

Test(cron, strictly_after_and_whole_minutes)
{
	double want[] = { utc(2026, 5, 1, 10, 1) };
	expect_times("* * * * *", "", utc(2026, 5, 1, 10, 0), want, 1);
	expect_times("* * * * *", "", utc(2026, 5, 1, 10, 0) + 30.5, want, 1);
	struct cron_expr e = parse_ok("0 0 1 1 *");
	cr_assert(isinf(cron_next_s(&e, "", INFINITY)));
}

/* Europe/Berlin 2026: CET -> CEST on March 29 at 02:00 (01:00 UTC), CEST ->
 * CET on October 25 at 03:00 (01:00 UTC). */
Test(cron, dst_spring_forward_fixed_time_runs_at_the_change)
{
	double want[] = { utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30) };
	expect_times("30 2 * * *", "Europe/Berlin", utc(2026, 3, 27, 12, 0), want, 3);
	double two_in_gap[] = { utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 0) };
	expect_times("0,30 2 * * *", "Europe/Berlin", utc(2026, 3, 28, 23, 0), two_in_gap, 2);
}

Test(cron, dst_spring_forward_wildcard_skips_the_missing_hour)
{
	/* 01:30 CET, then 03:00 and 03:30 CEST: 02:xx does not exist */
	double want[] = { utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 30) };
	expect_times("*/30 * * * *", "Europe/Berlin", utc(2026, 3, 29, 0, 0), want, 3);
}

Test(cron, dst_fall_back_fixed_time_runs_once)
{
	double want[] = { utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30) };
	expect_times("30 2 * * *", "Europe/Berlin", utc(2026, 10, 24, 12, 0), want, 2);
}

Test(cron, dst_fall_back_wildcard_runs_in_both_hours)
{
	/* 02:00 and 02:30 CEST, then 02:00 and 02:30 CET, then 03:00 CET */
	double want[] = { utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 0),
			  utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 2, 0) };
	expect_times("0,30 * * * *", "Europe/Berlin", utc(2026, 10, 24, 23, 45), want, 5);
	/* from inside the first 02:xx hour, the repeated one still comes */
	expect_times("0,30 * * * *", "Europe/Berlin", utc(2026, 10, 25, 0, 40), want + 2, 3);
}

/* Australia/Lord_Howe shifts by half an hour: 2026-10-04 02:00 -> 02:30
 * (15:30 UTC), 2026-04-05 02:00 -> 01:30 (15:00 UTC). */
Test(cron, dst_half_hour_shift)
{
	double gap_fixed[] = { utc(2026, 10, 3, 15, 30), utc(2026, 10, 4, 15, 15) };
	expect_times("15 2 * * *", "Australia/Lord_Howe", utc(2026, 10, 3, 12, 0), gap_fixed, 2);
	double gap_wild[] = { utc(2026, 10, 3, 15, 15), utc(2026, 10, 3, 15, 30),
			      utc(2026, 10, 3, 15, 45) };
	expect_times("*/15 * * * *", "Australia/Lord_Howe", utc(2026, 10, 3, 15, 0), gap_wild, 3);
	double back_fixed[] = { utc(2026, 4, 4, 14, 45), utc(2026, 4, 5, 15, 15) };
	expect_times("45 1 * * *", "Australia/Lord_Howe", utc(2026, 4, 4, 12, 0), back_fixed, 2);
	double back_wild[] = { utc(2026, 4, 4, 14, 30), utc(2026, 4, 4, 14, 45),
			       utc(2026, 4, 4, 15, 0), utc(2026, 4, 4, 15, 15),
			       utc(2026, 4, 4, 15, 30) };
	expect_times("*/15 * * * *", "Australia/Lord_Howe", utc(2026, 4, 4, 14, 20), back_wild, 5);
}

Test(cron, named_zone_shifts_wall_clock_times)
{
	double want[] = { utc(2026, 1, 15, 7, 0), utc(2026, 7, 15, 6, 0) }; /* 08:00 CET, CEST */
	expect_times("0 8 15 1,7 *", "Europe/Berlin", utc(2026, 1, 1, 0, 0), want, 2);
	double ny[] = { utc(2026, 1, 15, 13, 0) }; /* 08:00 EST */
	expect_times("0 8 15 1,7 *", "America/New_York", utc(2026, 1, 1, 0, 0), ny, 1);
	/* the caller's TZ is put back */
	setenv("TZ", "America/New_York", 1);
	struct cron_expr e = parse_ok("0 8 * * *");
	cron_next_s(&e, "Europe/Berlin", utc(2026, 1, 1, 0, 0));
	cr_assert_str_eq(getenv("TZ"), "America/New_York");
	unsetenv("TZ");
	cron_next_s(&e, "Europe/Berlin", utc(2026, 1, 1, 0, 0));
	cr_assert_null(getenv("TZ"));
	cr_assert_eq(cron_tz_check("Europe/Berlin", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cron_tz_check("", err, sizeof(err)), 0);
	cr_assert_eq(cron_tz_check("Mars/Olympus", err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "Mars/Olympus"), "%s", err);
	cr_assert_eq(cron_tz_check("../../etc/passwd", err, sizeof(err)), -EINVAL);
}

Test(cron, policy_parameters_and_missed_firings)
{
	struct policy_kv kv[] = { { "schedule", "0 * * * *" }, { "action", "evacuate n1,n2" },
				  { "tz", "Europe/Berlin" }, { "missed", "skip" },
				  { "name", "nightly" }, { "type", "cron" } };
	struct cron_params p;
	cr_assert_eq(cron_policy_parse(kv, 6, &p, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(p.missed, CRON_MISSED_SKIP);
	char verb[16], arg[64];
	cron_action_split(p.action, verb, sizeof(verb), arg, sizeof(arg));
	cr_assert_str_eq(verb, "evacuate");
	cr_assert_str_eq(arg, "n1,n2");
	struct policy_kv bad_action[] = { { "schedule", "0 * * * *" }, { "action", "reboot n1" } };
	cr_assert_eq(cron_policy_parse(bad_action, 2, &p, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "reboot n1"), "%s", err);
	struct policy_kv bad_missed[] = { { "schedule", "0 * * * *" }, { "action", "rebalance" },
					  { "missed", "twice" } };
	cr_assert_eq(cron_policy_parse(bad_missed, 3, &p, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "twice"), "%s", err);
	struct policy_kv no_sched[] = { { "action", "rebalance" } };
	cr_assert_eq(cron_policy_parse(no_sched, 1, &p, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "schedule"), "%s", err);

	/* hourly; migd down from 10:30 to 13:10: three firings missed */
	struct policy_kv hourly[] = { { "schedule", "0 * * * *" }, { "action", "rebalance" } };
	struct policy_state st;
	struct policy_pick picks[4];
	size_t n;
	cr_assert_eq(cron_policy_parse(hourly, 2, &p, err, sizeof(err)), 0, "%s", err);
	policy_cron_type.start(&p, &st, utc(2026, 5, 1, 10, 30));
	cr_assert_eq(st.next_fire_s, utc(2026, 5, 1, 11, 0));
	struct policy_state run_once = st, skip = st;
	cr_assert_eq(policy_cron_type.restore(&p, &run_once, utc(2026, 5, 1, 13, 10)), 3);
	cr_assert_eq(policy_cron_type.fire(&p, &run_once, utc(2026, 5, 1, 13, 10), 2, picks, &n),
		     1, "run-once: fires at start-up");
	cr_assert_eq(run_once.next_fire_s, utc(2026, 5, 1, 14, 0), "and only once");
	p.missed = CRON_MISSED_SKIP;
	cr_assert_eq(policy_cron_type.restore(&p, &skip, utc(2026, 5, 1, 13, 10)), 3);
	cr_assert_eq(skip.next_fire_s, utc(2026, 5, 1, 14, 0), "skip: waits for the next");
	cr_assert_eq(policy_cron_type.fire(&p, &skip, utc(2026, 5, 1, 13, 10), 2, picks, &n), 0);
}

/*
 * Schedule::Cron::Events (Debian's libschedule-cron-events-perl) as an
 * oracle: five firings of each expression from a few start times in UTC.
 * Only when the module is there; it answers in milliseconds. Numbers only:
 * the module reads no month or weekday names (names are tested above).
 */
static const char *const oracle_exprs[] = {
	"* * * * *", "0 * * * *", "*/7 * * * *", "5-20/5,50 */6 * * *", "0 0 * * *",
	"30 2 * * *", "0 0 1 * *", "0 0 31 * *", "0 0 29 2 *", "15 10 * * 1-5",
	"0 0 13 * 5", "0 12 1,15 * 0", "0 0 * * 7", "0 0 * * 0", "0 9-17/2 * * 1-5",
	"45 23 28-31 * *", "0 0 1 1,7 *", "0 6 * 2-4 6", "*/15 3 * * *",
	"59 23 31 12 *", "0 0 10-20/3 * *", "1,2,3 4,5 6,7 8,9 *", "0 12 * * 6,0",
	"0 0 1-7 * 1", "0 18 L * *",
	/* not "20 4 *\/3 * *": the module counts a day-of-month step from 0
	 * (3, 6, 9...), Vixie cron from the field's minimum (1, 4, 7...);
	 * day_of_month_steps_start_at_1 pins Vixie's reading */
};

static int oracle_write(const char *script_path)
{
	FILE *f = fopen(script_path, "w");
	if (!f)
		return -1;
	fputs("use strict; use Schedule::Cron::Events; use Time::Local;\n"
	      "while (my $line = <STDIN>) { chomp $line; my ($start, $expr) = split /\\t/, $line;\n"
	      "  my $c = eval { Schedule::Cron::Events->new($expr, Seconds => $start) };\n"
	      "  if (!$c) { print \"ERR\\n\"; next; }\n"
	      "  my @out; for (1..5) { my @t = $c->nextEvent; push @out, timegm(0, $t[1], $t[2],"
	      " $t[3], $t[4], $t[5] + 1900); }\n"
	      "  print join(' ', @out), \"\\n\"; }\n",
	      f);
	return fclose(f);
}

Test(cron, agrees_with_schedule_cron_events_in_utc)
{
	if (system("TZ=UTC perl -MSchedule::Cron::Events -e 1 >/dev/null 2>&1") != 0)
		cr_skip_test("perl's Schedule::Cron::Events is not installed");
	char dir[] = "/tmp/test_cron.XXXXXX", script[64], input[64], output[64], cmd[256];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(script, sizeof(script), "%s/oracle.pl", dir);
	snprintf(input, sizeof(input), "%s/in", dir);
	snprintf(output, sizeof(output), "%s/out", dir);
	cr_assert_eq(oracle_write(script), 0);
	double starts[4] = { utc(2025, 12, 31, 23, 59), utc(2024, 2, 28, 12, 0),
			     utc(2026, 6, 30, 23, 0), utc(2027, 3, 15, 8, 30) };
	FILE *in = fopen(input, "w");
	size_t n_cases = 0;
	for (size_t i = 0; i < sizeof(oracle_exprs) / sizeof(oracle_exprs[0]); i++) {
		struct cron_expr e;
		if (cron_parse(oracle_exprs[i], &e, err, sizeof(err)) < 0)
			continue; /* "L" is not Vixie syntax: both refuse it, nothing to compare */
		for (size_t s = 0; s < 4; s++, n_cases++)
			fprintf(in, "%.0f\t%s\n", starts[s], oracle_exprs[i]);
	}
	fclose(in);
	snprintf(cmd, sizeof(cmd), "TZ=UTC perl %s <%s >%s", script, input, output);
	cr_assert_eq(system(cmd), 0, "the oracle failed: %s", cmd);
	FILE *out = fopen(output, "r");
	in = fopen(input, "r");
	char line_in[256], line_out[512];
	size_t compared = 0;
	while (fgets(line_in, sizeof(line_in), in) && fgets(line_out, sizeof(line_out), out)) {
		double start = strtod(line_in, NULL);
		char *expr = strchr(line_in, '\t') + 1;
		expr[strcspn(expr, "\n")] = '\0';
		if (strncmp(line_out, "ERR", 3) == 0)
			continue;
		struct cron_params p = { 0 };
		p.expr = parse_ok(expr);
		double got[5];
		cr_assert_eq(cron_next_n(&p, start, got, 5), 5);
		char *s = line_out;
		for (int k = 0; k < 5; k++) {
			double want = strtod(s, &s);
			cr_assert_eq(got[k], want, "\"%s\" from %.0f: firing %d at %.0f, oracle %.0f",
				     expr, start, k + 1, got[k], want);
		}
		compared++;
	}
	fclose(in);
	fclose(out);
	cr_assert_geq(compared, n_cases * 9 / 10, "only %zu of %zu cases compared", compared,
		      n_cases);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}
