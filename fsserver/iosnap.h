/*
 * iosnap: an I/O server's half of sfs snapshots, kept apart from iosrv.c's
 * data path so that the data path stays a straight line and this file
 * holds every rule about what a snapshot pins.
 *
 * A snapshot's datafiles are hard links: <data>/.snap/<id>/<handle> names
 * the same inode as the live <data>/<handle> had at the cut. Taking a
 * snapshot therefore costs one link(2) per datafile and copies nothing.
 * A live datafile with more than one link is shared with a snapshot; the
 * first write or truncate to it copies it (FICLONE where the file system
 * offers reflinks, else copy_file_range, else read/write) to a private
 * file and renames that over the live name, so the snapshot keeps the old
 * inode untouched (copy-on-write at file granularity). A failed copy
 * (ENOSPC) is removed and fails the write; nothing else changes.
 *
 * The cut: FREEZE makes new writes and truncates wait at the gate and
 * waits for those in progress; LINK or RESTORE run while frozen; THAW
 * lets the writes go. A freeze lapses by itself after its timeout, so a
 * metadata server that dies mid-snapshot cannot hold writers for ever.
 */
#ifndef MIGD_SFSD_IOSNAP_H
#define MIGD_SFSD_IOSNAP_H

#include <stddef.h>
#include <stdint.h>

struct iosnap;

/* Called for every live handle RESTORE replaced and every snapshot handle
 * DROP removed, so the caller forgets cached descriptors of it. */
typedef void (*iosnap_forget_fn)(void *arg, uint64_t handle);

/* data_fd: the data directory (kept open by the caller). Removes what a
 * crash left half-done (copies, restores in progress). */
int iosnap_open(int data_fd, const char *data_dir, iosnap_forget_fn forget, void *forget_arg,
		struct iosnap **out, char *err, size_t errlen);
void iosnap_free(struct iosnap *s);

/* Writes and truncates pass the gate: enter waits while a freeze holds. */
void iosnap_gate_enter(struct iosnap *s);
void iosnap_gate_leave(struct iosnap *s);

/* Make live datafile handle private before it is changed (inside the
 * gate): 1 when it was shared and has been replaced by a copy (reopen
 * it), 0 when it was not shared, or a negative errno with err set. */
int iosnap_unshare(struct iosnap *s, uint64_t handle, char *err, size_t errlen);

int iosnap_freeze(struct iosnap *s, uint64_t snap_id, uint32_t timeout_ms, char *err,
		  size_t errlen);
int iosnap_thaw(struct iosnap *s, uint64_t snap_id, char *err, size_t errlen);
int iosnap_link(struct iosnap *s, uint64_t snap_id, const uint64_t *handles, uint32_t n,
		char *err, size_t errlen);
int iosnap_restore(struct iosnap *s, uint64_t snap_id, const uint64_t *handles, uint32_t n,
		   char *err, size_t errlen);
int iosnap_drop(struct iosnap *s, uint64_t snap_id, char *err, size_t errlen);

/* One snapshot's datafiles and the bytes it pins (bytes no live datafile
 * shares; bytes two snapshots share are split between them). */
int iosnap_stat(struct iosnap *s, uint64_t snap_id, uint64_t *n_files, uint64_t *pinned_bytes,
		char *err, size_t errlen);
/* Every snapshot on this server. */
int iosnap_usage(struct iosnap *s, uint64_t *pinned_bytes, uint64_t *n_snaps);
/* Handles after cookie in ascending order: live datafiles (snap_id 0), a
 * snapshot's, or snapshot ids (SFS_DF_LIST_SNAPS). */
int iosnap_list(struct iosnap *s, uint64_t snap_id, uint64_t cookie, uint64_t *out,
		uint32_t max, uint32_t *n, int *eof, char *err, size_t errlen);

/* Path of a snapshot handle's datafile relative to the data directory. */
void iosnap_handle_path(uint64_t handle, char *out, size_t len);

#endif
