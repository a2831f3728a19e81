/*
 * migctl_calibrate: calibrate and predict, the cost model fitted to what
 * migd recorded (daemon/calibrate.h).
 *
 * `calibrate` prints the model migd fitted and, for people, the migctl
 * commands that build its sim twin: a sim migd with those hosts and
 * guests replays the cluster's migrations. `predict` asks migd what one
 * migration would cost on that model. migd does the fitting; this file
 * only asks and prints.
 *
 * --since reads like history's: on a sim migd a duration ago is on the
 * virtual clock (migctl_report.c says why), so it asks status for "now".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migctl.h"
#include "util.h"

const char calibrate_usage[] =
	"usage: migctl calibrate [--json] [--since T] [--policy NAME]\n"
	"\n"
	"Fit the completed migrations into the sim backend's pre-copy model: the\n"
	"link rate of each direction between two hosts, each guest's RAM sent in\n"
	"round 0 and dirty rate, and the switch-over time, all medians; then the\n"
	"migctl commands that build a sim twin of the cluster from it.\n"
	"\n"
	"      --since T       only migrations finished at or after T: an ISO\n"
	"                      date-time or a duration ago on the cluster's clock\n"
	"      --policy NAME   only those a policy started\n"
	"      --json          the model as JSON\n"
	"  -h, --help          show this help\n";

const char predict_usage[] =
	"usage: migctl predict GUEST --to HOST [--json]\n"
	"\n"
	"What migrating GUEST to HOST would cost, on the calibrated model (see\n"
	"calibrate) or, on a sim migd for a guest without history, on its own sim\n"
	"parameters: total time, downtime, bytes, rounds, and whether it would\n"
	"converge at all. Nothing is migrated.\n"
	"\n"
	"      --to HOST   the destination\n"
	"      --json      the prediction as JSON\n"
	"  -h, --help      show this help\n";

enum { OPT_SINCE = OPT_SUBCMD_BASE, OPT_POLICY, OPT_TO };

/* ---- calibrate ---- */

static void calibrate_links(json_t *links)
{
	static const char *const headers[] = { "FROM", "TO", ">MIGRATIONS", ">RATE", ">MBIT/S" };
	struct table *t = table_new(5, headers);
	size_t i;
	json_t *l;
	json_array_foreach(links, i, l) {
		char n[24], rate[32], mbit[32];
		double bps = jnum(l, "link_bps", -1);
		snprintf(n, sizeof(n), "%" PRId64, jint(l, "migrations", 0));
		snprintf(mbit, sizeof(mbit), "%.1f", bps * 8 / 1e6);
		table_add(t, jstr(l, "src"), jstr(l, "dst"), n, fmt_rate(bps, rate, sizeof(rate)),
			  mbit);
	}
	table_print(t, stdout);
	table_free(t);
}

static void calibrate_guests(json_t *guests)
{
	static const char *const headers[] = { "GUEST", ">MEMORY", ">ROUND-0 RAM", ">DIRTY RATE",
					       ">MIGRATIONS", ">TOTAL", ">DOWNTIME" };
	struct table *t = table_new(7, headers);
	size_t i;
	json_t *g;
	json_array_foreach(guests, i, g) {
		char mem[32], ram[32], dirty[32], n[24], total[32], down[32];
		snprintf(n, sizeof(n), "%" PRId64, jint(g, "migrations", 0));
		table_add(t, jstr(g, "name"), fmt_bytes(jint(g, "memory_bytes", -1), mem, sizeof(mem)),
			  fmt_bytes(jint(g, "ram_bytes", -1), ram, sizeof(ram)),
			  fmt_rate(jnum(g, "dirty_rate_bps", -1), dirty, sizeof(dirty)), n,
			  fmt_ms(jnum(g, "total_ms", -1), total, sizeof(total)),
			  fmt_ms(jnum(g, "downtime_ms", -1), down, sizeof(down)));
	}
	table_print(t, stdout);
	table_free(t);
}

/* The migctl commands that build the sim twin (quoted for a shell). */
static void calibrate_twin(json_t *sim)
{
	size_t i;
	json_t *o;
	printf("\nThe sim twin (run against a migd with the sim backend):\n");
	json_array_foreach(json_object_get(sim, "hosts"), i, o)
		printf("  migctl host add %s --uri '%s'\n", jstr(o, "name"), jstr(o, "uri"));
	json_array_foreach(json_object_get(sim, "guests"), i, o)
		printf("  migctl guest add %s --host %s --memory %s --dirty-rate %s\n",
		       jstr(o, "name"), jstr(o, "host"), jstr(o, "memory"), jstr(o, "dirty_rate"));
}

static void calibrate_print(json_t *m)
{
	char buf[64], rate[32];
	int64_t n = jint(m, "migrations", 0);
	if (n == 0) {
		printf("no completed migrations to calibrate from\n");
		return;
	}
	snprintf(buf, sizeof(buf), "%" PRId64, n);
	print_kv("migrations", buf);
	double bps = jnum(m, "link_bps", -1);
	snprintf(buf, sizeof(buf), "%s (%.1f Mbit/s)", fmt_rate(bps, rate, sizeof(rate)),
		 bps * 8 / 1e6);
	print_kv("link rate", buf);
	print_kv("switch-over", fmt_ms(jnum(m, "switchover_ms", -1), buf, sizeof(buf)));
	printf("\n");
	calibrate_links(json_object_get(m, "links"));
	printf("\n");
	calibrate_guests(json_object_get(m, "guests"));
	calibrate_twin(json_object_get(m, "sim"));
}

int cmd_calibrate(struct ctl *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "policy", required_argument, NULL, OPT_POLICY },
		CTL_COMMON_LONGOPTS,
		{ 0 },
	};
	const char *since = NULL, *policy = NULL;
	int opt, rc;
	while ((opt = ctl_getopt(argc, argv, "", longopts)) != -1) {
		if (opt == OPT_SINCE)
			since = optarg;
		else if (opt == OPT_POLICY)
			policy = optarg;
		else if ((rc = ctl_option(c, opt, argv, calibrate_usage)) != CTL_CONTINUE)
			return rc;
	}
	if ((rc = ctl_positional(c, argc, argv, 0, "")) != 0)
		return rc;
	json_t *args = json_object();
	if (policy)
		json_object_set_new(args, "policy", json_string(policy));
	/* last, so a usage error above costs no request */
	if (since && (rc = ctl_since_arg(c, since, args)) != 0) {
		json_decref(args);
		return rc;
	}
	json_t *root, *result;
	if ((rc = ctl_call(c, "calibrate", args, &root, &result)) != 0)
		return rc;
	if (c->json)
		rc = ctl_print_json(c, result);
	else
		calibrate_print(result);
	json_decref(root);
	return rc;
}

/* ---- predict ---- */

static void predict_print(json_t *p)
{
	char buf[64];
	printf("%s: %s -> %s, on the %s model\n", jstr(p, "guest"), jstr(p, "src"), jstr(p, "dst"),
	       strcmp(jstr(p, "model"), "sim") == 0 ? "guest's own sim" : "calibrated");
	print_kv("state", strcmp(jstr(p, "state"), "completed") == 0
				  ? "would complete" : "would not converge");
	if (*jstr(p, "error"))
		print_kv("why", jstr(p, "error"));
	print_kv("total", fmt_ms(jnum(p, "total_ms", -1), buf, sizeof(buf)));
	print_kv("downtime", fmt_ms(jnum(p, "downtime_ms", -1), buf, sizeof(buf)));
	print_kv("bytes", fmt_bytes(jint(p, "bytes", -1), buf, sizeof(buf)));
	snprintf(buf, sizeof(buf), "%" PRId64, jint(p, "rounds", 0));
	print_kv("rounds", buf);
}

int cmd_predict(struct ctl *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "to", required_argument, NULL, OPT_TO },
		CTL_COMMON_LONGOPTS,
		{ 0 },
	};
	const char *to = NULL;
	int opt, rc;
	while ((opt = ctl_getopt(argc, argv, "", longopts)) != -1) {
		if (opt == OPT_TO)
			to = optarg;
		else if ((rc = ctl_option(c, opt, argv, predict_usage)) != CTL_CONTINUE)
			return rc;
	}
	if ((rc = ctl_positional(c, argc, argv, 1, "GUEST")) != 0)
		return rc;
	if (!to)
		return ctl_usage_error(c, "--to HOST is required");
	json_t *root, *result;
	rc = ctl_call(c, "predict", json_pack("{s:s, s:s}", "guest", argv[optind], "to", to),
		      &root, &result);
	if (rc != 0)
		return rc;
	if (c->json)
		rc = ctl_print_json(c, result);
	else
		predict_print(result);
	json_decref(root);
	return rc;
}
