/*
 * The worker's replica side against a real store: a takeover and a
 * repair's pruning walk only the worker's own shard, within REPLICA_BUDGET
 * instances per loop, and finish.
 */
#include "../store/helpers.h"

#include "cluster/xmsg.h"
#include "core/mem.h"
#include "server/worker_internal.h"

static struct server srv;
static struct worker w;

static void setup(void)
{
	fixture_default(2, 1, false);
	memset(&srv, 0, sizeof(srv));
	srv.store = s;
	srv.nworkers = 2;
	memset(&w, 0, sizeof(w));
	w.id = 0;
	w.srv = &srv;
	w.shard = store_shard(s, 0);
	w.rec = store_shard_rec(w.shard);
	w.views_cap = 1024;
	w.views = mem_alloc(sizeof(w.views[0]) * w.views_cap);
	cr_assert_not_null(w.views);
}

static void teardown(void)
{
	replica_free(&w);
	mem_free(w.views);
	fixture_close();
}

TestSuite(replica, .init = setup, .fini = teardown);

/* Instance n of service svc<n % services>, at address n / services. */
static struct store_key key_of(uint32_t n, uint32_t services, char *name, size_t len)
{
	struct store_key k = key_n("x", n / services);

	snprintf(name, len, "svc%u", n % services);
	k.svc.service = S(name);
	return k;
}

static uint32_t in_shard0(uint32_t total, uint32_t services)
{
	uint32_t n0 = 0;

	for (uint32_t n = 0; n < total; n++) {
		char name[32];
		struct store_key k = key_of(n, services, name, sizeof(name));

		cr_assert_geq(up_default(s, &k), 0);
		n0 += store_shard_of(s, &k.svc) == 0;
	}
	return n0;
}

Test(replica, a_takeover_walks_only_its_shard_within_the_budget)
{
	const uint32_t total = 20000;
	uint32_t n0 = in_shard0(total, 64), steps = 0;
	uint64_t before = 0;
	bool more = true;

	cr_assert(n0 > REPLICA_BUDGET, "the test needs more than one loop's work");
	cr_assert(n0 < total, "and rows in the other shard");
	memset(w.replica.takeover_due, 0xff, sizeof(w.replica.takeover_due));
	while (more) {
		more = replica_step(&w);
		steps++;
		cr_assert_leq(w.stats.takeover_adopted - before, REPLICA_BUDGET,
		              "one loop adopted %llu",
		              (unsigned long long)(w.stats.takeover_adopted - before));
		before = w.stats.takeover_adopted;
		cr_assert_lt(steps, 100000, "the takeover never ends");
	}
	cr_assert_eq(w.stats.takeover_adopted, n0,
	             "every instance of this shard, once, and no other");
	cr_assert_geq(steps, (n0 + REPLICA_BUDGET - 1) / REPLICA_BUDGET);
}

Test(replica, a_repair_forgets_only_unlisted_rows_of_its_shard)
{
	const uint32_t services = 200;
	uint32_t n0 = in_shard0(services, services), slot;
	struct xrecords *m = xmsg_records_new(XM_REPAIR, 0);
	char name[32];
	struct store_key k0 = key_of(0, services, name, sizeof(name));

	/* Every instance has the same address: one slot, spread over both shards. */
	slot = addr_slot(&k0.addr);
	cr_assert(n0 > 0 && n0 < services);
	cr_assert_not_null(m);
	/* Silent past their healthy timeout: a row beating here would be written again instead. */
	fake_advance(&fc, 16000);
	m->slot = (uint16_t)slot;
	m->before = (uint64_t)(fc.wall_ms + 1000) << 16; /* the owner listed nothing */
	replica_on_message(&w, m);                       /* takes and releases it */
	while (replica_step(&w))
		;
	cr_assert_eq(w.stats.repair_forgotten, n0);
	for (uint32_t n = 0; n < services; n++) {
		struct store_key k = key_of(n, services, name, sizeof(name));
		struct store_view v;
		int rc;

		epoch_enter(&rd);
		rc = store_get(s, &k, &v);
		epoch_exit(&rd);
		if (store_shard_of(s, &k.svc) == 0)
			cr_assert(rc != 0 || (v.flags & STORE_F_DELETED), "svc%u kept", n);
		else
			cr_assert(rc == 0 && !(v.flags & STORE_F_DELETED),
			          "svc%u of the other shard touched", n);
	}
}
