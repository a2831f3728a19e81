/*
 * ior_run: one IOR test, repetitions of write, check-write, read (with
 * check) and remove, timed and reduced the way IOR 3.3 does it.
 *
 * The timing rules are what make figures comparable with IOR's: a barrier
 * before every open; six time stamps per task (open, transfer and close,
 * start and end) on a clock corrected to rank 0's; MPI_Reduce of the starts
 * with MIN and the ends with MAX; bandwidth = bytes moved by all tasks over
 * (latest close end - earliest open start). fsync (-e) belongs to the
 * transfer time, as in IOR. Data checks (-W, -R) are counted after the
 * close, outside the timed region, and reported IOR's way, with the first
 * wrong words of each task traced back through the data pattern.
 *
 * Any failed I/O call ends the job (MPI_Abort) with the rank and the
 * backend's message: the other ranks are waiting in a collective and a
 * benchmark figure with a failed transfer in it would be wrong anyway.
 */
#include "ior.h"
#include "ior_pattern.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COMM MPI_COMM_WORLD
#define MAX_BAD_PER_TASK 4   /* wrong words each task reports */
#define MAX_BAD_TASKS_SHOWN 4 /* tasks whose wrong words rank 0 prints */

enum access { ACCESS_WRITE, ACCESS_WRITECHECK, ACCESS_READ, ACCESS_READCHECK };

struct run {
	const struct ior_params *p;
	struct ior_fs *fs;
	int rank;
	double clock_delta_s; /* this task's MPI_Wtime() minus rank 0's */
	uint32_t seed;        /* this repetition's time stamp signature */
	void *buf;            /* one transfer */
	struct ior_rep_result *results;
	uint64_t errors_total; /* wrong words over the whole test, all tasks */
	/* this phase's check, this task */
	uint64_t errors;
	unsigned n_bad;
	struct ior_bad_word bad[MAX_BAD_PER_TASK];
};

/* What each task sends rank 0 about its wrong words. */
struct bad_report {
	uint64_t errors;
	uint64_t n_bad;
	uint64_t task; /* whose data it read */
	struct ior_bad_word bad[MAX_BAD_PER_TASK];
};

static double now_s(const struct run *r) { return MPI_Wtime() - r->clock_delta_s; }

static void die(const struct run *r)
{
	fprintf(stderr, "sfs-ior: rank %d: %s\n", r->rank, r->fs->err);
	fflush(stderr);
	MPI_Abort(COMM, 1);
	exit(1);
}

/* IOR's TimeDeviation: how far apart the tasks' clocks are, and this
 * task's offset from rank 0 so all time stamps are on rank 0's clock. */
static double clock_skew(struct run *r)
{
	double t, t_min = 0, t_max = 0, t_root;
	MPI_Barrier(COMM);
	t = MPI_Wtime();
	MPI_Reduce(&t, &t_min, 1, MPI_DOUBLE, MPI_MIN, 0, COMM);
	MPI_Reduce(&t, &t_max, 1, MPI_DOUBLE, MPI_MAX, 0, COMM);
	t_root = t;
	MPI_Bcast(&t_root, 1, MPI_DOUBLE, 0, COMM);
	r->clock_delta_s = t - t_root;
	return t_max - t_min;
}

/* IOR's GetTestFileName: -F appends the task number as ".%08d". */
static void file_name(const struct ior_params *p, int task, char *buf, size_t len)
{
	if (p->file_per_proc)
		snprintf(buf, len, "%s.%08d", p->test_file, task);
	else
		snprintf(buf, len, "%s", p->test_file);
}

/* Where transfer i of segment seg of task's block goes: segments of
 * (block x tasks) in a shared file, segments of one block in its own. */
static uint64_t xfer_offset(const struct ior_params *p, int task, uint64_t seg, uint64_t i)
{
	uint64_t in_block = i * p->xfer_bytes;
	if (p->file_per_proc)
		return seg * p->block_bytes + in_block;
	return seg * p->block_bytes * (uint64_t)p->ntasks + (uint64_t)task * p->block_bytes + in_block;
}

/* Bytes of one file (all tasks' for a shared one): bound for explaining
 * where a wrong word came from. */
static uint64_t file_bytes(const struct ior_params *p)
{
	uint64_t one = p->segments * p->block_bytes;
	return p->file_per_proc ? one : one * (uint64_t)p->ntasks;
}

static void remove_test_file(struct run *r)
{
	char name[4096];
	if (!r->p->file_per_proc && r->rank != 0)
		return;
	file_name(r->p, r->rank, name, sizeof(name));
	int rc = r->p->api->remove(r->fs, name);
	if (rc < 0 && rc != -ENOENT)
		fprintf(stderr, "sfs-ior: rank %d: WARNING: %s\n", r->rank, r->fs->err);
}

static struct ior_file *open_test_file(struct run *r, const char *name, enum ior_open_mode mode)
{
	const struct ior_params *p = r->p;
	MPI_Comm comm = p->file_per_proc ? MPI_COMM_SELF : COMM;
	struct ior_file *f = NULL;
	int rc = 0;
	if (mode == IOR_OPEN_CREATE && !p->file_per_proc && !p->api->collective_open) {
		/* as IOR's POSIX create: rank 0 makes the shared file, the others
		 * open it once it exists, so no two tasks race to create it */
		if (r->rank == 0 && (rc = p->api->open(r->fs, name, IOR_OPEN_CREATE, comm, &f)) < 0)
			die(r);
		MPI_Barrier(COMM);
		if (r->rank != 0)
			rc = p->api->open(r->fs, name, IOR_OPEN_WRITE, comm, &f);
	} else {
		rc = p->api->open(r->fs, name, mode, comm, &f);
	}
	if (rc < 0)
		die(r);
	return f;
}

/* IOR's WriteOrRead: every transfer of this task's blocks, in order. */
static uint64_t transfer_all(struct run *r, struct ior_file *f, enum access access, int task)
{
	const struct ior_params *p = r->p;
	uint64_t key = ior_pattern_key(r->seed, (uint32_t)task);
	uint64_t per_block = p->block_bytes / p->xfer_bytes, moved = 0;
	int is_write = access == ACCESS_WRITE;
	int check = access == ACCESS_WRITECHECK || access == ACCESS_READCHECK;

	for (uint64_t seg = 0; seg < p->segments; seg++) {
		for (uint64_t i = 0; i < per_block; i++) {
			uint64_t offset = xfer_offset(p, task, seg, i);
			if (is_write)
				ior_pattern_fill(r->buf, p->xfer_bytes, key, offset);
			else if (check) /* as IOR: a read that fills nothing must not pass */
				memset(r->buf, 'a', p->xfer_bytes);
			if (p->api->xfer(f, is_write, r->buf, p->xfer_bytes, offset) < 0)
				die(r);
			if (check)
				r->errors += ior_pattern_check(r->buf, p->xfer_bytes, key, offset, r->bad,
							       &r->n_bad, MAX_BAD_PER_TASK);
			moved += p->xfer_bytes;
		}
	}
	if (is_write && p->fsync && p->api->fsync(f) < 0)
		die(r);
	return moved;
}

static void print_bad_report(const struct run *r, int rank, const struct bad_report *rep)
{
	char name[4096], why[128];
	file_name(r->p, (int)rep->task, name, sizeof(name));
	printf("[%d] FAILED comparison: %s has %" PRIu64 " wrong 8-byte words; the first:\n", rank, name,
	       rep->errors);
	for (uint64_t i = 0; i < rep->n_bad; i++) {
		const struct ior_bad_word *w = &rep->bad[i];
		ior_pattern_explain(w, r->seed, (uint32_t)r->p->ntasks, file_bytes(r->p), why, sizeof(why));
		printf("[%d]   file byte offset %" PRIu64 ": expected 0x%016" PRIx64 ", read 0x%016" PRIx64
		       " = %s\n", rank, w->offset, w->expected, w->found, why);
	}
}

/* IOR's CountErrors, plus where the first wrong words are. */
static void count_errors(struct run *r, enum access access, int task)
{
	uint64_t all = 0;
	MPI_Allreduce(&r->errors, &all, 1, MPI_UINT64_T, MPI_SUM, COMM);
	if (all == 0)
		return;
	r->errors_total += all;

	struct bad_report mine = { r->errors, r->n_bad, (uint64_t)task, { { 0, 0, 0 } } };
	memcpy(mine.bad, r->bad, sizeof(mine.bad));
	struct bad_report *reports = NULL;
	if (r->rank == 0 && !(reports = calloc((size_t)r->p->ntasks, sizeof(*reports))))
		MPI_Abort(COMM, 1);
	MPI_Gather(&mine, sizeof(mine), MPI_BYTE, reports, sizeof(mine), MPI_BYTE, 0, COMM);
	if (r->rank != 0)
		return;

	printf("WARNING: incorrect data on %s (%" PRIu64 " errors found).\n",
	       access == ACCESS_WRITECHECK ? "write" : "read", all);
	printf("Used Time Stamp %" PRIu32 " (0x%" PRIx32 ") for Data Signature\n", r->seed, r->seed);
	int shown = 0, more = 0;
	for (int rank = 0; rank < r->p->ntasks; rank++) {
		if (reports[rank].errors == 0)
			continue;
		if (shown++ < MAX_BAD_TASKS_SHOWN)
			print_bad_report(r, rank, &reports[rank]);
		else
			more++;
	}
	if (more)
		printf("(%d more tasks read incorrect data)\n", more);
	fflush(stdout);
	free(reports);
}

/* IOR's GetFileSize + CheckFileSize: bytes moved by all tasks, with IOR's
 * warnings when that is not what the test should have moved or the file
 * system reports. */
static uint64_t check_file_size(struct run *r, const char *name, uint64_t moved)
{
	const struct ior_params *p = r->p;
	uint64_t size = 0, agg_moved = 0, stat_agg = 0, size_min = 0, size_max = 0;
	if (p->api->get_size(r->fs, name, &size) < 0)
		die(r);
	MPI_Allreduce(&moved, &agg_moved, 1, MPI_UINT64_T, MPI_SUM, COMM);
	if (p->file_per_proc) {
		MPI_Allreduce(&size, &stat_agg, 1, MPI_UINT64_T, MPI_SUM, COMM);
	} else {
		MPI_Allreduce(&size, &size_min, 1, MPI_UINT64_T, MPI_MIN, COMM);
		MPI_Allreduce(&size, &size_max, 1, MPI_UINT64_T, MPI_MAX, COMM);
		if (size_min != size_max && r->rank == 0)
			printf("WARNING: inconsistent file size by different tasks\n");
		stat_agg = size_min;
	}
	if (r->rank == 0 && (p->expected_agg_bytes != agg_moved || stat_agg != agg_moved)) {
		printf("WARNING: Expected aggregate file size       = %" PRIu64 ".\n", p->expected_agg_bytes);
		printf("WARNING: Stat() of aggregate file size      = %" PRIu64 ".\n", stat_agg);
		printf("WARNING: Using actual aggregate bytes moved = %" PRIu64 ".\n", agg_moved);
	}
	return agg_moved;
}

/* IOR's ReduceIterResults: one row of the result table. */
static void reduce_and_print(struct run *r, const double timer[6], struct ior_point *pt,
			     int is_write, int rep)
{
	const struct ior_params *p = r->p;
	double start[3] = { timer[0], timer[2], timer[4] }, end[3] = { timer[1], timer[3], timer[5] };
	double min_start[3], max_end[3], min_latency = 0;
	MPI_Reduce(start, min_start, 3, MPI_DOUBLE, MPI_MIN, 0, COMM);
	MPI_Reduce(end, max_end, 3, MPI_DOUBLE, MPI_MAX, 0, COMM);
	/* latency: each task's mean time per transfer; the best task's is
	 * shown (IOR divides by transfers per block only, ignoring -s) */
	double xfers = (double)(p->segments * (p->block_bytes / p->xfer_bytes));
	double latency = (timer[3] - timer[2]) / xfers;
	MPI_Reduce(&latency, &min_latency, 1, MPI_DOUBLE, MPI_MIN, 0, COMM);
	if (r->rank != 0)
		return;

	double diff[3];
	for (int i = 0; i < 3; i++)
		diff[i] = max_end[i] - min_start[i];
	double total = max_end[2] - min_start[0];
	pt->done = 1;
	pt->time_s = total;
	double bw = total > 0 ? (double)pt->agg_bytes / total : 0;
	double iops = diff[1] > 0 ? (double)pt->agg_bytes / (double)p->xfer_bytes / diff[1] : 0;
	out_row(is_write, p, bw, iops, min_latency, diff, total, rep);
}

/* The write phase, or the read phase (checking with -R). */
static void timed_phase(struct run *r, int rep, int is_write)
{
	const struct ior_params *p = r->p;
	int task = is_write ? r->rank : (r->rank + p->read_shift) % p->ntasks;
	enum access access = is_write ? ACCESS_WRITE : p->check_read ? ACCESS_READCHECK : ACCESS_READ;
	char name[4096], when[64];
	double timer[6];

	file_name(p, task, name, sizeof(name));
	if (p->delay_s > 0)
		sleep((unsigned)p->delay_s);
	if (is_write && !p->use_existing)
		remove_test_file(r);
	if (p->verbose >= 3)
		printf("task %d %s %s\n", r->rank, is_write ? "writing" : "reading", name);
	r->errors = 0;
	r->n_bad = 0;

	MPI_Barrier(COMM);
	timer[0] = now_s(r);
	struct ior_file *f = open_test_file(r, name, is_write ? IOR_OPEN_CREATE : IOR_OPEN_READ);
	timer[1] = now_s(r);
	if (p->intra_barriers)
		MPI_Barrier(COMM);
	if (r->rank == 0 && p->verbose >= 1)
		printf("Commencing %s performance test: %s\n", is_write ? "write" : "read",
		       out_now(when, sizeof(when)));
	timer[2] = now_s(r);
	uint64_t moved = transfer_all(r, f, access, task);
	timer[3] = now_s(r);
	if (p->intra_barriers)
		MPI_Barrier(COMM);
	timer[4] = now_s(r);
	if (p->api->close(f) < 0)
		die(r);
	timer[5] = now_s(r);
	MPI_Barrier(COMM);

	struct ior_point *pt = is_write ? &r->results[rep].write : &r->results[rep].read;
	pt->agg_bytes = check_file_size(r, name, moved);
	if (access == ACCESS_READCHECK)
		count_errors(r, access, task);
	reduce_and_print(r, timer, pt, is_write, rep);
}

/* -W: read back what was just written (another task's, with -C). */
static void check_write_phase(struct run *r)
{
	const struct ior_params *p = r->p;
	int task = (r->rank + p->read_shift) % p->ntasks;
	char name[4096], when[64];

	MPI_Barrier(COMM);
	if (r->rank == 0 && p->verbose >= 1)
		printf("Verifying contents of the file(s) just written.\n%s\n", out_now(when, sizeof(when)));
	file_name(p, task, name, sizeof(name));
	r->errors = 0;
	r->n_bad = 0;
	struct ior_file *f = open_test_file(r, name, IOR_OPEN_READ);
	transfer_all(r, f, ACCESS_WRITECHECK, task);
	if (p->api->close(f) < 0)
		die(r);
	count_errors(r, ACCESS_WRITECHECK, task);
}

static void remove_phase(struct run *r, int rep)
{
	double start = now_s(r);
	MPI_Barrier(COMM);
	remove_test_file(r);
	MPI_Barrier(COMM);
	if (r->rank == 0)
		out_remove(now_s(r) - start, rep);
}

/* The directory holding the test file, for IOR's Path/FS lines. */
static void print_test_start(struct run *r)
{
	const struct ior_params *p = r->p;
	char dir[4096];
	struct ior_fs_usage usage;
	snprintf(dir, sizeof(dir), "%s", p->test_file);
	char *slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		slash[slash == dir ? 1 : 0] = '\0';
	int have = p->api->usage && p->api->usage(r->fs, dir, &usage) == 0;
	out_test_start(p, dir, have ? &usage : NULL);
	out_options(p);
}

int ior_run(const struct ior_params *p, struct ior_fs *fs, int argc, char **argv)
{
	struct run r = { .p = p, .fs = fs };
	MPI_Comm_rank(COMM, &r.rank);

	double skew = clock_skew(&r);
	if (posix_memalign(&r.buf, 4096, p->xfer_bytes) != 0 ||
	    !(r.results = calloc((size_t)p->reps, sizeof(*r.results)))) {
		ior_fail(fs, -ENOMEM, "no memory for a %" PRIu64 "-byte transfer buffer", p->xfer_bytes);
		die(&r);
	}
	if (r.rank == 0) {
		out_header(argc, argv, p, skew);
		if (p->api->make_parents && p->api->make_parents(fs, p->test_file) < 0)
			die(&r);
		print_test_start(&r);
	}

	for (int rep = 0; rep < p->reps; rep++) {
		/* IOR's time stamp signature: -G, or rank 0's clock each repetition */
		r.seed = p->seed_given ? p->seed : (uint32_t)time(NULL);
		MPI_Bcast(&r.seed, 1, MPI_UINT32_T, 0, COMM);
		if (r.rank == 0 && p->verbose >= 2)
			printf("Using Time Stamp %" PRIu32 " (0x%" PRIx32 ") for Data Signature\n", r.seed,
			       r.seed);
		if (r.rank == 0 && rep == 0)
			out_table_header();
		if (p->write_file)
			timed_phase(&r, rep, 1);
		if (p->check_write)
			check_write_phase(&r);
		if (p->read_file || p->check_read)
			timed_phase(&r, rep, 0);
		if (!p->keep)
			remove_phase(&r, rep);
		else
			MPI_Barrier(COMM);
	}

	if (r.rank == 0) {
		out_max(p, r.results);
		out_summary(p, r.results);
		out_finished();
	}
	free(r.buf);
	free(r.results);
	return r.errors_total ? 1 : 0;
}
