/* The RCU hash set: find/insert/remove, tombs, rebuilds, slot-ordered layout. */
#include "core/err.h"
#include "store/table.h"

#include <criterion/criterion.h>
#include <stdlib.h>

static struct epoch ep;
static struct epoch_rec rec;

static void setup(void)
{
	epoch_init(&ep);
	epoch_register(&ep, &rec);
}

static void teardown(void)
{
	epoch_unregister(&rec);
}

TestSuite(table, .init = setup, .fini = teardown);

struct obj {
	uint64_t hash;
	uint32_t id;
};

static bool obj_eq(const void *o, const void *key)
{
	return ((const struct obj *)o)->id == *(const uint32_t *)key;
}

static uint64_t obj_hash(const void *o)
{
	return ((const struct obj *)o)->hash;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

Test(table, insert_find_remove_and_rebuild)
{
	enum { N = 20000 };
	static struct obj objs[N];
	struct table t;
	uint32_t gen0;

	cr_assert_eq(table_init(&t, 3), 0);
	gen0 = t.arr->gen;
	for (uint32_t i = 0; i < N; i++) {
		objs[i] = (struct obj){ mix(i + 1), i };
		cr_assert_eq(table_insert(&t, &rec, objs[i].hash, &objs[i], obj_hash), 0);
	}
	cr_assert_gt(t.arr->gen, gen0, "grew");
	cr_assert_leq(5 * t.live, 4ull << t.arr->bits, "load stays under 4/5");
	for (uint32_t i = 0; i < N; i++)
		cr_assert_eq(table_find(&t, objs[i].hash, obj_eq, &objs[i].id), &objs[i]);
	uint32_t missing = N + 5;

	cr_assert_null(table_find(&t, mix(missing + 1), obj_eq, &missing));
	for (uint32_t i = 0; i < N; i += 2)
		table_remove(&t, objs[i].hash, &objs[i]);
	cr_assert_eq(t.live, N / 2);
	for (uint32_t i = 0; i < N; i++)
		cr_assert_eq(table_find(&t, objs[i].hash, obj_eq, &objs[i].id),
		             i % 2 ? &objs[i] : NULL);
	/* Churn through tombs: the table rebuilds rather than filling up. */
	for (uint32_t round = 0; round < 10; round++) {
		for (uint32_t i = 0; i < N; i += 2)
			cr_assert_eq(table_insert(&t, &rec, objs[i].hash, &objs[i], obj_hash), 0);
		for (uint32_t i = 0; i < N; i += 2)
			table_remove(&t, objs[i].hash, &objs[i]);
		cr_assert_leq(5 * (t.live + t.tomb), 4ull << t.arr->bits);
	}
	for (uint32_t i = 1; i < N; i += 2)
		cr_assert_eq(table_find(&t, objs[i].hash, obj_eq, &objs[i].id), &objs[i]);
	epoch_barrier(&rec);
	table_destroy(&t);
}

Test(table, top_bits_order_the_layout)
{
	enum { N = 1000 };
	static struct obj objs[N];
	struct table t;

	cr_assert_eq(table_init(&t, 12), 0);
	for (uint32_t i = 0; i < N; i++) {
		/* top 4 bits: a "slot" 0..15 */
		objs[i] = (struct obj){ ((uint64_t)(i % 16) << 60) | (mix(i) >> 4), i };
		cr_assert_eq(table_insert(&t, &rec, objs[i].hash, &objs[i], obj_hash), 0);
	}
	/* Every entry lies at or after its home and before the first EMPTY after it. */
	uint32_t mask = (1u << t.arr->bits) - 1;

	for (uint32_t i = 0; i < N; i++) {
		uint32_t pos = table_home(t.arr->bits, objs[i].hash);
		uint32_t steps = 0;

		while (table_obj(t.arr->e[pos]) != &objs[i]) {
			cr_assert_neq(t.arr->e[pos], TABLE_EMPTY);
			pos = (pos + 1) & mask;
			cr_assert_lt(++steps, 1u << t.arr->bits);
		}
		cr_assert_eq(table_home(t.arr->bits, objs[i].hash) >> (t.arr->bits - 4), i % 16);
	}
	table_destroy(&t);
}

Test(table, reserve_sizes_once_and_inserts_up_to_it_do_not_rebuild)
{
	enum { N = 100000, FIRST = 1000 };
	static struct obj objs[N];
	struct table t;
	uint32_t gen, bits;

	cr_assert_eq(table_init(&t, 3), 0);
	for (uint32_t i = 0; i < FIRST; i++) {
		objs[i] = (struct obj){ mix(i + 1), i };
		cr_assert_eq(table_insert(&t, &rec, objs[i].hash, &objs[i], obj_hash), 0);
	}
	cr_assert_eq(table_reserve(&t, &rec, N, obj_hash), 0);
	gen = t.arr->gen;
	bits = t.arr->bits;
	/* The smallest array where N fill at most 4/5: 2^17 (131072 * 4/5 >= 100000). */
	cr_assert_eq(bits, 17);
	for (uint32_t i = 0; i < FIRST; i++)
		cr_assert_eq(table_find(&t, objs[i].hash, obj_eq, &objs[i].id), &objs[i],
		             "an entry from before the reserve is found after it");
	for (uint32_t i = FIRST; i < N; i++) {
		objs[i] = (struct obj){ mix(i + 1), i };
		cr_assert_eq(table_insert(&t, &rec, objs[i].hash, &objs[i], obj_hash), 0);
	}
	cr_assert_eq(t.arr->gen, gen, "no rebuild up to the size reserved");
	for (uint32_t i = 0; i < N; i++)
		cr_assert_eq(table_find(&t, objs[i].hash, obj_eq, &objs[i].id), &objs[i]);
	/* Reserving what already fits, or fewer than held, changes nothing. */
	cr_assert_eq(table_reserve(&t, &rec, N, obj_hash), 0);
	cr_assert_eq(table_reserve(&t, &rec, 10, obj_hash), 0);
	cr_assert_eq(t.arr->gen, gen);
	cr_assert_eq(t.arr->bits, bits);
	epoch_barrier(&rec);
	table_destroy(&t);
}
