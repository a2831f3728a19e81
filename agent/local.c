/*
 * local: migagent's side of the libsfs control point: the Unix socket,
 * the client table and the line protocol (agent_proto.h).
 *
 * Clients are untrusted in the sense that matters here: one that crashes,
 * stalls or sends garbage must never block a quiesce or the agent. So every
 * socket is non-blocking, a line that does not parse is answered with an
 * error (and the client kept), a line longer than the protocol allows or a
 * client that cannot take a small line costs the client its connection,
 * and a dropped client is taken out of any quiesce under way.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent_internal.h"
#include "log.h"
#include "util.h"

#define SEND_TIMEOUT_MS 200 /* a client that takes no line for this long is dropped */

static int bind_socket(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 && listen(fd, 128) == 0)
		return fd;
	int rc = -errno;
	close(fd);
	return rc;
}

/* A socket file left by an agent that died is replaced; one that answers
 * belongs to a running agent. */
static int stale_socket(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	int alive = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
	close(fd);
	return !alive;
}

int local_listen(struct agent *a, char *err, size_t errlen)
{
	char dir[sizeof(a->socket_path)];
	snprintf(dir, sizeof(dir), "%s", a->socket_path);
	int rc = mkdir_p(dirname(dir), 0755);
	if (rc < 0) {
		snprintf(err, errlen, "socket directory of %s: %s", a->socket_path, strerror(-rc));
		return rc;
	}
	int fd = bind_socket(a->socket_path, err, errlen);
	if (fd == -EADDRINUSE && stale_socket(a->socket_path)) {
		unlink(a->socket_path);
		fd = bind_socket(a->socket_path, err, errlen);
	}
	if (fd == -EADDRINUSE) {
		snprintf(err, errlen, "socket %s: another migagent is listening there",
			 a->socket_path);
		return fd;
	}
	if (fd < 0) {
		snprintf(err, errlen, "socket %s: %s", a->socket_path, strerror(-fd));
		return fd;
	}
	/* Any local process may register: MPI ranks rarely run as root. */
	chmod(a->socket_path, 0666);
	a->listen_fd = fd;
	return 0;
}

unsigned local_registered(const struct agent *a)
{
	unsigned n = 0;
	for (unsigned i = 0; i < a->n_clients; i++)
		n += a->clients[i]->registered;
	return n;
}

void local_accept(struct agent *a)
{
	for (;;) {
		int fd = accept4(a->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("accepting a client on %s", a->socket_path);
			return;
		}
		struct client *c = calloc(1, sizeof(*c));
		if (!c || a->n_clients == AGENT_MAX_CLIENTS) {
			log_warnx("client refused: %s", c ? "too many clients (1024)"
							 : "out of memory");
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		a->clients[a->n_clients++] = c;
	}
}

static void client_label(const struct client *c, char *buf, size_t len)
{
	if (c->registered)
		snprintf(buf, len, "client pid %lld (%s)", (long long)c->pid, c->comm);
	else
		snprintf(buf, len, "unregistered client fd %d", c->fd);
}

void local_drop(struct agent *a, unsigned i, const char *why)
{
	struct client *c = a->clients[i];
	char label[80];
	client_label(c, label, sizeof(label));
	if (c->registered)
		log_info("%s: %s", label, why);
	else
		log_debug("%s: %s", label, why);
	a->clients[i] = a->clients[--a->n_clients];
	agent_client_gone(a, c);
	close(c->fd);
	free(c);
}

static unsigned client_index(const struct agent *a, const struct client *c)
{
	for (unsigned i = 0; i < a->n_clients; i++)
		if (a->clients[i] == c)
			return i;
	return a->n_clients;
}

int local_send(struct agent *a, struct client *c, enum agent_local_type type, uint64_t id,
	       const char *error)
{
	struct agent_local_msg m = { .type = type, .id = id };
	if (error)
		snprintf(m.error, sizeof(m.error), "%.255s", error);
	return local_send_msg(a, c, &m);
}

int local_send_msg(struct agent *a, struct client *c, const struct agent_local_msg *m)
{
	char line[AGENT_LINE_MAX + 1];
	enum agent_local_type type = m->type;
	int len = agent_local_format(m, line, sizeof(line));
	if (len < 0)
		return len;
	uint64_t deadline_ms = now_ms() + SEND_TIMEOUT_MS;
	for (size_t off = 0; off < (size_t)len;) {
		ssize_t n = send(c->fd, line + off, (size_t)len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		uint64_t now = now_ms();
		if (n < 0 && (errno == EAGAIN || errno == EINTR) && now < deadline_ms) {
			struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
			poll(&pfd, 1, (int)(deadline_ms - now));
			continue;
		}
		char why[120];
		snprintf(why, sizeof(why), "dropped: cannot send %s: %s",
			 agent_local_type_name(type), n < 0 ? strerror(errno) : "stalled");
		local_drop(a, client_index(a, c), why);
		return -EPIPE;
	}
	return 0;
}

static void on_stats(struct client *c, const struct agent_local_msg *m)
{
	uint64_t now = now_ms();
	if (c->sample_ms && now > c->sample_ms) {
		uint64_t dt_ms = now - c->sample_ms;
		c->read_bps = m->read_bytes >= c->read_bytes
				      ? (m->read_bytes - c->read_bytes) * 1000 / dt_ms : 0;
		c->write_bps = m->write_bytes >= c->write_bytes
				       ? (m->write_bytes - c->write_bytes) * 1000 / dt_ms : 0;
	}
	c->sample_ms = now;
	c->read_bytes = m->read_bytes;
	c->write_bytes = m->write_bytes;
	c->inflight = m->inflight;
	c->requests = m->requests;
}

/* One line from client i. 0, or -1 when the client was dropped. */
static int on_line(struct agent *a, struct client *c, const char *line, size_t len)
{
	char err[400], label[80];
	struct agent_local_msg m;
	client_label(c, label, sizeof(label));
	if (agent_local_parse(line, len, &m, err, sizeof(err)) < 0) {
		log_warnx("%s: %s", label, err);
		return local_send(a, c, AGENT_LOCAL_ERROR, 0, err) < 0 ? -1 : 0;
	}
	if (!c->registered && m.type != AGENT_LOCAL_REGISTER) {
		snprintf(err, sizeof(err), "bad message: %s before register",
			 agent_local_type_name(m.type));
		log_warnx("%s: %s", label, err);
		return local_send(a, c, AGENT_LOCAL_ERROR, 0, err) < 0 ? -1 : 0;
	}
	switch (m.type) {
	case AGENT_LOCAL_REGISTER:
		if (c->registered) {
			snprintf(err, sizeof(err), "bad message: already registered as pid %lld",
				 (long long)c->pid);
			return local_send(a, c, AGENT_LOCAL_ERROR, 0, err) < 0 ? -1 : 0;
		}
		c->registered = 1;
		c->pid = m.pid;
		snprintf(c->comm, sizeof(c->comm), "%s", m.comm);
		log_info("client pid %lld (%s) registered", (long long)c->pid, c->comm);
		agent_client_registered(a, c);
		return client_index(a, c) < a->n_clients ? 0 : -1;
	case AGENT_LOCAL_STATS:
		on_stats(c, &m);
		return 0;
	case AGENT_LOCAL_QUIESCED:
		agent_client_quiesced(a, c, &m);
		return 0;
	case AGENT_LOCAL_RESUMED:
		return 0;
	case AGENT_LOCAL_ERROR:
		log_warnx("%s: says it could not read what we sent: %s", label, m.error);
		return 0;
	default:
		snprintf(err, sizeof(err), "bad message: type \"%s\" is not for the agent",
			 agent_local_type_name(m.type));
		log_warnx("%s: %s", label, err);
		return local_send(a, c, AGENT_LOCAL_ERROR, 0, err) < 0 ? -1 : 0;
	}
}

void local_read(struct agent *a, unsigned i)
{
	struct client *c = a->clients[i];
	ssize_t n = recv(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		local_drop(a, i, n == 0 ? "disconnected" : strerror(errno));
		return;
	}
	c->rlen += (size_t)n;
	char *nl;
	while ((nl = memchr(c->rbuf, '\n', c->rlen)) != NULL) {
		size_t len = (size_t)(nl - c->rbuf) + 1;
		if (on_line(a, c, c->rbuf, len) < 0)
			return; /* c is gone */
		memmove(c->rbuf, c->rbuf + len, c->rlen - len);
		c->rlen -= len;
	}
	if (c->rlen == sizeof(c->rbuf)) {
		char err[120];
		snprintf(err, sizeof(err), "bad message: line longer than %u bytes",
			 AGENT_LINE_MAX);
		if (local_send(a, c, AGENT_LOCAL_ERROR, 0, err) == 0)
			local_drop(a, client_index(a, c), err);
	}
}
