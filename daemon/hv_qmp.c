/*
 * hv_qmp: the QEMU backend. migd starts, migrates and stops QEMU processes
 * itself and talks to each over QMP on a Unix socket (qmp.c).
 *
 * Hosts. qmp:///HOST[?netns=NS&addr=A&cluster=NAME]. Without netns/addr
 * the host is read from the virtual cluster's
 * /run/vcluster/NAME/host/HOST.env (cluster default "vc"; lines netns=,
 * addr=, bridge=, uts=); with no such file it is a loopback host: QEMU in migd's
 * own network namespace, migrations to 127.0.0.1, the guest on -netdev
 * user. A namespace host runs its QEMUs inside the namespace (setns(2) in
 * the child before exec; also the host's UTS namespace when its file names
 * one) with a persistent tap device made there and
 * enslaved to the namespace's bridge, and receives migrations on its addr.
 *
 * Guests. The truth is on disk and in the live processes, never only in
 * memory, because QEMU outlives migd: each guest has a directory
 * STATE/GUEST/ with guest.json (memory, address, MAC and the argv shared by
 * every instance, fixed at creation so that source and destination always
 * match) and per host instance HOST.pid (QEMU's -pidfile), HOST.qmp (its
 * QMP socket), HOST.log (serial console), HOST.err (QEMU's stderr until it
 * daemonized), HOST.net (namespace and tap, to clean up) and, while the
 * instance is a migration destination not yet complete, HOST.incoming.
 * Where a guest runs is where a live instance without the incoming marker
 * is; guest_info/list_guests ask each live QEMU (query-status).
 *
 * A migration is a state machine advanced by migrate_poll so that nothing
 * blocks for long: spawn the destination with the same argv plus
 * "-incoming defer" (its launcher, QEMU's -daemonize parent, exits once it
 * is up) -> set capabilities and parameters on both ends, migrate-incoming
 * on the destination and migrate on the source -> poll query-migrate ->
 * completed: the destination must be running, then quit the source ->
 * done. Failure or cancel at any point: kill the destination, clean its
 * files and tap, and make sure the source runs (cont if left paused). The
 * incoming marker is written before the destination starts and removed
 * only after the source quit, so a crash of migd at any point leaves files
 * that tell what happened; open() settles every guest (qmp_reconcile):
 * an unfinished incoming migration is cancelled and its destination
 * killed, a completed one gets its source quit. A guest never runs on two
 * hosts, and is never left paused.
 *
 * Every entry point takes the driver's mutex.
 */
#include "hv_qmp.h"

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
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "qmp.h"
#include "util.h"

#define NAME_MAX_LEN 64
#define QMP_TIMEOUT_MS 3000
#define SPAWN_TIMEOUT_MS 60000
#define SWITCH_TIMEOUT_MS 30000
#define QUIT_TIMEOUT_MS 10000
#define RECONCILE_WAIT_MS 15000
#define MIB ((uint64_t)1024 * 1024)
#define UNCAPPED_BPS 107374182400ull /* QEMU's own default is 32 MiB/s: far too low */

struct qhost {
	char name[NAME_MAX_LEN];
	char uri[512];
	char netns[NAME_MAX_LEN];     /* "": loopback */
	char addr[64];                /* where it receives migrations */
	char bridge[16];
	char uts[PATH_MAX];           /* its UTS namespace (a vcluster host's hostname), or "" */
};

struct conn {                         /* a QMP connection kept per instance */
	char guest[NAME_MAX_LEN], host[NAME_MAX_LEN];
	pid_t pid;
	struct qmp *qmp;
};

enum mig_phase { PH_SPAWN, PH_SETUP, PH_RUNNING, PH_SWITCHED, PH_QUITTING, PH_DONE };

struct qmig {
	uint64_t id;
	char guest[NAME_MAX_LEN], src[NAME_MAX_LEN], dst[NAME_MAX_LEN];
	enum mig_phase phase;
	pid_t launcher;
	uint64_t phase_deadline_ms;
	struct hv_migrate_params params;
	int abort_requested;
	int postcopy_started;
	pid_t src_pid;
	uint64_t started_ms;
	uint64_t completed_ms;        /* when QEMU first said completed */
	struct hv_progress progress;  /* the latest; final once phase is PH_DONE */
};

struct hv {
	pthread_mutex_t lock;
	char state_dir[PATH_MAX];
	char image_dir[PATH_MAX];     /* "": BIOS only */
	char qemu[PATH_MAX];
	char accel[64];               /* "-accel" argument */
	char agent_endpoint[256];
	char sfs_conf[PATH_MAX];
	unsigned port_base, next_port;
	struct qhost *hosts;
	size_t n_hosts, cap_hosts;
	struct conn *conns;
	size_t n_conns, cap_conns;
	struct qmig **migs;
	size_t n_migs, cap_migs;
	uint64_t next_mig_id;
};

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
static bool kvm_usable(void)
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
static bool valid_name(const char *name)
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

static int inst_path(const struct hv *hv, const char *guest, const char *host, const char *ext,
		     char *buf, size_t len)
{
	return snprintf_checked(buf, len, "%s/%s/%s.%s", hv->state_dir, guest, host, ext) < 0 ? -ENAMETOOLONG : 0;
}

static int guest_dir(const struct hv *hv, const char *guest, char *buf, size_t len)
{
	return snprintf_checked(buf, len, "%s/%s", hv->state_dir, guest) < 0 ? -ENAMETOOLONG : 0;
}

static bool file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static int write_file(const char *path, const char *text)
{
	char tmp[PATH_MAX + 8];
	if (snprintf_checked(tmp, sizeof(tmp), "%s.tmp", path) < 0)
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int rc = write_full(fd, text, strlen(text));
	if (rc == 0 && fsync(fd) < 0)
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
static bool pid_gone(pid_t pid)
{
	char path[64], stat[256];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	read_text(path, stat, sizeof(stat));
	const char *paren = strrchr(stat, ')');
	return !paren || paren[1] == '\0' || paren[2] == 'Z' || paren[2] == 'X';
}

/* The live QEMU of an instance, or 0. */
static pid_t inst_pid(const struct hv *hv, const char *guest, const char *host)
{
	char pidfile[PATH_MAX], sock[PATH_MAX], text[32];
	if (inst_path(hv, guest, host, "pid", pidfile, sizeof(pidfile)) < 0 ||
	    inst_path(hv, guest, host, "qmp", sock, sizeof(sock)) < 0)
		return 0;
	read_text(pidfile, text, sizeof(text));
	uint64_t pid;
	if (parse_u64(text, 1, INT_MAX, &pid) < 0)
		return 0;
	return pid_serves((pid_t)pid, sock) ? (pid_t)pid : 0;
}

/* Run argv (a short command like ip) and wait; 0, or -EIO with its stderr in err. */
static int run_cmd(char *const argv[], char *err, size_t errlen)
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
	char out[512];
	size_t used = 0;
	ssize_t n;
	while ((n = read(fds[0], out + used, sizeof(out) - 1 - used)) > 0 ||
	       (n < 0 && errno == EINTR))
		used += n > 0 ? (size_t)n : 0;
	close(fds[0]);
	out[used] = '\0';
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	for (size_t i = strlen(out); i > 0 && isspace((unsigned char)out[i - 1]); i--)
		out[i - 1] = '\0';
	snprintf(err, errlen, "%s %s %s %s: %s", argv[0], argv[1], argv[2], argv[3],
		 *out ? out : "failed");
	return -EIO;
}

static int tap_create(const char *netns, const char *tap, const char *bridge, char *err,
		      size_t errlen)
{
	char ns[NAME_MAX_LEN], t[16], br[16], ignored[256];
	snprintf(ns, sizeof(ns), "%s", netns);
	snprintf(t, sizeof(t), "%s", tap);
	snprintf(br, sizeof(br), "%s", bridge);
	char *del[] = { "ip", "-n", ns, "link", "del", t, NULL };
	char *add[] = { "ip", "-n", ns, "tuntap", "add", "dev", t, "mode", "tap", NULL };
	char *up[] = { "ip", "-n", ns, "link", "set", "dev", t, "master", br, "up", NULL };
	run_cmd(del, ignored, sizeof(ignored)); /* a leftover of a crash */
	int rc = run_cmd(add, err, errlen);
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

/* ---- QMP connections, one per live instance ---- */

static void conn_drop(struct hv *hv, const char *guest, const char *host)
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
	pid_t pid = inst_pid(hv, guest, host);
	for (size_t i = 0; i < hv->n_conns; i++) {
		struct conn *c = &hv->conns[i];
		if (strcmp(c->guest, guest) != 0 || strcmp(c->host, host) != 0)
			continue;
		if (c->pid == pid && pid && !qmp_broken(c->qmp))
			return c->qmp;
		conn_drop(hv, guest, host);
		break;
	}
	if (!pid) {
		snprintf(err, errlen, "guest %s: no QEMU running on %s", guest, host);
		return NULL;
	}
	char sock[PATH_MAX];
	struct qmp *q;
	inst_path(hv, guest, host, "qmp", sock, sizeof(sock));
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
static int inst_exec(struct hv *hv, const char *guest, const char *host, const char *cmd,
		     json_t *args, json_t **result, char *err, size_t errlen)
{
	char why[300];
	struct qmp *q = conn_get(hv, guest, host, why, sizeof(why));
	if (!q) {
		json_decref(args);
		snprintf(err, errlen, "%s", why);
		return -ESRCH;
	}
	int rc = qmp_execute(q, cmd, args, QMP_TIMEOUT_MS, result, why, sizeof(why));
	if (rc < 0)
		snprintf(err, errlen, "guest %s on %s: %s", guest, host, why);
	return rc;
}

/* query-status's status ("running", "paused", "inmigrate", ...). */
static int inst_status(struct hv *hv, const char *guest, const char *host, char *status,
		       size_t len, char *err, size_t errlen)
{
	json_t *r;
	int rc = inst_exec(hv, guest, host, "query-status", NULL, &r, err, errlen);
	if (rc < 0)
		return rc;
	const char *s = json_string_value(json_object_get(r, "status"));
	snprintf(status, len, "%s", s ? s : "unknown");
	json_decref(r);
	return 0;
}

/* Kill an instance (verified to be our QEMU) and remove its files and tap. */
static void inst_destroy(struct hv *hv, const char *guest, const char *host)
{
	static const char *const exts[] = { "pid", "qmp", "log", "err", "net", "incoming" };
	char path[PATH_MAX], net[256];
	pid_t pid = inst_pid(hv, guest, host);
	conn_drop(hv, guest, host);
	if (pid > 0) {
		kill(pid, SIGKILL);
		for (int i = 0; i < 500 && !pid_gone(pid); i++)
			usleep(10000); /* not our child: it is reaped by init */
	}
	if (inst_path(hv, guest, host, "net", path, sizeof(path)) == 0) {
		read_text(path, net, sizeof(net));
		char ns[NAME_MAX_LEN] = "", tap[16] = "";
		if (sscanf(net, "%63s %15s", ns, tap) == 2)
			tap_delete(ns, tap);
	}
	for (size_t i = 0; i < ARRAY_SIZE(exts); i++)
		if (inst_path(hv, guest, host, exts[i], path, sizeof(path)) == 0)
			unlink(path);
}

/* Ask an instance to quit and wait (bounded) for it to go; then clean up. */
static void inst_quit(struct hv *hv, const char *guest, const char *host)
{
	char err[256];
	pid_t pid = inst_pid(hv, guest, host);
	inst_exec(hv, guest, host, "quit", NULL, NULL, err, sizeof(err));
	for (int i = 0; pid > 0 && i < QUIT_TIMEOUT_MS / 10 && !pid_gone(pid); i++)
		usleep(10000);
	inst_destroy(hv, guest, host);
}

/* Hosts of a guest with a live QEMU (names into hosts, at most max). Files
 * of instances whose QEMU is gone are removed on the way. */
static size_t guest_instances(struct hv *hv, const char *guest, char hosts[][NAME_MAX_LEN],
			      size_t max)
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
		if (inst_pid(hv, guest, host) > 0) {
			if (n < max)
				snprintf(hosts[n++], NAME_MAX_LEN, "%s", host);
		} else if (n_dead < ARRAY_SIZE(dead)) {
			snprintf(dead[n_dead++], NAME_MAX_LEN, "%s", host);
		}
	}
	closedir(d);
	for (size_t i = 0; i < n_dead; i++) {
		log_info("qmp: guest %s: QEMU on %s is gone; removing its files", guest, dead[i]);
		inst_destroy(hv, guest, dead[i]);
	}
	return n;
}

static bool inst_incoming(const struct hv *hv, const char *guest, const char *host)
{
	char path[PATH_MAX];
	return inst_path(hv, guest, host, "incoming", path, sizeof(path)) == 0 &&
	       file_exists(path);
}

/* ---- hosts ---- */

static struct qhost *host_find(struct hv *hv, const char *name)
{
	for (size_t i = 0; name && i < hv->n_hosts; i++)
		if (strcmp(hv->hosts[i].name, name) == 0)
			return &hv->hosts[i];
	return NULL;
}

/* Lines key=value of a vcluster host file into h (netns, addr, bridge). */
static void read_host_env(const char *path, struct qhost *h, bool *netns_set, bool *addr_set)
{
	FILE *f = fopen(path, "re");
	char line[256];
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		char *v = eq + 1;
		if (*v == '"' && v[strlen(v) - 1] == '"' && strlen(v) >= 2) {
			v[strlen(v) - 1] = '\0';
			v++;
		}
		if (strcmp(line, "netns") == 0 && !*netns_set)
			snprintf(h->netns, sizeof(h->netns), "%s", v);
		else if (strcmp(line, "addr") == 0 && !*addr_set)
			snprintf(h->addr, sizeof(h->addr), "%s", v);
		else if (strcmp(line, "bridge") == 0)
			snprintf(h->bridge, sizeof(h->bridge), "%s", v);
		else if (strcmp(line, "uts") == 0 && !*netns_set)
			snprintf(h->uts, sizeof(h->uts), "%s", v);
	}
	fclose(f);
}

static int parse_uri(const char *uri, struct qhost *h, char *err, size_t errlen)
{
	char buf[512], cluster[NAME_MAX_LEN] = "vc";
	bool netns_set = false, addr_set = false;
	memset(h, 0, sizeof(*h));
	if (strncmp(uri, "qmp:///", 7) != 0) {
		snprintf(err, errlen, "qmp URI \"%s\": expected qmp:///HOST[?netns=NS&addr=A&cluster=NAME]",
			 uri);
		return -EINVAL;
	}
	if (snprintf_checked(buf, sizeof(buf), "%s", uri + 7) < 0) {
		snprintf(err, errlen, "qmp URI \"%.60s...\": too long", uri);
		return -EINVAL;
	}
	char *query = strchr(buf, '?');
	if (query)
		*query++ = '\0';
	if (!valid_name(buf)) {
		snprintf(err, errlen, "qmp URI \"%s\": host \"%s\": expected letters, digits, - _ .",
			 uri, buf);
		return -EINVAL;
	}
	snprintf(h->name, sizeof(h->name), "%.63s", buf);
	snprintf(h->uri, sizeof(h->uri), "%s", uri);
	snprintf(h->bridge, sizeof(h->bridge), "br0");
	char *save = NULL;
	for (char *it = query ? strtok_r(query, "&", &save) : NULL; it; it = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(it, '=');
		if (!eq || eq == it || !eq[1]) {
			snprintf(err, errlen, "qmp URI \"%s\": \"%s\": expected key=value", uri, it);
			return -EINVAL;
		}
		*eq = '\0';
		const char *v = eq + 1;
		if (strcmp(it, "netns") == 0 && valid_name(v)) {
			snprintf(h->netns, sizeof(h->netns), "%s", v);
			netns_set = true;
		} else if (strcmp(it, "addr") == 0 && strlen(v) < sizeof(h->addr) &&
			   strspn(v, "0123456789.") == strlen(v)) {
			snprintf(h->addr, sizeof(h->addr), "%s", v);
			addr_set = true;
		} else if (strcmp(it, "cluster") == 0 && valid_name(v)) {
			snprintf(cluster, sizeof(cluster), "%s", v);
		} else {
			snprintf(err, errlen, "qmp URI \"%s\": %s=\"%s\": %s", uri, it, v,
				 strcmp(it, "netns") && strcmp(it, "addr") && strcmp(it, "cluster")
					 ? "unknown parameter (known: netns, addr, cluster)"
					 : "bad value");
			return -EINVAL;
		}
	}
	if (!netns_set || !addr_set) {
		char env[PATH_MAX];
		snprintf(env, sizeof(env), "%s/%s/host/%s.env", HV_QMP_VCLUSTER_RUN, cluster, h->name);
		read_host_env(env, h, &netns_set, &addr_set);
	}
	if (*h->netns && !*h->addr) {
		snprintf(err, errlen, "qmp URI \"%s\": network namespace %s but no addr= for migrations",
			 uri, h->netns);
		return -EINVAL;
	}
	if (!*h->addr)
		snprintf(h->addr, sizeof(h->addr), "127.0.0.1");
	return 0;
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
	snprintf(buf, sizeof(buf), "%" PRIu64, (mem_bytes + MIB - 1) / MIB);
	ARG("-m"), ARG(buf), ARG("-smp"), ARG("1");
	ARG("-nodefaults"), ARG("-no-user-config"), ARG("-display"), ARG("none");
	ARG("-vga"), ARG("none");
	if (*hv->image_dir) {
		snprintf(buf, sizeof(buf), "%s/vmlinuz", hv->image_dir);
		ARG("-kernel"), ARG(buf);
		snprintf(buf, sizeof(buf), "%s/initrd.img", hv->image_dir);
		ARG("-initrd"), ARG(buf);
		snprintf(buf, sizeof(buf), "console=ttyS0 migd.name=%s migd.ip=%s/%d migd.gw=%s%s%s",
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
	return argv;
}

/* guest.json for a new guest on host h; an existing one is kept (same
 * address and argv as before). */
static int guest_record(struct hv *hv, const struct qhost *h, const struct hv_guest_spec *spec,
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
	json_t *j = json_pack("{s:s, s:I, s:s, s:s, s:o}", "name", spec->name, "memory_bytes",
			      (json_int_t)spec->memory_bytes, "ip", ip, "mac", mac, "argv",
			      guest_argv(hv, spec->name, spec->memory_bytes, ip, gw, prefix, mac));
	char *text = j ? json_dumps(j, JSON_INDENT(1)) : NULL;
	int rc = text ? write_file(path, text) : -ENOMEM;
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
static int inst_spawn(struct hv *hv, const char *guest, const struct qhost *h, bool incoming,
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
	if (inst_path(hv, guest, h->name, "qmp", sock, sizeof(sock)) < 0 || strlen(sock) >= 108) {
		snprintf(err, errlen, "guest %s: QMP socket path %s is too long for a Unix socket",
			 guest, sock);
		json_decref(g);
		return -ENAMETOOLONG;
	}
	inst_path(hv, guest, h->name, "pid", pidf, sizeof(pidf));
	inst_path(hv, guest, h->name, "log", logf, sizeof(logf));
	inst_path(hv, guest, h->name, "err", errf, sizeof(errf));
	inst_path(hv, guest, h->name, "net", netf, sizeof(netf));
	unlink(sock);
	unlink(pidf);
	tap_name(guest, tap, sizeof(tap));
	json_t *argv = json_deep_copy(json_object_get(g, "argv"));
	json_decref(g);
	if (*h->netns) {
		if (geteuid() != 0) {
			snprintf(err, errlen, "host %s is network namespace %s: entering it and making "
				 "a tap there needs root", h->name, h->netns);
			rc = -EPERM;
			goto out;
		}
		snprintf(netns_path, sizeof(netns_path), "/run/netns/%s", h->netns);
		snprintf(buf, sizeof(buf), "%s %s\n", h->netns, tap);
		if ((rc = write_file(netf, buf)) < 0 ||
		    (rc = tap_create(h->netns, tap, h->bridge, err, errlen)) < 0)
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
	if (incoming)
		ARG("-incoming"), ARG("defer");
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
static int launcher_done(struct hv *hv, const char *guest, const char *host, pid_t launcher,
			 bool block_ms_total, char *err, size_t errlen)
{
	int status;
	pid_t r;
	uint64_t deadline = now_ms() + SPAWN_TIMEOUT_MS;
	for (;;) {
		r = waitpid(launcher, &status, WNOHANG);
		if (r < 0 && errno == EINTR)
			continue;
		if (r != 0 || !block_ms_total || now_ms() >= deadline)
			break;
		usleep(10000);
	}
	if (r == 0) {
		if (!block_ms_total)
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
	inst_path(hv, guest, host, "err", errf, sizeof(errf));
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
static void ensure_running(struct hv *hv, const char *guest, const char *host)
{
	char status[32], err[300];
	if (inst_status(hv, guest, host, status, sizeof(status), err, sizeof(err)) < 0) {
		log_warnx("qmp: %s", err);
		return;
	}
	if (strcmp(status, "running") == 0)
		return;
	log_warnx("qmp: guest %s on %s is %s: resuming it", guest, host, status);
	if (inst_exec(hv, guest, host, "cont", NULL, NULL, err, sizeof(err)) < 0)
		log_warnx("qmp: %s", err);
}

/* ---- where a guest runs ---- */

/* The host the guest runs on (a live instance that is not an unfinished
 * migration destination), with its status. -ENOENT when none. */
static int guest_where(struct hv *hv, const char *guest, char *host, size_t len, char *status,
		       size_t slen)
{
	char hosts[4][NAME_MAX_LEN], err[300];
	size_t n = guest_instances(hv, guest, hosts, 4);
	int found = -ENOENT;
	for (size_t pass = 0; pass < 2 && found < 0; pass++) {
		for (size_t i = 0; i < n && found < 0; i++) {
			bool incoming = inst_incoming(hv, guest, hosts[i]);
			if (inst_status(hv, guest, hosts[i], status, slen, err, sizeof(err)) < 0)
				continue;
			/* pass 0: a source or a settled guest; pass 1: a destination
			 * already running (its source gone) */
			if (pass == 0 && (incoming || strcmp(status, "postmigrate") == 0))
				continue;
			if (pass == 1 && strcmp(status, "running") != 0)
				continue;
			snprintf(host, len, "%s", hosts[i]);
			found = 0;
		}
	}
	return found;
}

static int guest_info_locked(struct hv *hv, const char *guest, struct hv_guest_info *out)
{
	char host[NAME_MAX_LEN], status[32];
	if (!valid_name(guest) || guest_where(hv, guest, host, sizeof(host), status,
					     sizeof(status)) < 0)
		return -ENOENT;
	json_t *j = load_guest(hv, guest);
	*out = (struct hv_guest_info){ .running = strcmp(status, "running") == 0 };
	out->memory_bytes = (uint64_t)json_integer_value(json_object_get(j, "memory_bytes"));
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
	if (inst_exec(hv, guest, host, "query-migrate", NULL, &r, err, sizeof(err)) == 0) {
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
			inst_exec(hv, guest, src, "migrate_cancel", NULL, NULL, err, sizeof(err));
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
			if (inst_status(hv, guest, dst, dst_status, sizeof(dst_status), err,
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
		inst_path(hv, guest, dst, "incoming", marker, sizeof(marker));
		unlink(marker);
		ensure_running(hv, guest, dst);
		return;
	}
	log_warnx("qmp: guest %s: removing the unfinished destination on %s%s%s", guest, dst,
		  *src ? "; it stays on " : "", src);
	inst_destroy(hv, guest, dst);
	if (*src)
		ensure_running(hv, guest, src);
}

static void reconcile_guest(struct hv *hv, const char *guest)
{
	char hosts[4][NAME_MAX_LEN], status[32], err[300];
	size_t n = guest_instances(hv, guest, hosts, 4);
	const char *dst = NULL, *src = "";
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
		if (inst_status(hv, guest, hosts[i], status, sizeof(status), err, sizeof(err)) < 0)
			continue;
		if (n > 1 && strcmp(status, "postmigrate") == 0) {
			log_warnx("qmp: guest %s: quitting its migrated-away copy on %s", guest,
				  hosts[i]);
			inst_quit(hv, guest, hosts[i]);
		} else if (strcmp(status, "running") != 0) {
			ensure_running(hv, guest, hosts[i]);
		}
	}
}

static void reconcile_all(struct hv *hv)
{
	DIR *d = opendir(hv->state_dir);
	struct dirent *e;
	char names[256][NAME_MAX_LEN];
	size_t n = 0;
	while (d && (e = readdir(d)) && n < ARRAY_SIZE(names))
		if (valid_name(e->d_name))
			snprintf(names[n++], NAME_MAX_LEN, "%.63s", e->d_name);
	if (d)
		closedir(d);
	for (size_t i = 0; i < n; i++)
		reconcile_guest(hv, names[i]);
}

/* ---- hv_ops: open, hosts, guests ---- */

static void qmp_close_hv(struct hv *hv);

static const char *or_default(const char *s, const char *def)
{
	return s && *s ? s : def;
}

static int qmp_open_hv(const struct hv_env *env, struct hv **out, char *err, size_t errlen)
{
	static const struct hv_qmp_settings defaults = { 0 };
	const struct hv_qmp_settings *s = env && env->qmp ? env->qmp : &defaults;
	struct hv *hv = calloc(1, sizeof(*hv));
	if (!hv)
		return -ENOMEM;
	pthread_mutex_init(&hv->lock, NULL);
	hv->next_mig_id = 1;
	if (s->state_dir && *s->state_dir)
		snprintf(hv->state_dir, sizeof(hv->state_dir), "%s", s->state_dir);
	else
		snprintf(hv->state_dir, sizeof(hv->state_dir), "%s/qmp",
			 env && env->state_dir ? env->state_dir : ".");
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	hv_qmp_resolve_image_dir(s->image_dir, *exe ? exe : NULL, hv->image_dir,
				 sizeof(hv->image_dir));
	snprintf(hv->qemu, sizeof(hv->qemu), "%s", or_default(s->qemu, HV_QMP_DEFAULT_QEMU));
	const char *accel = or_default(s->accel, "auto");
	if (strcmp(accel, "auto") == 0)
		accel = kvm_usable() ? "kvm" : "tcg";
	if (strcmp(accel, "kvm") == 0)
		snprintf(hv->accel, sizeof(hv->accel), "kvm");
	else if (strcmp(accel, "tcg") == 0)
		snprintf(hv->accel, sizeof(hv->accel), "tcg,tb-size=%u",
			 s->tb_size_mib ? s->tb_size_mib : HV_QMP_DEFAULT_TB_SIZE_MIB);
	else {
		snprintf(err, errlen, "qmp accel \"%s\": expected auto, kvm or tcg", accel);
		qmp_close_hv(hv);
		return -EINVAL;
	}
	snprintf(hv->agent_endpoint, sizeof(hv->agent_endpoint), "%s", or_default(s->agent_endpoint, ""));
	snprintf(hv->sfs_conf, sizeof(hv->sfs_conf), "%s", or_default(s->sfs_conf, ""));
	hv->port_base = s->migration_port_base ? s->migration_port_base : HV_QMP_DEFAULT_PORT_BASE;
	/* the state directory is made by the first guest: a migd that runs no
	 * QEMU (the sim backend only) leaves no trace of this backend */
	log_debug("qmp: state in %s, %s, image %s", hv->state_dir, hv->accel,
		  *hv->image_dir ? hv->image_dir : "none (BIOS only)");
	reconcile_all(hv);
	*out = hv;
	return 0;
}

static void qmp_close_hv(struct hv *hv)
{
	if (!hv)
		return;
	for (size_t i = 0; i < hv->n_conns; i++)
		qmp_close(hv->conns[i].qmp);
	for (size_t i = 0; i < hv->n_migs; i++) {
		if (hv->migs[i]->launcher > 0)
			waitpid(hv->migs[i]->launcher, NULL, WNOHANG);
		free(hv->migs[i]);
	}
	free(hv->conns);
	free(hv->migs);
	free(hv->hosts);
	pthread_mutex_destroy(&hv->lock);
	free(hv);
}

static int qmp_host_add(struct hv *hv, const char *name, const char *uri, char *err,
			size_t errlen)
{
	struct qhost h;
	int rc = parse_uri(uri, &h, err, errlen);
	if (rc < 0)
		return rc;
	if (strcmp(h.name, name) != 0) {
		snprintf(err, errlen, "host %s: its URI %s names host %s", name, uri, h.name);
		return -EINVAL;
	}
	if (*h.netns) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "/run/netns/%s", h.netns);
		if (!file_exists(path)) {
			snprintf(err, errlen, "host %s: network namespace %s does not exist (%s)", name,
				 h.netns, path);
			return -ENOENT;
		}
	}
	pthread_mutex_lock(&hv->lock);
	struct qhost *old = host_find(hv, name);
	if (old)
		*old = h; /* migd adds its hosts again after a restart */
	else if ((rc = GROW(hv->hosts, hv->cap_hosts, hv->n_hosts + 1)) == 0)
		hv->hosts[hv->n_hosts++] = h;
	pthread_mutex_unlock(&hv->lock);
	if (rc == 0)
		log_debug("qmp: host %s: %s%s, migrations to %s", name,
			  *h.netns ? "network namespace " : "loopback", h.netns, h.addr);
	return rc;
}

static int list_locked(struct hv *hv, const char *host, struct hv_guest_info **out, size_t *n);

static int qmp_host_remove(struct hv *hv, const char *name, char *err, size_t errlen)
{
	struct hv_guest_info *list = NULL;
	size_t n = 0;
	int rc = 0;
	pthread_mutex_lock(&hv->lock);
	struct qhost *h = host_find(hv, name);
	if (!h) {
		snprintf(err, errlen, "host %s: not a qmp host", name);
		rc = -ENOENT;
	} else if (list_locked(hv, name, &list, &n) == 0 && n > 0) {
		snprintf(err, errlen, "host %s: still runs %zu guests (%s...)", name, n, list[0].name);
		rc = -EBUSY;
	} else {
		*h = hv->hosts[--hv->n_hosts];
	}
	pthread_mutex_unlock(&hv->lock);
	free(list);
	return rc;
}

static int guest_create_locked(struct hv *hv, const char *host, const struct hv_guest_spec *spec,
			       char *err, size_t errlen)
{
	char where[NAME_MAX_LEN], status[32];
	if (!spec || !valid_name(spec->name)) {
		snprintf(err, errlen, "guest \"%s\": expected 1 to %d letters, digits, - _ .",
			 spec && spec->name ? spec->name : "", NAME_MAX_LEN - 1);
		return -EINVAL;
	}
	if (spec->memory_bytes < 16 * MIB) {
		snprintf(err, errlen, "guest %s: memory %" PRIu64 " bytes: QEMU needs at least 16 MiB",
			 spec->name, spec->memory_bytes);
		return -EINVAL;
	}
	const struct qhost *h = host_find(hv, host);
	if (!h) {
		snprintf(err, errlen, "guest %s: host %s is not a qmp host", spec->name, host);
		return -ENOENT;
	}
	if (guest_where(hv, spec->name, where, sizeof(where), status, sizeof(status)) == 0) {
		snprintf(err, errlen, "guest %s: already runs on %s (%s)", spec->name, where, status);
		return -EEXIST;
	}
	pid_t launcher;
	int rc = guest_record(hv, h, spec, err, errlen);
	if (rc == 0)
		rc = inst_spawn(hv, spec->name, h, false, &launcher, err, errlen);
	if (rc == 0)
		rc = launcher_done(hv, spec->name, h->name, launcher, true, err, errlen);
	if (rc == 0 && inst_status(hv, spec->name, h->name, status, sizeof(status), err, errlen) < 0)
		rc = -EIO;
	if (rc < 0) {
		inst_destroy(hv, spec->name, h->name);
		return rc;
	}
	log_info("qmp: guest %s started on %s (pid %d, %s)", spec->name, h->name,
		 (int)inst_pid(hv, spec->name, h->name), status);
	return 0;
}

static int qmp_guest_create(struct hv *hv, const char *host, const struct hv_guest_spec *spec,
			    char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = guest_create_locked(hv, host, spec, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

static int qmp_guest_info(struct hv *hv, const char *guest, struct hv_guest_info *out,
			  char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = guest_info_locked(hv, guest, out);
	pthread_mutex_unlock(&hv->lock);
	if (rc < 0)
		snprintf(err, errlen, "guest %s: no QEMU runs it", guest ? guest : "(null)");
	return rc;
}

static int list_locked(struct hv *hv, const char *host, struct hv_guest_info **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	size_t cap = 0;
	DIR *d = opendir(hv->state_dir);
	if (!d)
		return 0;
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d))) {
		struct hv_guest_info info;
		if (!valid_name(e->d_name) || guest_info_locked(hv, e->d_name, &info) < 0)
			continue;
		if (host && strcmp(info.host, host) != 0)
			continue;
		if ((rc = GROW(*out, cap, *n + 1)) == 0)
			(*out)[(*n)++] = info;
	}
	closedir(d);
	return rc;
}

static int qmp_list_guests(struct hv *hv, const char *host, struct hv_guest_info **out,
			   size_t *n, char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = list_locked(hv, host, out, n);
	pthread_mutex_unlock(&hv->lock);
	if (rc < 0)
		snprintf(err, errlen, "listing guests: out of memory");
	return rc;
}

/* ---- migrations ---- */

static struct qmig *mig_find(struct hv *hv, uint64_t id)
{
	for (size_t i = 0; i < hv->n_migs; i++)
		if (hv->migs[i]->id == id)
			return hv->migs[i];
	return NULL;
}

static struct qmig *mig_of_guest(struct hv *hv, const char *guest)
{
	for (size_t i = 0; i < hv->n_migs; i++)
		if (hv->migs[i]->phase != PH_DONE && strcmp(hv->migs[i]->guest, guest) == 0)
			return hv->migs[i];
	return NULL;
}

static int start_locked(struct hv *hv, const char *guest, const char *src, const char *dst,
			const struct hv_migrate_params *params, uint64_t *id, char *err,
			size_t errlen)
{
	char where[NAME_MAX_LEN], status[32], marker[PATH_MAX];
	const struct qhost *sh = host_find(hv, src), *dh = host_find(hv, dst);
	if (!valid_name(guest) || guest_where(hv, guest, where, sizeof(where), status,
					      sizeof(status)) < 0) {
		snprintf(err, errlen, "guest %s: no QEMU runs it", guest ? guest : "(null)");
		return -ENOENT;
	}
	if (!sh || !dh) {
		snprintf(err, errlen, "guest %s: host %s is not a qmp host", guest, !sh ? src : dst);
		return -ENOENT;
	}
	if (strcmp(where, src) != 0) {
		snprintf(err, errlen, "guest %s: runs on %s, not on %s", guest, where, src);
		return -EINVAL;
	}
	if (strcmp(src, dst) == 0) {
		snprintf(err, errlen, "guest %s: already on %s", guest, dst);
		return -EINVAL;
	}
	if (mig_of_guest(hv, guest)) {
		snprintf(err, errlen, "guest %s: already migrating", guest);
		return -EBUSY;
	}
	if (strcmp(status, "running") != 0) {
		snprintf(err, errlen, "guest %s on %s is %s, not running", guest, src, status);
		return -EINVAL;
	}
	struct qmig *m = calloc(1, sizeof(*m));
	if (!m || GROW(hv->migs, hv->cap_migs, hv->n_migs + 1) < 0) {
		free(m);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	inst_destroy(hv, guest, dst); /* leftovers of an old instance there */
	inst_path(hv, guest, dst, "incoming", marker, sizeof(marker));
	int rc = write_file(marker, src);
	if (rc == 0)
		rc = inst_spawn(hv, guest, dh, true, &m->launcher, err, errlen);
	else
		snprintf(err, errlen, "guest %s: writing %s: %s", guest, marker, strerror(-rc));
	if (rc < 0) {
		inst_destroy(hv, guest, dst);
		free(m);
		return rc;
	}
	m->id = hv->next_mig_id++;
	snprintf(m->guest, sizeof(m->guest), "%s", guest);
	snprintf(m->src, sizeof(m->src), "%s", src);
	snprintf(m->dst, sizeof(m->dst), "%s", dst);
	m->params = params ? *params : (struct hv_migrate_params){ 0 };
	m->phase = PH_SPAWN;
	m->phase_deadline_ms = now_ms() + SPAWN_TIMEOUT_MS;
	m->src_pid = inst_pid(hv, guest, src);
	m->started_ms = now_ms();
	m->progress.state = HV_MIG_ACTIVE;
	hv->migs[hv->n_migs++] = m;
	*id = m->id;
	log_debug("qmp: migration %" PRIu64 ": guest %s %s -> %s", m->id, guest, src, dst);
	return 0;
}

static int qmp_migrate_start(struct hv *hv, const char *guest, const char *src, const char *dst,
			     const struct hv_migrate_params *params, uint64_t *id, char *err,
			     size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = start_locked(hv, guest, src, dst, params, id, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

/* The migration ends badly: the destination goes, the source runs on. */
static void mig_fail(struct hv *hv, struct qmig *m, enum hv_mig_state state, const char *why)
{
	if (m->launcher > 0) {
		waitpid(m->launcher, NULL, 0); /* it exits once QEMU is up or failed */
		m->launcher = 0;
	}
	inst_destroy(hv, m->guest, m->dst);
	ensure_running(hv, m->guest, m->src);
	m->progress.state = state;
	if (!m->progress.total_time_ms) /* QEMU gives none for a cancelled one */
		m->progress.total_time_ms = now_ms() - m->started_ms;
	snprintf(m->progress.error, sizeof(m->progress.error), "%s", why);
	m->phase = PH_DONE;
	log_info("qmp: migration %" PRIu64 " of %s %s: %s; it runs on %s", m->id, m->guest,
		 state == HV_MIG_CANCELLED ? "cancelled" : "failed", why, m->src);
}

static int set_caps(struct hv *hv, const char *guest, const char *host, const struct qmig *m,
		    bool source, char *err, size_t errlen)
{
	json_t *caps = json_array();
	json_array_append_new(caps, json_pack("{s:s, s:b}", "capability", "multifd", "state",
					      m->params.parallel_connections > 1));
	json_array_append_new(caps, json_pack("{s:s, s:b}", "capability", "postcopy-ram", "state",
					      m->params.postcopy != 0));
	if (source)
		json_array_append_new(caps, json_pack("{s:s, s:b}", "capability", "auto-converge",
						      "state", m->params.auto_converge != 0));
	int rc = inst_exec(hv, guest, host, "migrate-set-capabilities",
			   json_pack("{s:o}", "capabilities", caps), NULL, err, errlen);
	if (rc < 0)
		return rc;
	json_t *p = json_object();
	if (m->params.parallel_connections > 1)
		json_object_set_new(p, "multifd-channels",
				    json_integer(m->params.parallel_connections));
	if (source) {
		json_object_set_new(p, "max-bandwidth",
				    json_integer((json_int_t)(m->params.bandwidth_bps
							      ? m->params.bandwidth_bps
							      : UNCAPPED_BPS)));
		if (m->params.max_downtime_ms)
			json_object_set_new(p, "downtime-limit",
					    json_integer(m->params.max_downtime_ms));
	}
	if (json_object_size(p) == 0) {
		json_decref(p);
		return 0;
	}
	return inst_exec(hv, guest, host, "migrate-set-parameters", p, NULL, err, errlen);
}

/* Both ends configured, the destination listening, the source sending. */
static int mig_setup(struct hv *hv, struct qmig *m, char *err, size_t errlen)
{
	const struct qhost *dh = host_find(hv, m->dst);
	char uri[128], why[300];
	int rc;
	if (!dh) {
		snprintf(err, errlen, "host %s was removed", m->dst);
		return -ENOENT;
	}
	log_debug("qmp: migration %" PRIu64 ": downtime limit %u ms, bandwidth %" PRIu64
		  " B/s, auto-converge %d, postcopy %d, multifd %u", m->id,
		  m->params.max_downtime_ms, m->params.bandwidth_bps, m->params.auto_converge,
		  m->params.postcopy, m->params.parallel_connections);
	if ((rc = set_caps(hv, m->guest, m->dst, m, false, err, errlen)) < 0 ||
	    (rc = set_caps(hv, m->guest, m->src, m, true, err, errlen)) < 0)
		return rc;
	for (int tries = 0; tries < 20; tries++) {
		unsigned port = hv->port_base + hv->next_port++ % HV_QMP_PORTS;
		snprintf(uri, sizeof(uri), "tcp:%s:%u", dh->addr, port);
		rc = inst_exec(hv, m->guest, m->dst, "migrate-incoming",
			       json_pack("{s:s}", "uri", uri), NULL, why, sizeof(why));
		if (rc != -EREMOTEIO || !strstr(why, "in use"))
			break; /* only a port taken is worth another port */
	}
	if (rc < 0) {
		snprintf(err, errlen, "%s", why);
		return rc;
	}
	return inst_exec(hv, m->guest, m->src, "migrate", json_pack("{s:s}", "uri", uri), NULL,
			 err, errlen);
}

static uint64_t jnum(json_t *obj, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(obj, key));
	return v > 0 ? (uint64_t)v : 0;
}

/* query-migrate into m->progress; its status into status. */
static int mig_query(struct hv *hv, struct qmig *m, char *status, size_t len, char *err,
		     size_t errlen)
{
	json_t *r;
	int rc = inst_exec(hv, m->guest, m->src, "query-migrate", NULL, &r, err, errlen);
	if (rc < 0)
		return rc;
	const char *s = json_string_value(json_object_get(r, "status"));
	json_t *ram = json_object_get(r, "ram");
	snprintf(status, len, "%s", s ? s : "none");
	struct hv_progress *p = &m->progress;
	if (ram) {
		p->transferred_bytes = jnum(ram, "transferred");
		p->remaining_bytes = jnum(ram, "remaining");
		p->total_bytes = jnum(ram, "total");
		p->rounds = (unsigned)jnum(ram, "dirty-sync-count");
	}
	p->total_time_ms = jnum(r, "total-time");
	if (json_object_get(r, "downtime"))
		p->downtime_ms = jnum(r, "downtime");
	const char *desc = json_string_value(json_object_get(r, "error-desc"));
	if (desc)
		snprintf(p->error, sizeof(p->error), "%s", desc);
	json_decref(r);
	return 0;
}

static void mig_running(struct hv *hv, struct qmig *m)
{
	char status[32], err[300];
	if (mig_query(hv, m, status, sizeof(status), err, sizeof(err)) < 0) {
		mig_fail(hv, m, HV_MIG_FAILED, err);
		return;
	}
	if (strcmp(status, "completed") == 0) {
		/* QEMU says completed a moment before it computes total-time and
		 * downtime (migration_calculate_complete): wait for the figures */
		if (!m->completed_ms)
			m->completed_ms = now_ms();
		if (m->progress.total_time_ms == 0 && now_ms() - m->completed_ms < 2000)
			return;
		log_debug("qmp: migration %" PRIu64 ": completed in QEMU", m->id);
		m->phase = PH_SWITCHED;
		m->phase_deadline_ms = now_ms() + SWITCH_TIMEOUT_MS;
	} else if (strcmp(status, "failed") == 0) {
		char why[200];
		snprintf(why, sizeof(why), "QEMU: migration failed: %s",
			 *m->progress.error ? m->progress.error : "no reason given");
		mig_fail(hv, m, HV_MIG_FAILED, why);
	} else if (strcmp(status, "cancelled") == 0) {
		mig_fail(hv, m, HV_MIG_CANCELLED,
			 m->abort_requested ? "aborted by request" : "cancelled in QEMU");
	} else if (m->params.postcopy && !m->postcopy_started && m->progress.rounds >= 2 &&
		   strcmp(status, "active") == 0) {
		/* the first round is done and pre-copy goes on: switch now */
		if (inst_exec(hv, m->guest, m->src, "migrate-start-postcopy", NULL, NULL, err,
			      sizeof(err)) < 0)
			log_warnx("qmp: %s", err);
		m->postcopy_started = 1;
	}
}

/* Completed in QEMU: wait for the destination to run, then quit the source. */
static void mig_switched(struct hv *hv, struct qmig *m)
{
	char status[32], err[300];
	int rc = inst_status(hv, m->guest, m->dst, status, sizeof(status), err, sizeof(err));
	if (rc == 0 && strcmp(status, "inmigrate") == 0 && now_ms() < m->phase_deadline_ms)
		return; /* still loading the last pages */
	if (rc < 0 || (strcmp(status, "running") != 0 && strcmp(status, "paused") != 0)) {
		char why[400];
		snprintf(why, sizeof(why), "the destination did not take over (%s)",
			 rc < 0 ? err : status);
		mig_fail(hv, m, HV_MIG_FAILED, why);
		return;
	}
	inst_exec(hv, m->guest, m->src, "quit", NULL, NULL, err, sizeof(err));
	conn_drop(hv, m->guest, m->src);
	m->phase = PH_QUITTING;
	m->phase_deadline_ms = now_ms() + QUIT_TIMEOUT_MS;
	log_debug("qmp: migration %" PRIu64 ": %s runs on %s; source asked to quit", m->id,
		  m->guest, m->dst);
}

static void mig_quitting(struct hv *hv, struct qmig *m)
{
	/* QEMU quits in a few ms: wait that long here rather than a whole tick */
	for (int i = 0; i < 20 && m->src_pid > 0 && !pid_gone(m->src_pid); i++)
		usleep(1000);
	if (m->src_pid > 0 && !pid_gone(m->src_pid) && now_ms() < m->phase_deadline_ms)
		return;
	char marker[PATH_MAX];
	inst_destroy(hv, m->guest, m->src); /* kills it if quit did not */
	inst_path(hv, m->guest, m->dst, "incoming", marker, sizeof(marker));
	unlink(marker);
	ensure_running(hv, m->guest, m->dst); /* never leave it paused */
	m->progress.state = HV_MIG_COMPLETED;
	m->progress.remaining_bytes = 0;
	m->phase = PH_DONE;
}

static void mig_advance(struct hv *hv, struct qmig *m)
{
	char err[300];
	int rc;
	switch (m->phase) {
	case PH_SPAWN:
		rc = launcher_done(hv, m->guest, m->dst, m->launcher, false, err, sizeof(err));
		if (rc == 1 && now_ms() < m->phase_deadline_ms)
			return;
		if (rc != 1)
			m->launcher = 0; /* reaped */
		if (rc != 0) {
			mig_fail(hv, m, HV_MIG_FAILED, rc == 1 ? "the destination QEMU did not start"
							       : err);
			return;
		}
		if (m->abort_requested) {
			mig_fail(hv, m, HV_MIG_CANCELLED, "aborted by request");
			return;
		}
		m->phase = PH_SETUP;
		log_debug("qmp: migration %" PRIu64 ": destination up on %s", m->id, m->dst);
		__attribute__((fallthrough)); /* configure it now */
	case PH_SETUP:
		if (mig_setup(hv, m, err, sizeof(err)) < 0) {
			mig_fail(hv, m, HV_MIG_FAILED, err);
			return;
		}
		m->phase = PH_RUNNING;
		return;
	case PH_RUNNING:
		mig_running(hv, m);
		return;
	case PH_SWITCHED:
		mig_switched(hv, m);
		if (m->phase != PH_QUITTING)
			return;
		__attribute__((fallthrough));
	case PH_QUITTING:
		mig_quitting(hv, m);
		return;
	case PH_DONE:
		return;
	}
}

static int qmp_migrate_poll(struct hv *hv, uint64_t id, struct hv_progress *out, char *err,
			    size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	struct qmig *m = mig_find(hv, id);
	if (m) {
		mig_advance(hv, m);
		*out = m->progress;
		if (out->state == HV_MIG_ACTIVE)
			out->error[0] = '\0';
	} else {
		snprintf(err, errlen, "migration %" PRIu64 ": not known to the qmp backend", id);
	}
	pthread_mutex_unlock(&hv->lock);
	return m ? 0 : -ENOENT;
}

static int abort_locked(struct hv *hv, uint64_t id, char *err, size_t errlen)
{
	struct qmig *m = mig_find(hv, id);
	char status[32];
	if (!m) {
		snprintf(err, errlen, "migration %" PRIu64 ": not known to the qmp backend", id);
		return -ENOENT;
	}
	if (m->phase == PH_DONE || m->phase >= PH_SWITCHED) {
		snprintf(err, errlen, "migration %" PRIu64 " of guest %s: already %s", id, m->guest,
			 m->phase == PH_DONE ? "finished" : "switched over to the destination");
		return -EALREADY;
	}
	if (m->abort_requested) {
		snprintf(err, errlen, "migration %" PRIu64 ": abort already requested", id);
		return -EALREADY;
	}
	if (m->phase == PH_RUNNING) {
		if (mig_query(hv, m, status, sizeof(status), err, errlen) == 0 &&
		    strncmp(status, "postcopy", 8) == 0) {
			snprintf(err, errlen, "migration %" PRIu64 " of guest %s: in post-copy, the "
				 "guest runs on %s already: cannot abort", id, m->guest, m->dst);
			return -EBUSY;
		}
		int rc = inst_exec(hv, m->guest, m->src, "migrate_cancel", NULL, NULL, err, errlen);
		if (rc < 0)
			return rc;
	}
	m->abort_requested = 1;
	return 0;
}

static int qmp_migrate_abort(struct hv *hv, uint64_t id, char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = abort_locked(hv, id, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

static void qmp_migrate_forget(struct hv *hv, uint64_t id)
{
	pthread_mutex_lock(&hv->lock);
	for (size_t i = 0; i < hv->n_migs; i++) {
		if (hv->migs[i]->id == id && hv->migs[i]->phase == PH_DONE) {
			free(hv->migs[i]);
			hv->migs[i] = hv->migs[--hv->n_migs];
			break;
		}
	}
	pthread_mutex_unlock(&hv->lock);
}

static int64_t qmp_now_ns(struct hv *hv)
{
	return wall_ns();
}

const struct hv_ops hv_qmp_ops = {
	.scheme = "qmp",
	.open = qmp_open_hv,
	.close = qmp_close_hv,
	.host_add = qmp_host_add,
	.host_remove = qmp_host_remove,
	.guest_create = qmp_guest_create,
	.guest_info = qmp_guest_info,
	.list_guests = qmp_list_guests,
	.migrate_start = qmp_migrate_start,
	.migrate_poll = qmp_migrate_poll,
	.migrate_abort = qmp_migrate_abort,
	.migrate_forget = qmp_migrate_forget,
	.now_ns = qmp_now_ns,
};
