/*
 * db: a fresh database gets the current schema, a version 1 database made
 * by hand is upgraded with its rows carried over, so is a version 2 one
 * (to 3: the quiesce knobs and costs), a newer one is refused;
 * hosts, guests, migrations, policies and events survive a reopen, the
 * migration row goes through its whole life, list filters select what they
 * say, and events leave only once their transaction committed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "migd_proto.h"

#define GIB (1ull << 30)

static char path[128];
static char err[512];
static struct db *db;

static void remove_files(void)
{
	char p[160];
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

static void setup(void)
{
	snprintf(path, sizeof(path), "/tmp/test_db_%d.db", (int)getpid());
	remove_files();
	db = NULL;
}

static void teardown(void)
{
	db_close(db);
	remove_files();
}

static void open_db(void)
{
	cr_assert_eq(db_open(path, &db, err, sizeof(err)), 0, "%s", err);
}

static void reopen(void)
{
	db_close(db);
	db = NULL;
	open_db();
}

static void add_host(const char *name, uint64_t mem)
{
	struct db_host h = { .enabled = 1, .memory_bytes = mem };
	snprintf(h.name, sizeof(h.name), "%s", name);
	snprintf(h.uri, sizeof(h.uri), "sim:///%s", name);
	cr_assert_eq(db_host_add(db, &h, 1000), 0, "host %s", name);
	cr_assert_gt(h.id, 0);
}

static int add_guest(const char *name, const char *host, uint64_t mem, const char *job,
		     int rank)
{
	struct db_guest g = { .memory_bytes = mem, .dirty_rate_bps = 1000, .rank = rank };
	snprintf(g.name, sizeof(g.name), "%s", name);
	snprintf(g.host, sizeof(g.host), "%s", host);
	snprintf(g.job, sizeof(g.job), "%s", job ? job : "");
	return db_guest_add(db, &g, 2000);
}

static int64_t add_mig(const char *guest, const char *src, const char *policy, int prio,
		       int64_t queued_ns)
{
	struct db_migration m = { .state = DB_MIG_QUEUED, .priority = prio,
				  .queued_ns = queued_ns };
	snprintf(m.guest, sizeof(m.guest), "%s", guest);
	snprintf(m.src, sizeof(m.src), "%s", src);
	snprintf(m.policy, sizeof(m.policy), "%s", policy ? policy : "");
	snprintf(m.reason, sizeof(m.reason), "test");
	cr_assert_eq(db_mig_add(db, &m), 0);
	return m.id;
}

TestSuite(db, .init = setup, .fini = teardown);

/* ---- schema ---- */

Test(db, fresh_database_gets_the_current_schema)
{
	open_db();
	cr_assert_eq(db_schema_version(db), DB_SCHEMA_VERSION);
	struct db_counts c;
	cr_assert_eq(db_counts(db, &c), 0);
	cr_assert_eq(c.hosts + c.guests + c.policies + c.queued + c.running, 0);
}

Test(db, second_opener_is_refused_while_the_first_holds_it)
{
	open_db();
	struct db *other = NULL;
	cr_assert_eq(db_open(path, &other, err, sizeof(err)), -EBUSY);
	cr_assert_null(other);
	cr_assert(strstr(err, "in use"), "%s", err);
}

Test(db, newer_schema_is_refused)
{
	sqlite3 *h;
	cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	cr_assert_eq(db_open(path, &db, err, sizeof(err)), -EPROTONOSUPPORT);
	cr_assert(strstr(err, "99"), "%s", err);
}

/* The schema as version 1 shipped it, with a few rows, made without db.c. */
static const char v1_schema[] =
	"CREATE TABLE hosts (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, uri TEXT NOT NULL,"
	" max_outbound INTEGER NOT NULL DEFAULT 0, max_inbound INTEGER NOT NULL DEFAULT 0,"
	" memory_bytes INTEGER NOT NULL DEFAULT 0, enabled INTEGER NOT NULL DEFAULT 1,"
	" added_ns INTEGER NOT NULL);"
	"CREATE TABLE jobs (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
	"CREATE TABLE guests (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	" host_id INTEGER NOT NULL REFERENCES hosts(id), memory_bytes INTEGER NOT NULL,"
	" dirty_rate_bps INTEGER NOT NULL DEFAULT 0, job_id INTEGER REFERENCES jobs(id),"
	" rank INTEGER, added_ns INTEGER NOT NULL);"
	"CREATE INDEX guests_host ON guests(host_id);"
	"CREATE UNIQUE INDEX guests_job_rank ON guests(job_id, rank);"
	"CREATE TABLE policies (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	" type TEXT NOT NULL, params TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'active',"
	" last_fire_ns INTEGER, created_ns INTEGER NOT NULL);"
	"CREATE TABLE migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, guest TEXT NOT NULL,"
	" src TEXT NOT NULL, dst TEXT, state TEXT NOT NULL, priority INTEGER NOT NULL,"
	" policy TEXT, reason TEXT, queued_ns INTEGER NOT NULL, started_ns INTEGER,"
	" migrating_ns INTEGER, finished_ns INTEGER, total_ms INTEGER, downtime_ms INTEGER,"
	" bytes INTEGER, error TEXT);"
	"CREATE INDEX migrations_state ON migrations(state);"
	"CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ns INTEGER NOT NULL,"
	" type TEXT NOT NULL, body TEXT NOT NULL);"
	"INSERT INTO hosts (name, uri, memory_bytes, added_ns) VALUES ('n1', 'sim:///n1', 0, 1);"
	"INSERT INTO hosts (name, uri, memory_bytes, enabled, added_ns)"
	" VALUES ('n2', 'sim:///n2', 68719476736, 0, 1);"
	"INSERT INTO jobs (name) VALUES ('bt');"
	"INSERT INTO guests (name, host_id, memory_bytes, job_id, rank, added_ns)"
	" VALUES ('g1', 1, 4294967296, 1, 0, 2);"
	"INSERT INTO policies (name, type, params, last_fire_ns, created_ns)"
	" VALUES ('every4m', 'interval', '{\"guests\":\"job:bt\",\"every_s\":240}', 5000000000000,"
	" 1000000000000);"
	"INSERT INTO migrations (guest, src, dst, state, priority, policy, queued_ns, started_ns,"
	" migrating_ns, finished_ns, total_ms, downtime_ms, bytes)"
	" VALUES ('g1', 'n2', 'n1', 'completed', 0, 'every4m', 100, 200, 300, 400, 37000, 230, 9);"
	"INSERT INTO migrations (guest, src, state, priority, policy, queued_ns)"
	" VALUES ('g1', 'n1', 'queued', 0, 'every4m', 5000000000000);"
	"INSERT INTO events (ts_ns, type, body) VALUES (1, 'host.added', '{}');"
	"PRAGMA user_version = 1;";

Test(db, version_1_database_is_upgraded_with_its_rows)
{
	sqlite3 *h;
	cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h, v1_schema, NULL, NULL, NULL), SQLITE_OK, "%s",
		     sqlite3_errmsg(h));
	sqlite3_close(h);

	open_db();
	cr_assert_eq(db_schema_version(db), DB_SCHEMA_VERSION);
	struct db_host host;
	cr_assert_eq(db_host_get(db, "n2", &host), 0);
	cr_assert_str_eq(host.health, "ok");
	cr_assert_eq(host.enabled, 0);
	cr_assert_eq(host.memory_bytes, 64 * GIB);
	struct db_guest g;
	cr_assert_eq(db_guest_get(db, "g1", &g), 0);
	cr_assert_str_eq(g.host, "n1");
	cr_assert_str_eq(g.job, "bt");
	cr_assert_eq(g.migration_id, 2);

	struct db_policy p;
	cr_assert_eq(db_policy_get(db, "every4m", &p), 0);
	cr_assert_eq(p.anchor_ns, 1000000000000LL, "the grid starts at creation");
	cr_assert_eq(p.next_fire_ns, 5000000000000LL + 240000000000LL, "one period after the last");
	cr_assert_eq(p.fired, 2, "distinct queue times of its migrations");
	cr_assert_eq(json_integer_value(json_object_get(p.params, "every_s")), 240);
	db_policy_clear(&p);

	struct db_migration m;
	cr_assert_eq(db_mig_get(db, 1, &m), 0);
	cr_assert_eq(m.state, DB_MIG_COMPLETED);
	cr_assert_eq(m.total_ms, 37000);
	cr_assert_eq(m.rounds, -1, "unknown in version 1");
	cr_assert_eq(m.reconciled, 0);
	cr_assert_eq(db_mig_get(db, 2, &m), 0);
	cr_assert_eq(m.not_before_ns, m.queued_ns, "a queued row was due when queued");

	/* and the upgraded database takes new rows like a fresh one */
	add_host("n3", 0);
	cr_assert_eq(add_guest("g2", "n3", GIB, "bt", 1), 0);
	reopen();
	cr_assert_eq(db_schema_version(db), DB_SCHEMA_VERSION);
	cr_assert_eq(db_guest_get(db, "g2", &g), 0);
}

/* ---- hosts and guests ---- */

static int count_host(void *arg, const struct db_host *h)
{
	(*(int *)arg)++;
	return 0;
}

/* A version 2 database as migd 2 left it: the v1 tables plus step 2's
 * columns, with a finished row, a queued one and a running one. */
static const char v2_steps[] =
	"ALTER TABLE hosts ADD COLUMN health TEXT NOT NULL DEFAULT 'ok';"
	"ALTER TABLE migrations ADD COLUMN not_before_ns INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE migrations ADD COLUMN rounds INTEGER;"
	"ALTER TABLE migrations ADD COLUMN reconciled INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE policies ADD COLUMN anchor_ns INTEGER;"
	"ALTER TABLE policies ADD COLUMN next_fire_ns INTEGER;"
	"ALTER TABLE policies ADD COLUMN cursor INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE policies ADD COLUMN fired INTEGER NOT NULL DEFAULT 0;"
	"UPDATE migrations SET not_before_ns = queued_ns;"
	"UPDATE policies SET anchor_ns = created_ns, next_fire_ns = 5240000000000, fired = 2;"
	"UPDATE migrations SET rounds = 4, reconciled = 1 WHERE id = 1;"
	"INSERT INTO migrations (guest, src, dst, state, priority, queued_ns, not_before_ns,"
	" started_ns) VALUES ('g1', 'n1', 'n2', 'started', 2, 6000, 6000, 6100);"
	"PRAGMA user_version = 2;";

Test(db, version_2_database_is_upgraded_keeping_every_row)
{
	sqlite3 *h;
	cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h, v1_schema, NULL, NULL, NULL), SQLITE_OK, "%s",
		     sqlite3_errmsg(h));
	cr_assert_eq(sqlite3_exec(h, v2_steps, NULL, NULL, NULL), SQLITE_OK, "%s",
		     sqlite3_errmsg(h));
	sqlite3_close(h);

	open_db();
	cr_assert_eq(db_schema_version(db), DB_SCHEMA_VERSION);
	struct db_host host;
	cr_assert_eq(db_host_get(db, "n2", &host), 0);
	cr_assert_eq(host.memory_bytes, 64 * GIB);
	struct db_guest g;
	cr_assert_eq(db_guest_get(db, "g1", &g), 0);
	cr_assert_str_eq(g.job, "bt");
	struct db_policy p;
	cr_assert_eq(db_policy_get(db, "every4m", &p), 0);
	cr_assert_eq(p.fired, 2);
	cr_assert_eq(p.next_fire_ns, 5240000000000LL);
	db_policy_clear(&p);

	/* the finished row: every old figure, nothing recorded on the agent side */
	struct db_migration m;
	cr_assert_eq(db_mig_get(db, 1, &m), 0);
	cr_assert_eq(m.state, DB_MIG_COMPLETED);
	cr_assert_eq(m.total_ms, 37000);
	cr_assert_eq(m.downtime_ms, 230);
	cr_assert_eq(m.bytes, 9);
	cr_assert_eq(m.rounds, 4);
	cr_assert_eq(m.reconciled, 1);
	cr_assert_eq(m.finished_ns, 400);
	cr_assert_str_eq(m.quiesce, "");
	cr_assert_eq(m.quiesce_ns, 0);
	cr_assert_eq(m.quiesce_ms, -1);
	cr_assert_eq(m.drained_bytes, -1);
	cr_assert_eq(m.lull_wait_ms, -1);
	cr_assert_eq(m.defers, 0);
	cr_assert_eq(m.knobs.quiesce, DB_QUIESCE_OFF, "quiesce did not exist for it");
	json_t *o = db_mig_json(&m);
	cr_assert(json_is_null(json_object_get(o, "quiesce")));
	cr_assert(json_is_null(json_object_get(o, "quiesce_ms")));
	cr_assert(json_is_null(json_object_get(o, "drained_bytes")));
	cr_assert(json_is_null(json_object_get(o, "resume")));
	cr_assert(json_is_null(json_object_get(o, "lull_reason")));
	json_decref(o);

	/* the unfinished rows get the knobs of the release that added them */
	for (int64_t id = 2; id <= 3; id++) {
		cr_assert_eq(db_mig_get(db, id, &m), 0);
		cr_assert_eq(m.knobs.quiesce, DB_QUIESCE_BEST_EFFORT, "row %lld", (long long)id);
		cr_assert_eq(m.knobs.quiesce_deadline_ms, 2000);
		cr_assert_eq(m.knobs.miss_aborts, 0);
		cr_assert_eq(m.knobs.io_lull_bps, 0);
		cr_assert_eq(m.knobs.io_lull_wait_ms, 30000);
	}
	cr_assert_eq(m.state, DB_MIG_STARTED);
	cr_assert_eq(m.started_ns, 6100);
	cr_assert_eq(db_mig_get(db, 2, &m), 0);
	cr_assert_eq(m.state, DB_MIG_QUEUED);
	cr_assert_eq(m.not_before_ns, 5000000000000LL);
}

Test(db, quiesce_knobs_and_costs_round_trip_and_show_in_json)
{
	open_db();
	add_host("n1", 0);
	add_host("n2", 0);
	struct db_migration m = { .state = DB_MIG_QUEUED, .priority = 2, .queued_ns = 10 };
	snprintf(m.guest, sizeof(m.guest), "g1");
	snprintf(m.src, sizeof(m.src), "n1");
	m.knobs = (struct db_mig_knobs){ DB_QUIESCE_REQUIRED, 750, 1, 10485760, 5000 };
	db_mig_figures_unknown(&m);
	m.total_ms = m.downtime_ms = m.bytes = m.rounds = -1;
	cr_assert_eq(db_mig_add(db, &m), 0);
	cr_assert_eq(db_mig_get(db, m.id, &m), 0);
	cr_assert_eq(m.knobs.quiesce, DB_QUIESCE_REQUIRED);
	cr_assert_eq(m.knobs.quiesce_deadline_ms, 750);
	cr_assert_eq(m.knobs.miss_aborts, 1);
	cr_assert_eq(m.knobs.io_lull_bps, 10485760);
	cr_assert_eq(m.knobs.io_lull_wait_ms, 5000);
	cr_assert_eq(m.quiesce_ms, -1);

	m.state = DB_MIG_COMPLETED;
	snprintf(m.dst, sizeof(m.dst), "n2");
	m.started_ns = 20;
	m.quiesce_ns = 21;
	m.quiesce_ms = 12;
	m.drained_requests = 16;
	m.drained_bytes = 16 << 20;
	snprintf(m.quiesce, sizeof(m.quiesce), "ok");
	m.migrating_ns = 30;
	m.resume_ns = 40;
	m.resume_ms = 3;
	snprintf(m.resume, sizeof(m.resume), "ok");
	m.lull_wait_ms = 2500;
	snprintf(m.lull_reason, sizeof(m.lull_reason), "lull after 2500 ms");
	m.defers = 2;
	m.finished_ns = 50;
	cr_assert_eq(db_mig_update(db, &m), 0);
	reopen();
	struct db_migration back;
	cr_assert_eq(db_mig_get(db, m.id, &back), 0);
	cr_assert_eq(back.quiesce_ns, 21);
	cr_assert_eq(back.resume_ns, 40);
	cr_assert_eq(back.defers, 2);
	cr_assert_str_eq(back.lull_reason, "lull after 2500 ms");

	json_t *o = db_mig_json(&back), *k = json_object_get(o, "knobs");
	cr_assert_str_eq(json_string_value(json_object_get(o, "quiesce")), "ok");
	cr_assert_eq(json_integer_value(json_object_get(o, "quiesce_ns")), 21);
	cr_assert_eq(json_integer_value(json_object_get(o, "quiesce_ms")), 12);
	cr_assert_eq(json_integer_value(json_object_get(o, "drained_requests")), 16);
	cr_assert_eq(json_integer_value(json_object_get(o, "drained_bytes")), 16 << 20);
	cr_assert_str_eq(json_string_value(json_object_get(o, "resume")), "ok");
	cr_assert_eq(json_integer_value(json_object_get(o, "resume_ms")), 3);
	cr_assert_eq(json_integer_value(json_object_get(o, "lull_wait_ms")), 2500);
	cr_assert_eq(json_integer_value(json_object_get(o, "defers")), 2);
	cr_assert_str_eq(json_string_value(json_object_get(k, "quiesce")), "required");
	cr_assert_str_eq(json_string_value(json_object_get(k, "on_quiesce_miss")), "abort");
	cr_assert_eq(json_integer_value(json_object_get(k, "quiesce_deadline_ms")), 750);
	cr_assert_eq(json_integer_value(json_object_get(k, "io_lull_bps")), 10485760);
	cr_assert_eq(json_integer_value(json_object_get(k, "io_lull_wait_ms")), 5000);
	json_decref(o);
}

Test(db, quiesce_mode_names_parse_back)
{
	enum db_quiesce_mode mode;
	for (int i = DB_QUIESCE_BEST_EFFORT; i <= DB_QUIESCE_OFF; i++) {
		cr_assert_eq(db_quiesce_mode_parse(db_quiesce_mode_name(i), &mode), 0);
		cr_assert_eq((int)mode, i);
	}
	cr_assert_eq(db_quiesce_mode_parse("sometimes", &mode), -EINVAL);
	cr_assert_eq(db_quiesce_mode_parse(NULL, &mode), -EINVAL);
}

Test(db, host_crud)
{
	open_db();
	add_host("n1", 64 * GIB);
	add_host("n2", 0);
	struct db_host h = { .enabled = 1 };
	snprintf(h.name, sizeof(h.name), "n1");
	snprintf(h.uri, sizeof(h.uri), "sim:///other");
	cr_assert_eq(db_host_add(db, &h, 1), -EEXIST);
	cr_assert_eq(db_host_get(db, "n1", &h), 0);
	cr_assert_str_eq(h.uri, "sim:///n1");
	cr_assert_eq(h.memory_bytes, 64 * GIB);
	cr_assert_eq(db_host_set_enabled(db, "n1", 0), 0);
	cr_assert_eq(db_host_get(db, "n1", &h), 0);
	cr_assert_eq(h.enabled, 0);
	cr_assert_eq(db_host_set_enabled(db, "n9", 0), -ENOENT);
	int n = 0;
	cr_assert_eq(db_host_list(db, count_host, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(db_host_remove(db, "n2"), 0);
	cr_assert_eq(db_host_remove(db, "n2"), -ENOENT);
	cr_assert_eq(db_host_get(db, "n2", &h), -ENOENT);
}

Test(db, host_with_guests_cannot_be_removed)
{
	open_db();
	add_host("n1", 0);
	cr_assert_eq(add_guest("g1", "n1", GIB, NULL, -1), 0);
	cr_assert_eq(db_host_remove(db, "n1"), -EBUSY);
}

static int collect_names(void *arg, const struct db_guest *g)
{
	strcat(arg, g->name);
	strcat(arg, " ");
	return 0;
}

Test(db, guest_crud_jobs_and_host_usage)
{
	open_db();
	add_host("n1", 64 * GIB);
	add_host("n2", 64 * GIB);
	cr_assert_eq(add_guest("g1", "n1", 4 * GIB, "bt", 0), 0);
	cr_assert_eq(add_guest("g2", "n2", 8 * GIB, "bt", 1), 0);
	cr_assert_eq(add_guest("g3", "n1", 2 * GIB, NULL, -1), 0);
	cr_assert_eq(add_guest("g1", "n2", GIB, NULL, -1), -EEXIST, "name taken");
	cr_assert_eq(add_guest("g4", "n2", GIB, "bt", 1), -EEXIST, "rank taken");
	cr_assert_eq(add_guest("g5", "n9", GIB, NULL, -1), -ENOENT, "no such host");

	struct db_host h;
	cr_assert_eq(db_host_get(db, "n1", &h), 0);
	cr_assert_eq(h.memory_used_bytes, 6 * GIB);
	cr_assert_eq(h.n_guests, 2);

	char names[256] = "";
	cr_assert_eq(db_guest_list(db, "n1", NULL, collect_names, names), 0);
	cr_assert_str_eq(names, "g1 g3 ");
	names[0] = '\0';
	cr_assert_eq(db_guest_list(db, NULL, "bt", collect_names, names), 0);
	cr_assert_str_eq(names, "g1 g2 ");
	names[0] = '\0';
	cr_assert_eq(db_guest_scan(db, collect_names, names), 0);
	cr_assert_str_eq(names, "g1 g2 g3 ");

	cr_assert_eq(db_guest_set_host(db, "g1", "n2"), 0);
	cr_assert_eq(db_guest_set_host(db, "g1", "n9"), -ENOENT);
	cr_assert_eq(db_guest_set_host(db, "g9", "n1"), -ENOENT);
	struct db_guest g;
	cr_assert_eq(db_guest_get(db, "g1", &g), 0);
	cr_assert_str_eq(g.host, "n2");
	cr_assert_eq(g.rank, 0);
	cr_assert_eq(db_guest_get(db, "g3", &g), 0);
	cr_assert_eq(g.rank, -1);
	cr_assert_str_eq(g.job, "");
	cr_assert_eq(db_guest_remove(db, "g3"), 0);
	cr_assert_eq(db_guest_get(db, "g3", &g), -ENOENT);
}

/* ---- migrations ---- */

Test(db, migration_row_goes_through_its_life)
{
	open_db();
	add_host("n1", 0);
	add_host("n2", 0);
	cr_assert_eq(add_guest("g1", "n1", GIB, NULL, -1), 0);
	int64_t id = add_mig("g1", "n1", NULL, 2, 1000);
	struct db_migration m;
	cr_assert_eq(db_mig_active_for_guest(db, "g1", &m), 0);
	cr_assert_eq(m.id, id);
	cr_assert_eq(m.state, DB_MIG_QUEUED);
	cr_assert_eq(m.not_before_ns, 1000, "due when queued by default");
	cr_assert_eq(m.started_ns, 0);
	cr_assert_eq(m.total_ms, -1);
	struct db_guest g;
	cr_assert_eq(db_guest_get(db, "g1", &g), 0);
	cr_assert_eq(g.migration_id, id);

	snprintf(m.dst, sizeof(m.dst), "n2");
	m.state = DB_MIG_STARTED;
	m.started_ns = 2000;
	cr_assert_eq(db_mig_update(db, &m), 0);
	m.state = DB_MIG_MIGRATING;
	m.migrating_ns = 2500;
	cr_assert_eq(db_mig_update(db, &m), 0);
	cr_assert_eq(db_mig_last_start_ns(db), 2000);
	m.state = DB_MIG_COMPLETED;
	m.finished_ns = 40000;
	m.total_ms = 37338;
	m.downtime_ms = 230;
	m.bytes = 4666052470;
	m.rounds = 2;
	cr_assert_eq(db_mig_update(db, &m), 0);

	reopen();
	struct db_migration back;
	cr_assert_eq(db_mig_get(db, id, &back), 0);
	cr_assert_eq(back.state, DB_MIG_COMPLETED);
	cr_assert_str_eq(back.dst, "n2");
	cr_assert_eq(back.queued_ns, 1000);
	cr_assert_eq(back.started_ns, 2000);
	cr_assert_eq(back.migrating_ns, 2500);
	cr_assert_eq(back.finished_ns, 40000);
	cr_assert_eq(back.total_ms, 37338);
	cr_assert_eq(back.downtime_ms, 230);
	cr_assert_eq(back.bytes, 4666052470);
	cr_assert_eq(back.rounds, 2);
	cr_assert_eq(db_mig_active_for_guest(db, "g1", &back), -ENOENT);
	cr_assert_eq(db_mig_get(db, id + 1, &back), -ENOENT);
	m.id = id + 1;
	cr_assert_eq(db_mig_update(db, &m), -ENOENT);
}

Test(db, migration_json_has_nulls_for_what_is_unknown)
{
	open_db();
	struct db_migration m = { .id = 3, .state = DB_MIG_FAILED, .priority = 1,
				  .queued_ns = 5, .total_ms = -1, .downtime_ms = -1, .bytes = -1,
				  .rounds = -1, .reconciled = 1 };
	snprintf(m.guest, sizeof(m.guest), "g1");
	snprintf(m.src, sizeof(m.src), "n1");
	snprintf(m.error, sizeof(m.error), "interrupted by a migd restart");
	json_t *o = db_mig_json(&m);
	cr_assert_str_eq(json_string_value(json_object_get(o, "state")), "failed");
	cr_assert_str_eq(json_string_value(json_object_get(o, "priority")), "health");
	cr_assert(json_is_null(json_object_get(o, "dst")));
	cr_assert(json_is_null(json_object_get(o, "started_ns")));
	cr_assert(json_is_null(json_object_get(o, "total_ms")));
	cr_assert(json_is_true(json_object_get(o, "reconciled")));
	cr_assert_str_eq(json_string_value(json_object_get(o, "error")),
			 "interrupted by a migd restart");
	json_decref(o);
}

struct ids {
	int64_t id[64];
	size_t n;
};

static int collect_ids(void *arg, const struct db_migration *m)
{
	struct ids *ids = arg;
	ids->id[ids->n++] = m->id;
	return 0;
}

static void finish_mig(int64_t id, enum db_mig_state state, int64_t finished_ns)
{
	struct db_migration m;
	cr_assert_eq(db_mig_get(db, id, &m), 0);
	m.state = state;
	m.started_ns = finished_ns - 10;
	m.finished_ns = finished_ns;
	cr_assert_eq(db_mig_update(db, &m), 0);
}

Test(db, migration_lists_filter_and_order)
{
	open_db();
	add_host("n1", 0);
	for (int i = 0; i < 6; i++) {
		char name[16];
		snprintf(name, sizeof(name), "g%d", i);
		cr_assert_eq(add_guest(name, "n1", GIB, NULL, -1), 0);
	}
	int64_t a = add_mig("g0", "n1", "p1", 0, 100);
	int64_t b = add_mig("g1", "n1", NULL, 2, 200);
	int64_t c = add_mig("g2", "n1", "p1", 0, 300);
	int64_t d = add_mig("g3", "n1", NULL, 1, 400);
	int64_t e = add_mig("g4", "n1", "p1", 0, 500);
	finish_mig(c, DB_MIG_COMPLETED, 9000);
	finish_mig(a, DB_MIG_FAILED, 8000);
	finish_mig(e, DB_MIG_ABORTED, 7000);

	struct ids ids = { 0 };
	struct db_mig_filter f = { .states = DB_MIG_ACTIVE, .order = DB_ORDER_QUEUE };
	cr_assert_eq(db_mig_list(db, &f, collect_ids, &ids), 0);
	cr_assert_eq(ids.n, 2);
	cr_assert_eq(ids.id[0], b, "manual before health");
	cr_assert_eq(ids.id[1], d);

	ids.n = 0;
	f = (struct db_mig_filter){ .states = DB_MIG_FINISHED, .order = DB_ORDER_FINISHED };
	cr_assert_eq(db_mig_list(db, &f, collect_ids, &ids), 0);
	cr_assert_eq(ids.n, 3);
	cr_assert_eq(ids.id[0], e, "newest last");
	cr_assert_eq(ids.id[2], c);

	ids.n = 0;
	f.limit = 2;
	cr_assert_eq(db_mig_list(db, &f, collect_ids, &ids), 0);
	cr_assert_eq(ids.n, 2);
	cr_assert_eq(ids.id[0], a, "the last two, still oldest first");
	cr_assert_eq(ids.id[1], c);

	ids.n = 0;
	f = (struct db_mig_filter){ .states = DB_MIG_FINISHED, .since_ns = 8000, .policy = "p1" };
	cr_assert_eq(db_mig_list(db, &f, collect_ids, &ids), 0);
	cr_assert_eq(ids.n, 2);
	cr_assert_eq(ids.id[0], a);
	cr_assert_eq(ids.id[1], c);

	ids.n = 0;
	f = (struct db_mig_filter){ .policy = "" };
	cr_assert_eq(db_mig_list(db, &f, collect_ids, &ids), 0);
	cr_assert_eq(ids.n, 2, "manual ones");
}

Test(db, pages_follow_each_order_from_a_cursor)
{
	open_db();
	add_host("n1", 0);
	for (int i = 0; i < 5; i++) {
		char name[16];
		snprintf(name, sizeof(name), "g%d", i);
		cr_assert_eq(add_guest(name, "n1", GIB, NULL, -1), 0);
	}
	int64_t a = add_mig("g0", "n1", NULL, 0, 100);
	int64_t b = add_mig("g1", "n1", NULL, 2, 200);
	int64_t c = add_mig("g2", "n1", NULL, 0, 300);
	int64_t d = add_mig("g3", "n1", NULL, 1, 400);
	int64_t e = add_mig("g4", "n1", NULL, 2, 500);
	finish_mig(c, DB_MIG_COMPLETED, 9000);
	finish_mig(a, DB_MIG_FAILED, 8000);
	/* finished order: a (8000), c (9000); queue order: b, e (2), d (1) */
	struct { enum db_mig_order order; unsigned states; int64_t want[4]; } cases[] = {
		{ DB_ORDER_FINISHED, DB_MIG_FINISHED, { a, c, 0 } },
		{ DB_ORDER_QUEUE, DB_MIG_ACTIVE, { b, e, d, 0 } },
		{ DB_ORDER_ID, 0, { a, b, c, d } },
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		int64_t after = 0;
		for (int i = 0; i < 4 && cases[k].want[i]; i++) {
			struct ids ids = { 0 };
			struct db_mig_filter f = { .states = cases[k].states, .order = cases[k].order,
						   .page = 1, .after_id = after, .limit = 1 };
			cr_assert_eq(db_mig_list(db, &f, collect_ids, &ids), 0);
			cr_assert_eq(ids.n, 1, "order %d, page %d", cases[k].order, i);
			cr_assert_eq(ids.id[0], cases[k].want[i], "order %d, page %d", cases[k].order,
				     i);
			after = ids.id[0];
		}
		if (cases[k].order == DB_ORDER_ID)
			continue; /* e follows d there */
		struct ids ids = { 0 };
		struct db_mig_filter f = { .states = cases[k].states, .order = cases[k].order,
					   .page = 1, .after_id = after, .limit = 10 };
		cr_assert_eq(db_mig_list(db, &f, collect_ids, &ids), 0);
		cr_assert_eq(ids.n, 0, "order %d: nothing after the last", cases[k].order);
	}
}

static int collect_event(void *arg, json_t *ev)
{
	char *names = arg;
	snprintf(names + strlen(names), 256 - strlen(names), "%lld:%s ",
		 (long long)json_integer_value(json_object_get(ev, "event_id")),
		 json_string_value(json_object_get(ev, "type")));
	return 0;
}

Test(db, event_log_pages_by_id_and_type_prefix)
{
	open_db();
	const char *types[] = { "host.added", "guest.added", "host.disabled", "migration.queued" };
	for (int i = 0; i < 4; i++)
		cr_assert_eq(db_event(db, json_pack("{s:s, s:I, s:i}", "type", types[i], "ts_ns",
						    (json_int_t)(1000 + i), "id", 70 + i)), 0);
	json_decref(db_events_take(db));
	char got[256] = "";
	cr_assert_eq(db_event_page(db, 0, 2, NULL, collect_event, got), 0);
	cr_assert_str_eq(got, "1:host.added 2:guest.added ");
	got[0] = '\0';
	cr_assert_eq(db_event_page(db, 2, 10, NULL, collect_event, got), 0);
	cr_assert_str_eq(got, "3:host.disabled 4:migration.queued ");
	got[0] = '\0';
	cr_assert_eq(db_event_page(db, 0, 10, "host.", collect_event, got), 0);
	cr_assert_str_eq(got, "1:host.added 3:host.disabled ");
	got[0] = '\0';
	cr_assert_eq(db_event_page(db, 4, 10, NULL, collect_event, got), 0);
	cr_assert_str_eq(got, "");
}

Test(db, staggered_rows_fall_due_at_their_time)
{
	open_db();
	add_host("n1", 0);
	cr_assert_eq(add_guest("g1", "n1", GIB, NULL, -1), 0);
	cr_assert_eq(add_guest("g2", "n1", GIB, NULL, -1), 0);
	struct db_migration m = { .state = DB_MIG_QUEUED, .queued_ns = 100, .not_before_ns = 5000 };
	snprintf(m.guest, sizeof(m.guest), "g1");
	snprintf(m.src, sizeof(m.src), "n1");
	cr_assert_eq(db_mig_add(db, &m), 0);
	add_mig("g2", "n1", NULL, 0, 100);
	cr_assert_eq(db_mig_next_due_ns(db, 100), 5000);
	cr_assert_eq(db_mig_next_due_ns(db, 5000), 0);
	struct ids ids = { 0 };
	struct db_mig_filter f = { .states = DB_MIG_BIT(DB_MIG_QUEUED), .not_before_max_ns = 4999,
				   .with_ids = 1 };
	cr_assert_eq(db_mig_list(db, &f, collect_ids, &ids), 0);
	cr_assert_eq(ids.n, 1, "only the one already due");
}

Test(db, a_late_start_pushes_back_the_rest_of_its_firing)
{
	open_db();
	add_host("n1", 0);
	int64_t ids[4];
	for (int i = 0; i < 4; i++) {
		char name[16];
		snprintf(name, sizeof(name), "g%d", i);
		cr_assert_eq(add_guest(name, "n1", GIB, NULL, -1), 0);
		struct db_migration m = { .state = DB_MIG_QUEUED, .queued_ns = i < 3 ? 1000 : 999,
					  .not_before_ns = 1000 + 30 * (i % 3) };
		snprintf(m.guest, sizeof(m.guest), "%s", name);
		snprintf(m.src, sizeof(m.src), "n1");
		snprintf(m.policy, sizeof(m.policy), "p");
		cr_assert_eq(db_mig_add(db, &m), 0);
		ids[i] = m.id;
	}
	/* the first of the firing queued at 1000 started 7 late */
	cr_assert_eq(db_mig_delay_firing(db, "p", 1000, 1000, 7), 0);
	struct db_migration m;
	cr_assert_eq(db_mig_get(db, ids[0], &m), 0);
	cr_assert_eq(m.not_before_ns, 1000, "the late one itself");
	cr_assert_eq(db_mig_get(db, ids[1], &m), 0);
	cr_assert_eq(m.not_before_ns, 1037);
	cr_assert_eq(db_mig_get(db, ids[2], &m), 0);
	cr_assert_eq(m.not_before_ns, 1067);
	cr_assert_eq(db_mig_get(db, ids[3], &m), 0);
	cr_assert_eq(m.not_before_ns, 1000, "another firing");
}

static int check_ids(void *arg, const struct db_migration *m)
{
	cr_assert_gt(m->guest_id, 0);
	cr_assert_gt(m->src_id, 0);
	cr_assert_eq(m->dst_id, 0, "no destination chosen");
	return 0;
}

Test(db, lists_resolve_row_ids_when_asked)
{
	open_db();
	add_host("n1", 0);
	cr_assert_eq(add_guest("g1", "n1", GIB, NULL, -1), 0);
	add_mig("g1", "n1", NULL, 2, 100);
	struct db_mig_filter f = { .with_ids = 1 };
	cr_assert_eq(db_mig_list(db, &f, check_ids, NULL), 0);
	f.limit = 1;
	cr_assert_eq(db_mig_list(db, &f, check_ids, NULL), 0);
}

Test(db, many_rows_are_all_there_after_reopen)
{
	open_db();
	add_host("n1", 0);
	cr_assert_eq(add_guest("g1", "n1", GIB, NULL, -1), 0);
	cr_assert_eq(db_begin(db), 0);
	for (int i = 0; i < 500; i++) {
		int64_t id = add_mig("g1", "n1", i % 2 ? "p" : NULL, 0, 1000 + i);
		finish_mig(id, DB_MIG_COMPLETED, 2000 + i);
	}
	cr_assert_eq(db_commit(db), 0);
	reopen();
	struct db_counts c;
	cr_assert_eq(db_counts(db, &c), 0);
	struct db_mig_filter f = { .states = DB_MIG_BIT(DB_MIG_COMPLETED) };
	struct ids ids = { 0 };
	f.limit = 64;
	cr_assert_eq(db_mig_list(db, &f, collect_ids, &ids), 0);
	cr_assert_eq(ids.n, 64);
	cr_assert_eq(ids.id[63], 500);
	cr_assert_eq(ids.id[0], 437);
}

/* ---- transactions and events ---- */

Test(db, rollback_undoes_rows_and_drops_their_events)
{
	open_db();
	cr_assert_eq(db_begin(db), 0);
	add_host("n1", 0);
	cr_assert_eq(db_event(db, migd_event_new("host.added", 1)), 0);
	cr_assert_null(db_events_take(db), "nothing leaves before the commit");
	db_rollback(db);
	cr_assert_null(db_events_take(db));
	struct db_host h;
	cr_assert_eq(db_host_get(db, "n1", &h), -ENOENT);
}

Test(db, committed_events_leave_in_order_once)
{
	open_db();
	cr_assert_eq(db_begin(db), 0);
	cr_assert_eq(db_event(db, migd_event_new("a", 1)), 0);
	cr_assert_eq(db_event(db, migd_event_new("b", 2)), 0);
	cr_assert_eq(db_commit(db), 0);
	db_event_transient(db, migd_event_new("migration.progress", 3));
	json_t *evs = db_events_take(db);
	cr_assert_eq(json_array_size(evs), 3);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(evs, 0), "type")), "a");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(evs, 2), "type")),
			 "migration.progress");
	json_decref(evs);
	cr_assert_null(db_events_take(db));
	cr_assert_eq(db_event(db, migd_event_new("c", 4)), 0, "outside a transaction");
	evs = db_events_take(db);
	cr_assert_eq(json_array_size(evs), 1);
	json_decref(evs);
	/* logged: two plus one; the progress event is not */
	db_close(db);
	db = NULL;
	sqlite3 *h;
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(h, "SELECT COUNT(*) FROM events", -1, &st, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_int(st, 0), 3);
	sqlite3_finalize(st);
	sqlite3_close(h);
}

/* ---- policies ---- */

static int count_policy(void *arg, const struct db_policy *p)
{
	cr_assert_not_null(p->params);
	(*(int *)arg)++;
	return 0;
}

Test(db, policy_crud_keeps_its_schedule)
{
	open_db();
	struct db_policy p = { .created_ns = 10, .anchor_ns = 10, .next_fire_ns = 250,
			       .params = json_pack("{s:s, s:f}", "guests", "job:bt", "every_s", 240.0) };
	snprintf(p.name, sizeof(p.name), "every4m");
	snprintf(p.type, sizeof(p.type), "interval");
	cr_assert_eq(db_policy_add(db, &p), 0);
	cr_assert_eq(db_policy_add(db, &p), -EEXIST);
	p.last_fire_ns = 250;
	p.next_fire_ns = 490;
	p.cursor = 3;
	p.fired = 1;
	p.paused = 1;
	cr_assert_eq(db_policy_update(db, &p), 0);
	db_policy_clear(&p);
	reopen();
	struct db_policy back;
	cr_assert_eq(db_policy_get(db, "every4m", &back), 0);
	cr_assert_eq(back.paused, 1);
	cr_assert_eq(back.anchor_ns, 10);
	cr_assert_eq(back.last_fire_ns, 250);
	cr_assert_eq(back.next_fire_ns, 490);
	cr_assert_eq(back.cursor, 3);
	cr_assert_eq(back.fired, 1);
	cr_assert_str_eq(json_string_value(json_object_get(back.params, "guests")), "job:bt");
	db_policy_clear(&back);
	int n = 0;
	cr_assert_eq(db_policy_list(db, count_policy, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(db_policy_remove(db, "every4m"), 0);
	cr_assert_eq(db_policy_remove(db, "every4m"), -ENOENT);
	cr_assert_eq(db_policy_get(db, "every4m", &back), -ENOENT);
}

Test(db, names_are_checked)
{
	cr_assert_eq(db_name_check("n1"), 0);
	cr_assert_eq(db_name_check("rank-0.bt_x"), 0);
	cr_assert_eq(db_name_check(""), -EINVAL);
	cr_assert_eq(db_name_check("-n1"), -EINVAL);
	cr_assert_eq(db_name_check("a b"), -EINVAL);
	cr_assert_eq(db_name_check("a/b"), -EINVAL);
	char long_name[80];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	cr_assert_eq(db_name_check(long_name), -EINVAL);
	cr_assert_eq(db_name_check(NULL), -EINVAL);
}

/* ---- health (schema 4) ---- */

static void reading(const char *host, const char *sensor, int64_t ts, double v)
{
	struct db_reading r = { .ts_ns = ts, .has_value = 1, .value = v };
	snprintf(r.host, sizeof(r.host), "%s", host);
	snprintf(r.sensor, sizeof(r.sensor), "%s", sensor);
	snprintf(r.unit, sizeof(r.unit), "C");
	snprintf(r.source, sizeof(r.source), "hook");
	for (int i = 0; i < 6; i++)
		r.threshold[i] = i == 4 ? 95 : 0.0 / 0.0;
	cr_assert_eq(db_reading_add(db, &r), 0);
}

struct seen {
	int n;
	double last_value;
	int64_t last_ts;
	double ucr;
};

static int see(void *arg, const struct db_reading *r)
{
	struct seen *s = arg;
	s->n++;
	s->last_value = r->value;
	s->last_ts = r->ts_ns;
	s->ucr = r->threshold[4];
	return 0;
}

static int see_rule(void *arg, const struct db_health_rule *r)
{
	struct seen *s = arg;
	s->n++;
	s->last_value = r->value;
	return 0;
}

Test(db, health_readings_rules_and_host_state)
{
	open_db();
	add_host("n1", 0);
	reading("n1", "CPU1 Temp", 100, 50);
	reading("n1", "CPU1 Temp", 200, 60);
	reading("n1", "FAN1", 150, 3000);
	reading("n2", "CPU1 Temp", 300, 70);
	struct seen s = { 0 };
	cr_assert_eq(db_reading_latest(db, "n1", see, &s), 0);
	cr_assert_eq(s.n, 2, "one per sensor");
	s = (struct seen){ 0 };
	cr_assert_eq(db_reading_latest(db, NULL, see, &s), 0);
	cr_assert_eq(s.n, 3, "one per host and sensor");
	s = (struct seen){ 0 };
	cr_assert_eq(db_reading_history(db, "n1", "CPU1 Temp", 0, see, &s), 0);
	cr_assert_eq(s.n, 2);
	cr_assert_float_eq(s.last_value, 60, 1e-9);
	cr_assert_float_eq(s.ucr, 95, 1e-9, "thresholds kept");
	cr_assert_eq(db_reading_prune(db, 1000), 0);
	s = (struct seen){ 0 };
	cr_assert_eq(db_reading_history(db, "n1", "CPU1 Temp", 0, see, &s), 0);
	cr_assert_eq(s.n, 1, "pruning keeps each sensor's latest");
	cr_assert_eq(s.last_ts, 200);

	struct db_health_rule r = { .value = 90, .clear_after_ns = 60000000000LL };
	snprintf(r.name, sizeof(r.name), "hot");
	snprintf(r.sensor, sizeof(r.sensor), "CPU* Temp");
	snprintf(r.kind, sizeof(r.kind), "above");
	cr_assert_eq(db_rule_add(db, &r), 0);
	cr_assert_eq(db_rule_add(db, &r), -EEXIST);
	reopen();
	s = (struct seen){ 0 };
	cr_assert_eq(db_rule_list(db, see_rule, &s), 0);
	cr_assert_eq(s.n, 1);
	cr_assert_eq(db_rule_remove(db, "hot"), 0);
	cr_assert_eq(db_rule_remove(db, "hot"), -ENOENT);

	cr_assert_eq(db_host_set_health(db, "n1", "degraded", "CPU1 Temp 96 C > 95 C", 500), 0);
	struct db_host h;
	cr_assert_eq(db_host_get(db, "n1", &h), 0);
	cr_assert_str_eq(h.health, "degraded");
	cr_assert_str_eq(h.health_reason, "CPU1 Temp 96 C > 95 C");
	cr_assert_eq(h.health_since_ns, 500);
	cr_assert_eq(db_host_set_health(db, "n1", "ok", "", 0), 0);
	cr_assert_eq(db_host_get(db, "n1", &h), 0);
	cr_assert_str_eq(h.health_reason, "");
	cr_assert_eq(db_host_set_health(db, "n9", "ok", "", 0), -ENOENT);
}
