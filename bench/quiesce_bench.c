/*
 * quiesce-bench: the goals of migagent, measured on loopback (man
 * quiesce-bench.1).
 *
 *  1. N writer processes (default 16) write 1 MiB transfers to sfs while a
 *     stand-in for migd runs C quiesce/resume cycles (default 100) through a
 *     real migagent: quiesce time p50/p99/max (goal p99 < 50 ms), requests
 *     the servers saw while held (goal 0), errors the writers saw (goal 0),
 *     and every byte read back and compared (goal all good).
 *  2. sfs-ior bandwidth with the control point enabled and idle (an agent
 *     running, the client registered) against disabled (agent_socket off),
 *     runs interleaved so that drift hits both alike, printed as a ratio
 *     (goal within 2%).
 *
 * Real processes throughout: `sfsd --all`, migagent, forked writers,
 * sfs-ior; the programs come from the build tree next to this one unless
 * named with --sfsd, --migagent, --sfs-ior.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client_internal.h" /* the gate itself, for its cost per call */
#include "qload.h"
#include "sfs.h"
#include "sfs_conf.h"
#include "util.h"

struct opts {
	unsigned writers, cycles, io_servers, blocks, ior_reps;
	uint64_t transfer_bytes;
	unsigned hold_ms, gap_ms, deadline_ms;
	const char *base_dir;
	const char *sfsd, *migagent, *sfs_ior;
	const char *ior_block, *ior_transfer;
	int no_ior, keep;
};

struct bench {
	struct opts o;
	char dir[PATH_MAX], conf[PATH_MAX + 16], sock[108];
	pid_t sfsd_pid, agent_pid;
	struct qpeer peer;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: quiesce-bench [--quick] [--writers N] [--cycles N] [--transfer SIZE]\n"
		"                     [--blocks N] [--io-servers N] [--hold MS] [--gap MS]\n"
		"                     [--deadline MS] [--dir DIR] [--ior-reps N] [--ior-block SIZE]\n"
		"                     [--ior-transfer SIZE]\n"
		"                     [--no-ior] [--keep] [--sfsd P] [--migagent P] [--sfs-ior P]\n"
		"\n"
		"  --quick          fewer cycles and a smaller sfs-ior run (under a minute)\n"
		"  --writers N      writer processes (default 16)\n"
		"  --cycles N       quiesce/resume cycles (default 100; --quick 100)\n"
		"  --transfer SIZE  bytes per pwrite (default 1m)\n"
		"  --blocks N       transfers per file, rewritten round robin (default 16)\n"
		"  --io-servers N   sfsd I/O servers (default 4)\n"
		"  --hold MS        how long each quiesce is held (default 20)\n"
		"  --gap MS         load between cycles (default 100; --quick 50)\n"
		"  --deadline MS    quiesce deadline_ms (default 2000)\n"
		"  --dir DIR        where the servers keep data (default /dev/shm, else /tmp)\n"
		"  --ior-reps N     sfs-ior runs per setting (default 8; --quick 4)\n"
		"  --ior-block SIZE sfs-ior -b (default 512m; --quick 256m)\n"
		"  --ior-transfer SIZE  sfs-ior -t (default 1m)\n"
		"  --no-ior         skip the sfs-ior comparison\n"
		"  --keep           keep the data directory\n");
}

static int parse_uint(const char *name, const char *v, unsigned min, unsigned max, unsigned *out)
{
	uint64_t x;
	if (parse_u64(v, min, max, &x) < 0) {
		fprintf(stderr, "quiesce-bench: %s \"%s\": expected a number %u..%u\n", name, v,
			min, max);
		return -1;
	}
	*out = (unsigned)x;
	return 0;
}

/* Programs next to this one in the build tree: bench/../fsserver/sfsd. */
static const char *sibling(const char *rel)
{
	static char paths[3][PATH_MAX];
	static int n;
	char self[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len <= 0 || n == 3)
		return rel;
	self[len] = '\0';
	snprintf(paths[n], sizeof(paths[n]), "%s/../%s", dirname(self), rel);
	return paths[n++];
}

static int parse_options(int argc, char **argv, struct opts *o)
{
	enum { O_QUICK = 256, O_WRITERS, O_CYCLES, O_TRANSFER, O_BLOCKS, O_IO, O_HOLD, O_GAP,
	       O_DEADLINE, O_DIR, O_REPS, O_IORB, O_IORT, O_NOIOR, O_KEEP, O_SFSD, O_AGENT, O_IOR };
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, O_QUICK },
		{ "writers", required_argument, NULL, O_WRITERS },
		{ "cycles", required_argument, NULL, O_CYCLES },
		{ "transfer", required_argument, NULL, O_TRANSFER },
		{ "blocks", required_argument, NULL, O_BLOCKS },
		{ "io-servers", required_argument, NULL, O_IO },
		{ "hold", required_argument, NULL, O_HOLD },
		{ "gap", required_argument, NULL, O_GAP },
		{ "deadline", required_argument, NULL, O_DEADLINE },
		{ "dir", required_argument, NULL, O_DIR },
		{ "ior-reps", required_argument, NULL, O_REPS },
		{ "ior-block", required_argument, NULL, O_IORB },
		{ "ior-transfer", required_argument, NULL, O_IORT },
		{ "no-ior", no_argument, NULL, O_NOIOR },
		{ "keep", no_argument, NULL, O_KEEP },
		{ "sfsd", required_argument, NULL, O_SFSD },
		{ "migagent", required_argument, NULL, O_AGENT },
		{ "sfs-ior", required_argument, NULL, O_IOR },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	*o = (struct opts){ .writers = 16, .cycles = 100, .io_servers = 4, .blocks = 16,
			    .ior_reps = 8, .transfer_bytes = 1 << 20, .hold_ms = 20,
			    .gap_ms = 100, .deadline_ms = 2000, .ior_block = "512m",
			    .ior_transfer = "1m" };
	o->base_dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	int c, rc = 0;
	while (rc == 0 && (c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_QUICK:
			o->gap_ms = 50;
			o->ior_reps = 4;
			o->ior_block = "256m";
			break;
		case O_WRITERS: rc = parse_uint("--writers", optarg, 1, QLOAD_MAX_WRITERS, &o->writers); break;
		case O_CYCLES: rc = parse_uint("--cycles", optarg, 1, 100000, &o->cycles); break;
		case O_BLOCKS: rc = parse_uint("--blocks", optarg, 1, 4096, &o->blocks); break;
		case O_IO: rc = parse_uint("--io-servers", optarg, 1, 16, &o->io_servers); break;
		case O_HOLD: rc = parse_uint("--hold", optarg, 0, 60000, &o->hold_ms); break;
		case O_GAP: rc = parse_uint("--gap", optarg, 0, 60000, &o->gap_ms); break;
		case O_DEADLINE: rc = parse_uint("--deadline", optarg, 1, 3600000, &o->deadline_ms); break;
		case O_REPS: rc = parse_uint("--ior-reps", optarg, 1, 100, &o->ior_reps); break;
		case O_TRANSFER:
			if (parse_size(optarg, &o->transfer_bytes) < 0 || o->transfer_bytes < 8 ||
			    o->transfer_bytes % 8 || o->transfer_bytes > (256u << 20)) {
				fprintf(stderr, "quiesce-bench: --transfer \"%s\": expected a size "
						"like 1m (multiple of 8, at most 256m)\n", optarg);
				rc = -1;
			}
			break;
		case O_IORB: o->ior_block = optarg; break;
		case O_IORT: o->ior_transfer = optarg; break;
		case O_DIR: o->base_dir = optarg; break;
		case O_NOIOR: o->no_ior = 1; break;
		case O_KEEP: o->keep = 1; break;
		case O_SFSD: o->sfsd = optarg; break;
		case O_AGENT: o->migagent = optarg; break;
		case O_IOR: o->sfs_ior = optarg; break;
		case 'h': usage(stdout); exit(0);
		default:
			fprintf(stderr, "quiesce-bench: unknown option or missing value: %s\n",
				argv[optind - 1]);
			rc = -1;
		}
	}
	if (!o->sfsd)
		o->sfsd = sibling("fsserver/sfsd");
	if (!o->migagent)
		o->migagent = sibling("agent/migagent");
	if (!o->sfs_ior)
		o->sfs_ior = sibling("bench/sfs-ior");
	return rc;
}

/* --- processes --- */

static pid_t spawn(char *const argv[], const char *log_path, char *const *env_add)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	for (size_t i = 0; env_add && env_add[i]; i++)
		putenv(env_add[i]);
	execv(argv[0], argv);
	_exit(127);
}

static void stop_pid(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(*pid, NULL, WNOHANG) == *pid) {
			*pid = 0;
			return;
		}
		usleep(10000);
	}
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

static unsigned free_port_run(unsigned n)
{
	srand((unsigned)(getpid() ^ time(NULL)));
	for (int attempt = 0; attempt < 200; attempt++) {
		unsigned base = 20000 + (unsigned)(rand() % 12000), i;
		for (i = 0; i < n; i++) {
			int fd = socket(AF_INET, SOCK_STREAM, 0);
			struct sockaddr_in sa = { .sin_family = AF_INET,
						  .sin_port = htons((uint16_t)(base + i)),
						  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
			int ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
			close(fd);
			if (!ok)
				break;
		}
		if (i == n)
			return base;
	}
	return 0;
}

static int start_fs(struct bench *b)
{
	char log[PATH_MAX + 16];
	snprintf(b->dir, sizeof(b->dir), "%s/quiesce-bench-XXXXXX", b->o.base_dir);
	if (!mkdtemp(b->dir)) {
		fprintf(stderr, "quiesce-bench: mkdtemp in %s: %s\n", b->o.base_dir, strerror(errno));
		return -1;
	}
	snprintf(b->conf, sizeof(b->conf), "%s/sfs.conf", b->dir);
	snprintf(b->sock, sizeof(b->sock), "%.90s/agent.sock", b->dir);
	unsigned port = free_port_run(b->o.io_servers + 1);
	FILE *f = fopen(b->conf, "w");
	if (!port || !f || sfs_conf_write_loopback(f, b->o.io_servers, b->dir, port) < 0) {
		fprintf(stderr, "quiesce-bench: cannot write %s\n", b->conf);
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	snprintf(log, sizeof(log), "%s/sfsd.log", b->dir);
	char *argv[] = { (char *)b->o.sfsd, "-c", b->conf, "--all", NULL };
	b->sfsd_pid = spawn(argv, log, NULL);
	for (int i = 0; i < 500; i++) {
		uint64_t counts[20];
		if (qload_server_requests(b->conf, counts, 20) == (int)b->o.io_servers + 1)
			return 0;
		usleep(20000);
	}
	fprintf(stderr, "quiesce-bench: sfsd did not answer within 10 s; see %s\n", log);
	return -1;
}

static int start_agent(struct bench *b)
{
	char log[PATH_MAX + 16];
	if (qpeer_open(&b->peer) < 0) {
		fprintf(stderr, "quiesce-bench: cannot bind the migd stand-in\n");
		return -1;
	}
	snprintf(log, sizeof(log), "%s/migagent.log", b->dir);
	char *argv[] = { (char *)b->o.migagent, "--migd", b->peer.endpoint, "--guest", "bench",
			 "--socket", b->sock, "--watchdog", "10s", "--debug", NULL };
	b->agent_pid = spawn(argv, log, NULL);
	json_t *hello = qpeer_recv(&b->peer, "hello", 10000);
	if (!hello) {
		fprintf(stderr, "quiesce-bench: no hello from %s within 10 s; see %s\n",
			b->o.migagent, log);
		return -1;
	}
	json_decref(hello);
	return 0;
}

/* --- part 1: cycles under load --- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(const double *sorted, unsigned n, double p)
{
	unsigned i = (unsigned)ceil(p / 100.0 * n);
	return sorted[i ? i - 1 : 0];
}

static int wait_clients(struct bench *b, unsigned n)
{
	for (int tries = 0; tries < 60; tries++) {
		json_t *act = qpeer_recv(&b->peer, "activity", 2000);
		size_t have = json_array_size(json_object_get(act, "clients"));
		json_decref(act);
		if (have == n)
			return 0;
	}
	fprintf(stderr, "quiesce-bench: the agent never reported %u clients\n", n);
	return -1;
}

static int run_cycles(struct bench *b)
{
	const struct opts *o = &b->o;
	struct qload_writers w;
	struct qload_writer_opts wo = { .conf = b->conf, .dir = "/qb",
					.transfer_bytes = o->transfer_bytes, .blocks = o->blocks };
	double *agent_ms = calloc(o->cycles, sizeof(double));
	double *rtt_ms = calloc(o->cycles, sizeof(double));
	unsigned n = 0, failed_quiesces = 0, held_violations = 0;
	uint64_t drained_req = 0, drained_bytes = 0, write_bps_seen = 0;
	struct sfs *fs;
	int rc = -1;

	setenv("SFS_AGENT_SOCKET", b->sock, 1);
	if (sfs_connect(b->conf, NULL, &fs) < 0 || sfs_mkdir(fs, "/qb", 0755) < 0) {
		fprintf(stderr, "quiesce-bench: %s\n", sfs_last_error());
		return -1;
	}
	sfs_disconnect(fs);
	if (qload_writers_start(&w, o->writers, &wo) < 0 || wait_clients(b, o->writers) < 0)
		goto out;
	uint64_t start_ms = now_ms(), start_writes = qload_writes(&w);
	for (unsigned c = 0; c < o->cycles; c++) {
		usleep(o->gap_ms * 1000);
		double rtt;
		json_t *r = qpeer_call(&b->peer, "quiesce", o->deadline_ms, 30000, &rtt);
		json_t *res = json_object_get(r, "result");
		if (!r || !json_is_true(json_object_get(r, "ok"))) {
			failed_quiesces++;
			fprintf(stderr, "quiesce-bench: cycle %u: quiesce failed: %s\n", c,
				r ? json_string_value(json_object_get(r, "error")) : "no reply");
		} else {
			agent_ms[n] = json_number_value(json_object_get(res, "time_ms"));
			rtt_ms[n++] = rtt;
			drained_req += (uint64_t)json_integer_value(json_object_get(res,
								"drained_requests"));
			drained_bytes += (uint64_t)json_integer_value(json_object_get(res,
								"drained_bytes"));
		}
		json_decref(r);
		uint64_t before = qload_total_requests(b->conf);
		usleep(o->hold_ms * 1000);
		uint64_t after = qload_total_requests(b->conf);
		if (before == UINT64_MAX || after != before)
			held_violations++;
		r = qpeer_call(&b->peer, "resume", 0, 30000, NULL);
		if (!r || !json_is_true(json_object_get(r, "ok")))
			fprintf(stderr, "quiesce-bench: cycle %u: resume failed\n", c);
		json_decref(r);
	}
	double secs = (double)(now_ms() - start_ms) / 1000.0;
	uint64_t writes = qload_writes(&w) - start_writes;
	if (b->peer.last_activity)
		write_bps_seen = (uint64_t)json_integer_value(
			json_object_get(b->peer.last_activity, "write_bps"));
	unsigned failed_writers = qload_writers_stop(&w, 120000);
	uint64_t errors = 0, bad = 0, verified = 0;
	for (unsigned i = 0; i < w.n; i++) {
		errors += w.progress[i].errors;
		bad += w.progress[i].bad_blocks;
		verified += w.progress[i].verified_bytes;
		if (w.progress[i].errors)
			fprintf(stderr, "writer %u: %s\n", i, w.progress[i].last_error);
	}
	qsort(agent_ms, n, sizeof(double), cmp_double);
	qsort(rtt_ms, n, sizeof(double), cmp_double);
	char sz[32], vz[32];
	printf("load: %u writers x %s transfers, %u I/O servers on loopback, data in %s\n",
	       o->writers, format_size(o->transfer_bytes, sz, sizeof(sz)), o->io_servers,
	       b->o.base_dir);
	printf("      %.0f MiB/s written during the cycles (agent's activity report: %.0f MiB/s)\n",
	       (double)writes * (double)o->transfer_bytes / secs / 1048576.0,
	       (double)write_bps_seen / 1048576.0);
	if (n) {
		printf("quiesce over %u cycles (hold %u ms, gap %u ms):\n", o->cycles, o->hold_ms,
		       o->gap_ms);
		printf("  agent time    p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms\n",
		       pct(agent_ms, n, 50), pct(agent_ms, n, 99), agent_ms[n - 1]);
		printf("  round trip    p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms\n",
		       pct(rtt_ms, n, 50), pct(rtt_ms, n, 99), rtt_ms[n - 1]);
		printf("  drained per quiesce: %.1f requests, %s\n", (double)drained_req / n,
		       format_size(drained_bytes / n, sz, sizeof(sz)));
		printf("  goal p99 < 50 ms (round trip): %s\n",
		       pct(rtt_ms, n, 99) < 50.0 ? "met" : "NOT met");
	}
	printf("  quiesces failed: %u; cycles where the servers saw a request while held: %u "
	       "(goal 0)\n", failed_quiesces, held_violations);
	printf("writers: %llu errors (goal 0), %llu blocks read back wrong, %s verified "
	       "byte for byte: %s\n", (unsigned long long)errors, (unsigned long long)bad,
	       format_size(verified, vz, sizeof(vz)),
	       !errors && !bad && !failed_writers ? "all good" : "FAILED");
	fflush(stdout);
	rc = failed_quiesces || held_violations || errors || bad || failed_writers ? 1 : 0;
out:
	qload_writers_free(&w);
	free(agent_ms);
	free(rtt_ms);
	return rc;
}

/* --- part 2: sfs-ior enabled+idle vs disabled --- */

/* One sfs-ior run: write and read MiB/s from its "Max Write:" lines. */
static int ior_once(struct bench *b, int enabled, unsigned rep, double *write_mibs,
		    double *read_mibs, double *cpu_s)
{
	char out[PATH_MAX + 32], obj[64], env[200], line[512];
	snprintf(out, sizeof(out), "%s/ior-%s-%u.out", b->dir, enabled ? "on" : "off", rep);
	snprintf(obj, sizeof(obj), "/ior-%s-%u", enabled ? "on" : "off", rep);
	snprintf(env, sizeof(env), "SFS_AGENT_SOCKET=%s", enabled ? b->sock : "off");
	char conf_arg[PATH_MAX + 32], block_arg[64], xfer_arg[64];
	snprintf(conf_arg, sizeof(conf_arg), "--sfs.conf=%s", b->conf);
	snprintf(block_arg, sizeof(block_arg), "%s", b->o.ior_block);
	snprintf(xfer_arg, sizeof(xfer_arg), "%s", b->o.ior_transfer);
	char *argv[] = { (char *)b->o.sfs_ior, "-a", "SFS", conf_arg, "-b", block_arg, "-t", xfer_arg,
			 "-w", "-r", "-o", obj, NULL };
	char *envs[] = { env, "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1",
			 NULL };
	pid_t pid = spawn(argv, out, envs);
	int status;
	struct rusage ru;
	wait4(pid, &status, 0, &ru);
	*cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	*write_mibs = *read_mibs = 0;
	FILE *f = fopen(out, "r");
	while (f && fgets(line, sizeof(line), f)) {
		sscanf(line, "Max Write: %lf", write_mibs);
		sscanf(line, "Max Read: %lf", read_mibs);
	}
	if (f)
		fclose(f);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || *write_mibs <= 0 || *read_mibs <= 0) {
		fprintf(stderr, "quiesce-bench: sfs-ior failed; see %s\n", out);
		return -1;
	}
	return 0;
}

static double mean(const double *v, unsigned n)
{
	double s = 0;
	for (unsigned i = 0; i < n; i++)
		s += v[i];
	return n ? s / n : 0;
}

static double stddev(const double *v, unsigned n)
{
	double m = mean(v, n), s = 0;
	for (unsigned i = 0; i < n; i++)
		s += (v[i] - m) * (v[i] - m);
	return n > 1 ? sqrt(s / (n - 1)) : 0;
}

static int run_ior(struct bench *b)
{
	unsigned reps = b->o.ior_reps;
	double w[2][100], r[2][100], cpu[2][100];
	/* One run to warm up (not counted), then alternate which setting
	 * goes first, so neither always runs warm. */
	double warm_w, warm_r, warm_cpu;
	if (ior_once(b, 0, 999, &warm_w, &warm_r, &warm_cpu) < 0)
		return -1;
	for (unsigned i = 0; i < reps; i++) {
		for (int k = 0; k < 2; k++) {
			int enabled = (int)((i + (unsigned)k) % 2);
			if (ior_once(b, enabled, i, &w[enabled][i], &r[enabled][i],
				     &cpu[enabled][i]) < 0)
				return -1;
		}
	}
	/* The enabled runs must have registered: the agent saw sfs-ior. */
	int registered = 0;
	char log[PATH_MAX + 16], line[512];
	snprintf(log, sizeof(log), "%s/migagent.log", b->dir);
	FILE *f = fopen(log, "r");
	while (f && fgets(line, sizeof(line), f))
		registered += strstr(line, "(sfs-ior) registered") != NULL;
	if (f)
		fclose(f);
	printf("sfs-ior -a SFS -b %s -t %s -w -r, 1 process, %u runs per setting, interleaved:\n",
	       b->o.ior_block, b->o.ior_transfer, reps);
	/* Paired ratios (runs next to each other in time) cancel most of the
	 * drift of a shared machine; their median is the figure. */
	double wp[100], rp[100];
	for (unsigned i = 0; i < reps; i++) {
		wp[i] = w[1][i] / w[0][i];
		rp[i] = r[1][i] / r[0][i];
	}
	qsort(wp, reps, sizeof(double), cmp_double);
	qsort(rp, reps, sizeof(double), cmp_double);
	double wr = pct(wp, reps, 50), rr = pct(rp, reps, 50);
	printf("  write  enabled+idle %8.1f MiB/s (sd %5.1f)  disabled %8.1f MiB/s (sd %5.1f)  "
	       "ratio %.3f\n", mean(w[1], reps), stddev(w[1], reps), mean(w[0], reps),
	       stddev(w[0], reps), mean(w[1], reps) / mean(w[0], reps));
	printf("  read   enabled+idle %8.1f MiB/s (sd %5.1f)  disabled %8.1f MiB/s (sd %5.1f)  "
	       "ratio %.3f\n", mean(r[1], reps), stddev(r[1], reps), mean(r[0], reps),
	       stddev(r[0], reps), mean(r[1], reps) / mean(r[0], reps));
	printf("  median of paired ratios (enabled/disabled): write %.3f, read %.3f\n", wr, rr);
	printf("  CPU time of sfs-ior (user+sys, MPI start-up included): enabled %.3f s, "
	       "disabled %.3f s per run, ratio %.3f\n", mean(cpu[1], reps), mean(cpu[0], reps),
	       mean(cpu[1], reps) / mean(cpu[0], reps));
	printf("  enabled runs registered with the agent: %d of %u\n", registered, reps);
	printf("  goal within 2%% (median paired ratio): %s\n",
	       fabs(wr - 1) <= 0.02 && fabs(rr - 1) <= 0.02 ? "met" : "NOT met");
	return registered == (int)reps ? 0 : 1;
}

/* --- part 4: the gate's own cost --- */

#define GATE_CALLS 2000000u

struct gate_arg {
	struct ctl *ctl;
	double ns_per_call;
};

static void *gate_loop(void *p)
{
	struct gate_arg *g = p;
	uint64_t t0 = now_ns();
	for (unsigned i = 0; i < GATE_CALLS; i++) {
		ctl_enter(g->ctl);
		ctl_count(g->ctl, 1, 1 << 20);
		ctl_leave(g->ctl);
	}
	g->ns_per_call = (double)(now_ns() - t0) / GATE_CALLS;
	return NULL;
}

/* What the open gate adds to one libsfs call (enter, count, leave), alone
 * and with two threads of one process contending for its cache line, next
 * to what a 1 MiB and a 4 KiB sfs_pwrite take here. */
static int run_gate_cost(struct bench *b)
{
	struct sfs *fs;
	struct sfs_file *f;
	setenv("SFS_AGENT_SOCKET", b->sock, 1);
	if (sfs_connect(b->conf, NULL, &fs) < 0 || !fs->ctl ||
	    sfs_open(fs, "/gate", SFS_O_RDWR | SFS_O_CREAT, 0644, &f) < 0) {
		fprintf(stderr, "quiesce-bench: gate: %s\n", fs && !fs->ctl ? "not registered"
								   : sfs_last_error());
		return -1;
	}
	struct gate_arg one = { .ctl = fs->ctl }, two[2] = { { .ctl = fs->ctl }, { .ctl = fs->ctl } };
	gate_loop(&one);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, gate_loop, &two[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	double call_us[2];
	size_t sizes[2] = { 1u << 20, 4096 };
	char *buf = calloc(1, 1u << 20);
	for (int k = 0; k < 2; k++) {
		unsigned n = k == 0 ? 200 : 2000;
		uint64_t t0 = now_ns();
		for (unsigned i = 0; i < n; i++)
			sfs_pwrite(f, buf, sizes[k], (uint64_t)(i % 16) * sizes[k]);
		call_us[k] = (double)(now_ns() - t0) / n / 1000.0;
	}
	free(buf);
	sfs_close(f);
	sfs_unlink(fs, "/gate");
	sfs_disconnect(fs);
	double two_ns = (two[0].ns_per_call + two[1].ns_per_call) / 2;
	printf("gate (open) per call: %.1f ns alone, %.1f ns with 2 threads contending; "
	       "disabled: one branch\n", one.ns_per_call, two_ns);
	printf("  a 1 MiB sfs_pwrite takes %.0f us here: the gate is %.4f%% of it; "
	       "a 4 KiB one %.1f us: %.3f%%\n", call_us[0], two_ns / 10 / call_us[0],
	       call_us[1], two_ns / 10 / call_us[1]);
	return 0;
}

int main(int argc, char **argv)
{
	struct bench b = { 0 };
	int rc = 1;
	if (parse_options(argc, argv, &b.o) < 0) {
		fprintf(stderr, "Try 'quiesce-bench --help'.\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (start_fs(&b) < 0 || start_agent(&b) < 0)
		goto out;
	/* sfs-ior first, on a quiet file system: after the writers' load the
	 * machine takes a while to settle (freeing their pages), and that
	 * would fall on whichever setting runs first. */
	rc = b.o.no_ior ? 0 : run_ior(&b) < 0 ? 1 : 0;
	if (rc == 0)
		rc = run_cycles(&b);
	if (rc == 0 && run_gate_cost(&b) < 0)
		rc = 1;
out:
	stop_pid(&b.agent_pid);
	stop_pid(&b.sfsd_pid);
	qpeer_close(&b.peer);
	if (b.dir[0] && !b.o.keep) {
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "quiesce-bench: could not remove %s\n", b.dir);
	} else if (b.dir[0]) {
		printf("data and logs kept in %s\n", b.dir);
	}
	return rc;
}
