/*
 * auth: who is asking sfsd, decided once per connection from its HELLO.
 *
 * With auth = munge the identity is what munged decoded from the
 * credential, never a field of a message: uid and gid, then root squashed
 * to nobody unless the peer is in root_hosts, then the uid's groups as
 * this server resolves them (getgrouplist of the uid's name here, not the
 * client's idea of them). With auth = none every connection is "trusted":
 * no permission checks, owners from message fields, as before there was
 * authentication.
 */
#ifndef MIGD_SFSD_AUTH_H
#define MIGD_SFSD_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sfs_auth.h"
#include "sfs_conf.h"
#include "sfs_proto.h"

#define AUTH_NOBODY 65534u
#define AUTH_MAX_GROUPS 64

struct sfs_identity {
	int known;        /* a HELLO was accepted (or auth = none) */
	int trusted;      /* auth = none: every check passes */
	uint32_t uid, gid;
	unsigned n_groups; /* supplementary groups, gid among them */
	uint32_t groups[AUTH_MAX_GROUPS];
};

struct auth;

/* The server's authenticator: auth mode, munged's socket, root_hosts
 * (already validated by the config). NULL only when out of memory. */
struct auth *auth_new(const struct sfs_conf *conf);
void auth_free(struct auth *a);

/* Identity of a connection before any HELLO: known and trusted with
 * auth = none, unknown otherwise. */
void auth_conn_init(const struct auth *a, struct sfs_identity *id);
/* 1 when a request other than HELLO may be served on this connection. */
int auth_conn_ready(const struct auth *a, const struct sfs_identity *id);

/*
 * Decode a HELLO body from peer and fill id. 0, or -EACCES (or -EBADMSG
 * for a body that does not decode) with the reason in err, which the
 * server logs once and sends back before it closes the connection.
 */
int auth_hello(const struct auth *a, const struct sockaddr *peer, const uint8_t *body,
	       size_t len, struct sfs_identity *id, char *err, size_t errlen);

#endif
