/*
 * migctl_import: `host add --from FILE` and `guest add --from FILE`, a
 * site's whole cluster registered at once.
 *
 * One request per item would cost one commit (one fsync) each in migd, and
 * a process start each from a shell loop: 100,000 guests took minutes. So
 * the items go to host.add_many / guest.add_many a thousand per request,
 * which migd adds in one transaction, each item on its own (a bad one is
 * reported, the others added). A line of a text file is parsed exactly as
 * the same words on the command line, so the two never disagree.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migctl.h"

#define IMPORT_CHUNK 1000
#define LINE_WORDS_MAX 64

struct import {
	json_t *items;    /* the API's objects */
	json_t *lines;    /* each item's line in a text file (0: JSON) */
};

/* Split line into words in place: blanks separate, '...' and "..." quote,
 * a backslash outside single quotes takes the next character. */
static int split_words(char *line, char **words, int max, const char **why)
{
	int n = 0;
	char *in = line, *out = line;
	while (*in) {
		while (*in == ' ' || *in == '\t')
			in++;
		if (!*in || *in == '#')
			break;
		if (n == max) {
			*why = "too many words";
			return -1;
		}
		words[n++] = out;
		char quote = 0;
		for (; *in && (quote || (*in != ' ' && *in != '\t')); in++) {
			if (quote && *in == quote) {
				quote = 0;
			} else if (!quote && (*in == '\'' || *in == '"')) {
				quote = *in;
			} else if (*in == '\\' && quote != '\'' && in[1]) {
				*out++ = *++in;
			} else {
				*out++ = *in;
			}
		}
		if (quote) {
			*why = "a quote is not closed";
			return -1;
		}
		if (*in)
			in++;
		*out++ = '\0';
	}
	return n;
}

static int read_text(struct ctl *c, FILE *f, const char *path, ctl_line_fn parse_line,
		     struct import *im)
{
	char *line = NULL, where[300];
	size_t cap = 0;
	int lineno = 0, rc = 0;
	while (rc == 0 && getline(&line, &cap, f) >= 0) {
		char *words[LINE_WORDS_MAX + 2];
		const char *why = NULL;
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		c->where = where;
		words[0] = (char *)c->name;
		int n = split_words(line, words + 1, LINE_WORDS_MAX, &why);
		if (n < 0) {
			rc = ctl_usage_error(c, "%s", why);
		} else if (n > 0) {
			words[n + 1] = NULL;
			json_t *args = json_object();
			optind = 0; /* GNU getopt starts over */
			int prc = parse_line(c, n + 1, words, args);
			if (prc == CTL_CONTINUE) {
				json_array_append_new(im->items, args);
				json_array_append_new(im->lines, json_integer(lineno));
			} else {
				json_decref(args);
				rc = prc ? prc : MIGCTL_EXIT_USAGE; /* --help in a file is an error */
			}
		}
		c->where = NULL;
	}
	free(line);
	return rc;
}

static int read_items(struct ctl *c, const char *path, ctl_line_fn parse_line,
		      struct import *im)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (!f) {
		ctl_error(c, "--from %s: %s", path, strerror(errno));
		return MIGCTL_EXIT_USAGE;
	}
	int first = fgetc(f);
	while (first == ' ' || first == '\t' || first == '\n' || first == '\r')
		first = fgetc(f);
	if (first != EOF)
		ungetc(first, f);
	int rc = 0;
	if (first == '[') {
		json_error_t jerr;
		json_t *arr = json_loadf(f, 0, &jerr);
		size_t i;
		json_t *it;
		if (!json_is_array(arr)) {
			rc = ctl_usage_error(c, "--from %s: line %d: %s", path, jerr.line,
					     arr ? "expected an array of objects" : jerr.text);
		} else {
			json_array_foreach(arr, i, it) {
				json_array_append(im->items, it);
				json_array_append_new(im->lines, json_integer(0));
			}
		}
		json_decref(arr);
	} else {
		rc = read_text(c, f, path, parse_line, im);
	}
	if (f != stdin)
		fclose(f);
	return rc;
}

/* Send the items in chunks; failures get their index across all chunks
 * and their line. */
static int send_items(struct ctl *c, const char *cmd, struct import *im, size_t *added,
		      json_t *failed)
{
	size_t total = json_array_size(im->items);
	for (size_t start = 0; start < total; start += IMPORT_CHUNK) {
		json_t *chunk = json_array(), *root, *result, *f;
		size_t i;
		for (i = start; i < total && i < start + IMPORT_CHUNK; i++)
			json_array_append(chunk, json_array_get(im->items, i));
		int rc = ctl_call(c, cmd, json_pack("{s:o}", "items", chunk), &root, &result);
		if (rc != 0)
			return rc;
		*added += (size_t)json_integer_value(json_object_get(result, "added"));
		json_array_foreach(json_object_get(result, "failed"), i, f) {
			size_t index = start + (size_t)json_integer_value(json_object_get(f, "index"));
			json_t *copy = json_deep_copy(f);
			json_object_set_new(copy, "index", json_integer((json_int_t)index));
			json_object_set(copy, "line", json_array_get(im->lines, index));
			json_array_append_new(failed, copy);
		}
		json_decref(root);
	}
	return 0;
}

int ctl_add_from(struct ctl *c, const char *path, const char *cmd, const char *noun,
		 ctl_line_fn parse_line)
{
	struct import im = { json_array(), json_array() };
	json_t *failed = json_array(), *f;
	size_t added = 0, i;
	int rc = read_items(c, path, parse_line, &im);
	if (rc == 0)
		rc = send_items(c, cmd, &im, &added, failed);
	if (rc == 0 && c->json) {
		json_t *out = json_pack("{s:I, s:O}", "added", (json_int_t)added, "failed", failed);
		rc = ctl_print_json(c, out);
		json_decref(out);
	} else if (rc == 0) {
		printf("%zu %s%s added\n", added, noun, added == 1 ? "" : "s");
		json_array_foreach(failed, i, f) {
			json_int_t line = json_integer_value(json_object_get(f, "line"));
			const char *name = json_string_value(json_object_get(f, "name"));
			char at[32];
			if (line)
				snprintf(at, sizeof(at), ":%lld", (long long)line);
			else
				snprintf(at, sizeof(at), "[%lld]",
					 (long long)json_integer_value(json_object_get(f, "index")));
			ctl_error(c, "%s%s: %s%s%s", path, at, name ? name : "", name ? ": " : "",
				  json_string_value(json_object_get(f, "error")));
		}
	}
	if (rc == 0 && json_array_size(failed))
		rc = MIGCTL_EXIT_FAIL;
	json_decref(failed);
	json_decref(im.items);
	json_decref(im.lines);
	return rc;
}
