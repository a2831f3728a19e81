/*
 * hv_qmp_ckpt: checkpoint and restore on the qmp backend: pause and resume,
 * save a paused guest's state to a descriptor, load it into a new QEMU that
 * stays paused, destroy a guest but keep it known, and its guest.json as
 * the text that defines it again elsewhere.
 *
 * A save is a QEMU migration to "fd:NAME": the descriptor migd gives (a
 * pipe it drains into the store) goes to QEMU over the QMP socket
 * (SCM_RIGHTS, getfd), then migrate. Asked for background, the save turns
 * on QEMU's background-snapshot (userfaultfd write protection: memory is
 * written as of the moment the device state is captured while the guest
 * runs); QEMU refuses it where that is not available (no uffd-wp for the
 * RAM's backend, an unprivileged QEMU without vm.unprivileged_userfaultfd)
 * and the save is then a plain one while the guest stays paused (mode
 * "paused"). QEMU 7.2 captures the device state in its migration thread a
 * moment after migrate, with the guest stopped, and then starts the guest
 * itself, whether it ran before or not (bg_migration_vm_start_bh); the
 * image is the state as of the pause, as the test checks byte for byte.
 * This file also sends cont once RAM flows, or at completion, in case a
 * QEMU does not. QEMU's downtime is the pause the save itself caused.
 * Here (Debian QEMU 7.2, TCG, kernel 6.x, root) background snapshots work
 * on the guests' anonymous RAM, the 8 KiB TCG padding included.
 *
 * A save in mode paused leaves QEMU in "postmigrate": paused, and cont
 * runs it again; QEMU refuses another migration from postmigrate, so a
 * second save needs the guest to have run in between (save_start says
 * so). A failed or cancelled save in mode paused leaves the guest paused
 * where it was. One in background mode is stopped again if QEMU let it
 * run, but on QEMU 7.2 it breaks that QEMU for saves and migrations and
 * may hang the guest (see qvm_check_can_send): the contract's "paused,
 * never gone" holds there only for saves in mode paused.
 *
 * A load is an incoming migration from "fd:NAME" into a QEMU started like
 * a migration destination plus -S, so that it stays paused once loaded
 * whatever state the image carries. While it loads, the instance carries
 * the marker HOST.restoring: guest_info does not count it, and
 * qvm_reconcile_all kills it after a crash of migd (a half-read image is
 * worthless; the executor starts the restore again). A save carries
 * HOST.saving: the reconciliation cancels it in QEMU and leaves the guest
 * paused, never resumes it (the executor decides from its row whether the
 * checkpoint's guests run again).
 *
 * Both are driven by migrate_poll (qckpt_advance) one short QMP command at
 * a time and share the migrations' id space (struct qmig, kind).
 */
#include "hv_qmp.h"
#include "hv_qmp_vm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "util.h"

#define UNCAPPED_BPS 107374182400ull /* as migrations: QEMU's 32 MiB/s is far too low */
#define FIGURES_WAIT_MS 2000         /* QEMU's total-time comes a moment after completed */
#define BG_STALL_MS 60000            /* a background save's QEMU may not answer this long */

static bool is_paused(const char *status)
{
	return strcmp(status, "paused") == 0 || strcmp(status, "postmigrate") == 0;
}

/* Where guest runs, for the calls on a live guest; -ENOENT with err. */
static int live_where(struct hv *hv, const char *guest, char *host, char *status,
		      size_t slen, char *err, size_t errlen)
{
	if (!qvm_valid_name(guest) ||
	    qvm_where(hv, guest, host, NAME_MAX_LEN, status, slen) < 0) {
		snprintf(err, errlen, "guest %s: no QEMU runs it", guest ? guest : "(null)");
		return -ENOENT;
	}
	return 0;
}

static int busy(struct hv *hv, const char *guest, char *err, size_t errlen)
{
	struct qmig *m = qmig_of_guest(hv, guest);
	if (!m)
		return 0;
	snprintf(err, errlen, "guest %s: %s %" PRIu64 " is in progress", guest,
		 m->kind == QMIG_SAVE ? "save" : m->kind == QMIG_LOAD ? "load" : "migration",
		 m->id);
	return -EBUSY;
}

/* ---- pause, resume ---- */

static int pause_locked(struct hv *hv, const char *guest, bool pause, char *err, size_t errlen)
{
	char host[NAME_MAX_LEN], status[32];
	int rc = live_where(hv, guest, host, status, sizeof(status), err, errlen);
	if (rc < 0)
		return rc;
	if (pause ? is_paused(status) : strcmp(status, "running") == 0)
		return 0;
	/* a save or migration in progress decides when the guest runs */
	if ((rc = busy(hv, guest, err, errlen)) < 0)
		return rc;
	if (pause && strcmp(status, "running") != 0) {
		snprintf(err, errlen, "guest %s on %s is %s: cannot pause it", guest, host, status);
		return -EINVAL;
	}
	rc = qvm_exec(hv, guest, host, pause ? "stop" : "cont", NULL, NULL, err, errlen);
	if (rc == 0)
		log_debug("qmp: guest %s on %s %s", guest, host, pause ? "paused" : "resumed");
	return rc;
}

int hv_qmp_guest_pause(struct hv *hv, const char *guest, char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = pause_locked(hv, guest, true, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

int hv_qmp_guest_resume(struct hv *hv, const char *guest, char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = pause_locked(hv, guest, false, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

/* ---- save ---- */

/*
 * Capabilities for a save: whatever a migration turned on (multifd,
 * post-copy, auto-converge) is off, background-snapshot as asked, and no
 * bandwidth cap, no TLS (a pipe, not the network: hv_qmp_tls.c).
 * -EREMOTEIO when QEMU refuses (err has its reason).
 */
static int save_caps(struct hv *hv, const char *guest, const char *host, bool background,
		     char *err, size_t errlen)
{
	static const char *const off[] = { "multifd", "postcopy-ram", "auto-converge" };
	json_t *caps = json_array();
	for (size_t i = 0; i < ARRAY_SIZE(off); i++)
		json_array_append_new(caps, json_pack("{s:s, s:b}", "capability", off[i], "state", 0));
	json_array_append_new(caps, json_pack("{s:s, s:b}", "capability", "background-snapshot",
					      "state", background));
	int rc = qvm_exec(hv, guest, host, "migrate-set-capabilities",
			  json_pack("{s:o}", "capabilities", caps), NULL, err, errlen);
	if (rc < 0)
		return rc;
	return qvm_exec(hv, guest, host, "migrate-set-parameters",
			json_pack("{s:I, s:s}", "max-bandwidth", (json_int_t)UNCAPPED_BPS,
				  "tls-creds", ""), NULL, err,
			errlen);
}

/* Hand fd to the instance's QEMU under fdname (getfd). */
static int pass_fd(struct hv *hv, const char *guest, const char *host, int fd,
		   const char *fdname, char *err, size_t errlen)
{
	return qvm_exec_fd(hv, guest, host, "getfd", json_pack("{s:s}", "fdname", fdname), fd,
			   NULL, err, errlen);
}

static int image_fd(const char *guest, const struct hv_image *img, char *err, size_t errlen)
{
	if (!img || img->fd < 0) {
		snprintf(err, errlen, "guest %s: the qmp backend streams images through a "
			 "descriptor (hv_image.fd), not a file on the host%s%s", guest,
			 img && img->path ? ": " : "", img && img->path ? img->path : "");
		return -ENOTSUP;
	}
	struct stat st;
	if (fstat(img->fd, &st) < 0) {
		snprintf(err, errlen, "guest %s: image descriptor %d: %s", guest, img->fd,
			 strerror(errno));
		return -EBADF;
	}
	return 0;
}

/* Undo qmig_new for a start that failed: the caller never saw the id. */
static void forget_new(struct hv *hv, struct qmig *m)
{
	for (size_t i = 0; i < hv->n_migs; i++) {
		if (hv->migs[i] == m) {
			hv->migs[i] = hv->migs[--hv->n_migs];
			break;
		}
	}
	free(m);
}

static int save_locked(struct hv *hv, const char *guest, const struct hv_image *img,
		       const struct hv_save_params *params, uint64_t *id, char *err,
		       size_t errlen)
{
	char host[NAME_MAX_LEN], status[32], fdname[48], uri[64], marker[PATH_MAX], why[300];
	bool background = params && params->background;
	struct qmig *m;
	int rc = live_where(hv, guest, host, status, sizeof(status), err, errlen);
	if (rc < 0 || (rc = busy(hv, guest, err, errlen)) < 0 ||
	    (rc = image_fd(guest, img, err, errlen)) < 0)
		return rc;
	if (!is_paused(status)) {
		snprintf(err, errlen, "guest %s on %s is %s: a save needs it paused", guest, host,
			 status);
		return -EINVAL;
	}
	if ((rc = qvm_check_can_send(hv, guest, host, err, errlen)) < 0)
		return rc;
	if (strcmp(status, "postmigrate") == 0) {
		/* QEMU 7.2 refuses to migrate from postmigrate ("Can't migrate
		 * the vm that was paused due to previous migration"), and only
		 * cont leaves that state: it runs the guest */
		snprintf(err, errlen, "guest %s on %s is still paused by an earlier save "
			 "(postmigrate): QEMU saves it again only after it ran; resume it first",
			 guest, host);
		return -EINVAL;
	}
	rc = save_caps(hv, guest, host, background, why, sizeof(why));
	if (rc == -EREMOTEIO && background) {
		log_info("qmp: guest %s on %s: no background snapshot (%s): saving while paused",
			 guest, host, why);
		background = false;
		rc = save_caps(hv, guest, host, false, why, sizeof(why));
	}
	if (rc < 0) {
		snprintf(err, errlen, "%s", why);
		return rc;
	}
	qvm_path(hv, guest, host, "saving", marker, sizeof(marker));
	if ((rc = qvm_write_file(marker, "", false)) < 0) {
		snprintf(err, errlen, "guest %s: writing %s: %s", guest, marker, strerror(-rc));
		return rc;
	}
	if ((rc = qmig_new(hv, QMIG_SAVE, guest, &m)) < 0) {
		unlink(marker);
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	snprintf(m->src, sizeof(m->src), "%s", host);
	snprintf(fdname, sizeof(fdname), "migd-save-%" PRIu64, m->id);
	snprintf(uri, sizeof(uri), "fd:%s", fdname);
	m->background = background;
	rc = pass_fd(hv, guest, host, img->fd, fdname, err, errlen);
	if (rc == 0) {
		rc = qvm_exec(hv, guest, host, "migrate", json_pack("{s:s}", "uri", uri), NULL,
			      err, errlen);
		if (rc < 0) /* QEMU keeps a named fd until it is used or closed */
			qvm_exec(hv, guest, host, "closefd", json_pack("{s:s}", "fdname", fdname),
				 NULL, why, sizeof(why));
	}
	if (rc < 0) {
		unlink(marker);
		forget_new(hv, m);
		return rc;
	}
	m->sent_ms = now_ms();
	m->phase = PH_RUNNING;
	*id = m->id;
	log_debug("qmp: save %" PRIu64 ": guest %s on %s, %s", m->id, guest, host,
		  background ? "background snapshot" : "while paused");
	return 0;
}

int hv_qmp_save_start(struct hv *hv, const char *guest, const struct hv_image *img,
		      const struct hv_save_params *params, uint64_t *id, char *err,
		      size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = save_locked(hv, guest, img, params, id, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

static void ckpt_done(struct qmig *m, enum hv_mig_state state, const char *why)
{
	m->progress.state = state;
	if (!m->progress.total_time_ms)
		m->progress.total_time_ms = now_ms() - m->started_ms;
	if (why)
		snprintf(m->progress.error, sizeof(m->progress.error), "%s", why);
	if (m->image_fd >= 0) {
		close(m->image_fd);
		m->image_fd = -1;
	}
	m->phase = PH_DONE;
}

/*
 * QEMU 7.2 leaves a background snapshot that failed or was cancelled
 * half torn down: its RAM blocks stay marked write-protected with the
 * userfaultfd gone, and every later save or live migration of that QEMU
 * fails ("uffd_change_protection() failed ... errno=25", or
 * "Background-snapshot is not compatible with guest memory
 * configuration"). The guest itself runs on; the marker HOST.nosave makes
 * save_start and migrate_start say so at once instead of failing in QEMU.
 * A fresh QEMU (destroy, then load a checkpoint) is the way out.
 *
 * Worse, the protection stays on the guest's memory with nobody left to
 * lift it: the guest's next write to a page not yet saved waits forever,
 * and so does QEMU's main loop (QMP) when it writes guest memory or waits
 * for the vCPU (stop). Seen here after a save whose reader went away:
 * QEMU's main thread in handle_userfault, the others on futexes. So a
 * failed background save may leave the guest hung rather than paused; the
 * test and migd(8) BUGS record it. Saves in mode paused have no such
 * failure.
 */
int qvm_check_can_send(const struct hv *hv, const char *guest, const char *host, char *err,
		       size_t errlen)
{
	if (!qvm_marked(hv, guest, host, "nosave"))
		return 0;
	snprintf(err, errlen, "guest %s on %s: a background save of this QEMU failed, and QEMU "
		 "7.2 can neither save nor migrate it since (it leaves its RAM write-protected); "
		 "load a checkpoint into a new QEMU instead", guest, host);
	return -EIO;
}

static void mark_nosave(struct hv *hv, struct qmig *m)
{
	char marker[PATH_MAX];
	qvm_path(hv, m->guest, m->src, "nosave", marker, sizeof(marker));
	int rc = qvm_write_file(marker, "background save failed\n", false);
	log_warnx("qmp: guest %s on %s: QEMU cannot save or migrate it again after its failed "
		  "background save (QEMU 7.2)%s", m->guest, m->src,
		  rc < 0 ? "; and writing the marker failed" : "");
}

/* A save that did not complete: the guest is left paused where it is. */
static void save_fail(struct hv *hv, struct qmig *m, enum hv_mig_state state, const char *why)
{
	char status[32], err[300], marker[PATH_MAX], text[sizeof(m->progress.error)];
	if (m->background) {
		mark_nosave(hv, m);
		snprintf(text, sizeof(text), "%s; QEMU 7.2 may hang this guest now (a failed "
			 "background save leaves its memory write-protected)", why);
		why = text;
	}
	if (qvm_status(hv, m->guest, m->src, status, sizeof(status), err, sizeof(err)) == 0 &&
	    strcmp(status, "running") == 0 &&
	    qvm_exec(hv, m->guest, m->src, "stop", NULL, NULL, err, sizeof(err)) < 0)
		log_warnx("qmp: save %" PRIu64 ": %s", m->id, err);
	qvm_path(hv, m->guest, m->src, "saving", marker, sizeof(marker));
	unlink(marker);
	ckpt_done(m, state, why);
	log_info("qmp: save %" PRIu64 " of %s %s: %s; %s on %s", m->id, m->guest,
		 state == HV_MIG_CANCELLED ? "cancelled" : "failed", why,
		 m->background ? "the guest stays" : "it stays paused", m->src);
}

/*
 * Background: make sure the guest runs once QEMU has its device state.
 * QEMU captures it in the migration thread, holding the big lock, after
 * it reported "active" and before the first RAM page goes (QEMU 7.2
 * bg_migration_thread): bytes of RAM counted as sent mean it is done.
 * QEMU 7.2 has started the guest by then itself; cont of a running guest
 * does nothing.
 */
static void save_resume_background(struct hv *hv, struct qmig *m)
{
	char err[300];
	if (qvm_exec(hv, m->guest, m->src, "cont", NULL, NULL, err, sizeof(err)) < 0) {
		log_warnx("qmp: save %" PRIu64 ": %s", m->id, err);
		return;
	}
	m->resumed = 1;
	log_debug("qmp: save %" PRIu64 ": device state captured; %s runs again", m->id,
		  m->guest);
}

static void save_completed(struct hv *hv, struct qmig *m)
{
	char marker[PATH_MAX];
	struct hv_progress *p = &m->progress;
	if (m->background && !m->resumed)
		save_resume_background(hv, m);
	snprintf(p->mode, sizeof(p->mode), "%s", m->background ? "background" : "paused");
	/* paused: the guest stayed paused for the whole save (and stays so) */
	p->pause_ms = m->background ? p->downtime_ms : p->total_time_ms;
	p->remaining_bytes = 0;
	qvm_path(hv, m->guest, m->src, "saving", marker, sizeof(marker));
	unlink(marker);
	ckpt_done(m, HV_MIG_COMPLETED, NULL);
	log_info("qmp: save %" PRIu64 " of %s on %s: %" PRIu64 " bytes in %" PRIu64
		 " ms, %s, paused %" PRIu64 " ms by it", m->id, m->guest, m->src,
		 p->transferred_bytes, p->total_time_ms, p->mode, p->pause_ms);
}

static void save_advance(struct hv *hv, struct qmig *m)
{
	char status[32], err[300], why[200];
	if (m->phase != PH_RUNNING)
		return;
	int rc = qmig_query(hv, m, m->src, status, sizeof(status), err, sizeof(err));
	if (rc == -ETIMEDOUT && m->background) {
		/* the guest's writes, QEMU's main loop's too, wait for pages that
		 * still have to go to the image: a slow reader stalls QMP. Failing
		 * now would make migd stop reading, and a background snapshot that
		 * fails hangs the guest (QEMU 7.2): wait, within a bound. */
		if (!m->phase_deadline_ms)
			m->phase_deadline_ms = now_ms() + BG_STALL_MS;
		if (now_ms() < m->phase_deadline_ms)
			return;
		snprintf(why, sizeof(why), "QEMU has not answered for %d s while its background "
			 "save waits for the image", BG_STALL_MS / 1000);
		save_fail(hv, m, HV_MIG_FAILED, why);
		return;
	}
	if (rc < 0) {
		save_fail(hv, m, HV_MIG_FAILED, err);
		return;
	}
	m->phase_deadline_ms = 0;
	if (strcmp(status, "completed") == 0) {
		if (!m->completed_ms)
			m->completed_ms = now_ms();
		if (m->progress.total_time_ms == 0 && now_ms() - m->completed_ms < FIGURES_WAIT_MS)
			return;
		save_completed(hv, m);
	} else if (strcmp(status, "failed") == 0) {
		snprintf(why, sizeof(why), "QEMU: save failed: %s",
			 *m->progress.error ? m->progress.error : "no reason given");
		save_fail(hv, m, HV_MIG_FAILED, why);
	} else if (strcmp(status, "cancelled") == 0) {
		save_fail(hv, m, HV_MIG_CANCELLED,
			  m->abort_requested ? "aborted by request" : "cancelled in QEMU");
	} else if (m->background && !m->resumed && strcmp(status, "active") == 0 &&
		   m->progress.transferred_bytes > 0) {
		save_resume_background(hv, m);
	}
}

/* ---- load ---- */

/* memory_bytes of guest.json, 0 when unreadable. */
static uint64_t guest_memory(const struct hv *hv, const char *guest)
{
	char path[PATH_MAX];
	if (qvm_guest_json_path(hv, guest, path, sizeof(path)) < 0)
		return 0;
	json_t *j = json_load_file(path, 0, NULL);
	json_int_t mem = json_integer_value(json_object_get(j, "memory_bytes"));
	json_decref(j);
	return mem > 0 ? (uint64_t)mem : 0;
}

static int load_locked(struct hv *hv, const char *guest, const char *host,
		       const struct hv_image *img, uint64_t *id, char *err, size_t errlen)
{
	char where[NAME_MAX_LEN], status[32], path[PATH_MAX];
	const struct qhost *h = qhost_find(hv, host);
	struct qmig *m;
	pid_t launcher;
	int rc;
	if (!qvm_valid_name(guest) || qvm_guest_json_path(hv, guest, path, sizeof(path)) < 0 ||
	    !qvm_file_exists(path)) {
		snprintf(err, errlen, "guest %s: not known to the qmp backend (no guest.json; "
			 "guest_define makes it known)", guest ? guest : "(null)");
		return -ENOENT;
	}
	if (!h) {
		snprintf(err, errlen, "guest %s: host %s is not a qmp host", guest, host);
		return -ENOENT;
	}
	if (qvm_where(hv, guest, where, sizeof(where), status, sizeof(status)) == 0) {
		snprintf(err, errlen, "guest %s: already runs on %s (%s)", guest, where, status);
		return -EEXIST;
	}
	if ((rc = busy(hv, guest, err, errlen)) < 0 || (rc = image_fd(guest, img, err, errlen)) < 0)
		return rc;
	int fd = fcntl(img->fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0) {
		snprintf(err, errlen, "guest %s: image descriptor: %s", guest, strerror(errno));
		return -errno;
	}
	qvm_destroy(hv, guest, host); /* leftovers of an old instance there */
	qvm_path(hv, guest, host, "restoring", path, sizeof(path));
	rc = qvm_write_file(path, "", false);
	if (rc == 0)
		rc = qvm_spawn(hv, guest, h, QVM_RESTORE, &launcher, err, errlen);
	else
		snprintf(err, errlen, "guest %s: writing %s: %s", guest, path, strerror(-rc));
	if (rc == 0 && (rc = qmig_new(hv, QMIG_LOAD, guest, &m)) < 0) {
		waitpid(launcher, NULL, 0);
		snprintf(err, errlen, "out of memory");
	}
	if (rc < 0) {
		close(fd);
		qvm_destroy(hv, guest, host);
		return rc;
	}
	m->launcher = launcher;
	m->image_fd = fd;
	m->progress.total_bytes = guest_memory(hv, guest);
	snprintf(m->dst, sizeof(m->dst), "%s", host);
	m->phase = PH_SPAWN;
	m->phase_deadline_ms = now_ms() + SPAWN_TIMEOUT_MS;
	*id = m->id;
	log_debug("qmp: load %" PRIu64 ": guest %s on %s", m->id, guest, host);
	return 0;
}

int hv_qmp_load_start(struct hv *hv, const char *guest, const char *host,
		      const struct hv_image *img, uint64_t *id, char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = load_locked(hv, guest, host, img, id, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

/* The load ends badly: nothing of it is left on its host. */
static void load_fail(struct hv *hv, struct qmig *m, enum hv_mig_state state, const char *why)
{
	if (m->launcher > 0) {
		waitpid(m->launcher, NULL, 0); /* it exits once QEMU is up or failed */
		m->launcher = 0;
	}
	qvm_destroy(hv, m->guest, m->dst);
	ckpt_done(m, state, why);
	log_info("qmp: load %" PRIu64 " of %s on %s %s: %s", m->id, m->guest, m->dst,
		 state == HV_MIG_CANCELLED ? "cancelled" : "failed", why);
}

/* QEMU is up: give it the image and let it read. */
static int load_setup(struct hv *hv, struct qmig *m, char *err, size_t errlen)
{
	char fdname[48], uri[64];
	snprintf(fdname, sizeof(fdname), "migd-load-%" PRIu64, m->id);
	snprintf(uri, sizeof(uri), "fd:%s", fdname);
	int rc = pass_fd(hv, m->guest, m->dst, m->image_fd, fdname, err, errlen);
	close(m->image_fd); /* QEMU has its own copy now, or none */
	m->image_fd = -1;
	if (rc == 0)
		rc = qvm_exec(hv, m->guest, m->dst, "migrate-incoming",
			      json_pack("{s:s}", "uri", uri), NULL, err, errlen);
	m->sent_ms = now_ms();
	return rc;
}

static void load_running(struct hv *hv, struct qmig *m)
{
	char mig[32], status[32], err[300], why[400], marker[PATH_MAX];
	/* QEMU exits when an incoming migration fails: the query fails then */
	if (qmig_query(hv, m, m->dst, mig, sizeof(mig), err, sizeof(err)) < 0 ||
	    qvm_status(hv, m->guest, m->dst, status, sizeof(status), err, sizeof(err)) < 0) {
		if (qvm_pid(hv, m->guest, m->dst) == 0)
			snprintf(why, sizeof(why), "QEMU exited while loading: the image is "
				 "truncated, damaged or not this guest's");
		else
			snprintf(why, sizeof(why), "QEMU: the load failed (%s)", err);
		load_fail(hv, m, HV_MIG_FAILED, why);
		return;
	}
	if (strcmp(mig, "failed") == 0) {
		snprintf(why, sizeof(why), "QEMU: the load failed: %s",
			 *m->progress.error ? m->progress.error : "no reason given");
		load_fail(hv, m, HV_MIG_FAILED, why);
		return;
	}
	if (strcmp(mig, "completed") != 0 || strcmp(status, "inmigrate") == 0)
		return; /* still reading */
	if (strcmp(status, "paused") != 0 && strcmp(status, "prelaunch") != 0) {
		snprintf(why, sizeof(why), "loaded but %s, not paused", status);
		load_fail(hv, m, HV_MIG_FAILED, why);
		return;
	}
	qvm_path(hv, m->guest, m->dst, "restoring", marker, sizeof(marker));
	unlink(marker);
	m->progress.total_time_ms = now_ms() - m->started_ms;
	ckpt_done(m, HV_MIG_COMPLETED, NULL);
	log_info("qmp: load %" PRIu64 " of %s on %s: loaded in %" PRIu64 " ms, paused", m->id,
		 m->guest, m->dst, m->progress.total_time_ms);
}

static void load_advance(struct hv *hv, struct qmig *m)
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
			load_fail(hv, m, HV_MIG_FAILED, rc == 1 ? "QEMU did not start" : err);
			return;
		}
		if (m->abort_requested) {
			load_fail(hv, m, HV_MIG_CANCELLED, "aborted by request");
			return;
		}
		m->up_ms = now_ms();
		if (load_setup(hv, m, err, sizeof(err)) < 0) {
			load_fail(hv, m, HV_MIG_FAILED, err);
			return;
		}
		m->phase = PH_RUNNING;
		return;
	case PH_RUNNING:
		load_running(hv, m);
		return;
	default:
		return;
	}
}

void qckpt_advance(struct hv *hv, struct qmig *m)
{
	if (m->kind == QMIG_SAVE)
		save_advance(hv, m);
	else
		load_advance(hv, m);
}

int qckpt_abort(struct hv *hv, struct qmig *m, char *err, size_t errlen)
{
	const char *what = m->kind == QMIG_SAVE ? "save" : "load";
	if (m->phase == PH_DONE || m->abort_requested) {
		snprintf(err, errlen, "%s %" PRIu64 " of guest %s: %s", what, m->id, m->guest,
			 m->phase == PH_DONE ? "already finished" : "abort already requested");
		return -EALREADY;
	}
	m->abort_requested = 1;
	if (m->kind == QMIG_SAVE) /* QEMU reports cancelled; the poll sees it */
		return qvm_exec(hv, m->guest, m->src, "migrate_cancel", NULL, NULL, err, errlen);
	if (m->phase == PH_RUNNING) /* an incoming migration cannot be cancelled: kill it */
		load_fail(hv, m, HV_MIG_CANCELLED, "aborted by request");
	return 0;
}

/* ---- destroy, config, define ---- */

static int destroy_locked(struct hv *hv, const char *guest, char *err, size_t errlen)
{
	char hosts[4][NAME_MAX_LEN];
	int rc;
	if (!qvm_valid_name(guest)) {
		snprintf(err, errlen, "guest \"%s\": not a guest name", guest ? guest : "");
		return -EINVAL;
	}
	if ((rc = busy(hv, guest, err, errlen)) < 0)
		return rc;
	size_t n = qvm_instances(hv, guest, hosts, ARRAY_SIZE(hosts));
	if (n == 0) {
		snprintf(err, errlen, "guest %s: no QEMU runs it", guest);
		return -ENOENT;
	}
	for (size_t i = 0; i < n; i++) {
		qvm_destroy(hv, guest, hosts[i]);
		log_info("qmp: guest %s: killed on %s (guest.json kept)", guest, hosts[i]);
	}
	return 0;
}

int hv_qmp_guest_destroy(struct hv *hv, const char *guest, char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = destroy_locked(hv, guest, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

int hv_qmp_guest_config(struct hv *hv, const char *guest, char **out, char *err,
			size_t errlen)
{
	char path[PATH_MAX];
	*out = NULL;
	if (!qvm_valid_name(guest) || qvm_guest_json_path(hv, guest, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "guest \"%s\": not a guest name", guest ? guest : "");
		return -EINVAL;
	}
	pthread_mutex_lock(&hv->lock);
	json_t *j = json_load_file(path, 0, NULL);
	pthread_mutex_unlock(&hv->lock);
	if (!j) {
		snprintf(err, errlen, "guest %s: not known to the qmp backend (no readable %s)",
			 guest, path);
		return -ENOENT;
	}
	*out = json_dumps(j, JSON_INDENT(1));
	json_decref(j);
	if (!*out) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* The options every instance gets of its own (qvm_spawn): a manifest that
 * carries them would clash with them, or run what it pleases. */
static bool per_instance_option(const char *arg)
{
	static const char *const opts[] = { "-qmp", "-serial", "-pidfile", "-daemonize",
					    "-incoming", "-netdev", "-monitor", "-chardev",
					    "-S" };
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		if (strcmp(arg, opts[i]) == 0)
			return true;
	return false;
}

/* guest.json from another migd's guest_config: the fields qvm_spawn and
 * qvm_info read, checked. */
static int validate_config(const struct hv *hv, const char *guest, json_t *j, char *err,
			   size_t errlen)
{
	const char *name = json_string_value(json_object_get(j, "name"));
	json_t *mem = json_object_get(j, "memory_bytes"), *argv = json_object_get(j, "argv");
	const char *mac = json_string_value(json_object_get(j, "mac"));
	if (!json_is_object(j)) {
		snprintf(err, errlen, "guest %s: config: expected a JSON object", guest);
		return -EINVAL;
	}
	if (!name || strcmp(name, guest) != 0) {
		snprintf(err, errlen, "guest %s: config: \"name\" is %s%s%s, expected \"%s\"", guest,
			 name ? "\"" : "", name ? name : "missing", name ? "\"" : "", guest);
		return -EINVAL;
	}
	if (!json_is_integer(mem) || json_integer_value(mem) < (json_int_t)(16 * MIB)) {
		snprintf(err, errlen, "guest %s: config: \"memory_bytes\": expected an integer of "
			 "at least 16 MiB", guest);
		return -EINVAL;
	}
	if (!json_is_string(json_object_get(j, "ip"))) {
		snprintf(err, errlen, "guest %s: config: \"ip\": expected a string", guest);
		return -EINVAL;
	}
	if (!mac || strlen(mac) != 17) {
		snprintf(err, errlen, "guest %s: config: \"mac\": expected xx:xx:xx:xx:xx:xx", guest);
		return -EINVAL;
	}
	if (!json_is_array(argv) || json_array_size(argv) < 2) {
		snprintf(err, errlen, "guest %s: config: \"argv\": expected QEMU's command line as "
			 "an array of strings", guest);
		return -EINVAL;
	}
	for (size_t i = 0; i < json_array_size(argv); i++) {
		const char *a = json_string_value(json_array_get(argv, i));
		if (!a) {
			snprintf(err, errlen, "guest %s: config: \"argv\"[%zu]: expected a string",
				 guest, i);
			return -EINVAL;
		}
		if (i == 0 && strcmp(a, hv->qemu) != 0) {
			snprintf(err, errlen, "guest %s: config: \"argv\"[0] \"%s\": not this "
				 "backend's QEMU (%s)", guest, a, hv->qemu);
			return -EINVAL;
		}
		if (per_instance_option(a)) {
			snprintf(err, errlen, "guest %s: config: \"argv\"[%zu] \"%s\": an option "
				 "migd gives each instance itself", guest, i, a);
			return -EINVAL;
		}
	}
	return 0;
}

static int define_locked(struct hv *hv, const char *guest, const char *config, char *err,
			 size_t errlen)
{
	char path[PATH_MAX], dir[PATH_MAX];
	json_error_t jerr;
	if (!qvm_valid_name(guest) || qvm_guest_json_path(hv, guest, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "guest \"%s\": expected 1 to %d letters, digits, - _ .",
			 guest ? guest : "", NAME_MAX_LEN - 1);
		return -EINVAL;
	}
	if (qvm_file_exists(path)) {
		snprintf(err, errlen, "guest %s: already known to the qmp backend (%s)", guest, path);
		return -EEXIST;
	}
	json_t *j = json_loads(config ? config : "", JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		snprintf(err, errlen, "guest %s: config: line %d: %s", guest, jerr.line, jerr.text);
		return -EINVAL;
	}
	int rc = validate_config(hv, guest, j, err, errlen);
	char *text = rc == 0 ? json_dumps(j, JSON_INDENT(1)) : NULL;
	json_decref(j);
	if (rc < 0)
		return rc;
	if (!text || snprintf_checked(dir, sizeof(dir), "%s/%s", hv->state_dir, guest) < 0 ||
	    mkdir_p(dir, 0755) < 0) {
		free(text);
		snprintf(err, errlen, "guest %s: cannot make its directory %s", guest, dir);
		return -EIO;
	}
	rc = qvm_write_file(path, text, true);
	free(text);
	if (rc < 0)
		snprintf(err, errlen, "guest %s: writing %s: %s", guest, path, strerror(-rc));
	else
		log_info("qmp: guest %s defined from a config", guest);
	return rc;
}

int hv_qmp_guest_define(struct hv *hv, const char *guest, const char *config, char *err,
			size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = define_locked(hv, guest, config, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}
