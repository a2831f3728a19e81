/*
 * sfsd: the sfs server daemon. Thin on purpose: options and the config
 * file are handled here, everything else is server_run() (one server) or
 * server_run_all() (every server of the config, one process each).
 *
 * The server is chosen with -n NAME, so checking the config is --check
 * rather than the -n of OpenBSD daemons.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "sfs_conf.h"

#ifndef MIGD_VERSION
#define MIGD_VERSION "unknown"
#endif

#define MAX_OVERRIDES 64
#define EXIT_USAGE 2

enum { OPT_ALL = 256, OPT_CHECK, OPT_DUMP, OPT_VERSION, OPT_SYSLOG };

struct options {
	const char *conf_path;
	const char *name;
	int all, check, dump, debug, syslog;
	const char *overrides[MAX_OVERRIDES];
	unsigned n_overrides;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sfsd -c CONF -n NAME [-o KEY=VALUE]... [-d] [--syslog]\n"
		"       sfsd -c CONF --all [-o KEY=VALUE]... [-d] [--syslog]\n"
		"       sfsd -c CONF --check [-n NAME] [-o KEY=VALUE]...\n"
		"       sfsd -c CONF --dump-config [-o KEY=VALUE]...\n"
		"\n"
		"Run servers of the sfs file system described by CONF (see sfs.conf(5)),\n"
		"in the foreground until SIGTERM or SIGINT.\n"
		"\n"
		"  -c, --config CONF     the file system's sfs.conf (default: $SFS_CONF)\n"
		"  -n, --name NAME       run the server [server NAME] of CONF\n"
		"      --all             run every server of CONF, one process each\n"
		"      --check           validate CONF (and NAME if given), exit 0 or 1\n"
		"      --dump-config     print the configuration in effect and exit\n"
		"  -o, --option K=V      override a [global] option (repeatable)\n"
		"  -d, --debug           log every request\n"
		"      --syslog          log to syslog instead of stderr\n"
		"  -h, --help            this help\n"
		"      --version         print the version\n"
		"\n"
		"Prometheus metrics: a [metrics] section in CONF (see sfs.conf(5)).\n"
		"\n"
		"[global] options for -o:\n");
	sfs_conf_describe(out);
}

/* Returns -1 to go on, or the exit status. */
static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "name", required_argument, NULL, 'n' },
		{ "option", required_argument, NULL, 'o' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "dump-config", no_argument, NULL, OPT_DUMP },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "syslog", no_argument, NULL, OPT_SYSLOG },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "c:n:o:dh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->conf_path = optarg; break;
		case 'n': o->name = optarg; break;
		case 'd': o->debug = 1; break;
		case OPT_ALL: o->all = 1; break;
		case OPT_CHECK: o->check = 1; break;
		case OPT_DUMP: o->dump = 1; break;
		case OPT_SYSLOG: o->syslog = 1; break;
		case 'o':
			if (o->n_overrides == MAX_OVERRIDES) {
				fprintf(stderr, "sfsd: more than %d -o options\n", MAX_OVERRIDES);
				return EXIT_USAGE;
			}
			o->overrides[o->n_overrides++] = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("sfsd (migd) %s, sfs protocol %d\n", MIGD_VERSION, SFS_PROTO_VERSION);
			return 0;
		default:
			fprintf(stderr, "Try 'sfsd --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sfsd: unexpected argument \"%s\"\nTry 'sfsd --help'.\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	if (!o->conf_path)
		o->conf_path = getenv("SFS_CONF");
	if (!o->conf_path) {
		fprintf(stderr, "sfsd: no config: give -c CONF or set SFS_CONF\n");
		return EXIT_USAGE;
	}
	if (o->all && o->name) {
		fprintf(stderr, "sfsd: -n NAME and --all exclude each other\n");
		return EXIT_USAGE;
	}
	if (!o->check && !o->dump && !o->all && !o->name) {
		fprintf(stderr, "sfsd: say which server to run: -n NAME or --all\n"
				"Try 'sfsd --help'.\n");
		return EXIT_USAGE;
	}
	return -1;
}

/* Load, override, validate: 0 or -errno with the message in err. */
static int load_config(const struct options *o, struct sfs_conf *conf, char *err,
		       size_t errlen)
{
	int rc = sfs_conf_load(o->conf_path, conf, err, errlen);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < o->n_overrides; i++) {
		rc = sfs_conf_override(conf, o->overrides[i], err, errlen);
		if (rc < 0)
			return rc;
	}
	if (o->n_overrides)
		rc = sfs_conf_validate(conf, err, errlen);
	if (rc == 0 && o->name && !sfs_conf_find(conf, o->name, NULL)) {
		snprintf(err, errlen, "%s: no [server %s]", o->conf_path, o->name);
		rc = -ENOENT;
	}
	return rc;
}

/* File scope: a server's connection threads may still read it after main
 * returns (see below). */
static struct sfs_conf *conf;

int main(int argc, char **argv)
{
	struct options o = { 0 };
	char err[1024];
	int rc = parse_options(argc, argv, &o);
	if (rc >= 0)
		return rc;
	log_init("sfsd", o.syslog);
	if (o.debug)
		log_set_level(LOG_LEVEL_DEBUG);
	conf = malloc(sizeof(*conf)); /* ~90 KiB */
	if (!conf) {
		fprintf(stderr, "sfsd: out of memory\n");
		return 1;
	}
	if (load_config(&o, conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "sfsd: %s\n", err);
		rc = 1;
	} else if (o.check) {
		printf("%s: ok\n", o.conf_path);
		rc = 0;
	} else if (o.dump) {
		sfs_conf_dump(conf, stdout);
		rc = 0;
	} else if (o.all) {
		rc = server_run_all(conf);
	} else {
		/* conf is not freed: connections still busy after a stop (see
		 * server_run) go on using it until the process exits. */
		return server_run(conf, sfs_conf_find(conf, o.name, NULL), -1) == 0 ? 0 : 1;
	}
	free(conf);
	return rc;
}
