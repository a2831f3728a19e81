/*
 * snapshot: the scheduler's view of the cluster, taken from the database
 * for one planning round (see scheduler.h for what it holds).
 *
 * The queue and the running migrations are read at every round; hosts and
 * guests, 10,000s of rows that rarely change, are kept in a cache that is
 * read again only when the database's generation counters say a host or
 * guest may have changed (db_generations). An evacuation of 100 hosts then
 * costs 100 small reads, not 100 reads of every guest. The scheduler's
 * arrays of them are kept with the rows and patched by each move, so a
 * round does not pass over every guest either; a snapshot borrows them
 * until the next call into the cache.
 */
#ifndef MIGD_SNAPSHOT_H
#define MIGD_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "scheduler.h"

struct snap_cache;

/* A due queued row that cannot be planned: its guest or destination is gone. */
struct snap_gone {
	size_t row;                   /* index into queue */
	char reason[DB_TEXT_MAX];
};

struct snapshot {
	int64_t now_ns;
	/* due queued rows, highest priority first; the executor updates them */
	struct db_migration *queue;
	size_t n_queue, cap_queue;
	/* the scheduler's input; index i of sh is hosts[i] */
	const struct db_host *hosts;  /* borrowed from the cache */
	const struct sched_host *sh;  /* borrowed from the cache, as is sg */
	size_t n_hosts;
	const struct sched_guest *sg;
	size_t n_guests;
	struct sched_running *sr;
	size_t n_sr, cap_sr;
	struct sched_request *req;
	size_t *req_row;              /* req[i] is queue[req_row[i]] */
	size_t n_req;
	struct snap_gone *gone;
	size_t n_gone;
};

int snap_cache_new(struct snap_cache **out);
void snap_cache_free(struct snap_cache *c);
/*
 * The executor moved guest to host and committed it; the guests counter
 * went from gen_before to gen_after. When that move was the only change
 * since the cache was read, the cache takes it instead of reading 10,000
 * rows again at the next round (a busy evacuation ends a migration every
 * few milliseconds). Otherwise nothing: the next round reads them.
 */
void snap_cache_moved(struct snap_cache *c, uint64_t gen_before, uint64_t gen_after,
		      const char *guest, const char *host);
/* The same for one host's row changed (enabled, health, limits): h as it
 * is now; saves reading every host again when an evacuation disables one. */
void snap_cache_host_changed(struct snap_cache *c, uint64_t gen_before, uint64_t gen_after,
			     const struct db_host *h);

/*
 * Take the snapshot at now_ns. The due queue is read first, at most window
 * rows from its head (snapshot_window()); when it is empty nothing else is
 * (s->n_queue == 0). Returns 0, -ENOMEM or -EIO. Release with
 * snapshot_release() whatever it returned.
 */
int snapshot_take(struct snap_cache *c, struct db *db, int64_t now_ns, size_t window,
		  struct snapshot *s);
/* How many due rows a round reads, for a cluster that runs at most
 * max_concurrent migrations at once (0: no limit). */
size_t snapshot_window(unsigned max_concurrent);
void snapshot_release(struct snapshot *s);

/* The scheduler's input from s, with limits and the last start. */
void snapshot_input(const struct snapshot *s, const struct sched_limits *limits,
		    int64_t last_start_ns, struct sched_input *in);

#endif
