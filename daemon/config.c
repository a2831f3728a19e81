/*
 * config: see config.h. The options table is the single definition of a
 * setting; everything else here walks it.
 */
#include "config.h"
#include "hv_qmp.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net.h"
#include "util.h"

enum opt_type { OPT_STR, OPT_UINT, OPT_U64, OPT_DOUBLE, OPT_DURATION, OPT_RATE, OPT_BOOL };

struct opt {
	const char *name;
	enum opt_type type;
	size_t offset;
	size_t size;          /* OPT_STR: buffer size */
	const char *def;
	double min, max;      /* numbers */
	char short_opt;       /* 0: long option only */
	const char *help;
};

#define OFF(f) offsetof(struct migd_config, f)
#define STR(f) OPT_STR, OFF(f), sizeof(((struct migd_config *)0)->f)
#define NUM(t, f) t, OFF(f), 0

static const struct opt opts[] = {
	{ "db", STR(db), "migd.db", 0, 0, 0,
	  "state database (SQLite); the sim backend keeps its world beside it" },
	{ "listen", STR(listen), "tcp://127.0.0.1:7700", 0, 0, 0,
	  "ZeroMQ endpoint of the request/reply API" },
	{ "events", STR(events), "", 0, 0, 0,
	  "ZeroMQ endpoint events are published on (empty: the listen port + 1)" },
	{ "time_scale", NUM(OPT_DOUBLE, time_scale), "1", 1e-3, 1e6, 0,
	  "sim backend: virtual seconds per real second (60: a real second is a minute)" },
	{ "seed", NUM(OPT_U64, seed), "1", 0, 0, 0,
	  "sim backend: seed of its randomness (a seed gives the same run)" },
	{ "max_concurrent", NUM(OPT_UINT, max_concurrent), "8", 0, 1e6, 0,
	  "migrations at once in the cluster (0: no limit)" },
	{ "max_outbound", NUM(OPT_UINT, max_outbound), "2", 0, 1e6, 0,
	  "migrations at once from one host, unless the host sets its own (0: no limit)" },
	{ "max_inbound", NUM(OPT_UINT, max_inbound), "2", 0, 1e6, 0,
	  "migrations at once to one host, unless the host sets its own (0: no limit)" },
	{ "min_gap", NUM(OPT_DURATION, min_gap_s), "0", 0, 86400 * 365, 0,
	  "least time between two migration starts (30s, 2m; cluster clock)" },
	{ "bandwidth_cap", NUM(OPT_RATE, bandwidth_cap_bps), "0", 0, 1e15, 0,
	  "bandwidth of one migration, bytes/s (100m) or bits (1gbit) (0: uncapped)" },
	{ "max_downtime_ms", NUM(OPT_UINT, max_downtime_ms), "300", 0, 3600000, 0,
	  "longest pause of the guest at the switch-over (0: the backend's default)" },
	{ "auto_converge", NUM(OPT_BOOL, auto_converge), "no", 0, 1, 0,
	  "throttle a guest that dirties memory faster than it can be sent" },
	{ "postcopy", NUM(OPT_BOOL, postcopy), "no", 0, 1, 0,
	  "switch to the destination after the first round when pre-copy does not converge" },
	{ "parallel_connections", NUM(OPT_UINT, parallel_connections), "0", 0, 256, 0,
	  "connections per migration (multifd; 0: the backend's default)" },
	{ "progress_interval_ms", NUM(OPT_UINT, progress_interval_ms), "500", 10, 3600000, 0,
	  "publish migration.progress at most this often per migration (real time)" },
	{ "poll_interval_ms", NUM(OPT_UINT, poll_interval_ms), "10", 1, 1000, 0,
	  "period of the main loop: API, migration polling, policies (real time)" },
	{ "health_hook", STR(health_hook), "", 0, 0, 0,
	  "health hook (sh -c) for hosts added without --health-hook (empty: none)" },
	{ "health_interval", NUM(OPT_DURATION, health_interval_s), "30s", 0.001, 86400 * 365, 0,
	  "run each host's health hook this often (cluster clock)" },
	{ "health_timeout", NUM(OPT_DURATION, health_timeout_s), "10s", 0.001, 86400, 0,
	  "kill a health hook that runs longer than this (real time)" },
	{ "health_clear_after", NUM(OPT_DURATION, health_clear_after_s), "0", 0, 86400 * 365, 0,
	  "a host degraded by an ipmitool threshold returns after this long ok (0: by hand)" },
	{ "health_retention", NUM(OPT_DURATION, health_retention_s), "1d", 60, 86400 * 3650, 0,
	  "keep sensor readings this long (each sensor's latest always)" },
	{ "daemon", NUM(OPT_BOOL, daemonize), "no", 0, 1, 'd',
	  "run in the background and log to syslog" },
	{ "debug", NUM(OPT_BOOL, debug), "no", 0, 1, 'v', "log debug messages" },
	/* [agent] (the "agent." names; flags --agent-NAME): the guests'
	 * migagents (migd.conf(5)) and the defaults of every migration that
	 * neither its policy nor `migctl migrate` sets */
	{ "agent.listen", STR(agent_listen), "", 0, 0, 0,
	  "ZeroMQ endpoint agents connect to, e.g. tcp://0.0.0.0:7710 (empty: off)" },
	{ "agent.quiesce", STR(quiesce), "best-effort", 0, 0, 0,
	  "quiesce guest I/O around a migration: required, best-effort or off" },
	{ "agent.quiesce_deadline", NUM(OPT_DURATION, quiesce_deadline_s), "2s", 0.001, 3600, 0,
	  "time the agent has to drain and flush (real time)" },
	{ "agent.on_quiesce_miss", STR(on_quiesce_miss), "defer", 0, 0, 0,
	  "quiesce required and not done: defer (queue again later) or abort" },
	{ "agent.io_lull", NUM(OPT_RATE, io_lull_bps), "0", 0, 1e15, 0,
	  "start only when the guest's I/O (read + write) is below this, bytes/s (0: off)" },
	{ "agent.io_lull_wait", NUM(OPT_DURATION, io_lull_wait_s), "30s", 0, 86400, 0,
	  "longest wait for an I/O lull before starting anyway (real time)" },
	{ "agent.defer_delay", NUM(OPT_DURATION, defer_delay_s), "30s", 0, 86400, 0,
	  "a deferred migration waits this long before it may start again (cluster clock)" },
	{ "agent.max_defers", NUM(OPT_UINT, max_defers), "3", 0, 1000, 0,
	  "deferrals before a migration whose quiesce keeps failing is aborted" },
	/* [migration] (the "migration." names; flags --migration-NAME): the
	 * migration stream between hosts, for the backends that carry it */
	{ "migration.tls", NUM(OPT_BOOL, migration_tls), "no", 0, 1, 0,
	  "migrate over TLS, x509 certificates checked at both ends (qmp: tls_dir; libvirt: "
	  "VIR_MIGRATE_TLS)" },
	{ "migration.tls_dir", STR(migration_tls_dir), "/etc/pki/qemu", 0, 0, 0,
	  "qmp: QEMU's x509 files (ca-cert.pem, server-*.pem, client-*.pem) in DIR/HOST/ when "
	  "it exists, else DIR (cluster/mktls)" },
	/* [qmp] (the "qmp." names; flags --qmp-NAME): the QEMU backend */
	{ "qmp.image_dir", STR(qmp_image_dir), "auto", 0, 0, 0,
	  "guest kernel and initrd (vmlinuz, initrd.img); auto: BINDIR/../image or "
	  HV_QMP_SYSTEM_IMAGE_DIR "; none: BIOS-only guests (tests)" },
	{ "qmp.qemu", STR(qmp_qemu), "qemu-system-x86_64", 0, 0, 0, "the QEMU program" },
	{ "qmp.accel", STR(qmp_accel), "auto", 0, 0, 0,
	  "QEMU accelerator: auto (kvm when /dev/kvm is usable, else tcg), kvm or tcg" },
	{ "qmp.tb_size", NUM(OPT_UINT, qmp_tb_size), "64", 1, 65536, 0,
	  "TCG translation cache of each guest, MiB" },
	{ "qmp.agent_endpoint", STR(qmp_agent_endpoint), "", 0, 0, 0,
	  "migagent endpoint on the guest kernel command line (migd.agent=; empty: none)" },
	{ "qmp.sfs_conf", STR(qmp_sfs_conf), "", 0, 0, 0,
	  "sfs.conf handed to guests through fw_cfg opt/migd/sfs.conf (empty: none)" },
	{ "qmp.migration_port_base", NUM(OPT_UINT, qmp_migration_port_base), "49200", 1024, 65000, 0,
	  "first TCP port a destination QEMU listens on for a migration" },
	{ "qmp.state_dir", STR(qmp_state_dir), "", 0, 0, 0,
	  "per-guest files of the QEMU backend (empty: qmp/ beside db)" },
	/* [libvirt] (the "libvirt." names; flags --libvirt-NAME): the libvirt backend */
	{ "libvirt.image_dir", STR(libvirt_image_dir), "", 0, 0, 0,
	  "guest image (vmlinuz, initrd.img) on every host; empty: BIOS-only guests "
	  "without a disk" },
	{ "libvirt.domain_type", STR(libvirt_domain_type), "auto", 0, 0, 0,
	  "domain type of new guests: qemu (TCG), kvm, or auto (kvm when the host's "
	  "capabilities list it)" },
	{ "libvirt.bridge", STR(libvirt_bridge), "br0", 0, 0, 0,
	  "host bridge the guest NIC joins; empty: no NIC" },
	{ "libvirt.serial_dir", STR(libvirt_serial_dir), "/var/log/libvirt/qemu", 0, 0, 0,
	  "directory on each host for the guests' serial logs (GUEST.serial)" },
	{ "libvirt.emulator", STR(libvirt_emulator), "/usr/bin/qemu-system-x86_64", 0, 0, 0,
	  "QEMU binary on the hosts" },
	{ "libvirt.guest_subnet", STR(libvirt_guest_subnet), "", 0, 0, 0,
	  "A.B: guests booted from the image get A.B.1.X/16 (gateway A.B.0.1); "
	  "empty: no address" },
	{ "libvirt.agent_endpoint", STR(libvirt_agent_endpoint), "", 0, 0, 0,
	  "migd.agent= endpoint given to the guests; empty: none" },
	{ "libvirt.sfs_conf", STR(libvirt_sfs_conf), "", 0, 0, 0,
	  "sfs.conf handed to guests through fw_cfg opt/migd/sfs.conf, at this path on every "
	  "host (empty: none)" },
	{ "libvirt.tb_size_mib", NUM(OPT_UINT, libvirt_tb_size_mib), "64", 1, 4096, 0,
	  "TCG translation cache of qemu-type guests, MiB" },
	{ "libvirt.keepalive_interval", NUM(OPT_UINT, libvirt_keepalive_interval_s), "5", 1, 3600,
	  0, "seconds between keepalive probes on each host connection" },
	{ "libvirt.keepalive_count", NUM(OPT_UINT, libvirt_keepalive_count), "3", 1, 100, 0,
	  "unanswered probes before a host connection counts as dead" },
	/* [checkpoint] (the "checkpoint." names; flags --checkpoint-NAME) */
	{ "checkpoint.store", STR(ckpt_store), "sfs:/.migd/checkpoints", 0, 0, 0,
	  "where checkpoint images go: sfs:/DIR (striped, reachable from every host) or a "
	  "directory" },
	{ "checkpoint.sfs_conf", STR(ckpt_sfs_conf), "", 0, 0, 0,
	  "sfs.conf of the file system that holds the store and the jobs' data paths "
	  "(empty: qmp.sfs_conf)" },
	{ "checkpoint.background", NUM(OPT_BOOL, ckpt_background), "yes", 0, 1, 0,
	  "resume guests once their device state is taken and write memory afterwards "
	  "(QEMU background-snapshot), where the backend can" },
	{ "checkpoint.keep", NUM(OPT_UINT, ckpt_keep), "3", 0, 100000, 0,
	  "complete checkpoints kept per job unless its policy says (0: all)" },
	{ "checkpoint.sim_store_bandwidth", NUM(OPT_RATE, ckpt_sim_store_bps), "1g", 1, 1e15, 0,
	  "sim backend: the checkpoint store's bandwidth its model shares among saves and "
	  "loads, bytes/s" },
	/* [metrics] (flags --metrics-NAME): the Prometheus endpoint */
	{ "metrics.listen", STR(metrics_listen), "", 0, 0, 0,
	  "HOST:PORT of the Prometheus metrics endpoint (http://HOST:PORT/metrics), e.g. "
	  "127.0.0.1:9464 (empty: off)" },
};


#define OPT_BASE 0x100
enum { OPT_CONFIG = 'c', OPT_CHECK = 'n', OPT_HELP = 'h', OPT_DUMP = 0x80, OPT_VERSION };

static void *field(struct migd_config *c, const struct opt *o)
{
	return (char *)c + o->offset;
}

static const void *cfield(const struct migd_config *c, const struct opt *o)
{
	return (const char *)c + o->offset;
}

static const struct opt *opt_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		if (strcmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

/* The section of o ("migd", "agent") into buf; returns the key in it. */
static const char *section_of(const struct opt *o, char *buf, size_t len)
{
	const char *dot = strchr(o->name, '.');
	snprintf(buf, len, "%.*s", dot ? (int)(dot - o->name) : 4, dot ? o->name : "migd");
	return dot ? dot + 1 : o->name;
}

/* The setting name in section ("" is [migd]). */
static const struct opt *opt_find_in(const char *section, const char *name)
{
	char full[96];
	if (!*section || strcmp(section, "migd") == 0)
		return strchr(name, '.') ? NULL : opt_find(name);
	snprintf(full, sizeof(full), "%s.%s", section, name);
	return opt_find(full);
}

/* A [section] of the file: one that some setting's "section." name has. */
static bool section_known(const char *section)
{
	size_t len = strlen(section);
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		if (strncmp(opts[i].name, section, len) == 0 && opts[i].name[len] == '.')
			return true;
	return false;
}

/* The command-line flag of o without the dashes: max-inbound, agent-listen. */
static void flag_name(const struct opt *o, char *buf, size_t len)
{
	snprintf(buf, len, "%s", o->name);
	for (char *p = buf; *p; p++)
		if (*p == '_' || *p == '.')
			*p = '-';
}

/* ---- values ---- */

/* "30s", "4m", "250ms", "1h", "1d"; a plain number is seconds. */
static int parse_duration(const char *text, double *out)
{
	static const struct {
		const char *suffix;
		double s;
	} units[] = { { "", 1 }, { "s", 1 }, { "ms", 1e-3 }, { "m", 60 }, { "min", 60 },
		      { "h", 3600 }, { "d", 86400 } };
	char *end;
	if (!isdigit((unsigned char)*text) && *text != '.')
		return -EINVAL;
	double v = strtod(text, &end);
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcasecmp(end, units[i].suffix) == 0) {
			*out = v * units[i].s;
			return isfinite(*out) ? 0 : -EINVAL;
		}
	}
	return -EINVAL;
}

static int set_number(struct migd_config *c, const struct opt *o, const char *value,
		      const char **expected)
{
	double d = 0;
	uint64_t u = 0;
	char *end;
	int rc = 0;
	switch (o->type) {
	case OPT_UINT:
		*expected = "a whole number";
		rc = parse_u64(value, (uint64_t)o->min, (uint64_t)o->max, &u);
		if (rc == 0)
			*(unsigned *)field(c, o) = (unsigned)u;
		return rc;
	case OPT_U64:
		*expected = "a whole number";
		rc = parse_u64(value, 0, UINT64_MAX, &u);
		if (rc == 0)
			*(uint64_t *)field(c, o) = u;
		return rc;
	case OPT_DOUBLE:
		*expected = "a number";
		d = strtod(value, &end);
		rc = (*value == '\0' || *end != '\0' || !isfinite(d)) ? -EINVAL : 0;
		break;
	case OPT_DURATION:
		*expected = "a duration like 30s, 4m or 250ms";
		rc = parse_duration(value, &d);
		break;
	case OPT_RATE:
		*expected = "a rate like 100m (bytes/s) or 1gbit";
		rc = parse_rate(value, &u);
		if (rc == 0 && (double)u > o->max)
			rc = -ERANGE;
		if (rc == 0)
			*(uint64_t *)field(c, o) = u;
		return rc;
	default:
		return -EINVAL;
	}
	if (rc == 0 && (d < o->min || d > o->max))
		rc = -ERANGE;
	if (rc == 0)
		*(double *)field(c, o) = d;
	return rc;
}

/* Set one option from text; where ("migd.conf:12" or "--max-inbound")
 * starts the message. */
static int opt_set(struct migd_config *c, const struct opt *o, const char *value,
		   const char *where, char *err, size_t errlen)
{
	const char *expected = "";
	int rc = 0;
	if (o->type == OPT_STR) {
		if (snprintf_checked(field(c, o), o->size, "%s", value) < 0) {
			snprintf(err, errlen, "%s: %s \"%.40s...\": longer than %zu bytes", where,
				 o->name, value, o->size - 1);
			return -EINVAL;
		}
		return 0;
	}
	if (o->type == OPT_BOOL) {
		expected = "yes or no";
		rc = parse_bool(value, field(c, o));
	} else {
		rc = set_number(c, o, value, &expected);
	}
	if (rc == -ERANGE && o->type != OPT_BOOL && o->type != OPT_U64)
		snprintf(err, errlen, "%s: %s \"%s\": out of range (%g to %.0f)", where, o->name,
			 value, o->min, o->max);
	else if (rc < 0)
		snprintf(err, errlen, "%s: %s \"%s\": expected %s", where, o->name, value,
			 expected);
	return rc < 0 ? -EINVAL : 0;
}

/* ---- the file ---- */

struct file_state {
	struct migd_config *conf;
	const char *path;
	int lineno;
	char err[PATH_MAX + 512];
	int failed;
};

static int ini_line(void *user, const char *section, const char *name, const char *value,
		    int lineno)
{
	struct file_state *st = user;
	char where[PATH_MAX + 16];
	snprintf(where, sizeof(where), "%s:%d", st->path, lineno);
	if (st->failed)
		return 0;
	if (*section && strcmp(section, "migd") != 0 && !section_known(section)) {
		snprintf(st->err, sizeof(st->err), "%s: unknown section [%s] (settings go at the "
			 "top, in [migd], [agent], [migration], [qmp], [libvirt], [checkpoint] or "
			 "[metrics])", where, section);
		st->failed = 1;
		return 0;
	}
	const struct opt *o = opt_find_in(section, name);
	if (!o) {
		snprintf(st->err, sizeof(st->err), "%s: unknown setting \"%s\" in [%s]", where,
			 name, *section ? section : "migd");
		st->failed = 1;
		return 0;
	}
	if (opt_set(st->conf, o, value, where, st->err, sizeof(st->err)) < 0) {
		st->failed = 1;
		return 0;
	}
	return 1;
}

/* inih 55 reports the line only as the return value; a wrapper handler
 * counts lines itself so that a bad value names its line too. */
struct line_counter {
	struct file_state *st;
	FILE *f;
};

static int conf_ini_handler(void *user, const char *section, const char *name, const char *value)
{
	struct file_state *st = user;
	return ini_line(st, section, name, value, st->lineno);
}

static char *conf_ini_reader(char *str, int num, void *stream)
{
	struct line_counter *lc = stream;
	char *s = fgets(str, num, lc->f);
	if (s)
		lc->st->lineno++;
	return s;
}

static int load_file(struct migd_config *c, const char *path, char *err, size_t errlen)
{
	struct file_state st = { .conf = c, .path = path };
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -EINVAL;
	}
	struct line_counter lc = { &st, f };
	int line = ini_parse_stream(conf_ini_reader, &lc, conf_ini_handler, &st);
	fclose(f);
	if (st.failed) {
		snprintf(err, errlen, "%s", st.err);
		return -EINVAL;
	}
	if (line != 0) {
		snprintf(err, errlen, "%s:%d: syntax error (expected key = value or [migd])", path,
			 line);
		return -EINVAL;
	}
	return 0;
}

/* ---- the command line ---- */

/* Long options: the fixed ones, then one per table entry ("max_inbound"
 * becomes --max-inbound). Names live in the static buffer. */
static void build_longopts(struct option *lo, char names[][40])
{
	static const struct option fixed[] = {
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "dump-config", no_argument, NULL, OPT_DUMP },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "version", no_argument, NULL, OPT_VERSION },
	};
	size_t n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		lo[n++] = fixed[i];
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++, n++) {
		flag_name(&opts[i], names[i], 40);
		lo[n] = (struct option){ names[i],
					 opts[i].type == OPT_BOOL ? optional_argument
								  : required_argument,
					 NULL, OPT_BASE + (int)i };
	}
	lo[n] = (struct option){ 0 };
}

struct override {
	const struct opt *o;
	const char *value;
	char flag[48];
};

static int parse_argv(int argc, char **argv, struct migd_config *c, struct override *ov,
		      size_t *n_ov, char *err, size_t errlen)
{
	static char names[ARRAY_SIZE(opts)][40];
	struct option lo[ARRAY_SIZE(opts) + 8];
	int opt;
	build_longopts(lo, names);
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":c:nhdv", lo, NULL)) != -1) {
		const struct opt *o = NULL;
		if (opt >= OPT_BASE)
			o = &opts[opt - OPT_BASE];
		else if (opt == 'd')
			o = opt_find("daemon");
		else if (opt == 'v')
			o = opt_find("debug");
		if (o) {
			struct override *x = &ov[(*n_ov)++];
			x->o = o;
			x->value = optarg ? optarg : "yes"; /* a bare boolean flag */
			snprintf(x->flag, sizeof(x->flag), "--");
			flag_name(o, x->flag + 2, sizeof(x->flag) - 2);
			continue;
		}
		switch (opt) {
		case OPT_CONFIG:
			snprintf(c->config_path, sizeof(c->config_path), "%s", optarg);
			break;
		case OPT_CHECK: c->action = CONFIG_CHECK; break;
		case OPT_DUMP: c->action = CONFIG_DUMP; break;
		case OPT_HELP: c->action = CONFIG_HELP; return 0;
		case OPT_VERSION: c->action = CONFIG_VERSION; return 0;
		case ':':
			snprintf(err, errlen, "option %s needs a value", argv[optind - 1]);
			return -EINVAL;
		default:
			snprintf(err, errlen, "unknown option %s (see migd --help)", argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument \"%s\" (see migd --help)", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* The events endpoint when none is set: the listen port + 1 on TCP, the
 * listen path + ".events" on IPC. */
static int derive_events(struct migd_config *c, char *err, size_t errlen)
{
	if (*c->events)
		return 0;
	if (strncmp(c->listen, "ipc://", 6) == 0) {
		if (snprintf_checked(c->events, sizeof(c->events), "%s.events", c->listen) < 0)
			goto bad;
		return 0;
	}
	const char *colon = strrchr(c->listen, ':');
	uint64_t port;
	if (strncmp(c->listen, "tcp://", 6) != 0 || !colon ||
	    parse_u64(colon + 1, 1, 65534, &port) < 0)
		goto bad;
	snprintf(c->events, sizeof(c->events), "%.*s:%" PRIu64, (int)(colon - c->listen),
		 c->listen, port + 1);
	return 0;
bad:
	snprintf(err, errlen, "listen \"%s\": cannot derive the events endpoint from it; "
		 "set events (--events)", c->listen);
	return -EINVAL;
}

static int check_endpoint(const char *name, const char *value, char *err, size_t errlen)
{
	static const char *const schemes[] = { "tcp://", "ipc://", "inproc://" };
	for (size_t i = 0; i < ARRAY_SIZE(schemes); i++)
		if (strncmp(value, schemes[i], strlen(schemes[i])) == 0 &&
		    value[strlen(schemes[i])] != '\0')
			return 0;
	snprintf(err, errlen, "%s \"%s\": expected a ZeroMQ endpoint like tcp://127.0.0.1:7700",
		 name, value);
	return -EINVAL;
}

/* The [agent] settings that take one of a few words, and the endpoint. */
static int check_agent(const struct migd_config *c, char *err, size_t errlen)
{
	if (*c->agent_listen && check_endpoint("agent listen", c->agent_listen, err, errlen) < 0)
		return -EINVAL;
	if (strcmp(c->agent_listen, c->listen) == 0 || strcmp(c->agent_listen, c->events) == 0) {
		snprintf(err, errlen, "agent listen \"%s\": must differ from listen and events",
			 c->agent_listen);
		return -EINVAL;
	}
	if (strcmp(c->quiesce, "required") != 0 && strcmp(c->quiesce, "best-effort") != 0 &&
	    strcmp(c->quiesce, "off") != 0) {
		snprintf(err, errlen, "agent quiesce \"%s\": expected required, best-effort or off",
			 c->quiesce);
		return -EINVAL;
	}
	if (strcmp(c->on_quiesce_miss, "defer") != 0 && strcmp(c->on_quiesce_miss, "abort") != 0) {
		snprintf(err, errlen, "agent on_quiesce_miss \"%s\": expected defer or abort",
			 c->on_quiesce_miss);
		return -EINVAL;
	}
	return 0;
}

int config_load(int argc, char **argv, struct migd_config *c, char *err, size_t errlen)
{
	struct override ov[64];
	size_t n_ov = 0;
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		if (opt_set(c, &opts[i], opts[i].def, "default", err, errlen) < 0)
			return -EINVAL; /* a bad default in the table: a bug */
	if (argc > (int)ARRAY_SIZE(ov)) {
		snprintf(err, errlen, "too many arguments");
		return -EINVAL;
	}
	int rc = parse_argv(argc, argv, c, ov, &n_ov, err, errlen);
	if (rc < 0 || c->action == CONFIG_HELP || c->action == CONFIG_VERSION)
		return rc;
	if (*c->config_path && (rc = load_file(c, c->config_path, err, errlen)) < 0)
		return rc;
	for (size_t i = 0; i < n_ov; i++)
		if ((rc = opt_set(c, ov[i].o, ov[i].value, ov[i].flag, err, errlen)) < 0)
			return rc;
	if (!*c->db) {
		snprintf(err, errlen, "db: no database path");
		return -EINVAL;
	}
	if ((rc = check_endpoint("listen", c->listen, err, errlen)) < 0 ||
	    (rc = derive_events(c, err, errlen)) < 0 ||
	    (rc = check_endpoint("events", c->events, err, errlen)) < 0)
		return rc;
	if (strcmp(c->qmp_accel, "auto") && strcmp(c->qmp_accel, "kvm") && strcmp(c->qmp_accel, "tcg")) {
		snprintf(err, errlen, "qmp accel \"%s\": expected auto, kvm or tcg", c->qmp_accel);
		return -EINVAL;
	}
	if (strcmp(c->listen, c->events) == 0) {
		snprintf(err, errlen, "events \"%s\": must differ from listen", c->events);
		return -EINVAL;
	}
	char host[CONFIG_ENDPOINT_MAX];
	uint16_t port;
	if (*c->metrics_listen &&
	    net_parse_hostport(c->metrics_listen, host, sizeof(host), &port, err, errlen) < 0) {
		snprintf(err, errlen, "metrics listen \"%s\": expected HOST:PORT, e.g. "
			 "127.0.0.1:9464", c->metrics_listen);
		return -EINVAL;
	}
	return check_agent(c, err, errlen);
}

/* ---- output ---- */

static void format_value(const struct migd_config *c, const struct opt *o, char *buf,
			 size_t len)
{
	const void *p = cfield(c, o);
	switch (o->type) {
	case OPT_STR: snprintf(buf, len, "%s", (const char *)p); break;
	case OPT_UINT: snprintf(buf, len, "%u", *(const unsigned *)p); break;
	case OPT_U64:
	case OPT_RATE: snprintf(buf, len, "%" PRIu64, *(const uint64_t *)p); break;
	case OPT_DOUBLE: snprintf(buf, len, "%.17g", *(const double *)p); break;
	case OPT_DURATION: snprintf(buf, len, "%.17gs", *(const double *)p); break;
	case OPT_BOOL: snprintf(buf, len, "%s", *(const int *)p ? "yes" : "no"); break;
	}
}

void config_dump(const struct migd_config *c, FILE *out)
{
	if (*c->config_path)
		fprintf(out, "# migd settings in effect (read from %s)\n", c->config_path);
	else
		fprintf(out, "# migd settings in effect\n");
	char section[16] = "";
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
		char value[PATH_MAX + 32], this[16];
		const char *key = section_of(&opts[i], this, sizeof(this));
		if (strcmp(section, this) != 0) {
			snprintf(section, sizeof(section), "%s", this);
			fprintf(out, "%s[%s]\n", i ? "\n" : "", section);
		}
		format_value(c, &opts[i], value, sizeof(value));
		fprintf(out, "# %s\n%s = %s\n", opts[i].help, key, value);
	}
}

void config_usage(FILE *out)
{
	fputs("usage: migd [-c FILE] [-n] [--dump-config] [-d] [-v] [--SETTING VALUE ...]\n"
	      "\n"
	      "migd: live migration of HPC guests under policies, with cost records.\n"
	      "\n"
	      "  -c, --config FILE   read settings from FILE (migd.conf(5))\n"
	      "  -n, --check         check the settings and exit\n"
	      "      --dump-config   print the settings in effect and exit\n"
	      "  -h, --help          show this help\n"
	      "      --version       show the version\n"
	      "\n"
	      "Settings (in the file as name = value; here as --name VALUE, '_' as '-';\n"
	      "those of the file's [agent] section as --agent-name VALUE):\n",
	      out);
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
		char flag[64], name[40];
		flag_name(&opts[i], name, sizeof(name));
		snprintf(flag, sizeof(flag), "%c%c%s--%s", opts[i].short_opt ? '-' : ' ',
			 opts[i].short_opt ? opts[i].short_opt : ' ',
			 opts[i].short_opt ? ", " : "  ", name);
		fprintf(out, "  %-26s %s", flag, opts[i].help);
		fprintf(out, *opts[i].def ? " [%s]\n" : "\n", opts[i].def);
	}
}
