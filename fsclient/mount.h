/*
 * mount: the FUSE file system of `sfs mount`, on libfuse3's low-level API.
 *
 * The process is one libsfs client: every FUSE request becomes one libsfs
 * call (a 1 MiB read or write one striped sfs_pread/sfs_pwrite to every
 * server of the stripe at once), and because libsfs's admission gate sits
 * under every call, migagent's quiesce holds every program using the mount
 * exactly as it holds programs linked to libsfs.
 *
 * mount_cmd.c owns the command line, the checks before mounting and the
 * session; this module only answers requests.
 */
#ifndef SFS_MOUNT_H
#define SFS_MOUNT_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "sfs.h"

#define MOUNT_IO_BYTES (1u << 20) /* max_write, max_read, readahead */

struct mount_opts {
	int cache;              /* page cache and long timeouts (one client only) */
	double attr_timeout_s;  /* < 0: the mode's default */
	double entry_timeout_s; /* < 0: the mode's default */
};

struct mount;

/* A mount answering with fs (not owned: connect after daemonizing, so the
 * control point's thread lives in the serving process). NULL: no memory. */
struct mount *mount_new(const struct mount_opts *opts);
void mount_set_fs(struct mount *m, struct sfs *fs);
void mount_free(struct mount *m);
/* The operations, for fuse_session_new with m as userdata. */
const struct fuse_lowlevel_ops *mount_ops(void);

#endif
