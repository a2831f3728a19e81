/*
 * server: see server.h.
 *
 * Threads, not an event loop: a request of the I/O server is one large
 * receive and one pwrite (or one sendfile), so a blocking thread per
 * connection is as fast as anything on loopback and keeps every handler a
 * straight line. Signals are taken through a signalfd polled next to the
 * listening socket by the main thread, so nothing runs in a signal handler
 * and no connection thread ever sees SIGTERM.
 *
 * Framing rule: after the first byte of a header, the whole frame must
 * arrive within timeout_ms; an idle connection may wait forever. A frame
 * that cannot be trusted (garbage, truncated, oversized, undecodable)
 * costs its sender the connection and one warning line, nothing more.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "iosrv.h"
#include "log.h"
#include "meta.h"
#include "net.h"
#include "service.h"
#include "servcap.h"
#include "sfsd_metrics.h"
#include "sfs_rpc.h"
#include "util.h"

#define STOP_GRACE_MS 5000    /* in-flight requests get this long at a stop */
#define LISTEN_BACKLOG 1024
#define ACCEPT_BACKOFF_MS 100 /* after EMFILE and friends */

struct server {
	const struct sfs_conf *conf;
	const struct sfs_server_conf *srv;
	const struct server_role_ops *ops;
	void *ctx;
	int lock_fd;
	int listen_fd;
	pthread_mutex_t lock;  /* guards conn_fds, n_conns */
	pthread_cond_t idle;   /* a connection ended */
	int *conn_fds;         /* max_connections slots, -1 = free */
	unsigned n_conns;
	uint64_t n_requests;   /* atomic: frames read but PING and STATS (STATS) */
	struct sfsd_metrics *metrics; /* NULL: no [metrics] endpoint */
};

struct conn {
	struct server *s;
	int fd;
	unsigned slot;
	char peer[80];
	void *state;
	struct net_spin spin; /* how long this client usually leaves us idle */
	struct sfs_req req;
	struct sfs_reply reply;
	uint8_t body[SFS_MAX_BODY_BYTES];
};

int server_fail(struct server_req *r, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->reply->msg, sizeof(r->reply->msg), fmt, ap);
	va_end(ap);
	return rc;
}

static void format_peer(const struct sockaddr *sa, socklen_t len, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN], port[8]; /* numeric: these always fit */
	if (getnameinfo(sa, len, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(out, outlen, "unknown peer");
		return;
	}
	int v6 = strchr(host, ':') != NULL;
	snprintf(out, outlen, "%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

/* Wait with no deadline for the next request: 1 when bytes are there, 0
 * when the peer closed between frames (the normal way to hang up). A
 * client streaming small requests sends the next one within microseconds
 * of our reply, sooner than a sleeping thread wakes: net_poll spins first. */
static int wait_request(struct conn *c)
{
	for (;;) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		if (net_poll(&pfd, 1, -1, &c->spin) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		char byte;
		ssize_t n = recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n > 0)
			return 1;
		if (n == 0)
			return 0;
		if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
	}
}

static int serve_ping(struct server *s, struct server_req *r)
{
	r->reply->version = SFS_PROTO_VERSION;
	r->reply->role = (uint8_t)s->ops->role;
	snprintf(r->reply->name, sizeof(r->reply->name), "%s", s->srv->name);
	return 0;
}

/* Read a header and body. 0, or -1 when the connection must close (the
 * reason is logged here). */
static int read_frame(struct conn *c, struct sfs_hdr *hdr, uint64_t *deadline_ms)
{
	const struct sfs_conf *conf = c->s->conf;
	char why[256];
	int rc = wait_request(c);
	if (rc <= 0) {
		if (rc < 0)
			log_debug("peer %s: %s", c->peer, strerror(-rc));
		return -1;
	}
	*deadline_ms = now_ms() + conf->timeout_ms;
	rc = sfs_frame_recv_head(c->fd, conf->max_request_bytes, hdr, c->body, *deadline_ms, why,
				 sizeof(why));
	if (rc == 0)
		return 0;
	if (rc == -EPROTONOSUPPORT) {
		c->reply.op = hdr->op;
		snprintf(c->reply.msg, sizeof(c->reply.msg), "%.*s", SFS_MAX_MSG, why);
		sfs_reply_send(c->fd, &c->reply, hdr->tag, -EPROTONOSUPPORT, NULL, 0,
			       now_ms() + conf->timeout_ms);
	} else if (rc == -ECONNRESET) {
		snprintf(why, sizeof(why), "truncated frame (the peer closed mid-frame)");
	} else if (rc == -ETIMEDOUT) {
		snprintf(why, sizeof(why), "frame not complete within timeout_ms (%u ms)",
			 conf->timeout_ms);
	}
	log_warnx("peer %s: %s; closing the connection", c->peer, why);
	return -1;
}

/* Serve one request. 0 to go on, -1 to close the connection. */
static int serve_one(struct conn *c)
{
	struct server *s = c->s;
	struct sfs_hdr hdr;
	uint64_t deadline_ms;
	char why[256];
	int status, rc;

	if (read_frame(c, &hdr, &deadline_ms) < 0)
		return -1;
	uint64_t start_ns = now_ns();
	c->reply.op = hdr.op;
	c->reply.msg[0] = '\0';
	struct server_req r = { .fd = c->fd, .peer = c->peer, .tag = hdr.tag,
				.data_left = hdr.data_len, .deadline_ms = deadline_ms,
				.req = &c->req, .reply = &c->reply, .conn_state = c->state };
	rc = sfs_req_decode(hdr.op, c->body, hdr.body_len, &c->req, why, sizeof(why));
	if (rc == -EOPNOTSUPP) {
		status = server_fail(&r, -EOPNOTSUPP, "op %u is not an sfs operation", hdr.op);
	} else if (rc < 0) {
		log_warnx("peer %s: %s; closing the connection", c->peer, why);
		return -1;
	} else if (hdr.op == SFS_OP_PING) {
		status = serve_ping(s, &r);
	} else if (hdr.op == SFS_OP_STATS) {
		c->reply.requests = __atomic_load_n(&s->n_requests, __ATOMIC_RELAXED);
		c->reply.cap_refusals = servcap_refusals();
		status = 0;
	} else {
		__atomic_add_fetch(&s->n_requests, 1, __ATOMIC_RELAXED);
		status = s->ops->handle(s->ctx, &r);
	}
	if (r.broken)
		return -1;
	if (status > 0 || status < -(int)SFS_MAX_ERRNO) {
		log_warnx("%s handler returned status %d; answering EIO", sfs_op_name(hdr.op),
			  status);
		status = -EIO; /* our bug, but the peer still gets a frame it can decode */
	}
	if (r.data_left) {
		rc = net_discard(c->fd, r.data_left, deadline_ms);
		if (rc < 0) {
			log_warnx("peer %s: receiving %u bytes of %s data: %s; closing the "
				  "connection", c->peer, r.data_left, sfs_op_name(hdr.op),
				  strerror(-rc));
			return -1;
		}
	}
	rc = 0;
	if (!r.replied) {
		rc = sfs_reply_send(c->fd, &c->reply, hdr.tag, status, NULL, 0,
				    now_ms() + s->conf->timeout_ms);
		if (rc < 0)
			log_warnx("peer %s: sending the %s reply: %s", c->peer,
				  sfs_op_name(hdr.op), strerror(-rc));
	}
	log_debug("peer %s: %s tag %u: %s%s%s", c->peer, sfs_op_name(hdr.op), hdr.tag,
		  status < 0 ? strerror(-status) : "ok", c->reply.msg[0] ? ": " : "",
		  c->reply.msg);
	if (hdr.op != SFS_OP_PING && hdr.op != SFS_OP_STATS)
		sfsd_metrics_request(s->metrics, hdr.op, status, hdr.data_len, &r,
				     now_ns() - start_ns);
	if (s->ops->after_reply)
		s->ops->after_reply(s->ctx, &r);
	return rc < 0 ? -1 : 0;
}

/* Drop a connection from the table and close it. Under the lock, so a stop
 * never shuts down a descriptor number that was already reused. */
static void conn_forget(struct server *s, unsigned slot, int fd)
{
	pthread_mutex_lock(&s->lock);
	s->conn_fds[slot] = -1;
	s->n_conns--;
	close(fd);
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct server *s = c->s;
	if (s->ops->conn_open && s->ops->conn_open(s->ctx, c->fd, &c->state) < 0) {
		log_warnx("peer %s: cannot set up the connection: out of memory", c->peer);
		goto out;
	}
	log_debug("peer %s: connected", c->peer);
	while (serve_one(c) == 0)
		;
	log_debug("peer %s: disconnected", c->peer);
	if (s->ops->conn_close)
		s->ops->conn_close(s->ctx, c->state);
out:
	conn_forget(s, c->slot, c->fd);
	free(c);
	return NULL;
}

/* Register fd in a free slot; -1 when max_connections are open. */
static int conn_register(struct server *s, int fd, unsigned *slot)
{
	int rc = -1;
	pthread_mutex_lock(&s->lock);
	if (s->n_conns < s->conf->max_connections) {
		for (unsigned i = 0; i < s->conf->max_connections; i++) {
			if (s->conn_fds[i] < 0) {
				s->conn_fds[i] = fd;
				s->n_conns++;
				*slot = i;
				rc = 0;
				break;
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static void accept_one(struct server *s)
{
	struct sockaddr_storage addr;
	socklen_t addrlen = sizeof(addr);
	pthread_attr_t attr;
	struct conn *c = NULL;
	char peer[80];
	unsigned slot;
	int rc;

	int fd = accept4(s->listen_fd, (struct sockaddr *)&addr, &addrlen, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
			return;
		log_warn("accept");
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			poll(NULL, 0, ACCEPT_BACKOFF_MS);
		return;
	}
	format_peer((struct sockaddr *)&addr, addrlen, peer, sizeof(peer));
	if (conn_register(s, fd, &slot) < 0) {
		log_warnx("peer %s: refused: %u connections already open (max_connections)",
			  peer, s->conf->max_connections);
		close(fd);
		return;
	}
	c = malloc(sizeof(*c));
	if (!c) {
		log_warnx("peer %s: refused: out of memory", peer);
		conn_forget(s, slot, fd);
		return;
	}
	c->s = s;
	c->fd = fd;
	c->slot = slot;
	c->state = NULL;
	c->spin = (struct net_spin){ 0 };
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	net_tune(fd, s->conf->socket_sndbuf_bytes, s->conf->socket_rcvbuf_bytes,
		 s->conf->tcp_nodelay);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t tid;
	rc = pthread_create(&tid, &attr, conn_main, c);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		log_warnx("peer %s: refused: cannot start a thread: %s", peer, strerror(rc));
		conn_forget(s, slot, fd);
		free(c);
	}
}

static void server_free(struct server *s)
{
	if (!s)
		return;
	sfsd_metrics_free(s->metrics); /* its scrapes read the role */
	if (s->ctx)
		s->ops->free(s->ctx);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	pthread_cond_destroy(&s->idle);
	pthread_mutex_destroy(&s->lock);
	free(s->conn_fds);
	free(s);
}

/* For a scrape (sfsd_metrics.h), in the HTTP server's thread: open
 * connections, and space used as the role answers a STATFS (what `sfs df`
 * shows), asked directly so it is not counted as a client's request. */
static void sample(void *arg, struct sfsd_sample *out)
{
	struct server *s = arg;
	pthread_mutex_lock(&s->lock);
	out->connections = s->n_conns;
	pthread_mutex_unlock(&s->lock);
	out->cap_refusals = servcap_refusals();
	struct sfs_req *req = calloc(1, sizeof(*req));
	struct sfs_reply *reply = calloc(1, sizeof(*reply));
	if (req && reply) {
		req->op = s->ops->role == SFS_ROLE_META ? SFS_OP_META_STATFS : SFS_OP_DF_STATFS;
		reply->op = req->op;
		struct server_req r = { .fd = -1, .peer = "metrics", .req = req, .reply = reply };
		if (s->ops->handle(s->ctx, &r) == 0) {
			out->have_space = 1;
			out->total_bytes = reply->total_bytes;
			out->free_bytes = reply->free_bytes;
			out->used_bytes = reply->used_bytes;
			out->n_files = reply->n_files;
		}
	}
	free(req);
	free(reply);
}

/* Take the directory: exactly one sfsd may serve it. */
static int lock_dir(struct server *s, char *err, size_t errlen)
{
	char path[600];
	int rc = mkdir_p(s->srv->dir, 0755);
	if (rc < 0) {
		snprintf(err, errlen, "creating %s: %s", s->srv->dir, strerror(-rc));
		return rc;
	}
	if (snprintf_checked(path, sizeof(path), "%s/sfsd.lock", s->srv->dir) < 0) {
		snprintf(err, errlen, "dir %s: path too long", s->srv->dir);
		return -ENAMETOOLONG;
	}
	s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (s->lock_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s is in use by another sfsd (%s is locked)", s->srv->dir,
			 path);
		return rc == -EWOULDBLOCK ? -EBUSY : rc;
	}
	return 0;
}

static int server_new(const struct sfs_conf *conf, const struct sfs_server_conf *srv,
		      struct server **out, char *err, size_t errlen)
{
	pthread_condattr_t cattr;
	int rc = -ENOMEM;
	struct server *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->conf = conf;
	s->srv = srv;
	s->ops = srv->role == SFS_ROLE_META ? &meta_role_ops : &iosrv_role_ops;
	s->lock_fd = s->listen_fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->idle, &cattr);
	pthread_condattr_destroy(&cattr);
	s->conn_fds = malloc(sizeof(int) * conf->max_connections);
	if (!s->conn_fds) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < conf->max_connections; i++)
		s->conn_fds[i] = -1;
	rc = lock_dir(s, err, errlen);
	if (rc < 0)
		goto fail;
	rc = s->ops->open(conf, srv, &s->ctx, err, errlen);
	if (rc < 0)
		goto fail;
	rc = net_listen(srv->host, srv->port, LISTEN_BACKLOG, err, errlen);
	if (rc < 0)
		goto fail;
	s->listen_fd = rc;
	rc = sfsd_metrics_start(conf, srv, sample, s, &s->metrics, err, errlen);
	if (rc < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	server_free(s);
	return rc;
}

/* Stop: no new connections, no new requests, bounded wait for those in
 * progress, then the role makes its data durable. Returns how many
 * connections were still busy (then nothing may be freed). */
static unsigned server_stop(struct server *s)
{
	struct timespec until;
	close(s->listen_fd);
	s->listen_fd = -1;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += STOP_GRACE_MS / 1000;
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < s->conf->max_connections; i++)
		if (s->conn_fds[i] >= 0)
			shutdown(s->conn_fds[i], SHUT_RD);
	while (s->n_conns > 0)
		if (pthread_cond_timedwait(&s->idle, &s->lock, &until) == ETIMEDOUT)
			break;
	unsigned busy = s->n_conns;
	pthread_mutex_unlock(&s->lock);
	if (busy)
		log_warnx("%u connections still busy after %d ms; stopping anyway", busy,
			  STOP_GRACE_MS);
	s->ops->stop(s->ctx);
	return busy;
}

static void signal_ready(int ready_fd)
{
	if (ready_fd < 0)
		return;
	char byte = 1;
	if (write(ready_fd, &byte, 1) != 1)
		log_warn("telling the supervisor this server is up");
	close(ready_fd);
}

/* Accept connections until SIGTERM or SIGINT arrives on sig_fd. */
static void serve(struct server *s, int sig_fd)
{
	for (;;) {
		struct pollfd pfd[2] = { { .fd = s->listen_fd, .events = POLLIN },
					 { .fd = sig_fd, .events = POLLIN } };
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_warn("poll");
			return;
		}
		if (pfd[1].revents) {
			struct signalfd_siginfo si;
			if (read(sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				log_info("%s: stopping", strsignal((int)si.ssi_signo));
				return;
			}
		}
		if (pfd[0].revents)
			accept_one(s);
	}
}

int server_run(const struct sfs_conf *conf, const struct sfs_server_conf *srv, int ready_fd)
{
	struct server *s = NULL;
	sigset_t mask;
	char err[2048];
	int sig_fd = -1, rc;

	log_set_prefix(srv->name);
	signal(SIGPIPE, SIG_IGN);
	/* Blocked before any thread exists, so every thread inherits it. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	sig_fd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sig_fd < 0) {
		rc = -errno;
		log_warn("signalfd");
		goto out;
	}
	rc = server_new(conf, srv, &s, err, sizeof(err));
	if (rc < 0) {
		log_warnx("cannot start the %s server: %s",
			  srv->role == SFS_ROLE_META ? "metadata" : "I/O", err);
		goto out;
	}
	char addr[160];
	log_info("%s server listening on %s, dir %s", s->ops->kind,
		 sfs_server_address(srv, addr, sizeof(addr)), srv->dir);
	if (ready_fd < 0) /* on its own: tell systemd; under --all the supervisor does */
		service_ready(addr);
	signal_ready(ready_fd);
	ready_fd = -1;
	serve(s, sig_fd);
	service_stopping(NULL);
	if (server_stop(s) == 0)
		server_free(s);
	log_info("stopped");
	rc = 0;
out:
	if (ready_fd >= 0)
		close(ready_fd);
	if (sig_fd >= 0)
		close(sig_fd);
	return rc;
}

/* --- sfsd --all: one process per server -------------------------------- */

struct child {
	const struct sfs_server_conf *srv;
	pid_t pid; /* 0 once reaped */
};

struct supervisor {
	struct child kids[SFS_MAX_IO_SERVERS + 1];
	unsigned n_kids, n_alive, n_ready;
	int stopping, failed;
};

static void forward_signal(struct supervisor *sv, int signo)
{
	for (unsigned i = 0; i < sv->n_kids; i++)
		if (sv->kids[i].pid > 0)
			kill(sv->kids[i].pid, signo);
}

static void describe_status(int status, char *out, size_t outlen)
{
	if (WIFEXITED(status))
		snprintf(out, outlen, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, outlen, "was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(out, outlen, "ended with wait status 0x%x", status);
}

static void reap(struct supervisor *sv)
{
	char how[96];
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *k = NULL;
		for (unsigned i = 0; i < sv->n_kids; i++)
			if (sv->kids[i].pid == pid)
				k = &sv->kids[i];
		if (!k)
			continue;
		k->pid = 0;
		sv->n_alive--;
		describe_status(status, how, sizeof(how));
		int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
		if (sv->stopping && clean) {
			log_debug("server %s (pid %d) stopped", k->srv->name, (int)pid);
			continue;
		}
		sv->failed = 1;
		log_warnx("server %s (pid %d) %s%s", k->srv->name, (int)pid, how,
			  sv->stopping ? "" : " unexpectedly");
		if (!sv->stopping && sv->n_ready < sv->n_kids) {
			log_warnx("a server failed to start: stopping the others");
			sv->stopping = 1;
			forward_signal(sv, SIGTERM);
		}
	}
}

static pid_t spawn(const struct sfs_conf *conf, const struct sfs_server_conf *srv,
		   const int ready_pipe[2], const sigset_t *child_mask)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	close(ready_pipe[0]);
	service_forget(); /* the supervisor is the service; its servers are not */
	/* SIGTERM/SIGINT stay blocked: server_run reads them from its
	 * signalfd, including one that arrived before it got there. */
	sigprocmask(SIG_SETMASK, child_mask, NULL);
	exit(server_run(conf, srv, ready_pipe[1]) == 0 ? 0 : 1);
}

/* Wait for children, forwarding signals and counting start-up bytes. */
static void supervise(struct supervisor *sv, int sig_fd, int ready_fd)
{
	while (sv->n_alive > 0) {
		struct pollfd pfd[2] = { { .fd = sig_fd, .events = POLLIN },
					 { .fd = ready_fd, .events = POLLIN } };
		if (poll(pfd, ready_fd >= 0 ? 2 : 1, -1) < 0) {
			if (errno != EINTR)
				fatal("poll");
			continue;
		}
		if (ready_fd >= 0 && pfd[1].revents) {
			char bytes[64];
			ssize_t n = read(ready_fd, bytes, sizeof(bytes));
			if (n > 0) {
				sv->n_ready += (unsigned)n;
				if (sv->n_ready == sv->n_kids) {
					log_info("all %u servers are running", sv->n_kids);
					service_ready("all servers are running");
				}
			} else if (n == 0) {
				close(ready_fd);
				ready_fd = -1;
			}
		}
		if (!pfd[0].revents)
			continue;
		struct signalfd_siginfo si;
		if (read(sig_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
			continue;
		if (si.ssi_signo == SIGCHLD) {
			reap(sv);
		} else {
			if (!sv->stopping) {
				log_info("%s: stopping all servers", strsignal((int)si.ssi_signo));
				service_stopping(NULL);
			}
			sv->stopping = 1;
			forward_signal(sv, (int)si.ssi_signo);
		}
	}
	if (ready_fd >= 0)
		close(ready_fd);
}

int server_run_all(const struct sfs_conf *conf)
{
	struct supervisor *sv = calloc(1, sizeof(*sv));
	sigset_t mask, old_mask, child_mask;
	int ready_pipe[2] = { -1, -1 }, sig_fd = -1, rc = 1;

	if (!sv)
		fatalx("out of memory");
	log_set_prefix("supervisor");
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	/* Blocked before the first fork: a signal or a child's death that
	 * comes early stays pending until the signalfd reads it. */
	sigprocmask(SIG_BLOCK, &mask, &old_mask);
	child_mask = old_mask;
	sigaddset(&child_mask, SIGTERM);
	sigaddset(&child_mask, SIGINT);
	if (pipe2(ready_pipe, O_CLOEXEC) < 0) {
		log_warn("pipe");
		goto out;
	}
	for (unsigned i = 0; i <= conf->n_io; i++) {
		const struct sfs_server_conf *srv = i == 0 ? &conf->meta : &conf->io[i - 1];
		pid_t pid = spawn(conf, srv, ready_pipe, &child_mask);
		if (pid < 0) {
			log_warn("fork for server %s", srv->name);
			sv->failed = sv->stopping = 1;
			forward_signal(sv, SIGTERM);
			break;
		}
		sv->kids[sv->n_kids++] = (struct child){ .srv = srv, .pid = pid };
		sv->n_alive++;
	}
	close(ready_pipe[1]);
	sig_fd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sig_fd < 0)
		fatal("signalfd"); /* children keep running; nothing sane to do */
	supervise(sv, sig_fd, ready_pipe[0]);
	log_info("%s", sv->failed ? "stopped, some servers failed" : "stopped");
	rc = sv->failed ? 1 : 0;
out:
	if (sig_fd >= 0)
		close(sig_fd);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	free(sv);
	return rc;
}
