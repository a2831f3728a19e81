/*
 * migd: the cluster's live-migration controller (see migd(8)).
 *
 * Thin main: settings, then the modules, then one single-threaded loop:
 * answer API requests for up to poll_interval_ms, fire due policies, let
 * the executor poll and plan, publish what was committed. No module blocks,
 * so a request is never stuck behind a migration.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_link.h"
#include "api.h"
#include "ckpt.h"
#include "config.h"
#include "db.h"
#include "executor.h"
#include "health.h"
#include "hv_qmp.h"
#include "log.h"
#include "metrics.h"
#include "migd_proto.h"
#include "policy.h"
#include "service.h"
#include "util.h"

#ifndef MIGD_LIBEXECDIR
#define MIGD_LIBEXECDIR "/usr/local/libexec/migd"
#endif

#ifndef MIGD_SBIN_TO_LIBEXEC
#define MIGD_SBIN_TO_LIBEXEC ""
#endif

#ifndef MIGD_VERSION
#define MIGD_VERSION "0.0.0"
#endif

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void install_signals(void)
{
	struct sigaction sa = { 0 };
	sa.sa_handler = on_signal; /* no SA_RESTART: zmq_poll returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
}

/* db as an absolute path (a daemon leaves the working directory), and its
 * directory, where the backends keep their state. */
static int resolve_paths(struct migd_config *conf, char *state_dir, size_t len)
{
	char cwd[PATH_MAX], abs[PATH_MAX];
	if (conf->db[0] != '/') {
		if (!getcwd(cwd, sizeof(cwd)) ||
		    snprintf_checked(abs, sizeof(abs), "%s/%s", cwd, conf->db) < 0)
			return -ENAMETOOLONG;
		snprintf(conf->db, sizeof(conf->db), "%s", abs);
	}
	snprintf(state_dir, len, "%s", conf->db);
	char *slash = strrchr(state_dir, '/');
	if (slash == state_dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	return 0;
}

/*
 * Fork into the background. The parent stays until the child says it is
 * serving (a byte on the pipe) or exits (EOF), so `migd -d` fails with the
 * child's error on the terminal and a non-zero status. Returns the pipe's
 * write end in the child.
 */
static int daemonize(void)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		fatal("pipe");
	pid_t pid = fork();
	if (pid < 0)
		fatal("fork");
	if (pid > 0) {
		char c;
		close(fds[1]);
		ssize_t n;
		do
			n = read(fds[0], &c, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 ? 0 : 1);
	}
	close(fds[0]);
	if (setsid() < 0)
		fatal("setsid");
	if (chdir("/") < 0)
		fatal("chdir /");
	return fds[1];
}

/* Serving: tell the waiting parent, and leave the terminal for syslog. */
static void detach(int ready_fd)
{
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	log_init("migd", 1);
	if (write(ready_fd, "1", 1) != 1)
		log_warn("telling the parent we are ready");
	close(ready_fd);
}

/* The [qmp] settings, as the backend takes them (they point into conf). */
static struct hv_qmp_settings qmp_settings;

static void exec_options(const struct migd_config *conf, const char *state_dir,
			 struct exec_opts *o)
{
	qmp_settings = (struct hv_qmp_settings){
		.image_dir = conf->qmp_image_dir,
		.qemu = conf->qmp_qemu,
		.accel = conf->qmp_accel,
		.tb_size_mib = conf->qmp_tb_size,
		.agent_endpoint = conf->qmp_agent_endpoint,
		.sfs_conf = conf->qmp_sfs_conf,
		.migration_port_base = conf->qmp_migration_port_base,
		.state_dir = conf->qmp_state_dir,
		.tls = conf->migration_tls,
		.tls_dir = conf->migration_tls_dir,
	};
	memset(o, 0, sizeof(*o));
	o->limits.max_concurrent = conf->max_concurrent;
	o->limits.max_outbound_per_host = conf->max_outbound;
	o->limits.max_inbound_per_host = conf->max_inbound;
	o->limits.min_gap_s = conf->min_gap_s;
	o->limits.bandwidth_cap_bps = (double)conf->bandwidth_cap_bps;
	o->knobs.max_downtime_ms = conf->max_downtime_ms;
	o->knobs.auto_converge = conf->auto_converge;
	o->knobs.postcopy = conf->postcopy;
	o->knobs.parallel_connections = conf->parallel_connections;
	o->progress_interval_ms = conf->progress_interval_ms;
	o->env.time_scale = conf->time_scale;
	o->env.seed = conf->seed;
	o->env.store_bps = conf->ckpt_sim_store_bps;
	o->env.state_dir = state_dir;
	db_quiesce_mode_parse(conf->quiesce, &o->knobs_default.quiesce); /* checked by config */
	o->knobs_default.quiesce_deadline_ms = (unsigned)(conf->quiesce_deadline_s * 1e3 + 0.5);
	o->knobs_default.miss_aborts = strcmp(conf->on_quiesce_miss, "abort") == 0;
	o->knobs_default.io_lull_bps = conf->io_lull_bps;
	o->knobs_default.io_lull_wait_ms = (unsigned)(conf->io_lull_wait_s * 1e3 + 0.5);
	o->defer_delay_ns = (int64_t)(conf->defer_delay_s * 1e9);
	o->max_defers = conf->max_defers;
	o->env.qmp = &qmp_settings;
	o->env.libvirt = (struct hv_libvirt_env){
		.image_dir = conf->libvirt_image_dir,
		.domain_type = conf->libvirt_domain_type,
		.bridge = conf->libvirt_bridge,
		.serial_dir = conf->libvirt_serial_dir,
		.emulator = conf->libvirt_emulator,
		.guest_subnet = conf->libvirt_guest_subnet,
		.agent_endpoint = conf->libvirt_agent_endpoint,
		.sfs_conf = conf->libvirt_sfs_conf,
		.tb_size_mib = conf->libvirt_tb_size_mib,
		.keepalive_interval_s = conf->libvirt_keepalive_interval_s,
		.keepalive_count = conf->libvirt_keepalive_count,
		.migration_tls = conf->migration_tls,
	};
}

/* migd-stream: beside this migd (a build tree), then where libexecdir is
 * from this migd's directory (an installed tree, wherever it was put:
 * DESTDIR, a moved prefix), then the configured libexecdir; "" when none
 * has it (saves then stream through a thread of migd). */
static void stream_exe(char *buf, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	buf[0] = '\0';
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(buf, len, "%.4000s/migd-stream", self);
			if (access(buf, X_OK) == 0)
				goto found;
			snprintf(buf, len, "%.4000s/" MIGD_SBIN_TO_LIBEXEC "/migd-stream", self);
			if (*MIGD_SBIN_TO_LIBEXEC && access(buf, X_OK) == 0)
				goto found;
		}
	}
	snprintf(buf, len, "%s", MIGD_LIBEXECDIR "/migd-stream");
	if (access(buf, X_OK) == 0)
		goto found;
	log_warnx("no migd-stream beside migd or in %s: checkpoint images stream through a "
		  "thread of migd, and a save cut short by migd's end fails", MIGD_LIBEXECDIR);
	buf[0] = '\0';
	return;
found:
	if (realpath(buf, self))
		snprintf(buf, len, "%s", self);
	log_info("checkpoint images stream through %s", buf);
}

static int64_t cluster_clock(void *arg)
{
	return exec_now_ns(arg);
}

static void loop(const struct migd_config *conf, struct api *api, struct executor *ex,
		 struct policy_engine *pe, struct health *hm, struct agent_link *agents,
		 struct ckpt *ck, struct migd_metrics *mx)
{
	while (!stop_signal) {
		int rc = api_serve(api, conf->poll_interval_ms);
		if (rc < 0 && rc != -EINTR) {
			log_warnx("API: %s", strerror(-rc));
			usleep(conf->poll_interval_ms * 1000u); /* do not spin on a broken socket */
		}
		if (agents)
			agent_link_tick(agents);
		policy_tick(pe);
		health_tick(hm);
		exec_tick(ex);
		ckpt_tick(ck);
		api_publish(api);
		metrics_tick(mx);
	}
	log_info("signal %d: stopping; migrations still running are reconciled at the next start",
		 (int)stop_signal);
	service_stopping("stopping; running migrations are reconciled at the next start");
}

static int run(const struct migd_config *conf, const char *state_dir, int ready_fd)
{
	char err[1024] = "";
	struct db *db = NULL;
	struct executor *ex = NULL;
	struct policy_engine *pe = NULL;
	struct health *hm = NULL;
	struct api *api = NULL;
	struct agent_link *agents = NULL;
	struct ckpt *ck = NULL;
	struct migd_metrics *mx = NULL;
	struct ckpt_opts co = { .background = conf->ckpt_background, .keep = conf->ckpt_keep };
	struct exec_opts opts;
	struct health_opts ho = {
		.default_hook = conf->health_hook, .interval_s = conf->health_interval_s,
		.timeout_s = conf->health_timeout_s, .clear_after_s = conf->health_clear_after_s,
		.retention_s = conf->health_retention_s,
	};
	int rc;
	exec_options(conf, state_dir, &opts);
	snprintf(co.store, sizeof(co.store), "%s", conf->ckpt_store);
	snprintf(co.state_dir, sizeof(co.state_dir), "%s", state_dir);
	stream_exe(co.stream_exe, sizeof(co.stream_exe));
	snprintf(co.sfs_conf, sizeof(co.sfs_conf), "%s",
		 *conf->ckpt_sfs_conf ? conf->ckpt_sfs_conf : conf->qmp_sfs_conf);
	if ((rc = db_open(conf->db, &db, err, sizeof(err))) < 0 ||
	    (rc = exec_new(db, &opts, &ex, err, sizeof(err))) < 0 ||
	    (*conf->agent_listen && (rc = agent_link_new(conf->agent_listen, db, cluster_clock, ex,
							 &agents, err, sizeof(err))) < 0) ||
	    (exec_set_agents(ex, agents), (rc = exec_restore(ex)) < 0) ||
	    (rc = ckpt_new(db, ex, &co, &ck, err, sizeof(err))) < 0 ||
	    (rc = ckpt_reconcile(ck)) < 0 ||
	    (rc = policy_engine_new(db, ex, &pe, err, sizeof(err))) < 0 ||
	    (rc = health_new(db, ex, &ho, &hm, err, sizeof(err))) < 0 ||
	    (rc = api_new(conf, db, ex, pe, hm, &api, err, sizeof(err))) < 0 ||
	    (rc = metrics_new(conf->metrics_listen, db, agents, &mx, err, sizeof(err))) < 0) {
		log_warnx("cannot start: %s", *err ? err : "the cluster state was not restored");
		goto out;
	}
	if (agents)
		api_poll_also(api, agent_link_socket(agents));
	log_info("migd %s: requests on %s, events on %s, agents on %s, database %s%s",
		 MIGD_VERSION, conf->listen, conf->events,
		 *conf->agent_listen ? conf->agent_listen : "(off)", conf->db,
		 exec_clock_is_sim(ex) ? ", sim clock" : "");
	if (ready_fd >= 0)
		detach(ready_fd);
	char status[600];
	snprintf(status, sizeof(status), "requests on %.250s, agents on %.250s", conf->listen,
		 *conf->agent_listen ? conf->agent_listen : "(off)");
	service_ready(status);
	api_set_ckpt(api, ck);
	api_set_metrics(api, mx);
	policy_set_ckpt(pe, ck);
	loop(conf, api, ex, pe, hm, agents, ck, mx);
out:
	metrics_free(mx);
	api_free(api);
	ckpt_free(ck);
	health_free(hm);
	policy_engine_free(pe);
	exec_free(ex);
	agent_link_free(agents);
	db_close(db);
	return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct migd_config *conf = calloc(1, sizeof(*conf));
	char err[1024];
	if (!conf)
		return 1;
	log_init("migd", 0);
	if (config_load(argc, argv, conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "migd: %s\n", err);
		free(conf);
		return 1;
	}
	char state_dir[PATH_MAX];
	int rc = 0, ready_fd = -1;
	switch (conf->action) {
	case CONFIG_HELP:
		config_usage(stdout);
		break;
	case CONFIG_VERSION:
		printf("migd %s (API version %d, database schema %d)\n", MIGD_VERSION,
		       MIGD_API_VERSION, DB_SCHEMA_VERSION);
		break;
	case CONFIG_DUMP:
		config_dump(conf, stdout);
		break;
	case CONFIG_CHECK:
		printf("%s: configuration OK\n", *conf->config_path ? conf->config_path : "migd");
		break;
	case CONFIG_RUN:
		/* Keep freed memory instead of giving it back at once: a reply of
		 * 10,000 guests is megabytes, and handing those pages to the kernel
		 * and faulting them in zeroed again was a third of its cost. */
		mallopt(M_MMAP_THRESHOLD, 32 << 20);
		mallopt(M_TRIM_THRESHOLD, 64 << 20);
		if (conf->debug)
			log_set_level(LOG_LEVEL_DEBUG);
		if (resolve_paths(conf, state_dir, sizeof(state_dir)) < 0) {
			fprintf(stderr, "migd: db %s: path too long\n", conf->db);
			rc = 1;
			break;
		}
		install_signals();
		if (conf->daemonize)
			ready_fd = daemonize();
		rc = run(conf, state_dir, ready_fd);
		break;
	}
	free(conf);
	return rc;
}
