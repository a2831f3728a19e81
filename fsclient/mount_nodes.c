/*
 * mount_nodes: see mount_nodes.h.
 *
 * A chained hash table keyed by fid under one mutex: every operation is a
 * few pointer hops, far cheaper than the network call it precedes, so one
 * lock is not a bottleneck for the FUSE threads. The bucket array doubles
 * when the table holds more entries than buckets.
 */
#include "mount_nodes.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sfs_proto.h"

#define INITIAL_BUCKETS 4096
#define MAX_DEPTH 2048 /* a path of 4095 bytes has at most 2048 components */

struct node {
	uint64_t fid, parent;
	uint64_t lookups;
	unsigned opens;
	int hidden; /* unlinked while open: renamed to name, removed at last close */
	int locked; /* a lock was taken on it through this mount */
	char *name;
	struct node *next;
};

struct nodes {
	pthread_mutex_t lock;
	struct node **buckets;
	size_t n_buckets, n_nodes;
};

static size_t bucket_of(const struct nodes *n, uint64_t fid)
{
	return (size_t)((fid * 0x9E3779B97F4A7C15ull) >> 20) & (n->n_buckets - 1);
}

static struct node *find(const struct nodes *n, uint64_t fid)
{
	for (struct node *e = n->buckets[bucket_of(n, fid)]; e; e = e->next)
		if (e->fid == fid)
			return e;
	return NULL;
}

static void grow(struct nodes *n)
{
	size_t old = n->n_buckets;
	struct node **b = calloc(old * 2, sizeof(*b));
	if (!b)
		return; /* longer chains, still correct */
	struct node **prev = n->buckets;
	n->buckets = b;
	n->n_buckets = old * 2;
	for (size_t i = 0; i < old; i++) {
		struct node *e = prev[i], *next;
		for (; e; e = next) {
			next = e->next;
			size_t k = bucket_of(n, e->fid);
			e->next = b[k];
			b[k] = e;
		}
	}
	free(prev);
}

static void unlink_node(struct nodes *n, struct node *gone)
{
	for (struct node **p = &n->buckets[bucket_of(n, gone->fid)]; *p; p = &(*p)->next) {
		if (*p == gone) {
			*p = gone->next;
			n->n_nodes--;
			free(gone->name);
			free(gone);
			return;
		}
	}
}

static int remember_locked(struct nodes *n, uint64_t fid, uint64_t parent, const char *name,
			   uint64_t lookups);

struct nodes *nodes_new(void)
{
	struct nodes *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	pthread_mutex_init(&n->lock, NULL);
	n->n_buckets = INITIAL_BUCKETS;
	n->buckets = calloc(n->n_buckets, sizeof(*n->buckets));
	if (!n->buckets || remember_locked(n, SFS_ROOT_FID, 0, "", 1) < 0) {
		nodes_free(n);
		return NULL;
	}
	return n;
}

void nodes_free(struct nodes *n)
{
	if (!n)
		return;
	for (size_t i = 0; n->buckets && i < n->n_buckets; i++) {
		struct node *e = n->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e->name);
			free(e);
		}
	}
	free(n->buckets);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

/* Under the lock (or before the table is shared). */
static int remember_locked(struct nodes *n, uint64_t fid, uint64_t parent, const char *name,
			   uint64_t lookups)
{
	struct node *e = find(n, fid);
	char *copy = NULL;
	if (!e && !lookups)
		return 0; /* a rename of an inode the kernel does not hold: nothing to keep */
	if (!e || strcmp(e->name, name) != 0) {
		copy = strdup(name);
		if (!copy)
			return -ENOMEM;
	}
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			free(copy);
			return -ENOMEM;
		}
		e->fid = fid;
		size_t k = bucket_of(n, fid);
		e->next = n->buckets[k];
		n->buckets[k] = e;
		if (++n->n_nodes > n->n_buckets)
			grow(n);
	}
	if (copy) {
		free(e->name);
		e->name = copy;
	}
	e->parent = parent;
	e->lookups += lookups;
	if (lookups)
		e->hidden = 0; /* found under a real name again */
	return 0;
}

int nodes_remember(struct nodes *n, uint64_t fid, uint64_t parent, const char *name,
		   uint64_t lookups)
{
	pthread_mutex_lock(&n->lock);
	int rc = remember_locked(n, fid, parent, name, lookups);
	pthread_mutex_unlock(&n->lock);
	return rc;
}

void nodes_forget(struct nodes *n, uint64_t fid, uint64_t lookups)
{
	pthread_mutex_lock(&n->lock);
	struct node *e = find(n, fid);
	if (e && fid != SFS_ROOT_FID) {
		e->lookups = e->lookups > lookups ? e->lookups - lookups : 0;
		if (!e->lookups && !e->opens)
			unlink_node(n, e);
	}
	pthread_mutex_unlock(&n->lock);
}

/* Components from fid up to the root, then written out root first. */
static int path_locked(struct nodes *n, uint64_t fid, const char *name, char *buf, size_t len)
{
	const char *comp[MAX_DEPTH];
	unsigned depth = 0;
	if (name)
		comp[depth++] = name;
	while (fid != SFS_ROOT_FID) {
		struct node *e = find(n, fid);
		if (!e)
			return -ESTALE;
		if (depth == MAX_DEPTH)
			return -ENAMETOOLONG;
		comp[depth++] = e->name;
		fid = e->parent;
	}
	size_t used = 0;
	if (depth == 0) {
		if (len < 2)
			return -ENAMETOOLONG;
		strcpy(buf, "/");
		return 0;
	}
	while (depth--) {
		size_t l = strlen(comp[depth]);
		if (used + 1 + l + 1 > len)
			return -ENAMETOOLONG;
		buf[used++] = '/';
		memcpy(buf + used, comp[depth], l);
		used += l;
	}
	buf[used] = '\0';
	return 0;
}

int nodes_path(struct nodes *n, uint64_t fid, const char *name, char *buf, size_t len)
{
	pthread_mutex_lock(&n->lock);
	int rc = path_locked(n, fid, name, buf, len);
	pthread_mutex_unlock(&n->lock);
	return rc;
}

void nodes_open(struct nodes *n, uint64_t fid)
{
	pthread_mutex_lock(&n->lock);
	struct node *e = find(n, fid);
	if (e)
		e->opens++;
	pthread_mutex_unlock(&n->lock);
}

int nodes_close(struct nodes *n, uint64_t fid, char *hidden_path, size_t len)
{
	int remove = 0;
	pthread_mutex_lock(&n->lock);
	struct node *e = find(n, fid);
	if (e && e->opens && --e->opens == 0) {
		if (e->hidden)
			remove = path_locked(n, fid, NULL, hidden_path, len) == 0;
		e->hidden = 0;
		if (!e->lookups)
			unlink_node(n, e);
	}
	pthread_mutex_unlock(&n->lock);
	return remove;
}

int nodes_is_open(struct nodes *n, uint64_t fid)
{
	pthread_mutex_lock(&n->lock);
	struct node *e = find(n, fid);
	int open = e && e->opens;
	pthread_mutex_unlock(&n->lock);
	return open;
}

void nodes_hide(struct nodes *n, uint64_t fid, uint64_t parent, const char *hidden_name)
{
	pthread_mutex_lock(&n->lock);
	if (remember_locked(n, fid, parent, hidden_name, 0) == 0)
		find(n, fid)->hidden = 1;
	pthread_mutex_unlock(&n->lock);
}

void nodes_mark_locked(struct nodes *n, uint64_t fid)
{
	pthread_mutex_lock(&n->lock);
	struct node *e = find(n, fid);
	if (e)
		e->locked = 1;
	pthread_mutex_unlock(&n->lock);
}

int nodes_was_locked(struct nodes *n, uint64_t fid)
{
	pthread_mutex_lock(&n->lock);
	struct node *e = find(n, fid);
	int locked = e && e->locked;
	pthread_mutex_unlock(&n->lock);
	return locked;
}
