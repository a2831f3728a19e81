/*
 * tcprelay: a TCP relay process for integration tests that can make every
 * connection through it stale, the way a guest restored from a checkpoint
 * finds its connections: the client's end still open and looking idle, the
 * server's end gone, and whatever the client sends answered by silence
 * (the real server drops segments whose sequence numbers are from the
 * past; the client drops the server's ACKs). Nothing here is a mock: the
 * client under test talks TCP to the relay, the relay to the real server.
 *
 * One listening port per target; a forked child (PR_SET_PDEATHSIG, so it
 * dies with the test) relays bytes both ways. A server closing its side
 * closes the client's, as it would without the relay.
 */
#ifndef TESTS_TCPRELAY_H
#define TESTS_TCPRELAY_H

#include <sys/types.h>

#define TCPRELAY_MAX 16

struct tcprelay {
	pid_t pid;
	int ctl_fd;                      /* socketpair to the child */
	unsigned n;
	unsigned ports[TCPRELAY_MAX];    /* where clients connect, 127.0.0.1 */
	unsigned targets[TCPRELAY_MAX];  /* where the relay connects, 127.0.0.1 */
};

/* Listen on a free port for each of n targets and start relaying.
 * Asserts on failure. */
void tcprelay_start(struct tcprelay *r, const unsigned *target_ports, unsigned n);
/* Make every connection open now stale: its server side is closed, its
 * client side stays open and swallows what it is sent. New connections
 * relay as before. Returns how many connections went stale. */
unsigned tcprelay_cut(struct tcprelay *r);
/* Stop the relay and close everything. Safe to call twice, and on a
 * zeroed struct (never started). */
void tcprelay_stop(struct tcprelay *r);

#endif
