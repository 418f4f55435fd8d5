/*
 * test_grpc_lease.c - one instance held by several gRPC connections of a
 * real distrod (docs/distro.md, "gRPC connections and their instances"):
 * each connection's registration is a lease on the shared record, so the
 * instance stays while any holder lives - listed without a gap and with
 * no removal pushed - and goes at once with the last one. An explicit
 * deregister releases only that connection's lease, as Nacos removes only
 * that client's publication.
 *
 * Every "stays" is watched continuously: a ServiceQuery every ~50 ms over
 * more than twice the renewal interval, none of which may miss the
 * instance, and every push read on the way must still list it.
 *
 * Instance addresses are documentation ranges (192.0.2.0/24); nothing
 * probes them.
 */
#include "grpc_node.h"

static struct node nd;

static void start_renew(const char *renew_ms)
{
	const char *extra[] = { "--grpc-renew", renew_ms, "--grpc-push-timeout", "300", NULL };

	node_start(&nd, extra);
	cr_assert_gt(nd.grpc_port, 0, "the gRPC port is written to --grpc-port-file");
}

static void start(void)
{
	start_renew("300");
}

static void stop(void)
{
	cr_assert_eq(node_stop(&nd), 0, "distrod exits 0 on SIGTERM");
}

TestSuite(grpc_lease, .init = start, .fini = stop, .timeout = 120);

/*
 * Watches svc for ms: every poll (~50 ms apart) on q must list want hosts,
 * and every push sub receives meanwhile (when sub is not NULL) too.
 * Returns the number of polls.
 */
static int watch_steady(struct gcli *q, struct gcli *sub, struct gstream *bi, const char *svc,
                        int want, int ms)
{
	int polls = 0;

	for (int64_t end = now_ms() + ms; now_ms() < end; polls++) {
		struct gmsg m;

		cr_assert_eq(gcli_hosts(q, svc), want,
		             "poll %d (%d ms in): the instance was missed", polls,
		             ms - (int)(end - now_ms()));
		while (sub && gcli_bi_next(sub, bi, &m, 1)) {
			if (strcmp(m.type, "NotifySubscriberRequest") == 0)
				cr_assert_eq(gcli_push_hosts(sub, bi, &m, true), want,
				             "a push that lost the instance: %s", m.json);
			gmsg_free(&m);
		}
		nap_ms(30);
	}
	return polls;
}

/* Within ms, a push to sub lists want hosts of svc. */
static bool push_with(struct gcli *sub, struct gstream *bi, int want, int ms)
{
	for (int64_t end = now_ms() + ms; now_ms() < end;) {
		struct gmsg m;
		int n = -1;

		if (!gcli_bi_next(sub, bi, &m, 50))
			continue;
		if (strcmp(m.type, "NotifySubscriberRequest") == 0)
			n = gcli_push_hosts(sub, bi, &m, true);
		gmsg_free(&m);
		if (n == want)
			return true;
	}
	return false;
}

static bool wait_hosts(struct gcli *q, const char *svc, int want, int ms)
{
	for (int64_t end = now_ms() + ms; now_ms() < end; nap_ms(20))
		if (gcli_hosts(q, svc) == want)
			return true;
	return gcli_hosts(q, svc) == want;
}

Test(grpc_lease, two_connections_one_closes_the_instance_stays_the_last_takes_it)
{
	struct gcli a1, a2, q, sub;
	struct gstream *bi;

	gcli_setup(&a1, nd.grpc_port);
	gcli_setup(&a2, nd.grpc_port);
	gcli_setup(&q, nd.grpc_port);
	bi = gcli_setup(&sub, nd.grpc_port);
	cr_assert_eq(gcli_subscribe(&sub, bi, "lease-two"), 0);
	gcli_instance(&a1, "lease-two", "192.0.2.90", 7001, "registerInstance");
	gcli_instance(&a2, "lease-two", "192.0.2.90", 7001, "registerInstance");
	cr_assert(push_with(&sub, bi, 1, 3000), "the register is pushed");
	cr_assert_eq(gcli_hosts(&q, "lease-two"), 1, "one record for both connections");
	/* a1 goes (its release at close): a2 still holds the instance. */
	gcli_close(&a1);
	cr_assert_gt(watch_steady(&q, &sub, bi, "lease-two", 1, 2 * 300 + 1200), 10);
	/* a2 goes: nobody holds it, gone at once (no renewal, no expiry to wait for). */
	gcli_close(&a2);
	cr_assert(wait_hosts(&q, "lease-two", 0, 1000), "the last holder's close removes it");
	cr_assert(push_with(&sub, bi, 0, 2000), "and the removal is pushed");
	gcli_close(&q);
	gcli_close(&sub);
}

Test(grpc_lease, an_explicit_deregister_releases_only_that_connections_lease)
{
	struct gcli a1, a2, q;

	gcli_setup(&a1, nd.grpc_port);
	gcli_setup(&a2, nd.grpc_port);
	gcli_setup(&q, nd.grpc_port);
	gcli_instance(&a1, "lease-dereg", "192.0.2.91", 7002, "registerInstance");
	gcli_instance(&a2, "lease-dereg", "192.0.2.91", 7002, "registerInstance");
	/* As Nacos: a1's deregister removes a1's publication; a2's keeps the instance. */
	gcli_instance(&a1, "lease-dereg", "192.0.2.91", 7002, "deregisterInstance");
	watch_steady(&q, NULL, NULL, "lease-dereg", 1, 2 * 300 + 1200);
	/* a1 closing now releases nothing more. */
	gcli_close(&a1);
	watch_steady(&q, NULL, NULL, "lease-dereg", 1, 400);
	/* a2's deregister: the last holder, so the instance goes, and a2 stays connected. */
	gcli_instance(&a2, "lease-dereg", "192.0.2.91", 7002, "deregisterInstance");
	cr_assert_eq(gcli_hosts(&q, "lease-dereg"), 0, "deleted when answered");
	/* and a2's renewals do not bring it back (it left a2's set) */
	watch_steady(&q, NULL, NULL, "lease-dereg", 0, 2 * 300 + 200);
	gcli_close(&a2);
	gcli_close(&q);
}

Test(grpc_lease, three_holders_the_instance_goes_with_the_last)
{
	struct gcli a[3], q;

	gcli_setup(&q, nd.grpc_port);
	for (int i = 0; i < 3; i++) {
		gcli_setup(&a[i], nd.grpc_port);
		gcli_instance(&a[i], "lease-three", "192.0.2.92", 7003, "registerInstance");
	}
	gcli_close(&a[1]);
	watch_steady(&q, NULL, NULL, "lease-three", 1, 500);
	gcli_close(&a[0]);
	watch_steady(&q, NULL, NULL, "lease-three", 1, 2 * 300 + 400);
	gcli_close(&a[2]);
	cr_assert(wait_hosts(&q, "lease-three", 0, 1000));
	gcli_close(&q);
}

/*
 * With the default --grpc-renew (5 s) nothing renews during the test: the
 * registration itself took each connection's lease, so a close right
 * after two registrations keeps the instance.
 */
static void start_slow_renew(void)
{
	start_renew("5000");
}

TestSuite(grpc_lease_slow, .init = start_slow_renew, .fini = stop, .timeout = 120);

Test(grpc_lease_slow, the_registration_takes_the_lease_at_once)
{
	struct gcli a1, a2, q;

	gcli_setup(&a1, nd.grpc_port);
	gcli_setup(&a2, nd.grpc_port);
	gcli_setup(&q, nd.grpc_port);
	gcli_instance(&a1, "lease-now", "192.0.2.93", 7004, "registerInstance");
	gcli_instance(&a2, "lease-now", "192.0.2.93", 7004, "registerInstance");
	gcli_close(&a1);
	watch_steady(&q, NULL, NULL, "lease-now", 1, 1500);
	gcli_close(&a2);
	cr_assert(wait_hosts(&q, "lease-now", 0, 1000));
	gcli_close(&q);
}
