/*
 * test_prom.c: common/prom.c, the Prometheus text exposition of migd and
 * sfsd, and common/httpd.c serving it over real HTTP on loopback. What
 * promtool and a real Prometheus think of the output is test_metrics.sh's
 * part; here: the exact text of each metric type, escaping, cumulative
 * buckets, the series cap, and the endpoint's answers.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd.h"
#include "net.h"
#include "prom.h"

static char *render(struct prom_registry *reg)
{
	char *text = NULL;
	size_t len = 0;
	cr_assert_eq(prom_render(reg, &text, &len), 0);
	cr_assert_eq(strlen(text), len);
	return text;
}

Test(prom, counter_and_gauge_text)
{
	struct prom_registry *reg = prom_registry_new("server=io0");
	struct prom_metric *c = prom_metric_new(reg, PROM_COUNTER, "x_requests_total",
						"Requests, by op", "op", NULL, 0);
	struct prom_metric *g = prom_metric_new(reg, PROM_GAUGE, "x_connections", "Open now",
						NULL, NULL, 0);
	cr_assert(c && g);
	prom_counter_add(c, (const char *[]){ "READ" }, 2);
	prom_counter_add(c, (const char *[]){ "READ" }, 1);
	prom_counter_add(c, (const char *[]){ "WRITE" }, 0.5);
	prom_counter_add(c, (const char *[]){ "WRITE" }, -7); /* a counter never goes down */
	prom_gauge_set(g, NULL, 3);
	prom_gauge_set(g, NULL, 1);
	char *text = render(reg);
	cr_assert_str_eq(text,
		"# HELP x_requests_total Requests, by op\n"
		"# TYPE x_requests_total counter\n"
		"x_requests_total{server=\"io0\",op=\"READ\"} 3\n"
		"x_requests_total{server=\"io0\",op=\"WRITE\"} 0.5\n"
		"# HELP x_connections Open now\n"
		"# TYPE x_connections gauge\n"
		"x_connections{server=\"io0\"} 1\n");
	free(text);
	prom_registry_free(reg);
}

Test(prom, histogram_buckets_are_cumulative)
{
	struct prom_registry *reg = prom_registry_new(NULL);
	const double bounds[] = { 0.1, 1, 10 };
	struct prom_metric *h = prom_metric_new(reg, PROM_HISTOGRAM, "x_duration_seconds",
						"Time", NULL, bounds, 3);
	cr_assert(h);
	prom_histogram_observe(h, NULL, 0.05);
	prom_histogram_observe(h, NULL, 0.1); /* le is inclusive */
	prom_histogram_observe(h, NULL, 5);
	prom_histogram_observe(h, NULL, 100);
	char *text = render(reg);
	cr_assert_str_eq(text,
		"# HELP x_duration_seconds Time\n"
		"# TYPE x_duration_seconds histogram\n"
		"x_duration_seconds_bucket{le=\"0.1\"} 2\n"
		"x_duration_seconds_bucket{le=\"1\"} 2\n"
		"x_duration_seconds_bucket{le=\"10\"} 3\n"
		"x_duration_seconds_bucket{le=\"+Inf\"} 4\n"
		"x_duration_seconds_sum 105.15\n"
		"x_duration_seconds_count 4\n");
	free(text);
	prom_registry_free(reg);
}

Test(prom, label_values_and_help_are_escaped)
{
	struct prom_registry *reg = prom_registry_new(NULL);
	struct prom_metric *g = prom_metric_new(reg, PROM_GAUGE, "x_up", "a \\ b\nc", "guest",
						NULL, 0);
	prom_gauge_set(g, (const char *[]){ "a\"b\\c\nd" }, 1);
	char *text = render(reg);
	cr_assert_str_eq(text, "# HELP x_up a \\\\ b\\nc\n# TYPE x_up gauge\n"
			       "x_up{guest=\"a\\\"b\\\\c\\nd\"} 1\n");
	free(text);
	prom_registry_free(reg);
}

Test(prom, bad_names_are_refused)
{
	struct prom_registry *reg = prom_registry_new(NULL);
	cr_assert_null(prom_metric_new(reg, PROM_GAUGE, "9lives", "h", NULL, NULL, 0));
	cr_assert_null(prom_metric_new(reg, PROM_GAUGE, "x-y", "h", NULL, NULL, 0));
	cr_assert_null(prom_metric_new(reg, PROM_GAUGE, "x", "h", "a:b", NULL, 0));
	cr_assert_null(prom_metric_new(reg, PROM_GAUGE, "x", "h", "a,b,c,d,e,f,g", NULL, 0));
	prom_registry_free(reg);
}

Test(prom, series_are_capped_and_clear_drops_them)
{
	struct prom_registry *reg = prom_registry_new(NULL);
	struct prom_metric *g = prom_metric_new(reg, PROM_GAUGE, "x_g", "h", "k", NULL, 0);
	char value[16];
	for (int i = 0; i < PROM_MAX_SERIES + 10; i++) {
		snprintf(value, sizeof(value), "%d", i);
		prom_gauge_set(g, (const char *[]){ value }, i);
	}
	char *text = render(reg);
	size_t lines = 0;
	for (char *p = text; *p; p++)
		lines += *p == '\n';
	cr_assert_eq(lines, 2 + PROM_MAX_SERIES, "expected the cap, got %zu lines", lines);
	cr_assert_null(strstr(text, "k=\"4096\""));
	free(text);
	prom_series_remove(g, (const char *[]){ "7" });
	prom_series_remove(g, (const char *[]){ "7" }); /* gone already: nothing */
	prom_series_remove(g, (const char *[]){ "no such" });
	text = render(reg);
	cr_assert_null(strstr(text, "x_g{k=\"7\"}"));
	cr_assert_not_null(strstr(text, "x_g{k=\"8\"} 8\n"));
	cr_assert_not_null(strstr(text, "x_g{k=\"4095\"} 4095\n"));
	free(text);
	prom_metric_clear(g);
	text = render(reg);
	cr_assert_str_eq(text, "# HELP x_g h\n# TYPE x_g gauge\n");
	free(text);
	prom_registry_free(reg);
}

static int collected;

static void collect(void *arg)
{
	prom_gauge_set(arg, NULL, ++collected);
}

/* One HTTP/1.0 request on loopback; the whole answer into buf. */
static void http_get(uint16_t port, const char *request, char *buf, size_t len)
{
	int fd = net_connect("127.0.0.1", port, 2000);
	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert_eq(net_send_all(fd, request, strlen(request), 0), 0);
	size_t got = 0;
	ssize_t n;
	while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(fd);
}

Test(httpd, serves_metrics_and_refuses_the_rest)
{
	struct prom_registry *reg = prom_registry_new(NULL);
	struct prom_metric *g = prom_metric_new(reg, PROM_GAUGE, "x_scrapes", "h", NULL, NULL, 0);
	cr_assert_eq(prom_on_collect(reg, collect, g), 0);
	/* a free port: bind 0, read it back, give it up, serve on it */
	char err[256], listen[64], buf[4096];
	int probe = net_listen("127.0.0.1", 0, 1, err, sizeof(err));
	cr_assert_geq(probe, 0, "%s", err);
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	getsockname(probe, (struct sockaddr *)&sin, &sl);
	uint16_t port = ntohs(sin.sin_port);
	close(probe);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	struct httpd *h = NULL;
	cr_assert_eq(httpd_start(listen, reg, &h, err, sizeof(err)), 0, "%s", err);

	http_get(port, "GET /metrics HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	cr_assert(strncmp(buf, "HTTP/1.0 200", 12) == 0 || strncmp(buf, "HTTP/1.1 200", 12) == 0,
		  "%s", buf);
	cr_assert_not_null(strstr(buf, "text/plain; version=0.0.4"), "%s", buf);
	cr_assert_not_null(strstr(buf, "\r\n\r\n# HELP x_scrapes h\n# TYPE x_scrapes gauge\n"
				       "x_scrapes 1\n"), "%s", buf);
	http_get(port, "GET /metrics HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	cr_assert_not_null(strstr(buf, "x_scrapes 2\n"), "collect hooks run per scrape: %s", buf);
	http_get(port, "GET /other HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	cr_assert_not_null(strstr(buf, " 404 "), "%s", buf);
	cr_assert_not_null(strstr(buf, "no /other here"), "%s", buf);
	http_get(port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n", buf, sizeof(buf));
	cr_assert_not_null(strstr(buf, " 405 "), "%s", buf);

	/* the port is taken now: a second server says which address failed */
	struct httpd *h2 = NULL;
	cr_assert_lt(httpd_start(listen, reg, &h2, err, sizeof(err)), 0);
	cr_assert_not_null(strstr(err, listen), "%s", err);
	httpd_free(h);
	prom_registry_free(reg);
}

Test(httpd, bad_listen_addresses_are_named)
{
	char host[64], err[256];
	uint16_t port;
	cr_assert_eq(net_parse_hostport("127.0.0.1:9464", host, sizeof(host), &port, err,
					sizeof(err)), 0);
	cr_assert_str_eq(host, "127.0.0.1");
	cr_assert_eq(port, 9464);
	cr_assert_eq(net_parse_hostport("[::1]:80", host, sizeof(host), &port, err, sizeof(err)),
		     0);
	cr_assert_str_eq(host, "::1");
	const char *bad[] = { "9464", "host:", ":9464", "h:0", "h:70000", "h:12x", "[::1]80" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(net_parse_hostport(bad[i], host, sizeof(host), &port, err, sizeof(err)),
			     -EINVAL, "%s", bad[i]);
		cr_assert_not_null(strstr(err, bad[i]), "%s: %s", bad[i], err);
	}
}
