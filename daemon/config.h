/*
 * config: migd's settings from migd.conf and the command line.
 *
 * One table in config.c lists every setting with its name, type, default
 * and help; the file parser (inih), the long options (the name with '-'
 * for '_': max_concurrent is --max-concurrent), --dump-config and the help
 * text all come from it, so they cannot drift apart. Order: defaults, then
 * the file given with -c, then the command line.
 *
 * Settings of one backend sit in its own section ([libvirt] image_dir);
 * their field and long option carry the section's name as a prefix
 * (libvirt_image_dir, --libvirt-image-dir).
 */
#ifndef MIGD_CONFIG_H
#define MIGD_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_ENDPOINT_MAX 256

enum config_action {
	CONFIG_RUN,      /* start migd */
	CONFIG_CHECK,    /* -n: the config is good, exit 0 */
	CONFIG_DUMP,     /* --dump-config */
	CONFIG_HELP,
	CONFIG_VERSION,
};

struct migd_config {
	char db[PATH_MAX];                  /* state database */
	char listen[CONFIG_ENDPOINT_MAX];   /* ZeroMQ REP endpoint */
	char events[CONFIG_ENDPOINT_MAX];   /* ZeroMQ PUB endpoint (derived when empty) */
	double time_scale;                  /* sim: virtual seconds per real second */
	uint64_t seed;                      /* sim: randomness seed */
	unsigned max_concurrent;            /* migrations at once in the cluster; 0: no limit */
	unsigned max_outbound;              /* per source host; 0: no limit */
	unsigned max_inbound;               /* per destination host; 0: no limit */
	double min_gap_s;                   /* between two starts */
	uint64_t bandwidth_cap_bps;         /* bytes/s per migration; 0: uncapped */
	unsigned max_downtime_ms;           /* 0: the backend's default */
	int auto_converge;
	int postcopy;
	unsigned parallel_connections;      /* 0: the backend's default */
	unsigned progress_interval_ms;      /* migration.progress at most this often */
	unsigned poll_interval_ms;          /* main loop period */
	int daemonize;
	int debug;
	char health_hook[512];              /* default hook for hosts without one; "" none */
	double health_interval_s;           /* between hook runs (cluster clock) */
	double health_timeout_s;            /* real seconds a hook may run */
	double health_clear_after_s;        /* ipmitool thresholds: auto return; 0 never */
	double health_retention_s;          /* readings kept */
	/* [agent] */
	char agent_listen[CONFIG_ENDPOINT_MAX]; /* ZeroMQ ROUTER for migagents; "" off */
	char quiesce[16];                   /* required | best-effort | off */
	double quiesce_deadline_s;
	char on_quiesce_miss[8];            /* defer | abort */
	uint64_t io_lull_bps;               /* 0: no lull wait */
	double io_lull_wait_s;
	double defer_delay_s;               /* cluster clock */
	unsigned max_defers;

	/* [migration]: the stream between hosts */
	int migration_tls;                  /* over TLS (x509, both ends verified) */
	char migration_tls_dir[PATH_MAX];   /* qmp: the certificates, DIR/HOST/ or DIR */

	/* [qmp]: the QEMU backend (hv_qmp.h); options --qmp-NAME */
	char qmp_image_dir[PATH_MAX];       /* auto, none, or a directory */
	char qmp_qemu[PATH_MAX];
	char qmp_accel[16];                 /* auto, kvm, tcg */
	unsigned qmp_tb_size;               /* MiB */
	char qmp_agent_endpoint[CONFIG_ENDPOINT_MAX];
	char qmp_sfs_conf[PATH_MAX];
	unsigned qmp_migration_port_base;
	char qmp_state_dir[PATH_MAX];       /* "": beside db, in qmp/ */

	/* [libvirt]: the libvirt backend (hv_libvirt.c) */
	char libvirt_image_dir[PATH_MAX];   /* vmlinuz + initrd.img; "": BIOS-only guests */
	char libvirt_domain_type[8];        /* qemu, kvm or auto */
	char libvirt_bridge[64];            /* host bridge of the guest NIC; "": no NIC */
	char libvirt_serial_dir[PATH_MAX];  /* guest serial logs, on each host */
	char libvirt_emulator[PATH_MAX];
	char libvirt_guest_subnet[16];      /* "A.B": guests get A.B.1.X/16 */
	char libvirt_agent_endpoint[CONFIG_ENDPOINT_MAX];
	char libvirt_sfs_conf[PATH_MAX];
	unsigned libvirt_tb_size_mib;
	unsigned libvirt_keepalive_interval_s;
	unsigned libvirt_keepalive_count;

	/* [checkpoint] */
	char ckpt_store[PATH_MAX];
	char ckpt_sfs_conf[PATH_MAX];
	int ckpt_background;
	unsigned ckpt_keep;
	uint64_t ckpt_sim_store_bps;

	/* [metrics] */
	char metrics_listen[CONFIG_ENDPOINT_MAX]; /* HOST:PORT of /metrics; "" off */

	/* how migd was asked to run, not settings */
	char config_path[PATH_MAX];         /* "" when no -c */
	enum config_action action;
};

/*
 * Defaults, then -c FILE, then the options in argv. Returns 0 with
 * conf->action set, or -EINVAL with a message naming the file and line or
 * the option, and the bad value, in err.
 */
int config_load(int argc, char **argv, struct migd_config *conf, char *err, size_t errlen);
/* The settings in effect, in migd.conf syntax (loads back unchanged). */
void config_dump(const struct migd_config *conf, FILE *out);
void config_usage(FILE *out);

#endif
