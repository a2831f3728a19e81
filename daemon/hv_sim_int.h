/*
 * hv_sim_int: the sim backend's world, shared by its two files and nobody
 * else: hv_sim.c (hosts, guests, live migrations, the clock, sim.db) and
 * hv_sim_ckpt.c (pause, resume, checkpoint saves and loads through the
 * store, destroy, a guest's spec as JSON). Both run under hv->lock; every
 * function here expects it held.
 */
#ifndef MIGD_HV_SIM_INT_H
#define MIGD_HV_SIM_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "htab.h"
#include "hv.h"
#include "hv_sim.h"

struct sim_mig;
struct sim_xfer;

struct sim_guest {
	struct hnode node; /* hv->guests, by name */
	char name[HV_SIM_NAME_MAX];
	uint64_t memory_bytes;
	uint64_t dirty_rate_bps;
	struct sim_host *host;         /* NULL: destroyed, still known (load brings it back) */
	struct sim_guest *prev, *next; /* the host's guests, in arrival order */
	struct sim_mig *mig;           /* the migration it is in, or NULL */
	struct sim_xfer *xfer;         /* the save or load it is in, or NULL */
	bool paused;                   /* vCPUs stopped: it dirties no memory */
};

struct sim_host {
	struct hnode node; /* hv->hosts, by name */
	char name[HV_SIM_NAME_MAX];
	char *uri;
	struct hv_sim_uri spec;
	struct sim_guest *first, *last;
	size_t n_guests;
	uint64_t mem_used_bytes;    /* by the guests it runs */
	uint64_t mem_inbound_bytes; /* held for guests migrating to it */
	/* the migrations on this link; a migration knows its slot here */
	struct sim_mig **flows;
	double *demand_bps, *share_bps;
	size_t n_flows, cap_flows;
	uint64_t share_epoch; /* share_bps is valid when equal to hv->share_epoch */
};

struct sim_mig {
	struct hnode node; /* hv->migs, by id */
	uint64_t id;
	struct sim_guest *guest;
	struct sim_host *src, *dst; /* NULL once finished: hosts may go */
	char src_name[HV_SIM_NAME_MAX], dst_name[HV_SIM_NAME_MAX];
	struct precopy *model;
	double cap_bps;        /* its bandwidth cap, 0: none */
	double rate_bps;       /* its share of the links until the next event */
	size_t active_index;   /* in hv->active while running */
	size_t src_slot, dst_slot;
	bool switched;         /* the guest runs on dst (recorded in sim.db) */
	bool record_failed;    /* the switch-over could not be recorded */
	bool finished;
	struct hv_progress final;
};

struct hv {
	pthread_mutex_t lock;
	double time_scale;
	uint64_t seed;
	int64_t epoch_ns;        /* virtual time at sim_s == 0 */
	uint64_t mono_open_ns;   /* the real (monotonic) clock at epoch_ns */
	bool manual_clock;
	int64_t manual_ns;
	double sim_s;            /* the committed state is at this virtual time */
	struct htab hosts, guests, migs;
	struct sim_guest **all;  /* every guest, creation order, for list_guests(NULL) */
	size_t n_all, cap_all;
	struct sim_mig **active; /* running migrations */
	size_t n_active, cap_active;
	uint64_t share_epoch;
	uint64_t next_mig_id;    /* migrations, saves and loads share the ids */
	double store_bps;        /* the checkpoint store, shared by saves and loads */
	struct sim_xfer **xfers; /* saves and loads, finished ones until forgotten */
	size_t n_xfers, cap_xfers;
	sqlite3 *db;             /* NULL: no state_dir, nothing persisted */
	bool batching;           /* a transaction is open over many writes (batch) */
	sqlite3_stmt *st_host_add, *st_host_rm, *st_guest_add, *st_guest_place, *st_clock;
};

/* ---- hv_sim.c ---- */
void *sim_grow_array(void *arr, size_t *cap, size_t need, size_t elem_size);
struct sim_host *sim_host_find(const struct hv *hv, const char *name);
struct sim_guest *sim_guest_find(const struct hv *hv, const char *name);
void sim_host_link_guest(struct sim_host *host, struct sim_guest *g);
void sim_host_unlink_guest(struct sim_host *host, struct sim_guest *g);
bool sim_valid_name(const char *name);
bool sim_host_has_room(const struct sim_host *host, uint64_t bytes);
uint64_t sim_ms_of(double s);
int64_t sim_virtual_now_ns(const struct hv *hv);
/* Run the world to now (commit: also the stretch since the last event);
 * returns now in simulation seconds. */
double sim_catch_up(struct hv *hv, bool commit);
/* A guest known to the sim on host (NULL: destroyed, known only). */
int sim_world_add_guest(struct hv *hv, struct sim_host *host, const char *name,
			uint64_t memory_bytes, uint64_t dirty_rate_bps);
/* Undo sim_world_add_guest of the last guest added. */
void sim_world_drop_last_guest(struct hv *hv);
int sim_db_record_guest(struct hv *hv, const struct sim_guest *g, const struct sim_host *host,
			char *err, size_t errlen);
/* Where g runs (host NULL: nowhere) and whether it is paused, in sim.db. */
int sim_db_record_place(struct hv *hv, const struct sim_guest *g, const struct sim_host *host,
			bool paused, char *err, size_t errlen);

/* ---- hv_sim_ckpt.c: hooks the event loop and the id space call ---- */
/* Seconds until the next save or load event at the current shares;
 * INFINITY when none moves with time. */
double sim_ckpt_next_event_s(const struct hv *hv);
void sim_ckpt_advance(struct hv *hv, double dt_s);
/* After time passed: phase changes, finished saves and loads, new shares. */
void sim_ckpt_settle(struct hv *hv);
/* -ENOENT (err untouched) when id is no save or load. */
int sim_ckpt_poll(struct hv *hv, uint64_t id, double now_s, struct hv_progress *out);
int sim_ckpt_abort(struct hv *hv, uint64_t id, char *err, size_t errlen);
void sim_ckpt_forget(struct hv *hv, uint64_t id);
void sim_ckpt_close(struct hv *hv);

/* The hv_ops entries, lock taken inside. */
int sim_guest_pause(struct hv *hv, const char *guest, char *err, size_t errlen);
int sim_guest_resume(struct hv *hv, const char *guest, char *err, size_t errlen);
int sim_save_start(struct hv *hv, const char *guest, const struct hv_image *img,
		   const struct hv_save_params *params, uint64_t *id, char *err, size_t errlen);
int sim_load_start(struct hv *hv, const char *guest, const char *host,
		   const struct hv_image *img, uint64_t *id, char *err, size_t errlen);
int sim_guest_destroy(struct hv *hv, const char *guest, char *err, size_t errlen);
int sim_guest_config(struct hv *hv, const char *guest, char **out, char *err, size_t errlen);
int sim_guest_define(struct hv *hv, const char *guest, const char *config, char *err,
		     size_t errlen);

#endif
