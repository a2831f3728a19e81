/*
 * sfsd_metrics: one sfsd server's Prometheus metrics (see sfs.conf(5),
 * [metrics]): requests, bytes and latency by operation, errors by errno,
 * open connections and space used. Each server is its own process with
 * its own endpoint, and every series carries server="NAME" and its role,
 * so one scrape job covers a whole file system.
 *
 * server.c calls sfsd_metrics_request() once per request from the
 * connection's thread; the HTTP server's thread asks the sample function
 * for what is read on demand.
 */
#ifndef MIGD_SFSD_METRICS_H
#define MIGD_SFSD_METRICS_H

#include <stdint.h>

#include "server.h"
#include "sfs_conf.h"

struct sfsd_metrics;

/* What the server reports when scraped. have_space 0: the role could not
 * say (the gauges are left out rather than shown as 0). */
struct sfsd_sample {
	unsigned connections;
	uint64_t cap_refusals; /* requests refused for their capability, since start */
	int have_space;
	uint64_t total_bytes, free_bytes, used_bytes, n_files;
};
typedef void (*sfsd_sample_fn)(void *arg, struct sfsd_sample *out);

/*
 * Serve srv's metrics when conf turns them on (*out stays NULL when not).
 * sample(arg) runs in the HTTP server's thread. 0, or a negative errno
 * with a message naming the address in err.
 */
int sfsd_metrics_start(const struct sfs_conf *conf, const struct sfs_server_conf *srv,
		       sfsd_sample_fn sample, void *arg, struct sfsd_metrics **out, char *err,
		       size_t errlen);
/* One request served: op from the header, its status (0 or -errno), the
 * bulk bytes it brought, how long it took. m NULL: nothing. */
void sfsd_metrics_request(struct sfsd_metrics *m, uint16_t op, int status, uint32_t data_in,
			  const struct server_req *r, uint64_t elapsed_ns);
void sfsd_metrics_free(struct sfsd_metrics *m);

#endif
