/*
 * test_migd_metrics.c: daemon/metrics.c, the map from migd's events and
 * database to its Prometheus metrics, on a real SQLite database and read
 * back through the real HTTP endpoint. Events are built as migd publishes
 * them (the fields db_mig_json and ckpt_op_json write); test_metrics.sh
 * covers the same path end to end with a real migration.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "db.h"
#include "metrics.h"
#include "migd_proto.h"
#include "net.h"

static char dir[64], listen_addr[64];
static uint16_t port;
static struct db *db;
static struct migd_metrics *mx;
static char page[1 << 17];

static void scrape(void)
{
	char request[] = "GET /metrics HTTP/1.0\r\n\r\n";
	int fd = net_connect("127.0.0.1", port, 2000);
	cr_assert_geq(fd, 0);
	cr_assert_eq(net_send_all(fd, request, strlen(request), 0), 0);
	size_t got = 0;
	ssize_t n;
	while (got < sizeof(page) - 1 && (n = read(fd, page + got, sizeof(page) - 1 - got)) > 0)
		got += (size_t)n;
	page[got] = '\0';
	close(fd);
}

static void expect_line(const char *line)
{
	char needle[512];
	snprintf(needle, sizeof(needle), "\n%s\n", line);
	cr_assert_not_null(strstr(page, needle), "no line \"%s\" in:\n%s", line, page);
}

static void add_host(const char *name, const char *uri)
{
	struct db_host h = { 0 };
	snprintf(h.name, sizeof(h.name), "%s", name);
	snprintf(h.uri, sizeof(h.uri), "%s", uri);
	h.enabled = 1;
	snprintf(h.health, sizeof(h.health), "ok");
	cr_assert_eq(db_host_add(db, &h, 1), 0);
}

static void setup(void)
{
	char err[256], path[128];
	snprintf(dir, sizeof(dir), "/tmp/test_migd_metrics.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/state.db", dir);
	cr_assert_eq(db_open(path, &db, err, sizeof(err)), 0, "%s", err);
	/* a free port: bind 0, read it back, give it up, serve on it */
	int probe = net_listen("127.0.0.1", 0, 1, err, sizeof(err));
	cr_assert_geq(probe, 0, "%s", err);
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	getsockname(probe, (struct sockaddr *)&sin, &sl);
	port = ntohs(sin.sin_port);
	close(probe);
	snprintf(listen_addr, sizeof(listen_addr), "127.0.0.1:%u", port);
}

static void teardown(void)
{
	char cmd[128];
	metrics_free(mx);
	mx = NULL;
	db_close(db);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(migd_metrics, .init = setup, .fini = teardown);

static void publish(const char *type, const char *json)
{
	json_error_t jerr;
	json_t *ev = migd_event_new(type, 1);
	json_t *body = json_loads(json, 0, &jerr);
	cr_assert_not_null(body, "%s: %s", json, jerr.text);
	json_object_update_new(ev, body);
	metrics_event(mx, ev);
	json_decref(ev);
}

Test(migd_metrics, off_without_an_address)
{
	char err[256];
	cr_assert_eq(metrics_new("", db, NULL, &mx, err, sizeof(err)), 0);
	cr_assert_null(mx);
	metrics_event(NULL, NULL); /* what api_publish does with metrics off */
	metrics_tick(NULL);
}

Test(migd_metrics, migrations_by_result_policy_and_backend)
{
	char err[256];
	add_host("n1", "sim:///n1?link=1gbit");
	add_host("q1", "qmp:///q1");
	cr_assert_eq(metrics_new(listen_addr, db, NULL, &mx, err, sizeof(err)), 0, "%s", err);
	publish("migration.queued", "{\"src\": \"n1\", \"policy\": \"p1\"}");
	publish("migration.started", "{\"src\": \"n1\", \"policy\": \"p1\"}");
	publish("migration.progress", "{\"guest\": \"g1\", \"src\": \"n1\", \"dst\": \"n2\","
		" \"transferred_bytes\": 700, \"remaining_bytes\": 300, \"total_bytes\": 1000,"
		" \"rounds\": 2}");
	scrape();
	expect_line("migd_migration_progress_transferred_bytes{guest=\"g1\"} 700");
	expect_line("migd_migration_progress_remaining_bytes{guest=\"g1\"} 300");
	expect_line("migd_migration_progress_memory_bytes{guest=\"g1\"} 1000");
	expect_line("migd_migration_progress_rounds{guest=\"g1\"} 2");
	cr_assert_null(strstr(page, "migd_migrations_total{"), "progress is not an end");
	publish("migration.completed", "{\"guest\": \"g1\", \"src\": \"n1\", \"policy\": \"p1\", \"total_ms\": 2000,"
		" \"downtime_ms\": 150, \"quiesce_ms\": -1, \"resume_ms\": null,"
		" \"bytes\": 1000, \"drained_bytes\": 64}");
	publish("migration.started", "{\"src\": \"q1\", \"policy\": null}");
	publish("migration.failed", "{\"src\": \"q1\", \"policy\": null, \"total_ms\": -1,"
		" \"quiesce_ms\": 20, \"bytes\": -1}");
	publish("migration.aborted", "{\"src\": \"gone\", \"policy\": null}");
	scrape();
	expect_line("migd_migrations_queued_total{policy=\"p1\",backend=\"sim\"} 1");
	expect_line("migd_migrations_started_total{policy=\"p1\",backend=\"sim\"} 1");
	expect_line("migd_migrations_started_total{policy=\"\",backend=\"qmp\"} 1");
	expect_line("migd_migrations_total{result=\"completed\",policy=\"p1\",backend=\"sim\"} 1");
	expect_line("migd_migrations_total{result=\"failed\",policy=\"\",backend=\"qmp\"} 1");
	expect_line("migd_migrations_total{result=\"aborted\",policy=\"\",backend=\"unknown\"} 1");
	expect_line("migd_migration_duration_seconds_bucket{result=\"completed\",policy=\"p1\","
		    "backend=\"sim\",le=\"2.5\"} 1");
	expect_line("migd_migration_duration_seconds_bucket{result=\"completed\",policy=\"p1\","
		    "backend=\"sim\",le=\"1\"} 0");
	expect_line("migd_migration_duration_seconds_sum{result=\"completed\",policy=\"p1\","
		    "backend=\"sim\"} 2");
	expect_line("migd_migration_downtime_seconds_sum{result=\"completed\",policy=\"p1\","
		    "backend=\"sim\"} 0.15");
	expect_line("migd_migration_quiesce_seconds_count{result=\"failed\",policy=\"\","
		    "backend=\"qmp\"} 1");
	expect_line("migd_migration_data_processed_bytes_total{policy=\"p1\",backend=\"sim\"} 1000");
	expect_line("migd_migration_drained_bytes_total{policy=\"p1\",backend=\"sim\"} 64");
	/* the running migration's gauges went with its end */
	cr_assert_null(strstr(page, "{guest=\"g1\"}"), "%s", page);
	/* unknown figures are not observed as zero */
	cr_assert_null(strstr(page, "migd_migration_quiesce_seconds_count{result=\"completed\""));
	cr_assert_null(strstr(page, "migd_migration_duration_seconds_count{result=\"failed\""));
	cr_assert_null(strstr(page, "migd_migration_resume_seconds_count{"));
}

Test(migd_metrics, checkpoints_restores_policies_agents)
{
	char err[256];
	add_host("n1", "sim:///n1");
	cr_assert_eq(metrics_new(listen_addr, db, NULL, &mx, err, sizeof(err)), 0, "%s", err);
	const char *guests = "\"guests\": [{\"name\": \"g1\", \"host\": \"n1\"}]";
	char json[512];
	snprintf(json, sizeof(json), "{%s, \"policy\": \"nightly\"}", guests);
	publish("checkpoint.queued", json);
	publish("checkpoint.pausing", json);
	snprintf(json, sizeof(json), "{%s, \"policy\": \"nightly\", \"phases\": {\"total_ms\": 3000,"
		 " \"quiesce_ms\": 10, \"resume_ms\": 5}, \"job_pause_ms\": 400, \"bytes\": 5000}",
		 guests);
	publish("checkpoint.completed", json);
	publish("restore.failed", "{\"job\": \"j1\"}");
	publish("policy.fired", "{\"name\": \"p1\", \"policy\": {\"type\": \"interval\"}}");
	publish("policy.fired", "{\"name\": \"p1\", \"policy\": {\"type\": \"interval\"}}");
	publish("agent.connected", "{\"guest\": \"g1\"}");
	scrape();
	expect_line("migd_checkpoints_started_total{policy=\"nightly\",backend=\"sim\"} 1");
	expect_line("migd_checkpoints_total{result=\"completed\",policy=\"nightly\",backend=\"sim\"} 1");
	expect_line("migd_checkpoint_duration_seconds_sum{result=\"completed\",policy=\"nightly\","
		    "backend=\"sim\"} 3");
	expect_line("migd_checkpoint_pause_seconds_sum{result=\"completed\",policy=\"nightly\","
		    "backend=\"sim\"} 0.4");
	expect_line("migd_checkpoint_quiesce_seconds_sum{result=\"completed\",policy=\"nightly\","
		    "backend=\"sim\"} 0.01");
	expect_line("migd_checkpoint_data_bytes_total{policy=\"nightly\",backend=\"sim\"} 5000");
	expect_line("migd_restores_total{result=\"failed\"} 1");
	expect_line("migd_policy_firings_total{policy=\"p1\",type=\"interval\"} 2");
	expect_line("migd_agent_connections_total 1");
	expect_line("migd_agent_disconnections_total 0");
}

Test(migd_metrics, gauges_follow_the_database)
{
	char err[256];
	add_host("n1", "sim:///n1");
	add_host("n2", "sim:///n2");
	add_host("n3", "sim:///n3");
	cr_assert_eq(db_host_set_health(db, "n2", "degraded", "fan", 5), 0);
	cr_assert_eq(db_host_set_enabled(db, "n3", 0), 0);
	cr_assert_eq(metrics_new(listen_addr, db, NULL, &mx, err, sizeof(err)), 0, "%s", err);
	scrape();
	expect_line("migd_hosts{health=\"ok\",enabled=\"yes\"} 1");
	expect_line("migd_hosts{health=\"degraded\",enabled=\"yes\"} 1");
	expect_line("migd_hosts{health=\"ok\",enabled=\"no\"} 1");
	expect_line("migd_migration_queue_depth 0");
	expect_line("migd_build_info{version=\"" MIGD_VERSION "\"} 1");
	/* a host leaves: its series goes at the next refresh (once a second) */
	cr_assert_eq(db_host_remove(db, "n2"), 0);
	usleep(1100 * 1000);
	metrics_tick(mx);
	scrape();
	cr_assert_null(strstr(page, "health=\"degraded\""), "%s", page);
	expect_line("migd_hosts{health=\"ok\",enabled=\"yes\"} 1");
}

Test(migd_metrics, a_bad_or_taken_address_is_named)
{
	char err[256];
	cr_assert_lt(metrics_new("nohostport", db, NULL, &mx, err, sizeof(err)), 0);
	cr_assert_not_null(strstr(err, "\"nohostport\""), "%s", err);
	int fd = net_listen("127.0.0.1", port, 1, err, sizeof(err));
	cr_assert_geq(fd, 0, "%s", err);
	cr_assert_lt(metrics_new(listen_addr, db, NULL, &mx, err, sizeof(err)), 0);
	cr_assert_not_null(strstr(err, listen_addr), "%s", err);
	cr_assert_null(mx);
	close(fd);
}
