/*
 * netns.h - a cluster of real distrod processes, each in its own network
 * namespace, for tests that cut peer links while the test still reaches
 * every node.
 *
 * Two bridges: a "client" bridge the test talks to every node through (the
 * host holds 10.231.<cnet>.254 on it), and a "peer" bridge that only the
 * namespaces are on and that cluster.conf names. Node i runs in namespace
 * dt<tag>n<i> with c0 = 10.231.<cnet>.<i+1> (its client and HTTP ports)
 * and p0 = 10.231.<pnet>.<i+1> (its peer port); every node uses the
 * default ports, each in its own namespace. A test cuts the peer network
 * by taking a node's veth down (netns_sh("ip link set vp%s%d down", ...))
 * or one link by blackhole routes inside both namespaces
 * (netns_link_cut).
 *
 * Subnets: the first pair of /24s of 10.231.0.0/16 that no host address or
 * route uses, picked under a lock shared with every run on the machine
 * (tests/chaos/chaos.py takes it too), so two runs at once never share a
 * subnet and talk to each other's nodes. Everything is removed by
 * netns_teardown.
 *
 * Privileges: root with CAP_NET_ADMIN and CAP_SYS_ADMIN, iproute2 and a
 * kernel with network namespaces. Without them netns_setup skips the test
 * with the reason, before it creates anything; once they are there, a
 * failure to build the network fails the test.
 */
#ifndef DISTRO_TESTS_CLUSTER_NETNS_H
#define DISTRO_TESTS_CLUSTER_NETNS_H

#include "distro/client.h"

#include <stdbool.h>
#include <sys/types.h>

#define NETNS_NODES_MAX 8

struct netns_cluster {
	int n;
	const char *name; /* the test's name, for skip messages and the directory */
	char tag[16];     /* unique per run: names of namespaces, bridges, links */
	int cnet, pnet;   /* the third octet of 10.231.x.0/24: client net, peer net */
	char dir[128];    /* cluster.conf, secret, node<i>.log */
	pid_t pids[NETNS_NODES_MAX];
	char addrs[NETNS_NODES_MAX][32]; /* client address of node i, ip:port */
	const char *const *extra;        /* flags for every node, NULL-terminated (may be NULL) */
	bool made;                       /* the bridges exist: teardown removes them */
};

/* Runs a shell command; its exit status (-1 when it could not run). */
int netns_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Checks the privileges (skips the test without them), builds the network
 * for n nodes, writes cluster.conf and a secret under /tmp/distro-<name>-<tag>
 * and starts every node with the timers of cluster/harness.h (--peer-ping 50
 * --peer-suspect 300 --peer-down 900 --verify-interval 200 --startup-wait
 * 1000) followed by extra. Returns once every node is started (not READY:
 * wait for that). Asserts.
 */
void netns_setup(struct netns_cluster *nc, int n, const char *name, const char *const *extra);

/* Kills every node, removes the network and (unless DISTRO_CLUSTER_KEEP) the directory. */
void netns_teardown(struct netns_cluster *nc);

/* Prints the last lines of every node's log to stderr. */
void netns_dump_logs(const struct netns_cluster *nc);

/* Fails the test (Criterion) with the nodes' logs printed first, unless cond holds. */
#define NETNS_CHECK(nc, cond, ...)                                                                 \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			netns_dump_logs(nc);                                                       \
			cr_assert_fail(__VA_ARGS__);                                               \
		}                                                                                  \
	} while (0)

/* Cuts (or restores) the peer link between nodes i and j: a blackhole route each way. */
void netns_link_cut(struct netns_cluster *nc, int i, int j, bool cut);

/* A new connection to node i's client port (2 s to connect); NULL on failure. */
struct distro_client *netns_conn(const struct netns_cluster *nc, int i);

#endif
