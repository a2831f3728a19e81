/*
 * net: TCP sockets with deadlines. Every blocking step polls first, so a
 * peer that stops answering costs at most the deadline, never a hang.
 * Deadlines are absolute now_ms() values; 0 means none.
 */
#ifndef MIGD_NET_H
#define MIGD_NET_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Listening socket (SO_REUSEADDR); returns fd or -errno, reason in err. */
int net_listen(const char *host, uint16_t port, int backlog, char *err, size_t errlen);
/* "HOST:PORT" or "[V6]:PORT" into host and port (1-65535): 0, or -EINVAL
 * with a message naming the text in err. */
int net_parse_hostport(const char *text, char *host, size_t hostlen, uint16_t *port,
		       char *err, size_t errlen);
/* Connected socket within timeout_ms (every address of host in turn);
 * returns fd or the connect's -errno: -ECONNREFUSED, -ENETUNREACH,
 * -EHOSTUNREACH (also for a name that does not resolve), -ETIMEDOUT... */
int net_connect(const char *host, uint16_t port, uint32_t timeout_ms);
/* Socket buffers (0 = leave to the kernel) and TCP_NODELAY. */
void net_tune(int fd, uint32_t sndbuf_bytes, uint32_t rcvbuf_bytes, int nodelay);

/* Wait for POLLIN/POLLOUT until the deadline: 0, -ETIMEDOUT or -errno. */
int net_wait(int fd, short events, uint64_t deadline_ms);

/*
 * What a waiter has learnt about its waits: keep one per connection (or per
 * set of connections polled together), zeroed to start.
 */
struct net_spin {
	uint32_t spun_avg_us;   /* smoothed length of waits that spun first */
	uint32_t slept_avg_us;  /* ... and of those that slept at once */
	uint64_t next_probe_ns; /* when to wait the other way again */
	unsigned probe_left;    /* waits still to go the other way */
};
/*
 * poll(2), but a wait that is usually short is first spent polling without
 * sleeping (see net.c for why and when). Same result as poll; timeout_ms
 * may be overrun by the spin (NET_SPIN_MAX_US). spin NULL: never spin.
 */
int net_poll(struct pollfd *pfd, nfds_t n, int timeout_ms, struct net_spin *spin);
/* Send all of iov (modified as it goes). 0 or -errno (-EPIPE, -ETIMEDOUT...). */
int net_sendv_all(int fd, struct iovec *iov, int iovcnt, uint64_t deadline_ms);
int net_send_all(int fd, const void *buf, size_t len, uint64_t deadline_ms);
/* The same with extra send(2) flags (MSG_MORE: more of this frame follows). */
int net_sendv_flags(int fd, struct iovec *iov, int iovcnt, int flags, uint64_t deadline_ms);
int net_send_flags(int fd, const void *buf, size_t len, int flags, uint64_t deadline_ms);
/* Receive exactly the bytes of iov. A peer that closes gives -ECONNRESET. */
int net_recvv_all(int fd, struct iovec *iov, int iovcnt, uint64_t deadline_ms);
int net_recv_all(int fd, void *buf, size_t len, uint64_t deadline_ms);
/* Read and drop len bytes. */
int net_discard(int fd, size_t len, uint64_t deadline_ms);

/* Advance an iovec array past n bytes; returns the new start. */
struct iovec *iov_advance(struct iovec *iov, int *iovcnt, size_t n);

#endif
