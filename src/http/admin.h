/*
 * admin.h - the HTTP admin port: GET /metrics (Prometheus), /health and
 * /cluster.
 *
 * The admin port knows nothing of the server. Every number it shows comes
 * through one callback, struct admin_source, which the owner of the
 * counters (server/main.c) hands to admin_start; the contract between the
 * admin thread and that callback is written above the struct.
 */
#ifndef DISTRO_HTTP_ADMIN_H
#define DISTRO_HTTP_ADMIN_H

#include "http/metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define ADMIN_CONNS_MAX 64    /* open admin connections; more are answered 503 */
#define ADMIN_IDLE_MS   10000 /* time a connection has for each request and its answer */
#define ADMIN_IN_BYTES  4096  /* read chunk; a head may span several (REQUEST_HEAD_MAX) */
#define ADMIN_LINGER_MS 2000  /* after a closing answer, unread input is drained this long */

/* The parts of a snapshot an answer needs (admin_snapshot.want). */
#define ADMIN_WANT_COUNTERS 1u /* total, workers, store: /metrics */
#define ADMIN_WANT_PEER     2u /* peer: /metrics, /health and /cluster */

/*
 * One reading of the node's counters. The buffers belong to the admin:
 * allocated once at admin_start, they hold the last snapshot until the
 * next. The admin thread sets want before each call; the callback fills
 * every part want names, entirely, and touches nothing else.
 */
struct admin_snapshot {
	unsigned want;                /* ADMIN_WANT_* bits; set by the admin */
	struct worker_stats *total;   /* COUNTERS: every worker's counters summed */
	struct worker_stats *workers; /* COUNTERS: admin_source.nworkers entries, one each */
	struct store_stats *store;    /* COUNTERS: the store's counters, all shards summed */
	struct peer_status *peer;     /* PEER: the peer thread's view; clustered false and
	                                 the rest zero when standalone */
};

/*
 * Where the admin port's numbers come from: the contract.
 *
 * Who calls: only the admin thread, never two calls at once, once per
 * answered GET/HEAD of /metrics (want: COUNTERS | PEER), /health or
 * /cluster (want: PEER); never for other requests. So it runs at scrape
 * and probe rate; a client hammering /health gets it called back to back
 * on the admin thread, which costs the owners no more than the reads.
 *
 * What it may do: read. Counters that other threads (workers, store
 * shard owners, the peer thread) write are read with relaxed (or acquire)
 * loads; no lock, no waiting for another thread, no message to a worker,
 * no allocation, no blocking call. The numbers are therefore not a
 * consistent cut: each counter is read at its own instant, which
 * Prometheus and a status page tolerate.
 *
 * Cost: COUNTERS is O(nworkers x counters + store shards): microseconds,
 * and to the owners only the cache misses of having their counter lines
 * read. PEER is O(STORE_SLOTS x members) (the slot map is walked to
 * count each member's slots): some 50 000 steps for three members, a
 * million at MEMBERS_MAX. No worker ever waits for it.
 *
 * Lifetime: ctx, and all it reaches, must stay valid from admin_start
 * until admin_stop returns. nworkers is fixed for that time: it sizes
 * admin_snapshot.workers.
 */
struct admin_source {
	void (*snapshot)(void *ctx, struct admin_snapshot *out);
	void *ctx;
	uint32_t nworkers;
};

struct admin_conn;

struct admin {
	struct admin_source src;
	int listen_fd;
	int wake_fd;   /* eventfd: admin_stop's knock */
	uint16_t port; /* the port actually bound */
	bool running;
	pthread_t thread;
	struct admin_conn *conns;   /* ADMIN_CONNS_MAX slots */
	struct admin_snapshot snap; /* the source fills it; peer alone is ~10 KiB */
	struct metrics_http http;   /* the admin thread's own counters */
};

/*
 * Binds host:port (an IPv4 or IPv6 literal, read during the call only;
 * port 0: any free port, then in a->port), allocates the snapshot
 * buffers for src->nworkers workers and starts the admin thread, which
 * serves until admin_stop. *src is copied; see struct admin_source for
 * what it must guarantee. 0, or -errno (a bind failure is logged with the
 * address; -EINVAL without a snapshot callback); on failure nothing is
 * left open.
 */
int admin_start(struct admin *a, const char *host, uint32_t port, const struct admin_source *src);

/* Wakes the admin thread, joins it and closes everything. Safe after a failed start. */
void admin_stop(struct admin *a);

#endif
