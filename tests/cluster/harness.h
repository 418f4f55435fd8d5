/*
 * harness.h - real distrod clusters for tests: N processes on loopback.
 *
 * cluster_setup picks free ports (binding port 0, for the client, HTTP,
 * peer, Nacos and gRPC port of every node, all held open until every one is picked
 * so no two collide), writes cluster.conf (127.0.0.1:<peer port> per node) and a
 * random secret (mode 600) into a fresh directory under /tmp, and
 * cluster_start runs one distrod per node:
 *
 *   distrod --bind 127.0.0.1 --port P --port-file F --http-bind 127.0.0.1
 *           --http-port H --http-port-file G --nacos-port N --nacos-port-file M
 *           --grpc-port R --grpc-port-file T --workers 2 --cluster-conf C
 *           --cluster-secret-file S --peer-port Q --peer-ping 50
 *           --peer-suspect 300 --peer-down 900 --verify-interval 200
 *           --startup-wait 1000 [flags for every node] [flags for this node]
 *
 * (later flags win, so a test overrides a timer by passing it again). Each
 * node's stderr goes to node<i>.log in that directory, appended across
 * restarts; a node keeps its ports across kill and restart. The directory
 * is removed by cluster_teardown unless DISTRO_CLUSTER_KEEP is set in the
 * environment; cluster_assert prints the tail of every log before failing,
 * so a failed run says what the nodes saw.
 *
 * Indexes: nodes are 0..n-1 in the harness. Member ids (SLOT_MAP, /cluster)
 * number cluster.conf's addresses in sorted order and need not match;
 * cluster_member_id maps one to the other.
 *
 * Threads: the cluster_* helpers that talk to a node use one cached client
 * per node and belong to the test's own thread. Another thread makes its
 * own connections with cluster_connect. Every wait is bounded; none
 * sleeps as an assertion.
 */
#ifndef DISTRO_TESTS_CLUSTER_HARNESS_H
#define DISTRO_TESTS_CLUSTER_HARNESS_H

#include "distro/client.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CLUSTER_NODES_MAX 8

struct cluster_node {
	pid_t pid; /* 0: not running */
	uint16_t port, http_port, peer_port, nacos_port, grpc_port;
	char addr[32];      /* client address, 127.0.0.1:<port> */
	char peer_addr[32]; /* its line in cluster.conf */
	char port_file[192], http_port_file[192], nacos_port_file[192], grpc_port_file[192];
	char log[192];
	const char *const *extra; /* this node's own flags, NULL-terminated (may be NULL) */
	struct distro_client *cl; /* the test thread's connection, made on first use */
	uint32_t starts;
};

struct cluster {
	uint32_t n;
	uint32_t members; /* cluster.conf names nodes 0..members-1 (cluster_members_set) */
	bool standalone;  /* no cluster.conf: plain distrod (for standalone checks) */
	char dir[128];
	char conf[192];
	char secret[192];
	const char *const *extra; /* flags for every node, NULL-terminated (may be NULL) */
	struct cluster_node node[CLUSTER_NODES_MAX];
};

struct cluster_opts {
	uint32_t n;       /* 1..CLUSTER_NODES_MAX */
	uint32_t members; /* nodes cluster.conf names at first (0: all n) */
	bool standalone;
	const char *const *extra;                         /* every node */
	const char *const *node_extra[CLUSTER_NODES_MAX]; /* node i only */
};

/* ---- life cycle ---- */

/* Rewrites cluster.conf (a rename) to name nodes 0..members-1: the running nodes reload it. */
void cluster_members_set(struct cluster *c, uint32_t members);

/* Ports, directory, cluster.conf and secret; starts nothing. Asserts on failure. */
void cluster_setup(struct cluster *c, const struct cluster_opts *o);

/* Starts every node (each listening on its client and HTTP ports on return). */
void cluster_start(struct cluster *c);

/* Starts node i with its ports; returns once its port files are written. Asserts. */
void cluster_node_start(struct cluster *c, uint32_t i);

/* SIGTERM and wait (10 s, then SIGKILL): the exit status, 0 for a clean stop, -1 killed. */
int cluster_node_stop(struct cluster *c, uint32_t i);

/* SIGKILL and reap: a crash, nothing flushed. */
void cluster_node_kill(struct cluster *c, uint32_t i);

/* Stops node i if it runs, then starts it again with the same ports and files. */
void cluster_node_restart(struct cluster *c, uint32_t i);

bool cluster_node_running(const struct cluster *c, uint32_t i);

/*
 * Stops every node, closes the clients, removes the directory (unless
 * DISTRO_CLUSTER_KEEP); fails the test when a node did not exit 0.
 */
void cluster_teardown(struct cluster *c);

/* Prints the last lines of every node's log to stderr. */
void cluster_dump_logs(const struct cluster *c);

/* Fails the test after printing every node's log tail. */
#define cluster_assert(c, cond, ...)                                                               \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			cluster_dump_logs(c);                                                      \
			cr_assert_fail(__VA_ARGS__);                                               \
		}                                                                                  \
	} while (0)

/* ---- waiting ---- */

typedef bool cluster_cond_fn(void *ctx);

/*
 * Polls cond(ctx) every 15 ms until it is true (returns true) or
 * timeout_ms passes (returns false, after one last look). Bounded.
 */
bool wait_until(cluster_cond_fn *cond, void *ctx, int timeout_ms);

/* Node i's SLOT_MAP says it is READY (and clustered), within timeout_ms. */
bool cluster_wait_ready(struct cluster *c, uint32_t i, int timeout_ms);

/*
 * Within timeout_ms, every running node is READY and its map agrees with
 * every other running node's: running members UP and READY, stopped ones
 * not UP and owning nothing, every slot owned, the same owner for each
 * slot everywhere. The check is cluster_converged.
 */
bool cluster_wait_converged(struct cluster *c, int timeout_ms);

/* One look at the convergence above; on false, why in why (may be NULL). */
bool cluster_converged(struct cluster *c, char *why, size_t why_len);

/* ---- talking to node i ---- */

/* The member id of node i (cluster.conf numbering); 0 when standalone. */
uint16_t cluster_member_id(const struct cluster *c, uint32_t i);

/* The test thread's cached client for node i (connects on first use). Asserts. */
struct distro_client *cluster_client(struct cluster *c, uint32_t i);

/* A new connection to node i for another thread (close with distro_close); NULL on failure. */
struct distro_client *cluster_connect(const struct cluster *c, uint32_t i);

/* SLOT_MAP through node i. 0 or a negative code. */
int cluster_slot_map(struct cluster *c, uint32_t i, struct distro_slot_map *out);

/*
 * Writes through node i in batches of at most 256; results (may be NULL)
 * gets each item's outcome. 0 when every frame was answered, or the first
 * call's negative code.
 */
int cluster_register(struct cluster *c, uint32_t i, const struct distro_instance *in, uint32_t n,
                     int *results);
int cluster_heartbeat(struct cluster *c, uint32_t i, const struct distro_instance *in, uint32_t n,
                      int *results);
int cluster_deregister(struct cluster *c, uint32_t i, const struct distro_instance *in, uint32_t n,
                       int *results);

/* How many instances node i lists for service (default ns and group), or a negative code. */
int cluster_list_count(struct cluster *c, uint32_t i, const char *service);

/*
 * How many of in[0..n) (all of one service) node i lists, or a negative
 * code when the list failed.
 */
int cluster_listed(struct cluster *c, uint32_t i, const struct distro_instance *in, uint32_t n);

/*
 * GET path on node i's HTTP port: the status (0 when no answer) and the
 * body, NUL-terminated, in *body (free it).
 */
int cluster_http_get(const struct cluster *c, uint32_t i, const char *path, char **body);

/*
 * method target (a Nacos API path with its query) on node i's Nacos port
 * (--nacos-port): the status (0 when no answer) and the body,
 * NUL-terminated, in *body (free it).
 */
int cluster_nacos(const struct cluster *c, uint32_t i, const char *method, const char *target,
                  char **body);

/* One request without a body on 127.0.0.1:port, answered then closed; as above. */
int cluster_http_req(uint16_t port, const char *method, const char *target, char **body);

/*
 * Within timeout_ms node i lists exactly `want` of in[0..n) (one service);
 * *last (may be NULL) gets the last count seen. Bounded polling.
 */
bool cluster_wait_listed(struct cluster *c, uint32_t i, const struct distro_instance *in,
                         uint32_t n, int want, int timeout_ms, int *last);

/* A counter from node i's STATS (e.g. "peer_fwd_items", "store_instances"). Asserts. */
unsigned long long cluster_stat(struct cluster *c, uint32_t i, const char *name);

/* ---- time ---- */

/* Node i's log holds text (under 4 KiB); within timeout_ms. */
bool cluster_log_has(const struct cluster *c, uint32_t i, const char *text);
bool cluster_wait_log(const struct cluster *c, uint32_t i, const char *text, int timeout_ms);

int64_t cluster_mono_ms(void); /* CLOCK_MONOTONIC, ms */
void cluster_nap_ms(int ms);   /* sleeps ms (only between polls, never as an assertion) */

/* ---- instances ---- */

/*
 * n instances of service with distinct, varied IPv4 addresses (10.x.y.z)
 * and ports, spread over the slots; ips holds their text (n entries).
 */
void cluster_instances(struct distro_instance *in, char (*ips)[16], uint32_t n,
                       const char *service);

#endif
