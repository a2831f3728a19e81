/*
 * hv_libvirt: the libvirt backend, for real clusters: any libvirt URI
 * (qemu:///system, qemu+ssh://node/system, qemu+tcp://ADDR/system,
 * xen+ssh://node/system through libvirt's libxl driver, ...).
 *
 * One virConnect per host, kept alive by libvirt's keepalive (a dead host
 * is noticed within interval * (count + 1) seconds) and opened again at the
 * next use once dead. libvirt's default event loop runs in a thread of its
 * own, which keepalive needs.
 *
 * Guests are transient domains (virDomainCreateXML) that migd defines from
 * its own settings (hv_libvirt_domain_xml), or domains already running on
 * the host a guest is added on, taken over as they are; the hosts are the
 * truth about where they run: guest_info and list_guests ask them. A domain defined
 * persistently by someone else keeps its definition where it goes
 * (PERSIST_DEST | UNDEFINE_SOURCE); a transient one leaves no definition
 * behind on any host.
 *
 * A migration is peer-to-peer and live (the source's libvirtd drives it and
 * connects to the destination itself), started by virDomainMigrateToURI3,
 * which blocks until the end: a worker thread per migration makes that
 * call, and a monitor thread reads virDomainGetJobStats on the source every
 * 200 ms, so migrate_poll only copies the latest figures and never waits on
 * the network. Once done the worker takes the final figures libvirt keeps
 * for the completed job (on the destination for a success: a transient
 * domain is gone from the source; on the source after a failure).
 *
 * Checkpoints (pause, resume, save, load, destroy, a domain's XML) are
 * hv_libvirt_ckpt.c: its saves and loads are jobs in the same list, with
 * the same ids, polls and aborts as migrations (hv_libvirt_int.h).
 *
 * Threads and ownership: hv->lock guards the host and migration lists;
 * each migration has its own lock for its figures. A migration's threads
 * touch only the migration (they hold their own references to the source
 * domain and the destination connection), so close can leave a migration
 * still in libvirt's hands to finish without migd: its worker then frees
 * it.
 */
#include "hv_libvirt.h"
#include "hv_libvirt_int.h"

#include <errno.h>
#include <limits.h>
#include <unistd.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define MONITOR_PERIOD_MS 200
#define DEFAULT_BRIDGE "br0"
#define DEFAULT_SERIAL_DIR "/var/log/libvirt/qemu"
#define DEFAULT_EMULATOR "/usr/bin/qemu-system-x86_64"

/* ---- pure pieces (hv_libvirt.h) ----------------------------------------- */

int hv_libvirt_valid_name(const char *name)
{
	size_t len = name ? strlen(name) : 0;
	if (len == 0 || len >= HV_LIBVIRT_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

static int fragment_option(const char *uri, char *item, struct hv_libvirt_uri *out, char *err,
			   size_t errlen)
{
	char *eq = strchr(item, '=');
	if (!eq || eq == item || !eq[1]) {
		snprintf(err, errlen, "libvirt URI \"%s\": \"%s\": expected key=value after '#'",
			 uri, item);
		return -EINVAL;
	}
	*eq = '\0';
	const char *value = eq + 1;
	char *dst;
	if (strcmp(item, "migrate_uri") == 0) {
		dst = out->migrate_uri;
	} else if (strcmp(item, "peer_uri") == 0) {
		dst = out->peer_uri;
	} else {
		snprintf(err, errlen,
			 "libvirt URI \"%s\": unknown option \"%s\" after '#' (known: migrate_uri, peer_uri)",
			 uri, item);
		return -EINVAL;
	}
	if (*dst) {
		snprintf(err, errlen, "libvirt URI \"%s\": option \"%s\" given twice", uri, item);
		return -EINVAL;
	}
	if (!strstr(value, "://")) {
		snprintf(err, errlen, "libvirt URI \"%s\": %s \"%s\": expected a URI like "
			 "tcp://10.0.0.12", uri, item, value);
		return -EINVAL;
	}
	snprintf(dst, HV_LIBVIRT_URI_MAX, "%s", value);
	return 0;
}

int hv_libvirt_parse_uri(const char *uri, struct hv_libvirt_uri *out, char *err,
			 size_t errlen)
{
	char frag[HV_LIBVIRT_URI_MAX];
	memset(out, 0, sizeof(*out));
	if (!uri || !*uri || strlen(uri) >= HV_LIBVIRT_URI_MAX) {
		snprintf(err, errlen, "libvirt URI \"%.60s\": expected 1 to %d bytes", uri ? uri : "",
			 HV_LIBVIRT_URI_MAX - 1);
		return -EINVAL;
	}
	const char *sep = strstr(uri, "://");
	size_t scheme_len = strcspn(uri, ":");
	if (!sep || (size_t)(sep - uri) != scheme_len || scheme_len == 0) {
		snprintf(err, errlen, "libvirt URI \"%s\": expected DRIVER[+TRANSPORT]://[HOST]/PATH "
			 "like qemu:///system or qemu+ssh://node/system", uri);
		return -EINVAL;
	}
	for (const char *p = uri; *p; p++) {
		if (*p == ' ' || *p == '\'' || *p == '"' || *p == '<' || *p == '>' ||
		    (unsigned char)*p < 0x20) {
			snprintf(err, errlen, "libvirt URI \"%s\": unexpected character '%c'", uri,
				 *p < 0x20 ? '?' : *p);
			return -EINVAL;
		}
	}
	size_t main_len = strcspn(uri, "#");
	memcpy(out->libvirt_uri, uri, main_len);
	out->libvirt_uri[main_len] = '\0';
	if (uri[main_len] == '#') {
		snprintf(frag, sizeof(frag), "%s", uri + main_len + 1);
		char *save = NULL;
		for (char *item = strtok_r(frag, "&", &save); item; item = strtok_r(NULL, "&", &save)) {
			int rc = fragment_option(uri, item, out, err, errlen);
			if (rc < 0)
				return rc;
		}
	}
	if (!*out->peer_uri)
		snprintf(out->peer_uri, sizeof(out->peer_uri), "%s", out->libvirt_uri);
	return 0;
}

unsigned long long hv_libvirt_bandwidth_mib(uint64_t bandwidth_bps)
{
	const uint64_t mib = 1024 * 1024;
	return bandwidth_bps ? (bandwidth_bps + mib - 1) / mib : 0;
}

unsigned long hv_libvirt_migrate_flags(const struct hv_migrate_params *params, int persistent,
				       int tls)
{
	unsigned long flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER;
	if (tls)
		flags |= VIR_MIGRATE_TLS;
	if (persistent)
		flags |= VIR_MIGRATE_PERSIST_DEST | VIR_MIGRATE_UNDEFINE_SOURCE;
	if (params && params->auto_converge)
		flags |= VIR_MIGRATE_AUTO_CONVERGE;
	if (params && params->postcopy)
		flags |= VIR_MIGRATE_POSTCOPY;
	if (params && params->parallel_connections > 1)
		flags |= VIR_MIGRATE_PARALLEL;
	return flags;
}

void hv_libvirt_guest_mac(const char *name, char out[18])
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	snprintf(out, 18, "52:54:00:%02x:%02x:%02x", (h >> 16) & 0xff, (h >> 8) & 0xff, h & 0xff);
}

int hv_libvirt_pick_ip(const char *subnet, const char *const *used, size_t n, char *out,
		       size_t outlen)
{
	for (int x = 2; x <= 254; x++) {
		char ip[64];
		bool taken = false;
		snprintf(ip, sizeof(ip), "%s.1.%d", subnet, x);
		for (size_t i = 0; i < n && !taken; i++)
			taken = used[i] && strcmp(used[i], ip) == 0;
		if (!taken) {
			snprintf(out, outlen, "%s", ip);
			return 0;
		}
	}
	return -ENOSPC;
}

static const char *or_default(const char *value, const char *def)
{
	return value ? value : def;
}

/* The guest's kernel command line, when it boots the image. */
static void guest_cmdline(const struct hv_libvirt_env *env, const char *name, const char *ip,
			  char *out, size_t len)
{
	size_t n = (size_t)snprintf(out, len, "console=ttyS0 no_timer_check migd.name=%s", name);
	if (ip && n < len)
		n += (size_t)snprintf(out + n, len - n, " migd.ip=%s/16 migd.gw=%s.0.1", ip,
				      env->guest_subnet);
	if (env->agent_endpoint && *env->agent_endpoint && n < len)
		snprintf(out + n, len - n, " migd.agent=%s", env->agent_endpoint);
}

int hv_libvirt_domain_xml(const struct hv_libvirt_env *env, const char *domain_type,
			  const struct hv_guest_spec *spec, const char *guest_ip, char **out,
			  char *err, size_t errlen)
{
	char mac[18], cmdline[512];
	char *xml = NULL;
	size_t size = 0;
	const char *bridge = or_default(env->bridge, DEFAULT_BRIDGE);
	*out = NULL;
	if (!hv_libvirt_valid_name(spec->name)) {
		snprintf(err, errlen, "guest \"%s\": expected 1 to %d letters, digits, '-', '_' or '.'",
			 spec->name ? spec->name : "", HV_LIBVIRT_NAME_MAX - 1);
		return -EINVAL;
	}
	if (spec->memory_bytes < (16u << 20)) {
		snprintf(err, errlen, "guest %s: memory %llu bytes: libvirt guests need at least 16 MiB",
			 spec->name, (unsigned long long)spec->memory_bytes);
		return -EINVAL;
	}
	FILE *f = open_memstream(&xml, &size);
	if (!f)
		return -ENOMEM;
	hv_libvirt_guest_mac(spec->name, mac);
	/* <genid/>: a VM generation ID libvirt makes, kept by a migration and
	 * made anew by a restore (VIR_QEMU_PROCESS_START_GEN_VMID), so that a
	 * restored Linux guest reseeds its CRNG (hv_qmp_vm.c, vmgenid_arg) */
	fprintf(f, "<domain type='%s'>\n  <name>%s</name>\n  <genid/>\n", domain_type,
		spec->name);
	fprintf(f, "  <memory unit='KiB'>%llu</memory>\n  <vcpu>1</vcpu>\n",
		(unsigned long long)((spec->memory_bytes + 1023) / 1024));
	fprintf(f, "  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n");
	if (env->image_dir && *env->image_dir) {
		guest_cmdline(env, spec->name, guest_ip, cmdline, sizeof(cmdline));
		fprintf(f, "    <kernel>%s/vmlinuz</kernel>\n    <initrd>%s/initrd.img</initrd>\n"
			"    <cmdline>%s</cmdline>\n", env->image_dir, env->image_dir, cmdline);
	}
	fprintf(f, "  </os>\n");
	/* the guest's /init installs this as /etc/sfs.conf (as with the qmp
	 * backend's -fw_cfg); the file must exist at this path on every host */
	char key[PATH_MAX + 300] = "", pub[PATH_MAX + 16] = "";
	if (env->keys_dir && *env->keys_dir) { /* the agent's key pair (auth.h) */
		snprintf(key, sizeof(key), "%s/agents/%s.key", env->keys_dir, spec->name);
		snprintf(pub, sizeof(pub), "%s/migd.pub", env->keys_dir);
		if (access(key, R_OK) < 0 || access(pub, R_OK) < 0)
			key[0] = '\0';
	}
	int has_sfs = env->sfs_conf && *env->sfs_conf;
	if (has_sfs || *key)
		fprintf(f, "  <sysinfo type='fwcfg'>\n");
	if (has_sfs)
		fprintf(f, "    <entry name='opt/migd/sfs.conf' file='%s'/>\n", env->sfs_conf);
	if (*key)
		fprintf(f, "    <entry name='opt/migd/agent.key' file='%s'/>\n"
			"    <entry name='opt/migd/migd.pub' file='%s'/>\n", key, pub);
	if (has_sfs || *key)
		fprintf(f, "  </sysinfo>\n");
	/* ACPI: the guest kernel finds QEMU's fw_cfg device (and the sfs.conf
	 * in it) through ACPI's QEMU0002 entry; without <acpi/> libvirt starts
	 * QEMU with -no-acpi and /sys/firmware/qemu_fw_cfg stays empty */
	fprintf(f, "  <features><acpi/>");
	if (strcmp(domain_type, "qemu") == 0)
		fprintf(f, "<tcg><tb-cache unit='MiB'>%u</tb-cache></tcg>",
			env->tb_size_mib ? env->tb_size_mib : 64);
	fprintf(f, "</features>\n");
	fprintf(f, "  <devices>\n    <emulator>%s</emulator>\n",
		or_default(env->emulator, DEFAULT_EMULATOR));
	if (*bridge)
		fprintf(f, "    <interface type='bridge'><source bridge='%s'/><mac address='%s'/>"
			"<model type='virtio'/><rom enabled='no'/></interface>\n", bridge, mac);
	fprintf(f, "    <serial type='file'><source path='%s/%s.serial'/></serial>\n",
		or_default(env->serial_dir, DEFAULT_SERIAL_DIR), spec->name);
	fprintf(f, "    <controller type='usb' model='none'/>\n    <memballoon model='none'/>\n"
		"  </devices>\n</domain>\n");
	if (fclose(f) != 0 || !xml) {
		free(xml);
		return -ENOMEM;
	}
	*out = xml;
	return 0;
}

/* ---- libvirt's event loop and errors ------------------------------------ */

static pthread_once_t event_once = PTHREAD_ONCE_INIT;
static int event_rc;

static void quiet_errors(void *opaque, virErrorPtr error)
{
	/* the default handler prints every error on stderr; we log where we know
	 * what failed */
	(void)opaque;
	(void)error;
}

static void *event_loop(void *arg)
{
	(void)arg;
	for (;;)
		if (virEventRunDefaultImpl() < 0)
			log_warnx("libvirt: event loop: %s", virGetLastErrorMessage());
	return NULL;
}

/* Once per process: libvirt's event loop (needed by keepalive) runs for
 * the life of the process in a detached thread. */
static void event_start(void)
{
	pthread_t t;
	virSetErrorFunc(NULL, quiet_errors);
	if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0) {
		event_rc = -EIO;
		return;
	}
	if (pthread_create(&t, NULL, event_loop, NULL) != 0) {
		event_rc = -EAGAIN;
		return;
	}
	pthread_detach(t);
}

const char *lv_error(void)
{
	const char *msg = virGetLastErrorMessage();
	return msg && *msg ? msg : "unknown libvirt error";
}

/* ---- the driver's state ------------------------------------------------- */

struct lv_host *lv_host_find(struct hv *hv, const char *name)
{
	for (size_t i = 0; name && i < hv->n_hosts; i++)
		if (strcmp(hv->hosts[i]->name, name) == 0)
			return hv->hosts[i];
	return NULL;
}

static struct lv_mig *mig_find(struct hv *hv, uint64_t id)
{
	for (size_t i = 0; i < hv->n_migs; i++)
		if (hv->migs[i]->id == id)
			return hv->migs[i];
	return NULL;
}

/* A live connection to host, opened (again) when there is none. */
virConnectPtr lv_host_conn(struct hv *hv, struct lv_host *h, char *err, size_t errlen)
{
	if (h->conn && virConnectIsAlive(h->conn) == 1)
		return h->conn;
	if (h->conn) {
		log_warnx("host %s: connection to %s lost; reconnecting", h->name, h->u.libvirt_uri);
		virConnectClose(h->conn);
		h->conn = NULL;
	}
	virConnectPtr c = virConnectOpenAuth(h->u.libvirt_uri, virConnectAuthPtrDefault, 0);
	if (!c) {
		snprintf(err, errlen, "host %s: cannot connect to %s: %s", h->name, h->u.libvirt_uri,
			 lv_error());
		return NULL;
	}
	unsigned interval = hv->env.keepalive_interval_s ? hv->env.keepalive_interval_s : 5;
	unsigned count = hv->env.keepalive_count ? hv->env.keepalive_count : 3;
	if (virConnectSetKeepAlive(c, (int)interval, count) < 0)
		log_debug("host %s: no keepalive on %s: %s", h->name, h->u.libvirt_uri, lv_error());
	h->conn = c;
	return c;
}

/* The configured domain type; for auto "kvm" when the host has it, else
 * "qemu", asked at the first guest created there (a fresh libvirtd probes
 * QEMU for this, seconds under TCG). A /dev/kvm that exists but does not
 * run guests (nested sandboxes) still says kvm: set qemu there. */
static const char *host_domain_type(const struct hv *hv, struct lv_host *h)
{
	const char *type = hv->env.domain_type;
	if (type && *type && strcmp(type, "auto") != 0)
		return type;
	if (!*h->domain_type) {
		char *caps = virConnectGetCapabilities(h->conn);
		snprintf(h->domain_type, sizeof(h->domain_type), "%s",
			 caps && strstr(caps, "<domain type='kvm'") ? "kvm" : "qemu");
		free(caps);
	}
	return h->domain_type;
}

static void host_free(struct lv_host *h)
{
	if (!h)
		return;
	if (h->conn)
		virConnectClose(h->conn);
	free(h->uri);
	free(h);
}

void lv_mig_free(struct lv_mig *m)
{
	if (!m)
		return;
	if (m->dom)
		virDomainFree(m->dom);
	if (m->dconn)
		virConnectClose(m->dconn);
	free(m->path);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m);
}

/* ---- open, close, hosts ------------------------------------------------- */

static void lv_close(struct hv *hv);

static int lv_open(const struct hv_env *env, struct hv **out, char *err, size_t errlen)
{
	pthread_once(&event_once, event_start);
	if (event_rc < 0) {
		snprintf(err, errlen, "libvirt: cannot start its event loop: %s", lv_error());
		return event_rc;
	}
	struct hv *hv = calloc(1, sizeof(*hv));
	if (!hv)
		return -ENOMEM;
	pthread_mutex_init(&hv->lock, NULL);
	hv->next_id = 1;
	if (env)
		hv->env = env->libvirt;
	const char **strs[] = { &hv->env.image_dir, &hv->env.bridge, &hv->env.serial_dir,
				&hv->env.emulator, &hv->env.guest_subnet, &hv->env.agent_endpoint,
				&hv->env.domain_type, &hv->env.sfs_conf, &hv->env.keys_dir };
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++) {
		if (!*strs[i])
			continue;
		if (!(hv->strings[i] = strdup(*strs[i]))) {
			lv_close(hv);
			return -ENOMEM;
		}
		*strs[i] = hv->strings[i];
	}
	const char *type = hv->env.domain_type;
	if (type && *type && strcmp(type, "auto") != 0 && strcmp(type, "qemu") != 0 &&
	    strcmp(type, "kvm") != 0) {
		snprintf(err, errlen, "libvirt domain_type \"%s\": expected qemu, kvm or auto", type);
		lv_close(hv);
		return -EINVAL;
	}
	if (hv->env.guest_subnet && *hv->env.guest_subnet) {
		unsigned a, b;
		char end;
		if (sscanf(hv->env.guest_subnet, "%u.%u%c", &a, &b, &end) != 2 || a > 255 || b > 255) {
			snprintf(err, errlen, "libvirt guest_subnet \"%s\": expected A.B like 10.77",
				 hv->env.guest_subnet);
			lv_close(hv);
			return -EINVAL;
		}
	}
	*out = hv;
	return 0;
}

static void lv_close(struct hv *hv)
{
	if (!hv)
		return;
	for (size_t i = 0; i < hv->n_migs; i++) {
		struct lv_mig *m = hv->migs[i];
		pthread_mutex_lock(&m->lock);
		m->stop_monitor = true;
		pthread_cond_broadcast(&m->cond);
		pthread_mutex_unlock(&m->lock);
		if (m->monitor_started)
			pthread_join(m->monitor, NULL);
		pthread_mutex_lock(&m->lock);
		bool done = m->done;
		m->orphaned = !done;
		pthread_mutex_unlock(&m->lock);
		if (done) {
			pthread_join(m->worker, NULL);
			lv_mig_free(m);
		} else {
			/* libvirt finishes it without us; the worker frees m */
			log_warnx("%s of %s (%s%s%s): still running in libvirt at close",
				  m->kind == LV_JOB_SAVE ? "save" : m->kind == LV_JOB_LOAD ? "load"
							   : "migration",
				  m->guest, m->src, *m->src && *m->dst ? " to " : "", m->dst);
			pthread_detach(m->worker);
		}
	}
	for (size_t i = 0; i < hv->n_hosts; i++)
		host_free(hv->hosts[i]);
	lv_known_free(hv);
	for (size_t i = 0; i < ARRAY_SIZE(hv->strings); i++)
		free(hv->strings[i]);
	free(hv->hosts);
	free(hv->migs);
	pthread_mutex_destroy(&hv->lock);
	free(hv);
}

static int host_add_locked(struct hv *hv, const char *name, const char *uri, char *err,
			   size_t errlen)
{
	struct hv_libvirt_uri u;
	if (!hv_libvirt_valid_name(name)) {
		snprintf(err, errlen, "host \"%s\": expected 1 to %d letters, digits, '-', '_' or '.'",
			 name ? name : "", HV_LIBVIRT_NAME_MAX - 1);
		return -EINVAL;
	}
	int rc = hv_libvirt_parse_uri(uri, &u, err, errlen);
	if (rc < 0)
		return rc;
	struct lv_host *h = lv_host_find(hv, name);
	if (h && strcmp(h->uri, uri) != 0) {
		snprintf(err, errlen, "host %s: already in the libvirt backend as %s", name, h->uri);
		return -EEXIST;
	}
	if (!h) {
		/* kept even when the host does not answer now: it is connected at
		 * its next use (after a migd restart its hosts may come back later) */
		if (GROW(hv->hosts, hv->cap_hosts, hv->n_hosts + 1) < 0 ||
		    !(h = calloc(1, sizeof(*h))) || !(h->uri = strdup(uri))) {
			free(h);
			snprintf(err, errlen, "host %s: out of memory", name);
			return -ENOMEM;
		}
		snprintf(h->name, sizeof(h->name), "%s", name);
		h->u = u;
		hv->hosts[hv->n_hosts++] = h;
	}
	return lv_host_conn(hv, h, err, errlen) ? 0 : -EHOSTUNREACH;
}

static int lv_host_add(struct hv *hv, const char *name, const char *uri, char *err,
		       size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = host_add_locked(hv, name, uri, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

static int lv_host_remove(struct hv *hv, const char *name, char *err, size_t errlen)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&hv->lock);
	for (size_t i = 0; i < hv->n_hosts; i++) {
		if (strcmp(hv->hosts[i]->name, name) != 0)
			continue;
		bool busy = false;
		for (size_t j = 0; j < hv->n_migs; j++)
			busy |= !hv->migs[j]->done && (strcmp(hv->migs[j]->src, name) == 0 ||
						       strcmp(hv->migs[j]->dst, name) == 0);
		if (busy) {
			snprintf(err, errlen, "host %s: a migration from or to it is running", name);
			rc = -EBUSY;
			break;
		}
		host_free(hv->hosts[i]);
		hv->hosts[i] = hv->hosts[--hv->n_hosts];
		rc = 0;
		break;
	}
	if (rc == -ENOENT)
		snprintf(err, errlen, "host %s: not in the libvirt backend", name);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

/* ---- guests -------------------------------------------------------------- */

bool lv_domain_active(virDomainPtr d, bool *running)
{
	int state = 0, reason = 0;
	if (virDomainGetState(d, &state, &reason, 0) < 0)
		return false;
	*running = state == VIR_DOMAIN_RUNNING;
	return state == VIR_DOMAIN_RUNNING || state == VIR_DOMAIN_PAUSED ||
	       state == VIR_DOMAIN_BLOCKED || state == VIR_DOMAIN_PMSUSPENDED;
}

/* The address migd gave a guest on its kernel command line (migd.ip=), or
 * "" when it has none (not one of ours, or BIOS-only). */
static void domain_addr(virDomainPtr d, char *out, size_t len)
{
	char *xml = virDomainGetXMLDesc(d, 0);
	const char *ip = xml ? strstr(xml, "migd.ip=") : NULL;
	if (ip)
		ip += strlen("migd.ip=");
	snprintf(out, len, "%.*s", ip ? (int)strcspn(ip, "/ <") : 0, ip ? ip : "");
	free(xml);
}

static void info_of(virDomainPtr d, const struct lv_host *h, bool running,
		    struct hv_guest_info *out)
{
	virDomainInfo di;
	*out = (struct hv_guest_info){ .running = running };
	snprintf(out->name, sizeof(out->name), "%s", virDomainGetName(d));
	snprintf(out->host, sizeof(out->host), "%s", h->name);
	if (virDomainGetInfo(d, &di) == 0)
		out->memory_bytes = (uint64_t)di.maxMem * 1024;
	domain_addr(d, out->addr, sizeof(out->addr));
}

/* The active migration of guest, or NULL. */
struct lv_mig *lv_guest_migrating(struct hv *hv, const char *guest)
{
	for (size_t i = 0; i < hv->n_migs; i++) {
		struct lv_mig *m = hv->migs[i];
		pthread_mutex_lock(&m->lock);
		bool active = !m->done;
		pthread_mutex_unlock(&m->lock);
		if (active && strcmp(m->guest, guest) == 0)
			return m;
	}
	return NULL;
}

/* Where guest runs: a guest in a migration of ours is on its source until
 * the migration ends; otherwise the host with an active domain of that
 * name, a running one before a paused one (an incoming migration of
 * someone else's is paused on its destination). */
int lv_guest_info_locked(struct hv *hv, const char *guest, struct hv_guest_info *out,
			 char *err, size_t errlen)
{
	struct lv_mig *m = lv_guest_migrating(hv, guest);
	int found = 0, unreachable = 0;
	for (size_t i = 0; i < hv->n_hosts && found < 2; i++) {
		struct lv_host *h = hv->hosts[i];
		char cerr[256];
		bool running = false;
		if (m && strcmp(h->name, m->src) != 0)
			continue;
		virConnectPtr c = lv_host_conn(hv, h, cerr, sizeof(cerr));
		if (!c) {
			unreachable++;
			continue;
		}
		virDomainPtr d = virDomainLookupByName(c, guest);
		if (d && lv_domain_active(d, &running) && (found == 0 || running)) {
			info_of(d, h, running, out);
			found = running ? 2 : 1;
		}
		if (d)
			virDomainFree(d);
	}
	if (found)
		return 0;
	if (unreachable) {
		snprintf(err, errlen, "guest %s: not on any reachable host (%d hosts do not answer)",
			 guest, unreachable);
		return -EHOSTUNREACH;
	}
	snprintf(err, errlen, "guest %s: runs on no host of the libvirt backend", guest);
	return -ENOENT;
}

static int lv_guest_info(struct hv *hv, const char *guest, struct hv_guest_info *out,
			 char *err, size_t errlen)
{
	if (!guest) {
		snprintf(err, errlen, "guest (null): no name");
		return -EINVAL;
	}
	pthread_mutex_lock(&hv->lock);
	int rc = lv_guest_info_locked(hv, guest, out, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

/* Append host h's active domains to *out; an incoming migration of ours
 * (h its destination, still running) is not a guest of h yet. */
static int list_host(struct hv *hv, struct lv_host *h, struct hv_guest_info **out, size_t *n,
		     size_t *cap, char *err, size_t errlen)
{
	virDomainPtr *doms = NULL;
	virConnectPtr c = lv_host_conn(hv, h, err, errlen);
	if (!c)
		return -EHOSTUNREACH;
	int count = virConnectListAllDomains(c, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
	if (count < 0) {
		snprintf(err, errlen, "host %s: listing domains: %s", h->name, lv_error());
		return -EIO;
	}
	int rc = 0;
	for (int i = 0; i < count; i++) {
		bool running = false;
		struct lv_mig *m = lv_guest_migrating(hv, virDomainGetName(doms[i]));
		if (rc == 0 && lv_domain_active(doms[i], &running) &&
		    !(m && strcmp(m->dst, h->name) == 0)) {
			if ((rc = GROW(*out, *cap, *n + 1)) == 0)
				info_of(doms[i], h, running, &(*out)[(*n)++]);
			else
				snprintf(err, errlen, "host %s: out of memory", h->name);
		}
		virDomainFree(doms[i]);
	}
	free(doms);
	return rc;
}

/* host NULL: the guests of every host. */
static int lv_list_guests(struct hv *hv, const char *host, struct hv_guest_info **out,
			  size_t *n, char *err, size_t errlen)
{
	size_t cap = 0;
	int rc = 0;
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&hv->lock);
	struct lv_host *h = host ? lv_host_find(hv, host) : NULL;
	if (host && !h) {
		snprintf(err, errlen, "host %s: not in the libvirt backend", host);
		rc = -ENOENT;
	}
	for (size_t i = 0; rc == 0 && i < hv->n_hosts; i++)
		if (!h || hv->hosts[i] == h)
			rc = list_host(hv, hv->hosts[i], out, n, &cap, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	if (rc < 0) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

/* Addresses in use by guests of any reachable host ("A.B.1.X"): read from
 * the migd.ip= of their kernel command lines. */
static int used_ips(struct hv *hv, char ***out, size_t *n)
{
	size_t cap = 0;
	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < hv->n_hosts; i++) {
		char cerr[256];
		virDomainPtr *doms = NULL;
		virConnectPtr c = lv_host_conn(hv, hv->hosts[i], cerr, sizeof(cerr));
		int count = c ? virConnectListAllDomains(c, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE) : -1;
		for (int j = 0; j < count; j++) {
			char ip[48];
			domain_addr(doms[j], ip, sizeof(ip));
			if (*ip && GROW(*out, cap, *n + 1) == 0 && ((*out)[*n] = strdup(ip)))
				(*n)++;
			virDomainFree(doms[j]);
		}
		free(doms);
	}
	return 0;
}

static int guest_create_locked(struct hv *hv, const char *host,
			       const struct hv_guest_spec *spec, char *err, size_t errlen)
{
	struct hv_guest_info where;
	char ip[64] = "", ierr[256];
	char *xml = NULL, **used = NULL;
	size_t n_used = 0;
	int rc;
	struct lv_host *h = lv_host_find(hv, host);
	if (!h) {
		snprintf(err, errlen, "guest %s: host %s: not in the libvirt backend",
			 spec->name ? spec->name : "", host ? host : "(null)");
		return -ENOENT;
	}
	if (spec->name && lv_guest_info_locked(hv, spec->name, &where, ierr, sizeof(ierr)) == 0) {
		if (strcmp(where.host, h->name) == 0) {
			/* a domain someone else started: migd takes it as it is */
			log_info("guest %s: already runs on %s; taken over as it is", spec->name,
				 h->name);
			return 0;
		}
		snprintf(err, errlen, "guest %s: already runs on %s, not %s", spec->name, where.host,
			 h->name);
		return -EEXIST;
	}
	virConnectPtr c = lv_host_conn(hv, h, err, errlen);
	if (!c)
		return -EHOSTUNREACH;
	if (hv->env.image_dir && *hv->env.image_dir && hv->env.guest_subnet &&
	    *hv->env.guest_subnet) {
		used_ips(hv, &used, &n_used);
		rc = hv_libvirt_pick_ip(hv->env.guest_subnet, (const char *const *)used, n_used, ip,
					sizeof(ip));
		for (size_t i = 0; i < n_used; i++)
			free(used[i]);
		free(used);
		if (rc < 0) {
			snprintf(err, errlen, "guest %s: no free address left in %s.1.0/24", spec->name,
				 hv->env.guest_subnet);
			return rc;
		}
	}
	rc = hv_libvirt_domain_xml(&hv->env, host_domain_type(hv, h), spec, *ip ? ip : NULL, &xml, err,
				   errlen);
	if (rc < 0)
		return rc;
	virDomainPtr d = virDomainCreateXML(c, xml, 0);
	free(xml);
	if (!d) {
		snprintf(err, errlen, "guest %s: host %s: cannot start the domain: %s", spec->name,
			 h->name, lv_error());
		return -EIO;
	}
	log_info("guest %s: started on %s (%s%s%s)", spec->name, h->name, host_domain_type(hv, h),
		 *ip ? ", " : "", ip);
	virDomainFree(d);
	return 0;
}

static int lv_guest_create(struct hv *hv, const char *host, const struct hv_guest_spec *spec,
			   char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = guest_create_locked(hv, host, spec, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

/* ---- migrations ----------------------------------------------------------- */

static uint64_t param_ull(virTypedParameterPtr p, int n, const char *name)
{
	unsigned long long v = 0;
	return virTypedParamsGetULLong(p, n, name, &v) == 1 ? v : 0;
}

/*
 * The figures the cost model is calibrated from (calibrate.h): libvirt
 * passes QEMU's query-migrate on (hv_qmp.c says what each means). The
 * throughput is memory_bps (bytes/s); the dirty rate memory_dirty_rate
 * (pages/s) times memory_page_size, kept when a later answer has none (a
 * completed job's never has); round 0's content min(memory_normal,
 * memory_total / page - memory_constant) pages.
 */
static void model_of_stats(virTypedParameterPtr p, int n, struct hv_progress *out)
{
	uint64_t page = param_ull(p, n, VIR_DOMAIN_JOB_MEMORY_PAGE_SIZE);
	if (!page)
		page = 4096;
	uint64_t bps = param_ull(p, n, VIR_DOMAIN_JOB_MEMORY_BPS);
	if (bps)
		out->link_bps = bps;
	uint64_t dirty_pages = param_ull(p, n, VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE);
	if (dirty_pages)
		out->dirty_rate_bps = dirty_pages * page;
	uint64_t normal = param_ull(p, n, VIR_DOMAIN_JOB_MEMORY_NORMAL);
	uint64_t pages = param_ull(p, n, VIR_DOMAIN_JOB_MEMORY_TOTAL) / page;
	uint64_t constant = param_ull(p, n, VIR_DOMAIN_JOB_MEMORY_CONSTANT);
	uint64_t round0 = pages > constant ? pages - constant : 0;
	if (normal)
		out->ram_bytes = (normal < round0 ? normal : round0) * page;
	uint64_t setup = param_ull(p, n, VIR_DOMAIN_JOB_SETUP_TIME);
	if (setup)
		out->setup_ms = setup;
}

/* libvirt's job figures into out (state untouched). */
static void progress_of_stats(virTypedParameterPtr p, int n, struct hv_progress *out)
{
	out->transferred_bytes = param_ull(p, n, VIR_DOMAIN_JOB_DATA_PROCESSED);
	out->remaining_bytes = param_ull(p, n, VIR_DOMAIN_JOB_DATA_REMAINING);
	out->total_bytes = param_ull(p, n, VIR_DOMAIN_JOB_MEMORY_TOTAL);
	if (!out->total_bytes)
		out->total_bytes = param_ull(p, n, VIR_DOMAIN_JOB_DATA_TOTAL);
	out->rounds = (unsigned)param_ull(p, n, VIR_DOMAIN_JOB_MEMORY_ITERATION);
	out->total_time_ms = param_ull(p, n, VIR_DOMAIN_JOB_TIME_ELAPSED);
	out->downtime_ms = param_ull(p, n, VIR_DOMAIN_JOB_DOWNTIME);
	model_of_stats(p, n, out);
}

void *lv_monitor_main(void *arg)
{
	struct lv_mig *m = arg;
	pthread_mutex_lock(&m->lock);
	while (!m->done && !m->stop_monitor) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += MONITOR_PERIOD_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&m->cond, &m->lock, &until);
		if (m->done || m->stop_monitor)
			break;
		pthread_mutex_unlock(&m->lock);
		virTypedParameterPtr p = NULL;
		int n = 0, type = 0;
		int rc = virDomainGetJobStats(m->dom, &type, &p, &n, 0);
		bool want_postcopy = false;
		pthread_mutex_lock(&m->lock);
		struct hv_progress now = m->progress;
		if (rc == 0 && type != VIR_DOMAIN_JOB_NONE && !m->done)
			progress_of_stats(p, n, &now);
		/* a job being cancelled reports zeros: keep the last real figures */
		if (now.total_bytes > 0 && now.transferred_bytes >= m->progress.transferred_bytes) {
			m->progress = now;
			m->progress.downtime_ms = 0; /* only final figures carry it */
			/* post-copy after the first full round, as migd means it */
			want_postcopy = m->params.postcopy && !m->postcopy_started &&
					!m->abort_requested && m->progress.rounds >= 2;
		}
		virTypedParamsFree(p, n);
		if (want_postcopy) {
			pthread_mutex_unlock(&m->lock);
			int prc = virDomainMigrateStartPostCopy(m->dom, 0);
			pthread_mutex_lock(&m->lock);
			m->postcopy_started = prc == 0;
			if (prc < 0)
				log_warnx("migration of %s: cannot switch to post-copy: %s", m->guest,
					  lv_error());
			else
				log_info("migration of %s: switched to post-copy", m->guest);
			if (prc < 0)
				m->params.postcopy = 0; /* do not ask again */
		}
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

/* The figures libvirt keeps for the job that just ended, from dom. */
int lv_completed_stats(virDomainPtr d, struct hv_progress *out)
{
	virTypedParameterPtr p = NULL;
	int n = 0, type = 0;
	/* kept for `virsh domjobinfo --completed` too */
	if (virDomainGetJobStats(d, &type, &p, &n, VIR_DOMAIN_JOB_STATS_COMPLETED |
				 VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED) < 0)
		return -EIO;
	progress_of_stats(p, n, out);
	virTypedParamsFree(p, n);
	return type == VIR_DOMAIN_JOB_NONE ? -ENOENT : 0;
}

static int build_params(struct lv_mig *m, virTypedParameterPtr *p, int *n)
{
	int max = 0;
	unsigned long long mib = hv_libvirt_bandwidth_mib(m->params.bandwidth_bps);
	*p = NULL;
	*n = 0;
	if (*m->migrate_uri &&
	    virTypedParamsAddString(p, n, &max, VIR_MIGRATE_PARAM_URI, m->migrate_uri) < 0)
		return -EIO;
	if (mib && virTypedParamsAddULLong(p, n, &max, VIR_MIGRATE_PARAM_BANDWIDTH, mib) < 0)
		return -EIO;
	if (m->params.parallel_connections > 1 &&
	    virTypedParamsAddInt(p, n, &max, VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS,
				 (int)m->params.parallel_connections) < 0)
		return -EIO;
	return 0;
}

/* After virDomainMigrateToURI3 returned: the final word into fin. */
static void settle(struct lv_mig *m, int rc, const char *why, struct hv_progress *fin)
{
	struct hv_progress kept = { 0 };
	pthread_mutex_lock(&m->lock);
	bool aborted = m->abort_requested;
	*fin = m->progress; /* the monitor's last figures, unless libvirt kept more */
	pthread_mutex_unlock(&m->lock);
	if (rc == 0) {
		/* a transient domain is gone from the source: ask the destination */
		virDomainPtr dd = virDomainLookupByName(m->dconn, m->guest);
		if (dd && lv_completed_stats(dd, &kept) == 0 && kept.transferred_bytes > 0) {
			if (!kept.dirty_rate_bps) /* only a running job reports one */
				kept.dirty_rate_bps = fin->dirty_rate_bps;
			*fin = kept;
		} else {
			/* after post-copy libvirt 9.0 keeps none: the monitor's last
			 * figures, the call's duration, and no downtime figure */
			log_info("migration of %s: no completed job figures on %s; recording the "
				 "last progress and the call's duration", m->guest, m->dst);
			fin->total_time_ms = now_ms() - m->started_ms;
		}
		if (dd)
			virDomainFree(dd);
		fin->state = HV_MIG_COMPLETED;
		fin->remaining_bytes = 0;
		return;
	}
	if (lv_completed_stats(m->dom, &kept) == 0 && kept.transferred_bytes >= fin->transferred_bytes) {
		if (!kept.dirty_rate_bps)
			kept.dirty_rate_bps = fin->dirty_rate_bps;
		*fin = kept; /* what the failed job did, as libvirt kept it */
	}
	fin->state = aborted ? HV_MIG_CANCELLED : HV_MIG_FAILED;
	fin->downtime_ms = 0;
	if (!fin->total_time_ms)
		fin->total_time_ms = now_ms() - m->started_ms;
	snprintf(fin->error, sizeof(fin->error), "%s", why);
}

static void *worker_main(void *arg)
{
	struct lv_mig *m = arg;
	struct hv_progress fin = { 0 };
	virTypedParameterPtr p = NULL;
	int n = 0, rc;
	char why[sizeof(fin.error)] = "";
	if (m->params.max_downtime_ms &&
	    virDomainMigrateSetMaxDowntime(m->dom, m->params.max_downtime_ms, 0) < 0)
		log_warnx("migration of %s: max downtime %u ms not set: %s", m->guest,
			  m->params.max_downtime_ms, lv_error());
	rc = build_params(m, &p, &n);
	if (rc == 0) {
		rc = virDomainMigrateToURI3(m->dom, m->dconnuri, p, (unsigned)n, m->flags);
		if (rc < 0)
			snprintf(why, sizeof(why), "%s", lv_error());
	} else {
		snprintf(why, sizeof(why), "migration parameters: %s", lv_error());
	}
	virTypedParamsFree(p, n);
	uint64_t call_ms = now_ms() - m->started_ms;
	settle(m, rc, why, &fin);
	log_info("libvirt: migration of %s from %s to %s: %s; the call took %llu ms, libvirt "
		 "counts %llu ms, downtime %llu ms", m->guest, m->src, m->dst,
		 rc == 0 ? "completed" : why, (unsigned long long)call_ms,
		 (unsigned long long)fin.total_time_ms, (unsigned long long)fin.downtime_ms);
	pthread_mutex_lock(&m->lock);
	m->progress = fin;
	m->done = true;
	bool orphaned = m->orphaned;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (orphaned)
		lv_mig_free(m); /* the driver is gone (it joined the monitor) */
	return NULL;
}

static int check_start(struct hv *hv, const char *guest, struct lv_host *src,
		       struct lv_host *dst, const char *src_name, const char *dst_name,
		       char *err, size_t errlen)
{
	if (!src || !dst) {
		snprintf(err, errlen, "guest %s: host %s: not in the libvirt backend",
			 guest ? guest : "(null)", !src ? (src_name ? src_name : "(null)")
							: (dst_name ? dst_name : "(null)"));
		return -ENOENT;
	}
	if (src == dst) {
		snprintf(err, errlen, "guest %s: already on %s", guest, dst->name);
		return -EINVAL;
	}
	struct lv_mig *busy = lv_guest_migrating(hv, guest);
	if (busy) {
		if (busy->kind == LV_JOB_MIGRATE)
			snprintf(err, errlen, "guest %s: already migrating (to %s)", guest, busy->dst);
		else
			snprintf(err, errlen, "guest %s: a save or load of it is running", guest);
		return -EBUSY;
	}
	return 0;
}

/*
 * QEMU before 9.0 loses guest writes when it live-migrates a TCG guest
 * (BUGS in migd(8)). The qmp backend avoids it with 8 KiB more guest RAM;
 * libvirt rounds guest RAM to whole MiB, so here it can only be said: once
 * per source host whose libvirt runs a TCG guest (domain type qemu) on such
 * a QEMU.
 */
static void warn_tcg_writes(struct lv_host *src, virConnectPtr sc, virDomainPtr d)
{
	unsigned long ver = 0;
	const char *type = virConnectGetType(sc);
	if (src->warned_tcg || !type || strcmp(type, "QEMU") != 0 ||
	    virConnectGetVersion(sc, &ver) < 0 || ver == 0 || ver >= 9000000)
		return;
	char *xml = virDomainGetXMLDesc(d, 0);
	if (xml && strstr(xml, "<domain type='qemu'")) {
		log_warnx("host %s: libvirt runs TCG guests on QEMU %lu.%lu, whose live migration "
			  "can lose guest writes (fixed in QEMU 9.0; migd(8), BUGS): use KVM or a "
			  "newer QEMU", src->name, ver / 1000000, ver / 1000 % 1000);
		src->warned_tcg = true;
	}
	free(xml);
}

static int migrate_start_locked(struct hv *hv, const char *guest, const char *src_name,
				const char *dst_name, const struct hv_migrate_params *params,
				uint64_t *id, char *err, size_t errlen)
{
	struct lv_host *src = lv_host_find(hv, src_name), *dst = lv_host_find(hv, dst_name);
	int rc = check_start(hv, guest, src, dst, src_name, dst_name, err, errlen);
	if (rc < 0)
		return rc;
	virConnectPtr sc = lv_host_conn(hv, src, err, errlen);
	virConnectPtr dc = sc ? lv_host_conn(hv, dst, err, errlen) : NULL;
	if (!sc || !dc)
		return -EHOSTUNREACH;
	virDomainPtr d = virDomainLookupByName(sc, guest);
	bool running = false;
	if (!d || !lv_domain_active(d, &running)) {
		snprintf(err, errlen, "guest %s: not running on %s", guest, src->name);
		if (d)
			virDomainFree(d);
		return -ENOENT;
	}
	warn_tcg_writes(src, sc, d);
	struct lv_mig *m = calloc(1, sizeof(*m));
	if (!m || GROW(hv->migs, hv->cap_migs, hv->n_migs + 1) < 0) {
		free(m);
		virDomainFree(d);
		snprintf(err, errlen, "guest %s: out of memory", guest);
		return -ENOMEM;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	m->id = hv->next_id;
	snprintf(m->guest, sizeof(m->guest), "%s", guest);
	snprintf(m->src, sizeof(m->src), "%s", src->name);
	snprintf(m->dst, sizeof(m->dst), "%s", dst->name);
	snprintf(m->dconnuri, sizeof(m->dconnuri), "%s", dst->u.peer_uri);
	snprintf(m->migrate_uri, sizeof(m->migrate_uri), "%s", dst->u.migrate_uri);
	if (params)
		m->params = *params;
	m->flags = hv_libvirt_migrate_flags(&m->params, virDomainIsPersistent(d) == 1,
					    hv->env.migration_tls);
	m->dom = d;
	virConnectRef(dc);
	m->dconn = dc;
	m->started_ms = now_ms();
	m->progress.state = HV_MIG_ACTIVE;
	if (pthread_create(&m->worker, NULL, worker_main, m) != 0) {
		snprintf(err, errlen, "guest %s: cannot start a migration thread", guest);
		lv_mig_free(m);
		return -EAGAIN;
	}
	m->monitor_started = pthread_create(&m->monitor, NULL, lv_monitor_main, m) == 0;
	if (!m->monitor_started)
		log_warnx("migration of %s: no progress figures (no monitor thread)", guest);
	hv->migs[hv->n_migs++] = m;
	hv->next_id++;
	*id = m->id;
	log_debug("libvirt: migration %llu: %s from %s to %s (%s), flags 0x%lx",
		  (unsigned long long)m->id, guest, src->name, dst->name, m->dconnuri, m->flags);
	return 0;
}

static int lv_migrate_start(struct hv *hv, const char *guest, const char *src, const char *dst,
			    const struct hv_migrate_params *params, uint64_t *id, char *err,
			    size_t errlen)
{
	if (!hv_libvirt_valid_name(guest)) {
		snprintf(err, errlen, "guest \"%s\": not a libvirt guest name", guest ? guest : "");
		return -EINVAL;
	}
	pthread_mutex_lock(&hv->lock);
	int rc = migrate_start_locked(hv, guest, src, dst, params, id, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

static int lv_migrate_poll(struct hv *hv, uint64_t id, struct hv_progress *out, char *err,
			   size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	struct lv_mig *m = mig_find(hv, id);
	if (m) {
		pthread_mutex_lock(&m->lock);
		*out = m->progress;
		if (!m->done)
			out->state = HV_MIG_ACTIVE;
		pthread_mutex_unlock(&m->lock);
	} else {
		snprintf(err, errlen, "migration %llu: not known to the libvirt backend",
			 (unsigned long long)id);
	}
	pthread_mutex_unlock(&hv->lock);
	return m ? 0 : -ENOENT;
}

static int lv_migrate_abort(struct hv *hv, uint64_t id, char *err, size_t errlen)
{
	int rc = 0;
	pthread_mutex_lock(&hv->lock);
	struct lv_mig *m = mig_find(hv, id);
	if (!m) {
		snprintf(err, errlen, "migration %llu: not known to the libvirt backend",
			 (unsigned long long)id);
		pthread_mutex_unlock(&hv->lock);
		return -ENOENT;
	}
	if (m->kind == LV_JOB_LOAD) {
		rc = lv_load_abort(hv, m, err, errlen);
		pthread_mutex_unlock(&hv->lock);
		return rc;
	}
	pthread_mutex_lock(&m->lock);
	if (m->done) {
		snprintf(err, errlen, "migration %llu of guest %s: already finished",
			 (unsigned long long)id, m->guest);
		rc = -EALREADY;
	} else if (m->postcopy_started) {
		snprintf(err, errlen, "migration %llu of guest %s: in post-copy, past the switch-over "
			 "to %s, cannot abort", (unsigned long long)id, m->guest, m->dst);
		rc = -EBUSY;
	} else {
		m->abort_requested = true;
	}
	pthread_mutex_unlock(&m->lock);
	if (rc == 0 && virDomainAbortJob(m->dom) < 0) {
		/* no job yet (the worker is only starting it) or already over: the
		 * worker's result tells; a migration that went on is not aborted */
		snprintf(err, errlen, "migration %llu of guest %s: abort refused by %s: %s",
			 (unsigned long long)id, m->guest, m->src, lv_error());
		pthread_mutex_lock(&m->lock);
		m->abort_requested = false;
		pthread_mutex_unlock(&m->lock);
		rc = -EIO;
	}
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

static void lv_migrate_forget(struct hv *hv, uint64_t id)
{
	pthread_mutex_lock(&hv->lock);
	for (size_t i = 0; i < hv->n_migs; i++) {
		struct lv_mig *m = hv->migs[i];
		if (m->id != id)
			continue;
		pthread_mutex_lock(&m->lock);
		bool done = m->done;
		pthread_mutex_unlock(&m->lock);
		if (!done)
			break; /* a running migration is not forgotten */
		pthread_join(m->worker, NULL);
		if (m->monitor_started)
			pthread_join(m->monitor, NULL);
		lv_mig_free(m);
		hv->migs[i] = hv->migs[--hv->n_migs];
		break;
	}
	pthread_mutex_unlock(&hv->lock);
}

static int64_t lv_now_ns(struct hv *hv)
{
	(void)hv;
	return wall_ns();
}

static const char *const lv_schemes[] = {
	"qemu", "qemu+", "xen", "xen+", NULL,
};

const struct hv_ops hv_libvirt_ops = {
	.scheme = "libvirt",
	.schemes = lv_schemes,
	.open = lv_open,
	.close = lv_close,
	.host_add = lv_host_add,
	.host_remove = lv_host_remove,
	.guest_create = lv_guest_create,
	.guest_info = lv_guest_info,
	.list_guests = lv_list_guests,
	.migrate_start = lv_migrate_start,
	.migrate_poll = lv_migrate_poll,
	.migrate_abort = lv_migrate_abort,
	.migrate_forget = lv_migrate_forget,
	.now_ns = lv_now_ns,
	.guest_pause = lv_guest_pause,
	.guest_resume = lv_guest_resume,
	.save_start = lv_save_start,
	.load_start = lv_load_start,
	.guest_destroy = lv_guest_destroy,
	.guest_config = lv_guest_config,
	.guest_define = lv_guest_define,
};
