/*
 * agent_internal: what agent.c (the migd side, commands, the loop) and
 * local.c (the libsfs clients) share.
 */
#ifndef MIGD_AGENT_INTERNAL_H
#define MIGD_AGENT_INTERNAL_H

#include <jansson.h>
#include <stdint.h>

#include "agent.h"
#include "agent_proto.h"

#define AGENT_MAX_CLIENTS 1024

struct client {
	int fd;
	int registered;
	int64_t pid;
	char comm[AGENT_COMM_MAX];
	char rbuf[AGENT_LINE_MAX];
	size_t rlen;
	/* the last stats, and rates from the two last samples */
	uint64_t read_bytes, write_bytes, inflight, requests;
	uint64_t sample_ms;
	uint64_t read_bps, write_bps;
	/* quiesce */
	int pending;         /* a quiesce was sent, its answer not in */
	uint64_t quiesce_id; /* the local id it was sent with */
	int held;            /* answered ok: its gate is closed */
};

enum agent_state { AGENT_IDLE, AGENT_QUIESCING, AGENT_QUIESCED };

struct agent {
	struct agent_opts opts;
	char guest[256];
	char hostname[256];
	char socket_path[108];
	int listen_fd;
	int signal_fd;
	struct client *clients[AGENT_MAX_CLIENTS];
	unsigned n_clients;

	void *zctx, *dealer, *monitor; /* NULL without migd */
	int migd_connected;

	enum agent_state state;
	uint64_t seq;              /* local quiesce ids */
	json_t *op_id;             /* migd's id of the quiesce under way or held */
	uint64_t op_deadline_ms;   /* the quiesce's, as asked */
	uint64_t op_start_ns, op_deadline_at_ms, quiesced_at_ns, watchdog_at_ms;
	uint64_t drained_requests, drained_bytes;
	int fanning_out;           /* sending quiesce to every client: a drop
				      must not complete the quiesce early */
	unsigned n_failed;         /* clients that answered ok:false */
	char failure[512];         /* the first of their errors */
	uint64_t next_activity_ms;
};

/* local.c */
int local_listen(struct agent *a, char *err, size_t errlen);
void local_accept(struct agent *a);
/* Read from client i; may drop it (it is then gone from a->clients). */
void local_read(struct agent *a, unsigned i);
void local_drop(struct agent *a, unsigned i, const char *why);
int local_send(struct agent *a, struct client *c, enum agent_local_type type, uint64_t id,
	       const char *error);
/* The same for a message built by the caller (resume with reconnect). */
int local_send_msg(struct agent *a, struct client *c, const struct agent_local_msg *m);
unsigned local_registered(const struct agent *a);

/* agent.c: what local.c reports */
void agent_client_quiesced(struct agent *a, struct client *c, const struct agent_local_msg *m);
void agent_client_registered(struct agent *a, struct client *c);
void agent_client_gone(struct agent *a, struct client *c);

#endif
