/*
 * migctl_watch: `migctl watch`, migd's event stream for people and scripts,
 * and `migctl events`, the stored event log read back a page at a time,
 * printed the same way.
 *
 * It subscribes before it asks migd for the queue, so nothing published in
 * between is missed, and the queue both proves migd is there (exit 3
 * otherwise, rather than waiting in silence) and seeds a bar for each
 * migration already running. On a terminal, migration.progress events only
 * redraw those bars; piped, every event is one line (or with --json one raw
 * JSON object), flushed as it comes, so `migctl watch | grep` works live.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "migctl.h"
#include "migctl_progress.h"
#include "util.h"

const char watch_usage[] =
	"usage: migctl watch [--json] [--count N]\n"
	"\n"
	"Print migd's events as they happen, one per line, until Ctrl-C. On a\n"
	"terminal a progress bar per running migration is redrawn from\n"
	"migration.progress events instead of printing them.\n"
	"\n"
	"      --count N   exit after N events (progress events count too)\n"
	"      --json      each event as the JSON object migd sent, one per line\n"
	"      --events E  the event endpoint (default: the --connect port + 1)\n"
	"  -h, --help      show this help\n";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* No SA_RESTART: the signal must break zmq_poll out of its wait. */
static void catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* " key=value" for each field but the envelope's and the unset ones; an
 * object (the host of host.disabled) by its name. */
static void print_fields(json_t *ev, FILE *out)
{
	const char *key;
	json_t *v;
	json_object_foreach(ev, key, v) {
		if (strcmp(key, "v") == 0 || strcmp(key, "type") == 0 ||
		    strcmp(key, "ts_ns") == 0 || json_is_null(v))
			continue;
		char buf[64];
		if (json_is_object(v) && json_is_string(json_object_get(v, "name")))
			v = json_object_get(v, "name");
		if (json_is_string(v) && !strpbrk(json_string_value(v), " \t\""))
			fprintf(out, " %s=%s", key, json_string_value(v));
		else if (json_is_integer(v) && ends_with(key, "_bytes"))
			fprintf(out, " %s=%s", key, fmt_bytes(json_integer_value(v), buf,
								  sizeof(buf)));
		else if (json_is_integer(v) && ends_with(key, "_ns"))
			fprintf(out, " %s=\"%s\"", key, fmt_time_ns(json_integer_value(v), buf,
								     sizeof(buf)));
		else {
			char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			fprintf(out, " %s=%s", key, text ? text : "?");
			free(text);
		}
	}
}

static void print_event(json_t *ev, const char *body, FILE *out)
{
	char when[32];
	if (!json_is_object(ev)) {
		fprintf(out, "(not JSON) %s\n", body);
		return;
	}
	const char *type = jstr_or(ev, "type", "?");
	fprintf(out, "%s  %s", fmt_time_ns(jint(ev, "ts_ns", 0), when, sizeof(when)), type);
	/* a migration's change of state carries the whole row: say it as a sentence */
	if (strncmp(type, "migration.", 10) == 0 && strcmp(type, "migration.progress") != 0 &&
	    json_is_string(json_object_get(ev, "state"))) {
		char line[1024], ms[32], drained[32];
		fprintf(out, "  %s", migration_line(ev, line, sizeof(line)));
		/* the agent phases: what each one found */
		if (strcmp(type, "migration.waiting") == 0)
			fprintf(out, " (%s)", jstr(ev, "lull_reason"));
		else if (strcmp(type, "migration.quiesced") == 0)
			fprintf(out, " (quiesce %s, %s, drained %s in %" PRId64 " requests)",
				jstr(ev, "quiesce"), fmt_ms(jnum(ev, "quiesce_ms", -1), ms, sizeof(ms)),
				fmt_bytes(jint(ev, "drained_bytes", -1), drained, sizeof(drained)),
				jint(ev, "drained_requests", 0));
		else if (strcmp(type, "migration.resumed") == 0)
			fprintf(out, " (resume %s, %s)", jstr(ev, "resume"),
				fmt_ms(jnum(ev, "resume_ms", -1), ms, sizeof(ms)));
		fputc('\n', out);
		return;
	}
	/* health decisions carry their sentence: "host n3 degraded: CPU1 Temp ..." */
	if (json_is_string(json_object_get(ev, "message"))) {
		fprintf(out, "  %s\n", jstr(ev, "message"));
		return;
	}
	print_fields(ev, out);
	fputc('\n', out);
}

/* The queue, to check migd is there and to seed the board. */
static int seed(struct ctl *c, struct board *b)
{
	json_t *root, *result;
	/* the running ones only: at scale the queued are thousands */
	int rc = ctl_call(c, "queue", json_pack("{s:b}", "running", 1), &root, &result);
	if (rc != 0)
		return rc;
	size_t i;
	json_t *m;
	json_array_foreach(result, i, m)
		board_migration(b, m);
	json_decref(root);
	return 0;
}

/* One event: a line, or on a terminal a progress redraw. */
static int show_event(struct ctl *c, struct board *b, const char *body)
{
	if (c->json) {
		fprintf(stdout, "%s\n", body);
		return fflush(stdout) == 0 ? 0 : -errno;
	}
	json_t *ev = json_loads(body, 0, NULL);
	if (b && strcmp(jstr(ev, "type"), "migration.progress") == 0) {
		board_event(b, ev);
		board_draw(b, NULL, 0);
	} else {
		board_clear(b);
		print_event(ev, body, stdout);
		board_event(b, ev);
		board_draw(b, NULL, 1);
	}
	json_decref(ev);
	return fflush(stdout) == 0 ? 0 : -errno;
}

static int watch_loop(struct ctl *c, void *sub, struct board *b, uint64_t count)
{
	uint64_t seen = 0;
	while (!stop && (count == 0 || seen < count)) {
		char *body = NULL;
		int n = ctl_event_recv(sub, 250, &body);
		if (n < 0) {
			ctl_error(c, "receiving events: %s", zmq_strerror(zmq_errno()));
			return MIGCTL_EXIT_FAIL;
		}
		if (n == 0)
			continue;
		seen++;
		int rc = show_event(c, b, body);
		free(body);
		if (rc < 0) {
			if (rc != -EPIPE)
				ctl_error(c, "writing to stdout: %s", strerror(-rc));
			return MIGCTL_EXIT_FAIL;
		}
	}
	return MIGCTL_EXIT_OK;
}

enum { OPT_COUNT = OPT_SUBCMD_BASE };

int cmd_watch(struct ctl *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, OPT_COUNT },
		CTL_COMMON_LONGOPTS,
		{ 0 },
	};
	uint64_t count = 0;
	int opt, rc;
	while ((opt = ctl_getopt(argc, argv, "", longopts)) != -1) {
		if (opt == OPT_COUNT) {
			if (parse_u64(optarg, 1, UINT32_MAX, &count) < 0)
				return ctl_usage_error(c, "--count \"%s\": expected a number from 1",
						       optarg);
		} else if ((rc = ctl_option(c, opt, argv, watch_usage)) != CTL_CONTINUE) {
			return rc;
		}
	}
	if ((rc = ctl_positional(c, argc, argv, 0, "")) != 0)
		return rc;
	void *sub = ctl_subscribe(c, &rc);
	if (!sub)
		return rc;
	struct board *b = NULL;
	if (!c->json && !c->quiet && isatty(STDOUT_FILENO))
		b = board_new(stdout);
	catch_signals();
	signal(SIGPIPE, SIG_IGN);
	if ((rc = seed(c, b)) == 0) {
		board_draw(b, NULL, 1);
		rc = watch_loop(c, sub, b, count);
	}
	board_clear(b);
	board_free(b);
	zmq_close(sub);
	return rc;
}

/* ---- events: the stored log ---- */

const char events_usage[] =
	"usage: migctl events [--json] [--after ID] [--limit N] [--type PREFIX]\n"
	"\n"
	"The event log migd keeps in its database, oldest first, each after its ID:\n"
	"what `migctl watch` would have printed. It is fetched a page at a time,\n"
	"so it has no size limit; with --json it is one JSON array.\n"
	"\n"
	"      --after ID       only the events after event ID (the last ID printed\n"
	"                       gives the rest)\n"
	"      --limit N        at most N events\n"
	"      --type PREFIX    only events whose type starts with PREFIX\n"
	"                       (migration., host.disabled)\n"
	"      --json           the events as a JSON array, each with its \"event_id\"\n"
	"  -h, --help           show this help\n";

#define EVENT_PAGE 1000

enum { OPT_AFTER = OPT_COUNT + 1, OPT_LIMIT, OPT_TYPE };

static int events_options(struct ctl *c, int argc, char **argv, uint64_t *after,
			  uint64_t *limit, const char **type)
{
	static const struct option longopts[] = {
		{ "after", required_argument, NULL, OPT_AFTER },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "type", required_argument, NULL, OPT_TYPE },
		CTL_COMMON_LONGOPTS,
		{ 0 },
	};
	int opt, rc;
	while ((opt = ctl_getopt(argc, argv, "", longopts)) != -1) {
		if (opt == OPT_AFTER && parse_u64(optarg, 0, INT64_MAX, after) < 0)
			return ctl_usage_error(c, "--after \"%s\": expected an event ID", optarg);
		else if (opt == OPT_LIMIT && parse_u64(optarg, 1, INT64_MAX, limit) < 0)
			return ctl_usage_error(c, "--limit \"%s\": expected a number from 1", optarg);
		else if (opt == OPT_TYPE)
			*type = optarg;
		else if (opt != OPT_AFTER && opt != OPT_LIMIT &&
			 (rc = ctl_option(c, opt, argv, events_usage)) != CTL_CONTINUE)
			return rc;
	}
	return ctl_positional(c, argc, argv, 0, "") != 0 ? MIGCTL_EXIT_USAGE : CTL_CONTINUE;
}

/* One event as a line of the log: its ID, then as watch prints it. */
static void print_logged(json_t *ev, FILE *out)
{
	fprintf(out, "%8" PRId64 "  ", jint(ev, "event_id", 0));
	json_t *copy = json_copy(ev);
	json_object_del(copy, "event_id");
	print_event(copy, "", out);
	json_decref(copy);
}

/* Pages of event.list until the log (or --limit) ends; each page is printed
 * as it comes, so the log streams and a JSON array is written item by item. */
int cmd_events(struct ctl *c, int argc, char **argv)
{
	uint64_t after = 0, limit = 0, done = 0;
	const char *type = NULL;
	int rc = events_options(c, argc, argv, &after, &limit, &type);
	if (rc != CTL_CONTINUE)
		return rc;
	if (c->json)
		fputs("[", stdout);
	for (;;) {
		uint64_t page = limit && limit - done < EVENT_PAGE ? limit - done : EVENT_PAGE;
		json_t *args = json_pack("{s:I, s:I}", "after", (json_int_t)after, "limit",
					 (json_int_t)page), *root, *result, *ev;
		if (type)
			json_object_set_new(args, "type", json_string(type));
		if ((rc = ctl_call(c, "event.list", args, &root, &result)) != 0)
			break;
		size_t i, n = json_array_size(result);
		json_array_foreach(result, i, ev) {
			if (c->json) {
				fputs(done + i ? ",\n" : "\n", stdout);
				json_dumpf(ev, stdout, JSON_COMPACT);
			} else {
				print_logged(ev, stdout);
			}
		}
		done += n;
		if (n)
			after = (uint64_t)jint(json_array_get(result, n - 1), "event_id", 0);
		json_decref(root);
		if (n < page || (limit && done >= limit))
			break;
	}
	if (c->json && rc == 0)
		fputs(done ? "\n]\n" : "]\n", stdout);
	if (!c->json && rc == 0 && done == 0)
		printf("no events\n");
	if (fflush(stdout) != 0 && rc == 0) {
		ctl_error(c, "writing to stdout: %s", strerror(errno));
		rc = MIGCTL_EXIT_FAIL;
	}
	return rc;
}
