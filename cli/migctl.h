/*
 * migctl.h: what the parts of the migctl command share.
 *
 * migctl.c holds main, the global options and the dispatch table; each
 * other file holds one family of subcommands (hosts and guests, migrations,
 * policies, history and report, watch) or one service they all use: the
 * ZeroMQ request/reply client (migctl_client.c), and the parsing of what
 * people type and the printing of what they read (migctl_output.c,
 * migctl_progress.c). Every message reads "migctl: <subcommand>: ..." and
 * every failure maps to one of the exit codes below, documented in
 * migctl(1).
 */
#ifndef MIGCTL_H
#define MIGCTL_H

#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes, documented in migctl(1). */
#define MIGCTL_EXIT_OK 0
#define MIGCTL_EXIT_FAIL 1    /* migd refused the request, or the operation failed */
#define MIGCTL_EXIT_USAGE 2   /* bad option or argument */
#define MIGCTL_EXIT_CONNECT 3 /* migd did not answer (or the endpoint is unusable) */

/* Returned by ctl_option() when parsing should go on. */
#define CTL_CONTINUE (-1)

#define MIGCTL_DEFAULT_ENDPOINT "tcp://127.0.0.1:7700"
#define MIGCTL_DEFAULT_TIMEOUT_MS 5000

/* Long-only option values: the shared ones, then each subcommand's own. */
enum {
	OPT_JSON = 0x100,
	OPT_CONNECT,
	OPT_EVENTS,
	OPT_TIMEOUT,
	OPT_QUIET,
	OPT_KEY,
	OPT_SERVER_KEY,
	/* the migration knobs of migrate and policy add (ctl_knob_option) */
	OPT_KNOB_BASE = 0x180,
	OPT_QUIESCE = OPT_KNOB_BASE,
	OPT_QUIESCE_DEADLINE,
	OPT_ON_QUIESCE_MISS,
	OPT_IO_LULL,
	OPT_IO_LULL_WAIT,
	OPT_KNOB_END,
	OPT_SUBCMD_BASE = 0x200,
};

#define CTL_KNOB_LONGOPTS                                                    \
	{ "quiesce", required_argument, NULL, OPT_QUIESCE },                 \
	{ "quiesce-deadline", required_argument, NULL, OPT_QUIESCE_DEADLINE }, \
	{ "on-quiesce-miss", required_argument, NULL, OPT_ON_QUIESCE_MISS }, \
	{ "io-lull", required_argument, NULL, OPT_IO_LULL },                 \
	{ "io-lull-wait", required_argument, NULL, OPT_IO_LULL_WAIT }

/* Accepted by every subcommand, so `migctl host list --json` works too. */
#define CTL_COMMON_LONGOPTS                                       \
	{ "help", no_argument, NULL, 'h' },                       \
	{ "json", no_argument, NULL, OPT_JSON },                  \
	{ "quiet", no_argument, NULL, OPT_QUIET },                \
	{ "connect", required_argument, NULL, OPT_CONNECT },      \
	{ "events", required_argument, NULL, OPT_EVENTS },        \
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },           \
	{ "key", required_argument, NULL, OPT_KEY },                  \
	{ "server-key", required_argument, NULL, OPT_SERVER_KEY }

/* One run of the command. Zeroed, it means: defaults, nothing open. */
struct ctl {
	const char *name;          /* "host add", for messages */
	const char *where;         /* "hosts.txt:3" while reading a file's line, or NULL */
	const char *endpoint;      /* --connect, $MIGD_ENDPOINT or the default */
	const char *events;        /* --events, or NULL: the endpoint's port + 1 */
	long timeout_ms;           /* --timeout; 0 means wait forever */
	int timeout_set;
	int json;
	int quiet;                 /* no progress bars even on a terminal */
	void *zctx;                /* ZeroMQ context, made on first use */
	const char *key;           /* --key, $MIGCTL_KEY: our CURVE key pair file, or NULL */
	const char *server_key;    /* --server-key, $MIGD_SERVER_KEY: migd.pub to pin, or
				    * NULL: migd.pub beside the key */
	int keys_loaded;           /* 1: the two below are read; -1: reading failed */
	struct curve_keypair *client_kp;
	char server_z85[41];
};

/* ---- the subcommands (migctl.c) ---- */

struct subcmd {
	const char *noun;  /* "host", or the whole name of a one-word subcommand */
	const char *verb;  /* "add", or NULL */
	int (*run)(struct ctl *c, int argc, char **argv);
	const char *usage;
	const char *summary;
};
extern const struct subcmd subcmds[];
extern const size_t n_subcmds;
/* The subcommand argv[0] (and argv[1] for a noun) names; *words says how
 * many words it took. NULL when none matches. */
const struct subcmd *find_subcmd(int argc, char **argv, int *words);

/*
 * `migctl __complete WORD... CUR` (migctl_complete.c): the completions of
 * CUR after WORDs, one per line, for dist/completion/migctl. Names of
 * hosts, guests, policies and jobs are asked from migd. Exit 0.
 */
int ctl_complete(struct ctl *c, int argc, char **argv);

/* ---- messages and options (migctl.c) ---- */

/* "migctl: <name>: <message>\n" on stderr. */
void ctl_error(const struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like ctl_error plus a hint to --help; returns MIGCTL_EXIT_USAGE. */
int ctl_usage_error(const struct ctl *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* getopt_long with quiet errors and ':' reporting; optstring has neither. */
int ctl_getopt(int argc, char **argv, const char *optstring, const struct option *longopts);
/*
 * Handle an option every subcommand shares (CTL_COMMON_LONGOPTS) or a
 * getopt error. Returns CTL_CONTINUE, or the exit code to end with (0 after
 * printing usage for --help, MIGCTL_EXIT_USAGE after an error).
 */
int ctl_option(struct ctl *c, int opt, char **argv, const char *usage);
/* The positional arguments after options: exactly want of them, named in
 * what ("NAME", "GUEST") for the message when they are not. Returns 0 or
 * MIGCTL_EXIT_USAGE. */
int ctl_positional(const struct ctl *c, int argc, char **argv, int want, const char *what);

/* One knob option (OPT_QUIESCE...) checked and set on args as the API
 * spells it. CTL_CONTINUE or MIGCTL_EXIT_USAGE (said why). */
int ctl_knob_option(struct ctl *c, int opt, const char *text, json_t *args);

/* ---- talking to migd (migctl_client.c) ---- */

struct curve_keypair;

/*
 * Send {cmd, args} on a fresh REQ socket and wait --timeout for the reply.
 * Steals args (NULL for {}). On success returns 0 with *root owning the
 * reply and *result borrowed from it (the caller json_decrefs *root). On
 * failure prints the reason and returns the exit code: MIGCTL_EXIT_FAIL when
 * migd refused (its message, which names the bad value), MIGCTL_EXIT_CONNECT
 * when it did not answer in time.
 */
int ctl_call(struct ctl *c, const char *cmd, json_t *args, json_t **root, json_t **result);
/* ctl_call, except that a refusal is not printed: its message goes into
 * refusal (the return is still MIGCTL_EXIT_FAIL), for a caller that tries
 * another request after it (checkpoint create: a job, else a guest).
 * Other failures are said as by ctl_call; refusal is then "". */
int ctl_try_call(struct ctl *c, const char *cmd, json_t *args, json_t **root, json_t **result,
		 char *refusal, size_t refusal_len);
/* A SUB socket subscribed to every event on the events endpoint (--events,
 * else the --connect port + 1); NULL and an exit code in *code on failure
 * (said why). Close with zmq_close. */
void *ctl_subscribe(struct ctl *c, int *code);
/* Receive one event (two frames: topic, JSON body) if one arrives within
 * wait_ms. Returns 1 with a malloc'd NUL-ended body in *body, 0 on timeout
 * or interruption, -1 on a socket error. */
int ctl_event_recv(void *sub, long wait_ms, char **body);
/* keygen (migctl_keys.c): writes key pairs, talks to no migd */
int cmd_keygen(struct ctl *c, int argc, char **argv);
extern const char keygen_usage[];
/* Release the ZeroMQ context. */
void ctl_close(struct ctl *c);

/* ---- what people type (migctl_output.c) ---- */

/* "512m", "4g", "1.5g", "4096": bytes (k/m/g/t are powers of 1024; an
 * optional "b"/"ib" after the suffix). 0 or -EINVAL / -ERANGE. */
int ctl_parse_size(const char *text, uint64_t *out);
/* A size per second: "100m/s", "100m" (the "/s" is optional). */
int ctl_parse_rate(const char *text, uint64_t *out);
/* "30s", "4m", "1h", "1d", "1.5m", "250ms"; a plain number is seconds. */
int ctl_parse_duration(const char *text, double *out_s);
/* --since: an ISO date-time ("2024-05-01T12:00:00", "2024-05-01 12:00",
 * "2024-05-01", a trailing "Z" for UTC, local time otherwise) or a duration
 * ago (now_ns minus it). Returns 0 or -EINVAL. */
int ctl_parse_since(const char *text, int64_t now_ns, int64_t *out_ns);
/* --since TEXT into args as since_ns, a duration ago counted from the
 * cluster's now (status's sim_time_ns on a sim migd, else the wall clock).
 * Returns 0 or an exit code (a usage error names TEXT). */
int ctl_since_arg(struct ctl *c, const char *text, json_t *args);
/* A migration id: a positive integer. */
int ctl_parse_id(const char *text, uint64_t *out);

/* ---- what people read (migctl_output.c) ---- */

/* Print a JSON value on stdout, indented; it stays the caller's.
 * Returns 0 or MIGCTL_EXIT_FAIL (stdout not writable). */
int ctl_print_json(const struct ctl *c, json_t *value);

/* Field getters that tolerate absence: "" / "-" / 0 / -1 when missing. */
const char *jstr(json_t *o, const char *key);     /* "" when not a string */
const char *jstr_or(json_t *o, const char *key, const char *dflt);
int64_t jint(json_t *o, const char *key, int64_t dflt); /* reals truncate */
double jnum(json_t *o, const char *key, double dflt);
int jbool(json_t *o, const char *key, int dflt);

/* Formatting into buf, returning buf. */
char *fmt_bytes(int64_t bytes, char *buf, size_t len);          /* "1.5 GiB", "-" if < 0 */
char *fmt_rate(double bps, char *buf, size_t len);              /* "64 MiB/s" */
char *fmt_seconds(double s, char *buf, size_t len);             /* "4m", "30s", "1.5s" */
char *fmt_ms(double ms, char *buf, size_t len);                 /* "45 ms", "2.31 s" */
char *fmt_time_ns(int64_t ns, char *buf, size_t len);           /* "2024-05-01 12:00:03" */

/*
 * A text table: add cells row by row (NULL or "" prints as "-"), then print
 * with columns padded to their widest cell. A header written ">SIZE" is
 * right-aligned (numbers), any other left-aligned. At most 32 columns.
 */
struct table;
struct table *table_new(int n_cols, const char *const *headers);
void table_add(struct table *t, ...); /* n_cols strings */
void table_print(struct table *t, FILE *out);
void table_free(struct table *t);
/* A table printed a part at a time (a list that arrives in pages): the
 * first part prints the header, with widths from it and its rows; later
 * parts only rows, each column as wide as before or as its widest new cell.
 * Start with a zeroed struct. */
struct table_widths {
	int width[32];
	int started;
};
void table_print_part(struct table *t, FILE *out, struct table_widths *w);

/* "key:            value", one line; an empty value prints as "-". */
void print_kv(const char *key, const char *value);
/* A JSON field name as a label: "sim_time_ns" -> "sim time" (the unit
 * shows in the value as printed). Into label, returns label. */
const char *field_label(const char *key, char *label, size_t len);
/* A scalar JSON value as text ("" for arrays and objects); a *_ns integer
 * as a date-time. Into buf, returns buf. */
char *field_text(const char *key, json_t *value, char *buf, size_t len);

/* ---- migrations, shared by migrate, evacuate, queue, history, watch ---- */

int migration_is_final(const char *state);
/* One human line: "migration 17 completed: g1 n1 -> n2, total 12.30 s,
 * downtime 45 ms, 4.10 GiB in 5 rounds", or the error or reason of one that
 * did not complete. Into buf, returns buf; or printed with a newline. */
char *migration_line(json_t *m, char *buf, size_t len);
void migration_print_line(json_t *m, FILE *out);
/* A table of migrations: queue, evacuate, history (long adds the costs). */
void migration_print_table(json_t *arr, int long_format, FILE *out);

/* ---- lists (migctl_hosts.c) ---- */

/* A list command's (host.list, guest.list) whole list, a page of a
 * thousand at a time so that no reply nears the message limit at any
 * cluster size, or the one page that limit (non-zero) and after ask for.
 * Takes args (filters, may be NULL); *out is the caller's. 0 or an exit
 * code (said why). */
int ctl_list(struct ctl *c, const char *cmd, json_t *args, unsigned limit, const char *after,
	     json_t **out);

/* ---- many at once (migctl_import.c) ---- */

/* Turns one line of a --from file, split into words after argv[0] (the
 * subcommand's name), into the API's args of one item, with the same
 * parsing as the command line (optind is reset first). CTL_CONTINUE, or
 * an exit code after saying why (c->where names the file and line). */
typedef int (*ctl_line_fn)(struct ctl *c, int argc, char **argv, json_t *args);
/*
 * `migctl host add --from FILE` and `guest add --from FILE`: FILE ("-":
 * stdin) is a JSON array of the API's objects, or one item per line in
 * the command line's own words ("n1 --uri qmp:///n1"; # comments and blank
 * lines skipped). Sent as cmd ("host.add_many") a thousand at a time;
 * prints how many were added and each item that was not, with its line.
 * 0 when all were added, MIGCTL_EXIT_FAIL when some were not.
 */
int ctl_add_from(struct ctl *c, const char *path, const char *cmd, const char *noun,
		 ctl_line_fn parse_line);

/* ---- subcommands, one file per family ---- */

#define CTL_SUBCMD(fn) int fn(struct ctl *c, int argc, char **argv)
CTL_SUBCMD(cmd_host_add); CTL_SUBCMD(cmd_host_list); CTL_SUBCMD(cmd_host_show);
CTL_SUBCMD(cmd_host_rm); CTL_SUBCMD(cmd_host_enable); CTL_SUBCMD(cmd_host_disable);
CTL_SUBCMD(cmd_guest_add); CTL_SUBCMD(cmd_guest_list); CTL_SUBCMD(cmd_guest_show);
CTL_SUBCMD(cmd_migrate); CTL_SUBCMD(cmd_evacuate); CTL_SUBCMD(cmd_abort);
CTL_SUBCMD(cmd_queue);
CTL_SUBCMD(cmd_policy_add); CTL_SUBCMD(cmd_policy_list); CTL_SUBCMD(cmd_policy_show);
CTL_SUBCMD(cmd_policy_pause); CTL_SUBCMD(cmd_policy_resume); CTL_SUBCMD(cmd_policy_rm);
CTL_SUBCMD(cmd_history); CTL_SUBCMD(cmd_report); CTL_SUBCMD(cmd_status);
CTL_SUBCMD(cmd_watch); CTL_SUBCMD(cmd_events); CTL_SUBCMD(cmd_agent_list); CTL_SUBCMD(cmd_migration_show);
CTL_SUBCMD(cmd_health_report); CTL_SUBCMD(cmd_health_show); CTL_SUBCMD(cmd_health_rule);
CTL_SUBCMD(cmd_calibrate); CTL_SUBCMD(cmd_predict);
CTL_SUBCMD(cmd_job_set); CTL_SUBCMD(cmd_job_list);
CTL_SUBCMD(cmd_checkpoint_create); CTL_SUBCMD(cmd_checkpoint_list);
CTL_SUBCMD(cmd_checkpoint_show); CTL_SUBCMD(cmd_checkpoint_rm);
CTL_SUBCMD(cmd_checkpoint_predict);
CTL_SUBCMD(cmd_restore); CTL_SUBCMD(cmd_restore_list); CTL_SUBCMD(cmd_restore_show);

extern const char host_add_usage[], host_list_usage[], host_show_usage[], host_rm_usage[],
	host_enable_usage[], host_disable_usage[], guest_add_usage[], guest_list_usage[],
	guest_show_usage[], migrate_usage[], evacuate_usage[], abort_usage[], queue_usage[],
	policy_add_usage[], policy_list_usage[], policy_show_usage[], policy_pause_usage[],
	policy_resume_usage[], policy_rm_usage[], history_usage[], report_usage[],
	status_usage[], watch_usage[], events_usage[], health_report_usage[], health_show_usage[],
	health_rule_usage[], agent_list_usage[], migration_show_usage[], calibrate_usage[],
	predict_usage[], job_set_usage[], job_list_usage[], checkpoint_create_usage[],
	checkpoint_list_usage[], checkpoint_show_usage[], checkpoint_rm_usage[], restore_usage[],
	checkpoint_predict_usage[],
	restore_list_usage[], restore_show_usage[];

#endif
