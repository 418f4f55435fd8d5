/* A real distrod on loopback, driven through the client library. */
#include "node.h"

static struct node node;
static struct distro_client *cl;

static void start_default(void)
{
	static const char *const extra[] = { "--workers", "2", NULL };

	node_start(&node, extra);
	cl = node_client(&node);
}

static void start_fast_expiry(void)
{
	static const char *const extra[] = { "--workers",
		                             "2",
		                             "--beat-interval",
		                             "100",
		                             "--beat-timeout",
		                             "600",
		                             "--delete-timeout",
		                             "1200",
		                             NULL };

	node_start(&node, extra);
	cl = node_client(&node);
}

static void stop(void)
{
	distro_close(cl);
	cr_assert_eq(node_stop(&node), 0, "distrod exits 0 on SIGTERM");
}

TestSuite(node, .init = start_default, .fini = stop, .timeout = 60);

struct collected {
	int n;
	char ips[2048][48];
	uint16_t ports[2048];
	bool healthy[2048];
	double weight[2048];
	char meta[2048][64];
};

static void collect(void *ctx, const struct distro_entry *e)
{
	struct collected *c = ctx;

	if (c->n >= 2048)
		return;
	snprintf(c->ips[c->n], sizeof(c->ips[0]), "%s", e->ip);
	c->ports[c->n] = e->port;
	c->healthy[c->n] = e->healthy;
	c->weight[c->n] = e->weight;
	c->meta[c->n][0] = '\0';
	if (e->meta_n)
		snprintf(c->meta[c->n], sizeof(c->meta[0]), "%s=%s", e->meta[0].key,
		         e->meta[0].val);
	c->n++;
}

static int count(const char *svc, const struct distro_list_opts *o)
{
	static struct collected c;

	c.n = 0;
	int rc = distro_list(cl, NULL, NULL, svc, o, collect, &c, NULL);

	cr_assert_geq(rc, 0, "list %s: %s", svc, distro_strerror(rc));
	cr_assert_eq(rc, c.n);
	return rc;
}

Test(node, register_list_deregister)
{
	struct distro_kv meta[] = { { "zone", "a" } };
	struct distro_instance a = inst("orders", "10.0.0.1", 8080),
	                       b = inst("orders", "2001:db8::1", 9090);
	static struct collected c;
	int res[2];
	uint64_t rev1, rev2;

	a.meta = meta;
	a.meta_n = 1;
	a.weight = 2.5;
	struct distro_instance both[] = { a, b };

	cr_assert_eq(distro_register(cl, both, 2, res), 0);
	cr_assert_eq(res[0], 2);
	cr_assert_eq(res[1], 2);
	cr_assert_eq(distro_register(cl, both, 2, res), 0);
	cr_assert_eq(res[0], 0, "re-register without change");
	c.n = 0;
	cr_assert_eq(distro_list(cl, NULL, NULL, "orders", NULL, collect, &c, &rev1), 2);
	for (int i = 0; i < 2; i++) {
		if (!strcmp(c.ips[i], "10.0.0.1")) {
			cr_assert_eq(c.ports[i], 8080);
			cr_assert_float_eq(c.weight[i], 2.5, 1e-9);
			cr_assert_str_eq(c.meta[i], "zone=a");
		} else {
			cr_assert_str_eq(c.ips[i], "2001:db8::1");
			cr_assert_eq(c.ports[i], 9090);
		}
	}
	cr_assert_eq(distro_deregister(cl, &a, 1, res), 0);
	cr_assert_eq(res[0], 0);
	cr_assert_eq(distro_deregister(cl, &a, 1, res), 0);
	cr_assert_eq(res[0], -3, "deregistering twice: not found");
	cr_assert_eq(distro_list(cl, NULL, NULL, "orders", NULL, NULL, NULL, &rev2), 1);
	cr_assert_gt(rev2, rev1);
}

Test(node, batches_across_services_and_workers)
{
	static struct distro_instance b[1000];
	static char names[50][16], ips[1000][32];
	int res[1000];

	for (int i = 0; i < 50; i++)
		snprintf(names[i], sizeof(names[i]), "svc-%d", i);
	for (int i = 0; i < 1000; i++) {
		snprintf(ips[i], sizeof(ips[i]), "10.1.%d.%d", i / 250, i % 250 + 1);
		b[i] = inst(names[i % 50], ips[i], (uint16_t)(7000 + i));
	}
	cr_assert_eq(distro_register(cl, b, 1000, res), 0);
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(res[i], 2, "item %d: %d", i, res[i]);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(count(names[i], NULL), 20);
	cr_assert_eq(distro_heartbeat(cl, b, 1000, res), 0);
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(res[i], 0);
	cr_assert_eq(distro_deregister(cl, b, 500, res), 0);
	int total = 0;

	for (int i = 0; i < 50; i++)
		total += count(names[i], NULL);
	cr_assert_eq(total, 500);

	char stats[8192];

	cr_assert_gt(distro_stats(cl, stats, sizeof(stats)), 0);
	cr_assert_not_null(strstr(stats, "store_instances 500\n"), "%s", stats);
	cr_assert_not_null(strstr(stats, "workers 2\n"));
}

Test(node, bad_items_fail_alone)
{
	struct distro_instance b[3] = { inst("ok", "10.0.0.1", 1), inst("ok", "10.0.0.2", 2),
		                        inst("ok", "10.0.0.3", 3) };
	int res[3];

	b[1].weight = 10000.5;
	cr_assert_eq(distro_register(cl, b, 3, res), -7, "the client refuses a bad weight");
	b[1].weight = 1;
	b[1].cluster = "a,b";
	cr_assert_eq(distro_register(cl, b, 3, res), 0);
	cr_assert_eq(res[0], 2);
	cr_assert_eq(res[1], -6, "cluster name with a comma");
	cr_assert_eq(res[2], 2);
	cr_assert_eq(count("ok", NULL), 2);
	b[0].ip = "300.1.1.1";
	cr_assert_eq(distro_register(cl, b, 1, res), -8);
}

Test(node, filters)
{
	struct distro_instance b[6];
	static char ips[6][32];
	const char *east[] = { "east" };
	int res[6];

	for (int i = 0; i < 6; i++) {
		snprintf(ips[i], sizeof(ips[i]), "10.2.0.%d", i + 1);
		b[i] = inst("filt", ips[i], 80);
		b[i].cluster = i < 3 ? "east" : "west";
		b[i].healthy = i % 2 == 0;
		b[i].enabled = i != 4;
	}
	cr_assert_eq(distro_register(cl, b, 6, res), 0);
	cr_assert_eq(count("filt", NULL), 5, "disabled hidden by default");
	cr_assert_eq(count("filt", &(struct distro_list_opts){ .include_disabled = true }), 6);
	cr_assert_eq(count("filt", &(struct distro_list_opts){ .clusters = east, .clusters_n = 1 }),
	             3);
	cr_assert_eq(count("filt", &(struct distro_list_opts){ .healthy_only = true }), 2);
}

Test(node, heartbeat_recreates_unknown_instance)
{
	struct distro_instance a = inst("beat", "10.3.0.1", 81);
	int res;

	cr_assert_eq(distro_heartbeat(cl, &a, 1, &res), 0);
	cr_assert_eq(res, 2, "a beat for an unknown instance re-creates it");
	cr_assert_eq(count("beat", NULL), 1);
}

Test(node, many_connections_across_workers)
{
	enum { N = 64 };
	struct distro_client *cs[N];
	static char ips[N][32];

	for (int i = 0; i < N; i++)
		cs[i] = node_client(&node);
	for (int i = 0; i < N; i++) {
		snprintf(ips[i], sizeof(ips[i]), "10.4.0.%d", i + 1);
		struct distro_instance a = inst("conns", ips[i], 90);
		int res;

		cr_assert_eq(distro_register(cs[i], &a, 1, &res), 0);
		cr_assert_eq(res, 2);
		cr_assert_eq(distro_ping(cs[i]), 0);
	}
	for (int i = 0; i < N; i++)
		distro_close(cs[i]);
	cr_assert_eq(count("conns", NULL), N);
	char stats[8192];

	cr_assert_gt(distro_stats(cl, stats, sizeof(stats)), 0);
	cr_assert_not_null(strstr(stats, "conns_refused 0\n"));
}

static bool wait_count(const char *svc, const struct distro_list_opts *o, int want, int ms)
{
	for (int64_t end = now_ms() + ms; now_ms() < end; nap_ms(20))
		if (count(svc, o) == want)
			return true;
	return count(svc, o) == want;
}

/* Its own suite: Criterion runs suite and test fixtures both. */
Test(node_expiry, heartbeats_keep_alive_absence_expires, .init = start_fast_expiry, .fini = stop,
     .timeout = 60)
{
	struct distro_instance kept = inst("exp", "10.5.0.1", 1), gone = inst("exp", "10.5.0.2", 2);
	struct distro_list_opts healthy = { .healthy_only = true };
	struct distro_instance both[] = { kept, gone };
	int res[2];

	cr_assert_eq(distro_register(cl, both, 2, res), 0);
	cr_assert_eq(distro_keepalive_start(cl, &kept, 1, 100), 0);
	/* The silent one turns unhealthy (600 ms), then goes (1200 ms). */
	cr_assert(wait_count("exp", &healthy, 1, 3000), "one becomes unhealthy");
	cr_assert_eq(count("exp", NULL), 2, "unhealthy is still listed");
	cr_assert(wait_count("exp", NULL, 1, 3000), "the silent one is removed");
	/* The beating one outlives several deadlines. */
	nap_ms(1500);
	cr_assert_eq(count("exp", &healthy), 1);
	distro_keepalive_stop(cl);
	cr_assert(wait_count("exp", NULL, 0, 4000), "without beats it goes too");
}
