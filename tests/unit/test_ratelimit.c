// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The token buckets behind [disk.N]/[share.N] iops and bandwidth, on a fake
 * clock: bursts, refills to the nanosecond (fractions carried, never lost or
 * made up), waits, debts of large requests, long-run rates, clock edge cases.
 */
#include <check.h>
#include <stdint.h>

#include "ratelimit.h"
#include "unit.h"

#define NS 1000000000ULL

START_TEST(t_defaults)
{
	struct rl_config c = { 0 };

	ck_assert_uint_eq(rl_default_burst(100), 10);
	ck_assert_uint_eq(rl_default_burst(5), 1);
	ck_assert_uint_eq(rl_default_burst(1), 1);
	ck_assert_uint_eq(rl_default_burst(50 << 20), 5 << 20);
	ck_assert(!rl_config_limited(NULL));
	ck_assert(!rl_config_limited(&c));
	c.iops_burst = 5; /* a burst alone limits nothing */
	ck_assert(!rl_config_limited(&c));
	c.bandwidth = 1;
	ck_assert(rl_config_limited(&c));
}
END_TEST

/* What -v says of a device's limits. */
START_TEST(t_describe)
{
	struct rl_config c = { 0 };
	char buf[128];

	rl_config_describe(&c, buf, sizeof(buf));
	ck_assert_str_eq(buf, "");
	c.iops = 100;
	rl_config_describe(&c, buf, sizeof(buf));
	ck_assert_str_eq(buf, ", at most 100 requests/s (burst 10)");
	c.bandwidth = 1 << 20;
	c.bandwidth_burst = 4096;
	rl_config_describe(&c, buf, sizeof(buf));
	ck_assert_str_eq(buf, ", at most 100 requests/s (burst 10), 1048576 bytes/s (burst 4096)");
	c.iops = 0;
	rl_config_describe(&c, buf, sizeof(buf));
	ck_assert_str_eq(buf, ", at most 1048576 bytes/s (burst 4096)");
}
END_TEST

START_TEST(t_unlimited)
{
	struct rl_bucket b;

	rl_bucket_init(&b, 0, 7, 0);
	rl_bucket_take(&b, 1000000);
	rl_bucket_refill(&b, 5);
	ck_assert_uint_eq(rl_bucket_wait(&b), 0);
}
END_TEST

/* A full bucket lets the burst through at once, then one token per 1/rate s. */
START_TEST(t_burst_then_rate)
{
	struct rl_bucket b;
	uint64_t t = 1000;

	rl_bucket_init(&b, 100, 0, t);
	ck_assert_int_eq(b.tokens, 10);
	for (int i = 0; i < 10; i++) {
		rl_bucket_refill(&b, t);
		ck_assert_uint_eq(rl_bucket_wait(&b), 0);
		rl_bucket_take(&b, 1);
	}
	rl_bucket_refill(&b, t);
	ck_assert_uint_eq(rl_bucket_wait(&b), NS / 100);
	/* A nanosecond early: still nothing. */
	rl_bucket_refill(&b, t + NS / 100 - 1);
	ck_assert_uint_eq(rl_bucket_wait(&b), 1);
	rl_bucket_refill(&b, t + NS / 100);
	ck_assert_uint_eq(rl_bucket_wait(&b), 0);
	ck_assert_int_eq(b.tokens, 1);
	/* A long idle time fills it to the burst, no more. */
	rl_bucket_refill(&b, t + 3600 * NS);
	ck_assert_int_eq(b.tokens, 10);
}
END_TEST

/* 3 per second: a third of a second earns 0.999999999 tokens; the fraction is kept
 * (until the bucket is full: then there is nowhere to keep it). */
START_TEST(t_fractions)
{
	struct rl_bucket b;

	rl_bucket_init(&b, 3, 2, 0);
	rl_bucket_take(&b, 2);
	rl_bucket_refill(&b, 333333333);
	ck_assert_int_eq(b.tokens, 0);
	ck_assert_uint_eq(b.frac, 999999999);
	ck_assert_uint_eq(rl_bucket_wait(&b), 1);
	rl_bucket_refill(&b, 333333334);
	ck_assert_int_eq(b.tokens, 1);
	ck_assert_uint_eq(b.frac, 2);
	/* Many tiny refills earn exactly what one large one does. */
	rl_bucket_take(&b, 1);
	for (uint64_t t = 333333335; t <= 666666668; t += 7)
		rl_bucket_refill(&b, t);
	rl_bucket_refill(&b, 666666668);
	ck_assert_int_eq(b.tokens, 1);
	ck_assert_uint_eq(b.frac, 4);
}
END_TEST

/* A request larger than the burst goes when the bucket holds a token, then is paid back. */
START_TEST(t_debt)
{
	struct rl_bucket b;

	rl_bucket_init(&b, 1000, 100, 0);
	rl_bucket_take(&b, 1000);
	ck_assert_int_eq(b.tokens, -900);
	rl_bucket_refill(&b, 0);
	ck_assert_uint_eq(rl_bucket_wait(&b), 901 * NS / 1000);
	rl_bucket_refill(&b, 900 * NS / 1000);
	ck_assert_int_eq(b.tokens, 0);
	ck_assert_uint_ne(rl_bucket_wait(&b), 0);
	rl_bucket_refill(&b, 901 * NS / 1000);
	ck_assert_uint_eq(rl_bucket_wait(&b), 0);
}
END_TEST

/* The clock read before another thread's refill may be older: no tokens made up or lost. */
START_TEST(t_clock_edges)
{
	struct rl_bucket b;

	rl_bucket_init(&b, 10, 1, 5 * NS);
	rl_bucket_take(&b, 1);
	rl_bucket_refill(&b, 5 * NS + NS / 20);
	rl_bucket_refill(&b, 5 * NS); /* older */
	ck_assert_int_eq(b.tokens, 0);
	ck_assert_uint_eq(b.last_ns, 5 * NS + NS / 20);
	rl_bucket_refill(&b, 5 * NS + NS / 10);
	ck_assert_int_eq(b.tokens, 1);
	/* Huge rates and gaps: no overflow, just full. */
	rl_bucket_init(&b, RL_RATE_MAX * 4, RL_RATE_MAX * 4, 0);
	ck_assert_uint_eq(b.rate, RL_RATE_MAX);
	ck_assert_uint_eq(b.burst, RL_RATE_MAX);
	rl_bucket_take(&b, UINT64_MAX);
	ck_assert_int_lt(b.tokens, 0);
	rl_bucket_refill(&b, UINT64_MAX);
	ck_assert_int_eq(b.tokens, (int64_t)RL_RATE_MAX);
}
END_TEST

/*
 * N requests as fast as the limiter lets them through, on a fake clock that
 * jumps to each wait's end: the time they took is what the rate says (the
 * burst goes at once), for ops and for bytes.
 */
START_TEST(t_long_run)
{
	struct rl_config c = { .iops = 100, .bandwidth = 1 << 20, .bandwidth_burst = 64 << 10 };
	struct ratelimit rl;
	uint64_t t = 0, w;
	unsigned int i;

	/* 500 ops of 4 KiB: the ops limit is the tighter one... */
	rl_init(&rl, &c, t);
	for (i = 0; i < 500; i++) {
		while ((w = rl_wait(&rl, t)))
			t += w;
		rl_charge(&rl, 1, 4096);
	}
	/* ... (500 - 10 burst) / 100 = 4.9 s (bytes alone would take under 2 s). */
	ck_assert_uint_ge(t, 49 * NS / 10);
	ck_assert_uint_le(t, 49 * NS / 10 + NS / 100);
	rl_destroy(&rl);

	/* 64 KiB requests: now bandwidth decides: the last one starts after
	 * (N * 64 KiB - burst - one request) / rate. */
	t = 0;
	c.iops = 0;
	rl_init(&rl, &c, t);
	for (i = 0; i < 64; i++) {
		while ((w = rl_wait(&rl, t)))
			t += w;
		rl_charge(&rl, 1, 65536);
	}
	w = (uint64_t)(64 * 65536 - 65536 - 65536) * NS / (1 << 20);
	ck_assert_uint_ge(t, w);
	ck_assert_uint_le(t, w + NS / 1000);
	rl_destroy(&rl);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("bucket");

	tcase_add_test(tc, t_defaults);
	tcase_add_test(tc, t_describe);
	tcase_add_test(tc, t_unlimited);
	tcase_add_test(tc, t_burst_then_rate);
	tcase_add_test(tc, t_fractions);
	tcase_add_test(tc, t_debt);
	tcase_add_test(tc, t_clock_edges);
	tcase_add_test(tc, t_long_run);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(suite());
}
