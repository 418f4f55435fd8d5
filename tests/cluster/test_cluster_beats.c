/*
 * Heartbeats do not amplify (Nacos #6967: forwarded beats multiplied load
 * across the cluster). 300 instances registered, then beaten 10 times
 * through one node:
 *
 * - each beat of an instance another member owns costs exactly one
 *   forwarded item (peer_fwd_items grows by the number forwarded per round,
 *   no more), carried in at most one FWD frame per owner per client frame,
 *   not one per instance;
 * - beats change nothing replicated, so no node sends any sync record
 *   during the beating;
 * - every beat is answered OK.
 *
 * And a client with routing on (distro_route_enable) sends each item to its
 * owner itself: nothing is forwarded at all; with an owner killed, its
 * items go through the connected node and are still answered.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_INST 300
#define ROUNDS 10

static struct cluster cl;
static struct distro_instance inst[N_INST];
static char ips[N_INST][16];
static struct distro_slot_map map;

static void start(void)
{
	cluster_setup(&cl, &(struct cluster_opts){ .n = 3 });
	cluster_start(&cl);
	cluster_instances(inst, ips, N_INST, "beats");
}

static void teardown(void)
{
	cluster_teardown(&cl);
}

struct synced_ctx {
	unsigned long long total;
};

/* Sync records sent by all nodes, and whether that number stopped moving. */
static unsigned long long sync_out_all(void)
{
	unsigned long long n = 0;

	for (uint32_t i = 0; i < cl.n; i++)
		n += cluster_stat(&cl, i, "peer_sync_records_out") +
		     cluster_stat(&cl, i, "peer_sync_dropped");
	return n;
}

static bool sync_settled(void *arg)
{
	struct synced_ctx *x = arg;
	unsigned long long now = sync_out_all();
	bool same = now == x->total;

	x->total = now;
	return same;
}

Test(cluster_beats, a_forwarded_beat_costs_one_item_and_no_sync, .init = start, .fini = teardown,
     .timeout = 180)
{
	static int res[N_INST];
	uint32_t forwarded = 0;
	unsigned long long fwd0, frames0;
	struct synced_ctx sc = { 0 };

	cluster_assert(&cl, cluster_wait_converged(&cl, 20000), "an agreed map");
	cr_assert_eq(cluster_register(&cl, 0, inst, N_INST, res), 0);
	for (uint32_t k = 0; k < N_INST; k++)
		cr_assert_geq(res[k], 0);
	cr_assert_eq(cluster_slot_map(&cl, 0, &map), 0);
	for (uint32_t k = 0; k < N_INST; k++)
		forwarded += map.owners[distro_slot_of(inst[k].ip, inst[k].port)] !=
		             cluster_member_id(&cl, 0);
	cr_assert_gt(forwarded, N_INST / 3);
	/* The registration's sync has gone out (the count stops moving). */
	cluster_assert(&cl, wait_until(sync_settled, &sc, 5000), "sync settles");
	cluster_assert(&cl, wait_until(sync_settled, &sc, 5000), "sync settles");
	fwd0 = cluster_stat(&cl, 0, "peer_fwd_items");
	frames0 = cluster_stat(&cl, 0, "peer_fwd_batches");

	for (int r = 0; r < ROUNDS; r++) {
		cr_assert_eq(cluster_heartbeat(&cl, 0, inst, N_INST, res), 0);
		for (uint32_t k = 0; k < N_INST; k++)
			cluster_assert(&cl, res[k] == 0, "beat %u: %d", k, res[k]);
	}
	/* The map did not move meanwhile, so the forwarded count is exact. */
	cr_assert_eq(cluster_slot_map(&cl, 0, &map), 0);
	cr_assert_eq(cluster_stat(&cl, 0, "peer_fwd_items") - fwd0,
	             (unsigned long long)forwarded * ROUNDS,
	             "one forwarded item per beat owned elsewhere, no more");
	/* The harness sends 300 beats as 2 client frames: at most 2 owners x 2 frames a round. */
	cr_assert_leq(cluster_stat(&cl, 0, "peer_fwd_batches") - frames0, 4ull * ROUNDS,
	              "batched: one FWD frame per owner per client frame at most, not per item "
	              "(%llu frames for %u items)",
	              cluster_stat(&cl, 0, "peer_fwd_batches") - frames0, forwarded * ROUNDS);
	cr_assert_eq(sync_out_all(), sc.total, "beats changed nothing replicated: no sync");
}

static unsigned long long fwd_all(void)
{
	unsigned long long n = 0;

	for (uint32_t i = 0; i < cl.n; i++)
		n += cluster_stat(&cl, i, "peer_fwd_items");
	return n;
}

Test(cluster_beats, a_routing_client_writes_to_owners_and_nothing_is_forwarded, .init = start,
     .fini = teardown, .timeout = 180)
{
	static int res[N_INST];
	struct distro_client *c;
	unsigned long long fwd0;

	cluster_assert(&cl, cluster_wait_converged(&cl, 20000), "an agreed map");
	c = cluster_connect(&cl, 0);
	cr_assert_not_null(c);
	cr_assert_eq(distro_route_enable(c), 0);
	fwd0 = fwd_all();
	cr_assert_eq(distro_register(c, inst, 256, res), 0);
	cr_assert_eq(distro_register(c, inst + 256, N_INST - 256, res + 256), 0);
	for (uint32_t k = 0; k < N_INST; k++)
		cr_assert_eq(res[k], 2, "item %u created at its owner: %d", k, res[k]);
	for (int r = 0; r < 3; r++) {
		cr_assert_eq(distro_heartbeat(c, inst, 256, res), 0);
		for (uint32_t k = 0; k < 256; k++)
			cr_assert_eq(res[k], 0, "beat %u: %d", k, res[k]);
	}
	cr_assert_eq(fwd_all(), fwd0, "every item went straight to its owner");
	for (uint32_t i = 0; i < cl.n; i++) {
		int last;

		cluster_assert(&cl, cluster_wait_listed(&cl, i, inst, N_INST, N_INST, 5000, &last),
		               "node %u lists %d of %d", i, last, N_INST);
	}
	/* An owner gone: its items go through the connected node, answered all the same. */
	cluster_node_kill(&cl, 2);
	for (int r = 0; r < 3; r++) {
		cr_assert_eq(distro_heartbeat(c, inst, 256, res), 0, "round %d", r);
		for (uint32_t k = 0; k < 256; k++)
			cr_assert(res[k] == 0 || res[k] == 2 || res[k] == -31,
			          "beat %u with an owner down: %d", k, res[k]);
	}
	distro_close(c);
}
