/*
 * Unit tests of the key files (common/curve_keys.c) and the ZAP request
 * decoder (common/zap_proto.c): what they accept, what they refuse and
 * that each refusal names the bad value.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "curve_keys.h"
#include "zap_proto.h"

static char dir[64];

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_curve_keys.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(curve_keys, .init = make_dir, .fini = remove_dir);

Test(curve_keys, keygen_writes_a_pair_that_loads_back_with_its_role)
{
	struct curve_keypair kp, back, pub;
	enum curve_role role;
	char err[512], path[128];
	struct stat st;
	cr_assert_eq(curve_keygen(dir, "alice", CURVE_ROLE_OPERATOR, &kp, err, sizeof(err)), 0, "%s", err);
	snprintf(path, sizeof(path), "%s/alice.key", dir);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(curve_secret_load(path, &back, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(back.public_z85, kp.public_z85);
	cr_assert_str_eq(back.secret_z85, kp.secret_z85);
	snprintf(path, sizeof(path), "%s/alice.pub", dir);
	cr_assert_eq(curve_public_load(path, &pub, &role, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(pub.public_z85, kp.public_z85);
	cr_assert_str_eq(pub.secret_z85, "");
	cr_assert_eq(role, CURVE_ROLE_OPERATOR);
}

Test(curve_keys, keygen_never_overwrites_a_key)
{
	char err[512];
	cr_assert_eq(curve_keygen(dir, "bob", CURVE_ROLE_NONE, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(curve_keygen(dir, "bob", CURVE_ROLE_NONE, NULL, err, sizeof(err)), -EEXIST);
	cr_assert(strstr(err, "never overwritten"), "%s", err);
}

Test(curve_keys, a_secret_key_others_can_read_is_refused_naming_the_mode)
{
	char err[512], path[128];
	struct curve_keypair kp;
	cr_assert_eq(curve_keygen(dir, "m", CURVE_ROLE_NONE, NULL, err, sizeof(err)), 0, "%s", err);
	snprintf(path, sizeof(path), "%s/m.key", dir);
	cr_assert_eq(chmod(path, 0644), 0);
	cr_assert_eq(curve_secret_load(path, &kp, err, sizeof(err)), -EPERM);
	cr_assert(strstr(err, "mode 0644"), "%s", err);
	cr_assert_eq(chmod(path, 0640), 0);
	cr_assert_eq(curve_secret_load(path, &kp, err, sizeof(err)), -EPERM);
}

Test(curve_keys, parse_refuses_bad_values_by_name)
{
	char pub[41], sec[41], other_pub[41], other_sec[41], text[300], err[512];
	struct curve_keypair kp;
	enum curve_role role;
	cr_assert_eq(zmq_curve_keypair(pub, sec), 0);
	cr_assert_eq(zmq_curve_keypair(other_pub, other_sec), 0);
	snprintf(text, sizeof(text), "# c\npublic-key = \"%s\"\nrole = admin\n", pub);
	cr_assert_eq(curve_keyfile_parse(text, strlen(text), &kp, &role, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(role, CURVE_ROLE_ADMIN);
	snprintf(text, sizeof(text), "public-key = \"short\"\n");
	cr_assert_eq(curve_keyfile_parse(text, strlen(text), &kp, &role, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "line 1: public-key \"short\""), "%s", err);
	snprintf(text, sizeof(text), "public-key = %s\nrole = root\n", pub);
	cr_assert_eq(curve_keyfile_parse(text, strlen(text), &kp, &role, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "line 2: role \"root\""), "%s", err);
	snprintf(text, sizeof(text), "public-key = %s\nsecret-key = %s\n", pub, other_sec);
	cr_assert_eq(curve_keyfile_parse(text, strlen(text), &kp, &role, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "does not belong"), "%s", err);
	snprintf(text, sizeof(text), "role = reader\n");
	cr_assert_eq(curve_keyfile_parse(text, strlen(text), &kp, &role, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "no public-key"), "%s", err);
	cr_assert_eq(curve_keyfile_parse("x\0y", 3, &kp, &role, err, sizeof(err)), -EINVAL);
}

/* ---- ZAP ---- */

static size_t frames_of(struct zap_frame *f, const char *const *text, size_t n,
			const uint8_t *key)
{
	for (size_t i = 0; i < n; i++)
		f[i] = (struct zap_frame){ text[i], strlen(text[i]) };
	if (key)
		f[n++] = (struct zap_frame){ key, 32 };
	return n;
}

Test(zap_proto, a_curve_request_decodes_with_its_key)
{
	static const char *const text[] = { "1.0", "id7", "api", "127.0.0.1", "", "CURVE" };
	uint8_t key[32];
	struct zap_frame f[8];
	struct zap_request req;
	char err[256];
	memset(key, 0xab, sizeof(key));
	size_t n = frames_of(f, text, 6, key);
	cr_assert_eq(zap_request_parse(f, n, &req, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(req.domain, "api");
	cr_assert_str_eq(req.address, "127.0.0.1");
	cr_assert_eq(req.request_id_len, 3);
	cr_assert(req.has_curve_key);
	cr_assert_eq(memcmp(req.curve_key, key, 32), 0);
}

Test(zap_proto, bad_requests_are_refused_with_the_reason)
{
	static const char *const v2[] = { "2.0", "id", "api", "::1", "", "CURVE" };
	static const char *const null[] = { "1.0", "id", "api", "::1", "", "NULL" };
	static const char *const gssapi[] = { "1.0", "id", "api", "::1", "", "GSSAPI" };
	uint8_t key[32] = { 0 };
	struct zap_frame f[8];
	struct zap_request req;
	char err[256];
	size_t n = frames_of(f, v2, 6, key);
	cr_assert_eq(zap_request_parse(f, n, &req, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "version \"2.0\""), "%s", err);
	n = frames_of(f, null, 6, NULL);
	cr_assert_eq(zap_request_parse(f, n, &req, err, sizeof(err)), 0, "%s", err);
	cr_assert(!req.has_curve_key);
	n = frames_of(f, gssapi, 6, NULL);
	cr_assert_eq(zap_request_parse(f, n, &req, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "GSSAPI"), "%s", err);
	n = frames_of(f, v2, 3, NULL);
	cr_assert_eq(zap_request_parse(f, n, &req, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "3 frames"), "%s", err);
	/* a CURVE key of 31 bytes */
	static const char *const curve[] = { "1.0", "id", "api", "::1", "", "CURVE" };
	n = frames_of(f, curve, 6, key);
	f[6].size = 31;
	cr_assert_eq(zap_request_parse(f, n, &req, err, sizeof(err)), -EBADMSG);
	/* a NUL inside the domain */
	n = frames_of(f, curve, 6, key);
	f[2] = (struct zap_frame){ "a\0b", 3 };
	cr_assert_eq(zap_request_parse(f, n, &req, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "domain"), "%s", err);
}
