/*
 * data: libsfs's data path, and every request that goes to I/O servers.
 *
 * Bandwidth comes from keeping every server of a stripe busy at once. A
 * pread/pwrite is planned up front: each stripe position gets one
 * contiguous local range (layout_local_range), cut into requests of at most
 * max_request bytes whose data are iovecs pointing straight into the
 * caller's buffer, one per strip piece, so nothing is copied. Then one
 * poll() loop drives all the stripe's sockets together: non-blocking
 * sendmsg of queued frames (a few in flight per connection) and a receive
 * state machine (header, body, data scattered into the right iovecs) that
 * matches replies in order by tag, because a server answers one
 * connection's requests in order. Receiving is always armed, so a server
 * blocked sending read data can never deadlock against our sends.
 *
 * A small call is one request and one reply, so its cost is mostly fixed:
 * the plan lives in memory the channel keeps, the first frames go out
 * before any poll, and the wait for replies spins briefly before it sleeps
 * (net_poll), because waking a sleeping thread costs more than the reply
 * takes to come.
 *
 * A stream whose server errs, dies or stalls for timeout_ms fails; its
 * connection is closed (the channel reconnects next time). Other streams
 * stop starting new requests but drain the ones in flight, so their
 * connections stay usable. A server's error reply leaves its connection in
 * step and it too only stops new requests.
 *
 * The same engine, with one request per server, serves DF_GETSIZE,
 * DF_TRUNCATE, DF_SYNC, DF_STATFS and PING, so those are parallel too.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "client_internal.h"
#include "layout.h"
#include "util.h"

#define IO_WINDOW 8      /* requests in flight per connection */
#define IOV_BATCH 512    /* iovec entries per sendmsg/recvmsg (IOV_MAX is 1024) */
#define RX_BODY_MAX 512  /* replies to I/O requests are tiny: more is garbage */
#define REQ_BODY_MAX (SFS_CAP_BYTES + 24) /* I/O request bodies: at most a capability,
					      handle, offset, length */
/* Calls that move more than this wait without spinning: their waits are
 * the servers receiving and writing, who need the CPU a spinner would
 * take (1 MiB writes from one process lost 10-15% spinning), and one
 * wake-up is small next to their work. */
#define SPIN_CALL_MAX_BYTES (256u << 10)

/* io_run flags */
#define IO_KEEP_GOING 0x1 /* a failure does not stop other streams (statfs, ping) */
#define IO_NO_SPIN 0x2    /* a large call: see SPIN_CALL_MAX_BYTES */

/* A position in an iovec array, bounded by the bytes still wanted. */
struct iov_cursor {
	const struct iovec *iov;
	int cnt, idx;
	size_t off;
	uint64_t left;
};

struct io_req {
	uint16_t op;
	uint32_t tag;
	uint8_t head[SFS_HDR_BYTES + REQ_BODY_MAX]; /* header and body, one send */
	struct iovec *send_iov; /* [0] = head, then a DF_WRITE's data */
	int send_cnt;
	struct iovec *recv_iov; /* where a DF_READ's data lands */
	int recv_cnt;
	uint64_t recv_bytes;    /* data asked for (DF_READ), 0 otherwise */
	/* from the reply */
	int status;
	uint64_t data_bytes;
	uint64_t local_size;
	uint64_t total_bytes, free_bytes, used_bytes, n_files, snap_bytes, n_snaps;
	unsigned version;
	uint64_t start_ns, done_ns; /* first byte sent, reply complete: ping's rtt */
};

enum rx_state { RX_HEAD, RX_BODY, RX_DATA };

/* One connection's share of a call. */
struct io_stream {
	struct sfs_conn *conn;
	struct io_req *reqs;
	unsigned n_reqs, sent, recvd;
	int sending; /* reqs[sent] is partly sent */
	struct iov_cursor tx, rx;
	enum rx_state rx_state;
	uint8_t rx_buf[SFS_HDR_BYTES + RX_BODY_MAX];
	size_t rx_got;
	struct sfs_hdr rx_hdr;
	uint64_t last_progress_ms;
	int rc;     /* 0, the first error reply, or a transport failure */
	int closed; /* transport failure: the connection is gone */
	char err[CLIENT_ERR_BYTES / 2];
};

struct io_run {
	const struct sfs_conf *conf;
	struct io_stream *streams;
	unsigned n_streams;
	int keep_going; /* IO_KEEP_GOING */
	int stop;       /* a failure happened: start no new requests */
	int rc;         /* the first failure, its message in err */
	char err[CLIENT_ERR_BYTES / 2];
	uint64_t now_ms;
	struct sfs_reply *reply; /* decoding scratch (large: READDIR entries) */
	struct net_spin *spin;   /* the channel's, or NULL: never spin */
};

static void cursor_init(struct iov_cursor *c, const struct iovec *iov, int cnt, uint64_t left)
{
	*c = (struct iov_cursor){ .iov = iov, .cnt = cnt, .left = left };
}

static int cursor_fill(const struct iov_cursor *c, struct iovec *out, int max)
{
	uint64_t left = c->left;
	size_t off = c->off;
	int n = 0;
	for (int i = c->idx; i < c->cnt && n < max && left; i++, off = 0) {
		size_t len = c->iov[i].iov_len - off;
		if (len > left)
			len = (size_t)left;
		if (len == 0)
			continue;
		out[n++] = (struct iovec){ (char *)c->iov[i].iov_base + off, len };
		left -= len;
	}
	return n;
}

static void cursor_advance(struct iov_cursor *c, size_t n)
{
	c->left -= n;
	while (n && c->idx < c->cnt) {
		size_t avail = c->iov[c->idx].iov_len - c->off;
		if (n < avail) {
			c->off += n;
			return;
		}
		n -= avail;
		c->idx++;
		c->off = 0;
	}
}

/* Header and body of one request, its tag taken from the connection. */
static int req_prepare(struct io_req *req, struct sfs_conn *conn, const struct sfs_req *body,
		       uint64_t send_data_bytes)
{
	size_t body_len;
	int rc = sfs_req_encode(body, req->head + SFS_HDR_BYTES, REQ_BODY_MAX, &body_len);
	if (rc < 0)
		return rc;
	req->op = body->op;
	req->tag = conn->next_tag++;
	struct sfs_hdr hdr = { .magic = SFS_PROTO_MAGIC, .version = SFS_PROTO_VERSION,
			       .op = body->op, .tag = req->tag, .body_len = (uint32_t)body_len,
			       .data_len = (uint32_t)send_data_bytes };
	sfs_hdr_encode(&hdr, req->head);
	req->send_iov[0] = (struct iovec){ req->head, SFS_HDR_BYTES + body_len };
	return 0;
}

static void run_note_failure(struct io_run *run, const struct io_stream *s)
{
	if (!run->keep_going)
		run->stop = 1;
	if (run->rc == 0) {
		run->rc = s->rc;
		snprintf(run->err, sizeof(run->err), "%s", s->err);
	}
}

/* The server died, misbehaved or stalled: give up on its connection. The
 * call fails with -ETIMEDOUT, -EPROTONOSUPPORT (a server speaking another
 * protocol version) or -EIO for everything else. */
static void stream_fail(struct io_run *run, struct io_stream *s, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void stream_fail(struct io_run *run, struct io_stream *s, int rc, const char *fmt, ...)
{
	char what[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (s->rc == 0) {
		char label[256];
		s->rc = rc == -ETIMEDOUT || rc == -EPROTONOSUPPORT ? rc : -EIO;
		snprintf(s->err, sizeof(s->err), "%s: %s",
			 sfs_server_label(s->conn->srv, label, sizeof(label)), what);
	}
	sfs_conn_close(s->conn);
	s->closed = 1;
	run_note_failure(run, s);
}

static int stream_wants_send(const struct io_run *run, const struct io_stream *s)
{
	if (s->sending)
		return 1;
	return !run->stop && s->sent < s->n_reqs && s->sent - s->recvd < IO_WINDOW;
}

static int stream_active(const struct io_run *run, const struct io_stream *s)
{
	if (s->closed)
		return 0;
	return s->recvd < s->sent + (unsigned)s->sending || stream_wants_send(run, s);
}

/* Send frames until the socket is full or the window closes. */
static void stream_send(struct io_run *run, struct io_stream *s)
{
	struct iovec iov[IOV_BATCH];
	while (!s->closed) {
		if (!s->sending) {
			if (!stream_wants_send(run, s))
				return;
			struct io_req *req = &s->reqs[s->sent];
			uint64_t bytes = 0;
			for (int i = 0; i < req->send_cnt; i++)
				bytes += req->send_iov[i].iov_len;
			cursor_init(&s->tx, req->send_iov, req->send_cnt, bytes);
			s->sending = 1;
			req->start_ns = now_ns();
		}
		int cnt = cursor_fill(&s->tx, iov, IOV_BATCH);
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };
		ssize_t n = sendmsg(s->conn->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				stream_fail(run, s, -errno, "sending: %s", strerror(errno));
			return;
		}
		s->last_progress_ms = run->now_ms;
		cursor_advance(&s->tx, (size_t)n);
		if (s->tx.left == 0) {
			s->sending = 0;
			s->sent++;
		}
	}
}

static void rx_complete(struct io_stream *s, struct io_req *req)
{
	req->done_ns = now_ns();
	s->recvd++;
	s->rx_state = RX_HEAD;
	s->rx_got = 0;
}

/* The fields of a decoded reply that callers use (the scratch is reused). */
static void reply_keep(struct io_req *req, const struct sfs_reply *r)
{
	if (req->status < 0)
		return;
	switch (req->op) {
	case SFS_OP_DF_WRITE:
	case SFS_OP_DF_READ:
	case SFS_OP_DF_GETSIZE:
		req->local_size = r->local_size;
		break;
	case SFS_OP_DF_STATFS:
		req->total_bytes = r->total_bytes;
		req->free_bytes = r->free_bytes;
		req->used_bytes = r->used_bytes;
		req->n_files = r->n_files;
		req->snap_bytes = r->snap_bytes;
		req->n_snaps = r->n_snaps;
		break;
	case SFS_OP_PING:
		req->version = r->version;
		break;
	default:
		break;
	}
}

static void rx_body_done(struct io_run *run, struct io_stream *s)
{
	struct io_req *req = &s->reqs[s->recvd];
	const struct sfs_hdr *h = &s->rx_hdr;
	struct sfs_reply *r = run->reply;
	char why[200];
	if (sfs_reply_decode(h->op, h->status, s->rx_buf + SFS_HDR_BYTES, h->body_len, r, why,
			     sizeof(why)) < 0) {
		stream_fail(run, s, -EBADMSG, "bad reply: %s", why);
		return;
	}
	req->status = h->status;
	req->data_bytes = h->data_len;
	reply_keep(req, r);
	if (h->status < 0 && s->rc == 0) {
		char label[256], text[128];
		s->rc = h->status;
		snprintf(s->err, sizeof(s->err), "%s: %s: %s",
			 sfs_server_label(s->conn->srv, label, sizeof(label)), sfs_op_name(h->op),
			 r->msg[0] ? r->msg : errno_text(-h->status, text, sizeof(text)));
		run_note_failure(run, s);
	}
	if (h->data_len == 0) {
		rx_complete(s, req);
		return;
	}
	s->rx_state = RX_DATA;
	cursor_init(&s->rx, req->recv_iov, req->recv_cnt, h->data_len);
}

static void rx_head_done(struct io_run *run, struct io_stream *s)
{
	char why[200];
	if (s->recvd >= s->sent + (unsigned)s->sending) {
		stream_fail(run, s, -EBADMSG, "a frame nobody asked for");
		return;
	}
	struct io_req *req = &s->reqs[s->recvd];
	struct sfs_hdr *h = &s->rx_hdr;
	int rc = sfs_hdr_decode(s->rx_buf, (uint32_t)req->recv_bytes, h, why, sizeof(why));
	if (rc < 0) {
		req->version = h->version; /* ping reports a peer of another version */
		stream_fail(run, s, rc, "bad reply: %s", why);
		return;
	}
	if (h->tag != req->tag || h->op != req->op) {
		stream_fail(run, s, -EBADMSG, "reply tag %u op %s does not match request %u %s",
			    h->tag, sfs_op_name(h->op), req->tag, sfs_op_name(req->op));
		return;
	}
	if (h->body_len > RX_BODY_MAX || (h->status < 0 && h->data_len)) {
		stream_fail(run, s, -EBADMSG, "malformed %s reply (body %u, data %u bytes)",
			    sfs_op_name(h->op), h->body_len, h->data_len);
		return;
	}
	s->rx_state = RX_BODY;
	if (h->body_len == 0)
		rx_body_done(run, s);
}

static void rx_advance(struct io_run *run, struct io_stream *s, size_t n)
{
	if (s->rx_state == RX_DATA) {
		cursor_advance(&s->rx, n);
		if (s->rx.left == 0)
			rx_complete(s, &s->reqs[s->recvd]);
		return;
	}
	s->rx_got += n;
	if (s->rx_state == RX_HEAD && s->rx_got == SFS_HDR_BYTES)
		rx_head_done(run, s);
	else if (s->rx_state == RX_BODY && s->rx_got == SFS_HDR_BYTES + s->rx_hdr.body_len)
		rx_body_done(run, s);
}

/* Receive until the socket is empty or every reply is in (a last recv
 * to learn that it is empty would cost a call a syscall; anything the
 * server sends unasked is found by client_conn_ready). Header and body go
 * to rx_buf, data straight into the request's iovecs, never past the
 * frame's end. */
static void stream_recv(struct io_run *run, struct io_stream *s)
{
	struct iovec iov[IOV_BATCH];
	while (!s->closed && s->recvd < s->sent + (unsigned)s->sending) {
		ssize_t n;
		if (s->rx_state == RX_DATA) {
			int cnt = cursor_fill(&s->rx, iov, IOV_BATCH);
			struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };
			n = recvmsg(s->conn->fd, &msg, MSG_DONTWAIT);
		} else {
			size_t want = SFS_HDR_BYTES;
			if (s->rx_state == RX_BODY)
				want += s->rx_hdr.body_len;
			n = recv(s->conn->fd, s->rx_buf + s->rx_got, want - s->rx_got, MSG_DONTWAIT);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				stream_fail(run, s, -errno, "receiving: %s", strerror(errno));
			return;
		}
		if (n == 0) {
			stream_fail(run, s, -ECONNRESET, "connection closed by the server");
			return;
		}
		s->last_progress_ms = run->now_ms;
		rx_advance(run, s, (size_t)n);
	}
}

/* Fail stalled streams; fill pfd for the others. Returns how many, and the
 * poll timeout that expires with the first stall in *wait_ms. */
static unsigned run_collect(struct io_run *run, struct pollfd *pfd, unsigned *which, int *wait_ms)
{
	unsigned n = 0;
	*wait_ms = -1;
	for (unsigned i = 0; i < run->n_streams; i++) {
		struct io_stream *s = &run->streams[i];
		if (!stream_active(run, s))
			continue;
		uint64_t idle_ms = run->now_ms - s->last_progress_ms;
		if (idle_ms >= run->conf->timeout_ms) {
			stream_fail(run, s, -ETIMEDOUT, "no answer within the timeout (%u ms)",
				    run->conf->timeout_ms);
			continue;
		}
		int left_ms = (int)(run->conf->timeout_ms - idle_ms);
		if (*wait_ms < 0 || left_ms < *wait_ms)
			*wait_ms = left_ms;
		short events = POLLIN;
		if (stream_wants_send(run, s))
			events |= POLLOUT;
		pfd[n] = (struct pollfd){ .fd = s->conn->fd, .events = events };
		which[n++] = i;
	}
	return n;
}

/* Returns when no stream has work left. */
static void run_loop(struct io_run *run)
{
	struct pollfd pfd[SFS_MAX_IO_SERVERS];
	unsigned which[SFS_MAX_IO_SERVERS];
	int wait_ms;

	assert(run->n_streams <= SFS_MAX_IO_SERVERS);
	run->now_ms = now_ms();
	/* An idle connection has room for a request: send first, and poll
	 * only for what did not fit (or for the replies). */
	for (unsigned i = 0; i < run->n_streams; i++) {
		run->streams[i].last_progress_ms = run->now_ms;
		stream_send(run, &run->streams[i]);
	}
	for (;;) {
		unsigned n = run_collect(run, pfd, which, &wait_ms);
		if (n == 0)
			break;
		int ready = net_poll(pfd, n, wait_ms, run->spin);
		int poll_errno = errno;
		run->now_ms = now_ms();
		for (unsigned j = 0; j < n; j++) {
			struct io_stream *s = &run->streams[which[j]];
			if (ready < 0 && poll_errno != EINTR)
				stream_fail(run, s, -poll_errno, "poll: %s", strerror(poll_errno));
			if (ready <= 0)
				continue;
			if (pfd[j].revents & POLLOUT)
				stream_send(run, s);
			if (pfd[j].revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL))
				stream_recv(run, s);
		}
	}
}

/*
 * Run every stream's requests at once. Returns 0 or the first failure (its
 * message in err). Each stream keeps its own rc and err and each request
 * its reply, for callers that report servers one by one.
 */
static int io_run(struct sfs *fs, struct chan *ch, struct io_stream *streams, unsigned n_streams,
		  int flags, char *err, size_t errlen)
{
	struct io_run run = { .conf = fs->conf, .streams = streams, .n_streams = n_streams,
			      .keep_going = flags & IO_KEEP_GOING, .reply = &ch->reply,
			      .spin = flags & IO_NO_SPIN ? NULL : &ch->io_spin };
	int rc;
	for (unsigned i = 0; i < n_streams; i++) {
		struct io_stream *s = &streams[i];
		if (s->n_reqs == 0)
			continue;
		rc = client_conn_ready(s->conn, s->err, sizeof(s->err));
		if (rc < 0) {
			s->rc = rc;
			s->closed = 1;
			run_note_failure(&run, s);
		}
	}
	run_loop(&run);
	if (run.rc < 0)
		snprintf(err, errlen, "%s", run.err);
	return run.rc;
}

/* --- one request per server --- */

struct io_each {
	struct io_stream *streams;
	struct io_req *reqs;
	struct iovec *iov;
	unsigned n;
};

static void io_each_free(struct io_each *e)
{
	free(e->streams);
	free(e->reqs);
	free(e->iov);
}

/*
 * Request op of I/O servers servers[0..n) at once; lengths[i] (or 0) is the
 * length field of server i's request. keep_going: IO_KEEP_GOING. Returns
 * io_run's result; per-server results stay in e (free with io_each_free).
 */
static int io_each_run(struct sfs *fs, struct chan *ch, struct io_each *e, unsigned n,
		       const uint16_t *servers, uint16_t op, uint64_t handle,
		       const struct sfs_cap *cap, const uint64_t *lengths, int keep_going,
		       char *err, size_t errlen)
{
	struct sfs_req *enc = &ch->req;
	memset(enc, 0, offsetof(struct sfs_req, handles));
	enc->op = op;
	enc->handle = handle;
	if (cap)
		enc->cap = *cap;
	e->n = n;
	e->streams = calloc(n, sizeof(*e->streams));
	e->reqs = calloc(n, sizeof(*e->reqs));
	e->iov = calloc(n, sizeof(*e->iov));
	if (!e->streams || !e->reqs || !e->iov) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		struct io_stream *s = &e->streams[i];
		s->conn = &ch->io[servers[i]];
		s->reqs = &e->reqs[i];
		s->n_reqs = 1;
		s->reqs->send_iov = &e->iov[i];
		s->reqs->send_cnt = 1;
		enc->length = lengths ? lengths[i] : 0;
		int rc = req_prepare(s->reqs, s->conn, enc, 0);
		if (rc < 0) {
			snprintf(err, errlen, "%s does not encode: %s", sfs_op_name(op),
				 strerror(-rc));
			return rc;
		}
	}
	return io_run(fs, ch, e->streams, n, keep_going ? IO_KEEP_GOING : 0, err, errlen);
}

static int stripe_each(struct sfs *fs, struct chan *ch, uint64_t fid, const struct sfs_cap *cap,
		       const struct sfs_layout *l, uint16_t op, const uint64_t *lengths,
		       struct io_each *e, char *err, size_t errlen)
{
	return io_each_run(fs, ch, e, l->stripe_count, l->servers, op, fid, cap, lengths, 0,
			   err, errlen);
}

/* Raise *size_bytes to what datafile pos holding local bytes implies. A
 * local size from the wire so large that the file would pass 2^64 bytes
 * is the server's error, not arithmetic to wrap. */
static int size_fold(struct sfs *fs, const struct sfs_layout *l, unsigned pos, uint64_t local,
		     uint64_t *size_bytes, char *err, size_t errlen)
{
	uint64_t span = (uint64_t)l->strip_size * l->stripe_count;
	if (local > (UINT64_MAX - span) / l->stripe_count) {
		char label[256];
		snprintf(err, errlen, "%s: datafile size %" PRIu64 " is beyond the largest file",
			 sfs_server_label(&fs->conf->io[l->servers[pos]], label, sizeof(label)),
			 local);
		return -EIO;
	}
	uint64_t s = layout_size_from_local(l, pos, local);
	if (s > *size_bytes)
		*size_bytes = s;
	return 0;
}

/*
 * Where a file ends: the largest size any datafile implies. Local sizes
 * already known from read replies (streams, or NULL) are used; the other
 * stripe positions are asked with DF_GETSIZE.
 */
static int stripe_size(struct sfs *fs, struct chan *ch, const struct sfs_cap *cap,
		       const struct sfs_layout *l, const struct io_stream *streams,
		       uint64_t *size_bytes, char *err, size_t errlen)
{
	uint16_t ask_server[SFS_MAX_STRIPE];
	unsigned ask_pos[SFS_MAX_STRIPE], n_ask = 0;
	struct io_each e = { 0 };
	int rc = 0;
	*size_bytes = 0;
	for (unsigned pos = 0; rc == 0 && pos < l->stripe_count; pos++) {
		if (!streams || streams[pos].n_reqs == 0) {
			ask_pos[n_ask] = pos;
			ask_server[n_ask++] = l->servers[pos];
			continue;
		}
		uint64_t local = 0;
		for (unsigned i = 0; i < streams[pos].n_reqs; i++)
			if (streams[pos].reqs[i].local_size > local)
				local = streams[pos].reqs[i].local_size;
		rc = size_fold(fs, l, pos, local, size_bytes, err, errlen);
	}
	if (rc < 0 || n_ask == 0)
		return rc;
	rc = io_each_run(fs, ch, &e, n_ask, ask_server, SFS_OP_DF_GETSIZE, cap->handle, cap, NULL,
			 0, err, errlen);
	for (unsigned i = 0; rc == 0 && i < n_ask; i++)
		rc = size_fold(fs, l, ask_pos[i], e.reqs[i].local_size, size_bytes, err, errlen);
	io_each_free(&e);
	return rc;
}

int data_file_size(struct sfs *fs, struct chan *ch, const struct sfs_cap *cap,
		   const struct sfs_layout *l, uint64_t *size_bytes, char *err, size_t errlen)
{
	return stripe_size(fs, ch, cap, l, NULL, size_bytes, err, errlen);
}

int data_truncate(struct sfs *fs, struct chan *ch, const struct sfs_cap *cap,
		  const struct sfs_layout *l, uint64_t size_bytes, char *err, size_t errlen)
{
	uint64_t lengths[SFS_MAX_STRIPE];
	struct io_each e = { 0 };
	for (unsigned pos = 0; pos < l->stripe_count; pos++)
		lengths[pos] = layout_local_size(l, pos, size_bytes);
	int rc = stripe_each(fs, ch, cap->handle, cap, l, SFS_OP_DF_TRUNCATE, lengths, &e, err,
			     errlen);
	io_each_free(&e);
	return rc;
}

/* After a call with f's capability cap ended in rc: 1 when an I/O server
 * refused it and a renewed one is now in cap (once per call: *renewed). */
static int cap_retry(struct sfs_file *f, struct chan *ch, int rc, int *renewed,
		     struct sfs_cap *cap, char *err, size_t errlen)
{
	char why[CLIENT_ERR_BYTES / 4];
	if (rc != -EACCES || *renewed)
		return 0;
	*renewed = 1;
	if (client_file_cap_renew(f, ch, cap, why, sizeof(why)) < 0) {
		size_t used = strnlen(err, errlen);
		if (used + 1 < errlen)
			snprintf(err + used, errlen - used, "; renewing the capability: %.200s",
				 why);
		return 0;
	}
	return 1;
}

int data_file_size_of(struct sfs_file *f, struct chan *ch, uint64_t *size_bytes, char *err,
		      size_t errlen)
{
	struct sfs_cap cap;
	int rc, renewed = 0;
	client_file_cap(f, &cap);
	do
		rc = data_file_size(f->fs, ch, &cap, &f->layout, size_bytes, err, errlen);
	while (cap_retry(f, ch, rc, &renewed, &cap, err, errlen));
	return rc;
}

int data_truncate_of(struct sfs_file *f, struct chan *ch, uint64_t size_bytes, char *err,
		     size_t errlen)
{
	struct sfs_cap cap;
	int rc, renewed = 0;
	client_file_cap(f, &cap);
	do
		rc = data_truncate(f->fs, ch, &cap, &f->layout, size_bytes, err, errlen);
	while (cap_retry(f, ch, rc, &renewed, &cap, err, errlen));
	return rc;
}

int sfs_fsync(struct sfs_file *f)
{
	char err[CLIENT_ERR_BYTES / 2];
	if (!f)
		return -EINVAL;
	struct chan *ch = client_chan_get(f->fs);
	if (!ch)
		return -ENOMEM;
	int rc = data_sync(f->fs, ch, f->fid, &f->layout, err, sizeof(err));
	if (rc < 0)
		client_error("fsync %s: %s", f->path, err);
	client_chan_put(f->fs, ch);
	return rc;
}

int data_sync(struct sfs *fs, struct chan *ch, uint64_t fid, const struct sfs_layout *l,
	      char *err, size_t errlen)
{
	struct io_each e = { 0 };
	int rc = stripe_each(fs, ch, fid, NULL, l, SFS_OP_DF_SYNC, NULL, &e, err, errlen);
	io_each_free(&e);
	return rc;
}

int data_sync_all(struct sfs *fs, struct chan *ch, char *err, size_t errlen)
{
	struct io_each e = { 0 };
	uint16_t *servers = calloc(fs->conf->n_io, sizeof(*servers));
	if (!servers) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < fs->conf->n_io; i++)
		servers[i] = (uint16_t)i;
	int rc = io_each_run(fs, ch, &e, fs->conf->n_io, servers, SFS_OP_DF_SYNC, 0, NULL, NULL,
			     0, err, errlen);
	free(servers);
	io_each_free(&e);
	return rc;
}

/* Every I/O server, in config order. */
static int io_all_run(struct sfs *fs, struct chan *ch, uint16_t op, struct io_each *e)
{
	char err[CLIENT_ERR_BYTES / 2];
	uint16_t *servers = calloc(fs->conf->n_io, sizeof(*servers));
	if (!servers)
		return -ENOMEM;
	for (unsigned i = 0; i < fs->conf->n_io; i++)
		servers[i] = (uint16_t)i;
	int rc = io_each_run(fs, ch, e, fs->conf->n_io, servers, op, 0, NULL, NULL, 1, err,
			     sizeof(err));
	free(servers);
	return rc == -ENOMEM ? rc : 0;
}

int data_io_statfs(struct sfs *fs, struct chan *ch, struct sfs_server_usage *out)
{
	struct io_each e = { 0 };
	int rc = io_all_run(fs, ch, SFS_OP_DF_STATFS, &e);
	for (unsigned i = 0; rc == 0 && i < fs->conf->n_io; i++) {
		const struct io_req *req = &e.reqs[i];
		struct sfs_server_usage *u = &out[i];
		memset(u, 0, sizeof(*u));
		snprintf(u->name, sizeof(u->name), "%s", fs->conf->io[i].name);
		sfs_server_address(&fs->conf->io[i], u->address, sizeof(u->address));
		u->status = e.streams[i].rc;
		if (u->status < 0) {
			client_server_error(&fs->conf->io[i], e.streams[i].err, u->error,
					    sizeof(u->error));
			continue;
		}
		u->total_bytes = req->total_bytes;
		u->free_bytes = req->free_bytes;
		u->used_bytes = req->used_bytes;
		u->n_files = req->n_files;
		u->snapshot_bytes = req->snap_bytes;
		u->n_snapshots = req->n_snaps;
	}
	io_each_free(&e);
	return rc;
}

int data_io_ping(struct sfs *fs, struct chan *ch, struct sfs_ping_result *out)
{
	struct io_each e = { 0 };
	int rc = io_all_run(fs, ch, SFS_OP_PING, &e);
	for (unsigned i = 0; rc == 0 && i < fs->conf->n_io; i++) {
		const struct io_req *req = &e.reqs[i];
		struct sfs_ping_result *r = &out[i];
		memset(r, 0, sizeof(*r));
		snprintf(r->name, sizeof(r->name), "%s", fs->conf->io[i].name);
		sfs_server_address(&fs->conf->io[i], r->address, sizeof(r->address));
		r->status = e.streams[i].rc;
		r->version = req->version;
		if (r->status < 0) {
			client_server_error(&fs->conf->io[i], e.streams[i].err, r->error,
					    sizeof(r->error));
			continue;
		}
		r->rtt_ms = (double)(req->done_ns - req->start_ns) / 1e6;
	}
	io_each_free(&e);
	return rc;
}

/* --- striped pread/pwrite --- */

/* A plan larger than this gets memory of its own, so that one huge
 * transfer does not leave its channel holding megabytes for good. */
#define PLAN_KEEP_BYTES (1u << 20)

struct data_plan {
	struct io_stream *streams; /* one per stripe position */
	struct io_req *reqs;
	unsigned n_reqs;
	struct iovec *iov;
	size_t n_iov;
	struct sfs_req *enc; /* encoding scratch: the channel's */
	void *own;           /* memory of a plan above PLAN_KEEP_BYTES, or NULL */
	struct sfs_cap cap;  /* the file's, in every request */
};

/* bytes of memory for a plan: the channel's, grown if need be, so that the
 * steady state of small calls allocates nothing; NULL when out of memory. */
static void *plan_memory(struct data_plan *p, struct chan *ch, size_t bytes)
{
	if (bytes > PLAN_KEEP_BYTES)
		return p->own = malloc(bytes);
	if (bytes > ch->plan_mem_bytes) {
		free(ch->plan_mem); /* nothing in it outlives a call */
		ch->plan_mem_bytes = 0;
		ch->plan_mem = malloc(bytes);
		if (!ch->plan_mem)
			return NULL;
		ch->plan_mem_bytes = bytes;
	}
	return ch->plan_mem;
}

/* Requests and iovec entries a call needs at most: a request of len bytes
 * touches at most len / strip_size + 2 strips. Streams and requests start
 * zeroed; iovecs are written before they are read. */
static int plan_alloc(struct data_plan *p, struct chan *ch, const struct sfs_layout *l,
		      uint64_t off, uint64_t len, uint32_t max_request_bytes)
{
	uint64_t n_reqs = 0, n_iov = 0;
	for (unsigned pos = 0; pos < l->stripe_count; pos++) {
		uint64_t lo, hi;
		layout_local_range(l, pos, off, len, &lo, &hi);
		uint64_t reqs = (hi - lo + max_request_bytes - 1) / max_request_bytes;
		n_reqs += reqs;
		n_iov += reqs * 3 + (hi - lo) / l->strip_size;
	}
	if (n_reqs > SIZE_MAX / 4 / sizeof(*p->reqs) || n_iov > SIZE_MAX / 4 / sizeof(*p->iov))
		return -ENOMEM;
	size_t streams_bytes = l->stripe_count * sizeof(*p->streams);
	size_t reqs_bytes = (size_t)n_reqs * sizeof(*p->reqs);
	char *mem = plan_memory(p, ch, streams_bytes + reqs_bytes + (size_t)n_iov * sizeof(*p->iov));
	if (!mem)
		return -ENOMEM;
	memset(mem, 0, streams_bytes + reqs_bytes);
	p->streams = (struct io_stream *)mem;
	p->reqs = (struct io_req *)(mem + streams_bytes);
	p->iov = (struct iovec *)(mem + streams_bytes + reqs_bytes);
	return 0;
}

/* The data of local range [lo, hi) of pos as iovecs into the caller's
 * buffer, which holds file range [off, ...): one per strip piece. */
static int plan_pieces(struct data_plan *p, const struct sfs_layout *l, unsigned pos,
		       char *buf, uint64_t off, uint64_t lo, uint64_t hi)
{
	int cnt = 0;
	for (uint64_t local = lo; local < hi;) {
		uint64_t strip_end = (local / l->strip_size + 1) * l->strip_size;
		uint64_t end = strip_end < hi ? strip_end : hi;
		uint64_t file_off = layout_file_offset(l, pos, local);
		p->iov[p->n_iov++] = (struct iovec){ buf + (file_off - off), (size_t)(end - local) };
		cnt++;
		local = end;
	}
	return cnt;
}

static int plan_position(struct data_plan *p, struct sfs_file *f, struct chan *ch,
			 unsigned pos, char *buf, uint64_t off, uint64_t len, uint16_t op)
{
	const struct sfs_layout *l = &f->layout;
	uint32_t max_request_bytes = f->fs->conf->max_request_bytes;
	struct io_stream *s = &p->streams[pos];
	uint64_t lo, hi;
	layout_local_range(l, pos, off, len, &lo, &hi);
	s->conn = &ch->io[l->servers[pos]];
	s->reqs = &p->reqs[p->n_reqs];
	for (uint64_t chunk = lo; chunk < hi; chunk += max_request_bytes) {
		uint64_t end = hi - chunk > max_request_bytes ? chunk + max_request_bytes : hi;
		struct io_req *req = &p->reqs[p->n_reqs++];
		s->n_reqs++;
		req->send_iov = &p->iov[p->n_iov++];
		req->send_cnt = 1;
		if (op == SFS_OP_DF_WRITE) {
			req->send_cnt += plan_pieces(p, l, pos, buf, off, chunk, end);
		} else {
			req->recv_iov = &p->iov[p->n_iov];
			req->recv_cnt = plan_pieces(p, l, pos, buf, off, chunk, end);
			req->recv_bytes = end - chunk;
		}
		p->enc->op = op;
		p->enc->handle = f->fid;
		p->enc->cap = p->cap;
		p->enc->offset = chunk;
		p->enc->length = end - chunk;
		int rc = req_prepare(req, s->conn, p->enc, op == SFS_OP_DF_WRITE ? end - chunk : 0);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Plan a call into p (release with free(p->own) whatever the result). */
static int data_plan_init(struct data_plan *p, struct sfs_file *f, struct chan *ch, char *buf,
			  uint64_t off, uint64_t len, uint16_t op, const struct sfs_cap *cap)
{
	*p = (struct data_plan){ .enc = &ch->req, .cap = *cap };
	int rc = plan_alloc(p, ch, &f->layout, off, len, f->fs->conf->max_request_bytes);
	for (unsigned pos = 0; rc == 0 && pos < f->layout.stripe_count; pos++)
		rc = plan_position(p, f, ch, pos, buf, off, len, op);
	return rc;
}

static int check_io_args(struct sfs_file *f, const void *buf, size_t len, uint64_t off,
			 int want_write, const char *what)
{
	int acc = f ? (f->flags & 3) : -1;
	if (!f || (!buf && len)) {
		client_error("%s: no file or no buffer", what);
		return -EINVAL;
	}
	if (len > SSIZE_MAX || off > INT64_MAX || len > INT64_MAX - off) {
		client_error("%s %s: offset %llu + length %zu is beyond the largest file", what,
			     f->path, (unsigned long long)off, len);
		return -EINVAL;
	}
	if (want_write ? acc == SFS_O_RDONLY : acc == SFS_O_WRONLY) {
		client_error("%s %s: file not open for %s", what, f->path,
			     want_write ? "writing" : "reading");
		return -EBADF;
	}
	return 0;
}

/* A read came back short somewhere: zero what the servers did not return
 * and work out where the file ends. */
static ssize_t read_finish(struct sfs_file *f, struct chan *ch, struct data_plan *p,
			   uint64_t off, size_t len, char *err, size_t errlen)
{
	int short_read = 0;
	for (unsigned i = 0; i < p->n_reqs; i++) {
		struct io_req *req = &p->reqs[i];
		if (req->data_bytes == req->recv_bytes)
			continue;
		struct iov_cursor c;
		cursor_init(&c, req->recv_iov, req->recv_cnt, req->recv_bytes);
		cursor_advance(&c, (size_t)req->data_bytes);
		struct iovec piece[IOV_BATCH];
		while (c.left) {
			int cnt = cursor_fill(&c, piece, IOV_BATCH);
			for (int j = 0; j < cnt; j++) {
				memset(piece[j].iov_base, 0, piece[j].iov_len);
				cursor_advance(&c, piece[j].iov_len);
			}
		}
		short_read = 1;
	}
	if (!short_read)
		return (ssize_t)len;
	uint64_t size_bytes;
	int rc = stripe_size(f->fs, ch, &p->cap, &f->layout, p->streams, &size_bytes, err, errlen);
	if (rc < 0)
		return rc;
	if (size_bytes <= off)
		return 0;
	return size_bytes - off < len ? (ssize_t)(size_bytes - off) : (ssize_t)len;
}

/* One attempt of data_rw_on with capability cap. */
static ssize_t data_rw_once(struct sfs_file *f, struct chan *ch, char *buf, size_t len,
			    uint64_t off, uint16_t op, const struct sfs_cap *cap, char *err,
			    size_t errlen)
{
	struct data_plan plan;
	ssize_t rc = data_plan_init(&plan, f, ch, buf, off, len, op, cap);
	if (rc < 0)
		goto out;
	rc = io_run(f->fs, ch, plan.streams, f->layout.stripe_count,
		    len > SPIN_CALL_MAX_BYTES ? IO_NO_SPIN : 0, err, errlen);
	if (rc < 0)
		goto out;
	rc = op == SFS_OP_DF_READ ? read_finish(f, ch, &plan, off, len, err, errlen)
				  : (ssize_t)len;
out:
	free(plan.own);
	return rc;
}

/* Both directions on the caller's channel: plan, run, and for reads
 * settle short data. A refused capability (expired) is renewed once and
 * the whole call repeated: reads and writes at fixed offsets repeat
 * harmlessly. */
static ssize_t data_rw_on(struct sfs_file *f, struct chan *ch, char *buf, size_t len,
			  uint64_t off, uint16_t op, const char *what)
{
	char err[CLIENT_ERR_BYTES / 2] = "out of memory";
	struct sfs_cap cap;
	int renewed = 0;
	ssize_t rc;
	if (f->fs->ctl && op == SFS_OP_DF_WRITE)
		ctl_touch(f->fs->ctl, f->fid, &f->layout, &f->ctl_epoch);
	client_file_cap(f, &cap);
	do
		rc = data_rw_once(f, ch, buf, len, off, op, &cap, err, sizeof(err));
	while (cap_retry(f, ch, (int)rc, &renewed, &cap, err, sizeof(err)));
	if (rc == -ENOENT)
		rc = -ESTALE; /* the datafile is gone: removed, or rolled back away */
	if (rc > 0 && f->fs->ctl)
		ctl_count(f->fs->ctl, op == SFS_OP_DF_WRITE, (uint64_t)rc);
	if (rc < 0)
		client_error("%s %s: %s", what, f->path, err);
	return rc;
}

static ssize_t data_rw(struct sfs_file *f, char *buf, size_t len, uint64_t off, uint16_t op,
		       const char *what)
{
	struct chan *ch = client_chan_get(f->fs);
	if (!ch)
		return -ENOMEM;
	ssize_t rc = data_rw_on(f, ch, buf, len, off, op, what);
	client_chan_put(f->fs, ch);
	return rc;
}

ssize_t sfs_pread(struct sfs_file *f, void *buf, size_t len, uint64_t offset)
{
	int rc = check_io_args(f, buf, len, offset, 0, "pread");
	if (rc < 0)
		return rc;
	if (len == 0)
		return 0;
	__atomic_store_n(&f->was_read, 1, __ATOMIC_RELAXED);
	return data_rw(f, buf, len, offset, SFS_OP_DF_READ, "pread");
}

ssize_t sfs_pwrite(struct sfs_file *f, const void *buf, size_t len, uint64_t offset)
{
	int rc = check_io_args(f, buf, len, offset, 1, "pwrite");
	if (rc < 0)
		return rc;
	if (len == 0)
		return 0;
	__atomic_store_n(&f->written, 1, __ATOMIC_RELAXED);
	/* The buffer is only read: DF_WRITE's iovecs are sent, never received into. */
	return data_rw(f, (char *)(uintptr_t)buf, len, offset, SFS_OP_DF_WRITE, "pwrite");
}

/*
 * The whole append on one channel: its metadata connection holds the file's
 * append lock while the size is read and the data written, and taking a
 * second channel could block behind a quiesce that waits for this one.
 * Unlocking fails only with the connection, and a closed connection gives
 * the lock back on the server.
 */
ssize_t sfs_append(struct sfs_file *f, const void *buf, size_t len, uint64_t *offset)
{
	char err[CLIENT_ERR_BYTES / 2];
	uint64_t size_bytes;
	int rc = check_io_args(f, buf, len, 0, 1, "append");
	if (rc < 0)
		return rc;
	struct chan *ch = client_chan_get(f->fs);
	if (!ch)
		return -ENOMEM;
	__atomic_store_n(&f->written, 1, __ATOMIC_RELAXED);
	ssize_t res = client_meta_handle_call(ch, SFS_OP_APPEND_LOCK, f->fid, err, sizeof(err));
	if (res < 0) {
		client_error("append %s: taking the append lock: %s", f->path, err);
		goto out;
	}
	res = data_file_size_of(f, ch, &size_bytes, err, sizeof(err));
	if (res < 0)
		client_error("append %s: %s", f->path, err);
	else if (size_bytes > INT64_MAX - len)
		res = -EFBIG;
	else if (len)
		res = data_rw_on(f, ch, (char *)(uintptr_t)buf, len, size_bytes, SFS_OP_DF_WRITE,
				 "append");
	if (client_meta_handle_call(ch, SFS_OP_APPEND_UNLOCK, f->fid, err, sizeof(err)) < 0)
		sfs_conn_close(&ch->meta);
	if (res >= 0 && offset)
		*offset = size_bytes;
	if (res >= 0)
		res = (ssize_t)len;
out:
	client_chan_put(f->fs, ch);
	return res;
}
