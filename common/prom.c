/*
 * prom: see prom.h. A metric's series are found through a hash of their
 * label values (htab.h), so a per-guest gauge of 10,000 guests costs the
 * same per update as a metric of three series; they are listed in an
 * array of pointers for rendering, in the order they were made.
 */
#include "prom.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "htab.h"
#include "log.h"
#include "util.h"

const double prom_buckets_phase_s[] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
					1, 2.5, 5, 10, 30, 60, 120, 300, 600 };
const size_t prom_buckets_phase_n = ARRAY_SIZE(prom_buckets_phase_s);
const double prom_buckets_request_s[] = { 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
					  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
					  5, 10 };
const size_t prom_buckets_request_n = ARRAY_SIZE(prom_buckets_request_s);

struct series {
	struct hnode node; /* in the metric's index */
	size_t slot;       /* in the metric's series array */
	char *values[PROM_MAX_LABELS];
	double value;      /* counter, gauge; histogram: sum */
	uint64_t count;    /* histogram */
	uint64_t *buckets; /* histogram: per bound, not cumulative */
};

struct prom_metric {
	struct prom_registry *reg;
	enum prom_type type;
	char *name, *help;
	char *labels[PROM_MAX_LABELS];
	size_t n_labels;
	double *bounds;
	size_t n_bounds;
	struct series **series;
	size_t n_series, cap_series;
	struct htab index; /* of series, by hash_values */
	int warned;
};

struct collector {
	void (*fn)(void *arg);
	void *arg;
};

struct prom_registry {
	pthread_mutex_t lock;
	char *const_labels; /* rendered: name="value",... or "" */
	struct prom_metric **metrics;
	size_t n_metrics, cap_metrics;
	struct collector *collectors;
	size_t n_collectors, cap_collectors;
};

/* Label values in the text format: backslash, quote and newline escaped. */
static void put_escaped(FILE *out, const char *s, int quotes)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", out);
		else if (*s == '\n')
			fputs("\\n", out);
		else if (*s == '"' && quotes)
			fputs("\\\"", out);
		else
			fputc(*s, out);
	}
}

static int name_ok(const char *name, int label)
{
	if (!*name || (*name >= '0' && *name <= '9'))
		return 0;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || (*p == ':' && !label)))
			return 0;
	return 1;
}

static char *render_const_labels(const char *spec)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	if (!out)
		return NULL;
	char *copy = strdup(spec ? spec : "");
	char *save = NULL;
	int first = 1;
	for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq)
			continue;
		*eq = '\0';
		fprintf(out, "%s%s=\"", first ? "" : ",", tok);
		put_escaped(out, eq + 1, 1);
		fputc('"', out);
		first = 0;
	}
	free(copy);
	fclose(out);
	return buf;
}

struct prom_registry *prom_registry_new(const char *const_labels)
{
	struct prom_registry *reg = calloc(1, sizeof(*reg));
	if (!reg)
		return NULL;
	pthread_mutex_init(&reg->lock, NULL);
	reg->const_labels = render_const_labels(const_labels);
	if (!reg->const_labels) {
		prom_registry_free(reg);
		return NULL;
	}
	return reg;
}

static void series_free(struct prom_metric *m, struct series *s)
{
	for (size_t i = 0; i < m->n_labels; i++)
		free(s->values[i]);
	free(s->buckets);
	free(s);
}

void prom_metric_clear_unlocked(struct prom_metric *m)
{
	for (size_t i = 0; i < m->n_series; i++)
		series_free(m, m->series[i]);
	m->n_series = 0;
	htab_release(&m->index);
}

static void metric_free(struct prom_metric *m)
{
	prom_metric_clear_unlocked(m);
	free(m->series);
	for (size_t i = 0; i < m->n_labels; i++)
		free(m->labels[i]);
	free(m->bounds);
	free(m->name);
	free(m->help);
	free(m);
}

void prom_registry_free(struct prom_registry *reg)
{
	if (!reg)
		return;
	for (size_t i = 0; i < reg->n_metrics; i++)
		metric_free(reg->metrics[i]);
	free(reg->metrics);
	free(reg->collectors);
	free(reg->const_labels);
	pthread_mutex_destroy(&reg->lock);
	free(reg);
}

static int split_labels(struct prom_metric *m, const char *labels)
{
	if (!labels || !*labels)
		return 0;
	char *copy = strdup(labels), *save = NULL;
	if (!copy)
		return -ENOMEM;
	int rc = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (m->n_labels == PROM_MAX_LABELS || !name_ok(tok, 1) ||
		    !(m->labels[m->n_labels] = strdup(tok))) {
			rc = -EINVAL;
			break;
		}
		m->n_labels++;
	}
	free(copy);
	return rc;
}

struct prom_metric *prom_metric_new(struct prom_registry *reg, enum prom_type type,
				    const char *name, const char *help, const char *labels,
				    const double *bounds, size_t n_bounds)
{
	struct prom_metric *m = calloc(1, sizeof(*m));
	if (!m)
		goto fail;
	m->reg = reg;
	m->type = type;
	m->name = strdup(name);
	m->help = strdup(help);
	if (!m->name || !m->help || !name_ok(name, 0) || split_labels(m, labels) < 0)
		goto fail;
	if (type == PROM_HISTOGRAM) {
		m->bounds = malloc(sizeof(double) * (n_bounds ? n_bounds : 1));
		if (!m->bounds)
			goto fail;
		memcpy(m->bounds, bounds, sizeof(double) * n_bounds);
		m->n_bounds = n_bounds;
	}
	pthread_mutex_lock(&reg->lock);
	void *grown = grow_to(reg->metrics, &reg->cap_metrics, reg->n_metrics + 1,
			      sizeof(*reg->metrics));
	if (grown) {
		reg->metrics = grown;
		reg->metrics[reg->n_metrics++] = m;
	}
	pthread_mutex_unlock(&reg->lock);
	if (!grown)
		goto fail;
	return m;
fail:
	log_warnx("metric %s: cannot register it (bad name or labels, or out of memory)", name);
	if (m)
		metric_free(m);
	return NULL;
}

static uint64_t hash_values(const struct prom_metric *m, const char *const *values)
{
	uint64_t h = 0;
	for (size_t l = 0; l < m->n_labels; l++)
		h = (h ^ hash_str(values[l] ? values[l] : "")) * 0x100000001b3ull;
	return h;
}

/* The series of values, or NULL. Lock held. */
static struct series *series_find(struct prom_metric *m, const char *const *values,
				  uint64_t hash)
{
	for (struct hnode *n = htab_bucket(&m->index, hash); n; n = n->next) {
		struct series *s = container_of(n, struct series, node);
		if (n->hash != hash)
			continue;
		size_t l = 0;
		while (l < m->n_labels && strcmp(s->values[l], values[l] ? values[l] : "") == 0)
			l++;
		if (l == m->n_labels)
			return s;
	}
	return NULL;
}

/* The series of values, made when new; NULL when out of room. Lock held. */
static struct series *series_get(struct prom_metric *m, const char *const *values)
{
	uint64_t hash = hash_values(m, values);
	struct series *s = series_find(m, values, hash);
	if (s)
		return s;
	if (m->n_series == PROM_MAX_SERIES || GROW(m->series, m->cap_series, m->n_series + 1) < 0 ||
	    !(s = calloc(1, sizeof(*s))))
		goto full;
	for (size_t l = 0; l < m->n_labels; l++)
		if (!(s->values[l] = strdup(values[l] ? values[l] : "")))
			goto undo;
	if (m->type == PROM_HISTOGRAM && !(s->buckets = calloc(m->n_bounds + 1, sizeof(uint64_t))))
		goto undo;
	if (htab_insert(&m->index, &s->node, hash) < 0)
		goto undo;
	s->slot = m->n_series;
	m->series[m->n_series++] = s;
	return s;
undo:
	series_free(m, s);
full:
	if (!m->warned)
		log_warnx("metric %s: more than %zu series or out of memory; new ones are dropped",
			  m->name, m->n_series);
	m->warned = 1;
	return NULL;
}

void prom_counter_add(struct prom_metric *m, const char *const *values, double delta)
{
	if (!m || !(delta >= 0))
		return; /* a counter only goes up; NaN is not a count either */
	pthread_mutex_lock(&m->reg->lock);
	struct series *s = series_get(m, values);
	if (s)
		s->value += delta;
	pthread_mutex_unlock(&m->reg->lock);
}

void prom_gauge_set_unlocked(struct prom_metric *m, const char *const *values, double value)
{
	struct series *s = m ? series_get(m, values) : NULL;
	if (s)
		s->value = value;
}

void prom_gauge_set(struct prom_metric *m, const char *const *values, double value)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->reg->lock);
	prom_gauge_set_unlocked(m, values, value);
	pthread_mutex_unlock(&m->reg->lock);
}

void prom_histogram_observe(struct prom_metric *m, const char *const *values, double value)
{
	if (!m || isnan(value))
		return;
	pthread_mutex_lock(&m->reg->lock);
	struct series *s = series_get(m, values);
	if (s) {
		size_t b = 0;
		while (b < m->n_bounds && value > m->bounds[b])
			b++;
		s->buckets[b]++;
		s->count++;
		s->value += value;
	}
	pthread_mutex_unlock(&m->reg->lock);
}

void prom_series_remove(struct prom_metric *m, const char *const *values)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->reg->lock);
	struct series *s = series_find(m, values, hash_values(m, values));
	if (s) {
		htab_remove(&m->index, &s->node);
		struct series *last = m->series[--m->n_series];
		m->series[s->slot] = last; /* the order of series means nothing */
		last->slot = s->slot;
		series_free(m, s);
	}
	pthread_mutex_unlock(&m->reg->lock);
}

void prom_metric_clear(struct prom_metric *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->reg->lock);
	prom_metric_clear_unlocked(m);
	pthread_mutex_unlock(&m->reg->lock);
}

void prom_lock(struct prom_registry *reg)
{
	pthread_mutex_lock(&reg->lock);
}

void prom_unlock(struct prom_registry *reg)
{
	pthread_mutex_unlock(&reg->lock);
}

int prom_on_collect(struct prom_registry *reg, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&reg->lock);
	void *grown = grow_to(reg->collectors, &reg->cap_collectors, reg->n_collectors + 1,
			      sizeof(*reg->collectors));
	if (grown) {
		reg->collectors = grown;
		reg->collectors[reg->n_collectors++] = (struct collector){ fn, arg };
	}
	pthread_mutex_unlock(&reg->lock);
	return grown ? 0 : -ENOMEM;
}

static void put_number(FILE *out, double v)
{
	if (isinf(v))
		fputs(v > 0 ? "+Inf" : "-Inf", out);
	else if (isnan(v))
		fputs("NaN", out);
	else if (v == floor(v) && fabs(v) < 1e15)
		fprintf(out, "%.0f", v);
	else {
		char text[32];
		snprintf(text, sizeof(text), "%.15g", v); /* shortest that reads back */
		if (strtod(text, NULL) != v)
			snprintf(text, sizeof(text), "%.17g", v);
		fputs(text, out);
	}
}

/* name{const,labels[,le="bound"]} */
static void put_series_name(FILE *out, const struct prom_metric *m, const char *suffix,
			    const struct series *s, const char *le)
{
	const char *consts = m->reg->const_labels;
	fprintf(out, "%s%s", m->name, suffix);
	if (!*consts && !m->n_labels && !le)
		return;
	fprintf(out, "{%s", consts);
	int first = !*consts;
	for (size_t l = 0; l < m->n_labels; l++) {
		fprintf(out, "%s%s=\"", first ? "" : ",", m->labels[l]);
		put_escaped(out, s->values[l], 1);
		fputc('"', out);
		first = 0;
	}
	if (le)
		fprintf(out, "%sle=\"%s\"", first ? "" : ",", le);
	fputc('}', out);
}

static void render_metric(FILE *out, const struct prom_metric *m)
{
	static const char *const type_names[] = { "counter", "gauge", "histogram" };
	fprintf(out, "# HELP %s ", m->name);
	put_escaped(out, m->help, 0);
	fprintf(out, "\n# TYPE %s %s\n", m->name, type_names[m->type]);
	for (size_t i = 0; i < m->n_series; i++) {
		const struct series *s = m->series[i];
		if (m->type != PROM_HISTOGRAM) {
			put_series_name(out, m, "", s, NULL);
			fputc(' ', out);
			put_number(out, s->value);
			fputc('\n', out);
			continue;
		}
		uint64_t cumulative = 0;
		for (size_t b = 0; b <= m->n_bounds; b++) {
			char le[32];
			if (b == m->n_bounds)
				snprintf(le, sizeof(le), "+Inf");
			else
				snprintf(le, sizeof(le), "%g", m->bounds[b]);
			cumulative += s->buckets[b];
			put_series_name(out, m, "_bucket", s, le);
			fprintf(out, " %llu\n", (unsigned long long)cumulative);
		}
		put_series_name(out, m, "_sum", s, NULL);
		fputc(' ', out);
		put_number(out, s->value);
		fputc('\n', out);
		put_series_name(out, m, "_count", s, NULL);
		fprintf(out, " %llu\n", (unsigned long long)s->count);
	}
}

int prom_render(struct prom_registry *reg, char **out_text, size_t *out_len)
{
	char *buf = NULL;
	size_t len = 0;
	/* the hooks take the lock themselves; the list only grows at start-up */
	pthread_mutex_lock(&reg->lock);
	size_t n = reg->n_collectors;
	pthread_mutex_unlock(&reg->lock);
	for (size_t i = 0; i < n; i++)
		reg->collectors[i].fn(reg->collectors[i].arg);
	FILE *out = open_memstream(&buf, &len);
	if (!out)
		return -ENOMEM;
	pthread_mutex_lock(&reg->lock);
	for (size_t i = 0; i < reg->n_metrics; i++)
		render_metric(out, reg->metrics[i]);
	pthread_mutex_unlock(&reg->lock);
	if (fclose(out) != 0 || !buf) {
		free(buf);
		return -ENOMEM;
	}
	*out_text = buf;
	*out_len = len;
	return 0;
}
