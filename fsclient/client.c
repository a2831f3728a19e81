/*
 * client: libsfs's mount, channel pool, error messages and the namespace.
 *
 * Namespace calls are one blocking request each to the metadata server
 * (sfs_conn_call on the channel's metadata connection); it creates and
 * removes the datafiles itself, so the client never does. What touches
 * datafiles (sizes, truncation, reads and writes) lives in data.c.
 *
 * The channel pool is the only shared mutable state, behind one mutex that
 * is never held across network I/O. Error messages are per thread so that
 * concurrent callers each see their own failure.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "client_internal.h"
#include "util.h"

static __thread char last_error[CLIENT_ERR_BYTES];

void client_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
}

const char *sfs_last_error(void)
{
	return last_error;
}

const char *sfs_strerror(int err)
{
	static __thread char text[128];
	switch (err) {
	case 0:
		return "success";
	case -ETIMEDOUT:
		return "a server did not answer within the timeout";
	case -EIO:
		return "I/O error (a server failed or misbehaved)";
	case -ESTALE:
		return "the file was removed or replaced";
	default:
		return errno_text(err < 0 ? -err : err, text, sizeof(text));
	}
}

void client_server_error(const struct sfs_server_conf *srv, const char *msg, char *out,
			 size_t len)
{
	char label[256];
	size_t n = strlen(sfs_server_label(srv, label, sizeof(label)));
	if (strncmp(msg, label, n) == 0 && strncmp(msg + n, ": ", 2) == 0)
		msg += n + 2;
	snprintf(out, len, "%s", msg);
}

int client_conn_ready(struct sfs_conn *conn, char *err, size_t errlen)
{
	int lost = 0;
	if (conn->fd >= 0) {
		/* Between calls the server owes us nothing: anything readable
		 * on an idle connection is EOF, a reset or garbage. */
		struct pollfd pfd = { .fd = conn->fd, .events = POLLIN };
		if (poll(&pfd, 1, 0) != 0) {
			sfs_conn_close(conn);
			lost = 1;
		}
	}
	int rc = sfs_conn_ensure(conn, err, errlen);
	/* A server that dropped the connection we were using and now refuses
	 * another failed while in use, like one that dies mid-request: -EIO,
	 * whichever side of a call boundary its death fell on. */
	if (rc < 0 && lost && rc != -ETIMEDOUT)
		rc = -EIO;
	return rc;
}

/* --- channels --- */

static struct chan *chan_new(const struct sfs_conf *conf)
{
	struct chan *ch = calloc(1, sizeof(*ch) + conf->n_io * sizeof(ch->io[0]));
	if (!ch)
		return NULL;
	sfs_conn_init(&ch->meta, conf, &conf->meta);
	for (unsigned i = 0; i < conf->n_io; i++)
		sfs_conn_init(&ch->io[i], conf, &conf->io[i]);
	return ch;
}

static void chan_free(struct chan *ch, unsigned n_io)
{
	sfs_conn_close(&ch->meta);
	for (unsigned i = 0; i < n_io; i++)
		sfs_conn_close(&ch->io[i]);
	free(ch->plan_mem);
	free(ch);
}

struct chan *client_chan_get_ungated(struct sfs *fs)
{
	pthread_mutex_lock(&fs->lock);
	struct chan *ch = fs->free_chans;
	if (ch)
		fs->free_chans = ch->next_free;
	pthread_mutex_unlock(&fs->lock);
	if (ch)
		return ch;
	/* Allocate outside the lock: a channel is large and nobody waits for it. */
	ch = chan_new(fs->conf);
	if (!ch) {
		client_error("out of memory for a channel");
		return NULL;
	}
	pthread_mutex_lock(&fs->lock);
	ch->next_all = fs->all_chans;
	fs->all_chans = ch;
	pthread_mutex_unlock(&fs->lock);
	return ch;
}

void client_chan_put_ungated(struct sfs *fs, struct chan *ch)
{
	pthread_mutex_lock(&fs->lock);
	ch->next_free = fs->free_chans;
	fs->free_chans = ch;
	pthread_mutex_unlock(&fs->lock);
}

struct chan *client_chan_get(struct sfs *fs)
{
	if (fs->ctl)
		ctl_enter(fs->ctl);
	struct chan *ch = client_chan_get_ungated(fs);
	if (!ch && fs->ctl)
		ctl_leave(fs->ctl);
	return ch;
}

void client_chan_put(struct sfs *fs, struct chan *ch)
{
	client_chan_put_ungated(fs, ch);
	if (fs->ctl)
		ctl_leave(fs->ctl);
}

unsigned client_drop_connections(struct sfs *fs)
{
	unsigned n = 0;
	/* The free list, not all_chans: a channel on it belongs to no call,
	 * and a call takes one only under this lock. */
	pthread_mutex_lock(&fs->lock);
	for (struct chan *ch = fs->free_chans; ch; ch = ch->next_free) {
		n += ch->meta.fd >= 0;
		sfs_conn_close(&ch->meta);
		for (unsigned i = 0; i < fs->conf->n_io; i++) {
			n += ch->io[i].fd >= 0;
			sfs_conn_close(&ch->io[i]);
		}
	}
	pthread_mutex_unlock(&fs->lock);
	return n;
}

/* --- mount --- */

static int conf_load(const char *conf_path, const char *const *overrides,
		     struct sfs_conf *conf)
{
	char err[CLIENT_ERR_BYTES / 2];
	int rc = sfs_conf_load(conf_path, conf, err, sizeof(err));
	for (size_t i = 0; rc == 0 && overrides && overrides[i]; i++)
		rc = sfs_conf_override(conf, overrides[i], err, sizeof(err));
	if (rc == 0 && overrides && overrides[0])
		rc = sfs_conf_validate(conf, err, sizeof(err));
	if (rc < 0)
		client_error("%s", err);
	/* A file that cannot be read is as unusable as one that does not parse. */
	return rc < 0 && rc != -ENOMEM ? -EINVAL : rc;
}

int sfs_connect(const char *conf_path, const char *const *overrides, struct sfs **out)
{
	struct sfs *fs = NULL;
	int rc = -EINVAL;
	if (!out || !conf_path) {
		client_error("sfs_connect: no config path or no result pointer");
		return -EINVAL;
	}
	*out = NULL;
	fs = calloc(1, sizeof(*fs));
	if (!fs || !(fs->conf = malloc(sizeof(*fs->conf)))) {
		client_error("out of memory");
		rc = -ENOMEM;
		goto out;
	}
	rc = conf_load(conf_path, overrides, fs->conf);
	if (rc < 0)
		goto out;
	rc = -pthread_mutex_init(&fs->lock, NULL);
	if (rc < 0)
		goto out;
	/* 0 is "no session" on the server */
	while (fs->lock_session == 0)
		if (getrandom(&fs->lock_session, sizeof(fs->lock_session), 0) < 0)
			fs->lock_session = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);
	fs->ctl = ctl_start(fs);
	*out = fs;
	fs = NULL;
out:
	if (fs)
		free(fs->conf);
	free(fs);
	return rc;
}

void sfs_disconnect(struct sfs *fs)
{
	if (!fs)
		return;
	ctl_stop(fs->ctl);
	struct chan *next;
	for (struct chan *ch = fs->all_chans; ch; ch = next) {
		next = ch->next_all;
		chan_free(ch, fs->conf->n_io);
	}
	pthread_mutex_destroy(&fs->lock);
	free(fs->conf);
	free(fs);
}

/* --- metadata requests --- */

static int check_path(struct sfs *fs, const char *path, const char *what)
{
	if (!fs || !path || path[0] != '/') {
		client_error("%s %s: expected an absolute path", what, path ? path : "(null)");
		return -EINVAL;
	}
	if (strlen(path) > SFS_MAX_PATH) {
		client_error("%s %.64s...: path longer than %d bytes", what, path, SFS_MAX_PATH);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* ch->req for op on path, everything else zero. */
static struct sfs_req *meta_req(struct chan *ch, uint16_t op, const char *path)
{
	memset(&ch->req, 0, sizeof(ch->req));
	ch->req.op = op;
	if (path)
		snprintf(ch->req.path, sizeof(ch->req.path), "%s", path);
	return &ch->req;
}

/* Send ch->req to the metadata server; the reply lands in ch->reply. 0 or
 * a negative errno with the reason in err. */
static int meta_send(struct chan *ch, char *err, size_t errlen)
{
	int rc = client_conn_ready(&ch->meta, err, errlen);
	if (rc == 0)
		rc = sfs_conn_call(&ch->meta, &ch->req, NULL, 0, &ch->reply, NULL, 0, NULL, err,
				   errlen);
	return rc;
}

/* meta_send, and on failure the error reads "what path: reason" (the
 * server's message never repeats the path). */
static int meta_call(struct chan *ch, const char *what, const char *path)
{
	char err[CLIENT_ERR_BYTES / 2];
	int rc = meta_send(ch, err, sizeof(err));
	if (rc < 0)
		client_error("%s %s: %s", what, path, err);
	return rc;
}

/* Request op on path and nothing else: the shape of most namespace calls. */
static int meta_simple(struct sfs *fs, uint16_t op, const char *path, uint32_t mode,
		       const char *what)
{
	int rc = check_path(fs, path, what);
	if (rc < 0)
		return rc;
	struct chan *ch = client_chan_get(fs);
	if (!ch)
		return -ENOMEM;
	meta_req(ch, op, path)->mode = mode;
	rc = meta_call(ch, what, path);
	client_chan_put(fs, ch);
	return rc;
}

int client_meta_handle_call(struct chan *ch, uint16_t op, uint64_t handle, char *err,
			    size_t errlen)
{
	meta_req(ch, op, NULL)->handle = handle;
	return meta_send(ch, err, errlen);
}

/* cap (or NULL): the capability for a file's datafiles */
static int meta_lookup(struct chan *ch, const char *path, const char *what,
		       struct sfs_attr *attr, struct sfs_cap *cap)
{
	meta_req(ch, SFS_OP_LOOKUP, path);
	int rc = meta_call(ch, what, path);
	if (rc == 0)
		*attr = ch->reply.attr;
	if (rc == 0 && cap)
		*cap = ch->reply.cap;
	return rc;
}

void client_file_cap(struct sfs_file *f, struct sfs_cap *out)
{
	pthread_mutex_lock(&f->cap_lock);
	*out = f->cap;
	pthread_mutex_unlock(&f->cap_lock);
}

int client_file_cap_renew(struct sfs_file *f, struct chan *ch, struct sfs_cap *out, char *err,
			  size_t errlen)
{
	meta_req(ch, SFS_OP_GETATTR, NULL)->handle = f->fid;
	int rc = meta_send(ch, err, errlen);
	if (rc < 0)
		return rc;
	*out = ch->reply.cap;
	pthread_mutex_lock(&f->cap_lock);
	f->cap = *out;
	pthread_mutex_unlock(&f->cap_lock);
	return 0;
}

/* The striped data path needs each stripe position on its own server. */
static int check_layout(const struct sfs *fs, const struct sfs_layout *l, const char *what,
			const char *path)
{
	unsigned char seen[SFS_MAX_IO_SERVERS] = { 0 };
	int bad = l->stripe_count == 0 || l->stripe_count > SFS_MAX_STRIPE ||
		  l->strip_size < SFS_STRIP_SIZE_MIN || l->strip_size > SFS_STRIP_SIZE_MAX;
	for (unsigned i = 0; !bad && i < l->stripe_count; i++) {
		bad = l->servers[i] >= fs->conf->n_io || seen[l->servers[i]];
		if (!bad)
			seen[l->servers[i]] = 1;
	}
	if (!bad)
		return 0;
	client_error("%s %s: the metadata server gave a layout this client cannot use "
		     "(%u servers, strip %u, %u I/O servers configured)",
		     what, path, l->stripe_count, l->strip_size, fs->conf->n_io);
	return -EIO;
}

static int stat_type(uint8_t wire_type)
{
	switch (wire_type) {
	case SFS_TYPE_DIR: return SFS_STAT_DIR;
	case SFS_TYPE_SYMLINK: return SFS_STAT_SYMLINK;
	default: return SFS_STAT_FILE;
	}
}

static void attr_to_stat(const struct sfs_attr *a, uint64_t size_bytes, struct sfs_stat *st)
{
	memset(st, 0, sizeof(*st));
	st->fid = a->fid;
	st->type = stat_type(a->type);
	st->mode = a->mode;
	st->uid = a->uid;
	st->gid = a->gid;
	st->size_bytes = size_bytes;
	st->atime_ns = a->atime_ns;
	st->mtime_ns = a->mtime_ns;
	st->ctime_ns = a->ctime_ns;
	st->strip_size = a->layout.strip_size;
	st->stripe_count = a->layout.stripe_count;
	/* A directory's stripe_count is a default; it has no servers. */
	for (unsigned i = 0; a->type == SFS_TYPE_FILE && i < a->layout.stripe_count &&
			     i < SFS_STRIPE_MAX; i++)
		st->servers[i] = a->layout.servers[i];
}

static int set_mtime(struct chan *ch, uint64_t fid, const char *what, const char *path)
{
	struct sfs_req *req = meta_req(ch, SFS_OP_SETMTIME, NULL);
	req->handle = fid;
	req->mtime_ns = wall_ns();
	return meta_call(ch, what, path);
}

/* --- files --- */

#define OPEN_FLAGS \
	(SFS_O_WRONLY | SFS_O_RDWR | SFS_O_CREAT | SFS_O_EXCL | SFS_O_TRUNC | SFS_O_APPEND)

/* An entry that open may use: a regular file with a usable layout. */
static int open_check_attr(struct sfs *fs, const struct sfs_attr *attr, const char *path)
{
	if (attr->type == SFS_TYPE_DIR) {
		client_error("open %s: is a directory", path);
		return -EISDIR;
	}
	if (attr->type == SFS_TYPE_SYMLINK) {
		client_error("open %s: is a symbolic link (libsfs does not follow links)", path);
		return -ELOOP;
	}
	return check_layout(fs, &attr->layout, "open", path);
}

/* LOOKUP, or CREATE with SFS_O_CREAT, or GETATTR by fid (path NULL): the
 * file's attributes. */
static int open_attr(struct sfs *fs, struct chan *ch, const char *path, uint64_t fid,
		     const char *name, int flags, uint32_t mode, uint32_t uid, uint32_t gid,
		     struct sfs_attr *attr, struct sfs_cap *cap)
{
	struct sfs_req *req;
	if (!path) {
		req = meta_req(ch, SFS_OP_GETATTR, NULL);
		req->handle = fid;
	} else {
		req = meta_req(ch, flags & SFS_O_CREAT ? SFS_OP_CREATE : SFS_OP_LOOKUP, path);
		req->mode = mode;
		req->flags = flags & SFS_O_EXCL ? SFS_CREATE_EXCL : 0;
		req->uid = uid;
		req->gid = gid;
	}
	int rc = meta_call(ch, "open", name);
	if (rc < 0)
		return rc;
	*attr = ch->reply.attr;
	*cap = ch->reply.cap;
	return open_check_attr(fs, attr, name);
}

/* sfs_open_as (path) and sfs_open_fid (path NULL, name for messages). */
static int open_common(struct sfs *fs, const char *path, uint64_t fid, const char *name,
		       int flags, uint32_t mode, uint32_t uid, uint32_t gid,
		       struct sfs_file **out, struct sfs_stat *st)
{
	char err[CLIENT_ERR_BYTES / 2];
	struct sfs_file *f = NULL;
	struct sfs_attr attr;
	struct sfs_cap cap;
	struct chan *ch = NULL;
	int rc = check_path(fs, name, "open");
	if (rc < 0)
		return rc;
	if (!out || (flags & ~OPEN_FLAGS) || (flags & 3) == 3 ||
	    (!path && (flags & (SFS_O_CREAT | SFS_O_EXCL)))) {
		client_error("open %s: bad flags 0x%x", name, (unsigned)flags);
		return -EINVAL;
	}
	*out = NULL;
	ch = client_chan_get(fs);
	if (!ch)
		return -ENOMEM;
	rc = open_attr(fs, ch, path, fid, name, flags, mode, uid, gid, &attr, &cap);
	if (rc < 0)
		goto out;
	f = calloc(1, sizeof(*f) + strlen(name) + 1);
	if (!f) {
		client_error("open %s: out of memory", name);
		rc = -ENOMEM;
		goto out;
	}
	*f = (struct sfs_file){ .fs = fs, .fid = attr.fid, .layout = attr.layout, .flags = flags,
				.atime_ns = attr.atime_ns, .mtime_ns = attr.mtime_ns,
				.cap = cap };
	pthread_mutex_init(&f->cap_lock, NULL);
	strcpy(f->path, name);
	path = name;
	if (flags & SFS_O_TRUNC) {
		if (fs->ctl)
			ctl_touch(fs->ctl, f->fid, &f->layout, &f->ctl_epoch);
		rc = data_truncate(fs, ch, &cap, &f->layout, 0, err, sizeof(err));
		if (rc < 0) {
			client_error("open %s: truncating: %s", path, err);
			goto out;
		}
		f->written = 1;
	}
	if (st) {
		uint64_t size_bytes = 0;
		if (!(flags & (SFS_O_EXCL | SFS_O_TRUNC)))
			rc = data_file_size(fs, ch, &cap, &f->layout, &size_bytes, err, sizeof(err));
		if (rc < 0) {
			client_error("open %s: %s", path, err);
			goto out;
		}
		attr_to_stat(&attr, size_bytes, st);
	}
	*out = f;
	f = NULL;
out:
	free(f);
	client_chan_put(fs, ch);
	return rc;
}

int sfs_open(struct sfs *fs, const char *path, int flags, uint32_t mode, struct sfs_file **out)
{
	return open_common(fs, path, 0, path, flags, mode, (uint32_t)geteuid(),
			   (uint32_t)getegid(), out, NULL);
}

int sfs_open_as(struct sfs *fs, const char *path, int flags, uint32_t mode, uint32_t uid,
		uint32_t gid, struct sfs_file **out, struct sfs_stat *st)
{
	return open_common(fs, path, 0, path, flags, mode, uid, gid, out, st);
}

int sfs_open_fid(struct sfs *fs, uint64_t fid, const char *path, int flags,
		 struct sfs_file **out)
{
	return open_common(fs, NULL, fid, path, flags, 0, 0, 0, out, NULL);
}

#define RELATIME_NS (24 * 3600 * 1000000000ll)

/* Linux's relatime: a read moves atime only past an mtime, or after a day. */
static int close_wants_atime(const struct sfs_file *f)
{
	return __atomic_load_n(&f->was_read, __ATOMIC_RELAXED) &&
	       (f->atime_ns <= f->mtime_ns || wall_ns() - f->atime_ns > RELATIME_NS);
}

int sfs_flush(struct sfs_file *f)
{
	if (!f)
		return -EINVAL;
	if (!__atomic_exchange_n(&f->written, 0, __ATOMIC_RELAXED))
		return 0;
	struct chan *ch = client_chan_get(f->fs);
	if (!ch)
		return -ENOMEM;
	int rc = set_mtime(ch, f->fid, "flush", f->path);
	client_chan_put(f->fs, ch);
	return rc == -ENOENT ? 0 : rc; /* removed while open: no mtime to keep */
}

int sfs_close(struct sfs_file *f)
{
	int rc = 0;
	if (!f)
		return 0;
	int written = __atomic_load_n(&f->written, __ATOMIC_RELAXED);
	if (written || close_wants_atime(f)) {
		struct chan *ch = client_chan_get(f->fs);
		if (!ch) {
			rc = -ENOMEM;
		} else if (written) {
			rc = set_mtime(ch, f->fid, "close", f->path);
		} else {
			struct sfs_req *req = meta_req(ch, SFS_OP_SETATTR, NULL);
			req->handle = f->fid;
			req->valid = SFS_SETATTR_ATIME | SFS_SETATTR_KEEP_CTIME;
			req->atime_ns = wall_ns();
			rc = meta_call(ch, "close", f->path);
		}
		/* Removed while open: there is no time left to keep. */
		if (rc == -ENOENT)
			rc = 0;
		if (ch)
			client_chan_put(f->fs, ch);
	}
	pthread_mutex_destroy(&f->cap_lock);
	free(f);
	return rc;
}

/* LOCK or GETLK of lk on f for owner. */
static int lock_call(struct sfs_file *f, uint16_t op, uint64_t owner, int flock,
		     struct sfs_lock *lk)
{
	if (!f || !lk || lk->type < SFS_LOCK_READ || lk->type > SFS_LOCK_UNLOCK ||
	    (!flock && lk->start > lk->end)) {
		client_error("lock %s: bad lock type or range", f ? f->path : "(null)");
		return -EINVAL;
	}
	struct chan *ch = client_chan_get(f->fs);
	if (!ch)
		return -ENOMEM;
	struct sfs_req *req = meta_req(ch, op, NULL);
	req->handle = f->fid;
	req->session = f->fs->lock_session;
	req->owner = owner;
	req->pid = lk->pid;
	req->lk_kind = flock ? SFS_LK_FLOCK : SFS_LK_POSIX;
	/* SFS_LOCK_* and the wire's SFS_LK_* are the same numbers */
	req->lk_type = (uint8_t)lk->type;
	req->lk_start = flock ? 0 : lk->start;
	req->lk_end = flock ? UINT64_MAX : lk->end;
	int rc = meta_call(ch, op == SFS_OP_LOCK ? "lock" : "getlk", f->path);
	if (rc == 0 && op == SFS_OP_GETLK) {
		lk->type = ch->reply.lk_type;
		lk->start = ch->reply.lk_start;
		lk->end = ch->reply.lk_end;
		lk->pid = ch->reply.lk_pid;
	}
	client_chan_put(f->fs, ch);
	return rc;
}

int sfs_lock(struct sfs_file *f, uint64_t owner, int flock, const struct sfs_lock *lk)
{
	struct sfs_lock copy = lk ? *lk : (struct sfs_lock){ 0 };
	return lock_call(f, SFS_OP_LOCK, owner, flock, lk ? &copy : NULL);
}

int sfs_getlk(struct sfs_file *f, uint64_t owner, int flock, struct sfs_lock *lk)
{
	return lock_call(f, SFS_OP_GETLK, owner, flock, lk);
}

int sfs_fstat(struct sfs_file *f, struct sfs_stat *st)
{
	char err[CLIENT_ERR_BYTES / 2];
	struct sfs_attr attr;
	uint64_t size_bytes;
	if (!f || !st)
		return -EINVAL;
	struct chan *ch = client_chan_get(f->fs);
	if (!ch)
		return -ENOMEM;
	meta_req(ch, SFS_OP_GETATTR, NULL)->handle = f->fid;
	int rc = meta_call(ch, "fstat", f->path);
	if (rc == -ENOENT) {
		client_error("fstat %s: the file was removed since it was opened", f->path);
		rc = -ESTALE;
	}
	if (rc == 0) {
		attr = ch->reply.attr;
		pthread_mutex_lock(&f->cap_lock);
		f->cap = ch->reply.cap; /* a fresh one: a renewal for free */
		pthread_mutex_unlock(&f->cap_lock);
	}
	if (rc < 0)
		goto out;
	rc = data_file_size_of(f, ch, &size_bytes, err, sizeof(err));
	if (rc < 0) {
		client_error("fstat %s: %s", f->path, err);
		goto out;
	}
	attr.layout = f->layout;
	attr_to_stat(&attr, size_bytes, st);
out:
	client_chan_put(f->fs, ch);
	return rc;
}

int sfs_ftruncate(struct sfs_file *f, uint64_t size)
{
	char err[CLIENT_ERR_BYTES / 2];
	if (!f)
		return -EINVAL;
	if ((f->flags & 3) == SFS_O_RDONLY) {
		client_error("ftruncate %s: file not open for writing", f->path);
		return -EBADF;
	}
	if (size > INT64_MAX) {
		client_error("ftruncate %s: size %llu is beyond the largest file", f->path,
			     (unsigned long long)size);
		return -EINVAL;
	}
	struct chan *ch = client_chan_get(f->fs);
	if (!ch)
		return -ENOMEM;
	__atomic_store_n(&f->written, 1, __ATOMIC_RELAXED);
	if (f->fs->ctl)
		ctl_touch(f->fs->ctl, f->fid, &f->layout, &f->ctl_epoch);
	int rc = data_truncate_of(f, ch, size, err, sizeof(err));
	if (rc < 0)
		client_error("ftruncate %s: %s", f->path, err);
	client_chan_put(f->fs, ch);
	return rc;
}

/* --- paths --- */

/* A file's size from its datafiles; a symlink's is its target's length. */
static int stat_size(struct sfs *fs, struct chan *ch, const struct sfs_attr *attr,
		     const struct sfs_cap *cap, const char *name, uint64_t *size_bytes)
{
	char err[CLIENT_ERR_BYTES / 2];
	*size_bytes = 0;
	if (attr->type == SFS_TYPE_DIR)
		return 0;
	if (attr->type == SFS_TYPE_SYMLINK) {
		meta_req(ch, SFS_OP_READLINK, NULL)->handle = attr->fid;
		int rc = meta_call(ch, "stat", name);
		if (rc == 0)
			*size_bytes = strlen(ch->reply.target);
		return rc;
	}
	int rc = check_layout(fs, &attr->layout, "stat", name);
	if (rc < 0)
		return rc;
	rc = data_file_size(fs, ch, cap, &attr->layout, size_bytes, err, sizeof(err));
	if (rc < 0)
		client_error("stat %s: %s", name, err);
	return rc;
}

int sfs_stat(struct sfs *fs, const char *path, struct sfs_stat *st)
{
	struct sfs_attr attr;
	struct sfs_cap cap;
	uint64_t size_bytes = 0;
	int rc = check_path(fs, path, "stat");
	if (rc < 0 || !st)
		return rc < 0 ? rc : -EINVAL;
	struct chan *ch = client_chan_get(fs);
	if (!ch)
		return -ENOMEM;
	rc = meta_lookup(ch, path, "stat", &attr, &cap);
	if (rc == 0)
		rc = stat_size(fs, ch, &attr, &cap, path, &size_bytes);
	if (rc == 0)
		attr_to_stat(&attr, size_bytes, st);
	client_chan_put(fs, ch);
	return rc;
}

int sfs_stat_fid(struct sfs *fs, uint64_t fid, struct sfs_stat *st)
{
	char name[32];
	struct sfs_attr attr;
	uint64_t size_bytes = 0;
	if (!fs || !st)
		return -EINVAL;
	snprintf(name, sizeof(name), "fid 0x%llx", (unsigned long long)fid);
	struct chan *ch = client_chan_get(fs);
	if (!ch)
		return -ENOMEM;
	meta_req(ch, SFS_OP_GETATTR, NULL)->handle = fid;
	int rc = meta_call(ch, "stat", name);
	if (rc == 0) {
		struct sfs_cap cap = ch->reply.cap;
		attr = ch->reply.attr;
		rc = stat_size(fs, ch, &attr, &cap, name, &size_bytes);
	}
	if (rc == 0)
		attr_to_stat(&attr, size_bytes, st);
	client_chan_put(fs, ch);
	return rc;
}

int sfs_truncate(struct sfs *fs, const char *path, uint64_t size)
{
	char err[CLIENT_ERR_BYTES / 2];
	struct sfs_attr attr;
	struct sfs_cap cap;
	int rc = check_path(fs, path, "truncate");
	if (rc < 0)
		return rc;
	if (size > INT64_MAX) {
		client_error("truncate %s: size %llu is beyond the largest file", path,
			     (unsigned long long)size);
		return -EINVAL;
	}
	struct chan *ch = client_chan_get(fs);
	if (!ch)
		return -ENOMEM;
	rc = meta_lookup(ch, path, "truncate", &attr, &cap);
	if (rc == 0 && attr.type == SFS_TYPE_DIR) {
		client_error("truncate %s: is a directory", path);
		rc = -EISDIR;
	}
	if (rc == 0)
		rc = check_layout(fs, &attr.layout, "truncate", path);
	if (rc < 0)
		goto out;
	if (fs->ctl)
		ctl_touch(fs->ctl, attr.fid, &attr.layout, NULL);
	rc = data_truncate(fs, ch, &cap, &attr.layout, size, err, sizeof(err));
	if (rc < 0) {
		client_error("truncate %s: %s", path, err);
		goto out;
	}
	rc = set_mtime(ch, attr.fid, "truncate", path);
out:
	client_chan_put(fs, ch);
	return rc;
}

int sfs_unlink(struct sfs *fs, const char *path)
{
	return meta_simple(fs, SFS_OP_UNLINK, path, 0, "unlink");
}

int sfs_mkdir(struct sfs *fs, const char *path, uint32_t mode)
{
	return sfs_mkdir_as(fs, path, mode, (uint32_t)geteuid(), (uint32_t)getegid());
}

int sfs_mkdir_as(struct sfs *fs, const char *path, uint32_t mode, uint32_t uid, uint32_t gid)
{
	int rc = check_path(fs, path, "mkdir");
	if (rc < 0)
		return rc;
	struct chan *ch = client_chan_get(fs);
	if (!ch)
		return -ENOMEM;
	struct sfs_req *req = meta_req(ch, SFS_OP_MKDIR, path);
	req->mode = mode;
	req->uid = uid;
	req->gid = gid;
	rc = meta_call(ch, "mkdir", path);
	client_chan_put(fs, ch);
	return rc;
}

int sfs_rename(struct sfs *fs, const char *from, const char *to, unsigned flags)
{
	int rc = check_path(fs, from, "rename");
	if (rc == 0)
		rc = check_path(fs, to, "rename");
	if (rc < 0)
		return rc;
	if (flags & ~SFS_RENAME_NOREPLACE) {
		client_error("rename %s: unknown flags 0x%x", from, flags);
		return -EINVAL;
	}
	struct chan *ch = client_chan_get(fs);
	if (!ch)
		return -ENOMEM;
	struct sfs_req *req = meta_req(ch, SFS_OP_RENAME, from);
	snprintf(req->path2, sizeof(req->path2), "%s", to);
	req->flags = flags & SFS_RENAME_NOREPLACE ? SFS_RENAMEF_NOREPLACE : 0;
	char what[SFS_MAX_PATH + 16];
	snprintf(what, sizeof(what), "rename %s to", from);
	rc = meta_call(ch, what, to);
	client_chan_put(fs, ch);
	return rc;
}

int sfs_setattr(struct sfs *fs, uint64_t fid, const struct sfs_setattr *sa, struct sfs_stat *st)
{
	char name[32];
	uint64_t size_bytes = 0;
	if (!fs || !sa)
		return -EINVAL;
	snprintf(name, sizeof(name), "fid 0x%llx", (unsigned long long)fid);
	if (sa->valid & ~(unsigned)SFS_SETATTR_ALL) {
		client_error("setattr %s: unknown fields 0x%x", name, sa->valid);
		return -EINVAL;
	}
	struct chan *ch = client_chan_get(fs);
	if (!ch)
		return -ENOMEM;
	/* SFS_SET_* and the wire's SFS_SETATTR_* are the same bits */
	struct sfs_req *req = meta_req(ch, SFS_OP_SETATTR, NULL);
	req->handle = fid;
	req->valid = sa->valid;
	req->mode = sa->mode;
	req->uid = sa->uid;
	req->gid = sa->gid;
	req->atime_ns = sa->atime_ns;
	req->mtime_ns = sa->mtime_ns;
	int rc = meta_call(ch, "setattr", name);
	if (rc == 0 && st) {
		struct sfs_attr attr = ch->reply.attr;
		struct sfs_cap cap = ch->reply.cap;
		rc = stat_size(fs, ch, &attr, &cap, name, &size_bytes);
		if (rc == 0)
			attr_to_stat(&attr, size_bytes, st);
	}
	client_chan_put(fs, ch);
	return rc;
}

int sfs_symlink(struct sfs *fs, const char *target, const char *path, uint32_t uid,
		uint32_t gid, struct sfs_stat *st)
{
	int rc = check_path(fs, path, "symlink");
	if (rc < 0)
		return rc;
	if (!target || strlen(target) > SFS_MAX_PATH) {
		client_error("symlink %s: target missing or longer than %d bytes", path,
			     SFS_MAX_PATH);
		return target ? -ENAMETOOLONG : -EINVAL;
	}
	struct chan *ch = client_chan_get(fs);
	if (!ch)
		return -ENOMEM;
	struct sfs_req *req = meta_req(ch, SFS_OP_SYMLINK, path);
	snprintf(req->path2, sizeof(req->path2), "%s", target);
	req->uid = uid;
	req->gid = gid;
	rc = meta_call(ch, "symlink", path);
	if (rc == 0 && st)
		attr_to_stat(&ch->reply.attr, strlen(target), st);
	client_chan_put(fs, ch);
	return rc;
}

ssize_t sfs_readlink(struct sfs *fs, uint64_t fid, char *buf, size_t len)
{
	char name[32];
	if (!fs || !buf || !len)
		return -EINVAL;
	snprintf(name, sizeof(name), "fid 0x%llx", (unsigned long long)fid);
	struct chan *ch = client_chan_get(fs);
	if (!ch)
		return -ENOMEM;
	meta_req(ch, SFS_OP_READLINK, NULL)->handle = fid;
	ssize_t rc = meta_call(ch, "readlink", name);
	if (rc == 0) {
		snprintf(buf, len, "%s", ch->reply.target);
		rc = (ssize_t)strlen(ch->reply.target);
	}
	client_chan_put(fs, ch);
	return rc;
}

int sfs_rmdir(struct sfs *fs, const char *path)
{
	return meta_simple(fs, SFS_OP_RMDIR, path, 0, "rmdir");
}

/* A batch must move forward: names non-empty, without '/', each after the
 * one before, the first after cookie (the server's order is memcmp's, as
 * strcmp's). Otherwise a confused server could keep sfs_readdir looping. */
static int readdir_batch_ok(const char *cookie, const struct sfs_dirent *entries, unsigned n,
			    int eof)
{
	const char *prev = cookie;
	if (n == 0 && !eof)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		const char *name = entries[i].name;
		if (!*name || strchr(name, '/') || strcmp(name, prev) <= 0)
			return 0;
		prev = name;
	}
	return 1;
}

/* One READDIR batch after cookie, copied out so that the channel goes back
 * to the pool before callbacks run (they may call into libsfs, or walk a
 * tree with nested sfs_readdir calls). */
static int readdir_batch(struct sfs *fs, const char *path, const char *cookie,
			 struct sfs_dirent *entries, unsigned *n, int *eof)
{
	struct chan *ch = client_chan_get(fs);
	if (!ch)
		return -ENOMEM;
	struct sfs_req *req = meta_req(ch, SFS_OP_READDIR, path);
	snprintf(req->cookie, sizeof(req->cookie), "%s", cookie);
	int rc = meta_call(ch, "readdir", path);
	if (rc == 0) {
		*n = ch->reply.n_entries;
		*eof = ch->reply.eof;
		memcpy(entries, ch->reply.entries, *n * sizeof(*entries));
		if (!readdir_batch_ok(cookie, entries, *n, *eof)) {
			client_error("readdir %s: the metadata server sent a batch that does not "
				     "continue after \"%s\"", path, cookie);
			rc = -EIO;
		}
	}
	client_chan_put(fs, ch);
	return rc;
}

int sfs_readdir(struct sfs *fs, const char *path, sfs_readdir_fn fn, void *arg)
{
	char cookie[SFS_MAX_NAME + 1] = "";
	struct sfs_dirent *entries = NULL;
	unsigned n = 0;
	int eof = 0;
	int rc = check_path(fs, path, "readdir");
	if (rc < 0 || !fn)
		return rc < 0 ? rc : -EINVAL;
	entries = malloc(SFS_READDIR_MAX * sizeof(*entries));
	if (!entries) {
		client_error("readdir %s: out of memory", path);
		return -ENOMEM;
	}
	while (!eof) {
		rc = readdir_batch(fs, path, cookie, entries, &n, &eof);
		if (rc < 0)
			goto out;
		for (unsigned i = 0; i < n; i++) {
			int type = stat_type(entries[i].type);
			rc = fn(arg, entries[i].name, type, entries[i].fid);
			if (rc != 0)
				goto out;
		}
		if (n)
			snprintf(cookie, sizeof(cookie), "%s", entries[n - 1].name);
	}
out:
	free(entries);
	return rc;
}

int sfs_setstripe(struct sfs *fs, const char *dir, uint32_t strip_size, unsigned stripe_count)
{
	int rc = check_path(fs, dir, "setstripe");
	if (rc < 0)
		return rc;
	if (stripe_count > SFS_MAX_STRIPE || stripe_count > fs->conf->n_io) {
		client_error("setstripe %s: stripe count %u: only %u I/O servers (at most %d)",
			     dir, stripe_count, fs->conf->n_io, SFS_MAX_STRIPE);
		return -EINVAL;
	}
	struct chan *ch = client_chan_get(fs);
	if (!ch)
		return -ENOMEM;
	struct sfs_req *req = meta_req(ch, SFS_OP_SETSTRIPE, dir);
	req->strip_size = strip_size;
	req->stripe_count = (uint16_t)stripe_count;
	rc = meta_call(ch, "setstripe", dir);
	client_chan_put(fs, ch);
	return rc;
}

/* --- servers --- */

unsigned sfs_server_count(struct sfs *fs)
{
	return fs ? 1 + fs->conf->n_io : 0;
}

const char *sfs_server_name(struct sfs *fs, unsigned i)
{
	if (!fs || i > fs->conf->n_io)
		return NULL;
	return i == 0 ? fs->conf->meta.name : fs->conf->io[i - 1].name;
}

static void meta_statfs(struct sfs *fs, struct chan *ch, struct sfs_server_usage *u)
{
	char err[CLIENT_ERR_BYTES / 2];
	memset(u, 0, sizeof(*u));
	snprintf(u->name, sizeof(u->name), "%s", fs->conf->meta.name);
	u->is_meta = 1;
	sfs_server_address(&fs->conf->meta, u->address, sizeof(u->address));
	meta_req(ch, SFS_OP_META_STATFS, NULL);
	u->status = meta_send(ch, err, sizeof(err));
	if (u->status < 0) {
		client_server_error(&fs->conf->meta, err, u->error, sizeof(u->error));
		return;
	}
	u->n_files = ch->reply.n_files;
	u->n_dirs = ch->reply.n_dirs;
	u->total_bytes = ch->reply.total_bytes;
	u->free_bytes = ch->reply.free_bytes;
	u->used_bytes = ch->reply.used_bytes;
}

static void meta_ping(struct sfs *fs, struct chan *ch, struct sfs_ping_result *r)
{
	char err[CLIENT_ERR_BYTES / 2];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", fs->conf->meta.name);
	r->is_meta = 1;
	sfs_server_address(&fs->conf->meta, r->address, sizeof(r->address));
	/* Connect first so rtt measures a round trip, not a TCP handshake. */
	r->status = client_conn_ready(&ch->meta, err, sizeof(err));
	if (r->status == 0) {
		uint64_t start_ns = now_ns();
		meta_req(ch, SFS_OP_PING, NULL);
		r->status = meta_send(ch, err, sizeof(err));
		r->rtt_ms = (double)(now_ns() - start_ns) / 1e6;
	}
	if (r->status == 0)
		r->version = ch->reply.version;
	else
		client_server_error(&fs->conf->meta, err, r->error, sizeof(r->error));
}

/*
 * statfs and ping share a shape: the metadata server, then every I/O server
 * at once, into a full-size array that is copied to the caller's n slots.
 */
static int servers_report(struct sfs *fs, void *out, unsigned n, size_t item_bytes, int ping)
{
	if (!fs || (!out && n))
		return -EINVAL;
	unsigned count = 1 + fs->conf->n_io;
	char *all = calloc(count, item_bytes);
	struct chan *ch = client_chan_get(fs);
	int rc = -ENOMEM;
	if (!all || !ch)
		goto out;
	if (ping) {
		meta_ping(fs, ch, (struct sfs_ping_result *)all);
		rc = data_io_ping(fs, ch, (struct sfs_ping_result *)all + 1);
	} else {
		meta_statfs(fs, ch, (struct sfs_server_usage *)all);
		rc = data_io_statfs(fs, ch, (struct sfs_server_usage *)all + 1);
	}
	if (rc == 0)
		memcpy(out, all, (n < count ? n : count) * item_bytes);
out:
	if (rc < 0)
		client_error("%s: out of memory", ping ? "ping" : "statfs");
	if (ch)
		client_chan_put(fs, ch);
	free(all);
	return rc;
}

int sfs_statfs(struct sfs *fs, struct sfs_server_usage *out, unsigned n)
{
	return servers_report(fs, out, n, sizeof(*out), 0);
}

int sfs_ping(struct sfs *fs, struct sfs_ping_result *out, unsigned n)
{
	return servers_report(fs, out, n, sizeof(*out), 1);
}
