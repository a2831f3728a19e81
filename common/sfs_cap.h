/*
 * sfs_cap: capabilities, what an I/O server asks for before it touches a
 * datafile (OrangeFS's signed capabilities). The metadata server decides
 * who may read or write a file; an I/O server cannot, since it knows no
 * names, owners or modes. So the metadata server hands the client a
 * capability with the file's layout, signed with a key that only the
 * servers of the file system hold, and an I/O server checks the signature,
 * the expiry, the handle and the rights before anything else. Reaching an
 * I/O server directly, without the metadata server's word, gives nothing.
 *
 * Wire format (SFS_CAP_BYTES, integers little-endian), a field of the
 * request bodies of the I/O-server ops that name a datafile:
 *   u8 version (SFS_CAP_VERSION; 0 = no capability, every other byte 0)
 *   u8 rights (SFS_CAP_READ | SFS_CAP_WRITE, or SFS_CAP_ADMIN)
 *   u32 uid (whom the metadata server issued it to; for log lines)
 *   u64 handle (the file's fid or snapshot handle; 0 with SFS_CAP_ADMIN)
 *   i64 expiry_ns (CLOCK_REALTIME of the metadata server)
 *   32 bytes mac: HMAC-SHA256 of the 22 bytes above under the shared key
 *
 * SFS_CAP_ADMIN is the metadata server's own: any handle, and the ops only
 * it sends (DF_CREATE, DF_REMOVE, the snapshot barrier).
 */
#ifndef MIGD_SFS_CAP_H
#define MIGD_SFS_CAP_H

#include <stddef.h>
#include <stdint.h>

#define SFS_CAP_VERSION 1
#define SFS_CAP_SIGNED_BYTES 22
#define SFS_CAP_MAC_BYTES 32
#define SFS_CAP_BYTES (SFS_CAP_SIGNED_BYTES + SFS_CAP_MAC_BYTES)
#define SFS_CAP_KEY_BYTES 32

#define SFS_CAP_READ 0x1u
#define SFS_CAP_WRITE 0x2u
#define SFS_CAP_ADMIN 0x4u
#define SFS_CAP_RIGHTS_ALL 0x7u

struct sfs_cap {
	uint8_t version; /* 0: none was sent */
	uint8_t rights;
	uint32_t uid;
	uint64_t handle;
	int64_t expiry_ns;
	uint8_t mac[SFS_CAP_MAC_BYTES];
};

struct sfs_cap_key {
	uint8_t bytes[SFS_CAP_KEY_BYTES];
	void *hmac; /* keyed HMAC-SHA256 (sfs_cap_key_prepare), or NULL */
};

/* Key the HMAC once, so that each signature costs a copy of the keyed
 * state instead of a fresh key schedule (about half). Optional: a zeroed
 * hmac signs the slow way. -ENOMEM, or -EIO from OpenSSL. */
int sfs_cap_key_prepare(struct sfs_cap_key *key);
/* Forget the key and free what prepare made. */
void sfs_cap_key_clear(struct sfs_cap_key *key);

/* Codec: encode never fails. decode reads exactly SFS_CAP_BYTES from in
 * (len must be at least that): -EBADMSG with the reason in err for an
 * unknown version, unknown rights bits, or a "none" that is not all zero. */
void sfs_cap_encode(const struct sfs_cap *cap, uint8_t out[SFS_CAP_BYTES]);
int sfs_cap_decode(const uint8_t *in, size_t len, struct sfs_cap *out, char *err,
		   size_t errlen);

/* Fill cap->mac (the other fields set, version SFS_CAP_VERSION). */
void sfs_cap_sign(const struct sfs_cap_key *key, struct sfs_cap *cap);

/*
 * Whether cap lets its bearer do what needs `rights` on `handle` at
 * now_ns: 0, or -EACCES with the reason in err ("no capability", "bad
 * signature", "expired 3 s ago", "for handle 0x.. not 0x..", "read-only").
 * An SFS_CAP_ADMIN capability covers every handle and right.
 */
int sfs_cap_verify(const struct sfs_cap_key *key, const struct sfs_cap *cap, uint64_t handle,
		   unsigned rights, int64_t now_ns, char *err, size_t errlen);

/* The same without the signature: for a capability whose signature was
 * verified before. */
int sfs_cap_verify_claims(const struct sfs_cap *cap, uint64_t handle, unsigned rights,
			  int64_t now_ns, char *err, size_t errlen);

/* The message of an expired capability begins with this (libsfs renews on
 * it; the others it reports). */
#define SFS_CAP_EXPIRED_MSG "capability expired"

/*
 * The shared key: 64 hex digits in a file of its own. load refuses a file
 * that others may read or write (mode & 077) or that is not 64 hex digits
 * (an optional newline after them), with the path and why in err.
 * create writes a fresh random key at mode 0600 if path does not exist
 * (atomically: a concurrent creator's key wins and is not overwritten);
 * *created says whether this call made it.
 */
int sfs_cap_key_load(const char *path, struct sfs_cap_key *key, char *err, size_t errlen);
int sfs_cap_key_create(const char *path, int *created, char *err, size_t errlen);

/* The key file of a configuration: capability_key if set, else sfs.key
 * beside the configuration file (conf_path). Into buf: 0, or
 * -ENAMETOOLONG. */
int sfs_cap_key_path(const char *capability_key, const char *conf_path, char *buf,
		     size_t len);

#endif
