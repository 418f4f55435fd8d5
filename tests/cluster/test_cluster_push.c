/*
 * Subscriptions see every change, whichever node made it. Subscribers on
 * nodes 1 and 2 follow services whose one instance is beaten only through
 * node 0, one service per owner (node 0, 1 and 2 each own one instance's
 * slot). Node 0 is killed: nothing beats the instances any more, so each
 * expires at its owner - the instance of node 0's slot at the member that
 * took the slot over (store_adopt, then its expiry), the others at their
 * owners - and the removals reach the other survivor by sync. Each
 * survivor must push every removal to its subscriber (binary SUBSCRIBE,
 * the same watch and revision path as gRPC's NotifySubscriberRequest)
 * within a bounded wait, as it stops listing it.
 *
 * Written for a suspected lost push (tests/nacos2's cluster run failed
 * waiting for B to see A's instance go once A's node stopped). That was the
 * script's clock, not the server: the removal is pushed while the node
 * stops, before the script's "since" (see e2e.js). This test keeps the
 * path it suspected covered: with the revision bump of a removal taken
 * out (svc_arr_remove) it fails, the list empty and the push missing.
 *
 * Instances use documentation addresses only (198.18.0.0/15).
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONVERGE_MS 20000 /* start to READY and one agreed map, under ASan */
#define SPREAD_MS   5000  /* a write acknowledged by one node is listed by all */
#define BEAT_MS     200
#define TIMEOUT_MS  1000 /* the instances' own healthy and delete timeouts */
#define DELETE_MS   2000
/* The kill seen (peer-down 900), the takeover, a full delete timeout, slack for ASan. */
#define GONE_MS 15000
#define N_SVC   3 /* one per owner */

static struct cluster cl;
static struct distro_slot_map map;

static void start3(void)
{
	char why[256];

	cluster_setup(&cl, &(struct cluster_opts){ .n = 3 });
	cluster_start(&cl);
	if (!cluster_wait_converged(&cl, CONVERGE_MS)) {
		cluster_converged(&cl, why, sizeof(why));
		cluster_assert(&cl, false, "no agreed slot map within %d ms: %s", CONVERGE_MS, why);
	}
}

static void teardown(void)
{
	cluster_teardown(&cl);
}

/* What the subscriber was last given for one service (its answer, then pushes). */
struct seen {
	int count; /* -1: nothing yet */
	uint32_t calls;
};

static void on_push(void *ctx, uint32_t id, uint64_t revision, const struct distro_entry *e,
                    uint32_t n)
{
	struct seen *s = ctx;

	(void)id;
	(void)revision;
	(void)e;
	s->count = (int)n;
	s->calls++;
}

/* Waits (bounded) until every service's last push to sub is empty; then asserts it and the list. */
static void assert_pushed_gone(struct distro_client *sub, uint32_t node, struct seen *seen,
                               const struct distro_instance *in, int64_t end)
{
	for (;;) {
		bool all = true;

		for (uint32_t k = 0; k < N_SVC; k++)
			all = all && seen[k].count == 0;
		if (all || cluster_mono_ms() >= end)
			break;
		cr_assert_geq(distro_poll(sub, 100), 0);
	}
	for (uint32_t k = 0; k < N_SVC; k++) {
		int listed = cluster_listed(&cl, node, &in[k], 1);

		cluster_assert(&cl, listed == 0, "node %u still lists instance %u (%d) after %d ms",
		               node, k, listed, GONE_MS);
		cluster_assert(&cl, seen[k].count == 0,
		               "node %u lists no instance of %s (its slot owned by node %u) but "
		               "last pushed %d to its subscriber (%u calls)",
		               node, in[k].service, k, seen[k].count, seen[k].calls);
	}
}

Test(cluster_push, an_expiry_after_the_beating_node_dies_is_pushed_by_every_survivor,
     .init = start3, .fini = teardown, .timeout = 240)
{
	static char ips[N_SVC][16], names[N_SVC][32];
	struct distro_instance in[N_SVC];
	struct distro_client *sub[2]; /* on nodes 1 and 2 */
	struct seen seen[2][N_SVC];
	uint32_t id;
	int64_t end;

	/* One instance per owner: node k's member owns instance k's slot. */
	cr_assert_eq(cluster_slot_map(&cl, 1, &map), 0);
	for (uint32_t k = 0; k < N_SVC; k++) {
		uint16_t owner = cluster_member_id(&cl, k);
		uint32_t a;

		for (a = 1; a < 65536; a++) {
			snprintf(ips[k], sizeof(ips[k]), "198.18.%u.%u", a >> 8, a & 255);
			if (map.owners[distro_slot_of(ips[k], 7000)] == owner)
				break;
		}
		cr_assert_lt(a, 65536, "an address owned by node %u", k);
		snprintf(names[k], sizeof(names[k]), "push-gone-%u", k);
		distro_instance_init(&in[k]);
		in[k].service = names[k];
		in[k].ip = ips[k];
		in[k].port = 7000;
		in[k].interval_ms = BEAT_MS;
		in[k].timeout_ms = TIMEOUT_MS;
		in[k].delete_ms = DELETE_MS;
	}
	cr_assert_eq(cluster_register(&cl, 0, in, N_SVC, NULL), 0);
	for (uint32_t i = 1; i < 3; i++)
		for (uint32_t k = 0; k < N_SVC; k++)
			cluster_assert(&cl,
			               cluster_wait_listed(&cl, i, &in[k], 1, 1, SPREAD_MS, NULL),
			               "node %u lists instance %u", i, k);

	/* Subscribe on nodes 1 and 2; node 0 keeps beating meanwhile. */
	for (uint32_t s = 0; s < 2; s++) {
		sub[s] = cluster_connect(&cl, s + 1);
		cr_assert_not_null(sub[s]);
		for (uint32_t k = 0; k < N_SVC; k++) {
			seen[s][k] = (struct seen){ .count = -1 };
			cr_assert_eq(distro_subscribe(sub[s], NULL, NULL, names[k], NULL, on_push,
			                              &seen[s][k], &id),
			             0);
		}
	}
	end = cluster_mono_ms() + 1000;
	while (cluster_mono_ms() < end) {
		cr_assert_eq(cluster_heartbeat(&cl, 0, in, N_SVC, NULL), 0);
		for (uint32_t s = 0; s < 2; s++)
			cr_assert_geq(distro_poll(sub[s], BEAT_MS / 2), 0);
	}
	for (uint32_t s = 0; s < 2; s++)
		for (uint32_t k = 0; k < N_SVC; k++)
			cr_assert_eq(seen[s][k].count, 1,
			             "node %u's subscriber was given instance %u (got %d)", s + 1,
			             k, seen[s][k].count);

	/* The only beater dies; every instance expires at its (new) owner. */
	cluster_node_kill(&cl, 0);
	end = cluster_mono_ms() + GONE_MS;
	for (uint32_t s = 0; s < 2; s++)
		assert_pushed_gone(sub[s], s + 1, seen[s], in, end);
	for (uint32_t s = 0; s < 2; s++)
		distro_close(sub[s]);
}
