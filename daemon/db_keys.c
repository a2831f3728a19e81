/*
 * db_keys: see db_keys.h. Three statements on the guests table; the rest
 * of db.c never reads the column, so guest rows stay as they were.
 */
#include "db_keys.h"

#include <errno.h>
#include <string.h>

#include "db_internal.h"

int db_guest_set_agent_key(struct db *db, const char *guest, const char *key_z85)
{
	static const char sql[] = "UPDATE guests SET agent_key = ?1 WHERE name = ?2";
	sqlite3_stmt *st = prep(db, sql);
	if (!st)
		return -EIO;
	bind_text(st, 1, key_z85);
	sqlite3_bind_text(st, 2, guest, -1, SQLITE_TRANSIENT);
	return step_changed(db, st, "setting a guest's agent key");
}

static void read_text(sqlite3_stmt *st, void *out)
{
	col_text(st, 0, out, DB_AGENT_KEY_MAX);
}

static void read_name(sqlite3_stmt *st, void *out)
{
	col_text(st, 0, out, DB_NAME_MAX);
}

int db_guest_agent_key(struct db *db, const char *guest, char key[DB_AGENT_KEY_MAX])
{
	static const char sql[] = "SELECT agent_key FROM guests WHERE name = ?";
	key[0] = '\0';
	return read_named(db, sql, guest, read_text, key, "reading a guest's agent key");
}

int db_guest_by_agent_key(struct db *db, const char *key_z85, char guest[DB_NAME_MAX])
{
	static const char sql[] = "SELECT name FROM guests WHERE agent_key = ? LIMIT 1";
	guest[0] = '\0';
	return read_named(db, sql, key_z85, read_name, guest, "looking up an agent key");
}
