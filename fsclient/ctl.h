/*
 * ctl: libsfs's control point, the client half of migagent (agent/).
 *
 * At sfs_connect, if migagent's local socket accepts a connection, the
 * client registers (pid, comm) and a small control thread serves the
 * agent; if not, fs->ctl stays NULL and every hook below is skipped by one
 * predictable branch, so a client without an agent pays nothing.
 *
 * The admission gate sits where every request begins: taking a channel
 * (client_chan_get). Open, it costs an atomic increment and an atomic load.
 * On QUIESCE the control thread closes it (new callers block on a condvar
 * and never see an error), waits for the calls in flight to finish, has
 * the I/O servers make every file written since the last quiesce durable
 * (DF_SYNC), and reports what it drained; RESUME opens the gate, and a
 * RESUME with reconnect (after a restore from a checkpoint) first closes
 * every server connection so the next requests connect afresh. If the
 * agent's socket closes while the gate is closed, the connections are
 * dropped the same way and the gate opens by itself.
 * The control thread's own requests bypass the gate.
 */
#ifndef SFS_CTL_H
#define SFS_CTL_H

#include <stdint.h>

#include "sfs_proto.h"

struct sfs;
struct ctl;

/* Register with the agent named by the config / SFS_AGENT_SOCKET and start
 * the control thread; NULL when disabled or no agent answers. */
struct ctl *ctl_start(struct sfs *fs);
/* Stop the thread, open the gate, free. NULL is fine. */
void ctl_stop(struct ctl *c);

/* Admission: every call that takes a channel enters first and leaves when
 * it gives the channel back. enter blocks while the gate is closed. */
void ctl_enter(struct ctl *c);
void ctl_leave(struct ctl *c);

/* A pread (write 0) or pwrite (write 1) of bytes completed. */
void ctl_count(struct ctl *c, int write, uint64_t bytes);
/* The file fid (layout l) was written or truncated: the next quiesce makes
 * it durable. *epoch is the file's memo of the quiesce epoch it was last
 * recorded in (0 = never), so a file costs the lock once per epoch. */
void ctl_touch(struct ctl *c, uint64_t fid, const struct sfs_layout *l, unsigned *epoch);

#endif
