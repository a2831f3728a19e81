/*
 * migctl_policy: policy add, list, show, pause, resume, rm.
 *
 * `policy add TYPE NAME ...` takes the type as a word so that cron and
 * health policies (a later issue) slot in beside interval with their own
 * options; today only interval exists. The policy object is printed from
 * the fields migd returns, known ones first in a fixed order and any others
 * after them, so a field migd adds later shows up without a new migctl.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migctl.h"
#include "util.h"

const char policy_add_usage[] =
	"usage: migctl policy add interval NAME --every DURATION --guests SELECTOR\n"
	"                         [--stagger DURATION] [--count K] [--quiesce MODE]\n"
	"                         [--quiesce-deadline DURATION] [--on-quiesce-miss abort|defer]\n"
	"                         [--io-lull RATE] [--io-lull-wait DURATION]\n"
	"\n"
	"Add an interval policy: every DURATION, migrate K (default: all) of the\n"
	"selected guests one after another, DURATION of --stagger apart, each to\n"
	"another host. Policies survive migd restarts.\n"
	"\n"
	"      --every DURATION    the period: 30s, 4m, 1h, 1d (a plain number is seconds)\n"
	"      --guests SELECTOR   all, host:NAME, job:NAME, a guest name, or a\n"
	"                          comma-separated list of those\n"
	"      --stagger DURATION  gap between two starts within a period (default 0)\n"
	"      --count K           guests moved per period (default: all selected)\n"
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
	"List policies: type, state, period, stagger, count, selector.\n";

const char policy_show_usage[] =
	"usage: migctl policy show NAME [--json]\n"
	"\n"
	"Show one policy.\n";

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

static void policy_print(json_t *p)
{
	static const char *const known[] = { "name", "type", "state", "paused", "every_s",
					     "stagger_s", "count", "guests", "quiesce_deadline_s",
					     "io_lull_wait_s", "io_lull_bps" };
	char buf[256];
	print_kv("name", jstr(p, "name"));
	print_kv("type", jstr(p, "type"));
	print_kv("state", policy_state(p));
	print_kv("every", fmt_seconds(jnum(p, "every_s", -1), buf, sizeof(buf)));
	print_kv("stagger", fmt_seconds(jnum(p, "stagger_s", 0), buf, sizeof(buf)));
	print_kv("count", count_text(p, buf, sizeof(buf)));
	print_kv("guests", jstr(p, "guests"));
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
}

static void policy_table(json_t *arr)
{
	static const char *const headers[] = { "NAME", "TYPE", "STATE", ">EVERY", ">STAGGER",
					       ">COUNT", "GUESTS" };
	struct table *t = table_new(7, headers);
	size_t i;
	json_t *p;
	json_array_foreach(arr, i, p) {
		char every[32], stagger[32], count[24];
		table_add(t, jstr(p, "name"), jstr(p, "type"), policy_state(p),
			  fmt_seconds(jnum(p, "every_s", -1), every, sizeof(every)),
			  fmt_seconds(jnum(p, "stagger_s", 0), stagger, sizeof(stagger)),
			  count_text(p, count, sizeof(count)), jstr(p, "guests"));
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

enum { OPT_EVERY = OPT_SUBCMD_BASE, OPT_GUESTS, OPT_STAGGER, OPT_COUNT };

/* The interval options into args; CTL_CONTINUE or an exit code. */
static int interval_options(struct ctl *c, int argc, char **argv, json_t *args)
{
	static const struct option longopts[] = {
		{ "every", required_argument, NULL, OPT_EVERY },
		{ "guests", required_argument, NULL, OPT_GUESTS },
		{ "stagger", required_argument, NULL, OPT_STAGGER },
		{ "count", required_argument, NULL, OPT_COUNT },
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

int cmd_policy_add(struct ctl *c, int argc, char **argv)
{
	json_t *args = json_object();
	int rc = interval_options(c, argc, argv, args);
	if (rc == CTL_CONTINUE && argc - optind < 1)
		rc = ctl_usage_error(c, "TYPE NAME is required (e.g. interval bt-io)");
	if (rc == CTL_CONTINUE && strcmp(argv[optind], "interval") != 0)
		rc = ctl_usage_error(c, "policy type \"%s\": expected interval (cron and "
				     "health are not there yet)", argv[optind]);
	if (rc == CTL_CONTINUE && argc - optind < 2)
		rc = ctl_usage_error(c, "NAME is required after interval");
	if (rc == CTL_CONTINUE && argc - optind > 2)
		rc = ctl_usage_error(c, "unexpected argument \"%s\"", argv[optind + 2]);
	if (rc == CTL_CONTINUE && !json_object_get(args, "every_s"))
		rc = ctl_usage_error(c, "--every DURATION is required");
	if (rc == CTL_CONTINUE && !json_object_get(args, "guests"))
		rc = ctl_usage_error(c, "--guests SELECTOR is required (e.g. job:bt-io or all)");
	if (rc != CTL_CONTINUE) {
		json_decref(args);
		return rc;
	}
	const char *name = argv[optind + 1];
	json_object_set_new(args, "type", json_string("interval"));
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
