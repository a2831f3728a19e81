/*
 * ior_backend: the table of interfaces -a chooses from, and the error helper
 * every backend shares (see ior_backend.h).
 */
#include "ior_backend.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>

static const struct ior_backend *const backends[] = {
	&ior_backend_sfs,
	&ior_backend_posix,
	&ior_backend_mpiio,
};

const struct ior_backend *ior_backend_find(const char *name)
{
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strcasecmp(backends[i]->name, name) == 0)
			return backends[i];
	return NULL;
}

int ior_fail(struct ior_fs *fs, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(fs->err, sizeof(fs->err), fmt, ap);
	va_end(ap);
	return err;
}

int ior_local_usage(struct ior_fs *fs, const char *path, struct ior_fs_usage *out)
{
	struct statvfs sv;
	if (statvfs(path, &sv) < 0)
		return ior_fail(fs, -errno, "statvfs %s: %s", path, strerror(errno));
	out->total_bytes = (uint64_t)sv.f_blocks * sv.f_frsize;
	out->free_bytes = (uint64_t)sv.f_bfree * sv.f_frsize;
	out->total_inodes = sv.f_files;
	out->free_inodes = sv.f_ffree;
	return 0;
}
