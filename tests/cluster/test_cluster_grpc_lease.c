/*
 * One instance held by two gRPC connections on two nodes of a real
 * 3-node cluster, owned by the third (docs/distro.md, "gRPC connections
 * and their instances"): the connections' registrations and renewals are
 * leases at the owner, carried there in FWD frames as RENEW/HOLD items
 * with each connection's holder id, and a connection's end is a RELEASE.
 *
 * - one connection closes: the instance stays on all three nodes, listed
 *   by every poll (~50 ms apart) for more than twice the renewal interval
 *   plus the lease margin; the other closes: gone on all three promptly;
 * - the node holding one connection is killed (-9, no release sent): the
 *   instance stays while the other connection lives; the dead holder's
 *   lease ages out (2 x --grpc-renew + 2 s), so the other's close then
 *   removes the instance at once instead of leaving it to expiry.
 *
 * The instance's address is in 192.0.2.0/24 (documentation): never probed.
 */
#include "harness.h"

#include "grpc_node.h"

#define RENEW_MS  300
#define MARGIN_MS 2000 /* LEASE_MARGIN_MS (src/store/lease.h) */

static struct cluster cl;

static void start(void)
{
	static const char *const extra[] = { "--grpc-renew", "300", NULL };

	cluster_setup(&cl, &(struct cluster_opts){ .n = 3, .extra = extra });
	cluster_start(&cl);
	cluster_assert(&cl, cluster_wait_converged(&cl, 20000), "an agreed map");
}

static void teardown(void)
{
	cluster_teardown(&cl);
}

TestSuite(cluster_grpc_lease, .init = start, .fini = teardown, .timeout = 240);

/* A port of 192.0.2.100 whose slot node `owner` owns. */
static int port_owned_by(uint32_t owner)
{
	static struct distro_slot_map map;
	uint16_t id = cluster_member_id(&cl, owner);

	cr_assert_eq(cluster_slot_map(&cl, 0, &map), 0);
	for (int port = 7000; port < 9000; port++)
		if (map.owners[distro_slot_of("192.0.2.100", (uint16_t)port)] == id)
			return port;
	cr_assert_fail("no port of 192.0.2.100 in member %u's slots", id);
	return 0;
}

/* Within ms, every node in mask lists want hosts of svc (each through its own q[i]). */
static bool all_list(struct gcli *q, uint32_t mask, const char *svc, int want, int ms)
{
	for (int64_t end = cluster_mono_ms() + ms;; cluster_nap_ms(20)) {
		bool ok = true;

		for (uint32_t i = 0; i < cl.n && ok; i++)
			if (mask & (1u << i))
				ok = gcli_hosts(&q[i], svc) == want;
		if (ok)
			return true;
		if (cluster_mono_ms() >= end)
			return false;
	}
}

/* For ms, every poll of every node in mask lists the instance (one host). */
static void steady(struct gcli *q, uint32_t mask, const char *svc, int ms)
{
	int polls = 0;

	for (int64_t end = cluster_mono_ms() + ms; cluster_mono_ms() < end; polls++) {
		for (uint32_t i = 0; i < cl.n; i++)
			if (mask & (1u << i))
				cluster_assert(&cl, gcli_hosts(&q[i], svc) == 1,
				               "node %u missed the instance at poll %d", i, polls);
		cluster_nap_ms(50);
	}
	cr_assert_gt(polls, ms / 200, "polled often enough");
}

Test(cluster_grpc_lease, two_nodes_hold_the_instance_the_third_owns)
{
	struct gcli a, b, q[3];
	int port = port_owned_by(2);

	for (uint32_t i = 0; i < 3; i++)
		gcli_setup(&q[i], cl.node[i].grpc_port);
	gcli_setup(&a, cl.node[0].grpc_port);
	gcli_setup(&b, cl.node[1].grpc_port);
	gcli_instance(&a, "lease-cl", "192.0.2.100", port, "registerInstance");
	gcli_instance(&b, "lease-cl", "192.0.2.100", port, "registerInstance");
	cluster_assert(&cl, all_list(q, 7, "lease-cl", 1, 3000), "listed on all three");
	cr_assert_geq(cluster_stat(&cl, 2, "store_leases"), 1, "the owner keeps the leases");
	cr_assert_eq(cluster_stat(&cl, 0, "store_leases") + cluster_stat(&cl, 1, "store_leases"), 0,
	             "the holders' nodes keep none: leases live at the owner only");

	gcli_close(&a); /* node 0 releases a's lease at the owner */
	steady(q, 7, "lease-cl", 2 * RENEW_MS + 1200);
	cr_assert_geq(cluster_stat(&cl, 2, "store_releases_kept"), 1,
	              "the owner kept the instance for b");

	gcli_close(&b); /* the last holder */
	cluster_assert(&cl, all_list(q, 7, "lease-cl", 0, 2000), "gone on all three");
	cr_assert_eq(cluster_stat(&cl, 2, "store_leases"), 0, "its lease entry went with it");
	for (uint32_t i = 0; i < 3; i++)
		gcli_close(&q[i]);
}

Test(cluster_grpc_lease, a_holder_node_killed_the_instance_stays_its_lease_ages_out)
{
	struct gcli a, b, q[3];
	int port = port_owned_by(2);

	for (uint32_t i = 0; i < 3; i++)
		gcli_setup(&q[i], cl.node[i].grpc_port);
	gcli_setup(&a, cl.node[0].grpc_port);
	gcli_setup(&b, cl.node[1].grpc_port);
	gcli_instance(&a, "lease-kill", "192.0.2.100", port, "registerInstance");
	gcli_instance(&b, "lease-kill", "192.0.2.100", port, "registerInstance");
	cluster_assert(&cl, all_list(q, 7, "lease-kill", 1, 3000), "listed on all three");

	gcli_close(&q[0]);
	cluster_node_kill(&cl, 0); /* a's node: no release is ever sent for a */
	gcli_close(&a);
	/* b (node 1) still renews at node 2: the instance stays, past a's lease. */
	steady(q, 6, "lease-kill", 2 * RENEW_MS + MARGIN_MS + 800);
	/*
	 * a's lease has run out by now: b's close is the last holder's, and
	 * the owner deletes at once (not left to expire after 30 s).
	 */
	gcli_close(&b);
	cluster_assert(&cl, all_list(q, 6, "lease-kill", 0, 2000),
	               "the dead holder aged out: b's release removed it");
	gcli_close(&q[1]);
	gcli_close(&q[2]);
}

/* Opens an InstanceRequest of type on c without waiting for its answer (pipelined). */
static struct gstream *instance_open(struct gcli *c, const char *svc, int port, const char *type)
{
	char j[1024];
	uint8_t *m;
	size_t n;
	struct gstream *st;

	snprintf(j, sizeof(j),
	         "{\"headers\":{},\"requestId\":\"p-%s-%d\",\"namespace\":\"\",\"serviceName\":"
	         "\"%s\",\"groupName\":\"DEFAULT_GROUP\",\"module\":\"naming\",\"type\":\"%s\","
	         "\"instance\":{\"ip\":\"192.0.2.100\",\"port\":%d,\"weight\":1.0,\"healthy\":true,"
	         "\"enabled\":true,\"ephemeral\":true,\"clusterName\":\"c1\",\"metadata\":{}}}",
	         type, port, svc, type, port);
	n = gmsg_encode("InstanceRequest", j, strlen(j), &m);
	st = gcli_open(c, "/Request/request", m, n, true);
	free(m);
	return st;
}

/*
 * review: a register pipelined with the deregister of the same instance
 * on one connection (grpc_naming.c unpublish: "this deregister, sent after
 * that register on the same path, removes it") must leave nothing, also
 * when a third node owns the instance. Both become FWD items for the same
 * owner; forward.c groups them per op and forward_flush_all sends the ops
 * in fwd_ops order, RELEASE (index 4) before HOLD (index 5): the owner
 * deletes first, then re-creates the instance under the connection's
 * lease, and nobody renews or releases it (it lingers until expiry).
 */
Test(cluster_grpc_lease, pipelined_register_then_deregister_leaves_nothing)
{
	struct gcli a, q;
	int port = port_owned_by(2);
	char svc[64];
	int left = 0;

	gcli_setup(&q, cl.node[2].grpc_port);
	gcli_setup(&a, cl.node[0].grpc_port);
	for (int round = 0; round < 10; round++) {
		struct gstream *reg, *dereg;

		snprintf(svc, sizeof(svc), "lease-pipe-%d", round);
		reg = instance_open(&a, svc, port, "registerInstance");
		dereg = instance_open(&a, svc, port, "deregisterInstance");
		cr_assert(gcli_wait_closed(&a, reg, 5000), "the register answered");
		cr_assert(gcli_wait_closed(&a, dereg, 5000), "the deregister answered");
		reg->reaped = dereg->reaped = true;
	}
	/* Both answered: the owner lists none of them, at every poll for 1.5 s. */
	for (int64_t end = cluster_mono_ms() + 1500; cluster_mono_ms() < end; cluster_nap_ms(100))
		for (int round = 0; round < 10; round++) {
			snprintf(svc, sizeof(svc), "lease-pipe-%d", round);
			if (gcli_hosts(&q, svc) != 0) {
				left++;
				cr_log_error("%s still listed at the owner after its deregister",
				             svc);
			}
		}
	cr_assert_eq(left, 0, "instances deregistered by the connection stayed at their owner");
	gcli_close(&a);
	gcli_close(&q);
}

/*
 * review: the other order - a deregister pipelined with a register of the
 * same instance on one connection must leave it registered (the client
 * got success for the register last). forward_flush_all sends HOLD
 * (index 5) after RELEASE (index 4) here, so this one passes on main, but
 * with REGISTER/DEREGISTER (indexes 0 and 1) and any reordering of
 * fwd_ops it fails: the owner runs the ops of one loop in fwd_ops order,
 * not in the order the client sent them. It guards the fix (per-owner
 * order kept), not a failure on main.
 */
Test(cluster_grpc_lease, pipelined_deregister_then_register_stays)
{
	struct gcli a, q;
	int port = port_owned_by(2);
	char svc[64];
	int missing = 0;

	gcli_setup(&q, cl.node[2].grpc_port);
	gcli_setup(&a, cl.node[0].grpc_port);
	for (int round = 0; round < 10; round++) {
		struct gstream *dereg, *reg;

		snprintf(svc, sizeof(svc), "lease-pipe2-%d", round);
		gcli_instance(&a, svc, "192.0.2.100", port, "registerInstance");
		dereg = instance_open(&a, svc, port, "deregisterInstance");
		reg = instance_open(&a, svc, port, "registerInstance");
		cr_assert(gcli_wait_closed(&a, dereg, 5000), "the deregister answered");
		cr_assert(gcli_wait_closed(&a, reg, 5000), "the register answered");
		dereg->reaped = reg->reaped = true;
	}
	for (int64_t end = cluster_mono_ms() + 1500; cluster_mono_ms() < end; cluster_nap_ms(100))
		for (int round = 0; round < 10; round++) {
			snprintf(svc, sizeof(svc), "lease-pipe2-%d", round);
			if (gcli_hosts(&q, svc) != 1) {
				missing++;
				cr_log_error("%s missing at the owner after its last register",
				             svc);
			}
		}
	cr_assert_eq(missing, 0, "instances registered last were missing at their owner");
	gcli_close(&a);
	gcli_close(&q);
}
