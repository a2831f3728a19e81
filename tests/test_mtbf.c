/*
 * The mtbf policy: Young's interval sqrt(2 C M), never below C, and an
 * interval that follows the measured cost as it is observed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include "mtbf.h"

static char err[256];

Test(mtbf, youngs_interval)
{
	cr_assert_float_eq(mtbf_young_interval_s(60, 86400), sqrt(2 * 60 * 86400.0), 1e-9);
	cr_assert_float_eq(mtbf_young_interval_s(1440, 30 * 86400), 24 * 3600 + 0.0, 1e-6,
			   "24 min per firing and a 30-day MTBF: a day");
	cr_assert_float_eq(mtbf_young_interval_s(2, 1), 2, 1e-9, "never below the cost");
	cr_assert(isnan(mtbf_young_interval_s(0, 100)));
	cr_assert(isnan(mtbf_young_interval_s(10, -1)));
	cr_assert(isnan(mtbf_young_interval_s(NAN, 100)));
}

Test(mtbf, parameters)
{
	struct policy_kv kv[] = { { "mtbf", "30d" }, { "cost", "5m" }, { "count", "2" },
				  { "guests", "job:bt" } };
	struct mtbf_params p;
	cr_assert_eq(mtbf_parse(kv, 4, &p, err, sizeof(err)), 0, "%s", err);
	cr_assert_float_eq(p.mtbf_s, 30 * 86400.0, 1e-9);
	cr_assert_float_eq(p.cost_s, 300, 1e-9);
	cr_assert_eq(p.count, 2);
	struct policy_kv bad[] = { { "mtbf", "soon" } };
	cr_assert_eq(mtbf_parse(bad, 1, &p, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "soon"), "%s", err);
	struct policy_kv none[] = { { "cost", "1m" } };
	cr_assert_eq(mtbf_parse(none, 1, &p, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "mtbf"), "%s", err);
	struct policy_kv zero[] = { { "mtbf", "1d" }, { "cost", "0" } };
	cr_assert_eq(mtbf_parse(zero, 2, &p, err, sizeof(err)), -EINVAL);
}

Test(mtbf, interval_follows_the_observed_cost)
{
	struct policy_kv kv[] = { { "mtbf", "8h" }, { "cost", "1m" } };
	struct mtbf_params p;
	struct policy_state st;
	struct policy_pick picks[4];
	size_t n;
	cr_assert_eq(mtbf_parse(kv, 2, &p, err, sizeof(err)), 0, "%s", err);
	const struct policy_type *t = policy_type_find("mtbf");
	cr_assert_not_null(t);
	t->start(&p, &st, 1000);
	double configured = sqrt(2 * 60 * 8 * 3600.0); /* 1859 s */
	cr_assert_float_eq(t->next_fire_s(&p, &st), 1000 + configured, 1e-6);
	cr_assert_eq(t->fire(&p, &st, 1000 + configured, 3, picks, &n), 1);
	cr_assert_eq(n, 3);
	/* measured: a firing costs 15 s, not 60: a quarter, so the interval halves */
	double half = configured / 2;
	t->observe(&p, &st, 15, 1000 + configured + 100);
	cr_assert_float_eq(mtbf_cost_s(&p, &st), 15, 1e-9);
	cr_assert_float_eq(mtbf_interval_s(&p, &st), half, 1e-6);
	cr_assert_float_eq(t->next_fire_s(&p, &st), 1000 + configured + half, 1e-6);
	cr_assert_eq(t->fire(&p, &st, 1000 + configured + half, 3, picks, &n), 1);
	cr_assert_float_eq(t->next_fire_s(&p, &st), 1000 + configured + 2 * half, 1e-6);
	t->observe(&p, &st, -1, 0);
	cr_assert_float_eq(mtbf_cost_s(&p, &st), 15, 1e-9, "a bad measurement is ignored");
}
