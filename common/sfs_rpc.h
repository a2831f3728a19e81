/*
 * sfs_rpc: frames on a socket, and a simple blocking request/reply
 * connection to one sfs server.
 *
 * Servers use sfs_frame_send/sfs_frame_recv_head to answer requests. The
 * metadata server (to reach I/O servers) and libsfs (for namespace calls)
 * use struct sfs_conn, which connects lazily, applies the config's socket
 * tunables and deadlines, and closes itself after any transport error so
 * the next call starts clean. libsfs's striped data path pipelines frames
 * itself and uses only the frame functions.
 */
#ifndef MIGD_SFS_RPC_H
#define MIGD_SFS_RPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "sfs_conf.h"
#include "sfs_proto.h"

/* Send one frame: header, body, then the bytes of data[] as bulk data. */
int sfs_frame_send(int fd, uint16_t op, uint32_t tag, int32_t status, const uint8_t *body,
		   size_t body_len, const struct iovec *data, int data_cnt, uint64_t deadline_ms);
/* Encode and send a reply (status < 0 sends reply->msg only). */
int sfs_reply_send(int fd, const struct sfs_reply *reply, uint32_t tag, int32_t status,
		   const struct iovec *data, int data_cnt, uint64_t deadline_ms);
/* Receive and validate a header and its body (body: SFS_MAX_BODY_BYTES).
 * The bulk data, hdr->data_len bytes, is left on the socket. Errors: the
 * header decoder's (message in err), or a transport error. */
int sfs_frame_recv_head(int fd, uint32_t max_data_bytes, struct sfs_hdr *hdr, uint8_t *body,
			uint64_t deadline_ms, char *err, size_t errlen);

struct sfs_conn {
	int fd;
	uint32_t next_tag;
	const struct sfs_conf *conf;
	const struct sfs_server_conf *srv;
	uint32_t timeout_ms;  /* of sfs_conn_call; 0 = conf->timeout_ms */
};

void sfs_conn_init(struct sfs_conn *conn, const struct sfs_conf *conf,
		   const struct sfs_server_conf *srv);
/* "server NAME at HOST:PORT": how every message about one server begins
 * (followed by ": what: why"). Into buf, returns buf. */
const char *sfs_server_label(const struct sfs_server_conf *srv, char *buf, size_t len);
/* Connect if not connected. 0, or the connect's own negative errno
 * (-ECONNREFUSED, -EHOSTUNREACH, -ENETUNREACH, -ETIMEDOUT...) with
 * "server NAME at HOST:PORT: connect: why" in err; then nothing was sent. */
int sfs_conn_ensure(struct sfs_conn *conn, char *err, size_t errlen);
void sfs_conn_close(struct sfs_conn *conn);

/*
 * One request and its reply. out[]: bulk data to send (DF_WRITE). in[]
 * (at most 64 entries): where the reply's bulk data lands (DF_READ);
 * *in_len gets its length. Returns:
 *  - the reply's status: 0, or the server's negative errno with its message
 *    in err (the errno's text when the server sent none);
 *  - a connect failure as sfs_conn_ensure gives it (nothing was sent);
 *  - -EIO or -ETIMEDOUT when the server died, misbehaved or did not answer
 *    within timeout_ms after the request was under way (-EPROTONOSUPPORT
 *    when it speaks another protocol version); then the connection is
 *    closed.
 */
int sfs_conn_call(struct sfs_conn *conn, const struct sfs_req *req, const struct iovec *out,
		  int out_cnt, struct sfs_reply *reply, const struct iovec *in, int in_cnt,
		  size_t *in_len, char *err, size_t errlen);

#endif
