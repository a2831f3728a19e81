/*
 * meta_snap: snapshots on the metadata server. A snapshot is a copy of the
 * namespace rows of one directory tree (snap_entries, every column of
 * entries, whatever columns entries has) plus, on every I/O server, a hard
 * link to each of its datafiles (iosnap.c). Rollback puts the rows back
 * and makes the live datafiles the snapshot's again.
 *
 * The cut: under the metadata lock (no namespace change can happen), every
 * I/O server is frozen, then linked, then thawed; the snapshot counts only
 * if every thaw says its freeze held throughout, so there was one instant
 * at which no server admitted a write. Any failure, or the deadline
 * (snapshot_barrier_timeout_ms) passing, fails the whole snapshot and
 * releases every server.
 *
 * Crash safety: work that touches I/O servers is announced in
 * snap_pending in the same transaction as the namespace change it belongs
 * to, and is idempotent, so after a crash it is simply done again
 * (meta_snap_resume, before the next request is served):
 *  - create: the snapshots row (not yet ready) and a "drop" intent are
 *    committed before the first link; the intent goes only with the
 *    commit that makes the snapshot ready. A crash before that drops the
 *    links: the snapshot never existed.
 *  - rm: rows gone and a "drop" intent, in one transaction.
 *  - rollback: the rows of the tree are swapped and a "restore" intent
 *    and a "remove" intent per datafile of a file the rollback deletes
 *    are written in one transaction; restoring datafiles is redone until
 *    it succeeds. Before that commit nothing has changed.
 *
 * Snapshots are readable under /.snapshots/NAME/..., read-only: a LOOKUP
 * there gives a snapshot handle (sfs_proto.h) that I/O servers serve from
 * the snapshot's datafiles, so libsfs reads them with no change.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "meta_internal.h"
#include "util.h"

#define SNAPDIR_NAME ".snapshots"
#define SNAPDIR_FID SFS_FID_MASK /* the /.snapshots directory's own fid */
#define RESUME_INTERVAL_MS 1000

/* Subtree of ?N (a fid) in entries, as a CTE named sub. */
#define SUBTREE(n) \
	"WITH RECURSIVE sub(fid) AS (SELECT ?" #n " UNION ALL SELECT e.fid FROM entries e" \
	" JOIN sub ON e.parent = sub.fid) "

/* Handles of datafiles, per I/O server. */
struct handle_sets {
	unsigned n_io;
	uint64_t *h[SFS_MAX_IO_SERVERS];
	uint32_t n[SFS_MAX_IO_SERVERS], cap[SFS_MAX_IO_SERVERS];
};

static void sets_free(struct handle_sets *s)
{
	for (unsigned i = 0; i < s->n_io; i++)
		free(s->h[i]);
	memset(s, 0, sizeof(*s));
}

static int sets_add(struct handle_sets *s, unsigned io, uint64_t handle)
{
	if (io >= s->n_io)
		return 0; /* a layout naming a server no longer configured */
	if (s->n[io] == s->cap[io]) {
		uint32_t cap = s->cap[io] ? 2 * s->cap[io] : 256;
		uint64_t *h = realloc(s->h[io], cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		s->h[io] = h;
		s->cap[io] = cap;
	}
	s->h[io][s->n[io]++] = handle;
	return 0;
}

/* Rows of (fid, servers blob) from s into sets; 0 or -EIO/-ENOMEM. */
static int sets_fill(struct handle_sets *sets, sqlite3_stmt *s)
{
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		uint64_t fid = (uint64_t)sqlite3_column_int64(s, 0);
		const uint8_t *blob = sqlite3_column_blob(s, 1);
		int bytes = sqlite3_column_bytes(s, 1);
		for (int i = 0; blob && i + 1 < bytes; i += 2)
			if (sets_add(sets, (unsigned)(blob[i] | blob[i + 1] << 8), fid) < 0)
				return -ENOMEM;
	}
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* --- small database helpers ------------------------------------------------ */

static sqlite3_stmt *prep(struct meta *m, const char *sql)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(m->db, sql, -1, &s, NULL) != SQLITE_OK) {
		log_warnx("%s: preparing \"%s\": %s", m->db_path, sql, sqlite3_errmsg(m->db));
		sqlite3_finalize(s);
		return NULL;
	}
	return s;
}

/* Run sql with up to three int64 parameters (?1..?3); -EIO on failure. */
static int exec3(struct meta *m, const char *sql, int64_t a, int64_t b, int64_t c)
{
	sqlite3_stmt *s = prep(m, sql);
	if (!s)
		return -EIO;
	int n = sqlite3_bind_parameter_count(s);
	if (n >= 1)
		sqlite3_bind_int64(s, 1, a);
	if (n >= 2)
		sqlite3_bind_int64(s, 2, b);
	if (n >= 3)
		sqlite3_bind_int64(s, 3, c);
	int rc = sqlite3_step(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		log_warnx("%s: \"%s\": %s", m->db_path, sql, sqlite3_errmsg(m->db));
	sqlite3_finalize(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -EIO;
}

/* sql (built with m->entry_cols in it) then exec3. */
static int exec_cols(struct meta *m, const char *fmt, int64_t a, int64_t b, int64_t c)
{
	char *sql = NULL;
	if (asprintf(&sql, fmt, m->entry_cols, m->entry_cols) < 0)
		return -ENOMEM;
	int rc = exec3(m, sql, a, b, c);
	free(sql);
	return rc;
}

static void rollback_txn(struct meta *m)
{
	sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
}

/* --- fault injection for the crash tests ----------------------------------- */

/* SFSD_SNAP_FAULT=POINT kills this server with SIGKILL at POINT, the way
 * kill -9 would, so a test can crash it at an exact step. */
static void fault_point(const char *point)
{
	const char *want = getenv("SFSD_SNAP_FAULT");
	if (want && strcmp(want, point) == 0) {
		log_warnx("SFSD_SNAP_FAULT=%s: killing myself", point);
		raise(SIGKILL);
	}
}

/* --- schema ----------------------------------------------------------------- */

int meta_snap_schema_v3(sqlite3 *db, char *err, size_t errlen)
{
	static const char *const sql =
		"CREATE TABLE snapshots ("
		" id INTEGER PRIMARY KEY,"
		" name TEXT NOT NULL UNIQUE,"
		" path TEXT NOT NULL,"
		" root_fid INTEGER NOT NULL,"
		" created_ns INTEGER NOT NULL,"
		" ready INTEGER NOT NULL DEFAULT 0,"
		" n_files INTEGER NOT NULL DEFAULT 0,"
		" n_dirs INTEGER NOT NULL DEFAULT 0);"
		/* every column of entries, whatever they are; meta_snap_open adds
		 * those a later schema gives entries */
		"CREATE TABLE snap_entries AS SELECT 0 AS snap_id, * FROM entries WHERE 0;"
		"CREATE INDEX snap_entries_by_parent ON snap_entries (snap_id, parent, name);"
		"CREATE INDEX snap_entries_by_fid ON snap_entries (snap_id, fid);"
		"CREATE TABLE snap_pending ("
		" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
		" kind TEXT NOT NULL,"            /* drop, restore, remove */
		" snap_id INTEGER NOT NULL DEFAULT 0,"
		" fid INTEGER NOT NULL DEFAULT 0,"
		" servers BLOB);"
		"INSERT INTO counters VALUES ('snap_id_last', 0);";
	char *why = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &why) == SQLITE_OK)
		return 0;
	snprintf(err, errlen, "creating the snapshot tables: %s", why ? why : "failed");
	sqlite3_free(why);
	return -EIO;
}

/* Column names of table, into names (each malloc'd); returns how many. */
static int table_columns(struct meta *m, const char *table, char **names, int max)
{
	char sql[128];
	int n = 0;
	snprintf(sql, sizeof(sql), "PRAGMA table_info(%s)", table);
	sqlite3_stmt *s = prep(m, sql);
	while (s && n < max && sqlite3_step(s) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(s, 1);
		names[n] = strdup(name ? name : "");
		if (names[n])
			n++;
	}
	sqlite3_finalize(s);
	return n;
}

int meta_snap_open(struct meta *m, char *err, size_t errlen)
{
	enum { MAX_COLS = 64 };
	char *live[MAX_COLS], *copy[MAX_COLS];
	int n_live = table_columns(m, "entries", live, MAX_COLS);
	int n_copy = table_columns(m, "snap_entries", copy, MAX_COLS);
	size_t len = 1;
	int rc = 0;
	for (int i = 0; i < n_live; i++)
		len += strlen(live[i]) + 4;
	m->entry_cols = calloc(1, len);
	for (int i = 0; i < n_live && m->entry_cols && rc == 0; i++) {
		int have = 0;
		for (int j = 0; j < n_copy; j++)
			have |= strcmp(live[i], copy[j]) == 0;
		if (!have) {
			char sql[256];
			snprintf(sql, sizeof(sql), "ALTER TABLE snap_entries ADD COLUMN \"%s\"", live[i]);
			if (sqlite3_exec(m->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
				snprintf(err, errlen, "%s: %s: %s", m->db_path, sql,
					 sqlite3_errmsg(m->db));
				rc = -EIO;
			}
		}
		strcat(m->entry_cols, i ? ", \"" : "\"");
		strcat(m->entry_cols, live[i]);
		strcat(m->entry_cols, "\"");
	}
	if (!m->entry_cols || n_live == 0) {
		snprintf(err, errlen, "%s: cannot read the columns of entries", m->db_path);
		rc = rc ? rc : -EIO;
	}
	for (int i = 0; i < n_live; i++)
		free(live[i]);
	for (int i = 0; i < n_copy; i++)
		free(copy[i]);
	/* look once: a crash may have left work, or freezes */
	m->snap_pending = m->snap_restore_pending = 1;
	return rc;
}

/* --- names and rows --------------------------------------------------------- */

static int check_name(struct server_req *r, const char *name)
{
	if (!name[0])
		return server_fail(r, -EINVAL, "a snapshot name must not be empty");
	if (strchr(name, '/'))
		return server_fail(r, -EINVAL, "snapshot name \"%.100s\": must not contain '/'",
				   name);
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return server_fail(r, -EINVAL, "snapshot name \"%s\" is not allowed", name);
	for (const char *c = name; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return server_fail(r, -EINVAL, "snapshot name \"%.100s\": control "
					   "characters are not allowed", name);
	return 0;
}

/* The snapshot named name into *info (ready ones only): 0, -ENOENT or -EIO. */
static int snap_by_name(struct meta *m, const char *name, struct sfs_snapinfo *info,
			uint64_t *root_fid)
{
	sqlite3_stmt *s = prep(m, "SELECT id, name, path, created_ns, n_files, n_dirs, root_fid"
			       " FROM snapshots WHERE name = ?1 AND ready = 1");
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		memset(info, 0, sizeof(*info));
		info->id = (uint64_t)sqlite3_column_int64(s, 0);
		snprintf(info->name, sizeof(info->name), "%s", sqlite3_column_text(s, 1));
		snprintf(info->path, sizeof(info->path), "%s", sqlite3_column_text(s, 2));
		info->created_ns = sqlite3_column_int64(s, 3);
		info->n_files = (uint64_t)sqlite3_column_int64(s, 4);
		info->n_dirs = (uint64_t)sqlite3_column_int64(s, 5);
		if (root_fid)
			*root_fid = (uint64_t)sqlite3_column_int64(s, 6);
	}
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

static int no_such_snapshot(struct server_req *r, const char *name)
{
	return server_fail(r, -ENOENT, "no snapshot named \"%.100s\"", name);
}

static void path_text(const struct path *p, char *out, size_t len)
{
	size_t used = 0;
	out[0] = '\0';
	for (unsigned i = 0; i < p->n && used < len; i++) {
		int n = snprintf(out + used, len - used, "/%s", p->comp[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	if (p->n == 0)
		snprintf(out, len, "/");
}

/* --- talking to every I/O server ------------------------------------------- */

/* How long one request of a barrier may take: never past the barrier, so a
 * server that stopped answering costs the barrier's time, not timeout_ms. */
static uint32_t barrier_call_ms(const struct meta *m)
{
	uint32_t barrier = m->conf->snapshot_barrier_timeout_ms;
	return m->conf->timeout_ms < barrier ? m->conf->timeout_ms : barrier;
}

/* op with snap_id on every I/O server; strict: stop at the first failure.
 * Returns the first failure (err names the server). */
static int io_each(struct meta *m, uint16_t op, uint64_t snap_id, uint32_t timeout_ms,
		   int strict, char *err, size_t errlen)
{
	struct sfs_req *req = calloc(1, sizeof(*req));
	char why[512];
	int first = 0;
	if (!req) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	req->op = op;
	req->snap_id = snap_id;
	req->timeout_ms = timeout_ms;
	for (unsigned i = 0; i < m->conf->n_io; i++) {
		uint32_t call_ms = op == SFS_OP_DF_SNAP_FREEZE && timeout_ms < barrier_call_ms(m)
					   ? timeout_ms : barrier_call_ms(m);
		int rc = meta_io_request(m, i, req, NULL, call_ms, why, sizeof(why));
		if (rc < 0 && first == 0) {
			first = rc;
			snprintf(err, errlen, "%s: %.400s", sfs_op_name(op), why);
			if (strict)
				break;
		} else if (rc < 0) {
			log_warnx("%s of snapshot %" PRIu64 ": %s", sfs_op_name(op), snap_id, why);
		}
	}
	free(req);
	return first;
}

/* One I/O server's share of io_batches, on its own thread. */
struct batch_job {
	struct meta *m;
	uint16_t op;
	uint64_t snap_id;
	unsigned io;
	const uint64_t *handles;
	uint32_t n;
	int rc;
	int started; /* on its own thread */
	char err[512];
};

static void *batch_main(void *arg)
{
	struct batch_job *j = arg;
	struct sfs_req *req = calloc(1, sizeof(*req));
	char why[512];
	if (!req) {
		j->rc = -ENOMEM;
		snprintf(j->err, sizeof(j->err), "out of memory");
		return NULL;
	}
	req->op = j->op;
	req->snap_id = j->snap_id;
	for (uint32_t done = 0; done < j->n && j->rc == 0; done += req->n_handles) {
		uint32_t left = j->n - done;
		req->n_handles = left < SFS_SNAP_BATCH ? left : SFS_SNAP_BATCH;
		memcpy(req->handles, j->handles + done, req->n_handles * sizeof(uint64_t));
		j->rc = meta_io_request(j->m, j->io, req, NULL, barrier_call_ms(j->m), why,
					sizeof(why));
		if (j->rc < 0)
			snprintf(j->err, sizeof(j->err), "%s: %.400s", sfs_op_name(j->op), why);
		if (j->rc == 0 && j->op == SFS_OP_DF_SNAP_RESTORE)
			fault_point("rollback:restoring");
	}
	free(req);
	return NULL;
}

/* DF_SNAP_LINK, DF_SNAP_RESTORE or DF_SNAP_BUSY of every set, in batches,
 * every I/O server at once (each link is a few microseconds; the servers
 * should do theirs side by side). The first failure is returned. */
static int io_batches(struct meta *m, uint16_t op, uint64_t snap_id,
		      const struct handle_sets *sets, char *err, size_t errlen)
{
	struct batch_job *jobs = calloc(sets->n_io ? sets->n_io : 1, sizeof(*jobs));
	pthread_t *threads = calloc(sets->n_io ? sets->n_io : 1, sizeof(*threads));
	int rc = 0;
	if (!jobs || !threads) {
		free(jobs);
		free(threads);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < sets->n_io; i++) {
		jobs[i] = (struct batch_job){ .m = m, .op = op, .snap_id = snap_id, .io = i,
					      .handles = sets->h[i], .n = sets->n[i] };
		if (!jobs[i].n)
			continue;
		jobs[i].started = pthread_create(&threads[i], NULL, batch_main, &jobs[i]) == 0;
		if (!jobs[i].started)
			batch_main(&jobs[i]); /* no thread: do it here */
	}
	for (unsigned i = 0; i < sets->n_io; i++) {
		if (jobs[i].started)
			pthread_join(threads[i], NULL);
		if (jobs[i].rc < 0 && rc == 0) {
			rc = jobs[i].rc;
			snprintf(err, errlen, "%s", jobs[i].err);
		}
	}
	free(jobs);
	free(threads);
	return rc;
}

/* Freeze every I/O server for snap_id by deadline_ms; on failure release
 * those already frozen. */
static int freeze_all(struct meta *m, uint64_t snap_id, uint64_t deadline_ms, char *err,
		      size_t errlen)
{
	uint64_t now = now_ms();
	uint32_t timeout_ms = deadline_ms > now ? (uint32_t)(deadline_ms - now) : 1;
	int rc = io_each(m, SFS_OP_DF_SNAP_FREEZE, snap_id, timeout_ms, 1, err, errlen);
	if (rc == 0 && now_ms() > deadline_ms) {
		snprintf(err, errlen, "the servers were not all frozen within "
			 "snapshot_barrier_timeout_ms (%u ms)", m->conf->snapshot_barrier_timeout_ms);
		rc = -ETIMEDOUT;
	}
	if (rc < 0) {
		char ignored[256];
		io_each(m, SFS_OP_DF_SNAP_THAW, snap_id, 0, 0, ignored, sizeof(ignored));
	}
	return rc;
}

/* --- pending work ------------------------------------------------------------ */

/* One statement on snap_pending with the intent's kind and snapshot. */
static int pending_exec(struct meta *m, const char *sql, const char *kind, uint64_t snap_id)
{
	sqlite3_stmt *s = prep(m, sql);
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)snap_id);
	int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(s);
	return rc;
}

static int pending_add(struct meta *m, const char *kind, uint64_t snap_id)
{
	return pending_exec(m, "INSERT INTO snap_pending (kind, snap_id) VALUES (?1, ?2)", kind,
			    snap_id);
}

static int pending_done(struct meta *m, const char *kind, uint64_t snap_id)
{
	return pending_exec(m, "DELETE FROM snap_pending WHERE kind = ?1 AND snap_id = ?2", kind,
			    snap_id);
}

/* Drop snap_id's datafiles everywhere, then forget the intent (and a
 * snapshot row that never became ready). */
static int do_drop(struct meta *m, uint64_t snap_id, char *err, size_t errlen)
{
	int rc = io_each(m, SFS_OP_DF_SNAP_DROP, snap_id, 0, 0, err, errlen);
	if (rc == 0)
		rc = exec3(m, "DELETE FROM snapshots WHERE id = ?1 AND ready = 0", (int64_t)snap_id,
			   0, 0);
	if (rc == 0)
		rc = pending_done(m, "drop", snap_id);
	return rc;
}

/* Make every live datafile of the snapshot's files the snapshot's. */
static int do_restore(struct meta *m, uint64_t snap_id, char *err, size_t errlen)
{
	struct handle_sets sets = { .n_io = m->conf->n_io };
	sqlite3_stmt *s = prep(m, "SELECT fid, servers FROM snap_entries WHERE snap_id = ?1"
			       " AND type = 1");
	int rc = -EIO;
	if (s) {
		sqlite3_bind_int64(s, 1, (sqlite3_int64)snap_id);
		rc = sets_fill(&sets, s);
		sqlite3_finalize(s);
	}
	if (rc < 0) {
		snprintf(err, errlen, "reading the snapshot's files: %s", sqlite3_errmsg(m->db));
		goto out;
	}
	uint64_t deadline = now_ms() + m->conf->snapshot_barrier_timeout_ms;
	rc = freeze_all(m, snap_id, deadline, err, errlen);
	if (rc < 0)
		goto out;
	rc = io_batches(m, SFS_OP_DF_SNAP_RESTORE, snap_id, &sets, err, errlen);
	char ignored[256];
	io_each(m, SFS_OP_DF_SNAP_THAW, snap_id, 0, 0, ignored, sizeof(ignored));
	if (rc == 0)
		rc = pending_done(m, "restore", snap_id);
out:
	sets_free(&sets);
	return rc;
}

/* Remove the datafiles of files a rollback deleted. Best effort: what
 * cannot be removed stays an orphan that fsck reports. */
static void do_removes(struct meta *m)
{
	sqlite3_stmt *s = prep(m, "SELECT fid, servers FROM snap_pending WHERE kind = 'remove'");
	struct handle_sets sets = { .n_io = m->conf->n_io };
	if (!s)
		return;
	int rc = sets_fill(&sets, s);
	sqlite3_finalize(s);
	for (unsigned i = 0; rc == 0 && i < sets.n_io; i++) {
		for (uint32_t j = 0; j < sets.n[i]; j++) {
			struct sfs_layout l = { .stripe_count = 1, .servers = { (uint16_t)i } };
			remove_datafiles(m, sets.h[i][j], &l, 1);
		}
	}
	if (rc == 0)
		exec3(m, "DELETE FROM snap_pending WHERE kind = 'remove'", 0, 0, 0);
	sets_free(&sets);
}

/* Every pending item once; 0 when none is left. */
static int resume_all(struct meta *m, char *err, size_t errlen)
{
	sqlite3_stmt *s = prep(m, "SELECT DISTINCT kind, snap_id FROM snap_pending"
			       " WHERE kind != 'remove' ORDER BY kind DESC");
	int rc = 0;
	if (!s)
		return -EIO;
	if (!m->snap_thawed) {
		/* freezes a previous run held (it died mid-barrier) end now,
		 * not when they lapse */
		char ignored[256];
		if (io_each(m, SFS_OP_DF_SNAP_THAW, 0, 0, 0, ignored, sizeof(ignored)) == 0)
			m->snap_thawed = 1;
	}
	struct { int restore; uint64_t id; } items[64];
	unsigned n = 0;
	while (n < 64 && sqlite3_step(s) == SQLITE_ROW) {
		items[n].restore = strcmp((const char *)sqlite3_column_text(s, 0), "restore") == 0;
		items[n++].id = (uint64_t)sqlite3_column_int64(s, 1);
	}
	sqlite3_finalize(s);
	/* a snapshot whose create was cut short has a drop intent already */
	for (unsigned i = 0; i < n; i++) {
		int one = items[i].restore ? do_restore(m, items[i].id, err, errlen)
					   : do_drop(m, items[i].id, err, errlen);
		if (one == 0)
			log_info("finished the %s of snapshot %" PRIu64 " left by an earlier "
				 "failure", items[i].restore ? "rollback" : "removal", items[i].id);
		else if (rc == 0)
			rc = one;
	}
	do_removes(m);
	return rc;
}

int meta_snap_must_resume(const struct meta *m, int snap_op)
{
	return m->snap_pending && (snap_op || m->snap_restore_pending || !m->snap_thawed);
}

void meta_snap_resume(struct meta *m)
{
	char err[512];
	if (now_ms() < m->snap_retry_ms)
		return;
	int rc = resume_all(m, err, sizeof(err));
	sqlite3_stmt *s = prep(m, "SELECT 1 FROM snap_pending WHERE kind = 'restore'");
	m->snap_restore_pending = !s || sqlite3_step(s) == SQLITE_ROW;
	sqlite3_finalize(s);
	if (rc == 0) {
		m->snap_pending = 0;
		return;
	}
	log_warnx("unfinished snapshot work, retried in %d ms: %s", RESUME_INTERVAL_MS, err);
	m->snap_retry_ms = now_ms() + RESUME_INTERVAL_MS;
}

/* --- create ----------------------------------------------------------------- */

static int next_snap_id(struct meta *m, uint64_t *id)
{
	if (exec3(m, "UPDATE counters SET value = value + 1 WHERE name = 'snap_id_last'", 0, 0,
		  0) < 0)
		return -EIO;
	sqlite3_stmt *s = prep(m, "SELECT value FROM counters WHERE name = 'snap_id_last'");
	int rc = s && sqlite3_step(s) == SQLITE_ROW ? 0 : -EIO;
	if (rc == 0)
		*id = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	if (rc == 0 && *id > SFS_SNAP_ID_MAX)
		rc = -ENOSPC;
	return rc;
}

/* Rows of the subtree into snap_entries, the snapshot made ready. */
static int create_commit(struct meta *m, struct sfs_snapinfo *info, uint64_t root_fid)
{
	int rc = exec3(m, "BEGIN IMMEDIATE", 0, 0, 0);
	if (rc < 0)
		return rc;
	rc = exec_cols(m, SUBTREE(2) "INSERT INTO snap_entries (snap_id, %s) SELECT ?1, %s"
		       " FROM entries WHERE fid IN (SELECT fid FROM sub)",
		       (int64_t)info->id, (int64_t)root_fid, 0);
	if (rc == 0)
		rc = exec3(m, "UPDATE snapshots SET ready = 1,"
			   " n_files = (SELECT COUNT(*) FROM snap_entries WHERE snap_id = ?1"
			   "  AND type = 1),"
			   " n_dirs = (SELECT COUNT(*) FROM snap_entries WHERE snap_id = ?1"
			   "  AND type = 2) WHERE id = ?1", (int64_t)info->id, 0, 0);
	if (rc == 0)
		rc = pending_done(m, "drop", info->id);
	if (rc == 0)
		rc = exec3(m, "COMMIT", 0, 0, 0);
	if (rc < 0)
		rollback_txn(m);
	return rc;
}

/* The snapshot row (not ready) and its drop intent, committed. */
static int create_announce(struct meta *m, const struct sfs_snapinfo *info, uint64_t root_fid)
{
	int rc = exec3(m, "BEGIN IMMEDIATE", 0, 0, 0);
	if (rc < 0)
		return rc;
	sqlite3_stmt *s = prep(m, "INSERT INTO snapshots (id, name, path, root_fid, created_ns)"
			       " VALUES (?1, ?2, ?3, ?4, ?5)");
	rc = s ? 0 : -EIO;
	if (s) {
		sqlite3_bind_int64(s, 1, (sqlite3_int64)info->id);
		sqlite3_bind_text(s, 2, info->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, info->path, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 4, (sqlite3_int64)root_fid);
		sqlite3_bind_int64(s, 5, info->created_ns);
		rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
		sqlite3_finalize(s);
	}
	if (rc == 0)
		rc = pending_add(m, "drop", info->id);
	if (rc == 0)
		rc = exec3(m, "COMMIT", 0, 0, 0);
	if (rc < 0)
		rollback_txn(m);
	return rc;
}

/* Freeze, link and thaw every I/O server: the cut. */
static int create_cut(struct meta *m, struct sfs_snapinfo *info, uint64_t root_fid, char *err,
		      size_t errlen)
{
	struct handle_sets sets = { .n_io = m->conf->n_io };
	uint64_t deadline = now_ms() + m->conf->snapshot_barrier_timeout_ms;
	sqlite3_stmt *s = prep(m, SUBTREE(1) "SELECT fid, servers FROM entries"
			       " WHERE fid IN (SELECT fid FROM sub) AND type = 1");
	int rc = -EIO;
	if (s) {
		sqlite3_bind_int64(s, 1, (sqlite3_int64)root_fid);
		rc = sets_fill(&sets, s);
		sqlite3_finalize(s);
	}
	if (rc < 0) {
		snprintf(err, errlen, "listing the files: %s", sqlite3_errmsg(m->db));
		goto out;
	}
	uint64_t t_frozen = now_ms();
	rc = freeze_all(m, info->id, deadline, err, errlen);
	if (rc < 0)
		goto out;
	fault_point("create:frozen");
	uint64_t t_linked = now_ms();
	rc = io_batches(m, SFS_OP_DF_SNAP_LINK, info->id, &sets, err, errlen);
	if (rc == 0 && now_ms() > deadline) {
		snprintf(err, errlen, "the barrier was not complete within "
			 "snapshot_barrier_timeout_ms (%u ms)", m->conf->snapshot_barrier_timeout_ms);
		rc = -ETIMEDOUT;
	}
	fault_point("create:linked");
	log_debug("snapshot %" PRIu64 ": listed in %" PRIu64 " ms, froze in %" PRIu64 " ms, "
		  "linked in %" PRIu64 " ms", info->id, t_frozen - (deadline -
		  m->conf->snapshot_barrier_timeout_ms), t_linked - t_frozen, now_ms() - t_linked);
	/* every thaw must find its freeze still held: then the cut was one instant */
	char thaw_err[512];
	int thaw_rc = io_each(m, SFS_OP_DF_SNAP_THAW, info->id, 0, 0, thaw_err, sizeof(thaw_err));
	if (rc == 0 && thaw_rc < 0) {
		snprintf(err, errlen, "%.180s", thaw_err);
		rc = thaw_rc == -EPROTO ? -ETIMEDOUT : thaw_rc;
	}
out:
	sets_free(&sets);
	return rc;
}

static int snap_create(struct meta *m, struct server_req *r, const struct path *p)
{
	struct sfs_snapinfo *info = &r->reply->snaps[0];
	struct entry root;
	char err[SFS_MAX_MSG + 1];
	const char *name = r->req->snap_name;
	int rc = check_name(r, name);
	if (rc < 0)
		return rc;
	if (meta_snap_is_snapshot_path(p))
		return server_fail(r, -EINVAL, "/" SNAPDIR_NAME " holds the snapshots themselves");
	rc = snap_by_name(m, name, info, NULL);
	if (rc == 0)
		return server_fail(r, -EEXIST, "a snapshot named \"%.100s\" exists already", name);
	if (rc != -ENOENT)
		return db_fail(m, r, "looking up a snapshot");
	rc = walk(m, r, p, p->n, &root);
	if (rc < 0)
		return rc;
	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof(info->name), "%s", name);
	path_text(p, info->path, sizeof(info->path));
	info->created_ns = wall_ns();
	if (next_snap_id(m, &info->id) < 0 || create_announce(m, info, root.fid) < 0) {
		if (sqlite3_extended_errcode(m->db) == SQLITE_CONSTRAINT_UNIQUE)
			return server_fail(r, -EEXIST, "snapshot \"%.100s\" is being removed; "
					   "try again", name);
		return db_fail(m, r, "recording a snapshot");
	}
	rc = create_cut(m, info, root.fid, err, sizeof(err));
	if (rc == 0 && create_commit(m, info, root.fid) < 0)
		rc = db_fail(m, r, "recording a snapshot");
	if (rc < 0) {
		char drop_err[256];
		if (!r->reply->msg[0])
			server_fail(r, rc, "snapshot \"%.60s\" failed, nothing kept: %s", name, err);
		exec3(m, "DELETE FROM snapshots WHERE id = ?1", (int64_t)info->id, 0, 0);
		if (do_drop(m, info->id, drop_err, sizeof(drop_err)) < 0)
			m->snap_pending = 1;
		return rc;
	}
	fault_point("create:committed");
	snap_by_name(m, name, info, NULL);
	r->reply->n_snaps = 1;
	log_info("snapshot \"%s\" (id %" PRIu64 ") of %s: %" PRIu64 " files, %" PRIu64 " dirs",
		 name, info->id, info->path, info->n_files, info->n_dirs);
	return 0;
}

/* --- rm, list ---------------------------------------------------------------- */

static int snap_rm(struct meta *m, struct server_req *r)
{
	struct sfs_snapinfo info;
	char err[512];
	const char *name = r->req->snap_name;
	int rc = snap_by_name(m, name, &info, NULL);
	if (rc == -ENOENT)
		return no_such_snapshot(r, name);
	if (rc < 0)
		return db_fail(m, r, "looking up a snapshot");
	rc = exec3(m, "BEGIN IMMEDIATE", 0, 0, 0);
	if (rc == 0)
		rc = exec3(m, "DELETE FROM snap_entries WHERE snap_id = ?1", (int64_t)info.id, 0, 0);
	if (rc == 0)
		rc = exec3(m, "DELETE FROM snapshots WHERE id = ?1", (int64_t)info.id, 0, 0);
	if (rc == 0)
		rc = pending_add(m, "drop", info.id);
	if (rc == 0)
		rc = exec3(m, "COMMIT", 0, 0, 0);
	if (rc < 0) {
		rollback_txn(m);
		return db_fail(m, r, "removing a snapshot");
	}
	fault_point("rm:committed");
	if (do_drop(m, info.id, err, sizeof(err)) < 0) {
		log_warnx("snapshot \"%s\" removed; its datafiles go when every server answers: %s",
			  name, err);
		m->snap_pending = 1;
	}
	return 0;
}

static int snap_list(struct meta *m, struct server_req *r)
{
	struct sfs_reply *reply = r->reply;
	size_t body_bytes = 2 + 1;
	sqlite3_stmt *s = prep(m, "SELECT id, name, path, created_ns, n_files, n_dirs FROM snapshots"
			       " WHERE ready = 1 AND name > ?1 ORDER BY name LIMIT ?2");
	if (!s)
		return db_fail(m, r, "listing snapshots");
	sqlite3_bind_text(s, 1, r->req->snap_name, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, SFS_SNAPLIST_MAX + 1);
	reply->n_snaps = 0;
	reply->eof = 1;
	while (sqlite3_step(s) == SQLITE_ROW) {
		struct sfs_snapinfo one = { 0 };
		one.id = (uint64_t)sqlite3_column_int64(s, 0);
		snprintf(one.name, sizeof(one.name), "%s", sqlite3_column_text(s, 1));
		snprintf(one.path, sizeof(one.path), "%s", sqlite3_column_text(s, 2));
		one.created_ns = sqlite3_column_int64(s, 3);
		one.n_files = (uint64_t)sqlite3_column_int64(s, 4);
		one.n_dirs = (uint64_t)sqlite3_column_int64(s, 5);
		size_t bytes = sfs_snapinfo_wire_bytes(&one);
		if (reply->n_snaps == SFS_SNAPLIST_MAX || body_bytes + bytes > SFS_MAX_BODY_BYTES) {
			reply->eof = 0;
			break;
		}
		reply->snaps[reply->n_snaps++] = one;
		body_bytes += bytes;
	}
	sqlite3_finalize(s);
	return 0;
}

/* --- rollback ------------------------------------------------------------------- */

/* The namespace half of a rollback, one transaction: the tree now at the
 * path (cur_fid, -1 if none) and every row the snapshot has go; the
 * snapshot's rows come back, hung under parent_fid; the datafiles of files
 * that go for good, and the restore itself, are recorded as pending. */
static int rollback_commit(struct meta *m, uint64_t snap_id, uint64_t root_fid, int64_t cur_fid,
			   uint64_t parent_fid, int has_parent)
{
	int rc = exec3(m, "BEGIN IMMEDIATE", 0, 0, 0);
	if (rc < 0)
		return rc;
	rc = exec3(m, SUBTREE(1) "INSERT INTO snap_pending (kind, fid, servers)"
		   " SELECT 'remove', fid, servers FROM entries WHERE type = 1"
		   " AND fid IN (SELECT fid FROM sub)"
		   " AND fid NOT IN (SELECT fid FROM snap_entries WHERE snap_id = ?2)",
		   cur_fid, (int64_t)snap_id, 0);
	if (rc == 0)
		rc = exec3(m, SUBTREE(1) "DELETE FROM entries WHERE fid IN (SELECT fid FROM sub)"
			   " OR fid IN (SELECT fid FROM snap_entries WHERE snap_id = ?2)",
			   cur_fid, (int64_t)snap_id, 0);
	if (rc == 0)
		rc = exec_cols(m, "INSERT INTO entries (%s) SELECT %s FROM snap_entries"
			       " WHERE snap_id = ?1", (int64_t)snap_id, 0, 0);
	if (rc == 0 && has_parent)
		rc = exec3(m, "UPDATE entries SET parent = ?2 WHERE fid = ?1", (int64_t)root_fid,
			   (int64_t)parent_fid, 0);
	if (rc == 0)
		rc = pending_add(m, "restore", snap_id);
	if (rc == 0)
		rc = exec3(m, "COMMIT", 0, 0, 0);
	if (rc < 0)
		rollback_txn(m);
	return rc;
}

/* EBUSY when a file of the tree at cur_fid is being written (DF_SNAP_BUSY
 * on every I/O server, while they are frozen). */
static int rollback_busy(struct meta *m, uint64_t cur_fid, uint64_t snap_id, char *err,
			 size_t errlen)
{
	struct handle_sets sets = { .n_io = m->conf->n_io };
	sqlite3_stmt *s = prep(m, SUBTREE(1) "SELECT fid, servers FROM entries"
			       " WHERE fid IN (SELECT fid FROM sub) AND type = 1");
	int rc = -EIO;
	if (s) {
		sqlite3_bind_int64(s, 1, (sqlite3_int64)cur_fid);
		rc = sets_fill(&sets, s);
		sqlite3_finalize(s);
	}
	if (rc < 0)
		snprintf(err, errlen, "listing the files: %s", sqlite3_errmsg(m->db));
	else
		rc = io_batches(m, SFS_OP_DF_SNAP_BUSY, snap_id, &sets, err, errlen);
	sets_free(&sets);
	return rc;
}

static int snap_rollback(struct meta *m, struct server_req *r)
{
	struct sfs_snapinfo *info = &r->reply->snaps[0];
	struct path sp;
	struct entry parent = { 0 }, cur = { 0 };
	char err[512];
	uint64_t root_fid;
	const char *name = r->req->snap_name;
	int rc = snap_by_name(m, name, info, &root_fid);
	if (rc == -ENOENT)
		return no_such_snapshot(r, name);
	if (rc < 0)
		return db_fail(m, r, "looking up a snapshot");
	if (m->snap_pending)
		return server_fail(r, -EAGAIN, "earlier snapshot work is still unfinished (a "
				   "server is unreachable); see the metadata server's log");
	if (parse_path(r, info->path, &sp) < 0)
		return -EIO;
	if (sp.n > 0) {
		rc = walk(m, r, &sp, sp.n - 1, &parent);
		if (rc == 0 && parent.type != SFS_TYPE_DIR)
			rc = -ENOTDIR;
		if (rc < 0)
			return server_fail(r, rc, "snapshot \"%.60s\": the directory holding %.100s "
					   "is gone; recreate it first", name, info->path);
	}
	rc = walk(m, r, &sp, sp.n, &cur);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	r->reply->msg[0] = '\0';
	/* nothing at the path now: a subtree of no fid (fid 0 would be the
	 * root's parent, the whole namespace) */
	int64_t cur_fid = rc == -ENOENT ? -1 : (int64_t)cur.fid;
	uint64_t deadline = now_ms() + m->conf->snapshot_barrier_timeout_ms;
	rc = freeze_all(m, info->id, deadline, err, sizeof(err));
	if (rc < 0)
		return server_fail(r, rc, "rollback to \"%.60s\" failed, nothing changed: %s", name,
				   err);
	if (!(r->req->flags & SFS_SNAP_ROLLBACK_FORCE) && cur_fid > 0) {
		rc = rollback_busy(m, (uint64_t)cur_fid, info->id, err, sizeof(err));
		if (rc < 0) {
			char ignored[256];
			io_each(m, SFS_OP_DF_SNAP_THAW, info->id, 0, 0, ignored, sizeof(ignored));
			return server_fail(r, rc, "rollback to \"%.60s\" refused, nothing changed: "
					   "%.200s%s", name, err, rc == -EBUSY ? " (force it to "
					   "roll back anyway)" : "");
		}
	}
	fault_point("rollback:frozen");
	if (rollback_commit(m, info->id, root_fid, cur_fid, parent.fid, sp.n > 0) < 0) {
		char ignored[256];
		io_each(m, SFS_OP_DF_SNAP_THAW, info->id, 0, 0, ignored, sizeof(ignored));
		return db_fail(m, r, "rolling back");
	}
	fault_point("rollback:committed");
	/* the namespace is rolled back: from here on, finishing is only a
	 * matter of time (see the top of this file) */
	/* the freeze still holds: do_restore renews it, restores, thaws */
	rc = do_restore(m, info->id, err, sizeof(err));
	if (rc < 0) {
		m->snap_pending = m->snap_restore_pending = 1;
		return server_fail(r, -EIO, "rolled back in the namespace, but restoring datafiles "
				   "failed: %.100s; it completes once the server answers", err);
	}
	do_removes(m);
	log_info("rolled %s back to snapshot \"%s\" (id %" PRIu64 ")", info->path, name, info->id);
	r->reply->n_snaps = 1;
	return 0;
}

/* --- fsck ---------------------------------------------------------------------- */

/* Every handle of I/O server io (live datafiles, or snapshot ids) in
 * ascending order into *out. */
static int io_list_all(struct meta *m, unsigned io, uint64_t snap_id, uint64_t **out,
		       uint32_t *n, char *err, size_t errlen)
{
	struct sfs_req *req = calloc(1, sizeof(*req));
	struct sfs_reply *reply = malloc(sizeof(*reply));
	uint64_t *all = NULL;
	uint32_t count = 0;
	int rc = req && reply ? 0 : -ENOMEM;
	for (int eof = 0; rc == 0 && !eof;) {
		req->op = SFS_OP_DF_LIST;
		req->snap_id = snap_id;
		req->handle = count ? all[count - 1] : 0;
		rc = meta_io_request(m, io, req, reply, 0, err, errlen);
		if (rc < 0)
			break;
		uint64_t *more = realloc(all, (count + reply->n_handles + 1) * sizeof(*all));
		if (!more) {
			rc = -ENOMEM;
			break;
		}
		all = more;
		memcpy(all + count, reply->handles, reply->n_handles * sizeof(*all));
		count += reply->n_handles;
		eof = reply->eof || reply->n_handles == 0;
	}
	free(req);
	free(reply);
	*out = all;
	*n = count;
	return rc;
}

static int has_handle(const uint64_t *h, uint32_t n, uint64_t v)
{
	uint32_t lo = 0, hi = n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (h[mid] == v)
			return 1;
		if (h[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* Leaked datafiles (no file names them), leaked snapshot directories (no
 * snapshot or pending work names them) and missing datafiles, logged one
 * by one and counted into the reply. */
static int snap_fsck(struct meta *m, struct server_req *r)
{
	struct sfs_reply *reply = r->reply;
	char err[512];
	if (r->req->flags)
		return server_fail(r, -EINVAL, "fsck flags 0x%x: none are defined", r->req->flags);
	reply->n_files = reply->n_dirs = reply->n_snaps = 0;
	sqlite3_stmt *owner = prep(m, "SELECT servers FROM entries WHERE fid = ?1 AND type = 1");
	sqlite3_stmt *known = prep(m, "SELECT 1 FROM snapshots WHERE id = ?1 UNION ALL"
				   " SELECT 1 FROM snap_pending WHERE snap_id = ?1");
	sqlite3_stmt *files = prep(m, "SELECT fid, servers FROM entries WHERE type = 1");
	int rc = owner && known && files ? 0 : -EIO;
	for (unsigned io = 0; rc == 0 && io < m->conf->n_io; io++) {
		uint64_t *h = NULL, *snaps = NULL;
		uint32_t n = 0, n_snaps = 0;
		rc = io_list_all(m, io, 0, &h, &n, err, sizeof(err));
		if (rc == 0)
			rc = io_list_all(m, io, SFS_DF_LIST_SNAPS, &snaps, &n_snaps, err,
					 sizeof(err));
		for (uint32_t i = 0; rc == 0 && i < n; i++) {
			sqlite3_reset(owner);
			sqlite3_bind_int64(owner, 1, (sqlite3_int64)h[i]);
			int mine = 0;
			if (sqlite3_step(owner) == SQLITE_ROW) {
				const uint8_t *b = sqlite3_column_blob(owner, 0);
				for (int k = 0; b && k + 1 < sqlite3_column_bytes(owner, 0); k += 2)
					mine |= (unsigned)(b[k] | b[k + 1] << 8) == io;
			}
			if (!mine) {
				log_warnx("fsck: I/O server %s: datafile 0x%" PRIx64 " belongs to no "
					  "file (leaked)", m->conf->io[io].name, h[i]);
				reply->n_files++;
			}
		}
		for (uint32_t i = 0; rc == 0 && i < n_snaps; i++) {
			sqlite3_reset(known);
			sqlite3_bind_int64(known, 1, (sqlite3_int64)snaps[i]);
			if (sqlite3_step(known) != SQLITE_ROW) {
				log_warnx("fsck: I/O server %s: snapshot %" PRIu64 " has datafiles but "
					  "no snapshot (leaked)", m->conf->io[io].name, snaps[i]);
				reply->n_dirs++;
			}
		}
		sqlite3_reset(files);
		while (rc == 0 && sqlite3_step(files) == SQLITE_ROW) {
			uint64_t fid = (uint64_t)sqlite3_column_int64(files, 0);
			const uint8_t *b = sqlite3_column_blob(files, 1);
			for (int k = 0; b && k + 1 < sqlite3_column_bytes(files, 1); k += 2) {
				if ((unsigned)(b[k] | b[k + 1] << 8) != io || has_handle(h, n, fid))
					continue;
				log_warnx("fsck: I/O server %s: datafile 0x%" PRIx64 " is missing",
					  m->conf->io[io].name, fid);
				reply->n_snaps++;
			}
		}
		free(h);
		free(snaps);
	}
	sqlite3_finalize(owner);
	sqlite3_finalize(known);
	sqlite3_finalize(files);
	if (rc < 0)
		return server_fail(r, rc, "%s", err);
	return 0;
}

/* --- /.snapshots ----------------------------------------------------------------- */

int meta_snap_is_snapshot_path(const struct path *p)
{
	return p->n >= 1 && strcmp(p->comp[0], SNAPDIR_NAME) == 0;
}

static int snap_child(struct meta *m, uint64_t snap_id, uint64_t parent, const char *name,
		      struct entry *e)
{
	sqlite3_stmt *s = prep(m, "SELECT " ENTRY_COLUMNS " FROM snap_entries"
			       " WHERE snap_id = ?1 AND parent = ?2 AND name = ?3");
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)snap_id);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)parent);
	sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
	int rc = entry_fetch(m, s, e);
	sqlite3_finalize(s);
	return rc;
}

/* Walk /.snapshots/NAME/rest into *e (fid still the plain fid). */
static int snap_walk(struct meta *m, struct server_req *r, const struct path *p, uint64_t *id,
		     struct entry *e)
{
	struct sfs_snapinfo info;
	uint64_t root_fid;
	int rc = snap_by_name(m, p->comp[1], &info, &root_fid);
	if (rc == -ENOENT)
		return no_such_snapshot(r, p->comp[1]);
	if (rc < 0)
		return db_fail(m, r, "looking up a snapshot");
	*id = info.id;
	sqlite3_stmt *s = prep(m, "SELECT " ENTRY_COLUMNS " FROM snap_entries"
			       " WHERE snap_id = ?1 AND fid = ?2");
	if (!s)
		return db_fail(m, r, "reading a snapshot");
	sqlite3_bind_int64(s, 1, (sqlite3_int64)info.id);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)root_fid);
	rc = entry_fetch(m, s, e);
	sqlite3_finalize(s);
	for (unsigned i = 2; rc == 0 && i < p->n; i++) {
		if (e->type != SFS_TYPE_DIR)
			return server_fail(r, -ENOTDIR, "%s is not a directory in the snapshot",
					   p->comp[i - 1]);
		rc = snap_child(m, info.id, e->fid, p->comp[i], e);
		if (rc == -ENOENT && i + 1 < p->n)
			return server_fail(r, rc, "%s does not exist in the snapshot", p->comp[i]);
	}
	if (rc < 0 && rc != -ENOENT)
		return db_fail(m, r, "reading a snapshot");
	return rc;
}

static void snapdir_attr(struct sfs_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->fid = SNAPDIR_FID;
	a->type = SFS_TYPE_DIR;
	a->mode = 0555;
}

static int snap_lookup(struct meta *m, struct server_req *r, const struct path *p)
{
	struct entry e;
	uint64_t id;
	if (p->n == 1) {
		snapdir_attr(&r->reply->attr);
		return 0;
	}
	int rc = snap_walk(m, r, p, &id, &e);
	if (rc < 0)
		return rc;
	attr_from_entry(&e, &r->reply->attr);
	r->reply->attr.fid = SFS_SNAP_HANDLE(id, e.fid);
	r->reply->attr.mode &= ~0222u;
	return 0;
}

/* READDIR rows of s (name, type, fid) into the reply, as meta_readdir. */
static int readdir_rows(struct server_req *r, sqlite3_stmt *s, uint64_t snap_id)
{
	struct sfs_reply *reply = r->reply;
	size_t body_bytes = 2 + 1;
	reply->n_entries = 0;
	reply->eof = 1;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(s, 0);
		size_t len = (size_t)sqlite3_column_bytes(s, 0);
		if (!name || len > SFS_MAX_NAME)
			continue;
		if (reply->n_entries == SFS_READDIR_MAX ||
		    body_bytes + 2 + len + 1 + 8 > SFS_MAX_BODY_BYTES) {
			reply->eof = 0;
			break;
		}
		struct sfs_dirent *d = &reply->entries[reply->n_entries++];
		memcpy(d->name, name, len);
		d->name[len] = '\0';
		d->type = (uint8_t)sqlite3_column_int(s, 1);
		d->fid = SFS_SNAP_HANDLE(snap_id ? snap_id : (uint64_t)sqlite3_column_int64(s, 3),
					 (uint64_t)sqlite3_column_int64(s, 2));
		body_bytes += 2 + len + 1 + 8;
	}
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

static int snap_readdir(struct meta *m, struct server_req *r, const struct path *p)
{
	struct entry dir;
	uint64_t id = 0;
	sqlite3_stmt *s;
	if (p->n == 1) {
		s = prep(m, "SELECT name, 2, root_fid, id FROM snapshots WHERE ready = 1"
			 " AND name > ?1 ORDER BY name LIMIT ?2");
		if (!s)
			return db_fail(m, r, "listing snapshots");
		sqlite3_bind_text(s, 1, r->req->cookie, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 2, SFS_READDIR_MAX + 1);
	} else {
		int rc = snap_walk(m, r, p, &id, &dir);
		if (rc < 0)
			return rc;
		if (dir.type != SFS_TYPE_DIR)
			return -ENOTDIR;
		s = prep(m, "SELECT name, type, fid FROM snap_entries WHERE snap_id = ?1"
			 " AND parent = ?2 AND name > ?3 ORDER BY name LIMIT ?4");
		if (!s)
			return db_fail(m, r, "reading a snapshot");
		sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
		sqlite3_bind_int64(s, 2, (sqlite3_int64)dir.fid);
		sqlite3_bind_text(s, 3, r->req->cookie, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 4, SFS_READDIR_MAX + 1);
	}
	int rc = readdir_rows(r, s, id);
	sqlite3_finalize(s);
	return rc < 0 ? db_fail(m, r, "listing a snapshot") : 0;
}

int meta_snap_is_handle_request(const struct sfs_req *q)
{
	switch (q->op) {
	case SFS_OP_GETATTR:
	case SFS_OP_SETATTR:
	case SFS_OP_READLINK:
	case SFS_OP_SETMTIME:
	case SFS_OP_APPEND_LOCK:
	case SFS_OP_OPEN:
		return SFS_HANDLE_SNAP(q->handle) != 0;
	default:
		return 0;
	}
}

/* GETATTR and READLINK of a snapshot handle: the file as the snapshot
 * holds it, read-only. Anything else naming one is refused. */
static int snap_by_handle(struct meta *m, struct server_req *r)
{
	uint64_t id = SFS_HANDLE_SNAP(r->req->handle), fid = SFS_HANDLE_FID(r->req->handle);
	int getattr = r->req->op == SFS_OP_GETATTR || r->req->op == SFS_OP_OPEN;
	if ((!getattr && r->req->op != SFS_OP_READLINK) ||
	    (r->req->op == SFS_OP_OPEN && (r->req->flags & (SFS_OPEN_WRITE | SFS_OPEN_TRUNC))))
		return server_fail(r, -EROFS, "handle 0x%" PRIx64 " is a snapshot's: read-only",
				   r->req->handle);
	struct entry e;
	sqlite3_stmt *s = prep(m, "SELECT " ENTRY_COLUMNS ", target FROM snap_entries"
			       " WHERE snap_id = ?1 AND fid = ?2");
	if (!s)
		return db_fail(m, r, "reading a snapshot");
	sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)fid);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		rc = row_read(s, &e);
	else
		rc = rc == SQLITE_DONE ? -ENOENT : -EIO;
	if (rc == 0 && !getattr) {
		const char *target = (const char *)sqlite3_column_text(s, 12);
		if (e.type != SFS_TYPE_SYMLINK || !target)
			rc = -EINVAL;
		else
			snprintf(r->reply->target, sizeof(r->reply->target), "%s", target);
	}
	sqlite3_finalize(s);
	if (rc == -ENOENT)
		return server_fail(r, rc, "no entry of snapshot %" PRIu64 " has fid %" PRIu64
				   " (removed?)", id, fid);
	if (rc == -EINVAL)
		return server_fail(r, rc, "handle 0x%" PRIx64 " is not a symbolic link",
				   r->req->handle);
	if (rc < 0)
		return db_fail(m, r, "reading a snapshot");
	if (r->req->op == SFS_OP_OPEN && perm_open(r, &e, r->req->flags) < 0)
		return -EACCES;
	if (getattr) {
		attr_from_entry(&e, &r->reply->attr);
		r->reply->attr.fid = r->req->handle;
		r->reply->attr.mode &= ~0222u;
	}
	return 0;
}

/* OPEN by path of a file in a snapshot: read-only, and only for whom the
 * file's own mode lets read it (a snapshot must not leak what the live
 * file keeps private). */
static int snap_open(struct meta *m, struct server_req *r, const struct path *p)
{
	if (r->req->flags & (SFS_OPEN_WRITE | SFS_OPEN_TRUNC))
		return server_fail(r, -EROFS, "/" SNAPDIR_NAME " is read-only (snapshots cannot "
				   "be changed)");
	int rc = snap_lookup(m, r, p);
	if (rc < 0)
		return rc;
	const struct sfs_attr *a = &r->reply->attr;
	struct entry e = { .type = a->type, .mode = a->mode, .uid = a->uid, .gid = a->gid };
	return perm_open(r, &e, r->req->flags);
}

int meta_snap_handle(struct meta *m, struct server_req *r, const struct path *p)
{
	if (meta_snap_is_handle_request(r->req))
		return snap_by_handle(m, r);
	switch (r->req->op) {
	case SFS_OP_SNAP_CREATE: return snap_create(m, r, p);
	case SFS_OP_SNAP_LIST: return snap_list(m, r);
	case SFS_OP_SNAP_RM: return snap_rm(m, r);
	case SFS_OP_SNAP_ROLLBACK: return snap_rollback(m, r);
	case SFS_OP_SNAP_FSCK: return snap_fsck(m, r);
	case SFS_OP_LOOKUP: return snap_lookup(m, r, p);
	case SFS_OP_READDIR: return snap_readdir(m, r, p);
	case SFS_OP_OPEN: return snap_open(m, r, p);
	default:
		return server_fail(r, -EROFS, "/" SNAPDIR_NAME " is read-only (snapshots cannot "
				   "be changed)");
	}
}
