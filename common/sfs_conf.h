/*
 * sfs_conf: sfs.conf, the one file that describes an sfs file system: its
 * servers (one metadata server, N I/O servers, in a fixed order that file
 * layouts refer to) and every tunable of the seed's tuning study.
 *
 * INI format read with inih. All [global] options live in one table (name,
 * type, default, help) so that parsing, command-line overrides
 * (`-o key=value`), --dump-config and the man page agree. A zeroed struct
 * is not valid; call sfs_conf_init() for the defaults. The struct is large
 * (~90 KiB): allocate it on the heap.
 */
#ifndef MIGD_SFS_CONF_H
#define MIGD_SFS_CONF_H

#include <stdint.h>
#include <stdio.h>

#include "sfs_proto.h"

#define SFS_MAX_IO_SERVERS 128
#define SFS_NAME_MAX 63

struct sfs_server_conf {
	char name[SFS_NAME_MAX + 1];
	int role;          /* enum sfs_role */
	char host[128];
	uint16_t port;
	char dir[512];     /* data directory (I/O) or metadata directory (meta) */
	char metrics_listen[160]; /* its own metrics endpoint HOST:PORT, "off",
				     or "": as [metrics] says */
};

struct sfs_conf {
	uint32_t strip_size;          /* default strip size, bytes */
	uint32_t stripe_count;        /* default stripe count, 0 = all I/O servers */
	uint32_t socket_sndbuf_bytes; /* 0 = kernel autotuning */
	uint32_t socket_rcvbuf_bytes; /* 0 = kernel autotuning */
	int tcp_nodelay;
	uint32_t max_request_bytes;   /* largest data in one frame */
	uint32_t timeout_ms;          /* a request not answered by then fails */
	uint32_t connect_timeout_ms;
	uint32_t max_connections;     /* per server */
	int sync_writes;              /* I/O servers: O_DSYNC datafiles */
	char agent_socket[108];       /* clients: migagent's socket ("off" = none) */
	uint32_t snapshot_barrier_timeout_ms; /* a snapshot's freeze of every server */
	int capabilities;             /* I/O servers check capabilities (sfs_cap.h) */
	char capability_key[512];     /* "" = sfs.key beside the config file */
	uint32_t capability_lifetime_ms;

	/* [metrics] listen: HOST:PORT of the metadata server's Prometheus
	 * endpoint; I/O server k listens on PORT+1+k unless its section sets
	 * metrics_listen. "" or "off": none (sfs_conf_metrics_listen) */
	char metrics_listen[160];

	struct sfs_server_conf meta;
	struct sfs_server_conf io[SFS_MAX_IO_SERVERS];
	unsigned n_io;
	char path[1024];              /* where it was loaded from */
};

void sfs_conf_init(struct sfs_conf *conf);
/* Load and validate. On error returns -EINVAL (or -errno opening the file)
 * and a message naming file, line, option and value in err. */
int sfs_conf_load(const char *path, struct sfs_conf *conf, char *err, size_t errlen);
/* Apply one "key=value" override of a [global] option. */
int sfs_conf_override(struct sfs_conf *conf, const char *key_value, char *err, size_t errlen);
/* Cross-field checks (done by load; call again after overrides). */
int sfs_conf_validate(struct sfs_conf *conf, char *err, size_t errlen);
/* Print the configuration in effect, in sfs.conf syntax. */
void sfs_conf_dump(const struct sfs_conf *conf, FILE *out);
/* Describe every [global] option (for --help and the man page). */
void sfs_conf_describe(FILE *out);
/* Write a loopback configuration: metadata server on port, I/O servers
 * io0..io{n-1} on port+1.., directories under dir. */
int sfs_conf_write_loopback(FILE *out, unsigned n_io, const char *dir, unsigned port);
/* "host:port", or "[v6]:port": into buf, returns buf. */
const char *sfs_server_address(const struct sfs_server_conf *srv, char *buf, size_t len);
/* The metrics endpoint of srv (a server of conf) into buf; "" when off. */
const char *sfs_conf_metrics_listen(const struct sfs_conf *conf,
				    const struct sfs_server_conf *srv, char *buf, size_t len);
/* Server by name, or NULL. *index gets its I/O index (-1 for meta). */
const struct sfs_server_conf *sfs_conf_find(const struct sfs_conf *conf, const char *name,
					    int *index);

#endif
