/*
 * A node of a 3-node cluster crashes (kill -9) while clients keep 300
 * instances alive through the other two (harness.h):
 *
 * - its slots move to the survivors, and from then on none of the 300
 *   ever disappears from the survivors' lists (takeover gives fresh
 *   deadlines, and the beats keep them), checked every 100 ms for 5 s;
 * - restarted with the same ports, it loads, becomes READY, takes back
 *   slots (its own map and the survivors' give it some) and lists all 300.
 *
 * The instances beat every 500 ms and expire fast (unhealthy after 1500,
 * removed after 3000 ms), so an instance the cluster lost track of would
 * vanish well within the watch.
 */
#include "harness.h"

#include "core/err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_INST      300
#define VICTIM      2     /* the node killed; 0 and 1 survive */
#define BEAT_MS     500   /* instance interval, and the beater's period */
#define CONVERGE_MS 20000 /* start to one agreed map, under ASan */
#define MOVE_MS     10000 /* kill to the survivors' agreed map without the victim */
#define SPREAD_MS   5000  /* registered (or READY) to listed everywhere */
#define WATCH_MS    5000  /* how long the survivors are watched after the move */

static struct cluster cl;
static struct distro_instance inst[N_INST];
static char ips[N_INST][16];
static struct distro_slot_map map;

/* Heartbeats for every instance every BEAT_MS, half through node 0 and half through node 1. */
struct beater {
	pthread_t thread;
	int stop; /* atomic */
	struct distro_instance half[2][N_INST];
	uint32_t half_n[2];
	uint64_t rounds, retried, item_failures, call_failures, late_rounds;
};

static struct beater bt;

/* The beater's counters: written by its thread, read by the test's (relaxed atomics). */
#define COUNT(field, k) __atomic_fetch_add(&bt.field, (uint64_t)(k), __ATOMIC_RELAXED)
#define SEEN(field)     ((unsigned long long)__atomic_load_n(&bt.field, __ATOMIC_RELAXED))

static bool retryable(int r)
{
	return r == -ERR_UNAVAILABLE || r == -ERR_BUSY;
}

/*
 * One round through one node: beat all, then retry (up to 3 times, 50 ms
 * apart) the items answered retryable, as a real client would.
 */
static void beat_round(struct distro_client **conn, uint32_t node, struct distro_instance *in,
                       uint32_t n)
{
	static int res[N_INST]; /* the beater thread's alone */
	static struct distro_instance again[N_INST];
	uint32_t todo = n;

	if (*conn == NULL && (*conn = cluster_connect(&cl, node)) == NULL) {
		COUNT(call_failures, 1);
		return;
	}
	memcpy(again, in, n * sizeof(in[0]));
	for (int attempt = 0; attempt < 4 && todo > 0; attempt++) {
		uint32_t left = 0;

		if (attempt)
			cluster_nap_ms(50);
		if (distro_heartbeat(*conn, again, todo, res) < 0) {
			COUNT(call_failures, 1); /* the next call reconnects */
			return;
		}
		for (uint32_t k = 0; k < todo; k++) {
			if (retryable(res[k]))
				again[left++] = again[k];
			else if (res[k] < 0)
				COUNT(item_failures, 1);
		}
		if (attempt && left < todo)
			COUNT(retried, todo - left);
		todo = left;
	}
	COUNT(item_failures, todo);
}

static void *beater_main(void *arg)
{
	struct distro_client *conn[2] = { NULL, NULL };

	(void)arg;
	while (!__atomic_load_n(&bt.stop, __ATOMIC_RELAXED)) {
		int64_t next = cluster_mono_ms() + BEAT_MS;

		for (uint32_t h = 0; h < 2; h++)
			beat_round(&conn[h], h, bt.half[h], bt.half_n[h]);
		COUNT(rounds, 1);
		if (cluster_mono_ms() > next)
			COUNT(late_rounds, 1);
		while (!__atomic_load_n(&bt.stop, __ATOMIC_RELAXED) && cluster_mono_ms() < next)
			cluster_nap_ms(10);
	}
	for (uint32_t h = 0; h < 2; h++)
		distro_close(conn[h]);
	return NULL;
}

static void beater_start(void)
{
	memset(&bt, 0, sizeof(bt));
	for (uint32_t k = 0; k < N_INST; k++)
		bt.half[k % 2][bt.half_n[k % 2]++] = inst[k];
	cr_assert_eq(pthread_create(&bt.thread, NULL, beater_main, NULL), 0);
}

static void beater_stop(void)
{
	if (bt.thread) {
		__atomic_store_n(&bt.stop, 1, __ATOMIC_RELAXED);
		pthread_join(bt.thread, NULL);
		bt.thread = 0;
	}
}

static void assert_converged(int timeout_ms, const char *when)
{
	char why[256];

	if (cluster_wait_converged(&cl, timeout_ms))
		return;
	cluster_converged(&cl, why, sizeof(why));
	cluster_assert(&cl, false, "%s: no agreed slot map within %d ms: %s", when, timeout_ms,
	               why);
}

static void assert_lists_all(uint32_t node, int timeout_ms, const char *when)
{
	int last;

	cluster_assert(&cl, cluster_wait_listed(&cl, node, inst, N_INST, N_INST, timeout_ms, &last),
	               "%s: node %u lists %d of %d after %d ms (beater: %llu rounds, %llu item "
	               "failures)",
	               when, node, last, N_INST, timeout_ms, SEEN(rounds), SEEN(item_failures));
}

static void start(void)
{
	cluster_setup(&cl, &(struct cluster_opts){ .n = 3 });
	cluster_start(&cl);
	cluster_instances(inst, ips, N_INST, "faults");
	for (uint32_t k = 0; k < N_INST; k++) {
		inst[k].interval_ms = BEAT_MS;
		inst[k].timeout_ms = 1500;
		inst[k].delete_ms = 3000;
	}
}

/*
 * One agreed map, the 300 instances registered, beaten and listed by every
 * node. In the test's body, not .init: a failure there is reported as a
 * failure, with .fini cleaning up.
 */
static void beaten_instances_everywhere(void)
{
	static int res[N_INST];

	assert_converged(CONVERGE_MS, "start");
	cr_assert_eq(cluster_register(&cl, 0, inst, N_INST, res), 0);
	for (uint32_t k = 0; k < N_INST; k++)
		cluster_assert(&cl, res[k] >= 0, "register %s:%u: %s", inst[k].ip, inst[k].port,
		               distro_strerror(res[k]));
	beater_start();
	for (uint32_t i = 0; i < cl.n; i++)
		assert_lists_all(i, SPREAD_MS, "before the kill");
}

static void teardown(void)
{
	beater_stop();
	cluster_teardown(&cl);
}

/* Kills the victim and waits until the survivors agree on a map without it. */
static void kill_victim_and_wait_for_the_move(void)
{
	uint16_t victim = cluster_member_id(&cl, VICTIM);

	cr_assert_eq(cluster_slot_map(&cl, 0, &map), 0);
	cr_assert_gt(distro_slot_map_count(&map, victim), 0, "the victim owned slots");
	cluster_node_kill(&cl, VICTIM);
	/* Converged counts a stopped node only once it is not UP and owns nothing. */
	assert_converged(MOVE_MS, "after kill -9");
	for (uint32_t i = 0; i < cl.n; i++) {
		if (!cluster_node_running(&cl, i))
			continue;
		cr_assert_eq(cluster_slot_map(&cl, i, &map), 0);
		cr_assert_eq(distro_slot_map_count(&map, victim), 0);
		cr_assert_eq(distro_slot_map_member(&map, victim)->health, DISTRO_DOWN,
		             "node %u: the victim is DOWN once its slots moved", i);
	}
}

Test(cluster_faults, survivors_never_lose_a_beaten_instance_after_a_node_is_killed, .init = start,
     .fini = teardown, .timeout = 300)
{
	int64_t end;
	uint32_t looks = 0;

	beaten_instances_everywhere();
	kill_victim_and_wait_for_the_move();
	end = cluster_mono_ms() + WATCH_MS;
	while (cluster_mono_ms() < end) {
		for (uint32_t i = 0; i < cl.n; i++) {
			int got;

			if (!cluster_node_running(&cl, i))
				continue;
			got = cluster_listed(&cl, i, inst, N_INST);
			cluster_assert(&cl, got == N_INST,
			               "%lld ms after the move, node %u lists %d of %d (beater: "
			               "%llu rounds, %llu item failures, %llu call failures)",
			               (long long)(cluster_mono_ms() - (end - WATCH_MS)), i, got,
			               N_INST, SEEN(rounds), SEEN(item_failures),
			               SEEN(call_failures));
		}
		looks++;
		cluster_nap_ms(100);
	}
	cr_assert_geq(looks, 10, "the survivors were looked at often enough");
	cr_assert_gt(SEEN(rounds), WATCH_MS / BEAT_MS / 2, "the beater kept going");
}

struct owns_ctx {
	uint32_t node;   /* whose map */
	uint16_t member; /* must own slots in it */
	uint32_t last;
};

static bool owns_some(void *arg)
{
	struct owns_ctx *o = arg;

	if (cluster_slot_map(&cl, o->node, &map) < 0)
		return false;
	o->last = distro_slot_map_count(&map, o->member);
	return o->last > 0;
}

Test(cluster_faults, restarted_node_becomes_ready_takes_back_slots_and_lists_every_instance,
     .init = start, .fini = teardown, .timeout = 300)
{
	uint16_t victim = cluster_member_id(&cl, VICTIM);

	beaten_instances_everywhere();
	kill_victim_and_wait_for_the_move();
	cluster_node_start(&cl, VICTIM); /* same ports, same cluster.conf */
	cluster_assert(&cl, cluster_wait_ready(&cl, VICTIM, CONVERGE_MS),
	               "the restarted node is not READY within %d ms", CONVERGE_MS);
	for (uint32_t i = 0; i < cl.n; i++) {
		struct owns_ctx o = { i, victim, 0 };

		cluster_assert(&cl, wait_until(owns_some, &o, MOVE_MS),
		               "node %u's map gives the restarted member %u no slots", i, victim);
	}
	assert_converged(MOVE_MS, "after the restart");
	assert_lists_all(VICTIM, SPREAD_MS, "after the restart");
	for (uint32_t i = 0; i < cl.n; i++)
		assert_lists_all(i, SPREAD_MS, "after the restart, everywhere");
}
