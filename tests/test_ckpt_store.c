/*
 * The checkpoint store (daemon/ckpt_store.c) against a real sfs (sfsd on
 * loopback) and a local directory: images streamed in through a pipe come
 * back byte for byte with the SHA-256 sha256sum gives, a damaged or short
 * image is refused by name, a full store fails the stream and leaves no
 * image behind, small files and trees are written, read and removed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt_store.h"
#include "fsfixture.h"

#define MIB (1u << 20)

static struct fsfix fx;

static void sha_of(const void *data, size_t len, char out[CKPT_SHA_HEX])
{
	unsigned char d[32];
	unsigned n = 0;
	EVP_Digest(data, len, d, &n, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static char *pattern(size_t len, unsigned seed)
{
	char *p = malloc(len);
	cr_assert_not_null(p);
	uint64_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (char)x;
	}
	return p;
}

struct feeder {
	int fd;
	const char *data;
	size_t len;
	size_t stop_after; /* close after this many bytes (a backend that dies) */
};

static void *feed(void *arg)
{
	struct feeder *f = arg;
	size_t lim = f->stop_after ? f->stop_after : f->len;
	for (size_t o = 0; o < lim;) {
		ssize_t n = write(f->fd, f->data + o, lim - o > 65536 ? 65536 : lim - o);
		if (n <= 0)
			break;
		o += (size_t)n;
	}
	close(f->fd);
	return NULL;
}

/* Run a stream to its end (bounded: 60 s). */
static int run_stream(struct ckpt_stream *s, uint64_t *bytes, char sha[CKPT_SHA_HEX], char *err)
{
	for (int i = 0; i < 6000; i++) {
		int rc = ckpt_stream_poll(s, bytes, sha, err, 512);
		if (rc != 0)
			return rc;
		usleep(10000);
	}
	cr_assert_fail("stream did not end within 60 s");
	return -ETIMEDOUT;
}

static void save(struct ckpt_store *st, const char *rel, const char *data, size_t len,
		 char sha[CKPT_SHA_HEX])
{
	char err[512] = "";
	int fd;
	struct ckpt_stream *s;
	cr_assert_eq(ckpt_stream_save(st, rel, &fd, &s, err, sizeof(err)), 0, "%s", err);
	struct feeder f = { fd, data, len, 0 };
	pthread_t t;
	pthread_create(&t, NULL, feed, &f);
	uint64_t bytes = 0;
	int rc = run_stream(s, &bytes, sha, err);
	pthread_join(t, NULL);
	cr_assert_eq(rc, 1, "save %s: %d %s", rel, rc, err);
	cr_assert_eq(bytes, len);
	ckpt_stream_free(s);
}

/* Load rel through a pipe; returns what came out (*got bytes) and the rc. */
static int load(struct ckpt_store *st, const char *rel, uint64_t bytes, const char *sha,
		char **out, size_t *got, char *err)
{
	int fd;
	struct ckpt_stream *s;
	int rc = ckpt_stream_load(st, rel, bytes, sha, &fd, &s, err, 512);
	cr_assert_eq(rc, 0, "%s", err);
	size_t cap = bytes + MIB, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		ssize_t r = read(fd, buf + n, cap - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == cap)
			break;
	}
	close(fd);
	uint64_t b;
	rc = run_stream(s, &b, NULL, err);
	ckpt_stream_free(s);
	*out = buf;
	*got = n;
	return rc;
}

static void roundtrip(struct ckpt_store *st)
{
	char err[512] = "", sha[CKPT_SHA_HEX], want[CKPT_SHA_HEX];
	size_t len = 9 * MIB + 12345; /* not a whole number of pieces */
	char *data = pattern(len, 7);
	sha_of(data, len, want);
	cr_assert_eq(ckpt_store_mkdir(st, "job1/4", err, sizeof(err)), 0, "%s", err);
	save(st, "job1/4/g1.img", data, len, sha);
	cr_assert_str_eq(sha, want);
	uint64_t size = 0;
	cr_assert_eq(ckpt_store_size(st, "job1/4/g1.img", &size, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(size, len);
	cr_assert_eq(ckpt_store_verify(st, "job1/4/g1.img", len, want, err, sizeof(err)), 0, "%s",
		     err);
	char *back;
	size_t got;
	cr_assert_eq(load(st, "job1/4/g1.img", len, want, &back, &got, err), 1, "%s", err);
	cr_assert_eq(got, len);
	cr_assert(memcmp(back, data, len) == 0, "the image came back changed");
	free(back);

	/* a wrong checksum: the load fails naming both, the backend sees a short stream */
	char bad[CKPT_SHA_HEX];
	snprintf(bad, sizeof(bad), "%s", want);
	bad[0] = bad[0] == '0' ? '1' : '0';
	cr_assert_eq(load(st, "job1/4/g1.img", len, bad, &back, &got, err), -EBADMSG);
	cr_assert(strstr(err, "sha256") && strstr(err, bad), "%s", err);
	cr_assert_lt(got, len, "a damaged image went to the backend whole");
	free(back);
	cr_assert_eq(ckpt_store_verify(st, "job1/4/g1.img", len, bad, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "g1.img") && strstr(err, "the manifest says"), "%s", err);
	/* a length that is not the manifest's */
	cr_assert_eq(ckpt_store_verify(st, "job1/4/g1.img", len + 1, want, err, sizeof(err)),
		     -EBADMSG);
	cr_assert(strstr(err, "bytes"), "%s", err);

	/* small files, then the whole tree goes */
	const char *man = "{\"format\": \"migd-checkpoint/1\"}";
	cr_assert_eq(ckpt_store_put(st, "job1/4/manifest.json", man, strlen(man), err,
				    sizeof(err)), 0, "%s", err);
	char *text;
	size_t tlen;
	cr_assert_eq(ckpt_store_get(st, "job1/4/manifest.json", 4096, &text, &tlen, err,
				    sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(text, man);
	free(text);
	cr_assert_eq(ckpt_store_get(st, "job1/4/manifest.json", 8, &text, &tlen, err, sizeof(err)),
		     -EFBIG);
	cr_assert_eq(ckpt_store_rmtree(st, "job1/4", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(ckpt_store_size(st, "job1/4/g1.img", &size, err, sizeof(err)), -ENOENT);
	cr_assert_eq(ckpt_store_rmtree(st, "job1/4", err, sizeof(err)), 0, "missing is fine");
	free(data);
}

/* A backend that dies after part of its image: the stream ends short, but
 * a save only sees the end of the pipe, so it is the backend's poll that
 * fails the checkpoint; the image is whole-looking here and gets removed by
 * the checkpoint's undo. A backend that sends nothing fails the stream. */
static void nothing_sent(struct ckpt_store *st)
{
	char err[512] = "", sha[CKPT_SHA_HEX];
	int fd;
	struct ckpt_stream *s;
	cr_assert_eq(ckpt_stream_save(st, "empty.img", &fd, &s, err, sizeof(err)), 0, "%s", err);
	close(fd);
	uint64_t bytes;
	cr_assert_eq(run_stream(s, &bytes, sha, err), -EPIPE);
	cr_assert(strstr(err, "sent nothing"), "%s", err);
	ckpt_stream_free(s);
	uint64_t size;
	cr_assert_eq(ckpt_store_size(st, "empty.img", &size, err, sizeof(err)), -ENOENT,
		     "a failed save left its image");
}

/* Freeing a stream whose backend still holds the pipe open returns (the
 * cancel path), and leaves no image. */
static void cut(struct ckpt_store *st)
{
	char err[512] = "";
	int fd;
	struct ckpt_stream *s;
	cr_assert_eq(ckpt_stream_save(st, "cut.img", &fd, &s, err, sizeof(err)), 0, "%s", err);
	char buf[4096] = { 1 };
	cr_assert_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	usleep(100000);
	ckpt_stream_free(s); /* fd still open: must not hang */
	close(fd);
	uint64_t size;
	cr_assert_eq(ckpt_store_size(st, "cut.img", &size, err, sizeof(err)), -ENOENT);
}

Test(ckpt_store, sfs_roundtrip, .timeout = 300)
{
	char err[512] = "", uri[64];
	struct ckpt_store *st;
	fsfix_start(&fx, 3, NULL);
	snprintf(uri, sizeof(uri), "sfs:/.migd/checkpoints");
	cr_assert_eq(ckpt_store_open(uri, fx.conf, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(ckpt_store_mkdir(st, "", err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(ckpt_store_sfs(st));
	roundtrip(st);
	nothing_sent(st);
	cut(st);
	char name[256];
	ckpt_store_name(st, "j/1/g.img", name, sizeof(name));
	cr_assert_str_eq(name, "sfs:/.migd/checkpoints/j/1/g.img");
	ckpt_store_close(st);
	fsfix_finish(&fx);
}

Test(ckpt_store, dir_roundtrip, .timeout = 120)
{
	char err[512] = "", dir[] = "/tmp/ckstore.XXXXXX";
	struct ckpt_store *st;
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(ckpt_store_open(dir, NULL, &st, err, sizeof(err)), 0, "%s", err);
	cr_assert_null(ckpt_store_sfs(st));
	roundtrip(st);
	nothing_sent(st);
	cut(st);
	ckpt_store_close(st);
	rmdir(dir);
}

Test(ckpt_store, bad_uris)
{
	char err[512] = "";
	struct ckpt_store *st;
	cr_assert_eq(ckpt_store_open("relative/dir", NULL, &st, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "relative/dir"), "%s", err);
	cr_assert_eq(ckpt_store_open("sfs:/x", "", &st, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "sfs.conf"), "%s", err);
	cr_assert_lt(ckpt_store_open("sfs:/x", "/nonexistent/sfs.conf", &st, err, sizeof(err)), 0);
	cr_assert(strstr(err, "/nonexistent/sfs.conf"), "%s", err);
}

/* A store that fills up fails the save with ENOSPC and keeps no image;
 * what was there before stays intact. */
Test(ckpt_store, full_store, .timeout = 120)
{
	char err[512] = "", dir[] = "/tmp/ckfull.XXXXXX", sha[CKPT_SHA_HEX];
	if (geteuid() != 0)
		cr_skip_test("a small tmpfs needs root");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(mount("tmpfs", dir, "tmpfs", 0, "size=6m"), 0, "mount tmpfs: %s",
		     strerror(errno));
	struct ckpt_store *st;
	cr_assert_eq(ckpt_store_open(dir, NULL, &st, err, sizeof(err)), 0, "%s", err);
	char *small = pattern(2 * MIB, 3), *big = pattern(8 * MIB, 4);
	save(st, "old.img", small, 2 * MIB, sha);
	int fd;
	struct ckpt_stream *s;
	cr_assert_eq(ckpt_stream_save(st, "new.img", &fd, &s, err, sizeof(err)), 0, "%s", err);
	struct feeder f = { fd, big, 8 * MIB, 0 };
	pthread_t t;
	pthread_create(&t, NULL, feed, &f);
	uint64_t bytes;
	int rc = run_stream(s, &bytes, sha, err);
	pthread_join(t, NULL);
	ckpt_stream_free(s);
	cr_assert_eq(rc, -ENOSPC, "rc %d: %s", rc, err);
	cr_assert(strstr(err, "new.img") && strstr(err, "space"), "%s", err);
	uint64_t size;
	cr_assert_eq(ckpt_store_size(st, "new.img", &size, err, sizeof(err)), -ENOENT);
	char want[CKPT_SHA_HEX];
	sha_of(small, 2 * MIB, want);
	cr_assert_eq(ckpt_store_verify(st, "old.img", 2 * MIB, want, err, sizeof(err)), 0, "%s",
		     err);
	ckpt_store_close(st);
	umount(dir);
	rmdir(dir);
	free(small);
	free(big);
}
