/*
 * httpd: see httpd.h. The listening socket is made by net_listen (the
 * same address rules and error messages as every other listener of the
 * project) and handed to MHD, which polls it in its own thread.
 */
#include "httpd.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "prom.h"
#include "util.h"

#define HTTPD_BACKLOG 64
#define HTTPD_MAX_CONNECTIONS 32
#define HTTPD_TIMEOUT_S 10
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct httpd {
	struct MHD_Daemon *mhd;
	struct prom_registry *reg;
	int listen_fd;
};

static enum MHD_Result queue_text(struct MHD_Connection *conn, unsigned status, char *text,
				  size_t len, const char *type)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, text,
								     MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	enum MHD_Result rc = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	struct httpd *h = cls;
	char *text = NULL;
	size_t len = 0;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		text = strdup("only GET and HEAD are served here\n");
		return text ? queue_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, text, strlen(text),
					 "text/plain") : MHD_NO;
	}
	if (strcmp(url, "/metrics") != 0) {
		if (asprintf(&text, "no %s here: metrics are at /metrics\n", url) < 0)
			return MHD_NO;
		return queue_text(conn, MHD_HTTP_NOT_FOUND, text, strlen(text), "text/plain");
	}
	if (prom_render(h->reg, &text, &len) < 0)
		return MHD_NO;
	return queue_text(conn, MHD_HTTP_OK, text, len, CONTENT_TYPE);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_warnx("metrics endpoint: %s", line);
}

int httpd_start(const char *listen, struct prom_registry *reg, struct httpd **out, char *err,
		size_t errlen)
{
	char host[256], why[512];
	uint16_t port;
	int rc = net_parse_hostport(listen, host, sizeof(host), &port, err, errlen);
	if (rc < 0)
		return rc;
	struct httpd *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	h->reg = reg;
	h->listen_fd = net_listen(host, port, HTTPD_BACKLOG, why, sizeof(why));
	if (h->listen_fd < 0) {
		rc = h->listen_fd;
		snprintf(err, errlen, "metrics endpoint %s: %s", listen, why);
		free(h);
		return rc;
	}
	/* MHD's thread takes no signals: they stay with the daemon's own
	 * threads (migd's main loop waits for EINTR) */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	h->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG,
				  0, NULL, NULL, answer, h,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, /* first, or MHD says so */
				  MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->listen_fd,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTPD_MAX_CONNECTIONS,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTPD_TIMEOUT_S,
				  MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!h->mhd) {
		snprintf(err, errlen, "metrics endpoint %s: libmicrohttpd would not start", listen);
		close(h->listen_fd);
		free(h);
		return -EIO;
	}
	*out = h;
	return 0;
}

void httpd_free(struct httpd *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->mhd); /* the listening socket is ours to close */
	close(h->listen_fd);
	free(h);
}
