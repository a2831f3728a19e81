/*
 * ior_sfs: -a SFS, the test file lives in an sfs file system reached
 * through libsfs (sfs_open/sfs_pwrite/sfs_pread on the striped file).
 *
 * Each rank connects on its own (libsfs has no shared state between
 * processes), from the sfs.conf given with --sfs.conf or SFS_CONF and the
 * --sfs.opt overrides, so a study can vary socket buffers or request sizes
 * per run without editing the config. Test file names are paths inside sfs;
 * "sfs:/ior/f" (the sfs command's spelling) and "ior/f" both mean "/ior/f".
 */
#include "ior_backend.h"

#include "sfs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sfs_fs {
	struct ior_fs base;
	struct sfs *fs;
};

struct sfs_ior_file {
	struct ior_file base;
	struct sfs_file *f;
	char path[4096];
};

static struct sfs *fs_of(struct ior_fs *fs) { return ((struct sfs_fs *)fs)->fs; }

/* The absolute in-sfs path for a test file name, into buf. */
static const char *sfs_path(const char *name, char *buf, size_t len)
{
	if (strncmp(name, "sfs:", 4) == 0)
		name += 4;
	snprintf(buf, len, "%s%s", name[0] == '/' ? "" : "/", name);
	return buf;
}

/* libsfs's message for the failed call (it names the server involved). */
static int sfs_fail(struct ior_fs *fs, int rc)
{
	const char *msg = sfs_last_error();
	return ior_fail(fs, rc, "%s", msg[0] ? msg : sfs_strerror(rc));
}

static int sfsb_init(const struct ior_backend_conf *conf, struct ior_fs **out, char *err,
		     size_t errlen)
{
	*out = NULL;
	if (!conf->sfs_conf || !conf->sfs_conf[0]) {
		snprintf(err, errlen, "-a SFS needs the file system's config: --sfs.conf PATH or SFS_CONF");
		return -EINVAL;
	}
	struct sfs_fs *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int rc = sfs_connect(conf->sfs_conf, conf->sfs_overrides, &s->fs);
	if (rc < 0) {
		snprintf(err, errlen, "%s", sfs_last_error());
		free(s);
		return rc;
	}
	s->base.ops = &ior_backend_sfs;
	*out = &s->base;
	return 0;
}

static void sfsb_fini(struct ior_fs *fs)
{
	if (!fs)
		return;
	sfs_disconnect(fs_of(fs));
	free(fs);
}

static void sfsb_version(struct ior_fs *fs, char *buf, size_t len)
{
	snprintf(buf, len, "libsfs %s", MIGD_VERSION);
}

static int sfsb_open(struct ior_fs *fs, const char *name, enum ior_open_mode mode, MPI_Comm comm,
		     struct ior_file **out)
{
	int flags = mode == IOR_OPEN_READ ? SFS_O_RDONLY : SFS_O_RDWR;
	if (mode == IOR_OPEN_CREATE)
		flags |= SFS_O_CREAT;
	struct sfs_ior_file *f = calloc(1, sizeof(*f));
	if (!f)
		return ior_fail(fs, -ENOMEM, "open %s: out of memory", name);
	sfs_path(name, f->path, sizeof(f->path));
	int rc = sfs_open(fs_of(fs), f->path, flags, 0664, &f->f);
	if (rc < 0) {
		free(f);
		return sfs_fail(fs, rc);
	}
	f->base.fs = fs;
	*out = &f->base;
	return 0;
}

static ssize_t sfsb_xfer(struct ior_file *file, int is_write, void *buf, size_t len,
			 uint64_t offset)
{
	struct sfs_ior_file *f = (struct sfs_ior_file *)file;
	ssize_t n = is_write ? sfs_pwrite(f->f, buf, len, offset) : sfs_pread(f->f, buf, len, offset);
	if (n < 0)
		return sfs_fail(file->fs, (int)n);
	if ((size_t)n != len) /* pread is short only at the end of the file */
		return ior_fail(file->fs, -EIO, "read %s at offset %llu: end of file after %zd of %zu bytes",
				f->path, (unsigned long long)offset, n, len);
	return n;
}

static int sfsb_fsync(struct ior_file *file)
{
	struct sfs_ior_file *f = (struct sfs_ior_file *)file;
	int rc = sfs_fsync(f->f);
	return rc < 0 ? sfs_fail(file->fs, rc) : 0;
}

static int sfsb_close(struct ior_file *file)
{
	struct sfs_ior_file *f = (struct sfs_ior_file *)file;
	int rc = sfs_close(f->f);
	if (rc < 0)
		sfs_fail(file->fs, rc);
	free(f);
	return rc;
}

static int sfsb_remove(struct ior_fs *fs, const char *name)
{
	char path[4096];
	int rc = sfs_unlink(fs_of(fs), sfs_path(name, path, sizeof(path)));
	return rc < 0 ? sfs_fail(fs, rc) : 0;
}

static int sfsb_get_size(struct ior_fs *fs, const char *name, uint64_t *size_bytes)
{
	char path[4096];
	struct sfs_stat st;
	int rc = sfs_stat(fs_of(fs), sfs_path(name, path, sizeof(path)), &st);
	if (rc < 0)
		return sfs_fail(fs, rc);
	*size_bytes = st.size_bytes;
	return 0;
}

/* mkdir -p of the directories above name: a fresh file system has no /ior,
 * and asking every study to run `sfs mkdir` first is a trap. */
static int sfsb_make_parents(struct ior_fs *fs, const char *name)
{
	char path[4096];
	sfs_path(name, path, sizeof(path));
	for (char *slash = strchr(path + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		int rc = sfs_mkdir(fs_of(fs), path, 0775);
		*slash = '/';
		if (rc < 0 && rc != -EEXIST)
			return sfs_fail(fs, rc);
	}
	return 0;
}

/* Sum over the I/O servers, like pvfs2-statfs: the space data can go to. */
static int sfsb_usage(struct ior_fs *fs, const char *name, struct ior_fs_usage *out)
{
	unsigned n = sfs_server_count(fs_of(fs));
	struct sfs_server_usage *u = calloc(n ? n : 1, sizeof(*u));
	if (!u)
		return ior_fail(fs, -ENOMEM, "statfs: out of memory");
	int rc = sfs_statfs(fs_of(fs), u, n);
	if (rc < 0) {
		free(u);
		return sfs_fail(fs, rc);
	}
	memset(out, 0, sizeof(*out)); /* sfs has no inode limit: total_inodes 0 */
	for (unsigned i = 0; i < n; i++) {
		if (u[i].is_meta || u[i].status < 0)
			continue;
		out->total_bytes += u[i].total_bytes;
		out->free_bytes += u[i].free_bytes;
	}
	free(u);
	return 0;
}

const struct ior_backend ior_backend_sfs = {
	.name = "SFS",
	.collective_open = 0,
	.init = sfsb_init,
	.fini = sfsb_fini,
	.version = sfsb_version,
	.open = sfsb_open,
	.xfer = sfsb_xfer,
	.fsync = sfsb_fsync,
	.close = sfsb_close,
	.remove = sfsb_remove,
	.get_size = sfsb_get_size,
	.make_parents = sfsb_make_parents,
	.usage = sfsb_usage,
};
