/*
 * stats.h - the workers' counters, declared once (an X-macro) and expanded
 * into the struct, the sums, STATS and the Prometheus text. Only a worker
 * writes its own; everyone else reads them relaxed (server_stats,
 * worker_stats_read). The HTTP admin renders these without knowing what a
 * worker is.
 */
#ifndef DISTRO_SERVER_STATS_H
#define DISTRO_SERVER_STATS_H

#include "cluster/view.h"

#include <stdint.h>

/* Per-worker counters: declared once, summed for STATS. */
#define WORKER_STATS(X)                                                                            \
	X(conns_accepted)                                                                          \
	X(conns_refused) /* over --conns-max */                                                    \
	X(conns_closed)                                                                            \
	X(conns_idle_closed)                                                                       \
	X(conns_slow_closed)                                                                       \
	X(conns_source_refused) /* over --conns-per-source */                                      \
	X(conns_header_closed)  /* a started request not whole within --header-timeout */          \
	X(accepts_deferred)     /* loops that used all of ACCEPT_BUDGET: more were waiting */      \
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
	X(takeover_adopted)       /* instances given a fresh deadline in slots this node gained */ \
	X(repair_forgotten)       /* instances a repair dropped: their owner did not list them */  \
	X(nacos_requests)         /* HTTP requests on the Nacos port */                            \
	X(nacos_errors)           /* answered with a 4xx or 5xx status */                          \
	X(nacos_push_subs)        /* UDP push subscribers (gauge) */                               \
	X(nacos_pushes)           /* UDP pushes sent (retries not counted) */                      \
	X(nacos_push_acked)       /* UDP pushes acknowledged */                                    \
	X(nacos_push_retries)     /* UDP pushes sent a second time */                              \
	X(nacos_push_failed)      /* UDP pushes given up: no ack after the retry */                \
	X(nacos_push_refused)     /* subscribers refused, pushes kept without retry: bounds */     \
	X(nacos_push_too_big)     /* UDP pushes not sent: over 64 KiB */                           \
	X(nacos_push_send_errors) /* UDP sends the kernel refused */                               \
	X(auth_ok)                /* requests and AUTH frames whose credentials passed */          \
	X(auth_refused)           /* refused: no, wrong or expired credentials */                  \
	X(auth_bcrypt)            /* password checks that ran a bcrypt (on the auth thread) */     \
	X(auth_busy)   /* password checks refused at once: the worker's jobs were all out */       \
	X(auth_logins) /* tokens issued by the Nacos login endpoint */                             \
	X(op_auth)                                                                                 \
	X(stalls)         /* loops that stood still past STALL_MS: deadlines moved (worker.c) */   \
	X(stale_dropped)  /* connections closed unread after a stall: their client had gone */     \
	X(fwd_stale)      /* forwarded items refused: they waited past --peer-down to run */       \
	X(writes_refused) /* write items answered unavailable: no quorum, or this node left */     \
	X(grpc_requests)  /* gRPC messages from clients on the Nacos gRPC port */                  \
	X(grpc_errors)    /* answered with an ErrorResponse or a gRPC error status */              \
	X(grpc_ejected)   /* gRPC connections closed: silent to a ClientDetectionRequest */        \
	X(grpc_moved)  /* gRPC connections sent ConnectResetRequest: this node takes no writes */  \
	X(grpc_pushes) /* NotifySubscriberRequests sent (retries counted) */                       \
	X(grpc_push_acked)                                                                         \
	X(grpc_renewed) /* instances renewed for their gRPC connection */                          \
	X(loops)                                                                                   \
	X(cqes)                                                                                    \
	X(recv_nobufs)    /* receives that found the buffer ring empty: re-armed, ring grown */    \
	X(recv_bufs)      /* receive buffers given to the kernel (gauge, grows to a bound) */      \
	X(recv_bufs_peak) /* most buffers filled between two reaps: the high-water (gauge) */

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
	uint64_t repl_stage[REPL_STAGES][REPL_STAGE_BUCKETS]; /* feed and apply (cluster/view.h) */
};

#endif
