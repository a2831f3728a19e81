/*
 * sfs_auth: see sfs_auth.h.
 *
 * One credential per connection, encoded just before it is sent: munged
 * refuses to decode a credential twice (EMUNGE_CRED_REPLAYED), so a
 * credential cannot be shared between connections, and one captured on
 * the wire is worth nothing once the connection it opened has used it.
 *
 * Each credential carries a payload of its own (random bytes and the
 * time in ns), which the server ignores: a guest restored from a
 * checkpoint runs its munged from the state it had then, PRNG and clock
 * included, and without the payload it encoded credentials byte for byte
 * equal to ones it had already sent, which munged refuses as replays.
 */
#include "sfs_auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <munge.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "sfs_rpc.h"
#include "util.h"

/* A MUNGE credential of the calling process from munged at socket_path. */
static int munge_credential(const char *socket_path, char **cred, char *err, size_t errlen)
{
	munge_ctx_t ctx = munge_ctx_create();
	if (!ctx) {
		snprintf(err, errlen, "munge: out of memory");
		return -ENOMEM;
	}
	munge_err_t e = munge_ctx_set(ctx, MUNGE_OPT_SOCKET, socket_path);
	unsigned char nonce[24] = { 0 };
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	memcpy(nonce, &ns, sizeof(ns));
	if (getrandom(nonce + sizeof(ns), sizeof(nonce) - sizeof(ns), GRND_NONBLOCK) < 0) {
		/* no entropy yet (early boot): the time alone still differs */
	}
	if (e == EMUNGE_SUCCESS)
		e = munge_encode(cred, ctx, nonce, sizeof(nonce));
	if (e != EMUNGE_SUCCESS)
		snprintf(err, errlen, "munge: cannot get a credential from munged (socket %s): %s",
			 socket_path, munge_ctx_strerror(ctx) ? munge_ctx_strerror(ctx)
							      : munge_strerror(e));
	munge_ctx_destroy(ctx);
	return e == EMUNGE_SUCCESS ? 0 : -EACCES;
}

/* The server's answer to our HELLO. */
static int hello_answer(int fd, uint64_t deadline_ms, uint8_t *body, char *err, size_t errlen)
{
	struct sfs_hdr hdr;
	struct sfs_reply *reply = NULL;
	struct sfs_hello h;
	char why[256];
	int rc = sfs_frame_recv_head(fd, 0, &hdr, body, deadline_ms, why, sizeof(why));
	if (rc < 0) {
		snprintf(err, errlen, "HELLO: %s", rc == -ECONNRESET ? "the server closed the "
			 "connection (does it use another auth mechanism?)" : why);
		return rc == -EPROTONOSUPPORT || rc == -ETIMEDOUT ? rc : -EIO;
	}
	if (hdr.op != SFS_OP_HELLO) {
		snprintf(err, errlen, "HELLO: the server answered with %s", sfs_op_name(hdr.op));
		return -EBADMSG;
	}
	if (hdr.status < 0) {
		reply = malloc(sizeof(*reply));
		if (!reply)
			return -ENOMEM;
		rc = sfs_reply_decode(SFS_OP_HELLO, hdr.status, body, hdr.body_len, reply, why,
				      sizeof(why));
		snprintf(err, errlen, "authentication refused: %s",
			 rc == 0 && reply->msg[0] ? reply->msg : strerror(-hdr.status));
		free(reply);
		return hdr.status == -EACCES || hdr.status == -EPERM ? hdr.status : -EACCES;
	}
	rc = sfs_hello_reply_decode(body, hdr.body_len, &h, why, sizeof(why));
	if (rc < 0)
		snprintf(err, errlen, "%s", why);
	return rc;
}

int sfs_auth_hello(int fd, const struct sfs_conf *conf, uint64_t deadline_ms, char *err,
		   size_t errlen)
{
	if (conf->auth == SFS_AUTH_NONE)
		return 0;
	struct sfs_hello *h = calloc(1, sizeof(*h));
	uint8_t *body = malloc(SFS_MAX_BODY_BYTES);
	char *cred = NULL;
	size_t len;
	int rc = -ENOMEM;
	if (!h || !body) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = munge_credential(conf->munge_socket, &cred, err, errlen);
	if (rc < 0)
		goto out;
	h->mech = SFS_AUTH_MUNGE;
	if (strlen(cred) > SFS_MAX_CRED) {
		snprintf(err, errlen, "munge: credential of %zu bytes (at most %d)", strlen(cred),
			 SFS_MAX_CRED);
		rc = -EMSGSIZE;
		goto out;
	}
	strcpy(h->cred, cred);
	rc = sfs_hello_encode(h, body, SFS_MAX_BODY_BYTES, &len);
	if (rc == 0)
		rc = sfs_frame_send(fd, SFS_OP_HELLO, 0, 0, body, len, NULL, 0, deadline_ms);
	if (rc < 0) {
		snprintf(err, errlen, "HELLO: sending: %s", strerror(-rc));
		goto out;
	}
	rc = hello_answer(fd, deadline_ms, body, err, errlen);
out:
	free(cred);
	free(body);
	free(h);
	return rc;
}

/* --- lists of hosts and networks ------------------------------------------ */

static int net_parse(const char *item, struct sfs_net *net)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(item, '/');
	size_t hostlen = slash ? (size_t)(slash - item) : strlen(item);
	if (hostlen == 0 || hostlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, item, hostlen);
	host[hostlen] = '\0';
	memset(net, 0, sizeof(*net));
	unsigned max_bits;
	if (inet_pton(AF_INET, host, net->addr) == 1) {
		net->family = AF_INET;
		max_bits = 32;
	} else if (inet_pton(AF_INET6, host, net->addr) == 1) {
		net->family = AF_INET6;
		max_bits = 128;
	} else {
		return -EINVAL;
	}
	uint64_t bits = max_bits;
	if (slash && parse_u64(slash + 1, 0, max_bits, &bits) < 0)
		return -EINVAL;
	net->prefix_bits = (unsigned)bits;
	return 0;
}

int sfs_netlist_parse(const char *text, struct sfs_netlist *out, char *err, size_t errlen)
{
	char item[128];
	memset(out, 0, sizeof(*out));
	const char *p = text;
	for (;;) {
		p += strspn(p, ", \t");
		if (*p == '\0')
			return 0;
		size_t n = strcspn(p, ", \t");
		snprintf(item, sizeof(item), "%.*s", (int)(n < sizeof(item) ? n : sizeof(item) - 1),
			 p);
		if (n >= sizeof(item) || out->n == SFS_NETLIST_MAX ||
		    net_parse(item, &out->nets[out->n]) < 0) {
			snprintf(err, errlen, "\"%s\": %s", item,
				 out->n == SFS_NETLIST_MAX ? "more than 32 hosts and networks"
							   : "expected an address or ADDRESS/BITS");
			return -EINVAL;
		}
		out->n++;
		p += n;
	}
}

static int prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned bytes = bits / 8, rest = bits % 8;
	if (memcmp(a, b, bytes) != 0)
		return 0;
	if (rest == 0)
		return 1;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

int sfs_netlist_match(const struct sfs_netlist *list, const struct sockaddr *sa)
{
	static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	uint8_t v4[4], v6[16];
	int has_v4 = 0, has_v6 = 0;
	if (sa->sa_family == AF_INET) {
		memcpy(v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		has_v4 = 1;
	} else if (sa->sa_family == AF_INET6) {
		memcpy(v6, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		has_v6 = 1;
		if (memcmp(v6, v4_mapped, 12) == 0) {
			memcpy(v4, v6 + 12, 4);
			has_v4 = 1;
		}
	}
	for (unsigned i = 0; i < list->n; i++) {
		const struct sfs_net *n = &list->nets[i];
		if ((n->family == AF_INET && has_v4 && prefix_equal(n->addr, v4, n->prefix_bits)) ||
		    (n->family == AF_INET6 && has_v6 && prefix_equal(n->addr, v6, n->prefix_bits)))
			return 1;
	}
	return 0;
}
