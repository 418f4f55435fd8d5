/* Connection bounds, idle time, and the client's reconnect across a node restart. */
#include "node.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

static struct node node;

static void stop(void)
{
	cr_assert_eq(node_stop(&node), 0);
}

static int raw_connect(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* True when the peer closes fd within ms. */
static bool closed_within(int fd, int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char b;

	return poll(&p, 1, ms) == 1 && recv(fd, &b, 1, 0) == 0;
}

static void start_small(void)
{
	static const char *const extra[] = { "--workers",      "1",    "--conns-max", "4",
		                             "--idle-timeout", "1500", NULL };

	node_start(&node, extra);
}

Test(limits, connections_over_the_bound_are_refused, .init = start_small, .fini = stop,
     .timeout = 60)
{
	struct distro_client *c[4];
	int extra;

	for (int i = 0; i < 4; i++)
		c[i] = node_client(&node);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(distro_ping(c[i]), 0);
	extra = raw_connect(node.port);
	cr_assert(closed_within(extra, 3000), "the fifth connection is closed at once");
	close(extra);
	char stats[8192];

	cr_assert_gt(distro_stats(c[0], stats, sizeof(stats)), 0);
	cr_assert_not_null(strstr(stats, "conns_refused 1\n"), "%s", stats);
	for (int i = 0; i < 4; i++)
		distro_close(c[i]);
}

Test(limits, idle_connections_are_closed, .init = start_small, .fini = stop, .timeout = 60)
{
	int fd = raw_connect(node.port);
	int64_t t0 = now_ms();

	cr_assert(closed_within(fd, 5000), "closed after the idle timeout");
	cr_assert_geq(now_ms() - t0, 1000, "but not before it");
	close(fd);
}

/* A free loopback port, so a node can be restarted on the same address. */
static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port;

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	getsockname(fd, (struct sockaddr *)&a, &len);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

struct got {
	int pushes;
	uint32_t n;
};

static void on_push(void *ctx, uint32_t id, uint64_t rev, const struct distro_entry *e, uint32_t n)
{
	struct got *g = ctx;

	(void)id;
	(void)rev;
	(void)e;
	g->pushes++;
	g->n = n;
}

Test(limits, client_reconnects_and_renews_after_a_restart, .fini = stop, .timeout = 60)
{
	char port[16];
	const char *extra[] = { "--workers", "2", "--port", port, NULL };
	struct distro_client *c, *w;
	struct distro_instance in;
	struct got g = { 0 };
	uint32_t id;
	int res;

	snprintf(port, sizeof(port), "%u", free_port());
	/* node_start passes --port 0 first; the later --port wins. */
	node_start(&node, extra);
	c = node_client(&node);
	w = node_client(&node);
	distro_instance_init(&in);
	in.service = "again";
	in.ip = "10.11.0.1";
	in.port = 1;
	cr_assert_eq(distro_register(c, &in, 1, &res), 0);
	cr_assert_eq(distro_subscribe(w, NULL, NULL, "again", NULL, on_push, &g, &id), 0);
	cr_assert_eq(g.n, 1);

	/* kill -9 and start again on the same port: the store is empty again. */
	kill(node.pid, SIGKILL);
	waitpid(node.pid, NULL, 0);
	node.pid = 0;
	node_start(&node, extra);
	/* The next call fails or reconnects; a beat re-creates the instance. */
	int rc = distro_heartbeat(c, &in, 1, &res);

	if (rc < 0)
		rc = distro_heartbeat(c, &in, 1, &res);
	cr_assert_eq(rc, 0, "reconnected: %s", distro_strerror(rc));
	cr_assert_eq(res, 2, "the beat re-created the lost instance");
	/* The watcher renews its subscription on its next call and sees the list again. */
	int64_t end = now_ms() + 5000;

	while (g.pushes < 2 && now_ms() < end)
		distro_poll(w, 50);
	cr_assert_geq(g.pushes, 2, "the subscription was renewed after the restart");
	end = now_ms() + 5000;
	while (g.n != 1 && now_ms() < end)
		distro_poll(w, 50);
	cr_assert_eq(g.n, 1);
	distro_close(c);
	distro_close(w);
}
