/*
 * libsfs's POSIX calls against real sfsd processes, the ones sfs mount is
 * built on: atomic rename (over a file, across directories, never below
 * itself), setattr (chmod, chown, utimens), symlinks, appends from two
 * clients that never overlap, stat by fid after a rename, and a metadata
 * database of schema version 1 upgraded in place.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsfixture.h"
#include "sfs.h"

static struct fsfix fx;
static struct sfs *fs;

static void stop(void)
{
	sfs_disconnect(fs);
	fs = NULL;
	fsfix_stop(&fx);
}

static void start(void)
{
	fsfix_start(&fx, 2, NULL);
	cr_assert_eq(sfs_connect(fx.conf, NULL, &fs), 0, "%s", sfs_last_error());
}

static void finish(void)
{
	sfs_disconnect(fs);
	fs = NULL;
	fsfix_finish(&fx);
}

static void put(const char *path, const char *text)
{
	struct sfs_file *f;
	cr_assert_eq(sfs_open(fs, path, SFS_O_WRONLY | SFS_O_CREAT | SFS_O_TRUNC, 0644, &f), 0,
		     "%s", sfs_last_error());
	cr_assert_eq(sfs_pwrite(f, text, strlen(text), 0), (ssize_t)strlen(text));
	cr_assert_eq(sfs_close(f), 0);
}

TestSuite(fs_posix, .fini = stop, .timeout = 120);

Test(fs_posix, rename_replaces_atomically_and_keeps_the_fid)
{
	struct sfs_stat a, b, moved;
	start();
	cr_assert_eq(sfs_mkdir(fs, "/d1", 0755), 0);
	cr_assert_eq(sfs_mkdir(fs, "/d2", 0755), 0);
	put("/d1/a", "new contents");
	put("/d2/b", "old");
	cr_assert_eq(sfs_stat(fs, "/d1/a", &a), 0);
	cr_assert_eq(sfs_stat(fs, "/d2/b", &b), 0);
	cr_assert_eq(sfs_rename(fs, "/d1/a", "/d2/b", SFS_RENAME_NOREPLACE), -EEXIST);
	cr_assert_eq(sfs_rename(fs, "/d1/a", "/d2/b", 0), 0, "%s", sfs_last_error());
	cr_assert_eq(sfs_stat(fs, "/d1/a", &moved), -ENOENT);
	cr_assert_eq(sfs_stat(fs, "/d2/b", &moved), 0);
	cr_assert_eq(moved.fid, a.fid);
	cr_assert_eq(moved.size_bytes, 12);
	cr_assert_eq(sfs_stat_fid(fs, b.fid, &moved), -ENOENT, "the replaced file is gone");
	/* directories: never below themselves, only over an empty directory */
	cr_assert_eq(sfs_mkdir(fs, "/d1/sub", 0755), 0);
	cr_assert_eq(sfs_rename(fs, "/d1", "/d1/sub/x", 0), -EINVAL);
	cr_assert_eq(sfs_rename(fs, "/d1", "/d2", 0), -ENOTEMPTY);
	cr_assert_eq(sfs_rename(fs, "/d1", "/d2/b", 0), -ENOTDIR);
	cr_assert_eq(sfs_rename(fs, "/d2/b", "/d1/sub", 0), -EISDIR);
	cr_assert_eq(sfs_rename(fs, "/nope", "/x", 0), -ENOENT);
	cr_assert_eq(sfs_rename(fs, "/d1/sub", "/d2/sub2", 0), 0, "%s", sfs_last_error());
	cr_assert_eq(sfs_stat(fs, "/d2/sub2", &moved), 0);
	cr_assert_eq(moved.type, SFS_STAT_DIR);
	finish();
}

Test(fs_posix, setattr_sets_owner_mode_and_times)
{
	struct sfs_stat st;
	start();
	put("/f", "x");
	cr_assert_eq(sfs_stat(fs, "/f", &st), 0);
	int64_t ctime_before = st.ctime_ns;
	struct sfs_setattr sa = { .valid = SFS_SET_MODE | SFS_SET_UID | SFS_SET_GID |
					   SFS_SET_ATIME | SFS_SET_MTIME,
				  .mode = 0600, .uid = 1234, .gid = 5678,
				  .atime_ns = 1000000000ll, .mtime_ns = 2000000000ll };
	cr_assert_eq(sfs_setattr(fs, st.fid, &sa, &st), 0, "%s", sfs_last_error());
	cr_assert_eq(st.mode, 0600);
	cr_assert_eq(st.uid, 1234);
	cr_assert_eq(st.gid, 5678);
	cr_assert_eq(st.atime_ns, 1000000000ll);
	cr_assert_eq(st.mtime_ns, 2000000000ll);
	cr_assert_geq(st.ctime_ns, ctime_before);
	cr_assert_eq(st.size_bytes, 1);
	cr_assert_eq(sfs_stat(fs, "/f", &st), 0);
	cr_assert_eq(st.uid, 1234);
	cr_assert_eq(sfs_setattr(fs, 999999, &sa, NULL), -ENOENT);
	finish();
}

Test(fs_posix, symlinks_store_their_target)
{
	struct sfs_stat st;
	char buf[64];
	start();
	cr_assert_eq(sfs_symlink(fs, "../some/target", "/l", 7, 8, &st), 0, "%s",
		     sfs_last_error());
	cr_assert_eq(st.type, SFS_STAT_SYMLINK);
	cr_assert_eq(sfs_readlink(fs, st.fid, buf, sizeof(buf)), 14);
	cr_assert_str_eq(buf, "../some/target");
	cr_assert_eq(sfs_stat(fs, "/l", &st), 0);
	cr_assert_eq(st.size_bytes, 14);
	cr_assert_eq(st.uid, 7);
	cr_assert_eq(sfs_symlink(fs, "x", "/l", 0, 0, NULL), -EEXIST);
	struct sfs_file *f;
	cr_assert_eq(sfs_open(fs, "/l", SFS_O_RDONLY, 0, &f), -ELOOP);
	put("/plain", "y");
	cr_assert_eq(sfs_stat(fs, "/plain", &st), 0);
	cr_assert_eq(sfs_readlink(fs, st.fid, buf, sizeof(buf)), -EINVAL);
	cr_assert_eq(sfs_unlink(fs, "/l"), 0);
	finish();
}

struct appender {
	struct sfs *fs; /* its own client: its own metadata connection */
	char tag;
	int rc;
};

#define APPENDS 50
#define RECORD 3000 /* over one 64 KiB strip now and then: spans servers */

static void *append_loop(void *arg)
{
	struct appender *a = arg;
	struct sfs_file *f;
	char rec[RECORD];
	memset(rec, a->tag, sizeof(rec));
	a->rc = sfs_open(a->fs, "/log", SFS_O_WRONLY | SFS_O_APPEND, 0, &f);
	for (int i = 0; a->rc == 0 && i < APPENDS; i++) {
		ssize_t n = sfs_append(f, rec, sizeof(rec), NULL);
		a->rc = n == RECORD ? 0 : (int)n;
	}
	if (a->rc == 0)
		a->rc = sfs_close(f);
	return NULL;
}

Test(fs_posix, appends_from_two_clients_never_overlap)
{
	struct appender w[2] = { { .tag = 'a' }, { .tag = 'b' } };
	pthread_t t[2];
	start();
	put("/log", "");
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(sfs_connect(fx.conf, NULL, &w[i].fs), 0);
		pthread_create(&t[i], NULL, append_loop, &w[i]);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(w[i].rc, 0, "appender %c: %d", w[i].tag, w[i].rc);
		sfs_disconnect(w[i].fs);
	}
	struct sfs_file *f;
	static char all[2 * APPENDS * RECORD + 1]; /* one more: a read past the end */
	cr_assert_eq(sfs_open(fs, "/log", SFS_O_RDONLY, 0, &f), 0);
	cr_assert_eq(sfs_pread(f, all, sizeof(all), 0), (ssize_t)sizeof(all) - 1);
	sfs_close(f);
	for (size_t r = 0; r < 2 * APPENDS; r++)
		for (size_t i = 1; i < RECORD; i++)
			cr_assert_eq(all[r * RECORD + i], all[r * RECORD], "record %zu torn", r);
	finish();
}

Test(fs_posix, an_open_file_is_found_by_fid_after_a_rename)
{
	struct sfs_file *f;
	struct sfs_stat st;
	start();
	put("/a", "hello");
	cr_assert_eq(sfs_open(fs, "/a", SFS_O_RDWR, 0, &f), 0);
	cr_assert_eq(sfs_rename(fs, "/a", "/b", 0), 0);
	cr_assert_eq(sfs_fstat(f, &st), 0, "%s", sfs_last_error());
	cr_assert_eq(st.size_bytes, 5);
	sfs_close(f);
	cr_assert_eq(sfs_open_fid(fs, st.fid, "/b", SFS_O_RDONLY, &f), 0, "%s", sfs_last_error());
	sfs_close(f);
	finish();
}

/* A version 1 database (before owners and symlinks), as an older sfsd left
 * it: one directory below the root. */
static void write_v1_db(const char *path)
{
	sqlite3 *db;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db,
		"PRAGMA journal_mode = WAL;"
		"CREATE TABLE entries (fid INTEGER PRIMARY KEY, parent INTEGER NOT NULL,"
		" name TEXT NOT NULL, type INTEGER NOT NULL, mode INTEGER NOT NULL,"
		" mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,"
		" strip_size INTEGER NOT NULL DEFAULT 0, stripe_count INTEGER NOT NULL DEFAULT 0,"
		" servers BLOB, UNIQUE (parent, name));"
		"CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
		"INSERT INTO counters VALUES ('fid_reserved', 1024);"
		"INSERT INTO entries (fid, parent, name, type, mode, mtime_ns, ctime_ns)"
		" VALUES (1, 0, '', 2, 493, 5, 5), (7, 1, 'old', 2, 448, 123456789, 9);"
		"PRAGMA user_version = 1;", NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
	sqlite3_close(db);
}

Test(fs_posix, schema_version_1_is_upgraded_in_place)
{
	char db[400], cmd[1300];
	struct sfs_stat st;
	start();
	fsfix_signal(&fx, 0, SIGTERM);
	snprintf(db, sizeof(db), "%s/meta/meta.db", fx.dir);
	snprintf(cmd, sizeof(cmd), "rm -f '%s' '%s-wal' '%s-shm'", db, db, db);
	cr_assert_eq(system(cmd), 0);
	write_v1_db(db);
	fsfix_start_server(&fx, 0);
	cr_assert(fsfix_log_contains(&fx, 0, "upgraded from schema version 1 to 3"));
	cr_assert_eq(sfs_stat(fs, "/old", &st), 0, "%s", sfs_last_error());
	cr_assert_eq(st.type, SFS_STAT_DIR);
	cr_assert_eq(st.mode, 0700);
	cr_assert_eq(st.uid, 0);
	cr_assert_eq(st.atime_ns, 123456789);
	cr_assert_eq(sfs_mkdir_as(fs, "/old/new", 0755, 42, 43), 0, "%s", sfs_last_error());
	cr_assert_eq(sfs_stat(fs, "/old/new", &st), 0);
	cr_assert_eq(st.uid, 42);
	cr_assert_geq(st.fid, 1024, "no fid below the reservation is handed out");
	finish();
}

static struct sfs_lock range(int type, uint64_t start, uint64_t end)
{
	return (struct sfs_lock){ .type = type, .start = start, .end = end, .pid = 4242 };
}

Test(fs_posix, locks_conflict_across_clients_and_go_with_their_client)
{
	struct sfs *other;
	struct sfs_file *a, *b, *a2;
	start();
	put("/lk", "0123456789");
	cr_assert_eq(sfs_connect(fx.conf, NULL, &other), 0);
	cr_assert_eq(sfs_open(fs, "/lk", SFS_O_RDWR, 0, &a), 0);
	cr_assert_eq(sfs_open(other, "/lk", SFS_O_RDWR, 0, &b), 0);
	struct sfs_lock lk = range(SFS_LOCK_WRITE, 0, 99);
	cr_assert_eq(sfs_lock(a, 1, 0, &lk), 0, "%s", sfs_last_error());
	lk = range(SFS_LOCK_WRITE, 50, 60);
	cr_assert_eq(sfs_lock(b, 1, 0, &lk), -EAGAIN, "the same owner number, another client");
	lk = range(SFS_LOCK_READ, 100, UINT64_MAX);
	cr_assert_eq(sfs_lock(b, 1, 0, &lk), 0, "past the range");
	/* getlk names the holder: its pid on the same client, 0 on another */
	lk = range(SFS_LOCK_READ, 5, 5);
	cr_assert_eq(sfs_getlk(b, 1, 0, &lk), 0);
	cr_assert_eq(lk.type, SFS_LOCK_WRITE);
	cr_assert_eq(lk.start, 0);
	cr_assert_eq(lk.end, 99);
	cr_assert_eq(lk.pid, 0);
	cr_assert_eq(sfs_open(fs, "/lk", SFS_O_RDONLY, 0, &a2), 0);
	lk = range(SFS_LOCK_READ, 5, 5);
	cr_assert_eq(sfs_getlk(a2, 2, 0, &lk), 0);
	cr_assert_eq(lk.pid, 4242);
	/* unlocking the middle splits the holder's lock in two */
	lk = range(SFS_LOCK_UNLOCK, 40, 59);
	cr_assert_eq(sfs_lock(a, 1, 0, &lk), 0);
	lk = range(SFS_LOCK_WRITE, 40, 59);
	cr_assert_eq(sfs_lock(b, 1, 0, &lk), 0);
	lk = range(SFS_LOCK_WRITE, 39, 39);
	cr_assert_eq(sfs_lock(b, 1, 0, &lk), -EAGAIN);
	lk = range(SFS_LOCK_WRITE, 60, 60);
	cr_assert_eq(sfs_lock(b, 1, 0, &lk), -EAGAIN);
	/* flock is its own kind */
	struct sfs_lock whole = { .type = SFS_LOCK_WRITE };
	cr_assert_eq(sfs_lock(a, 7, 1, &whole), 0);
	cr_assert_eq(sfs_lock(b, 7, 1, &whole), -EAGAIN);
	/* the holding client goes: every lock of it goes */
	sfs_close(a);
	sfs_close(a2);
	sfs_disconnect(fs);
	fs = NULL;
	int rc = -EAGAIN; /* the server sees the connections close a moment later */
	for (int i = 0; i < 200 && rc == -EAGAIN; i++) {
		rc = sfs_lock(b, 7, 1, &whole);
		if (rc == -EAGAIN)
			usleep(10000);
	}
	cr_assert_eq(rc, 0, "the gone client's flock is still held: %s", sfs_last_error());
	lk = range(SFS_LOCK_WRITE, 0, UINT64_MAX);
	cr_assert_eq(sfs_lock(b, 1, 0, &lk), 0, "%s", sfs_last_error());
	sfs_close(b);
	sfs_disconnect(other);
	finish();
}
