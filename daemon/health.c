/*
 * health: see health.h. Per-host runtime state (when the hook runs next,
 * the child it runs, when the host last violated a rule) lives in a small
 * array rebuilt from the hosts table whenever its generation moves; all
 * that must survive a restart (readings, rules, the host's health and
 * reason) is in the database.
 */
#include "health.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../policies/health.h" /* the logic; "health.h" above is this module's */
#include "htab.h"
#include "log.h"
#include "migd_proto.h"
#include "scheduler.h"
#include "util.h"

#define OUT_MAX (64 * 1024)    /* a hook's stdout kept; more is cut */
#define ERR_MAX 2048           /* its stderr kept, for the failure event */
#define BAD_LINE_EVENTS 10     /* per run; the rest are counted */
#define MAX_READINGS 1024      /* per run */

extern char **environ;

struct hook_run {
	pid_t pid;                 /* 0: none running */
	int out_fd, err_fd;        /* -1 when closed */
	char *out;                 /* OUT_MAX + 1 */
	size_t out_len;
	char err[ERR_MAX + 1];
	size_t err_len;
	uint64_t started_ms;       /* real time */
	int truncated;
};

struct host_state {
	char name[DB_NAME_MAX];
	char uri[DB_URI_MAX];
	char hook[DB_HOOK_MAX];    /* its own; "" for migd.conf's */
	int64_t interval_ns, timeout_ns; /* 0: migd.conf's */
	int64_t next_run_ns;       /* cluster clock */
	int64_t last_bad_ns;       /* the last time a violation was seen; 0 unknown */
	uint64_t bad_lines_hash;   /* of the last run's bad lines: reported once */
	char last_failure[96];     /* the last run's failure, reported once; "" ok */
	struct hook_run run;
	int seen;                  /* still in the hosts table (refresh) */
	struct hnode node;         /* in health.by_name */
};

struct health {
	struct db *db;
	struct executor *ex;
	struct health_opts o;
	char default_hook[DB_HOOK_MAX];
	struct host_state **hosts; /* each its own allocation: by_name points into them */
	size_t n_hosts, cap_hosts;
	struct htab by_name;
	uint64_t hosts_gen;
	uint64_t hosts_read_ms;    /* when the hosts table was last read (real time) */
	int hosts_loaded;
	struct db_health_rule *rules;
	size_t n_rules, cap_rules;
	int64_t last_prune_ns;
};

static int64_t s_to_ns(double s)
{
	return (int64_t)llround(s * 1e9);
}

/* ---- rules ------------------------------------------------------------------ */

static int collect_rule(void *arg, const struct db_health_rule *r)
{
	struct health *hm = arg;
	if (GROW(hm->rules, hm->cap_rules, hm->n_rules + 1) < 0)
		return -ENOMEM;
	hm->rules[hm->n_rules++] = *r;
	return 0;
}

static int load_rules(struct health *hm)
{
	hm->n_rules = 0;
	return db_rule_list(hm->db, collect_rule, hm);
}

static void rule_from_row(const struct db_health_rule *row, struct health_rule *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", row->name);
	snprintf(r->sensor, sizeof(r->sensor), "%s", row->sensor);
	r->kind = strcmp(row->kind, "below") == 0  ? HEALTH_BELOW
		  : strcmp(row->kind, "rise") == 0 ? HEALTH_RISE : HEALTH_ABOVE;
	r->value = row->value;
	r->within_s = (double)row->within_ns / 1e9;
	r->has_clear = row->has_clear;
	r->clear = row->clear;
	r->clear_after_s = (double)row->clear_after_ns / 1e9;
}

/* ---- hosts' runtime state ------------------------------------------------------ */

static struct host_state *state_of(struct health *hm, const char *name)
{
	uint64_t h = hash_str(name);
	for (struct hnode *n = htab_bucket(&hm->by_name, h); n; n = n->next) {
		struct host_state *s = container_of(n, struct host_state, node);
		if (n->hash == h && strcmp(s->name, name) == 0)
			return s;
	}
	return NULL;
}

static void run_close(struct hook_run *run)
{
	if (run->out_fd >= 0)
		close(run->out_fd);
	if (run->err_fd >= 0)
		close(run->err_fd);
	run->out_fd = run->err_fd = -1;
	free(run->out);
	run->out = NULL;
}

/* Kill a running hook (its whole process group) and reap it. */
static void run_kill(struct hook_run *run)
{
	if (run->pid > 0) {
		kill(-run->pid, SIGKILL);
		while (waitpid(run->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	run->pid = 0;
	run_close(run);
}

static int mark_host(void *arg, const struct db_host *h)
{
	struct health *hm = arg;
	struct host_state *s = state_of(hm, h->name);
	if (!s) {
		if (GROW(hm->hosts, hm->cap_hosts, hm->n_hosts + 1) < 0 ||
		    !(s = calloc(1, sizeof(*s))))
			return -ENOMEM;
		snprintf(s->name, sizeof(s->name), "%s", h->name);
		if (htab_insert(&hm->by_name, &s->node, hash_str(s->name)) < 0) {
			free(s);
			return -ENOMEM;
		}
		hm->hosts[hm->n_hosts++] = s;
		s->run.out_fd = s->run.err_fd = -1;
		s->next_run_ns = exec_now_ns(hm->ex); /* a new host is asked at once */
	}
	snprintf(s->uri, sizeof(s->uri), "%s", h->uri);
	snprintf(s->hook, sizeof(s->hook), "%s", h->health_hook);
	s->interval_ns = h->health_interval_ns;
	s->timeout_ns = h->health_timeout_ns;
	s->seen = 1;
	return 0;
}

/* Follow the hosts table: new hosts get a state, removed ones lose it.
 * Reading it costs O(hosts), so while hosts keep changing (a site
 * registering thousands) it is read at most every REFRESH_MIN_MS: a new
 * host's first hook run waits at most that long, and registering N hosts
 * costs O(N) reads of the table per REFRESH_MIN_MS, not N of them. */
#define REFRESH_MIN_MS 1000
static void refresh_hosts(struct health *hm)
{
	uint64_t hosts_gen, guests_gen;
	db_generations(hm->db, &hosts_gen, &guests_gen);
	if (hm->hosts_loaded && hosts_gen == hm->hosts_gen)
		return;
	if (hm->hosts_loaded && now_ms() - hm->hosts_read_ms < REFRESH_MIN_MS)
		return;
	for (size_t i = 0; i < hm->n_hosts; i++)
		hm->hosts[i]->seen = 0;
	hm->hosts_read_ms = now_ms();
	if (db_host_scan(hm->db, mark_host, hm) < 0)
		return; /* try again at the next tick */
	for (size_t i = hm->n_hosts; i-- > 0;) {
		struct host_state *s = hm->hosts[i];
		if (s->seen)
			continue;
		run_kill(&s->run);
		htab_remove(&hm->by_name, &s->node);
		free(s);
		hm->hosts[i] = hm->hosts[--hm->n_hosts];
	}
	hm->hosts_gen = hosts_gen;
	hm->hosts_loaded = 1;
}

/* ---- judging a host ----------------------------------------------------------- */

struct latest {
	struct db_reading *r;
	size_t n, cap;
};

static int collect_reading(void *arg, const struct db_reading *r)
{
	struct latest *l = arg;
	if (GROW(l->r, l->cap, l->n + 1) < 0)
		return -ENOMEM;
	l->r[l->n++] = *r;
	return 0;
}

struct samples {
	struct health_sample *s;
	size_t n, cap;
};

static int collect_sample(void *arg, const struct db_reading *r)
{
	struct samples *l = arg;
	if (GROW(l->s, l->cap, l->n + 1) < 0)
		return -ENOMEM;
	l->s[l->n].t_s = (double)r->ts_ns / 1e9;
	l->s[l->n++].value = r->value;
	return 0;
}

static void reading_from_row(const struct db_reading *row, struct health_reading *r)
{
	health_reading_simple(r, row->sensor, row->has_value ? row->value : NAN, row->unit);
	snprintf(r->status, sizeof(r->status), "%s", row->status);
	r->discrete = strcmp(row->unit, "discrete") == 0;
	for (int i = 0; i < HEALTH_N_THRESHOLDS; i++)
		r->threshold[i] = row->threshold[i];
}

/* The rule named in a degraded host's reason ("... (rule hot)"), or NULL
 * for ipmitool's thresholds. */
static const struct db_health_rule *degrading_rule(struct health *hm, const char *reason)
{
	const char *p = strstr(reason, "(rule ");
	if (!p)
		return NULL;
	p += 6;
	size_t n = strcspn(p, ")");
	for (size_t i = 0; i < hm->n_rules; i++)
		if (strlen(hm->rules[i].name) == n && strncmp(hm->rules[i].name, p, n) == 0)
			return &hm->rules[i];
	return NULL;
}

/* One rule against one sensor's latest reading (and history for a trend). */
static int judge_rule(struct health *hm, const struct db_health_rule *row,
		      const struct db_reading *latest, int degraded, int64_t now, char *reason,
		      size_t len)
{
	struct health_rule rule;
	rule_from_row(row, &rule);
	if (!latest->has_value || !health_rule_matches(&rule, latest->sensor))
		return 0;
	if (rule.kind != HEALTH_RISE) {
		struct health_sample one = { (double)latest->ts_ns / 1e9, latest->value };
		return health_rule_eval(&rule, latest->sensor, latest->unit, &one, 1, degraded,
					reason, len);
	}
	struct samples s = { 0 };
	int rc = db_reading_history(hm->db, latest->host, latest->sensor,
				    now - row->within_ns - s_to_ns(1), collect_sample, &s);
	if (rc == 0)
		rc = health_rule_eval(&rule, latest->sensor, latest->unit, s.s, s.n, degraded,
				      reason, len);
	free(s.s);
	return rc < 0 ? 0 : rc;
}

/* The first violation on host from its sensors' latest readings: 1 with
 * reason, 0 none, negative errno. */
static int judge(struct health *hm, const char *host, int degraded, int64_t now, char *reason,
		 size_t len)
{
	struct latest l = { 0 };
	int rc = db_reading_latest(hm->db, host, collect_reading, &l), bad = 0;
	for (size_t i = 0; rc == 0 && !bad && i < l.n; i++) {
		struct health_reading r;
		reading_from_row(&l.r[i], &r);
		bad = health_reading_critical(&r, reason, len);
		for (size_t k = 0; !bad && k < hm->n_rules; k++)
			bad = judge_rule(hm, &hm->rules[k], &l.r[i], degraded, now, reason, len);
	}
	free(l.r);
	return rc < 0 ? rc : bad;
}

static json_t *host_event(struct health *hm, const char *type, const char *host,
			  const char *reason, const char *message, int64_t now)
{
	json_t *ev = migd_event_new(type, now);
	struct db_host h;
	json_object_set_new(ev, "host", json_string(host));
	json_object_set_new(ev, "reason", json_string(reason));
	json_object_set_new(ev, "message", json_string(message));
	if (db_host_get(hm->db, host, &h) == 0)
		json_object_set_new(ev, "health", json_string(h.health));
	return ev;
}

struct names {
	char (*name)[DB_NAME_MAX];
	size_t n, cap;
};

static int collect_name(void *arg, const struct db_guest *g)
{
	struct names *l = arg;
	if (g->migration_id)
		return 0; /* already on its way somewhere */
	if (GROW(l->name, l->cap, l->n + 1) < 0)
		return -ENOMEM;
	memcpy(l->name[l->n++], g->name, DB_NAME_MAX);
	return 0;
}

/* Queue every guest of host at health priority (open transaction). */
static int evacuate(struct health *hm, const char *host, const char *why, int64_t now,
		    size_t *queued)
{
	struct names l = { 0 };
	char err[256];
	int rc = db_guest_list(hm->db, host, NULL, collect_name, &l);
	*queued = 0;
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		struct exec_request rq = { .guest = l.name[i], .priority = SCHED_PRIO_HEALTH,
					   .reason = why, .queued_ns = now };
		struct db_migration m;
		rc = exec_enqueue(hm->ex, &rq, &m, err, sizeof(err));
		if (rc == -EBUSY || rc == -EINVAL) {
			log_warnx("host %s: guest %s not evacuated: %s", host, l.name[i], err);
			rc = 0;
			continue;
		}
		if (rc == 0)
			(*queued)++;
	}
	free(l.name);
	return rc;
}

/* Judge host after new readings (open transaction): degrade and evacuate,
 * or return to service after its clear-after time. */
static int act_on(struct health *hm, const char *host, int64_t now)
{
	struct db_host h;
	struct host_state *s = state_of(hm, host);
	char reason[DB_TEXT_MAX - 32] = "", message[DB_TEXT_MAX];
	int rc = db_host_get(hm->db, host, &h);
	if (rc < 0)
		return rc;
	int degraded = strcmp(h.health, "ok") != 0;
	int bad = judge(hm, host, degraded, now, reason, sizeof(reason));
	if (bad < 0)
		return bad;
	if (bad && s)
		s->last_bad_ns = now;
	if (bad && !degraded) {
		size_t queued;
		snprintf(message, sizeof(message), "host %s degraded: %s", host, reason);
		rc = db_host_set_health(hm->db, host, "degraded", reason, now);
		if (rc == 0)
			rc = db_event(hm->db, host_event(hm, "host.degraded", host, reason, message,
							 now));
		if (rc == 0)
			rc = evacuate(hm, host, message, now, &queued);
		if (rc == 0)
			log_info("%s; evacuating %zu guest%s", message, queued, queued == 1 ? "" : "s");
		return rc;
	}
	if (bad || !degraded)
		return 0;
	const struct db_health_rule *rule = degrading_rule(hm, h.health_reason);
	double clear_after_s = rule ? (double)rule->clear_after_ns / 1e9 : hm->o.clear_after_s;
	if (s && !s->last_bad_ns)
		s->last_bad_ns = h.health_since_ns ? h.health_since_ns : now;
	if (!(clear_after_s > 0) || !s || now - s->last_bad_ns < s_to_ns(clear_after_s))
		return 0;
	snprintf(reason, sizeof(reason), "no rule or threshold violated for %gs (was: %.120s)",
		 clear_after_s, h.health_reason);
	snprintf(message, sizeof(message), "host %s back in service: %s", host, reason);
	rc = db_host_set_health(hm->db, host, "ok", "", 0);
	if (rc == 0)
		rc = db_event(hm->db, host_event(hm, "host.recovered", host, reason, message, now));
	if (rc == 0) {
		log_info("%s", message);
		exec_wake(hm->ex);
	}
	return rc;
}

/* Store readings of host and act on them, in one transaction. */
static int ingest(struct health *hm, const char *host, struct db_reading *r, size_t n)
{
	int64_t now = exec_now_ns(hm->ex);
	int rc = db_begin(hm->db);
	if (rc < 0)
		return rc;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		r[i].ts_ns = now;
		snprintf(r[i].host, sizeof(r[i].host), "%s", host);
		rc = db_reading_add(hm->db, &r[i]);
	}
	if (rc == 0)
		rc = act_on(hm, host, now);
	return db_end(hm->db, rc);
}

static void row_from_reading(const struct health_reading *r, const char *source,
			     struct db_reading *row)
{
	memset(row, 0, sizeof(*row));
	snprintf(row->sensor, sizeof(row->sensor), "%s", r->sensor);
	row->has_value = r->has_value;
	row->value = r->value;
	snprintf(row->unit, sizeof(row->unit), "%s", r->unit);
	snprintf(row->status, sizeof(row->status), "%s", r->status);
	for (int i = 0; i < HEALTH_N_THRESHOLDS; i++)
		row->threshold[i] = r->threshold[i];
	snprintf(row->source, sizeof(row->source), "%s", source);
}

/* ---- hooks ------------------------------------------------------------------ */

static const char *hook_of(struct health *hm, const char *own)
{
	return *own ? own : hm->default_hook;
}

/* environ plus MIGD_HOST and MIGD_HOST_URI, built before fork: the child
 * only execs (other threads, ZeroMQ's, may hold malloc's lock). */
static char **hook_env(const struct host_state *h, char *host_var, size_t host_len,
		       char *uri_var, size_t uri_len)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 3, sizeof(char *));
	if (!env)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "MIGD_HOST=", 10) != 0 &&
		    strncmp(environ[i], "MIGD_HOST_URI=", 14) != 0)
			env[k++] = environ[i];
	snprintf(host_var, host_len, "MIGD_HOST=%s", h->name);
	snprintf(uri_var, uri_len, "MIGD_HOST_URI=%s", h->uri);
	env[k++] = host_var;
	env[k++] = uri_var;
	return env;
}

static void hook_event(struct health *hm, const char *type, const char *host, json_t *fields)
{
	json_t *ev = migd_event_new(type, exec_now_ns(hm->ex));
	json_object_set_new(ev, "host", json_string(host));
	json_object_update_new(ev, fields);
	if (db_event(hm->db, ev) < 0)
		log_warnx("host %s: %s event not stored", host, type);
}

static int hook_start(struct health *hm, struct host_state *s)
{
	const struct host_state *h = s;
	int out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	char host_var[DB_NAME_MAX + 16], uri_var[DB_URI_MAX + 16];
	const char *cmd = hook_of(hm, h->hook);
	char **env = hook_env(h, host_var, sizeof(host_var), uri_var, sizeof(uri_var));
	struct hook_run *run = &s->run;
	int rc = -ENOMEM;
	if (!env || !(run->out = malloc(OUT_MAX + 1)))
		goto fail;
	if (pipe2(out, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(errp, O_CLOEXEC | O_NONBLOCK) < 0) {
		rc = -errno;
		goto fail;
	}
	pid_t pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto fail;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		setpgid(0, 0);
		if (null >= 0)
			dup2(null, STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		dup2(errp[1], STDERR_FILENO);
		signal(SIGPIPE, SIG_DFL);
		execle("/bin/sh", "sh", "-c", cmd, (char *)NULL, env);
		_exit(127);
	}
	setpgid(pid, pid); /* either side may win the race; both ask the same */
	close(out[1]);
	close(errp[1]);
	free(env);
	run->pid = pid;
	run->out_fd = out[0];
	run->err_fd = errp[0];
	run->out_len = run->err_len = 0;
	run->truncated = 0;
	run->started_ms = now_ms();
	log_debug("host %s: health hook started (pid %d): %s", h->name, (int)pid, cmd);
	return 0;
fail:
	log_warnx("host %s: cannot start its health hook: %s", h->name, strerror(-rc));
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	free(run->out);
	run->out = NULL;
	free(env);
	return rc;
}

/* Read what is there; 1 at EOF (fd closed), 0 otherwise. */
static int drain(int *fd, char *buf, size_t *len, size_t cap, int *truncated)
{
	char chunk[4096];
	for (;;) {
		ssize_t n = read(*fd, chunk, sizeof(chunk));
		if (n > 0) {
			size_t room = cap - *len, take = (size_t)n < room ? (size_t)n : room;
			memcpy(buf + *len, chunk, take);
			*len += take;
			if (take < (size_t)n && truncated)
				*truncated = 1;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		close(*fd);
		*fd = -1;
		return 1;
	}
}

/* The hook's stdout, line by line; bad lines reported. */
static void hook_parse(struct health *hm, struct host_state *s)
{
	struct hook_run *run = &s->run;
	struct db_reading *rows = calloc(MAX_READINGS, sizeof(*rows));
	size_t n = 0, bad = 0;
	uint64_t hash = 1469598103934665603ull; /* FNV-1a over the bad lines */
	int report;
	char *save = NULL, err[256];
	int lineno = 0;
	if (!rows)
		return;
	run->out[run->out_len] = '\0';
	/* the same bad lines run after run are reported once, not every run */
	for (const char *p = run->out; *p;) {
		size_t len = strcspn(p, "\n");
		char line[1024];
		struct health_reading r;
		snprintf(line, sizeof(line), "%.*s", (int)(len < 1023 ? len : 1023), p);
		if (health_parse_line(line, &r, err, sizeof(err)) < 0)
			for (size_t i = 0; i <= len; i++)
				hash = (hash ^ (unsigned char)(i < len ? p[i] : '\n')) * 1099511628211ull;
		p += len + (p[len] == '\n');
	}
	report = hash != s->bad_lines_hash;
	s->bad_lines_hash = hash;
	if (db_begin(hm->db) < 0) {
		free(rows);
		return;
	}
	/* strtok_r would merge empty lines and shift the numbers: split by hand */
	for (char *line = run->out; line && *line; line = save) {
		char *nl = strchr(line, '\n');
		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		lineno++;
		struct health_reading r;
		int rc = health_parse_line(line, &r, err, sizeof(err));
		if (rc == 1 && n < MAX_READINGS)
			row_from_reading(&r, "hook", &rows[n++]);
		if (rc >= 0)
			continue;
		if (report && bad++ < BAD_LINE_EVENTS) {
			log_warnx("host %s: health hook line %d: \"%.120s\": %s", s->name, lineno, line,
				  err);
			hook_event(hm, "health.bad_line", s->name,
				   json_pack("{s:i, s:s, s:s}", "line", lineno, "text", line,
					     "error", err));
		}
	}
	if (report && bad > BAD_LINE_EVENTS)
		log_warnx("host %s: health hook: %zu more bad lines", s->name, bad - BAD_LINE_EVENTS);
	if (db_commit(hm->db) < 0)
		log_warnx("host %s: bad-line events not stored", s->name);
	if (n > 0 && ingest(hm, s->name, rows, n) < 0)
		log_warnx("host %s: %zu readings not stored", s->name, n);
	free(rows);
}

/* A failed run: logged and an event, unless the previous run failed the
 * same way (a broken hook every 30 s would fill the log). */
static void hook_failed(struct health *hm, struct host_state *s, const char *why)
{
	struct hook_run *run = &s->run;
	if (strcmp(s->last_failure, why) == 0)
		return;
	snprintf(s->last_failure, sizeof(s->last_failure), "%s", why);
	run->err[run->err_len] = '\0';
	char *last = run->err + run->err_len;
	while (last > run->err && (last[-1] == '\n' || last[-1] == ' '))
		*--last = '\0';
	char *line = strrchr(run->err, '\n');
	line = line ? line + 1 : run->err;
	log_warnx("host %s: health hook %s%s%s", s->name, why, *line ? ": " : "", line);
	if (db_begin(hm->db) == 0) {
		hook_event(hm, "health.hook_failed", s->name,
			   json_pack("{s:s, s:s}", "reason", why, "stderr", line));
		if (db_commit(hm->db) < 0)
			log_warnx("host %s: hook failure not stored", s->name);
	}
}

/* Drain a running hook; when it has ended, parse and judge. */
static void hook_poll(struct health *hm, struct host_state *s, double timeout_s)
{
	struct hook_run *run = &s->run;
	if (run->out_fd >= 0)
		drain(&run->out_fd, run->out, &run->out_len, OUT_MAX, &run->truncated);
	if (run->err_fd >= 0)
		drain(&run->err_fd, run->err, &run->err_len, ERR_MAX, NULL);
	int status = 0;
	pid_t done = run->out_fd < 0 && run->err_fd < 0 ? waitpid(run->pid, &status, WNOHANG) : 0;
	if (done == 0 && now_ms() - run->started_ms > (uint64_t)(timeout_s * 1e3)) {
		char why[96];
		snprintf(why, sizeof(why), "timed out after %gs; killed, its output ignored",
			 timeout_s);
		run_kill(run);
		hook_failed(hm, s, why);
		return;
	}
	if (done == 0)
		return;
	if (done < 0) { /* reaped elsewhere: can only happen with a bug */
		run->pid = 0;
		run_close(run);
		return;
	}
	run->pid = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		s->last_failure[0] = '\0';
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char why[64];
		if (WIFEXITED(status))
			snprintf(why, sizeof(why), "exited with status %d", WEXITSTATUS(status));
		else
			snprintf(why, sizeof(why), "killed by signal %d", WTERMSIG(status));
		hook_failed(hm, s, why);
	}
	if (run->truncated)
		log_warnx("host %s: health hook printed more than %d bytes; the rest was ignored",
			  s->name, OUT_MAX);
	hook_parse(hm, s);
	run_close(run);
}

void health_tick(struct health *hm)
{
	int64_t now = exec_now_ns(hm->ex);
	refresh_hosts(hm);
	for (size_t i = 0; i < hm->n_hosts; i++) {
		struct host_state *s = hm->hosts[i];
		if (s->run.pid > 0) {
			hook_poll(hm, s, s->timeout_ns ? (double)s->timeout_ns / 1e9
						       : hm->o.timeout_s);
			continue;
		}
		if (!*hook_of(hm, s->hook) || now < s->next_run_ns)
			continue;
		int64_t every = s->interval_ns ? s->interval_ns : s_to_ns(hm->o.interval_s);
		s->next_run_ns = now + (every > 0 ? every : s_to_ns(30));
		hook_start(hm, s);
	}
	int64_t retention = s_to_ns(hm->o.retention_s);
	if (retention > 0 && now - hm->last_prune_ns > retention / 24) {
		hm->last_prune_ns = now;
		if (db_reading_prune(hm->db, now - retention) < 0)
			log_warnx("health: old readings not pruned");
	}
}

void health_host_reset(struct health *hm, const char *host)
{
	struct host_state *s = state_of(hm, host);
	if (s)
		s->last_bad_ns = 0;
}

/* ---- life ----------------------------------------------------------------------- */

int health_new(struct db *db, struct executor *ex, const struct health_opts *o,
	       struct health **out, char *err, size_t errlen)
{
	struct health *hm = calloc(1, sizeof(*hm));
	if (!hm) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	hm->db = db;
	hm->ex = ex;
	hm->o = *o;
	snprintf(hm->default_hook, sizeof(hm->default_hook), "%s",
		 o->default_hook ? o->default_hook : "");
	hm->o.default_hook = hm->default_hook;
	if (load_rules(hm) < 0) {
		snprintf(err, errlen, "cannot load the health rules from the database");
		health_free(hm);
		return -EIO;
	}
	*out = hm;
	return 0;
}

void health_free(struct health *hm)
{
	if (!hm)
		return;
	for (size_t i = 0; i < hm->n_hosts; i++) {
		run_kill(&hm->hosts[i]->run);
		free(hm->hosts[i]);
	}
	htab_release(&hm->by_name);
	free(hm->hosts);
	free(hm->rules);
	free(hm);
}

/* ---- API ------------------------------------------------------------------------- */

static int host_must_exist(struct health *hm, const char *host, struct db_host *h, char *err,
			   size_t errlen)
{
	int rc = db_host_get(hm->db, host, h);
	if (rc == -ENOENT)
		snprintf(err, errlen, "host \"%s\": no such host", host);
	else if (rc < 0)
		snprintf(err, errlen, "database error");
	return rc;
}

int health_report(struct health *hm, json_t *args, json_t **result, char *err, size_t errlen)
{
	const char *host, *sensor, *unit = "";
	double value;
	struct db_host h;
	int rc;
	if ((rc = migd_arg_str(args, "host", 1, &host, err, errlen)) < 0 ||
	    (rc = migd_arg_str(args, "sensor", 1, &sensor, err, errlen)) < 0 ||
	    (rc = migd_arg_num(args, "value", 1, &value, err, errlen)) < 0)
		return rc;
	if ((rc = migd_arg_str(args, "unit", 0, &unit, err, errlen)) < 0 && rc != -ENOENT)
		return rc;
	if (!*sensor || strlen(sensor) >= DB_SENSOR_MAX || strchr(sensor, '\n')) {
		snprintf(err, errlen, "argument \"sensor\" = \"%.80s\": expected 1 to %d bytes on "
			 "one line", sensor, DB_SENSOR_MAX - 1);
		return -EINVAL;
	}
	if (strlen(unit) >= sizeof(((struct db_reading *)0)->unit)) {
		snprintf(err, errlen, "argument \"unit\" = \"%.40s\": too long", unit);
		return -EINVAL;
	}
	if ((rc = host_must_exist(hm, host, &h, err, errlen)) < 0)
		return rc;
	struct health_reading r;
	struct db_reading row;
	health_reading_simple(&r, sensor, value, unit);
	row_from_reading(&r, "report", &row);
	if ((rc = ingest(hm, host, &row, 1)) < 0) {
		snprintf(err, errlen, "database error: the reading was not stored");
		return rc;
	}
	if ((rc = host_must_exist(hm, host, &h, err, errlen)) < 0)
		return rc;
	snprintf(row.host, sizeof(row.host), "%s", host);
	*result = json_pack("{s:o, s:o}", "reading", db_reading_json(&row), "host",
			    db_host_json(&h));
	return 0;
}

/* The kind and numbers of health.rule.add into row. */
static int rule_args(json_t *args, struct db_health_rule *row, char *err, size_t errlen)
{
	static const char *const kinds[] = { "above", "below", "rise" };
	double v, within = 0, clear = 0, clear_after = 0;
	int found = 0, rc;
	for (size_t i = 0; i < 3; i++) {
		if ((rc = migd_arg_num(args, kinds[i], 0, &v, err, errlen)) == -ENOENT)
			continue;
		if (rc < 0)
			return rc;
		if (found++) {
			snprintf(err, errlen, "give one of above, below or rise, not several");
			return -EINVAL;
		}
		snprintf(row->kind, sizeof(row->kind), "%s", kinds[i]);
		row->value = v;
	}
	if (!found) {
		snprintf(err, errlen, "a rule needs one of above, below or rise (with within_s)");
		return -EINVAL;
	}
	if ((rc = migd_arg_num(args, "within_s", 0, &within, err, errlen)) < 0 && rc != -ENOENT)
		return rc;
	if (strcmp(row->kind, "rise") == 0 && !(within > 0)) {
		snprintf(err, errlen, "argument \"within_s\": a rise rule needs a window above 0");
		return -EINVAL;
	}
	if (strcmp(row->kind, "rise") == 0 && !(row->value > 0)) {
		snprintf(err, errlen, "argument \"rise\" = %g: expected a rise above 0", row->value);
		return -EINVAL;
	}
	if (strcmp(row->kind, "rise") != 0 && rc == 0) {
		snprintf(err, errlen, "argument \"within_s\": only a rise rule has a window");
		return -EINVAL;
	}
	row->within_ns = s_to_ns(within);
	if ((rc = migd_arg_num(args, "clear", 0, &clear, err, errlen)) == 0) {
		int above = strcmp(row->kind, "above") == 0, below = strcmp(row->kind, "below") == 0;
		if ((!above && !below) || (above && clear > row->value) ||
		    (below && clear < row->value)) {
			snprintf(err, errlen, "argument \"clear\" = %g: a level on the healthy side of "
				 "an above or below limit (%g)", clear, row->value);
			return -EINVAL;
		}
		row->has_clear = 1;
		row->clear = clear;
	} else if (rc != -ENOENT) {
		return rc;
	}
	if ((rc = migd_arg_num(args, "clear_after_s", 0, &clear_after, err, errlen)) < 0 &&
	    rc != -ENOENT)
		return rc;
	if (clear_after < 0 || !isfinite(clear_after)) {
		snprintf(err, errlen, "argument \"clear_after_s\" = %g: expected 0 or more",
			 clear_after);
		return -EINVAL;
	}
	row->clear_after_ns = s_to_ns(clear_after);
	return 0;
}

int health_rule_add(struct health *hm, json_t *args, json_t **result, char *err,
		    size_t errlen)
{
	struct db_health_rule row = { 0 };
	const char *name, *sensor;
	int rc;
	if ((rc = migd_arg_str(args, "name", 1, &name, err, errlen)) < 0 ||
	    (rc = migd_arg_str(args, "sensor", 1, &sensor, err, errlen)) < 0)
		return rc;
	if (db_name_check(name) < 0) {
		snprintf(err, errlen, "argument \"name\" = \"%.80s\": expected 1 to %d letters, "
			 "digits, '.', '_' or '-', starting with a letter or digit", name,
			 DB_NAME_MAX - 1);
		return -EINVAL;
	}
	if (!*sensor || strlen(sensor) >= DB_SENSOR_MAX) {
		snprintf(err, errlen, "argument \"sensor\" = \"%.80s\": expected a sensor name or "
			 "glob of 1 to %d bytes", sensor, DB_SENSOR_MAX - 1);
		return -EINVAL;
	}
	if ((rc = rule_args(args, &row, err, errlen)) < 0)
		return rc;
	snprintf(row.name, sizeof(row.name), "%s", name);
	snprintf(row.sensor, sizeof(row.sensor), "%s", sensor);
	row.created_ns = exec_now_ns(hm->ex);
	if ((rc = db_begin(hm->db)) == 0) {
		rc = db_rule_add(hm->db, &row);
		if (rc == 0) {
			json_t *ev = migd_event_new("health.rule.added", row.created_ns);
			json_object_set_new(ev, "rule", db_rule_json(&row));
			rc = db_event(hm->db, ev);
		}
		rc = db_end(hm->db, rc);
	}
	if (rc == -EEXIST)
		snprintf(err, errlen, "health rule \"%s\" already exists", name);
	else if (rc < 0)
		snprintf(err, errlen, "database error: the rule was not added");
	if (rc < 0)
		return rc;
	load_rules(hm);
	log_info("health rule %s added: %s %s %g", row.name, row.sensor, row.kind, row.value);
	*result = db_rule_json(&row);
	return 0;
}

int health_rule_list(struct health *hm, json_t **result, char *err, size_t errlen)
{
	*result = json_array();
	for (size_t i = 0; i < hm->n_rules; i++)
		json_array_append_new(*result, db_rule_json(&hm->rules[i]));
	return 0;
}

int health_rule_rm(struct health *hm, const char *name, json_t **result, char *err,
		   size_t errlen)
{
	int rc = db_begin(hm->db);
	if (rc == 0) {
		rc = db_rule_remove(hm->db, name);
		if (rc == 0) {
			json_t *ev = migd_event_new("health.rule.removed", exec_now_ns(hm->ex));
			json_object_set_new(ev, "name", json_string(name));
			rc = db_event(hm->db, ev);
		}
		rc = db_end(hm->db, rc);
	}
	if (rc == -ENOENT)
		snprintf(err, errlen, "health rule \"%s\": no such rule", name);
	else if (rc < 0)
		snprintf(err, errlen, "database error: the rule was not removed");
	if (rc < 0)
		return rc;
	load_rules(hm);
	*result = json_pack("{s:s}", "name", name);
	return 0;
}

struct show_ctx {
	struct health *hm;
	json_t *arr;
};

static int show_reading(void *arg, const struct db_reading *r)
{
	return json_array_append_new(arg, db_reading_json(r));
}

static int show_host(void *arg, const struct db_host *h)
{
	struct show_ctx *c = arg;
	json_t *readings = json_array();
	json_t *o = json_pack("{s:s, s:s, s:o, s:o}", "host", h->name, "health", h->health,
			      "reason", *h->health_reason ? json_string(h->health_reason)
							  : json_null(),
			      "hook", *hook_of(c->hm, h->health_hook)
					      ? json_string(hook_of(c->hm, h->health_hook))
					      : json_null());
	json_object_set_new(o, "since_ns", h->health_since_ns ? json_integer(h->health_since_ns)
							      : json_null());
	json_object_set_new(o, "interval_s", json_real(h->health_interval_ns
					   ? (double)h->health_interval_ns / 1e9 : c->hm->o.interval_s));
	json_object_set_new(o, "timeout_s", json_real(h->health_timeout_ns
					  ? (double)h->health_timeout_ns / 1e9 : c->hm->o.timeout_s));
	json_object_set_new(o, "readings", readings);
	json_array_append_new(c->arr, o);
	return db_reading_latest(c->hm->db, h->name, show_reading, readings);
}

int health_show(struct health *hm, const char *host, json_t **result, char *err, size_t errlen)
{
	struct show_ctx c = { hm, json_array() };
	struct db_host h;
	int rc;
	*result = c.arr;
	if (host) {
		if ((rc = host_must_exist(hm, host, &h, err, errlen)) < 0)
			return rc;
		rc = show_host(&c, &h);
	} else {
		rc = db_host_scan(hm->db, show_host, &c);
	}
	if (rc < 0)
		snprintf(err, errlen, "database error");
	return rc;
}
