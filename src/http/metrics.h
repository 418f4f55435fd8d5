/*
 * metrics.h - the node's counters as Prometheus text (exposition format
 * 0.0.4), for GET /metrics on the admin port.
 *
 * The renderer works on a snapshot the caller gathered (the admin port's
 * source, http/admin.h: relaxed loads, never a lock), so it can be tested
 * and checked with promtool without a running server.
 *
 * This header names the counter structs without defining them, so
 * including it does not drag in the worker (server/worker.h) or the
 * store: metrics.c, which renders them, includes their headers, and so
 * does whoever fills them.
 */
#ifndef DISTRO_HTTP_METRICS_H
#define DISTRO_HTTP_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct peer_status;
struct store_stats;
struct worker_stats;

#define METRICS_BYTES_MAX (4u << 20) /* a scrape larger than this is answered 500 */

/* The statuses the admin port answers with, counted by code. */
#define METRICS_HTTP_STATUSES(X) X(200) X(400) X(404) X(405) X(413) X(414) X(431) X(500) X(503)
#define METRICS_HTTP_STATUS_N    9

/*
 * The admin port's own counters; written by the admin thread only, with
 * relaxed stores (metrics_http_count, METRICS_HTTP_INC), so a worker that
 * answers /metrics on the Nacos port can read them (metrics_http_read).
 */
struct metrics_http {
	uint64_t requests[METRICS_HTTP_STATUS_N]; /* by METRICS_HTTP_STATUSES order */
	uint64_t conns_accepted;
	uint64_t conns_refused; /* over ADMIN_CONNS_MAX: answered 503 */
	uint64_t conns_idle_closed;
	uint64_t conns_source_refused; /* over ADMIN_CONNS_PER_SOURCE from one address: 503 */
	uint64_t conns_evicted;       /* waiting for a request, closed to make room for a new one */
	uint64_t conns_header_closed; /* a request head not whole within --header-timeout */
};

/* One more of a metrics_http counter, by its only writer. */
#define METRICS_HTTP_INC(c) __atomic_store_n((c), *(c) + 1, __ATOMIC_RELAXED)

/* Counts one answer with this status (statuses outside the list are not counted). */
void metrics_http_count(struct metrics_http *h, unsigned status);

/* A copy of h with relaxed loads: any thread, while the writer runs. */
void metrics_http_read(const struct metrics_http *h, struct metrics_http *out);

/*
 * The node's configured bounds, exported as gauges (distrod_*_max) beside
 * the values they bound, so that an alert can say "near the limit" without
 * knowing the flags (docs/prometheus/distrod.rules.yml). Fixed for the
 * process's life; a zero field is not exported.
 */
struct metrics_limits {
	uint64_t conns_max;              /* --conns-max: client connections, both ports */
	uint64_t instances_max;          /* --instances-max: live instances and tombstones */
	uint64_t services_max;           /* --services-max */
	uint64_t subscribers_max;        /* --subs-max (per worker) times the workers */
	uint64_t peer_backlog_bytes_max; /* --peer-backlog, per link; clustered nodes only */
};

struct metrics_input {
	const struct worker_stats *total;   /* summed over the workers */
	const struct worker_stats *workers; /* one per worker, for per-worker series */
	uint32_t nworkers;
	const struct store_stats *store;
	const struct metrics_http *http;
	const struct peer_status *peer;      /* NULL or not clustered: no distrod_peer_* series */
	const struct metrics_limits *limits; /* NULL: no distrod_*_max gauges */
};

/*
 * Zeroed room for n (at least one) struct worker_stats, or for one struct
 * store_stats: the buffers a scrape reads counters into, allocated once by
 * their owner (the admin port, at admin_start) so a scrape allocates only
 * its text. Here because metrics.c is the file of http/ that sees those
 * layouts. NULL when out of memory; free with mem_free.
 */
struct worker_stats *metrics_worker_stats_new(uint32_t n);
struct store_stats *metrics_store_stats_new(void);

/*
 * Renders every metric into a new buffer: *out (free with mem_free) holds
 * *len bytes. Every WORKER_STATS and STORE_STATS counter appears: under its
 * documented name (docs/http.md) or, until one is chosen, as untyped
 * distrod_worker_<name> / distrod_store_<name>. A clustered node adds every
 * PEER_STATS counter as distrod_peer_<name>_total and per-member gauges
 * labelled member="<peer address>"; with limits, the distrod_*_max gauges
 * of its non-zero fields. 0, or -ERR_NOMEM (no memory or over
 * METRICS_BYTES_MAX). O(counters + workers + members); allocates.
 */
int metrics_render(const struct metrics_input *in, char **out, size_t *len);

#endif
