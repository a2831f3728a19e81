/*
 * migctl_ckpt: jobs, checkpoints and restores (the daemon side is
 * daemon/api_ckpt.c and daemon/ckpt.c).
 *
 *   job set JOB --data sfs:/PATH      job list
 *   checkpoint create|list|show|rm    restore CHECKPOINT | --from-manifest PATH
 *   restore list|show
 *
 * A checkpoint or restore is one row whose JSON grows as it runs (phases,
 * per-guest bytes and checksums), so --wait polls checkpoint.show or
 * restore.show every 200 ms, like `migrate --wait` polls migration.show: a
 * fresh request each time, so a migd that dies mid-wait gives exit 3
 * within --timeout rather than a hang. migd publishes no progress between
 * two states of a checkpoint, so the event stream would tell nothing the
 * rows do not. On a terminal each phase is printed on stderr as it ends,
 * with its time; piped, only the outcome.
 *
 * `restore` is both an action (restore 7) and a noun (restore list,
 * restore show 3): a CHECKPOINT is always a number, so the words list and
 * show can never be one (the table in migctl.c tries them first).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migctl.h"
#include "util.h"

#define WAIT_POLL_MS 200
#define SHA_SHOWN 12 /* hex digits of a SHA-256 in a table */

const char job_set_usage[] =
	"usage: migctl job set JOB --data sfs:/PATH\n"
	"\n"
	"Set the sfs directory that holds JOB's data: a checkpoint of JOB takes an\n"
	"sfs snapshot of it at the cut, and a restore rolls it back to that snapshot,\n"
	"so the files and the guests' memory agree. --data \"\" clears it (the\n"
	"job's checkpoints then hold the guests only). JOB is made when new.\n"
	"\n"
	"      --data sfs:/PATH  the job's data directory in sfs (\"\": none)\n"
	"      --json            print the job as JSON\n"
	"  -h, --help            show this help\n";

const char job_list_usage[] =
	"usage: migctl job list [--json]\n"
	"\n"
	"List jobs: their guests and sfs data path.\n";

const char checkpoint_create_usage[] =
	"usage: migctl checkpoint create JOB [--keep N] [--wait]\n"
	"       migctl checkpoint create GUEST... [--keep N] [--wait]\n"
	"\n"
	"Checkpoint a job at one consistent cut: quiesce the sfs I/O of every guest\n"
	"(through its migagent), pause every guest, snapshot the job's sfs data\n"
	"path, save each guest's state into the checkpoint store, resume, write the\n"
	"manifest. One argument names a job; when migd knows no such job it is\n"
	"taken as a guest (a job wins over a guest of the same name). Several\n"
	"arguments are always guests.\n"
	"\n"
	"      --keep N    keep the job's N newest complete checkpoints, removing\n"
	"                  older ones (default: migd.conf checkpoint.keep)\n"
	"      --wait      follow it until it completes or fails; on a terminal each\n"
	"                  phase (quiesce, pause, snapshot, save, resume, manifest) is\n"
	"                  printed with its time as it ends; exit 1 if it failed\n"
	"      --timeout MS  how long to wait for each answer of migd (not the\n"
	"                  checkpoint: --wait waits for as long as it takes)\n"
	"      --json      print the checkpoint as JSON (with --wait: as it ended)\n"
	"  -h, --help      show this help\n";

const char checkpoint_list_usage[] =
	"usage: migctl checkpoint list [JOB] [--limit N] [--json]\n"
	"\n"
	"List checkpoints, newest first, of JOB or of every job: state, when asked,\n"
	"guests, bytes stored, how long the job was paused (PAUSE) and how long its\n"
	"I/O was held (LOST), the save mode and the sfs snapshot.\n"
	"\n"
	"      --limit N   at most N (default: all)\n";

const char checkpoint_show_usage[] =
	"usage: migctl checkpoint show ID [--json]\n"
	"\n"
	"One checkpoint: every field, its phases with their times, and per guest\n"
	"its host, image size, SHA-256, save mode, pause and quiesce outcome.\n";

const char checkpoint_rm_usage[] =
	"usage: migctl checkpoint rm ID\n"
	"\n"
	"Remove a finished checkpoint: its images, manifest and sfs snapshot, then\n"
	"its row. Refused while it runs or a restore uses it.\n";

const char restore_usage[] =
	"usage: migctl restore CHECKPOINT [--hosts H1,H2,...] [--skip-rollback] [--wait]\n"
	"       migctl restore --from-manifest STORE_PATH [--hosts ...] [--wait]\n"
	"       migctl restore list [JOB] [--limit N]\n"
	"       migctl restore show ID\n"
	"\n"
	"Restore a job from checkpoint CHECKPOINT (a number, see checkpoint list),\n"
	"or from a manifest in the checkpoint store (JOB/ID/manifest.json), for a\n"
	"checkpoint whose row migd no longer has. migd checks the manifest, every\n"
	"image's length and SHA-256, the sfs snapshot and the target hosts' memory\n"
	"before it stops anything; then it stops what still runs of the job, rolls\n"
	"its sfs data path back to the checkpoint's snapshot, loads every guest and\n"
	"resumes them together. `restore list` and `restore show ID` list restores:\n"
	"a CHECKPOINT is always a number, so \"list\" and \"show\" are never one.\n"
	"\n"
	"      --hosts H1,H2,...  the hosts to load the guests on, in rank order\n"
	"                  (default: the guests' hosts while healthy, else chosen)\n"
	"      --from-manifest STORE_PATH  a manifest instead of a CHECKPOINT\n"
	"      --skip-rollback  leave the sfs data path as it is. Only for showing\n"
	"                  why the rollback exists: the guests restart from the cut\n"
	"                  while the files hold what was written after it, so work\n"
	"                  redone after the restore is written twice (duplicated\n"
	"                  data). Never use it to recover a job.\n"
	"      --wait      follow it until it completes or fails, each state on a\n"
	"                  terminal; exit 1 if it failed\n"
	"      --json      print the restore as JSON (with --wait: as it ended)\n"
	"  -h, --help      show this help\n";

const char restore_list_usage[] =
	"usage: migctl restore list [JOB] [--limit N] [--json]\n"
	"\n"
	"List restores, newest first, of JOB or of every job: the checkpoint, the\n"
	"state, whether the data path was rolled back, load and total times, the\n"
	"work lost (from the checkpoint's cut to the failure).\n"
	"\n"
	"      --limit N   at most N (default: all)\n";

const char restore_show_usage[] =
	"usage: migctl restore show ID [--json]\n"
	"\n"
	"One restore: every field, and per guest its host and image.\n";

/* ---- options ---- */

enum { OPT_DATA = OPT_SUBCMD_BASE, OPT_KEEP, OPT_WAIT, OPT_LIMIT, OPT_HOSTS,
       OPT_SKIP_ROLLBACK, OPT_FROM_MANIFEST };

/* What the subcommands of this file may be given; each takes a subset. */
struct ck_opts {
	const char *data;          /* --data, or NULL */
	uint64_t keep;             /* --keep; 0: not given */
	uint64_t limit;            /* --limit; 0: all */
	int wait;
	int skip_rollback;
	const char *hosts;         /* --hosts, or NULL */
	const char *manifest;      /* --from-manifest, or NULL */
};

/* Parse argv's options, accepting those in allowed (OPT_* values, ended
 * by 0) and the common ones. CTL_CONTINUE or an exit code (0 after --help). */
static int ck_options(struct ctl *c, int argc, char **argv, const char *usage,
		      const int *allowed, struct ck_opts *o)
{
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, OPT_DATA },
		{ "keep", required_argument, NULL, OPT_KEEP },
		{ "wait", no_argument, NULL, OPT_WAIT },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "hosts", required_argument, NULL, OPT_HOSTS },
		{ "skip-rollback", no_argument, NULL, OPT_SKIP_ROLLBACK },
		{ "from-manifest", required_argument, NULL, OPT_FROM_MANIFEST },
		CTL_COMMON_LONGOPTS,
		{ 0 },
	};
	int opt, rc;
	while ((opt = ctl_getopt(argc, argv, "", longopts)) != -1) {
		int ok = opt < OPT_SUBCMD_BASE;
		for (const int *a = allowed; !ok && *a; a++)
			ok = *a == opt;
		for (const struct option *l = longopts; !ok && l->name; l++)
			if (l->val == opt) /* ours, but not this subcommand's */
				return ctl_usage_error(c, "unknown option \"--%s\"", l->name);
		switch (opt) {
		case OPT_DATA: o->data = optarg; break;
		case OPT_WAIT: o->wait = 1; break;
		case OPT_SKIP_ROLLBACK: o->skip_rollback = 1; break;
		case OPT_HOSTS: o->hosts = optarg; break;
		case OPT_FROM_MANIFEST: o->manifest = optarg; break;
		case OPT_KEEP:
			if (parse_u64(optarg, 1, 100000, &o->keep) < 0)
				return ctl_usage_error(c, "--keep \"%s\": expected a number of "
						       "checkpoints from 1 to 100000", optarg);
			break;
		case OPT_LIMIT:
			if (parse_u64(optarg, 1, 1000000, &o->limit) < 0)
				return ctl_usage_error(c, "--limit \"%s\": expected a number from 1 "
						       "to 1000000", optarg);
			break;
		default:
			if ((rc = ctl_option(c, opt, argv, usage)) != CTL_CONTINUE)
				return rc;
		}
	}
	return CTL_CONTINUE;
}

/* The ID argument of show and rm: a checkpoint's or a restore's. */
static int id_argument(struct ctl *c, int argc, char **argv, const char *what, uint64_t *id)
{
	int rc = ctl_positional(c, argc, argv, 1, "ID");
	if (rc != 0)
		return rc;
	if (ctl_parse_id(argv[optind], id) < 0)
		return ctl_usage_error(c, "ID \"%s\": expected a %s id (a number from 1)",
				       argv[optind], what);
	return 0;
}

/* ---- printing ---- */

static const char *int_text(int64_t v, char *buf, size_t len)
{
	if (v < 0)
		return "-";
	snprintf(buf, len, "%" PRId64, v);
	return buf;
}

static const char *ms_text(json_t *o, const char *key, char *buf, size_t len)
{
	return fmt_ms(jnum(o, key, -1), buf, len);
}

/* "a1b2c3d4e5f6": a checksum's first digits, enough to tell images apart. */
static const char *sha_short(json_t *g, char *buf, size_t len)
{
	snprintf(buf, len, "%.*s", SHA_SHOWN, jstr(g, "sha256"));
	return buf;
}

/* "ok 12 ms", "missed", "no-agent": an agent phase of a guest in one cell. */
static const char *agent_cell(json_t *g, const char *what, const char *ms_key, char *buf,
			      size_t len)
{
	char ms[32];
	const char *text = jstr(g, what);
	int word = (int)strcspn(text, ": (");
	if (!*text)
		return "-";
	if (jnum(g, ms_key, -1) >= 0)
		snprintf(buf, len, "%.*s %s", word, text, fmt_ms(jnum(g, ms_key, -1), ms, sizeof(ms)));
	else
		snprintf(buf, len, "%.*s", word, text);
	return buf;
}

static const char *guest_count(json_t *row, char *buf, size_t len)
{
	return int_text((int64_t)json_array_size(json_object_get(row, "guests")), buf, len);
}

static void checkpoint_table(json_t *arr)
{
	static const char *const headers[] = { ">ID", "JOB", "STATE", "WHEN", ">GUESTS", ">BYTES",
					       ">PAUSE", ">LOST", "MODE", "SNAPSHOT" };
	struct table *t = table_new(10, headers);
	size_t i;
	json_t *r;
	json_array_foreach(arr, i, r) {
		char id[24], when[32], guests[24], bytes[32], pause[32], lost[32];
		table_add(t, int_text(jint(r, "id", -1), id, sizeof(id)), jstr(r, "job"),
			  jstr(r, "state"), fmt_time_ns(jint(r, "requested_ns", 0), when, sizeof(when)),
			  guest_count(r, guests, sizeof(guests)),
			  fmt_bytes(jint(r, "bytes", -1), bytes, sizeof(bytes)),
			  ms_text(r, "job_pause_ms", pause, sizeof(pause)),
			  ms_text(r, "job_lost_ms", lost, sizeof(lost)), jstr(r, "mode"),
			  jstr(r, "snapshot"));
	}
	table_print(t, stdout);
	table_free(t);
}

static void restore_table(json_t *arr)
{
	static const char *const headers[] = { ">ID", "JOB", ">CHECKPOINT", "STATE", "WHEN",
					       ">GUESTS", "ROLLBACK", ">LOAD", ">TOTAL",
					       ">LOST WORK", "NOTE" };
	struct table *t = table_new(11, headers);
	size_t i;
	json_t *r;
	json_array_foreach(arr, i, r) {
		char id[24], ck[24], when[32], guests[24], load[32], total[32], lost[32];
		const char *note = jstr_or(r, "error", jstr(r, "reason"));
		json_t *rollback = json_object_get(r, "rollback");
		table_add(t, int_text(jint(r, "id", -1), id, sizeof(id)), jstr(r, "job"),
			  int_text(jint(r, "checkpoint", -1), ck, sizeof(ck)), jstr(r, "state"),
			  fmt_time_ns(jint(r, "requested_ns", 0), when, sizeof(when)),
			  guest_count(r, guests, sizeof(guests)),
			  !rollback ? "-" : json_is_true(rollback) ? "yes" : "SKIPPED",
			  ms_text(r, "load_ms", load, sizeof(load)),
			  ms_text(r, "total_ms", total, sizeof(total)),
			  ms_text(r, "lost_work_ms", lost, sizeof(lost)), note);
	}
	table_print(t, stdout);
	table_free(t);
}

/* One guest line per guest of a checkpoint (long) or a restore. */
static void guests_table(json_t *row, int is_checkpoint)
{
	static const char *const ck_headers[] = { "GUEST", "HOST", ">RANK", ">MEMORY", ">BYTES",
						  "SHA256", "MODE", ">PAUSE", "QUIESCE", "RESUME",
						  "ERROR" };
	static const char *const rs_headers[] = { "GUEST", "HOST", ">RANK", ">MEMORY", ">BYTES",
						  "SHA256", "IMAGE", "ERROR" };
	json_t *guests = json_object_get(row, "guests");
	if (!json_array_size(guests))
		return;
	struct table *t = table_new(is_checkpoint ? 11 : 8, is_checkpoint ? ck_headers
									 : rs_headers);
	size_t i;
	json_t *g;
	json_array_foreach(guests, i, g) {
		char rank[24], mem[32], bytes[32], sha[SHA_SHOWN + 1], pause[32], q[64], res[64];
		int_text(jint(g, "rank", -1), rank, sizeof(rank));
		fmt_bytes(jint(g, "memory_bytes", -1), mem, sizeof(mem));
		fmt_bytes(jint(g, "bytes", -1), bytes, sizeof(bytes));
		sha_short(g, sha, sizeof(sha));
		if (is_checkpoint)
			table_add(t, jstr(g, "name"), jstr(g, "host"), rank, mem, bytes, sha,
				  jstr(g, "mode"), ms_text(g, "pause_ms", pause, sizeof(pause)),
				  agent_cell(g, "quiesce", "quiesce_ms", q, sizeof(q)),
				  agent_cell(g, "resume", "resume_ms", res, sizeof(res)),
				  jstr(g, "error"));
		else
			table_add(t, jstr(g, "name"), jstr(g, "host"), rank, mem, bytes, sha,
				  jstr(g, "image"), jstr(g, "error"));
	}
	putchar('\n');
	table_print(t, stdout);
	table_free(t);
}

/* A row's field as people read it: times, sizes, durations, flags. */
static const char *row_value(const char *key, json_t *v, char *buf, size_t len)
{
	size_t n = strlen(key);
	if (json_is_number(v) && n > 3 && strcmp(key + n - 3, "_ms") == 0)
		return fmt_ms(json_number_value(v), buf, len);
	if (json_is_integer(v) && (strcmp(key, "bytes") == 0 ||
				       (n > 6 && strcmp(key + n - 6, "_bytes") == 0)))
		return fmt_bytes(json_integer_value(v), buf, len);
	if (json_is_number(v) && strcmp(key, "mb_s") == 0) {
		snprintf(buf, len, "%.1f MB/s", json_number_value(v));
		return buf;
	}
	return field_text(key, v, buf, len);
}

/* A field name as a label: "requested_ns" -> "requested", "job_pause_ms"
 * -> "job pause" (the value says its unit), "mb_s" -> "rate". */
static const char *row_label(const char *key, char *label, size_t len)
{
	size_t n = strlen(key);
	if (strcmp(key, "mb_s") == 0)
		n = 0, key = "rate";
	else if (n > 3 && (strcmp(key + n - 3, "_ms") == 0 || strcmp(key + n - 3, "_ns") == 0))
		n -= 3;
	else
		n = 0;
	snprintf(label, len, "%.*s", n ? (int)n : (int)strlen(key), key);
	for (char *p = label; *p; p++)
		*p = *p == '_' ? ' ' : *p;
	return label;
}

/* Every scalar field (known ones first, in order), then the phases, then
 * the guests. */
static void row_print(json_t *row, int is_checkpoint)
{
	static const char *const first[] = {
		"id", "job", "state", "checkpoint", "policy", "reason", "requested_ns", "ended_ns",
		"cut_ns", "failure_ns", "error", "snapshot", "rollback", "store", "store_path",
		"data_path", "quiesce", "keep", "mode", "bytes", "mb_s", "job_pause_ms",
		"job_lost_ms", "load_ms", "total_ms", "lost_work_ms",
	};
	char buf[1100], label[64];
	for (size_t i = 0; i < ARRAY_SIZE(first); i++) {
		json_t *v = json_object_get(row, first[i]);
		if (v && !json_is_null(v))
			print_kv(row_label(first[i], label, sizeof(label)),
				 row_value(first[i], v, buf, sizeof(buf)));
	}
	const char *key;
	json_t *v;
	json_object_foreach(row, key, v) {
		int known = 0;
		for (size_t i = 0; i < ARRAY_SIZE(first); i++)
			known |= strcmp(key, first[i]) == 0;
		if (!known && !json_is_object(v) && !json_is_array(v) && !json_is_null(v))
			print_kv(row_label(key, label, sizeof(label)),
				 row_value(key, v, buf, sizeof(buf)));
	}
	json_t *phases = json_object_get(row, "phases");
	if (json_object_size(phases)) {
		static const char *const order[] = { "quiesce_ms", "pause_ms", "snapshot_ms",
						     "capture_ms", "write_ms", "resume_ms",
						     "total_ms" };
		printf("phases:\n");
		for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
			json_t *ms = json_object_get(phases, order[i]);
			if (ms)
				printf("  %-10s %10s\n", row_label(order[i], label, sizeof(label)),
				       fmt_ms(json_number_value(ms), buf, sizeof(buf)));
		}
	}
	guests_table(row, is_checkpoint);
}

/* "checkpoint 7 of bt-io: completed, 4 guests, 4.0 GiB, job paused 60 ms". */
static void checkpoint_line(json_t *r, char *buf, size_t len)
{
	char guests[24], bytes[32], pause[32], lost[32];
	int n = snprintf(buf, len, "checkpoint %" PRId64 " of %s: %s, %s guests",
			 jint(r, "id", 0), jstr_or(r, "job", "?"), jstr_or(r, "state", "?"),
			 guest_count(r, guests, sizeof(guests)));
	size_t used = n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
	if (strcmp(jstr(r, "state"), "completed") == 0)
		snprintf(buf + used, len - used, ", %s, job paused %s, I/O held %s%s%s",
			 fmt_bytes(jint(r, "bytes", -1), bytes, sizeof(bytes)),
			 ms_text(r, "job_pause_ms", pause, sizeof(pause)),
			 ms_text(r, "job_lost_ms", lost, sizeof(lost)),
			 *jstr(r, "snapshot") ? ", snapshot " : "", jstr(r, "snapshot"));
	else if (*jstr(r, "error"))
		snprintf(buf + used, len - used, ": %s", jstr(r, "error"));
}

static void restore_line(json_t *r, char *buf, size_t len)
{
	char guests[24], total[32], lost[32];
	int n = snprintf(buf, len, "restore %" PRId64 " of %s from checkpoint %" PRId64 ": %s, "
			 "%s guests", jint(r, "id", 0), jstr_or(r, "job", "?"),
			 jint(r, "checkpoint", 0), jstr_or(r, "state", "?"),
			 guest_count(r, guests, sizeof(guests)));
	size_t used = n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
	if (json_is_false(json_object_get(r, "rollback"))) {
		n = snprintf(buf + used, len - used, ", rollback SKIPPED");
		used += n < 0 ? 0 : (size_t)n < len - used ? (size_t)n : len - used - 1;
	}
	if (strcmp(jstr(r, "state"), "completed") == 0) {
		n = snprintf(buf + used, len - used, ", total %s",
			     ms_text(r, "total_ms", total, sizeof(total)));
		used += n < 0 ? 0 : (size_t)n < len - used ? (size_t)n : len - used - 1;
		if (jnum(r, "lost_work_ms", -1) >= 0)
			snprintf(buf + used, len - used, ", work lost %s",
				 ms_text(r, "lost_work_ms", lost, sizeof(lost)));
	} else if (*jstr(r, "error")) {
		snprintf(buf + used, len - used, ": %s", jstr(r, "error"));
	}
}

/* ---- waiting ---- */

static int is_final(const char *state)
{
	return strcmp(state, "completed") == 0 || strcmp(state, "failed") == 0;
}

/* What --wait has said so far, on stderr when it is a terminal. */
struct follow {
	int tty;
	unsigned said;            /* bit i: phase i printed */
	char state[24];           /* the state on the status line, "" when none */
	uint64_t start_ms;
	char last[24];            /* a restore's state when last seen */
	uint64_t last_ms;         /* and when it was first seen */
};

/* The status line ("  saving ... 3.2 s"), redrawn in place. */
static void follow_status(struct follow *f, const char *state)
{
	if (!f->tty)
		return;
	snprintf(f->state, sizeof(f->state), "%s", state);
	fprintf(stderr, "\r\033[K  %s ... %.1f s", state, (double)(now_ms() - f->start_ms) / 1e3);
	fflush(stderr);
}

static void follow_line(struct follow *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void follow_line(struct follow *f, const char *fmt, ...)
{
	va_list ap;
	if (!f->tty)
		return;
	fputs("\r\033[K", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	f->state[0] = '\0';
}

/* "4 ok", "3 ok, 1 no-agent": the guests' outcomes of an agent phase. */
static const char *outcomes(json_t *row, const char *key, char *buf, size_t len)
{
	const char *words[8];
	unsigned counts[8], n = 0;
	size_t i, used = 0;
	json_t *g;
	json_array_foreach(json_object_get(row, "guests"), i, g) {
		const char *text = jstr(g, key);
		size_t len_text = strcspn(text, ": (");
		unsigned w = 0;
		if (!*text)
			continue;
		while (w < n && (strcspn(words[w], ": (") != len_text ||
				 strncmp(words[w], text, len_text) != 0))
			w++;
		if (w == n && n < 8) {
			words[n] = text;
			counts[n++] = 0;
		}
		if (w < n)
			counts[w]++;
	}
	buf[0] = '\0';
	for (unsigned w = 0; w < n && used < len; w++) {
		int k = snprintf(buf + used, len - used, "%s%u %.*s", w ? ", " : "", counts[w],
				 (int)strcspn(words[w], ": ("), words[w]);
		used += k < 0 ? 0 : (size_t)k;
	}
	return buf;
}

/* Print each phase of a checkpoint that has ended since the last call. */
static void follow_checkpoint(struct follow *f, json_t *r)
{
	json_t *ph = json_object_get(r, "phases");
	char ms[32], extra[256], b[32];
	if (!f->tty)
		return;
	if (!(f->said & 1) && json_object_get(ph, "quiesce_ms")) {
		f->said |= 1;
		follow_line(f, "  quiesce   %9s  %s", ms_text(ph, "quiesce_ms", ms, sizeof(ms)),
			    outcomes(r, "quiesce", extra, sizeof(extra)));
	}
	if (!(f->said & 2) && json_object_get(ph, "pause_ms")) {
		f->said |= 2;
		follow_line(f, "  pause     %9s  %zu guests", ms_text(ph, "pause_ms", ms, sizeof(ms)),
			    json_array_size(json_object_get(r, "guests")));
	}
	if (!(f->said & 4) && json_object_get(ph, "snapshot_ms")) {
		f->said |= 4;
		follow_line(f, "  snapshot  %9s  %s", ms_text(ph, "snapshot_ms", ms, sizeof(ms)),
			    *jstr(r, "snapshot") ? jstr(r, "snapshot") : "(no data path: none)");
	}
	if (!(f->said & 8) && json_object_get(ph, "write_ms")) {
		f->said |= 8;
		snprintf(extra, sizeof(extra), "%s", fmt_bytes(jint(r, "bytes", -1), b, sizeof(b)));
		if (jnum(r, "mb_s", -1) >= 0)
			snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), " at %.0f MB/s",
				 jnum(r, "mb_s", 0));
		if (*jstr(r, "mode"))
			snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), " (%s)",
				 jstr(r, "mode"));
		follow_line(f, "  save      %9s  %s", ms_text(ph, "write_ms", ms, sizeof(ms)), extra);
	}
	if (!(f->said & 16) && json_object_get(ph, "resume_ms")) {
		f->said |= 16;
		follow_line(f, "  resume    %9s  %s", ms_text(ph, "resume_ms", ms, sizeof(ms)),
			    outcomes(r, "resume", extra, sizeof(extra)));
	}
	if (!(f->said & 32) && strcmp(jstr(r, "state"), "completed") == 0) {
		f->said |= 32;
		follow_line(f, "  manifest  %9s  %s/manifest.json", "",
			    jstr_or(r, "store_path", "?"));
	}
}

/* A restore's states have no times of their own in the row: each one
 * seen is printed with how long it lasted as seen from here. */
static void follow_restore(struct follow *f, json_t *r)
{
	const char *state = jstr(r, "state");
	char ms[32];
	if (!f->tty || strcmp(f->last, state) == 0)
		return;
	if (*f->last && strcmp(f->last, "queued") != 0)
		follow_line(f, "  %-10s %9s", f->last,
			    fmt_ms((double)(now_ms() - f->last_ms), ms, sizeof(ms)));
	snprintf(f->last, sizeof(f->last), "%s", state);
	f->last_ms = now_ms();
}

/*
 * Poll cmd ("checkpoint.show") for the row with id until it is completed
 * or failed; *row is then the caller's. Returns 0 (whatever the outcome)
 * or the exit code of a request that failed.
 */
static int follow_row(struct ctl *c, const char *cmd, int64_t id, json_t **row)
{
	int is_checkpoint = strcmp(cmd, "checkpoint.show") == 0;
	struct follow f = { .tty = !c->quiet && isatty(STDERR_FILENO), .start_ms = now_ms() };
	for (;;) {
		json_t *root, *result;
		int rc = ctl_call(c, cmd, json_pack("{s:I}", "id", (json_int_t)id), &root, &result);
		if (rc != 0) {
			if (f.tty && *f.state)
				fputc('\n', stderr);
			return rc;
		}
		if (f.tty && !f.said) {
			follow_line(&f, "%s %" PRId64 " of %s, %zu guests:",
				    is_checkpoint ? "checkpoint" : "restore", id, jstr(result, "job"),
				    json_array_size(json_object_get(result, "guests")));
			f.said = 1u << 31; /* the header; phases take the low bits */
		}
		if (is_checkpoint)
			follow_checkpoint(&f, result);
		else
			follow_restore(&f, result);
		const char *state = jstr(result, "state");
		if (is_final(state)) {
			if (f.tty && *f.state)
				fputs("\r\033[K", stderr);
			*row = json_incref(result);
			json_decref(root);
			return 0;
		}
		follow_status(&f, state);
		json_decref(root);
		usleep(WAIT_POLL_MS * 1000);
	}
}

/* What create and restore print: the row (followed with wait), as JSON or
 * a line; a failed one is an error. Takes row. */
static int report_row(struct ctl *c, json_t *row, int wait, const char *show_cmd)
{
	int is_checkpoint = strcmp(show_cmd, "checkpoint.show") == 0, rc = 0;
	char line[1400];
	if (wait) {
		json_t *last = NULL;
		rc = follow_row(c, show_cmd, jint(row, "id", 0), &last);
		json_decref(row);
		if (rc != 0)
			return rc;
		row = last;
	}
	if (is_checkpoint)
		checkpoint_line(row, line, sizeof(line));
	else
		restore_line(row, line, sizeof(line));
	if (c->json)
		rc = ctl_print_json(c, row);
	if (strcmp(jstr(row, "state"), "failed") == 0) {
		ctl_error(c, "%s", line);
		rc = MIGCTL_EXIT_FAIL;
	} else if (!c->json) {
		printf("%s\n", line);
	}
	json_decref(row);
	return rc;
}

/* ---- job ---- */

/* A data path as people give it: "sfs:/jobs/bt" (migd keeps "/jobs/bt"). */
static const char *data_text(json_t *job, char *buf, size_t len)
{
	const char *data = jstr(job, "data");
	snprintf(buf, len, "%s%s", *data && strncmp(data, "sfs:", 4) != 0 ? "sfs:" : "", data);
	return buf;
}

int cmd_job_set(struct ctl *c, int argc, char **argv)
{
	static const int allowed[] = { OPT_DATA, 0 };
	struct ck_opts o = { 0 };
	int rc = ck_options(c, argc, argv, job_set_usage, allowed, &o);
	if (rc != CTL_CONTINUE)
		return rc;
	if ((rc = ctl_positional(c, argc, argv, 1, "JOB")) != 0)
		return rc;
	if (!o.data)
		return ctl_usage_error(c, "--data sfs:/PATH is required (--data \"\" clears it)");
	if (*o.data && strncmp(o.data, "sfs:/", 5) != 0 && o.data[0] != '/')
		return ctl_usage_error(c, "--data \"%s\": expected sfs:/PATH, a directory of sfs "
				       "(or \"\" to clear)", o.data);
	char data[1100];
	json_t *root, *result;
	json_t *args = json_pack("{s:s, s:s}", "name", argv[optind], "data", o.data);
	if ((rc = ctl_call(c, "job.set", args, &root, &result)) != 0)
		return rc;
	if (c->json)
		rc = ctl_print_json(c, result);
	else if (*jstr(result, "data"))
		printf("job %s: data %s\n", argv[optind], data_text(result, data, sizeof(data)));
	else
		printf("job %s: no data path\n", argv[optind]);
	json_decref(root);
	return rc;
}

int cmd_job_list(struct ctl *c, int argc, char **argv)
{
	static const int allowed[] = { 0 };
	static const char *const headers[] = { "JOB", ">GUESTS", "DATA" };
	struct ck_opts o = { 0 };
	int rc = ck_options(c, argc, argv, job_list_usage, allowed, &o);
	if (rc != CTL_CONTINUE)
		return rc;
	if ((rc = ctl_positional(c, argc, argv, 0, "")) != 0)
		return rc;
	json_t *root, *result;
	if ((rc = ctl_call(c, "job.list", NULL, &root, &result)) != 0)
		return rc;
	if (c->json) {
		rc = ctl_print_json(c, result);
	} else if (json_array_size(result) == 0) {
		printf("no jobs\n");
	} else {
		struct table *t = table_new(3, headers);
		size_t i;
		json_t *j;
		json_array_foreach(result, i, j) {
			char n[24], data[1100];
			table_add(t, jstr(j, "name"), int_text(jint(j, "guests", -1), n, sizeof(n)),
				  data_text(j, data, sizeof(data)));
		}
		table_print(t, stdout);
		table_free(t);
	}
	json_decref(root);
	return rc;
}

/* ---- checkpoint ---- */

/* checkpoint.create with args plus {job: name}; when migd knows no such
 * job, again with {guests: [name]}. Steals args. */
static int create_job_or_guest(struct ctl *c, const char *name, json_t *args, json_t **root,
			       json_t **result)
{
	char job_err[1100], guest_err[1100];
	json_t *as_guest = json_deep_copy(args);
	json_object_set_new(args, "job", json_string(name));
	int rc = ctl_try_call(c, "checkpoint.create", args, root, result, job_err,
			      sizeof(job_err));
	if (rc != MIGCTL_EXIT_FAIL || !strstr(job_err, "no such job")) {
		if (rc == MIGCTL_EXIT_FAIL && *job_err)
			ctl_error(c, "%s", job_err);
		json_decref(as_guest);
		return rc;
	}
	json_object_set_new(as_guest, "guests", json_pack("[s]", name));
	rc = ctl_try_call(c, "checkpoint.create", as_guest, root, result, guest_err,
			  sizeof(guest_err));
	if (rc == MIGCTL_EXIT_FAIL && *guest_err) {
		if (strstr(guest_err, "no such guest"))
			ctl_error(c, "\"%s\" is neither a job nor a guest (%s; %s)", name, job_err,
				  guest_err);
		else
			ctl_error(c, "%s", guest_err);
	}
	return rc;
}

int cmd_checkpoint_create(struct ctl *c, int argc, char **argv)
{
	static const int allowed[] = { OPT_KEEP, OPT_WAIT, 0 };
	struct ck_opts o = { 0 };
	int rc = ck_options(c, argc, argv, checkpoint_create_usage, allowed, &o);
	if (rc != CTL_CONTINUE)
		return rc;
	if (argc - optind < 1)
		return ctl_usage_error(c, "JOB (or one or more GUESTs) is required");
	json_t *args = json_object(), *root, *result;
	if (o.keep)
		json_object_set_new(args, "keep", json_integer((json_int_t)o.keep));
	if (argc - optind == 1) {
		rc = create_job_or_guest(c, argv[optind], args, &root, &result);
	} else {
		json_t *guests = json_array();
		for (int i = optind; i < argc; i++)
			json_array_append_new(guests, json_string(argv[i]));
		json_object_set_new(args, "guests", guests);
		rc = ctl_call(c, "checkpoint.create", args, &root, &result);
	}
	if (rc != 0)
		return rc;
	json_t *row = json_incref(result);
	json_decref(root);
	return report_row(c, row, o.wait, "checkpoint.show");
}

/* checkpoint list and restore list: [JOB] [--limit N]. */
static int list_rows(struct ctl *c, int argc, char **argv, const char *usage, const char *cmd,
		     void (*table)(json_t *), const char *none)
{
	static const int allowed[] = { OPT_LIMIT, 0 };
	struct ck_opts o = { 0 };
	int rc = ck_options(c, argc, argv, usage, allowed, &o);
	if (rc != CTL_CONTINUE)
		return rc;
	if (argc - optind > 1)
		return ctl_usage_error(c, "unexpected argument \"%s\"", argv[optind + 1]);
	json_t *args = json_object(), *root, *result;
	if (argc - optind == 1)
		json_object_set_new(args, "job", json_string(argv[optind]));
	if (o.limit)
		json_object_set_new(args, "limit", json_integer((json_int_t)o.limit));
	if ((rc = ctl_call(c, cmd, args, &root, &result)) != 0)
		return rc;
	if (c->json)
		rc = ctl_print_json(c, result);
	else if (json_array_size(result) == 0)
		printf("%s\n", none);
	else
		table(result);
	json_decref(root);
	return rc;
}

int cmd_checkpoint_list(struct ctl *c, int argc, char **argv)
{
	return list_rows(c, argc, argv, checkpoint_list_usage, "checkpoint.list",
			 checkpoint_table, "no checkpoints");
}

static void checkpoint_print(json_t *row)
{
	row_print(row, 1);
}

static void restore_print(json_t *row)
{
	row_print(row, 0);
}

/* show and rm: one ID, cmd called with {id}, the result printed. */
static int with_id(struct ctl *c, int argc, char **argv, const char *usage, const char *cmd,
		   void (*print)(json_t *row))
{
	static const int allowed[] = { 0 };
	struct ck_opts o = { 0 };
	uint64_t id;
	int is_restore = strncmp(cmd, "restore", 7) == 0;
	int rc = ck_options(c, argc, argv, usage, allowed, &o);
	if (rc != CTL_CONTINUE)
		return rc;
	if ((rc = id_argument(c, argc, argv, is_restore ? "restore" : "checkpoint", &id)) != 0)
		return rc;
	json_t *root, *result;
	if ((rc = ctl_call(c, cmd, json_pack("{s:I}", "id", (json_int_t)id), &root, &result)) != 0)
		return rc;
	if (c->json)
		rc = ctl_print_json(c, result);
	else if (print)
		print(result);
	else
		printf("checkpoint %" PRIu64 " removed\n", id);
	json_decref(root);
	return rc;
}

int cmd_checkpoint_show(struct ctl *c, int argc, char **argv)
{
	return with_id(c, argc, argv, checkpoint_show_usage, "checkpoint.show", checkpoint_print);
}

int cmd_checkpoint_rm(struct ctl *c, int argc, char **argv)
{
	return with_id(c, argc, argv, checkpoint_rm_usage, "checkpoint.rm", NULL);
}

/* ---- restore ---- */

/* "n1,n2,n3" as a JSON array of names; NULL after saying what is wrong. */
static json_t *host_list(struct ctl *c, const char *text)
{
	json_t *hosts = json_array();
	const char *p = text;
	for (;;) {
		size_t n = strcspn(p, ",");
		if (n == 0) {
			ctl_usage_error(c, "--hosts \"%s\": expected host names separated by commas",
					text);
			json_decref(hosts);
			return NULL;
		}
		json_array_append_new(hosts, json_stringn(p, n));
		if (!p[n])
			return hosts;
		p += n + 1;
	}
}

int cmd_restore(struct ctl *c, int argc, char **argv)
{
	static const int allowed[] = { OPT_HOSTS, OPT_SKIP_ROLLBACK, OPT_WAIT, OPT_FROM_MANIFEST,
				       0 };
	struct ck_opts o = { 0 };
	uint64_t id = 0;
	int rc = ck_options(c, argc, argv, restore_usage, allowed, &o);
	if (rc != CTL_CONTINUE)
		return rc;
	int have = argc - optind;
	if (o.manifest && have > 0)
		return ctl_usage_error(c, "give a CHECKPOINT or --from-manifest, not both (\"%s\")",
				       argv[optind]);
	if (!o.manifest && have == 0)
		return ctl_usage_error(c, "CHECKPOINT (an id, see checkpoint list) or "
				       "--from-manifest STORE_PATH is required");
	if (have > 1)
		return ctl_usage_error(c, "unexpected argument \"%s\"", argv[optind + 1]);
	if (o.manifest && !*o.manifest)
		return ctl_usage_error(c, "--from-manifest \"\": expected a path in the store "
				       "like JOB/ID/manifest.json");
	if (!o.manifest && ctl_parse_id(argv[optind], &id) < 0)
		return ctl_usage_error(c, "CHECKPOINT \"%s\": expected a checkpoint id (a number "
				       "from 1); to list restores: migctl restore list",
				       argv[optind]);
	json_t *args = json_object(), *root, *result;
	if (o.manifest)
		json_object_set_new(args, "manifest", json_string(o.manifest));
	else
		json_object_set_new(args, "checkpoint", json_integer((json_int_t)id));
	if (o.hosts) {
		json_t *hosts = host_list(c, o.hosts);
		if (!hosts) {
			json_decref(args);
			return MIGCTL_EXIT_USAGE;
		}
		json_object_set_new(args, "hosts", hosts);
	}
	if (o.skip_rollback) {
		json_object_set_new(args, "skip_rollback", json_true());
		ctl_error(c, "warning: --skip-rollback: the job's sfs data is not rolled back to "
			  "the checkpoint, so work redone after the restore is written twice");
	}
	if ((rc = ctl_call(c, "restore", args, &root, &result)) != 0)
		return rc;
	json_t *row = json_incref(result);
	json_decref(root);
	return report_row(c, row, o.wait, "restore.show");
}

int cmd_restore_list(struct ctl *c, int argc, char **argv)
{
	return list_rows(c, argc, argv, restore_list_usage, "restore.list", restore_table,
			 "no restores");
}

int cmd_restore_show(struct ctl *c, int argc, char **argv)
{
	return with_id(c, argc, argv, restore_show_usage, "restore.show", restore_print);
}
