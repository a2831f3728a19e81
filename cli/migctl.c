/*
 * migctl: the command line of migd. Global options, the table of
 * subcommands and the dispatch to them; the subcommands live in one file
 * per family (migctl_hosts.c, migctl_migrate.c, migctl_policy.c,
 * migctl_report.c, migctl_watch.c, migctl_health.c, migctl_ckpt.c).
 *
 * Subcommands are one word ("queue") or a noun and a verb ("host add").
 * Each parses its own options first, so `--help` works with no migd
 * running, then sends one or more requests (migctl_client.c) and prints a
 * table for people or, with --json, the daemon's result as JSON. The global
 * options may also follow the subcommand: `migctl host list --json`.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"
#include "migctl.h"
#include "migd_proto.h"
#include "util.h"

#ifndef MIGD_VERSION
#define MIGD_VERSION "0.1.0"
#endif

/* ---- messages ---- */

static const char *sub_name(const struct ctl *c)
{
	return c ? c->name : NULL;
}

/* The message, after "FILE:LINE: " while a --from file's line is read. */
static void ctl_verror(const struct ctl *c, const char *fmt, va_list ap)
{
	if (c && c->where) {
		char msg[1200];
		vsnprintf(msg, sizeof(msg), fmt, ap);
		fprintf(stderr, "migctl: %s: %s: %s\n", sub_name(c), c->where, msg);
		return;
	}
	cmdline_verror("migctl", sub_name(c), fmt, ap);
}

void ctl_error(const struct ctl *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ctl_verror(c, fmt, ap);
	va_end(ap);
}

int ctl_usage_error(const struct ctl *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ctl_verror(c, fmt, ap);
	va_end(ap);
	if (!c || !c->where)
		cmdline_try_help("migctl", sub_name(c));
	return MIGCTL_EXIT_USAGE;
}

int ctl_getopt(int argc, char **argv, const char *optstring, const struct option *longopts)
{
	return cmdline_getopt(argc, argv, optstring, "h", longopts);
}

static int parse_timeout(struct ctl *c, const char *text)
{
	uint64_t ms;
	if (parse_u64(text, 0, INT_MAX, &ms) < 0)
		return ctl_usage_error(c, "--timeout \"%s\": expected milliseconds from 0 "
				       "(wait forever) to %d", text, INT_MAX);
	c->timeout_ms = (long)ms;
	c->timeout_set = 1;
	return CTL_CONTINUE;
}

int ctl_option(struct ctl *c, int opt, char **argv, const char *usage)
{
	switch (opt) {
	case 'h':
		fputs(usage, stdout);
		return MIGCTL_EXIT_OK;
	case OPT_JSON:
		c->json = 1;
		return CTL_CONTINUE;
	case OPT_QUIET:
		c->quiet = 1;
		return CTL_CONTINUE;
	case OPT_CONNECT:
		c->endpoint = optarg;
		return CTL_CONTINUE;
	case OPT_EVENTS:
		c->events = optarg;
		return CTL_CONTINUE;
	case OPT_TIMEOUT:
		return parse_timeout(c, optarg);
	default: /* ':' or '?' */
		if (c->where) /* a --from file's line: name it, no --help hint */
			return ctl_usage_error(c, "%s \"%s\"", opt == ':' ? "missing value for"
						: "unknown option", optind > 0 ? argv[optind - 1] : "?");
		cmdline_option_error("migctl", sub_name(c), opt, argv);
		return MIGCTL_EXIT_USAGE;
	}
}

int ctl_positional(const struct ctl *c, int argc, char **argv, int want, const char *what)
{
	int have = argc - optind;
	if (have < want)
		return ctl_usage_error(c, "%s is required", what);
	if (have > want)
		return ctl_usage_error(c, "unexpected argument \"%s\"", argv[optind + want]);
	return 0;
}

/* ---- dispatch ---- */

const struct subcmd subcmds[] = {
	{ "status", NULL, cmd_status, status_usage, "what migd runs: counts, uptime, clock" },
	{ "host", "add", cmd_host_add, host_add_usage, "add a host by its backend URI" },
	{ "host", "list", cmd_host_list, host_list_usage, "list hosts" },
	{ "host", "show", cmd_host_show, host_show_usage, "show one host and its guests" },
	{ "host", "rm", cmd_host_rm, host_rm_usage, "remove a host that runs no guests" },
	{ "host", "enable", cmd_host_enable, host_enable_usage, "let a host take guests again" },
	{ "host", "disable", cmd_host_disable, host_disable_usage, "keep new guests off a host" },
	{ "guest", "add", cmd_guest_add, guest_add_usage, "add (on sim: create) a guest" },
	{ "guest", "list", cmd_guest_list, guest_list_usage, "list guests" },
	{ "guest", "show", cmd_guest_show, guest_show_usage, "show one guest" },
	{ "agent", "list", cmd_agent_list, agent_list_usage, "the guests' migagents: state, I/O" },
	{ "migrate", NULL, cmd_migrate, migrate_usage, "live-migrate a guest" },
	{ "migration", "show", cmd_migration_show, migration_show_usage, "show one migration" },
	{ "evacuate", NULL, cmd_evacuate, evacuate_usage, "migrate every guest off a host" },
	{ "abort", NULL, cmd_abort, abort_usage, "abort a queued or running migration" },
	{ "queue", NULL, cmd_queue, queue_usage, "migrations queued and running" },
	{ "policy", "add", cmd_policy_add, policy_add_usage, "add an interval, cron, mtbf or checkpoint policy" },
	{ "policy", "list", cmd_policy_list, policy_list_usage, "list policies" },
	{ "policy", "show", cmd_policy_show, policy_show_usage, "show one policy" },
	{ "policy", "pause", cmd_policy_pause, policy_pause_usage, "stop a policy firing" },
	{ "policy", "resume", cmd_policy_resume, policy_resume_usage, "let a policy fire again" },
	{ "policy", "rm", cmd_policy_rm, policy_rm_usage, "remove a policy" },
	{ "health", "report", cmd_health_report, health_report_usage, "report a sensor reading" },
	{ "health", "show", cmd_health_show, health_show_usage, "hosts' health and readings" },
	{ "health", "rule", cmd_health_rule, health_rule_usage, "add, list or rm health rules" },
	{ "history", NULL, cmd_history, history_usage, "finished migrations and their cost" },
	{ "report", NULL, cmd_report, report_usage, "cost statistics per policy and overall" },
	{ "calibrate", NULL, cmd_calibrate, calibrate_usage, "fit the cost history into the sim model" },
	{ "predict", NULL, cmd_predict, predict_usage, "what a migration would cost, on that model" },
	{ "watch", NULL, cmd_watch, watch_usage, "live events, progress bars on a terminal" },
	{ "events", NULL, cmd_events, events_usage, "the stored event log, a page at a time" },
	{ "job", "set", cmd_job_set, job_set_usage, "set (or clear) a job's sfs data path" },
	{ "job", "list", cmd_job_list, job_list_usage, "list jobs: guests, data path" },
	{ "checkpoint", "create", cmd_checkpoint_create, checkpoint_create_usage,
	  "checkpoint a job (or guests) at one cut" },
	{ "checkpoint", "list", cmd_checkpoint_list, checkpoint_list_usage, "list checkpoints" },
	{ "checkpoint", "show", cmd_checkpoint_show, checkpoint_show_usage,
	  "show one checkpoint: guests, phases" },
	{ "checkpoint", "rm", cmd_checkpoint_rm, checkpoint_rm_usage,
	  "remove a checkpoint, its images and snapshot" },
	{ "checkpoint", "predict", cmd_checkpoint_predict, checkpoint_predict_usage,
	  "what a checkpoint and a restore of a job would cost" },
	/* "restore list" and "restore show" before the one-word "restore": a
	 * CHECKPOINT is a number, so neither word can be one */
	{ "restore", "list", cmd_restore_list, restore_list_usage, "list restores" },
	{ "restore", "show", cmd_restore_show, restore_show_usage, "show one restore" },
	{ "restore", NULL, cmd_restore, restore_usage, "restore a job from a checkpoint" },
};
const size_t n_subcmds = ARRAY_SIZE(subcmds);

static void usage(FILE *out)
{
	fprintf(out,
		"usage: migctl [--connect ENDPOINT] [--json] [--timeout MS] SUBCOMMAND [ARGS]\n"
		"\n"
		"The command line of migd, the live-migration controller.\n"
		"\n"
		"Subcommands (migctl SUBCOMMAND --help for each):\n");
	for (size_t i = 0; i < ARRAY_SIZE(subcmds); i++) {
		char name[32];
		snprintf(name, sizeof(name), "%s%s%s", subcmds[i].noun,
			 subcmds[i].verb ? " " : "", subcmds[i].verb ? subcmds[i].verb : "");
		fprintf(out, "  %-18s %s\n", name, subcmds[i].summary);
	}
	fprintf(out,
		"\n"
		"Options (also accepted after the subcommand):\n"
		"      --connect ENDPOINT  migd's request endpoint (default: $MIGD_ENDPOINT,\n"
		"                          else " MIGCTL_DEFAULT_ENDPOINT ")\n"
		"      --events ENDPOINT   migd's event endpoint (default: the port + 1)\n"
		"      --json              print results as JSON\n"
		"      --timeout MS        wait this long for each answer (default %d; 0: forever)\n"
		"      --quiet             no progress bars\n"
		"  -h, --help              show this help\n"
		"      --version           show the version\n"
		"\n"
		"Exit status: 0 success, 1 migd refused the request or the operation failed,\n"
		"2 usage error, 3 migd did not answer.\n",
		MIGCTL_DEFAULT_TIMEOUT_MS);
}

/* `migctl host --help`: the verbs of one noun. */
static void noun_usage(const char *noun, FILE *out)
{
	fprintf(out, "usage: migctl %s VERB [ARGS]\n\nVerbs (migctl %s VERB --help for each):\n",
		noun, noun);
	for (size_t i = 0; i < ARRAY_SIZE(subcmds); i++)
		if (subcmds[i].verb && strcmp(subcmds[i].noun, noun) == 0)
			fprintf(out, "  %-8s %s\n", subcmds[i].verb, subcmds[i].summary);
}

static int is_noun(const char *word)
{
	for (size_t i = 0; i < ARRAY_SIZE(subcmds); i++)
		if (subcmds[i].verb && strcmp(subcmds[i].noun, word) == 0)
			return 1;
	return 0;
}

const struct subcmd *find_subcmd(int argc, char **argv, int *words)
{
	for (size_t i = 0; i < ARRAY_SIZE(subcmds); i++) {
		const struct subcmd *s = &subcmds[i];
		if (strcmp(s->noun, argv[0]) != 0)
			continue;
		if (!s->verb) {
			*words = 1;
			return s;
		}
		if (argc > 1 && strcmp(s->verb, argv[1]) == 0) {
			*words = 2;
			return s;
		}
	}
	return NULL;
}

/* Global options; returns CTL_CONTINUE with *sub_index set, or an exit code. */
static int parse_global(struct ctl *c, int argc, char **argv, int *sub_index)
{
	static const struct option longopts[] = {
		CTL_COMMON_LONGOPTS,
		{ "version", no_argument, NULL, OPT_SUBCMD_BASE },
		{ 0 },
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		if (opt == OPT_SUBCMD_BASE) {
			printf("migctl (migd) %s, API version %d\n", MIGD_VERSION, MIGD_API_VERSION);
			return MIGCTL_EXIT_OK;
		}
		if (opt == 'h') {
			usage(stdout);
			return MIGCTL_EXIT_OK;
		}
		int rc = ctl_option(c, opt, argv, "");
		if (rc != CTL_CONTINUE)
			return rc;
	}
	if (optind >= argc)
		return ctl_usage_error(c, "no subcommand (host, guest, migrate, status, ...)");
	*sub_index = optind;
	return CTL_CONTINUE;
}

/* `migctl help [NOUN [VERB]]` */
static int help(int argc, char **argv)
{
	int words;
	const struct subcmd *s = argc > 0 ? find_subcmd(argc, argv, &words) : NULL;
	if (s)
		fputs(s->usage, stdout);
	else if (argc > 0 && is_noun(argv[0]))
		noun_usage(argv[0], stdout);
	else
		usage(stdout);
	return MIGCTL_EXIT_OK;
}

/* A noun without a (known) verb: its list of verbs, or a usage error. */
static int noun_without_verb(struct ctl *c, int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		noun_usage(argv[0], stdout);
		return MIGCTL_EXIT_OK;
	}
	c->name = argv[0];
	if (argc < 2)
		ctl_error(c, "a verb is needed");
	else
		ctl_error(c, "unknown verb \"%s\"", argv[1]);
	noun_usage(argv[0], stderr);
	return MIGCTL_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	struct ctl c = { 0 };
	const char *env = getenv("MIGD_ENDPOINT");
	c.endpoint = env && *env ? env : MIGCTL_DEFAULT_ENDPOINT;
	c.timeout_ms = MIGCTL_DEFAULT_TIMEOUT_MS;
	opterr = 0;
	if (argc > 1 && strcmp(argv[1], "__complete") == 0) /* for dist/completion/migctl */
		return ctl_complete(&c, argc - 2, argv + 2);

	int sub_index = 0, words = 0;
	int rc = parse_global(&c, argc, argv, &sub_index);
	if (rc != CTL_CONTINUE)
		return rc;
	argc -= sub_index;
	argv += sub_index;
	if (strcmp(argv[0], "help") == 0)
		return help(argc - 1, argv + 1);
	const struct subcmd *sub = find_subcmd(argc, argv, &words);
	if (!sub && is_noun(argv[0]))
		return noun_without_verb(&c, argc, argv);
	if (!sub)
		return ctl_usage_error(&c, "unknown subcommand \"%s\"", argv[0]);

	char name[32];
	snprintf(name, sizeof(name), "%s%s%s", sub->noun, sub->verb ? " " : "",
		 sub->verb ? sub->verb : "");
	c.name = name;
	optind = 0; /* glibc: start getopt afresh on the subcommand's arguments */
	rc = sub->run(&c, argc - (words - 1), argv + (words - 1));
	/* A table that did not reach stdout (full disk, closed pipe) is a failure. */
	if ((fflush(stdout) != 0 || ferror(stdout)) && rc == MIGCTL_EXIT_OK) {
		ctl_error(&c, "writing to stdout: %s", strerror(errno));
		rc = MIGCTL_EXIT_FAIL;
	}
	ctl_close(&c);
	return rc;
}
