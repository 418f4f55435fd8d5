/*
 * harness.c - real distrod clusters for tests (harness.h).
 *
 * Processes: each node is a fork/exec of DISTROD_BIN with
 * PR_SET_PDEATHSIG(SIGKILL), so a test that dies (or that Criterion kills
 * on its timeout) never leaves nodes behind. The harness waits for the
 * node's --port-file and --http-port-file (written atomically once it
 * listens) and fails if the process exits first.
 *
 * Ports: all of a cluster's ports are found by binding port 0 on
 * 127.0.0.1 and held until every one is chosen, so they are distinct; they
 * are released just before the nodes start. Another program could take
 * one in between; then that node fails to start with a clear log line, and
 * cluster_start picks new ports and tries again (three times). A restart
 * reuses the node's ports (the listeners use SO_REUSEADDR).
 *
 * Waits poll every 15 ms up to a deadline; every wait is bounded and its
 * failure is an assertion that prints the nodes' logs.
 */
#include "harness.h"

#include "cluster/members.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_MS      15000 /* a node (under ASan) listens within this */
#define STOP_MS       10000
#define POLL_MS       15
#define WRITE_BATCH   256
#define LOG_TAIL      40
#define START_RETRIES 3

int64_t cluster_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cluster_nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

bool wait_until(cluster_cond_fn *cond, void *ctx, int timeout_ms)
{
	int64_t end = cluster_mono_ms() + timeout_ms;

	while (cluster_mono_ms() < end) {
		if (cond(ctx))
			return true;
		cluster_nap_ms(POLL_MS);
	}
	return cond(ctx);
}

/* ---- set-up ---- */

/* A socket bound to 127.0.0.1:0; its port in *port. */
static int hold_port(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind: %s", strerror(errno));
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t len = strlen(text);

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, text, len), (ssize_t)len, "%s: %s", path, strerror(errno));
	cr_assert_eq(fchmod(fd, mode), 0);
	close(fd);
}

/* cluster.conf naming the first c->members nodes, replaced whole (a rename, as tools do). */
static void conf_write(const struct cluster *c)
{
	char conf[64 * CLUSTER_NODES_MAX + 128], tmp[200];
	size_t off = (size_t)snprintf(conf, sizeof(conf), "# written by tests/cluster/harness.c\n");

	for (uint32_t i = 0; i < c->members; i++)
		off += (size_t)snprintf(conf + off, sizeof(conf) - off, "%s\n",
		                        c->node[i].peer_addr);
	snprintf(tmp, sizeof(tmp), "%s.tmp", c->conf);
	write_file(tmp, conf, 0644);
	cr_assert_eq(rename(tmp, c->conf), 0, "rename %s: %s", tmp, strerror(errno));
}

void cluster_members_set(struct cluster *c, uint32_t members)
{
	cr_assert(members >= 1 && members <= c->n, "1..%u members", c->n);
	c->members = members;
	conf_write(c);
}

/* Picks every node's five ports and writes cluster.conf. */
static void pick_ports(struct cluster *c)
{
	int fds[5 * CLUSTER_NODES_MAX];

	for (uint32_t i = 0; i < c->n; i++) {
		struct cluster_node *nd = &c->node[i];

		fds[5 * i] = hold_port(&nd->port);
		fds[5 * i + 1] = hold_port(&nd->http_port);
		fds[5 * i + 2] = hold_port(&nd->peer_port);
		fds[5 * i + 3] = hold_port(&nd->nacos_port);
		/* its own: --grpc-port auto (Nacos + 1000) could be another node's port */
		fds[5 * i + 4] = hold_port(&nd->grpc_port);
		snprintf(nd->addr, sizeof(nd->addr), "127.0.0.1:%u", nd->port);
		snprintf(nd->peer_addr, sizeof(nd->peer_addr), "127.0.0.1:%u", nd->peer_port);
	}
	for (uint32_t i = 0; i < 5 * c->n; i++)
		close(fds[i]);
	conf_write(c);
}

void cluster_setup(struct cluster *c, const struct cluster_opts *o)
{
	uint8_t raw[32];
	char secret[2 * sizeof(raw) + 1];
	FILE *ur;

	cr_assert(o->n >= 1 && o->n <= CLUSTER_NODES_MAX, "1..%d nodes", CLUSTER_NODES_MAX);
	memset(c, 0, sizeof(*c));
	c->n = o->n;
	c->members = o->members ? o->members : o->n;
	cr_assert_leq(c->members, c->n);
	c->standalone = o->standalone;
	c->extra = o->extra;
	snprintf(c->dir, sizeof(c->dir), "/tmp/distro-cluster-XXXXXX");
	cr_assert_not_null(mkdtemp(c->dir), "mkdtemp: %s", strerror(errno));
	snprintf(c->conf, sizeof(c->conf), "%s/cluster.conf", c->dir);
	snprintf(c->secret, sizeof(c->secret), "%s/secret", c->dir);
	for (uint32_t i = 0; i < c->n; i++) {
		struct cluster_node *nd = &c->node[i];

		nd->extra = o->node_extra[i];
		snprintf(nd->port_file, sizeof(nd->port_file), "%s/node%u.port", c->dir, i);
		snprintf(nd->http_port_file, sizeof(nd->http_port_file), "%s/node%u.http", c->dir,
		         i);
		snprintf(nd->nacos_port_file, sizeof(nd->nacos_port_file), "%s/node%u.nacos",
		         c->dir, i);
		snprintf(nd->grpc_port_file, sizeof(nd->grpc_port_file), "%s/node%u.grpc", c->dir,
		         i);
		snprintf(nd->log, sizeof(nd->log), "%s/node%u.log", c->dir, i);
	}
	/* The secret: 32 random bytes as hex, readable by the owner only. */
	ur = fopen("/dev/urandom", "re");
	cr_assert_not_null(ur);
	cr_assert_eq(fread(raw, 1, sizeof(raw), ur), sizeof(raw));
	fclose(ur);
	for (size_t k = 0; k < sizeof(raw); k++)
		snprintf(secret + 2 * k, 3, "%02x", raw[k]);
	write_file(c->secret, secret, 0600); /* no newline, like tools/run's */
	pick_ports(c);
}

/* ---- processes ---- */

static int read_port(const char *path)
{
	FILE *f = fopen(path, "re");
	int port = 0;

	if (f == NULL)
		return 0;
	if (fscanf(f, "%d", &port) != 1)
		port = 0;
	fclose(f);
	return port;
}

static void exec_node(const struct cluster *c, uint32_t i)
{
	const struct cluster_node *nd = &c->node[i];
	char port[8], http_port[8], peer_port[8], nacos_port[8], grpc_port[8];
	const char *argv[100];
	int argc = 0, fd;

	snprintf(port, sizeof(port), "%u", nd->port);
	snprintf(http_port, sizeof(http_port), "%u", nd->http_port);
	snprintf(peer_port, sizeof(peer_port), "%u", nd->peer_port);
	snprintf(nacos_port, sizeof(nacos_port), "%u", nd->nacos_port);
	snprintf(grpc_port, sizeof(grpc_port), "%u", nd->grpc_port);
#define ARG(s) argv[argc++] = (s)
	ARG(DISTROD_BIN);
	ARG("--bind");
	ARG("127.0.0.1");
	ARG("--port");
	ARG(port);
	ARG("--port-file");
	ARG(nd->port_file);
	ARG("--http-bind");
	ARG("127.0.0.1");
	ARG("--http-port");
	ARG(http_port);
	ARG("--http-port-file");
	ARG(nd->http_port_file);
	ARG("--nacos-port"); /* its own: nodes side by side would share 8848 */
	ARG(nacos_port);
	ARG("--nacos-port-file");
	ARG(nd->nacos_port_file);
	ARG("--grpc-port");
	ARG(grpc_port);
	ARG("--grpc-port-file");
	ARG(nd->grpc_port_file);
	ARG("--workers");
	ARG("2");
	ARG("--log-level");
	ARG(getenv("DISTRO_CLUSTER_LOG_LEVEL") ? getenv("DISTRO_CLUSTER_LOG_LEVEL") : "info");
	if (!c->standalone) {
		ARG("--cluster-conf");
		ARG(c->conf);
		ARG("--cluster-secret-file");
		ARG(c->secret);
		ARG("--peer-port");
		ARG(peer_port);
		/* Short timers: a test sees failures and recoveries within seconds. */
		ARG("--peer-ping");
		ARG("50");
		ARG("--peer-suspect");
		ARG("300");
		ARG("--peer-down");
		ARG("900");
		ARG("--verify-interval");
		ARG("200");
		ARG("--startup-wait");
		ARG("1000");
	}
	for (int k = 0; c->extra && c->extra[k] && argc < 84; k++)
		ARG(c->extra[k]);
	for (int k = 0; nd->extra && nd->extra[k] && argc < 98; k++)
		ARG(nd->extra[k]);
	argv[argc] = NULL;
#undef ARG
	/* The node dies with the test; its output goes to its log; the file is the secret. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	unsetenv("DISTRO_CLUSTER_SECRET");
	fd = open(nd->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	execv(DISTROD_BIN, (char **)argv);
	_exit(127);
}

/* Forks node i; true once it listens, false if it exited first (then reaped). */
static bool try_start(struct cluster *c, uint32_t i)
{
	struct cluster_node *nd = &c->node[i];
	char mark[192];
	int status;

	cr_assert_eq(nd->pid, 0, "node %u already runs", i);
	unlink(nd->port_file);
	unlink(nd->http_port_file);
	unlink(nd->nacos_port_file);
	unlink(nd->grpc_port_file);
	snprintf(mark, sizeof(mark),
	         "=== harness: start %u of node %u (client %u, http %u, peer %u, nacos %u, "
	         "grpc %u)\n",
	         ++nd->starts, i, nd->port, nd->http_port, nd->peer_port, nd->nacos_port,
	         nd->grpc_port);
	{
		FILE *f = fopen(nd->log, "ae");

		if (f) {
			fputs(mark, f);
			fclose(f);
		}
	}
	nd->pid = fork();
	cr_assert_geq(nd->pid, 0, "fork: %s", strerror(errno));
	if (nd->pid == 0)
		exec_node(c, i);
	for (int64_t end = cluster_mono_ms() + START_MS; cluster_mono_ms() < end;
	     cluster_nap_ms(10)) {
		if (read_port(nd->port_file) > 0 && read_port(nd->http_port_file) > 0 &&
		    read_port(nd->nacos_port_file) > 0 && read_port(nd->grpc_port_file) > 0)
			return true;
		if (waitpid(nd->pid, &status, WNOHANG) == nd->pid) {
			nd->pid = 0;
			return false;
		}
	}
	cluster_dump_logs(c);
	cr_assert_fail("node %u did not listen within %d ms", i, START_MS);
	return false;
}

void cluster_node_start(struct cluster *c, uint32_t i)
{
	cr_assert_lt(i, c->n);
	if (!try_start(c, i)) {
		cluster_dump_logs(c);
		cr_assert_fail("node %u exited at start (log %s)", i, c->node[i].log);
	}
}

void cluster_start(struct cluster *c)
{
	for (int attempt = 1;; attempt++) {
		uint32_t i;

		for (i = 0; i < c->n; i++)
			if (!try_start(c, i))
				break;
		if (i == c->n)
			return;
		/* Most likely a port taken meanwhile: new ports for everyone, again. */
		for (uint32_t k = 0; k < c->n; k++)
			if (c->node[k].pid)
				cluster_node_kill(c, k);
		if (attempt == START_RETRIES) {
			cluster_dump_logs(c);
			cr_assert_fail("node %u exited at start, %d times (log %s)", i, attempt,
			               c->node[i].log);
		}
		pick_ports(c);
	}
}

bool cluster_node_running(const struct cluster *c, uint32_t i)
{
	return i < c->n && c->node[i].pid > 0;
}

static void drop_client(struct cluster_node *nd)
{
	if (nd->cl) {
		distro_close(nd->cl);
		nd->cl = NULL;
	}
}

int cluster_node_stop(struct cluster *c, uint32_t i)
{
	struct cluster_node *nd = &c->node[i];
	int status = 0;

	drop_client(nd);
	if (nd->pid <= 0)
		return 0;
	kill(nd->pid, SIGTERM);
	for (int64_t end = cluster_mono_ms() + STOP_MS; cluster_mono_ms() < end;
	     cluster_nap_ms(10)) {
		if (waitpid(nd->pid, &status, WNOHANG) == nd->pid) {
			nd->pid = 0;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
	}
	kill(nd->pid, SIGKILL);
	waitpid(nd->pid, NULL, 0);
	nd->pid = 0;
	return -1;
}

void cluster_node_kill(struct cluster *c, uint32_t i)
{
	struct cluster_node *nd = &c->node[i];

	drop_client(nd);
	if (nd->pid <= 0)
		return;
	kill(nd->pid, SIGKILL);
	waitpid(nd->pid, NULL, 0);
	nd->pid = 0;
}

void cluster_node_restart(struct cluster *c, uint32_t i)
{
	if (c->node[i].pid > 0)
		cluster_node_stop(c, i);
	cluster_node_start(c, i);
}

void cluster_teardown(struct cluster *c)
{
	char cmd[256], bad[128] = "";
	size_t used = 0;

	/*
	 * Every node still running must stop cleanly on SIGTERM: a sanitizer
	 * report (a leak at exit, an error on a thread the test never
	 * looked at) or a crash earlier in the test shows as its exit status,
	 * and would otherwise go unseen.
	 */
	for (uint32_t i = 0; i < c->n; i++) {
		int st = cluster_node_stop(c, i);

		if (st != 0 && used < sizeof(bad) - 24)
			used += (size_t)snprintf(bad + used, sizeof(bad) - used, " node %u: %d;", i,
			                         st);
	}
	if (bad[0])
		cluster_dump_logs(c);
	if (c->dir[0] == '\0')
		goto out;
	if (getenv("DISTRO_CLUSTER_KEEP")) {
		fprintf(stderr, "cluster: kept %s\n", c->dir);
		goto out;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
	if (strncmp(c->dir, "/tmp/distro-cluster-", 20) == 0 && system(cmd) != 0)
		fprintf(stderr, "cluster: could not remove %s\n", c->dir);
	c->dir[0] = '\0';
out:
	cr_assert(bad[0] == '\0', "nodes did not exit 0 on SIGTERM (a sanitizer report?):%s", bad);
}

void cluster_dump_logs(const struct cluster *c)
{
	for (uint32_t i = 0; i < c->n; i++) {
		char cmd[256];

		fprintf(stderr, "---- node %u (%s, peer %s, %s), last %d lines of %s ----\n", i,
		        c->node[i].addr, c->node[i].peer_addr,
		        c->node[i].pid > 0 ? "running" : "stopped", LOG_TAIL, c->node[i].log);
		fflush(stderr);
		snprintf(cmd, sizeof(cmd), "tail -n %d '%s' >&2", LOG_TAIL, c->node[i].log);
		if (system(cmd) != 0)
			fprintf(stderr, "(no log)\n");
	}
	fprintf(stderr, "---- (set DISTRO_CLUSTER_KEEP=1 to keep %s) ----\n", c->dir);
}

/* ---- clients ---- */

uint16_t cluster_member_id(const struct cluster *c, uint32_t i)
{
	static struct members ms;
	char text[64 * CLUSTER_NODES_MAX], err[128];
	size_t off = 0;

	if (c->standalone)
		return 0;
	for (uint32_t k = 0; k < c->members; k++)
		off += (size_t)snprintf(text + off, sizeof(text) - off, "%s\n",
		                        c->node[k].peer_addr);
	cr_assert_eq(members_parse(text, off, &ms, err, sizeof(err)), 0, "%s", err);
	for (uint32_t k = 0; k < ms.n; k++)
		if (strcmp(ms.m[k].addr, c->node[i].peer_addr) == 0)
			return ms.m[k].id;
	cr_assert_fail("node %u (%s) not in its own cluster.conf", i, c->node[i].peer_addr);
	return 0;
}

struct distro_client *cluster_connect(const struct cluster *c, uint32_t i)
{
	struct distro_client *cl;

	if (i >= c->n || distro_connect(c->node[i].addr, 2000, &cl) < 0)
		return NULL;
	return cl;
}

struct distro_client *cluster_client(struct cluster *c, uint32_t i)
{
	struct cluster_node *nd = &c->node[i];

	cr_assert_lt(i, c->n);
	if (nd->cl == NULL) {
		int rc = distro_connect(nd->addr, 2000, &nd->cl);

		cluster_assert(c, rc == 0, "connect to node %u (%s): %s", i, nd->addr,
		               distro_strerror(rc));
	}
	return nd->cl;
}

/* A connection to a running node, or NULL (for polls that must not assert). */
static struct distro_client *try_client(struct cluster *c, uint32_t i)
{
	struct cluster_node *nd = &c->node[i];

	if (nd->pid <= 0)
		return NULL;
	if (nd->cl == NULL && distro_connect(nd->addr, 1000, &nd->cl) < 0)
		nd->cl = NULL;
	return nd->cl;
}

int cluster_slot_map(struct cluster *c, uint32_t i, struct distro_slot_map *out)
{
	struct distro_client *cl = try_client(c, i);

	return cl ? distro_slot_map(cl, out) : -DISTRO_EIO;
}

typedef int write_fn(struct distro_client *, const struct distro_instance *, uint32_t, int *);

static int write_batches(struct cluster *c, uint32_t i, write_fn *fn,
                         const struct distro_instance *in, uint32_t n, int *results)
{
	struct distro_client *cl = try_client(c, i);

	if (cl == NULL)
		return -DISTRO_EIO;
	for (uint32_t off = 0; off < n; off += WRITE_BATCH) {
		uint32_t m = n - off < WRITE_BATCH ? n - off : WRITE_BATCH;
		int rc = fn(cl, in + off, m, results ? results + off : NULL);

		if (rc < 0)
			return rc;
	}
	return 0;
}

int cluster_register(struct cluster *c, uint32_t i, const struct distro_instance *in, uint32_t n,
                     int *results)
{
	return write_batches(c, i, distro_register, in, n, results);
}

int cluster_heartbeat(struct cluster *c, uint32_t i, const struct distro_instance *in, uint32_t n,
                      int *results)
{
	return write_batches(c, i, distro_heartbeat, in, n, results);
}

int cluster_deregister(struct cluster *c, uint32_t i, const struct distro_instance *in, uint32_t n,
                       int *results)
{
	return write_batches(c, i, distro_deregister, in, n, results);
}

int cluster_list_count(struct cluster *c, uint32_t i, const char *service)
{
	struct distro_client *cl = try_client(c, i);

	return cl ? distro_list(cl, NULL, NULL, service, NULL, NULL, NULL, NULL) : -DISTRO_EIO;
}

/* What a list returned: ip:port of each entry. */
struct seen {
	uint32_t n, cap;
	char (*key)[64];
};

static void seen_add(void *ctx, const struct distro_entry *e)
{
	struct seen *s = ctx;

	if (s->n < s->cap)
		snprintf(s->key[s->n++], sizeof(s->key[0]), "%s:%u", e->ip, e->port);
}

int cluster_listed(struct cluster *c, uint32_t i, const struct distro_instance *in, uint32_t n)
{
	struct distro_client *cl = try_client(c, i);
	struct seen s = { 0 };
	int rc, found = 0;

	if (n == 0)
		return 0;
	if (cl == NULL)
		return -DISTRO_EIO;
	s.cap = 4 * n + 64; /* the service may hold others too */
	s.key = calloc(s.cap, sizeof(s.key[0]));
	cr_assert_not_null(s.key);
	rc = distro_list(cl, in[0].ns, in[0].group, in[0].service, NULL, seen_add, &s, NULL);
	if (rc < 0) {
		free(s.key);
		return rc;
	}
	for (uint32_t k = 0; k < n; k++) {
		char want[64];

		snprintf(want, sizeof(want), "%s:%u", in[k].ip, in[k].port);
		for (uint32_t j = 0; j < s.n; j++)
			if (strcmp(s.key[j], want) == 0) {
				found++;
				break;
			}
	}
	free(s.key);
	return found;
}

/* ---- readiness and convergence ---- */

struct ready_ctx {
	struct cluster *c;
	uint32_t i;
	struct distro_slot_map *map;
};

static bool node_ready(void *arg)
{
	struct ready_ctx *r = arg;

	return cluster_slot_map(r->c, r->i, r->map) == 0 && r->map->n > 0 && r->map->ready;
}

bool cluster_wait_ready(struct cluster *c, uint32_t i, int timeout_ms)
{
	struct ready_ctx r = { c, i, malloc(sizeof(struct distro_slot_map)) };
	bool ok;

	cr_assert_not_null(r.map);
	ok = wait_until(node_ready, &r, timeout_ms);
	free(r.map);
	return ok;
}

bool cluster_converged(struct cluster *c, char *why, size_t why_len)
{
	struct distro_slot_map *maps = malloc(c->n * sizeof(*maps));
	char scratch[256];
	int first = -1;
	bool ok = false;

	cr_assert_not_null(maps);
	if (why == NULL) {
		why = scratch;
		why_len = sizeof(scratch);
	}
	snprintf(why, why_len, "no node running");
	for (uint32_t i = 0; i < c->n; i++) {
		struct distro_slot_map *m = &maps[i];
		int rc;

		if (!cluster_node_running(c, i))
			continue;
		if ((rc = cluster_slot_map(c, i, m)) < 0) {
			snprintf(why, why_len, "node %u: SLOT_MAP: %s", i, distro_strerror(rc));
			goto out;
		}
		if (i >= c->members)
			continue; /* not in cluster.conf: not a member */
		if (m->n != c->members || !m->ready) {
			snprintf(why, why_len, "node %u: %u members, %s", i, m->n,
			         m->ready ? "READY" : "not READY");
			goto out;
		}
		for (uint32_t k = 0; k < c->members; k++) {
			uint16_t id = cluster_member_id(c, k);
			const struct distro_member *mm = distro_slot_map_member(m, id);
			bool up = mm && mm->health == DISTRO_UP && mm->ready;

			if (mm == NULL) {
				snprintf(why, why_len, "node %u: member %u missing", i, id);
				goto out;
			}
			if (cluster_node_running(c, k) != up) {
				snprintf(why, why_len, "node %u sees node %u (member %u) %s%s", i,
				         k, id,
				         mm->health == DISTRO_UP           ? "UP"
				         : mm->health == DISTRO_SUSPICIOUS ? "SUSPICIOUS"
				                                           : "DOWN",
				         mm->ready ? " READY" : " not READY");
				goto out;
			}
			if (!cluster_node_running(c, k) && distro_slot_map_count(m, id) > 0) {
				snprintf(why, why_len,
				         "node %u: stopped node %u still owns %u slots", i, k,
				         distro_slot_map_count(m, id));
				goto out;
			}
		}
		if (distro_slot_map_count(m, 0) > 0) {
			snprintf(why, why_len, "node %u: %u slots unowned", i,
			         distro_slot_map_count(m, 0));
			goto out;
		}
		if (first < 0) {
			first = (int)i;
		} else if (memcmp(m->owners, maps[first].owners, sizeof(m->owners)) != 0) {
			snprintf(why, why_len, "nodes %d and %u disagree on owners", first, i);
			goto out;
		}
	}
	ok = first >= 0;
out:
	free(maps);
	return ok;
}

static bool converged(void *arg)
{
	return cluster_converged(arg, NULL, 0);
}

bool cluster_wait_converged(struct cluster *c, int timeout_ms)
{
	return wait_until(converged, c, timeout_ms);
}

/* ---- HTTP ---- */

int cluster_http_get(const struct cluster *c, uint32_t i, const char *path, char **body)
{
	return cluster_http_req(c->node[i].http_port, "GET", path, body);
}

int cluster_nacos(const struct cluster *c, uint32_t i, const char *method, const char *target,
                  char **body)
{
	return cluster_http_req(c->node[i].nacos_port, method, target, body);
}

int cluster_http_req(uint16_t port, const char *method, const char *target, char **body)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 5 };
	size_t len = 0, cap = 1 << 16;
	char req[8192], *buf = malloc(cap), *hend;
	int fd, status = 0, n;

	cr_assert_not_null(buf);
	*body = NULL;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		goto out;
	n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
	             method, target);
	cr_assert_lt((size_t)n, sizeof(req));
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
		goto out;
	for (;;) {
		ssize_t r;

		if (len + 1 == cap) {
			char *p = realloc(buf, cap *= 2);

			cr_assert_not_null(p);
			buf = p;
		}
		r = recv(fd, buf + len, cap - len - 1, 0);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	hend = strstr(buf, "\r\n\r\n");
	if (hend == NULL || sscanf(buf, "HTTP/1.1 %d", &status) != 1) {
		status = 0;
		goto out;
	}
	*body = strdup(hend + 4);
out:
	close(fd);
	free(buf);
	return status;
}

/* ---- instances ---- */

void cluster_instances(struct distro_instance *in, char (*ips)[16], uint32_t n, const char *service)
{
	cr_assert_leq(n, 65536, "distinct addresses for up to 65536 instances");
	for (uint32_t i = 0; i < n; i++) {
		uint32_t h = (i + 1) * 2654435761u;

		/* 10.<i high>.<i low>.<hash>: distinct, and the hash spreads the slots. */
		snprintf(ips[i], sizeof(ips[i]), "10.%u.%u.%u", (i >> 8) & 255, i & 255,
		         1 + (h >> 24) % 254);
		distro_instance_init(&in[i]);
		in[i].service = service;
		in[i].ip = ips[i];
		in[i].port = (uint16_t)(8000 + (h >> 8) % 2000);
	}
}

unsigned long long cluster_stat(struct cluster *c, uint32_t i, const char *name)
{
	static char buf[16384];
	char key[96];
	const char *p;

	cr_assert_gt(distro_stats(cluster_client(c, i), buf, sizeof(buf)), 0, "STATS of node %u",
	             i);
	snprintf(key, sizeof(key), "\n%s ", name);
	p = strstr(buf, key);
	cr_assert_not_null(p, "no %s in node %u's STATS", name, i);
	return strtoull(p + strlen(key), NULL, 10);
}

struct listed_wait {
	struct cluster *c;
	uint32_t node;
	const struct distro_instance *in;
	uint32_t n;
	int want, last;
};

static bool listed_is(void *arg)
{
	struct listed_wait *x = arg;

	x->last = cluster_listed(x->c, x->node, x->in, x->n);
	return x->last == x->want;
}

bool cluster_wait_listed(struct cluster *c, uint32_t i, const struct distro_instance *in,
                         uint32_t n, int want, int timeout_ms, int *last)
{
	struct listed_wait x = { c, i, in, n, want, 0 };
	bool ok = wait_until(listed_is, &x, timeout_ms);

	if (last)
		*last = x.last;
	return ok;
}

bool cluster_log_has(const struct cluster *c, uint32_t i, const char *text)
{
	static char buf[(1 << 20) + 1];
	size_t keep = 0, len = strlen(text), n;
	FILE *f = fopen(c->node[i].log, "re");
	bool found = false;

	cr_assert(len > 0 && len < 4096, "a log needle of 1 byte to 4 KiB");
	if (f == NULL)
		return false;
	/* The whole log, a MiB at a time; each read keeps the last len-1 bytes of the one before.
	 */
	while (!found && (n = fread(buf + keep, 1, sizeof(buf) - 1 - keep, f)) > 0) {
		n += keep;
		found = memmem(buf, n, text, len) != NULL;
		keep = n < len - 1 ? n : len - 1;
		memmove(buf, buf + n - keep, keep);
	}
	fclose(f);
	return found;
}

struct log_wait {
	const struct cluster *c;
	uint32_t i;
	const char *text;
};

static bool log_wait_has(void *ctx)
{
	const struct log_wait *w = ctx;

	return cluster_log_has(w->c, w->i, w->text);
}

bool cluster_wait_log(const struct cluster *c, uint32_t i, const char *text, int timeout_ms)
{
	struct log_wait w = { c, i, text };

	return wait_until(log_wait_has, &w, timeout_ms);
}
