/*
 * snapshot-bench: what an sfs snapshot costs, with its baselines measured
 * in the same run (issue 14's goals):
 *  1. create time for N files (default 10,000) on 4 I/O servers at two
 *     totals (256 MiB and 4 GiB): it must not grow with the bytes;
 *  2. rollback time after changing, creating and removing 1% of the files;
 *  3. write bandwidth (4 writers, 1 MiB transfers, a file each: sfs-ior's
 *     file-per-process pattern, in threads) of the first and second pass
 *     over files a snapshot pins, as ratios to an overwrite pass with no
 *     snapshot.
 * It starts its own sfsd (--all) on loopback with the data under --dir
 * (default /dev/shm when it has room, else /tmp) and removes it at the end.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sfs.h"
#include "sfs_conf.h"

#define MIB (1024.0 * 1024.0)
#define XFER_BYTES (1u << 20)
#define WRITERS 4
#define CREATE_REPEATS 3

struct opts {
	const char *sfsd;
	const char *dir;
	unsigned files, n_io, port;
	uint64_t small_bytes, large_bytes, pass_bytes;
	int passes_only;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "snapshot-bench: %s: %s (%s)\n", what, sfs_strerror(rc), sfs_last_error());
	exit(1);
}

/* --- a file system of our own ------------------------------------------- */

struct fsrun {
	char dir[512], conf[600];
	pid_t pid;
	struct sfs *fs;
};

static void fs_start(const struct opts *o, struct fsrun *r)
{
	snprintf(r->dir, sizeof(r->dir), "%s/snapshot-bench-XXXXXX", o->dir);
	if (!mkdtemp(r->dir)) {
		perror(r->dir);
		exit(1);
	}
	snprintf(r->conf, sizeof(r->conf), "%s/sfs.conf", r->dir);
	FILE *f = fopen(r->conf, "w");
	if (!f || sfs_conf_write_loopback(f, o->n_io, r->dir, o->port) < 0) {
		fprintf(stderr, "snapshot-bench: cannot write %s\n", r->conf);
		exit(1);
	}
	fclose(f);
	r->pid = fork();
	if (r->pid == 0) {
		char log[700];
		snprintf(log, sizeof(log), "%s/sfsd.log", r->dir);
		if (!freopen(log, "w", stderr))
			_exit(127);
		/* SNAPBENCH_DEBUG: sfsd logs every request and the barrier's phases */
		execl(o->sfsd, o->sfsd, "-c", r->conf, "--all",
		      getenv("SNAPBENCH_DEBUG") ? "-d" : (char *)NULL, (char *)NULL);
		_exit(127);
	}
	static const char *const overrides[] = { "agent_socket=off", NULL };
	int rc = sfs_connect(r->conf, overrides, &r->fs);
	if (rc < 0)
		die("connect", rc);
	for (int i = 0; i < 200; i++) {
		struct sfs_ping_result p[1 + 64];
		int ok = sfs_ping(r->fs, p, 1 + o->n_io) == 0;
		for (unsigned k = 0; ok && k <= o->n_io; k++)
			ok = p[k].status == 0;
		if (ok)
			return;
		usleep(50000);
	}
	fprintf(stderr, "snapshot-bench: sfsd (%s) did not come up; see %s/sfsd.log\n", o->sfsd,
		r->dir);
	exit(1);
}

static void fs_stop(struct fsrun *r)
{
	char cmd[700];
	sfs_disconnect(r->fs);
	kill(r->pid, SIGTERM);
	waitpid(r->pid, NULL, 0);
	if (getenv("SNAPBENCH_DEBUG")) {
		snprintf(cmd, sizeof(cmd), "grep -h 'listed in' '%s/sfsd.log' >&2", r->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "snapshot-bench: no barrier lines in the log\n");
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "snapshot-bench: could not remove %s\n", r->dir);
}

static void write_file(struct sfs *fs, const char *path, uint64_t bytes, const uint8_t *buf)
{
	struct sfs_file *f;
	int rc = sfs_open(fs, path, SFS_O_WRONLY | SFS_O_CREAT | SFS_O_TRUNC, 0644, &f);
	if (rc < 0)
		die(path, rc);
	for (uint64_t off = 0; off < bytes; off += XFER_BYTES) {
		size_t n = bytes - off < XFER_BYTES ? (size_t)(bytes - off) : XFER_BYTES;
		ssize_t w = sfs_pwrite(f, buf, n, off);
		if (w < 0)
			die(path, (int)w);
	}
	sfs_close(f);
}

struct filler {
	struct sfs *fs;
	const struct opts *o;
	uint64_t per_file;
	unsigned first, step;
	const uint8_t *buf;
};

static void *fill_main(void *arg)
{
	struct filler *fl = arg;
	char path[64];
	for (unsigned i = fl->first; i < fl->o->files; i += fl->step) {
		snprintf(path, sizeof(path), "/tree/d%03u/f%05u", i % 100, i);
		write_file(fl->fs, path, fl->per_file, fl->buf);
	}
	return NULL;
}

/* N files totalling total_bytes in 100 directories, 4 threads. */
static void make_tree(struct fsrun *r, const struct opts *o, uint64_t total_bytes,
		      const uint8_t *buf)
{
	char path[64];
	sfs_mkdir(r->fs, "/tree", 0755);
	for (unsigned d = 0; d < 100; d++) {
		snprintf(path, sizeof(path), "/tree/d%03u", d);
		int rc = sfs_mkdir(r->fs, path, 0755);
		if (rc < 0 && rc != -EEXIST)
			die(path, rc);
	}
	struct filler fl[WRITERS];
	pthread_t th[WRITERS];
	for (unsigned t = 0; t < WRITERS; t++) {
		fl[t] = (struct filler){ r->fs, o, total_bytes / o->files, t, WRITERS, buf };
		pthread_create(&th[t], NULL, fill_main, &fl[t]);
	}
	for (unsigned t = 0; t < WRITERS; t++)
		pthread_join(th[t], NULL);
}

/* Median of CREATE_REPEATS snapshot creates of /tree, in ms. */
static double create_ms(struct fsrun *r)
{
	double t[CREATE_REPEATS];
	for (int i = 0; i < CREATE_REPEATS; i++) {
		char name[32];
		snprintf(name, sizeof(name), "bench%d", i);
		double t0 = now_s();
		int rc = sfs_snapshot_create(r->fs, name, "/tree", NULL);
		t[i] = (now_s() - t0) * 1000;
		if (getenv("SNAPBENCH_DEBUG"))
			fprintf(stderr, "  create %d: %.1f ms\n", i, t[i]);
		if (rc < 0)
			die("snapshot create", rc);
		if ((rc = sfs_snapshot_rm(r->fs, name)) < 0)
			die("snapshot rm", rc);
	}
	for (int i = 0; i < CREATE_REPEATS; i++)
		for (int j = i + 1; j < CREATE_REPEATS; j++)
			if (t[j] < t[i]) {
				double x = t[i];
				t[i] = t[j];
				t[j] = x;
			}
	return t[CREATE_REPEATS / 2];
}

/* Change, create and remove 1% of the files each; time the rollback. */
static void rollback_run(struct fsrun *r, const struct opts *o, uint64_t total_bytes,
			 const uint8_t *buf)
{
	char path[64];
	int rc = sfs_snapshot_create(r->fs, "rb", "/tree", NULL);
	if (rc < 0)
		die("snapshot create", rc);
	unsigned n = o->files / 100 ? o->files / 100 : 1;
	uint64_t per_file = total_bytes / o->files, changed = 0;
	for (unsigned i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/tree/d%03u/f%05u", i % 100, i);
		write_file(r->fs, path, per_file, buf);
		changed += per_file;
		snprintf(path, sizeof(path), "/tree/d%03u/f%05u", (n + i) % 100, n + i);
		sfs_unlink(r->fs, path);
		snprintf(path, sizeof(path), "/tree/d%03u/new%05u", i % 100, i);
		write_file(r->fs, path, per_file, buf);
	}
	double t0 = now_s();
	rc = sfs_snapshot_rollback(r->fs, "rb", SFS_ROLLBACK_FORCE);
	double ms = (now_s() - t0) * 1000;
	if (rc < 0)
		die("snapshot rollback", rc);
	printf("rollback of %u files after %u overwritten (%.1f MiB), %u created, %u removed: "
	       "%.1f ms\n", o->files, n, (double)changed / MIB, n, n, ms);
	sfs_snapshot_rm(r->fs, "rb");
}

/* --- write passes ---------------------------------------------------------- */

struct pass_writer {
	struct sfs *fs;
	unsigned id;
	uint64_t bytes;
	const uint8_t *buf;
};

static void *pass_main(void *arg)
{
	struct pass_writer *w = arg;
	char path[64];
	struct sfs_file *f;
	snprintf(path, sizeof(path), "/ior/file.%08u", w->id);
	int rc = sfs_open(w->fs, path, SFS_O_WRONLY | SFS_O_CREAT, 0644, &f);
	if (rc < 0)
		die(path, rc);
	for (uint64_t off = 0; off < w->bytes; off += XFER_BYTES) {
		ssize_t n = sfs_pwrite(f, w->buf, XFER_BYTES, off);
		if (n < 0)
			die(path, (int)n);
	}
	sfs_close(f);
	return NULL;
}

/* One write pass over the 4 files: MiB/s. */
static double write_pass(struct fsrun *r, const struct opts *o, const uint8_t *buf)
{
	struct pass_writer w[WRITERS];
	pthread_t th[WRITERS];
	double t0 = now_s();
	for (unsigned i = 0; i < WRITERS; i++) {
		w[i] = (struct pass_writer){ r->fs, i, o->pass_bytes / WRITERS, buf };
		pthread_create(&th[i], NULL, pass_main, &w[i]);
	}
	for (unsigned i = 0; i < WRITERS; i++)
		pthread_join(th[i], NULL);
	return (double)o->pass_bytes / MIB / (now_s() - t0);
}

static double median3(double *v)
{
	for (int i = 0; i < 3; i++)
		for (int j = i + 1; j < 3; j++)
			if (v[j] < v[i]) {
				double x = v[i];
				v[i] = v[j];
				v[j] = x;
			}
	return v[1];
}

/* Three rounds of: an overwrite pass with no snapshot, a snapshot, the
 * first and second passes after it, the snapshot removed. Interleaved so
 * that a machine whose load changes treats all three alike; medians. */
static void passes_run(struct fsrun *r, const struct opts *o, const uint8_t *buf)
{
	double base[3], first[3], second[3];
	sfs_mkdir(r->fs, "/ior", 0755);
	write_pass(r, o, buf); /* creates the files */
	for (int round = 0; round < 3; round++) {
		base[round] = write_pass(r, o, buf);
		int rc = sfs_snapshot_create(r->fs, "ior", "/ior", NULL);
		if (rc < 0)
			die("snapshot create", rc);
		first[round] = write_pass(r, o, buf);
		second[round] = write_pass(r, o, buf);
		if ((rc = sfs_snapshot_rm(r->fs, "ior")) < 0)
			die("snapshot rm", rc);
	}
	double b = median3(base), f = median3(first), s2 = median3(second);
	printf("write passes, %d writers x %.0f MiB, 1 MiB transfers, file per writer "
	       "(medians of 3 rounds):\n", WRITERS, (double)o->pass_bytes / WRITERS / MIB);
	printf("  no snapshot (overwrite):      %8.1f MiB/s\n", b);
	printf("  first pass after a snapshot:  %8.1f MiB/s  ratio %.2f\n", f, f / b);
	printf("  second pass after a snapshot: %8.1f MiB/s  ratio %.2f (goal: within 10%%)\n",
	       s2, s2 / b);
}

/* --- main -------------------------------------------------------------------- */

static uint64_t parse_mib(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end || v == 0) {
		fprintf(stderr, "snapshot-bench: \"%s\": expected a number of MiB above 0\n", s);
		exit(2);
	}
	return (uint64_t)v << 20;
}

static const char *default_dir(uint64_t need_bytes)
{
	struct statvfs v;
	if (statvfs("/dev/shm", &v) == 0 && (uint64_t)v.f_bavail * v.f_frsize > need_bytes)
		return "/dev/shm";
	return "/tmp";
}

int main(int argc, char **argv)
{
	struct opts o = { .sfsd = getenv("SFSD"), .files = 10000, .n_io = 4, .port = 24600,
			  .small_bytes = 256ull << 20, .large_bytes = 4096ull << 20,
			  .pass_bytes = 1024ull << 20 };
	static const struct option longopts[] = {
		{ "sfsd", required_argument, NULL, 's' }, { "dir", required_argument, NULL, 'd' },
		{ "files", required_argument, NULL, 'n' }, { "small-mib", required_argument, NULL, 'a' },
		{ "large-mib", required_argument, NULL, 'b' }, { "pass-mib", required_argument, NULL, 'p' },
		{ "port", required_argument, NULL, 'P' }, { "quick", no_argument, NULL, 'q' },
		{ "passes-only", no_argument, NULL, 'W' }, { "help", no_argument, NULL, 'h' },
		{ 0 } };
	int opt;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': o.sfsd = optarg; break;
		case 'd': o.dir = optarg; break;
		case 'n': o.files = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'a': o.small_bytes = parse_mib(optarg); break;
		case 'b': o.large_bytes = parse_mib(optarg); break;
		case 'p': o.pass_bytes = parse_mib(optarg); break;
		case 'P': o.port = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'W': o.passes_only = 1; break;
		case 'q':
			o.files = 1000;
			o.small_bytes = 32ull << 20;
			o.large_bytes = 512ull << 20;
			o.pass_bytes = 256ull << 20;
			break;
		default:
			printf("usage: snapshot-bench [--sfsd PATH] [--dir DIR] [--files N]\n"
			       "       [--small-mib M] [--large-mib M] [--pass-mib M] [--port P]"
			       " [--quick]\n"
			       "       [--passes-only]\n"
			       "Defaults: 10000 files at 256 and 4096 MiB, 1024 MiB write passes,\n"
			       "4 I/O servers, data in /dev/shm if it has room (else /tmp), sfsd\n"
			       "from $SFSD.\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	if (!o.sfsd || o.files == 0) {
		fprintf(stderr, "snapshot-bench: give --sfsd PATH (or $SFSD) and --files above 0\n");
		return 2;
	}
	if (!o.dir)
		o.dir = default_dir(o.large_bytes + o.large_bytes / 4 + 2 * o.pass_bytes);
	uint8_t *buf = malloc(XFER_BYTES);
	for (size_t i = 0; i < XFER_BYTES; i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 13);
	printf("snapshot-bench: %u files, %u I/O servers, data under %s\n", o.files, o.n_io, o.dir);

	double ms[2] = { 1, 1 };
	uint64_t totals[2] = { o.small_bytes, o.large_bytes };
	for (int k = 0; k < 2 && !o.passes_only; k++) {
		struct fsrun r;
		fs_start(&o, &r);
		double t0 = now_s();
		make_tree(&r, &o, totals[k], buf);
		double fill_s = now_s() - t0;
		ms[k] = create_ms(&r);
		printf("create, %u files, %6.0f MiB: %8.1f ms (median of %d; the tree took %.1f s "
		       "to write)\n", o.files, (double)totals[k] / MIB, ms[k], CREATE_REPEATS, fill_s);
		if (k == 1)
			rollback_run(&r, &o, totals[k], buf);
		fs_stop(&r);
	}
	if (!o.passes_only)
		printf("create time ratio, %.0f MiB / %.0f MiB of the same files: %.2f (goal: within 1.5)\n",
	       (double)o.large_bytes / MIB, (double)o.small_bytes / MIB, ms[1] / ms[0]);

	struct fsrun r;
	fs_start(&o, &r);
	passes_run(&r, &o, buf);
	fs_stop(&r);
	free(buf);
	return 0;
}
