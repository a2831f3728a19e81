/*
 * iosrv: see iosrv.h.
 *
 * The fd cache exists because a client streams many writes to one handle:
 * opening and closing the datafile for each would cost more than the
 * write on tmpfs. Entries are shared and reference-counted; idle ones sit
 * on an LRU list and the oldest are closed above FD_CACHE_MAX. DF_REMOVE
 * and DF_CREATE drop the handle's entry, so a later request sees the file
 * as it is now (a removed handle answers ENOENT) while a request already
 * holding the old descriptor finishes on it.
 *
 * Snapshots (iosnap.c) hook in at three places: a handle with a snapshot
 * id opens the snapshot's datafile read-only; a write or truncate passes
 * the freeze gate and, inside it, makes sure its descriptor is the live,
 * unshared datafile (copying it first if a snapshot shares it); and the
 * DF_SNAP_* ops.
 *
 * Reads go out with sendfile(2) behind a header sent with MSG_MORE, so
 * file bytes are never copied through user space. Sockets are switched to
 * O_NONBLOCK so that sendfile can be bounded by the request deadline like
 * every other transfer.
 */
#include "iosrv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "iosnap.h"
#include "log.h"
#include "net.h"
#include "servcap.h"
#include "util.h"

#define FD_CACHE_MAX 512     /* open datafiles kept beyond those in use */
#define FD_HASH_BITS 10
#define HANDLE_NAME_LEN 16   /* hex digits of a datafile name */
#define ZERO_PAD_BYTES 65536 /* padding of a read whose file shrank */

struct fd_entry {
	uint64_t handle;
	int fd;
	unsigned refs;
	uint64_t last_write_ms; /* atomic: DF_SNAP_BUSY asks */
	unsigned writing;       /* atomic: writes and truncates holding it */
	int cached; /* still in the table (not dropped by a remove/create) */
	struct fd_entry *hash_next;
	struct fd_entry *lru_prev, *lru_next; /* idle list, oldest first */
};

struct iosrv {
	char data_dir[600];
	int data_fd;
	int open_flags;
	uint32_t max_request_bytes;
	uint32_t timeout_ms;
	pthread_mutex_t lock; /* guards the cache below */
	struct fd_entry *buckets[1u << FD_HASH_BITS];
	struct fd_entry lru;  /* sentinel of the idle list */
	unsigned n_cached;
	struct iosnap *snap;
	struct servcap *caps;
};

struct io_conn {
	uint8_t *buf; /* max_request_bytes, allocated at the first write */
	struct servcap_memo cap_memo;
};

static const uint8_t zeros[ZERO_PAD_BYTES];

static void handle_name(uint64_t handle, char out[HANDLE_NAME_LEN + 1])
{
	snprintf(out, HANDLE_NAME_LEN + 1, "%016" PRIx64, handle);
}

static struct fd_entry **bucket(struct iosrv *io, uint64_t handle)
{
	return &io->buckets[(handle * 0x9e3779b97f4a7c15ull) >> (64 - FD_HASH_BITS)];
}

static void lru_unlink(struct fd_entry *e)
{
	e->lru_prev->lru_next = e->lru_next;
	e->lru_next->lru_prev = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void lru_append(struct iosrv *io, struct fd_entry *e)
{
	e->lru_prev = io->lru.lru_prev;
	e->lru_next = &io->lru;
	io->lru.lru_prev->lru_next = e;
	io->lru.lru_prev = e;
}

static struct fd_entry *hash_find(struct iosrv *io, uint64_t handle)
{
	for (struct fd_entry *e = *bucket(io, handle); e; e = e->hash_next)
		if (e->handle == handle)
			return e;
	return NULL;
}

static void hash_remove(struct iosrv *io, struct fd_entry *e)
{
	struct fd_entry **p = bucket(io, e->handle);
	while (*p != e)
		p = &(*p)->hash_next;
	*p = e->hash_next;
	e->cached = 0;
	io->n_cached--;
}

static void entry_close(struct fd_entry *e)
{
	close(e->fd);
	free(e);
}

/* Close the oldest idle descriptors above the cap. Under the lock. */
static void evict_idle(struct iosrv *io)
{
	while (io->n_cached > FD_CACHE_MAX && io->lru.lru_next != &io->lru) {
		struct fd_entry *e = io->lru.lru_next;
		lru_unlink(e);
		hash_remove(io, e);
		entry_close(e);
	}
}

/* Forget handle's descriptor: closed now if idle, else by its last user. */
static void drop_handle(struct iosrv *io, uint64_t handle)
{
	struct fd_entry *e = hash_find(io, handle);
	if (!e)
		return;
	hash_remove(io, e);
	if (e->refs == 0) {
		lru_unlink(e);
		entry_close(e);
	}
}

/* Put a fresh descriptor in the table with refs references. Takes fd. */
static struct fd_entry *insert_fd(struct iosrv *io, uint64_t handle, int fd, unsigned refs)
{
	struct fd_entry *e = malloc(sizeof(*e));
	if (!e) {
		close(fd);
		return NULL;
	}
	*e = (struct fd_entry){ .handle = handle, .fd = fd, .refs = refs, .cached = 1 };
	struct fd_entry **b = bucket(io, handle);
	e->hash_next = *b;
	*b = e;
	io->n_cached++;
	if (refs == 0)
		lru_append(io, e);
	evict_idle(io);
	return e;
}

/* A referenced descriptor of an existing datafile: 0 or -errno. */
static int fd_get(struct iosrv *io, uint64_t handle, struct fd_entry **out)
{
	char name[HANDLE_NAME_LEN + 1];
	int rc = 0;
	pthread_mutex_lock(&io->lock);
	struct fd_entry *e = hash_find(io, handle);
	if (e) {
		if (e->refs++ == 0)
			lru_unlink(e);
		goto out;
	}
	char snap_path[64];
	int fd;
	if (SFS_HANDLE_SNAP(handle)) {
		iosnap_handle_path(handle, snap_path, sizeof(snap_path));
		fd = openat(io->data_fd, snap_path, O_RDONLY | O_CLOEXEC);
	} else {
		handle_name(handle, name);
		fd = openat(io->data_fd, name, io->open_flags);
	}
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	e = insert_fd(io, handle, fd, 1);
	if (!e)
		rc = -ENOMEM;
out:
	pthread_mutex_unlock(&io->lock);
	*out = e;
	return rc;
}

static void fd_put(struct iosrv *io, struct fd_entry *e)
{
	pthread_mutex_lock(&io->lock);
	if (--e->refs == 0) {
		if (e->cached) {
			lru_append(io, e);
			evict_idle(io);
		} else {
			entry_close(e);
		}
	}
	pthread_mutex_unlock(&io->lock);
}

/* The datafile of the request's handle, with a message on failure. */
static int open_handle(struct iosrv *io, struct server_req *r, struct fd_entry **out)
{
	uint64_t handle = r->req->handle;
	if (handle == 0)
		return server_fail(r, -EINVAL, "handle 0 is not a datafile");
	int rc = fd_get(io, handle, out);
	if (rc == -ENOENT)
		return server_fail(r, rc, "unknown handle 0x%" PRIx64, handle);
	if (rc < 0)
		return server_fail(r, rc, "datafile 0x%" PRIx64 ": %s", handle, strerror(-rc));
	return 0;
}

/* Ops that change a datafile take live handles only. */
static int check_writable(struct server_req *r)
{
	uint64_t handle = r->req->handle;
	if (handle == 0)
		return server_fail(r, -EINVAL, "handle 0 is not a datafile");
	if (SFS_HANDLE_SNAP(handle))
		return server_fail(r, -EROFS, "handle 0x%" PRIx64 " is in snapshot %" PRIu64
				   " (read-only)", handle, SFS_HANDLE_SNAP(handle));
	return 0;
}

static void forget_handle(void *arg, uint64_t handle)
{
	struct iosrv *io = arg;
	pthread_mutex_lock(&io->lock);
	drop_handle(io, handle);
	pthread_mutex_unlock(&io->lock);
}

/*
 * Inside the gate, before a change: *e must be the live datafile (a
 * restore or a remove may have replaced it since it was opened) and not
 * shared with a snapshot (else copy it first). On failure *e is released
 * and NULL. The caller's count in (*e)->writing moves with *e.
 */
static int make_private(struct iosrv *io, struct server_req *r, struct fd_entry **e)
{
	char name[HANDLE_NAME_LEN + 1], err[300];
	uint64_t handle = r->req->handle;
	handle_name(handle, name);
	for (int attempt = 0;; attempt++) {
		struct stat st, live;
		int rc = 0;
		if (fstat((*e)->fd, &st) < 0)
			rc = -errno;
		else if (fstatat(io->data_fd, name, &live, AT_SYMLINK_NOFOLLOW) < 0)
			rc = -errno;
		if (rc == 0 && st.st_ino == live.st_ino && st.st_nlink <= 1)
			return 0;
		if (rc == 0 && st.st_ino == live.st_ino) {
			rc = iosnap_unshare(io->snap, handle, err, sizeof(err));
			if (rc < 0)
				rc = server_fail(r, rc, "%s", err);
		}
		if (rc == -ENOENT)
			rc = server_fail(r, rc, "unknown handle 0x%" PRIx64, handle);
		else if (rc < 0 && !r->reply->msg[0])
			rc = server_fail(r, rc, "datafile 0x%" PRIx64 ": %s", handle, strerror(-rc));
		if (rc >= 0 && attempt > 8)
			rc = server_fail(r, -EAGAIN, "datafile 0x%" PRIx64 " keeps changing", handle);
		forget_handle(io, handle);
		__atomic_sub_fetch(&(*e)->writing, 1, __ATOMIC_RELAXED);
		fd_put(io, *e);
		*e = NULL;
		if (rc < 0)
			return rc;
		rc = open_handle(io, r, e);
		if (rc < 0) {
			*e = NULL;
			return rc;
		}
		__atomic_add_fetch(&(*e)->writing, 1, __ATOMIC_RELAXED);
	}
}

static int file_size(struct server_req *r, struct fd_entry *e, uint64_t *size)
{
	struct stat st;
	if (fstat(e->fd, &st) < 0)
		return server_fail(r, -errno, "datafile 0x%" PRIx64 ": stat: %s", e->handle,
				   strerror(errno));
	*size = (uint64_t)st.st_size;
	return 0;
}

static int df_create(struct iosrv *io, struct server_req *r)
{
	char name[HANDLE_NAME_LEN + 1];
	uint64_t handle = r->req->handle;
	int rc = check_writable(r);
	if (rc < 0)
		return rc;
	handle_name(handle, name);
	pthread_mutex_lock(&io->lock);
	/* a fresh inode: truncating an orphan in place would also truncate a
	 * snapshot's hard link to it */
	unlinkat(io->data_fd, name, 0);
	int fd = openat(io->data_fd, name, io->open_flags | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		rc = server_fail(r, -errno, "creating datafile 0x%" PRIx64 ": %s", handle,
				 strerror(errno));
		goto out;
	}
	drop_handle(io, handle);
	insert_fd(io, handle, fd, 0);
out:
	pthread_mutex_unlock(&io->lock);
	return rc;
}

static int df_remove(struct iosrv *io, struct server_req *r)
{
	char name[HANDLE_NAME_LEN + 1];
	uint64_t handle = r->req->handle;
	int rc = check_writable(r);
	if (rc < 0)
		return rc;
	handle_name(handle, name);
	pthread_mutex_lock(&io->lock);
	if (unlinkat(io->data_fd, name, 0) < 0)
		rc = -errno;
	drop_handle(io, handle);
	pthread_mutex_unlock(&io->lock);
	if (rc == -ENOENT)
		return server_fail(r, rc, "unknown handle 0x%" PRIx64, handle);
	if (rc < 0)
		return server_fail(r, rc, "removing datafile 0x%" PRIx64 ": %s", handle,
				   strerror(-rc));
	return 0;
}

static int pwrite_full(int fd, const uint8_t *buf, size_t len, uint64_t offset)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, buf, len, (off_t)offset);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
		offset += (uint64_t)n;
	}
	return 0;
}

static int df_write(struct iosrv *io, struct server_req *r)
{
	struct io_conn *ic = r->conn_state;
	uint64_t offset = r->req->offset;
	uint32_t len = r->data_left;
	struct fd_entry *e;

	if (offset > (uint64_t)INT64_MAX - len)
		return server_fail(r, -EFBIG, "write of %u bytes at offset %" PRIu64
				   " is beyond the largest file", len, offset);
	int rc = check_writable(r);
	if (rc == 0)
		rc = open_handle(io, r, &e);
	if (rc < 0)
		return rc; /* the server drops the data */
	if (len && !ic->buf) {
		ic->buf = malloc(io->max_request_bytes);
		if (!ic->buf) {
			rc = server_fail(r, -ENOMEM, "no memory for a write buffer");
			goto out;
		}
	}
	rc = net_recv_all(r->fd, ic->buf, len, r->deadline_ms);
	if (rc < 0) {
		log_warnx("peer %s: receiving %u bytes of DF_WRITE data: %s; closing the "
			  "connection", r->peer, len, rc == -ECONNRESET ? "truncated frame"
									: strerror(-rc));
		r->broken = 1;
		goto out;
	}
	r->data_left = 0;
	__atomic_add_fetch(&e->writing, 1, __ATOMIC_RELAXED);
	iosnap_gate_enter(io->snap);
	rc = make_private(io, r, &e);
	if (rc == 0)
		rc = pwrite_full(e->fd, ic->buf, len, offset);
	if (rc < 0 && !r->reply->msg[0])
		rc = server_fail(r, rc, "writing datafile 0x%" PRIx64 ": %s", r->req->handle,
				 strerror(-rc));
	if (rc == 0)
		rc = file_size(r, e, &r->reply->local_size);
	if (rc == 0)
		__atomic_store_n(&e->last_write_ms, now_ms(), __ATOMIC_RELAXED);
	iosnap_gate_leave(io->snap);
	if (e)
		__atomic_sub_fetch(&e->writing, 1, __ATOMIC_RELAXED);
out:
	if (e)
		fd_put(io, e);
	return rc;
}

/* sendfile len bytes from offset; *sent says how many went (fewer only
 * if the file shrank meanwhile). */
static int send_file(int sock, int file_fd, uint64_t offset, size_t len, size_t *sent,
		     uint64_t deadline_ms)
{
	off_t off = (off_t)offset;
	size_t left = len;
	while (left > 0) {
		ssize_t n = sendfile(sock, file_fd, &off, left);
		if (n > 0) {
			left -= (size_t)n;
			continue;
		}
		if (n == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		int rc = net_wait(sock, POLLOUT, deadline_ms);
		if (rc < 0)
			return rc;
	}
	*sent = len - left;
	return 0;
}

/* Header and body with MSG_MORE, then the bytes straight from the file. */
static int send_read_reply(struct iosrv *io, struct server_req *r, struct fd_entry *e,
			   uint32_t len)
{
	uint8_t frame[SFS_HDR_BYTES + 64];
	uint64_t deadline_ms = now_ms() + io->timeout_ms;
	size_t body_len, sent = 0;
	int rc = sfs_reply_encode(r->reply, 0, frame + SFS_HDR_BYTES,
				  sizeof(frame) - SFS_HDR_BYTES, &body_len);
	if (rc < 0)
		return rc;
	struct sfs_hdr hdr = { .magic = SFS_PROTO_MAGIC, .version = SFS_PROTO_VERSION,
			       .op = SFS_OP_DF_READ, .tag = r->tag, .status = 0,
			       .body_len = (uint32_t)body_len, .data_len = len };
	sfs_hdr_encode(&hdr, frame);
	rc = net_send_flags(r->fd, frame, SFS_HDR_BYTES + body_len, len ? MSG_MORE : 0, deadline_ms);
	if (rc == 0 && len)
		rc = send_file(r->fd, e->fd, r->req->offset, len, &sent, deadline_ms);
	while (rc == 0 && sent < len) {
		size_t n = len - sent < sizeof(zeros) ? len - sent : sizeof(zeros);
		rc = net_send_flags(r->fd, zeros, n, sent + n < len ? MSG_MORE : 0, deadline_ms);
		sent += n;
	}
	return rc;
}

static int df_read(struct iosrv *io, struct server_req *r)
{
	uint64_t offset = r->req->offset, size;
	struct fd_entry *e;

	if (r->req->length > io->max_request_bytes)
		return server_fail(r, -EINVAL, "read of %" PRIu64 " bytes exceeds max_request (%u)",
				   r->req->length, io->max_request_bytes);
	int rc = open_handle(io, r, &e);
	if (rc < 0)
		return rc;
	rc = file_size(r, e, &size);
	if (rc < 0)
		goto out;
	uint64_t len = 0;
	if (offset < size)
		len = size - offset < r->req->length ? size - offset : r->req->length;
	r->reply->local_size = size;
	rc = send_read_reply(io, r, e, (uint32_t)len);
	r->replied = 1;
	if (rc < 0) {
		log_warnx("peer %s: sending %" PRIu64 " bytes of datafile 0x%" PRIx64 ": %s; "
			  "closing the connection", r->peer, len, e->handle, strerror(-rc));
		r->broken = 1;
	}
out:
	fd_put(io, e);
	return rc;
}

static int df_getsize(struct iosrv *io, struct server_req *r)
{
	struct fd_entry *e;
	int rc = open_handle(io, r, &e);
	if (rc < 0)
		return rc;
	rc = file_size(r, e, &r->reply->local_size);
	fd_put(io, e);
	return rc;
}

static int df_truncate(struct iosrv *io, struct server_req *r)
{
	struct fd_entry *e;
	if (r->req->length > (uint64_t)INT64_MAX)
		return server_fail(r, -EFBIG, "truncate to %" PRIu64 " bytes is beyond the "
				   "largest file", r->req->length);
	int rc = check_writable(r);
	if (rc == 0)
		rc = open_handle(io, r, &e);
	if (rc < 0)
		return rc;
	__atomic_add_fetch(&e->writing, 1, __ATOMIC_RELAXED);
	iosnap_gate_enter(io->snap);
	rc = make_private(io, r, &e);
	if (rc == 0 && ftruncate(e->fd, (off_t)r->req->length) < 0)
		rc = server_fail(r, -errno, "truncating datafile 0x%" PRIx64 ": %s", e->handle,
				 strerror(errno));
	if (rc == 0)
		__atomic_store_n(&e->last_write_ms, now_ms(), __ATOMIC_RELAXED);
	iosnap_gate_leave(io->snap);
	if (e) {
		__atomic_sub_fetch(&e->writing, 1, __ATOMIC_RELAXED);
		fd_put(io, e);
	}
	return rc;
}

static int df_sync(struct iosrv *io, struct server_req *r)
{
	struct fd_entry *e;
	if (r->req->handle == 0) {
		if (syncfs(io->data_fd) < 0)
			return server_fail(r, -errno, "syncing %s: %s", io->data_dir,
					   strerror(errno));
		return 0;
	}
	int rc = open_handle(io, r, &e);
	if (rc < 0)
		return rc;
	if (fdatasync(e->fd) < 0)
		rc = server_fail(r, -errno, "syncing datafile 0x%" PRIx64 ": %s", e->handle,
				 strerror(errno));
	fd_put(io, e);
	return rc;
}

static int is_datafile_name(const char *name)
{
	if (strlen(name) != HANDLE_NAME_LEN)
		return 0;
	for (const char *p = name; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

static int df_statfs(struct iosrv *io, struct server_req *r)
{
	struct sfs_reply *reply = r->reply;
	struct statvfs vfs;
	struct stat st;
	if (fstatvfs(io->data_fd, &vfs) < 0)
		return server_fail(r, -errno, "statfs %s: %s", io->data_dir, strerror(errno));
	reply->total_bytes = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	reply->free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	reply->used_bytes = reply->n_files = 0;
	int dfd = openat(io->data_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		int rc = -errno;
		if (dfd >= 0)
			close(dfd);
		return server_fail(r, rc, "listing %s: %s", io->data_dir, strerror(-rc));
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!is_datafile_name(de->d_name) ||
		    fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		reply->used_bytes += (uint64_t)st.st_blocks * 512;
		reply->n_files++;
	}
	closedir(d);
	iosnap_usage(io->snap, &reply->snap_bytes, &reply->n_snaps);
	return 0;
}

/* EBUSY when one of the handles is being written: a write in progress or
 * one within SFS_BUSY_WINDOW_MS. Only cached descriptors remember, which
 * is enough: one being written stays cached. */
static int df_snap_busy(struct iosrv *io, struct server_req *r)
{
	uint64_t now = now_ms(), busy = 0, ago = 0;
	pthread_mutex_lock(&io->lock);
	for (uint32_t i = 0; i < r->req->n_handles && !busy; i++) {
		struct fd_entry *e = hash_find(io, r->req->handles[i]);
		uint64_t last = e ? __atomic_load_n(&e->last_write_ms, __ATOMIC_RELAXED) : 0;
		unsigned writing = e ? __atomic_load_n(&e->writing, __ATOMIC_RELAXED) : 0;
		if (e && (writing > 0 || (last && now - last < SFS_BUSY_WINDOW_MS))) {
			busy = e->handle;
			ago = last ? now - last : 0;
		}
	}
	pthread_mutex_unlock(&io->lock);
	if (busy)
		return server_fail(r, -EBUSY, "datafile 0x%" PRIx64 " is being written (last "
				   "write %" PRIu64 " ms ago)", busy, ago);
	return 0;
}

/* The DF_SNAP_* ops and DF_LIST: iosnap does the work. */
static int df_snap(struct iosrv *io, struct server_req *r)
{
	const struct sfs_req *q = r->req;
	struct sfs_reply *reply = r->reply;
	char err[SFS_MAX_MSG + 1] = "";
	int rc, eof = 1;
	switch (q->op) {
	case SFS_OP_DF_SNAP_FREEZE:
		rc = iosnap_freeze(io->snap, q->snap_id, q->timeout_ms, err, sizeof(err));
		break;
	case SFS_OP_DF_SNAP_LINK:
		rc = iosnap_link(io->snap, q->snap_id, q->handles, q->n_handles, err, sizeof(err));
		break;
	case SFS_OP_DF_SNAP_THAW:
		rc = iosnap_thaw(io->snap, q->snap_id, err, sizeof(err));
		break;
	case SFS_OP_DF_SNAP_DROP:
		rc = iosnap_drop(io->snap, q->snap_id, err, sizeof(err));
		break;
	case SFS_OP_DF_SNAP_RESTORE:
		rc = iosnap_restore(io->snap, q->snap_id, q->handles, q->n_handles, err,
				    sizeof(err));
		break;
	case SFS_OP_DF_SNAP_STAT:
		rc = iosnap_stat(io->snap, q->snap_id, &reply->n_files, &reply->used_bytes, err,
				 sizeof(err));
		break;
	default: /* DF_LIST */
		rc = iosnap_list(io->snap, q->snap_id, q->handle, reply->handles, SFS_SNAP_BATCH,
				 &reply->n_handles, &eof, err, sizeof(err));
		reply->eof = (uint8_t)eof;
		break;
	}
	if (rc < 0 && err[0])
		return server_fail(r, rc, "%s", err);
	return rc;
}

static int io_handle(void *ctx, struct server_req *r)
{
	struct iosrv *io = ctx;
	struct io_conn *ic = r->conn_state;
	int rc = servcap_check(io->caps, r, ic ? &ic->cap_memo : NULL);
	if (rc < 0)
		return rc;
	switch (r->req->op) {
	case SFS_OP_DF_CREATE: return df_create(io, r);
	case SFS_OP_DF_REMOVE: return df_remove(io, r);
	case SFS_OP_DF_WRITE: return df_write(io, r);
	case SFS_OP_DF_READ: return df_read(io, r);
	case SFS_OP_DF_GETSIZE: return df_getsize(io, r);
	case SFS_OP_DF_TRUNCATE: return df_truncate(io, r);
	case SFS_OP_DF_SYNC: return df_sync(io, r);
	case SFS_OP_DF_STATFS: return df_statfs(io, r);
	case SFS_OP_DF_SNAP_FREEZE:
	case SFS_OP_DF_SNAP_LINK:
	case SFS_OP_DF_SNAP_THAW:
	case SFS_OP_DF_SNAP_DROP:
	case SFS_OP_DF_SNAP_RESTORE:
	case SFS_OP_DF_SNAP_STAT:
	case SFS_OP_DF_LIST:
		return df_snap(io, r);
	case SFS_OP_DF_SNAP_BUSY:
		return df_snap_busy(io, r);
	default:
		return server_fail(r, -EOPNOTSUPP, "%s is not served by an I/O server",
				   sfs_op_name(r->req->op));
	}
}

static void io_free(void *ctx)
{
	struct iosrv *io = ctx;
	if (!io)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(io->buckets); i++) {
		struct fd_entry *e = io->buckets[i];
		while (e) {
			struct fd_entry *next = e->hash_next;
			entry_close(e);
			e = next;
		}
	}
	iosnap_free(io->snap);
	servcap_free(io->caps);
	if (io->data_fd >= 0)
		close(io->data_fd);
	pthread_mutex_destroy(&io->lock);
	free(io);
}

static int io_open(const struct sfs_conf *conf, const struct sfs_server_conf *srv, void **ctx,
		   char *err, size_t errlen)
{
	struct iosrv *io = calloc(1, sizeof(*io));
	int rc;
	if (!io) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	io->data_fd = -1;
	pthread_mutex_init(&io->lock, NULL);
	io->lru.lru_next = io->lru.lru_prev = &io->lru;
	io->open_flags = O_RDWR | O_CLOEXEC | (conf->sync_writes ? O_DSYNC : 0);
	io->max_request_bytes = conf->max_request_bytes;
	io->timeout_ms = conf->timeout_ms;
	if (snprintf_checked(io->data_dir, sizeof(io->data_dir), "%s/data", srv->dir) < 0) {
		snprintf(err, errlen, "dir %s: path too long", srv->dir);
		rc = -ENAMETOOLONG;
		goto fail;
	}
	rc = mkdir_p(io->data_dir, 0755);
	if (rc < 0) {
		snprintf(err, errlen, "creating %s: %s", io->data_dir, strerror(-rc));
		goto fail;
	}
	io->data_fd = open(io->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (io->data_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", io->data_dir, strerror(errno));
		goto fail;
	}
	rc = iosnap_open(io->data_fd, io->data_dir, forget_handle, io, &io->snap, err, errlen);
	if (rc == 0)
		rc = servcap_open(conf, "I/O", &io->caps, err, errlen);
	if (rc < 0)
		goto fail;
	*ctx = io;
	return 0;
fail:
	io_free(io);
	return rc;
}

static int io_conn_open(void *ctx, int fd, void **conn_state)
{
	struct io_conn *ic = calloc(1, sizeof(*ic));
	if (!ic)
		return -ENOMEM;
	/* Every transfer polls first; non-blocking lets sendfile do so too. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	*conn_state = ic;
	return 0;
}

static void io_conn_close(void *ctx, void *conn_state)
{
	struct io_conn *ic = conn_state;
	if (!ic)
		return;
	free(ic->buf);
	free(ic);
}

static void io_stop(void *ctx)
{
	struct iosrv *io = ctx;
	if (syncfs(io->data_fd) < 0)
		log_warn("syncing %s", io->data_dir);
	else
		log_info("data in %s is durable", io->data_dir);
}

const struct server_role_ops iosrv_role_ops = {
	.kind = "I/O",
	.role = SFS_ROLE_IO,
	.open = io_open,
	.conn_open = io_conn_open,
	.conn_close = io_conn_close,
	.handle = io_handle,
	.stop = io_stop,
	.free = io_free,
};
