/*
 * sfs_cap: capabilities and the servers' shared key (see sfs_cap.h).
 *
 * HMAC-SHA256 comes from OpenSSL's one-shot HMAC(); the comparison of
 * signatures is CRYPTO_memcmp, so timing does not tell a forger how many
 * bytes were right.
 */
#include "sfs_cap.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
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

static void encode_signed(const struct sfs_cap *cap, uint8_t out[SFS_CAP_SIGNED_BYTES])
{
	out[0] = cap->version;
	out[1] = cap->rights;
	put_le(out + 2, cap->uid, 4);
	put_le(out + 6, cap->handle, 8);
	put_le(out + 14, (uint64_t)cap->expiry_ns, 8);
}

void sfs_cap_encode(const struct sfs_cap *cap, uint8_t out[SFS_CAP_BYTES])
{
	encode_signed(cap, out);
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

int sfs_cap_key_prepare(struct sfs_cap_key *key)
{
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	EVP_MAC_free(mac); /* ctx holds its own reference */
	if (!ctx)
		return -ENOMEM;
	if (!EVP_MAC_init(ctx, key->bytes, SFS_CAP_KEY_BYTES, params)) {
		EVP_MAC_CTX_free(ctx);
		return -EIO;
	}
	key->hmac = ctx;
	return 0;
}

void sfs_cap_key_clear(struct sfs_cap_key *key)
{
	EVP_MAC_CTX_free(key->hmac);
	OPENSSL_cleanse(key, sizeof(*key));
}

/* With a prepared key: a copy of the keyed state (only read, so threads
 * may share the key). 0 when OpenSSL failed. */
static int mac_prepared(const struct sfs_cap_key *key, const uint8_t *msg, size_t len,
			uint8_t mac[SFS_CAP_MAC_BYTES])
{
	size_t mac_len = 0;
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(key->hmac);
	int ok = ctx && EVP_MAC_update(ctx, msg, len) &&
		 EVP_MAC_final(ctx, mac, &mac_len, SFS_CAP_MAC_BYTES) &&
		 mac_len == SFS_CAP_MAC_BYTES;
	EVP_MAC_CTX_free(ctx);
	return ok;
}

static void cap_mac(const struct sfs_cap_key *key, const struct sfs_cap *cap,
		    uint8_t mac[SFS_CAP_MAC_BYTES])
{
	uint8_t msg[SFS_CAP_SIGNED_BYTES];
	unsigned int mac_len = SFS_CAP_MAC_BYTES;
	encode_signed(cap, msg);
	int ok = key->hmac ? mac_prepared(key, msg, sizeof(msg), mac)
			   : HMAC(EVP_sha256(), key->bytes, SFS_CAP_KEY_BYTES, msg, sizeof(msg),
				  mac, &mac_len) != NULL;
	if (!ok)
		memset(mac, 0, SFS_CAP_MAC_BYTES); /* verifies against nothing real */
}

void sfs_cap_sign(const struct sfs_cap_key *key, struct sfs_cap *cap)
{
	cap_mac(key, cap, cap->mac);
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

int sfs_cap_verify(const struct sfs_cap_key *key, const struct sfs_cap *cap, uint64_t handle,
		   unsigned rights, int64_t now_ns, char *err, size_t errlen)
{
	uint8_t mac[SFS_CAP_MAC_BYTES];
	if (cap->version == 0)
		return sfs_cap_verify_claims(cap, handle, rights, now_ns, err, errlen);
	cap_mac(key, cap, mac);
	if (CRYPTO_memcmp(mac, cap->mac, sizeof(mac)) != 0) {
		snprintf(err, errlen, "capability for handle 0x%" PRIx64 ": bad signature "
			 "(not issued by this file system's metadata server)", cap->handle);
		return -EACCES;
	}
	return sfs_cap_verify_claims(cap, handle, rights, now_ns, err, errlen);
}

static int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int sfs_cap_key_load(const char *path, struct sfs_cap_key *key, char *err, size_t errlen)
{
	char text[2 * SFS_CAP_KEY_BYTES + 3];
	struct stat st;
	int rc = 0;
	memset(key, 0, sizeof(*key)); /* not prepared */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "capability key %s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "capability key %s: not a regular file", path);
		rc = -EINVAL;
		goto out;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen, "capability key %s: mode %04o lets others read or write it "
			 "(chmod 600 %s)", path, (unsigned)(st.st_mode & 07777), path);
		rc = -EPERM;
		goto out;
	}
	ssize_t n = read(fd, text, sizeof(text));
	if (n == 2 * SFS_CAP_KEY_BYTES + 1 && text[n - 1] == '\n')
		n--;
	if (n != 2 * SFS_CAP_KEY_BYTES) {
		snprintf(err, errlen, "capability key %s: expected %d hex digits", path,
			 2 * SFS_CAP_KEY_BYTES);
		rc = -EINVAL;
		goto out;
	}
	for (int i = 0; i < SFS_CAP_KEY_BYTES; i++) {
		int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			snprintf(err, errlen, "capability key %s: byte %d is not a hex digit", path,
				 2 * i + (hi < 0 ? 0 : 1));
			rc = -EINVAL;
			goto out;
		}
		key->bytes[i] = (uint8_t)(hi << 4 | lo);
	}
out:
	close(fd);
	return rc;
}

int sfs_cap_key_create(const char *path, int *created, char *err, size_t errlen)
{
	uint8_t raw[SFS_CAP_KEY_BYTES];
	char text[2 * SFS_CAP_KEY_BYTES + 2], tmp[1100];
	*created = 0;
	if (access(path, F_OK) == 0)
		return 0;
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		snprintf(err, errlen, "capability key %s: no random bytes", path);
		return -EIO;
	}
	for (int i = 0; i < SFS_CAP_KEY_BYTES; i++)
		snprintf(text + 2 * i, 3, "%02x", raw[i]);
	text[2 * SFS_CAP_KEY_BYTES] = '\n';
	if (snprintf_checked(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) < 0) {
		snprintf(err, errlen, "capability key %s: path too long", path);
		return -ENAMETOOLONG;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "capability key %s: %s", tmp, strerror(errno));
		return -errno;
	}
	int rc = write_full(fd, text, 2 * SFS_CAP_KEY_BYTES + 1);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	/* link, not rename: a key another process made meanwhile stays */
	if (rc == 0) {
		if (link(tmp, path) == 0)
			*created = 1;
		else if (errno != EEXIST)
			rc = -errno;
	}
	unlink(tmp);
	if (rc < 0)
		snprintf(err, errlen, "capability key %s: %s", path, strerror(-rc));
	return rc;
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
