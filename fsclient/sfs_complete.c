/*
 * sfs_complete: `sfs __complete WORD... CUR`, behind the bash completion
 * in dist/completion/sfs. Subcommands from the dispatch table, options and
 * arguments from each one's usage text (common/complete.c). Paths are
 * completed as local files ("@files"): sfs:/ paths would need the file
 * system mounted or connected, which completion does not do.
 */
#include <stdio.h>
#include <string.h>

#include "complete.h"
#include "sfs_cmd.h"

static const char *const global_options[] = {
	"--config", "--json", "--quiet", "--help", "--version",
};

static int global_value_option(const char *word)
{
	return strcmp(word, "-c") == 0 || strcmp(word, "--config") == 0 || strcmp(word, "-o") == 0;
}

/* Every metavar of sfs is a path or a value: paths complete as files. */
static void expand(const char *metavar, void *arg)
{
	static const char *const paths[] = { "PATH", "DIR", "SRC", "DST", "FILE", "MOUNTPOINT",
					     "CONF" };
	(void)arg;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (strcmp(metavar, paths[i]) == 0) {
			printf("@files\n");
			return;
		}
}

static void complete_args(const struct subcmd *sub, char **words, int n, const char *cur)
{
	char metavar[64], name[64];
	unsigned pos = 0;
	for (int k = 0; k < n - 1; k++) {
		const char *w = words[k];
		if (w[0] != '-') {
			pos++;
			continue;
		}
		if (strchr(w, '=') || !complete_option_value(sub->usage, w, metavar, sizeof(metavar)))
			continue;
		if (k == n - 2) { /* completing this option's value */
			expand(metavar, NULL);
			return;
		}
		k++;
	}
	if (cur[0] == '-') {
		complete_options(stdout, cur, sub->usage);
		return;
	}
	snprintf(name, sizeof(name), "sfs %s", sub->name);
	complete_positional(stdout, cur, sub->usage, name, pos, expand, NULL);
}

int sfs_complete(int argc, char **argv)
{
	const char *cur = argc > 0 ? argv[argc - 1] : "";
	int i = 0;
	while (i < argc - 1 && argv[i][0] == '-') { /* global options first */
		if (global_value_option(argv[i]) && i == argc - 2) {
			if (strcmp(argv[i], "-o") != 0)
				printf("@files\n"); /* -c CONF */
			return 0;
		}
		i += global_value_option(argv[i]) ? 2 : 1;
	}
	if (i >= argc - 1) {
		for (size_t k = 0; cur[0] == '-' && k < sizeof(global_options) / sizeof(*global_options); k++)
			complete_word(stdout, cur, global_options[k]);
		for (size_t k = 0; cur[0] != '-' && k < n_subcmds; k++)
			complete_word(stdout, cur, subcmds[k].name);
		if (cur[0] != '-')
			complete_word(stdout, cur, "help");
		return 0;
	}
	for (size_t k = 0; k < n_subcmds; k++)
		if (strcmp(subcmds[k].name, argv[i]) == 0)
			complete_args(&subcmds[k], argv + i + 1, argc - i - 1, cur);
	return 0;
}
