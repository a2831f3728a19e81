/*
 * calibrate: the cost history fitted into the sim backend's pre-copy model
 * (precopy.h), so that the sim can replay a real cluster ("a sim twin") and
 * migd can predict what a migration will cost before it runs it.
 *
 * Pure functions over rows: the caller (api.c) reads the completed
 * migrations from the database into struct calib_row, calib_fit() makes
 * the model, calib_json() renders it as `migctl calibrate --json` prints
 * it, and calib_predict() runs hv_sim_estimate() on it. No I/O, no clock:
 * the tests feed rows made by hand or by the model itself.
 *
 * Units: rates in BYTES per second (_bps), as everywhere in migd; only the
 * sim URIs spell link rates in bits.
 */
#ifndef MIGD_CALIBRATE_H
#define MIGD_CALIBRATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "hv.h"

#define CALIB_NAME_MAX 64

/* One completed migration. Figures are -1 (or 0) when not known. */
struct calib_row {
	char guest[CALIB_NAME_MAX], src[CALIB_NAME_MAX], dst[CALIB_NAME_MAX];
	int64_t total_ms, downtime_ms, bytes;
	int64_t link_bps, dirty_rate_bps, ram_bytes, setup_ms;
	uint64_t memory_bytes;       /* the guest's configured memory; 0: unknown (gone) */
};

struct calib_link {               /* one direction between two hosts */
	char src[CALIB_NAME_MAX], dst[CALIB_NAME_MAX];
	double link_bps;             /* median */
	unsigned migrations;
};

struct calib_host {
	char name[CALIB_NAME_MAX];
	double link_bps;             /* the fastest of its links' medians */
};

struct calib_guest {
	char name[CALIB_NAME_MAX];
	char host[CALIB_NAME_MAX];   /* where its last migration left it */
	uint64_t memory_bytes;       /* 0: unknown */
	double ram_bytes, dirty_rate_bps, total_ms, downtime_ms; /* medians */
	unsigned migrations;
};

/* The fitted model. Arrays sorted by name (links by src, then dst). */
struct calib {
	unsigned migrations;         /* rows used */
	double link_bps;             /* median over all; 0 when no rows */
	double switchover_ms;        /* median downtime beyond the last round's copy */
	struct calib_link *links;
	size_t n_links;
	struct calib_host *hosts;
	size_t n_hosts;
	struct calib_guest *guests;
	size_t n_guests;
};

/* A row the fit can use: total time and bytes known and above zero. */
int calib_row_usable(const struct calib_row *r);
/* One row's figures, recorded or derived (calibrate.c says how). */
double calib_row_link_bps(const struct calib_row *r);
double calib_row_ram_bytes(const struct calib_row *r);
double calib_row_dirty_rate_bps(const struct calib_row *r);
/* What the model attributes to the stop-and-copy of this row, in ms: the
 * last round's dirty bytes at the row's link rate, with max_downtime_s the
 * completion test (0: QEMU's 300 ms). -1 when the model would not converge. */
double calib_row_stop_copy_ms(const struct calib_row *r, double max_downtime_s);

/* The median of v[0..n) (sorted in place; the mean of the middle two for
 * an even n); 0 for n == 0. */
double calib_median(double *v, size_t n);

/*
 * Fit rows[0..n) (oldest first, unusable ones skipped) into *out, which
 * the caller frees with calib_free(). max_downtime_s: the completion test
 * the migrations ran with (0: 300 ms). Returns 0 or -ENOMEM. No usable rows
 * is not an error: the model is empty (migrations 0).
 */
int calib_fit(const struct calib_row *rows, size_t n, double max_downtime_s,
	      struct calib **out);
void calib_free(struct calib *c);

/* The model as `migctl calibrate --json` prints it (migctl(1)); the
 * caller owns the result. */
json_t *calib_json(const struct calib *c);

/* A sim URI for host name at link_bps: sim:///NAME?link=BITSbit. */
void calib_sim_uri(const char *name, double link_bps, char *buf, size_t len);

/*
 * Predict a lone migration of guest from src to dst on the model: the
 * guest's round-0 RAM and dirty rate, the link rate of that direction (its
 * median when the history has it, else the slower of the two hosts' rates,
 * a host without history counting at the overall median), p's knobs (NULL:
 * defaults), through hv_sim_estimate(); the fixed sim switch-over is then
 * replaced by the calibrated one. Returns 0 with *out filled (COMPLETED or
 * FAILED), or -ENOENT with a message naming the guest in err when the
 * model has no migration of it.
 */
int calib_predict(const struct calib *c, const char *guest, const char *src, const char *dst,
		  const struct hv_migrate_params *p, struct hv_progress *out, char *err,
		  size_t errlen);

#endif
