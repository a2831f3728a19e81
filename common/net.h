/*
 * net: TCP sockets with deadlines. Every blocking step polls first, so a
 * peer that stops answering costs at most the deadline, never a hang.
 * Deadlines are absolute now_ms() values; 0 means none.
 */
#ifndef MIGD_NET_H
#define MIGD_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Listening socket (SO_REUSEADDR); returns fd or -errno, reason in err. */
int net_listen(const char *host, uint16_t port, int backlog, char *err, size_t errlen);
/* Connected socket within timeout_ms (every address of host in turn);
 * returns fd or the connect's -errno: -ECONNREFUSED, -ENETUNREACH,
 * -EHOSTUNREACH (also for a name that does not resolve), -ETIMEDOUT... */
int net_connect(const char *host, uint16_t port, uint32_t timeout_ms);
/* Socket buffers (0 = leave to the kernel) and TCP_NODELAY. */
void net_tune(int fd, uint32_t sndbuf_bytes, uint32_t rcvbuf_bytes, int nodelay);

/* Wait for POLLIN/POLLOUT until the deadline: 0, -ETIMEDOUT or -errno. */
int net_wait(int fd, short events, uint64_t deadline_ms);
/* Send all of iov (modified as it goes). 0 or -errno (-EPIPE, -ETIMEDOUT...). */
int net_sendv_all(int fd, struct iovec *iov, int iovcnt, uint64_t deadline_ms);
int net_send_all(int fd, const void *buf, size_t len, uint64_t deadline_ms);
/* Receive exactly the bytes of iov. A peer that closes gives -ECONNRESET. */
int net_recvv_all(int fd, struct iovec *iov, int iovcnt, uint64_t deadline_ms);
int net_recv_all(int fd, void *buf, size_t len, uint64_t deadline_ms);
/* Read and drop len bytes. */
int net_discard(int fd, size_t len, uint64_t deadline_ms);

/* Advance an iovec array past n bytes; returns the new start. */
struct iovec *iov_advance(struct iovec *iov, int *iovcnt, size_t n);

#endif
