/*
 * policy: what every migration policy type (interval, cron, mtbf) looks
 * like to migd.
 *
 * A policy type is pure logic: it reads no clock, touches no file or
 * socket and knows no guest names. migd resolves the policy's selector to a
 * list of guests (in a stable order, e.g. by name), passes the time in
 * seconds (virtual time on the sim backend) and gets back which of those
 * guests to migrate and when. Because all of a policy's memory is the plain
 * struct policy_state below, migd stores it in SQLite as a few columns
 * whatever the type, and a restart continues where the policy left off.
 *
 * Times (_s) are seconds since the epoch as doubles; durations are seconds.
 */
#ifndef MIGD_POLICY_H
#define MIGD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* One parameter as given by a person or a JSON object, value as text
 * ("4m", "240", "30s", "3"). */
struct policy_kv {
	const char *key;
	const char *value;
};

/* Everything a policy remembers between calls. Zeroed is "never started". */
struct policy_state {
	bool paused;
	bool has_fired;
	double anchor_s;    /* periods are counted from here (creation) */
	double next_fire_s; /* when it is due next; ignored while paused */
	double last_fire_s; /* valid when has_fired */
	uint64_t cursor;    /* round-robin position in the selected list */
	double cost_s;      /* mtbf: the measured cost last observed; 0: none yet */
};

/* One guest to migrate: an index into the caller's selected list, and when
 * to start it, in seconds after the fire time. */
struct policy_pick {
	size_t guest;
	double offset_s;
};

struct policy_type {
	const char *name;   /* "interval" */
	size_t params_size; /* bytes of the type's params struct, for the caller to allocate */
	/* Fill params from key/values; keys every type shares ("type", "name",
	 * "guests") are skipped, an unknown one is an error. 0 or -EINVAL with
	 * "every: ..." in err. */
	int (*parse)(const struct policy_kv *kv, size_t n_kv, void *params, char *err,
		     size_t errlen);
	/* A new policy, created at now_s. */
	void (*start)(const void *params, struct policy_state *st, double now_s);
	/* When it is due next; INFINITY when paused or only events fire it. */
	double (*next_fire_s)(const void *params, const struct policy_state *st);
	/* If due at now_s: choose from n_selected guests into picks (room for
	 * n_selected), update st and return 1; if not due return 0 and leave st
	 * alone. Negative errno on bad arguments. */
	int (*fire)(const void *params, struct policy_state *st, double now_s,
		    size_t n_selected, struct policy_pick *picks, size_t *n_picks);
	void (*pause)(const void *params, struct policy_state *st, double now_s);
	void (*resume)(const void *params, struct policy_state *st, double now_s);
	/* Optional. Called once when migd starts again at now_s with the state
	 * it stored: a type with a rule for firings missed while migd was down
	 * applies it. Returns how many firing times were missed (capped). */
	unsigned (*restore)(const void *params, struct policy_state *st, double now_s);
	/* Optional. A measured input (mtbf: the cost of one firing in seconds,
	 * from the cost history) is value now; the type may move its next
	 * firing. */
	void (*observe)(const void *params, struct policy_state *st, double value, double now_s);
};

extern const struct policy_type policy_interval_type;
extern const struct policy_type policy_cron_type;
extern const struct policy_type policy_mtbf_type;
extern const struct policy_type policy_checkpoint_type;

#define POLICY_TYPE_NAMES "interval, cron, mtbf, checkpoint"

/* The type called name, or NULL. */
static inline const struct policy_type *policy_type_find(const char *name)
{
	static const struct policy_type *const types[] = {
		&policy_interval_type, &policy_cron_type, &policy_mtbf_type,
		&policy_checkpoint_type,
	};
	for (size_t i = 0; name && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(name, types[i]->name) == 0)
			return types[i];
	return NULL;
}

/* Shared by the types' parsers (interval.c): a duration ("4m", "30s",
 * "240", "1.5h", "2d") in seconds; 0 or -EINVAL. */
int policy_parse_duration_s(const char *text, double *out_s);
/* Keys every policy.add carries that are no type's business. */
bool policy_is_common_key(const char *key);

#endif
