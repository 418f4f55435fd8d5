/*
 * hist.c - the log-linear latency histogram (see hist.h for the layout).
 *
 * Index of a value v >= HIST_EXACT: e = floor(log2 v) (8..35), the bucket
 * width is 2^(e - SUB_BITS), and the bucket is HIST_EXACT + (e - 8) * SUB
 * plus the top SUB_BITS + 1 bits of v minus SUB (they run SUB..2*SUB-1). So
 * bucket_low(index(v)) <= v <= bucket_high(index(v)) for every tracked v,
 * buckets tile the range without gaps or overlap, and the index is one
 * count-leading-zeros and a shift. The unit tests check all three claims at
 * every power of two and around it.
 */
#include "distrobench/hist.h"

#include <math.h>
#include <string.h>

_Static_assert(HIST_BUCKETS == 3840, "bucket count is part of the test expectations");

void hist_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

uint32_t hist_index(uint64_t v)
{
	uint32_t e, shift;

	if (v < HIST_EXACT)
		return (uint32_t)v;
	if (v > HIST_VALUE_MAX)
		v = HIST_VALUE_MAX;
	e = 63u - (uint32_t)__builtin_clzll(v);
	shift = e - HIST_SUB_BITS;
	return HIST_EXACT + (e - HIST_SUB_BITS - 1u) * HIST_SUB + (uint32_t)(v >> shift) - HIST_SUB;
}

uint64_t hist_bucket_low(uint32_t i)
{
	uint32_t k, e;

	if (i < HIST_EXACT)
		return i;
	k = i - HIST_EXACT;
	e = HIST_SUB_BITS + 1u + k / HIST_SUB;
	return (uint64_t)(HIST_SUB + k % HIST_SUB) << (e - HIST_SUB_BITS);
}

uint64_t hist_bucket_high(uint32_t i)
{
	uint32_t e;

	if (i < HIST_EXACT)
		return i;
	e = HIST_SUB_BITS + 1u + (i - HIST_EXACT) / HIST_SUB;
	return hist_bucket_low(i) + (1ull << (e - HIST_SUB_BITS)) - 1u;
}

void hist_record_n(struct hist *h, uint64_t v, uint64_t count)
{
	if (count == 0)
		return;
	h->counts[hist_index(v)] += count;
	h->n += count;
	h->sum += v * count;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	if (v > HIST_VALUE_MAX)
		h->clamped += count;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	if (src->n == 0)
		return;
	for (uint32_t i = 0; i < HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	dst->n += src->n;
	dst->sum += src->sum;
	dst->clamped += src->clamped;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
	uint64_t rank, seen = 0, v;

	if (h->n == 0)
		return 0;
	if (p <= 0)
		return h->min;
	if (p >= 100)
		return h->max;
	/* The epsilon keeps 99.9 % of 1000 at rank 999, not 1000 by rounding. */
	rank = (uint64_t)ceil(p / 100.0 * (double)h->n - 1e-9);
	if (rank < 1)
		rank = 1;
	if (rank > h->n)
		rank = h->n;
	for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			v = hist_bucket_high(i);
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max; /* not reached: the counts add up to n */
}

double hist_mean(const struct hist *h)
{
	return h->n ? (double)h->sum / (double)h->n : 0.0;
}
