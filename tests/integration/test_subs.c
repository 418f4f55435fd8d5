/* Subscriptions on a real distrod: the list at once, then a push per change. */
#include "node.h"

static struct node node;
static struct distro_client *writer, *sub;

static void start(void)
{
	static const char *const extra[] = { "--workers",
		                             "2",
		                             "--beat-interval",
		                             "100",
		                             "--beat-timeout",
		                             "500",
		                             "--delete-timeout",
		                             "1000",
		                             "--push-window",
		                             "10",
		                             NULL };

	node_start(&node, extra);
	writer = node_client(&node);
	sub = node_client(&node);
}

static void stop(void)
{
	distro_close(writer);
	distro_close(sub);
	cr_assert_eq(node_stop(&node), 0);
}

TestSuite(subs, .init = start, .fini = stop, .timeout = 60);

struct seen {
	int pushes;
	uint64_t revision;
	uint32_t n;
	uint32_t healthy;
	double weight0;
	bool revision_went_back;
};

static void on_push(void *ctx, uint32_t id, uint64_t revision, const struct distro_entry *e,
                    uint32_t n)
{
	struct seen *s = ctx;

	(void)id;
	if (s->pushes > 0 && revision <= s->revision && revision != 0)
		s->revision_went_back = true;
	s->pushes++;
	s->revision = revision;
	s->n = n;
	s->healthy = 0;
	for (uint32_t i = 0; i < n; i++)
		s->healthy += e[i].healthy;
	s->weight0 = n ? e[0].weight : 0;
}

/* Polls until cond holds or ms pass. */
#define WAIT_FOR(cond, ms)                                                                         \
	({                                                                                         \
		int64_t end_ = now_ms() + (ms);                                                    \
		while (!(cond) && now_ms() < end_)                                                 \
			distro_poll(sub, 20);                                                      \
		(cond);                                                                            \
	})

static struct distro_instance watched_inst(const char *ip)
{
	struct distro_instance i;

	distro_instance_init(&i);
	i.service = "watched";
	i.ip = ip;
	i.port = 80;
	return i;
}

Test(subs, list_at_once_then_every_change)
{
	struct seen s = { 0 };
	struct distro_instance a = watched_inst("10.7.0.1");
	uint32_t id;

	cr_assert_eq(distro_register(writer, &a, 1, NULL), 0);
	cr_assert_eq(distro_subscribe(sub, NULL, NULL, "watched", NULL, on_push, &s, &id), 0);
	cr_assert_eq(s.pushes, 1, "the current list comes with the answer");
	cr_assert_eq(s.n, 1);

	struct distro_instance b = watched_inst("10.7.0.2");

	cr_assert_eq(distro_register(writer, &b, 1, NULL), 0);
	cr_assert(WAIT_FOR(s.n == 2, 3000), "register pushed");
	a.weight = 7;
	cr_assert_eq(distro_register(writer, &a, 1, NULL), 0);
	cr_assert(WAIT_FOR(s.weight0 == 7 || (s.n == 2 && s.pushes >= 3), 3000), "change pushed");
	cr_assert_eq(distro_deregister(writer, &b, 1, NULL), 0);
	cr_assert(WAIT_FOR(s.n == 1, 3000), "deregister pushed");
	/* Expiry: without beats a turns unhealthy (500 ms) then goes (1000 ms). */
	cr_assert(WAIT_FOR(s.n == 1 && s.healthy == 0, 3000), "expiry to unhealthy pushed");
	cr_assert(WAIT_FOR(s.n == 0, 3000), "removal pushed");
	cr_assert_not(s.revision_went_back, "revisions only grow");

	int before = s.pushes;

	cr_assert_eq(distro_unsubscribe(sub, id), 0);
	cr_assert_eq(distro_register(writer, &b, 1, NULL), 0);
	distro_poll(sub, 300);
	cr_assert_eq(s.pushes, before, "no push after unsubscribe");
}

Test(subs, bursts_coalesce_into_few_pushes)
{
	static struct distro_instance b[200];
	static char ips[200][32];
	struct seen s = { 0 };
	uint32_t id;

	cr_assert_eq(distro_subscribe(sub, NULL, NULL, "watched", NULL, on_push, &s, &id), 0);
	for (int i = 0; i < 200; i++) {
		snprintf(ips[i], sizeof(ips[i]), "10.8.0.%d", i + 1);
		b[i] = watched_inst(ips[i]);
		b[i].interval_ms = 1000;
		b[i].timeout_ms = 20000;
		b[i].delete_ms = 20000;
		cr_assert_eq(distro_register(writer, &b[i], 1, NULL), 0);
	}
	cr_assert(WAIT_FOR(s.n == 200, 5000), "the last push holds all 200 (have %u)", s.n);
	cr_assert_lt(s.pushes, 120, "200 changes coalesced into %d pushes", s.pushes);
}

Test(subs, filters_apply_to_pushes)
{
	struct seen s = { 0 };
	const char *east[] = { "east" };
	struct distro_list_opts o = { .clusters = east, .clusters_n = 1 };
	struct distro_instance a = watched_inst("10.9.0.1"), b = watched_inst("10.9.0.2");
	uint32_t id;

	a.cluster = "east";
	b.cluster = "west";
	cr_assert_eq(distro_subscribe(sub, NULL, NULL, "watched", &o, on_push, &s, &id), 0);
	cr_assert_eq(distro_register(writer, &b, 1, NULL), 0);
	cr_assert_eq(distro_register(writer, &a, 1, NULL), 0);
	cr_assert(WAIT_FOR(s.n == 1 && s.pushes >= 2, 3000));
	distro_poll(sub, 200);
	cr_assert_eq(s.n, 1, "the west instance is filtered out of every push");
}

Test(subs, many_subscribers_one_service)
{
	enum { N = 20 };
	struct distro_client *cs[N];
	struct seen s[N];
	struct distro_instance a = watched_inst("10.10.0.1");
	uint32_t id;

	memset(s, 0, sizeof(s));
	for (int i = 0; i < N; i++) {
		cs[i] = node_client(&node);
		cr_assert_eq(
		        distro_subscribe(cs[i], NULL, NULL, "watched", NULL, on_push, &s[i], &id),
		        0);
	}
	cr_assert_eq(distro_register(writer, &a, 1, NULL), 0);
	for (int i = 0; i < N; i++) {
		int64_t end = now_ms() + 3000;

		while (s[i].n != 1 && now_ms() < end)
			distro_poll(cs[i], 20);
		cr_assert_eq(s[i].n, 1, "subscriber %d got the push", i);
	}
	for (int i = 0; i < N; i++)
		distro_close(cs[i]);
	char stats[8192];

	/* Closed connections end their subscriptions (gauge back to the one left). */
	for (int64_t end = now_ms() + 3000; now_ms() < end; nap_ms(20)) {
		cr_assert_gt(distro_stats(writer, stats, sizeof(stats)), 0);
		if (strstr(stats, "\nsubs 0\n"))
			break;
	}
	cr_assert_not_null(strstr(stats, "\nsubs 0\n"), "%s", stats);
}
