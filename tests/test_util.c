/*
 * test_util.c: common/util.c's parsers of sizes and rates, the ones every
 * command line and config file goes through.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include "util.h"

Test(util, sizes)
{
	uint64_t v = 0;
	cr_assert_eq(parse_size("4096", &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(parse_size("64m", &v), 0);
	cr_assert_eq(v, 64ull << 20);
	cr_assert_eq(parse_size("2GiB", &v), 0);
	cr_assert_eq(v, 2ull << 30);
	cr_assert_eq(parse_size("1kb", &v), 0);
	cr_assert_eq(v, 1024);
	cr_assert_eq(parse_size("12q", &v), -EINVAL);
	cr_assert_eq(parse_size("-1", &v), -EINVAL);
	cr_assert_eq(parse_size("", &v), -EINVAL);
	cr_assert_eq(parse_size("99999999999t", &v), -ERANGE);
}

Test(util, rates)
{
	static const struct {
		const char *text;
		uint64_t bps;
	} good[] = {
		{ "125000000", 125000000 }, { "100m", 100ull << 20 },  { "100m/s", 100ull << 20 },
		{ "1.5g", 3ull << 29 },     { "1gbit", 125000000 },    { "100mbit/s", 12500000 },
		{ "10MiB", 10ull << 20 },   { "10mb/s", 10ull << 20 }, { "0", 0 },
		{ ".5k", 512 },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		uint64_t v = 1;
		cr_assert_eq(parse_rate(good[i].text, &v), 0, "%s", good[i].text);
		cr_assert_eq(v, good[i].bps, "%s: %llu", good[i].text, (unsigned long long)v);
	}
	static const char *const bad[] = { "", "x", "10q", "10m/h", "-5m", "1gbit/s/s",
					   "10 furlongs per fortnight, and then some more" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 7;
		cr_assert_eq(parse_rate(bad[i], &v), -EINVAL, "%s", bad[i]);
		cr_assert_eq(v, 7, "%s: out written on error", bad[i]);
	}
	uint64_t v;
	cr_assert_eq(parse_rate("1e30", &v), -ERANGE);
	cr_assert_eq(parse_rate(NULL, &v), -EINVAL);
}
