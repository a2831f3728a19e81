/*
 * agent_link: migd's side of the migagent protocol (CONTRACTS.md, "migagent
 * protocol"): a ZeroMQ ROUTER that every guest's agent connects a DEALER to.
 *
 * Agents say hello (guest name, version), then report their guest's I/O
 * every second (read and write bytes/s, requests in flight, per client);
 * that report is also the heartbeat: an agent silent for 3 s is gone. migd
 * asks them to quiesce, resume or answer a ping; each request has an id and
 * a real-time bound, and the executor polls for its answer, so nothing
 * here ever blocks the main loop. Agents are known by guest name; a later
 * hello (or activity report) from another connection for the same guest
 * takes over, so a reconnecting agent, or one that survived a migd restart
 * and only reports activity, is found again without any help.
 *
 * Everything an agent sends is checked: a message that is not one JSON
 * object of the protocol gets an "error" message back naming what was
 * wrong and a log line with the bad value; the agent and every other agent
 * carry on.
 *
 * agent.connected and agent.gone go out as events (db_event, stamped with
 * the cluster clock the caller gives).
 */
#ifndef MIGD_AGENT_LINK_H
#define MIGD_AGENT_LINK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

#define AGENT_PROTO_VERSION 1
#define AGENT_MAX_MSG_BYTES (64 * 1024)
#define AGENT_GONE_AFTER_MS 3000

struct agent_link;

/* What migd knows of one guest's agent. */
struct agent_status {
	char guest[DB_NAME_MAX];
	int connected;               /* heard from within AGENT_GONE_AFTER_MS */
	char version[32];            /* "" until a hello */
	char hostname[DB_NAME_MAX];
	int64_t pid;                 /* -1 unknown */
	uint64_t last_seen_ms;       /* real time (now_ms) of its last message */
	int has_activity;            /* an activity report came */
	double read_bps, write_bps;  /* from the last report */
	int64_t inflight;
	int quiesced;
};

/* An answer to one request. */
struct agent_reply {
	int ok;
	char error[256];             /* when !ok */
	json_t *result;              /* an object (maybe empty); borrowed until forgotten */
	uint64_t rtt_ms;             /* sent to answered, real time */
};

typedef int64_t (*agent_clock_fn)(void *arg);

/*
 * Bind a ROUTER at endpoint. Events go into db (borrowed) stamped by
 * clock(clock_arg). -errno with "agent listen tcp://...: Address already in
 * use" in err.
 */
int agent_link_new(const char *endpoint, struct db *db, agent_clock_fn clock, void *clock_arg,
		   struct agent_link **out, char *err, size_t errlen);
/* The same in auth's ZeroMQ context, the ROUTER a CURVE server when auth
 * has keys; then an agent may speak only for the guest its key is
 * recorded with (auth_agent). */
struct auth;
int agent_link_new_auth(const char *endpoint, struct db *db, agent_clock_fn clock,
			void *clock_arg, struct auth *auth, struct agent_link **out, char *err,
			size_t errlen);
void agent_link_free(struct agent_link *al);

/* The ROUTER socket, for the main loop's zmq_poll (readable: call tick). */
void *agent_link_socket(struct agent_link *al);

/* Read every message waiting, expire silent agents and overdue requests. */
void agent_link_tick(struct agent_link *al);
/* Handle one message as if it came off the socket from routing id rid:
 * the same checks, state changes and answers (for tests and fuzzing). */
void agent_link_feed(struct agent_link *al, const void *rid, size_t rid_len, const void *data,
		     size_t len);

/* 0 with *out, or -ENOENT when the guest's agent was never heard of. */
int agent_link_status(struct agent_link *al, const char *guest, struct agent_status *out);
/* The agent's state as an API object ({connected:false} when never heard
 * of; null when al is NULL: agents are off); the caller owns it. */
json_t *agent_link_json(struct agent_link *al, const char *guest);
/* Every agent ever heard of (this run), as API objects. */
json_t *agent_link_list(struct agent_link *al);

/*
 * Send a request of type "quiesce" (with deadline_ms), "resume" or "ping"
 * to guest's agent; its answer is awaited for at most wait_ms (real time).
 * 0 with *id, -ENOTCONN when the agent is not connected, -EINVAL for an
 * unknown type, -ENOMEM.
 */
int agent_link_send(struct agent_link *al, const char *guest, const char *type,
		    unsigned deadline_ms, unsigned wait_ms, uint64_t *id);
/*
 * agent_link_send of a "resume", with "reconnect": true when reconnect is
 * set: every sfs client of the guest closes its server connections before
 * it goes on. For a resume after a restore from a checkpoint (the guest's
 * TCP state is from the cut, the servers' is not); not after a live
 * migration, where the connections moved with the guest and reconnecting
 * would only cost time. The agent's answer has result.reconnect = true
 * when it passed the flag on (an agent older than the flag ignores it and
 * leaves reconnect out). The same returns as agent_link_send.
 */
int agent_link_send_resume(struct agent_link *al, const char *guest, int reconnect,
			   unsigned wait_ms, uint64_t *id);
/*
 * The answer to request id: 1 with *out (result borrowed until
 * agent_link_forget), 0 while still waiting, -ETIMEDOUT when wait_ms passed
 * with no answer, -ECONNRESET when the agent went away first, -ENOENT for an
 * unknown id.
 */
int agent_link_reply(struct agent_link *al, uint64_t id, struct agent_reply *out);
/* Drop request id (answered or not); a late answer is then logged and dropped. */
void agent_link_forget(struct agent_link *al, uint64_t id);

#endif
