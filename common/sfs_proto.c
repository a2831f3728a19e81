/*
 * sfs_proto: encoder and decoder of the sfs wire format (see sfs_proto.h).
 *
 * Two tiny cursor types do all the byte work: a writer that notes overflow
 * and a reader that notes underflow, so each message codec is a straight
 * list of fields and the length checks cannot be forgotten.
 */
#include "sfs_proto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct wcur {
	uint8_t *p;
	size_t cap, len;
	int overflow;
};

struct rcur {
	const uint8_t *p;
	size_t len, pos;
	const char *bad; /* first problem seen, NULL if none */
};

static void put_bytes(struct wcur *w, const void *src, size_t n)
{
	if (w->overflow || w->cap - w->len < n) {
		w->overflow = 1;
		return;
	}
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void put_uint(struct wcur *w, uint64_t v, int bytes)
{
	uint8_t b[8];
	for (int i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put_bytes(w, b, (size_t)bytes);
}

#define put_u8(w, v) put_uint(w, v, 1)
#define put_u16(w, v) put_uint(w, v, 2)
#define put_u32(w, v) put_uint(w, v, 4)
#define put_u64(w, v) put_uint(w, v, 8)

static void put_str(struct wcur *w, const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);
	if (n > max) {
		w->overflow = 1;
		return;
	}
	put_u16(w, n);
	put_bytes(w, s, n);
}

static uint64_t get_uint(struct rcur *r, int bytes)
{
	if (r->bad)
		return 0;
	if (r->len - r->pos < (size_t)bytes) {
		r->bad = "truncated body";
		return 0;
	}
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)r->p[r->pos + (size_t)i] << (8 * i);
	r->pos += (size_t)bytes;
	return v;
}

#define get_u8(r) ((uint8_t)get_uint(r, 1))
#define get_u16(r) ((uint16_t)get_uint(r, 2))
#define get_u32(r) ((uint32_t)get_uint(r, 4))
#define get_u64(r) (get_uint(r, 8))

/* A string of at most max bytes, no NUL inside, into dst[max + 1]. */
static void get_str(struct rcur *r, char *dst, size_t max)
{
	dst[0] = '\0';
	uint16_t n = get_u16(r);
	if (r->bad)
		return;
	if (n > max) {
		r->bad = "string too long";
		return;
	}
	if (r->len - r->pos < n) {
		r->bad = "truncated string";
		return;
	}
	if (memchr(r->p + r->pos, '\0', n)) {
		r->bad = "NUL byte inside a string";
		return;
	}
	memcpy(dst, r->p + r->pos, n);
	dst[n] = '\0';
	r->pos += n;
}

static void put_cap(struct wcur *w, const struct sfs_cap *cap)
{
	uint8_t b[SFS_CAP_BYTES];
	sfs_cap_encode(cap, b);
	put_bytes(w, b, sizeof(b));
}

static void get_cap(struct rcur *r, struct sfs_cap *cap)
{
	char why[SFS_MAX_MSG];
	if (r->bad)
		return;
	if (r->len - r->pos < SFS_CAP_BYTES) {
		r->bad = "truncated capability";
		return;
	}
	if (sfs_cap_decode(r->p + r->pos, SFS_CAP_BYTES, cap, why, sizeof(why)) < 0)
		r->bad = "bad capability (unknown version or rights)";
	r->pos += SFS_CAP_BYTES;
}

int sfs_op_takes_cap(uint16_t op)
{
	switch (op) {
	case SFS_OP_DF_CREATE:
	case SFS_OP_DF_REMOVE:
	case SFS_OP_DF_WRITE:
	case SFS_OP_DF_READ:
	case SFS_OP_DF_GETSIZE:
	case SFS_OP_DF_TRUNCATE:
	case SFS_OP_DF_SNAP_FREEZE:
	case SFS_OP_DF_SNAP_LINK:
	case SFS_OP_DF_SNAP_THAW:
	case SFS_OP_DF_SNAP_DROP:
	case SFS_OP_DF_SNAP_RESTORE:
	case SFS_OP_DF_LIST:
	case SFS_OP_DF_SNAP_BUSY:
		return 1;
	default:
		return 0;
	}
}

static int reply_has_cap(uint16_t op)
{
	return op == SFS_OP_LOOKUP || op == SFS_OP_CREATE || op == SFS_OP_GETATTR ||
	       op == SFS_OP_SETATTR;
}

static int finish_decode(struct rcur *r, const char *what, uint16_t op, char *err,
			 size_t errlen)
{
	if (!r->bad && r->pos != r->len)
		r->bad = "trailing bytes";
	if (!r->bad)
		return 0;
	snprintf(err, errlen, "%s %s: %s", sfs_op_name(op), what, r->bad);
	return -EBADMSG;
}

const char *sfs_op_name(uint16_t op)
{
	switch (op) {
	case SFS_OP_PING: return "PING";
	case SFS_OP_STATS: return "STATS";
	case SFS_OP_LOOKUP: return "LOOKUP";
	case SFS_OP_CREATE: return "CREATE";
	case SFS_OP_MKDIR: return "MKDIR";
	case SFS_OP_UNLINK: return "UNLINK";
	case SFS_OP_RMDIR: return "RMDIR";
	case SFS_OP_READDIR: return "READDIR";
	case SFS_OP_SETSTRIPE: return "SETSTRIPE";
	case SFS_OP_META_STATFS: return "META_STATFS";
	case SFS_OP_SETMTIME: return "SETMTIME";
	case SFS_OP_GETATTR: return "GETATTR";
	case SFS_OP_RENAME: return "RENAME";
	case SFS_OP_SETATTR: return "SETATTR";
	case SFS_OP_SYMLINK: return "SYMLINK";
	case SFS_OP_READLINK: return "READLINK";
	case SFS_OP_APPEND_LOCK: return "APPEND_LOCK";
	case SFS_OP_APPEND_UNLOCK: return "APPEND_UNLOCK";
	case SFS_OP_LOCK: return "LOCK";
	case SFS_OP_GETLK: return "GETLK";
	case SFS_OP_DF_CREATE: return "DF_CREATE";
	case SFS_OP_DF_REMOVE: return "DF_REMOVE";
	case SFS_OP_DF_WRITE: return "DF_WRITE";
	case SFS_OP_DF_READ: return "DF_READ";
	case SFS_OP_DF_GETSIZE: return "DF_GETSIZE";
	case SFS_OP_DF_TRUNCATE: return "DF_TRUNCATE";
	case SFS_OP_DF_SYNC: return "DF_SYNC";
	case SFS_OP_DF_STATFS: return "DF_STATFS";
	case SFS_OP_SNAP_CREATE: return "SNAP_CREATE";
	case SFS_OP_SNAP_LIST: return "SNAP_LIST";
	case SFS_OP_SNAP_RM: return "SNAP_RM";
	case SFS_OP_SNAP_ROLLBACK: return "SNAP_ROLLBACK";
	case SFS_OP_SNAP_FSCK: return "SNAP_FSCK";
	case SFS_OP_DF_SNAP_FREEZE: return "DF_SNAP_FREEZE";
	case SFS_OP_DF_SNAP_LINK: return "DF_SNAP_LINK";
	case SFS_OP_DF_SNAP_THAW: return "DF_SNAP_THAW";
	case SFS_OP_DF_SNAP_DROP: return "DF_SNAP_DROP";
	case SFS_OP_DF_SNAP_RESTORE: return "DF_SNAP_RESTORE";
	case SFS_OP_DF_SNAP_STAT: return "DF_SNAP_STAT";
	case SFS_OP_DF_LIST: return "DF_LIST";
	case SFS_OP_DF_SNAP_BUSY: return "DF_SNAP_BUSY";
	default: return "unknown-op";
	}
}

void sfs_hdr_encode(const struct sfs_hdr *hdr, uint8_t out[SFS_HDR_BYTES])
{
	struct wcur w = { .p = out, .cap = SFS_HDR_BYTES };
	put_u32(&w, hdr->magic);
	put_u16(&w, hdr->version);
	put_u16(&w, hdr->op);
	put_u32(&w, hdr->tag);
	put_u32(&w, (uint32_t)hdr->status);
	put_u32(&w, hdr->body_len);
	put_u32(&w, hdr->data_len);
}

int sfs_hdr_decode(const uint8_t in[SFS_HDR_BYTES], uint32_t max_data_bytes,
		   struct sfs_hdr *out, char *err, size_t errlen)
{
	struct rcur r = { .p = in, .len = SFS_HDR_BYTES };
	out->magic = get_u32(&r);
	out->version = get_u16(&r);
	out->op = get_u16(&r);
	out->tag = get_u32(&r);
	out->status = (int32_t)get_u32(&r);
	out->body_len = get_u32(&r);
	out->data_len = get_u32(&r);
	if (out->magic != SFS_PROTO_MAGIC) {
		snprintf(err, errlen, "bad magic 0x%08x (not an sfs frame)", out->magic);
		return -EBADMSG;
	}
	if (out->version != SFS_PROTO_VERSION) {
		snprintf(err, errlen, "the peer speaks sfs protocol version %u, this side "
			 "speaks version %u", out->version, SFS_PROTO_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (out->body_len > SFS_MAX_BODY_BYTES) {
		snprintf(err, errlen, "%s body of %u bytes exceeds the limit of %u",
			 sfs_op_name(out->op), out->body_len, SFS_MAX_BODY_BYTES);
		return -EMSGSIZE;
	}
	if (out->data_len > max_data_bytes) {
		snprintf(err, errlen, "%s data of %u bytes exceeds the limit of %u",
			 sfs_op_name(out->op), out->data_len, max_data_bytes);
		return -EMSGSIZE;
	}
	if (out->status > 0 || out->status < -(int32_t)SFS_MAX_ERRNO) {
		snprintf(err, errlen, "status %d is not 0 or a negative errno", out->status);
		return -EBADMSG;
	}
	return 0;
}

/* A file's servers follow; a directory has none (see struct sfs_layout). */
static void put_layout(struct wcur *w, const struct sfs_layout *l, int with_servers)
{
	if (l->stripe_count > SFS_MAX_STRIPE) {
		w->overflow = 1;
		return;
	}
	put_u32(w, l->strip_size);
	put_u16(w, l->stripe_count);
	for (unsigned i = 0; with_servers && i < l->stripe_count; i++)
		put_u16(w, l->servers[i]);
}

static void get_layout(struct rcur *r, struct sfs_layout *l, int with_servers)
{
	memset(l, 0, sizeof(*l));
	l->strip_size = get_u32(r);
	l->stripe_count = get_u16(r);
	if (l->stripe_count > SFS_MAX_STRIPE) {
		if (!r->bad)
			r->bad = "stripe count over the limit";
		l->stripe_count = 0;
		return;
	}
	for (unsigned i = 0; with_servers && i < l->stripe_count; i++)
		l->servers[i] = get_u16(r);
}

static void put_attr(struct wcur *w, const struct sfs_attr *a)
{
	put_u64(w, a->fid);
	put_u8(w, a->type);
	put_u32(w, a->mode);
	put_u32(w, a->uid);
	put_u32(w, a->gid);
	put_u64(w, (uint64_t)a->atime_ns);
	put_u64(w, (uint64_t)a->mtime_ns);
	put_u64(w, (uint64_t)a->ctime_ns);
	put_layout(w, &a->layout, a->type == SFS_TYPE_FILE);
}

static void get_attr(struct rcur *r, struct sfs_attr *a)
{
	a->fid = get_u64(r);
	a->type = get_u8(r);
	a->mode = get_u32(r);
	a->uid = get_u32(r);
	a->gid = get_u32(r);
	a->atime_ns = (int64_t)get_u64(r);
	a->mtime_ns = (int64_t)get_u64(r);
	a->ctime_ns = (int64_t)get_u64(r);
	get_layout(r, &a->layout, a->type == SFS_TYPE_FILE);
	if (!r->bad && a->type != SFS_TYPE_FILE && a->type != SFS_TYPE_DIR &&
	    a->type != SFS_TYPE_SYMLINK)
		r->bad = "unknown file type";
}

static void put_handles(struct wcur *w, uint32_t n, const uint64_t *handles)
{
	if (n > SFS_SNAP_BATCH) {
		w->overflow = 1;
		return;
	}
	put_u32(w, n);
	for (uint32_t i = 0; i < n; i++)
		put_u64(w, handles[i]);
}

static uint32_t get_handles(struct rcur *r, uint64_t *handles)
{
	uint32_t n = get_u32(r);
	if (n > SFS_SNAP_BATCH) {
		if (!r->bad)
			r->bad = "more handles than a batch holds";
		return 0;
	}
	if (!r->bad && (r->len - r->pos) / 8 < n) {
		r->bad = "truncated handle list";
		return 0;
	}
	for (uint32_t i = 0; i < n; i++)
		handles[i] = get_u64(r);
	return n;
}

size_t sfs_snapinfo_wire_bytes(const struct sfs_snapinfo *s)
{
	return 8 + 2 + strlen(s->name) + 2 + strlen(s->path) + 8 + 8 + 8;
}

static void put_snapinfo(struct wcur *w, const struct sfs_snapinfo *s)
{
	put_u64(w, s->id);
	put_str(w, s->name, SFS_SNAP_NAME_MAX);
	put_str(w, s->path, SFS_MAX_PATH);
	put_u64(w, (uint64_t)s->created_ns);
	put_u64(w, s->n_files);
	put_u64(w, s->n_dirs);
}

static void get_snapinfo(struct rcur *r, struct sfs_snapinfo *s)
{
	s->id = get_u64(r);
	get_str(r, s->name, SFS_SNAP_NAME_MAX);
	get_str(r, s->path, SFS_MAX_PATH);
	s->created_ns = (int64_t)get_u64(r);
	s->n_files = get_u64(r);
	s->n_dirs = get_u64(r);
}

int sfs_req_encode(const struct sfs_req *req, uint8_t *buf, size_t cap, size_t *len)
{
	struct wcur w = { .p = buf, .cap = cap };
	if (sfs_op_takes_cap(req->op))
		put_cap(&w, &req->cap);
	switch (req->op) {
	case SFS_OP_PING:
	case SFS_OP_STATS:
	case SFS_OP_META_STATFS:
	case SFS_OP_DF_STATFS:
		break;
	case SFS_OP_LOOKUP:
	case SFS_OP_UNLINK:
	case SFS_OP_RMDIR:
		put_str(&w, req->path, SFS_MAX_PATH);
		break;
	case SFS_OP_CREATE:
		put_str(&w, req->path, SFS_MAX_PATH);
		put_u32(&w, req->mode);
		put_u32(&w, req->flags);
		put_u32(&w, req->uid);
		put_u32(&w, req->gid);
		break;
	case SFS_OP_MKDIR:
		put_str(&w, req->path, SFS_MAX_PATH);
		put_u32(&w, req->mode);
		put_u32(&w, req->uid);
		put_u32(&w, req->gid);
		break;
	case SFS_OP_RENAME:
		put_str(&w, req->path, SFS_MAX_PATH);
		put_str(&w, req->path2, SFS_MAX_PATH);
		put_u32(&w, req->flags);
		break;
	case SFS_OP_SYMLINK:
		put_str(&w, req->path, SFS_MAX_PATH);
		put_str(&w, req->path2, SFS_MAX_PATH);
		put_u32(&w, req->uid);
		put_u32(&w, req->gid);
		break;
	case SFS_OP_SETATTR:
		put_u64(&w, req->handle);
		put_u32(&w, req->valid);
		put_u32(&w, req->mode);
		put_u32(&w, req->uid);
		put_u32(&w, req->gid);
		put_u64(&w, (uint64_t)req->atime_ns);
		put_u64(&w, (uint64_t)req->mtime_ns);
		break;
	case SFS_OP_GETATTR:
	case SFS_OP_READLINK:
	case SFS_OP_APPEND_LOCK:
	case SFS_OP_APPEND_UNLOCK:
		put_u64(&w, req->handle);
		break;
	case SFS_OP_LOCK:
	case SFS_OP_GETLK:
		put_u64(&w, req->handle);
		put_u64(&w, req->session);
		put_u64(&w, req->owner);
		put_u32(&w, req->pid);
		put_u8(&w, req->lk_kind);
		put_u8(&w, req->lk_type);
		put_u64(&w, req->lk_start);
		put_u64(&w, req->lk_end);
		break;
	case SFS_OP_READDIR:
		put_str(&w, req->path, SFS_MAX_PATH);
		put_str(&w, req->cookie, SFS_MAX_NAME);
		break;
	case SFS_OP_SETSTRIPE:
		put_str(&w, req->path, SFS_MAX_PATH);
		put_u32(&w, req->strip_size);
		put_u16(&w, req->stripe_count);
		break;
	case SFS_OP_SETMTIME:
		put_u64(&w, req->handle);
		put_u64(&w, (uint64_t)req->mtime_ns);
		break;
	case SFS_OP_DF_CREATE:
	case SFS_OP_DF_REMOVE:
	case SFS_OP_DF_GETSIZE:
	case SFS_OP_DF_SYNC:
		put_u64(&w, req->handle);
		break;
	case SFS_OP_DF_WRITE:
		put_u64(&w, req->handle);
		put_u64(&w, req->offset);
		break;
	case SFS_OP_DF_READ:
	case SFS_OP_DF_TRUNCATE:
		put_u64(&w, req->handle);
		put_u64(&w, req->offset);
		put_u64(&w, req->length);
		break;
	case SFS_OP_SNAP_CREATE:
		put_str(&w, req->snap_name, SFS_SNAP_NAME_MAX);
		put_str(&w, req->path, SFS_MAX_PATH);
		break;
	case SFS_OP_SNAP_LIST:
	case SFS_OP_SNAP_RM:
		put_str(&w, req->snap_name, SFS_SNAP_NAME_MAX);
		break;
	case SFS_OP_SNAP_ROLLBACK:
		put_str(&w, req->snap_name, SFS_SNAP_NAME_MAX);
		put_u32(&w, req->flags);
		break;
	case SFS_OP_SNAP_FSCK:
		put_u32(&w, req->flags);
		break;
	case SFS_OP_DF_SNAP_FREEZE:
		put_u64(&w, req->snap_id);
		put_u32(&w, req->timeout_ms);
		break;
	case SFS_OP_DF_SNAP_LINK:
	case SFS_OP_DF_SNAP_RESTORE:
	case SFS_OP_DF_SNAP_BUSY:
		put_u64(&w, req->snap_id);
		put_handles(&w, req->n_handles, req->handles);
		break;
	case SFS_OP_DF_SNAP_THAW:
	case SFS_OP_DF_SNAP_DROP:
	case SFS_OP_DF_SNAP_STAT:
		put_u64(&w, req->snap_id);
		break;
	case SFS_OP_DF_LIST:
		put_u64(&w, req->snap_id);
		put_u64(&w, req->handle);
		break;
	default:
		return -EINVAL;
	}
	if (w.overflow)
		return -EMSGSIZE;
	*len = w.len;
	return 0;
}

int sfs_req_decode(uint16_t op, const uint8_t *body, size_t len, struct sfs_req *out,
		   char *err, size_t errlen)
{
	struct rcur r = { .p = body, .len = len };
	/* handles[] (64 KiB) is valid up to n_handles only: a server decodes
	 * every request, and most are small writes */
	memset(out, 0, offsetof(struct sfs_req, handles));
	out->op = op;
	if (sfs_op_takes_cap(op))
		get_cap(&r, &out->cap);
	switch (op) {
	case SFS_OP_PING:
	case SFS_OP_STATS:
	case SFS_OP_META_STATFS:
	case SFS_OP_DF_STATFS:
		break;
	case SFS_OP_LOOKUP:
	case SFS_OP_UNLINK:
	case SFS_OP_RMDIR:
		get_str(&r, out->path, SFS_MAX_PATH);
		break;
	case SFS_OP_CREATE:
		get_str(&r, out->path, SFS_MAX_PATH);
		out->mode = get_u32(&r);
		out->flags = get_u32(&r);
		out->uid = get_u32(&r);
		out->gid = get_u32(&r);
		break;
	case SFS_OP_MKDIR:
		get_str(&r, out->path, SFS_MAX_PATH);
		out->mode = get_u32(&r);
		out->uid = get_u32(&r);
		out->gid = get_u32(&r);
		break;
	case SFS_OP_RENAME:
		get_str(&r, out->path, SFS_MAX_PATH);
		get_str(&r, out->path2, SFS_MAX_PATH);
		out->flags = get_u32(&r);
		break;
	case SFS_OP_SYMLINK:
		get_str(&r, out->path, SFS_MAX_PATH);
		get_str(&r, out->path2, SFS_MAX_PATH);
		out->uid = get_u32(&r);
		out->gid = get_u32(&r);
		break;
	case SFS_OP_SETATTR:
		out->handle = get_u64(&r);
		out->valid = get_u32(&r);
		out->mode = get_u32(&r);
		out->uid = get_u32(&r);
		out->gid = get_u32(&r);
		out->atime_ns = (int64_t)get_u64(&r);
		out->mtime_ns = (int64_t)get_u64(&r);
		break;
	case SFS_OP_GETATTR:
	case SFS_OP_READLINK:
	case SFS_OP_APPEND_LOCK:
	case SFS_OP_APPEND_UNLOCK:
		out->handle = get_u64(&r);
		break;
	case SFS_OP_LOCK:
	case SFS_OP_GETLK:
		out->handle = get_u64(&r);
		out->session = get_u64(&r);
		out->owner = get_u64(&r);
		out->pid = get_u32(&r);
		out->lk_kind = get_u8(&r);
		out->lk_type = get_u8(&r);
		out->lk_start = get_u64(&r);
		out->lk_end = get_u64(&r);
		if (!r.bad && (out->lk_kind < SFS_LK_POSIX || out->lk_kind > SFS_LK_FLOCK ||
			       out->lk_type < SFS_LK_RD || out->lk_type > SFS_LK_UN ||
			       out->lk_start > out->lk_end))
			r.bad = "bad lock kind, type or range";
		break;
	case SFS_OP_READDIR:
		get_str(&r, out->path, SFS_MAX_PATH);
		get_str(&r, out->cookie, SFS_MAX_NAME);
		break;
	case SFS_OP_SETSTRIPE:
		get_str(&r, out->path, SFS_MAX_PATH);
		out->strip_size = get_u32(&r);
		out->stripe_count = get_u16(&r);
		break;
	case SFS_OP_SETMTIME:
		out->handle = get_u64(&r);
		out->mtime_ns = (int64_t)get_u64(&r);
		break;
	case SFS_OP_DF_CREATE:
	case SFS_OP_DF_REMOVE:
	case SFS_OP_DF_GETSIZE:
	case SFS_OP_DF_SYNC:
		out->handle = get_u64(&r);
		break;
	case SFS_OP_DF_WRITE:
		out->handle = get_u64(&r);
		out->offset = get_u64(&r);
		break;
	case SFS_OP_DF_READ:
	case SFS_OP_DF_TRUNCATE:
		out->handle = get_u64(&r);
		out->offset = get_u64(&r);
		out->length = get_u64(&r);
		break;
	case SFS_OP_SNAP_CREATE:
		get_str(&r, out->snap_name, SFS_SNAP_NAME_MAX);
		get_str(&r, out->path, SFS_MAX_PATH);
		break;
	case SFS_OP_SNAP_LIST:
	case SFS_OP_SNAP_RM:
		get_str(&r, out->snap_name, SFS_SNAP_NAME_MAX);
		break;
	case SFS_OP_SNAP_ROLLBACK:
		get_str(&r, out->snap_name, SFS_SNAP_NAME_MAX);
		out->flags = get_u32(&r);
		break;
	case SFS_OP_SNAP_FSCK:
		out->flags = get_u32(&r);
		break;
	case SFS_OP_DF_SNAP_FREEZE:
		out->snap_id = get_u64(&r);
		out->timeout_ms = get_u32(&r);
		break;
	case SFS_OP_DF_SNAP_LINK:
	case SFS_OP_DF_SNAP_RESTORE:
	case SFS_OP_DF_SNAP_BUSY:
		out->snap_id = get_u64(&r);
		out->n_handles = get_handles(&r, out->handles);
		break;
	case SFS_OP_DF_SNAP_THAW:
	case SFS_OP_DF_SNAP_DROP:
	case SFS_OP_DF_SNAP_STAT:
		out->snap_id = get_u64(&r);
		break;
	case SFS_OP_DF_LIST:
		out->snap_id = get_u64(&r);
		out->handle = get_u64(&r);
		break;
	default:
		snprintf(err, errlen, "unknown op %u", op);
		return -EOPNOTSUPP;
	}
	return finish_decode(&r, "request", op, err, errlen);
}

int sfs_reply_encode(const struct sfs_reply *reply, int32_t status, uint8_t *buf, size_t cap,
		     size_t *len)
{
	struct wcur w = { .p = buf, .cap = cap };
	if (status < 0) {
		put_str(&w, reply->msg, SFS_MAX_MSG);
		goto out;
	}
	switch (reply->op) {
	case SFS_OP_PING:
		put_u16(&w, reply->version);
		put_u8(&w, reply->role);
		put_str(&w, reply->name, sizeof(reply->name) - 1);
		break;
	case SFS_OP_STATS:
		put_u64(&w, reply->requests);
		put_u64(&w, reply->cap_refusals);
		break;
	case SFS_OP_LOOKUP:
	case SFS_OP_CREATE:
	case SFS_OP_MKDIR:
	case SFS_OP_UNLINK:
	case SFS_OP_GETATTR:
	case SFS_OP_SETATTR:
	case SFS_OP_SYMLINK:
		put_attr(&w, &reply->attr);
		if (reply_has_cap(reply->op))
			put_cap(&w, &reply->cap);
		break;
	case SFS_OP_RENAME:
		put_u8(&w, reply->replaced);
		break;
	case SFS_OP_READLINK:
		put_str(&w, reply->target, SFS_MAX_PATH);
		break;
	case SFS_OP_GETLK:
		put_u8(&w, reply->lk_type);
		put_u64(&w, reply->lk_start);
		put_u64(&w, reply->lk_end);
		put_u32(&w, reply->lk_pid);
		break;
	case SFS_OP_READDIR:
		if (reply->n_entries > SFS_READDIR_MAX)
			return -EINVAL;
		put_u16(&w, reply->n_entries);
		put_u8(&w, reply->eof);
		for (unsigned i = 0; i < reply->n_entries; i++) {
			put_str(&w, reply->entries[i].name, SFS_MAX_NAME);
			put_u8(&w, reply->entries[i].type);
			put_u64(&w, reply->entries[i].fid);
		}
		break;
	case SFS_OP_META_STATFS:
		put_u64(&w, reply->n_files);
		put_u64(&w, reply->n_dirs);
		put_u64(&w, reply->total_bytes);
		put_u64(&w, reply->free_bytes);
		put_u64(&w, reply->used_bytes);
		break;
	case SFS_OP_DF_STATFS:
		put_u64(&w, reply->total_bytes);
		put_u64(&w, reply->free_bytes);
		put_u64(&w, reply->used_bytes);
		put_u64(&w, reply->n_files);
		put_u64(&w, reply->snap_bytes);
		put_u64(&w, reply->n_snaps);
		break;
	case SFS_OP_SNAP_CREATE:
	case SFS_OP_SNAP_ROLLBACK:
		put_snapinfo(&w, &reply->snaps[0]);
		break;
	case SFS_OP_SNAP_LIST:
		if (reply->n_snaps > SFS_SNAPLIST_MAX)
			return -EINVAL;
		put_u16(&w, reply->n_snaps);
		put_u8(&w, reply->eof);
		for (unsigned i = 0; i < reply->n_snaps; i++)
			put_snapinfo(&w, &reply->snaps[i]);
		break;
	case SFS_OP_SNAP_FSCK:
		put_u64(&w, reply->n_files);
		put_u64(&w, reply->n_dirs);
		put_u64(&w, reply->n_snaps);
		break;
	case SFS_OP_DF_SNAP_STAT:
		put_u64(&w, reply->n_files);
		put_u64(&w, reply->used_bytes);
		break;
	case SFS_OP_DF_LIST:
		put_handles(&w, reply->n_handles, reply->handles);
		put_u8(&w, reply->eof);
		break;
	case SFS_OP_SNAP_RM:
	case SFS_OP_DF_SNAP_FREEZE:
	case SFS_OP_DF_SNAP_LINK:
	case SFS_OP_DF_SNAP_THAW:
	case SFS_OP_DF_SNAP_DROP:
	case SFS_OP_DF_SNAP_RESTORE:
	case SFS_OP_DF_SNAP_BUSY:
		break;
	case SFS_OP_DF_WRITE:
	case SFS_OP_DF_READ:
	case SFS_OP_DF_GETSIZE:
		put_u64(&w, reply->local_size);
		break;
	case SFS_OP_RMDIR:
	case SFS_OP_SETSTRIPE:
	case SFS_OP_SETMTIME:
	case SFS_OP_APPEND_LOCK:
	case SFS_OP_APPEND_UNLOCK:
	case SFS_OP_LOCK:
	case SFS_OP_DF_CREATE:
	case SFS_OP_DF_REMOVE:
	case SFS_OP_DF_TRUNCATE:
	case SFS_OP_DF_SYNC:
		break;
	default:
		return -EINVAL;
	}
out:
	if (w.overflow)
		return -EMSGSIZE;
	*len = w.len;
	return 0;
}

int sfs_reply_decode(uint16_t op, int32_t status, const uint8_t *body, size_t len,
		     struct sfs_reply *out, char *err, size_t errlen)
{
	struct rcur r = { .p = body, .len = len };
	out->op = op;
	out->msg[0] = '\0';
	if (status < 0) {
		get_str(&r, out->msg, SFS_MAX_MSG);
		return finish_decode(&r, "error reply", op, err, errlen);
	}
	switch (op) {
	case SFS_OP_PING:
		out->version = get_u16(&r);
		out->role = get_u8(&r);
		get_str(&r, out->name, sizeof(out->name) - 1);
		break;
	case SFS_OP_STATS:
		out->requests = get_u64(&r);
		out->cap_refusals = get_u64(&r);
		break;
	case SFS_OP_LOOKUP:
	case SFS_OP_CREATE:
	case SFS_OP_MKDIR:
	case SFS_OP_UNLINK:
	case SFS_OP_GETATTR:
	case SFS_OP_SETATTR:
	case SFS_OP_SYMLINK:
		get_attr(&r, &out->attr);
		if (reply_has_cap(op))
			get_cap(&r, &out->cap);
		break;
	case SFS_OP_RENAME:
		out->replaced = get_u8(&r);
		break;
	case SFS_OP_READLINK:
		get_str(&r, out->target, SFS_MAX_PATH);
		break;
	case SFS_OP_GETLK:
		out->lk_type = get_u8(&r);
		out->lk_start = get_u64(&r);
		out->lk_end = get_u64(&r);
		out->lk_pid = get_u32(&r);
		if (!r.bad && (out->lk_type < SFS_LK_RD || out->lk_type > SFS_LK_UN ||
			       out->lk_start > out->lk_end))
			r.bad = "bad lock type or range";
		break;
	case SFS_OP_READDIR:
		out->n_entries = get_u16(&r);
		out->eof = get_u8(&r);
		if (out->n_entries > SFS_READDIR_MAX) {
			r.bad = "too many directory entries";
			out->n_entries = 0;
		}
		for (unsigned i = 0; i < out->n_entries && !r.bad; i++) {
			get_str(&r, out->entries[i].name, SFS_MAX_NAME);
			out->entries[i].type = get_u8(&r);
			out->entries[i].fid = get_u64(&r);
		}
		break;
	case SFS_OP_META_STATFS:
		out->n_files = get_u64(&r);
		out->n_dirs = get_u64(&r);
		out->total_bytes = get_u64(&r);
		out->free_bytes = get_u64(&r);
		out->used_bytes = get_u64(&r);
		break;
	case SFS_OP_DF_STATFS:
		out->total_bytes = get_u64(&r);
		out->free_bytes = get_u64(&r);
		out->used_bytes = get_u64(&r);
		out->n_files = get_u64(&r);
		out->snap_bytes = get_u64(&r);
		out->n_snaps = get_u64(&r);
		break;
	case SFS_OP_SNAP_CREATE:
	case SFS_OP_SNAP_ROLLBACK:
		out->n_snaps = 1;
		get_snapinfo(&r, &out->snaps[0]);
		break;
	case SFS_OP_SNAP_LIST:
		out->n_snaps = get_u16(&r);
		out->eof = get_u8(&r);
		if (out->n_snaps > SFS_SNAPLIST_MAX) {
			r.bad = "too many snapshots";
			out->n_snaps = 0;
		}
		for (unsigned i = 0; i < out->n_snaps && !r.bad; i++)
			get_snapinfo(&r, &out->snaps[i]);
		break;
	case SFS_OP_SNAP_FSCK:
		out->n_files = get_u64(&r);
		out->n_dirs = get_u64(&r);
		out->n_snaps = get_u64(&r);
		break;
	case SFS_OP_DF_SNAP_STAT:
		out->n_files = get_u64(&r);
		out->used_bytes = get_u64(&r);
		break;
	case SFS_OP_DF_LIST:
		out->n_handles = get_handles(&r, out->handles);
		out->eof = get_u8(&r);
		break;
	case SFS_OP_SNAP_RM:
	case SFS_OP_DF_SNAP_FREEZE:
	case SFS_OP_DF_SNAP_LINK:
	case SFS_OP_DF_SNAP_THAW:
	case SFS_OP_DF_SNAP_DROP:
	case SFS_OP_DF_SNAP_RESTORE:
	case SFS_OP_DF_SNAP_BUSY:
		break;
	case SFS_OP_DF_WRITE:
	case SFS_OP_DF_READ:
	case SFS_OP_DF_GETSIZE:
		out->local_size = get_u64(&r);
		break;
	case SFS_OP_RMDIR:
	case SFS_OP_SETSTRIPE:
	case SFS_OP_SETMTIME:
	case SFS_OP_APPEND_LOCK:
	case SFS_OP_APPEND_UNLOCK:
	case SFS_OP_LOCK:
	case SFS_OP_DF_CREATE:
	case SFS_OP_DF_REMOVE:
	case SFS_OP_DF_TRUNCATE:
	case SFS_OP_DF_SYNC:
		break;
	default:
		snprintf(err, errlen, "reply to unknown op %u", op);
		return -EOPNOTSUPP;
	}
	return finish_decode(&r, "reply", op, err, errlen);
}
