/*
 * migctl_complete: `migctl __complete WORD... CUR`, the engine behind the
 * bash completion in dist/completion/migctl.
 *
 * Subcommands come from the dispatch table, options and arguments from
 * each subcommand's usage text (common/complete.c reads it), and the names
 * a metavar stands for (HOST, GUEST, JOB, a policy's NAME) from migd,
 * with a short timeout: a migd that is down just completes no names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "complete.h"
#include "migctl.h"

#define COMPLETE_TIMEOUT_MS 1000

static const char *const global_options[] = {
	"--connect", "--events", "--json", "--timeout", "--quiet", "--help", "--version",
};

struct expand_ctx {
	struct ctl *c;
	const struct subcmd *sub; /* NULL: a global option's value */
	const char *option;       /* the option whose value this is, or NULL */
	const char *cur;
};

/* Options of every subcommand that take a value. */
static int common_value_option(const char *word)
{
	return strcmp(word, "--connect") == 0 || strcmp(word, "--events") == 0 ||
	       strcmp(word, "--timeout") == 0;
}

static void print_names(struct expand_ctx *x, const char *cmd)
{
	json_t *list = NULL, *root = NULL, *result;
	if (strcmp(cmd, "host.list") == 0 || strcmp(cmd, "guest.list") == 0) {
		if (ctl_list(x->c, cmd, NULL, 0, NULL, &list) != 0)
			return;
		result = list;
	} else if (ctl_call(x->c, cmd, NULL, &root, &result) != 0) {
		return;
	}
	size_t i;
	json_t *it;
	json_array_foreach(result, i, it)
		complete_word(stdout, x->cur, jstr(it, "name"));
	json_decref(list);
	json_decref(root);
}

/* What a metavar names: the list request of migd that has them, or NULL. */
static const char *names_of(const struct expand_ctx *x, const char *metavar)
{
	const char *opt = x->option ? x->option : "";
	if (strcmp(metavar, "HOST") == 0 || strcmp(opt, "--host") == 0 || strcmp(opt, "--to") == 0)
		return "host.list";
	if (strcmp(metavar, "GUEST") == 0)
		return "guest.list";
	if (strcmp(metavar, "JOB") == 0 || strcmp(opt, "--job") == 0)
		return "job.list";
	if (strcmp(metavar, "POLICY") == 0 || strcmp(opt, "--policy") == 0)
		return "policy.list";
	/* NAME: of the noun's kind, except where add makes a new one */
	if (strcmp(metavar, "NAME") == 0 && x->sub && x->sub->verb && !x->option &&
	    strcmp(x->sub->verb, "add") != 0) {
		if (strcmp(x->sub->noun, "host") == 0)
			return "host.list";
		if (strcmp(x->sub->noun, "guest") == 0)
			return "guest.list";
		if (strcmp(x->sub->noun, "policy") == 0)
			return "policy.list";
	}
	return NULL;
}

static void expand(const char *metavar, void *arg)
{
	struct expand_ctx *x = arg;
	if (strcmp(metavar, "FILE") == 0) {
		printf("@files\n");
		return;
	}
	const char *cmd = names_of(x, metavar);
	if (cmd)
		print_names(x, cmd);
}

/* The first word: a subcommand (a noun once), or a global option. */
static void complete_first(const char *cur)
{
	if (cur[0] == '-') {
		for (size_t i = 0; i < sizeof(global_options) / sizeof(global_options[0]); i++)
			complete_word(stdout, cur, global_options[i]);
		return;
	}
	complete_word(stdout, cur, "help");
	for (size_t i = 0; i < n_subcmds; i++) {
		size_t j = 0;
		while (j < i && strcmp(subcmds[j].noun, subcmds[i].noun) != 0)
			j++;
		if (j == i)
			complete_word(stdout, cur, subcmds[i].noun);
	}
}

static void complete_verb(const char *noun, const char *cur)
{
	for (size_t i = 0; i < n_subcmds; i++)
		if (subcmds[i].verb && strcmp(subcmds[i].noun, noun) == 0)
			complete_word(stdout, cur, subcmds[i].verb);
}

/* After the subcommand's words: an option, an option's value, or the
 * pos-th positional argument. */
static void complete_args(struct expand_ctx *x, char **words, int n)
{
	const struct subcmd *sub = x->sub;
	char metavar[64], name[64];
	unsigned pos = 0;
	for (int k = 0; k < n - 1; k++) {
		const char *w = words[k];
		if (w[0] != '-') {
			pos++;
			continue;
		}
		if (strchr(w, '='))
			continue;
		int takes = common_value_option(w) || complete_option_value(sub->usage, w, metavar,
									     sizeof(metavar));
		if (!takes)
			continue;
		if (k == n - 2) { /* the word being completed is this option's value */
			x->option = w;
			if (common_value_option(w))
				return;
			expand(metavar, x);
			return;
		}
		if (strcmp(w, "--connect") == 0)
			x->c->endpoint = words[k + 1];
		k++;
	}
	if (x->cur[0] == '-') {
		complete_options(stdout, x->cur, sub->usage);
		for (size_t i = 0; i + 1 < sizeof(global_options) / sizeof(global_options[0]); i++)
			if (!strstr(sub->usage, global_options[i])) /* said already */
				complete_word(stdout, x->cur, global_options[i]);
		return;
	}
	snprintf(name, sizeof(name), "migctl %s%s%s", sub->noun, sub->verb ? " " : "",
		 sub->verb ? sub->verb : "");
	complete_positional(stdout, x->cur, sub->usage, name, pos, expand, x);
}

int ctl_complete(struct ctl *c, int argc, char **argv)
{
	const char *cur = argc > 0 ? argv[argc - 1] : "";
	int i = 0;
	if (!c->timeout_set)
		c->timeout_ms = COMPLETE_TIMEOUT_MS;
	while (i < argc - 1 && argv[i][0] == '-') { /* global options first */
		if (common_value_option(argv[i]) && i + 1 < argc - 1) {
			if (strcmp(argv[i], "--connect") == 0)
				c->endpoint = argv[i + 1];
			else if (strcmp(argv[i], "--timeout") == 0)
				c->timeout_ms = atol(argv[i + 1]); /* 0 (forever) is the user's */
			i++;
		} else if (common_value_option(argv[i])) {
			return MIGCTL_EXIT_OK; /* completing --connect's value: nothing to offer */
		}
		i++;
	}
	if (i >= argc - 1) {
		complete_first(cur);
	} else if (i == argc - 2 && !find_subcmd(1, argv + i, &(int){ 0 })) {
		complete_verb(argv[i], cur);
	} else {
		int words;
		const struct subcmd *sub = find_subcmd(argc - 1 - i, argv + i, &words);
		if (sub) {
			struct expand_ctx x = { .c = c, .sub = sub, .cur = cur };
			complete_args(&x, argv + i + words, argc - i - words);
		}
	}
	fflush(stdout);
	ctl_close(c);
	return MIGCTL_EXIT_OK;
}
