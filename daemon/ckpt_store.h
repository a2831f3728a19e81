/*
 * ckpt_store: where checkpoint images and manifests live, and the threads
 * that move an image between a backend's pipe and the store.
 *
 * A store is "sfs:/DIR" (the default, sfs:/.migd/checkpoints: striped over
 * every I/O server and readable from every host) or a local directory
 * ("/var/lib/migd/checkpoints", or "dir:/..."). Paths inside it are
 * relative: "JOB/ID/GUEST.img".
 *
 * A save stream is a pipe: the backend (QEMU's migration stream) writes the
 * image into one end; a thread reads the other end and writes it to the
 * store in 1 MiB pieces, computing its SHA-256 on the way, so that no
 * temporary local file is ever made and a checksum comes for free
 * (sha256sum of the stored file gives the same hex). A load stream is the
 * reverse: a thread reads the stored image, checks its length and checksum
 * as it goes, and feeds the pipe the backend reads.
 *
 * Nothing here blocks the caller for long: streams and the slower store
 * calls (ckpt_task) run on threads and are polled from migd's loop.
 * Each stream thread has its own sfs connection, so streams of several
 * guests go to the servers in parallel.
 *
 * Errors name the store path and the cause ("sfs:/.migd/checkpoints/j/3/
 * g1.img: write: no space left on device").
 */
#ifndef MIGD_CKPT_STORE_H
#define MIGD_CKPT_STORE_H

#include <stddef.h>
#include <stdint.h>

#define CKPT_SHA_HEX 65 /* 64 hex digits and the NUL */

struct ckpt_store;
struct sfs;

/* uri: "sfs:/DIR", "dir:/DIR" or "/DIR"; sfs_conf: the sfs.conf for an sfs
 * store (ignored otherwise). The store's directory is made when missing. */
int ckpt_store_open(const char *uri, const char *sfs_conf, struct ckpt_store **out, char *err,
		    size_t errlen);
void ckpt_store_close(struct ckpt_store *st);
const char *ckpt_store_uri(const struct ckpt_store *st);
/* The store's sfs connection (for snapshots); NULL for a directory store. */
struct sfs *ckpt_store_sfs(struct ckpt_store *st);
/* "sfs:/.migd/checkpoints/REL" or "/dir/REL" into buf. */
void ckpt_store_name(const struct ckpt_store *st, const char *rel, char *buf, size_t len);

/* Synchronous store calls (short: metadata, or a manifest of a few KiB). */
int ckpt_store_mkdir(struct ckpt_store *st, const char *rel, char *err, size_t errlen);
/* Remove rel and everything under it; a missing rel is 0. */
int ckpt_store_rmtree(struct ckpt_store *st, const char *rel, char *err, size_t errlen);
/* Write a whole small file (made durable), or read one (*data NUL-ended,
 * the caller's to free; at most max bytes). */
int ckpt_store_put(struct ckpt_store *st, const char *rel, const void *data, size_t len,
		   char *err, size_t errlen);
int ckpt_store_get(struct ckpt_store *st, const char *rel, size_t max, char **data,
		   size_t *len, char *err, size_t errlen);
/* Bytes of a stored file, -ENOENT when missing. */
int ckpt_store_size(struct ckpt_store *st, const char *rel, uint64_t *bytes, char *err,
		    size_t errlen);
/* The store's own path of rel, for a backend that writes the file itself
 * (a directory store only: -ENOTSUP for sfs). */
int ckpt_store_local_path(const struct ckpt_store *st, const char *rel, char *buf, size_t len);
/* Read rel whole: its length and SHA-256. */
int ckpt_store_digest(struct ckpt_store *st, const char *rel, uint64_t *bytes,
		      char sha_hex[CKPT_SHA_HEX], char *err, size_t errlen);
/* Read rel whole: 0 when its length and SHA-256 are the ones given;
 * -EBADMSG naming both checksums, or the read's error. */
int ckpt_store_verify(struct ckpt_store *st, const char *rel, uint64_t bytes,
		      const char *sha_hex, char *err, size_t errlen);

/* The save loop of the stream thread and of migd-stream (ckpt_store.c
 * says how it treats failures, discard and cancel_fd); -1 / NULL: none. */
#include <signal.h>
int ckpt_store_save_fd(struct ckpt_store *st, const char *rel, int in_fd, int cancel_fd,
		       const volatile sig_atomic_t *discard, _Atomic uint64_t *bytes,
		       char sha_hex[CKPT_SHA_HEX], char *err, size_t errlen);

/* ---- streams: one thread each ---- */

struct ckpt_stream;

/* Save: *backend_fd is the pipe's write end for the backend (the caller
 * closes it once the backend has its own copy). */
int ckpt_stream_save(struct ckpt_store *st, const char *rel, int *backend_fd,
		     struct ckpt_stream **out, char *err, size_t errlen);
/* The same through migd-stream (exe): a process of its own that reads the
 * stream to its end even if migd dies or the store fails (migd_stream.c
 * says why), writing its outcome to result. Its bytes are known once done. */
int ckpt_stream_save_proc(struct ckpt_store *st, const char *exe, const char *rel,
			  const char *result, int *backend_fd, struct ckpt_stream **out, char *err,
			  size_t errlen);
/* Reap migd-streams whose streams were freed before they ended. */
void ckpt_stream_reap(void);
/* Load: *backend_fd is the read end. bytes and sha_hex: what the image must
 * be (from the manifest); a mismatch fails the stream (the backend then
 * sees the pipe close early). */
int ckpt_stream_load(struct ckpt_store *st, const char *rel, uint64_t bytes,
		     const char *sha_hex, int *backend_fd, struct ckpt_stream **out, char *err,
		     size_t errlen);
/* 0 while it runs, 1 when done (a save: the pipe reached its end and the
 * file is durable), or a negative errno with err. *bytes so far, sha_hex
 * once done. */
int ckpt_stream_poll(struct ckpt_stream *s, uint64_t *bytes, char sha_hex[CKPT_SHA_HEX],
		     char *err, size_t errlen);
/* Stop (a running stream is cut: its pipe closes) and free. NULL is fine. */
void ckpt_stream_free(struct ckpt_stream *s);

/* ---- a slow store call on a thread ---- */

typedef int (*ckpt_task_fn)(void *arg, char *err, size_t errlen);
struct ckpt_task;
/* Run fn(arg) on a thread; arg must live until the task is freed. */
int ckpt_task_start(ckpt_task_fn fn, void *arg, struct ckpt_task **out);
/* 0 while it runs, 1 when done with *rc and err (fn's). */
int ckpt_task_poll(struct ckpt_task *t, int *rc, char *err, size_t errlen);
/* Waits for the task to end, then frees it. NULL is fine. */
void ckpt_task_free(struct ckpt_task *t);

#endif
