/*
 * ctl: libsfs's control point (see ctl.h for what it promises).
 *
 * The gate is a Dekker pair of atomics: a caller increments inflight, then
 * loads closed; the control thread stores closed, then reads inflight, both
 * sequentially consistent, so either the caller sees the gate closed and
 * backs out, or the control thread counts it and waits for it. Blocking
 * and waking happen under one mutex with two condvars, only ever on the
 * slow path.
 *
 * The control thread owns the agent socket. It pushes the process's
 * counters every second, serves quiesce and resume, and while it drains it
 * keeps reading the socket, so an agent that gives up (resume) or dies
 * (EOF) opens the gate without waiting for a slow request. After losing the
 * agent it tries to register again every second, so a restarted agent
 * finds the clients that were running. A library does not log: what went
 * wrong reaches the agent in the quiesced reply.
 *
 * A resume with "reconnect" (after a restore from a checkpoint: the
 * kernel's TCP state is from the cut, the servers' is not) closes every
 * server connection before the gate opens, while nothing can be in flight,
 * so the first request of every thread connects afresh instead of hanging
 * on a connection the server no longer knows. Losing the agent while held
 * does the same: nobody is left to say whether the guest was restored, and
 * a fresh connection costs a handshake where a stale one costs a timeout.
 */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent_proto.h"
#include "client_internal.h"
#include "util.h"

#define STATS_INTERVAL_MS 1000
#define RECONNECT_INTERVAL_MS 1000
#define DRAIN_SLICE_MS 5        /* how often a drain looks at the socket */
#define SEND_TIMEOUT_MS 1000    /* an agent that takes no line for this long is gone */
#define TOUCHED_MAX 1024        /* more written files: sync every datafile */

struct touched {
	uint64_t fid;
	struct sfs_layout layout;
};

struct ctl {
	struct sfs *fs;
	/* the gate: atomics */
	int closed;
	int inflight;
	/* counters: atomics */
	uint64_t read_bytes, write_bytes, requests;
	uint64_t drained_requests, drained_bytes; /* since the gate closed */

	pthread_mutex_t lock;  /* slow path of the gate; the touched list */
	pthread_cond_t opened; /* the gate opened */
	pthread_cond_t idle;   /* inflight fell to 0 while closed */
	unsigned epoch;        /* quiesce epoch of the touched list (>= 1) */
	struct touched *touched;
	size_t n_touched, cap_touched;
	int sync_all;          /* too many files to list: DF_SYNC handle 0 */

	char path[108];
	char comm[AGENT_COMM_MAX];
	int sock;              /* -1 while the agent is gone */
	int wake_fd;           /* eventfd: ctl_stop */
	pthread_t thread;
	char rbuf[AGENT_LINE_MAX];
	size_t rlen;
	/* while draining: what the socket said */
	int drain_abort;       /* 1 resume came, 2 the agent went away */
	uint64_t drain_resume_id;
	int drain_resume_reconnect;
};

/* --- the gate --- */

void ctl_enter(struct ctl *c)
{
	__atomic_add_fetch(&c->inflight, 1, __ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&c->closed, __ATOMIC_SEQ_CST))
		return;
	/* Closed: back out, wait for the gate, and come in under the lock
	 * (closing also takes the lock, so the gate cannot close between
	 * our check and our increment). */
	pthread_mutex_lock(&c->lock);
	if (__atomic_sub_fetch(&c->inflight, 1, __ATOMIC_SEQ_CST) == 0)
		pthread_cond_broadcast(&c->idle);
	while (__atomic_load_n(&c->closed, __ATOMIC_SEQ_CST))
		pthread_cond_wait(&c->opened, &c->lock);
	__atomic_add_fetch(&c->inflight, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&c->lock);
}

void ctl_leave(struct ctl *c)
{
	int closed = __atomic_load_n(&c->closed, __ATOMIC_SEQ_CST);
	if (closed)
		__atomic_add_fetch(&c->drained_requests, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&c->requests, 1, __ATOMIC_RELAXED);
	if (__atomic_sub_fetch(&c->inflight, 1, __ATOMIC_SEQ_CST) == 0 &&
	    __atomic_load_n(&c->closed, __ATOMIC_SEQ_CST)) {
		pthread_mutex_lock(&c->lock);
		pthread_cond_broadcast(&c->idle);
		pthread_mutex_unlock(&c->lock);
	}
}

void ctl_count(struct ctl *c, int write, uint64_t bytes)
{
	__atomic_add_fetch(write ? &c->write_bytes : &c->read_bytes, bytes, __ATOMIC_RELAXED);
	if (__atomic_load_n(&c->closed, __ATOMIC_RELAXED))
		__atomic_add_fetch(&c->drained_bytes, bytes, __ATOMIC_RELAXED);
}

void ctl_touch(struct ctl *c, uint64_t fid, const struct sfs_layout *l, unsigned *epoch)
{
	/* The epoch only changes while the gate is closed and nobody is in
	 * flight, and our caller is in flight: a relaxed load is exact. */
	if (epoch && __atomic_load_n(epoch, __ATOMIC_RELAXED) ==
			     __atomic_load_n(&c->epoch, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&c->lock);
	size_t i = 0;
	while (i < c->n_touched && c->touched[i].fid != fid)
		i++;
	if (i == c->n_touched && !c->sync_all) {
		if (c->n_touched == TOUCHED_MAX || GROW(c->touched, c->cap_touched, i + 1) < 0)
			c->sync_all = 1;
		else
			c->touched[c->n_touched++] = (struct touched){ .fid = fid, .layout = *l };
	}
	if (epoch)
		__atomic_store_n(epoch, c->epoch, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&c->lock);
}

static void gate_close(struct ctl *c)
{
	pthread_mutex_lock(&c->lock);
	__atomic_store_n(&c->drained_requests, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&c->drained_bytes, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&c->closed, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&c->lock);
}

static void gate_open(struct ctl *c)
{
	pthread_mutex_lock(&c->lock);
	__atomic_store_n(&c->closed, 0, __ATOMIC_SEQ_CST);
	pthread_cond_broadcast(&c->opened);
	pthread_mutex_unlock(&c->lock);
}

/* Open the gate; first, when asked, close every server connection (see
 * the top of the file) so that no held caller goes on over a stale one. */
static void gate_open_reconnect(struct ctl *c, int reconnect)
{
	if (reconnect)
		client_drop_connections(c->fs);
	gate_open(c);
}

/* --- the agent socket --- */

static int agent_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	/* Non-blocking: an agent with a full backlog must not stall sfs_connect. */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

static void agent_lost(struct ctl *c)
{
	if (c->sock >= 0)
		close(c->sock);
	c->sock = -1;
	c->rlen = 0;
	if (__atomic_load_n(&c->closed, __ATOMIC_SEQ_CST))
		gate_open_reconnect(c, 1);
}

/* Send one message; the agent is dropped when it cannot take it. */
static int send_msg(struct ctl *c, const struct agent_local_msg *m)
{
	char line[AGENT_LINE_MAX + 1];
	int len = agent_local_format(m, line, sizeof(line));
	if (len < 0 || c->sock < 0)
		return len < 0 ? len : -ENOTCONN;
	uint64_t deadline_ms = now_ms() + SEND_TIMEOUT_MS;
	for (size_t off = 0; off < (size_t)len;) {
		ssize_t n = send(c->sock, line + off, (size_t)len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		uint64_t now = now_ms();
		if (n < 0 && (errno == EAGAIN || errno == EINTR) && now < deadline_ms) {
			struct pollfd pfd = { .fd = c->sock, .events = POLLOUT };
			poll(&pfd, 1, (int)(deadline_ms - now));
			continue;
		}
		agent_lost(c);
		return -EPIPE;
	}
	return 0;
}

static void send_stats(struct ctl *c);

/* Register, then the counters at once: the agent's baseline for rates. */
static int send_register(struct ctl *c)
{
	struct agent_local_msg m = { .type = AGENT_LOCAL_REGISTER, .pid = getpid() };
	snprintf(m.comm, sizeof(m.comm), "%s", c->comm);
	int rc = send_msg(c, &m);
	if (rc == 0)
		send_stats(c);
	return c->sock < 0 ? -EPIPE : rc;
}

static void send_stats(struct ctl *c)
{
	struct agent_local_msg m = {
		.type = AGENT_LOCAL_STATS,
		.read_bytes = __atomic_load_n(&c->read_bytes, __ATOMIC_RELAXED),
		.write_bytes = __atomic_load_n(&c->write_bytes, __ATOMIC_RELAXED),
		.requests = __atomic_load_n(&c->requests, __ATOMIC_RELAXED),
	};
	int inflight = __atomic_load_n(&c->inflight, __ATOMIC_RELAXED);
	m.inflight = inflight > 0 ? (uint64_t)inflight : 0;
	send_msg(c, &m);
}

static void send_simple(struct ctl *c, enum agent_local_type type, uint64_t id,
			const char *error)
{
	struct agent_local_msg m = { .type = type, .id = id };
	if (error)
		snprintf(m.error, sizeof(m.error), "%.255s", error);
	send_msg(c, &m);
}

/* Read what the socket has. 0, or -1 when the agent is gone. */
static int read_some(struct ctl *c)
{
	if (c->rlen == sizeof(c->rbuf)) /* a line longer than the protocol allows */
		return -1;
	ssize_t n = recv(c->sock, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, MSG_DONTWAIT);
	if (n > 0) {
		c->rlen += (size_t)n;
		return 0;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	return -1;
}

/* Next complete line into m (consumed): 1, 0 when none, -1 for a line that
 * is not the protocol (answered with an error, then skipped). */
static int next_line(struct ctl *c, struct agent_local_msg *m)
{
	char err[300];
	char *nl = memchr(c->rbuf, '\n', c->rlen);
	if (!nl)
		return 0;
	size_t len = (size_t)(nl - c->rbuf) + 1;
	int rc = agent_local_parse(c->rbuf, len, m, err, sizeof(err));
	memmove(c->rbuf, c->rbuf + len, c->rlen - len);
	c->rlen -= len;
	if (rc < 0) {
		send_simple(c, AGENT_LOCAL_ERROR, 0, err);
		return -1;
	}
	return 1;
}

/* --- quiesce --- */

/* While draining, only resume (give up) and EOF matter. */
static void drain_poll_socket(struct ctl *c)
{
	struct agent_local_msg m;
	int rc;
	if (read_some(c) < 0) {
		c->drain_abort = 2;
		return;
	}
	while (!c->drain_abort && (rc = next_line(c, &m)) != 0) {
		if (rc > 0 && m.type == AGENT_LOCAL_RESUME) {
			c->drain_abort = 1;
			c->drain_resume_id = m.id;
			c->drain_resume_reconnect = m.reconnect;
		}
	}
}

/* Wait until nothing is in flight. 0, or -ECANCELED when the agent gave
 * up or went away meanwhile (c->drain_abort says which). */
static int drain(struct ctl *c)
{
	c->drain_abort = 0;
	c->drain_resume_reconnect = 0;
	for (;;) {
		pthread_mutex_lock(&c->lock);
		if (__atomic_load_n(&c->inflight, __ATOMIC_SEQ_CST) > 0) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += DRAIN_SLICE_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&c->idle, &c->lock, &ts);
		}
		int busy = __atomic_load_n(&c->inflight, __ATOMIC_SEQ_CST) > 0;
		pthread_mutex_unlock(&c->lock);
		if (!busy)
			return 0;
		struct pollfd pfd = { .fd = c->sock, .events = POLLIN };
		if (poll(&pfd, 1, 0) > 0)
			drain_poll_socket(c);
		if (c->drain_abort)
			return -ECANCELED;
	}
}

/* DF_SYNC every file written since the last quiesce. Returns 0 or the
 * first failure (err), *n_requests the sync requests sent. */
static int sync_touched(struct ctl *c, uint64_t *n_requests, char *err, size_t errlen)
{
	struct sfs *fs = c->fs;
	pthread_mutex_lock(&c->lock);
	struct touched *list = c->touched;
	size_t n = c->n_touched;
	int all = c->sync_all;
	c->touched = NULL;
	c->n_touched = c->cap_touched = 0;
	c->sync_all = 0;
	__atomic_store_n(&c->epoch, c->epoch + 1 ? c->epoch + 1 : 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&c->lock);

	int rc = 0;
	*n_requests = 0;
	if (!n && !all)
		goto out;
	struct chan *ch = client_chan_get_ungated(fs);
	if (!ch) {
		snprintf(err, errlen, "out of memory for a channel");
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; !all && i < n; i++) {
		char why[CLIENT_ERR_BYTES / 2];
		int r = data_sync(fs, ch, list[i].fid, &list[i].layout, why, sizeof(why));
		*n_requests += list[i].layout.stripe_count;
		/* A file removed since it was written has nothing left to keep. */
		if (r < 0 && r != -ENOENT && rc == 0) {
			rc = r;
			snprintf(err, errlen, "syncing file 0x%llx: %.200s",
				 (unsigned long long)list[i].fid, why);
		}
	}
	if (all) {
		rc = data_sync_all(fs, ch, err, errlen);
		*n_requests += fs->conf->n_io;
	}
	client_chan_put_ungated(fs, ch);
out:
	if (rc < 0) { /* not durable yet: the next quiesce syncs everything */
		pthread_mutex_lock(&c->lock);
		c->sync_all = 1;
		pthread_mutex_unlock(&c->lock);
	}
	free(list);
	return rc;
}

static void quiesce(struct ctl *c, uint64_t id)
{
	struct agent_local_msg m = { .type = AGENT_LOCAL_QUIESCED, .id = id, .ok = 1 };
	uint64_t start_ns = now_ns(), n_sync = 0;
	gate_close(c);
	if (drain(c) < 0) {
		/* Calls still in flight keep their channels (and connections);
		 * the idle ones are dropped when a resume asks. */
		gate_open_reconnect(c, c->drain_abort == 1 && c->drain_resume_reconnect);
		if (c->drain_abort == 2)
			agent_lost(c);
		else
			send_simple(c, AGENT_LOCAL_RESUMED, c->drain_resume_id, NULL);
		return;
	}
	int rc = sync_touched(c, &n_sync, m.error, sizeof(m.error));
	m.ok = rc == 0;
	m.drained_requests = __atomic_load_n(&c->drained_requests, __ATOMIC_RELAXED) + n_sync;
	m.drained_bytes = __atomic_load_n(&c->drained_bytes, __ATOMIC_RELAXED);
	m.time_us = (now_ns() - start_ns) / 1000;
	send_msg(c, &m);
}

static void handle(struct ctl *c, const struct agent_local_msg *m)
{
	char err[120];
	switch (m->type) {
	case AGENT_LOCAL_QUIESCE:
		quiesce(c, m->id);
		break;
	case AGENT_LOCAL_RESUME:
		gate_open_reconnect(c, m->reconnect);
		send_simple(c, AGENT_LOCAL_RESUMED, m->id, NULL);
		break;
	case AGENT_LOCAL_ERROR:
		break; /* the agent could not read something we sent: nothing to redo */
	default:
		snprintf(err, sizeof(err), "bad message: type \"%s\" is not for a client",
			 agent_local_type_name(m->type));
		send_simple(c, AGENT_LOCAL_ERROR, 0, err);
		break;
	}
}

/* --- the control thread --- */

static void serve_socket(struct ctl *c)
{
	struct agent_local_msg m;
	int rc;
	if (read_some(c) < 0) {
		agent_lost(c);
		return;
	}
	while (c->sock >= 0 && (rc = next_line(c, &m)) != 0)
		if (rc > 0)
			handle(c, &m);
}

static void *ctl_main(void *arg)
{
	struct ctl *c = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the application's */
	uint64_t next_stats_ms = now_ms() + STATS_INTERVAL_MS, next_retry_ms = 0;
	for (;;) {
		uint64_t now = now_ms();
		if (c->sock < 0 && now >= next_retry_ms) {
			next_retry_ms = now + RECONNECT_INTERVAL_MS;
			c->sock = agent_connect(c->path);
			if (c->sock >= 0 && send_register(c) < 0)
				agent_lost(c);
		}
		if (now >= next_stats_ms) {
			next_stats_ms = now + STATS_INTERVAL_MS;
			if (c->sock >= 0)
				send_stats(c);
		}
		struct pollfd pfd[2] = { { .fd = c->wake_fd, .events = POLLIN },
					 { .fd = c->sock, .events = POLLIN } };
		uint64_t until = next_stats_ms;
		if (c->sock < 0 && next_retry_ms < until)
			until = next_retry_ms;
		now = now_ms();
		int wait_ms = until > now ? (int)(until - now) : 0;
		if (poll(pfd, c->sock >= 0 ? 2 : 1, wait_ms) < 0 && errno != EINTR)
			poll(NULL, 0, 10);
		if (pfd[0].revents)
			break;
		if (c->sock >= 0 && pfd[1].revents)
			serve_socket(c);
	}
	return NULL;
}

static void read_comm(char *out, size_t cap)
{
	snprintf(out, cap, "%s", program_invocation_short_name);
	int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char buf[64];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	snprintf(out, cap, "%.31s", buf);
}

static void ctl_free(struct ctl *c)
{
	if (c->sock >= 0)
		close(c->sock);
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->opened);
	pthread_cond_destroy(&c->idle);
	free(c->touched);
	free(c);
}

struct ctl *ctl_start(struct sfs *fs)
{
	const char *path = agent_socket_path(fs->conf->agent_socket);
	if (!path)
		return NULL;
	int sock = agent_connect(path);
	if (sock < 0)
		return NULL; /* no agent here: the client works as it always did */
	struct ctl *c = calloc(1, sizeof(*c));
	if (!c) {
		close(sock);
		return NULL;
	}
	c->fs = fs;
	c->sock = sock;
	c->epoch = 1;
	snprintf(c->path, sizeof(c->path), "%s", path);
	read_comm(c->comm, sizeof(c->comm));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->opened, NULL);
	pthread_cond_init(&c->idle, NULL);
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->wake_fd < 0 || send_register(c) < 0 ||
	    pthread_create(&c->thread, NULL, ctl_main, c) != 0) {
		ctl_free(c);
		return NULL;
	}
	return c;
}

void ctl_stop(struct ctl *c)
{
	if (!c)
		return;
	uint64_t one = 1;
	if (write(c->wake_fd, &one, sizeof(one)) < 0)
		abort(); /* an eventfd write cannot fail here: our bug */
	pthread_join(c->thread, NULL);
	gate_open(c);
	ctl_free(c);
}
