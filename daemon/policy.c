/*
 * policy: see policy.h. Policies are few, so they live in a plain array
 * loaded at start and written through to the database on every change; the
 * guests they select are looked up only when one fires.
 */
#include "policy.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "checkpoint.h" /* with policies/policy.h: the policy types */
#include "ckpt.h"
#include "cron.h"
#include "interval.h"
#include "mtbf.h"
#include "log.h"
#include "selector.h"
#include "migd_proto.h"
#include "scheduler.h"
#include "util.h"

#define MAX_KV 16

struct loaded {
	struct db_policy row;          /* row.params: the canonical parameters */
	json_t *knobs;                 /* the knobs it sets (canonical), over migd.conf's */
	const struct policy_type *type;
	void *params;                  /* the type's parsed parameters */
	struct policy_state st;
	uint64_t retry_after_ms;       /* real time; after a firing the database refused */
	uint64_t cost_checked_ms;      /* mtbf: when the cost history was last read */
	unsigned cost_samples;         /* mtbf: migrations the measured cost is from */
	int mtbf_borrowed;             /* checkpoint: M is an MTBF policy's, not its own */
};

struct policy_engine {
	struct db *db;
	struct executor *ex;
	struct ckpt *ck;               /* checkpoint policies; NULL: none fire */
	struct loaded *p;
	size_t n, cap;
};

/* ---- state <-> row ------------------------------------------------------ */

static int64_t to_ns(double s)
{
	return isfinite(s) ? (int64_t)llround(s * 1e9) : 0;
}

static void state_from_row(const struct db_policy *row, struct policy_state *st)
{
	memset(st, 0, sizeof(*st));
	st->paused = row->paused;
	st->has_fired = row->last_fire_ns != 0;
	st->anchor_s = (double)row->anchor_ns / 1e9;
	st->next_fire_s = (double)row->next_fire_ns / 1e9;
	st->last_fire_s = (double)row->last_fire_ns / 1e9;
	st->cursor = row->cursor;
	st->cost_s = (double)row->cost_ns / 1e9;
}

static void state_to_row(const struct policy_state *st, struct db_policy *row)
{
	row->paused = st->paused;
	row->anchor_ns = to_ns(st->anchor_s);
	row->next_fire_ns = st->paused ? 0 : to_ns(st->next_fire_s);
	row->last_fire_ns = st->has_fired ? to_ns(st->last_fire_s) : 0;
	row->cursor = st->cursor;
	row->cost_ns = to_ns(st->cost_s);
}

/* ---- the shared knobs ---------------------------------------------------- */

static const char *const knob_keys[] = {
	"quiesce", "quiesce_deadline", "quiesce_deadline_s", "on_quiesce_miss", "io_lull",
	"io_lull_bps", "io_lull_wait", "io_lull_wait_s",
};

int policy_knob_key(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(knob_keys); i++)
		if (strcmp(key, knob_keys[i]) == 0)
			return 1;
	return 0;
}

/* A number of seconds, or text "250ms", "2s", "1m"; into ms. */
static int knob_duration_ms(const char *key, json_t *v, double max_s, unsigned *out, char *err,
			    size_t errlen)
{
	static const struct {
		const char *unit;
		double s;
	} units[] = { { "", 1 }, { "s", 1 }, { "ms", 1e-3 }, { "m", 60 }, { "min", 60 },
		      { "h", 3600 } };
	double s = -1;
	if (json_is_number(v)) {
		s = json_number_value(v);
	} else if (json_is_string(v)) {
		const char *text = json_string_value(v);
		char *end;
		double n = (*text >= '0' && *text <= '9') || *text == '.' ? strtod(text, &end) : -1;
		for (size_t i = 0; n >= 0 && i < ARRAY_SIZE(units); i++)
			if (strcmp(end, units[i].unit) == 0)
				s = n * units[i].s;
	}
	if (!isfinite(s) || s < 0 || s > max_s) {
		char *text = json_dumps(v, JSON_ENCODE_ANY);
		snprintf(err, errlen, "argument \"%s\" = %.40s: expected a duration like 500ms, 2s "
			 "or 1m, at most %.0f s", key, text ? text : "?", max_s);
		free(text);
		return -EINVAL;
	}
	*out = (unsigned)llround(s * 1e3);
	return 0;
}

/* A number of bytes/s, or text "10m", "10m/s", "100mbit". */
static int knob_rate(const char *key, json_t *v, uint64_t *out, char *err, size_t errlen)
{
	int rc = -EINVAL;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		rc = 0;
	} else if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 1e18) {
		*out = (uint64_t)json_real_value(v);
		rc = 0;
	} else if (json_is_string(v)) {
		rc = parse_rate(json_string_value(v), out);
	}
	if (rc < 0) {
		char *text = json_dumps(v, JSON_ENCODE_ANY);
		snprintf(err, errlen, "argument \"%s\" = %.40s: expected bytes/s like 10485760, "
			 "10m or 100mbit", key, text ? text : "?");
		free(text);
	}
	return rc < 0 ? -EINVAL : 0;
}

/* A knob's value: the first of its spellings given. */
static json_t *knob_arg(json_t *args, const char *a, const char *b, const char **key)
{
	json_t *v = json_object_get(args, a);
	*key = a;
	if (!v && b && (v = json_object_get(args, b)))
		*key = b;
	return v;
}

int policy_knobs_parse(json_t *args, const struct db_mig_knobs *defaults,
		       struct db_mig_knobs *out, json_t *canonical, char *err, size_t errlen)
{
	struct db_mig_knobs k = *defaults;
	const char *key;
	json_t *v;
	int rc = 0;
	if ((v = knob_arg(args, "quiesce", NULL, &key)) &&
	    (!json_is_string(v) || db_quiesce_mode_parse(json_string_value(v), &k.quiesce) < 0)) {
		snprintf(err, errlen, "argument \"quiesce\" = \"%.40s\": expected required, "
			 "best-effort or off", json_is_string(v) ? json_string_value(v) : "?");
		return -EINVAL;
	}
	if (v && canonical)
		json_object_set_new(canonical, "quiesce", json_string(db_quiesce_mode_name(k.quiesce)));
	if ((v = knob_arg(args, "on_quiesce_miss", NULL, &key))) {
		const char *s = json_string_value(v);
		if (!s || (strcmp(s, "abort") != 0 && strcmp(s, "defer") != 0)) {
			snprintf(err, errlen, "argument \"on_quiesce_miss\" = \"%.40s\": expected "
				 "abort or defer", s ? s : "?");
			return -EINVAL;
		}
		k.miss_aborts = strcmp(s, "abort") == 0;
		if (canonical)
			json_object_set_new(canonical, "on_quiesce_miss", json_string(s));
	}
	if ((v = knob_arg(args, "quiesce_deadline", "quiesce_deadline_s", &key))) {
		if ((rc = knob_duration_ms(key, v, 3600, &k.quiesce_deadline_ms, err, errlen)) < 0)
			return rc;
		if (k.quiesce_deadline_ms == 0) {
			snprintf(err, errlen, "argument \"%s\": must be more than 0", key);
			return -EINVAL;
		}
		if (canonical)
			json_object_set_new(canonical, "quiesce_deadline_s",
					    json_real(k.quiesce_deadline_ms / 1e3));
	}
	if ((v = knob_arg(args, "io_lull_wait", "io_lull_wait_s", &key))) {
		if ((rc = knob_duration_ms(key, v, 86400, &k.io_lull_wait_ms, err, errlen)) < 0)
			return rc;
		if (canonical)
			json_object_set_new(canonical, "io_lull_wait_s",
					    json_real(k.io_lull_wait_ms / 1e3));
	}
	if ((v = knob_arg(args, "io_lull", "io_lull_bps", &key))) {
		if ((rc = knob_rate(key, v, &k.io_lull_bps, err, errlen)) < 0)
			return rc;
		if (canonical)
			json_object_set_new(canonical, "io_lull_bps",
					    json_integer((json_int_t)k.io_lull_bps));
	}
	*out = k;
	return 0;
}

/* ---- parameters --------------------------------------------------------- */

/* A JSON object's members as the key/value text the policy types parse;
 * text points into buf. Returns the count or -EINVAL naming the key. */
static int params_to_kv(json_t *obj, struct policy_kv *kv, char (*buf)[64], char *err,
			size_t errlen)
{
	const char *key;
	json_t *value;
	size_t n = 0;
	json_object_foreach(obj, key, value) {
		if (n == MAX_KV) {
			snprintf(err, errlen, "too many arguments (at most %d)", MAX_KV);
			return -EINVAL;
		}
		if (json_is_string(value))
			kv[n].value = json_string_value(value);
		else if (json_is_integer(value))
			snprintf(buf[n], 64, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
		else if (json_is_real(value))
			snprintf(buf[n], 64, "%.17g", json_real_value(value));
		else {
			snprintf(err, errlen, "argument \"%s\": expected a number or a string", key);
			return -EINVAL;
		}
		if (!json_is_string(value))
			kv[n].value = buf[n];
		kv[n++].key = key;
	}
	return (int)n;
}

static int parse_kv(const struct policy_type *type, const struct policy_kv *kv, size_t n,
		    void **params, char *err, size_t errlen);

/* Parse obj's parameters for type into a new block in *params (the knobs
 * are not the type's: left out). */
static int parse_params(const struct policy_type *type, json_t *obj, void **params, char *err,
			size_t errlen)
{
	struct policy_kv kv[MAX_KV];
	char buf[MAX_KV][64];
	json_t *own = json_deep_copy(obj); /* the type's keys only */
	for (size_t i = 0; i < ARRAY_SIZE(knob_keys); i++)
		json_object_del(own, knob_keys[i]);
	int n = params_to_kv(own, kv, buf, err, errlen);
	if (n < 0) {
		json_decref(own);
		return n;
	}
	int rc = parse_kv(type, kv, (size_t)n, params, err, errlen);
	json_decref(own);
	return rc;
}

static int parse_kv(const struct policy_type *type, const struct policy_kv *kv, size_t n,
		    void **params, char *err, size_t errlen)
{
	*params = calloc(1, type->params_size ? type->params_size : 1);
	if (!*params) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int rc = type->parse(kv, n, *params, err, errlen);
	if (rc < 0) {
		free(*params);
		*params = NULL;
	}
	return rc;
}

/* What is stored and shown: the type's parameters in their canonical
 * units (seconds), plus the selector. Unknown types keep what was given. */
static json_t *canonical_params(const struct policy_type *type, const void *params,
				json_t *given, const char *selector, json_t *knobs)
{
	json_t *o;
	if (type == &policy_interval_type) {
		const struct interval_params *p = params;
		o = json_pack("{s:s, s:f, s:f, s:I}", "guests", selector, "every_s", p->every_s,
			      "stagger_s", p->stagger_s, "count", (json_int_t)p->count);
	} else if (type == &policy_cron_type) {
		const struct cron_params *p = params;
		o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:f}", "guests", selector, "schedule",
			      p->schedule, "action", p->action, "tz", *p->tz ? p->tz : "UTC",
			      "missed", p->missed == CRON_MISSED_SKIP ? "skip" : "run-once",
			      "stagger_s", p->stagger_s, "spread", p->spread);
	} else if (type == &policy_mtbf_type) {
		const struct mtbf_params *p = params;
		o = json_pack("{s:s, s:f, s:f, s:f, s:I}", "guests", selector, "mtbf_s", p->mtbf_s,
			      "cost_s", p->cost_s, "stagger_s", p->stagger_s, "count",
			      (json_int_t)p->count);
	} else if (type == &policy_checkpoint_type) {
		const struct ckpt_params *p = params;
		o = json_pack("{s:s, s:s, s:I, s:s}", "job", p->job, "guests", "", "keep",
			      (json_int_t)p->keep, "on_failure",
			      p->on_failure == CKPT_RESTORE ? "restore" : "notify");
		json_object_set_new(o, "every", p->every_s > 0 ? json_real(p->every_s)
							      : json_string("auto"));
		if (p->mtbf_s > 0)
			json_object_set_new(o, "mtbf_s", json_real(p->mtbf_s));
	} else {
		o = json_deep_copy(given);
		json_object_del(o, "name");
		json_object_del(o, "type");
		for (size_t i = 0; i < ARRAY_SIZE(knob_keys); i++)
			json_object_del(o, knob_keys[i]);
		json_object_set_new(o, "guests", json_string(selector));
	}
	json_object_update(o, knobs);
	return o;
}

static const char *selector_of(const struct loaded *lp)
{
	const char *s = json_string_value(json_object_get(lp->row.params, "guests"));
	return s ? s : "";
}

/* The guests argument: see selector.h. */
static int guests_check(const char *sel, char *err, size_t errlen)
{
	return selector_check(sel, "argument \"guests\"", err, errlen);
}

/* ---- selection ---------------------------------------------------------- */

struct selection {
	char (*names)[DB_NAME_MAX];
	size_t n, cap;
};

static int select_add(void *arg, const struct db_guest *g)
{
	struct selection *s = arg;
	if (GROW(s->names, s->cap, s->n + 1) < 0)
		return -ENOMEM;
	memcpy(s->names[s->n++], g->name, DB_NAME_MAX);
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

struct matching {
	const char *sel;
	struct selection *out;
};

static int select_matching(void *arg, const struct db_guest *g)
{
	struct matching *m = arg;
	return selector_match(m->sel, g->name, g->host, g->job) ? select_add(m->out, g) : 0;
}

/* The guests sel names, sorted by name, each once. Names of hosts, jobs or
 * guests that do not exist (yet) select nothing. A plain name is looked up;
 * anything else is matched against every guest (once per firing). */
static int resolve(struct policy_engine *pe, const char *sel, struct selection *out)
{
	struct db_guest g;
	if (selector_is_name(sel))
		return db_guest_get(pe->db, sel, &g) == 0 ? select_add(out, &g) : 0;
	struct matching m = { sel, out };
	int rc = db_guest_list(pe->db, NULL, NULL, select_matching, &m);
	if (rc < 0 || out->n == 0)
		return rc;
	qsort(out->names, out->n, DB_NAME_MAX, name_cmp);
	return 0; /* one pass over distinct guests: each once already */
}

/* ---- the engine ----------------------------------------------------------- */

static struct loaded *find(struct policy_engine *pe, const char *name)
{
	for (size_t i = 0; i < pe->n; i++)
		if (strcmp(pe->p[i].row.name, name) == 0)
			return &pe->p[i];
	return NULL;
}

static void loaded_clear(struct loaded *lp)
{
	db_policy_clear(&lp->row);
	json_decref(lp->knobs);
	free(lp->params);
}

static int append(struct policy_engine *pe, const struct loaded *lp)
{
	if (GROW(pe->p, pe->cap, pe->n + 1) < 0)
		return -ENOMEM;
	pe->p[pe->n++] = *lp;
	return 0;
}

static int load_one(void *arg, const struct db_policy *row)
{
	struct policy_engine *pe = arg;
	struct loaded lp = { .row = *row };
	char err[256];
	lp.type = policy_type_find(row->type);
	if (!lp.type) {
		log_warnx("policy %s: unknown type \"%s\"; left alone", row->name, row->type);
		return 0;
	}
	json_t *params = json_deep_copy(row->params);
	json_object_del(params, "guests");
	int rc = parse_params(lp.type, params, &lp.params, err, sizeof(err));
	json_decref(params);
	if (rc < 0) {
		log_warnx("policy %s: stored parameters refused: %s; left alone", row->name, err);
		return 0;
	}
	struct db_mig_knobs ignored;
	lp.knobs = json_object();
	if (policy_knobs_parse(row->params, exec_knobs_default(pe->ex), &ignored, lp.knobs, err,
			       sizeof(err)) < 0) {
		log_warnx("policy %s: stored knobs refused: %s; left alone", row->name, err);
		json_decref(lp.knobs);
		free(lp.params);
		return 0;
	}
	lp.row.params = json_incref(row->params);
	state_from_row(&lp.row, &lp.st);
	if ((rc = append(pe, &lp)) < 0)
		loaded_clear(&lp);
	return rc;
}

static json_t *policy_event(const char *type, const struct loaded *lp, int64_t now);

/* Firings a policy missed while migd was down: the type's rule (cron:
 * run once now or skip) is applied, and the decision is an event. */
static void restore_missed(struct policy_engine *pe, struct loaded *lp)
{
	int64_t now = exec_now_ns(pe->ex);
	if (!lp->type->restore)
		return;
	struct policy_state st = lp->st;
	unsigned missed = lp->type->restore(lp->params, &st, (double)now / 1e9);
	if (missed == 0)
		return;
	const char *rule = json_string_value(json_object_get(lp->row.params, "missed"));
	struct loaded after = *lp;
	state_to_row(&st, &after.row);
	after.st = st;
	int rc = db_begin(pe->db);
	if (rc == 0)
		rc = db_policy_update(pe->db, &after.row);
	if (rc == 0) {
		json_t *ev = policy_event("policy.missed", &after, now);
		char reason[160];
		snprintf(reason, sizeof(reason), "%u firing%s missed while migd was down: %s", missed,
			 missed == 1 ? "" : "s", rule && strcmp(rule, "skip") == 0
				 ? "skipped" : "running once now");
		json_object_set_new(ev, "missed", json_integer(missed));
		json_object_set_new(ev, "reason", json_string(reason));
		rc = db_event(pe->db, ev);
		log_info("policy %s: %s", lp->row.name, reason);
	}
	if (db_end(pe->db, rc) == 0)
		*lp = after;
	else
		log_warnx("policy %s: missed firings not recorded", lp->row.name);
}

static void watch(struct policy_engine *pe, const struct loaded *lp, int on);

void policy_set_ckpt(struct policy_engine *pe, struct ckpt *ck)
{
	pe->ck = ck;
	for (size_t i = 0; i < pe->n; i++)
		watch(pe, &pe->p[i], 1);
}

int policy_engine_new(struct db *db, struct executor *ex, struct policy_engine **out,
		      char *err, size_t errlen)
{
	struct policy_engine *pe = calloc(1, sizeof(*pe));
	if (!pe) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pe->db = db;
	pe->ex = ex;
	int rc = db_policy_list(db, load_one, pe);
	if (rc < 0) {
		snprintf(err, errlen, "cannot load the policies from the database");
		policy_engine_free(pe);
		return rc;
	}
	for (size_t i = 0; i < pe->n; i++)
		restore_missed(pe, &pe->p[i]);
	log_info("%zu polic%s loaded", pe->n, pe->n == 1 ? "y" : "ies");
	*out = pe;
	return 0;
}

void policy_engine_free(struct policy_engine *pe)
{
	if (!pe)
		return;
	for (size_t i = 0; i < pe->n; i++)
		loaded_clear(&pe->p[i]);
	free(pe->p);
	free(pe);
}

unsigned policy_count(const struct policy_engine *pe)
{
	return (unsigned)pe->n;
}

/* What a type adds for people: the next five firing times; for mtbf the
 * inputs of Young's formula and the interval it chose. */
static void type_details(const struct loaded *lp, json_t *o)
{
	double next[5];
	size_t n = 0;
	if (lp->type == &policy_cron_type && !lp->st.paused) {
		double first = lp->st.next_fire_s;
		n = cron_next_n(lp->params, first - 1, next, 5);
	} else if (lp->type == &policy_mtbf_type) {
		const struct mtbf_params *p = lp->params;
		double interval = mtbf_interval_s(p, &lp->st);
		json_object_set_new(o, "cost_in_effect_s", json_real(mtbf_cost_s(p, &lp->st)));
		json_object_set_new(o, "cost_source", json_string(lp->st.cost_s > 0
								  ? "history" : "configured"));
		json_object_set_new(o, "cost_samples", json_integer(lp->cost_samples));
		json_object_set_new(o, "interval_s", json_real(interval));
		for (; !lp->st.paused && n < 5; n++)
			next[n] = lp->st.next_fire_s + (double)n * interval;
	} else if (lp->type == &policy_checkpoint_type) {
		const struct ckpt_params *p = lp->params;
		const char *which = "";
		double d = lp->st.cost_s, M = p->mtbf_s;
		double interval = ckpt_period_s(p, &lp->st, &which);
		json_object_set_new(o, "cost_s", json_real(d));
		json_object_set_new(o, "cost_samples", json_integer(lp->cost_samples));
		json_object_set_new(o, "mtbf_in_effect_s", json_real(M));
		if (d > 0 && M > 0) {
			json_object_set_new(o, "daly_s", json_real(ckpt_daly_s(d, M)));
			json_object_set_new(o, "young_s", json_real(ckpt_young_s(d, M)));
		}
		json_object_set_new(o, "interval_s", json_real(interval));
		json_object_set_new(o, "interval_source", json_string(which));
		for (; !lp->st.paused && n < 5; n++)
			next[n] = lp->st.next_fire_s + (double)n * interval;
	} else if (lp->type == &policy_interval_type && !lp->st.paused) {
		const struct interval_params *p = lp->params;
		for (; n < 5; n++)
			next[n] = lp->st.next_fire_s + (double)n * p->every_s;
	}
	if (lp->st.paused)
		return;
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_integer(to_ns(next[i])));
	json_object_set_new(o, "next_fires_ns", arr);
}

static json_t *policy_json(const struct loaded *lp)
{
	json_t *o = json_pack("{s:s, s:s, s:s}", "name", lp->row.name, "type", lp->row.type,
			      "state", lp->row.paused ? "paused" : "active");
	json_object_update(o, lp->row.params);
	json_object_set_new(o, "created_ns", json_integer(lp->row.created_ns));
	json_object_set_new(o, "last_fire_ns", lp->row.last_fire_ns
				       ? json_integer(lp->row.last_fire_ns) : json_null());
	json_object_set_new(o, "next_fire_ns", lp->row.next_fire_ns
				       ? json_integer(lp->row.next_fire_ns) : json_null());
	json_object_set_new(o, "fired", json_integer((json_int_t)lp->row.fired));
	type_details(lp, o);
	return o;
}

static json_t *policy_event(const char *type, const struct loaded *lp, int64_t now)
{
	json_t *ev = migd_event_new(type, now);
	json_object_set_new(ev, "name", json_string(lp->row.name));
	json_object_set_new(ev, "policy", policy_json(lp));
	return ev;
}

/* ---- firing --------------------------------------------------------------- */

/* One migration a firing asks for: a guest, maybe a destination, an offset. */
struct move {
	char guest[DB_NAME_MAX];
	char to[DB_NAME_MAX];          /* "": the planner chooses */
	double offset_s;
};

struct moves {
	struct move *m;
	size_t n, cap;
};

static int moves_add(struct moves *mv, const char *guest, const char *to, double offset_s)
{
	if (GROW(mv->m, mv->cap, mv->n + 1) < 0)
		return -ENOMEM;
	struct move *m = &mv->m[mv->n++];
	snprintf(m->guest, sizeof(m->guest), "%s", guest);
	snprintf(m->to, sizeof(m->to), "%s", to ? to : "");
	m->offset_s = offset_s;
	return 0;
}

/* Queue the moves of one firing, with the policy's knobs; guests that
 * cannot go now are listed in skipped with the reason (already migrating,
 * destination gone...). */
static int queue_moves(struct policy_engine *pe, const struct loaded *lp,
		       const struct moves *mv, const char *reason, int64_t now, json_t *queued,
		       json_t *skipped)
{
	char err[256];
	struct db_mig_knobs knobs;
	if (policy_knobs_parse(lp->knobs, exec_knobs_default(pe->ex), &knobs, NULL, err,
			       sizeof(err)) < 0)
		knobs = *exec_knobs_default(pe->ex); /* checked when added: cannot happen */
	for (size_t i = 0; i < mv->n; i++) {
		struct exec_request rq = {
			.guest = mv->m[i].guest, .to = *mv->m[i].to ? mv->m[i].to : NULL,
			.priority = SCHED_PRIO_PERIODIC, .policy = lp->row.name, .reason = reason,
			.queued_ns = now, .not_before_ns = now + to_ns(mv->m[i].offset_s),
			.knobs = &knobs,
		};
		struct db_migration m;
		int rc = exec_enqueue(pe->ex, &rq, &m, err, sizeof(err));
		if (rc == -EBUSY || rc == -EINVAL || rc == -ENOENT) {
			json_array_append_new(skipped, json_pack("{s:s, s:s}", "guest", rq.guest,
								 "reason", err));
			continue;
		}
		if (rc < 0)
			return rc;
		json_array_append_new(queued, json_integer(m.id));
	}
	return 0;
}

/* ---- cron actions (inside the firing's transaction) ---- */

static int collect_guest_names(void *arg, const struct db_guest *g)
{
	struct selection *s = arg;
	if (GROW(s->names, s->cap, s->n + 1) < 0)
		return -ENOMEM;
	memcpy(s->names[s->n++], g->name, DB_NAME_MAX);
	return 0;
}

/* "evacuate n1,n2": each host disabled (so nothing comes back) and its
 * guests queued, staggered across the whole firing. */
static int action_evacuate(struct policy_engine *pe, const char *hosts, double stagger_s,
			   int64_t now, struct moves *mv, json_t *skipped)
{
	char copy[CRON_ACTION_MAX], *save = NULL;
	int rc = 0;
	snprintf(copy, sizeof(copy), "%s", hosts);
	for (char *t = strtok_r(copy, ", ", &save); t && rc == 0; t = strtok_r(NULL, ", ", &save)) {
		struct db_host h;
		struct selection sel = { 0 };
		if (db_host_get(pe->db, t, &h) < 0) {
			json_array_append_new(skipped, json_pack("{s:s, s:s}", "host", t, "reason",
								 "no such host"));
			continue;
		}
		if (h.enabled && (rc = db_host_set_enabled(pe->db, t, 0)) == 0) {
			h.enabled = 0;
			json_t *ev = migd_event_new("host.disabled", now);
			json_object_set_new(ev, "host", db_host_json(&h));
			rc = db_event(pe->db, ev);
		}
		if (rc == 0)
			rc = db_guest_list(pe->db, t, NULL, collect_guest_names, &sel);
		for (size_t i = 0; rc == 0 && i < sel.n; i++)
			rc = moves_add(mv, sel.names[i], NULL, (double)mv->n * stagger_s);
		free(sel.names);
	}
	return rc;
}

struct rb_host {
	char name[DB_NAME_MAX];
	double cap, used;
	int ok;                        /* enabled, healthy, with a memory size */
};

struct rb_guest {
	char name[DB_NAME_MAX];
	size_t host;                   /* index into the hosts */
	double mem;
	int64_t job;
	int busy;                      /* queued or migrating, or moved by this plan */
};

struct rb {
	struct rb_host *h;
	size_t nh, caph;
	struct rb_guest *g;
	size_t ng, capg;
};

static int rb_add_host(void *arg, const struct db_host *h)
{
	struct rb *rb = arg;
	if (GROW(rb->h, rb->caph, rb->nh + 1) < 0)
		return -ENOMEM;
	struct rb_host *x = &rb->h[rb->nh++];
	snprintf(x->name, sizeof(x->name), "%s", h->name);
	x->cap = (double)h->memory_bytes;
	x->used = (double)h->memory_used_bytes;
	x->ok = h->enabled && strcmp(h->health, "ok") == 0 && h->memory_bytes > 0;
	return 0;
}

static int rb_add_guest(void *arg, const struct db_guest *g)
{
	struct rb *rb = arg;
	size_t k;
	for (k = 0; k < rb->nh && strcmp(rb->h[k].name, g->host) != 0; k++)
		;
	if (k == rb->nh)
		return 0;
	if (GROW(rb->g, rb->capg, rb->ng + 1) < 0)
		return -ENOMEM;
	struct rb_guest *x = &rb->g[rb->ng++];
	snprintf(x->name, sizeof(x->name), "%s", g->name);
	x->host = k;
	x->mem = (double)g->memory_bytes;
	x->job = g->job_id;
	x->busy = g->migration_id != 0;
	return 0;
}

static double load_of(const struct rb_host *h)
{
	return h->used / h->cap;
}

/* Would another rank of the guest's job share host k? */
static int job_on(const struct rb *rb, const struct rb_guest *g, size_t k)
{
	for (size_t i = 0; g->job && i < rb->ng; i++)
		if (&rb->g[i] != g && rb->g[i].job == g->job && rb->g[i].host == k)
			return 1;
	return 0;
}

/* One greedy step: the guest of the fullest host whose move to the
 * emptiest narrows their gap most. Returns its index or -1. */
static ssize_t rb_pick(const struct rb *rb, size_t hi, size_t lo)
{
	double gap = load_of(&rb->h[hi]) - load_of(&rb->h[lo]), best = gap;
	ssize_t pick = -1;
	for (size_t i = 0; i < rb->ng; i++) {
		const struct rb_guest *g = &rb->g[i];
		if (g->host != hi || g->busy || rb->h[lo].used + g->mem > rb->h[lo].cap ||
		    job_on(rb, g, lo))
			continue;
		double after = fabs((rb->h[hi].used - g->mem) / rb->h[hi].cap -
				    (rb->h[lo].used + g->mem) / rb->h[lo].cap);
		if (after < best - 1e-12) {
			best = after;
			pick = (ssize_t)i;
		}
	}
	return pick;
}

/* "rebalance": move guests from the fullest to the emptiest host (by
 * memory used / memory size, over enabled healthy hosts) until the loads
 * are within spread of each other, or no move narrows the gap. */
static int action_rebalance(struct policy_engine *pe, double spread, double stagger_s,
			    struct moves *mv)
{
	struct rb rb = { 0 };
	int rc = db_host_list(pe->db, rb_add_host, &rb);
	if (rc == 0)
		rc = db_guest_list(pe->db, NULL, NULL, rb_add_guest, &rb);
	for (int step = 0; rc == 0 && step < 256; step++) {
		size_t hi = SIZE_MAX, lo = SIZE_MAX;
		for (size_t k = 0; k < rb.nh; k++) {
			if (!rb.h[k].ok)
				continue;
			if (hi == SIZE_MAX || load_of(&rb.h[k]) > load_of(&rb.h[hi]))
				hi = k;
			if (lo == SIZE_MAX || load_of(&rb.h[k]) < load_of(&rb.h[lo]))
				lo = k;
		}
		if (hi == SIZE_MAX || hi == lo || load_of(&rb.h[hi]) - load_of(&rb.h[lo]) <= spread)
			break;
		ssize_t i = rb_pick(&rb, hi, lo);
		if (i < 0)
			break;
		struct rb_guest *g = &rb.g[i];
		rb.h[hi].used -= g->mem;
		rb.h[lo].used += g->mem;
		g->host = lo;
		g->busy = 1;
		rc = moves_add(mv, g->name, rb.h[lo].name, (double)mv->n * stagger_s);
	}
	free(rb.h);
	free(rb.g);
	return rc;
}

/* The moves of one firing: the type's picks from the selection, or for a
 * cron policy what its action says. */
static int plan_firing(struct policy_engine *pe, const struct loaded *lp,
		       const struct selection *sel, const struct policy_pick *picks,
		       size_t n_picks, int64_t now, struct moves *mv, json_t *skipped)
{
	if (lp->type == &policy_cron_type) {
		const struct cron_params *p = lp->params;
		char verb[32], arg[CRON_ACTION_MAX];
		cron_action_split(p->action, verb, sizeof(verb), arg, sizeof(arg));
		if (strcmp(verb, "evacuate") == 0)
			return action_evacuate(pe, arg, p->stagger_s, now, mv, skipped);
		if (strcmp(verb, "rebalance") == 0)
			return action_rebalance(pe, p->spread, p->stagger_s, mv);
	}
	for (size_t i = 0; i < n_picks; i++) {
		int rc = moves_add(mv, sel->names[picks[i].guest], NULL, picks[i].offset_s);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void firing_reason(const struct loaded *lp, char *reason, size_t len)
{
	const char *action = json_string_value(json_object_get(lp->row.params, "action"));
	if (action)
		snprintf(reason, len, "cron policy %s: %s", lp->row.name, action);
	else
		snprintf(reason, len, "%s policy %s", lp->row.type, lp->row.name);
}

static int fire_commit(struct policy_engine *pe, struct loaded *lp, struct policy_state *st,
		       const struct selection *sel, const struct policy_pick *picks,
		       size_t n_picks, double due_s, int64_t now)
{
	json_t *queued = json_array(), *skipped = json_array();
	struct db_policy row = lp->row;
	struct moves mv = { 0 };
	char reason[DB_TEXT_MAX];
	firing_reason(lp, reason, sizeof(reason));
	int rc = db_begin(pe->db);
	if (rc == 0)
		rc = plan_firing(pe, lp, sel, picks, n_picks, now, &mv, skipped);
	if (rc == 0)
		rc = queue_moves(pe, lp, &mv, reason, now, queued, skipped);
	state_to_row(st, &row);
	row.fired++;
	if (rc == 0)
		rc = db_policy_update(pe->db, &row);
	if (rc == 0) {
		struct loaded after = *lp;
		after.row = row;
		after.st = *st;
		json_t *ev = policy_event("policy.fired", &after, now);
		json_object_set_new(ev, "reason", json_string(reason));
		json_object_set_new(ev, "due_ns", json_integer(to_ns(due_s)));
		json_object_set_new(ev, "queued", json_incref(queued));
		json_object_set_new(ev, "skipped", json_incref(skipped));
		rc = db_event(pe->db, ev);
	}
	rc = db_end(pe->db, rc);
	if (rc == 0) {
		lp->row.paused = row.paused;
		lp->row.anchor_ns = row.anchor_ns;
		lp->row.next_fire_ns = row.next_fire_ns;
		lp->row.last_fire_ns = row.last_fire_ns;
		lp->row.cursor = row.cursor;
		lp->row.fired = row.fired;
		lp->row.cost_ns = row.cost_ns;
		lp->st = *st;
		log_info("policy %s fired (%s): %zu queued, %zu skipped", lp->row.name, reason,
			 json_array_size(queued), json_array_size(skipped));
	}
	free(mv.m);
	json_decref(queued);
	json_decref(skipped);
	return rc;
}

/* A checkpoint policy's firing: a checkpoint of its job (ckpt.h), asked
 * first (it commits its own row), then the policy's new state. A job that
 * is migrating or in another operation skips this period. */
static void fire_checkpoint(struct policy_engine *pe, struct loaded *lp, int64_t now)
{
	const struct ckpt_params *p = lp->params;
	struct policy_state st = lp->st;
	struct policy_pick none;
	size_t n_picks = 0;
	double due_s = lp->type->next_fire_s(lp->params, &lp->st);
	if (lp->type->fire(lp->params, &st, (double)now / 1e9, 0, &none, &n_picks) != 1)
		return;
	char reason[DB_TEXT_MAX], err[512] = "";
	snprintf(reason, sizeof(reason), "checkpoint policy %s", lp->row.name);
	struct ckpt_request rq = { .job = p->job, .policy = lp->row.name, .reason = reason,
				   .keep = p->keep };
	struct db_op op = { 0 };
	int crc = pe->ck ? ckpt_create(pe->ck, &rq, &op, err, sizeof(err)) : -ENOTSUP;
	if (!pe->ck)
		snprintf(err, sizeof(err), "checkpoints are not available");
	struct db_policy row = lp->row;
	state_to_row(&st, &row);
	row.fired++;
	int rc = db_begin(pe->db);
	if (rc == 0)
		rc = db_policy_update(pe->db, &row);
	if (rc == 0) {
		struct loaded after = *lp;
		after.row = row;
		after.st = st;
		json_t *ev = policy_event("policy.fired", &after, now);
		json_object_set_new(ev, "reason", json_string(reason));
		json_object_set_new(ev, "due_ns", json_integer(to_ns(due_s)));
		if (crc == 0)
			json_object_set_new(ev, "checkpoint", json_integer(op.id));
		else
			json_object_set_new(ev, "skipped", json_string(err));
		rc = db_event(pe->db, ev);
	}
	if (db_end(pe->db, rc) == 0) {
		lp->row = row;
		lp->st = st;
	}
	if (crc == 0)
		log_info("policy %s fired: checkpoint %" PRId64 " of %s", lp->row.name, op.id, p->job);
	else
		log_warnx("policy %s: checkpoint of %s skipped: %s", lp->row.name, p->job, err);
	db_op_clear(&op);
}

/* A checkpoint policy's d (the job's measured checkpoint cost) and M (its
 * own, else the first MTBF policy's); a change of d is an event. */
static void observe_checkpoint(struct policy_engine *pe, struct loaded *lp, int64_t now)
{
	struct ckpt_params *p = lp->params;
	if (lp->cost_checked_ms && now_ms() - lp->cost_checked_ms < 1000)
		return;
	lp->cost_checked_ms = now_ms();
	if (!(p->mtbf_s > 0) || lp->mtbf_borrowed)
		for (size_t i = 0; i < pe->n; i++)
			if (pe->p[i].type == &policy_mtbf_type) {
				p->mtbf_s = ((const struct mtbf_params *)pe->p[i].params)->mtbf_s;
				lp->mtbf_borrowed = 1;
				break;
			}
	double d = pe->ck ? ckpt_cost_s(pe->ck, p->job, 5) : 0;
	if (!(d > 0) || fabs(d - lp->st.cost_s) < 1e-3 * d)
		return;
	const char *which;
	double before = ckpt_period_s(p, &lp->st, NULL);
	struct loaded after = *lp;
	lp->type->observe(lp->params, &after.st, d, (double)now / 1e9);
	double interval = ckpt_period_s(p, &after.st, &which);
	state_to_row(&after.st, &after.row);
	int rc = db_begin(pe->db);
	if (rc == 0)
		rc = db_policy_update(pe->db, &after.row);
	if (rc == 0 && fabs(interval - before) >= 1e-3 * before) { /* a fixed one never moves */
		char reason[240];
		snprintf(reason, sizeof(reason), "measured checkpoint cost d = %.3g s, MTBF M = %.6g s:"
			 " interval %.6g s (%s), was %.6g s", d, p->mtbf_s, interval, which, before);
		json_t *ev = policy_event("policy.interval", &after, now);
		json_object_set_new(ev, "reason", json_string(reason));
		rc = db_event(pe->db, ev);
		if (rc == 0)
			log_info("policy %s: %s", lp->row.name, reason);
	}
	if (db_end(pe->db, rc) == 0)
		*lp = after;
}

static void watch(struct policy_engine *pe, const struct loaded *lp, int on)
{
	if (!pe->ck || lp->type != &policy_checkpoint_type)
		return;
	const struct ckpt_params *p = lp->params;
	ckpt_watch(pe->ck, p->job, on ? (p->on_failure == CKPT_RESTORE ? "restore" : "notify")
				      : NULL, lp->row.name, p->keep);
}

static void fire_one(struct policy_engine *pe, struct loaded *lp, int64_t now)
{
	struct selection sel = { 0 };
	struct policy_state st = lp->st;
	struct policy_pick *picks = NULL;
	size_t n_picks = 0;
	const char *selector = selector_of(lp);
	double due_s = lp->type->next_fire_s(lp->params, &lp->st); /* what the firing is for */
	int rc = *selector ? resolve(pe, selector, &sel) : 0;
	if (rc == 0 && !(picks = calloc(sel.n + 1, sizeof(*picks))))
		rc = -ENOMEM;
	if (rc == 0)
		rc = lp->type->fire(lp->params, &st, (double)now / 1e9, sel.n, picks, &n_picks);
	if (rc == 1)
		rc = fire_commit(pe, lp, &st, &sel, picks, n_picks, due_s, now);
	if (rc < 0) {
		log_warnx("policy %s: firing failed (%s); trying again in a second", lp->row.name,
			  strerror(-rc));
		lp->retry_after_ms = now_ms() + 1000;
	}
	free(picks);
	free(sel.names);
}

/* mtbf: feed the cost measured from the policy's own history (the mean
 * migration time of its last completed migrations times the guests one
 * firing moves); a change of the interval is an event. At most once a
 * second (real time) per policy. */
static void observe_cost(struct policy_engine *pe, struct loaded *lp, int64_t now)
{
	const struct mtbf_params *p = lp->params;
	double mean_ms;
	unsigned count;
	if (lp->cost_checked_ms && now_ms() - lp->cost_checked_ms < 1000)
		return;
	lp->cost_checked_ms = now_ms();
	if (db_policy_cost(pe->db, lp->row.name, 20, &mean_ms, &count) < 0 || count == 0)
		return;
	lp->cost_samples = count;
	size_t per_firing = p->count;
	if (per_firing == 0) {
		struct selection sel = { 0 };
		if (resolve(pe, selector_of(lp), &sel) == 0)
			per_firing = sel.n;
		free(sel.names);
	}
	double cost_s = mean_ms / 1e3 * (double)(per_firing ? per_firing : 1);
	if (!(cost_s > 0) || fabs(cost_s - lp->st.cost_s) < 1e-3 * cost_s)
		return;
	double before = mtbf_interval_s(p, &lp->st);
	struct loaded after = *lp;
	lp->type->observe(lp->params, &after.st, cost_s, (double)now / 1e9);
	state_to_row(&after.st, &after.row);
	int rc = db_begin(pe->db);
	if (rc == 0)
		rc = db_policy_update(pe->db, &after.row);
	if (rc == 0) {
		char reason[200];
		double interval = mtbf_interval_s(p, &after.st);
		snprintf(reason, sizeof(reason), "measured cost %.3g s (%u migrations): interval "
			 "sqrt(2 x %.3g s x MTBF %.6g s) = %.6g s, was %.6g s", cost_s, count,
			 cost_s, p->mtbf_s, interval, before);
		json_t *ev = policy_event("policy.interval", &after, now);
		json_object_set_new(ev, "reason", json_string(reason));
		rc = db_event(pe->db, ev);
		if (rc == 0)
			log_info("policy %s: %s", lp->row.name, reason);
	}
	if (db_end(pe->db, rc) == 0)
		*lp = after;
}

void policy_tick(struct policy_engine *pe)
{
	if (pe->n == 0)
		return;
	int64_t now = exec_now_ns(pe->ex);
	double now_s = (double)now / 1e9;
	for (size_t i = 0; i < pe->n; i++) {
		struct loaded *lp = &pe->p[i];
		if (lp->type == &policy_checkpoint_type && !lp->st.paused)
			observe_checkpoint(pe, lp, now);
		else if (lp->type->observe && !lp->st.paused)
			observe_cost(pe, lp, now);
		if (lp->st.paused || now_s < lp->type->next_fire_s(lp->params, &lp->st))
			continue;
		if (lp->retry_after_ms && now_ms() < lp->retry_after_ms)
			continue;
		lp->retry_after_ms = 0;
		if (lp->type == &policy_checkpoint_type)
			fire_checkpoint(pe, lp, now);
		else
			fire_one(pe, lp, now);
	}
}

/* ---- commands ------------------------------------------------------------- */

static int lookup(struct policy_engine *pe, const char *name, struct loaded **out, char *err,
		  size_t errlen)
{
	*out = find(pe, name);
	if (!*out) {
		snprintf(err, errlen, "policy \"%s\": no such policy", name);
		return -ENOENT;
	}
	return 0;
}

/* The common arguments of policy.add: type, name and guests. */
static int add_common_args(struct policy_engine *pe, json_t *args, struct loaded *lp,
			   const char **selector, char *err, size_t errlen)
{
	const char *type, *name;
	int rc;
	if ((rc = migd_arg_str(args, "type", 1, &type, err, errlen)) < 0 ||
	    (rc = migd_arg_str(args, "name", 1, &name, err, errlen)) < 0)
		return rc;
	if (!(lp->type = policy_type_find(type))) {
		snprintf(err, errlen, "argument \"type\" = \"%s\": unknown policy type (known: %s)",
			 type, POLICY_TYPE_NAMES);
		return -EINVAL;
	}
	/* a cron policy's guests are in its action ("migrate job:bt"); a
	 * checkpoint policy's are its job's */
	int is_ckpt = lp->type == &policy_checkpoint_type;
	int is_cron = lp->type == &policy_cron_type || is_ckpt;
	rc = migd_arg_str(args, "guests", !is_cron, selector, err, errlen);
	if (is_cron && rc == 0) {
		snprintf(err, errlen, "argument \"guests\": %s", is_ckpt
			 ? "a checkpoint policy takes every guest of its job (\"job\")"
			 : "a cron policy selects guests in its action (\"migrate SELECTOR\")");
		return -EINVAL;
	}
	if (is_cron)
		*selector = "";
	else if (rc < 0)
		return rc;
	if (db_name_check(name) < 0) {
		snprintf(err, errlen, "argument \"name\" = \"%.80s\": expected 1 to %d letters, "
			 "digits, '.', '_' or '-', starting with a letter or digit", name,
			 DB_NAME_MAX - 1);
		return -EINVAL;
	}
	if (find(pe, name)) {
		snprintf(err, errlen, "policy \"%s\" already exists", name);
		return -EEXIST;
	}
	snprintf(lp->row.name, sizeof(lp->row.name), "%s", name);
	snprintf(lp->row.type, sizeof(lp->row.type), "%s", type);
	return is_cron ? 0 : guests_check(*selector, err, errlen);
}

int policy_add(struct policy_engine *pe, json_t *args, json_t **result, char *err,
	       size_t errlen)
{
	struct loaded lp = { 0 };
	const char *selector;
	int rc = add_common_args(pe, args, &lp, &selector, err, errlen);
	if (rc < 0)
		return rc;
	struct db_mig_knobs knobs;
	lp.knobs = json_object();
	if ((rc = policy_knobs_parse(args, exec_knobs_default(pe->ex), &knobs, lp.knobs, err,
				     errlen)) < 0 ||
	    (rc = parse_params(lp.type, args, &lp.params, err, errlen)) < 0) {
		json_decref(lp.knobs);
		return rc;
	}
	char verb[32], arg[CRON_ACTION_MAX];
	if (lp.type == &policy_cron_type) {
		cron_action_split(((struct cron_params *)lp.params)->action, verb, sizeof(verb), arg,
				  sizeof(arg));
		if (strcmp(verb, "migrate") == 0)
			selector = arg;
		if (*selector && (rc = guests_check(selector, err, errlen)) < 0) {
			free(lp.params);
			json_decref(lp.knobs);
			return rc;
		}
	}
	int64_t now = exec_now_ns(pe->ex);
	lp.type->start(lp.params, &lp.st, (double)now / 1e9);
	lp.row.params = canonical_params(lp.type, lp.params, args, selector, lp.knobs);
	lp.row.created_ns = now;
	state_to_row(&lp.st, &lp.row);
	if ((rc = db_begin(pe->db)) == 0) {
		rc = db_policy_add(pe->db, &lp.row);
		if (rc == 0)
			rc = db_event(pe->db, policy_event("policy.added", &lp, now));
		rc = db_end(pe->db, rc);
	}
	if (rc == 0 && (rc = append(pe, &lp)) == 0) {
		watch(pe, &lp, 1);
		*result = policy_json(&lp);
		log_info("policy %s added", lp.row.name);
		return 0;
	}
	snprintf(err, errlen, "policy \"%s\": %s", lp.row.name,
		 rc == -EEXIST ? "already exists" : "database error");
	loaded_clear(&lp);
	return rc;
}

int policy_show(struct policy_engine *pe, const char *name, json_t **result, char *err,
		size_t errlen)
{
	struct loaded *lp;
	int rc = lookup(pe, name, &lp, err, errlen);
	if (rc == 0)
		*result = policy_json(lp);
	return rc;
}

json_t *policy_list(struct policy_engine *pe)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < pe->n; i++)
		json_array_append_new(arr, policy_json(&pe->p[i]));
	return arr;
}

/* Pause or resume: the type updates its state, the row follows. */
static int set_paused(struct policy_engine *pe, const char *name, int paused, json_t **result,
		      char *err, size_t errlen)
{
	struct loaded *lp;
	int rc = lookup(pe, name, &lp, err, errlen);
	if (rc < 0)
		return rc;
	int64_t now = exec_now_ns(pe->ex);
	struct loaded after = *lp;
	if (paused)
		lp->type->pause(lp->params, &after.st, (double)now / 1e9);
	else
		lp->type->resume(lp->params, &after.st, (double)now / 1e9);
	state_to_row(&after.st, &after.row);
	if ((rc = db_begin(pe->db)) < 0)
		return rc;
	rc = db_policy_update(pe->db, &after.row);
	if (rc == 0)
		rc = db_event(pe->db, policy_event(paused ? "policy.paused" : "policy.resumed",
						   &after, now));
	rc = db_end(pe->db, rc);
	if (rc < 0) {
		snprintf(err, errlen, "policy \"%s\": database error", name);
		return rc;
	}
	*lp = after;
	*result = policy_json(lp);
	return 0;
}

int policy_pause(struct policy_engine *pe, const char *name, json_t **result, char *err,
		 size_t errlen)
{
	return set_paused(pe, name, 1, result, err, errlen);
}

int policy_resume(struct policy_engine *pe, const char *name, json_t **result, char *err,
		  size_t errlen)
{
	return set_paused(pe, name, 0, result, err, errlen);
}

static int collect_queued(void *arg, const struct db_migration *m)
{
	json_t *ids = arg;
	return json_array_append_new(ids, json_integer(m->id));
}

/* Abort the policy's queued rows (in the open transaction); ids listed. */
static int abort_queued(struct policy_engine *pe, const char *name, json_t *ids)
{
	struct db_mig_filter f = { .states = DB_MIG_BIT(DB_MIG_QUEUED), .policy = name };
	char why[DB_TEXT_MAX];
	size_t i;
	json_t *id;
	int rc = db_mig_list(pe->db, &f, collect_queued, ids);
	snprintf(why, sizeof(why), "policy %s removed", name);
	json_array_foreach(ids, i, id) {
		struct db_migration m;
		if (rc == 0)
			rc = db_mig_get(pe->db, json_integer_value(id), &m);
		if (rc == 0)
			rc = exec_cancel_queued(pe->ex, &m, why);
	}
	return rc;
}

int policy_remove(struct policy_engine *pe, const char *name, json_t **result, char *err,
		  size_t errlen)
{
	struct loaded *lp;
	int rc = lookup(pe, name, &lp, err, errlen);
	if (rc < 0)
		return rc;
	json_t *aborted = json_array();
	int64_t now = exec_now_ns(pe->ex);
	if ((rc = db_begin(pe->db)) == 0) {
		rc = abort_queued(pe, name, aborted);
		if (rc == 0)
			rc = db_policy_remove(pe->db, name);
		if (rc == 0) {
			json_t *ev = policy_event("policy.removed", lp, now);
			json_object_set_new(ev, "aborted", json_incref(aborted));
			rc = db_event(pe->db, ev);
		}
		rc = db_end(pe->db, rc);
	}
	if (rc < 0) {
		snprintf(err, errlen, "policy \"%s\": database error", name);
		json_decref(aborted);
		return rc;
	}
	*result = json_pack("{s:s, s:o}", "name", name, "aborted", aborted);
	log_info("policy %s removed", name);
	watch(pe, lp, 0);
	loaded_clear(lp);
	*lp = pe->p[--pe->n];
	return 0;
}
