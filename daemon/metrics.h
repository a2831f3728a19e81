/*
 * metrics: migd's Prometheus endpoint (metrics.listen in migd.conf(5)).
 *
 * Two sources, both read in the main loop's thread so nothing here
 * touches SQLite from another thread: the events migd publishes (every
 * migration, checkpoint, restore, policy firing and agent connection
 * passes through api_publish, which hands each one to metrics_event) feed
 * counters and histograms; a refresh at most once a second (metrics_tick)
 * sets the gauges from the database and the agent link (queue depth,
 * hosts by health, agents and their I/O rates). The HTTP server's thread
 * only renders (prom.h takes care of the locking).
 *
 * Names follow Prometheus conventions and, where they mean the same,
 * KubeVirt's kubevirt_vmi_migration_* (data processed, succeeded/failed).
 */
#ifndef MIGD_METRICS_H
#define MIGD_METRICS_H

#include <jansson.h>
#include <stddef.h>

struct agent_link;
struct db;
struct migd_metrics;

/*
 * Serve metrics on listen ("127.0.0.1:9464"); "" leaves *out NULL (off).
 * db and agents (NULL: agents off) are borrowed. 0, or a negative errno
 * with a message naming the address in err.
 */
int metrics_new(const char *listen, struct db *db, struct agent_link *agents,
		struct migd_metrics **out, char *err, size_t errlen);
void metrics_free(struct migd_metrics *m);
/* One published event (borrowed). m NULL: nothing. */
void metrics_event(struct migd_metrics *m, json_t *ev);
/* The main loop's turn: refresh the gauges when a second has passed. */
void metrics_tick(struct migd_metrics *m);

#endif
