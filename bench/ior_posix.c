/*
 * ior_posix: -a POSIX, plain open/pwrite/pread/fsync on a local path.
 *
 * The native baseline next to -a SFS: the same offsets, pattern and timing
 * against tmpfs or a local disk, so a figure for sfs can be read against
 * what the machine itself does. Like IOR's POSIX module, short transfers
 * are retried until the whole request moved.
 */
#include "ior_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct posix_file {
	struct ior_file base;
	int fd;
	char path[4096];
};

static int posix_init(const struct ior_backend_conf *conf, struct ior_fs **out, char *err,
		      size_t errlen)
{
	struct ior_fs *fs = calloc(1, sizeof(*fs));
	if (!fs) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	fs->ops = &ior_backend_posix;
	*out = fs;
	return 0;
}

static void posix_fini(struct ior_fs *fs) { free(fs); }

static void posix_version(struct ior_fs *fs, char *buf, size_t len)
{
	/* IOR leaves apiVersion empty for POSIX */
	if (len)
		buf[0] = '\0';
}

static int posix_open(struct ior_fs *fs, const char *path, enum ior_open_mode mode, MPI_Comm comm,
		      struct ior_file **out)
{
	int flags = mode == IOR_OPEN_READ ? O_RDONLY : O_RDWR;
	if (mode == IOR_OPEN_CREATE)
		flags |= O_CREAT;
	struct posix_file *f = calloc(1, sizeof(*f));
	if (!f)
		return ior_fail(fs, -ENOMEM, "open %s: out of memory", path);
	f->fd = open(path, flags, 0664);
	if (f->fd < 0) {
		int rc = -errno;
		free(f);
		return ior_fail(fs, rc, "open %s: %s", path, strerror(-rc));
	}
	f->base.fs = fs;
	snprintf(f->path, sizeof(f->path), "%s", path);
	*out = &f->base;
	return 0;
}

static ssize_t posix_xfer(struct ior_file *file, int is_write, void *buf, size_t len,
			  uint64_t offset)
{
	struct posix_file *f = (struct posix_file *)file;
	size_t done = 0;
	while (done < len) {
		ssize_t n = is_write ? pwrite(f->fd, (char *)buf + done, len - done, (off_t)(offset + done))
				     : pread(f->fd, (char *)buf + done, len - done, (off_t)(offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ior_fail(file->fs, -errno, "%s %s at offset %llu: %s",
					is_write ? "write" : "read", f->path,
					(unsigned long long)(offset + done), strerror(errno));
		if (n == 0) /* a read past the end: the file is shorter than the test */
			return ior_fail(file->fs, -EIO, "read %s at offset %llu: end of file", f->path,
					(unsigned long long)(offset + done));
		done += (size_t)n;
	}
	return (ssize_t)len;
}

static int posix_fsync(struct ior_file *file)
{
	struct posix_file *f = (struct posix_file *)file;
	if (fsync(f->fd) < 0)
		return ior_fail(file->fs, -errno, "fsync %s: %s", f->path, strerror(errno));
	return 0;
}

static int posix_close(struct ior_file *file)
{
	struct posix_file *f = (struct posix_file *)file;
	int rc = 0;
	if (close(f->fd) < 0)
		rc = ior_fail(file->fs, -errno, "close %s: %s", f->path, strerror(errno));
	free(f);
	return rc;
}

static int posix_remove(struct ior_fs *fs, const char *path)
{
	if (unlink(path) < 0)
		return ior_fail(fs, -errno, "unlink %s: %s", path, strerror(errno));
	return 0;
}

static int posix_get_size(struct ior_fs *fs, const char *path, uint64_t *size_bytes)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return ior_fail(fs, -errno, "stat %s: %s", path, strerror(errno));
	*size_bytes = (uint64_t)st.st_size;
	return 0;
}

const struct ior_backend ior_backend_posix = {
	.name = "POSIX",
	.collective_open = 0,
	.init = posix_init,
	.fini = posix_fini,
	.version = posix_version,
	.open = posix_open,
	.xfer = posix_xfer,
	.fsync = posix_fsync,
	.close = posix_close,
	.remove = posix_remove,
	.get_size = posix_get_size,
	.make_parents = NULL, /* IOR does not create directories for -a POSIX */
	.usage = ior_local_usage,
};
