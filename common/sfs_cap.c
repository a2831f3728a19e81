/*
 * sfs_cap: the capability codec (see sfs_cap.h), all that clients need.
 * Signing, checking and the key are sfs_cap_key.c's, apart, so that
 * programs that only carry capabilities (libsfs and everything in a
 * guest) do not link OpenSSL.
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

