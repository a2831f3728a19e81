/*
 * hv: the hypervisor backend interface of migd.
 *
 * A backend is a driver for one URI scheme ("sim", later "qmp", "qemu+ssh"
 * through libvirt, "xen"/"libxl"). migd opens each driver once; hosts are
 * added to the driver that owns their URI's scheme, and a migration happens
 * between two hosts of the same driver. Variants sit side by side as
 * hv_<scheme>.c behind this header (Redis ae.c style); hv.c holds the
 * registry that maps a scheme to its ops.
 *
 * The executor never sleeps inside a backend: migrate_start returns at once
 * and the executor polls progress from its event loop, so one migd drives
 * many migrations and stays responsive to its API.
 *
 * Everything returns 0 or a negative errno; a message a person will read
 * goes into err (naming the host, guest or URI).
 */
#ifndef MIGD_HV_H
#define MIGD_HV_H

#include <stddef.h>
#include <stdint.h>

struct hv; /* an open driver */
struct hv_qmp_settings; /* hv_qmp.h */

/* What migd tells a driver when it opens it. Zeroed = defaults. */
struct hv_env {
	double time_scale;      /* sim: virtual seconds per real second (default 1) */
	uint64_t seed;          /* sim: randomness seed (deterministic for a seed) */
	const char *state_dir;  /* where a driver may keep its own state (sim: its world) */
	const struct hv_qmp_settings *qmp; /* qmp: migd.conf [qmp]; NULL: its defaults */
};

struct hv_guest_spec {
	const char *name;
	uint64_t memory_bytes;
	uint64_t dirty_rate_bps; /* sim: bytes of memory dirtied per second */
};

struct hv_guest_info {
	char name[64];
	char host[64];           /* where the backend says it runs */
	uint64_t memory_bytes;
	uint64_t dirty_rate_bps;
	int running;             /* 0: paused or stopped */
};

/* The policy's knobs; 0 = the backend's default. */
struct hv_migrate_params {
	uint32_t max_downtime_ms;
	uint64_t bandwidth_bps;  /* cap for this migration, bytes/s */
	int auto_converge;
	int postcopy;
	unsigned parallel_connections; /* multifd channels */
};

enum hv_mig_state {
	HV_MIG_ACTIVE = 1,
	HV_MIG_COMPLETED,        /* runs on the destination only */
	HV_MIG_FAILED,           /* runs on the source only */
	HV_MIG_CANCELLED,        /* aborted; runs on the source only */
};

struct hv_progress {
	enum hv_mig_state state;
	uint64_t transferred_bytes;
	uint64_t remaining_bytes;
	uint64_t total_bytes;    /* guest memory */
	unsigned rounds;
	/* final figures, the hypervisor's own, valid once not ACTIVE */
	uint64_t total_time_ms;
	uint64_t downtime_ms;
	char error[160];         /* why it failed */
};

struct hv_ops {
	const char *scheme;
	int (*open)(const struct hv_env *env, struct hv **out, char *err, size_t errlen);
	void (*close)(struct hv *hv); /* NULL is fine */
	/* A host of this driver: name and full URI (sim:///n1?link=1gbit). */
	int (*host_add)(struct hv *hv, const char *name, const char *uri, char *err,
			size_t errlen);
	int (*host_remove)(struct hv *hv, const char *name, char *err, size_t errlen);
	/* Create and start a guest on a host, on backends that can. */
	int (*guest_create)(struct hv *hv, const char *host, const struct hv_guest_spec *spec,
			    char *err, size_t errlen);
	/* The backend's truth: where a guest runs (-ENOENT if nowhere). */
	int (*guest_info)(struct hv *hv, const char *guest, struct hv_guest_info *out,
			  char *err, size_t errlen);
	/* Guests of a host: *out is the caller's to free(). */
	int (*list_guests)(struct hv *hv, const char *host, struct hv_guest_info **out,
			   size_t *n, char *err, size_t errlen);
	/* Start a live migration; *id names it in later calls. Returns at once. */
	int (*migrate_start)(struct hv *hv, const char *guest, const char *src, const char *dst,
			     const struct hv_migrate_params *params, uint64_t *id, char *err,
			     size_t errlen);
	int (*migrate_poll)(struct hv *hv, uint64_t id, struct hv_progress *out, char *err,
			    size_t errlen);
	/* Ask to abort; the guest stays on (or returns to) its source. */
	int (*migrate_abort)(struct hv *hv, uint64_t id, char *err, size_t errlen);
	/* Forget a finished migration. */
	void (*migrate_forget)(struct hv *hv, uint64_t id);
	/* The driver's clock in ns since the epoch (sim: virtual time). */
	int64_t (*now_ns)(struct hv *hv);
};

/* The driver for a URI's scheme ("sim:///n1" -> sim), or NULL. */
const struct hv_ops *hv_ops_for_uri(const char *uri);
/* Every driver built into this migd, NULL-terminated. */
extern const struct hv_ops *const hv_drivers[];

/* The drivers themselves, one per hv_<scheme>.c. */
extern const struct hv_ops hv_sim_ops;
extern const struct hv_ops hv_qmp_ops;

#endif
