/*
 * sfsd_metrics: see sfsd_metrics.h. Operation labels are the protocol's
 * own names (DF_READ, LOOKUP), errno labels the C names (ENOENT), so a
 * dashboard reads like an sfsd -d log line.
 */
#include "sfsd_metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "log.h"
#include "prom.h"

struct sfsd_metrics {
	struct prom_registry *reg;
	struct httpd *httpd;
	sfsd_sample_fn sample;
	void *sample_arg;
	struct prom_metric *requests, *errors, *duration, *received, *sent;
	struct prom_metric *connections, *max_connections;
	struct prom_metric *fs_size, *fs_free, *used, *files;
	struct prom_metric *cap_refusals;
	uint64_t cap_refusals_seen; /* what the counter holds (collect's thread only) */
};

/* The gauges read on demand, in the HTTP server's thread. */
static void collect(void *arg)
{
	struct sfsd_metrics *m = arg;
	struct sfsd_sample s = { 0 };
	m->sample(m->sample_arg, &s);
	if (s.cap_refusals > m->cap_refusals_seen) {
		prom_counter_add(m->cap_refusals, NULL,
				 (double)(s.cap_refusals - m->cap_refusals_seen));
		m->cap_refusals_seen = s.cap_refusals;
	}
	prom_lock(m->reg);
	prom_gauge_set_unlocked(m->connections, NULL, s.connections);
	prom_metric_clear_unlocked(m->fs_size);
	prom_metric_clear_unlocked(m->fs_free);
	prom_metric_clear_unlocked(m->used);
	prom_metric_clear_unlocked(m->files);
	if (s.have_space) {
		prom_gauge_set_unlocked(m->fs_size, NULL, (double)s.total_bytes);
		prom_gauge_set_unlocked(m->fs_free, NULL, (double)s.free_bytes);
		prom_gauge_set_unlocked(m->used, NULL, (double)s.used_bytes);
		prom_gauge_set_unlocked(m->files, NULL, (double)s.n_files);
	}
	prom_unlock(m->reg);
}

static int define(struct sfsd_metrics *m, const struct sfs_conf *conf)
{
	struct prom_registry *r = m->reg;
	const double *rb = prom_buckets_request_s;
	size_t rn = prom_buckets_request_n;
	m->requests = prom_metric_new(r, PROM_COUNTER, "sfsd_requests_total",
		"Requests served, by operation (PING and STATS not counted)", "op", NULL, 0);
	m->errors = prom_metric_new(r, PROM_COUNTER, "sfsd_request_errors_total",
		"Requests answered with an error, by operation and errno", "op,errno", NULL, 0);
	m->duration = prom_metric_new(r, PROM_HISTOGRAM, "sfsd_request_duration_seconds",
		"Time from a request's header to its reply sent, by operation", "op", rb, rn);
	m->received = prom_metric_new(r, PROM_COUNTER, "sfsd_data_received_bytes_total",
		"Bulk data bytes received with requests (writes), by operation", "op", NULL, 0);
	m->sent = prom_metric_new(r, PROM_COUNTER, "sfsd_data_sent_bytes_total",
		"Bulk data bytes sent in replies (reads), by operation", "op", NULL, 0);
	m->connections = prom_metric_new(r, PROM_GAUGE, "sfsd_connections",
		"Client connections open now", NULL, NULL, 0);
	m->max_connections = prom_metric_new(r, PROM_GAUGE, "sfsd_connections_max",
		"Connections this server accepts at once (max_connections)", NULL, NULL, 0);
	m->fs_size = prom_metric_new(r, PROM_GAUGE, "sfsd_filesystem_size_bytes",
		"Size of the local file system that holds the server's directory", NULL, NULL, 0);
	m->fs_free = prom_metric_new(r, PROM_GAUGE, "sfsd_filesystem_free_bytes",
		"Free bytes of that file system, for unprivileged users", NULL, NULL, 0);
	m->used = prom_metric_new(r, PROM_GAUGE, "sfsd_used_bytes",
		"Bytes the server's own files use (datafiles, or the metadata database), as "
		"sfs df reports", NULL, NULL, 0);
	m->files = prom_metric_new(r, PROM_GAUGE, "sfsd_files",
		"Files the server holds (datafiles, or files of the namespace)", NULL, NULL, 0);
	m->cap_refusals = prom_metric_new(r, PROM_COUNTER, "sfsd_capability_refusals_total",
		"Requests an I/O server refused for their capability (none, forged, expired, "
		"another file's, too few rights)", NULL, NULL, 0);
	if (!m->requests || !m->errors || !m->duration || !m->received || !m->sent ||
	    !m->connections || !m->max_connections || !m->fs_size || !m->fs_free || !m->used ||
	    !m->files || !m->cap_refusals)
		return -ENOMEM;
	prom_counter_add(m->cap_refusals, NULL, 0); /* shown from the start */
	prom_gauge_set(m->max_connections, NULL, conf->max_connections);
	return prom_on_collect(r, collect, m);
}

int sfsd_metrics_start(const struct sfs_conf *conf, const struct sfs_server_conf *srv,
		       sfsd_sample_fn sample, void *arg, struct sfsd_metrics **out, char *err,
		       size_t errlen)
{
	char listen[160], labels[160];
	*out = NULL;
	if (!*sfs_conf_metrics_listen(conf, srv, listen, sizeof(listen)))
		return 0;
	struct sfsd_metrics *m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->sample = sample;
	m->sample_arg = arg;
	snprintf(labels, sizeof(labels), "server=%s,role=%s", srv->name,
		 srv->role == SFS_ROLE_META ? "meta" : "io");
	int rc = -ENOMEM;
	if (!(m->reg = prom_registry_new(labels)) || define(m, conf) < 0) {
		snprintf(err, errlen, "metrics: out of memory");
		goto fail;
	}
	rc = httpd_start(listen, m->reg, &m->httpd, err, errlen);
	if (rc < 0)
		goto fail;
	log_info("metrics on http://%s/metrics", listen);
	*out = m;
	return 0;
fail:
	sfsd_metrics_free(m);
	return rc;
}

/* Bytes a DF_READ reply carried: what df_read sends from the datafile. */
static uint64_t read_reply_bytes(const struct server_req *r)
{
	uint64_t size = r->reply->local_size, offset = r->req->offset;
	if (offset >= size)
		return 0;
	return size - offset < r->req->length ? size - offset : r->req->length;
}

void sfsd_metrics_request(struct sfsd_metrics *m, uint16_t op, int status, uint32_t data_in,
			  const struct server_req *r, uint64_t elapsed_ns)
{
	if (!m)
		return;
	const char *op_label[] = { sfs_op_name(op) };
	prom_counter_add(m->requests, op_label, 1);
	prom_histogram_observe(m->duration, op_label, (double)elapsed_ns / 1e9);
	if (data_in)
		prom_counter_add(m->received, op_label, data_in);
	if (op == SFS_OP_DF_READ && status == 0 && !r->broken)
		prom_counter_add(m->sent, op_label, (double)read_reply_bytes(r));
	if (status < 0) {
		char unknown[16];
		const char *name = strerrorname_np(-status);
		if (!name) {
			snprintf(unknown, sizeof(unknown), "E%d", -status);
			name = unknown;
		}
		const char *labels[] = { op_label[0], name };
		prom_counter_add(m->errors, labels, 1);
	}
}

void sfsd_metrics_free(struct sfsd_metrics *m)
{
	if (!m)
		return;
	httpd_free(m->httpd); /* first: no scrape may run on a freed registry */
	prom_registry_free(m->reg);
	free(m);
}
