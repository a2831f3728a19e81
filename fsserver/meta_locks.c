/*
 * meta_locks: see meta_locks.h.
 *
 * Locks are a list per table under one mutex, scanned whole: lock traffic
 * is small next to data traffic, and a list keeps POSIX's splitting and
 * trimming of an owner's ranges easy to check. Ranges are inclusive
 * [start, end]; end UINT64_MAX reaches past any size.
 */
#include "meta_locks.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "util.h"

struct lock {
	uint64_t fid, session, owner;
	uint32_t pid;
	uint8_t kind, type;
	uint64_t start, end;
	struct lock *next;
};

struct session {
	uint64_t id;
	unsigned conns;
	struct session *next;
};

struct append_hold {
	uint64_t fid;
	uint64_t since_ms;
	const void *owner;
	struct append_hold *next;
};

struct lock_table {
	pthread_mutex_t mutex;
	struct lock *locks;
	struct session *sessions;
	struct append_hold *append_holds; /* under mutex too */
	pthread_cond_t append_freed;
};

struct lock_table *locks_new(void)
{
	struct lock_table *t = calloc(1, sizeof(*t));
	if (t) {
		pthread_mutex_init(&t->mutex, NULL);
		pthread_cond_init(&t->append_freed, NULL);
	}
	return t;
}

void locks_free(struct lock_table *t)
{
	if (!t)
		return;
	for (struct lock *l = t->locks, *next; l; l = next) {
		next = l->next;
		free(l);
	}
	for (struct session *s = t->sessions, *next; s; s = next) {
		next = s->next;
		free(s);
	}
	for (struct append_hold *h = t->append_holds, *next; h; h = next) {
		next = h->next;
		free(h);
	}
	pthread_cond_destroy(&t->append_freed);
	pthread_mutex_destroy(&t->mutex);
	free(t);
}

static int same_owner(const struct lock *l, const struct sfs_req *q)
{
	return l->session == q->session && l->owner == q->owner;
}

/* Does l, held by someone else, stand in the way of q? */
static int conflicts(const struct lock *l, const struct sfs_req *q)
{
	return l->fid == q->handle && l->kind == q->lk_kind && !same_owner(l, q) &&
	       l->start <= q->lk_end && q->lk_start <= l->end &&
	       (l->type == SFS_LK_WR || q->lk_type == SFS_LK_WR);
}

static struct lock *first_conflict(struct lock_table *t, const struct sfs_req *q)
{
	for (struct lock *l = t->locks; l; l = l->next)
		if (conflicts(l, q))
			return l;
	return NULL;
}

/*
 * Clear q's owner's locks of q's kind over [q->lk_start, q->lk_end],
 * trimming or splitting those that reach outside it. The split needs one
 * new lock, allocated first so that failing leaves the table unchanged.
 */
static int clear_range(struct lock_table *t, const struct sfs_req *q)
{
	struct lock *spare = malloc(sizeof(*spare));
	if (!spare)
		return -ENOMEM;
	for (struct lock **p = &t->locks; *p;) {
		struct lock *l = *p;
		if (l->fid != q->handle || l->kind != q->lk_kind || !same_owner(l, q) ||
		    l->end < q->lk_start || q->lk_end < l->start) {
			p = &l->next;
			continue;
		}
		int keep_left = l->start < q->lk_start, keep_right = l->end > q->lk_end;
		if (keep_left && keep_right) { /* a hole in the middle: two locks */
			*spare = *l;
			spare->start = q->lk_end + 1;
			l->end = q->lk_start - 1;
			spare->next = l->next;
			l->next = spare;
			spare = NULL;
			p = &l->next->next;
		} else if (keep_left) {
			l->end = q->lk_start - 1;
			p = &l->next;
		} else if (keep_right) {
			l->start = q->lk_end + 1;
			p = &l->next;
		} else {
			*p = l->next;
			free(l);
		}
	}
	free(spare);
	return 0;
}

int locks_set(struct lock_table *t, const struct sfs_req *q)
{
	int rc = 0;
	struct lock *l = NULL;
	if (q->lk_type != SFS_LK_UN && !(l = malloc(sizeof(*l))))
		return -ENOMEM;
	pthread_mutex_lock(&t->mutex);
	if (l && first_conflict(t, q))
		rc = -EAGAIN;
	if (rc == 0)
		rc = clear_range(t, q);
	if (rc == 0 && l) {
		*l = (struct lock){ .fid = q->handle, .session = q->session, .owner = q->owner,
				    .pid = q->pid, .kind = q->lk_kind, .type = q->lk_type,
				    .start = q->lk_start, .end = q->lk_end, .next = t->locks };
		t->locks = l;
		l = NULL;
	}
	pthread_mutex_unlock(&t->mutex);
	free(l);
	return rc;
}

void locks_test(struct lock_table *t, const struct sfs_req *q, struct sfs_reply *reply)
{
	reply->lk_type = SFS_LK_UN;
	reply->lk_start = reply->lk_end = 0;
	reply->lk_pid = 0;
	if (q->lk_type == SFS_LK_UN)
		return;
	pthread_mutex_lock(&t->mutex);
	struct lock *l = first_conflict(t, q);
	if (l) {
		reply->lk_type = l->type;
		reply->lk_start = l->start;
		reply->lk_end = l->end;
		/* a pid means something only on the holder's own client */
		reply->lk_pid = l->session == q->session ? l->pid : 0;
	}
	pthread_mutex_unlock(&t->mutex);
}

int locks_conn_join(struct lock_table *t, uint64_t *conn_session, uint64_t session)
{
	if (session == 0)
		return -EINVAL;
	if (*conn_session)
		return *conn_session == session ? 0 : -EINVAL;
	struct session *fresh = malloc(sizeof(*fresh));
	if (!fresh)
		return -ENOMEM;
	pthread_mutex_lock(&t->mutex);
	struct session *s = t->sessions;
	while (s && s->id != session)
		s = s->next;
	if (!s) {
		*fresh = (struct session){ .id = session, .next = t->sessions };
		t->sessions = s = fresh;
		fresh = NULL;
	}
	s->conns++;
	pthread_mutex_unlock(&t->mutex);
	free(fresh);
	*conn_session = session;
	return 0;
}

void locks_conn_leave(struct lock_table *t, uint64_t conn_session)
{
	if (!conn_session)
		return;
	pthread_mutex_lock(&t->mutex);
	for (struct session **p = &t->sessions; *p; p = &(*p)->next) {
		struct session *s = *p;
		if (s->id != conn_session)
			continue;
		if (--s->conns == 0) {
			*p = s->next;
			free(s);
			for (struct lock **lp = &t->locks; *lp;) {
				struct lock *l = *lp;
				if (l->session == conn_session) {
					*lp = l->next;
					free(l);
				} else {
					lp = &l->next;
				}
			}
		}
		break;
	}
	pthread_mutex_unlock(&t->mutex);
}

/* --- append locks --- */

static struct append_hold **append_find(struct lock_table *t, uint64_t fid)
{
	for (struct append_hold **h = &t->append_holds; *h; h = &(*h)->next)
		if ((*h)->fid == fid)
			return h;
	return NULL;
}

static void realtime_after_ms(uint64_t ms, struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int locks_append_take(struct lock_table *t, uint64_t fid, const void *owner, uint64_t lease_ms,
		      uint64_t *taken_from_ms)
{
	struct append_hold *mine = malloc(sizeof(*mine)), **h;
	*taken_from_ms = 0;
	if (!mine)
		return -ENOMEM;
	pthread_mutex_lock(&t->mutex);
	while ((h = append_find(t, fid))) {
		uint64_t held_ms = now_ms() - (*h)->since_ms;
		if ((*h)->owner == owner) {
			pthread_mutex_unlock(&t->mutex);
			free(mine);
			return -EDEADLK;
		}
		if (held_ms >= lease_ms) {
			struct append_hold *stale = *h;
			*h = stale->next;
			free(stale);
			*taken_from_ms = held_ms;
			continue;
		}
		struct timespec ts;
		realtime_after_ms(lease_ms - held_ms, &ts);
		pthread_cond_timedwait(&t->append_freed, &t->mutex, &ts);
	}
	*mine = (struct append_hold){ .fid = fid, .since_ms = now_ms(), .owner = owner,
				      .next = t->append_holds };
	t->append_holds = mine;
	pthread_mutex_unlock(&t->mutex);
	return 0;
}

void locks_append_release(struct lock_table *t, const void *owner, uint64_t fid)
{
	pthread_mutex_lock(&t->mutex);
	for (struct append_hold **h = &t->append_holds; *h;) {
		struct append_hold *cur = *h;
		if (cur->owner == owner && (!fid || cur->fid == fid)) {
			*h = cur->next;
			free(cur);
		} else {
			h = &cur->next;
		}
	}
	pthread_cond_broadcast(&t->append_freed);
	pthread_mutex_unlock(&t->mutex);
}
