/*
 * Who may speak on the peer port:
 *
 * - a member started with another secret never becomes UP for the others
 *   (both refuse the handshake, counted as auth failures in /cluster's
 *   stats) and each side becomes READY alone;
 * - (with --peer-tls off, to speak the handshake by hand) a raw connection
 *   to the peer port sending a client frame, or garbage, is closed; one sending a well-formed HELLO
 * (the node answers with its own HELLO and AUTH, so the HELLO passed) and then a wrong MAC is
 * closed too, and counted; the node keeps serving its clients;
 * - a peer frame sent to the client port is refused (an ERROR frame, then
 *   the connection closes) and other clients are not disturbed.
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
#include <time.h>
#include <unistd.h>

#define CONVERGE_MS 20000

static struct cluster cl;
static char other_secret[256];
static const char *node1_extra[] = { "--cluster-secret-file", other_secret, NULL };
static struct distro_slot_map map;

static void teardown(void)
{
	cluster_teardown(&cl);
}

static void start_two_secrets(void)
{
	FILE *f;

	cluster_setup(&cl, &(struct cluster_opts){ .n = 2, .node_extra = { NULL, node1_extra } });
	snprintf(other_secret, sizeof(other_secret), "%s/other-secret", cl.dir);
	f = fopen(other_secret, "w");
	cr_assert_not_null(f);
	fputs("a-different-cluster-secret-entirely", f);
	fclose(f);
	cluster_start(&cl);
}

static void start_two(void)
{
	cluster_setup(&cl, &(struct cluster_opts){ .n = 2 });
	cluster_start(&cl);
}

/*
 * Plaintext peer links, so that the test can speak HELLO/AUTH by hand: the
 * same handshake runs inside TLS by default (test_cluster_tls.c covers
 * what a TLS node does with these bytes).
 */
static const char *const tls_off[] = { "--peer-tls", "off", NULL };

static void start_two_plaintext(void)
{
	cluster_setup(&cl, &(struct cluster_opts){ .n = 2, .extra = tls_off });
	cluster_start(&cl);
}

/* A peer thread counter (PEER_STATS) from node i's HTTP /cluster document, "stats" object. */
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

Test(cluster_auth, a_member_without_the_secret_is_never_up_and_each_side_runs_alone,
     .init = start_two_secrets, .fini = teardown, .timeout = 120)
{
	int64_t end;

	for (uint32_t i = 0; i < 2; i++)
		cluster_assert(&cl, cluster_wait_ready(&cl, i, CONVERGE_MS), "node %u READY alone",
		               i);
	end = cluster_mono_ms() + 2000;
	while (cluster_mono_ms() < end) {
		for (uint32_t i = 0; i < 2; i++) {
			const struct distro_member *o;

			cr_assert_eq(cluster_slot_map(&cl, i, &map), 0);
			o = distro_slot_map_member(&map, cluster_member_id(&cl, 1 - i));
			cr_assert_not_null(o);
			cluster_assert(&cl, o->health != DISTRO_UP,
			               "node %u sees the member with another secret UP", i);
			/*
			 * Alone, member 1 keeps a quorum (half of two, with member 1)
			 * and owns every slot; member 2 has none and owns nothing.
			 */
			cr_assert_eq(distro_slot_map_count(&map, cluster_member_id(&cl, i)),
			             cluster_member_id(&cl, i) == 1 ? (uint32_t)DISTRO_SLOTS : 0u,
			             "alone, member %u owns %u slots", cluster_member_id(&cl, i),
			             distro_slot_map_count(&map, cluster_member_id(&cl, i)));
		}
		struct timespec ts = { 0, 100 * 1000000L };

		nanosleep(&ts, NULL);
	}
	cr_assert_gt(stat_of(0, "auth_failures") + stat_of(1, "auth_failures"), 0,
	             "the refusals were counted");
	cr_assert_eq(stat_of(0, "links_up"), 0, "no handshake completed");
	cr_assert_eq(stat_of(1, "links_up"), 0, "no handshake completed");
}

static int connect_port(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect %u: %s", port,
	             strerror(errno));
	return fd;
}

/* Reads until EOF or error within timeout_ms; true when the peer closed. Data is discarded. */
static bool closed_within(int fd, int timeout_ms)
{
	int64_t end = cluster_mono_ms() + timeout_ms;
	char buf[4096];

	while (cluster_mono_ms() < end) {
		struct pollfd p = { fd, POLLIN, 0 };

		if (poll(&p, 1, 50) > 0) {
			ssize_t n = read(fd, buf, sizeof(buf));

			if (n == 0 || (n < 0 && errno == ECONNRESET))
				return true;
		}
	}
	return false;
}

/*
 * Reads one frame (header and body, body_len at most cap - 16) within
 * timeout_ms into f. The body length, or -1 on EOF, error or timeout.
 */
static long read_frame(int fd, uint8_t *f, size_t cap, int timeout_ms)
{
	int64_t end = cluster_mono_ms() + timeout_ms;
	size_t want = 16, have = 0;

	while (have < want) {
		struct pollfd p = { fd, POLLIN, 0 };
		int left = (int)(end - cluster_mono_ms());
		ssize_t n;

		if (left <= 0 || poll(&p, 1, left) <= 0)
			return -1;
		if ((n = read(fd, f + have, want - have)) <= 0)
			return -1;
		have += (size_t)n;
		if (have == 16) {
			uint32_t len = (uint32_t)f[4] | (uint32_t)f[5] << 8 | (uint32_t)f[6] << 16 |
			               (uint32_t)f[7] << 24;

			if (len > cap - 16)
				return -1;
			want = 16 + len;
		}
	}
	return (long)(want - 16);
}

static void header(uint8_t *h, uint8_t m1, uint8_t op, uint32_t len)
{
	memset(h, 0, 16);
	h[0] = 'D';
	h[1] = m1;
	h[2] = 1;
	h[3] = op;
	h[4] = (uint8_t)len;
	h[5] = (uint8_t)(len >> 8);
}

static void node_serves(uint32_t i)
{
	cr_assert_eq(distro_ping(cluster_client(&cl, i)), 0, "node %u still serves", i);
}

Test(cluster_auth, the_peer_port_closes_client_frames_garbage_and_wrong_macs,
     .init = start_two_plaintext, .fini = teardown, .timeout = 120)
{
	uint8_t f[16 + 40], got[256];
	unsigned long long before;
	int fd;

	cluster_assert(&cl, cluster_wait_converged(&cl, CONVERGE_MS), "two members UP");
	before = stat_of(0, "auth_failures");

	/* A client PING frame ('D','R') on the peer port. */
	fd = connect_port(cl.node[0].peer_port);
	header(f, 'R', 1, 0);
	cr_assert_eq(write(fd, f, 16), 16);
	cr_assert(closed_within(fd, 3000), "a client frame on the peer port closes the link");
	close(fd);

	/* Garbage. */
	fd = connect_port(cl.node[0].peer_port);
	cr_assert_eq(write(fd, "GET / HTTP/1.1\r\n\r\n", 18), 18);
	cr_assert(closed_within(fd, 3000), "garbage closes the link");
	close(fd);

	/* A well-formed HELLO claiming to be node 1, then an AUTH with a wrong MAC. */
	fd = connect_port(cl.node[0].peer_port);
	header(f, 'P', 1, 40);
	uint16_t from = cluster_member_id(&cl, 1), to = cluster_member_id(&cl, 0);

	f[16] = 1;
	f[17] = 0;
	f[18] = (uint8_t)from;
	f[19] = (uint8_t)(from >> 8);
	f[20] = (uint8_t)to;
	f[21] = (uint8_t)(to >> 8);
	f[22] = (uint8_t)cl.node[1].port;
	f[23] = (uint8_t)(cl.node[1].port >> 8);
	memset(f + 24, 0x5a, 32);
	cr_assert_eq(write(fd, f, sizeof(f)), (ssize_t)sizeof(f));
	/* The node took it for a member's HELLO: it answers with its HELLO, then its AUTH. */
	cr_assert_eq(read_frame(fd, got, sizeof(got), 3000), 40, "the node's HELLO");
	cr_assert(got[0] == 'D' && got[1] == 'P' && got[3] == 1, "op HELLO");
	cr_assert_eq(got[18] | got[19] << 8, to, "from the node");
	cr_assert_eq(got[20] | got[21] << 8, from, "to the member we claimed to be");
	cr_assert_eq(read_frame(fd, got, sizeof(got), 3000), 32, "the node's AUTH");
	cr_assert(got[0] == 'D' && got[1] == 'P' && got[3] == 2, "op AUTH");
	header(f, 'P', 2, 32);
	memset(f + 16, 0, 32);
	cr_assert_eq(write(fd, f, 16 + 32), 16 + 32);
	cr_assert(closed_within(fd, 3000), "a wrong MAC closes the link");
	close(fd);

	cr_assert_geq(stat_of(0, "auth_failures"), before + 3, "each refusal counted");
	node_serves(0);
	node_serves(1);
	/* The real link between the members was not disturbed. */
	cr_assert_eq(cluster_slot_map(&cl, 0, &map), 0);
	cr_assert_eq(distro_slot_map_member(&map, cluster_member_id(&cl, 1))->health, DISTRO_UP);
}

Test(cluster_auth, a_peer_frame_on_the_client_port_is_refused, .init = start_two, .fini = teardown,
     .timeout = 120)
{
	uint8_t f[16 + 40], got[512];
	ssize_t n = 0;
	int fd;

	cluster_assert(&cl, cluster_wait_converged(&cl, CONVERGE_MS), "two members UP");
	fd = connect_port(cl.node[0].port);
	header(f, 'P', 1, 40);
	memset(f + 16, 0, 40);
	cr_assert_eq(write(fd, f, sizeof(f)), (ssize_t)sizeof(f));
	struct pollfd p = { fd, POLLIN, 0 };

	cr_assert_gt(poll(&p, 1, 3000), 0, "an answer comes");
	n = read(fd, got, sizeof(got));
	cr_assert_geq(n, 16, "an ERROR frame");
	cr_assert_eq(got[0], 'D');
	cr_assert_eq(got[1], 'R');
	cr_assert_eq(got[3], 127, "op ERROR");
	cr_assert_eq(got[12] | got[13] << 8, 20, "status ERR_PROTO_MAGIC");
	cr_assert(closed_within(fd, 3000), "then the connection closes");
	close(fd);
	node_serves(0); /* a client connected before: not disturbed */
	node_serves(1);
}
