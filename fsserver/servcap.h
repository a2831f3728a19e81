/*
 * servcap: capabilities as sfsd's servers use them (the format and the
 * signature are common/sfs_cap.h). The metadata server issues them (a
 * client's, with a file's layout; its own admin one for the requests it
 * sends to I/O servers); an I/O server checks one before it serves any
 * request that reads, changes or names a datafile, and refuses with
 * -EACCES otherwise, counting and logging the refusal.
 *
 * With `capabilities = off` in sfs.conf nothing is signed or checked (a
 * sandbox: anyone who reaches an I/O server reads and writes any file);
 * every server says so loudly at start.
 */
#ifndef MIGD_SFSD_SERVCAP_H
#define MIGD_SFSD_SERVCAP_H

#include <stdint.h>

#include "server.h"
#include "sfs_cap.h"
#include "sfs_conf.h"

struct servcap;

/* A verified capability a connection presented last: the same bytes again
 * are not verified again (the signature; expiry, handle and rights always
 * are). Zeroed per connection. */
struct servcap_memo {
	uint8_t wire[SFS_CAP_BYTES];
	int valid;
};

/*
 * The shared key of conf (capability_key, or sfs.key beside sfs.conf): made
 * at 0600 if missing (logged: every server of the file system must share
 * it), refused when others may read it. Nothing with capabilities off.
 * *out is freed with servcap_free. -errno with the reason in err.
 */
int servcap_open(const struct sfs_conf *conf, const char *kind, struct servcap **out,
		 char *err, size_t errlen);
void servcap_free(struct servcap *sc);

/* Metadata server: a client's capability for handle, valid for the
 * configured lifetime. rights: SFS_CAP_READ and/or SFS_CAP_WRITE. */
void servcap_issue(const struct servcap *sc, uint64_t handle, unsigned rights, uint32_t uid,
		   struct sfs_cap *out);
/* Metadata server: its own capability for every handle and op (one
 * signature serves for half the lifetime). */
void servcap_admin(struct servcap *sc, struct sfs_cap *out);

/* I/O server: 0 when r may be served; else -EACCES with the reason in
 * r->reply->msg, counted and logged. */
int servcap_check(const struct servcap *sc, struct server_req *r, struct servcap_memo *memo);

/* Refusals since start (STATS). */
uint64_t servcap_refusals(void);

#endif
