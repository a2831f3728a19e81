/*
 * meta_locks: the metadata server's lock manager, for fcntl byte-range
 * locks and flock whole-file locks taken through any client (sfs mount
 * passes its programs' locks here, so they hold across guests).
 *
 * A lock belongs to (session, owner): the session is one libsfs client
 * (random, chosen at sfs_connect), the owner whoever inside it holds the
 * lock (the kernel's lock owner: a process for fcntl, an open file for
 * flock). Requests never wait on the server: a conflict answers -EAGAIN at
 * once and the client retries, so a waiting F_SETLKW holds no server
 * thread and no client channel (migagent's quiesce never waits on it).
 *
 * A session's locks go when the last connection that carried one of its
 * lock requests closes: a client that exits or is killed loses them at
 * once, and a client that vanishes without closing (a dead guest) within
 * the TCP keepalive the metadata server sets on its connections (about
 * 16 s): that is the lease.
 */
#ifndef MIGD_META_LOCKS_H
#define MIGD_META_LOCKS_H

#include <stdint.h>

#include "sfs_proto.h"

struct lock_table;

struct lock_table *locks_new(void);
void locks_free(struct lock_table *t);

/* LOCK: 0, or -EAGAIN when another owner holds a conflicting lock.
 * SFS_LK_UN clears the owner's locks in the range (a whole-file flock
 * unlock clears its flock). */
int locks_set(struct lock_table *t, const struct sfs_req *req);
/* GETLK: the first lock of another owner that conflicts with the request
 * into reply->lk_* (pid only when it is of the same session), or lk_type
 * SFS_LK_UN. */
void locks_test(struct lock_table *t, const struct sfs_req *req, struct sfs_reply *reply);

/*
 * A file's append lock (O_APPEND across clients): held by one connection
 * (owner) at a time while it reads the size and writes there. take waits
 * for it; a holder that keeps it past lease_ms (a client that stopped
 * without closing its connection) loses it, and *taken_from_ms then says
 * how long it had held it. -EDEADLK when owner holds it already.
 */
int locks_append_take(struct lock_table *t, uint64_t fid, const void *owner, uint64_t lease_ms,
		      uint64_t *taken_from_ms);
/* Give back owner's append lock of fid, or every one of owner's (fid 0). */
void locks_append_release(struct lock_table *t, const void *owner, uint64_t fid);

/* A connection carried a lock request of session (first time: *conn_session
 * is 0, set it). -EINVAL when it already belongs to another session. */
int locks_conn_join(struct lock_table *t, uint64_t *conn_session, uint64_t session);
/* The connection closed: the session's locks go with its last connection. */
void locks_conn_leave(struct lock_table *t, uint64_t conn_session);

#endif
