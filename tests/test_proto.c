/*
 * The sfs wire codec: every request and reply op round-trips, and every
 * class of malformed frame is refused with an error (never accepted, never
 * a crash): bad magic, other version, oversized body or data, truncated
 * body, trailing bytes, over-long or NUL-bearing strings, unknown ops,
 * impossible counts.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sfs_proto.h"

static uint8_t buf[SFS_MAX_BODY_BYTES];
static char err[256];

static const uint16_t all_ops[] = {
	SFS_OP_PING, SFS_OP_LOOKUP, SFS_OP_CREATE, SFS_OP_MKDIR, SFS_OP_UNLINK,
	SFS_OP_RMDIR, SFS_OP_READDIR, SFS_OP_SETSTRIPE, SFS_OP_META_STATFS, SFS_OP_SETMTIME,
	SFS_OP_DF_CREATE, SFS_OP_DF_REMOVE, SFS_OP_DF_WRITE, SFS_OP_DF_READ, SFS_OP_DF_GETSIZE,
	SFS_OP_DF_TRUNCATE, SFS_OP_DF_SYNC, SFS_OP_DF_STATFS,
	SFS_OP_GETATTR, SFS_OP_RENAME, SFS_OP_SETATTR, SFS_OP_SYMLINK, SFS_OP_READLINK,
	SFS_OP_APPEND_LOCK, SFS_OP_APPEND_UNLOCK, SFS_OP_LOCK, SFS_OP_GETLK,
	SFS_OP_SNAP_CREATE, SFS_OP_SNAP_LIST, SFS_OP_SNAP_RM, SFS_OP_SNAP_ROLLBACK,
	SFS_OP_SNAP_FSCK, SFS_OP_DF_SNAP_FREEZE, SFS_OP_DF_SNAP_LINK, SFS_OP_DF_SNAP_THAW,
	SFS_OP_DF_SNAP_DROP, SFS_OP_DF_SNAP_RESTORE, SFS_OP_DF_SNAP_STAT, SFS_OP_DF_LIST,
	SFS_OP_DF_SNAP_BUSY,
};
#define N_OPS (sizeof(all_ops) / sizeof(all_ops[0]))

/* A capability with every field set (field by field: padding stays 0). */
static void fill_cap(struct sfs_cap *c)
{
	c->version = SFS_CAP_VERSION;
	c->rights = SFS_CAP_READ | SFS_CAP_WRITE;
	c->uid = 1001;
	c->handle = 0x1122334455ull;
	c->expiry_ns = -7;
	for (int i = 0; i < SFS_CAP_MAC_BYTES; i++)
		c->mac[i] = (uint8_t)(0xa0 + i);
}

static void fill_req(struct sfs_req *r, uint16_t op)
{
	memset(r, 0, sizeof(*r));
	r->op = op;
	if (sfs_op_takes_cap(op))
		fill_cap(&r->cap);
	/* only the fields the op carries are compared after decoding */
	switch (op) {
	case SFS_OP_LOOKUP: case SFS_OP_UNLINK: case SFS_OP_RMDIR:
		strcpy(r->path, "/a/b/c");
		break;
	case SFS_OP_CREATE:
		strcpy(r->path, "/data/file.0");
		r->mode = 0644;
		r->flags = SFS_CREATE_EXCL;
		r->uid = 1000;
		r->gid = 0xfffffffeu;
		break;
	case SFS_OP_MKDIR:
		strcpy(r->path, "/dir");
		r->mode = 0755;
		r->uid = 7;
		r->gid = 8;
		break;
	case SFS_OP_RENAME:
		strcpy(r->path, "/a/old");
		strcpy(r->path2, "/b/new");
		r->flags = SFS_RENAMEF_NOREPLACE;
		break;
	case SFS_OP_SYMLINK:
		strcpy(r->path, "/link");
		strcpy(r->path2, "../some/where");
		r->uid = 3;
		r->gid = 4;
		break;
	case SFS_OP_SETATTR:
		r->handle = 99;
		r->valid = SFS_SETATTR_ALL;
		r->mode = 04755;
		r->uid = 11;
		r->gid = 12;
		r->atime_ns = -1;
		r->mtime_ns = 1700000000123456789ll;
		break;
	case SFS_OP_LOCK: case SFS_OP_GETLK:
		r->handle = 5;
		r->session = 0xfeedface12345678ull;
		r->owner = 0x1234;
		r->pid = 4321;
		r->lk_kind = SFS_LK_POSIX;
		r->lk_type = SFS_LK_WR;
		r->lk_start = 100;
		r->lk_end = UINT64_MAX;
		break;
	case SFS_OP_GETATTR: case SFS_OP_READLINK: case SFS_OP_APPEND_LOCK:
	case SFS_OP_APPEND_UNLOCK:
		r->handle = 0x8000000000000001ull;
		break;
	case SFS_OP_READDIR:
		strcpy(r->path, "/");
		strcpy(r->cookie, "last-name");
		break;
	case SFS_OP_SETSTRIPE:
		strcpy(r->path, "/d");
		r->strip_size = 1 << 20;
		r->stripe_count = 3;
		break;
	case SFS_OP_SETMTIME:
		r->handle = 77;
		r->mtime_ns = -5; /* signed values survive */
		break;
	case SFS_OP_DF_CREATE: case SFS_OP_DF_REMOVE: case SFS_OP_DF_GETSIZE: case SFS_OP_DF_SYNC:
		r->handle = 0x1122334455667788ull;
		break;
	case SFS_OP_DF_WRITE:
		r->handle = 9;
		r->offset = 1ull << 40;
		break;
	case SFS_OP_DF_READ: case SFS_OP_DF_TRUNCATE:
		r->handle = 9;
		r->offset = 12345;
		r->length = 1ull << 33;
		break;
	case SFS_OP_SNAP_CREATE:
		strcpy(r->snap_name, "ck-1");
		strcpy(r->path, "/job");
		break;
	case SFS_OP_SNAP_LIST: case SFS_OP_SNAP_RM:
		strcpy(r->snap_name, "ck-1");
		break;
	case SFS_OP_SNAP_ROLLBACK:
		strcpy(r->snap_name, "ck-1");
		r->flags = SFS_SNAP_ROLLBACK_FORCE;
		break;
	case SFS_OP_DF_SNAP_FREEZE:
		r->snap_id = 7;
		r->timeout_ms = 30000;
		break;
	case SFS_OP_DF_SNAP_LINK: case SFS_OP_DF_SNAP_RESTORE: case SFS_OP_DF_SNAP_BUSY:
		r->snap_id = 7;
		r->n_handles = 3;
		r->handles[0] = 2;
		r->handles[1] = 1ull << 39;
		r->handles[2] = 99;
		break;
	case SFS_OP_DF_SNAP_THAW: case SFS_OP_DF_SNAP_DROP: case SFS_OP_DF_SNAP_STAT:
		r->snap_id = 7;
		break;
	case SFS_OP_DF_LIST:
		r->snap_id = SFS_DF_LIST_SNAPS;
		r->handle = 12;
		break;
	default:
		break;
	}
}

Test(proto, every_request_round_trips)
{
	for (size_t i = 0; i < N_OPS; i++) {
		struct sfs_req in, out;
		size_t len;
		fill_req(&in, all_ops[i]);
		memset(&out, 0, sizeof(out)); /* decoding leaves handles[n_handles..] alone */
		cr_assert_eq(sfs_req_encode(&in, buf, sizeof(buf), &len), 0, "%s",
			     sfs_op_name(all_ops[i]));
		cr_assert_eq(sfs_req_decode(all_ops[i], buf, len, &out, err, sizeof(err)), 0,
			     "%s: %s", sfs_op_name(all_ops[i]), err);
		cr_assert_eq(memcmp(&in, &out, sizeof(in)), 0, "%s differs after decoding",
			     sfs_op_name(all_ops[i]));
	}
}

static struct sfs_reply *mk_reply(uint16_t op)
{
	struct sfs_reply *r = calloc(1, sizeof(*r));
	r->op = op;
	fill_cap(&r->cap);
	r->requests = 5;
	r->cap_refusals = 9;
	r->attr.fid = 42;
	r->attr.type = SFS_TYPE_FILE;
	r->attr.mode = 0600;
	r->attr.uid = 1000;
	r->attr.gid = 100;
	r->attr.atime_ns = 1700000000999ll;
	r->attr.mtime_ns = 1700000000123456789ll;
	r->attr.ctime_ns = 1700000000000000001ll;
	r->attr.layout.strip_size = 65536;
	r->attr.layout.stripe_count = 4;
	for (int i = 0; i < 4; i++)
		r->attr.layout.servers[i] = (uint16_t)(3 - i);
	r->local_size = 1ull << 41;
	r->version = SFS_PROTO_VERSION;
	r->role = SFS_ROLE_IO;
	strcpy(r->name, "io3");
	r->n_entries = SFS_READDIR_MAX;
	r->eof = 1;
	for (int i = 0; i < SFS_READDIR_MAX; i++) {
		snprintf(r->entries[i].name, sizeof(r->entries[i].name), "entry-%03d", i);
		r->entries[i].type = i % 2 ? SFS_TYPE_DIR : SFS_TYPE_FILE;
		r->entries[i].fid = (uint64_t)i + 100;
	}
	r->total_bytes = 1000;
	r->free_bytes = 600;
	r->used_bytes = 400;
	r->n_files = 12;
	r->n_dirs = 3;
	r->snap_bytes = 1ull << 35;
	r->n_snaps = 2;
	for (int i = 0; i < 2; i++) {
		r->snaps[i].id = (uint64_t)i + 1;
		snprintf(r->snaps[i].name, sizeof(r->snaps[i].name), "snap-%d", i);
		strcpy(r->snaps[i].path, "/job/out");
		r->snaps[i].created_ns = 1700000000000000000ll + i;
		r->snaps[i].n_files = 10000;
		r->snaps[i].n_dirs = 100;
	}
	r->n_handles = 5;
	for (int i = 0; i < 5; i++)
		r->handles[i] = (uint64_t)i * 1000 + 2;
	r->replaced = 1;
	r->lk_type = SFS_LK_RD;
	r->lk_start = 10;
	r->lk_end = UINT64_MAX;
	r->lk_pid = 77;
	strcpy(r->target, "/x/y/target");
	return r;
}

Test(proto, every_reply_round_trips)
{
	for (size_t i = 0; i < N_OPS; i++) {
		struct sfs_reply *in = mk_reply(all_ops[i]);
		struct sfs_reply *out = calloc(1, sizeof(*out));
		size_t len;
		cr_assert_eq(sfs_reply_encode(in, 0, buf, sizeof(buf), &len), 0);
		cr_assert_eq(sfs_reply_decode(all_ops[i], 0, buf, len, out, err, sizeof(err)), 0,
			     "%s: %s", sfs_op_name(all_ops[i]), err);
		switch (all_ops[i]) {
		case SFS_OP_LOOKUP: case SFS_OP_GETATTR: case SFS_OP_SETATTR:
			cr_assert_eq(memcmp(&in->attr, &out->attr, sizeof(in->attr)), 0);
			cr_assert_eq(memcmp(&in->cap, &out->cap, sizeof(in->cap)), 0,
				     "%s: the capability differs", sfs_op_name(all_ops[i]));
			break;
		case SFS_OP_SYMLINK:
			cr_assert_eq(memcmp(&in->attr, &out->attr, sizeof(in->attr)), 0);
			cr_assert_eq(out->cap.version, 0, "SYMLINK carries no capability");
			break;
		case SFS_OP_STATS:
			cr_assert_eq(out->requests, 5);
			cr_assert_eq(out->cap_refusals, 9);
			break;
		case SFS_OP_RENAME:
			cr_assert_eq(out->replaced, in->replaced);
			break;
		case SFS_OP_READLINK:
			cr_assert_str_eq(out->target, in->target);
			break;
		case SFS_OP_GETLK:
			cr_assert_eq(out->lk_type, SFS_LK_RD);
			cr_assert_eq(out->lk_end, UINT64_MAX);
			cr_assert_eq(out->lk_pid, 77);
			break;
		case SFS_OP_READDIR:
			cr_assert_eq(out->n_entries, SFS_READDIR_MAX);
			cr_assert_eq(out->eof, 1);
			cr_assert_str_eq(out->entries[127].name, "entry-127");
			cr_assert_eq(out->entries[127].fid, 227);
			cr_assert_eq(out->entries[127].type, SFS_TYPE_DIR);
			break;
		case SFS_OP_PING:
			cr_assert_str_eq(out->name, "io3");
			cr_assert_eq(out->role, SFS_ROLE_IO);
			cr_assert_eq(out->version, SFS_PROTO_VERSION);
			break;
		case SFS_OP_DF_READ:
			cr_assert_eq(out->local_size, 1ull << 41);
			break;
		case SFS_OP_DF_STATFS:
			cr_assert_eq(out->used_bytes, 400);
			cr_assert_eq(out->n_files, 12);
			cr_assert_eq(out->snap_bytes, 1ull << 35);
			cr_assert_eq(out->n_snaps, 2);
			break;
		case SFS_OP_SNAP_CREATE:
		case SFS_OP_SNAP_ROLLBACK:
			cr_assert_eq(memcmp(&in->snaps[0], &out->snaps[0], sizeof(in->snaps[0])), 0);
			break;
		case SFS_OP_SNAP_LIST:
			cr_assert_eq(out->n_snaps, 2);
			cr_assert_eq(memcmp(in->snaps, out->snaps, 2 * sizeof(in->snaps[0])), 0);
			break;
		case SFS_OP_DF_LIST:
			cr_assert_eq(out->n_handles, 5);
			cr_assert_eq(out->handles[4], 4002);
			cr_assert_eq(out->eof, 1);
			break;
		case SFS_OP_SNAP_FSCK:
			cr_assert_eq(out->n_files, 12);
			cr_assert_eq(out->n_dirs, 3);
			cr_assert_eq(out->n_snaps, 2);
			break;
		case SFS_OP_META_STATFS:
			cr_assert_eq(out->n_files, 12);
			cr_assert_eq(out->n_dirs, 3);
			cr_assert_eq(out->total_bytes, 1000);
			cr_assert_eq(out->free_bytes, 600);
			cr_assert_eq(out->used_bytes, 400);
			break;
		default:
			break;
		}
		free(in);
		free(out);
	}
}

Test(proto, directory_layout_carries_no_servers)
{
	struct sfs_reply *in = mk_reply(SFS_OP_LOOKUP), *out = calloc(1, sizeof(*out));
	size_t len;
	in->attr.type = SFS_TYPE_DIR;
	in->attr.layout.stripe_count = 2; /* the default of new files below */
	cr_assert_eq(sfs_reply_encode(in, 0, buf, sizeof(buf), &len), 0);
	/* fid, type, mode, uid, gid, atime, mtime, ctime, strip_size, stripe_count:
	 * no server list */
	cr_assert_eq(len, 8 + 1 + 4 + 4 + 4 + 8 + 8 + 8 + 4 + 2 + SFS_CAP_BYTES);
	cr_assert_eq(sfs_reply_decode(SFS_OP_LOOKUP, 0, buf, len, out, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(out->attr.type, SFS_TYPE_DIR);
	cr_assert_eq(out->attr.layout.strip_size, 65536);
	cr_assert_eq(out->attr.layout.stripe_count, 2);
	for (int i = 0; i < SFS_MAX_STRIPE; i++)
		cr_assert_eq(out->attr.layout.servers[i], 0);
	free(in);
	free(out);
}

Test(proto, error_reply_carries_its_message)
{
	struct sfs_reply *in = mk_reply(SFS_OP_LOOKUP), *out = calloc(1, sizeof(*out));
	size_t len;
	strcpy(in->msg, "no such file: /x");
	cr_assert_eq(sfs_reply_encode(in, -ENOENT, buf, sizeof(buf), &len), 0);
	cr_assert_eq(sfs_reply_decode(SFS_OP_LOOKUP, -ENOENT, buf, len, out, err, sizeof(err)), 0);
	cr_assert_str_eq(out->msg, "no such file: /x");
	free(in);
	free(out);
}

static void good_header(uint8_t out[SFS_HDR_BYTES], struct sfs_hdr *h)
{
	*h = (struct sfs_hdr){ .magic = SFS_PROTO_MAGIC, .version = SFS_PROTO_VERSION,
			       .op = SFS_OP_DF_WRITE, .tag = 7, .body_len = 16, .data_len = 4096 };
	sfs_hdr_encode(h, out);
}

Test(proto, header_round_trips)
{
	uint8_t raw[SFS_HDR_BYTES];
	struct sfs_hdr h, d;
	good_header(raw, &h);
	cr_assert_eq(sfs_hdr_decode(raw, 1 << 20, &d, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(memcmp(&h, &d, sizeof(h)), 0);
}

Test(proto, header_refuses_garbage_other_versions_and_oversize)
{
	uint8_t raw[SFS_HDR_BYTES];
	struct sfs_hdr h, d;

	good_header(raw, &h);
	raw[0] ^= 0xff;
	cr_assert_eq(sfs_hdr_decode(raw, 1 << 20, &d, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "magic"), "message names the cause: %s", err);

	h.version = 1; /* before snapshots, owners and rename: refused, not misread */
	sfs_hdr_encode(&h, raw);
	cr_assert_eq(sfs_hdr_decode(raw, 1 << 20, &d, err, sizeof(err)), -EPROTONOSUPPORT);
	cr_assert(strstr(err, "version 1") && strstr(err, "version 3"), "names both: %s", err);
	h.version = 2; /* before capabilities: refused too */
	sfs_hdr_encode(&h, raw);
	cr_assert_eq(sfs_hdr_decode(raw, 1 << 20, &d, err, sizeof(err)), -EPROTONOSUPPORT);

	good_header(raw, &h);
	h.body_len = SFS_MAX_BODY_BYTES + 1;
	sfs_hdr_encode(&h, raw);
	cr_assert_eq(sfs_hdr_decode(raw, 1 << 20, &d, err, sizeof(err)), -EMSGSIZE);

	good_header(raw, &h);
	h.data_len = (1 << 20) + 1;
	sfs_hdr_encode(&h, raw);
	cr_assert_eq(sfs_hdr_decode(raw, 1 << 20, &d, err, sizeof(err)), -EMSGSIZE);
	cr_assert(strstr(err, "1048577"), "names the size: %s", err);

	good_header(raw, &h);
	h.status = 5;
	sfs_hdr_encode(&h, raw);
	cr_assert_eq(sfs_hdr_decode(raw, 1 << 20, &d, err, sizeof(err)), -EBADMSG);

	/* a status no errno has (negating INT32_MIN would even overflow) */
	h.status = INT32_MIN;
	sfs_hdr_encode(&h, raw);
	cr_assert_eq(sfs_hdr_decode(raw, 1 << 20, &d, err, sizeof(err)), -EBADMSG);
	h.status = -SFS_MAX_ERRNO;
	sfs_hdr_encode(&h, raw);
	cr_assert_eq(sfs_hdr_decode(raw, 1 << 20, &d, err, sizeof(err)), 0, "%s", err);
}

Test(proto, every_truncation_of_every_request_is_refused)
{
	for (size_t i = 0; i < N_OPS; i++) {
		struct sfs_req in, out;
		size_t len;
		fill_req(&in, all_ops[i]);
		cr_assert_eq(sfs_req_encode(&in, buf, sizeof(buf), &len), 0);
		for (size_t cut = 0; cut < len; cut++)
			cr_assert_eq(sfs_req_decode(all_ops[i], buf, cut, &out, err, sizeof(err)),
				     -EBADMSG, "%s cut to %zu of %zu accepted",
				     sfs_op_name(all_ops[i]), cut, len);
		/* one byte too many */
		buf[len] = 0;
		cr_assert_eq(sfs_req_decode(all_ops[i], buf, len + 1, &out, err, sizeof(err)),
			     -EBADMSG, "%s with a trailing byte accepted", sfs_op_name(all_ops[i]));
		cr_assert(strstr(err, "trailing"), "%s", err);
	}
}

Test(proto, every_truncation_of_every_reply_is_refused)
{
	struct sfs_reply *in, *out = calloc(1, sizeof(*out));
	for (size_t i = 0; i < N_OPS; i++) {
		size_t len;
		in = mk_reply(all_ops[i]);
		in->n_entries = 3;
		cr_assert_eq(sfs_reply_encode(in, 0, buf, sizeof(buf), &len), 0);
		for (size_t cut = 0; cut < len; cut++)
			cr_assert_eq(sfs_reply_decode(all_ops[i], 0, buf, cut, out, err,
						      sizeof(err)),
				     -EBADMSG, "%s reply cut to %zu accepted",
				     sfs_op_name(all_ops[i]), cut);
		free(in);
	}
	free(out);
}

static size_t put_str(uint8_t *p, const char *s, size_t n)
{
	p[0] = (uint8_t)n;
	p[1] = (uint8_t)(n >> 8);
	memcpy(p + 2, s, n);
	return n + 2;
}

Test(proto, bad_strings_are_refused)
{
	struct sfs_req out;
	char path[SFS_MAX_PATH + 2];
	memset(path, 'a', sizeof(path));
	size_t len = put_str(buf, path, SFS_MAX_PATH + 1);
	cr_assert_eq(sfs_req_decode(SFS_OP_LOOKUP, buf, len, &out, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "too long"), "%s", err);

	len = put_str(buf, "/a\0b", 4);
	cr_assert_eq(sfs_req_decode(SFS_OP_LOOKUP, buf, len, &out, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "NUL"), "%s", err);

	/* declared length beyond the body */
	buf[0] = 50;
	buf[1] = 0;
	cr_assert_eq(sfs_req_decode(SFS_OP_LOOKUP, buf, 10, &out, err, sizeof(err)), -EBADMSG);
}

Test(proto, unknown_ops_are_refused)
{
	struct sfs_req out;
	struct sfs_reply *rep = calloc(1, sizeof(*rep));
	size_t len;
	cr_assert_eq(sfs_req_decode(999, buf, 0, &out, err, sizeof(err)), -EOPNOTSUPP);
	cr_assert(strstr(err, "999"), "%s", err);
	cr_assert_eq(sfs_reply_decode(999, 0, buf, 0, rep, err, sizeof(err)), -EOPNOTSUPP);
	out.op = 999;
	cr_assert_eq(sfs_req_encode(&out, buf, sizeof(buf), &len), -EINVAL);
	free(rep);
}

Test(proto, impossible_counts_are_refused)
{
	struct sfs_reply *in = mk_reply(SFS_OP_LOOKUP), *out = calloc(1, sizeof(*out));
	size_t len;
	cr_assert_eq(sfs_reply_encode(in, 0, buf, sizeof(buf), &len), 0);
	/* stripe_count sits after fid(8) type(1) mode(4) uid(4) gid(4) atime(8)
	 * mtime(8) ctime(8) strip(4) */
	buf[49] = 0xff;
	buf[50] = 0xff;
	cr_assert_eq(sfs_reply_decode(SFS_OP_LOOKUP, 0, buf, len, out, err, sizeof(err)),
		     -EBADMSG);
	cr_assert(strstr(err, "stripe count"), "%s", err);

	/* unknown file type */
	cr_assert_eq(sfs_reply_encode(in, 0, buf, sizeof(buf), &len), 0);
	buf[8] = 9;
	cr_assert_eq(sfs_reply_decode(SFS_OP_LOOKUP, 0, buf, len, out, err, sizeof(err)),
		     -EBADMSG);

	/* a READDIR reply claiming more entries than allowed */
	buf[0] = (uint8_t)(SFS_READDIR_MAX + 1);
	buf[1] = 0;
	buf[2] = 0;
	cr_assert_eq(sfs_reply_decode(SFS_OP_READDIR, 0, buf, 3, out, err, sizeof(err)),
		     -EBADMSG);
	free(in);
	free(out);
}

Test(proto, encoder_refuses_what_does_not_fit)
{
	struct sfs_req r;
	size_t len;
	fill_req(&r, SFS_OP_CREATE);
	cr_assert_eq(sfs_req_encode(&r, buf, 5, &len), -EMSGSIZE);
}

Test(proto, impossible_snapshot_counts_are_refused)
{
	struct sfs_req *req = calloc(1, sizeof(*req));
	struct sfs_reply *out = calloc(1, sizeof(*out));
	uint8_t body[SFS_CAP_BYTES + 16] = { 0 }; /* no capability, then the fields */
	uint8_t *f = body + SFS_CAP_BYTES;
	f[0] = 7;
	/* a handle count above a batch, and one the body does not hold */
	f[8] = (uint8_t)((SFS_SNAP_BATCH + 1) & 0xff);
	f[9] = (uint8_t)((SFS_SNAP_BATCH + 1) >> 8);
	cr_assert_eq(sfs_req_decode(SFS_OP_DF_SNAP_LINK, body, SFS_CAP_BYTES + 12, req, err,
				    sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "handles"), "%s", err);
	f[8] = 2;
	f[9] = 0;
	cr_assert_eq(sfs_req_decode(SFS_OP_DF_SNAP_RESTORE, body, SFS_CAP_BYTES + 12, req, err,
				    sizeof(err)), -EBADMSG);
	/* a SNAP_LIST reply claiming more snapshots than allowed */
	uint8_t reply[3] = { SFS_SNAPLIST_MAX + 1, 0, 1 };
	cr_assert_eq(sfs_reply_decode(SFS_OP_SNAP_LIST, 0, reply, 3, out, err, sizeof(err)),
		     -EBADMSG);
	/* the encoder refuses a batch it cannot send */
	size_t len;
	req->op = SFS_OP_DF_SNAP_LINK;
	req->n_handles = SFS_SNAP_BATCH + 1;
	cr_assert_eq(sfs_req_encode(req, buf, sizeof(buf), &len), -EMSGSIZE);
	/* a full batch fits in one body */
	req->n_handles = SFS_SNAP_BATCH;
	cr_assert_eq(sfs_req_encode(req, buf, sizeof(buf), &len), 0);
	cr_assert_leq(len, SFS_MAX_BODY_BYTES);
	/* a snapshot handle keeps its two halves apart */
	uint64_t h = SFS_SNAP_HANDLE(5, 1234);
	cr_assert_eq(SFS_HANDLE_SNAP(h), 5);
	cr_assert_eq(SFS_HANDLE_FID(h), 1234);
	free(req);
	free(out);
}
