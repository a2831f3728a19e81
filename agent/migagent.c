/*
 * migagent: the in-guest agent of migd. Thin on purpose: options here,
 * everything else in agent.c (migd side, commands) and local.c (the libsfs
 * clients). See man/migagent.8.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "agent_proto.h"
#include "log.h"
#include "util.h"

#ifndef MIGD_VERSION
#define MIGD_VERSION "unknown"
#endif

#define EXIT_USAGE 2

enum { OPT_VERSION = 256, OPT_SYSLOG, OPT_ACTIVITY, OPT_RECONNECT_MAX, OPT_KEY, OPT_SERVER_KEY };

static void usage(FILE *out)
{
	fprintf(out,
		"usage: migagent [--migd ENDPOINT] [--guest NAME] [--socket PATH]\n"
		"                [--watchdog TIME] [--activity-interval TIME]\n"
		"                [--reconnect-max TIME] [--key FILE [--server-key FILE]]\n"
		"                [-d] [--syslog]\n"
		"\n"
		"Quiesce and resume the sfs I/O of this machine's processes on migd's\n"
		"command, and report their I/O activity every second. Runs in the\n"
		"foreground until SIGTERM or SIGINT; every held client is resumed first.\n"
		"\n"
		"  -m, --migd ENDPOINT        migd's agent endpoint (tcp://HOST:PORT); without\n"
		"                             it only the local socket is served\n"
		"  -g, --guest NAME           the guest name told to migd (default: host name)\n"
		"  -s, --socket PATH          the socket libsfs clients register on\n"
		"                             (default %s)\n"
		"  -w, --watchdog TIME        resume by itself this long after a quiesce with\n"
		"                             no resume (default 10s)\n"
		"      --activity-interval T  activity report period (default 1s)\n"
		"      --reconnect-max TIME   longest wait between reconnects to migd (default 5s)\n"
		"      --key FILE             this guest's CURVE key pair (NAME.key); migd with\n"
		"                             keys hears only the agent whose key it recorded\n"
		"                             for the guest (default: none)\n"
		"      --server-key FILE      migd's public key to pin (default: migd.pub beside\n"
		"                             --key)\n"
		"  -d, --debug                log debug lines too\n"
		"      --syslog               log to syslog instead of stderr\n"
		"  -h, --help                 this help\n"
		"      --version              print the version\n"
		"\n"
		"TIME is milliseconds, or a number with ms or s (\"500ms\", \"10s\").\n"
		"Exit status: 0 stopped by a signal, 1 could not start or failed, 2 usage.\n",
		AGENT_SOCKET_DEFAULT);
}

/* "250", "250ms", "10s" -> milliseconds in [1, 86400000]. */
static int parse_time_ms(const char *text, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || end == text || text[0] == '-')
		return -EINVAL;
	if (strcmp(end, "s") == 0)
		v *= 1000;
	else if (*end && strcmp(end, "ms") != 0)
		return -EINVAL;
	if (v == 0 || v > 86400000ull)
		return -ERANGE;
	*out = (unsigned)v;
	return 0;
}

static int time_option(const char *name, const char *value, unsigned *out)
{
	if (parse_time_ms(value, out) == 0)
		return 0;
	fprintf(stderr, "migagent: %s \"%s\": expected a time like 500ms or 10s (1ms..24h)\n"
			"Try 'migagent --help'.\n", name, value);
	return -1;
}

/* Returns -1 to go on, or the exit status. */
static int parse_options(int argc, char **argv, struct agent_opts *o, int *debug, int *syslog)
{
	static const struct option longopts[] = {
		{ "migd", required_argument, NULL, 'm' },
		{ "guest", required_argument, NULL, 'g' },
		{ "socket", required_argument, NULL, 's' },
		{ "watchdog", required_argument, NULL, 'w' },
		{ "activity-interval", required_argument, NULL, OPT_ACTIVITY },
		{ "reconnect-max", required_argument, NULL, OPT_RECONNECT_MAX },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "server-key", required_argument, NULL, OPT_SERVER_KEY },
		{ "debug", no_argument, NULL, 'd' },
		{ "syslog", no_argument, NULL, OPT_SYSLOG },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "m:g:s:w:dh", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': o->migd_endpoint = optarg; break;
		case 'g': o->guest = optarg; break;
		case 's': o->socket_path = optarg; break;
		case 'd': *debug = 1; break;
		case OPT_SYSLOG: *syslog = 1; break;
		case OPT_KEY: o->key = optarg; break;
		case OPT_SERVER_KEY: o->server_key = optarg; break;
		case 'w':
			if (time_option("--watchdog", optarg, &o->watchdog_ms) < 0)
				return EXIT_USAGE;
			break;
		case OPT_ACTIVITY:
			if (time_option("--activity-interval", optarg, &o->activity_ms) < 0)
				return EXIT_USAGE;
			break;
		case OPT_RECONNECT_MAX:
			if (time_option("--reconnect-max", optarg, &o->reconnect_max_ms) < 0)
				return EXIT_USAGE;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("migagent (migd) %s, agent protocol %d\n", MIGD_VERSION,
			       AGENT_PROTO_VERSION);
			return 0;
		default:
			if (optopt)
				fprintf(stderr, "migagent: option -%c %s\n", optopt,
					c == ':' ? "needs a value" : "is unknown");
			else
				fprintf(stderr, "migagent: option %s is unknown or needs a value\n",
					argv[optind - 1]);
			fprintf(stderr, "Try 'migagent --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "migagent: unexpected argument \"%s\"\nTry 'migagent --help'.\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	if (o->migd_endpoint && strncmp(o->migd_endpoint, "tcp://", 6) != 0 &&
	    strncmp(o->migd_endpoint, "ipc://", 6) != 0) {
		fprintf(stderr, "migagent: --migd \"%s\": expected tcp://HOST:PORT or ipc://PATH\n",
			o->migd_endpoint);
		return EXIT_USAGE;
	}
	if (o->guest && (!*o->guest || strlen(o->guest) > 255)) {
		fprintf(stderr, "migagent: --guest \"%s\": expected 1..255 characters\n", o->guest);
		return EXIT_USAGE;
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct agent_opts o = { 0 };
	struct agent *a = NULL;
	char err[512];
	int debug = 0, to_syslog = 0;
	int rc = parse_options(argc, argv, &o, &debug, &to_syslog);
	if (rc >= 0)
		return rc;
	log_init("migagent", to_syslog);
	if (debug)
		log_set_level(LOG_LEVEL_DEBUG);
	/* Signals are taken through the agent's signalfd; a client that
	 * vanishes mid-send must not kill us. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (agent_new(&o, &a, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		return 1;
	}
	rc = agent_run(a) == 0 ? 0 : 1;
	agent_free(a);
	return rc;
}
