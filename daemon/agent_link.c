/*
 * agent_link: see agent_link.h. Agents live in an array sorted by guest
 * name (a cluster may have 10,000 of them, each reporting every second,
 * and guest.list asks for every one), requests (a few per running
 * migration) in a plain array. Every message names its guest, or answers a
 * request that does, so a message is matched by name and then checked
 * against the connection it came on; looking a connection up by routing id
 * (a linear walk) is left to the rare cases: a reconnect, a connection
 * that changes its guest. An agent's routing id is ZeroMQ's: a new
 * connection gets a new one, which is why a guest's entry follows whatever
 * connection last spoke for it.
 */
#include "agent_link.h"
#include "auth.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"
#include "migd_proto.h"
#include "util.h"

#define RID_MAX 256
#define MAX_MESSAGES_PER_TICK 256

struct agent {
	struct agent_status st;
	unsigned char rid[RID_MAX];
	size_t rid_len;
	json_t *clients;             /* the last report's clients array */
};

struct request {
	uint64_t id;
	char guest[DB_NAME_MAX];
	char type[16];
	uint64_t sent_ms, expire_ms;
	int answered, agent_gone;
	struct agent_reply reply;
};

struct agent_link {
	struct db *db;
	agent_clock_fn clock;
	void *clock_arg;
	struct auth *auth;             /* NULL: no keys; else its context */
	void *zctx, *router;
	struct agent *agents;
	size_t n_agents, cap_agents;
	struct request *reqs;
	size_t n_reqs, cap_reqs;
	uint64_t next_id;
	uint64_t next_expiry_ms;       /* look for silent agents again then */
};

/* ---- setup -------------------------------------------------------------- */

int agent_link_new(const char *endpoint, struct db *db, agent_clock_fn clock, void *clock_arg,
		   struct agent_link **out, char *err, size_t errlen)
{
	return agent_link_new_auth(endpoint, db, clock, clock_arg, NULL, out, err, errlen);
}

int agent_link_new_auth(const char *endpoint, struct db *db, agent_clock_fn clock,
			void *clock_arg, struct auth *auth, struct agent_link **out, char *err,
			size_t errlen)
{
	struct agent_link *al = calloc(1, sizeof(*al));
	int linger = 0, mandatory = 1;
	int64_t max = 4 * AGENT_MAX_MSG_BYTES; /* larger: dropped by ZeroMQ, not buffered */
	if (!al) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	al->db = db;
	al->clock = clock;
	al->clock_arg = clock_arg;
	al->next_id = 1;
	al->auth = auth;
	if (!(al->zctx = auth ? auth_context(auth) : zmq_ctx_new()) ||
	    !(al->router = zmq_socket(al->zctx, ZMQ_ROUTER))) {
		snprintf(err, errlen, "agent listen: %s", zmq_strerror(zmq_errno()));
		agent_link_free(al);
		return -ENOMEM;
	}
	zmq_setsockopt(al->router, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(al->router, ZMQ_MAXMSGSIZE, &max, sizeof(max));
	/* a message to a routing id that is gone fails (EHOSTUNREACH) instead
	 * of vanishing, so a request to a dead connection is known at once */
	zmq_setsockopt(al->router, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof(mandatory));
	if (auth_serve_socket(auth, al->router, "agent", "agent listen", endpoint, err, errlen) < 0) {
		agent_link_free(al);
		return -EIO;
	}
	if (zmq_bind(al->router, endpoint) < 0) {
		snprintf(err, errlen, "agent listen %s: %s", endpoint, zmq_strerror(zmq_errno()));
		agent_link_free(al);
		return -EADDRINUSE;
	}
	*out = al;
	return 0;
}

void agent_link_free(struct agent_link *al)
{
	if (!al)
		return;
	for (size_t i = 0; i < al->n_agents; i++)
		json_decref(al->agents[i].clients);
	for (size_t i = 0; i < al->n_reqs; i++)
		json_decref(al->reqs[i].reply.result);
	free(al->agents);
	free(al->reqs);
	if (al->router)
		zmq_close(al->router);
	if (al->zctx && !al->auth)
		zmq_ctx_term(al->zctx);
	free(al);
}

void *agent_link_socket(struct agent_link *al)
{
	return al->router;
}

/* ---- sending -------------------------------------------------------------- */

/* One JSON object to one routing id; steals msg. */
static int send_to(struct agent_link *al, const unsigned char *rid, size_t rid_len, json_t *msg)
{
	char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
	int rc = 0;
	json_decref(msg);
	if (!text)
		return -ENOMEM;
	if (zmq_send(al->router, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(al->router, text, strlen(text), ZMQ_DONTWAIT) < 0)
		rc = -zmq_errno();
	free(text);
	return rc;
}

/* Tell the sender what was wrong with its message (id echoed when it had one). */
static void send_error(struct agent_link *al, const unsigned char *rid, size_t rid_len,
		       json_t *id, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void send_error(struct agent_link *al, const unsigned char *rid, size_t rid_len,
		       json_t *id, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_warnx("agent: %s", text);
	json_t *msg = json_pack("{s:i, s:s, s:s}", "v", AGENT_PROTO_VERSION, "type", "error",
				"error", text);
	if (json_is_integer(id))
		json_object_set(msg, "id", id);
	send_to(al, rid, rid_len, msg);
}

/* ---- agents --------------------------------------------------------------- */

/* Where guest is, or would be inserted, in the sorted array. */
static size_t guest_index(const struct agent_link *al, const char *guest, int *found)
{
	size_t lo = 0, hi = al->n_agents;
	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(al->agents[mid].st.guest, guest);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct agent *by_guest(struct agent_link *al, const char *guest)
{
	int found;
	size_t i = guest_index(al, guest, &found);
	return found ? &al->agents[i] : NULL;
}

static int same_conn(const struct agent *a, const unsigned char *rid, size_t len)
{
	return a->st.connected && a->rid_len == len && memcmp(a->rid, rid, len) == 0;
}

static struct agent *by_rid(struct agent_link *al, const unsigned char *rid, size_t len)
{
	for (size_t i = 0; i < al->n_agents; i++) {
		struct agent *a = &al->agents[i];
		if (a->st.connected && a->rid_len == len && memcmp(a->rid, rid, len) == 0)
			return a;
	}
	return NULL;
}

static void agent_event(struct agent_link *al, const char *type, const struct agent *a)
{
	json_t *ev = migd_event_new(type, al->clock(al->clock_arg));
	json_object_set_new(ev, "guest", json_string(a->st.guest));
	json_object_set_new(ev, "agent", agent_link_json(al, a->st.guest));
	if (db_event(al->db, ev) < 0)
		log_warnx("agent %s: event %s not stored", a->st.guest, type);
}

/* The agent went silent or another connection took its guest over. */
static void agent_gone(struct agent_link *al, struct agent *a, const char *why)
{
	a->st.connected = 0;
	log_info("agent of %s gone: %s", a->st.guest, why);
	for (size_t i = 0; i < al->n_reqs; i++) {
		struct request *r = &al->reqs[i];
		if (!r->answered && strcmp(r->guest, a->st.guest) == 0)
			r->agent_gone = 1;
	}
	agent_event(al, "agent.gone", a);
}

/* guest now speaks from rid: a new entry, or an entry taking the new
 * connection; *fresh set when it was not connected (the caller fills in
 * what it knows, then says agent.connected). NULL when out of memory. */
static struct agent *attach(struct agent_link *al, const char *guest, const unsigned char *rid,
			    size_t rid_len, int *fresh)
{
	int found;
	size_t at = guest_index(al, guest, &found);
	struct agent *a = &al->agents[at];
	if (!found) {
		if (GROW(al->agents, al->cap_agents, al->n_agents + 1) < 0)
			return NULL;
		a = &al->agents[at];
		memmove(a + 1, a, (al->n_agents++ - at) * sizeof(*a));
		memset(a, 0, sizeof(*a));
		snprintf(a->st.guest, sizeof(a->st.guest), "%s", guest);
		a->st.pid = -1;
	}
	int new_conn = !a->st.connected || a->rid_len != rid_len ||
		       memcmp(a->rid, rid, rid_len) != 0;
	if (new_conn && a->st.connected) {
		/* a reconnect: what was asked of the old connection is lost */
		for (size_t i = 0; i < al->n_reqs; i++)
			if (!al->reqs[i].answered && strcmp(al->reqs[i].guest, guest) == 0)
				al->reqs[i].agent_gone = 1;
	}
	memcpy(a->rid, rid, rid_len);
	a->rid_len = rid_len;
	a->st.last_seen_ms = now_ms();
	*fresh = !a->st.connected;
	if (*fresh) {
		a->st.connected = 1;
		a->st.has_activity = 0;
	}
	return a;
}

static void connected(struct agent_link *al, struct agent *a)
{
	log_info("agent of %s connected%s%s", a->st.guest, *a->st.version ? ", version " : "",
		 a->st.version);
	agent_event(al, "agent.connected", a);
}

/* ---- reading what agents send -------------------------------------------- */

struct inbound {
	const unsigned char *rid;
	size_t rid_len;
	const char *user_id;         /* the agent's public key (ZAP), NULL without keys */
	json_t *msg;
	json_t *id;                  /* the message's "id", when it has one */
};

/* A string member: 0, or an error sent naming the member. */
static int need_str(struct agent_link *al, const struct inbound *in, const char *key,
		    size_t max, const char **out)
{
	json_t *v = json_object_get(in->msg, key);
	if (!json_is_string(v)) {
		send_error(al, in->rid, in->rid_len, in->id, "bad message: \"%s\" %s", key,
			   v ? "is not a string" : "is missing");
		return -EINVAL;
	}
	*out = json_string_value(v);
	if (strlen(*out) >= max) {
		send_error(al, in->rid, in->rid_len, in->id,
			   "bad message: \"%s\" = \"%.40s...\": longer than %zu bytes", key, *out,
			   max - 1);
		return -EINVAL;
	}
	return 0;
}

/* An optional non-negative number member (absent: 0). */
static int opt_rate(struct agent_link *al, const struct inbound *in, const char *key,
		    double *out)
{
	json_t *v = json_object_get(in->msg, key);
	*out = 0;
	if (!v)
		return 0;
	if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < 0) {
		char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		send_error(al, in->rid, in->rid_len, in->id,
			   "bad message: \"%s\" = %.60s: expected a number >= 0", key,
			   text ? text : "?");
		free(text);
		return -EINVAL;
	}
	*out = json_number_value(v);
	return 0;
}

/* The guest a message names must be a guest name. */
static int guest_of(struct agent_link *al, const struct inbound *in, const char **guest)
{
	if (need_str(al, in, "guest", DB_NAME_MAX, guest) < 0)
		return -EINVAL;
	if (db_name_check(*guest) < 0) {
		send_error(al, in->rid, in->rid_len, in->id,
			   "bad message: \"guest\" = \"%s\": not a guest name", *guest);
		return -EINVAL;
	}
	char why[256];
	if (auth_agent(al->auth, in->user_id, *guest, why, sizeof(why)) < 0) {
		send_error(al, in->rid, in->rid_len, in->id, "%s", why);
		return -EINVAL;
	}
	return 0;
}

static void on_hello(struct agent_link *al, const struct inbound *in)
{
	const char *guest, *version = "", *hostname = "";
	json_t *pid = json_object_get(in->msg, "pid");
	if (guest_of(al, in, &guest) < 0)
		return;
	if (json_object_get(in->msg, "version") && need_str(al, in, "version", 32, &version) < 0)
		return;
	if (json_object_get(in->msg, "hostname") &&
	    need_str(al, in, "hostname", DB_NAME_MAX, &hostname) < 0)
		return;
	struct agent *old = by_rid(al, in->rid, in->rid_len);
	if (old && strcmp(old->st.guest, guest) != 0)
		agent_gone(al, old, "its connection now speaks for another guest");
	int fresh;
	struct agent *a = attach(al, guest, in->rid, in->rid_len, &fresh);
	if (!a)
		return;
	snprintf(a->st.version, sizeof(a->st.version), "%s", version);
	snprintf(a->st.hostname, sizeof(a->st.hostname), "%s", hostname);
	a->st.pid = json_is_integer(pid) ? json_integer_value(pid) : -1;
	if (fresh)
		connected(al, a);
}

static void on_activity(struct agent_link *al, const struct inbound *in)
{
	const char *guest;
	double rd, wr, inflight;
	json_t *clients = json_object_get(in->msg, "clients");
	json_t *quiesced = json_object_get(in->msg, "quiesced");
	if (guest_of(al, in, &guest) < 0 || opt_rate(al, in, "read_bps", &rd) < 0 ||
	    opt_rate(al, in, "write_bps", &wr) < 0 || opt_rate(al, in, "inflight", &inflight) < 0)
		return;
	if (clients && !json_is_array(clients)) {
		send_error(al, in->rid, in->rid_len, in->id, "bad message: \"clients\" is not an array");
		return;
	}
	if (quiesced && !json_is_boolean(quiesced)) {
		send_error(al, in->rid, in->rid_len, in->id, "bad message: \"quiesced\" is not a boolean");
		return;
	}
	struct agent *known = by_guest(al, guest);
	struct agent *same = known && same_conn(known, in->rid, in->rid_len)
				     ? known : by_rid(al, in->rid, in->rid_len);
	if (same && strcmp(same->st.guest, guest) != 0) {
		send_error(al, in->rid, in->rid_len, in->id,
			   "bad message: activity for guest \"%s\" on the connection of \"%s\"",
			   guest, same->st.guest);
		return;
	}
	int fresh;
	struct agent *a = attach(al, guest, in->rid, in->rid_len, &fresh);
	if (!a)
		return;
	if (fresh)
		connected(al, a); /* no hello on this connection (yet): version unknown */
	a->st.has_activity = 1;
	a->st.read_bps = rd;
	a->st.write_bps = wr;
	a->st.inflight = (int64_t)inflight;
	a->st.quiesced = json_is_true(quiesced);
	json_decref(a->clients);
	a->clients = clients ? json_deep_copy(clients) : NULL;
}

static struct request *find_request(struct agent_link *al, uint64_t id)
{
	for (size_t i = 0; i < al->n_reqs; i++)
		if (al->reqs[i].id == id)
			return &al->reqs[i];
	return NULL;
}

/* reply (ok true/false) and error (the agent could not read ours). */
static void on_answer(struct agent_link *al, const struct inbound *in, int is_error)
{
	struct request *r = json_is_integer(in->id)
				    ? find_request(al, (uint64_t)json_integer_value(in->id)) : NULL;
	struct agent *a = r ? by_guest(al, r->guest) : NULL;
	if (!a || !same_conn(a, in->rid, in->rid_len))
		a = by_rid(al, in->rid, in->rid_len);
	json_t *ok = json_object_get(in->msg, "ok"), *result = json_object_get(in->msg, "result");
	json_t *error = json_object_get(in->msg, "error");
	if (is_error) {
		log_warnx("agent of %s could not read a message of ours: %s", a ? a->st.guest : "?",
			  json_string_value(error) ? json_string_value(error) : "(no reason)");
		if (!json_is_integer(in->id))
			return;
	} else if (!json_is_integer(in->id) || !json_is_boolean(ok) ||
		   (result && !json_is_object(result))) {
		send_error(al, in->rid, in->rid_len, in->id, "bad message: a reply needs an integer "
			   "\"id\", a boolean \"ok\" and an object \"result\" if any");
		return;
	}
	if (!r || r->answered || !a || strcmp(a->st.guest, r->guest) != 0) {
		log_warnx("agent of %s: answer to request %" JSON_INTEGER_FORMAT
			  " that it was not asked or that is over; dropped", a ? a->st.guest : "?",
			  json_integer_value(in->id));
		return;
	}
	if (a)
		a->st.last_seen_ms = now_ms();
	r->answered = 1;
	r->reply.ok = !is_error && json_is_true(ok);
	r->reply.rtt_ms = now_ms() - r->sent_ms;
	r->reply.result = result ? json_incref(result) : json_object();
	if (!r->reply.ok)
		snprintf(r->reply.error, sizeof(r->reply.error), "%s",
			 json_string_value(error) ? json_string_value(error) : "failed (no reason)");
}

/* One message as received: checked, then dispatched by type. */
static void handle(struct agent_link *al, const unsigned char *rid, size_t rid_len,
		   const char *user_id, const char *data, size_t len)
{
	json_error_t jerr;
	struct inbound in = { rid, rid_len, user_id, NULL, NULL };
	if (len > AGENT_MAX_MSG_BYTES) {
		send_error(al, rid, rid_len, NULL, "bad message: %zu bytes, at most %d", len,
			   AGENT_MAX_MSG_BYTES);
		return;
	}
	in.msg = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!in.msg || !json_is_object(in.msg)) {
		send_error(al, rid, rid_len, NULL, "bad message: %s: \"%.*s\"",
			   in.msg ? "not a JSON object" : jerr.text, (int)(len < 60 ? len : 60), data);
		json_decref(in.msg);
		return;
	}
	in.id = json_object_get(in.msg, "id");
	json_t *v = json_object_get(in.msg, "v");
	const char *type = json_string_value(json_object_get(in.msg, "type"));
	if (!json_is_integer(v) || json_integer_value(v) != AGENT_PROTO_VERSION)
		send_error(al, rid, rid_len, in.id, "bad message: \"v\" must be %d",
			   AGENT_PROTO_VERSION);
	else if (!type)
		send_error(al, rid, rid_len, in.id, "bad message: \"type\" is missing");
	else if (strcmp(type, "hello") == 0)
		on_hello(al, &in);
	else if (strcmp(type, "activity") == 0)
		on_activity(al, &in);
	else if (strcmp(type, "reply") == 0)
		on_answer(al, &in, 0);
	else if (strcmp(type, "error") == 0)
		on_answer(al, &in, 1);
	else
		send_error(al, rid, rid_len, in.id, "bad message: unknown type \"%.40s\" (hello, "
			   "activity, reply, error)", type);
	json_decref(in.msg);
}

/* One message off the socket: 1 when one was read, 0 when none waited. */
static int read_one(struct agent_link *al)
{
	zmq_msg_t rid, body;
	int more = 0;
	size_t more_len = sizeof(more);
	zmq_msg_init(&rid);
	if (zmq_msg_recv(&rid, al->router, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&rid);
		return 0;
	}
	zmq_msg_init(&body);
	zmq_getsockopt(al->router, ZMQ_RCVMORE, &more, &more_len);
	if (!more || zmq_msg_recv(&body, al->router, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&body);
		zmq_msg_close(&rid);
		return 1; /* an empty message: nothing to answer */
	}
	zmq_getsockopt(al->router, ZMQ_RCVMORE, &more, &more_len);
	if (more) { /* take the rest, then refuse */
		zmq_msg_t rest;
		zmq_msg_init(&rest);
		while (more && zmq_msg_recv(&rest, al->router, ZMQ_DONTWAIT) >= 0)
			zmq_getsockopt(al->router, ZMQ_RCVMORE, &more, &more_len);
		zmq_msg_close(&rest);
		send_error(al, zmq_msg_data(&rid), zmq_msg_size(&rid), NULL,
			   "bad message: several frames; send one JSON object per message");
	} else if (zmq_msg_size(&rid) <= RID_MAX) {
		handle(al, zmq_msg_data(&rid), zmq_msg_size(&rid), zmq_msg_gets(&body, "User-Id"),
		       zmq_msg_data(&body), zmq_msg_size(&body));
	}
	zmq_msg_close(&body);
	zmq_msg_close(&rid);
	return 1;
}

void agent_link_feed(struct agent_link *al, const void *rid, size_t rid_len, const void *data,
		     size_t len)
{
	if (rid_len <= RID_MAX)
		handle(al, rid, rid_len, NULL, data, len);
}

void agent_link_tick(struct agent_link *al)
{
	for (int i = 0; i < MAX_MESSAGES_PER_TICK && read_one(al); i++)
		;
	uint64_t now = now_ms();
	if (now < al->next_expiry_ms)
		return;
	al->next_expiry_ms = now + 100; /* gone within 3.1 s is good enough */
	for (size_t i = 0; i < al->n_agents; i++) {
		struct agent *a = &al->agents[i];
		if (a->st.connected && now - a->st.last_seen_ms > AGENT_GONE_AFTER_MS)
			agent_gone(al, a, "silent for 3 s");
	}
}

/* ---- what the rest of migd sees ------------------------------------------- */

int agent_link_status(struct agent_link *al, const char *guest, struct agent_status *out)
{
	struct agent *a = by_guest(al, guest);
	if (!a)
		return -ENOENT;
	*out = a->st;
	return 0;
}

static json_t *status_json(const struct agent *a)
{
	json_t *o = json_object();
	uint64_t now = now_ms();
	json_object_set_new(o, "connected", json_boolean(a->st.connected));
	json_object_set_new(o, "version", *a->st.version ? json_string(a->st.version)
							  : json_null());
	json_object_set_new(o, "hostname", *a->st.hostname ? json_string(a->st.hostname)
							    : json_null());
	json_object_set_new(o, "pid", a->st.pid >= 0 ? json_integer(a->st.pid) : json_null());
	json_object_set_new(o, "last_seen_ms_ago", json_integer((json_int_t)(now - a->st.last_seen_ms)));
	json_object_set_new(o, "last_seen_ns", json_integer(wall_ns() -
		(int64_t)(now - a->st.last_seen_ms) * 1000000));
	if (a->st.has_activity) {
		json_object_set_new(o, "read_bps", json_real(a->st.read_bps));
		json_object_set_new(o, "write_bps", json_real(a->st.write_bps));
		json_object_set_new(o, "inflight", json_integer(a->st.inflight));
		json_object_set_new(o, "quiesced", json_boolean(a->st.quiesced));
	} else {
		json_object_set_new(o, "read_bps", json_null());
		json_object_set_new(o, "write_bps", json_null());
		json_object_set_new(o, "inflight", json_null());
		json_object_set_new(o, "quiesced", json_null());
	}
	json_object_set_new(o, "clients", a->clients ? json_incref(a->clients) : json_array());
	return o;
}

json_t *agent_link_json(struct agent_link *al, const char *guest)
{
	if (!al)
		return json_null(); /* agents off: a cheap answer for 10,000 guests */
	struct agent *a = by_guest(al, guest);
	if (!a)
		return json_pack("{s:b}", "connected", 0);
	return status_json(a);
}

json_t *agent_link_list(struct agent_link *al)
{
	json_t *arr = json_array();
	for (size_t i = 0; al && i < al->n_agents; i++) {
		json_t *o = status_json(&al->agents[i]);
		json_object_set_new(o, "guest", json_string(al->agents[i].st.guest));
		json_array_append_new(arr, o);
	}
	return arr;
}

/* ---- requests ---------------------------------------------------------------- */

/* One request of type to guest's agent (see agent_link_send); a resume
 * carries "reconnect": true when reconnect is set. */
static int send_request(struct agent_link *al, const char *guest, const char *type,
			unsigned deadline_ms, int reconnect, unsigned wait_ms, uint64_t *id)
{
	struct agent *a = by_guest(al, guest);
	if (strcmp(type, "quiesce") != 0 && strcmp(type, "resume") != 0 &&
	    strcmp(type, "ping") != 0)
		return -EINVAL;
	if (!a || !a->st.connected)
		return -ENOTCONN;
	if (GROW(al->reqs, al->cap_reqs, al->n_reqs + 1) < 0)
		return -ENOMEM;
	struct request *r = &al->reqs[al->n_reqs];
	memset(r, 0, sizeof(*r));
	r->id = al->next_id++;
	snprintf(r->guest, sizeof(r->guest), "%s", guest);
	snprintf(r->type, sizeof(r->type), "%s", type);
	json_t *msg = json_pack("{s:i, s:s, s:I}", "v", AGENT_PROTO_VERSION, "type", type, "id",
				(json_int_t)r->id);
	if (strcmp(type, "quiesce") == 0)
		json_object_set_new(msg, "deadline_ms", json_integer(deadline_ms));
	/* Only when set: an ordinary resume stays what older agents know. */
	if (reconnect && strcmp(type, "resume") == 0)
		json_object_set_new(msg, "reconnect", json_true());
	int rc = send_to(al, a->rid, a->rid_len, msg);
	if (rc < 0) {
		log_warnx("agent of %s: %s not sent: %s", guest, type, strerror(-rc));
		if (rc == -EHOSTUNREACH)
			agent_gone(al, a, "its connection is closed");
		return rc == -ENOMEM ? rc : -ENOTCONN;
	}
	r->sent_ms = now_ms();
	r->expire_ms = r->sent_ms + wait_ms;
	al->n_reqs++;
	*id = r->id;
	log_debug("agent of %s: %s%s %" PRIu64 " sent", guest, type,
		  reconnect ? " (reconnect)" : "", r->id);
	return 0;
}

int agent_link_send(struct agent_link *al, const char *guest, const char *type,
		    unsigned deadline_ms, unsigned wait_ms, uint64_t *id)
{
	return send_request(al, guest, type, deadline_ms, 0, wait_ms, id);
}

int agent_link_send_resume(struct agent_link *al, const char *guest, int reconnect,
			   unsigned wait_ms, uint64_t *id)
{
	return send_request(al, guest, "resume", 0, reconnect, wait_ms, id);
}

int agent_link_reply(struct agent_link *al, uint64_t id, struct agent_reply *out)
{
	struct request *r = find_request(al, id);
	if (!r)
		return -ENOENT;
	if (r->answered) {
		*out = r->reply;
		return 1;
	}
	if (r->agent_gone)
		return -ECONNRESET;
	return now_ms() >= r->expire_ms ? -ETIMEDOUT : 0;
}

void agent_link_forget(struct agent_link *al, uint64_t id)
{
	struct request *r = find_request(al, id);
	if (!r)
		return;
	json_decref(r->reply.result);
	*r = al->reqs[--al->n_reqs];
}
