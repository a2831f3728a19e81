/*
 * complete: candidates for shell completion from usage texts (complete.h).
 * The parsing is of our own usage strings only: tokens split on blanks,
 * brackets and '|' dropped, an option followed by an upper-case word takes
 * that word as its value.
 */
#include "complete.h"

#include <ctype.h>
#include <string.h>

#define MAX_TOKENS 64
#define TOKEN_LEN 64

void complete_word(FILE *out, const char *cur, const char *word)
{
	if (strncmp(word, cur, strlen(cur)) == 0)
		fprintf(out, "%s\n", word);
}

static int is_metavar(const char *t)
{
	if (!isupper((unsigned char)t[0]))
		return 0;
	for (; *t; t++)
		if (islower((unsigned char)*t))
			return 0;
	return 1;
}

/* One line's tokens, brackets and '|' gone, quotes kept out; closed[i]
 * says a ']' or '|' ends token i's group ("[--json] [PATH]": PATH is not
 * --json's value). */
static unsigned tokens(const char *line, size_t len, char tok[][TOKEN_LEN], int *closed)
{
	unsigned n = 0;
	size_t i = 0;
	while (i < len && n < MAX_TOKENS) {
		while (i < len && strchr(" \t[]|\"", line[i]))
			i++;
		size_t start = i;
		while (i < len && !strchr(" \t[]|\"", line[i]))
			i++;
		if (i > start && i - start < TOKEN_LEN) {
			memcpy(tok[n], line + start, i - start);
			tok[n][i - start] = '\0';
			size_t j = i;
			while (j < len && line[j] == ' ')
				j++;
			closed[n++] = j < len && (line[j] == ']' || line[j] == '|');
		}
	}
	return n;
}

void complete_options(FILE *out, const char *cur, const char *usage)
{
	char seen[4096] = " ";
	for (const char *p = strstr(usage, "--"); p; p = strstr(p + 2, "--")) {
		if (p > usage && !strchr(" \t[|,(", p[-1]))
			continue;
		size_t n = 2;
		while (isalnum((unsigned char)p[n]) || p[n] == '-')
			n++;
		if (n == 2 || n > 60)
			continue;
		char opt[64];
		memcpy(opt, p, n);
		opt[n] = '\0';
		char key[68];
		snprintf(key, sizeof(key), " %s ", opt);
		if (strstr(seen, key) || strlen(seen) + n + 2 >= sizeof(seen))
			continue;
		strcat(seen, opt);
		strcat(seen, " ");
		complete_word(out, cur, opt);
	}
}

int complete_option_value(const char *usage, const char *option, char *metavar, size_t len)
{
	size_t olen = strlen(option);
	for (const char *p = strstr(usage, option); p; p = strstr(p + olen, option)) {
		const char *after = p + olen;
		if ((p > usage && !strchr(" \t[|,(", p[-1])) ||
		    isalnum((unsigned char)*after) || *after == '-')
			continue;
		if (*after == '=')
			after++;
		else if (*after == ' ')
			after++;
		else
			continue;
		size_t n = 0;
		while (after[n] && !strchr(" \t[]|\n", after[n]))
			n++;
		if (n == 0 || !(isupper((unsigned char)after[0]) || after[0] == '"'))
			continue;
		snprintf(metavar, len, "%.*s", (int)n, after[0] == '"' ? "" : after);
		return 1;
	}
	return 0;
}

/* Only blanks, or blanks around "usage:", from line to at. */
static int usage_line(const char *line, const char *at)
{
	while (line < at && isspace((unsigned char)*line))
		line++;
	if (at - line >= 6 && strncmp(line, "usage:", 6) == 0)
		line += 6;
	while (line < at && isspace((unsigned char)*line))
		line++;
	return line == at;
}

void complete_positional(FILE *out, const char *cur, const char *usage, const char *cmd,
			 unsigned index, void (*expand)(const char *metavar, void *arg), void *arg)
{
	char tok[MAX_TOKENS][TOKEN_LEN];
	int closed[MAX_TOKENS];
	char expanded[512] = " ";
	size_t clen = strlen(cmd);
	for (const char *line = usage; *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		const char *at = memmem(line, len, cmd, clen);
		if (at && strchr(" \n", at[clen]) && usage_line(line, at)) {
			unsigned n = tokens(at + clen, len - (size_t)(at + clen - line), tok, closed), pos = 0;
			for (unsigned i = 0; i < n; i++) {
				if (tok[i][0] == '-') {
					if (!closed[i] && i + 1 < n && is_metavar(tok[i + 1]))
						i++;
					continue;
				}
				size_t tl = strlen(tok[i]);
				int rest = tl > 3 && strcmp(tok[i] + tl - 3, "...") == 0;
				if (rest)
					tok[i][tl - 3] = '\0';
				if (pos == index || (rest && index > pos)) {
					char key[TOKEN_LEN + 2];
					snprintf(key, sizeof(key), " %s ", tok[i]);
					if (!is_metavar(tok[i]))
						complete_word(out, cur, tok[i]);
					else if (expand && !strstr(expanded, key) &&
						 strlen(expanded) + tl + 2 < sizeof(expanded)) {
						strcat(expanded, tok[i]);
						strcat(expanded, " ");
						expand(tok[i], arg);
					}
					break;
				}
				pos++;
			}
		}
		line += len + (end ? 1 : 0);
	}
}
