/*
 * migctl_hosts: the host and guest subcommands.
 *
 * Most of them take one NAME, send one request and print one object or a
 * table, so they share option parsing (name_command) and differ in the
 * printer. Sizes are checked here, where the option that carried them is
 * known, so "--memory 4x" is a usage error naming the option; everything
 * else (a duplicate name, an unknown host) is migd's to refuse, with a
 * message that names the value.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "curve_keys.h"
#include "migctl.h"
#include "util.h"

const char host_add_usage[] =
	"usage: migctl host add NAME --uri URI [--max-outbound N] [--max-inbound N]\n"
	"                       [--memory SIZE] [--health-hook CMD]\n"
	"                       [--health-interval DURATION] [--health-timeout DURATION]\n"
	"       migctl host add --from FILE\n"
	"\n"
	"Add a host. The URI names its hypervisor backend, e.g. sim:///n1?link=1gbit\n"
	"for a simulated host with a 1 Gbit/s link.\n"
	"\n"
	"      --from FILE         add every host in FILE (- for stdin), in one transaction\n"
	"                          per thousand: a line per host with the words that would\n"
	"                          follow `migctl host add` (# comments), or a JSON array of\n"
	"                          host.add objects; a host that cannot be added is named\n"
	"                          with its line and the others are added (exit 1)\n"
	"      --uri URI           the backend URI (required)\n"
	"      --max-outbound N    migrations from this host at once (default: migd's)\n"
	"      --max-inbound N     migrations to this host at once (default: migd's)\n"
	"      --memory SIZE       memory for guests, e.g. 256g (default: the backend's)\n"
	"      --health-hook CMD   run CMD (sh -c) for sensor readings of this host;\n"
	"                          MIGD_HOST and MIGD_HOST_URI are set (see migd(8))\n"
	"      --health-interval D how often (default: migd.conf health_interval, 30s)\n"
	"      --health-timeout D  kill the hook after D (default: health_timeout, 10s)\n"
	"      --json              print the new host as JSON\n"
	"  -h, --help              show this help\n";

const char host_list_usage[] =
	"usage: migctl host list [--limit N [--after NAME]] [--json]\n"
	"\n"
	"List hosts: URI, enabled, health, guests, memory used and limits.\n"
	"\n"
	"      --limit N      only the first N (1-10000) in name order\n"
	"      --after NAME   with --limit: the page after NAME\n";

const char host_show_usage[] =
	"usage: migctl host show NAME [--json]\n"
	"\n"
	"Show one host and the guests it runs.\n";

const char host_rm_usage[] =
	"usage: migctl host rm NAME\n"
	"\n"
	"Remove a host. It must run no guests: evacuate it first.\n";

const char host_enable_usage[] =
	"usage: migctl host enable NAME\n"
	"\n"
	"Let a disabled host take guests again. A degraded host returns to service\n"
	"too (its health hook degrades it again if a rule is still broken).\n";

const char host_disable_usage[] =
	"usage: migctl host disable NAME\n"
	"\n"
	"Keep new guests off a host (its own guests stay until migrated).\n";

const char guest_add_usage[] =
	"usage: migctl guest add NAME --host HOST --memory SIZE [--dirty-rate SIZE/s]\n"
	"                        [--job JOB --rank N] [--agent-key KEY]\n"
	"       migctl guest add --from FILE\n"
	"\n"
	"Add a guest running on HOST; on backends that can (sim), create it.\n"
	"\n"
	"      --from FILE          add every guest in FILE (- for stdin), as host add\n"
	"                           --from: a line per guest (\"g1 --host n1 --memory 4g\")\n"
	"                           or a JSON array of guest.add objects\n"
	"      --host HOST          where it runs (required)\n"
	"      --memory SIZE        its memory: 512m, 4g, 1.5g (required)\n"
	"      --dirty-rate SIZE/s  how fast it dirties pages, e.g. 64m/s (sim)\n"
	"      --job JOB            the MPI job it is a rank of (with --rank)\n"
	"      --rank N             its rank in JOB; ranks of a job are kept apart\n"
	"      --agent-key KEY      the public key (Z85, or a .pub file) of the guest's\n"
	"                           migagent; without it a migd with keys makes a key\n"
	"                           pair for the guest (migd(8), SECURITY)\n"
	"      --json               print the new guest as JSON\n"
	"  -h, --help               show this help\n";

const char guest_list_usage[] =
	"usage: migctl guest list [--host HOST] [--job JOB] [--limit N [--after NAME]]\n"
	"                         [--json]\n"
	"\n"
	"List guests in name order, optionally only those on HOST or of JOB. The\n"
	"list is fetched and printed a page at a time, so it has no size limit.\n"
	"\n"
	"      --limit N      only the first N (1-10000)\n"
	"      --after NAME   with --limit: the page after NAME\n";

const char guest_show_usage[] =
	"usage: migctl guest show NAME [--json]\n"
	"\n"
	"Show one guest: host, memory, dirty rate, job and rank, state.\n";

const char agent_list_usage[] =
	"usage: migctl agent list [--json]\n"
	"\n"
	"The migagents migd has heard from since it started: guest, connected, version,\n"
	"how long ago it last spoke, read and write rates, requests in flight, whether\n"
	"its guest's I/O is quiesced. An agent silent for 3 s is no longer connected.\n";

/* ---- printers ---- */

/* "up, 12 MiB/s" / "gone" / "-": an agent in one cell. */
static const char *agent_cell(json_t *a, char *buf, size_t len)
{
	char rate[32];
	if (!json_is_object(a) || !json_object_get(a, "last_seen_ms_ago"))
		return "-";
	if (!jbool(a, "connected", 0))
		return "gone";
	double bps = jnum(a, "read_bps", 0) + jnum(a, "write_bps", 0);
	snprintf(buf, len, "up, %s%s", fmt_rate(bps, rate, sizeof(rate)),
		 jbool(a, "quiesced", 0) ? ", quiesced" : "");
	return buf;
}

static void agent_print(json_t *a)
{
	char buf[64];
	if (!json_is_object(a) || !json_object_get(a, "last_seen_ms_ago")) {
		print_kv("agent", json_is_object(a) ? "never heard from"
						    : "- (migd listens for no agents)");
		return;
	}
	print_kv("agent", jbool(a, "connected", 0) ? "connected" : "gone");
	print_kv("agent version", jstr(a, "version"));
	snprintf(buf, sizeof(buf), "%.1f s ago", (double)jint(a, "last_seen_ms_ago", 0) / 1e3);
	print_kv("agent seen", buf);
	print_kv("io read", fmt_rate(jnum(a, "read_bps", -1), buf, sizeof(buf)));
	print_kv("io write", fmt_rate(jnum(a, "write_bps", -1), buf, sizeof(buf)));
	snprintf(buf, sizeof(buf), "%" PRId64, jint(a, "inflight", 0));
	print_kv("io in flight", buf);
	print_kv("io quiesced", jbool(a, "quiesced", 0) ? "yes" : "no");
}

static void agent_table(json_t *arr)
{
	static const char *const headers[] = { "GUEST", "CONNECTED", "VERSION", ">SEEN",
					       ">READ", ">WRITE", ">INFLIGHT", "QUIESCED" };
	struct table *t = table_new(8, headers);
	size_t i;
	json_t *a;
	json_array_foreach(arr, i, a) {
		char seen[32], rd[32], wr[32], inflight[24];
		snprintf(seen, sizeof(seen), "%.1f s ago", (double)jint(a, "last_seen_ms_ago", 0) / 1e3);
		snprintf(inflight, sizeof(inflight), "%" PRId64, jint(a, "inflight", 0));
		table_add(t, jstr(a, "guest"), jbool(a, "connected", 0) ? "yes" : "no",
			  jstr(a, "version"), seen, fmt_rate(jnum(a, "read_bps", -1), rd, sizeof(rd)),
			  fmt_rate(jnum(a, "write_bps", -1), wr, sizeof(wr)), inflight,
			  jbool(a, "quiesced", 0) ? "yes" : "no");
	}
	table_print(t, stdout);
	table_free(t);
}

static void host_print(json_t *h)
{
	char buf[64], used[32], total[32];
	print_kv("name", jstr(h, "name"));
	print_kv("uri", jstr(h, "uri"));
	print_kv("enabled", jbool(h, "enabled", 1) ? "yes" : "no");
	print_kv("health", jstr(h, "health"));
	if (*jstr(h, "health_reason"))
		print_kv("health reason", jstr(h, "health_reason"));
	if (*jstr(h, "health_hook"))
		print_kv("health hook", jstr(h, "health_hook"));
	snprintf(buf, sizeof(buf), "%s used of %s",
		 fmt_bytes(jint(h, "memory_used_bytes", -1), used, sizeof(used)),
		 fmt_bytes(jint(h, "memory_bytes", -1), total, sizeof(total)));
	print_kv("memory", buf);
	char out[24] = "default", in[24] = "default";
	if (jint(h, "max_outbound", 0) > 0)
		snprintf(out, sizeof(out), "%" PRId64, jint(h, "max_outbound", 0));
	if (jint(h, "max_inbound", 0) > 0)
		snprintf(in, sizeof(in), "%" PRId64, jint(h, "max_inbound", 0));
	snprintf(buf, sizeof(buf), "%s outbound, %s inbound", out, in);
	print_kv("limits", buf);
	json_t *guests = json_object_get(h, "guests");
	if (json_is_array(guests)) {
		size_t i;
		json_t *g;
		printf("%-16s %zu\n", "guests:", json_array_size(guests));
		json_array_foreach(guests, i, g)
			printf("  %s\n", json_is_string(g) ? json_string_value(g) : jstr(g, "name"));
	} else {
		snprintf(buf, sizeof(buf), "%" PRId64, jint(h, "guests", 0));
		print_kv("guests", buf);
	}
}

static void host_table(json_t *arr, struct table_widths *w)
{
	static const char *const headers[] = { "NAME", "URI", "ENABLED", "HEALTH", ">GUESTS",
					       ">MEM USED", ">MEMORY", ">OUT", ">IN" };
	struct table *t = table_new(9, headers);
	size_t i;
	json_t *h;
	json_array_foreach(arr, i, h) {
		char guests[24], used[32], total[32], out[24] = "-", in[24] = "-";
		json_t *g = json_object_get(h, "guests");
		snprintf(guests, sizeof(guests), "%zu",
			 json_is_array(g) ? json_array_size(g) : (size_t)jint(h, "guests", 0));
		if (jint(h, "max_outbound", 0) > 0)
			snprintf(out, sizeof(out), "%" PRId64, jint(h, "max_outbound", 0));
		if (jint(h, "max_inbound", 0) > 0)
			snprintf(in, sizeof(in), "%" PRId64, jint(h, "max_inbound", 0));
		table_add(t, jstr(h, "name"), jstr(h, "uri"), jbool(h, "enabled", 1) ? "yes" : "no",
			  jstr(h, "health"), guests,
			  fmt_bytes(jint(h, "memory_used_bytes", -1), used, sizeof(used)),
			  fmt_bytes(jint(h, "memory_bytes", -1), total, sizeof(total)), out, in);
	}
	table_print_part(t, stdout, w);
	table_free(t);
}

static void job_rank_text(json_t *g, char *buf, size_t len)
{
	const char *job = jstr(g, "job");
	if (*job)
		snprintf(buf, len, "%" PRId64, jint(g, "rank", 0));
	else
		snprintf(buf, len, "-");
}

static void guest_print(json_t *g)
{
	char buf[64];
	print_kv("name", jstr(g, "name"));
	print_kv("host", jstr(g, "host"));
	print_kv("state", jstr(g, "state"));
	print_kv("memory", fmt_bytes(jint(g, "memory_bytes", -1), buf, sizeof(buf)));
	print_kv("dirty rate", fmt_rate(jnum(g, "dirty_rate_bps", -1), buf, sizeof(buf)));
	print_kv("job", jstr(g, "job"));
	job_rank_text(g, buf, sizeof(buf));
	print_kv("rank", buf);
	print_kv("agent key", jstr(g, "agent_key"));
	json_t *b = json_object_get(g, "backend");
	if (json_is_object(b) && json_object_get(b, "error")) {
		print_kv("backend", jstr(b, "error"));
	} else if (json_is_object(b)) {
		snprintf(buf, sizeof(buf), "on %s, %s", jstr(b, "host"),
			 jbool(b, "running", 0) ? "running" : "paused");
		print_kv("backend", buf);
		print_kv("address", *jstr(b, "address") ? jstr(b, "address") : "-");
	}
	agent_print(json_object_get(g, "agent"));
}

static void guest_table(json_t *arr, struct table_widths *w)
{
	static const char *const headers[] = { "NAME", "HOST", ">MEMORY", ">DIRTY RATE", "JOB",
					       ">RANK", "STATE", "AGENT" };
	struct table *t = table_new(8, headers);
	size_t i;
	json_t *g;
	json_array_foreach(arr, i, g) {
		char mem[32], rate[40], rank[24], agent[64];
		job_rank_text(g, rank, sizeof(rank));
		table_add(t, jstr(g, "name"), jstr(g, "host"),
			  fmt_bytes(jint(g, "memory_bytes", -1), mem, sizeof(mem)),
			  fmt_rate(jnum(g, "dirty_rate_bps", -1), rate, sizeof(rate)), jstr(g, "job"),
			  rank, jstr(g, "state"), agent_cell(json_object_get(g, "agent"), agent,
							     sizeof(agent)));
	}
	table_print_part(t, stdout, w);
	table_free(t);
}

/* ---- shared shapes ---- */

/* Options of a subcommand that takes nothing but the common ones. */
static int common_options(struct ctl *c, int argc, char **argv, const char *usage)
{
	static const struct option longopts[] = { CTL_COMMON_LONGOPTS, { 0 } };
	int opt, rc;
	while ((opt = ctl_getopt(argc, argv, "", longopts)) != -1)
		if ((rc = ctl_option(c, opt, argv, usage)) != CTL_CONTINUE)
			return rc;
	return CTL_CONTINUE;
}

/* Send cmd with args and show the result: JSON, print(result), or done. */
static int request_and_print(struct ctl *c, const char *cmd, json_t *args,
			     void (*print)(json_t *), const char *done_fmt, const char *name)
{
	json_t *root, *result;
	int rc = ctl_call(c, cmd, args, &root, &result);
	if (rc != 0)
		return rc;
	if (c->json)
		rc = ctl_print_json(c, result);
	else if (print)
		print(result);
	else
		printf(done_fmt, name);
	json_decref(root);
	return rc;
}

enum { OPT_URI = OPT_SUBCMD_BASE, OPT_MAX_OUT, OPT_MAX_IN, OPT_MEMORY, OPT_HOST, OPT_DIRTY,
       OPT_JOB, OPT_RANK, OPT_HOOK, OPT_HOOK_INTERVAL, OPT_HOOK_TIMEOUT, OPT_LIMIT, OPT_AFTER,
       OPT_FROM, OPT_AGENT_KEY };

/* Rows per request of a whole list: 5,000 guests are about 1 MB of reply,
 * far under the message limit, and 100,000 take 20 requests. */
#define LIST_PAGE 5000

typedef int (*page_fn)(void *arg, json_t *page);

/* Every page of cmd (one page of limit when limit is set), each handed to
 * fn as it comes. Takes args. */
static int list_pages(struct ctl *c, const char *cmd, json_t *args, unsigned limit,
		      const char *after, page_fn fn, void *arg)
{
	char cursor[256];
	int rc = 0;
	snprintf(cursor, sizeof(cursor), "%s", after ? after : "");
	for (;;) {
		json_t *a = args ? json_deep_copy(args) : json_object();
		json_t *root, *result;
		json_object_set_new(a, "limit", json_integer(limit ? limit : LIST_PAGE));
		if (*cursor)
			json_object_set_new(a, "after", json_string(cursor));
		if ((rc = ctl_call(c, cmd, a, &root, &result)) != 0)
			break;
		size_t n = json_array_size(result);
		if (n)
			snprintf(cursor, sizeof(cursor), "%s",
				 jstr(json_array_get(result, n - 1), "name"));
		rc = fn(arg, result);
		json_decref(root);
		if (rc != 0 || limit || n < LIST_PAGE)
			break;
	}
	json_decref(args);
	return rc;
}

static int page_collect(void *arg, json_t *page)
{
	return json_array_extend(arg, page) < 0 ? MIGCTL_EXIT_FAIL : 0;
}

int ctl_list(struct ctl *c, const char *cmd, json_t *args, unsigned limit, const char *after,
	     json_t **out)
{
	json_t *all = json_array();
	int rc = list_pages(c, cmd, args, limit, after, page_collect, all);
	if (rc != 0) {
		json_decref(all);
		all = NULL;
	}
	*out = all;
	return rc;
}

struct json_stream {
	size_t written;
};

/* A page of a JSON array written as it comes: one item per line. */
static int page_print_json(void *arg, json_t *page)
{
	struct json_stream *js = arg;
	size_t i;
	json_t *item;
	json_array_foreach(page, i, item) {
		fputs(js->written++ ? ",\n" : "\n", stdout);
		if (json_dumpf(item, stdout, JSON_COMPACT) < 0)
			return MIGCTL_EXIT_FAIL;
	}
	return ferror(stdout) ? MIGCTL_EXIT_FAIL : 0;
}

struct table_stream {
	void (*print)(json_t *, struct table_widths *);
	struct table_widths widths;
};

/* A page of a list as rows of its table, printed as it comes. */
static int page_print_table(void *arg, json_t *page)
{
	struct table_stream *ts = arg;
	ts->print(page, &ts->widths);
	return ferror(stdout) ? MIGCTL_EXIT_FAIL : 0;
}

/* Every page of a list, shown as it comes: --json as one array (100,000
 * guests are 20 MB of it), a table as rows under one header, its columns
 * as wide as the first page needs (wider where a later page needs it). */
static int list_and_print(struct ctl *c, const char *cmd, json_t *args, unsigned limit,
			  const char *after, void (*print)(json_t *, struct table_widths *))
{
	int rc;
	if (c->json) {
		struct json_stream js = { 0 };
		fputs("[", stdout);
		rc = list_pages(c, cmd, args, limit, after, page_print_json, &js);
		if (rc == 0)
			fputs(js.written ? "\n]\n" : "]\n", stdout);
	} else {
		struct table_stream ts = { print, { { 0 }, 0 } };
		rc = list_pages(c, cmd, args, limit, after, page_print_table, &ts);
		if (rc == 0 && !ts.widths.started) {
			json_t *none = json_array(); /* an empty list still has its header */
			print(none, &ts.widths);
			json_decref(none);
		}
	}
	if (fflush(stdout) != 0 && rc == 0) {
		ctl_error(c, "writing to stdout: %s", strerror(errno));
		rc = MIGCTL_EXIT_FAIL;
	}
	return rc;
}

/* --limit N and --after NAME of a list command; a usage error otherwise. */
static int page_option(struct ctl *c, int opt, unsigned *limit, const char **after)
{
	if (opt == OPT_AFTER) {
		*after = optarg;
		return CTL_CONTINUE;
	}
	char *end;
	errno = 0;
	unsigned long n = strtoul(optarg, &end, 10);
	if (errno || end == optarg || *end || n < 1 || n > 10000)
		return ctl_usage_error(c, "--limit \"%s\": expected a count from 1 to 10000", optarg);
	*limit = (unsigned)n;
	return CTL_CONTINUE;
}

/* `NOUN VERB NAME`: {name} to cmd. */
static int name_command(struct ctl *c, int argc, char **argv, const char *usage,
			const char *cmd, void (*print)(json_t *), const char *done_fmt)
{
	int rc = common_options(c, argc, argv, usage);
	if (rc != CTL_CONTINUE)
		return rc;
	if ((rc = ctl_positional(c, argc, argv, 1, "NAME")) != 0)
		return rc;
	const char *name = argv[optind];
	return request_and_print(c, cmd, json_pack("{s:s}", "name", name), print, done_fmt,
				 name);
}

/* A size option's value, or a usage error naming the option. */
static int size_option(struct ctl *c, const char *option, const char *text, int rate,
		       uint64_t *out)
{
	int rc = rate ? ctl_parse_rate(text, out) : ctl_parse_size(text, out);
	if (rc == -ERANGE)
		return ctl_usage_error(c, "%s \"%s\": too large", option, text);
	if (rc < 0)
		return ctl_usage_error(c, "%s \"%s\": expected a size like %s", option, text,
				       rate ? "64m/s" : "512m, 4g or 1.5g");
	return 0;
}

static int count_option(struct ctl *c, const char *option, const char *text, uint64_t *out)
{
	if (parse_u64(text, 0, INT32_MAX, out) < 0)
		return ctl_usage_error(c, "%s \"%s\": expected a whole number from 0", option,
				       text);
	return 0;
}

/* ---- host ---- */


/* --health-interval and --health-timeout as seconds into args. */
static int hook_duration(struct ctl *c, int opt, const char *text, json_t *args)
{
	int interval = opt == OPT_HOOK_INTERVAL;
	double s;
	if (ctl_parse_duration(text, &s) < 0 || !(s > 0))
		return ctl_usage_error(c, "%s \"%s\": expected a duration like 30s or 2m",
				       interval ? "--health-interval" : "--health-timeout", text);
	json_object_set_new(args, interval ? "health_interval_s" : "health_timeout_s",
			    json_real(s));
	return CTL_CONTINUE;
}

/* `host add` words into the API's args (name, uri, ...). With from, --from
 * FILE is taken (*from set, then nothing else is); without, it is refused
 * (a line of such a file). CTL_CONTINUE or an exit code. */
static int host_add_words(struct ctl *c, int argc, char **argv, json_t *args,
			  const char **from)
{
	static const struct option longopts[] = {
		{ "uri", required_argument, NULL, OPT_URI },
		{ "max-outbound", required_argument, NULL, OPT_MAX_OUT },
		{ "max-inbound", required_argument, NULL, OPT_MAX_IN },
		{ "memory", required_argument, NULL, OPT_MEMORY },
		{ "health-hook", required_argument, NULL, OPT_HOOK },
		{ "health-interval", required_argument, NULL, OPT_HOOK_INTERVAL },
		{ "health-timeout", required_argument, NULL, OPT_HOOK_TIMEOUT },
		{ "from", required_argument, NULL, OPT_FROM },
		CTL_COMMON_LONGOPTS,
		{ 0 },
	};
	const char *uri = NULL;
	uint64_t value;
	int opt, rc = CTL_CONTINUE;
	while (rc == CTL_CONTINUE && (opt = ctl_getopt(argc, argv, "", longopts)) != -1) {
		switch (opt) {
		case OPT_URI: uri = optarg; break;
		case OPT_FROM:
			if (from)
				*from = optarg;
			else
				rc = ctl_usage_error(c, "--from cannot be used inside a --from file");
			break;
		case OPT_HOOK: json_object_set_new(args, "health_hook", json_string(optarg)); break;
		case OPT_HOOK_INTERVAL:
		case OPT_HOOK_TIMEOUT: rc = hook_duration(c, opt, optarg, args); break;
		case OPT_MAX_OUT:
		case OPT_MAX_IN:
			rc = count_option(c, opt == OPT_MAX_OUT ? "--max-outbound" : "--max-inbound",
					  optarg, &value);
			if (rc == 0) {
				json_object_set_new(args, opt == OPT_MAX_OUT ? "max_outbound"
									     : "max_inbound",
						    json_integer((json_int_t)value));
				rc = CTL_CONTINUE;
			}
			break;
		case OPT_MEMORY:
			if ((rc = size_option(c, "--memory", optarg, 0, &value)) == 0) {
				json_object_set_new(args, "memory_bytes",
						    json_integer((json_int_t)value));
				rc = CTL_CONTINUE;
			}
			break;
		default: rc = ctl_option(c, opt, argv, host_add_usage);
		}
	}
	if (rc != CTL_CONTINUE) /* --help or a bad option */
		return rc;
	if (from && *from)
		return json_object_size(args) || uri || optind < argc
			       ? ctl_usage_error(c, "--from FILE takes no NAME or other host options:"
						 " they go in the file")
			       : CTL_CONTINUE;
	if ((rc = ctl_positional(c, argc, argv, 1, "NAME")) != 0)
		return rc;
	if (!uri)
		return ctl_usage_error(c, "--uri URI is required (e.g. sim:///%s?link=1gbit)",
				       argv[optind]);
	json_object_set_new(args, "name", json_string(argv[optind]));
	json_object_set_new(args, "uri", json_string(uri));
	return CTL_CONTINUE;
}

static int host_add_line(struct ctl *c, int argc, char **argv, json_t *args)
{
	return host_add_words(c, argc, argv, args, NULL);
}

int cmd_host_add(struct ctl *c, int argc, char **argv)
{
	json_t *args = json_object();
	const char *from = NULL;
	int rc = host_add_words(c, argc, argv, args, &from);
	if (rc != CTL_CONTINUE || from) {
		json_decref(args);
		return rc != CTL_CONTINUE ? rc
					  : ctl_add_from(c, from, "host.add_many", "host", host_add_line);
	}
	char name[256]; /* args go with the request */
	snprintf(name, sizeof(name), "%s", json_string_value(json_object_get(args, "name")));
	return request_and_print(c, "host.add", args, NULL, "host %s added\n", name);
}

int cmd_host_list(struct ctl *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "after", required_argument, NULL, OPT_AFTER },
		CTL_COMMON_LONGOPTS,
		{ 0 },
	};
	unsigned limit = 0;
	const char *after = NULL;
	int opt, rc = CTL_CONTINUE;
	while (rc == CTL_CONTINUE && (opt = ctl_getopt(argc, argv, "", longopts)) != -1)
		rc = opt == OPT_LIMIT || opt == OPT_AFTER ? page_option(c, opt, &limit, &after)
							  : ctl_option(c, opt, argv, host_list_usage);
	if (rc != CTL_CONTINUE)
		return rc;
	if (after && !limit)
		return ctl_usage_error(c, "--after needs --limit");
	if ((rc = ctl_positional(c, argc, argv, 0, "")) != 0)
		return rc;
	return list_and_print(c, "host.list", NULL, limit, after, host_table);
}

int cmd_host_show(struct ctl *c, int argc, char **argv)
{
	return name_command(c, argc, argv, host_show_usage, "host.show", host_print, NULL);
}

int cmd_host_rm(struct ctl *c, int argc, char **argv)
{
	return name_command(c, argc, argv, host_rm_usage, "host.rm", NULL, "host %s removed\n");
}

int cmd_host_enable(struct ctl *c, int argc, char **argv)
{
	return name_command(c, argc, argv, host_enable_usage, "host.enable", NULL,
			    "host %s enabled\n");
}

int cmd_host_disable(struct ctl *c, int argc, char **argv)
{
	return name_command(c, argc, argv, host_disable_usage, "host.disable", NULL,
			    "host %s disabled\n");
}

/* ---- guest ---- */

/* guest add's options into args; CTL_CONTINUE or an exit code. */
/* `guest add` words into the API's args; --from as host_add_words. */
static int guest_add_words(struct ctl *c, int argc, char **argv, json_t *args,
			   const char **from)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, OPT_HOST },
		{ "memory", required_argument, NULL, OPT_MEMORY },
		{ "dirty-rate", required_argument, NULL, OPT_DIRTY },
		{ "job", required_argument, NULL, OPT_JOB },
		{ "rank", required_argument, NULL, OPT_RANK },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "agent-key", required_argument, NULL, OPT_AGENT_KEY },
		CTL_COMMON_LONGOPTS,
		{ 0 },
	};
	uint64_t value;
	struct curve_keypair kp;
	enum curve_role role;
	char kerr[4400];
	int opt, rc = CTL_CONTINUE;
	while (rc == CTL_CONTINUE && (opt = ctl_getopt(argc, argv, "", longopts)) != -1) {
		const char *key = NULL;
		switch (opt) {
		case OPT_HOST: json_object_set_new(args, "host", json_string(optarg)); break;
		case OPT_JOB: json_object_set_new(args, "job", json_string(optarg)); break;
		case OPT_AGENT_KEY: /* a .pub file, or the key itself (migd checks it) */
			if (access(optarg, F_OK) == 0 &&
			    curve_public_load(optarg, &kp, &role, kerr, sizeof(kerr)) < 0)
				rc = ctl_usage_error(c, "--agent-key %s", kerr);
			else
				json_object_set_new(args, "agent_key", json_string(
					access(optarg, F_OK) == 0 ? kp.public_z85 : optarg));
			break;
		case OPT_FROM:
			if (from)
				*from = optarg;
			else
				rc = ctl_usage_error(c, "--from cannot be used inside a --from file");
			break;
		case OPT_MEMORY:
			rc = size_option(c, "--memory", optarg, 0, &value);
			key = "memory_bytes";
			break;
		case OPT_DIRTY:
			rc = size_option(c, "--dirty-rate", optarg, 1, &value);
			key = "dirty_rate_bps";
			break;
		case OPT_RANK:
			rc = count_option(c, "--rank", optarg, &value);
			key = "rank";
			break;
		default: rc = ctl_option(c, opt, argv, guest_add_usage);
		}
		if (key && rc == 0) {
			json_object_set_new(args, key, json_integer((json_int_t)value));
			rc = CTL_CONTINUE;
		}
	}
	if (rc != CTL_CONTINUE)
		return rc;
	if (from && *from)
		return json_object_size(args) || optind < argc
			       ? ctl_usage_error(c, "--from FILE takes no NAME or other guest options:"
						 " they go in the file")
			       : CTL_CONTINUE;
	rc = ctl_positional(c, argc, argv, 1, "NAME");
	if (rc == 0 && !json_object_get(args, "host"))
		rc = ctl_usage_error(c, "--host HOST is required");
	if (rc == 0 && !json_object_get(args, "memory_bytes"))
		rc = ctl_usage_error(c, "--memory SIZE is required");
	if (rc == 0 && !json_object_get(args, "job") != !json_object_get(args, "rank"))
		rc = ctl_usage_error(c, "%s", json_object_get(args, "job")
						      ? "--job needs --rank N"
						      : "--rank needs --job JOB");
	if (rc != 0)
		return rc;
	json_object_set_new(args, "name", json_string(argv[optind]));
	return CTL_CONTINUE;
}

static int guest_add_line(struct ctl *c, int argc, char **argv, json_t *args)
{
	return guest_add_words(c, argc, argv, args, NULL);
}

int cmd_guest_add(struct ctl *c, int argc, char **argv)
{
	json_t *args = json_object();
	const char *from = NULL;
	int rc = guest_add_words(c, argc, argv, args, &from);
	if (rc != CTL_CONTINUE || from) {
		json_decref(args);
		return rc != CTL_CONTINUE
			       ? rc
			       : ctl_add_from(c, from, "guest.add_many", "guest", guest_add_line);
	}
	char name[256]; /* args go with the request */
	snprintf(name, sizeof(name), "%s", json_string_value(json_object_get(args, "name")));
	return request_and_print(c, "guest.add", args, NULL, "guest %s added\n", name);
}

int cmd_guest_list(struct ctl *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, OPT_HOST },
		{ "job", required_argument, NULL, OPT_JOB },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "after", required_argument, NULL, OPT_AFTER },
		CTL_COMMON_LONGOPTS,
		{ 0 },
	};
	json_t *args = json_object();
	unsigned limit = 0;
	const char *after = NULL;
	int opt, rc = CTL_CONTINUE;
	while (rc == CTL_CONTINUE && (opt = ctl_getopt(argc, argv, "", longopts)) != -1) {
		if (opt == OPT_HOST || opt == OPT_JOB)
			json_object_set_new(args, opt == OPT_HOST ? "host" : "job",
					    json_string(optarg));
		else if (opt == OPT_LIMIT || opt == OPT_AFTER)
			rc = page_option(c, opt, &limit, &after);
		else
			rc = ctl_option(c, opt, argv, guest_list_usage);
	}
	if (rc == CTL_CONTINUE && after && !limit)
		rc = ctl_usage_error(c, "--after needs --limit");
	if (rc == CTL_CONTINUE && (rc = ctl_positional(c, argc, argv, 0, "")) == 0)
		rc = CTL_CONTINUE;
	if (rc != CTL_CONTINUE) { /* --help, a bad option or argument */
		json_decref(args);
		return rc;
	}
	return list_and_print(c, "guest.list", args, limit, after, guest_table);
}

int cmd_guest_show(struct ctl *c, int argc, char **argv)
{
	return name_command(c, argc, argv, guest_show_usage, "guest.show", guest_print, NULL);
}

int cmd_agent_list(struct ctl *c, int argc, char **argv)
{
	int rc = common_options(c, argc, argv, agent_list_usage);
	if (rc != CTL_CONTINUE)
		return rc;
	if ((rc = ctl_positional(c, argc, argv, 0, "")) != 0)
		return rc;
	return request_and_print(c, "agent.list", NULL, agent_table, NULL, NULL);
}
