/*
 * tcprelay: see tcprelay.h. The child is one poll loop over the control
 * socket, the listeners and both ends of every connection; writes block
 * (loopback, and neither sfs nor ZeroMQ lets a peer stop reading for long),
 * which keeps the relay short.
 */
#include "tcprelay.h"

#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAIRS_MAX 512
#define RELAY_BUF_BYTES (256u << 10)

struct pair {
	int down;    /* the client's connection to us */
	int up;      /* ours to the server; -1 once stale */
};

static int listen_loopback(unsigned *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

static int connect_loopback(unsigned port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void pair_close(struct pair *p)
{
	if (p->up >= 0)
		close(p->up);
	close(p->down);
	p->down = p->up = -1;
}

/* Stale: the server's side goes, the client's stays and hears nothing. */
static unsigned cut_all(struct pair *pairs, unsigned n_pairs)
{
	unsigned n = 0;
	for (unsigned i = 0; i < n_pairs; i++) {
		if (pairs[i].up >= 0) {
			close(pairs[i].up);
			pairs[i].up = -1;
			n++;
		}
	}
	return n;
}

static void accept_one(int lfd, unsigned target, struct pair *pairs, unsigned *n_pairs)
{
	int one = 1;
	int down = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (down < 0)
		return;
	int up = *n_pairs < PAIRS_MAX ? connect_loopback(target) : -1;
	if (up < 0) {
		close(down); /* the server is down: so is its relay */
		return;
	}
	setsockopt(down, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	pairs[(*n_pairs)++] = (struct pair){ .down = down, .up = up };
}

/* One side of p is readable: forward (or swallow, when stale). */
static void relay_side(struct pair *p, int from_client, char *buf)
{
	int from = from_client ? p->down : p->up;
	ssize_t n = recv(from, buf, RELAY_BUF_BYTES, 0);
	if (n < 0 && errno == EINTR)
		return;
	if (n <= 0) {
		pair_close(p);
		return;
	}
	if (from_client && p->up < 0)
		return; /* stale: silence */
	if (send_all(from_client ? p->up : p->down, buf, (size_t)n) < 0)
		pair_close(p);
}

static void __attribute__((noreturn)) relay_main(int ctl, const int *lfds,
						  const unsigned *targets, unsigned n)
{
	static struct pair pairs[PAIRS_MAX];
	static struct pollfd pfd[1 + TCPRELAY_MAX + 2 * PAIRS_MAX];
	static int who[1 + TCPRELAY_MAX + 2 * PAIRS_MAX]; /* pair index * 2 + side */
	char *buf = malloc(RELAY_BUF_BYTES);
	unsigned n_pairs = 0;
	if (!buf)
		_exit(2);
	for (;;) {
		unsigned k = 0;
		pfd[k++] = (struct pollfd){ .fd = ctl, .events = POLLIN };
		for (unsigned i = 0; i < n; i++)
			pfd[k++] = (struct pollfd){ .fd = lfds[i], .events = POLLIN };
		unsigned fixed = k;
		for (unsigned i = 0; i < n_pairs; i++) {
			who[k] = (int)i * 2 + 1;
			pfd[k++] = (struct pollfd){ .fd = pairs[i].down, .events = POLLIN };
			if (pairs[i].up >= 0) {
				who[k] = (int)i * 2;
				pfd[k++] = (struct pollfd){ .fd = pairs[i].up, .events = POLLIN };
			}
		}
		if (poll(pfd, k, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(2);
		}
		if (pfd[0].revents) {
			char cmd;
			if (read(ctl, &cmd, 1) != 1)
				_exit(0); /* the test is gone */
			uint32_t cut = cut_all(pairs, n_pairs);
			if (write(ctl, &cut, sizeof(cut)) != sizeof(cut))
				_exit(2);
			continue; /* the poll set names closed fds now */
		}
		for (unsigned j = fixed; j < k; j++) {
			struct pair *p = &pairs[who[j] / 2];
			int from_client = who[j] & 1;
			/* skip a side closed earlier in this round */
			if (pfd[j].revents && p->down >= 0 &&
			    pfd[j].fd == (from_client ? p->down : p->up))
				relay_side(p, from_client, buf);
		}
		for (unsigned i = 0; i < n; i++)
			if (pfd[1 + i].revents)
				accept_one(lfds[i], targets[i], pairs, &n_pairs);
		/* compact: closed pairs leave */
		unsigned live = 0;
		for (unsigned i = 0; i < n_pairs; i++)
			if (pairs[i].down >= 0)
				pairs[live++] = pairs[i];
		n_pairs = live;
	}
}

void tcprelay_start(struct tcprelay *r, const unsigned *target_ports, unsigned n)
{
	int lfds[TCPRELAY_MAX], sv[2];
	memset(r, 0, sizeof(*r));
	r->ctl_fd = -1;
	cr_assert(n <= TCPRELAY_MAX);
	r->n = n;
	for (unsigned i = 0; i < n; i++) {
		r->targets[i] = target_ports[i];
		lfds[i] = listen_loopback(&r->ports[i]);
		cr_assert_geq(lfds[i], 0, "relay: cannot listen: %s", strerror(errno));
	}
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid_t parent = getpid();
	r->pid = fork();
	cr_assert(r->pid >= 0);
	if (r->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		close(sv[0]);
		relay_main(sv[1], lfds, r->targets, n);
	}
	close(sv[1]);
	for (unsigned i = 0; i < n; i++)
		close(lfds[i]); /* the child's now: writers forked later must not hold them */
	r->ctl_fd = sv[0];
}

unsigned tcprelay_cut(struct tcprelay *r)
{
	uint32_t cut = 0;
	struct timeval tv = { .tv_sec = 10 };
	setsockopt(r->ctl_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(write(r->ctl_fd, "c", 1), 1, "relay: %s", strerror(errno));
	cr_assert_eq(read(r->ctl_fd, &cut, sizeof(cut)), (ssize_t)sizeof(cut),
		     "relay did not answer within 10 s");
	return cut;
}

void tcprelay_stop(struct tcprelay *r)
{
	if (r->pid <= 0)
		return; /* never started (zeroed), or stopped */
	close(r->ctl_fd);
	r->ctl_fd = -1;
	kill(r->pid, SIGKILL);
	waitpid(r->pid, NULL, 0);
	r->pid = 0;
}
