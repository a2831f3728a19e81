/*
 * libsfs against real sfsd processes on loopback: data integrity under
 * concurrency, the namespace, and the fault rules (a dead or silent I/O
 * server fails the call within the timeout; a killed metadata server
 * loses nothing that was fsync'd).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsfixture.h"
#include "sfs_proto.h"
#include "sfs.h"
#include "sfs_proto.h"

static struct fsfix fx;
static struct sfs *fs;

static void stop(void)
{
	sfs_disconnect(fs);
	fs = NULL;
	fsfix_stop(&fx);
}

/* End of a test body: servers stopped, no sanitizer reports. */
static void finish(void)
{
	sfs_disconnect(fs);
	fs = NULL;
	fsfix_finish(&fx);
}

static void start(unsigned n_io, const char *extra)
{
	fsfix_start(&fx, n_io, extra);
	int rc = sfs_connect(fx.conf, NULL, &fs);
	cr_assert_eq(rc, 0, "sfs_connect: %s", sfs_last_error());
}

static void fill_random(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
}

static uint64_t fnv1a(const uint8_t *p, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static uint64_t ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

TestSuite(fs, .fini = stop, .timeout = 240);

/* --- 256 MiB at random offsets and sizes from 4 threads ---------------- */

#define BIG (256u << 20)

struct piece {
	uint64_t off;
	uint32_t len;
};

struct writer {
	struct sfs_file *f;
	const uint8_t *ref;
	struct piece *pieces;
	size_t n;
	int rc;
};

static void *write_pieces(void *arg)
{
	struct writer *w = arg;
	for (size_t i = 0; i < w->n; i++) {
		ssize_t n = sfs_pwrite(w->f, w->ref + w->pieces[i].off, w->pieces[i].len,
				       w->pieces[i].off);
		if (n != (ssize_t)w->pieces[i].len) {
			w->rc = n < 0 ? (int)n : -EIO;
			return NULL;
		}
	}
	return NULL;
}

Test(fs, random_offsets_and_sizes_from_4_threads_read_back_identical)
{
	start(4, NULL);
	uint8_t *ref = malloc(BIG), *back = malloc(BIG);
	cr_assert(ref && back);
	fill_random(ref, BIG, 1);

	/* cut the file into random pieces (1 byte to 4 MiB) and deal them out
	 * to 4 threads in shuffled order */
	size_t cap = 4096, n = 0;
	struct piece *pieces = malloc(cap * sizeof(*pieces));
	srand(7);
	for (uint64_t off = 0; off < BIG;) {
		uint32_t len = (rand() % 4 == 0) ? (uint32_t)(rand() % 512 + 1)
						 : (uint32_t)(rand() % (4 << 20) + 1);
		if (off + len > BIG)
			len = (uint32_t)(BIG - off);
		if (n == cap)
			pieces = realloc(pieces, (cap *= 2) * sizeof(*pieces));
		pieces[n++] = (struct piece){ off, len };
		off += len;
	}
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)rand() % (i + 1);
		struct piece t = pieces[i];
		pieces[i] = pieces[j];
		pieces[j] = t;
	}
	struct sfs_file *f;
	cr_assert_eq(sfs_open(fs, "/big", SFS_O_RDWR | SFS_O_CREAT, 0644, &f), 0, "%s",
		     sfs_last_error());
	struct writer w[4];
	pthread_t th[4];
	for (int t = 0; t < 4; t++) {
		size_t lo = n * (size_t)t / 4, hi = n * (size_t)(t + 1) / 4;
		w[t] = (struct writer){ f, ref, pieces + lo, hi - lo, 0 };
		pthread_create(&th[t], NULL, write_pieces, &w[t]);
	}
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		cr_assert_eq(w[t].rc, 0, "writer %d: %s", t, strerror(-w[t].rc));
	}
	cr_assert_eq(sfs_fsync(f), 0, "%s", sfs_last_error());

	struct sfs_stat st;
	cr_assert_eq(sfs_fstat(f, &st), 0);
	cr_assert_eq(st.size_bytes, BIG);

	/* read back in random-sized reads */
	memset(back, 0xAA, BIG);
	for (uint64_t off = 0; off < BIG;) {
		size_t len = (size_t)(rand() % (3 << 20) + 1);
		if (off + len > BIG)
			len = BIG - off;
		ssize_t got = sfs_pread(f, back + off, len, off);
		cr_assert_eq(got, (ssize_t)len, "pread at %lu: %zd %s", (unsigned long)off, got,
			     sfs_last_error());
		off += len;
	}
	cr_assert_eq(fnv1a(back, BIG), fnv1a(ref, BIG), "checksum of the data read back differs");
	cr_assert_eq(memcmp(back, ref, BIG), 0);
	/* reads past the end are short, then empty */
	cr_assert_eq(sfs_pread(f, back, 4096, BIG - 100), 100);
	cr_assert_eq(sfs_pread(f, back, 4096, BIG + 5), 0);
	cr_assert_eq(sfs_close(f), 0);
	free(pieces);
	free(ref);
	free(back);
	finish();
}

/* --- disjoint regions of one shared file, interleaved like MPI-IO ------- */

struct strided {
	struct sfs *fs;
	int rank;
	size_t block;
	int blocks;
	int rc;
};

static void *strided_writer(void *arg)
{
	struct strided *s = arg;
	struct sfs_file *f;
	uint8_t *buf = malloc(s->block);
	s->rc = sfs_open(s->fs, "/shared", SFS_O_RDWR | SFS_O_CREAT, 0644, &f);
	if (s->rc < 0)
		goto out;
	for (int b = 0; b < s->blocks; b++) {
		uint64_t off = ((uint64_t)b * 4 + (uint64_t)s->rank) * s->block;
		fill_random(buf, s->block, off + 1);
		ssize_t n = sfs_pwrite(f, buf, s->block, off);
		if (n != (ssize_t)s->block) {
			s->rc = n < 0 ? (int)n : -EIO;
			break;
		}
	}
	sfs_close(f);
out:
	free(buf);
	return NULL;
}

Test(fs, concurrent_writers_to_disjoint_regions_of_a_shared_file)
{
	start(3, NULL);
	/* a block size that is not a multiple of the strip size, so writers
	 * share strips and servers */
	const size_t block = 100000;
	const int blocks = 40;
	struct strided s[4];
	pthread_t th[4];
	for (int r = 0; r < 4; r++) {
		s[r] = (struct strided){ fs, r, block, blocks, 0 };
		pthread_create(&th[r], NULL, strided_writer, &s[r]);
	}
	for (int r = 0; r < 4; r++) {
		pthread_join(th[r], NULL);
		cr_assert_eq(s[r].rc, 0, "rank %d: %s", r, strerror(-s[r].rc));
	}
	struct sfs_file *f;
	cr_assert_eq(sfs_open(fs, "/shared", SFS_O_RDONLY, 0, &f), 0);
	uint8_t *buf = malloc(block), *ref = malloc(block);
	for (uint64_t b = 0; b < (uint64_t)blocks * 4; b++) {
		fill_random(ref, block, b * block + 1);
		cr_assert_eq(sfs_pread(f, buf, block, b * block), (ssize_t)block);
		cr_assert_eq(memcmp(buf, ref, block), 0, "block %lu differs", (unsigned long)b);
	}
	sfs_close(f);
	free(buf);
	free(ref);
	finish();
}

/* --- holes, truncate, sizes -------------------------------------------- */

Test(fs, holes_read_as_zeros_and_truncate_sets_the_size)
{
	start(4, NULL);
	struct sfs_file *f;
	uint8_t buf[300000];
	cr_assert_eq(sfs_open(fs, "/sparse", SFS_O_RDWR | SFS_O_CREAT | SFS_O_EXCL, 0600, &f), 0);
	cr_assert_eq(sfs_pwrite(f, "end", 3, 1000000), 3);
	struct sfs_stat st;
	cr_assert_eq(sfs_fstat(f, &st), 0);
	cr_assert_eq(st.size_bytes, 1000003);
	memset(buf, 1, sizeof(buf));
	cr_assert_eq(sfs_pread(f, buf, sizeof(buf), 800000), 200003);
	for (size_t i = 0; i < 200000; i++)
		cr_assert_eq(buf[i], 0, "hole byte %zu is %u", i, buf[i]);
	cr_assert_eq(memcmp(buf + 200000, "end", 3), 0);

	cr_assert_eq(sfs_ftruncate(f, 70000), 0);
	cr_assert_eq(sfs_fstat(f, &st), 0);
	cr_assert_eq(st.size_bytes, 70000);
	cr_assert_eq(sfs_pread(f, buf, sizeof(buf), 0), 70000);
	cr_assert_eq(sfs_truncate(fs, "/sparse", 5 << 20), 0);
	cr_assert_eq(sfs_stat(fs, "/sparse", &st), 0);
	cr_assert_eq(st.size_bytes, 5u << 20);
	cr_assert_eq(sfs_close(f), 0);

	/* O_TRUNC empties, O_EXCL refuses an existing file */
	cr_assert_eq(sfs_open(fs, "/sparse", SFS_O_RDWR | SFS_O_TRUNC, 0, &f), 0);
	cr_assert_eq(sfs_fstat(f, &st), 0);
	cr_assert_eq(st.size_bytes, 0);
	sfs_close(f);
	cr_assert_eq(sfs_open(fs, "/sparse", SFS_O_RDWR | SFS_O_CREAT | SFS_O_EXCL, 0600, &f),
		     -EEXIST);
	finish();
}

/* --- the namespace ------------------------------------------------------ */

static int collect(void *arg, const char *name, int type, uint64_t fid)
{
	char *out = arg;
	strcat(out, name);
	strcat(out, type == SFS_STAT_DIR ? "/ " : " ");
	return 0;
}

Test(fs, namespace_calls_and_their_errors)
{
	start(4, NULL);
	struct sfs_file *f;
	struct sfs_stat st;
	char names[8192] = "";

	cr_assert_eq(sfs_mkdir(fs, "/d", 0755), 0, "%s", sfs_last_error());
	cr_assert_eq(sfs_mkdir(fs, "/d", 0755), -EEXIST);
	cr_assert_eq(sfs_mkdir(fs, "/missing/x", 0755), -ENOENT);
	cr_assert(strstr(sfs_last_error(), "/missing/x"), "message names the path: %s",
		  sfs_last_error());
	cr_assert_eq(sfs_open(fs, "/d/b", SFS_O_WRONLY | SFS_O_CREAT, 0644, &f), 0);
	sfs_close(f);
	cr_assert_eq(sfs_open(fs, "/d/a", SFS_O_WRONLY | SFS_O_CREAT, 0644, &f), 0);
	sfs_close(f);
	cr_assert_eq(sfs_mkdir(fs, "/d/sub", 0755), 0);
	cr_assert_eq(sfs_readdir(fs, "/d", collect, names), 0);
	cr_assert_str_eq(names, "a b sub/ ");

	cr_assert_eq(sfs_open(fs, "/d/nope", SFS_O_RDONLY, 0, &f), -ENOENT);
	cr_assert_eq(sfs_open(fs, "/d", SFS_O_RDONLY, 0, &f), -EISDIR);
	cr_assert_eq(sfs_mkdir(fs, "/d/a/x", 0755), -ENOTDIR);
	cr_assert_eq(sfs_rmdir(fs, "/d"), -ENOTEMPTY);
	cr_assert_eq(sfs_rmdir(fs, "/d/a"), -ENOTDIR);
	cr_assert_eq(sfs_unlink(fs, "/d/sub"), -EISDIR);
	cr_assert_eq(sfs_unlink(fs, "/d/a"), 0);
	cr_assert_eq(sfs_stat(fs, "/d/a", &st), -ENOENT);
	cr_assert_eq(sfs_stat(fs, "/d/../etc", &st), -EINVAL);
	cr_assert_eq(sfs_stat(fs, "relative", &st), -EINVAL);
	cr_assert_eq(sfs_rmdir(fs, "/d/sub"), 0);
	cr_assert_eq(sfs_stat(fs, "/d", &st), 0);
	cr_assert_eq(st.type, SFS_STAT_DIR);

	/* many entries come back complete and in order across READDIR pages */
	for (int i = 0; i < 300; i++) {
		char p[64];
		snprintf(p, sizeof(p), "/d/f%03d", i);
		cr_assert_eq(sfs_open(fs, p, SFS_O_WRONLY | SFS_O_CREAT, 0644, &f), 0);
		sfs_close(f);
	}
	names[0] = '\0';
	cr_assert_eq(sfs_readdir(fs, "/d", collect, names), 0);
	cr_assert(strncmp(names, "b f000 f001 ", 12) == 0, "%.40s", names);
	cr_assert(strstr(names, "f299 "));
	cr_assert_eq(strlen(names), strlen("b ") + 300 * strlen("f000 "));
	finish();
}

Test(fs, setstripe_is_inherited_by_new_files_and_subdirs)
{
	start(4, NULL);
	struct sfs_file *f;
	struct sfs_stat st;
	cr_assert_eq(sfs_mkdir(fs, "/s", 0755), 0);
	cr_assert_eq(sfs_setstripe(fs, "/s", 1 << 20, 2), 0, "%s", sfs_last_error());
	cr_assert_eq(sfs_setstripe(fs, "/s", 1000, 2), -EINVAL);
	cr_assert_eq(sfs_setstripe(fs, "/s", 65536, 9), -EINVAL);
	cr_assert_eq(sfs_mkdir(fs, "/s/t", 0755), 0);
	cr_assert_eq(sfs_open(fs, "/s/t/file", SFS_O_RDWR | SFS_O_CREAT, 0644, &f), 0);
	cr_assert_eq(sfs_fstat(f, &st), 0);
	cr_assert_eq(st.strip_size, 1u << 20);
	cr_assert_eq(st.stripe_count, 2);
	cr_assert_neq(st.servers[0], st.servers[1]);
	sfs_close(f);
	/* the default elsewhere: 64 KiB over all 4 servers, each once */
	cr_assert_eq(sfs_open(fs, "/plain", SFS_O_RDWR | SFS_O_CREAT, 0644, &f), 0);
	cr_assert_eq(sfs_fstat(f, &st), 0);
	cr_assert_eq(st.strip_size, 65536);
	cr_assert_eq(st.stripe_count, 4);
	unsigned seen = 0;
	for (unsigned i = 0; i < 4; i++)
		seen |= 1u << st.servers[i];
	cr_assert_eq(seen, 0xfu);
	sfs_close(f);
	finish();
}

Test(fs, statfs_and_ping_report_every_server)
{
	start(2, NULL);
	struct sfs_server_usage use[3];
	struct sfs_ping_result ping[3];
	cr_assert_eq(sfs_server_count(fs), 3);
	cr_assert_eq(sfs_statfs(fs, use, 3), 0);
	cr_assert_eq(sfs_ping(fs, ping, 3), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(use[i].status, 0, "%s", use[i].name);
		cr_assert_eq(ping[i].status, 0, "%s", ping[i].name);
		cr_assert_eq(ping[i].version, SFS_PROTO_VERSION);
	}
	cr_assert(use[0].is_meta && !use[1].is_meta);
	cr_assert_gt(use[1].total_bytes, 0);
	/* one server down: reported, not fatal */
	fsfix_signal(&fx, 2, SIGKILL);
	cr_assert_eq(sfs_ping(fs, ping, 3), 0);
	cr_assert_eq(ping[1].status, 0);
	cr_assert_lt(ping[2].status, 0);
	finish();
}

/* --- faults -------------------------------------------------------------- */

struct bg_writer {
	struct sfs *fs;
	volatile int stop;
	int rc;
	uint64_t failed_at_ms;
	uint64_t bytes;
};

static void *write_until_error(void *arg)
{
	struct bg_writer *w = arg;
	struct sfs_file *f;
	size_t len = 8 << 20;
	uint8_t *buf = malloc(len);
	fill_random(buf, len, 3);
	w->rc = sfs_open(w->fs, "/victim", SFS_O_RDWR | SFS_O_CREAT, 0644, &f);
	if (w->rc < 0)
		goto out;
	for (uint64_t off = 0; !w->stop; off = (off + len) % (512u << 20)) {
		ssize_t n = sfs_pwrite(f, buf, len, off);
		if (n < 0) {
			w->rc = (int)n;
			w->failed_at_ms = ms_now();
			break;
		}
		w->bytes += (uint64_t)n;
	}
	sfs_close(f);
out:
	free(buf);
	return NULL;
}

static void io_server_fault(int sig, int expect_timeout)
{
	start(3, "timeout_ms = 2000\n");
	struct bg_writer w = { .fs = fs };
	pthread_t th;
	pthread_create(&th, NULL, write_until_error, &w);
	for (int i = 0; i < 500 && w.bytes < (64u << 20) && !w.rc; i++)
		usleep(10000);
	cr_assert_eq(w.rc, 0, "writes failed before the fault: %s", strerror(-w.rc));
	cr_assert_geq(w.bytes, 64u << 20, "writes did not get going");
	uint64_t fault_ms = ms_now();
	fsfix_signal(&fx, 2, sig);
	/* bounded wait: the writer must fail by itself within the timeout */
	for (int i = 0; i < 1000 && !w.rc; i++)
		usleep(10000);
	w.stop = 1;
	if (sig == SIGSTOP)
		kill(fx.pids[2], SIGCONT);
	pthread_join(th, NULL);
	cr_assert_lt(w.rc, 0, "the write kept succeeding after the fault");
	if (expect_timeout)
		cr_assert_eq(w.rc, -ETIMEDOUT, "got %s", strerror(-w.rc));
	else
		cr_assert(w.rc == -EIO || w.rc == -ETIMEDOUT, "got %s", strerror(-w.rc));
	cr_assert_lt(w.failed_at_ms - fault_ms, 2000 + 1500,
		     "error came %lu ms after the fault; timeout is 2000 ms",
		     (unsigned long)(w.failed_at_ms - fault_ms));
}

Test(fs, io_server_killed_mid_write_fails_the_write_within_the_timeout)
{
	io_server_fault(SIGKILL, 0);
	finish();
}

Test(fs, io_server_that_stops_answering_times_out)
{
	io_server_fault(SIGSTOP, 1);
	finish();
}

struct creator {
	struct sfs *fs;
	volatile int stop;
	int created;
};

static void *create_until_stopped(void *arg)
{
	struct creator *c = arg;
	for (int i = 0; !c->stop && i < 100000; i++) {
		char p[64];
		struct sfs_file *f;
		snprintf(p, sizeof(p), "/churn/f%06d", i);
		if (sfs_open(c->fs, p, SFS_O_RDWR | SFS_O_CREAT, 0644, &f) == 0) {
			c->created++;
			sfs_close(f);
		}
	}
	return NULL;
}

static int count_and_check(void *arg, const char *name, int type, uint64_t fid)
{
	struct sfs *s = ((void **)arg)[0];
	int *n = ((void **)arg)[1];
	char p[300];
	struct sfs_stat st;
	snprintf(p, sizeof(p), "/churn/%s", name);
	/* a visible file is whole: its datafiles answer on every server */
	int rc = sfs_stat(s, p, &st);
	cr_assert_eq(rc, 0, "half-made file %s: %s", p, sfs_last_error());
	(*n)++;
	return 0;
}

Test(fs, metadata_server_kill9_keeps_fsynced_files_and_shows_no_half_made_ones)
{
	start(3, "timeout_ms = 3000\n");
	enum { N = 20 };
	uint8_t *buf = malloc(1 << 20), *back = malloc(1 << 20);
	for (int i = 0; i < N; i++) {
		char p[64];
		struct sfs_file *f;
		snprintf(p, sizeof(p), "/keep%02d", i);
		cr_assert_eq(sfs_open(fs, p, SFS_O_RDWR | SFS_O_CREAT, 0644, &f), 0);
		fill_random(buf, 1 << 20, (uint64_t)i + 100);
		cr_assert_eq(sfs_pwrite(f, buf, (size_t)(1 << 20) - (size_t)i, 0),
			     (1 << 20) - i);
		cr_assert_eq(sfs_fsync(f), 0);
		sfs_close(f);
	}
	cr_assert_eq(sfs_mkdir(fs, "/churn", 0755), 0);
	struct creator c = { .fs = fs };
	pthread_t th;
	pthread_create(&th, NULL, create_until_stopped, &c);
	for (int i = 0; i < 500 && c.created < 20; i++)
		usleep(10000);
	fsfix_signal(&fx, 0, SIGKILL);
	usleep(100000);
	c.stop = 1;
	pthread_join(th, NULL);
	cr_assert_gt(c.created, 0);

	fsfix_start_server(&fx, 0);
	for (int i = 0; i < N; i++) {
		char p[64];
		struct sfs_file *f;
		snprintf(p, sizeof(p), "/keep%02d", i);
		int rc = sfs_open(fs, p, SFS_O_RDONLY, 0, &f);
		cr_assert_eq(rc, 0, "%s after restart: %s", p, sfs_last_error());
		fill_random(buf, 1 << 20, (uint64_t)i + 100);
		cr_assert_eq(sfs_pread(f, back, 1 << 20, 0), (1 << 20) - i);
		cr_assert_eq(memcmp(buf, back, (size_t)(1 << 20) - (size_t)i), 0, "%s differs", p);
		sfs_close(f);
	}
	int seen = 0;
	void *arg[2] = { fs, &seen };
	cr_assert_eq(sfs_readdir(fs, "/churn", count_and_check, arg), 0);
	cr_assert_geq(seen, c.created, "committed creates lost: %d of %d", seen, c.created);
	free(buf);
	free(back);
	finish();
}

Test(fs, sigterm_stops_every_server_cleanly)
{
	start(2, NULL);
	struct sfs_file *f;
	cr_assert_eq(sfs_open(fs, "/x", SFS_O_RDWR | SFS_O_CREAT, 0644, &f), 0);
	cr_assert_eq(sfs_pwrite(f, "data", 4, 0), 4);
	sfs_close(f);
	for (unsigned i = 0; i <= 2; i++) {
		int status = fsfix_signal(&fx, i, SIGTERM);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "server %u: status 0x%x", i, status);
	}
	finish();
}

Test(fs, a_removed_files_id_is_never_reused_after_a_restart)
{
	start(2, NULL);
	struct sfs_file *f;
	struct sfs_stat st;
	cr_assert_eq(sfs_open(fs, "/old", SFS_O_RDWR | SFS_O_CREAT, 0644, &f), 0);
	cr_assert_eq(sfs_fstat(f, &st), 0);
	uint64_t old_fid = st.fid;
	sfs_close(f);
	cr_assert_eq(sfs_unlink(fs, "/old"), 0);
	/* the newest file is gone: a restarted server must not hand its fid out again */
	fsfix_signal(&fx, 0, SIGKILL);
	fsfix_start_server(&fx, 0);
	cr_assert_eq(sfs_open(fs, "/new", SFS_O_RDWR | SFS_O_CREAT, 0644, &f), 0, "%s",
		     sfs_last_error());
	cr_assert_eq(sfs_fstat(f, &st), 0);
	cr_assert_gt(st.fid, old_fid, "fid %lu reused", (unsigned long)st.fid);
	sfs_close(f);
	finish();
}
