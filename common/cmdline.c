/*
 * cmdline: messages and option helpers shared by migctl and sfs, so that
 * both commands word their errors and hints the same way (see cmdline.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cmdline.h"

void cmdline_verror(const char *prog, const char *sub, const char *fmt, va_list ap)
{
	if (sub)
		fprintf(stderr, "%s: %s: ", prog, sub);
	else
		fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void cmdline_try_help(const char *prog, const char *sub)
{
	if (sub)
		fprintf(stderr, "Try '%s %s --help'.\n", prog, sub);
	else
		fprintf(stderr, "Try '%s --help'.\n", prog);
}

/* The option as the user typed it, for messages about it. */
static const char *option_text(char **argv, char *buf, size_t len)
{
	const char *arg = optind > 0 ? argv[optind - 1] : NULL;
	if (arg && strncmp(arg, "--", 2) == 0)
		return arg;
	snprintf(buf, len, "-%c", isprint(optopt) ? optopt : '?');
	return buf;
}

static void error_line(const char *prog, const char *sub, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void error_line(const char *prog, const char *sub, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cmdline_verror(prog, sub, fmt, ap);
	va_end(ap);
}

void cmdline_option_error(const char *prog, const char *sub, int opt, char **argv)
{
	char buf[8];
	const char *text = option_text(argv, buf, sizeof(buf));
	if (opt == ':')
		error_line(prog, sub, "option \"%s\" needs a value", text);
	else
		error_line(prog, sub, "unknown option \"%s\"", text);
	cmdline_try_help(prog, sub);
}

int cmdline_getopt(int argc, char **argv, const char *optstring, const char *extra,
		   const struct option *longopts)
{
	char full[64];
	snprintf(full, sizeof(full), ":%s%s", optstring, extra);
	return getopt_long(argc, argv, full, longopts, NULL);
}

int cmdline_print_json(json_t *value)
{
	int rc = json_dumpf(value, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
	fputc('\n', stdout);
	return rc < 0 || fflush(stdout) != 0 ? -1 : 0;
}
