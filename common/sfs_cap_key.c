/*
 * sfs_cap_key: the servers' shared key and what it does (see sfs_cap.h):
 * signing and verifying capabilities, loading and creating the key file.
 * Servers only; clients carry capabilities without looking inside.
 *
 * HMAC-SHA256 comes from OpenSSL; the comparison of signatures is
 * CRYPTO_memcmp, so timing does not tell a forger how many bytes were
 * right.
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
	sfs_cap_encode_signed(cap, msg);
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
