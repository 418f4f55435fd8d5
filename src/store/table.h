/*
 * table.h - a single-writer, many-reader open-addressing hash set.
 *
 * Entries are object pointers with 16 bits of the hash packed into the top
 * (x86-64 and arm64 user pointers fit in 48 bits), so a probe compares tags
 * without touching the object. Linear probing from the home bucket, which is
 * the TOP bits of the 64-bit hash: a caller that puts a coarse key in the top
 * bits (the store puts the slot there) gets its entries laid out in key
 * order, so one slot's entries are one region of the array (table_region).
 *
 * Concurrency: one writer; readers on any thread under an epoch section.
 * A removal writes a TOMB marker in place; nothing ever becomes EMPTY again
 * and no entry moves, so a reader probing concurrently can never miss a
 * present entry. Growth (or a rebuild to drop tombs) builds a new array,
 * publishes it with a release store and retires the old one through the
 * epoch; readers still on the old array see a consistent older state.
 *
 * Bounds: load (live + tomb) stays <= 4/5; a rebuild sizes to <= 1/2 live
 * (table_reserve: to <= 4/5 of the size reserved).
 */
#ifndef DISTRO_STORE_TABLE_H
#define DISTRO_STORE_TABLE_H

#include "core/epoch.h"

#include <stdbool.h>
#include <stdint.h>

#define TABLE_EMPTY ((uintptr_t)0)
#define TABLE_TOMB  ((uintptr_t)1)

struct table_arr {
	uint32_t bits;
	uint32_t gen; /* rebuild counter, for cursors */
	uintptr_t e[];
};

struct table {
	struct table_arr *arr; /* published with release */
	uint64_t live;
	uint64_t tomb;
	uint32_t bits_min;
	uint32_t gen;
};

/* Compares a stored object with a lookup key. */
typedef bool table_eq_fn(const void *obj, const void *key);
/* Recomputes an object's hash for a rebuild. */
typedef uint64_t table_hash_fn(const void *obj);

int table_init(struct table *t, uint32_t bits_min);

/* Frees the array at once (no readers may remain). Objects are the caller's. */
void table_destroy(struct table *t);

/* Reader: the object matching key, or NULL. */
void *table_find(const struct table *t, uint64_t hash, table_eq_fn *eq, const void *key);

/*
 * Writer: adds obj (not already present). May rebuild the array, retiring the
 * old one through rec. 0 or -ERR_NOMEM (then the table is unchanged).
 */
int table_insert(struct table *t, struct epoch_rec *rec, uint64_t hash, void *obj,
                 table_hash_fn *rehash);

/*
 * Writer: makes room for n entries in all, so that inserts up to n do not
 * rebuild (the smallest array where n fill at most 4/5; nothing if the
 * array is large enough). For a bulk load whose size is known or
 * estimated ahead: one rebuild instead of one per doubling. 0 or
 * -ERR_NOMEM (the table is unchanged).
 */
int table_reserve(struct table *t, struct epoch_rec *rec, uint64_t n, table_hash_fn *rehash);

/* Writer: removes obj, which must be present. */
void table_remove(struct table *t, uint64_t hash, const void *obj);

static inline void *table_obj(uintptr_t e)
{
	return (void *)(e & (((uintptr_t)1 << 48) - 1));
}

static inline uint32_t table_home(uint32_t bits, uint64_t hash)
{
	return (uint32_t)(hash >> (64 - bits));
}

#endif
