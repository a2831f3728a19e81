/*
 * hv_qmp: the QEMU backend. migd starts, migrates and stops QEMU processes
 * itself and talks to each over QMP on a Unix socket (qmp.c).
 *
 * Hosts. qmp:///HOST[?netns=NS&addr=A&cluster=NAME]. Without netns/addr
 * the host is read from the virtual cluster's
 * /run/vcluster/NAME/host/HOST.env (cluster default "vc"; lines netns=,
 * addr=, bridge=, uts=); with no such file it is a loopback host: QEMU
 * in migd's own network namespace, migrations to 127.0.0.1, the guest on
 * -netdev user. A namespace host runs its QEMUs inside the namespace
 * (setns(2) in the child before exec; also the host's UTS namespace when
 * its file names one) on a persistent tap device made there and enslaved
 * to the namespace's bridge, and receives migrations on its addr.
 *
 * Guests. The truth is on disk and in the live processes, never only in
 * memory, because QEMU outlives migd: each guest has a directory
 * STATE/GUEST/ with guest.json (memory, address, MAC and the argv shared by
 * every instance, fixed at creation so that source and destination always
 * match) and per host instance HOST.pid (QEMU's -pidfile), HOST.qmp (its
 * QMP socket), HOST.log (serial console), HOST.err (QEMU's stderr until it
 * daemonized), HOST.net (namespace and tap, to clean up) and, while the
 * instance is a migration destination not yet complete, HOST.incoming.
 * Where a guest runs is where a live instance without the incoming marker
 * is; guest_info/list_guests ask each live QEMU (query-status).
 *
 * A migration is a state machine advanced by migrate_poll so that nothing
 * blocks for long: spawn the destination with the same argv plus
 * "-incoming defer" (its launcher, QEMU's -daemonize parent, exits once it
 * is up) -> set capabilities and parameters on both ends, migrate-incoming
 * on the destination and migrate on the source -> poll query-migrate ->
 * completed: the destination must be running, then quit the source ->
 * done once it is gone (its files and tap are removed at forget, after
 * the row is written: a run of ip the migration need not wait for).
 * Failure or cancel at any point: kill the destination, clean its files
 * and tap, and make sure the source runs (cont if left paused). The
 * incoming marker is written before the destination starts and removed
 * only after the source quit, so a crash of migd at any point leaves files
 * that tell what happened; open() settles every guest (qvm_reconcile_all):
 * an unfinished incoming migration is cancelled and its destination
 * killed, a completed one gets its source quit. A guest never runs on two
 * hosts, and a migration never leaves it paused. (A checkpoint pauses
 * guests on purpose: hv_qmp_ckpt.c; the reconciliation leaves a paused
 * guest paused, and kills an unfinished load.)
 *
 * This file: hosts, the hv_ops and the migrations; hv_qmp_vm.c: a guest's
 * QEMU instances (files, processes, taps, QMP connections, reconciliation);
 * hv_qmp_ckpt.c: pause, resume, save, load, destroy, config, define;
 * hv_qmp_tls.c: the TLS credentials of a migration's two ends.
 * Every entry point takes the driver's mutex.
 */
#include "hv_qmp.h"
#include "hv_qmp_vm.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "qmp.h"
#include "util.h"

#define SWITCH_TIMEOUT_MS 30000
#define UNCAPPED_BPS 107374182400ull /* QEMU's own default is 32 MiB/s: far too low */

/* ---- hosts ---- */

struct qhost *qhost_find(struct hv *hv, const char *name)
{
	for (size_t i = 0; name && i < hv->n_hosts; i++)
		if (strcmp(hv->hosts[i].name, name) == 0)
			return &hv->hosts[i];
	return NULL;
}

/* Lines key=value of a vcluster host file into h (netns, addr, bridge). */
static void read_host_env(const char *path, struct qhost *h, bool *netns_set, bool *addr_set)
{
	FILE *f = fopen(path, "re");
	char line[256];
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		char *v = eq + 1;
		if (*v == '"' && v[strlen(v) - 1] == '"' && strlen(v) >= 2) {
			v[strlen(v) - 1] = '\0';
			v++;
		}
		if (strcmp(line, "netns") == 0 && !*netns_set)
			snprintf(h->netns, sizeof(h->netns), "%s", v);
		else if (strcmp(line, "addr") == 0 && !*addr_set)
			snprintf(h->addr, sizeof(h->addr), "%s", v);
		else if (strcmp(line, "bridge") == 0)
			snprintf(h->bridge, sizeof(h->bridge), "%s", v);
		else if (strcmp(line, "uts") == 0 && !*netns_set)
			snprintf(h->uts, sizeof(h->uts), "%s", v);
	}
	fclose(f);
}

static int parse_uri(const char *uri, struct qhost *h, char *err, size_t errlen)
{
	char buf[512], cluster[NAME_MAX_LEN] = "vc";
	bool netns_set = false, addr_set = false;
	memset(h, 0, sizeof(*h));
	if (strncmp(uri, "qmp:///", 7) != 0) {
		snprintf(err, errlen, "qmp URI \"%s\": expected qmp:///HOST[?netns=NS&addr=A&cluster=NAME]",
			 uri);
		return -EINVAL;
	}
	if (snprintf_checked(buf, sizeof(buf), "%s", uri + 7) < 0) {
		snprintf(err, errlen, "qmp URI \"%.60s...\": too long", uri);
		return -EINVAL;
	}
	char *query = strchr(buf, '?');
	if (query)
		*query++ = '\0';
	if (!qvm_valid_name(buf)) {
		snprintf(err, errlen, "qmp URI \"%s\": host \"%s\": expected letters, digits, - _ .",
			 uri, buf);
		return -EINVAL;
	}
	snprintf(h->name, sizeof(h->name), "%.63s", buf);
	snprintf(h->uri, sizeof(h->uri), "%s", uri);
	snprintf(h->bridge, sizeof(h->bridge), "br0");
	char *save = NULL;
	for (char *it = query ? strtok_r(query, "&", &save) : NULL; it; it = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(it, '=');
		if (!eq || eq == it || !eq[1]) {
			snprintf(err, errlen, "qmp URI \"%s\": \"%s\": expected key=value", uri, it);
			return -EINVAL;
		}
		*eq = '\0';
		const char *v = eq + 1;
		if (strcmp(it, "netns") == 0 && qvm_valid_name(v)) {
			snprintf(h->netns, sizeof(h->netns), "%s", v);
			netns_set = true;
		} else if (strcmp(it, "addr") == 0 && strlen(v) < sizeof(h->addr) &&
			   strspn(v, "0123456789.") == strlen(v)) {
			snprintf(h->addr, sizeof(h->addr), "%s", v);
			addr_set = true;
		} else if (strcmp(it, "cluster") == 0 && qvm_valid_name(v)) {
			snprintf(cluster, sizeof(cluster), "%s", v);
		} else {
			snprintf(err, errlen, "qmp URI \"%s\": %s=\"%s\": %s", uri, it, v,
				 strcmp(it, "netns") && strcmp(it, "addr") && strcmp(it, "cluster")
					 ? "unknown parameter (known: netns, addr, cluster)"
					 : "bad value");
			return -EINVAL;
		}
	}
	if (!netns_set || !addr_set) {
		char env[PATH_MAX];
		snprintf(env, sizeof(env), "%s/%s/host/%s.env", HV_QMP_VCLUSTER_RUN, cluster, h->name);
		read_host_env(env, h, &netns_set, &addr_set);
	}
	if (*h->netns && !*h->addr) {
		snprintf(err, errlen, "qmp URI \"%s\": network namespace %s but no addr= for migrations",
			 uri, h->netns);
		return -EINVAL;
	}
	if (!*h->addr)
		snprintf(h->addr, sizeof(h->addr), "127.0.0.1");
	return 0;
}

/* ---- hv_ops: open, hosts, guests ---- */

static void qmp_close_hv(struct hv *hv);

static const char *or_default(const char *s, const char *def)
{
	return s && *s ? s : def;
}

static int qmp_open_hv(const struct hv_env *env, struct hv **out, char *err, size_t errlen)
{
	static const struct hv_qmp_settings defaults = { 0 };
	const struct hv_qmp_settings *s = env && env->qmp ? env->qmp : &defaults;
	struct hv *hv = calloc(1, sizeof(*hv));
	if (!hv)
		return -ENOMEM;
	pthread_mutex_init(&hv->lock, NULL);
	hv->next_mig_id = 1;
	if (s->state_dir && *s->state_dir)
		snprintf(hv->state_dir, sizeof(hv->state_dir), "%s", s->state_dir);
	else
		snprintf(hv->state_dir, sizeof(hv->state_dir), "%s/qmp",
			 env && env->state_dir ? env->state_dir : ".");
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	hv_qmp_resolve_image_dir(s->image_dir, *exe ? exe : NULL, hv->image_dir,
				 sizeof(hv->image_dir));
	snprintf(hv->qemu, sizeof(hv->qemu), "%s", or_default(s->qemu, HV_QMP_DEFAULT_QEMU));
	const char *accel = or_default(s->accel, "auto");
	if (strcmp(accel, "auto") == 0)
		accel = qvm_kvm_usable() ? "kvm" : "tcg";
	if (strcmp(accel, "kvm") == 0)
		snprintf(hv->accel, sizeof(hv->accel), "kvm");
	else if (strcmp(accel, "tcg") == 0)
		snprintf(hv->accel, sizeof(hv->accel), "tcg,tb-size=%u",
			 s->tb_size_mib ? s->tb_size_mib : HV_QMP_DEFAULT_TB_SIZE_MIB);
	else {
		snprintf(err, errlen, "qmp accel \"%s\": expected auto, kvm or tcg", accel);
		qmp_close_hv(hv);
		return -EINVAL;
	}
	if (strncmp(hv->accel, "tcg", 3) == 0) {
		/* an unknown version gets the workaround too: it only costs time */
		int major = qvm_qemu_major(hv->qemu);
		if (major < 9) {
			char what[32] = "of unknown version";
			if (major >= 0)
				snprintf(what, sizeof(what), "QEMU %d", major);
			hv->tcg_ram_pad_kib = 8;
			log_info("qmp: %s is %s, whose TCG migration may lose guest writes (fixed "
				 "in 9.0): new guests get 8 KiB more RAM, which avoids it (migd(8), BUGS)",
				 hv->qemu, what);
		}
	}
	snprintf(hv->agent_endpoint, sizeof(hv->agent_endpoint), "%s", or_default(s->agent_endpoint, ""));
	snprintf(hv->sfs_conf, sizeof(hv->sfs_conf), "%s", or_default(s->sfs_conf, ""));
	hv->port_base = s->migration_port_base ? s->migration_port_base : HV_QMP_DEFAULT_PORT_BASE;
	if (s->tls) {
		struct stat st;
		const char *dir = or_default(s->tls_dir, ""), *why = NULL;
		if (!*dir)
			why = "not set";
		else if (stat(dir, &st) < 0)
			why = strerror(errno);
		else if (!S_ISDIR(st.st_mode))
			why = "not a directory";
		if (why) {
			snprintf(err, errlen, "migration tls_dir \"%s\": %s (cluster/mktls makes one)",
				 dir, why);
			qmp_close_hv(hv);
			return -EINVAL;
		}
		hv->tls = true;
		snprintf(hv->tls_dir, sizeof(hv->tls_dir), "%s", dir);
		log_info("qmp: migrations over TLS, certificates from %s", dir);
	}
	/* the state directory is made by the first guest: a migd that runs no
	 * QEMU (the sim backend only) leaves no trace of this backend */
	log_debug("qmp: state in %s, %s, image %s", hv->state_dir, hv->accel,
		  *hv->image_dir ? hv->image_dir : "none (BIOS only)");
	qvm_reconcile_all(hv);
	*out = hv;
	return 0;
}

static void qmp_close_hv(struct hv *hv)
{
	if (!hv)
		return;
	for (size_t i = 0; i < hv->n_migs; i++) {
		if (hv->migs[i]->launcher > 0)
			waitpid(hv->migs[i]->launcher, NULL, WNOHANG);
		if (hv->migs[i]->src_left)
			qvm_destroy(hv, hv->migs[i]->guest, hv->migs[i]->src);
		if (hv->migs[i]->image_fd >= 0)
			close(hv->migs[i]->image_fd);
		free(hv->migs[i]);
	}
	for (size_t i = 0; i < hv->n_conns; i++)
		qmp_close(hv->conns[i].qmp);
	free(hv->conns);
	free(hv->migs);
	free(hv->hosts);
	pthread_mutex_destroy(&hv->lock);
	free(hv);
}

static int qmp_host_add(struct hv *hv, const char *name, const char *uri, char *err,
			size_t errlen)
{
	struct qhost h;
	int rc = parse_uri(uri, &h, err, errlen);
	if (rc < 0)
		return rc;
	if (strcmp(h.name, name) != 0) {
		snprintf(err, errlen, "host %s: its URI %s names host %s", name, uri, h.name);
		return -EINVAL;
	}
	if (*h.netns) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "/run/netns/%s", h.netns);
		if (!qvm_file_exists(path)) {
			snprintf(err, errlen, "host %s: network namespace %s does not exist (%s)", name,
				 h.netns, path);
			return -ENOENT;
		}
	}
	pthread_mutex_lock(&hv->lock);
	struct qhost *old = qhost_find(hv, name);
	if (old)
		*old = h; /* migd adds its hosts again after a restart */
	else if ((rc = GROW(hv->hosts, hv->cap_hosts, hv->n_hosts + 1)) == 0)
		hv->hosts[hv->n_hosts++] = h;
	pthread_mutex_unlock(&hv->lock);
	if (rc == 0)
		log_debug("qmp: host %s: %s%s, migrations to %s", name,
			  *h.netns ? "network namespace " : "loopback", h.netns, h.addr);
	return rc;
}

static int list_locked(struct hv *hv, const char *host, struct hv_guest_info **out, size_t *n);

static int qmp_host_remove(struct hv *hv, const char *name, char *err, size_t errlen)
{
	struct hv_guest_info *list = NULL;
	size_t n = 0;
	int rc = 0;
	pthread_mutex_lock(&hv->lock);
	struct qhost *h = qhost_find(hv, name);
	if (!h) {
		snprintf(err, errlen, "host %s: not a qmp host", name);
		rc = -ENOENT;
	} else if (list_locked(hv, name, &list, &n) == 0 && n > 0) {
		snprintf(err, errlen, "host %s: still runs %zu guests (%s...)", name, n, list[0].name);
		rc = -EBUSY;
	} else {
		*h = hv->hosts[--hv->n_hosts];
	}
	pthread_mutex_unlock(&hv->lock);
	free(list);
	return rc;
}

static int guest_create_locked(struct hv *hv, const char *host, const struct hv_guest_spec *spec,
			       char *err, size_t errlen)
{
	char where[NAME_MAX_LEN], status[32];
	if (!spec || !qvm_valid_name(spec->name)) {
		snprintf(err, errlen, "guest \"%s\": expected 1 to %d letters, digits, - _ .",
			 spec && spec->name ? spec->name : "", NAME_MAX_LEN - 1);
		return -EINVAL;
	}
	if (spec->memory_bytes < 16 * MIB) {
		snprintf(err, errlen, "guest %s: memory %" PRIu64 " bytes: QEMU needs at least 16 MiB",
			 spec->name, spec->memory_bytes);
		return -EINVAL;
	}
	const struct qhost *h = qhost_find(hv, host);
	if (!h) {
		snprintf(err, errlen, "guest %s: host %s is not a qmp host", spec->name, host);
		return -ENOENT;
	}
	if (qvm_where(hv, spec->name, where, sizeof(where), status, sizeof(status)) == 0) {
		snprintf(err, errlen, "guest %s: already runs on %s (%s)", spec->name, where, status);
		return -EEXIST;
	}
	pid_t launcher;
	int rc = qvm_record(hv, h, spec, err, errlen);
	if (rc == 0)
		rc = qvm_spawn(hv, spec->name, h, QVM_BOOT, &launcher, err, errlen);
	if (rc == 0)
		rc = qvm_launcher_done(hv, spec->name, h->name, launcher, true, err, errlen);
	if (rc == 0 && qvm_status(hv, spec->name, h->name, status, sizeof(status), err, errlen) < 0)
		rc = -EIO;
	if (rc < 0) {
		qvm_destroy(hv, spec->name, h->name);
		return rc;
	}
	log_info("qmp: guest %s started on %s (pid %d, %s)", spec->name, h->name,
		 (int)qvm_pid(hv, spec->name, h->name), status);
	return 0;
}

static int qmp_guest_create(struct hv *hv, const char *host, const struct hv_guest_spec *spec,
			    char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = guest_create_locked(hv, host, spec, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

static int qmp_guest_info(struct hv *hv, const char *guest, struct hv_guest_info *out,
			  char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = qvm_info(hv, guest, out);
	pthread_mutex_unlock(&hv->lock);
	if (rc < 0)
		snprintf(err, errlen, "guest %s: no QEMU runs it", guest ? guest : "(null)");
	return rc;
}

static int list_locked(struct hv *hv, const char *host, struct hv_guest_info **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	size_t cap = 0;
	DIR *d = opendir(hv->state_dir);
	if (!d)
		return 0;
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d))) {
		struct hv_guest_info info;
		if (!qvm_valid_name(e->d_name) || qvm_info(hv, e->d_name, &info) < 0)
			continue;
		if (host && strcmp(info.host, host) != 0)
			continue;
		if ((rc = GROW(*out, cap, *n + 1)) == 0)
			(*out)[(*n)++] = info;
	}
	closedir(d);
	return rc;
}

static int qmp_list_guests(struct hv *hv, const char *host, struct hv_guest_info **out,
			   size_t *n, char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = list_locked(hv, host, out, n);
	pthread_mutex_unlock(&hv->lock);
	if (rc < 0)
		snprintf(err, errlen, "listing guests: out of memory");
	return rc;
}

/* ---- migrations ---- */

struct qmig *qmig_find(struct hv *hv, uint64_t id)
{
	for (size_t i = 0; i < hv->n_migs; i++)
		if (hv->migs[i]->id == id)
			return hv->migs[i];
	return NULL;
}

struct qmig *qmig_of_guest(struct hv *hv, const char *guest)
{
	for (size_t i = 0; i < hv->n_migs; i++)
		if (hv->migs[i]->phase != PH_DONE && strcmp(hv->migs[i]->guest, guest) == 0)
			return hv->migs[i];
	return NULL;
}

int qmig_new(struct hv *hv, enum qmig_kind kind, const char *guest, struct qmig **out)
{
	struct qmig *m = calloc(1, sizeof(*m));
	if (!m || GROW(hv->migs, hv->cap_migs, hv->n_migs + 1) < 0) {
		free(m);
		return -ENOMEM;
	}
	m->id = hv->next_mig_id++;
	m->kind = kind;
	m->image_fd = -1;
	snprintf(m->guest, sizeof(m->guest), "%s", guest);
	m->progress.state = HV_MIG_ACTIVE;
	m->begun_ms = m->started_ms = now_ms();
	hv->migs[hv->n_migs++] = m;
	*out = m;
	return 0;
}

static int start_locked(struct hv *hv, const char *guest, const char *src, const char *dst,
			const struct hv_migrate_params *params, uint64_t *id, char *err,
			size_t errlen)
{
	char where[NAME_MAX_LEN], status[32], marker[PATH_MAX];
	const struct qhost *sh = qhost_find(hv, src), *dh = qhost_find(hv, dst);
	uint64_t begun_ms = now_ms();
	if (!qvm_valid_name(guest) || qvm_where(hv, guest, where, sizeof(where), status,
					      sizeof(status)) < 0) {
		snprintf(err, errlen, "guest %s: no QEMU runs it", guest ? guest : "(null)");
		return -ENOENT;
	}
	if (!sh || !dh) {
		snprintf(err, errlen, "guest %s: host %s is not a qmp host", guest, !sh ? src : dst);
		return -ENOENT;
	}
	if (strcmp(where, src) != 0) {
		snprintf(err, errlen, "guest %s: runs on %s, not on %s", guest, where, src);
		return -EINVAL;
	}
	if (strcmp(src, dst) == 0) {
		snprintf(err, errlen, "guest %s: already on %s", guest, dst);
		return -EINVAL;
	}
	if (qmig_of_guest(hv, guest)) {
		snprintf(err, errlen, "guest %s: already migrating", guest);
		return -EBUSY;
	}
	if (strcmp(status, "running") != 0) {
		snprintf(err, errlen, "guest %s on %s is %s, not running", guest, src, status);
		return -EINVAL;
	}
	int rc = qvm_check_can_send(hv, guest, src, err, errlen);
	if (rc < 0)
		return rc;
	struct qmig *m;
	pid_t launcher;
	qvm_destroy(hv, guest, dst); /* leftovers of an old instance there */
	qvm_path(hv, guest, dst, "incoming", marker, sizeof(marker));
	rc = qvm_write_file(marker, src, false);
	if (rc == 0)
		rc = qvm_spawn(hv, guest, dh, QVM_INCOMING, &launcher, err, errlen);
	else
		snprintf(err, errlen, "guest %s: writing %s: %s", guest, marker, strerror(-rc));
	if (rc == 0 && (rc = qmig_new(hv, QMIG_MIGRATE, guest, &m)) < 0) {
		waitpid(launcher, NULL, 0);
		snprintf(err, errlen, "out of memory");
	}
	if (rc < 0) {
		qvm_destroy(hv, guest, dst);
		return rc;
	}
	m->launcher = launcher;
	snprintf(m->src, sizeof(m->src), "%s", src);
	snprintf(m->dst, sizeof(m->dst), "%s", dst);
	m->params = params ? *params : (struct hv_migrate_params){ 0 };
	m->phase = PH_SPAWN;
	m->phase_deadline_ms = now_ms() + SPAWN_TIMEOUT_MS;
	m->src_pid = qvm_pid(hv, guest, src);
	m->begun_ms = begun_ms;
	*id = m->id;
	log_debug("qmp: migration %" PRIu64 ": guest %s %s -> %s", m->id, guest, src, dst);
	return 0;
}

static int qmp_migrate_start(struct hv *hv, const char *guest, const char *src, const char *dst,
			     const struct hv_migrate_params *params, uint64_t *id, char *err,
			     size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = start_locked(hv, guest, src, dst, params, id, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

/* The migration ends badly: the destination goes, the source runs on. */
static void mig_fail(struct hv *hv, struct qmig *m, enum hv_mig_state state, const char *why)
{
	if (m->launcher > 0) {
		waitpid(m->launcher, NULL, 0); /* it exits once QEMU is up or failed */
		m->launcher = 0;
	}
	qvm_destroy(hv, m->guest, m->dst);
	qvm_ensure_running(hv, m->guest, m->src);
	m->progress.state = state;
	if (!m->progress.total_time_ms) /* QEMU gives none for a cancelled one */
		m->progress.total_time_ms = now_ms() - m->started_ms;
	snprintf(m->progress.error, sizeof(m->progress.error), "%s", why);
	m->phase = PH_DONE;
	log_info("qmp: migration %" PRIu64 " of %s %s: %s; it runs on %s", m->id, m->guest,
		 state == HV_MIG_CANCELLED ? "cancelled" : "failed", why, m->src);
}

static int set_caps(struct hv *hv, const char *guest, const char *host, const struct qmig *m,
		    bool source, char *err, size_t errlen)
{
	json_t *caps = json_array();
	json_array_append_new(caps, json_pack("{s:s, s:b}", "capability", "multifd", "state",
					      m->params.parallel_connections > 1));
	json_array_append_new(caps, json_pack("{s:s, s:b}", "capability", "postcopy-ram", "state",
					      m->params.postcopy != 0));
	if (source) {
		json_array_append_new(caps, json_pack("{s:s, s:b}", "capability", "auto-converge",
						      "state", m->params.auto_converge != 0));
		/* a background save (hv_qmp_ckpt.c) leaves it on: a live
		 * migration must not become a snapshot */
		json_array_append_new(caps, json_pack("{s:s, s:b}", "capability",
						      "background-snapshot", "state", 0));
	}
	int rc = qvm_exec(hv, guest, host, "migrate-set-capabilities",
			   json_pack("{s:o}", "capabilities", caps), NULL, err, errlen);
	if (rc < 0)
		return rc;
	json_t *p = json_object();
	if (m->params.parallel_connections > 1)
		json_object_set_new(p, "multifd-channels",
				    json_integer(m->params.parallel_connections));
	if (source) {
		json_object_set_new(p, "max-bandwidth",
				    json_integer((json_int_t)(m->params.bandwidth_bps
							      ? m->params.bandwidth_bps
							      : UNCAPPED_BPS)));
		if (m->params.max_downtime_ms)
			json_object_set_new(p, "downtime-limit",
					    json_integer(m->params.max_downtime_ms));
	}
	/* always set: an instance keeps what an earlier migration set */
	json_object_set_new(p, "tls-creds", json_string(hv->tls ? QVM_TLS_ID : ""));
	return qvm_exec(hv, guest, host, "migrate-set-parameters", p, NULL, err, errlen);
}

/* Both ends configured, the destination listening, the source sending. */
static int mig_setup(struct hv *hv, struct qmig *m, char *err, size_t errlen)
{
	const struct qhost *dh = qhost_find(hv, m->dst);
	char uri[128], why[300];
	int rc;
	if (!dh) {
		snprintf(err, errlen, "host %s was removed", m->dst);
		return -ENOENT;
	}
	log_debug("qmp: migration %" PRIu64 ": downtime limit %u ms, bandwidth %" PRIu64
		  " B/s, auto-converge %d, postcopy %d, multifd %u", m->id,
		  m->params.max_downtime_ms, m->params.bandwidth_bps, m->params.auto_converge,
		  m->params.postcopy, m->params.parallel_connections);
	if (hv->tls && ((rc = qvm_tls_setup(hv, m->guest, m->dst, true, err, errlen)) < 0 ||
			(rc = qvm_tls_setup(hv, m->guest, m->src, false, err, errlen)) < 0))
		return rc;
	if ((rc = set_caps(hv, m->guest, m->dst, m, false, err, errlen)) < 0 ||
	    (rc = set_caps(hv, m->guest, m->src, m, true, err, errlen)) < 0)
		return rc;
	for (int tries = 0; tries < 20; tries++) {
		unsigned port = hv->port_base + hv->next_port++ % HV_QMP_PORTS;
		snprintf(uri, sizeof(uri), "tcp:%s:%u", dh->addr, port);
		rc = qvm_exec(hv, m->guest, m->dst, "migrate-incoming",
			       json_pack("{s:s}", "uri", uri), NULL, why, sizeof(why));
		if (rc != -EREMOTEIO || !strstr(why, "in use"))
			break; /* only a port taken is worth another port */
	}
	if (rc < 0) {
		snprintf(err, errlen, "%s", why);
		return rc;
	}
	rc = qvm_exec(hv, m->guest, m->src, "migrate", json_pack("{s:s}", "uri", uri), NULL, err,
		      errlen);
	m->sent_ms = now_ms();
	return rc;
}

static uint64_t jnum(json_t *obj, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(obj, key));
	return v > 0 ? (uint64_t)v : 0;
}

/*
 * The figures the cost model is calibrated from (calibrate.h), out of
 * query-migrate's ram section (QEMU 7.2 names):
 *
 *   link_bps: ram.mbps (a real, Mbit/s) * 1e6 / 8. While the migration is
 *     active QEMU measures it over the last iteration; once completed it is
 *     all bytes over total-time minus setup-time, the average we want. The
 *     latest value wins.
 *   dirty_rate_bps: ram.dirty-pages-rate (pages/s) * ram.page-size, the
 *     last nonzero value seen. QEMU updates it at a bitmap sync at least a
 *     second after the previous one and drops it from a completed
 *     migration's answer, so only polls of a running one see it; a short
 *     migration may have none (0).
 *   ram_bytes: what round 0 had to send as content. Every page is visited
 *     once in round 0 and goes either as a zero page (duplicate) or whole
 *     (normal), so round 0's normal pages are total pages minus duplicate
 *     ones, and never more than all normal pages: min(normal, total /
 *     page-size - duplicate) * page-size. The second bound drops pages that
 *     later rounds sent again; it errs low only by zero pages sent again.
 *   setup_ms: setup-time, top level.
 */
static void mig_query_model(json_t *r, json_t *ram, struct hv_progress *p)
{
	uint64_t page = jnum(ram, "page-size");
	if (!page)
		page = 4096;
	double mbps = json_number_value(json_object_get(ram, "mbps"));
	if (mbps > 0)
		p->link_bps = (uint64_t)(mbps * 1e6 / 8);
	uint64_t dirty_pages = jnum(ram, "dirty-pages-rate");
	if (dirty_pages)
		p->dirty_rate_bps = dirty_pages * page;
	uint64_t normal = jnum(ram, "normal"), dup = jnum(ram, "duplicate");
	uint64_t pages = jnum(ram, "total") / page;
	uint64_t round0 = pages > dup ? pages - dup : 0;
	if (normal)
		p->ram_bytes = (normal < round0 ? normal : round0) * page;
	if (json_object_get(r, "setup-time"))
		p->setup_ms = jnum(r, "setup-time");
}

int qmig_query(struct hv *hv, struct qmig *m, const char *host, char *status, size_t len,
	       char *err, size_t errlen)
{
	json_t *r;
	int rc = qvm_exec(hv, m->guest, host, "query-migrate", NULL, &r, err, errlen);
	if (rc < 0)
		return rc;
	const char *s = json_string_value(json_object_get(r, "status"));
	json_t *ram = json_object_get(r, "ram");
	snprintf(status, len, "%s", s ? s : "none");
	struct hv_progress *p = &m->progress;
	if (ram) {
		p->transferred_bytes = jnum(ram, "transferred");
		p->remaining_bytes = jnum(ram, "remaining");
		p->total_bytes = jnum(ram, "total");
		p->rounds = (unsigned)jnum(ram, "dirty-sync-count");
		mig_query_model(r, ram, p);
	}
	p->total_time_ms = jnum(r, "total-time");
	if (json_object_get(r, "downtime"))
		p->downtime_ms = jnum(r, "downtime");
	const char *desc = json_string_value(json_object_get(r, "error-desc"));
	if (desc)
		snprintf(p->error, sizeof(p->error), "%s", desc);
	json_decref(r);
	return 0;
}

static void mig_running(struct hv *hv, struct qmig *m)
{
	char status[32], err[300];
	if (qmig_query(hv, m, m->src, status, sizeof(status), err, sizeof(err)) < 0) {
		mig_fail(hv, m, HV_MIG_FAILED, err);
		return;
	}
	if (strcmp(status, "completed") == 0) {
		/* QEMU says completed a moment before it computes total-time and
		 * downtime (migration_calculate_complete): wait for the figures */
		if (!m->completed_ms)
			m->completed_ms = now_ms();
		if (m->progress.total_time_ms == 0 && now_ms() - m->completed_ms < 2000)
			return;
		log_debug("qmp: migration %" PRIu64 ": completed in QEMU", m->id);
		m->phase = PH_SWITCHED;
		m->phase_deadline_ms = now_ms() + SWITCH_TIMEOUT_MS;
	} else if (strcmp(status, "failed") == 0) {
		char why[200];
		snprintf(why, sizeof(why), "QEMU: migration failed: %s",
			 *m->progress.error ? m->progress.error : "no reason given");
		mig_fail(hv, m, HV_MIG_FAILED, why);
	} else if (strcmp(status, "cancelled") == 0) {
		mig_fail(hv, m, HV_MIG_CANCELLED,
			 m->abort_requested ? "aborted by request" : "cancelled in QEMU");
	} else if (m->params.postcopy && !m->postcopy_started && m->progress.rounds >= 2 &&
		   strcmp(status, "active") == 0) {
		/* the first round is done and pre-copy goes on: switch now */
		if (qvm_exec(hv, m->guest, m->src, "migrate-start-postcopy", NULL, NULL, err,
			      sizeof(err)) < 0)
			log_warnx("qmp: %s", err);
		else
			log_debug("qmp: migration %" PRIu64 ": switched to post-copy after round %u",
				  m->id, m->progress.rounds);
		m->postcopy_started = 1;
	}
}

/* Completed in QEMU: wait for the destination to run, then quit the source. */
static void mig_switched(struct hv *hv, struct qmig *m)
{
	char status[32], err[300];
	int rc = qvm_status(hv, m->guest, m->dst, status, sizeof(status), err, sizeof(err));
	/* it loads the last pages in a few ms: ask again that long (as a person
	 * polling by hand would) rather than wait a whole tick */
	for (int i = 0; i < 20 && rc == 0 && strcmp(status, "inmigrate") == 0; i++) {
		usleep(1000);
		rc = qvm_status(hv, m->guest, m->dst, status, sizeof(status), err, sizeof(err));
	}
	if (rc == 0 && strcmp(status, "inmigrate") == 0 && now_ms() < m->phase_deadline_ms)
		return; /* still loading the last pages */
	if (rc < 0 || (strcmp(status, "running") != 0 && strcmp(status, "paused") != 0)) {
		char why[400];
		snprintf(why, sizeof(why), "the destination did not take over (%s)",
			 rc < 0 ? err : status);
		mig_fail(hv, m, HV_MIG_FAILED, why);
		return;
	}
	m->dst_running = strcmp(status, "running") == 0;
	qvm_exec(hv, m->guest, m->src, "quit", NULL, NULL, err, sizeof(err));
	qvm_conn_drop(hv, m->guest, m->src);
	m->phase = PH_QUITTING;
	m->switched_ms = now_ms();
	m->phase_deadline_ms = m->switched_ms + QUIT_TIMEOUT_MS;
	log_debug("qmp: migration %" PRIu64 ": %s runs on %s; source asked to quit", m->id,
		  m->guest, m->dst);
}

/*
 * Where the time of a completed migration went, outside QEMU and in it: the
 * difference between migd's end-to-end time and QEMU's total-time is
 * migd's (bench/qemu-migration compares both with raw QMP).
 */
static void mig_log_steps(const struct qmig *m, uint64_t gone_ms)
{
	log_debug("qmp: migration %" PRIu64 ", ms after the request: destination spawned %" PRIu64
		  ", up %" PRIu64 ", migrate sent %" PRIu64 ", completed seen %" PRIu64
		  " (QEMU's total-time %" PRIu64 ", downtime %" PRIu64 "), source asked to quit %"
		  PRIu64 ", gone %" PRIu64, m->id, m->started_ms - m->begun_ms,
		  m->up_ms - m->begun_ms, m->sent_ms - m->begun_ms, m->completed_ms - m->begun_ms,
		  m->progress.total_time_ms, m->progress.downtime_ms, m->switched_ms - m->begun_ms,
		  gone_ms - m->begun_ms);
}

static void mig_quitting(struct hv *hv, struct qmig *m)
{
	/* QEMU quits in a few ms: wait that long here rather than a whole tick */
	for (int i = 0; i < 20 && m->src_pid > 0 && !qvm_pid_gone(m->src_pid); i++)
		usleep(1000);
	bool gone = m->src_pid <= 0 || qvm_pid_gone(m->src_pid);
	if (!gone && now_ms() < m->phase_deadline_ms)
		return;
	char marker[PATH_MAX];
	/* A source that quit leaves only files and a tap: removing them (a run
	 * of ip) waits until the row is written (qmp_migrate_forget). One that
	 * did not quit is killed now. */
	if (gone)
		m->src_left = 1;
	else
		qvm_destroy(hv, m->guest, m->src);
	qvm_path(hv, m->guest, m->dst, "incoming", marker, sizeof(marker));
	unlink(marker);
	if (!m->dst_running) /* never leave it paused; one that ran already runs on */
		qvm_ensure_running(hv, m->guest, m->dst);
	m->progress.state = HV_MIG_COMPLETED;
	m->progress.remaining_bytes = 0;
	m->phase = PH_DONE;
	mig_log_steps(m, now_ms());
}

static void mig_advance(struct hv *hv, struct qmig *m)
{
	char err[300];
	int rc;
	switch (m->phase) {
	case PH_SPAWN:
		rc = qvm_launcher_done(hv, m->guest, m->dst, m->launcher, false, err, sizeof(err));
		if (rc == 1 && now_ms() < m->phase_deadline_ms)
			return;
		if (rc != 1)
			m->launcher = 0; /* reaped */
		if (rc != 0) {
			mig_fail(hv, m, HV_MIG_FAILED, rc == 1 ? "the destination QEMU did not start"
							       : err);
			return;
		}
		if (m->abort_requested) {
			mig_fail(hv, m, HV_MIG_CANCELLED, "aborted by request");
			return;
		}
		m->phase = PH_SETUP;
		m->up_ms = now_ms();
		log_debug("qmp: migration %" PRIu64 ": destination up on %s", m->id, m->dst);
		__attribute__((fallthrough)); /* configure it now */
	case PH_SETUP:
		if (mig_setup(hv, m, err, sizeof(err)) < 0) {
			mig_fail(hv, m, HV_MIG_FAILED, err);
			return;
		}
		m->phase = PH_RUNNING;
		return;
	case PH_RUNNING:
		mig_running(hv, m);
		if (m->phase != PH_SWITCHED)
			return;
		__attribute__((fallthrough)); /* completed: the destination's turn now, not a tick later */
	case PH_SWITCHED:
		mig_switched(hv, m);
		if (m->phase != PH_QUITTING)
			return;
		__attribute__((fallthrough));
	case PH_QUITTING:
		mig_quitting(hv, m);
		return;
	case PH_DONE:
		return;
	}
}

static int qmp_migrate_poll(struct hv *hv, uint64_t id, struct hv_progress *out, char *err,
			    size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	struct qmig *m = qmig_find(hv, id);
	if (m) {
		if (m->kind == QMIG_MIGRATE)
			mig_advance(hv, m);
		else
			qckpt_advance(hv, m);
		*out = m->progress;
		if (out->state == HV_MIG_ACTIVE)
			out->error[0] = '\0';
	} else {
		snprintf(err, errlen, "migration %" PRIu64 ": not known to the qmp backend", id);
	}
	pthread_mutex_unlock(&hv->lock);
	return m ? 0 : -ENOENT;
}

static int abort_locked(struct hv *hv, uint64_t id, char *err, size_t errlen)
{
	struct qmig *m = qmig_find(hv, id);
	char status[32];
	if (!m) {
		snprintf(err, errlen, "migration %" PRIu64 ": not known to the qmp backend", id);
		return -ENOENT;
	}
	if (m->kind != QMIG_MIGRATE)
		return qckpt_abort(hv, m, err, errlen);
	if (m->phase == PH_DONE || m->phase >= PH_SWITCHED) {
		snprintf(err, errlen, "migration %" PRIu64 " of guest %s: already %s", id, m->guest,
			 m->phase == PH_DONE ? "finished" : "switched over to the destination");
		return -EALREADY;
	}
	if (m->abort_requested) {
		snprintf(err, errlen, "migration %" PRIu64 ": abort already requested", id);
		return -EALREADY;
	}
	if (m->phase == PH_RUNNING) {
		if (qmig_query(hv, m, m->src, status, sizeof(status), err, errlen) == 0 &&
		    strncmp(status, "postcopy", 8) == 0) {
			snprintf(err, errlen, "migration %" PRIu64 " of guest %s: in post-copy, the "
				 "guest runs on %s already: cannot abort", id, m->guest, m->dst);
			return -EBUSY;
		}
		int rc = qvm_exec(hv, m->guest, m->src, "migrate_cancel", NULL, NULL, err, errlen);
		if (rc < 0)
			return rc;
	}
	m->abort_requested = 1;
	return 0;
}

static int qmp_migrate_abort(struct hv *hv, uint64_t id, char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = abort_locked(hv, id, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

static void qmp_migrate_forget(struct hv *hv, uint64_t id)
{
	pthread_mutex_lock(&hv->lock);
	for (size_t i = 0; i < hv->n_migs; i++) {
		if (hv->migs[i]->id == id && hv->migs[i]->phase == PH_DONE) {
			/* the source's files and tap: the row is written, the
			 * guest cannot have come back yet */
			if (hv->migs[i]->src_left)
				qvm_destroy(hv, hv->migs[i]->guest, hv->migs[i]->src);
			if (hv->migs[i]->image_fd >= 0)
				close(hv->migs[i]->image_fd);
			free(hv->migs[i]);
			hv->migs[i] = hv->migs[--hv->n_migs];
			break;
		}
	}
	pthread_mutex_unlock(&hv->lock);
}

static int64_t qmp_now_ns(struct hv *hv)
{
	return wall_ns();
}

const struct hv_ops hv_qmp_ops = {
	.scheme = "qmp",
	.open = qmp_open_hv,
	.close = qmp_close_hv,
	.host_add = qmp_host_add,
	.host_remove = qmp_host_remove,
	.guest_create = qmp_guest_create,
	.guest_info = qmp_guest_info,
	.list_guests = qmp_list_guests,
	.migrate_start = qmp_migrate_start,
	.migrate_poll = qmp_migrate_poll,
	.migrate_abort = qmp_migrate_abort,
	.migrate_forget = qmp_migrate_forget,
	.now_ns = qmp_now_ns,
	.guest_pause = hv_qmp_guest_pause,
	.guest_resume = hv_qmp_guest_resume,
	.save_start = hv_qmp_save_start,
	.load_start = hv_qmp_load_start,
	.guest_destroy = hv_qmp_guest_destroy,
	.guest_config = hv_qmp_guest_config,
	.guest_define = hv_qmp_guest_define,
};
