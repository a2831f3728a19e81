/* layout: see layout.h. */
#include "layout.h"

void layout_locate(const struct sfs_layout *l, uint64_t file_off, unsigned *pos,
		   uint64_t *local_off)
{
	uint64_t strip = file_off / l->strip_size;
	*pos = (unsigned)(strip % l->stripe_count);
	*local_off = (strip / l->stripe_count) * l->strip_size + file_off % l->strip_size;
}

uint64_t layout_file_offset(const struct sfs_layout *l, unsigned pos, uint64_t local_off)
{
	uint64_t local_strip = local_off / l->strip_size;
	return (local_strip * l->stripe_count + pos) * l->strip_size + local_off % l->strip_size;
}

uint64_t layout_local_size(const struct sfs_layout *l, unsigned pos, uint64_t file_size)
{
	uint64_t stripe_bytes = (uint64_t)l->strip_size * l->stripe_count;
	uint64_t full = file_size / stripe_bytes;     /* whole stripes */
	uint64_t rest = file_size % stripe_bytes;     /* bytes in the last, partial stripe */
	uint64_t before = (uint64_t)pos * l->strip_size;
	uint64_t tail = 0;
	if (rest > before)
		tail = rest - before < l->strip_size ? rest - before : l->strip_size;
	return full * l->strip_size + tail;
}

uint64_t layout_size_from_local(const struct sfs_layout *l, unsigned pos, uint64_t local_size)
{
	if (local_size == 0)
		return 0;
	return layout_file_offset(l, pos, local_size - 1) + 1;
}

/* First local offset on pos whose file offset is >= off. */
static uint64_t local_ceil(const struct sfs_layout *l, unsigned pos, uint64_t off)
{
	unsigned p;
	uint64_t local;
	layout_locate(l, off, &p, &local);
	if (p == pos)
		return local;
	uint64_t local_strip = local / l->strip_size;
	/* off lies on another server: pos's next strip starts this stripe (if pos is
	 * later in it) or the next stripe. */
	return (p < pos ? local_strip : local_strip + 1) * l->strip_size;
}

void layout_local_range(const struct sfs_layout *l, unsigned pos, uint64_t off, uint64_t len,
			uint64_t *lo, uint64_t *hi)
{
	*lo = local_ceil(l, pos, off);
	*hi = local_ceil(l, pos, off + len);
	if (*hi < *lo)
		*hi = *lo;
}
