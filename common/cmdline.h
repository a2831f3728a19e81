/*
 * cmdline: what the project's commands (migctl, sfs) share in talking to
 * the person who typed them: "PROG: SUB: message" errors, the "Try 'PROG
 * SUB --help'." hint, getopt with quiet errors and the offending option as
 * it was typed, and JSON on stdout. Each command keeps its own struct,
 * exit codes and wrappers; these take the program and subcommand by name.
 */
#ifndef MIGD_CMDLINE_H
#define MIGD_CMDLINE_H

#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>

/* "PROG: SUB: <message>\n" on stderr; "PROG: <message>\n" when sub is NULL. */
void cmdline_verror(const char *prog, const char *sub, const char *fmt, va_list ap);
/* "Try 'PROG SUB --help'.\n" on stderr ("Try 'PROG --help'." when sub is NULL). */
void cmdline_try_help(const char *prog, const char *sub);
/*
 * Report the getopt error opt (':' a missing value, anything else an
 * unknown option) naming the option as typed, then the --help hint.
 */
void cmdline_option_error(const char *prog, const char *sub, int opt, char **argv);
/*
 * getopt_long with the project's conventions: ':' reporting, quiet errors,
 * and the letters in extra (e.g. "h") accepted after optstring; optstring
 * must not start with '+' or ':'.
 */
int cmdline_getopt(int argc, char **argv, const char *optstring, const char *extra,
		   const struct option *longopts);
/* Print value on stdout, indented, and a newline; it stays the caller's.
 * Returns 0, or -1 with errno set when stdout could not be written. */
int cmdline_print_json(json_t *value);

#endif
