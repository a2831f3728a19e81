/*
 * test_hv_qmp_tls: where the qmp backend finds a host's TLS credentials
 * and what it says when one is missing (hv_qmp_tls.c), on real directories.
 * The migrations themselves are tests/test_migration_tls.sh.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hv_qmp.h"

static char root[64];

static void touch(const char *rel)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fputs("x\n", f);
	fclose(f);
}

static void setup(void)
{
	snprintf(root, sizeof(root), "/tmp/test_hv_qmp_tls.XXXXXX");
	cr_assert_not_null(mkdtemp(root));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(hv_qmp_tls, .init = setup, .fini = teardown);

Test(hv_qmp_tls, a_host_directory_wins_over_the_shared_one)
{
	char dir[PATH_MAX], want[PATH_MAX];
	snprintf(want, sizeof(want), "%s/n1", root);
	cr_assert_eq(mkdir(want, 0700), 0);
	hv_qmp_tls_host_dir(root, "n1", dir, sizeof(dir));
	cr_assert_str_eq(dir, want);
	/* n2 has none: the directory itself (one host, /etc/pki/qemu) */
	hv_qmp_tls_host_dir(root, "n2", dir, sizeof(dir));
	cr_assert_str_eq(dir, root);
	/* a file named like the host is not a host directory */
	touch("n3");
	hv_qmp_tls_host_dir(root, "n3", dir, sizeof(dir));
	cr_assert_str_eq(dir, root);
}

Test(hv_qmp_tls, a_missing_file_is_named)
{
	char err[512] = "";
	touch("ca-cert.pem");
	touch("server-cert.pem");
	int rc = hv_qmp_tls_check_dir(root, true, err, sizeof(err));
	cr_assert_eq(rc, -ENOENT);
	cr_assert(strstr(err, "/server-key.pem: No such file"), "%s", err);
	touch("server-key.pem");
	cr_assert_eq(hv_qmp_tls_check_dir(root, true, err, sizeof(err)), 0);
	/* a server's files are not a client's */
	rc = hv_qmp_tls_check_dir(root, false, err, sizeof(err));
	cr_assert_eq(rc, -ENOENT);
	cr_assert(strstr(err, "/client-cert.pem"), "%s", err);
	touch("client-cert.pem");
	touch("client-key.pem");
	cr_assert_eq(hv_qmp_tls_check_dir(root, false, err, sizeof(err)), 0);
}

Test(hv_qmp_tls, no_ca_no_credentials)
{
	char err[512] = "";
	touch("client-cert.pem");
	touch("client-key.pem");
	cr_assert_eq(hv_qmp_tls_check_dir(root, false, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "/ca-cert.pem"), "%s", err);
}
