/*
 * snap_cache: the scheduler's arrays of hosts and guests, kept between
 * planning rounds and patched by moves and host changes (snapshot.c), are
 * the same as a snapshot read afresh from the database; a change the cache
 * was not told about is read again, not missed.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "snapshot.h"

#define GIB (1ull << 30)

static char path[128];
static char err[512];
static struct db *db;

static void remove_files(void)
{
	const char *suffix[] = { "", "-wal", "-shm" };
	char p[160];
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
		unlink(p);
	}
}

static void setup(void)
{
	snprintf(path, sizeof(path), "/tmp/test_snap_cache_%d.db", (int)getpid());
	remove_files();
	cr_assert_eq(db_open(path, &db, err, sizeof(err)), 0, "%s", err);
	for (int i = 0; i < 4; i++) {
		struct db_host h = { .enabled = 1, .memory_bytes = 64 * GIB };
		snprintf(h.name, sizeof(h.name), "n%d", i);
		snprintf(h.uri, sizeof(h.uri), "sim:///n%d", i);
		cr_assert_eq(db_host_add(db, &h, 1000), 0);
	}
	for (int i = 0; i < 12; i++) {
		struct db_guest g = { .memory_bytes = (uint64_t)(1 + i % 3) * GIB, .rank = -1 };
		snprintf(g.name, sizeof(g.name), "g%02d", i);
		snprintf(g.host, sizeof(g.host), "n%d", i % 4);
		cr_assert_eq(db_guest_add(db, &g, 2000), 0);
	}
	/* a due queued row: a snapshot reads the cluster only when one is there */
	struct db_migration m = { .state = DB_MIG_QUEUED, .priority = 3, .queued_ns = 10 };
	snprintf(m.guest, sizeof(m.guest), "g00");
	snprintf(m.src, sizeof(m.src), "n0");
	snprintf(m.reason, sizeof(m.reason), "test");
	cr_assert_eq(db_mig_add(db, &m), 0);
}

static void teardown(void)
{
	db_close(db);
	remove_files();
}

TestSuite(snap_cache, .init = setup, .fini = teardown);

/* Both snapshots hold the same hosts and guests, field by field. */
static void assert_same(const struct snapshot *a, const struct snapshot *b)
{
	cr_assert_eq(a->n_hosts, b->n_hosts);
	cr_assert_eq(a->n_guests, b->n_guests);
	for (size_t i = 0; i < a->n_hosts; i++) {
		cr_assert_str_eq(a->sh[i].name, b->sh[i].name);
		cr_assert_eq(a->sh[i].mem_used_bytes, b->sh[i].mem_used_bytes, "host %s",
			     a->sh[i].name);
		cr_assert_eq(a->sh[i].mem_capacity_bytes, b->sh[i].mem_capacity_bytes);
		cr_assert_eq(a->sh[i].disabled, b->sh[i].disabled, "host %s", a->sh[i].name);
		cr_assert_eq(a->sh[i].degraded, b->sh[i].degraded);
	}
	for (size_t i = 0; i < a->n_guests; i++) {
		cr_assert_str_eq(a->sg[i].name, b->sg[i].name);
		cr_assert_eq(a->sg[i].host, b->sg[i].host, "guest %s", a->sg[i].name);
		cr_assert_eq(a->sg[i].mem_bytes, b->sg[i].mem_bytes);
	}
}

/* Move guest to host in its own transaction, as the executor does. */
static void move(struct snap_cache *c, const char *guest, const char *host, int tell)
{
	uint64_t hosts_gen, before, after;
	db_generations(db, &hosts_gen, &before);
	cr_assert_eq(db_begin(db), 0);
	cr_assert_eq(db_guest_set_host(db, guest, host), 0);
	cr_assert_eq(db_commit(db), 0);
	db_generations(db, &hosts_gen, &after);
	if (tell)
		snap_cache_moved(c, before, after, guest, host);
}

static void compare_with_fresh(struct snap_cache *c)
{
	struct snap_cache *fresh;
	struct snapshot kept, read;
	cr_assert_eq(snap_cache_new(&fresh), 0);
	cr_assert_eq(snapshot_take(c, db, 1000, 4096, &kept), 0);
	cr_assert_eq(snapshot_take(fresh, db, 1000, 4096, &read), 0);
	cr_assert_eq(kept.n_queue, 1);
	assert_same(&kept, &read);
	snapshot_release(&kept);
	snapshot_release(&read);
	snap_cache_free(fresh);
}

Test(snap_cache, moves_and_host_changes_patch_the_kept_arrays)
{
	struct snap_cache *c;
	struct snapshot s;
	cr_assert_eq(snap_cache_new(&c), 0);
	cr_assert_eq(snapshot_take(c, db, 1000, 4096, &s), 0);
	cr_assert_eq(s.n_hosts, 4);
	cr_assert_eq(s.n_guests, 12);
	cr_assert_eq(s.sh[0].mem_used_bytes, 1 * GIB + 2 * GIB + 3 * GIB, "g00, g04, g08 on n0");
	snapshot_release(&s);

	move(c, "g00", "n3", 1);
	move(c, "g04", "n3", 1);
	move(c, "g00", "n1", 1);
	compare_with_fresh(c);

	uint64_t before, after, guests_gen;
	struct db_host h;
	db_generations(db, &before, &guests_gen);
	cr_assert_eq(db_host_set_enabled(db, "n2", 0), 0);
	db_generations(db, &after, &guests_gen);
	cr_assert_eq(db_host_get(db, "n2", &h), 0);
	snap_cache_host_changed(c, before, after, &h);
	compare_with_fresh(c);
	snap_cache_free(c);
}

Test(snap_cache, a_change_it_was_not_told_of_is_read_again)
{
	struct snap_cache *c;
	struct snapshot s;
	cr_assert_eq(snap_cache_new(&c), 0);
	cr_assert_eq(snapshot_take(c, db, 1000, 4096, &s), 0);
	snapshot_release(&s);
	move(c, "g01", "n0", 0);    /* not told */
	move(c, "g02", "n0", 1);    /* told, but the cache is a move behind */
	cr_assert_eq(db_host_set_enabled(db, "n3", 0), 0); /* not told either */
	compare_with_fresh(c);
	cr_assert_eq(snapshot_take(c, db, 1000, 4096, &s), 0);
	cr_assert(s.sh[3].disabled);
	cr_assert_eq(s.sg[1].host, 0, "g01 on n0");
	snapshot_release(&s);
	snap_cache_free(c);
}
