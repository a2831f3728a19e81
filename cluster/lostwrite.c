/*
 * lostwrite: catch guest memory writes that a live migration lost.
 *
 * QEMU before 9.0 loses writes when it live-migrates a TCG guest: its
 * dirty-bitmap sync clears a RAM block's dirty bits a word at a time
 * without resetting the TCG TLB, so a page whose TLB entry stays writable
 * is never marked dirty again and the destination keeps an older copy.
 * migd's qmp backend and cluster/vguest avoid it (see BUGS in migd(8));
 * this program is how that is tested, in a guest, while it migrates.
 *
 * It keeps 16 check pages, each holding the same counter, and in a tight
 * loop checks that they all agree, then bumps them all. A page the
 * destination got from before the last writes holds an older count than
 * the others: that is reported and the program exits 1. The check pages
 * stay in the TLB (one process, nothing else to run); to make a migration
 * need more than one pass over memory, it also dirties a buffer at RATE
 * bytes of pages per second, choosing only pages that never share a slot
 * of a direct-mapped TLB of 256 entries or more with a check page.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cmdline.h"
#include "util.h"

#define PROG "lostwrite"
#define PAGE 4096u
#define CHECK_PAGES 16u
#define TLB_SLOTS 256u          /* the smallest TLB the choice of pages allows for */
#define ALIGN (TLB_SLOTS * PAGE) /* the check pages start a TLB_SLOTS-page span */

struct lostwrite_opts {
	uint64_t size_bytes;     /* buffer dirtied alongside */
	uint64_t rate_bps;       /* bytes of its pages per second */
	uint64_t seconds;        /* 0: until SIGTERM or SIGINT */
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: lostwrite [--size SIZE] [--rate RATE] [--seconds N]\n"
		"\n"
		"Keep 16 pages holding one counter and check, round after round, that\n"
		"they still agree: a page a live migration failed to copy again after\n"
		"its last write holds an older count. Also dirties SIZE bytes of pages\n"
		"at RATE so that a migration needs several passes. Exits 0 with\n"
		"\"ok: ...\" when N seconds passed or on SIGTERM/SIGINT, 1 with\n"
		"\"LOST: ...\" as soon as a page disagrees.\n"
		"\n"
		"  -s, --size SIZE     buffer dirtied alongside (default 64m)\n"
		"  -r, --rate RATE     bytes of its pages dirtied per second, e.g.\n"
		"                      40m/s (default 40m/s)\n"
		"  -t, --seconds N     stop after N seconds (default 0: until killed)\n"
		"  -h, --help          this help\n");
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cmdline_verror(PROG, NULL, fmt, ap);
	va_end(ap);
	return 1;
}

static int parse_args(int argc, char **argv, struct lostwrite_opts *o)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "rate", required_argument, NULL, 'r' },
		{ "seconds", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	o->size_bytes = 64ull << 20;
	o->rate_bps = 40ull << 20;
	while ((opt = cmdline_getopt(argc, argv, "s:r:t:", "h", longopts)) != -1) {
		switch (opt) {
		case 's':
			if (parse_size(optarg, &o->size_bytes) < 0 || o->size_bytes < 2 * ALIGN)
				return fail("--size \"%s\": expected a size of at least 2m, like 64m", optarg);
			break;
		case 'r':
			if (parse_rate(optarg, &o->rate_bps) < 0)
				return fail("--rate \"%s\": expected a rate like 40m/s (0: none)", optarg);
			break;
		case 't':
			if (parse_u64(optarg, 0, 1u << 30, &o->seconds) < 0)
				return fail("--seconds \"%s\": expected a whole number of seconds", optarg);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			cmdline_option_error(PROG, NULL, opt, argv);
			return 2;
		}
	}
	if (optind < argc) {
		fail("unexpected argument \"%s\"", argv[optind]);
		cmdline_try_help(PROG, NULL);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct lostwrite_opts o = { 0 };
	int rc = parse_args(argc, argv, &o);
	if (rc)
		return rc;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	size_t len = (size_t)o.size_bytes + ALIGN;
	unsigned char *raw = mmap(NULL, len, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (raw == MAP_FAILED)
		return fail("mapping %zu bytes: %s", len, strerror(errno));
	unsigned char *base = (unsigned char *)(((uintptr_t)raw + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
	volatile uint64_t *check = (volatile uint64_t *)base;
	volatile unsigned char *buf = base;
	uint64_t pages = o.size_bytes / PAGE, next = CHECK_PAGES, dirtied = 0, v = 0;
	uint64_t start = now_ns(), last = start;
	uint64_t end = o.seconds ? start + o.seconds * 1000000000ull : 0;

	printf("%s: %u check pages, dirtying %" PRIu64 " MiB at %" PRIu64 " MiB/s\n", PROG,
	       CHECK_PAGES, o.size_bytes >> 20, o.rate_bps >> 20);
	fflush(stdout);
	while (!stop_requested) {
		for (unsigned p = 0; p < CHECK_PAGES; p++) {
			uint64_t got = check[p * (PAGE / sizeof(uint64_t))];
			if (got != v) {
				printf("%s: LOST: page %u holds count %" PRIu64 ", the others %" PRIu64
				       " (%.1f s in)\n", PROG, p, got, v, (double)(now_ns() - start) / 1e9);
				return 1;
			}
		}
		v++;
		for (unsigned p = 0; p < CHECK_PAGES; p++)
			check[p * (PAGE / sizeof(uint64_t))] = v;
		if (v % 1024)
			continue;
		uint64_t now = now_ns();
		if (end && now >= end)
			break;
		/* the buffer's pages due since the last look, none in a check page's slot */
		uint64_t due = (uint64_t)((double)(now - last) * (double)o.rate_bps / PAGE / 1e9);
		if (due == 0)
			continue;
		last = now;
		while (due--) {
			buf[next * PAGE] = (unsigned char)v;
			dirtied++;
			do
				next = (next + 1) % pages;
			while (next % TLB_SLOTS < CHECK_PAGES);
		}
	}
	printf("%s: ok: %" PRIu64 " rounds in %.1f s, %" PRIu64 " pages dirtied, no write lost\n",
	       PROG, v, (double)(now_ns() - start) / 1e9, dirtied);
	return 0;
}
