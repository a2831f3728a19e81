/*
 * hv_libxl: the libxl backend, for Xen hosts without libvirt.
 *
 * libxl is a local library: it drives the hypervisor of the machine it runs
 * on and nothing else. So this driver manages the Xen host migd runs on (the
 * "local" host: libxl:///HOST?addr=A with HOST this machine's hostname, or
 * local=1), and migrates its guests to other Xen hosts whose migd runs the
 * same backend: each such migd listens on its local host's addr:port and
 * receives. The steps are those of `xl migrate` (tools/xl/xl_migrate.c),
 * over a TCP socket instead of xl's ssh pipe:
 *
 *   sender                                  receiver
 *   preamble + guest config (libxl JSON) ->
 *   libxl_domain_suspend(LIVE) stream    -> libxl_domain_create_restore
 *                                        <- READY (created, paused)
 *   rename the guest NAME--migratedaway
 *   GO                                   -> rename NAME--incoming to NAME,
 *                                           libxl_domain_unpause
 *                                        <- DONE rc
 *   rc 0: libxl_domain_destroy (source)     rc != 0: destroy our copy
 *   else rename back, libxl_domain_resume
 *
 * A failure before GO resumes the guest on its source (xl's failed_resume);
 * abort shuts the socket down, which fails the suspend the same way. libxl
 * reports no downtime and no byte counts of its own: progress comes from
 * its logger's progress callback (pages done of total), total time and
 * downtime are measured here (downtime: from the end of the suspend call,
 * when the guest is stopped, to DONE: a lower bound).
 *
 * No Xen hypervisor runs where this was written: open fails with a clear
 * error there, and only the URI parsing, the preamble and that error are
 * tested. Everything that touches a domain is untested (see README).
 */
#include "hv_libxl_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libxl.h>
#include <libxl_utils.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "hv.h"
#include "log.h"
#include "util.h"

/* ---- pure pieces ---------------------------------------------------------- */

size_t hv_libxl_preamble(uint32_t config_len, unsigned char *buf)
{
	size_t n = strlen(HV_LIBXL_MAGIC);
	uint32_t be = htonl(config_len);
	memcpy(buf, HV_LIBXL_MAGIC, n);
	memcpy(buf + n, &be, 4);
	return n + 4;
}

int hv_libxl_preamble_check(const unsigned char *buf, size_t len, uint32_t *config_len)
{
	size_t n = strlen(HV_LIBXL_MAGIC);
	uint32_t be;
	if (len < n + 4 || memcmp(buf, HV_LIBXL_MAGIC, n) != 0)
		return -EPROTO;
	memcpy(&be, buf + n, 4);
	*config_len = ntohl(be);
	return *config_len > 0 && *config_len <= HV_LIBXL_CONFIG_MAX ? 0 : -EPROTO;
}

static int uri_param(const char *uri, const char *key, const char *value,
		     struct hv_libxl_uri *out, char *err, size_t errlen)
{
	uint64_t v;
	struct in_addr a;
	if (strcmp(key, "addr") == 0) {
		if (inet_pton(AF_INET, value, &a) != 1) {
			snprintf(err, errlen, "libxl URI \"%s\": addr \"%s\": expected an IPv4 address",
				 uri, value);
			return -EINVAL;
		}
		snprintf(out->addr, sizeof(out->addr), "%s", value);
	} else if (strcmp(key, "port") == 0) {
		if (parse_u64(value, 1, 65535, &v) < 0) {
			snprintf(err, errlen, "libxl URI \"%s\": port \"%s\": expected 1 to 65535", uri,
				 value);
			return -EINVAL;
		}
		out->port = (unsigned)v;
	} else if (strcmp(key, "local") == 0) {
		if (parse_bool(value, &out->local) < 0) {
			snprintf(err, errlen, "libxl URI \"%s\": local \"%s\": expected 1 or 0", uri,
				 value);
			return -EINVAL;
		}
	} else {
		snprintf(err, errlen, "libxl URI \"%s\": unknown parameter \"%s\" (known: addr, port, "
			 "local)", uri, key);
		return -EINVAL;
	}
	return 0;
}

int hv_libxl_parse_uri(const char *uri, struct hv_libxl_uri *out, char *err, size_t errlen)
{
	static const char prefix[] = "libxl:///";
	char query[256];
	*out = (struct hv_libxl_uri){ .port = HV_LIBXL_DEFAULT_PORT, .local = -1 };
	if (!uri || strncmp(uri, prefix, sizeof(prefix) - 1) != 0) {
		snprintf(err, errlen, "libxl URI \"%s\": expected libxl:///HOST?addr=A[&port=P]",
			 uri ? uri : "");
		return -EINVAL;
	}
	const char *name = uri + sizeof(prefix) - 1;
	size_t len = strcspn(name, "?");
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '-' && name[i] != '_' &&
		    name[i] != '.')
			len = 0;
	if (len == 0 || len >= sizeof(out->name)) {
		snprintf(err, errlen, "libxl URI \"%s\": host name: expected 1 to %zu letters, digits, "
			 "'-', '_' or '.'", uri, sizeof(out->name) - 1);
		return -EINVAL;
	}
	memcpy(out->name, name, len);
	if (name[len] == '?' && snprintf_checked(query, sizeof(query), "%s", name + len + 1) >= 0) {
		char *save = NULL;
		for (char *item = strtok_r(query, "&", &save); item; item = strtok_r(NULL, "&", &save)) {
			char *eq = strchr(item, '=');
			if (!eq || eq == item || !eq[1]) {
				snprintf(err, errlen, "libxl URI \"%s\": \"%s\": expected key=value", uri,
					 item);
				return -EINVAL;
			}
			*eq = '\0';
			int rc = uri_param(uri, item, eq + 1, out, err, errlen);
			if (rc < 0)
				return rc;
		}
	} else if (name[len] == '?') {
		snprintf(err, errlen, "libxl URI \"%s\": query too long", uri);
		return -EINVAL;
	}
	if (!*out->addr) {
		snprintf(err, errlen, "libxl URI \"%s\": no addr= (the host's migration address)", uri);
		return -EINVAL;
	}
	return 0;
}

/* ---- the driver ------------------------------------------------------------ */

static void logger_vmessage(xentoollog_logger *l, xentoollog_level level, int errnoval,
			    const char *context, const char *format, va_list al)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), format, al);
	struct progress_logger *p = (struct progress_logger *)l;
	if (level >= XTL_ERROR && !p->opening)
		log_warnx("libxl: %s%s%s%s%s", context ? context : "", context ? ": " : "", msg,
			  errnoval >= 0 ? ": " : "", errnoval >= 0 ? strerror(errnoval) : "");
	else if (level >= XTL_INFO)
		log_debug("libxl: %s%s%s", context ? context : "", context ? ": " : "", msg);
	else if (level >= XTL_ERROR)
		log_debug("libxl: %s%s%s", context ? context : "", context ? ": " : "", msg);
}

static void logger_progress(xentoollog_logger *l, const char *context, const char *doing_what,
			    int percent, unsigned long done, unsigned long total)
{
	struct progress_logger *p = (struct progress_logger *)l;
	pthread_mutex_lock(&p->lock);
	if (done == 0)
		p->iterations++; /* called with done == 0 for each new stage */
	p->done = done;
	p->total = total;
	pthread_mutex_unlock(&p->lock);
	(void)context;
	(void)doing_what;
	(void)percent;
}

static void logger_destroy(xentoollog_logger *l)
{
	(void)l; /* part of struct hv */
}

static void lx_close(struct hv *hv);

struct hv *hv_libxl_new_without_xen(void)
{
	struct hv *hv = calloc(1, sizeof(*hv));
	if (!hv)
		return NULL;
	pthread_mutex_init(&hv->lock, NULL);
	pthread_mutex_init(&hv->logger.lock, NULL);
	hv->logger.vtable = (xentoollog_logger){ logger_vmessage, logger_progress, logger_destroy };
	hv->listen_fd = -1;
	hv->next_id = 1;
	return hv;
}

static int lx_open(const struct hv_env *env, struct hv **out, char *err, size_t errlen)
{
	(void)env;
	struct hv *hv = hv_libxl_new_without_xen();
	if (!hv)
		return -ENOMEM;
	/* libxl_ctx_alloc opens the hypervisor interface; say plainly when the
	 * reason is that there is no Xen at all */
	bool privcmd = access("/dev/xen/privcmd", R_OK | W_OK) == 0;
	int saved_errno = errno;
	hv->logger.opening = true;
	int rc = libxl_ctx_alloc(&hv->ctx, LIBXL_VERSION, 0, &hv->logger.vtable);
	hv->logger.opening = false;
	if (rc != 0 || !hv->ctx) {
		if (!privcmd)
			snprintf(err, errlen, "no Xen hypervisor: libxl_ctx_alloc failed (libxl error %d); "
				 "/dev/xen/privcmd: %s", rc, strerror(saved_errno));
		else
			snprintf(err, errlen, "libxl_ctx_alloc failed (libxl error %d): is xenstored "
				 "running and are we root in dom0?", rc);
		hv->ctx = NULL;
		lx_close(hv);
		return -ENODEV;
	}
	/* migd runs children of its own (migd-stream, health checks) and reaps
	 * them by pid, while libxl's saves and restores fork a save helper:
	 * libxl's default SIGCHLD mode would reap all children (libxl_event.h) */
	static const libxl_childproc_hooks selective_reap = {
		.chldowner = libxl_sigchld_owner_libxl_always_selective_reap,
	};
	libxl_childproc_setmode(hv->ctx, &selective_reap, NULL);
	*out = hv;
	return 0;
}

static void lx_close(struct hv *hv)
{
	if (!hv)
		return;
	if (hv->receiver_started) {
		shutdown(hv->listen_fd, SHUT_RDWR);
		pthread_join(hv->receiver, NULL);
	}
	if (hv->listen_fd >= 0)
		close(hv->listen_fd);
	if (hv->mig) {
		if (!hv->mig->done) /* a migration in flight is not left half done */
			shutdown(hv->mig->fd, SHUT_RDWR);
		pthread_join(hv->mig->worker, NULL);
		free(hv->mig);
	}
	lx_jobs_close(hv);
	if (hv->ctx)
		libxl_ctx_free(hv->ctx);
	for (size_t i = 0; i < hv->n_hosts; i++)
		free(hv->hosts[i].uri);
	free(hv->hosts);
	pthread_mutex_destroy(&hv->logger.lock);
	pthread_mutex_destroy(&hv->lock);
	free(hv);
}

static struct lx_host *host_find(struct hv *hv, const char *name)
{
	for (size_t i = 0; name && i < hv->n_hosts; i++)
		if (strcmp(hv->hosts[i].u.name, name) == 0)
			return &hv->hosts[i];
	return NULL;
}

/* ---- receiving ---------------------------------------------------------- */

static int read_full(int fd, void *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n == 0)
			return -EPIPE;
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			got += (size_t)n;
	}
	return 0;
}

static int read_line(int fd, char *buf, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		int rc = read_full(fd, &buf[i], 1);
		if (rc < 0)
			return rc;
		if (buf[i] == '\n') {
			buf[i] = '\0';
			return 0;
		}
	}
	return -EPROTO;
}

/* One incoming migration on fd (xl's migrate_receive). */
static void receive_one(struct hv *hv, int fd)
{
	unsigned char head[64];
	char *config = NULL, incoming[HV_LIBXL_NAME_MAX + 16], line[32];
	uint32_t config_len = 0, domid = (uint32_t)INVALID_DOMID;
	libxl_domain_config cfg;
	libxl_domain_restore_params params;
	size_t head_len = hv_libxl_preamble(0, head);
	int rc = read_full(fd, head, head_len);
	libxl_domain_config_init(&cfg);
	libxl_domain_restore_params_init(&params);
	if (rc == 0)
		rc = hv_libxl_preamble_check(head, head_len, &config_len);
	if (rc == 0 && !(config = calloc(1, config_len + 1)))
		rc = -ENOMEM;
	if (rc == 0)
		rc = read_full(fd, config, config_len);
	if (rc == 0 && libxl_domain_config_from_json(hv->ctx, &cfg, config) != 0)
		rc = -EPROTO;
	if (rc < 0) {
		log_warnx("libxl receiver: bad preamble: %s", strerror(-rc));
		goto out;
	}
	/* created under a name of its own until the sender lets go of it */
	char *name = cfg.c_info.name ? strdup(cfg.c_info.name) : NULL;
	snprintf(incoming, sizeof(incoming), "%s--incoming", name ? name : "guest");
	free(cfg.c_info.name);
	cfg.c_info.name = strdup(incoming);
	params.stream_version = 2;
	rc = libxl_domain_create_restore(hv->ctx, &cfg, &domid, fd, -1, &params, NULL, NULL);
	if (rc == 0 && write_full(fd, "READY\n", 6) == 0 && read_line(fd, line, sizeof(line)) == 0 &&
	    strcmp(line, "GO") == 0) {
		rc = libxl_domain_rename(hv->ctx, domid, incoming, name);
		if (rc == 0)
			rc = libxl_domain_unpause(hv->ctx, domid, NULL);
	} else if (rc == 0) {
		rc = ERROR_FAIL; /* the sender went away before GO: it keeps the guest */
	}
	snprintf(line, sizeof(line), "DONE %d\n", rc);
	write_full(fd, line, strlen(line));
	if (rc != 0 && domid != (uint32_t)INVALID_DOMID)
		libxl_domain_destroy(hv->ctx, domid, NULL);
	log_info("libxl receiver: guest %s %s (libxl rc %d)", name ? name : "?",
		 rc == 0 ? "arrived and runs" : "not received", rc);
	free(name);
out:
	free(config);
	libxl_domain_restore_params_dispose(&params);
	libxl_domain_config_dispose(&cfg);
}

static void *receiver_main(void *arg)
{
	struct hv *hv = arg;
	for (;;) {
		int fd = accept4(hv->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (fd < 0)
			break; /* shut down at close */
		receive_one(hv, fd);
		close(fd);
	}
	return NULL;
}

static int start_receiver(struct hv *hv, const struct lx_host *h, char *err, size_t errlen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)h->u.port) };
	int one = 1;
	inet_pton(AF_INET, h->u.addr, &sa.sin_addr);
	hv->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (hv->listen_fd < 0 ||
	    setsockopt(hv->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(hv->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(hv->listen_fd, 4) < 0) {
		snprintf(err, errlen, "host %s: cannot listen on %s:%u for migrations: %s", h->u.name,
			 h->u.addr, h->u.port, strerror(errno));
		return -errno;
	}
	if (pthread_create(&hv->receiver, NULL, receiver_main, hv) != 0) {
		snprintf(err, errlen, "host %s: cannot start the receiver thread", h->u.name);
		return -EAGAIN;
	}
	hv->receiver_started = true;
	return 0;
}

/* ---- hosts and guests ------------------------------------------------------ */

static bool is_local(const struct hv_libxl_uri *u)
{
	struct utsname un;
	if (u->local >= 0)
		return u->local == 1;
	return uname(&un) == 0 && strcmp(un.nodename, u->name) == 0;
}

static int lx_host_add(struct hv *hv, const char *name, const char *uri, char *err,
		       size_t errlen)
{
	struct hv_libxl_uri u;
	int rc = hv_libxl_parse_uri(uri, &u, err, errlen);
	if (rc < 0)
		return rc;
	if (strcmp(u.name, name) != 0) {
		snprintf(err, errlen, "host %s: its URI \"%s\" names host %s", name, uri, u.name);
		return -EINVAL;
	}
	pthread_mutex_lock(&hv->lock);
	struct lx_host *h = host_find(hv, name);
	if (h) {
		rc = strcmp(h->uri, uri) == 0 ? 0 : -EEXIST;
		if (rc)
			snprintf(err, errlen, "host %s: already in the libxl backend as %s", name, h->uri);
	} else if (is_local(&u) && hv->local) {
		snprintf(err, errlen, "host %s: host %s is already the local Xen host", name,
			 hv->local->u.name);
		rc = -EEXIST;
	} else if (GROW(hv->hosts, hv->cap_hosts, hv->n_hosts + 1) < 0 ||
		   !(hv->hosts[hv->n_hosts].uri = strdup(uri))) {
		snprintf(err, errlen, "host %s: out of memory", name);
		rc = -ENOMEM;
	} else {
		h = &hv->hosts[hv->n_hosts++];
		h->u = u;
		if (is_local(&u) && (rc = start_receiver(hv, h, err, errlen)) == 0)
			hv->local = h;
		if (rc < 0)
			free(hv->hosts[--hv->n_hosts].uri);
	}
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

static int lx_host_remove(struct hv *hv, const char *name, char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	struct lx_host *h = host_find(hv, name);
	int rc = h ? 0 : -ENOENT;
	if (!h)
		snprintf(err, errlen, "host %s: not in the libxl backend", name);
	else if (h == hv->local) {
		snprintf(err, errlen, "host %s: the local Xen host stays while migd runs", name);
		rc = -EBUSY;
	} else {
		free(h->uri);
		*h = hv->hosts[--hv->n_hosts];
		if (hv->local == &hv->hosts[hv->n_hosts])
			hv->local = h; /* it moved into the freed slot */
	}
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

static int lx_guest_create(struct hv *hv, const char *host, const struct hv_guest_spec *spec,
			   char *err, size_t errlen)
{
	uint32_t domid;
	pthread_mutex_lock(&hv->lock);
	bool here = hv->local && strcmp(hv->local->u.name, host) == 0 && spec->name &&
		    libxl_name_to_domid(hv->ctx, spec->name, &domid) == 0;
	pthread_mutex_unlock(&hv->lock);
	if (here)
		return 0; /* started with xl create: migd takes it over */
	snprintf(err, errlen, "guest %s: the libxl backend does not create guests; start it with "
		 "`xl create` on %s, then add it", spec->name ? spec->name : "", host);
	return -EOPNOTSUPP;
}

static void info_of(const libxl_dominfo *d, const char *name, const char *host,
		    struct hv_guest_info *out)
{
	*out = (struct hv_guest_info){ .memory_bytes = d->max_memkb * 1024,
				       .running = !d->paused && !d->shutdown && !d->dying };
	snprintf(out->name, sizeof(out->name), "%s", name);
	snprintf(out->host, sizeof(out->host), "%s", host);
}

/* The local host's guests (dom0 and domains in a migration's names left out). */
static int lx_list_guests(struct hv *hv, const char *host, struct hv_guest_info **out,
			  size_t *n, char *err, size_t errlen)
{
	int count = 0, rc = 0;
	size_t cap = 0;
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&hv->lock);
	if (!hv->local || (host && strcmp(host, hv->local->u.name) != 0)) {
		snprintf(err, errlen, "host %s: libxl sees only the Xen host migd runs on (%s)",
			 host ? host : "(all)", hv->local ? hv->local->u.name : "none added");
		pthread_mutex_unlock(&hv->lock);
		return host && host_find(hv, host) ? -EHOSTUNREACH : -ENOENT;
	}
	libxl_dominfo *doms = libxl_list_domain(hv->ctx, &count);
	if (!doms && count != 0) {
		snprintf(err, errlen, "host %s: libxl_list_domain failed", hv->local->u.name);
		rc = -EIO;
	}
	for (int i = 0; rc == 0 && i < count; i++) {
		char *name = libxl_domid_to_name(hv->ctx, doms[i].domid);
		if (doms[i].domid != 0 && name && !strstr(name, "--")) {
			if (GROW(*out, cap, *n + 1) == 0)
				info_of(&doms[i], name, hv->local->u.name, &(*out)[(*n)++]);
		}
		free(name);
	}
	if (doms)
		libxl_dominfo_list_free(doms, count);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

static int lx_guest_info(struct hv *hv, const char *guest, struct hv_guest_info *out,
			 char *err, size_t errlen)
{
	uint32_t domid;
	libxl_dominfo d;
	int rc = -ENOENT;
	libxl_dominfo_init(&d);
	pthread_mutex_lock(&hv->lock);
	if (hv->local && guest && libxl_name_to_domid(hv->ctx, guest, &domid) == 0 &&
	    libxl_domain_info(hv->ctx, &d, domid) == 0) {
		info_of(&d, guest, hv->local->u.name, out);
		rc = 0;
	} else if (hv->n_hosts > (hv->local ? 1u : 0u)) {
		snprintf(err, errlen, "guest %s: not on the local Xen host; libxl cannot see the others",
			 guest ? guest : "(null)");
		rc = -EHOSTUNREACH;
	} else {
		snprintf(err, errlen, "guest %s: not on the local Xen host", guest ? guest : "(null)");
	}
	pthread_mutex_unlock(&hv->lock);
	libxl_dominfo_dispose(&d);
	return rc;
}

/* ---- sending ---------------------------------------------------------------- */

static int connect_to(const struct hv_libxl_uri *u, int *out)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)u->port) };
	inet_pton(AF_INET, u->addr, &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

/* Preamble and config of domid onto fd. */
static int send_config(libxl_ctx *ctx, uint32_t domid, int fd, char *why, size_t len)
{
	libxl_domain_config cfg;
	unsigned char head[64];
	libxl_domain_config_init(&cfg);
	int rc = libxl_retrieve_domain_configuration(ctx, domid, &cfg, NULL);
	char *json = rc == 0 ? libxl_domain_config_to_json(ctx, &cfg) : NULL;
	libxl_domain_config_dispose(&cfg);
	if (!json) {
		snprintf(why, len, "cannot read the guest's configuration (libxl error %d)", rc);
		return -EIO;
	}
	size_t json_len = strlen(json);
	size_t head_len = hv_libxl_preamble((uint32_t)json_len, head);
	rc = json_len <= HV_LIBXL_CONFIG_MAX && write_full(fd, head, head_len) == 0 &&
	     write_full(fd, json, json_len) == 0 ? 0 : -EIO;
	if (rc < 0)
		snprintf(why, len, "cannot send the configuration: %s", strerror(errno));
	free(json);
	return rc;
}

/* The steps after the stream (xl's migrate_domain): 0 once the guest runs
 * on the destination; < 0 with the guest resumed here (*past_go false) or,
 * past GO, in an unknown state (*past_go true). */
static int handshake(struct hv *hv, struct lx_mig *m, char *why, size_t len, bool *past_go)
{
	char line[32], away[HV_LIBXL_NAME_MAX + 16];
	int report = -1;
	*past_go = false;
	if (read_line(m->fd, line, sizeof(line)) < 0 || strcmp(line, "READY") != 0) {
		snprintf(why, len, "the receiver on %s did not say READY", m->dst);
		return -EPROTO;
	}
	snprintf(away, sizeof(away), "%s--migratedaway", m->guest);
	if (libxl_domain_rename(hv->ctx, m->domid, m->guest, away) != 0) {
		snprintf(why, len, "cannot rename the guest away before GO");
		return -EIO;
	}
	*past_go = true;
	if (write_full(m->fd, "GO\n", 3) < 0 || read_line(m->fd, line, sizeof(line)) < 0 ||
	    sscanf(line, "DONE %d", &report) != 1) {
		snprintf(why, len, "no report from %.60s after GO: check both hosts for the guest "
			 "(here as NAME--migratedaway)", m->dst);
		return -EPROTO;
	}
	if (report != 0) {
		/* the receiver destroyed its copy: ours may resume */
		*past_go = false;
		libxl_domain_rename(hv->ctx, m->domid, away, m->guest);
		snprintf(why, len, "the receiver on %s could not start the guest (libxl error %d)",
			 m->dst, report);
		return -EIO;
	}
	return 0;
}

static void *send_main(void *arg)
{
	struct hv *hv = arg;
	struct lx_mig *m = hv->mig;
	struct hv_progress fin = { 0 };
	char why[sizeof(fin.error)] = "";
	bool past_go = false;
	uint64_t stopped_ms = 0;
	int rc = send_config(hv->ctx, m->domid, m->fd, why, sizeof(why));
	if (rc == 0) {
		int lrc = libxl_domain_suspend(hv->ctx, m->domid, m->fd, LIBXL_SUSPEND_LIVE, NULL);
		stopped_ms = now_ms(); /* the guest is stopped from here to DONE */
		if (lrc != 0) {
			snprintf(why, sizeof(why), "libxl_domain_suspend failed (libxl error %d)", lrc);
			rc = -EIO;
		}
	}
	if (rc == 0)
		rc = handshake(hv, m, why, sizeof(why), &past_go);
	if (rc == 0) {
		fin.downtime_ms = now_ms() - stopped_ms;
		libxl_domain_destroy(hv->ctx, m->domid, NULL); /* xl: "bang!" */
	} else if (!past_go) {
		libxl_domain_resume(hv->ctx, m->domid, 1, NULL);
	}
	pthread_mutex_lock(&hv->logger.lock);
	fin.transferred_bytes = (uint64_t)hv->logger.done * 4096;
	fin.total_bytes = (uint64_t)hv->logger.total * 4096;
	fin.rounds = hv->logger.iterations;
	pthread_mutex_unlock(&hv->logger.lock);
	fin.total_time_ms = now_ms() - m->started_ms;
	pthread_mutex_lock(&hv->lock);
	fin.state = rc == 0 ? HV_MIG_COMPLETED
			    : m->abort_requested && !past_go ? HV_MIG_CANCELLED : HV_MIG_FAILED;
	snprintf(fin.error, sizeof(fin.error), "%s", why);
	m->result = fin;
	m->done = true;
	pthread_mutex_unlock(&hv->lock);
	close(m->fd);
	return NULL;
}

static int lx_migrate_start(struct hv *hv, const char *guest, const char *src, const char *dst,
			    const struct hv_migrate_params *params, uint64_t *id, char *err,
			    size_t errlen)
{
	uint32_t domid;
	int rc = 0, fd = -1;
	(void)params; /* libxl's suspend takes no bandwidth, downtime or channel knobs */
	pthread_mutex_lock(&hv->lock);
	struct lx_host *d = host_find(hv, dst);
	if (!hv->local || !src || strcmp(src, hv->local->u.name) != 0) {
		snprintf(err, errlen, "guest %s: source %s is not the local Xen host (%s)", guest, src,
			 hv->local ? hv->local->u.name : "none added");
		rc = -EINVAL;
	} else if (!d || d == hv->local) {
		snprintf(err, errlen, "guest %s: destination %s: %s", guest, dst,
			 d ? "is the source" : "not in the libxl backend");
		rc = d ? -EINVAL : -ENOENT;
	} else if (hv->mig && !hv->mig->done) {
		snprintf(err, errlen, "guest %s: the libxl backend migrates one guest at a time (%s "
			 "is on its way)", guest, hv->mig->guest);
		rc = -EBUSY;
	} else if (lx_job_busy(hv, guest)) {
		snprintf(err, errlen, "guest %s: being saved or loaded", guest);
		rc = -EBUSY;
	} else if (libxl_name_to_domid(hv->ctx, guest, &domid) != 0) {
		snprintf(err, errlen, "guest %s: not running on %s", guest, src);
		rc = -ENOENT;
	} else if ((rc = connect_to(&d->u, &fd)) < 0) {
		snprintf(err, errlen, "guest %s: cannot reach the receiver of %s at %s:%u: %s", guest,
			 dst, d->u.addr, d->u.port, strerror(-rc));
	}
	if (rc == 0 && hv->mig) {
		pthread_join(hv->mig->worker, NULL); /* the last one, done but not forgotten */
		free(hv->mig);
		hv->mig = NULL;
	}
	struct lx_mig *m = rc == 0 ? calloc(1, sizeof(*m)) : NULL;
	if (rc == 0 && !m)
		rc = -ENOMEM;
	if (rc == 0) {
		m->id = hv->next_id++;
		m->domid = domid;
		m->fd = fd;
		m->started_ms = now_ms();
		snprintf(m->guest, sizeof(m->guest), "%s", guest);
		snprintf(m->src, sizeof(m->src), "%s", src);
		snprintf(m->dst, sizeof(m->dst), "%s", dst);
		hv->logger.done = hv->logger.total = hv->logger.iterations = 0;
		hv->mig = m;
		if (pthread_create(&m->worker, NULL, send_main, hv) != 0) {
			hv->mig = NULL;
			free(m);
			rc = -EAGAIN;
			snprintf(err, errlen, "guest %s: cannot start a migration thread", guest);
		} else {
			*id = m->id;
		}
	}
	if (rc < 0 && fd >= 0)
		close(fd);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

static int lx_migrate_poll(struct hv *hv, uint64_t id, struct hv_progress *out, char *err,
			   size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	struct lx_mig *m = hv->mig && hv->mig->id == id ? hv->mig : NULL;
	if (!m) {
		pthread_mutex_unlock(&hv->lock);
		return lx_job_poll(hv, id, out, err, errlen); /* a save's or a load's */
	}
	if (m->done) {
		*out = m->result;
	} else if (m) {
		pthread_mutex_lock(&hv->logger.lock);
		*out = (struct hv_progress){
			.state = HV_MIG_ACTIVE,
			.transferred_bytes = (uint64_t)hv->logger.done * 4096,
			.total_bytes = (uint64_t)hv->logger.total * 4096,
			.remaining_bytes = (uint64_t)(hv->logger.total - hv->logger.done) * 4096,
			.rounds = hv->logger.iterations,
			.total_time_ms = now_ms() - m->started_ms,
		};
		pthread_mutex_unlock(&hv->logger.lock);
	}
	pthread_mutex_unlock(&hv->lock);
	return 0;
}

static int lx_migrate_abort(struct hv *hv, uint64_t id, char *err, size_t errlen)
{
	int rc = 0;
	pthread_mutex_lock(&hv->lock);
	struct lx_mig *m = hv->mig && hv->mig->id == id ? hv->mig : NULL;
	if (!m) {
		pthread_mutex_unlock(&hv->lock);
		return lx_job_abort(hv, id, err, errlen);
	}
	if (m->done) {
		snprintf(err, errlen, "migration %llu of %s: already finished", (unsigned long long)id,
			 m->guest);
		rc = -EALREADY;
	} else {
		/* the suspend's writes fail; the sender resumes the guest (before GO) */
		m->abort_requested = true;
		shutdown(m->fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

static void lx_migrate_forget(struct hv *hv, uint64_t id)
{
	pthread_mutex_lock(&hv->lock);
	bool mine = hv->mig && hv->mig->id == id;
	struct lx_mig *m = mine && hv->mig->done ? hv->mig : NULL;
	if (m) {
		pthread_join(m->worker, NULL);
		free(m);
		hv->mig = NULL;
	}
	pthread_mutex_unlock(&hv->lock);
	if (!mine)
		lx_job_forget(hv, id);
}

static int64_t lx_now_ns(struct hv *hv)
{
	(void)hv;
	return wall_ns();
}

const struct hv_ops hv_libxl_ops = {
	.scheme = "libxl",
	.open = lx_open,
	.close = lx_close,
	.host_add = lx_host_add,
	.host_remove = lx_host_remove,
	.guest_create = lx_guest_create,
	.guest_info = lx_guest_info,
	.list_guests = lx_list_guests,
	.migrate_start = lx_migrate_start,
	.migrate_poll = lx_migrate_poll,
	.migrate_abort = lx_migrate_abort,
	.migrate_forget = lx_migrate_forget,
	.now_ns = lx_now_ns,
	.guest_pause = lx_guest_pause,
	.guest_resume = lx_guest_resume,
	.save_start = lx_save_start,
	.load_start = lx_load_start,
	.guest_destroy = lx_guest_destroy,
	.guest_config = lx_guest_config,
	.guest_define = lx_guest_define,
};
