/*
 * hv_qmp_vm: the qmp backend's guests as files and QEMU processes, shared
 * by hv_qmp.c (hosts, hv_ops, migrations) and hv_qmp_vm.c (everything
 * about one guest's QEMU instances: their files under the state directory,
 * starting one in a host's namespace, QMP connections to them, where a
 * guest runs, and settling what a crash of migd left). Private to the
 * backend; hv_qmp.c's opening comment describes the design.
 */
#ifndef MIGD_HV_QMP_VM_H
#define MIGD_HV_QMP_VM_H

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hv_qmp.h"

#define NAME_MAX_LEN 64
#define QMP_TIMEOUT_MS 3000
#define SPAWN_TIMEOUT_MS 60000
#define QUIT_TIMEOUT_MS 10000
#define RECONCILE_WAIT_MS 15000
#define MIB ((uint64_t)1024 * 1024)

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

struct qmig;                          /* a migration: hv_qmp.c */

struct hv {
	pthread_mutex_t lock;
	char state_dir[PATH_MAX];
	char image_dir[PATH_MAX];     /* "": BIOS only */
	char qemu[PATH_MAX];
	char accel[64];               /* "-accel" argument */
	/*
	 * KiB added to every new guest's RAM (0 or 8). QEMU before 9.0 loses
	 * guest writes when it live-migrates a TCG guest (its fix: "physmem:
	 * Fix migration dirty bitmap coherency with TCG memory access"): the
	 * dirty-bitmap sync clears a RAM block's bits a word at a time without
	 * resetting the TCG TLB, so a page whose TLB entry stays writable is
	 * never marked dirty again and the destination keeps an old copy (a
	 * guest kernel dies of it, see BUGS in migd(8)). The per-page sync
	 * resets the TLB, and QEMU takes it for a block that is not a multiple
	 * of 64 pages: 8 KiB more sends the guest's RAM down that path.
	 */
	unsigned tcg_ram_pad_kib;
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

/* ---- small things ---- */
bool qvm_kvm_usable(void);
/* The major version `QEMU --version` prints, or -1. */
int qvm_qemu_major(const char *qemu);
/* Host and guest names become file names and QEMU arguments: plain only. */
bool qvm_valid_name(const char *name);
/* STATE/GUEST/HOST.EXT into buf: 0 or -ENAMETOOLONG. */
int qvm_path(const struct hv *hv, const char *guest, const char *host, const char *ext,
	     char *buf, size_t len);
bool qvm_file_exists(const char *path);
/* Write text to path atomically (temporary file, rename): 0 or -errno.
 * durable: fsync before the rename, for a file that must outlive a reboot
 * (guest.json); an instance's files (incoming marker, .net) describe live
 * processes that a reboot ends anyway, and the page cache keeps them
 * across a crash of migd, so they skip the fsync on a migration's way. */
int qvm_write_file(const char *path, const char *text, bool durable);
/* An exited process (a zombie waiting for init counts as gone). */
bool qvm_pid_gone(pid_t pid);

/* ---- instances: one QEMU of a guest on a host ---- */
/* Its live QEMU (checked against its QMP socket path), or 0. */
pid_t qvm_pid(const struct hv *hv, const char *guest, const char *host);
void qvm_conn_drop(struct hv *hv, const char *guest, const char *host);
/* One QMP command (args taken); *result as qmp_execute; err names guest and host. */
int qvm_exec(struct hv *hv, const char *guest, const char *host, const char *cmd, json_t *args,
	     json_t **result, char *err, size_t errlen);
/* query-status's status ("running", "paused", "inmigrate", ...). */
int qvm_status(struct hv *hv, const char *guest, const char *host, char *status, size_t len,
	       char *err, size_t errlen);
/* Kill it (if it is our QEMU) and remove its files and tap. */
void qvm_destroy(struct hv *hv, const char *guest, const char *host);
/* cont it unless it runs. */
void qvm_ensure_running(struct hv *hv, const char *guest, const char *host);
/* guest.json for a new guest on h; an existing one is kept. */
int qvm_record(struct hv *hv, const struct qhost *h, const struct hv_guest_spec *spec, char *err,
	       size_t errlen);
/* Start the guest's QEMU on h (incoming: -incoming defer); returns at once
 * with the launcher (QEMU's -daemonize parent) in *launcher. */
int qvm_spawn(struct hv *hv, const char *guest, const struct qhost *h, bool incoming,
	      pid_t *launcher, char *err, size_t errlen);
/* 1 still starting (only when !block), 0 QEMU is up, <0 it failed (err). */
int qvm_launcher_done(struct hv *hv, const char *guest, const char *host, pid_t launcher,
		      bool block, char *err, size_t errlen);

/* ---- guests ---- */
/* The host the guest runs on and its status; -ENOENT when none. */
int qvm_where(struct hv *hv, const char *guest, char *host, size_t len, char *status,
	      size_t slen);
int qvm_info(struct hv *hv, const char *guest, struct hv_guest_info *out);
/* At open: settle every guest a stopped or crashed migd left (see hv_qmp.c). */
void qvm_reconcile_all(struct hv *hv);

#endif
