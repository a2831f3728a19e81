/*
 * ior_output: sfs-ior's results in IOR 3.3's text format.
 *
 * Scripts written for IOR (the study's, and the many that grep "Max Write:"
 * or split the "Summary of all tests" rows on whitespace) must read our
 * output unchanged, so the field names, widths and number formats below
 * follow IOR's ior-output.c: key/value lines as "%-20s: %s", the result
 * table through IOR's PPDouble (6 decimals below 1, 2 below 3600, none
 * above, left-justified in 10 columns), sizes through HumanReadable (bytes,
 * MiB, GiB, TiB; IOR has no KiB), the summary with IOR's printf widths.
 * Only rank 0 prints.
 */
#include "ior.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#define MEBIBYTE (1024.0 * 1024.0)
#define MEGABYTE 1000000.0
#define KIBIBYTE 1024.0

char *out_now(char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(buf, len, "%a %b %e %H:%M:%S %Y", &tm); /* ctime(3) without "\n" */
	return buf;
}

static void key_val(const char *key, const char *value)
{
	printf("%-20s: %s\n", key, value);
}

static void key_int(const char *key, long long value)
{
	printf("%-20s: %lld\n", key, value);
}

/* IOR's HumanReadable(value, BASE_TWO). */
static char *human_size(uint64_t value, char *buf, size_t len)
{
	static const struct { uint64_t unit; const char *name; } units[] = {
		{ 1ull << 40, "TiB" }, { 1ull << 30, "GiB" }, { 1ull << 20, "MiB" },
	};
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (value < units[i].unit)
			continue;
		if (value % units[i].unit)
			snprintf(buf, len, "%.2f %s", (double)value / (double)units[i].unit, units[i].name);
		else
			snprintf(buf, len, "%llu %s", (unsigned long long)(value / units[i].unit), units[i].name);
		return buf;
	}
	snprintf(buf, len, "%llu bytes", (unsigned long long)value);
	return buf;
}

/* IOR's PPDouble(1, number, append). */
static void pp_double(double number, const char *append)
{
	if (number < 0) {
		printf("   -      %s", append);
		return;
	}
	int precision = number < 1 ? 6 : number < 3600 ? 2 : 0;
	printf("%-10.*f%s", precision, number, append);
}

void out_header(int argc, char **argv, const struct ior_params *p, double skew_s)
{
	char when[64];
	struct utsname un;

	printf("sfs-ior-%s (IOR-3.3.0 output format): MPI Coordinated Test of Parallel I/O\n",
	       MIGD_VERSION);
	key_val("Began", out_now(when, sizeof(when)));
	printf("%-20s: %s", "Command line", argv[0]);
	for (int i = 1; i < argc; i++)
		printf(" %s", argv[i]);
	printf("\n");
	if (uname(&un) != 0) {
		key_val("Machine", "Unknown");
	} else {
		printf("%-20s: %s %s", "Machine", un.sysname, un.nodename);
		if (p->verbose >= 2)
			printf(" %s %s %s", un.release, un.version, un.machine);
		printf("\n");
	}
	if (p->verbose >= 1)
		printf("Start time skew across all tasks: %.02f sec\n", skew_s);
	fflush(stdout);
}

void out_test_start(const struct ior_params *p, const char *dir, const struct ior_fs_usage *usage)
{
	char when[64];
	key_int("TestID", 0);
	key_val("StartTime", out_now(when, sizeof(when)));
	if (!usage)
		return;
	key_val("Path", dir);
	double total = (double)usage->total_bytes;
	double used_pct = total > 0 ? (1.0 - (double)usage->free_bytes / total) * 100.0 : 0.0;
	const char *unit = "GiB";
	double size = total / (double)(1ull << 30);
	if (size > 1024) {
		size = total / (double)(1ull << 40);
		unit = "TiB";
	}
	printf("%-20s: %-.1f %s   Used FS: %2.1f%%", "FS", size, unit, used_pct);
	if (usage->total_inodes) {
		double inodes = (double)usage->total_inodes;
		printf("   Inodes: %-.1f Mi   Used Inodes: %2.1f%%", inodes / (double)(1 << 20),
		       (1.0 - (double)usage->free_inodes / inodes) * 100.0);
	}
	printf("\n");
}

void out_options(const struct ior_params *p)
{
	char size[64];

	printf("\nOptions: \n");
	key_val("api", p->api->name);
	key_val("apiVersion", p->api_version);
	key_val("test filename", p->test_file);
	key_val("access", p->file_per_proc ? "file-per-process" : "single-shared-file");
	key_val("type", "independent");
	key_int("segments", (long long)p->segments);
	key_val("ordering in a file", "sequential");
	if (p->reorder) {
		key_val("ordering inter file", "constant task offset");
		key_int("task offset", p->task_offset);
	} else {
		key_val("ordering inter file", "no tasks offsets");
	}
	key_int("nodes", p->nodes);
	key_int("tasks", p->ntasks);
	key_int("clients per node", p->tasks_per_node);
	key_int("repetitions", p->reps);
	key_val("xfersize", human_size(p->xfer_bytes, size, sizeof(size)));
	key_val("blocksize", human_size(p->block_bytes, size, sizeof(size)));
	key_val("aggregate filesize", human_size(p->expected_agg_bytes, size, sizeof(size)));
	if (p->verbose >= 1) /* not in IOR; says which config and overrides an SFS run used */
		for (int i = 0; p->api == &ior_backend_sfs && p->sfs_opts[i]; i++)
			key_val("sfs override", p->sfs_opts[i]);
	printf("\nResults: \n");
	fflush(stdout);
}

void out_table_header(void)
{
	printf("\n");
	printf("access    bw(MiB/s)  IOPS       Latency(s)  block(KiB) xfer(KiB)  open(s)    "
	       "wr/rd(s)   close(s)   total(s)   iter\n");
	printf("------    ---------  ----       ----------  ---------- ---------  --------   "
	       "--------   --------   --------   ----\n");
	fflush(stdout);
}

void out_row(int is_write, const struct ior_params *p, double bw_bps, double iops, double latency_s,
	     const double diff_s[3], double total_s, int rep)
{
	printf("%-10s", is_write ? "write" : "read");
	pp_double(bw_bps / MEBIBYTE, " ");
	pp_double(iops, " ");
	pp_double(latency_s, "  "); /* IOR's latency column is two wider */
	pp_double((double)p->block_bytes / KIBIBYTE, " ");
	pp_double((double)p->xfer_bytes / KIBIBYTE, " ");
	pp_double(diff_s[0], " ");
	pp_double(diff_s[1], " ");
	pp_double(diff_s[2], " ");
	pp_double(total_s, " ");
	printf("%-4d\n", rep);
	fflush(stdout);
}

void out_remove(double seconds, int rep)
{
	printf("remove    -          -          -           -          -          -          -"
	       "          -          ");
	pp_double(seconds, " ");
	printf("%-4d\n", rep);
	fflush(stdout);
}

void out_max(const struct ior_params *p, const struct ior_rep_result *results)
{
	double max_write = 0, max_read = 0;
	for (int i = 0; i < p->reps; i++) {
		const struct ior_point *w = &results[i].write, *r = &results[i].read;
		if (w->done && w->time_s > 0 && (double)w->agg_bytes / w->time_s > max_write)
			max_write = (double)w->agg_bytes / w->time_s;
		if (r->done && r->time_s > 0 && (double)r->agg_bytes / r->time_s > max_read)
			max_read = (double)r->agg_bytes / r->time_s;
	}
	if (p->write_file)
		printf("Max Write: %.2f MiB/sec (%.2f MB/sec)\n", max_write / MEBIBYTE, max_write / MEGABYTE);
	if (p->read_file)
		printf("Max Read:  %.2f MiB/sec (%.2f MB/sec)\n", max_read / MEBIBYTE, max_read / MEGABYTE);
	fflush(stdout);
}

struct stats {
	double max, min, mean, sd;
};

/* Population standard deviation, as IOR's bw_ops_values. */
static struct stats stats_of(const double *v, int n)
{
	struct stats s = { 0, 0, 0, 0 };
	if (n == 0)
		return s;
	s.max = s.min = v[0];
	for (int i = 0; i < n; i++) {
		s.max = v[i] > s.max ? v[i] : s.max;
		s.min = v[i] < s.min ? v[i] : s.min;
		s.mean += v[i] / n;
	}
	for (int i = 0; i < n; i++)
		s.sd += (v[i] - s.mean) * (v[i] - s.mean);
	s.sd = sqrt(s.sd / n);
	return s;
}

static void summary_row(const struct ior_params *p, const struct ior_rep_result *results,
			int is_write)
{
	double *bw = calloc((size_t)p->reps, sizeof(*bw));
	double *ops = calloc((size_t)p->reps, sizeof(*ops));
	double mean_time = 0;
	uint64_t agg = 0;
	int n = 0;
	if (!bw || !ops) {
		free(bw);
		free(ops);
		return;
	}
	for (int i = 0; i < p->reps; i++) {
		const struct ior_point *pt = is_write ? &results[i].write : &results[i].read;
		if (!pt->done || pt->time_s <= 0)
			continue;
		bw[n] = (double)pt->agg_bytes / pt->time_s;
		ops[n] = (double)pt->agg_bytes / (double)p->xfer_bytes / pt->time_s;
		mean_time += pt->time_s;
		agg = n == 0 ? pt->agg_bytes : agg;
		n++;
	}
	mean_time = n ? mean_time / n : 0;
	struct stats b = stats_of(bw, n), o = stats_of(ops, n);

	printf("%-9s ", is_write ? "write" : "read");
	printf("%10.2f %10.2f %10.2f %10.2f ", b.max / MEBIBYTE, b.min / MEBIBYTE, b.mean / MEBIBYTE,
	       b.sd / MEBIBYTE);
	printf("%10.2f %10.2f %10.2f %10.2f ", o.max, o.min, o.mean, o.sd);
	printf("%10.5f ", mean_time);
	printf("%10s %13s ", "NA", "NA"); /* no stonewalling (-D) in sfs-ior */
	printf("%5d %6d %3d %4d %3d %5d %8d %9d %4d ", 0, p->ntasks, p->tasks_per_node, p->reps,
	       p->file_per_proc, p->reorder, p->task_offset, 0, 0);
	printf("%6llu %8llu %8llu ", (unsigned long long)p->segments,
	       (unsigned long long)p->block_bytes, (unsigned long long)p->xfer_bytes);
	printf("%9.1f %3s %6d\n", (double)agg / MEBIBYTE, p->api->name, p->ref_num);
	free(bw);
	free(ops);
}

void out_summary(const struct ior_params *p, const struct ior_rep_result *results)
{
	printf("\nSummary of all tests:\n");
	printf("Operation   Max(MiB)   Min(MiB)  Mean(MiB)     StdDev   Max(OPs)   Min(OPs)  "
	       "Mean(OPs)     StdDev    Mean(s) Stonewall(s) Stonewall(MiB) Test# #Tasks tPN reps "
	       "fPP reord reordoff reordrand seed segcnt   blksiz    xsize aggs(MiB)   API RefNum\n");
	if (p->write_file)
		summary_row(p, results, 1);
	if (p->read_file)
		summary_row(p, results, 0);
	fflush(stdout);
}

void out_finished(void)
{
	char when[64];
	key_val("Finished", out_now(when, sizeof(when)));
	fflush(stdout);
}
