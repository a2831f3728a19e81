/*
 * mount: see mount.h.
 *
 * Inode numbers are fids (mount_nodes.h), so getattr, open and setattr go
 * to the metadata server by fid and keep working on a file renamed or
 * unlinked elsewhere; calls that name a directory entry build its path
 * from the inode table.
 *
 * Regular files open with direct_io by default: no page cache, every
 * read and write goes to the servers, so two clients on different guests
 * see each other's data at once, and a 1 MiB request is one striped call.
 * Attributes and entries are cached for attr_timeout/entry_timeout (1 s).
 * The `cache` option trades that for the page cache and 60 s timeouts: fast
 * re-reads and small writes, but another client's changes may go unseen.
 *
 * fcntl byte-range locks and flock go to the metadata server's lock
 * manager (meta_locks.h) with the kernel's lock owner, so they hold across
 * every client; F_SETLKW and a blocking flock retry a refused request with
 * a growing pause (up to LOCK_RETRY_MAX_MS) until it is granted or the
 * program is interrupted. POSIX says any close of a file by a process
 * drops that process's locks on it: flush does that, once a lock was ever
 * taken on the file here (so other closes cost nothing).
 */
#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mount_nodes.h"
#include "sfs_proto.h"

#define DEFAULT_TIMEOUT_S 1.0
#define CACHE_TIMEOUT_S 60.0
#define HIDDEN_PREFIX ".sfs-unlinked-"
#define LOCK_RETRY_MIN_MS 1
#define LOCK_RETRY_MAX_MS 50

struct mount {
	struct sfs *fs;
	struct nodes *nodes;
	int cache;
	double attr_timeout_s, entry_timeout_s;
	int open_files; /* atomic: any open at all? (unlink's fast path) */
	pthread_mutex_t handles_lock;
	struct handle *handles; /* every open file, for utimens (set_times) */
};

#define HANDLE_LOCK_OWNERS 8

/* An open regular file. */
struct handle {
	struct sfs_file *f;
	fuse_ino_t ino;
	int append;
	struct handle *prev, *next;
	/* who took fcntl locks through it: an OFD lock's owner is the open file
	 * itself, and only release (its last close) can clear it */
	uint64_t lock_owners[HANDLE_LOCK_OWNERS];
	unsigned n_lock_owners; /* atomic */
};

/* An open directory: its entries, read at the first readdir (offset 0). */
struct dir_entry {
	char *name;
	uint64_t fid;
	int type;
};

struct dir_handle {
	struct dir_entry *v;
	size_t n, cap;
};

static struct mount *mount_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

struct mount *mount_new(const struct mount_opts *opts)
{
	struct mount *m = calloc(1, sizeof(*m));
	if (!m || !(m->nodes = nodes_new())) {
		free(m);
		return NULL;
	}
	pthread_mutex_init(&m->handles_lock, NULL);
	m->cache = opts->cache;
	double def = opts->cache ? CACHE_TIMEOUT_S : DEFAULT_TIMEOUT_S;
	m->attr_timeout_s = opts->attr_timeout_s >= 0 ? opts->attr_timeout_s : def;
	m->entry_timeout_s = opts->entry_timeout_s >= 0 ? opts->entry_timeout_s : def;
	return m;
}

void mount_set_fs(struct mount *m, struct sfs *fs)
{
	m->fs = fs;
}

void mount_free(struct mount *m)
{
	if (!m)
		return;
	nodes_free(m->nodes);
	pthread_mutex_destroy(&m->handles_lock);
	free(m);
}

/* --- replies ----------------------------------------------------------- */

/* A libsfs failure as the errno a program sees. A server that cannot be
 * reached is an I/O error to a program; the reason goes to the log. */
static int to_errno(int rc, const char *what)
{
	int err = -rc;
	switch (err) {
	case ECONNREFUSED: case EHOSTUNREACH: case ENETUNREACH: case EPROTONOSUPPORT:
	case EBADMSG:
		err = EIO;
		/* fall through */
	case EIO: case ETIMEDOUT: case ENOMEM:
		log_warnx("%s: %s", what, sfs_last_error());
		break;
	default:
		break;
	}
	return err;
}

static void reply_err(fuse_req_t req, int rc, const char *what)
{
	fuse_reply_err(req, rc < 0 ? to_errno(rc, what) : 0);
}

static struct timespec ns_to_ts(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
	if (ts.tv_nsec < 0) {
		ts.tv_sec--;
		ts.tv_nsec += 1000000000;
	}
	return ts;
}

static void to_stat(const struct sfs_stat *s, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = s->fid;
	st->st_mode = s->mode & 07777;
	st->st_mode |= s->type == SFS_STAT_DIR ? S_IFDIR
		       : s->type == SFS_STAT_SYMLINK ? S_IFLNK : S_IFREG;
	st->st_nlink = 1; /* no hard links; 1 also tells find not to count subdirs */
	st->st_uid = s->uid;
	st->st_gid = s->gid;
	st->st_size = (off_t)s->size_bytes;
	st->st_blksize = MOUNT_IO_BYTES; /* cp and tar size their buffers by it */
	st->st_blocks = (blkcnt_t)((s->size_bytes + 511) / 512);
	st->st_atim = ns_to_ts(s->atime_ns);
	st->st_mtim = ns_to_ts(s->mtime_ns);
	st->st_ctim = ns_to_ts(s->ctime_ns);
}

/* An entry reply for st, named name in parent: the kernel now holds one
 * more lookup of it. */
static void reply_entry(fuse_req_t req, fuse_ino_t parent, const char *name,
			const struct sfs_stat *st)
{
	struct mount *m = mount_of(req);
	struct fuse_entry_param e = { .ino = st->fid, .attr_timeout = m->attr_timeout_s,
				      .entry_timeout = m->entry_timeout_s };
	to_stat(st, &e.attr);
	if (nodes_remember(m->nodes, st->fid, parent, name, 1) < 0) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (fuse_reply_entry(req, &e) != 0)
		nodes_forget(m->nodes, st->fid, 1); /* interrupted: the kernel took none */
}

/* The path of name in parent (name NULL: of parent itself), or an error
 * already replied. */
static int entry_path(fuse_req_t req, fuse_ino_t parent, const char *name, char *buf,
		      size_t len)
{
	if (name && strlen(name) > SFS_MAX_NAME) {
		fuse_reply_err(req, ENAMETOOLONG);
		return -1;
	}
	int rc = nodes_path(mount_of(req)->nodes, parent, name, buf, len);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return -1;
	}
	return 0;
}

/* --- names --------------------------------------------------------------- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	char path[SFS_MAX_PATH + 1];
	struct sfs_stat st;
	if (entry_path(req, parent, name, path, sizeof(path)) < 0)
		return;
	int rc = sfs_stat(mount_of(req)->fs, path, &st);
	if (rc < 0)
		reply_err(req, rc, path);
	else
		reply_entry(req, parent, name, &st);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	nodes_forget(mount_of(req)->nodes, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		nodes_forget(mount_of(req)->nodes, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sfs_stat s;
	struct stat st;
	int rc = sfs_stat_fid(mount_of(req)->fs, ino, &s);
	if (rc < 0) {
		reply_err(req, rc, "getattr");
		return;
	}
	to_stat(&s, &st);
	fuse_reply_attr(req, &st, mount_of(req)->attr_timeout_s);
}

/* Truncate through the open file, or open by fid for the call. */
static int set_size(struct mount *m, fuse_ino_t ino, uint64_t size, struct fuse_file_info *fi)
{
	struct sfs_file *f;
	char path[SFS_MAX_PATH + 1];
	if (fi && fi->fh)
		return sfs_ftruncate(((struct handle *)(uintptr_t)fi->fh)->f, size);
	if (nodes_path(m->nodes, ino, NULL, path, sizeof(path)) < 0)
		snprintf(path, sizeof(path), "/(fid 0x%" PRIx64 ")", (uint64_t)ino);
	int rc = sfs_open_fid(m->fs, ino, path, SFS_O_WRONLY, &f);
	if (rc < 0)
		return rc;
	rc = sfs_ftruncate(f, size);
	int close_rc = sfs_close(f); /* sets mtime and ctime */
	return rc < 0 ? rc : close_rc;
}

/*
 * A write sets mtime when its descriptor is flushed or closed (sfs.h), so
 * an explicit mtime (tar and cp -p set it before closing) would be lost to
 * that later "now". Publishing the pending mtimes of ino's open files first
 * lets the explicit one land last. The list is walked under its lock with
 * one metadata request per written file; utimens is rare.
 */
static void flush_pending_mtimes(struct mount *m, fuse_ino_t ino)
{
	pthread_mutex_lock(&m->handles_lock);
	for (struct handle *h = m->handles; h; h = h->next)
		if (h->ino == ino && sfs_flush(h->f) < 0)
			log_warnx("flush before utimens: %s", sfs_last_error());
	pthread_mutex_unlock(&m->handles_lock);
}

static int64_t ts_to_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct mount *m = mount_of(req);
	struct sfs_setattr sa = { 0 };
	struct sfs_stat s;
	struct stat st;
	int64_t now = 0;
	int rc = 0;
	if (to_set & FUSE_SET_ATTR_SIZE)
		rc = attr->st_size < 0 ? -EINVAL : set_size(m, ino, (uint64_t)attr->st_size, fi);
	if (to_set & (FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		now = ts_to_ns(&ts);
	}
	if (to_set & FUSE_SET_ATTR_MODE) {
		sa.valid |= SFS_SET_MODE;
		sa.mode = attr->st_mode & 07777;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		sa.valid |= SFS_SET_UID;
		sa.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		sa.valid |= SFS_SET_GID;
		sa.gid = attr->st_gid;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
		sa.valid |= SFS_SET_ATIME;
		sa.atime_ns = to_set & FUSE_SET_ATTR_ATIME_NOW ? now : ts_to_ns(&attr->st_atim);
	}
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
		flush_pending_mtimes(m, ino);
		sa.valid |= SFS_SET_MTIME;
		sa.mtime_ns = to_set & FUSE_SET_ATTR_MTIME_NOW ? now : ts_to_ns(&attr->st_mtim);
	}
	if (rc == 0 && sa.valid)
		rc = sfs_setattr(m->fs, ino, &sa, &s);
	else if (rc == 0)
		rc = sfs_stat_fid(m->fs, ino, &s);
	if (rc < 0) {
		reply_err(req, rc, "setattr");
		return;
	}
	to_stat(&s, &st);
	fuse_reply_attr(req, &st, m->attr_timeout_s);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char target[SFS_MAX_PATH + 1];
	ssize_t rc = sfs_readlink(mount_of(req)->fs, ino, target, sizeof(target));
	if (rc < 0)
		reply_err(req, (int)rc, "readlink");
	else
		fuse_reply_readlink(req, target);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	char path[SFS_MAX_PATH + 1];
	struct sfs_stat st;
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	if (entry_path(req, parent, name, path, sizeof(path)) < 0)
		return;
	struct sfs *fs = mount_of(req)->fs;
	int rc = sfs_mkdir_as(fs, path, mode & 07777, ctx->uid, ctx->gid);
	if (rc == 0)
		rc = sfs_stat(fs, path, &st);
	if (rc < 0)
		reply_err(req, rc, path);
	else
		reply_entry(req, parent, name, &st);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	char path[SFS_MAX_PATH + 1];
	struct sfs_stat st;
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	if (entry_path(req, parent, name, path, sizeof(path)) < 0)
		return;
	int rc = sfs_symlink(mount_of(req)->fs, link, path, ctx->uid, ctx->gid, &st);
	if (rc < 0)
		reply_err(req, rc, path);
	else
		reply_entry(req, parent, name, &st);
}

/* Hard links would need a second name per fid, which neither the metadata
 * server's table nor this mount's inode table has. */
static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	fuse_reply_err(req, EPERM);
}

/*
 * If the file at path is open through this mount, rename it to a hidden
 * name in the same directory and return 1: its last close removes it, so
 * the open descriptors keep reading it (NFS's "silly rename"). Another
 * client's open descriptors are not protected: unlink there removes the
 * data at once, and their next read fails with ESTALE or ENOENT.
 */
static int hide_if_open(struct mount *m, fuse_ino_t parent, const char *path, int *rc)
{
	struct sfs_stat st;
	char hidden_name[64], hidden_path[SFS_MAX_PATH + 1];
	*rc = 0;
	if (!__atomic_load_n(&m->open_files, __ATOMIC_RELAXED))
		return 0;
	if (sfs_stat(m->fs, path, &st) < 0 || st.type != SFS_STAT_FILE ||
	    !nodes_is_open(m->nodes, st.fid))
		return 0;
	snprintf(hidden_name, sizeof(hidden_name), HIDDEN_PREFIX "%" PRIx64, st.fid);
	*rc = nodes_path(m->nodes, parent, hidden_name, hidden_path, sizeof(hidden_path));
	if (*rc == 0)
		*rc = sfs_rename(m->fs, path, hidden_path, 0);
	if (*rc == 0)
		nodes_hide(m->nodes, st.fid, parent, hidden_name);
	return 1;
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	char path[SFS_MAX_PATH + 1];
	struct mount *m = mount_of(req);
	int rc;
	if (entry_path(req, parent, name, path, sizeof(path)) < 0)
		return;
	if (!hide_if_open(m, parent, path, &rc))
		rc = sfs_unlink(m->fs, path);
	reply_err(req, rc, path);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	char path[SFS_MAX_PATH + 1];
	if (entry_path(req, parent, name, path, sizeof(path)) < 0)
		return;
	reply_err(req, sfs_rmdir(mount_of(req)->fs, path), path);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	char from[SFS_MAX_PATH + 1], to[SFS_MAX_PATH + 1];
	struct mount *m = mount_of(req);
	struct sfs_stat st;
	int rc;
	if (flags & ~(unsigned)RENAME_NOREPLACE) {
		fuse_reply_err(req, EINVAL); /* RENAME_EXCHANGE, RENAME_WHITEOUT */
		return;
	}
	if (entry_path(req, parent, name, from, sizeof(from)) < 0 ||
	    entry_path(req, newparent, newname, to, sizeof(to)) < 0)
		return;
	/* a file open here that the rename replaces stays readable */
	if (!(flags & RENAME_NOREPLACE) && hide_if_open(m, newparent, to, &rc) && rc < 0) {
		reply_err(req, rc, to);
		return;
	}
	rc = sfs_rename(m->fs, from, to, flags & RENAME_NOREPLACE ? SFS_RENAME_NOREPLACE : 0);
	if (rc == 0 && sfs_stat(m->fs, to, &st) == 0)
		nodes_remember(m->nodes, st.fid, newparent, newname, 0);
	reply_err(req, rc, from);
}

/* --- files ----------------------------------------------------------------- */

static int sfs_flags(int flags)
{
	int out = (flags & O_ACCMODE) == O_WRONLY ? SFS_O_WRONLY
		  : (flags & O_ACCMODE) == O_RDWR ? SFS_O_RDWR : SFS_O_RDONLY;
	if (flags & O_TRUNC)
		out |= SFS_O_TRUNC;
	return out;
}

/* Wrap f in a handle and fill fi; 0 or -ENOMEM (then f is closed). */
/* ino must be in the inode table (looked up or just created): an open it
 * does not count would make a later close look like the last one. */
static int handle_attach(struct mount *m, fuse_ino_t ino, struct sfs_file *f,
			 struct fuse_file_info *fi)
{
	struct handle *h = calloc(1, sizeof(*h));
	if (!h) {
		sfs_close(f);
		return -ENOMEM;
	}
	h->f = f;
	h->ino = ino;
	h->append = (fi->flags & O_APPEND) != 0;
	pthread_mutex_lock(&m->handles_lock);
	h->next = m->handles;
	if (m->handles)
		m->handles->prev = h;
	m->handles = h;
	pthread_mutex_unlock(&m->handles_lock);
	fi->fh = (uintptr_t)h;
	fi->direct_io = !m->cache;
	fi->keep_cache = m->cache;
	nodes_open(m->nodes, ino);
	__atomic_add_fetch(&m->open_files, 1, __ATOMIC_RELAXED);
	return 0;
}

static void handle_detach(struct mount *m, fuse_ino_t ino, struct fuse_file_info *fi)
{
	char hidden[SFS_MAX_PATH + 1];
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	pthread_mutex_lock(&m->handles_lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		m->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&m->handles_lock);
	int rc = sfs_close(h->f);
	if (rc < 0)
		log_warnx("close: %s", sfs_last_error());
	free(h);
	__atomic_sub_fetch(&m->open_files, 1, __ATOMIC_RELAXED);
	if (nodes_close(m->nodes, ino, hidden, sizeof(hidden)) &&
	    (rc = sfs_unlink(m->fs, hidden)) < 0 && rc != -ENOENT)
		log_warnx("removing %s, unlinked while open: %s", hidden, sfs_last_error());
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mount *m = mount_of(req);
	char path[SFS_MAX_PATH + 1];
	struct sfs_file *f;
	if (entry_path(req, ino, NULL, path, sizeof(path)) < 0)
		return;
	int rc = sfs_open_fid(m->fs, ino, path, sfs_flags(fi->flags), &f);
	if (rc == 0)
		rc = handle_attach(m, ino, f, fi);
	if (rc < 0) {
		reply_err(req, rc, path);
		return;
	}
	if (fuse_reply_open(req, fi) != 0)
		handle_detach(m, ino, fi);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct mount *m = mount_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	char path[SFS_MAX_PATH + 1];
	struct sfs_file *f;
	struct sfs_stat st;
	if (entry_path(req, parent, name, path, sizeof(path)) < 0)
		return;
	int flags = sfs_flags(fi->flags) | SFS_O_CREAT | (fi->flags & O_EXCL ? SFS_O_EXCL : 0);
	int rc = sfs_open_as(m->fs, path, flags, mode & 07777, ctx->uid, ctx->gid, &f, &st);
	if (rc < 0) {
		reply_err(req, rc, path);
		return;
	}
	/* the node first: the open must be counted on it (see nodes_open) */
	rc = nodes_remember(m->nodes, st.fid, parent, name, 1);
	if (rc < 0) {
		sfs_close(f);
		reply_err(req, rc, path);
		return;
	}
	rc = handle_attach(m, st.fid, f, fi);
	if (rc < 0) {
		nodes_forget(m->nodes, st.fid, 1);
		reply_err(req, rc, path);
		return;
	}
	struct fuse_entry_param e = { .ino = st.fid, .attr_timeout = m->attr_timeout_s,
				      .entry_timeout = m->entry_timeout_s };
	to_stat(&st, &e.attr);
	if (fuse_reply_create(req, &e, fi) != 0) {
		handle_detach(m, st.fid, fi);
		nodes_forget(m->nodes, st.fid, 1);
	}
}

/* Regular files only: FUSE creates nothing else through mknod here. */
static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	struct mount *m = mount_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	char path[SFS_MAX_PATH + 1];
	struct sfs_file *f;
	struct sfs_stat st;
	if (!S_ISREG(mode)) {
		fuse_reply_err(req, EPERM); /* devices, FIFOs, sockets */
		return;
	}
	if (entry_path(req, parent, name, path, sizeof(path)) < 0)
		return;
	int rc = sfs_open_as(m->fs, path, SFS_O_RDONLY | SFS_O_CREAT | SFS_O_EXCL, mode & 07777,
			     ctx->uid, ctx->gid, &f, &st);
	if (rc == 0)
		sfs_close(f);
	if (rc < 0)
		reply_err(req, rc, path);
	else
		reply_entry(req, parent, name, &st);
}

/* One buffer per FUSE thread, as large as the largest request, freed when
 * libfuse ends the thread (a key's destructor: __thread cannot free). */
static pthread_key_t read_buf_key;
static pthread_once_t read_buf_once = PTHREAD_ONCE_INIT;

static void read_buf_key_make(void)
{
	pthread_key_create(&read_buf_key, free);
}

static char *read_buffer(void)
{
	pthread_once(&read_buf_once, read_buf_key_make);
	char *buf = pthread_getspecific(read_buf_key);
	if (!buf && (buf = malloc(MOUNT_IO_BYTES)) && pthread_setspecific(read_buf_key, buf)) {
		free(buf);
		buf = NULL;
	}
	return buf;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	char *read_buf = read_buffer();
	if (size > MOUNT_IO_BYTES)
		size = MOUNT_IO_BYTES;
	if (!read_buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ssize_t n = sfs_pread(h->f, read_buf, size, (uint64_t)off);
	if (n < 0)
		reply_err(req, (int)n, "read");
	else
		fuse_reply_buf(req, read_buf, (size_t)n);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	ssize_t n = h->append ? sfs_append(h->f, buf, size, NULL)
			      : sfs_pwrite(h->f, buf, size, (uint64_t)off);
	if (n < 0)
		reply_err(req, (int)n, "write");
	else
		fuse_reply_write(req, (size_t)n);
}

/* close(2) waits for flush (not for release): mtime is set here, so a stat
 * right after close sees it, and the closing process's locks go. Data needs
 * nothing: writes are synchronous. */
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mount *m = mount_of(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	int rc = sfs_flush(h->f);
	if (nodes_was_locked(m->nodes, ino)) {
		struct sfs_lock all = { .type = SFS_LOCK_UNLOCK, .start = 0, .end = UINT64_MAX };
		int lrc = sfs_lock(h->f, fi->lock_owner, 0, &all);
		if (rc == 0)
			rc = lrc;
	}
	reply_err(req, rc, "flush");
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	if (fi->flock_release) { /* the last close of an open file that held a flock */
		struct sfs_lock un = { .type = SFS_LOCK_UNLOCK };
		if (sfs_lock(h->f, fi->lock_owner, 1, &un) < 0)
			log_warnx("release: %s", sfs_last_error());
	}
	/* OFD locks; a process's own locks went at its flush, clearing is a no-op */
	unsigned n = __atomic_load_n(&h->n_lock_owners, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < n && i < HANDLE_LOCK_OWNERS; i++) {
		struct sfs_lock all = { .type = SFS_LOCK_UNLOCK, .start = 0, .end = UINT64_MAX };
		if (sfs_lock(h->f, h->lock_owners[i], 0, &all) < 0)
			log_warnx("release: %s", sfs_last_error());
	}
	handle_detach(mount_of(req), ino, fi);
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	reply_err(req, sfs_fsync(h->f), "fsync");
}

/* --- directories ------------------------------------------------------------- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir_handle *d = calloc(1, sizeof(*d));
	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)d;
	if (fuse_reply_open(req, fi) != 0)
		free(d);
}

static void dir_clear(struct dir_handle *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].name);
	d->n = 0;
}

static int dir_collect(void *arg, const char *name, int type, uint64_t fid)
{
	struct dir_handle *d = arg;
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 64;
		struct dir_entry *v = realloc(d->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		d->v = v;
		d->cap = cap;
	}
	char *copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	d->v[d->n++] = (struct dir_entry){ .name = copy, .fid = fid, .type = type };
	return 0;
}

/*
 * The listing is read whole at offset 0 (opendir, rewinddir) and served
 * from memory after that, so offsets are indices into one consistent
 * snapshot: a directory changed while it is listed never makes readdir
 * skip or repeat a name that stayed. "." and ".." are not listed (POSIX
 * makes them optional; the kernel resolves both itself).
 */
static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
	char path[SFS_MAX_PATH + 1];
	if (off == 0) {
		if (entry_path(req, ino, NULL, path, sizeof(path)) < 0)
			return;
		dir_clear(d);
		int rc = sfs_readdir(mount_of(req)->fs, path, dir_collect, d);
		if (rc < 0) {
			dir_clear(d);
			reply_err(req, rc, path);
			return;
		}
	}
	char *buf = malloc(size);
	size_t used = 0;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = (size_t)(off < 0 ? 0 : off); i < d->n; i++) {
		struct stat st = { .st_ino = d->v[i].fid };
		st.st_mode = d->v[i].type == SFS_STAT_DIR ? S_IFDIR
			     : d->v[i].type == SFS_STAT_SYMLINK ? S_IFLNK : S_IFREG;
		size_t need = fuse_add_direntry(req, buf + used, size - used, d->v[i].name, &st,
						(off_t)(i + 1));
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
	dir_clear(d);
	free(d->v);
	free(d);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0); /* every namespace change is committed (fsync'd) by sfsd */
}

/*
 * Space is the I/O servers' (sum of their file systems); inodes are the
 * metadata server's entries. sfs has no fixed inode table, so the free
 * inode count is an estimate: the metadata file system's free space over
 * 512 bytes, about what an entry costs SQLite.
 */
static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct sfs *fs = mount_of(req)->fs;
	unsigned n = sfs_server_count(fs);
	struct sfs_server_usage *u = calloc(n, sizeof(*u));
	struct statvfs sv = { .f_bsize = MOUNT_IO_BYTES, .f_frsize = 4096,
			      .f_namemax = SFS_MAX_NAME };
	int rc = u ? sfs_statfs(fs, u, n) : -ENOMEM;
	for (unsigned i = 0; rc == 0 && i < n; i++) {
		if (u[i].status < 0) {
			log_warnx("statfs: server %s: %s", u[i].name, u[i].error);
			rc = -EIO;
			break;
		}
		if (u[i].is_meta) {
			sv.f_files = u[i].n_files + u[i].n_dirs + u[i].free_bytes / 512;
			sv.f_ffree = sv.f_favail = u[i].free_bytes / 512;
		} else {
			sv.f_blocks += u[i].total_bytes / sv.f_frsize;
			sv.f_bfree += u[i].free_bytes / sv.f_frsize;
		}
	}
	sv.f_bavail = sv.f_bfree;
	free(u);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_statfs(req, &sv);
}

/* --- locks (see the top of the file) ------------------------------------------- */

/* struct flock as libfuse gives it (SEEK_SET, l_len 0 = to the end) into
 * an sfs_lock; -EINVAL for a range that does not fit. */
static int lock_from_flock(const struct flock *fl, struct sfs_lock *lk)
{
	lk->type = fl->l_type == F_RDLCK ? SFS_LOCK_READ
		   : fl->l_type == F_WRLCK ? SFS_LOCK_WRITE : SFS_LOCK_UNLOCK;
	if (fl->l_start < 0 || fl->l_len < 0)
		return -EINVAL;
	lk->start = (uint64_t)fl->l_start;
	lk->end = fl->l_len == 0 ? UINT64_MAX : lk->start + (uint64_t)fl->l_len - 1;
	lk->pid = (uint32_t)fl->l_pid;
	return 0;
}

/* Remember owner as one that locked through h (release clears its locks).
 * Concurrent setlk calls on one handle are rare; a lost race only costs a
 * duplicate entry. Past HANDLE_LOCK_OWNERS owners, OFD locks of the extra
 * ones stay until this client disconnects. */
static void handle_note_owner(struct handle *h, uint64_t owner)
{
	unsigned n = __atomic_load_n(&h->n_lock_owners, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < n; i++)
		if (h->lock_owners[i] == owner)
			return;
	if (n < HANDLE_LOCK_OWNERS) {
		h->lock_owners[n] = owner;
		__atomic_store_n(&h->n_lock_owners, n + 1, __ATOMIC_RELEASE);
	}
}

/* Take lk, or with wait retry until granted or interrupted. */
static int lock_wait(fuse_req_t req, struct handle *h, uint64_t owner, int flock,
		     const struct sfs_lock *lk, int wait)
{
	unsigned pause_ms = LOCK_RETRY_MIN_MS;
	for (;;) {
		int rc = sfs_lock(h->f, owner, flock, lk);
		if (rc != -EAGAIN || !wait)
			return rc;
		if (fuse_req_interrupted(req))
			return -EINTR;
		struct timespec ts = { .tv_nsec = (long)pause_ms * 1000000L };
		nanosleep(&ts, NULL);
		if (pause_ms < LOCK_RETRY_MAX_MS)
			pause_ms *= 2;
	}
}

static void op_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct sfs_lock lk;
	int rc = lock_from_flock(lock, &lk);
	if (rc == 0)
		rc = sfs_getlk(h->f, fi->lock_owner, 0, &lk);
	if (rc < 0) {
		reply_err(req, rc, "getlk");
		return;
	}
	struct flock out = { .l_whence = SEEK_SET, .l_type = F_UNLCK };
	if (lk.type != SFS_LOCK_UNLOCK) {
		out.l_type = lk.type == SFS_LOCK_READ ? F_RDLCK : F_WRLCK;
		out.l_start = (off_t)lk.start;
		out.l_len = lk.end == UINT64_MAX ? 0 : (off_t)(lk.end - lk.start + 1);
		out.l_pid = (pid_t)lk.pid;
	}
	fuse_reply_lock(req, &out);
}

static void op_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock, int sleep)
{
	struct mount *m = mount_of(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct sfs_lock lk;
	int rc = lock_from_flock(lock, &lk);
	if (rc == 0 && lk.type != SFS_LOCK_UNLOCK) {
		nodes_mark_locked(m->nodes, ino); /* before: a close must not miss it */
		handle_note_owner(h, fi->lock_owner);
	}
	if (rc == 0)
		rc = lock_wait(req, h, fi->lock_owner, 0, &lk, sleep);
	reply_err(req, rc, "setlk");
}

static void op_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct sfs_lock lk = { .type = (op & LOCK_UN) ? SFS_LOCK_UNLOCK
				       : (op & LOCK_EX) ? SFS_LOCK_WRITE : SFS_LOCK_READ };
	reply_err(req, lock_wait(req, h, fi->lock_owner, 1, &lk, !(op & LOCK_NB)), "flock");
}

/* --- session ------------------------------------------------------------------ */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct mount *m = userdata;
	conn->max_write = MOUNT_IO_BYTES;
	conn->max_read = MOUNT_IO_BYTES; /* must equal the max_read mount option */
	conn->max_readahead = MOUNT_IO_BYTES;
	conn->max_background = 64; /* readahead and async direct I/O in flight */
	conn->congestion_threshold = 48;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE; /* writes go out at once */
	if (!m->cache)
		conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
	log_info("mounted: %s, max_write %u, readahead %u, attr/entry timeout %.1f/%.1f s",
		 m->cache ? "page cache (cache)" : "direct I/O", conn->max_write,
		 conn->max_readahead, m->attr_timeout_s, m->entry_timeout_s);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.create = op_create,
	.getlk = op_getlk,
	.setlk = op_setlk,
	.flock = op_flock,
};

const struct fuse_lowlevel_ops *mount_ops(void)
{
	return &ops;
}
