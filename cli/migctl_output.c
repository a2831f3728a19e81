/*
 * migctl_output: what people type and what they read.
 *
 * Sizes, rates, durations and points in time as people write them
 * ("1.5g", "64m/s", "4m", "2h ago" as "2h", "2024-05-01T12:00"), turned into
 * the bytes, seconds and nanoseconds the API speaks; and the reverse for
 * tables: human units and padded columns. Kept apart from the subcommands so
 * every one of them reads and prints the same way.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmdline.h"
#include "migctl.h"
#include "util.h"

/* ---- parsing ---- */

/* Digits with an optional fraction ("4", "1.5"): *end after them. */
static int parse_decimal(const char *text, double *out, const char **end)
{
	const char *p = text;
	double value = 0;
	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	while (isdigit((unsigned char)*p)) {
		value = value * 10 + (*p - '0');
		p++;
	}
	if (*p == '.') {
		double scale = 0.1;
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		while (isdigit((unsigned char)*p)) {
			value += (*p - '0') * scale;
			scale /= 10;
			p++;
		}
	}
	if (!isfinite(value))
		return -ERANGE;
	*out = value;
	*end = p;
	return 0;
}

/* "", "k", "kb", "kib", "b" (any case): the multiplier, or 0 for junk. */
static double size_multiplier(const char *suffix)
{
	static const char units[] = "kmgtp";
	double mult = 1;
	const char *p = suffix;
	const char *u = *p ? strchr(units, tolower((unsigned char)*p)) : NULL;
	if (u) {
		mult = ldexp(1.0, 10 * (int)(u - units + 1));
		p++;
		if (tolower((unsigned char)*p) == 'i')
			p++;
	}
	if (tolower((unsigned char)*p) == 'b')
		p++;
	return *p == '\0' ? mult : 0;
}

int ctl_parse_size(const char *text, uint64_t *out)
{
	double value, mult;
	const char *end;
	int rc = parse_decimal(text, &value, &end);
	if (rc < 0)
		return rc;
	if ((mult = size_multiplier(end)) == 0)
		return -EINVAL;
	if (mult == 1 && value != floor(value))
		return -EINVAL; /* a fraction of a byte */
	double bytes = floor(value * mult + 0.5);
	if (bytes >= 9.2e18)
		return -ERANGE;
	*out = (uint64_t)bytes;
	return 0;
}

int ctl_parse_rate(const char *text, uint64_t *out)
{
	size_t len = strlen(text);
	if (len > 2 && strcmp(text + len - 2, "/s") == 0) {
		char *copy = strndup(text, len - 2);
		if (!copy)
			return -ENOMEM;
		int rc = ctl_parse_size(copy, out);
		free(copy);
		return rc;
	}
	return ctl_parse_size(text, out);
}

int ctl_parse_duration(const char *text, double *out_s)
{
	static const struct {
		const char *unit;
		double seconds;
	} units[] = {
		{ "", 1 }, { "s", 1 }, { "sec", 1 }, { "ms", 0.001 }, { "m", 60 }, { "min", 60 },
		{ "h", 3600 }, { "d", 86400 },
	};
	double value;
	const char *end;
	if (parse_decimal(text, &value, &end) < 0)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(end, units[i].unit) == 0) {
			*out_s = value * units[i].seconds;
			return isfinite(*out_s) ? 0 : -ERANGE;
		}
	}
	return -EINVAL;
}

/* An ISO date-time, local unless it ends in 'Z'. */
static int parse_iso_time(const char *text, int64_t *out_ns)
{
	static const char *const formats[] = {
		"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M",
		"%Y-%m-%d",
	};
	for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
		struct tm tm = { 0 };
		const char *end = strptime(text, formats[i], &tm);
		if (!end)
			continue;
		int utc = 0;
		if (*end == 'Z' || *end == 'z') {
			utc = 1;
			end++;
		}
		if (*end != '\0')
			continue;
		tm.tm_isdst = -1;
		time_t secs = utc ? timegm(&tm) : mktime(&tm);
		if (secs == (time_t)-1)
			return -EINVAL;
		*out_ns = (int64_t)secs * 1000000000;
		return 0;
	}
	return -EINVAL;
}

int ctl_parse_since(const char *text, int64_t now_ns, int64_t *out_ns)
{
	double ago_s;
	if (ctl_parse_duration(text, &ago_s) == 0) {
		*out_ns = now_ns - (int64_t)(ago_s * 1e9);
		return 0;
	}
	return parse_iso_time(text, out_ns);
}

int ctl_parse_id(const char *text, uint64_t *out)
{
	return parse_u64(text, 1, INT64_MAX, out);
}

/* ---- JSON fields ---- */

const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

const char *jstr_or(json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s && *s ? s : dflt;
}

int64_t jint(json_t *o, const char *key, int64_t dflt)
{
	json_t *v = json_object_get(o, key);
	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_real(v))
		return (int64_t)json_real_value(v);
	return dflt;
}

double jnum(json_t *o, const char *key, double dflt)
{
	json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : dflt;
}

int jbool(json_t *o, const char *key, int dflt)
{
	json_t *v = json_object_get(o, key);
	if (json_is_boolean(v))
		return json_is_true(v);
	if (json_is_integer(v))
		return json_integer_value(v) != 0;
	return dflt;
}

/* ---- formatting ---- */

int ctl_print_json(const struct ctl *c, json_t *value)
{
	if (cmdline_print_json(value) < 0) {
		ctl_error(c, "writing to stdout: %s", strerror(errno));
		return MIGCTL_EXIT_FAIL;
	}
	return MIGCTL_EXIT_OK;
}

char *fmt_bytes(int64_t bytes, char *buf, size_t len)
{
	if (bytes < 0)
		snprintf(buf, len, "-");
	else
		format_size((uint64_t)bytes, buf, len);
	return buf;
}

char *fmt_rate(double bps, char *buf, size_t len)
{
	char size[32];
	if (bps < 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%s/s", format_size((uint64_t)bps, size, sizeof(size)));
	return buf;
}

char *fmt_seconds(double s, char *buf, size_t len)
{
	if (s < 0 || !isfinite(s))
		snprintf(buf, len, "-");
	else if (s != floor(s) && s < 60)
		snprintf(buf, len, "%.3gs", s);
	else if (s != floor(s) || (fmod(s, 60) != 0 && s > 60)) { /* 1312.4 -> 21m52s */
		long long t = llround(s);
		if (t >= 3600)
			snprintf(buf, len, "%lldh%02lldm%02llds", t / 3600, t / 60 % 60, t % 60);
		else
			snprintf(buf, len, "%lldm%02llds", t / 60, t % 60);
	}
	else if (s >= 86400 && fmod(s, 86400) == 0)
		snprintf(buf, len, "%.0fd", s / 86400);
	else if (s >= 3600 && fmod(s, 3600) == 0)
		snprintf(buf, len, "%.0fh", s / 3600);
	else if (s >= 60 && fmod(s, 60) == 0)
		snprintf(buf, len, "%.0fm", s / 60);
	else
		snprintf(buf, len, "%.0fs", s);
	return buf;
}

char *fmt_ms(double ms, char *buf, size_t len)
{
	if (ms < 0 || !isfinite(ms))
		snprintf(buf, len, "-");
	else if (ms < 1000)
		snprintf(buf, len, "%.0f ms", ms);
	else if (ms < 60000)
		snprintf(buf, len, "%.2f s", ms / 1000);
	else
		snprintf(buf, len, "%.0fm%02.0fs", floor(ms / 60000), fmod(ms / 1000, 60));
	return buf;
}

char *fmt_time_ns(int64_t ns, char *buf, size_t len)
{
	time_t secs = (time_t)(ns / 1000000000);
	struct tm tm;
	if (ns <= 0 || !localtime_r(&secs, &tm) ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "-");
	return buf;
}

void print_kv(const char *key, const char *value)
{
	char label[64];
	snprintf(label, sizeof(label), "%s:", key);
	printf("%-16s %s\n", label, value && *value ? value : "-");
}

const char *field_label(const char *key, char *label, size_t len)
{
	static const char *const units[] = { "_ns", "_s" };
	snprintf(label, len, "%s", key);
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		size_t n = strlen(label), u = strlen(units[i]);
		if (n > u && strcmp(label + n - u, units[i]) == 0)
			label[n - u] = '\0';
	}
	for (char *p = label; *p; p++)
		*p = *p == '_' ? ' ' : *p;
	return label;
}

char *field_text(const char *key, json_t *v, char *buf, size_t len)
{
	size_t n = strlen(key);
	buf[0] = '\0';
	if (json_is_integer(v) && n > 3 && strcmp(key + n - 3, "_ns") == 0)
		fmt_time_ns(json_integer_value(v), buf, len);
	else if (json_is_number(v) && n > 2 && strcmp(key + n - 2, "_s") == 0)
		fmt_ms(json_number_value(v) * 1000, buf, len);
	else if (json_is_string(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, len, "%s", json_is_true(v) ? "yes" : "no");
	return buf;
}

/* ---- tables ---- */

struct table {
	int n_cols;
	const char *const *headers;
	char **cells; /* n_rows * n_cols, owned */
	size_t n_rows, cap_rows;
};

struct table *table_new(int n_cols, const char *const *headers)
{
	struct table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->n_cols = n_cols;
	t->headers = headers;
	return t;
}

void table_add(struct table *t, ...)
{
	if (!t)
		return;
	if (t->n_rows == t->cap_rows) {
		size_t cap = t->cap_rows ? t->cap_rows * 2 : 32;
		char **cells = realloc(t->cells, cap * (size_t)t->n_cols * sizeof(*cells));
		if (!cells)
			return; /* the row is dropped; the table still prints */
		t->cells = cells;
		t->cap_rows = cap;
	}
	va_list ap;
	va_start(ap, t);
	char **row = &t->cells[t->n_rows * (size_t)t->n_cols];
	for (int i = 0; i < t->n_cols; i++) {
		const char *cell = va_arg(ap, const char *);
		row[i] = strdup(cell && *cell ? cell : "-");
	}
	va_end(ap);
	t->n_rows++;
}

/* A header "<NAME" is left-aligned, ">NAME" right-aligned; plain: left. */
static int right_aligned(const char *header)
{
	return header[0] == '>';
}

static const char *header_text(const char *header)
{
	return header[0] == '>' || header[0] == '<' ? header + 1 : header;
}

static void print_cell(FILE *out, const char *text, int width, int right, int last)
{
	if (last && !right)
		fputs(text, out);
	else if (right)
		fprintf(out, "%*s", width, text);
	else
		fprintf(out, "%-*s", width, text);
	fputs(last ? "\n" : "  ", out);
}

void table_print_part(struct table *t, FILE *out, struct table_widths *w)
{
	if (!t)
		return;
	int n = t->n_cols < 32 ? t->n_cols : 32;
	if (!w->started)
		for (int i = 0; i < n; i++)
			w->width[i] = (int)strlen(header_text(t->headers[i]));
	for (size_t r = 0; r < t->n_rows; r++)
		for (int i = 0; i < n; i++) {
			const char *cell = t->cells[r * (size_t)t->n_cols + i];
			int cw = cell ? (int)strlen(cell) : 1;
			w->width[i] = cw > w->width[i] ? cw : w->width[i];
		}
	if (!w->started)
		for (int i = 0; i < n; i++)
			print_cell(out, header_text(t->headers[i]), w->width[i],
				   right_aligned(t->headers[i]), i == n - 1);
	w->started = 1;
	for (size_t r = 0; r < t->n_rows; r++)
		for (int i = 0; i < n; i++) {
			const char *cell = t->cells[r * (size_t)t->n_cols + i];
			print_cell(out, cell ? cell : "-", w->width[i], right_aligned(t->headers[i]),
				   i == n - 1);
		}
}

void table_print(struct table *t, FILE *out)
{
	struct table_widths w = { 0 };
	table_print_part(t, out, &w);
}

void table_free(struct table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_rows * (size_t)t->n_cols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}
