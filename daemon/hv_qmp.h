/*
 * hv_qmp: what the qmp backend needs beyond struct hv_ops: its settings
 * (migd.conf's [qmp] section, handed over in hv_env.qmp) and the pieces of
 * a guest's identity that tests and scripts recompute.
 *
 * The driver itself is hv_qmp_ops (hv.h); hv_qmp.c says how it works.
 */
#ifndef MIGD_HV_QMP_H
#define MIGD_HV_QMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv.h"

#define HV_QMP_DEFAULT_QEMU "qemu-system-x86_64"
#define HV_QMP_DEFAULT_TB_SIZE_MIB 64
#define HV_QMP_DEFAULT_PORT_BASE 49200
#define HV_QMP_PORTS 500 /* migration ports tried: base .. base + HV_QMP_PORTS - 1 */
/* Where installed guest images live when image_dir is "auto" and there is
 * none next to the migd binary (BUILD/daemon/migd -> BUILD/image). */
#ifndef HV_QMP_SYSTEM_IMAGE_DIR /* meson: DATADIR/migd/image */
#define HV_QMP_SYSTEM_IMAGE_DIR "/usr/share/migd/image"
#endif
#define HV_QMP_VCLUSTER_RUN "/run/vcluster"

/* migd.conf [qmp]; zeroed or NULL strings = the defaults. */
struct hv_qmp_settings {
	const char *image_dir;      /* "auto" (or NULL): found; "none" or "": BIOS only */
	const char *qemu;           /* the QEMU program */
	const char *accel;          /* "auto" (kvm when /dev/kvm, else tcg), "kvm", "tcg" */
	unsigned tb_size_mib;       /* TCG translation cache */
	const char *agent_endpoint; /* migd.agent= on the guest's kernel command line */
	const char *sfs_conf;       /* given to the guest through fw_cfg opt/migd/sfs.conf */
	unsigned migration_port_base;
	const char *state_dir;      /* "" or NULL: hv_env.state_dir/qmp */
	int tls;                    /* migd.conf [migration] tls: migrations over TLS */
	const char *tls_dir;        /* x509 files: DIR/HOST/ when it exists, else DIR */
};

/* The guest's MAC: 52:54:00 and three bytes of an FNV-1a hash of name. */
void hv_qmp_mac(const char *name, char *buf, size_t len);

/*
 * The image directory image_dir stands for, given the directory migd's
 * binary is in (NULL: not known): "" for BIOS only. "auto" picks
 * EXE_DIR/../image then HV_QMP_SYSTEM_IMAGE_DIR, the first holding a
 * vmlinuz, else "".
 */
void hv_qmp_resolve_image_dir(const char *image_dir, const char *exe_dir, char *out,
			      size_t len);

/*
 * Migration over TLS (hv_qmp_tls.c). The directory of host's credentials:
 * tls_dir/HOST when that is a directory (several hosts on one machine, as
 * cluster/mktls makes them), else tls_dir itself (one host, one directory,
 * as /etc/pki/qemu on a real host).
 */
void hv_qmp_tls_host_dir(const char *tls_dir, const char *host, char *out, size_t len);
/* The files QEMU reads as a server (ca-cert.pem, server-cert.pem,
 * server-key.pem) or a client (client-*) are readable in dir; else -errno
 * and err names the file. */
int hv_qmp_tls_check_dir(const char *dir, bool server, char *err, size_t errlen);

#endif
