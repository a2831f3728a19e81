/*
 * sfs_cap: the capability codec, signatures and their checks, and the
 * shared key file (what is refused and why).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sfs_cap.h"

static char err[512];
static const struct sfs_cap_key key = { .bytes = { 1, 2, 3, 4 } };

static struct sfs_cap signed_cap(uint64_t handle, unsigned rights, int64_t expiry_ns)
{
	struct sfs_cap c = { .version = SFS_CAP_VERSION, .rights = (uint8_t)rights, .uid = 1001,
			     .handle = handle, .expiry_ns = expiry_ns };
	sfs_cap_sign(&key, &c);
	return c;
}

Test(cap, round_trips_and_refuses_what_it_cannot_be)
{
	uint8_t wire[SFS_CAP_BYTES];
	struct sfs_cap in = signed_cap(0x1234567890ull, SFS_CAP_READ, -5), out;
	sfs_cap_encode(&in, wire);
	cr_assert_eq(sfs_cap_decode(wire, sizeof(wire), &out, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(out.handle, in.handle);
	cr_assert_eq(out.uid, 1001);
	cr_assert_eq(out.expiry_ns, -5);
	cr_assert_eq(memcmp(out.mac, in.mac, SFS_CAP_MAC_BYTES), 0);
	cr_assert_eq(sfs_cap_decode(wire, SFS_CAP_BYTES - 1, &out, err, sizeof(err)), -EBADMSG);
	wire[0] = 2;
	cr_assert_eq(sfs_cap_decode(wire, sizeof(wire), &out, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "version 2"), "%s", err);
	wire[0] = SFS_CAP_VERSION;
	wire[1] = 0x10;
	cr_assert_eq(sfs_cap_decode(wire, sizeof(wire), &out, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "rights 0x10"), "%s", err);
	memset(wire, 0, sizeof(wire)); /* none: all zero, or nothing */
	cr_assert_eq(sfs_cap_decode(wire, sizeof(wire), &out, err, sizeof(err)), 0);
	cr_assert_eq(out.version, 0);
	wire[30] = 1;
	cr_assert_eq(sfs_cap_decode(wire, sizeof(wire), &out, err, sizeof(err)), -EBADMSG);
}

Test(cap, verify_checks_signature_expiry_handle_and_rights)
{
	struct sfs_cap c = signed_cap(7, SFS_CAP_READ, 1000);
	cr_assert_eq(sfs_cap_verify(&key, &c, 7, SFS_CAP_READ, 999, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(sfs_cap_verify(&key, &c, 7, SFS_CAP_READ, 1000, err, sizeof(err)), -EACCES);
	cr_assert(strstr(err, SFS_CAP_EXPIRED_MSG), "%s", err);
	cr_assert_eq(sfs_cap_verify(&key, &c, 8, SFS_CAP_READ, 0, err, sizeof(err)), -EACCES);
	cr_assert(strstr(err, "used for 0x8"), "%s", err);
	cr_assert_eq(sfs_cap_verify(&key, &c, 7, SFS_CAP_WRITE, 0, err, sizeof(err)), -EACCES);
	cr_assert(strstr(err, "read-only"), "%s", err);
	cr_assert_eq(sfs_cap_verify(&key, &c, 7, SFS_CAP_ADMIN, 0, err, sizeof(err)), -EACCES);
	struct sfs_cap_key other = key;
	other.bytes[31] ^= 1;
	cr_assert_eq(sfs_cap_verify(&other, &c, 7, SFS_CAP_READ, 0, err, sizeof(err)), -EACCES);
	cr_assert(strstr(err, "bad signature"), "%s", err);
	for (size_t i = 0; i < SFS_CAP_BYTES; i++) { /* every bit of it is signed */
		uint8_t wire[SFS_CAP_BYTES];
		struct sfs_cap d;
		sfs_cap_encode(&c, wire);
		wire[i] ^= i == 1 ? 0x2 : 0x1; /* rights stay decodable */
		if (sfs_cap_decode(wire, sizeof(wire), &d, err, sizeof(err)) < 0)
			continue;
		cr_assert_eq(sfs_cap_verify(&key, &d, d.handle, SFS_CAP_READ, 0, err, sizeof(err)),
			     -EACCES, "byte %zu flipped and still accepted", i);
	}
	struct sfs_cap admin = signed_cap(0, SFS_CAP_ADMIN, 1000);
	cr_assert_eq(sfs_cap_verify(&key, &admin, 99, SFS_CAP_WRITE, 0, err, sizeof(err)), 0);
	struct sfs_cap none = { 0 };
	cr_assert_eq(sfs_cap_verify(&key, &none, 7, SFS_CAP_READ, 0, err, sizeof(err)), -EACCES);
	cr_assert(strstr(err, "no capability"), "%s", err);
}

Test(cap, a_prepared_key_signs_the_same)
{
	struct sfs_cap_key fast = key;
	struct sfs_cap a = signed_cap(5, SFS_CAP_READ | SFS_CAP_WRITE, 42), b = a;
	cr_assert_eq(sfs_cap_key_prepare(&fast), 0);
	sfs_cap_sign(&fast, &b);
	cr_assert_eq(memcmp(a.mac, b.mac, SFS_CAP_MAC_BYTES), 0);
	sfs_cap_key_clear(&fast);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	cr_assert_eq(chmod(path, mode), 0);
}

Test(cap, the_key_file_is_made_private_and_refused_otherwise)
{
	char dir[] = "/tmp/test-cap-XXXXXX", path[128], cmd[160];
	struct sfs_cap_key k;
	int created;
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sfs.key", dir);
	cr_assert_eq(sfs_cap_key_create(path, &created, err, sizeof(err)), 0, "%s", err);
	cr_assert(created);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(sfs_cap_key_load(path, &k, err, sizeof(err)), 0, "%s", err);
	struct sfs_cap_key again;
	cr_assert_eq(sfs_cap_key_create(path, &created, err, sizeof(err)), 0);
	cr_assert(!created, "an existing key was replaced");
	cr_assert_eq(sfs_cap_key_load(path, &again, err, sizeof(err)), 0);
	cr_assert_eq(memcmp(k.bytes, again.bytes, SFS_CAP_KEY_BYTES), 0);

	chmod(path, 0640);
	cr_assert_eq(sfs_cap_key_load(path, &k, err, sizeof(err)), -EPERM);
	cr_assert(strstr(err, path) && strstr(err, "0640"), "%s", err);
	write_file(path, "abcd\n", 0600);
	cr_assert_eq(sfs_cap_key_load(path, &k, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "64 hex digits"), "%s", err);
	write_file(path, "zz23456789012345678901234567890123456789012345678901234567890123\n",
		   0600);
	cr_assert_eq(sfs_cap_key_load(path, &k, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "not a hex digit"), "%s", err);
	unlink(path);
	cr_assert_eq(sfs_cap_key_load(path, &k, err, sizeof(err)), -ENOENT);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

Test(cap, the_key_path_defaults_to_beside_the_config)
{
	char buf[64];
	cr_assert_eq(sfs_cap_key_path("", "/etc/sfs/sfs.conf", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/etc/sfs/sfs.key");
	cr_assert_eq(sfs_cap_key_path("/k/key", "/etc/sfs/sfs.conf", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "/k/key");
	cr_assert_eq(sfs_cap_key_path("", "sfs.conf", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "sfs.key");
	cr_assert_eq(sfs_cap_key_path("", "/a/very/long/directory/name/that/is/longer/sfs.conf",
				      buf, 20), -ENAMETOOLONG);
}
