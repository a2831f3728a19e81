/*
 * ckpt_store: see ckpt_store.h. Two kinds of store behind one set of calls:
 * an sfs directory (libsfs) and a local directory (POSIX). Every file
 * access goes through the small "file" layer below, so the streams and the
 * synchronous calls do not care which kind they have.
 */
#include "ckpt_store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/wait.h>

#include <jansson.h>

#include <dirent.h>
#include <poll.h>
#include <openssl/evp.h>

#include "sfs.h"
#include "util.h"

#define CHUNK (1u << 20)   /* one sfs request per piece, striped over the servers */
#define BUF_BYTES (4u << 20)

struct ckpt_store {
	char uri[PATH_MAX];
	int is_sfs;
	char root[PATH_MAX];     /* sfs path or local directory, no trailing '/' */
	char sfs_conf[PATH_MAX];
	struct sfs *fs;          /* the synchronous calls' connection (sfs stores) */
	pthread_mutex_t lock;    /* around it: tasks on several threads share it */
};

/* ---- one open file of either kind ---- */

struct sfile {
	struct sfs *fs;          /* owned when the opener connected it */
	int own_fs;
	struct sfs_file *f;
	int fd;
};

static void full_path(const struct ckpt_store *st, const char *rel, char *buf, size_t len)
{
	snprintf(buf, len, "%.3000s%s%.1000s", st->root, *rel ? "/" : "", rel);
}

void ckpt_store_name(const struct ckpt_store *st, const char *rel, char *buf, size_t len)
{
	char p[PATH_MAX];
	full_path(st, rel, p, sizeof(p));
	snprintf(buf, len, "%s%.4000s", st->is_sfs ? "sfs:" : "", p);
}

static int fail(const struct ckpt_store *st, const char *rel, const char *what, int rc,
		char *err, size_t errlen)
{
	char name[PATH_MAX];
	ckpt_store_name(st, rel, name, sizeof(name));
	const char *msg = st->is_sfs && *sfs_last_error() ? sfs_last_error() : strerror(-rc);
	snprintf(err, errlen, "%s: %s: %s", name, what, msg);
	return rc;
}

/* Open rel for reading or (create, truncate) writing. fs: a connection
 * to use, or NULL to make one (a stream thread's own). */
static int sfile_open(struct ckpt_store *st, struct sfs *fs, const char *rel, int write,
		      struct sfile *out, char *err, size_t errlen)
{
	char p[PATH_MAX];
	memset(out, 0, sizeof(*out));
	out->fd = -1;
	full_path(st, rel, p, sizeof(p));
	if (!st->is_sfs) {
		out->fd = open(p, write ? O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC
				       : O_RDONLY | O_CLOEXEC, 0600);
		return out->fd < 0 ? fail(st, rel, "open", -errno, err, errlen) : 0;
	}
	if (!fs) {
		int rc = sfs_connect(st->sfs_conf, NULL, &fs);
		if (rc < 0)
			return fail(st, rel, "connect", rc, err, errlen);
		out->own_fs = 1;
	}
	out->fs = fs;
	int rc = sfs_open(fs, p, write ? SFS_O_WRONLY | SFS_O_CREAT | SFS_O_TRUNC : SFS_O_RDONLY,
			  0600, &out->f);
	if (rc < 0) {
		fail(st, rel, "open", rc, err, errlen);
		if (out->own_fs)
			sfs_disconnect(fs);
		out->fs = NULL;
	}
	return rc;
}

static ssize_t sfile_pread(struct sfile *f, void *buf, size_t len, uint64_t off)
{
	if (f->f)
		return sfs_pread(f->f, buf, len, off);
	ssize_t n = pread(f->fd, buf, len, (off_t)off);
	return n < 0 ? -errno : n;
}

static ssize_t sfile_pwrite(struct sfile *f, const void *buf, size_t len, uint64_t off)
{
	if (f->f)
		return sfs_pwrite(f->f, buf, len, off);
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(f->fd, (const char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return (ssize_t)len;
}

static int sfile_sync(struct sfile *f)
{
	if (f->f)
		return sfs_fsync(f->f);
	return fdatasync(f->fd) < 0 ? -errno : 0;
}

static void sfile_close(struct sfile *f)
{
	if (f->f)
		sfs_close(f->f);
	if (f->fd >= 0)
		close(f->fd);
	if (f->own_fs)
		sfs_disconnect(f->fs);
	memset(f, 0, sizeof(*f));
	f->fd = -1;
}

/* ---- the store ---- */

int ckpt_store_open(const char *uri, const char *sfs_conf, struct ckpt_store **out, char *err,
		    size_t errlen)
{
	struct ckpt_store *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	snprintf(st->uri, sizeof(st->uri), "%s", uri);
	pthread_mutex_init(&st->lock, NULL);
	const char *path = uri;
	if (strncmp(uri, "sfs:", 4) == 0) {
		st->is_sfs = 1;
		path = uri + 4;
	} else if (strncmp(uri, "dir:", 4) == 0) {
		path = uri + 4;
	}
	if (*path != '/' || strlen(path) >= sizeof(st->root) - 256) {
		snprintf(err, errlen, "checkpoint store \"%s\": expected sfs:/DIR or an absolute "
			 "directory", uri);
		free(st);
		return -EINVAL;
	}
	snprintf(st->root, sizeof(st->root), "%s", path);
	for (size_t n = strlen(st->root); n > 1 && st->root[n - 1] == '/'; n--)
		st->root[n - 1] = '\0';
	if (st->is_sfs) {
		if (!sfs_conf || !*sfs_conf) {
			snprintf(err, errlen, "checkpoint store %s needs an sfs.conf "
				 "(migd.conf checkpoint.sfs_conf)", uri);
			free(st);
			return -EINVAL;
		}
		snprintf(st->sfs_conf, sizeof(st->sfs_conf), "%s", sfs_conf);
		int rc = sfs_connect(sfs_conf, NULL, &st->fs);
		if (rc < 0) {
			snprintf(err, errlen, "checkpoint store %s: %s: %s", uri, sfs_conf,
				 *sfs_last_error() ? sfs_last_error() : strerror(-rc));
			free(st);
			return rc;
		}
	}
	*out = st;
	return 0;
}

void ckpt_store_close(struct ckpt_store *st)
{
	if (!st)
		return;
	sfs_disconnect(st->fs);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

const char *ckpt_store_uri(const struct ckpt_store *st)
{
	return st->uri;
}

struct sfs *ckpt_store_sfs(struct ckpt_store *st)
{
	return st->fs;
}

static int ckpt_store_mkdir_locked(struct ckpt_store *st, const char *rel, char *err, size_t errlen)
{
	char p[PATH_MAX];
	full_path(st, rel, p, sizeof(p));
	if (!st->is_sfs) {
		int rc = mkdir_p(p, 0700);
		return rc < 0 ? fail(st, rel, "mkdir", rc, err, errlen) : 0;
	}
	/* mkdir -p on sfs: each component in turn, an existing one is fine */
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		int rc = sfs_mkdir(st->fs, p, 0700);
		*s = c;
		if (rc < 0 && rc != -EEXIST)
			return fail(st, rel, "mkdir", rc, err, errlen);
		if (!c)
			return 0;
	}
}

struct rm_ctx {
	struct ckpt_store *st;
	char dir[PATH_MAX];
	int rc;
};

static int rm_entry(void *arg, const char *name, int type, uint64_t fid)
{
	(void)fid;
	struct rm_ctx *c = arg;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return 0;
	char p[PATH_MAX];
	if ((size_t)snprintf(p, sizeof(p), "%s/%s", c->dir, name) >= sizeof(p))
		return -ENAMETOOLONG;
	if (type == SFS_STAT_DIR) {
		struct rm_ctx sub = { .st = c->st, .rc = 0 };
		snprintf(sub.dir, sizeof(sub.dir), "%s", p);
		int rc = sfs_readdir(c->st->fs, p, rm_entry, &sub);
		if (rc < 0)
			return rc;
		return sfs_rmdir(c->st->fs, p);
	}
	return sfs_unlink(c->st->fs, p);
}

static int rm_local(const char *p)
{
	struct stat sb;
	if (lstat(p, &sb) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(sb.st_mode))
		return unlink(p) < 0 && errno != ENOENT ? -errno : 0;
	DIR *d = opendir(p);
	if (!d)
		return -errno;
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char sub[PATH_MAX];
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", p, e->d_name) >= sizeof(sub))
			rc = -ENAMETOOLONG;
		else
			rc = rm_local(sub);
	}
	closedir(d);
	return rc == 0 && rmdir(p) < 0 && errno != ENOENT ? -errno : rc;
}

static int ckpt_store_rmtree_locked(struct ckpt_store *st, const char *rel, char *err, size_t errlen)
{
	char p[PATH_MAX];
	full_path(st, rel, p, sizeof(p));
	int rc;
	if (!st->is_sfs) {
		rc = rm_local(p);
	} else {
		struct sfs_stat sb;
		rc = sfs_stat(st->fs, p, &sb);
		if (rc == -ENOENT)
			return 0;
		if (rc == 0 && sb.type == SFS_STAT_DIR) {
			struct rm_ctx c = { .st = st, .rc = 0 };
			snprintf(c.dir, sizeof(c.dir), "%s", p);
			rc = sfs_readdir(st->fs, p, rm_entry, &c);
			if (rc == 0)
				rc = sfs_rmdir(st->fs, p);
		} else if (rc == 0) {
			rc = sfs_unlink(st->fs, p);
		}
	}
	return rc < 0 ? fail(st, rel, "remove", rc, err, errlen) : 0;
}

static int ckpt_store_put_locked(struct ckpt_store *st, const char *rel, const void *data, size_t len,
		   char *err, size_t errlen)
{
	struct sfile f;
	int rc = sfile_open(st, st->fs, rel, 1, &f, err, errlen);
	if (rc < 0)
		return rc;
	ssize_t n = len ? sfile_pwrite(&f, data, len, 0) : 0;
	rc = n < 0 ? (int)n : sfile_sync(&f);
	sfile_close(&f);
	return rc < 0 ? fail(st, rel, "write", rc, err, errlen) : 0;
}

static int ckpt_store_get_locked(struct ckpt_store *st, const char *rel, size_t max, char **data,
		   size_t *len, char *err, size_t errlen)
{
	struct sfile f;
	int rc = sfile_open(st, st->fs, rel, 0, &f, err, errlen);
	if (rc < 0)
		return rc;
	char *buf = malloc(max + 1);
	ssize_t n = buf ? sfile_pread(&f, buf, max + 1, 0) : -ENOMEM;
	sfile_close(&f);
	if (n < 0 || (size_t)n > max) {
		free(buf);
		return fail(st, rel, "read", n < 0 ? (int)n : -EFBIG, err, errlen);
	}
	buf[n] = '\0';
	*data = buf;
	*len = (size_t)n;
	return 0;
}

static int ckpt_store_size_locked(struct ckpt_store *st, const char *rel, uint64_t *bytes, char *err,
		    size_t errlen)
{
	char p[PATH_MAX];
	full_path(st, rel, p, sizeof(p));
	int rc;
	if (st->is_sfs) {
		struct sfs_stat sb;
		rc = sfs_stat(st->fs, p, &sb);
		*bytes = rc == 0 ? sb.size_bytes : 0;
	} else {
		struct stat sb;
		rc = stat(p, &sb) < 0 ? -errno : 0;
		*bytes = rc == 0 ? (uint64_t)sb.st_size : 0;
	}
	return rc < 0 ? fail(st, rel, "stat", rc, err, errlen) : 0;
}

static void sha_hex(EVP_MD_CTX *md, char out[CKPT_SHA_HEX])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	EVP_DigestFinal_ex(md, d, &n);
	for (unsigned i = 0; i < n && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Read f whole into the digest; *bytes read. Stops early (as an error) past
 * limit bytes. */
static int digest_file(struct sfile *f, uint64_t limit, uint64_t *bytes, char sha[CKPT_SHA_HEX])
{
	char *buf = malloc(BUF_BYTES);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int rc = buf && md ? 0 : -ENOMEM;
	if (rc == 0)
		EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	uint64_t off = 0;
	while (rc == 0) {
		ssize_t n = sfile_pread(f, buf, BUF_BYTES, off);
		if (n < 0)
			rc = (int)n;
		else if (n == 0)
			break;
		else {
			EVP_DigestUpdate(md, buf, (size_t)n);
			off += (uint64_t)n;
			if (off > limit)
				break;
		}
	}
	if (rc == 0)
		sha_hex(md, sha);
	*bytes = off;
	EVP_MD_CTX_free(md);
	free(buf);
	return rc;
}

int ckpt_store_local_path(const struct ckpt_store *st, const char *rel, char *buf, size_t len)
{
	if (st->is_sfs)
		return -ENOTSUP;
	full_path(st, rel, buf, len);
	return 0;
}

int ckpt_store_digest(struct ckpt_store *st, const char *rel, uint64_t *bytes,
		      char sha[CKPT_SHA_HEX], char *err, size_t errlen)
{
	struct sfile f;
	int rc = sfile_open(st, NULL, rel, 0, &f, err, errlen);
	if (rc < 0)
		return rc;
	rc = digest_file(&f, UINT64_MAX, bytes, sha);
	sfile_close(&f);
	return rc < 0 ? fail(st, rel, "read", rc, err, errlen) : 0;
}

int ckpt_store_verify(struct ckpt_store *st, const char *rel, uint64_t bytes,
		      const char *sha, char *err, size_t errlen)
{
	struct sfile f;
	int rc = sfile_open(st, NULL, rel, 0, &f, err, errlen);
	if (rc < 0)
		return rc;
	uint64_t got = 0;
	char hex[CKPT_SHA_HEX] = "";
	rc = digest_file(&f, bytes, &got, hex);
	sfile_close(&f);
	if (rc < 0)
		return fail(st, rel, "read", rc, err, errlen);
	char name[PATH_MAX];
	ckpt_store_name(st, rel, name, sizeof(name));
	if (got != bytes) {
		snprintf(err, errlen, "%s: %llu bytes, the manifest says %llu", name,
			 (unsigned long long)got, (unsigned long long)bytes);
		return -EBADMSG;
	}
	if (strcmp(hex, sha) != 0) {
		snprintf(err, errlen, "%.100s: sha256 %s, the manifest says %s", name, hex, sha);
		return -EBADMSG;
	}
	return 0;
}

#define LOCKED(call) \
	do { \
		pthread_mutex_lock(&st->lock); \
		int rc_ = (call); \
		pthread_mutex_unlock(&st->lock); \
		return rc_; \
	} while (0)

int ckpt_store_mkdir(struct ckpt_store *st, const char *rel, char *err, size_t errlen)
{
	LOCKED(ckpt_store_mkdir_locked(st, rel, err, errlen));
}

int ckpt_store_rmtree(struct ckpt_store *st, const char *rel, char *err, size_t errlen)
{
	LOCKED(ckpt_store_rmtree_locked(st, rel, err, errlen));
}

int ckpt_store_put(struct ckpt_store *st, const char *rel, const void *data, size_t len,
		   char *err, size_t errlen)
{
	LOCKED(ckpt_store_put_locked(st, rel, data, len, err, errlen));
}

int ckpt_store_get(struct ckpt_store *st, const char *rel, size_t max, char **data,
		   size_t *len, char *err, size_t errlen)
{
	LOCKED(ckpt_store_get_locked(st, rel, max, data, len, err, errlen));
}

int ckpt_store_size(struct ckpt_store *st, const char *rel, uint64_t *bytes, char *err,
		    size_t errlen)
{
	LOCKED(ckpt_store_size_locked(st, rel, bytes, err, errlen));
}

/* ---- streams ---- */

struct ckpt_stream {
	struct ckpt_store *st;
	char rel[PATH_MAX];
	int save;
	int pipe_fd;             /* our end */
	uint64_t want_bytes;
	char want_sha[CKPT_SHA_HEX];
	int cancel[2];           /* a byte in it: stop now */
	pid_t pid;               /* > 0: migd-stream does the save (ckpt_stream_save_proc) */
	char result[PATH_MAX];   /* its outcome */
	pthread_t thread;
	int started;
	atomic_int done;         /* 1 once the thread set rc */
	atomic_uint_fast64_t bytes;
	int rc;
	char err[320];
	char sha[CKPT_SHA_HEX];
};

/* Wait until the pipe is ready for events; -ECANCELED when told to stop. */
static int wait_pipe(struct ckpt_stream *s, short events)
{
	struct pollfd pf[2] = { { .fd = s->pipe_fd, .events = events },
				{ .fd = s->cancel[0], .events = POLLIN } };
	for (;;) {
		int n = poll(pf, 2, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (pf[1].revents)
			return -ECANCELED;
		return 0;
	}
}

/*
 * The save loop, shared by the stream thread and migd-stream: in_fd read to
 * its end into rel, with its SHA-256. A store that fails (full, gone) does
 * not stop the reading: the rest is read and dropped, so that the writer
 * sees its whole stream taken (QEMU 7.2 cannot save or migrate a guest
 * again after a background snapshot of it failed). *discard set from
 * outside (an abort): the same from then on. cancel_fd readable: stop at
 * once, taking no more (a stream freed while its writer still holds the
 * pipe). 0, or the first error; a failed save's file is removed.
 */
int ckpt_store_save_fd(struct ckpt_store *st, const char *rel, int in_fd, int cancel_fd,
		       const volatile sig_atomic_t *discard, _Atomic uint64_t *bytes,
		       char sha[CKPT_SHA_HEX], char *err, size_t errlen)
{
	struct sfile f;
	char *buf = malloc(BUF_BYTES);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int rc = buf && md ? 0 : -ENOMEM;
	if (rc == 0)
		rc = sfile_open(st, NULL, rel, 1, &f, err, errlen);
	int opened = rc == 0, eof = 0;
	if (rc == 0)
		EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	uint64_t off = 0;
	while (!eof) {
		/* fill up to a whole chunk, so that sfs sees few large requests */
		size_t have = 0;
		int rrc = 0;
		while (have < BUF_BYTES) {
			struct pollfd pf[2] = { { .fd = in_fd, .events = POLLIN },
						{ .fd = cancel_fd, .events = POLLIN } };
			int n = poll(pf, cancel_fd >= 0 ? 2 : 1, -1);
			if (n < 0 && errno == EINTR)
				continue;
			if (n > 0 && cancel_fd >= 0 && pf[1].revents) {
				rrc = -ECANCELED;
				break;
			}
			ssize_t r = read(in_fd, buf + have, BUF_BYTES - have);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				rrc = -errno;
				break;
			}
			if (r == 0) {
				eof = 1;
				break;
			}
			have += (size_t)r;
		}
		if (rrc < 0) {
			if (rc == 0)
				rc = rrc == -ECANCELED ? rrc
						       : fail(st, rel, "read from the backend", rrc, err,
							      errlen);
			break;
		}
		if (rc == 0 && discard && *discard) {
			rc = -ECANCELED;
			snprintf(err, errlen, "%s: aborted", rel);
		}
		if (rc == 0) {
			EVP_DigestUpdate(md, buf, have);
			for (size_t o = 0; o < have && rc == 0; o += CHUNK) {
				size_t n = have - o < CHUNK ? have - o : CHUNK;
				ssize_t w = sfile_pwrite(&f, buf + o, n, off + o);
				if (w < 0)
					rc = fail(st, rel, "write", (int)w, err, errlen);
			}
		}
		off += have; /* what the writer sent, written or dropped */
		if (bytes)
			atomic_store(bytes, off);
	}
	if (rc == 0 && off == 0) {
		snprintf(err, errlen, "%s: the backend sent nothing", rel);
		rc = -EPIPE;
	}
	if (rc == 0) {
		rc = sfile_sync(&f);
		if (rc < 0)
			fail(st, rel, "sync", rc, err, errlen);
	}
	if (rc == 0)
		sha_hex(md, sha);
	if (opened)
		sfile_close(&f);
	/* a failed save leaves no image that looks whole */
	if (rc < 0 && opened) {
		char e2[64];
		ckpt_store_rmtree(st, rel, e2, sizeof(e2));
	}
	EVP_MD_CTX_free(md);
	free(buf);
	return rc;
}

static void *save_main(void *arg)
{
	struct ckpt_stream *s = arg;
	s->rc = ckpt_store_save_fd(s->st, s->rel, s->pipe_fd, s->cancel[0], NULL, &s->bytes,
				   s->sha, s->err, sizeof(s->err));
	close(s->pipe_fd); /* the backend's writes fail from now on */
	s->pipe_fd = -1;
	atomic_store(&s->done, 1);
	return NULL;
}

static void *load_main(void *arg)
{
	struct ckpt_stream *s = arg;
	struct sfile f;
	char *buf = malloc(BUF_BYTES);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int rc = buf && md ? 0 : -ENOMEM;
	if (rc == 0)
		rc = sfile_open(s->st, NULL, s->rel, 0, &f, s->err, sizeof(s->err));
	int opened = rc == 0;
	if (rc == 0)
		EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	uint64_t off = 0;
	while (rc == 0) {
		ssize_t n = sfile_pread(&f, buf, BUF_BYTES, off);
		if (n < 0) {
			rc = fail(s->st, s->rel, "read", (int)n, s->err, sizeof(s->err));
			break;
		}
		if (n == 0)
			break;
		if (off + (uint64_t)n > s->want_bytes) {
			snprintf(s->err, sizeof(s->err), "%.200s: longer than the manifest's %llu bytes",
				 s->rel, (unsigned long long)s->want_bytes);
			rc = -EBADMSG;
			break;
		}
		EVP_DigestUpdate(md, buf, (size_t)n);
		if (off + (uint64_t)n == s->want_bytes) {
			/* the last piece: check before the backend sees its end */
			sha_hex(md, s->sha);
			if (strcmp(s->sha, s->want_sha) != 0) {
				snprintf(s->err, sizeof(s->err), "%.100s: sha256 %s, the manifest says %s",
					 s->rel, s->sha, s->want_sha);
				rc = -EBADMSG;
				break;
			}
		}
		for (size_t o = 0; o < (size_t)n && rc == 0;) {
			if ((rc = wait_pipe(s, POLLOUT)) < 0) {
				fail(s->st, s->rel, "write to the backend", rc, s->err, sizeof(s->err));
				break;
			}
			ssize_t w = write(s->pipe_fd, buf + o, (size_t)n - o);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				rc = -errno;
				snprintf(s->err, sizeof(s->err), "%.200s: write to the backend: %s", s->rel,
					 strerror(errno));
			} else {
				o += (size_t)w;
			}
		}
		off += (uint64_t)n;
		atomic_store(&s->bytes, off);
	}
	if (rc == 0 && off != s->want_bytes) {
		snprintf(s->err, sizeof(s->err), "%.200s: %llu bytes, the manifest says %llu", s->rel,
			 (unsigned long long)off, (unsigned long long)s->want_bytes);
		rc = -EBADMSG;
	}
	if (opened)
		sfile_close(&f);
	close(s->pipe_fd);
	s->pipe_fd = -1;
	EVP_MD_CTX_free(md);
	free(buf);
	s->rc = rc;
	atomic_store(&s->done, 1);
	return NULL;
}

static int stream_start(struct ckpt_store *st, const char *rel, int save, uint64_t bytes,
			const char *sha, int *backend_fd, struct ckpt_stream **out, char *err,
			size_t errlen)
{
	struct ckpt_stream *s = calloc(1, sizeof(*s));
	int p[2];
	if (!s)
		return -ENOMEM;
	if (pipe2(p, O_CLOEXEC) < 0 || pipe2(s->cancel, O_CLOEXEC) < 0) {
		int rc = -errno;
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		free(s);
		return rc;
	}
	fcntl(p[0], F_SETPIPE_SZ, 1 << 20); /* fewer wake-ups; a hint */
	s->st = st;
	snprintf(s->rel, sizeof(s->rel), "%s", rel);
	s->save = save;
	s->pipe_fd = save ? p[0] : p[1];
	*backend_fd = save ? p[1] : p[0];
	s->want_bytes = bytes;
	snprintf(s->want_sha, sizeof(s->want_sha), "%s", sha ? sha : "");
	/* a backend that goes away must not kill migd with SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	int rc = pthread_create(&s->thread, NULL, save ? save_main : load_main, s);
	if (rc != 0) {
		close(p[0]);
		close(p[1]);
		close(s->cancel[0]);
		close(s->cancel[1]);
		free(s);
		snprintf(err, errlen, "thread: %s", strerror(rc));
		return -rc;
	}
	s->started = 1;
	*out = s;
	return 0;
}

int ckpt_stream_save(struct ckpt_store *st, const char *rel, int *backend_fd,
		     struct ckpt_stream **out, char *err, size_t errlen)
{
	return stream_start(st, rel, 1, 0, NULL, backend_fd, out, err, errlen);
}

int ckpt_stream_save_proc(struct ckpt_store *st, const char *exe, const char *rel,
			  const char *result, int *backend_fd, struct ckpt_stream **out, char *err,
			  size_t errlen)
{
	struct ckpt_stream *s = calloc(1, sizeof(*s));
	int p[2];
	if (!s)
		return -ENOMEM;
	if (pipe2(p, O_CLOEXEC) < 0) {
		int rc = -errno;
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		free(s);
		return rc;
	}
	fcntl(p[0], F_SETPIPE_SZ, 1 << 20);
	s->st = st;
	s->cancel[0] = s->cancel[1] = -1;
	s->pipe_fd = -1;
	snprintf(s->rel, sizeof(s->rel), "%s", rel);
	snprintf(s->result, sizeof(s->result), "%s", result);
	unlink(result);
	char *argv[10];
	int n = 0;
	argv[n++] = (char *)exe;
	argv[n++] = "--store";
	argv[n++] = st->uri;
	if (st->is_sfs) { /* a directory store has no sfs.conf */
		argv[n++] = "--sfs-conf";
		argv[n++] = st->sfs_conf;
	}
	argv[n++] = "--result";
	argv[n++] = s->result;
	argv[n++] = s->rel;
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid < 0) {
		int rc = -errno;
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		free(s);
		return rc;
	}
	if (pid == 0) {
		dup2(p[0], STDIN_FILENO); /* dup2 clears O_CLOEXEC on the copy */
		setsid();                 /* its own session: migd's end is not its end */
		execv(exe, argv);
		_exit(127);
	}
	close(p[0]);
	s->pid = pid;
	s->save = 1;
	s->started = 0;
	*backend_fd = p[1];
	*out = s;
	return 0;
}

int ckpt_stream_load(struct ckpt_store *st, const char *rel, uint64_t bytes,
		     const char *sha_hex, int *backend_fd, struct ckpt_stream **out, char *err,
		     size_t errlen)
{
	return stream_start(st, rel, 0, bytes, sha_hex, backend_fd, out, err, errlen);
}

/* A migd-stream that exited: its outcome file into s. */
static void proc_result(struct ckpt_stream *s, int status)
{
	json_error_t je;
	json_t *o = json_load_file(s->result, 0, &je);
	const char *sha = json_string_value(json_object_get(o, "sha256"));
	const char *e = json_string_value(json_object_get(o, "error"));
	atomic_store(&s->bytes, (uint64_t)json_integer_value(json_object_get(o, "bytes")));
	if (json_is_true(json_object_get(o, "ok")) && sha && strlen(sha) == 64) {
		snprintf(s->sha, sizeof(s->sha), "%s", sha);
		s->rc = 0;
	} else {
		s->rc = -EIO;
		snprintf(s->err, sizeof(s->err), "%s", e ? e : o ? "migd-stream failed"
			 : WIFSIGNALED(status) ? "migd-stream was killed" : je.text);
	}
	json_decref(o);
	unlink(s->result);
	atomic_store(&s->done, 1);
}

int ckpt_stream_poll(struct ckpt_stream *s, uint64_t *bytes, char sha[CKPT_SHA_HEX], char *err,
		     size_t errlen)
{
	int status;
	if (s->pid > 0 && !atomic_load(&s->done) && waitpid(s->pid, &status, WNOHANG) == s->pid) {
		s->pid = 0;
		proc_result(s, status);
	}
	if (bytes)
		*bytes = atomic_load(&s->bytes);
	if (!atomic_load(&s->done))
		return 0;
	if (s->rc < 0) {
		snprintf(err, errlen, "%s", s->err);
		return s->rc;
	}
	if (sha)
		snprintf(sha, CKPT_SHA_HEX, "%s", s->sha);
	return 1;
}

/* migd-streams let go of before they ended: reaped by ckpt_stream_reap */
static pid_t abandoned[64];
static size_t n_abandoned;

void ckpt_stream_reap(void)
{
	for (size_t i = 0; i < n_abandoned;) {
		if (waitpid(abandoned[i], NULL, WNOHANG) != 0)
			abandoned[i] = abandoned[--n_abandoned];
		else
			i++;
	}
}

void ckpt_stream_free(struct ckpt_stream *s)
{
	if (!s)
		return;
	if (s->pid > 0) {
		/* still reading: it drops the rest and ends with its writer's stream */
		int status;
		if (waitpid(s->pid, &status, WNOHANG) == 0) {
			kill(s->pid, SIGUSR1);
			if (n_abandoned < sizeof(abandoned) / sizeof(abandoned[0]))
				abandoned[n_abandoned++] = s->pid;
		}
		unlink(s->result);
		free(s);
		return;
	}
	if (s->started) {
		/* cut it: its next wait on the pipe ends (an sfs call in flight
		 * finishes first, bounded by sfs's own timeout) */
		ssize_t n = write(s->cancel[1], "x", 1);
		(void)n;
		pthread_join(s->thread, NULL);
	}
	if (s->cancel[0] >= 0) {
		close(s->cancel[0]);
		close(s->cancel[1]);
	}
	free(s);
}

/* ---- tasks ---- */

struct ckpt_task {
	pthread_t thread;
	ckpt_task_fn fn;
	void *arg;
	atomic_int done;
	int rc;
	char err[512];
};

static void *task_main(void *arg)
{
	struct ckpt_task *t = arg;
	t->rc = t->fn(t->arg, t->err, sizeof(t->err));
	atomic_store(&t->done, 1);
	return NULL;
}

int ckpt_task_start(ckpt_task_fn fn, void *arg, struct ckpt_task **out)
{
	struct ckpt_task *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->fn = fn;
	t->arg = arg;
	int rc = pthread_create(&t->thread, NULL, task_main, t);
	if (rc != 0) {
		free(t);
		return -rc;
	}
	*out = t;
	return 0;
}

int ckpt_task_poll(struct ckpt_task *t, int *rc, char *err, size_t errlen)
{
	if (!atomic_load(&t->done))
		return 0;
	*rc = t->rc;
	snprintf(err, errlen, "%s", t->err);
	return 1;
}

void ckpt_task_free(struct ckpt_task *t)
{
	if (!t)
		return;
	pthread_join(t->thread, NULL);
	free(t);
}
