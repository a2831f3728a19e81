/*
 * hv_sim: what the sim backend offers beyond struct hv_ops.
 *
 * The driver itself is hv_sim_ops (hv.h). This header adds what only a
 * simulation can do: parse a sim URI without opening anything (so migd can
 * learn a host's memory from it), estimate a migration between two hosts
 * without running it (what-if planning), and drive the virtual clock by
 * hand (tests, scenario replays).
 *
 * Units: link rates and dirty rates are BYTES per second (_bps), as
 * everywhere in migd; only the URI spells link rates in bits ("1gbit").
 */
#ifndef MIGD_HV_SIM_H
#define MIGD_HV_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "hv.h"

/* Link rate of a sim host whose URI names none: 1 Gbit/s, the seed's GigE. */
#define HV_SIM_DEFAULT_LINK_BPS 125e6
/* Fixed cost of a switch-over (device state, resuming on the destination),
 * part of every downtime. QEMU on a small guest spends a few ms to tens of
 * ms here; without it an idle guest would show no downtime at all. */
#define HV_SIM_SWITCHOVER_S 0.010
#define HV_SIM_NAME_MAX 64 /* host and guest names, NUL included */

/*
 * Checkpoints (hv_sim_ckpt.c). The store is one resource of store_bps
 * (hv_env.store_bps) that every running save and load shares in equal
 * parts. A save of M bytes takes HV_SIM_SAVE_DEVICE_S (device state, the
 * guest paused) plus M at its share; a load takes HV_SIM_GUEST_START_S
 * (a hypervisor process starting, before the first byte) plus M at its
 * share.
 */
#define HV_SIM_DEFAULT_STORE_BPS 1073741824.0 /* 1 GiB/s */
#define HV_SIM_SAVE_DEVICE_S 0.005  /* QEMU saves a small guest's devices in ms */
#define HV_SIM_GUEST_START_S 0.100  /* a QEMU process up, waiting for its state */

/* A sim URI, parsed: sim:///NAME[?link=RATE][&mem=SIZE] */
struct hv_sim_uri {
	char name[HV_SIM_NAME_MAX];
	double link_bps;     /* bytes/s; HV_SIM_DEFAULT_LINK_BPS when not given */
	uint64_t mem_bytes;  /* host memory; 0 when not given: the sim enforces no limit */
};

/*
 * Parse a sim URI. RATE is bit/s with an optional decimal suffix k, m, g, t
 * and an optional "bit" or "bit/s" ("100mbit", "1gbit", "2.5g"); SIZE is
 * parse_size()'s ("64g"). Returns 0, or -EINVAL with a message naming the
 * bad part in err.
 */
int hv_sim_parse_uri(const char *uri, struct hv_sim_uri *out, char *err, size_t errlen);

/*
 * What-if: a lone live migration of a guest of memory_bytes dirtying
 * dirty_rate_bps from the host at src_uri to the one at dst_uri, with p's
 * knobs (NULL: defaults), computed the way the driver would run it with no
 * other migration on either link. Fills *out as a finished migration
 * (COMPLETED or FAILED, figures, error). Returns 0, or -EINVAL with the
 * reason in out->error (bad URI, memory 0).
 */
int hv_sim_estimate(const char *src_uri, const char *dst_uri, uint64_t memory_bytes,
		    uint64_t dirty_rate_bps, const struct hv_migrate_params *p,
		    struct hv_progress *out);

/*
 * Stop the driver's clock following the real one: from now on virtual time
 * is now_ns and moves only through further calls. Time never goes back:
 * -EINVAL when now_ns is before the current virtual time. For tests and
 * replays; migd never calls it.
 */
int hv_sim_clock_set(struct hv *hv, int64_t now_ns);

#endif
