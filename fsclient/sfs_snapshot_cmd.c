/*
 * sfs_snapshot_cmd: `sfs snapshot create|list|rm|rollback` and `sfs fsck`,
 * thin over libsfs's snapshot calls, in their own file because they are
 * one concern (snapshots and the check that they leak nothing) and
 * sfs_cmd.c is the namespace's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sfs_cmd.h"
#include "util.h"

const char cmd_snapshot_usage[] =
	"usage: sfs snapshot create NAME [--path DIR]\n"
	"       sfs snapshot list [--json]\n"
	"       sfs snapshot rm NAME\n"
	"       sfs snapshot rollback NAME [--force]\n"
	"\n"
	"Snapshots: consistent, read-only copies of a directory tree over every\n"
	"server, taken without copying data. A snapshot's files are read under\n"
	"sfs:/.snapshots/NAME/ (ls, stat, cp, cat), without a rollback.\n"
	"\n"
	"  create NAME    snapshot DIR (default: the whole file system) as NAME;\n"
	"                 fails wholly unless every server joins the barrier within\n"
	"                 snapshot_barrier_timeout_ms\n"
	"  list           name, path, time, files, directories and the bytes each\n"
	"                 snapshot alone keeps on the I/O servers\n"
	"  rm NAME        remove the snapshot and free what only it keeps\n"
	"  rollback NAME  return the snapshot's directory to exactly its state at\n"
	"                 the snapshot; refused while a file there is being\n"
	"                 written (within the last second) unless --force\n"
	"\n"
	"  -p, --path DIR  create: the directory to snapshot\n"
	"  -f, --force     rollback: even while files are being written\n"
	"      --json      list: an array of records\n"
	"  -h, --help      show this help\n";

const char cmd_fsck_usage[] =
	"usage: sfs fsck [--json]\n"
	"\n"
	"Check every I/O server's datafiles against the namespace and the\n"
	"snapshots: datafiles no file names (leaked, e.g. by a crash), snapshot\n"
	"datafiles of no snapshot, and datafiles a file names that are missing.\n"
	"The metadata server logs each one. Exit status 1 if any is found.\n"
	"\n"
	"      --json  one record of counts\n"
	"  -h, --help  show this help\n";

enum { OPT_PATH = OPT_SUBCMD_BASE, OPT_FORCE };

static void format_time(int64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;
	if (!localtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "%" PRId64, ns);
}

static json_t *snapshot_json(const struct sfs_snapshot *s)
{
	return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "name", s->name, "path", s->path,
			 "id", (json_int_t)s->id, "created_ns", (json_int_t)s->created_ns, "files",
			 (json_int_t)s->n_files, "dirs", (json_int_t)s->n_dirs, "pinned_bytes",
			 (json_int_t)s->pinned_bytes);
}

struct list_state {
	json_t *arr;
	unsigned n;
};

static int list_one(void *arg, const struct sfs_snapshot *s)
{
	struct list_state *st = arg;
	char when[64], pinned[32];
	if (st->arr) {
		json_array_append_new(st->arr, snapshot_json(s));
		return 0;
	}
	if (st->n++ == 0)
		printf("%-20s  %-19s  %8s  %6s  %10s  %s\n", "name", "created", "files", "dirs",
		       "pinned", "path");
	format_time(s->created_ns, when, sizeof(when));
	printf("%-20s  %-19s  %8" PRIu64 "  %6" PRIu64 "  %10s  %s\n", s->name, when, s->n_files,
	       s->n_dirs, format_size(s->pinned_bytes, pinned, sizeof(pinned)), s->path);
	return 0;
}

static int snapshot_list(struct cmd *c)
{
	struct list_state st = { .arr = c->json ? json_array() : NULL };
	int rc = sfs_snapshot_list(c->fs, list_one, &st);
	if (rc < 0) {
		json_decref(st.arr);
		return cmd_fail(c, NULL, rc);
	}
	if (c->json)
		return cmd_print_json(c, st.arr);
	if (st.n == 0 && !c->quiet)
		printf("no snapshots\n");
	return SFS_EXIT_OK;
}

int cmd_snapshot(struct cmd *c, int argc, char **argv)
{
	static const struct option longopts[] = { CMD_COMMON_LONGOPTS,
						  { "path", required_argument, NULL, 'p' },
						  { "force", no_argument, NULL, 'f' },
						  { 0 } };
	const char *path = NULL;
	int force = 0, opt, rc;
	while ((opt = cmd_getopt(argc, argv, "p:f", longopts)) != -1) {
		if (opt == 'p')
			path = optarg;
		else if (opt == 'f')
			force = 1;
		else if ((rc = cmd_option(c, opt, argv, cmd_snapshot_usage)) != CMD_CONTINUE)
			return rc;
	}
	if (optind >= argc)
		return cmd_usage_error(c, "an action is required: create, list, rm or rollback");
	const char *action = argv[optind++];
	int is_list = strcmp(action, "list") == 0;
	if (!is_list && strcmp(action, "create") != 0 && strcmp(action, "rm") != 0 &&
	    strcmp(action, "rollback") != 0)
		return cmd_usage_error(c, "unknown action \"%s\" (create, list, rm, rollback)",
				       action);
	if (!is_list && optind >= argc)
		return cmd_usage_error(c, "%s: NAME is required", action);
	if (optind + (is_list ? 0 : 1) < argc)
		return cmd_usage_error(c, "unexpected argument \"%s\"", argv[optind + !is_list]);
	if (path && strcmp(action, "create") != 0)
		return cmd_usage_error(c, "--path belongs to create, not %s", action);
	if (force && strcmp(action, "rollback") != 0)
		return cmd_usage_error(c, "--force belongs to rollback, not %s", action);
	if ((rc = cmd_connect(c)) != 0)
		return rc;
	if (is_list)
		return snapshot_list(c);
	const char *name = argv[optind];
	int is_sfs;
	if (strcmp(action, "create") == 0) {
		struct sfs_snapshot s;
		rc = sfs_snapshot_create(c->fs, name, path ? sfs_path_strip(path, &is_sfs) : NULL,
					 &s);
		if (rc == 0 && c->json)
			return cmd_print_json(c, snapshot_json(&s));
		if (rc == 0 && !c->quiet)
			printf("snapshot %s of %s: %" PRIu64 " files, %" PRIu64 " directories\n",
			       s.name, s.path, s.n_files, s.n_dirs);
	} else if (strcmp(action, "rm") == 0) {
		rc = sfs_snapshot_rm(c->fs, name);
	} else {
		rc = sfs_snapshot_rollback(c->fs, name, force ? SFS_ROLLBACK_FORCE : 0);
	}
	return rc < 0 ? cmd_fail(c, NULL, rc) : SFS_EXIT_OK;
}

int cmd_fsck(struct cmd *c, int argc, char **argv)
{
	static const struct option longopts[] = { CMD_COMMON_LONGOPTS, { 0 } };
	struct sfs_fsck_report r;
	int opt, rc;
	while ((opt = cmd_getopt(argc, argv, "", longopts)) != -1)
		if ((rc = cmd_option(c, opt, argv, cmd_fsck_usage)) != CMD_CONTINUE)
			return rc;
	if (optind < argc)
		return cmd_usage_error(c, "unexpected argument \"%s\"", argv[optind]);
	if ((rc = cmd_connect(c)) != 0)
		return rc;
	if ((rc = sfs_fsck(c->fs, &r)) < 0)
		return cmd_fail(c, NULL, rc);
	int bad = r.leaked_datafiles || r.leaked_snapshots || r.missing_datafiles;
	if (c->json) {
		rc = cmd_print_json(c, json_pack("{s:I, s:I, s:I}", "leaked_datafiles",
						 (json_int_t)r.leaked_datafiles, "leaked_snapshots",
						 (json_int_t)r.leaked_snapshots, "missing_datafiles",
						 (json_int_t)r.missing_datafiles));
		return rc ? rc : bad ? SFS_EXIT_FAIL : SFS_EXIT_OK;
	}
	printf("leaked datafiles: %" PRIu64 "\nleaked snapshot datafiles: %" PRIu64
	       "\nmissing datafiles: %" PRIu64 "\n%s\n", r.leaked_datafiles, r.leaked_snapshots,
	       r.missing_datafiles, bad ? "problems found (see the metadata server's log)" : "clean");
	return bad ? SFS_EXIT_FAIL : SFS_EXIT_OK;
}
