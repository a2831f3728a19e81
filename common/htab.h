/*
 * htab: a small chained hash table whose nodes live inside their objects
 * (struct hnode as a member, container_of to get back), so an object is
 * found by name or id in O(1) without an allocation per entry. The table
 * does not own its objects: removing a node or freeing the table frees
 * none of them.
 *
 * Used where migd's per-operation cost must not grow with the cluster:
 * the sim backend's world and the health monitor's host states.
 */
#ifndef MIGD_HTAB_H
#define MIGD_HTAB_H

#include <stddef.h>
#include <stdint.h>

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#endif

struct hnode {
	struct hnode *next;
	uint64_t hash;
};

struct htab {
	struct hnode **buckets;
	size_t n_buckets; /* a power of two, or 0 while empty */
	size_t count;
};

uint64_t hash_str(const char *s);  /* FNV-1a */
uint64_t hash_u64(uint64_t x);     /* murmur3's finalizer: for sequential ids */

/* The chain where nodes of hash are; walk it with ->next, comparing
 * ->hash first and then the key. */
struct hnode *htab_bucket(const struct htab *t, uint64_t hash);

/* 0, or -ENOMEM (the table unchanged). */
int htab_insert(struct htab *t, struct hnode *node, uint64_t hash);

/* node must be in t or nowhere (then nothing happens). */
void htab_remove(struct htab *t, struct hnode *node);

/* The buckets only; accepts a zeroed table. */
void htab_release(struct htab *t);

#endif
