/*
 * test_hv_libxl: what of the libxl backend runs without a Xen hypervisor:
 * its URIs, the preamble of its migration stream, open failing with a
 * clear error (not a crash) on a machine without /dev/xen/privcmd, and the
 * checkpoint calls on a driver without a libxl context (wired, their
 * errors, guest_define's config checks). Nothing here touches a domain:
 * that needs Xen (see README, "libxl backend").
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv.h"
#include "hv_libxl.h"
#include "hv_libxl_int.h"

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

/* ---- checkpoint calls (hv_libxl_ckpt.c) ---------------------------------------- */

#define GOOD_CONFIG                                                                     \
	"{\"c_info\": {\"type\": \"pv\", \"name\": \"g1\"},\n"                          \
	" \"b_info\": {\"max_vcpus\": 1, \"max_memkb\": 262144,\n"                      \
	"            \"type.pv\": {\"kernel\": \"/boot/vmlinuz\"}}}"

Test(hv_libxl, checkpoint_calls_are_wired)
{
	cr_assert_not_null(hv_libxl_ops.guest_pause);
	cr_assert_not_null(hv_libxl_ops.guest_resume);
	cr_assert_not_null(hv_libxl_ops.save_start);
	cr_assert_not_null(hv_libxl_ops.load_start);
	cr_assert_not_null(hv_libxl_ops.guest_destroy);
	cr_assert_not_null(hv_libxl_ops.guest_config);
	cr_assert_not_null(hv_libxl_ops.guest_define);
}

Test(hv_libxl, config_check_accepts_a_libxl_domain_config_of_the_guest)
{
	char err[256] = "";
	cr_assert_eq(hv_libxl_config_check("g1", GOOD_CONFIG, err, sizeof(err)), 0, "%s", err);
}

Test(hv_libxl, config_check_names_what_is_wrong)
{
	char err[256];
	cr_assert_eq(hv_libxl_config_check("g1", "{\"c_info\": {\"name\": \"g1\"},\n \"b_info\": ",
					   err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "not JSON") && strstr(err, "line 2"), "%s", err);
	cr_assert_eq(hv_libxl_config_check("g1", "[1, 2]", err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "object"), "%s", err);
	cr_assert_eq(hv_libxl_config_check("g1", "{\"b_info\": {}}", err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "c_info"), "%s", err);
	cr_assert_eq(hv_libxl_config_check("g1", "{\"c_info\": {}, \"b_info\": {}}", err,
					   sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "name"), "%s", err);
	cr_assert_eq(hv_libxl_config_check("g2", GOOD_CONFIG, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "\"g1\"") && strstr(err, "g2"), "%s", err);
	cr_assert_eq(hv_libxl_config_check("g1", "{\"c_info\": {\"name\": \"g1\"}}", err,
					   sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "b_info"), "%s", err);
	cr_assert_eq(hv_libxl_config_check("g1", NULL, err, sizeof(err)), -EINVAL);
}

Test(hv_libxl, calls_that_need_xen_fail_with_enodev_naming_the_guest)
{
	struct hv *hv = hv_libxl_new_without_xen();
	char err[256] = "", dir[] = "/tmp/test_hv_libxl.XXXXXX", path[64];
	uint64_t id = 0;
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/g1.img", dir);
	struct hv_image img = { .fd = -1, .path = path };
	cr_assert_not_null(hv);
	cr_assert_eq(hv_libxl_ops.guest_pause(hv, "g1", err, sizeof(err)), -ENODEV);
	cr_assert(strstr(err, "g1") && strstr(err, "no Xen hypervisor"), "%s", err);
	cr_assert_eq(hv_libxl_ops.guest_resume(hv, "g1", err, sizeof(err)), -ENODEV);
	cr_assert_eq(hv_libxl_ops.save_start(hv, "g1", &img, NULL, &id, err, sizeof(err)),
		     -ENODEV);
	cr_assert_eq(hv_libxl_ops.load_start(hv, "g1", "xen1", &img, &id, err, sizeof(err)),
		     -ENODEV);
	cr_assert_eq(hv_libxl_ops.guest_destroy(hv, "g1", err, sizeof(err)), -ENODEV);
	cr_assert(strstr(err, "g1"), "%s", err);
	cr_assert_eq(hv_libxl_ops.guest_pause(hv, "", err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "name"), "%s", err);
	cr_assert_neq(access(path, F_OK), 0, "a refused save must not create its image");
	rmdir(dir);
	hv_libxl_ops.close(hv);
}

Test(hv_libxl, unknown_ids_and_guests_are_enoent)
{
	struct hv *hv = hv_libxl_new_without_xen();
	struct hv_progress pr;
	char err[256] = "", *text = NULL;
	cr_assert_not_null(hv);
	cr_assert_eq(hv_libxl_ops.migrate_poll(hv, 42, &pr, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "42") && strstr(err, "not known"), "%s", err);
	cr_assert_eq(hv_libxl_ops.migrate_abort(hv, 42, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "42"), "%s", err);
	hv_libxl_ops.migrate_forget(hv, 42); /* nothing to forget: no crash */
	cr_assert_eq(hv_libxl_ops.guest_config(hv, "g1", &text, err, sizeof(err)), -ENOENT);
	cr_assert_null(text);
	cr_assert(strstr(err, "g1") && strstr(err, "guest_define"), "%s", err);
	hv_libxl_ops.close(hv);
}

Test(hv_libxl, guest_define_keeps_the_config_for_guest_config_and_refuses_a_second)
{
	struct hv *hv = hv_libxl_new_without_xen();
	char err[256] = "", *text = NULL;
	cr_assert_not_null(hv);
	cr_assert_eq(hv_libxl_ops.guest_define(hv, "g1", GOOD_CONFIG, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(hv_libxl_ops.guest_config(hv, "g1", &text, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(text, GOOD_CONFIG);
	free(text);
	cr_assert_eq(hv_libxl_ops.guest_define(hv, "g1", GOOD_CONFIG, err, sizeof(err)), -EEXIST);
	cr_assert(strstr(err, "already known"), "%s", err);
	hv_libxl_ops.close(hv);
}

Test(hv_libxl, guest_define_rejects_a_malformed_config_naming_the_problem)
{
	struct hv *hv = hv_libxl_new_without_xen();
	char err[256] = "", *text = NULL;
	cr_assert_not_null(hv);
	cr_assert_eq(hv_libxl_ops.guest_define(hv, "g1", "{\"c_info\": {\"name\": \"g1\"", err,
					       sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "g1") && strstr(err, "not JSON") && strstr(err, "column"), "%s",
		  err);
	cr_assert_eq(hv_libxl_ops.guest_define(hv, "g2", GOOD_CONFIG, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "c_info.name"), "%s", err);
	/* nothing was kept */
	cr_assert_eq(hv_libxl_ops.guest_config(hv, "g1", &text, err, sizeof(err)), -ENOENT);
	hv_libxl_ops.close(hv);
}
