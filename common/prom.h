/*
 * prom: metrics in the Prometheus text exposition format (version 0.0.4),
 * shared by migd and sfsd.
 *
 * A registry holds metrics (counter, gauge, histogram), each with a fixed
 * list of label names; a series is made the first time a combination of
 * label values is used. Writers (migd's main loop, sfsd's connection
 * threads) and the reader (the HTTP server's thread, httpd.h) meet under
 * the registry's one mutex, so a scrape sees each metric as of one instant
 * and never a half-updated histogram. The critical sections are a hash
 * lookup and an add: cheap next to any request they count.
 *
 * Collect hooks run at the start of every render, in the reader's thread,
 * for values that are cheaper to read when asked (open connections, space
 * used) than to keep up to date.
 */
#ifndef MIGD_PROM_H
#define MIGD_PROM_H

#include <stddef.h>

enum prom_type { PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM };

#define PROM_MAX_LABELS 6
/* Series one metric may have; more are dropped (with one warning), so a
 * label fed from outside cannot grow the registry without bound. */
#define PROM_MAX_SERIES 4096

struct prom_registry;
struct prom_metric;

/* const_labels: "name=value,name=value" put on every series (values must
 * not hold a comma), or NULL. Returns NULL when out of memory. */
struct prom_registry *prom_registry_new(const char *const_labels);
void prom_registry_free(struct prom_registry *reg);

/*
 * A new metric in reg (which owns it). name and help are copied; labels is
 * a comma-separated list of label names ("result,policy,backend") or NULL.
 * Histograms take their upper bounds, ascending (+Inf is implied). Returns
 * NULL on a bad name, too many labels or no memory: our bug, logged.
 */
struct prom_metric *prom_metric_new(struct prom_registry *reg, enum prom_type type,
				    const char *name, const char *help, const char *labels,
				    const double *bounds, size_t n_bounds);

/* values: one per label name, in order (NULL is ""); ignored for none. */
void prom_counter_add(struct prom_metric *m, const char *const *values, double delta);
void prom_gauge_set(struct prom_metric *m, const char *const *values, double value);
void prom_histogram_observe(struct prom_metric *m, const char *const *values, double value);
/* Drop the one series of values, if there is one (a gauge of something
 * that ended). */
void prom_series_remove(struct prom_metric *m, const char *const *values);
/* Drop every series of m (a gauge recomputed from scratch). */
void prom_metric_clear(struct prom_metric *m);

/* Take and release the registry's lock around several updates that must
 * appear together (the _unlocked variants below are for that). */
void prom_lock(struct prom_registry *reg);
void prom_unlock(struct prom_registry *reg);
void prom_gauge_set_unlocked(struct prom_metric *m, const char *const *values, double value);
void prom_metric_clear_unlocked(struct prom_metric *m);

/* fn(arg) runs at the start of each render, without the lock held. */
int prom_on_collect(struct prom_registry *reg, void (*fn)(void *arg), void *arg);

/* The whole registry as exposition text into *out (caller frees), its
 * length in *len. 0 or -ENOMEM. */
int prom_render(struct prom_registry *reg, char **out, size_t *len);

/* Standard buckets: seconds from 1 ms to 10 min (migration phases), and
 * from 50 us to 10 s (file system requests). */
extern const double prom_buckets_phase_s[];
extern const size_t prom_buckets_phase_n;
extern const double prom_buckets_request_s[];
extern const size_t prom_buckets_request_n;

#endif
