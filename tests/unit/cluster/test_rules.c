/*
 * The peer thread's decisions that the cluster tests only reach in
 * multi-second runs: the quorum rule, verify's two-round rule, the load
 * plan (scheduling and retry on a lost peer), and forwarding (grouping,
 * answers, timeouts, bounds: every item answered exactly once).
 */
#include "cluster/peer_internal.h"
#include "core/err.h"
#include "core/mem.h"

#include <criterion/criterion.h>
#include <string.h>

/* ---- quorum ---- */

Test(quorum, strict_majority_for_odd_sizes)
{
	/* 3 members: 2 reachable is a quorum, 1 is not, whoever they are. */
	cr_assert(health_quorum(3, 3, true));
	cr_assert(health_quorum(2, 3, false));
	cr_assert(!health_quorum(1, 3, true), "one of three alone never expires");
	/* 5 members */
	cr_assert(health_quorum(3, 5, false));
	cr_assert(!health_quorum(2, 5, true));
}

Test(quorum, even_split_has_exactly_one_winner)
{
	/* 4 members split 2|2: only the half with member 1 keeps its quorum. */
	bool a = health_quorum(2, 4, true), b = health_quorum(2, 4, false);

	cr_assert(a != b, "both halves of a 2|2 split would expire each other's instances");
	cr_assert(a);
	cr_assert(health_quorum(3, 4, false));
	cr_assert(!health_quorum(1, 4, true));
	/* 2 members apart: member 1 goes on expiring, member 2 waits. */
	cr_assert(health_quorum(1, 2, true));
	cr_assert(!health_quorum(1, 2, false));
	cr_assert(health_quorum(2, 2, true));
}

Test(quorum, every_split_of_2_to_5_members_has_at_most_one_side)
{
	for (uint32_t n = 2; n <= 5; n++)
		for (uint32_t k = 0; k <= n; k++)
			for (int low = 0; low < 2; low++) {
				/* Side A: k members, with member 1 iff low; side B: the rest. */
				bool a = k > 0 && health_quorum(k, n, low);
				bool b = n - k > 0 && health_quorum(n - k, n, !low);

				cr_assert(!(a && b), "n=%u split %u|%u: both sides have a quorum",
				          n, k, n - k);
				if (k == n)
					cr_assert(a, "n=%u: the whole cluster has a quorum", n);
			}
}

/* ---- verify: the confirming look ---- */

/* verify_note(v, slot, differs, the owner's sum, ours, may this look decide) */

Test(verify, a_slot_still_missing_what_the_owner_had_at_the_last_look_is_pulled)
{
	struct verify_bits v;

	memset(&v, 0, sizeof(v));
	cr_assert_eq(verify_note(&v, 100, true, 7, 1, true), VERIFY_LOOK_AGAIN,
	             "once: maybe in flight");
	cr_assert_eq(v.want[100 / 64], 0);
	cr_assert_eq(verify_note(&v, 100, true, 7, 1, true), VERIFY_PULL,
	             "again, and we still lack what the owner had then: lost, pull it");
	cr_assert(v.want[100 / 64] & (1ull << (100 % 64)));
	verify_free(&v);
}

Test(verify, writes_only_in_flight_are_looked_at_again_never_pulled)
{
	struct verify_bits v;

	memset(&v, 0, sizeof(v));
	cr_assert_eq(verify_note(&v, 5, true, 1, 0, true), VERIFY_LOOK_AGAIN);
	cr_assert_eq(verify_note(&v, 5, true, 2, 1, true), VERIFY_LOOK_AGAIN,
	             "we hold what the owner had at the last look: only newer writes differ");
	cr_assert_eq(verify_note(&v, 5, true, 3, 2, true), VERIFY_LOOK_AGAIN, "a hot slot");
	cr_assert_eq(v.want[0], 0);
	cr_assert_eq(verify_note(&v, 5, true, 3, 2, true), VERIFY_PULL,
	             "the write the owner had at the last look never came");
	cr_assert_eq(v.want[0], 1ull << 5);
	/* A lost record in a hot slot: we match none of the owner's sums. */
	cr_assert_eq(verify_note(&v, 6, true, 1, 0, true), VERIFY_LOOK_AGAIN);
	cr_assert_eq(verify_note(&v, 6, true, 2, 9, true), VERIFY_PULL);
	verify_free(&v);
}

Test(verify, an_equal_look_clears_the_suspicion)
{
	struct verify_bits v;

	memset(&v, 0, sizeof(v));
	cr_assert_eq(verify_note(&v, 7, true, 9, 0, true), VERIFY_LOOK_AGAIN);
	cr_assert_eq(verify_note(&v, 7, false, 9, 9, true), VERIFY_EQUAL,
	             "equal now: sync caught up");
	cr_assert_eq(verify_note(&v, 7, true, 9, 0, true), VERIFY_LOOK_AGAIN,
	             "a new difference starts again at one");
	cr_assert_eq(v.want[0], 0);
	/* A whole range seen equal clears every slot of it. */
	cr_assert_eq(verify_note(&v, 70, true, 9, 0, true), VERIFY_LOOK_AGAIN);
	verify_range_clean(&v, 70 / 64);
	cr_assert_eq(verify_note(&v, 70, true, 9, 0, true), VERIFY_LOOK_AGAIN);
	cr_assert_eq(v.want[1], 0);
	/* A lost link forgets the looks. */
	verify_reset(&v);
	cr_assert_eq(verify_note(&v, 70, true, 9, 0, true), VERIFY_LOOK_AGAIN);
	verify_free(&v);
}

Test(verify, slots_are_independent)
{
	struct verify_bits v;

	memset(&v, 0, sizeof(v));
	cr_assert_eq(verify_note(&v, 1, true, 1, 0, true), VERIFY_LOOK_AGAIN);
	cr_assert_eq(verify_note(&v, 2, true, 1, 0, true), VERIFY_LOOK_AGAIN);
	cr_assert_eq(verify_note(&v, 1, true, 1, 0, true), VERIFY_PULL);
	cr_assert_eq(verify_note(&v, 3, true, 1, 0, true), VERIFY_LOOK_AGAIN);
	cr_assert_eq(v.want[0], 1ull << 1);
	verify_free(&v);
}

Test(verify, a_look_before_the_confirming_one_marks_but_never_decides)
{
	struct verify_bits v;

	memset(&v, 0, sizeof(v));
	cr_assert_eq(verify_note(&v, 9, true, 1, 0, true), VERIFY_LOOK_AGAIN);
	cr_assert_eq(verify_note(&v, 9, true, 1, 0, false), VERIFY_LOOK_AGAIN,
	             "a periodic round before the confirming look is due");
	cr_assert_eq(v.want[0], 0);
	cr_assert_eq(verify_note(&v, 9, true, 1, 0, true), VERIFY_PULL, "the confirming look");
	verify_free(&v);
}

Test(verify, the_confirming_look_waits_for_replication_not_a_round)
{
	struct verify_bits v;

	memset(&v, 0, sizeof(v));
	cr_assert_eq(verify_confirm_delay_ms(&v, 1000), VERIFY_CONFIRM_MS,
	             "the default interval: looked at again 200 ms later, not 1 s");
	cr_assert_lt(VERIFY_CONFIRM_MS, 1000);
	cr_assert_eq(verify_confirm_delay_ms(&v, 200), 100, "never later than half an interval");
	cr_assert_eq(verify_confirm_delay_ms(&v, 60000), VERIFY_CONFIRM_MS);
	/* Sync arriving 300 ms late: wait twice that, at most VERIFY_CONFIRM_MAX intervals. */
	verify_note_lag(&v, 10300, 10000ull << 16 | 5);
	cr_assert_eq(v.lag_ms[0], 300);
	cr_assert_eq(verify_confirm_delay_ms(&v, 1000), 600);
	cr_assert_eq(verify_confirm_delay_ms(&v, 200), 600, "longer than an interval if need be");
	verify_note_lag(&v, 20000, 10000ull << 16); /* 10 s late, or a clock far ahead */
	cr_assert_eq(verify_confirm_delay_ms(&v, 1000), VERIFY_CONFIRM_MAX * 1000,
	             "but never more than a few intervals");
	v.lag_ms[0] = 300;
	/* A clock behind the owner's is no lag; the largest of two intervals counts. */
	verify_note_lag(&v, 9000, 10000ull << 16);
	cr_assert_eq(v.lag_ms[0], 300);
	v.lag_ms[1] = v.lag_ms[0];
	v.lag_ms[0] = 10;
	cr_assert_eq(verify_confirm_delay_ms(&v, 1000), 600, "the interval before still counts");
}

/* ---- the load plan ---- */

Test(load, every_set_is_taken_once_and_the_plan_completes)
{
	struct load_plan lp;
	static bool seen[LOAD_SETS];
	int s;

	load_plan_reset(&lp);
	memset(seen, 0, sizeof(seen));
	for (uint32_t i = 0; i < LOAD_SETS; i++) {
		s = load_plan_take(&lp);
		cr_assert(s >= 0 && s < LOAD_SETS);
		cr_assert(!seen[s], "set %d taken twice", s);
		seen[s] = true;
	}
	cr_assert_eq(load_plan_take(&lp), -1, "all in flight: nothing to take");
	cr_assert(!load_plan_complete(&lp));
	for (uint32_t i = 0; i < LOAD_SETS; i++)
		load_plan_finish(&lp, i, true);
	cr_assert(load_plan_complete(&lp));
}

Test(load, a_set_lost_with_its_peer_goes_to_another)
{
	struct load_plan lp;
	int a, b, again;

	load_plan_reset(&lp);
	a = load_plan_take(&lp);
	b = load_plan_take(&lp);
	load_plan_finish(&lp, (uint32_t)a, false); /* its peer went down */
	again = load_plan_take(&lp);
	cr_assert_eq(again, a, "the lost set is taken again first");
	load_plan_finish(&lp, (uint32_t)b, true);
	load_plan_finish(&lp, (uint32_t)b, true); /* a late duplicate end counts once */
	cr_assert_eq(lp.done, 1);
	load_plan_finish(&lp, 9999, true); /* out of range: ignored */
	cr_assert_eq(lp.done, 1);
}

Test(load, a_set_is_every_256th_slot)
{
	static struct pull pl;
	static bool covered[STORE_SLOTS];

	memset(covered, 0, sizeof(covered));
	for (uint32_t set = 0; set < LOAD_SETS; set++) {
		load_set_slots(set, &pl);
		cr_assert_eq(pl.n, STORE_SLOTS / LOAD_SETS);
		for (uint32_t i = 0; i < pl.n; i++) {
			cr_assert_eq(pl.slots[i] % LOAD_SETS, set);
			cr_assert(!covered[pl.slots[i]]);
			covered[pl.slots[i]] = true;
		}
	}
	for (uint32_t s = 0; s < STORE_SLOTS; s++)
		cr_assert(covered[s], "slot %u in no load set", s);
}

/* ---- forwarding ---- */

#define ITEMS 3000

struct answers {
	uint32_t n[ITEMS];
	int16_t res[ITEMS];
};

static struct pending pd_a, pd_b;
static int16_t res_a[ITEMS], res_b[ITEMS];

static void answer(void *ctx, struct fref *f, int16_t res)
{
	struct answers *an = ctx;
	uint32_t k = f->i + (f->p == &pd_b ? ITEMS / 2 : 0);

	cr_assert(k < ITEMS);
	an->n[k]++;
	an->res[k] = res;
}

/* Items first..first+n-1: even ones are request a's, odd ones request b's. */
static void add_items(struct member_fwd *f, uint32_t opi, uint32_t first, uint32_t n)
{
	const uint8_t item[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };

	pd_a.results = res_a;
	pd_b.results = res_b;
	for (uint32_t i = first; i < first + n; i++)
		cr_assert(fwd_add(f, opi, item, sizeof(item), i % 2 ? &pd_b : &pd_a, i / 2));
}

static void assert_each_once(const struct answers *an, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint32_t k = (i / 2) + (i % 2 ? ITEMS / 2 : 0);

		cr_assert_eq(an->n[k], 1, "item %u answered %u times", i, an->n[k]);
	}
}

Test(forward, items_of_many_requests_go_as_one_frame_per_op)
{
	static struct member_fwd f;
	static struct answers an;
	struct link l;
	struct proto_header h;

	memset(&f, 0, sizeof(f));
	memset(&an, 0, sizeof(an));
	memset(&l, 0, sizeof(l));
	l.state = L_UP;
	l.out_max = (size_t)1 << 30;
	add_items(&f, 0, 0, 10); /* two requests' items, interleaved */
	add_items(&f, 2, 10, 4);
	cr_assert_eq(fwd_flush(&f, 0, &l, 77, 1000, answer, &an), 0);
	cr_assert_eq(fwd_flush(&f, 2, &l, 78, 1000, answer, &an), 0);
	cr_assert_eq(fwd_flush(&f, 1, &l, 79, 1000, answer, &an), 0, "nothing of that op");
	/* Two frames on the link: FWD of 10 register items, FWD of 4 beats. */
	cr_assert(pwire_frame_check(l.out.p, buf_used(&l.out), &h) > 0);
	cr_assert_eq(h.op, P_FWD);
	cr_assert_eq(h.count, 10);
	cr_assert_eq(h.status, OP_REGISTER);
	cr_assert_eq(h.request_id, 77);
	cr_assert_eq(f.waits_n, 2);
	/* The answers: each item gets the owner's result, once. */
	uint8_t res[20];

	for (int i = 0; i < 10; i++) {
		res[2 * i] = (uint8_t)i;
		res[2 * i + 1] = 0;
	}
	cr_assert_eq(fwd_ack(&f, 77, res, 10, answer, &an), 0);
	cr_assert_eq(f.waits_n, 1);
	cr_assert_eq(an.res[0], 0);
	cr_assert_eq(an.res[ITEMS / 2], 1, "item 1 is request b's item 0");
	/* A short answer: the missing items are unavailable, not lost. */
	cr_assert_eq(fwd_ack(&f, 78, res, 2, answer, &an), 2);
	cr_assert_eq(an.res[5], 0, "item 10 is request a's item 5: answered");
	cr_assert_eq(an.res[6], -ERR_UNAVAILABLE, "item 12 was not in the answer");
	cr_assert_eq(fwd_ack(&f, 78, res, 2, answer, &an), 0, "a second answer is ignored");
	assert_each_once(&an, 14);
	fwd_member_free(&f);
	buf_free(&l.out);
}

Test(forward, no_link_timeouts_and_link_loss_answer_unavailable)
{
	static struct member_fwd f;
	static struct answers an;
	struct link l;

	memset(&f, 0, sizeof(f));
	memset(&an, 0, sizeof(an));
	memset(&l, 0, sizeof(l));
	l.state = L_UP;
	l.out_max = (size_t)1 << 30;
	/* No link: answered at once. */
	add_items(&f, 0, 0, 6);
	cr_assert_eq(fwd_flush(&f, 0, NULL, 1, 0, answer, &an), 6);
	for (uint32_t k = 0; k < 3; k++)
		cr_assert_eq(an.res[k], -ERR_UNAVAILABLE);
	/* Sent, then the answer is late: expired at the timeout, not before. */
	memset(&an, 0, sizeof(an));
	add_items(&f, 1, 0, 4);
	cr_assert_eq(fwd_flush(&f, 1, &l, 2, 1000, answer, &an), 0);
	cr_assert_eq(fwd_expire(&f, 1000 + WAIT_TIMEOUT_MS - 1, WAIT_TIMEOUT_MS, answer, &an), 0);
	cr_assert_eq(fwd_expire(&f, 1000 + WAIT_TIMEOUT_MS, WAIT_TIMEOUT_MS, answer, &an), 4);
	assert_each_once(&an, 4);
	/* Collected and sent, then the link drops: everything answered. */
	memset(&an, 0, sizeof(an));
	add_items(&f, 0, 0, 8);
	cr_assert_eq(fwd_flush(&f, 0, &l, 3, 2000, answer, &an), 0);
	cr_assert_eq(fwd_fail_all(&f, answer, &an), 8);
	assert_each_once(&an, 8);
	cr_assert_eq(f.waits_n, 0);
	fwd_member_free(&f);
	buf_free(&l.out);
}

Test(forward, waits_are_bounded)
{
	static struct member_fwd f;
	static struct answers an;
	struct link l;
	uint32_t unavailable = 0;

	memset(&f, 0, sizeof(f));
	memset(&l, 0, sizeof(l));
	l.state = L_UP;
	l.out_max = (size_t)1 << 30;
	for (uint32_t t = 0; t < FWD_WAITS_MAX + 10; t++) {
		memset(&an, 0, sizeof(an));
		add_items(&f, 0, 0, 1);
		unavailable += fwd_flush(&f, 0, &l, t, 0, answer, &an);
		buf_clear(&l.out);
	}
	cr_assert_eq(f.waits_n, FWD_WAITS_MAX);
	cr_assert_eq(unavailable, 10, "frames past the bound are answered, not queued");
	memset(&an, 0, sizeof(an));
	cr_assert_eq(fwd_fail_all(&f, answer, &an), FWD_WAITS_MAX);
	fwd_member_free(&f);
	buf_free(&l.out);
}
