/*
 * hv_sim: the simulated hypervisor, for capacity planning, scale tests and
 * every test of migd that should not need real VMs.
 *
 * The world is hosts (a link rate and a memory size, from their URI) and
 * guests (memory and a page dirty rate) on them. A live migration is a
 * precopy.c model advanced on a virtual clock; concurrent migrations share
 * links: each host has one link, used by every migration from or to it;
 * precopy's link_share() divides each link max-min fairly among the
 * migrations on it (respecting their bandwidth caps), and a migration runs
 * at the smaller of its two shares.
 *
 * Determinism. The committed state of the simulation moves only from event
 * to event (a round ending, a stop, a switch-over, a finish: the next one
 * is the smallest precopy_next_event_s() over the running migrations, at
 * the rates in force), or to the instant a migration is started or aborted.
 * A poll between two events runs the events that are due and reports the
 * stretch since the last one by interpolation, without committing it. So
 * the figures of every migration depend only on the start (and abort)
 * times, never on how often or when migd polls. The model has no random
 * element (yet); the seed is kept for when it has.
 *
 * Virtual clock: virtual time = start + real elapsed * time_scale, the start
 * being the wall clock at open, or the last virtual time written to sim.db
 * if that is later, so that virtual time does not go back across restarts.
 *
 * Checkpoints (pause, resume, saves and loads through a shared store,
 * destroy, a guest's spec) are hv_sim_ckpt.c; the two files share the world
 * through hv_sim_int.h, and saves and loads run on the same event loop and
 * id space as migrations.
 *
 * Persistence: the world (hosts, and guests with the host they run on,
 * none once destroyed, and whether they are paused) is in state_dir/sim.db
 * (SQLite, WAL), written in one transaction at host add/remove, guest
 * create or define, pause, resume, destroy, the end of a load and at every
 * switch-over, before the change is made in memory. WAL with
 * synchronous=NORMAL survives kill -9 of migd (only power loss could lose
 * the last commits). Migrations, saves and loads in flight are not stored:
 * after a restart a guest is where its last switch-over (or load) left it,
 * which is exactly what a real hypervisor would say.
 *
 * Scale: hosts, guests and migrations are found through hash tables, each
 * host keeps a list of its guests, and one event costs O(running
 * migrations), so 1,000 hosts and 10,000 guests are cheap.
 *
 * Every entry point takes the driver's mutex: migd may call from its API
 * thread and its executor at once.
 */
#include "hv_sim.h"
#include "hv_sim_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "htab.h"
#include "hv.h"
#include "log.h"
#include "precopy.h"
#include "util.h"

#define SIM_SCHEMA_VERSION 2
#define SIM_DB_NAME "sim.db"

/* ---- the world ---- */

/* The capacity to grow an array of cap to so that it holds need. */
static size_t grown_cap(size_t cap, size_t need)
{
	size_t n = cap ? cap : 8;
	while (n < need)
		n *= 2;
	return n;
}

/* arr with room for need elements (cap updated), or NULL (arr untouched). */
void *sim_grow_array(void *arr, size_t *cap, size_t need, size_t elem_size)
{
	if (need <= *cap)
		return arr;
	size_t n = grown_cap(*cap, need);
	void *p = realloc(arr, n * elem_size);
	if (p)
		*cap = n;
	return p;
}

struct sim_host *sim_host_find(const struct hv *hv, const char *name)
{
	uint64_t h = hash_str(name);
	for (struct hnode *n = htab_bucket(&hv->hosts, h); n; n = n->next) {
		struct sim_host *host = container_of(n, struct sim_host, node);
		if (n->hash == h && strcmp(host->name, name) == 0)
			return host;
	}
	return NULL;
}

struct sim_guest *sim_guest_find(const struct hv *hv, const char *name)
{
	uint64_t h = hash_str(name);
	for (struct hnode *n = htab_bucket(&hv->guests, h); n; n = n->next) {
		struct sim_guest *g = container_of(n, struct sim_guest, node);
		if (n->hash == h && strcmp(g->name, name) == 0)
			return g;
	}
	return NULL;
}

static struct sim_mig *mig_find(const struct hv *hv, uint64_t id)
{
	uint64_t h = hash_u64(id);
	for (struct hnode *n = htab_bucket(&hv->migs, h); n; n = n->next) {
		struct sim_mig *m = container_of(n, struct sim_mig, node);
		if (n->hash == h && m->id == id)
			return m;
	}
	return NULL;
}

void sim_host_link_guest(struct sim_host *host, struct sim_guest *g)
{
	g->host = host;
	g->prev = host->last;
	g->next = NULL;
	if (host->last)
		host->last->next = g;
	else
		host->first = g;
	host->last = g;
	host->n_guests++;
	host->mem_used_bytes += g->memory_bytes;
}

void sim_host_unlink_guest(struct sim_host *host, struct sim_guest *g)
{
	if (g->prev)
		g->prev->next = g->next;
	else
		host->first = g->next;
	if (g->next)
		g->next->prev = g->prev;
	else
		host->last = g->prev;
	g->prev = g->next = NULL;
	host->n_guests--;
	host->mem_used_bytes -= g->memory_bytes;
}

/* Names come from migd and end up in fixed fields and messages. */
bool sim_valid_name(const char *name)
{
	size_t len = name ? strlen(name) : 0;
	if (len == 0 || len >= HV_SIM_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (iscntrl((unsigned char)name[i]))
			return false;
	return true;
}

/* Room for bytes more on host? Hosts without a mem= take anything. */
bool sim_host_has_room(const struct sim_host *host, uint64_t bytes)
{
	uint64_t cap = host->spec.mem_bytes;
	return cap == 0 || (host->mem_used_bytes + host->mem_inbound_bytes <= cap &&
			    bytes <= cap - host->mem_used_bytes - host->mem_inbound_bytes);
}

static void host_free(struct sim_host *host)
{
	if (!host)
		return;
	free(host->uri);
	free(host->flows);
	free(host->demand_bps);
	free(host->share_bps);
	free(host);
}

/* ---- URIs ---- */

/* "1gbit", "100mbit", "2.5g", "10gbit/s", "1000000" (bit/s) -> bytes/s */
static int parse_link_rate(const char *text, double *out_bps)
{
	static const struct {
		char suffix;
		double factor;
	} prefixes[] = { { 'k', 1e3 }, { 'm', 1e6 }, { 'g', 1e9 }, { 't', 1e12 } };
	char *end;
	if (!isdigit((unsigned char)text[0]) && text[0] != '.')
		return -EINVAL;
	double bits = strtod(text, &end);
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
		if (tolower((unsigned char)*end) == prefixes[i].suffix) {
			bits *= prefixes[i].factor;
			end++;
			break;
		}
	}
	if (*end && strcasecmp(end, "bit") != 0 && strcasecmp(end, "bit/s") != 0)
		return -EINVAL;
	if (!isfinite(bits) || !(bits > 0))
		return -EINVAL;
	*out_bps = bits / 8.0;
	return 0;
}

static bool valid_uri_name(const char *name, size_t len)
{
	if (len == 0 || len >= HV_SIM_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '-' && c != '_' && c != '.')
			return false;
	}
	return true;
}

/* One key=value of the query; value is NUL-terminated by the caller. */
static int parse_uri_param(const char *uri, const char *key, const char *value,
			   struct hv_sim_uri *out, unsigned *seen, char *err, size_t errlen)
{
	unsigned bit;
	if (strcmp(key, "link") == 0) {
		bit = 1;
		if (parse_link_rate(value, &out->link_bps) < 0) {
			snprintf(err, errlen,
				 "sim URI \"%s\": link \"%s\": expected a rate in bit/s like 100mbit, 1gbit or 10gbit",
				 uri, value);
			return -EINVAL;
		}
	} else if (strcmp(key, "mem") == 0) {
		bit = 2;
		if (parse_size(value, &out->mem_bytes) < 0 || out->mem_bytes == 0) {
			snprintf(err, errlen,
				 "sim URI \"%s\": mem \"%s\": expected a size above zero like 64g",
				 uri, value);
			return -EINVAL;
		}
	} else {
		snprintf(err, errlen, "sim URI \"%s\": unknown parameter \"%s\" (known: link, mem)",
			 uri, key);
		return -EINVAL;
	}
	if (*seen & bit) {
		snprintf(err, errlen, "sim URI \"%s\": parameter \"%s\" given twice", uri, key);
		return -EINVAL;
	}
	*seen |= bit;
	return 0;
}

static int parse_uri_query(const char *uri, const char *query, struct hv_sim_uri *out,
			   char *err, size_t errlen)
{
	char buf[256];
	unsigned seen = 0;
	if (snprintf(buf, sizeof(buf), "%s", query) >= (int)sizeof(buf)) {
		snprintf(err, errlen, "sim URI \"%s\": query too long", uri);
		return -EINVAL;
	}
	char *save = NULL;
	for (char *item = strtok_r(buf, "&", &save); item; item = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(item, '=');
		if (!eq || eq == item || eq[1] == '\0') {
			snprintf(err, errlen, "sim URI \"%s\": \"%s\": expected key=value", uri,
				 item);
			return -EINVAL;
		}
		*eq = '\0';
		int rc = parse_uri_param(uri, item, eq + 1, out, &seen, err, errlen);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int hv_sim_parse_uri(const char *uri, struct hv_sim_uri *out, char *err, size_t errlen)
{
	static const char prefix[] = "sim://";
	*out = (struct hv_sim_uri){ .link_bps = HV_SIM_DEFAULT_LINK_BPS };
	if (!uri || strncmp(uri, prefix, sizeof(prefix) - 1) != 0) {
		snprintf(err, errlen, "sim URI \"%s\": expected sim:///NAME[?link=RATE&mem=SIZE]",
			 uri ? uri : "");
		return -EINVAL;
	}
	const char *authority = uri + sizeof(prefix) - 1;
	const char *path = strchr(authority, '/');
	if (path != authority) {
		size_t len = path ? (size_t)(path - authority) : strcspn(authority, "?");
		snprintf(err, errlen,
			 "sim URI \"%s\": unexpected host part \"%.*s\"; the sim has no remote hosts, write sim:///NAME",
			 uri, (int)len, authority);
		return -EINVAL;
	}
	const char *name = path + 1;
	size_t name_len = strcspn(name, "?");
	if (!valid_uri_name(name, name_len)) {
		snprintf(err, errlen,
			 "sim URI \"%s\": host name \"%.*s\": expected 1 to %d letters, digits, '-', '_' or '.'",
			 uri, (int)name_len, name, HV_SIM_NAME_MAX - 1);
		return -EINVAL;
	}
	memcpy(out->name, name, name_len);
	out->name[name_len] = '\0';
	if (name[name_len] == '?')
		return parse_uri_query(uri, name + name_len + 1, out, err, errlen);
	return 0;
}

/* ---- the model's parameters and figures ---- */

static void model_params(uint64_t memory_bytes, uint64_t dirty_rate_bps,
			 const struct hv_migrate_params *hp, struct precopy_params *pp)
{
	*pp = (struct precopy_params){
		.memory_bytes = memory_bytes,
		.dirty_rate_bps = (double)dirty_rate_bps,
		.switchover_s = HV_SIM_SWITCHOVER_S,
	};
	if (!hp)
		return;
	pp->max_downtime_s = hp->max_downtime_ms / 1000.0;
	pp->bandwidth_cap_bps = (double)hp->bandwidth_bps;
	pp->auto_converge = hp->auto_converge != 0;
	pp->postcopy = hp->postcopy != 0;
	/* parallel_connections: multifd helps when one stream is CPU-bound;
	 * here the link is the only bottleneck, so it changes nothing */
}

uint64_t sim_ms_of(double s)
{
	return s > 0 ? (uint64_t)llround(s * 1000.0) : 0;
}

/* The figures of a finished model run, as a hypervisor reports them. The
 * calibration figures are what the model ran with: the guest's memory (all
 * of it goes in round 0) and dirty rate, and the rate it sent at, averaged
 * over the time it was sending (all but the switch-over): alone on its
 * links that is the slower link's rate, shared it is its mean share. */
static void progress_of_result(const struct precopy_result *r, uint64_t memory_bytes,
			       uint64_t dirty_rate_bps, struct hv_progress *out)
{
	*out = (struct hv_progress){ 0 };
	if (r->converged)
		out->state = HV_MIG_COMPLETED;
	else if (r->failure == PRECOPY_FAIL_ABORTED)
		out->state = HV_MIG_CANCELLED;
	else
		out->state = HV_MIG_FAILED;
	out->transferred_bytes = (uint64_t)llround(r->bytes_sent);
	out->total_bytes = memory_bytes;
	out->rounds = r->rounds;
	out->total_time_ms = sim_ms_of(r->total_s);
	out->downtime_ms = sim_ms_of(r->downtime_s);
	double sending_s = r->total_s - (r->converged ? HV_SIM_SWITCHOVER_S : 0);
	if (sending_s > 0)
		out->link_bps = (uint64_t)llround(r->bytes_sent / sending_s);
	out->dirty_rate_bps = dirty_rate_bps;
	out->ram_bytes = memory_bytes;
	if (!r->converged)
		snprintf(out->error, sizeof(out->error), "%s after %u rounds",
			 precopy_failure_name(r->failure), r->rounds);
}

int hv_sim_estimate(const char *src_uri, const char *dst_uri, uint64_t memory_bytes,
		    uint64_t dirty_rate_bps, const struct hv_migrate_params *p,
		    struct hv_progress *out)
{
	struct hv_sim_uri src, dst;
	struct precopy_params pp;
	struct precopy_result r;
	char err[sizeof(out->error)];

	*out = (struct hv_progress){ .state = HV_MIG_FAILED };
	if (hv_sim_parse_uri(src_uri, &src, err, sizeof(err)) < 0 ||
	    hv_sim_parse_uri(dst_uri, &dst, err, sizeof(err)) < 0) {
		snprintf(out->error, sizeof(out->error), "%s", err);
		return -EINVAL;
	}
	if (memory_bytes == 0) {
		snprintf(out->error, sizeof(out->error), "guest memory: must be above zero");
		return -EINVAL;
	}
	model_params(memory_bytes, dirty_rate_bps, p, &pp);
	/* alone on both links, a migration runs at the slower one */
	int rc = precopy_estimate(&pp, fmin(src.link_bps, dst.link_bps), &r);
	if (rc < 0) {
		snprintf(out->error, sizeof(out->error), "migration parameters out of range");
		return rc;
	}
	progress_of_result(&r, memory_bytes, dirty_rate_bps, out);
	return 0;
}

/* ---- sim.db ---- */

static int db_fail(struct hv *hv, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "sim.db: %s: %s", what, sqlite3_errmsg(hv->db));
	return -EIO;
}

static int db_exec(struct hv *hv, const char *sql, char *err, size_t errlen)
{
	if (sqlite3_exec(hv->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(hv, sql, err, errlen);
	return 0;
}

/* Step a write statement to completion and make it reusable. */
static int db_step(struct hv *hv, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
{
	int rc = sqlite3_step(st);
	int out = rc == SQLITE_DONE ? 0 : db_fail(hv, what, err, errlen);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return out;
}

/*
 * Every write carries the clock: virtual and wall time now, and the scale.
 * A restart extrapolates from there (virtual = then + wall time since *
 * scale), so the virtual clock goes on where the last run's would be: it
 * neither goes back nor stands still while migd is down, and the periods
 * a policy missed meanwhile are really missed.
 */
static int db_put_clock(struct hv *hv, char *err, size_t errlen)
{
	double scale_e6 = hv->manual_clock ? 0 : hv->time_scale * 1e6;
	sqlite3_bind_int64(hv->st_clock, 1, sim_virtual_now_ns(hv));
	sqlite3_bind_int64(hv->st_clock, 2, wall_ns());
	sqlite3_bind_int64(hv->st_clock, 3, (sqlite3_int64)llround(scale_e6));
	return db_step(hv, hv->st_clock, "recording the clock", err, errlen);
}

/* One write inside a batch: a savepoint, so that a refused one is undone
 * alone; the clock is written once, when the batch commits. */
static int db_batch_one(struct hv *hv, sqlite3_stmt *st, const char *what, char *err,
			size_t errlen)
{
	int rc = db_exec(hv, "SAVEPOINT one", err, errlen);
	if (rc < 0) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return rc;
	}
	rc = db_step(hv, st, what, err, errlen);
	if (rc < 0)
		sqlite3_exec(hv->db, "ROLLBACK TO one", NULL, NULL, NULL);
	sqlite3_exec(hv->db, "RELEASE one", NULL, NULL, NULL);
	return rc;
}

/* Run one prepared write (already bound) and the clock in one transaction. */
static int db_commit_one(struct hv *hv, sqlite3_stmt *st, const char *what, char *err,
			 size_t errlen)
{
	if (hv->batching)
		return db_batch_one(hv, st, what, err, errlen);
	int rc = db_exec(hv, "BEGIN IMMEDIATE", err, errlen);
	if (rc < 0) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return rc;
	}
	rc = db_step(hv, st, what, err, errlen);
	if (rc == 0)
		rc = db_put_clock(hv, err, errlen);
	if (rc == 0)
		rc = db_exec(hv, "COMMIT", err, errlen);
	if (rc < 0)
		sqlite3_exec(hv->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int db_record_host(struct hv *hv, const struct sim_host *host, char *err, size_t errlen)
{
	if (!hv->db)
		return 0;
	sqlite3_bind_text(hv->st_host_add, 1, host->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(hv->st_host_add, 2, host->uri, -1, SQLITE_STATIC);
	return db_commit_one(hv, hv->st_host_add, "adding a host", err, errlen);
}

static int db_forget_host(struct hv *hv, const char *name, char *err, size_t errlen)
{
	if (!hv->db)
		return 0;
	sqlite3_bind_text(hv->st_host_rm, 1, name, -1, SQLITE_STATIC);
	return db_commit_one(hv, hv->st_host_rm, "removing a host", err, errlen);
}

int sim_db_record_guest(struct hv *hv, const struct sim_guest *g, const struct sim_host *host,
			char *err, size_t errlen)
{
	if (!hv->db)
		return 0;
	sqlite3_stmt *st = hv->st_guest_add;
	sqlite3_bind_text(st, 1, g->name, -1, SQLITE_STATIC);
	if (host)
		sqlite3_bind_text(st, 2, host->name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)g->memory_bytes);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)g->dirty_rate_bps);
	return db_commit_one(hv, st, "adding a guest", err, errlen);
}

int sim_db_record_place(struct hv *hv, const struct sim_guest *g, const struct sim_host *host,
			bool paused, char *err, size_t errlen)
{
	if (!hv->db)
		return 0;
	sqlite3_stmt *st = hv->st_guest_place;
	if (host)
		sqlite3_bind_text(st, 1, host->name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 1);
	sqlite3_bind_int(st, 2, paused);
	sqlite3_bind_text(st, 3, g->name, -1, SQLITE_STATIC);
	return db_commit_one(hv, st, "recording where a guest runs", err, errlen);
}

/* A guest's host is NULL once destroyed: it stays known, for a load. */
static const char sim_schema[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS hosts(name TEXT PRIMARY KEY, uri TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS guests(name TEXT PRIMARY KEY,"
	" host TEXT REFERENCES hosts(name),"
	" memory_bytes INTEGER NOT NULL, dirty_rate_bps INTEGER NOT NULL,"
	" paused INTEGER NOT NULL DEFAULT 0);";

/* Version 1 had every guest on a host (host NOT NULL) and none paused. */
static const char sim_upgrade_v2[] =
	"BEGIN;"
	"CREATE TABLE guests_v2(name TEXT PRIMARY KEY, host TEXT REFERENCES hosts(name),"
	" memory_bytes INTEGER NOT NULL, dirty_rate_bps INTEGER NOT NULL,"
	" paused INTEGER NOT NULL DEFAULT 0);"
	"INSERT INTO guests_v2(name, host, memory_bytes, dirty_rate_bps)"
	" SELECT name, host, memory_bytes, dirty_rate_bps FROM guests ORDER BY rowid;"
	"DROP TABLE guests;"
	"ALTER TABLE guests_v2 RENAME TO guests;"
	"COMMIT;";

static int db_user_version(struct hv *hv, int *version, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(hv->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return db_fail(hv, "reading the schema version", err, errlen);
	*version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return 0;
}

static int db_schema(struct hv *hv, char *err, size_t errlen)
{
	int version, rc = db_user_version(hv, &version, err, errlen);
	if (rc < 0)
		return rc;
	if (version > SIM_SCHEMA_VERSION) {
		snprintf(err, errlen, "sim.db: schema version %d is newer than this migd's (%d)",
			 version, SIM_SCHEMA_VERSION);
		return -EPROTO;
	}
	if (version == 1 && (rc = db_exec(hv, sim_upgrade_v2, err, errlen)) < 0) {
		sqlite3_exec(hv->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	if ((rc = db_exec(hv, sim_schema, err, errlen)) < 0)
		return rc;
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SIM_SCHEMA_VERSION);
	return db_exec(hv, sql, err, errlen);
}

static int db_prepare(struct hv *hv, char *err, size_t errlen)
{
	static const struct {
		size_t offset;
		const char *sql;
	} stmts[] = {
		{ offsetof(struct hv, st_host_add), "INSERT INTO hosts(name, uri) VALUES (?, ?)" },
		{ offsetof(struct hv, st_host_rm), "DELETE FROM hosts WHERE name = ?" },
		{ offsetof(struct hv, st_guest_add),
		  "INSERT INTO guests(name, host, memory_bytes, dirty_rate_bps) VALUES (?, ?, ?, ?)" },
		{ offsetof(struct hv, st_guest_place), "UPDATE guests SET host = ?, paused = ? WHERE name = ?" },
		{ offsetof(struct hv, st_clock),
		  "INSERT OR REPLACE INTO meta(key, value) VALUES ('clock_ns', ?1),"
		  " ('clock_wall_ns', ?2), ('clock_scale_e6', ?3)" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(stmts); i++) {
		sqlite3_stmt **slot = (sqlite3_stmt **)((char *)hv + stmts[i].offset);
		if (sqlite3_prepare_v2(hv->db, stmts[i].sql, -1, slot, NULL) != SQLITE_OK)
			return db_fail(hv, stmts[i].sql, err, errlen);
	}
	return 0;
}

static int64_t db_meta(struct hv *hv, const char *key)
{
	sqlite3_stmt *st;
	int64_t value = 0;
	if (sqlite3_prepare_v2(hv->db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		return 0;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		value = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return value;
}

static int world_add_host(struct hv *hv, const char *name, const char *uri,
			  const struct hv_sim_uri *spec, struct sim_host **out);
static int db_load_hosts(struct hv *hv, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc = 0;
	if (sqlite3_prepare_v2(hv->db, "SELECT name, uri FROM hosts ORDER BY rowid", -1, &st,
			       NULL) != SQLITE_OK)
		return db_fail(hv, "reading hosts", err, errlen);
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *uri = (const char *)sqlite3_column_text(st, 1);
		struct hv_sim_uri spec;
		char why[200];
		if (!sim_valid_name(name) || hv_sim_parse_uri(uri, &spec, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "sim.db: host \"%s\": bad record", name ? name : "");
			rc = -EPROTO;
		} else {
			rc = world_add_host(hv, name, uri, &spec, NULL);
		}
	}
	sqlite3_finalize(st);
	return rc;
}

static int db_load_guests(struct hv *hv, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc = 0;
	if (sqlite3_prepare_v2(hv->db,
			       "SELECT name, host, memory_bytes, dirty_rate_bps, paused FROM guests"
			       " ORDER BY rowid",
			       -1, &st, NULL) != SQLITE_OK)
		return db_fail(hv, "reading guests", err, errlen);
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *host_name = (const char *)sqlite3_column_text(st, 1);
		sqlite3_int64 memory = sqlite3_column_int64(st, 2);
		sqlite3_int64 dirty = sqlite3_column_int64(st, 3);
		struct sim_host *host = host_name ? sim_host_find(hv, host_name) : NULL;
		if (!sim_valid_name(name) || (host_name && !host) || memory <= 0 || dirty < 0 ||
		    sim_guest_find(hv, name)) {
			snprintf(err, errlen, "sim.db: guest \"%s\": bad record", name ? name : "");
			rc = -EPROTO;
		} else {
			rc = sim_world_add_guest(hv, host, name, (uint64_t)memory, (uint64_t)dirty);
			if (rc == 0)
				hv->all[hv->n_all - 1]->paused = host && sqlite3_column_int(st, 4);
		}
	}
	sqlite3_finalize(st);
	return rc;
}

static int db_open(struct hv *hv, const char *state_dir, char *err, size_t errlen)
{
	char path[4096];
	int rc = mkdir_p(state_dir, 0700);
	if (rc < 0) {
		snprintf(err, errlen, "sim state_dir \"%s\": %s", state_dir, strerror(-rc));
		return rc;
	}
	if (snprintf_checked(path, sizeof(path), "%s/%s", state_dir, SIM_DB_NAME) < 0) {
		snprintf(err, errlen, "sim state_dir \"%s\": path too long", state_dir);
		return -ENAMETOOLONG;
	}
	if (sqlite3_open_v2(path, &hv->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
					      SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, hv->db ? sqlite3_errmsg(hv->db) : "out of memory");
		return -EIO;
	}
	sqlite3_busy_timeout(hv->db, 5000);
	if ((rc = db_exec(hv, "PRAGMA journal_mode=WAL", err, errlen)) < 0 ||
	    (rc = db_exec(hv, "PRAGMA synchronous=NORMAL", err, errlen)) < 0 ||
	    (rc = db_exec(hv, "PRAGMA foreign_keys=ON", err, errlen)) < 0 ||
	    (rc = db_schema(hv, err, errlen)) < 0 || (rc = db_prepare(hv, err, errlen)) < 0)
		return rc;
	/* ids of this run must not repeat those of an earlier one that migd
	 * may still hold in its own records */
	uint64_t generation = (uint64_t)db_meta(hv, "generation") + 1;
	char sql[96];
	snprintf(sql, sizeof(sql),
		 "INSERT OR REPLACE INTO meta(key, value) VALUES ('generation', %llu)",
		 (unsigned long long)generation);
	if ((rc = db_exec(hv, sql, err, errlen)) < 0)
		return rc;
	hv->next_mig_id = (generation << 32) | 1;
	int64_t clock_ns = db_meta(hv, "clock_ns");
	if (clock_ns > 0) {
		int64_t wall_since_ns = hv->epoch_ns - db_meta(hv, "clock_wall_ns");
		double scale = (double)db_meta(hv, "clock_scale_e6") / 1e6;
		hv->epoch_ns = clock_ns;
		if (wall_since_ns > 0 && scale > 0)
			hv->epoch_ns += (int64_t)((double)wall_since_ns * scale);
	}
	if ((rc = db_load_hosts(hv, err, errlen)) < 0)
		return rc;
	return db_load_guests(hv, err, errlen);
}

/* ---- the world in memory ---- */

static int world_add_host(struct hv *hv, const char *name, const char *uri,
			  const struct hv_sim_uri *spec, struct sim_host **out)
{
	struct sim_host *host = calloc(1, sizeof(*host));
	if (!host || !(host->uri = strdup(uri))) {
		free(host);
		return -ENOMEM;
	}
	snprintf(host->name, sizeof(host->name), "%s", name);
	host->spec = *spec;
	int rc = htab_insert(&hv->hosts, &host->node, hash_str(host->name));
	if (rc < 0) {
		host_free(host);
		return rc;
	}
	if (out)
		*out = host;
	return 0;
}

int sim_world_add_guest(struct hv *hv, struct sim_host *host, const char *name,
			uint64_t memory_bytes, uint64_t dirty_rate_bps)
{
	struct sim_guest **all = sim_grow_array(hv->all, &hv->cap_all, hv->n_all + 1, sizeof(*all));
	if (!all)
		return -ENOMEM;
	hv->all = all;
	struct sim_guest *g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	snprintf(g->name, sizeof(g->name), "%s", name);
	g->memory_bytes = memory_bytes;
	g->dirty_rate_bps = dirty_rate_bps;
	int rc = htab_insert(&hv->guests, &g->node, hash_str(g->name));
	if (rc < 0) {
		free(g);
		return rc;
	}
	if (host)
		sim_host_link_guest(host, g);
	hv->all[hv->n_all++] = g;
	return 0;
}

void sim_world_drop_last_guest(struct hv *hv)
{
	struct sim_guest *g = hv->all[--hv->n_all];
	if (g->host)
		sim_host_unlink_guest(g->host, g);
	htab_remove(&hv->guests, &g->node);
	free(g);
}

/* ---- the virtual clock ---- */

int64_t sim_virtual_now_ns(const struct hv *hv)
{
	if (hv->manual_clock)
		return hv->manual_ns;
	double real_ns = (double)(now_ns() - hv->mono_open_ns);
	return hv->epoch_ns + (int64_t)(real_ns * hv->time_scale);
}

static double sim_time_s(const struct hv *hv, int64_t virtual_ns)
{
	return (double)(virtual_ns - hv->epoch_ns) / 1e9;
}

/* ---- running the simulation ---- */

/* Room for one more migration on host's link; 0 or -ENOMEM. */
static int flow_reserve(struct sim_host *host)
{
	if (host->n_flows < host->cap_flows)
		return 0;
	size_t n = grown_cap(host->cap_flows, host->n_flows + 1);
	struct sim_mig **flows = realloc(host->flows, n * sizeof(*flows));
	if (flows)
		host->flows = flows;
	double *demand = realloc(host->demand_bps, n * sizeof(*demand));
	if (demand)
		host->demand_bps = demand;
	double *share = realloc(host->share_bps, n * sizeof(*share));
	if (share)
		host->share_bps = share;
	if (!flows || !demand || !share)
		return -ENOMEM;
	host->cap_flows = n;
	return 0;
}

/* After flow_reserve(): cannot fail. */
static size_t flow_add(struct sim_host *host, struct sim_mig *m)
{
	host->flows[host->n_flows] = m;
	return host->n_flows++;
}

static void flow_remove(struct sim_host *host, size_t slot)
{
	struct sim_mig *moved = host->flows[--host->n_flows];
	host->flows[slot] = moved;
	if (moved->src == host)
		moved->src_slot = slot;
	if (moved->dst == host)
		moved->dst_slot = slot;
}

/* This migration's max-min share of host's link. The epoch makes a host
 * shared by several migrations compute its shares once per reshare(). */
static double link_rate(struct hv *hv, struct sim_host *host, size_t slot)
{
	if (host->share_epoch != hv->share_epoch) {
		for (size_t i = 0; i < host->n_flows; i++)
			host->demand_bps[i] = precopy_link_demand_bps(host->flows[i]->model);
		if (link_share(host->spec.link_bps, host->demand_bps, host->n_flows,
			       host->share_bps) < 0)
			memset(host->share_bps, 0, host->n_flows * sizeof(double));
		host->share_epoch = hv->share_epoch;
	}
	return host->share_bps[slot];
}

static void reshare(struct hv *hv)
{
	hv->share_epoch++; /* hosts start at 0, so the first reshare computes them */
	for (size_t i = 0; i < hv->n_active; i++) {
		struct sim_mig *m = hv->active[i];
		m->rate_bps = fmin(link_rate(hv, m->src, m->src_slot),
				   link_rate(hv, m->dst, m->dst_slot));
	}
}

/* The guest now runs on the destination: recorded first, then done. */
static void switch_over(struct hv *hv, struct sim_mig *m)
{
	struct sim_guest *g = m->guest;
	char err[200];
	m->switched = true;
	if (sim_db_record_place(hv, g, m->dst, g->paused, err, sizeof(err)) < 0) {
		/* the world on disk must not disagree with the one in memory:
		 * keep the guest on the source and fail the migration */
		log_warnx("sim: guest %s: %s; the migration fails", g->name, err);
		m->record_failed = true;
		m->switched = false;
		return;
	}
	sim_host_unlink_guest(m->src, g);
	sim_host_link_guest(m->dst, g);
	m->dst->mem_inbound_bytes -= g->memory_bytes;
	log_debug("sim: guest %s switched over from %s to %s", g->name, m->src_name, m->dst_name);
}

static void finish(struct hv *hv, struct sim_mig *m)
{
	struct precopy_result r;
	precopy_result(m->model, &r);
	progress_of_result(&r, m->guest->memory_bytes, m->guest->dirty_rate_bps, &m->final);
	if (m->record_failed) {
		m->final.state = HV_MIG_FAILED;
		snprintf(m->final.error, sizeof(m->final.error),
			 "the switch-over could not be recorded in sim.db");
	}
	if (!m->switched)
		m->dst->mem_inbound_bytes -= m->guest->memory_bytes;
	flow_remove(m->src, m->src_slot);
	flow_remove(m->dst, m->dst_slot);
	struct sim_mig *moved = hv->active[--hv->n_active];
	hv->active[m->active_index] = moved;
	moved->active_index = m->active_index;
	m->guest->mig = NULL;
	m->src = m->dst = NULL;
	m->finished = true;
	precopy_free(m->model);
	m->model = NULL;
}

/* After time passed: record switch-overs, retire finished migrations and
 * share the links anew among those left. */
static void settle(struct hv *hv)
{
	for (size_t i = 0; i < hv->n_active;) {
		struct sim_mig *m = hv->active[i];
		struct precopy_status st;
		precopy_status(m->model, &st);
		if (!m->switched && !m->record_failed &&
		    (st.phase == PRECOPY_POSTCOPY || st.phase == PRECOPY_DONE)) {
			switch_over(hv, m);
			if (m->record_failed && !precopy_finished(m->model))
				precopy_abort(m->model); /* post-copy: back to the source */
		}
		if (precopy_finished(m->model)) {
			finish(hv, m); /* moves the last one into slot i */
			continue;
		}
		i++;
	}
	reshare(hv);
	sim_ckpt_settle(hv);
}

static void advance_all(struct hv *hv, double dt_s)
{
	for (size_t i = 0; i < hv->n_active; i++)
		precopy_advance(hv->active[i]->model, dt_s, hv->active[i]->rate_bps);
	sim_ckpt_advance(hv, dt_s);
}

/*
 * Run the simulation to target_s: every event up to it, exactly. With
 * commit, also the stretch from the last event to target_s (a migration
 * starts or is aborted there); without, that stretch is left for
 * interpolation, so polling never changes the outcome.
 */
static void sim_run(struct hv *hv, double target_s, bool commit)
{
	for (;;) {
		double dt_s = sim_ckpt_next_event_s(hv);
		for (size_t i = 0; i < hv->n_active; i++) {
			struct sim_mig *m = hv->active[i];
			dt_s = fmin(dt_s, precopy_next_event_s(m->model, m->rate_bps));
		}
		if (!(hv->sim_s + dt_s <= target_s))
			break;
		advance_all(hv, dt_s);
		hv->sim_s += dt_s;
		settle(hv);
	}
	if (!(target_s > hv->sim_s))
		return;
	if (hv->n_active == 0 && isinf(sim_ckpt_next_event_s(hv))) {
		hv->sim_s = target_s; /* nothing runs: nothing to commit */
	} else if (commit) {
		advance_all(hv, target_s - hv->sim_s);
		hv->sim_s = target_s;
		settle(hv);
	}
}

double sim_catch_up(struct hv *hv, bool commit)
{
	double now_s = sim_time_s(hv, sim_virtual_now_ns(hv));
	sim_run(hv, now_s, commit);
	return now_s;
}

/* A running migration's progress since_s after the last event, by
 * interpolation: the rates hold until the next event. */
static void progress_running(const struct sim_mig *m, double since_s, struct hv_progress *out)
{
	struct precopy_status st;
	precopy_status(m->model, &st);
	double rate = m->cap_bps > 0 ? fmin(m->rate_bps, m->cap_bps) : m->rate_bps;
	if (!(since_s > 0))
		since_s = 0;
	double sent = 0;
	if (st.phase == PRECOPY_ROUND || st.phase == PRECOPY_STOP_COPY ||
	    st.phase == PRECOPY_POSTCOPY)
		sent = fmin(rate * since_s, st.round_left_bytes);
	*out = (struct hv_progress){
		.state = HV_MIG_ACTIVE,
		.transferred_bytes = (uint64_t)llround(st.bytes_sent + sent),
		.remaining_bytes = (uint64_t)llround(st.round_left_bytes - sent),
		.total_bytes = m->guest->memory_bytes,
		.rounds = st.round + 1,
		.total_time_ms = sim_ms_of(st.elapsed_s + since_s), /* so far */
	};
}

/* ---- hv_ops ---- */

static void sim_close(struct hv *hv);

static int sim_open(const struct hv_env *env, struct hv **out, char *err, size_t errlen)
{
	struct hv_env defaults = { 0 };
	if (!env)
		env = &defaults;
	double scale = env->time_scale == 0 ? 1.0 : env->time_scale;
	if (!isfinite(scale) || !(scale > 0)) {
		snprintf(err, errlen, "sim time scale %g: expected a number above zero", scale);
		return -EINVAL;
	}
	struct hv *hv = calloc(1, sizeof(*hv));
	if (!hv)
		return -ENOMEM;
	pthread_mutex_init(&hv->lock, NULL);
	hv->time_scale = scale;
	hv->seed = env->seed;
	hv->epoch_ns = wall_ns();
	hv->mono_open_ns = now_ns();
	hv->next_mig_id = 1;
	hv->store_bps = env->store_bps ? (double)env->store_bps : HV_SIM_DEFAULT_STORE_BPS;
	int rc = env->state_dir ? db_open(hv, env->state_dir, err, errlen) : 0;
	if (rc < 0) {
		sim_close(hv);
		return rc;
	}
	/* the clock starts now, from the epoch db_open may have moved on */
	hv->mono_open_ns = now_ns();
	*out = hv;
	return 0;
}

static void sim_close(struct hv *hv)
{
	if (!hv)
		return;
	if (hv->db && hv->st_clock) {
		char err[200];
		if (db_put_clock(hv, err, sizeof(err)) < 0)
			log_warnx("sim: %s", err);
	}
	sim_ckpt_close(hv);
	sqlite3_stmt *stmts[] = { hv->st_host_add, hv->st_host_rm, hv->st_guest_add,
				  hv->st_guest_place, hv->st_clock };
	for (size_t i = 0; i < ARRAY_SIZE(stmts); i++)
		sqlite3_finalize(stmts[i]);
	sqlite3_close(hv->db);
	for (size_t i = 0; i < hv->migs.n_buckets; i++) {
		struct hnode *n = hv->migs.buckets[i], *next;
		for (; n; n = next) {
			next = n->next;
			struct sim_mig *m = container_of(n, struct sim_mig, node);
			precopy_free(m->model);
			free(m);
		}
	}
	for (size_t i = 0; i < hv->n_all; i++)
		free(hv->all[i]);
	for (size_t i = 0; i < hv->hosts.n_buckets; i++) {
		struct hnode *n = hv->hosts.buckets[i], *next;
		for (; n; n = next) {
			next = n->next;
			host_free(container_of(n, struct sim_host, node));
		}
	}
	htab_release(&hv->hosts);
	htab_release(&hv->guests);
	htab_release(&hv->migs);
	free(hv->all);
	free(hv->active);
	pthread_mutex_destroy(&hv->lock);
	free(hv);
}

static int sim_host_add_locked(struct hv *hv, const char *name, const char *uri, char *err,
			       size_t errlen)
{
	struct hv_sim_uri spec;
	if (!sim_valid_name(name)) {
		snprintf(err, errlen, "host \"%s\": expected a name of 1 to %d printable bytes",
			 name ? name : "", HV_SIM_NAME_MAX - 1);
		return -EINVAL;
	}
	int rc = hv_sim_parse_uri(uri, &spec, err, errlen);
	if (rc < 0)
		return rc;
	struct sim_host *host = sim_host_find(hv, name);
	if (host) {
		/* migd adds its hosts again after a restart: same URI is fine */
		if (strcmp(host->uri, uri) == 0)
			return 0;
		snprintf(err, errlen, "host %s: already in the sim as %s", name, host->uri);
		return -EEXIST;
	}
	if ((rc = world_add_host(hv, name, uri, &spec, &host)) < 0) {
		snprintf(err, errlen, "host %s: out of memory", name);
		return rc;
	}
	if ((rc = db_record_host(hv, host, err, errlen)) < 0) {
		htab_remove(&hv->hosts, &host->node);
		host_free(host);
	}
	return rc;
}

static int sim_host_add(struct hv *hv, const char *name, const char *uri, char *err,
			size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = sim_host_add_locked(hv, name, uri, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

static int sim_host_remove_locked(struct hv *hv, const char *name, char *err, size_t errlen)
{
	struct sim_host *host = name ? sim_host_find(hv, name) : NULL;
	if (!host) {
		snprintf(err, errlen, "host %s: no such host in the sim", name ? name : "(null)");
		return -ENOENT;
	}
	sim_catch_up(hv, false);
	if (host->n_guests > 0 || host->n_flows > 0) {
		snprintf(err, errlen, "host %s: still has %zu guests and %zu migrations", name,
			 host->n_guests, host->n_flows);
		return -EBUSY;
	}
	int rc = db_forget_host(hv, name, err, errlen);
	if (rc < 0)
		return rc;
	htab_remove(&hv->hosts, &host->node);
	host_free(host);
	return 0;
}

static int sim_host_remove(struct hv *hv, const char *name, char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = sim_host_remove_locked(hv, name, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

static int sim_guest_create_locked(struct hv *hv, const char *host_name,
				   const struct hv_guest_spec *spec, char *err, size_t errlen)
{
	char have[32], want[32];
	if (!spec || !sim_valid_name(spec->name)) {
		snprintf(err, errlen, "guest \"%s\": expected a name of 1 to %d printable bytes",
			 spec && spec->name ? spec->name : "", HV_SIM_NAME_MAX - 1);
		return -EINVAL;
	}
	if (spec->memory_bytes == 0) {
		snprintf(err, errlen, "guest %s: memory must be above zero", spec->name);
		return -EINVAL;
	}
	struct sim_host *host = host_name ? sim_host_find(hv, host_name) : NULL;
	if (!host) {
		snprintf(err, errlen, "guest %s: host %s: no such host in the sim", spec->name,
			 host_name ? host_name : "(null)");
		return -ENOENT;
	}
	struct sim_guest *g = sim_guest_find(hv, spec->name);
	if (g) {
		snprintf(err, errlen, "guest %s: already exists (%s%s)", spec->name,
			 g->host ? "on host " : "destroyed, known: load it", g->host ? g->host->name : "");
		return -EEXIST;
	}
	sim_catch_up(hv, false); /* free memory depends on finished migrations */
	if (!sim_host_has_room(host, spec->memory_bytes)) {
		snprintf(err, errlen, "guest %s: host %s has %s of memory, not enough free for %s",
			 spec->name, host->name, format_size(host->spec.mem_bytes, have, sizeof(have)),
			 format_size(spec->memory_bytes, want, sizeof(want)));
		return -ENOSPC;
	}
	int rc = sim_world_add_guest(hv, host, spec->name, spec->memory_bytes, spec->dirty_rate_bps);
	if (rc < 0) {
		snprintf(err, errlen, "guest %s: out of memory", spec->name);
		return rc;
	}
	g = hv->all[hv->n_all - 1];
	if ((rc = sim_db_record_guest(hv, g, host, err, errlen)) < 0)
		sim_world_drop_last_guest(hv);
	return rc;
}

/* See hv.h: a failed begin leaves every write its own transaction; a failed
 * commit loses the batch's rows in sim.db (not in memory): at migd's next
 * start the guests missing there are created again. */
static void sim_batch(struct hv *hv, int begin)
{
	char err[256];
	pthread_mutex_lock(&hv->lock);
	if (hv->db && begin && !hv->batching) {
		hv->batching = db_exec(hv, "BEGIN IMMEDIATE", err, sizeof(err)) == 0;
	} else if (hv->db && !begin && hv->batching) {
		hv->batching = false;
		if (db_put_clock(hv, err, sizeof(err)) < 0 ||
		    db_exec(hv, "COMMIT", err, sizeof(err)) < 0) {
			sqlite3_exec(hv->db, "ROLLBACK", NULL, NULL, NULL);
			log_warnx("sim: a batch of writes was not stored: %s", err);
		}
	}
	pthread_mutex_unlock(&hv->lock);
}

static int sim_guest_create(struct hv *hv, const char *host, const struct hv_guest_spec *spec,
			    char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = sim_guest_create_locked(hv, host, spec, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

static void guest_info_of(const struct sim_guest *g, struct hv_guest_info *out)
{
	*out = (struct hv_guest_info){ .memory_bytes = g->memory_bytes,
				       .dirty_rate_bps = g->dirty_rate_bps,
				       .running = !g->paused };
	snprintf(out->name, sizeof(out->name), "%s", g->name);
	snprintf(out->host, sizeof(out->host), "%s", g->host->name);
	if (g->mig) {
		/* stopped for the stop-and-copy and the switch-over */
		struct precopy_status st;
		precopy_status(g->mig->model, &st);
		out->running &= st.phase != PRECOPY_STOP_COPY && st.phase != PRECOPY_SWITCHOVER;
	}
}

static int sim_guest_info(struct hv *hv, const char *guest, struct hv_guest_info *out,
			  char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	sim_catch_up(hv, false);
	struct sim_guest *g = guest ? sim_guest_find(hv, guest) : NULL;
	if (g && g->host)
		guest_info_of(g, out);
	else if (g)
		snprintf(err, errlen, "guest %s: destroyed, runs on no host", g->name);
	else
		snprintf(err, errlen, "guest %s: not in the sim", guest ? guest : "(null)");
	pthread_mutex_unlock(&hv->lock);
	return g && g->host ? 0 : -ENOENT;
}

/* host NULL: every guest of the sim, in creation order. */
static int sim_list_guests(struct hv *hv, const char *host_name, struct hv_guest_info **out,
			   size_t *n, char *err, size_t errlen)
{
	int rc = 0;
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&hv->lock);
	sim_catch_up(hv, false);
	struct sim_host *host = host_name ? sim_host_find(hv, host_name) : NULL;
	size_t count = host ? host->n_guests : hv->n_all;
	if (host_name && !host) {
		snprintf(err, errlen, "host %s: no such host in the sim", host_name);
		rc = -ENOENT;
	} else if (count > 0 && !(*out = calloc(count, sizeof(**out)))) {
		snprintf(err, errlen, "listing %zu guests: out of memory", count);
		rc = -ENOMEM;
	} else if (host) {
		for (struct sim_guest *g = host->first; g; g = g->next)
			guest_info_of(g, &(*out)[(*n)++]);
	} else {
		for (size_t i = 0; i < count; i++)
			if (hv->all[i]->host) /* destroyed ones run nowhere */
				guest_info_of(hv->all[i], &(*out)[(*n)++]);
	}
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

/* Is this migration possible now? 0, or an errno with the reason in err. */
static int check_migration(const struct sim_guest *g, const char *guest,
			   struct sim_host *src, const char *src_name, struct sim_host *dst,
			   const char *dst_name, char *err, size_t errlen)
{
	char have[32], want[32];
	if (!g) {
		snprintf(err, errlen, "guest %s: not in the sim", guest ? guest : "(null)");
		return -ENOENT;
	}
	if (!g->host) {
		snprintf(err, errlen, "guest %s: destroyed, runs on no host", g->name);
		return -ENOENT;
	}
	if (!src || !dst) {
		snprintf(err, errlen, "guest %s: host %s: no such host in the sim", g->name,
			 !src ? (src_name ? src_name : "(null)") : (dst_name ? dst_name : "(null)"));
		return -ENOENT;
	}
	if (g->host != src) {
		snprintf(err, errlen, "guest %s: runs on %s, not on %s", g->name, g->host->name,
			 src->name);
		return -EINVAL;
	}
	if (src == dst) {
		snprintf(err, errlen, "guest %s: already on %s", g->name, dst->name);
		return -EINVAL;
	}
	if (g->mig) {
		snprintf(err, errlen, "guest %s: already migrating (to %s)", g->name,
			 g->mig->dst_name);
		return -EBUSY;
	}
	if (g->xfer) {
		snprintf(err, errlen, "guest %s: a checkpoint save or load of it is running",
			 g->name);
		return -EBUSY;
	}
	if (!sim_host_has_room(dst, g->memory_bytes)) {
		snprintf(err, errlen, "guest %s: host %s has %s of memory, not enough free for %s",
			 g->name, dst->name, format_size(dst->spec.mem_bytes, have, sizeof(have)),
			 format_size(g->memory_bytes, want, sizeof(want)));
		return -ENOSPC;
	}
	return 0;
}

static int sim_migrate_start_locked(struct hv *hv, const char *guest, const char *src_name,
				    const char *dst_name, const struct hv_migrate_params *params,
				    uint64_t *id, char *err, size_t errlen)
{
	struct precopy_params pp;
	/* everything up to this instant happened before this migration */
	sim_catch_up(hv, true);
	struct sim_guest *g = guest ? sim_guest_find(hv, guest) : NULL;
	struct sim_host *src = src_name ? sim_host_find(hv, src_name) : NULL;
	struct sim_host *dst = dst_name ? sim_host_find(hv, dst_name) : NULL;
	int rc = check_migration(g, guest, src, src_name, dst, dst_name, err, errlen);
	if (rc < 0)
		return rc;
	/* take every resource first, so that nothing is half done on failure */
	struct sim_mig *m = calloc(1, sizeof(*m));
	/* a paused guest dirties nothing */
	model_params(g->memory_bytes, g->paused ? 0 : g->dirty_rate_bps, params, &pp);
	struct sim_mig **active = sim_grow_array(hv->active, &hv->cap_active, hv->n_active + 1,
					     sizeof(*active));
	if (active)
		hv->active = active;
	rc = m ? precopy_new(&pp, &m->model) : -ENOMEM;
	if (rc == 0 && (!active || flow_reserve(src) < 0 || flow_reserve(dst) < 0))
		rc = -ENOMEM;
	if (rc == 0) {
		m->id = hv->next_mig_id;
		rc = htab_insert(&hv->migs, &m->node, hash_u64(m->id));
	}
	if (rc < 0) {
		snprintf(err, errlen, "guest %s: %s", g->name,
			 rc == -EINVAL ? "migration parameters out of range" : "out of memory");
		if (m)
			precopy_free(m->model);
		free(m);
		return rc;
	}
	hv->next_mig_id++;
	m->guest = g;
	m->src = src;
	m->dst = dst;
	m->src_slot = flow_add(src, m);
	m->dst_slot = flow_add(dst, m);
	snprintf(m->src_name, sizeof(m->src_name), "%s", src->name);
	snprintf(m->dst_name, sizeof(m->dst_name), "%s", dst->name);
	m->cap_bps = pp.bandwidth_cap_bps;
	m->active_index = hv->n_active;
	hv->active[hv->n_active++] = m;
	g->mig = m;
	dst->mem_inbound_bytes += g->memory_bytes;
	reshare(hv);
	*id = m->id;
	log_debug("sim: migration %llu: guest %s from %s to %s", (unsigned long long)m->id,
		  g->name, src->name, dst->name);
	return 0;
}

static int sim_migrate_start(struct hv *hv, const char *guest, const char *src, const char *dst,
			     const struct hv_migrate_params *params, uint64_t *id, char *err,
			     size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = sim_migrate_start_locked(hv, guest, src, dst, params, id, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

static int sim_migrate_poll(struct hv *hv, uint64_t id, struct hv_progress *out, char *err,
			    size_t errlen)
{
	int rc = 0;
	pthread_mutex_lock(&hv->lock);
	double now_s = sim_catch_up(hv, false);
	struct sim_mig *m = mig_find(hv, id);
	if (!m && (rc = sim_ckpt_poll(hv, id, now_s, out)) == -ENOENT) {
		snprintf(err, errlen, "migration %llu: not known to the sim", (unsigned long long)id);
	} else if (!m) {
		/* a save or load: sim_ckpt_poll filled out */
	} else if (m->finished) {
		*out = m->final;
	} else {
		progress_running(m, now_s - hv->sim_s, out);
	}
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

static int sim_migrate_abort_locked(struct hv *hv, uint64_t id, char *err, size_t errlen)
{
	sim_catch_up(hv, true); /* the abort happens at this instant */
	struct sim_mig *m = mig_find(hv, id);
	if (!m)
		return sim_ckpt_abort(hv, id, err, errlen);
	if (m->finished) {
		snprintf(err, errlen, "migration %llu of guest %s: already finished",
			 (unsigned long long)id, m->guest->name);
		return -EALREADY;
	}
	if (m->switched) {
		/* post-copy: the source no longer has the guest to go back to */
		snprintf(err, errlen,
			 "migration %llu of guest %s: past the switch-over to %s, cannot abort",
			 (unsigned long long)id, m->guest->name, m->dst_name);
		return -EBUSY;
	}
	precopy_abort(m->model);
	settle(hv);
	return 0;
}

static int sim_migrate_abort(struct hv *hv, uint64_t id, char *err, size_t errlen)
{
	pthread_mutex_lock(&hv->lock);
	int rc = sim_migrate_abort_locked(hv, id, err, errlen);
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

static void sim_migrate_forget(struct hv *hv, uint64_t id)
{
	pthread_mutex_lock(&hv->lock);
	struct sim_mig *m = mig_find(hv, id);
	/* a running migration is not forgotten: its guest is still in it */
	if (m && m->finished) {
		htab_remove(&hv->migs, &m->node);
		free(m);
	} else if (!m) {
		sim_ckpt_forget(hv, id);
	}
	pthread_mutex_unlock(&hv->lock);
}

static int64_t sim_now_ns(struct hv *hv)
{
	pthread_mutex_lock(&hv->lock);
	int64_t now = sim_virtual_now_ns(hv);
	pthread_mutex_unlock(&hv->lock);
	return now;
}

int hv_sim_clock_set(struct hv *hv, int64_t now_ns_virtual)
{
	int rc = 0;
	pthread_mutex_lock(&hv->lock);
	if (now_ns_virtual < sim_virtual_now_ns(hv)) {
		rc = -EINVAL;
	} else {
		hv->manual_clock = true;
		hv->manual_ns = now_ns_virtual;
	}
	pthread_mutex_unlock(&hv->lock);
	return rc;
}

const struct hv_ops hv_sim_ops = {
	.scheme = "sim",
	.open = sim_open,
	.close = sim_close,
	.host_add = sim_host_add,
	.host_remove = sim_host_remove,
	.guest_create = sim_guest_create,
	.guest_info = sim_guest_info,
	.list_guests = sim_list_guests,
	.migrate_start = sim_migrate_start,
	.migrate_poll = sim_migrate_poll,
	.migrate_abort = sim_migrate_abort,
	.migrate_forget = sim_migrate_forget,
	.now_ns = sim_now_ns,
	.batch = sim_batch,
	.guest_pause = sim_guest_pause,
	.guest_resume = sim_guest_resume,
	.save_start = sim_save_start,
	.load_start = sim_load_start,
	.guest_destroy = sim_guest_destroy,
	.guest_config = sim_guest_config,
	.guest_define = sim_guest_define,
};
