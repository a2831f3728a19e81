/*
 * mount_cmd: `sfs mount` and `sfs umount`.
 *
 * Everything that can be wrong is checked before anything is mounted, with
 * a message naming the bad value: the options (our own and the kernel's
 * mount options we pass on, an allow-list so that a typo is an error here
 * and not a cryptic one from libfuse), the mount point (must be a
 * directory), the config, and the servers (a stat of the root must answer,
 * so an unreachable file system is refused rather than mounted and hung).
 * Only then does the session mount, daemonize (unless -f), and connect the
 * libsfs client that serves it: connecting after the fork keeps libsfs's
 * control-point thread, which migagent's quiesce talks to, in the process
 * that does the I/O.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "mount.h"
#include "sfs_cmd.h"

#define FUSE_OPTS_BYTES 4096
#define MAX_THREADS_DEFAULT 64 /* quiesce blocks a thread per request in flight */

const char cmd_mount_usage[] =
	"usage: sfs mount [-c CONF] MOUNTPOINT [-o OPTION[,OPTION...]] [-f] [-d]\n"
	"\n"
	"Mount sfs at MOUNTPOINT (a directory) through FUSE. Unmount with\n"
	"`sfs umount MOUNTPOINT` or `fusermount3 -u MOUNTPOINT`.\n"
	"\n"
	"  -c, --config CONF  the sfs.conf (default: the global -c, else $SFS_CONF)\n"
	"  -o OPTIONS         comma-separated mount options (repeatable):\n"
	"        cache              page cache and 60 s attribute cache: for one client\n"
	"                           only (default: direct I/O, coherent across clients)\n"
	"        attr_timeout=SECS  how long attributes are cached (default 1, cache: 60)\n"
	"        entry_timeout=SECS how long names are cached (default 1, cache: 60)\n"
	"        max_threads=N      FUSE worker threads (default 64)\n"
	"        allow_other, ro, rw, nosuid, suid, nodev, dev, noexec, exec, noatime,\n"
	"        atime, relatime, sync, async, dirsync, auto_unmount, fsname=NAME,\n"
	"        subtype=NAME: passed to the kernel\n"
	"  -f, --foreground   stay in the foreground, log to stderr\n"
	"  -d, --debug        print every FUSE request (implies -f)\n"
	"  -h, --help         show this help\n"
	"\n"
	"fcntl and flock locks hold across every client of the file system; hard\n"
	"links fail with EPERM; see sfs-mount(8).\n";

const char cmd_umount_usage[] =
	"usage: sfs umount [-z] MOUNTPOINT\n"
	"\n"
	"Unmount an sfs mount (as fusermount3 -u does); the mount process exits.\n"
	"\n"
	"  -z, --lazy  detach now, finish when the mount is no longer busy\n"
	"  -h, --help  show this help\n";

struct mount_args {
	const char *mountpoint;
	int foreground, debug;
	unsigned max_threads;
	struct mount_opts opts;
	char fuse_opts[FUSE_OPTS_BYTES]; /* passed to the kernel, comma-separated */
};

/* Kernel and libfuse mount options we pass on unchanged. */
static const char *const pass_flags[] = {
	"allow_other", "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec",
	"noatime", "atime", "relatime", "nodiratime", "sync", "async", "dirsync", "auto_unmount",
};
static const char *const pass_values[] = { "fsname=", "subtype=" };

static int append_fuse_opt(struct mount_args *a, const char *opt)
{
	size_t used = strlen(a->fuse_opts), len = strlen(opt);
	if (used + 1 + len + 1 > sizeof(a->fuse_opts))
		return -1;
	if (used)
		a->fuse_opts[used++] = ',';
	memcpy(a->fuse_opts + used, opt, len + 1);
	return 0;
}

static int parse_seconds(const struct cmd *c, const char *opt, const char *text, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(text, &end);
	if (errno || end == text || *end || v < 0 || v > 86400)
		return cmd_usage_error(c, "-o %s: expected seconds from 0 to 86400", opt);
	*out = v;
	return 0;
}

/* One option of -o. 0, or the exit code. */
static int mount_option(const struct cmd *c, struct mount_args *a, const char *opt)
{
	const char *eq = strchr(opt, '=');
	if (strcmp(opt, "cache") == 0) {
		a->opts.cache = 1;
		return 0;
	}
	if (strcmp(opt, "direct_io") == 0 || strcmp(opt, "nocache") == 0) {
		a->opts.cache = 0;
		return 0;
	}
	if (strncmp(opt, "attr_timeout=", 13) == 0)
		return parse_seconds(c, opt, eq + 1, &a->opts.attr_timeout_s);
	if (strncmp(opt, "entry_timeout=", 14) == 0)
		return parse_seconds(c, opt, eq + 1, &a->opts.entry_timeout_s);
	if (strncmp(opt, "max_threads=", 12) == 0) {
		char *end;
		unsigned long n = strtoul(eq + 1, &end, 10);
		if (end == eq + 1 || *end || n < 1 || n > 1024)
			return cmd_usage_error(c, "-o %s: expected a thread count from 1 to 1024",
					       opt);
		a->max_threads = (unsigned)n;
		return 0;
	}
	for (size_t i = 0; i < sizeof(pass_flags) / sizeof(pass_flags[0]); i++)
		if (strcmp(opt, pass_flags[i]) == 0)
			return append_fuse_opt(a, opt) == 0
				       ? 0 : cmd_usage_error(c, "-o: too many options");
	for (size_t i = 0; i < sizeof(pass_values) / sizeof(pass_values[0]); i++)
		if (strncmp(opt, pass_values[i], strlen(pass_values[i])) == 0 &&
		    !strchr(opt, '\\'))
			return append_fuse_opt(a, opt) == 0
				       ? 0 : cmd_usage_error(c, "-o: too many options");
	return cmd_usage_error(c, "-o %s: unknown mount option (sfs mount --help lists them)",
			       opt);
}

static int mount_options(const struct cmd *c, struct mount_args *a, const char *list)
{
	char *copy = strdup(list), *save = NULL;
	int rc = copy ? 0 : SFS_EXIT_FAIL;
	for (char *opt = copy ? strtok_r(copy, ",", &save) : NULL; opt && rc == 0;
	     opt = strtok_r(NULL, ",", &save))
		rc = mount_option(c, a, opt);
	free(copy);
	return rc;
}

static int mount_parse(struct cmd *c, int argc, char **argv, struct mount_args *a)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "debug", no_argument, NULL, 'd' },
		CMD_COMMON_LONGOPTS,
		{ 0 },
	};
	int opt, rc;
	while ((opt = cmd_getopt(argc, argv, "c:o:fd", longopts)) != -1) {
		switch (opt) {
		case 'c': c->conf_path = optarg; break;
		case 'o':
			rc = mount_options(c, a, optarg);
			if (rc)
				return rc;
			break;
		case 'f': a->foreground = 1; break;
		case 'd': a->foreground = a->debug = 1; break;
		default:
			rc = cmd_option(c, opt, argv, cmd_mount_usage);
			if (rc != CMD_CONTINUE)
				return rc;
		}
	}
	if (optind + 1 != argc)
		return cmd_usage_error(c, optind >= argc ? "no MOUNTPOINT"
							 : "one MOUNTPOINT expected, got more");
	a->mountpoint = argv[optind];
	return CMD_CONTINUE;
}

/* The mount point must be a directory; its absolute path into abs. */
static int check_mountpoint(const struct cmd *c, const char *mnt, char *abs)
{
	struct stat st;
	if (stat(mnt, &st) < 0) {
		cmd_error(c, "mount point %s: %s", mnt, strerror(errno));
		return SFS_EXIT_USAGE;
	}
	if (!S_ISDIR(st.st_mode)) {
		cmd_error(c, "mount point %s: not a directory", mnt);
		return SFS_EXIT_USAGE;
	}
	if (!realpath(mnt, abs)) {
		cmd_error(c, "mount point %s: %s", mnt, strerror(errno));
		return SFS_EXIT_USAGE;
	}
	return 0;
}

/* Config loads and the servers answer: a stat of the root through a
 * client that is thrown away before the fork. */
static int check_servers(struct cmd *c, char *conf_abs)
{
	struct sfs_stat st;
	const char *path = c->conf_path ? c->conf_path : getenv("SFS_CONF");
	if (path && *path && !realpath(path, conf_abs)) {
		cmd_error(c, "config %s: %s", path, strerror(errno));
		return SFS_EXIT_CONNECT;
	}
	if (path && *path)
		c->conf_path = conf_abs; /* the daemon runs in / */
	int rc = cmd_connect(c);
	if (rc)
		return rc;
	rc = sfs_stat(c->fs, "/", &st);
	if (rc < 0) {
		cmd_error(c, "the file system does not answer, nothing was mounted: %s",
			  sfs_last_error());
		rc = cmd_exit_code(rc) == SFS_EXIT_FAIL ? SFS_EXIT_FAIL : SFS_EXIT_CONNECT;
	}
	sfs_disconnect(c->fs);
	c->fs = NULL;
	return rc;
}

static int fuse_args_build(const struct cmd *c, struct mount_args *a, struct fuse_args *args)
{
	char opts[FUSE_OPTS_BYTES + 1024];
	snprintf(opts, sizeof(opts),
		 "max_read=%u,default_permissions,subtype=sfs,fsname=sfs:%s%s%s%s",
		 MOUNT_IO_BYTES, c->conf_path ? c->conf_path : "", geteuid() == 0 ? ",allow_other" : "",
		 a->fuse_opts[0] ? "," : "", a->fuse_opts);
	if (fuse_opt_add_arg(args, "sfs") || fuse_opt_add_arg(args, "-o") ||
	    fuse_opt_add_arg(args, opts) || (a->debug && fuse_opt_add_arg(args, "-d")))
		return -ENOMEM;
	return 0;
}

/* Serve until unmounted or signalled; the process is daemonized already. */
static int serve(struct cmd *c, struct fuse_session *se, struct mount *m, unsigned max_threads)
{
	struct sfs *fs;
	int rc = sfs_connect(c->conf_path, c->overrides, &fs);
	if (rc < 0) {
		log_warnx("connecting: %s", sfs_last_error());
		return SFS_EXIT_CONNECT;
	}
	mount_set_fs(m, fs);
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	if (!cfg) {
		sfs_disconnect(fs);
		return SFS_EXIT_FAIL;
	}
	fuse_loop_cfg_set_clone_fd(cfg, 1);
	fuse_loop_cfg_set_max_threads(cfg, max_threads);
	fuse_loop_cfg_set_idle_threads(cfg, 16);
	rc = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	sfs_disconnect(fs);
	if (rc < 0)
		log_warnx("FUSE session ended: %s", strerror(-rc));
	return rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? SFS_EXIT_OK : SFS_EXIT_FAIL;
}

int cmd_mount(struct cmd *c, int argc, char **argv)
{
	struct mount_args a = { .max_threads = MAX_THREADS_DEFAULT,
				.opts = { .attr_timeout_s = -1, .entry_timeout_s = -1 } };
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct mount *m = NULL;
	char mnt[PATH_MAX], conf_abs[PATH_MAX];
	int rc = mount_parse(c, argc, argv, &a);
	if (rc != CMD_CONTINUE)
		return rc;
	rc = check_mountpoint(c, a.mountpoint, mnt);
	if (rc == 0)
		rc = check_servers(c, conf_abs);
	if (rc)
		return rc;
	rc = SFS_EXIT_FAIL;
	m = mount_new(&a.opts);
	if (!m || fuse_args_build(c, &a, &args) < 0) {
		cmd_error(c, "out of memory");
		goto out;
	}
	se = fuse_session_new(&args, mount_ops(), sizeof(*mount_ops()), m);
	if (!se) {
		cmd_error(c, "libfuse refused the options (its reason is above)");
		goto out;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		cmd_error(c, "cannot install signal handlers");
		goto out;
	}
	if (fuse_session_mount(se, mnt) != 0) {
		cmd_error(c, "mounting on %s failed (the reason is above; is /dev/fuse there "
			  "and fuse loaded?)", mnt);
		goto out_signals;
	}
	if (fuse_daemonize(a.foreground) != 0) {
		cmd_error(c, "cannot go to the background");
		goto out_unmount;
	}
	log_init("sfs-mount", !a.foreground);
	log_set_level(a.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	rc = serve(c, se, m, a.max_threads);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out:
	if (se)
		fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	mount_free(m);
	return rc;
}

/* Non-root users unmount through the setuid helper, as with any FUSE mount. */
static int fusermount_unmount(const struct cmd *c, const char *mnt, int lazy)
{
	pid_t pid = fork();
	if (pid < 0) {
		cmd_error(c, "fork: %s", strerror(errno));
		return SFS_EXIT_FAIL;
	}
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", lazy ? "-uz" : "-u", "--", mnt, (char *)NULL);
		fprintf(stderr, "sfs: umount: fusermount3: %s\n", strerror(errno));
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? SFS_EXIT_OK : SFS_EXIT_FAIL;
}

int cmd_umount(struct cmd *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "lazy", no_argument, NULL, 'z' },
		CMD_COMMON_LONGOPTS,
		{ 0 },
	};
	int opt, lazy = 0, rc;
	while ((opt = cmd_getopt(argc, argv, "z", longopts)) != -1) {
		if (opt == 'z') {
			lazy = 1;
			continue;
		}
		rc = cmd_option(c, opt, argv, cmd_umount_usage);
		if (rc != CMD_CONTINUE)
			return rc;
	}
	if (optind + 1 != argc)
		return cmd_usage_error(c, "one MOUNTPOINT expected");
	const char *mnt = argv[optind];
	if (geteuid() != 0)
		return fusermount_unmount(c, mnt, lazy);
	if (umount2(mnt, lazy ? MNT_DETACH : 0) < 0) {
		cmd_error(c, "%s: %s", mnt, errno == EINVAL ? "not a mount point" : strerror(errno));
		return SFS_EXIT_FAIL;
	}
	return SFS_EXIT_OK;
}
