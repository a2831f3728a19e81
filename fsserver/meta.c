/*
 * meta: see meta.h.
 *
 * One table holds the whole namespace: a row per file or directory keyed
 * by fid, found from its parent's fid and its name (UNIQUE(parent, name),
 * which is also the index READDIR walks in name order). A path is resolved
 * one component at a time from the root, so there is no path string to
 * keep consistent and an RMDIR is a single-row change.
 *
 * One SQLite handle under one mutex: metadata operations are short and
 * serialized, which is what SQLite does anyway. The mutex is not held
 * while CREATE waits for the I/O servers, so a slow I/O server delays only
 * the creates that need it. Fids come from an in-memory counter, reserved
 * in the database a batch at a time (counters.fid_reserved), so a fid is
 * never handed out twice, even after a crash and even when the newest file
 * was removed: a client still holding an unlinked file open can never
 * write into a newer file that reused its fid.
 *
 * Connections to the I/O servers are kept in a small pool per server and
 * connect lazily, so the metadata server starts whether or not the I/O
 * servers are up yet.
 *
 * Locks (fcntl ranges, flock, the O_APPEND lock) are in memory, in
 * meta_locks.c; this file only routes their requests and tells it when a
 * connection closes.
 */
#include "meta.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "meta_internal.h"
#include "meta_locks.h"
#include "sfs_rpc.h"
#include "util.h"

/* 2: uid, gid, atime_ns, target (symlinks); 3: snapshots (meta_snap.c) */
#define FID_BATCH 1024       /* fids reserved per database write */
#define DB_BUSY_TIMEOUT_MS 5000
/* TCP keepalive on client connections: a vanished client's connection (and
 * with it its locks, meta_locks.h) is closed after idle + count * interval. */
#define KEEPALIVE_IDLE_S 10
#define KEEPALIVE_INTERVAL_S 2
#define KEEPALIVE_COUNT 3

enum stmt_id {
	ST_CHILD,
	ST_BY_FID,
	ST_INSERT,
	ST_DELETE,
	ST_HAS_CHILD,
	ST_LIST,
	ST_SET_STRIPE,
	ST_SET_MTIME,
	ST_COUNT,
	ST_SET_ATTR,
	ST_MOVE,
	ST_TARGET,
	ST_N
};
_Static_assert(ST_N <= META_MAX_STMTS, "raise META_MAX_STMTS");


static const char *const stmt_sql[ST_N] = {
	[ST_CHILD] = "SELECT " ENTRY_COLUMNS " FROM entries WHERE parent = ?1 AND name = ?2",
	[ST_BY_FID] = "SELECT " ENTRY_COLUMNS " FROM entries WHERE fid = ?1",
	[ST_INSERT] = "INSERT INTO entries (fid, parent, name, type, mode, mtime_ns, ctime_ns,"
		      " strip_size, stripe_count, servers, uid, gid, atime_ns, target)"
		      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
	[ST_DELETE] = "DELETE FROM entries WHERE fid = ?1",
	[ST_HAS_CHILD] = "SELECT 1 FROM entries WHERE parent = ?1 LIMIT 1",
	[ST_LIST] = "SELECT name, type, fid FROM entries WHERE parent = ?1 AND name > ?2"
		    " ORDER BY name LIMIT ?3",
	[ST_SET_STRIPE] = "UPDATE entries SET strip_size = ?2, stripe_count = ?3 WHERE fid = ?1",
	[ST_SET_MTIME] = "UPDATE entries SET mtime_ns = ?2, ctime_ns = ?2 WHERE fid = ?1",
	[ST_COUNT] = "SELECT type, COUNT(*) FROM entries GROUP BY type",
	[ST_SET_ATTR] = "UPDATE entries SET mode = ?2, uid = ?3, gid = ?4, atime_ns = ?5,"
			" mtime_ns = ?6, ctime_ns = ?7 WHERE fid = ?1",
	[ST_MOVE] = "UPDATE entries SET parent = ?2, name = ?3, ctime_ns = ?4 WHERE fid = ?1",
	[ST_TARGET] = "SELECT target FROM entries WHERE fid = ?1",
};

/* Per connection: datafiles to remove once the UNLINK reply is out. */
struct meta_conn {
	int remove_pending;
	struct entry removed;
	uint64_t lock_session; /* the client whose locks this connection carried */
};

/* --- small helpers ------------------------------------------------------ */

static sqlite3_stmt *stmt(struct meta *m, enum stmt_id id)
{
	sqlite3_stmt *s = m->st[id];
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

int db_fail(struct meta *m, struct server_req *r, const char *what)
{
	const char *why = sqlite3_errmsg(m->db);
	log_warnx("%s: %s: %s", m->db_path, what, why);
	return server_fail(r, -EIO, "metadata database error while %s: %s", what, why);
}

/* The next fid, reserving another batch in the database first when the
 * reserved ones are used up. Called with m->lock held. */
static int fid_alloc(struct meta *m, struct server_req *r, uint64_t *fid)
{
	if (m->next_fid >= m->fid_reserved) {
		char sql[128];
		uint64_t limit = m->next_fid + FID_BATCH;
		snprintf(sql, sizeof(sql),
			 "UPDATE counters SET value = %" PRIu64 " WHERE name = 'fid_reserved'", limit);
		if (sqlite3_exec(m->db, sql, NULL, NULL, NULL) != SQLITE_OK)
			return db_fail(m, r, "reserving file ids");
		m->fid_reserved = limit;
	}
	*fid = m->next_fid++;
	return 0;
}


int parse_path(struct server_req *r, const char *in, struct path *p)
{
	char *out = p->buf;
	const char *s = in;
	p->n = 0;
	if (in[0] != '/')
		return server_fail(r, -EINVAL, "a path must start with /");
	for (;;) {
		while (*s == '/')
			s++;
		if (*s == '\0')
			return 0;
		const char *start = s;
		while (*s && *s != '/')
			s++;
		size_t len = (size_t)(s - start);
		if (len > SFS_MAX_NAME)
			return server_fail(r, -EINVAL, "a name is longer than %d bytes",
					   SFS_MAX_NAME);
		if (start[0] == '.' && (len == 1 || (len == 2 && start[1] == '.')))
			return server_fail(r, -EINVAL, ". and .. are not allowed in a path");
		memcpy(out, start, len);
		out[len] = '\0';
		p->comp[p->n++] = out;
		out += len + 1;
	}
}

void attr_from_entry(const struct entry *e, struct sfs_attr *a)
{
	a->fid = e->fid;
	a->type = e->type;
	a->mode = e->mode;
	a->uid = e->uid;
	a->gid = e->gid;
	a->atime_ns = e->atime_ns;
	a->mtime_ns = e->mtime_ns;
	a->ctime_ns = e->ctime_ns;
	a->layout = e->layout;
}

/* --- rows --------------------------------------------------------------- */

int row_read(sqlite3_stmt *s, struct entry *e)
{
	memset(e, 0, sizeof(*e));
	e->fid = (uint64_t)sqlite3_column_int64(s, 0);
	e->parent = (uint64_t)sqlite3_column_int64(s, 1);
	e->type = (uint8_t)sqlite3_column_int(s, 2);
	e->mode = (uint32_t)sqlite3_column_int64(s, 3);
	e->mtime_ns = sqlite3_column_int64(s, 4);
	e->ctime_ns = sqlite3_column_int64(s, 5);
	e->layout.strip_size = (uint32_t)sqlite3_column_int64(s, 6);
	int64_t count = sqlite3_column_int64(s, 7);
	const uint8_t *blob = sqlite3_column_blob(s, 8);
	int blob_bytes = sqlite3_column_bytes(s, 8);
	e->uid = (uint32_t)sqlite3_column_int64(s, 9);
	e->gid = (uint32_t)sqlite3_column_int64(s, 10);
	e->atime_ns = sqlite3_column_int64(s, 11);
	if (count < 0 || count > SFS_MAX_STRIPE ||
	    (e->type != SFS_TYPE_FILE && e->type != SFS_TYPE_DIR && e->type != SFS_TYPE_SYMLINK))
		return -EIO;
	e->layout.stripe_count = (uint16_t)count;
	if (e->type != SFS_TYPE_FILE)
		return 0;
	if (blob_bytes != 2 * count || (count && !blob))
		return -EIO;
	for (int64_t i = 0; i < count; i++)
		e->layout.servers[i] = (uint16_t)(blob[2 * i] | blob[2 * i + 1] << 8);
	return 0;
}

/* Run a SELECT of ENTRY_COLUMNS expected to give at most one row. */
int entry_fetch(struct meta *m, sqlite3_stmt *s, struct entry *e)
{
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		rc = row_read(s, e) < 0 ? -EUCLEAN : 0;
	else
		rc = rc == SQLITE_DONE ? -ENOENT : -EIO;
	sqlite3_reset(s);
	if (rc == -EUCLEAN)
		log_warnx("%s: a row is corrupt (bad type or layout)", m->db_path);
	return rc == -EUCLEAN ? -EIO : rc;
}

static int child_get(struct meta *m, uint64_t parent, const char *name, struct entry *e)
{
	sqlite3_stmt *s = stmt(m, ST_CHILD);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)parent);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	return entry_fetch(m, s, e);
}

int fid_get(struct meta *m, uint64_t fid, struct entry *e)
{
	sqlite3_stmt *s = stmt(m, ST_BY_FID);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)fid);
	return entry_fetch(m, s, e);
}

/* Insert e named name (target: a symlink's, else NULL); commits
 * (autocommit) before it returns 0. -EEXIST when (parent, name) is taken. */
static int entry_insert_target(struct meta *m, const struct entry *e, const char *name,
			       const char *target)
{
	uint8_t blob[2 * SFS_MAX_STRIPE];
	unsigned n = e->type == SFS_TYPE_FILE ? e->layout.stripe_count : 0;
	for (unsigned i = 0; i < n; i++) {
		blob[2 * i] = (uint8_t)e->layout.servers[i];
		blob[2 * i + 1] = (uint8_t)(e->layout.servers[i] >> 8);
	}
	sqlite3_stmt *s = stmt(m, ST_INSERT);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)e->fid);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)e->parent);
	sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 4, e->type);
	sqlite3_bind_int64(s, 5, e->mode);
	sqlite3_bind_int64(s, 6, e->mtime_ns);
	sqlite3_bind_int64(s, 7, e->ctime_ns);
	sqlite3_bind_int64(s, 8, e->layout.strip_size);
	sqlite3_bind_int(s, 9, e->layout.stripe_count);
	if (n)
		sqlite3_bind_blob(s, 10, blob, (int)(2 * n), SQLITE_STATIC);
	sqlite3_bind_int64(s, 11, e->uid);
	sqlite3_bind_int64(s, 12, e->gid);
	sqlite3_bind_int64(s, 13, e->atime_ns);
	if (target)
		sqlite3_bind_text(s, 14, target, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	int ext = sqlite3_extended_errcode(m->db);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return 0;
	return ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY ? -EEXIST
										     : -EIO;
}

static int entry_insert(struct meta *m, const struct entry *e, const char *name)
{
	return entry_insert_target(m, e, name, NULL);
}

static int entry_delete(struct meta *m, uint64_t fid)
{
	sqlite3_stmt *s = stmt(m, ST_DELETE);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)fid);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* --- path resolution (under the lock) ------------------------------------ */

/* "/a/b": the first k components of p, for messages. */
static const char *path_prefix(const struct path *p, unsigned k, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (unsigned i = 0; i < k && used < len; i++) {
		int n = snprintf(buf + used, len - used, "/%s", p->comp[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	return buf;
}

/* Messages name a path only when it is not the request's own (which the
 * client names): here the first k components, k < p->n. */
static int not_a_dir(struct server_req *r, const struct path *p, unsigned k)
{
	char prefix[SFS_MAX_MSG + 1];
	return server_fail(r, -ENOTDIR, "%s is not a directory",
			   path_prefix(p, k, prefix, sizeof(prefix)));
}

static int no_entry(struct server_req *r, const struct path *p, unsigned k)
{
	char prefix[SFS_MAX_MSG + 1];
	if (k == p->n)
		return -ENOENT; /* the request's path: the errno says it all */
	return server_fail(r, -ENOENT, "%s does not exist",
			   path_prefix(p, k, prefix, sizeof(prefix)));
}

/* Walk the first upto components of p from the root into *e. */
int walk(struct meta *m, struct server_req *r, const struct path *p, unsigned upto,
		struct entry *e)
{
	int rc = fid_get(m, SFS_ROOT_FID, e);
	if (rc < 0)
		return db_fail(m, r, "reading the root directory");
	for (unsigned i = 0; i < upto; i++) {
		if (e->type != SFS_TYPE_DIR)
			return not_a_dir(r, p, i);
		if (!perm_may(r->who, e, PERM_X)) {
			char prefix[SFS_MAX_MSG + 1];
			path_prefix(p, i, prefix, sizeof(prefix));
			return perm_check(r, e, PERM_X, prefix[0] ? prefix : "/");
		}
		rc = child_get(m, e->fid, p->comp[i], e);
		if (rc == -ENOENT)
			return no_entry(r, p, i + 1);
		if (rc < 0)
			return db_fail(m, r, "looking up a name");
	}
	return 0;
}

/* The directory that holds the last component of p (p->n >= 1). */
static int walk_parent(struct meta *m, struct server_req *r, const struct path *p,
		       struct entry *dir)
{
	int rc = walk(m, r, p, p->n - 1, dir);
	if (rc < 0)
		return rc;
	if (dir->type != SFS_TYPE_DIR)
		return not_a_dir(r, p, p->n - 1);
	return 0;
}

/* --- I/O servers ---------------------------------------------------------- */

static struct sfs_conn *pool_get(struct meta *m, unsigned io_index)
{
	struct io_pool *pool = &m->pools[io_index];
	struct sfs_conn *c = NULL;
	pthread_mutex_lock(&pool->lock);
	if (pool->n_idle)
		c = pool->idle[--pool->n_idle];
	pthread_mutex_unlock(&pool->lock);
	if (!c) {
		c = malloc(sizeof(*c));
		if (c)
			sfs_conn_init(c, m->conf, &m->conf->io[io_index]);
	}
	return c;
}

static void pool_put(struct meta *m, unsigned io_index, struct sfs_conn *c)
{
	struct io_pool *pool = &m->pools[io_index];
	pthread_mutex_lock(&pool->lock);
	if (pool->n_idle < IO_POOL_MAX) {
		pool->idle[pool->n_idle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&pool->lock);
	if (c) {
		sfs_conn_close(c);
		free(c);
	}
}

/* One DF_CREATE or DF_REMOVE (both idempotent): see meta_io_request. */
static int io_call(struct meta *m, unsigned io_index, uint16_t op, uint64_t handle, char *err,
		   size_t errlen)
{
	struct sfs_req *req = calloc(1, sizeof(*req));
	if (!req) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	req->op = op;
	req->handle = handle;
	int rc = meta_io_request(m, io_index, req, NULL, 0, err, errlen);
	free(req);
	return rc;
}

int meta_io_request(struct meta *m, unsigned io_index, struct sfs_req *req,
		    struct sfs_reply *reply_out, uint32_t timeout_ms, char *err, size_t errlen)
{
	struct sfs_reply *reply = reply_out ? reply_out : malloc(sizeof(*reply));
	int rc;
	if (!reply) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	servcap_admin(m->caps, &req->cap); /* valid for half a lifetime at least */
	for (int attempt = 0;; attempt++) {
		struct sfs_conn *c = pool_get(m, io_index);
		if (!c) {
			snprintf(err, errlen, "out of memory");
			rc = -ENOMEM;
			break;
		}
		int was_open = c->fd >= 0;
		c->timeout_ms = timeout_ms;
		rc = sfs_conn_call(c, req, NULL, 0, reply, NULL, 0, NULL, err, errlen);
		c->timeout_ms = 0;
		int transport_failed = rc < 0 && c->fd < 0;
		if (rc < 0 && !transport_failed) {
			/* the I/O server's own answer: say which server gave it */
			char label[256], msg[SFS_MAX_MSG + 1];
			snprintf(msg, sizeof(msg), "%s", err);
			snprintf(err, errlen, "%s: %s",
				 sfs_server_label(c->srv, label, sizeof(label)), msg);
		}
		pool_put(m, io_index, c);
		if (!transport_failed || !was_open || rc == -ETIMEDOUT || attempt > 0)
			break;
	}
	if (reply != reply_out)
		free(reply);
	return rc;
}

/* Best effort: what fails is left behind as an orphan and logged. */
void remove_datafiles(struct meta *m, uint64_t fid, const struct sfs_layout *l,
			     unsigned count)
{
	char err[256];
	for (unsigned i = 0; i < count; i++) {
		unsigned idx = l->servers[i];
		if (idx >= m->conf->n_io)
			continue;
		int rc = io_call(m, idx, SFS_OP_DF_REMOVE, fid, err, sizeof(err));
		if (rc < 0 && rc != -ENOENT)
			log_warnx("datafile 0x%" PRIx64 " left as an orphan: %s", fid, err);
	}
}

static int create_datafiles(struct meta *m, struct server_req *r, uint64_t fid,
			    const struct sfs_layout *l)
{
	char err[256];
	for (unsigned i = 0; i < l->stripe_count; i++) {
		unsigned idx = l->servers[i];
		int rc = io_call(m, idx, SFS_OP_DF_CREATE, fid, err, sizeof(err));
		if (rc < 0) {
			log_warnx("create %s: %s", r->req->path, err);
			remove_datafiles(m, fid, l, i);
			return server_fail(r, rc, "creating a datafile: %s", err);
		}
	}
	return 0;
}

static void layout_for_new_file(const struct meta *m, const struct entry *dir, uint64_t fid,
				struct sfs_layout *l)
{
	unsigned n_io = m->conf->n_io;
	unsigned count = dir->layout.stripe_count ? dir->layout.stripe_count
						  : m->conf->stripe_count;
	if (count == 0 || count > n_io)
		count = n_io;
	if (count > SFS_MAX_STRIPE)
		count = SFS_MAX_STRIPE;
	memset(l, 0, sizeof(*l));
	l->strip_size = dir->layout.strip_size ? dir->layout.strip_size : m->conf->strip_size;
	l->stripe_count = (uint16_t)count;
	unsigned start = (unsigned)(fid % n_io); /* spreads files over the servers */
	for (unsigned i = 0; i < count; i++)
		l->servers[i] = (uint16_t)((start + i) % n_io);
}

/* --- operations ------------------------------------------------------------ */

static int meta_lookup(struct meta *m, struct server_req *r, const struct path *p)
{
	struct entry e;
	int rc = walk(m, r, p, p->n, &e);
	if (rc == 0)
		attr_from_entry(&e, &r->reply->attr);
	return rc;
}

/* CREATE, first half under the lock: an existing file answers at once;
 * otherwise pick the fid and layout. 1 = new file planned in *e. */
static int create_plan(struct meta *m, struct server_req *r, const struct path *p,
		       struct entry *e)
{
	struct entry dir;
	if (p->n == 0)
		return -EISDIR;
	int rc = walk_parent(m, r, p, &dir);
	if (rc < 0)
		return rc;
	rc = child_get(m, dir.fid, p->comp[p->n - 1], e);
	if (rc == 0) {
		if (r->req->flags & SFS_CREATE_EXCL)
			return -EEXIST;
		if (e->type == SFS_TYPE_DIR)
			return -EISDIR;
		if (e->type == SFS_TYPE_SYMLINK) /* the client follows links, not sfsd */
			return server_fail(r, -ELOOP, "a symbolic link");
		rc = perm_open(r, e, r->req->flags);
		if (rc == 0)
			attr_from_entry(e, &r->reply->attr);
		return rc;
	}
	if (rc != -ENOENT)
		return db_fail(m, r, "looking up a name");
	rc = perm_check(r, &dir, PERM_W | PERM_X, "its directory");
	if (rc < 0)
		return rc;
	memset(e, 0, sizeof(*e));
	if (fid_alloc(m, r, &e->fid) < 0)
		return -EIO;
	e->parent = dir.fid;
	e->type = SFS_TYPE_FILE;
	e->mode = r->req->mode & 07777;
	perm_new_owner(r, &dir, &e->uid, &e->gid);
	e->atime_ns = e->mtime_ns = e->ctime_ns = wall_ns();
	layout_for_new_file(m, &dir, e->fid, &e->layout);
	return 1;
}

/* CREATE, second half under the lock: commit the row. *undo = 1 when
 * the new datafiles must go again (lost a race, or failed). */
static int create_commit(struct meta *m, struct server_req *r, const struct path *p,
			 const struct entry *e, int *undo)
{
	struct entry dir, other;
	*undo = 1;
	if (!m->db)
		return server_fail(r, -ESHUTDOWN, "the metadata server is stopping");
	int rc = fid_get(m, e->parent, &dir);
	if (rc == -ENOENT || (rc == 0 && dir.type != SFS_TYPE_DIR))
		return server_fail(r, -ENOENT, "its directory was removed meanwhile");
	if (rc == 0)
		rc = entry_insert(m, e, p->comp[p->n - 1]);
	if (rc == 0) {
		*undo = 0;
		attr_from_entry(e, &r->reply->attr);
		return 0;
	}
	if (rc != -EEXIST || child_get(m, e->parent, p->comp[p->n - 1], &other) < 0)
		return db_fail(m, r, "creating a file");
	/* Another client created it first: answer as if it had been there. */
	if (r->req->flags & SFS_CREATE_EXCL)
		return -EEXIST;
	if (other.type == SFS_TYPE_DIR)
		return -EISDIR;
	if (other.type == SFS_TYPE_SYMLINK)
		return server_fail(r, -ELOOP, "a symbolic link");
	rc = perm_open(r, &other, r->req->flags);
	if (rc == 0)
		attr_from_entry(&other, &r->reply->attr);
	return rc;
}

/* Datafiles first, then the row: see meta.h. */
static int meta_create(struct meta *m, struct server_req *r, const struct path *p)
{
	struct entry e;
	int undo;
	pthread_mutex_lock(&m->lock);
	int rc = m->db ? create_plan(m, r, p, &e)
		       : server_fail(r, -ESHUTDOWN, "the metadata server is stopping");
	pthread_mutex_unlock(&m->lock);
	if (rc <= 0)
		return rc;
	rc = create_datafiles(m, r, e.fid, &e.layout);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&m->lock);
	rc = create_commit(m, r, p, &e, &undo);
	pthread_mutex_unlock(&m->lock);
	if (undo)
		remove_datafiles(m, e.fid, &e.layout, e.layout.stripe_count);
	return rc;
}

/* The entry a MKDIR or SYMLINK makes at p: its parent (*dir) walked, its
 * name checked free, a fid, its owner and times; the caller sets type and
 * mode and inserts it. */
static int new_child(struct meta *m, struct server_req *r, const struct path *p,
		     struct entry *dir, struct entry *e, uint8_t type)
{
	if (p->n == 0)
		return -EEXIST;
	int rc = walk_parent(m, r, p, dir);
	if (rc < 0)
		return rc;
	rc = child_get(m, dir->fid, p->comp[p->n - 1], e);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return db_fail(m, r, "looking up a name");
	rc = perm_check(r, dir, PERM_W | PERM_X, "its directory");
	if (rc < 0)
		return rc;
	memset(e, 0, sizeof(*e));
	rc = fid_alloc(m, r, &e->fid);
	if (rc < 0)
		return rc;
	e->parent = dir->fid;
	e->type = type;
	perm_new_owner(r, dir, &e->uid, &e->gid);
	e->atime_ns = e->mtime_ns = e->ctime_ns = wall_ns();
	return 0;
}

static int meta_mkdir(struct meta *m, struct server_req *r, const struct path *p)
{
	struct entry dir, e;
	int rc = new_child(m, r, p, &dir, &e, SFS_TYPE_DIR);
	if (rc < 0)
		return rc;
	e.mode = (r->req->mode & 07777) | (dir.mode & 02000); /* setgid spreads down */
	e.layout.strip_size = dir.layout.strip_size; /* new files below inherit */
	e.layout.stripe_count = dir.layout.stripe_count;
	rc = entry_insert(m, &e, p->comp[p->n - 1]);
	if (rc < 0)
		return db_fail(m, r, "creating a directory");
	attr_from_entry(&e, &r->reply->attr);
	return 0;
}

/* The entry at p and its directory, which the caller may change (w and
 * x, and the sticky bit's rule): for UNLINK and RMDIR. p->n >= 1. */
static int walk_removable(struct meta *m, struct server_req *r, const struct path *p,
			  struct entry *e)
{
	struct entry dir;
	int rc = walk_parent(m, r, p, &dir);
	if (rc < 0)
		return rc;
	rc = child_get(m, dir.fid, p->comp[p->n - 1], e);
	if (rc == -ENOENT)
		return -ENOENT;
	if (rc < 0)
		return db_fail(m, r, "looking up a name");
	rc = perm_check(r, &dir, PERM_W | PERM_X, "its directory");
	return rc < 0 ? rc : perm_sticky(r, &dir, e);
}

static int meta_unlink(struct meta *m, struct server_req *r, const struct path *p)
{
	struct meta_conn *mc = r->conn_state;
	struct entry e;
	if (p->n == 0)
		return -EISDIR;
	int rc = walk_removable(m, r, p, &e);
	if (rc < 0)
		return rc;
	if (e.type == SFS_TYPE_DIR)
		return -EISDIR;
	if (entry_delete(m, e.fid) < 0)
		return db_fail(m, r, "removing a file");
	attr_from_entry(&e, &r->reply->attr);
	mc->removed = e;
	mc->remove_pending = e.type == SFS_TYPE_FILE; /* a symlink has no datafiles */
	return 0;
}

static int meta_rmdir(struct meta *m, struct server_req *r, const struct path *p)
{
	struct entry e;
	if (p->n == 0)
		return server_fail(r, -EBUSY, "the root directory cannot be removed");
	int rc = walk_removable(m, r, p, &e);
	if (rc < 0)
		return rc;
	if (e.type != SFS_TYPE_DIR)
		return -ENOTDIR;
	sqlite3_stmt *s = stmt(m, ST_HAS_CHILD);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)e.fid);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return -ENOTEMPTY;
	if (rc != SQLITE_DONE || entry_delete(m, e.fid) < 0)
		return db_fail(m, r, "removing a directory");
	return 0;
}

/* Bytes one entry takes in the READDIR reply body. */
static size_t dirent_bytes(size_t name_len) { return 2 + name_len + 1 + 8; }

static int meta_readdir(struct meta *m, struct server_req *r, const struct path *p)
{
	struct sfs_reply *reply = r->reply;
	struct entry dir;
	size_t body_bytes = 2 + 1; /* n_entries, eof */
	int rc = walk(m, r, p, p->n, &dir);
	if (rc < 0)
		return rc;
	if (dir.type != SFS_TYPE_DIR)
		return -ENOTDIR;
	rc = perm_check(r, &dir, PERM_R, NULL);
	if (rc < 0)
		return rc;
	reply->n_entries = 0;
	reply->eof = 1;
	sqlite3_stmt *s = stmt(m, ST_LIST);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)dir.fid);
	sqlite3_bind_text(s, 2, r->req->cookie, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, SFS_READDIR_MAX + 1); /* one more tells whether to stop */
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(s, 0);
		size_t len = (size_t)sqlite3_column_bytes(s, 0);
		if (!name || len > SFS_MAX_NAME)
			continue;
		if (reply->n_entries == SFS_READDIR_MAX ||
		    body_bytes + dirent_bytes(len) > SFS_MAX_BODY_BYTES) {
			reply->eof = 0;
			break;
		}
		struct sfs_dirent *d = &reply->entries[reply->n_entries++];
		memcpy(d->name, name, len);
		d->name[len] = '\0';
		d->type = (uint8_t)sqlite3_column_int(s, 1);
		d->fid = (uint64_t)sqlite3_column_int64(s, 2);
		body_bytes += dirent_bytes(len);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(m, r, "listing a directory");
	return 0;
}

static int meta_setstripe(struct meta *m, struct server_req *r, const struct path *p)
{
	const struct sfs_req *q = r->req;
	struct entry e;
	if (q->strip_size != 0 && (q->strip_size % 512 != 0 || q->strip_size < SFS_STRIP_SIZE_MIN ||
				   q->strip_size > SFS_STRIP_SIZE_MAX))
		return server_fail(r, -EINVAL, "strip size %u: expected 0 (default) or a "
				   "multiple of 512 from 4096 to 1 GiB", q->strip_size);
	if (q->stripe_count > m->conf->n_io || q->stripe_count > SFS_MAX_STRIPE)
		return server_fail(r, -EINVAL, "stripe count %u: expected 0 (all) to %u, the "
				   "number of I/O servers", q->stripe_count,
				   m->conf->n_io < SFS_MAX_STRIPE ? m->conf->n_io : SFS_MAX_STRIPE);
	int rc = walk(m, r, p, p->n, &e);
	if (rc < 0)
		return rc;
	if (e.type != SFS_TYPE_DIR)
		return server_fail(r, -ENOTDIR, "not a directory (a file's layout is fixed)");
	if (!perm_is_owner(r->who, &e))
		return server_fail(r, -EPERM, "uid %u may not set the layout: owner is uid %u",
				   r->who->uid, e.uid);
	sqlite3_stmt *s = stmt(m, ST_SET_STRIPE);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)e.fid);
	sqlite3_bind_int64(s, 2, q->strip_size);
	sqlite3_bind_int(s, 3, q->stripe_count);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return db_fail(m, r, "setting a directory's layout");
	return 0;
}

/* The entry named by the request's handle (its fid). */
static int by_handle(struct meta *m, struct server_req *r, struct entry *e)
{
	uint64_t fid = r->req->handle;
	int rc = fid > INT64_MAX ? -ENOENT : fid_get(m, fid, e);
	if (rc == -ENOENT)
		return server_fail(r, -ENOENT, "no entry has handle 0x%" PRIx64 " (removed?)", fid);
	if (rc < 0)
		return db_fail(m, r, "reading an entry");
	return 0;
}

static int meta_setmtime(struct meta *m, struct server_req *r)
{
	struct entry e;
	int rc = by_handle(m, r, &e);
	if (rc < 0)
		return rc;
	if (!perm_is_owner(r->who, &e) && !perm_may(r->who, &e, PERM_W))
		return server_fail(r, -EPERM, "uid %u may not set the modification time: not the "
				   "owner and no write permission", r->who->uid);
	sqlite3_stmt *s = stmt(m, ST_SET_MTIME);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)r->req->handle);
	sqlite3_bind_int64(s, 2, r->req->mtime_ns);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return db_fail(m, r, "setting a modification time");
	if (r->req->handle > INT64_MAX || sqlite3_changes(m->db) == 0)
		return server_fail(r, -ENOENT, "unknown handle 0x%" PRIx64, r->req->handle);
	return 0;
}

/* What the database takes on disk: meta.db and, while open, its WAL and
 * shared-memory index. */
static uint64_t db_files_bytes(const struct meta *m)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	uint64_t total = 0;
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		char path[sizeof(m->db_path) + 8];
		struct stat st;
		snprintf(path, sizeof(path), "%s%s", m->db_path, suffixes[i]);
		if (stat(path, &st) == 0)
			total += (uint64_t)st.st_size;
	}
	return total;
}

static int meta_statfs(struct meta *m, struct server_req *r)
{
	struct sfs_reply *reply = r->reply;
	struct statvfs vfs;
	sqlite3_stmt *s = stmt(m, ST_COUNT);
	int rc;
	reply->n_files = reply->n_dirs = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		uint64_t n = (uint64_t)sqlite3_column_int64(s, 1);
		if (sqlite3_column_int(s, 0) == SFS_TYPE_DIR)
			reply->n_dirs = n;
		else
			reply->n_files += n;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return db_fail(m, r, "counting entries");
	if (statvfs(m->dir, &vfs) < 0)
		return server_fail(r, -errno, "statfs %s: %s", m->dir, strerror(errno));
	reply->total_bytes = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	reply->free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	reply->used_bytes = db_files_bytes(m);
	return 0;
}

/* --- what a POSIX mount needs (protocol version 2) --------------------------- */

static int meta_getattr(struct meta *m, struct server_req *r)
{
	struct entry e;
	int rc = by_handle(m, r, &e);
	if (rc == 0)
		attr_from_entry(&e, &r->reply->attr);
	return rc;
}

/* chmod, chown and utimens in one: the fields in valid, and ctime = now. */
static int meta_setattr(struct meta *m, struct server_req *r)
{
	const struct sfs_req *q = r->req;
	struct entry e;
	if (q->valid & ~SFS_SETATTR_ALL)
		return server_fail(r, -EINVAL, "unknown attribute bits 0x%x",
				   q->valid & ~SFS_SETATTR_ALL);
	uint32_t mode_clear;
	int rc = by_handle(m, r, &e);
	if (rc < 0)
		return rc;
	rc = perm_setattr(r, &e, &mode_clear);
	if (rc < 0)
		return rc;
	if (q->valid & SFS_SETATTR_MODE)
		e.mode = q->mode & 07777 & ~mode_clear;
	if (q->valid & SFS_SETATTR_UID)
		e.uid = q->uid;
	if (q->valid & SFS_SETATTR_GID)
		e.gid = q->gid;
	if (q->valid & SFS_SETATTR_ATIME)
		e.atime_ns = q->atime_ns;
	if (q->valid & SFS_SETATTR_MTIME)
		e.mtime_ns = q->mtime_ns;
	if (!(q->valid & SFS_SETATTR_KEEP_CTIME))
		e.ctime_ns = wall_ns();
	sqlite3_stmt *s = stmt(m, ST_SET_ATTR);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)e.fid);
	sqlite3_bind_int64(s, 2, e.mode);
	sqlite3_bind_int64(s, 3, e.uid);
	sqlite3_bind_int64(s, 4, e.gid);
	sqlite3_bind_int64(s, 5, e.atime_ns);
	sqlite3_bind_int64(s, 6, e.mtime_ns);
	sqlite3_bind_int64(s, 7, e.ctime_ns);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return db_fail(m, r, "setting attributes");
	attr_from_entry(&e, &r->reply->attr);
	return 0;
}

static int meta_readlink(struct meta *m, struct server_req *r)
{
	struct entry e;
	int rc = by_handle(m, r, &e);
	if (rc < 0)
		return rc;
	if (e.type != SFS_TYPE_SYMLINK)
		return server_fail(r, -EINVAL, "handle 0x%" PRIx64 " is not a symbolic link", e.fid);
	sqlite3_stmt *s = stmt(m, ST_TARGET);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)e.fid);
	rc = sqlite3_step(s);
	const char *target = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : NULL;
	size_t len = target ? (size_t)sqlite3_column_bytes(s, 0) : 0;
	if (target && len <= SFS_MAX_PATH) {
		memcpy(r->reply->target, target, len);
		r->reply->target[len] = '\0';
	}
	sqlite3_reset(s);
	if (!target || len > SFS_MAX_PATH)
		return db_fail(m, r, "reading a symbolic link");
	return 0;
}

static int meta_symlink(struct meta *m, struct server_req *r, const struct path *p)
{
	struct entry dir, e;
	if (p->n > 0 && r->req->path2[0] == '\0')
		return server_fail(r, -ENOENT, "a symbolic link needs a non-empty target");
	int rc = new_child(m, r, p, &dir, &e, SFS_TYPE_SYMLINK);
	if (rc < 0)
		return rc;
	e.mode = 0777;
	rc = entry_insert_target(m, &e, p->comp[p->n - 1], r->req->path2);
	if (rc < 0)
		return rc == -EEXIST ? rc : db_fail(m, r, "creating a symbolic link");
	attr_from_entry(&e, &r->reply->attr);
	return 0;
}

/* OPEN: may the caller open the entry (by handle, or by path when the
 * handle is 0) as the flags say? The client checks the type itself. */
static int meta_open_file(struct meta *m, struct server_req *r, const struct path *p)
{
	struct entry e;
	if (r->req->flags & ~SFS_OPEN_FLAGS)
		return server_fail(r, -EINVAL, "unknown open flags 0x%x",
				   r->req->flags & ~SFS_OPEN_FLAGS);
	int rc = r->req->handle ? by_handle(m, r, &e) : walk(m, r, p, p->n, &e);
	if (rc == 0)
		rc = perm_open(r, &e, r->req->flags);
	if (rc == 0)
		attr_from_entry(&e, &r->reply->attr);
	return rc;
}

/* 1 in *inside when ancestor is dir or one of dir's ancestors. */
static int is_below(struct meta *m, uint64_t ancestor, uint64_t dir, int *inside)
{
	struct entry e;
	*inside = 0;
	for (unsigned depth = 0; depth <= SFS_MAX_PATH / 2; depth++) {
		if (dir == ancestor) {
			*inside = 1;
			return 0;
		}
		if (dir == SFS_ROOT_FID || fid_get(m, dir, &e) < 0)
			return dir == SFS_ROOT_FID ? 0 : -EIO;
		dir = e.parent;
	}
	return -EIO; /* a cycle: the table is corrupt */
}

/* May src take the place of dst (POSIX rename's rules)? */
static int rename_replace_ok(struct meta *m, struct server_req *r, const struct entry *src,
			     const struct entry *dst)
{
	if (r->req->flags & SFS_RENAMEF_NOREPLACE)
		return -EEXIST;
	if (src->type == SFS_TYPE_DIR && dst->type != SFS_TYPE_DIR)
		return server_fail(r, -ENOTDIR, "a directory cannot replace a non-directory");
	if (src->type != SFS_TYPE_DIR && dst->type == SFS_TYPE_DIR)
		return server_fail(r, -EISDIR, "the new name is a directory");
	if (dst->type != SFS_TYPE_DIR)
		return 0;
	sqlite3_stmt *s = stmt(m, ST_HAS_CHILD);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)dst->fid);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return server_fail(r, -ENOTEMPTY, "the directory it would replace is not empty");
	return rc == SQLITE_DONE ? 0 : db_fail(m, r, "listing a directory");
}

/* Remove dst (if replace) and move src, in one transaction: another client
 * sees the old name or the new one, never neither. */
static int rename_commit(struct meta *m, struct server_req *r, const struct entry *src,
			 uint64_t to_dir, const char *to_name, const struct entry *dst)
{
	if (sqlite3_exec(m->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(m, r, "renaming");
	int rc = dst ? entry_delete(m, dst->fid) : 0;
	if (rc == 0) {
		sqlite3_stmt *s = stmt(m, ST_MOVE);
		sqlite3_bind_int64(s, 1, (sqlite3_int64)src->fid);
		sqlite3_bind_int64(s, 2, (sqlite3_int64)to_dir);
		sqlite3_bind_text(s, 3, to_name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 4, wall_ns());
		rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
		sqlite3_reset(s);
	}
	if (rc == 0 && sqlite3_exec(m->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = -EIO;
	if (rc == 0)
		return 0;
	rc = db_fail(m, r, "renaming");
	sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int meta_rename(struct meta *m, struct server_req *r, const struct path *from)
{
	struct meta_conn *mc = r->conn_state;
	struct entry from_dir, to_dir, src, dst;
	int inside;
	struct path *to = malloc(sizeof(*to));
	int rc = to ? parse_path(r, r->req->path2, to) : -ENOMEM;
	if (rc < 0)
		goto out;
	if (r->req->flags & ~SFS_RENAMEF_NOREPLACE) {
		rc = server_fail(r, -EINVAL, "unknown rename flags 0x%x", r->req->flags);
		goto out;
	}
	if (from->n == 0 || to->n == 0) {
		rc = server_fail(r, -EBUSY, "the root directory cannot be renamed or replaced");
		goto out;
	}
	rc = walk_parent(m, r, from, &from_dir);
	if (rc == 0) {
		rc = child_get(m, from_dir.fid, from->comp[from->n - 1], &src);
		if (rc < 0 && rc != -ENOENT)
			rc = db_fail(m, r, "looking up a name");
	}
	if (rc == 0)
		rc = walk_parent(m, r, to, &to_dir);
	if (rc == 0)
		rc = perm_rename(r, &from_dir, &src, &to_dir);
	if (rc == 0 && src.type == SFS_TYPE_DIR) {
		rc = is_below(m, src.fid, to_dir.fid, &inside);
		if (rc < 0)
			rc = db_fail(m, r, "walking up from the new directory");
		else if (inside)
			rc = server_fail(r, -EINVAL, "a directory cannot move below itself");
	}
	if (rc < 0)
		goto out;
	const char *to_name = to->comp[to->n - 1];
	rc = child_get(m, to_dir.fid, to_name, &dst);
	if (rc < 0 && rc != -ENOENT) {
		rc = db_fail(m, r, "looking up a name");
		goto out;
	}
	int replace = rc == 0;
	if (replace && dst.fid == src.fid) {
		rc = 0; /* the same file under both names: POSIX says do nothing */
		goto out;
	}
	rc = replace ? rename_replace_ok(m, r, &src, &dst) : 0;
	if (rc == 0 && replace)
		rc = perm_sticky(r, &to_dir, &dst);
	if (rc == 0)
		rc = rename_commit(m, r, &src, to_dir.fid, to_name, replace ? &dst : NULL);
	if (rc == 0) {
		r->reply->replaced = (uint8_t)replace;
		if (replace && dst.type == SFS_TYPE_FILE) {
			mc->removed = dst;
			mc->remove_pending = 1;
		}
	}
out:
	free(to);
	return rc;
}

/* --- append locks (not under m->lock: a waiter must not stop the others) --- */

static int append_lock(struct meta *m, struct server_req *r)
{
	uint64_t lease_ms = m->conf->timeout_ms, taken_from_ms = 0;
	int rc = locks_append_take(m->locks, r->req->handle, r->conn_state, lease_ms,
				   &taken_from_ms);
	if (taken_from_ms)
		log_warnx("append lock of file 0x%" PRIx64 " taken from a holder silent for "
			  "%" PRIu64 " ms (lease: timeout_ms)", r->req->handle, taken_from_ms);
	if (rc == -EDEADLK)
		return server_fail(r, rc, "this connection holds the append lock");
	return rc == -ENOMEM ? server_fail(r, rc, "out of memory") : rc;
}

/* Unlocking a lock lost to the lease is not an error: the append itself
 * already succeeded or failed on its own. */
static int append_unlock(struct meta *m, struct server_req *r)
{
	locks_append_release(m->locks, r->conn_state, r->req->handle);
	return 0;
}

/* LOCK and GETLK, in memory only (meta_locks.h): locks do not survive a
 * metadata server restart, like an NFS server's without its grace period. */
static int meta_lock(struct meta *m, struct server_req *r)
{
	struct meta_conn *mc = r->conn_state;
	int rc = locks_conn_join(m->locks, &mc->lock_session, r->req->session);
	if (rc == -EINVAL)
		return server_fail(r, rc, "lock session 0x%" PRIx64 " on a connection of another",
				   r->req->session);
	if (rc < 0)
		return rc;
	if (r->req->op == SFS_OP_GETLK) {
		locks_test(m->locks, r->req, r->reply);
		return 0;
	}
	return locks_set(m->locks, r->req);
}

/* Everything but CREATE, which manages the lock itself. Under the lock. */
static int dispatch_locked(struct meta *m, struct server_req *r, const struct path *p)
{
	if (!m->db)
		return server_fail(r, -ESHUTDOWN, "the metadata server is stopping");
	switch (r->req->op) {
	case SFS_OP_LOOKUP: return meta_lookup(m, r, p);
	case SFS_OP_MKDIR: return meta_mkdir(m, r, p);
	case SFS_OP_UNLINK: return meta_unlink(m, r, p);
	case SFS_OP_RMDIR: return meta_rmdir(m, r, p);
	case SFS_OP_READDIR: return meta_readdir(m, r, p);
	case SFS_OP_SETSTRIPE: return meta_setstripe(m, r, p);
	case SFS_OP_SETMTIME: return meta_setmtime(m, r);
	case SFS_OP_META_STATFS: return meta_statfs(m, r);
	case SFS_OP_GETATTR: return meta_getattr(m, r);
	case SFS_OP_SETATTR: return meta_setattr(m, r);
	case SFS_OP_READLINK: return meta_readlink(m, r);
	case SFS_OP_SYMLINK: return meta_symlink(m, r, p);
	case SFS_OP_RENAME: return meta_rename(m, r, p);
	case SFS_OP_OPEN: return meta_open_file(m, r, p);
	default: return server_fail(r, -EOPNOTSUPP, "%s: not handled", sfs_op_name(r->req->op));
	}
}

static int meta_serve(void *ctx, struct server_req *r)
{
	struct meta *m = ctx;
	struct path p;
	int rc;
	switch (r->req->op) {
	case SFS_OP_LOOKUP:
	case SFS_OP_CREATE:
	case SFS_OP_MKDIR:
	case SFS_OP_UNLINK:
	case SFS_OP_RMDIR:
	case SFS_OP_READDIR:
	case SFS_OP_SETSTRIPE:
	case SFS_OP_SYMLINK:
	case SFS_OP_RENAME:
		rc = parse_path(r, r->req->path, &p);
		if (rc < 0)
			return rc;
		break;
	case SFS_OP_SETMTIME:
	case SFS_OP_META_STATFS:
	case SFS_OP_SNAP_LIST:
	case SFS_OP_SNAP_RM:
	case SFS_OP_SNAP_ROLLBACK:
	case SFS_OP_SNAP_FSCK:
		p.n = 0;
		break;
	case SFS_OP_SNAP_CREATE:
		rc = parse_path(r, r->req->path[0] ? r->req->path : "/", &p);
		if (rc < 0)
			return rc;
		break;
	case SFS_OP_GETATTR:
	case SFS_OP_SETATTR:
	case SFS_OP_READLINK:
		p.n = 0;
		break;
	case SFS_OP_OPEN:
		p.n = 0;
		if (!r->req->handle) {
			rc = parse_path(r, r->req->path, &p);
			if (rc < 0)
				return rc;
		}
		break;
	case SFS_OP_APPEND_LOCK:
		return append_lock(m, r);
	case SFS_OP_LOCK:
	case SFS_OP_GETLK:
		return meta_lock(m, r);
	case SFS_OP_APPEND_UNLOCK:
		return append_unlock(m, r);
	default:
		return server_fail(r, -EOPNOTSUPP, "%s is not served by the metadata server",
				   sfs_op_name(r->req->op));
	}
	int snap_op = r->req->op >= SFS_OP_SNAP_CREATE && r->req->op <= SFS_OP_SNAP_FSCK;
	int snap = meta_snap_is_snapshot_path(&p) || meta_snap_is_handle_request(r->req) || snap_op;
	if (snap_op && r->req->op != SFS_OP_SNAP_LIST && !r->who->trusted && r->who->uid != 0)
		return server_fail(r, -EPERM, "uid %u: only root takes, removes, rolls back or "
				   "checks snapshots", r->who->uid);
	if (r->req->op == SFS_OP_CREATE && !snap)
		return meta_create(m, r, &p);
	pthread_mutex_lock(&m->lock);
	if (m->db && meta_snap_must_resume(m, snap))
		meta_snap_resume(m);
	if (!m->db)
		rc = server_fail(r, -ESHUTDOWN, "the metadata server is stopping");
	else if (snap)
		rc = meta_snap_handle(m, r, &p);
	else
		rc = dispatch_locked(m, r, &p);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* Every request, then the capability of a file the reply describes. */
static int meta_handle(void *ctx, struct server_req *r)
{
	memset(&r->reply->cap, 0, sizeof(r->reply->cap)); /* none, unless granted */
	int rc = meta_serve(ctx, r);
	if (rc == 0)
		meta_cap_grant(ctx, r);
	return rc;
}

static void meta_after_reply(void *ctx, struct server_req *r)
{
	struct meta *m = ctx;
	struct meta_conn *mc = r->conn_state;
	if (!mc->remove_pending)
		return;
	mc->remove_pending = 0;
	remove_datafiles(m, mc->removed.fid, &mc->removed.layout,
			 mc->removed.layout.stripe_count);
}

static int meta_conn_open(void *ctx, int fd, void **conn_state)
{
	int on = 1, idle = KEEPALIVE_IDLE_S, intvl = KEEPALIVE_INTERVAL_S, cnt = KEEPALIVE_COUNT;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	*conn_state = calloc(1, sizeof(struct meta_conn));
	return *conn_state ? 0 : -ENOMEM;
}

static void meta_conn_close(void *ctx, void *conn_state)
{
	struct meta *m = ctx;
	struct meta_conn *mc = conn_state;
	locks_append_release(m->locks, mc, 0); /* a dead client's append lock */
	locks_conn_leave(m->locks, mc->lock_session); /* and its locks */
	free(mc);
}

/* --- the database (its schema: meta_schema.c) ----------------------------- */

static int db_open(struct meta *m, char *err, size_t errlen)
{
	char mode[16] = "";
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_open_v2(m->db_path, &m->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", m->db_path,
			 m->db ? sqlite3_errmsg(m->db) : sqlite3_errstr(rc));
		return -EIO;
	}
	sqlite3_busy_timeout(m->db, DB_BUSY_TIMEOUT_MS);
	/* WAL: a commit is one append and one fsync (synchronous=FULL). */
	if (sqlite3_prepare_v2(m->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		snprintf(mode, sizeof(mode), "%s", (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	if (strcmp(mode, "wal") != 0) {
		snprintf(err, errlen, "%s: cannot use WAL journaling (journal mode is \"%s\"): %s",
			 m->db_path, mode, sqlite3_errmsg(m->db));
		return -EIO;
	}
	rc = meta_db_exec(m, "PRAGMA synchronous = FULL", err, errlen);
	if (rc == 0)
		rc = meta_schema_upgrade(m, err, errlen);
	for (int i = 0; rc == 0 && i < ST_N; i++) {
		if (sqlite3_prepare_v3(m->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &m->st[i], NULL) != SQLITE_OK) {
			snprintf(err, errlen, "%s: preparing \"%s\": %s", m->db_path, stmt_sql[i],
				 sqlite3_errmsg(m->db));
			rc = -EIO;
		}
	}
	return rc;
}

static void db_close(struct meta *m)
{
	for (int i = 0; i < ST_N; i++) {
		sqlite3_finalize(m->st[i]);
		m->st[i] = NULL;
	}
	/* Closing the last connection checkpoints the WAL into meta.db. */
	if (m->db && sqlite3_close(m->db) != SQLITE_OK)
		log_warnx("%s: close: %s", m->db_path, sqlite3_errmsg(m->db));
	m->db = NULL;
}

static void meta_free(void *ctx)
{
	struct meta *m = ctx;
	if (!m)
		return;
	db_close(m);
	for (unsigned i = 0; m->pools && i < m->conf->n_io; i++) {
		struct io_pool *pool = &m->pools[i];
		for (unsigned j = 0; j < pool->n_idle; j++) {
			sfs_conn_close(pool->idle[j]);
			free(pool->idle[j]);
		}
		pthread_mutex_destroy(&pool->lock);
	}
	free(m->pools);
	free(m->entry_cols);
	pthread_mutex_destroy(&m->lock);
	locks_free(m->locks);
	servcap_free(m->caps);
	free(m);
}

static int meta_open(const struct sfs_conf *conf, const struct sfs_server_conf *srv,
		     void **ctx, char *err, size_t errlen)
{
	int64_t max_fid, n_entries, reserved;
	int rc = -ENOMEM;
	struct meta *m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->conf = conf;
	m->dir = srv->dir;
	pthread_mutex_init(&m->lock, NULL);
	m->pools = calloc(conf->n_io, sizeof(*m->pools));
	m->locks = locks_new();
	if (!m->pools || !m->locks) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < conf->n_io; i++)
		pthread_mutex_init(&m->pools[i].lock, NULL);
	if (snprintf_checked(m->db_path, sizeof(m->db_path), "%s/meta.db", srv->dir) < 0) {
		snprintf(err, errlen, "dir %s: path too long", srv->dir);
		rc = -ENAMETOOLONG;
		goto fail;
	}
	rc = servcap_open(conf, "metadata", &m->caps, err, errlen);
	if (rc == 0)
		rc = db_open(m, err, errlen);
	if (rc == 0)
		rc = meta_snap_open(m, err, errlen);
	if (rc == 0)
		rc = meta_db_int(m, "SELECT MAX(fid) FROM entries", &max_fid, err, errlen);
	if (rc == 0)
		rc = meta_db_int(m, "SELECT COUNT(*) FROM entries", &n_entries, err, errlen);
	if (rc == 0)
		rc = meta_db_int(m, "SELECT value FROM counters WHERE name = 'fid_reserved'", &reserved,
			    err, errlen);
	if (rc < 0)
		goto fail;
	/* start past every fid ever reserved: some may have been handed out */
	m->next_fid = (uint64_t)(max_fid > SFS_ROOT_FID ? max_fid : SFS_ROOT_FID) + 1;
	if ((uint64_t)reserved > m->next_fid)
		m->next_fid = (uint64_t)reserved;
	m->fid_reserved = m->next_fid;
	log_info("%s: %" PRId64 " entries, next fid %" PRIu64, m->db_path, n_entries,
		 m->next_fid);
	*ctx = m;
	return 0;
fail:
	meta_free(m);
	return rc;
}

static void meta_stop(void *ctx)
{
	struct meta *m = ctx;
	pthread_mutex_lock(&m->lock);
	db_close(m);
	pthread_mutex_unlock(&m->lock);
	log_info("%s closed and checkpointed", m->db_path);
}

const struct server_role_ops meta_role_ops = {
	.kind = "metadata",
	.role = SFS_ROLE_META,
	.open = meta_open,
	.conn_open = meta_conn_open,
	.conn_close = meta_conn_close,
	.handle = meta_handle,
	.after_reply = meta_after_reply,
	.stop = meta_stop,
	.free = meta_free,
};
