/*
 * hv_libvirt_int: the libvirt driver's state, shared by its two files and
 * nobody else: hv_libvirt.c (hosts, guests, live migrations) and
 * hv_libvirt_ckpt.c (pause, resume, save, load, destroy, a domain's XML).
 * Saves and loads are jobs in the migrations' list (same id space, same
 * poll and forget), each run by a worker thread of its own.
 */
#ifndef MIGD_HV_LIBVIRT_INT_H
#define MIGD_HV_LIBVIRT_INT_H

#include <libvirt/libvirt.h>
#include <pthread.h>
#include <stdbool.h>

#include "hv_libvirt.h"

struct lv_host {
	char name[HV_LIBVIRT_NAME_MAX];
	char *uri;                  /* as migd has it */
	struct hv_libvirt_uri u;
	virConnectPtr conn;         /* NULL: not connected */
	char domain_type[8];        /* host_domain_type(); "": not asked yet */
	bool warned_tcg;            /* warn_tcg_writes() said its piece */
};

enum lv_job_kind {
	LV_JOB_MIGRATE = 0,
	LV_JOB_SAVE,                /* src: the guest's host; dst: "" */
	LV_JOB_LOAD,                /* src: ""; dst: the host it is loaded on */
};

struct lv_mig {
	uint64_t id;
	enum lv_job_kind kind;
	char guest[HV_LIBVIRT_NAME_MAX], src[HV_LIBVIRT_NAME_MAX], dst[HV_LIBVIRT_NAME_MAX];
	char dconnuri[HV_LIBVIRT_URI_MAX], migrate_uri[HV_LIBVIRT_URI_MAX];
	char *path;                 /* save, load: the image on the guest's host */
	struct hv_migrate_params params;
	unsigned long flags;
	virDomainPtr dom;           /* on the source (our reference); a save's guest */
	virConnectPtr dconn;        /* the destination (our reference); a load's host */
	pthread_t worker, monitor;
	bool monitor_started;
	uint64_t started_ms;
	/* under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;                  /* the worker has the final word in progress */
	bool stop_monitor;
	bool abort_requested;
	bool postcopy_started;
	bool orphaned;              /* the driver closed: the worker frees this */
	struct hv_progress progress;
};

/* A guest migd knows but that runs nowhere: a transient domain it
 * destroyed, or one defined from a manifest (guest_define). */
struct lv_known {
	char name[HV_LIBVIRT_NAME_MAX];
	char *xml;
};

struct hv {
	pthread_mutex_t lock;
	struct hv_libvirt_env env;  /* strings owned (strdup) */
	char *strings[9];
	struct lv_host **hosts;
	size_t n_hosts, cap_hosts;
	struct lv_mig **migs;
	size_t n_migs, cap_migs;
	struct lv_known *known;
	size_t n_known, cap_known;
	uint64_t next_id;
};

/* ---- hv_libvirt.c; the callers hold hv->lock ---- */
const char *lv_error(void);
struct lv_host *lv_host_find(struct hv *hv, const char *name);
virConnectPtr lv_host_conn(struct hv *hv, struct lv_host *h, char *err, size_t errlen);
int lv_guest_info_locked(struct hv *hv, const char *guest, struct hv_guest_info *out,
			 char *err, size_t errlen);
struct lv_mig *lv_guest_migrating(struct hv *hv, const char *guest);
bool lv_domain_active(virDomainPtr d, bool *running);
int lv_completed_stats(virDomainPtr d, struct hv_progress *out);
void *lv_monitor_main(void *arg);
void lv_mig_free(struct lv_mig *m);

/* ---- hv_libvirt_ckpt.c ---- */
/* Abort a load (migrate_abort of a LV_JOB_LOAD), hv->lock held. */
int lv_load_abort(struct hv *hv, struct lv_mig *m, char *err, size_t errlen);
void lv_known_free(struct hv *hv);

int lv_guest_pause(struct hv *hv, const char *guest, char *err, size_t errlen);
int lv_guest_resume(struct hv *hv, const char *guest, char *err, size_t errlen);
int lv_save_start(struct hv *hv, const char *guest, const struct hv_image *img,
		  const struct hv_save_params *params, uint64_t *id, char *err, size_t errlen);
int lv_load_start(struct hv *hv, const char *guest, const char *host,
		  const struct hv_image *img, uint64_t *id, char *err, size_t errlen);
int lv_guest_destroy(struct hv *hv, const char *guest, char *err, size_t errlen);
int lv_guest_config(struct hv *hv, const char *guest, char **out, char *err, size_t errlen);
int lv_guest_define(struct hv *hv, const char *guest, const char *config, char *err,
		    size_t errlen);

#endif
