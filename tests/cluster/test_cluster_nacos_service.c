/*
 * Nacos service-level state in a 3-node cluster of real distrod processes
 * (issue 10: "service-level state (protectThreshold, service metadata)
 * replicates and converges too"; docs/nacos.md, "Service-level state"):
 *
 * - services created by POST /service at node A (several, so their service
 *   records fall in slots of different owners and most writes are
 *   forwarded) are answered by GET /service at B and C, with their
 *   protectThreshold and metadata, within a bounded wait;
 * - a PUT of protectThreshold at B converges on every node, and the
 *   protection it turns on shows in C's /instance/list;
 * - a DELETE /service at C is gone from every node within a bounded wait.
 *
 * Requests go through the harness's cluster_nacos. Instances use
 * documentation addresses only (192.0.2.0/24).
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONVERGE_MS 20000 /* start to READY and one agreed map, under ASan */
#define SPREAD_MS   5000  /* a write acknowledged by one node is seen by all */
#define N_SVC       6
#define NS          "/nacos/v1/ns"

static struct cluster cl;

static void start3(void)
{
	char why[256];

	cluster_setup(&cl, &(struct cluster_opts){ .n = 3 });
	cluster_start(&cl);
	if (!cluster_wait_converged(&cl, CONVERGE_MS)) {
		cluster_converged(&cl, why, sizeof(why));
		cluster_assert(&cl, false, "no agreed slot map within %d ms: %s", CONVERGE_MS, why);
	}
}

static void teardown(void)
{
	cluster_teardown(&cl);
}

TestSuite(cluster_nacos_service, .init = start3, .fini = teardown, .timeout = 240);

/* method target on node i's Nacos port: the status (0: no answer), the body in body[0, cap). */
static int nacos(uint32_t i, const char *method, const char *target, char *body, size_t cap)
{
	char *b = NULL;
	int status = cluster_nacos(&cl, i, method, target, &b);

	snprintf(body, cap, "%s", b ? b : "");
	free(b);
	return status;
}

static void expect(uint32_t i, const char *method, const char *target, int status, const char *want)
{
	char body[4096];
	int got = nacos(i, method, target, body, sizeof(body));

	cluster_assert(&cl, got == status && (want == NULL || strcmp(body, want) == 0),
	               "node %u: %s %s: %d \"%s\", want %d \"%s\"", i, method, target, got, body,
	               status, want ? want : "");
}

/* What a GET at one node should answer: the status and (when 200) up to three substrings. */
struct want {
	uint32_t node;
	const char *target;
	int status;
	const char *needle[3];
};

static bool answered_as_wanted(void *arg)
{
	const struct want *w = arg;
	char body[8192];

	if (nacos(w->node, "GET", w->target, body, sizeof(body)) != w->status)
		return false;
	for (int k = 0; k < 3 && w->needle[k]; k++)
		if (strstr(body, w->needle[k]) == NULL)
			return false;
	return true;
}

/* Within SPREAD_MS node answers GET target with status and the substrings a, b, c (may be NULL). */
static void wait_get(uint32_t node, const char *target, int status, const char *a, const char *b,
                     const char *c)
{
	struct want w = { node, target, status, { a, b, c } };
	char body[8192];
	int got;

	if (wait_until(answered_as_wanted, &w, SPREAD_MS))
		return;
	got = nacos(node, "GET", target, body, sizeof(body));
	cluster_assert(&cl, false, "node %u: GET %s after %d ms: %d %s; want %d with %s %s %s",
	               node, target, SPREAD_MS, got, body, status, a ? a : "", b ? b : "",
	               c ? c : "");
}

/* GET /service of svc at node: 200 with a and b, or (a NULL) 400. */
static void wait_service(uint32_t node, const char *svc, const char *a, const char *b)
{
	char target[256];

	snprintf(target, sizeof(target), NS "/service?serviceName=%s", svc);
	wait_get(node, target, a ? 200 : 400, a, b, NULL);
}

Test(cluster_nacos_service, service_state_replicates_and_converges)
{
	char target[512], svc[N_SVC][24], meta[N_SVC][48], body[8192];

	/* Created at A: seen by every node, threshold and metadata included. */
	for (int s = 0; s < N_SVC; s++) {
		snprintf(svc[s], sizeof(svc[s]), "svcstate%d", s);
		snprintf(meta[s], sizeof(meta[s]), "\"metadata\":{\"owner\":\"team%d\"}", s);
		snprintf(target, sizeof(target),
		         NS "/service?serviceName=%s&protectThreshold=0.5&metadata=owner%%3Dteam%d",
		         svc[s], s);
		expect(0, "POST", target, 200, "ok");
	}
	for (int s = 0; s < N_SVC; s++)
		for (uint32_t i = 0; i < 3; i++)
			wait_service(i, svc[s], "\"protectThreshold\":0.5", meta[s]);
	snprintf(target, sizeof(target), NS "/service?serviceName=%s", svc[0]);
	expect(2, "POST", target, 400,
	       "specified service DEFAULT_GROUP@@svcstate0 already exists!");
	/* Every node lists the empty services, and no node counts their records as instances. */
	for (uint32_t i = 0; i < 3; i++) {
		cluster_assert(&cl,
		               nacos(i, "GET", NS "/service/list?pageNo=1&pageSize=100", body,
		                     sizeof(body)) == 200 &&
		                       strstr(body, "\"count\":6}") != NULL,
		               "node %u: /service/list %s", i, body);
		cluster_assert(&cl,
		               nacos(i, "GET", NS "/operator/metrics", body, sizeof(body)) == 200 &&
		                       strstr(body, "\"instanceCount\":0,") != NULL,
		               "node %u: /operator/metrics %s", i, body);
	}

	/* Two instances of svcstate0 at C, one unhealthy: 1/2 <= 0.5, protected everywhere. */
	expect(2, "POST", NS "/instance?serviceName=svcstate0&ip=192.0.2.1&port=80&ephemeral=false",
	       200, "ok");
	expect(2, "POST",
	       NS "/instance?serviceName=svcstate0&ip=192.0.2.2&port=80&ephemeral=false&"
	          "healthy=false",
	       200, "ok");
	for (uint32_t i = 0; i < 3; i++)
		wait_get(i, NS "/instance/list?serviceName=svcstate0", 200,
		         "\"reachProtectionThreshold\":true", "\"ip\":\"192.0.2.1\"",
		         "\"ip\":\"192.0.2.2\"");
	cluster_assert(&cl,
	               nacos(1, "GET", NS "/instance/list?serviceName=svcstate0", body,
	                     sizeof(body)) == 200 &&
	                       strstr(body, "\"healthy\":false") == NULL,
	               "node 1: a protected list answers every instance healthy: %s", body);

	/* PUT at B: the new threshold everywhere, and C's list no longer protected. */
	expect(1, "PUT", NS "/service?serviceName=svcstate0&protectThreshold=0.25", 200, "ok");
	for (uint32_t i = 0; i < 3; i++) {
		wait_service(i, "svcstate0", "\"protectThreshold\":0.25", meta[0]);
		wait_get(i, NS "/instance/list?serviceName=svcstate0", 200,
		         "\"reachProtectionThreshold\":false", "\"healthy\":false", NULL);
	}

	/* DELETE at C: gone everywhere; one with instances is refused. */
	expect(2, "DELETE", NS "/service?serviceName=svcstate0", 400,
	       "Service DEFAULT_GROUP@@svcstate0 is not empty, can't be delete. Please unregister "
	       "instance first");
	for (int s = 1; s < N_SVC; s++) {
		snprintf(target, sizeof(target), NS "/service?serviceName=%s", svc[s]);
		expect(2, "DELETE", target, 200, "ok");
	}
	for (int s = 1; s < N_SVC; s++)
		for (uint32_t i = 0; i < 3; i++)
			wait_service(i, svc[s], NULL, NULL);
}
