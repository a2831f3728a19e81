/*
 * migctl_policy: policy add, list, show, pause, resume, rm.
 *
 * `policy add TYPE NAME ...` takes the type as a word: interval, cron,
 * mtbf and checkpoint, each with its own options. The policy object is printed from
 * the fields migd returns, known ones first in a fixed order and any others
 * after them, so a field migd adds later shows up without a new migctl.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "migctl.h"
#include "util.h"

const char policy_add_usage[] =
	"usage: migctl policy add interval NAME --every DURATION --guests SELECTOR\n"
	"                         [--stagger DURATION] [--count K] [KNOBS]\n"
	"       migctl policy add cron NAME --schedule \"MIN HOUR DOM MON DOW\"\n"
	"                         --action ACTION [--tz ZONE] [--missed run-once|skip]\n"
	"                         [--stagger DURATION] [--spread PERCENT] [KNOBS]\n"
	"       migctl policy add mtbf NAME --mtbf DURATION --guests SELECTOR\n"
	"                         [--cost DURATION] [--stagger DURATION] [--count K] [KNOBS]\n"
	"       migctl policy add checkpoint NAME --job JOB --every DURATION|auto\n"
	"                         [--keep N] [--on-failure restore|notify] [--mtbf DURATION]\n"
	"  KNOBS: [--quiesce MODE] [--quiesce-deadline DURATION]\n"
	"         [--on-quiesce-miss abort|defer] [--io-lull RATE] [--io-lull-wait DURATION]\n"
	"\n"
	"interval: every DURATION, migrate K (default: all) of the selected guests\n"
	"one after another, --stagger apart, each to another host.\n"
	"cron: at the times of a five-field cron schedule in time zone ZONE (default\n"
	"UTC), run ACTION: \"evacuate HOST[,HOST...]\" (the hosts are disabled and\n"
	"emptied), \"rebalance\" (move guests until the hosts' memory loads are within\n"
	"--spread of each other) or \"migrate SELECTOR\". A firing missed while migd\n"
	"was down runs once at start-up (--missed run-once, the default) or is skipped.\n"
	"mtbf: like interval, with the period from Young's formula sqrt(2 x cost x\n"
	"MTBF), the cost measured from the policy's own migrations (--cost until\n"
	"there are some).\n"
	"checkpoint: checkpoint job JOB (migctl checkpoint create) every DURATION, or\n"
	"with --every auto at Daly's optimum interval for the job's measured\n"
	"checkpoint cost and the MTBF (30m until one is measured); keep its N\n"
	"newest checkpoints; on a failure of one of its guests restore the job from\n"
	"the latest (--on-failure restore) or only say so (notify, the default).\n"
	"Policies survive migd restarts; see migctl(1).\n"
	"\n"
	"      --every DURATION    the period: 30s, 4m, 1h, 1d (a plain number is seconds)\n"
	"      --guests SELECTOR   all, host:NAME, job:NAME, a guest name, or a\n"
	"                          comma-separated list of those; names may be\n"
	"                          globs ('bt*', host:n[1-4])\n"
	"      --stagger DURATION  gap between two starts of one firing (default 0)\n"
	"      --count K           guests moved per firing (default: all selected)\n"
	"      --schedule EXPR     cron: minute hour day-of-month month day-of-week\n"
	"      --action ACTION     cron: evacuate HOSTS | rebalance | migrate SELECTOR\n"
	"      --tz ZONE           cron: time zone, e.g. Europe/Berlin (default UTC)\n"
	"      --missed WHAT       cron: run-once or skip firings missed while down\n"
	"      --spread PERCENT    cron rebalance: allowed load spread (default 10%)\n"
	"      --mtbf DURATION     mtbf, checkpoint: mean time between failures, e.g. 30d\n"
	"      --job JOB           checkpoint: the job to checkpoint\n"
	"      --every auto        checkpoint: Daly's interval from cost and --mtbf\n"
	"      --keep N            checkpoint: checkpoints kept (default 3)\n"
	"      --on-failure WHAT   checkpoint: restore or notify (the default)\n"
	"      --cost DURATION     mtbf: cost of one firing until measured (default 60s)\n"
	"      --quiesce MODE      required, best-effort or off: hold each guest's sfs\n"
	"                          I/O around its switch-over (default: migd's)\n"
	"      --quiesce-deadline DURATION  time the guest's agent has to drain\n"
	"      --on-quiesce-miss abort|defer  what a failed required quiesce does\n"
	"      --io-lull RATE      start each only when its guest's I/O is below RATE\n"
	"      --io-lull-wait DURATION  but wait at most this long\n"
	"      --json              print the new policy as JSON\n"
	"  -h, --help              show this help\n";

const char policy_list_usage[] =
	"usage: migctl policy list [--json]\n"
	"\n"
	"List policies: type, state, schedule (period, cron expression or mtbf\n"
	"interval), next firing, and what they move.\n";

const char policy_show_usage[] =
	"usage: migctl policy show NAME [--json]\n"
	"\n"
	"Show one policy, with its next five firing times; for an mtbf policy also\n"
	"the MTBF, the cost in effect (measured or configured) and the interval.\n";

const char policy_pause_usage[] =
	"usage: migctl policy pause NAME\n"
	"\n"
	"Stop a policy firing; migrations it already queued go on.\n";

const char policy_resume_usage[] =
	"usage: migctl policy resume NAME\n"
	"\n"
	"Let a paused policy fire again.\n";

const char policy_rm_usage[] =
	"usage: migctl policy rm NAME\n"
	"\n"
	"Remove a policy.\n";

/* ---- printing ---- */

static const char *policy_state(json_t *p)
{
	const char *state = jstr(p, "state");
	if (*state)
		return state;
	return jbool(p, "paused", 0) ? "paused" : "active";
}

static const char *count_text(json_t *p, char *buf, size_t len)
{
	int64_t count = jint(p, "count", 0);
	if (count > 0)
		snprintf(buf, len, "%" PRId64, count);
	else
		snprintf(buf, len, "all");
	return buf;
}

/* A checkpoint policy's period as given: "auto" or a duration (the
 * type's own keys, every or every_s, a number or text). */
static const char *checkpoint_every(json_t *p, char *buf, size_t len)
{
	char t[32];
	json_t *every = json_object_get(p, "every");
	if (!every)
		every = json_object_get(p, "every_s");
	if (json_is_number(every))
		snprintf(buf, len, "every %s", fmt_seconds(json_number_value(every), t, sizeof(t)));
	else if (json_is_string(every) && strcmp(json_string_value(every), "auto") == 0)
		snprintf(buf, len, "auto (Daly)");
	else
		snprintf(buf, len, "every %s", json_is_string(every) ? json_string_value(every) : "?");
	return buf;
}

/* The schedule column: a period, a cron expression, an mtbf interval. */
static const char *schedule_text(json_t *p, char *buf, size_t len)
{
	const char *type = jstr(p, "type");
	char t[32];
	if (strcmp(type, "cron") == 0)
		snprintf(buf, len, "%s (%s)", jstr(p, "schedule"), jstr_or(p, "tz", "UTC"));
	else if (strcmp(type, "mtbf") == 0 || (strcmp(type, "checkpoint") == 0 &&
						json_is_number(json_object_get(p, "interval_s"))))
		snprintf(buf, len, "every %s", fmt_seconds(jnum(p, "interval_s", -1), t, sizeof(t)));
	else if (strcmp(type, "checkpoint") == 0)
		checkpoint_every(p, buf, len);
	else
		snprintf(buf, len, "every %s", fmt_seconds(jnum(p, "every_s", -1), t, sizeof(t)));
	return buf;
}

static const char *what_text(json_t *p, char *buf, size_t len)
{
	const char *action = jstr(p, "action");
	if (strcmp(jstr(p, "type"), "checkpoint") == 0) {
		snprintf(buf, len, "checkpoint job:%s", jstr(p, "job"));
		return buf;
	}
	return *action ? action : jstr(p, "guests");
}

/* The next firings; a cron policy's also on the wall clock of its zone. */
static void print_next_fires(json_t *p)
{
	json_t *next = json_object_get(p, "next_fires_ns");
	const char *tz = strcmp(jstr(p, "type"), "cron") == 0 ? jstr_or(p, "tz", "UTC") : NULL;
	size_t i;
	json_t *t;
	if (!json_is_array(next))
		return;
	printf("%-16s %s\n", "next firings:", json_array_size(next) ? "" : "none");
	json_array_foreach(next, i, t) {
		char when[40], zoned[64] = "";
		time_t secs = (time_t)(json_integer_value(t) / 1000000000);
		if (tz) { /* migctl is single-threaded: TZ switched and put back */
			const char *old = getenv("TZ");
			char *saved = old ? strdup(old) : NULL;
			struct tm tm;
			setenv("TZ", tz, 1);
			tzset();
			localtime_r(&secs, &tm);
			strftime(zoned, sizeof(zoned), "   (%Y-%m-%d %H:%M %Z)", &tm);
			if (saved)
				setenv("TZ", saved, 1);
			else
				unsetenv("TZ");
			free(saved);
			tzset();
		}
		printf("  %s%s\n", fmt_time_ns(json_integer_value(t), when, sizeof(when)), zoned);
	}
}

/* A checkpoint policy's own keys; interval_s and the cost, when migd
 * says them, come with the other fields. */
static void checkpoint_print(json_t *p)
{
	char buf[96];
	json_t *mtbf = json_object_get(p, "mtbf");
	if (!mtbf)
		mtbf = json_object_get(p, "mtbf_s");
	print_kv("job", jstr(p, "job"));
	print_kv("every", checkpoint_every(p, buf, sizeof(buf)));
	if (json_is_number(json_object_get(p, "interval_s")))
		print_kv("interval", fmt_seconds(jnum(p, "interval_s", -1), buf, sizeof(buf)));
	snprintf(buf, sizeof(buf), "%" PRId64, jint(p, "keep", 3));
	print_kv("keep", buf);
	print_kv("on failure", jstr_or(p, "on_failure", "notify"));
	if (json_is_number(mtbf))
		print_kv("mtbf", fmt_seconds(json_number_value(mtbf), buf, sizeof(buf)));
	else if (json_is_string(mtbf))
		print_kv("mtbf", json_string_value(mtbf));
}

static void policy_print(json_t *p)
{
	static const char *const known[] = {
		"name", "type", "state", "paused", "every_s", "stagger_s", "count", "guests",
		"schedule", "tz", "action", "missed", "spread", "mtbf_s", "cost_s",
		"cost_in_effect_s", "cost_source", "cost_samples", "interval_s",
		"quiesce_deadline_s", "io_lull_wait_s", "io_lull_bps", "job", "every", "keep",
		"on_failure", "mtbf",
	};
	const char *type = jstr(p, "type");
	char buf[256], t2[32];
	print_kv("name", jstr(p, "name"));
	print_kv("type", type);
	print_kv("state", policy_state(p));
	if (strcmp(type, "cron") == 0) {
		print_kv("schedule", jstr(p, "schedule"));
		print_kv("time zone", jstr_or(p, "tz", "UTC"));
		print_kv("action", jstr(p, "action"));
		print_kv("missed", jstr(p, "missed"));
		if (strncmp(jstr(p, "action"), "rebalance", 9) == 0) {
			snprintf(buf, sizeof(buf), "%g%%", jnum(p, "spread", 0) * 100);
			print_kv("spread", buf);
		}
	} else if (strcmp(type, "mtbf") == 0) {
		print_kv("mtbf", fmt_seconds(jnum(p, "mtbf_s", -1), buf, sizeof(buf)));
		fmt_seconds(jnum(p, "cost_in_effect_s", -1), t2, sizeof(t2));
		if (strcmp(jstr(p, "cost_source"), "history") == 0)
			snprintf(buf, sizeof(buf), "%s (measured: last %" PRId64 " migrations)", t2,
				 jint(p, "cost_samples", 0));
		else
			snprintf(buf, sizeof(buf), "%s (configured; no history yet)", t2);
		print_kv("cost", buf);
		print_kv("configured cost", fmt_seconds(jnum(p, "cost_s", -1), buf, sizeof(buf)));
		print_kv("interval", fmt_seconds(jnum(p, "interval_s", -1), buf, sizeof(buf)));
		print_kv("count", count_text(p, buf, sizeof(buf)));
		print_kv("guests", jstr(p, "guests"));
	} else if (strcmp(type, "checkpoint") == 0) {
		checkpoint_print(p);
	} else {
		print_kv("every", fmt_seconds(jnum(p, "every_s", -1), buf, sizeof(buf)));
		print_kv("count", count_text(p, buf, sizeof(buf)));
		print_kv("guests", jstr(p, "guests"));
	}
	print_kv("stagger", fmt_seconds(jnum(p, "stagger_s", 0), buf, sizeof(buf)));
	if (json_object_get(p, "quiesce_deadline_s"))
		print_kv("quiesce deadline", fmt_ms(jnum(p, "quiesce_deadline_s", -1) * 1e3, buf,
						    sizeof(buf)));
	if (json_object_get(p, "io_lull_bps"))
		print_kv("io lull", fmt_rate(jnum(p, "io_lull_bps", -1), buf, sizeof(buf)));
	if (json_object_get(p, "io_lull_wait_s"))
		print_kv("io lull wait", fmt_ms(jnum(p, "io_lull_wait_s", -1) * 1e3, buf,
						sizeof(buf)));
	const char *key;
	json_t *v;
	json_object_foreach(p, key, v) {
		int is_known = 0;
		for (size_t i = 0; i < ARRAY_SIZE(known); i++)
			is_known |= strcmp(key, known[i]) == 0;
		if (is_known || json_is_object(v) || json_is_array(v) || json_is_null(v))
			continue;
		char label[64];
		print_kv(field_label(key, label, sizeof(label)), field_text(key, v, buf, sizeof(buf)));
	}
	print_next_fires(p);
}

static void policy_table(json_t *arr)
{
	static const char *const headers[] = { "NAME", "TYPE", "STATE", "SCHEDULE", "NEXT",
					       ">STAGGER", ">COUNT", "MOVES" };
	struct table *t = table_new(8, headers);
	size_t i;
	json_t *p;
	json_array_foreach(arr, i, p) {
		char sched[160], next[40] = "-", stagger[32], count[24], what[96];
		json_t *n = json_array_get(json_object_get(p, "next_fires_ns"), 0);
		if (n)
			fmt_time_ns(json_integer_value(n), next, sizeof(next));
		table_add(t, jstr(p, "name"), jstr(p, "type"), policy_state(p),
			  schedule_text(p, sched, sizeof(sched)), next,
			  fmt_seconds(jnum(p, "stagger_s", 0), stagger, sizeof(stagger)),
			  strcmp(jstr(p, "type"), "cron") == 0 ||
					  strcmp(jstr(p, "type"), "checkpoint") == 0
				  ? "-" : count_text(p, count, sizeof(count)),
			  what_text(p, what, sizeof(what)));
	}
	table_print(t, stdout);
	table_free(t);
}

/* ---- subcommands ---- */

/* Seconds as JSON: an integer when whole, so either reading of it works. */
static json_t *seconds_json(double s)
{
	if (s == floor(s) && s < 9e15)
		return json_integer((json_int_t)s);
	return json_real(s);
}

static int duration_option(struct ctl *c, const char *option, const char *text, double min_s,
			   double *out)
{
	if (ctl_parse_duration(text, out) < 0)
		return ctl_usage_error(c, "%s \"%s\": expected a duration like 30s, 4m, 1h or 1d",
				       option, text);
	if (*out < min_s)
		return ctl_usage_error(c, "%s \"%s\": must be more than 0", option, text);
	return 0;
}

enum { OPT_EVERY = OPT_SUBCMD_BASE, OPT_GUESTS, OPT_STAGGER, OPT_COUNT, OPT_SCHEDULE,
       OPT_ACTION, OPT_TZ, OPT_MISSED, OPT_SPREAD, OPT_MTBF, OPT_COST, OPT_JOB, OPT_KEEP,
       OPT_ON_FAILURE };

/* The options of every type into args (migd refuses those of another
 * type, naming them); CTL_CONTINUE or an exit code. */
static int policy_options(struct ctl *c, int argc, char **argv, json_t *args)
{
	static const struct option longopts[] = {
		{ "every", required_argument, NULL, OPT_EVERY },
		{ "guests", required_argument, NULL, OPT_GUESTS },
		{ "stagger", required_argument, NULL, OPT_STAGGER },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "schedule", required_argument, NULL, OPT_SCHEDULE },
		{ "action", required_argument, NULL, OPT_ACTION },
		{ "tz", required_argument, NULL, OPT_TZ },
		{ "missed", required_argument, NULL, OPT_MISSED },
		{ "spread", required_argument, NULL, OPT_SPREAD },
		{ "mtbf", required_argument, NULL, OPT_MTBF },
		{ "cost", required_argument, NULL, OPT_COST },
		{ "job", required_argument, NULL, OPT_JOB },
		{ "keep", required_argument, NULL, OPT_KEEP },
		{ "on-failure", required_argument, NULL, OPT_ON_FAILURE },
		CTL_KNOB_LONGOPTS,
		CTL_COMMON_LONGOPTS,
		{ 0 },
	};
	int opt, rc = CTL_CONTINUE;
	double seconds;
	uint64_t count;
	while (rc == CTL_CONTINUE && (opt = ctl_getopt(argc, argv, "", longopts)) != -1) {
		switch (opt) {
		case OPT_EVERY:
			if (strcmp(optarg, "auto") == 0) { /* a checkpoint policy's */
				json_object_set_new(args, "every", json_string("auto"));
				break;
			}
			/* fall through */
		case OPT_STAGGER: {
			int every = opt == OPT_EVERY;
			rc = duration_option(c, every ? "--every" : "--stagger", optarg,
					     every ? 1e-9 : 0, &seconds);
			if (rc == 0) {
				json_object_set_new(args, every ? "every_s" : "stagger_s",
						    seconds_json(seconds));
				rc = CTL_CONTINUE;
			}
			break;
		}
		case OPT_GUESTS: json_object_set_new(args, "guests", json_string(optarg)); break;
		case OPT_SCHEDULE: json_object_set_new(args, "schedule", json_string(optarg)); break;
		case OPT_ACTION: json_object_set_new(args, "action", json_string(optarg)); break;
		case OPT_TZ: json_object_set_new(args, "tz", json_string(optarg)); break;
		case OPT_MISSED: json_object_set_new(args, "missed", json_string(optarg)); break;
		case OPT_SPREAD: json_object_set_new(args, "spread", json_string(optarg)); break;
		case OPT_MTBF:
		case OPT_COST: {
			int mtbf = opt == OPT_MTBF;
			rc = duration_option(c, mtbf ? "--mtbf" : "--cost", optarg, 1e-9, &seconds);
			if (rc == 0) {
				json_object_set_new(args, mtbf ? "mtbf_s" : "cost_s",
						    seconds_json(seconds));
				rc = CTL_CONTINUE;
			}
			break;
		}
		case OPT_JOB: json_object_set_new(args, "job", json_string(optarg)); break;
		case OPT_ON_FAILURE:
			if (strcmp(optarg, "restore") != 0 && strcmp(optarg, "notify") != 0)
				rc = ctl_usage_error(c, "--on-failure \"%s\": expected restore or "
						     "notify", optarg);
			else
				json_object_set_new(args, "on_failure", json_string(optarg));
			break;
		case OPT_KEEP:
			if (parse_u64(optarg, 1, 100000, &count) < 0)
				rc = ctl_usage_error(c, "--keep \"%s\": expected a number of "
						     "checkpoints from 1", optarg);
			else
				json_object_set_new(args, "keep", json_integer((json_int_t)count));
			break;
		case OPT_COUNT:
			if (parse_u64(optarg, 1, INT32_MAX, &count) < 0)
				rc = ctl_usage_error(c, "--count \"%s\": expected a number from 1",
						     optarg);
			else
				json_object_set_new(args, "count", json_integer((json_int_t)count));
			break;
		default:
			if (opt >= OPT_KNOB_BASE && opt < OPT_KNOB_END)
				rc = ctl_knob_option(c, opt, optarg, args);
			else
				rc = ctl_option(c, opt, argv, policy_add_usage);
		}
	}
	return rc;
}

/* What each type cannot do without. */
static int required_options(struct ctl *c, const char *type, json_t *args)
{
	static const struct {
		const char *type, *key, *message;
	} req[] = {
		{ "interval", "every_s", "--every DURATION is required" },
		{ "interval", "guests", "--guests SELECTOR is required (e.g. job:bt-io or all)" },
		{ "cron", "schedule", "--schedule \"MIN HOUR DOM MON DOW\" is required" },
		{ "cron", "action", "--action is required (evacuate HOSTS, rebalance or migrate "
				    "SELECTOR)" },
		{ "mtbf", "mtbf_s", "--mtbf DURATION is required (e.g. 30d)" },
		{ "mtbf", "guests", "--guests SELECTOR is required (e.g. job:bt-io or all)" },
		{ "checkpoint", "job", "--job JOB is required" },
		{ "checkpoint", "every", "--every DURATION or --every auto is required" },
	};
	if (strcmp(type, "checkpoint") != 0 && json_is_string(json_object_get(args, "every")))
		return ctl_usage_error(c, "--every auto: only a checkpoint policy chooses its own "
				       "period (give a duration like 30m)");
	for (size_t i = 0; i < ARRAY_SIZE(req); i++)
		if (strcmp(req[i].type, type) == 0 && !json_object_get(args, req[i].key))
			return ctl_usage_error(c, "%s", req[i].message);
	return CTL_CONTINUE;
}

/* A checkpoint policy's keys as its type spells them (checkpoint.h):
 * every and mtbf, seconds or "auto". */
static void checkpoint_keys(json_t *args)
{
	static const char *const renames[][2] = { { "every_s", "every" }, { "mtbf_s", "mtbf" } };
	for (size_t i = 0; i < ARRAY_SIZE(renames); i++) {
		json_t *v = json_object_get(args, renames[i][0]);
		if (v) {
			json_object_set(args, renames[i][1], v);
			json_object_del(args, renames[i][0]);
		}
	}
}

int cmd_policy_add(struct ctl *c, int argc, char **argv)
{
	json_t *args = json_object();
	int rc = policy_options(c, argc, argv, args);
	if (rc == CTL_CONTINUE && argc - optind < 1)
		rc = ctl_usage_error(c, "TYPE NAME is required (e.g. interval bt-io)");
	const char *type = rc == CTL_CONTINUE ? argv[optind] : "";
	if (rc == CTL_CONTINUE && strcmp(type, "interval") != 0 && strcmp(type, "cron") != 0 &&
	    strcmp(type, "mtbf") != 0 && strcmp(type, "checkpoint") != 0)
		rc = ctl_usage_error(c, "policy type \"%s\": expected interval, cron, mtbf or "
				     "checkpoint", type);
	if (rc == CTL_CONTINUE && strcmp(type, "checkpoint") == 0)
		checkpoint_keys(args);
	if (rc == CTL_CONTINUE && argc - optind < 2)
		rc = ctl_usage_error(c, "NAME is required after %s", type);
	if (rc == CTL_CONTINUE && argc - optind > 2)
		rc = ctl_usage_error(c, "unexpected argument \"%s\"", argv[optind + 2]);
	if (rc == CTL_CONTINUE)
		rc = required_options(c, type, args);
	if (rc != CTL_CONTINUE) {
		json_decref(args);
		return rc;
	}
	const char *name = argv[optind + 1];
	json_object_set_new(args, "type", json_string(type));
	json_object_set_new(args, "name", json_string(name));
	json_t *root, *result;
	if ((rc = ctl_call(c, "policy.add", args, &root, &result)) != 0)
		return rc;
	if (c->json)
		rc = ctl_print_json(c, result);
	else
		printf("policy %s added\n", name);
	json_decref(root);
	return rc;
}

/* list: no NAME; the others: one NAME, then print or say done. */
static int policy_command(struct ctl *c, int argc, char **argv, const char *usage,
			  const char *cmd, const char *done)
{
	static const struct option longopts[] = { CTL_COMMON_LONGOPTS, { 0 } };
	int opt, rc, is_list = strcmp(cmd, "policy.list") == 0;
	while ((opt = ctl_getopt(argc, argv, "", longopts)) != -1)
		if ((rc = ctl_option(c, opt, argv, usage)) != CTL_CONTINUE)
			return rc;
	if ((rc = ctl_positional(c, argc, argv, is_list ? 0 : 1, "NAME")) != 0)
		return rc;
	json_t *args = is_list ? NULL : json_pack("{s:s}", "name", argv[optind]);
	json_t *root, *result;
	if ((rc = ctl_call(c, cmd, args, &root, &result)) != 0)
		return rc;
	if (c->json)
		rc = ctl_print_json(c, result);
	else if (is_list && json_array_size(result) == 0)
		printf("no policies\n");
	else if (is_list)
		policy_table(result);
	else if (done)
		printf("policy %s %s\n", argv[optind], done);
	else
		policy_print(result);
	json_decref(root);
	return rc;
}

int cmd_policy_list(struct ctl *c, int argc, char **argv)
{
	return policy_command(c, argc, argv, policy_list_usage, "policy.list", NULL);
}

int cmd_policy_show(struct ctl *c, int argc, char **argv)
{
	return policy_command(c, argc, argv, policy_show_usage, "policy.show", NULL);
}

int cmd_policy_pause(struct ctl *c, int argc, char **argv)
{
	return policy_command(c, argc, argv, policy_pause_usage, "policy.pause", "paused");
}

int cmd_policy_resume(struct ctl *c, int argc, char **argv)
{
	return policy_command(c, argc, argv, policy_resume_usage, "policy.resume", "resumed");
}

int cmd_policy_rm(struct ctl *c, int argc, char **argv)
{
	return policy_command(c, argc, argv, policy_rm_usage, "policy.rm", "removed");
}
