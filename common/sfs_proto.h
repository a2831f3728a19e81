/*
 * sfs_proto: the sfs wire protocol, the only place its format is defined.
 *
 * Every message is one frame: a fixed 24-byte header, then `body_len` bytes
 * of op-specific fields, then `data_len` bytes of bulk data (file contents
 * of a write request or a read reply). Bulk data is kept out of the body so
 * that a server can receive it straight into its buffer and a client can
 * scatter it into the caller's buffer with readv: one copy at most per side.
 *
 * Header, all integers little-endian:
 *   u32 magic "SFS1"   u16 version   u16 op
 *   u32 tag (echoed in the reply, lets a client pipeline requests)
 *   i32 status (0 in requests; 0 or a negative errno, -4095..-1, in replies)
 *   u32 body_len (<= SFS_MAX_BODY_BYTES)   u32 data_len (<= the peer's limit)
 *
 * Body fields are fixed-width integers and strings (u16 length + bytes, no
 * NUL inside). A decoder checks lengths before every read and rejects
 * trailing bytes, so a frame either decodes exactly or is an error.
 *
 * Replies carry the request's op. An error reply (status < 0) has an empty
 * body except for an optional message string, which adds to the errno what
 * the client cannot know (which component of a path, which I/O server); it
 * does not repeat the request's path, which the client names itself.
 */
#ifndef MIGD_SFS_PROTO_H
#define MIGD_SFS_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "sfs_cap.h"

#define SFS_PROTO_MAGIC 0x31534653u /* "SFS1" read as little-endian u32 */
/* 2: owners, atime, symlinks, rename, setattr, append locks and byte-range
 * locks (sfs mount: ops 25-33), and snapshots (ops 40-44 and 64-71,
 * DF_STATFS's snapshot fields, snapshot handles). A peer of another
 * version is refused with a message naming both versions. */
/* 3: capabilities (sfs_cap.h): in the bodies of the I/O-server requests
 * that sfs_op_takes_cap names, first; in LOOKUP, CREATE, GETATTR and
 * SETATTR replies after the attr; STATS replies count refusals. */
#define SFS_PROTO_VERSION 3
#define SFS_HDR_BYTES 24
#define SFS_MAX_BODY_BYTES 65536u
#define SFS_MAX_PATH 4095
#define SFS_MAX_NAME 255
#define SFS_MAX_STRIPE 64     /* I/O servers in one file's stripe */
#define SFS_STRIP_SIZE_MIN 4096u        /* a strip size is a multiple of 512 */
#define SFS_STRIP_SIZE_MAX (1u << 30)   /* in [MIN, MAX] */
#define SFS_MAX_MSG 200       /* error message text in a reply */
#define SFS_MAX_ERRNO 4095    /* status is 0 or -1..-SFS_MAX_ERRNO */
#define SFS_READDIR_MAX 128   /* entries per READDIR reply */
#define SFS_ROOT_FID 1

/* Snapshots. A snapshot's datafiles are read through ordinary DF_READ and
 * DF_GETSIZE with a snapshot handle: the snapshot id in the bits above
 * SFS_FID_BITS, the file's fid below (fids never reach 2^40). Such a
 * handle is read-only. */
#define SFS_SNAP_NAME_MAX 128  /* bytes of a snapshot name */
#define SFS_FID_BITS 40
#define SFS_FID_MASK ((1ull << SFS_FID_BITS) - 1)
#define SFS_SNAP_ID_MAX ((1ull << (64 - SFS_FID_BITS)) - 1)
#define SFS_SNAP_HANDLE(snap_id, fid) ((uint64_t)(((uint64_t)(snap_id) << SFS_FID_BITS) | (fid)))
#define SFS_HANDLE_SNAP(handle) ((uint64_t)(handle) >> SFS_FID_BITS)
#define SFS_HANDLE_FID(handle) ((uint64_t)((uint64_t)(handle) & SFS_FID_MASK))
#define SFS_SNAP_BATCH 8000    /* handles in one DF_SNAP_LINK/RESTORE/DF_LIST */
#define SFS_SNAPLIST_MAX 16    /* snapshots in one SNAP_LIST reply */
#define SFS_DF_LIST_SNAPS UINT64_MAX /* DF_LIST of snapshot ids, not handles */
#define SFS_BUSY_WINDOW_MS 1000 /* DF_SNAP_BUSY: "being written" means this recent */

enum sfs_op {
	SFS_OP_PING = 1,
	SFS_OP_STATS,         /* -> requests served (every role; for tests) */

	/* metadata server */
	SFS_OP_LOOKUP = 16,   /* path -> attr */
	SFS_OP_CREATE,        /* path, mode, flags -> attr (file, with layout) */
	SFS_OP_MKDIR,         /* path, mode -> attr */
	SFS_OP_UNLINK,        /* path -> attr of the removed file */
	SFS_OP_RMDIR,         /* path */
	SFS_OP_READDIR,       /* path, cookie -> entries, eof */
	SFS_OP_SETSTRIPE,     /* path (a directory), strip_size, stripe_count */
	SFS_OP_META_STATFS,   /* -> files, dirs, total, free, used bytes */
	SFS_OP_SETMTIME,      /* handle (fid), mtime_ns: sets mtime and ctime */
	/* 25-39: what a POSIX mount needs (version 2) */
	SFS_OP_GETATTR = 25,  /* handle -> attr (no path: an open file, an inode) */
	SFS_OP_RENAME,        /* path, path2, flags -> replaced (its datafiles go) */
	SFS_OP_SETATTR,       /* handle, valid, mode, uid, gid, atime_ns, mtime_ns -> attr */
	SFS_OP_SYMLINK,       /* path, path2 (the target), uid, gid -> attr */
	SFS_OP_READLINK,      /* handle -> target */
	SFS_OP_APPEND_LOCK,   /* handle: waits for the file's append lock */
	SFS_OP_APPEND_UNLOCK, /* handle: gives it back (or the connection closing) */
	SFS_OP_LOCK,          /* handle, session, owner, pid, lk_*: set or clear a
				 lock without waiting (-EAGAIN on conflict) */
	SFS_OP_GETLK,         /* the same -> the first conflicting lock, or lk_type UN */

	/* metadata server: snapshots (40-47) */
	SFS_OP_SNAP_CREATE = 40, /* name, path -> snapinfo */
	SFS_OP_SNAP_LIST,        /* cookie (a name) -> snapinfos after it, eof */
	SFS_OP_SNAP_RM,          /* name */
	SFS_OP_SNAP_ROLLBACK,    /* name, flags -> snapinfo */
	SFS_OP_SNAP_FSCK,        /* flags (0) -> leaked/missing datafile counts */

	/* I/O server: datafiles named by handle (the file's fid) */
	SFS_OP_DF_CREATE = 48, /* handle: create empty (truncates an orphan) */
	SFS_OP_DF_REMOVE,      /* handle */
	SFS_OP_DF_WRITE,       /* handle, offset + data -> local_size */
	SFS_OP_DF_READ,        /* handle, offset, length -> local_size + data */
	SFS_OP_DF_GETSIZE,     /* handle -> local_size */
	SFS_OP_DF_TRUNCATE,    /* handle, length */
	SFS_OP_DF_SYNC,        /* handle (0 = every datafile) */
	SFS_OP_DF_STATFS,      /* -> total, free, used bytes, datafiles,
				  snapshot bytes, snapshot count */

	/* I/O server: snapshots (64-79). A snapshot's cut is one freeze held on
	 * every server at once: FREEZE, then LINK (or RESTORE), then THAW, each
	 * naming the same snap_id; LINK, RESTORE and THAW without that FREEZE
	 * are refused with EPROTO. A freeze lapses by itself after timeout_ms. */
	SFS_OP_DF_SNAP_FREEZE = 64, /* snap_id, timeout_ms: hold writes, drain */
	SFS_OP_DF_SNAP_LINK,        /* snap_id, handles[]: pin into the snapshot */
	SFS_OP_DF_SNAP_THAW,        /* snap_id: release; EPROTO if it lapsed;
				       snap_id 0 releases any freeze */
	SFS_OP_DF_SNAP_DROP,        /* snap_id: delete the snapshot's datafiles */
	SFS_OP_DF_SNAP_RESTORE,     /* snap_id, handles[]: live := snapshot's */
	SFS_OP_DF_SNAP_STAT,        /* snap_id -> datafiles, bytes pinned */
	SFS_OP_DF_LIST,             /* snap_id (0 live, SFS_DF_LIST_SNAPS),
				       cookie handle -> handles[], eof */
	SFS_OP_DF_SNAP_BUSY,        /* handles[]: EBUSY if one is being written
				       (written within SFS_BUSY_WINDOW_MS) */
};

enum sfs_ftype { SFS_TYPE_FILE = 1, SFS_TYPE_DIR = 2, SFS_TYPE_SYMLINK = 3 };
enum sfs_role { SFS_ROLE_META = 1, SFS_ROLE_IO = 2 };

/* CREATE flags */
#define SFS_CREATE_EXCL 0x1u
/* SNAP_ROLLBACK flags */
#define SFS_SNAP_ROLLBACK_FORCE 0x1u

/* LOCK, GETLK: byte-range (fcntl) or whole-file (flock) locks, held for
 * (session, owner) until cleared or until the last connection that carried
 * a lock request of the session closes. lk_end is inclusive; UINT64_MAX
 * means "to the end of the file, however long". */
enum sfs_lock_kind { SFS_LK_POSIX = 1, SFS_LK_FLOCK = 2 };
enum sfs_lock_type { SFS_LK_RD = 1, SFS_LK_WR = 2, SFS_LK_UN = 3 };

/* RENAME flags */
#define SFS_RENAMEF_NOREPLACE 0x1u
/* SETATTR valid: which fields to set (ctime is always set to now) */
#define SFS_SETATTR_MODE 0x1u
#define SFS_SETATTR_UID 0x2u
#define SFS_SETATTR_GID 0x4u
#define SFS_SETATTR_ATIME 0x8u
#define SFS_SETATTR_MTIME 0x10u
#define SFS_SETATTR_KEEP_CTIME 0x20u /* a read's atime: ctime stays (POSIX) */
#define SFS_SETATTR_ALL 0x3fu

struct sfs_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint32_t tag;
	int32_t status;
	uint32_t body_len;
	uint32_t data_len;
};

/* A file's layout: strips of strip_size round-robin over servers[] in order
 * (indices into the config's list of I/O servers). For a directory, the
 * layout that new files under it get; 0 fields mean "file system default",
 * and there are no servers (on the wire too: each file picks its own). */
struct sfs_layout {
	uint32_t strip_size;
	uint16_t stripe_count;
	uint16_t servers[SFS_MAX_STRIPE];
};

struct sfs_attr {
	uint64_t fid;
	uint8_t type; /* enum sfs_ftype */
	uint32_t mode;
	uint32_t uid, gid;
	int64_t atime_ns;
	int64_t mtime_ns;
	int64_t ctime_ns;
	struct sfs_layout layout; /* symlinks: none, like a directory's servers */
};

/* A decoded request body. Which fields are meaningful depends on op. */
struct sfs_req {
	uint16_t op;
	char path[SFS_MAX_PATH + 1];   /* LOOKUP..SETSTRIPE */
	char path2[SFS_MAX_PATH + 1];  /* RENAME: new path; SYMLINK: target */
	char cookie[SFS_MAX_NAME + 1]; /* READDIR: continue after this name */
	uint32_t mode;                 /* CREATE, MKDIR, SETATTR */
	uint32_t flags;                /* CREATE, RENAME */
	uint32_t uid, gid;             /* CREATE, MKDIR, SYMLINK, SETATTR */
	uint32_t valid;                /* SETATTR */
	int64_t atime_ns;              /* SETATTR */
	uint64_t session, owner;       /* LOCK, GETLK: the client, and who in it */
	uint32_t pid;                  /* LOCK, GETLK: reported to GETLK in the session */
	uint8_t lk_kind, lk_type;      /* LOCK, GETLK */
	uint64_t lk_start, lk_end;     /* LOCK, GETLK */
	uint32_t strip_size;           /* SETSTRIPE */
	uint16_t stripe_count;         /* SETSTRIPE */
	uint64_t handle;               /* DF_*, SETMTIME, GETATTR, SETATTR, READLINK, APPEND_* */
	uint64_t offset;               /* DF_WRITE, DF_READ */
	uint64_t length;               /* DF_READ, DF_TRUNCATE */
	int64_t mtime_ns;              /* SETMTIME, SETATTR */
	char snap_name[SFS_SNAP_NAME_MAX + 1]; /* SNAP_CREATE, SNAP_RM, SNAP_ROLLBACK */
	uint64_t snap_id;              /* DF_SNAP_*, DF_LIST */
	uint32_t timeout_ms;           /* DF_SNAP_FREEZE */
	uint32_t n_handles;            /* DF_SNAP_LINK, DF_SNAP_RESTORE, DF_SNAP_BUSY */
	struct sfs_cap cap;            /* the ops sfs_op_takes_cap names */
	uint64_t handles[SFS_SNAP_BATCH]; /* last: decoding fills n_handles of them */
};

/* A snapshot as SNAP_CREATE, SNAP_LIST and SNAP_ROLLBACK describe it. */
struct sfs_snapinfo {
	uint64_t id;
	char name[SFS_SNAP_NAME_MAX + 1];
	char path[SFS_MAX_PATH + 1];   /* the directory it holds */
	int64_t created_ns;
	uint64_t n_files, n_dirs;
};

struct sfs_dirent {
	char name[SFS_MAX_NAME + 1];
	uint8_t type;
	uint64_t fid;
};

/* A decoded reply body. */
struct sfs_reply {
	uint16_t op;
	char msg[SFS_MAX_MSG + 1];     /* error text when status < 0 */
	struct sfs_attr attr;          /* LOOKUP, CREATE, MKDIR, UNLINK, GETATTR,
					  SETATTR, SYMLINK */
	struct sfs_cap cap;            /* LOOKUP, CREATE, GETATTR, SETATTR: what
					  the I/O servers of attr's layout ask for */
	uint8_t replaced;              /* RENAME: an existing file was replaced */
	char target[SFS_MAX_PATH + 1]; /* READLINK */
	uint8_t lk_type;               /* GETLK: the conflicting lock, or SFS_LK_UN */
	uint64_t lk_start, lk_end;     /* GETLK */
	uint32_t lk_pid;               /* GETLK: its pid (0: another session's) */
	uint64_t local_size;           /* DF_WRITE, DF_READ, DF_GETSIZE */
	/* PING */
	uint16_t version;
	uint8_t role;
	char name[64];
	/* READDIR */
	uint16_t n_entries;
	uint8_t eof;
	struct sfs_dirent entries[SFS_READDIR_MAX];
	/* META_STATFS, DF_STATFS: the file system holding the server's
	 * directory, and what the server's own files use of it (the database
	 * files, or the datafiles) */
	uint64_t total_bytes, free_bytes, used_bytes, n_files, n_dirs;
	/* STATS: requests this server has read since it started, every op but
	 * PING and STATS (a test proves with it that no request arrived while
	 * migagent held the clients quiesced) */
	uint64_t requests;
	uint64_t cap_refusals;         /* STATS: requests refused for their capability */
	/* DF_STATFS: what snapshots pin on this server (bytes no live datafile
	 * shares) and how many snapshots it holds; DF_SNAP_STAT: used_bytes
	 * and n_files of one snapshot */
	uint64_t snap_bytes, n_snaps;
	/* SNAP_CREATE, SNAP_ROLLBACK: one; SNAP_LIST: n_snaps of them + eof */
	struct sfs_snapinfo snaps[SFS_SNAPLIST_MAX];
	/* DF_LIST: n_handles + eof; SNAP_FSCK: leaked datafiles (n_files),
	 * leaked snapshot directories (n_dirs), missing datafiles (n_snaps) */
	uint32_t n_handles;
	uint64_t handles[SFS_SNAP_BATCH];
};

const char *sfs_op_name(uint16_t op);
/* 1 for an I/O-server op whose request begins with a capability: every one
 * that reads, changes or names a datafile. DF_SYNC, DF_STATFS and
 * DF_SNAP_STAT do neither (they make data durable or count bytes) and
 * carry none. */
int sfs_op_takes_cap(uint16_t op);
/* Bytes s takes in a reply body (a SNAP_LIST reply must fit its limit). */
size_t sfs_snapinfo_wire_bytes(const struct sfs_snapinfo *s);

/* Header: encode never fails. decode validates magic, version and lengths
 * (data_len against max_data_bytes) and writes why it refused into err:
 * -EBADMSG for garbage, -EPROTONOSUPPORT for another version, -EMSGSIZE for
 * an oversized frame. */
void sfs_hdr_encode(const struct sfs_hdr *hdr, uint8_t out[SFS_HDR_BYTES]);
int sfs_hdr_decode(const uint8_t in[SFS_HDR_BYTES], uint32_t max_data_bytes,
		   struct sfs_hdr *out, char *err, size_t errlen);

/* Bodies: encode into buf (cap bytes), *len gets the size; -EMSGSIZE if it
 * does not fit, -EINVAL for an unknown op or a field out of range.
 * decode: -EBADMSG (truncated, trailing bytes, bad string) or -EOPNOTSUPP
 * (unknown op), with the reason in err. */
int sfs_req_encode(const struct sfs_req *req, uint8_t *buf, size_t cap, size_t *len);
int sfs_req_decode(uint16_t op, const uint8_t *body, size_t len, struct sfs_req *out,
		   char *err, size_t errlen);
/* status < 0 encodes only reply->msg. */
int sfs_reply_encode(const struct sfs_reply *reply, int32_t status, uint8_t *buf, size_t cap,
		     size_t *len);
int sfs_reply_decode(uint16_t op, int32_t status, const uint8_t *body, size_t len,
		     struct sfs_reply *out, char *err, size_t errlen);

#endif
