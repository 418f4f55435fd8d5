/*
 * netns.c - distrod clusters in network namespaces (netns.h).
 *
 * Processes: each node is `ip netns exec <ns> distrod ...` forked with
 * PR_SET_PDEATHSIG(SIGKILL) (ip execs distrod, so the death signal holds
 * for distrod itself): a test that dies, or that Criterion kills on its
 * timeout, leaves no node behind. Its stdout and stderr go to node<i>.log,
 * appended. Namespaces and bridges of a crashed run with the same tag are
 * removed before a run builds its own.
 */
#include "netns.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Each node has its own namespace: all use the default ports (docs/http.md, "Ports"). */
#define CLIENT_PORT "8850"
#define HTTP_PORT   "8851"
#define PEER_PORT   "7848"

#define NET_LOCK  "/tmp/distro-netns.lock" /* tests/chaos/chaos.py takes it too */
#define ARGV_MAX  64
#define LOG_LINES 30

int netns_sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* Skips the test, saying why also without --verbose (Criterion prints skips only then). */
static void skip(const struct netns_cluster *nc, const char *why)
{
	fprintf(stderr, "%s: netns test skipped: %s\n", nc->name, why);
	cr_skip_test("%s", why);
}

/* CAP_NET_ADMIN and CAP_SYS_ADMIN in the effective set; true when that cannot be read. */
static bool net_caps(void)
{
	unsigned long long eff = 0;
	char line[256];
	bool found = false;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return true; /* cannot tell: building the network will say */
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "CapEff: %llx", &eff) == 1;
	fclose(f);
	return !found || ((eff >> CAP_NET_ADMIN & 1) && (eff >> CAP_SYS_ADMIN & 1));
}

/*
 * What the machine must offer, checked before anything is created (a skip
 * in .init does not run .fini). Missing, the test is skipped: it is not a
 * distrod failure.
 */
static void need_net_privileges(const struct netns_cluster *nc)
{
	if (geteuid() != 0)
		skip(nc, "needs root: it creates network namespaces, bridges and veth pairs");
	if (!net_caps())
		skip(nc, "root without CAP_NET_ADMIN and CAP_SYS_ADMIN (an unprivileged "
		         "container?): cannot create network namespaces and bridges");
	if (netns_sh("command -v ip >/dev/null 2>&1") != 0)
		skip(nc, "iproute2's ip is not on PATH (Debian package iproute2; tools/deps "
		         "installs it)");
	if (access("/proc/self/ns/net", F_OK) != 0)
		skip(nc, "the kernel has no network namespaces (CONFIG_NET_NS)");
}

static void net_down(const struct netns_cluster *nc)
{
	for (int i = 0; i < nc->n; i++)
		netns_sh("ip netns del dt%sn%d 2>/dev/null", nc->tag, i);
	netns_sh("ip link del bc%s 2>/dev/null", nc->tag);
	netns_sh("ip link del bp%s 2>/dev/null", nc->tag);
}

/*
 * The first pair of /24s in 10.231.0.0/16 that no host address or route
 * uses (the peer net is only inside the namespaces: a pair goes with its
 * client net). Called with NET_LOCK held, until the host has its address.
 */
static void net_pick(struct netns_cluster *nc)
{
	static char seen[1 << 16];
	FILE *f = popen("ip -o -4 addr show; ip -4 route show table all", "r");
	size_t n = 0;

	cr_assert_not_null(f, "ip addr/route");
	while (n < sizeof(seen) - 1 && fgets(seen + n, (int)(sizeof(seen) - n), f))
		n += strlen(seen + n);
	pclose(f);
	for (int k = 0; k < 127; k++) {
		char c[16], p[16];

		snprintf(c, sizeof(c), "10.231.%d.", 2 * k + 1);
		snprintf(p, sizeof(p), "10.231.%d.", 2 * k + 2);
		if (strstr(seen, c) == NULL && strstr(seen, p) == NULL) {
			nc->cnet = 2 * k + 1;
			nc->pnet = 2 * k + 2;
			return;
		}
	}
	cr_assert_fail("no free pair of /24s in 10.231.0.0/16");
}

/* Two bridges; per node a namespace with c0 (client net) and p0 (peer net). */
static void net_up(struct netns_cluster *nc)
{
	const char *t = nc->tag;
	int lock = open(NET_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	cr_assert_geq(lock, 0, "%s: %s", NET_LOCK, strerror(errno));
	cr_assert_eq(flock(lock, LOCK_EX), 0);
	net_pick(nc);
	cr_assert_eq(netns_sh("ip link add bc%s type bridge && ip link set bc%s up && "
	                      "ip addr add 10.231.%d.254/24 dev bc%s",
	                      t, t, nc->cnet, t),
	             0, "a bridge for the client network (root and ip are there: see ip's error)");
	close(lock); /* the address is there: the next run picks another pair */
	cr_assert_eq(netns_sh("ip link add bp%s type bridge && ip link set bp%s up", t, t), 0);
	nc->made = true;
	for (int i = 0; i < nc->n; i++) {
		cr_assert_eq(netns_sh("ip netns add dt%sn%d && ip -n dt%sn%d link set lo up", t, i,
		                      t, i),
		             0);
		cr_assert_eq(netns_sh("ip link add vc%s%d type veth peer name c0 netns dt%sn%d && "
		                      "ip link set vc%s%d master bc%s up && "
		                      "ip -n dt%sn%d addr add 10.231.%d.%d/24 dev c0 && "
		                      "ip -n dt%sn%d link set c0 up",
		                      t, i, t, i, t, i, t, t, i, nc->cnet, i + 1, t, i),
		             0);
		cr_assert_eq(netns_sh("ip link add vp%s%d type veth peer name p0 netns dt%sn%d && "
		                      "ip link set vp%s%d master bp%s up && "
		                      "ip -n dt%sn%d addr add 10.231.%d.%d/24 dev p0 && "
		                      "ip -n dt%sn%d link set p0 up",
		                      t, i, t, i, t, i, t, t, i, nc->pnet, i + 1, t, i),
		             0);
		snprintf(nc->addrs[i], sizeof(nc->addrs[i]), "10.231.%d.%d:%s", nc->cnet, i + 1,
		         CLIENT_PORT);
	}
}

static void node_start(struct netns_cluster *nc, int i)
{
	char ns[32], bind[32], log[192], conf[192], secret[192];
	const char *argv[ARGV_MAX];
	int a = 0;

	snprintf(ns, sizeof(ns), "dt%sn%d", nc->tag, i);
	snprintf(bind, sizeof(bind), "10.231.%d.%d", nc->cnet, i + 1);
	snprintf(log, sizeof(log), "%s/node%d.log", nc->dir, i);
	snprintf(conf, sizeof(conf), "%s/cluster.conf", nc->dir);
	snprintf(secret, sizeof(secret), "%s/secret", nc->dir);
	{
		const char *base[] = { "ip",        "netns",
			               "exec",      ns,
			               DISTROD_BIN, "--bind",
			               bind,        "--port",
			               CLIENT_PORT, "--http-bind",
			               bind,        "--http-port",
			               HTTP_PORT,   "--workers",
			               "2",         "--cluster-conf",
			               conf,        "--cluster-secret-file",
			               secret,      "--peer-port",
			               PEER_PORT,   "--peer-ping",
			               "50",        "--peer-suspect",
			               "300",       "--peer-down",
			               "900",       "--verify-interval",
			               "200",       "--startup-wait",
			               "1000" };

		for (size_t k = 0; k < sizeof(base) / sizeof(base[0]); k++)
			argv[a++] = base[k];
	}
	for (int k = 0; nc->extra && nc->extra[k]; k++) {
		cr_assert_lt(a, ARGV_MAX - 1, "too many extra flags");
		argv[a++] = nc->extra[k];
	}
	argv[a] = NULL;
	nc->pids[i] = fork();
	cr_assert_geq(nc->pids[i], 0);
	if (nc->pids[i] == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		execvp("ip", (char **)argv); /* ip execs distrod inside the namespace */
		_exit(127);
	}
}

void netns_setup(struct netns_cluster *nc, int n, const char *name, const char *const *extra)
{
	char path[192];
	FILE *f;

	cr_assert(n >= 1 && n <= NETNS_NODES_MAX);
	memset(nc, 0, sizeof(*nc));
	nc->n = n;
	nc->name = name;
	nc->extra = extra;
	need_net_privileges(nc);
	snprintf(nc->tag, sizeof(nc->tag), "%d", (int)(getpid() % 100000));
	snprintf(nc->dir, sizeof(nc->dir), "/tmp/distro-%s-%s", name, nc->tag);
	mkdir(nc->dir, 0700);
	net_down(nc); /* leftovers of a crashed run with the same pid */
	net_up(nc);
	snprintf(path, sizeof(path), "%s/cluster.conf", nc->dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	for (int i = 0; i < n; i++)
		fprintf(f, "10.231.%d.%d:%s\n", nc->pnet, i + 1, PEER_PORT);
	fclose(f);
	snprintf(path, sizeof(path), "%s/secret", nc->dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f, "%s-test-secret-%s", name, nc->tag);
	fclose(f);
	for (int i = 0; i < n; i++)
		node_start(nc, i);
}

void netns_teardown(struct netns_cluster *nc)
{
	for (int i = 0; i < nc->n; i++) {
		if (nc->pids[i] > 0) {
			kill(nc->pids[i], SIGKILL);
			waitpid(nc->pids[i], NULL, 0);
			nc->pids[i] = 0;
		}
	}
	if (nc->made)
		net_down(nc);
	nc->made = false;
	if (nc->dir[0] && getenv("DISTRO_CLUSTER_KEEP") == NULL)
		netns_sh("rm -rf %s", nc->dir);
}

void netns_dump_logs(const struct netns_cluster *nc)
{
	for (int i = 0; i < nc->n; i++) {
		fprintf(stderr, "---- node %d (%s) ----\n", i, nc->addrs[i]);
		netns_sh("tail -n %d %s/node%d.log 1>&2", LOG_LINES, nc->dir, i);
	}
}

void netns_link_cut(struct netns_cluster *nc, int i, int j, bool cut)
{
	const char *op = cut ? "add" : "del";

	cr_assert_eq(netns_sh("ip -n dt%sn%d route %s blackhole 10.231.%d.%d/32 && "
	                      "ip -n dt%sn%d route %s blackhole 10.231.%d.%d/32",
	                      nc->tag, i, op, nc->pnet, j + 1, nc->tag, j, op, nc->pnet, i + 1),
	             0, "%s the link between node %d and node %d", cut ? "cut" : "restore", i, j);
}

struct distro_client *netns_conn(const struct netns_cluster *nc, int i)
{
	struct distro_client *c = NULL;

	if (distro_connect(nc->addrs[i], 2000, &c) < 0)
		return NULL;
	return c;
}
