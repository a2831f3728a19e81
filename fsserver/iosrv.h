/*
 * iosrv: the sfs I/O server. Every file's bytes on this server live in one
 * plain datafile, <dir>/data/<handle as 16 hex digits>, so the store works
 * on any local file system (disk or tmpfs) and can be inspected with ls.
 * The data path is one receive into a per-connection buffer and one pwrite
 * per write, and sendfile(2) per read.
 */
#ifndef MIGD_SFSD_IOSRV_H
#define MIGD_SFSD_IOSRV_H

#include "server.h"

struct iosrv;

extern const struct server_role_ops iosrv_role_ops;

#endif
