/*
 * ior: what the sfs-ior driver (sfs_ior.c) and its IOR-format output
 * (ior_output.c) share: the test parameters, named after IOR's, and the
 * per-repetition results IOR's summary tables are computed from.
 */
#ifndef IOR_H
#define IOR_H

#include <stdint.h>

#include "ior_backend.h"

struct ior_params {
	/* options; IOR's parameter name in the comment */
	const struct ior_backend *api; /* -a api */
	const char *test_file;         /* -o testFileName */
	uint64_t block_bytes;          /* -b blockSize */
	uint64_t xfer_bytes;           /* -t transferSize */
	uint64_t segments;             /* -s segmentCount */
	int reps;                      /* -i repetitions */
	int file_per_proc;             /* -F filePerProc */
	int write_file, read_file;     /* -w writeFile, -r readFile */
	int check_write, check_read;   /* -W checkWrite, -R checkRead */
	int reorder;                   /* -C reorderTasks */
	int task_offset;               /* -Q taskPerNodeOffset */
	int fsync;                     /* -e fsync */
	int keep;                      /* -k keepFile */
	int use_existing;              /* -E useExistingTestFile */
	int intra_barriers;            /* -g intraTestBarriers */
	int seed_given;                /* -G given ... */
	uint32_t seed;                 /* ... setTimeStampSignature */
	int delay_s;                   /* -d interTestDelay */
	int verbose;                   /* -v, repeated */
	int ref_num;                   /* -A referenceNumber */
	const char *sfs_conf;          /* --sfs.conf or SFS_CONF */
	const char **sfs_opts;         /* --sfs.opt, NULL-ended */

	/* derived at start-up */
	int ntasks, nodes, tasks_per_node;
	int read_shift;                /* -C: task i reads what task i+shift wrote */
	uint64_t expected_agg_bytes;   /* block * segments * tasks */
	char api_version[64];
};

/* One write or read phase of one repetition, as rank 0 sees it. */
struct ior_point {
	int done;
	double time_s;      /* earliest open to latest close */
	uint64_t agg_bytes; /* bytes moved by all tasks */
};

struct ior_rep_result {
	struct ior_point write, read;
};

/* ior_run.c: runs the test described by p on fs (every rank calls it);
 * returns 0, or 1 when a data check (-W, -R) found wrong data. I/O failures
 * end the job with a message. */
int ior_run(const struct ior_params *p, struct ior_fs *fs, int argc, char **argv);

/* ior_output.c: IOR 3.3's text output; rank 0 calls these. */
void out_header(int argc, char **argv, const struct ior_params *p, double skew_s);
void out_test_start(const struct ior_params *p, const char *dir, const struct ior_fs_usage *usage);
void out_options(const struct ior_params *p);
void out_table_header(void);
void out_row(int is_write, const struct ior_params *p, double bw_bps, double iops, double latency_s,
	     const double diff_s[3], double total_s, int rep);
void out_remove(double seconds, int rep);
void out_max(const struct ior_params *p, const struct ior_rep_result *results);
void out_summary(const struct ior_params *p, const struct ior_rep_result *results);
void out_finished(void);
/* "Wed Jan 19 07:04:39 2022", as IOR's CurrentTimeString without the newline. */
char *out_now(char *buf, size_t len);

#endif
