/*
 * Leases (store/lease.c): the side table alone (add, refresh, release,
 * age-out, its two bounds, growth and deletion under many entries), then
 * through the store (store_hold, store_release; deregister and expiry
 * free an instance's leases).
 */
#include "helpers.h"
#include "store/lease.h"

#include <stdlib.h>

/* Distinct fake instance addresses: the table never dereferences them. */
static struct store_inst *fake(uint32_t i)
{
	return (struct store_inst *)(uintptr_t)(0x10000 + 64ull * i);
}

Test(lease_table, hold_refresh_release)
{
	struct lease_table t;
	struct lease_note note;

	lease_table_init(&t, 1024);
	cr_assert_null(lease_find(&t, fake(1)));
	cr_assert_eq(lease_hold(&t, fake(1), 11, 5000, 1000, &note), 0);
	cr_assert(note.created && note.added);
	cr_assert_eq(lease_hold(&t, fake(1), 11, 6000, 1100, &note), 0);
	cr_assert(!note.created && !note.added, "a refresh adds nobody");
	cr_assert_eq(lease_find(&t, fake(1))->n, 1);
	cr_assert_eq(lease_find(&t, fake(1))->in[0].until_ms, 6000);
	cr_assert_eq(lease_hold(&t, fake(1), 22, 6000, 1100, &note), 0);
	cr_assert(note.added);
	cr_assert_eq(lease_find(&t, fake(1))->n, 2);
	/* 11 lets go while 22's lease runs: kept. */
	cr_assert(lease_release(&t, fake(1), 11, 1200));
	cr_assert_eq(lease_find(&t, fake(1))->n, 1);
	/* 22 lets go: nobody holds it, the entry goes. */
	cr_assert_not(lease_release(&t, fake(1), 22, 1300));
	cr_assert_null(lease_find(&t, fake(1)));
	cr_assert_eq(t.n, 0);
	/* A release of an instance without an entry: nobody holds it. */
	cr_assert_not(lease_release(&t, fake(2), 22, 1300));
	lease_table_destroy(&t);
}

Test(lease_table, a_holder_that_stopped_renewing_ages_out)
{
	struct lease_table t;
	struct lease_note note;

	lease_table_init(&t, 1024);
	cr_assert_eq(lease_hold(&t, fake(1), 1, 2000, 0, &note), 0); /* until 2000 */
	cr_assert_eq(lease_hold(&t, fake(1), 2, 9000, 0, &note), 0);
	/* At 1999 holder 1's lease still runs: 2's release keeps the instance. */
	cr_assert(lease_release(&t, fake(1), 2, 1999));
	cr_assert_eq(lease_hold(&t, fake(1), 2, 9000, 1999, &note), 0);
	/* At 2000 it ran out: 2's release finds no other live holder. */
	cr_assert_not(lease_release(&t, fake(1), 2, 2000));
	cr_assert_null(lease_find(&t, fake(1)));
	/* An unknown holder's release: kept while someone else's lease runs, else gone. */
	cr_assert_eq(lease_hold(&t, fake(3), 5, 4000, 0, &note), 0);
	cr_assert(lease_release(&t, fake(3), 99, 3999));
	cr_assert_eq(lease_find(&t, fake(3))->n, 1);
	cr_assert_not(lease_release(&t, fake(3), 99, 4000));
	cr_assert_null(lease_find(&t, fake(3)));
	/* Expired holders are pruned when another holds: they do not fill the entry. */
	for (uint64_t h = 1; h <= LEASE_HOLDERS_MAX; h++)
		cr_assert_eq(lease_hold(&t, fake(4), h, 100, 0, &note), 0);
	cr_assert_eq(lease_hold(&t, fake(4), 100, 9000, 100, &note), 0);
	cr_assert(note.added && !note.evicted);
	cr_assert_eq(lease_find(&t, fake(4))->n, 1);
	lease_table_destroy(&t);
}

/*
 * A pause of this node (SIGSTOP, a VM freeze) moves every lease by the
 * paused time, as the expiry deadlines move: its holders could not renew
 * while nobody listened. Without it, on resume every lease looked run out
 * and a release by one holder deleted an instance another still held.
 */
Test(lease_table, a_pause_of_this_node_does_not_run_leases_out)
{
	struct lease_table t;
	struct lease_note note;

	lease_table_init(&t, 1024);
	cr_assert_eq(lease_pause_credit(&t, 5000), 0, "an empty table moves nothing");
	cr_assert_eq(lease_hold(&t, fake(1), 1, 2000, 0, &note), 0);
	cr_assert_eq(lease_hold(&t, fake(1), 2, 2000, 0, &note), 0);
	cr_assert_eq(lease_hold(&t, fake(2), 3, 2000, 0, &note), 0);
	/* Paused from 1000 to 31000: resumed, 2's release comes before 1's renewal. */
	cr_assert_eq(lease_pause_credit(&t, 30000), 3);
	cr_assert(lease_release(&t, fake(1), 2, 31000), "1's lease runs on after the pause");
	cr_assert_eq(lease_find(&t, fake(1))->in[0].until_ms, 32000);
	cr_assert_eq(lease_find(&t, fake(2))->in[0].until_ms, 32000);
	/* The moved lease still runs out when its holder stays silent. */
	cr_assert_not(lease_release(&t, fake(1), 99, 32000));
	lease_table_destroy(&t);
}

Test(lease_table, holders_past_the_bound_displace_the_longest_unrenewed)
{
	struct lease_table t;
	struct lease_note note;
	struct lease *l;

	lease_table_init(&t, 1024);
	for (uint64_t h = 1; h <= LEASE_HOLDERS_MAX; h++) {
		cr_assert_eq(lease_hold(&t, fake(1), h, 1000 + (int64_t)h, 0, &note), 0);
		cr_assert(note.added && !note.evicted);
	}
	l = lease_find(&t, fake(1));
	cr_assert_eq(l->n, LEASE_HOLDERS_MAX);
	cr_assert_not_null(l->more, "past LEASE_INLINE the holders moved to their array");
	/* A ninth: holder 1 (until 1001, the earliest) makes room. */
	cr_assert_eq(lease_hold(&t, fake(1), 100, 5000, 0, &note), 0);
	cr_assert(note.evicted && !note.added);
	l = lease_find(&t, fake(1));
	cr_assert_eq(l->n, LEASE_HOLDERS_MAX);
	for (uint32_t i = 0; i < l->n; i++)
		cr_assert_neq(l->more[i].holder, 1);
	/* Releases of all eight recorded keep the instance until the last. */
	for (uint64_t h = 2; h <= LEASE_HOLDERS_MAX; h++)
		cr_assert(lease_release(&t, fake(1), h, 10));
	cr_assert_not(lease_release(&t, fake(1), 100, 10));
	cr_assert_eq(t.n, 0);
	lease_table_destroy(&t);
}

Test(lease_table, many_instances_grow_and_delete_with_every_entry_reachable)
{
	enum { N = 5000 };
	struct lease_table t;
	struct lease_note note;

	lease_table_init(&t, N);
	for (uint32_t i = 0; i < N; i++)
		cr_assert_eq(lease_hold(&t, fake(i), i + 1, 100, 0, &note), 0);
	cr_assert_eq(t.n, N);
	cr_assert_leq(2ull * t.n, 1ull << t.bits, "at most half full");
	/* The table's bound: one more instance is refused, a known one is still renewed. */
	cr_assert_eq(lease_hold(&t, fake(N), 1, 100, 0, &note), -ERR_LIMIT_LEASES);
	cr_assert_eq(lease_hold(&t, fake(7), 100000, 200, 0, &note), 0);
	/* Remove every third (backward-shift deletion), every other stays findable. */
	for (uint32_t i = 0; i < N; i += 3)
		lease_drop(&t, fake(i));
	for (uint32_t i = 0; i < N; i++) {
		struct lease *l = lease_find(&t, fake(i));

		if (i % 3 == 0) {
			cr_assert_null(l, "%u", i);
		} else {
			cr_assert_not_null(l, "%u", i);
			cr_assert_eq(l->inst, fake(i));
		}
	}
	for (uint32_t i = 0; i < N; i++)
		(void)lease_release(&t, fake(i), i + 1, 50);
	cr_assert_eq(t.n, 1, "only fake(7), with holder 100000's lease, stays");
	lease_table_destroy(&t);
}

/* ---- through the store ---- */

static uint64_t stat_leases(void)
{
	struct store_stats st;

	store_stats(s, &st);
	return st.leases;
}

static bool live(const struct store_key *k)
{
	struct store_view v;

	return store_get(s, k, &v) == 0;
}

Test(lease_store, the_instance_goes_with_its_last_holder)
{
	struct store_key k = key_n("svc", 1);
	struct store_shard *sh;

	fixture_default(2, 1, false);
	sh = shard_for(s, &k);
	cr_assert_eq(up_default(s, &k), STORE_CREATED);
	cr_assert_eq(store_hold(sh, &k, 0xa, 300), 0);
	cr_assert_eq(store_hold(sh, &k, 0xb, 300), 0);
	cr_assert_eq(stat_leases(), 1, "one entry per instance, however many holders");
	epoch_enter(&rd);
	cr_assert(live(&k));
	epoch_exit(&rd);
	cr_assert_eq(store_release(sh, &k, 0xa), STORE_HELD);
	cr_assert_not(store_deleted_by_client(sh, &k, 60000), "a kept release deletes nothing");
	epoch_enter(&rd);
	cr_assert(live(&k));
	epoch_exit(&rd);
	cr_assert_eq(store_release(sh, &k, 0xb), 0);
	epoch_enter(&rd);
	cr_assert_not(live(&k));
	epoch_exit(&rd);
	cr_assert(store_deleted_by_client(sh, &k, 60000));
	cr_assert_eq(stat_leases(), 0);
	/* Released again (a retry): deleted already, as a deregister answers. */
	cr_assert_eq(store_release(sh, &k, 0xb), -ERR_NOT_FOUND);
	/* A hold needs a live instance; holder 0 names nobody. */
	cr_assert_eq(store_hold(sh, &k, 0xa, 300), -ERR_NOT_FOUND);
	cr_assert_eq(up_default(s, &k), STORE_CREATED);
	cr_assert_eq(store_hold(sh, &k, 0, 300), -ERR_INVAL);
	fixture_close();
}

Test(lease_store, a_release_without_leases_deletes_as_a_deregister)
{
	struct store_key k = key_n("svc", 2);
	struct store_shard *sh;

	fixture_default(1, 1, false);
	sh = shard_for(s, &k);
	/* Registered without a lease (the HTTP API), or on a new owner that never saw renewals. */
	cr_assert_eq(up_default(s, &k), STORE_CREATED);
	cr_assert_eq(store_release(sh, &k, 0xa), 0);
	epoch_enter(&rd);
	cr_assert_not(live(&k));
	epoch_exit(&rd);
	/* Never seen at all: remembered as a tombstone, "not found", as a deregister. */
	struct store_key u = key_n("svc", 3);

	cr_assert_eq(store_release(shard_for(s, &u), &u, 0xa), -ERR_NOT_FOUND);
	fixture_close();
}

Test(lease_store, a_deregister_deletes_whatever_the_leases_and_frees_them)
{
	struct store_key k = key_n("svc", 4);
	struct store_shard *sh;

	fixture_default(1, 1, false);
	sh = shard_for(s, &k);
	cr_assert_eq(up_default(s, &k), STORE_CREATED);
	cr_assert_eq(store_hold(sh, &k, 1, 300), 0);
	cr_assert_eq(store_hold(sh, &k, 2, 300), 0);
	cr_assert_eq(store_hold(sh, &k, 3, 300), 0); /* a third: the holder array */
	cr_assert_eq(store_delete(sh, &k), 0);
	cr_assert_eq(stat_leases(), 0, "the entry went with the instance");
	/* Registered again: no lease left from before, so a release deletes. */
	cr_assert_eq(up_default(s, &k), STORE_CREATED);
	cr_assert_eq(store_release(sh, &k, 2), 0);
	fixture_close();
}

Test(lease_store, expiry_frees_the_leases)
{
	struct store_key k = key_n("svc", 5);
	struct store_shard *sh;

	fixture_default(1, 1, false);
	sh = shard_for(s, &k);
	cr_assert_eq(up_default(s, &k), STORE_CREATED);
	cr_assert_eq(store_hold(sh, &k, 1, 300), 0);
	cr_assert_eq(store_hold(sh, &k, 2, 300), 0);
	cr_assert_eq(store_hold(sh, &k, 3, 300), 0);
	cr_assert_eq(stat_leases(), 1);
	/* Nobody renews: unhealthy, then removed (the default delete timeout, 30 s). */
	for (int i = 0; i < 40; i++) {
		fake_advance(&fc, 1000);
		expire_all(s);
	}
	epoch_enter(&rd);
	cr_assert_not(live(&k));
	epoch_exit(&rd);
	cr_assert_eq(stat_leases(), 0, "expiry freed the entry (ASan sees the holder array go)");
	fixture_close();
}

Test(lease_store, a_vanished_holder_ages_out_after_twice_its_interval_and_the_margin)
{
	struct store_key k = key_n("svc", 6);
	struct store_shard *sh;

	fixture_default(1, 1, false);
	sh = shard_for(s, &k);
	cr_assert_eq(up_default(s, &k), STORE_CREATED);
	cr_assert_eq(store_hold(sh, &k, 1, 300), 0); /* the holder whose node then dies */
	cr_assert_eq(store_hold(sh, &k, 2, 300), 0);
	fake_advance(&fc, 2 * 300 + LEASE_MARGIN_MS - 1);
	cr_assert_eq(store_release(sh, &k, 2), STORE_HELD, "1's lease still runs");
	cr_assert_eq(store_hold(sh, &k, 2, 300), 0); /* 2 holds it again */
	fake_advance(&fc, 1);
	cr_assert_eq(store_release(sh, &k, 2), 0, "1 ran out: 2 was the last holder");
	epoch_enter(&rd);
	cr_assert_not(live(&k));
	epoch_exit(&rd);
	cr_assert_eq(stat_leases(), 0);
	fixture_close();
}
