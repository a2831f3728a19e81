/*
 * ior_mpiio: -a MPIIO, independent MPI_File_write_at/read_at.
 *
 * The MPI-IO baseline: what a job using MPI-IO directly (ROMIO/OMPIO on a
 * local directory) gets, for comparison with sfs. As in IOR, a shared file
 * is opened collectively by every rank and a file per process on
 * MPI_COMM_SELF; transfers are independent (IOR's default, no -c).
 */
#include "ior_backend.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

struct mpiio_file {
	struct ior_file base;
	MPI_File fh;
	char path[4096];
};

/* Puts "what path: MPI's text for code" into fs->err; returns -EIO
 * (MPI error classes do not map onto errno). */
static int mpiio_fail(struct ior_fs *fs, int code, const char *what, const char *path)
{
	char text[MPI_MAX_ERROR_STRING];
	int len = 0;
	if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
		snprintf(text, sizeof(text), "MPI error %d", code);
	return ior_fail(fs, -EIO, "%s %s: %s", what, path, text);
}

static int mpiio_init(const struct ior_backend_conf *conf, struct ior_fs **out, char *err,
		      size_t errlen)
{
	struct ior_fs *fs = calloc(1, sizeof(*fs));
	if (!fs) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	fs->ops = &ior_backend_mpiio;
	*out = fs;
	return 0;
}

static void mpiio_fini(struct ior_fs *fs) { free(fs); }

static void mpiio_version(struct ior_fs *fs, char *buf, size_t len)
{
	int version = 0, subversion = 0;
	MPI_Get_version(&version, &subversion);
	snprintf(buf, len, "(%d.%d)", version, subversion); /* as IOR prints it */
}

static int mpiio_open(struct ior_fs *fs, const char *path, enum ior_open_mode mode, MPI_Comm comm,
		      struct ior_file **out)
{
	int amode = mode == IOR_OPEN_READ ? MPI_MODE_RDONLY : MPI_MODE_RDWR;
	if (mode == IOR_OPEN_CREATE)
		amode |= MPI_MODE_CREATE;
	struct mpiio_file *f = calloc(1, sizeof(*f));
	if (!f)
		return ior_fail(fs, -ENOMEM, "open %s: out of memory", path);
	/* errors come back as codes, not as an abort of the whole job */
	int rc = MPI_File_open(comm, path, amode, MPI_INFO_NULL, &f->fh);
	if (rc != MPI_SUCCESS) {
		free(f);
		return mpiio_fail(fs, rc, "MPI_File_open", path);
	}
	f->base.fs = fs;
	snprintf(f->path, sizeof(f->path), "%s", path);
	*out = &f->base;
	return 0;
}

static ssize_t mpiio_xfer(struct ior_file *file, int is_write, void *buf, size_t len,
			  uint64_t offset)
{
	struct mpiio_file *f = (struct mpiio_file *)file;
	MPI_Status status;
	int count = 0;
	if (len > INT_MAX) /* the count argument is an int */
		return ior_fail(file->fs, -EINVAL, "%s: transfer of %zu bytes is over MPI-IO's 2 GiB limit",
				f->path, len);
	int rc = is_write ? MPI_File_write_at(f->fh, (MPI_Offset)offset, buf, (int)len, MPI_BYTE, &status)
			  : MPI_File_read_at(f->fh, (MPI_Offset)offset, buf, (int)len, MPI_BYTE, &status);
	if (rc != MPI_SUCCESS)
		return mpiio_fail(file->fs, rc, is_write ? "MPI_File_write_at" : "MPI_File_read_at", f->path);
	MPI_Get_count(&status, MPI_BYTE, &count);
	if ((size_t)count != len)
		return ior_fail(file->fs, -EIO, "%s %s at offset %llu: moved %d of %zu bytes",
				is_write ? "write" : "read", f->path, (unsigned long long)offset, count, len);
	return (ssize_t)len;
}

static int mpiio_fsync(struct ior_file *file)
{
	struct mpiio_file *f = (struct mpiio_file *)file;
	int rc = MPI_File_sync(f->fh);
	return rc == MPI_SUCCESS ? 0 : mpiio_fail(file->fs, rc, "MPI_File_sync", f->path);
}

static int mpiio_close(struct ior_file *file)
{
	struct mpiio_file *f = (struct mpiio_file *)file;
	int rc = MPI_File_close(&f->fh);
	int ret = rc == MPI_SUCCESS ? 0 : mpiio_fail(file->fs, rc, "MPI_File_close", f->path);
	free(f);
	return ret;
}

static int mpiio_remove(struct ior_fs *fs, const char *path)
{
	int rc = MPI_File_delete(path, MPI_INFO_NULL);
	if (rc == MPI_SUCCESS)
		return 0;
	int cls = 0;
	MPI_Error_class(rc, &cls);
	if (cls == MPI_ERR_NO_SUCH_FILE)
		return ior_fail(fs, -ENOENT, "MPI_File_delete %s: no such file", path);
	return mpiio_fail(fs, rc, "MPI_File_delete", path);
}

static int mpiio_get_size(struct ior_fs *fs, const char *path, uint64_t *size_bytes)
{
	MPI_File fh;
	MPI_Offset size = 0;
	int rc = MPI_File_open(MPI_COMM_SELF, path, MPI_MODE_RDONLY, MPI_INFO_NULL, &fh);
	if (rc != MPI_SUCCESS)
		return mpiio_fail(fs, rc, "MPI_File_open", path);
	rc = MPI_File_get_size(fh, &size);
	MPI_File_close(&fh);
	if (rc != MPI_SUCCESS)
		return mpiio_fail(fs, rc, "MPI_File_get_size", path);
	*size_bytes = (uint64_t)size;
	return 0;
}

const struct ior_backend ior_backend_mpiio = {
	.name = "MPIIO",
	.collective_open = 1,
	.init = mpiio_init,
	.fini = mpiio_fini,
	.version = mpiio_version,
	.open = mpiio_open,
	.xfer = mpiio_xfer,
	.fsync = mpiio_fsync,
	.close = mpiio_close,
	.remove = mpiio_remove,
	.get_size = mpiio_get_size,
	.make_parents = NULL,
	.usage = ior_local_usage, /* MPI-IO has no statfs; the directory is local */
};
