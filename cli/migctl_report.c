/*
 * migctl_report: status, history and report: reading what migd recorded.
 *
 * Times in history are the cluster's: on the sim backend that is the
 * virtual clock, which runs --time-scale times faster than the wall. So
 * `--since 10m` means ten minutes before the cluster's "now" (the
 * sim_time_ns that status reports, when it reports one), not before the
 * wall clock, or a sim history would always look empty or full.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migctl.h"
#include "util.h"

const char history_usage[] =
	"usage: migctl history [--json | --csv] [--since T] [--policy NAME] [--limit N]\n"
	"\n"
	"Finished migrations (completed, failed, aborted), oldest first, with their\n"
	"cost: total time, downtime, bytes, rounds.\n"
	"\n"
	"      --since T       only those queued at or after T: an ISO date-time\n"
	"                      (2024-05-01T12:00:00, local; a trailing Z for UTC) or a\n"
	"                      duration ago on the cluster's clock (10m, 2h, 1d)\n"
	"      --policy NAME   only those a policy started\n"
	"      --limit N       at most the N newest\n"
	"      --json          the migration records as a JSON array\n"
	"      --csv           the records as CSV with a header line\n"
	"  -h, --help          show this help\n";

const char report_usage[] =
	"usage: migctl report [--since T] [--json]\n"
	"\n"
	"Cost statistics per policy and overall: count, completed, failed, aborted,\n"
	"mean, p50 and p99 of total time and of downtime, mean bytes moved; then the\n"
	"guests' side: quiesce outcomes counted (ok, missed, error, no-agent, off),\n"
	"mean and p99 of quiesce and resume times, mean bytes and requests drained,\n"
	"waits for I/O lulls and how many gave up.\n"
	"\n"
	"      --since T   only migrations from T on (as for history)\n"
	"      --json      migd's report as JSON\n"
	"  -h, --help      show this help\n";

const char status_usage[] =
	"usage: migctl status [--json]\n"
	"\n"
	"migd's version and uptime, counts of hosts, guests, policies, and of\n"
	"migrations running and queued; the virtual clock on the sim backend.\n";

/* ---- status ---- */

static void status_print(const struct ctl *c, json_t *s)
{
	char buf[128], label[64];
	print_kv("endpoint", c->endpoint);
	const char *key;
	json_t *v;
	json_object_foreach(s, key, v)
		if (!json_is_object(v) && !json_is_array(v) && !json_is_null(v))
			print_kv(field_label(key, label, sizeof(label)),
				 field_text(key, v, buf, sizeof(buf)));
}

int cmd_status(struct ctl *c, int argc, char **argv)
{
	static const struct option longopts[] = { CTL_COMMON_LONGOPTS, { 0 } };
	int opt, rc;
	while ((opt = ctl_getopt(argc, argv, "", longopts)) != -1)
		if ((rc = ctl_option(c, opt, argv, status_usage)) != CTL_CONTINUE)
			return rc;
	if ((rc = ctl_positional(c, argc, argv, 0, "")) != 0)
		return rc;
	json_t *root, *result;
	if ((rc = ctl_call(c, "status", NULL, &root, &result)) != 0)
		return rc;
	if (c->json)
		rc = ctl_print_json(c, result);
	else
		status_print(c, result);
	json_decref(root);
	return rc;
}

/* ---- --since ---- */

/* The cluster's now: status's sim_time_ns when there is one, else the wall. */
static int cluster_now_ns(struct ctl *c, int64_t *now)
{
	json_t *root, *result;
	int rc = ctl_call(c, "status", NULL, &root, &result);
	if (rc != 0)
		return rc;
	*now = jint(result, "sim_time_ns", 0);
	if (*now <= 0)
		*now = wall_ns();
	json_decref(root);
	return 0;
}

/* --since text into args as since_ns. Returns 0 or an exit code. */
static int since_arg(struct ctl *c, const char *text, json_t *args)
{
	double ago_s;
	int64_t now = 0, since;
	int rc;
	if (ctl_parse_duration(text, &ago_s) == 0 && (rc = cluster_now_ns(c, &now)) != 0)
		return rc;
	if (ctl_parse_since(text, now, &since) < 0)
		return ctl_usage_error(c, "--since \"%s\": expected a date-time like "
				       "2024-05-01T12:00:00 or a duration ago like 10m, 2h, 1d",
				       text);
	json_object_set_new(args, "since_ns", json_integer((json_int_t)since));
	return 0;
}

/* ---- history ---- */

static const char *const csv_fields[] = {
	"id", "guest", "src", "dst", "state", "priority", "policy", "reason", "queued_ns",
	"started_ns", "migrating_ns", "finished_ns", "total_ms", "downtime_ms", "bytes",
	"rounds", "error", "lull_wait_ms", "lull_reason", "quiesce_ns", "quiesce",
	"quiesce_ms", "drained_requests", "drained_bytes", "resume_ns", "resume", "resume_ms",
	"defers",
};

static void csv_cell(json_t *v, FILE *out)
{
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (!strpbrk(s, ",\"\r\n")) {
			fputs(s, out);
			return;
		}
		fputc('"', out);
		for (; *s; s++) {
			if (*s == '"')
				fputc('"', out);
			fputc(*s, out);
		}
		fputc('"', out);
	} else if (json_is_integer(v)) {
		fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	} else if (json_is_real(v)) {
		fprintf(out, "%.17g", json_real_value(v));
	} else if (json_is_boolean(v)) {
		fputs(json_is_true(v) ? "true" : "false", out);
	}
}

static void history_csv(json_t *arr, FILE *out)
{
	for (size_t f = 0; f < ARRAY_SIZE(csv_fields); f++)
		fprintf(out, "%s%s", csv_fields[f], f + 1 < ARRAY_SIZE(csv_fields) ? "," : "\n");
	size_t i;
	json_t *m;
	json_array_foreach(arr, i, m) {
		for (size_t f = 0; f < ARRAY_SIZE(csv_fields); f++) {
			csv_cell(json_object_get(m, csv_fields[f]), out);
			fputc(f + 1 < ARRAY_SIZE(csv_fields) ? ',' : '\n', out);
		}
	}
}

enum { OPT_CSV = OPT_SUBCMD_BASE, OPT_SINCE, OPT_POLICY, OPT_LIMIT };

static int history_options(struct ctl *c, int argc, char **argv, json_t *args, int *csv)
{
	static const struct option longopts[] = {
		{ "csv", no_argument, NULL, OPT_CSV },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "policy", required_argument, NULL, OPT_POLICY },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		CTL_COMMON_LONGOPTS,
		{ 0 },
	};
	const char *since = NULL;
	uint64_t limit;
	int opt, rc;
	while ((opt = ctl_getopt(argc, argv, "", longopts)) != -1) {
		switch (opt) {
		case OPT_CSV: *csv = 1; break;
		case OPT_SINCE: since = optarg; break;
		case OPT_POLICY: json_object_set_new(args, "policy", json_string(optarg)); break;
		case OPT_LIMIT:
			if (parse_u64(optarg, 1, INT32_MAX, &limit) < 0)
				return ctl_usage_error(c, "--limit \"%s\": expected a number from 1",
						       optarg);
			json_object_set_new(args, "limit", json_integer((json_int_t)limit));
			break;
		default:
			if ((rc = ctl_option(c, opt, argv, history_usage)) != CTL_CONTINUE)
				return rc;
		}
	}
	if (*csv && c->json)
		return ctl_usage_error(c, "--csv and --json: choose one");
	if ((rc = ctl_positional(c, argc, argv, 0, "")) != 0)
		return rc;
	/* last, so a usage error above costs no request */
	if (since && (rc = since_arg(c, since, args)) != 0)
		return rc;
	return CTL_CONTINUE;
}

int cmd_history(struct ctl *c, int argc, char **argv)
{
	json_t *args = json_object();
	int csv = 0, rc = history_options(c, argc, argv, args, &csv);
	if (rc != CTL_CONTINUE) {
		json_decref(args);
		return rc;
	}
	json_t *root, *result;
	if ((rc = ctl_call(c, "history", args, &root, &result)) != 0)
		return rc;
	if (c->json)
		rc = ctl_print_json(c, result);
	else if (csv)
		history_csv(result, stdout);
	else if (json_array_size(result) == 0)
		printf("no finished migrations\n");
	else
		migration_print_table(result, 1, stdout);
	json_decref(root);
	return rc;
}

/* ---- report ---- */

static void report_row(struct table *t, const char *scope, json_t *s)
{
	char count[24], done[24], failed[24], aborted[24], bytes[32];
	char t_mean[32], t_p50[32], t_p99[32], d_mean[32], d_p50[32], d_p99[32];
	json_t *total = json_object_get(s, "total_s"), *down = json_object_get(s, "downtime_ms");
	snprintf(count, sizeof(count), "%" PRId64, jint(s, "count", 0));
	snprintf(done, sizeof(done), "%" PRId64, jint(s, "completed", 0));
	snprintf(failed, sizeof(failed), "%" PRId64, jint(s, "failed", 0));
	snprintf(aborted, sizeof(aborted), "%" PRId64, jint(s, "aborted", 0));
	table_add(t, scope, count, done, failed, aborted,
		  fmt_ms(jnum(total, "mean", -1) * 1000, t_mean, sizeof(t_mean)),
		  fmt_ms(jnum(total, "p50", -1) * 1000, t_p50, sizeof(t_p50)),
		  fmt_ms(jnum(total, "p99", -1) * 1000, t_p99, sizeof(t_p99)),
		  fmt_ms(jnum(down, "mean", -1), d_mean, sizeof(d_mean)),
		  fmt_ms(jnum(down, "p50", -1), d_p50, sizeof(d_p50)),
		  fmt_ms(jnum(down, "p99", -1), d_p99, sizeof(d_p99)),
		  fmt_bytes((int64_t)jnum(json_object_get(s, "bytes"), "mean", -1), bytes,
			    sizeof(bytes)));
}

static void agent_row(struct table *t, const char *scope, json_t *s)
{
	json_t *q = json_object_get(s, "quiesce_outcomes");
	json_t *qm = json_object_get(s, "quiesce_ms"), *rm = json_object_get(s, "resume_ms");
	json_t *lull = json_object_get(s, "lull_wait_ms");
	char n[5][24], q_mean[32], q_p99[32], r_mean[32], r_p99[32], drained[32], waits[24];
	char l_mean[32], gave_up[24];
	static const char *const outcomes[] = { "ok", "missed", "error", "no-agent", "off" };
	for (int i = 0; i < 5; i++)
		snprintf(n[i], sizeof(n[i]), "%" PRId64, jint(q, outcomes[i], 0));
	snprintf(waits, sizeof(waits), "%" PRId64, jint(s, "lull_waits", 0));
	snprintf(gave_up, sizeof(gave_up), "%" PRId64, jint(s, "lull_gave_up", 0));
	table_add(t, scope, n[0], n[1], n[2], n[3], n[4],
		  fmt_ms(jnum(qm, "mean", -1), q_mean, sizeof(q_mean)),
		  fmt_ms(jnum(qm, "p99", -1), q_p99, sizeof(q_p99)),
		  fmt_ms(jnum(rm, "mean", -1), r_mean, sizeof(r_mean)),
		  fmt_ms(jnum(rm, "p99", -1), r_p99, sizeof(r_p99)),
		  fmt_bytes((int64_t)jnum(json_object_get(s, "drained_bytes"), "mean", -1), drained,
			    sizeof(drained)),
		  waits, fmt_ms(jnum(lull, "mean", -1), l_mean, sizeof(l_mean)), gave_up);
}

static void report_print(json_t *r)
{
	static const char *const headers[] = {
		"POLICY", ">COUNT", ">DONE", ">FAILED", ">ABORTED", ">TOTAL MEAN", ">P50",
		">P99", ">DOWNTIME MEAN", ">P50", ">P99", ">BYTES MEAN",
	};
	struct table *t = table_new(12, headers);
	const char *name;
	json_t *s;
	json_object_foreach(json_object_get(r, "policies"), name, s)
		report_row(t, *name ? name : "(none)", s);
	report_row(t, "(overall)", json_object_get(r, "overall"));
	table_print(t, stdout);
	table_free(t);
	static const char *const agent_headers[] = {
		"POLICY", ">QUIESCE OK", ">MISSED", ">ERROR", ">NO AGENT", ">OFF",
		">QUIESCE MEAN", ">P99", ">RESUME MEAN", ">P99", ">DRAINED MEAN", ">LULL WAITS",
		">LULL MEAN", ">GAVE UP",
	};
	t = table_new(14, agent_headers);
	json_object_foreach(json_object_get(r, "policies"), name, s)
		agent_row(t, *name ? name : "(none)", s);
	agent_row(t, "(overall)", json_object_get(r, "overall"));
	putchar('\n');
	table_print(t, stdout);
	table_free(t);
}

int cmd_report(struct ctl *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "since", required_argument, NULL, OPT_SINCE },
		CTL_COMMON_LONGOPTS,
		{ 0 },
	};
	const char *since = NULL;
	int opt, rc;
	while ((opt = ctl_getopt(argc, argv, "", longopts)) != -1) {
		if (opt == OPT_SINCE)
			since = optarg;
		else if ((rc = ctl_option(c, opt, argv, report_usage)) != CTL_CONTINUE)
			return rc;
	}
	if ((rc = ctl_positional(c, argc, argv, 0, "")) != 0)
		return rc;
	json_t *args = json_object();
	if (since && (rc = since_arg(c, since, args)) != 0) {
		json_decref(args);
		return rc;
	}
	json_t *root, *result;
	if ((rc = ctl_call(c, "report", args, &root, &result)) != 0)
		return rc;
	if (c->json)
		rc = ctl_print_json(c, result);
	else
		report_print(result);
	json_decref(root);
	return rc;
}
