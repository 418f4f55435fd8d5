/*
 * A healthy 3-node cluster of real distrod processes (harness.h):
 *
 * - once every node is READY, all three maps agree slot for slot and every
 *   slot is owned by a member that is UP and READY;
 * - 300 instances with varied addresses registered through one node (so
 *   about two thirds are forwarded to their owner) are all answered OK and
 *   listed by every node within a bounded wait; 100 of them deregistered
 *   through another node disappear everywhere, within a bounded wait,
 *   while the other 200 stay;
 * - /cluster, /health and /metrics (promtool) show the cluster;
 * - a member alone stays not READY (503) until --startup-wait passes;
 * - a standalone node answers SLOT_MAP without members.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_INST      300
#define N_GONE      100
#define CONVERGE_MS 20000 /* start to READY and one agreed map, under ASan */
#define SPREAD_MS   3000  /* a write acknowledged by one node is listed by all */

static struct cluster cl;
static struct distro_instance inst[N_INST];
static char ips[N_INST][16];
static struct distro_slot_map map; /* 40 KiB: not on the stack */

static void start3(void)
{
	cluster_setup(&cl, &(struct cluster_opts){ .n = 3 });
	cluster_start(&cl);
	cluster_instances(inst, ips, N_INST, "basic");
}

static void teardown(void)
{
	cluster_teardown(&cl);
}

/* Every node's map agreed and owned by UP + READY members, or the test fails with why. */
static void assert_converged(int timeout_ms)
{
	char why[256];

	if (cluster_wait_converged(&cl, timeout_ms))
		return;
	cluster_converged(&cl, why, sizeof(why));
	cluster_assert(&cl, false, "no agreed slot map within %d ms: %s", timeout_ms, why);
}

Test(cluster_basic, ready_nodes_agree_on_every_slot_and_owners_are_up_and_ready, .init = start3,
     .fini = teardown, .timeout = 180)
{
	uint32_t owned = 0;

	for (uint32_t i = 0; i < cl.n; i++)
		cluster_assert(&cl, cluster_wait_ready(&cl, i, CONVERGE_MS),
		               "node %u not READY within %d ms", i, CONVERGE_MS);
	assert_converged(CONVERGE_MS);
	/* Spelled out once more on one map: owners are listed, UP and READY; all share. */
	cr_assert_eq(cluster_slot_map(&cl, 0, &map), 0);
	for (uint32_t s = 0; s < DISTRO_SLOTS; s++) {
		const struct distro_member *m = distro_slot_map_member(&map, map.owners[s]);

		cr_assert_not_null(m, "slot %u owned by %u, not a member", s, map.owners[s]);
		cr_assert(m->health == DISTRO_UP && m->ready, "slot %u: owner %u not UP+READY", s,
		          m->id);
	}
	for (uint32_t i = 0; i < cl.n; i++) {
		uint32_t k = distro_slot_map_count(&map, cluster_member_id(&cl, i));

		cr_assert_gt(k, DISTRO_SLOTS / 4, "node %u owns only %u slots", i, k);
		owned += k;
		cr_assert_not_null(
		        strstr(distro_slot_map_member(&map, cluster_member_id(&cl, i))->client_addr,
		               cl.node[i].addr + strlen("127.0.0.1")),
		        "node %u's client address is learned", i);
	}
	cr_assert_eq(owned, DISTRO_SLOTS);
}

static void assert_listed(uint32_t node, const struct distro_instance *in, uint32_t n, int want,
                          int timeout_ms, const char *what)
{
	int last;

	cluster_assert(&cl, cluster_wait_listed(&cl, node, in, n, want, timeout_ms, &last),
	               "node %u lists %d of %u %s, not %d, after %d ms", node, last, n, what, want,
	               timeout_ms);
}

Test(cluster_basic, writes_through_one_node_are_listed_by_all_and_deletes_reach_all, .init = start3,
     .fini = teardown, .timeout = 180)
{
	static int res[N_INST];
	uint16_t self0 = cluster_member_id(&cl, 0);
	uint32_t forwarded = 0;

	assert_converged(CONVERGE_MS);
	cr_assert_eq(cluster_slot_map(&cl, 0, &map), 0);
	for (uint32_t k = 0; k < N_INST; k++)
		forwarded += map.owners[distro_slot_of(inst[k].ip, inst[k].port)] != self0;
	cr_assert_gt(forwarded, N_INST / 3, "the test needs writes owned elsewhere (%u)",
	             forwarded);

	/* Registered through node 0: every item answered OK. */
	cr_assert_eq(cluster_register(&cl, 0, inst, N_INST, res), 0);
	for (uint32_t k = 0; k < N_INST; k++)
		cluster_assert(&cl, res[k] >= 0, "register %s:%u through node 0: %s", inst[k].ip,
		               inst[k].port, distro_strerror(res[k]));
	for (uint32_t i = 0; i < cl.n; i++)
		assert_listed(i, inst, N_INST, N_INST, SPREAD_MS, "registered");

	/* Deregistered through node 2: gone everywhere; the rest stays. */
	cr_assert_eq(cluster_deregister(&cl, 2, inst, N_GONE, res), 0);
	for (uint32_t k = 0; k < N_GONE; k++)
		cluster_assert(&cl, res[k] >= 0, "deregister %s:%u through node 2: %s", inst[k].ip,
		               inst[k].port, distro_strerror(res[k]));
	for (uint32_t i = 0; i < cl.n; i++) {
		assert_listed(i, inst, N_GONE, 0, SPREAD_MS, "deregistered");
		assert_listed(i, inst + N_GONE, N_INST - N_GONE, N_INST - N_GONE, SPREAD_MS,
		              "kept");
		cr_assert_eq(cluster_list_count(&cl, i, "basic"), N_INST - N_GONE);
	}
}

static const char *promtool_path(void)
{
	static const char *const paths[] = { "/usr/bin/promtool", "/usr/local/bin/promtool" };

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

/* promtool check metrics on text: "" when it accepts, else what it said. */
static void promtool_check(const char *text, char *out, size_t cap)
{
	char path[] = "/tmp/distro-cluster-metrics-XXXXXX", cmd[512];
	int fd = mkstemp(path), status;
	size_t got;
	FILE *p;

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	snprintf(cmd, sizeof(cmd), "%s check metrics < %s 2>&1", promtool_path(), path);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	got = fread(out, 1, cap - 1, p);
	out[got] = 0;
	status = pclose(p);
	unlink(path);
	if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0) && got == 0)
		snprintf(out, cap, "promtool exit %d", WEXITSTATUS(status));
}

Test(cluster_basic, status_pages_show_the_cluster_and_metrics_pass_promtool, .init = start3,
     .fini = teardown, .timeout = 180)
{
	char *body, want[128], said[4096];

	assert_converged(CONVERGE_MS);
	for (uint32_t i = 0; i < cl.n; i++) {
		cr_assert_eq(cluster_http_get(&cl, i, "/health", &body), 200);
		cr_assert_str_eq(body, "{\"status\":\"UP\"}");
		free(body);

		cr_assert_eq(cluster_http_get(&cl, i, "/cluster", &body), 200);
		snprintf(want, sizeof(want), "{\"clustered\":true,\"self\":%u,\"ready\":true,",
		         cluster_member_id(&cl, i));
		cr_assert(strncmp(body, want, strlen(want)) == 0, "%s", body);
		for (uint32_t k = 0; k < cl.n; k++) {
			snprintf(want, sizeof(want), "\"addr\":\"%s\"", cl.node[k].peer_addr);
			cr_assert_not_null(strstr(body, want), "%s", body);
		}
		cr_assert_null(strstr(body, "\"health\":\"DOWN\""), "%s", body);
		cr_assert_not_null(strstr(body, "\"stats\":{\"links_up\":"), "%s", body);
		free(body);

		cr_assert_eq(cluster_http_get(&cl, i, "/metrics", &body), 200);
		snprintf(want, sizeof(want), "\ndistrod_peer_member_health{member=\"%s\"} 2\n",
		         cl.node[(i + 1) % cl.n].peer_addr);
		cr_assert_not_null(strstr(body, want), "%s", want);
		cr_assert_not_null(strstr(body, "\ndistrod_peer_ready 1\n"));
		cr_assert_not_null(strstr(body, "\ndistrod_peer_links_up_total "));
		if (promtool_path()) {
			promtool_check(body, said, sizeof(said));
			cr_assert_str_eq(said, "", "promtool check metrics on node %u: %s", i,
			                 said);
		}
		free(body);
	}
	if (promtool_path() == NULL)
		cr_skip_test("promtool not installed (Debian package prometheus): /metrics of a "
		             "cluster member not validated");
}

/* A member whose peers never come: not READY (503) until --startup-wait passes. */
static void start_alone(void)
{
	static const char *const wait[] = { "--startup-wait", "2500", NULL };

	cluster_setup(&cl, &(struct cluster_opts){ .n = 3, .extra = wait });
	cluster_node_start(&cl, 0);
}

struct health_ctx {
	int status;
};

static bool health_ok(void *arg)
{
	struct health_ctx *h = arg;
	char *body = NULL;

	h->status = cluster_http_get(&cl, 0, "/health", &body);
	free(body);
	return h->status == 200;
}

Test(cluster_basic, health_is_503_until_a_lone_member_stops_waiting_for_peers, .init = start_alone,
     .fini = teardown, .timeout = 120)
{
	struct health_ctx h = { 0 };
	char *body;

	cr_assert_eq(cluster_http_get(&cl, 0, "/health", &body), 503,
	             "a member that started moments ago waits for its peers");
	cr_assert_str_eq(body, "{\"status\":\"not ready\"}");
	free(body);
	cr_assert_eq(cluster_slot_map(&cl, 0, &map), 0);
	cr_assert_not(map.ready);
	cr_assert_eq(distro_slot_map_count(&map, 0), DISTRO_SLOTS, "not READY: owns nothing");
	cluster_assert(&cl, wait_until(health_ok, &h, 10000),
	               "still %d 10 s after --startup-wait 2500", h.status);
	cluster_assert(&cl, cluster_wait_ready(&cl, 0, 2000), "/health 200 but not READY");
	cr_assert_eq(cluster_slot_map(&cl, 0, &map), 0);
	/*
	 * One of three is no quorum: READY, it still owns no slot (it takes no
	 * writes and expires nothing; docs/distro.md, "Health and READY").
	 */
	cr_assert_eq(distro_slot_map_count(&map, 0), DISTRO_SLOTS,
	             "alone without a quorum, READY but owning no slot");
}

static void start_standalone(void)
{
	cluster_setup(&cl, &(struct cluster_opts){ .n = 1, .standalone = true });
	cluster_start(&cl);
}

Test(cluster_basic, standalone_node_answers_slot_map_without_members, .init = start_standalone,
     .fini = teardown, .timeout = 60)
{
	char *body;

	cr_assert_eq(cluster_slot_map(&cl, 0, &map), 0);
	cr_assert_eq(map.n, 0);
	cr_assert_eq(distro_slot_map_count(&map, 0), DISTRO_SLOTS);
	cr_assert_eq(cluster_http_get(&cl, 0, "/cluster", &body), 200);
	cr_assert_str_eq(body, "{\"clustered\":false}");
	free(body);
	cr_assert_eq(cluster_http_get(&cl, 0, "/health", &body), 200);
	free(body);
}
