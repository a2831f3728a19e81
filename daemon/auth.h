/*
 * auth: who may talk to migd, and what they may ask (migd(8), SECURITY).
 *
 * With a keys directory configured, every socket migd binds (requests,
 * events, agents) is a CURVE server, and migd answers ZeroMQ's
 * authentication requests itself (ZAP, RFC 27, inproc://zeromq.zap.01,
 * bound in migd's one ZeroMQ context before any other socket):
 *
 *	DIR/migd.key          migd's key pair (0600; migd refuses a key others can read)
 *	DIR/migd.pub          its public key, for clients and agents to pin
 *	DIR/clients/NAME.pub  the allow-list: one public key per file, with a role
 *	DIR/agents/GUEST.key  key pairs migd made for guests' agents (guest add)
 *
 * A request or event client gets in only with a key on the allow-list; an
 * agent only with a key recorded with a guest (db_keys.h). ZAP gives each
 * connection the client's public key as its User-Id, and that key is
 * looked up again on every request, so a key removed from the list (and a
 * SIGHUP, auth_reload) stops an already-open connection at its next
 * request. Roles nest: reader (read anything), operator (also migrate,
 * evacuate, abort, checkpoints, restores, policies, health reports),
 * admin (also hosts, guests and keys).
 *
 * Every refusal is counted by reason and logged once per peer, reason and
 * command (a client that retries is not a flood of lines); the counts go
 * out in migd's status reply.
 *
 * Without keys, migd serves plain ZeroMQ, and only on loopback (or IPC)
 * unless insecure is set; that is logged loudly at start.
 */
#ifndef MIGD_AUTH_H
#define MIGD_AUTH_H

#include <jansson.h>
#include <stddef.h>

#include "curve_keys.h"
#include "db.h"

enum auth_reason {
	AUTH_NO_CURVE,       /* the client did not speak CURVE */
	AUTH_HANDSHAKE,      /* CURVE handshake failed: the client pinned another server key */
	AUTH_UNKNOWN_KEY,    /* a key not (or no longer) on the allow-list */
	AUTH_ROLE,           /* a key whose role does not allow the command */
	AUTH_AGENT,          /* an agent key of no guest, or of another guest */
	AUTH_N_REASONS,
};

struct auth_opts {
	const char *keys_dir;      /* "": no CURVE */
	int insecure;              /* serve plain ZeroMQ beyond loopback */
	const char *endpoints[4];  /* what migd binds, checked against the rule above */
};

struct auth;

/*
 * Make migd's ZeroMQ context; with keys_dir, load (or on first start
 * create) the keys and bind the ZAP handler. -errno with the reason in err:
 * a secret key others can read, a bad key file, a non-loopback endpoint
 * without keys or insecure. db (borrowed) holds the agents' keys.
 */
int auth_new(const struct auth_opts *opts, struct db *db, struct auth **out, char *err,
	     size_t errlen);
void auth_free(struct auth *auth);

/* migd's one ZeroMQ context: every socket it binds is made in it. */
void *auth_context(struct auth *auth);
int auth_enabled(const struct auth *auth);

/* Make socket (not yet bound) a CURVE server in ZAP domain ("api",
 * "events", "agent") and watch its failed handshakes; what and endpoint
 * name it in log lines. A no-op without keys. */
int auth_serve_socket(struct auth *auth, void *socket, const char *domain, const char *what,
		      const char *endpoint, char *err, size_t errlen);

/* The sockets the main loop polls for auth_tick (ZAP, handshake monitors). */
size_t auth_poll_sockets(struct auth *auth, void **sockets, size_t max);
/* Answer waiting ZAP requests, log and count failed handshakes. */
void auth_tick(struct auth *auth);

/* SIGHUP: read the allow-list again. The number of keys that left it (or
 * lost their role) in *removed. The old list stays on an error. */
int auth_reload(struct auth *auth, unsigned *removed, char *err, size_t errlen);

/* May the peer whose ZAP User-Id is user_id (NULL without keys) run cmd?
 * 0, or -EACCES with the reason in err (logged and counted). */
int auth_request(struct auth *auth, const char *user_id, const char *cmd, char *err,
		 size_t errlen);
/* May the agent whose User-Id is user_id speak for guest? Same answers. */
int auth_agent(struct auth *auth, const char *user_id, const char *guest, char *err,
	       size_t errlen);

/* The least role that may run cmd (commands not listed: admin). */
enum curve_role auth_command_role(const char *cmd);

/*
 * The agent key of a new guest: given_z85 when set (checked), else, with
 * keys, a new pair in DIR/agents/GUEST.key; "" without keys and none
 * given. -EINVAL with the bad value in err.
 */
int auth_guest_key(struct auth *auth, const char *guest, const char *given_z85,
		   char out[CURVE_Z85_LEN + 1], char *err, size_t errlen);
/* {"mode": "curve" | "none", "clients": N, "refused": {reason: count}} */
json_t *auth_json(const struct auth *auth);
/* "no_curve", "handshake", "unknown_key", "role", "agent". */
const char *auth_reason_name(enum auth_reason reason);
/* Refusals of one reason so far (a metrics endpoint reads these). */
unsigned long long auth_refused(const struct auth *auth, enum auth_reason reason);

#endif
