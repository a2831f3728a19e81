/* ior_pattern: see ior_pattern.h. */
#include "ior_pattern.h"

#include <inttypes.h>
#include <stdio.h>

/* splitmix64's finalizer: seeds and ranks that differ in one bit give keys
 * that differ in about half, so no two (seed, rank) pairs look alike. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t ior_pattern_key(uint32_t seed, uint32_t rank)
{
	return mix64(((uint64_t)seed << 32) | rank);
}

void ior_pattern_fill(void *buf, size_t len, uint64_t key, uint64_t offset)
{
	uint64_t *restrict word = buf;
	size_t n = len / 8;
	for (size_t i = 0; i < n; i++)
		word[i] = key ^ (offset + 8 * i);
}

/* Words compared per block before looking at single words: the block loop
 * has no branch, so the compiler vectorizes the common all-good case. */
#define CHECK_BLOCK_WORDS 512

uint64_t ior_pattern_check(const void *buf, size_t len, uint64_t key, uint64_t offset,
			   struct ior_bad_word *bad, unsigned *n_bad, unsigned max_bad)
{
	const uint64_t *word = buf;
	size_t n = len / 8;
	uint64_t errors = 0;
	for (size_t start = 0; start < n; start += CHECK_BLOCK_WORDS) {
		size_t end = start + CHECK_BLOCK_WORDS < n ? start + CHECK_BLOCK_WORDS : n;
		uint64_t diff = 0;
		for (size_t i = start; i < end; i++)
			diff |= word[i] ^ key ^ (offset + 8 * i);
		if (diff == 0)
			continue;
		for (size_t i = start; i < end; i++) {
			uint64_t expected = key ^ (offset + 8 * i);
			if (word[i] == expected)
				continue;
			errors++;
			if (*n_bad < max_bad)
				bad[(*n_bad)++] = (struct ior_bad_word){ offset + 8 * i, expected, word[i] };
		}
	}
	return errors;
}

void ior_pattern_explain(const struct ior_bad_word *w, uint32_t seed, uint32_t ntasks,
			 uint64_t file_bytes, char *buf, size_t len)
{
	if (w->found == 0) {
		snprintf(buf, len, "zeros (never written)");
		return;
	}
	for (uint32_t rank = 0; rank < ntasks; rank++) {
		uint64_t offset = w->found ^ ior_pattern_key(seed, rank);
		if (offset % 8 == 0 && offset < file_bytes) {
			snprintf(buf, len, "task %" PRIu32 "'s data for offset %" PRIu64, rank, offset);
			return;
		}
	}
	snprintf(buf, len, "not from this run (stale data, or another -G)");
}
