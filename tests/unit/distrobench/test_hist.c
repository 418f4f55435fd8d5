/*
 * distrobench's latency histogram: bucket layout (every boundary), exact
 * values, the relative error bound, percentiles on known distributions,
 * merging, the maximum and clamping.
 */
#include "distrobench/hist.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static struct hist *new_hist(void)
{
	struct hist *h = malloc(sizeof(*h));

	cr_assert_not_null(h);
	hist_reset(h);
	return h;
}

Test(hist, empty)
{
	struct hist *h = new_hist();

	cr_assert_eq(h->n, 0);
	cr_assert_eq(hist_percentile(h, 50), 0);
	cr_assert_eq(hist_percentile(h, 100), 0);
	cr_assert_eq(hist_mean(h), 0.0);
	free(h);
}

Test(hist, layout_exact_part)
{
	for (uint32_t v = 0; v < HIST_EXACT; v++) {
		cr_assert_eq(hist_index(v), v);
		cr_assert_eq(hist_bucket_low(v), v);
		cr_assert_eq(hist_bucket_high(v), v);
	}
	cr_assert_eq(hist_index(HIST_EXACT), HIST_EXACT);
	cr_assert_eq(hist_bucket_low(HIST_EXACT), 256);
	cr_assert_eq(hist_bucket_high(HIST_EXACT), 257); /* width 2 from 256 */
}

Test(hist, layout_every_power_of_two)
{
	for (uint32_t e = 8; e < HIST_MAX_BITS; e++) {
		uint64_t v = 1ull << e;
		uint32_t i = hist_index(v);

		cr_assert_eq(i, HIST_EXACT + (e - 8) * HIST_SUB, "2^%u", e);
		cr_assert_eq(hist_bucket_low(i), v, "2^%u", e);
		cr_assert_eq(hist_bucket_high(i), v + (1ull << (e - 7)) - 1, "2^%u", e);
		cr_assert_eq(hist_index(v - 1), i - 1, "2^%u - 1", e);
		cr_assert_eq(hist_bucket_high(i - 1), v - 1, "2^%u - 1", e);
		/* The last bucket of each power ends just below the next one. */
		cr_assert_eq(hist_index(2 * v - 1), i + HIST_SUB - 1, "2^%u", e + 1);
	}
}

Test(hist, buckets_tile_the_range)
{
	for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
		uint64_t lo = hist_bucket_low(i), hi = hist_bucket_high(i);

		cr_assert_leq(lo, hi);
		cr_assert_eq(hist_index(lo), i, "bucket %u low %llu", i, (unsigned long long)lo);
		cr_assert_eq(hist_index(hi), i, "bucket %u high %llu", i, (unsigned long long)hi);
		if (i + 1 < HIST_BUCKETS)
			cr_assert_eq(hist_bucket_low(i + 1), hi + 1, "gap after bucket %u", i);
		/* Two significant digits: a bucket is under 1 % of its values wide. */
		cr_assert_leq((hi - lo) * 128, lo, "bucket %u too wide", i);
	}
	cr_assert_eq(hist_bucket_high(HIST_BUCKETS - 1), HIST_VALUE_MAX);
}

Test(hist, relative_error_bound)
{
	uint64_t x = 88172645463325252ull;

	for (int k = 0; k < 200000; k++) {
		uint64_t v;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		v = x % (1ull << (8 + k % 28));
		uint64_t hi = hist_bucket_high(hist_index(v));

		cr_assert_geq(hi, v);
		cr_assert_leq((hi - v) * 128, v, "value %llu reported as %llu",
		              (unsigned long long)v, (unsigned long long)hi);
	}
}

Test(hist, exact_below_256)
{
	struct hist *h = new_hist();

	for (uint64_t v = 0; v < 256; v++)
		hist_record(h, v);
	cr_assert_eq(h->n, 256);
	cr_assert_eq(h->min, 0);
	cr_assert_eq(h->max, 255);
	cr_assert_eq(hist_percentile(h, 50), 127); /* rank 128 */
	cr_assert_eq(hist_percentile(h, 90), 230); /* rank ceil(230.4) = 231 */
	cr_assert_eq(hist_percentile(h, 99), 253); /* rank ceil(253.44) = 254 */
	cr_assert_eq(hist_percentile(h, 100), 255);
	cr_assert_eq(hist_percentile(h, 0), 0);
	cr_assert_float_eq(hist_mean(h), 127.5, 1e-9);
	free(h);
}

Test(hist, uniform_1_to_1000)
{
	struct hist *h = new_hist();

	for (uint64_t v = 1; v <= 1000; v++)
		hist_record(h, v);
	/* Ranks 500, 900, 990, 999 -> the upper edge of each value's bucket. */
	cr_assert_eq(hist_percentile(h, 50), 501);   /* 500 in [500, 501] */
	cr_assert_eq(hist_percentile(h, 90), 903);   /* 900 in [900, 903] */
	cr_assert_eq(hist_percentile(h, 99), 991);   /* 990 in [988, 991] */
	cr_assert_eq(hist_percentile(h, 99.9), 999); /* 999 in [996, 999] */
	cr_assert_eq(hist_percentile(h, 100), 1000);
	cr_assert_eq(h->max, 1000);
	cr_assert_float_eq(hist_mean(h), 500.5, 1e-9);
	free(h);
}

Test(hist, bimodal_tail)
{
	struct hist *h = new_hist();

	hist_record_n(h, 100, 990);
	hist_record_n(h, 10000, 10);
	cr_assert_eq(h->n, 1000);
	cr_assert_eq(hist_percentile(h, 50), 100);
	cr_assert_eq(hist_percentile(h, 90), 100);
	cr_assert_eq(hist_percentile(h, 99), 100);     /* rank 990: still the mode */
	cr_assert_eq(hist_percentile(h, 99.9), 10000); /* rank 999: the tail, clamped to max */
	cr_assert_eq(hist_percentile(h, 100), 10000);
	cr_assert_float_eq(hist_mean(h), 199.0, 1e-9);
	free(h);
}

Test(hist, percentile_clamped_to_min_and_max)
{
	struct hist *h = new_hist();

	hist_record(h, 300); /* bucket [300, 301] */
	cr_assert_eq(hist_percentile(h, 50), 300);
	cr_assert_eq(hist_percentile(h, 99.99), 300);
	hist_reset(h);
	hist_record(h, 123457);
	cr_assert_eq(h->max, 123457);
	cr_assert_eq(hist_percentile(h, 50), 123457);
	cr_assert_eq(hist_percentile(h, 100), 123457);
	free(h);
}

Test(hist, max_is_exact_and_huge_values_clamp)
{
	struct hist *h = new_hist();
	uint64_t huge = HIST_VALUE_MAX + 12345;

	hist_record(h, 5);
	hist_record(h, huge);
	cr_assert_eq(h->clamped, 1);
	cr_assert_eq(h->max, huge);
	cr_assert_eq(h->counts[HIST_BUCKETS - 1], 1);
	cr_assert_eq(hist_index(huge), HIST_BUCKETS - 1);
	cr_assert_eq(hist_percentile(h, 100), huge);
	cr_assert_eq(hist_percentile(h, 50), 5);
	free(h);
}

Test(hist, merge_equals_recording_everything)
{
	struct hist *a = new_hist(), *b = new_hist(), *all = new_hist();
	uint64_t x = 12345;

	for (int k = 0; k < 100000; k++) {
		uint64_t v;

		x = x * 6364136223846793005ull + 1442695040888963407ull;
		v = (x >> 33) % 50000;
		hist_record(k % 3 ? a : b, v);
		hist_record(all, v);
	}
	hist_merge(a, b);
	cr_assert_eq(a->n, all->n);
	cr_assert_eq(a->sum, all->sum);
	cr_assert_eq(a->min, all->min);
	cr_assert_eq(a->max, all->max);
	cr_assert_eq(memcmp(a->counts, all->counts, sizeof(a->counts)), 0);
	cr_assert_eq(hist_percentile(a, 99.9), hist_percentile(all, 99.9));
	free(a);
	free(b);
	free(all);
}

Test(hist, merge_with_empty)
{
	struct hist *a = new_hist(), *e = new_hist();

	hist_merge(a, e); /* empty into empty stays empty */
	cr_assert_eq(a->n, 0);
	cr_assert_eq(a->min, UINT64_MAX);
	hist_record(e, 42);
	hist_record(e, 7000);
	hist_merge(a, e); /* into empty: min and max come along */
	cr_assert_eq(a->n, 2);
	cr_assert_eq(a->min, 42);
	cr_assert_eq(a->max, 7000);
	hist_reset(e);
	hist_merge(a, e); /* an empty source changes nothing */
	cr_assert_eq(a->n, 2);
	cr_assert_eq(a->min, 42);
	free(a);
	free(e);
}

Test(hist, record_n_and_zero_count)
{
	struct hist *h = new_hist();

	hist_record_n(h, 77, 0);
	cr_assert_eq(h->n, 0);
	cr_assert_eq(h->max, 0);
	hist_record_n(h, 77, 5);
	cr_assert_eq(h->n, 5);
	cr_assert_eq(h->sum, 385);
	cr_assert_eq(h->counts[77], 5);
	free(h);
}
