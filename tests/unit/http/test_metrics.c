/*
 * The /metrics text (http/metrics.h) from a made-up snapshot: every
 * counter of the X-macros appears, families are well formed, histograms
 * are cumulative, the size bound holds, and promtool accepts the output.
 */
#include "http/metrics.h"

#include "core/err.h"
#include "core/mem.h"
#include "core/version.h"
#include "cluster/view.h"
#include "server/stats.h"
#include "store/store.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NWORKERS 3

struct snap {
	struct worker_stats total, workers[NWORKERS];
	struct store_stats store;
	struct metrics_http http;
	struct peer_status peer;
	struct metrics_limits limits;
	struct metrics_input in;
};

/* Every counter gets a distinct value, so each can be found in the text. */
static void snap_fill(struct snap *s)
{
	uint64_t v = 1000003;

	memset(s, 0, sizeof(*s));
#define FILL(name) s->total.name = (v += 7919);
	WORKER_STATS(FILL)
#undef FILL
#define FILL(name) s->store.name = (v += 7919);
	STORE_STATS(FILL)
#undef FILL
	s->total.conns_accepted = 10 * v; /* above closed: the gauge stays positive */
	for (int i = 0; i < WORKER_LAT_BUCKETS; i++)
		s->total.lat_count[i] = (uint64_t)i + 1;
	s->total.lat_sum_us = 1234567;
	for (int w = 0; w < NWORKERS; w++) {
		for (int i = 0; i < WORKER_BATCH_BUCKETS; i++)
			s->workers[w].batch_count[i] = (uint64_t)(w + 1) * (uint64_t)(i + 1);
		s->workers[w].cqes = 500 + (uint64_t)w;
	}
#define FILL(name) s->peer.stats.name = (v += 7919);
	PEER_STATS(FILL)
#undef FILL
	s->peer.clustered = true;
	s->peer.self_id = 1;
	s->peer.ready = true;
	s->peer.map_version = 42;
	s->peer.n = 3;
	for (uint32_t i = 0; i < 3; i++) {
		struct peer_member_status *m = &s->peer.m[i];

		m->id = (uint16_t)(i + 1);
		snprintf(m->addr, sizeof(m->addr), "127.0.0.1:%u", 7848 + i);
		snprintf(m->client_addr, sizeof(m->client_addr), "127.0.0.1:%u", 8850 + 10 * i);
		m->self = i == 0;
		m->health = i == 2 ? PEER_SUSPICIOUS : PEER_UP;
		m->ready = i != 2;
		m->slots = i == 2 ? 0 : 8192;
		m->backlog_bytes = 100 * i;
	}
	s->peer.quorum = true;
	s->limits = (struct metrics_limits){ .conns_max = 10000,
		                             .instances_max = 16777216,
		                             .services_max = 1048576,
		                             .subscribers_max = 3 * 65536,
		                             .peer_backlog_bytes_max = 64u << 20 };
	metrics_http_count(&s->http, 200);
	metrics_http_count(&s->http, 404);
	metrics_http_count(&s->http, 299); /* not a status we send: ignored */
	s->in = (struct metrics_input){ .total = &s->total,
		                        .workers = s->workers,
		                        .nworkers = NWORKERS,
		                        .store = &s->store,
		                        .http = &s->http,
		                        .peer = &s->peer,
		                        .limits = &s->limits };
}

static char *render(struct snap *s, size_t *len)
{
	char *text;

	cr_assert_eq(metrics_render(&s->in, &text, len), 0);
	/* NUL-terminate a copy for string searches. */
	char *z = malloc(*len + 1);

	cr_assert_not_null(z);
	memcpy(z, text, *len);
	z[*len] = 0;
	mem_free(text);
	return z;
}

static bool has_value(const char *text, uint64_t v)
{
	char needle[32];

	snprintf(needle, sizeof(needle), " %llu\n", (unsigned long long)v);
	return strstr(text, needle) != NULL;
}

Test(metrics, every_counter_is_exported)
{
	struct snap s;
	size_t len;
	char *text;

	snap_fill(&s);
	text = render(&s, &len);
#define CHECK(name) cr_assert(has_value(text, s.total.name), "WORKER_STATS %s missing", #name);
	WORKER_STATS(CHECK)
#undef CHECK
#define CHECK(name) cr_assert(has_value(text, s.store.name), "STORE_STATS %s missing", #name);
	STORE_STATS(CHECK)
#undef CHECK
#define CHECK(name)                                                                                \
	cr_assert(strstr(text, "\ndistrod_peer_" #name "_total "), "PEER_STATS %s missing",        \
	          #name);                                                                          \
	cr_assert(has_value(text, s.peer.stats.name), "PEER_STATS %s value missing", #name);
	PEER_STATS(CHECK)
#undef CHECK
	cr_assert(strstr(text, "distrod_instances ") && strstr(text, "distrod_services "));
	cr_assert(strstr(text, "\ndistrod_subscribers "), "always present, 0 without a counter");
	cr_assert(strstr(text, "distrod_operations_total{op=\"register\"} "));
	cr_assert(strstr(text, "distrod_http_requests_total{code=\"200\"} 1\n"));
	cr_assert(strstr(text, "distrod_http_requests_total{code=\"404\"} 1\n"));
	cr_assert(strstr(text, "distrod_workers 3\n"));
	free(text);
}

/* The build's release and commit, as an info gauge (the promtool test checks its form). */
Test(metrics, build_info_names_the_release_and_commit)
{
	struct snap s;
	size_t len;
	char *text;

	snap_fill(&s);
	text = render(&s, &len);
	cr_assert(strstr(text, "\n# TYPE distrod_build_info gauge\n"
	                       "distrod_build_info{version=\"" DISTRO_VERSION
	                       "\",commit=\"" DISTRO_VERSION_COMMIT "\"} 1\n"),
	          "%s", text);
	free(text);
}

Test(metrics, cluster_members_are_gauges)
{
	struct snap s;
	size_t len;
	char *text;

	snap_fill(&s);
	strcpy(s.peer.m[1].addr, "[::1]:7849\"x\\"); /* escaped, never breaks the line */
	text = render(&s, &len);
	cr_assert(strstr(text, "\n# TYPE distrod_peer_member_health gauge\n"));
	cr_assert(strstr(text, "\ndistrod_peer_member_health{member=\"127.0.0.1:7848\"} 2\n"));
	cr_assert(strstr(text, "\ndistrod_peer_member_health{member=\"127.0.0.1:7850\"} 1\n"));
	cr_assert(strstr(text, "\ndistrod_peer_member_health{member=\"[::1]:7849\\\"x\\\\\"} 2\n"),
	          "%s", text);
	cr_assert(strstr(text, "\ndistrod_peer_member_ready{member=\"127.0.0.1:7850\"} 0\n"));
	cr_assert(strstr(text, "\ndistrod_peer_member_slots{member=\"127.0.0.1:7848\"} 8192\n"));
	cr_assert(strstr(text,
	                 "\ndistrod_peer_member_backlog_bytes{member=\"127.0.0.1:7850\"} 200\n"));
	cr_assert(strstr(text, "\ndistrod_peer_ready 1\n"));
	cr_assert(strstr(text, "\ndistrod_peer_map_version 42\n"));
	cr_assert(strstr(text, "\ndistrod_peer_members 3\n"));
	cr_assert(strstr(text, "\n# TYPE distrod_peer_quorum gauge\ndistrod_peer_quorum 1\n"));
	free(text);
	s.peer.quorum = false;
	text = render(&s, &len);
	cr_assert(strstr(text, "\ndistrod_peer_quorum 0\n"));
	free(text);
}

/* The configured bounds are gauges beside what they bound; a zero one is left out. */
Test(metrics, limits_are_gauges)
{
	struct snap s;
	size_t len;
	char *text;

	snap_fill(&s);
	text = render(&s, &len);
	cr_assert(strstr(text, "\n# TYPE distrod_connections_max gauge\ndistrod_connections_max "
	                       "10000\n"));
	cr_assert(strstr(text, "\ndistrod_instances_max 16777216\n"));
	cr_assert(strstr(text, "\ndistrod_services_max 1048576\n"));
	cr_assert(strstr(text, "\ndistrod_subscribers_max 196608\n"));
	cr_assert(strstr(text, "\ndistrod_peer_backlog_bytes_max 67108864\n"));
	free(text);

	s.limits.services_max = 0; /* not given: not exported */
	s.peer.clustered = false;  /* a standalone node has no peer link to bound */
	text = render(&s, &len);
	cr_assert_null(strstr(text, "distrod_services_max"));
	cr_assert_null(strstr(text, "distrod_peer_backlog_bytes_max"));
	cr_assert(strstr(text, "\ndistrod_instances_max 16777216\n"));
	free(text);

	s.in.limits = NULL;
	text = render(&s, &len);
	cr_assert_null(strstr(text, "_max "));
	free(text);
}

Test(metrics, standalone_has_no_peer_series)
{
	struct snap s;
	size_t len;
	char *text;

	snap_fill(&s);
	s.in.peer = NULL;
	text = render(&s, &len);
	cr_assert_null(strstr(text, "distrod_peer_"));
	s.in.peer = &s.peer;
	s.peer.clustered = false;
	free(text);
	text = render(&s, &len);
	cr_assert_null(strstr(text, "distrod_peer_"));
	free(text);
}

Test(metrics, histograms_are_cumulative)
{
	struct snap s;
	size_t len;
	char *text, line[256];

	snap_fill(&s);
	text = render(&s, &len);
	/* lat_count[i] = i + 1: cumulative 1, 3, 6, ... 78 over 12 buckets. */
	cr_assert(strstr(text, "distrod_request_duration_seconds_bucket{le=\"1e-05\"} 1\n"));
	cr_assert(strstr(text, "distrod_request_duration_seconds_bucket{le=\"2.5e-05\"} 3\n"));
	cr_assert(strstr(text, "distrod_request_duration_seconds_bucket{le=\"+Inf\"} 78\n"));
	cr_assert(strstr(text, "distrod_request_duration_seconds_count 78\n"));
	cr_assert(strstr(text, "distrod_request_duration_seconds_sum 1.234567\n"));
	/* Worker 2: batch_count[i] = 3 * (i + 1): cumulative 3, 9, ... 108. */
	cr_assert(strstr(text,
	                 "distrod_uring_completions_per_loop_bucket{worker=\"2\",le=\"1\"} 3\n"));
	cr_assert(strstr(text,
	                 "distrod_uring_completions_per_loop_bucket{worker=\"2\",le=\"3\"} 9\n"));
	snprintf(line, sizeof(line),
	         "distrod_uring_completions_per_loop_bucket{worker=\"2\",le=\"+Inf\"} %d\n",
	         3 * WORKER_BATCH_BUCKETS * (WORKER_BATCH_BUCKETS + 1) / 2);
	cr_assert(strstr(text, line), "%s", line);
	cr_assert(strstr(text, "distrod_uring_completions_per_loop_sum{worker=\"2\"} 502\n"));
	free(text);
}

/* Each family: HELP then TYPE once, its samples right after, nothing of it elsewhere. */
Test(metrics, families_are_well_formed)
{
	struct snap s;
	size_t len;
	char *text, *save = NULL, family[128] = "", type[32] = "";
	char seen[256][128];
	int nseen = 0;

	snap_fill(&s);
	text = render(&s, &len);
	cr_assert_eq(text[len - 1], '\n');
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128];

		if (strncmp(line, "# HELP ", 7) == 0) {
			cr_assert_eq(sscanf(line + 7, "%127s", family), 1);
			for (int i = 0; i < nseen; i++)
				cr_assert_str_neq(seen[i], family, "%s twice", family);
			cr_assert_lt(nseen, 256);
			strcpy(seen[nseen++], family);
			type[0] = 0;
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			cr_assert_eq(sscanf(line + 7, "%127s %31s", name, type), 2);
			cr_assert_str_eq(name, family, "TYPE right after its HELP");
			continue;
		}
		cr_assert_neq(line[0], '#', "no other comments: %s", line);
		cr_assert(type[0], "sample before its TYPE: %s", line);
		size_t n = strcspn(line, "{ ");

		cr_assert_lt(n, sizeof(name));
		memcpy(name, line, n);
		name[n] = 0;
		if (strcmp(type, "histogram") == 0) {
			size_t f = strlen(family);

			cr_assert(strncmp(name, family, f) == 0 &&
			                  (strcmp(name + f, "_bucket") == 0 ||
			                   strcmp(name + f, "_sum") == 0 ||
			                   strcmp(name + f, "_count") == 0),
			          "%s in histogram %s", name, family);
		} else {
			cr_assert_str_eq(name, family, "sample %s inside family %s", name, family);
		}
		if (strcmp(type, "counter") == 0)
			cr_assert(strstr(family, "_total"), "counter %s ends in _total", family);
	}
	free(text);
}

Test(metrics, output_is_bounded)
{
	static struct worker_stats many[8000];
	struct snap s;
	char *text = (char *)1;
	size_t len = 0;

	snap_fill(&s);
	s.in.workers = many;
	s.in.nworkers = 8000; /* about 1 KiB each: over METRICS_BYTES_MAX */
	cr_assert_eq(metrics_render(&s.in, &text, &len), -ERR_NOMEM);
	cr_assert_eq(text, (char *)1, "nothing handed out on failure");
}

static const char *promtool_path(void)
{
	static const char *const paths[] = { "/usr/bin/promtool", "/usr/local/bin/promtool" };

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

Test(metrics, promtool_accepts_the_text)
{
	const char *promtool = promtool_path();
	struct snap s;
	size_t len;
	char *text, cmd[512], out[4096];
	FILE *p;
	size_t got;
	int status;

	if (promtool == NULL)
		cr_skip_test("promtool not installed (Debian package prometheus; tools/deps "
		             "installs it)");
	snap_fill(&s);
	text = render(&s, &len);
	char path[] = "/tmp/distro-metrics-XXXXXX";
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "%s check metrics < %s 2>&1", promtool, path);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	got = fread(out, 1, sizeof(out) - 1, p);
	out[got] = 0;
	status = pclose(p);
	unlink(path);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "promtool: exit %d: %s",
	          WEXITSTATUS(status), out);
	cr_assert_eq(got, 0, "promtool said: %s", out);
	free(text);
}
