/*
 * hist.h - a log-linear latency histogram in microseconds (HdrHistogram-like).
 *
 * Values below HIST_EXACT (256 us) each have their own bucket, so they are
 * exact. Above, every power of two [2^e, 2^(e+1)) is split into HIST_SUB
 * (128) equal buckets, so a bucket is at most 1/128 (0.78 %) of the values
 * in it wide: two significant decimal digits, like HdrHistogram with
 * significant figures = 2. Values up to HIST_VALUE_MAX (2^36 - 1 us, 19 h)
 * are tracked; larger ones land in the top bucket and are counted in
 * `clamped` (the exact maximum is kept apart in `max`).
 *
 * A histogram is a plain struct of counters (about 30 KiB) with no pointers:
 * each thread records into its own, and merging is adding counts, so the
 * result of merging is the same as recording every value into one. No
 * allocation, no locking; the caller owns the memory.
 *
 * Percentiles are reported HdrHistogram's way: the highest value equivalent
 * to the bucket the rank falls in (its upper edge), never above the exact
 * maximum and never below the exact minimum. So a percentile is never
 * optimistic by more than nothing and pessimistic by at most one bucket.
 */
#ifndef DISTRO_DISTROBENCH_HIST_H
#define DISTRO_DISTROBENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS  7u
#define HIST_SUB       (1u << HIST_SUB_BITS) /* buckets per power of two */
#define HIST_EXACT     (2u * HIST_SUB)       /* values below are exact */
#define HIST_MAX_BITS  36u
#define HIST_VALUE_MAX ((1ull << HIST_MAX_BITS) - 1)
#define HIST_BUCKETS   (HIST_EXACT + (HIST_MAX_BITS - HIST_SUB_BITS - 1u) * HIST_SUB)

struct hist {
	uint64_t n;       /* values recorded */
	uint64_t sum;     /* of the exact values (for the mean) */
	uint64_t min;     /* exact; UINT64_MAX when empty */
	uint64_t max;     /* exact; 0 when empty */
	uint64_t clamped; /* values above HIST_VALUE_MAX */
	uint64_t counts[HIST_BUCKETS];
};

/* Empties h. */
void hist_reset(struct hist *h);

/* The bucket of a value (values above HIST_VALUE_MAX go to the last). O(1). */
uint32_t hist_index(uint64_t value_us);

/* The smallest and the largest value of bucket i (i < HIST_BUCKETS). */
uint64_t hist_bucket_low(uint32_t i);
uint64_t hist_bucket_high(uint32_t i);

/* Records `count` occurrences of value_us. O(1). */
void hist_record_n(struct hist *h, uint64_t value_us, uint64_t count);

static inline void hist_record(struct hist *h, uint64_t value_us)
{
	hist_record_n(h, value_us, 1);
}

/* Adds everything in src to dst. O(HIST_BUCKETS). */
void hist_merge(struct hist *dst, const struct hist *src);

/*
 * The value at percentile p (0 < p <= 100): the upper edge of the bucket
 * holding the ceil(p/100 * n)-th smallest value, clamped to [min, max].
 * p <= 0 gives the minimum, p >= 100 the maximum; 0 when empty. O(buckets).
 */
uint64_t hist_percentile(const struct hist *h, double p);

/* The mean of the exact values; 0 when empty. */
double hist_mean(const struct hist *h);

#endif
