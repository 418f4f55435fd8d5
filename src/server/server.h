/*
 * server.h - distrod's server: the store, the workers, the cross-core
 * rings and, in a cluster, the peer thread, started and stopped together.
 */
#ifndef DISTRO_SERVER_SERVER_H
#define DISTRO_SERVER_SERVER_H

#include "core/srclimit.h"
#include "server/config.h"
#include "server/worker.h"
#include "shard/xcore.h"
#include "store/store.h"

#include <pthread.h>
#include <stdint.h>

struct admin_snapshot;
struct metrics_http;
struct peer;
struct nauth;
struct authq;

struct server {
	struct server_config cfg;
	struct store *store;
	struct peer *peer; /* NULL when standalone */
	/*
	 * The users and the token key (nacos/auth.h) when --auth-users names a
	 * file, else NULL: authentication off. Loaded before the workers start
	 * and never replaced while they run (no reload: a new users file takes a
	 * restart), so the workers read the pointer without an epoch.
	 */
	struct nauth *auth;
	struct authq *authq; /* the auth thread (authq.h); NULL when auth is off */
	struct xcore xcore;
	struct worker *workers;
	uint32_t nworkers;
	/* Client connections per source address, both client ports, every worker
	 * (--conns-per-source). */
	struct srclimit sources;
	int *ring_fds;       /* each worker's io_uring fd, for the peer thread's wake-ups */
	uint16_t port;       /* the client port actually bound */
	uint16_t nacos_port; /* the Nacos HTTP port actually bound */
	uint16_t grpc_port;  /* the Nacos gRPC port actually bound; 0: off */
	/*
	 * The admin port's own counters (http/metrics.h), for /metrics on the
	 * Nacos port: NULL until main publishes them (release) once the admin
	 * port runs; they stay valid until the process exits.
	 */
	const struct metrics_http *admin_http;
	pthread_barrier_t ready;
	int start_rc;    /* first worker start failure */
	uint32_t stop;   /* set by the signal thread (atomic) */
	uint32_t n_done; /* workers drained (atomic) */
};

/* Creates the store, binds the listening sockets and starts the workers. 0 or -errno. */
int server_start(struct server *s, const struct server_config *cfg);

/* Asks every worker to drain and stop; returns once all have exited. */
void server_stop(struct server *s);

/* Sums the workers' counters (relaxed reads). Any thread. */
void server_stats(struct server *s, struct worker_stats *out);

/*
 * Worker i's loop iterations so far (WORKER_STATS loops), relaxed: it grows
 * at least every WAIT_MS while the worker runs. The systemd watchdog
 * (notify.c) checks that each worker's moves. Any thread; i < nworkers.
 */
uint64_t server_worker_loops(struct server *s, uint32_t i);

/*
 * The struct admin_source callback of the admin endpoints (http/admin.h),
 * ctx the server: fills the parts of *out that out->want names from the
 * workers', the store's and the peer thread's counters, with relaxed (or
 * acquire) loads only: no lock, no allocation, no message, so any thread
 * may call it while the server runs (the admin thread, and the workers
 * that answer /metrics, /health and /cluster on the Nacos port).
 */
void server_admin_snapshot(void *ctx, struct admin_snapshot *out);

#endif
