/*
 * calibrate: the fit recovers the parameters of migrations the pre-copy
 * model itself produced (link rate, dirty rate, round-0 RAM, switch-over),
 * from measured figures and, where a row has none, by derivation; medians
 * ignore an outlier; hosts get the fastest of their directions; predictions
 * reproduce the model's figures and use a direction's own rate; the JSON
 * has the contract's keys. And the database side, on real SQLite: schema
 * v5's figures round-trip, and a version 4 database is upgraded with its
 * rows kept (their new figures unknown).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "calibrate.h"
#include "db.h"
#include "hv_sim.h"
#include "precopy.h"

#define MIB (1024.0 * 1024.0)
#define GBIT 125e6

static void within(double got, double want, double rel, const char *what)
{
	cr_assert(fabs(got - want) <= rel * fabs(want), "%s: got %.6g, want %.6g (within %g%%)",
		  what, got, want, rel * 100);
}

/* A completed migration as the sim would record it: the model run at
 * link_bps with the sim's switch-over; measured figures only when asked. */
static struct calib_row model_row(const char *guest, const char *src, const char *dst,
				  double memory, double dirty, double link_bps, int measured)
{
	struct precopy_params pp = { .memory_bytes = (uint64_t)memory, .dirty_rate_bps = dirty,
				     .switchover_s = HV_SIM_SWITCHOVER_S };
	struct precopy_result r;
	cr_assert_eq(precopy_estimate(&pp, link_bps, &r), 0);
	cr_assert(r.converged, "test parameters must converge");
	struct calib_row row = {
		.total_ms = llround(r.total_s * 1000), .downtime_ms = llround(r.downtime_s * 1000),
		.bytes = llround(r.bytes_sent), .link_bps = -1, .dirty_rate_bps = -1,
		.ram_bytes = -1, .setup_ms = -1, .memory_bytes = (uint64_t)memory,
	};
	if (measured) {
		row.link_bps = llround(r.bytes_sent / (r.total_s - HV_SIM_SWITCHOVER_S));
		row.dirty_rate_bps = llround(dirty);
		row.ram_bytes = llround(memory);
	}
	snprintf(row.guest, sizeof(row.guest), "%s", guest);
	snprintf(row.src, sizeof(row.src), "%s", src);
	snprintf(row.dst, sizeof(row.dst), "%s", dst);
	return row;
}

static const struct calib_guest *guest_of(const struct calib *c, const char *name)
{
	for (size_t i = 0; i < c->n_guests; i++)
		if (strcmp(c->guests[i].name, name) == 0)
			return &c->guests[i];
	cr_assert_fail("guest %s not in the model", name);
	return NULL;
}

static const struct calib_host *host_of(const struct calib *c, const char *name)
{
	for (size_t i = 0; i < c->n_hosts; i++)
		if (strcmp(c->hosts[i].name, name) == 0)
			return &c->hosts[i];
	cr_assert_fail("host %s not in the model", name);
	return NULL;
}

Test(calibrate, median_of_odd_even_and_no_values)
{
	double odd[] = { 5, 1, 3 }, even[] = { 4, 1, 3, 2 };
	cr_assert_eq(calib_median(odd, 3), 3);
	cr_assert_eq(calib_median(even, 4), 2.5);
	cr_assert_eq(calib_median(NULL, 0), 0);
}

Test(calibrate, measured_rows_give_back_their_parameters)
{
	struct calib_row rows[] = {
		model_row("g1", "n1", "n2", 2048 * MIB, 16 * MIB, GBIT, 1),
		model_row("g1", "n2", "n1", 2048 * MIB, 16 * MIB, GBIT, 1),
		model_row("g2", "n1", "n2", 1024 * MIB, 40 * MIB, GBIT, 1),
	};
	struct calib *c;
	cr_assert_eq(calib_fit(rows, 3, 0, &c), 0);
	cr_assert_eq(c->migrations, 3);
	within(c->link_bps, GBIT, 0.001, "overall link");
	within(guest_of(c, "g1")->dirty_rate_bps, 16 * MIB, 0.001, "g1 dirty rate");
	within(guest_of(c, "g2")->dirty_rate_bps, 40 * MIB, 0.001, "g2 dirty rate");
	within(guest_of(c, "g2")->ram_bytes, 1024 * MIB, 0.001, "g2 round-0 RAM");
	within(c->switchover_ms, HV_SIM_SWITCHOVER_S * 1000, 0.2, "switch-over");
	cr_assert_str_eq(guest_of(c, "g1")->host, "n1", "g1's last migration left it on n1");
	cr_assert_eq(guest_of(c, "g1")->migrations, 2);
	calib_free(c);
}

Test(calibrate, unmeasured_rows_are_derived_through_the_model)
{
	/* no link, dirty rate or round-0 figure: only totals, bytes, memory */
	struct calib_row rows[] = {
		model_row("g1", "n1", "n2", 2048 * MIB, 16 * MIB, GBIT, 0),
		model_row("g2", "n1", "n3", 1024 * MIB, 24 * MIB, GBIT / 2, 0),
		model_row("g3", "n3", "n1", 4096 * MIB, 4 * MIB, GBIT / 2, 0),
	};
	struct calib *c;
	cr_assert_eq(calib_fit(rows, 3, 0, &c), 0);
	within(guest_of(c, "g1")->dirty_rate_bps, 16 * MIB, 0.02, "g1 dirty rate (derived)");
	within(guest_of(c, "g2")->dirty_rate_bps, 24 * MIB, 0.02, "g2 dirty rate (derived)");
	within(guest_of(c, "g3")->dirty_rate_bps, 4 * MIB, 0.02, "g3 dirty rate (derived)");
	/* bytes over the whole time, switch-over included: a hair low */
	within(c->links[0].link_bps, GBIT, 0.01, "n1 -> n2 (derived)");
	within(c->links[1].link_bps, GBIT / 2, 0.01, "n1 -> n3 (derived)");
	within(c->switchover_ms, HV_SIM_SWITCHOVER_S * 1000, 0.5, "switch-over (derived)");
	calib_free(c);
}

Test(calibrate, one_outlier_does_not_move_the_medians)
{
	struct calib_row rows[5];
	for (int i = 0; i < 4; i++)
		rows[i] = model_row("g1", "n1", "n2", 1024 * MIB, 8 * MIB, GBIT, 1);
	/* one that shared its link with another and met a busy guest */
	rows[4] = model_row("g1", "n1", "n2", 1024 * MIB, 24 * MIB, GBIT / 2, 1);
	struct calib *c;
	cr_assert_eq(calib_fit(rows, 5, 0, &c), 0);
	within(c->links[0].link_bps, GBIT, 0.001, "n1 -> n2");
	within(guest_of(c, "g1")->dirty_rate_bps, 8 * MIB, 0.001, "g1 dirty rate");
	within(guest_of(c, "g1")->total_ms, (double)rows[0].total_ms, 0.001, "g1 total");
	calib_free(c);
}

Test(calibrate, rows_without_figures_are_skipped)
{
	struct calib_row rows[2] = { model_row("g1", "n1", "n2", 1024 * MIB, 8 * MIB, GBIT, 1) };
	rows[1] = rows[0];
	rows[1].total_ms = -1; /* reconciled after a crash: no figures */
	rows[1].bytes = -1;
	struct calib *c;
	cr_assert_eq(calib_fit(rows, 2, 0, &c), 0);
	cr_assert_eq(c->migrations, 1);
	calib_free(c);
	cr_assert_eq(calib_fit(NULL, 0, 0, &c), 0);
	cr_assert_eq(c->migrations, 0);
	cr_assert_eq(c->n_guests + c->n_links + c->n_hosts, 0);
	calib_free(c);
}

Test(calibrate, a_host_runs_at_its_fastest_direction)
{
	/* n3 is the slow end: n1 -> n2 fast, n1 -> n3 and n3 -> n2 slow */
	struct calib_row rows[] = {
		model_row("g1", "n1", "n2", 512 * MIB, 4 * MIB, GBIT, 1),
		model_row("g2", "n1", "n3", 512 * MIB, 4 * MIB, GBIT / 10, 1),
		model_row("g3", "n3", "n2", 512 * MIB, 4 * MIB, GBIT / 10, 1),
	};
	struct calib *c;
	cr_assert_eq(calib_fit(rows, 3, 0, &c), 0);
	within(host_of(c, "n1")->link_bps, GBIT, 0.001, "n1");
	within(host_of(c, "n2")->link_bps, GBIT, 0.001, "n2");
	within(host_of(c, "n3")->link_bps, GBIT / 10, 0.001, "n3");
	calib_free(c);
}

Test(calibrate, prediction_reproduces_the_model)
{
	struct calib_row rows[] = {
		model_row("g1", "n1", "n2", 2048 * MIB, 16 * MIB, GBIT, 0),
		model_row("g1", "n2", "n1", 2048 * MIB, 16 * MIB, GBIT, 0),
		model_row("g2", "n1", "n3", 1024 * MIB, 4 * MIB, GBIT / 2, 0),
	};
	struct calib *c;
	char err[256];
	struct hv_progress p;
	cr_assert_eq(calib_fit(rows, 3, 0, &c), 0);
	cr_assert_eq(calib_predict(c, "g1", "n1", "n2", NULL, &p, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(p.state, HV_MIG_COMPLETED);
	within((double)p.total_time_ms, (double)rows[0].total_ms, 0.02, "g1 n1 -> n2 total");
	within((double)p.transferred_bytes, (double)rows[0].bytes, 0.02, "g1 bytes");
	/* no history n3 -> n2: the slower host, n3 at half a gigabit */
	cr_assert_eq(calib_predict(c, "g2", "n3", "n2", NULL, &p, err, sizeof(err)), 0, "%s", err);
	within((double)p.total_time_ms, (double)rows[2].total_ms, 0.02, "g2 n3 -> n2 total");
	/* a host the history never saw counts at the overall median */
	cr_assert_eq(calib_predict(c, "g1", "n1", "n9", NULL, &p, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(calib_predict(c, "gx", "n1", "n2", NULL, &p, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "gx"), "the message names the guest: %s", err);
	calib_free(c);
}

Test(calibrate, a_guest_that_would_not_converge_is_predicted_failed)
{
	struct calib_row rows[] = { model_row("g1", "n1", "n2", 1024 * MIB, 8 * MIB, GBIT, 1) };
	rows[0].dirty_rate_bps = llround(GBIT * 2); /* dirties faster than the link */
	struct calib *c;
	char err[256];
	struct hv_progress p;
	cr_assert_eq(calib_fit(rows, 1, 0, &c), 0);
	cr_assert_eq(calib_predict(c, "g1", "n1", "n2", NULL, &p, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(p.state, HV_MIG_FAILED);
	cr_assert(strstr(p.error, "converge"), "%s", p.error);
	calib_free(c);
}

Test(calibrate, json_has_the_contract_keys)
{
	struct calib_row rows[] = { model_row("g1", "n1", "n2", 1024 * MIB, 8 * MIB, GBIT, 1) };
	struct calib *c;
	cr_assert_eq(calib_fit(rows, 1, 0, &c), 0);
	json_t *j = calib_json(c);
	static const char *const top[] = { "migrations", "link_bps", "links", "guests",
					   "switchover_ms", "sim" };
	for (size_t i = 0; i < sizeof(top) / sizeof(*top); i++)
		cr_assert(json_object_get(j, top[i]), "key %s", top[i]);
	json_t *l = json_array_get(json_object_get(j, "links"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(l, "src")), "n1");
	cr_assert_eq(json_integer_value(json_object_get(l, "link_bps")), 125000000);
	json_t *g = json_array_get(json_object_get(j, "guests"), 0);
	static const char *const gk[] = { "name", "memory_bytes", "ram_bytes", "dirty_rate_bps",
					  "migrations", "total_ms", "downtime_ms" };
	for (size_t i = 0; i < sizeof(gk) / sizeof(*gk); i++)
		cr_assert(json_object_get(g, gk[i]), "guest key %s", gk[i]);
	json_t *sim = json_object_get(j, "sim");
	json_t *sh = json_array_get(json_object_get(sim, "hosts"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(sh, "uri")),
			 "sim:///n1?link=1000000000bit");
	json_t *sg = json_array_get(json_object_get(sim, "guests"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(sg, "memory")), "1073741824");
	cr_assert_str_eq(json_string_value(json_object_get(sg, "dirty_rate")), "8388608/s");
	/* the twin's URI parses back to the same rate */
	struct hv_sim_uri u;
	char err[256];
	cr_assert_eq(hv_sim_parse_uri(json_string_value(json_object_get(sh, "uri")), &u, err,
				      sizeof(err)), 0, "%s", err);
	within(u.link_bps, GBIT, 1e-9, "twin URI rate");
	json_decref(j);
	calib_free(c);
}

/* ---- schema v5 on real SQLite ---- */

static char path[128];

static void db_files_remove(void)
{
	char p[160];
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

static void db_setup(void)
{
	snprintf(path, sizeof(path), "/tmp/test_calibrate_%d.db", (int)getpid());
	db_files_remove();
}

/* A completed migration row of g1 n1 -> n2 with the given figures. */
static int64_t add_completed(struct db *db, int64_t link_bps, int64_t ram_bytes)
{
	struct db_migration m = { .state = DB_MIG_QUEUED, .queued_ns = 1000 };
	snprintf(m.guest, sizeof(m.guest), "g1");
	snprintf(m.src, sizeof(m.src), "n1");
	db_mig_figures_unknown(&m);
	cr_assert_eq(db_mig_add(db, &m), 0);
	snprintf(m.dst, sizeof(m.dst), "n2");
	m.state = DB_MIG_COMPLETED;
	m.finished_ns = 5000;
	m.total_ms = 1234;
	m.downtime_ms = 56;
	m.bytes = 789;
	m.rounds = 3;
	m.link_bps = link_bps;
	m.dirty_rate_bps = 4096;
	m.ram_bytes = ram_bytes;
	m.setup_ms = 7;
	cr_assert_eq(db_mig_update(db, &m), 0);
	return m.id;
}

TestSuite(calibrate_db, .init = db_setup, .fini = db_files_remove);

Test(calibrate_db, v5_figures_round_trip_and_show_in_json)
{
	struct db *db;
	char err[256];
	struct db_migration m;
	cr_assert_eq(db_open(path, &db, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(db_schema_version(db), DB_SCHEMA_VERSION);
	int64_t id = add_completed(db, 125000000, 1 << 30);
	cr_assert_eq(db_mig_get(db, id, &m), 0);
	cr_assert_eq(m.link_bps, 125000000);
	cr_assert_eq(m.dirty_rate_bps, 4096);
	cr_assert_eq(m.ram_bytes, 1 << 30);
	cr_assert_eq(m.setup_ms, 7);
	json_t *j = db_mig_json(&m);
	cr_assert_eq(json_integer_value(json_object_get(j, "link_bps")), 125000000);
	cr_assert_eq(json_integer_value(json_object_get(j, "dirty_rate_bps")), 4096);
	cr_assert_eq(json_integer_value(json_object_get(j, "ram_bytes")), 1 << 30);
	cr_assert_eq(json_integer_value(json_object_get(j, "setup_ms")), 7);
	json_decref(j);
	/* unknown is null, not 0 */
	int64_t id2 = add_completed(db, -1, -1);
	cr_assert_eq(db_mig_get(db, id2, &m), 0);
	cr_assert_eq(m.link_bps, -1);
	j = db_mig_json(&m);
	cr_assert(json_is_null(json_object_get(j, "link_bps")));
	cr_assert(json_is_null(json_object_get(j, "ram_bytes")));
	json_decref(j);
	db_close(db);
}

Test(calibrate_db, version_4_database_is_upgraded_with_its_rows)
{
	struct db *db;
	char err[256];
	struct db_migration m;
	sqlite3 *h;
	/* a current file with one row, taken back to version 4's shape */
	cr_assert_eq(db_open(path, &db, err, sizeof(err)), 0, "%s", err);
	int64_t id = add_completed(db, 125000000, 1 << 30);
	db_close(db);
	cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(h,
				  "DROP INDEX migrations_queue;"
				  "DROP INDEX guests_agent_key;"
				  "ALTER TABLE guests DROP COLUMN agent_key;"
				  "DROP TABLE checkpoints;"
				  "DROP TABLE restores;"
				  "ALTER TABLE jobs DROP COLUMN data_path;"
				  "ALTER TABLE migrations DROP COLUMN link_bps;"
				  "ALTER TABLE migrations DROP COLUMN dirty_rate_bps;"
				  "ALTER TABLE migrations DROP COLUMN ram_bytes;"
				  "ALTER TABLE migrations DROP COLUMN setup_ms;"
				  "PRAGMA user_version = 4;",
				  NULL, NULL, NULL),
		     SQLITE_OK, "%s", sqlite3_errmsg(h));
	sqlite3_close(h);

	cr_assert_eq(db_open(path, &db, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(db_schema_version(db), DB_SCHEMA_VERSION);
	cr_assert_eq(db_mig_get(db, id, &m), 0, "the version 4 row is still there");
	cr_assert_str_eq(m.guest, "g1");
	cr_assert_eq(m.state, DB_MIG_COMPLETED);
	cr_assert_eq(m.total_ms, 1234);
	cr_assert_eq(m.downtime_ms, 56);
	cr_assert_eq(m.bytes, 789);
	cr_assert_eq(m.link_bps, -1, "nothing was measured for it");
	cr_assert_eq(m.dirty_rate_bps, -1);
	cr_assert_eq(m.ram_bytes, -1);
	cr_assert_eq(m.setup_ms, -1);
	/* and the upgraded row takes figures like a new one */
	m.dirty_rate_bps = 9;
	cr_assert_eq(db_mig_update(db, &m), 0);
	cr_assert_eq(db_mig_get(db, id, &m), 0);
	cr_assert_eq(m.dirty_rate_bps, 9);
	db_close(db);
}
