/*
 * sfs_cmd: the `sfs` command: global options, dispatch to subcommands, and
 * the subcommands that move no data (genconfig, ls, stat, rm, mkdir, rmdir,
 * df, setstripe, getstripe, ping). cp and cat live in sfs_copy.c.
 *
 * Every subcommand parses its own options first (so `--help` works without
 * a config), then connects, then prints a human table or, with --json, one
 * JSON value built with jansson. Errors go to stderr as
 * "sfs: <subcommand>: <what>: <why>" and map to the exit codes in sfs_cmd.h.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmdline.h"
#include "log.h"
#include "sfs_cmd.h"
#include "util.h"

#ifndef MIGD_VERSION
#define MIGD_VERSION "0.1.0"
#endif

/* ---- helpers shared with sfs_copy.c ---- */

static const char *sub_name(const struct cmd *c)
{
	return c ? c->name : NULL;
}

void cmd_error(const struct cmd *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cmdline_verror("sfs", sub_name(c), fmt, ap);
	va_end(ap);
}

int cmd_usage_error(const struct cmd *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cmdline_verror("sfs", sub_name(c), fmt, ap);
	va_end(ap);
	cmdline_try_help("sfs", sub_name(c));
	return SFS_EXIT_USAGE;
}

int cmd_option(struct cmd *c, int opt, char **argv, const char *usage)
{
	switch (opt) {
	case 'h':
		fputs(usage, stdout);
		return SFS_EXIT_OK;
	case OPT_JSON:
		c->json = 1;
		return CMD_CONTINUE;
	case 'q':
		c->quiet = 1;
		return CMD_CONTINUE;
	default: /* ':' or '?' */
		cmdline_option_error("sfs", sub_name(c), opt, argv);
		return SFS_EXIT_USAGE;
	}
}

int cmd_getopt(int argc, char **argv, const char *optstring, const struct option *longopts)
{
	return cmdline_getopt(argc, argv, optstring, "hq", longopts);
}

int cmd_exit_code(int err)
{
	switch (-err) {
	case ECONNREFUSED: /* libsfs gives a failed connect its own errno */
	case EHOSTUNREACH:
	case ENETUNREACH:
		return SFS_EXIT_CONNECT;
	default: /* -ETIMEDOUT too: it may come after a request was under way */
		return SFS_EXIT_FAIL;
	}
}

int cmd_fail_msg(const struct cmd *c, const char *path, int err, const char *msg)
{
	if (!msg || !*msg)
		msg = sfs_strerror(err);
	/* libsfs's messages begin "CALL PATH: ": name the path only once */
	if (path && !strstr(msg, path))
		cmd_error(c, "%s: %s", path, msg);
	else
		cmd_error(c, "%s", msg);
	return cmd_exit_code(err);
}

int cmd_fail(const struct cmd *c, const char *path, int err)
{
	return cmd_fail_msg(c, path, err, sfs_last_error());
}

int cmd_connect(struct cmd *c)
{
	char err[640];
	const char *path = c->conf_path ? c->conf_path : getenv("SFS_CONF");
	if (!path || !*path) {
		cmd_error(c, "no config: use -c CONF or set SFS_CONF");
		return SFS_EXIT_CONNECT;
	}
	c->conf = malloc(sizeof(*c->conf));
	if (!c->conf) {
		cmd_error(c, "out of memory");
		return SFS_EXIT_FAIL;
	}
	if (sfs_conf_load(path, c->conf, err, sizeof(err)) < 0) {
		cmd_error(c, "%s", err);
		return SFS_EXIT_CONNECT;
	}
	/* Bad overrides are bad arguments: check them here, where we can say so. */
	for (const char **o = c->overrides; o && *o; o++) {
		if (sfs_conf_override(c->conf, *o, err, sizeof(err)) < 0)
			return cmd_usage_error(c, "-o: %s", err);
	}
	if (sfs_conf_validate(c->conf, err, sizeof(err)) < 0)
		return cmd_usage_error(c, "-o: %s", err);
	int rc = sfs_connect(path, c->overrides, &c->fs);
	if (rc < 0) {
		cmd_fail(c, path, rc);
		return SFS_EXIT_CONNECT;
	}
	return 0;
}

int cmd_print_json(const struct cmd *c, json_t *value)
{
	if (!value) {
		cmd_error(c, "out of memory building JSON");
		return SFS_EXIT_FAIL;
	}
	int rc = cmdline_print_json(value);
	json_decref(value);
	if (rc < 0) {
		cmd_error(c, "writing to stdout: %s", strerror(errno));
		return SFS_EXIT_FAIL;
	}
	return SFS_EXIT_OK;
}

const char *sfs_path_strip(const char *arg, int *is_sfs)
{
	if (strncmp(arg, "sfs:", 4) == 0) {
		*is_sfs = 1;
		return arg + 4;
	}
	*is_sfs = 0;
	return arg;
}

char *path_join(const char *dir, const char *name)
{
	size_t dl = strlen(dir);
	while (dl > 0 && dir[dl - 1] == '/')
		dl--;
	char *out;
	if (asprintf(&out, "%.*s/%s", (int)dl, dir, name) < 0)
		return NULL;
	return out;
}

char *path_base(const char *path)
{
	size_t end = strlen(path);
	while (end > 1 && path[end - 1] == '/')
		end--;
	size_t start = end;
	while (start > 0 && path[start - 1] != '/')
		start--;
	return strndup(path + start, end - start);
}

/* ---- formatting ---- */

/* Name of I/O server index io (0-based), as the library knows it. */
static const char *io_name(const struct cmd *c, unsigned io)
{
	const char *name = sfs_server_name(c->fs, io + 1);
	if (name)
		return name;
	return io < c->conf->n_io ? c->conf->io[io].name : "?";
}

static const char *io_address(const struct cmd *c, unsigned io, char *buf, size_t len)
{
	if (io >= c->conf->n_io)
		return "?";
	return sfs_server_address(&c->conf->io[io], buf, len);
}

static const char *format_time(int64_t ns, char *buf, size_t len)
{
	time_t secs = (time_t)(ns / 1000000000);
	struct tm tm;
	if (!localtime_r(&secs, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "?");
	return buf;
}

static const char *type_name(int type)
{
	return type == SFS_STAT_DIR ? "dir" : type == SFS_STAT_FILE ? "file"
	       : type == SFS_STAT_SYMLINK ? "link" : "?";
}

/*
 * The layout a file has, or for a directory the one new files under it get:
 * a directory's 0 means "file system default", whose stripe count 0 means
 * every I/O server.
 */
static void effective_layout(const struct cmd *c, const struct sfs_stat *st,
			     uint32_t *strip_size, unsigned *stripe_count)
{
	*strip_size = st->strip_size;
	*stripe_count = st->stripe_count;
	if (st->type != SFS_STAT_DIR)
		return;
	if (*strip_size == 0)
		*strip_size = c->conf->strip_size;
	if (*stripe_count == 0)
		*stripe_count = c->conf->stripe_count ? c->conf->stripe_count : c->conf->n_io;
}

static json_t *stat_json(const struct cmd *c, const char *name, const struct sfs_stat *st)
{
	uint32_t strip_size;
	unsigned stripe_count;
	effective_layout(c, st, &strip_size, &stripe_count);
	json_t *o = json_pack("{s:s, s:s, s:I, s:i, s:I, s:I, s:I, s:I, s:i}", "name", name,
			      "type", type_name(st->type), "fid", (json_int_t)st->fid,
			      "mode", (int)st->mode, "size_bytes", (json_int_t)st->size_bytes,
			      "mtime_ns", (json_int_t)st->mtime_ns, "ctime_ns",
			      (json_int_t)st->ctime_ns, "strip_size", (json_int_t)strip_size,
			      "stripe_count", (int)stripe_count);
	if (!o || st->type != SFS_STAT_FILE)
		return o;
	json_t *servers = json_array();
	for (unsigned i = 0; i < st->stripe_count && i < SFS_STRIPE_MAX; i++)
		json_array_append_new(servers, json_string(io_name(c, st->servers[i])));
	json_object_set_new(o, "servers", servers);
	return o;
}

/* ---- genconfig ---- */

static const char genconfig_usage[] =
	"usage: sfs genconfig --io-servers N --dir DIR --port PORT [--output FILE]\n"
	"\n"
	"Write an sfs.conf for a loopback file system: a metadata server on PORT and\n"
	"N I/O servers on PORT+1..PORT+N, with their directories under DIR. Needs no\n"
	"config. Start the servers with: sfsd -c FILE --all\n"
	"\n"
	"  -n, --io-servers N   number of I/O servers, 1 to 128\n"
	"  -d, --dir DIR        parent of the servers' directories (made absolute)\n"
	"  -p, --port PORT      the metadata server's port; PORT+N must be <= 65535\n"
	"      --output FILE    write to FILE instead of stdout\n"
	"  -h, --help           show this help\n";

/* DIR made absolute against the working directory, without trailing '/'. */
static char *absolute_dir(const struct cmd *c, const char *dir)
{
	char *out;
	if (dir[0] == '/') {
		out = strdup(dir);
	} else {
		char *cwd = realpath(".", NULL);
		if (!cwd) {
			cmd_error(c, "current directory: %s", strerror(errno));
			return NULL;
		}
		out = path_join(cwd, dir);
		free(cwd);
	}
	if (!out) {
		cmd_error(c, "out of memory");
		return NULL;
	}
	size_t len = strlen(out);
	while (len > 1 && out[len - 1] == '/')
		out[--len] = '\0';
	return out;
}

static int genconfig_write(struct cmd *c, const char *output, unsigned n_io, const char *dir,
			   unsigned port)
{
	FILE *out = output ? fopen(output, "w") : stdout;
	if (!out) {
		cmd_error(c, "%s: %s", output, strerror(errno));
		return SFS_EXIT_FAIL;
	}
	int rc = sfs_conf_write_loopback(out, n_io, dir, port);
	if (fflush(out) != 0)
		rc = -errno;
	if (output && fclose(out) != 0 && rc == 0)
		rc = -errno;
	if (rc < 0) {
		cmd_error(c, "%s: %s", output ? output : "stdout", strerror(-rc));
		return SFS_EXIT_FAIL;
	}
	return SFS_EXIT_OK;
}

static int cmd_genconfig(struct cmd *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "io-servers", required_argument, NULL, 'n' },
		{ "dir", required_argument, NULL, 'd' },
		{ "port", required_argument, NULL, 'p' },
		{ "output", required_argument, NULL, OPT_SUBCMD_BASE },
		CMD_COMMON_LONGOPTS,
		{ 0 },
	};
	const char *n_text = NULL, *dir_text = NULL, *port_text = NULL, *output = NULL;
	int opt, rc;
	while ((opt = cmd_getopt(argc, argv, "n:d:p:", longopts)) != -1) {
		switch (opt) {
		case 'n': n_text = optarg; break;
		case 'd': dir_text = optarg; break;
		case 'p': port_text = optarg; break;
		case OPT_SUBCMD_BASE: output = optarg; break;
		default:
			if ((rc = cmd_option(c, opt, argv, genconfig_usage)) != CMD_CONTINUE)
				return rc;
		}
	}
	if (optind < argc)
		return cmd_usage_error(c, "unexpected argument \"%s\"", argv[optind]);
	if (!n_text || !dir_text || !port_text)
		return cmd_usage_error(c, "%s is required", !n_text ? "--io-servers N"
							   : !dir_text ? "--dir DIR"
								       : "--port PORT");
	uint64_t n_io, port;
	if (parse_u64(n_text, 1, SFS_MAX_IO_SERVERS, &n_io) < 0)
		return cmd_usage_error(c, "--io-servers \"%s\": expected a number from 1 to %d",
				       n_text, SFS_MAX_IO_SERVERS);
	if (parse_u64(port_text, 1, 65535, &port) < 0)
		return cmd_usage_error(c, "--port \"%s\": expected a port from 1 to 65535",
				       port_text);
	if (port + n_io > 65535)
		return cmd_usage_error(c, "--port %" PRIu64 ": %" PRIu64 " I/O servers need ports "
				       "up to %" PRIu64 ", above 65535", port, n_io, port + n_io);
	char *dir = absolute_dir(c, dir_text);
	if (!dir)
		return SFS_EXIT_FAIL;
	if (strcmp(dir, "/") == 0) {
		free(dir);
		return cmd_usage_error(c, "--dir \"%s\": expected a directory other than /",
				       dir_text);
	}
	rc = genconfig_write(c, output, (unsigned)n_io, dir, (unsigned)port);
	free(dir);
	return rc;
}

/* ---- ls, stat ---- */

static const char ls_usage[] =
	"usage: sfs ls [-l] [--json] [PATH]\n"
	"\n"
	"List a directory (default /). A file lists just that file.\n"
	"\n"
	"  -l          long listing: type, mode, size, mtime, layout, name\n"
	"      --json  an array of records (always with the long fields)\n"
	"  -h, --help  show this help\n";

struct ls_entry {
	char *name;
	int type;
	uint64_t fid;
	struct sfs_stat st;
	int have_stat;
};

struct ls_list {
	struct ls_entry *v;
	size_t n, cap;
};

static int ls_collect(void *arg, const char *name, int type, uint64_t fid)
{
	struct ls_list *l = arg;
	if (GROW(l->v, l->cap, l->n + 1) < 0)
		return -ENOMEM;
	struct ls_entry *e = &l->v[l->n];
	memset(e, 0, sizeof(*e));
	e->name = strdup(name);
	if (!e->name)
		return -ENOMEM;
	e->type = type;
	e->fid = fid;
	l->n++;
	return 0;
}

static void ls_list_free(struct ls_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
}

/* Stat every entry; one that vanished since readdir is dropped. */
static int ls_stat_all(struct cmd *c, const char *dir, struct ls_list *l)
{
	size_t kept = 0;
	for (size_t i = 0; i < l->n; i++) {
		struct ls_entry *e = &l->v[i];
		char *path = path_join(dir, e->name);
		int rc = path ? sfs_stat(c->fs, path, &e->st) : -ENOMEM;
		if (rc < 0 && rc != -ENOENT) {
			int code = cmd_fail(c, path ? path : e->name, rc);
			free(path);
			/* keep the list exactly the entries still owned, for ls_list_free */
			while (i < l->n)
				l->v[kept++] = l->v[i++];
			l->n = kept;
			return code;
		}
		free(path);
		if (rc == -ENOENT) {
			free(e->name);
			continue;
		}
		e->have_stat = 1;
		l->v[kept++] = *e;
	}
	l->n = kept;
	return 0;
}

static void layout_text(const struct cmd *c, const struct sfs_stat *st, char *buf, size_t len)
{
	uint32_t strip_size;
	unsigned stripe_count;
	char size[32];
	effective_layout(c, st, &strip_size, &stripe_count);
	snprintf(buf, len, "%s x %u", format_size(strip_size, size, sizeof(size)), stripe_count);
}

static void ls_print_long(const struct cmd *c, const struct ls_list *l)
{
	int size_w = 4, layout_w = 6;
	char layout[64], mtime[32], size[32];
	for (size_t i = 0; i < l->n; i++) {
		layout_text(c, &l->v[i].st, layout, sizeof(layout));
		int w = snprintf(size, sizeof(size), "%" PRIu64, l->v[i].st.size_bytes);
		size_w = w > size_w ? w : size_w;
		w = (int)strlen(layout);
		layout_w = w > layout_w ? w : layout_w;
	}
	printf("%-4s  %-4s  %*s  %-19s  %-*s  %s\n", "type", "mode", size_w, "size", "mtime",
	       layout_w, "layout", "name");
	for (size_t i = 0; i < l->n; i++) {
		const struct sfs_stat *st = &l->v[i].st;
		layout_text(c, st, layout, sizeof(layout));
		printf("%-4s  %04o  %*" PRIu64 "  %-19s  %-*s  %s\n", type_name(st->type),
		       st->mode & 07777, size_w, st->size_bytes,
		       format_time(st->mtime_ns, mtime, sizeof(mtime)), layout_w, layout,
		       l->v[i].name);
	}
}

static int ls_print(struct cmd *c, const struct ls_list *l, int long_format)
{
	if (c->json) {
		json_t *arr = json_array();
		for (size_t i = 0; arr && i < l->n; i++)
			json_array_append_new(arr, stat_json(c, l->v[i].name, &l->v[i].st));
		return cmd_print_json(c, arr);
	}
	if (long_format)
		ls_print_long(c, l);
	else
		for (size_t i = 0; i < l->n; i++)
			printf("%s%s\n", l->v[i].name, l->v[i].type == SFS_STAT_DIR ? "/" : "");
	return fflush(stdout) == 0 ? SFS_EXIT_OK : SFS_EXIT_FAIL;
}

static int cmd_ls(struct cmd *c, int argc, char **argv)
{
	static const struct option longopts[] = { CMD_COMMON_LONGOPTS, { 0 } };
	int opt, rc, long_format = 0, is_sfs;
	while ((opt = cmd_getopt(argc, argv, "l", longopts)) != -1) {
		if (opt == 'l')
			long_format = 1;
		else if ((rc = cmd_option(c, opt, argv, ls_usage)) != CMD_CONTINUE)
			return rc;
	}
	if (argc - optind > 1)
		return cmd_usage_error(c, "unexpected argument \"%s\"", argv[optind + 1]);
	const char *path = optind < argc ? sfs_path_strip(argv[optind], &is_sfs) : "/";
	if ((rc = cmd_connect(c)) != 0)
		return rc;

	struct ls_list l = { 0 };
	struct sfs_stat st;
	if ((rc = sfs_stat(c->fs, path, &st)) < 0)
		return cmd_fail(c, path, rc);
	if (st.type != SFS_STAT_DIR) {
		rc = ls_collect(&l, path, st.type, st.fid);
		if (rc == 0) {
			l.v[0].st = st;
			l.v[0].have_stat = 1;
		}
	} else {
		rc = sfs_readdir(c->fs, path, ls_collect, &l);
	}
	if (rc < 0) {
		rc = cmd_fail(c, path, rc);
		goto out;
	}
	if (st.type == SFS_STAT_DIR && (long_format || c->json) &&
	    (rc = ls_stat_all(c, path, &l)) != 0)
		goto out;
	rc = ls_print(c, &l, long_format);
out:
	ls_list_free(&l);
	return rc;
}

static const char stat_usage[] =
	"usage: sfs stat [--json] PATH\n"
	"\n"
	"Show a file's or directory's attributes and layout.\n"
	"\n"
	"      --json  one JSON object\n"
	"  -h, --help  show this help\n";

static void stat_print(const struct cmd *c, const char *path, const struct sfs_stat *st)
{
	char buf[64], addr[192];
	uint32_t strip_size;
	unsigned stripe_count;
	effective_layout(c, st, &strip_size, &stripe_count);
	printf("path:          %s\n", path);
	printf("type:          %s\n", st->type == SFS_STAT_DIR ? "directory" : type_name(st->type));
	printf("fid:           %" PRIu64 "\n", st->fid);
	printf("mode:          %04o\n", st->mode & 07777);
	printf("size:          %" PRIu64 " (%s)\n", st->size_bytes,
	       format_size(st->size_bytes, buf, sizeof(buf)));
	printf("mtime:         %s.%09" PRId64 "\n", format_time(st->mtime_ns, buf, sizeof(buf)),
	       st->mtime_ns % 1000000000);
	printf("ctime:         %s.%09" PRId64 "\n", format_time(st->ctime_ns, buf, sizeof(buf)),
	       st->ctime_ns % 1000000000);
	printf("strip_size:    %s%s\n", format_size(strip_size, buf, sizeof(buf)),
	       st->type == SFS_STAT_DIR ? " (for new files)" : "");
	printf("stripe_count:  %u%s\n", stripe_count,
	       st->type == SFS_STAT_DIR ? " (for new files)" : "");
	for (unsigned i = 0; st->type == SFS_STAT_FILE && i < stripe_count && i < SFS_STRIPE_MAX;
	     i++)
		printf("  %-3u %-12s %s\n", i, io_name(c, st->servers[i]),
		       io_address(c, st->servers[i], addr, sizeof(addr)));
}

static int cmd_stat(struct cmd *c, int argc, char **argv)
{
	static const struct option longopts[] = { CMD_COMMON_LONGOPTS, { 0 } };
	int opt, rc, is_sfs;
	while ((opt = cmd_getopt(argc, argv, "", longopts)) != -1)
		if ((rc = cmd_option(c, opt, argv, stat_usage)) != CMD_CONTINUE)
			return rc;
	if (argc - optind != 1)
		return argc - optind == 0
			       ? cmd_usage_error(c, "PATH is required")
			       : cmd_usage_error(c, "unexpected argument \"%s\"", argv[optind + 1]);
	const char *path = sfs_path_strip(argv[optind], &is_sfs);
	if ((rc = cmd_connect(c)) != 0)
		return rc;
	struct sfs_stat st;
	if ((rc = sfs_stat(c->fs, path, &st)) < 0)
		return cmd_fail(c, path, rc);
	if (c->json)
		return cmd_print_json(c, stat_json(c, path, &st));
	stat_print(c, path, &st);
	return SFS_EXIT_OK;
}

/* ---- rm, mkdir, rmdir ---- */

static const char rm_usage[] =
	"usage: sfs rm PATH...\n"
	"\n"
	"Remove files. Goes on past a failure; exit status 1 if any failed.\n"
	"\n"
	"  -h, --help  show this help\n";

static const char mkdir_usage[] =
	"usage: sfs mkdir [-p] PATH...\n"
	"\n"
	"Create directories (mode 0755).\n"
	"\n"
	"  -p          create missing parents; an existing directory is no error\n"
	"  -h, --help  show this help\n";

static const char rmdir_usage[] =
	"usage: sfs rmdir PATH...\n"
	"\n"
	"Remove empty directories.\n"
	"\n"
	"  -h, --help  show this help\n";

/* mkdir -p: every prefix of path, existing directories accepted. Reports
 * its own errors; returns the exit code. */
static int mkdir_parents(struct cmd *c, const char *path)
{
	if (path[0] != '/') {
		cmd_error(c, "mkdir \"%s\": expected an absolute path", path);
		return SFS_EXIT_FAIL;
	}
	char *copy = strdup(path);
	int rc = 0, code = SFS_EXIT_OK;
	if (!copy) {
		cmd_error(c, "out of memory");
		return SFS_EXIT_FAIL;
	}
	for (char *p = copy + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (p > copy && p[-1] != '/') {
			struct sfs_stat st = { .type = SFS_STAT_DIR }; /* made by us */
			rc = sfs_mkdir(c->fs, copy, 0755);
			if (rc == -EEXIST)
				rc = sfs_stat(c->fs, copy, &st); /* fine if it is a directory */
			if (rc == 0 && st.type != SFS_STAT_DIR) {
				cmd_error(c, "%s: exists and is not a directory", copy);
				code = SFS_EXIT_FAIL;
				rc = -ENOTDIR;
			} else if (rc < 0) {
				code = cmd_fail(c, copy, rc);
			}
		}
		*p = saved;
		if (rc < 0 || saved == '\0')
			break;
	}
	free(copy);
	return code;
}

enum ns_op { NS_RM, NS_MKDIR, NS_MKDIR_P, NS_RMDIR };

/* One namespace operation on every argument; returns the worst exit code. */
static int ns_each(struct cmd *c, enum ns_op op, int argc, char **argv)
{
	int worst = SFS_EXIT_OK, is_sfs;
	for (int i = 0; i < argc; i++) {
		const char *path = sfs_path_strip(argv[i], &is_sfs);
		int rc, code = SFS_EXIT_OK;
		switch (op) {
		case NS_RM: rc = sfs_unlink(c->fs, path); break;
		case NS_MKDIR: rc = sfs_mkdir(c->fs, path, 0755); break;
		case NS_RMDIR: rc = sfs_rmdir(c->fs, path); break;
		case NS_MKDIR_P:
			code = mkdir_parents(c, path);
			rc = 0;
			break;
		}
		if (rc < 0)
			code = cmd_fail(c, path, rc);
		worst = code > worst ? code : worst;
	}
	return worst;
}

static int ns_command(struct cmd *c, int argc, char **argv, enum ns_op op, const char *usage)
{
	static const struct option longopts[] = { CMD_COMMON_LONGOPTS, { 0 } };
	int opt, rc;
	while ((opt = cmd_getopt(argc, argv, op == NS_MKDIR ? "p" : "", longopts)) != -1) {
		if (opt == 'p' && op == NS_MKDIR)
			op = NS_MKDIR_P;
		else if ((rc = cmd_option(c, opt, argv, usage)) != CMD_CONTINUE)
			return rc;
	}
	if (optind >= argc)
		return cmd_usage_error(c, "PATH is required");
	if ((rc = cmd_connect(c)) != 0)
		return rc;
	return ns_each(c, op, argc - optind, argv + optind);
}

static int cmd_rm(struct cmd *c, int argc, char **argv)
{
	return ns_command(c, argc, argv, NS_RM, rm_usage);
}

static int cmd_mkdir(struct cmd *c, int argc, char **argv)
{
	return ns_command(c, argc, argv, NS_MKDIR, mkdir_usage);
}

static int cmd_rmdir(struct cmd *c, int argc, char **argv)
{
	return ns_command(c, argc, argv, NS_RMDIR, rmdir_usage);
}

/* ---- df, ping ---- */

static const char df_usage[] =
	"usage: sfs df [--json]\n"
	"\n"
	"Usage of every server: name, role, address, total, used, free, files,\n"
	"what snapshots pin (I/O servers: bytes no live file shares) and status.\n"
	"Exit status 1 if a server did not answer.\n"
	"\n"
	"      --json  an array of records\n"
	"  -h, --help  show this help\n";

static const char ping_usage[] =
	"usage: sfs ping [--json]\n"
	"\n"
	"Round trip and protocol version of every server. Exit status 1 if a\n"
	"server did not answer.\n"
	"\n"
	"      --json  an array of records\n"
	"  -h, --help  show this help\n";

/* Widths of the name and address columns over n servers. */
#define COLUMN_WIDTHS(arr, n, name_w, addr_w)                                    \
	do {                                                                     \
		name_w = 6;                                                      \
		addr_w = 7;                                                      \
		for (unsigned i_ = 0; i_ < (n); i_++) {                          \
			int w_ = (int)strlen((arr)[i_].name);                    \
			name_w = w_ > name_w ? w_ : name_w;                      \
			w_ = (int)strlen((arr)[i_].address);                     \
			addr_w = w_ > addr_w ? w_ : addr_w;                      \
		}                                                                \
	} while (0)

/* Why a server failed: libsfs's message, else its errno's text. */
static const char *server_error(int status, const char *error)
{
	return error[0] ? error : sfs_strerror(status);
}

/* What a df and a ping record share: name, role, address, status, and
 * the error of a server that failed. */
static json_t *server_record(const char *name, int is_meta, const char *address, int status,
			     const char *error)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "name", name, "role",
			      is_meta ? "meta" : "io", "address", address, "status",
			      status ? "error" : "ok");
	if (o && status)
		json_object_set_new(o, "error", json_string(server_error(status, error)));
	return o;
}

static json_t *df_json(const struct sfs_server_usage *u, unsigned n)
{
	json_t *arr = json_array();
	for (unsigned i = 0; arr && i < n; i++) {
		json_t *o = server_record(u[i].name, u[i].is_meta, u[i].address, u[i].status,
					  u[i].error);
		if (!o)
			continue;
		if (!u[i].status) {
			json_object_set_new(o, "total_bytes", json_integer((json_int_t)u[i].total_bytes));
			json_object_set_new(o, "used_bytes", json_integer((json_int_t)u[i].used_bytes));
			json_object_set_new(o, "free_bytes", json_integer((json_int_t)u[i].free_bytes));
			json_object_set_new(o, "files", json_integer((json_int_t)u[i].n_files));
			if (u[i].is_meta)
				json_object_set_new(o, "dirs", json_integer((json_int_t)u[i].n_dirs));
			else
				json_object_set_new(o, "snapshot_bytes",
						    json_integer((json_int_t)u[i].snapshot_bytes));
		}
		json_array_append_new(arr, o);
	}
	return arr;
}

/* The first columns of a df or ping row. */
static void print_server_head(int name_w, int addr_w, const char *name, int is_meta,
			      const char *address)
{
	printf("%-*s  %-4s  %-*s  ", name_w, name, is_meta ? "meta" : "io", addr_w, address);
}

static void df_print(const struct sfs_server_usage *u, unsigned n)
{
	int name_w, addr_w;
	char total[32], used[32], free_text[32], snaps[32];
	COLUMN_WIDTHS(u, n, name_w, addr_w);
	printf("%-*s  %-4s  %-*s  %10s  %10s  %10s  %8s  %10s  %s\n", name_w, "server", "role",
	       addr_w, "address", "total", "used", "free", "files", "snapshots", "status");
	for (unsigned i = 0; i < n; i++) {
		print_server_head(name_w, addr_w, u[i].name, u[i].is_meta, u[i].address);
		if (u[i].status) {
			printf("%10s  %10s  %10s  %8s  %10s  %s\n", "-", "-", "-", "-", "-",
			       server_error(u[i].status, u[i].error));
			continue;
		}
		printf("%10s  %10s  %10s  %8" PRIu64 "  %10s  ok\n",
		       format_size(u[i].total_bytes, total, sizeof(total)),
		       format_size(u[i].used_bytes, used, sizeof(used)),
		       format_size(u[i].free_bytes, free_text, sizeof(free_text)), u[i].n_files,
		       u[i].is_meta ? "-" : format_size(u[i].snapshot_bytes, snaps, sizeof(snaps)));
	}
}

static int server_command_prepare(struct cmd *c, int argc, char **argv, const char *usage,
				  unsigned *n)
{
	static const struct option longopts[] = { CMD_COMMON_LONGOPTS, { 0 } };
	int opt, rc;
	while ((opt = cmd_getopt(argc, argv, "", longopts)) != -1)
		if ((rc = cmd_option(c, opt, argv, usage)) != CMD_CONTINUE)
			return rc;
	if (optind < argc)
		return cmd_usage_error(c, "unexpected argument \"%s\"", argv[optind]);
	if ((rc = cmd_connect(c)) != 0)
		return rc;
	*n = sfs_server_count(c->fs);
	return 0;
}

/* How df and ping end: json (built only with --json) on stdout, the table
 * already printed otherwise; a server that failed fails the command. */
static int server_command_end(const struct cmd *c, int failed, json_t *json)
{
	int rc = c->json ? cmd_print_json(c, json) : SFS_EXIT_OK;
	return failed && rc == SFS_EXIT_OK ? SFS_EXIT_FAIL : rc;
}

static int cmd_df(struct cmd *c, int argc, char **argv)
{
	unsigned n = 0;
	int rc = server_command_prepare(c, argc, argv, df_usage, &n);
	if (rc != 0 || n == 0)
		return rc;
	struct sfs_server_usage *u = calloc(n, sizeof(*u));
	if (!u) {
		cmd_error(c, "out of memory");
		return SFS_EXIT_FAIL;
	}
	if ((rc = sfs_statfs(c->fs, u, n)) < 0) {
		rc = cmd_fail(c, NULL, rc);
		goto out;
	}
	int failed = 0;
	for (unsigned i = 0; i < n; i++)
		failed |= u[i].status != 0;
	if (!c->json)
		df_print(u, n);
	rc = server_command_end(c, failed, c->json ? df_json(u, n) : NULL);
out:
	free(u);
	return rc;
}

static json_t *ping_json(const struct sfs_ping_result *p, unsigned n)
{
	json_t *arr = json_array();
	for (unsigned i = 0; arr && i < n; i++) {
		json_t *o = server_record(p[i].name, p[i].is_meta, p[i].address, p[i].status,
					  p[i].error);
		if (!o)
			continue;
		if (!p[i].status) {
			json_object_set_new(o, "rtt_ms", json_real(p[i].rtt_ms));
			json_object_set_new(o, "version", json_integer(p[i].version));
		}
		json_array_append_new(arr, o);
	}
	return arr;
}

static void ping_print(const struct sfs_ping_result *p, unsigned n)
{
	int name_w, addr_w;
	COLUMN_WIDTHS(p, n, name_w, addr_w);
	printf("%-*s  %-4s  %-*s  %9s  %7s  %s\n", name_w, "server", "role", addr_w, "address",
	       "rtt_ms", "version", "status");
	for (unsigned i = 0; i < n; i++) {
		print_server_head(name_w, addr_w, p[i].name, p[i].is_meta, p[i].address);
		if (p[i].status)
			printf("%9s  %7s  %s\n", "-", "-", server_error(p[i].status, p[i].error));
		else
			printf("%9.3f  %7u  ok\n", p[i].rtt_ms, p[i].version);
	}
}

static int cmd_ping(struct cmd *c, int argc, char **argv)
{
	unsigned n = 0;
	int rc = server_command_prepare(c, argc, argv, ping_usage, &n);
	if (rc != 0 || n == 0)
		return rc;
	struct sfs_ping_result *p = calloc(n, sizeof(*p));
	if (!p) {
		cmd_error(c, "out of memory");
		return SFS_EXIT_FAIL;
	}
	if ((rc = sfs_ping(c->fs, p, n)) < 0) {
		rc = cmd_fail(c, NULL, rc);
		goto out;
	}
	int failed = 0;
	for (unsigned i = 0; i < n; i++)
		failed |= p[i].status != 0;
	if (!c->json)
		ping_print(p, n);
	rc = server_command_end(c, failed, c->json ? ping_json(p, n) : NULL);
out:
	free(p);
	return rc;
}

/* ---- setstripe, getstripe ---- */

static const char setstripe_usage[] =
	"usage: sfs setstripe [-S SIZE] [-c COUNT] DIR\n"
	"\n"
	"Set the layout new files under DIR get. Existing files keep theirs. An\n"
	"option not given keeps the directory's current value.\n"
	"\n"
	"  -S, --strip-size SIZE     strip size: 4k to 1g, a multiple of 512\n"
	"                            (k, m, g suffixes; 0 = file system default)\n"
	"  -c, --stripe-count COUNT  I/O servers per file (0 = all)\n"
	"  -h, --help                show this help\n";

static const char getstripe_usage[] =
	"usage: sfs getstripe [--json] PATH\n"
	"\n"
	"Show a file's strip size and the I/O servers of its stripe in order; for a\n"
	"directory, the layout new files under it get.\n"
	"\n"
	"      --json  one JSON object\n"
	"  -h, --help  show this help\n";

static int parse_strip_size(const struct cmd *c, const char *text, uint32_t *out)
{
	uint64_t v;
	if (parse_size(text, &v) < 0)
		return cmd_usage_error(c, "strip size \"%s\": expected a size like 64k", text);
	if (v != 0 && (v < SFS_STRIP_SIZE_MIN || v > SFS_STRIP_SIZE_MAX || v % 512 != 0))
		return cmd_usage_error(c, "strip size \"%s\": expected 4k to 1g, a multiple of 512",
				       text);
	*out = (uint32_t)v;
	return 0;
}

static int parse_stripe_count(const struct cmd *c, const char *text, unsigned *out)
{
	uint64_t v;
	if (parse_u64(text, 0, SFS_STRIPE_MAX, &v) < 0)
		return cmd_usage_error(c, "stripe count \"%s\": expected a number from 0 (all) to %d",
				       text, SFS_STRIPE_MAX);
	*out = (unsigned)v;
	return 0;
}

static int cmd_setstripe(struct cmd *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "strip-size", required_argument, NULL, 'S' },
		{ "stripe-count", required_argument, NULL, 'c' },
		CMD_COMMON_LONGOPTS,
		{ 0 },
	};
	const char *size_text = NULL, *count_text = NULL;
	int opt, rc, is_sfs;
	while ((opt = cmd_getopt(argc, argv, "S:c:", longopts)) != -1) {
		if (opt == 'S')
			size_text = optarg;
		else if (opt == 'c')
			count_text = optarg;
		else if ((rc = cmd_option(c, opt, argv, setstripe_usage)) != CMD_CONTINUE)
			return rc;
	}
	if (argc - optind != 1)
		return argc == optind
			       ? cmd_usage_error(c, "DIR is required")
			       : cmd_usage_error(c, "unexpected argument \"%s\"", argv[optind + 1]);
	if (!size_text && !count_text)
		return cmd_usage_error(c, "give -S SIZE, -c COUNT or both");
	uint32_t strip_size = 0;
	unsigned stripe_count = 0;
	if (size_text && (rc = parse_strip_size(c, size_text, &strip_size)) != 0)
		return rc;
	if (count_text && (rc = parse_stripe_count(c, count_text, &stripe_count)) != 0)
		return rc;
	const char *dir = sfs_path_strip(argv[optind], &is_sfs);
	if ((rc = cmd_connect(c)) != 0)
		return rc;
	if (stripe_count > c->conf->n_io)
		return cmd_usage_error(c, "stripe count %u: the file system has %u I/O servers",
				       stripe_count, c->conf->n_io);
	/* "0 = all": the file system default is all only when its stripe_count is 0. */
	if (count_text && stripe_count == 0 && c->conf->stripe_count != 0)
		stripe_count = c->conf->n_io;

	struct sfs_stat st;
	if ((rc = sfs_stat(c->fs, dir, &st)) < 0)
		return cmd_fail(c, dir, rc);
	if (st.type != SFS_STAT_DIR) {
		cmd_error(c, "%s: not a directory (setstripe sets a directory's default)", dir);
		return SFS_EXIT_FAIL;
	}
	if (!size_text)
		strip_size = st.strip_size;
	if (!count_text)
		stripe_count = st.stripe_count;
	if ((rc = sfs_setstripe(c->fs, dir, strip_size, stripe_count)) < 0)
		return cmd_fail(c, dir, rc);
	return SFS_EXIT_OK;
}

static json_t *server_json(const struct cmd *c, unsigned io)
{
	char addr[192];
	return json_pack("{s:i, s:s, s:s}", "index", (int)io, "name", io_name(c, io), "address",
			 io_address(c, io, addr, sizeof(addr)));
}

static json_t *getstripe_json(const struct cmd *c, const char *path, const struct sfs_stat *st)
{
	uint32_t strip_size;
	unsigned stripe_count;
	effective_layout(c, st, &strip_size, &stripe_count);
	json_t *o = json_pack("{s:s, s:s, s:I, s:i}", "path", path, "type", type_name(st->type),
			      "strip_size", (json_int_t)strip_size, "stripe_count",
			      (int)stripe_count);
	if (!o)
		return NULL;
	json_t *servers = json_array();
	if (st->type == SFS_STAT_DIR) {
		json_object_set_new(o, "strip_size_is_default", json_boolean(st->strip_size == 0));
		json_object_set_new(o, "stripe_count_is_default",
				    json_boolean(st->stripe_count == 0));
		for (unsigned i = 0; i < c->conf->n_io; i++)
			json_array_append_new(servers, server_json(c, i));
		json_object_set_new(o, "candidates", servers);
		return o;
	}
	for (unsigned i = 0; i < st->stripe_count && i < SFS_STRIPE_MAX; i++) {
		json_t *s = server_json(c, st->servers[i]);
		json_object_set_new(s, "position", json_integer(i));
		json_array_append_new(servers, s);
	}
	json_object_set_new(o, "servers", servers);
	return o;
}

static void getstripe_print(const struct cmd *c, const char *path, const struct sfs_stat *st)
{
	char size[32], addr[192];
	uint32_t strip_size;
	unsigned stripe_count;
	int is_dir = st->type == SFS_STAT_DIR;
	effective_layout(c, st, &strip_size, &stripe_count);
	printf("path:          %s%s\n", path, is_dir ? " (directory: layout of new files)" : "");
	printf("strip_size:    %s (%" PRIu32 ")%s\n", format_size(strip_size, size, sizeof(size)),
	       strip_size, is_dir && st->strip_size == 0 ? ", file system default" : "");
	printf("stripe_count:  %u%s\n", stripe_count,
	       is_dir && st->stripe_count == 0 ? ", file system default" : "");
	if (is_dir) {
		printf("servers:       %u of these, chosen when each file is created:\n",
		       stripe_count);
		for (unsigned i = 0; i < c->conf->n_io; i++)
			printf("  %-12s %s\n", io_name(c, i), io_address(c, i, addr, sizeof(addr)));
		return;
	}
	printf("servers:       in stripe order\n");
	printf("  %-3s  %-12s %s\n", "pos", "server", "address");
	for (unsigned i = 0; i < stripe_count && i < SFS_STRIPE_MAX; i++)
		printf("  %-3u  %-12s %s\n", i, io_name(c, st->servers[i]),
		       io_address(c, st->servers[i], addr, sizeof(addr)));
}

static int cmd_getstripe(struct cmd *c, int argc, char **argv)
{
	static const struct option longopts[] = { CMD_COMMON_LONGOPTS, { 0 } };
	int opt, rc, is_sfs;
	while ((opt = cmd_getopt(argc, argv, "", longopts)) != -1)
		if ((rc = cmd_option(c, opt, argv, getstripe_usage)) != CMD_CONTINUE)
			return rc;
	if (argc - optind != 1)
		return argc == optind
			       ? cmd_usage_error(c, "PATH is required")
			       : cmd_usage_error(c, "unexpected argument \"%s\"", argv[optind + 1]);
	const char *path = sfs_path_strip(argv[optind], &is_sfs);
	if ((rc = cmd_connect(c)) != 0)
		return rc;
	struct sfs_stat st;
	if ((rc = sfs_stat(c->fs, path, &st)) < 0)
		return cmd_fail(c, path, rc);
	if (c->json)
		return cmd_print_json(c, getstripe_json(c, path, &st));
	getstripe_print(c, path, &st);
	return SFS_EXIT_OK;
}

/* ---- dispatch ---- */

const struct subcmd subcmds[] = {
	{ "genconfig", cmd_genconfig, genconfig_usage, "write a loopback sfs.conf" },
	{ "ls", cmd_ls, ls_usage, "list a directory" },
	{ "stat", cmd_stat, stat_usage, "show a file's attributes and layout" },
	{ "cp", cmd_cp, cmd_cp_usage, "copy a file into, out of or within sfs" },
	{ "cat", cmd_cat, cmd_cat_usage, "write files to stdout" },
	{ "rm", cmd_rm, rm_usage, "remove files" },
	{ "mkdir", cmd_mkdir, mkdir_usage, "create directories" },
	{ "rmdir", cmd_rmdir, rmdir_usage, "remove empty directories" },
	{ "df", cmd_df, df_usage, "usage of every server" },
	{ "setstripe", cmd_setstripe, setstripe_usage, "set a directory's layout for new files" },
	{ "getstripe", cmd_getstripe, getstripe_usage, "show a file's layout" },
	{ "ping", cmd_ping, ping_usage, "round trip and version of every server" },
	{ "snapshot", cmd_snapshot, cmd_snapshot_usage, "create, list, remove, roll back snapshots" },
	{ "fsck", cmd_fsck, cmd_fsck_usage, "find leaked or missing datafiles" },
#ifdef SFS_HAVE_FUSE
	{ "mount", cmd_mount, cmd_mount_usage, "mount sfs through FUSE (see sfs-mount(8))" },
	{ "umount", cmd_umount, cmd_umount_usage, "unmount an sfs mount" },
#endif
};
const size_t n_subcmds = ARRAY_SIZE(subcmds);

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sfs [-c CONF] [-o KEY=VALUE]... [--json] [-q] SUBCOMMAND [ARGS]\n"
		"\n"
		"The command-line client of the sfs parallel file system. Paths on the file\n"
		"system are written sfs:/path (cp needs the prefix; other subcommands take\n"
		"it or not); local paths are plain.\n"
		"\n"
		"Subcommands (sfs SUBCOMMAND --help for each):\n");
	for (size_t i = 0; i < ARRAY_SIZE(subcmds); i++)
		fprintf(out, "  %-10s  %s\n", subcmds[i].name, subcmds[i].summary);
	fprintf(out,
		"\n"
		"Options:\n"
		"  -c, --config CONF  the sfs.conf to use (default: $SFS_CONF)\n"
		"  -o KEY=VALUE       override a [global] option of the config (repeatable)\n"
		"      --json         print records and tables as JSON\n"
		"  -q, --quiet        no progress bar and no summary\n"
		"  -h, --help         show this help\n"
		"      --version      show the version\n"
		"\n"
		"Exit status: 0 success, 1 the operation failed, 2 usage error,\n"
		"3 no usable config, or a server refused the connection or has no route.\n"
		"\n"
		"Options for -o:\n");
	sfs_conf_describe(out);
}

/* Global options; returns CMD_CONTINUE with *sub_index set, or an exit code. */
static int parse_global(struct cmd *c, int argc, char **argv, int *sub_index)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_SUBCMD_BASE },
		{ 0 },
	};
	size_t n_overrides = 0;
	int opt;
	c->overrides = calloc((size_t)argc + 1, sizeof(*c->overrides));
	if (!c->overrides) {
		cmd_error(c, "out of memory");
		return SFS_EXIT_FAIL;
	}
	while ((opt = getopt_long(argc, argv, "+:c:o:qh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': c->conf_path = optarg; break;
		case 'o': c->overrides[n_overrides++] = optarg; break;
		case OPT_SUBCMD_BASE:
			printf("sfs (migd) %s, sfs protocol %d\n", MIGD_VERSION, SFS_PROTO_VERSION);
			return SFS_EXIT_OK;
		case 'h':
			usage(stdout);
			return SFS_EXIT_OK;
		default: {
			int rc = cmd_option(c, opt, argv, "");
			if (rc != CMD_CONTINUE)
				return rc;
		}
		}
	}
	if (optind >= argc)
		return cmd_usage_error(c, "no subcommand (ls, cp, df, ...)");
	*sub_index = optind;
	return CMD_CONTINUE;
}

int main(int argc, char **argv)
{
	struct cmd c = { 0 };
	int sub_index = 0;
	log_init("sfs", 0);
	log_set_level(LOG_LEVEL_WARN);
	opterr = 0;
	if (argc > 1 && strcmp(argv[1], "__complete") == 0) /* for dist/completion/sfs */
		return sfs_complete(argc - 2, argv + 2);

	int rc = parse_global(&c, argc, argv, &sub_index);
	if (rc != CMD_CONTINUE)
		goto out;
	const char *name = argv[sub_index];
	const struct subcmd *sub = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(subcmds); i++)
		if (strcmp(subcmds[i].name, name) == 0)
			sub = &subcmds[i];
	if (!sub && strcmp(name, "help") == 0) {
		for (size_t i = 0; sub_index + 1 < argc && i < ARRAY_SIZE(subcmds); i++)
			if (strcmp(subcmds[i].name, argv[sub_index + 1]) == 0)
				sub = &subcmds[i];
		if (sub)
			fputs(sub->usage, stdout);
		else
			usage(stdout);
		rc = SFS_EXIT_OK;
		goto out;
	}
	if (!sub) {
		rc = cmd_usage_error(&c, "unknown subcommand \"%s\"", name);
		goto out;
	}
	c.name = sub->name;
	optind = 0; /* glibc: start getopt afresh on the subcommand's arguments */
	rc = sub->run(&c, argc - sub_index, argv + sub_index);
	/* A table that did not reach stdout (full disk, closed pipe) is a failure. */
	if ((fflush(stdout) != 0 || ferror(stdout)) && rc == SFS_EXIT_OK) {
		cmd_error(&c, "writing to stdout: %s", strerror(errno));
		rc = SFS_EXIT_FAIL;
	}
out:
	sfs_disconnect(c.fs);
	free(c.conf);
	free(c.overrides);
	return rc;
}
