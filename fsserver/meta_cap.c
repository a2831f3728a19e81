/*
 * meta_cap: which capability the metadata server gives a client for a
 * file, and who the client is.
 *
 * The decision lives here, apart from the namespace code, so that the
 * permission checks of the metadata server (owner, group, other, root
 * squash) and the authentication of connections can replace
 * meta_caller_uid() and cap_rights() without touching how capabilities
 * are issued, carried or checked.
 */
#include <inttypes.h>

#include "meta_internal.h"

/*
 * The uid the metadata server takes the sender of r to be. Connections
 * are not authenticated yet, so this is what the server has always
 * trusted: the uid a request names (CREATE, MKDIR, SYMLINK), and root for
 * one that names none. Once a connection carries a credential, return the
 * uid it proved instead.
 */
uint32_t meta_caller_uid(const struct server_req *r)
{
	switch (r->req->op) {
	case SFS_OP_CREATE:
	case SFS_OP_MKDIR:
	case SFS_OP_SYMLINK:
		return r->req->uid;
	default:
		return 0;
	}
}

/* The mode bits that apply to uid: the owner's or everyone else's. Groups
 * are not resolved here (the permission checks will); a member of the
 * file's group gets what others get. */
static unsigned mode_bits_for(const struct sfs_attr *a, uint32_t uid)
{
	return uid == a->uid ? (a->mode >> 6) & 7 : a->mode & 7;
}

static unsigned cap_rights(const struct server_req *r, const struct sfs_attr *a, uint32_t uid)
{
	if (SFS_HANDLE_SNAP(a->fid))
		return SFS_CAP_READ; /* a snapshot's files are read-only */
	/* root, and whoever creates or opens-with-create a file it owns: a
	 * new file is open for writing whatever mode it was given (POSIX) */
	if (uid == 0 || (r->req->op == SFS_OP_CREATE && uid == a->uid))
		return SFS_CAP_READ | SFS_CAP_WRITE;
	unsigned bits = mode_bits_for(a, uid), rights = 0;
	if (bits & 4)
		rights |= SFS_CAP_READ;
	if (bits & 2)
		rights |= SFS_CAP_WRITE;
	return rights;
}

void meta_cap_grant(struct meta *m, struct server_req *r)
{
	const struct sfs_attr *a = &r->reply->attr;
	uint16_t op = r->req->op;
	if ((op != SFS_OP_LOOKUP && op != SFS_OP_CREATE && op != SFS_OP_GETATTR &&
	     op != SFS_OP_SETATTR) || a->type != SFS_TYPE_FILE)
		return;
	uint32_t uid = meta_caller_uid(r);
	servcap_issue(m->caps, a->fid, cap_rights(r, a, uid), uid, &r->reply->cap);
}
