/*
 * mount_nodes: the inode table of sfs mount.
 *
 * FUSE's low-level API names files by inode number; libsfs's namespace
 * calls name them by path. An inode number here is the file's fid (fids
 * are never reused, and the root's fid is 1 like FUSE_ROOT_ID), so no
 * number has to be invented or kept stable; the table only remembers, for
 * every inode the kernel holds, its parent and its name, to build the path
 * a namespace call needs. The kernel's lookup counts decide when an entry
 * goes (forget). A rename by another client leaves a stale name here until
 * the kernel looks the entry up again (after entry_timeout); calls on it
 * meanwhile fail with ENOENT, as on NFS.
 *
 * It also counts the opens of every inode, for the "silly rename" that
 * keeps an unlinked open file readable: unlink of a file open here renames
 * it to a hidden name, and its last close removes it.
 */
#ifndef SFS_MOUNT_NODES_H
#define SFS_MOUNT_NODES_H

#include <stddef.h>
#include <stdint.h>

struct nodes;

/* A table that knows the root (fid 1). NULL when out of memory. */
struct nodes *nodes_new(void);
void nodes_free(struct nodes *n);

/* fid is called name in directory parent; adds lookups to its count (the
 * kernel's nlookup: 1 per entry reply, 0 for a rename). -ENOMEM. */
int nodes_remember(struct nodes *n, uint64_t fid, uint64_t parent, const char *name,
		   uint64_t lookups);
/* The kernel dropped lookups references: at 0 (and no open) fid goes. */
void nodes_forget(struct nodes *n, uint64_t fid, uint64_t lookups);
/* "/a/b" of fid, or with name != NULL of name inside directory fid.
 * -ESTALE for an inode the table does not know, -ENAMETOOLONG. */
int nodes_path(struct nodes *n, uint64_t fid, const char *name, char *buf, size_t len);

/* Opens of fid: nodes_open when an open succeeded; nodes_close returns 1
 * when it was the last one and fid was unlinked while open (the caller
 * removes *hidden_path then), else 0. */
void nodes_open(struct nodes *n, uint64_t fid);
int nodes_close(struct nodes *n, uint64_t fid, char *hidden_path, size_t len);
/* 1 if fid is open through this mount. */
int nodes_is_open(struct nodes *n, uint64_t fid);
/* fid, open here, was renamed to a hidden name in parent: remember it. */
void nodes_hide(struct nodes *n, uint64_t fid, uint64_t parent, const char *hidden_name);
/* A lock was taken on fid through this mount (then every close of it must
 * clear the closing process's locks); 1 if ever so while fid is known. */
void nodes_mark_locked(struct nodes *n, uint64_t fid);
int nodes_was_locked(struct nodes *n, uint64_t fid);

#endif
