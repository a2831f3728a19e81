/*
 * btio_io: btio's dumps through libsfs (--api sfs) or POSIX calls on a
 * path of any file system (--api posix: an sfs mount, to run the same job
 * through the mount and through libsfs), in BT-IO's two layouts.
 *
 * A dump is the whole solution in BT's array order u(5, n, n, n): the five
 * fields of a point together, x fastest, then y, then z. Dump d of a run
 * sits at d * (its size) in its file.
 *
 * full: one shared file, every rank writing its own block at the block's
 *   offsets in the global array. A rank holds whole x lines for a range of
 *   y in each of its z planes, and those lines are adjacent in the file, so
 *   a rank writes one contiguous run per z plane (BT-IO full does the same
 *   pieces through MPI-IO's collective buffering).
 * epio: one file per rank (PATH.RANK, six digits), its block packed
 *   [k][j][i][m] and written with one call per dump.
 *
 * Every failure message names the file and the offset. Reading back goes
 * through the same pieces and compares each double with the closed-form
 * solution (btio_exact_value), so a later --verify-only run can check the
 * dumps of an earlier --keep run without anything of it in memory.
 *
 * The two APIs differ only in the handful of calls below (file_*); each
 * returns 0 or a byte count, or a negative errno, and io_why() gives the
 * message of the last failure: libsfs's own, or strerror.
 */
#include "btio.h"

#include "sfs.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct btio_io {
	const struct btio_params *p;
	struct btio_grid g;
	int posix;        /* --api posix: fd, else fs and file */
	struct sfs *fs;
	struct sfs_file *file;
	int fd;
	char path[4096];
	struct btio_exact *exact;
	double *buf;      /* one dump part, for reading back */
};

/* The message of the call that failed with rc. */
static const char *io_why(const struct btio_io *io, int rc)
{
	if (io->posix)
		return strerror(-rc);
	const char *why = sfs_last_error();
	return why[0] ? why : sfs_strerror(rc);
}

/* The message for the failed call, with the offset it was at. */
static int io_fail(const struct btio_io *io, int rc, char *err, size_t errlen, const char *what,
		   uint64_t offset)
{
	snprintf(err, errlen, "%s %s at offset %llu: %s", what, io->path,
		 (unsigned long long)offset, io_why(io, rc));
	return rc;
}

static int file_mkdir(struct btio_io *io, const char *dir)
{
	if (!io->posix)
		return sfs_mkdir(io->fs, dir, 0775);
	return mkdir(dir, 0775) < 0 ? -errno : 0;
}

/* Open io->path: create (truncating), read-write or read-only. */
static int file_open(struct btio_io *io, int create, int writable)
{
	if (!io->posix)
		return sfs_open(io->fs, io->path,
				create ? SFS_O_RDWR | SFS_O_CREAT | SFS_O_TRUNC
				       : writable ? SFS_O_RDWR : SFS_O_RDONLY, 0664, &io->file);
	io->fd = open(io->path, create ? O_RDWR | O_CREAT | O_TRUNC : writable ? O_RDWR : O_RDONLY,
		      0664);
	return io->fd < 0 ? -errno : 0;
}

static int file_is_open(const struct btio_io *io)
{
	return io->posix ? io->fd >= 0 : io->file != NULL;
}

/* bytes at offset; the byte count, short only at the end of the file */
static ssize_t file_transfer(struct btio_io *io, int write, void *data, size_t bytes,
			     uint64_t offset)
{
	if (!io->posix)
		return write ? sfs_pwrite(io->file, data, bytes, offset)
			     : sfs_pread(io->file, data, bytes, offset);
	size_t done = 0;
	while (done < bytes) {
		ssize_t n = write ? pwrite(io->fd, (char *)data + done, bytes - done,
					   (off_t)(offset + done))
				  : pread(io->fd, (char *)data + done, bytes - done,
					  (off_t)(offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static int file_sync(struct btio_io *io)
{
	if (!io->posix)
		return sfs_fsync(io->file);
	return fsync(io->fd) < 0 ? -errno : 0;
}

static int file_close(struct btio_io *io)
{
	if (!io->posix)
		return io->file ? sfs_close(io->file) : 0;
	int rc = io->fd >= 0 && close(io->fd) < 0 ? -errno : 0;
	io->fd = -1;
	return rc;
}

static int file_unlink(struct btio_io *io)
{
	if (!io->posix)
		return sfs_unlink(io->fs, io->path);
	return unlink(io->path) < 0 ? -errno : 0;
}

/* mkdir -p of the directories above path (a fresh file system has none). */
static int make_parents(struct btio_io *io, char *err, size_t errlen)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", io->path);
	for (char *slash = strchr(dir + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		int rc = file_mkdir(io, dir);
		*slash = '/';
		if (rc < 0 && rc != -EEXIST) {
			snprintf(err, errlen, "mkdir %s: %s", dir, io_why(io, rc));
			return rc;
		}
	}
	return 0;
}

/* Open (or create) this rank's file; in full mode rank 0 creates the
 * shared file before the others open it. Collective in full mode. */
static int open_file(struct btio_io *io, int create, char *err, size_t errlen)
{
	int shared = io->p->mode == BTIO_FULL, rc = 0;
	if (create && (!shared || io->g.rank == 0)) {
		rc = make_parents(io, err, errlen);
		if (rc == 0)
			rc = file_open(io, 1, 1);
	}
	if (shared) {
		int failed = rc < 0, any = 0;
		MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
		if (any && rc == 0)
			return -ECANCELED; /* rank 0 says why */
	}
	if (rc == 0 && !file_is_open(io))
		rc = file_open(io, 0, create);
	if (rc < 0 && !err[0])
		snprintf(err, errlen, "open %s: %s", io->path, io_why(io, rc));
	return rc;
}

int btio_io_open(const struct btio_params *p, const struct btio_grid *g, int create,
		 struct btio_io **out, char *err, size_t errlen)
{
	*out = NULL;
	err[0] = '\0';
	struct btio_io *io = calloc(1, sizeof(*io));
	if (!io) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	io->p = p;
	io->g = *g;
	io->posix = p->api == BTIO_API_POSIX;
	io->fd = -1;
	if (p->mode == BTIO_FULL)
		snprintf(io->path, sizeof(io->path), "%s", p->path);
	else
		snprintf(io->path, sizeof(io->path), "%s.%06d", p->path, g->rank);
	io->exact = btio_exact_new(g->n);
	io->buf = malloc(btio_local_bytes(g));
	int rc = 0;
	if (!io->exact || !io->buf) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
	} else if (!io->posix && (rc = sfs_connect(p->sfs_conf, NULL, &io->fs)) < 0) {
		snprintf(err, errlen, "%s: %s", p->sfs_conf, sfs_last_error());
	}
	/* every rank must reach open_file's collective, or none */
	int failed = rc < 0, any = 0;
	MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
	if (!any)
		rc = open_file(io, create, err, errlen);
	else if (rc == 0)
		rc = -ECANCELED; /* another rank's failure; it says why */
	if (rc < 0) {
		char ignored[8];
		btio_io_close(io, 0, ignored, sizeof(ignored));
		return rc;
	}
	*out = io;
	return 0;
}

const char *btio_io_path(const struct btio_io *io) { return io->path; }

/* Where this rank's z plane kk of dump d starts in its file, and its bytes. */
static uint64_t plane_offset(const struct btio_io *io, int d, int kk)
{
	const struct btio_grid *g = &io->g;
	uint64_t line = (uint64_t)g->n * BTIO_NCOMP * sizeof(double);
	if (io->p->mode == BTIO_EPIO)
		return (uint64_t)d * btio_local_bytes(g) + (uint64_t)kk * (uint64_t)g->nj * line;
	uint64_t n = (uint64_t)g->n;
	return (uint64_t)d * btio_dump_bytes(g->n) + ((uint64_t)(g->k0 + kk) * n + (uint64_t)g->j0) * line;
}

/* Read (write 0) or write dump d's part of this rank through buf, one call
 * per contiguous piece. */
static int transfer(struct btio_io *io, int write, int d, double *buf, char *err, size_t errlen)
{
	const struct btio_grid *g = &io->g;
	int pieces = io->p->mode == BTIO_EPIO ? 1 : g->nk;
	size_t piece_bytes = (size_t)(btio_local_bytes(g) / (uint64_t)pieces);
	for (int at = 0; at < pieces; at++) {
		uint64_t offset = plane_offset(io, d, at * (g->nk / pieces));
		char *data = (char *)buf + (size_t)at * piece_bytes;
		ssize_t n = file_transfer(io, write, data, piece_bytes, offset);
		if (n < 0)
			return io_fail(io, (int)n, err, errlen, write ? "write" : "read", offset);
		if ((size_t)n != piece_bytes) {
			snprintf(err, errlen, "read %s at offset %llu: end of file after %zd of %zu bytes "
				 "(dump %d not there)", io->path, (unsigned long long)offset, n, piece_bytes, d + 1);
			return -EIO;
		}
	}
	return 0;
}

int btio_io_write(struct btio_io *io, int d, const double *packed, char *err, size_t errlen)
{
	return transfer(io, 1, d, (double *)packed, err, errlen);
}

int btio_io_sync(struct btio_io *io, char *err, size_t errlen)
{
	int rc = file_sync(io);
	if (rc < 0)
		snprintf(err, errlen, "fsync %s: %s", io->path, io_why(io, rc));
	return rc;
}

int btio_io_verify(struct btio_io *io, int d, struct btio_bad_value *bad, char *err, size_t errlen)
{
	const struct btio_grid *g = &io->g;
	int step = btio_dump_step(d);
	memset(bad, 0, sizeof(*bad));
	int rc = transfer(io, 0, d, io->buf, err, errlen);
	if (rc < 0)
		return rc;
	size_t at = 0;
	for (int kk = 0; kk < g->nk; kk++)
		for (int jj = 0; jj < g->nj; jj++)
			for (int i = 0; i < g->n; i++)
				for (int m = 0; m < BTIO_NCOMP; m++, at++) {
					double want = btio_exact_value(io->exact, step, m, i, g->j0 + jj, g->k0 + kk);
					double got = io->buf[at];
					/* written as !(<=) so that a NaN counts as wrong */
					if (fabs(got - want) <= BTIO_TOLERANCE * fmax(1, fabs(want)))
						continue;
					if (bad->count++ > 0)
						continue;
					size_t in_plane = at - (size_t)kk * (size_t)g->nj * (size_t)g->n * BTIO_NCOMP;
					bad->offset = plane_offset(io, d, kk) + in_plane * sizeof(double);
					bad->m = m, bad->i = i, bad->j = g->j0 + jj, bad->k = g->k0 + kk;
					bad->got = got, bad->expected = want;
				}
	return 0;
}

int btio_io_close(struct btio_io *io, int remove, char *err, size_t errlen)
{
	int rc = 0;
	if (!io)
		return 0;
	rc = file_close(io);
	if (rc < 0)
		snprintf(err, errlen, "close %s: %s", io->path, io_why(io, rc));
	if (remove && (io->p->mode == BTIO_EPIO || io->g.rank == 0)) {
		int urc = file_unlink(io);
		if (urc < 0 && rc == 0) {
			snprintf(err, errlen, "remove %s: %s", io->path, io_why(io, urc));
			rc = urc;
		}
	}
	sfs_disconnect(io->fs);
	btio_exact_free(io->exact);
	free(io->buf);
	free(io);
	return rc;
}
