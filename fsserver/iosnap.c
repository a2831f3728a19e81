/*
 * iosnap: see iosnap.h.
 *
 * Crash rules. LINK and DROP are idempotent, so the metadata server can
 * simply repeat them. Unshare writes its copy to ".cow-<handle>" and
 * renames it over the live name only once complete and synced, so a crash
 * leaves either the shared file or the private copy, plus perhaps a
 * partial ".cow-" file that iosnap_open removes. RESTORE links the
 * snapshot's inode to ".restore-<handle>" and renames it over the live
 * name: the live name always points at a whole file.
 */
#include "iosnap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sfs_proto.h"
#include "util.h"

#define SNAP_DIR ".snap"
#define COPY_CHUNK_BYTES (1u << 20)

struct iosnap {
	int data_fd;
	int snap_fd; /* <data>/.snap */
	const char *data_dir;
	iosnap_forget_fn forget;
	void *forget_arg;
	pthread_mutex_t lock; /* guards the freeze state */
	pthread_cond_t cond;  /* gate opened, or the last writer left */
	uint64_t frozen_id;   /* 0 = not frozen */
	uint64_t frozen_until_ms;
	unsigned writers;     /* inside the gate */
	pthread_mutex_t cow_lock; /* one unshare or restore at a time */
};

static void hex16(uint64_t v, char out[17]) { snprintf(out, 17, "%016" PRIx64, v); }

void iosnap_handle_path(uint64_t handle, char *out, size_t len)
{
	snprintf(out, len, SNAP_DIR "/%016" PRIx64 "/%016" PRIx64, SFS_HANDLE_SNAP(handle),
		 SFS_HANDLE_FID(handle));
}

static int is_hex16(const char *name)
{
	if (strlen(name) != 16)
		return 0;
	for (const char *p = name; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

/* Remove ".cow-*" and ".restore-*" leftovers of a crash. */
static void remove_leftovers(struct iosnap *s)
{
	int dfd = openat(s->data_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, ".cow-", 5) != 0 && strncmp(de->d_name, ".restore-", 9) != 0)
			continue;
		if (unlinkat(s->data_fd, de->d_name, 0) == 0)
			log_info("%s/%s: removed, left by an interrupted copy or restore",
				 s->data_dir, de->d_name);
	}
	closedir(d);
}

int iosnap_open(int data_fd, const char *data_dir, iosnap_forget_fn forget, void *forget_arg,
		struct iosnap **out, char *err, size_t errlen)
{
	struct iosnap *s = calloc(1, sizeof(*s));
	pthread_condattr_t cattr;
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->data_fd = data_fd;
	s->data_dir = data_dir;
	s->forget = forget;
	s->forget_arg = forget_arg;
	if (mkdirat(data_fd, SNAP_DIR, 0755) < 0 && errno != EEXIST) {
		int rc = -errno;
		snprintf(err, errlen, "creating %s/" SNAP_DIR ": %s", data_dir, strerror(errno));
		free(s);
		return rc;
	}
	s->snap_fd = openat(data_fd, SNAP_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->snap_fd < 0) {
		int rc = -errno;
		snprintf(err, errlen, "%s/" SNAP_DIR ": %s", data_dir, strerror(errno));
		free(s);
		return rc;
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->cow_lock, NULL);
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &cattr);
	pthread_condattr_destroy(&cattr);
	remove_leftovers(s);
	*out = s;
	return 0;
}

void iosnap_free(struct iosnap *s)
{
	if (!s)
		return;
	close(s->snap_fd);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->cow_lock);
	free(s);
}

/* --- the gate ------------------------------------------------------------ */

static struct timespec abs_monotonic(uint64_t at_ms)
{
	return (struct timespec){ .tv_sec = (time_t)(at_ms / 1000),
				  .tv_nsec = (long)(at_ms % 1000) * 1000000 };
}

/* A freeze past its time lapses. Under the lock. */
static int frozen_now(struct iosnap *s)
{
	if (s->frozen_id && now_ms() >= s->frozen_until_ms) {
		log_warnx("the freeze of snapshot %" PRIu64 " lapsed without a thaw: "
			  "releasing writes", s->frozen_id);
		s->frozen_id = 0;
		pthread_cond_broadcast(&s->cond);
	}
	return s->frozen_id != 0;
}

void iosnap_gate_enter(struct iosnap *s)
{
	pthread_mutex_lock(&s->lock);
	while (frozen_now(s)) {
		struct timespec until = abs_monotonic(s->frozen_until_ms);
		pthread_cond_timedwait(&s->cond, &s->lock, &until);
	}
	s->writers++;
	pthread_mutex_unlock(&s->lock);
}

void iosnap_gate_leave(struct iosnap *s)
{
	pthread_mutex_lock(&s->lock);
	if (--s->writers == 0)
		pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

int iosnap_freeze(struct iosnap *s, uint64_t snap_id, uint32_t timeout_ms, char *err,
		  size_t errlen)
{
	int rc = 0;
	if (snap_id == 0 || snap_id > SFS_SNAP_ID_MAX || timeout_ms == 0) {
		snprintf(err, errlen, "freeze of snapshot %" PRIu64 " for %u ms: expected a "
			 "snapshot id from 1 to %llu and a timeout above 0", snap_id, timeout_ms,
			 (unsigned long long)SFS_SNAP_ID_MAX);
		return -EINVAL;
	}
	pthread_mutex_lock(&s->lock);
	if (frozen_now(s) && s->frozen_id != snap_id) {
		snprintf(err, errlen, "already frozen for snapshot %" PRIu64 ", not %" PRIu64,
			 s->frozen_id, snap_id);
		rc = -EBUSY;
		goto out;
	}
	s->frozen_id = snap_id;
	s->frozen_until_ms = now_ms() + timeout_ms;
	struct timespec until = abs_monotonic(s->frozen_until_ms);
	while (s->writers > 0 && s->frozen_id == snap_id) {
		if (pthread_cond_timedwait(&s->cond, &s->lock, &until) == ETIMEDOUT)
			break;
	}
	if (s->writers > 0 || s->frozen_id != snap_id) {
		snprintf(err, errlen, "%u writes still in progress after %u ms", s->writers,
			 timeout_ms);
		if (s->frozen_id == snap_id)
			s->frozen_id = 0;
		pthread_cond_broadcast(&s->cond);
		rc = -ETIMEDOUT;
	}
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* 0 when snap_id holds the freeze now; else EPROTO (never frozen for it)
 * or ETIMEDOUT (it lapsed), with err set. Under the lock. */
static int check_frozen(struct iosnap *s, uint64_t snap_id, const char *what, char *err,
			size_t errlen)
{
	if (frozen_now(s) && s->frozen_id == snap_id)
		return 0;
	if (s->frozen_id) {
		snprintf(err, errlen, "%s for snapshot %" PRIu64 ": frozen for snapshot %" PRIu64
			 " instead", what, snap_id, s->frozen_id);
		return -EPROTO;
	}
	snprintf(err, errlen, "%s for snapshot %" PRIu64 ": not frozen for it (DF_SNAP_FREEZE "
		 "first; a freeze lapses after its timeout)", what, snap_id);
	return -EPROTO;
}

int iosnap_thaw(struct iosnap *s, uint64_t snap_id, char *err, size_t errlen)
{
	pthread_mutex_lock(&s->lock);
	/* 0: whatever freeze there is (a restarted metadata server holds none) */
	int rc = snap_id == 0 ? 0 : check_frozen(s, snap_id, "thaw", err, errlen);
	if (rc == 0) {
		s->frozen_id = 0;
		pthread_cond_broadcast(&s->cond);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* --- copy-on-write --------------------------------------------------------- */

/* Copy every byte of src into dst: a reflink if the file system can, else
 * copy_file_range, else read and write. */
static int copy_fd(int src, int dst, uint64_t size)
{
	if (ioctl(dst, FICLONE, src) == 0)
		return 0;
	uint64_t done = 0;
	int use_cfr = 1;
	char *buf = NULL;
	while (done < size) {
		size_t want = size - done < COPY_CHUNK_BYTES ? (size_t)(size - done)
							     : COPY_CHUNK_BYTES;
		ssize_t n;
		if (use_cfr) {
			loff_t in = (loff_t)done, outo = (loff_t)done;
			n = copy_file_range(src, &in, dst, &outo, want, 0);
			if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP ||
				      errno == EINVAL)) {
				use_cfr = 0;
				continue;
			}
		} else {
			if (!buf && !(buf = malloc(COPY_CHUNK_BYTES)))
				return -ENOMEM;
			n = pread(src, buf, want, (off_t)done);
			if (n > 0) {
				ssize_t w = pwrite(dst, buf, (size_t)n, (off_t)done);
				if (w < 0)
					n = -1;
				else if (w < n)
					n = w;
			}
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int rc = -errno;
			free(buf);
			return rc;
		}
		if (n == 0)
			break; /* the file shrank: nothing more to copy */
		done += (uint64_t)n;
	}
	free(buf);
	/* a hole at the end must still count toward the size */
	return ftruncate(dst, (off_t)size) < 0 ? -errno : 0;
}

int iosnap_unshare(struct iosnap *s, uint64_t handle, char *err, size_t errlen)
{
	char name[17], tmp[32];
	struct stat st;
	int src = -1, dst = -1, rc = 0;
	hex16(handle, name);
	snprintf(tmp, sizeof(tmp), ".cow-%s", name);
	pthread_mutex_lock(&s->cow_lock);
	/* another writer may have unshared it already */
	if (fstatat(s->data_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = errno == ENOENT ? 1 : -errno; /* gone: the caller's reopen tells */
		goto out;
	}
	if (st.st_nlink <= 1)
		goto out_replaced;
	src = openat(s->data_fd, name, O_RDONLY | O_CLOEXEC);
	unlinkat(s->data_fd, tmp, 0);
	dst = openat(s->data_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 07777);
	if (src < 0 || dst < 0) {
		rc = -errno;
		goto fail;
	}
	rc = copy_fd(src, dst, (uint64_t)st.st_size);
	/* SFSD_SNAP_FAULT=io:cow-enospc: the copy finds the disk full (tests) */
	const char *fault = getenv("SFSD_SNAP_FAULT");
	if (rc == 0 && fault && strcmp(fault, "io:cow-enospc") == 0)
		rc = -ENOSPC;
	if (rc == 0 && fdatasync(dst) < 0)
		rc = -errno;
	if (rc == 0 && renameat(s->data_fd, tmp, s->data_fd, name) < 0)
		rc = -errno;
	if (rc < 0)
		goto fail;
out_replaced:
	rc = 1;
	goto out;
fail:
	snprintf(err, errlen, "copying datafile 0x%" PRIx64 " (%lld bytes, shared with a "
		 "snapshot) before changing it: %s", handle, (long long)st.st_size,
		 strerror(-rc));
	unlinkat(s->data_fd, tmp, 0);
out:
	if (src >= 0)
		close(src);
	if (dst >= 0)
		close(dst);
	pthread_mutex_unlock(&s->cow_lock);
	return rc;
}

/* --- snapshot directories ------------------------------------------------- */

static int snapdir_open(struct iosnap *s, uint64_t snap_id, int create, char *err,
			size_t errlen)
{
	char name[17];
	hex16(snap_id, name);
	if (create && mkdirat(s->snap_fd, name, 0755) < 0 && errno != EEXIST) {
		int rc = -errno;
		snprintf(err, errlen, "creating %s/" SNAP_DIR "/%s: %s", s->data_dir, name,
			 strerror(errno));
		return rc;
	}
	int fd = openat(s->snap_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int rc = -errno;
		snprintf(err, errlen, rc == -ENOENT ? "snapshot %" PRIu64 " has no datafiles here"
						    : "snapshot %" PRIu64 ": %s",
			 snap_id, strerror(-rc));
		return rc;
	}
	return fd;
}

/* SFSD_SNAP_FAULT=POINT: die like kill -9 at POINT (crash tests). */
static void fault_point(const char *point)
{
	const char *want = getenv("SFSD_SNAP_FAULT");
	if (want && strcmp(want, point) == 0) {
		log_warnx("SFSD_SNAP_FAULT=%s: killing myself", point);
		raise(SIGKILL);
	}
}

int iosnap_link(struct iosnap *s, uint64_t snap_id, const uint64_t *handles, uint32_t n,
		char *err, size_t errlen)
{
	fault_point("io:link");
	pthread_mutex_lock(&s->lock);
	int rc = check_frozen(s, snap_id, "link", err, errlen);
	pthread_mutex_unlock(&s->lock);
	if (rc < 0)
		return rc;
	int dfd = snapdir_open(s, snap_id, 1, err, errlen);
	if (dfd < 0)
		return dfd;
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		char name[17];
		if (handles[i] == 0 || SFS_HANDLE_SNAP(handles[i])) {
			snprintf(err, errlen, "handle 0x%" PRIx64 " is not a live datafile",
				 handles[i]);
			rc = -EINVAL;
			break;
		}
		hex16(handles[i], name);
		if (linkat(s->data_fd, name, dfd, name, 0) < 0 && errno != EEXIST) {
			rc = -errno;
			snprintf(err, errlen, "linking datafile 0x%" PRIx64 " into snapshot %" PRIu64
				 ": %s", handles[i], snap_id, strerror(errno));
		}
	}
	if (rc == 0 && fsync(dfd) < 0)
		rc = -errno;
	close(dfd);
	return rc;
}

int iosnap_restore(struct iosnap *s, uint64_t snap_id, const uint64_t *handles, uint32_t n,
		   char *err, size_t errlen)
{
	pthread_mutex_lock(&s->lock);
	int rc = check_frozen(s, snap_id, "restore", err, errlen);
	pthread_mutex_unlock(&s->lock);
	if (rc < 0)
		return rc;
	int dfd = snapdir_open(s, snap_id, 0, err, errlen);
	if (dfd < 0)
		return dfd;
	pthread_mutex_lock(&s->cow_lock);
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		char name[17], tmp[32];
		struct stat snap_st, live_st;
		hex16(handles[i], name);
		snprintf(tmp, sizeof(tmp), ".restore-%s", name);
		if (fstatat(dfd, name, &snap_st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = -errno;
			snprintf(err, errlen, "snapshot %" PRIu64 " datafile 0x%" PRIx64 ": %s",
				 snap_id, handles[i], strerror(errno));
			break;
		}
		if (fstatat(s->data_fd, name, &live_st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    live_st.st_ino == snap_st.st_ino && live_st.st_dev == snap_st.st_dev)
			continue; /* unchanged since the snapshot: nothing to do */
		unlinkat(s->data_fd, tmp, 0);
		if (linkat(dfd, name, s->data_fd, tmp, 0) < 0 ||
		    renameat(s->data_fd, tmp, s->data_fd, name) < 0) {
			rc = -errno;
			snprintf(err, errlen, "restoring datafile 0x%" PRIx64 " from snapshot %" PRIu64
				 ": %s", handles[i], snap_id, strerror(errno));
			unlinkat(s->data_fd, tmp, 0);
			break;
		}
		s->forget(s->forget_arg, handles[i]);
		fault_point("io:restore"); /* after the first datafile: a half restore */
	}
	pthread_mutex_unlock(&s->cow_lock);
	close(dfd);
	if (rc == 0 && fsync(s->data_fd) < 0)
		rc = -errno;
	return rc;
}

int iosnap_drop(struct iosnap *s, uint64_t snap_id, char *err, size_t errlen)
{
	int dfd = snapdir_open(s, snap_id, 0, err, errlen);
	if (dfd == -ENOENT)
		return 0; /* dropped already */
	if (dfd < 0)
		return dfd;
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -ENOMEM;
	}
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) != NULL) {
		if (!is_hex16(de->d_name))
			continue;
		if (unlinkat(dfd, de->d_name, 0) < 0 && errno != ENOENT && rc == 0) {
			rc = -errno;
			snprintf(err, errlen, "snapshot %" PRIu64 ": removing %s: %s", snap_id,
				 de->d_name, strerror(errno));
		}
		s->forget(s->forget_arg,
			  SFS_SNAP_HANDLE(snap_id, strtoull(de->d_name, NULL, 16)));
	}
	closedir(d);
	char name[17];
	hex16(snap_id, name);
	if (rc == 0 && unlinkat(s->snap_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
		rc = -errno;
		snprintf(err, errlen, "snapshot %" PRIu64 ": removing its directory: %s", snap_id,
			 strerror(errno));
	}
	return rc;
}

/* --- usage and listing ----------------------------------------------------- */

/* Pinned bytes and datafiles of the snapshot directory dfd. */
static void snapdir_usage(struct iosnap *s, int dfd, uint64_t *n_files, uint64_t *pinned)
{
	int fd = dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		struct stat st, live;
		if (!is_hex16(de->d_name) || fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		(*n_files)++;
		if (fstatat(s->data_fd, de->d_name, &live, AT_SYMLINK_NOFOLLOW) == 0 &&
		    live.st_ino == st.st_ino)
			continue; /* shared with the live file: pins nothing */
		*pinned += (uint64_t)st.st_blocks * 512 / (st.st_nlink ? st.st_nlink : 1);
	}
	closedir(d);
}

int iosnap_stat(struct iosnap *s, uint64_t snap_id, uint64_t *n_files, uint64_t *pinned_bytes,
		char *err, size_t errlen)
{
	*n_files = *pinned_bytes = 0;
	int dfd = snapdir_open(s, snap_id, 0, err, errlen);
	if (dfd == -ENOENT)
		return 0;
	if (dfd < 0)
		return dfd;
	snapdir_usage(s, dfd, n_files, pinned_bytes);
	close(dfd);
	return 0;
}

int iosnap_usage(struct iosnap *s, uint64_t *pinned_bytes, uint64_t *n_snaps)
{
	uint64_t n_files = 0;
	*pinned_bytes = *n_snaps = 0;
	int fd = dup(s->snap_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	rewinddir(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!is_hex16(de->d_name))
			continue;
		int dfd = openat(s->snap_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			continue;
		(*n_snaps)++;
		snapdir_usage(s, dfd, &n_files, pinned_bytes);
		close(dfd);
	}
	closedir(d);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int iosnap_list(struct iosnap *s, uint64_t snap_id, uint64_t cookie, uint64_t *out,
		uint32_t max, uint32_t *n, int *eof, char *err, size_t errlen)
{
	int dfd = snap_id == 0 ? dup(s->data_fd)
		  : snap_id == SFS_DF_LIST_SNAPS ? dup(s->snap_fd)
						 : snapdir_open(s, snap_id, 0, err, errlen);
	size_t cap = 1024, count = 0;
	uint64_t *all = malloc(cap * sizeof(*all));
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	*n = 0;
	*eof = 1;
	if (!d || !all) {
		int rc = dfd == -ENOENT ? 0 : -ENOMEM;
		if (dfd >= 0 && !d)
			close(dfd);
		if (d)
			closedir(d);
		free(all);
		return rc;
	}
	rewinddir(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		uint64_t v;
		if (!is_hex16(de->d_name) || (v = strtoull(de->d_name, NULL, 16)) <= cookie)
			continue;
		if (count == cap) {
			uint64_t *more = realloc(all, 2 * cap * sizeof(*all));
			if (!more)
				break;
			all = more;
			cap *= 2;
		}
		all[count++] = v;
	}
	closedir(d);
	qsort(all, count, sizeof(*all), cmp_u64);
	*n = count < max ? (uint32_t)count : max;
	*eof = count <= max;
	memcpy(out, all, *n * sizeof(*all));
	free(all);
	return 0;
}
