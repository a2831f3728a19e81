/*
 * sfs_cap: capabilities, their wire form and their claims (see sfs_cap.h).
 * What needs the servers' key (signing, verifying, the key file) is in
 * sfs_cap_key.c, so that clients, which only carry capabilities, do not
 * link OpenSSL (the guest image holds every library its programs need).
 */
#include "sfs_cap.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

void sfs_cap_encode_signed(const struct sfs_cap *cap, uint8_t out[SFS_CAP_SIGNED_BYTES])
{
	out[0] = cap->version;
	out[1] = cap->rights;
	put_le(out + 2, cap->uid, 4);
	put_le(out + 6, cap->handle, 8);
	put_le(out + 14, (uint64_t)cap->expiry_ns, 8);
}

void sfs_cap_encode(const struct sfs_cap *cap, uint8_t out[SFS_CAP_BYTES])
{
	sfs_cap_encode_signed(cap, out);
	memcpy(out + SFS_CAP_SIGNED_BYTES, cap->mac, SFS_CAP_MAC_BYTES);
}

int sfs_cap_decode(const uint8_t *in, size_t len, struct sfs_cap *out, char *err,
		   size_t errlen)
{
	if (len < SFS_CAP_BYTES) {
		snprintf(err, errlen, "capability: %zu bytes, expected %d", len, SFS_CAP_BYTES);
		return -EBADMSG;
	}
	memset(out, 0, sizeof(*out));
	out->version = in[0];
	out->rights = in[1];
	out->uid = (uint32_t)get_le(in + 2, 4);
	out->handle = get_le(in + 6, 8);
	out->expiry_ns = (int64_t)get_le(in + 14, 8);
	memcpy(out->mac, in + SFS_CAP_SIGNED_BYTES, SFS_CAP_MAC_BYTES);
	if (out->version == 0) {
		for (size_t i = 1; i < SFS_CAP_BYTES; i++)
			if (in[i]) {
				snprintf(err, errlen, "capability: version 0 (none) with byte %zu "
					 "set", i);
				return -EBADMSG;
			}
		return 0;
	}
	if (out->version != SFS_CAP_VERSION) {
		snprintf(err, errlen, "capability: version %u, expected %d", out->version,
			 SFS_CAP_VERSION);
		return -EBADMSG;
	}
	if (out->rights & ~SFS_CAP_RIGHTS_ALL) {
		snprintf(err, errlen, "capability: unknown rights 0x%x", out->rights);
		return -EBADMSG;
	}
	return 0;
}

static const char *rights_text(unsigned rights)
{
	if (rights & SFS_CAP_ADMIN)
		return "admin";
	if ((rights & (SFS_CAP_READ | SFS_CAP_WRITE)) == (SFS_CAP_READ | SFS_CAP_WRITE))
		return "read-write";
	if (rights & SFS_CAP_WRITE)
		return "write-only";
	if (rights & SFS_CAP_READ)
		return "read-only";
	return "no rights";
}

int sfs_cap_verify_claims(const struct sfs_cap *cap, uint64_t handle, unsigned rights,
			  int64_t now_ns, char *err, size_t errlen)
{
	if (cap->version == 0) {
		snprintf(err, errlen, "no capability (ask the metadata server)");
		return -EACCES;
	}
	if (now_ns >= cap->expiry_ns) {
		snprintf(err, errlen, SFS_CAP_EXPIRED_MSG " %" PRId64 " ms ago (handle 0x%" PRIx64
			 ")", (now_ns - cap->expiry_ns) / 1000000, cap->handle);
		return -EACCES;
	}
	if (cap->rights & SFS_CAP_ADMIN)
		return 0;
	if (rights & SFS_CAP_ADMIN) {
		snprintf(err, errlen, "capability for handle 0x%" PRIx64 " is %s: only the "
			 "metadata server's may do this", cap->handle, rights_text(cap->rights));
		return -EACCES;
	}
	if (cap->handle != handle) {
		snprintf(err, errlen, "capability for handle 0x%" PRIx64 " used for 0x%" PRIx64,
			 cap->handle, handle);
		return -EACCES;
	}
	if ((rights & cap->rights) != rights) {
		snprintf(err, errlen, "capability for handle 0x%" PRIx64 " is %s, the request "
			 "needs %s", handle, rights_text(cap->rights), rights_text(rights));
		return -EACCES;
	}
	return 0;
}

int sfs_cap_key_path(const char *capability_key, const char *conf_path, char *buf,
		     size_t len)
{
	const char *slash = conf_path ? strrchr(conf_path, '/') : NULL;
	int rc;
	if (capability_key && capability_key[0])
		rc = snprintf_checked(buf, len, "%s", capability_key);
	else if (!slash)
		rc = snprintf_checked(buf, len, "sfs.key");
	else
		rc = snprintf_checked(buf, len, "%.*s/sfs.key", (int)(slash - conf_path),
				      conf_path);
	return rc < 0 ? rc : 0;
}
