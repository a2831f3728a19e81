/*
 * test_hv_libxl: what of the libxl backend runs without a Xen hypervisor:
 * its URIs, the preamble of its migration stream, and open failing with a
 * clear error (not a crash) on a machine without /dev/xen/privcmd. Nothing
 * here touches a domain: that needs Xen (see README, "libxl backend").
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "hv.h"
#include "hv_libxl.h"

Test(hv_libxl, uri_names_the_host_and_its_receiver)
{
	struct hv_libxl_uri u;
	char err[256];
	cr_assert_eq(hv_libxl_parse_uri("libxl:///xen1?addr=10.0.0.11", &u, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_str_eq(u.name, "xen1");
	cr_assert_str_eq(u.addr, "10.0.0.11");
	cr_assert_eq(u.port, HV_LIBXL_DEFAULT_PORT);
	cr_assert_eq(u.local, -1);
	cr_assert_eq(hv_libxl_parse_uri("libxl:///xen2?addr=10.0.0.12&port=9000&local=1", &u, err,
					sizeof(err)), 0, "%s", err);
	cr_assert_eq(u.port, 9000);
	cr_assert_eq(u.local, 1);
	cr_assert_eq(hv_ops_for_uri("libxl:///xen1?addr=10.0.0.11"), &hv_libxl_ops);
}

Test(hv_libxl, bad_uris_are_refused_naming_the_bad_part)
{
	struct hv_libxl_uri u;
	char err[256];
	cr_assert_eq(hv_libxl_parse_uri("libxl:///xen1", &u, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "addr"), "%s", err);
	cr_assert_eq(hv_libxl_parse_uri("libxl:///xen1?addr=node1", &u, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "node1"), "%s", err);
	cr_assert_eq(hv_libxl_parse_uri("libxl:///xen1?addr=10.0.0.1&port=70000", &u, err,
					sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "70000"), "%s", err);
	cr_assert_eq(hv_libxl_parse_uri("libxl:///xen1?addr=10.0.0.1&speed=1", &u, err,
					sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "speed"), "%s", err);
	cr_assert_eq(hv_libxl_parse_uri("libxl://xen1?addr=10.0.0.1", &u, err, sizeof(err)),
		     -EINVAL);
	cr_assert_eq(hv_libxl_parse_uri("libxl:///?addr=10.0.0.1", &u, err, sizeof(err)), -EINVAL);
	cr_assert_eq(hv_libxl_parse_uri("libxl:///a/b?addr=10.0.0.1", &u, err, sizeof(err)),
		     -EINVAL);
}

Test(hv_libxl, stream_preamble_round_trips_and_rejects_foreign_bytes)
{
	unsigned char buf[64];
	uint32_t len = 0;
	size_t n = hv_libxl_preamble(1234, buf);
	cr_assert_eq(n, strlen(HV_LIBXL_MAGIC) + 4);
	cr_assert_eq(hv_libxl_preamble_check(buf, n, &len), 0);
	cr_assert_eq(len, 1234);
	cr_assert_eq(hv_libxl_preamble_check(buf, n - 1, &len), -EPROTO);
	n = hv_libxl_preamble(HV_LIBXL_CONFIG_MAX + 1, buf);
	cr_assert_eq(hv_libxl_preamble_check(buf, n, &len), -EPROTO);
	n = hv_libxl_preamble(0, buf);
	cr_assert_eq(hv_libxl_preamble_check(buf, n, &len), -EPROTO);
	memcpy(buf, "Xen saved domain", 16); /* xl's own save format is not ours */
	cr_assert_eq(hv_libxl_preamble_check(buf, n, &len), -EPROTO);
}

Test(hv_libxl, open_without_xen_fails_cleanly_and_says_why)
{
	struct hv *hv = NULL;
	char err[256] = "";
	if (access("/dev/xen/privcmd", F_OK) == 0)
		cr_skip_test("a Xen hypervisor is here: this test is for machines without one");
	cr_assert_eq(hv_libxl_ops.open(NULL, &hv, err, sizeof(err)), -ENODEV);
	cr_assert_null(hv);
	cr_assert(strstr(err, "no Xen hypervisor"), "%s", err);
	cr_assert(strstr(err, "/dev/xen/privcmd"), "%s", err);
}
