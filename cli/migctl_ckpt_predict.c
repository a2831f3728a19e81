/*
 * migctl checkpoint predict: what a checkpoint and a restore of a job would
 * cost (API checkpoint.predict), from migd's history of checkpoints or,
 * without one, from its model (the store's configured bandwidth).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migctl.h"

const char checkpoint_predict_usage[] =
	"usage: migctl checkpoint predict JOB [--mtbf DURATION]\n"
	"\n"
	"What a checkpoint of JOB would cost, and a restore: image bytes, the store's\n"
	"write rate, the job's pause, the time to write and to restore. From migd's\n"
	"history of completed checkpoints (their write rate, how full images are for\n"
	"their memory, this job's pauses) or, without history, from the model (the\n"
	"store bandwidth of migd.conf, images as large as memory). With --mtbf, also\n"
	"Daly's and Young's intervals and the efficiency Daly's model expects.\n"
	"\n"
	"      --mtbf DURATION  mean time between failures (e.g. 24h)\n";

static json_t *r;

static double num(const char *k)
{
	return json_number_value(json_object_get(r, k));
}

int cmd_checkpoint_predict(struct ctl *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "mtbf", required_argument, NULL, 'm' },
		CTL_COMMON_LONGOPTS,
		{ 0 },
	};
	double mtbf = 0;
	int opt, rc;
	while ((opt = ctl_getopt(argc, argv, "", lo)) != -1) {
		if (opt == 'm') {
			if (ctl_parse_duration(optarg, &mtbf) < 0 || mtbf <= 0)
				return ctl_usage_error(c, "--mtbf \"%s\": expected a duration like 24h",
						       optarg);
		} else if ((rc = ctl_option(c, opt, argv, checkpoint_predict_usage)) !=
			   CTL_CONTINUE) {
			return rc;
		}
	}
	if ((rc = ctl_positional(c, argc, argv, 1, "JOB")) != 0)
		return rc;
	json_t *args = json_pack("{s:s}", "job", argv[optind]);
	if (mtbf > 0)
		json_object_set_new(args, "mtbf_s", json_real(mtbf));
	json_t *root;
	if ((rc = ctl_call(c, "checkpoint.predict", args, &root, &r)) != 0)
		return rc;
	if (c->json) {
		rc = ctl_print_json(c, r);
		json_decref(root);
		return rc;
	}
	printf("job %s: %d guests, %.0f MiB of memory (%s, %d samples)\n", argv[optind],
	       (int)num("guests"), num("memory_bytes") / (1 << 20),
	       json_string_value(json_object_get(r, "source")), (int)num("samples"));
	printf("  images        %.1f MiB\n", num("bytes") / (1 << 20));
	printf("  store rate    %.0f MB/s\n", num("store_bps") / 1e6);
	printf("  write         %.2f s\n", num("write_s"));
	printf("  job pause     %.0f ms\n", num("job_pause_ms"));
	printf("  cost d        %.3f s\n", num("cost_s"));
	printf("  restore       %.2f s (every image read twice: checksums, then the load)\n",
	       num("restore_s"));
	if (json_object_get(r, "mtbf_s")) {
		printf("  MTBF M        %.0f s\n", num("mtbf_s"));
		printf("  Daly          %.1f s between checkpoints (Young %.1f s)\n", num("daly_s"),
		       num("young_s"));
		printf("  efficiency    %.4f (Daly's model, with failures)\n", num("efficiency"));
	}
	json_decref(root);
	return 0;
}
