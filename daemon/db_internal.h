/*
 * db_internal: what db.c and db_migrations.c share and the rest of the
 * daemon must not see: the handle's insides (the SQLite connection and the
 * statement cache) and the statement and column helpers. db.c holds the
 * schema, transactions, hosts, guests, policies, health and events;
 * db_migrations.c the migration rows and their history.
 */
#ifndef MIGD_DB_INTERNAL_H
#define MIGD_DB_INTERNAL_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

#define STMT_CACHE 64

struct db {
	sqlite3 *h;
	int lock_fd;                 /* flock'ed: one migd per database */
	int in_txn;
	int batch;                   /* a group commit is open: see db_batch_begin */
	size_t batch_mark;           /* pending events before the open inner one */
	uint64_t hosts_gen, guests_gen;
	json_t *pending;             /* events of the open transaction */
	json_t *outbox;              /* committed events not yet taken */
	struct {
		const char *sql;
		sqlite3_stmt *st;
	} cache[STMT_CACHE];
	size_t n_cache;
};

/* Fills the struct out (a db_host, db_guest, ...) from the current row. */
typedef void row_read_fn(sqlite3_stmt *st, void *out);

/* Log SQLite's error for what; -EIO. */
int db_fail(struct db *db, const char *what);
/* The cached statement for sql (a static string), reset and unbound. */
sqlite3_stmt *prep(struct db *db, const char *sql);
/* Run a statement that returns no rows. */
int step_done(struct db *db, sqlite3_stmt *st, const char *what);
/* step_done for an UPDATE or DELETE of one row: -ENOENT when none matched. */
int step_changed(struct db *db, sqlite3_stmt *st, const char *what);
/* Step st to its one row and read it into out; st is reset.
 * Returns 0, -ENOENT when there is no row, or -EIO. */
int read_one(struct db *db, sqlite3_stmt *st, row_read_fn *read, void *out, const char *what);
/* read_one for sql, which selects the row named by its one parameter. */
int read_named(struct db *db, const char *sql, const char *name, row_read_fn *read, void *out,
	       const char *what);
/* NULL for an empty string, an unreached (0) timestamp, an unknown (-1) figure. */
void bind_text(sqlite3_stmt *st, int i, const char *s);
void bind_ts(sqlite3_stmt *st, int i, int64_t ns);
void bind_figure(sqlite3_stmt *st, int i, int64_t v);
void col_text(sqlite3_stmt *st, int i, char *buf, size_t len);
int64_t col_figure(sqlite3_stmt *st, int i);
/* One integer from a query with no parameters. */
int64_t query_int(struct db *db, const char *sql, int64_t dflt);
/* A string, or null when empty; a time or figure, or null when unset. */
json_t *opt_str(const char *s);
json_t *opt_int(int64_t v, int64_t unset);

#endif
