/*
 * agent: migagent, the in-guest agent that quiesces sfs I/O around a
 * migration (see man/migagent.8 for the whole story).
 *
 * Two sides, one thread, one poll loop: the local side (local.c) accepts
 * libsfs clients on a Unix socket and speaks the line protocol of
 * agent_proto.h; the migd side (agent.c) is a ZeroMQ DEALER connected to
 * migd's ROUTER. A quiesce fans out to every registered client and gathers
 * their replies; a deadline, a resume, the watchdog, a client's crash and
 * the agent's own exit all end with every client's gate open again.
 */
#ifndef MIGD_AGENT_H
#define MIGD_AGENT_H

#include <stddef.h>

struct agent_opts {
	const char *migd_endpoint;  /* NULL: no migd (the local side only) */
	const char *guest;          /* NULL: the host name */
	const char *socket_path;    /* NULL: AGENT_SOCKET_DEFAULT */
	unsigned watchdog_ms;       /* 0: 10000 */
	unsigned activity_ms;       /* 0: 1000 */
	unsigned reconnect_max_ms;  /* 0: 5000 (backoff from 100 ms up to this) */
	const char *key;            /* CURVE key pair file (curve_keys.h); NULL: no CURVE */
	const char *server_key;     /* migd.pub to pin; NULL: migd.pub beside key */
};

struct agent;

/* Bind the local socket and connect to migd. 0, or a negative errno with
 * the reason in err. */
int agent_new(const struct agent_opts *opts, struct agent **out, char *err, size_t errlen);
/* Serve until SIGTERM or SIGINT (blocked by the caller, taken through a
 * signalfd); every client is resumed before it returns. 0, or a negative
 * errno after logging why. */
int agent_run(struct agent *a);
/* Close everything and remove the socket file. NULL is fine. */
void agent_free(struct agent *a);

#endif
