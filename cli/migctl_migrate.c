/*
 * migctl_migrate: migrate, evacuate, abort, queue, and what they share:
 * printing migrations and waiting for them to end.
 *
 * --wait polls migration.show (one fresh request each time, so a migd that
 * dies mid-wait turns into exit 3 within --timeout, never a hang) until
 * every migration is in a final state. On a terminal it also listens to the
 * event stream for migration.progress, which carries the bytes moved, and
 * draws a bar per migration on stderr; piped, it prints only the outcome.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "migctl.h"
#include "selector.h"
#include "migctl_progress.h"
#include "util.h"

#define WAIT_POLL_MS 200

const char migrate_usage[] =
	"usage: migctl migrate GUEST [--to HOST] [--wait] [--quiesce MODE]\n"
	"                     [--quiesce-deadline DURATION] [--on-quiesce-miss abort|defer]\n"
	"                     [--io-lull RATE] [--io-lull-wait DURATION]\n"
	"\n"
	"Live-migrate GUEST, to HOST or to the least loaded host that may take it\n"
	"(never next to another rank of its job). Manual migrations go before\n"
	"health and periodic ones. GUEST may be a selector: a glob ('bt*') or a\n"
	"list of names, globs, host:NAME, job:NAME and all ('g1,g2,host:n3'); each\n"
	"guest it selects is migrated on its own.\n"
	"\n"
	"      --to HOST   the destination (default: migd chooses)\n"
	"      --wait      wait until it ends; a progress bar on a terminal; exit 1\n"
	"                  if it failed or was aborted\n"
	"      --quiesce MODE  hold the guest's sfs I/O around the switch-over through\n"
	"                  its migagent: required, best-effort or off (default: migd's)\n"
	"      --quiesce-deadline DURATION  time the agent has to drain (500ms, 2s)\n"
	"      --on-quiesce-miss abort|defer  a required quiesce that fails aborts the\n"
	"                  migration or queues it again later\n"
	"      --io-lull RATE  start only when the guest's I/O is below RATE (10m/s;\n"
	"                  0: do not wait)\n"
	"      --io-lull-wait DURATION  wait at most this long for that lull (30s)\n"
	"      --json      print the migration as JSON (with --wait: as it ended)\n"
	"  -h, --help      show this help\n";

const char evacuate_usage[] =
	"usage: migctl evacuate HOST [--wait]\n"
	"\n"
	"Migrate every guest off HOST, within the cluster's limits, and keep new\n"
	"guests off it. HOST may be a list of names and globs ('n1,n[5-8]').\n"
	"\n"
	"      --wait      wait until every migration ends; exit 1 if any failed or\n"
	"                  was aborted\n"
	"      --json      print the migrations as JSON\n"
	"  -h, --help      show this help\n";

const char abort_usage[] =
	"usage: migctl abort ID\n"
	"\n"
	"Abort migration ID, queued or running. A running migration stops and the\n"
	"guest stays on its source.\n";

const char migration_show_usage[] =
	"usage: migctl migration show ID [--json]\n"
	"\n"
	"One migration, queued, running or finished: its phases, the quiesce and\n"
	"resume of its guest's I/O, what was drained, the wait for an I/O lull.\n";

const char queue_usage[] =
	"usage: migctl queue [--json]\n"
	"\n"
	"The migrations queued and running, oldest first.\n";

/* ---- printing migrations ---- */

int migration_is_final(const char *state)
{
	return state && (strcmp(state, "completed") == 0 || strcmp(state, "failed") == 0 ||
			 strcmp(state, "aborted") == 0);
}

static const char *migration_note(json_t *m)
{
	const char *error = jstr(m, "error");
	return *error ? error : jstr(m, "reason");
}

char *migration_line(json_t *m, char *buf, size_t len)
{
	char total[32], down[32], bytes[32];
	const char *state = jstr_or(m, "state", "?");
	int n = snprintf(buf, len, "migration %" PRId64 " %s: %s %s -> %s", jint(m, "id", 0),
			 state, jstr_or(m, "guest", "?"), jstr_or(m, "src", "?"),
			 jstr_or(m, "dst", "?"));
	size_t used = n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
	if (strcmp(state, "completed") == 0) {
		n = snprintf(buf + used, len - used, ", total %s, downtime %s, %s in %" PRId64
			     " round%s", fmt_ms(jnum(m, "total_ms", -1), total, sizeof(total)),
			     fmt_ms(jnum(m, "downtime_ms", -1), down, sizeof(down)),
			     fmt_bytes(jint(m, "bytes", -1), bytes, sizeof(bytes)),
			     jint(m, "rounds", 0), jint(m, "rounds", 0) == 1 ? "" : "s");
		used += n < 0 ? 0 : (size_t)n < len - used ? (size_t)n : len - used - 1;
		if (*jstr(m, "quiesce") && strcmp(jstr(m, "quiesce"), "off") != 0)
			snprintf(buf + used, len - used, ", quiesce %s, resume %s",
				 jstr(m, "quiesce"), jstr_or(m, "resume", "-"));
	} else if (*migration_note(m)) {
		snprintf(buf + used, len - used, ": %s", migration_note(m));
	}
	return buf;
}

void migration_print_line(json_t *m, FILE *out)
{
	char line[1024];
	fprintf(out, "%s\n", migration_line(m, line, sizeof(line)));
}

/* "ok 12 ms", "missed 2.30 s", "-": an agent phase in one cell. */
static const char *phase_cell(json_t *m, const char *what, const char *ms_key, char *buf,
			      size_t len)
{
	char ms[32];
	const char *text = jstr(m, what);
	if (!*text)
		return "-";
	int word = (int)strcspn(text, ": (");
	if (jnum(m, ms_key, -1) >= 0)
		snprintf(buf, len, "%.*s %s", word, text, fmt_ms(jnum(m, ms_key, -1), ms, sizeof(ms)));
	else
		snprintf(buf, len, "%.*s", word, text);
	return buf;
}

void migration_print_table(json_t *arr, int long_format, FILE *out)
{
	static const char *const short_headers[] = { ">ID", "GUEST", "SRC", "DST", "STATE",
						     "PRIORITY", "POLICY", "QUEUED", "STARTED" };
	static const char *const long_headers[] = { ">ID", "GUEST", "SRC", "DST", "STATE",
						    "POLICY", "STARTED", ">LULL WAIT", "QUIESCE",
						    ">DRAINED", ">TOTAL", ">DOWNTIME", ">BYTES",
						    ">ROUNDS", "RESUME", "NOTE" };
	struct table *t = table_new(long_format ? 16 : 9, long_format ? long_headers
								      : short_headers);
	size_t i;
	json_t *m;
	json_array_foreach(arr, i, m) {
		char id[24], queued[32], started[32], total[32], down[32], bytes[32], rounds[24];
		snprintf(id, sizeof(id), "%" PRId64, jint(m, "id", 0));
		fmt_time_ns(jint(m, "queued_ns", 0), queued, sizeof(queued));
		fmt_time_ns(jint(m, "started_ns", 0), started, sizeof(started));
		if (!long_format) {
			table_add(t, id, jstr(m, "guest"), jstr(m, "src"), jstr(m, "dst"),
				  jstr(m, "state"), jstr(m, "priority"), jstr(m, "policy"), queued,
				  started);
			continue;
		}
		char lull[32], quiesce[64], drained[48], resume[64], dbytes[32];
		snprintf(rounds, sizeof(rounds), "%" PRId64, jint(m, "rounds", 0));
		if (jint(m, "drained_requests", -1) >= 0)
			snprintf(drained, sizeof(drained), "%s/%" PRId64 " req",
				 fmt_bytes(jint(m, "drained_bytes", -1), dbytes, sizeof(dbytes)),
				 jint(m, "drained_requests", 0));
		else
			snprintf(drained, sizeof(drained), "-");
		table_add(t, id, jstr(m, "guest"), jstr(m, "src"), jstr(m, "dst"), jstr(m, "state"),
			  jstr(m, "policy"), started,
			  jnum(m, "lull_wait_ms", -1) > 0
				  ? fmt_ms(jnum(m, "lull_wait_ms", -1), lull, sizeof(lull)) : "-",
			  phase_cell(m, "quiesce", "quiesce_ms", quiesce, sizeof(quiesce)), drained,
			  fmt_ms(jnum(m, "total_ms", -1), total, sizeof(total)),
			  fmt_ms(jnum(m, "downtime_ms", -1), down, sizeof(down)),
			  fmt_bytes(jint(m, "bytes", -1), bytes, sizeof(bytes)), rounds,
			  phase_cell(m, "resume", "resume_ms", resume, sizeof(resume)),
			  migration_note(m));
	}
	table_print(t, out);
	table_free(t);
}

/* ---- waiting ---- */

struct waiter {
	struct ctl *c;
	json_t *migrations;   /* array, replaced in place as they change */
	struct board *board;  /* NULL when not drawing */
	void *sub;            /* events, only when drawing */
	size_t finished, failed;
};

/* Ask for each unfinished migration again. Returns 0 or an exit code. */
static int wait_poll(struct waiter *w)
{
	size_t i;
	json_t *m;
	w->finished = w->failed = 0;
	json_array_foreach(w->migrations, i, m) {
		if (!migration_is_final(jstr(m, "state"))) {
			json_t *root, *result;
			json_t *args = json_pack("{s:I}", "id", (json_int_t)jint(m, "id", 0));
			int rc = ctl_call(w->c, "migration.show", args, &root, &result);
			if (rc != 0)
				return rc;
			json_array_set(w->migrations, i, result);
			board_migration(w->board, result);
			json_decref(root);
			m = json_array_get(w->migrations, i);
		}
		if (migration_is_final(jstr(m, "state"))) {
			w->finished++;
			w->failed += strcmp(jstr(m, "state"), "completed") != 0;
		}
	}
	return 0;
}

/* Let WAIT_POLL_MS pass, feeding progress events to the board meanwhile. */
static void wait_pause(struct waiter *w)
{
	if (!w->sub) {
		usleep(WAIT_POLL_MS * 1000);
		return;
	}
	uint64_t end = now_ms() + WAIT_POLL_MS;
	for (uint64_t now = now_ms(); now < end; now = now_ms()) {
		char *body = NULL;
		if (ctl_event_recv(w->sub, (long)(end - now), &body) <= 0)
			continue;
		json_t *ev = json_loads(body, 0, NULL);
		free(body);
		/* only our migrations: the board learns of others from no one else */
		int64_t id = jint(ev, "id", -1);
		size_t i;
		json_t *m;
		json_array_foreach(w->migrations, i, m)
			if (jint(m, "id", -2) == id)
				board_event(w->board, ev);
		json_decref(ev);
		board_draw(w->board, NULL, 0);
	}
}

/*
 * Wait for every migration in the array (replaced in place by its final
 * form). Returns 0 when all completed, MIGCTL_EXIT_FAIL when one failed or
 * was aborted, or the exit code of a failed request.
 */
static int wait_migrations(struct ctl *c, json_t *migrations)
{
	struct waiter w = { .c = c, .migrations = migrations };
	int code = 0;
	if (!c->quiet && isatty(STDERR_FILENO)) {
		w.board = board_new(stderr);
		w.sub = ctl_subscribe(c, &code); /* no bars from events is not fatal */
		size_t i;
		json_t *m;
		json_array_foreach(migrations, i, m)
			board_migration(w.board, m);
	}
	int rc;
	char summary[128];
	while ((rc = wait_poll(&w)) == 0 && w.finished < json_array_size(migrations)) {
		snprintf(summary, sizeof(summary), "waiting: %zu of %zu finished, %zu failed",
			 w.finished, json_array_size(migrations), w.failed);
		board_draw(w.board, json_array_size(migrations) > 1 ? summary : NULL, 0);
		wait_pause(&w);
	}
	board_clear(w.board);
	board_free(w.board);
	if (w.sub)
		zmq_close(w.sub);
	if (rc != 0)
		return rc;
	return w.failed ? MIGCTL_EXIT_FAIL : 0;
}

/* After a wait: the outcome; failures as errors on stderr. */
static void print_outcome(struct ctl *c, json_t *migrations)
{
	char line[1024];
	size_t i;
	json_t *m;
	json_array_foreach(migrations, i, m) {
		if (strcmp(jstr(m, "state"), "completed") != 0)
			ctl_error(c, "%s", migration_line(m, line, sizeof(line)));
		else if (!c->json)
			printf("%s\n", migration_line(m, line, sizeof(line)));
	}
}

/* ---- subcommands ---- */

enum { OPT_TO = OPT_SUBCMD_BASE, OPT_WAIT };

/* Options of migrate and evacuate: --wait, and --to and the knobs when
 * knobs is given (migrate). */
static int move_options(struct ctl *c, int argc, char **argv, const char *usage,
			const char **to_out, int *wait, json_t *knobs)
{
	static const struct option longopts[] = {
		{ "to", required_argument, NULL, OPT_TO },
		{ "wait", no_argument, NULL, OPT_WAIT },
		CTL_KNOB_LONGOPTS,
		CTL_COMMON_LONGOPTS,
		{ 0 },
	};
	int opt, rc;
	while ((opt = ctl_getopt(argc, argv, "", longopts)) != -1) {
		if (opt == OPT_WAIT) {
			*wait = 1;
		} else if (opt == OPT_TO && to_out) {
			*to_out = optarg;
		} else if (opt == OPT_TO || (!knobs && opt >= OPT_KNOB_BASE && opt < OPT_KNOB_END)) {
			return ctl_usage_error(c, "unknown option \"%s\"", argv[optind - 1]);
		} else if (opt >= OPT_KNOB_BASE && opt < OPT_KNOB_END) {
			if ((rc = ctl_knob_option(c, opt, optarg, knobs)) != CTL_CONTINUE)
				return rc;
		} else if ((rc = ctl_option(c, opt, argv, usage)) != CTL_CONTINUE) {
			return rc;
		}
	}
	return CTL_CONTINUE;
}

int ctl_knob_option(struct ctl *c, int opt, const char *text, json_t *args)
{
	double seconds;
	uint64_t bps;
	switch (opt) {
	case OPT_QUIESCE:
		if (strcmp(text, "required") != 0 && strcmp(text, "best-effort") != 0 &&
		    strcmp(text, "off") != 0)
			return ctl_usage_error(c, "--quiesce \"%s\": expected required, best-effort "
					       "or off", text);
		json_object_set_new(args, "quiesce", json_string(text));
		break;
	case OPT_ON_QUIESCE_MISS:
		if (strcmp(text, "abort") != 0 && strcmp(text, "defer") != 0)
			return ctl_usage_error(c, "--on-quiesce-miss \"%s\": expected abort or defer",
					       text);
		json_object_set_new(args, "on_quiesce_miss", json_string(text));
		break;
	case OPT_QUIESCE_DEADLINE:
	case OPT_IO_LULL_WAIT: {
		int deadline = opt == OPT_QUIESCE_DEADLINE;
		if (ctl_parse_duration(text, &seconds) < 0 || (deadline && !(seconds > 0)))
			return ctl_usage_error(c, "%s \"%s\": expected a duration like 500ms, 2s or "
					       "1m%s", deadline ? "--quiesce-deadline" : "--io-lull-wait",
					       text, deadline ? ", more than 0" : "");
		json_object_set_new(args, deadline ? "quiesce_deadline_s" : "io_lull_wait_s",
				    json_real(seconds));
		break;
	}
	case OPT_IO_LULL:
		if (ctl_parse_rate(text, &bps) < 0)
			return ctl_usage_error(c, "--io-lull \"%s\": expected a rate like 10m/s "
					       "(0: do not wait)", text);
		json_object_set_new(args, "io_lull_bps", json_integer((json_int_t)bps));
		break;
	}
	return CTL_CONTINUE;
}

/* ---- many guests or hosts at once ---- */

/* The names in list (host.list or guest.list objects) that match: a guest
 * selector when guests, else host patterns. */
static json_t *matching_names(json_t *list, const char *sel, int guests)
{
	json_t *names = json_array(), *o;
	size_t i;
	json_array_foreach(list, i, o) {
		const char *name = jstr(o, "name");
		if (guests ? selector_match(sel, name, jstr(o, "host"), jstr(o, "job"))
			   : selector_match_host(sel, name))
			json_array_append_new(names, json_string(name));
	}
	return names;
}

/* Ask cmd once per name (args plus key = name); every migration the
 * answers hold goes into migrations. A refusal is said and the rest go
 * on; returns MIGCTL_EXIT_FAIL after one, or the exit code when migd
 * stopped answering. */
static int request_each(struct ctl *c, const char *cmd, const char *key, json_t *names,
			json_t *args, json_t *migrations)
{
	size_t i;
	json_t *name;
	int refused = 0;
	json_array_foreach(names, i, name) {
		json_t *a = json_deep_copy(args), *root, *result;
		json_object_set(a, key, name);
		int rc = ctl_call(c, cmd, a, &root, &result);
		if (rc == MIGCTL_EXIT_FAIL) { /* refused: said by ctl_call */
			refused = 1;
			continue;
		}
		if (rc != 0)
			return rc;
		if (json_is_array(result))
			json_array_extend(migrations, result);
		else
			json_array_append(migrations, result);
		json_decref(root);
	}
	return refused ? MIGCTL_EXIT_FAIL : 0;
}

/* What migrate and evacuate show: the migrations, waited for with wait. */
static int show_migrations(struct ctl *c, json_t *migrations, int wait, int rc)
{
	if (wait && (rc == 0 || rc == MIGCTL_EXIT_FAIL)) {
		int wrc = wait_migrations(c, migrations);
		rc = rc ? rc : wrc;
	}
	if (c->json && (rc == 0 || rc == MIGCTL_EXIT_FAIL)) {
		int prc = ctl_print_json(c, migrations);
		rc = rc ? rc : prc;
	}
	if (rc != 0 && rc != MIGCTL_EXIT_FAIL)
		return rc; /* migd stopped answering: already said */
	if (wait)
		print_outcome(c, migrations);
	else if (!c->json && json_array_size(migrations))
		migration_print_table(migrations, 0, stdout);
	return rc;
}

/* `migctl migrate SELECTOR`: every guest it selects, each its own request
 * (and row), as if named one by one. */
static int migrate_selected(struct ctl *c, const char *sel, json_t *args, int wait)
{
	char err[300];
	json_t *list, *migrations = json_array();
	if (selector_check(sel, "GUEST", err, sizeof(err)) < 0) {
		json_decref(args);
		json_decref(migrations);
		return ctl_usage_error(c, "%s", err);
	}
	int rc = ctl_list(c, "guest.list", NULL, 0, NULL, &list);
	if (rc == 0) {
		json_t *names = matching_names(list, sel, 1);
		if (json_array_size(names) == 0) {
			ctl_error(c, "GUEST \"%s\" selects no guest", sel);
			rc = MIGCTL_EXIT_FAIL;
		} else {
			rc = request_each(c, "migrate", "guest", names, args, migrations);
			rc = show_migrations(c, migrations, wait, rc);
		}
		json_decref(names);
		json_decref(list);
	}
	json_decref(args);
	json_decref(migrations);
	return rc;
}

int cmd_migrate(struct ctl *c, int argc, char **argv)
{
	const char *to = NULL;
	json_t *args = json_object();
	int wait = 0, rc = move_options(c, argc, argv, migrate_usage, &to, &wait, args);
	if (rc == CTL_CONTINUE)
		rc = ctl_positional(c, argc, argv, 1, "GUEST");
	else if (rc == 0)
		rc = -1; /* --help: printed, nothing to send */
	if (rc != 0) {
		json_decref(args);
		return rc < 0 ? 0 : rc;
	}
	if (to)
		json_object_set_new(args, "to", json_string(to));
	if (!selector_is_name(argv[optind]))
		return migrate_selected(c, argv[optind], args, wait);
	json_object_set_new(args, "guest", json_string(argv[optind]));
	json_t *root, *result;
	if ((rc = ctl_call(c, "migrate", args, &root, &result)) != 0)
		return rc;
	json_t *migrations = json_pack("[O]", result);
	json_decref(root);
	if (wait) {
		rc = wait_migrations(c, migrations);
		if (rc == 0 || rc == MIGCTL_EXIT_FAIL)
			print_outcome(c, migrations);
	} else if (!c->json) {
		migration_print_line(json_array_get(migrations, 0), stdout);
	}
	if (c->json && (rc == 0 || rc == MIGCTL_EXIT_FAIL)) {
		int prc = ctl_print_json(c, json_array_get(migrations, 0));
		rc = rc ? rc : prc;
	}
	json_decref(migrations);
	return rc;
}

/* An evacuate request takes up to 1,000 hosts; its reply holds every
 * migration queued, about 750 bytes each, and must stay under the 4 MiB
 * message limit: a chunk holds at most 4,000 guests (by host.list's
 * counts; a host with more goes alone). */
#define EVACUATE_HOSTS 1000
#define EVACUATE_GUESTS 4000

/* The hosts of names from index i on that go in one request: *n of them. */
static size_t evacuate_chunk(json_t *names, json_t *guests, size_t i)
{
	size_t n = 0;
	json_int_t sum = 0;
	while (i + n < json_array_size(names) && n < EVACUATE_HOSTS) {
		json_int_t g = json_integer_value(json_array_get(guests, i + n));
		if (n && sum + g > EVACUATE_GUESTS)
			break;
		sum += g;
		n++;
	}
	return n;
}

/* Several hosts: each chunk one request, which migd takes in one
 * transaction that disables its hosts before it queues their guests. With
 * more than one chunk, every host is disabled first (host.disable of them
 * all, one transaction), so that no guest of the first chunk is planned
 * onto a host of the next. */
static int evacuate_many(struct ctl *c, json_t *names, json_t *guests, json_t *migrations)
{
	int rc = 0, refused = 0;
	if (evacuate_chunk(names, guests, 0) < json_array_size(names)) {
		json_t *root, *result;
		rc = ctl_call(c, "host.disable", json_pack("{s:O}", "names", names), &root,
			      &result);
		if (rc != 0)
			return rc; /* refused or no answer, said: nothing evacuated */
		json_decref(root);
	}
	for (size_t i = 0, n; (rc == 0 || rc == MIGCTL_EXIT_FAIL) && i < json_array_size(names);
	     i += n) {
		json_t *chunk = json_array(), *root, *result;
		n = evacuate_chunk(names, guests, i);
		for (size_t j = i; j < i + n; j++)
			json_array_append(chunk, json_array_get(names, j));
		/* the request takes its args */
		rc = ctl_call(c, "evacuate", json_pack("{s:o}", "hosts", chunk), &root, &result);
		if (rc == 0) {
			json_array_extend(migrations, result);
			json_decref(root);
		} else if (rc == MIGCTL_EXIT_FAIL) {
			refused = 1; /* said by ctl_call; the other chunks go on */
		}
	}
	return rc != 0 && rc != MIGCTL_EXIT_FAIL ? rc : refused ? MIGCTL_EXIT_FAIL : 0;
}

int cmd_evacuate(struct ctl *c, int argc, char **argv)
{
	int wait = 0, rc = move_options(c, argc, argv, evacuate_usage, NULL, &wait, NULL);
	if (rc != CTL_CONTINUE)
		return rc;
	if ((rc = ctl_positional(c, argc, argv, 1, "HOST")) != 0)
		return rc;
	const char *sel = argv[optind];
	char err[300];
	if (selector_check_hosts(sel, err, sizeof(err)) < 0)
		return ctl_usage_error(c, "%s", err);
	json_t *names, *guests = json_array(), *migrations = json_array();
	if (selector_is_name(sel)) {
		names = json_pack("[s]", sel);
	} else {
		json_t *list, *h;
		size_t i;
		if ((rc = ctl_list(c, "host.list", NULL, 0, NULL, &list)) != 0) {
			json_decref(guests);
			json_decref(migrations);
			return rc;
		}
		names = matching_names(list, sel, 0);
		json_array_foreach(list, i, h) /* counts of the hosts in names, in its order */
			if (selector_match_host(sel, jstr(h, "name")))
				json_array_append_new(guests, json_integer(jint(h, "guests", 0)));
		json_decref(list);
		if (json_array_size(names) == 0) {
			ctl_error(c, "HOST \"%s\" matches no host", sel);
			json_decref(names);
			json_decref(guests);
			json_decref(migrations);
			return MIGCTL_EXIT_FAIL;
		}
	}
	json_t *args = json_object();
	rc = json_array_size(names) == 1
		     ? request_each(c, "evacuate", "host", names, args, migrations)
		     : evacuate_many(c, names, guests, migrations);
	json_decref(args);
	json_decref(guests);
	if (rc == MIGCTL_EXIT_FAIL && json_array_size(names) == 1) {
		/* the one host was refused: said */
	} else if (json_array_size(migrations) == 0 && !c->json && (rc == 0)) {
		printf("%s %s run%s no guests: nothing to migrate\n",
		       json_array_size(names) == 1 ? "host" : "hosts", sel,
		       json_array_size(names) == 1 ? "s" : "");
	} else {
		rc = show_migrations(c, migrations, wait, rc);
	}
	json_decref(names);
	json_decref(migrations);
	return rc;
}

/* A command whose one argument is a migration ID (abort, migration show):
 * the common options, the ID, METHOD called with {"id": ID}, and its result
 * printed as JSON (--json) or by PRINT. */
static int cmd_with_id(struct ctl *c, int argc, char **argv, const char *usage,
		       const char *method, void (*print)(json_t *m))
{
	static const struct option longopts[] = { CTL_COMMON_LONGOPTS, { 0 } };
	int opt, rc;
	while ((opt = ctl_getopt(argc, argv, "", longopts)) != -1)
		if ((rc = ctl_option(c, opt, argv, usage)) != CTL_CONTINUE)
			return rc;
	if ((rc = ctl_positional(c, argc, argv, 1, "ID")) != 0)
		return rc;
	uint64_t id;
	if (ctl_parse_id(argv[optind], &id) < 0)
		return ctl_usage_error(c, "ID \"%s\": expected a migration id (a number from 1)",
				       argv[optind]);
	json_t *root, *result;
	if ((rc = ctl_call(c, method, json_pack("{s:I}", "id", (json_int_t)id), &root,
			   &result)) != 0)
		return rc;
	if (c->json)
		rc = ctl_print_json(c, result);
	else
		print(result);
	json_decref(root);
	return rc;
}

static void migration_print_line_stdout(json_t *m)
{
	migration_print_line(m, stdout);
}

int cmd_abort(struct ctl *c, int argc, char **argv)
{
	return cmd_with_id(c, argc, argv, abort_usage, "abort", migration_print_line_stdout);
}

#define QUEUE_PAGE 1000

int cmd_queue(struct ctl *c, int argc, char **argv)
{
	static const struct option longopts[] = { CTL_COMMON_LONGOPTS, { 0 } };
	int opt, rc;
	while ((opt = ctl_getopt(argc, argv, "", longopts)) != -1)
		if ((rc = ctl_option(c, opt, argv, queue_usage)) != CTL_CONTINUE)
			return rc;
	if ((rc = ctl_positional(c, argc, argv, 0, "")) != 0)
		return rc;
	/* a page at a time: an evacuation of 1,000 hosts queues 10,000 */
	json_t *result = json_array();
	json_int_t after = 0;
	for (;;) {
		json_t *root, *page;
		if ((rc = ctl_call(c, "queue", json_pack("{s:I, s:i}", "after", after, "limit",
							 QUEUE_PAGE), &root, &page)) != 0) {
			json_decref(result);
			return rc;
		}
		size_t n = json_array_size(page);
		json_array_extend(result, page);
		if (n)
			after = jint(json_array_get(page, n - 1), "id", 0);
		json_decref(root);
		if (n < QUEUE_PAGE)
			break;
	}
	if (c->json)
		rc = ctl_print_json(c, result);
	else if (json_array_size(result) == 0)
		printf("no migrations queued or running\n");
	else
		migration_print_table(result, 0, stdout);
	json_decref(result);
	return rc;
}

/* A field name as a label: "quiesce_ns" -> "quiesce at", "resume_ms" ->
 * "resume time", knobs prefixed "knob". */
static const char *mig_label(const char *prefix, const char *key, char *buf, size_t len)
{
	static const struct {
		const char *suffix, *as;
	} units[] = { { "_ns", " at" }, { "_ms", " time" }, { "_bps", "" } };
	size_t n = strlen(key);
	const char *as = "";
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		size_t u = strlen(units[i].suffix);
		if (n > u && strcmp(key + n - u, units[i].suffix) == 0) {
			n -= u;
			as = units[i].as;
			break;
		}
	}
	if (strcmp(key, "total_ms") == 0 || strcmp(key, "downtime_ms") == 0)
		as = "";
	snprintf(buf, len, "%s%.*s%s", prefix, (int)n, key, as);
	for (char *p = buf; *p; p++)
		*p = *p == '_' ? ' ' : *p;
	return buf;
}

/* One field's value as people read it. */
static const char *mig_value(json_t *o, const char *key, json_t *v, char *buf, size_t len)
{
	size_t n = strlen(key);
	if (json_is_number(v) && n > 3 && strcmp(key + n - 3, "_ms") == 0)
		return fmt_ms(json_number_value(v), buf, len);
	if (json_is_number(v) && n > 4 && strcmp(key + n - 4, "_bps") == 0)
		return fmt_rate(json_number_value(v), buf, len);
	if (strcmp(key, "bytes") == 0 || strcmp(key, "drained_bytes") == 0)
		return fmt_bytes(jint(o, key, -1), buf, len);
	return field_text(key, v, buf, len);
}

/* Every field of one migration, known ones as people read them. */
static void migration_print(json_t *m)
{
	char buf[320], label[64];
	const char *key;
	json_t *v;
	json_object_foreach(m, key, v) {
		if (json_is_null(v) || json_is_array(v))
			continue;
		if (json_is_object(v)) { /* the knobs */
			const char *k2;
			json_t *v2;
			json_object_foreach(v, k2, v2)
				print_kv(mig_label("knob ", k2, label, sizeof(label)),
					 mig_value(v, k2, v2, buf, sizeof(buf)));
			continue;
		}
		print_kv(mig_label("", key, label, sizeof(label)), mig_value(m, key, v, buf, sizeof(buf)));
	}
}

int cmd_migration_show(struct ctl *c, int argc, char **argv)
{
	return cmd_with_id(c, argc, argv, migration_show_usage, "migration.show",
			   migration_print);
}
