/*
 * api_internal: what the API's files share: the API's state, the shape of
 * a command handler and the helpers every handler uses to read its
 * arguments and write its change. api.c holds the dispatch table and most
 * commands; api_report.c the cost history's report, calibration and
 * prediction.
 */
#ifndef MIGD_API_INTERNAL_H
#define MIGD_API_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

struct migd_config;
struct executor;
struct policy_engine;
struct health;

struct api {
	const struct migd_config *conf;
	struct db *db;
	struct executor *ex;
	struct policy_engine *pe;
	struct health *hm;
	struct ckpt *ck;               /* NULL: no checkpoints (api_set_ckpt) */
	struct migd_metrics *metrics;  /* NULL: no metrics endpoint (api_set_metrics) */
	void *zctx, *rep, *pub;
	void *also;                    /* polled with rep: the agents' socket */
	uint64_t start_ms;
};

typedef int (*cmd_fn)(struct api *api, json_t *args, json_t **result, char *err,
		      size_t errlen);

struct api_cmd {
	const char *name;
	cmd_fn fn;
	const char *args;  /* the arguments it takes; NULL: the handler checks */
};

/* api_ckpt.c: job.*, checkpoint.*, restore*; ends with a NULL name */
extern const struct api_cmd api_ckpt_cmds[];

/* An optional or required name argument, checked as names are. */
int arg_name(json_t *args, const char *key, int required, const char **out, char *err,
	     size_t errlen);
/* An optional or required integer in [0, max]; *out keeps its value when
 * the argument is absent. */
int arg_u64(json_t *args, const char *key, int required, uint64_t max, uint64_t *out,
	    char *err, size_t errlen);
/* A database failure says so when nothing more precise was said. */
int db_error(int rc, char *err, size_t errlen);
/* Host name's row, or -ENOENT with "no such host". */
int host_lookup(struct api *api, const char *name, struct db_host *h, char *err,
		size_t errlen);
/* since_ns and policy of history, report and calibrate into f. */
int finished_filter(json_t *args, struct db_mig_filter *f, char *err, size_t errlen);

/* api_report.c */
int cmd_report(struct api *api, json_t *args, json_t **result, char *err, size_t errlen);
int cmd_calibrate(struct api *api, json_t *args, json_t **result, char *err, size_t errlen);
int cmd_predict(struct api *api, json_t *args, json_t **result, char *err, size_t errlen);

#endif
