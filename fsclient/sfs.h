/*
 * sfs.h: the public interface of libsfs, the client of the sfs striped
 * parallel file system.
 *
 * A struct sfs is one mounted file system, made from an sfs.conf. It is
 * thread-safe: any number of threads may use it and its open files at once
 * (each thread's I/O gets its own set of connections, so they run in
 * parallel). Paths are absolute within the file system ("/dir/file").
 *
 * Every function returns 0 (or a byte count) on success and a negative errno
 * on failure; sfs_last_error() gives a readable message for the calling
 * thread's last failure, "CALL PATH: why", naming the server involved.
 * A server that cannot be connected to fails a call with the connect's
 * own errno (-ECONNREFUSED, -EHOSTUNREACH, -ENETUNREACH, -ETIMEDOUT), and
 * then nothing of the call was sent to it; one that drops a connection in
 * use and cannot be reached again counts as failed (-EIO, below).
 *
 * Data path: a file is striped round-robin in strips over an ordered list
 * of I/O servers. A large pread/pwrite goes to every server of the stripe at
 * once, as one vectored, pipelined request stream per server. A server
 * that dies or stops answering fails the call with -EIO or -ETIMEDOUT within
 * the configured timeout; a call never reports success for data that did
 * not land.
 */
#ifndef SFS_H
#define SFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sfs;
struct sfs_file;

/* open flags */
#define SFS_O_RDONLY 0x0
#define SFS_O_WRONLY 0x1
#define SFS_O_RDWR 0x2
#define SFS_O_CREAT 0x40
#define SFS_O_EXCL 0x80
#define SFS_O_TRUNC 0x200
#define SFS_O_APPEND 0x400 /* sfs_append only: sfs_pwrite keeps its offset */

#define SFS_STAT_FILE 1
#define SFS_STAT_DIR 2
#define SFS_STAT_SYMLINK 3
#define SFS_STRIPE_MAX 64

struct sfs_stat {
	uint64_t fid;          /* file id, also every datafile's handle */
	int type;              /* SFS_STAT_FILE or SFS_STAT_DIR */
	uint32_t mode;
	uint32_t uid, gid;
	uint64_t size_bytes;   /* files: derived from the datafiles; symlinks:
				  the target's length */
	int64_t atime_ns;      /* set at close after a read (relatime's rule) */
	int64_t mtime_ns;      /* set at close after a write or a truncate */
	int64_t ctime_ns;
	uint32_t strip_size;   /* files: layout; dirs: default for new files (0 = fs default) */
	unsigned stripe_count; /* likewise */
	unsigned servers[SFS_STRIPE_MAX]; /* files only: I/O server indices, in stripe order */
};

struct sfs_server_usage {
	char name[64];
	int is_meta;
	char address[160];
	int status;            /* 0, or the negative errno reaching it */
	char error[160];       /* status < 0: why ("connect: Connection refused") */
	/* The file system holding the server's directory, and what the server's
	 * own files use of it: datafiles (I/O) or the database files (meta). */
	uint64_t total_bytes, free_bytes, used_bytes;
	uint64_t n_files;      /* datafiles (I/O) or files (meta) */
	uint64_t n_dirs;       /* meta only */
	/* I/O only: bytes that snapshots pin here (no live datafile shares
	 * them) and the snapshots holding datafiles here */
	uint64_t snapshot_bytes;
	uint64_t n_snapshots;
};

struct sfs_ping_result {
	char name[64];
	int is_meta;
	char address[160];
	int status;            /* 0, or the negative errno */
	char error[160];       /* status < 0: why */
	unsigned version;      /* the server's protocol version */
	double rtt_ms;
};

/*
 * Connect using the config at conf_path. overrides: NULL or a NULL-ended
 * array of "key=value" strings that replace [global] options for this
 * client (socket_sndbuf=1m, max_request=2m, timeout_ms=5000, ...).
 * No connection is made until the first call that needs one.
 */
int sfs_connect(const char *conf_path, const char *const *overrides, struct sfs **out);
/* Closes every connection. Open files must be closed first. NULL is fine. */
void sfs_disconnect(struct sfs *fs);

/* The calling thread's last error message ("" if none). */
const char *sfs_last_error(void);

/* A file created by sfs_open is owned by the process's effective uid and
 * gid; sfs_open_as names the owner (a mount creating for its callers) and,
 * with st != NULL, returns the file's attributes from the same request
 * (its size costs a request to each I/O server, except with SFS_O_EXCL or
 * SFS_O_TRUNC, when it is 0). */
int sfs_open(struct sfs *fs, const char *path, int flags, uint32_t mode, struct sfs_file **out);
int sfs_open_as(struct sfs *fs, const char *path, int flags, uint32_t mode, uint32_t uid,
		uint32_t gid, struct sfs_file **out, struct sfs_stat *st);
/* Open the existing file whose fid is fid, whatever its name is now (an
 * inode number, to a mount). path only names it in messages. */
int sfs_open_fid(struct sfs *fs, uint64_t fid, const char *path, int flags,
		 struct sfs_file **out);
/* Returns bytes read (short only at end of file) or a negative errno. */
ssize_t sfs_pread(struct sfs_file *f, void *buf, size_t len, uint64_t offset);
/* Returns len or a negative errno; never a short write. */
ssize_t sfs_pwrite(struct sfs_file *f, const void *buf, size_t len, uint64_t offset);
/* Write at the end of the file, atomically against every other sfs_append
 * to it from any client (the metadata server's per-file append lock).
 * *offset gets where the bytes landed. Returns len or a negative errno. */
ssize_t sfs_append(struct sfs_file *f, const void *buf, size_t len, uint64_t *offset);
/*
 * Locks held on the metadata server for every client: fcntl-style byte
 * ranges (flock 0) or a whole-file flock (flock 1, start/end ignored), the
 * two kinds never conflicting with each other. owner names the holder
 * inside this client (a process, an open file: any number the caller keeps
 * unique); an owner's new lock replaces its own in the range. Locks go when
 * cleared (SFS_LOCK_UNLOCK), when this client disconnects or dies, or when
 * the metadata server restarts. Nothing waits: a conflict is -EAGAIN, and a
 * caller that wants to wait retries (sfs mount does, for F_SETLKW).
 */
#define SFS_LOCK_READ 1
#define SFS_LOCK_WRITE 2
#define SFS_LOCK_UNLOCK 3
struct sfs_lock {
	int type;          /* SFS_LOCK_* */
	uint64_t start;    /* first byte */
	uint64_t end;      /* last byte, inclusive; UINT64_MAX: to the end, however long */
	uint32_t pid;      /* set: reported to sfs_getlk callers of this client;
			      from sfs_getlk: the holder's, 0 if on another client */
};
int sfs_lock(struct sfs_file *f, uint64_t owner, int flock, const struct sfs_lock *lk);
/* lk in: the lock wanted; out: the first conflicting lock of another owner,
 * or type SFS_LOCK_UNLOCK when lk could be taken now. */
int sfs_getlk(struct sfs_file *f, uint64_t owner, int flock, struct sfs_lock *lk);

/* Servers make every byte of the file durable. */
int sfs_fsync(struct sfs_file *f);
/* Writes and truncates set the file's mtime and ctime when it is flushed
 * or closed, not at each write (one metadata request per close, not one
 * per write). sfs_flush publishes them now, if f was written since the
 * last flush: a mount calls it when a program closes a descriptor. */
int sfs_flush(struct sfs_file *f);
/* Frees f whatever happens; returns an error seen on close (none today). */
int sfs_close(struct sfs_file *f);
int sfs_fstat(struct sfs_file *f, struct sfs_stat *st);
int sfs_ftruncate(struct sfs_file *f, uint64_t size);

int sfs_stat(struct sfs *fs, const char *path, struct sfs_stat *st);
int sfs_truncate(struct sfs *fs, const char *path, uint64_t size);
int sfs_unlink(struct sfs *fs, const char *path);
int sfs_mkdir(struct sfs *fs, const char *path, uint32_t mode);
int sfs_mkdir_as(struct sfs *fs, const char *path, uint32_t mode, uint32_t uid, uint32_t gid);
/* Attributes by fid: an entry of any type, found whatever its name now is. */
int sfs_stat_fid(struct sfs *fs, uint64_t fid, struct sfs_stat *st);

/* Atomically give from the name to (across directories too). An existing
 * file at to is replaced, and so is an empty directory when from is one.
 * flags: 0 or SFS_RENAME_NOREPLACE (then -EEXIST if to exists). */
#define SFS_RENAME_NOREPLACE 0x1
int sfs_rename(struct sfs *fs, const char *from, const char *to, unsigned flags);

/* chmod, chown, utimens: set the fields named in valid, of the entry whose
 * fid is fid; ctime becomes now. st (may be NULL) gets the result. */
#define SFS_SET_MODE 0x1
#define SFS_SET_UID 0x2
#define SFS_SET_GID 0x4
#define SFS_SET_ATIME 0x8
#define SFS_SET_MTIME 0x10
struct sfs_setattr {
	unsigned valid;
	uint32_t mode, uid, gid;
	int64_t atime_ns, mtime_ns;
};
int sfs_setattr(struct sfs *fs, uint64_t fid, const struct sfs_setattr *sa,
		struct sfs_stat *st);

/* A symbolic link at path pointing to target (stored, never followed by
 * sfs itself: the kernel follows it on a mount). st may be NULL. */
int sfs_symlink(struct sfs *fs, const char *target, const char *path, uint32_t uid,
		uint32_t gid, struct sfs_stat *st);
/* The target of the symlink fid, NUL-terminated in buf (truncated to len - 1
 * bytes); returns its full length or a negative errno (-EINVAL: not a link). */
ssize_t sfs_readlink(struct sfs *fs, uint64_t fid, char *buf, size_t len);
int sfs_rmdir(struct sfs *fs, const char *path);

/* Calls fn for every entry of a directory, in name order; fn returning
 * non-zero stops the walk and becomes the result. */
typedef int (*sfs_readdir_fn)(void *arg, const char *name, int type, uint64_t fid);
int sfs_readdir(struct sfs *fs, const char *path, sfs_readdir_fn fn, void *arg);

/* New files under dir get this layout (0 = file system default). */
int sfs_setstripe(struct sfs *fs, const char *dir, uint32_t strip_size, unsigned stripe_count);

/* Number of servers (metadata server + I/O servers) and their names. */
unsigned sfs_server_count(struct sfs *fs);
/* Server i: 0 is the metadata server, 1..n the I/O servers in order. */
const char *sfs_server_name(struct sfs *fs, unsigned i);

/* Usage of every server: fills out[0..n) (n = sfs_server_count). Servers
 * that do not answer get status < 0 and error; the call itself returns 0. */
int sfs_statfs(struct sfs *fs, struct sfs_server_usage *out, unsigned n);
/* Round trip and protocol version of every server, like sfs_statfs. */
int sfs_ping(struct sfs *fs, struct sfs_ping_result *out, unsigned n);

/*
 * Snapshots: a consistent, read-only, point-in-time copy of a directory
 * tree over every server, taken in O(files) with no data copied (datafiles
 * are copied on their first write afterwards), and rollback of the tree to
 * it. A snapshot's files are readable without a rollback under
 * /.snapshots/NAME/ (the snapshot's directory is that path), through
 * sfs_open(SFS_O_RDONLY), sfs_readdir and sfs_stat.
 *
 * Rollback: the tree returns to exactly its state at the snapshot (files
 * created since vanish, removed ones return, contents, sizes, layouts and
 * directory entries revert). libsfs holds no server-side open state, so
 * open files are not tracked: a file that existed at the snapshot keeps
 * its fid and an open handle of it reads and writes the rolled-back
 * contents; one that the rollback removed fails further I/O with -ESTALE.
 * A rollback while a client writes into the tree is refused with -EBUSY
 * (any I/O server saw a write there within the last second) unless
 * SFS_ROLLBACK_FORCE.
 */
#define SFS_SNAPSHOT_NAME_MAX 128
#define SFS_ROLLBACK_FORCE 0x1

struct sfs_snapshot {
	uint64_t id;
	char name[SFS_SNAPSHOT_NAME_MAX + 1];
	char path[4096];         /* the directory it holds */
	int64_t created_ns;      /* wall clock */
	uint64_t n_files, n_dirs;
	uint64_t pinned_bytes;   /* sfs_snapshot_list: bytes only it keeps, summed
				    over the I/O servers that answered */
};

/* Snapshot path (NULL: the whole file system) as name. out may be NULL.
 * Names: 1 to 128 bytes, no '/', no control characters, unique. */
int sfs_snapshot_create(struct sfs *fs, const char *name, const char *path,
			struct sfs_snapshot *out);
/* fn for every snapshot in name order; non-zero from fn stops the walk. */
typedef int (*sfs_snapshot_fn)(void *arg, const struct sfs_snapshot *snap);
int sfs_snapshot_list(struct sfs *fs, sfs_snapshot_fn fn, void *arg);
int sfs_snapshot_rm(struct sfs *fs, const char *name);
int sfs_snapshot_rollback(struct sfs *fs, const char *name, int flags);

/* Consistency check of the datafiles against the namespace (details go to
 * the metadata server's log). */
struct sfs_fsck_report {
	uint64_t leaked_datafiles;  /* on an I/O server, but no file names them */
	uint64_t leaked_snapshots;  /* snapshot datafiles of no snapshot */
	uint64_t missing_datafiles; /* named by a file, absent on its server */
};
int sfs_fsck(struct sfs *fs, struct sfs_fsck_report *out);

/* The text of a (negative) errno, in lower case, with libsfs's wording for
 * -EIO and -ETIMEDOUT. */
const char *sfs_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
