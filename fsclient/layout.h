/*
 * layout: the arithmetic of round-robin striping (PVFS2's simple_stripe).
 *
 * Strip k of a file (bytes [k*S, (k+1)*S)) lives on stripe position
 * k mod C, in that server's datafile at local strip k div C. So a
 * contiguous file range maps to one contiguous local range on each server:
 * the client sends each server one vectored request for its part.
 * Pure functions, no I/O, so every boundary is tested in isolation.
 */
#ifndef SFS_LAYOUT_H
#define SFS_LAYOUT_H

#include <stdint.h>

#include "sfs_proto.h"

/* File offset -> (stripe position, offset within that datafile). */
void layout_locate(const struct sfs_layout *l, uint64_t file_off, unsigned *pos,
		   uint64_t *local_off);
/* (stripe position, datafile offset) -> file offset. */
uint64_t layout_file_offset(const struct sfs_layout *l, unsigned pos, uint64_t local_off);
/* Bytes of a file of file_size that datafile pos holds. */
uint64_t layout_local_size(const struct sfs_layout *l, unsigned pos, uint64_t file_size);
/* Smallest file size consistent with datafile pos holding local_size bytes. */
uint64_t layout_size_from_local(const struct sfs_layout *l, unsigned pos, uint64_t local_size);
/* The part of file range [off, off+len) on datafile pos: [*lo, *hi), empty when *lo == *hi. */
void layout_local_range(const struct sfs_layout *l, unsigned pos, uint64_t off, uint64_t len,
			uint64_t *lo, uint64_t *hi);

#endif
