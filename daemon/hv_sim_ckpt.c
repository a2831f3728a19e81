/*
 * hv_sim_ckpt: checkpoint and restore in the sim: pause and resume, saves
 * and loads of a guest's state through the checkpoint store, destroy, and
 * a guest's spec as JSON (guest_config / guest_define).
 *
 * The model. The store is one resource of hv->store_bps; the saves and
 * loads moving memory at one time share it in equal parts (as the links
 * are shared among migrations, max-min with no caps), re-shared at every
 * event. A save first captures the device state, HV_SIM_SAVE_DEVICE_S
 * with the guest paused and the store unused, then writes the guest's
 * memory M at its share. Mode "background" resumes the guest once the
 * device state is taken (pause_ms is the device state alone); otherwise
 * the guest stays paused for the whole save ("paused", pause_ms = all of
 * it). A load starts the guest (HV_SIM_GUEST_START_S, no store use), then
 * reads M at its share; the guest is on its host, paused, from the start
 * of the load and is recorded there in sim.db only once loaded. Like
 * migrations, saves and loads move only from event to event on the
 * virtual clock, and a poll interpolates: figures depend on start and
 * abort times only.
 *
 * The image. A sim guest has no memory contents, so its image is a JSON
 * header of one line (format, version, guest, memory, dirty rate, the
 * virtual time the state is as of): written to img->fd when the model's
 * save ends, read back and checked by a load when the model's load ends.
 * The fd is migd's pipe to or from its drain thread, so it is made
 * non-blocking and every attempt that would block is retried at the next
 * poll: a save or load stays ACTIVE until its image is whole, and the
 * driver's lock is never held across a blocking call.
 *
 * Every function here runs under hv->lock (hv_sim_int.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv_sim_int.h"
#include "log.h"
#include "util.h"

#define IMAGE_FORMAT "migd-sim-image"
#define IMAGE_VERSION 1
#define IMAGE_MAX 4096 /* a sim image is a few hundred bytes */

enum xfer_kind { XFER_SAVE, XFER_LOAD };

enum xfer_phase {
	XFER_FIXED,  /* save: device state; load: the guest starting. No store use */
	XFER_MEMORY, /* memory through the store at rate_bps */
	XFER_IMAGE,  /* the model is done: the image header goes out or comes in */
	XFER_DONE,   /* final figures in final */
};

struct sim_xfer {
	uint64_t id;
	enum xfer_kind kind;
	enum xfer_phase phase;
	bool background;         /* save: resume after the device state */
	struct sim_guest *guest; /* guests live as long as the driver */
	struct sim_host *host;   /* saved from or loaded on; NULL once done */
	char host_name[HV_SIM_NAME_MAX];
	int fd;                  /* ours (a dup), -1 once closed */
	double started_s;
	double fixed_left_s;
	double left_bytes;
	double rate_bps;         /* its share of the store until the next event */
	double memory_s;         /* time spent moving memory */
	double model_end_s;
	char image[IMAGE_MAX];
	size_t image_len, image_done;
	struct hv_progress final;
};

/* ---- helpers ---- */

static struct sim_xfer *xfer_find(const struct hv *hv, uint64_t id)
{
	for (size_t i = 0; i < hv->n_xfers; i++)
		if (hv->xfers[i]->id == id)
			return hv->xfers[i];
	return NULL;
}

static void xfer_close_fd(struct sim_xfer *x)
{
	if (x->fd >= 0)
		close(x->fd);
	x->fd = -1;
}

/* Where g runs and whether paused, on disk first; a failure is logged. */
static void record_place(struct hv *hv, struct sim_guest *g)
{
	char err[200];
	if (sim_db_record_place(hv, g, g->host, g->paused, err, sizeof(err)) < 0)
		log_warnx("sim: guest %s: %s", g->name, err);
}

static bool memory_done(const struct sim_xfer *x)
{
	return x->left_bytes <= 1e-9 * (double)x->guest->memory_bytes + 1e-6;
}

/* Equal shares of the store among the saves and loads moving memory. */
static void reshare_store(struct hv *hv)
{
	size_t n = 0;
	for (size_t i = 0; i < hv->n_xfers; i++)
		n += hv->xfers[i]->phase == XFER_MEMORY;
	for (size_t i = 0; i < hv->n_xfers; i++) {
		struct sim_xfer *x = hv->xfers[i];
		x->rate_bps = x->phase == XFER_MEMORY ? hv->store_bps / (double)n : 0;
	}
}

/* ---- the model on the event loop ---- */

double sim_ckpt_next_event_s(const struct hv *hv)
{
	double dt_s = INFINITY;
	for (size_t i = 0; i < hv->n_xfers; i++) {
		const struct sim_xfer *x = hv->xfers[i];
		if (x->phase == XFER_FIXED)
			dt_s = fmin(dt_s, x->fixed_left_s);
		else if (x->phase == XFER_MEMORY && x->rate_bps > 0)
			dt_s = fmin(dt_s, x->left_bytes / x->rate_bps);
	}
	return dt_s;
}

void sim_ckpt_advance(struct hv *hv, double dt_s)
{
	for (size_t i = 0; i < hv->n_xfers; i++) {
		struct sim_xfer *x = hv->xfers[i];
		if (x->phase == XFER_FIXED) {
			x->fixed_left_s -= dt_s;
		} else if (x->phase == XFER_MEMORY) {
			x->left_bytes -= x->rate_bps * dt_s;
			x->memory_s += dt_s;
		}
	}
}

/* The figures of a save or load that ended at end_s in state. */
static void final_figures(struct sim_xfer *x, enum hv_mig_state state, double end_s,
			  const char *error)
{
	const struct sim_guest *g = x->guest;
	double total_s = end_s - x->started_s;
	double moved = (double)g->memory_bytes - fmax(x->left_bytes, 0);
	x->final = (struct hv_progress){
		.state = state,
		.transferred_bytes = (uint64_t)llround(fmax(moved, 0)),
		.total_bytes = g->memory_bytes,
		.remaining_bytes = (uint64_t)llround(fmax(x->left_bytes, 0)),
		.rounds = 1,
		.total_time_ms = sim_ms_of(total_s),
		.dirty_rate_bps = g->dirty_rate_bps,
		.ram_bytes = g->memory_bytes,
	};
	if (x->memory_s > 0)
		x->final.link_bps = (uint64_t)llround(moved / x->memory_s);
	if (x->kind == XFER_SAVE && state == HV_MIG_COMPLETED) {
		snprintf(x->final.mode, sizeof(x->final.mode), "%s",
			 x->background ? "background" : "paused");
		x->final.pause_ms = x->background ? sim_ms_of(HV_SIM_SAVE_DEVICE_S)
						  : x->final.total_time_ms;
		x->final.downtime_ms = x->final.pause_ms;
	}
	if (error)
		snprintf(x->final.error, sizeof(x->final.error), "%s", error);
}

/* The end of a save or load: figures, the guest's state, the fd. */
static void xfer_end(struct hv *hv, struct sim_xfer *x, enum hv_mig_state state, double end_s,
		     const char *error)
{
	struct sim_guest *g = x->guest;
	final_figures(x, state, end_s, error);
	if (x->kind == XFER_LOAD && state != HV_MIG_COMPLETED) {
		/* nothing of it is left on the host; it stays known */
		sim_host_unlink_guest(x->host, g);
		g->host = NULL;
		g->paused = false;
	} else if (x->kind == XFER_SAVE && state != HV_MIG_COMPLETED && !g->paused) {
		g->paused = true; /* as it was before the save */
		record_place(hv, g);
	}
	g->xfer = NULL;
	x->host = NULL;
	x->phase = XFER_DONE;
	xfer_close_fd(x);
	log_debug("sim: %s %llu of guest %s: %s%s%s", x->kind == XFER_SAVE ? "save" : "load",
		  (unsigned long long)x->id, g->name,
		  state == HV_MIG_COMPLETED ? "completed" : state == HV_MIG_CANCELLED ? "cancelled"
										 : "failed",
		  error ? ": " : "", error ? error : "");
}

/* ---- the image ---- */

static void image_build(const struct hv *hv, struct sim_xfer *x)
{
	const struct sim_guest *g = x->guest;
	int64_t as_of_ns = hv->epoch_ns + (int64_t)llround(x->started_s * 1e9);
	json_t *j = json_pack("{s:s, s:i, s:s, s:s, s:I, s:I, s:I, s:s}", "format", IMAGE_FORMAT,
			      "version", IMAGE_VERSION, "guest", g->name, "host", x->host_name,
			      "memory_bytes", (json_int_t)g->memory_bytes, "dirty_rate_bps",
			      (json_int_t)g->dirty_rate_bps, "saved_at_ns", (json_int_t)as_of_ns,
			      "mode", x->background ? "background" : "paused");
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	x->image_len = text ? (size_t)snprintf(x->image, sizeof(x->image), "%s\n", text) : 0;
	if (x->image_len >= sizeof(x->image))
		x->image_len = 0;
	free(text);
	json_decref(j);
}

/* Check a load's image against its guest: NULL, or what is wrong in why. */
static const char *image_check(const struct sim_xfer *x, char *why, size_t len)
{
	const struct sim_guest *g = x->guest;
	json_error_t jerr;
	const char *format = NULL, *guest = NULL;
	json_int_t version = 0, memory = 0;
	if (x->image_len == 0) {
		snprintf(why, len, "image: empty");
		return why;
	}
	json_t *j = json_loadb(x->image, x->image_len, 0, &jerr);
	if (!j || json_unpack(j, "{s:s, s:I, s:s, s:I}", "format", &format, "version", &version,
			      "guest", &guest, "memory_bytes", &memory) < 0 ||
	    strcmp(format, IMAGE_FORMAT) != 0) {
		snprintf(why, len, "image: not a sim checkpoint image (%.60s)",
			 j ? "no " IMAGE_FORMAT " header" : jerr.text);
	} else if (version != IMAGE_VERSION) {
		snprintf(why, len, "image: version %lld, this sim reads %d", (long long)version,
			 IMAGE_VERSION);
	} else if (strcmp(guest, g->name) != 0) {
		snprintf(why, len, "image: of guest \"%.63s\", not of %s", guest, g->name);
	} else if (memory != (json_int_t)g->memory_bytes) {
		snprintf(why, len, "image: %lld bytes of memory, guest %s has %llu", (long long)memory,
			 g->name, (unsigned long long)g->memory_bytes);
	} else {
		why = NULL;
	}
	json_decref(j);
	return why;
}

/* A save's image out: 1 when whole, 0 to try again later, -errno. */
static int image_write(struct sim_xfer *x)
{
	while (x->image_done < x->image_len) {
		ssize_t n = write(x->fd, x->image + x->image_done, x->image_len - x->image_done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		x->image_done += (size_t)n;
	}
	return 1;
}

/* A load's image in, to EOF: 1 at EOF, 0 to try again later, -errno
 * (-EFBIG: more than a sim image ever is). */
static int image_read(struct sim_xfer *x)
{
	for (;;) {
		if (x->image_len == sizeof(x->image))
			return -EFBIG;
		ssize_t n = read(x->fd, x->image + x->image_len, sizeof(x->image) - x->image_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		if (n == 0)
			return 1;
		x->image_len += (size_t)n;
	}
}

/* The image part of a save or load whose model is done; ends it when the
 * image is whole (or broken). Never blocks. */
static void image_step(struct hv *hv, struct sim_xfer *x)
{
	char why[sizeof(x->final.error)], what[64];
	const char *error = NULL;
	int rc = x->kind == XFER_SAVE ? image_write(x) : image_read(x);
	if (rc == 0)
		return;
	if (rc == -EFBIG) {
		snprintf(why, sizeof(why), "image: more than %d bytes: not a sim checkpoint image",
			 IMAGE_MAX);
		error = why;
	} else if (rc < 0) {
		snprintf(why, sizeof(why), "image: %s: %s", x->kind == XFER_SAVE ? "write" : "read",
			 errno_text(-rc, what, sizeof(what)));
		error = why;
	} else if (x->kind == XFER_LOAD) {
		error = image_check(x, why, sizeof(why));
		if (!error && sim_db_record_place(hv, x->guest, x->host, true, why, sizeof(why)) < 0)
			error = why;
	}
	xfer_end(hv, x, error ? HV_MIG_FAILED : HV_MIG_COMPLETED, x->model_end_s, error);
}

void sim_ckpt_settle(struct hv *hv)
{
	bool changed = false;
	for (size_t i = 0; i < hv->n_xfers; i++) {
		struct sim_xfer *x = hv->xfers[i];
		if (x->phase == XFER_FIXED && x->fixed_left_s <= 1e-12) {
			x->phase = XFER_MEMORY;
			changed = true;
			if (x->kind == XFER_SAVE && x->background) {
				x->guest->paused = false; /* memory follows as of the pause */
				record_place(hv, x->guest);
			}
		}
		if (x->phase == XFER_MEMORY && memory_done(x)) {
			x->left_bytes = 0;
			x->phase = XFER_IMAGE;
			x->model_end_s = hv->sim_s;
			changed = true;
			if (x->kind == XFER_SAVE)
				image_build(hv, x);
			image_step(hv, x);
		}
	}
	if (changed)
		reshare_store(hv);
}

/* ---- polls, aborts, forgetting ---- */

int sim_ckpt_poll(struct hv *hv, uint64_t id, double now_s, struct hv_progress *out)
{
	struct sim_xfer *x = xfer_find(hv, id);
	if (!x)
		return -ENOENT;
	if (x->phase == XFER_IMAGE)
		image_step(hv, x);
	if (x->phase == XFER_DONE) {
		*out = x->final;
		return 0;
	}
	double since_s = fmax(now_s - hv->sim_s, 0);
	double left = x->left_bytes;
	if (x->phase == XFER_MEMORY)
		left = fmax(left - x->rate_bps * since_s, 0);
	double total_s = (x->phase == XFER_IMAGE ? x->model_end_s : now_s) - x->started_s;
	*out = (struct hv_progress){
		.state = HV_MIG_ACTIVE,
		.transferred_bytes = (uint64_t)llround((double)x->guest->memory_bytes - left),
		.remaining_bytes = (uint64_t)llround(left),
		.total_bytes = x->guest->memory_bytes,
		.rounds = 1,
		.total_time_ms = sim_ms_of(total_s), /* so far */
	};
	return 0;
}

int sim_ckpt_abort(struct hv *hv, uint64_t id, char *err, size_t errlen)
{
	struct sim_xfer *x = xfer_find(hv, id);
	if (!x) {
		snprintf(err, errlen, "migration %llu: not known to the sim", (unsigned long long)id);
		return -ENOENT;
	}
	const char *what = x->kind == XFER_SAVE ? "save" : "load";
	if (x->phase == XFER_DONE) {
		snprintf(err, errlen, "%s %llu of guest %s: already finished", what,
			 (unsigned long long)id, x->guest->name);
		return -EALREADY;
	}
	xfer_end(hv, x, HV_MIG_CANCELLED, x->phase == XFER_IMAGE ? x->model_end_s : hv->sim_s,
		 "aborted");
	reshare_store(hv);
	return 0;
}

void sim_ckpt_forget(struct hv *hv, uint64_t id)
{
	for (size_t i = 0; i < hv->n_xfers; i++) {
		struct sim_xfer *x = hv->xfers[i];
		if (x->id != id)
			continue;
		if (x->phase == XFER_DONE) { /* a running one is not forgotten */
			hv->xfers[i] = hv->xfers[--hv->n_xfers];
			free(x);
		}
		return;
	}
}

void sim_ckpt_close(struct hv *hv)
{
	for (size_t i = 0; i < hv->n_xfers; i++) {
		xfer_close_fd(hv->xfers[i]);
		free(hv->xfers[i]);
	}
	free(hv->xfers);
	hv->xfers = NULL;
	hv->n_xfers = hv->cap_xfers = 0;
}

/* ---- starting a save or a load ---- */

/* Our own non-blocking copy of img's fd, or -errno with the reason. */
static int image_fd(const struct hv_image *img, const char *guest, const char *what, char *err,
		    size_t errlen)
{
	if (!img || img->fd < 0) {
		snprintf(err, errlen,
			 "guest %s: the sim %s its image through a pipe (an fd), not a file%s%s",
			 guest, what, img && img->path ? ": " : "", img && img->path ? img->path : "");
		return -ENOTSUP;
	}
	int fd = fcntl(img->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "guest %s: image fd %d: %s", guest, img->fd, strerror(e));
		return -e;
	}
	int flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	return fd;
}

/* A new save or load of g on host, in its first phase; takes fd. */
static int xfer_new(struct hv *hv, enum xfer_kind kind, struct sim_guest *g,
		    struct sim_host *host, int fd, uint64_t *id, char *err, size_t errlen)
{
	struct sim_xfer *x = calloc(1, sizeof(*x));
	struct sim_xfer **xs = sim_grow_array(hv->xfers, &hv->cap_xfers, hv->n_xfers + 1,
					      sizeof(*xs));
	if (xs)
		hv->xfers = xs;
	if (!x || !xs) {
		free(x);
		close(fd);
		snprintf(err, errlen, "guest %s: out of memory", g->name);
		return -ENOMEM;
	}
	x->id = hv->next_mig_id++;
	x->kind = kind;
	x->phase = XFER_FIXED;
	x->guest = g;
	x->host = host;
	snprintf(x->host_name, sizeof(x->host_name), "%s", host->name);
	x->fd = fd;
	x->started_s = hv->sim_s;
	x->fixed_left_s = kind == XFER_SAVE ? HV_SIM_SAVE_DEVICE_S : HV_SIM_GUEST_START_S;
	x->left_bytes = (double)g->memory_bytes;
	hv->xfers[hv->n_xfers++] = x;
	g->xfer = x;
	reshare_store(hv);
	*id = x->id;
	return 0;
}

/* The guest named, on a host and in nothing else, or an errno in err. */
static int guest_idle(struct hv *hv, const char *guest, struct sim_guest **out, char *err,
		      size_t errlen)
{
	struct sim_guest *g = guest ? sim_guest_find(hv, guest) : NULL;
	*out = g;
	if (!g) {
		snprintf(err, errlen, "guest %s: not in the sim", guest ? guest : "(null)");
		return -ENOENT;
	}
	if (!g->host) {
		snprintf(err, errlen, "guest %s: destroyed, runs on no host", g->name);
		return -ENOENT;
	}
	if (g->mig) {
		snprintf(err, errlen, "guest %s: migrating to %s", g->name, g->mig->dst_name);
		return -EBUSY;
	}
	if (g->xfer) {
		snprintf(err, errlen, "guest %s: a save or load of it is running", g->name);
		return -EBUSY;
	}
	return 0;
}

static int save_start_locked(struct hv *hv, const char *guest, const struct hv_image *img,
			     const struct hv_save_params *params, uint64_t *id, char *err,
			     size_t errlen)
{
	struct sim_guest *g;
	sim_catch_up(hv, true); /* the save starts at this instant */
	int rc = guest_idle(hv, guest, &g, err, errlen);
	if (rc < 0)
		return rc;
	if (!g->paused) {
		snprintf(err, errlen, "guest %s: running on %s; a save takes a paused guest "
			 "(guest_pause first)", g->name, g->host->name);
		return -EINVAL;
	}
	int fd = image_fd(img, g->name, "writes", err, errlen);
	if (fd < 0)
		return fd;
	rc = xfer_new(hv, XFER_SAVE, g, g->host, fd, id, err, errlen);
	if (rc == 0) {
		g->xfer->background = params && params->background;
		log_debug("sim: save %llu: guest %s on %s (%s)", (unsigned long long)*id, g->name,
			  g->host->name, g->xfer->background ? "background" : "paused");
	}
	return rc;
}

int sim_save_start(struct hv *hv, const char *guest, const struct hv_image *img,
		   const struct hv_save_params *params, uint64_t *id, char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = save_start_locked(hv, guest, img, params, id, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

static int load_start_locked(struct hv *hv, const char *guest, const char *host_name,
			     const struct hv_image *img, uint64_t *id, char *err, size_t errlen)
{
	char have[32], want[32];
	sim_catch_up(hv, true); /* the load starts at this instant */
	struct sim_guest *g = guest ? sim_guest_find(hv, guest) : NULL;
	struct sim_host *host = host_name ? sim_host_find(hv, host_name) : NULL;
	if (!g) {
		snprintf(err, errlen, "guest %s: not known to the sim (guest_define it first)",
			 guest ? guest : "(null)");
		return -ENOENT;
	}
	if (g->host) {
		snprintf(err, errlen, "guest %s: already runs on %s", g->name, g->host->name);
		return -EEXIST;
	}
	if (!host) {
		snprintf(err, errlen, "guest %s: host %s: no such host in the sim", g->name,
			 host_name ? host_name : "(null)");
		return -ENOENT;
	}
	if (!sim_host_has_room(host, g->memory_bytes)) {
		snprintf(err, errlen, "guest %s: host %s has %s of memory, not enough free for %s",
			 g->name, host->name, format_size(host->spec.mem_bytes, have, sizeof(have)),
			 format_size(g->memory_bytes, want, sizeof(want)));
		return -ENOSPC;
	}
	int fd = image_fd(img, g->name, "reads", err, errlen);
	if (fd < 0)
		return fd;
	int rc = xfer_new(hv, XFER_LOAD, g, host, fd, id, err, errlen);
	if (rc < 0)
		return rc;
	/* it holds the host's memory from now on and waits there, paused */
	sim_host_link_guest(host, g);
	g->paused = true;
	log_debug("sim: load %llu: guest %s on %s", (unsigned long long)*id, g->name, host->name);
	return 0;
}

int sim_load_start(struct hv *hv, const char *guest, const char *host,
		   const struct hv_image *img, uint64_t *id, char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = load_start_locked(hv, guest, host, img, id, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

/* ---- pause, resume, destroy ---- */

/* Does g's save or load need it paused now? */
static bool held_paused(const struct sim_guest *g)
{
	const struct sim_xfer *x = g->xfer;
	return x && (x->kind == XFER_LOAD || !x->background || x->phase == XFER_FIXED);
}

static int set_paused_locked(struct hv *hv, const char *guest, bool paused, char *err,
			     size_t errlen)
{
	sim_catch_up(hv, true);
	struct sim_guest *g = guest ? sim_guest_find(hv, guest) : NULL;
	if (!g || !g->host) {
		snprintf(err, errlen, "guest %s: %s", guest ? guest : "(null)",
			 g ? "destroyed, runs on no host" : "not in the sim");
		return -ENOENT;
	}
	if (g->paused == paused)
		return 0;
	if (g->mig) {
		/* the migration's model has the guest's dirty rate fixed */
		snprintf(err, errlen, "guest %s: migrating to %s; %s it after the migration",
			 g->name, g->mig->dst_name, paused ? "pause" : "resume");
		return -EBUSY;
	}
	if (!paused && held_paused(g)) {
		snprintf(err, errlen, "guest %s: being %s; it stays paused until that ends", g->name,
			 g->xfer->kind == XFER_SAVE ? "saved" : "loaded");
		return -EBUSY;
	}
	int rc = sim_db_record_place(hv, g, g->host, paused, err, errlen);
	if (rc == 0)
		g->paused = paused;
	return rc;
}

int sim_guest_pause(struct hv *hv, const char *guest, char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = set_paused_locked(hv, guest, true, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

int sim_guest_resume(struct hv *hv, const char *guest, char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = set_paused_locked(hv, guest, false, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

int sim_guest_destroy(struct hv *hv, const char *guest, char *err, size_t errlen)
{
	struct sim_guest *g;
	pthread_mutex_lock(&hv->lock);
	sim_catch_up(hv, true);
	int rc = guest_idle(hv, guest, &g, err, errlen);
	if (rc == 0)
		rc = sim_db_record_place(hv, g, NULL, false, err, errlen);
	if (rc == 0) {
		log_debug("sim: guest %s destroyed on %s", g->name, g->host->name);
		sim_host_unlink_guest(g->host, g);
		g->host = NULL;
		g->paused = false;
	}
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

/* ---- a guest's spec as JSON ---- */

int sim_guest_config(struct hv *hv, const char *guest, char **out, char *err, size_t errlen)
{
	*out = NULL;
	pthread_mutex_lock(&hv->lock);
	struct sim_guest *g = guest ? sim_guest_find(hv, guest) : NULL;
	json_t *j = g ? json_pack("{s:s, s:I, s:I}", "name", g->name, "memory_bytes",
				  (json_int_t)g->memory_bytes, "dirty_rate_bps",
				  (json_int_t)g->dirty_rate_bps)
		      : NULL;
	pthread_mutex_unlock(&hv->lock);
	if (!g) {
		snprintf(err, errlen, "guest %s: not in the sim", guest ? guest : "(null)");
		return -ENOENT;
	}
	*out = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!*out) {
		snprintf(err, errlen, "guest %s: out of memory", guest);
		return -ENOMEM;
	}
	return 0;
}

/* guest_config's text into a spec; name points into *j. */
static int parse_config(const char *guest, const char *config, json_t **j,
			struct hv_guest_spec *spec, char *err, size_t errlen)
{
	json_error_t jerr;
	json_int_t memory = 0, dirty = 0;
	const char *name = NULL;
	*j = config ? json_loads(config, 0, &jerr) : NULL;
	if (!*j || json_unpack(*j, "{s:s, s:I, s:I}", "name", &name, "memory_bytes", &memory,
			       "dirty_rate_bps", &dirty) < 0) {
		snprintf(err, errlen, "guest %s: config: expected {\"name\", \"memory_bytes\", "
			 "\"dirty_rate_bps\"}%s%s", guest, *j ? "" : ": ", *j ? "" : jerr.text);
		return -EINVAL;
	}
	if (strcmp(name, guest) != 0 || memory <= 0 || dirty < 0) {
		snprintf(err, errlen, "guest %s: config: %s", guest,
			 strcmp(name, guest) != 0 ? "it is another guest's" :
			 memory <= 0 ? "memory_bytes must be above zero" :
				       "dirty_rate_bps must not be negative");
		return -EINVAL;
	}
	*spec = (struct hv_guest_spec){ .name = name, .memory_bytes = (uint64_t)memory,
					.dirty_rate_bps = (uint64_t)dirty };
	return 0;
}

static int guest_define_locked(struct hv *hv, const char *guest, const char *config, char *err,
			       size_t errlen)
{
	struct hv_guest_spec spec;
	json_t *j = NULL;
	if (!sim_valid_name(guest)) {
		snprintf(err, errlen, "guest \"%s\": expected a name of 1 to %d printable bytes",
			 guest ? guest : "", HV_SIM_NAME_MAX - 1);
		return -EINVAL;
	}
	int rc = parse_config(guest, config, &j, &spec, err, errlen);
	struct sim_guest *g = rc == 0 ? sim_guest_find(hv, guest) : NULL;
	if (g) {
		snprintf(err, errlen, "guest %s: already known to the sim%s%s", guest,
			 g->host ? ", on " : "", g->host ? g->host->name : "");
		rc = -EEXIST;
	}
	if (rc == 0 && (rc = sim_world_add_guest(hv, NULL, guest, spec.memory_bytes,
						 spec.dirty_rate_bps)) < 0)
		snprintf(err, errlen, "guest %s: out of memory", guest);
	else if (rc == 0 &&
		 (rc = sim_db_record_guest(hv, hv->all[hv->n_all - 1], NULL, err, errlen)) < 0)
		sim_world_drop_last_guest(hv);
	json_decref(j);
	return rc;
}

int sim_guest_define(struct hv *hv, const char *guest, const char *config, char *err,
		     size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = guest_define_locked(hv, guest, config, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}
