/*
 * qmp: a small client of QEMU's machine protocol (QMP) over a Unix socket.
 *
 * QMP is newline-separated JSON: a greeting {"QMP":{...}}, then
 * qmp_capabilities to leave negotiation mode, then commands
 * {"execute":CMD,"arguments":{...},"id":N} answered by {"return":...} or
 * {"error":{"class":C,"desc":D}} with the same id, and asynchronous events
 * {"event":NAME,...} at any time. This client is synchronous and bounded:
 * every call takes a timeout, a reply is matched by its id (a late reply to
 * a command that timed out is dropped), events in between are kept in a
 * short list the caller can look into (qmp_event_seen) and otherwise
 * skipped. Bytes from QEMU are checked: a line longer than QMP_LINE_MAX,
 * bad JSON or a reply of the wrong shape is -EPROTO with a message, never
 * a crash.
 *
 * QEMU 7.2 serves one QMP client per socket at a time: a second connect
 * waits in the backlog until the first client leaves, so a driver keeps one
 * connection per QEMU and does not open a second one beside it.
 *
 * Errors: 0 or a negative errno; err gets a message naming the socket or
 * the command and, for a QMP error reply, QEMU's class and description
 * ("migrate-incoming: GenericError: Failed to bind socket: Address already
 * in use"), which is -EREMOTEIO.
 */
#ifndef MIGD_QMP_H
#define MIGD_QMP_H

#include <stddef.h>

#include <jansson.h>

#define QMP_LINE_MAX (1 << 20)
#define QMP_EVENTS_KEPT 16

struct qmp;

/*
 * Connect to the QMP socket at path, retrying while it does not exist yet
 * or refuses (QEMU still starting) until timeout_ms; read the greeting and
 * negotiate capabilities, all within timeout_ms. *out is the caller's to
 * qmp_close().
 */
int qmp_connect(const char *path, int timeout_ms, struct qmp **out, char *err, size_t errlen);
/*
 * The same on a descriptor already connected (takes ownership of fd, also
 * on failure); name is used in messages. For tests with a fake peer.
 */
int qmp_attach(int fd, const char *name, int timeout_ms, struct qmp **out, char *err,
	       size_t errlen);
void qmp_close(struct qmp *q); /* NULL is fine */

/*
 * Run cmd with args (taken: freed in every case; NULL for none), waiting up
 * to timeout_ms for its reply. On success *result (if result is not NULL)
 * is the "return" value, a new reference the caller must json_decref().
 * -EREMOTEIO: QEMU answered with an error (class and desc in err);
 * -ETIMEDOUT; -ECONNRESET: QEMU closed the socket; -EPROTO: malformed.
 */
int qmp_execute(struct qmp *q, const char *cmd, json_t *args, int timeout_ms, json_t **result,
		char *err, size_t errlen);

/*
 * The same with the descriptor fd passed along (SCM_RIGHTS) when fd >= 0:
 * getfd {"fdname": N} then names it for "fd:N" URIs. The caller keeps its
 * own fd: QEMU receives a copy. Only on a Unix socket.
 */
int qmp_execute_fd(struct qmp *q, const char *cmd, json_t *args, int fd, int timeout_ms,
		   json_t **result, char *err, size_t errlen);

/*
 * Whether an event named name arrived since the connection opened or since
 * qmp_events_clear(); only the last QMP_EVENTS_KEPT events are kept.
 * Events are read only while a command waits for its reply.
 */
int qmp_event_seen(const struct qmp *q, const char *name);
void qmp_events_clear(struct qmp *q);

/* 1 once the peer closed or the stream broke: the connection is useless. */
int qmp_broken(const struct qmp *q);

#endif
