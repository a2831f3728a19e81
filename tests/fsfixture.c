/* fsfixture: see fsfixture.h. */
#include "fsfixture.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *fsfix_program(const char *var)
{
	const char *p = getenv(var);
	cr_assert(p && *p, "environment variable %s (path of a built program) is not set", var);
	return p;
}

static int port_free(unsigned port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* A run of free ports below the kernel's ephemeral range. */
static unsigned pick_ports(unsigned n)
{
	srand((unsigned)(getpid() ^ time(NULL)));
	for (int attempt = 0; attempt < 200; attempt++) {
		unsigned base = 20000 + (unsigned)(rand() % 12000);
		unsigned i;
		for (i = 0; i < n && port_free(base + i); i++)
			;
		if (i == n)
			return base;
	}
	cr_assert_fail("no run of %u free ports found", n);
	return 0;
}

void fsfix_log_path(const struct fsfix *fx, unsigned i, char *buf, size_t len)
{
	snprintf(buf, len, "%s/server%u.log", fx->dir, i);
}

int fsfix_connect(const struct fsfix *fx, unsigned i)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)(fx->base_port + i)),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

void fsfix_start_server(struct fsfix *fx, unsigned i)
{
	char name[16], log[400];
	const char *sfsd = fsfix_program("SFSD");
	if (i == 0)
		snprintf(name, sizeof(name), "meta");
	else
		snprintf(name, sizeof(name), "io%u", i - 1);
	fsfix_log_path(fx, i, log, sizeof(log));
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(sfsd, sfsd, "-c", fx->conf, "-n", name, (char *)NULL);
		_exit(127);
	}
	fx->pids[i] = pid;
	/* ready when it accepts connections; bounded wait */
	for (int tries = 0; tries < 300; tries++) {
		int fd = fsfix_connect(fx, i);
		if (fd >= 0) {
			close(fd);
			return;
		}
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fx->pids[i] = 0;
			cr_assert_fail("sfsd %s exited at start (status %d); see %s", name, status,
				       log);
		}
		usleep(20000);
	}
	cr_assert_fail("sfsd %s did not start listening within 6 s; see %s", name, log);
}

void fsfix_start(struct fsfix *fx, unsigned n_io, const char *extra_global)
{
	memset(fx, 0, sizeof(*fx));
	cr_assert(n_io + 1 <= FSFIX_MAX);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/sfs-test-XXXXXX");
	cr_assert_not_null(mkdtemp(fx->dir));
	snprintf(fx->conf, sizeof(fx->conf), "%s/sfs.conf", fx->dir);
	fx->n_io = n_io;
	fx->base_port = pick_ports(n_io + 1);

	FILE *f = fopen(fx->conf, "w");
	cr_assert_not_null(f);
	fprintf(f, "[global]\nstrip_size = 64k\n%s\n", extra_global ? extra_global : "");
	fprintf(f, "[server meta]\nrole = meta\naddress = 127.0.0.1:%u\ndir = %s/meta\n",
		fx->base_port, fx->dir);
	for (unsigned i = 0; i < n_io; i++)
		fprintf(f, "[server io%u]\nrole = io\naddress = 127.0.0.1:%u\ndir = %s/io%u\n", i,
			fx->base_port + 1 + i, fx->dir, i);
	fclose(f);
	for (unsigned i = 1; i <= n_io; i++)
		fsfix_start_server(fx, i);
	fsfix_start_server(fx, 0);
}

int fsfix_signal(struct fsfix *fx, unsigned i, int sig)
{
	int status = 0;
	if (fx->pids[i] <= 0)
		return -1;
	kill(fx->pids[i], sig);
	if (sig == SIGKILL || sig == SIGTERM) {
		/* bounded: SIGTERM must finish within 10 s, then it is killed */
		for (int t = 0; t < 1000; t++) {
			if (waitpid(fx->pids[i], &status, WNOHANG) == fx->pids[i]) {
				fx->pids[i] = 0;
				return status;
			}
			usleep(10000);
		}
		kill(fx->pids[i], SIGKILL);
		waitpid(fx->pids[i], &status, 0);
		fx->pids[i] = 0;
		return -1;
	}
	return 0;
}

int fsfix_log_contains(const struct fsfix *fx, unsigned i, const char *needle)
{
	char path[400], line[2048];
	int found = 0;
	fsfix_log_path(fx, i, path, sizeof(path));
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

/* Print and count the sanitizer reports in server i's log. */
static int sanitizer_reports(const struct fsfix *fx, unsigned i)
{
	static const char *marks[] = { "AddressSanitizer", "LeakSanitizer", "runtime error:" };
	char path[400], line[2048];
	int found = 0;
	fsfix_log_path(fx, i, path, sizeof(path));
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		for (size_t m = 0; m < sizeof(marks) / sizeof(marks[0]); m++) {
			if (strstr(line, marks[m])) {
				fprintf(stderr, "%s: %s", path, line);
				found++;
			}
		}
	}
	fclose(f);
	return found;
}

int fsfix_stop(struct fsfix *fx)
{
	int reports = 0;
	/* SIGTERM, so every test also exercises a clean stop and sanitized
	 * servers run their exit-time checks; fsfix_signal kills after 10 s */
	for (unsigned i = 0; i <= fx->n_io && i < FSFIX_MAX; i++) {
		if (fx->pids[i] > 0) {
			kill(fx->pids[i], SIGCONT);
			fsfix_signal(fx, i, SIGTERM);
		}
	}
	for (unsigned i = 0; fx->dir[0] && i <= fx->n_io && i < FSFIX_MAX; i++)
		reports += sanitizer_reports(fx, i);
	if (fx->dir[0] && !getenv("FSFIX_KEEP")) {
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", fx->dir);
	}
	fx->dir[0] = '\0';
	return reports;
}

void fsfix_finish(struct fsfix *fx)
{
	cr_assert_eq(fsfix_stop(fx), 0, "sanitizer reports in the sfsd logs (printed above)");
}

void fsfix_cap(const struct fsfix *fx, uint64_t handle, unsigned rights, int64_t valid_ms,
	       uint8_t out[SFS_CAP_BYTES])
{
	char path[400], err[512];
	struct sfs_cap_key key;
	struct timespec now;
	cr_assert_eq(sfs_cap_key_path("", fx->conf, path, sizeof(path)), 0);
	cr_assert_eq(sfs_cap_key_load(path, &key, err, sizeof(err)), 0, "%s", err);
	clock_gettime(CLOCK_REALTIME, &now);
	struct sfs_cap cap = { .version = SFS_CAP_VERSION, .rights = (uint8_t)rights,
			       .uid = 0, .handle = handle,
			       .expiry_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec +
					    valid_ms * 1000000 };
	sfs_cap_sign(&key, &cap);
	sfs_cap_encode(&cap, out);
}
