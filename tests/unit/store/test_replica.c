/* Replicated records: last writer wins by (version, node); deletes never come back. */
#include "helpers.h"

static void setup(void)
{
	fixture_default(2, 1, true);
}

TestSuite(replica, .init = setup, .fini = fixture_close);

static struct store_record rec(uint32_t n, uint64_t version, uint16_t node, uint32_t weight)
{
	struct store_record r;

	memset(&r, 0, sizeof(r));
	r.key = key_n("svc", n);
	store_val_default(&r.val);
	r.val.weight_milli = weight;
	r.version = version;
	r.node = node;
	return r;
}

static int apply(const struct store_record *r)
{
	return store_apply(shard_for(s, &r->key), r);
}

static uint32_t weight_of(uint32_t n)
{
	struct store_key k = key_n("svc", n);
	struct store_view v;

	cr_assert_eq(store_get(s, &k, &v), 0);
	return v.weight_milli;
}

Test(replica, newer_version_wins_older_refused)
{
	struct store_record r = rec(1, 100, 2, 1000);
	struct store_view v;

	cr_assert_eq(apply(&r), STORE_CREATED);
	r = rec(1, 200, 2, 2000);
	cr_assert_eq(apply(&r), STORE_CHANGED);
	cr_assert_eq(weight_of(1), 2000);
	r = rec(1, 150, 3, 3000);
	cr_assert_eq(apply(&r), -ERR_STALE);
	cr_assert_eq(weight_of(1), 2000);
	r = rec(1, 200, 2, 3000);
	cr_assert_eq(apply(&r), -ERR_STALE, "an equal (version, node) is not newer");
	cr_assert_eq(store_get(s, &r.key, &v), 0);
	cr_assert_eq(v.version, 200);
	cr_assert_eq(v.node, 2);
}

Test(replica, equal_version_tie_broken_by_node)
{
	struct store_record r = rec(2, 500, 2, 1000);

	cr_assert_eq(apply(&r), STORE_CREATED);
	r = rec(2, 500, 3, 4000);
	cr_assert_eq(apply(&r), STORE_CHANGED);
	cr_assert_eq(weight_of(2), 4000);
	r = rec(2, 500, 1, 5000);
	cr_assert_eq(apply(&r), -ERR_STALE);
	cr_assert_eq(weight_of(2), 4000);
}

Test(replica, delete_is_not_resurrected_by_older_update)
{
	struct store_record r = rec(3, 100, 2, 1000);
	struct store_view v;

	cr_assert_eq(apply(&r), STORE_CREATED);
	r.version = 300;
	r.deleted = true;
	cr_assert_eq(apply(&r), STORE_CHANGED);
	cr_assert_eq(store_get(s, &r.key, &v), -ERR_NOT_FOUND);
	r = rec(3, 200, 9, 7000); /* late update, written before the delete */
	cr_assert_eq(apply(&r), -ERR_STALE);
	cr_assert_eq(store_get(s, &r.key, &v), -ERR_NOT_FOUND);
	r = rec(3, 301, 2, 7000); /* a genuinely newer register */
	cr_assert_eq(apply(&r), STORE_CREATED);
	cr_assert_eq(weight_of(3), 7000);
}

Test(replica, delete_arriving_first_is_remembered)
{
	struct store_record r = rec(4, 500, 2, 1000);
	struct store_view v;
	struct store_stats st;

	r.deleted = true;
	cr_assert_eq(apply(&r), STORE_SAME);
	store_stats(s, &st);
	cr_assert_eq(st.tombstones, 1);
	cr_assert_eq(st.instances, 0);
	r = rec(4, 400, 2, 1000); /* the create it deleted, delivered late */
	cr_assert_eq(apply(&r), -ERR_STALE);
	cr_assert_eq(store_get(s, &r.key, &v), -ERR_NOT_FOUND);
	cr_assert_eq(store_slot_checksum(s, addr_slot(&r.key.addr), NULL), 0,
	             "a tombstone adds nothing to the checksum");
}

Test(replica, tombstone_forgotten_after_retention)
{
	struct store_record r = rec(5, 500, 2, 1000);
	struct store_stats st;

	r.deleted = true;
	cr_assert_eq(apply(&r), STORE_SAME);
	fake_advance(&fc, cfg.tombstone_ms - 1);
	expire_all(s);
	store_stats(s, &st);
	cr_assert_eq(st.tombstones, 1);
	fake_advance(&fc, 1);
	expire_all(s);
	store_stats(s, &st);
	cr_assert_eq(st.tombstones, 0);
	cr_assert_eq(st.tombstones_purged, 1);
	cr_assert_eq(st.services, 0, "the service went with its last record");
	r = rec(5, 400, 2, 1000);
	cr_assert_eq(apply(&r), STORE_CREATED, "after retention the old delete is forgotten");
}

Test(replica, local_write_after_apply_wins)
{
	/* A peer's clock runs ahead (within the skew bound): our next local version still wins. */
	uint64_t future = ((uint64_t)fc.wall_ms + 30 * 1000) << 16;
	struct store_record r = rec(6, future, 2, 1000);
	struct store_val v;
	struct store_view got;

	cr_assert_eq(apply(&r), STORE_CREATED);
	store_val_default(&v);
	v.weight_milli = 9000;
	cr_assert_eq(up(s, &r.key, &v), STORE_CHANGED);
	cr_assert_eq(store_get(s, &r.key, &got), 0);
	cr_assert_gt(got.version, future);
	cr_assert_eq(got.node, 1);
	cr_assert_eq(store_delete(shard_for(s, &r.key), &r.key), 0);
	r.version = future + 1; /* older than the local delete */
	cr_assert_eq(apply(&r), -ERR_STALE);
}

Test(replica, applied_records_are_not_expired_locally)
{
	struct store_record r = rec(7, 100, 2, 1000);
	struct store_view v;

	cr_assert_eq(apply(&r), STORE_CREATED);
	fake_advance(&fc, 10 * 60 * 1000);
	expire_all(s);
	cr_assert_eq(store_get(s, &r.key, &v), 0);
	cr_assert(v.flags & STORE_F_HEALTHY, "the owner expires it, not a replica");
	/* A touch (takeover) starts tracking with a full fresh deadline. */
	cr_assert_eq(store_touch(shard_for(s, &r.key), &r.key), STORE_SAME);
	fake_advance(&fc, 14999);
	expire_all(s);
	cr_assert_eq(store_get(s, &r.key, &v), 0);
	cr_assert(v.flags & STORE_F_HEALTHY);
	fake_advance(&fc, 1);
	expire_all(s);
	cr_assert_eq(store_get(s, &r.key, &v), 0);
	cr_assert_not(v.flags & STORE_F_HEALTHY);
}

Test(replica, bad_replicated_record_refused)
{
	struct store_record r = rec(8, 100, 2, 1000);

	r.val.weight_milli = 20000000;
	cr_assert_eq(apply(&r), -ERR_WEIGHT);
	r = rec(8, 100, 2, 1000);
	r.key.addr.port = 0;
	cr_assert_eq(apply(&r), -ERR_ADDR);
}

Test(replica, versions_far_ahead_of_our_clock_are_refused)
{
	struct store_record r = rec(9, ((uint64_t)fc.wall_ms + 60001) << 16, 2, 1000);
	struct store_view v;

	cr_assert_eq(apply(&r), -ERR_CLOCK_SKEW);
	cr_assert_eq(store_get(s, &r.key, &v), -ERR_NOT_FOUND);
	r.version = UINT64_MAX;
	cr_assert_eq(apply(&r), -ERR_CLOCK_SKEW, "no wrap-around of the local clock");
	r.version = ((uint64_t)fc.wall_ms + 60000) << 16;
	cr_assert_eq(apply(&r), STORE_CREATED);
}

Test(replica, a_newer_delete_restarts_tombstone_retention)
{
	struct store_record r = rec(10, 100, 2, 1000);
	struct store_stats st;

	r.deleted = true;
	cr_assert_eq(apply(&r), STORE_SAME);
	fake_advance(&fc, cfg.tombstone_ms - 10);
	r.version = 200;
	cr_assert_eq(apply(&r), STORE_SAME);
	fake_advance(&fc, 20);
	expire_all(s);
	store_stats(s, &st);
	cr_assert_eq(st.tombstones, 1, "remembered a full period after the newer delete");
	r = rec(10, 150, 2, 1000);
	cr_assert_eq(apply(&r), -ERR_STALE);
}

Test(replica, timing_change_by_apply_keeps_expiry_order)
{
	/* X beats at t0 with the default timing; Y at t0+10 s with a shorter one (B). */
	struct store_key kx = key_n("svc", 11), ky = key_n("svc", 12);
	struct store_val vb;
	struct store_view v;

	cr_assert_eq(up_default(s, &kx), STORE_CREATED);
	fake_advance(&fc, 10000);
	store_val_default(&vb);
	vb.timing = (struct store_timing){ 1000, 15000, 20000 };
	cr_assert_eq(up(s, &ky, &vb), STORE_CREATED);
	/* A peer's record moves X to timing B. */
	struct store_record r = rec(11, ((uint64_t)fc.wall_ms << 16) + 1000, 2, 1000);

	r.val.timing = vb.timing;
	cr_assert_eq(apply(&r), STORE_CHANGED);
	/* X's deadline under B counts from now (t0+10 s): due at t0+25 s, before Y's at t0+25 s. */
	fake_advance(&fc, 15000);
	expire_all(s);
	epoch_exit(&rd);
	epoch_enter(&rd);
	cr_assert_eq(store_get(s, &kx, &v), 0);
	cr_assert_not(v.flags & STORE_F_HEALTHY, "X expired on time under its new timing");
	cr_assert_eq(store_get(s, &ky, &v), 0);
	cr_assert_not(v.flags & STORE_F_HEALTHY);
}
