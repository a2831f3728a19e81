/*
 * ior_pattern: the data sfs-ior writes and checks.
 *
 * Every 8-byte word of a test file is key(seed, rank) XOR its own file
 * offset, where seed is the run's time stamp signature (IOR's -G) and rank
 * the task that wrote it. A word therefore identifies all three: data at the
 * wrong offset, from the wrong task, or left over from an earlier run (other
 * seed) all fail the check, and a bad word can often be traced back to where
 * it belonged (ior_pattern_explain). Filling and checking are one XOR per
 * word so they cost little next to the transfer they are timed with.
 */
#ifndef IOR_PATTERN_H
#define IOR_PATTERN_H

#include <stddef.h>
#include <stdint.h>

/* One wrong word, as found by ior_pattern_check. */
struct ior_bad_word {
	uint64_t offset;   /* file offset of the word */
	uint64_t expected;
	uint64_t found;
};

uint64_t ior_pattern_key(uint32_t seed, uint32_t rank);

/* Fill len bytes (a multiple of 8) that go to file offset offset. */
void ior_pattern_fill(void *buf, size_t len, uint64_t key, uint64_t offset);

/*
 * Compare len bytes read from file offset offset with the pattern. Returns
 * the number of wrong words; the first ones are appended to bad[*n_bad..max_bad).
 */
uint64_t ior_pattern_check(const void *buf, size_t len, uint64_t key, uint64_t offset,
			   struct ior_bad_word *bad, unsigned *n_bad, unsigned max_bad);

/*
 * What a wrong word holds, for the report: "zeros (never written)",
 * "task 3's data for offset 4096", or "not from this run (stale, or another
 * -G)". Tries every task 0..ntasks-1 of seed with offsets below file_bytes.
 */
void ior_pattern_explain(const struct ior_bad_word *w, uint32_t seed, uint32_t ntasks,
			 uint64_t file_bytes, char *buf, size_t len);

#endif
