/*
 * db_migrations: the migration rows (see db.h): their states, reading and
 * writing them, the filtered history that reports and the cost model read,
 * the staggered starts' due times, and a row as an API object. Apart from
 * db.c because a migration row is most of what db.c held; the helpers both
 * use are in db_internal.h.
 */
#include "db_internal.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- migrations ------------------------------------------------------- */

static const char *const state_names[DB_MIG_N_STATES] = {
	"queued", "started", "migrating", "completed", "failed", "aborted",
};

const char *db_mig_state_name(enum db_mig_state s)
{
	return (unsigned)s < DB_MIG_N_STATES ? state_names[s] : "unknown";
}

int db_mig_state_parse(const char *name, enum db_mig_state *out)
{
	for (int i = 0; i < DB_MIG_N_STATES; i++) {
		if (name && strcmp(name, state_names[i]) == 0) {
			*out = (enum db_mig_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

#define MIG_COLS \
	"m.id, m.guest, m.src, m.dst, m.state, m.priority, m.policy, m.reason, m.queued_ns," \
	" m.not_before_ns, m.started_ns, m.migrating_ns, m.finished_ns, m.total_ms," \
	" m.downtime_ms, m.bytes, m.rounds, m.reconciled, m.error, m.quiesce_mode," \
	" m.quiesce_deadline_ms, m.on_quiesce_miss, m.io_lull_bps, m.io_lull_wait_ms," \
	" m.quiesce_ns, m.quiesce_ms, m.resume_ns, m.resume_ms, m.drained_requests," \
	" m.drained_bytes, m.quiesce, m.resume, m.lull_wait_ms, m.lull_reason, m.defers," \
	" m.link_bps, m.dirty_rate_bps, m.ram_bytes, m.setup_ms"
#define MIG_N_COLS 39

/* Columns 19.. of MIG_COLS: the knobs and the agent-side cost (step 3). */
static void mig_read_agent(sqlite3_stmt *st, struct db_migration *m)
{
	char text[16];
	struct db_mig_knobs *k = &m->knobs;
	col_text(st, 19, text, sizeof(text));
	if (db_quiesce_mode_parse(text, &k->quiesce) < 0)
		k->quiesce = DB_QUIESCE_OFF; /* a row from before quiesce existed */
	k->quiesce_deadline_ms = (unsigned)(col_figure(st, 20) < 0 ? 0 : col_figure(st, 20));
	col_text(st, 21, text, sizeof(text));
	k->miss_aborts = strcmp(text, "abort") == 0;
	k->io_lull_bps = (uint64_t)(col_figure(st, 22) < 0 ? 0 : col_figure(st, 22));
	k->io_lull_wait_ms = (unsigned)(col_figure(st, 23) < 0 ? 0 : col_figure(st, 23));
	m->quiesce_ns = sqlite3_column_int64(st, 24);
	m->quiesce_ms = col_figure(st, 25);
	m->resume_ns = sqlite3_column_int64(st, 26);
	m->resume_ms = col_figure(st, 27);
	m->drained_requests = col_figure(st, 28);
	m->drained_bytes = col_figure(st, 29);
	col_text(st, 30, m->quiesce, sizeof(m->quiesce));
	col_text(st, 31, m->resume, sizeof(m->resume));
	m->lull_wait_ms = col_figure(st, 32);
	col_text(st, 33, m->lull_reason, sizeof(m->lull_reason));
	m->defers = sqlite3_column_int(st, 34);
}

static void mig_read_ids(sqlite3_stmt *st, struct db_migration *m, int with_ids)
{
	char state[16];
	memset(m, 0, sizeof(*m));
	m->id = sqlite3_column_int64(st, 0);
	col_text(st, 1, m->guest, sizeof(m->guest));
	col_text(st, 2, m->src, sizeof(m->src));
	col_text(st, 3, m->dst, sizeof(m->dst));
	col_text(st, 4, state, sizeof(state));
	if (db_mig_state_parse(state, &m->state) < 0)
		m->state = DB_MIG_FAILED; /* not written by migd: treat as over */
	m->priority = sqlite3_column_int(st, 5);
	col_text(st, 6, m->policy, sizeof(m->policy));
	col_text(st, 7, m->reason, sizeof(m->reason));
	m->queued_ns = sqlite3_column_int64(st, 8);
	m->not_before_ns = sqlite3_column_int64(st, 9);
	m->started_ns = sqlite3_column_int64(st, 10);
	m->migrating_ns = sqlite3_column_int64(st, 11);
	m->finished_ns = sqlite3_column_int64(st, 12);
	m->total_ms = col_figure(st, 13);
	m->downtime_ms = col_figure(st, 14);
	m->bytes = col_figure(st, 15);
	m->rounds = (int)col_figure(st, 16);
	m->reconciled = sqlite3_column_int(st, 17);
	col_text(st, 18, m->error, sizeof(m->error));
	mig_read_agent(st, m);
	m->link_bps = col_figure(st, 35);
	m->dirty_rate_bps = col_figure(st, 36);
	m->ram_bytes = col_figure(st, 37);
	m->setup_ms = col_figure(st, 38);
	if (with_ids) {
		m->guest_id = sqlite3_column_int64(st, MIG_N_COLS);
		m->src_id = sqlite3_column_int64(st, MIG_N_COLS + 1);
		m->dst_id = sqlite3_column_int64(st, MIG_N_COLS + 2);
	}
}

static void mig_read(sqlite3_stmt *st, void *out)
{
	mig_read_ids(st, out, 0);
}

int db_mig_add(struct db *db, struct db_migration *m)
{
	static const char sql[] = "INSERT INTO migrations (guest, src, dst, state, priority,"
				  " policy, reason, queued_ns, not_before_ns, quiesce_mode,"
				  " quiesce_deadline_ms, on_quiesce_miss, io_lull_bps, io_lull_wait_ms)"
				  " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, m->guest, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, m->src, -1, SQLITE_TRANSIENT);
	bind_text(st, 3, m->dst);
	sqlite3_bind_text(st, 4, db_mig_state_name(m->state), -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, m->priority);
	bind_text(st, 6, m->policy);
	bind_text(st, 7, m->reason);
	sqlite3_bind_int64(st, 8, m->queued_ns);
	sqlite3_bind_int64(st, 9, m->not_before_ns ? m->not_before_ns : m->queued_ns);
	sqlite3_bind_text(st, 10, db_quiesce_mode_name(m->knobs.quiesce), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 11, m->knobs.quiesce_deadline_ms);
	sqlite3_bind_text(st, 12, m->knobs.miss_aborts ? "abort" : "defer", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 13, (int64_t)m->knobs.io_lull_bps);
	sqlite3_bind_int64(st, 14, m->knobs.io_lull_wait_ms);
	int rc = step_done(db, st, "adding a migration");
	if (rc == 0)
		m->id = sqlite3_last_insert_rowid(db->h);
	return rc;
}

void db_mig_figures_unknown(struct db_migration *m)
{
	m->quiesce_ms = m->resume_ms = m->drained_requests = m->drained_bytes = -1;
	m->lull_wait_ms = -1;
	m->link_bps = m->dirty_rate_bps = m->ram_bytes = m->setup_ms = -1;
}

int db_mig_get(struct db *db, int64_t id, struct db_migration *out)
{
	static const char sql[] = "SELECT " MIG_COLS " FROM migrations m WHERE m.id = ?";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	return read_one(db, st, mig_read, out, "reading a migration");
}

int db_mig_update(struct db *db, const struct db_migration *m)
{
	static const char sql[] = "UPDATE migrations SET src = ?, dst = ?, state = ?,"
				  " started_ns = ?, migrating_ns = ?, finished_ns = ?, total_ms = ?,"
				  " downtime_ms = ?, bytes = ?, rounds = ?, reconciled = ?, error = ?,"
				  " not_before_ns = ?, quiesce_ns = ?, quiesce_ms = ?, resume_ns = ?,"
				  " resume_ms = ?, drained_requests = ?, drained_bytes = ?, quiesce = ?,"
				  " resume = ?, lull_wait_ms = ?, lull_reason = ?, defers = ?,"
				  " link_bps = ?, dirty_rate_bps = ?, ram_bytes = ?, setup_ms = ?"
				  " WHERE id = ?";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, m->src, -1, SQLITE_TRANSIENT);
	bind_text(st, 2, m->dst);
	sqlite3_bind_text(st, 3, db_mig_state_name(m->state), -1, SQLITE_STATIC);
	bind_ts(st, 4, m->started_ns);
	bind_ts(st, 5, m->migrating_ns);
	bind_ts(st, 6, m->finished_ns);
	bind_figure(st, 7, m->total_ms);
	bind_figure(st, 8, m->downtime_ms);
	bind_figure(st, 9, m->bytes);
	bind_figure(st, 10, m->rounds);
	sqlite3_bind_int(st, 11, m->reconciled);
	bind_text(st, 12, m->error);
	sqlite3_bind_int64(st, 13, m->not_before_ns ? m->not_before_ns : m->queued_ns);
	bind_ts(st, 14, m->quiesce_ns);
	bind_figure(st, 15, m->quiesce_ms);
	bind_ts(st, 16, m->resume_ns);
	bind_figure(st, 17, m->resume_ms);
	bind_figure(st, 18, m->drained_requests);
	bind_figure(st, 19, m->drained_bytes);
	bind_text(st, 20, m->quiesce);
	bind_text(st, 21, m->resume);
	bind_figure(st, 22, m->lull_wait_ms);
	bind_text(st, 23, m->lull_reason);
	sqlite3_bind_int(st, 24, m->defers);
	bind_figure(st, 25, m->link_bps);
	bind_figure(st, 26, m->dirty_rate_bps);
	bind_figure(st, 27, m->ram_bytes);
	bind_figure(st, 28, m->setup_ms);
	sqlite3_bind_int64(st, 29, m->id);
	return step_changed(db, st, "updating a migration");
}

int db_mig_active_for_guest(struct db *db, const char *guest, struct db_migration *out)
{
	static const char sql[] = "SELECT " MIG_COLS " FROM migrations m WHERE m.guest = ?"
				  " AND m.state IN ('queued', 'started', 'migrating')"
				  " ORDER BY m.id LIMIT 1";
	return read_named(db, sql, guest, mig_read, out, "reading a migration");
}

/* The WHERE clause of a filter; parameters are bound by bind_filter(). */
static void filter_sql(const struct db_mig_filter *f, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, " WHERE 1");
	if (f->states) {
		n += (size_t)snprintf(buf + n, len - n, " AND m.state IN (");
		for (int s = 0, first = 1; s < DB_MIG_N_STATES; s++) {
			if (!(f->states & DB_MIG_BIT(s)))
				continue;
			n += (size_t)snprintf(buf + n, len - n, "%s'%s'", first ? "" : ",",
					      state_names[s]);
			first = 0;
		}
		n += (size_t)snprintf(buf + n, len - n, ")");
	}
	if (f->since_ns)
		n += (size_t)snprintf(buf + n, len - n, " AND m.finished_ns >= :since");
	if (f->policy)
		n += (size_t)snprintf(buf + n, len - n, " AND COALESCE(m.policy, '') = :policy");
	if (f->not_before_max_ns)
		n += (size_t)snprintf(buf + n, len - n, " AND m.not_before_ns <= :due");
	if (f->page && f->after_id && f->order == DB_ORDER_FINISHED)
		snprintf(buf + n, len - n, " AND (m.finished_ns, m.id) > (SELECT a.finished_ns, a.id"
			 " FROM migrations a WHERE a.id = :after)");
	else if (f->page && f->after_id && f->order == DB_ORDER_QUEUE) /* priority DESC, id */
		snprintf(buf + n, len - n, " AND (m.priority, -m.id) < (SELECT a.priority, -a.id"
			 " FROM migrations a WHERE a.id = :after)");
	else if (f->page && f->after_id)
		snprintf(buf + n, len - n, " AND m.id > :after");
}

static void bind_filter(sqlite3_stmt *st, const struct db_mig_filter *f)
{
	if (f->since_ns)
		sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":since"), f->since_ns);
	if (f->policy)
		sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":policy"), f->policy, -1,
				  SQLITE_TRANSIENT);
	if (f->not_before_max_ns)
		sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":due"),
				   f->not_before_max_ns);
	if (f->page && f->after_id)
		sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, ":after"), f->after_id);
}

int db_mig_list(struct db *db, const struct db_mig_filter *f, db_mig_fn fn, void *arg)
{
	static const struct db_mig_filter all = { 0 };
	/* each order, and its reverse for taking the last N */
	static const char *const orders[][2] = {
		[DB_ORDER_ID] = { "m.id", "m.id DESC" },
		[DB_ORDER_QUEUE] = { "m.priority DESC, m.id", "m.priority ASC, m.id DESC" },
		[DB_ORDER_FINISHED] = { "m.finished_ns, m.id", "m.finished_ns DESC, m.id DESC" },
	};
	static const char *const outer[] = { "i_", "p_ DESC, i_", "f_, i_" };
	char where[512], sql[1536];
	if (!f)
		f = &all;
	unsigned o = (unsigned)f->order <= DB_ORDER_FINISHED ? (unsigned)f->order : DB_ORDER_ID;
	filter_sql(f, where, sizeof(where));
	const char *ids = f->with_ids ? ", g.id, s.id, d.id" : "";
	const char *joins = f->with_ids ? " LEFT JOIN guests g ON g.name = m.guest"
					  " LEFT JOIN hosts s ON s.name = m.src"
					  " LEFT JOIN hosts d ON d.name = m.dst"
					: "";
	if (f->page) /* the first N after the cursor */
		snprintf(sql, sizeof(sql), "SELECT " MIG_COLS "%s FROM migrations m%s%s ORDER BY %s"
			 " LIMIT %u", ids, joins, where, orders[o][0], f->limit);
	else if (f->limit) /* the last N: take them in reverse, then put them back in order */
		snprintf(sql, sizeof(sql),
			 "SELECT * FROM (SELECT " MIG_COLS "%s, m.priority AS p_, m.id AS i_,"
			 " m.finished_ns AS f_ FROM migrations m%s%s ORDER BY %s LIMIT %u)"
			 " ORDER BY %s",
			 ids, joins, where, orders[o][1], f->limit, outer[o]);
	else
		snprintf(sql, sizeof(sql), "SELECT " MIG_COLS "%s FROM migrations m%s%s ORDER BY %s",
			 ids, joins, where, orders[o][0]);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, "listing migrations");
	bind_filter(st, f);
	struct db_migration row;
	int step, ret = 0;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		mig_read_ids(st, &row, f->with_ids);
		if ((ret = fn(arg, &row)) != 0)
			break;
	}
	if (ret == 0 && step != SQLITE_DONE)
		ret = db_fail(db, "listing migrations");
	sqlite3_finalize(st);
	return ret;
}

int db_mig_delay_firing(struct db *db, const char *policy, int64_t queued_ns, int64_t after_ns,
			int64_t delay_ns)
{
	static const char sql[] = "UPDATE migrations SET not_before_ns = not_before_ns + ?"
				  " WHERE state = 'queued' AND policy = ? AND queued_ns = ?"
				  " AND not_before_ns > ?";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, delay_ns);
	sqlite3_bind_text(st, 2, policy, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, queued_ns);
	sqlite3_bind_int64(st, 4, after_ns);
	return step_done(db, st, "delaying a policy's migrations");
}

int64_t db_mig_next_due_ns(struct db *db, int64_t now_ns)
{
	static const char sql[] = "SELECT MIN(not_before_ns) FROM migrations"
				  " WHERE state = 'queued' AND not_before_ns > ?";
	sqlite3_stmt *st = prep(db, sql);
	int64_t v = 0;
	if (!st)
		return 0;
	sqlite3_bind_int64(st, 1, now_ns);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return v;
}

int64_t db_mig_last_start_ns(struct db *db)
{
	static const char sql[] = "SELECT MAX(started_ns) FROM migrations";
	return query_int(db, sql, 0);
}

/* ---- rows as API objects ---------------------------------------------- */

json_t *db_mig_json(const struct db_migration *m)
{
	json_t *o = json_pack("{s:I, s:s, s:s, s:o, s:s, s:s, s:o, s:o}", "id", (json_int_t)m->id,
			      "guest", m->guest, "src", m->src, "dst", opt_str(m->dst), "state",
			      db_mig_state_name(m->state), "priority", db_priority_name(m->priority),
			      "policy", opt_str(m->policy), "reason", opt_str(m->reason));
	json_object_set_new(o, "queued_ns", json_integer(m->queued_ns));
	json_object_set_new(o, "not_before_ns", json_integer(m->not_before_ns));
	json_object_set_new(o, "started_ns", opt_int(m->started_ns, 0));
	json_object_set_new(o, "migrating_ns", opt_int(m->migrating_ns, 0));
	json_object_set_new(o, "finished_ns", opt_int(m->finished_ns, 0));
	json_object_set_new(o, "total_ms", opt_int(m->total_ms, -1));
	json_object_set_new(o, "downtime_ms", opt_int(m->downtime_ms, -1));
	json_object_set_new(o, "bytes", opt_int(m->bytes, -1));
	json_object_set_new(o, "rounds", opt_int(m->rounds, -1));
	json_object_set_new(o, "reconciled", json_boolean(m->reconciled));
	json_object_set_new(o, "error", opt_str(m->error));
	json_object_set_new(o, "knobs", db_knobs_json(&m->knobs));
	json_object_set_new(o, "quiesce", opt_str(m->quiesce));
	json_object_set_new(o, "quiesce_ns", opt_int(m->quiesce_ns, 0));
	json_object_set_new(o, "quiesce_ms", opt_int(m->quiesce_ms, -1));
	json_object_set_new(o, "drained_requests", opt_int(m->drained_requests, -1));
	json_object_set_new(o, "drained_bytes", opt_int(m->drained_bytes, -1));
	json_object_set_new(o, "resume", opt_str(m->resume));
	json_object_set_new(o, "resume_ns", opt_int(m->resume_ns, 0));
	json_object_set_new(o, "resume_ms", opt_int(m->resume_ms, -1));
	json_object_set_new(o, "lull_wait_ms", opt_int(m->lull_wait_ms, -1));
	json_object_set_new(o, "lull_reason", opt_str(m->lull_reason));
	json_object_set_new(o, "defers", json_integer(m->defers));
	json_object_set_new(o, "link_bps", opt_int(m->link_bps, -1));
	json_object_set_new(o, "dirty_rate_bps", opt_int(m->dirty_rate_bps, -1));
	json_object_set_new(o, "ram_bytes", opt_int(m->ram_bytes, -1));
	json_object_set_new(o, "setup_ms", opt_int(m->setup_ms, -1));
	return o;
}

json_t *db_knobs_json(const struct db_mig_knobs *k)
{
	json_t *o = json_object();
	json_object_set_new(o, "quiesce", json_string(db_quiesce_mode_name(k->quiesce)));
	json_object_set_new(o, "quiesce_deadline_ms", json_integer(k->quiesce_deadline_ms));
	json_object_set_new(o, "on_quiesce_miss", json_string(k->miss_aborts ? "abort" : "defer"));
	json_object_set_new(o, "io_lull_bps", json_integer((json_int_t)k->io_lull_bps));
	json_object_set_new(o, "io_lull_wait_ms", json_integer(k->io_lull_wait_ms));
	return o;
}

static const char *const quiesce_mode_names[] = { "best-effort", "required", "off" };

const char *db_quiesce_mode_name(enum db_quiesce_mode mode)
{
	return (unsigned)mode < ARRAY_SIZE(quiesce_mode_names) ? quiesce_mode_names[mode]
							       : "unknown";
}

int db_quiesce_mode_parse(const char *name, enum db_quiesce_mode *out)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(quiesce_mode_names); i++) {
		if (strcmp(name, quiesce_mode_names[i]) == 0) {
			*out = (enum db_quiesce_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}
