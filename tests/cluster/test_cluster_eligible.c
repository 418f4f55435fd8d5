/*
 * A member without a quorum owns no slot, even while a member still
 * reaches it (issue 11; docs/distro.md, "Health and READY": eligible).
 *
 * Five nodes, each in its own network namespace (netns.h). M (node 0) is
 * cut from nodes 2, 3 and 4 by blackhole routes; R (node 1) still reaches
 * everyone. M sees two members of five: no quorum, so it refuses client
 * writes and expires nothing. R still has M UP; by the one-cut-link rule a
 * member that a reachable member reports alive keeps its slots - so unless
 * M says it may not own slots, its slots stay with a node that takes no
 * writes and expires nothing: nodes 2-4 answer "unavailable" to every
 * write in them (the owner is out of reach), what R forwards to M never
 * reaches 2-4 (M syncs to R only), and nothing in them expires.
 *
 * Every instance here is in a slot M owned before the cut (all five maps
 * agree on it):
 * - B, beaten every 500 ms (expiry 1.5 s / 3 s) through the majority
 *   nodes in turn, a round through one node; an item it refuses goes to the
 *   next majority node, as a client with a server list does;
 * - D, beaten until the cut and then never again (dead clients);
 * - X, registered before the cut and deregistered through the majority
 *   during it;
 * - N, registered through the majority during the cut and beaten from then.
 * (What is written during the cut is looked for 1 s after it was
 * acknowledged: replication takes milliseconds, a LIST right after the
 * answer may beat it.)
 * During a 10 s cut (over three delete timeouts), from 2.5 s after it (M
 * has lost its quorum after --peer-down, 900 ms, and the others have heard)
 * every beat round is accepted whole by the node it went through, and at
 * every look each of the four majority nodes lists every B and every N
 * acknowledged, and no X whose deregister was acknowledged; by the end the
 * majority has expired every D. After the routes are removed, at every look
 * the majority still lists every B and N and no X; within 15 s all five list
 * the same (B and N, no X, no D), and for 2 s more.
 */
#include "harness.h"
#include "netns.h"

#include "core/err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODES        5
#define M            0 /* cut from every node but R */
#define R            1 /* reaches everyone */
#define N_B          120
#define N_D          30
#define N_X          30
#define N_N          30
#define N_ALL        (N_B + N_D + N_X + N_N)
#define BEAT_MS      500
#define SETTLE_MS    2500  /* after the cut: --peer-down, then the news of M reaching everyone */
#define CUT_MS       10000 /* over three delete timeouts */
#define HEAL_MS      15000 /* everything converges within this after the routes return */
#define HEAL_HOLD_MS 2000
#define REPL_MS      1000 /* an acknowledged write is on every majority node within this */

static struct netns_cluster nc;

static struct distro_instance b[N_B], d[N_D], x[N_X], nn[N_N];
static char bip[N_B][16], dip[N_D][16], xip[N_X][16], nip[N_N][16];

#define check(cond, ...) NETNS_CHECK(&nc, cond, __VA_ARGS__)

static void setup(void)
{
	netns_setup(&nc, NODES, "eligible", NULL);
}

static void teardown(void)
{
	netns_teardown(&nc);
}

TestSuite(cluster_eligible, .init = setup, .fini = teardown, .timeout = 300);

/* ---- looking at the nodes (a connection per call: the nodes restart their links, not us) ---- */

static struct distro_slot_map smap;

/* Node i's slot map into smap; false when it does not answer. */
static bool map_of(int i)
{
	struct distro_client *c = netns_conn(&nc, i);
	bool ok = c && distro_slot_map(c, &smap) == 0;

	if (c)
		distro_close(c);
	return ok;
}

/* Every node READY, every member UP and READY in its map, and all five maps equal. */
static bool all_ready(void *ctx)
{
	static uint16_t first[DISTRO_SLOTS];

	(void)ctx;
	for (int i = 0; i < NODES; i++) {
		if (!map_of(i) || !smap.ready || smap.n != NODES)
			return false;
		for (uint32_t k = 0; k < smap.n; k++)
			if (smap.m[k].id != smap.self_id &&
			    (smap.m[k].health != DISTRO_UP || !smap.m[k].ready))
				return false;
		if (i == 0)
			memcpy(first, smap.owners, sizeof(first));
		else if (memcmp(first, smap.owners, sizeof(first)) != 0)
			return false;
	}
	return true;
}

/* A node's list of the service as sorted "ip:port" keys (u64). */
struct listing {
	uint64_t k[N_ALL + 16];
	uint32_t n;
	bool ok;
};

static uint64_t key(const char *ip, uint16_t port)
{
	unsigned a, bb, c, dd;

	if (sscanf(ip, "%u.%u.%u.%u", &a, &bb, &c, &dd) != 4)
		return 0;
	return ((uint64_t)((a << 24) | (bb << 16) | (c << 8) | dd) << 16) | port;
}

static void collect(void *ctx, const struct distro_entry *e)
{
	struct listing *l = ctx;

	if (l->n < sizeof(l->k) / sizeof(l->k[0]))
		l->k[l->n++] = key(e->ip, e->port);
}

static int u64cmp(const void *a, const void *bb)
{
	uint64_t p = *(const uint64_t *)a, q = *(const uint64_t *)bb;

	return p < q ? -1 : p > q;
}

static void list_node(int i, struct listing *l)
{
	struct distro_client *c = netns_conn(&nc, i);

	l->n = 0;
	l->ok = false;
	if (c == NULL)
		return;
	l->ok = distro_list(c, NULL, NULL, "elig", NULL, collect, l, NULL) >= 0;
	distro_close(c);
	qsort(l->k, l->n, sizeof(l->k[0]), u64cmp);
}

static uint32_t count_in(const struct listing *l, const struct distro_instance *in, uint32_t n)
{
	uint32_t got = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t k = key(in[i].ip, in[i].port);

		got += bsearch(&k, l->k, l->n, sizeof(l->k[0]), u64cmp) != NULL;
	}
	return got;
}

/* ---- the instances: addresses of 198.18.0.0/15 whose slots M owns ---- */

static void fill(struct distro_instance *in, char (*ips)[16], uint32_t n, uint16_t m_id,
                 uint32_t *next, uint32_t interval, uint32_t timeout, uint32_t del)
{
	for (uint32_t i = 0; i < n; (*next)++) {
		uint32_t a = *next;
		uint16_t port = (uint16_t)(8000 + a % 1000);

		cr_assert_lt(a, 1u << 17, "not enough addresses in M's slots");
		snprintf(ips[i], sizeof(ips[i]), "198.%u.%u.%u", 18 + (a >> 16), (a >> 8) & 255,
		         a & 255);
		if (smap.owners[distro_slot_of(ips[i], port)] != m_id)
			continue;
		distro_instance_init(&in[i]);
		in[i].service = "elig";
		in[i].ip = ips[i];
		in[i].port = port;
		in[i].interval_ms = interval;
		in[i].timeout_ms = timeout;
		in[i].delete_ms = del;
		i++;
	}
}

/* ---- the beater: every BEAT_MS one round through one majority node, in turn ---- */

static int beater_stop;
static int64_t settle_at;  /* rounds after this must be accepted whole (0: not yet) */
static bool beat_n;        /* N is beaten too (set once it is registered) */
static bool beat_d;        /* D is beaten (until the cut) */
static uint32_t refused;   /* items refused in rounds after settle_at */
static int refused_node;   /* ... by this node */
static int64_t refused_at; /* ... in the round that started then */
static uint32_t unbeaten;  /* items no majority node took, in rounds after settle_at */

static void *beater_main(void *arg)
{
	static int res[N_B + N_N + N_D], res2[N_B + N_N + N_D];
	static struct distro_instance beat_set[N_B + N_N + N_D], again[N_B + N_N + N_D];
	uint32_t round = 0;

	(void)arg;
	while (!__atomic_load_n(&beater_stop, __ATOMIC_ACQUIRE)) {
		int64_t start = cluster_mono_ms(), next = start + BEAT_MS;
		int64_t settle = __atomic_load_n(&settle_at, __ATOMIC_ACQUIRE);
		uint32_t n = 0, left;
		int node = 1 + (int)(round++ % (NODES - 1));
		struct distro_client *c;

		/* b, nn and d are written before their flags are set (release), never after. */
		memcpy(beat_set, b, sizeof(b));
		n = N_B;
		if (__atomic_load_n(&beat_n, __ATOMIC_ACQUIRE)) {
			memcpy(beat_set + n, nn, sizeof(nn));
			n += N_N;
		}
		if (__atomic_load_n(&beat_d, __ATOMIC_ACQUIRE)) {
			memcpy(beat_set + n, d, sizeof(d));
			n += N_D;
		}
		c = netns_conn(&nc, node);
		if (c && distro_heartbeat(c, beat_set, n, res) == 0) {
			left = 0;
			for (uint32_t i = 0; i < n; i++)
				if (res[i] < 0)
					again[left++] = beat_set[i];
		} else {
			memcpy(again, beat_set, n * sizeof(again[0]));
			left = n;
		}
		if (c)
			distro_close(c);
		if (settle && start > settle && left > 0) {
			__atomic_store_n(&refused_node, node, __ATOMIC_RELAXED);
			__atomic_store_n(&refused_at, start, __ATOMIC_RELAXED);
			__atomic_add_fetch(&refused, left, __ATOMIC_RELEASE);
		}
		/* The next majority nodes, as a client with a server list: R last. */
		for (int k = 1; k < NODES - 1 && left > 0; k++) {
			int other = 1 + (node - 1 + k) % (NODES - 1);
			uint32_t still = 0;

			c = netns_conn(&nc, other);
			if (c && distro_heartbeat(c, again, left, res2) == 0) {
				for (uint32_t i = 0; i < left; i++)
					if (res2[i] < 0)
						again[still++] = again[i];
				left = still;
			}
			if (c)
				distro_close(c);
		}
		if (settle && start > settle && left > 0)
			__atomic_add_fetch(&unbeaten, left, __ATOMIC_RELEASE);
		while (cluster_mono_ms() < next && !__atomic_load_n(&beater_stop, __ATOMIC_ACQUIRE))
			cluster_nap_ms(20);
	}
	return NULL;
}

/*
 * Registers or deregisters in[0..n) through the majority (node 2 first, then
 * the next ones), retrying what is refused, within 5 s. Asserts.
 */
static void write_majority(const struct distro_instance *in, uint32_t n, bool del)
{
	int res[N_B];
	int64_t end = cluster_mono_ms() + 5000;
	uint32_t tries = 0;

	for (;;) {
		int node = 1 + (int)((1 + tries++) % (NODES - 1));
		struct distro_client *c = netns_conn(&nc, node);
		bool all = false;

		if (c && (del ? distro_deregister(c, in, n, res)
		              : distro_register(c, in, n, res)) == 0) {
			all = true;
			for (uint32_t i = 0; i < n; i++)
				all = all && res[i] >= 0;
		}
		if (c)
			distro_close(c);
		if (all)
			return;
		check(cluster_mono_ms() < end, "%s %u instances through the majority kept failing",
		      del ? "deregistering" : "registering", n);
		cluster_nap_ms(100);
	}
}

/*
 * One look at node i (a majority node): every B, every N once `with_n`,
 * no X once `no_x`. Fails the test, saying what it saw.
 */
static void look_majority(int i, bool with_n, bool no_x, int64_t t0, const char *when)
{
	static struct listing l;

	list_node(i, &l);
	check(l.ok, "node %d answers LIST %lld ms %s", i, (long long)(cluster_mono_ms() - t0),
	      when);
	check(count_in(&l, b, N_B) == N_B, "node %d lists %u of %u beaten instances %lld ms %s", i,
	      count_in(&l, b, N_B), N_B, (long long)(cluster_mono_ms() - t0), when);
	check(!with_n || count_in(&l, nn, N_N) == N_N,
	      "node %d lists %u of %u instances registered (acknowledged) during the cut, %lld ms "
	      "%s",
	      i, count_in(&l, nn, N_N), N_N, (long long)(cluster_mono_ms() - t0), when);
	check(!no_x || count_in(&l, x, N_X) == 0,
	      "node %d lists %u of %u instances deregistered (acknowledged) during the cut, %lld "
	      "ms %s",
	      i, count_in(&l, x, N_X), N_X, (long long)(cluster_mono_ms() - t0), when);
}

/* All five list exactly the same instances: every B and N, no X and no D. */
static bool converged(void *ctx)
{
	static struct listing l[NODES];

	(void)ctx;
	for (int i = 0; i < NODES; i++) {
		list_node(i, &l[i]);
		if (!l[i].ok)
			return false;
	}
	for (int i = 1; i < NODES; i++)
		if (l[i].n != l[0].n || memcmp(l[i].k, l[0].k, l[0].n * sizeof(uint64_t)) != 0)
			return false;
	return count_in(&l[0], b, N_B) == N_B && count_in(&l[0], nn, N_N) == N_N &&
	       count_in(&l[0], x, N_X) == 0 && count_in(&l[0], d, N_D) == 0;
}

Test(cluster_eligible, a_member_without_quorum_that_one_member_still_reaches_owns_nothing)
{
	static struct listing l;
	pthread_t beater;
	uint16_t m_id;
	uint32_t next = 1;
	int64_t cut, t, heal, until, acked = 0;
	bool conv = false;

	check(wait_until(all_ready, NULL, 30000), "five READY nodes that see each other UP");
	check(map_of(M), "M's slot map");
	m_id = smap.self_id;
	check(distro_slot_map_count(&smap, m_id) > 0, "M owns slots before the cut");
	fill(b, bip, N_B, m_id, &next, BEAT_MS, 1500, 3000);
	fill(d, dip, N_D, m_id, &next, BEAT_MS, 1500, 3000);
	fill(x, xip, N_X, m_id, &next, 0, 0, 0);
	fill(nn, nip, N_N, m_id, &next, BEAT_MS, 1500, 3000);
	write_majority(b, N_B, false);
	write_majority(d, N_D, false);
	write_majority(x, N_X, false);
	__atomic_store_n(&beat_d, true, __ATOMIC_RELEASE);
	cr_assert_eq(pthread_create(&beater, NULL, beater_main, NULL), 0);
	for (int i = 0; i < NODES; i++) {
		int64_t end = cluster_mono_ms() + 10000;

		do {
			list_node(i, &l);
			if (l.ok && count_in(&l, b, N_B) == N_B && count_in(&l, d, N_D) == N_D &&
			    count_in(&l, x, N_X) == N_X)
				break;
			cluster_nap_ms(50);
		} while (cluster_mono_ms() < end);
		check(count_in(&l, b, N_B) == N_B && count_in(&l, d, N_D) == N_D &&
		              count_in(&l, x, N_X) == N_X,
		      "node %d lists B, D and X before the cut", i);
	}

	/* M keeps only R; D's clients die with the cut. */
	for (int j = 2; j < NODES; j++)
		netns_link_cut(&nc, M, j, true);
	cut = cluster_mono_ms();
	__atomic_store_n(&beat_d, false, __ATOMIC_RELEASE);
	__atomic_store_n(&settle_at, cut + SETTLE_MS, __ATOMIC_RELEASE);
	while ((t = cluster_mono_ms()) - cut < CUT_MS) {
		if (t - cut >= SETTLE_MS && acked == 0) {
			write_majority(x, N_X, true);
			write_majority(nn, N_N, false);
			__atomic_store_n(&beat_n, true, __ATOMIC_RELEASE);
			acked = cluster_mono_ms();
		}
		/* What was written is checked once it has had REPL_MS to replicate. */
		for (int i = 1; i < NODES; i++)
			look_majority(i, acked && t > acked + REPL_MS, acked && t > acked + REPL_MS,
			              cut, "into the cut");
		check(__atomic_load_n(&refused, __ATOMIC_ACQUIRE) == 0,
		      "node %d refused %u beats (items whose owner takes no writes) %lld ms into "
		      "the "
		      "cut",
		      __atomic_load_n(&refused_node, __ATOMIC_RELAXED),
		      __atomic_load_n(&refused, __ATOMIC_RELAXED),
		      (long long)(__atomic_load_n(&refused_at, __ATOMIC_RELAXED) - cut));
		check(__atomic_load_n(&unbeaten, __ATOMIC_ACQUIRE) == 0,
		      "%u beats were taken by no majority node",
		      __atomic_load_n(&unbeaten, __ATOMIC_RELAXED));
		cluster_nap_ms(100);
	}
	/* D's clients died at the cut: the majority expired them (3 s delete timeout). */
	for (int i = 1; i < NODES; i++) {
		list_node(i, &l);
		check(l.ok && count_in(&l, d, N_D) == 0,
		      "node %d still lists %u of %u instances whose clients died at the cut, %d ms "
		      "after it (delete timeout 3 s): nobody expires M's slots",
		      i, count_in(&l, d, N_D), N_D, CUT_MS);
	}
	/* The rule itself: no map gives M a slot, M's own included. */
	for (int i = 0; i < NODES; i++)
		check(map_of(i) && distro_slot_map_count(&smap, m_id) == 0,
		      "node %d's map gives M (without a quorum) %u slots", i,
		      distro_slot_map_count(&smap, m_id));

	/*
	 * Heal: at every look the majority lists every B and N and no X; all
	 * five converge, and stay so.
	 */
	for (int j = 2; j < NODES; j++)
		netns_link_cut(&nc, M, j, false);
	heal = cluster_mono_ms();
	until = heal + HEAL_MS;
	while ((t = cluster_mono_ms()) < until) {
		for (int i = 1; i < NODES; i++)
			look_majority(i, true, true, heal, "after the heal");
		if (!conv && all_ready(NULL) && converged(NULL)) {
			conv = true;
			until = cluster_mono_ms() + HEAL_HOLD_MS;
		} else if (conv) {
			check(converged(NULL),
			      "%lld ms after the heal the five no longer list the same (B and N, "
			      "no X or D)",
			      (long long)(t - heal));
		}
		cluster_nap_ms(50);
	}
	check(conv, "within %d ms of the heal all five list the same: every B and N, no X and no D",
	      HEAL_MS);
	check(map_of(M) && distro_slot_map_count(&smap, m_id) > 0,
	      "M owns slots again once it has a quorum");
	__atomic_store_n(&beater_stop, 1, __ATOMIC_RELEASE);
	pthread_join(beater, NULL);
}
