/*
 * precopy: the sim backend's model of one pre-copy live migration, round by
 * round, on a virtual clock.
 *
 * Round 0 sends all guest memory; every later round sends what the guest
 * dirtied during the round before (dirty rate times the round's length,
 * capped at its writable working set and at its memory). After each round the
 * model checks QEMU's completion test: the pages still dirty fit into
 * max_downtime at the bandwidth measured over that round. If so the guest
 * stops, the rest goes in a stop-and-copy phase and a fixed switch-over cost
 * follows; downtime is both together. If not, it goes round again, up to a
 * bound of rounds (then it fails, or stops anyway when force_stop asks for
 * Xen's behaviour) and of total time (then it fails). Auto-converge throttles
 * the guest's dirty rate each round that does not converge, 20% first and
 * 10% more each time (QEMU's cpu-throttle-initial and -increment). Post-copy
 * switches to the destination after round 0 when round 0 has not converged;
 * the pages dirtied during round 0 then follow while the guest runs there.
 *
 * Two ways in: an object per migration advanced by precopy_advance(m, dt_s,
 * rate_bps), so that the caller can share one link among several migrations
 * at every step (link_share), and precopy_estimate(), the same model solved
 * round by round in closed form for what-if planning. Both are deterministic
 * and read no clock. Pure computation: no I/O.
 *
 * Simplifications, on purpose: the completion test runs at round ends (as in
 * Xen and the classic model of Clark et al., NSDI 2005), where QEMU tests
 * about every 100 ms; QEMU throttles after two high-dirty syncs where this
 * throttles after every non-converging round; pages dirtied again before they
 * were sent in the same round are not deduplicated.
 *
 * Units: every rate here (_bps) is in BYTES per second, not bits: a
 * 1 Gbit/s link is 125e6 (PRECOPY_GBIT_BPS).
 */
#ifndef MIGD_PRECOPY_H
#define MIGD_PRECOPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PRECOPY_GBIT_BPS 125e6 /* 1 Gbit/s in bytes per second */

#define PRECOPY_DEFAULT_MAX_DOWNTIME_S 0.3 /* QEMU's downtime-limit, 300 ms */
#define PRECOPY_DEFAULT_MAX_ROUNDS 30u     /* QEMU has no bound; libxc's was ~30 */
#define PRECOPY_DEFAULT_THROTTLE_INITIAL_PCT 20u
#define PRECOPY_DEFAULT_THROTTLE_INCREMENT_PCT 10u
#define PRECOPY_DEFAULT_THROTTLE_MAX_PCT 99u

/*
 * What to migrate and how. Zero means the default for every field but
 * memory_bytes, which must be set.
 */
struct precopy_params {
	uint64_t memory_bytes;       /* guest memory, > 0 */
	double dirty_rate_bps;       /* bytes the guest dirties per second, unthrottled */
	uint64_t working_set_bytes;  /* writable working set: most bytes dirty at once; 0: all memory */
	double max_downtime_s;       /* completion test; 0: 0.3 s */
	double switchover_s;         /* fixed cost of the switch-over, part of downtime; 0: none */
	double bandwidth_cap_bps;    /* most this migration may use; 0: uncapped */
	unsigned max_rounds;         /* pre-copy rounds, round 0 included; 0: 30 */
	double max_total_s;          /* give up at this age while still in pre-copy; 0: never */
	bool force_stop;             /* at max_rounds stop-and-copy anyway (Xen) instead of failing */
	bool auto_converge;
	unsigned throttle_initial_pct;   /* 0: 20 */
	unsigned throttle_increment_pct; /* 0: 10 */
	unsigned throttle_max_pct;       /* 0: 99 */
	bool postcopy;               /* switch to the destination after round 0 */
};

enum precopy_phase {
	PRECOPY_ROUND,      /* pre-copy, guest running on the source */
	PRECOPY_STOP_COPY,  /* guest stopped, last dirty pages going */
	PRECOPY_SWITCHOVER, /* guest stopped, fixed switch-over cost */
	PRECOPY_POSTCOPY,   /* guest running on the destination, pages following */
	PRECOPY_DONE,
	PRECOPY_FAILED,     /* guest still running on the source */
};

enum precopy_failure {
	PRECOPY_OK,
	PRECOPY_FAIL_ROUNDS,  /* did not converge within max_rounds */
	PRECOPY_FAIL_TIME,    /* did not converge within max_total_s */
	PRECOPY_FAIL_ABORTED, /* precopy_abort() */
};

/* The figures of a finished migration (what QEMU's query-migrate reports). */
struct precopy_result {
	bool converged;          /* the guest runs on the destination */
	bool postcopy;           /* it got there through post-copy */
	enum precopy_failure failure;
	unsigned rounds;         /* pre-copy rounds begun, round 0 included */
	double total_s;
	double downtime_s;       /* 0 when it failed */
	double bytes_sent;
	unsigned throttle_pct;   /* auto-converge throttle at the end */
};

/* Progress of a running migration. */
struct precopy_status {
	enum precopy_phase phase;
	unsigned round;          /* current (or last) round, 0-based */
	double elapsed_s;
	double bytes_sent;
	double round_left_bytes; /* still to send in this round or phase */
	double dirty_bytes;      /* dirtied so far in this round */
	unsigned throttle_pct;
};

struct precopy;

/*
 * A migration at time 0, in round 0. *out must be freed with precopy_free().
 * Returns 0, -EINVAL (memory_bytes 0, a negative or non-finite figure, a
 * percentage above 100) or -ENOMEM.
 */
int precopy_new(const struct precopy_params *params, struct precopy **out);
void precopy_free(struct precopy *m);

/*
 * Let dt_s seconds pass during which the link gives this migration rate_bps
 * (the bandwidth cap applies on top). Several phase changes may happen in
 * one call. A finished migration ignores it. Returns 0 or -EINVAL (negative
 * or non-finite argument).
 */
int precopy_advance(struct precopy *m, double dt_s, double rate_bps);

/*
 * Seconds until the next phase change (round end, stop, switch-over end,
 * finish, time bound) if the link keeps giving rate_bps; INFINITY when none
 * would come (no rate, or finished). Advancing by exactly this much lets a
 * driver re-share the link at every change without small time steps.
 */
double precopy_next_event_s(const struct precopy *m, double rate_bps);

/* What this migration can use of a link now: its cap, INFINITY when uncapped,
 * 0 when it sends nothing (switch-over, finished). Input to link_share(). */
double precopy_link_demand_bps(const struct precopy *m);

bool precopy_finished(const struct precopy *m);
void precopy_status(const struct precopy *m, struct precopy_status *st);

/* Fail a migration that has not finished; the guest stays on the source.
 * Returns 0, or -EALREADY when it had finished. */
int precopy_abort(struct precopy *m);

/* The figures of a finished migration: 0, or -EAGAIN while it runs. */
int precopy_result(const struct precopy *m, struct precopy_result *res);

/*
 * The whole migration at a constant link rate, solved round by round without
 * stepping. Returns 0, or -EINVAL for bad params or a rate (after the cap)
 * that is not positive and finite.
 */
int precopy_estimate(const struct precopy_params *params, double rate_bps,
		     struct precopy_result *res);

/*
 * Divide link_bps among n flows, max-min fair: a flow never gets more than
 * its demand (0: none, INFINITY: unbounded), what one flow cannot use goes
 * to the others in equal shares. rate_bps[i] receives flow i's share.
 * Returns 0 or -EINVAL (link not finite and >= 0, a demand negative or NaN).
 */
int link_share(double link_bps, const double *demand_bps, size_t n, double *rate_bps);

const char *precopy_phase_name(enum precopy_phase phase);
const char *precopy_failure_name(enum precopy_failure failure);

#endif
