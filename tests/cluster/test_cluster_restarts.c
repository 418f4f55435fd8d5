/*
 * Restarts with clients beating throughout (Nacos #8436, #15857 lost live
 * instances exactly here):
 *
 * - rolling: each of the 3 nodes in turn is stopped (SIGTERM) and started;
 *   each time it loads, becomes READY and lists all 300, and at every look
 *   in between every READY node lists all 300;
 * - all at once (kill -9 of the three, then three starts): an in-memory
 *   registry restarted as a whole has nothing to load; the nodes become
 *   READY after --startup-wait and the clients' next beats (a beat carries
 *   the whole instance) re-create everything: within a few beat intervals
 *   every node lists all 300 again.
 *
 * The beater sends every instance's beat every 500 ms through one running
 * node, moving to the next node when a call fails (as a client with a
 * server list does), and retries items answered retryable.
 */
#include "harness.h"

#include "core/err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_INST      300
#define BEAT_MS     500
#define CONVERGE_MS 30000
#define SPREAD_MS   8000

static struct cluster cl;
static struct distro_instance inst[N_INST];
static char ips[N_INST][16];

static struct {
	pthread_t thread;
	int stop;
	uint64_t rounds, failures;
} bt;

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* One round: all beats through node `at`; false if the call failed. */
static bool beat_all(struct distro_client *c)
{
	static int res[N_INST];
	static struct distro_instance again[N_INST];
	uint32_t todo = N_INST;

	memcpy(again, inst, sizeof(inst));
	for (int attempt = 0; attempt < 4 && todo > 0; attempt++) {
		uint32_t left = 0;

		if (attempt)
			nap_ms(50);
		if (distro_heartbeat(c, again, todo, res) < 0)
			return false;
		for (uint32_t k = 0; k < todo; k++)
			if (res[k] == -ERR_UNAVAILABLE || res[k] == -ERR_BUSY)
				again[left++] = again[k];
		todo = left;
	}
	return true;
}

static void *beater_main(void *arg)
{
	struct distro_client *c = NULL;
	uint32_t at = 0;

	(void)arg;
	while (!__atomic_load_n(&bt.stop, __ATOMIC_RELAXED)) {
		int64_t next = mono_ms() + BEAT_MS;

		for (uint32_t tries = 0; tries < cl.n; tries++) {
			if (c == NULL)
				c = cluster_connect(&cl, at);
			if (c && beat_all(c))
				break;
			if (c)
				distro_close(c);
			c = NULL;
			__atomic_fetch_add(&bt.failures, 1, __ATOMIC_RELAXED);
			at = (at + 1) % cl.n; /* the next node of the list */
		}
		__atomic_fetch_add(&bt.rounds, 1, __ATOMIC_RELAXED);
		while (!__atomic_load_n(&bt.stop, __ATOMIC_RELAXED) && mono_ms() < next)
			nap_ms(10);
	}
	if (c)
		distro_close(c);
	return NULL;
}

static void start(void)
{
	cluster_setup(&cl, &(struct cluster_opts){ .n = 3 });
	cluster_start(&cl);
	cluster_instances(inst, ips, N_INST, "restarts");
	for (uint32_t k = 0; k < N_INST; k++) {
		inst[k].interval_ms = BEAT_MS;
		inst[k].timeout_ms = 1500;
		inst[k].delete_ms = 3000;
	}
}

static void teardown(void)
{
	if (bt.thread) {
		__atomic_store_n(&bt.stop, 1, __ATOMIC_RELAXED);
		pthread_join(bt.thread, NULL);
		bt.thread = 0;
	}
	cluster_teardown(&cl);
}

struct listed_ctx {
	uint32_t node;
	int last;
};

static bool lists_all(void *arg)
{
	struct listed_ctx *x = arg;

	x->last = cluster_listed(&cl, x->node, inst, N_INST);
	return x->last == N_INST;
}

static void assert_lists_all(uint32_t node, int timeout_ms, const char *when)
{
	struct listed_ctx x = { node, 0 };

	cluster_assert(&cl, wait_until(lists_all, &x, timeout_ms),
	               "%s: node %u lists %d of %d after %d ms (beater: %llu rounds, %llu "
	               "failures)",
	               when, node, x.last, N_INST, timeout_ms,
	               (unsigned long long)__atomic_load_n(&bt.rounds, __ATOMIC_RELAXED),
	               (unsigned long long)__atomic_load_n(&bt.failures, __ATOMIC_RELAXED));
}

static void assert_converged(const char *when)
{
	char why[256];

	if (cluster_wait_converged(&cl, CONVERGE_MS))
		return;
	cluster_converged(&cl, why, sizeof(why));
	cluster_assert(&cl, false, "%s: no agreed map: %s", when, why);
}

static void registered_and_beaten(void)
{
	static int res[N_INST];

	assert_converged("start");
	cr_assert_eq(cluster_register(&cl, 0, inst, N_INST, res), 0);
	for (uint32_t k = 0; k < N_INST; k++)
		cluster_assert(&cl, res[k] >= 0, "register: %s", distro_strerror(res[k]));
	cr_assert_eq(pthread_create(&bt.thread, NULL, beater_main, NULL), 0);
	for (uint32_t i = 0; i < cl.n; i++)
		assert_lists_all(i, SPREAD_MS, "before the restarts");
}

/* Every running node that is READY lists all the instances (one look). */
static void ready_nodes_list_all(const char *when)
{
	static struct distro_slot_map m;

	for (uint32_t i = 0; i < cl.n; i++) {
		int got;

		if (!cluster_node_running(&cl, i) || cluster_slot_map(&cl, i, &m) < 0 || !m.ready)
			continue;
		got = cluster_listed(&cl, i, inst, N_INST);
		cluster_assert(&cl, got == N_INST, "%s: READY node %u lists %d of %d", when, i, got,
		               N_INST);
	}
}

Test(cluster_restarts, a_rolling_restart_loses_no_live_instance, .init = start, .fini = teardown,
     .timeout = 600)
{
	registered_and_beaten();
	for (uint32_t i = 0; i < cl.n; i++) {
		char when[64];
		int64_t end;

		snprintf(when, sizeof(when), "restart of node %u", i);
		cr_assert_eq(cluster_node_stop(&cl, i), 0, "node %u stops cleanly", i);
		ready_nodes_list_all(when);
		cluster_node_start(&cl, i);
		/* While it loads and takes its slots back, the READY nodes keep everything. */
		end = mono_ms() + 1500;
		while (mono_ms() < end) {
			ready_nodes_list_all(when);
			nap_ms(100);
		}
		cluster_assert(&cl, cluster_wait_ready(&cl, i, CONVERGE_MS), "%s: READY", when);
		assert_converged(when);
		assert_lists_all(i, SPREAD_MS, when);
		ready_nodes_list_all(when);
	}
}

Test(cluster_restarts, a_whole_cluster_restart_is_rebuilt_by_the_clients_beats, .init = start,
     .fini = teardown, .timeout = 600)
{
	registered_and_beaten();
	for (uint32_t i = 0; i < cl.n; i++)
		cluster_node_kill(&cl, i);
	for (uint32_t i = 0; i < cl.n; i++)
		cluster_node_start(&cl, i);
	for (uint32_t i = 0; i < cl.n; i++)
		cluster_assert(&cl, cluster_wait_ready(&cl, i, CONVERGE_MS), "node %u READY", i);
	assert_converged("after the whole restart");
	for (uint32_t i = 0; i < cl.n; i++)
		assert_lists_all(i, SPREAD_MS, "after the whole restart");
}
