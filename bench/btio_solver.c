/*
 * btio_solver: the computation between btio's dumps, shaped like NAS BT's.
 *
 * Five coupled fields on an n^3 grid, decomposed over a square q x q process
 * grid in y and z (every rank holds whole x lines, as BT's x sweeps want).
 * Each step is an ADI-like sweep: an explicit diffusion in y and z plus a
 * 5x5 coupling of the fields, needing one layer of halo from the four
 * neighbours over MPI, then an implicit diffusion along x solved line by
 * line (tridiagonal, Thomas). The work per step is proportional to the
 * grid, and the halo exchange to the block faces, as in BT.
 *
 * The forcing is manufactured: it is chosen so that the exact discrete
 * solution is a closed form of (step, point) (btio_exact_value), which the
 * scheme reproduces up to rounding. The scheme is stable (implicit in x,
 * explicit y/z diffusion number 0.1, damped coupling), so rounding stays
 * near 1e-14 over thousands of steps, far below BTIO_TOLERANCE, while the
 * closed form moves by ~1e-2 every dump.
 */
#include "btio.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define A_IMPLICIT 0.5 /* x diffusion number, implicit */
#define B_EXPLICIT 0.1 /* y and z diffusion number, explicit (stable below 0.25) */

/* Coupling of the fields: damped diagonal, small off-diagonal. */
static double coupling(int m, int l)
{
	return m == l ? -0.03 : 0.001 * (double)(1 + (m + 2 * l) % 3);
}

/* exact_m(step, i, j, k) = A_m(step) + B_m(step) * X_m[i] * Y_m[j] * Z_m[k] */
struct btio_exact {
	int n;
	double *x, *y, *z;    /* [m * n + index] */
	double *dxx, *dyy, *dzz; /* second differences of the above, interior only */
};

static double offset_of(int m, int step) { return 2.0 + m + 0.01 * (m + 1) * step; }
static double scale_of(int m, int step) { return 1.0 + 0.002 * (m + 1) * step; }

struct btio_exact *btio_exact_new(int n)
{
	struct btio_exact *e = calloc(1, sizeof(*e));
	double *mem = calloc((size_t)6 * BTIO_NCOMP * (size_t)n, sizeof(double));
	if (!e || !mem) {
		free(e);
		free(mem);
		return NULL;
	}
	size_t len = (size_t)BTIO_NCOMP * (size_t)n;
	e->n = n;
	e->x = mem, e->y = mem + len, e->z = mem + 2 * len;
	e->dxx = mem + 3 * len, e->dyy = mem + 4 * len, e->dzz = mem + 5 * len;
	for (int m = 0; m < BTIO_NCOMP; m++) {
		for (int i = 0; i < n; i++) {
			double pos = (double)i / (double)(n - 1);
			e->x[m * n + i] = sin(M_PI * (0.5 + 0.25 * m) * pos + 0.3 * m);
			e->y[m * n + i] = cos(M_PI * (0.75 + 0.2 * m) * pos + 0.1 * m);
			e->z[m * n + i] = sin(M_PI * (1.0 + 0.15 * m) * pos + 0.5 + 0.2 * m);
		}
		for (int i = 1; i < n - 1; i++) {
			const double *t[3] = { e->x, e->y, e->z };
			double *d[3] = { e->dxx, e->dyy, e->dzz };
			for (int a = 0; a < 3; a++)
				d[a][m * n + i] = t[a][m * n + i - 1] - 2 * t[a][m * n + i] + t[a][m * n + i + 1];
		}
	}
	return e;
}

void btio_exact_free(struct btio_exact *e)
{
	if (!e)
		return;
	free(e->x);
	free(e);
}

double btio_exact_value(const struct btio_exact *e, int step, int m, int i, int j, int k)
{
	int n = e->n;
	return offset_of(m, step) + scale_of(m, step) * e->x[m * n + i] * e->y[m * n + j] * e->z[m * n + k];
}

void btio_grid_init(struct btio_grid *g, int n, int q, int rank)
{
	memset(g, 0, sizeof(*g));
	g->n = n, g->q = q, g->rank = rank;
	g->pj = rank % q, g->pk = rank / q;
	g->j0 = g->pj * n / q, g->nj = (g->pj + 1) * n / q - g->j0;
	g->k0 = g->pk * n / q, g->nk = (g->pk + 1) * n / q - g->k0;
	g->south = g->pj > 0 ? rank - 1 : MPI_PROC_NULL;
	g->north = g->pj < q - 1 ? rank + 1 : MPI_PROC_NULL;
	g->down = g->pk > 0 ? rank - q : MPI_PROC_NULL;
	g->up = g->pk < q - 1 ? rank + q : MPI_PROC_NULL;
}

uint64_t btio_dump_bytes(int n)
{
	return (uint64_t)n * (uint64_t)n * (uint64_t)n * BTIO_NCOMP * sizeof(double);
}

uint64_t btio_local_bytes(const struct btio_grid *g)
{
	return (uint64_t)g->n * (uint64_t)g->nj * (uint64_t)g->nk * BTIO_NCOMP * sizeof(double);
}

int btio_dump_count(int steps) { return steps / BTIO_DUMP_INTERVAL; }
int btio_dump_step(int d) { return (d + 1) * BTIO_DUMP_INTERVAL; }

struct btio_solver {
	struct btio_grid g;
	struct btio_exact *exact;
	int step;
	size_t line;          /* doubles in one x line: n * BTIO_NCOMP */
	double *u;            /* [(kk * (nj + 2) + jj) * line], one halo layer in y and z */
	double *rhs;          /* [(kk * nj + jj) * line], no halo */
	double *packed;       /* the dump part */
	double *thomas_c;     /* Thomas's modified super-diagonal, by i */
	double *thomas_inv;   /* 1 / its pivot, by i */
	MPI_Datatype y_face;  /* one x line per owned k plane */
};

static double *u_line(const struct btio_solver *s, int kk, int jj)
{
	return s->u + ((size_t)kk * (size_t)(s->g.nj + 2) + (size_t)jj) * s->line;
}

/* The tridiagonal (I - a dxx) has constant coefficients: factor it once. */
static void thomas_factor(struct btio_solver *s)
{
	int n = s->g.n;
	double diag = 1 + 2 * A_IMPLICIT, off = -A_IMPLICIT, prev_c = 0;
	for (int i = 1; i < n - 1; i++) {
		double pivot = diag - off * prev_c;
		s->thomas_inv[i] = 1 / pivot;
		s->thomas_c[i] = off / pivot;
		prev_c = s->thomas_c[i];
	}
}

struct btio_solver *btio_solver_new(const struct btio_grid *g)
{
	struct btio_solver *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->g = *g;
	s->line = (size_t)g->n * BTIO_NCOMP;
	size_t lines = (size_t)g->nj * (size_t)g->nk;
	s->exact = btio_exact_new(g->n);
	s->u = calloc((size_t)(g->nj + 2) * (size_t)(g->nk + 2) * s->line, sizeof(double));
	s->rhs = calloc(lines * s->line, sizeof(double));
	s->packed = calloc(lines * s->line, sizeof(double));
	s->thomas_c = calloc((size_t)g->n, sizeof(double));
	s->thomas_inv = calloc((size_t)g->n, sizeof(double));
	if (!s->exact || !s->u || !s->rhs || !s->packed || !s->thomas_c || !s->thomas_inv) {
		btio_solver_free(s);
		return NULL;
	}
	MPI_Type_vector(g->nk, (int)s->line, (int)((size_t)(g->nj + 2) * s->line), MPI_DOUBLE,
			&s->y_face);
	MPI_Type_commit(&s->y_face);
	thomas_factor(s);
	for (int kk = 0; kk < g->nk; kk++)
		for (int jj = 0; jj < g->nj; jj++)
			for (int i = 0; i < g->n; i++)
				for (int m = 0; m < BTIO_NCOMP; m++)
					u_line(s, kk + 1, jj + 1)[i * BTIO_NCOMP + m] =
						btio_exact_value(s->exact, 0, m, i, g->j0 + jj, g->k0 + kk);
	return s;
}

void btio_solver_free(struct btio_solver *s)
{
	if (!s)
		return;
	if (s->y_face != MPI_DATATYPE_NULL && s->y_face != 0)
		MPI_Type_free(&s->y_face);
	btio_exact_free(s->exact);
	free(s->u);
	free(s->rhs);
	free(s->packed);
	free(s->thomas_c);
	free(s->thomas_inv);
	free(s);
}

/* One layer of halo from each of the four neighbours. */
static void exchange_halo(struct btio_solver *s)
{
	const struct btio_grid *g = &s->g;
	int z_count = (int)((size_t)g->nj * s->line);
	MPI_Sendrecv(u_line(s, 1, 1), 1, s->y_face, g->south, 1,
		     u_line(s, 1, g->nj + 1), 1, s->y_face, g->north, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
	MPI_Sendrecv(u_line(s, 1, g->nj), 1, s->y_face, g->north, 2,
		     u_line(s, 1, 0), 1, s->y_face, g->south, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
	MPI_Sendrecv(u_line(s, 1, 1), z_count, MPI_DOUBLE, g->down, 3,
		     u_line(s, g->nk + 1, 1), z_count, MPI_DOUBLE, g->up, 3, MPI_COMM_WORLD,
		     MPI_STATUS_IGNORE);
	MPI_Sendrecv(u_line(s, g->nk, 1), z_count, MPI_DOUBLE, g->up, 4,
		     u_line(s, 0, 1), z_count, MPI_DOUBLE, g->down, 4, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

/* The explicit half of the step for one interior x line (global j, k):
 * y/z diffusion, coupling and the manufactured forcing, into rhs. */
static void explicit_line(const struct btio_solver *s, int kk, int jj, double *rhs)
{
	const struct btio_exact *e = s->exact;
	int n = s->g.n, j = s->g.j0 + jj, k = s->g.k0 + kk, now = s->step, next = s->step + 1;
	const double *u = u_line(s, kk + 1, jj + 1);
	const double *ys = u_line(s, kk + 1, jj), *yn = u_line(s, kk + 1, jj + 2);
	const double *zd = u_line(s, kk, jj + 1), *zu = u_line(s, kk + 2, jj + 1);
	for (int i = 1; i < n - 1; i++) {
		double exact_now[BTIO_NCOMP], forcing[BTIO_NCOMP];
		for (int m = 0; m < BTIO_NCOMP; m++) {
			double x = e->x[m * n + i], yz = e->y[m * n + j] * e->z[m * n + k];
			double exact_next = offset_of(m, next) + scale_of(m, next) * x * yz;
			exact_now[m] = offset_of(m, now) + scale_of(m, now) * x * yz;
			forcing[m] = exact_next - exact_now[m]
				- A_IMPLICIT * scale_of(m, next) * e->dxx[m * n + i] * yz
				- B_EXPLICIT * scale_of(m, now) * x
					* (e->dyy[m * n + j] * e->z[m * n + k] + e->y[m * n + j] * e->dzz[m * n + k]);
		}
		for (int m = 0; m < BTIO_NCOMP; m++) {
			size_t at = (size_t)i * BTIO_NCOMP + (size_t)m;
			double r = u[at] + B_EXPLICIT * (ys[at] + yn[at] + zd[at] + zu[at] - 4 * u[at]) + forcing[m];
			for (int l = 0; l < BTIO_NCOMP; l++)
				r += coupling(m, l) * (u[i * BTIO_NCOMP + l] - exact_now[l]);
			rhs[at] = r;
		}
	}
}

/* The implicit half: (I - a dxx) u_next = rhs along x, with the exact
 * values at i = 0 and n - 1 as boundary conditions. */
static void implicit_line(struct btio_solver *s, int kk, int jj, const double *rhs)
{
	int n = s->g.n, j = s->g.j0 + jj, k = s->g.k0 + kk, next = s->step + 1;
	double *u = u_line(s, kk + 1, jj + 1), off = -A_IMPLICIT;
	for (int m = 0; m < BTIO_NCOMP; m++) {
		double first = btio_exact_value(s->exact, next, m, 0, j, k);
		double last = btio_exact_value(s->exact, next, m, n - 1, j, k);
		u[m] = first;
		u[(n - 1) * BTIO_NCOMP + m] = last;
		double prev = first;   /* forward sweep: u holds d' */
		for (int i = 1; i < n - 1; i++) {
			double r = rhs[i * BTIO_NCOMP + m] - (i == n - 2 ? off * last : 0);
			prev = (r - off * prev) * s->thomas_inv[i];
			u[i * BTIO_NCOMP + m] = prev;
		}
		for (int i = n - 3; i >= 1; i--)
			u[i * BTIO_NCOMP + m] -= s->thomas_c[i] * u[(i + 1) * BTIO_NCOMP + m];
	}
}

/* Lines on the global y or z boundary are Dirichlet: the exact values. */
static void boundary_line(struct btio_solver *s, int kk, int jj)
{
	double *u = u_line(s, kk + 1, jj + 1);
	for (int i = 0; i < s->g.n; i++)
		for (int m = 0; m < BTIO_NCOMP; m++)
			u[i * BTIO_NCOMP + m] =
				btio_exact_value(s->exact, s->step + 1, m, i, s->g.j0 + jj, s->g.k0 + kk);
}

static int on_boundary(const struct btio_grid *g, int jj, int kk)
{
	int j = g->j0 + jj, k = g->k0 + kk;
	return j == 0 || j == g->n - 1 || k == 0 || k == g->n - 1;
}

void btio_solver_step(struct btio_solver *s)
{
	const struct btio_grid *g = &s->g;
	exchange_halo(s);
	for (int kk = 0; kk < g->nk; kk++)
		for (int jj = 0; jj < g->nj; jj++)
			if (!on_boundary(g, jj, kk))
				explicit_line(s, kk, jj, s->rhs + ((size_t)kk * g->nj + jj) * s->line);
	for (int kk = 0; kk < g->nk; kk++)
		for (int jj = 0; jj < g->nj; jj++) {
			if (on_boundary(g, jj, kk))
				boundary_line(s, kk, jj);
			else
				implicit_line(s, kk, jj, s->rhs + ((size_t)kk * g->nj + jj) * s->line);
		}
	s->step++;
}

const double *btio_solver_pack(struct btio_solver *s)
{
	for (int kk = 0; kk < s->g.nk; kk++)
		for (int jj = 0; jj < s->g.nj; jj++)
			memcpy(s->packed + ((size_t)kk * s->g.nj + jj) * s->line, u_line(s, kk + 1, jj + 1),
			       s->line * sizeof(double));
	return s->packed;
}

double btio_solver_error(const struct btio_solver *s)
{
	double worst = 0;
	for (int kk = 0; kk < s->g.nk; kk++)
		for (int jj = 0; jj < s->g.nj; jj++) {
			const double *u = u_line(s, kk + 1, jj + 1);
			for (int i = 0; i < s->g.n; i++)
				for (int m = 0; m < BTIO_NCOMP; m++) {
					double want = btio_exact_value(s->exact, s->step, m, i, s->g.j0 + jj,
								       s->g.k0 + kk);
					double err = fabs(u[i * BTIO_NCOMP + m] - want) / fmax(1, fabs(want));
					if (err > worst)
						worst = err;
				}
		}
	return worst;
}
