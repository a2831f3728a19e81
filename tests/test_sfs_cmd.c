/*
 * The sfs command end to end, against real sfsd processes: copies in and
 * out keep every byte, getstripe shows the layout setstripe asked for,
 * --json output parses, and bad input of every kind gets the documented
 * exit code and a message naming the bad value.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsfixture.h"
#include "sfs_proto.h"

static struct fsfix fx;
static char out[1 << 16], err[1 << 16];

static void setup(void) { fsfix_start(&fx, 3, NULL); }
static void teardown(void) { fsfix_stop(&fx); }

TestSuite(sfs_cmd, .init = setup, .fini = teardown, .timeout = 120);

static void slurp(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, len - 1, f) : 0;
	buf[n] = '\0';
	if (f)
		fclose(f);
}

/* Run `sfs -c CONF args...` (or without -c when the first arg is "-"),
 * capture stdout and stderr, return the exit code. */
static int sfs(const char *first, ...)
{
	const char *argv[32];
	int argc = 0;
	char outp[400], errp[400];
	va_list ap;
	argv[argc++] = fsfix_program("SFS");
	if (strcmp(first, "-") != 0) {
		argv[argc++] = "-c";
		argv[argc++] = fx.conf;
		argv[argc++] = first;
	}
	va_start(ap, first);
	for (const char *a; (a = va_arg(ap, const char *)) && argc < 31;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	snprintf(outp, sizeof(outp), "%s/cmd.out", fx.dir);
	snprintf(errp, sizeof(errp), "%s/cmd.err", fx.dir);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(o, 1);
		dup2(e, 2);
		unsetenv("SFS_CONF");
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	slurp(outp, out, sizeof(out));
	slurp(errp, err, sizeof(err));
	cr_assert(WIFEXITED(status), "sfs died by signal %d", WTERMSIG(status));
	return WEXITSTATUS(status);
}

static json_t *json_out(void)
{
	json_error_t jerr;
	json_t *j = json_loads(out, 0, &jerr);
	cr_assert_not_null(j, "--json output does not parse (%s): %s", jerr.text, out);
	return j;
}

static void make_file(const char *path, size_t len, unsigned seed)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	srand(seed);
	for (size_t i = 0; i < len; i++)
		fputc(rand() & 0xff, f);
	fclose(f);
}

static int same_file(const char *a, const char *b)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", a, b);
	return system(cmd) == 0;
}

Test(sfs_cmd, cp_in_and_out_keeps_every_byte)
{
	char src[400], back[400], back2[400];
	snprintf(src, sizeof(src), "%s/src.bin", fx.dir);
	snprintf(back, sizeof(back), "%s/back.bin", fx.dir);
	snprintf(back2, sizeof(back2), "%s/back2.bin", fx.dir);
	/* not a multiple of the strip size or of the copy chunk */
	make_file(src, (37u << 20) + 12345, 1);
	cr_assert_eq(sfs("mkdir", "sfs:/d", NULL), 0, "%s", err);
	cr_assert_eq(sfs("--json", "cp", src, "sfs:/d/", NULL), 0, "%s", err);
	json_t *j = json_out();
	cr_assert_eq(json_integer_value(json_object_get(j, "bytes")), (37 << 20) + 12345);
	cr_assert_gt(json_real_value(json_object_get(j, "mib_per_s")), 0.0);
	json_decref(j);
	/* into a directory: the source's base name */
	cr_assert_eq(sfs("cp", "sfs:/d/src.bin", back, NULL), 0, "%s", err);
	cr_assert(same_file(src, back), "copy out differs from the original");
	/* within sfs, then out again */
	cr_assert_eq(sfs("cp", "sfs:/d/src.bin", "sfs:/copy.bin", NULL), 0, "%s", err);
	cr_assert_eq(sfs("-q", "cp", "sfs:/copy.bin", back2, NULL), 0, "%s", err);
	cr_assert(same_file(src, back2), "sfs-to-sfs copy differs");
	cr_assert_eq(sfs("cat", "sfs:/d/src.bin", NULL), 0);
	fsfix_finish(&fx);
}

/* --append: lines land one after the other, never over each other; without
 * it the file is truncated first */
Test(sfs_cmd, cp_append_adds_to_the_end)
{
	char line[400], back[400];
	snprintf(line, sizeof(line), "%s/line", fx.dir);
	snprintf(back, sizeof(back), "%s/log", fx.dir);
	for (int i = 1; i <= 3; i++) {
		FILE *f = fopen(line, "w");
		fprintf(f, "%d\n", i);
		fclose(f);
		cr_assert_eq(sfs("-q", "cp", "--append", line, "sfs:/log", NULL), 0, "%s", err);
	}
	cr_assert_eq(sfs("cat", "sfs:/log", NULL), 0, "%s", err);
	cr_assert_str_eq(out, "1\n2\n3\n");
	cr_assert_eq(sfs("-q", "cp", "--append", "sfs:/log", back, NULL), 0, "%s", err);
	cr_assert_eq(sfs("-q", "cp", "--append", "sfs:/log", back, NULL), 0, "%s", err);
	slurp(back, out, sizeof(out));
	cr_assert_str_eq(out, "1\n2\n3\n1\n2\n3\n", "a local --append truncated");
	cr_assert_eq(sfs("-q", "cp", line, "sfs:/log", NULL), 0, "%s", err);
	cr_assert_eq(sfs("cat", "sfs:/log", NULL), 0, "%s", err);
	cr_assert_str_eq(out, "3\n");
	fsfix_finish(&fx);
}

Test(sfs_cmd, getstripe_shows_what_setstripe_set)
{
	cr_assert_eq(sfs("mkdir", "-p", "sfs:/a/b", NULL), 0, "%s", err);
	cr_assert_eq(sfs("setstripe", "-S", "256k", "-c", "2", "sfs:/a", NULL), 0, "%s", err);
	char src[400];
	snprintf(src, sizeof(src), "%s/small", fx.dir);
	make_file(src, 1000, 2);
	cr_assert_eq(sfs("cp", src, "sfs:/a/f", NULL), 0, "%s", err);
	cr_assert_eq(sfs("--json", "getstripe", "sfs:/a/f", NULL), 0, "%s", err);
	json_t *j = json_out();
	cr_assert_eq(json_integer_value(json_object_get(j, "strip_size")), 256 << 10);
	json_t *servers = json_object_get(j, "servers");
	cr_assert_eq(json_array_size(servers), 2);
	const char *s0 = json_string_value(json_object_get(json_array_get(servers, 0), "name"));
	const char *s1 = json_string_value(json_object_get(json_array_get(servers, 1), "name"));
	cr_assert(s0 && s1 && strncmp(s0, "io", 2) == 0 && strcmp(s0, s1) != 0);
	json_decref(j);
	/* human form names strip size and servers too */
	cr_assert_eq(sfs("getstripe", "sfs:/a/f", NULL), 0);
	cr_assert(strstr(out, "256 KiB") && strstr(out, s0 ? "io" : "?"), "%s", out);
	fsfix_finish(&fx);
}

Test(sfs_cmd, listings_and_usage_parse_as_json)
{
	cr_assert_eq(sfs("mkdir", "sfs:/x", "sfs:/y", NULL), 0, "%s", err);
	cr_assert_eq(sfs("--json", "ls", "-l", "/", NULL), 0, "%s", err);
	json_t *j = json_out();
	cr_assert_eq(json_array_size(j), 2);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(j, 0), "name")), "x");
	json_decref(j);
	cr_assert_eq(sfs("--json", "df", NULL), 0, "%s", err);
	j = json_out();
	cr_assert_eq(json_array_size(j), 4);
	json_decref(j);
	cr_assert_eq(sfs("--json", "ping", NULL), 0, "%s", err);
	j = json_out();
	cr_assert_eq(json_array_size(j), 4);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(j, 3), "version")),
		     SFS_PROTO_VERSION);
	json_decref(j);
	cr_assert_eq(sfs("rmdir", "sfs:/x", NULL), 0, "%s", err);
	cr_assert_eq(sfs("ls", "/", NULL), 0);
	cr_assert(!strstr(out, "x") && strstr(out, "y"), "%s", out);
	fsfix_finish(&fx);
}

Test(sfs_cmd, bad_input_gets_the_documented_exit_code_and_names_the_value)
{
	cr_assert_eq(sfs("setstripe", "-S", "64x", "sfs:/", NULL), 2);
	cr_assert(strstr(err, "64x"), "%s", err);
	cr_assert_eq(sfs("-", "genconfig", "--io-servers", "0", "--dir", "/tmp/q", "--port", "5",
			 NULL), 2);
	cr_assert(strstr(err, "\"0\""), "%s", err);
	cr_assert_eq(sfs("frobnicate", NULL), 2);
	cr_assert(strstr(err, "frobnicate"), "%s", err);
	cr_assert_eq(sfs("-o", "max_request=huge", "ls", NULL), 2);
	cr_assert(strstr(err, "huge"), "%s", err);
	cr_assert_eq(sfs("rm", "sfs:/nope", NULL), 1);
	cr_assert(strstr(err, "/nope"), "%s", err);
	cr_assert_eq(sfs("cat", "sfs:/missing", NULL), 1);
	cr_assert_eq(sfs("-", "ls", NULL), 3);
	cr_assert(strstr(err, "config"), "%s", err);
	cr_assert_eq(sfs("-", "-c", "/nonexistent.conf", "ls", NULL), 3);
	cr_assert(strstr(err, "/nonexistent.conf"), "%s", err);
	/* every server gone: ping says so, with a failing exit code */
	for (unsigned i = 0; i <= fx.n_io; i++)
		fsfix_signal(&fx, i, SIGKILL);
	int rc = sfs("ping", NULL);
	cr_assert(rc == 1 || rc == 3, "ping with every server down exited %d", rc);
	fsfix_finish(&fx);
}

Test(sfs_cmd, genconfig_writes_a_config_sfsd_accepts)
{
	char conf[400];
	snprintf(conf, sizeof(conf), "%s/gen.conf", fx.dir);
	cr_assert_eq(sfs("-", "genconfig", "--io-servers", "5", "--dir", "/tmp/sfs-gen", "--port",
			 "30000", "--output", conf, NULL), 0, "%s", err);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "'%s' -c '%s' --check >/dev/null 2>&1", fsfix_program("SFSD"),
		 conf);
	cr_assert_eq(system(cmd), 0, "sfsd --check refuses what genconfig wrote");
	cr_assert_eq(sfs("-", "genconfig", "--io-servers", "2", "--dir", "/tmp/q", "--port",
			 "65535", NULL), 2, "ports past 65535 accepted");
	fsfix_finish(&fx);
}

Test(sfs_cmd, snapshot_create_list_read_rollback_rm)
{
	char local[400], back[400];
	snprintf(local, sizeof(local), "%s/local.bin", fx.dir);
	snprintf(back, sizeof(back), "%s/back.bin", fx.dir);
	make_file(local, 200000, 7);
	cr_assert_eq(sfs("snapshot", "--help", NULL), 0);
	cr_assert(strstr(out, "rollback NAME"), "%s", out);
	cr_assert_eq(sfs("mkdir", "sfs:/job", NULL), 0, "%s", err);
	cr_assert_eq(sfs("cp", local, "sfs:/job/data", NULL), 0, "%s", err);
	cr_assert_eq(sfs("snapshot", "create", "ck1", "--path", "sfs:/job", NULL), 0, "%s", err);
	cr_assert(strstr(out, "1 files"), "%s", out);
	cr_assert_eq(sfs("snapshot", "create", "ck1", NULL), 1);
	cr_assert(strstr(err, "\"ck1\""), "%s", err);
	cr_assert_eq(sfs("snapshot", "create", "a/b", NULL), 1);
	cr_assert(strstr(err, "a/b"), "%s", err);
	cr_assert_eq(sfs("snapshot", "frob", NULL), 2);
	cr_assert(strstr(err, "frob"), "%s", err);
	cr_assert_eq(sfs("snapshot", "rm", NULL), 2);
	/* change, then read the old copy out of the snapshot */
	cr_assert_eq(sfs("rm", "sfs:/job/data", NULL), 0, "%s", err);
	cr_assert_eq(sfs("ls", "sfs:/.snapshots/ck1", NULL), 0, "%s", err);
	cr_assert(strstr(out, "data"), "%s", out);
	cr_assert_eq(sfs("cp", "sfs:/.snapshots/ck1/data", back, NULL), 0, "%s", err);
	char cmd[900];
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", local, back);
	cr_assert_eq(system(cmd), 0, "the snapshot's copy differs");
	cr_assert_eq(sfs("snapshot", "list", "--json", NULL), 0, "%s", err);
	json_t *j = json_out();
	cr_assert_eq(json_array_size(j), 1);
	json_t *s = json_array_get(j, 0);
	cr_assert_str_eq(json_string_value(json_object_get(s, "name")), "ck1");
	cr_assert_str_eq(json_string_value(json_object_get(s, "path")), "/job");
	cr_assert_eq(json_integer_value(json_object_get(s, "files")), 1);
	cr_assert_gt(json_integer_value(json_object_get(s, "pinned_bytes")), 0,
		     "a snapshot of a removed file pins nothing");
	json_decref(j);
	cr_assert_eq(sfs("df", "--json", NULL), 0, "%s", err);
	j = json_out();
	cr_assert_not_null(json_object_get(json_array_get(j, 1), "snapshot_bytes"));
	json_decref(j);
	cr_assert_eq(sfs("snapshot", "rollback", "ck1", "--force", NULL), 0, "%s", err);
	cr_assert_eq(sfs("cp", "sfs:/job/data", back, NULL), 0, "%s", err);
	cr_assert_eq(system(cmd), 0, "rollback did not restore the file");
	cr_assert_eq(sfs("fsck", NULL), 0, "%s%s", out, err);
	cr_assert(strstr(out, "clean"), "%s", out);
	cr_assert_eq(sfs("snapshot", "rm", "ck1", NULL), 0, "%s", err);
	cr_assert_eq(sfs("snapshot", "rm", "ck1", NULL), 1);
	cr_assert(strstr(err, "ck1"), "%s", err);
	cr_assert_eq(sfs("snapshot", "list", NULL), 0);
	cr_assert(strstr(out, "no snapshots"), "%s", out);
	fsfix_finish(&fx);
}
