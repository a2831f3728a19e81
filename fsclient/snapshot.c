/*
 * snapshot: libsfs's snapshot calls (sfs.h). The metadata server does the
 * work (the barrier over every I/O server, the copy of the namespace, the
 * rollback); this file checks arguments so that a bad name is refused with
 * a message before anything is sent, and adds what only the I/O servers
 * know: the bytes each snapshot pins, asked of every server in turn.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

/* The request of ch, to the metadata server; "what: reason" on failure. */
static int snap_call(struct chan *ch, const char *what)
{
	char err[CLIENT_ERR_BYTES / 2];
	int rc = client_conn_ready(&ch->meta, err, sizeof(err));
	/* the server may spend up to three barrier timeouts on one that fails
	 * (freeze, release, drop, each bounded by it) before it answers */
	uint64_t wait_ms = (uint64_t)ch->meta.conf->timeout_ms +
			   3ull * ch->meta.conf->snapshot_barrier_timeout_ms;
	ch->meta.timeout_ms = wait_ms < UINT32_MAX ? (uint32_t)wait_ms : UINT32_MAX;
	if (rc == 0)
		rc = sfs_conn_call(&ch->meta, &ch->req, NULL, 0, &ch->reply, NULL, 0, NULL, err,
				   sizeof(err));
	ch->meta.timeout_ms = 0;
	if (rc < 0)
		client_error("%s: %s", what, err);
	return rc;
}

static int check_name(const char *name, const char *what)
{
	if (!name || !name[0]) {
		client_error("%s: a snapshot name must not be empty", what);
		return -EINVAL;
	}
	size_t len = strlen(name);
	if (len > SFS_SNAP_NAME_MAX) {
		client_error("%s: snapshot name \"%.40s...\" is %zu bytes, longer than %d", what,
			     name, len, SFS_SNAP_NAME_MAX);
		return -ENAMETOOLONG;
	}
	if (strchr(name, '/')) {
		client_error("%s: snapshot name \"%s\" must not contain '/'", what, name);
		return -EINVAL;
	}
	return 0;
}

static void info_to_snapshot(const struct sfs_snapinfo *in, struct sfs_snapshot *out)
{
	memset(out, 0, sizeof(*out));
	out->id = in->id;
	snprintf(out->name, sizeof(out->name), "%s", in->name);
	snprintf(out->path, sizeof(out->path), "%s", in->path);
	out->created_ns = in->created_ns;
	out->n_files = in->n_files;
	out->n_dirs = in->n_dirs;
}

/* ch->req for op, every other field zero. */
static struct sfs_req *snap_req(struct chan *ch, uint16_t op, const char *name)
{
	memset(&ch->req, 0, offsetof(struct sfs_req, handles));
	ch->req.op = op;
	if (name)
		snprintf(ch->req.snap_name, sizeof(ch->req.snap_name), "%s", name);
	return &ch->req;
}

int sfs_snapshot_create(struct sfs *fs, const char *name, const char *path,
			struct sfs_snapshot *out)
{
	char what[320];
	if (!path)
		path = "/";
	snprintf(what, sizeof(what), "snapshot create %.140s of %.140s", name ? name : "(null)",
		 path);
	if (!fs)
		return -EINVAL;
	int rc = check_name(name, what);
	if (rc < 0)
		return rc;
	if (path[0] != '/' || strlen(path) > SFS_MAX_PATH) {
		client_error("%s: expected an absolute path of at most %d bytes", what,
			     SFS_MAX_PATH);
		return -EINVAL;
	}
	struct chan *ch = client_chan_get(fs);
	if (!ch)
		return -ENOMEM;
	snprintf(snap_req(ch, SFS_OP_SNAP_CREATE, name)->path, sizeof(ch->req.path), "%s", path);
	rc = snap_call(ch, what);
	if (rc == 0 && out)
		info_to_snapshot(&ch->reply.snaps[0], out);
	client_chan_put(fs, ch);
	return rc;
}

/* The bytes snapshot id pins, summed over the I/O servers that answer. */
static uint64_t pinned_bytes(struct sfs *fs, struct chan *ch, uint64_t id)
{
	char err[CLIENT_ERR_BYTES / 2];
	uint64_t total = 0;
	struct sfs_req *req = snap_req(ch, SFS_OP_DF_SNAP_STAT, NULL);
	req->snap_id = id;
	for (unsigned i = 0; i < fs->conf->n_io; i++) {
		if (client_conn_ready(&ch->io[i], err, sizeof(err)) < 0)
			continue;
		if (sfs_conn_call(&ch->io[i], req, NULL, 0, &ch->reply, NULL, 0, NULL, err,
				  sizeof(err)) == 0)
			total += ch->reply.used_bytes;
	}
	return total;
}

int sfs_snapshot_list(struct sfs *fs, sfs_snapshot_fn fn, void *arg)
{
	char cookie[SFS_SNAP_NAME_MAX + 1] = "";
	struct sfs_snapshot *batch = calloc(SFS_SNAPLIST_MAX, sizeof(*batch));
	int rc = 0, eof = 0;
	if (!fs || !fn || !batch) {
		free(batch);
		return fs && fn ? -ENOMEM : -EINVAL;
	}
	while (rc == 0 && !eof) {
		struct chan *ch = client_chan_get(fs);
		unsigned n = 0;
		if (!ch) {
			rc = -ENOMEM;
			break;
		}
		snap_req(ch, SFS_OP_SNAP_LIST, cookie);
		rc = snap_call(ch, "snapshot list");
		if (rc == 0) {
			n = (unsigned)ch->reply.n_snaps;
			eof = ch->reply.eof || n == 0;
			for (unsigned i = 0; i < n; i++)
				info_to_snapshot(&ch->reply.snaps[i], &batch[i]);
			for (unsigned i = 0; i < n; i++)
				batch[i].pinned_bytes = pinned_bytes(fs, ch, batch[i].id);
		}
		client_chan_put(fs, ch);
		/* fn runs without a channel: it may call libsfs itself */
		for (unsigned i = 0; rc == 0 && i < n; i++) {
			rc = fn(arg, &batch[i]);
			snprintf(cookie, sizeof(cookie), "%s", batch[i].name);
		}
	}
	free(batch);
	return rc;
}

int sfs_snapshot_rm(struct sfs *fs, const char *name)
{
	char what[200];
	snprintf(what, sizeof(what), "snapshot rm %.140s", name ? name : "(null)");
	if (!fs)
		return -EINVAL;
	int rc = check_name(name, what);
	if (rc < 0)
		return rc;
	struct chan *ch = client_chan_get(fs);
	if (!ch)
		return -ENOMEM;
	snap_req(ch, SFS_OP_SNAP_RM, name);
	rc = snap_call(ch, what);
	client_chan_put(fs, ch);
	return rc;
}

int sfs_snapshot_rollback(struct sfs *fs, const char *name, int flags)
{
	char what[200];
	snprintf(what, sizeof(what), "snapshot rollback %.140s", name ? name : "(null)");
	if (!fs || (flags & ~SFS_ROLLBACK_FORCE)) {
		client_error("%s: flags 0x%x: only SFS_ROLLBACK_FORCE is defined", what, flags);
		return -EINVAL;
	}
	int rc = check_name(name, what);
	if (rc < 0)
		return rc;
	struct chan *ch = client_chan_get(fs);
	if (!ch)
		return -ENOMEM;
	snap_req(ch, SFS_OP_SNAP_ROLLBACK, name)->flags =
		flags & SFS_ROLLBACK_FORCE ? SFS_SNAP_ROLLBACK_FORCE : 0;
	rc = snap_call(ch, what);
	client_chan_put(fs, ch);
	return rc;
}

int sfs_fsck(struct sfs *fs, struct sfs_fsck_report *out)
{
	if (!fs || !out)
		return -EINVAL;
	struct chan *ch = client_chan_get(fs);
	if (!ch)
		return -ENOMEM;
	snap_req(ch, SFS_OP_SNAP_FSCK, NULL);
	int rc = snap_call(ch, "fsck");
	if (rc == 0) {
		out->leaked_datafiles = ch->reply.n_files;
		out->leaked_snapshots = ch->reply.n_dirs;
		out->missing_datafiles = ch->reply.n_snaps;
	}
	client_chan_put(fs, ch);
	return rc;
}
