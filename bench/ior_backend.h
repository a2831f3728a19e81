/*
 * ior_backend: the I/O interfaces sfs-ior can measure (IOR's "-a API"),
 * behind one table of operations.
 *
 * The driver (sfs_ior.c) owns timing, offsets, the data pattern and MPI
 * coordination; a backend only moves bytes. That keeps the three measured
 * paths (libsfs, POSIX on a local directory, MPI-IO on a local directory)
 * doing exactly the same work apart from the interface under test, the way
 * IOR's aiori modules do.
 *
 * Every operation returns 0 (or a byte count) or a negative errno. On
 * failure the backend leaves a readable message naming the path and the
 * cause in fs->err ("open /ior/testfile: connection refused (io1 ...)"),
 * which the driver prints with the rank.
 */
#ifndef IOR_BACKEND_H
#define IOR_BACKEND_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* How a test file is opened. */
enum ior_open_mode {
	IOR_OPEN_CREATE, /* create if missing, then write (the driver removed it before) */
	IOR_OPEN_WRITE,  /* existing file, write (shared file, ranks other than 0) */
	IOR_OPEN_READ,   /* existing file, read only */
};

/* What the driver hands every backend; unused fields are ignored. */
struct ior_backend_conf {
	const char *sfs_conf;             /* -a SFS: sfs.conf path */
	const char *const *sfs_overrides; /* -a SFS: NULL-ended "key=value" list */
};

/* Size and use of the file system holding the test file (IOR's "FS" line). */
struct ior_fs_usage {
	uint64_t total_bytes, free_bytes;
	uint64_t total_inodes, free_inodes; /* 0 total: not known */
};

struct ior_backend;

/* A connected interface. Backends embed it first in their own struct. */
struct ior_fs {
	const struct ior_backend *ops;
	char err[512]; /* the last failure, for the person reading the output */
};

/* An open test file. Backends embed it first in their own struct. */
struct ior_file {
	struct ior_fs *fs;
};

struct ior_backend {
	const char *name; /* as -a takes it: "SFS", "POSIX", "MPIIO" */
	/* 1: open() is collective over the communicator it is given (MPI-IO);
	 * 0: every rank opens on its own and the driver orders shared creates. */
	int collective_open;

	/* Connect; on failure *out is NULL and err holds why. */
	int (*init)(const struct ior_backend_conf *conf, struct ior_fs **out, char *err, size_t errlen);
	void (*fini)(struct ior_fs *fs); /* NULL is fine */
	/* "apiVersion" of IOR's Options block, into buf. */
	void (*version)(struct ior_fs *fs, char *buf, size_t len);

	/* comm: the ranks that share this file (MPI_COMM_SELF for -F). */
	int (*open)(struct ior_fs *fs, const char *path, enum ior_open_mode mode, MPI_Comm comm,
		    struct ior_file **out);
	/* Moves all len bytes or fails: returns len or a negative errno. */
	ssize_t (*xfer)(struct ior_file *f, int is_write, void *buf, size_t len, uint64_t offset);
	int (*fsync)(struct ior_file *f);
	/* Frees f whatever happens. */
	int (*close)(struct ior_file *f);
	/* -ENOENT when there is nothing to remove. */
	int (*remove)(struct ior_fs *fs, const char *path);
	int (*get_size)(struct ior_fs *fs, const char *path, uint64_t *size_bytes);
	/* Optional (NULL): create the directories above path. */
	int (*make_parents)(struct ior_fs *fs, const char *path);
	/* Optional (NULL): usage of the file system holding path. */
	int (*usage)(struct ior_fs *fs, const char *path, struct ior_fs_usage *out);
};

extern const struct ior_backend ior_backend_sfs;
extern const struct ior_backend ior_backend_posix;
extern const struct ior_backend ior_backend_mpiio;

/* The backend named name (case-insensitive, as IOR), or NULL. */
const struct ior_backend *ior_backend_find(const char *name);

/* statvfs(2) of a local path, for the backends that write to one. */
int ior_local_usage(struct ior_fs *fs, const char *path, struct ior_fs_usage *out);

/* printf into fs->err; returns err so a backend can `return ior_fail(...)`. */
int ior_fail(struct ior_fs *fs, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
