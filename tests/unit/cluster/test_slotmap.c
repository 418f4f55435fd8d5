/*
 * Rendezvous slot map: complete, balanced, deterministic, minimal movement;
 * and who is eligible to own slots, alone and in simulated clusters.
 */
#include "cluster/slotmap.h"

#include <criterion/criterion.h>
#include <string.h>

static struct members three(void)
{
	struct members ms;
	char err[128];
	const char *conf = "10.0.0.1:7848\n10.0.0.2:7848\n10.0.0.3:7848\n10.0.0.4:7848\n";

	cr_assert_eq(members_parse(conf, strlen(conf), &ms, err, sizeof(err)), 0);
	return ms;
}

Test(slotmap, every_slot_owned_and_balanced)
{
	static struct slotmap sm;
	struct members ms = three();
	bool up[MEMBERS_MAX + 1] = { false, true, true, true, false };

	cr_assert_eq(slotmap_compute(&sm, &ms, up), STORE_SLOTS);
	cr_assert_eq(slotmap_count(&sm, 0), 0, "no slot without an owner");
	cr_assert_eq(slotmap_count(&sm, 4), 0, "an ineligible member owns nothing");
	for (uint16_t id = 1; id <= 3; id++) {
		uint32_t n = slotmap_count(&sm, id);

		cr_assert(n > STORE_SLOTS / 3 * 9 / 10 && n < STORE_SLOTS / 3 * 11 / 10,
		          "member %u owns %u of %u", id, n, STORE_SLOTS);
	}
	cr_assert_eq(slotmap_compute(&sm, &ms, up), 0, "the same view gives the same map");
}

Test(slotmap, a_leaving_member_moves_only_its_slots)
{
	static struct slotmap before, after;
	struct members ms = three();
	bool up[MEMBERS_MAX + 1] = { false, true, true, true, false };

	slotmap_compute(&before, &ms, up);
	after = before;
	up[2] = false;
	uint32_t moved = slotmap_compute(&after, &ms, up);

	cr_assert_eq(moved, slotmap_count(&before, 2));
	for (uint32_t s = 0; s < STORE_SLOTS; s++)
		if (before.owner[s] != 2)
			cr_assert_eq(after.owner[s], before.owner[s], "slot %u moved needlessly",
			             s);
	cr_assert_eq(slotmap_count(&after, 2), 0);
}

Test(slotmap, a_joining_member_takes_about_one_nth)
{
	static struct slotmap before, after;
	struct members ms = three();
	bool up[MEMBERS_MAX + 1] = { false, true, true, true, false };

	slotmap_compute(&before, &ms, up);
	after = before;
	up[4] = true;
	uint32_t moved = slotmap_compute(&after, &ms, up);

	cr_assert(moved > STORE_SLOTS / 4 * 9 / 10 && moved < STORE_SLOTS / 4 * 11 / 10, "moved %u",
	          moved);
	for (uint32_t s = 0; s < STORE_SLOTS; s++)
		if (after.owner[s] != before.owner[s])
			cr_assert_eq(after.owner[s], 4, "slot %u moved between old members", s);
}

Test(slotmap, nobody_eligible_owns_nothing)
{
	static struct slotmap sm;
	struct members ms = three();
	bool up[MEMBERS_MAX + 1] = { false };

	slotmap_compute(&sm, &ms, up);
	cr_assert_eq(slotmap_count(&sm, 0), STORE_SLOTS);
}

Test(slotmap, score_is_a_pinned_wire_constant)
{
	/* Smart clients compute the same map: these values must never change. */
	cr_assert_eq(slotmap_score(0, "10.0.0.1:7848"), slotmap_score(0, "10.0.0.1:7848"));
	cr_assert_neq(slotmap_score(0, "10.0.0.1:7848"), slotmap_score(1, "10.0.0.1:7848"));
	cr_assert_eq(slotmap_score(12345, "10.0.0.1:7848"), 0xa27aae2ad8709125ULL);
}

/* ---- who is eligible (slotmap_eligible) ---- */

static struct members five(void)
{
	struct members ms;
	char err[128];
	const char *conf = "10.0.0.1:7848\n10.0.0.2:7848\n10.0.0.3:7848\n10.0.0.4:7848\n"
	                   "10.0.0.5:7848\n";

	cr_assert_eq(members_parse(conf, strlen(conf), &ms, err, sizeof(err)), 0);
	cr_assert_eq(ms.n, 5);
	return ms;
}

Test(slotmap_eligible, ready_with_a_quorum_is_eligible_and_no_slots_is_not)
{
	struct slotmap_seen seen[4] = { { 0 } };
	bool el[MEMBERS_MAX + 1] = { false };
	uint64_t sees;

	seen[2] = (struct slotmap_seen){ .reached = true, .ready = true };
	seen[3] = (struct slotmap_seen){ .reached = true, .ready = true, .no_slots = true };
	sees = slotmap_eligible(seen, 3, 1, true, el);
	cr_assert(el[1] && el[2], "READY with a quorum, this node and member 2 own slots");
	cr_assert_not(el[3], "member 3 says it has no quorum");
	cr_assert_eq(sees, 0x3, "reported: itself and member 2, not member 3");

	sees = slotmap_eligible(seen, 3, 1, false, el);
	cr_assert_not(el[1], "without a quorum this node owns no slot in its own map");
	cr_assert_eq(sees, 0x2);

	seen[2].ready = false;
	slotmap_eligible(seen, 3, 1, true, el);
	cr_assert_not(el[2], "a member still loading owns nothing");
}

Test(slotmap_eligible, an_earlier_version_without_the_flag_is_eligible_while_ready)
{
	/* Its PINGs never say no_slots: READY is all it says, as before. */
	struct slotmap_seen seen[3] = { { 0 } };
	bool el[MEMBERS_MAX + 1] = { false };

	seen[2] = (struct slotmap_seen){ .reached = true, .ready = true, .sees = 0 };
	slotmap_eligible(seen, 2, 1, true, el);
	cr_assert(el[2]);
}

Test(slotmap_eligible, a_member_down_here_that_a_reached_member_has_eligible_stays)
{
	struct slotmap_seen seen[4] = { { 0 } };
	bool el[MEMBERS_MAX + 1] = { false };
	uint64_t sees;

	/* 1 - 3 cut; 2 reaches 3 and has it eligible. */
	seen[2] = (struct slotmap_seen){ .reached = true, .ready = true, .sees = 0x6 };
	seen[3] = (struct slotmap_seen){ .reached = false };
	sees = slotmap_eligible(seen, 3, 1, true, el);
	cr_assert(el[3], "one cut link is not a death");
	cr_assert_eq(sees, 0x3, "a member known only from a report is not relayed");

	/* 2 no longer has it eligible (dead, or without a quorum): it goes. */
	seen[2].sees = 0x2;
	slotmap_eligible(seen, 3, 1, true, el);
	cr_assert_not(el[3]);

	/* A report from a member this node does not reach counts for nothing. */
	seen[2] = (struct slotmap_seen){ .reached = false, .sees = 0x6 };
	slotmap_eligible(seen, 3, 1, true, el);
	cr_assert_not(el[2]);
	cr_assert_not(el[3]);
}

/*
 * A simulated cluster: link[a][b] says whether a and b reach each other,
 * ok[a] whether a is READY with a quorum, and each round every member
 * reads the others' PINGs of the round before (sees and flags over the
 * links it has) and computes its eligible set and its own `sees`.
 */
struct sim {
	uint32_t n;
	bool link[6][6];
	bool ok[6];
	bool old[6]; /* an earlier version: never says no_slots */
	uint64_t sees[6];
	bool el[6][MEMBERS_MAX + 1];
};

static void sim_rounds(struct sim *s, int rounds)
{
	while (rounds-- > 0) {
		uint64_t next[6];

		for (uint16_t v = 1; v <= s->n; v++) {
			struct slotmap_seen seen[6] = { { 0 } };

			for (uint16_t id = 1; id <= s->n; id++) {
				if (id == v || !s->link[v][id])
					continue;
				seen[id].reached = true;
				seen[id].ready = true;
				seen[id].no_slots = !s->ok[id] && !s->old[id];
				seen[id].sees = s->sees[id];
			}
			next[v] = slotmap_eligible(seen, s->n, v, s->ok[v], s->el[v]);
		}
		for (uint16_t v = 1; v <= s->n; v++)
			s->sees[v] = next[v];
	}
}

static void sim_link(struct sim *s, uint16_t a, uint16_t b, bool up)
{
	s->link[a][b] = s->link[b][a] = up;
}

/*
 * The map of every member but `but` (0: none); asserts they are all equal,
 * and returns it in *out.
 */
static void sim_maps_agree(const struct sim *s, const struct members *ms, uint16_t but,
                           struct slotmap *out)
{
	static struct slotmap sm;
	uint16_t first = but == 1 ? 2 : 1;

	slotmap_compute(out, ms, s->el[first]);
	for (uint16_t v = first + 1; v <= s->n; v++) {
		if (v == but)
			continue;
		slotmap_compute(&sm, ms, s->el[v]);
		cr_assert_eq(memcmp(sm.owner, out->owner, sizeof(sm.owner)), 0,
		             "members %u and %u disagree on the map", first, v);
	}
}

static struct sim whole_five(void)
{
	struct sim s;

	memset(&s, 0, sizeof(s));
	s.n = 5;
	for (uint16_t a = 1; a <= 5; a++) {
		s.ok[a] = true;
		for (uint16_t b = 1; b <= 5; b++)
			s.link[a][b] = a != b;
	}
	return s;
}

Test(slotmap_eligible, a_member_without_quorum_that_one_member_reaches_loses_its_slots_everywhere)
{
	static struct slotmap before, during, after;
	struct members ms = five();
	struct sim s = whole_five();
	const uint16_t m = 1; /* R is member 2 */

	sim_rounds(&s, 2);
	sim_maps_agree(&s, &ms, 0, &before);
	cr_assert_gt(slotmap_count(&before, m), 0);

	/* M reaches only R: 2 of 5, no quorum. R reaches everyone. */
	for (uint16_t o = 3; o <= 5; o++)
		sim_link(&s, m, o, false);
	s.ok[m] = false;
	sim_rounds(&s, 2); /* M's PING to R, R's PING to the others */
	sim_maps_agree(&s, &ms, 0, &during);
	cr_assert_eq(slotmap_count(&during, m), 0, "M owns nothing, in every map");
	cr_assert_eq(slotmap_count(&during, 0), 0, "every slot has an owner");
	for (uint32_t slot = 0; slot < STORE_SLOTS; slot++) {
		if (before.owner[slot] != m)
			cr_assert_eq(during.owner[slot], before.owner[slot],
			             "slot %u of another member moved", slot);
	}

	/* Its quorum back (the links return): it takes exactly its slots back. */
	for (uint16_t o = 3; o <= 5; o++)
		sim_link(&s, m, o, true);
	s.ok[m] = true;
	sim_rounds(&s, 2);
	sim_maps_agree(&s, &ms, 0, &after);
	cr_assert_eq(memcmp(after.owner, before.owner, sizeof(after.owner)), 0,
	             "the map before the cut, again");
}

Test(slotmap_eligible, an_earlier_version_without_quorum_keeps_its_slots_as_before)
{
	/* What issue 11 found, and what a mixed cluster still does for an old member. */
	static struct slotmap map;
	struct members ms = five();
	struct sim s = whole_five();
	const uint16_t m = 1;

	s.old[m] = true;
	for (uint16_t o = 3; o <= 5; o++)
		sim_link(&s, m, o, false);
	s.ok[m] = false;
	sim_rounds(&s, 3);
	for (uint16_t v = 2; v <= 5; v++)
		cr_assert(s.el[v][m], "member %u gives the old M its slots (R reports it)", v);
	slotmap_compute(&map, &ms, s.el[3]);
	cr_assert_gt(slotmap_count(&map, m), 0);
}

Test(slotmap_eligible, a_partial_partition_agrees_once_the_cut_member_says_it_has_no_quorum)
{
	/*
	 * {1, 2} and {3, 4, 5} cut apart except the 1 - 3 link: 2 reaches only
	 * 1 (no quorum); 1 reaches 2 and 3, 3 reaches 1, 4 and 5 (quorums).
	 */
	static struct slotmap map;
	struct members ms = five();
	struct sim s = whole_five();

	for (uint16_t a = 1; a <= 2; a++)
		for (uint16_t b = 3; b <= 5; b++)
			if (!(a == 1 && b == 3))
				sim_link(&s, a, b, false);
	s.ok[2] = false;
	sim_rounds(&s, 3);
	sim_maps_agree(&s, &ms, 2, &map);
	cr_assert_eq(slotmap_count(&map, 2), 0);
	/*
	 * 2's own map differs (it hears of 4 and 5 from nobody), harmlessly: it
	 * owns nothing there either, and refuses every write.
	 */
	cr_assert_not(s.el[2][2]);
	for (uint16_t id = 1; id <= 5; id++)
		if (id != 2)
			cr_assert_gt(slotmap_count(&map, id), 0, "member %u owns slots", id);
}

Test(slotmap_eligible, a_dead_member_leaves_every_map_within_two_rounds)
{
	static struct slotmap map;
	struct members ms = five();
	struct sim s = whole_five();

	sim_rounds(&s, 2);
	for (uint16_t o = 1; o <= 5; o++)
		if (o != 4)
			sim_link(&s, 4, o, false);
	sim_rounds(&s, 2);
	for (uint16_t v = 1; v <= 5; v++)
		if (v != 4)
			cr_assert_not(s.el[v][4], "member %u still gives the dead member slots", v);
	slotmap_compute(&map, &ms, s.el[1]);
	cr_assert_eq(slotmap_count(&map, 4), 0);
}
