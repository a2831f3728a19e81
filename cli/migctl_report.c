/*
 * migctl_report: status, history and report: reading what migd recorded.
 *
 * Times in history are the cluster's: on the sim backend that is the
 * virtual clock, which runs --time-scale times faster than the wall. So
 * `--since 10m` means ten minutes before the cluster's "now" (the
 * sim_time_ns that status reports, when it reports one), not before the
 * wall clock, or a sim history would always look empty or full.
 *
 * `report --plot FILE` draws the history with gnuplot rather than with a
 * plotting library of our own: gnuplot runs as a child process, reading
 * the data and its script from temporary files, so nothing of it is linked
 * into migctl and a machine without it only loses the picture.
 */
#include <errno.h>
#include <inttypes.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "migctl.h"
#include "util.h"

const char history_usage[] =
	"usage: migctl history [--json | --csv] [--since T] [--policy NAME] [--limit N]\n"
	"                      [--after ID]\n"
	"\n"
	"Finished migrations (completed, failed, aborted), oldest first, with their\n"
	"cost: total time, downtime, bytes, rounds. The history is fetched a page\n"
	"at a time, so it has no size limit.\n"
	"\n"
	"      --since T       only those queued at or after T: an ISO date-time\n"
	"                      (2024-05-01T12:00:00, local; a trailing Z for UTC) or a\n"
	"                      duration ago on the cluster's clock (10m, 2h, 1d)\n"
	"      --policy NAME   only those a policy started\n"
	"      --limit N       at most the N newest; with --after, the first N after it\n"
	"      --after ID      only those that finished after migration ID (the last\n"
	"                      ID of a page gives the next page)\n"
	"      --json          the migration records as a JSON array\n"
	"      --csv           the records as CSV with a header line\n"
	"  -h, --help          show this help\n";

const char report_usage[] =
	"usage: migctl report [--since T] [--policy NAME] [--plot FILE] [--json]\n"
	"\n"
	"Cost statistics per policy and overall: count, completed, failed, aborted,\n"
	"mean, p50 and p99 of total time and of downtime, mean bytes moved; then the\n"
	"guests' side: quiesce outcomes counted (ok, missed, error, no-agent, off),\n"
	"mean and p99 of quiesce and resume times, mean bytes and requests drained,\n"
	"waits for I/O lulls and how many gave up.\n"
	"\n"
	"      --since T       only migrations from T on (as for history)\n"
	"      --policy NAME   only those a policy started\n"
	"      --plot FILE     instead of the tables, draw total time, downtime and\n"
	"                      quiesce time of each migration over time, one colour\n"
	"                      per policy, with gnuplot: PNG or SVG by FILE's\n"
	"                      extension (.png, .svg)\n"
	"      --json          migd's report as JSON\n"
	"  -h, --help          show this help\n";

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

enum { OPT_CSV = OPT_SUBCMD_BASE, OPT_SINCE, OPT_POLICY, OPT_LIMIT, OPT_AFTER };

/* Migrations per history request: well under migd's page limit (5,000). */
#define HISTORY_PAGE 1000

/*
 * The history args select, a page at a time (args' "after" and "limit":
 * the first limit after that id; without after, from the start; without
 * limit, all of them). With a "limit" and no "after", the newest limit in
 * one request, as before paging. Takes args; *out is the whole array.
 */
static int history_fetch(struct ctl *c, json_t *args, json_t **out)
{
	json_t *all = json_array(), *limit_v = json_object_get(args, "limit");
	json_int_t want = limit_v ? json_integer_value(limit_v) : 0;
	json_int_t after = json_integer_value(json_object_get(args, "after"));
	int rc = 0;
	if (want && !json_object_get(args, "after")) {
		json_t *root, *result;
		rc = ctl_call(c, "history", args, &root, &result);
		if (rc == 0) {
			json_array_extend(all, result);
			json_decref(root);
		}
		args = NULL; /* taken by the call */
	}
	while (args && rc == 0) {
		json_int_t page = want && want - (json_int_t)json_array_size(all) < HISTORY_PAGE
					  ? want - (json_int_t)json_array_size(all) : HISTORY_PAGE;
		json_t *a = json_deep_copy(args), *root, *result;
		json_object_set_new(a, "after", json_integer(after));
		json_object_set_new(a, "limit", json_integer(page));
		if ((rc = ctl_call(c, "history", a, &root, &result)) != 0)
			break;
		size_t n = json_array_size(result);
		json_array_extend(all, result);
		if (n)
			after = json_integer_value(json_object_get(json_array_get(result, n - 1),
								   "id"));
		json_decref(root);
		if ((json_int_t)n < page || (want && (json_int_t)json_array_size(all) >= want))
			break;
	}
	json_decref(args);
	if (rc != 0) {
		json_decref(all);
		all = NULL;
	}
	*out = all;
	return rc;
}

static int history_options(struct ctl *c, int argc, char **argv, json_t *args, int *csv)
{
	static const struct option longopts[] = {
		{ "csv", no_argument, NULL, OPT_CSV },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "policy", required_argument, NULL, OPT_POLICY },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "after", required_argument, NULL, OPT_AFTER },
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
		case OPT_AFTER:
			if (parse_u64(optarg, 0, INT64_MAX, &limit) < 0)
				return ctl_usage_error(c, "--after \"%s\": expected a migration ID",
						       optarg);
			json_object_set_new(args, "after", json_integer((json_int_t)limit));
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
	if (since && (rc = ctl_since_arg(c, since, args)) != 0)
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
	json_t *result;
	if ((rc = history_fetch(c, args, &result)) != 0)
		return rc;
	if (c->json)
		rc = ctl_print_json(c, result);
	else if (csv)
		history_csv(result, stdout);
	else if (json_array_size(result) == 0)
		printf("no finished migrations\n");
	else
		migration_print_table(result, 1, stdout);
	json_decref(result);
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

/* ---- report --plot ---- */

/* What --plot draws into: the gnuplot terminal for FILE's extension, or
 * NULL when it is neither .png nor .svg. */
static const char *plot_terminal(const char *file)
{
	const char *dot = strrchr(file, '.');
	if (dot && strchr(dot, '/') == NULL) {
		if (strcasecmp(dot, ".png") == 0)
			return "pngcairo size 1000,900 noenhanced";
		if (strcasecmp(dot, ".svg") == 0)
			return "svg size 1000,900 dynamic noenhanced";
	}
	return NULL;
}

/* gnuplot's program on PATH, into path; 0 or -ENOENT. */
static int find_gnuplot(char *path, size_t len)
{
	const char *env = getenv("PATH");
	char dirs[4096];
	snprintf(dirs, sizeof(dirs), "%s", env && *env ? env : "/usr/bin:/bin");
	for (char *save, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(path, len, "%s/gnuplot", *d ? d : ".");
		if (access(path, X_OK) == 0)
			return 0;
	}
	return -ENOENT;
}

/* TEXT as a gnuplot single-quoted string ('' stands for a quote). */
static void gp_quoted(FILE *out, const char *text)
{
	fputc('\'', out);
	for (; *text; text++) {
		if (*text == '\'')
			fputc('\'', out);
		fputc(*text, out);
	}
	fputc('\'', out);
}

/* The series a migration belongs to: its policy, else "(manual)" and the
 * like from its priority. */
static void plot_series_name(json_t *m, char *buf, size_t len)
{
	const char *policy = jstr(m, "policy");
	if (*policy)
		snprintf(buf, len, "%s", policy);
	else
		snprintf(buf, len, "(%s)", jstr_or(m, "priority", "manual"));
}

/* What the data holds: the time span and which panels have points. */
struct plot_extent {
	double first_s, last_s;
	int has[3]; /* total, downtime, quiesce */
};

static void plot_value(FILE *out, json_t *m, const char *key, double scale, int *has)
{
	json_t *v = json_object_get(m, key);
	if (json_is_number(v) && json_number_value(v) >= 0) {
		fprintf(out, " %.3f", json_number_value(v) * scale);
		*has = 1;
	} else {
		fputs(" ?", out);
	}
}

/* The history as gnuplot data, one index (block) per series: queued time
 * in seconds since the epoch, total time (s), downtime (ms), quiesce (ms).
 * The series names go into names, in block order. */
static int plot_write_data(FILE *out, json_t *history, json_t *names, struct plot_extent *ext)
{
	size_t i, j;
	json_t *m, *name;
	char series[256];
	json_array_foreach(history, i, m) {
		plot_series_name(m, series, sizeof(series));
		int seen = 0;
		json_array_foreach(names, j, name)
			seen |= strcmp(json_string_value(name), series) == 0;
		if (!seen)
			json_array_append_new(names, json_string(series));
	}
	json_array_foreach(names, j, name) {
		fprintf(out, "# %s\n", json_string_value(name));
		json_array_foreach(history, i, m) {
			plot_series_name(m, series, sizeof(series));
			if (strcmp(series, json_string_value(name)) != 0)
				continue;
			double t_s = (double)jint(m, "queued_ns", 0) / 1e9;
			if (ext->last_s == 0 || t_s < ext->first_s)
				ext->first_s = t_s;
			if (t_s > ext->last_s)
				ext->last_s = t_s;
			fprintf(out, "%.3f", t_s);
			plot_value(out, m, "total_ms", 1e-3, &ext->has[0]);
			plot_value(out, m, "downtime_ms", 1, &ext->has[1]);
			plot_value(out, m, "quiesce_ms", 1, &ext->has[2]);
			fputc('\n', out);
		}
		fputs("\n\n", out);
	}
	return ferror(out) ? -EIO : 0;
}

/* Three panels over one time axis, a colour per series; a panel with no
 * points (no quiesce: no agents, or quiesce off) says so instead. */
static int plot_write_script(FILE *out, const char *terminal, const char *file,
			     const char *data, json_t *names, const struct plot_extent *ext)
{
	static const char *const panels[][3] = {
		{ "2", "total time (s)", "total times" },
		{ "3", "downtime (ms)", "downtimes" },
		{ "4", "quiesce (ms)", "quiesce times: no agents, or quiesce off" },
	};
	fprintf(out, "set terminal %s\nset output ", terminal);
	gp_quoted(out, file);
	fputs("\nset datafile missing '?'\nset xdata time\nset timefmt '%s'\n"
	      "set format x '%H:%M:%S'\nset grid\nset key outside right top\n"
	      "set lmargin 10\nset rmargin 24\n"
	      "set multiplot layout 3,1 title 'migration cost over time'\n", out);
	/* one span for all panels, and one at all for a single migration */
	double pad_s = ext->last_s > ext->first_s ? (ext->last_s - ext->first_s) / 50 : 30;
	fprintf(out, "set xrange ['%.3f':'%.3f']\n", ext->first_s - pad_s, ext->last_s + pad_s);
	for (int p = 0; p < 3; p++) {
		fprintf(out, "set ylabel '%s'\n%s", panels[p][1],
			p == 2 ? "set xlabel 'queued at (UTC)'\n" : "unset xlabel\n");
		if (!ext->has[p]) {
			fprintf(out, "set yrange [0:1]\nset label 1 'no %s' at graph 0.5,0.5 "
				"center\nplot NaN notitle\nunset label 1\n", panels[p][2]);
			continue;
		}
		fputs("set yrange [0:*]\nplot", out);
		for (size_t k = 0; k < json_array_size(names); k++) {
			fprintf(out, "%s ", k ? "," : "");
			gp_quoted(out, data);
			fprintf(out, " index %zu using 1:%s with linespoints lc %zu pt 7 title ", k,
				panels[p][0], k + 1);
			gp_quoted(out, json_string_value(json_array_get(names, k)));
		}
		fputc('\n', out);
	}
	fputs("unset multiplot\n", out);
	return ferror(out) ? -EIO : 0;
}

/* A new temporary file from TEMPLATE (…XXXXXX plus suffix_len chars). */
static FILE *plot_temp(char *template, int suffix_len)
{
	int fd = mkstemps(template, suffix_len);
	if (fd < 0)
		return NULL;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(template);
	}
	return f;
}

/* gnuplot SCRIPT; 0, or -1 having said why. */
static int plot_run(const struct ctl *c, const char *gnuplot, const char *script,
		    const char *file)
{
	char *const argv[] = { (char *)gnuplot, (char *)script, NULL };
	extern char **environ;
	pid_t pid;
	int status, rc = posix_spawn(&pid, gnuplot, NULL, NULL, argv, environ);
	if (rc != 0) {
		ctl_error(c, "%s: %s", gnuplot, strerror(rc));
		return -1;
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			ctl_error(c, "waiting for gnuplot: %s", strerror(errno));
			return -1;
		}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		ctl_error(c, "gnuplot failed (%s %d) drawing %s", WIFEXITED(status) ?
			  "exit status" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) :
			  WTERMSIG(status), file);
		return -1;
	}
	struct stat st;
	if (stat(file, &st) < 0 || st.st_size == 0) {
		ctl_error(c, "gnuplot wrote nothing to %s", file);
		return -1;
	}
	return 0;
}

/* Draws HISTORY into FILE; an exit code. */
static int plot_history(struct ctl *c, json_t *history, const char *file, const char *gnuplot)
{
	const char *tmpdir = getenv("TMPDIR");
	char data[4096], script[4096];
	json_t *names = json_array();
	struct plot_extent ext = { 0 };
	int rc = MIGCTL_EXIT_FAIL;
	FILE *df = NULL, *sf = NULL;
	if (!tmpdir || !*tmpdir)
		tmpdir = "/tmp";
	snprintf(data, sizeof(data), "%s/migctl-plot.XXXXXX.dat", tmpdir);
	snprintf(script, sizeof(script), "%s/migctl-plot.XXXXXX.gp", tmpdir);
	if (!(df = plot_temp(data, 4))) {
		ctl_error(c, "%s: %s", data, strerror(errno));
		data[0] = '\0';
		goto out;
	}
	if (!(sf = plot_temp(script, 3))) {
		ctl_error(c, "%s: %s", script, strerror(errno));
		script[0] = '\0';
		goto out;
	}
	int werr = plot_write_data(df, history, names, &ext);
	if (fclose(df) != 0 || werr < 0) {
		df = NULL;
		ctl_error(c, "%s: write failed", data);
		goto out;
	}
	df = NULL;
	werr = plot_write_script(sf, plot_terminal(file), file, data, names, &ext);
	if (fclose(sf) != 0 || werr < 0) {
		sf = NULL;
		ctl_error(c, "%s: write failed", script);
		goto out;
	}
	sf = NULL;
	if (plot_run(c, gnuplot, script, file) < 0)
		goto out;
	if (c->json) {
		json_t *o = json_pack("{s:s, s:I, s:O}", "plot", file, "migrations",
				      (json_int_t)json_array_size(history), "series", names);
		rc = ctl_print_json(c, o);
		json_decref(o);
	} else {
		printf("%s: %zu migrations, %zu series\n", file, json_array_size(history),
		       json_array_size(names));
		rc = MIGCTL_EXIT_OK;
	}
out:
	if (df)
		fclose(df);
	if (sf)
		fclose(sf);
	if (data[0])
		unlink(data);
	if (script[0])
		unlink(script);
	json_decref(names);
	return rc;
}

/* report --plot: the same filters, the per-migration records of history. */
static int report_plot(struct ctl *c, json_t *args, const char *file)
{
	char gnuplot[4096];
	if (find_gnuplot(gnuplot, sizeof(gnuplot)) < 0) {
		ctl_error(c, "--plot %s: gnuplot is not installed (not on PATH); it draws the plot",
			  file);
		json_decref(args);
		return MIGCTL_EXIT_FAIL;
	}
	json_t *result;
	int rc = history_fetch(c, args, &result);
	if (rc != 0)
		return rc;
	if (json_array_size(result) == 0) {
		ctl_error(c, "--plot %s: no finished migrations to plot", file);
		rc = MIGCTL_EXIT_FAIL;
	} else {
		rc = plot_history(c, result, file, gnuplot);
	}
	json_decref(result);
	return rc;
}

enum { OPT_PLOT = OPT_AFTER + 1 };

int cmd_report(struct ctl *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "policy", required_argument, NULL, OPT_POLICY },
		{ "plot", required_argument, NULL, OPT_PLOT },
		CTL_COMMON_LONGOPTS,
		{ 0 },
	};
	const char *since = NULL, *plot = NULL, *policy = NULL;
	int opt, rc;
	while ((opt = ctl_getopt(argc, argv, "", longopts)) != -1) {
		if (opt == OPT_SINCE)
			since = optarg;
		else if (opt == OPT_POLICY)
			policy = optarg;
		else if (opt == OPT_PLOT)
			plot = optarg;
		else if ((rc = ctl_option(c, opt, argv, report_usage)) != CTL_CONTINUE)
			return rc;
	}
	if ((rc = ctl_positional(c, argc, argv, 0, "")) != 0)
		return rc;
	if (plot && !plot_terminal(plot))
		return ctl_usage_error(c, "--plot \"%s\": expected a file name ending in .png or "
				       ".svg", plot);
	json_t *args = json_object();
	if (policy)
		json_object_set_new(args, "policy", json_string(policy));
	if (since && (rc = ctl_since_arg(c, since, args)) != 0) {
		json_decref(args);
		return rc;
	}
	if (plot)
		return report_plot(c, args, plot);
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
