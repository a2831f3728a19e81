/*
 * hv_libvirt_ckpt: checkpoint and restore through libvirt: pause, resume,
 * save, load, destroy, and a guest's domain XML.
 *
 * What libvirt 9.0 (Debian 12) offers, and what is used:
 * - pause and resume: virDomainSuspend and virDomainResume.
 * - a save that keeps the domain: on QEMU an external memory snapshot
 *   without metadata (virDomainSnapshotCreateXML with <memory
 *   snapshot='external' file=PATH/>, every disk snapshot='no', flag
 *   NO_METADATA). QEMU writes the guest's state to PATH in libvirt's save
 *   image format ("LibvirtQemudSave" and the domain XML first) and the
 *   domain stays as it was: paused. libvirt 9.0 cannot revert such a
 *   snapshot ("revert to external snapshot not supported yet", fixed in
 *   9.7), so a load is a restore of that file. virDomainAbortJob cancels
 *   the snapshot job; the guest stays paused and the file is removed.
 *   QEMU 7.2 refuses a second snapshot of a guest that stayed paused since
 *   the last one ("paused due to previous migration"): resume between two.
 *   There is no background save: libvirt 9.0 does not use QEMU's
 *   background-snapshot, and a LIVE snapshot writes memory as of its end,
 *   not as of the pause, which would break the checkpoint's consistent cut;
 *   so the mode is always "paused".
 * - drivers without external memory snapshots (libxl for Xen; the test
 *   driver accepts the XML but writes no file): virDomainSaveFlags, which
 *   stops the domain, then virDomainRestoreFlags(PAUSED) on the same host
 *   at once. The guest is gone between the two; if the restore fails the
 *   save FAILS naming the image to load it from.
 * - load: virDomainRestoreFlags(conn, PATH, NULL, VIR_DOMAIN_SAVE_PAUSED)
 *   on the chosen host, after virDomainSaveImageGetXMLDesc has shown that
 *   the image is of this guest. The image carries the domain's definition,
 *   so a guest need not be known to migd to be loaded. A restore cannot be
 *   aborted as a job; aborting a load destroys the domain being restored,
 *   as libvirt advises.
 * - destroy: virDomainDestroy. A persistent domain keeps its definition on
 *   its host; a transient one's XML is kept here (in memory) for
 *   guest_config. guest_config is virDomainGetXMLDesc(SECURE|MIGRATABLE)
 *   where the domain is (active or defined), else the kept XML.
 *   guest_define keeps the XML here too and defines nothing on a host:
 *   hv_ops gives it no host, and a persistent definition on some host
 *   would outlive the guest's moves (a load elsewhere makes a transient
 *   domain with the same UUID there).
 *
 * Images are files on the guest's host (migd.conf checkpoint.store): an
 * fd (a pipe of migd's) is refused with -ENOTSUP. Saves and loads can take
 * seconds: like migrations, each runs in a worker thread that makes the
 * blocking call, and a save has the monitor thread too (job figures every
 * 200 ms), so polls never wait on libvirt.
 */
#include <errno.h>
#include <stdarg.h>
#include <libvirt/virterror.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv_libvirt_int.h"
#include "log.h"
#include "util.h"

#define SAVE_SNAPSHOT 1ul /* lv_mig.flags of a save: external memory snapshot */

/* ---- pure pieces (hv_libvirt.h) ----------------------------------------- */

int hv_libvirt_xml_name(const char *xml, char *out, size_t len)
{
	const char *start = xml ? strstr(xml, "<name>") : NULL;
	const char *end = start ? strstr(start, "</name>") : NULL;
	if (!end)
		return -EINVAL;
	start += strlen("<name>");
	if ((size_t)(end - start) >= len)
		return -ENAMETOOLONG;
	snprintf(out, len, "%.*s", (int)(end - start), start);
	return 0;
}

/* The dev of the <target> in the <disk> element at disk, or NULL. */
static const char *disk_target(const char *disk, const char *disk_end, size_t *len)
{
	const char *t = strstr(disk, "<target ");
	const char *dev = t && t < disk_end ? strstr(t, "dev=") : NULL;
	if (!dev || dev > disk_end || (dev[4] != '\'' && dev[4] != '"'))
		return NULL;
	const char *q = strchr(dev + 5, dev[4]);
	if (!q || q > disk_end)
		return NULL;
	*len = (size_t)(q - dev - 5);
	return dev + 5;
}

int hv_libvirt_snapshot_xml(const char *domain_xml, const char *path, char **out, char *err,
			    size_t errlen)
{
	char *xml = NULL;
	size_t size = 0;
	*out = NULL;
	if (!path || path[0] != '/' || strpbrk(path, "'\"<>&")) {
		snprintf(err, errlen, "image path \"%s\": expected an absolute path without quotes, "
			 "'<', '>' or '&'", path ? path : "");
		return -EINVAL;
	}
	FILE *f = open_memstream(&xml, &size);
	if (!f)
		return -ENOMEM;
	fprintf(f, "<domainsnapshot>\n  <description>migd checkpoint</description>\n"
		"  <memory snapshot='external' file='%s'/>\n  <disks>\n", path);
	/* every disk stays as it is: a snapshot='external' default would put
	 * an overlay on each */
	for (const char *d = domain_xml ? strstr(domain_xml, "<disk ") : NULL; d;
	     d = strstr(d + 1, "<disk ")) {
		const char *end = strstr(d, "</disk>");
		size_t len = 0;
		const char *dev = end ? disk_target(d, end, &len) : NULL;
		if (dev)
			fprintf(f, "    <disk name='%.*s' snapshot='no'/>\n", (int)len, dev);
	}
	fprintf(f, "  </disks>\n</domainsnapshot>\n");
	if (fclose(f) != 0 || !xml) {
		free(xml);
		return -ENOMEM;
	}
	*out = xml;
	return 0;
}

/* ---- helpers ------------------------------------------------------------- */

/* A message into a fixed field, cut where it ends (snprintf that says so). */
__attribute__((format(printf, 3, 4))) static void say(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* The domain of guest where it is active, and its host. */
static int find_active(struct hv *hv, const char *guest, struct lv_host **host,
		       virDomainPtr *dom, char *err, size_t errlen)
{
	struct hv_guest_info where;
	*dom = NULL;
	int rc = lv_guest_info_locked(hv, guest, &where, err, errlen);
	if (rc < 0)
		return rc;
	*host = lv_host_find(hv, where.host);
	virConnectPtr c = *host ? lv_host_conn(hv, *host, err, errlen) : NULL;
	if (!c)
		return -EHOSTUNREACH;
	*dom = virDomainLookupByName(c, guest);
	if (!*dom) {
		snprintf(err, errlen, "guest %s: gone from %s: %s", guest, where.host, lv_error());
		return -ENOENT;
	}
	return 0;
}

static int domain_state(virDomainPtr d)
{
	int state = VIR_DOMAIN_NOSTATE, reason = 0;
	return virDomainGetState(d, &state, &reason, 0) < 0 ? -1 : state;
}

/* A save or load of guest running now, or NULL. */
static struct lv_mig *ckpt_job(struct hv *hv, const char *guest)
{
	struct lv_mig *m = lv_guest_migrating(hv, guest);
	return m && m->kind != LV_JOB_MIGRATE ? m : NULL;
}

static struct lv_known *known_find(struct hv *hv, const char *name)
{
	for (size_t i = 0; i < hv->n_known; i++)
		if (strcmp(hv->known[i].name, name) == 0)
			return &hv->known[i];
	return NULL;
}

/* Keep xml (ours now) as the definition of a guest that runs nowhere. */
static int known_put(struct hv *hv, const char *name, char *xml)
{
	struct lv_known *k = known_find(hv, name);
	if (!k) {
		if (GROW(hv->known, hv->cap_known, hv->n_known + 1) < 0) {
			free(xml);
			return -ENOMEM;
		}
		k = &hv->known[hv->n_known++];
		snprintf(k->name, sizeof(k->name), "%s", name);
		k->xml = NULL;
	}
	free(k->xml);
	k->xml = xml;
	return 0;
}

void lv_known_free(struct hv *hv)
{
	for (size_t i = 0; i < hv->n_known; i++)
		free(hv->known[i].xml);
	free(hv->known);
	hv->known = NULL;
	hv->n_known = hv->cap_known = 0;
}

/* The image's path from img, or an errno with the reason. */
static int image_path(const char *guest, const struct hv_image *img, char *err, size_t errlen)
{
	if (img && img->path && img->path[0] == '/')
		return 0;
	if (img && img->fd >= 0 && !img->path) {
		snprintf(err, errlen, "guest %s: libvirt writes and reads checkpoint images as files "
			 "on the guest's host, not through a pipe: set checkpoint.store in migd.conf",
			 guest);
		return -ENOTSUP;
	}
	snprintf(err, errlen, "guest %s: image path \"%s\": expected an absolute path on the "
		 "guest's host", guest, img && img->path ? img->path : "");
	return -EINVAL;
}

/* A new job of kind for guest in hv->migs, not started; NULL: no memory. */
static struct lv_mig *job_new(struct hv *hv, enum lv_job_kind kind, const char *guest,
			      const char *path)
{
	struct lv_mig *m = calloc(1, sizeof(*m));
	if (!m || !(m->path = strdup(path)) || GROW(hv->migs, hv->cap_migs, hv->n_migs + 1) < 0) {
		if (m)
			free(m->path);
		free(m);
		return NULL;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	m->kind = kind;
	m->id = hv->next_id;
	snprintf(m->guest, sizeof(m->guest), "%s", guest);
	m->started_ms = now_ms();
	m->progress.state = HV_MIG_ACTIVE;
	return m;
}

/* Start m's worker (and, with monitor, the figures' monitor) and list it. */
static int job_start(struct hv *hv, struct lv_mig *m, void *(*worker)(void *), bool monitor,
		     uint64_t *id, char *err, size_t errlen)
{
	if (pthread_create(&m->worker, NULL, worker, m) != 0) {
		snprintf(err, errlen, "guest %s: cannot start a worker thread", m->guest);
		lv_mig_free(m);
		return -EAGAIN;
	}
	m->monitor_started = monitor && pthread_create(&m->monitor, NULL, lv_monitor_main, m) == 0;
	hv->migs[hv->n_migs++] = m;
	hv->next_id++;
	*id = m->id;
	return 0;
}

/* The worker's last word: fin becomes the job's figures. */
static void job_finish(struct lv_mig *m, const struct hv_progress *fin)
{
	pthread_mutex_lock(&m->lock);
	m->progress = *fin;
	m->done = true;
	bool orphaned = m->orphaned;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (orphaned)
		lv_mig_free(m); /* the driver is gone */
}

/*
 * Restore guest from path on c, paused. The test driver refuses the PAUSED
 * flag ("unsupported flags"): there it is restored, then paused at once.
 */
static int restore_paused(virConnectPtr c, const char *guest, const char *path, char *why,
			  size_t len)
{
	if (virDomainRestoreFlags(c, path, NULL, VIR_DOMAIN_SAVE_PAUSED) == 0)
		return 0;
	virErrorPtr e = virGetLastError();
	if (!e || e->code != VIR_ERR_INVALID_ARG || !strstr(lv_error(), "unsupported flags")) {
		snprintf(why, len, "%s", lv_error());
		return -EIO;
	}
	if (virDomainRestore(c, path) < 0) {
		snprintf(why, len, "%s", lv_error());
		return -EIO;
	}
	virDomainPtr d = virDomainLookupByName(c, guest);
	int rc = d && virDomainSuspend(d) == 0 ? 0 : -EIO;
	if (rc < 0) {
		snprintf(why, len, "restored but not paused: %s", lv_error());
		if (d)
			virDomainDestroy(d); /* nothing of a failed load stays */
	}
	if (d)
		virDomainFree(d);
	return rc;
}

/* ---- save ---------------------------------------------------------------- */

static int save_snapshot(struct lv_mig *m, char *why, size_t len)
{
	char *sxml = NULL, *dxml = virDomainGetXMLDesc(m->dom, 0);
	int rc = hv_libvirt_snapshot_xml(dxml, m->path, &sxml, why, len);
	free(dxml);
	if (rc < 0)
		return rc;
	virDomainSnapshotPtr s = virDomainSnapshotCreateXML(m->dom, sxml,
							    VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA);
	free(sxml);
	if (s) {
		virDomainSnapshotFree(s);
		return 0;
	}
	const char *msg = lv_error();
	snprintf(why, len, "%s%s", msg,
		 strstr(msg, "paused due to previous migration")
			 ? " (QEMU saves a paused guest once: resume it before the next save)" : "");
	return -EIO;
}

/* Drivers without memory snapshots: save (the domain stops), restore. */
static int save_and_restore(struct lv_mig *m, char *why, size_t len)
{
	char what[120];
	if (virDomainSaveFlags(m->dom, m->path, NULL, 0) < 0) {
		snprintf(why, len, "%s", lv_error());
		return -EIO;
	}
	if (restore_paused(m->dconn, m->guest, m->path, what, sizeof(what)) < 0) {
		say(why, len, "saved to %s but not restored on %s (load it from there): %s",
			 m->path, m->src, what);
		return -EIO;
	}
	return 0;
}

static void *save_main(void *arg)
{
	struct lv_mig *m = arg;
	struct hv_progress fin, kept = { 0 };
	char why[sizeof(fin.error)] = "";
	int rc = m->flags & SAVE_SNAPSHOT ? save_snapshot(m, why, sizeof(why))
					  : save_and_restore(m, why, sizeof(why));
	uint64_t call_ms = now_ms() - m->started_ms;
	pthread_mutex_lock(&m->lock);
	fin = m->progress; /* the monitor's last figures */
	bool aborted = m->abort_requested;
	pthread_mutex_unlock(&m->lock);
	if (lv_completed_stats(m->dom, &kept) == 0 && kept.transferred_bytes > 0) {
		fin.transferred_bytes = kept.transferred_bytes;
		fin.total_time_ms = kept.total_time_ms;
		fin.link_bps = kept.link_bps;
		fin.ram_bytes = kept.ram_bytes;
	}
	if (!fin.total_time_ms)
		fin.total_time_ms = call_ms;
	fin.downtime_ms = 0;
	if (rc == 0) {
		fin.state = HV_MIG_COMPLETED;
		if (!fin.transferred_bytes)
			fin.transferred_bytes = fin.total_bytes;
		fin.remaining_bytes = 0;
		snprintf(fin.mode, sizeof(fin.mode), "paused");
		fin.pause_ms = fin.downtime_ms = fin.total_time_ms;
	} else {
		fin.state = aborted ? HV_MIG_CANCELLED : HV_MIG_FAILED;
		snprintf(fin.error, sizeof(fin.error), "%s", why);
	}
	log_info("libvirt: save %llu of %s on %s to %s: %s in %llu ms", (unsigned long long)m->id,
		 m->guest, m->src, m->path, rc == 0 ? "completed" : why,
		 (unsigned long long)fin.total_time_ms);
	job_finish(m, &fin);
	return NULL;
}

static int save_start_locked(struct hv *hv, const char *guest, const char *path, uint64_t *id,
			     char *err, size_t errlen)
{
	struct lv_host *h;
	virDomainPtr d;
	virDomainInfo di;
	if (lv_guest_migrating(hv, guest)) {
		snprintf(err, errlen, "guest %s: a migration, save or load of it is running", guest);
		return -EBUSY;
	}
	int rc = find_active(hv, guest, &h, &d, err, errlen);
	if (rc < 0)
		return rc;
	if (domain_state(d) != VIR_DOMAIN_PAUSED) {
		snprintf(err, errlen, "guest %s: running on %s; a save takes a paused guest "
			 "(guest_pause first)", guest, h->name);
		virDomainFree(d);
		return -EINVAL;
	}
	struct lv_mig *m = job_new(hv, LV_JOB_SAVE, guest, path);
	if (!m) {
		virDomainFree(d);
		snprintf(err, errlen, "guest %s: out of memory", guest);
		return -ENOMEM;
	}
	const char *type = virConnectGetType(h->conn);
	m->flags = type && strcmp(type, "QEMU") == 0 ? SAVE_SNAPSHOT : 0;
	snprintf(m->src, sizeof(m->src), "%s", h->name);
	m->dom = d;
	virConnectRef(h->conn);
	m->dconn = h->conn; /* save_and_restore restores there */
	if (virDomainGetInfo(d, &di) == 0)
		m->progress.total_bytes = (uint64_t)di.maxMem * 1024;
	rc = job_start(hv, m, save_main, true, id, err, errlen);
	if (rc == 0)
		log_debug("libvirt: save %llu: %s on %s to %s (%s)", (unsigned long long)*id, guest,
			  h->name, path, m->flags & SAVE_SNAPSHOT ? "memory snapshot" : "save, restore");
	return rc;
}

int lv_save_start(struct hv *hv, const char *guest, const struct hv_image *img,
		  const struct hv_save_params *params, uint64_t *id, char *err, size_t errlen)
{
	(void)params; /* no background save in libvirt 9.0: always "paused" */
	if (!hv_libvirt_valid_name(guest)) {
		snprintf(err, errlen, "guest \"%s\": not a libvirt guest name", guest ? guest : "");
		return -EINVAL;
	}
	int rc = image_path(guest, img, err, errlen);
	if (rc < 0)
		return rc;
	if (strpbrk(img->path, "'\"<>&")) {
		snprintf(err, errlen, "guest %s: image path \"%s\": no quotes, '<', '>' or '&'", guest,
			 img->path);
		return -EINVAL;
	}
	pthread_mutex_lock(&hv->lock);
	rc = save_start_locked(hv, guest, img->path, id, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

/* ---- load ---------------------------------------------------------------- */

/* Is the image at m->path on m's host one of m's guest? */
static int check_image(struct lv_mig *m, char *why, size_t len)
{
	char name[HV_LIBVIRT_NAME_MAX + 1];
	char *xml = virDomainSaveImageGetXMLDesc(m->dconn, m->path, 0);
	if (!xml) {
		snprintf(why, len, "image %s on %s: %s", m->path, m->dst, lv_error());
		return -EIO;
	}
	int rc = hv_libvirt_xml_name(xml, name, sizeof(name));
	free(xml);
	if (rc < 0 || strcmp(name, m->guest) != 0) {
		say(why, len, "image of domain \"%s\", not of guest %s (%s on %s)",
			 rc < 0 ? "(no name)" : name, m->guest, m->path, m->dst);
		return -EINVAL;
	}
	return 0;
}

static void *load_main(void *arg)
{
	struct lv_mig *m = arg;
	struct hv_progress fin;
	char why[sizeof(fin.error)] = "";
	virDomainInfo di;
	int rc = check_image(m, why, sizeof(why));
	if (rc == 0)
		rc = restore_paused(m->dconn, m->guest, m->path, why, sizeof(why));
	pthread_mutex_lock(&m->lock);
	fin = m->progress;
	bool aborted = m->abort_requested;
	pthread_mutex_unlock(&m->lock);
	virDomainPtr d = virDomainLookupByName(m->dconn, m->guest);
	if (rc == 0 && aborted) {
		/* the abort came as the restore ended: it still wins */
		if (d)
			virDomainDestroy(d);
		rc = -ECANCELED;
		snprintf(why, sizeof(why), "aborted");
	}
	if (rc == 0 && d && virDomainGetInfo(d, &di) == 0)
		fin.total_bytes = (uint64_t)di.maxMem * 1024;
	if (d)
		virDomainFree(d);
	fin.total_time_ms = now_ms() - m->started_ms;
	if (rc == 0) {
		fin.state = HV_MIG_COMPLETED;
		fin.transferred_bytes = fin.total_bytes;
	} else {
		fin.state = aborted ? HV_MIG_CANCELLED : HV_MIG_FAILED;
		snprintf(fin.error, sizeof(fin.error), "%s", why);
	}
	log_info("libvirt: load %llu of %s on %s from %s: %s in %llu ms", (unsigned long long)m->id,
		 m->guest, m->dst, m->path, rc == 0 ? "completed, paused" : why,
		 (unsigned long long)fin.total_time_ms);
	job_finish(m, &fin);
	return NULL;
}

static int load_start_locked(struct hv *hv, const char *guest, const char *host,
			     const char *path, uint64_t *id, char *err, size_t errlen)
{
	struct hv_guest_info where;
	char why[256];
	struct lv_host *h = lv_host_find(hv, host);
	if (!h) {
		snprintf(err, errlen, "guest %s: host %s: not in the libvirt backend", guest,
			 host ? host : "(null)");
		return -ENOENT;
	}
	if (lv_guest_migrating(hv, guest)) {
		snprintf(err, errlen, "guest %s: a migration, save or load of it is running", guest);
		return -EBUSY;
	}
	int rc = lv_guest_info_locked(hv, guest, &where, why, sizeof(why));
	if (rc == 0) {
		snprintf(err, errlen, "guest %s: already runs on %s", guest, where.host);
		return -EEXIST;
	}
	if (rc == -EHOSTUNREACH) /* a dead host is why one restores */
		log_warnx("guest %s: loading on %s although %s", guest, h->name, why);
	virConnectPtr c = lv_host_conn(hv, h, err, errlen);
	if (!c)
		return -EHOSTUNREACH;
	struct lv_mig *m = job_new(hv, LV_JOB_LOAD, guest, path);
	if (!m) {
		snprintf(err, errlen, "guest %s: out of memory", guest);
		return -ENOMEM;
	}
	snprintf(m->dst, sizeof(m->dst), "%s", h->name);
	virConnectRef(c);
	m->dconn = c;
	rc = job_start(hv, m, load_main, false, id, err, errlen);
	if (rc == 0)
		log_debug("libvirt: load %llu: %s on %s from %s", (unsigned long long)*id, guest,
			  h->name, path);
	return rc;
}

int lv_load_start(struct hv *hv, const char *guest, const char *host,
		  const struct hv_image *img, uint64_t *id, char *err, size_t errlen)
{
	if (!hv_libvirt_valid_name(guest)) {
		snprintf(err, errlen, "guest \"%s\": not a libvirt guest name", guest ? guest : "");
		return -EINVAL;
	}
	int rc = image_path(guest, img, err, errlen);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&hv->lock);
	rc = load_start_locked(hv, guest, host, img->path, id, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

int lv_load_abort(struct hv *hv, struct lv_mig *m, char *err, size_t errlen)
{
	(void)hv;
	pthread_mutex_lock(&m->lock);
	bool done = m->done;
	pthread_mutex_unlock(&m->lock);
	if (done) {
		snprintf(err, errlen, "load %llu of guest %s: already finished",
			 (unsigned long long)m->id, m->guest);
		return -EALREADY;
	}
	/* a restore is no job virDomainAbortJob reaches: destroy its domain */
	virDomainPtr d = virDomainLookupByName(m->dconn, m->guest);
	if (!d) {
		snprintf(err, errlen, "load %llu of guest %s: its domain is not up on %s yet; "
			 "abort again", (unsigned long long)m->id, m->guest, m->dst);
		return -EAGAIN;
	}
	pthread_mutex_lock(&m->lock);
	m->abort_requested = true;
	pthread_mutex_unlock(&m->lock);
	int rc = virDomainDestroy(d) == 0 ? 0 : -EIO;
	if (rc < 0)
		snprintf(err, errlen, "load %llu of guest %s: cannot destroy it on %s: %s",
			 (unsigned long long)m->id, m->guest, m->dst, lv_error());
	virDomainFree(d);
	return rc;
}

/* ---- pause, resume, destroy ------------------------------------------------ */

static int set_paused_locked(struct hv *hv, const char *guest, bool pause, char *err,
			     size_t errlen)
{
	struct lv_host *h;
	virDomainPtr d;
	int rc = find_active(hv, guest, &h, &d, err, errlen);
	if (rc < 0)
		return rc;
	int state = domain_state(d);
	if ((pause && state == VIR_DOMAIN_PAUSED) || (!pause && state == VIR_DOMAIN_RUNNING)) {
		virDomainFree(d);
		return 0;
	}
	if (!pause && ckpt_job(hv, guest)) {
		snprintf(err, errlen, "guest %s: being saved or loaded; it stays paused until that "
			 "ends", guest);
		virDomainFree(d);
		return -EBUSY;
	}
	if ((pause ? virDomainSuspend(d) : virDomainResume(d)) < 0) {
		snprintf(err, errlen, "guest %s on %s: cannot %s it: %s", guest, h->name,
			 pause ? "pause" : "resume", lv_error());
		rc = -EIO;
	}
	virDomainFree(d);
	return rc;
}

static int set_paused(struct hv *hv, const char *guest, bool pause, char *err, size_t errlen)
{
	if (!hv_libvirt_valid_name(guest)) {
		snprintf(err, errlen, "guest \"%s\": not a libvirt guest name", guest ? guest : "");
		return -EINVAL;
	}
	pthread_mutex_lock(&hv->lock);
	int rc = set_paused_locked(hv, guest, pause, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

int lv_guest_pause(struct hv *hv, const char *guest, char *err, size_t errlen)
{
	return set_paused(hv, guest, true, err, errlen);
}

int lv_guest_resume(struct hv *hv, const char *guest, char *err, size_t errlen)
{
	return set_paused(hv, guest, false, err, errlen);
}

static int destroy_locked(struct hv *hv, const char *guest, char *err, size_t errlen)
{
	struct lv_host *h;
	virDomainPtr d;
	if (lv_guest_migrating(hv, guest)) {
		snprintf(err, errlen, "guest %s: a migration, save or load of it is running", guest);
		return -EBUSY;
	}
	int rc = find_active(hv, guest, &h, &d, err, errlen);
	if (rc < 0)
		return rc;
	if (virDomainIsPersistent(d) == 0) {
		/* a transient domain leaves nothing behind: keep its XML */
		char *xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_MIGRATABLE);
		if (xml && known_put(hv, guest, xml) < 0)
			log_warnx("guest %s: its XML is not kept (out of memory)", guest);
	}
	if (virDomainDestroy(d) < 0) {
		snprintf(err, errlen, "guest %s on %s: cannot destroy it: %s", guest, h->name,
			 lv_error());
		rc = -EIO;
	} else {
		log_info("guest %s: destroyed on %s", guest, h->name);
	}
	virDomainFree(d);
	return rc;
}

int lv_guest_destroy(struct hv *hv, const char *guest, char *err, size_t errlen)
{
	if (!hv_libvirt_valid_name(guest)) {
		snprintf(err, errlen, "guest \"%s\": not a libvirt guest name", guest ? guest : "");
		return -EINVAL;
	}
	pthread_mutex_lock(&hv->lock);
	int rc = destroy_locked(hv, guest, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

/* ---- the domain XML ---------------------------------------------------------- */

/* The XML of guest's domain on any reachable host, active or only defined. */
static char *domain_xml_anywhere(struct hv *hv, const char *guest)
{
	char *xml = NULL;
	for (size_t i = 0; i < hv->n_hosts && !xml; i++) {
		char cerr[256];
		virConnectPtr c = lv_host_conn(hv, hv->hosts[i], cerr, sizeof(cerr));
		virDomainPtr d = c ? virDomainLookupByName(c, guest) : NULL;
		if (d)
			xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_MIGRATABLE);
		if (d)
			virDomainFree(d);
	}
	return xml;
}

int lv_guest_config(struct hv *hv, const char *guest, char **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!hv_libvirt_valid_name(guest)) {
		snprintf(err, errlen, "guest \"%s\": not a libvirt guest name", guest ? guest : "");
		return -EINVAL;
	}
	pthread_mutex_lock(&hv->lock);
	struct hv_guest_info where;
	char *xml = NULL;
	/* where it runs first: a definition elsewhere may be older */
	if (lv_guest_info_locked(hv, guest, &where, err, errlen) == 0) {
		struct lv_host *h = lv_host_find(hv, where.host);
		virConnectPtr c = h ? lv_host_conn(hv, h, err, errlen) : NULL;
		virDomainPtr d = c ? virDomainLookupByName(c, guest) : NULL;
		if (d)
			xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_MIGRATABLE);
		if (d)
			virDomainFree(d);
	}
	if (!xml)
		xml = domain_xml_anywhere(hv, guest);
	struct lv_known *k = xml ? NULL : known_find(hv, guest);
	if (k)
		xml = strdup(k->xml);
	pthread_mutex_unlock(&hv->lock);
	if (!xml) {
		snprintf(err, errlen, "guest %s: no domain of that name on any reachable host, and "
			 "not kept by migd", guest);
		return -ENOENT;
	}
	*out = xml;
	return 0;
}

int lv_guest_define(struct hv *hv, const char *guest, const char *config, char *err,
		    size_t errlen)
{
	char name[HV_LIBVIRT_NAME_MAX + 1];
	if (!hv_libvirt_valid_name(guest)) {
		snprintf(err, errlen, "guest \"%s\": not a libvirt guest name", guest ? guest : "");
		return -EINVAL;
	}
	if (hv_libvirt_xml_name(config, name, sizeof(name)) < 0 || strcmp(name, guest) != 0) {
		snprintf(err, errlen, "guest %s: config: expected domain XML with <name>%s</name>",
			 guest, guest);
		return -EINVAL;
	}
	int rc = 0;
	pthread_mutex_lock(&hv->lock);
	char *there = domain_xml_anywhere(hv, guest);
	if (there || known_find(hv, guest)) {
		snprintf(err, errlen, "guest %s: already known (%s)", guest,
			 there ? "a domain of that name is on a host" : "kept by migd");
		rc = -EEXIST;
	} else {
		char *xml = strdup(config);
		rc = xml ? known_put(hv, guest, xml) : -ENOMEM;
		if (rc < 0)
			snprintf(err, errlen, "guest %s: out of memory", guest);
	}
	free(there);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}
