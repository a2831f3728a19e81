/*
 * memdirty: dirty a guest's memory at a known rate, the load that makes
 * pre-copy live migration work harder (migration benchmarks, the seed's
 * Figure 12).
 *
 * It maps SIZE bytes, touches every page once so that all of it is
 * resident, then writes one word into each page in turn, round and round,
 * paced so that RATE bytes of pages are dirtied per second (0: as fast as
 * it can). The word changes each pass, so no page goes back to a zero
 * page or compares equal. Pacing is by absolute deadlines on the monotonic
 * clock in small steps (1/100 s), so the rate holds on average even when
 * single steps are late (a guest being migrated stalls now and then).
 *
 * It runs the pages on the guest's own CPU: a rate the CPU cannot reach
 * shows as a lower "achieved" figure in the once-a-second report.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cmdline.h"
#include "util.h"

#define PROG "memdirty"
#define STEPS_PER_SECOND 100

struct memdirty_opts {
	uint64_t size_bytes;     /* memory to dirty */
	uint64_t rate_bps;       /* bytes of pages per second, 0 = unpaced */
	uint64_t seconds;        /* stop after this long, 0 = until killed */
	int quiet;               /* no per-second report */
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
		"usage: memdirty [--size SIZE] [--rate RATE] [--seconds N] [--quiet]\n"
		"\n"
		"Dirty SIZE bytes of memory, page by page, at RATE bytes per second,\n"
		"until killed (SIGINT, SIGTERM) or for N seconds. Prints what it does\n"
		"and, once a second, the rate achieved.\n"
		"\n"
		"  -s, --size SIZE     memory to dirty, e.g. 64m (default 64m)\n"
		"  -r, --rate RATE     bytes of pages dirtied per second, e.g. 100m/s\n"
		"                      or 100m; 0 = as fast as possible (default 0)\n"
		"  -t, --seconds N     stop after N seconds (default 0: until killed)\n"
		"  -q, --quiet         no per-second report\n"
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

static int parse_args(int argc, char **argv, struct memdirty_opts *o)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "rate", required_argument, NULL, 'r' },
		{ "seconds", required_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	o->size_bytes = 64ull << 20;
	while ((opt = cmdline_getopt(argc, argv, "s:r:t:q", "h", longopts)) != -1) {
		switch (opt) {
		case 's':
			if (parse_size(optarg, &o->size_bytes) < 0 || o->size_bytes == 0)
				return fail("--size \"%s\": expected a size like 64m", optarg);
			break;
		case 'r':
			if (parse_rate(optarg, &o->rate_bps) < 0)
				return fail("--rate \"%s\": expected a rate like 100m/s or 800mbit/s (0 = unpaced)", optarg);
			break;
		case 't':
			if (parse_u64(optarg, 0, 1u << 30, &o->seconds) < 0)
				return fail("--seconds \"%s\": expected a whole number of seconds", optarg);
			break;
		case 'q':
			o->quiet = 1;
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

static void sleep_until_ns(uint64_t deadline_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline_ns / 1000000000u),
		.tv_nsec = (long)(deadline_ns % 1000000000u),
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !stop_requested)
		;
}

static void report(const char *what, uint64_t dirtied_bytes, uint64_t since_bytes,
		   uint64_t elapsed_ns, uint64_t interval_ns, uint64_t size_bytes)
{
	char total[32], rate[32];
	double secs = (double)elapsed_ns / 1e9;
	double rate_bps = interval_ns ? (double)since_bytes * 1e9 / (double)interval_ns : 0;

	printf("memdirty: %st=%.1fs dirtied %s (%.2f passes), %s/s\n", what, secs,
	       format_size(dirtied_bytes, total, sizeof(total)),
	       (double)dirtied_bytes / (double)size_bytes,
	       format_size((uint64_t)rate_bps, rate, sizeof(rate)));
	fflush(stdout);
}

/* The paced loop; returns the bytes of pages dirtied. */
static uint64_t dirty_loop(unsigned char *mem, const struct memdirty_opts *o, size_t page_bytes)
{
	uint64_t pages = o->size_bytes / page_bytes;
	uint64_t step_pages, next_page = 0, pass = 1, dirtied = 0, last_dirtied = 0;
	uint64_t start_ns = now_ns(), step_ns, last_report_ns = start_ns, deadline_ns;
	uint64_t end_ns = o->seconds ? start_ns + o->seconds * 1000000000ull : 0;

	/* unpaced: steps of 1 MiB between clock and signal checks */
	step_pages = o->rate_bps ? o->rate_bps / page_bytes / STEPS_PER_SECOND : (1u << 20) / page_bytes;
	if (step_pages == 0)
		step_pages = 1;
	step_ns = o->rate_bps ? (uint64_t)((double)step_pages * (double)page_bytes * 1e9 / (double)o->rate_bps) : 0;
	deadline_ns = start_ns;

	while (!stop_requested) {
		for (uint64_t i = 0; i < step_pages; i++) {
			*(volatile uint64_t *)(mem + next_page * page_bytes) = pass;
			if (++next_page == pages) {
				next_page = 0;
				pass++;
			}
		}
		dirtied += step_pages * page_bytes;
		uint64_t now = now_ns();
		if (!o->quiet && now - last_report_ns >= 1000000000ull) {
			report("", dirtied, dirtied - last_dirtied, now - start_ns, now - last_report_ns,
			       o->size_bytes);
			last_report_ns = now;
			last_dirtied = dirtied;
		}
		if (end_ns && now >= end_ns)
			break;
		if (step_ns) {
			deadline_ns += step_ns;
			if (deadline_ns > now)
				sleep_until_ns(deadline_ns);
		}
	}
	report("done: ", dirtied, dirtied, now_ns() - start_ns, now_ns() - start_ns, o->size_bytes);
	return dirtied;
}

int main(int argc, char **argv)
{
	struct memdirty_opts o = { 0 };
	long page = sysconf(_SC_PAGESIZE);
	size_t page_bytes = page > 0 ? (size_t)page : 4096;
	char size_text[32], rate_text[32];
	struct sigaction sa = { .sa_handler = on_signal };
	unsigned char *mem;
	int rc;

	if ((rc = parse_args(argc, argv, &o)) != 0)
		return rc;
	if (o.size_bytes < page_bytes)
		return fail("--size %llu: less than one page (%zu bytes)",
			    (unsigned long long)o.size_bytes, page_bytes);
	o.size_bytes -= o.size_bytes % page_bytes;

	mem = mmap(NULL, o.size_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return fail("cannot map %s: %s", format_size(o.size_bytes, size_text, sizeof(size_text)),
			    strerror(errno));
	memset(mem, 0xa5, o.size_bytes); /* resident before the clock starts */

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	printf("memdirty: pid %d dirtying %s in pages of %zu bytes at %s%s, ", (int)getpid(),
	       format_size(o.size_bytes, size_text, sizeof(size_text)), page_bytes,
	       o.rate_bps ? format_size(o.rate_bps, rate_text, sizeof(rate_text)) : "full speed",
	       o.rate_bps ? "/s" : "");
	if (o.seconds)
		printf("for %llu s\n", (unsigned long long)o.seconds);
	else
		printf("until killed\n");
	fflush(stdout);
	dirty_loop(mem, &o, page_bytes);
	munmap(mem, o.size_bytes);
	return 0;
}
