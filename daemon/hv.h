/*
 * hv: the hypervisor backend interface of migd.
 *
 * A backend is a driver for one or more URI schemes ("sim", "qmp", libvirt's
 * "qemu+ssh", "xen", ..., "libxl"). migd opens each driver once; hosts are
 * added to the driver that claims their URI's scheme, and a migration
 * happens between two hosts of the same driver. Variants sit side by side as
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
	uint64_t store_bps;     /* sim: checkpoint store bandwidth, bytes/s (0: 1 GiB/s);
				 * a save or load of M bytes of memory takes M / store_bps */
	const char *state_dir;  /* where a driver may keep its own state (sim: its world) */
	const struct hv_qmp_settings *qmp; /* qmp: migd.conf [qmp]; NULL: its defaults */
	struct hv_libvirt_env {  /* migd.conf [libvirt]; zeroed = defaults */
		const char *image_dir;      /* vmlinuz + initrd.img; NULL/"": BIOS-only guests */
		const char *domain_type;    /* "qemu", "kvm", or NULL/"auto": kvm if the host says so */
		const char *bridge;         /* host bridge for the guest NIC; NULL: "br0", "": none */
		const char *serial_dir;     /* on each host; NULL: /var/log/libvirt/qemu */
		const char *emulator;       /* NULL: /usr/bin/qemu-system-x86_64 */
		const char *guest_subnet;   /* "A.B": guests get A.B.1.X/16 on their command line */
		const char *agent_endpoint; /* migd.agent= for the guests; NULL/"": none */
		const char *sfs_conf;       /* sfs.conf for the guests (fw_cfg); NULL/"": none */
		unsigned tb_size_mib;       /* TCG translation cache; 0: 64 */
		unsigned keepalive_interval_s; /* 0: 5 */
		unsigned keepalive_count;      /* 0: 3; a dead host is noticed in interval*(count+1) */
		int migration_tls;             /* [migration] tls: VIR_MIGRATE_TLS */
	} libvirt;
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
	char addr[48];           /* the guest's own network address, "" when unknown */
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
	/* what the cost model is calibrated from (calibrate.h); 0: not known.
	 * Rates in bytes per second. */
	uint64_t link_bps;       /* measured throughput (QEMU ram.mbps, libvirt memory_bps) */
	uint64_t dirty_rate_bps; /* the guest's, as last measured while it ran (nonzero) */
	uint64_t ram_bytes;      /* RAM content sent in round 0 (normal pages, not zero ones) */
	uint64_t setup_ms;       /* before the first byte went (QEMU setup-time) */
	char error[160];         /* why it failed */
	/* a save (checkpoint) or load (restore): filled when not ACTIVE */
	char mode[16];           /* save: "background" (memory written after the guest
				  * resumed, as of the pause) or "paused" (written while
				  * paused); load: "" */
	uint64_t pause_ms;       /* save: how long the guest stayed paused by the save
				  * itself (background: device state only) */
};

/*
 * Where a checkpoint image goes or comes from. The qmp and sim backends
 * stream through fd (a pipe whose other end migd drains into the store
 * (sfs or a directory) while checksumming, or fills from it); backends that
 * write files themselves (libvirt's save) take path, a file on the guest's
 * host (migd.conf checkpoint.store); libxl takes either. Exactly one is set: fd >= 0 or
 * path != NULL. A backend that cannot use the one given says so (-ENOTSUP,
 * naming what it needs) and migd offers the other where it can.
 */
struct hv_image {
	int fd;                  /* -1: none. The backend dups what it keeps;
				  * migd closes its own copy after the call */
	const char *path;        /* NULL: none */
};

/* What a save is asked for. */
struct hv_save_params {
	int background;          /* 1: resume as soon as the device state is captured and
				  * write memory as of the pause afterwards (QEMU's
				  * background-snapshot); 0, or where unavailable: write
				  * while paused and leave the guest paused */
};

struct hv_ops {
	const char *scheme;      /* the driver's name; the URI scheme it claims by default */
	/* More schemes it claims, NULL-terminated (NULL: scheme only). An entry
	 * ending in '+' claims that scheme with any transport: "qemu+" claims
	 * "qemu+ssh" and "qemu+tcp" (libvirt's driver+transport spelling). */
	const char *const *schemes;
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
	/* Group the driver's own durable writes from batch(hv, 1) to
	 * batch(hv, 0), a bulk registration of thousands of hosts or guests:
	 * one commit for them all rather than one each. A crash in between
	 * loses them all, as it loses migd's own transaction around them.
	 * NULL: every write is its own. */
	void (*batch)(struct hv *hv, int begin);

	/* ---- checkpoint and restore; NULL on a backend that cannot ---- */
	/* Stop (pause) and continue a running guest's vCPUs; idempotent: pausing
	 * a paused guest or resuming a running one is 0. */
	int (*guest_pause)(struct hv *hv, const char *guest, char *err, size_t errlen);
	int (*guest_resume)(struct hv *hv, const char *guest, char *err, size_t errlen);
	/*
	 * Write a paused guest's device and memory state, as of now, to img.
	 * Returns at once; the save is then polled, aborted and forgotten with
	 * migrate_poll/migrate_abort/migrate_forget under *id (the same id space
	 * as migrations). COMPLETED: the image is whole and the guest is paused
	 * (mode "paused") or already running again (mode "background"); FAILED
	 * or CANCELLED: the guest is as it was before (paused), never gone. The
	 * guest keeps running on its host either way: a save is not a stop.
	 */
	int (*save_start)(struct hv *hv, const char *guest, const struct hv_image *img,
			  const struct hv_save_params *params, uint64_t *id, char *err,
			  size_t errlen);
	/*
	 * Start guest on host from img, paused. The guest must not run anywhere
	 * (-EEXIST naming where it runs) and must be known to the backend (made
	 * with guest_create, or guest_define from a manifest). Polled like a
	 * save: COMPLETED once the state is loaded and the guest waits, paused,
	 * for guest_resume; FAILED: nothing of it is left on host.
	 */
	int (*load_start)(struct hv *hv, const char *guest, const char *host,
			  const struct hv_image *img, uint64_t *id, char *err, size_t errlen);
	/* Kill a guest wherever it runs (-ENOENT when nowhere); it stays known
	 * to the backend, so load_start can bring it back. */
	int (*guest_destroy)(struct hv *hv, const char *guest, char *err, size_t errlen);
	/* The backend's description of a guest, enough to define it again on a
	 * backend that lost it (qmp: guest.json, libvirt: domain XML, sim: its
	 * spec as JSON). *out is the caller's to free(). */
	int (*guest_config)(struct hv *hv, const char *guest, char **out, char *err,
			    size_t errlen);
	/* Make a guest known again from guest_config's text (restore from a
	 * manifest after migd lost its state); -EEXIST when already known. */
	int (*guest_define)(struct hv *hv, const char *guest, const char *config, char *err,
			    size_t errlen);
};

/* The driver for a URI's scheme ("sim:///n1" -> sim), or NULL. An exact
 * claim wins over a "driver+" one. */
const struct hv_ops *hv_ops_for_uri(const char *uri);
/* 2: ops claims scheme (len bytes) exactly, 1: through a "driver+" entry, 0: not. */
int hv_ops_claims(const struct hv_ops *ops, const char *scheme, size_t len);
/* Every driver built into this migd, NULL-terminated. */
extern const struct hv_ops *const hv_drivers[];

/* The drivers themselves, one per hv_<scheme>.c. */
extern const struct hv_ops hv_sim_ops;
extern const struct hv_ops hv_qmp_ops;
#ifdef MIGD_HAVE_LIBVIRT
extern const struct hv_ops hv_libvirt_ops;
#endif
#ifdef MIGD_HAVE_LIBXL
extern const struct hv_ops hv_libxl_ops;
#endif

#endif
