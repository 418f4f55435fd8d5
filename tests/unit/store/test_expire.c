/* Heartbeat expiry on an injected clock: right times, and work O(expired). */
#include "helpers.h"

static void setup(void)
{
	fixture_default(2, 0, false);
}

TestSuite(expire, .init = setup, .fini = fixture_close);

/* 1 healthy, 0 unhealthy, -1 gone. */
static int state_of(const struct store_key *k)
{
	struct store_view v;
	int rc, st;

	epoch_enter(&rd);
	rc = store_get(s, k, &v);
	st = rc < 0 ? -1 : (v.flags & STORE_F_HEALTHY) ? 1 : 0;
	epoch_exit(&rd);
	return st;
}

Test(expire, unhealthy_then_removed_at_defaults)
{
	struct store_key k = key_n("e", 1);
	struct store_stats st;

	cr_assert_eq(up_default(s, &k), STORE_CREATED);
	fake_advance(&fc, 14999);
	cr_assert_eq(expire_all(s), 0);
	cr_assert_eq(state_of(&k), 1);
	fake_advance(&fc, 1);
	cr_assert_eq(expire_all(s), 1);
	cr_assert_eq(state_of(&k), 0, "unhealthy at 15 s");
	fake_advance(&fc, 14999);
	cr_assert_eq(expire_all(s), 0);
	cr_assert_eq(state_of(&k), 0);
	fake_advance(&fc, 1);
	cr_assert_eq(expire_all(s), 1);
	cr_assert_eq(state_of(&k), -1, "removed at 30 s");
	store_stats(s, &st);
	cr_assert_eq(st.expired_unhealthy, 1);
	cr_assert_eq(st.expired_removed, 1);
	cr_assert_eq(st.instances, 0);
}

Test(expire, heartbeats_keep_alive_and_heal)
{
	struct store_key k = key_n("e", 2);

	cr_assert_eq(up_default(s, &k), STORE_CREATED);
	for (int i = 0; i < 20; i++) {
		fake_advance(&fc, 5000);
		cr_assert_eq(store_touch(shard_for(s, &k), &k), STORE_SAME);
		expire_all(s);
		cr_assert_eq(state_of(&k), 1);
	}
	fake_advance(&fc, 20000);
	expire_all(s);
	cr_assert_eq(state_of(&k), 0);
	cr_assert_eq(store_touch(shard_for(s, &k), &k), STORE_CHANGED, "a beat heals");
	cr_assert_eq(state_of(&k), 1);
	fake_advance(&fc, 14999);
	expire_all(s);
	cr_assert_eq(state_of(&k), 1, "and restarts the full deadline");
	/* A re-register counts as a beat too. */
	cr_assert_eq(up_default(s, &k), STORE_SAME);
	fake_advance(&fc, 14999);
	expire_all(s);
	cr_assert_eq(state_of(&k), 1);
}

Test(expire, per_instance_timing_and_order)
{
	struct store_val fast, slow;
	struct store_key a = key_n("e", 3), b = key_n("e", 4), c = key_n("e", 5);

	store_val_default(&fast);
	fast.timing = (struct store_timing){ 100, 300, 500 };
	store_val_default(&slow);
	slow.timing = (struct store_timing){ 1000, 60000, 120000 };
	cr_assert_eq(up(s, &a, &fast), STORE_CREATED);
	cr_assert_eq(up(s, &b, &slow), STORE_CREATED);
	fake_advance(&fc, 100);
	cr_assert_eq(up(s, &c, &fast), STORE_CREATED);
	fake_advance(&fc, 200); /* t = 300 */
	expire_all(s);
	cr_assert_eq(state_of(&a), 0);
	cr_assert_eq(state_of(&c), 1);
	cr_assert_eq(state_of(&b), 1);
	fake_advance(&fc, 100); /* t = 400 */
	expire_all(s);
	cr_assert_eq(state_of(&c), 0);
	fake_advance(&fc, 100); /* t = 500 */
	expire_all(s);
	cr_assert_eq(state_of(&a), -1);
	cr_assert_eq(state_of(&c), 0);
	fake_advance(&fc, 100); /* t = 600 */
	expire_all(s);
	cr_assert_eq(state_of(&c), -1);
	cr_assert_eq(state_of(&b), 1);
	fake_advance(&fc, 60000);
	expire_all(s);
	cr_assert_eq(state_of(&b), 0);
}

Test(expire, changing_timing_moves_deadline)
{
	struct store_val v;
	struct store_key k = key_n("e", 6);

	store_val_default(&v);
	cr_assert_eq(up(s, &k, &v), STORE_CREATED);
	fake_advance(&fc, 1000);
	v.timing = (struct store_timing){ 100, 200, 400 };
	cr_assert_eq(up(s, &k, &v), STORE_CHANGED);
	fake_advance(&fc, 200);
	expire_all(s);
	cr_assert_eq(state_of(&k), 0);
	fake_advance(&fc, 200);
	expire_all(s);
	cr_assert_eq(state_of(&k), -1);
}

Test(expire, persistent_instances_never_expire)
{
	struct store_val v;
	struct store_key k = key_n("e", 7);

	store_val_default(&v);
	v.ephemeral = false;
	cr_assert_eq(up(s, &k, &v), STORE_CREATED);
	fake_advance(&fc, 24LL * 3600 * 1000);
	cr_assert_eq(expire_all(s), 0);
	cr_assert_eq(state_of(&k), 1);
	cr_assert_eq(store_delete(shard_for(s, &k), &k), 0);
	cr_assert_eq(state_of(&k), -1);
}

Test(expire, budget_bounds_each_sweep)
{
	for (uint32_t i = 0; i < 100; i++) {
		struct store_key k = key_n("budget", i);

		cr_assert_eq(up_default(s, &k), STORE_CREATED);
	}
	struct store_shard *sh = shard_for(s, &(struct store_key){ .svc.service = S("budget") });

	fake_advance(&fc, 15000);
	cr_assert_eq(store_expire(sh, 30), 30);
	cr_assert_eq(store_expire(sh, 30), 30);
	cr_assert_eq(store_expire(sh, 100), 40);
	cr_assert_eq(store_expire(sh, 100), 0);
}

/*
 * Expiry judged at a time the caller read: a stop (SIGSTOP, a frozen VM)
 * that lands after the worker checked its clock and its view cannot make
 * expiry judge deadlines by a later clock than the one it checked.
 */
Test(expire, judged_at_the_time_the_caller_read)
{
	struct store_key k = key_n("at", 1);
	struct store_shard *sh = shard_for(s, &k);
	int64_t read = fc.mono_ms;

	cr_assert_eq(up_default(s, &k), STORE_CREATED);
	fake_advance(&fc, 60000); /* the stop: the store's own clock is past both deadlines */
	cr_assert_eq(store_expire_at(sh, 100, read + 14999), 0);
	cr_assert_eq(state_of(&k), 1, "healthy by the caller's time");
	cr_assert_eq(store_expire_at(sh, 100, read + 15000), 1);
	cr_assert_eq(state_of(&k), 0, "unhealthy at 15 s of the caller's time");
	cr_assert_eq(store_expire_at(sh, 100, read + 29999), 0);
	cr_assert_eq(state_of(&k), 0);
	cr_assert_eq(store_expire(sh, 100), 1, "store_expire reads the store's clock");
	cr_assert_eq(state_of(&k), -1);
}

/*
 * 1M live instances, 10 of them due: the sweep marks exactly those 10 and
 * examines only a handful more FIFO heads than it acts on.
 */
Test(expire, sweep_work_is_proportional_to_due, .timeout = 300)
{
	const uint32_t n = 1000000, due = 10;
	struct store_stats before, after;
	char name[32];
	uint32_t acted;

	for (uint32_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "svc-%u", i / 100);
		struct store_key k = key_n(name, i);

		cr_assert_eq(up_default(s, &k), STORE_CREATED);
	}
	fake_advance(&fc, 10000);
	for (uint32_t i = due; i < n; i++) {
		snprintf(name, sizeof(name), "svc-%u", i / 100);
		struct store_key k = key_n(name, i);

		cr_assert_eq(store_touch(shard_for(s, &k), &k), STORE_SAME);
	}
	fake_advance(&fc, 5000); /* the first 10 reach 15 s without a beat */
	store_stats(s, &before);
	acted = expire_all(s);
	store_stats(s, &after);
	cr_assert_eq(acted, due);
	cr_assert_eq(after.expired_unhealthy - before.expired_unhealthy, due);
	/* Per shard: each action examines one head, plus one head that is not due per list. */
	uint64_t checks = after.expiry_checks - before.expiry_checks;

	cr_assert_leq(checks, due + 3 * store_shards(s), "examined %lu heads for %u due",
	              (unsigned long)checks, due);
	for (uint32_t i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "svc-%u", i / 100);
		struct store_key k = key_n(name, i);

		cr_assert_eq(state_of(&k), i < due ? 0 : 1);
	}
}
