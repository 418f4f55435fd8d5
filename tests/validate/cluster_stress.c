/*
 * A validate program (plain main, so it runs in the TSan build too): a
 * 3-node cluster of this build's distrod, driven from a client thread per
 * node (batched registers, heartbeats and deregisters through every node,
 * so most items are forwarded and every change is synced), while another
 * thread keeps reading SLOT_MAP and STATS (the peer thread's state, read by
 * workers). One node is killed and restarted mid-way (links lost, the
 * startup load, takeovers). At the end every node must list the same
 * instances, and every node must stop on SIGTERM with status 0: in the
 * TSan build a data race between the peer thread and the workers makes a
 * node exit non-zero (TSAN_OPTIONS exitcode), so the run fails.
 */
#include "distro/client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NODES   3
#define THREADS NODES
#define ROUNDS  120
#define BATCH   32

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "cluster_stress: %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static char dir[96], conf[128], secret[128];
static uint16_t cport[NODES], pport[NODES];
static char addr[NODES][32];
static pid_t pid[NODES];
static atomic_int stop_readers;
static atomic_ulong ops, maps;

static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port;

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind");
	getsockname(fd, (struct sockaddr *)&a, &len);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void start(int i)
{
	char cp[8], pp[8], log[160];

	snprintf(cp, sizeof(cp), "%u", cport[i]);
	snprintf(pp, sizeof(pp), "%u", pport[i]);
	snprintf(log, sizeof(log), "%s/node%d.log", dir, i);
	pid[i] = fork();
	CHECK(pid[i] >= 0, "fork");
	if (pid[i] == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setenv("TSAN_OPTIONS", "halt_on_error=1:exitcode=66", 1);
		freopen(log, "a", stderr);
		execl(DISTROD_BIN, DISTROD_BIN, "--bind", "127.0.0.1", "--port", cp, "--nacos-port",
		      "0", "--http-port", "0", "--workers", "2", "--log-level", "warn",
		      "--cluster-conf", conf, "--cluster-secret-file", secret, "--peer-port", pp,
		      "--peer-ping", "50", "--peer-suspect", "500", "--peer-down", "1500",
		      "--verify-interval", "200", "--startup-wait", "1500", (char *)NULL);
		_exit(127);
	}
}

static struct distro_client *connect_to(int i)
{
	struct distro_client *c = NULL;

	for (int t = 0; t < 300; t++) {
		if (distro_connect(addr[i], 2000, &c) == 0)
			return c;
		usleep(20000);
	}
	CHECK(0, "cannot connect to node %d", i);
	return NULL;
}

static bool ready(int i)
{
	static _Thread_local struct distro_slot_map m;
	struct distro_client *c = NULL;
	bool r;

	if (distro_connect(addr[i], 1000, &c) != 0)
		return false;
	r = distro_slot_map(c, &m) == 0 && m.ready;
	distro_close(c);
	return r;
}

static void wait_ready(int i)
{
	for (int t = 0; t < 1500; t++) {
		if (ready(i))
			return;
		usleep(20000);
	}
	CHECK(0, "node %d never READY", i);
}

static void *writer_main(void *arg)
{
	int t = (int)(intptr_t)arg;
	static _Thread_local struct distro_instance b[BATCH];
	static _Thread_local char ips[BATCH][32];
	struct distro_client *c = connect_to(t);
	int res[BATCH];

	for (int i = 0; i < BATCH; i++) {
		snprintf(ips[i], sizeof(ips[i]), "10.%d.%d.%d", t + 1, i, (i * 37) % 250 + 1);
		distro_instance_init(&b[i]);
		b[i].service = i % 2 ? "stress-a" : "stress-b";
		b[i].ip = ips[i];
		b[i].port = (uint16_t)(1000 + i);
	}
	for (int r = 0; r < ROUNDS; r++) {
		int rc;

		for (int i = 0; i < BATCH; i++)
			b[i].weight = 1 + (r % 3);
		if (r % 10 == 9)
			rc = distro_deregister(c, b, BATCH / 4, res);
		else
			rc = r % 2 ? distro_heartbeat(c, b, BATCH, res)
			           : distro_register(c, b, BATCH, res);
		if (rc < 0) { /* our node was the one restarted: reconnect, as a client does */
			distro_close(c);
			c = connect_to(t);
			continue;
		}
		(void)distro_list(c, NULL, NULL, "stress-a", NULL, NULL, NULL, NULL);
		atomic_fetch_add(&ops, BATCH);
	}
	/* Leave every instance registered, so the lists can be compared. */
	for (int tries = 0; tries < 50; tries++) {
		bool all = distro_register(c, b, BATCH, res) == 0;

		for (int i = 0; all && i < BATCH; i++)
			all = res[i] >= 0;
		if (all)
			break;
		usleep(100000);
	}
	distro_close(c);
	return NULL;
}

static void *reader_main(void *arg)
{
	static struct distro_slot_map m;
	char stats[16384];

	(void)arg;
	while (!atomic_load(&stop_readers)) {
		for (int i = 0; i < NODES; i++) {
			struct distro_client *c = NULL;

			if (distro_connect(addr[i], 1000, &c) != 0)
				continue;
			if (distro_slot_map(c, &m) == 0)
				atomic_fetch_add(&maps, 1);
			(void)distro_stats(c, stats, sizeof(stats));
			distro_close(c);
		}
		usleep(5000);
	}
	return NULL;
}

static int listed(int i, const char *svc)
{
	struct distro_client *c = connect_to(i);
	int n = distro_list(c, NULL, NULL, svc, NULL, NULL, NULL, NULL);

	distro_close(c);
	return n;
}

int main(void)
{
	pthread_t w[THREADS], rd;
	FILE *f;
	int status;

	snprintf(dir, sizeof(dir), "/tmp/distro-cluster-stress-%d", getpid());
	mkdir(dir, 0700);
	snprintf(conf, sizeof(conf), "%s/cluster.conf", dir);
	snprintf(secret, sizeof(secret), "%s/secret", dir);
	f = fopen(secret, "w");
	CHECK(f != NULL, "secret");
	fprintf(f, "cluster-stress-secret-%d", getpid());
	fclose(f);
	f = fopen(conf, "w");
	CHECK(f != NULL, "conf");
	for (int i = 0; i < NODES; i++) {
		cport[i] = free_port();
		pport[i] = free_port();
		snprintf(addr[i], sizeof(addr[i]), "127.0.0.1:%u", cport[i]);
		fprintf(f, "127.0.0.1:%u\n", pport[i]);
	}
	fclose(f);
	for (int i = 0; i < NODES; i++)
		start(i);
	for (int i = 0; i < NODES; i++)
		wait_ready(i);
	pthread_create(&rd, NULL, reader_main, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&w[i], NULL, writer_main, (void *)(intptr_t)i);
	/* Mid-way, node 2 crashes and comes back: lost links, a load, takeovers. */
	usleep(1500000);
	kill(pid[2], SIGKILL);
	waitpid(pid[2], NULL, 0);
	usleep(300000);
	start(2);
	wait_ready(2);
	for (int i = 0; i < THREADS; i++)
		pthread_join(w[i], NULL);
	/* Converged: every node lists the same instances (bounded wait). */
	bool same = false;

	for (int t = 0; t < 300 && !same; t++) {
		int a0 = listed(0, "stress-a"), b0 = listed(0, "stress-b");

		same = a0 == BATCH / 2 * THREADS && b0 == BATCH / 2 * THREADS;
		for (int i = 1; i < NODES && same; i++)
			same = listed(i, "stress-a") == a0 && listed(i, "stress-b") == b0;
		if (!same)
			usleep(50000);
	}
	atomic_store(&stop_readers, 1);
	pthread_join(rd, NULL);
	CHECK(same, "the nodes list the same %d instances per service", BATCH / 2 * THREADS);
	for (int i = 0; i < NODES; i++)
		kill(pid[i], SIGTERM);
	for (int i = 0; i < NODES; i++) {
		CHECK(waitpid(pid[i], &status, 0) == pid[i], "wait");
		if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
			char cmd[256];

			snprintf(cmd, sizeof(cmd), "tail -n 60 %s/node%d.log 1>&2", dir, i);
			(void)!system(cmd);
		}
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "node %d exited with status %d (a sanitizer report?)", i,
		      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	}
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)!system(cmd);
	printf("cluster_stress: ok (%lu items, %lu slot maps read)\n", atomic_load(&ops),
	       atomic_load(&maps));
	return 0;
}
