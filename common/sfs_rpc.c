/* sfs_rpc: see sfs_rpc.h. */
#include "sfs_rpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net.h"
#include "sfs_auth.h"
#include "util.h"

int sfs_frame_send(int fd, uint16_t op, uint32_t tag, int32_t status, const uint8_t *body,
		   size_t body_len, const struct iovec *data, int data_cnt, uint64_t deadline_ms)
{
	struct iovec stack_iov[66];
	struct iovec *iov = stack_iov;
	uint8_t hdrbuf[SFS_HDR_BYTES];
	uint64_t data_len = 0;
	int rc;

	for (int i = 0; i < data_cnt; i++)
		data_len += data[i].iov_len;
	if (data_len > UINT32_MAX || body_len > SFS_MAX_BODY_BYTES)
		return -EMSGSIZE;
	if (data_cnt + 2 > (int)ARRAY_SIZE(stack_iov)) {
		iov = malloc(sizeof(*iov) * (size_t)(data_cnt + 2));
		if (!iov)
			return -ENOMEM;
	}
	struct sfs_hdr hdr = { .magic = SFS_PROTO_MAGIC, .version = SFS_PROTO_VERSION,
			       .op = op, .tag = tag, .status = status,
			       .body_len = (uint32_t)body_len, .data_len = (uint32_t)data_len };
	sfs_hdr_encode(&hdr, hdrbuf);
	iov[0] = (struct iovec){ hdrbuf, SFS_HDR_BYTES };
	iov[1] = (struct iovec){ (void *)body, body_len };
	if (data_cnt)
		memcpy(&iov[2], data, sizeof(*iov) * (size_t)data_cnt);
	rc = net_sendv_all(fd, iov, data_cnt + 2, deadline_ms);
	if (iov != stack_iov)
		free(iov);
	return rc;
}

int sfs_reply_send(int fd, const struct sfs_reply *reply, uint32_t tag, int32_t status,
		   const struct iovec *data, int data_cnt, uint64_t deadline_ms)
{
	uint8_t body[SFS_MAX_BODY_BYTES];
	size_t len;
	int rc = sfs_reply_encode(reply, status, body, sizeof(body), &len);
	if (rc < 0)
		return rc;
	return sfs_frame_send(fd, reply->op, tag, status, body, len, status < 0 ? NULL : data,
			      status < 0 ? 0 : data_cnt, deadline_ms);
}

int sfs_frame_recv_head(int fd, uint32_t max_data_bytes, struct sfs_hdr *hdr, uint8_t *body,
			uint64_t deadline_ms, char *err, size_t errlen)
{
	uint8_t hdrbuf[SFS_HDR_BYTES];
	int rc = net_recv_all(fd, hdrbuf, sizeof(hdrbuf), deadline_ms);
	if (rc < 0) {
		snprintf(err, errlen, "receiving a frame header: %s", strerror(-rc));
		return rc;
	}
	rc = sfs_hdr_decode(hdrbuf, max_data_bytes, hdr, err, errlen);
	if (rc < 0)
		return rc;
	rc = net_recv_all(fd, body, hdr->body_len, deadline_ms);
	if (rc < 0) {
		snprintf(err, errlen, "receiving a %u-byte %s body: %s", hdr->body_len,
			 sfs_op_name(hdr->op), strerror(-rc));
		return rc;
	}
	return 0;
}

void sfs_conn_init(struct sfs_conn *conn, const struct sfs_conf *conf,
		   const struct sfs_server_conf *srv)
{
	conn->fd = -1;
	conn->next_tag = 1;
	conn->conf = conf;
	conn->srv = srv;
	conn->timeout_ms = 0;
}

const char *sfs_server_label(const struct sfs_server_conf *srv, char *buf, size_t len)
{
	char addr[160];
	snprintf(buf, len, "server %s at %s", srv->name,
		 sfs_server_address(srv, addr, sizeof(addr)));
	return buf;
}

int sfs_conn_ensure(struct sfs_conn *conn, char *err, size_t errlen)
{
	char label[256];
	if (conn->fd >= 0)
		return 0;
	int fd = net_connect(conn->srv->host, conn->srv->port, conn->conf->connect_timeout_ms);
	if (fd < 0) {
		snprintf(err, errlen, "%s: connect: %s",
			 sfs_server_label(conn->srv, label, sizeof(label)),
			 fd == -ETIMEDOUT ? "no answer within connect_timeout_ms" : strerror(-fd));
		return fd;
	}
	net_tune(fd, conn->conf->socket_sndbuf_bytes, conn->conf->socket_rcvbuf_bytes,
		 conn->conf->tcp_nodelay);
	char why[512];
	int rc = sfs_auth_hello(fd, conn->conf, now_ms() + conn->conf->timeout_ms, why,
				sizeof(why));
	if (rc < 0) {
		close(fd);
		snprintf(err, errlen, "%s: %s", sfs_server_label(conn->srv, label, sizeof(label)),
			 why);
		return rc;
	}
	conn->fd = fd;
	return 0;
}

void sfs_conn_close(struct sfs_conn *conn)
{
	if (conn->fd >= 0)
		close(conn->fd);
	conn->fd = -1;
}

/* A transport failure mid-request: close, and say which server. */
static int conn_fail(struct sfs_conn *conn, int rc, const char *what, char *err, size_t errlen)
{
	char label[256];
	snprintf(err, errlen, "%s: %s: %s", sfs_server_label(conn->srv, label, sizeof(label)),
		 what, rc == -ETIMEDOUT ? "no answer within the timeout" : strerror(-rc));
	sfs_conn_close(conn);
	return rc == -ETIMEDOUT || rc == -EPROTONOSUPPORT ? rc : -EIO;
}

/* The reply's bulk data, scattered into in[]. 0 or a transport error. */
static int conn_recv_data(struct sfs_conn *conn, uint32_t data_len, const struct iovec *in,
			  int in_cnt, uint64_t deadline_ms, char *err, size_t errlen)
{
	struct iovec iov[64];
	int cnt = 0;
	size_t want = data_len;
	for (int i = 0; i < in_cnt && want && cnt < 64; i++) {
		size_t n = in[i].iov_len < want ? in[i].iov_len : want;
		iov[cnt++] = (struct iovec){ in[i].iov_base, n };
		want -= n;
	}
	if (want)
		return conn_fail(conn, -EMSGSIZE, "reply data larger than the buffer", err, errlen);
	int rc = net_recvv_all(conn->fd, iov, cnt, deadline_ms);
	if (rc < 0)
		return conn_fail(conn, rc, "receiving data", err, errlen);
	return 0;
}

/* Header and body of the reply to tag, decoded into reply. */
static int conn_recv_reply(struct sfs_conn *conn, const struct sfs_req *req, uint32_t tag,
			   size_t room, uint8_t *body, uint64_t deadline_ms, struct sfs_hdr *hdr,
			   struct sfs_reply *reply, char *err, size_t errlen)
{
	char why[256];
	int rc = sfs_frame_recv_head(conn->fd, (uint32_t)(room < UINT32_MAX ? room : UINT32_MAX),
				     hdr, body, deadline_ms, why, sizeof(why));
	if (rc < 0)
		return conn_fail(conn, rc, why, err, errlen);
	if (hdr->tag != tag || hdr->op != req->op) {
		snprintf(why, sizeof(why), "reply tag %u op %s does not match request %u %s",
			 hdr->tag, sfs_op_name(hdr->op), tag, sfs_op_name(req->op));
		return conn_fail(conn, -EBADMSG, why, err, errlen);
	}
	rc = sfs_reply_decode(hdr->op, hdr->status, body, hdr->body_len, reply, why, sizeof(why));
	if (rc < 0)
		return conn_fail(conn, rc, why, err, errlen);
	return 0;
}

int sfs_conn_call(struct sfs_conn *conn, const struct sfs_req *req, const struct iovec *out,
		  int out_cnt, struct sfs_reply *reply, const struct iovec *in, int in_cnt,
		  size_t *in_len, char *err, size_t errlen)
{
	struct sfs_hdr hdr;
	size_t len, room = 0;
	int rc = sfs_conn_ensure(conn, err, errlen);
	if (rc < 0)
		return rc;
	uint8_t *body = malloc(SFS_MAX_BODY_BYTES);
	if (!body) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = sfs_req_encode(req, body, SFS_MAX_BODY_BYTES, &len);
	if (rc < 0) {
		snprintf(err, errlen, "%s: request does not encode: %s", sfs_op_name(req->op),
			 strerror(-rc));
		goto out;
	}
	uint64_t deadline = now_ms() + (conn->timeout_ms ? conn->timeout_ms : conn->conf->timeout_ms);
	uint32_t tag = conn->next_tag++;
	rc = sfs_frame_send(conn->fd, req->op, tag, 0, body, len, out, out_cnt, deadline);
	if (rc < 0) {
		rc = conn_fail(conn, rc, "sending", err, errlen);
		goto out;
	}
	for (int i = 0; i < in_cnt; i++)
		room += in[i].iov_len;
	rc = conn_recv_reply(conn, req, tag, room, body, deadline, &hdr, reply, err, errlen);
	if (rc == 0 && hdr.data_len)
		rc = conn_recv_data(conn, hdr.data_len, in, in_cnt, deadline, err, errlen);
	if (rc < 0)
		goto out;
	if (in_len)
		*in_len = hdr.data_len;
	rc = hdr.status;
	if (rc < 0 && reply->msg[0])
		snprintf(err, errlen, "%s", reply->msg);
	else if (rc < 0)
		errno_text(-rc, err, errlen);
out:
	free(body);
	return rc;
}
