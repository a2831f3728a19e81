/*
 * client_internal: what client.c (mount, channels, errors, namespace) and
 * data.c (the striped data path and every other I/O-server request) share.
 *
 * A "channel" is one connection to the metadata server plus one per I/O
 * server. A call takes a channel for its whole duration and owns it
 * exclusively, so no lock is held during network I/O and threads doing I/O
 * at once use separate sockets; the pool grows to the peak number of
 * concurrent calls and shrinks only at sfs_disconnect.
 */
#ifndef SFS_CLIENT_INTERNAL_H
#define SFS_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl.h"
#include "net.h"
#include "sfs.h"
#include "sfs_conf.h"
#include "sfs_proto.h"
#include "sfs_rpc.h"

/* Room for a message naming a call, a path and a server. */
#define CLIENT_ERR_BYTES 1024

struct chan {
	struct chan *next_free;
	struct chan *next_all;
	/* Scratch for the call that owns the channel: a reply is large (a
	 * READDIR batch). Copy out what must outlive the next request. */
	struct sfs_req req;
	struct sfs_reply reply;
	/* The data path's plan (streams, requests, iovecs), kept from call to
	 * call so that a small read or write allocates nothing (data.c). */
	void *plan_mem;
	size_t plan_mem_bytes;
	struct net_spin io_spin; /* waits for I/O servers' replies */
	struct sfs_conn meta;
	struct sfs_conn io[]; /* conf->n_io, in config order */
};

struct sfs {
	struct sfs_conf *conf;
	pthread_mutex_t lock; /* guards the two channel lists */
	struct chan *free_chans;
	struct chan *all_chans;
	struct ctl *ctl; /* migagent's control point, NULL without an agent */
	uint64_t lock_session; /* random, names this client's locks on the server */
};

struct sfs_file {
	struct sfs *fs;
	uint64_t fid;
	struct sfs_layout layout;
	int flags;
	int written; /* set atomically by pwrite/ftruncate: close updates mtime */
	int was_read; /* set atomically by pread: close may update atime */
	int64_t atime_ns, mtime_ns; /* at open: relatime's rule at close */
	unsigned ctl_epoch; /* ctl_touch's memo */
	pthread_mutex_t cap_lock; /* guards cap: a renewal replaces it */
	struct sfs_cap cap; /* from the metadata server, for the I/O servers */
	char path[];
};

/* client.c */

/* A free channel (a new one if none is free), or NULL with the error set.
 * Taking a channel is where every request begins, so it passes the control
 * point's admission gate (ctl.h): it may block while migagent holds the
 * client quiesced. The _ungated pair is for the control point's own
 * requests. */
struct chan *client_chan_get(struct sfs *fs);
void client_chan_put(struct sfs *fs, struct chan *ch);
struct chan *client_chan_get_ungated(struct sfs *fs);
void client_chan_put_ungated(struct sfs *fs, struct chan *ch);
/*
 * Close every server connection (metadata and I/O) of every channel no call
 * owns, so that the next request on each connects afresh (the next use of
 * a closed connection connects it: client_conn_ready). For the control
 * point after a restore from a checkpoint, where the guest's TCP state is
 * from the cut and the servers' is not: with the gate closed and drained no
 * call owns a channel, so that is every channel. A channel in use is left
 * alone (it is not ours to touch). Returns the connections closed.
 */
unsigned client_drop_connections(struct sfs *fs);
/* One request about a handle (APPEND_LOCK, APPEND_UNLOCK) to the
 * metadata server on ch: 0 or a negative errno with the reason in err. */
int client_meta_handle_call(struct chan *ch, uint16_t op, uint64_t handle, char *err,
			    size_t errlen);
/* f's capability, a copy. */
void client_file_cap(struct sfs_file *f, struct sfs_cap *out);
/* A fresh capability for f from the metadata server (GETATTR on ch), kept
 * in f and copied to out: for a request an I/O server refused with
 * -EACCES (it expired). 0 or a negative errno with the reason in err. */
int client_file_cap_renew(struct sfs_file *f, struct chan *ch, struct sfs_cap *out, char *err,
			  size_t errlen);
/* Set the calling thread's sfs_last_error(). */
void client_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* msg about srv without its leading "server NAME at HOST:PORT: ", into out
 * (for the error of a per-server report, which names the server itself). */
void client_server_error(const struct sfs_server_conf *srv, const char *msg, char *out,
			 size_t len);
/*
 * Connect conn if needed. An idle connection the server has closed (it
 * restarted, or dropped us) is noticed here and replaced, so a restart
 * between calls costs no failed call. 0, or the connect's errno with the
 * reason in err (see sfs_conn_ensure); -EIO when the server dropped the
 * connection and cannot be connected to again (it died while in use).
 */
int client_conn_ready(struct sfs_conn *conn, char *err, size_t errlen);

/* data.c: requests to the I/O servers of a layout, one per server, all at
 * once. Each returns 0 or a negative errno with the reason in err. */

/* File size derived from every datafile's size. cap: the file's (its
 * handle names the file). */
int data_file_size(struct sfs *fs, struct chan *ch, const struct sfs_cap *cap,
		   const struct sfs_layout *l, uint64_t *size_bytes, char *err, size_t errlen);
int data_truncate(struct sfs *fs, struct chan *ch, const struct sfs_cap *cap,
		  const struct sfs_layout *l, uint64_t size_bytes, char *err, size_t errlen);
/* The same for an open file, renewing its capability once if an I/O
 * server refuses it. */
int data_file_size_of(struct sfs_file *f, struct chan *ch, uint64_t *size_bytes, char *err,
		      size_t errlen);
int data_truncate_of(struct sfs_file *f, struct chan *ch, uint64_t size_bytes, char *err,
		     size_t errlen);
/* DF_STATFS / PING to every I/O server: out[i] is I/O server i. A server's
 * failure goes into its status; the calls themselves fail only for -ENOMEM. */
/* DF_SYNC of one file on its stripe's servers, or of every datafile on
 * every I/O server (handle 0). */
int data_sync(struct sfs *fs, struct chan *ch, uint64_t fid, const struct sfs_layout *l,
	      char *err, size_t errlen);
int data_sync_all(struct sfs *fs, struct chan *ch, char *err, size_t errlen);
int data_io_statfs(struct sfs *fs, struct chan *ch, struct sfs_server_usage *out);
int data_io_ping(struct sfs *fs, struct chan *ch, struct sfs_ping_result *out);

#endif
