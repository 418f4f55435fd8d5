/*
 * worker_internal.h - what the files of one worker share: a connection,
 * the helpers that write responses, the cross-core sending side, and the
 * entry points of each concern.
 *
 *   worker.c   the loop, connections, io_uring operations, wake-ups,
 *              draining the inbound rings
 *   ops.c      request dispatch and the ops (PING, writes, LIST, STATS,
 *              SLOT_MAP), the pendings that carry a write across shards
 *   subs.c     subscriptions and pushes
 *   accept.c   the listeners: readiness, accepting within a budget, setting
 *              a connection up
 *   nacos.c    the Nacos HTTP port's connections (nacos_internal.h)
 *   grpc.c     the Nacos gRPC port's connections (grpc_internal.h)
 *   replica.c  the worker's half of Distro: routing an item, draining the
 *              feed to the peer thread, applying records, repairs and
 *              takeovers within a budget per loop
 *   server.c   the server's life cycle: start, stop, counters
 *
 * Everything here is one worker thread's own; only the store and the
 * cross-core rings are shared (worker.h).
 */
#ifndef DISTRO_SERVER_WORKER_INTERNAL_H
#define DISTRO_SERVER_WORKER_INTERNAL_H

#include "cluster/xmsg.h"
#include "core/atomic.h"
#include "core/buf.h"
#include "server/server.h"
#include "server/worker.h"

#include <stdbool.h>
#include <stdint.h>

#define RING_ENTRIES    1024
#define RECV_BUFS_START 64  /* receive buffers given at start (io/uring.h: grown on -ENOBUFS) */
#define RECV_BUFS_MAX   512 /* ... up to this many per worker: 8 MiB */
#define RECV_BUF_BYTES  16384
#define BUF_GROUP       1
#define XCORE_SLOTS     4096
#define PENDING_MAX     8192 /* cross-core requests in flight per worker */
#define PENDING_INLINE  4096 /* bytes of a pending object: header, results, body */
#define WAIT_MS         50
#define STALL_MS        1000 /* a loop gap this long is a stall (worker.c) */
#define OUT_CHUNK       16384
#define ITEMS_INLINE    1024 /* a write frame's results on the stack up to this many items */
#define APPLY_BUDGET    4096 /* replicated records applied per loop at most */
#define REPLICA_BUDGET  4096 /* instances a takeover or repair visits per loop at most */
#define ACCEPT_BUDGET   32   /* connections accepted and set up per loop at most (worker.c) */
#define ACCEPT_PAUSE_MS 100  /* accepting pauses this long after an accept error (EMFILE) */

/* user_data: op in the top byte, the slot's generation (24 bits), the slot. */
#define UD_GEN_MASK 0xffffffu

enum ud_op {
	UD_ACCEPT = 1,
	UD_RECV = 2,
	UD_SEND = 3,
	UD_WAKE = 4,
	UD_MSG = 5,
	UD_UDP_SEND = 6, /* a Nacos UDP push (idx: the send slot) */
	UD_UDP_RECV = 7, /* an ack on the push socket */
};

_Static_assert(((uint64_t)UD_WAKE << 56) == XMSG_WAKE_UD, "a wake-up is UD_WAKE");

static inline uint64_t ud_make(enum ud_op op, uint32_t idx, uint32_t gen)
{
	return ((uint64_t)op << 56) | ((uint64_t)(gen & UD_GEN_MASK) << 32) | idx;
}

static inline enum ud_op ud_op(uint64_t ud)
{
	return (enum ud_op)(ud >> 56);
}

static inline uint32_t ud_idx(uint64_t ud)
{
	return (uint32_t)ud;
}

static inline uint32_t ud_gen(uint64_t ud)
{
	return (uint32_t)(ud >> 32) & UD_GEN_MASK;
}

enum conn_state { C_FREE = 0, C_OPEN = 1, C_CLOSING = 2 };

/* What a connection speaks: the listener that accepted it (user_data idx of UD_ACCEPT). */
enum conn_kind { CONN_BINARY = 0, CONN_NACOS = 1, CONN_GRPC = 2 };
_Static_assert(CONN_GRPC < WORKER_LISTENERS, "a listener per kind");

struct conn {
	int fd;
	uint32_t gen;
	uint8_t state;
	uint8_t kind; /* enum conn_kind */
	bool recv_armed;
	bool send_inflight;
	bool dirty;
	bool close_after_flush; /* a protocol error was answered: close once it is sent */
	bool stale_check;       /* open across a stall: is its client still there? (worker.c) */
	struct buf in;          /* a partial frame carried between receives */
	struct buf out;         /* responses waiting for the next send */
	struct buf sending;     /* the send in flight */
	uint32_t pending;       /* requests of this connection out on other workers */
	int64_t active_ms;
	uint32_t next_free;
	bool authed;         /* binary, auth on: an AUTH succeeded on this connection */
	bool auth_wait;      /* binary: an AUTH's bcrypt is out; frames after it wait in `in` */
	struct sub *subs;    /* this connection's subscriptions */
	struct nconn *http;  /* CONN_NACOS: the HTTP state (nacos.c) */
	struct gconn *grpc;  /* CONN_GRPC: the HTTP/2 session and Nacos connection (grpc.c) */
	uint32_t src_bucket; /* its count in srv->sources (srclimit.h), given back at close */
	int64_t partial_ms;  /* a request started then and is not whole yet; 0: none (worker.c) */
	uint32_t recv_loop;  /* the worker's loop in which it last filled a receive buffer */
};

#define WSTAT_ADD(w, name, d) STORE_RELAXED(&(w)->stats.name, (w)->stats.name + (d))
#define WSTAT_INC(w, name)    WSTAT_ADD(w, name, 1)

static inline struct conn *conn_at(struct worker *w, uint32_t idx)
{
	return &w->conns[idx];
}

/* Is the server clustered (a peer thread runs)? */
static inline bool worker_clustered(const struct worker *w)
{
	return w->srv->peer != NULL;
}

/* worker.c */
void conn_close(struct worker *w, uint32_t idx);
/*
 * Starts closing like conn_close, but never frees the slot now (the
 * loop's flush does): for callers inside a walk of what the slot owns,
 * an HTTP/2 session's feed or a connection's subscription list.
 */
void conn_close_later(struct worker *w, uint32_t idx);
void conn_arm_recv(struct worker *w, uint32_t idx);
void conn_partial_mark(struct worker *w, struct conn *c, bool progress);
uint8_t *out_reserve(struct worker *w, uint32_t idx, uint32_t n);
void out_commit(struct worker *w, uint32_t idx, uint32_t n);
void send_error(struct worker *w, uint32_t idx, uint8_t op, uint32_t id, int code);
void protocol_error(struct worker *w, uint32_t idx, uint32_t id, int code);
void worker_send(struct worker *w, uint32_t to, void *msg);
void latency_record(struct worker *w, int64_t start_us);

/* authentication: answers of the auth thread (server/authq.h) */
struct authq_job;
void ops_auth_done(struct worker *w, struct authq_job *j);
void nacos_auth_done(struct worker *w, struct authq_job *j);
void conn_resume_frames(struct worker *w, uint32_t idx);

/* accept.c */
void accept_arm(struct worker *w);
bool accept_some(struct worker *w);
void accept_on_cqe(struct worker *w, struct io_uring_cqe *cqe);
void accept_stop(struct worker *w); /* closes the listeners */

/* grpc.c: the Nacos gRPC port's connections */
int grpc_init(struct worker *w);
void grpc_free(struct worker *w);
bool grpc_conn_open(struct worker *w, uint32_t idx);
void grpc_conn_started(struct worker *w, uint32_t idx);
void grpc_conn_closing(struct worker *w, uint32_t idx); /* OPEN -> CLOSING: give up what it owns */
void grpc_conn_end(struct worker *w, struct conn *c);   /* the slot is freed */
void grpc_on_data(struct worker *w, uint32_t idx, const uint8_t *data, size_t len);
void grpc_write_done(struct worker *w, uint32_t idx, const struct proto_header *h,
                     const int16_t *results);
void grpc_step(struct worker *w); /* timers: renewals, client detection, push retries */
void grpc_stop(struct worker *w); /* shutdown: GOAWAY on every connection */
/* A NotifySubscriberRequest of k's current state on the bi-stream: its id, 0 if not sent. */
uint64_t grpc_push(struct worker *w, uint32_t idx, const struct store_svc_key *k);

/* ops.c */
void ops_frame(struct worker *w, uint32_t idx, const struct proto_header *h, const uint8_t *body);
void ops_on_pending(struct worker *w, struct pending *p);
void ops_pending_free(struct worker *w, struct pending *p);

void ops_write(struct worker *w, uint32_t idx, const struct proto_header *h, const uint8_t *body);

/* nacos.c: the Nacos port's connections */
int nacos_init(struct worker *w);
void nacos_free(struct worker *w);
bool nacos_conn_open(struct worker *w, struct conn *c);
void nacos_conn_end(struct worker *w, struct conn *c);
void nacos_on_data(struct worker *w, uint32_t idx, const uint8_t *data, size_t len);
void nacos_write_done(struct worker *w, uint32_t idx, const struct proto_header *h,
                      const uint8_t *body, const int16_t *results);

/* nacos_push.c: UDP push to Nacos subscribers */
int nacos_push_start(struct worker *w);
void nacos_push_stop(struct worker *w);
void nacos_push_on_sub(struct worker *w, void *msg);
void nacos_push_on_list(struct worker *w, void *msg);
void nacos_push_on_cqe(struct worker *w, struct io_uring_cqe *cqe);
int64_t nacos_push_step(struct worker *w);

/* subs.c */
void subs_subscribe(struct worker *w, uint32_t idx, const struct proto_header *h,
                    const uint8_t *body);
void subs_unsubscribe(struct worker *w, uint32_t idx, const struct proto_header *h,
                      const uint8_t *body);
void subs_push(struct worker *w);
void subs_of_conn_end(struct worker *w, struct conn *c);
/* gRPC subscriptions: one per connection and service, pushed with grpc_push, acked. */
int subs_grpc_add(struct worker *w, uint32_t idx, const struct store_svc_key *sk);
void subs_grpc_remove(struct worker *w, uint32_t idx, const struct store_svc_key *sk);
bool subs_grpc_ack(struct worker *w, struct conn *c, uint64_t push_id);
void subs_grpc_retry(struct worker *w, struct conn *c, uint32_t timeout_ms);
void subs_reap(struct worker *w);
int subs_init(struct worker *w);
void subs_free(struct worker *w);
int ops_send_list(struct worker *w, uint32_t idx, uint8_t op, uint32_t id,
                  const struct store_svc_key *sk, const struct store_filter *f);

/* replica.c */
/* replica_route's answer when this node takes no writes (no quorum, or it left). */
#define REPLICA_REFUSE UINT16_MAX
uint16_t replica_route(struct worker *w, const struct addr *addr);
void replica_on_message(struct worker *w, void *msg);
void replica_sync_out(struct worker *w);
bool replica_step(struct worker *w);
bool replica_prune(struct worker *w, uint32_t *budget);
void replica_free(struct worker *w);

#endif
