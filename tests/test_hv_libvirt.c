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
	cr_assert_eq(hv_libvirt_migrate_flags(&p, 0, 0), base);
	cr_assert_eq(hv_libvirt_migrate_flags(NULL, 0, 0), base);
	cr_assert_eq(hv_libvirt_migrate_flags(&p, 1, 0),
		     base | VIR_MIGRATE_PERSIST_DEST | VIR_MIGRATE_UNDEFINE_SOURCE);
	p.auto_converge = 1;
	p.postcopy = 1;
	p.parallel_connections = 1; /* one connection: not parallel */
	cr_assert_eq(hv_libvirt_migrate_flags(&p, 0, 0),
		     base | VIR_MIGRATE_AUTO_CONVERGE | VIR_MIGRATE_POSTCOPY);
	p.parallel_connections = 4;
	cr_assert(hv_libvirt_migrate_flags(&p, 0, 0) & VIR_MIGRATE_PARALLEL);
	cr_assert_eq(hv_libvirt_migrate_flags(&p, 0, 0) & VIR_MIGRATE_TLS, 0);
}

Test(hv_libvirt, migration_tls_sets_virmigratetls)
{
	struct hv_migrate_params p = { 0 };
	unsigned long base = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER;
	cr_assert_eq(hv_libvirt_migrate_flags(&p, 0, 1), base | VIR_MIGRATE_TLS);
	cr_assert_eq(hv_libvirt_migrate_flags(NULL, 1, 1),
		     base | VIR_MIGRATE_PERSIST_DEST | VIR_MIGRATE_UNDEFINE_SOURCE |
			     VIR_MIGRATE_TLS);
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

/* ---- checkpoint and restore ---------------------------------------------- */

#include <sys/stat.h>
#include <unistd.h>

Test(hv_libvirt, xml_name_is_the_domains_own)
{
	char name[64];
	cr_assert_eq(hv_libvirt_xml_name("<domain type='qemu'>\n  <name>g1</name><uuid>x</uuid>"
					 "<devices><interface><target dev='x'/></interface>"
					 "</devices></domain>", name, sizeof(name)), 0);
	cr_assert_str_eq(name, "g1");
	cr_assert_eq(hv_libvirt_xml_name("<domain/>", name, sizeof(name)), -EINVAL);
	cr_assert_eq(hv_libvirt_xml_name(NULL, name, sizeof(name)), -EINVAL);
	cr_assert_eq(hv_libvirt_xml_name("<name>abcdef</name>", name, 4), -ENAMETOOLONG);
}

Test(hv_libvirt, snapshot_xml_saves_memory_and_leaves_every_disk_alone)
{
	const char *domain = "<domain type='qemu'><name>g1</name><devices>\n"
			     "<disk type='file' device='disk'><source file='/a.qcow2'/>"
			     "<target dev='vda' bus='virtio'/></disk>\n"
			     "<disk type='file' device='cdrom'><target dev=\"sdb\" bus='sata'/>"
			     "<readonly/></disk>\n"
			     "<interface type='bridge'><target dev='vnet0'/></interface>\n"
			     "</devices></domain>";
	char *xml = NULL, err[256];
	cr_assert_eq(hv_libvirt_snapshot_xml(domain, "/store/g1.img", &xml, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert(strstr(xml, "<memory snapshot='external' file='/store/g1.img'/>"), "%s", xml);
	cr_assert(strstr(xml, "<disk name='vda' snapshot='no'/>"), "%s", xml);
	cr_assert(strstr(xml, "<disk name='sdb' snapshot='no'/>"), "%s", xml);
	cr_assert_null(strstr(xml, "vnet0"), "%s", xml);
	free(xml);
	/* a diskless domain: no disks to list */
	cr_assert_eq(hv_libvirt_snapshot_xml("<domain><name>g</name></domain>", "/s/g.img", &xml,
					     err, sizeof(err)), 0);
	cr_assert(strstr(xml, "<disks>\n  </disks>"), "%s", xml);
	free(xml);
	cr_assert_eq(hv_libvirt_snapshot_xml(domain, "rel/g1.img", &xml, err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "rel/g1.img"), "%s", err);
	cr_assert_eq(hv_libvirt_snapshot_xml(domain, "/x/a'b", &xml, err, sizeof(err)), -EINVAL);
}

/*
 * Against libvirt's test driver: two "hosts", each its own test:///FILE
 * (every such connection has a world of its own; test:///default would be
 * shared), h1 with two running persistent domains. The test driver has no
 * external memory snapshot (it takes the XML and writes no file), so a
 * save there is the save-and-restore path; its images are its own format.
 */
struct tdrv {
	char dir[64];
	char img1[128], img2[128];
	struct hv *hv;
};

static void tdrv_open(struct tdrv *t)
{
	char path[128], uri[160], err[256];
	snprintf(t->dir, sizeof(t->dir), "/tmp/test_hv_libvirt.XXXXXX");
	cr_assert(mkdtemp(t->dir));
	snprintf(path, sizeof(path), "%s/h1.xml", t->dir);
	FILE *f = fopen(path, "w");
	cr_assert(f);
	fprintf(f, "<node>\n");
	for (int i = 1; i <= 2; i++)
		fprintf(f, "<domain type='test'><name>g%d</name><memory unit='MiB'>64</memory>"
			"<os><type arch='x86_64'>hvm</type></os></domain>\n", i);
	fprintf(f, "</node>\n");
	fclose(f);
	snprintf(path, sizeof(path), "%s/h2.xml", t->dir);
	f = fopen(path, "w");
	cr_assert(f);
	fprintf(f, "<node/>\n");
	fclose(f);
	snprintf(t->img1, sizeof(t->img1), "%s/g1.img", t->dir);
	snprintf(t->img2, sizeof(t->img2), "%s/g2.img", t->dir);
	cr_assert_eq(hv_libvirt_ops.open(NULL, &t->hv, err, sizeof(err)), 0, "%s", err);
	for (int i = 1; i <= 2; i++) {
		char name[8];
		snprintf(name, sizeof(name), "h%d", i);
		snprintf(uri, sizeof(uri), "test://%s/h%d.xml", t->dir, i);
		cr_assert_eq(hv_libvirt_ops.host_add(t->hv, name, uri, err, sizeof(err)), 0, "%s",
			     err);
	}
}

static void tdrv_close(struct tdrv *t)
{
	char cmd[128];
	hv_libvirt_ops.close(t->hv);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	cr_assert_eq(system(cmd), 0);
}

static struct hv_guest_info tdrv_where(struct tdrv *t, const char *guest)
{
	struct hv_guest_info info;
	char err[256];
	int rc = hv_libvirt_ops.guest_info(t->hv, guest, &info, err, sizeof(err));
	cr_assert_eq(rc, 0, "guest_info %s: %d %s", guest, rc, err);
	return info;
}

/* Poll job id (real time) until it ends, at most 20 s. */
static struct hv_progress tdrv_wait(struct tdrv *t, uint64_t id)
{
	struct hv_progress pr;
	char err[256];
	for (int i = 0; i < 1000; i++) {
		cr_assert_eq(hv_libvirt_ops.migrate_poll(t->hv, id, &pr, err, sizeof(err)), 0, "%s",
			     err);
		if (pr.state != HV_MIG_ACTIVE)
			return pr;
		usleep(20000);
	}
	cr_assert_fail("job %llu did not end in 20 s", (unsigned long long)id);
	return pr;
}

static uint64_t tdrv_save(struct tdrv *t, const char *guest, const char *path)
{
	struct hv_image img = { .fd = -1, .path = path };
	uint64_t id = 0;
	char err[256];
	int rc = hv_libvirt_ops.save_start(t->hv, guest, &img, NULL, &id, err, sizeof(err));
	cr_assert_eq(rc, 0, "save %s: %d %s", guest, rc, err);
	return id;
}

static int tdrv_load(struct tdrv *t, const char *guest, const char *host, const char *path,
		     uint64_t *id, char *err, size_t errlen)
{
	struct hv_image img = { .fd = -1, .path = path };
	return hv_libvirt_ops.load_start(t->hv, guest, host, &img, id, err, errlen);
}

Test(hv_libvirt, pause_and_resume_are_idempotent_and_a_save_needs_a_paused_guest_and_a_file)
{
	struct tdrv t;
	char err[256];
	uint64_t id;
	tdrv_open(&t);
	cr_assert_eq(tdrv_where(&t, "g1").running, 1);
	cr_assert_eq(hv_libvirt_ops.guest_resume(t.hv, "g1", err, sizeof(err)), 0, "%s", err);
	struct hv_image img = { .fd = -1, .path = t.img1 };
	cr_assert_eq(hv_libvirt_ops.save_start(t.hv, "g1", &img, NULL, &id, err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "paused"), "%s", err);
	cr_assert_eq(hv_libvirt_ops.guest_pause(t.hv, "g1", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(hv_libvirt_ops.guest_pause(t.hv, "g1", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(tdrv_where(&t, "g1").running, 0);
	struct hv_image pipe_img = { .fd = 0 };
	cr_assert_eq(hv_libvirt_ops.save_start(t.hv, "g1", &pipe_img, NULL, &id, err,
					       sizeof(err)), -ENOTSUP);
	cr_assert(strstr(err, "checkpoint.store"), "%s", err);
	struct hv_image relative = { .fd = -1, .path = "g1.img" };
	cr_assert_eq(hv_libvirt_ops.save_start(t.hv, "g1", &relative, NULL, &id, err,
					       sizeof(err)), -EINVAL);
	cr_assert_eq(hv_libvirt_ops.guest_pause(t.hv, "nobody", err, sizeof(err)), -ENOENT);
	cr_assert_eq(hv_libvirt_ops.guest_resume(t.hv, "g1", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(tdrv_where(&t, "g1").running, 1);
	tdrv_close(&t);
}

Test(hv_libvirt, a_guest_saved_destroyed_and_loaded_elsewhere_comes_back_paused)
{
	struct tdrv t;
	char err[256];
	uint64_t id;
	struct stat st;
	tdrv_open(&t);
	cr_assert_eq(hv_libvirt_ops.guest_pause(t.hv, "g1", err, sizeof(err)), 0, "%s", err);
	id = tdrv_save(&t, "g1", t.img1);
	struct hv_progress pr = tdrv_wait(&t, id);
	cr_assert_eq(pr.state, HV_MIG_COMPLETED, "%s", pr.error);
	cr_assert_str_eq(pr.mode, "paused");
	cr_assert_eq(pr.total_bytes, 64u << 20);
	cr_assert_eq(pr.pause_ms, pr.total_time_ms);
	hv_libvirt_ops.migrate_forget(t.hv, id);
	cr_assert_eq(hv_libvirt_ops.migrate_poll(t.hv, id, &pr, err, sizeof(err)), -ENOENT);
	cr_assert_eq(stat(t.img1, &st), 0, "the image is a file on the host");
	struct hv_guest_info where = tdrv_where(&t, "g1");
	cr_assert_str_eq(where.host, "h1", "a save is not a stop");
	cr_assert_eq(where.running, 0, "and leaves the guest paused");

	cr_assert_eq(tdrv_load(&t, "g1", "h2", t.img1, &id, err, sizeof(err)), -EEXIST);
	cr_assert(strstr(err, "h1"), "%s", err);
	cr_assert_eq(hv_libvirt_ops.guest_destroy(t.hv, "g1", err, sizeof(err)), 0, "%s", err);
	cr_assert_lt(hv_libvirt_ops.guest_info(t.hv, "g1", &where, err, sizeof(err)), 0);
	cr_assert_eq(hv_libvirt_ops.guest_destroy(t.hv, "g1", err, sizeof(err)), -ENOENT);

	cr_assert_eq(tdrv_load(&t, "g1", "h2", t.img1, &id, err, sizeof(err)), 0, "%s", err);
	pr = tdrv_wait(&t, id);
	cr_assert_eq(pr.state, HV_MIG_COMPLETED, "%s", pr.error);
	cr_assert_eq(pr.total_bytes, 64u << 20);
	where = tdrv_where(&t, "g1");
	cr_assert_str_eq(where.host, "h2");
	cr_assert_eq(where.running, 0, "loaded paused");
	cr_assert_eq(hv_libvirt_ops.guest_resume(t.hv, "g1", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(tdrv_where(&t, "g1").running, 1);
	tdrv_close(&t);
}

Test(hv_libvirt, a_load_of_another_guests_image_fails_and_leaves_nothing)
{
	struct tdrv t;
	char err[256];
	uint64_t id;
	tdrv_open(&t);
	cr_assert_eq(hv_libvirt_ops.guest_pause(t.hv, "g2", err, sizeof(err)), 0, "%s", err);
	struct hv_progress pr = tdrv_wait(&t, tdrv_save(&t, "g2", t.img2));
	cr_assert_eq(pr.state, HV_MIG_COMPLETED, "%s", pr.error);
	cr_assert_eq(hv_libvirt_ops.guest_destroy(t.hv, "g1", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(tdrv_load(&t, "g1", "h2", t.img2, &id, err, sizeof(err)), 0, "%s", err);
	pr = tdrv_wait(&t, id);
	cr_assert_eq(pr.state, HV_MIG_FAILED);
	cr_assert(strstr(pr.error, "\"g2\"") && strstr(pr.error, "not of guest g1"), "%s",
		  pr.error);
	struct hv_guest_info info;
	cr_assert_eq(hv_libvirt_ops.guest_info(t.hv, "g1", &info, err, sizeof(err)), -ENOENT);
	cr_assert_eq(tdrv_load(&t, "g1", "h2", "/nonexistent/g1.img", &id, err, sizeof(err)), 0);
	pr = tdrv_wait(&t, id);
	cr_assert_eq(pr.state, HV_MIG_FAILED);
	cr_assert(strstr(pr.error, "/nonexistent/g1.img"), "%s", pr.error);
	cr_assert_eq(tdrv_load(&t, "g1", "h9", t.img2, &id, err, sizeof(err)), -ENOENT);
	tdrv_close(&t);
}

Test(hv_libvirt, a_destroyed_transient_guests_xml_is_kept_and_define_keeps_a_manifests)
{
	struct tdrv t;
	char err[256], *xml = NULL;
	uint64_t id;
	tdrv_open(&t);
	/* g1 restored on h2 is transient there: destroying it leaves no
	 * definition on any host, but migd keeps its XML */
	cr_assert_eq(hv_libvirt_ops.guest_pause(t.hv, "g1", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(tdrv_wait(&t, tdrv_save(&t, "g1", t.img1)).state, HV_MIG_COMPLETED);
	cr_assert_eq(hv_libvirt_ops.guest_destroy(t.hv, "g1", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(tdrv_load(&t, "g1", "h2", t.img1, &id, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(tdrv_wait(&t, id).state, HV_MIG_COMPLETED);
	cr_assert_eq(hv_libvirt_ops.guest_config(t.hv, "g1", &xml, err, sizeof(err)), 0, "%s", err);
	cr_assert(strstr(xml, "<name>g1</name>"), "%s", xml);
	free(xml);
	cr_assert_eq(hv_libvirt_ops.guest_destroy(t.hv, "g1", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(hv_libvirt_ops.guest_config(t.hv, "g1", &xml, err, sizeof(err)), 0, "%s", err);
	cr_assert(strstr(xml, "<name>g1</name>"), "%s", xml);
	cr_assert_eq(hv_libvirt_ops.guest_define(t.hv, "g1", xml, err, sizeof(err)), -EEXIST);
	free(xml);

	const char *g9 = "<domain type='test'><name>g9</name><memory unit='MiB'>32</memory>"
			 "<os><type arch='x86_64'>hvm</type></os></domain>";
	cr_assert_eq(hv_libvirt_ops.guest_define(t.hv, "g8", g9, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "g8"), "%s", err);
	cr_assert_eq(hv_libvirt_ops.guest_define(t.hv, "g9", g9, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(hv_libvirt_ops.guest_config(t.hv, "g9", &xml, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(xml, g9);
	free(xml);
	cr_assert_eq(hv_libvirt_ops.guest_config(t.hv, "g7", &xml, err, sizeof(err)), -ENOENT);
	tdrv_close(&t);
}
