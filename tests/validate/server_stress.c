/*
 * A validate program (plain main, so it runs in the TSan build too): starts
 * the real distrod of this build with two workers, drives it from several
 * client threads at once (batched registers and heartbeats across services
 * of both shards, lists, subscriptions), checks every answer, then stops it
 * with SIGTERM and requires exit status 0. In the TSan build a data race in
 * the server makes it exit non-zero (TSAN_OPTIONS exitcode), so the run fails.
 */
#include "distro/client.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define THREADS 4
#define ROUNDS  150
#define BATCH   32

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "server_stress: %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static char addr[64];
static atomic_ulong pushes, ops;

static void on_push(void *ctx, uint32_t id, uint64_t rev, const struct distro_entry *e, uint32_t n)
{
	(void)ctx;
	(void)id;
	(void)rev;
	(void)e;
	(void)n;
	atomic_fetch_add(&pushes, 1);
}

static void *client_main(void *arg)
{
	int t = (int)(intptr_t)arg;
	struct distro_client *c, *watcher;
	static _Thread_local struct distro_instance b[BATCH];
	static _Thread_local char svcs[8][32], ips[BATCH][32];
	int res[BATCH];
	uint32_t id;

	CHECK(distro_connect(addr, 5000, &c) == 0, "connect");
	CHECK(distro_connect(addr, 5000, &watcher) == 0, "connect");
	for (int i = 0; i < 8; i++)
		snprintf(svcs[i], sizeof(svcs[i]), "stress-%d-%d", t, i);
	CHECK(distro_subscribe(watcher, NULL, NULL, svcs[0], NULL, on_push, NULL, &id) == 0,
	      "subscribe");
	for (int i = 0; i < BATCH; i++) {
		snprintf(ips[i], sizeof(ips[i]), "10.%d.%d.%d", t + 1, i / 200, i % 200 + 1);
		distro_instance_init(&b[i]);
		b[i].service = svcs[i % 8];
		b[i].ip = ips[i];
		b[i].port = 80;
	}
	for (int r = 0; r < ROUNDS; r++) {
		int rc;

		for (int i = 0; i < BATCH; i++)
			b[i].weight = 1 + (r % 3);
		/* After a deregister round, register again: a beat right after is refused (ops.c).
		 */
		rc = r % 2 && r % 25 != 0 ? distro_heartbeat(c, b, BATCH, res)
		                          : distro_register(c, b, BATCH, res);
		CHECK(rc == 0, "write: %s", distro_strerror(rc));
		for (int i = 0; i < BATCH; i++)
			CHECK(res[i] >= 0, "item %d: %s", i, distro_strerror(res[i]));
		rc = distro_list(c, NULL, NULL, svcs[r % 8], NULL, NULL, NULL, NULL);
		CHECK(rc == BATCH / 8, "list %s: %d", svcs[r % 8], rc);
		if (r % 25 == 24)
			CHECK(distro_deregister(c, b, BATCH / 2, res) == 0, "deregister");
		distro_poll(watcher, 0);
		atomic_fetch_add(&ops, BATCH + 1);
	}
	CHECK(distro_unsubscribe(watcher, id) == 0, "unsubscribe");
	distro_close(watcher);
	distro_close(c);
	return NULL;
}

int main(void)
{
	char port_file[128];
	pthread_t th[THREADS];
	pid_t pid;
	int status, port = 0;

	snprintf(port_file, sizeof(port_file), "/tmp/distrod-stress-%d.port", getpid());
	unlink(port_file);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setenv("TSAN_OPTIONS", "halt_on_error=1:exitcode=66", 1);
		execl(DISTROD_BIN, DISTROD_BIN, "--bind", "127.0.0.1", "--port", "0", "--port-file",
		      port_file, "--nacos-port", "0", "--http-port", "0", "--workers", "2",
		      "--log-level", "warn", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 1000 && port == 0; i++) {
		FILE *f = fopen(port_file, "r");

		if (f) {
			if (fscanf(f, "%d", &port) != 1)
				port = 0;
			fclose(f);
		}
		if (port == 0)
			usleep(10000);
		CHECK(waitpid(pid, &status, WNOHANG) == 0, "distrod exited at start");
	}
	CHECK(port > 0, "distrod did not start");
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, client_main, (void *)(intptr_t)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	kill(pid, SIGTERM);
	CHECK(waitpid(pid, &status, 0) == pid, "wait");
	unlink(port_file);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "distrod exited with status %d (a sanitizer report?)",
	      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	CHECK(atomic_load(&pushes) >= THREADS, "subscribers got pushes (%lu)",
	      atomic_load(&pushes));
	printf("server_stress: ok (%lu operations, %lu pushes)\n", atomic_load(&ops),
	       atomic_load(&pushes));
	return 0;
}
