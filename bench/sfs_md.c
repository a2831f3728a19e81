/*
 * sfs-md: an mdtest-shaped metadata benchmark over libsfs (-a SFS) or any
 * mounted path (-a POSIX), so bench/mount-bench can compare sfs mount with
 * libsfs on the same servers: PROCS processes each create, then stat, then
 * unlink FILES empty files, either all in one shared directory (mdtest's
 * "hard" shape) or each in its own (the "easy" shape, -u). Every phase
 * starts together in every process (a pipe barrier) and is timed from the
 * first start to the last finish, so the rate is the aggregate one.
 *
 * Output: one JSON object on stdout, {"create": ops/s, "stat": ops/s,
 * "unlink": ops/s, "files": N, "procs": P}. Exit 1 on any failed call,
 * with the call and its error on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sfs.h"

enum phase { CREATE, STAT, UNLINK, N_PHASES };
static const char *const phase_name[N_PHASES] = { "create", "stat", "unlink" };

struct md {
	int use_sfs;
	const char *conf, *dir;
	unsigned files, procs;
	int unique;
	struct sfs *fs; /* per process, after the fork */
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int one_op(struct md *md, enum phase ph, const char *path)
{
	if (md->use_sfs) {
		struct sfs_file *f;
		struct sfs_stat st;
		int rc;
		switch (ph) {
		case CREATE:
			rc = sfs_open(md->fs, path, SFS_O_WRONLY | SFS_O_CREAT | SFS_O_EXCL, 0644, &f);
			return rc < 0 ? rc : sfs_close(f);
		case STAT: return sfs_stat(md->fs, path, &st);
		default: return sfs_unlink(md->fs, path);
		}
	}
	struct stat st;
	int fd;
	switch (ph) {
	case CREATE:
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		return fd < 0 ? -errno : (close(fd) < 0 ? -errno : 0);
	case STAT: return stat(path, &st) < 0 ? -errno : 0;
	default: return unlink(path) < 0 ? -errno : 0;
	}
}

static const char *proc_dir(const struct md *md, unsigned rank, char *buf, size_t len)
{
	if (md->unique)
		snprintf(buf, len, "%s/p%u", md->dir, rank);
	else
		snprintf(buf, len, "%s", md->dir);
	return buf;
}

/* One process's share of a phase. 0 or 1 (error printed). */
static int run_phase(struct md *md, enum phase ph, unsigned rank)
{
	char dir[1024], path[1200];
	proc_dir(md, rank, dir, sizeof(dir));
	for (unsigned i = 0; i < md->files; i++) {
		snprintf(path, sizeof(path), "%s/r%u.f%u", dir, rank, i);
		int rc = one_op(md, ph, path);
		if (rc < 0) {
			fprintf(stderr, "sfs-md: %s %s: %s\n", phase_name[ph], path,
				md->use_sfs ? sfs_last_error() : strerror(-rc));
			return 1;
		}
	}
	return 0;
}

static int make_dir(struct md *md, const char *path)
{
	int rc = md->use_sfs ? sfs_mkdir(md->fs, path, 0755) : (mkdir(path, 0755) < 0 ? -errno : 0);
	if (rc < 0 && rc != -EEXIST) {
		fprintf(stderr, "sfs-md: mkdir %s: %s\n", path,
			md->use_sfs ? sfs_last_error() : strerror(-rc));
		return 1;
	}
	return 0;
}

/* Child rank: wait for each phase's go byte, run it, report its status. */
static int child(struct md *md, unsigned rank, int go_fd, int done_fd)
{
	char dir[1024], b;
	if (md->use_sfs && sfs_connect(md->conf, NULL, &md->fs) < 0) {
		fprintf(stderr, "sfs-md: %s\n", sfs_last_error());
		return 1;
	}
	int failed = md->unique && make_dir(md, proc_dir(md, rank, dir, sizeof(dir)));
	for (int ph = 0; ph < N_PHASES; ph++) {
		if (read(go_fd, &b, 1) != 1)
			return 1;
		if (!failed)
			failed = run_phase(md, (enum phase)ph, rank);
		b = (char)failed;
		if (write(done_fd, &b, 1) != 1)
			return 1;
	}
	sfs_disconnect(md->fs);
	return failed;
}

static int usage(int rc)
{
	fprintf(rc ? stderr : stdout,
		"usage: sfs-md -a SFS|POSIX -d DIR [-c CONF] [-n FILES] [-p PROCS] [-u]\n"
		"  -a SFS    through libsfs (DIR is an sfs path, -c or $SFS_CONF the config)\n"
		"  -a POSIX  through the kernel (DIR is a local or mounted directory)\n"
		"  -n FILES  files per process (default 10000)\n"
		"  -p PROCS  processes (default 1)\n"
		"  -u        a directory per process (default: all in DIR)\n");
	return rc;
}

int main(int argc, char **argv)
{
	struct md md = { .files = 10000, .procs = 1, .conf = getenv("SFS_CONF") };
	const char *api = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "a:c:d:n:p:uh")) != -1) {
		switch (opt) {
		case 'a': api = optarg; break;
		case 'c': md.conf = optarg; break;
		case 'd': md.dir = optarg; break;
		case 'n': md.files = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'p': md.procs = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'u': md.unique = 1; break;
		case 'h': return usage(0);
		default: return usage(2);
		}
	}
	if (!api || !md.dir || md.files == 0 || md.procs == 0 || md.procs > 256 ||
	    (strcmp(api, "SFS") != 0 && strcmp(api, "POSIX") != 0))
		return usage(2);
	md.use_sfs = strcmp(api, "SFS") == 0;
	if (md.use_sfs && !md.conf) {
		fprintf(stderr, "sfs-md: -a SFS needs -c CONF or $SFS_CONF\n");
		return 2;
	}
	int go[2], done[2];
	if (pipe(go) < 0 || pipe(done) < 0)
		return 1;
	for (unsigned r = 0; r < md.procs; r++) {
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0)
			_exit(child(&md, r, go[0], done[1]));
	}
	double rate[N_PHASES];
	int failed = 0;
	for (int ph = 0; ph < N_PHASES; ph++) {
		char b;
		double start = now_s();
		for (unsigned r = 0; r < md.procs; r++)
			if (write(go[1], "g", 1) != 1)
				failed = 1;
		for (unsigned r = 0; r < md.procs; r++)
			if (read(done[0], &b, 1) != 1 || b)
				failed = 1;
		rate[ph] = (double)md.files * md.procs / (now_s() - start);
	}
	int status;
	while (wait(&status) > 0)
		failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	if (failed)
		return 1;
	printf("{\"create\": %.1f, \"stat\": %.1f, \"unlink\": %.1f, \"files\": %u, \"procs\": %u}\n",
	       rate[CREATE], rate[STAT], rate[UNLINK], md.files, md.procs);
	return 0;
}
