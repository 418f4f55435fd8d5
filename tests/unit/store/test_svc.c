/* svc.c: a service's instance array, its sizing and compaction. */
#include "helpers.h"
#include "store/store_internal.h"

static void setup(void)
{
	fixture_default(1, 0, false);
}

TestSuite(svc, .init = setup, .fini = fixture_close);

static const struct store_svc *svc_of(const struct store_key *k)
{
	struct rkey rk;

	cr_assert_eq(key_resolve(s, k, &rk), 0);
	return svc_find(shard_for(s, k), &rk);
}

static bool pow2(uint64_t x)
{
	return x && (x & (x - 1)) == 0;
}

Test(svc, arrays_fill_a_power_of_two_bytes_with_slack)
{
	struct store_key k;
	const struct store_svc *svc;
	uint32_t rebuilt = 0;
	const struct svc_arr *last = NULL;

	for (uint32_t i = 1; i <= 1000; i++) {
		k = key_n("arr", i);
		cr_assert_eq(up_default(s, &k), STORE_CREATED);
		svc = svc_of(&k);
		cr_assert_not_null(svc);
		const struct svc_arr *a = svc->arr;
		size_t bytes = sizeof(*a) + sizeof(a->v[0]) * a->cap;

		cr_assert(pow2(bytes), "%u positions take %zu bytes", a->cap, bytes);
		cr_assert_geq(a->cap, a->n);
		cr_assert_eq(a->n, i, "appended in place, no holes");
		if (a != last) {
			/* A new array leaves at least 1/8 free after the append that made it. */
			cr_assert_geq(a->cap - (i - 1), a->cap / 8, "cap %u for %u", a->cap, i);
			rebuilt++;
			last = a;
		}
		store_poll(shard_for(s, &k));
	}
	/* 7, 15, 31, 63, 127, 255, 511, 1023 positions: 8 arrays for 1000. */
	cr_assert_eq(rebuilt, 8);
	cr_assert_eq(last->cap, 1023);
}

Test(svc, holes_are_compacted_once_they_are_most_of_the_array)
{
	struct store_key k;
	const struct store_svc *svc;

	for (uint32_t i = 1; i <= 100; i++) {
		k = key_n("holes", i);
		cr_assert_eq(up_default(s, &k), STORE_CREATED);
	}
	for (uint32_t i = 1; i <= 40; i++) {
		k = key_n("holes", i);
		cr_assert_eq(store_delete(shard_for(s, &k), &k), 0);
	}
	svc = svc_of(&k);
	cr_assert_eq(svc->arr->n, 100, "40 holes of 100: not yet");
	cr_assert_eq(svc->holes, 40);
	for (uint32_t i = 41; i <= 51; i++) {
		k = key_n("holes", i);
		cr_assert_eq(store_delete(shard_for(s, &k), &k), 0);
	}
	svc = svc_of(&k);
	cr_assert_eq(svc->holes, 0, "51 holes of 100: compacted");
	cr_assert_eq(svc->arr->n, 49);
	cr_assert_eq(svc->live, 49);
	for (uint32_t i = 0; i < svc->arr->n; i++) {
		cr_assert_not_null(svc->arr->v[i]);
		cr_assert_eq(svc->arr->v[i]->svc_pos, i);
	}
	store_poll(store_shard(s, 0));
}
