/*
 * migctl_client: migctl's side of the migd API (format in migd_proto.h).
 *
 * Every request gets a fresh REQ socket with ZMQ_LINGER 0 and a receive
 * timeout. A REQ socket that sent and never heard back is stuck in its
 * "expect a reply" state, and with lingering on, closing it would wait for
 * the unsent request forever; a fresh socket per call, closed without
 * lingering, means a timeout costs exactly --timeout and never wedges the
 * next call (migctl --wait makes hundreds of calls in a row).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "curve_keys.h"
#include "migctl.h"
#include "migd_proto.h"
#include "util.h"

static void *context(struct ctl *c)
{
	if (!c->zctx)
		c->zctx = zmq_ctx_new();
	return c->zctx;
}

void ctl_close(struct ctl *c)
{
	if (c->zctx)
		zmq_ctx_term(c->zctx);
	c->zctx = NULL;
	if (c->client_kp)
		memset(c->client_kp, 0, sizeof(*c->client_kp));
	free(c->client_kp);
	c->client_kp = NULL;
}

/* --key and the server key (--server-key, else migd.pub beside --key),
 * read once; 0 or an exit code (said why). */
static int load_keys(struct ctl *c)
{
	char err[PATH_MAX + 300], pub[PATH_MAX + 16];
	struct curve_keypair server;
	enum curve_role role;
	if (c->keys_loaded)
		return c->keys_loaded > 0 ? 0 : MIGCTL_EXIT_USAGE;
	c->keys_loaded = -1;
	if (!(c->client_kp = calloc(1, sizeof(*c->client_kp)))) {
		ctl_error(c, "out of memory");
		return MIGCTL_EXIT_FAIL;
	}
	if (curve_secret_load(c->key, c->client_kp, err, sizeof(err)) < 0) {
		ctl_error(c, "--key: %s", err);
		return MIGCTL_EXIT_USAGE;
	}
	if (c->server_key) {
		snprintf(pub, sizeof(pub), "%s", c->server_key);
	} else {
		const char *slash = strrchr(c->key, '/');
		snprintf(pub, sizeof(pub), "%.*smigd.pub", slash ? (int)(slash - c->key + 1) : 0,
			 c->key);
	}
	if (curve_public_load(pub, &server, &role, err, sizeof(err)) < 0) {
		ctl_error(c, "--server-key: %s", err);
		return MIGCTL_EXIT_USAGE;
	}
	snprintf(c->server_z85, sizeof(c->server_z85), "%s", server.public_z85);
	c->keys_loaded = 1;
	return 0;
}

/* A socket of type with linger 0 and the timeouts set; NULL after saying why. */
static void *open_socket(struct ctl *c, int type, int timeout_ms)
{
	void *ctx = context(c);
	void *sock = ctx ? zmq_socket(ctx, type) : NULL;
	if (!sock) {
		ctl_error(c, "ZeroMQ socket: %s", zmq_strerror(zmq_errno()));
		return NULL;
	}
	int linger = 0;
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (c->key && (load_keys(c) != 0 || curve_client_setup(sock, c->client_kp,
								c->server_z85) < 0)) {
		if (c->keys_loaded > 0)
			ctl_error(c, "CURVE: %s", zmq_strerror(zmq_errno()));
		zmq_close(sock);
		return NULL;
	}
	zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof(timeout_ms));
	zmq_setsockopt(sock, ZMQ_SNDTIMEO, &timeout_ms, sizeof(timeout_ms));
	return sock;
}

/* zmq_connect, turning a refused endpoint into a usage error that names it. */
static int connect_to(struct ctl *c, void *sock, const char *endpoint, const char *option)
{
	if (zmq_connect(sock, endpoint) == 0)
		return 0;
	ctl_error(c, "%s \"%s\": %s (expected an endpoint like %s)", option, endpoint,
		  zmq_strerror(zmq_errno()), MIGCTL_DEFAULT_ENDPOINT);
	return MIGCTL_EXIT_USAGE;
}

static int no_answer(struct ctl *c)
{
	ctl_error(c, "no answer from migd at %s: is it running? (waited %ld ms; see --timeout)%s",
		  c->endpoint, c->timeout_ms,
		  c->key ? "; or it refused our key (see migd's log)"
			 : "; a migd with keys answers only a client with a key (--key)");
	return MIGCTL_EXIT_CONNECT;
}

/* Send text and receive the reply into *reply (malloc'd, NUL-ended). */
static int exchange(struct ctl *c, void *sock, const char *text, char **reply, size_t *len)
{
	if (zmq_send(sock, text, strlen(text), 0) < 0) {
		int err = zmq_errno();
		if (err == EAGAIN)
			return no_answer(c);
		ctl_error(c, "sending to %s: %s", c->endpoint, zmq_strerror(err));
		return MIGCTL_EXIT_CONNECT;
	}
	zmq_msg_t msg;
	zmq_msg_init(&msg);
	if (zmq_msg_recv(&msg, sock, 0) < 0) {
		int err = zmq_errno();
		zmq_msg_close(&msg);
		if (err == EAGAIN)
			return no_answer(c);
		ctl_error(c, "receiving from %s: %s", c->endpoint, zmq_strerror(err));
		return err == EINTR ? MIGCTL_EXIT_FAIL : MIGCTL_EXIT_CONNECT;
	}
	*len = zmq_msg_size(&msg);
	*reply = malloc(*len + 1);
	if (*reply) {
		memcpy(*reply, zmq_msg_data(&msg), *len);
		(*reply)[*len] = '\0';
	}
	zmq_msg_close(&msg);
	if (!*reply) {
		ctl_error(c, "out of memory for a reply of %zu bytes", *len);
		return MIGCTL_EXIT_FAIL;
	}
	return 0;
}

/* ctl_call, with migd's refusal copied into refusal (not printed) when
 * refusal is not NULL. */
static int call(struct ctl *c, const char *cmd, json_t *args, json_t **root, json_t **result,
		char *refusal, size_t refusal_len)
{
	char err[1100];
	char *text = NULL, *reply = NULL;
	size_t reply_len = 0;
	void *sock = NULL;
	int rc = MIGCTL_EXIT_FAIL;
	*root = NULL;
	*result = NULL;

	json_t *req = migd_req_new(cmd, args);
	text = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!text) {
		ctl_error(c, "out of memory building the request");
		goto out;
	}
	sock = open_socket(c, ZMQ_REQ, c->timeout_ms > 0 ? (int)c->timeout_ms : -1);
	if (!sock) {
		rc = c->keys_loaded < 0 ? MIGCTL_EXIT_USAGE : MIGCTL_EXIT_FAIL;
		goto out;
	}
	if ((rc = connect_to(c, sock, c->endpoint, "--connect")) != 0)
		goto out;
	if ((rc = exchange(c, sock, text, &reply, &reply_len)) != 0)
		goto out;
	int perr = migd_reply_parse(reply, reply_len, root, result, err, sizeof(err));
	if (perr == -EBADMSG || perr == -EPROTONOSUPPORT || perr == -EMSGSIZE) {
		ctl_error(c, "malformed reply from migd at %s: %s", c->endpoint, err);
		rc = MIGCTL_EXIT_FAIL;
	} else if (perr < 0) {
		if (refusal)
			snprintf(refusal, refusal_len, "%s", err);
		else
			ctl_error(c, "%s", err);
		rc = MIGCTL_EXIT_FAIL;
	} else {
		rc = 0;
	}
	if (rc != 0) {
		json_decref(*root);
		*root = NULL;
		*result = NULL;
	}
out:
	if (sock)
		zmq_close(sock);
	free(text);
	free(reply);
	return rc;
}

int ctl_call(struct ctl *c, const char *cmd, json_t *args, json_t **root, json_t **result)
{
	return call(c, cmd, args, root, result, NULL, 0);
}

int ctl_try_call(struct ctl *c, const char *cmd, json_t *args, json_t **root, json_t **result,
		 char *refusal, size_t refusal_len)
{
	refusal[0] = '\0';
	return call(c, cmd, args, root, result, refusal, refusal_len);
}

/* --events, else the --connect endpoint with its port + 1. */
static int events_endpoint(const struct ctl *c, char *buf, size_t len)
{
	if (c->events) {
		snprintf(buf, len, "%s", c->events);
		return 0;
	}
	const char *colon = strrchr(c->endpoint, ':');
	char *end = NULL;
	long port = colon ? strtol(colon + 1, &end, 10) : 0;
	if (strncmp(c->endpoint, "tcp://", 6) != 0 || !colon || colon < c->endpoint + 6 ||
	    end == colon + 1 || *end != '\0' || port < 1 || port >= 65535) {
		ctl_error(c, "cannot derive the event endpoint from \"%s\": give --events "
			  "ENDPOINT", c->endpoint);
		return MIGCTL_EXIT_USAGE;
	}
	snprintf(buf, len, "%.*s:%ld", (int)(colon - c->endpoint), c->endpoint, port + 1);
	return 0;
}

void *ctl_subscribe(struct ctl *c, int *code)
{
	char endpoint[512];
	*code = events_endpoint(c, endpoint, sizeof(endpoint));
	if (*code != 0)
		return NULL;
	void *sock = open_socket(c, ZMQ_SUB, -1);
	if (!sock) {
		*code = MIGCTL_EXIT_FAIL;
		return NULL;
	}
	zmq_setsockopt(sock, ZMQ_SUBSCRIBE, "", 0);
	*code = connect_to(c, sock, endpoint, "--events");
	if (*code != 0) {
		zmq_close(sock);
		return NULL;
	}
	return sock;
}

int ctl_event_recv(void *sub, long wait_ms, char **body)
{
	zmq_pollitem_t item = { .socket = sub, .events = ZMQ_POLLIN };
	*body = NULL;
	int n = zmq_poll(&item, 1, wait_ms);
	if (n < 0)
		return zmq_errno() == EINTR ? 0 : -1;
	if (n == 0)
		return 0;
	/* Frames: topic, then the JSON body; keep the last frame as the body so
	 * a publisher that sends the body alone works too. */
	int more = 1;
	while (more) {
		zmq_msg_t msg;
		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, sub, 0) < 0) {
			zmq_msg_close(&msg);
			free(*body);
			*body = NULL;
			return zmq_errno() == EINTR ? 0 : -1;
		}
		more = zmq_msg_more(&msg);
		free(*body);
		*body = strndup(zmq_msg_data(&msg), zmq_msg_size(&msg));
		zmq_msg_close(&msg);
		if (!*body)
			return -1;
	}
	return 1;
}

/* The cluster's now: status's sim_time_ns when there is one, else the wall. */
static int cluster_now_ns(struct ctl *c, int64_t *now)
{
	json_t *root, *result;
	int rc = ctl_call(c, "status", NULL, &root, &result);
	if (rc != 0)
		return rc;
	*now = jint(result, "sim_time_ns", 0);
	if (*now <= 0)
		*now = wall_ns();
	json_decref(root);
	return 0;
}

int ctl_since_arg(struct ctl *c, const char *text, json_t *args)
{
	double ago_s;
	int64_t now = 0, since;
	int rc;
	if (ctl_parse_duration(text, &ago_s) == 0 && (rc = cluster_now_ns(c, &now)) != 0)
		return rc;
	if (ctl_parse_since(text, now, &since) < 0)
		return ctl_usage_error(c, "--since \"%s\": expected a date-time like "
				       "2024-05-01T12:00:00 or a duration ago like 10m, 2h, 1d",
				       text);
	json_object_set_new(args, "since_ns", json_integer((json_int_t)since));
	return 0;
}
