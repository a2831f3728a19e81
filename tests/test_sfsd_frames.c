/*
 * A real sfsd fed bad frames over raw sockets: garbage, truncated and
 * oversized frames close that one connection with a log line, other
 * versions and unknown ops get error replies, unknown handles get ENOENT,
 * and the server keeps serving everyone else throughout.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fsfixture.h"
#include "sfs_proto.h"

static struct fsfix fx;

static void setup(void) { fsfix_start(&fx, 1, "timeout_ms = 1500\nmax_request = 1m\n"); }
static void teardown(void) { fsfix_stop(&fx); }

TestSuite(frames, .init = setup, .fini = teardown, .timeout = 60);

static void send_all(int fd, const void *p, size_t n)
{
	cr_assert_eq(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void send_hdr(int fd, uint32_t magic, uint16_t version, uint16_t op, uint32_t body_len,
		     uint32_t data_len)
{
	uint8_t raw[SFS_HDR_BYTES];
	struct sfs_hdr h = { .magic = magic, .version = version, .op = op, .tag = 99,
			     .body_len = body_len, .data_len = data_len };
	sfs_hdr_encode(&h, raw);
	send_all(fd, raw, sizeof(raw));
}

/* Wait (bounded) for the server to close: 1 if it did. Replies are skipped. */
static int closed_by_server(int fd, int within_ms)
{
	char buf[4096];
	for (int waited = 0; waited < within_ms; waited += 50) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 50) == 1) {
			ssize_t n = recv(fd, buf, sizeof(buf), 0);
			if (n == 0 || (n < 0 && errno == ECONNRESET))
				return 1;
		}
	}
	return 0;
}

/* Read one reply header and body; returns status. */
static int32_t reply_status(int fd, char *msg, size_t msglen)
{
	uint8_t raw[SFS_HDR_BYTES], body[SFS_MAX_BODY_BYTES];
	struct sfs_hdr h;
	char err[256];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 5000), 1, "no reply within 5 s");
	cr_assert_eq(recv(fd, raw, sizeof(raw), MSG_WAITALL), (ssize_t)sizeof(raw));
	cr_assert_eq(sfs_hdr_decode(raw, 1 << 30, &h, err, sizeof(err)), 0, "%s", err);
	if (h.body_len) /* a recv of 0 bytes would wait for the next frame */
		cr_assert_eq(recv(fd, body, h.body_len, MSG_WAITALL), (ssize_t)h.body_len);
	msg[0] = '\0';
	if (h.status < 0 && h.body_len >= 2) {
		size_t n = (size_t)(body[0] | body[1] << 8);
		if (n >= msglen)
			n = msglen - 1;
		memcpy(msg, body + 2, n);
		msg[n] = '\0';
	}
	return h.status;
}

static void ping_still_works(unsigned server)
{
	int fd = fsfix_connect(&fx, server);
	char msg[256];
	cr_assert_geq(fd, 0);
	send_hdr(fd, SFS_PROTO_MAGIC, SFS_PROTO_VERSION, SFS_OP_PING, 0, 0);
	cr_assert_eq(reply_status(fd, msg, sizeof(msg)), 0, "ping after abuse failed");
	close(fd);
}

Test(frames, garbage_closes_only_that_connection)
{
	int bystander = fsfix_connect(&fx, 1);
	int fd = fsfix_connect(&fx, 1);
	cr_assert_geq(fd, 0);
	send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
	cr_assert(closed_by_server(fd, 3000), "garbage did not close the connection");
	close(fd);
	cr_assert(fsfix_log_contains(&fx, 1, "bad magic"), "no log line about the bad magic");
	/* a connection opened before the garbage still works */
	char msg[256];
	send_hdr(bystander, SFS_PROTO_MAGIC, SFS_PROTO_VERSION, SFS_OP_PING, 0, 0);
	cr_assert_eq(reply_status(bystander, msg, sizeof(msg)), 0);
	close(bystander);
	ping_still_works(0);
	fsfix_finish(&fx);
}

Test(frames, truncated_frame_closes_the_connection)
{
	int fd = fsfix_connect(&fx, 0);
	send_hdr(fd, SFS_PROTO_MAGIC, SFS_PROTO_VERSION, SFS_OP_LOOKUP, 100, 0);
	send_all(fd, "\x05\x00/ab", 5); /* 5 of the 100 body bytes, then silence */
	cr_assert(closed_by_server(fd, 5000), "a stalled half frame was not closed");
	close(fd);
	/* and a half header followed by EOF */
	fd = fsfix_connect(&fx, 1);
	send_all(fd, "SFS1\x01", 5);
	shutdown(fd, SHUT_WR);
	cr_assert(closed_by_server(fd, 3000));
	close(fd);
	ping_still_works(0);
	ping_still_works(1);
	fsfix_finish(&fx);
}

Test(frames, oversized_frames_close_the_connection)
{
	int fd = fsfix_connect(&fx, 1);
	send_hdr(fd, SFS_PROTO_MAGIC, SFS_PROTO_VERSION, SFS_OP_DF_WRITE, 16, 64u << 20);
	cr_assert(closed_by_server(fd, 3000), "64 MiB of data over a 1 MiB limit was accepted");
	close(fd);
	fd = fsfix_connect(&fx, 0);
	send_hdr(fd, SFS_PROTO_MAGIC, SFS_PROTO_VERSION, SFS_OP_LOOKUP, 1u << 20, 0);
	cr_assert(closed_by_server(fd, 3000), "a 1 MiB body was accepted");
	close(fd);
	cr_assert(fsfix_log_contains(&fx, 1, "exceeds the limit"));
	ping_still_works(1);
	fsfix_finish(&fx);
}

Test(frames, other_version_and_bad_bodies_get_errors)
{
	char msg[256];
	int fd = fsfix_connect(&fx, 0);
	send_hdr(fd, SFS_PROTO_MAGIC, 7, SFS_OP_PING, 0, 0);
	/* either an EPROTONOSUPPORT reply or a close; never a normal answer */
	struct pollfd p = { .fd = fd, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 3000), 1);
	uint8_t raw[SFS_HDR_BYTES];
	ssize_t n = recv(fd, raw, sizeof(raw), MSG_WAITALL);
	if (n == (ssize_t)sizeof(raw)) {
		int32_t status = (int32_t)(raw[12] | raw[13] << 8 | raw[14] << 16 |
					   (uint32_t)raw[15] << 24);
		cr_assert_eq(status, -EPROTONOSUPPORT);
	}
	close(fd);

	/* a body that does not decode: string longer than the body */
	fd = fsfix_connect(&fx, 0);
	send_hdr(fd, SFS_PROTO_MAGIC, SFS_PROTO_VERSION, SFS_OP_LOOKUP, 4, 0);
	send_all(fd, "\xff\x00/a", 4);
	cr_assert(closed_by_server(fd, 3000));
	close(fd);

	/* unknown op: an error reply, the connection stays usable */
	fd = fsfix_connect(&fx, 0);
	send_hdr(fd, SFS_PROTO_MAGIC, SFS_PROTO_VERSION, 4242, 0, 0);
	cr_assert_eq(reply_status(fd, msg, sizeof(msg)), -EOPNOTSUPP);
	/* an I/O op sent to the metadata server */
	uint8_t body[SFS_CAP_BYTES + 8] = { 0 };
	body[SFS_CAP_BYTES] = 1;
	send_hdr(fd, SFS_PROTO_MAGIC, SFS_PROTO_VERSION, SFS_OP_DF_GETSIZE, sizeof(body), 0);
	send_all(fd, body, sizeof(body));
	cr_assert_eq(reply_status(fd, msg, sizeof(msg)), -EOPNOTSUPP);
	send_hdr(fd, SFS_PROTO_MAGIC, SFS_PROTO_VERSION, SFS_OP_PING, 0, 0);
	cr_assert_eq(reply_status(fd, msg, sizeof(msg)), 0);
	close(fd);
	fsfix_finish(&fx);
}

Test(frames, unknown_handle_gets_enoent)
{
	char msg[256];
	int fd = fsfix_connect(&fx, 1);
	/* a capability for handle 0xdead, then handle 0xdead, offset 0, length 16 */
	uint8_t body[SFS_CAP_BYTES + 24] = { 0 };
	fsfix_cap(&fx, 0xdead, SFS_CAP_READ | SFS_CAP_WRITE, 60000, body);
	body[SFS_CAP_BYTES] = 0xad;
	body[SFS_CAP_BYTES + 1] = 0xde;
	body[SFS_CAP_BYTES + 16] = 16;
	send_hdr(fd, SFS_PROTO_MAGIC, SFS_PROTO_VERSION, SFS_OP_DF_READ, sizeof(body), 0);
	send_all(fd, body, sizeof(body));
	cr_assert_eq(reply_status(fd, msg, sizeof(msg)), -ENOENT);
	cr_assert(strstr(msg, "dead"), "message names the handle: %s", msg);
	/* a write to an unknown handle: ENOENT, and its data is consumed so the
	 * connection stays in step */
	uint8_t wbody[SFS_CAP_BYTES + 16] = { 0 };
	fsfix_cap(&fx, 0xbeef, SFS_CAP_READ | SFS_CAP_WRITE, 60000, wbody);
	wbody[SFS_CAP_BYTES] = 0xef;
	wbody[SFS_CAP_BYTES + 1] = 0xbe;
	send_hdr(fd, SFS_PROTO_MAGIC, SFS_PROTO_VERSION, SFS_OP_DF_WRITE, sizeof(wbody), 1000);
	send_all(fd, wbody, sizeof(wbody));
	char data[1000] = { 0 };
	send_all(fd, data, sizeof(data));
	cr_assert_eq(reply_status(fd, msg, sizeof(msg)), -ENOENT);
	send_hdr(fd, SFS_PROTO_MAGIC, SFS_PROTO_VERSION, SFS_OP_PING, 0, 0);
	cr_assert_eq(reply_status(fd, msg, sizeof(msg)), 0);
	close(fd);
	fsfix_finish(&fx);
}

/* --- snapshots (protocol version 2) --------------------------------------- */

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A request with body to server fd; returns the reply status, message in msg.
 * An op that takes a capability gets the metadata server's (admin) first,
 * or, for a snapshot handle's TRUNCATE, one for that handle. */
static int32_t call(int fd, uint16_t op, const uint8_t *body, uint32_t len, char *msg,
		    size_t msglen)
{
	uint8_t full[SFS_CAP_BYTES + 128];
	uint32_t off = 0;
	cr_assert_leq(len, 128);
	if (sfs_op_takes_cap(op)) {
		fsfix_cap(&fx, 0, SFS_CAP_ADMIN, 60000, full);
		off = SFS_CAP_BYTES;
	}
	memcpy(full + off, body, len);
	send_hdr(fd, SFS_PROTO_MAGIC, SFS_PROTO_VERSION, op, off + len, 0);
	if (off + len)
		send_all(fd, full, off + len);
	return reply_status(fd, msg, msglen);
}

Test(frames, an_older_peer_is_refused_naming_both_versions)
{
	char msg[256];
	for (unsigned server = 0; server < 2; server++) {
		int fd = fsfix_connect(&fx, server);
		send_hdr(fd, SFS_PROTO_MAGIC, 1, SFS_OP_PING, 0, 0);
		cr_assert_eq(reply_status(fd, msg, sizeof(msg)), -EPROTONOSUPPORT);
		cr_assert(strstr(msg, "version 1") && strstr(msg, "version 3"),
			  "the refusal names both versions: %s", msg);
		close(fd);
	}
	fsfix_finish(&fx);
}

Test(frames, snapshot_requests_out_of_order_get_eproto)
{
	char msg[256];
	uint8_t body[32] = { 0 };
	int fd = fsfix_connect(&fx, 1);
	/* LINK, RESTORE and THAW of snapshot 5 with no FREEZE first */
	put_le(body, 5, 8);
	put_le(body + 8, 1, 4);
	put_le(body + 12, 0x42, 8);
	cr_assert_eq(call(fd, SFS_OP_DF_SNAP_LINK, body, 20, msg, sizeof(msg)), -EPROTO);
	cr_assert(strstr(msg, "not frozen"), "%s", msg);
	cr_assert_eq(call(fd, SFS_OP_DF_SNAP_RESTORE, body, 20, msg, sizeof(msg)), -EPROTO);
	cr_assert_eq(call(fd, SFS_OP_DF_SNAP_THAW, body, 8, msg, sizeof(msg)), -EPROTO);
	/* FREEZE 5, then requests for snapshot 6 are refused */
	put_le(body + 8, 2000, 4);
	cr_assert_eq(call(fd, SFS_OP_DF_SNAP_FREEZE, body, 12, msg, sizeof(msg)), 0, "%s", msg);
	put_le(body, 6, 8);
	cr_assert_eq(call(fd, SFS_OP_DF_SNAP_FREEZE, body, 12, msg, sizeof(msg)), -EBUSY);
	cr_assert(strstr(msg, "5"), "%s", msg);
	put_le(body + 8, 1, 4);
	cr_assert_eq(call(fd, SFS_OP_DF_SNAP_LINK, body, 20, msg, sizeof(msg)), -EPROTO);
	cr_assert(strstr(msg, "frozen for snapshot 5"), "%s", msg);
	/* a datafile that does not exist cannot be linked */
	put_le(body, 5, 8);
	cr_assert_eq(call(fd, SFS_OP_DF_SNAP_LINK, body, 20, msg, sizeof(msg)), -ENOENT);
	cr_assert(strstr(msg, "42"), "%s", msg);
	put_le(body, 5, 8);
	cr_assert_eq(call(fd, SFS_OP_DF_SNAP_THAW, body, 8, msg, sizeof(msg)), 0, "%s", msg);
	/* a snapshot handle is read-only */
	put_le(body, (1ull << SFS_FID_BITS) | 2, 8);
	cr_assert_eq(call(fd, SFS_OP_DF_TRUNCATE, body, 24, msg, sizeof(msg)), -EROFS);
	/* snapshot ops are the I/O server's or the metadata server's, not both */
	cr_assert_eq(call(fd, SFS_OP_SNAP_FSCK, body, 4, msg, sizeof(msg)), -EOPNOTSUPP);
	close(fd);
	ping_still_works(1);
	fsfix_finish(&fx);
}

Test(frames, malformed_snapshot_requests_are_refused)
{
	char msg[256];
	uint8_t body[SFS_CAP_BYTES + 64] = { 0 }, *f = body + SFS_CAP_BYTES;
	/* more handles than a batch holds: does not decode, the connection closes */
	int fd = fsfix_connect(&fx, 1);
	fsfix_cap(&fx, 0, SFS_CAP_ADMIN, 60000, body);
	put_le(f, 5, 8);
	put_le(f + 8, SFS_SNAP_BATCH + 1, 4);
	send_hdr(fd, SFS_PROTO_MAGIC, SFS_PROTO_VERSION, SFS_OP_DF_SNAP_LINK, SFS_CAP_BYTES + 12,
		 0);
	send_all(fd, body, SFS_CAP_BYTES + 12);
	cr_assert(closed_by_server(fd, 3000), "an oversized handle count was accepted");
	close(fd);
	/* a count the body does not hold */
	fd = fsfix_connect(&fx, 1);
	put_le(f + 8, 3, 4);
	send_hdr(fd, SFS_PROTO_MAGIC, SFS_PROTO_VERSION, SFS_OP_DF_SNAP_RESTORE,
		 SFS_CAP_BYTES + 28, 0);
	send_all(fd, body, SFS_CAP_BYTES + 28);
	cr_assert(closed_by_server(fd, 3000), "a truncated handle list was accepted");
	close(fd);
	cr_assert(fsfix_log_contains(&fx, 1, "handle"), "no log line about the handles");
	/* a name longer than the protocol allows */
	fd = fsfix_connect(&fx, 0);
	uint8_t big[300] = { 0 };
	put_le(big, 200, 2);
	memset(big + 2, 'n', 200);
	put_le(big + 202, 1, 2);
	big[204] = '/';
	send_hdr(fd, SFS_PROTO_MAGIC, SFS_PROTO_VERSION, SFS_OP_SNAP_CREATE, 205, 0);
	send_all(fd, big, 205);
	cr_assert(closed_by_server(fd, 3000), "a 200-byte snapshot name was accepted");
	close(fd);
	/* a name with '/' decodes and is refused by name; trailing bytes are not */
	fd = fsfix_connect(&fx, 0);
	put_le(body, 3, 2);
	memcpy(body + 2, "a/b", 3);
	put_le(body + 5, 1, 2);
	body[7] = '/';
	cr_assert_eq(call(fd, SFS_OP_SNAP_CREATE, body, 8, msg, sizeof(msg)), -EINVAL);
	cr_assert(strstr(msg, "\"a/b\""), "the refusal names the value: %s", msg);
	put_le(body, 6, 2);
	memcpy(body + 2, "nosuch", 6);
	cr_assert_eq(call(fd, SFS_OP_SNAP_RM, body, 8, msg, sizeof(msg)), -ENOENT);
	cr_assert(strstr(msg, "nosuch"), "%s", msg);
	send_hdr(fd, SFS_PROTO_MAGIC, SFS_PROTO_VERSION, SFS_OP_SNAP_RM, 9, 0);
	send_all(fd, body, 9);
	cr_assert(closed_by_server(fd, 3000), "trailing bytes were accepted");
	close(fd);
	ping_still_works(0);
	fsfix_finish(&fx);
}
