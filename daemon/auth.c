/*
 * auth: see auth.h. The ZAP handler is a REP socket served from migd's
 * main loop like any other socket: a handshake waits at most one turn of
 * the loop, and the handler reads the allow-list and the guests' keys
 * without a lock. Handshakes that fail before ZAP is asked (no CURVE, a
 * wrong server key) are seen through a monitor on each socket; libzmq 4.3
 * names only the endpoint there, not the peer, so those lines name the
 * endpoint that refused.
 */
#include "auth.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "db_keys.h"
#include "log.h"
#include "util.h"
#include "zap_proto.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define MAX_MONITORS 4
#define LOGGED_MAX 128 /* refusals remembered so that each is logged once */

struct client {
	char name[64];
	char key[CURVE_Z85_LEN + 1];
	enum curve_role role;
};

struct monitor {
	void *pair;
	uint64_t protocol_ms;        /* the last protocol failure: a NO_DETAIL right
				      * after it is the same connection */
	char what[16];
	char endpoint[256];
};

struct auth {
	void *zctx, *zap;
	int enabled;
	char dir[PATH_MAX];
	struct curve_keypair server;
	struct client *clients;
	size_t n_clients;
	struct db *db;
	struct monitor mon[MAX_MONITORS];
	size_t n_mon;
	unsigned long long refused[AUTH_N_REASONS];
	unsigned long logged[LOGGED_MAX]; /* hashes of refusals logged, a ring */
	size_t n_logged;
};

static const char *const reason_names[AUTH_N_REASONS] = {
	"no_curve", "handshake", "unknown_key", "role", "agent",
};

/* ---- roles ---------------------------------------------------------------- */

static const struct {
	const char *cmd;
	enum curve_role role;
} command_roles[] = {
	{ "status", CURVE_ROLE_READER }, { "host.list", CURVE_ROLE_READER },
	{ "host.show", CURVE_ROLE_READER }, { "guest.list", CURVE_ROLE_READER },
	{ "guest.show", CURVE_ROLE_READER }, { "agent.list", CURVE_ROLE_READER },
	{ "migration.show", CURVE_ROLE_READER }, { "queue", CURVE_ROLE_READER },
	{ "history", CURVE_ROLE_READER }, { "report", CURVE_ROLE_READER },
	{ "calibrate", CURVE_ROLE_READER }, { "predict", CURVE_ROLE_READER },
	{ "policy.list", CURVE_ROLE_READER }, { "policy.show", CURVE_ROLE_READER },
	{ "health.show", CURVE_ROLE_READER }, { "health.rule.list", CURVE_ROLE_READER },
	{ "job.list", CURVE_ROLE_READER }, { "checkpoint.list", CURVE_ROLE_READER },
	{ "checkpoint.show", CURVE_ROLE_READER }, { "checkpoint.predict", CURVE_ROLE_READER },
	{ "restore.list", CURVE_ROLE_READER }, { "restore.show", CURVE_ROLE_READER },
	{ "migrate", CURVE_ROLE_OPERATOR }, { "evacuate", CURVE_ROLE_OPERATOR },
	{ "abort", CURVE_ROLE_OPERATOR }, { "checkpoint.create", CURVE_ROLE_OPERATOR },
	{ "checkpoint.rm", CURVE_ROLE_OPERATOR }, { "restore", CURVE_ROLE_OPERATOR },
	{ "job.set", CURVE_ROLE_OPERATOR }, { "policy.add", CURVE_ROLE_OPERATOR },
	{ "policy.pause", CURVE_ROLE_OPERATOR }, { "policy.resume", CURVE_ROLE_OPERATOR },
	{ "policy.rm", CURVE_ROLE_OPERATOR }, { "health.report", CURVE_ROLE_OPERATOR },
	{ "health.rule.add", CURVE_ROLE_OPERATOR }, { "health.rule.rm", CURVE_ROLE_OPERATOR },
	/* everything else (host.*, guest.add*, keys) is the admin's */
};

enum curve_role auth_command_role(const char *cmd)
{
	for (size_t i = 0; i < ARRAY_SIZE(command_roles); i++)
		if (strcmp(command_roles[i].cmd, cmd) == 0)
			return command_roles[i].role;
	return CURVE_ROLE_ADMIN;
}

/* ---- refusals ----------------------------------------------------------- */

static unsigned long hash_text(const char *s, unsigned long h)
{
	while (*s)
		h = h * 131 + (unsigned char)*s++;
	return h;
}

/* Count a refusal; log it unless this peer, reason and detail were logged. */
static void refuse(struct auth *auth, enum auth_reason reason, const char *peer,
		   const char *detail, const char *text)
{
	auth->refused[reason]++;
	unsigned long h = hash_text(detail, hash_text(peer, 7 + (unsigned long)reason));
	size_t n = auth->n_logged < LOGGED_MAX ? auth->n_logged : LOGGED_MAX;
	for (size_t i = 0; i < n; i++)
		if (auth->logged[i] == h)
			return;
	auth->logged[auth->n_logged++ % LOGGED_MAX] = h;
	log_warnx("refused %s: %s (%s; refusals of this kind are counted in status, "
		  "this one is logged once)", peer, text, reason_names[reason]);
}

const char *auth_reason_name(enum auth_reason reason)
{
	return (unsigned)reason < AUTH_N_REASONS ? reason_names[reason] : "?";
}

unsigned long long auth_refused(const struct auth *auth, enum auth_reason reason)
{
	return auth && (unsigned)reason < AUTH_N_REASONS ? auth->refused[reason] : 0;
}

json_t *auth_json(const struct auth *auth)
{
	json_t *refused = json_object();
	unsigned long long total = 0;
	for (int r = 0; r < AUTH_N_REASONS; r++) {
		json_object_set_new(refused, reason_names[r], json_integer((json_int_t)auth->refused[r]));
		total += auth->refused[r];
	}
	json_object_set_new(refused, "total", json_integer((json_int_t)total));
	return json_pack("{s:s, s:I, s:o}", "mode", auth->enabled ? "curve" : "none", "clients",
			 (json_int_t)auth->n_clients, "refused", refused);
}

/* ---- the allow-list ------------------------------------------------------- */

static int name_ends(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);
	return n > s && strcmp(name + n - s, suffix) == 0;
}

/* Every DIR/clients/NAME.pub; a file without a good key and role fails
 * the whole list, naming the file. */
static int load_clients(const char *dir, struct client **out, size_t *n_out, char *err,
			size_t errlen)
{
	char path[PATH_MAX + 300];
	struct client *list = NULL;
	size_t n = 0;
	int rc = 0;
	snprintf(path, sizeof(path), "%s/clients", dir);
	DIR *d = opendir(path);
	if (!d) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	struct dirent *e;
	while (rc == 0 && (e = readdir(d))) {
		if (!name_ends(e->d_name, ".pub") || strlen(e->d_name) >= sizeof(list->name) + 4)
			continue;
		struct client c = { 0 };
		struct curve_keypair kp;
		snprintf(path, sizeof(path), "%s/clients/%s", dir, e->d_name);
		snprintf(c.name, sizeof(c.name), "%.*s", (int)strlen(e->d_name) - 4, e->d_name);
		if ((rc = curve_public_load(path, &kp, &c.role, err, errlen)) < 0)
			break;
		if (c.role == CURVE_ROLE_NONE) {
			snprintf(err, errlen, "%s: no \"role = reader|operator|admin\" line", path);
			rc = -EINVAL;
			break;
		}
		snprintf(c.key, sizeof(c.key), "%s", kp.public_z85);
		struct client *grown = realloc(list, (n + 1) * sizeof(*list));
		if (!grown) {
			rc = -ENOMEM;
			snprintf(err, errlen, "out of memory");
			break;
		}
		list = grown;
		list[n++] = c;
	}
	closedir(d);
	if (rc < 0) {
		free(list);
		return rc;
	}
	*out = list;
	*n_out = n;
	return 0;
}

static const struct client *client_by_key(const struct auth *auth, const char *key)
{
	for (size_t i = 0; key && i < auth->n_clients; i++)
		if (strcmp(auth->clients[i].key, key) == 0)
			return &auth->clients[i];
	return NULL;
}

int auth_reload(struct auth *auth, unsigned *removed, char *err, size_t errlen)
{
	struct client *list;
	size_t n;
	*removed = 0;
	if (!auth->enabled)
		return 0;
	int rc = load_clients(auth->dir, &list, &n, err, errlen);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < auth->n_clients; i++) {
		const struct client *old = &auth->clients[i];
		const struct client *now = NULL;
		for (size_t j = 0; !now && j < n; j++)
			if (strcmp(list[j].key, old->key) == 0)
				now = &list[j];
		if (!now || now->role < old->role)
			(*removed)++;
	}
	free(auth->clients);
	auth->clients = list;
	auth->n_clients = n;
	log_info("keys: %zu client keys on the allow-list (%s/clients), %u removed or lowered",
		 n, auth->dir, *removed);
	return 0;
}

/* ---- keys on first start ------------------------------------------------ */

static int copy_file(const char *from, const char *to, char *err, size_t errlen)
{
	char buf[4096];
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = 0;
	ssize_t n = in < 0 ? -1 : read(in, buf, sizeof(buf));
	if (n < 0 || (out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0 ||
	    write(out, buf, (size_t)n) != n)
		rc = -errno;
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0 && rc == 0)
		rc = -errno;
	if (rc < 0)
		snprintf(err, errlen, "copying %s to %s: %s", from, to, strerror(-rc));
	return rc;
}

/* A keys directory without migd.key: migd's pair, and an admin's pair
 * whose public half is the first entry of the allow-list. */
static int create_keys(const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX + 32], pub[PATH_MAX + 32];
	int rc;
	snprintf(path, sizeof(path), "%s/clients", dir);
	if ((rc = curve_keygen(dir, "migd", CURVE_ROLE_NONE, NULL, err, errlen)) < 0 ||
	    (mkdir(path, 0700) < 0 && errno != EEXIST))
		return rc < 0 ? rc : -errno;
	snprintf(path, sizeof(path), "%s/admin.key", dir);
	if (access(path, F_OK) < 0) {
		snprintf(pub, sizeof(pub), "%s/admin.pub", dir);
		snprintf(path, sizeof(path), "%s/clients/admin.pub", dir);
		if ((rc = curve_keygen(dir, "admin", CURVE_ROLE_ADMIN, NULL, err, errlen)) < 0 ||
		    (rc = copy_file(pub, path, err, errlen)) < 0)
			return rc;
	}
	log_info("keys: made migd's key pair (%s/migd.key) and an admin key (%s/admin.key, on "
		 "the allow-list as clients/admin.pub)", dir, dir);
	return 0;
}

static int load_keys(struct auth *auth, char *err, size_t errlen)
{
	char path[PATH_MAX + 32];
	struct stat st;
	int rc;
	if (mkdir(auth->dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "keys dir %s: %s", auth->dir, strerror(errno));
		return -errno;
	}
	if (stat(auth->dir, &st) == 0 && (st.st_mode & 022))
		log_warnx("keys dir %s: mode %04o: others may change the allow-list (chmod 700)",
			  auth->dir, (unsigned)(st.st_mode & 07777));
	snprintf(path, sizeof(path), "%s/migd.key", auth->dir);
	if (access(path, F_OK) < 0 && (rc = create_keys(auth->dir, err, errlen)) < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/clients", auth->dir);
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/migd.key", auth->dir);
	if ((rc = curve_secret_load(path, &auth->server, err, errlen)) < 0 ||
	    (rc = load_clients(auth->dir, &auth->clients, &auth->n_clients, err, errlen)) < 0)
		return rc;
	return 0;
}

/* ---- without keys: only loopback ---------------------------------------- */

static int endpoint_is_local(const char *ep)
{
	static const char *const local[] = { "ipc://", "inproc://", "tcp://127.", "tcp://localhost:",
					     "tcp://[::1]:", "tcp://lo:" };
	for (size_t i = 0; i < ARRAY_SIZE(local); i++)
		if (strncmp(ep, local[i], strlen(local[i])) == 0)
			return 1;
	return 0;
}

static int check_plain(const struct auth_opts *o, char *err, size_t errlen)
{
	for (size_t i = 0; i < ARRAY_SIZE(o->endpoints); i++) {
		const char *ep = o->endpoints[i];
		if (!ep || !*ep || endpoint_is_local(ep))
			continue;
		if (!o->insecure) {
			snprintf(err, errlen, "%s is not a loopback address and no keys are set "
				 "(keys.dir, --keys-dir): anyone who reaches it could migrate, "
				 "evacuate or abort; set keys, or give --insecure", ep);
			return -EPERM;
		}
		log_warnx("INSECURE: serving %s without keys (--insecure): anyone who reaches it "
			  "may run any command and claim to be any guest's agent", ep);
	}
	return 0;
}

/* ---- setup ---------------------------------------------------------------- */

int auth_new(const struct auth_opts *o, struct db *db, struct auth **out, char *err,
	     size_t errlen)
{
	struct auth *auth = calloc(1, sizeof(*auth));
	int rc = -ENOMEM, linger = 0;
	if (!auth) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	auth->db = db;
	if (!(auth->zctx = zmq_ctx_new())) {
		snprintf(err, errlen, "ZeroMQ: %s", zmq_strerror(zmq_errno()));
		goto fail;
	}
	if (!o->keys_dir || !*o->keys_dir) {
		if ((rc = check_plain(o, err, errlen)) < 0)
			goto fail;
		log_warnx("no keys (keys.dir): requests, events and agents are not authenticated "
			  "and travel in clear text");
		*out = auth;
		return 0;
	}
	if (!zmq_has("curve")) {
		snprintf(err, errlen, "keys dir %s set, but this ZeroMQ has no CURVE", o->keys_dir);
		rc = -ENOTSUP;
		goto fail;
	}
	auth->enabled = 1;
	snprintf(auth->dir, sizeof(auth->dir), "%s", o->keys_dir);
	if ((rc = load_keys(auth, err, errlen)) < 0)
		goto fail;
	/* before any other socket of the context is bound (RFC 27) */
	if (!(auth->zap = zmq_socket(auth->zctx, ZMQ_REP)) ||
	    zmq_setsockopt(auth->zap, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
	    zmq_bind(auth->zap, ZAP_ENDPOINT) < 0) {
		snprintf(err, errlen, "ZAP handler %s: %s", ZAP_ENDPOINT, zmq_strerror(zmq_errno()));
		rc = -EIO;
		goto fail;
	}
	log_info("keys: CURVE on every socket; migd's public key %s (%s/migd.pub); %zu client "
		 "keys on the allow-list", auth->server.public_z85, auth->dir, auth->n_clients);
	*out = auth;
	return 0;
fail:
	auth_free(auth);
	return rc;
}

void auth_free(struct auth *auth)
{
	if (!auth)
		return;
	for (size_t i = 0; i < auth->n_mon; i++)
		zmq_close(auth->mon[i].pair);
	if (auth->zap)
		zmq_close(auth->zap);
	if (auth->zctx)
		zmq_ctx_term(auth->zctx);
	memset(&auth->server, 0, sizeof(auth->server));
	free(auth->clients);
	free(auth);
}

void *auth_context(struct auth *auth)
{
	return auth->zctx;
}

int auth_enabled(const struct auth *auth)
{
	return auth && auth->enabled;
}

int auth_serve_socket(struct auth *auth, void *socket, const char *domain, const char *what,
		      const char *endpoint, char *err, size_t errlen)
{
	char mon_ep[64];
	int rc, linger = 0;
	if (!auth || !auth->enabled)
		return 0;
	if ((rc = curve_server_setup(socket, &auth->server, domain)) < 0) {
		snprintf(err, errlen, "%s: CURVE: %s", what, zmq_strerror(-rc));
		return rc;
	}
	if (auth->n_mon == MAX_MONITORS)
		return 0;
	struct monitor *m = &auth->mon[auth->n_mon];
	snprintf(mon_ep, sizeof(mon_ep), "inproc://migd-handshakes-%s", domain);
	/* a client without CURVE shows as a mechanism mismatch, or, when it
	 * saw our greeting first and hung up, as a failure without detail */
	if (zmq_socket_monitor(socket, mon_ep, ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
			       ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) < 0 ||
	    !(m->pair = zmq_socket(auth->zctx, ZMQ_PAIR)) ||
	    zmq_setsockopt(m->pair, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
	    zmq_connect(m->pair, mon_ep) < 0) {
		snprintf(err, errlen, "%s: handshake monitor: %s", what, zmq_strerror(zmq_errno()));
		if (m->pair)
			zmq_close(m->pair);
		m->pair = NULL;
		return -EIO;
	}
	snprintf(m->what, sizeof(m->what), "%s", what);
	snprintf(m->endpoint, sizeof(m->endpoint), "%s", endpoint);
	auth->n_mon++;
	return 0;
}

size_t auth_poll_sockets(struct auth *auth, void **sockets, size_t max)
{
	size_t n = 0;
	if (!auth || !auth->enabled)
		return 0;
	if (n < max)
		sockets[n++] = auth->zap;
	for (size_t i = 0; i < auth->n_mon && n < max; i++)
		sockets[n++] = auth->mon[i].pair;
	return n;
}

/* ---- ZAP ------------------------------------------------------------------ */

/* status 200 with user_id, or 400 with text */
static void zap_reply(struct auth *auth, const struct zap_request *req, int ok,
		      const char *user_id, const char *text)
{
	zmq_send(auth->zap, ZAP_VERSION, strlen(ZAP_VERSION), ZMQ_SNDMORE);
	zmq_send(auth->zap, req->request_id, req->request_id_len, ZMQ_SNDMORE);
	zmq_send(auth->zap, ok ? "200" : "400", 3, ZMQ_SNDMORE);
	zmq_send(auth->zap, text, strlen(text), ZMQ_SNDMORE);
	zmq_send(auth->zap, user_id, strlen(user_id), ZMQ_SNDMORE);
	zmq_send(auth->zap, "", 0, 0);
}

/* Whether the key of req may connect to its domain; why not in why. */
static int zap_decide(struct auth *auth, const struct zap_request *req, const char *key,
		      char *why, size_t whylen)
{
	char guest[DB_NAME_MAX];
	if (strcmp(req->domain, "agent") == 0) {
		if (db_guest_by_agent_key(auth->db, key, guest) == 0)
			return 1;
		snprintf(why, whylen, "agent key %s is no guest's", key);
		return 0;
	}
	const struct client *c = client_by_key(auth, key);
	if (c)
		return 1;
	snprintf(why, whylen, "%s: key %s is not on the allow-list", req->domain, key);
	return 0;
}

/* total frames came; the first n (at most ZAP_MAX_FRAMES) are in frames */
static void zap_one(struct auth *auth, zmq_msg_t *frames, size_t n, size_t total)
{
	struct zap_frame f[ZAP_MAX_FRAMES];
	struct zap_request req;
	char err[400], key[CURVE_Z85_LEN + 1], peer[600];
	for (size_t i = 0; i < n; i++)
		f[i] = (struct zap_frame){ zmq_msg_data(&frames[i]), zmq_msg_size(&frames[i]) };
	if (zap_request_parse(f, total, &req, err, sizeof(err)) < 0) {
		log_warnx("ZAP: malformed request (%s); refused", err);
		/* REP must answer; with the request id when there is one */
		memset(&req, 0, sizeof(req));
		if (n >= 2 && f[1].size < sizeof(req.request_id)) {
			memcpy(req.request_id, f[1].data, f[1].size);
			req.request_id_len = f[1].size;
		}
		zap_reply(auth, &req, 0, "", "malformed request");
		return;
	}
	snprintf(peer, sizeof(peer), "%s from %s", *req.domain ? req.domain : "?", req.address);
	if (!req.has_curve_key) {
		refuse(auth, AUTH_NO_CURVE, peer, req.mechanism, "CURVE is required");
		zap_reply(auth, &req, 0, "", "CURVE required");
		return;
	}
	zmq_z85_encode(key, req.curve_key, sizeof(req.curve_key));
	if (!zap_decide(auth, &req, key, err, sizeof(err))) {
		refuse(auth, strcmp(req.domain, "agent") == 0 ? AUTH_AGENT : AUTH_UNKNOWN_KEY, peer,
		       key, err);
		zap_reply(auth, &req, 0, "", "key not allowed");
		return;
	}
	log_debug("ZAP: %s: key %s allowed", peer, key);
	zap_reply(auth, &req, 1, key, "OK");
}

/* One ZAP request off the socket: 1 when one was read. */
static int zap_read(struct auth *auth)
{
	zmq_msg_t frames[ZAP_MAX_FRAMES];
	size_t n = 0, total = 0;
	int more = 1;
	while (more) {
		zmq_msg_t scratch, *m = n < ZAP_MAX_FRAMES ? &frames[n] : &scratch;
		zmq_msg_init(m);
		if (zmq_msg_recv(m, auth->zap, total ? 0 : ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(m);
			break;
		}
		more = zmq_msg_more(m);
		total++;
		if (m == &scratch)
			zmq_msg_close(m); /* too many frames: counted, not kept */
		else
			n++;
	}
	if (total == 0)
		return 0;
	zap_one(auth, frames, n, total);
	for (size_t i = 0; i < n; i++)
		zmq_msg_close(&frames[i]);
	return 1;
}

/* ---- failed handshakes ---------------------------------------------------- */

static void monitor_read(struct auth *auth, struct monitor *m)
{
	for (;;) {
		zmq_msg_t ev, addr;
		uint16_t event = 0;
		uint32_t value = 0;
		zmq_msg_init(&ev);
		if (zmq_msg_recv(&ev, m->pair, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&ev);
			return;
		}
		if (zmq_msg_size(&ev) >= 6) {
			memcpy(&event, zmq_msg_data(&ev), 2);
			memcpy(&value, (char *)zmq_msg_data(&ev) + 2, 4);
		}
		zmq_msg_close(&ev);
		zmq_msg_init(&addr);
		zmq_msg_recv(&addr, m->pair, 0); /* the endpoint: ours, not the peer's */
		zmq_msg_close(&addr);
		char peer[300];
		snprintf(peer, sizeof(peer), "a connection to %s %s", m->what, m->endpoint);
		if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
			m->protocol_ms = now_ms();
		if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
			if (now_ms() - m->protocol_ms > 100)
				refuse(auth, AUTH_NO_CURVE, peer, "mismatch",
				       "the client does not speak CURVE (it hung up during the "
				       "handshake)");
		} else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
		    value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
			refuse(auth, AUTH_NO_CURVE, peer, "mismatch",
			       "the client does not speak CURVE (no key)");
		else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
			 value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
			refuse(auth, AUTH_HANDSHAKE, peer, "crypto",
			       "CURVE handshake failed: the client pinned another server key");
		else
			refuse(auth, AUTH_HANDSHAKE, peer, "other", "handshake failed: protocol error");
	}
}

void auth_tick(struct auth *auth)
{
	if (!auth || !auth->enabled)
		return;
	for (int i = 0; i < 64 && zap_read(auth); i++)
		;
	for (size_t i = 0; i < auth->n_mon; i++)
		monitor_read(auth, &auth->mon[i]);
}

/* ---- every request -------------------------------------------------------- */

int auth_request(struct auth *auth, const char *user_id, const char *cmd, char *err,
		 size_t errlen)
{
	if (!auth || !auth->enabled)
		return 0;
	char peer[128];
	const struct client *c = client_by_key(auth, user_id);
	if (!c) {
		snprintf(peer, sizeof(peer), "key %.40s", user_id ? user_id : "(none)");
		snprintf(err, errlen, "refused: key %.40s is not (or no longer) on migd's "
			 "allow-list", user_id ? user_id : "(none)");
		refuse(auth, AUTH_UNKNOWN_KEY, peer, "request", err);
		return -EACCES;
	}
	enum curve_role need = auth_command_role(cmd);
	if (c->role >= need)
		return 0;
	snprintf(peer, sizeof(peer), "%s (%s)", c->name, c->key);
	snprintf(err, errlen, "refused: %.64s (%s) may not run %.64s: it needs %s%s", c->name,
		 curve_role_name(c->role), cmd, curve_role_name(need),
		 need == CURVE_ROLE_ADMIN ? "" : " or admin");
	refuse(auth, AUTH_ROLE, peer, cmd, err);
	return -EACCES;
}

int auth_agent(struct auth *auth, const char *user_id, const char *guest, char *err,
	       size_t errlen)
{
	char key[DB_AGENT_KEY_MAX], peer[128];
	if (!auth || !auth->enabled)
		return 0;
	int rc = db_guest_agent_key(auth->db, guest, key);
	if (rc == 0 && user_id && strcmp(key, user_id) == 0)
		return 0;
	snprintf(peer, sizeof(peer), "agent key %.40s", user_id ? user_id : "(none)");
	if (rc == -ENOENT)
		snprintf(err, errlen, "refused: no guest \"%s\"", guest);
	else
		snprintf(err, errlen, "refused: this agent's key is not guest %s's", guest);
	refuse(auth, AUTH_AGENT, peer, guest, err);
	return -EACCES;
}

int auth_guest_key(struct auth *auth, const char *guest, const char *given_z85,
		   char out[CURVE_Z85_LEN + 1], char *err, size_t errlen)
{
	char dir[PATH_MAX + 16], path[PATH_MAX + 100];
	struct curve_keypair kp;
	out[0] = '\0';
	if (given_z85 && *given_z85) {
		if (!curve_z85_valid(given_z85)) {
			snprintf(err, errlen, "agent_key \"%.60s\": expected a CURVE public key, 40 "
				 "characters of Z85", given_z85);
			return -EINVAL;
		}
		snprintf(out, CURVE_Z85_LEN + 1, "%s", given_z85);
		return 0;
	}
	if (!auth || !auth->enabled)
		return 0;
	snprintf(dir, sizeof(dir), "%s/agents", auth->dir);
	snprintf(path, sizeof(path), "%s/%s.key", dir, guest);
	int rc = curve_secret_load(path, &kp, err, errlen); /* a guest added again keeps its key */
	if (rc == -ENOENT)
		rc = curve_keygen(dir, guest, CURVE_ROLE_NONE, &kp, err, errlen);
	if (rc < 0)
		return rc;
	snprintf(out, CURVE_Z85_LEN + 1, "%s", kp.public_z85);
	memset(&kp, 0, sizeof(kp));
	return 0;
}
