/*
 * meta_schema: the metadata server's database schema, created or brought
 * up to date in one transaction when the server opens it (meta.c's
 * db_open), and the two small SQL helpers that and meta_open use.
 */
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "meta_internal.h"
#include "util.h"

#define SCHEMA_VERSION 3
#define SCHEMA_VERSION_TEXT "3" /* for PRAGMA user_version = N */

int meta_db_exec(struct meta *m, const char *sql, char *err, size_t errlen)
{
	char *why = NULL;
	if (sqlite3_exec(m->db, sql, NULL, NULL, &why) == SQLITE_OK)
		return 0;
	snprintf(err, errlen, "%s: %s: %s", m->db_path, sql, why ? why : "failed");
	sqlite3_free(why);
	return -EIO;
}

int meta_db_int(struct meta *m, const char *sql, int64_t *out, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(m->db, sql, -1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		snprintf(err, errlen, "%s: %s: %s", m->db_path, sql, sqlite3_errmsg(m->db));
		sqlite3_finalize(s);
		return -EIO;
	}
	*out = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return 0;
}

/* Version 1: the entries table, the fid reservation counter and the root
 * directory. */
static int schema_create_v1(struct meta *m, char *err, size_t errlen)
{
	char sql[512];
	int rc = meta_db_exec(m,
			 "CREATE TABLE entries ("
			 " fid INTEGER PRIMARY KEY,"
			 " parent INTEGER NOT NULL,"
			 " name TEXT NOT NULL,"
			 " type INTEGER NOT NULL,"
			 " mode INTEGER NOT NULL,"
			 " mtime_ns INTEGER NOT NULL,"
			 " ctime_ns INTEGER NOT NULL,"
			 " strip_size INTEGER NOT NULL DEFAULT 0,"
			 " stripe_count INTEGER NOT NULL DEFAULT 0,"
			 " servers BLOB,"
			 " UNIQUE (parent, name))",
			 err, errlen);
	if (rc == 0)
		rc = meta_db_exec(m, "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
			     " INSERT INTO counters VALUES ('fid_reserved', 0)", err, errlen);
	if (rc < 0)
		return rc;
	int64_t now = wall_ns();
	snprintf(sql, sizeof(sql),
		 "INSERT INTO entries (fid, parent, name, type, mode, mtime_ns, ctime_ns)"
		 " VALUES (%d, 0, '', %d, %d, %" PRId64 ", %" PRId64 ")",
		 SFS_ROOT_FID, SFS_TYPE_DIR, 0755, now, now);
	return meta_db_exec(m, sql, err, errlen);
}

/* Version 2 (sfs mount): owner, group, access time and a symlink's target.
 * Existing entries get root's ownership and their mtime as atime. */
static int schema_upgrade_v2(struct meta *m, char *err, size_t errlen)
{
	return meta_db_exec(m,
		       "ALTER TABLE entries ADD COLUMN uid INTEGER NOT NULL DEFAULT 0;"
		       " ALTER TABLE entries ADD COLUMN gid INTEGER NOT NULL DEFAULT 0;"
		       " ALTER TABLE entries ADD COLUMN atime_ns INTEGER NOT NULL DEFAULT 0;"
		       " ALTER TABLE entries ADD COLUMN target TEXT;"
		       " UPDATE entries SET atime_ns = mtime_ns",
		       err, errlen);
}

/* Bring the schema to SCHEMA_VERSION, in one transaction. Each step
 * upgrades from one version to the next; a database from a newer sfsd is
 * refused rather than misread. */
int meta_schema_upgrade(struct meta *m, char *err, size_t errlen)
{
	int64_t version;
	int rc = meta_db_int(m, "PRAGMA user_version", &version, err, errlen);
	if (rc < 0)
		return rc;
	if (version > SCHEMA_VERSION) {
		snprintf(err, errlen, "%s: schema version %" PRId64 " is newer than this sfsd "
			 "understands (%d); run the sfsd that wrote it", m->db_path, version,
			 SCHEMA_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (version == SCHEMA_VERSION)
		return 0;
	rc = meta_db_exec(m, "BEGIN IMMEDIATE", err, errlen);
	if (rc < 0)
		return rc;
	if (version < 1)
		rc = schema_create_v1(m, err, errlen);
	if (rc == 0 && version < 2)
		rc = schema_upgrade_v2(m, err, errlen);
	if (rc == 0 && version < 3)
		rc = meta_snap_schema_v3(m->db, err, errlen);
	if (rc == 0 && version == 0) {
		/* a new file system's root belongs to whoever runs it (root, or a
		 * user's own sandbox), so that its owner can start filling it */
		char sql[128];
		snprintf(sql, sizeof(sql), "UPDATE entries SET uid = %u, gid = %u WHERE fid = %d",
			 (unsigned)geteuid(), (unsigned)getegid(), SFS_ROOT_FID);
		rc = meta_db_exec(m, sql, err, errlen);
	}
	if (rc == 0)
		rc = meta_db_exec(m, "PRAGMA user_version = " SCHEMA_VERSION_TEXT, err, errlen);
	if (rc == 0)
		rc = meta_db_exec(m, "COMMIT", err, errlen);
	if (rc < 0) {
		sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	if (version == 0)
		log_info("%s: created the file system (schema version %d)", m->db_path,
			 SCHEMA_VERSION);
	else
		log_info("%s: upgraded from schema version %" PRId64 " to %d", m->db_path, version,
			 SCHEMA_VERSION);
	return 0;
}
