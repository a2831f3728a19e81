/* qload: writers, a migd stand-in and server counters (see qload.h). */
#include "qload.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "agent_proto.h"
#include "sfs.h"
#include "sfs_conf.h"
#include "sfs_rpc.h"
#include "util.h"

/* --- writers --- */

static volatile sig_atomic_t writer_stop;

static void on_stop(int sig)
{
	(void)sig;
	writer_stop = 1;
}

/* The bytes of block k of writer index at generation gen: a splitmix64
 * stream, so that any misplaced or stale byte shows. */
static void fill(uint64_t *buf, size_t bytes, unsigned index, unsigned k, uint64_t gen)
{
	uint64_t x = ((uint64_t)index << 48) ^ ((uint64_t)k << 32) ^ gen;
	for (size_t i = 0; i < bytes / 8; i++) {
		x += 0x9e3779b97f4a7c15ull;
		uint64_t z = x;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		buf[i] = z ^ (z >> 31);
	}
}

static void note_error(struct qload_progress *p, const char *what, long rc)
{
	__atomic_add_fetch(&p->errors, 1, __ATOMIC_RELAXED);
	snprintf(p->last_error, sizeof(p->last_error), "%s: %s (%s)", what, sfs_strerror((int)rc),
		 sfs_last_error());
}

static unsigned verify(struct sfs_file *f, struct qload_progress *p, unsigned index,
		       const uint64_t *gens, const struct qload_writer_opts *o, uint64_t *want,
		       uint64_t *got)
{
	unsigned bad = 0;
	for (unsigned k = 0; k < o->blocks; k++) {
		if (!gens[k])
			continue;
		ssize_t n = sfs_pread(f, got, o->transfer_bytes, (uint64_t)k * o->transfer_bytes);
		if (n != (ssize_t)o->transfer_bytes) {
			note_error(p, "pread", n < 0 ? n : -EIO);
			bad++;
			continue;
		}
		fill(want, o->transfer_bytes, index, k, gens[k]);
		if (memcmp(want, got, o->transfer_bytes) != 0)
			bad++;
		else
			__atomic_add_fetch(&p->verified_bytes, o->transfer_bytes, __ATOMIC_RELAXED);
	}
	return bad;
}

static int writer_main(unsigned index, struct qload_progress *p, const struct qload_writer_opts *o)
{
	struct sfs *fs = NULL;
	struct sfs_file *f = NULL;
	char path[256];
	uint64_t *buf = malloc(o->transfer_bytes), *got = malloc(o->transfer_bytes);
	uint64_t *gens = calloc(o->blocks, sizeof(*gens)), gen = 0;
	if (!buf || !got || !gens)
		return 2;
	int rc = sfs_connect(o->conf, NULL, &fs);
	if (rc == 0) {
		snprintf(path, sizeof(path), "%s/w%u", o->dir, index);
		rc = sfs_open(fs, path, SFS_O_RDWR | SFS_O_CREAT | SFS_O_TRUNC, 0644, &f);
	}
	if (rc < 0) {
		note_error(p, "connect/open", rc);
		return 1;
	}
	__atomic_store_n(&p->started, 1, __ATOMIC_RELEASE);
	while (!writer_stop) {
		for (unsigned k = 0; k < o->blocks && !writer_stop; k++) {
			fill(buf, o->transfer_bytes, index, k, ++gen);
			uint64_t t0 = now_ns();
			ssize_t n = sfs_pwrite(f, buf, o->transfer_bytes,
					       (uint64_t)k * o->transfer_bytes);
			uint64_t dt = now_ns() - t0;
			if (n != (ssize_t)o->transfer_bytes) {
				note_error(p, "pwrite", n < 0 ? n : -EIO);
				continue;
			}
			gens[k] = gen;
			if (dt > p->max_write_ns)
				__atomic_store_n(&p->max_write_ns, dt, __ATOMIC_RELAXED);
			uint64_t w = __atomic_add_fetch(&p->writes, 1, __ATOMIC_RELAXED);
			if (o->crash_after_writes > 0 && w == (uint64_t)o->crash_after_writes)
				_exit(3);
		}
	}
	p->bad_blocks = verify(f, p, index, gens, o, buf, got);
	rc = sfs_close(f);
	if (rc < 0)
		note_error(p, "close", rc);
	sfs_disconnect(fs);
	__atomic_store_n(&p->finished, 1, __ATOMIC_RELEASE);
	return p->errors || p->bad_blocks ? 1 : 0;
}

int qload_writers_start(struct qload_writers *w, unsigned n, const struct qload_writer_opts *o)
{
	if (n > QLOAD_MAX_WRITERS)
		return -EINVAL;
	memset(w, 0, sizeof(*w));
	w->progress = mmap(NULL, n * sizeof(*w->progress) + 1, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (w->progress == MAP_FAILED) {
		w->progress = NULL;
		return -errno;
	}
	pid_t parent = getpid();
	for (unsigned i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0)
			return -errno;
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(4);
			/* Not the parent's sockets: a writer holding the migd
			 * stand-in's listening socket would keep its port. */
			close_range(3, ~0u, 0);
			struct sigaction sa = { .sa_handler = on_stop };
			sigaction(SIGUSR1, &sa, NULL);
			_exit(writer_main(i, &w->progress[i], o));
		}
		w->pids[w->n++] = pid;
	}
	return 0;
}

uint64_t qload_writes(const struct qload_writers *w)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < w->n; i++)
		sum += __atomic_load_n(&w->progress[i].writes, __ATOMIC_RELAXED);
	return sum;
}

unsigned qload_writers_stop(struct qload_writers *w, unsigned timeout_ms)
{
	unsigned failed = 0;
	uint64_t deadline_ms = now_ms() + timeout_ms;
	for (unsigned i = 0; i < w->n; i++)
		if (w->pids[i] > 0)
			kill(w->pids[i], SIGUSR1);
	for (unsigned i = 0; i < w->n; i++) {
		int status = 0;
		if (w->pids[i] <= 0)
			continue;
		while (waitpid(w->pids[i], &status, WNOHANG) == 0) {
			if (now_ms() > deadline_ms) {
				kill(w->pids[i], SIGKILL);
				waitpid(w->pids[i], &status, 0);
				snprintf(w->progress[i].last_error, sizeof(w->progress[i].last_error),
					 "did not finish within %u ms", timeout_ms);
				break;
			}
			usleep(10000);
		}
		w->pids[i] = 0;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	return failed;
}

void qload_writers_free(struct qload_writers *w)
{
	for (unsigned i = 0; i < w->n; i++) {
		if (w->pids[i] > 0) {
			kill(w->pids[i], SIGKILL);
			waitpid(w->pids[i], NULL, 0);
		}
	}
	if (w->progress)
		munmap(w->progress, w->n * sizeof(*w->progress) + 1);
	w->progress = NULL;
	w->n = 0;
}

/* --- migd stand-in --- */

/* A port below the kernel's ephemeral range: a DEALER reconnecting to an
 * ephemeral port nobody listens on can connect to itself and keep it. */
int qpeer_open(struct qpeer *p)
{
	char endpoint[64];
	srand((unsigned)(getpid() ^ now_ns()));
	for (int attempt = 0; attempt < 100; attempt++) {
		snprintf(endpoint, sizeof(endpoint), "tcp://127.0.0.1:%d", 20000 + rand() % 12000);
		int rc = qpeer_open_at(p, endpoint);
		if (rc == 0)
			return 0;
		qpeer_close(p);
	}
	return qpeer_open_at(p, "tcp://127.0.0.1:*");
}

int qpeer_open_at(struct qpeer *p, const char *endpoint)
{
	memset(p, 0, sizeof(*p));
	int zero = 0;
	size_t len = sizeof(p->endpoint);
	p->ctx = zmq_ctx_new();
	p->router = p->ctx ? zmq_socket(p->ctx, ZMQ_ROUTER) : NULL;
	if (!p->router)
		return -ENOMEM;
	zmq_setsockopt(p->router, ZMQ_LINGER, &zero, sizeof(zero));
	if (zmq_bind(p->router, endpoint) < 0 ||
	    zmq_getsockopt(p->router, ZMQ_LAST_ENDPOINT, p->endpoint, &len) < 0)
		return -zmq_errno();
	return 0;
}

void qpeer_close(struct qpeer *p)
{
	if (p->router)
		zmq_close(p->router);
	if (p->ctx)
		zmq_ctx_term(p->ctx);
	json_decref(p->last_activity);
	memset(p, 0, sizeof(*p));
}

/* One [routing id, body] message within timeout_ms: the parsed body, or NULL. */
static json_t *recv_one(struct qpeer *p, int timeout_ms)
{
	zmq_pollitem_t item = { .socket = p->router, .events = ZMQ_POLLIN };
	if (zmq_poll(&item, 1, timeout_ms) <= 0)
		return NULL;
	uint8_t rid[256];
	int rid_len = zmq_recv(p->router, rid, sizeof(rid), 0);
	char *body = malloc(AGENT_MAX_MSG_BYTES + 1);
	int len = body ? zmq_recv(p->router, body, AGENT_MAX_MSG_BYTES, 0) : -1;
	json_t *msg = NULL;
	if (rid_len > 0 && len >= 0 && len <= (int)AGENT_MAX_MSG_BYTES)
		msg = json_loadb(body, (size_t)len, 0, NULL);
	free(body);
	const char *type = json_string_value(json_object_get(msg, "type"));
	if (type && strcmp(type, "hello") == 0 && rid_len > 0 && rid_len <= (int)sizeof(p->rid)) {
		memcpy(p->rid, rid, (size_t)rid_len);
		p->rid_len = (size_t)rid_len;
		p->hellos++;
	}
	if (type && strcmp(type, "activity") == 0) {
		json_decref(p->last_activity);
		p->last_activity = json_incref(msg);
		p->activities++;
	}
	return msg;
}

json_t *qpeer_recv(struct qpeer *p, const char *type, int timeout_ms)
{
	uint64_t deadline_ms = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		uint64_t now = now_ms();
		if (now >= deadline_ms)
			return NULL;
		json_t *msg = recv_one(p, (int)(deadline_ms - now));
		if (!msg)
			continue;
		const char *t = json_string_value(json_object_get(msg, "type"));
		if (!type || (t && strcmp(t, type) == 0))
			return msg;
		json_decref(msg);
	}
}

int qpeer_send_raw(struct qpeer *p, const void *data, size_t len)
{
	if (!p->rid_len)
		return -ENOTCONN;
	if (zmq_send(p->router, p->rid, p->rid_len, ZMQ_SNDMORE) < 0 ||
	    zmq_send(p->router, data, len, 0) < 0)
		return -zmq_errno();
	return 0;
}

int qpeer_send(struct qpeer *p, json_t *msg)
{
	char *text = agent_msg_text(msg);
	if (!text)
		return -ENOMEM;
	int rc = qpeer_send_raw(p, text, strlen(text));
	free(text);
	return rc;
}

json_t *qpeer_call(struct qpeer *p, const char *type, uint64_t deadline_ms, int timeout_ms,
		   double *rtt_ms)
{
	long long id = ++p->next_id;
	json_t *msg = json_pack("{s:i, s:s, s:I}", "v", AGENT_PROTO_VERSION, "type", type, "id",
				(json_int_t)id);
	if (strcmp(type, "quiesce") == 0)
		json_object_set_new(msg, "deadline_ms", json_integer((json_int_t)deadline_ms));
	uint64_t t0 = now_ns(), end_ms = now_ms() + (uint64_t)timeout_ms;
	if (qpeer_send(p, msg) < 0)
		return NULL;
	for (;;) {
		uint64_t now = now_ms();
		if (now >= end_ms)
			return NULL;
		json_t *r = qpeer_recv(p, "reply", (int)(end_ms - now));
		if (r && json_integer_value(json_object_get(r, "id")) == id) {
			if (rtt_ms)
				*rtt_ms = (double)(now_ns() - t0) / 1e6;
			return r;
		}
		json_decref(r);
	}
}

/* --- servers --- */

int qload_server_requests(const char *conf_path, uint64_t *out, unsigned max)
{
	char err[512];
	struct sfs_conf *conf = malloc(sizeof(*conf));
	struct sfs_reply *reply = malloc(sizeof(*reply));
	struct sfs_req req = { .op = SFS_OP_STATS };
	int rc = conf && reply ? sfs_conf_load(conf_path, conf, err, sizeof(err)) : -ENOMEM;
	unsigned n = 0;
	for (unsigned i = 0; rc == 0 && i <= conf->n_io && i < max; i++) {
		struct sfs_conn conn;
		sfs_conn_init(&conn, conf, i == 0 ? &conf->meta : &conf->io[i - 1]);
		rc = sfs_conn_call(&conn, &req, NULL, 0, reply, NULL, 0, NULL, err, sizeof(err));
		sfs_conn_close(&conn);
		if (rc == 0)
			out[n++] = reply->requests;
	}
	free(conf);
	free(reply);
	return rc < 0 ? rc : (int)n;
}

uint64_t qload_total_requests(const char *conf)
{
	uint64_t counts[SFS_MAX_IO_SERVERS + 1], sum = 0;
	int n = qload_server_requests(conf, counts, SFS_MAX_IO_SERVERS + 1);
	if (n < 0)
		return UINT64_MAX;
	for (int i = 0; i < n; i++)
		sum += counts[i];
	return sum;
}
