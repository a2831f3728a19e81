/*
 * sfs snapshots against real sfsd processes: rollback restores every byte,
 * entry and layout; snapshots are readable under /.snapshots; names are
 * checked; a snapshot is one cut over every I/O server even while writers
 * run; a server that dies mid-snapshot fails it wholly; a metadata server
 * killed at each step of create, rm and rollback restarts wholly before or
 * wholly after, with no datafile leaked.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
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

static void finish(void)
{
	sfs_disconnect(fs);
	fs = NULL;
	fsfix_finish(&fx);
}

static void start(unsigned n_io, const char *extra)
{
	fsfix_start(&fx, n_io, extra);
	cr_assert_eq(sfs_connect(fx.conf, NULL, &fs), 0, "sfs_connect: %s", sfs_last_error());
}

TestSuite(snapshot, .fini = stop, .timeout = 120);

/* --- files and trees ------------------------------------------------------ */

static void fill(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
}

static void put(const char *path, size_t len, uint64_t seed)
{
	struct sfs_file *f;
	uint8_t *buf = malloc(len + 1);
	fill(buf, len, seed);
	int rc = sfs_open(fs, path, SFS_O_WRONLY | SFS_O_CREAT | SFS_O_TRUNC, 0644, &f);
	cr_assert_eq(rc, 0, "open %s: %s", path, sfs_last_error());
	if (len)
		cr_assert_eq(sfs_pwrite(f, buf, len, 0), (ssize_t)len, "%s", sfs_last_error());
	sfs_close(f);
	free(buf);
}

static uint64_t fnv1a(const uint8_t *p, size_t len, uint64_t h)
{
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

/* One entry of a tree: everything a rollback must restore. */
struct node {
	char path[256];
	int type;
	uint64_t size, hash;
	uint32_t strip_size;
	unsigned stripe_count, servers[4];
};

struct tree {
	struct node n[256];
	unsigned count;
};

static uint64_t file_hash(const char *path, uint64_t size)
{
	struct sfs_file *f;
	uint64_t h = 1469598103934665603ull;
	cr_assert_eq(sfs_open(fs, path, SFS_O_RDONLY, 0, &f), 0, "open %s: %s", path,
		     sfs_last_error());
	uint8_t *buf = malloc(size + 1);
	cr_assert_eq(sfs_pread(f, buf, size, 0), (ssize_t)size, "read %s: %s", path,
		     sfs_last_error());
	h = fnv1a(buf, size, h);
	free(buf);
	sfs_close(f);
	return h;
}

struct walk_arg {
	struct tree *t;
	const char *dir;
	char names[64][256];
	int types[64];
	unsigned n;
};

static int collect(void *arg, const char *name, int type, uint64_t fid)
{
	(void)fid;
	struct walk_arg *w = arg;
	cr_assert_lt(w->n, 64u);
	snprintf(w->names[w->n], sizeof(w->names[0]), "%s", name);
	w->types[w->n++] = type;
	return 0;
}

/* Capture dir recursively; prefix is stripped from the recorded paths so a
 * snapshot's copy compares equal to the live tree. */
static void capture_dir(struct tree *t, const char *dir, size_t prefix)
{
	struct walk_arg *w = calloc(1, sizeof(*w));
	w->t = t;
	cr_assert_eq(sfs_readdir(fs, dir, collect, w), 0, "readdir %s: %s", dir, sfs_last_error());
	for (unsigned i = 0; i < w->n; i++) {
		char path[512];
		struct sfs_stat st;
		snprintf(path, sizeof(path), "%s/%s", strcmp(dir, "/") ? dir : "", w->names[i]);
		cr_assert_eq(sfs_stat(fs, path, &st), 0, "stat %s: %s", path, sfs_last_error());
		cr_assert_lt(t->count, 256u);
		struct node *n = &t->n[t->count++];
		memset(n, 0, sizeof(*n));
		snprintf(n->path, sizeof(n->path), "%s", path + prefix);
		n->type = st.type;
		n->strip_size = st.strip_size;
		n->stripe_count = st.stripe_count;
		if (st.type == SFS_STAT_FILE) {
			n->size = st.size_bytes;
			n->hash = file_hash(path, st.size_bytes);
			for (unsigned k = 0; k < st.stripe_count && k < 4; k++)
				n->servers[k] = st.servers[k];
		} else {
			capture_dir(t, path, prefix);
		}
	}
	free(w);
}

static struct tree *capture(const char *dir)
{
	struct tree *t = calloc(1, sizeof(*t));
	capture_dir(t, dir, strcmp(dir, "/") ? strlen(dir) : 0);
	return t;
}

static int same_tree(const struct tree *a, const struct tree *b)
{
	if (a->count != b->count)
		return 0;
	for (unsigned i = 0; i < a->count; i++)
		if (strcmp(a->n[i].path, b->n[i].path) || a->n[i].hash != b->n[i].hash ||
		    a->n[i].size != b->n[i].size)
			return 0;
	return 1;
}

static void assert_same(const struct tree *a, const struct tree *b, const char *what)
{
	for (unsigned i = 0; i < a->count && i < b->count; i++) {
		const struct node *x = &a->n[i], *y = &b->n[i];
		cr_assert_str_eq(x->path, y->path, "%s: entry %u", what, i);
		cr_assert_eq(x->type, y->type, "%s: %s type", what, x->path);
		cr_assert_eq(x->size, y->size, "%s: %s size %lu vs %lu", what, x->path,
			     (unsigned long)x->size, (unsigned long)y->size);
		cr_assert_eq(x->hash, y->hash, "%s: %s contents differ", what, x->path);
		cr_assert_eq(x->strip_size, y->strip_size, "%s: %s strip size", what, x->path);
		cr_assert_eq(x->stripe_count, y->stripe_count, "%s: %s stripe count", what,
			     x->path);
		cr_assert_eq(memcmp(x->servers, y->servers, sizeof(x->servers)), 0,
			     "%s: %s servers", what, x->path);
	}
	cr_assert_eq(a->count, b->count, "%s: %u entries vs %u", what, a->count, b->count);
}

/* A tree with files of several sizes, a subdirectory and two layouts. */
static void make_tree(const char *dir, uint64_t seed)
{
	char path[256];
	cr_assert_eq(sfs_mkdir(fs, dir, 0755), 0, "%s", sfs_last_error());
	snprintf(path, sizeof(path), "%s/sub", dir);
	cr_assert_eq(sfs_mkdir(fs, path, 0755), 0);
	cr_assert_eq(sfs_setstripe(fs, path, 16384, 2), 0, "%s", sfs_last_error());
	static const size_t sizes[] = { 0, 1, 4096, 70000, 300000, 1u << 20 };
	for (unsigned i = 0; i < 6; i++) {
		snprintf(path, sizeof(path), "%s/f%u", dir, i);
		put(path, sizes[i], seed + i);
		snprintf(path, sizeof(path), "%s/sub/g%u", dir, i);
		put(path, sizes[5 - i], seed + 100 + i);
	}
}

static size_t count_snapshots(void);

/* --- rollback ------------------------------------------------------------------ */

Test(snapshot, rollback_restores_every_file_entry_and_layout)
{
	start(3, NULL);
	make_tree("/d", 1);
	struct tree *before = capture("/d");
	struct sfs_snapshot s;
	cr_assert_eq(sfs_snapshot_create(fs, "before", "/d", &s), 0, "%s", sfs_last_error());
	cr_assert_eq(s.n_files, 12);
	cr_assert_eq(s.n_dirs, 2);
	/* every kind of change */
	put("/d/f4", 5000, 77);                          /* overwrite, shorter */
	put("/d/f0", 200000, 78);                        /* grow an empty file */
	struct sfs_file *f;
	cr_assert_eq(sfs_open(fs, "/d/f5", SFS_O_RDWR, 0, &f), 0);
	cr_assert_eq(sfs_pwrite(f, "patch", 5, 123456), 5); /* patch in place */
	sfs_close(f);
	cr_assert_eq(sfs_truncate(fs, "/d/f3", 10), 0);  /* truncate */
	cr_assert_eq(sfs_unlink(fs, "/d/f2"), 0);         /* remove */
	cr_assert_eq(sfs_unlink(fs, "/d/sub/g1"), 0);
	put("/d/new", 99999, 79);                        /* create */
	cr_assert_eq(sfs_mkdir(fs, "/d/newdir", 0755), 0);
	put("/d/newdir/x", 10, 80);
	cr_assert_eq(sfs_setstripe(fs, "/d/sub", 65536, 1), 0); /* layout change */
	put("/d/sub/g1", 4096, 81);                       /* recreated, other layout */
	put("/outside", 10, 82);                          /* not under the snapshot */
	struct tree *changed = capture("/d");
	cr_assert_neq(changed->count, before->count);

	/* just written: refused without force (a writer may still be at work) */
	int rc = sfs_snapshot_rollback(fs, "before", 0);
	if (rc == -EBUSY)
		cr_assert(strstr(sfs_last_error(), "being written"), "%s", sfs_last_error());
	else
		cr_assert_eq(rc, 0, "%s", sfs_last_error());
	cr_assert_eq(sfs_snapshot_rollback(fs, "before", SFS_ROLLBACK_FORCE), 0, "%s",
		     sfs_last_error());
	struct tree *after = capture("/d");
	assert_same(before, after, "after rollback");
	struct sfs_stat st;
	cr_assert_eq(sfs_stat(fs, "/outside", &st), 0, "a file outside the path was touched");
	/* the sub directory's default layout came back too */
	cr_assert_eq(sfs_stat(fs, "/d/sub", &st), 0);
	cr_assert_eq(st.strip_size, 16384);
	cr_assert_eq(st.stripe_count, 2);
	/* the snapshot stays and can be rolled back to again */
	put("/d/f1", 3, 90);
	cr_assert_eq(sfs_snapshot_rollback(fs, "before", SFS_ROLLBACK_FORCE), 0);
	free(after);
	after = capture("/d");
	assert_same(before, after, "after the second rollback");
	struct sfs_fsck_report r;
	cr_assert_eq(sfs_fsck(fs, &r), 0, "%s", sfs_last_error());
	cr_assert_eq(r.leaked_datafiles + r.leaked_snapshots + r.missing_datafiles, 0,
		     "fsck: %lu leaked, %lu leaked snapshot files, %lu missing",
		     (unsigned long)r.leaked_datafiles, (unsigned long)r.leaked_snapshots,
		     (unsigned long)r.missing_datafiles);
	free(before);
	free(changed);
	free(after);
	finish();
}

Test(snapshot, snapshot_is_readable_under_dot_snapshots_and_read_only)
{
	start(2, NULL);
	make_tree("/d", 5);
	struct tree *before = capture("/d");
	cr_assert_eq(sfs_snapshot_create(fs, "s", "/d", NULL), 0, "%s", sfs_last_error());
	put("/d/f5", 10, 6);
	cr_assert_eq(sfs_unlink(fs, "/d/f4"), 0);
	struct tree *snap = capture("/.snapshots/s");
	assert_same(before, snap, "/.snapshots/s");
	struct sfs_file *f;
	cr_assert_eq(sfs_open(fs, "/.snapshots/s/new", SFS_O_WRONLY | SFS_O_CREAT, 0644, &f),
		     -EROFS);
	cr_assert_eq(sfs_unlink(fs, "/.snapshots/s/f1"), -EROFS);
	/* the metadata server refuses an open for writing (the I/O servers
	 * refuse a write by snapshot handle too: test_sfsd_frames) */
	cr_assert_eq(sfs_open(fs, "/.snapshots/s/f1", SFS_O_RDWR, 0, &f), -EROFS);
	cr_assert_eq(sfs_open(fs, "/.snapshots/s/f1", SFS_O_RDONLY, 0, &f), 0);
	sfs_close(f);
	cr_assert_eq(sfs_open(fs, "/.snapshots/nosuch/f1", SFS_O_RDONLY, 0, &f), -ENOENT);
	cr_assert(strstr(sfs_last_error(), "nosuch"), "%s", sfs_last_error());
	/* what the snapshot pins shows in statfs once the live copy diverged */
	struct sfs_server_usage u[3];
	cr_assert_eq(sfs_statfs(fs, u, 3), 0);
	cr_assert_gt(u[1].snapshot_bytes + u[2].snapshot_bytes, 0);
	cr_assert_eq(u[1].n_snapshots, 1);
	free(before);
	free(snap);
	finish();
}

Test(snapshot, two_overlapping_snapshots_roll_back_independently)
{
	start(2, NULL);
	make_tree("/d", 10);
	put("/top", 1000, 11);
	struct tree *d1 = capture("/d");
	cr_assert_eq(sfs_snapshot_create(fs, "d1", "/d", NULL), 0, "%s", sfs_last_error());
	put("/d/f1", 7777, 12);
	put("/d/extra", 5, 13);
	put("/top", 2000, 14);
	struct tree *all2 = capture("/");
	cr_assert_eq(sfs_snapshot_create(fs, "all2", NULL, NULL), 0, "%s", sfs_last_error());
	put("/d/f1", 1, 15);
	put("/top", 3, 16);
	cr_assert_eq(sfs_unlink(fs, "/d/extra"), 0);
	/* d1: /d as at d1, /top untouched (outside) */
	cr_assert_eq(sfs_snapshot_rollback(fs, "d1", SFS_ROLLBACK_FORCE), 0, "%s",
		     sfs_last_error());
	struct tree *now = capture("/d");
	assert_same(d1, now, "/d after rolling back to d1");
	struct sfs_stat st;
	cr_assert_eq(sfs_stat(fs, "/top", &st), 0);
	cr_assert_eq(st.size_bytes, 3);
	/* all2: everything as at all2, including /d's second state */
	cr_assert_eq(sfs_snapshot_rollback(fs, "all2", SFS_ROLLBACK_FORCE), 0, "%s",
		     sfs_last_error());
	free(now);
	now = capture("/");
	assert_same(all2, now, "/ after rolling back to all2");
	/* and d1 is still good after all that */
	cr_assert_eq(sfs_snapshot_rollback(fs, "d1", SFS_ROLLBACK_FORCE), 0);
	free(now);
	now = capture("/d");
	assert_same(d1, now, "/d after rolling back to d1 again");
	cr_assert_eq(count_snapshots(), 2);
	cr_assert_eq(sfs_snapshot_rm(fs, "d1"), 0);
	cr_assert_eq(sfs_snapshot_rm(fs, "all2"), 0);
	cr_assert_eq(count_snapshots(), 0);
	struct sfs_server_usage u[3];
	cr_assert_eq(sfs_statfs(fs, u, 3), 0);
	cr_assert_eq(u[1].n_snapshots + u[2].n_snapshots, 0, "removed snapshots left datafiles");
	free(d1);
	free(all2);
	free(now);
	finish();
}

/* --- names ------------------------------------------------------------------------ */

static int count_one(void *arg, const struct sfs_snapshot *s)
{
	(void)s;
	(*(size_t *)arg)++;
	return 0;
}

static size_t count_snapshots(void)
{
	size_t n = 0;
	cr_assert_eq(sfs_snapshot_list(fs, count_one, &n), 0, "%s", sfs_last_error());
	return n;
}

Test(snapshot, bad_names_are_refused_naming_the_value)
{
	start(1, NULL);
	cr_assert_eq(sfs_mkdir(fs, "/d", 0755), 0);
	cr_assert_eq(sfs_snapshot_create(fs, "ok", "/d", NULL), 0, "%s", sfs_last_error());
	cr_assert_eq(sfs_snapshot_create(fs, "ok", "/d", NULL), -EEXIST);
	cr_assert(strstr(sfs_last_error(), "\"ok\""), "%s", sfs_last_error());
	cr_assert_eq(sfs_snapshot_create(fs, "a/b", NULL, NULL), -EINVAL);
	cr_assert(strstr(sfs_last_error(), "a/b"), "%s", sfs_last_error());
	cr_assert_eq(sfs_snapshot_create(fs, "", NULL, NULL), -EINVAL);
	cr_assert(strstr(sfs_last_error(), "empty"), "%s", sfs_last_error());
	char longname[200];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(sfs_snapshot_create(fs, longname, NULL, NULL), -ENAMETOOLONG);
	cr_assert(strstr(sfs_last_error(), "nnnnnnnn"), "%s", sfs_last_error());
	cr_assert_eq(sfs_snapshot_create(fs, "tab\there", NULL, NULL), -EINVAL);
	cr_assert_eq(sfs_snapshot_create(fs, "x", "/missing", NULL), -ENOENT);
	cr_assert(strstr(sfs_last_error(), "/missing"), "%s", sfs_last_error());
	cr_assert_eq(sfs_snapshot_create(fs, "x", "/.snapshots/ok", NULL), -EINVAL);
	cr_assert_eq(sfs_snapshot_rm(fs, "nosuch"), -ENOENT);
	cr_assert(strstr(sfs_last_error(), "nosuch"), "%s", sfs_last_error());
	cr_assert_eq(sfs_snapshot_rollback(fs, "nosuch", 0), -ENOENT);
	cr_assert(strstr(sfs_last_error(), "nosuch"), "%s", sfs_last_error());
	cr_assert_eq(count_snapshots(), 1, "a refused snapshot was kept");
	finish();
}

/* --- faults ------------------------------------------------------------------------ */

static void assert_fsck_clean(void)
{
	struct sfs_fsck_report r;
	cr_assert_eq(sfs_fsck(fs, &r), 0, "%s", sfs_last_error());
	cr_assert_eq(r.leaked_datafiles, 0, "leaked datafiles");
	cr_assert_eq(r.leaked_snapshots, 0, "leaked snapshot datafiles");
	cr_assert_eq(r.missing_datafiles, 0, "missing datafiles");
}

/* Restart server i with SFSD_SNAP_FAULT=point in its environment. */
static void restart_with_fault(unsigned i, const char *point)
{
	fsfix_signal(&fx, i, SIGTERM);
	setenv("SFSD_SNAP_FAULT", point, 1);
	fsfix_start_server(&fx, i);
	unsetenv("SFSD_SNAP_FAULT");
}

/* Wait for server i to die (it kills itself at its fault point). */
static void reap_killed(unsigned i)
{
	int status = fsfix_signal(&fx, i, SIGKILL);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "server %u was not killed",
		  i);
}

Test(snapshot, io_server_killed_during_create_fails_it_wholly)
{
	start(3, "timeout_ms = 3000\nsnapshot_barrier_timeout_ms = 5000\n");
	make_tree("/d", 20);
	restart_with_fault(3, "io:link");
	uint64_t t0 = (uint64_t)time(NULL);
	int rc = sfs_snapshot_create(fs, "s", "/d", NULL);
	cr_assert_lt(rc, 0, "a snapshot succeeded without one of its servers");
	cr_assert(strstr(sfs_last_error(), "io2"), "the error names the server: %s",
		  sfs_last_error());
	cr_assert_leq((uint64_t)time(NULL) - t0, 10);
	reap_killed(3);
	cr_assert_eq(count_snapshots(), 0, "a failed snapshot is listed");
	/* the other servers were released: a write to all three goes through at
	 * once, not after their freeze (5 s) lapses */
	struct sfs_file *f;
	fsfix_start_server(&fx, 3);
	cr_assert_eq(sfs_open(fs, "/d/f5", SFS_O_RDWR, 0, &f), 0);
	uint8_t big[3 * 65536] = { 1 };
	time_t w0 = time(NULL);
	cr_assert_eq(sfs_pwrite(f, big, sizeof(big), 0), (ssize_t)sizeof(big), "%s",
		     sfs_last_error());
	cr_assert_leq(time(NULL) - w0, 2, "writes were held after the failed snapshot");
	sfs_close(f);
	/* what io0 and io1 linked is dropped once io2 is back */
	cr_assert_eq(sfs_snapshot_create(fs, "s", "/d", NULL), 0, "%s", sfs_last_error());
	cr_assert_eq(sfs_snapshot_rm(fs, "s"), 0);
	assert_fsck_clean();
	struct sfs_server_usage u[4];
	cr_assert_eq(sfs_statfs(fs, u, 4), 0);
	for (unsigned i = 1; i < 4; i++)
		cr_assert_eq(u[i].n_snapshots, 0, "server %u still holds snapshot datafiles", i);
	finish();
}

/* Kill the metadata server at point during op, restart it, and check the
 * tree is wholly `expect` (before or after). */
static void crash_case(const char *point, int op_is_rollback, int expect_after)
{
	start(2, "timeout_ms = 3000\n");
	make_tree("/d", 30);
	struct tree *snap_state = capture("/d");
	cr_assert_eq(sfs_snapshot_create(fs, "s", "/d", NULL), 0, "%s", sfs_last_error());
	put("/d/f5", 123, 31);
	put("/d/born", 4567, 32);
	cr_assert_eq(sfs_unlink(fs, "/d/f4"), 0);
	struct tree *live_state = capture("/d");
	restart_with_fault(0, point);
	int rc = op_is_rollback ? sfs_snapshot_rollback(fs, "s", SFS_ROLLBACK_FORCE)
				: sfs_snapshot_rm(fs, "s");
	cr_assert_lt(rc, 0, "the call survived its server's death");
	reap_killed(0);
	fsfix_start_server(&fx, 0);
	struct tree *now = capture("/d");
	if (op_is_rollback)
		assert_same(expect_after ? snap_state : live_state, now, point);
	else
		cr_assert_eq(count_snapshots(), expect_after ? 0 : 1, "%s", point);
	assert_fsck_clean();
	struct sfs_server_usage u[3];
	cr_assert_eq(sfs_statfs(fs, u, 3), 0);
	cr_assert_eq(u[1].n_snapshots, expect_after && !op_is_rollback ? 0 : 1, "%s", point);
	free(snap_state);
	free(live_state);
	free(now);
	finish();
}

Test(snapshot, meta_killed_before_rollback_commits_changes_nothing)
{
	crash_case("rollback:frozen", 1, 0);
}

Test(snapshot, meta_killed_after_rollback_commits_finishes_it_on_restart)
{
	crash_case("rollback:committed", 1, 1);
}

Test(snapshot, meta_killed_mid_restore_finishes_it_on_restart)
{
	crash_case("rollback:restoring", 1, 1);
}

Test(snapshot, meta_killed_mid_rm_finishes_it_on_restart)
{
	crash_case("rm:committed", 0, 1);
}

Test(snapshot, meta_killed_mid_create_leaves_no_snapshot)
{
	start(2, "timeout_ms = 3000\n");
	make_tree("/d", 40);
	restart_with_fault(0, "create:linked");
	cr_assert_lt(sfs_snapshot_create(fs, "s", "/d", NULL), 0);
	reap_killed(0);
	fsfix_start_server(&fx, 0);
	cr_assert_eq(count_snapshots(), 0, "a half-made snapshot survived");
	assert_fsck_clean();
	struct sfs_server_usage u[3];
	cr_assert_eq(sfs_statfs(fs, u, 3), 0);
	cr_assert_eq(u[1].n_snapshots + u[2].n_snapshots, 0, "its links were not dropped");
	/* the I/O servers' freeze lapsed by itself or was released: writes work */
	put("/d/f1", 100, 41);
	cr_assert_eq(sfs_snapshot_create(fs, "s", "/d", NULL), 0, "%s", sfs_last_error());
	finish();
}

/* --- open files -------------------------------------------------------------------- */

Test(snapshot, open_files_after_rollback_see_the_snapshot_or_estale)
{
	start(2, NULL);
	put("/keep", 100000, 50);
	cr_assert_eq(sfs_snapshot_create(fs, "s", NULL, NULL), 0, "%s", sfs_last_error());
	put("/born", 10, 51);
	struct sfs_file *keep, *born;
	cr_assert_eq(sfs_open(fs, "/keep", SFS_O_RDWR, 0, &keep), 0);
	cr_assert_eq(sfs_open(fs, "/born", SFS_O_RDWR, 0, &born), 0);
	cr_assert_eq(sfs_pwrite(keep, "changed", 7, 0), 7);
	/* a file being written: refused unless forced */
	cr_assert_eq(sfs_snapshot_rollback(fs, "s", 0), -EBUSY);
	cr_assert(strstr(sfs_last_error(), "being written"), "%s", sfs_last_error());
	cr_assert_eq(sfs_snapshot_rollback(fs, "s", SFS_ROLLBACK_FORCE), 0, "%s",
		     sfs_last_error());
	uint8_t buf[7];
	uint8_t *orig = malloc(100000);
	fill(orig, 100000, 50);
	cr_assert_eq(sfs_pread(keep, buf, 7, 0), 7);
	cr_assert_eq(memcmp(buf, orig, 7), 0, "an open file does not see the rolled-back data");
	cr_assert_eq(sfs_pwrite(born, "x", 1, 0), -ESTALE);
	cr_assert_eq(sfs_pread(born, buf, 1, 0), -ESTALE);
	struct sfs_stat st;
	cr_assert_eq(sfs_fstat(born, &st), -ESTALE);
	sfs_close(keep);
	sfs_close(born);
	free(orig);
	finish();
}

/* --- the cut ------------------------------------------------------------------------- */

#define WRITERS 4
#define RECORD 4096
#define RECORDS 2048 /* 8 MiB per writer, striped over every server */

struct writer {
	unsigned id;
	volatile int *stop;
	unsigned written; /* records completed */
};

/* Record k of writer w: its header says who and which, the rest is
 * derived from both, so a torn or misplaced record shows. */
static void make_record(uint8_t *rec, unsigned w, unsigned k)
{
	fill(rec, RECORD, (uint64_t)w << 32 | k);
	memcpy(rec, &w, sizeof(w));
	memcpy(rec + 4, &k, sizeof(k));
	rec[8] = 0xA5;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char path[64];
	uint8_t rec[RECORD];
	struct sfs_file *f;
	snprintf(path, sizeof(path), "/cut/w%u", w->id);
	cr_assert_eq(sfs_open(fs, path, SFS_O_WRONLY | SFS_O_CREAT, 0644, &f), 0);
	for (unsigned k = 0; k < RECORDS && !*w->stop; k++) {
		make_record(rec, w->id, k);
		/* one record at a time, each only after the previous landed */
		cr_assert_eq(sfs_pwrite(f, rec, RECORD, (uint64_t)k * RECORD), RECORD, "%s",
			     sfs_last_error());
		__atomic_store_n(&w->written, k + 1, __ATOMIC_RELEASE);
	}
	sfs_close(f);
	return NULL;
}

/* In the snapshot, writer w's file must be records 0..n-1 exactly, n at
 * least what had completed before the snapshot began: a prefix, whole
 * records, with no later record on any server. */
static void check_prefix(const char *path, unsigned w, unsigned at_least)
{
	struct sfs_stat st;
	cr_assert_eq(sfs_stat(fs, path, &st), 0, "%s", sfs_last_error());
	cr_assert_eq(st.size_bytes % RECORD, 0, "%s: a torn record (size %lu)", path,
		     (unsigned long)st.size_bytes);
	unsigned n = (unsigned)(st.size_bytes / RECORD);
	cr_assert_geq(n, at_least, "%s: records completed before the snapshot are missing", path);
	uint8_t *all = malloc(st.size_bytes + 1), rec[RECORD];
	struct sfs_file *f;
	cr_assert_eq(sfs_open(fs, path, SFS_O_RDONLY, 0, &f), 0);
	cr_assert_eq(sfs_pread(f, all, st.size_bytes, 0), (ssize_t)st.size_bytes);
	sfs_close(f);
	for (unsigned k = 0; k < n; k++) {
		make_record(rec, w, k);
		cr_assert_eq(memcmp(all + (size_t)k * RECORD, rec, RECORD), 0,
			     "%s: record %u of %u is not whole (a later record landed on one "
			     "server but an earlier one did not)", path, k, n);
	}
	free(all);
}

Test(snapshot, snapshot_during_writers_is_one_cut_over_every_server)
{
	start(3, NULL);
	cr_assert_eq(sfs_mkdir(fs, "/cut", 0755), 0);
	cr_assert_eq(sfs_setstripe(fs, "/cut", 4096, 3), 0); /* each record on one server */
	volatile int stop = 0;
	struct writer ws[WRITERS];
	pthread_t th[WRITERS];
	for (unsigned i = 0; i < WRITERS; i++) {
		ws[i] = (struct writer){ .id = i, .stop = &stop };
		pthread_create(&th[i], NULL, writer_main, &ws[i]);
	}
	unsigned before[WRITERS];
	for (int round = 0; round < 3; round++) {
		char name[16];
		/* wait until every writer is under way, then cut */
		for (unsigned i = 0; i < WRITERS; i++)
			while (__atomic_load_n(&ws[i].written, __ATOMIC_ACQUIRE) < 64u * (round + 1))
				usleep(1000);
		for (unsigned i = 0; i < WRITERS; i++)
			before[i] = __atomic_load_n(&ws[i].written, __ATOMIC_ACQUIRE);
		snprintf(name, sizeof(name), "cut%d", round);
		cr_assert_eq(sfs_snapshot_create(fs, name, "/cut", NULL), 0, "%s",
			     sfs_last_error());
		for (unsigned i = 0; i < WRITERS; i++) {
			char path[64];
			snprintf(path, sizeof(path), "/.snapshots/%s/w%u", name, i);
			check_prefix(path, i, before[i]);
		}
	}
	stop = 1;
	for (unsigned i = 0; i < WRITERS; i++)
		pthread_join(th[i], NULL);
	finish();
}

/* --- schema ------------------------------------------------------------------------- */

static sqlite3 *db_open_meta(void)
{
	char path[400];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/meta/meta.db", fx.dir);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static void db_do(sqlite3 *db, const char *sql)
{
	char *why = NULL;
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &why), SQLITE_OK, "%s: %s", sql, why);
}

static long long db_value(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s;
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s", sql);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "%s", sql);
	long long v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/*
 * A version 2 database (owners, no snapshots) whose entries table has a column this code does not
 * know (as a later schema may add): the upgrade keeps its
 * rows, and a rollback brings that column's values back too, because
 * snapshots copy every column there is.
 */
Test(snapshot, version_2_database_is_upgraded_and_unknown_columns_roll_back)
{
	start(1, NULL);
	put("/f", 1000, 60);
	fsfix_signal(&fx, 0, SIGTERM);
	sqlite3 *db = db_open_meta();
	db_do(db, "DROP TABLE snapshots; DROP TABLE snap_entries; DROP TABLE snap_pending;"
		  " DELETE FROM counters WHERE name = 'snap_id_last';"
		  " ALTER TABLE entries ADD COLUMN owner_uid INTEGER NOT NULL DEFAULT 0;"
		  " UPDATE entries SET owner_uid = 1234 WHERE name = 'f';"
		  " PRAGMA user_version = 2");
	sqlite3_close(db);
	fsfix_start_server(&fx, 0);
	cr_assert(fsfix_log_contains(&fx, 0, "upgraded from schema version 2 to 3"),
		  "no upgrade logged");
	struct sfs_stat st;
	cr_assert_eq(sfs_stat(fs, "/f", &st), 0, "a version 2 file was lost: %s", sfs_last_error());
	cr_assert_eq(st.size_bytes, 1000);
	cr_assert_eq(sfs_snapshot_create(fs, "s", NULL, NULL), 0, "%s", sfs_last_error());
	db = db_open_meta();
	cr_assert_eq(db_value(db, "PRAGMA user_version"), 3);
	db_do(db, "UPDATE entries SET owner_uid = 99 WHERE name = 'f'");
	sqlite3_close(db);
	cr_assert_eq(sfs_snapshot_rollback(fs, "s", SFS_ROLLBACK_FORCE), 0, "%s", sfs_last_error());
	db = db_open_meta();
	cr_assert_eq(db_value(db, "SELECT owner_uid FROM entries WHERE name = 'f'"), 1234,
		     "a column snapshots do not know of was not rolled back");
	sqlite3_close(db);
	finish();
}

/* The copy a first write after a snapshot needs finds the disk full
 * (injected: SFSD_SNAP_FAULT=io:cow-enospc on every I/O server): the write
 * fails with ENOSPC, the live file and the snapshot keep their bytes, no
 * partial copy is left, and with room again the write goes through. */
Test(snapshot, enospc_while_copying_fails_the_write_and_keeps_both)
{
	start(2, NULL);
	put("/f", 200000, 70);
	cr_assert_eq(sfs_snapshot_create(fs, "s", NULL, NULL), 0, "%s", sfs_last_error());
	restart_with_fault(1, "io:cow-enospc");
	restart_with_fault(2, "io:cow-enospc");
	struct sfs_file *f;
	cr_assert_eq(sfs_open(fs, "/f", SFS_O_RDWR, 0, &f), 0);
	uint8_t junk[150000];
	memset(junk, 0xee, sizeof(junk));
	cr_assert_eq(sfs_pwrite(f, junk, sizeof(junk), 0), -ENOSPC, "%s", sfs_last_error());
	cr_assert_eq(sfs_ftruncate(f, 0), -ENOSPC, "%s", sfs_last_error());
	sfs_close(f);
	uint8_t *want = malloc(200000);
	fill(want, 200000, 70);
	uint64_t h = fnv1a(want, 200000, 1469598103934665603ull);
	cr_assert_eq(file_hash("/f", 200000), h, "the live file changed");
	cr_assert_eq(file_hash("/.snapshots/s/f", 200000), h, "the snapshot changed");
	struct sfs_stat st;
	cr_assert_eq(sfs_stat(fs, "/f", &st), 0);
	cr_assert_eq(st.size_bytes, 200000);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "ls -a %s/io0/data %s/io1/data | grep -q cow-", fx.dir, fx.dir);
	cr_assert_neq(system(cmd), 0, "a partial copy was left behind");
	fsfix_signal(&fx, 1, SIGTERM);
	fsfix_start_server(&fx, 1);
	fsfix_signal(&fx, 2, SIGTERM);
	fsfix_start_server(&fx, 2);
	put("/f", 1000, 71);
	cr_assert_eq(file_hash("/.snapshots/s/f", 200000), h, "the snapshot changed");
	free(want);
	finish();
}

/* The snapshot's directory itself removed, or replaced by a file: the
 * rollback brings it back and touches nothing outside it. */
Test(snapshot, rollback_recreates_a_removed_or_replaced_directory)
{
	start(2, NULL);
	make_tree("/d", 90);
	put("/other", 500, 91);
	struct tree *before = capture("/d/sub");
	cr_assert_eq(sfs_snapshot_create(fs, "sub", "/d/sub", NULL), 0, "%s", sfs_last_error());
	for (unsigned i = 0; i < 6; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/d/sub/g%u", i);
		cr_assert_eq(sfs_unlink(fs, path), 0);
	}
	cr_assert_eq(sfs_rmdir(fs, "/d/sub"), 0);
	cr_assert_eq(sfs_snapshot_rollback(fs, "sub", SFS_ROLLBACK_FORCE), 0, "%s",
		     sfs_last_error());
	struct tree *now = capture("/d/sub");
	assert_same(before, now, "a removed directory rolled back");
	struct sfs_stat st;
	cr_assert_eq(sfs_stat(fs, "/other", &st), 0, "a rollback of a gone directory took /other");
	cr_assert_eq(sfs_stat(fs, "/d/f5", &st), 0, "a rollback of /d/sub took /d/f5");
	/* now a file where the directory was */
	for (unsigned i = 0; i < 6; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/d/sub/g%u", i);
		cr_assert_eq(sfs_unlink(fs, path), 0);
	}
	cr_assert_eq(sfs_rmdir(fs, "/d/sub"), 0);
	put("/d/sub", 77, 92);
	cr_assert_eq(sfs_snapshot_rollback(fs, "sub", SFS_ROLLBACK_FORCE), 0, "%s",
		     sfs_last_error());
	free(now);
	now = capture("/d/sub");
	assert_same(before, now, "a directory replaced by a file rolled back");
	/* with its parent gone, the rollback is refused naming what to do */
	cr_assert_eq(sfs_mkdir(fs, "/p", 0755), 0);
	cr_assert_eq(sfs_mkdir(fs, "/p/q", 0755), 0);
	cr_assert_eq(sfs_snapshot_create(fs, "q", "/p/q", NULL), 0);
	cr_assert_eq(sfs_rmdir(fs, "/p/q"), 0);
	cr_assert_eq(sfs_rmdir(fs, "/p"), 0);
	cr_assert_eq(sfs_snapshot_rollback(fs, "q", SFS_ROLLBACK_FORCE), -ENOENT);
	cr_assert(strstr(sfs_last_error(), "/p/q") && strstr(sfs_last_error(), "recreate"), "%s",
		  sfs_last_error());
	cr_assert_eq(sfs_mkdir(fs, "/p", 0755), 0);
	cr_assert_eq(sfs_snapshot_rollback(fs, "q", SFS_ROLLBACK_FORCE), 0, "%s", sfs_last_error());
	cr_assert_eq(sfs_stat(fs, "/p/q", &st), 0);
	cr_assert_eq(st.type, SFS_STAT_DIR);
	assert_fsck_clean();
	free(before);
	free(now);
	finish();
}

/* An I/O server killed halfway through restoring its datafiles: the
 * rollback is committed in the namespace, the call says it completes once
 * the server answers, and after the restart the tree is wholly the
 * snapshot's. */
Test(snapshot, io_server_killed_mid_rollback_finishes_after_restart)
{
	start(2, "timeout_ms = 3000\n");
	make_tree("/d", 95);
	struct tree *snap_state = capture("/d");
	cr_assert_eq(sfs_snapshot_create(fs, "s", "/d", NULL), 0, "%s", sfs_last_error());
	for (unsigned i = 0; i < 6; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/d/f%u", i);
		put(path, 3000 + i, 96 + i);
	}
	put("/d/born", 10, 99);
	restart_with_fault(2, "io:restore");
	int rc = sfs_snapshot_rollback(fs, "s", SFS_ROLLBACK_FORCE);
	cr_assert_lt(rc, 0, "the rollback succeeded without one of its servers");
	cr_assert(strstr(sfs_last_error(), "completes once"), "%s", sfs_last_error());
	reap_killed(2);
	fsfix_start_server(&fx, 2);
	/* the metadata server retries at most once a second: poll, bounded */
	struct tree *now = NULL;
	for (int waited_ms = 0; waited_ms < 5000; waited_ms += 100) {
		free(now);
		now = capture("/d");
		if (same_tree(snap_state, now))
			break;
		usleep(100 * 1000);
	}
	assert_same(snap_state, now, "after the I/O server came back");
	assert_fsck_clean();
	free(snap_state);
	free(now);
	finish();
}

/* An I/O server that stops answering (SIGSTOP) misses the barrier: the
 * snapshot fails within the deadline, nothing of it is kept, the other
 * servers are released at once, and the stopped one releases itself. */
Test(snapshot, a_server_missing_the_barrier_fails_it_and_releases_the_others)
{
	/* io1's freeze request gives up after timeout_ms (1 s); io0's freeze
	 * would lapse only after the barrier's 3 s */
	start(2, "timeout_ms = 1000\nsnapshot_barrier_timeout_ms = 3000\n");
	cr_assert_eq(sfs_mkdir(fs, "/one", 0755), 0);
	cr_assert_eq(sfs_setstripe(fs, "/one", 0, 1), 0);
	/* a file on io0 only, and one on io1 only */
	char on[2][32] = { "", "" };
	for (unsigned i = 0; i < 8 && (!on[0][0] || !on[1][0]); i++) {
		char path[32];
		struct sfs_stat st;
		snprintf(path, sizeof(path), "/one/f%u", i);
		put(path, 10, 110 + i);
		cr_assert_eq(sfs_stat(fs, path, &st), 0);
		snprintf(on[st.servers[0]], sizeof(on[0]), "%s", path);
	}
	cr_assert(on[0][0] && on[1][0], "no file landed on each server");
	fsfix_signal(&fx, 2, SIGSTOP); /* io1 */
	time_t t0 = time(NULL);
	cr_assert_lt(sfs_snapshot_create(fs, "s", NULL, NULL), 0, "a snapshot without io1");
	cr_assert_leq(time(NULL) - t0, 4, "the barrier's deadline was not kept");
	cr_assert(strstr(sfs_last_error(), "io1"), "%s", sfs_last_error());
	/* io0 was released, not left to lapse: a write there is answered
	 * within the client's 1 s timeout */
	struct sfs_file *f;
	cr_assert_eq(sfs_open(fs, on[0], SFS_O_RDWR, 0, &f), 0);
	cr_assert_eq(sfs_pwrite(f, "x", 1, 0), 1, "io0 still held: %s", sfs_last_error());
	sfs_close(f);
	fsfix_signal(&fx, 2, SIGCONT);
	/* io1 may still act on the freeze queued while it was stopped: that
	 * one lapses by itself within the barrier's 3 s (polled, bounded) */
	cr_assert_eq(sfs_open(fs, on[1], SFS_O_RDWR, 0, &f), 0);
	ssize_t w = -1;
	for (int tries = 0; tries < 8 && w != 1; tries++)
		w = sfs_pwrite(f, "y", 1, 0);
	cr_assert_eq(w, 1, "io1 never released its freeze: %s", sfs_last_error());
	sfs_close(f);
	cr_assert_eq(count_snapshots(), 0);
	/* io1's write may have been served before it read the stale freeze
	 * (another connection): until that lapses, a new snapshot is refused
	 * with "already frozen for snapshot 1", then it is taken (bounded) */
	int rc = -1;
	for (int tries = 0; tries < 10 && rc != 0; tries++) {
		rc = sfs_snapshot_create(fs, "s", NULL, NULL);
		if (rc != 0) {
			cr_assert(strstr(sfs_last_error(), "already frozen for snapshot 1"), "%s",
				  sfs_last_error());
			usleep(500 * 1000);
		}
	}
	cr_assert_eq(rc, 0, "%s", sfs_last_error());
	assert_fsck_clean();
	finish();
}
