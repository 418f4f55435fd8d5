/* Rendezvous slot map: complete, balanced, deterministic, minimal movement. */
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
