/*
 * db: see db.h. Statements are prepared once and cached by the address of
 * their (static) SQL text; lists run a callback per row so that 10,000
 * guests never sit in one array here. Timestamps that were not reached and
 * figures that are unknown are stored as NULL, so SQL aggregates skip them.
 */
#include "db.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "db_internal.h"
#include "log.h"
#include "util.h"

/* ---- schema: one step per version, applied in order ------------------ */

/* Version 1: the first schema migd shipped. Kept verbatim: databases in the
 * field were created by it, and every fresh one still starts here. */
static const char schema_v1[] =
	"CREATE TABLE hosts ("
	" id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, uri TEXT NOT NULL,"
	" max_outbound INTEGER NOT NULL DEFAULT 0, max_inbound INTEGER NOT NULL DEFAULT 0,"
	" memory_bytes INTEGER NOT NULL DEFAULT 0, enabled INTEGER NOT NULL DEFAULT 1,"
	" added_ns INTEGER NOT NULL);"
	"CREATE TABLE jobs (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
	"CREATE TABLE guests ("
	" id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	" host_id INTEGER NOT NULL REFERENCES hosts(id),"
	" memory_bytes INTEGER NOT NULL, dirty_rate_bps INTEGER NOT NULL DEFAULT 0,"
	" job_id INTEGER REFERENCES jobs(id), rank INTEGER, added_ns INTEGER NOT NULL);"
	"CREATE INDEX guests_host ON guests(host_id);"
	"CREATE UNIQUE INDEX guests_job_rank ON guests(job_id, rank);"
	"CREATE TABLE policies ("
	" id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, type TEXT NOT NULL,"
	" params TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'active',"
	" last_fire_ns INTEGER, created_ns INTEGER NOT NULL);"
	"CREATE TABLE migrations ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, guest TEXT NOT NULL, src TEXT NOT NULL,"
	" dst TEXT, state TEXT NOT NULL, priority INTEGER NOT NULL, policy TEXT, reason TEXT,"
	" queued_ns INTEGER NOT NULL, started_ns INTEGER, migrating_ns INTEGER,"
	" finished_ns INTEGER, total_ms INTEGER, downtime_ms INTEGER, bytes INTEGER,"
	" error TEXT);"
	"CREATE INDEX migrations_state ON migrations(state);"
	"CREATE TABLE events ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ns INTEGER NOT NULL, type TEXT NOT NULL,"
	" body TEXT NOT NULL);";

/* Version 2: staggered policy starts need a not-before time that survives a
 * restart; reconciled rows must say so; hosts get a health state for the
 * health policies; policies keep their whole schedule (anchor of the
 * period grid, next fire, round-robin cursor, times fired) so a restart
 * continues it. Existing rows are carried over: a queued row was due when
 * queued, a policy's grid starts at its creation and it fires next one
 * period after its last firing, and its count is the number of distinct
 * times it queued migrations. */
static const char schema_v2[] =
	"ALTER TABLE hosts ADD COLUMN health TEXT NOT NULL DEFAULT 'ok';"
	"ALTER TABLE migrations ADD COLUMN not_before_ns INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE migrations ADD COLUMN rounds INTEGER;"
	"ALTER TABLE migrations ADD COLUMN reconciled INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE policies ADD COLUMN anchor_ns INTEGER;"
	"ALTER TABLE policies ADD COLUMN next_fire_ns INTEGER;"
	"ALTER TABLE policies ADD COLUMN cursor INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE policies ADD COLUMN fired INTEGER NOT NULL DEFAULT 0;"
	"UPDATE migrations SET not_before_ns = queued_ns;"
	"UPDATE policies SET anchor_ns = created_ns;"
	"UPDATE policies SET next_fire_ns = last_fire_ns +"
	" CAST(json_extract(params, '$.every_s') * 1e9 AS INTEGER)"
	" WHERE last_fire_ns IS NOT NULL AND json_valid(params);"
	"UPDATE policies SET fired = (SELECT COUNT(DISTINCT queued_ns) FROM migrations m"
	" WHERE m.policy = policies.name);"
	"CREATE INDEX migrations_guest ON migrations(guest, state);"
	"CREATE INDEX migrations_finished ON migrations(finished_ns);"
	"CREATE INDEX events_ts ON events(ts_ns);";

/* Version 3: the migagent issue. Each migration carries the knobs it runs
 * with (quiesce mode, deadline, what a missed deadline does, the I/O lull
 * threshold and how long to wait for it), fixed when it is queued so a
 * restart keeps them, and its agent-side cost: when quiesce began and how
 * long it and the resume took (real ms, the agent's clock), what was
 * drained, the outcome of each, how long it waited for an I/O lull and why,
 * and how often a required quiesce deferred it. Queued rows get the
 * defaults of that release (best-effort, 2 s, defer, no lull wait);
 * finished rows keep NULLs: nothing was recorded for them. */
static const char schema_v3[] =
	"ALTER TABLE migrations ADD COLUMN quiesce_mode TEXT;"
	"ALTER TABLE migrations ADD COLUMN quiesce_deadline_ms INTEGER;"
	"ALTER TABLE migrations ADD COLUMN on_quiesce_miss TEXT;"
	"ALTER TABLE migrations ADD COLUMN io_lull_bps INTEGER;"
	"ALTER TABLE migrations ADD COLUMN io_lull_wait_ms INTEGER;"
	"ALTER TABLE migrations ADD COLUMN quiesce_ns INTEGER;"
	"ALTER TABLE migrations ADD COLUMN quiesce_ms INTEGER;"
	"ALTER TABLE migrations ADD COLUMN resume_ns INTEGER;"
	"ALTER TABLE migrations ADD COLUMN resume_ms INTEGER;"
	"ALTER TABLE migrations ADD COLUMN drained_requests INTEGER;"
	"ALTER TABLE migrations ADD COLUMN drained_bytes INTEGER;"
	"ALTER TABLE migrations ADD COLUMN quiesce TEXT;"
	"ALTER TABLE migrations ADD COLUMN resume TEXT;"
	"ALTER TABLE migrations ADD COLUMN lull_wait_ms INTEGER;"
	"ALTER TABLE migrations ADD COLUMN lull_reason TEXT;"
	"ALTER TABLE migrations ADD COLUMN defers INTEGER NOT NULL DEFAULT 0;"
	"UPDATE migrations SET quiesce_mode = 'best-effort', quiesce_deadline_ms = 2000,"
	" on_quiesce_miss = 'defer', io_lull_bps = 0, io_lull_wait_ms = 30000"
	" WHERE state IN ('queued', 'started', 'migrating');";

/* Version 4: health input and fault tolerance. Hosts say why they are
 * degraded and since when, and may carry a health hook (a command migd runs
 * for sensor readings) with its own interval and timeout; readings and the
 * rules that judge them get tables of their own; an mtbf policy keeps the
 * cost it last measured. */
static const char schema_v4[] =
	"ALTER TABLE hosts ADD COLUMN health_reason TEXT;"
	"ALTER TABLE hosts ADD COLUMN health_since_ns INTEGER;"
	"ALTER TABLE hosts ADD COLUMN health_hook TEXT;"
	"ALTER TABLE hosts ADD COLUMN health_interval_ns INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE hosts ADD COLUMN health_timeout_ns INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE policies ADD COLUMN cost_ns INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE health_readings ("
	" id INTEGER PRIMARY KEY, host TEXT NOT NULL, sensor TEXT NOT NULL,"
	" ts_ns INTEGER NOT NULL, value REAL, unit TEXT, status TEXT,"
	" lnr REAL, lcr REAL, lnc REAL, unc REAL, ucr REAL, unr REAL, source TEXT NOT NULL);"
	"CREATE INDEX health_readings_sensor ON health_readings(host, sensor, ts_ns);"
	"CREATE TABLE health_rules ("
	" id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, sensor TEXT NOT NULL,"
	" kind TEXT NOT NULL, value REAL NOT NULL, within_ns INTEGER, clear REAL,"
	" clear_after_ns INTEGER NOT NULL DEFAULT 0, created_ns INTEGER NOT NULL);";

/* Version 5: the figures the cost model is calibrated from (calibrate.h):
 * the throughput the hypervisor measured, the guest's dirty rate, the RAM
 * content of round 0 and the setup time. Older rows keep NULLs: nothing was
 * measured for them. */
static const char schema_v5[] =
	"ALTER TABLE migrations ADD COLUMN link_bps INTEGER;"
	"ALTER TABLE migrations ADD COLUMN dirty_rate_bps INTEGER;"
	"ALTER TABLE migrations ADD COLUMN ram_bytes INTEGER;"
	"ALTER TABLE migrations ADD COLUMN setup_ms INTEGER;";

/* Version 6: checkpoints and restores (db_ckpt.h) and a job's data path
 * (the sfs directory its checkpoints snapshot). */
static const char schema_v6[] =
	"ALTER TABLE jobs ADD COLUMN data_path TEXT;"
	"CREATE TABLE checkpoints ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, state TEXT NOT NULL,"
	" policy TEXT, reason TEXT, requested_ns INTEGER NOT NULL, ended_ns INTEGER,"
	" snapshot TEXT, error TEXT, body TEXT NOT NULL);"
	"CREATE INDEX checkpoints_job ON checkpoints(job, id);"
	"CREATE TABLE restores ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, checkpoint_id INTEGER NOT NULL,"
	" job TEXT NOT NULL, state TEXT NOT NULL, reason TEXT, requested_ns INTEGER NOT NULL,"
	" ended_ns INTEGER, error TEXT, body TEXT NOT NULL);";

/* Version 7: each guest's agent key (CURVE public key, Z85): the one key
 * whose agent may report for and act on that guest (db_keys.c). */
static const char schema_v7[] =
	"ALTER TABLE guests ADD COLUMN agent_key TEXT;"
	"CREATE INDEX guests_agent_key ON guests(agent_key);";

/* Version 8: the queue in the planner's order. A planning round reads the
 * head of the due queue (snapshot.c); by migrations_state alone SQLite read
 * and sorted every queued row for it (4.5 ms a round with 8,400 queued,
 * most of a round's cost at 100,000 guests); this index gives the order. */
static const char schema_v8[] =
	"CREATE INDEX IF NOT EXISTS migrations_queue ON migrations(state, priority DESC, id);";

static const struct schema_step {
	int version;
	const char *what;
	const char *sql;
} schema_steps[] = {
	{ 1, "hosts, guests, jobs, policies, migrations, events", schema_v1 },
	{ 2, "staggered starts, reconciled rows, host health, policy schedule", schema_v2 },
	{ 3, "quiesce and I/O lull knobs and costs per migration", schema_v3 },
	{ 4, "health readings and rules, host health reasons and hooks, mtbf cost", schema_v4 },
	{ 5, "link rate, dirty rate, round-0 RAM and setup time per migration", schema_v5 },
	{ 6, "checkpoints, restores and job data paths", schema_v6 },
	{ 7, "agent keys of guests", schema_v7 },
	{ 8, "the queue's planning order as an index", schema_v8 },
};

/* ---- small helpers ---------------------------------------------------- */

int db_fail(struct db *db, const char *what)
{
	log_warnx("database: %s: %s", what, sqlite3_errmsg(db->h));
	return -EIO;
}

/* The cached statement for sql (a static string), reset and unbound. */
sqlite3_stmt *prep(struct db *db, const char *sql)
{
	for (size_t i = 0; i < db->n_cache; i++) {
		if (db->cache[i].sql == sql) {
			sqlite3_reset(db->cache[i].st);
			sqlite3_clear_bindings(db->cache[i].st);
			return db->cache[i].st;
		}
	}
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
		db_fail(db, sql);
		return NULL;
	}
	if (db->n_cache == STMT_CACHE) { /* more statements than this file has: a bug */
		log_warnx("database: statement cache full");
		sqlite3_finalize(st);
		return NULL;
	}
	db->cache[db->n_cache].sql = sql;
	db->cache[db->n_cache++].st = st;
	return st;
}

/* Map a failed step to an errno: constraints are the caller's business. */
static int step_error(struct db *db, int rc, const char *what)
{
	if ((rc & 0xff) != SQLITE_CONSTRAINT)
		return db_fail(db, what);
	int ext = sqlite3_extended_errcode(db->h);
	if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
		return -EEXIST;
	if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
		return -EBUSY;
	return db_fail(db, what);
}

/* Run a statement that returns no rows. */
int step_done(struct db *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_DONE ? 0 : step_error(db, rc, what);
	sqlite3_reset(st);
	return ret;
}

/* step_done for an UPDATE or DELETE of one row: -ENOENT when none matched. */
int step_changed(struct db *db, sqlite3_stmt *st, const char *what)
{
	int rc = step_done(db, st, what);
	return rc == 0 && sqlite3_changes(db->h) == 0 ? -ENOENT : rc;
}

/* Run sql, which updates or deletes the row named by its one parameter. */
static int change_named(struct db *db, const char *sql, const char *name, const char *what)
{
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	return step_changed(db, st, what);
}

/* Step st to its one row and read it into out; st is reset.
 * Returns 0, -ENOENT when there is no row, or -EIO. */
int read_one(struct db *db, sqlite3_stmt *st, row_read_fn *read, void *out,
		    const char *what)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read(st, out);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : db_fail(db, what);
}

/* read_one for sql, which selects the row named by its one parameter. */
int read_named(struct db *db, const char *sql, const char *name, row_read_fn *read,
		      void *out, const char *what)
{
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	return read_one(db, st, read, out, what);
}

void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s && *s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

/* 0 is "not reached" for a timestamp: NULL in the table. */
void bind_ts(sqlite3_stmt *st, int i, int64_t ns)
{
	if (ns)
		sqlite3_bind_int64(st, i, ns);
	else
		sqlite3_bind_null(st, i);
}

/* -1 is "unknown" for a figure: NULL in the table. */
void bind_figure(sqlite3_stmt *st, int i, int64_t v)
{
	if (v >= 0)
		sqlite3_bind_int64(st, i, v);
	else
		sqlite3_bind_null(st, i);
}

void col_text(sqlite3_stmt *st, int i, char *buf, size_t len)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	snprintf(buf, len, "%s", s ? (const char *)s : "");
}

int64_t col_figure(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, i);
}

static int exec(struct db *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_warnx("database: %s", msg ? msg : sqlite3_errmsg(db->h));
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

/* One integer from a query with no parameters. */
int64_t query_int(struct db *db, const char *sql, int64_t dflt)
{
	sqlite3_stmt *st = prep(db, sql);
	int64_t v = dflt;
	if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(st, 0);
	if (st)
		sqlite3_reset(st);
	return v;
}

/* ---- open, schema, transactions --------------------------------------- */

int db_schema_version(struct db *db)
{
	sqlite3_stmt *st = NULL;
	int v = -1;
	if (sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Each step in its own transaction with its version bump: a crash midway
 * leaves the database at the last whole step, and the next start goes on. */
static int schema_upgrade(struct db *db, const char *path, char *err, size_t errlen)
{
	int have = db_schema_version(db);
	if (have < 0) {
		snprintf(err, errlen, "%s: cannot read the schema version: %s", path,
			 sqlite3_errmsg(db->h));
		return -EIO;
	}
	if (have > DB_SCHEMA_VERSION) {
		snprintf(err, errlen, "%s: schema version %d is newer than this migd knows (%d)",
			 path, have, DB_SCHEMA_VERSION);
		return -EPROTONOSUPPORT;
	}
	for (size_t i = 0; i < ARRAY_SIZE(schema_steps); i++) {
		const struct schema_step *s = &schema_steps[i];
		char bump[64];
		if (s->version <= have)
			continue;
		if (have > 0)
			log_info("%s: upgrading schema %d -> %d (%s)", path, s->version - 1,
				 s->version, s->what);
		snprintf(bump, sizeof(bump), "PRAGMA user_version = %d;", s->version);
		if (exec(db, "BEGIN IMMEDIATE") < 0 || exec(db, s->sql) < 0 ||
		    exec(db, bump) < 0 || exec(db, "COMMIT") < 0) {
			snprintf(err, errlen, "%s: schema step to version %d failed: %s", path,
				 s->version, sqlite3_errmsg(db->h));
			exec(db, "ROLLBACK");
			return -EIO;
		}
	}
	return 0;
}

static int lock_file(struct db *db, const char *path, char *err, size_t errlen)
{
	db->lock_fd = open(path, O_RDWR | O_CLOEXEC);
	if (db->lock_fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(db->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: in use by another migd", path);
		return e == EWOULDBLOCK ? -EBUSY : -e;
	}
	return 0;
}

static int open_sqlite(struct db *db, const char *path, char *err, size_t errlen)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(path, &db->h, flags, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, db->h ? sqlite3_errmsg(db->h) : "cannot open");
		return -EIO;
	}
	sqlite3_busy_timeout(db->h, 5000);
	sqlite3_stmt *st = NULL;
	int wal = sqlite3_prepare_v2(db->h, "PRAGMA journal_mode=WAL", -1, &st, NULL) ==
			  SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
		  strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
	sqlite3_finalize(st);
	/* a page cache of 64 MiB (allocated as used), not SQLite's 2 MiB: at
	 * 100,000 guests the tables and indexes a planning round and a guest
	 * page read are past 2 MiB, and each round read them again from the
	 * file (pread was a tenth of migd's time under bench/migd-scale) */
	if (!wal || exec(db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
			 " PRAGMA cache_size=-65536;") < 0) {
		snprintf(err, errlen, "%s: cannot switch to WAL with synchronous=FULL: %s", path,
			 sqlite3_errmsg(db->h));
		return -EIO;
	}
	return 0;
}

int db_open(const char *path, struct db **out, char *err, size_t errlen)
{
	struct db *db = calloc(1, sizeof(*db));
	int rc = -ENOMEM;
	*out = NULL;
	if (!db)
		return rc;
	db->lock_fd = -1;
	db->pending = json_array();
	db->outbox = json_array();
	if (!db->pending || !db->outbox) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	rc = open_sqlite(db, path, err, errlen);
	if (rc == 0)
		rc = lock_file(db, path, err, errlen);
	if (rc == 0)
		rc = schema_upgrade(db, path, err, errlen);
	if (rc < 0)
		goto fail;
	*out = db;
	return 0;
fail:
	db_close(db);
	return rc;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	for (size_t i = 0; i < db->n_cache; i++)
		sqlite3_finalize(db->cache[i].st);
	sqlite3_close(db->h);
	if (db->lock_fd >= 0)
		close(db->lock_fd);
	json_decref(db->pending);
	json_decref(db->outbox);
	free(db);
}

struct sqlite3 *db_handle(struct db *db)
{
	return db->h;
}

int db_begin(struct db *db)
{
	if (db->in_txn) {
		log_warnx("database: nested transaction (a bug)");
		return -EINVAL;
	}
	if (db->batch) { /* inside a group commit: a savepoint of it */
		if (exec(db, "SAVEPOINT txn") < 0)
			return -EIO;
		db->batch_mark = json_array_size(db->pending);
		db->in_txn = 1;
		return 0;
	}
	if (exec(db, "BEGIN IMMEDIATE") < 0)
		return -EIO;
	db->in_txn = 1;
	return 0;
}

int db_commit(struct db *db)
{
	if (db->batch) { /* durable, and its events out, when the batch commits */
		if (exec(db, "RELEASE txn") < 0) {
			db_rollback(db);
			return -EIO;
		}
		db->in_txn = 0;
		return 0;
	}
	if (exec(db, "COMMIT") < 0) {
		db_rollback(db);
		return -EIO;
	}
	db->in_txn = 0;
	json_array_extend(db->outbox, db->pending);
	json_array_clear(db->pending);
	return 0;
}

int db_batch_begin(struct db *db)
{
	if (db->in_txn || db->batch) {
		log_warnx("database: a group commit inside a transaction (a bug)");
		return -EINVAL;
	}
	if (exec(db, "BEGIN IMMEDIATE") < 0)
		return -EIO;
	db->batch = 1;
	return 0;
}

int db_batch_flush(struct db *db)
{
	if (!db->batch || db->in_txn)
		return 0;
	int rc = db_batch_end(db);
	if (rc == 0)
		rc = db_batch_begin(db);
	return rc;
}

int db_batch_end(struct db *db)
{
	if (!db->batch)
		return 0;
	db->batch = 0;
	if (db->in_txn) {
		log_warnx("database: a transaction left open in a group commit (a bug)");
		db_rollback(db);
		return -EIO;
	}
	if (exec(db, "COMMIT") < 0) {
		log_warnx("database: a group commit failed: its changes are lost; the next start "
			  "reconciles them against the backends");
		db_rollback(db);
		return -EIO;
	}
	json_array_extend(db->outbox, db->pending);
	json_array_clear(db->pending);
	return 0;
}

int db_end(struct db *db, int rc)
{
	if (rc != 0) {
		db_rollback(db);
		return rc;
	}
	return db_commit(db);
}

int db_savepoint(struct db *db, size_t *mark)
{
	if (exec(db, "SAVEPOINT item") < 0)
		return -EIO;
	*mark = json_array_size(db->pending);
	return 0;
}

int db_savepoint_end(struct db *db, size_t mark, int item_rc)
{
	if (item_rc == 0)
		return exec(db, "RELEASE item") < 0 ? -EIO : 0;
	if (exec(db, "ROLLBACK TO item") < 0 || exec(db, "RELEASE item") < 0)
		return -EIO;
	while (json_array_size(db->pending) > mark) /* its events go with it */
		json_array_remove(db->pending, json_array_size(db->pending) - 1);
	db->hosts_gen++;
	db->guests_gen++;
	return 0;
}

void db_rollback(struct db *db)
{
	if (db->batch && db->in_txn) { /* the inner one only: the batch goes on */
		if (exec(db, "ROLLBACK TO txn") < 0 || exec(db, "RELEASE txn") < 0) {
			/* the savepoint is gone: so is the batch */
			db->batch = 0;
			if (sqlite3_get_autocommit(db->h) == 0)
				exec(db, "ROLLBACK");
			json_array_clear(db->pending);
		}
		while (json_array_size(db->pending) > db->batch_mark)
			json_array_remove(db->pending, json_array_size(db->pending) - 1);
		db->in_txn = 0;
		db->hosts_gen++;
		db->guests_gen++;
		return;
	}
	if (sqlite3_get_autocommit(db->h) == 0)
		exec(db, "ROLLBACK");
	db->in_txn = 0;
	db->batch = 0;
	json_array_clear(db->pending);
	db->hosts_gen++; /* whatever the transaction changed is undone */
	db->guests_gen++;
}

void db_generations(struct db *db, uint64_t *hosts, uint64_t *guests)
{
	*hosts = db->hosts_gen;
	*guests = db->guests_gen;
}

/* ---- hosts ------------------------------------------------------------ */

#define HOST_COLS \
	"SELECT h.id, h.name, h.uri, h.max_outbound, h.max_inbound, h.memory_bytes," \
	" h.enabled, h.health, h.health_reason, h.health_since_ns, h.health_hook," \
	" h.health_interval_ns, h.health_timeout_ns," \
	" (SELECT COALESCE(SUM(memory_bytes), 0) FROM guests g" \
	" WHERE g.host_id = h.id), (SELECT COUNT(*) FROM guests g WHERE g.host_id = h.id)" \
	" FROM hosts h"

/* The hosts table's own columns, in table order (db_host_scan). */
static void host_read_brief(sqlite3_stmt *st, void *out)
{
	struct db_host *h = out;
	memset(h, 0, sizeof(*h));
	h->id = sqlite3_column_int64(st, 0);
	col_text(st, 1, h->name, sizeof(h->name));
	col_text(st, 2, h->uri, sizeof(h->uri));
	h->max_outbound = (unsigned)sqlite3_column_int64(st, 3);
	h->max_inbound = (unsigned)sqlite3_column_int64(st, 4);
	h->memory_bytes = (uint64_t)sqlite3_column_int64(st, 5);
	h->enabled = sqlite3_column_int(st, 6);
	col_text(st, 7, h->health, sizeof(h->health));
	col_text(st, 8, h->health_reason, sizeof(h->health_reason));
	h->health_since_ns = sqlite3_column_int64(st, 9);
	col_text(st, 10, h->health_hook, sizeof(h->health_hook));
	h->health_interval_ns = sqlite3_column_int64(st, 11);
	h->health_timeout_ns = sqlite3_column_int64(st, 12);
}

/* HOST_COLS: the table's columns and the guests' totals. */
static void host_read(sqlite3_stmt *st, void *out)
{
	struct db_host *h = out;
	host_read_brief(st, h);
	h->memory_used_bytes = (uint64_t)sqlite3_column_int64(st, 13);
	h->n_guests = (unsigned)sqlite3_column_int64(st, 14);
}

int db_host_add(struct db *db, struct db_host *h, int64_t now_ns)
{
	static const char sql[] = "INSERT INTO hosts (name, uri, max_outbound, max_inbound,"
				  " memory_bytes, enabled, health, added_ns, health_hook,"
				  " health_interval_ns, health_timeout_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?)";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, h->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, h->uri, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, h->max_outbound);
	sqlite3_bind_int64(st, 4, h->max_inbound);
	sqlite3_bind_int64(st, 5, (int64_t)h->memory_bytes);
	sqlite3_bind_int(st, 6, h->enabled);
	sqlite3_bind_text(st, 7, *h->health ? h->health : "ok", -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 8, now_ns);
	bind_text(st, 9, h->health_hook);
	sqlite3_bind_int64(st, 10, h->health_interval_ns);
	sqlite3_bind_int64(st, 11, h->health_timeout_ns);
	int rc = step_done(db, st, "adding a host");
	db->hosts_gen++;
	if (rc == 0)
		h->id = sqlite3_last_insert_rowid(db->h);
	return rc;
}

int db_host_get(struct db *db, const char *name, struct db_host *out)
{
	static const char sql[] = HOST_COLS " WHERE h.name = ?";
	return read_named(db, sql, name, host_read, out, "reading a host");
}

int db_host_remove(struct db *db, const char *name)
{
	static const char sql[] = "DELETE FROM hosts WHERE name = ?";
	int rc = change_named(db, sql, name, "removing a host");
	db->hosts_gen++;
	return rc;
}

int db_host_set_enabled(struct db *db, const char *name, int enabled)
{
	static const char sql[] = "UPDATE hosts SET enabled = ? WHERE name = ?";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_int(st, 1, enabled ? 1 : 0);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
	int rc = step_changed(db, st, "updating a host");
	db->hosts_gen++;
	return rc;
}

int db_host_set_health(struct db *db, const char *name, const char *health, const char *reason,
		       int64_t since_ns)
{
	static const char sql[] = "UPDATE hosts SET health = ?, health_reason = ?,"
				  " health_since_ns = ? WHERE name = ?";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, health, -1, SQLITE_TRANSIENT);
	bind_text(st, 2, reason);
	bind_ts(st, 3, since_ns);
	sqlite3_bind_text(st, 4, name, -1, SQLITE_TRANSIENT);
	int rc = step_changed(db, st, "updating a host's health");
	db->hosts_gen++;
	return rc;
}

/* Step through the rows of st, calling read+fn on each; st is a cached
 * statement, so it is reset before returning. */
#define FOR_EACH_ROW(db, st, type, read, fn, arg, what)                    \
	do {                                                               \
		type row_;                                                 \
		int step_, ret_ = 0;                                       \
		while ((step_ = sqlite3_step(st)) == SQLITE_ROW) {         \
			read(st, &row_);                                   \
			if ((ret_ = fn(arg, &row_)) != 0)                  \
				break;                                     \
		}                                                          \
		if (ret_ == 0 && step_ != SQLITE_DONE)                     \
			ret_ = db_fail(db, what);                          \
		sqlite3_reset(st);                                         \
		return ret_;                                               \
	} while (0)

int db_host_scan(struct db *db, db_host_fn fn, void *arg)
{
	static const char sql[] = "SELECT id, name, uri, max_outbound, max_inbound, memory_bytes,"
				  " enabled, health, health_reason, health_since_ns, health_hook,"
				  " health_interval_ns, health_timeout_ns FROM hosts ORDER BY id";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	FOR_EACH_ROW(db, st, struct db_host, host_read_brief, fn, arg, "scanning hosts");
}

int db_host_list(struct db *db, db_host_fn fn, void *arg)
{
	static const char sql[] = HOST_COLS " ORDER BY h.id";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	FOR_EACH_ROW(db, st, struct db_host, host_read, fn, arg, "listing hosts");
}

int db_host_page(struct db *db, const char *after, unsigned limit, db_host_fn fn, void *arg)
{
	static const char sql[] = HOST_COLS " WHERE h.name > ?1 ORDER BY h.name LIMIT ?2";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, after, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, limit);
	FOR_EACH_ROW(db, st, struct db_host, host_read, fn, arg, "listing hosts");
}

/* ---- guests ----------------------------------------------------------- */

#define GUEST_COLS \
	"SELECT g.id, g.name, h.name, g.memory_bytes, g.dirty_rate_bps, j.name, g.rank," \
	" g.host_id, g.job_id, (SELECT m.id FROM migrations m WHERE m.guest = g.name" \
	" AND m.state IN ('queued', 'started', 'migrating'))" \
	" FROM guests g JOIN hosts h ON h.id = g.host_id LEFT JOIN jobs j ON j.id = g.job_id"

static void guest_read(sqlite3_stmt *st, void *out)
{
	struct db_guest *g = out;
	memset(g, 0, sizeof(*g));
	g->id = sqlite3_column_int64(st, 0);
	col_text(st, 1, g->name, sizeof(g->name));
	col_text(st, 2, g->host, sizeof(g->host));
	g->memory_bytes = (uint64_t)sqlite3_column_int64(st, 3);
	g->dirty_rate_bps = (uint64_t)sqlite3_column_int64(st, 4);
	col_text(st, 5, g->job, sizeof(g->job));
	g->rank = sqlite3_column_type(st, 6) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 6);
	g->host_id = sqlite3_column_int64(st, 7);
	g->job_id = sqlite3_column_int64(st, 8);
	g->migration_id = sqlite3_column_int64(st, 9);
}

/* The id of job name, adding it when new. */
static int job_id(struct db *db, const char *name, int64_t *id)
{
	static const char ins[] = "INSERT OR IGNORE INTO jobs (name) VALUES (?)";
	static const char sel[] = "SELECT id FROM jobs WHERE name = ?";
	sqlite3_stmt *st = prep(db, ins);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	int rc = step_done(db, st, "adding a job");
	if (rc < 0)
		return rc;
	if (!(st = prep(db, sel)))
		return -EIO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : db_fail(db, "reading a job");
}

int db_guest_add(struct db *db, struct db_guest *g, int64_t now_ns)
{
	static const char sql[] = "INSERT INTO guests (name, host_id, memory_bytes,"
				  " dirty_rate_bps, job_id, rank, added_ns)"
				  " SELECT ?, id, ?, ?, ?, ?, ? FROM hosts WHERE name = ?";
	int64_t jid = 0;
	int rc = *g->job ? job_id(db, g->job, &jid) : 0;
	sqlite3_stmt *st = rc == 0 ? prep(db, sql) : NULL;
	if (!st)
		return rc < 0 ? rc : -EIO;
	sqlite3_bind_text(st, 1, g->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, (int64_t)g->memory_bytes);
	sqlite3_bind_int64(st, 3, (int64_t)g->dirty_rate_bps);
	if (jid)
		sqlite3_bind_int64(st, 4, jid);
	if (g->rank >= 0)
		sqlite3_bind_int(st, 5, g->rank);
	sqlite3_bind_int64(st, 6, now_ns);
	sqlite3_bind_text(st, 7, g->host, -1, SQLITE_TRANSIENT);
	rc = step_done(db, st, "adding a guest");
	db->guests_gen++;
	if (rc == 0 && sqlite3_changes(db->h) == 0)
		return -ENOENT; /* no such host */
	if (rc == 0) {
		g->id = sqlite3_last_insert_rowid(db->h);
		g->job_id = jid;
	}
	return rc;
}

int db_guest_get(struct db *db, const char *name, struct db_guest *out)
{
	static const char sql[] = GUEST_COLS " WHERE g.name = ?";
	return read_named(db, sql, name, guest_read, out, "reading a guest");
}

int db_guest_remove(struct db *db, const char *name)
{
	static const char sql[] = "DELETE FROM guests WHERE name = ?";
	int rc = change_named(db, sql, name, "removing a guest");
	db->guests_gen++;
	return rc;
}

int db_guest_set_host(struct db *db, const char *guest, const char *host)
{
	static const char sql[] = "UPDATE guests SET host_id = (SELECT id FROM hosts"
				  " WHERE name = ?1) WHERE name = ?2 AND EXISTS (SELECT 1 FROM"
				  " hosts WHERE name = ?1)";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, host, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, guest, -1, SQLITE_TRANSIENT);
	int rc = step_changed(db, st, "moving a guest");
	db->guests_gen++;
	return rc;
}

int db_guest_list(struct db *db, const char *host, const char *job, db_guest_fn fn, void *arg)
{
	/* one statement per filter, so that each can use its index */
	static const char all[] = GUEST_COLS " ORDER BY g.id";
	static const char by_host[] = GUEST_COLS " WHERE h.name = ?1 ORDER BY g.id";
	static const char by_job[] = GUEST_COLS " WHERE j.name = ?2 ORDER BY g.id";
	static const char by_both[] = GUEST_COLS " WHERE h.name = ?1 AND j.name = ?2 ORDER BY g.id";
	sqlite3_stmt *st = prep(db, host && job ? by_both : host ? by_host : job ? by_job : all);
	if (!st)
		return -EIO;
	if (host)
		sqlite3_bind_text(st, 1, host, -1, SQLITE_TRANSIENT);
	if (job)
		sqlite3_bind_text(st, 2, job, -1, SQLITE_TRANSIENT);
	FOR_EACH_ROW(db, st, struct db_guest, guest_read, fn, arg, "listing guests");
}

int db_guest_page(struct db *db, const char *host, const char *job, const char *after,
		  unsigned limit, db_guest_fn fn, void *arg)
{
	/* the name index gives the order; a filter skips rows along it */
	static const char sql[] = GUEST_COLS " WHERE (?1 IS NULL OR h.name = ?1)"
				  " AND (?2 IS NULL OR j.name = ?2) AND g.name > ?3"
				  " ORDER BY g.name LIMIT ?4";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	if (host)
		sqlite3_bind_text(st, 1, host, -1, SQLITE_TRANSIENT);
	if (job)
		sqlite3_bind_text(st, 2, job, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, after, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, limit);
	FOR_EACH_ROW(db, st, struct db_guest, guest_read, fn, arg, "listing guests");
}

static void guest_read_brief(sqlite3_stmt *st, struct db_guest *g)
{
	memset(g, 0, sizeof(*g));
	g->id = sqlite3_column_int64(st, 0);
	col_text(st, 1, g->name, sizeof(g->name));
	g->host_id = sqlite3_column_int64(st, 2);
	g->memory_bytes = (uint64_t)sqlite3_column_int64(st, 3);
	g->dirty_rate_bps = (uint64_t)sqlite3_column_int64(st, 4);
	g->job_id = sqlite3_column_int64(st, 5);
	g->rank = sqlite3_column_type(st, 6) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 6);
}

int db_guest_scan(struct db *db, db_guest_fn fn, void *arg)
{
	static const char sql[] = "SELECT id, name, host_id, memory_bytes, dirty_rate_bps,"
				  " job_id, rank FROM guests ORDER BY id";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	FOR_EACH_ROW(db, st, struct db_guest, guest_read_brief, fn, arg, "scanning guests");
}

/* ---- policies --------------------------------------------------------- */

#define POLICY_COLS \
	"SELECT id, name, type, params, state, created_ns, last_fire_ns, next_fire_ns, fired," \
	" anchor_ns, cursor, cost_ns FROM policies"

static void policy_read(sqlite3_stmt *st, void *out)
{
	struct db_policy *p = out;
	char state[16];
	memset(p, 0, sizeof(*p));
	p->id = sqlite3_column_int64(st, 0);
	col_text(st, 1, p->name, sizeof(p->name));
	col_text(st, 2, p->type, sizeof(p->type));
	const char *text = (const char *)sqlite3_column_text(st, 3);
	p->params = text ? json_loads(text, 0, NULL) : NULL;
	if (!p->params)
		p->params = json_object(); /* unreadable params: the policy layer refuses it */
	col_text(st, 4, state, sizeof(state));
	p->paused = strcmp(state, "paused") == 0;
	p->created_ns = sqlite3_column_int64(st, 5);
	p->last_fire_ns = sqlite3_column_int64(st, 6);
	p->next_fire_ns = sqlite3_column_int64(st, 7);
	p->fired = (uint64_t)sqlite3_column_int64(st, 8);
	p->anchor_ns = sqlite3_column_int64(st, 9);
	p->cursor = (uint64_t)sqlite3_column_int64(st, 10);
	p->cost_ns = sqlite3_column_int64(st, 11);
}

void db_policy_clear(struct db_policy *p)
{
	if (p) {
		json_decref(p->params);
		p->params = NULL;
	}
}

int db_policy_add(struct db *db, struct db_policy *p)
{
	static const char sql[] = "INSERT INTO policies (name, type, params, state, created_ns,"
				  " last_fire_ns, next_fire_ns, fired, anchor_ns, cursor, cost_ns)"
				  " VALUES (?,?,?,?,?,?,?,?,?,?,?)";
	sqlite3_stmt *st = prep(db, sql);
	char *params = json_dumps(p->params ? p->params : json_object(), JSON_COMPACT);
	if (!st || !params) {
		free(params);
		return st ? -ENOMEM : -EIO;
	}
	sqlite3_bind_text(st, 1, p->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, p->type, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, params, -1, free);
	sqlite3_bind_text(st, 4, p->paused ? "paused" : "active", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, p->created_ns);
	bind_ts(st, 6, p->last_fire_ns);
	bind_ts(st, 7, p->next_fire_ns);
	sqlite3_bind_int64(st, 8, (int64_t)p->fired);
	sqlite3_bind_int64(st, 9, p->anchor_ns);
	sqlite3_bind_int64(st, 10, (int64_t)p->cursor);
	sqlite3_bind_int64(st, 11, p->cost_ns);
	int rc = step_done(db, st, "adding a policy");
	if (rc == 0)
		p->id = sqlite3_last_insert_rowid(db->h);
	return rc;
}

int db_policy_get(struct db *db, const char *name, struct db_policy *out)
{
	static const char sql[] = POLICY_COLS " WHERE name = ?";
	return read_named(db, sql, name, policy_read, out, "reading a policy");
}

int db_policy_update(struct db *db, const struct db_policy *p)
{
	static const char sql[] = "UPDATE policies SET state = ?, last_fire_ns = ?,"
				  " next_fire_ns = ?, fired = ?, anchor_ns = ?, cursor = ?, cost_ns = ?"
				  " WHERE name = ?";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, p->paused ? "paused" : "active", -1, SQLITE_STATIC);
	bind_ts(st, 2, p->last_fire_ns);
	bind_ts(st, 3, p->next_fire_ns);
	sqlite3_bind_int64(st, 4, (int64_t)p->fired);
	sqlite3_bind_int64(st, 5, p->anchor_ns);
	sqlite3_bind_int64(st, 6, (int64_t)p->cursor);
	sqlite3_bind_int64(st, 7, p->cost_ns);
	sqlite3_bind_text(st, 8, p->name, -1, SQLITE_TRANSIENT);
	return step_changed(db, st, "updating a policy");
}

int db_policy_remove(struct db *db, const char *name)
{
	static const char sql[] = "DELETE FROM policies WHERE name = ?";
	return change_named(db, sql, name, "removing a policy");
}

int db_policy_list(struct db *db, db_policy_fn fn, void *arg)
{
	static const char sql[] = POLICY_COLS " ORDER BY id";
	sqlite3_stmt *st = prep(db, sql);
	struct db_policy p;
	int step, ret = 0;
	if (!st)
		return -EIO;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		policy_read(st, &p);
		ret = fn(arg, &p);
		db_policy_clear(&p);
		if (ret != 0)
			break;
	}
	if (ret == 0 && step != SQLITE_DONE)
		ret = db_fail(db, "listing policies");
	sqlite3_reset(st);
	return ret;
}

int db_policy_cost(struct db *db, const char *policy, unsigned last, double *mean_ms,
		   unsigned *count)
{
	static const char sql[] = "SELECT AVG(total_ms), COUNT(*) FROM (SELECT total_ms FROM"
				  " migrations WHERE policy = ? AND state = 'completed' AND"
				  " total_ms IS NOT NULL ORDER BY id DESC LIMIT ?)";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, policy, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, last);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*count = (unsigned)sqlite3_column_int64(st, 1);
		*mean_ms = *count ? sqlite3_column_double(st, 0) : 0;
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : db_fail(db, "reading a policy's cost");
}

/* ---- health ------------------------------------------------------------ */

static const char *const threshold_cols[6] = { "lnr", "lcr", "lnc", "unc", "ucr", "unr" };

static void bind_real(sqlite3_stmt *st, int i, int has, double v)
{
	if (has && isfinite(v))
		sqlite3_bind_double(st, i, v);
	else
		sqlite3_bind_null(st, i);
}

static double col_real(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

int db_reading_add(struct db *db, const struct db_reading *r)
{
	static const char sql[] = "INSERT INTO health_readings (host, sensor, ts_ns, value, unit,"
				  " status, lnr, lcr, lnc, unc, ucr, unr, source)"
				  " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, r->host, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, r->sensor, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, r->ts_ns);
	bind_real(st, 4, r->has_value, r->value);
	bind_text(st, 5, r->unit);
	bind_text(st, 6, r->status);
	for (int i = 0; i < 6; i++)
		bind_real(st, 7 + i, 1, r->threshold[i]);
	sqlite3_bind_text(st, 13, r->source, -1, SQLITE_TRANSIENT);
	return step_done(db, st, "storing a reading");
}

#define READING_COLS \
	"SELECT host, sensor, ts_ns, value, unit, status, lnr, lcr, lnc, unc, ucr, unr, source" \
	" FROM health_readings"

static void reading_read(sqlite3_stmt *st, void *out)
{
	struct db_reading *r = out;
	memset(r, 0, sizeof(*r));
	col_text(st, 0, r->host, sizeof(r->host));
	col_text(st, 1, r->sensor, sizeof(r->sensor));
	r->ts_ns = sqlite3_column_int64(st, 2);
	r->has_value = sqlite3_column_type(st, 3) != SQLITE_NULL;
	r->value = r->has_value ? sqlite3_column_double(st, 3) : NAN;
	col_text(st, 4, r->unit, sizeof(r->unit));
	col_text(st, 5, r->status, sizeof(r->status));
	for (int i = 0; i < 6; i++)
		r->threshold[i] = col_real(st, 6 + i);
	col_text(st, 12, r->source, sizeof(r->source));
}

int db_reading_latest(struct db *db, const char *host, db_reading_fn fn, void *arg)
{
	static const char one[] = READING_COLS " WHERE id IN (SELECT MAX(id) FROM health_readings"
				  " WHERE host = ? GROUP BY sensor) ORDER BY sensor";
	static const char all[] = READING_COLS " WHERE id IN (SELECT MAX(id) FROM health_readings"
				  " GROUP BY host, sensor) ORDER BY host, sensor";
	sqlite3_stmt *st = prep(db, host ? one : all);
	if (!st)
		return -EIO;
	if (host)
		sqlite3_bind_text(st, 1, host, -1, SQLITE_TRANSIENT);
	FOR_EACH_ROW(db, st, struct db_reading, reading_read, fn, arg, "listing readings");
}

int db_reading_history(struct db *db, const char *host, const char *sensor, int64_t since_ns,
		       db_reading_fn fn, void *arg)
{
	static const char sql[] = READING_COLS " WHERE host = ? AND sensor = ? AND ts_ns >= ?"
				  " AND value IS NOT NULL ORDER BY ts_ns, id";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, host, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, sensor, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, since_ns);
	FOR_EACH_ROW(db, st, struct db_reading, reading_read, fn, arg, "reading a sensor's history");
}

int db_reading_prune(struct db *db, int64_t before_ns)
{
	static const char sql[] = "DELETE FROM health_readings WHERE ts_ns < ? AND id NOT IN"
				  " (SELECT MAX(id) FROM health_readings GROUP BY host, sensor)";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, before_ns);
	return step_done(db, st, "pruning readings");
}

int db_rule_add(struct db *db, struct db_health_rule *r)
{
	static const char sql[] = "INSERT INTO health_rules (name, sensor, kind, value, within_ns,"
				  " clear, clear_after_ns, created_ns) VALUES (?,?,?,?,?,?,?,?)";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, r->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, r->sensor, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, r->kind, -1, SQLITE_TRANSIENT);
	sqlite3_bind_double(st, 4, r->value);
	bind_ts(st, 5, r->within_ns);
	bind_real(st, 6, r->has_clear, r->clear);
	sqlite3_bind_int64(st, 7, r->clear_after_ns);
	sqlite3_bind_int64(st, 8, r->created_ns);
	int rc = step_done(db, st, "adding a health rule");
	if (rc == 0)
		r->id = sqlite3_last_insert_rowid(db->h);
	return rc;
}

int db_rule_remove(struct db *db, const char *name)
{
	static const char sql[] = "DELETE FROM health_rules WHERE name = ?";
	return change_named(db, sql, name, "removing a health rule");
}

static void rule_read(sqlite3_stmt *st, void *out)
{
	struct db_health_rule *r = out;
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	col_text(st, 1, r->name, sizeof(r->name));
	col_text(st, 2, r->sensor, sizeof(r->sensor));
	col_text(st, 3, r->kind, sizeof(r->kind));
	r->value = sqlite3_column_double(st, 4);
	r->within_ns = sqlite3_column_int64(st, 5);
	r->has_clear = sqlite3_column_type(st, 6) != SQLITE_NULL;
	r->clear = r->has_clear ? sqlite3_column_double(st, 6) : 0;
	r->clear_after_ns = sqlite3_column_int64(st, 7);
	r->created_ns = sqlite3_column_int64(st, 8);
}

int db_rule_list(struct db *db, db_rule_fn fn, void *arg)
{
	static const char sql[] = "SELECT id, name, sensor, kind, value, within_ns, clear,"
				  " clear_after_ns, created_ns FROM health_rules ORDER BY id";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	FOR_EACH_ROW(db, st, struct db_health_rule, rule_read, fn, arg, "listing health rules");
}

/* ---- rows as API objects ---------------------------------------------- */

static const char *const priority_names[] = { "periodic", "health", "manual" };

const char *db_priority_name(int priority)
{
	return priority >= 0 && priority < (int)ARRAY_SIZE(priority_names)
		       ? priority_names[priority] : "unknown";
}

int db_priority_parse(const char *name, int *out)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(priority_names); i++) {
		if (strcmp(name, priority_names[i]) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	return -EINVAL;
}

int db_name_check(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n >= DB_NAME_MAX || !isalnum((unsigned char)name[0]))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
			return -EINVAL;
	return 0;
}

/* A string, or null when empty; a time or figure, or null when unset. */
json_t *opt_str(const char *s)
{
	return *s ? json_string(s) : json_null();
}

json_t *opt_int(int64_t v, int64_t unset)
{
	return v == unset ? json_null() : json_integer(v);
}

json_t *db_host_json(const struct db_host *h)
{
	json_t *o = json_pack("{s:s, s:s, s:b, s:s, s:I, s:I, s:I, s:I, s:I}", "name", h->name,
			      "uri", h->uri, "enabled", h->enabled, "health", h->health,
			      "max_outbound", (json_int_t)h->max_outbound, "max_inbound",
			      (json_int_t)h->max_inbound, "memory_bytes",
			      (json_int_t)h->memory_bytes, "memory_used_bytes",
			      (json_int_t)h->memory_used_bytes, "guests", (json_int_t)h->n_guests);
	json_object_set_new(o, "health_reason", opt_str(h->health_reason));
	json_object_set_new(o, "health_since_ns", opt_int(h->health_since_ns, 0));
	json_object_set_new(o, "health_hook", opt_str(h->health_hook));
	json_object_set_new(o, "health_interval_s", h->health_interval_ns
				    ? json_real((double)h->health_interval_ns / 1e9) : json_null());
	json_object_set_new(o, "health_timeout_s", h->health_timeout_ns
				    ? json_real((double)h->health_timeout_ns / 1e9) : json_null());
	return o;
}

static json_t *opt_real(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

json_t *db_reading_json(const struct db_reading *r)
{
	json_t *o = json_pack("{s:s, s:s, s:I, s:o, s:o, s:o, s:s}", "host", r->host, "sensor",
			      r->sensor, "ts_ns", (json_int_t)r->ts_ns, "value",
			      r->has_value ? opt_real(r->value) : json_null(), "unit",
			      opt_str(r->unit), "status", opt_str(r->status), "source", r->source);
	for (int i = 0; i < 6; i++)
		if (isfinite(r->threshold[i]))
			json_object_set_new(o, threshold_cols[i], json_real(r->threshold[i]));
	return o;
}

json_t *db_rule_json(const struct db_health_rule *r)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:f}", "name", r->name, "sensor", r->sensor, "kind",
			      r->kind, "value", r->value);
	json_object_set_new(o, "within_s", r->within_ns ? json_real((double)r->within_ns / 1e9)
						      : json_null());
	json_object_set_new(o, "clear", r->has_clear ? json_real(r->clear) : json_null());
	json_object_set_new(o, "clear_after_s", r->clear_after_ns
				    ? json_real((double)r->clear_after_ns / 1e9) : json_null());
	json_object_set_new(o, "created_ns", json_integer(r->created_ns));
	return o;
}

/* Built member by member, not with json_pack: guest.list renders 10,000s
 * of these, and parsing the format string was a third of its time. */
json_t *db_guest_json(const struct db_guest *g)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(g->name));
	json_object_set_new(o, "host", json_string(g->host));
	json_object_set_new(o, "memory_bytes", json_integer((json_int_t)g->memory_bytes));
	json_object_set_new(o, "dirty_rate_bps", json_integer((json_int_t)g->dirty_rate_bps));
	json_object_set_new(o, "job", opt_str(g->job));
	json_object_set_new(o, "rank", opt_int(g->rank, -1));
	json_object_set_new(o, "state", json_string(g->migration_id ? "migrating" : "running"));
	json_object_set_new(o, "migration", opt_int(g->migration_id, 0));
	return o;
}

/* ---- events and counts ------------------------------------------------ */

int db_event(struct db *db, json_t *ev)
{
	static const char sql[] = "INSERT INTO events (ts_ns, type, body) VALUES (?,?,?)";
	sqlite3_stmt *st = prep(db, sql);
	char *body = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
	int rc = -ENOMEM;
	if (!st || !body)
		goto out;
	sqlite3_bind_int64(st, 1, json_integer_value(json_object_get(ev, "ts_ns")));
	sqlite3_bind_text(st, 2, json_string_value(json_object_get(ev, "type")), -1,
			  SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, body, -1, SQLITE_TRANSIENT);
	rc = step_done(db, st, "storing an event");
	if (rc == 0)
		json_array_append(db->in_txn || db->batch ? db->pending : db->outbox, ev);
out:
	free(body);
	json_decref(ev);
	return rc;
}

int db_event_page(struct db *db, int64_t after_id, unsigned limit, const char *type_prefix,
		  db_event_fn fn, void *arg)
{
	/* the primary key gives the order; a prefix is a range of the type */
	static const char sql[] = "SELECT id, body FROM events WHERE id > ?1"
				  " AND (?2 IS NULL OR substr(type, 1, length(?2)) = ?2)"
				  " ORDER BY id LIMIT ?3";
	sqlite3_stmt *st = prep(db, sql);
	int step, rc = 0;
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, after_id);
	if (type_prefix)
		sqlite3_bind_text(st, 2, type_prefix, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, limit);
	while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *body = (const char *)sqlite3_column_text(st, 1);
		json_t *ev = body ? json_loads(body, 0, NULL) : NULL;
		if (!json_is_object(ev)) { /* written by db_event: cannot be, but never assert */
			json_decref(ev);
			ev = json_pack("{s:s}", "type", "unreadable");
		}
		/* not "id": a migration's events carry the migration's */
		json_object_set_new(ev, "event_id", json_integer(sqlite3_column_int64(st, 0)));
		rc = fn(arg, ev);
		json_decref(ev);
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = db_fail(db, "reading the event log");
	sqlite3_reset(st);
	return rc;
}

void db_event_transient(struct db *db, json_t *ev)
{
	if (ev)
		json_array_append_new(db->outbox, ev);
}

json_t *db_events_take(struct db *db)
{
	if (json_array_size(db->outbox) == 0)
		return NULL;
	json_t *out = db->outbox;
	db->outbox = json_array();
	return out;
}

int db_counts(struct db *db, struct db_counts *out)
{
	static const char sql[] =
		"SELECT (SELECT COUNT(*) FROM hosts), (SELECT COUNT(*) FROM guests),"
		" (SELECT COUNT(*) FROM policies),"
		" (SELECT COUNT(*) FROM migrations WHERE state = 'queued'),"
		" (SELECT COUNT(*) FROM migrations WHERE state IN ('started', 'migrating'))";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->hosts = (unsigned)sqlite3_column_int64(st, 0);
		out->guests = (unsigned)sqlite3_column_int64(st, 1);
		out->policies = (unsigned)sqlite3_column_int64(st, 2);
		out->queued = (unsigned)sqlite3_column_int64(st, 3);
		out->running = (unsigned)sqlite3_column_int64(st, 4);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : db_fail(db, "counting");
}
