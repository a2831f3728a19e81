/*
 * hv_libxl_int: what hv_libxl.c (hosts, guests, migrations) and
 * hv_libxl_ckpt.c (pause, resume, save, load, destroy, configs) share: the
 * driver's state and the calls one makes into the other. Not for other
 * modules; they see hv.h and hv_libxl.h.
 */
#ifndef MIGD_HV_LIBXL_INT_H
#define MIGD_HV_LIBXL_INT_H

#include <libxl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv.h"
#include "hv_libxl.h"

/* libxl's logger: messages to log.h, and the progress of the one migration
 * in flight (libxc reports pages done of total per iteration). */
struct progress_logger {
	xentoollog_logger vtable;
	pthread_mutex_t lock;
	unsigned long done, total;
	unsigned iterations;
	bool opening;  /* libxl_ctx_alloc's complaints are said once, in open's error */
};

struct lx_host {
	struct hv_libxl_uri u;
	char *uri;
};

struct lx_mig {
	uint64_t id;
	char guest[HV_LIBXL_NAME_MAX], src[HV_LIBXL_NAME_MAX], dst[HV_LIBXL_NAME_MAX];
	uint32_t domid;
	int fd;
	pthread_t worker;
	uint64_t started_ms;
	bool done, abort_requested;
	struct hv_progress result;
};

struct lx_job;   /* a save or load (hv_libxl_ckpt.c) */

/* A guest's libxl config (JSON), kept for guest_config and load_start. */
struct lx_known {
	char name[HV_LIBXL_NAME_MAX];
	char *json;
};

struct hv {
	pthread_mutex_t lock;
	libxl_ctx *ctx;                 /* NULL only in hv_libxl_new_without_xen's */
	struct progress_logger logger;
	struct lx_host *hosts;
	size_t n_hosts, cap_hosts;
	struct lx_host *local;          /* the host libxl drives, once added */
	struct lx_mig *mig;             /* at most one at a time, as xl */
	uint64_t next_id;               /* migrations, saves and loads share it */
	int listen_fd;                  /* the receiver, on the local host's addr:port */
	pthread_t receiver;
	bool receiver_started;
	struct lx_job **jobs;           /* saves and loads, any number at a time */
	size_t n_jobs, cap_jobs;
	struct lx_known *known;
	size_t n_known, cap_known;
};

/*
 * A driver without a libxl context, for unit tests on machines without Xen:
 * calls that need the hypervisor fail with -ENODEV and say so; those that
 * do not (guest_define, guest_config of a defined guest, unknown ids) work.
 * Freed with hv_libxl_ops.close. NULL: out of memory.
 */
struct hv *hv_libxl_new_without_xen(void);

/* ---- hv_libxl_ckpt.c, for hv_libxl.c ---- */
/* A save or load of guest is running (hv->lock held). */
bool lx_job_busy(struct hv *hv, const char *guest);
/* migrate_poll/abort/forget of an id that is not the migration's: a save's
 * or a load's, or -ENOENT naming id. Each takes hv->lock itself. */
int lx_job_poll(struct hv *hv, uint64_t id, struct hv_progress *out, char *err, size_t errlen);
int lx_job_abort(struct hv *hv, uint64_t id, char *err, size_t errlen);
void lx_job_forget(struct hv *hv, uint64_t id);
/* At close, before the context goes: abort what runs, wait, free all. */
void lx_jobs_close(struct hv *hv);

int lx_guest_pause(struct hv *hv, const char *guest, char *err, size_t errlen);
int lx_guest_resume(struct hv *hv, const char *guest, char *err, size_t errlen);
int lx_save_start(struct hv *hv, const char *guest, const struct hv_image *img,
		  const struct hv_save_params *params, uint64_t *id, char *err, size_t errlen);
int lx_load_start(struct hv *hv, const char *guest, const char *host,
		  const struct hv_image *img, uint64_t *id, char *err, size_t errlen);
int lx_guest_destroy(struct hv *hv, const char *guest, char *err, size_t errlen);
int lx_guest_config(struct hv *hv, const char *guest, char **out, char *err, size_t errlen);
int lx_guest_define(struct hv *hv, const char *guest, const char *config, char *err,
		    size_t errlen);

#endif
