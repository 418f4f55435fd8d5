/*
 * store_reset: a store emptied by it is a new store. The check is
 * behavioural: the reset store and one just created, given the same
 * writes, must agree on every answer (results, versions, checksums,
 * counters), and nothing written before the reset - instances,
 * tombstones, the clock moved by a newer record, timings, leases, the
 * feed - may show through.
 */
#include "helpers.h"

static struct store_kv meta[2] = { { { "k", 1 }, { "v", 1 } }, { { "zone", 4 }, { "a", 1 } } };

/* Every kind of state the store keeps, on both shards. */
static void fill(struct store *st, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct store_key k = key_n(i % 3 ? "a" : "b", i);
		struct store_val v;

		store_val_default(&v);
		v.meta = meta;
		v.meta_n = i % 3;
		v.timing = (struct store_timing){ 1000 + i % 4, 5000, 9000 };
		cr_assert_geq(up(st, &k, &v), 0);
		if (i % 5 == 0)
			cr_assert_eq(store_delete(shard_for(st, &k), &k), 0); /* a tombstone */
		else if (i % 5 == 1)
			cr_assert_eq(store_hold(shard_for(st, &k), &k, 7, 1000), 0);
	}
	/* A record from the future moves the shard's clock past it. */
	struct store_record r = { .key = key_n("a", 1000) };

	store_val_default(&r.val);
	r.version = ((uint64_t)(fc.wall_ms + 30000) << 16) + 5;
	r.node = 3;
	cr_assert_eq(store_apply(shard_for(st, &r.key), &r), STORE_CREATED);
}

/* The same writes on two stores give the same answers. */
static void same_answers(struct store *x, struct epoch_rec *rx, struct store *y,
                         struct epoch_rec *ry)
{
	struct store_stats sx, sy;
	uint64_t cx, cy;

	for (uint32_t i = 0; i < 40; i++) {
		struct store_key k = key_n(i % 2 ? "a" : "c", i);
		struct store_view vx, vy;
		struct store_record r = { .key = k };

		/* Older than the tombstones and the record of fill(): only a new store takes it. */
		store_val_default(&r.val);
		r.version = ((uint64_t)(fc.wall_ms - 5000) << 16) + i;
		r.node = 2;
		cr_assert_eq(store_apply(shard_for(x, &k), &r), store_apply(shard_for(y, &k), &r),
		             "record %u", i);
		cr_assert_eq(up_default(x, &k), up_default(y, &k), "write %u", i);
		epoch_enter(rx);
		epoch_enter(ry);
		cr_assert_eq(store_get(x, &k, &vx), 0);
		cr_assert_eq(store_get(y, &k, &vy), 0);
		cr_assert_eq(vx.version, vy.version, "version of %u: the clock was reset", i);
		cr_assert_eq(store_view_hash(&vx), store_view_hash(&vy));
		epoch_exit(ry);
		epoch_exit(rx);
	}
	cr_assert_eq(store_range_checksum(x, 0, STORE_SLOTS, &cx),
	             store_range_checksum(y, 0, STORE_SLOTS, &cy));
	cr_assert_eq(cx, cy);
	store_stats(x, &sx);
	store_stats(y, &sy);
	cr_assert_eq(memcmp(&sx, &sy, sizeof(sx)), 0, "every counter as in a new store");
	for (uint32_t i = 0; i < store_shards(x); i++)
		cr_assert_eq(store_feed_len(store_shard(x, i)), store_feed_len(store_shard(y, i)));
}

Test(reset, is_a_new_store)
{
	static struct epoch_rec rx, ry;
	struct store *x, *y;
	struct store_stats st;
	uint64_t count;

	store_config_default(&cfg);
	cfg.shards = 2;
	fake_clock_install(&cfg, &fc);
	cr_assert_eq(store_create(&cfg, &x), 0);
	epoch_register(store_epoch(x), &rx);
	fill(x, 200);
	store_stats(x, &st);
	cr_assert_gt(st.instances, 0);
	cr_assert_gt(st.leases, 0);

	for (int round = 0; round < 2; round++) { /* a reset store resets again */
		cr_assert_eq(store_reset(x), 0);
		store_range_checksum(x, 0, STORE_SLOTS, &count);
		store_stats(x, &st);
		cr_assert_eq(count, 0);
		cr_assert_eq(st.instances + st.tombstones + st.services + st.leases, 0);
		epoch_register(store_epoch(x), &rx); /* the reset forgot it */

		cr_assert_eq(store_create(&cfg, &y), 0);
		epoch_register(store_epoch(y), &ry);
		same_answers(x, &rx, y, &ry);
		epoch_unregister(&ry);
		store_destroy(y);
		fill(x, 50 + round);
	}
	epoch_unregister(&rx);
	store_destroy(x);
}
