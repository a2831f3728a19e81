/*
 * complete: shell completion from a command's own usage texts, for the
 * hidden `migctl __complete` and `sfs __complete` that the bash scripts in
 * dist/completion call. The usage text is already the one place that
 * names a subcommand's options and arguments, so completion reads it
 * rather than keeping a second list that would drift:
 *
 *   usage: migctl migrate GUEST [--to HOST] [--wait]
 *          ~~~~~~~~~~~~~~ cmd   positional 0 is GUEST; --to takes a HOST
 *
 * Candidates are printed one per line, only those that start with the word
 * being completed. A metavar (GUEST, HOST, PATH) is handed back to the
 * program, which knows what names it stands for.
 */
#ifndef MIGD_COMPLETE_H
#define MIGD_COMPLETE_H

#include <stdio.h>

/* Print word if it starts with cur. */
void complete_word(FILE *out, const char *cur, const char *word);
/* Every --long option that usage mentions and that starts with cur. */
void complete_options(FILE *out, const char *cur, const char *usage);
/* Whether usage shows option (e.g. "--to") with a value; its metavar ("HOST")
 * into metavar ("" when the option takes one but shows no name). */
int complete_option_value(const char *usage, const char *option, char *metavar, size_t len);
/*
 * The index-th positional argument (0-based, after the words of cmd, e.g.
 * "migctl migrate") in every usage line of cmd: a literal word ("create")
 * is printed if it starts with cur; a metavar ("GUEST") is passed to
 * expand(metavar, arg), once each. A final "PATH..." stands for every
 * index from its own on.
 */
void complete_positional(FILE *out, const char *cur, const char *usage, const char *cmd,
			 unsigned index, void (*expand)(const char *metavar, void *arg), void *arg);

#endif
