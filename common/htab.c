/*
 * htab: see htab.h. Buckets double when the table holds as many nodes as
 * buckets, so chains stay about one node long.
 */
#include "htab.h"

#include <errno.h>
#include <stdlib.h>

uint64_t hash_str(const char *s)
{
	uint64_t h = 14695981039346656037ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

uint64_t hash_u64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

struct hnode *htab_bucket(const struct htab *t, uint64_t hash)
{
	return t->n_buckets ? t->buckets[hash & (t->n_buckets - 1)] : NULL;
}

static int htab_grow(struct htab *t)
{
	size_t n = t->n_buckets ? t->n_buckets * 2 : 64;
	struct hnode **b = calloc(n, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < t->n_buckets; i++) {
		struct hnode *node = t->buckets[i], *next;
		for (; node; node = next) {
			next = node->next;
			node->next = b[node->hash & (n - 1)];
			b[node->hash & (n - 1)] = node;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->n_buckets = n;
	return 0;
}

int htab_insert(struct htab *t, struct hnode *node, uint64_t hash)
{
	if (t->count >= t->n_buckets) {
		int rc = htab_grow(t);
		if (rc < 0)
			return rc;
	}
	node->hash = hash;
	struct hnode **head = &t->buckets[hash & (t->n_buckets - 1)];
	node->next = *head;
	*head = node;
	t->count++;
	return 0;
}

void htab_remove(struct htab *t, struct hnode *node)
{
	if (!t->n_buckets)
		return;
	struct hnode **p = &t->buckets[node->hash & (t->n_buckets - 1)];
	while (*p && *p != node)
		p = &(*p)->next;
	if (*p) {
		*p = node->next;
		t->count--;
	}
}

void htab_release(struct htab *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->n_buckets = t->count = 0;
}
