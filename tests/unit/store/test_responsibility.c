/*
 * Cluster responsibility in the store: expiry only for the slots this node
 * owns (the owns hook), and store_forget, with which repair drops what a
 * slot's owner no longer has.
 */
#include "helpers.h"

static bool owned[STORE_SLOTS];

static bool owns(void *ctx, uint32_t slot)
{
	(void)ctx;
	return owned[slot];
}

static void setup(void)
{
	for (uint32_t i = 0; i < STORE_SLOTS; i++)
		owned[i] = true;
	store_config_default(&cfg);
	cfg.shards = 2;
	cfg.node_id = 1;
	cfg.owns = owns;
	fixture_open(true);
}

TestSuite(responsibility, .init = setup, .fini = fixture_close);

static uint32_t slot_of_n(uint32_t n)
{
	struct store_key k = key_n("svc", n);

	return addr_slot(&k.addr);
}

static bool healthy(uint32_t n)
{
	struct store_key k = key_n("svc", n);
	struct store_view v;

	cr_assert_eq(store_get(s, &k, &v), 0);
	return v.flags & STORE_F_HEALTHY;
}

Test(responsibility, another_nodes_slot_is_not_expired_here)
{
	struct store_key a = key_n("svc", 1), b = key_n("svc", 2);
	struct store_stats st;

	cr_assert_neq(slot_of_n(1), slot_of_n(2));
	cr_assert_geq(up_default(s, &a), 0);
	cr_assert_geq(up_default(s, &b), 0);
	owned[slot_of_n(2)] = false; /* slot of b moved to another member */
	fake_advance(&fc, 15000);
	expire_all(s);
	cr_assert_not(healthy(1), "our slot expires as usual");
	cr_assert(healthy(2), "the owner expires it, not us");
	store_stats(s, &st);
	cr_assert_eq(st.expiry_released, 1);
	fake_advance(&fc, 60 * 60 * 1000);
	expire_all(s);
	cr_assert(healthy(2), "released: never expired here while not ours");
}

Test(responsibility, a_slot_taken_back_expires_after_a_full_fresh_deadline)
{
	struct store_key b = key_n("svc", 2);

	cr_assert_geq(up_default(s, &b), 0);
	owned[slot_of_n(2)] = false;
	fake_advance(&fc, 15000);
	expire_all(s);
	cr_assert(healthy(2));
	owned[slot_of_n(2)] = true; /* takeover: every instance is touched */
	cr_assert_eq(store_touch(shard_for(s, &b), &b), STORE_SAME);
	fake_advance(&fc, 14999);
	expire_all(s);
	cr_assert(healthy(2), "a takeover gives the whole timeout");
	fake_advance(&fc, 1);
	expire_all(s);
	cr_assert_not(healthy(2));
}

Test(responsibility, forget_drops_only_what_is_older_than_the_listing)
{
	struct store_key a = key_n("svc", 3);
	struct store_view v;
	struct store_stats st;

	cr_assert_geq(up_default(s, &a), 0);
	cr_assert_eq(store_get(s, &a, &v), 0);
	cr_assert_eq(store_forget(shard_for(s, &a), &a, v.version, false), -ERR_STALE,
	             "written at or after the owner's listing: kept");
	cr_assert_eq(store_forget(shard_for(s, &a), &a, v.version + 1, false), 0);
	cr_assert_eq(store_get(s, &a, &v), -ERR_NOT_FOUND);
	cr_assert_eq(store_forget(shard_for(s, &a), &a, UINT64_MAX, false), -ERR_NOT_FOUND);
	store_stats(s, &st);
	cr_assert_eq(st.forgotten, 1);
	cr_assert_eq(st.instances, 0);
	cr_assert_eq(st.tombstones, 1, "remembered, so an old copy cannot come back");
}

Test(responsibility, a_forgotten_copy_is_not_resurrected_but_a_newer_write_is_taken)
{
	struct store_key a = key_n("svc", 4);
	struct store_view v;
	struct store_record r;
	uint64_t ver;

	cr_assert_geq(up_default(s, &a), 0);
	cr_assert_eq(store_get(s, &a, &v), 0);
	ver = v.version;
	cr_assert_eq(store_forget(shard_for(s, &a), &a, ver + 1, false), 0);
	memset(&r, 0, sizeof(r));
	r.key = a;
	store_val_default(&r.val);
	r.version = ver;
	r.node = v.node;
	cr_assert_eq(store_apply(shard_for(s, &a), &r), -ERR_STALE, "the same copy again");
	r.version = ver - 1;
	cr_assert_eq(store_repair_apply(shard_for(s, &a), &r), -ERR_STALE,
	             "an older copy, even in the owner's listing");
	r.version = ver + 5;
	cr_assert_eq(store_apply(shard_for(s, &a), &r), STORE_CREATED, "a newer write revives it");
	cr_assert_eq(store_get(s, &a, &v), 0);
}

/*
 * The owner's listing lacked a copy (it had not got it yet from the old
 * owner), so this replica forgot it; a later listing of the owner holds
 * that very copy: taken back, or this replica would lack a live instance
 * until the tombstone expired, the slot's digest differing every round.
 */
Test(responsibility, a_forgotten_copy_the_owner_lists_later_is_taken_back)
{
	struct store_key a = key_n("svc", 6);
	uint32_t slot = slot_of_n(6), count, count0;
	struct store_view v;
	struct store_record r;
	struct store_stats st;
	uint64_t sum;
	int rc;

	cr_assert_geq(up_default(s, &a), 0);
	cr_assert_eq(store_get(s, &a, &v), 0);
	sum = store_slot_checksum(s, slot, &count0);
	cr_assert_eq(store_forget(shard_for(s, &a), &a, v.version + 1, false), 0);
	memset(&r, 0, sizeof(r));
	r.key = a;
	store_val_default(&r.val);
	r.version = v.version;
	r.node = v.node;
	cr_assert_eq(store_apply(shard_for(s, &a), &r), -ERR_STALE, "a sync of it: still refused");
	store_apply_batch(shard_for(s, &a), &r, 1, STORE_FROM_LOAD, &rc);
	cr_assert_eq(rc, -ERR_STALE, "a load from any peer (not the owner): still refused");
	cr_assert_eq(store_repair_apply(shard_for(s, &a), &r), STORE_CREATED,
	             "the owner lists it now: taken back");
	cr_assert_eq(store_get(s, &a, &v), 0);
	cr_assert_eq(v.version, r.version, "as the owner has it");
	store_stats(s, &st);
	cr_assert_eq(st.instances, 1);
	cr_assert_eq(st.tombstones, 0);
	cr_assert_eq(store_slot_checksum(s, slot, &count), sum, "the slot as before the forget");
	cr_assert_eq(count, count0);

	/* A tombstone of a delete is no forgotten copy: the same version live stays refused. */
	r.deleted = true;
	r.version = v.version + 10;
	cr_assert_eq(store_repair_apply(shard_for(s, &a), &r), STORE_CHANGED);
	r.deleted = false;
	cr_assert_eq(store_repair_apply(shard_for(s, &a), &r), -ERR_STALE,
	             "a deleted instance is not revived by a copy of the delete's version");
}

Test(responsibility, forget_keeps_slot_checksums_equal_to_a_store_without_the_instance)
{
	struct store_key a = key_n("svc", 5);
	uint32_t slot = slot_of_n(5), count, count0;
	uint64_t before, after;
	struct store_view v;

	before = store_slot_checksum(s, slot, &count0);
	cr_assert_geq(up_default(s, &a), 0);
	cr_assert_eq(store_get(s, &a, &v), 0);
	cr_assert_eq(store_forget(shard_for(s, &a), &a, v.version + 1, false), 0);
	after = store_slot_checksum(s, slot, &count);
	cr_assert_eq(after, before);
	cr_assert_eq(count, count0);
}

Test(responsibility, a_tombstone_is_never_replaced_by_an_older_live_record_and_goes_back)
{
	struct store_key a = key_n("svc", 7);
	struct store_record r;
	struct store_view v;
	struct store_stats st;
	uint32_t feed;

	memset(&r, 0, sizeof(r));
	r.key = a;
	store_val_default(&r.val);
	r.version = 1000;
	r.node = 2;
	cr_assert_eq(store_apply(shard_for(s, &a), &r), STORE_CREATED);
	/* A deregister acknowledged on our side of a cut link, at version 2000. */
	r.deleted = true;
	r.version = 2000;
	cr_assert_eq(store_apply(shard_for(s, &a), &r), STORE_CHANGED);
	{ /* nothing of ours is waiting */
		static struct store_view drained[8];

		store_feed_drain(shard_for(s, &a), drained, 8, NULL);
	}
	r.deleted = false;
	r.version = 1000;
	cr_assert_eq(store_apply(shard_for(s, &a), &r), -ERR_STALE, "sync: last writer wins");
	cr_assert_eq(store_feed_len(shard_for(s, &a)), 0, "a stale sync record sends nothing back");
	cr_assert_eq(store_repair_apply(shard_for(s, &a), &r), -ERR_STALE,
	             "the owner's older live record does not undo the delete");
	cr_assert_eq(store_get(s, &a, &v), -ERR_NOT_FOUND);
	feed = store_feed_len(shard_for(s, &a));
	cr_assert_eq(feed, 1, "the newer tombstone goes back to the owner and everyone");
	store_stats(s, &st);
	cr_assert_eq(st.refed, 1);
	r.version = 3000;
	cr_assert_eq(store_repair_apply(shard_for(s, &a), &r), STORE_CREATED,
	             "a live record newer than the delete is taken");
	cr_assert_eq(store_get(s, &a, &v), 0);
	cr_assert_eq(v.version, 3000);
}

/* A record as expiry at another node writes it: removed (or unhealthy), flagged EXPIRED. */
static struct store_record expiry_record(struct store_key k, uint64_t version, bool deleted)
{
	struct store_record r;

	memset(&r, 0, sizeof(r));
	r.key = k;
	store_val_default(&r.val);
	r.val.healthy = false;
	r.version = version;
	r.node = 2;
	r.deleted = deleted;
	r.expired = true;
	return r;
}

Test(responsibility, an_expiry_elsewhere_does_not_remove_an_instance_beating_here)
{
	struct store_key a = key_n("svc", 20), b = key_n("svc", 21);
	struct store_record r;
	struct store_view v;
	struct store_stats st;

	cr_assert_geq(up_default(s, &a), 0); /* registered and tracked here */
	fake_advance(&fc, 4000);
	cr_assert_geq(store_touch(shard_for(s, &a), &a), 0, "it beats here");
	cr_assert_eq(store_get(s, &a, &v), 0);
	r = expiry_record(a, v.version + 100, true);
	cr_assert_eq(store_apply(shard_for(s, &a), &r), STORE_CHANGED);
	cr_assert_eq(store_get(s, &a, &v), 0, "still listed");
	cr_assert(v.flags & STORE_F_HEALTHY);
	cr_assert_gt(v.version, r.version,
	             "written again, newer than the expiry: it wins everywhere");
	cr_assert_not(v.flags & STORE_F_EXPIRED);
	r = expiry_record(a, v.version + 100, false);
	cr_assert_eq(store_apply(shard_for(s, &a), &r), STORE_CHANGED);
	cr_assert_eq(store_get(s, &a, &v), 0);
	cr_assert(v.flags & STORE_F_HEALTHY,
	          "an unhealthy mark by expiry elsewhere: overridden too");
	store_stats(s, &st);
	cr_assert_eq(st.reasserted, 2);

	/* A client's own deregister always wins. */
	memset(&r, 0, sizeof(r));
	r.key = a;
	r.version = v.version + 100;
	r.node = 2;
	r.deleted = true;
	cr_assert_eq(store_apply(shard_for(s, &a), &r), STORE_CHANGED);
	cr_assert_eq(store_get(s, &a, &v), -ERR_NOT_FOUND);

	/* Silent here past its healthy timeout: the expiry is right and applies. */
	cr_assert_geq(up_default(s, &b), 0);
	fake_advance(&fc, 16000);
	cr_assert_eq(store_get(s, &b, &v), 0);
	r = expiry_record(b, v.version + 100, true);
	cr_assert_eq(store_apply(shard_for(s, &b), &r), STORE_CHANGED);
	cr_assert_eq(store_get(s, &b, &v), -ERR_NOT_FOUND);
}

Test(responsibility, a_deadline_given_is_not_a_beat_heard)
{
	struct store_key a = key_n("svc", 30), b = key_n("svc", 31);
	struct store_record r;
	struct store_view v;

	/* Adopted by a takeover, never beaten here: an expiry elsewhere is right. */
	cr_assert_geq(up_default(s, &a), 0);
	cr_assert_eq(store_adopt(shard_for(s, &a), &a), STORE_SAME);
	cr_assert_eq(store_get(s, &a, &v), 0);
	r = expiry_record(a, v.version + 100, true);
	cr_assert_eq(store_apply(shard_for(s, &a), &r), STORE_CHANGED);
	cr_assert_eq(store_get(s, &a, &v), -ERR_NOT_FOUND,
	             "adopted, not heard: the expiry applies");

	/* Moved by a stall credit: neither. */
	cr_assert_geq(up_default(s, &b), 0);
	fake_advance(&fc, 20000);
	store_pause_credit(shard_for(s, &b), 20000);
	cr_assert_eq(store_get(s, &b, &v), 0);
	r = expiry_record(b, v.version + 100, true);
	cr_assert_eq(store_apply(shard_for(s, &b), &r), STORE_CHANGED);
	cr_assert_eq(store_get(s, &b, &v), -ERR_NOT_FOUND, "a stall's credit is no beat");
}

Test(responsibility, the_rewrite_is_one_step_newer_and_loses_to_a_later_deregister)
{
	struct store_key a = key_n("svc", 32);
	struct store_record r;
	struct store_view v;

	cr_assert_geq(up_default(s, &a), 0);
	cr_assert_eq(store_get(s, &a, &v), 0);
	r = expiry_record(a, v.version + 100, true);
	cr_assert_eq(store_apply(shard_for(s, &a), &r), STORE_CHANGED);
	cr_assert_eq(store_get(s, &a, &v), 0);
	cr_assert_eq(v.version, r.version + 1, "just newer than the expiry it answers");
	/* A client deregistered it elsewhere after the expiry: that delete wins. */
	memset(&r, 0, sizeof(r));
	r.key = a;
	r.version = v.version + 1;
	r.node = 3;
	r.deleted = true;
	cr_assert_eq(store_apply(shard_for(s, &a), &r), STORE_CHANGED);
	cr_assert_eq(store_get(s, &a, &v), -ERR_NOT_FOUND);
}

Test(responsibility, a_deregister_over_an_old_tombstone_replicates_a_newer_one)
{
	struct store_key a = key_n("svc", 33);
	struct store_record r;
	static struct store_view drained[8];

	memset(&r, 0, sizeof(r));
	r.key = a;
	r.version = 1000;
	r.node = 2;
	r.deleted = true;
	cr_assert_eq(store_apply(shard_for(s, &a), &r), STORE_SAME, "an old tombstone held");
	store_feed_drain(shard_for(s, &a), drained, 8, NULL);
	cr_assert_eq(store_delete(shard_for(s, &a), &a), -ERR_NOT_FOUND);
	cr_assert_eq(store_feed_len(shard_for(s, &a)), 1, "a newer tombstone goes out");
	r.deleted = false;
	store_val_default(&r.val);
	r.version = 5000; /* a registration made elsewhere before this delete */
	cr_assert_eq(store_apply(shard_for(s, &a), &r), -ERR_STALE);
}

Test(responsibility, an_expiry_never_outranks_a_later_client_delete)
{
	struct store_key a = key_n("svc", 34);
	struct store_view v;
	struct store_record r;
	uint64_t base;

	cr_assert_geq(up_default(s, &a), 0);
	cr_assert_eq(store_get(s, &a, &v), 0);
	base = v.version;
	/* The other side of a partition: the client deregistered there, a little later. */
	memset(&r, 0, sizeof(r));
	r.key = a;
	r.version = base + (5ull << 16); /* 5 ms later */
	r.node = 2;
	r.deleted = true;
	/* Here nobody heard of it, and the beats stopped: expiry marks it, much later. */
	fake_advance(&fc, 15000);
	expire_all(s);
	cr_assert_eq(store_get(s, &a, &v), 0);
	cr_assert_not(v.flags & STORE_F_HEALTHY);
	cr_assert_eq(v.version, base + 1, "one step after the write it marks, not the clock's now");
	cr_assert_eq(store_apply(shard_for(s, &a), &r), STORE_CHANGED,
	             "at the heal the client's delete wins over the expiry's mark");
	cr_assert_eq(store_get(s, &a, &v), -ERR_NOT_FOUND);
}

Test(responsibility, a_client_tombstone_is_told_apart_from_an_expiry_one)
{
	struct store_key a = key_n("svc", 35), b = key_n("svc", 36), c = key_n("svc", 37);

	cr_assert_geq(up_default(s, &a), 0);
	cr_assert_eq(store_delete(shard_for(s, &a), &a), 0);
	cr_assert(store_deleted_by_client(shard_for(s, &a), &a, 3000),
	          "just deregistered: a beat in flight must not revive it");
	cr_assert_geq(up_default(s, &b), 0);
	fake_advance(&fc, 30000);
	expire_all(s);
	cr_assert_not(store_deleted_by_client(shard_for(s, &b), &b, 3000),
	              "expired: a beat re-creates it");
	cr_assert_not(store_deleted_by_client(shard_for(s, &c), &c, 3000), "never seen");
	cr_assert_not(store_deleted_by_client(shard_for(s, &a), &a, 3000),
	              "deregistered 30 s ago: a live client's beats re-create it, as with Nacos");
}

Test(responsibility, an_expiry_of_an_untracked_replica_applies)
{
	struct store_key a = key_n("svc", 22);
	struct store_record r;
	struct store_view v;

	owned[slot_of_n(22)] = false; /* another member's slot: a replica here */
	memset(&r, 0, sizeof(r));
	r.key = a;
	store_val_default(&r.val);
	r.version = 1000;
	r.node = 2;
	cr_assert_eq(store_apply(shard_for(s, &a), &r), STORE_CREATED);
	r = expiry_record(a, 2000, true);
	cr_assert_eq(store_apply(shard_for(s, &a), &r), STORE_CHANGED);
	cr_assert_eq(store_get(s, &a, &v), -ERR_NOT_FOUND);
}

Test(responsibility, a_repair_keeps_and_rewrites_an_unlisted_instance_beating_here)
{
	struct store_key a = key_n("svc", 23);
	struct store_view v;
	uint64_t ver;

	cr_assert_geq(up_default(s, &a), 0);
	cr_assert_eq(store_get(s, &a, &v), 0);
	ver = v.version;
	cr_assert_eq(store_forget(shard_for(s, &a), &a, ver + 1, true), STORE_CHANGED,
	             "beating here: the owner missed it, so it is written again");
	cr_assert_eq(store_get(s, &a, &v), 0);
	cr_assert_gt(v.version, ver);
	fake_advance(&fc, 16000); /* silent since: the owner is right to have none */
	cr_assert_eq(store_forget(shard_for(s, &a), &a, UINT64_MAX, true), 0);
	cr_assert_eq(store_get(s, &a, &v), -ERR_NOT_FOUND);
}

Test(responsibility, a_stall_moves_every_deadline_by_its_length)
{
	struct store_key a = key_n("svc", 24), b = key_n("svc", 25);
	struct store_view v;

	cr_assert_geq(up_default(s, &a), 0);
	fake_advance(&fc, 14000);
	cr_assert_geq(up_default(s, &b), 0);
	fake_advance(&fc, 40000); /* the process was stopped for 40 s */
	cr_assert_eq(store_pause_credit(shard_for(s, &a), 40000) +
	                     (shard_for(s, &a) == shard_for(s, &b)
	                              ? 0
	                              : store_pause_credit(shard_for(s, &b), 40000)),
	             2);
	expire_all(s);
	cr_assert(healthy(24), "the paused time does not count");
	cr_assert(healthy(25));
	fake_advance(&fc, 1000);
	expire_all(s);
	cr_assert_not(healthy(24), "what was left before the pause still runs");
	cr_assert(healthy(25));
	fake_advance(&fc, 30000);
	expire_all(s);
	cr_assert_eq(store_get(s, &a, &v), -ERR_NOT_FOUND);
}

Test(responsibility, a_deregister_of_an_unknown_instance_leaves_a_tombstone_that_replicates)
{
	struct store_key a = key_n("svc", 26);
	struct store_record r;
	struct store_stats st;

	cr_assert_eq(store_delete(shard_for(s, &a), &a), -ERR_NOT_FOUND);
	cr_assert_eq(store_feed_len(shard_for(s, &a)), 1, "the delete goes to the other nodes");
	store_stats(s, &st);
	cr_assert_eq(st.blind_deletes, 1);
	cr_assert_eq(st.tombstones, 1);
	memset(&r, 0, sizeof(r));
	r.key = a;
	store_val_default(&r.val);
	r.version = 1000; /* the registration, made earlier elsewhere, arriving late */
	r.node = 2;
	cr_assert_eq(store_apply(shard_for(s, &a), &r), -ERR_STALE, "refused: the delete is newer");
}

Test(responsibility, adopt_gives_a_fresh_deadline_without_reviving_the_unhealthy)
{
	struct store_key a = key_n("svc", 8);
	uint32_t feed;

	cr_assert_geq(up_default(s, &a), 0);
	fake_advance(&fc, 15000);
	expire_all(s);
	cr_assert_not(healthy(8), "unhealthy at its old owner");
	feed = store_feed_len(shard_for(s, &a));
	cr_assert_eq(store_adopt(shard_for(s, &a), &a), STORE_SAME);
	cr_assert_not(healthy(8), "a takeover does not make a dead instance healthy");
	cr_assert_eq(store_feed_len(shard_for(s, &a)), feed, "and replicates nothing");
	fake_advance(&fc, 29999);
	expire_all(s);
	cr_assert_not(healthy(8));
	struct store_view v;

	cr_assert_eq(store_get(s, &a, &v), 0, "still there: a full delete timeout from the adopt");
	fake_advance(&fc, 1);
	expire_all(s);
	cr_assert_eq(store_get(s, &a, &v), -ERR_NOT_FOUND, "removed delete_ms after the adopt");
}

Test(responsibility, a_replica_arriving_in_an_owned_slot_is_expired_here)
{
	struct store_record r;
	struct store_view v;

	memset(&r, 0, sizeof(r));
	r.key = key_n("svc", 9);
	store_val_default(&r.val);
	r.version = 1000;
	r.node = 2;
	cr_assert_eq(store_apply(shard_for(s, &r.key), &r), STORE_CREATED);
	fake_advance(&fc, 15000);
	expire_all(s);
	cr_assert_eq(store_get(s, &r.key, &v), 0);
	cr_assert_not(v.flags & STORE_F_HEALTHY, "owned here: tracked from its arrival");
	/* In a slot owned elsewhere a replica is not tracked. */
	r.key = key_n("svc", 10);
	owned[slot_of_n(10)] = false;
	cr_assert_eq(store_apply(shard_for(s, &r.key), &r), STORE_CREATED);
	fake_advance(&fc, 60000);
	expire_all(s);
	cr_assert_eq(store_get(s, &r.key, &v), 0);
	cr_assert(v.flags & STORE_F_HEALTHY, "its owner expires it, not us");
}
