/*
 * meta_perm: POSIX permission checks of the metadata server, for the
 * identity that auth.c gave the connection (never a uid from a message).
 *
 * The rules are the kernel's for a local file system: owner, then group
 * (any of the caller's server-resolved groups), then other; root may read
 * and write anything and search any directory, and execute a file that
 * has an x bit somewhere. A directory's x bit is search (needed for every
 * component walked), its w bit (with x) is creating, removing and
 * renaming entries in it; in a sticky directory only the entry's owner,
 * the directory's owner or root may remove or rename an entry. Only the
 * owner or root changes a mode or times; only root gives a file away.
 * A connection with auth = none is trusted: everything passes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "meta_internal.h"

static int is_root(const struct sfs_identity *who)
{
	return who->trusted || who->uid == 0;
}

int perm_in_group(const struct sfs_identity *who, uint32_t gid)
{
	for (unsigned i = 0; i < who->n_groups; i++)
		if (who->groups[i] == gid)
			return 1;
	return 0;
}

int perm_may(const struct sfs_identity *who, const struct entry *e, unsigned mask)
{
	if (is_root(who)) {
		if (!(mask & PERM_X) || e->type == SFS_TYPE_DIR)
			return 1;
		return (e->mode & 0111) != 0;
	}
	unsigned bits;
	if (who->uid == e->uid)
		bits = (e->mode >> 6) & 7;
	else if (perm_in_group(who, e->gid))
		bits = (e->mode >> 3) & 7;
	else
		bits = e->mode & 7;
	return (bits & mask) == mask;
}

int perm_is_owner(const struct sfs_identity *who, const struct entry *e)
{
	return is_root(who) || who->uid == e->uid;
}

static const char *perm_words(unsigned mask)
{
	switch (mask) {
	case PERM_R: return "read";
	case PERM_W: return "write";
	case PERM_X: return "search";
	case PERM_R | PERM_W: return "read and write";
	case PERM_W | PERM_X: return "write and search";
	default: return "the needed";
	}
}

int perm_check(struct server_req *r, const struct entry *e, unsigned mask, const char *name)
{
	if (perm_may(r->who, e, mask))
		return 0;
	if (name)
		return server_fail(r, -EACCES, "uid %u has no %s permission on %s", r->who->uid,
				   perm_words(mask), name);
	return server_fail(r, -EACCES, "uid %u has no %s permission", r->who->uid,
			   perm_words(mask));
}

int perm_sticky(struct server_req *r, const struct entry *dir, const struct entry *victim)
{
	if (!(dir->mode & 01000) || is_root(r->who) || r->who->uid == victim->uid ||
	    r->who->uid == dir->uid)
		return 0;
	return server_fail(r, -EACCES, "uid %u may not remove or rename another user's entry "
			   "in a sticky directory", r->who->uid);
}

int perm_open(struct server_req *r, const struct entry *e, uint32_t flags)
{
	unsigned mask = 0;
	if (flags & SFS_OPEN_READ)
		mask |= PERM_R;
	if (flags & (SFS_OPEN_WRITE | SFS_OPEN_TRUNC))
		mask |= PERM_W;
	return mask ? perm_check(r, e, mask, NULL) : 0;
}

void perm_new_owner(const struct server_req *r, const struct entry *dir, uint32_t *uid,
		    uint32_t *gid)
{
	const struct sfs_identity *who = r->who;
	if (who->trusted || who->uid == 0) {
		/* root (the mount, acting for its callers) names the owner */
		*uid = r->req->uid;
		*gid = r->req->gid;
	} else {
		*uid = who->uid;
		*gid = who->gid;
	}
	if (dir->mode & 02000)
		*gid = dir->gid; /* a setgid directory's files take its group */
}

int perm_setattr(struct server_req *r, const struct entry *e, uint32_t *mode_clear)
{
	const struct sfs_req *q = r->req;
	const struct sfs_identity *who = r->who;
	*mode_clear = 0;
	if (who->trusted)
		return 0;
	if ((q->valid & SFS_SETATTR_UID) && q->uid != e->uid && who->uid != 0)
		return server_fail(r, -EPERM, "uid %u may not give a file away (only root "
				   "changes an owner)", who->uid);
	if ((q->valid & SFS_SETATTR_GID) && q->gid != e->gid && who->uid != 0 &&
	    (who->uid != e->uid || !perm_in_group(who, q->gid)))
		return server_fail(r, -EPERM, "uid %u may not change the group to %u (the owner "
				   "may choose only among their groups)", who->uid, q->gid);
	if ((q->valid & SFS_SETATTR_MODE) && !perm_is_owner(who, e))
		return server_fail(r, -EPERM, "uid %u may not change the mode: owner is uid %u",
				   who->uid, e->uid);
	if ((q->valid & SFS_SETATTR_MODE) && who->uid != 0 && !perm_in_group(who, e->gid))
		*mode_clear = 02000; /* chmod g+s outside one's groups: dropped, as Linux */
	if (q->valid & (SFS_SETATTR_ATIME | SFS_SETATTR_MTIME)) {
		/* times: the owner; anyone who may write (touch); a reader's atime */
		int reader_atime = (q->valid & (SFS_SETATTR_MTIME | SFS_SETATTR_KEEP_CTIME)) ==
					   SFS_SETATTR_KEEP_CTIME && perm_may(who, e, PERM_R);
		if (!perm_is_owner(who, e) && !perm_may(who, e, PERM_W) && !reader_atime)
			return server_fail(r, -EPERM, "uid %u may not set the times: not the owner "
					   "and no write permission", who->uid);
	}
	return 0;
}

/* Both directories change (w and x), the sticky bit's rule for src, and
 * a directory that moves to another parent changes its ".." (w). */
int perm_rename(struct server_req *r, const struct entry *from_dir, const struct entry *src,
		const struct entry *to_dir)
{
	int rc = perm_check(r, from_dir, PERM_W | PERM_X, "the old directory");
	if (rc == 0)
		rc = perm_check(r, to_dir, PERM_W | PERM_X, "the new directory");
	if (rc == 0)
		rc = perm_sticky(r, from_dir, src);
	if (rc == 0 && src->type == SFS_TYPE_DIR && from_dir->fid != to_dir->fid)
		rc = perm_check(r, src, PERM_W, "the directory that moves");
	return rc;
}
