/*
 * fsfixture: a real sfs file system for integration tests: sfsd processes
 * (one per server, started with -n so a test can kill or stop any one of
 * them) on loopback ports, data in a temporary directory. Children carry
 * PR_SET_PDEATHSIG, so they die with the test process even when it crashes;
 * fsfix_stop() also removes the directory.
 */
#ifndef TESTS_FSFIXTURE_H
#define TESTS_FSFIXTURE_H

#include <stdint.h>
#include <sys/types.h>

#include "sfs_cap.h"

#define FSFIX_MAX 16

struct fsfix {
	char dir[256];       /* temporary directory, holds data and logs */
	char conf[300];      /* sfs.conf path */
	unsigned n_io;
	unsigned base_port;
	pid_t pids[FSFIX_MAX]; /* [0] metadata server, [1..n_io] I/O servers */
};

/* Start a file system of n_io I/O servers; extra_global: lines added to
 * [global] (e.g. "timeout_ms = 2000\n"), or NULL. Asserts on failure. */
void fsfix_start(struct fsfix *fx, unsigned n_io, const char *extra_global);
/* Start (or restart) server i: 0 = meta, 1.. = io0... Waits until it answers. */
void fsfix_start_server(struct fsfix *fx, unsigned i);
/* Send sig to server i and, for SIGKILL/SIGTERM, reap it; returns the wait status. */
int fsfix_signal(struct fsfix *fx, unsigned i, int sig);
/* Stop everything (SIGTERM, so sanitized servers run their exit checks)
 * and remove the directory; returns the number of sanitizer reports found
 * in the server logs (printed to stderr). Safe to call twice. */
int fsfix_stop(struct fsfix *fx);
/* fsfix_stop, asserting no sanitizer reports. Call it at the end of a test
 * body: Criterion does not count a failure in a .fini. */
void fsfix_finish(struct fsfix *fx);
/* Path of a built program: the environment variable var (set by meson). */
const char *fsfix_program(const char *var);
/* Server i's log file path. */
void fsfix_log_path(const struct fsfix *fx, unsigned i, char *buf, size_t len);
/* 1 if server i's log contains needle. */
int fsfix_log_contains(const struct fsfix *fx, unsigned i, const char *needle);
/* A capability signed with the file system's key (what the metadata server
 * would issue), encoded for a raw frame: handle, rights (SFS_CAP_*), valid
 * for valid_ms from now (negative: expired that long ago). */
void fsfix_cap(const struct fsfix *fx, uint64_t handle, unsigned rights, int64_t valid_ms,
	       uint8_t out[SFS_CAP_BYTES]);
/* Connected TCP socket to server i (raw frames). */
int fsfix_connect(const struct fsfix *fx, unsigned i);

#endif
