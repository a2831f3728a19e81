/*
 * btio: NAS BT-IO's I/O pattern through libsfs (or, with --api posix,
 * POSIX calls on any path: an sfs mount), as an MPI program.
 *
 * A time-stepped solver (btio_solver.c) on an n^3 grid over a square
 * number of ranks writes its whole solution every 5 steps (btio_io.c), to
 * one shared file (full) or one file per rank (epio); at the end every dump
 * is read back and checked against the exact solution. It exists to be the
 * parallel job whose slowdown migd's migrations are measured against, so
 * it reports NPB's result block (scripts grep its labels) or one JSON
 * object, and exits 0 only when every dump verified.
 *
 * This file is the thin main: options (parsed the same way on every rank,
 * so every rank agrees on an error without talking), the run, the output.
 * A failure on any rank is agreed on by all (agree()), and the lowest rank
 * whose own failure it was tells rank 0 why; no rank is left waiting.
 */
#include "btio.h"

#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2
#define MSG_LEN 1024

enum { OPT_CLASS = 256, OPT_STEPS, OPT_MODE, OPT_API, OPT_SFS_CONF, OPT_PATH, OPT_KEEP,
       OPT_JSON, OPT_QUIET, OPT_VERIFY_ONLY, OPT_PROGRESS };

static int my_rank, nranks;

struct result {
	double time_s, io_time_s;
	uint64_t written_bytes;
	char error[MSG_LEN]; /* "" when verification succeeded; on rank 0 */
};

/* A message about the command line, from rank 0 only. Returns -1. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	if (my_rank != 0)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	fputs("btio: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs("\n", stderr);
	va_end(ap);
	return -1;
}

static void usage(void)
{
	if (my_rank == 0)
		printf("Usage: mpirun -np Q*Q btio [OPTIONS]\n\n"
		       "NAS BT-IO's I/O pattern over sfs: a solver writes its whole solution every\n"
		       "5 steps and verifies every dump at the end. See btio(1).\n\n"
		       "  --class S|W|A      problem size: 12^3/60 steps, 24^3/200, 64^3/200 (default S)\n"
		       "  --steps N          time steps instead of the class's (at least 5)\n"
		       "  --mode full|epio   one shared file, or one file per rank (default full)\n"
		       "  --api sfs|posix    libsfs (default), or open/pwrite/pread/fsync on a local\n"
		       "                     path: an sfs mount, e.g. --path /mnt/sfs/btio/btio\n"
		       "  --sfs.conf PATH    the file system's config (default: $SFS_CONF; --api sfs)\n"
		       "  --path /DIR/NAME   the dump file in sfs, or with --api posix an absolute\n"
		       "                     local path (default /btio/btio; epio: NAME.RANK)\n"
		       "  --keep             leave the dump files in place\n"
		       "  --verify-only      only read and verify the dumps of an earlier --keep run\n"
		       "                     with the same class, steps and mode\n"
		       "  --json             print one JSON object instead of the NPB report\n"
		       "  --quiet            print only the result block\n"
		       "  --progress         a \"Time step N\" line after every step, its dump\n"
		       "                     included (stderr with --json): for timing from outside\n"
		       "  --help             this help\n\n"
		       "Exit status: 0 verification SUCCESSFUL, 1 UNSUCCESSFUL or an I/O error,\n"
		       "2 bad command line.\n");
}

static int set_class(struct btio_params *p, const char *arg)
{
	static const struct { char name; int n, steps; } classes[] = {
		{ 'S', 12, 60 }, { 'W', 24, 200 }, { 'A', 64, 200 },
	};
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if (arg[0] == classes[i].name && arg[1] == '\0') {
			p->class_name = classes[i].name;
			p->n = classes[i].n;
			if (!p->steps)
				p->steps = classes[i].steps;
			return 0;
		}
	return usage_error("--class \"%s\": expected S, W or A", arg);
}

static int apply_option(struct btio_params *p, int c, const char *arg, int *steps)
{
	uint64_t v;
	switch (c) {
	case OPT_CLASS: return set_class(p, arg);
	case OPT_STEPS:
		if (parse_u64(arg, BTIO_DUMP_INTERVAL, 1000000, &v) < 0)
			return usage_error("--steps \"%s\": expected a whole number from %d to 1000000 "
					   "(a dump is written every %d steps)", arg, BTIO_DUMP_INTERVAL,
					   BTIO_DUMP_INTERVAL);
		*steps = (int)v;
		return 0;
	case OPT_MODE:
		if (strcmp(arg, "full") == 0)
			p->mode = BTIO_FULL;
		else if (strcmp(arg, "epio") == 0)
			p->mode = BTIO_EPIO;
		else
			return usage_error("--mode \"%s\": expected full or epio", arg);
		return 0;
	case OPT_API:
		if (strcmp(arg, "sfs") == 0)
			p->api = BTIO_API_SFS;
		else if (strcmp(arg, "posix") == 0)
			p->api = BTIO_API_POSIX;
		else
			return usage_error("--api \"%s\": expected sfs or posix", arg);
		return 0;
	case OPT_SFS_CONF: p->sfs_conf = arg; return 0;
	case OPT_PATH:
		if (strncmp(arg, "sfs:", 4) == 0)
			arg += 4;
		if (arg[0] != '/' || arg[1] == '\0' || arg[strlen(arg) - 1] == '/')
			return usage_error("--path \"%s\": expected an absolute file path like /btio/btio "
					   "(inside sfs, or local with --api posix)", arg);
		p->path = arg;
		return 0;
	case OPT_KEEP: p->keep = 1; return 0;
	case OPT_JSON: p->json = 1; return 0;
	case OPT_QUIET: p->quiet = 1; return 0;
	case OPT_PROGRESS: p->progress = 1; return 0;
	case OPT_VERIFY_ONLY: p->verify_only = 1; return 0;
	default: return -1;
	}
}

/* The process grid: a square of ranks no wider than the grid. */
static int check_ranks(const struct btio_params *p, int *q)
{
	int side = (int)lround(sqrt((double)nranks));
	if (side * side != nranks)
		return usage_error("%d processes: BT-IO needs a square number of processes "
				   "(1, 4, 9, 16, ...)", nranks);
	if (side > p->n)
		return usage_error("%d processes: class %c's %dx%dx%d grid has room for at most %d (%dx%d)",
				   nranks, p->class_name, p->n, p->n, p->n, p->n * p->n, p->n, p->n);
	*q = side;
	return 0;
}

/* Fills *p. Returns 0 to run, 1 for --help, -1 on a bad command line. */
static int parse_options(int argc, char **argv, struct btio_params *p, int *q)
{
	static const struct option longopts[] = {
		{ "class", required_argument, NULL, OPT_CLASS },
		{ "steps", required_argument, NULL, OPT_STEPS },
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "api", required_argument, NULL, OPT_API },
		{ "sfs.conf", required_argument, NULL, OPT_SFS_CONF },
		{ "path", required_argument, NULL, OPT_PATH },
		{ "keep", no_argument, NULL, OPT_KEEP },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "progress", no_argument, NULL, OPT_PROGRESS },
		{ "verify-only", no_argument, NULL, OPT_VERIFY_ONLY },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, steps = 0;
	*p = (struct btio_params){ .mode = BTIO_FULL, .path = "/btio/btio" };
	opterr = 0; /* our own messages, from rank 0 only */
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage();
			return 1;
		}
		if (c == ':')
			return usage_error("%s needs a value (see btio --help)", argv[optind - 1]);
		if (c == '?')
			return usage_error("unknown option %s (see btio --help)", argv[optind - 1]);
		if (apply_option(p, c, optarg, &steps) < 0)
			return -1;
	}
	if (optind < argc)
		return usage_error("unexpected argument \"%s\" (see btio --help)", argv[optind]);
	if (!p->class_name && set_class(p, "S") < 0)
		return -1;
	if (steps)
		p->steps = steps;
	if (!p->sfs_conf)
		p->sfs_conf = getenv("SFS_CONF");
	if (p->api == BTIO_API_SFS && (!p->sfs_conf || !p->sfs_conf[0]))
		return usage_error("needs the file system's config: --sfs.conf PATH or SFS_CONF");
	return check_ranks(p, q);
}

/* Collective: 0 when rc is 0 on every rank; otherwise -1 everywhere, and
 * rank 0 has in msg the message of the lowest rank that failed by itself
 * (-ECANCELED means "because another rank failed"). */
static int agree(int rc, char *msg, size_t len)
{
	int mine = rc < 0 && rc != -ECANCELED ? my_rank : nranks, first, any_failed, failed = rc < 0;
	MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
	if (!any_failed)
		return 0;
	MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
	if (first == nranks || first == 0)
		return -1;
	if (my_rank == first)
		MPI_Send(msg, (int)len, MPI_CHAR, 0, 99, MPI_COMM_WORLD);
	else if (my_rank == 0)
		MPI_Recv(msg, (int)len, MPI_CHAR, first, 99, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
	return -1;
}

/* Read back and check every dump; the first wrong one is described. */
static void verify_dumps(struct btio_io *io, const struct btio_params *p, struct result *res)
{
	char msg[MSG_LEN] = "";
	int ndumps = btio_dump_count(p->steps), bad_dumps = 0;
	for (int d = 0; d < ndumps; d++) {
		struct btio_bad_value bad;
		if (agree(btio_io_verify(io, d, &bad, msg, sizeof(msg)), msg, sizeof(msg)) < 0)
			break;
		uint64_t wrong = 0;
		MPI_Allreduce(&bad.count, &wrong, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
		if (wrong == 0 || bad_dumps++ > 0)
			continue;
		/* described by the lowest rank that has wrong values */
		snprintf(msg, sizeof(msg), "dump %d (step %d): %llu wrong value%s, first in %s at offset "
			 "%llu: u(%d, %d,%d,%d) = %.15g, expected %.15g", d + 1, btio_dump_step(d),
			 (unsigned long long)wrong, wrong == 1 ? "" : "s", btio_io_path(io),
			 (unsigned long long)bad.offset, bad.m, bad.i, bad.j, bad.k, bad.got, bad.expected);
		agree(bad.count ? -EIO : -ECANCELED, msg, sizeof(msg));
	}
	if (my_rank == 0 && msg[0] && bad_dumps > 1)
		snprintf(res->error, sizeof(res->error), "%d of %d dumps wrong; %s", bad_dumps, ndumps, msg);
	else if (my_rank == 0 && msg[0])
		snprintf(res->error, sizeof(res->error), "%s", msg);
}

/* A line per step with --progress (a script timing the job from outside
 * sees when each step ended, its dump included), else NPB's every 20. */
static void progress(const struct btio_params *p, int step)
{
	if (my_rank != 0)
		return;
	if (p->progress) {
		FILE *f = p->json ? stderr : stdout;
		fprintf(f, " Time step %4d\n", step);
		fflush(f);
	} else if (!p->quiet && !p->json && (step == 1 || step % 20 == 0 || step == p->steps)) {
		printf(" Time step %4d\n", step);
		fflush(stdout);
	}
}

/* The time steps with a dump every BTIO_DUMP_INTERVAL; -1 on an I/O error. */
static int solve_and_write(const struct btio_params *p, struct btio_solver *s, struct btio_io *io,
			   struct result *res)
{
	char msg[MSG_LEN] = "";
	double io_s = 0;
	int rc = 0, dumps = 0;
	MPI_Barrier(MPI_COMM_WORLD);
	double start = MPI_Wtime();
	for (int step = 1; step <= p->steps && rc == 0; step++) {
		btio_solver_step(s);
		if (step % BTIO_DUMP_INTERVAL != 0) {
			progress(p, step);
			continue;
		}
		const double *packed = btio_solver_pack(s);
		double t = MPI_Wtime();
		rc = agree(btio_io_write(io, step / BTIO_DUMP_INTERVAL - 1, packed, msg, sizeof(msg)),
			   msg, sizeof(msg));
		io_s += MPI_Wtime() - t;
		dumps += rc == 0;
		if (rc == 0)
			progress(p, step);
	}
	if (rc == 0) {
		double t = MPI_Wtime();
		rc = agree(btio_io_sync(io, msg, sizeof(msg)), msg, sizeof(msg));
		io_s += MPI_Wtime() - t;
	}
	MPI_Barrier(MPI_COMM_WORLD);
	res->time_s = MPI_Wtime() - start;
	MPI_Reduce(&io_s, &res->io_time_s, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
	res->written_bytes = (uint64_t)dumps * btio_dump_bytes(p->n);
	if (rc < 0 && my_rank == 0)
		snprintf(res->error, sizeof(res->error), "%s", msg);
	return rc;
}

/* The solver's own check: the solution it ends with is the exact one. */
static void check_solution(const struct btio_params *p, const struct btio_solver *s, struct result *res)
{
	double mine = btio_solver_error(s), worst = 0;
	MPI_Reduce(&mine, &worst, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
	if (my_rank == 0 && !res->error[0] && !(worst <= BTIO_TOLERANCE))
		snprintf(res->error, sizeof(res->error), "the solution after step %d is off the exact one "
			 "by %.3g (more than %g): the sweep went wrong", p->steps, worst, BTIO_TOLERANCE);
}

/* Rank 0 keeps the first failure of the run as its verdict. */
static void fail(struct result *res, const char *msg)
{
	if (my_rank == 0 && !res->error[0])
		snprintf(res->error, sizeof(res->error), "%s", msg[0] ? msg : "failed");
}

/* A whole run, or with --verify-only the read-back alone. Collective. */
static void run(const struct btio_params *p, const struct btio_grid *g, struct result *res)
{
	char msg[MSG_LEN] = "";
	struct btio_solver *s = NULL;
	struct btio_io *io = NULL;
	int rc = 0;
	if (!p->verify_only) {
		if (!(s = btio_solver_new(g)))
			snprintf(msg, sizeof(msg), "rank %d: out of memory for its %dx%dx%d block", my_rank,
				 g->n, g->nj, g->nk);
		rc = agree(s ? 0 : -ENOMEM, msg, sizeof(msg));
	}
	if (rc == 0)
		rc = agree(btio_io_open(p, g, !p->verify_only, &io, msg, sizeof(msg)), msg, sizeof(msg));
	if (rc < 0) {
		fail(res, msg);
		btio_io_close(io, 0, msg, sizeof(msg)); /* the ranks whose open worked */
		goto out;
	}
	double start = MPI_Wtime();
	if (p->verify_only || solve_and_write(p, s, io, res) == 0) {
		if (s)
			check_solution(p, s, res);
		verify_dumps(io, p, res);
	}
	if (p->verify_only)
		res->time_s = MPI_Wtime() - start;
	msg[0] = '\0';
	if (agree(btio_io_close(io, !p->keep && !p->verify_only, msg, sizeof(msg)), msg, sizeof(msg)) < 0)
		fail(res, msg);
out:
	btio_solver_free(s);
}

static const char *mode_name(enum btio_mode mode) { return mode == BTIO_FULL ? "full" : "epio"; }

static double io_mbps(const struct result *res)
{
	return res->io_time_s > 0 ? (double)res->written_bytes / 1e6 / res->io_time_s : 0;
}

static void print_header(const struct btio_params *p)
{
	printf("\n\n NAS Parallel Benchmarks BT-IO pattern over sfs (btio, migd %s)\n\n", MIGD_VERSION);
	printf(" Size: %4dx%4dx%4d  (class %c)\n", p->n, p->n, p->n, p->class_name);
	printf(" Iterations: %4d\n", p->steps);
	printf(" Total number of processes: %6d\n", nranks);
	printf(" BTIO -- %s write interval: %3d  (%s%s%s)\n", p->mode == BTIO_FULL ? "FULL" : "EPIO",
	       BTIO_DUMP_INTERVAL, p->path, p->mode == BTIO_FULL ? "" : ".RANK",
	       p->api == BTIO_API_POSIX ? ", POSIX calls" : "");
	if (p->verify_only)
		printf(" Verify only: reading the dumps of an earlier run\n");
	printf("\n");
	fflush(stdout);
}

/* NPB's result block; scripts grep these labels. */
static void print_report(const struct btio_params *p, const struct result *res)
{
	char size[32];
	snprintf(size, sizeof(size), "%4dx%4dx%4d", p->n, p->n, p->n);
	printf("\n BT-IO Benchmark Completed.\n");
	printf(" Class           = %24c\n", p->class_name);
	printf(" Size            = %24s\n", size);
	printf(" Iterations      = %24d\n", p->steps);
	printf(" Time in seconds = %24.2f\n", res->time_s);
	printf(" Total processes = %24d\n", nranks);
	printf(" I/O mode        = %24s\n", mode_name(p->mode));
	if (res->error[0])
		printf(" Verification    = %24s: %s\n", "UNSUCCESSFUL", res->error);
	else
		printf(" Verification    = %24s\n", "SUCCESSFUL");
	printf(" Total data written (MB)  = %16.2f\n", (double)res->written_bytes / 1e6);
	printf(" I/O timing in seconds    = %16.2f\n", res->io_time_s);
	printf(" I/O data rate  (MB/sec)  = %16.2f\n", io_mbps(res));
}

static void print_json(const struct btio_params *p, const struct result *res)
{
	char class_name[2] = { p->class_name, '\0' };
	json_t *o = json_pack("{s:s, s:i, s:i, s:i, s:s, s:s, s:f, s:f, s:I, s:f, s:s, s:o}",
			      "class", class_name, "n", p->n, "steps", p->steps, "ranks", nranks,
			      "mode", mode_name(p->mode),
			      "api", p->api == BTIO_API_POSIX ? "posix" : "sfs", "time_s", res->time_s, "io_time_s", res->io_time_s,
			      "written_bytes", (json_int_t)res->written_bytes, "io_mbps", io_mbps(res),
			      "verification", res->error[0] ? "UNSUCCESSFUL" : "SUCCESSFUL",
			      "error", res->error[0] ? json_string(res->error) : json_null());
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	printf("%s\n", text ? text : "{\"error\":\"out of memory\"}");
	free(text);
	json_decref(o);
}

int main(int argc, char **argv)
{
	struct btio_params p;
	struct btio_grid g;
	struct result res = { 0 };
	int q = 0, rc;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
	MPI_Comm_size(MPI_COMM_WORLD, &nranks);
	int parsed = parse_options(argc, argv, &p, &q);
	if (parsed != 0) {
		MPI_Finalize();
		return parsed == 1 ? 0 : EXIT_USAGE;
	}
	btio_grid_init(&g, p.n, q, my_rank);
	if (my_rank == 0 && !p.quiet && !p.json)
		print_header(&p);
	run(&p, &g, &res);
	if (my_rank == 0 && p.json)
		print_json(&p, &res);
	else if (my_rank == 0)
		print_report(&p, &res);
	rc = res.error[0] ? 1 : 0;
	MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
	MPI_Finalize();
	return rc;
}
