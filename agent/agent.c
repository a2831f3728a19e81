/*
 * agent: migagent's loop, its link to migd and the commands (see agent.h).
 *
 * One thread and one zmq_poll over the DEALER, its monitor, the signalfd,
 * the listening socket and every client: a quiesce is a fan-out of one line
 * per client and a gather of their answers, nothing here ever blocks on a
 * client for long, so a single loop keeps every timer (deadline, watchdog,
 * activity) exact without locks.
 *
 * Rules that keep a guest's I/O from staying held:
 *  - a quiesce past its deadline resumes every client and says so;
 *  - the watchdog resumes every client watchdog_ms after a quiesce if no
 *    resume came (migd gone, network cut);
 *  - a client that disconnects is taken out of the quiesce, never waited for;
 *  - the agent resumes every client before it exits, and if it dies
 *    instead, each client reopens its gate when the socket closes.
 *
 * A resume from migd may ask the clients to reconnect (after a restore
 * from a checkpoint their TCP state is from the cut, the servers' is not);
 * the ones the agent decides on its own, the watchdog's and the one before
 * it exits, always do: migd was not heard from, so whether the guest was
 * restored is unknown, and a fresh connection costs a handshake where a
 * stale one costs a TCP timeout. A resume after a deadline missed does not
 * (no quiesce completed, so no checkpoint can have been cut).
 *
 * The link to migd is ZeroMQ's: the DEALER reconnects by itself with
 * exponential backoff (ZMQ_RECONNECT_IVL 100 ms up to reconnect_max_ms),
 * heartbeats detect a dead peer, and the socket monitor tells us when a
 * handshake succeeded so that hello goes out first after every reconnect.
 */
#include "agent_internal.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zmq.h>

#include "log.h"
#include "service.h"
#include "util.h"

#ifndef MIGD_VERSION
#define MIGD_VERSION "unknown"
#endif

#define MONITOR_ENDPOINT "inproc://migagent-monitor"
#define RECONNECT_MIN_MS 100

/* --- messages to migd --- */

static void migd_send(struct agent *a, json_t *msg)
{
	char *text = agent_msg_text(msg);
	if (!text) {
		log_warnx("out of memory encoding a message to migd");
		return;
	}
	if (a->dealer && zmq_send(a->dealer, text, strlen(text), ZMQ_DONTWAIT) < 0)
		log_debug("message to migd not sent: %s", zmq_strerror(zmq_errno()));
	free(text);
}

static void send_hello(struct agent *a)
{
	migd_send(a, agent_msg_hello(a->guest, a->hostname, MIGD_VERSION, getpid()));
}

static void send_activity(struct agent *a)
{
	struct agent_client_activity acts[AGENT_MAX_CLIENTS];
	size_t n = 0;
	for (unsigned i = 0; i < a->n_clients; i++) {
		const struct client *c = a->clients[i];
		if (!c->registered)
			continue;
		acts[n++] = (struct agent_client_activity){ .pid = c->pid, .read_bps = c->read_bps,
							    .write_bps = c->write_bps,
							    .inflight = c->inflight };
		snprintf(acts[n - 1].comm, sizeof(acts[n - 1].comm), "%s", c->comm);
	}
	migd_send(a, agent_msg_activity(a->guest, a->opts.activity_ms, a->state != AGENT_IDLE,
					acts, n));
}

/* "id=7" or "id=\"q-7\"" for audit lines. */
static const char *id_text(json_t *id, char *buf, size_t len)
{
	char *t = id ? json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	snprintf(buf, len, "%.100s", t ? t : "-");
	free(t);
	return buf;
}

static double ms_since(uint64_t start_ns)
{
	return (double)(now_ns() - start_ns) / 1e6;
}

/* --- resuming --- */

/* Open every client's gate, after it drops its server connections when
 * reconnect is set. Returns how many clients were told. */
static unsigned resume_clients(struct agent *a, int reconnect)
{
	unsigned n = 0;
	/* local_send may drop a client, which moves the last one into slot i. */
	for (unsigned i = 0; i < a->n_clients;) {
		struct client *c = a->clients[i];
		if (!c->registered) {
			i++;
			continue;
		}
		c->pending = 0;
		c->held = 0;
		struct agent_local_msg m = { .type = AGENT_LOCAL_RESUME, .id = c->quiesce_id,
					     .reconnect = reconnect };
		if (local_send_msg(a, c, &m) == 0) {
			n++;
			i++;
		}
	}
	a->state = AGENT_IDLE;
	a->watchdog_at_ms = 0;
	return n;
}

static json_t *drained_result(struct agent *a)
{
	return json_pack("{s:i, s:I, s:I, s:f}", "clients", (int)local_registered(a),
			 "drained_requests", (json_int_t)a->drained_requests, "drained_bytes",
			 (json_int_t)a->drained_bytes, "time_ms", ms_since(a->op_start_ns));
}

static void op_clear(struct agent *a)
{
	json_decref(a->op_id);
	a->op_id = NULL;
}

/* --- quiesce --- */

static unsigned pending_clients(const struct agent *a)
{
	unsigned n = 0;
	for (unsigned i = 0; i < a->n_clients; i++)
		n += a->clients[i]->pending;
	return n;
}

/* Every client answered (or went away): tell migd. */
static void quiesce_complete(struct agent *a)
{
	char idbuf[120];
	json_t *result = drained_result(a);
	double time_ms = ms_since(a->op_start_ns);
	a->state = AGENT_QUIESCED;
	a->quiesced_at_ns = now_ns();
	if (a->n_failed) {
		migd_send(a, agent_msg_reply_error(a->op_id, result, "%u client%s failed to "
						   "quiesce: %s", a->n_failed,
						   a->n_failed == 1 ? "" : "s", a->failure));
		log_info("audit: migd quiesce id=%s deadline_ms=%llu: failed: %u clients, %s "
			 "(%.1f ms)", id_text(a->op_id, idbuf, sizeof(idbuf)),
			 (unsigned long long)a->op_deadline_ms, a->n_failed, a->failure, time_ms);
		return;
	}
	migd_send(a, agent_msg_reply_ok(a->op_id, result));
	log_info("audit: migd quiesce id=%s deadline_ms=%llu: ok, %u clients, %llu requests "
		 "and %llu bytes drained (%.1f ms)", id_text(a->op_id, idbuf, sizeof(idbuf)),
		 (unsigned long long)a->op_deadline_ms, local_registered(a),
		 (unsigned long long)a->drained_requests, (unsigned long long)a->drained_bytes,
		 time_ms);
}

static void quiesce_send(struct agent *a, struct client *c)
{
	c->pending = 1;
	c->held = 0;
	c->quiesce_id = a->seq;
	local_send(a, c, AGENT_LOCAL_QUIESCE, a->seq, NULL);
}

static void cmd_quiesce(struct agent *a, const struct agent_cmd *cmd)
{
	char idbuf[120], opbuf[120];
	if (a->state == AGENT_QUIESCING) {
		migd_send(a, agent_msg_reply_error(cmd->id, NULL, "quiesce id=%s is already under "
						   "way", id_text(a->op_id, opbuf, sizeof(opbuf))));
		log_info("audit: migd quiesce id=%s: refused: quiesce id=%s under way",
			 id_text(cmd->id, idbuf, sizeof(idbuf)), opbuf);
		return;
	}
	if (a->state == AGENT_QUIESCED) {
		/* Already held: say so, and count the watchdog from now. */
		a->watchdog_at_ms = now_ms() + a->opts.watchdog_ms;
		json_t *r = json_pack("{s:i, s:i, s:i, s:f, s:b}", "clients",
				      (int)local_registered(a), "drained_requests", 0,
				      "drained_bytes", 0, "time_ms", 0.0, "already_quiesced", 1);
		migd_send(a, agent_msg_reply_ok(cmd->id, r));
		log_info("audit: migd quiesce id=%s: ok, already quiesced",
			 id_text(cmd->id, idbuf, sizeof(idbuf)));
		return;
	}
	op_clear(a);
	a->op_id = json_incref(cmd->id);
	a->op_deadline_ms = cmd->deadline_ms;
	a->op_start_ns = now_ns();
	a->op_deadline_at_ms = now_ms() + cmd->deadline_ms;
	a->watchdog_at_ms = now_ms() + a->opts.watchdog_ms;
	a->drained_requests = a->drained_bytes = 0;
	a->n_failed = 0;
	a->failure[0] = '\0';
	a->seq++;
	a->state = AGENT_QUIESCING;
	a->fanning_out = 1;
	for (unsigned i = 0; i < a->n_clients;) {
		struct client *c = a->clients[i];
		if (c->registered)
			quiesce_send(a, c);
		if (i < a->n_clients && a->clients[i] == c)
			i++;
	}
	a->fanning_out = 0;
	if (pending_clients(a) == 0)
		quiesce_complete(a);
}

/* The deadline passed with clients still draining: let everyone go. */
static void quiesce_missed(struct agent *a)
{
	char idbuf[120], slow[300] = "";
	size_t off = 0;
	unsigned n_slow = 0;
	for (unsigned i = 0; i < a->n_clients; i++) {
		const struct client *c = a->clients[i];
		if (!c->pending)
			continue;
		if (n_slow++ < 4 && off < sizeof(slow))
			off += (size_t)snprintf(slow + off, sizeof(slow) - off, "%s pid %lld (%s)",
						n_slow > 1 ? "," : "", (long long)c->pid, c->comm);
	}
	json_t *result = drained_result(a);
	json_object_set_new(result, "missed_deadline", json_true());
	unsigned n = resume_clients(a, 0);
	migd_send(a, agent_msg_reply_error(a->op_id, result, "deadline %llu ms missed: %u "
					   "client%s still draining:%s; resumed %u clients",
					   (unsigned long long)a->op_deadline_ms, n_slow,
					   n_slow == 1 ? "" : "s", slow, n));
	log_info("audit: migd quiesce id=%s deadline_ms=%llu: deadline missed, %u clients "
		 "still draining:%s; resumed %u clients", id_text(a->op_id, idbuf, sizeof(idbuf)),
		 (unsigned long long)a->op_deadline_ms, n_slow, slow, n);
	op_clear(a);
}

void agent_client_quiesced(struct agent *a, struct client *c, const struct agent_local_msg *m)
{
	if (!c->pending || m->id != c->quiesce_id) {
		log_debug("client pid %lld: stale quiesced id %llu", (long long)c->pid,
			  (unsigned long long)m->id);
		return;
	}
	c->pending = 0;
	c->held = 1;
	log_debug("client pid %lld (%s): quiesced in %.2f ms, drained %llu requests, %llu bytes%s%s",
		  (long long)c->pid, c->comm, (double)m->time_us / 1000.0,
		  (unsigned long long)m->drained_requests, (unsigned long long)m->drained_bytes,
		  m->ok ? "" : ": ", m->ok ? "" : m->error);
	if (a->state != AGENT_QUIESCING)
		return; /* joined while held: nothing to report */
	a->drained_requests += m->drained_requests;
	a->drained_bytes += m->drained_bytes;
	if (!m->ok) {
		if (a->n_failed++ == 0)
			snprintf(a->failure, sizeof(a->failure), "pid %lld (%s): %s",
				 (long long)c->pid, c->comm, m->error);
	}
	if (pending_clients(a) == 0)
		quiesce_complete(a);
}

void agent_client_registered(struct agent *a, struct client *c)
{
	/* A process that starts while I/O is held is held too. */
	if (a->state != AGENT_IDLE)
		quiesce_send(a, c);
}

void agent_client_gone(struct agent *a, struct client *c)
{
	/* The caller has already taken c out of the table. */
	if (c->pending && a->state == AGENT_QUIESCING && !a->fanning_out &&
	    pending_clients(a) == 0)
		quiesce_complete(a);
}

/* --- resume, ping --- */

static void cmd_resume(struct agent *a, const struct agent_cmd *cmd)
{
	char idbuf[120], opbuf[120];
	double held_ms = a->state == AGENT_QUIESCED ? ms_since(a->quiesced_at_ns) : 0.0;
	enum agent_state was = a->state;
	unsigned n = resume_clients(a, cmd->reconnect);
	if (was == AGENT_QUIESCING) {
		json_t *result = drained_result(a);
		migd_send(a, agent_msg_reply_error(a->op_id, result, "cancelled by resume id=%s "
						   "before every client drained",
						   id_text(cmd->id, idbuf, sizeof(idbuf))));
		log_info("audit: migd quiesce id=%s: cancelled by resume",
			 id_text(a->op_id, opbuf, sizeof(opbuf)));
	}
	op_clear(a);
	json_t *r = json_pack("{s:i, s:f, s:b}", "clients", (int)n, "held_ms", held_ms,
			      "reconnect", cmd->reconnect);
	migd_send(a, agent_msg_reply_ok(cmd->id, r));
	log_info("audit: migd resume id=%s%s: ok, %u clients resumed, held %.1f ms%s",
		 id_text(cmd->id, idbuf, sizeof(idbuf)), cmd->reconnect ? " reconnect" : "", n,
		 held_ms, was == AGENT_IDLE ? " (was not quiesced)" : "");
}

static void watchdog_fire(struct agent *a)
{
	char idbuf[120];
	enum agent_state was = a->state;
	double since_ms = ms_since(a->op_start_ns);
	if (was == AGENT_QUIESCING) {
		json_t *result = drained_result(a);
		json_object_set_new(result, "missed_deadline", json_true());
		migd_send(a, agent_msg_reply_error(a->op_id, result, "watchdog: %u ms passed "
						   "before every client drained",
						   a->opts.watchdog_ms));
	}
	unsigned n = resume_clients(a, 1);
	log_info("audit: watchdog quiesce id=%s: no resume within %u ms (%.0f ms since the "
		 "quiesce); resumed %u clients, reconnecting",
		 id_text(a->op_id, idbuf, sizeof(idbuf)), a->opts.watchdog_ms, since_ms, n);
	op_clear(a);
}

static void migd_message(struct agent *a, const char *text, size_t len)
{
	char err[400], idbuf[120];
	struct agent_cmd cmd;
	json_t *bad_id = NULL;
	if (agent_cmd_parse(text, len, &cmd, &bad_id, err, sizeof(err)) < 0) {
		/* migd's own complaint about something we sent: answering it
		 * with another error could start an endless exchange. */
		json_t *root;
		const char *type;
		char why[80];
		if (agent_envelope_parse(text, len, AGENT_MAX_MSG_BYTES, &root, &type, why,
					 sizeof(why)) == 0 && strcmp(type, "error") == 0) {
			log_warnx("migd says it could not read a message of ours: %.300s",
				  json_string_value(json_object_get(root, "error")) ?: "?");
			json_decref(root);
			json_decref(bad_id);
			return;
		}
		json_decref(root);
		migd_send(a, agent_msg_error(bad_id, err));
		log_info("audit: migd ? id=%s: refused: %s", id_text(bad_id, idbuf, sizeof(idbuf)),
			 err);
		json_decref(bad_id);
		return;
	}
	switch (cmd.type) {
	case AGENT_CMD_QUIESCE:
		cmd_quiesce(a, &cmd);
		break;
	case AGENT_CMD_RESUME:
		cmd_resume(a, &cmd);
		break;
	case AGENT_CMD_PING:
		migd_send(a, agent_msg_reply_ok(cmd.id, NULL));
		log_info("audit: migd ping id=%s: ok", id_text(cmd.id, idbuf, sizeof(idbuf)));
		break;
	}
	agent_cmd_clear(&cmd);
}

static void migd_read(struct agent *a)
{
	for (;;) {
		zmq_msg_t msg;
		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, a->dealer, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&msg);
			return;
		}
		int more = zmq_msg_more(&msg);
		if (more) {
			/* One message is one frame: drain and refuse the rest. */
			while (zmq_msg_more(&msg)) {
				zmq_msg_close(&msg);
				zmq_msg_init(&msg);
				if (zmq_msg_recv(&msg, a->dealer, ZMQ_DONTWAIT) < 0)
					break;
			}
			migd_send(a, agent_msg_error(NULL, "bad message: more than one frame"));
			log_info("audit: migd ? id=-: refused: more than one frame");
		} else {
			migd_message(a, zmq_msg_data(&msg), zmq_msg_size(&msg));
		}
		zmq_msg_close(&msg);
	}
}

static void monitor_read(struct agent *a)
{
	for (;;) {
		zmq_msg_t ev, addr;
		zmq_msg_init(&ev);
		if (zmq_msg_recv(&ev, a->monitor, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&ev);
			return;
		}
		uint16_t event = 0;
		if (zmq_msg_size(&ev) >= 2)
			memcpy(&event, zmq_msg_data(&ev), sizeof(event));
		zmq_msg_close(&ev);
		zmq_msg_init(&addr);
		zmq_msg_recv(&addr, a->monitor, 0); /* the endpoint frame */
		zmq_msg_close(&addr);
		if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
			a->migd_connected = 1;
			log_info("connected to migd at %s as guest %s", a->opts.migd_endpoint,
				 a->guest);
			send_hello(a);
			send_activity(a);
		} else if (event == ZMQ_EVENT_DISCONNECTED && a->migd_connected) {
			a->migd_connected = 0;
			log_info("lost migd at %s; reconnecting", a->opts.migd_endpoint);
		}
	}
}

static int migd_connect(struct agent *a, char *err, size_t errlen)
{
	int zero = 0, hwm = 100, ivl = RECONNECT_MIN_MS, ivl_max = (int)a->opts.reconnect_max_ms;
	int hb_ivl = 1000, hb_timeout = 3000;
	a->zctx = zmq_ctx_new();
	a->dealer = a->zctx ? zmq_socket(a->zctx, ZMQ_DEALER) : NULL;
	if (!a->dealer) {
		snprintf(err, errlen, "ZeroMQ: %s", zmq_strerror(zmq_errno()));
		return -ENOMEM;
	}
	zmq_setsockopt(a->dealer, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(a->dealer, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(a->dealer, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl));
	zmq_setsockopt(a->dealer, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof(ivl_max));
	zmq_setsockopt(a->dealer, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof(hb_ivl));
	zmq_setsockopt(a->dealer, ZMQ_HEARTBEAT_TIMEOUT, &hb_timeout, sizeof(hb_timeout));
	if (zmq_socket_monitor(a->dealer, MONITOR_ENDPOINT,
			       ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED) < 0 ||
	    !(a->monitor = zmq_socket(a->zctx, ZMQ_PAIR)) ||
	    zmq_connect(a->monitor, MONITOR_ENDPOINT) < 0) {
		snprintf(err, errlen, "ZeroMQ monitor: %s", zmq_strerror(zmq_errno()));
		return -EIO;
	}
	if (zmq_connect(a->dealer, a->opts.migd_endpoint) < 0) {
		snprintf(err, errlen, "--migd \"%s\": %s", a->opts.migd_endpoint,
			 zmq_strerror(zmq_errno()));
		return -EINVAL;
	}
	return 0;
}

/* --- life cycle --- */

int agent_new(const struct agent_opts *opts, struct agent **out, char *err, size_t errlen)
{
	struct agent *a = calloc(1, sizeof(*a));
	int rc = -ENOMEM;
	*out = NULL;
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	a->listen_fd = a->signal_fd = -1;
	a->opts = *opts;
	if (!a->opts.watchdog_ms)
		a->opts.watchdog_ms = 10000;
	if (!a->opts.activity_ms)
		a->opts.activity_ms = 1000;
	if (!a->opts.reconnect_max_ms)
		a->opts.reconnect_max_ms = 5000;
	if (gethostname(a->hostname, sizeof(a->hostname) - 1) < 0)
		snprintf(a->hostname, sizeof(a->hostname), "localhost");
	snprintf(a->guest, sizeof(a->guest), "%s", opts->guest ? opts->guest : a->hostname);
	const char *path = opts->socket_path ? opts->socket_path : AGENT_SOCKET_DEFAULT;
	if (strlen(path) >= sizeof(a->socket_path) || path[0] != '/') {
		snprintf(err, errlen, "--socket \"%s\": expected an absolute path shorter than "
			 "%zu bytes", path, sizeof(a->socket_path));
		rc = -EINVAL;
		goto out;
	}
	snprintf(a->socket_path, sizeof(a->socket_path), "%s", path);
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	a->signal_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (a->signal_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "signalfd: %s", strerror(errno));
		goto out;
	}
	rc = local_listen(a, err, errlen);
	if (rc == 0 && opts->migd_endpoint)
		rc = migd_connect(a, err, errlen);
out:
	if (rc < 0) {
		agent_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

/* Milliseconds until the next timer. */
static long next_timeout_ms(const struct agent *a)
{
	uint64_t now = now_ms(), next = a->next_activity_ms;
	if (a->state == AGENT_QUIESCING && a->op_deadline_at_ms < next)
		next = a->op_deadline_at_ms;
	if (a->state != AGENT_IDLE && a->watchdog_at_ms && a->watchdog_at_ms < next)
		next = a->watchdog_at_ms;
	return next > now ? (long)(next - now) : 0;
}

static void timers(struct agent *a)
{
	uint64_t now = now_ms();
	if (a->state == AGENT_QUIESCING && now >= a->op_deadline_at_ms)
		quiesce_missed(a);
	if (a->state != AGENT_IDLE && a->watchdog_at_ms && now >= a->watchdog_at_ms)
		watchdog_fire(a);
	if (now >= a->next_activity_ms) {
		a->next_activity_ms = now + a->opts.activity_ms;
		if (a->migd_connected)
			send_activity(a);
	}
}

int agent_run(struct agent *a)
{
	enum { FIXED = 4 };
	zmq_pollitem_t items[FIXED + AGENT_MAX_CLIENTS];
	struct client *polled[AGENT_MAX_CLIENTS];
	log_info("listening on %s for sfs clients; %s%s; watchdog %u ms", a->socket_path,
		 a->opts.migd_endpoint ? "migd at " : "no migd",
		 a->opts.migd_endpoint ? a->opts.migd_endpoint : "", a->opts.watchdog_ms);
	a->next_activity_ms = now_ms() + a->opts.activity_ms;
	service_ready(a->socket_path);
	for (;;) {
		int n = 0;
		items[n++] = (zmq_pollitem_t){ .fd = a->signal_fd, .events = ZMQ_POLLIN };
		items[n++] = (zmq_pollitem_t){ .fd = a->listen_fd, .events = ZMQ_POLLIN };
		items[n++] = (zmq_pollitem_t){ .socket = a->dealer, .fd = -1,
					       .events = a->dealer ? ZMQ_POLLIN : 0 };
		items[n++] = (zmq_pollitem_t){ .socket = a->monitor, .fd = -1,
					       .events = a->monitor ? ZMQ_POLLIN : 0 };
		unsigned n_polled = a->n_clients;
		for (unsigned i = 0; i < n_polled; i++) {
			polled[i] = a->clients[i];
			items[n++] = (zmq_pollitem_t){ .fd = polled[i]->fd, .events = ZMQ_POLLIN };
		}
		if (!a->dealer)
			items[2].fd = items[3].fd = -1;
		if (zmq_poll(items, n, next_timeout_ms(a)) < 0 && zmq_errno() != EINTR) {
			log_warnx("poll: %s", zmq_strerror(zmq_errno()));
			return -EIO;
		}
		if (items[0].revents) {
			struct signalfd_siginfo si;
			if (read(a->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				log_info("signal %u: stopping", si.ssi_signo);
				service_stopping(NULL);
				break;
			}
		}
		if (a->dealer && items[3].revents)
			monitor_read(a);
		if (a->dealer && items[2].revents)
			migd_read(a);
		/* Clients by identity: reading one may drop others. */
		for (unsigned j = 0; j < n_polled; j++) {
			if (!items[FIXED + j].revents)
				continue;
			for (unsigned i = 0; i < a->n_clients; i++) {
				if (a->clients[i] == polled[j]) {
					local_read(a, i);
					break;
				}
			}
		}
		if (items[1].revents)
			local_accept(a);
		timers(a);
	}
	if (a->state != AGENT_IDLE) {
		char idbuf[120];
		unsigned n = resume_clients(a, 1);
		log_info("audit: agent exit quiesce id=%s: resumed %u clients before exiting, "
			 "reconnecting", id_text(a->op_id, idbuf, sizeof(idbuf)), n);
	}
	return 0;
}

void agent_free(struct agent *a)
{
	if (!a)
		return;
	while (a->n_clients) {
		struct client *c = a->clients[--a->n_clients];
		close(c->fd);
		free(c);
	}
	if (a->listen_fd >= 0) {
		close(a->listen_fd);
		unlink(a->socket_path);
	}
	if (a->signal_fd >= 0)
		close(a->signal_fd);
	int zero = 0;
	if (a->dealer)
		zmq_socket_monitor(a->dealer, NULL, 0);
	if (a->monitor) {
		zmq_setsockopt(a->monitor, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_close(a->monitor);
	}
	if (a->dealer)
		zmq_close(a->dealer);
	if (a->zctx)
		zmq_ctx_term(a->zctx);
	json_decref(a->op_id);
	free(a);
}
