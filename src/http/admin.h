/*
 * admin.h - the HTTP admin port: GET /metrics (Prometheus), /health and
 * /cluster.
 *
 * The admin port knows nothing of the server. Every number it shows comes
 * through one callback, struct admin_source, which the owner of the
 * counters (server/server.c's server_admin_snapshot) hands to admin_start;
 * the contract between a caller and that callback is written above the
 * struct. The answers themselves come from one function,
 * admin_answer_render, which the admin thread calls and so do the
 * workers that serve the same paths on the Nacos port (Nacos users expect
 * one HTTP port): both answer the same bytes.
 */
#ifndef DISTRO_HTTP_ADMIN_H
#define DISTRO_HTTP_ADMIN_H

#include "http/metrics.h"
#include "http/request.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define ADMIN_CONNS_MAX        64    /* open admin connections (admin.c: eviction, then 503) */
#define ADMIN_CONNS_PER_SOURCE 16    /* admin connections from one address; more: 503 */
#define ADMIN_IDLE_MS          10000 /* time a connection has for each request and its answer */
#define ADMIN_IN_BYTES         4096  /* read chunk; a head may span several (REQUEST_HEAD_MAX) */
#define ADMIN_LINGER_MS        2000  /* after a closing answer, unread input is drained this long */

#define ADMIN_METRICS_TYPE "text/plain; version=0.0.4"
#define ADMIN_JSON_TYPE    "application/json"
#define ADMIN_TEXT_TYPE    "text/plain; charset=utf-8"

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
	struct metrics_limits limits; /* COUNTERS: the configured bounds (zero: not exported) */
};

/*
 * Where the admin port's numbers come from: the contract.
 *
 * Who calls: admin_answer_render, once per answered GET/HEAD of /metrics
 * (want: COUNTERS | PEER), /health or /cluster (want: PEER); never for
 * other requests. On the admin port that is the admin thread, never two
 * calls at once; on the Nacos port it is the worker that read the
 * request, each into a snapshot of its own, so calls may overlap and the
 * callback must be safe on any thread (reads only, as below). So it runs
 * at scrape and probe rate; a client hammering /health gets it called
 * back to back, which costs the owners no more than the reads.
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
	/* A request head must be whole this long after its first byte (0: ADMIN_IDLE_MS). */
	uint32_t header_timeout_ms;
};

struct admin_conn;

struct admin {
	struct admin_source src;
	int listen_fd;
	int64_t accept_pause_until_ms; /* out of descriptors: the listener rests until then */
	int wake_fd;                   /* eventfd: admin_stop's knock */
	uint16_t port;                 /* the port actually bound */
	bool running;
	pthread_t thread;
	struct admin_conn *conns;   /* ADMIN_CONNS_MAX slots */
	struct admin_snapshot snap; /* the source fills it; peer alone is ~10 KiB */
	struct metrics_http http;   /* the admin thread's own counters */
	int64_t header_timeout_ms;  /* admin_source.header_timeout_ms, or ADMIN_IDLE_MS */
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

/*
 * The buffers of a snapshot for nworkers workers (~10 KiB plus a
 * worker_stats per worker): 0, or -ERR_NOMEM with nothing left allocated.
 * The admin port allocates its own once at admin_start; a worker that
 * answers on the Nacos port allocates one per request (not a hot path).
 */
int admin_snapshot_alloc(struct admin_snapshot *s, uint32_t nworkers);
void admin_snapshot_free(struct admin_snapshot *s);

/* One answer of the admin endpoints: status, Content-Type and body. */
struct admin_answer {
	unsigned status;
	const char *type; /* ADMIN_*_TYPE */
	const char *body; /* len bytes: static, owned or small */
	size_t len;
	char *owned;    /* the body's allocation, or NULL: admin_answer_free */
	char small[64]; /* "<status> <reason>\n" of an error answer */
};

/*
 * The answer to a GET of route: /metrics (Prometheus text), /health
 * (200 or 503, JSON) or /cluster (JSON) from a fresh snapshot of src
 * into snap (allocated for src->nworkers), 404 for REQUEST_ROUTE_NONE,
 * 500 when rendering runs out of memory or over METRICS_BYTES_MAX. http:
 * the admin port's counters shown by /metrics (the admin thread passes
 * its own; another thread a metrics_http_read copy). Allocates the body
 * of /metrics and /cluster: admin_answer_free it. Cost: the snapshot's
 * (struct admin_source) plus the rendering, O(counters + members).
 */
void admin_answer_render(enum request_route route, const struct admin_source *src,
                         struct admin_snapshot *snap, const struct metrics_http *http,
                         struct admin_answer *out);

void admin_answer_free(struct admin_answer *a);

#endif
