/*
 * A real network partition: three nodes, each in its own network namespace
 * with two interfaces - one on a "client" bridge the test reaches them
 * through, one on a "peer" bridge their cluster.conf names. Taking node A's
 * peer interface down cuts {A} from {B, C} for peer traffic only, so the
 * test can keep talking to both sides.
 *
 * Instances X beat through A, instances Y through B, every 500 ms (expiry
 * 1.5 s / 3 s), by clients with a server list: an item a node answers
 * "unavailable" goes again through the next node. W beat through A only
 * (a client that reaches nothing else). During a 6 s partition (twice the
 * delete timeout):
 * - A, which sees only itself of three, has no quorum: it refuses every
 *   write ("unavailable"; docs/distro.md, "Writes need a quorum"), still
 *   answers reads, and expires nothing, so it keeps listing Y although Y's
 *   beats never reach it (without that rule its deletes would win over
 *   the live Y when the partition heals);
 * - B and C list every X at every look: X's clients, refused by A, beat
 *   through B, so the majority hears them (before the rule, A took those
 *   beats and the majority expired X - issue 11, item 5);
 * - a registration sent to A goes through B and is listed on B and C;
 * - W, whose beats reach only A and are refused there, is expired by the
 *   majority after its delete timeout, as a dead client's instance is.
 * After the link returns, at every look until all three nodes list the
 * same instances - and for 2 s more - every node lists every X and Y:
 * nothing beaten throughout flaps at the heal.
 *
 * The network is tests/cluster/netns.h's (root and iproute2; skipped with
 * the reason without them).
 */
#include "harness.h"
#include "netns.h"

#include "core/err.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODES        3
#define N_HALF       150 /* X: beaten through A; Y: through B */
#define N_NEW        20  /* registered on each side during the partition */
#define N_W          40  /* beaten through A alone: a client that reaches nothing else */
#define BEAT_MS      500
#define PART_MS      6000 /* twice the delete timeout */
#define HEAL_HOLD_MS 2000

static struct netns_cluster nc;

static struct distro_instance x[N_HALF], y[N_HALF], za[N_NEW], zb[N_NEW], wa[N_W];
static char xip[N_HALF][16], yip[N_HALF][16], zaip[N_NEW][16], zbip[N_NEW][16], waip[N_W][16];

#define check(cond, ...) NETNS_CHECK(&nc, cond, __VA_ARGS__)

static void setup(void)
{
	netns_setup(&nc, NODES, "partition", NULL);
}

static void teardown(void)
{
	netns_teardown(&nc);
}

TestSuite(cluster_partition, .init = setup, .fini = teardown, .timeout = 300);

/* ---- talking to the nodes (a connection per call: nodes restart their links, not us) ---- */

static struct distro_client *conn(int i)
{
	return netns_conn(&nc, i);
}

static bool ready_and_all_up(int i)
{
	static struct distro_slot_map m;
	struct distro_client *c = conn(i);
	bool ok = false;

	if (c == NULL)
		return false;
	if (distro_slot_map(c, &m) == 0 && m.ready && m.n == NODES) {
		ok = true;
		for (uint32_t k = 0; k < m.n; k++)
			ok = ok && (m.m[k].id == m.self_id ||
			            (m.m[k].health == DISTRO_UP && m.m[k].ready));
	}
	distro_close(c);
	return ok;
}

static bool all_ready(void *ctx)
{
	(void)ctx;
	for (int i = 0; i < NODES; i++)
		if (!ready_and_all_up(i))
			return false;
	return true;
}

/* A node's list of the service as sorted "ip:port" keys (u64). */
struct listing {
	uint64_t k[2 * N_HALF + 2 * N_NEW + N_W + 16];
	uint32_t n;
	bool ok;
};

static void collect(void *ctx, const struct distro_entry *e)
{
	struct listing *l = ctx;
	unsigned a, b, c, d;

	if (l->n < sizeof(l->k) / sizeof(l->k[0]) &&
	    sscanf(e->ip, "%u.%u.%u.%u", &a, &b, &c, &d) == 4)
		l->k[l->n++] = ((uint64_t)((a << 24) | (b << 16) | (c << 8) | d) << 16) | e->port;
}

static int u64cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void list_node(int i, struct listing *l)
{
	struct distro_client *c = conn(i);

	l->n = 0;
	l->ok = false;
	if (c == NULL)
		return;
	l->ok = distro_list(c, NULL, NULL, "part", NULL, collect, l, NULL) >= 0;
	distro_close(c);
	qsort(l->k, l->n, sizeof(l->k[0]), u64cmp);
}

static uint64_t key_of(const struct distro_instance *in)
{
	unsigned a, b, c, d;

	sscanf(in->ip, "%u.%u.%u.%u", &a, &b, &c, &d);
	return ((uint64_t)((a << 24) | (b << 16) | (c << 8) | d) << 16) | in->port;
}

static uint32_t count_in(const struct listing *l, const struct distro_instance *in, uint32_t n)
{
	uint32_t got = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t k = key_of(&in[i]);

		got += bsearch(&k, l->k, l->n, sizeof(l->k[0]), u64cmp) != NULL;
	}
	return got;
}

/* ---- the beater: X through node 0, Y through node 1, W through node 0 alone, every BEAT_MS ----
 */

static int beater_stop;
static bool beat_w; /* W is beaten (only the partition test registers it) */

/*
 * Items a node answered retryable (no quorum there, or their owner is
 * unreachable from it) go through the next node, as a client with a server
 * list does.
 */
static void retry_elsewhere(int side, const struct distro_instance *in, const int *res)
{
	static struct distro_instance again[N_HALF];
	int res2[N_HALF];
	uint32_t n = 0;
	struct distro_client *c;

	for (uint32_t i = 0; i < N_HALF; i++)
		if (res[i] == -ERR_UNAVAILABLE || res[i] == -ERR_BUSY)
			again[n++] = in[i];
	if (n == 0 || (c = conn((side + 1) % NODES)) == NULL)
		return;
	(void)distro_heartbeat(c, again, n, res2);
	distro_close(c);
}

static void *beater_main(void *arg)
{
	struct distro_client *c[2] = { NULL, NULL };
	int res[N_HALF];

	(void)arg;
	while (!__atomic_load_n(&beater_stop, __ATOMIC_ACQUIRE)) {
		int64_t next = cluster_mono_ms() + BEAT_MS;

		for (int side = 0; side < 2; side++) {
			if (c[side] == NULL)
				c[side] = conn(side);
			if (c[side] && distro_heartbeat(c[side], side ? y : x, N_HALF, res) < 0) {
				distro_close(c[side]); /* retried next round, as a client would */
				c[side] = NULL;
			} else if (c[side]) {
				retry_elsewhere(side, side ? y : x, res);
			}
		}
		/* W's client knows only A: what A refuses is not sent anywhere else. */
		if (__atomic_load_n(&beat_w, __ATOMIC_ACQUIRE) && c[0] &&
		    distro_heartbeat(c[0], wa, N_W, res) < 0) {
			distro_close(c[0]);
			c[0] = NULL;
		}
		while (cluster_mono_ms() < next && !__atomic_load_n(&beater_stop, __ATOMIC_ACQUIRE))
			cluster_nap_ms(20);
	}
	for (int side = 0; side < 2; side++)
		if (c[side])
			distro_close(c[side]);
	return NULL;
}

static void make(struct distro_instance *in, char (*ips)[16], uint32_t n, uint32_t base,
                 uint32_t interval, uint32_t timeout, uint32_t del)
{
	for (uint32_t i = 0; i < n; i++) {
		uint32_t h = (base + i + 1) * 2654435761u;

		/* 198.18.0.0/15, a documentation range: one address per instance. */
		snprintf(ips[i], sizeof(ips[i]), "198.%u.%u.%u", 18 + (((base + i) >> 16) & 1),
		         ((base + i) >> 8) & 255, (base + i) & 255);
		distro_instance_init(&in[i]);
		in[i].service = "part";
		in[i].ip = ips[i];
		in[i].port = (uint16_t)(8000 + (h >> 8) % 2000);
		in[i].interval_ms = interval;
		in[i].timeout_ms = timeout;
		in[i].delete_ms = del;
	}
}

static void write_all(int node, const struct distro_instance *in, uint32_t n, bool del,
                      bool fallback)
{
	int res[N_HALF];
	int64_t end = cluster_mono_ms() + 5000;
	uint32_t tries = 0;

	/*
	 * Retryable answers (an owner being declared down, or unreachable from
	 * this node) are retried - with fallback, every other try through the
	 * next node, as a client with a server list would.
	 */
	for (;;) {
		struct distro_client *c = conn(fallback && tries++ % 2 ? (node + 1) % NODES : node);
		bool all = false;

		if (c && (del ? distro_deregister(c, in, n, res)
		              : distro_register(c, in, n, res)) == 0) {
			all = true;
			for (uint32_t i = 0; i < n; i++)
				all = all && (res[i] >= 0 || (del && res[i] == -ERR_NOT_FOUND));
		}
		if (c)
			distro_close(c);
		if (all)
			return;
		check(cluster_mono_ms() < end, "writing %u through node %d kept failing", n, node);
		cluster_nap_ms(100);
	}
}

static void register_all(int node, const struct distro_instance *in, uint32_t n)
{
	write_all(node, in, n, false, false);
}

struct converged_ctx {
	struct listing l[NODES];
};

static bool converged(void *ctx)
{
	struct converged_ctx *cc = ctx;

	for (int i = 0; i < NODES; i++) {
		list_node(i, &cc->l[i]);
		if (!cc->l[i].ok)
			return false;
	}
	for (int i = 1; i < NODES; i++)
		if (cc->l[i].n != cc->l[0].n ||
		    memcmp(cc->l[i].k, cc->l[0].k, cc->l[0].n * sizeof(uint64_t)) != 0)
			return false;
	return count_in(&cc->l[0], x, N_HALF) == N_HALF && count_in(&cc->l[0], y, N_HALF) == N_HALF;
}

/* Does node i see every other member DOWN (it is cut off from both)? */
static bool sees_all_down(int i)
{
	static struct distro_slot_map m;
	struct distro_client *c = conn(i);
	bool ok = false;

	if (c == NULL)
		return false;
	if (distro_slot_map(c, &m) == 0 && m.n == NODES) {
		ok = true;
		for (uint32_t k = 0; k < m.n; k++)
			ok = ok && (m.m[k].id == m.self_id || m.m[k].health == DISTRO_DOWN);
	}
	distro_close(c);
	return ok;
}

static bool a_alone(void *ctx)
{
	(void)ctx;
	return sees_all_down(0);
}

/* How many of in[0..n) node `node` answers "unavailable" to a REGISTER; -1: no answer. */
static int register_refused(int node, const struct distro_instance *in, uint32_t n)
{
	int res[N_HALF], refused = 0;
	struct distro_client *c = conn(node);

	if (c == NULL)
		return -1;
	if (distro_register(c, in, n, res) != 0)
		refused = -1;
	for (uint32_t i = 0; refused >= 0 && i < n; i++)
		refused += res[i] == -ERR_UNAVAILABLE;
	distro_close(c);
	return refused;
}

/* One look at every node: does each list every X and Y? If not, which node and why. */
static bool all_list_x_and_y(int *node, const char **why, uint32_t *nx, uint32_t *ny)
{
	static struct listing l;

	for (int i = 0; i < NODES; i++) {
		list_node(i, &l);
		*node = i;
		*nx = count_in(&l, x, N_HALF);
		*ny = count_in(&l, y, N_HALF);
		*why = l.ok ? "misses beaten instances" : "does not answer LIST";
		if (!l.ok || *nx != N_HALF || *ny != N_HALF)
			return false;
	}
	return true;
}

Test(cluster_partition, the_small_side_refuses_writes_and_clients_that_fail_over_lose_nothing)
{
	static struct converged_ctx cc;
	static struct listing l;
	const char *why = "";
	uint32_t nx = 0, ny = 0;
	pthread_t beater;
	int64_t cut, heal, until, t;
	int refused, bad = 0;
	bool conv = false;

	check(wait_until(all_ready, NULL, 30000), "three READY nodes that see each other UP");
	make(x, xip, N_HALF, 0, BEAT_MS, 1500, 3000);
	make(y, yip, N_HALF, 1000, BEAT_MS, 1500, 3000);
	make(za, zaip, N_NEW, 2000, 0, 0, 0);
	make(zb, zbip, N_NEW, 3000, 0, 0, 0);
	make(wa, waip, N_W, 4000, BEAT_MS, 1500, 3000);
	register_all(0, x, N_HALF);
	register_all(1, y, N_HALF);
	write_all(0, wa, N_W, false, false);
	__atomic_store_n(&beat_w, true, __ATOMIC_RELEASE);
	cr_assert_eq(pthread_create(&beater, NULL, beater_main, NULL), 0);
	check(wait_until(converged, &cc, 10000), "every node lists X and Y before the partition");
	list_node(1, &l);
	check(count_in(&l, wa, N_W) == N_W, "B lists every W before the partition");

	/* Cut A (node 0) off the peer network; clients still reach every node. */
	cr_assert_eq(netns_sh("ip link set vp%s0 down", nc.tag), 0);
	cut = cluster_mono_ms();
	check(wait_until(a_alone, NULL, 5000), "A counts both peers DOWN (--peer-down 900 ms)");

	/* A has no quorum: it refuses writes; a client with a server list goes on to B. */
	refused = register_refused(0, za, N_NEW);
	check(refused == N_NEW,
	      "A, cut off, refuses every registration: %d of %d answered unavailable", refused,
	      N_NEW);
	write_all(0, za, N_NEW, false, true);
	register_all(1, zb, N_NEW);
	while ((t = cluster_mono_ms()) - cut < PART_MS) {
		list_node(0, &l);
		check(l.ok, "A answers LIST while cut off");
		check(count_in(&l, x, N_HALF) == N_HALF, "A keeps every X");
		check(count_in(&l, wa, N_W) == N_W, "A keeps every W: it expires nothing");
		check(count_in(&l, y, N_HALF) == N_HALF,
		      "A, without a quorum, must not expire Y (beating on the other side): %u of "
		      "%u",
		      count_in(&l, y, N_HALF), N_HALF);
		for (int i = 1; i < NODES; i++) {
			list_node(i, &l);
			check(l.ok, "node %d answers LIST", i);
			check(count_in(&l, x, N_HALF) == N_HALF,
			      "node %d lists %u of %u X (beaten by clients that fail over from A) "
			      "%lld ms into the partition",
			      i, count_in(&l, x, N_HALF), N_HALF, (long long)(t - cut));
			check(count_in(&l, y, N_HALF) == N_HALF, "node %d keeps every Y", i);
			check(count_in(&l, za, N_NEW) == N_NEW && count_in(&l, zb, N_NEW) == N_NEW,
			      "node %d lists %u of %u registered through A and B", i,
			      count_in(&l, za, N_NEW) + count_in(&l, zb, N_NEW), 2 * N_NEW);
		}
		cluster_nap_ms(100);
	}
	/* W's beats reached no node that could take them: the majority expired it. */
	for (int i = 1; i < NODES; i++) {
		list_node(i, &l);
		check(l.ok && count_in(&l, wa, N_W) == 0,
		      "node %d lists %u of %u W, whose beats reached only A, past the delete "
		      "timeout",
		      i, count_in(&l, wa, N_W), N_W);
	}

	/*
	 * Heal: at every look, until all three list the same instances and for
	 * HEAL_HOLD_MS more, every node lists every X and Y.
	 */
	cr_assert_eq(netns_sh("ip link set vp%s0 up", nc.tag), 0);
	heal = cluster_mono_ms();
	until = heal + 15000;
	while ((t = cluster_mono_ms()) < until) {
		check(all_list_x_and_y(&bad, &why, &nx, &ny),
		      "%lld ms after the heal node %d %s: %u of %u X, %u of %u Y",
		      (long long)(t - heal), bad, why, nx, N_HALF, ny, N_HALF);
		if (!conv && all_ready(NULL) && converged(&cc)) {
			conv = true;
			until = cluster_mono_ms() + HEAL_HOLD_MS;
		}
		cluster_nap_ms(50);
	}
	check(conv,
	      "after the heal all nodes list the same instances, X and Y among them (lists: %u "
	      "%u %u)",
	      cc.l[0].n, cc.l[1].n, cc.l[2].n);
	check(count_in(&cc.l[0], za, N_NEW) == N_NEW && count_in(&cc.l[0], zb, N_NEW) == N_NEW,
	      "every node lists what was registered during the partition");
	__atomic_store_n(&beater_stop, 1, __ATOMIC_RELEASE);
	pthread_join(beater, NULL);
	__atomic_store_n(&beat_w, false, __ATOMIC_RELEASE);
}

/* Does node i's map give member `owner` any slot? (-1: cannot tell) */
static int owns_slots(int i, uint16_t owner)
{
	static struct distro_slot_map m;
	struct distro_client *c = conn(i);
	int rc = -1;

	if (c && distro_slot_map(c, &m) == 0)
		rc = distro_slot_map_count(&m, owner) > 0;
	if (c)
		distro_close(c);
	return rc;
}

/* A counter of node i's STATS (e.g. "peer_dials"); asserts it is there. */
static unsigned long long stat_of(int i, const char *name)
{
	static char buf[16384];
	struct distro_client *c = conn(i);
	char key[96];
	const char *p = NULL;

	snprintf(key, sizeof(key), "\n%s ", name);
	if (c && distro_stats(c, buf, sizeof(buf)) > 0)
		p = strstr(buf, key);
	if (c)
		distro_close(c);
	check(p != NULL, "no %s in node %d's STATS", name, i);
	return strtoull(p + strlen(key), NULL, 10);
}

/* The member id of node i (ids follow the sorted peer addresses: node order here). */
static uint16_t member_of(int i)
{
	return (uint16_t)(i + 1);
}

/*
 * Issue 11, failures 3 and 4: only the link between node 0 and node 2 is
 * cut (each drops the other's peer address), node 1 still reaches both.
 * That is not a death: no node takes another's slots (node 1 reports both
 * alive), so no node expires the instances whose beats reach their owner
 * through node 1 (X beaten through node 0, Y through node 1, retryable
 * items retried through the next node) - every node lists every X and Y at
 * every look for longer than the delete timeout. D, deregistered during
 * the cut (acknowledged), never shows again on a node that acknowledged
 * or applied the delete. Node 0 dials node 2 at least every 400 ms during
 * the cut (node 1 reports it alive), so after the routes return the link
 * is back within a second, and all three converge to X and Y without D.
 */
Test(cluster_partition, one_cut_link_is_not_a_death_and_a_delete_made_meanwhile_stands)
{
	static struct converged_ctx cc;
	static struct listing l;
	pthread_t beater;
	unsigned long long dials;
	int64_t cut, heal, dials_since;

	check(wait_until(all_ready, NULL, 30000), "three READY nodes that see each other UP");
	make(x, xip, N_HALF, 0, BEAT_MS, 1500, 3000);
	make(y, yip, N_HALF, 1000, BEAT_MS, 1500, 3000);
	make(za, zaip, N_NEW, 2000, 0, 0, 0); /* D: deregistered during the cut */
	register_all(0, x, N_HALF);
	register_all(1, y, N_HALF);
	register_all(1, za, N_NEW);
	cr_assert_eq(pthread_create(&beater, NULL, beater_main, NULL), 0);
	check(wait_until(converged, &cc, 10000), "every node lists X and Y before the cut");

	netns_link_cut(&nc, 0, 2, true);
	cut = cluster_mono_ms();
	cluster_nap_ms(1500); /* past --peer-down: the two count each other DOWN by now */
	dials = stat_of(0, "peer_dials");
	dials_since = cluster_mono_ms();
	write_all(0, za, N_NEW, true, true);
	while (cluster_mono_ms() - cut < 5000) { /* past the delete timeout (3 s) */
		for (int i = 0; i < NODES; i++) {
			list_node(i, &l);
			check(l.ok, "node %d answers LIST", i);
			check(count_in(&l, x, N_HALF) == N_HALF &&
			              count_in(&l, y, N_HALF) == N_HALF,
			      "node %d lists %u of %u X and %u of %u Y %lld ms into the cut", i,
			      count_in(&l, x, N_HALF), N_HALF, count_in(&l, y, N_HALF), N_HALF,
			      (long long)(cluster_mono_ms() - cut));
			if (i == 1)
				check(count_in(&l, za, N_NEW) == 0,
				      "node 1 acknowledged D's deregister and lists %u of them",
				      count_in(&l, za, N_NEW));
		}
		check(owns_slots(0, member_of(2)) == 1 && owns_slots(2, member_of(0)) == 1,
		      "a member the others still see keeps its slots");
		cluster_nap_ms(100);
	}

	/*
	 * Node 1 reports node 2 alive to node 0, so node 0 dials it at least
	 * every 200 ms (docs/distro.md, "Links and the handshake") - not every
	 * 2 s, where its backoff would have grown by now - and the link comes
	 * back within that of the network.
	 */
	dials = stat_of(0, "peer_dials") - dials;
	check(dials * 400 >= (unsigned long long)(cluster_mono_ms() - dials_since),
	      "node 0 dialled node 2 %llu times in %lld ms of the cut", dials,
	      (long long)(cluster_mono_ms() - dials_since));
	netns_link_cut(&nc, 0, 2, false);
	heal = cluster_mono_ms();
	check(wait_until(all_ready, NULL, 15000), "the three see each other again");
	check(cluster_mono_ms() - heal < 1000,
	      "the cut link came back %lld ms after the routes were removed (a member reported "
	      "alive is dialled every 200 ms)",
	      (long long)(cluster_mono_ms() - heal));
	check(wait_until(converged, &cc, 15000),
	      "after the link returns all nodes list the same, X and Y among them (lists: %u %u "
	      "%u)",
	      cc.l[0].n, cc.l[1].n, cc.l[2].n);
	check(count_in(&cc.l[0], za, N_NEW) == 0, "%u of %u deregistered instances came back",
	      count_in(&cc.l[0], za, N_NEW), N_NEW);
	__atomic_store_n(&beater_stop, 1, __ATOMIC_RELEASE);
	pthread_join(beater, NULL);
}
