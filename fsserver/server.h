/*
 * server: what every sfsd server shares, whatever its role: the listening
 * socket, one thread per connection, reading and validating frames,
 * replies, and a clean stop on SIGTERM/SIGINT. A role (metadata server,
 * I/O server) plugs in behind struct server_role_ops and only ever sees
 * decoded requests, so the two roles cannot disagree on framing.
 *
 * The file also holds the supervisor of `sfsd --all`: one process per
 * server, so a crash or a kill -9 takes down exactly one server, as it
 * would on a real cluster.
 */
#ifndef MIGD_SFSD_SERVER_H
#define MIGD_SFSD_SERVER_H

#include <stdint.h>

#include "auth.h"
#include "sfs_conf.h"
#include "sfs_proto.h"

/* One request as a role handler sees it. */
struct server_req {
	int fd;                   /* the connection: bulk data is read from it */
	const char *peer;         /* "host:port" of the client, for log lines */
	const struct sfs_identity *who; /* who is asking (auth.h) */
	uint32_t tag;
	uint32_t data_left;       /* bulk bytes still on the socket; the server
				     drops what the handler leaves */
	uint64_t deadline_ms;     /* the rest of the request must arrive by then */
	const struct sfs_req *req;
	struct sfs_reply *reply;  /* op and an empty msg set; handler fills */
	void *conn_state;         /* from conn_open */
	int replied;              /* handler sent the reply itself */
	int broken;               /* transport failed: close without a reply */
};

struct server_role_ops {
	const char *kind; /* "metadata", "I/O": for log lines */
	int role;         /* enum sfs_role */
	/* Open the role's state under srv->dir (which exists and is locked). */
	int (*open)(const struct sfs_conf *conf, const struct sfs_server_conf *srv, void **ctx,
		    char *err, size_t errlen);
	/* Optional per-connection state. */
	int (*conn_open)(void *ctx, int fd, void **conn_state);
	void (*conn_close)(void *ctx, void *conn_state);
	/* Serve one request: returns the reply status (0 or a negative errno).
	 * On failure reply->msg may add what the errno cannot say (which part
	 * of the path, which handle or server); the client names the request's
	 * path itself, so the message does not repeat it. */
	int (*handle)(void *ctx, struct server_req *r);
	/* Optional: work that must follow the reply (e.g. removing datafiles). */
	void (*after_reply)(void *ctx, struct server_req *r);
	/* Make everything durable; later requests fail with -ESHUTDOWN. */
	void (*stop)(void *ctx);
	void (*free)(void *ctx);
};

/* Fill r->reply->msg and return rc (a negative errno), for handlers. A
 * failure the errno describes fully needs no message: just return it. */
int server_fail(struct server_req *r, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Run one server in the foreground until SIGTERM or SIGINT. ready_fd >= 0:
 * one byte is written to it once the server listens, then it is closed
 * (the supervisor's start-up handshake). Returns 0 after a clean stop, or
 * a negative errno after logging why the server could not start.
 */
int server_run(const struct sfs_conf *conf, const struct sfs_server_conf *srv, int ready_fd);

/*
 * Run every server of conf, each in its own process, and supervise them:
 * SIGTERM/SIGINT are forwarded, a server that fails to start stops the
 * others, one that dies later is logged. Returns 0 when every server
 * stopped cleanly on request, 1 otherwise.
 */
int server_run_all(const struct sfs_conf *conf);

#endif
