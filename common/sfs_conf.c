/*
 * sfs_conf: parsing, overrides and printing of sfs.conf (see sfs_conf.h).
 */
#include "sfs_conf.h"

#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"
#include "util.h"

/* OPT_PATH: absolute, or off (empty is off too); OPT_FILE: absolute, or
 * empty for the option's default place. For both, max is the buffer. */
enum opt_type { OPT_SIZE, OPT_UINT, OPT_BOOL, OPT_PATH, OPT_FILE };

struct opt {
	const char *name;
	enum opt_type type;
	size_t offset;
	const char *def;
	uint64_t min, max;
	const char *help;
};

#define OFF(f) offsetof(struct sfs_conf, f)

static const struct opt opts[] = {
	{ "strip_size", OPT_SIZE, OFF(strip_size), "64k", SFS_STRIP_SIZE_MIN, SFS_STRIP_SIZE_MAX,
	  "default strip size of new files (bytes; k, m, g suffixes)" },
	{ "stripe_count", OPT_UINT, OFF(stripe_count), "0", 0, SFS_MAX_STRIPE,
	  "default number of I/O servers a file is striped over (0 = all)" },
	{ "socket_sndbuf", OPT_SIZE, OFF(socket_sndbuf_bytes), "0", 0, 1u << 30,
	  "SO_SNDBUF of every connection (0 = kernel autotuning)" },
	{ "socket_rcvbuf", OPT_SIZE, OFF(socket_rcvbuf_bytes), "0", 0, 1u << 30,
	  "SO_RCVBUF of every connection (0 = kernel autotuning)" },
	{ "tcp_nodelay", OPT_BOOL, OFF(tcp_nodelay), "yes", 0, 1,
	  "set TCP_NODELAY on every connection" },
	{ "max_request", OPT_SIZE, OFF(max_request_bytes), "4m", 4096, 1u << 30,
	  "largest data payload of one request; clients split larger I/O" },
	{ "timeout_ms", OPT_UINT, OFF(timeout_ms), "30000", 10, 86400000,
	  "a request not answered within this time fails with ETIMEDOUT" },
	{ "connect_timeout_ms", OPT_UINT, OFF(connect_timeout_ms), "5000", 10, 86400000,
	  "time allowed to establish a connection" },
	{ "max_connections", OPT_UINT, OFF(max_connections), "1024", 1, 65536,
	  "connections one server accepts at once" },
	{ "sync_writes", OPT_BOOL, OFF(sync_writes), "no", 0, 1,
	  "I/O servers write with O_DSYNC (durable at once, slow)" },
	{ "snapshot_barrier_timeout_ms", OPT_UINT, OFF(snapshot_barrier_timeout_ms), "30000", 10,
	  86400000, "a snapshot fails unless every server is frozen and pinned within this time" },
	{ "agent_socket", OPT_PATH, OFF(agent_socket), "/run/migagent/sfs.sock", 0,
	  sizeof(((struct sfs_conf *)0)->agent_socket),
	  "clients register with migagent there (off = never; env SFS_AGENT_SOCKET wins)" },
	{ "capabilities", OPT_BOOL, OFF(capabilities), "on", 0, 1,
	  "I/O servers serve only requests with a capability from the metadata server "
	  "(off: anyone who reaches one reads and writes any datafile)" },
	{ "capability_key", OPT_FILE, OFF(capability_key), "", 0,
	  sizeof(((struct sfs_conf *)0)->capability_key),
	  "the servers' shared key, 0600 (empty: sfs.key beside sfs.conf)" },
	{ "capability_lifetime_ms", OPT_UINT, OFF(capability_lifetime_ms), "600000", 100,
	  86400000, "a capability expires this long after issue; clients then renew it" },
};

static const struct opt *opt_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		if (strcmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

static int opt_set(struct sfs_conf *conf, const struct opt *o, const char *value, char *err,
		   size_t errlen)
{
	uint64_t v = 0;
	int bv, rc;
	switch (o->type) {
	case OPT_PATH:
	case OPT_FILE: {
		char *dst = (char *)conf + o->offset;
		size_t cap = (size_t)o->max; /* a path option's max is its buffer */
		if (strlen(value) >= cap) {
			snprintf(err, errlen, "%s \"%.40s...\": longer than %zu bytes", o->name,
				 value, cap - 1);
			return -EINVAL;
		}
		if (o->type == OPT_PATH && *value && strcmp(value, "off") != 0 && value[0] != '/') {
			snprintf(err, errlen, "%s \"%s\": expected an absolute path or off",
				 o->name, value);
			return -EINVAL;
		}
		if (o->type == OPT_FILE && *value && value[0] != '/') {
			snprintf(err, errlen, "%s \"%s\": expected an absolute path (or nothing "
				 "for the default)", o->name, value);
			return -EINVAL;
		}
		snprintf(dst, cap, "%s", value);
		return 0;
	}
	case OPT_SIZE:
		rc = parse_size(value, &v);
		if (rc < 0) {
			snprintf(err, errlen, "%s \"%s\": expected a size like 64k", o->name, value);
			return -EINVAL;
		}
		break;
	case OPT_UINT:
		rc = parse_u64(value, 0, UINT32_MAX, &v);
		if (rc < 0) {
			snprintf(err, errlen, "%s \"%s\": expected a whole number", o->name, value);
			return -EINVAL;
		}
		break;
	case OPT_BOOL:
		if (parse_bool(value, &bv) < 0) {
			snprintf(err, errlen, "%s \"%s\": expected yes or no", o->name, value);
			return -EINVAL;
		}
		v = (uint64_t)bv;
		break;
	}
	if (v < o->min || v > o->max) {
		snprintf(err, errlen, "%s \"%s\": out of range %" PRIu64 "..%" PRIu64, o->name,
			 value, o->min, o->max);
		return -EINVAL;
	}
	if (o->type == OPT_BOOL)
		*(int *)((char *)conf + o->offset) = (int)v;
	else
		*(uint32_t *)((char *)conf + o->offset) = (uint32_t)v;
	return 0;
}

void sfs_conf_init(struct sfs_conf *conf)
{
	char err[256];
	memset(conf, 0, sizeof(*conf));
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		if (opt_set(conf, &opts[i], opts[i].def, err, sizeof(err)) < 0)
			abort(); /* a bad default is our bug */
}

/* "host:port" or "[v6]:port". */
static int parse_address(const char *value, struct sfs_server_conf *srv)
{
	const char *colon = strrchr(value, ':');
	if (!colon || colon == value)
		return -EINVAL;
	const char *host = value;
	size_t hostlen = (size_t)(colon - value);
	if (host[0] == '[') {
		if (hostlen < 3 || host[hostlen - 1] != ']')
			return -EINVAL;
		host++;
		hostlen -= 2;
	}
	if (hostlen >= sizeof(srv->host))
		return -EINVAL;
	uint64_t port;
	if (parse_u64(colon + 1, 1, 65535, &port) < 0)
		return -EINVAL;
	memcpy(srv->host, host, hostlen);
	srv->host[hostlen] = '\0';
	srv->port = (uint16_t)port;
	return 0;
}

struct load_state {
	struct sfs_conf *conf;
	struct sfs_server_conf servers[SFS_MAX_IO_SERVERS + 1];
	unsigned n_servers;
	char err[512];
	int failed;
};

static struct sfs_server_conf *section_server(struct load_state *st, const char *section)
{
	const char *name = section + strlen("server");
	while (*name == ' ')
		name++;
	if (*name == '\0' || strlen(name) > SFS_NAME_MAX)
		return NULL;
	for (unsigned i = 0; i < st->n_servers; i++)
		if (strcmp(st->servers[i].name, name) == 0)
			return &st->servers[i];
	if (st->n_servers == ARRAY_SIZE(st->servers))
		return NULL;
	struct sfs_server_conf *srv = &st->servers[st->n_servers++];
	memset(srv, 0, sizeof(*srv));
	snprintf(srv->name, sizeof(srv->name), "%s", name);
	return srv;
}

/* A metrics endpoint: HOST:PORT, or off (kept as "off": in a server's
 * section it overrides [metrics]). */
static int metrics_listen_set(char *buf, size_t len, const char *value, char *err,
			      size_t errlen)
{
	char host[160];
	uint16_t port;
	if (strcmp(value, "off") == 0) {
		snprintf(buf, len, "off");
		return 0;
	}
	if (strlen(value) >= len ||
	    net_parse_hostport(value, host, sizeof(host), &port, err, errlen) < 0) {
		snprintf(err, errlen, "metrics listen \"%s\": expected HOST:PORT (e.g. "
			 "127.0.0.1:9464) or off", value);
		return -EINVAL;
	}
	snprintf(buf, len, "%s", value);
	return 0;
}

static int server_set(struct sfs_server_conf *srv, const char *name, const char *value,
		      char *err, size_t errlen)
{
	if (strcmp(name, "role") == 0) {
		if (strcmp(value, "meta") == 0)
			srv->role = SFS_ROLE_META;
		else if (strcmp(value, "io") == 0)
			srv->role = SFS_ROLE_IO;
		else {
			snprintf(err, errlen, "role \"%s\": expected meta or io", value);
			return -EINVAL;
		}
	} else if (strcmp(name, "address") == 0) {
		if (parse_address(value, srv) < 0) {
			snprintf(err, errlen, "address \"%s\": expected HOST:PORT", value);
			return -EINVAL;
		}
	} else if (strcmp(name, "dir") == 0) {
		if (value[0] != '/' || strlen(value) >= sizeof(srv->dir)) {
			snprintf(err, errlen, "dir \"%s\": expected an absolute path", value);
			return -EINVAL;
		}
		snprintf(srv->dir, sizeof(srv->dir), "%s", value);
	} else if (strcmp(name, "metrics_listen") == 0) {
		return metrics_listen_set(srv->metrics_listen, sizeof(srv->metrics_listen), value,
					  err, errlen);
	} else {
		snprintf(err, errlen, "unknown server option \"%s\"", name);
		return -EINVAL;
	}
	return 0;
}

static int conf_ini_line(void *user, const char *section, const char *name, const char *value)
{
	struct load_state *st = user;
	char err[400];
	int rc;

	if (strcmp(section, "global") == 0) {
		const struct opt *o = opt_find(name);
		if (!o) {
			snprintf(err, sizeof(err), "unknown option \"%s\" in [global]", name);
			rc = -EINVAL;
		} else {
			rc = opt_set(st->conf, o, value, err, sizeof(err));
		}
	} else if (strncmp(section, "server", 6) == 0 &&
		   (section[6] == ' ' || section[6] == '\0')) {
		struct sfs_server_conf *srv = section_server(st, section);
		if (!srv) {
			snprintf(err, sizeof(err), "[%s]: expected [server NAME] with a short name",
				 section);
			rc = -EINVAL;
		} else {
			rc = server_set(srv, name, value, err, sizeof(err));
		}
	} else if (strcmp(section, "metrics") == 0) {
		if (strcmp(name, "listen") == 0) {
			rc = metrics_listen_set(st->conf->metrics_listen,
						sizeof(st->conf->metrics_listen), value, err,
						sizeof(err));
		} else {
			snprintf(err, sizeof(err), "unknown option \"%s\" in [metrics] (only listen)",
				 name);
			rc = -EINVAL;
		}
	} else {
		snprintf(err, sizeof(err), "unknown section [%s]", section);
		rc = -EINVAL;
	}
	if (rc < 0 && !st->failed) {
		st->failed = 1;
		snprintf(st->err, sizeof(st->err), "%s", err);
	}
	return rc < 0 ? 0 : 1;
}

int sfs_conf_load(const char *path, struct sfs_conf *conf, char *err, size_t errlen)
{
	struct load_state *st = calloc(1, sizeof(*st));
	int rc = 0;
	if (!st)
		return -ENOMEM;
	sfs_conf_init(conf);
	snprintf(conf->path, sizeof(conf->path), "%s", path);
	st->conf = conf;

	FILE *f = fopen(path, "r");
	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	int line = ini_parse_file(f, conf_ini_line, st);
	fclose(f);
	if (line != 0) {
		snprintf(err, errlen, "%s:%d: %s", path, line,
			 st->failed ? st->err : "syntax error (expected [section] or key = value)");
		rc = -EINVAL;
		goto out;
	}
	conf->n_io = 0;
	for (unsigned i = 0; i < st->n_servers; i++) {
		struct sfs_server_conf *srv = &st->servers[i];
		if (srv->role == SFS_ROLE_META) {
			if (conf->meta.role) {
				snprintf(err, errlen, "%s: [server %s]: a second metadata server "
					 "(first is %s)", path, srv->name, conf->meta.name);
				rc = -EINVAL;
				goto out;
			}
			conf->meta = *srv;
		} else if (srv->role == SFS_ROLE_IO) {
			conf->io[conf->n_io++] = *srv;
		} else {
			snprintf(err, errlen, "%s: [server %s]: role missing (meta or io)", path,
				 srv->name);
			rc = -EINVAL;
			goto out;
		}
	}
	rc = sfs_conf_validate(conf, err, errlen);
out:
	free(st);
	return rc;
}

int sfs_conf_validate(struct sfs_conf *conf, char *err, size_t errlen)
{
	const char *path = conf->path[0] ? conf->path : "sfs.conf";
	if (!conf->meta.role) {
		snprintf(err, errlen, "%s: no metadata server ([server NAME] with role = meta)",
			 path);
		return -EINVAL;
	}
	if (conf->n_io == 0) {
		snprintf(err, errlen, "%s: no I/O servers ([server NAME] with role = io)", path);
		return -EINVAL;
	}
	const struct sfs_server_conf *all[SFS_MAX_IO_SERVERS + 1];
	all[0] = &conf->meta;
	for (unsigned i = 0; i < conf->n_io; i++)
		all[i + 1] = &conf->io[i];
	for (unsigned i = 0; i <= conf->n_io; i++) {
		if (!all[i]->port) {
			snprintf(err, errlen, "%s: [server %s]: address missing", path,
				 all[i]->name);
			return -EINVAL;
		}
		if (!all[i]->dir[0]) {
			snprintf(err, errlen, "%s: [server %s]: dir missing", path, all[i]->name);
			return -EINVAL;
		}
	}
	char host[160];
	uint16_t port;
	if (*conf->metrics_listen && strcmp(conf->metrics_listen, "off") != 0 &&
	    net_parse_hostport(conf->metrics_listen, host, sizeof(host), &port, err, errlen) == 0) {
		for (unsigned i = 0; i < conf->n_io; i++) {
			if (*conf->io[i].metrics_listen || port + 1 + i <= 65535)
				continue;
			snprintf(err, errlen, "%s: [metrics] listen %s: I/O server %s would need "
				 "port %u", path, conf->metrics_listen, conf->io[i].name,
				 port + 1 + i);
			return -EINVAL;
		}
	}
	if (conf->strip_size % 512 != 0) {
		snprintf(err, errlen, "%s: strip_size %u: must be a multiple of 512", path,
			 conf->strip_size);
		return -EINVAL;
	}
	if (conf->stripe_count > conf->n_io) {
		snprintf(err, errlen, "%s: stripe_count %u: only %u I/O servers", path,
			 conf->stripe_count, conf->n_io);
		return -EINVAL;
	}
	return 0;
}

int sfs_conf_override(struct sfs_conf *conf, const char *key_value, char *err, size_t errlen)
{
	char key[64];
	const char *eq = strchr(key_value, '=');
	if (!eq || eq == key_value || (size_t)(eq - key_value) >= sizeof(key)) {
		snprintf(err, errlen, "override \"%s\": expected KEY=VALUE", key_value);
		return -EINVAL;
	}
	memcpy(key, key_value, (size_t)(eq - key_value));
	key[eq - key_value] = '\0';
	const struct opt *o = opt_find(key);
	if (!o) {
		snprintf(err, errlen, "override \"%s\": unknown option \"%s\"", key_value, key);
		return -EINVAL;
	}
	return opt_set(conf, o, eq + 1, err, errlen);
}

static void opt_print(const struct sfs_conf *conf, const struct opt *o, FILE *out)
{
	const char *p = (const char *)conf + o->offset;
	if (o->type == OPT_PATH)
		fprintf(out, "%s = %s\n", o->name, *p ? p : "off");
	else if (o->type == OPT_FILE)
		fprintf(out, "%s = %s\n", o->name, p);
	else if (o->type == OPT_BOOL)
		fprintf(out, "%s = %s\n", o->name, *(const int *)p ? "yes" : "no");
	else
		fprintf(out, "%s = %u\n", o->name, *(const uint32_t *)p);
}

const char *sfs_server_address(const struct sfs_server_conf *srv, char *buf, size_t len)
{
	int v6 = strchr(srv->host, ':') != NULL;
	snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", srv->host, v6 ? "]" : "", srv->port);
	return buf;
}

static void server_print(const struct sfs_server_conf *srv, FILE *out)
{
	char addr[160];
	fprintf(out, "\n[server %s]\nrole = %s\naddress = %s\ndir = %s\n", srv->name,
		srv->role == SFS_ROLE_META ? "meta" : "io",
		sfs_server_address(srv, addr, sizeof(addr)), srv->dir);
	if (*srv->metrics_listen)
		fprintf(out, "metrics_listen = %s\n", srv->metrics_listen);
}

void sfs_conf_dump(const struct sfs_conf *conf, FILE *out)
{
	fprintf(out, "[global]\n");
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		opt_print(conf, &opts[i], out);
	if (*conf->metrics_listen)
		fprintf(out, "\n[metrics]\nlisten = %s\n", conf->metrics_listen);
	server_print(&conf->meta, out);
	for (unsigned i = 0; i < conf->n_io; i++)
		server_print(&conf->io[i], out);
}

void sfs_conf_describe(FILE *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		fprintf(out, "  %-20s default %-6s %s\n", opts[i].name, opts[i].def, opts[i].help);
}

int sfs_conf_write_loopback(FILE *out, unsigned n_io, const char *dir, unsigned port)
{
	if (n_io == 0 || n_io > SFS_MAX_IO_SERVERS || port == 0 || port + n_io > 65535 ||
	    dir[0] != '/')
		return -EINVAL;
	fprintf(out, "# sfs.conf written by sfs genconfig: a loopback file system with\n"
		     "# one metadata server and %u I/O servers. See sfs.conf(5).\n"
		     "# I/O servers are listed in layout order: append, never reorder.\n\n",
		n_io);
	fprintf(out, "[global]\n");
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		fprintf(out, "%s = %s\n", opts[i].name, opts[i].def);
	fprintf(out, "\n[server meta]\nrole = meta\naddress = 127.0.0.1:%u\ndir = %s/meta\n", port,
		dir);
	for (unsigned i = 0; i < n_io; i++)
		fprintf(out, "\n[server io%u]\nrole = io\naddress = 127.0.0.1:%u\ndir = %s/io%u\n",
			i, port + 1 + i, dir, i);
	return ferror(out) ? -EIO : 0;
}

const char *sfs_conf_metrics_listen(const struct sfs_conf *conf,
				    const struct sfs_server_conf *srv, char *buf, size_t len)
{
	char host[160], err[256];
	uint16_t port;
	buf[0] = '\0';
	if (*srv->metrics_listen) {
		if (strcmp(srv->metrics_listen, "off") != 0)
			snprintf(buf, len, "%s", srv->metrics_listen);
		return buf;
	}
	if (!*conf->metrics_listen || strcmp(conf->metrics_listen, "off") == 0 ||
	    net_parse_hostport(conf->metrics_listen, host, sizeof(host), &port, err,
			       sizeof(err)) < 0)
		return buf;
	unsigned index = srv == &conf->meta ? 0 : (unsigned)(srv - conf->io) + 1;
	if (port + index > 65535)
		return buf; /* refused by sfs_conf_validate */
	snprintf(buf, len, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port + index);
	return buf;
}

const struct sfs_server_conf *sfs_conf_find(const struct sfs_conf *conf, const char *name,
					    int *index)
{
	if (strcmp(conf->meta.name, name) == 0) {
		if (index)
			*index = -1;
		return &conf->meta;
	}
	for (unsigned i = 0; i < conf->n_io; i++) {
		if (strcmp(conf->io[i].name, name) == 0) {
			if (index)
				*index = (int)i;
			return &conf->io[i];
		}
	}
	return NULL;
}
