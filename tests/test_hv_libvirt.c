/*
 * test_hv_libvirt: the libvirt backend's pure logic, without a libvirtd:
 * which URIs it claims, its host URIs (libvirt's URI plus migd's fragment
 * options), the mapping of migd's knobs to libvirt's flags and bandwidth,
 * the domain XML of a new guest and the choice of guest addresses. The
 * backend against real daemons is tests/test_libvirt.sh.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <libvirt/libvirt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv.h"
#include "hv_libvirt.h"

Test(hv_libvirt, claims_every_spelling_of_libvirts_qemu_and_xen_drivers)
{
	const char *mine[] = { "qemu:///system", "qemu+ssh://node/system",
			       "qemu+tcp://10.80.0.11/system",
			       "qemu+unix:///system?socket=/run/x/libvirt-sock",
			       "qemu+tls://node/system", "xen:///system", "xen+ssh://node/system" };
	for (size_t i = 0; i < sizeof(mine) / sizeof(*mine); i++)
		cr_assert_eq(hv_ops_for_uri(mine[i]), &hv_libvirt_ops, "%s", mine[i]);
	cr_assert_eq(hv_ops_for_uri("sim:///n1"), &hv_sim_ops);
	cr_assert_null(hv_ops_for_uri("qemux:///system"));
	cr_assert_null(hv_ops_for_uri("qemu+:///system")); /* a transport is a word */
	cr_assert_null(hv_ops_for_uri("lxc:///"));
}

Test(hv_libvirt, a_drivers_exact_claim_beats_a_transport_claim)
{
	static const char *const a_schemes[] = { "qemu+", NULL };
	static const char *const b_schemes[] = { "qemu+x", NULL };
	struct hv_ops a = { .scheme = "a", .schemes = a_schemes };
	struct hv_ops b = { .scheme = "b", .schemes = b_schemes };
	cr_assert_eq(hv_ops_claims(&a, "qemu+x", 6), 1);
	cr_assert_eq(hv_ops_claims(&b, "qemu+x", 6), 2);
	cr_assert_eq(hv_ops_claims(&a, "qemu", 4), 0);
	cr_assert_eq(hv_ops_claims(&a, "a", 1), 2);
	cr_assert_eq(hv_ops_claims(&b, "qemu+xy", 7), 0);
}

Test(hv_libvirt, host_uri_fragment_holds_migds_options)
{
	struct hv_libvirt_uri u;
	char err[256];
	cr_assert_eq(hv_libvirt_parse_uri("qemu+tcp://10.80.0.12/system", &u, err, sizeof(err)), 0);
	cr_assert_str_eq(u.libvirt_uri, "qemu+tcp://10.80.0.12/system");
	cr_assert_str_eq(u.peer_uri, "qemu+tcp://10.80.0.12/system");
	cr_assert_str_eq(u.migrate_uri, "");
	cr_assert_eq(hv_libvirt_parse_uri("qemu+unix:///system?socket=/s#migrate_uri=tcp://10.80.0.12"
					  "&peer_uri=qemu+tcp://10.80.0.12/system",
					  &u, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(u.libvirt_uri, "qemu+unix:///system?socket=/s");
	cr_assert_str_eq(u.migrate_uri, "tcp://10.80.0.12");
	cr_assert_str_eq(u.peer_uri, "qemu+tcp://10.80.0.12/system");
}

Test(hv_libvirt, bad_host_uris_are_refused_naming_the_bad_part)
{
	struct hv_libvirt_uri u;
	char err[256];
	cr_assert_eq(hv_libvirt_parse_uri("qemu/system", &u, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "qemu/system"), "%s", err);
	cr_assert_eq(hv_libvirt_parse_uri("qemu:///system#bandwidth=1", &u, err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "\"bandwidth\""), "%s", err);
	cr_assert_eq(hv_libvirt_parse_uri("qemu:///system#migrate_uri=10.0.0.1", &u, err,
					  sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "10.0.0.1"), "%s", err);
	cr_assert_eq(hv_libvirt_parse_uri("qemu:///system#migrate_uri=tcp://a&migrate_uri=tcp://b",
					  &u, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "twice"), "%s", err);
	cr_assert_eq(hv_libvirt_parse_uri("qemu:///sys'tem", &u, err, sizeof(err)), -EINVAL);
	cr_assert_eq(hv_libvirt_parse_uri("", &u, err, sizeof(err)), -EINVAL);
}

Test(hv_libvirt, bandwidth_in_mib_rounds_up_and_zero_stays_unlimited)
{
	cr_assert_eq(hv_libvirt_bandwidth_mib(0), 0);
	cr_assert_eq(hv_libvirt_bandwidth_mib(1), 1);
	cr_assert_eq(hv_libvirt_bandwidth_mib(1048576), 1);
	cr_assert_eq(hv_libvirt_bandwidth_mib(1048577), 2);
	cr_assert_eq(hv_libvirt_bandwidth_mib(125000000), 120); /* 1 Gbit/s */
}

Test(hv_libvirt, knobs_map_to_migration_flags)
{
	struct hv_migrate_params p = { 0 };
	unsigned long base = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER;
	cr_assert_eq(hv_libvirt_migrate_flags(&p, 0), base);
	cr_assert_eq(hv_libvirt_migrate_flags(NULL, 0), base);
	cr_assert_eq(hv_libvirt_migrate_flags(&p, 1),
		     base | VIR_MIGRATE_PERSIST_DEST | VIR_MIGRATE_UNDEFINE_SOURCE);
	p.auto_converge = 1;
	p.postcopy = 1;
	p.parallel_connections = 1; /* one connection: not parallel */
	cr_assert_eq(hv_libvirt_migrate_flags(&p, 0),
		     base | VIR_MIGRATE_AUTO_CONVERGE | VIR_MIGRATE_POSTCOPY);
	p.parallel_connections = 4;
	cr_assert(hv_libvirt_migrate_flags(&p, 0) & VIR_MIGRATE_PARALLEL);
}

Test(hv_libvirt, domain_xml_boots_the_image_with_its_address)
{
	struct hv_libvirt_env env = { .image_dir = "/img", .guest_subnet = "10.80",
				      .agent_endpoint = "tcp://10.80.0.1:7710" };
	struct hv_guest_spec spec = { .name = "g1", .memory_bytes = 128u << 20 };
	char *xml = NULL, err[256], mac[18];
	cr_assert_eq(hv_libvirt_domain_xml(&env, "qemu", &spec, "10.80.1.2", &xml, err,
					   sizeof(err)), 0, "%s", err);
	hv_libvirt_guest_mac("g1", mac);
	cr_assert(strstr(xml, "<domain type='qemu'>"));
	cr_assert(strstr(xml, "<memory unit='KiB'>131072</memory>"));
	cr_assert(strstr(xml, "<kernel>/img/vmlinuz</kernel>"));
	cr_assert(strstr(xml, "<initrd>/img/initrd.img</initrd>"));
	cr_assert(strstr(xml, "console=ttyS0 no_timer_check migd.name=g1 migd.ip=10.80.1.2/16 migd.gw=10.80.0.1 "
			 "migd.agent=tcp://10.80.0.1:7710"), "%s", xml);
	cr_assert(strstr(xml, "<source bridge='br0'/>"));
	cr_assert(strstr(xml, mac));
	cr_assert(strstr(xml, "<tb-cache unit='MiB'>64</tb-cache>"));
	cr_assert(strstr(xml, "/var/log/libvirt/qemu/g1.serial"));
	free(xml);
}

Test(hv_libvirt, domain_xml_without_image_is_bios_only_and_kvm_has_no_tcg_cache)
{
	struct hv_libvirt_env env = { .bridge = "" };
	struct hv_guest_spec spec = { .name = "g2", .memory_bytes = 64u << 20 };
	char *xml = NULL, err[256];
	cr_assert_eq(hv_libvirt_domain_xml(&env, "kvm", &spec, NULL, &xml, err, sizeof(err)), 0);
	cr_assert_null(strstr(xml, "<kernel>"));
	cr_assert_null(strstr(xml, "<interface"));
	cr_assert_null(strstr(xml, "tb-cache"));
	free(xml);
	spec.name = "g<1>";
	cr_assert_eq(hv_libvirt_domain_xml(&env, "qemu", &spec, NULL, &xml, err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "g<1>"), "%s", err);
	spec.name = "g3";
	spec.memory_bytes = 1 << 20;
	cr_assert_eq(hv_libvirt_domain_xml(&env, "qemu", &spec, NULL, &xml, err, sizeof(err)),
		     -EINVAL);
}

Test(hv_libvirt, guest_addresses_take_the_lowest_free_one)
{
	char ip[32];
	const char *used[] = { "10.80.1.2", "10.80.1.4", "10.9.1.3" };
	cr_assert_eq(hv_libvirt_pick_ip("10.80", used, 3, ip, sizeof(ip)), 0);
	cr_assert_str_eq(ip, "10.80.1.3");
	cr_assert_eq(hv_libvirt_pick_ip("10.80", NULL, 0, ip, sizeof(ip)), 0);
	cr_assert_str_eq(ip, "10.80.1.2");
	char names[253][16];
	const char *all[253];
	for (int i = 0; i < 253; i++) {
		snprintf(names[i], sizeof(names[i]), "10.80.1.%d", i + 2);
		all[i] = names[i];
	}
	cr_assert_eq(hv_libvirt_pick_ip("10.80", all, 253, ip, sizeof(ip)), -ENOSPC);
}

Test(hv_libvirt, macs_are_stable_and_differ_between_names)
{
	char a[18], b[18], c[18];
	hv_libvirt_guest_mac("g1", a);
	hv_libvirt_guest_mac("g1", b);
	hv_libvirt_guest_mac("g2", c);
	cr_assert_str_eq(a, b);
	cr_assert_str_neq(a, c);
	cr_assert_eq(strncmp(a, "52:54:00:", 9), 0);
	cr_assert_eq(strlen(a), 17);
}

Test(hv_libvirt, open_needs_no_daemon_and_a_bad_subnet_is_refused)
{
	struct hv *hv = NULL;
	char err[256];
	struct hv_env env = { .libvirt = { .guest_subnet = "10.x" } };
	cr_assert_eq(hv_libvirt_ops.open(&env, &hv, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "10.x"), "%s", err);
	env.libvirt.guest_subnet = "10.80";
	cr_assert_eq(hv_libvirt_ops.open(&env, &hv, err, sizeof(err)), 0, "%s", err);
	/* a host that does not answer is refused, and named */
	int rc = hv_libvirt_ops.host_add(hv, "h1", "qemu+unix:///system?socket=/nonexistent/sock",
					 err, sizeof(err));
	cr_assert_eq(rc, -EHOSTUNREACH);
	cr_assert(strstr(err, "h1"), "%s", err);
	struct hv_guest_info info;
	cr_assert_lt(hv_libvirt_ops.guest_info(hv, "g1", &info, err, sizeof(err)), 0);
	hv_libvirt_ops.close(hv);
}
