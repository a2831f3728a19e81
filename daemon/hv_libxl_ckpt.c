/*
 * hv_libxl_ckpt: checkpoint and restore through libxl (Xen 4.17, Debian 12):
 * pause, resume, save, load, destroy, and a guest's libxl config (JSON).
 *
 * The steps are those of xl (tools/xl/xl_saverestore.c), on the local Xen
 * host only (libxl drives the machine it runs on):
 * - pause and resume: libxl_domain_pause/libxl_domain_unpause, after
 *   libxl_domain_info says the domain is not so already (Xen counts pauses:
 *   pausing twice would need two resumes).
 * - save, like `xl save -c -p` (checkpoint, leave paused): the config is
 *   kept (libxl_retrieve_domain_configuration, libxl_domain_config_to_json),
 *   then libxl_domain_suspend(fd, flags 0: not LIVE) writes libxl's stream
 *   (v2) to the image; on success the domain is suspended, not gone, and
 *   libxl_domain_pause then libxl_domain_resume(suspend_cancel=1) brings it
 *   back paused (xl's leavepaused order). suspend_cancel=1 is the
 *   cooperative resume: the guest's suspend hypercall returns "cancelled",
 *   so it carries on in the same domain without reconnecting its devices.
 *   On failure xl resumes the same way; so do we, if it got suspended.
 *   libxl suspends PV guests and HVM guests with PV drivers by asking them
 *   (xenstore control/shutdown or an event channel, 60 s timeout): a guest
 *   whose vCPUs are paused cannot answer. So the save unpauses the guest
 *   just before libxl_domain_suspend, and the image is as of the guest's
 *   own suspend (as long after as its kernel takes), not as of
 *   guest_pause. The mode is always "paused".
 * - load: libxl_domain_create_restore from the kept config
 *   (libxl_domain_config_from_json) with the image as restore_fd, stream
 *   version 2. libxl leaves the new domain paused (xl restore unpauses it
 *   unless -p); we check, and pause it if not.
 * - destroy: libxl_domain_destroy, the config kept first.
 * - guest_config: the running domain's config, else the kept one;
 *   guest_define keeps one (checked with jansson, then by libxl).
 *
 * Saves and loads are asynchronous libxl operations reported as events
 * (ao_how with callback NULL, for_event = the job's id): a worker thread
 * starts one and waits in libxl_event_wait for its OPERATION_COMPLETE, so
 * libxl_ao_abort(ctx, that ao_how) can cut it short (it kills the save
 * helper) whether the image is a pipe or a file. Migrations (hv_libxl.c)
 * stay synchronous and aborted through their socket. Any number of saves
 * and loads may run, under the ids of migrations.
 *
 * The image is libxl's stream alone: the config travels in migd's
 * manifest (guest_config), not in the image as in xl's save files.
 *
 * No Xen hypervisor runs where this was written: nothing here that touches
 * a domain has run. Tested: the ops are wired, the calls fail with clear
 * errors without Xen, and config checking (tests/test_hv_libxl.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libxl_utils.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv_libxl_int.h"
#include "log.h"
#include "util.h"

enum lx_job_kind { LX_SAVE = 1, LX_LOAD };

struct lx_job {
	struct hv *hv;
	enum lx_job_kind kind;
	uint64_t id;
	char guest[HV_LIBXL_NAME_MAX], host[HV_LIBXL_NAME_MAX];
	char image[160];         /* what the image is, for messages: a path or "fd N" */
	int fd;                  /* ours: a dup of the caller's, or the opened path */
	uint32_t domid;          /* save: the guest's; load: libxl's, once created */
	char *json;              /* load: the config to create from */
	uint64_t total_bytes, started_ms;
	pthread_t worker;
	bool done, abort_requested;
	struct hv_progress result;
	/* load: libxl's arguments live as long as the operation */
	libxl_domain_config cfg;
	libxl_domain_restore_params params;
};

/* ---- pure pieces (hv_libxl.h) ----------------------------------------------- */

int hv_libxl_config_check(const char *guest, const char *config, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = config ? json_loads(config, 0, &jerr) : NULL;
	json_t *c_info = json_object_get(root, "c_info");
	const char *name = json_string_value(json_object_get(c_info, "name"));
	int rc = -EINVAL;
	if (!config)
		snprintf(err, errlen, "guest %s: config: none given", guest);
	else if (!root)
		snprintf(err, errlen, "guest %s: config: not JSON: line %d, column %d: %s", guest,
			 jerr.line, jerr.column, jerr.text);
	else if (!json_is_object(root))
		snprintf(err, errlen, "guest %s: config: expected a libxl_domain_config JSON object",
			 guest);
	else if (!json_is_object(c_info))
		snprintf(err, errlen, "guest %s: config: no \"c_info\" object (not a "
			 "libxl_domain_config: see libxl_domain_config_to_json)", guest);
	else if (!name)
		snprintf(err, errlen, "guest %s: config: c_info has no \"name\" string", guest);
	else if (strcmp(name, guest) != 0)
		snprintf(err, errlen, "guest %s: config: c_info.name is \"%.64s\", not \"%s\"", guest,
			 name, guest);
	else if (!json_is_object(json_object_get(root, "b_info")))
		snprintf(err, errlen, "guest %s: config: no \"b_info\" object", guest);
	else
		rc = 0;
	json_decref(root);
	return rc;
}

/* ---- helpers ------------------------------------------------------------------ */

static const char *lx_error(int rc)
{
	const char *s = libxl_error_to_string((libxl_error)rc);
	return s ? s : "unknown libxl error";
}

static int no_xen(struct hv *hv, const char *guest, char *err, size_t errlen)
{
	if (hv->ctx)
		return 0;
	snprintf(err, errlen, "guest %s: no Xen hypervisor (the libxl backend has no libxl "
		 "context)", guest ? guest : "(null)");
	return -ENODEV;
}

static bool valid_guest(const char *guest, char *err, size_t errlen)
{
	if (guest && *guest && strlen(guest) < HV_LIBXL_NAME_MAX)
		return true;
	snprintf(err, errlen, "guest \"%.64s\": expected a name of 1 to %d bytes",
		 guest ? guest : "", HV_LIBXL_NAME_MAX - 1);
	return false;
}

/* A migration, save or load of guest runs (hv->lock held). */
static bool busy(struct hv *hv, const char *guest)
{
	return lx_job_busy(hv, guest) ||
	       (hv->mig && !hv->mig->done && strcmp(hv->mig->guest, guest) == 0);
}

bool lx_job_busy(struct hv *hv, const char *guest)
{
	for (size_t i = 0; i < hv->n_jobs; i++)
		if (!hv->jobs[i]->done && strcmp(hv->jobs[i]->guest, guest) == 0)
			return true;
	return false;
}

/* guest's domain on the local host (hv->lock held); -ENOENT saying so. */
static int local_domid(struct hv *hv, const char *guest, uint32_t *domid, char *err,
		       size_t errlen)
{
	if (hv->local && libxl_name_to_domid(hv->ctx, guest, domid) == 0)
		return 0;
	snprintf(err, errlen, "guest %s: not on the local Xen host (%s)", guest,
		 hv->local ? hv->local->u.name : "none added");
	return -ENOENT;
}

/* The domain's config as libxl JSON (the caller frees), or NULL with *lrc. */
static char *config_json(libxl_ctx *ctx, uint32_t domid, int *lrc)
{
	libxl_domain_config cfg;
	libxl_domain_config_init(&cfg);
	*lrc = libxl_retrieve_domain_configuration(ctx, domid, &cfg, NULL);
	char *json = *lrc == 0 ? libxl_domain_config_to_json(ctx, &cfg) : NULL;
	if (*lrc == 0 && !json)
		*lrc = ERROR_NOMEM;
	libxl_domain_config_dispose(&cfg);
	return json;
}

static struct lx_known *known_find(struct hv *hv, const char *name)
{
	for (size_t i = 0; i < hv->n_known; i++)
		if (strcmp(hv->known[i].name, name) == 0)
			return &hv->known[i];
	return NULL;
}

/* Keep json (ours now) as guest's config (hv->lock held). */
static int known_put(struct hv *hv, const char *name, char *json)
{
	struct lx_known *k = known_find(hv, name);
	if (!k) {
		if (GROW(hv->known, hv->cap_known, hv->n_known + 1) < 0) {
			free(json);
			return -ENOMEM;
		}
		k = &hv->known[hv->n_known++];
		snprintf(k->name, sizeof(k->name), "%s", name);
		k->json = NULL;
	}
	free(k->json);
	k->json = json;
	return 0;
}

/* Is the domain shut down for a suspend (what libxl_domain_resume undoes)? */
static bool suspended(libxl_ctx *ctx, uint32_t domid)
{
	libxl_dominfo d;
	libxl_dominfo_init(&d);
	bool yes = libxl_domain_info(ctx, &d, domid) == 0 && d.shutdown &&
		   d.shutdown_reason == LIBXL_SHUTDOWN_REASON_SUSPEND;
	libxl_dominfo_dispose(&d);
	return yes;
}

/* ---- jobs ---------------------------------------------------------------------- */

static int is_completion_of(const libxl_event *ev, void *user)
{
	return ev->type == LIBXL_EVENT_TYPE_OPERATION_COMPLETE &&
	       ev->for_user == *(const uint64_t *)user;
}

/* After an operation with ao_how {NULL, id} started: cut it short if an
 * abort came before it was there to abort, and wait for its result. */
static int wait_completion(struct lx_job *j)
{
	libxl_ctx *ctx = j->hv->ctx;
	libxl_asyncop_how how = { .callback = NULL, .u.for_event = j->id };
	libxl_event *ev = NULL;
	uint64_t id = j->id;
	pthread_mutex_lock(&j->hv->lock);
	bool abort_now = j->abort_requested;
	pthread_mutex_unlock(&j->hv->lock);
	if (abort_now)
		libxl_ao_abort(ctx, &how);
	int rc = libxl_event_wait(ctx, &ev, LIBXL_EVENTMASK_ALL, is_completion_of, &id);
	if (rc == 0) {
		rc = ev->u.operation_complete.rc;
		libxl_event_free(ctx, ev);
	}
	return rc;
}

static struct lx_job *job_find(struct hv *hv, uint64_t id)
{
	for (size_t i = 0; i < hv->n_jobs; i++)
		if (hv->jobs[i]->id == id)
			return hv->jobs[i];
	return NULL;
}

static void job_free(struct lx_job *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	free(j->json);
	free(j);
}

/* The worker's last word (rc 0: COMPLETED). */
static void job_finish(struct lx_job *j, int rc, const char *why)
{
	struct hv_progress fin = { .total_bytes = j->total_bytes };
	fin.total_time_ms = now_ms() - j->started_ms;
	pthread_mutex_lock(&j->hv->lock);
	bool aborted = j->abort_requested;
	if (rc == 0) {
		fin.state = HV_MIG_COMPLETED;
		fin.transferred_bytes = fin.total_bytes;
		if (j->kind == LX_SAVE) {
			snprintf(fin.mode, sizeof(fin.mode), "paused");
			fin.pause_ms = fin.downtime_ms = fin.total_time_ms;
		}
	} else {
		fin.state = aborted ? HV_MIG_CANCELLED : HV_MIG_FAILED;
		snprintf(fin.error, sizeof(fin.error), "%s", why);
	}
	j->result = fin;
	j->done = true;
	close(j->fd); /* a pipe's reader sees the end */
	j->fd = -1;
	pthread_mutex_unlock(&j->hv->lock);
	log_info("libxl: %s %llu of %s %s %s: %s in %llu ms", j->kind == LX_SAVE ? "save" : "load",
		 (unsigned long long)j->id, j->guest, j->kind == LX_SAVE ? "to" : "from", j->image,
		 rc == 0 ? "completed, paused" : why, (unsigned long long)fin.total_time_ms);
}

/* The image's fd for a save (write) or load (read): a dup of img->fd, or
 * path opened; its description into j->image. */
static int image_fd(const char *guest, const struct hv_image *img, bool write, struct lx_job *j,
		    char *err, size_t errlen)
{
	if (img && img->fd >= 0 && !img->path) {
		j->fd = fcntl(img->fd, F_DUPFD_CLOEXEC, 3);
		snprintf(j->image, sizeof(j->image), "fd %d", img->fd);
	} else if (img && img->fd < 0 && img->path && img->path[0] == '/') {
		j->fd = write ? open(img->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)
			      : open(img->path, O_RDONLY | O_CLOEXEC);
		snprintf(j->image, sizeof(j->image), "%s", img->path);
	} else {
		snprintf(err, errlen, "guest %s: image: expected a pipe (fd) or an absolute path on "
			 "the guest's host, one of them (fd %d, path \"%s\")", guest,
			 img ? img->fd : -1, img && img->path ? img->path : "");
		return -EINVAL;
	}
	if (j->fd < 0) {
		int rc = -errno;
		snprintf(err, errlen, "guest %s: image %s: %s", guest, j->image, strerror(errno));
		return rc;
	}
	return 0;
}

static struct lx_job *job_new(struct hv *hv, enum lx_job_kind kind, const char *guest)
{
	struct lx_job *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->hv = hv;
	j->kind = kind;
	j->fd = -1;
	j->domid = (uint32_t)INVALID_DOMID;
	j->started_ms = now_ms();
	snprintf(j->guest, sizeof(j->guest), "%s", guest);
	return j;
}

/* List j and start its worker (hv->lock held); on failure j is freed. */
static int job_start(struct hv *hv, struct lx_job *j, void *(*worker)(void *), uint64_t *id,
		     char *err, size_t errlen)
{
	if (GROW(hv->jobs, hv->cap_jobs, hv->n_jobs + 1) < 0) {
		snprintf(err, errlen, "guest %s: out of memory", j->guest);
		job_free(j);
		return -ENOMEM;
	}
	j->id = hv->next_id;
	if (pthread_create(&j->worker, NULL, worker, j) != 0) {
		snprintf(err, errlen, "guest %s: cannot start a worker thread", j->guest);
		job_free(j);
		return -EAGAIN;
	}
	hv->next_id++;
	hv->jobs[hv->n_jobs++] = j;
	*id = j->id;
	return 0;
}

int lx_job_poll(struct hv *hv, uint64_t id, struct hv_progress *out, char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	struct lx_job *j = job_find(hv, id);
	if (j && j->done)
		*out = j->result;
	else if (j)
		/* libxl's progress (the logger) is one per context, shared with a
		 * migration: a save or load reports only its time */
		*out = (struct hv_progress){ .state = HV_MIG_ACTIVE, .total_bytes = j->total_bytes,
					     .remaining_bytes = j->total_bytes,
					     .total_time_ms = now_ms() - j->started_ms };
	else
		snprintf(err, errlen, "migration %llu: not known to the libxl backend",
			 (unsigned long long)id);
	pthread_mutex_unlock(&hv->lock);
	return j ? 0 : -ENOENT;
}

int lx_job_abort(struct hv *hv, uint64_t id, char *err, size_t errlen)
{
	int rc = 0;
	pthread_mutex_lock(&hv->lock);
	struct lx_job *j = job_find(hv, id);
	if (!j) {
		snprintf(err, errlen, "migration %llu: not known to the libxl backend",
			 (unsigned long long)id);
		rc = -ENOENT;
	} else if (j->done) {
		snprintf(err, errlen, "%s %llu of %s: already finished",
			 j->kind == LX_SAVE ? "save" : "load", (unsigned long long)id, j->guest);
		rc = -EALREADY;
	} else {
		/* ERROR_NOTFOUND when the worker has not started it yet: the
		 * worker aborts it itself (wait_completion) */
		libxl_asyncop_how how = { .callback = NULL, .u.for_event = j->id };
		j->abort_requested = true;
		libxl_ao_abort(hv->ctx, &how);
	}
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

void lx_job_forget(struct hv *hv, uint64_t id)
{
	pthread_mutex_lock(&hv->lock);
	for (size_t i = 0; i < hv->n_jobs; i++) {
		struct lx_job *j = hv->jobs[i];
		if (j->id == id && j->done) {
			pthread_join(j->worker, NULL);
			job_free(j);
			hv->jobs[i] = hv->jobs[--hv->n_jobs];
			break;
		}
	}
	pthread_mutex_unlock(&hv->lock);
}

void lx_jobs_close(struct hv *hv)
{
	pthread_mutex_lock(&hv->lock);
	for (size_t i = 0; i < hv->n_jobs; i++) {
		struct lx_job *j = hv->jobs[i];
		libxl_asyncop_how how = { .callback = NULL, .u.for_event = j->id };
		if (!j->done) { /* a save or load in flight is not left half done */
			j->abort_requested = true;
			libxl_ao_abort(hv->ctx, &how);
		}
	}
	pthread_mutex_unlock(&hv->lock);
	for (size_t i = 0; i < hv->n_jobs; i++) {
		pthread_join(hv->jobs[i]->worker, NULL);
		job_free(hv->jobs[i]);
	}
	free(hv->jobs);
	hv->jobs = NULL;
	hv->n_jobs = hv->cap_jobs = 0;
	for (size_t i = 0; i < hv->n_known; i++)
		free(hv->known[i].json);
	free(hv->known);
	hv->known = NULL;
	hv->n_known = hv->cap_known = 0;
}

/* ---- save ------------------------------------------------------------------------ */

/* After the suspend: the guest back, paused (xl save -c -p: pause, then a
 * cooperative resume); 0, or < 0 with why. */
static int back_paused(struct lx_job *j, bool unpaused, bool saved, char *why, size_t len)
{
	libxl_ctx *ctx = j->hv->ctx;
	int lrc = unpaused ? libxl_domain_pause(ctx, j->domid, NULL) : 0;
	if (lrc != 0)
		log_warnx("libxl: guest %s: libxl_domain_pause after the save: %s", j->guest,
			  lx_error(lrc));
	if ((saved || suspended(ctx, j->domid)) &&
	    (lrc = libxl_domain_resume(ctx, j->domid, 1, NULL)) != 0) {
		snprintf(why, len, "%slibxl_domain_resume failed (%s): the guest is suspended on "
			 "its host", saved ? "saved, but " : "", lx_error(lrc));
		return -EIO;
	}
	return 0;
}

static void *save_main(void *arg)
{
	struct lx_job *j = arg;
	libxl_ctx *ctx = j->hv->ctx;
	libxl_asyncop_how how = { .callback = NULL, .u.for_event = j->id };
	char why[sizeof(j->result.error)] = "";
	int lrc;
	char *json = config_json(ctx, j->domid, &lrc);
	if (!json)
		log_warnx("libxl: guest %s: its config is not kept: "
			  "libxl_retrieve_domain_configuration: %s", j->guest, lx_error(lrc));
	pthread_mutex_lock(&j->hv->lock);
	if (json && known_put(j->hv, j->guest, json) < 0)
		log_warnx("libxl: guest %s: its config is not kept (out of memory)", j->guest);
	pthread_mutex_unlock(&j->hv->lock);
	pthread_mutex_lock(&j->hv->lock);
	bool aborted = j->abort_requested;
	pthread_mutex_unlock(&j->hv->lock);
	/* a paused PV guest cannot acknowledge the suspend request */
	lrc = aborted ? ERROR_ABORTED : libxl_domain_unpause(ctx, j->domid, NULL);
	bool unpaused = lrc == 0;
	if (lrc == 0)
		lrc = libxl_domain_suspend(ctx, j->domid, j->fd, 0, &how);
	if (lrc == 0)
		lrc = wait_completion(j);
	if (lrc != 0)
		snprintf(why, sizeof(why), "libxl_domain_suspend: %s%s", lx_error(lrc),
			 lrc == ERROR_GUEST_TIMEDOUT ? " (the guest did not answer the suspend "
			 "request: are its PV drivers up?)" : "");
	char after[sizeof(why)] = "";
	int rc = back_paused(j, unpaused, lrc == 0, after, sizeof(after));
	if (*after)
		snprintf(why + strlen(why), sizeof(why) - strlen(why), "%s%s", *why ? "; " : "",
			 after);
	job_finish(j, lrc == 0 ? rc : -EIO, why);
	return NULL;
}

static int save_start_locked(struct hv *hv, const char *guest, const struct hv_image *img,
			     uint64_t *id, char *err, size_t errlen)
{
	uint32_t domid;
	libxl_dominfo d;
	if (busy(hv, guest)) {
		snprintf(err, errlen, "guest %s: a migration, save or load of it is running", guest);
		return -EBUSY;
	}
	int rc = local_domid(hv, guest, &domid, err, errlen);
	if (rc < 0)
		return rc;
	libxl_dominfo_init(&d);
	int lrc = libxl_domain_info(hv->ctx, &d, domid);
	bool paused = lrc == 0 && d.paused && !d.shutdown && !d.dying;
	uint64_t total_bytes = d.max_memkb * 1024;
	libxl_dominfo_dispose(&d);
	if (!paused) {
		snprintf(err, errlen, "guest %s: %s; a save takes a paused guest (guest_pause first)",
			 guest, lrc != 0 ? lx_error(lrc) : "not paused");
		return -EINVAL;
	}
	struct lx_job *j = job_new(hv, LX_SAVE, guest);
	if (!j) {
		snprintf(err, errlen, "guest %s: out of memory", guest);
		return -ENOMEM;
	}
	j->domid = domid;
	j->total_bytes = total_bytes;
	snprintf(j->host, sizeof(j->host), "%s", hv->local->u.name);
	rc = image_fd(guest, img, true, j, err, errlen);
	if (rc < 0) {
		job_free(j);
		return rc;
	}
	return job_start(hv, j, save_main, id, err, errlen);
}

int lx_save_start(struct hv *hv, const char *guest, const struct hv_image *img,
		  const struct hv_save_params *params, uint64_t *id, char *err, size_t errlen)
{
	(void)params; /* no background save: libxl writes while the guest is suspended */
	if (!valid_guest(guest, err, errlen))
		return -EINVAL;
	int rc = no_xen(hv, guest, err, errlen);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&hv->lock);
	rc = save_start_locked(hv, guest, img, id, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	if (rc == 0)
		log_debug("libxl: save %llu: %s", (unsigned long long)*id, guest);
	return rc;
}

/* ---- load ------------------------------------------------------------------------ */

/* The new domain paused, or -EIO with why. */
static int ensure_paused(struct lx_job *j, char *why, size_t len)
{
	libxl_dominfo d;
	libxl_dominfo_init(&d);
	int lrc = libxl_domain_info(j->hv->ctx, &d, j->domid);
	if (lrc == 0 && !d.paused)
		lrc = libxl_domain_pause(j->hv->ctx, j->domid, NULL);
	if (lrc == 0)
		j->total_bytes = d.max_memkb * 1024;
	libxl_dominfo_dispose(&d);
	if (lrc != 0)
		snprintf(why, len, "restored but not paused: %s", lx_error(lrc));
	return lrc == 0 ? 0 : -EIO;
}

static void *load_main(void *arg)
{
	struct lx_job *j = arg;
	libxl_ctx *ctx = j->hv->ctx;
	libxl_asyncop_how how = { .callback = NULL, .u.for_event = j->id };
	char why[sizeof(j->result.error)] = "";
	int rc = 0, lrc;
	libxl_domain_config_init(&j->cfg);
	libxl_domain_restore_params_init(&j->params);
	j->params.stream_version = 2; /* what libxl_domain_suspend writes (LIBXL_HAVE_SRM_V2) */
	lrc = libxl_domain_config_from_json(ctx, &j->cfg, j->json);
	if (lrc != 0) {
		snprintf(why, sizeof(why), "the kept config does not parse: %s", lx_error(lrc));
		rc = -EINVAL;
	}
	if (rc == 0) {
		lrc = libxl_domain_create_restore(ctx, &j->cfg, &j->domid, j->fd, -1, &j->params,
						  &how, NULL);
		if (lrc == 0)
			lrc = wait_completion(j);
		if (lrc != 0) {
			snprintf(why, sizeof(why), "libxl_domain_create_restore: %s", lx_error(lrc));
			rc = -EIO;
		}
	}
	if (rc == 0)
		rc = ensure_paused(j, why, sizeof(why));
	pthread_mutex_lock(&j->hv->lock);
	bool aborted = j->abort_requested;
	pthread_mutex_unlock(&j->hv->lock);
	if (rc == 0 && aborted) {
		rc = -ECANCELED; /* the abort came as it ended: it still wins */
		snprintf(why, sizeof(why), "aborted");
	}
	/* nothing of a failed load stays (ERROR_ABORTED may leave it half made) */
	if (rc < 0 && j->domid != (uint32_t)INVALID_DOMID &&
	    (lrc = libxl_domain_destroy(ctx, j->domid, NULL)) != 0)
		log_warnx("libxl: load %llu of %s: libxl_domain_destroy of domain %u: %s",
			  (unsigned long long)j->id, j->guest, j->domid, lx_error(lrc));
	libxl_domain_restore_params_dispose(&j->params);
	libxl_domain_config_dispose(&j->cfg);
	job_finish(j, rc, why);
	return NULL;
}

static int load_start_locked(struct hv *hv, const char *guest, const char *host,
			     const struct hv_image *img, uint64_t *id, char *err, size_t errlen)
{
	uint32_t domid;
	struct lx_known *k = known_find(hv, guest);
	if (!hv->local || !host || strcmp(host, hv->local->u.name) != 0) {
		snprintf(err, errlen, "guest %s: host %s: libxl restores only on the local Xen host "
			 "(%s)", guest, host ? host : "(null)",
			 hv->local ? hv->local->u.name : "none added");
		for (size_t i = 0; host && i < hv->n_hosts; i++)
			if (strcmp(hv->hosts[i].u.name, host) == 0)
				return -EHOSTUNREACH; /* a host of ours, not the local one */
		return -ENOENT;
	}
	if (busy(hv, guest)) {
		snprintf(err, errlen, "guest %s: a migration, save or load of it is running", guest);
		return -EBUSY;
	}
	if (libxl_name_to_domid(hv->ctx, guest, &domid) == 0) {
		snprintf(err, errlen, "guest %s: already runs on %s (domain %u)", guest, host, domid);
		return -EEXIST;
	}
	if (!k) {
		snprintf(err, errlen, "guest %s: its libxl config is not known here (guest_define it "
			 "from the manifest first)", guest);
		return -ENOENT;
	}
	struct lx_job *j = job_new(hv, LX_LOAD, guest);
	if (!j || !(j->json = strdup(k->json))) {
		job_free(j);
		snprintf(err, errlen, "guest %s: out of memory", guest);
		return -ENOMEM;
	}
	snprintf(j->host, sizeof(j->host), "%s", host);
	int rc = image_fd(guest, img, false, j, err, errlen);
	if (rc < 0) {
		job_free(j);
		return rc;
	}
	return job_start(hv, j, load_main, id, err, errlen);
}

int lx_load_start(struct hv *hv, const char *guest, const char *host,
		  const struct hv_image *img, uint64_t *id, char *err, size_t errlen)
{
	if (!valid_guest(guest, err, errlen))
		return -EINVAL;
	int rc = no_xen(hv, guest, err, errlen);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&hv->lock);
	rc = load_start_locked(hv, guest, host, img, id, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	if (rc == 0)
		log_debug("libxl: load %llu: %s on %s", (unsigned long long)*id, guest, host);
	return rc;
}

/* ---- pause, resume, destroy ------------------------------------------------------- */

static int set_paused_locked(struct hv *hv, const char *guest, bool pause, char *err,
			     size_t errlen)
{
	uint32_t domid;
	libxl_dominfo d;
	if (busy(hv, guest)) {
		/* Xen counts pauses: one of ours now would outlast the save's */
		snprintf(err, errlen, "guest %s: a migration, save or load of it is running; it "
			 "stays as that leaves it", guest);
		return -EBUSY;
	}
	int rc = local_domid(hv, guest, &domid, err, errlen);
	if (rc < 0)
		return rc;
	libxl_dominfo_init(&d);
	int lrc = libxl_domain_info(hv->ctx, &d, domid);
	bool paused = d.paused, down = d.shutdown || d.dying;
	libxl_dominfo_dispose(&d);
	if (lrc == 0 && down) {
		snprintf(err, errlen, "guest %s: shutting down or suspended; cannot %s it", guest,
			 pause ? "pause" : "resume");
		return -EINVAL;
	}
	if (lrc == 0 && paused == pause)
		return 0;
	if (lrc == 0)
		lrc = pause ? libxl_domain_pause(hv->ctx, domid, NULL)
			    : libxl_domain_unpause(hv->ctx, domid, NULL);
	if (lrc != 0) {
		snprintf(err, errlen, "guest %s: cannot %s it: %s", guest, pause ? "pause" : "resume",
			 lx_error(lrc));
		return -EIO;
	}
	return 0;
}

static int set_paused(struct hv *hv, const char *guest, bool pause, char *err, size_t errlen)
{
	if (!valid_guest(guest, err, errlen))
		return -EINVAL;
	int rc = no_xen(hv, guest, err, errlen);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&hv->lock);
	rc = set_paused_locked(hv, guest, pause, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

int lx_guest_pause(struct hv *hv, const char *guest, char *err, size_t errlen)
{
	return set_paused(hv, guest, true, err, errlen);
}

int lx_guest_resume(struct hv *hv, const char *guest, char *err, size_t errlen)
{
	return set_paused(hv, guest, false, err, errlen);
}

int lx_guest_destroy(struct hv *hv, const char *guest, char *err, size_t errlen)
{
	uint32_t domid;
	int lrc;
	if (!valid_guest(guest, err, errlen))
		return -EINVAL;
	int rc = no_xen(hv, guest, err, errlen);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&hv->lock);
	if (busy(hv, guest)) {
		snprintf(err, errlen, "guest %s: a migration, save or load of it is running", guest);
		rc = -EBUSY;
	} else {
		rc = local_domid(hv, guest, &domid, err, errlen);
	}
	char *json = rc == 0 ? config_json(hv->ctx, domid, &lrc) : NULL;
	if (json && known_put(hv, guest, json) < 0)
		log_warnx("libxl: guest %s: its config is not kept (out of memory)", guest);
	pthread_mutex_unlock(&hv->lock);
	if (rc < 0)
		return rc;
	/* outside the lock: a destroy waits for the domain's devices to go */
	lrc = libxl_domain_destroy(hv->ctx, domid, NULL);
	if (lrc != 0) {
		snprintf(err, errlen, "guest %s: libxl_domain_destroy of domain %u: %s", guest, domid,
			 lx_error(lrc));
		return -EIO;
	}
	log_info("libxl: guest %s: destroyed (domain %u), its config kept", guest, domid);
	return 0;
}

/* ---- configs ------------------------------------------------------------------------ */

int lx_guest_config(struct hv *hv, const char *guest, char **out, char *err, size_t errlen)
{
	uint32_t domid;
	int lrc = 0;
	char *json = NULL;
	*out = NULL;
	if (!valid_guest(guest, err, errlen))
		return -EINVAL;
	pthread_mutex_lock(&hv->lock);
	/* the running domain first: a kept config may be older */
	if (hv->ctx && hv->local && libxl_name_to_domid(hv->ctx, guest, &domid) == 0 &&
	    (json = config_json(hv->ctx, domid, &lrc)) != NULL) {
		char *kept = strdup(json);
		if (kept)
			known_put(hv, guest, kept);
	}
	struct lx_known *k = json ? NULL : known_find(hv, guest);
	if (k)
		json = strdup(k->json);
	pthread_mutex_unlock(&hv->lock);
	if (!json && k) {
		snprintf(err, errlen, "guest %s: out of memory", guest);
		return -ENOMEM;
	}
	if (!json) {
		snprintf(err, errlen, "guest %s: %s, and no config of it is kept (guest_define)",
			 guest, !hv->ctx ? "no Xen hypervisor to ask"
			 : lrc != 0 ? lx_error(lrc) : "not on the local Xen host");
		return -ENOENT;
	}
	*out = json;
	return 0;
}

/* libxl's own parse of config (the checks of hv_libxl_config_check passed). */
static int libxl_accepts(libxl_ctx *ctx, const char *guest, const char *config, char *err,
			 size_t errlen)
{
	libxl_domain_config cfg;
	libxl_domain_config_init(&cfg);
	int lrc = libxl_domain_config_from_json(ctx, &cfg, config);
	libxl_domain_config_dispose(&cfg);
	if (lrc == 0)
		return 0;
	snprintf(err, errlen, "guest %s: config: libxl_domain_config_from_json refuses it (%s; "
		 "its reason is in migd's log)", guest, lx_error(lrc));
	return -EINVAL;
}

int lx_guest_define(struct hv *hv, const char *guest, const char *config, char *err,
		    size_t errlen)
{
	uint32_t domid;
	if (!valid_guest(guest, err, errlen))
		return -EINVAL;
	int rc = hv_libxl_config_check(guest, config, err, errlen);
	if (rc == 0 && hv->ctx)
		rc = libxl_accepts(hv->ctx, guest, config, err, errlen);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&hv->lock);
	bool running = hv->ctx && hv->local && libxl_name_to_domid(hv->ctx, guest, &domid) == 0;
	if (running || known_find(hv, guest)) {
		snprintf(err, errlen, "guest %s: already known (%s)", guest,
			 running ? "it runs on the local Xen host" : "its config is kept");
		rc = -EEXIST;
	} else {
		char *json = strdup(config);
		rc = json ? known_put(hv, guest, json) : -ENOMEM;
		if (rc < 0)
			snprintf(err, errlen, "guest %s: out of memory", guest);
	}
	pthread_mutex_unlock(&hv->lock);
	return rc;
}
