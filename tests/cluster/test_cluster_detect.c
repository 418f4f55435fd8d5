/*
 * Detection of a divergence (verify.c): one look marks a slot, a confirming
 * look soon after decides, instead of a second verify round a whole
 * interval later.
 *
 * - a divergence is repaired within one verify round of its owner: node 2
 *   drops every sync frame it sends (--fault-drop-sync 100), so instances
 *   it owns and registers exist only there; with --verify-interval 3000
 *   every node holds all of them before node 2 has sent its second digest
 *   since the writes (the old rule needed two digests in a row showing the
 *   difference, so it could not), and the repair counters show it was a
 *   repair;
 * - writes in flight are not divergences: three nodes under a steady write
 *   load (about 10000/s), with a sync window of 20 ms so that every look
 *   catches records still in flight, find differences at every round
 *   (verify_mismatch grows; some are still there at the per-slot sums and
 *   get a confirming look) and repair nothing (repair_slots stays 0 on every
 *   node), and end with equal copies.
 *
 * Instances live in 198.18.0.0/15 (never contacted) with timings far
 * longer than the test: no expiry adds or hides a difference.
 */
#include "harness.h"

#include <stdio.h>
#include <string.h>

#define CONVERGE_MS 20000
#define INTERVAL_MS 3000

static struct cluster cl;

static void instances(struct distro_instance *in, char (*ips)[16], uint32_t n, uint32_t base,
                      const char *service)
{
	for (uint32_t i = 0; i < n; i++) {
		uint32_t k = base + i, h = (k + 1) * 2654435761u;

		/* 198.18/15 (documentation): distinct, and the hash spreads the slots. */
		snprintf(ips[i], sizeof(ips[i]), "198.%u.%u.%u", 18 + ((k >> 16) & 1),
		         (k >> 8) & 255, k & 255);
		distro_instance_init(&in[i]);
		in[i].service = service;
		in[i].ip = ips[i];
		in[i].port = (uint16_t)(8000 + (h >> 8) % 2000);
		in[i].interval_ms = 5000;
		in[i].timeout_ms = 600000;
		in[i].delete_ms = 600000;
	}
}

static void converged(void)
{
	char why[256];

	if (!cluster_wait_converged(&cl, CONVERGE_MS)) {
		cluster_converged(&cl, why, sizeof(why));
		cluster_assert(&cl, false, "no agreed map: %s", why);
	}
}

static void teardown(void)
{
	cluster_teardown(&cl);
}

/* ---- a real divergence: repaired in the round that first sees it ---- */

static void start_diverging(void)
{
	static const char *every[] = { "--verify-interval", "3000", NULL };
	static const char *drop[] = { "--fault-drop-sync", "100", NULL };

	cluster_setup(&cl, &(struct cluster_opts){ .n = 3, .extra = every, .node_extra[2] = drop });
	cluster_start(&cl);
}

#define N_DIV 60

static struct distro_instance div_in[N_DIV];
static char div_ips[N_DIV][16];

static bool all_listed(void *arg)
{
	(void)arg;
	for (uint32_t i = 0; i < 3; i++)
		if (cluster_listed(&cl, i, div_in, N_DIV) != N_DIV)
			return false;
	return true;
}

static bool round_passed(void *arg)
{
	return cluster_stat(&cl, 2, "peer_verify_rounds") != *(unsigned long long *)arg;
}

Test(cluster_detect, a_divergence_is_repaired_within_one_verify_round_of_its_owner,
     .init = start_diverging, .fini = teardown, .timeout = 120)
{
	unsigned long long rounds0, rounds1, repaired = 0, confirms = 0;
	static int res[N_DIV];
	int64_t t0, took;

	converged();
	instances(div_in, div_ips, N_DIV, 0, "diverged");
	/* Right after one of node 2's rounds, so the writes are not split across one. */
	rounds0 = cluster_stat(&cl, 2, "peer_verify_rounds");
	cluster_assert(&cl, wait_until(round_passed, &rounds0, 2 * INTERVAL_MS),
	               "node 2 sends a digest every %d ms", INTERVAL_MS);
	cluster_nap_ms(50); /* a round counts one digest per peer: read it whole */
	rounds0 = cluster_stat(&cl, 2, "peer_verify_rounds");
	t0 = cluster_mono_ms();
	cr_assert_eq(cluster_register(&cl, 2, div_in, N_DIV, res), 0);
	for (uint32_t k = 0; k < N_DIV; k++)
		cluster_assert(&cl, res[k] >= 0, "register: %s", distro_strerror(res[k]));
	/* Those it forwarded come back by their owners' sync, which nothing drops. */
	cluster_assert(&cl, cluster_wait_listed(&cl, 2, div_in, N_DIV, N_DIV, INTERVAL_MS, NULL),
	               "node 2 holds all it registered");
	/* Two rounds (the old rule's minimum) plus slack: the bound of the wait only. */
	cluster_assert(&cl, wait_until(all_listed, NULL, 3 * INTERVAL_MS),
	               "every node lists the %d instances", N_DIV);
	took = cluster_mono_ms() - t0;
	rounds1 = cluster_stat(&cl, 2, "peer_verify_rounds");
	for (uint32_t i = 0; i < 2; i++) {
		repaired += cluster_stat(&cl, i, "peer_repair_slots");
		confirms += cluster_stat(&cl, i, "peer_verify_confirms");
	}
	cr_log_info("equal %lld ms after the writes; node 2 sent %llu digests meanwhile\n",
	            (long long)took, rounds1 - rounds0);
	cluster_assert(&cl, repaired > 0, "repair, not sync, made the copies equal");
	cluster_assert(&cl, confirms > 0, "a confirming look decided it");
	/* Node 2 sends one digest per peer per round: two peers. */
	cluster_assert(&cl, rounds1 - rounds0 <= 2,
	               "equal after %llu digests of the owner (%lld ms): one round must do",
	               rounds1 - rounds0, (long long)took);
}

/* ---- writes in flight: looked at again, never repaired ---- */

/* Ten times the default: every look catches records still in the owner's feed. */
#define BUSY_SYNC_WINDOW "20"

static void start_busy(void)
{
	/* Verify every 500 ms: a confirming look 200 ms (or twice the lag) after a difference. */
	static const char *every[] = { "--sync-window", BUSY_SYNC_WINDOW, "--verify-interval",
		                       "500", NULL };

	cluster_setup(&cl, &(struct cluster_opts){ .n = 3, .extra = every });
	cluster_start(&cl);
}

#define N_BUSY    3000
#define BUSY_MS   5000
#define BUSY_SLOT 256 /* one register call: the harness's batch */
#define BUSY_GAP  25  /* ms between calls: about 10000 writes/s, a load, not an overload */

static struct distro_instance busy_in[N_BUSY];
static char busy_ips[N_BUSY][16];

struct counts {
	int n[3];
};

static bool busy_equal(void *arg)
{
	struct counts *c = arg;

	for (uint32_t i = 0; i < 3; i++)
		c->n[i] = cluster_listed(&cl, i, busy_in, N_BUSY);
	return c->n[0] == N_BUSY && c->n[1] == N_BUSY && c->n[2] == N_BUSY;
}

Test(cluster_detect, writes_in_flight_are_looked_at_again_and_never_repaired, .init = start_busy,
     .fini = teardown, .timeout = 180)
{
	unsigned long long mismatch = 0, confirms = 0, repaired = 0, writes = 0;
	static int res[BUSY_SLOT];
	struct counts c;
	int64_t end;
	uint32_t at = 0;

	converged();
	instances(busy_in, busy_ips, N_BUSY, 4096, "busy");
	/* Every pass rewrites each instance with a new weight: new versions, new sums. */
	end = cluster_mono_ms() + BUSY_MS;
	for (uint32_t pass = 0; cluster_mono_ms() < end; pass++) {
		for (uint32_t k = 0; k < BUSY_SLOT; k++)
			busy_in[(at + k) % N_BUSY].weight = 1 + pass % 50;
		uint32_t n = at + BUSY_SLOT <= N_BUSY ? BUSY_SLOT : N_BUSY - at;

		cr_assert_eq(cluster_register(&cl, pass % 3, busy_in + at, n, res), 0);
		for (uint32_t k = 0; k < n; k++)
			cluster_assert(&cl, res[k] >= 0, "register: %s", distro_strerror(res[k]));
		writes += n;
		at = (at + n) % N_BUSY;
		cluster_nap_ms(BUSY_GAP); /* the load's pace, not a wait for a result */
	}
	cluster_assert(&cl, wait_until(busy_equal, &c, CONVERGE_MS),
	               "every node lists the %d instances (%d %d %d)", N_BUSY, c.n[0], c.n[1],
	               c.n[2]);
	for (uint32_t i = 0; i < 3; i++) {
		mismatch += cluster_stat(&cl, i, "peer_verify_mismatch");
		confirms += cluster_stat(&cl, i, "peer_verify_confirms");
		repaired += cluster_stat(&cl, i, "peer_repair_slots");
	}
	cr_log_info("%llu writes; %llu digest ranges differed, %llu confirming looks, %llu slots "
	            "repaired\n",
	            writes, mismatch, confirms, repaired);
	cluster_assert(&cl, mismatch > 0,
	               "the digests caught writes in flight (else this test shows nothing)");
	cluster_assert(&cl, repaired == 0,
	               "%llu slots repaired for writes that were only in flight", repaired);
}
