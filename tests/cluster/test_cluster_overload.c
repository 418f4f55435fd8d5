/*
 * Strangers on the peer port (cluster/link.c): a connection that never
 * says anything is closed once the handshake deadline (--peer-down) has
 * passed, and one source address may hold at most PREAUTH_PER_SOURCE (4)
 * accepted links that have not authenticated: the 5th from it is closed
 * at once and counted (preauth_refused), while another address still
 * gets its chance and the members' own link stays up throughout.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONVERGE_MS 20000
#define PEER_DOWN   900 /* the harness's --peer-down */

static struct cluster cl;

static void start_two(void)
{
	cluster_setup(&cl, &(struct cluster_opts){ .n = 2 });
	cluster_start(&cl);
}

static void teardown(void)
{
	cluster_teardown(&cl);
}

/* A peer thread counter from node i's /cluster document ("stats"). */
static unsigned long long stat_of(uint32_t i, const char *name)
{
	char key[96], *body, *stats, *p;
	unsigned long long v;
	int status = cluster_http_get(&cl, i, "/cluster", &body);

	cluster_assert(&cl, status == 200 && body, "node %u: GET /cluster answered %d", i, status);
	stats = strstr(body, "\"stats\":{");
	cr_assert_not_null(stats, "no stats in /cluster: %s", body);
	snprintf(key, sizeof(key), "\"%s\":", name);
	p = strstr(stats, key);
	cr_assert_not_null(p, "no %s in /cluster's stats: %s", name, stats);
	v = strtoull(p + strlen(key), NULL, 10);
	free(body);
	return v;
}

static int connect_from(const char *src, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct sockaddr_in s = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	inet_pton(AF_INET, src, &s.sin_addr);
	cr_assert_eq(bind(fd, (struct sockaddr *)&s, sizeof(s)), 0, "bind %s: %s", src,
	             strerror(errno));
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect %u: %s", port,
	             strerror(errno));
	return fd;
}

/* True when the node closes fd within timeout_ms; what it sends first is dropped. */
static bool closed_within(int fd, int timeout_ms)
{
	int64_t end = cluster_mono_ms() + timeout_ms;
	char buf[4096];

	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int64_t left = end - cluster_mono_ms();

		if (left < 0 || poll(&p, 1, (int)left) != 1)
			return false;
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
	}
}

Test(cluster_overload, silent_and_too_many_unauthenticated_peer_connections_are_closed,
     .init = start_two, .fini = teardown, .timeout = 120)
{
	uint16_t port = cl.node[0].peer_port;
	unsigned long long refused0, links0;
	int64_t t0;
	int fd[4], extra, other;

	cluster_assert(&cl, cluster_wait_converged(&cl, CONVERGE_MS), "converged");
	refused0 = stat_of(0, "preauth_refused");
	links0 = stat_of(0, "links_up");
	t0 = cluster_mono_ms();
	for (int i = 0; i < 4; i++)
		fd[i] = connect_from("127.0.0.5", port);
	other = connect_from("127.0.0.6", port);
	extra = connect_from("127.0.0.5", port);
	cr_assert(closed_within(extra, 3 * PEER_DOWN), "the 5th from one address is closed");
	close(extra);
	cr_assert_eq(stat_of(0, "preauth_refused"), refused0 + 1,
	             "one refusal counted: the 5th, not the other address's");
	/* The silent ones: closed by the handshake deadline, not before it. */
	for (int i = 0; i < 4; i++) {
		cr_assert(closed_within(fd[i], 4 * PEER_DOWN), "silent connection %d closed", i);
		cr_assert_geq(cluster_mono_ms() - t0, PEER_DOWN - 100,
		              "silent connection %d closed before --peer-down", i);
		close(fd[i]);
	}
	cr_assert(closed_within(other, 4 * PEER_DOWN), "the other address's too");
	close(other);
	/* A place freed: the address may try again. */
	t0 = cluster_mono_ms();
	extra = connect_from("127.0.0.5", port);
	cr_assert(closed_within(extra, 4 * PEER_DOWN), "closed by the deadline again");
	cr_assert_geq(cluster_mono_ms() - t0, PEER_DOWN - 100, "not refused at once");
	close(extra);
	cr_assert_eq(stat_of(0, "preauth_refused"), refused0 + 1, "no refusal for it");
	/* The members' link never went down over this. */
	cr_assert_eq(stat_of(0, "links_up"), links0, "the member link stayed up");
	cluster_assert(&cl, cluster_wait_converged(&cl, CONVERGE_MS), "still converged");
}
