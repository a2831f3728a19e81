/*
 * sfs_auth: the client's half of "who is asking" (the HELLO that opens
 * every connection, with a MUNGE credential from the local munged), and
 * lists of hosts and networks (root_hosts) that the server matches a
 * peer against. The server's half, which trusts only what munged decoded,
 * is fsserver/auth.c.
 */
#ifndef MIGD_SFS_AUTH_H
#define MIGD_SFS_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sfs_conf.h"
#include "sfs_proto.h"

#define SFS_MUNGE_SOCKET_DEFAULT "/run/munge/munge.socket.2"

/*
 * Say who we are on a freshly connected fd (auth = munge: a new credential
 * from munged; auth = none: nothing is sent). 0, or a negative errno with
 * the reason in err: -EACCES when the server refused us (its reason), the
 * munge library's failure as -EACCES too, or a transport error.
 */
int sfs_auth_hello(int fd, const struct sfs_conf *conf, uint64_t deadline_ms, char *err,
		   size_t errlen);

#define SFS_NETLIST_MAX 32

struct sfs_net {
	int family;          /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix_bits;
};

struct sfs_netlist {
	unsigned n;
	struct sfs_net nets[SFS_NETLIST_MAX];
};

/* "127.0.0.1, 10.77.0.0/16, ::1" (commas and/or spaces; empty = none).
 * -EINVAL with the bad item in err. */
int sfs_netlist_parse(const char *text, struct sfs_netlist *out, char *err, size_t errlen);
/* 1 when sa (AF_INET, AF_INET6, v4-mapped v6) is in one of the list's nets. */
int sfs_netlist_match(const struct sfs_netlist *list, const struct sockaddr *sa);

#endif
