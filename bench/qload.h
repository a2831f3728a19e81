/*
 * qload: the moving parts that quiesce-bench and the migagent integration
 * test share: libsfs writer processes that check every byte they wrote, a
 * stand-in for migd's side of the agent protocol (a ZeroMQ ROUTER, since
 * migd's own is written elsewhere), and the servers' request counters.
 *
 * Writers are forked, not exec'd, and report through a shared memory page,
 * so that a test can watch their progress while they are held.
 */
#ifndef MIGD_QLOAD_H
#define MIGD_QLOAD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define QLOAD_MAX_WRITERS 64

/* One writer's progress, in shared memory (updated with atomics). */
struct qload_progress {
	uint64_t writes;       /* pwrites completed */
	uint64_t errors;       /* libsfs calls that failed: must stay 0 */
	uint64_t bad_blocks;   /* blocks that did not read back as written */
	uint64_t verified_bytes;
	uint64_t max_write_ns; /* the longest pwrite (a held one shows here) */
	int started, finished; /* connected; verified and done */
	char last_error[200];
};

struct qload_writers {
	unsigned n;
	pid_t pids[QLOAD_MAX_WRITERS];
	struct qload_progress *progress; /* n entries, shared */
};

struct qload_writer_opts {
	const char *conf;        /* sfs.conf */
	const char *dir;         /* sfs directory holding the files ("/qload") */
	size_t transfer_bytes;   /* one pwrite */
	unsigned blocks;         /* a file is this many transfers, rewritten round robin */
	int crash_after_writes;  /* > 0: the writer _exit()s after that many (a crash) */
};

/* Fork n writers (file DIR/wI each); 0 or a negative errno. */
int qload_writers_start(struct qload_writers *w, unsigned n, const struct qload_writer_opts *o);
/* Ask every writer to stop, verify its file and exit; wait for them.
 * Returns the number of writers that failed (errors, bad data, a crash). */
unsigned qload_writers_stop(struct qload_writers *w, unsigned timeout_ms);
/* Sum of writes of all writers. */
uint64_t qload_writes(const struct qload_writers *w);
void qload_writers_free(struct qload_writers *w);

/* --- a migd stand-in --- */

struct qpeer {
	void *ctx, *router;
	char endpoint[128];
	uint8_t rid[256];      /* the agent's routing id, from its hello */
	size_t rid_len;
	unsigned hellos;
	json_t *last_activity; /* the newest activity message */
	unsigned activities;
	long long next_id;
};

/* Bind a ROUTER on tcp://127.0.0.1 at a free port; 0 or -errno. */
int qpeer_open(struct qpeer *p);
/* The same at a given endpoint (a migd restarting where it was). */
int qpeer_open_at(struct qpeer *p, const char *endpoint);
void qpeer_close(struct qpeer *p);
/* The next message of type (NULL: any) within timeout_ms, or NULL. Others
 * are consumed: hellos set the routing id, activities are kept. */
json_t *qpeer_recv(struct qpeer *p, const char *type, int timeout_ms);
/* Send a frame to the agent (steals msg); raw text for malformed tests. */
int qpeer_send(struct qpeer *p, json_t *msg);
int qpeer_send_raw(struct qpeer *p, const void *data, size_t len);
/* Send a command with a fresh integer id and wait for its reply (NULL on
 * timeout). deadline_ms for quiesce. *rtt_ms: send to reply. */
json_t *qpeer_call(struct qpeer *p, const char *type, uint64_t deadline_ms, int timeout_ms,
		   double *rtt_ms);

/* --- servers --- */

/* Requests each server of conf has served (STATS): out[0] meta, out[1..]
 * I/O servers; returns the count of servers or a negative errno. */
int qload_server_requests(const char *conf, uint64_t *out, unsigned max);
/* Sum over the servers, or UINT64_MAX on failure. */
uint64_t qload_total_requests(const char *conf);

#endif
