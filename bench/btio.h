/*
 * btio.h: the parts of btio, NAS BT-IO's I/O pattern over libsfs.
 *
 * btio.c is the thin main (options, the run, NPB-style output);
 * btio_solver.c the computation (a square process grid over y and z, an
 * ADI-like sweep with halo exchange, and the exact solution it reproduces);
 * btio_io.c the dumps (write every 5 steps, read back and verify, remove).
 *
 * The solution is a manufactured one: the sweep's forcing is chosen so that
 * the discrete scheme reproduces a closed form of (step, point) up to
 * rounding. That makes every dump checkable on its own, in this run or in a
 * later --verify-only run, without keeping any dump in memory: a stale,
 * lost or misplaced write differs from the closed form by far more than
 * rounding.
 */
#ifndef BTIO_H
#define BTIO_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#define BTIO_NCOMP 5         /* doubles per grid point, as in BT */
#define BTIO_DUMP_INTERVAL 5 /* steps between dumps, as in BT-IO */
#define BTIO_TOLERANCE 1e-9  /* |read - exact| allowed, relative to max(1, |exact|) */

enum btio_mode { BTIO_FULL, BTIO_EPIO };
enum btio_api { BTIO_API_SFS, BTIO_API_POSIX }; /* libsfs, or POSIX calls on a path */

struct btio_params {
	char class_name;     /* 'S', 'W' or 'A' */
	int n;               /* grid points per side */
	int steps;
	enum btio_mode mode;
	enum btio_api api;
	const char *sfs_conf; /* --api sfs only */
	const char *path;    /* inside sfs, or a local path with --api posix; epio appends .RANK */
	int keep, json, quiet, verify_only, progress;
};

/* This rank's part of the n^3 grid: full x lines, a block of y and z. */
struct btio_grid {
	int n;
	int q;              /* ranks per side of the square process grid */
	int rank;
	int pj, pk;         /* this rank's place in the process grid */
	int j0, nj, k0, nk; /* owned global y and z ranges */
	int south, north;   /* neighbours across y (j - 1, j + 1), or MPI_PROC_NULL */
	int down, up;       /* neighbours across z (k - 1, k + 1), or MPI_PROC_NULL */
};

/* The grid of rank among q*q ranks. */
void btio_grid_init(struct btio_grid *g, int n, int q, int rank);
/* Bytes of one whole dump and of this rank's part of it. */
uint64_t btio_dump_bytes(int n);
uint64_t btio_local_bytes(const struct btio_grid *g);
/* Number of dumps a run of steps writes, and the step of dump d (0-based). */
int btio_dump_count(int steps);
int btio_dump_step(int d);

/* The exact solution: component m at global point (i, j, k) after step. */
struct btio_exact;
struct btio_exact *btio_exact_new(int n);
void btio_exact_free(struct btio_exact *e);
double btio_exact_value(const struct btio_exact *e, int step, int m, int i, int j, int k);

struct btio_solver;
/* The solution at step 0 on this rank's part of the grid. Returns NULL when
 * out of memory. */
struct btio_solver *btio_solver_new(const struct btio_grid *g);
void btio_solver_free(struct btio_solver *s);
/* One step: halo exchange with the neighbours, then the sweep. Collective. */
void btio_solver_step(struct btio_solver *s);
/* This rank's solution packed as a dump part: [k][j][i][m], k and j local. */
const double *btio_solver_pack(struct btio_solver *s);
/* Largest |solution - exact| on this rank at the current step. */
double btio_solver_error(const struct btio_solver *s);

/* First wrong value found in a dump, with where it is. */
struct btio_bad_value {
	uint64_t count;       /* wrong doubles in the dump on this rank */
	uint64_t offset;      /* file offset of the first */
	int m, i, j, k;
	double got, expected;
};

struct btio_io;
/* Connect to sfs (--api sfs) and open this rank's file(s): create (truncating) for a
 * run, open existing ones for --verify-only. Collective. On failure returns
 * a negative errno with a message naming the file in err. */
int btio_io_open(const struct btio_params *p, const struct btio_grid *g, int create,
		 struct btio_io **out, char *err, size_t errlen);
/* Write dump d (0-based) from a packed solution. */
int btio_io_write(struct btio_io *io, int d, const double *packed, char *err, size_t errlen);
/* Make the file(s) durable. */
int btio_io_sync(struct btio_io *io, char *err, size_t errlen);
/* Read dump d back and compare with the exact solution; bad->count is 0
 * when it matches. An I/O failure returns a negative errno. */
int btio_io_verify(struct btio_io *io, int d, struct btio_bad_value *bad, char *err, size_t errlen);
/* The file a rank's data of dump d is in, for messages. */
const char *btio_io_path(const struct btio_io *io);
/* Close and, with remove, unlink this rank's files (rank 0 the shared one). */
int btio_io_close(struct btio_io *io, int remove, char *err, size_t errlen);

#endif
