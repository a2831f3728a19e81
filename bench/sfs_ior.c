/*
 * sfs-ior: IOR for sfs. An MPI program that takes IOR's options with IOR's
 * meanings and prints IOR 3.3's output, measuring sfs through libsfs
 * (-a SFS) next to the native baselines (-a POSIX, -a MPIIO).
 *
 * This file is the thin main: options (parsed the same way on every rank,
 * so every rank agrees on an error without talking), the node topology
 * IOR's -C needs, connecting the backend, then ior_run().
 */
#include "ior.h"

#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_SFS_CONF = 256, OPT_SFS_OPT };

static int my_rank;

/* A message about the command line, from rank 0 only (all ranks see the
 * same arguments, so all of them fail the same way). Returns -1. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	if (my_rank != 0)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	fputs("sfs-ior: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs("\n", stderr);
	va_end(ap);
	return -1;
}

static void usage(void)
{
	if (my_rank != 0)
		return;
	printf("Usage: sfs-ior [OPTIONS]   (run under mpirun; options have IOR's meanings)\n\n"
	       "OPTIONS:\n"
	       " -a S  api -- API for I/O [SFS|POSIX|MPIIO]\n"
	       " -A N  refNum -- user supplied reference number to include in the summary\n"
	       " -b N  blockSize -- contiguous bytes to write per task (e.g.: 8, 4k, 2m, 1g)\n"
	       " -C    reorderTasks -- read back the data of task rank+Q*tasksPerNode (rank+Q on one node)\n"
	       " -d N  interTestDelay -- seconds to wait before each write and read phase\n"
	       " -e    fsync -- perform fsync after the writes, before close\n"
	       " -E    useExistingTestFile -- do not remove test file before write access\n"
	       " -F    filePerProc -- file-per-process (test file name gets .%%08d of the task)\n"
	       " -g    intraTestBarriers -- use barriers between open, write/read, and close\n"
	       " -G N  setTimeStampSignature -- data signature seed (give the writer's to -r -R)\n"
	       " -h    showHelp -- displays options and help\n"
	       " -i N  repetitions -- number of repetitions of test\n"
	       " -k    keepFile -- don't remove the test file(s) on program exit\n"
	       " -o S  testFile -- full name for test (with -a SFS a path inside sfs)\n"
	       " -Q N  taskPerNodeOffset -- for read tests, use with -C (default 1)\n"
	       " -r    readFile -- read existing file\n"
	       " -R    checkRead -- verify that the data read matches the signature (used with -G)\n"
	       " -s N  segmentCount -- number of segments\n"
	       " -t N  transferSize -- size of transfer in bytes (e.g.: 8, 4k, 2m, 1g)\n"
	       " -v    verbose -- output information (repeating flag increases level)\n"
	       " -w    writeFile -- write file\n"
	       " -W    checkWrite -- check read after write\n"
	       "\nModule SFS (-a SFS):\n"
	       " --sfs.conf=PATH       sfs.conf of the file system (default: $SFS_CONF)\n"
	       " --sfs.opt=KEY=VALUE   override a [global] sfs.conf option for this run, repeatable\n"
	       "                       (e.g. socket_sndbuf=256k, max_request=2m)\n"
	       "\nWithout -w, -r, -W or -R both -w and -r are done. See sfs-ior(1).\n");
}

static int opt_size(const char *opt, const char *text, uint64_t *out)
{
	if (parse_size(text, out) < 0 || *out == 0)
		return usage_error("%s \"%s\": expected a size like 64k", opt, text);
	return 0;
}

static int opt_int(const char *opt, const char *text, uint64_t min, uint64_t max, int *out)
{
	uint64_t v;
	if (parse_u64(text, min, max, &v) < 0)
		return usage_error("%s \"%s\": expected a whole number from %" PRIu64 " to %" PRIu64, opt,
				   text, min, max);
	*out = (int)v;
	return 0;
}

/* One option; returns 0, or -1 after saying what is wrong. */
static int apply_option(struct ior_params *p, int c, const char *arg, const char **sfs_opts,
			int *n_sfs_opts)
{
	uint64_t v;
	switch (c) {
	case 'a':
		if (!(p->api = ior_backend_find(arg)))
			return usage_error("-a \"%s\": expected SFS, POSIX or MPIIO", arg);
		return 0;
	case 'A': return opt_int("-A", arg, 0, INT32_MAX, &p->ref_num);
	case 'b': return opt_size("-b", arg, &p->block_bytes);
	case 'C': p->reorder = 1; return 0;
	case 'd': return opt_int("-d", arg, 0, 86400, &p->delay_s);
	case 'e': p->fsync = 1; return 0;
	case 'E': p->use_existing = 1; return 0;
	case 'F': p->file_per_proc = 1; return 0;
	case 'g': p->intra_barriers = 1; return 0;
	case 'G':
		if (parse_u64(arg, 0, UINT32_MAX, &v) < 0)
			return usage_error("-G \"%s\": expected a seed from 0 to %u", arg, UINT32_MAX);
		p->seed = (uint32_t)v;
		p->seed_given = 1;
		return 0;
	case 'i': return opt_int("-i", arg, 1, 100000, &p->reps);
	case 'k': p->keep = 1; return 0;
	case 'o': p->test_file = arg; return 0;
	case 'Q': return opt_int("-Q", arg, 1, INT32_MAX, &p->task_offset);
	case 'r': p->read_file = 1; return 0;
	case 'R': p->check_read = 1; return 0;
	case 's':
		if (parse_u64(arg, 1, UINT32_MAX, &p->segments) < 0)
			return usage_error("-s \"%s\": expected a whole number of segments like 16", arg);
		return 0;
	case 't': return opt_size("-t", arg, &p->xfer_bytes);
	case 'v': p->verbose++; return 0;
	case 'w': p->write_file = 1; return 0;
	case 'W': p->check_write = 1; return 0;
	case OPT_SFS_CONF: p->sfs_conf = arg; return 0;
	case OPT_SFS_OPT:
		if (!strchr(arg, '=') || arg[0] == '=')
			return usage_error("--sfs.opt \"%s\": expected KEY=VALUE like socket_sndbuf=256k", arg);
		sfs_opts[(*n_sfs_opts)++] = arg;
		return 0;
	default: return -1;
	}
}

/* IOR's ValidateTests, for the options sfs-ior has. */
static int check_params(struct ior_params *p)
{
	if (p->xfer_bytes % 8 != 0)
		return usage_error("-t %" PRIu64 ": the transfer size must be a multiple of 8 bytes "
				   "(the data pattern's word)", p->xfer_bytes);
	if (p->block_bytes % p->xfer_bytes != 0)
		return usage_error("-b %" PRIu64 " is not a multiple of -t %" PRIu64
				   " (the block is written in whole transfers)", p->block_bytes, p->xfer_bytes);
	if (p->block_bytes > UINT64_MAX / p->segments / (uint64_t)p->ntasks)
		return usage_error("-b %" PRIu64 " x -s %" PRIu64 " x %d tasks is too large",
				   p->block_bytes, p->segments, p->ntasks);
	if (!(p->write_file || p->read_file || p->check_write || p->check_read))
		p->write_file = p->read_file = 1; /* IOR's default: write, then read */
	if (p->api == &ior_backend_sfs && !p->sfs_conf)
		p->sfs_conf = getenv("SFS_CONF");
	if (p->api == &ior_backend_sfs && (!p->sfs_conf || !p->sfs_conf[0]))
		return usage_error("-a SFS needs the file system's config: --sfs.conf PATH or SFS_CONF");
	p->expected_agg_bytes = p->block_bytes * p->segments * (uint64_t)p->ntasks;
	return 0;
}

/* Fills *p for a job of ntasks tasks. Returns 0 to run, 1 for -h, -1 on
 * a bad command line. p->sfs_opts is the caller's to free either way. */
static int parse_options(int argc, char **argv, int ntasks, struct ior_params *p)
{
	static const struct option longopts[] = {
		{ "sfs.conf", required_argument, NULL, OPT_SFS_CONF },
		{ "sfs.opt", required_argument, NULL, OPT_SFS_OPT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char **sfs_opts = calloc((size_t)argc + 1, sizeof(*sfs_opts));
	int n_sfs_opts = 0, c;
	/* IOR's defaults */
	*p = (struct ior_params){
		.api = &ior_backend_posix, .test_file = "testFile", .block_bytes = 1 << 20,
		.xfer_bytes = 256 << 10, .segments = 1, .reps = 1, .task_offset = 1,
		.sfs_opts = sfs_opts, .ntasks = ntasks,
	};
	if (!sfs_opts)
		return usage_error("out of memory");
	opterr = 0; /* our own messages, from rank 0 only */
	while ((c = getopt_long(argc, argv, ":a:A:b:Cd:eEFgG:hi:ko:Q:rRs:t:vwW", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage();
			return 1;
		}
		if (c == ':')
			return usage_error("%s needs a value (see sfs-ior -h)", argv[optind - 1]);
		if (c == '?' && optopt)
			return usage_error("unknown option -%c (sfs-ior -h lists the IOR options it has)",
					   optopt);
		if (c == '?')
			return usage_error("unknown option %s (sfs-ior -h lists the options)", argv[optind - 1]);
		if (apply_option(p, c, optarg, sfs_opts, &n_sfs_opts) < 0)
			return -1;
	}
	if (optind < argc)
		return usage_error("unexpected argument \"%s\" (options only; see sfs-ior -h)", argv[optind]);
	return check_params(p);
}

/* Nodes = shared-memory domains; tasks per node as rank 0's node has them
 * (IOR's CountTasksPerNode). -C reads the data of the task one node
 * further on (Q nodes with -Q), or of the next task when all share a node. */
static void topology(struct ior_params *p)
{
	MPI_Comm node;
	int node_rank, node_size, leader, nodes;
	MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
	MPI_Comm_rank(node, &node_rank);
	MPI_Comm_size(node, &node_size);
	MPI_Comm_free(&node);
	leader = node_rank == 0;
	MPI_Allreduce(&leader, &nodes, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
	MPI_Bcast(&node_size, 1, MPI_INT, 0, MPI_COMM_WORLD);
	p->nodes = nodes;
	p->tasks_per_node = node_size;
	if (p->reorder) {
		uint64_t shift = (uint64_t)p->task_offset * (uint64_t)(nodes > 1 ? node_size : 1);
		p->read_shift = (int)(shift % (uint64_t)p->ntasks);
	}
}

/* Connect on every rank; the lowest failing rank says why. */
static struct ior_fs *connect_backend(const struct ior_params *p)
{
	struct ior_backend_conf conf = { p->sfs_conf, p->sfs_opts };
	struct ior_fs *fs = NULL;
	char err[512] = "";
	int rc = p->api->init(&conf, &fs, err, sizeof(err));
	int mine = rc < 0 ? my_rank : p->ntasks, first = 0;
	MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
	if (first == p->ntasks)
		return fs;
	if (my_rank == first)
		fprintf(stderr, "sfs-ior: rank %d: -a %s: %s\n", my_rank, p->api->name, err);
	p->api->fini(fs);
	return NULL;
}

int main(int argc, char **argv)
{
	struct ior_params p;
	int rc = 1, ntasks;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
	MPI_Comm_size(MPI_COMM_WORLD, &ntasks);
	int parsed = parse_options(argc, argv, ntasks, &p);
	if (parsed == 0) {
		topology(&p);
		if (p.reorder && p.read_shift == 0 && my_rank == 0)
			fprintf(stderr, "sfs-ior: WARNING: -C with %d task(s) on %d node(s): every task "
				"reads back its own data\n", p.ntasks, p.nodes);
		struct ior_fs *fs = connect_backend(&p);
		if (fs) {
			p.api->version(fs, p.api_version, sizeof(p.api_version));
			rc = ior_run(&p, fs, argc, argv);
			p.api->fini(fs);
		}
	} else if (parsed == 1) {
		rc = 0;
	}
	free(p.sfs_opts);
	MPI_Finalize();
	return rc;
}
