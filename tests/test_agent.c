/*
 * migagent end to end on loopback: real sfsd servers, libsfs writer
 * processes that verify every byte afterwards, a real migagent, and a
 * stand-in for migd's side (qload's ROUTER: migd's own is written
 * elsewhere). What is proved:
 *  - a quiesce under load holds every writer and drains what was in flight:
 *    the servers' request counters (STATS) do not move between the quiesce
 *    reply and the resume, and the writers make no progress;
 *  - the agent killed while quiesced, and migd gone (the watchdog), both end
 *    with the writers running again;
 *  - a client that crashes while registered does not hold up a quiesce; one
 *    that hangs costs the deadline, and the others are resumed;
 *  - malformed messages from migd and from clients get errors, and the
 *    agent keeps serving;
 *  - after a restore from a checkpoint (connections whose server side is
 *    gone while the client's still looks idle: tcprelay makes them), a
 *    resume with reconnect, the watchdog's resume and the agent's death
 *    all let the writers go on over fresh connections; a plain resume
 *    does not (the control that shows the stale connections bite);
 *  - ZeroMQ's heartbeat replaces a stale link to migd by itself.
 * Writers must never see an error and must read back what they wrote.
 * Waits are bounded loops; nothing asserts on timing.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "fsfixture.h"
#include "qload.h"
#include "sfs.h"
#include "tcprelay.h"
#include "util.h"

static struct fsfix fx;
static struct qpeer peer;
static struct qload_writers writers;
static pid_t agent_pid;
static char sock_path[100], agent_log[300];

static struct tcprelay relay, migd_relay;
static char relay_conf[300];

static void agent_start_at(const char *endpoint, const char *watchdog);

static void agent_start(const char *watchdog)
{
	agent_start_at(peer.endpoint, watchdog);
}

static void agent_start_at(const char *endpoint, const char *watchdog)
{
	const char *prog = fsfix_program("MIGAGENT");
	pid_t parent = getpid();
	agent_pid = fork();
	cr_assert(agent_pid >= 0);
	if (agent_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		int fd = open(agent_log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, 2);
		execl(prog, prog, "--migd", endpoint, "--guest", "gtest", "--socket",
		      sock_path, "--watchdog", watchdog, "--debug", (char *)NULL);
		_exit(127);
	}
	json_t *hello = qpeer_recv(&peer, "hello", 10000);
	cr_assert_not_null(hello, "no hello from migagent within 10 s; see %s", agent_log);
	cr_assert_str_eq(json_string_value(json_object_get(hello, "guest")), "gtest");
	json_decref(hello);
}

static void agent_kill(int sig)
{
	if (agent_pid > 0) {
		kill(agent_pid, sig);
		waitpid(agent_pid, NULL, 0);
	}
	agent_pid = 0;
}

/* sfs.conf with every server's address replaced by its relay's. */
static void write_relay_conf(void)
{
	char text[8192], from[32], to[32];
	FILE *f = fopen(fx.conf, "r");
	cr_assert_not_null(f);
	size_t len = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[len] = '\0';
	for (unsigned i = 0; i <= fx.n_io; i++) {
		snprintf(from, sizeof(from), "127.0.0.1:%u\n", fx.base_port + i);
		snprintf(to, sizeof(to), "127.0.0.1:%u\n", relay.ports[i]);
		char *at = strstr(text, from);
		cr_assert_not_null(at, "no %s in %s", from, fx.conf);
		cr_assert_eq(strlen(from), strlen(to)); /* both 5-digit ports */
		memcpy(at, to, strlen(to));
	}
	snprintf(relay_conf, sizeof(relay_conf), "%s/sfs-relay.conf", fx.dir);
	f = fopen(relay_conf, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(text, 1, len, f), len);
	fclose(f);
}

/*
 * The servers, the agent and writers; with relayed set, the writers reach
 * every server through tcprelay (so a test can make their connections
 * stale) and give up on a silent server after 3 s, not 20.
 */
static void setup_with(unsigned n_writers, size_t transfer_bytes, const char *watchdog,
		       int relayed)
{
	fsfix_start(&fx, 2, relayed ? "timeout_ms = 3000\n" : "timeout_ms = 20000\n");
	if (relayed) {
		unsigned targets[FSFIX_MAX];
		for (unsigned i = 0; i <= fx.n_io; i++)
			targets[i] = fx.base_port + i;
		tcprelay_start(&relay, targets, fx.n_io + 1);
		write_relay_conf();
	}
	snprintf(sock_path, sizeof(sock_path), "%.80s/agent.sock", fx.dir);
	snprintf(agent_log, sizeof(agent_log), "%s/agent.log", fx.dir);
	setenv("SFS_AGENT_SOCKET", sock_path, 1);
	cr_assert_eq(qpeer_open(&peer), 0);
	agent_start(watchdog);
	struct sfs *fs;
	cr_assert_eq(sfs_connect(fx.conf, NULL, &fs), 0, "%s", sfs_last_error());
	cr_assert_eq(sfs_mkdir(fs, "/q", 0755), 0, "%s", sfs_last_error());
	sfs_disconnect(fs);
	struct qload_writer_opts o = { .conf = relayed ? relay_conf : fx.conf, .dir = "/q",
				       .transfer_bytes = transfer_bytes, .blocks = 8 };
	cr_assert_eq(qload_writers_start(&writers, n_writers, &o), 0);
}

static void setup_all(unsigned n_writers, size_t transfer_bytes, const char *watchdog)
{
	setup_with(n_writers, transfer_bytes, watchdog, 0);
}

static void teardown_all(void)
{
	qload_writers_free(&writers);
	agent_kill(SIGKILL);
	qpeer_close(&peer);
	tcprelay_stop(&relay);
	tcprelay_stop(&migd_relay);
	fsfix_stop(&fx);
}

/* Wait (bounded) until the agent reports n registered clients. */
static void wait_clients(unsigned n)
{
	for (int tries = 0; tries < 100; tries++) {
		json_t *act = qpeer_recv(&peer, "activity", 2000);
		size_t have = json_array_size(json_object_get(act, "clients"));
		json_decref(act);
		if (have == n)
			return;
	}
	cr_assert_fail("the agent never reported %u clients", n);
}

/* Wait (bounded, 20 s) until the writers together have made more than
 * `beyond` writes. */
static int wait_writes_beyond(uint64_t beyond)
{
	for (int tries = 0; tries < 2000; tries++) {
		if (qload_writes(&writers) > beyond)
			return 1;
		usleep(10000);
	}
	return 0;
}

static void assert_writers_clean(void)
{
	unsigned failed = qload_writers_stop(&writers, 60000);
	for (unsigned i = 0; i < writers.n; i++) {
		const struct qload_progress *p = &writers.progress[i];
		cr_expect_eq(p->errors, 0, "writer %u saw %llu errors: %s", i,
			     (unsigned long long)p->errors, p->last_error);
		cr_expect_eq(p->bad_blocks, 0, "writer %u: %llu blocks read back wrong", i,
			     (unsigned long long)p->bad_blocks);
	}
	cr_assert_eq(failed, 0, "%u writers failed", failed);
}

static int agent_log_contains(const char *needle);

/* End of a test: the agent stops cleanly on SIGTERM (exit 0, so sanitized
 * builds run their exit checks) with no sanitizer report in its log, then
 * the servers stop the same way. */
static void finish(void)
{
	int status = -1;
	if (agent_pid > 0) {
		kill(agent_pid, SIGTERM);
		for (int i = 0; i < 1000 && waitpid(agent_pid, &status, WNOHANG) != agent_pid; i++)
			usleep(10000);
		agent_pid = 0;
		cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "migagent did not exit 0 on SIGTERM (status 0x%x); see %s", status,
			  agent_log);
		cr_expect_not(agent_log_contains("Sanitizer") || agent_log_contains("runtime error"),
			      "sanitizer report in %s", agent_log);
	}
	fsfix_finish(&fx);
}

static int ok_of(json_t *reply)
{
	return json_is_true(json_object_get(reply, "ok"));
}

static int64_t result_int(json_t *reply, const char *key)
{
	return json_integer_value(json_object_get(json_object_get(reply, "result"), key));
}

static int agent_log_contains(const char *needle)
{
	char line[2048];
	int found = 0;
	FILE *f = fopen(agent_log, "r");
	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return found;
}

TestSuite(agent, .fini = teardown_all, .timeout = 240);

Test(agent, quiesce_under_load_holds_every_writer_and_servers_see_nothing)
{
	setup_all(4, 256 << 10, "10s");
	wait_clients(4);
	for (int cycle = 0; cycle < 5; cycle++) {
		cr_assert(wait_writes_beyond(qload_writes(&writers) + 8), "writers not writing");
		json_t *r = qpeer_call(&peer, "quiesce", 5000, 10000, NULL);
		cr_assert_not_null(r, "no reply to quiesce");
		cr_assert(ok_of(r), "quiesce failed: %s",
			  json_string_value(json_object_get(r, "error")));
		cr_assert_eq(result_int(r, "clients"), 4);
		/* Every writer wrote since the last quiesce: at least one DF_SYNC
		 * per datafile (2 servers) per writer was drained. */
		cr_assert_geq(result_int(r, "drained_requests"), 8);
		json_decref(r);

		uint64_t req_before = qload_total_requests(fx.conf);
		uint64_t writes_before = qload_writes(&writers);
		cr_assert_neq(req_before, UINT64_MAX, "STATS failed");
		usleep(300000);
		uint64_t req_after = qload_total_requests(fx.conf);
		cr_assert_eq(req_after, req_before,
			     "servers saw %llu requests while the clients were quiesced",
			     (unsigned long long)(req_after - req_before));
		cr_assert_eq(qload_writes(&writers), writes_before, "a writer made progress");

		r = qpeer_call(&peer, "resume", 0, 10000, NULL);
		cr_assert(r && ok_of(r), "resume failed");
		cr_assert_eq(result_int(r, "clients"), 4);
		cr_assert_geq(json_number_value(json_object_get(json_object_get(r, "result"),
								"held_ms")), 300.0);
		json_decref(r);
		cr_assert(wait_writes_beyond(writes_before), "writers did not resume");
	}
	/* The activity report says who writes. */
	json_t *act = qpeer_recv(&peer, "activity", 3000);
	cr_assert_not_null(act);
	cr_assert_eq(json_is_false(json_object_get(act, "quiesced")), 1);
	cr_assert_gt(json_integer_value(json_object_get(act, "write_bps")), 0);
	json_decref(act);
	cr_assert(agent_log_contains("audit: migd quiesce id=1"), "no audit line");
	assert_writers_clean();
	finish();
}

/* --- one process, many threads: the gate's atomics under contention --- */

#define MT_THREADS 6
#define MT_BLOCK (64u << 10)
#define MT_BLOCKS 8

struct mt_writer {
	pthread_t thread;
	struct sfs *fs;
	unsigned index;
	uint64_t writes, errors, bad;
	uint64_t gens[MT_BLOCKS];
	int stop;
};

static void mt_fill(uint8_t *buf, unsigned index, unsigned k, uint64_t gen)
{
	uint64_t x = ((uint64_t)index << 40) ^ ((uint64_t)k << 32) ^ gen;
	for (size_t i = 0; i < MT_BLOCK; i += 8) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		memcpy(buf + i, &x, 8);
	}
}

static void *mt_main(void *arg)
{
	struct mt_writer *w = arg;
	char path[64];
	struct sfs_file *f;
	uint8_t *buf = malloc(MT_BLOCK), *got = malloc(MT_BLOCK);
	uint64_t gen = 0;
	snprintf(path, sizeof(path), "/q/mt%u", w->index);
	if (sfs_open(w->fs, path, SFS_O_RDWR | SFS_O_CREAT | SFS_O_TRUNC, 0644, &f) < 0) {
		w->errors++;
		return NULL;
	}
	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		unsigned k = (unsigned)(gen % MT_BLOCKS);
		mt_fill(buf, w->index, k, ++gen);
		if (sfs_pwrite(f, buf, MT_BLOCK, (uint64_t)k * MT_BLOCK) != MT_BLOCK) {
			w->errors++;
			continue;
		}
		w->gens[k] = gen;
		__atomic_add_fetch(&w->writes, 1, __ATOMIC_RELEASE);
	}
	for (unsigned k = 0; k < MT_BLOCKS; k++) {
		if (!w->gens[k])
			continue;
		mt_fill(buf, w->index, k, w->gens[k]);
		if (sfs_pread(f, got, MT_BLOCK, (uint64_t)k * MT_BLOCK) != MT_BLOCK ||
		    memcmp(buf, got, MT_BLOCK) != 0)
			w->bad++;
	}
	if (sfs_close(f) < 0)
		w->errors++;
	free(buf);
	free(got);
	return NULL;
}

static uint64_t mt_writes(struct mt_writer *w)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < MT_THREADS; i++)
		sum += __atomic_load_n(&w[i].writes, __ATOMIC_ACQUIRE);
	return sum;
}

Test(agent, threads_of_one_process_are_all_held_and_all_resumed)
{
	static struct mt_writer w[MT_THREADS];
	struct sfs *fs;
	setup_all(0, 4096, "10s");
	cr_assert_eq(sfs_connect(fx.conf, NULL, &fs), 0, "%s", sfs_last_error());
	wait_clients(1);
	memset(w, 0, sizeof(w));
	for (unsigned i = 0; i < MT_THREADS; i++) {
		w[i].fs = fs;
		w[i].index = i;
		pthread_create(&w[i].thread, NULL, mt_main, &w[i]);
	}
	for (int cycle = 0; cycle < 20; cycle++) {
		uint64_t before = mt_writes(w);
		for (int i = 0; i < 2000 && mt_writes(w) < before + MT_THREADS; i++)
			usleep(1000);
		json_t *r = qpeer_call(&peer, "quiesce", 5000, 10000, NULL);
		cr_assert(r && ok_of(r), "quiesce %d failed", cycle);
		cr_assert_eq(result_int(r, "clients"), 1);
		json_decref(r);
		uint64_t held = mt_writes(w), req = qload_total_requests(fx.conf);
		usleep(50000);
		cr_assert_eq(mt_writes(w), held, "a thread wrote while quiesced (cycle %d)", cycle);
		cr_assert_eq(qload_total_requests(fx.conf), req, "a request reached a server");
		r = qpeer_call(&peer, "resume", 0, 10000, NULL);
		cr_assert(r && ok_of(r));
		json_decref(r);
	}
	for (unsigned i = 0; i < MT_THREADS; i++)
		__atomic_store_n(&w[i].stop, 1, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < MT_THREADS; i++) {
		pthread_join(w[i].thread, NULL);
		cr_expect_eq(w[i].errors, 0, "thread %u saw errors", i);
		cr_expect_eq(w[i].bad, 0, "thread %u read back wrong data", i);
		cr_expect_gt(w[i].writes, 0);
	}
	sfs_disconnect(fs);
	finish();
}

Test(agent, agent_killed_while_quiesced_clients_resume_by_themselves)
{
	setup_all(3, 256 << 10, "60s");
	wait_clients(3);
	cr_assert(wait_writes_beyond(8));
	json_t *r = qpeer_call(&peer, "quiesce", 5000, 10000, NULL);
	cr_assert(r && ok_of(r), "quiesce failed");
	json_decref(r);
	uint64_t held = qload_writes(&writers);
	usleep(200000);
	cr_assert_eq(qload_writes(&writers), held, "a writer made progress while quiesced");
	agent_kill(SIGKILL);
	cr_assert(wait_writes_beyond(held + 3), "writers still held after the agent died");
	assert_writers_clean();
	finish();
}

Test(agent, agent_killed_mid_quiesce_clients_resume_by_themselves)
{
	setup_all(3, 256 << 10, "60s");
	wait_clients(3);
	cr_assert(wait_writes_beyond(8));
	/* Writer 0 cannot answer, so the quiesce stays under way while the
	 * other two are held; then the agent dies. */
	kill(writers.pids[0], SIGSTOP);
	json_t *q = json_pack("{s:i, s:s, s:i, s:i}", "v", 1, "type", "quiesce", "id", 9,
			      "deadline_ms", 60000);
	cr_assert_eq(qpeer_send(&peer, q), 0);
	uint64_t w1 = writers.progress[1].writes, w2 = writers.progress[2].writes;
	int still = 0;
	for (int i = 0; i < 200 && still < 10; i++) {
		usleep(20000);
		uint64_t n1 = writers.progress[1].writes, n2 = writers.progress[2].writes;
		still = n1 == w1 && n2 == w2 ? still + 1 : 0;
		w1 = n1;
		w2 = n2;
	}
	cr_assert_eq(still, 10, "writers 1 and 2 were not held by the quiesce under way");
	agent_kill(SIGKILL);
	kill(writers.pids[0], SIGCONT);
	cr_assert(wait_writes_beyond(qload_writes(&writers) + 6),
		  "writers still held after the agent died mid-quiesce");
	for (int i = 0; i < 1000 && (writers.progress[1].writes <= w1 ||
				     writers.progress[2].writes <= w2); i++)
		usleep(10000);
	cr_assert_gt(writers.progress[1].writes, w1, "writer 1 still held");
	cr_assert_gt(writers.progress[2].writes, w2, "writer 2 still held");
	assert_writers_clean();
	finish();
}

Test(agent, migd_gone_watchdog_resumes_the_clients)
{
	setup_all(3, 256 << 10, "1s");
	wait_clients(3);
	cr_assert(wait_writes_beyond(8));
	json_t *r = qpeer_call(&peer, "quiesce", 5000, 10000, NULL);
	cr_assert(r && ok_of(r), "quiesce failed");
	json_decref(r);
	uint64_t held = qload_writes(&writers);
	qpeer_close(&peer); /* migd is gone: no resume will ever come */
	cr_assert(wait_writes_beyond(held + 3), "the watchdog did not resume the writers");
	for (int i = 0; i < 100 && !agent_log_contains("audit: watchdog"); i++)
		usleep(20000);
	cr_assert(agent_log_contains("audit: watchdog quiesce id=1: no resume within 1000 ms"),
		  "no watchdog audit line in %s", agent_log);
	assert_writers_clean();
	finish();
}

Test(agent, agent_says_hello_again_when_migd_comes_back)
{
	char endpoint[128];
	setup_all(1, 64 << 10, "10s");
	wait_clients(1);
	snprintf(endpoint, sizeof(endpoint), "%s", peer.endpoint);
	qpeer_close(&peer);
	usleep(500000); /* the agent notices, and backs off between attempts */
	int brc = qpeer_open_at(&peer, endpoint);
	cr_assert_eq(brc, 0, "cannot bind %s again: %s", endpoint, zmq_strerror(-brc));
	json_t *hello = qpeer_recv(&peer, "hello", 20000);
	cr_assert_not_null(hello, "no hello after migd came back");
	json_decref(hello);
	json_t *r = qpeer_call(&peer, "ping", 0, 5000, NULL);
	cr_assert(r && ok_of(r), "no answer to ping after the reconnect");
	json_decref(r);
	for (int i = 0; i < 100 && !agent_log_contains("lost migd"); i++)
		usleep(20000);
	cr_assert(agent_log_contains("lost migd"), "the agent did not log losing migd");
	assert_writers_clean();
	finish();
}

Test(agent, crashed_client_does_not_block_quiesce)
{
	setup_all(3, 256 << 10, "60s");
	wait_clients(3);
	cr_assert(wait_writes_beyond(8));
	/* Writer 0 stops answering (its control thread too), then dies while
	 * the quiesce waits for it. */
	kill(writers.pids[0], SIGSTOP);
	json_t *q = json_pack("{s:i, s:s, s:i, s:i}", "v", 1, "type", "quiesce", "id", 500,
			      "deadline_ms", 60000);
	cr_assert_eq(qpeer_send(&peer, q), 0);
	usleep(300000);
	kill(writers.pids[0], SIGKILL);
	waitpid(writers.pids[0], NULL, 0);
	writers.pids[0] = 0;
	json_t *r = qpeer_recv(&peer, "reply", 20000);
	cr_assert_not_null(r, "the quiesce never completed without the crashed client");
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 500);
	cr_assert(ok_of(r), "quiesce failed: %s", json_string_value(json_object_get(r, "error")));
	cr_assert_eq(result_int(r, "clients"), 2);
	json_decref(r);
	r = qpeer_call(&peer, "resume", 0, 10000, NULL);
	cr_assert(r && ok_of(r));
	json_decref(r);
	/* Writer 0 is gone: only the others must be clean. */
	writers.progress[0] = (struct qload_progress){ 0 };
	assert_writers_clean();
	finish();
}

Test(agent, hung_client_misses_the_deadline_and_everyone_resumes)
{
	setup_all(3, 256 << 10, "60s");
	wait_clients(3);
	cr_assert(wait_writes_beyond(8));
	kill(writers.pids[0], SIGSTOP);
	json_t *r = qpeer_call(&peer, "quiesce", 300, 10000, NULL);
	cr_assert_not_null(r);
	cr_assert_not(ok_of(r), "a quiesce with a hung client succeeded");
	cr_assert(strstr(json_string_value(json_object_get(r, "error")),
			 "deadline 300 ms missed"), "error: %s",
		  json_string_value(json_object_get(r, "error")));
	cr_assert(json_is_true(json_object_get(json_object_get(r, "result"), "missed_deadline")));
	json_decref(r);
	uint64_t w1 = writers.progress[1].writes;
	for (int i = 0; i < 1000 && writers.progress[1].writes <= w1 + 2; i++)
		usleep(10000);
	cr_assert_gt(writers.progress[1].writes, w1 + 2, "the other writers were not resumed");
	kill(writers.pids[0], SIGCONT);
	assert_writers_clean();
	finish();
}

/* A message of two frames, which the protocol does not allow. */
static int zmq_send_two(void)
{
	if (zmq_send(peer.router, peer.rid, peer.rid_len, ZMQ_SNDMORE) < 0 ||
	    zmq_send(peer.router, "{}", 2, ZMQ_SNDMORE) < 0)
		return -1;
	return zmq_send(peer.router, "{}", 2, 0) < 0 ? -1 : 0;
}

static const char *error_of(json_t *m)
{
	const char *e = json_string_value(json_object_get(m, "error"));
	return e ? e : "";
}

Test(agent, malformed_messages_from_migd_get_errors)
{
	static const char *bad[] = {
		"not json",
		"[1,2]",
		"{}",
		"{\"v\":2,\"type\":\"ping\",\"id\":1}",
		"{\"v\":1,\"id\":1}",
		"{\"v\":1,\"type\":\"reboot\",\"id\":1}",
		"{\"v\":1,\"type\":\"ping\"}",
		"{\"v\":1,\"type\":\"ping\",\"id\":[1]}",
		"{\"v\":1,\"type\":\"quiesce\",\"id\":1}",
		"{\"v\":1,\"type\":\"quiesce\",\"id\":1,\"deadline_ms\":-5}",
		"{\"v\":1,\"type\":\"quiesce\",\"id\":1,\"deadline_ms\":\"2s\"}",
		"{\"v\":1,\"type\":\"ping\",\"id\":1,\"id\":2}",
	};
	setup_all(0, 4096, "10s");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(qpeer_send_raw(&peer, bad[i], strlen(bad[i])), 0);
		json_t *e = qpeer_recv(&peer, "error", 5000);
		cr_assert_not_null(e, "no error for %s", bad[i]);
		cr_assert(strstr(error_of(e), "bad message: "), "error for %s: %s", bad[i],
			  error_of(e));
		json_decref(e);
	}
	/* The id of a bad command is echoed when it could be read. */
	const char *noddl = "{\"v\":1,\"type\":\"quiesce\",\"id\":\"q9\"}";
	qpeer_send_raw(&peer, noddl, strlen(noddl));
	json_t *e = qpeer_recv(&peer, "error", 5000);
	cr_assert_str_eq(json_string_value(json_object_get(e, "id")), "q9");
	cr_assert(strstr(error_of(e), "deadline_ms"), "%s", error_of(e));
	json_decref(e);
	/* migd's own error message is logged, not answered (no error ping-pong):
	 * the next thing the agent sends is the reply to the ping below. */
	const char *migd_err = "{\"v\":1,\"type\":\"error\",\"error\":\"bad message: x\"}";
	qpeer_send_raw(&peer, migd_err, strlen(migd_err));
	const char *ping = "{\"v\":1,\"type\":\"ping\",\"id\":77}";
	qpeer_send_raw(&peer, ping, strlen(ping));
	for (;;) { /* the agent answers in order: an error would come first */
		json_t *m = qpeer_recv(&peer, NULL, 5000);
		cr_assert_not_null(m, "no reply to the ping");
		const char *t = json_string_value(json_object_get(m, "type"));
		cr_assert_str_neq(t, "error", "the agent answered migd's error: %s", error_of(m));
		int done = strcmp(t, "reply") == 0;
		json_decref(m);
		if (done)
			break;
	}
	for (int i = 0; i < 100 && !agent_log_contains("migd says"); i++)
		usleep(20000);
	cr_assert(agent_log_contains("migd says it could not read a message of ours"));
	/* Two frames in one message. */
	cr_assert_eq(zmq_send_two(), 0);
	e = qpeer_recv(&peer, "error", 5000);
	cr_assert(e && strstr(error_of(e), "more than one frame"));
	json_decref(e);
	json_t *r = qpeer_call(&peer, "ping", 0, 5000, NULL);
	cr_assert(r && ok_of(r), "the agent stopped serving after bad messages");
	json_decref(r);
	r = qpeer_call(&peer, "resume", 0, 5000, NULL);
	cr_assert(r && ok_of(r), "resume while not quiesced must be ok");
	cr_assert_eq(json_number_value(json_object_get(json_object_get(r, "result"), "held_ms")),
		     0.0);
	json_decref(r);
	finish();
}

/* A raw client on the agent's socket: send a line, read one back. */
static int raw_connect(void)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock_path);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert(connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void raw_expect_error(int fd, const char *send_line, const char *needle)
{
	char buf[4096];
	cr_assert_eq(write_full(fd, send_line, strlen(send_line)), 0);
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
	cr_assert_gt(n, 0, "no answer to %s", send_line);
	buf[n] = '\0';
	cr_assert(strstr(buf, "\"type\":\"error\"") && strstr(buf, needle),
		  "answer to %s: %s (wanted %s)", send_line, buf, needle);
}

Test(agent, malformed_messages_from_clients_get_errors)
{
	setup_all(0, 4096, "10s");
	int fd = raw_connect();
	raw_expect_error(fd, "garbage\n", "bad message: not JSON");
	raw_expect_error(fd, "{\"v\":1,\"type\":\"stats\",\"read_bytes\":1,\"write_bytes\":1,"
			     "\"inflight\":0,\"requests\":1}\n", "before register");
	raw_expect_error(fd, "{\"v\":1,\"type\":\"register\",\"pid\":0,\"comm\":\"x\"}\n",
			 "= 0: expected a process id");
	raw_expect_error(fd, "{\"v\":1,\"type\":\"register\",\"pid\":12}\n", "comm");
	const char *reg = "{\"v\":1,\"type\":\"register\",\"pid\":12,\"comm\":\"raw\"}\n";
	cr_assert_eq(write_full(fd, reg, strlen(reg)), 0);
	raw_expect_error(fd, reg, "already registered");
	raw_expect_error(fd, "{\"v\":1,\"type\":\"quiesce\",\"id\":3}\n", "not for the agent");
	raw_expect_error(fd, "{\"v\":1,\"type\":\"quiesced\",\"id\":3}\n", "missing");
	/* A line longer than the protocol allows costs the connection. */
	char *big = malloc(8192);
	memset(big, 'x', 8191);
	big[8191] = '\n';
	write_full(fd, big, 8192);
	free(big);
	char buf[4096];
	ssize_t n;
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		;
	/* Closed with our excess unread: a Unix socket reports ECONNRESET. */
	cr_assert(n == 0 || errno == ECONNRESET,
		  "the agent kept a client that sent an overlong line (%s)", strerror(errno));
	cr_assert(agent_log_contains("line longer than 4096 bytes"), "no error logged");
	close(fd);
	/* The raw client registered and then went away; quiesce is not held up. */
	json_t *r = qpeer_call(&peer, "quiesce", 2000, 5000, NULL);
	cr_assert(r && ok_of(r), "quiesce after bad clients failed");
	cr_assert_eq(result_int(r, "clients"), 0);
	json_decref(r);
	r = qpeer_call(&peer, "resume", 0, 5000, NULL);
	cr_assert(r && ok_of(r));
	json_decref(r);
	finish();
}

/* --- after a restore: stale connections --- */

/* resume {reconnect: true} from the migd stand-in; the reply. */
static json_t *resume_reconnect(long long id)
{
	json_t *m = json_pack("{s:i, s:s, s:I, s:b}", "v", 1, "type", "resume", "id",
			      (json_int_t)id, "reconnect", 1);
	cr_assert_eq(qpeer_send(&peer, m), 0);
	json_t *r = qpeer_recv(&peer, "reply", 10000);
	cr_assert_not_null(r, "no reply to resume with reconnect");
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), id);
	cr_assert(ok_of(r), "resume failed: %s", json_string_value(json_object_get(r, "error")));
	return r;
}

/* Quiesce (asserting ok and every writer held); the writes so far. */
static uint64_t quiesce_writers(unsigned n)
{
	json_t *r = qpeer_call(&peer, "quiesce", 5000, 10000, NULL);
	cr_assert(r && ok_of(r), "quiesce failed: %s",
		  r ? json_string_value(json_object_get(r, "error")) : "no reply");
	cr_assert_eq(result_int(r, "clients"), n);
	json_decref(r);
	uint64_t held = qload_writes(&writers);
	usleep(100000);
	cr_assert_eq(qload_writes(&writers), held, "a writer made progress while quiesced");
	return held;
}

/* Writers hold stale connections to every server: the relay cut them all
 * while they were quiesced (each writer has at least its I/O servers'). */
static void make_connections_stale(unsigned n_writers)
{
	unsigned cut = tcprelay_cut(&relay);
	cr_assert_geq(cut, n_writers * fx.n_io, "only %u connections went through the relay",
		      cut);
}

/* The servers restarted while the guest was held. Note that this alone
 * does not need reconnect: a restarted server's FIN makes the idle
 * connection readable and client_conn_ready replaces it anyway (this test
 * passes without the drop); the stale cases below are the ones that do. */
Test(agent, servers_restarted_while_quiesced_writers_go_on_after_resume_with_reconnect)
{
	setup_all(3, 256 << 10, "60s");
	wait_clients(3);
	cr_assert(wait_writes_beyond(8));
	uint64_t held = quiesce_writers(3);
	/* What the quiesce made durable survives the servers dying hard. */
	for (unsigned i = 1; i <= fx.n_io; i++) {
		fsfix_signal(&fx, i, SIGKILL);
		fsfix_start_server(&fx, i);
	}
	json_t *r = resume_reconnect(900);
	cr_assert(json_is_true(json_object_get(json_object_get(r, "result"), "reconnect")),
		  "the agent's reply does not say it passed reconnect on");
	cr_assert_eq(result_int(r, "clients"), 3);
	json_decref(r);
	cr_assert(wait_writes_beyond(held + 6), "writers did not go on after the restart");
	cr_assert(agent_log_contains("audit: migd resume id=900 reconnect: ok, 3 clients"),
		  "no audit line for the resume with reconnect in %s", agent_log);
	assert_writers_clean();
	finish();
}

Test(agent, stale_connections_are_replaced_on_resume_with_reconnect)
{
	setup_with(3, 256 << 10, "60s", 1);
	wait_clients(3);
	for (int cycle = 0; cycle < 2; cycle++) {
		cr_assert(wait_writes_beyond(qload_writes(&writers) + 8));
		uint64_t held = quiesce_writers(3);
		make_connections_stale(3);
		json_decref(resume_reconnect(910 + cycle));
		/* A stale connection would cost a writer timeout_ms (3 s) and an
		 * error: assert_writers_clean sees it. */
		cr_assert(wait_writes_beyond(held + 6), "writers did not go on (cycle %d)", cycle);
	}
	assert_writers_clean();
	finish();
}

/* The control: without reconnect the same stale connections fail the next
 * request (after timeout_ms), which is what makes the tests around it
 * able to fail. Deterministic: every writer's next pwrite goes out on
 * connections the relay swallows. */
Test(agent, stale_connections_fail_a_plain_resume)
{
	setup_with(2, 256 << 10, "60s", 1);
	wait_clients(2);
	cr_assert(wait_writes_beyond(8));
	quiesce_writers(2);
	make_connections_stale(2);
	json_t *r = qpeer_call(&peer, "resume", 0, 10000, NULL);
	cr_assert(r && ok_of(r), "resume failed");
	cr_assert(json_is_false(json_object_get(json_object_get(r, "result"), "reconnect")));
	json_decref(r);
	uint64_t errors = 0;
	for (int i = 0; i < 1500 && errors == 0; i++) {
		usleep(10000);
		for (unsigned w = 0; w < writers.n; w++)
			errors += __atomic_load_n(&writers.progress[w].errors, __ATOMIC_RELAXED);
	}
	cr_assert_gt(errors, 0, "no writer failed on a stale connection within 15 s: the "
		     "relay did not make them stale, and the reconnect tests prove nothing");
	int timed_out = 0;
	for (unsigned w = 0; w < writers.n; w++)
		timed_out |= strstr(writers.progress[w].last_error, "timeout") != NULL;
	cr_assert(timed_out, "the failure was not a timeout: %s / %s",
		  writers.progress[0].last_error, writers.progress[1].last_error);
	qload_writers_stop(&writers, 60000); /* their data is not the point here */
	finish();
}

Test(agent, watchdog_resume_reconnects)
{
	setup_with(3, 256 << 10, "1s", 1);
	wait_clients(3);
	cr_assert(wait_writes_beyond(8));
	uint64_t held = quiesce_writers(3);
	make_connections_stale(3);
	/* migd says nothing more: the watchdog resumes, with reconnect */
	cr_assert(wait_writes_beyond(held + 6), "the watchdog did not resume the writers");
	for (int i = 0; i < 100 && !agent_log_contains("audit: watchdog"); i++)
		usleep(20000);
	cr_assert(agent_log_contains("resumed 3 clients, reconnecting"),
		  "no watchdog audit line saying it reconnects in %s", agent_log);
	assert_writers_clean();
	finish();
}

Test(agent, agent_killed_while_quiesced_clients_reconnect_by_themselves)
{
	setup_with(3, 256 << 10, "60s", 1);
	wait_clients(3);
	cr_assert(wait_writes_beyond(8));
	uint64_t held = quiesce_writers(3);
	make_connections_stale(3);
	agent_kill(SIGKILL);
	cr_assert(wait_writes_beyond(held + 6), "writers still held after the agent died");
	assert_writers_clean();
	finish();
}

/*
 * migagent's own link after a restore: its DEALER's connection to migd is
 * stale too. ZMQ_HEARTBEAT_IVL (1 s) sends a PING, nothing comes back
 * within ZMQ_HEARTBEAT_TIMEOUT (3 s), ZeroMQ closes the connection and the
 * DEALER reconnects: a fresh hello reaches migd with no help from us.
 */
Test(agent, zmq_heartbeat_replaces_a_stale_link_to_migd)
{
	char endpoint[64];
	fsfix_start(&fx, 1, NULL);
	snprintf(sock_path, sizeof(sock_path), "%.80s/agent.sock", fx.dir);
	snprintf(agent_log, sizeof(agent_log), "%s/agent.log", fx.dir);
	cr_assert_eq(qpeer_open(&peer), 0);
	unsigned port = 0;
	cr_assert_eq(sscanf(peer.endpoint, "tcp://127.0.0.1:%u", &port), 1, "%s", peer.endpoint);
	tcprelay_start(&migd_relay, &port, 1);
	snprintf(endpoint, sizeof(endpoint), "tcp://127.0.0.1:%u", migd_relay.ports[0]);
	agent_start_at(endpoint, "60s");
	json_t *r = qpeer_call(&peer, "ping", 0, 5000, NULL);
	cr_assert(r && ok_of(r), "no answer to ping through the relay");
	json_decref(r);
	cr_assert_eq(tcprelay_cut(&migd_relay), 1);
	json_t *hello = qpeer_recv(&peer, "hello", 20000);
	cr_assert_not_null(hello, "no new hello within 20 s of the link going stale: the "
			   "heartbeat did not replace it; see %s", agent_log);
	json_decref(hello);
	r = qpeer_call(&peer, "ping", 0, 5000, NULL);
	cr_assert(r && ok_of(r), "no answer to ping over the new connection");
	json_decref(r);
	finish();
}
