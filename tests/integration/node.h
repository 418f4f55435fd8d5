/*
 * node.h - start and stop a real distrod for a test: ephemeral loopback
 * port (learned through --port-file), bounded waits, no sleeps as asserts.
 */
#ifndef DISTRO_TESTS_NODE_H
#define DISTRO_TESTS_NODE_H

#include "distro/client.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct node {
	pid_t pid;
	uint16_t port;
	uint16_t nacos_port; /* the Nacos HTTP API's port (--nacos-port 0) */
	uint16_t grpc_port;  /* the Nacos gRPC port (--grpc-port auto follows --nacos-port 0) */
	char addr[64];
	char port_file[128];
	char nacos_port_file[128];
	char grpc_port_file[128];
};

static inline int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void nap_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * Waits (bounded, 5 s) until process pid is stopped (SIGSTOP: state 'T' in
 * /proc/pid/stat) or, with stopped false, running again.
 */
static inline void node_wait_stopped(pid_t pid, bool stopped)
{
	char path[64], buf[512], *p;
	int64_t end = now_ms() + 5000;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (;;) {
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

		if (f)
			fclose(f);
		buf[n] = 0;
		p = strrchr(buf, ')');
		if (p && p[1] == ' ' && ((p[2] == 'T') == stopped))
			return;
		cr_assert_lt(now_ms(), end, "distrod %s within 5 s",
		             stopped ? "stopped" : "resumed");
		nap_ms(1);
	}
}

/* Starts distrod with the given extra flags (NULL-terminated). */
static inline void node_start(struct node *n, const char *const *extra)
{
	const char *argv[64];
	int argc = 0;
	FILE *f;

	memset(n, 0, sizeof(*n));
	snprintf(n->port_file, sizeof(n->port_file), "/tmp/distrod-test-%d-%ld.port", getpid(),
	         (long)now_ms());
	unlink(n->port_file);
	snprintf(n->nacos_port_file, sizeof(n->nacos_port_file), "/tmp/distrod-test-%d-%ld.nacos",
	         getpid(), (long)now_ms());
	unlink(n->nacos_port_file);
	snprintf(n->grpc_port_file, sizeof(n->grpc_port_file), "/tmp/distrod-test-%d-%ld.grpc",
	         getpid(), (long)now_ms());
	unlink(n->grpc_port_file);
	argv[argc++] = DISTROD_BIN;
	argv[argc++] = "--bind";
	argv[argc++] = "127.0.0.1";
	argv[argc++] = "--port";
	argv[argc++] = "0";
	argv[argc++] = "--port-file";
	argv[argc++] = n->port_file;
	/*
	 * Tests run side by side: no fixed ports, the Nacos API's (default
	 * 8848) and the admin port's included. A test of the Nacos API learns
	 * its port with --nacos-port-file in extra.
	 */
	argv[argc++] = "--nacos-port";
	argv[argc++] = "0";
	argv[argc++] = "--log-level";
	argv[argc++] = "warn";
	argv[argc++] = "--http-bind";
	argv[argc++] = "127.0.0.1";
	argv[argc++] = "--http-port";
	argv[argc++] = "0";
	/* The Nacos port defaults to 8848, which SO_REUSEPORT would let two nodes share. */
	argv[argc++] = "--nacos-port";
	argv[argc++] = "0";
	argv[argc++] = "--nacos-port-file";
	argv[argc++] = n->nacos_port_file;
	argv[argc++] = "--grpc-port-file";
	argv[argc++] = n->grpc_port_file;
	for (int i = 0; extra && extra[i] && argc < 62; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;
	n->pid = fork();
	cr_assert_geq(n->pid, 0);
	if (n->pid == 0) {
		/* A test that dies must not leave its node running. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv(DISTROD_BIN, (char **)argv);
		_exit(127);
	}
	for (int64_t end = now_ms() + 10000; now_ms() < end; nap_ms(10)) {
		int port = 0;

		f = fopen(n->port_file, "r");
		if (f) {
			if (fscanf(f, "%d", &port) != 1)
				port = 0;
			fclose(f);
		}
		if (port > 0) {
			n->port = (uint16_t)port;
			snprintf(n->addr, sizeof(n->addr), "127.0.0.1:%d", port);
			/* distrod writes its --port-file last: the Nacos port's is there by now */
			f = fopen(n->nacos_port_file, "r");
			if (f) {
				if (fscanf(f, "%d", &port) == 1 && port > 0)
					n->nacos_port = (uint16_t)port;
				fclose(f);
			}
			f = fopen(n->grpc_port_file, "r");
			if (f) {
				if (fscanf(f, "%d", &port) == 1 && port > 0)
					n->grpc_port = (uint16_t)port;
				fclose(f);
			}
			return;
		}
		cr_assert_eq(waitpid(n->pid, NULL, WNOHANG), 0, "distrod exited at start");
	}
	cr_assert_fail("distrod did not start within 10 s");
}

/* SIGTERM, and the exit status (0 for a clean stop), waiting at most 10 s. */
static inline int node_stop(struct node *n)
{
	int status = 0;

	if (n->pid <= 0)
		return 0;
	kill(n->pid, SIGTERM);
	for (int64_t end = now_ms() + 10000; now_ms() < end; nap_ms(10)) {
		if (waitpid(n->pid, &status, WNOHANG) == n->pid) {
			n->pid = 0;
			unlink(n->port_file);
			unlink(n->nacos_port_file);
			unlink(n->grpc_port_file);
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
	}
	kill(n->pid, SIGKILL);
	waitpid(n->pid, NULL, 0);
	n->pid = 0;
	return -1;
}

/* An instance with the client defaults, for tests. */
static inline struct distro_instance inst(const char *svc, const char *ip, uint16_t port)
{
	struct distro_instance i;

	distro_instance_init(&i);
	i.service = svc;
	i.ip = ip;
	i.port = port;
	return i;
}

static inline struct distro_client *node_client(const struct node *n)
{
	struct distro_client *c;

	cr_assert_eq(distro_connect(n->addr, 3000, &c), 0, "connect %s", n->addr);
	return c;
}

#endif
