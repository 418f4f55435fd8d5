/* The change feed: local changes, coalesced per key, deletes included. */
#include "helpers.h"
#include "store/store_internal.h" /* feed_cap */

static void setup(void)
{
	fixture_default(1, 0, false);
}

TestSuite(feed, .init = setup, .fini = fixture_close);

Test(feed, coalesces_per_key_in_change_order)
{
	struct store_shard *sh = store_shard(s, 0);
	struct store_view out[16];
	struct store_val v;
	roaring_bitmap_t *slots = roaring_bitmap_create();
	struct store_key a = key_n("f", 1), b = key_n("f", 2), c = key_n("f", 3);

	store_val_default(&v);
	cr_assert_eq(store_upsert(sh, &a, &v), STORE_CREATED);
	cr_assert_eq(store_upsert(sh, &b, &v), STORE_CREATED);
	for (uint32_t w = 1; w < 50; w++) {
		v.weight_milli = w;
		cr_assert_eq(store_upsert(sh, &a, &v), STORE_CHANGED);
	}
	cr_assert_eq(store_upsert(sh, &c, &v), STORE_CREATED);
	cr_assert_eq(store_delete(sh, &b), 0);
	cr_assert_eq(store_touch(sh, &c), STORE_SAME);
	cr_assert_eq(store_feed_len(sh), 3);
	cr_assert_eq(store_feed_drain(sh, out, 2, slots), 2);
	cr_assert_eq(out[0].addr.ip[15], 1);
	cr_assert_eq(out[0].weight_milli, 49, "the feed carries the current state");
	cr_assert_eq(out[1].addr.ip[15], 2);
	cr_assert(out[1].flags & STORE_F_DELETED);
	cr_assert(roaring_bitmap_contains(slots, addr_slot(&a.addr)));
	cr_assert(roaring_bitmap_contains(slots, addr_slot(&b.addr)));
	cr_assert_eq(store_feed_len(sh), 1);
	cr_assert_eq(store_feed_drain(sh, out, 16, NULL), 1);
	cr_assert_eq(out[0].addr.ip[15], 3);
	cr_assert_eq(store_feed_drain(sh, out, 16, NULL), 0);

	/* After a drain the same key enters again on its next change. */
	v.weight_milli = 7;
	cr_assert_eq(store_upsert(sh, &a, &v), STORE_CHANGED);
	cr_assert_eq(store_feed_drain(sh, out, 16, NULL), 1);
	cr_assert_eq(out[0].weight_milli, 7);
	roaring_bitmap_free(slots);
}

Test(feed, unchanged_writes_and_applies_stay_out)
{
	struct store_shard *sh = store_shard(s, 0);
	struct store_view out[4];
	struct store_val v;
	struct store_key a = key_n("f", 1);
	struct store_record r;

	store_val_default(&v);
	cr_assert_eq(store_upsert(sh, &a, &v), STORE_CREATED);
	cr_assert_eq(store_feed_drain(sh, out, 4, NULL), 1);
	cr_assert_eq(store_upsert(sh, &a, &v), STORE_SAME);
	cr_assert_eq(store_touch(sh, &a), STORE_SAME);
	cr_assert_eq(store_feed_len(sh), 0);

	memset(&r, 0, sizeof(r));
	r.key = key_n("f", 9);
	store_val_default(&r.val);
	r.version = 1;
	r.node = 5;
	cr_assert_eq(store_apply(sh, &r), STORE_CREATED);
	cr_assert_eq(store_feed_len(sh), 0, "a peer's record is not re-synced from here");
}

Test(feed, expiry_changes_are_fed)
{
	struct store_shard *sh = store_shard(s, 0);
	struct store_view out[4];
	struct store_key a = key_n("f", 1);

	cr_assert_eq(up_default(s, &a), STORE_CREATED);
	cr_assert_eq(store_feed_drain(sh, out, 4, NULL), 1);
	fake_advance(&fc, 15000);
	cr_assert_eq(store_expire(sh, 100), 1);
	cr_assert_eq(store_feed_drain(sh, out, 4, NULL), 1);
	cr_assert_not(out[0].flags & STORE_F_HEALTHY);
	fake_advance(&fc, 15000);
	cr_assert_eq(store_expire(sh, 100), 1);
	cr_assert_eq(store_feed_drain(sh, out, 4, NULL), 1);
	cr_assert(out[0].flags & STORE_F_DELETED);
}

Test(feed, tombstone_in_feed_outlives_retention_until_drained)
{
	struct store_shard *sh = store_shard(s, 0);
	struct store_view out[4];
	struct store_key a = key_n("f", 1);
	struct store_stats st;

	cr_assert_eq(up_default(s, &a), STORE_CREATED);
	cr_assert_eq(store_delete(sh, &a), 0);
	fake_advance(&fc, cfg.tombstone_ms + 1);
	store_expire(sh, 100);
	store_stats(s, &st);
	cr_assert_eq(st.tombstones, 1, "still named by the feed");
	cr_assert_eq(store_feed_drain(sh, out, 4, NULL), 1);
	cr_assert(out[0].flags & STORE_F_DELETED);
	fake_advance(&fc, cfg.tombstone_ms);
	store_expire(sh, 100);
	store_stats(s, &st);
	cr_assert_eq(st.tombstones, 0);
}

/* Standalone (store_config.feed off): nothing is pushed, the writes are the same. */
Test(feed_off, writes_expiry_and_deletes_push_nothing, .fini = fixture_close)
{
	struct store_shard *sh;
	struct store_view out[4];
	struct store_val v;
	struct store_key a = key_n("f", 1), b = key_n("f", 2), c = key_n("f", 3);

	store_config_default(&cfg);
	cr_assert(cfg.feed, "the feed is on by default");
	cfg.feed = false;
	fixture_open(false);
	sh = store_shard(s, 0);
	store_val_default(&v);
	cr_assert_eq(store_upsert(sh, &a, &v), STORE_CREATED);
	cr_assert_eq(store_upsert(sh, &b, &v), STORE_CREATED);
	v.weight_milli = 3;
	cr_assert_eq(store_upsert(sh, &a, &v), STORE_CHANGED);
	cr_assert_eq(store_delete(sh, &b), 0);
	cr_assert_eq(store_delete(sh, &c), -ERR_NOT_FOUND, "a blind delete");
	fake_advance(&fc, 31000); /* past the default delete timeout: a expires */
	cr_assert_geq(expire_all(s), 1);
	cr_assert_eq(store_feed_len(sh), 0);
	cr_assert_eq(store_feed_drain(sh, out, 4, NULL), 0);
	cr_assert_eq(sh->feed_cap, 0, "no capacity reserved");

	struct store_stats st;

	store_stats(s, &st);
	cr_assert_eq(st.instances, 0);
	cr_assert_eq(st.expired_removed, 1);
	cr_assert_eq(st.deletes, 1);
	cr_assert_eq(st.blind_deletes, 1);
	cr_assert_eq(st.tombstones, 3, "a's expiry, b's delete and the blind one are remembered");
}
