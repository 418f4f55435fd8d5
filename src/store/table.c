#include "store/table.h"

#include "core/atomic.h"
#include "core/err.h"
#include "core/mem.h"

#include <assert.h>

#define TAG_SHIFT     48
#define REBUILD_AHEAD 32 /* buckets between a prefetch and the rehash that reads it */

static inline uintptr_t entry_make(uint64_t hash, const void *obj)
{
	assert(((uintptr_t)obj >> TAG_SHIFT) == 0);
	return ((uintptr_t)(hash & 0xffff) << TAG_SHIFT) | (uintptr_t)obj;
}

static inline bool entry_tag_is(uintptr_t e, uint64_t hash)
{
	return (e >> TAG_SHIFT) == (hash & 0xffff);
}

static size_t arr_bytes(uint32_t bits)
{
	return sizeof(struct table_arr) + (sizeof(uintptr_t) << bits);
}

/* A big array is a mapping of its own (core/mem.h): freed, it leaves RSS at once. */
static struct table_arr *arr_new(uint32_t bits, uint32_t gen)
{
	size_t bytes = arr_bytes(bits);
	struct table_arr *a = bytes >= MEM_BIG_BYTES ? mem_big_calloc(bytes) : mem_calloc(1, bytes);

	if (a) {
		a->bits = bits;
		a->gen = gen;
	}
	return a;
}

int table_init(struct table *t, uint32_t bits_min)
{
	if (bits_min < 3)
		bits_min = 3;
	t->bits_min = bits_min;
	t->live = 0;
	t->tomb = 0;
	t->gen = 0;
	t->arr = arr_new(bits_min, 0);
	return t->arr ? 0 : -ERR_NOMEM;
}

static void arr_release(struct table_arr *a)
{
	size_t bytes;

	if (a == NULL)
		return;
	bytes = arr_bytes(a->bits);
	if (bytes >= MEM_BIG_BYTES)
		mem_big_free(a, bytes);
	else
		mem_free(a);
}

void table_destroy(struct table *t)
{
	arr_release(t->arr);
	t->arr = NULL;
}

void *table_find(const struct table *t, uint64_t hash, table_eq_fn *eq, const void *key)
{
	const struct table_arr *a = LOAD_ACQUIRE(&t->arr);
	uint32_t mask = (1u << a->bits) - 1;
	uint32_t i = table_home(a->bits, hash);

	for (;;) {
		uintptr_t e = LOAD_ACQUIRE(&a->e[i]);

		if (e == TABLE_EMPTY)
			return NULL;
		if (e != TABLE_TOMB && entry_tag_is(e, hash) && eq(table_obj(e), key))
			return table_obj(e);
		i = (i + 1) & mask;
	}
}

/* Places an entry in the first EMPTY or TOMB bucket from its home. */
static bool arr_place(struct table_arr *a, uint64_t hash, uintptr_t entry)
{
	uint32_t mask = (1u << a->bits) - 1;
	uint32_t i = table_home(a->bits, hash);

	for (;;) {
		uintptr_t e = a->e[i];

		if (e == TABLE_EMPTY || e == TABLE_TOMB) {
			STORE_RELEASE(&a->e[i], entry);
			return e == TABLE_TOMB;
		}
		i = (i + 1) & mask;
	}
}

static void arr_free(void *ctx, void *obj)
{
	(void)ctx;
	arr_release(obj);
}

/* Bits of an array where `n` entries fill at most 1/den of the buckets (num of den). */
static uint32_t bits_for(const struct table *t, uint64_t n, uint64_t num, uint64_t den)
{
	uint32_t bits = t->bits_min;

	while (den * n > num * ((uint64_t)1 << bits))
		bits++;
	return bits;
}

static int rebuild(struct table *t, struct epoch_rec *rec, table_hash_fn *rehash, uint32_t bits)
{
	struct table_arr *old = t->arr, *a;

	uint64_t n = (uint64_t)1 << old->bits;

	a = arr_new(bits, t->gen + 1);
	if (a == NULL)
		return -ERR_NOMEM;
	/*
	 * The rehash reads each object, in table order: a cache miss per
	 * entry, which at a million entries was most of the rebuild. The
	 * objects REBUILD_AHEAD buckets on are prefetched, so the misses
	 * overlap instead of following one another.
	 */
	for (uint64_t i = 0; i < n; i++) {
		uintptr_t e = old->e[i];

		if (i + REBUILD_AHEAD < n) {
			uintptr_t f = old->e[i + REBUILD_AHEAD];

			if (f != TABLE_EMPTY && f != TABLE_TOMB)
				__builtin_prefetch(table_obj(f));
		}
		if (e != TABLE_EMPTY && e != TABLE_TOMB)
			arr_place(a, rehash(table_obj(e)), e);
	}
	t->gen++;
	t->tomb = 0;
	STORE_RELEASE(&t->arr, a);
	epoch_retire(rec, arr_free, NULL, old);
	return 0;
}

int table_insert(struct table *t, struct epoch_rec *rec, uint64_t hash, void *obj,
                 table_hash_fn *rehash)
{
	uint64_t cap = (uint64_t)1 << t->arr->bits;

	if (5 * (t->live + t->tomb + 1) > 4 * cap) {
		int rc = rebuild(t, rec, rehash, bits_for(t, t->live + 1, 1, 2));

		if (rc < 0)
			return rc;
	}
	if (arr_place(t->arr, hash, entry_make(hash, obj)))
		t->tomb--;
	t->live++;
	return 0;
}

int table_reserve(struct table *t, struct epoch_rec *rec, uint64_t n, table_hash_fn *rehash)
{
	/* The insert that would not grow the table: its load bound, 4/5, holds for n. */
	if (n <= t->live || 5 * (n + t->tomb) <= 4 * ((uint64_t)1 << t->arr->bits))
		return 0;
	return rebuild(t, rec, rehash, bits_for(t, n, 4, 5));
}

void table_remove(struct table *t, uint64_t hash, const void *obj)
{
	struct table_arr *a = t->arr;
	uint32_t mask = (1u << a->bits) - 1;
	uint32_t i = table_home(a->bits, hash);

	for (;;) {
		uintptr_t e = a->e[i];

		assert(e != TABLE_EMPTY);
		if (e != TABLE_TOMB && table_obj(e) == obj) {
			STORE_RELEASE(&a->e[i], TABLE_TOMB);
			t->live--;
			t->tomb++;
			return;
		}
		i = (i + 1) & mask;
	}
}
