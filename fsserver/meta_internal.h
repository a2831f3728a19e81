/*
 * meta_internal: what the metadata server's files share: meta.c (the
 * namespace), meta_snap.c (snapshots of it) and meta_locks.c (locks). Not an interface for
 * anything else in sfsd.
 */
#ifndef MIGD_SFSD_META_INTERNAL_H
#define MIGD_SFSD_META_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

#include "meta.h"
#include "servcap.h"
#include "sfs_rpc.h"

struct lock_table;

#define IO_POOL_MAX 8      /* idle connections kept per I/O server */
#define META_MAX_STMTS 16  /* prepared statements of meta.c */

/* The columns row_read() reads, in its order. meta_snap.c selects them
 * from its copies of the table too. */
#define ENTRY_COLUMNS \
	"fid, parent, type, mode, mtime_ns, ctime_ns, strip_size, stripe_count, servers," \
	" uid, gid, atime_ns"

struct io_pool {
	pthread_mutex_t lock;
	struct sfs_conn *idle[IO_POOL_MAX];
	unsigned n_idle;
};

struct meta {
	const struct sfs_conf *conf;
	const char *dir;      /* the server's directory, holding meta.db */
	char db_path[600];
	pthread_mutex_t lock; /* guards db, st[], next_fid and the snapshot state */
	sqlite3 *db;          /* NULL once stopped */
	sqlite3_stmt *st[META_MAX_STMTS];
	uint64_t next_fid;
	uint64_t fid_reserved; /* fids below this are reserved in the database */
	struct io_pool *pools; /* one per I/O server */
	struct lock_table *locks; /* fcntl, flock and append locks (meta_locks.c) */
	struct servcap *caps;  /* signs clients' capabilities and its own */
	/* meta_snap.c */
	char *entry_cols;      /* every column of entries, "a, b, c" */
	int snap_pending;      /* unfinished snapshot work may be in snap_pending */
	int snap_thawed;       /* freezes of a previous run released */
	int snap_restore_pending; /* a rollback's datafiles are not all restored */
	uint64_t snap_retry_ms; /* not before then */
};

/* A row of entries. For a directory, layout holds the defaults for new
 * files and no servers. */
struct entry {
	uint64_t fid, parent;
	uint8_t type;
	uint32_t mode;
	uint32_t uid, gid;
	int64_t atime_ns, mtime_ns, ctime_ns;
	struct sfs_layout layout;
};

/* A request path split into checked components. */
struct path {
	char buf[SFS_MAX_PATH + 1];
	const char *comp[(SFS_MAX_PATH + 1) / 2];
	unsigned n;
};

/* meta.c */
int db_fail(struct meta *m, struct server_req *r, const char *what);
int parse_path(struct server_req *r, const char *in, struct path *p);
void attr_from_entry(const struct entry *e, struct sfs_attr *a);
/* A row of ENTRY_COLUMNS from s: 0, or -EIO when it is corrupt. */
int row_read(sqlite3_stmt *s, struct entry *e);
/* Step a SELECT of ENTRY_COLUMNS expected to give at most one row. */
int entry_fetch(struct meta *m, sqlite3_stmt *s, struct entry *e);
int fid_get(struct meta *m, uint64_t fid, struct entry *e);
/* Walk the first upto components of p from the root (under the lock). */
int walk(struct meta *m, struct server_req *r, const struct path *p, unsigned upto,
	 struct entry *e);
/* Best effort, failures logged: the datafiles of fid on count servers of l. */
void remove_datafiles(struct meta *m, uint64_t fid, const struct sfs_layout *l,
		      unsigned count);
/* One request to I/O server io_index on a pooled connection (req gets the
 * metadata server's own capability), retried once
 * on a fresh connection if a pooled one had gone stale: only for requests
 * that are safe to repeat. reply may be NULL; timeout_ms 0 is the config's.
 * err begins "server NAME at HOST:PORT: ". */
int meta_io_request(struct meta *m, unsigned io_index, struct sfs_req *req,
		    struct sfs_reply *reply, uint32_t timeout_ms, char *err, size_t errlen);

/* meta_perm.c: POSIX checks for r->who (auth.h). The checks that fail
 * return -EACCES or -EPERM with the reason in r->reply->msg. */
#define PERM_R 4u
#define PERM_W 2u
#define PERM_X 1u
/* 1 when who may do every bit of mask (PERM_*) on e. */
int perm_may(const struct sfs_identity *who, const struct entry *e, unsigned mask);
int perm_in_group(const struct sfs_identity *who, uint32_t gid);
/* The owner, or root. */
int perm_is_owner(const struct sfs_identity *who, const struct entry *e);
/* perm_may, or -EACCES; name (may be NULL) is the entry for the message
 * when it is not the request's own path. */
int perm_check(struct server_req *r, const struct entry *e, unsigned mask, const char *name);
/* RENAME of src from from_dir to to_dir (w and x on both, sticky bit,
 * and w on a directory that changes parent). */
int perm_rename(struct server_req *r, const struct entry *from_dir, const struct entry *src,
		const struct entry *to_dir);
/* Removing or renaming victim out of dir: the sticky bit's rule. */
int perm_sticky(struct server_req *r, const struct entry *dir, const struct entry *victim);
/* An open of e with SFS_OPEN_* flags. */
int perm_open(struct server_req *r, const struct entry *e, uint32_t flags);
/* Owner of a new entry in dir: the caller's, or for root the request's. */
void perm_new_owner(const struct server_req *r, const struct entry *dir, uint32_t *uid,
		    uint32_t *gid);
/* SETATTR of e as r asks: 0 or -EPERM; *mode_clear: mode bits to drop. */
int perm_setattr(struct server_req *r, const struct entry *e, uint32_t *mode_clear);

/* meta_cap.c */
/* The uid of whoever sent r: see meta_cap.c. */
uint32_t meta_caller_uid(const struct server_req *r);
/* After a LOOKUP, CREATE, GETATTR or SETATTR that succeeded and describes a file:
 * the caller's capability for it into r->reply->cap. */
void meta_cap_grant(struct meta *m, struct server_req *r);

/* meta_snap.c */
/* Schema version 2 -> 3: the snapshot tables. In the upgrade transaction. */
int meta_snap_schema_v3(sqlite3 *db, char *err, size_t errlen);

/* meta_schema.c: run sql (no rows); the one integer sql gives; the schema
 * created or upgraded to the server's version in one transaction. 0 or
 * -EIO with err set. */
int meta_db_exec(struct meta *m, const char *sql, char *err, size_t errlen);
int meta_db_int(struct meta *m, const char *sql, int64_t *out, char *err, size_t errlen);
int meta_schema_upgrade(struct meta *m, char *err, size_t errlen);
/* After the schema is current: learn entries' columns, give the snapshot
 * copy every one of them, and note unfinished work from before a crash. */
int meta_snap_open(struct meta *m, char *err, size_t errlen);
/* SNAP_* requests, and LOOKUP/READDIR under /.snapshots (others there are
 * refused: snapshots are read-only). Under the lock. */
int meta_snap_handle(struct meta *m, struct server_req *r, const struct path *p);
/* 1 for a request by handle (GETATTR, SETATTR, READLINK, SETMTIME,
 * APPEND_LOCK) whose handle is a snapshot's (meta_snap_handle serves it:
 * reads from the snapshot, refuses changes). */
int meta_snap_is_handle_request(const struct sfs_req *q);
/* 1 when p is under /.snapshots (meta_snap_handle serves it). */
int meta_snap_is_snapshot_path(const struct path *p);
/* Finish what a crash or an unreachable server left undone, at most once
 * a second. Under the lock. */
void meta_snap_resume(struct meta *m);
/* Whether a request (snap_op: a SNAP_* one) must first meta_snap_resume:
 * every request while a rollback is unfinished (no client may see a tree
 * half restored) or freezes of a previous run may be held; only snapshot
 * requests for mere garbage (datafiles to drop), so an unreachable I/O
 * server does not slow the namespace down. */
int meta_snap_must_resume(const struct meta *m, int snap_op);

#endif
