/*
 * api: migd's ZeroMQ face (the format is migd_proto.h's).
 *
 * A REP socket bound to --listen answers one request at a time from the
 * main loop; a PUB socket bound to --events carries every event the
 * database has committed (db_events_take), topic "event.<type>" then the
 * JSON body. Requests go through migd_req_parse and one dispatch table;
 * each command checks its arguments (unknown ones included) and answers
 * with a message that names the bad field and value. Nothing a client sends
 * can stop migd: every failure becomes an error reply.
 */
#ifndef MIGD_API_H
#define MIGD_API_H

#include <stddef.h>

#include "config.h"
#include "db.h"
#include "executor.h"
#include "health.h"
#include "policy.h"

struct api;

/* Bind both endpoints; -errno with "listen tcp://...: Address already in
 * use" style messages in err. The api borrows db, ex, pe and hm. */
int api_new(const struct migd_config *conf, struct db *db, struct executor *ex,
	    struct policy_engine *pe, struct health *hm, struct api **out, char *err,
	    size_t errlen);
void api_free(struct api *api);

/* Wait up to timeout_ms for requests and answer those that came (a few at
 * most, so the executor is not starved). -EINTR when a signal came. */
int api_serve(struct api *api, long timeout_ms);
/* Also wake api_serve when this ZeroMQ socket is readable (the agents'). */
void api_poll_also(struct api *api, void *socket);
/* Checkpoints and restores (ckpt.h): their commands answer once set. */
struct ckpt;
void api_set_ckpt(struct api *api, struct ckpt *ck);
/* Every published event also goes to m (metrics.h); borrowed. */
struct migd_metrics;
void api_set_metrics(struct api *api, struct migd_metrics *m);
/* Publish the committed events. */
void api_publish(struct api *api);

#endif
