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
#define RECONCILE_SAVE_WAIT_MS 60000 /* a save left running: its stream (migd-stream) ends it */
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

/*
 * A migration (hv_qmp.c), or a save or load (hv_qmp_ckpt.c): they share
 * the id space and migrate_poll/abort/forget, which hand a save or load
 * to hv_qmp_ckpt.c. A save runs on src (dst ""), a load on dst (src "").
 */
enum mig_phase { PH_SPAWN, PH_SETUP, PH_RUNNING, PH_SWITCHED, PH_QUITTING, PH_DONE };
enum qmig_kind { QMIG_MIGRATE, QMIG_SAVE, QMIG_LOAD };

struct qmig {
	uint64_t id;
	enum qmig_kind kind;
	char guest[NAME_MAX_LEN], src[NAME_MAX_LEN], dst[NAME_MAX_LEN];
	enum mig_phase phase;
	pid_t launcher;
	uint64_t phase_deadline_ms;
	struct hv_migrate_params params;
	int abort_requested;
	int postcopy_started;
	pid_t src_pid;
	int src_left;                 /* the source is gone; its files and tap go at forget */
	int dst_running;              /* the destination said running after completion */
	/* a save or load */
	int image_fd;                 /* load: our dup of the image until QEMU has it, else -1 */
	int background;               /* save: QEMU's background-snapshot is on */
	int resumed;                  /* save, background: the guest was continued */
	/* when each step happened (now_ms), for the log line at the end */
	uint64_t begun_ms;            /* start_locked entered */
	uint64_t started_ms;          /* the destination's launcher forked */
	uint64_t up_ms;               /* the destination's QEMU up */
	uint64_t sent_ms;             /* migrate sent to the source */
	uint64_t completed_ms;        /* when QEMU first said completed */
	uint64_t switched_ms;         /* destination runs, source asked to quit */
	struct hv_progress progress;  /* the latest; final once phase is PH_DONE */
};

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
	bool tls;                     /* migrations over TLS (hv_qmp_tls.c) */
	bool tls_dh_warned;           /* a dh-params.pem was missing, said once */
	char tls_dir[PATH_MAX];
	struct qhost *hosts;
	size_t n_hosts, cap_hosts;
	struct conn *conns;
	size_t n_conns, cap_conns;
	struct qmig **migs;
	size_t n_migs, cap_migs;
	uint64_t next_mig_id;
};

/* ---- hv_qmp_tls.c ---- */
#define QVM_TLS_ID "migd-tls" /* the tls-creds-x509 object of an instance */
/* The instance's TLS credentials from its host's directory: the server
 * end (a destination) or the client end (a source). */
int qvm_tls_setup(struct hv *hv, const char *guest, const char *host, bool server, char *err,
		  size_t errlen);

/* ---- hv_qmp.c, for hv_qmp_ckpt.c ---- */
struct qhost *qhost_find(struct hv *hv, const char *name);
struct qmig *qmig_find(struct hv *hv, uint64_t id);
/* The unfinished migration, save or load of guest, or NULL. */
struct qmig *qmig_of_guest(struct hv *hv, const char *guest);
/* A new one with the next id in *out, added to hv->migs (-ENOMEM). */
int qmig_new(struct hv *hv, enum qmig_kind kind, const char *guest, struct qmig **out);
/* query-migrate on host into m->progress; its status into status. */
int qmig_query(struct hv *hv, struct qmig *m, const char *host, char *status, size_t len,
	       char *err, size_t errlen);

/* ---- hv_qmp_ckpt.c: checkpoint and restore ---- */
int hv_qmp_guest_pause(struct hv *hv, const char *guest, char *err, size_t errlen);
int hv_qmp_guest_resume(struct hv *hv, const char *guest, char *err, size_t errlen);
int hv_qmp_save_start(struct hv *hv, const char *guest, const struct hv_image *img,
		      const struct hv_save_params *params, uint64_t *id, char *err,
		      size_t errlen);
int hv_qmp_load_start(struct hv *hv, const char *guest, const char *host,
		      const struct hv_image *img, uint64_t *id, char *err, size_t errlen);
int hv_qmp_guest_destroy(struct hv *hv, const char *guest, char *err, size_t errlen);
int hv_qmp_guest_config(struct hv *hv, const char *guest, char **out, char *err,
			size_t errlen);
int hv_qmp_guest_define(struct hv *hv, const char *guest, const char *config, char *err,
			size_t errlen);
/* migrate_poll and migrate_abort of a save or load (the driver's lock held). */
void qckpt_advance(struct hv *hv, struct qmig *m);
int qckpt_abort(struct hv *hv, struct qmig *m, char *err, size_t errlen);

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
/* The same with fd passed along (SCM_RIGHTS; the caller keeps its fd). */
int qvm_exec_fd(struct hv *hv, const char *guest, const char *host, const char *cmd,
		json_t *args, int fd, json_t **result, char *err, size_t errlen);
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
/* How an instance starts: booting, as a migration destination (-incoming
 * defer), or to load a saved image and stay paused (-incoming defer -S). */
enum qvm_start { QVM_BOOT, QVM_INCOMING, QVM_RESTORE };
/* Start the guest's QEMU on h; returns at once with the launcher (QEMU's
 * -daemonize parent) in *launcher. */
int qvm_spawn(struct hv *hv, const char *guest, const struct qhost *h, enum qvm_start how,
	      pid_t *launcher, char *err, size_t errlen);
/* 1 still starting (only when !block), 0 QEMU is up, <0 it failed (err). */
int qvm_launcher_done(struct hv *hv, const char *guest, const char *host, pid_t launcher,
		      bool block, char *err, size_t errlen);

/* Whether the instance carries STATE/GUEST/HOST.marker ("incoming",
 * "restoring", "saving", "nosave"). */
bool qvm_marked(const struct hv *hv, const char *guest, const char *host, const char *marker);
/* Refuse (-EIO, err saying why) a save or migration of an instance that a
 * failed background save left unable to send its RAM (hv_qmp_ckpt.c). */
int qvm_check_can_send(const struct hv *hv, const char *guest, const char *host, char *err,
		       size_t errlen);

/* ---- guests ---- */
/* Hosts with a live QEMU of guest (at most max); files of dead ones go. */
size_t qvm_instances(struct hv *hv, const char *guest, char hosts[][NAME_MAX_LEN], size_t max);
/* STATE/GUEST/guest.json into buf. */
int qvm_guest_json_path(const struct hv *hv, const char *guest, char *buf, size_t len);
/* The host the guest runs on and its status; -ENOENT when none. */
int qvm_where(struct hv *hv, const char *guest, char *host, size_t len, char *status,
	      size_t slen);
int qvm_info(struct hv *hv, const char *guest, struct hv_guest_info *out);
/* At open: settle every guest a stopped or crashed migd left (see hv_qmp.c). */
void qvm_reconcile_all(struct hv *hv);

#endif
