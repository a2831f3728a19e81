/*
 * hv_qmp_vm: a qmp guest's QEMU instances (see hv_qmp_vm.h): their files,
 * processes, taps and QMP connections, where a guest runs, and the
 * reconciliation at open. Nothing here keeps a migration's state: that is
 * hv_qmp.c's; here the truth is the files and the live processes.
 */
#include "hv_qmp_vm.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "qmp.h"
#include "util.h"

/* ---- small helpers ---- */

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

void hv_qmp_mac(const char *name, char *buf, size_t len)
{
	uint32_t h = fnv1a(name);
	snprintf(buf, len, "52:54:00:%02x:%02x:%02x", (h >> 16) & 0xff, (h >> 8) & 0xff, h & 0xff);
}

static void tap_name(const char *guest, char *buf, size_t len)
{
	snprintf(buf, len, "mq%08x", fnv1a(guest)); /* IFNAMSIZ is 16 */
}

/*
 * KVM that can run a guest: /dev/kvm usable and the CPU showing vmx or svm.
 * Some virtual machines (Firecracker here) offer a /dev/kvm whose vCPUs
 * lack what QEMU's default CPU model asks for (pni): SeaBIOS runs but a
 * Linux kernel never prints a line. Without the flags, TCG is the safe
 * choice.
 */
bool qvm_kvm_usable(void)
{
	char line[4096];
	bool flags = false;
	if (access("/dev/kvm", R_OK | W_OK) != 0)
		return false;
	FILE *f = fopen("/proc/cpuinfo", "re");
	while (f && !flags && fgets(line, sizeof(line), f))
		if (strncmp(line, "flags", 5) == 0)
			flags = strstr(line, " vmx") || strstr(line, " svm");
	if (f)
		fclose(f);
	return flags;
}

static bool has_vmlinuz(const char *dir)
{
	char path[PATH_MAX];
	return snprintf_checked(path, sizeof(path), "%s/vmlinuz", dir) >= 0 &&
	       access(path, R_OK) == 0;
}

void hv_qmp_resolve_image_dir(const char *image_dir, const char *exe_dir, char *out, size_t len)
{
	char cand[PATH_MAX];
	*out = '\0';
	if (image_dir && strcmp(image_dir, "auto") != 0) {
		if (strcmp(image_dir, "none") != 0)
			snprintf(out, len, "%s", image_dir);
		return;
	}
	if (exe_dir && snprintf_checked(cand, sizeof(cand), "%s/../image", exe_dir) >= 0 &&
	    has_vmlinuz(cand)) {
		char *real = realpath(cand, NULL);
		snprintf(out, len, "%s", real ? real : cand);
		free(real);
		return;
	}
	if (has_vmlinuz(HV_QMP_SYSTEM_IMAGE_DIR))
		snprintf(out, len, "%s", HV_QMP_SYSTEM_IMAGE_DIR);
}

/* Names become file names and QEMU arguments: keep them plain. */
bool qvm_valid_name(const char *name)
{
	size_t len = name ? strlen(name) : 0;
	if (len == 0 || len >= NAME_MAX_LEN || name[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '-' && c != '_' && c != '.')
			return false;
	}
	return true;
}

int qvm_path(const struct hv *hv, const char *guest, const char *host, const char *ext,
		     char *buf, size_t len)
{
	return snprintf_checked(buf, len, "%s/%s/%s.%s", hv->state_dir, guest, host, ext) < 0 ? -ENAMETOOLONG : 0;
}

static int guest_dir(const struct hv *hv, const char *guest, char *buf, size_t len)
{
	return snprintf_checked(buf, len, "%s/%s", hv->state_dir, guest) < 0 ? -ENAMETOOLONG : 0;
}

bool qvm_file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

int qvm_write_file(const char *path, const char *text, bool durable)
{
	char tmp[PATH_MAX + 8];
	if (snprintf_checked(tmp, sizeof(tmp), "%s.tmp", path) < 0)
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int rc = write_full(fd, text, strlen(text));
	if (rc == 0 && durable && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

/* The first len - 1 bytes of a file, trimmed, "" when unreadable. */
static void read_text(const char *path, char *buf, size_t len)
{
	*buf = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	for (size_t i = strlen(buf); i > 0 && isspace((unsigned char)buf[i - 1]); i--)
		buf[i - 1] = '\0';
	for (char *p = buf; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

/* ---- processes ---- */

/* Is pid a QEMU serving the socket sock? Guards against pid reuse. */
static bool pid_serves(pid_t pid, const char *sock)
{
	char path[64], cmdline[8192];
	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, cmdline, sizeof(cmdline) - 1);
	close(fd);
	if (n <= 0)
		return false;
	for (ssize_t i = 0; i < n; i++)
		if (cmdline[i] == '\0')
			cmdline[i] = ' ';
	cmdline[n] = '\0';
	/* a zombie has an empty cmdline: already handled by n <= 0 */
	return strstr(cmdline, sock) != NULL;
}

/* A process that exited is gone even while it waits, a zombie, for its
 * reaper (QEMU daemonized: init, which may take its time). */
bool qvm_pid_gone(pid_t pid)
{
	char path[64], stat[256];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	read_text(path, stat, sizeof(stat));
	const char *paren = strrchr(stat, ')');
	return !paren || paren[1] == '\0' || paren[2] == 'Z' || paren[2] == 'X';
}

/* The live QEMU of an instance, or 0. */
pid_t qvm_pid(const struct hv *hv, const char *guest, const char *host)
{
	char pidfile[PATH_MAX], sock[PATH_MAX], text[32];
	if (qvm_path(hv, guest, host, "pid", pidfile, sizeof(pidfile)) < 0 ||
	    qvm_path(hv, guest, host, "qmp", sock, sizeof(sock)) < 0)
		return 0;
	read_text(pidfile, text, sizeof(text));
	uint64_t pid;
	if (parse_u64(text, 1, INT_MAX, &pid) < 0)
		return 0;
	return pid_serves((pid_t)pid, sock) ? (pid_t)pid : 0;
}

/* Run argv (a short command) and wait: its exit status (-errno when it could
 * not run), its stdout and stderr in out. */
static int run_capture(char *const argv[], char *out, size_t outlen)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -errno;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	size_t used = 0;
	ssize_t n;
	while ((n = read(fds[0], out + used, outlen - 1 - used)) > 0 || (n < 0 && errno == EINTR))
		used += n > 0 ? (size_t)n : 0;
	close(fds[0]);
	out[used] = '\0';
	for (size_t i = used; i > 0 && isspace((unsigned char)out[i - 1]); i--)
		out[i - 1] = '\0';
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Run argv (a short command like ip) and wait; 0, or -EIO with its stderr in err. */
static int run_cmd(char *const argv[], char *err, size_t errlen)
{
	char out[512];
	int rc = run_capture(argv, out, sizeof(out));
	if (rc == 0)
		return 0;
	if (rc < 0)
		snprintf(out, sizeof(out), "%s", strerror(-rc));
	snprintf(err, errlen, "%s %s %s %s: %s", argv[0], argv[1], argv[2], argv[3],
		 *out ? out : "failed");
	return -EIO;
}

int qvm_qemu_major(const char *qemu)
{
	char out[512];
	char *argv[] = { (char *)qemu, "--version", NULL };
	int major;
	if (run_capture(argv, out, sizeof(out)) != 0)
		return -1;
	const char *v = strstr(out, "version ");
	return v && sscanf(v, "version %d.", &major) == 1 ? major : -1;
}

/*
 * A persistent tap on the bridge. Its own MAC starts with fe (libvirt's
 * habit): a Linux bridge without an address of its own takes the lowest
 * MAC of its ports, and a tap with a random lower one would change the
 * bridge's MAC as guests come and go, leaving the neighbours' ARP caches
 * pointing at the old one (migrations to the host then time out).
 *
 * Two runs of ip, not four: each is a fork and exec in migd's loop, on the
 * way of every migration. A leftover of a crash is usually reused as it is
 * (tuntap add takes an existing persistent tap); only when add fails is it
 * deleted and made again.
 */
static int tap_create(const char *netns, const char *tap, const char *bridge, const char *mac,
		      char *err, size_t errlen)
{
	char ns[NAME_MAX_LEN], t[16], br[16], tap_mac[32], ignored[256];
	snprintf(ns, sizeof(ns), "%s", netns);
	snprintf(t, sizeof(t), "%s", tap);
	snprintf(br, sizeof(br), "%s", bridge);
	snprintf(tap_mac, sizeof(tap_mac), "fe%s", strlen(mac) == 17 ? mac + 2 : ":54:00:00:00:01");
	char *del[] = { "ip", "-n", ns, "link", "del", t, NULL };
	char *add[] = { "ip", "-n", ns, "tuntap", "add", "dev", t, "mode", "tap", NULL };
	char *up[] = { "ip", "-n", ns, "link", "set", "dev", t, "address", tap_mac,
		       "master", br, "up", NULL };
	int rc = run_cmd(add, ignored, sizeof(ignored));
	if (rc < 0) { /* a leftover in a state add does not take */
		run_cmd(del, ignored, sizeof(ignored));
		rc = run_cmd(add, err, errlen);
	}
	if (rc == 0)
		rc = run_cmd(up, err, errlen);
	return rc;
}

static void tap_delete(const char *netns, const char *tap)
{
	char ns[NAME_MAX_LEN], t[16], err[256];
	if (!*netns || !*tap)
		return;
	snprintf(ns, sizeof(ns), "%s", netns);
	snprintf(t, sizeof(t), "%s", tap);
	char *del[] = { "ip", "-n", ns, "link", "del", t, NULL };
	if (run_cmd(del, err, sizeof(err)) < 0)
		log_debug("qmp: %s", err);
}

/*
 * The guest's VM generation ID (QEMU's vmgenid device, an ACPI GUID the
 * guest's kernel watches). A Linux guest reseeds its random generator when
 * it changes (add_vmfork_randomness, 5.18 and later): without that, a
 * guest restored from a checkpoint runs its kernel's CRNG from the state
 * it had at the cut and hands out the same "random" bytes a second time
 * (MUNGE nonces, TLS keys, UUIDs). One GUID per generation, kept in
 * STATE/GUEST/vmgenid: a boot or a migration's destination carries the
 * current one (a live migration is the same generation), a restore makes
 * a new one. Guests recorded before the device existed (no "vmgenid" in
 * guest.json) are started as before, or their migrations would break.
 */
static int vmgenid_arg(const struct hv *hv, const char *guest, enum qvm_start how, char *buf,
		       size_t len, char *err, size_t errlen)
{
	char path[PATH_MAX], guid[64];
	if (snprintf_checked(path, sizeof(path), "%s/%s/vmgenid", hv->state_dir, guest) < 0)
		return -ENAMETOOLONG;
	read_text(path, guid, sizeof(guid));
	if (how == QVM_RESTORE || strlen(guid) != 36) {
		uint8_t r[16];
		if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
			snprintf(err, errlen, "guest %s: no random bytes for its VM generation ID: %s",
				 guest, strerror(errno));
			return -EIO;
		}
		r[6] = (uint8_t)((r[6] & 0x0f) | 0x40); /* version 4 */
		r[8] = (uint8_t)((r[8] & 0x3f) | 0x80); /* RFC 4122 variant */
		snprintf(guid, sizeof(guid),
			 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
			 r[12], r[13], r[14], r[15]);
		char line[64];
		snprintf(line, sizeof(line), "%s\n", guid);
		int rc = qvm_write_file(path, line, true);
		if (rc < 0) {
			snprintf(err, errlen, "guest %s: writing %s: %s", guest, path, strerror(-rc));
			return rc;
		}
	}
	snprintf(buf, len, "vmgenid,guid=%s", guid);
	return 0;
}

/* ---- QMP connections, one per live instance ---- */

void qvm_conn_drop(struct hv *hv, const char *guest, const char *host)
{
	for (size_t i = 0; i < hv->n_conns; i++) {
		struct conn *c = &hv->conns[i];
		if (strcmp(c->guest, guest) == 0 && strcmp(c->host, host) == 0) {
			qmp_close(c->qmp);
			hv->conns[i] = hv->conns[--hv->n_conns];
			return;
		}
	}
}

/* The connection to an instance's QEMU, opened when needed; NULL with err. */
static struct qmp *conn_get(struct hv *hv, const char *guest, const char *host, char *err,
			    size_t errlen)
{
	pid_t pid = qvm_pid(hv, guest, host);
	for (size_t i = 0; i < hv->n_conns; i++) {
		struct conn *c = &hv->conns[i];
		if (strcmp(c->guest, guest) != 0 || strcmp(c->host, host) != 0)
			continue;
		if (c->pid == pid && pid && !qmp_broken(c->qmp))
			return c->qmp;
		qvm_conn_drop(hv, guest, host);
		break;
	}
	if (!pid) {
		snprintf(err, errlen, "guest %s: no QEMU running on %s", guest, host);
		return NULL;
	}
	char sock[PATH_MAX];
	struct qmp *q;
	qvm_path(hv, guest, host, "qmp", sock, sizeof(sock));
	if (qmp_connect(sock, QMP_TIMEOUT_MS, &q, err, errlen) < 0)
		return NULL;
	if (GROW(hv->conns, hv->cap_conns, hv->n_conns + 1) < 0) {
		qmp_close(q);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	struct conn *c = &hv->conns[hv->n_conns++];
	snprintf(c->guest, sizeof(c->guest), "%s", guest);
	snprintf(c->host, sizeof(c->host), "%s", host);
	c->pid = pid;
	c->qmp = q;
	return q;
}

/* One command to an instance; *result as qmp_execute. */
int qvm_exec(struct hv *hv, const char *guest, const char *host, const char *cmd,
		     json_t *args, json_t **result, char *err, size_t errlen)
{
	return qvm_exec_fd(hv, guest, host, cmd, args, -1, result, err, errlen);
}

int qvm_exec_fd(struct hv *hv, const char *guest, const char *host, const char *cmd,
		json_t *args, int fd, json_t **result, char *err, size_t errlen)
{
	char why[300];
	struct qmp *q = conn_get(hv, guest, host, why, sizeof(why));
	if (!q) {
		json_decref(args);
		snprintf(err, errlen, "%s", why);
		return -ESRCH;
	}
	int rc = qmp_execute_fd(q, cmd, args, fd, QMP_TIMEOUT_MS, result, why, sizeof(why));
	if (rc < 0)
		snprintf(err, errlen, "guest %s on %s: %s", guest, host, why);
	return rc;
}

/* query-status's status ("running", "paused", "inmigrate", ...). */
int qvm_status(struct hv *hv, const char *guest, const char *host, char *status,
		       size_t len, char *err, size_t errlen)
{
	json_t *r;
	int rc = qvm_exec(hv, guest, host, "query-status", NULL, &r, err, errlen);
	if (rc < 0)
		return rc;
	const char *s = json_string_value(json_object_get(r, "status"));
	snprintf(status, len, "%s", s ? s : "unknown");
	json_decref(r);
	return 0;
}

/* Kill an instance (verified to be our QEMU) and remove its files and tap. */
void qvm_destroy(struct hv *hv, const char *guest, const char *host)
{
	static const char *const exts[] = { "pid", "qmp", "log", "err", "net", "incoming",
					    "restoring", "saving", "nosave" };
	char path[PATH_MAX], net[256];
	pid_t pid = qvm_pid(hv, guest, host);
	qvm_conn_drop(hv, guest, host);
	if (pid > 0) {
		kill(pid, SIGKILL);
		for (int i = 0; i < 500 && !qvm_pid_gone(pid); i++)
			usleep(10000); /* not our child: it is reaped by init */
	}
	if (qvm_path(hv, guest, host, "net", path, sizeof(path)) == 0) {
		read_text(path, net, sizeof(net));
		char ns[NAME_MAX_LEN] = "", tap[16] = "";
		if (sscanf(net, "%63s %15s", ns, tap) == 2)
			tap_delete(ns, tap);
	}
	for (size_t i = 0; i < ARRAY_SIZE(exts); i++)
		if (qvm_path(hv, guest, host, exts[i], path, sizeof(path)) == 0)
			unlink(path);
}

/* Ask an instance to quit and wait (bounded) for it to go; then clean up. */
static void inst_quit(struct hv *hv, const char *guest, const char *host)
{
	char err[256];
	pid_t pid = qvm_pid(hv, guest, host);
	qvm_exec(hv, guest, host, "quit", NULL, NULL, err, sizeof(err));
	for (int i = 0; pid > 0 && i < QUIT_TIMEOUT_MS / 10 && !qvm_pid_gone(pid); i++)
		usleep(10000);
	qvm_destroy(hv, guest, host);
}

/* Hosts of a guest with a live QEMU (names into hosts, at most max). Files
 * of instances whose QEMU is gone are removed on the way. */
size_t qvm_instances(struct hv *hv, const char *guest, char hosts[][NAME_MAX_LEN], size_t max)
{
	char dir[PATH_MAX];
	size_t n = 0;
	if (guest_dir(hv, guest, dir, sizeof(dir)) < 0)
		return 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *e;
	char dead[8][NAME_MAX_LEN];
	size_t n_dead = 0;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 5 || len - 4 >= NAME_MAX_LEN || strcmp(e->d_name + len - 4, ".pid") != 0)
			continue;
		char host[NAME_MAX_LEN];
		snprintf(host, sizeof(host), "%.*s", (int)(len - 4), e->d_name);
		if (qvm_pid(hv, guest, host) > 0) {
			if (n < max)
				snprintf(hosts[n++], NAME_MAX_LEN, "%s", host);
		} else if (n_dead < ARRAY_SIZE(dead)) {
			snprintf(dead[n_dead++], NAME_MAX_LEN, "%s", host);
		}
	}
	closedir(d);
	for (size_t i = 0; i < n_dead; i++) {
		log_info("qmp: guest %s: QEMU on %s is gone; removing its files", guest, dead[i]);
		qvm_destroy(hv, guest, dead[i]);
	}
	return n;
}

bool qvm_marked(const struct hv *hv, const char *guest, const char *host, const char *marker)
{
	char path[PATH_MAX];
	return qvm_path(hv, guest, host, marker, path, sizeof(path)) == 0 &&
	       qvm_file_exists(path);
}

static bool inst_incoming(const struct hv *hv, const char *guest, const char *host)
{
	return qvm_marked(hv, guest, host, "incoming");
}

/* A load (hv_qmp_ckpt.c) not yet complete: the guest does not run there. */
static bool inst_restoring(const struct hv *hv, const char *guest, const char *host)
{
	return qvm_marked(hv, guest, host, "restoring");
}

int qvm_guest_json_path(const struct hv *hv, const char *guest, char *buf, size_t len)
{
	return snprintf_checked(buf, len, "%s/%s/guest.json", hv->state_dir, guest) < 0
		       ? -ENAMETOOLONG : 0;
}

/* ---- guests: identity and command line ---- */

/* The next free guest address A.B.1.2 .. A.B.1.254 of the subnet of addr. */
static int alloc_ip(struct hv *hv, const char *addr, char *out, size_t len)
{
	unsigned a, b;
	bool used[256] = { false };
	if (sscanf(addr, "%u.%u.", &a, &b) != 2 || a > 255 || b > 255)
		return -EINVAL;
	DIR *d = opendir(hv->state_dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char path[PATH_MAX];
		if (e->d_name[0] == '.' ||
		    snprintf_checked(path, sizeof(path), "%s/%s/guest.json", hv->state_dir, e->d_name) < 0)
			continue;
		json_t *j = json_load_file(path, 0, NULL);
		unsigned x, y, z;
		const char *ip = json_string_value(json_object_get(j, "ip"));
		if (ip && sscanf(ip, "%u.%u.1.%u", &x, &y, &z) == 3 && x == a && y == b && z < 256)
			used[z] = true;
		json_decref(j);
	}
	if (d)
		closedir(d);
	for (unsigned z = 2; z <= 254; z++) {
		if (!used[z]) {
			snprintf(out, len, "%u.%u.1.%u", a, b, z);
			return 0;
		}
	}
	return -ENOSPC;
}

static json_t *load_guest(const struct hv *hv, const char *guest)
{
	char path[PATH_MAX];
	if (snprintf_checked(path, sizeof(path), "%s/%s/guest.json", hv->state_dir, guest) < 0)
		return NULL;
	json_t *j = json_load_file(path, 0, NULL);
	if (j && !json_is_array(json_object_get(j, "argv"))) {
		json_decref(j);
		return NULL;
	}
	return j;
}

#define ARG(x) json_array_append_new(argv, json_string(x))

/* The argv every instance of the guest shares (CONTRACTS.md), without the
 * per-instance parts (netdev, serial, QMP, pidfile, incoming). */
static json_t *guest_argv(const struct hv *hv, const char *name, uint64_t mem_bytes,
			  const char *ip, const char *gw, int prefix, const char *mac)
{
	char buf[PATH_MAX + 64];
	json_t *argv = json_array();
	ARG(hv->qemu);
	ARG("-machine"), ARG("pc"), ARG("-accel"), ARG(hv->accel);
	/* padded: see tcg_ram_pad_kib in hv_qmp_vm.h */
	snprintf(buf, sizeof(buf), "%" PRIu64 "k", (mem_bytes + MIB - 1) / MIB * 1024 + hv->tcg_ram_pad_kib);
	ARG("-m"), ARG(buf), ARG("-smp"), ARG("1");
	ARG("-nodefaults"), ARG("-no-user-config"), ARG("-display"), ARG("none");
	ARG("-vga"), ARG("none");
	if (*hv->image_dir) {
		snprintf(buf, sizeof(buf), "%s/vmlinuz", hv->image_dir);
		ARG("-kernel"), ARG(buf);
		snprintf(buf, sizeof(buf), "%s/initrd.img", hv->image_dir);
		ARG("-initrd"), ARG(buf);
		snprintf(buf, sizeof(buf), "console=ttyS0 no_timer_check migd.name=%s migd.ip=%s/%d migd.gw=%s%s%s",
			 name, ip, prefix, gw, *hv->agent_endpoint ? " migd.agent=" : "",
			 hv->agent_endpoint);
		ARG("-append"), ARG(buf);
	}
	snprintf(buf, sizeof(buf), "virtio-net-pci,netdev=n0,mac=%s,romfile=", mac);
	ARG("-device"), ARG(buf);
	if (*hv->sfs_conf) {
		snprintf(buf, sizeof(buf), "name=opt/migd/sfs.conf,file=%s", hv->sfs_conf);
		ARG("-fw_cfg"), ARG(buf);
	}
	/* the agent's key pair migd made at guest add, and migd's public key
	 * for the agent to pin (guest-init hands both to migagent) */
	char key[PATH_MAX + 300], pub[PATH_MAX + 16], opt[PATH_MAX + 400];
	snprintf(key, sizeof(key), "%s/agents/%s.key", hv->keys_dir, name);
	snprintf(pub, sizeof(pub), "%s/migd.pub", hv->keys_dir);
	if (*hv->keys_dir && access(key, R_OK) == 0 && access(pub, R_OK) == 0) {
		snprintf(opt, sizeof(opt), "name=opt/migd/agent.key,file=%s", key);
		ARG("-fw_cfg"), ARG(opt);
		snprintf(opt, sizeof(opt), "name=opt/migd/migd.pub,file=%s", pub);
		ARG("-fw_cfg"), ARG(opt);
	}
	return argv;
}

/* guest.json for a new guest on host h; an existing one is kept (same
 * address and argv as before). */
int qvm_record(struct hv *hv, const struct qhost *h, const struct hv_guest_spec *spec,
			char *err, size_t errlen)
{
	char dir[PATH_MAX], path[PATH_MAX], ip[32], mac[32];
	json_t *old = load_guest(hv, spec->name);
	if (old) {
		json_decref(old);
		return 0;
	}
	if (guest_dir(hv, spec->name, dir, sizeof(dir)) < 0 ||
	    snprintf_checked(path, sizeof(path), "%s/guest.json", dir) < 0 ||
	    mkdir_p(dir, 0755) < 0) {
		snprintf(err, errlen, "guest %s: cannot make its directory %s", spec->name, dir);
		return -EIO;
	}
	const char *gw;
	int prefix = 16;
	char gwbuf[32];
	if (*h->netns) {
		if (alloc_ip(hv, h->addr, ip, sizeof(ip)) < 0) {
			snprintf(err, errlen, "guest %s: no free address A.B.1.2-254 next to %s",
				 spec->name, h->addr);
			return -ENOSPC;
		}
		unsigned a, b;
		sscanf(h->addr, "%u.%u.", &a, &b);
		snprintf(gwbuf, sizeof(gwbuf), "%u.%u.0.1", a, b);
		gw = gwbuf;
	} else {
		snprintf(ip, sizeof(ip), "10.0.2.15"); /* -netdev user's */
		gw = "10.0.2.2";
		prefix = 24;
	}
	hv_qmp_mac(spec->name, mac, sizeof(mac));
	json_t *j = json_pack("{s:s, s:I, s:s, s:s, s:b, s:o}", "name", spec->name,
			      "memory_bytes", (json_int_t)spec->memory_bytes, "ip", ip, "mac", mac,
			      "vmgenid", 1, "argv",
			      guest_argv(hv, spec->name, spec->memory_bytes, ip, gw, prefix, mac));
	char *text = j ? json_dumps(j, JSON_INDENT(1)) : NULL;
	int rc = text ? qvm_write_file(path, text, true) : -ENOMEM;
	free(text);
	json_decref(j);
	if (rc < 0)
		snprintf(err, errlen, "guest %s: writing %s: %s", spec->name, path, strerror(-rc));
	return rc;
}

/*
 * Start the QEMU of guest on host h (incoming: as a migration destination
 * waiting for migrate-incoming). Returns at once with the launcher's pid
 * in *launcher: QEMU's -daemonize parent, which exits 0 once QEMU is up.
 */
int qvm_spawn(struct hv *hv, const char *guest, const struct qhost *h, enum qvm_start how,
	      pid_t *launcher, char *err, size_t errlen)
{
	char sock[PATH_MAX], pidf[PATH_MAX], logf[PATH_MAX], errf[PATH_MAX], netf[PATH_MAX];
	char netns_path[PATH_MAX], tap[16], buf[PATH_MAX + 32];
	int rc = 0;
	json_t *g = load_guest(hv, guest);
	if (!g) {
		snprintf(err, errlen, "guest %s: no readable guest.json in %s/%s", guest,
			 hv->state_dir, guest);
		return -ENOENT;
	}
	if (qvm_path(hv, guest, h->name, "qmp", sock, sizeof(sock)) < 0 || strlen(sock) >= 108) {
		snprintf(err, errlen, "guest %s: QMP socket path %s is too long for a Unix socket",
			 guest, sock);
		json_decref(g);
		return -ENAMETOOLONG;
	}
	qvm_path(hv, guest, h->name, "pid", pidf, sizeof(pidf));
	qvm_path(hv, guest, h->name, "log", logf, sizeof(logf));
	qvm_path(hv, guest, h->name, "err", errf, sizeof(errf));
	qvm_path(hv, guest, h->name, "net", netf, sizeof(netf));
	unlink(sock);
	unlink(pidf);
	tap_name(guest, tap, sizeof(tap));
	json_t *argv = json_deep_copy(json_object_get(g, "argv"));
	char mac[32];
	snprintf(mac, sizeof(mac), "%s", json_string_value(json_object_get(g, "mac")) ?: "");
	bool genid = json_is_true(json_object_get(g, "vmgenid"));
	json_decref(g);
	if (genid) {
		if ((rc = vmgenid_arg(hv, guest, how, buf, sizeof(buf), err, errlen)) < 0)
			goto out;
		ARG("-device"), ARG(buf);
	}
	if (*h->netns) {
		if (geteuid() != 0) {
			snprintf(err, errlen, "host %s is network namespace %s: entering it and making "
				 "a tap there needs root", h->name, h->netns);
			rc = -EPERM;
			goto out;
		}
		snprintf(netns_path, sizeof(netns_path), "/run/netns/%s", h->netns);
		snprintf(buf, sizeof(buf), "%s %s\n", h->netns, tap);
		if ((rc = qvm_write_file(netf, buf, false)) < 0 ||
		    (rc = tap_create(h->netns, tap, h->bridge, mac, err, errlen)) < 0)
			goto out;
		snprintf(buf, sizeof(buf), "tap,id=n0,ifname=%s,script=no,downscript=no", tap);
	} else {
		snprintf(buf, sizeof(buf), "user,id=n0");
	}
	ARG("-netdev"), ARG(buf);
	snprintf(buf, sizeof(buf), "file:%s", logf);
	ARG("-serial"), ARG(buf);
	snprintf(buf, sizeof(buf), "unix:%s,server=on,wait=off", sock);
	ARG("-qmp"), ARG(buf);
	ARG("-daemonize"), ARG("-pidfile"), ARG(pidf);
	if (how != QVM_BOOT)
		ARG("-incoming"), ARG("defer");
	if (how == QVM_RESTORE) /* stays paused once loaded, whatever the image says */
		ARG("-S");
	size_t n = json_array_size(argv);
	char **args = calloc(n + 1, sizeof(*args));
	if (!args) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		args[i] = (char *)json_string_value(json_array_get(argv, i));
	int nsfd = *h->netns ? open(netns_path, O_RDONLY | O_CLOEXEC) : -1;
	int utsfd = *h->netns && *h->uts ? open(h->uts, O_RDONLY | O_CLOEXEC) : -1;
	int errfd = open(errf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if ((*h->netns && nsfd < 0) || errfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "guest %s on %s: %s: %s", guest, h->name,
			 errfd < 0 ? errf : netns_path, strerror(errno));
	} else {
		pid_t pid = fork();
		if (pid == 0) {
			sigset_t none;
			sigemptyset(&none);
			sigprocmask(SIG_SETMASK, &none, NULL);
			signal(SIGPIPE, SIG_DFL);
			signal(SIGHUP, SIG_DFL);
			signal(SIGTERM, SIG_DFL);
			signal(SIGINT, SIG_DFL);
			setsid(); /* a ^C to a foreground migd must not reach QEMU */
			if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) < 0)
				_exit(126);
			if (utsfd >= 0 && setns(utsfd, CLONE_NEWUTS) < 0)
				_exit(126);
			int null = open("/dev/null", O_RDWR);
			dup2(null, 0);
			dup2(errfd, 1);
			dup2(errfd, 2);
			close_range(3, ~0u, 0);
			execvp(args[0], args);
			_exit(127);
		}
		if (pid < 0) {
			rc = -errno;
			snprintf(err, errlen, "guest %s on %s: fork: %s", guest, h->name, strerror(errno));
		}
		*launcher = pid;
	}
	if (nsfd >= 0)
		close(nsfd);
	if (utsfd >= 0)
		close(utsfd);
	if (errfd >= 0)
		close(errfd);
	free(args);
out:
	json_decref(argv);
	if (rc < 0 && *h->netns)
		tap_delete(h->netns, tap);
	return rc;
}

/* The launcher's verdict: 1 still running, 0 QEMU is up, <0 failed (err). */
int qvm_launcher_done(struct hv *hv, const char *guest, const char *host, pid_t launcher,
			 bool block, char *err, size_t errlen)
{
	int status;
	pid_t r;
	uint64_t deadline = now_ms() + SPAWN_TIMEOUT_MS;
	for (;;) {
		r = waitpid(launcher, &status, WNOHANG);
		if (r < 0 && errno == EINTR)
			continue;
		if (r != 0 || !block || now_ms() >= deadline)
			break;
		usleep(10000);
	}
	if (r == 0) {
		if (!block)
			return 1;
		kill(launcher, SIGKILL);
		waitpid(launcher, &status, 0);
		snprintf(err, errlen, "guest %s on %s: QEMU did not start within %d s", guest, host,
			 SPAWN_TIMEOUT_MS / 1000);
		return -ETIMEDOUT;
	}
	if (r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char errf[PATH_MAX], text[400];
	qvm_path(hv, guest, host, "err", errf, sizeof(errf));
	read_text(errf, text, sizeof(text));
	if (r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 126)
		snprintf(text, sizeof(text), "cannot enter the host's network namespace");
	snprintf(err, errlen, "guest %s on %s: QEMU did not start (%s %d): %s", guest, host,
		 r > 0 && WIFSIGNALED(status) ? "signal" : "exit status",
		 r > 0 ? (WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status)) : -1,
		 *text ? text : "no message");
	return -EIO;
}

/* Make sure the guest's QEMU on host runs (cont when paused). */
void qvm_ensure_running(struct hv *hv, const char *guest, const char *host)
{
	char status[32], err[300];
	if (qvm_status(hv, guest, host, status, sizeof(status), err, sizeof(err)) < 0) {
		log_warnx("qmp: %s", err);
		return;
	}
	if (strcmp(status, "running") == 0)
		return;
	log_warnx("qmp: guest %s on %s is %s: resuming it", guest, host, status);
	if (qvm_exec(hv, guest, host, "cont", NULL, NULL, err, sizeof(err)) < 0)
		log_warnx("qmp: %s", err);
}

/* ---- where a guest runs ---- */

/* The host the guest runs on (a live instance that is not an unfinished
 * migration destination), with its status. -ENOENT when none. */
int qvm_where(struct hv *hv, const char *guest, char *host, size_t len, char *status,
		       size_t slen)
{
	char hosts[4][NAME_MAX_LEN], err[300];
	size_t n = qvm_instances(hv, guest, hosts, 4);
	int found = -ENOENT;
	for (size_t pass = 0; pass < 2 && found < 0; pass++) {
		for (size_t i = 0; i < n && found < 0; i++) {
			bool incoming = inst_incoming(hv, guest, hosts[i]);
			if (inst_restoring(hv, guest, hosts[i]) ||
			    qvm_status(hv, guest, hosts[i], status, slen, err, sizeof(err)) < 0)
				continue;
			/* pass 0: a source or a settled guest; pass 1: a destination
			 * already running (its source gone). A lone instance in
			 * postmigrate is a guest a save left paused, not a source. */
			if (pass == 0 && (incoming || (n > 1 && strcmp(status, "postmigrate") == 0)))
				continue;
			if (pass == 1 && strcmp(status, "running") != 0)
				continue;
			snprintf(host, len, "%s", hosts[i]);
			found = 0;
		}
	}
	return found;
}

int qvm_info(struct hv *hv, const char *guest, struct hv_guest_info *out)
{
	char host[NAME_MAX_LEN], status[32];
	if (!qvm_valid_name(guest) || qvm_where(hv, guest, host, sizeof(host), status,
					     sizeof(status)) < 0)
		return -ENOENT;
	json_t *j = load_guest(hv, guest);
	*out = (struct hv_guest_info){ .running = strcmp(status, "running") == 0 };
	out->memory_bytes = (uint64_t)json_integer_value(json_object_get(j, "memory_bytes"));
	const char *ip = json_string_value(json_object_get(j, "ip"));
	snprintf(out->addr, sizeof(out->addr), "%s", ip ? ip : "");
	json_decref(j);
	snprintf(out->name, sizeof(out->name), "%s", guest);
	snprintf(out->host, sizeof(out->host), "%s", host);
	return 0;
}

/* ---- reconciliation at open ---- */

static const char *migrate_status(struct hv *hv, const char *guest, const char *host,
				  char *buf, size_t len)
{
	json_t *r;
	char err[300];
	snprintf(buf, len, "none");
	if (qvm_exec(hv, guest, host, "query-migrate", NULL, &r, err, sizeof(err)) == 0) {
		const char *s = json_string_value(json_object_get(r, "status"));
		if (s)
			snprintf(buf, len, "%s", s);
		json_decref(r);
	}
	return buf;
}

static bool mig_status_final(const char *s)
{
	return !strcmp(s, "completed") || !strcmp(s, "failed") || !strcmp(s, "cancelled") ||
	       !strcmp(s, "none");
}

/* dst has the incoming marker; src (maybe "") is the other live instance. */
static void reconcile_incoming(struct hv *hv, const char *guest, const char *src,
			       const char *dst)
{
	char st[32], err[300];
	if (*src) {
		migrate_status(hv, guest, src, st, sizeof(st));
		if (!mig_status_final(st)) {
			log_warnx("qmp: guest %s: migration %s -> %s was %s when migd stopped; "
				  "cancelling it", guest, src, dst, st);
			qvm_exec(hv, guest, src, "migrate_cancel", NULL, NULL, err, sizeof(err));
			for (int i = 0; i < RECONCILE_WAIT_MS / 20; i++) {
				if (mig_status_final(migrate_status(hv, guest, src, st, sizeof(st))))
					break;
				usleep(20000);
			}
		}
	}
	char dst_status[32] = "";
	bool completed = !*src || strcmp(st, "completed") == 0;
	if (completed) {
		for (int i = 0; i < RECONCILE_WAIT_MS / 20; i++) {
			if (qvm_status(hv, guest, dst, dst_status, sizeof(dst_status), err,
					sizeof(err)) < 0 || strcmp(dst_status, "inmigrate") != 0)
				break;
			usleep(20000);
		}
	}
	if (completed && (!strcmp(dst_status, "running") || !strcmp(dst_status, "paused"))) {
		log_warnx("qmp: guest %s: its migration %s -> %s completed; finishing it on %s",
			  guest, *src ? src : "?", dst, dst);
		if (*src)
			inst_quit(hv, guest, src);
		char marker[PATH_MAX];
		qvm_path(hv, guest, dst, "incoming", marker, sizeof(marker));
		unlink(marker);
		qvm_ensure_running(hv, guest, dst);
		return;
	}
	log_warnx("qmp: guest %s: removing the unfinished destination on %s%s%s", guest, dst,
		  *src ? "; it stays on " : "", src);
	qvm_destroy(hv, guest, dst);
	if (*src)
		qvm_ensure_running(hv, guest, src);
}

/* Whether a migration capability is on in an instance's QEMU. */
static bool cap_on(struct hv *hv, const char *guest, const char *host, const char *cap)
{
	json_t *r, *c;
	char err[300];
	size_t i;
	bool on = false;
	if (qvm_exec(hv, guest, host, "query-migrate-capabilities", NULL, &r, err, sizeof(err)) < 0)
		return false;
	json_array_foreach(r, i, c)
		if (!strcmp(json_string_value(json_object_get(c, "capability")) ?: "", cap))
			on = json_is_true(json_object_get(c, "state"));
	json_decref(r);
	return on;
}

/*
 * A save (hv_qmp_ckpt.c) migd did not see to its end: cancel it in QEMU if
 * it still writes (its reader, migd, is gone anyway) and leave the guest as
 * it is, paused: whether it runs again is the executor's decision, made
 * from its checkpoint row, not this backend's.
 */
static void reconcile_save(struct hv *hv, const char *guest, const char *host)
{
	char st[32], err[300], marker[PATH_MAX];
	migrate_status(hv, guest, host, st, sizeof(st));
	if (!mig_status_final(st)) {
		/* Let it end by itself: migd-stream reads the stream to its end
		 * even after migd died, and cancelling a background snapshot
		 * leaves QEMU 7.2 unable to save or migrate the guest again. */
		log_info("qmp: guest %s: a save on %s was %s when migd stopped; waiting for it to "
			 "end", guest, host, st);
		for (int i = 0; i < RECONCILE_SAVE_WAIT_MS / 20; i++) {
			if (mig_status_final(migrate_status(hv, guest, host, st, sizeof(st))))
				break;
			usleep(20000);
		}
	}
	if (!mig_status_final(st)) {
		log_warnx("qmp: guest %s: a save on %s was still %s %d s after migd's restart; "
			  "cancelling it", guest, host, st, RECONCILE_SAVE_WAIT_MS / 1000);
		qvm_exec(hv, guest, host, "migrate_cancel", NULL, NULL, err, sizeof(err));
		for (int i = 0; i < RECONCILE_WAIT_MS / 20; i++) {
			if (mig_status_final(migrate_status(hv, guest, host, st, sizeof(st))))
				break;
			usleep(20000);
		}
	}
	if ((!strcmp(st, "failed") || !strcmp(st, "cancelled")) &&
	    cap_on(hv, guest, host, "background-snapshot")) {
		/* QEMU 7.2 cannot send this guest's RAM again (qvm_check_can_send) */
		qvm_path(hv, guest, host, "nosave", marker, sizeof(marker));
		qvm_write_file(marker, "background save failed\n", false);
		log_warnx("qmp: guest %s on %s: its background save failed: QEMU cannot save or "
			  "migrate it again", guest, host);
	}
	qvm_path(hv, guest, host, "saving", marker, sizeof(marker));
	unlink(marker);
}

static void reconcile_guest(struct hv *hv, const char *guest)
{
	char hosts[4][NAME_MAX_LEN], status[32], err[300];
	size_t n = qvm_instances(hv, guest, hosts, 4);
	const char *dst = NULL, *src = "";
	for (size_t i = 0; i < n; i++) {
		if (inst_restoring(hv, guest, hosts[i])) {
			/* a load never reported complete: its image may be half read */
			log_warnx("qmp: guest %s: removing the unfinished load on %s", guest, hosts[i]);
			qvm_destroy(hv, guest, hosts[i]);
			memmove(hosts[i], hosts[n - 1], sizeof(hosts[i]));
			n--, i--;
		} else if (qvm_marked(hv, guest, hosts[i], "saving")) {
			reconcile_save(hv, guest, hosts[i]);
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (inst_incoming(hv, guest, hosts[i]))
			dst = hosts[i];
		else
			src = hosts[i];
	}
	if (dst) {
		reconcile_incoming(hv, guest, src, dst);
		return;
	}
	/* no destination: a settled guest (or one left after a crash) */
	for (size_t i = 0; i < n; i++) {
		if (qvm_status(hv, guest, hosts[i], status, sizeof(status), err, sizeof(err)) < 0)
			continue;
		if (n > 1 && strcmp(status, "postmigrate") == 0) {
			log_warnx("qmp: guest %s: quitting its migrated-away copy on %s", guest,
				  hosts[i]);
			inst_quit(hv, guest, hosts[i]);
		} else if (strcmp(status, "paused") == 0 || strcmp(status, "postmigrate") == 0) {
			/* paused by a checkpoint (guest_pause, a save): migrations
			 * never leave a guest so; the executor decides */
			log_info("qmp: guest %s on %s is %s (a checkpoint's pause or save): left "
				 "so for migd to decide", guest, hosts[i], status);
		} else if (strcmp(status, "running") != 0) {
			qvm_ensure_running(hv, guest, hosts[i]);
		}
	}
}

void qvm_reconcile_all(struct hv *hv)
{
	DIR *d = opendir(hv->state_dir);
	struct dirent *e;
	char names[256][NAME_MAX_LEN];
	size_t n = 0;
	while (d && (e = readdir(d)) && n < ARRAY_SIZE(names))
		if (qvm_valid_name(e->d_name))
			snprintf(names[n++], NAME_MAX_LEN, "%.63s", e->d_name);
	if (d)
		closedir(d);
	for (size_t i = 0; i < n; i++)
		reconcile_guest(hv, names[i]);
}
