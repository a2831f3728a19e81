/*
 * agent_proto: the two protocols of migagent, the only place their format
 * is defined.
 *
 * 1. migagent <-> migd (CONTRACTS.md, "migagent protocol"). ZeroMQ: migd
 *    binds a ROUTER, each agent connects a DEALER. One message = one frame
 *    holding one JSON object of at most AGENT_MAX_MSG_BYTES, with "v":1 and
 *    "type".
 *      agent -> migd: hello, activity (every second; also the heartbeat),
 *                     reply {id, ok, result, error?}, error {id?, error}
 *      migd -> agent: quiesce {id, deadline_ms}, resume {id, reconnect?},
 *                     ping {id}
 *    An id is echoed back as it came (a string or an integer).
 *    resume's "reconnect" (a boolean, absent = false) asks every client to
 *    drop its sfs server connections before it goes on: after a restore
 *    from a checkpoint the guest's TCP state is from the cut and the
 *    servers' is not. The agent's reply to a resume says what it did in
 *    result.reconnect; an agent older than the flag ignores it (unknown
 *    keys are ignored in both protocols) and its reply has no "reconnect".
 *
 * 2. libsfs <-> migagent, the local control point: a Unix stream socket
 *    (default AGENT_SOCKET_DEFAULT), one JSON object per line ('\n'
 *    ended, at most AGENT_LINE_MAX bytes with the newline), "v":1 and
 *    "type" in each:
 *      client -> agent: register {pid, comm}           first, once
 *                       stats {read_bytes, write_bytes, inflight, requests}
 *                                                      every second (counters
 *                                                      are cumulative)
 *                       quiesced {id, ok, requests, bytes, time_us, error?}
 *                       resumed {id}
 *      agent -> client: quiesce {id}, resume {id, reconnect?}, error {error}
 *    resume's "reconnect" (a boolean, absent = false): close every sfs
 *    server connection before opening the gate, so the next request of any
 *    thread connects afresh. A client that sees the socket close drops its
 *    connections and reopens its gate by itself.
 *
 * Unknown keys are ignored by both sides of both protocols, so an optional
 * field can be added without a new version: an old peer just does without.
 *
 * Parsers never trust the peer: every field is checked for presence, type
 * and range, and the reason for a refusal names the field and the value.
 */
#ifndef MIGD_AGENT_PROTO_H
#define MIGD_AGENT_PROTO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define AGENT_PROTO_VERSION 1
#define AGENT_MAX_MSG_BYTES 65536u
#define AGENT_LINE_MAX 4096u
#define AGENT_SOCKET_DEFAULT "/run/migagent/sfs.sock"
#define AGENT_COMM_MAX 32
#define AGENT_DEADLINE_MAX_MS 3600000u /* a quiesce deadline past an hour is a bug */

/* --- migd -> agent --- */

enum agent_cmd_type { AGENT_CMD_QUIESCE = 1, AGENT_CMD_RESUME, AGENT_CMD_PING };

struct agent_cmd {
	enum agent_cmd_type type;
	json_t *id;           /* the command's id (string or integer), a reference */
	uint64_t deadline_ms; /* quiesce only */
	int reconnect;        /* resume only: drop sfs server connections first */
};

/*
 * Parse a command from migd. 0, or -EMSGSIZE / -EINVAL / -EPROTONOSUPPORT
 * with "bad message: why" in err. On failure *id_out (may be NULL) gets a
 * new reference to the message's id when one could be read, so the error
 * can name it; the caller releases it (json_decref accepts NULL).
 */
int agent_cmd_parse(const char *text, size_t len, struct agent_cmd *out, json_t **id_out,
		    char *err, size_t errlen);
/* Release what a parsed command holds. */
void agent_cmd_clear(struct agent_cmd *cmd);
/* Build a command (for migd's side and tests); id is borrowed. */
json_t *agent_cmd_new(enum agent_cmd_type type, json_t *id, uint64_t deadline_ms);
/* A resume, with "reconnect":true when reconnect is set; id is borrowed. */
json_t *agent_cmd_resume_new(json_t *id, int reconnect);
const char *agent_cmd_name(enum agent_cmd_type type);

/* --- agent -> migd --- */

struct agent_client_activity {
	int64_t pid;
	char comm[AGENT_COMM_MAX];
	uint64_t read_bps, write_bps, inflight;
};

json_t *agent_msg_hello(const char *guest, const char *hostname, const char *version,
			int64_t pid);
/* Totals over every client; the list names at most AGENT_ACTIVITY_LISTED
 * of them (the busiest first is the caller's choice), so that the message
 * stays under AGENT_MAX_MSG_BYTES. */
#define AGENT_ACTIVITY_LISTED 256
json_t *agent_msg_activity(const char *guest, unsigned interval_ms, int quiesced,
			   const struct agent_client_activity *clients, size_t n_clients);
/* Replies; both steal result (NULL = {}); id is borrowed. */
json_t *agent_msg_reply_ok(json_t *id, json_t *result);
json_t *agent_msg_reply_error(json_t *id, json_t *result, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* {"type":"error"} for a message that could not be read; id may be NULL. */
json_t *agent_msg_error(json_t *id, const char *msg);

/*
 * The envelope of any message of either direction (migd's side uses it for
 * what agents send): *root gets the object (the caller's to json_decref,
 * also on error; may be NULL) and *type its "type". 0, or -EMSGSIZE,
 * -EINVAL, -EPROTONOSUPPORT with the reason in err.
 */
int agent_envelope_parse(const char *text, size_t len, size_t max_bytes, json_t **root,
			 const char **type, char *err, size_t errlen);

/* Compact one-line text of msg, which it steals; NULL when out of memory.
 * The caller frees the text. */
char *agent_msg_text(json_t *msg);

/* --- libsfs <-> agent (local socket) --- */

enum agent_local_type {
	AGENT_LOCAL_REGISTER = 1,
	AGENT_LOCAL_STATS,
	AGENT_LOCAL_QUIESCED,
	AGENT_LOCAL_RESUMED,
	AGENT_LOCAL_QUIESCE,
	AGENT_LOCAL_RESUME,
	AGENT_LOCAL_ERROR,
};

struct agent_local_msg {
	enum agent_local_type type;
	uint64_t id;                   /* quiesce, quiesced, resume, resumed */
	int reconnect;                 /* resume: drop server connections first */
	int64_t pid;                   /* register */
	char comm[AGENT_COMM_MAX];     /* register */
	uint64_t read_bytes, write_bytes, inflight, requests; /* stats */
	int ok;                        /* quiesced */
	uint64_t drained_requests, drained_bytes, time_us;    /* quiesced */
	char error[256];               /* quiesced (ok 0), error */
};

/* One line, without or with its '\n'. 0, or -EMSGSIZE / -EINVAL /
 * -EPROTONOSUPPORT with the reason in err. */
int agent_local_parse(const char *line, size_t len, struct agent_local_msg *out, char *err,
		      size_t errlen);
/* The line for msg, '\n' ended, into buf: its length, or -EMSGSIZE / -EINVAL
 * (unknown type) / -ENOMEM. */
int agent_local_format(const struct agent_local_msg *msg, char *buf, size_t cap);
const char *agent_local_type_name(enum agent_local_type type);

/* The local socket path in effect: env SFS_AGENT_SOCKET if set, else
 * conf_value if non-NULL, else AGENT_SOCKET_DEFAULT. NULL when it is "off"
 * or empty (the control point is disabled). */
const char *agent_socket_path(const char *conf_value);

#endif
