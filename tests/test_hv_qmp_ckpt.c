/*
 * test_hv_qmp_ckpt: checkpoint and restore on the qmp backend with real
 * QEMU guests (the image of cluster/mkimage, TCG here) on loopback hosts,
 * through the hv_ops as the executor calls them.
 *
 * A save goes through a pipe that a thread copies into a file, counting
 * bytes; a load comes from a thread writing that file into a pipe. That a
 * load restored the state and did not boot afresh is checked on guest
 * memory itself: QEMU's pmemsave of the paused guest just before the save
 * and of the loaded guest, still paused, must be the same bytes (a fresh
 * boot, or a load that lost or mixed pages, differs), and the serial log
 * of the loaded instance shows no boot. That a guest runs is checked as
 * QEMU's status and as its memory changing while it runs.
 *
 * Skips without qemu-system-x86_64 or without the guest image (IMAGE_DIR,
 * default build/image). Every QEMU of a test is killed at its end, also
 * when it fails (fini). Figures of each save and load go to stderr as
 * "ckpt-figures:" lines.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hv.h"
#include "hv_qmp.h"
#include "hv_qmp_vm.h" /* qvm_exec: pmemsave, which no hv_ops call offers */
#include "util.h"

#define GUEST_MIB 256
#define BOOT_TIMEOUT_MS 180000
#define OP_TIMEOUT_MS 180000

static const struct hv_ops *ops = &hv_qmp_ops;
static char err[512];
static char dir[64] = "";
static struct hv *hv;
static struct hv_qmp_settings settings;

static void open_hv(void);

/* ---- fixture ---- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void setup(void)
{
	static char image[PATH_MAX], state[96];
	const char *env_image = getenv("IMAGE_DIR");
	snprintf(image, sizeof(image), "%s", env_image && *env_image ? env_image : "build/image");
	char vmlinuz[PATH_MAX + 16];
	snprintf(vmlinuz, sizeof(vmlinuz), "%s/vmlinuz", image);
	if (system("command -v qemu-system-x86_64 >/dev/null 2>&1") != 0)
		cr_skip_test("qemu-system-x86_64 is not installed");
	if (access(vmlinuz, R_OK) != 0)
		cr_skip_test("no guest image in %s (cluster/mkimage --build build)", image);
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/tmp/test_ckpt.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(state, sizeof(state), "%s/state", dir);
	settings = (struct hv_qmp_settings){ .image_dir = image, .state_dir = state };
	open_hv();
}

/* Open the driver (again: as a restarted migd does, reconciling). */
static void open_hv(void)
{
	struct hv_env env = { .qmp = &settings };
	cr_assert_eq(ops->open(&env, &hv, err, sizeof(err)), 0, "open: %s", err);
	cr_assert_eq(ops->host_add(hv, "ckpt-a", "qmp:///ckpt-a?cluster=tckpt-none", err,
				   sizeof(err)), 0, "%s", err);
	cr_assert_eq(ops->host_add(hv, "ckpt-b", "qmp:///ckpt-b?cluster=tckpt-none", err,
				   sizeof(err)), 0, "%s", err);
}

/* Kill whatever QEMU of this test is left, by the pids the backend
 * verified (guest_destroy), and remove the directory. */
static void teardown(void)
{
	static const char *const guests[] = { "g1", "g2", "g3", "g4", "g5" };
	char cmd[128];
	if (!*dir)
		return;
	for (size_t i = 0; hv && i < sizeof(guests) / sizeof(guests[0]); i++) {
		char ignored[256];
		for (const char *const *h = (const char *const[]){ "ckpt-a", "ckpt-b", NULL }; *h; h++)
			qvm_destroy(hv, guests[i], *h);
		ops->guest_destroy(hv, guests[i], ignored, sizeof(ignored));
	}
	ops->close(hv);
	hv = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

TestSuite(qmp_ckpt, .init = setup, .fini = teardown, .timeout = 900);

/* ---- helpers ---- */

static void path_of(char *buf, size_t len, const char *guest, const char *file)
{
	snprintf(buf, len, "%s/state/%s/%s", dir, guest, file);
}

/* How often needle appears in a file (0 when unreadable). */
static int count_in_file(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int n = 0;
	while (f && fgets(line, sizeof(line), f))
		for (const char *p = line; (p = strstr(p, needle)); p++)
			n++;
	if (f)
		fclose(f);
	return n;
}

static void create_and_boot(const char *guest, const char *host)
{
	char log[PATH_MAX], file[64];
	struct hv_guest_spec spec = { .name = guest, .memory_bytes = (uint64_t)GUEST_MIB << 20 };
	cr_assert_eq(ops->guest_create(hv, host, &spec, err, sizeof(err)), 0, "create: %s", err);
	snprintf(file, sizeof(file), "%s.log", host);
	path_of(log, sizeof(log), guest, file);
	double t0 = now_s();
	while (count_in_file(log, "MIGD-GUEST-READY") == 0) {
		cr_assert_lt(now_s() - t0, BOOT_TIMEOUT_MS / 1000.0, "%s did not boot: see %s",
			     guest, log);
		usleep(200000);
	}
	fprintf(stderr, "ckpt-figures: %s booted on %s in %.1f s\n", guest, host, now_s() - t0);
	sleep(2); /* and lets it run a little past its ready line */
}

static void expect_where(const char *guest, const char *host, int running)
{
	struct hv_guest_info info;
	cr_assert_eq(ops->guest_info(hv, guest, &info, err, sizeof(err)), 0, "info: %s", err);
	cr_expect_str_eq(info.host, host);
	cr_expect_eq(info.running, running, "%s: running %d, expected %d", guest, info.running,
		     running);
}

/* QEMU's pmemsave of the first GUEST_MIB MiB of guest memory into file. */
static void dump_memory(const char *guest, const char *host, const char *file)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	json_t *args = json_pack("{s:I, s:I, s:s}", "val", (json_int_t)0, "size",
				 (json_int_t)GUEST_MIB << 20, "filename", path);
	int rc = qvm_exec(hv, guest, host, "pmemsave", args, NULL, err, sizeof(err));
	cr_assert_eq(rc, 0, "pmemsave: %s", err);
}

/* Pages of 4 KiB that differ between two dumps. */
static size_t pages_differing(const char *file_a, const char *file_b)
{
	char pa[PATH_MAX], pb[PATH_MAX];
	snprintf(pa, sizeof(pa), "%s/%s", dir, file_a);
	snprintf(pb, sizeof(pb), "%s/%s", dir, file_b);
	int fa = open(pa, O_RDONLY), fb = open(pb, O_RDONLY);
	cr_assert(fa >= 0 && fb >= 0, "dumps %s %s", pa, pb);
	size_t len = (size_t)GUEST_MIB << 20, n = 0;
	const unsigned char *a = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fa, 0);
	const unsigned char *b = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fb, 0);
	cr_assert(a != MAP_FAILED && b != MAP_FAILED);
	for (size_t off = 0; off < len; off += 4096)
		n += memcmp(a + off, b + off, 4096) != 0;
	munmap((void *)a, len);
	munmap((void *)b, len);
	close(fa);
	close(fb);
	return n;
}

/* A thread between a pipe and a file: a save's reader or a load's writer. */
struct pump {
	int pipe_fd;          /* our end */
	int file_fd;
	uint64_t limit_bytes; /* reader: close after this many (0: never); writer: send only these */
	uint64_t bytes;
	pthread_t thread;
};

static void *pump_read(void *arg)
{
	struct pump *p = arg;
	char buf[1 << 16];
	ssize_t n;
	while ((n = read(p->pipe_fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
		if (n < 0)
			continue;
		if (write_full(p->file_fd, buf, (size_t)n) < 0)
			break;
		p->bytes += (uint64_t)n;
		if (p->limit_bytes && p->bytes >= p->limit_bytes)
			break; /* a reader that goes away early */
	}
	close(p->pipe_fd);
	return NULL;
}

static void *pump_write(void *arg)
{
	struct pump *p = arg;
	char buf[1 << 16];
	ssize_t n;
	while ((!p->limit_bytes || p->bytes < p->limit_bytes) &&
	       (n = read(p->file_fd, buf, sizeof(buf))) > 0) {
		size_t len = (size_t)n;
		if (p->limit_bytes && p->bytes + len > p->limit_bytes)
			len = (size_t)(p->limit_bytes - p->bytes);
		if (write_full(p->pipe_fd, buf, len) < 0)
			break; /* QEMU went away: a failed load */
		p->bytes += len;
	}
	close(p->pipe_fd);
	return NULL;
}

/* A pipe with a pump on our end; *img gets the other end for the backend. */
static void pump_start(struct pump *p, bool reader, const char *file, uint64_t limit,
		       struct hv_image *img)
{
	int fds[2];
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	*p = (struct pump){ .limit_bytes = limit };
	p->file_fd = reader ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
			    : open(path, O_RDONLY | O_CLOEXEC);
	cr_assert(p->file_fd >= 0, "%s: %s", path, strerror(errno));
	p->pipe_fd = reader ? fds[0] : fds[1];
	*img = (struct hv_image){ .fd = reader ? fds[1] : fds[0] };
	cr_assert_eq(pthread_create(&p->thread, NULL, reader ? pump_read : pump_write, p), 0);
}

/* After the start call: migd closes its copy of the backend's end. */
static void pump_handed(struct hv_image *img)
{
	close(img->fd);
	img->fd = -1;
}

static void pump_join(struct pump *p)
{
	pthread_join(p->thread, NULL);
	close(p->file_fd);
}

/* Poll a save or load to its end, as the executor does. */
static struct hv_progress poll_to_end(uint64_t id)
{
	struct hv_progress pr;
	double t0 = now_s();
	for (;;) {
		cr_assert_eq(ops->migrate_poll(hv, id, &pr, err, sizeof(err)), 0, "poll: %s", err);
		if (pr.state != HV_MIG_ACTIVE)
			break;
		cr_assert_lt(now_s() - t0, OP_TIMEOUT_MS / 1000.0, "operation %" PRIu64
			     " still active after %d s", id, OP_TIMEOUT_MS / 1000);
		usleep(50000);
	}
	ops->migrate_forget(hv, id);
	return pr;
}

/* Save guest (paused by the caller) to file; returns the final progress. */
static struct hv_progress save_to(const char *guest, const char *file, int background,
				  uint64_t reader_limit, uint64_t *file_bytes)
{
	struct pump p;
	struct hv_image img;
	struct hv_save_params params = { .background = background };
	uint64_t id;
	pump_start(&p, true, file, reader_limit, &img);
	double t0 = now_s();
	int rc = ops->save_start(hv, guest, &img, &params, &id, err, sizeof(err));
	pump_handed(&img);
	cr_assert_eq(rc, 0, "save_start: %s", err);
	struct hv_progress pr = poll_to_end(id);
	double wall = now_s() - t0;
	pump_join(&p);
	*file_bytes = p.bytes;
	fprintf(stderr, "ckpt-figures: save of %s (%s asked): state %d, mode \"%s\", %" PRIu64
		" bytes in the file, QEMU transferred %" PRIu64 " of %" PRIu64 " bytes total, "
		"total_time %" PRIu64 " ms, downtime %" PRIu64 " ms, pause_ms %" PRIu64
		", wall %.2f s%s%s\n", guest, background ? "background" : "paused", pr.state,
		pr.mode, p.bytes, pr.transferred_bytes, pr.total_bytes, pr.total_time_ms,
		pr.downtime_ms, pr.pause_ms, wall, *pr.error ? ", error: " : "", pr.error);
	return pr;
}

static struct hv_progress load_from(const char *guest, const char *host, const char *file,
				    uint64_t limit)
{
	struct pump p;
	struct hv_image img;
	uint64_t id;
	pump_start(&p, false, file, limit, &img);
	double t0 = now_s();
	int rc = ops->load_start(hv, guest, host, &img, &id, err, sizeof(err));
	pump_handed(&img);
	cr_assert_eq(rc, 0, "load_start: %s", err);
	struct hv_progress pr = poll_to_end(id);
	pump_join(&p);
	fprintf(stderr, "ckpt-figures: load of %s on %s: state %d, %" PRIu64 " bytes fed, "
		"total_time %" PRIu64 " ms, wall %.2f s%s%s\n", guest, host, pr.state, p.bytes,
		pr.total_time_ms, now_s() - t0, *pr.error ? ", error: " : "", pr.error);
	return pr;
}

/* It runs: QEMU says so and its memory changes over a while. */
static void expect_runs(const char *guest, const char *host, const char *before_dump)
{
	expect_where(guest, host, 1);
	sleep(3);
	dump_memory(guest, host, "running.mem");
	size_t n = pages_differing(before_dump, "running.mem");
	cr_expect_gt(n, 0, "%s on %s: no page of memory changed in 3 s of running", guest, host);
}

static void expect_gone(const char *guest, const char *host)
{
	char path[PATH_MAX], file[64];
	struct hv_guest_info info;
	cr_expect_eq(ops->guest_info(hv, guest, &info, err, sizeof(err)), -ENOENT,
		     "%s still runs on %s", guest, info.host);
	cr_expect_eq(qvm_pid(hv, guest, host), 0, "a QEMU of %s is left on %s", guest, host);
	const char *const exts[] = { "pid", "qmp", "restoring" };
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		snprintf(file, sizeof(file), "%s.%s", host, exts[i]);
		path_of(path, sizeof(path), guest, file);
		cr_expect_neq(access(path, F_OK), 0, "%s is left", path);
	}
}

/* Destroy guest, load it from file on host, paused, and check that its
 * memory is the dump taken at the pause; then resume it and see it run. */
static void restore_and_check(const char *guest, const char *host, const char *file,
			      const char *pause_dump)
{
	char log[PATH_MAX], name[64];
	cr_assert_eq(ops->guest_destroy(hv, guest, err, sizeof(err)), 0, "destroy: %s", err);
	expect_gone(guest, "ckpt-a");
	struct hv_progress pr = load_from(guest, host, file, 0);
	cr_assert_eq(pr.state, HV_MIG_COMPLETED, "load: %s", pr.error);
	expect_where(guest, host, 0);
	dump_memory(guest, host, "loaded.mem");
	size_t n = pages_differing(pause_dump, "loaded.mem");
	cr_expect_eq(n, 0, "the loaded guest's memory differs from the saved one in %zu pages",
		     n);
	cr_assert_eq(ops->guest_resume(hv, guest, err, sizeof(err)), 0, "resume: %s", err);
	expect_runs(guest, host, "loaded.mem");
	snprintf(name, sizeof(name), "%s.log", host);
	path_of(log, sizeof(log), guest, name);
	cr_expect_eq(count_in_file(log, "Linux version"), 0, "the loaded guest booted (%s)", log);
	cr_expect_eq(count_in_file(log, "MIGD-GUEST-READY"), 0, "the loaded guest booted (%s)",
		     log);
}

/* ---- tests ---- */

Test(qmp_ckpt, paused_save_then_load_continues_the_guest)
{
	uint64_t bytes;
	create_and_boot("g1", "ckpt-a");
	uint64_t id;
	struct hv_image none = { .fd = -1 };
	/* a running guest is not saved; pause is idempotent */
	struct pump p;
	struct hv_image img;
	pump_start(&p, true, "refused.img", 0, &img);
	cr_expect_eq(ops->save_start(hv, "g1", &img, NULL, &id, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "paused"), "%s", err);
	pump_handed(&img);
	pump_join(&p);
	cr_expect_eq(ops->save_start(hv, "g1", &none, NULL, &id, err, sizeof(err)), -ENOTSUP);
	cr_assert_eq(ops->guest_pause(hv, "g1", err, sizeof(err)), 0, "pause: %s", err);
	cr_assert_eq(ops->guest_pause(hv, "g1", err, sizeof(err)), 0, "pause again: %s", err);
	expect_where("g1", "ckpt-a", 0);
	dump_memory("g1", "ckpt-a", "paused.mem");

	struct hv_progress pr = save_to("g1", "g1.img", 0, 0, &bytes);
	cr_assert_eq(pr.state, HV_MIG_COMPLETED, "save: %s", pr.error);
	cr_expect_str_eq(pr.mode, "paused");
	/* QEMU's total counts the firmware's RAM blocks too (a few hundred KiB) */
	cr_expect(pr.total_bytes >= (uint64_t)GUEST_MIB << 20 &&
		  pr.total_bytes < ((uint64_t)GUEST_MIB + 2) << 20, "total %" PRIu64,
		  pr.total_bytes);
	/* zero pages go as a few bytes each: the image is the RAM in use, at
	 * least the kernel and its initramfs (~35 MiB), never more than all */
	cr_expect_gt(bytes, 16u << 20, "image of %" PRIu64 " bytes", bytes);
	cr_expect_lt(bytes, pr.total_bytes + (4u << 20), "image of %" PRIu64 " bytes", bytes);
	cr_expect_leq(pr.transferred_bytes, bytes, "QEMU says %" PRIu64 " bytes, the file has %"
		      PRIu64, pr.transferred_bytes, bytes);
	cr_expect_gt(pr.transferred_bytes, bytes - (bytes >> 4));
	cr_expect_eq(pr.pause_ms, pr.total_time_ms);
	/* still paused (postmigrate), on its host, and cont runs it */
	expect_where("g1", "ckpt-a", 0);
	cr_assert_eq(ops->guest_resume(hv, "g1", err, sizeof(err)), 0, "resume: %s", err);
	cr_assert_eq(ops->guest_resume(hv, "g1", err, sizeof(err)), 0, "resume again: %s", err);
	expect_runs("g1", "ckpt-a", "paused.mem");

	/* a load while it runs is refused, naming where */
	pump_start(&p, false, "g1.img", 0, &img);
	cr_expect_eq(ops->load_start(hv, "g1", "ckpt-b", &img, &id, err, sizeof(err)), -EEXIST);
	cr_expect(strstr(err, "ckpt-a"), "%s", err);
	pump_handed(&img);
	pump_join(&p);

	restore_and_check("g1", "ckpt-b", "g1.img", "paused.mem");
	cr_expect_eq(ops->guest_destroy(hv, "g1", err, sizeof(err)), 0, "%s", err);
}

Test(qmp_ckpt, background_save_resumes_the_guest_and_loads_the_pause)
{
	uint64_t bytes;
	create_and_boot("g2", "ckpt-a");
	cr_assert_eq(ops->guest_pause(hv, "g2", err, sizeof(err)), 0, "pause: %s", err);
	dump_memory("g2", "ckpt-a", "paused.mem");
	struct hv_progress pr = save_to("g2", "g2.img", 1, 0, &bytes);
	cr_assert_eq(pr.state, HV_MIG_COMPLETED, "save: %s", pr.error);
	cr_assert(strcmp(pr.mode, "background") == 0 || strcmp(pr.mode, "paused") == 0, "mode %s",
		  pr.mode);
	if (strcmp(pr.mode, "background") == 0) {
		cr_expect_leq(pr.pause_ms, pr.total_time_ms);
		expect_runs("g2", "ckpt-a", "paused.mem"); /* running again, by itself */
	} else {
		fprintf(stderr, "ckpt-figures: background snapshot refused here: saved paused\n");
		expect_where("g2", "ckpt-a", 0);
		cr_assert_eq(ops->guest_resume(hv, "g2", err, sizeof(err)), 0, "%s", err);
	}
	cr_expect_gt(bytes, 16u << 20, "image of %" PRIu64 " bytes", bytes);
	/* it still migrates live afterwards */
	uint64_t id;
	cr_assert_eq(ops->migrate_start(hv, "g2", "ckpt-a", "ckpt-b", NULL, &id, err, sizeof(err)),
		     0, "migrate: %s", err);
	pr = poll_to_end(id);
	cr_assert_eq(pr.state, HV_MIG_COMPLETED, "migration after a save: %s", pr.error);
	cr_expect_eq(pr.rounds > 0, 1);
	expect_where("g2", "ckpt-b", 1);
	/* the image is the guest as of the pause, though it ran on meanwhile */
	restore_and_check("g2", "ckpt-b", "g2.img", "paused.mem");
	cr_expect_eq(ops->guest_destroy(hv, "g2", err, sizeof(err)), 0, "%s", err);
}

Test(qmp_ckpt, failed_save_and_truncated_load_leave_the_guest_whole)
{
	uint64_t bytes;
	create_and_boot("g3", "ckpt-a");
	cr_assert_eq(ops->guest_pause(hv, "g3", err, sizeof(err)), 0, "pause: %s", err);
	dump_memory("g3", "ckpt-a", "paused.mem");

	/* the reader goes away after 1 MiB: failed, the guest paused and alive */
	struct hv_progress pr = save_to("g3", "short.img", 0, 1u << 20, &bytes);
	cr_assert_eq(pr.state, HV_MIG_FAILED, "state %d", pr.state);
	cr_expect_neq(pr.error[0], '\0');
	expect_where("g3", "ckpt-a", 0);
	/* and a save afterwards works */
	pr = save_to("g3", "g3.img", 0, 0, &bytes);
	cr_assert_eq(pr.state, HV_MIG_COMPLETED, "save after a failed one: %s", pr.error);
	/* QEMU saves a guest again only after it ran: refused, saying so */
	struct pump p;
	struct hv_image img;
	uint64_t id;
	pump_start(&p, true, "again.img", 0, &img);
	cr_expect_eq(ops->save_start(hv, "g3", &img, NULL, &id, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "resume"), "%s", err);
	pump_handed(&img);
	pump_join(&p);
	cr_assert_eq(ops->guest_resume(hv, "g3", err, sizeof(err)), 0, "resume: %s", err);
	expect_runs("g3", "ckpt-a", "paused.mem");

	/* background, reader gone: failed, and this QEMU is marked as one that
	 * cannot send its RAM again. QEMU 7.2 leaves the guest's memory
	 * write-protected: the guest (and QEMU's QMP) may hang from here on,
	 * so nothing more is asked of this instance (migd(8) BUGS) */
	cr_assert_eq(ops->guest_pause(hv, "g3", err, sizeof(err)), 0, "pause: %s", err);
	pr = save_to("g3", "short-bg.img", 1, 1u << 20, &bytes);
	cr_assert_eq(pr.state, HV_MIG_FAILED, "background, reader gone: state %d", pr.state);
	cr_expect(strstr(pr.error, "hang"), "%s", pr.error);
	char nosave[PATH_MAX];
	path_of(nosave, sizeof(nosave), "g3", "ckpt-a.nosave");
	cr_expect_eq(access(nosave, F_OK), 0, "no %s", nosave);

	/* a truncated image: failed, and nothing of it left on the host */
	cr_assert_eq(ops->guest_destroy(hv, "g3", err, sizeof(err)), 0, "destroy: %s", err);
	cr_expect_eq(ops->guest_destroy(hv, "g3", err, sizeof(err)), -ENOENT);
	struct stat st;
	char img_path[PATH_MAX];
	snprintf(img_path, sizeof(img_path), "%s/g3.img", dir);
	cr_assert_eq(stat(img_path, &st), 0);
	pr = load_from("g3", "ckpt-b", "g3.img", (uint64_t)st.st_size / 2);
	cr_assert_eq(pr.state, HV_MIG_FAILED, "truncated load: state %d", pr.state);
	cr_expect_neq(pr.error[0], '\0');
	expect_gone("g3", "ckpt-b");

	/* the whole image still loads, into the state of the pause */
	cr_assert_eq(ops->guest_resume(hv, "g3", err, sizeof(err)), -ENOENT);
	pr = load_from("g3", "ckpt-b", "g3.img", 0);
	cr_assert_eq(pr.state, HV_MIG_COMPLETED, "load: %s", pr.error);
	dump_memory("g3", "ckpt-b", "loaded.mem");
	cr_expect_eq(pages_differing("paused.mem", "loaded.mem"), 0);
	cr_assert_eq(ops->guest_resume(hv, "g3", err, sizeof(err)), 0, "resume: %s", err);
	expect_runs("g3", "ckpt-b", "loaded.mem");
	cr_expect_eq(ops->guest_destroy(hv, "g3", err, sizeof(err)), 0, "%s", err);
}

Test(qmp_ckpt, config_defines_the_guest_again_and_is_checked)
{
	char *config = NULL, *again = NULL;
	/* no QEMU needed: a guest.json is made by guest_define alone */
	cr_expect_eq(ops->guest_config(hv, "nobody", &config, err, sizeof(err)), -ENOENT);
	char text[2048];
	snprintf(text, sizeof(text),
		 "{\"name\": \"d1\", \"memory_bytes\": 268435456, \"ip\": \"10.0.2.15\", "
		 "\"mac\": \"52:54:00:01:02:03\", \"argv\": [\"qemu-system-x86_64\", \"-m\", "
		 "\"256M\"]}");
	cr_assert_eq(ops->guest_define(hv, "d1", text, err, sizeof(err)), 0, "define: %s", err);
	cr_expect_eq(ops->guest_define(hv, "d1", text, err, sizeof(err)), -EEXIST);
	cr_assert_eq(ops->guest_config(hv, "d1", &config, err, sizeof(err)), 0, "%s", err);
	cr_expect(strstr(config, "\"memory_bytes\": 268435456"), "%s", config);
	/* the text of one guest does not define another */
	cr_expect_eq(ops->guest_define(hv, "d2", config, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "\"name\""), "%s", err);
	/* the fields QEMU needs are checked, each named */
	struct { const char *field, *json; } bad[] = {
		{ "memory_bytes", "{\"name\":\"d3\",\"memory_bytes\":\"1G\",\"ip\":\"x\",\"mac\":"
				  "\"52:54:00:01:02:03\",\"argv\":[\"qemu-system-x86_64\",\"-m\"]}" },
		{ "argv", "{\"name\":\"d3\",\"memory_bytes\":268435456,\"ip\":\"x\",\"mac\":"
			  "\"52:54:00:01:02:03\",\"argv\":[\"/bin/sh\",\"-c\"]}" },
		{ "-qmp", "{\"name\":\"d3\",\"memory_bytes\":268435456,\"ip\":\"x\",\"mac\":"
			  "\"52:54:00:01:02:03\",\"argv\":[\"qemu-system-x86_64\",\"-qmp\",\"x\"]}" },
		{ "line 1", "{\"name\":" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(ops->guest_define(hv, "d3", bad[i].json, err, sizeof(err)), -EINVAL,
			     "%s accepted", bad[i].field);
		cr_expect(strstr(err, bad[i].field), "%s: %s", bad[i].field, err);
	}
	cr_expect_eq(ops->guest_config(hv, "d3", &again, err, sizeof(err)), -ENOENT);
	free(config);
	free(again);
}

Test(qmp_ckpt, a_restart_kills_a_half_load_and_leaves_a_saved_guest_paused)
{
	uint64_t bytes, id;
	struct hv_progress pr;
	char marker[PATH_MAX];
	create_and_boot("g4", "ckpt-a");
	cr_assert_eq(ops->guest_pause(hv, "g4", err, sizeof(err)), 0, "pause: %s", err);
	dump_memory("g4", "ckpt-a", "paused.mem");
	pr = save_to("g4", "g4.img", 0, 0, &bytes);
	cr_assert_eq(pr.state, HV_MIG_COMPLETED, "save: %s", pr.error);
	cr_assert_eq(ops->guest_resume(hv, "g4", err, sizeof(err)), 0, "resume: %s", err);
	cr_assert_eq(ops->guest_pause(hv, "g4", err, sizeof(err)), 0, "pause: %s", err);

	/* migd stops in the middle of a save (its reader goes with it) */
	int fds[2];
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	struct hv_image img = { .fd = fds[1] };
	cr_assert_eq(ops->save_start(hv, "g4", &img, NULL, &id, err, sizeof(err)), 0, "%s", err);
	close(fds[1]);
	cr_assert_eq(ops->migrate_poll(hv, id, &pr, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(pr.state, HV_MIG_ACTIVE);
	ops->close(hv);
	close(fds[0]);
	open_hv();
	expect_where("g4", "ckpt-a", 0); /* not resumed: the executor decides */
	path_of(marker, sizeof(marker), "g4", "ckpt-a.saving");
	cr_expect_neq(access(marker, F_OK), 0, "%s is left", marker);

	cr_assert_eq(ops->guest_destroy(hv, "g4", err, sizeof(err)), 0, "destroy: %s", err);

	/* migd stops in the middle of a load (its writer stalls: a dup of the
	 * pipe's end stays open here) */
	struct pump p;
	struct stat st;
	char img_path[PATH_MAX];
	snprintf(img_path, sizeof(img_path), "%s/g4.img", dir);
	cr_assert_eq(stat(img_path, &st), 0);
	pump_start(&p, false, "g4.img", (uint64_t)st.st_size / 2, &img);
	int stall = dup(p.pipe_fd);
	cr_assert_eq(ops->load_start(hv, "g4", "ckpt-b", &img, &id, err, sizeof(err)), 0, "%s",
		     err);
	pump_handed(&img);
	double t0 = now_s();
	do { /* until QEMU is up and reading */
		cr_assert_eq(ops->migrate_poll(hv, id, &pr, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(pr.state, HV_MIG_ACTIVE, "load: %s", pr.error);
		cr_assert_lt(now_s() - t0, 60);
		usleep(100000);
	} while (qvm_pid(hv, "g4", "ckpt-b") == 0 || p.bytes < (uint64_t)st.st_size / 2);
	pump_join(&p); /* its half written; the pipe stays open through stall */
	path_of(marker, sizeof(marker), "g4", "ckpt-b.restoring");
	cr_expect_eq(access(marker, F_OK), 0, "no %s while loading", marker);
	ops->close(hv);
	open_hv();
	expect_gone("g4", "ckpt-b");
	close(stall);
	/* and the image loads afterwards */
	pr = load_from("g4", "ckpt-b", "g4.img", 0);
	cr_assert_eq(pr.state, HV_MIG_COMPLETED, "load: %s", pr.error);
	dump_memory("g4", "ckpt-b", "loaded.mem");
	cr_expect_eq(pages_differing("paused.mem", "loaded.mem"), 0);
	cr_expect_eq(ops->guest_destroy(hv, "g4", err, sizeof(err)), 0, "%s", err);
}

/* A reader that reads nothing until told to: a save blocked on its pipe. */
struct stalled {
	int fd;
	volatile int go;
	pthread_t thread;
};

static void *drain_when_told(void *arg)
{
	struct stalled *s = arg;
	char buf[1 << 16];
	while (!s->go)
		usleep(10000);
	while (read(s->fd, buf, sizeof(buf)) > 0)
		;
	close(s->fd);
	return NULL;
}

Test(qmp_ckpt, aborted_save_and_load_leave_the_guest_paused_or_gone)
{
	uint64_t id;
	struct hv_progress pr;
	create_and_boot("g5", "ckpt-a");
	cr_assert_eq(ops->guest_pause(hv, "g5", err, sizeof(err)), 0, "pause: %s", err);

	/* a save blocked on its reader: QEMU cancels once its write returns */
	int fds[2];
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	struct stalled s = { .fd = fds[0] };
	cr_assert_eq(pthread_create(&s.thread, NULL, drain_when_told, &s), 0);
	struct hv_image img = { .fd = fds[1] };
	cr_assert_eq(ops->save_start(hv, "g5", &img, NULL, &id, err, sizeof(err)), 0, "%s", err);
	close(fds[1]);
	cr_assert_eq(ops->migrate_poll(hv, id, &pr, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(pr.state, HV_MIG_ACTIVE);
	cr_assert_eq(ops->migrate_abort(hv, id, err, sizeof(err)), 0, "abort: %s", err);
	cr_expect_eq(ops->migrate_abort(hv, id, err, sizeof(err)), -EALREADY);
	/* guest_resume waits for the save to end */
	cr_expect_eq(ops->guest_resume(hv, "g5", err, sizeof(err)), -EBUSY);
	s.go = 1;
	pr = poll_to_end(id);
	pthread_join(s.thread, NULL);
	cr_expect_eq(pr.state, HV_MIG_CANCELLED, "state %d: %s", pr.state, pr.error);
	expect_where("g5", "ckpt-a", 0);
	/* a save after the cancelled one completes */
	uint64_t bytes;
	pr = save_to("g5", "g5.img", 0, 0, &bytes);
	cr_assert_eq(pr.state, HV_MIG_COMPLETED, "save after an aborted one: %s", pr.error);

	/* a load whose writer stalls, aborted: nothing of it is left */
	cr_assert_eq(ops->guest_destroy(hv, "g5", err, sizeof(err)), 0, "destroy: %s", err);
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	img.fd = fds[0];
	cr_assert_eq(ops->load_start(hv, "g5", "ckpt-b", &img, &id, err, sizeof(err)), 0, "%s",
		     err);
	close(fds[0]);
	double t0 = now_s();
	do { /* until QEMU is up and waiting for the image */
		cr_assert_eq(ops->migrate_poll(hv, id, &pr, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(pr.state, HV_MIG_ACTIVE, "load: %s", pr.error);
		cr_assert_lt(now_s() - t0, 60);
		usleep(100000);
	} while (qvm_pid(hv, "g5", "ckpt-b") == 0);
	cr_assert_eq(ops->migrate_abort(hv, id, err, sizeof(err)), 0, "abort: %s", err);
	pr = poll_to_end(id);
	cr_expect_eq(pr.state, HV_MIG_CANCELLED, "state %d: %s", pr.state, pr.error);
	expect_gone("g5", "ckpt-b");
	close(fds[1]);
}
