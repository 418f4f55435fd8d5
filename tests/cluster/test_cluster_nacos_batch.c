/*
 * A Nacos metadata batch in a 3-node cluster (docs/nacos.md,
 * "PUT/DELETE /instance/metadata/batch"): one request names instances
 * whose slots other members own, so its one write frame is split by the
 * answering node - items of its own slots run on its shards, the others
 * are forwarded to their owners - and answered once, when every item is
 * back. Checked: the answer lists every instance, each owner ran its
 * items (forwarded items counted), and every node lists the new metadata
 * within a bounded wait, for PUT and DELETE, by consistencyType and by
 * instances list. Documentation addresses only (198.18.0.0/15).
 */
#include "harness.h"

#include "core/addr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_INST      24
#define CONVERGE_MS 20000 /* start to READY and one agreed map, under ASan */
#define SPREAD_MS   5000  /* a write acknowledged by one node is listed by all */
#define NS          "/nacos/v1/ns"

static struct cluster cl;
static struct distro_slot_map map; /* 40 KiB: not on the stack */
static char ips[N_INST][32];

static void start3(void)
{
	cluster_setup(&cl, &(struct cluster_opts){ .n = 3 });
	cluster_start(&cl);
	for (uint32_t i = 0; i < cl.n; i++)
		cluster_assert(&cl, cluster_wait_ready(&cl, i, CONVERGE_MS),
		               "node %u not READY within %d ms", i, CONVERGE_MS);
	cluster_assert(&cl, cluster_wait_converged(&cl, CONVERGE_MS), "no agreed slot map");
	for (int i = 0; i < N_INST; i++)
		snprintf(ips[i], sizeof(ips[i]), "198.18.%d.%d", i * 7 % 256, 1 + i * 13 % 250);
}

static void teardown(void)
{
	cluster_teardown(&cl);
}

/* Occurrences of needle in s. */
static int count_of(const char *s, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

struct listed_ctx {
	uint32_t node;
	const char *needle;
	int want;
	int last;
};

/* Node ctx->node lists the service with needle exactly want times. */
static bool listed_times(void *arg)
{
	struct listed_ctx *x = arg;
	char *body = NULL;
	int st = cluster_nacos(&cl, x->node, "GET", NS "/instance/list?serviceName=mb", &body);

	x->last = st == 200 ? count_of(body, x->needle) : -st;
	free(body);
	return x->last == x->want;
}

static void wait_everywhere(const char *needle, int want)
{
	for (uint32_t i = 0; i < cl.n; i++) {
		struct listed_ctx x = { .node = i, .needle = needle, .want = want };

		cluster_assert(&cl, wait_until(listed_times, &x, SPREAD_MS),
		               "node %u lists %s %d times, want %d, within %d ms", i, needle,
		               x.last, want, SPREAD_MS);
	}
}

/* The members that own the instances' slots, as a bit set of member ids. */
static uint32_t owners(void)
{
	uint32_t set = 0;

	cr_assert_eq(cluster_slot_map(&cl, 0, &map), 0);
	for (int i = 0; i < N_INST; i++) {
		struct addr a;

		cr_assert_eq(addr_parse(ips[i], 80, &a), 0);
		set |= 1u << map.owners[addr_slot(&a)];
	}
	return set;
}

Test(cluster_nacos_batch, a_batch_over_instances_of_every_owner_is_applied_everywhere,
     .init = start3, .fini = teardown, .timeout = 240)
{
	unsigned long long fwd_before, fwd_after;
	char target[8192], *body = NULL, list[4096];
	size_t off = 0;
	int st;

	cr_assert_eq(__builtin_popcount(owners()), 3,
	             "the instances' slots span all three members");
	for (int i = 0; i < N_INST; i++) {
		snprintf(target, sizeof(target),
		         NS "/instance?serviceName=mb&ip=%s&port=80&metadata=%%7B%%22k%%22%%3A%%"
		            "22v%%22%%7D",
		         ips[i]);
		st = cluster_nacos(&cl, 0, "POST", target, &body);
		cluster_assert(&cl, st == 200, "register %s: %d %s", ips[i], st, body);
		free(body);
	}
	/* The answering node reads each instance from its own replica: wait for them. */
	wait_everywhere("\"k\":\"v\"", N_INST);

	/* PUT by consistencyType through node 1. */
	fwd_before = cluster_stat(&cl, 1, "peer_fwd_items");
	st = cluster_nacos(&cl, 1, "PUT",
	                   NS "/instance/metadata/batch?serviceName=mb&consistencyType=ephemeral"
	                      "&metadata=%7B%22batch%22%3A%22yes%22%7D",
	                   &body);
	cluster_assert(&cl, st == 200, "batch: %d %s", st, body);
	cr_assert_eq(count_of(body, ":80:unknown:DEFAULT:ephemeral\""), N_INST, "%s", body);
	cr_assert_eq(strncmp(body, "{\"updated\":[", 12), 0, "%s", body);
	free(body);
	fwd_after = cluster_stat(&cl, 1, "peer_fwd_items");
	/* The other members' items went to their owners, each once, in this one request. */
	cr_assert_gt(fwd_after, fwd_before, "no item was forwarded");
	cr_assert_lt(fwd_after - fwd_before, N_INST, "node 1's own items were forwarded too");
	wait_everywhere("\"batch\":\"yes\"", N_INST);
	wait_everywhere("\"k\":\"v\"", N_INST); /* merged, not replaced */

	/* DELETE by instances list through node 2: half of them lose k. */
	off += (size_t)snprintf(list, sizeof(list), "%%5B");
	for (int i = 0; i < N_INST; i += 2)
		off += (size_t)snprintf(list + off, sizeof(list) - off,
		                        "%s%%7B%%22ip%%22%%3A%%22%s%%22%%2C%%22port%%22%%3A80%%7D",
		                        i ? "%2C" : "", ips[i]);
	snprintf(list + off, sizeof(list) - off, "%%5D");
	snprintf(target, sizeof(target),
	         NS "/instance/metadata/batch?serviceName=mb&metadata=%%7B%%22k%%22%%3A%%22%%22%%7D"
	            "&instances=%s",
	         list);
	st = cluster_nacos(&cl, 2, "DELETE", target, &body);
	cluster_assert(&cl, st == 200, "batch delete: %d %s", st, body);
	cr_assert_eq(count_of(body, ":unknown:"), N_INST / 2, "%s", body);
	free(body);
	wait_everywhere("\"k\":\"v\"", N_INST / 2);
	wait_everywhere("\"batch\":\"yes\"", N_INST);
}
