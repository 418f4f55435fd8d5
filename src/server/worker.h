/*
 * worker.h - the per-core server: one thread, one io_uring, one store shard.
 *
 * The worker's files are listed in worker_internal.h; the server that owns
 * the workers is server.h. Other threads read a worker only through its
 * counters (worker_stats_read: relaxed loads of fields only the worker
 * writes).
 */
#ifndef DISTRO_SERVER_WORKER_H
#define DISTRO_SERVER_WORKER_H

#include "core/buf.h"
#include "core/pool.h"
#include "io/uring.h"
#include "shard/outbox.h"
#include "store/store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Per-worker counters: declared once, summed for STATS. */
#define WORKER_STATS(X)                                                                            \
	X(conns_accepted)                                                                          \
	X(conns_refused) /* over --conns-max */                                                    \
	X(conns_closed)                                                                            \
	X(conns_idle_closed)                                                                       \
	X(conns_slow_closed)                                                                       \
	X(frames)                                                                                  \
	X(bytes_in)                                                                                \
	X(bytes_out)                                                                               \
	X(proto_errors)                                                                            \
	X(op_ping)                                                                                 \
	X(op_register)   /* instances */                                                           \
	X(op_deregister) /* instances */                                                           \
	X(op_heartbeat)  /* instances */                                                           \
	X(op_list)                                                                                 \
	X(op_stats)                                                                                \
	X(item_errors)                                                                             \
	X(xcore_sent)                                                                              \
	X(xcore_full)                                                                              \
	X(busy)                                                                                    \
	X(accept_errors)                                                                           \
	X(lists_cut) /* lists cut at --frame-max */                                                \
	X(subs)      /* subscriptions (gauge) */                                                   \
	X(watches)   /* distinct services watched (gauge) */                                       \
	X(pushes)                                                                                  \
	X(op_subscribe)                                                                            \
	X(op_unsubscribe)                                                                          \
	X(loops)                                                                                   \
	X(cqes)

/* Request latency buckets, upper bounds in microseconds (the last is +Inf). */
#define WORKER_LAT_BUCKETS 12
static const uint32_t worker_lat_bounds_us[WORKER_LAT_BUCKETS - 1] = { 10,   25,    50,    100,
	                                                               250,  500,   1000,  2500,
	                                                               5000, 10000, 100000 };

/* Replication lag (write stamped at its owner -> applied here), upper bounds in ms. */
#define WORKER_REPL_BUCKETS 10
static const uint32_t worker_repl_bounds_ms[WORKER_REPL_BUCKETS - 1] = { 1,  2,   3,    5,    10,
	                                                                 25, 100, 1000, 10000 };

/* Completions reaped per loop: bucket i counts loops with 2^i..2^(i+1)-1 (last: more). */
#define WORKER_BATCH_BUCKETS 8

struct worker_stats {
#define WORKER_STAT_FIELD(name) uint64_t name;
	WORKER_STATS(WORKER_STAT_FIELD)
#undef WORKER_STAT_FIELD
	uint64_t lat_count[WORKER_LAT_BUCKETS]; /* not cumulative */
	uint64_t lat_sum_us;
	uint64_t batch_count[WORKER_BATCH_BUCKETS]; /* loops by completions reaped, 1+ */
	uint64_t repl_count[WORKER_REPL_BUCKETS];   /* synced records by lag, not cumulative */
};

struct conn;
struct watch;
struct sub;
struct server;
struct repair_job;

/* The worker's replica side (replica.c): work spread over loops within a budget. */
struct replica {
	uint64_t takeover_due[STORE_SLOTS / 64]; /* gained slots not walked yet */
	struct store_cursor takeover_cur;        /* the slot being walked, if active */
	bool takeover_active;
	struct repair_job *repairs, *repairs_tail; /* slots to prune, in arrival order */
	struct buf scratch;                        /* keys to forget, outside the epoch */
	int64_t last_sync_us;                      /* the feed was last drained */
};

struct worker {
	uint32_t id;
	struct server *srv;
	struct io_uring ring;
	struct uring_bufs bufs;
	bool ring_ok; /* closed by the server, after the peer thread stopped */
	int listen_fd;
	bool accept_armed;
	struct store_shard *shard;
	struct epoch_rec *rec; /* the shard's record: this thread writes and reads with it */

	struct conn *conns;
	uint32_t conns_max;
	uint32_t conns_used;
	uint32_t conn_free; /* free list head, UINT32_MAX when empty */
	uint32_t *dirty;    /* connections with output to flush */
	uint32_t dirty_n;

	struct pool pendings; /* cross-core requests this worker started */
	uint32_t pendings_n;
	struct outbox out; /* to the other workers and the peer thread */

	struct store_view *views; /* scratch for LIST, the feed, repairs */
	uint32_t views_cap;

	struct watch **watch_tab; /* WATCH_BUCKETS chains, by service */
	struct watch *watches;    /* every watch, for the push pass */
	struct sub *dead_subs;    /* unlinked at the end of the loop */
	uint32_t nsubs;
	int64_t last_push_ms;
	struct replica replica;
	bool inbound_more; /* the apply budget ran out with messages maybe left */

	int64_t now_ms;
	int64_t last_sweep_ms;
	int64_t frame_start_us;   /* the frame being handled */
	int64_t accept_resume_ms; /* accepts pause after an accept error */
	int64_t accept_log_ms;
	bool stopping;
	bool done;
	pthread_t thread;
	struct worker_stats stats;
} __attribute__((aligned(64)));

/* The worker thread's body (server.c starts it). */
void *worker_main(void *arg);

/* Sets up worker id of s (its memory, not its thread). 0 or -ENOMEM. */
int worker_init(struct server *s, struct worker *w, uint32_t id);

/* Frees what worker_init and the thread left; the thread has exited. */
void worker_free(struct worker *w);

/* One worker's counters (relaxed reads), for per-worker metrics. */
void worker_stats_read(struct worker *w, struct worker_stats *out);

#endif
