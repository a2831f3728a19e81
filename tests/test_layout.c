/*
 * Layout arithmetic at every boundary, checked against a byte-by-byte
 * model of round-robin striping: strip k of the file lives on position
 * k mod C at local strip k div C.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "layout.h"

static struct sfs_layout mk(uint32_t strip, unsigned count)
{
	struct sfs_layout l;
	memset(&l, 0, sizeof(l));
	l.strip_size = strip;
	l.stripe_count = (uint16_t)count;
	for (unsigned i = 0; i < count; i++)
		l.servers[i] = (uint16_t)i;
	return l;
}

/* The model: walk strips one by one. */
static void model_locate(uint32_t strip, unsigned count, uint64_t off, unsigned *pos,
			 uint64_t *local)
{
	uint64_t k = 0, base = 0;
	while (base + strip <= off) {
		base += strip;
		k++;
	}
	*pos = (unsigned)(k % count);
	*local = (k / count) * strip + (off - base);
}

static const uint32_t strips[] = { 512, 1000, 4096, 65536 };

Test(layout, locate_matches_model_at_every_boundary)
{
	for (size_t s = 0; s < sizeof(strips) / sizeof(strips[0]); s++) {
		for (unsigned c = 1; c <= 8; c++) {
			struct sfs_layout l = mk(strips[s], c);
			uint64_t stripe = (uint64_t)strips[s] * c;
			/* offsets around every strip boundary of three stripes */
			for (uint64_t b = 0; b <= 3 * stripe; b += strips[s]) {
				for (int d = -1; d <= 1; d++) {
					if (b == 0 && d < 0)
						continue;
					uint64_t off = b + (uint64_t)(int64_t)d;
					unsigned p, mp;
					uint64_t lo, mlo;
					layout_locate(&l, off, &p, &lo);
					model_locate(strips[s], c, off, &mp, &mlo);
					cr_assert_eq(p, mp, "strip %u count %u off %lu", strips[s], c,
						     (unsigned long)off);
					cr_assert_eq(lo, mlo, "strip %u count %u off %lu", strips[s],
						     c, (unsigned long)off);
					cr_assert_eq(layout_file_offset(&l, p, lo), off,
						     "round trip strip %u count %u off %lu",
						     strips[s], c, (unsigned long)off);
				}
			}
		}
	}
}

Test(layout, huge_offsets_round_trip)
{
	struct sfs_layout l = mk(65536, 7);
	uint64_t offs[] = { (1ull << 40) + 3, (1ull << 50) - 1, (1ull << 62) + 65535 };
	for (size_t i = 0; i < 3; i++) {
		unsigned p;
		uint64_t lo;
		layout_locate(&l, offs[i], &p, &lo);
		cr_assert_lt(p, 7u);
		cr_assert_eq(layout_file_offset(&l, p, lo), offs[i]);
	}
}

/* Sizes from 1 byte to several stripes: local sizes add up, and each
 * datafile's size gives back a file size no larger than the real one, the
 * largest of them equal to it. */
Test(layout, local_sizes_add_up_and_derive_the_file_size)
{
	for (size_t s = 0; s < sizeof(strips) / sizeof(strips[0]); s++) {
		for (unsigned c = 1; c <= 8; c++) {
			struct sfs_layout l = mk(strips[s], c);
			uint64_t stripe = (uint64_t)strips[s] * c;
			uint64_t sizes[] = { 0, 1, strips[s] - 1, strips[s], strips[s] + 1,
					     stripe - 1, stripe, stripe + 1, 3 * stripe + 7,
					     5 * stripe - strips[s] };
			for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
				uint64_t total = 0, derived = 0;
				for (unsigned p = 0; p < c; p++) {
					uint64_t loc = layout_local_size(&l, p, sizes[z]);
					total += loc;
					uint64_t d = layout_size_from_local(&l, p, loc);
					cr_assert_leq(d, sizes[z]);
					if (d > derived)
						derived = d;
				}
				cr_assert_eq(total, sizes[z], "strip %u count %u size %lu",
					     strips[s], c, (unsigned long)sizes[z]);
				cr_assert_eq(derived, sizes[z], "strip %u count %u size %lu",
					     strips[s], c, (unsigned long)sizes[z]);
			}
		}
	}
}

/* A range maps to one contiguous local range per position holding exactly
 * the range's bytes that live there, including ranges straddling strips. */
Test(layout, local_range_holds_exactly_the_range_bytes)
{
	for (size_t s = 0; s < sizeof(strips) / sizeof(strips[0]); s++) {
		uint32_t strip = strips[s];
		for (unsigned c = 1; c <= 8; c++) {
			struct sfs_layout l = mk(strip, c);
			uint64_t stripe = (uint64_t)strip * c;
			uint64_t starts[] = { 0, 1, strip - 1, strip, strip + 1, stripe - 1, stripe + 3 };
			uint64_t lens[] = { 1, 2, strip - 1, strip, strip + 1, stripe, 2 * stripe + 5 };
			for (size_t a = 0; a < 7; a++) {
				for (size_t b = 0; b < 7; b++) {
					uint64_t off = starts[a], len = lens[b];
					uint64_t sum = 0;
					for (unsigned p = 0; p < c; p++) {
						uint64_t lo, hi;
						layout_local_range(&l, p, off, len, &lo, &hi);
						cr_assert_leq(lo, hi);
						sum += hi - lo;
						if (hi == lo)
							continue;
						uint64_t first = layout_file_offset(&l, p, lo);
						uint64_t last = layout_file_offset(&l, p, hi - 1);
						cr_assert_geq(first, off);
						cr_assert_lt(last, off + len);
					}
					cr_assert_eq(sum, len, "strip %u count %u off %lu len %lu",
						     strip, c, (unsigned long)off, (unsigned long)len);
				}
			}
		}
	}
}
