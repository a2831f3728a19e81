/*
 * servcap: see servcap.h.
 *
 * Verifying costs one HMAC-SHA256 of 22 bytes; a client streaming a file
 * sends the same capability with every request on a connection, so the
 * last one verified is remembered per connection and only its expiry,
 * handle and rights are checked again.
 */
#include "servcap.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define REFUSAL_LOG_INTERVAL_MS 1000 /* at most one refusal line a second */

struct servcap {
	int enabled;
	int64_t lifetime_ns;
	struct sfs_cap_key key;
	pthread_mutex_t admin_lock;
	struct sfs_cap admin; /* the metadata server's, reused for half its life */
};

static uint64_t refusals;      /* atomic */
static uint64_t last_log_ms;   /* atomic */
static uint64_t unlogged;      /* atomic: refusals not logged since the last line */

int servcap_open(const struct sfs_conf *conf, const char *kind, struct servcap **out,
		 char *err, size_t errlen)
{
	char path[PATH_MAX];
	int created = 0, rc;
	struct servcap *sc = calloc(1, sizeof(*sc));
	if (!sc) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&sc->admin_lock, NULL);
	sc->enabled = conf->capabilities;
	sc->lifetime_ns = (int64_t)conf->capability_lifetime_ms * 1000000;
	if (!sc->enabled) {
		log_warnx("%s server: capabilities = off: I/O servers check nothing, anyone who "
			  "reaches one reads and writes every file (a sandbox only)", kind);
		*out = sc;
		return 0;
	}
	rc = sfs_cap_key_path(conf->capability_key, conf->path, path, sizeof(path));
	if (rc < 0) {
		snprintf(err, errlen, "capability key: path too long");
		goto fail;
	}
	rc = sfs_cap_key_create(path, &created, err, errlen);
	if (rc == 0 && created)
		log_warnx("%s server: created capability key %s (0600); every server of this "
			  "file system must have the same file", kind, path);
	if (rc == 0)
		rc = sfs_cap_key_load(path, &sc->key, err, errlen);
	if (rc == 0 && sfs_cap_key_prepare(&sc->key) < 0)
		log_warnx("%s server: OpenSSL could not key HMAC-SHA256 once; signing the slow "
			  "way", kind); /* sfs_cap_sign falls back by itself */
	if (rc < 0)
		goto fail;
	*out = sc;
	return 0;
fail:
	servcap_free(sc);
	return rc;
}

void servcap_free(struct servcap *sc)
{
	if (!sc)
		return;
	sfs_cap_key_clear(&sc->key);
	pthread_mutex_destroy(&sc->admin_lock);
	free(sc);
}

void servcap_issue(const struct servcap *sc, uint64_t handle, unsigned rights, uint32_t uid,
		   struct sfs_cap *out)
{
	*out = (struct sfs_cap){ .version = SFS_CAP_VERSION, .rights = (uint8_t)rights,
				 .uid = uid, .handle = handle,
				 .expiry_ns = wall_ns() + sc->lifetime_ns };
	if (sc->enabled)
		sfs_cap_sign(&sc->key, out);
}

void servcap_admin(struct servcap *sc, struct sfs_cap *out)
{
	pthread_mutex_lock(&sc->admin_lock);
	if (sc->admin.expiry_ns - wall_ns() < sc->lifetime_ns / 2)
		servcap_issue(sc, 0, SFS_CAP_ADMIN, 0, &sc->admin);
	*out = sc->admin;
	pthread_mutex_unlock(&sc->admin_lock);
}

/* What op needs of its capability, or 0 for an op that takes none. */
static unsigned op_rights(uint16_t op)
{
	switch (op) {
	case SFS_OP_DF_READ:
	case SFS_OP_DF_GETSIZE:
		return SFS_CAP_READ;
	case SFS_OP_DF_WRITE:
	case SFS_OP_DF_TRUNCATE:
		return SFS_CAP_WRITE;
	default:
		return sfs_op_takes_cap(op) ? SFS_CAP_ADMIN : 0;
	}
}

static void refusal_log(const struct server_req *r, const char *why)
{
	uint64_t now = now_ms();
	uint64_t last = __atomic_load_n(&last_log_ms, __ATOMIC_RELAXED);
	if (now - last < REFUSAL_LOG_INTERVAL_MS ||
	    !__atomic_compare_exchange_n(&last_log_ms, &last, now, 0, __ATOMIC_RELAXED,
					 __ATOMIC_RELAXED)) {
		__atomic_add_fetch(&unlogged, 1, __ATOMIC_RELAXED);
		return;
	}
	uint64_t more = __atomic_exchange_n(&unlogged, 0, __ATOMIC_RELAXED);
	log_warnx("refused %s from %s: %s (%" PRIu64 " refusals in all; %" PRIu64
		  " more not logged since the last line)", sfs_op_name(r->req->op), r->peer, why,
		  __atomic_load_n(&refusals, __ATOMIC_RELAXED), more);
}

int servcap_check(const struct servcap *sc, struct server_req *r, struct servcap_memo *memo)
{
	const struct sfs_cap *cap = &r->req->cap;
	unsigned rights = op_rights(r->req->op);
	char why[SFS_MAX_MSG + 1];
	if (!sc->enabled || rights == 0)
		return 0;
	/* a snapshot's datafile is never written: the I/O server refuses with
	 * EROFS, which says more than EACCES; a capability to read it is
	 * still needed to learn that */
	if ((rights & SFS_CAP_WRITE) && SFS_HANDLE_SNAP(r->req->handle))
		rights = SFS_CAP_READ;
	uint8_t wire[SFS_CAP_BYTES];
	sfs_cap_encode(cap, wire);
	int known = memo && memo->valid && memcmp(memo->wire, wire, sizeof(wire)) == 0;
	/* a remembered capability's signature was right: check the rest */
	int rc = known ? sfs_cap_verify_claims(cap, r->req->handle, rights, wall_ns(), why,
					       sizeof(why))
		       : sfs_cap_verify(&sc->key, cap, r->req->handle, rights, wall_ns(), why,
					sizeof(why));
	if (rc == 0) {
		if (memo && !known) {
			memcpy(memo->wire, wire, sizeof(wire));
			memo->valid = 1;
		}
		return 0;
	}
	__atomic_add_fetch(&refusals, 1, __ATOMIC_RELAXED);
	refusal_log(r, why);
	return server_fail(r, -EACCES, "%s", why);
}

uint64_t servcap_refusals(void)
{
	return __atomic_load_n(&refusals, __ATOMIC_RELAXED);
}
