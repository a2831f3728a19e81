/*
 * migd-stream: one checkpoint image from standard input into migd's store,
 * as a process of its own, so that a save outlives migd.
 *
 *   migd-stream --store URI [--sfs-conf CONF] --result FILE REL
 *
 * migd starts one per guest it saves, with the read end of the pipe QEMU's
 * migration stream goes into as standard input. It writes REL in the store
 * (sfs:/DIR or a directory) and its SHA-256, and when the stream ends it
 * writes FILE (via FILE.tmp and a rename): {"ok": true, "bytes": N,
 * "sha256": HEX} or {"ok": false, "bytes": N, "error": TEXT}.
 *
 * Why a process: QEMU 7.2 cannot save or migrate a guest again after a
 * background snapshot of it failed, and the snapshot fails when the reader
 * of its stream goes away. So the reader never does: if migd is killed
 * mid-save, this process reads the stream to its end anyway; if the store
 * fails or migd aborts the save (SIGUSR1), it reads the rest and drops it.
 * QEMU always completes, and the checkpoint fails in migd's hands instead.
 * It ignores SIGINT, SIGTERM and SIGHUP for the same reason (its own
 * session: a terminal's signals do not reach it); the stream's end ends it.
 *
 * Exit status 0 when the image is whole, 1 when it failed, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ckpt_store.h"

static volatile sig_atomic_t discard;

static void on_usr1(int sig)
{
	(void)sig;
	discard = 1;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: migd-stream --store URI [--sfs-conf CONF] --result FILE REL\n"
		"\n"
		"One checkpoint image from standard input into migd's store (sfs:/DIR or a\n"
		"directory) as REL, with its SHA-256; FILE gets the outcome as JSON. Started by\n"
		"migd for each guest it saves; it reads the stream to its end whatever happens\n"
		"(SIGUSR1: drop the rest), so that the saving QEMU always completes.\n");
}

static int write_result(const char *path, json_t *o)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (json_dump_file(o, tmp, JSON_COMPACT) < 0 || rename(tmp, path) < 0) {
		fprintf(stderr, "migd-stream: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "store", required_argument, NULL, 's' },
		{ "sfs-conf", required_argument, NULL, 'c' },
		{ "result", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *store = NULL, *conf = NULL, *result = NULL;
	int opt;
	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case 's': store = optarg; break;
		case 'c': conf = optarg; break;
		case 'r': result = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!store || !result || optind != argc - 1) {
		fprintf(stderr, "migd-stream: %s\n", !store ? "--store is required"
				 : !result ? "--result is required" : "expected one REL");
		usage(stderr);
		return 2;
	}
	const char *rel = argv[optind];
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART: a read returns, discard is seen */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);

	char err[512] = "", sha[CKPT_SHA_HEX] = "";
	_Atomic uint64_t bytes = 0;
	struct ckpt_store *st = NULL;
	int rc = ckpt_store_open(store, conf, &st, err, sizeof(err));
	if (rc == 0) {
		rc = ckpt_store_save_fd(st, rel, STDIN_FILENO, -1, &discard, &bytes, sha, err,
					sizeof(err));
	} else { /* no store: still take the whole stream */
		char buf[1 << 16];
		ssize_t n;
		while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
			if (n > 0)
				bytes += (uint64_t)n;
	}
	ckpt_store_close(st);
	json_t *o = rc == 0 ? json_pack("{s:b, s:I, s:s}", "ok", 1, "bytes", (json_int_t)bytes,
					"sha256", sha)
			    : json_pack("{s:b, s:I, s:s}", "ok", 0, "bytes", (json_int_t)bytes,
					"error", *err ? err : strerror(-rc));
	int wrc = write_result(result, o);
	json_decref(o);
	return rc == 0 && wrc == 0 ? 0 : 1;
}
