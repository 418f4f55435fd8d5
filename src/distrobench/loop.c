/*
 * loop.c - one distrobench client thread: raw protocol over io_uring.
 *
 * Why io_uring and not epoll: the client shares the machine with the node
 * it loads (two cores in our runs), so its cost per request is taken from
 * the server's throughput. With epoll every connection costs a recv and a
 * send system call per round trip, plus epoll_wait; here the thread queues
 * every send and recv it has for one loop and makes one io_uring_enter,
 * whatever the number of connections. Receives are multishot with a
 * provided buffer ring (as in the server, src/io/uring.h), so a connection
 * holds no receive buffer while idle and one armed recv lasts for as long as
 * buffers are available. The ring is created on this thread with
 * SINGLE_ISSUER and DEFER_TASKRUN where the kernel has them.
 *
 * Loop: read the clock; move open-loop connections whose time has come from
 * the timer heap to the ready list; for each ready connection encode the
 * frames it may send (closed loop: up to --pipeline in flight; open loop:
 * those whose intended time has passed, within --pipeline), re-arm its recv
 * if needed, and start one send of everything encoded; then submit and wait
 * (at most WAIT_MAX_NS, or until the next intended send), read the clock,
 * and handle every completion: parse whole answers straight from the
 * receive buffer (a frame split across buffers is carried in a per-
 * connection buffer), match each to its slot by request id (answers may
 * come out of order), check every item, record the latency, free the slot
 * and make the connection ready again.
 *
 * Request ids: slot index in the low 12 bits, the slot's use count in the
 * next 19; bit 31 marks a subscription's id (SUBSCRIBE answers and PUSH),
 * which indexes the connection's subscriptions. An answer matching no slot
 * in use, or of the wrong op, is an error and ends the connection, since
 * the frame it answers would otherwise hold its slot forever.
 *
 * Latency: closed loop from the moment the frame is encoded (just before
 * the send is submitted); open loop from the frame's intended time on the
 * connection's schedule (start + k * period), whether or not it could be
 * sent then. A connection whose pipeline is full keeps its schedule and
 * sends the late frames as soon as answers free slots, so queueing in the
 * node shows in the percentiles (no coordinated omission). Subscribe: from
 * the change's send time to each subscriber's first PUSH showing it.
 *
 * The window: a closed loop counts the answers that arrive in it; an open
 * loop counts the frames scheduled in it, sent even after its end and
 * answered within DRAIN_NS (those still unsent then are `unsent`), so the
 * slowest answers at the end are not cut off.
 *
 * Bounds: --pipeline frames in flight per connection (slots), at most
 * OUT_SOFT_BYTES encoded ahead of the socket, answers up to
 * FRAME_BYTES_MAX, the receive ring's size, and LOOP_PROBE_RING changes
 * remembered per service. A connection that breaks is not reopened: its
 * frames in flight count as errors and the others go on.
 */
#include "distrobench/loop.h"

#include "core/atomic.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/mem.h"
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
	struct buf carry;   /* a partial answer between receives */
	struct buf out;     /* frames encoded, not yet sending */
	struct buf sending; /* the send in flight; consumed as the kernel takes it */
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
};

static inline uint64_t ud_make(enum ud_op op, uint32_t idx)
{
	return ((uint64_t)op << 32) | idx;
}

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t pow2_at_least(uint32_t v)
{
	uint32_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

/* ---- the ready list and the timer heap ---- */

static void make_ready(struct loop *l, struct conn *c)
{
	if (c->in_ready)
		return;
	c->in_ready = true;
	l->ready[l->ready_n++] = (uint32_t)(c - l->conns);
}

static bool heap_less(struct loop *l, uint32_t a, uint32_t b)
{
	return l->conns[l->heap[a]].due_ns < l->conns[l->heap[b]].due_ns;
}

static void heap_swap(struct loop *l, uint32_t a, uint32_t b)
{
	uint32_t t = l->heap[a];

	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->conns[l->heap[a]].heap_pos = a;
	l->conns[l->heap[b]].heap_pos = b;
}

static void heap_push(struct loop *l, struct conn *c)
{
	uint32_t i = l->heap_n++;

	l->heap[i] = (uint32_t)(c - l->conns);
	c->heap_pos = i;
	c->in_heap = true;
	while (i > 0 && heap_less(l, i, (i - 1) / 2)) {
		heap_swap(l, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static struct conn *heap_pop(struct loop *l)
{
	struct conn *c = &l->conns[l->heap[0]];
	uint32_t i = 0;

	l->heap_n--;
	if (l->heap_n) {
		heap_swap(l, 0, l->heap_n);
		for (;;) {
			uint32_t m = i, a = 2 * i + 1, b = 2 * i + 2;

			if (a < l->heap_n && heap_less(l, a, m))
				m = a;
			if (b < l->heap_n && heap_less(l, b, m))
				m = b;
			if (m == i)
				break;
			heap_swap(l, i, m);
			i = m;
		}
	}
	c->in_heap = false;
	return c;
}

/* ---- accounting ---- */

static bool in_window(const struct loop *l, uint64_t t)
{
	return l->phase == PH_RUN && t >= l->t_measure && t < l->t_end;
}

/* Where an answer arriving now is counted: the window's stats or the scratch. */
static struct bench_stats *acc(struct loop *l)
{
	return in_window(l, l->now) ? &l->th->stats : &l->scratch;
}

static void check_done(struct loop *l, struct conn *c)
{
	bool done;

	if (c->done)
		return;
	switch (l->phase) {
	case PH_SETUP:
	case PH_TEARDOWN:
		done = c->dead || (c->setup_cur == c->setup_hi && c->inflight == 0);
		break;
	case PH_SUBSCRIBE:
		done = c->dead || c->subs_answered == c->subs_n;
		break;
	default:
		done = true;
		break;
	}
	if (done) {
		c->done = true;
		l->conns_done++;
	}
}

static void slot_free(struct loop *l, struct conn *c, struct slot *s)
{
	s->busy = false;
	c->free_slots[c->free_n++] = (uint16_t)(s - c->slots);
	c->inflight--;
	l->inflight--;
}

/* The connection broke: what it had in flight failed. */
static void conn_fail(struct loop *l, struct conn *c, int code)
{
	if (c->dead)
		return;
	c->dead = true;
	for (uint32_t i = 0; i < c->slots_n; i++) {
		struct slot *s = &c->slots[i];

		if (!s->busy)
			continue;
		if (s->kind == SK_SETUP)
			__atomic_fetch_add(&l->sh->setup_errors, s->items, __ATOMIC_RELAXED);
		else if (s->kind != SK_TEARDOWN) {
			report_error(acc(l), code, s->items);
			l->iv_errors += s->items;
		}
		slot_free(l, c, s);
	}
	if (l->phase == PH_SUBSCRIBE)
		__atomic_fetch_add(&l->sh->setup_errors, c->subs_n - c->subs_answered,
		                   __ATOMIC_RELAXED);
	l->th->stats.conns_lost++;  /* counted whenever it happens */
	shutdown(c->fd, SHUT_RDWR); /* ends the armed recv; the fd is closed at exit */
	check_done(l, c);
}

/* ---- encoding ---- */

static struct slot *slot_take(struct loop *l, struct conn *c, uint32_t *id)
{
	uint16_t i = c->free_slots[--c->free_n];
	struct slot *s = &c->slots[i];

	s->gen = (s->gen + 1) & SLOT_GEN_MASK;
	s->busy = true;
	*id = (s->gen << SLOT_BITS) | i;
	c->inflight++;
	l->inflight++;
	return s;
}

static uint32_t weight_of(const struct loop *l, uint32_t i, uint32_t pass, uint8_t kind)
{
	if (kind == SK_SETUP)
		return (l->cfg->workload == WL_SUBSCRIBE && i % l->plan->block == 0)
		               ? 0 /* a probe starts at change 0 */
		               : PLAN_WEIGHT;
	/* register: every pass after the first changes each instance */
	return (pass & 1) ? 2 * PLAN_WEIGHT : PLAN_WEIGHT;
}

/*
 * Encodes a write of n instances lo + (at + k) mod own, k < n, of the given
 * pass (a wrap goes on with the next pass). 0 or -ERR_NOMEM.
 */
static int encode_batch(struct loop *l, struct conn *c, uint8_t op, uint8_t cls, uint8_t kind,
                        uint32_t lo, uint32_t own, uint32_t at, uint32_t n, uint32_t pass,
                        uint64_t start)
{
	uint32_t body_cap = n * ITEM_BYTES_MAX, id;
	struct proto_wr w;
	struct store_key k;
	struct store_val v;
	struct slot *s;
	uint8_t *p;

	if (!buf_reserve(&c->out, PROTO_HEADER_BYTES + body_cap, CONN_BUF_BYTES_MAX))
		return -ERR_NOMEM;
	p = c->out.p + c->out.len;
	proto_wr_init(&w, p + PROTO_HEADER_BYTES, body_cap);
	for (uint32_t x = 0; x < n; x++) {
		uint32_t off = at + x, ps = pass;

		if (off >= own) {
			off -= own;
			ps++;
		}
		plan_instance(l->plan, lo + off, weight_of(l, lo + off, ps, kind), &k, &v);
		if (op == OP_DEREGISTER)
			proto_wr_key(&w, &k);
		else
			proto_wr_instance(&w, &k, &v);
	}
	if (w.overflow)
		abort(); /* ITEM_BYTES_MAX bounds an instance without metadata */
	s = slot_take(l, c, &id);
	s->start_ns = start;
	s->first = lo + at;
	s->items = (uint16_t)n;
	s->op = op;
	s->cls = cls;
	s->kind = kind;
	uint32_t body = (uint32_t)(w.p - (p + PROTO_HEADER_BYTES));

	proto_header_put(p, op, body, id, 0, (uint16_t)n);
	c->out.len += PROTO_HEADER_BYTES + body;
	return 0;
}

/* A LIST (slot) or SUBSCRIBE (id given) of service s. */
static int encode_list(struct loop *l, struct conn *c, uint8_t op, uint32_t service,
                       uint32_t sub_id, uint64_t start)
{
	static const struct store_filter all = { NULL, 0, false, false };
	uint32_t cap = 16 + 3 * 2 + PLAN_NAME_MAX, id = sub_id;
	struct store_svc_key k;
	struct proto_wr w;
	uint8_t *p;

	if (!buf_reserve(&c->out, PROTO_HEADER_BYTES + cap, CONN_BUF_BYTES_MAX))
		return -ERR_NOMEM;
	p = c->out.p + c->out.len;
	proto_wr_init(&w, p + PROTO_HEADER_BYTES, cap);
	plan_svc_key(l->plan, service, &k);
	proto_wr_svc(&w, &k);
	proto_wr_filter(&w, &all);
	if (w.overflow)
		abort();
	if (op == OP_LIST) {
		struct slot *s = slot_take(l, c, &id);

		s->start_ns = start;
		s->first = service;
		s->items = 1;
		s->op = op;
		s->cls = CLS_LIST;
		s->kind = SK_TIMED;
	}
	uint32_t body = (uint32_t)(w.p - (p + PROTO_HEADER_BYTES));

	proto_header_put(p, op, body, id, 0, 0);
	c->out.len += PROTO_HEADER_BYTES + body;
	return 0;
}

static void advance(uint32_t *cur, uint32_t *pass, uint32_t n, uint32_t own)
{
	*cur += n;
	if (*cur >= own) {
		*cur -= own;
		if (pass)
			(*pass)++;
	}
}

/* A writer's next change: the probe of its next service gets the next number. */
static int encode_change(struct loop *l, struct conn *c)
{
	uint32_t writers = plan_writers(l->plan);
	uint32_t service = c->j + c->w_k * writers, seq, id;
	struct loop_probe *pr = &l->sh->probes[service];
	struct store_key k;
	struct store_val v;
	struct proto_wr w;
	struct slot *s;
	uint32_t cap = ITEM_BYTES_MAX;
	uint8_t *p;

	if (pr->next_seq >= SEQ_MAX)
		return 0; /* a probe's weight cannot count further: this service rests */
	if (!buf_reserve(&c->out, PROTO_HEADER_BYTES + cap, CONN_BUF_BYTES_MAX))
		return -ERR_NOMEM;
	c->w_k = (c->w_k + 1) % c->w_own;
	seq = ++pr->next_seq;
	p = c->out.p + c->out.len;
	proto_wr_init(&w, p + PROTO_HEADER_BYTES, cap);
	plan_instance(l->plan, service * l->plan->block, seq, &k, &v);
	proto_wr_instance(&w, &k, &v);
	if (w.overflow)
		abort();
	/* Publish the send time before the change can reach anyone. */
	STORE_RELEASE(&pr->ring[seq % LOOP_PROBE_RING],
	              ((uint64_t)seq << LOOP_PROBE_US_BITS) | (l->now - l->sh->t_start_ns) / 1000);
	s = slot_take(l, c, &id);
	s->start_ns = l->now;
	s->first = service;
	s->seq = seq;
	s->items = 1;
	s->op = OP_REGISTER;
	s->cls = CLS_REGISTER;
	s->kind = SK_CHANGE;
	uint32_t body = (uint32_t)(w.p - (p + PROTO_HEADER_BYTES));

	proto_header_put(p, OP_REGISTER, body, id, 0, 1);
	c->out.len += PROTO_HEADER_BYTES + body;
	return 0;
}

/* The send time of change seq of a service (ns), or 0 if no longer known. */
static uint64_t probe_time(const struct loop *l, uint32_t service, uint32_t seq)
{
	uint64_t v = LOAD_ACQUIRE(&l->sh->probes[service].ring[seq % LOOP_PROBE_RING]);

	if ((v >> LOOP_PROBE_US_BITS) != seq)
		return 0;
	return l->sh->t_start_ns + (v & ((1ull << LOOP_PROBE_US_BITS) - 1)) * 1000;
}

/* The next frame of the workload, with latency from `start`. */
static int encode_next(struct loop *l, struct conn *c, uint64_t start)
{
	const struct bench_config *cfg = l->cfg;
	uint32_t n = c->own < cfg->batch ? c->own : cfg->batch;
	int rc;

	if (c->role == ROLE_WRITER)
		return encode_change(l, c);
	switch (cfg->workload) {
	case WL_REGISTER:
		rc = encode_batch(l, c, OP_REGISTER, CLS_REGISTER, SK_TIMED, c->lo, c->own, c->cur,
		                  n, c->pass, start);
		if (rc == 0)
			advance(&c->cur, &c->pass, n, c->own);
		return rc;
	case WL_HEARTBEAT:
		rc = encode_batch(l, c, OP_HEARTBEAT, CLS_HEARTBEAT, SK_TIMED, c->lo, c->own,
		                  c->cur, n, 0, start);
		if (rc == 0)
			advance(&c->cur, NULL, n, c->own);
		return rc;
	case WL_CHURN:
		if (!c->churn_dereg) {
			rc = encode_batch(l, c, OP_REGISTER, CLS_REGISTER, SK_TIMED, c->lo, c->own,
			                  c->cur, n, 0, start);
			if (rc == 0) {
				c->churn_at = c->cur;
				c->churn_n = n;
				c->churn_dereg = true;
				advance(&c->cur, NULL, n, c->own);
			}
			return rc;
		}
		rc = encode_batch(l, c, OP_DEREGISTER, CLS_DEREGISTER, SK_TIMED, c->lo, c->own,
		                  c->churn_at, c->churn_n, 0, start);
		if (rc == 0)
			c->churn_dereg = false;
		return rc;
	case WL_LIST:
		rc = encode_list(l, c, OP_LIST, c->svc_cur, 0, start);
		if (rc == 0)
			c->svc_cur = (c->svc_cur + 1) % l->plan->services;
		return rc;
	case WL_MIX:
		switch (plan_mix_pick(l->plan, splitmix(&c->rng))) {
		case MIX_REGISTER:
			rc = encode_batch(l, c, OP_REGISTER, CLS_REGISTER, SK_TIMED, c->lo, c->own,
			                  c->cur, n, c->pass, start);
			if (rc == 0)
				advance(&c->cur, &c->pass, n, c->own);
			return rc;
		case MIX_HEARTBEAT:
			rc = encode_batch(l, c, OP_HEARTBEAT, CLS_HEARTBEAT, SK_TIMED, c->lo,
			                  c->own, c->beat_cur, n, 0, start);
			if (rc == 0)
				advance(&c->beat_cur, NULL, n, c->own);
			return rc;
		default:
			return encode_list(l, c, OP_LIST,
			                   (uint32_t)(splitmix(&c->rng) % l->plan->services), 0,
			                   start);
		}
	case WL_SUBSCRIBE:
	case WL_COUNT:
		break;
	}
	return 0;
}

static bool out_room(const struct conn *c)
{
	return buf_used(&c->out) < OUT_SOFT_BYTES;
}

/* Encodes what connection c may send now. */
static void fill(struct loop *l, struct conn *c)
{
	const struct bench_config *cfg = l->cfg;
	int rc = 0;

	if (c->dead || l->idle)
		return;
	switch (l->phase) {
	case PH_SETUP:
	case PH_TEARDOWN:
		while (rc == 0 && c->inflight < SETUP_PIPELINE && c->setup_cur < c->setup_hi &&
		       out_room(c)) {
			uint32_t n = c->setup_hi - c->setup_cur;

			if (n > SETUP_BATCH)
				n = SETUP_BATCH;
			rc = encode_batch(l, c, l->phase == PH_SETUP ? OP_REGISTER : OP_DEREGISTER,
			                  CLS_REGISTER,
			                  l->phase == PH_SETUP ? SK_SETUP : SK_TEARDOWN,
			                  c->setup_cur, n, 0, n, 0, l->now);
			if (rc == 0)
				c->setup_cur += n;
		}
		break;
	case PH_SUBSCRIBE:
		while (rc == 0 && c->subs_sent < c->subs_n &&
		       c->subs_sent - c->subs_answered < SUB_PIPELINE && out_room(c)) {
			rc = encode_list(l, c, OP_SUBSCRIBE, c->subs[c->subs_sent].service,
			                 SUB_BIT | c->subs_sent, l->now);
			if (rc == 0)
				c->subs_sent++;
		}
		break;
	case PH_RUN:
		if (c->role == ROLE_LOAD && cfg->workload == WL_SUBSCRIBE)
			break; /* subscribers only listen */
		if (c->period_ns > 0) {
			/* Every frame due before the end goes out, late ones too. */
			while (rc == 0 && c->inflight < cfg->pipeline && c->due_ns <= l->now &&
			       c->due_ns < l->t_end && out_room(c)) {
				rc = encode_next(l, c, c->due_ns);
				c->due_rel_ns += c->period_ns;
				c->due_ns = l->sh->t_start_ns + (uint64_t)c->due_rel_ns;
			}
			/* Late (pipeline or buffer full): an answer or a send makes it ready. */
			if (rc == 0 && !c->in_heap && c->due_ns > l->now && c->due_ns < l->t_end)
				heap_push(l, c);
		} else if (c->role == ROLE_LOAD && l->now < l->t_end) {
			while (rc == 0 && c->inflight < cfg->pipeline && out_room(c))
				rc = encode_next(l, c, l->now);
		}
		break;
	case PH_CONNECT:
	case PH_COUNT:
		break;
	}
	if (rc < 0)
		conn_fail(l, c, REPORT_E_CONN);
	check_done(l, c);
}

/* ---- io_uring ---- */

static void arm_recv(struct loop *l, struct conn *c)
{
	struct io_uring_sqe *sqe = uring_sqe(&l->ring);

	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BUF_GROUP;
	io_uring_sqe_set_data64(sqe, ud_make(UD_RECV, (uint32_t)(c - l->conns)));
	c->recv_armed = true;
}

static void submit_send(struct loop *l, struct conn *c)
{
	struct io_uring_sqe *sqe = uring_sqe(&l->ring);

	io_uring_prep_send(sqe, c->fd, c->sending.p + c->sending.off, buf_used(&c->sending),
	                   MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud_make(UD_SEND, (uint32_t)(c - l->conns)));
	c->send_busy = true;
}

static void flush(struct loop *l, struct conn *c)
{
	struct buf t = c->sending;

	c->sending = c->out;
	c->out = t;
	buf_clear(&c->out);
	submit_send(l, c);
}

/* ---- answers ---- */

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

/* Per-item results of a write. */
static void check_results(struct bench_stats *a, const struct slot *s, const struct proto_header *h,
                          const uint8_t *body)
{
	if (h->status) {
		report_error(a, h->status, s->items);
		return;
	}
	if (h->count != s->items || h->body_len != 2u * s->items) {
		report_error(a, REPORT_E_ANSWER, s->items);
		return;
	}
	for (uint32_t i = 0; i < s->items; i++) {
		int16_t r = (int16_t)le16(body + 2 * i);

		if (r < 0)
			report_error(a, -r, 1);
		else if (r == STORE_SAME)
			a->same++;
		else if (r == STORE_CHANGED)
			a->changed++;
		else if (r == STORE_CREATED)
			a->created++;
		else
			report_error(a, REPORT_E_ANSWER, 1);
	}
}

/*
 * Walks a LIST-shaped body: 0 with the total and (if probe is not NULL)
 * the probe's weight in *weight (UINT32_MAX if absent), or -1 if malformed.
 */
static int parse_list(struct loop *l, const struct proto_header *h, const uint8_t *body,
                      uint32_t *total, const struct addr *probe, uint32_t *weight)
{
	struct proto_rd r;

	proto_rd_init(&r, body, h->body_len);
	(void)proto_rd_u64(&r); /* revision */
	*total = proto_rd_u32(&r);
	if (weight)
		*weight = UINT32_MAX;
	for (uint32_t i = 0; i < h->count && !r.err; i++) {
		proto_rd_view(&r, &l->view, NULL, 0);
		if (probe && !r.err && memcmp(&l->view.addr, probe, sizeof(*probe)) == 0)
			*weight = l->view.weight_milli;
	}
	return proto_rd_done(&r) == 0 ? 0 : -1;
}

/* What size a list of service s must have, or UINT32_MAX when it cannot be known. */
static uint32_t list_expected(const struct loop *l, uint32_t s)
{
	uint32_t lo, hi;

	if (l->cfg->workload == WL_LIST)
		return l->cfg->list_size;
	if (l->cfg->targets_n == 1) {
		plan_service_range(l->plan, s, &lo, &hi);
		return hi - lo;
	}
	return UINT32_MAX; /* the instances are spread over nodes that do not replicate yet */
}

static void check_list(struct loop *l, struct bench_stats *a, const struct slot *s,
                       const struct proto_header *h, const uint8_t *body)
{
	uint32_t total, want;

	if (h->status) {
		report_error(a, h->status, 1);
		return;
	}
	if (parse_list(l, h, body, &total, NULL, NULL) < 0) {
		report_error(a, REPORT_E_ANSWER, 1);
		return;
	}
	a->list_views += h->count;
	want = list_expected(l, s->first);
	if (want != UINT32_MAX && (total != want || h->count != want))
		report_error(a, REPORT_E_LIST, 1);
}

static void slot_answer(struct loop *l, struct conn *c, struct slot *s,
                        const struct proto_header *h, const uint8_t *body)
{
	bool timed = s->kind == SK_TIMED || s->kind == SK_CHANGE;
	struct bench_stats *a = !timed              ? &l->scratch
	                        : c->period_ns <= 0 ? acc(l) /* closed loop: by completion */
	                        : in_window(l, s->start_ns) ? &l->th->stats /* open: by schedule */
	                                                    : &l->scratch;
	uint64_t errors0 = a->errors, errs, lat_us;

	if (s->op == OP_LIST)
		check_list(l, a, s, h, body);
	else
		check_results(a, s, h, body);
	errs = a->errors - errors0;
	if (s->kind == SK_SETUP) {
		__atomic_fetch_add(&l->sh->setup_ops, s->items, __ATOMIC_RELAXED);
		if (errs)
			__atomic_fetch_add(&l->sh->setup_errors, errs, __ATOMIC_RELAXED);
	}
	if (timed) {
		lat_us = l->now > s->start_ns ? (l->now - s->start_ns) / 1000 : 0;
		a->frames++;
		a->ops += s->items;
		a->ops_by[s->cls] += s->items;
		hist_record(&a->lat[s->cls], lat_us);
		l->iv_errors += errs;
		if (s->kind == SK_TIMED) {
			hist_record(&l->iv, lat_us);
			l->iv_ops += s->items;
		} else if (errs == 0 && in_window(l, s->start_ns)) {
			l->th->stats.changes++; /* counted by send time, like its deliveries */
		}
	}
	slot_free(l, c, s);
}

/* Subscribe: one subscriber's delivery of change seq, sent at t (0: unknown). */
static void delivered(struct loop *l, uint64_t t)
{
	struct bench_stats *a;
	uint64_t lat_us;

	if (t == 0) {
		a = acc(l);
		a->untimed++;
	} else {
		a = in_window(l, t) ? &l->th->stats : &l->scratch;
		lat_us = l->now > t ? (l->now - t) / 1000 : 0;
		hist_record(&a->lat[CLS_PUSH], lat_us);
		hist_record(&l->iv, lat_us);
	}
	a->deliveries++;
	a->ops++;
	a->ops_by[CLS_PUSH]++;
	l->iv_ops++;
}

static void sub_answer(struct loop *l, struct conn *c, const struct proto_header *h,
                       const uint8_t *body)
{
	uint32_t i = h->request_id & ~SUB_BIT, total, w;
	struct addr probe;
	struct sub *sb;

	if (i >= c->subs_n || (h->op != (OP_SUBSCRIBE | PROTO_RESPONSE) && h->op != OP_PUSH)) {
		report_error(acc(l), REPORT_E_ANSWER, 1);
		conn_fail(l, c, REPORT_E_ANSWER);
		return;
	}
	sb = &c->subs[i];
	plan_addr(sb->service * l->plan->block, &probe);
	if (h->op == OP_PUSH) {
		acc(l)->pushes++;
		acc(l)->list_views += h->count;
	}
	if (h->status || parse_list(l, h, body, &total, &probe, &w) < 0) {
		if (h->op == OP_PUSH) {
			report_error(acc(l), h->status ? h->status : REPORT_E_ANSWER, 1);
			l->iv_errors++;
		} else {
			__atomic_fetch_add(&l->sh->setup_errors, 1, __ATOMIC_RELAXED);
			c->subs_answered++;
			check_done(l, c);
		}
		return;
	}
	if (h->op != OP_PUSH) {
		sb->last = w == UINT32_MAX ? 0 : w;
		c->subs_answered++;
		__atomic_fetch_add(&l->sh->subscriptions, 1, __ATOMIC_RELAXED);
		check_done(l, c);
		return;
	}
	if (w == UINT32_MAX || w <= sb->last)
		return; /* a push for another change (or none of ours) */
	/* Every change after the last one seen is shown by this push. */
	uint32_t from = sb->last + 1;

	if (w - sb->last > LOOP_PROBE_RING) {
		for (; from <= w - LOOP_PROBE_RING; from++)
			delivered(l, 0);
	}
	for (uint32_t seq = from; seq <= w; seq++)
		delivered(l, probe_time(l, sb->service, seq));
	sb->last = w;
}

static void handle_frame(struct loop *l, struct conn *c, const struct proto_header *h,
                         const uint8_t *body)
{
	uint32_t i = h->request_id & SLOT_MASK, gen = (h->request_id >> SLOT_BITS) & SLOT_GEN_MASK;
	struct slot *s;

	if (h->request_id & SUB_BIT) {
		sub_answer(l, c, h, body);
		return;
	}
	if (h->op == OP_ERROR) {
		/* The node refused our framing and closes the connection. */
		conn_fail(l, c, h->status ? h->status : REPORT_E_ANSWER);
		return;
	}
	s = i < c->slots_n ? &c->slots[i] : NULL;
	if (s == NULL || !s->busy || s->gen != gen || h->op != (s->op | PROTO_RESPONSE)) {
		report_error(acc(l), REPORT_E_ANSWER, 1);
		l->iv_errors++;
		conn_fail(l, c, REPORT_E_ANSWER);
		return;
	}
	slot_answer(l, c, s, h, body);
	make_ready(l, c);
	check_done(l, c);
}

/* Handles the whole answers in p[0..len); returns the bytes used. */
static uint32_t parse_frames(struct loop *l, struct conn *c, const uint8_t *p, uint32_t len)
{
	uint32_t off = 0;

	while (!c->dead && off < len) {
		struct proto_header h;
		long n = proto_frame_check(p + off, len - off, FRAME_BYTES_MAX, &h);

		if (n == 0)
			break;
		if (n < 0) {
			report_error(acc(l), REPORT_E_ANSWER, 1);
			l->iv_errors++;
			conn_fail(l, c, REPORT_E_ANSWER);
			break;
		}
		handle_frame(l, c, &h, p + off + PROTO_HEADER_BYTES);
		off += (uint32_t)n;
	}
	return off;
}

static void feed(struct loop *l, struct conn *c, const uint8_t *data, uint32_t len)
{
	uint32_t used;

	if (buf_used(&c->carry) == 0) {
		used = parse_frames(l, c, data, len);
		if (c->dead || used == len)
			return;
		if (!buf_append(&c->carry, data + used, len - used, CONN_BUF_BYTES_MAX))
			conn_fail(l, c, REPORT_E_ANSWER);
		return;
	}
	if (!buf_append(&c->carry, data, len, CONN_BUF_BYTES_MAX)) {
		conn_fail(l, c, REPORT_E_ANSWER);
		return;
	}
	used = parse_frames(l, c, c->carry.p + c->carry.off, (uint32_t)buf_used(&c->carry));
	if (c->dead)
		return;
	buf_consume(&c->carry, used);
}

static void handle_cqe(struct loop *l, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	struct conn *c = &l->conns[(uint32_t)ud];

	if ((ud >> 32) == UD_SEND) {
		c->send_busy = false;
		if (cqe->res < 0) {
			conn_fail(l, c, REPORT_E_CONN);
			return;
		}
		buf_consume(&c->sending, (size_t)cqe->res);
		if (buf_used(&c->sending) && !c->dead) {
			submit_send(l, c); /* a short send: the rest */
			return;
		}
		buf_clear(&c->sending);
		make_ready(l, c);
		return;
	}
	if (!(cqe->flags & IORING_CQE_F_MORE))
		c->recv_armed = false;
	if (cqe->res > 0) {
		uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);

		if (!c->dead)
			feed(l, c, uring_buf(&l->bufs, bid), (uint32_t)cqe->res);
		uring_buf_recycle(&l->bufs, bid);
	} else if (cqe->res != -ENOBUFS) {
		conn_fail(l, c, REPORT_E_CONN); /* closed by the node, or broken */
	}
	if (!c->recv_armed && !c->dead)
		make_ready(l, c);
}

/* ---- the loop ---- */

/* Hands the progress figures to main: on each new tick, and when the run ends. */
static void publish(struct loop *l, bool force)
{
	uint32_t t = LOAD_ACQUIRE(&l->sh->tick);

	if (t == l->tick && !force)
		return;
	pthread_mutex_lock(&l->th->mu);
	hist_merge(&l->th->pub_hist, &l->iv);
	l->th->pub_ops = l->iv_ops;
	l->th->pub_errors = l->iv_errors;
	pthread_mutex_unlock(&l->th->mu);
	hist_reset(&l->iv);
	l->tick = t;
	STORE_RELEASE(&l->th->tick_seen, t);
}

/* One turn: timers, before-sleep work, submit and wait, completions. */
static void turn(struct loop *l)
{
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts;
	uint64_t wait = WAIT_MAX_NS;
	unsigned head, n = 0;

	l->now = clock_mono_ns();
	l->t_end = LOAD_RELAXED(&l->sh->t_end_ns);
	publish(l, false);
	while (l->heap_n && l->conns[l->heap[0]].due_ns <= l->now)
		make_ready(l, heap_pop(l));
	while (l->ready_n) {
		struct conn *c = &l->conns[l->ready[--l->ready_n]];

		c->in_ready = false;
		fill(l, c);
		if (c->dead)
			continue;
		if (!c->recv_armed)
			arm_recv(l, c);
		if (!c->send_busy && buf_used(&c->out))
			flush(l, c);
	}
	if (l->heap_n) {
		uint64_t due = l->conns[l->heap[0]].due_ns, tick = l->cfg->tick_us * 1000ull;

		if (tick && due > l->sh->t_start_ns) /* wake on the next tick at or after it */
			due = l->sh->t_start_ns +
			      (due - l->sh->t_start_ns + tick - 1) / tick * tick;

		wait = due > l->now ? due - l->now : 0;
		if (wait > WAIT_MAX_NS)
			wait = WAIT_MAX_NS;
	}
	if (l->phase == PH_RUN && !l->idle && l->now < l->t_end && l->t_end - l->now < wait)
		wait = l->t_end - l->now;
	ts.tv_sec = (long long)(wait / 1000000000ull);
	ts.tv_nsec = (long long)(wait % 1000000000ull);
	io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
	l->now = clock_mono_ns();
	io_uring_for_each_cqe(&l->ring, head, cqe)
	{
		handle_cqe(l, cqe);
		n++;
	}
	io_uring_cq_advance(&l->ring, n);
}

static bool phase_over(struct loop *l)
{
	uint64_t drain;

	if (l->phase != PH_RUN)
		return l->conns_done == l->conns_n;
	if (l->now < l->t_end)
		return false;
	drain = l->cfg->workload == WL_SUBSCRIBE ? PUSH_DRAIN_NS : DRAIN_NS;
	if (l->now >= l->t_end + drain)
		return true;
	return l->cfg->workload != WL_SUBSCRIBE && l->inflight == 0;
}

/* Open loop: the frames whose intended time fell in the window but were never sent. */
static void count_unsent(struct loop *l)
{
	for (uint32_t i = 0; i < l->conns_n; i++) {
		struct conn *c = &l->conns[i];
		uint64_t from = c->due_ns > l->t_measure ? c->due_ns : l->t_measure;

		if (c->period_ns <= 0 || c->dead || from >= l->t_end)
			continue;
		l->th->stats.unsent += (uint64_t)((double)(l->t_end - from) / c->period_ns) + 1;
	}
}

static void run_phase(struct loop *l, enum bench_phase ph)
{
	l->phase = ph;
	l->idle = false;
	l->conns_done = 0;
	for (uint32_t i = 0; i < l->heap_n; i++)
		l->conns[l->heap[i]].in_heap = false;
	l->heap_n = 0;
	if (ph == PH_RUN) {
		l->t_measure = l->sh->t_measure_ns;
		l->t_end = LOAD_RELAXED(&l->sh->t_end_ns);
	}
	for (uint32_t i = 0; i < l->conns_n; i++) {
		struct conn *c = &l->conns[i];

		c->done = false;
		if (ph == PH_TEARDOWN) /* only populations that do not expire by themselves */
			c->setup_cur = l->plan->setup_per_target ? c->setup_lo : c->setup_hi;
		if (ph == PH_RUN && c->period_ns > 0) {
			/* Stagger the schedules so connections do not send in step. */
			c->due_rel_ns =
			        c->period_ns * (double)c->j /
			        (c->role == ROLE_WRITER ? plan_writers(l->plan) : l->cfg->conns);
			c->due_ns = l->sh->t_start_ns + (uint64_t)c->due_rel_ns;
		}
		make_ready(l, c);
		check_done(l, c);
	}
	do
		turn(l);
	while (!phase_over(l) && !LOAD_ACQUIRE(&l->sh->abort));
	l->idle = true;
	if (ph == PH_RUN) {
		count_unsent(l);
		publish(l, true); /* main reads the last figures once we have arrived */
	}
}

/* Says phase ph is done and serves the ring until main releases the next. */
static bool wait_go(struct loop *l, enum bench_phase ph)
{
	l->idle = true;
	STORE_RELEASE(&l->th->arrived, (uint32_t)ph + 1);
	while (LOAD_ACQUIRE(&l->sh->go) <= (uint32_t)ph) {
		if (LOAD_ACQUIRE(&l->sh->abort))
			return false;
		turn(l);
	}
	return !LOAD_ACQUIRE(&l->sh->abort);
}

/* ---- set-up and tear-down ---- */

static int conn_init(struct conn *c, uint32_t slots_n)
{
	c->fd = -1;
	c->slots_n = slots_n;
	c->slots = mem_calloc(slots_n, sizeof(c->slots[0]));
	c->free_slots = mem_alloc(sizeof(c->free_slots[0]) * slots_n);
	if (c->slots == NULL || c->free_slots == NULL)
		return -ERR_NOMEM;
	for (uint32_t i = 0; i < slots_n; i++)
		c->free_slots[i] = (uint16_t)(slots_n - 1 - i);
	c->free_n = slots_n;
	return 0;
}

static int conn_connect(struct loop *l, struct conn *c)
{
	const struct sockaddr_storage *sa = &l->sh->addrs[c->target];
	int one = 1;

	c->fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	if (connect(c->fd, (const struct sockaddr *)sa, l->sh->addr_lens[c->target]) < 0)
		return -errno;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

static int loop_init(struct loop *l, struct bench_thread *th)
{
	const struct bench_config *cfg = th->sh->cfg;
	const struct plan *plan = th->sh->plan;
	uint32_t load_n = (cfg->conns - th->id + cfg->threads - 1) / cfg->threads;
	uint32_t writers_n = cfg->workload == WL_SUBSCRIBE ? cfg->targets_n : 0;
	uint32_t subs_all = cfg->services * cfg->subscribers;
	uint32_t entries, bufs_n;
	const char *why = "";
	int rc;

	memset(l, 0, sizeof(*l));
	l->th = th;
	l->sh = th->sh;
	l->cfg = cfg;
	l->plan = plan;
	l->idle = true;
	hist_reset(&l->iv);
	report_stats_init(&l->scratch);
	l->conns_n = load_n + writers_n;
	l->conns = mem_calloc(l->conns_n, sizeof(l->conns[0]));
	l->ready = mem_alloc(sizeof(l->ready[0]) * l->conns_n);
	l->heap = mem_alloc(sizeof(l->heap[0]) * l->conns_n);
	if (l->conns == NULL || l->ready == NULL || l->heap == NULL)
		return -ERR_NOMEM;
	for (uint32_t k = 0; k < l->conns_n; k++) {
		struct conn *c = &l->conns[k];
		uint32_t hi;

		c->fd = -1;
		if (k < load_n) {
			c->j = th->id + k * cfg->threads;
			c->role = ROLE_LOAD;
			c->target = plan_target_of(plan, c->j);
			if (cfg->workload != WL_LIST && cfg->workload != WL_SUBSCRIBE) {
				plan_share(plan, c->j, &c->lo, &hi);
				c->own = hi - c->lo;
			}
			plan_setup_share(plan, c->j, &c->setup_lo, &c->setup_hi);
			c->setup_cur = c->setup_lo;
			c->svc_cur = c->j % plan->services;
			c->rng = c->j + 1;
			c->period_ns =
			        cfg->workload == WL_SUBSCRIBE ? 0 : plan_period_ns(plan, c->j);
			if (cfg->workload == WL_SUBSCRIBE && subs_all > c->j) {
				c->subs_n = (subs_all - c->j + cfg->conns - 1) / cfg->conns;
				c->subs = mem_calloc(c->subs_n, sizeof(c->subs[0]));
				if (c->subs == NULL)
					return -ERR_NOMEM;
				for (uint32_t i = 0; i < c->subs_n; i++)
					c->subs[i].service =
					        (c->j + i * cfg->conns) % cfg->services;
			}
		} else {
			c->j = th->id * cfg->targets_n + (k - load_n);
			c->role = ROLE_WRITER;
			c->target = c->j % cfg->targets_n;
			c->w_own = plan_writer_services(plan, c->j);
			c->period_ns = plan_writer_period_ns(plan, c->j);
		}
		rc = conn_init(c, cfg->pipeline > SETUP_PIPELINE ? cfg->pipeline : SETUP_PIPELINE);
		if (rc < 0)
			return rc;
	}
	entries = pow2_at_least(2 * l->conns_n + 64);
	if (entries > RING_ENTRIES_MAX)
		entries = RING_ENTRIES_MAX;
	rc = uring_init(&l->ring, entries, &why);
	if (rc < 0) {
		snprintf(th->why, sizeof(th->why), "io_uring: %s (%s)", why, strerror(-rc));
		return rc;
	}
	l->ring_ok = true;
	bufs_n = pow2_at_least(4 * l->conns_n);
	if (bufs_n < RECV_BUFS_MIN)
		bufs_n = RECV_BUFS_MIN;
	if (bufs_n > RECV_BUFS_MAX)
		bufs_n = RECV_BUFS_MAX;
	rc = uring_bufs_init(&l->ring, &l->bufs, BUF_GROUP, bufs_n, RECV_BUF_BYTES);
	if (rc < 0) {
		snprintf(th->why, sizeof(th->why), "io_uring buffer ring: %s", strerror(-rc));
		return rc;
	}
	return 0;
}

static void loop_free(struct loop *l)
{
	if (l->ring_ok) {
		uring_bufs_free(&l->ring, &l->bufs);
		io_uring_queue_exit(&l->ring);
	}
	for (uint32_t k = 0; l->conns && k < l->conns_n; k++) {
		struct conn *c = &l->conns[k];

		if (c->fd >= 0)
			close(c->fd);
		buf_free(&c->carry);
		buf_free(&c->out);
		buf_free(&c->sending);
		mem_free(c->slots);
		mem_free(c->free_slots);
		mem_free(c->subs);
	}
	mem_free(l->conns);
	mem_free(l->ready);
	mem_free(l->heap);
}

void *loop_thread(void *arg)
{
	struct bench_thread *th = arg;
	struct loop *l = mem_calloc(1, sizeof(*l));
	const struct bench_config *cfg = th->sh->cfg;
	int rc;

	if (l == NULL) {
		th->rc = -ERR_NOMEM;
		snprintf(th->why, sizeof(th->why), "out of memory");
		STORE_RELEASE(&th->arrived, (uint32_t)PH_COUNT);
		return NULL;
	}
	rc = loop_init(l, th);
	for (uint32_t k = 0; rc == 0 && k < l->conns_n; k++) {
		struct conn *c = &l->conns[k];

		rc = conn_connect(l, c);
		if (rc < 0)
			snprintf(th->why, sizeof(th->why), "connect to %s:%u: %s",
			         cfg->targets[c->target].host, cfg->targets[c->target].port,
			         strerror(-rc));
	}
	if (rc < 0) {
		th->rc = rc;
		if (th->why[0] == '\0')
			snprintf(th->why, sizeof(th->why), "set-up failed: %s", err_str(rc));
		STORE_RELEASE(&th->arrived, (uint32_t)PH_COUNT);
		goto out;
	}
	if (!wait_go(l, PH_CONNECT))
		goto out;
	for (int ph = PH_SETUP; ph < PH_COUNT; ph++) {
		run_phase(l, (enum bench_phase)ph);
		if (!wait_go(l, (enum bench_phase)ph))
			break;
	}
out:
	loop_free(l);
	mem_free(l);
	return NULL;
}
