/*
 * loop_internal.h - what a distrobench client thread's files share.
 *
 *   loop.c     the thread: set-up, the loop (turn, phases), the ready list
 *              and the timer heap, accounting, sends and receives armed
 *   encode.c   what a ready connection sends next: the workload's frames
 *   answer.c   completions: answers parsed, matched to their slot, checked
 *   gload.c    --proto grpc: a load connection's HTTP/2 session, its calls
 *              and the answers and pushes that come back
 *
 * Everything here belongs to one thread (struct loop); nothing is shared
 * with other threads except through struct bench_shared (loop.h).
 */
#ifndef DISTROBENCH_LOOP_INTERNAL_H
#define DISTROBENCH_LOOP_INTERNAL_H

#include "distrobench/loop.h"

#include "core/atomic.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/mem.h"
#include "grpc/payload.h"
#include "io/uring.h"
#include "proto/wire.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FRAME_BYTES_MAX  (64u << 20) /* a LIST of 65535 instances with metadata fits */
#define RECV_BUF_BYTES   16384u
#define RECV_BUFS_MIN    64u
#define RECV_BUFS_MAX    2048u
#define BUF_GROUP        7
#define OUT_SOFT_BYTES   (256u << 10) /* encode no more until a send completes */
#define SETUP_BATCH      256u
#define SETUP_PIPELINE   8u
#define SUB_PIPELINE     64u
#define WAIT_MAX_NS      10000000ull   /* ticks, phase ends and t_end are seen this soon */
#define DRAIN_NS         2000000000ull /* answers still awaited after the window */
#define PUSH_DRAIN_NS    1000000000ull /* subscribe: pushes still awaited after the window */
#define SLOT_BITS        12u
#define SLOT_MASK        ((1u << SLOT_BITS) - 1u)
#define SLOT_GEN_MASK    0x7ffffu /* 19 bits above the index; bit 31 is SUB_BIT */
#define SUB_BIT          0x80000000u
#define ITEM_BYTES_MAX   (48u + PLAN_NAME_MAX) /* an encoded instance without metadata */
#define SEQ_MAX          (STORE_WEIGHT_MAX * STORE_WEIGHT_SCALE) /* a change number is a weight */
#define RING_ENTRIES_MAX 32768u
/* A connection's buffer never holds more: one answer, and what comes around it. */
#define CONN_BUF_BYTES_MAX ((size_t)FRAME_BYTES_MAX + OUT_SOFT_BYTES + RECV_BUF_BYTES)

_Static_assert(ARGS_PIPELINE_MAX <= (1u << SLOT_BITS), "a slot index fits its bits");
_Static_assert(SETUP_PIPELINE <= ARGS_PIPELINE_MAX, "setup uses the same slots");
_Static_assert(ARGS_SUBS_MAX < SUB_BIT, "a subscription index fits below SUB_BIT");
_Static_assert(SEQ_MAX < (1u << LOOP_PROBE_SEQ_BITS), "change numbers fit their bits");

enum ud_op { UD_RECV = 1, UD_SEND = 2 };

enum slot_kind {
	SK_TIMED,    /* a frame of the workload */
	SK_CHANGE,   /* subscribe: a writer's change of a probe */
	SK_SETUP,    /* registering the population */
	SK_TEARDOWN, /* deregistering it */
	SK_HELLO,    /* gRPC: the ServerCheckRequest that ends a connection's set-up */
	SK_SUB,      /* gRPC: a SubscribeServiceRequest (first: the subscription) */
};

struct slot {
	uint64_t start_ns; /* latency starts here */
	uint32_t gen;
	uint32_t first; /* writes: first instance; list and change: the service */
	uint32_t seq;   /* change: its number */
	uint16_t items;
	uint8_t op;
	uint8_t cls;
	uint8_t kind;
	bool busy;
};

struct sub {
	uint32_t service;
	uint32_t last; /* the newest change number seen */
};

enum conn_role { ROLE_LOAD, ROLE_WRITER };

struct conn {
	int fd;
	uint32_t j; /* global connection index, or writer index */
	uint32_t target;
	uint8_t role;
	bool dead, recv_armed, send_busy, in_ready, in_heap, done, churn_dereg;
	bool g_hello_sent, g_ready; /* gRPC: set-up sent, ServerCheck answered */
	struct gconn *g;            /* --proto grpc load connections; else NULL */
	struct buf carry;           /* a partial answer between receives */
	struct buf out;             /* frames encoded, not yet sending */
	struct buf sending;         /* the send in flight; consumed as the kernel takes it */
	struct slot *slots;
	uint16_t *free_slots;
	uint32_t slots_n, free_n, inflight;
	/* the share: instances [lo, lo + own) */
	uint32_t lo, own;
	uint32_t cur, pass; /* next instance (offset), passes over the share */
	uint32_t beat_cur;  /* mix: heartbeats walk on their own */
	uint32_t churn_at, churn_n;
	uint32_t svc_cur;
	uint64_t rng;
	/* open loop */
	double period_ns, due_rel_ns;
	uint64_t due_ns;
	uint32_t heap_pos;
	/* setup and teardown: instances [setup_lo, setup_hi) */
	uint32_t setup_lo, setup_hi, setup_cur;
	/* subscriptions */
	struct sub *subs;
	uint32_t subs_n, subs_sent, subs_answered;
	/* writer: changes services w, w + W, ... */
	uint32_t w_k, w_own;
};

struct loop {
	struct bench_thread *th;
	struct bench_shared *sh;
	const struct bench_config *cfg;
	const struct plan *plan;
	struct io_uring ring;
	bool ring_ok;
	struct uring_bufs bufs;
	struct conn *conns;
	uint32_t conns_n, conns_done;
	uint32_t *ready;
	uint32_t ready_n;
	uint32_t *heap;
	uint32_t heap_n;
	enum bench_phase phase;
	bool idle; /* between phases: serve the ring, send nothing new */
	uint64_t now, t_measure, t_end;
	uint64_t inflight;
	uint32_t tick;
	struct hist iv;             /* latency since the last progress tick */
	uint64_t iv_ops, iv_errors; /* since the run started */
	struct bench_stats scratch; /* everything outside the window */
	struct proto_view view;     /* scratch for parsing lists */
	/* --proto grpc: decoding answers (gload.c) */
	struct payload_arena arena;
	void *toks; /* jsmntok_t[toks_n] */
	unsigned toks_n;
};

static inline uint64_t ud_make(enum ud_op op, uint32_t idx)
{
	return ((uint64_t)op << 32) | idx;
}

static inline uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline bool in_window(const struct loop *l, uint64_t t)
{
	return l->phase == PH_RUN && t >= l->t_measure && t < l->t_end;
}

/* loop.c */
void loop_make_ready(struct loop *l, struct conn *c);
void loop_heap_push(struct loop *l, struct conn *c);
struct bench_stats *loop_acc(struct loop *l);
void loop_check_done(struct loop *l, struct conn *c);
void loop_slot_free(struct loop *l, struct conn *c, struct slot *s);
void loop_conn_fail(struct loop *l, struct conn *c, int code);
void loop_submit_send(struct loop *l, struct conn *c);

/* encode.c */
struct slot *loop_slot_take(struct loop *l, struct conn *c, uint32_t *id);
uint64_t loop_probe_time(const struct loop *l, uint32_t service, uint32_t seq);
void loop_fill(struct loop *l, struct conn *c);

/* answer.c */
void loop_handle_cqe(struct loop *l, const struct io_uring_cqe *cqe);
struct bench_stats *loop_slot_acc(struct loop *l, const struct conn *c, const struct slot *s);
void loop_slot_close(struct loop *l, struct conn *c, struct slot *s, struct bench_stats *a,
                     uint64_t errs);
void loop_sub_seen(struct loop *l, struct sub *sb, uint32_t w);
uint32_t loop_list_expected(const struct loop *l, uint32_t s);

/* gload.c */
int gload_loop_init(struct loop *l);
void gload_loop_free(struct loop *l);
int gload_conn_init(struct loop *l, struct conn *c);
void gload_conn_free(struct conn *c);
int gload_hello(struct loop *l, struct conn *c);
int gload_register(struct loop *l, struct conn *c, uint32_t i, uint32_t weight_milli,
                   uint64_t start);
int gload_query(struct loop *l, struct conn *c, uint32_t service, uint64_t start);
int gload_subscribe(struct loop *l, struct conn *c, uint32_t sub);
void gload_flush(struct loop *l, struct conn *c);
void gload_feed(struct loop *l, struct conn *c, const uint8_t *data, uint32_t len);

#endif
