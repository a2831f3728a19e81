/*
 * sfs_cmd.h: what the two halves of the sfs command share.
 *
 * sfs_cmd.c holds main, option parsing, dispatch and the namespace and info
 * subcommands; sfs_copy.c holds the data movers (cp, cat). Both report
 * errors and exit codes the same way, through the helpers declared here, so
 * that every message reads "sfs: <subcommand>: ..." and every failure maps
 * to one of the documented exit codes (see man/sfs.1).
 */
#ifndef SFS_CMD_H
#define SFS_CMD_H

#include <getopt.h>
#include <jansson.h>

#include "sfs.h"
#include "sfs_conf.h"

/* Exit codes, documented in sfs(1). */
#define SFS_EXIT_OK 0
#define SFS_EXIT_FAIL 1     /* the operation failed */
#define SFS_EXIT_USAGE 2    /* bad option or argument */
#define SFS_EXIT_CONNECT 3  /* no config, config not loadable, server unreachable */

/* Returned by cmd_option() when parsing should go on. */
#define CMD_CONTINUE (-1)

/* Long-only option values common to every subcommand. */
enum { OPT_JSON = 0x100, OPT_SUBCMD_BASE = 0x200 };

/* Added to every subcommand's long options: --help, --json, --quiet. */
#define CMD_COMMON_LONGOPTS                                   \
	{ "help", no_argument, NULL, 'h' },                   \
	{ "json", no_argument, NULL, OPT_JSON },              \
	{ "quiet", no_argument, NULL, 'q' }

/* One run of the command: global options and, once connected, the fs. */
struct cmd {
	const char *name;              /* subcommand, for messages */
	const char *conf_path;         /* -c, else $SFS_CONF, else NULL */
	const char **overrides;        /* -o KEY=VALUE, NULL-ended */
	int json;
	int quiet;
	struct sfs *fs;                /* set by cmd_connect */
	struct sfs_conf *conf;         /* the config in effect, set by cmd_connect */
};

/* "sfs: <name>: <message>\n" on stderr. */
void cmd_error(const struct cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like cmd_error plus a hint to --help; returns SFS_EXIT_USAGE. */
int cmd_usage_error(const struct cmd *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * Handle an option every subcommand shares (-h/--help, --json, -q) or a
 * getopt error ('?', ':'). Returns CMD_CONTINUE, or the exit code to end with
 * (0 after printing usage for --help, SFS_EXIT_USAGE after an error).
 */
int cmd_option(struct cmd *c, int opt, char **argv, const char *usage);
/* getopt_long with the project's conventions (quiet getopt, ':' reporting);
 * optstring must not start with '+' or ':'. */
int cmd_getopt(int argc, char **argv, const char *optstring, const struct option *longopts);

/* Load the config and connect. Returns 0 or the exit code to end with. */
int cmd_connect(struct cmd *c);
/*
 * Report a failed libsfs call on path (err: its negative errno), using the
 * calling thread's sfs_last_error(). Returns the exit code to end with.
 */
int cmd_fail(const struct cmd *c, const char *path, int err);
/* Same, with a message captured earlier (e.g. in another thread). */
int cmd_fail_msg(const struct cmd *c, const char *path, int err, const char *msg);
/* The exit code for a libsfs error err: SFS_EXIT_CONNECT when a server
 * refused the connection or could not be reached (no route),
 * SFS_EXIT_FAIL otherwise (a timeout too). */
int cmd_exit_code(int err);

/* Print a JSON value on stdout and release it. Returns 0 or SFS_EXIT_FAIL. */
int cmd_print_json(const struct cmd *c, json_t *value);

/* "sfs:/a/b" -> "/a/b" with *is_sfs = 1; anything else unchanged, 0. */
const char *sfs_path_strip(const char *arg, int *is_sfs);
/* dir + "/" + name into a new string (caller frees); NULL if out of memory. */
char *path_join(const char *dir, const char *name);
/* The last component of path (trailing slashes ignored), in a new string. */
char *path_base(const char *path);

/* Subcommands of sfs_copy.c. */
int cmd_cp(struct cmd *c, int argc, char **argv);
int cmd_cat(struct cmd *c, int argc, char **argv);
extern const char cmd_cp_usage[];
extern const char cmd_cat_usage[];

/* Subcommands of sfs_snapshot_cmd.c. */
int cmd_snapshot(struct cmd *c, int argc, char **argv);
int cmd_fsck(struct cmd *c, int argc, char **argv);
extern const char cmd_snapshot_usage[];
extern const char cmd_fsck_usage[];
/* Subcommands of mount_cmd.c (built when libfuse3 is found). */
int cmd_mount(struct cmd *c, int argc, char **argv);
int cmd_umount(struct cmd *c, int argc, char **argv);
extern const char cmd_mount_usage[];
extern const char cmd_umount_usage[];

/* The subcommands (sfs_cmd.c). */
struct subcmd {
	const char *name;
	int (*run)(struct cmd *c, int argc, char **argv);
	const char *usage;
	const char *summary;
};
extern const struct subcmd subcmds[];
extern const size_t n_subcmds;

/* `sfs __complete WORD... CUR` (sfs_complete.c): the completions of CUR
 * after WORDs, one per line, for dist/completion/sfs. Exit 0. */
int sfs_complete(int argc, char **argv);

#endif
