/*
 * net: see net.h. Sockets stay blocking; sends and receives use
 * MSG_DONTWAIT after poll so one code path serves both kinds of caller.
 *
 * net_poll spins before it sleeps. Waking a thread that sleeps on an idle
 * CPU is slow: the CPU has halted, and under a hypervisor waking it again
 * costs tens of microseconds (a 32-byte TCP round trip on loopback takes
 * ~65 us between two sleeping threads on our 2-CPU VMs, ~9 us between two
 * spinning ones). Small requests wait for little else, so for a wait that
 * is usually short we poll without sleeping first, yielding the CPU
 * between polls so that whoever has work (often the very server we wait
 * for, woken onto this CPU) runs before us.
 *
 * Spinning pays only when the peer has an idle CPU to run on: on a busy
 * machine the spinner takes the CPU the peer needs (measured next to a
 * busy loop: 64 KiB reads 1.5x slower spinning than sleeping). So each
 * waiter keeps the smoothed length of its waits both ways, takes the
 * shorter, and tries the other every NET_SPIN_PROBE_MS. Waits that are
 * long anyway (above NET_SPIN_MAX_US: an idle connection, a disk, a slow
 * network) sleep at once, and one thread of a process spins at a time,
 * which is all it takes to keep a CPU awake.
 */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

#define IOV_BATCH 1024 /* at most IOV_MAX per sendmsg */
#define NET_SPIN_MAX_US 300  /* longer waits sleep at once */
#define NET_SPINNERS_MAX 1   /* threads of a process spinning at once */
#define NET_SPIN_PROBE_MS 20   /* try the way not taken this often, */
#define NET_SPIN_PROBE_WAITS 8 /* for this many waits */

static int spinners; /* threads in spin_poll now */

int net_listen(const char *host, uint16_t port, int backlog, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char portstr[8];
	int fd = -1, rc;

	snprintf(portstr, sizeof(portstr), "%u", port);
	rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "address %s:%u: %s", host, port, gai_strerror(rc));
		return -EINVAL;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto out;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
		rc = -errno;
		snprintf(err, errlen, "listen on %s:%u: %s", host, port, strerror(errno));
		close(fd);
		goto out;
	}
	rc = fd;
out:
	freeaddrinfo(res);
	return rc;
}

/* One connect attempt to one address, bounded by the deadline. */
static int connect_one(const struct addrinfo *ai, uint64_t deadline_ms)
{
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		rc = errno == EINPROGRESS ? net_wait(fd, POLLOUT, deadline_ms) : -errno;
		if (rc == 0) {
			int soerr = 0;
			socklen_t len = sizeof(soerr);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
				soerr = errno;
			rc = -soerr;
		}
	}
	if (rc < 0) {
		close(fd);
		return rc;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

int net_connect(const char *host, uint16_t port, uint32_t timeout_ms)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char portstr[8];
	int rc = -EHOSTUNREACH;

	snprintf(portstr, sizeof(portstr), "%u", port);
	if (getaddrinfo(host, portstr, &hints, &res) != 0)
		return -EHOSTUNREACH;
	/* Every address the name has ("localhost": ::1, then 127.0.0.1), all
	 * within the one timeout; the last failure is the answer. */
	uint64_t deadline_ms = now_ms() + timeout_ms;
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		rc = connect_one(ai, deadline_ms);
		if (rc >= 0 || rc == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	return rc;
}

void net_tune(int fd, uint32_t sndbuf_bytes, uint32_t rcvbuf_bytes, int nodelay)
{
	int v;
	if (sndbuf_bytes) {
		v = (int)sndbuf_bytes;
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	}
	if (rcvbuf_bytes) {
		v = (int)rcvbuf_bytes;
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	}
	v = nodelay ? 1 : 0;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v));
}

int net_wait(int fd, short events, uint64_t deadline_ms)
{
	for (;;) {
		int timeout = -1;
		if (deadline_ms) {
			uint64_t now = now_ms();
			if (now >= deadline_ms)
				return -ETIMEDOUT;
			timeout = (int)(deadline_ms - now);
		}
		struct pollfd pfd = { .fd = fd, .events = events };
		int n = poll(&pfd, 1, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ETIMEDOUT;
		return 0; /* readable, writable, or an error the next call reports */
	}
}

/*
 * poll without sleeping, yielding between polls, until something is ready
 * or NET_SPIN_MAX_US have passed. A yield that outlasts a whole spin means
 * other threads hold this CPU for long stretches (next to a busy loop a
 * yield takes ~1.4 ms): then sleep, so that a wake-up can preempt them.
 */
static int spin_poll(struct pollfd *pfd, nfds_t n, uint64_t start_ns)
{
	uint64_t now = start_ns, before;
	int ready;
	do {
		ready = poll(pfd, n, 0);
		if (ready != 0)
			break;
		before = now;
		sched_yield();
		now = now_ns();
	} while (now - start_ns < NET_SPIN_MAX_US * 1000ull &&
		 now - before < NET_SPIN_MAX_US * 1000ull);
	return ready;
}

/* Which way this wait goes: the one whose waits have been shorter, and
 * now and then the other one for a few waits, so that its average stays
 * current (a call's waits differ: one for a reply, a short one for the
 * rest of its data; a single sample would mislead). Waits that are long
 * even asleep, wake-up included, gain nothing from a spin. */
static int want_spin(struct net_spin *spin, int timeout_ms, uint64_t now)
{
	if (timeout_ms == 0 || spin->slept_avg_us >= NET_SPIN_MAX_US)
		return 0;
	int spin_pays = spin->spun_avg_us <= spin->slept_avg_us;
	if (spin->probe_left == 0 && now >= spin->next_probe_ns) {
		spin->probe_left = NET_SPIN_PROBE_WAITS;
		spin->next_probe_ns = now + NET_SPIN_PROBE_MS * 1000000ull;
	}
	if (spin->probe_left == 0)
		return spin_pays;
	spin->probe_left--;
	return !spin_pays;
}

/* Smoothed over 8 waits; a long one counts as a few times the spin limit,
 * so that after a pause (a barrier, a think time) it is soon forgotten. */
static void wait_note(uint32_t *avg_us, uint64_t waited_ns)
{
	uint64_t waited_us = waited_ns / 1000;
	if (waited_us > 4 * NET_SPIN_MAX_US)
		waited_us = 4 * NET_SPIN_MAX_US;
	*avg_us = (uint32_t)((*avg_us * 7ull + waited_us) / 8);
}

int net_poll(struct pollfd *pfd, nfds_t n, int timeout_ms, struct net_spin *spin)
{
	uint64_t start_ns = now_ns();
	int ready = 0, spun = 0;
	if (!spin)
		return poll(pfd, n, timeout_ms);
	if (want_spin(spin, timeout_ms, start_ns)) {
		spun = __atomic_fetch_add(&spinners, 1, __ATOMIC_RELAXED) < NET_SPINNERS_MAX;
		if (spun)
			ready = spin_poll(pfd, n, start_ns);
		__atomic_fetch_sub(&spinners, 1, __ATOMIC_RELAXED);
	}
	if (ready == 0)
		ready = poll(pfd, n, timeout_ms);
	int saved_errno = errno;
	wait_note(spun ? &spin->spun_avg_us : &spin->slept_avg_us, now_ns() - start_ns);
	errno = saved_errno;
	return ready;
}

struct iovec *iov_advance(struct iovec *iov, int *iovcnt, size_t n)
{
	while (*iovcnt > 0 && n >= iov->iov_len) {
		n -= iov->iov_len;
		iov++;
		(*iovcnt)--;
	}
	if (*iovcnt > 0 && n) {
		iov->iov_base = (char *)iov->iov_base + n;
		iov->iov_len -= n;
	}
	return iov;
}

int net_sendv_flags(int fd, struct iovec *iov, int iovcnt, int flags, uint64_t deadline_ms)
{
	while (iovcnt > 0) {
		if (iov->iov_len == 0) {
			iov++;
			iovcnt--;
			continue;
		}
		struct msghdr msg = { .msg_iov = iov,
				      .msg_iovlen = (size_t)(iovcnt > IOV_BATCH ? IOV_BATCH : iovcnt) };
		ssize_t n = sendmsg(fd, &msg, flags | MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			int rc = net_wait(fd, POLLOUT, deadline_ms);
			if (rc < 0)
				return rc;
			continue;
		}
		iov = iov_advance(iov, &iovcnt, (size_t)n);
	}
	return 0;
}

int net_sendv_all(int fd, struct iovec *iov, int iovcnt, uint64_t deadline_ms)
{
	return net_sendv_flags(fd, iov, iovcnt, 0, deadline_ms);
}

int net_send_flags(int fd, const void *buf, size_t len, int flags, uint64_t deadline_ms)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	return net_sendv_flags(fd, &iov, 1, flags, deadline_ms);
}

int net_send_all(int fd, const void *buf, size_t len, uint64_t deadline_ms)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	return net_sendv_all(fd, &iov, 1, deadline_ms);
}

int net_recvv_all(int fd, struct iovec *iov, int iovcnt, uint64_t deadline_ms)
{
	while (iovcnt > 0) {
		if (iov->iov_len == 0) {
			iov++;
			iovcnt--;
			continue;
		}
		struct msghdr msg = { .msg_iov = iov,
				      .msg_iovlen = (size_t)(iovcnt > IOV_BATCH ? IOV_BATCH : iovcnt) };
		ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			int rc = net_wait(fd, POLLIN, deadline_ms);
			if (rc < 0)
				return rc;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		iov = iov_advance(iov, &iovcnt, (size_t)n);
	}
	return 0;
}

int net_recv_all(int fd, void *buf, size_t len, uint64_t deadline_ms)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	return net_recvv_all(fd, &iov, 1, deadline_ms);
}

int net_discard(int fd, size_t len, uint64_t deadline_ms)
{
	char sink[16384];
	while (len > 0) {
		size_t n = len < sizeof(sink) ? len : sizeof(sink);
		int rc = net_recv_all(fd, sink, n, deadline_ms);
		if (rc < 0)
			return rc;
		len -= n;
	}
	return 0;
}

int net_parse_hostport(const char *text, char *host, size_t hostlen, uint16_t *port,
		       char *err, size_t errlen)
{
	const char *colon, *host_start = text;
	size_t host_len;
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (!close || close[1] != ':')
			goto bad;
		host_start = text + 1;
		host_len = (size_t)(close - host_start);
		colon = close + 1;
	} else {
		colon = strrchr(text, ':');
		if (!colon)
			goto bad;
		host_len = (size_t)(colon - text);
	}
	uint64_t value;
	if (host_len == 0 || host_len >= hostlen || parse_u64(colon + 1, 1, 65535, &value) < 0)
		goto bad;
	memcpy(host, host_start, host_len);
	host[host_len] = '\0';
	*port = (uint16_t)value;
	return 0;
bad:
	snprintf(err, errlen, "address \"%s\": expected HOST:PORT, e.g. 127.0.0.1:9464 or "
		 "[::1]:9464", text);
	return -EINVAL;
}
