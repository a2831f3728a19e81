/*
 * migctl_health: health report, health show, health rule add|list|rm.
 *
 * `health rule` has verbs of its own, so it is one subcommand that
 * dispatches on its next word. Numbers and durations are checked here,
 * where the option that carried them is known; sensors, hosts and rule
 * names are migd's to refuse, with a message that names the value.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migctl.h"
#include "util.h"

const char health_report_usage[] =
	"usage: migctl health report HOST SENSOR VALUE [--unit UNIT]\n"
	"\n"
	"Report one sensor reading of HOST, as a health hook would (for scripts and\n"
	"cron jobs). migd stores it and judges the host at once: a reading that\n"
	"breaks a health rule degrades the host and evacuates it.\n"
	"\n"
	"      --unit UNIT   the reading's unit, e.g. C or RPM (for messages)\n"
	"      --json        print the stored reading and the host as JSON\n"
	"  -h, --help        show this help\n";

const char health_show_usage[] =
	"usage: migctl health show [HOST] [--json]\n"
	"\n"
	"Show each host's health (ok or degraded, and why), its hook, and the latest\n"
	"reading of each of its sensors.\n";

const char health_rule_usage[] =
	"usage: migctl health rule add NAME --sensor SENSOR\n"
	"                              (--above V | --below V | --rise N --within T)\n"
	"                              [--clear V] [--clear-after T]\n"
	"       migctl health rule list [--json]\n"
	"       migctl health rule rm NAME\n"
	"\n"
	"A rule degrades a host when the latest reading of a matching sensor is above\n"
	"or below a limit, or has risen by N within T (error counters). SENSOR is a\n"
	"name or a glob (\"CPU* Temp\"), matched without regard to case. ipmitool's own\n"
	"critical thresholds degrade a host without any rule.\n"
	"\n"
	"      --sensor SENSOR   the sensor name or glob\n"
	"      --above V         degraded when the reading is above V\n"
	"      --below V         degraded when the reading is below V\n"
	"      --rise N          degraded when the reading rose by N ...\n"
	"      --within T        ... within T (30s, 5m, 1h)\n"
	"      --clear V         hysteresis: once degraded, the reading must get back to V\n"
	"      --clear-after T   back in service automatically after T without any\n"
	"                        violation (default: only by migctl host enable)\n"
	"  -h, --help            show this help\n";

/* ---- printing ---- */

static void reading_value(json_t *r, char *buf, size_t len)
{
	json_t *v = json_object_get(r, "value");
	const char *unit = jstr(r, "unit");
	if (!json_is_number(v))
		snprintf(buf, len, "na");
	else
		snprintf(buf, len, "%g%s%s", json_number_value(v), *unit ? " " : "", unit);
}

static void health_print(json_t *arr)
{
	size_t i;
	json_t *h;
	json_array_foreach(arr, i, h) {
		char when[40], every[32], buf[320];
		if (i)
			putchar('\n');
		print_kv("host", jstr(h, "host"));
		if (json_is_string(json_object_get(h, "reason")))
			snprintf(buf, sizeof(buf), "%s since %s: %s", jstr(h, "health"),
				 fmt_time_ns(jint(h, "since_ns", 0), when, sizeof(when)),
				 jstr(h, "reason"));
		else
			snprintf(buf, sizeof(buf), "%s", jstr(h, "health"));
		print_kv("health", buf);
		if (*jstr(h, "hook"))
			snprintf(buf, sizeof(buf), "%s (every %s)", jstr(h, "hook"),
				 fmt_seconds(jnum(h, "interval_s", 0), every, sizeof(every)));
		else
			snprintf(buf, sizeof(buf), "none");
		print_kv("hook", buf);
		json_t *readings = json_object_get(h, "readings"), *r;
		size_t k;
		if (json_array_size(readings) == 0) {
			print_kv("readings", "none");
			continue;
		}
		static const char *const headers[] = { "SENSOR", ">VALUE", "STATUS", "SOURCE",
						       "WHEN" };
		struct table *t = table_new(5, headers);
		json_array_foreach(readings, k, r) {
			char value[64];
			reading_value(r, value, sizeof(value));
			table_add(t, jstr(r, "sensor"), value, jstr(r, "status"), jstr(r, "source"),
				  fmt_time_ns(jint(r, "ts_ns", 0), when, sizeof(when)));
		}
		table_print(t, stdout);
		table_free(t);
	}
}

static void rule_what(json_t *r, char *buf, size_t len)
{
	const char *kind = jstr(r, "kind");
	char within[32];
	if (strcmp(kind, "rise") == 0)
		snprintf(buf, len, "rises by %g within %s", jnum(r, "value", 0),
			 fmt_seconds(jnum(r, "within_s", 0), within, sizeof(within)));
	else
		snprintf(buf, len, "%s %g", kind, jnum(r, "value", 0));
	if (json_is_number(json_object_get(r, "clear")))
		snprintf(buf + strlen(buf), len - strlen(buf), ", clear at %g", jnum(r, "clear", 0));
}

static void rule_table(json_t *arr)
{
	static const char *const headers[] = { "NAME", "SENSOR", "DEGRADED WHEN", "CLEAR AFTER" };
	struct table *t = table_new(4, headers);
	size_t i;
	json_t *r;
	json_array_foreach(arr, i, r) {
		char what[128], after[32] = "by hand";
		rule_what(r, what, sizeof(what));
		if (jnum(r, "clear_after_s", 0) > 0)
			fmt_seconds(jnum(r, "clear_after_s", 0), after, sizeof(after));
		table_add(t, jstr(r, "name"), jstr(r, "sensor"), what, after);
	}
	table_print(t, stdout);
	table_free(t);
}

/* ---- subcommands ---- */

static int finish_call(struct ctl *c, const char *cmd, json_t *args, void (*print)(json_t *),
		       const char *done)
{
	json_t *root, *result;
	int rc = ctl_call(c, cmd, args, &root, &result);
	if (rc != 0)
		return rc;
	if (c->json)
		rc = ctl_print_json(c, result);
	else if (print)
		print(result);
	else if (done)
		fputs(done, stdout);
	json_decref(root);
	return rc;
}

enum { OPT_UNIT = OPT_SUBCMD_BASE, OPT_SENSOR, OPT_ABOVE, OPT_BELOW, OPT_RISE, OPT_WITHIN,
       OPT_CLEAR, OPT_CLEAR_AFTER };

static int number_arg(struct ctl *c, const char *what, const char *text, double *out)
{
	char *end;
	*out = strtod(text, &end);
	if (end == text || *end || !isfinite(*out))
		return ctl_usage_error(c, "%s \"%s\": expected a number", what, text);
	return 0;
}

int cmd_health_report(struct ctl *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "unit", required_argument, NULL, OPT_UNIT },
		CTL_COMMON_LONGOPTS,
		{ 0 },
	};
	const char *unit = NULL;
	int opt, rc;
	double value;
	while ((opt = ctl_getopt(argc, argv, "", longopts)) != -1) {
		if (opt == OPT_UNIT)
			unit = optarg;
		else if ((rc = ctl_option(c, opt, argv, health_report_usage)) != CTL_CONTINUE)
			return rc;
	}
	if ((rc = ctl_positional(c, argc, argv, 3, "HOST SENSOR VALUE")) != 0)
		return rc;
	if ((rc = number_arg(c, "VALUE", argv[optind + 2], &value)) != 0)
		return rc;
	json_t *args = json_pack("{s:s, s:s, s:f}", "host", argv[optind], "sensor",
				 argv[optind + 1], "value", value);
	if (unit)
		json_object_set_new(args, "unit", json_string(unit));
	json_t *root, *result;
	if ((rc = ctl_call(c, "health.report", args, &root, &result)) != 0)
		return rc;
	if (c->json) {
		rc = ctl_print_json(c, result);
	} else {
		json_t *h = json_object_get(result, "host");
		const char *reason = jstr(h, "health_reason");
		printf("host %s: %s%s%s\n", argv[optind], jstr(h, "health"), *reason ? ": " : "",
		       reason);
	}
	json_decref(root);
	return rc;
}

int cmd_health_show(struct ctl *c, int argc, char **argv)
{
	static const struct option longopts[] = { CTL_COMMON_LONGOPTS, { 0 } };
	int opt, rc;
	while ((opt = ctl_getopt(argc, argv, "", longopts)) != -1)
		if ((rc = ctl_option(c, opt, argv, health_show_usage)) != CTL_CONTINUE)
			return rc;
	if (argc - optind > 1)
		return ctl_usage_error(c, "unexpected argument \"%s\"", argv[optind + 1]);
	json_t *args = argc - optind == 1 ? json_pack("{s:s}", "host", argv[optind]) : NULL;
	return finish_call(c, "health.show", args, health_print, NULL);
}

static int duration_arg(struct ctl *c, const char *what, const char *text, double *out)
{
	if (ctl_parse_duration(text, out) < 0 || !(*out > 0))
		return ctl_usage_error(c, "%s \"%s\": expected a duration like 30s, 5m or 1h", what,
				       text);
	return 0;
}

/* One option of rule add into args; CTL_CONTINUE or an exit code. */
static int rule_option(struct ctl *c, int opt, char **argv, json_t *args)
{
	static const struct {
		int opt;
		const char *flag, *key;
		int duration;
	} map[] = {
		{ OPT_ABOVE, "--above", "above", 0 }, { OPT_BELOW, "--below", "below", 0 },
		{ OPT_RISE, "--rise", "rise", 0 }, { OPT_CLEAR, "--clear", "clear", 0 },
		{ OPT_WITHIN, "--within", "within_s", 1 },
		{ OPT_CLEAR_AFTER, "--clear-after", "clear_after_s", 1 },
	};
	double v;
	if (opt == OPT_SENSOR) {
		json_object_set_new(args, "sensor", json_string(optarg));
		return CTL_CONTINUE;
	}
	for (size_t i = 0; i < ARRAY_SIZE(map); i++) {
		if (map[i].opt != opt)
			continue;
		int rc = map[i].duration ? duration_arg(c, map[i].flag, optarg, &v)
					 : number_arg(c, map[i].flag, optarg, &v);
		if (rc != 0)
			return rc;
		json_object_set_new(args, map[i].key, json_real(v));
		return CTL_CONTINUE;
	}
	return ctl_option(c, opt, argv, health_rule_usage);
}

static int rule_add(struct ctl *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "sensor", required_argument, NULL, OPT_SENSOR },
		{ "above", required_argument, NULL, OPT_ABOVE },
		{ "below", required_argument, NULL, OPT_BELOW },
		{ "rise", required_argument, NULL, OPT_RISE },
		{ "within", required_argument, NULL, OPT_WITHIN },
		{ "clear", required_argument, NULL, OPT_CLEAR },
		{ "clear-after", required_argument, NULL, OPT_CLEAR_AFTER },
		CTL_COMMON_LONGOPTS,
		{ 0 },
	};
	json_t *args = json_object();
	int opt, rc = CTL_CONTINUE;
	while (rc == CTL_CONTINUE && (opt = ctl_getopt(argc, argv, "", longopts)) != -1)
		rc = rule_option(c, opt, argv, args);
	if (rc == CTL_CONTINUE)
		rc = ctl_positional(c, argc, argv, 1, "NAME");
	int kinds = !!json_object_get(args, "above") + !!json_object_get(args, "below") +
		    !!json_object_get(args, "rise");
	if (rc == 0 && !json_object_get(args, "sensor"))
		rc = ctl_usage_error(c, "--sensor SENSOR is required");
	if (rc == 0 && kinds != 1)
		rc = ctl_usage_error(c, "give exactly one of --above V, --below V or --rise N");
	if (rc == 0 && !!json_object_get(args, "rise") != !!json_object_get(args, "within_s"))
		rc = ctl_usage_error(c, "--rise N and --within T go together");
	if (rc != 0) {
		json_decref(args);
		return rc;
	}
	json_object_set_new(args, "name", json_string(argv[optind]));
	char done[128];
	snprintf(done, sizeof(done), "health rule %s added\n", argv[optind]);
	return finish_call(c, "health.rule.add", args, NULL, done);
}

static int rule_simple(struct ctl *c, int argc, char **argv, int is_list)
{
	static const struct option longopts[] = { CTL_COMMON_LONGOPTS, { 0 } };
	int opt, rc;
	while ((opt = ctl_getopt(argc, argv, "", longopts)) != -1)
		if ((rc = ctl_option(c, opt, argv, health_rule_usage)) != CTL_CONTINUE)
			return rc;
	if ((rc = ctl_positional(c, argc, argv, is_list ? 0 : 1, "NAME")) != 0)
		return rc;
	if (is_list)
		return finish_call(c, "health.rule.list", NULL, rule_table, NULL);
	char done[128];
	snprintf(done, sizeof(done), "health rule %s removed\n", argv[optind]);
	return finish_call(c, "health.rule.rm", json_pack("{s:s}", "name", argv[optind]), NULL,
			   done);
}

int cmd_health_rule(struct ctl *c, int argc, char **argv)
{
	/* argv[0] is "rule"; argv[1] the verb */
	static char name[32];
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(health_rule_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? MIGCTL_EXIT_USAGE : MIGCTL_EXIT_OK;
	}
	int known = strcmp(argv[1], "add") == 0 || strcmp(argv[1], "list") == 0 ||
		    strcmp(argv[1], "rm") == 0;
	snprintf(name, sizeof(name), "health rule%s%s", known ? " " : "", known ? argv[1] : "");
	c->name = name;
	if (!known)
		return ctl_usage_error(c, "unknown verb \"%s\" (add, list or rm)", argv[1]);
	if (strcmp(argv[1], "add") == 0)
		return rule_add(c, argc - 1, argv + 1);
	return rule_simple(c, argc - 1, argv + 1, strcmp(argv[1], "list") == 0);
}
