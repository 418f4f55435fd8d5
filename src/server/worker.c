/*
 * worker.c - the per-core server loop.
 *
 * Thread per core. Worker i owns store shard i, its own io_uring (created on
 * its own thread), its own listening socket on the shared client port
 * (SO_REUSEPORT: the kernel spreads connections), its own connections and
 * its own pools. Nothing here is shared between workers except the store
 * (read lock-free by everyone, written only by each shard's owner) and the
 * cross-core rings (shard/xcore.h).
 *
 * Loop: submit and wait (bounded by a short timeout for the timers); reap
 * every completion (accepts, multishot receives from the provided buffer
 * ring, sends, wake-ups); then "before sleep": drain the inbound rings from
 * the other workers, run heartbeat expiry and epoch reclamation, flush
 * every connection that has output with one send, and wake each worker we
 * queued messages for, once.
 *
 * Requests. A frame is checked whole (proto_body_check) before any item is
 * acted on. Reads (LIST) are served from any shard under the epoch. A
 * write item (register, deregister, heartbeat) belongs to the shard of its
 * service: items of our own shard run at once; if others remain, the frame
 * is copied into a `pending` (a per-worker pool object), and a pointer to
 * it is sent to each shard concerned, which runs its own items, writes
 * their results in the pending's result array (distinct slots, no sharing)
 * and sends the pointer back. When the last part is back the response goes
 * out. So a batch costs one message per shard it touches, not one per item,
 * and nothing is allocated per request beyond the pool object.
 *
 * Connections live in a fixed table (bounded by --conns-max / workers).
 * user_data carries the operation, the slot and the slot's generation, so a
 * completion for a slot that was closed and reused is recognised and
 * dropped. A connection holds no input buffer unless a frame is split
 * across receives, and no output buffer when idle. Broken framing gets one
 * ERROR frame and the connection closes after it is sent; nothing another
 * connection holds is touched.
 *
 * Shutdown: stop accepting and reading, finish every started request
 * (including parts run for other workers), flush, then exit once every
 * worker has drained, because a worker may still owe another one results.
 */
#include "server/worker.h"

#include "core/atomic.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/hash.h"
#include "cluster/records.h"
#include "proto/wire.h"
#include "server/peer.h"
#include "server/xmsg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RING_ENTRIES    1024
#define RECV_BUFS       512
#define RECV_BUF_BYTES  16384
#define BUF_GROUP       1
#define XCORE_SLOTS     4096
#define PENDING_MAX     8192 /* cross-core requests in flight per worker */
#define PENDING_INLINE  4096 /* bytes of a pending object: header, results, body */
#define WAIT_MS         50
#define META_PAIRS_WIRE 256
#define OUT_CHUNK       16384

#define UD_GEN_MASK 0xffffffu

enum ud_op { UD_ACCEPT = 1, UD_RECV = 2, UD_SEND = 3, UD_WAKE = 4, UD_MSG = 5 };

static inline uint64_t ud_make(enum ud_op op, uint32_t idx, uint32_t gen)
{
	return ((uint64_t)op << 56) | ((uint64_t)(gen & 0xffffff) << 32) | idx;
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
	return (uint32_t)(ud >> 32) & 0xffffff;
}

struct buf {
	uint8_t *p;
	uint32_t len, cap;
};

enum conn_state { C_FREE = 0, C_OPEN = 1, C_CLOSING = 2 };

struct conn {
	int fd;
	uint32_t gen;
	uint8_t state;
	bool recv_armed;
	bool send_inflight;
	bool dirty;
	bool close_after_flush; /* a protocol error was answered: close once it is sent */
	struct buf in;          /* a partial frame carried between receives */
	struct buf out;         /* responses waiting for the next send */
	struct buf sending;     /* the send in flight */
	uint32_t send_off;
	uint32_t pending; /* requests of this connection out on other workers */
	int64_t active_ms;
	uint32_t next_free;
	struct sub *subs; /* this connection's subscriptions */
};

static struct worker *self_of(struct server *s, uint32_t i)
{
	return &s->workers[i];
}

#define WSTAT_ADD(w, name, d) STORE_RELAXED(&(w)->stats.name, (w)->stats.name + (d))
#define WSTAT_INC(w, name)    WSTAT_ADD(w, name, 1)

/* ---- buffers ---- */

static bool buf_reserve(struct buf *b, uint32_t more, uint32_t max)
{
	uint64_t need = (uint64_t)b->len + more;
	uint32_t cap;
	uint8_t *p;

	if (need <= b->cap)
		return true;
	if (need > max)
		return false;
	cap = b->cap ? b->cap : OUT_CHUNK;
	while (cap < need)
		cap *= 2;
	p = mem_alloc(cap);
	if (p == NULL)
		return false;
	if (b->len)
		memcpy(p, b->p, b->len);
	mem_free(b->p);
	b->p = p;
	b->cap = cap;
	return true;
}

static void buf_release(struct buf *b)
{
	mem_free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ---- connections ---- */

static struct conn *conn_at(struct worker *w, uint32_t idx)
{
	return &w->conns[idx];
}

static void conn_mark_dirty(struct worker *w, uint32_t idx)
{
	struct conn *c = conn_at(w, idx);

	if (!c->dirty) {
		c->dirty = true;
		w->dirty[w->dirty_n++] = idx;
	}
}

static void subs_of_conn_end(struct worker *w, struct conn *c);

static void conn_free_slot(struct worker *w, uint32_t idx)
{
	struct conn *c = conn_at(w, idx);

	subs_of_conn_end(w, c);
	close(c->fd);
	buf_release(&c->in);
	buf_release(&c->out);
	buf_release(&c->sending);
	c->fd = -1;
	c->state = C_FREE;
	c->gen = (c->gen + 1) & UD_GEN_MASK; /* user_data carries 24 bits of it */
	c->next_free = w->conn_free;
	w->conn_free = idx;
	w->conns_used--;
	WSTAT_INC(w, conns_closed);
}

/* Starts closing; the slot is freed once no operation and no request holds it. */
static void conn_close(struct worker *w, uint32_t idx)
{
	struct conn *c = conn_at(w, idx);

	if (c->state == C_OPEN) {
		c->state = C_CLOSING;
		shutdown(c->fd, SHUT_RDWR); /* ends the armed receive */
	}
	if (c->state == C_CLOSING && !c->recv_armed && !c->send_inflight && c->pending == 0 &&
	    !c->dirty)
		conn_free_slot(w, idx);
}

/* Room for n more output bytes; NULL closes the connection as too slow. */
static uint8_t *out_reserve(struct worker *w, uint32_t idx, uint32_t n)
{
	struct conn *c = conn_at(w, idx);

	if (!buf_reserve(&c->out, n, w->srv->cfg.out_bytes_max)) {
		WSTAT_INC(w, conns_slow_closed);
		log_warn("connection %u: output over %u bytes, closing", idx,
		         w->srv->cfg.out_bytes_max);
		conn_close(w, idx);
		return NULL;
	}
	conn_mark_dirty(w, idx);
	return c->out.p + c->out.len;
}

static void out_commit(struct worker *w, uint32_t idx, uint32_t n)
{
	conn_at(w, idx)->out.len += n;
	WSTAT_ADD(w, bytes_out, n);
}

/* Sends an ERROR-shaped response: status = code, body = str message. */
static void send_error(struct worker *w, uint32_t idx, uint8_t op, uint32_t id, int code)
{
	const char *msg = err_str(code);
	uint32_t mlen = (uint32_t)strlen(msg);
	uint8_t *p = out_reserve(w, idx, PROTO_HEADER_BYTES + 2 + mlen);

	if (p == NULL)
		return;
	proto_header_put(p, op, 2 + mlen, id, (uint16_t)(code < 0 ? -code : code), 0);
	p[PROTO_HEADER_BYTES] = (uint8_t)mlen;
	p[PROTO_HEADER_BYTES + 1] = (uint8_t)(mlen >> 8);
	memcpy(p + PROTO_HEADER_BYTES + 2, msg, mlen);
	out_commit(w, idx, PROTO_HEADER_BYTES + 2 + mlen);
}

static void protocol_error(struct worker *w, uint32_t idx, uint32_t id, int code)
{
	WSTAT_INC(w, proto_errors);
	log_debug("connection %u: %s, closing", idx, err_str(code));
	send_error(w, idx, OP_ERROR, id, code);
	conn_at(w, idx)->close_after_flush = true;
}

/* ---- executing write items on this worker's shard ---- */

/* Shard number that marks an item for the peer thread: its slot is another node's. */
#define SHARD_REMOTE UINT32_MAX

static int exec_item(struct worker *w, uint32_t origin, uint8_t op, struct proto_rd *r,
                     struct store_kv *kv, bool route, uint32_t *shard_out)
{
	struct store_key k;
	struct store_val v;
	int item_err = 0, rc;

	if (op == OP_DEREGISTER)
		proto_rd_key(r, &k);
	else
		proto_rd_instance(r, &k, &v, kv, META_PAIRS_WIRE, &item_err);
	if (k.svc.service.p == NULL) {
		*shard_out = origin; /* no shard: the origin answers it, once */
		return -ERR_NAME_EMPTY;
	}
	if (route && !item_err) {
		/* Another node's slot goes to its owner; nobody's (no READY member) runs here. */
		uint16_t owner = peer_owner(w->srv->peer, store_slot_of(&k.addr));

		if (owner != 0 && owner != peer_self_id(w->srv->peer)) {
			*shard_out = SHARD_REMOTE;
			return RESULT_REMOTE;
		}
	}
	*shard_out = store_shard_of(w->srv->store, &k.svc);
	if (*shard_out != w->id)
		return 0;
	if (item_err)
		return item_err;
	switch (op) {
	case OP_REGISTER:
		return store_upsert(w->shard, &k, &v);
	case OP_DEREGISTER:
		return store_delete(w->shard, &k);
	default:
		rc = store_touch(w->shard, &k);
		if (rc == -ERR_NOT_FOUND) /* a beat for an instance we lack re-creates it */
			rc = store_upsert(w->shard, &k, &v);
		return rc;
	}
}

/*
 * Runs the items of a checked body that belong to this worker's shard,
 * writing their results; returns the mask of other shards with items.
 *
 * With `route` (the origin handling a client's frame in a cluster) every
 * item gets a mark - 1 when its slot is another node's (counted in *remote;
 * the peer thread forwards those) - and every result is written
 * (RESULT_REMOTE, or 0 for other shards' items until they answer). A part
 * run for another origin skips the marked items (marks non-NULL). The marks
 * are never written once the pending is sent: parts read them, and each
 * part writes only the results of its own items.
 */
static uint64_t exec_items(struct worker *w, uint32_t origin, const struct proto_header *h,
                           const uint8_t *body, int16_t *results, bool route, uint8_t *marks,
                           uint32_t *remote)
{
	static __thread struct store_kv kv[META_PAIRS_WIRE];
	struct proto_rd r;
	uint64_t others = 0;
	uint64_t done = 0;

	proto_rd_init(&r, body, h->body_len);
	for (uint32_t i = 0; i < h->count; i++) {
		uint32_t shard;
		int rc;

		if (!route && marks && marks[i]) {
			proto_rd_skip_item(&r, h->op);
			continue;
		}
		rc = exec_item(w, origin, h->op, &r, kv, route, &shard);
		if (route)
			marks[i] = shard == SHARD_REMOTE;
		if (shard == SHARD_REMOTE) {
			results[i] = RESULT_REMOTE;
			(*remote)++;
			continue;
		}
		if (shard != w->id) {
			others |= 1ull << shard;
			if (route)
				results[i] = 0;
			continue;
		}
		results[i] = (int16_t)rc;
		done++;
		if (rc < 0)
			WSTAT_INC(w, item_errors);
	}
	if (h->op == OP_REGISTER)
		WSTAT_ADD(w, op_register, done);
	else if (h->op == OP_DEREGISTER)
		WSTAT_ADD(w, op_deregister, done);
	else
		WSTAT_ADD(w, op_heartbeat, done);
	return others;
}

static void respond_results(struct worker *w, uint32_t idx, const struct proto_header *h,
                            const int16_t *results)
{
	uint32_t body = 2u * h->count;
	uint8_t *p = out_reserve(w, idx, PROTO_HEADER_BYTES + body);

	if (p == NULL)
		return;
	proto_header_put(p, h->op | PROTO_RESPONSE, body, h->request_id, 0, h->count);
	for (uint32_t i = 0; i < h->count; i++) {
		uint16_t v = (uint16_t)results[i];

		p[PROTO_HEADER_BYTES + 2 * i] = (uint8_t)v;
		p[PROTO_HEADER_BYTES + 2 * i + 1] = (uint8_t)(v >> 8);
	}
	out_commit(w, idx, PROTO_HEADER_BYTES + body);
}

/* ---- latency ---- */

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no system call */
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void latency_record(struct worker *w, int64_t start_us)
{
	int64_t us = mono_us() - start_us;
	int b = 0;

	while (b < WORKER_LAT_BUCKETS - 1 && us > worker_lat_bounds_us[b])
		b++;
	WSTAT_ADD(w, lat_count[b], 1);
	WSTAT_ADD(w, lat_sum_us, (uint64_t)(us < 0 ? 0 : us));
}

/* ---- cross-core ---- */

static void wake(struct worker *w, uint32_t to)
{
	w->wake_mask |= 1ull << to;
}

static void xsend(struct worker *w, uint32_t to, void *p)
{
	if (w->backlog_n == 0 && xcore_send(&w->srv->xcore, w->id, to, p)) {
		WSTAT_INC(w, xcore_sent);
		wake(w, to);
		return;
	}
	/* The ring is full (or older messages wait): keep order, retry each loop. */
	WSTAT_INC(w, xcore_full);
	if (w->backlog_n == w->backlog_cap) {
		uint32_t cap = w->backlog_cap ? w->backlog_cap * 2 : 64;
		void **b = mem_alloc(sizeof(b[0]) * 2 * cap);

		if (b == NULL) {
			log_error("out of memory for the cross-core backlog");
			abort(); /* dropping an accepted request is not an option */
		}
		memcpy(b, w->backlog, sizeof(b[0]) * 2 * w->backlog_n);
		mem_free(w->backlog);
		w->backlog = b;
		w->backlog_cap = cap;
	}
	/* Stored as (destination, message) pairs. */
	w->backlog[2 * w->backlog_n] = (void *)(uintptr_t)to;
	w->backlog[2 * w->backlog_n + 1] = p;
	w->backlog_n++;
}

static void backlog_retry(struct worker *w)
{
	uint32_t i = 0;

	while (i < w->backlog_n) {
		uint32_t to = (uint32_t)(uintptr_t)w->backlog[2 * i];

		if (!xcore_send(&w->srv->xcore, w->id, to, w->backlog[2 * i + 1]))
			break;
		WSTAT_INC(w, xcore_sent);
		wake(w, to);
		i++;
	}
	if (i) {
		w->backlog_n -= i;
		memmove(w->backlog, w->backlog + 2 * i, sizeof(w->backlog[0]) * 2 * w->backlog_n);
	}
}

static void pending_free(struct worker *w, struct pending *p)
{
	if (p->heap)
		mem_free(p->results);
	pool_put(&w->pendings, p);
	w->pendings_n--;
}

static struct pending *pending_new(struct worker *w, const struct proto_header *h,
                                   const uint8_t *body, uint32_t idx)
{
	size_t need = sizeof(struct pending) + 2u * h->count + h->body_len + h->count;
	struct pending *p;

	if (w->pendings_n >= PENDING_MAX)
		return NULL;
	p = pool_get(&w->pendings);
	if (p == NULL)
		return NULL;
	p->heap = need > PENDING_INLINE;
	if (p->heap) {
		p->results = mem_alloc(2u * h->count + h->body_len + h->count);
		if (p->results == NULL) {
			pool_put(&w->pendings, p);
			return NULL;
		}
	} else {
		p->results = (int16_t *)(p + 1);
	}
	p->body = (uint8_t *)(p->results + h->count);
	memcpy(p->body, body, h->body_len);
	p->marks = p->body + h->body_len;
	p->kind = XM_PENDING;
	p->remote = false;
	p->origin = w->id;
	p->start_us = w->frame_start_us;
	p->conn = idx;
	p->conn_gen = conn_at(w, idx)->gen;
	p->h = *h;
	w->pendings_n++;
	return p;
}

/* A pending came back from a shard that ran its part. */
static void pending_part_done(struct worker *w, struct pending *p)
{
	struct conn *c = conn_at(w, p->conn);

	if (--p->parts > 0)
		return;
	latency_record(w, p->start_us);
	if (c->gen == p->conn_gen) {
		c->pending--;
		if (c->state == C_OPEN)
			respond_results(w, p->conn, &p->h, p->results);
		else
			conn_close(w, p->conn);
	}
	pending_free(w, p);
}

static void on_cluster_message(struct worker *w, void *m);

static void on_message(struct worker *w, uint32_t from, void *m)
{
	struct pending *p = m;
	uint32_t remote = 0;

	(void)from;
	if (p->kind != XM_PENDING) {
		on_cluster_message(w, m);
		return;
	}
	if (p->origin == w->id) {
		pending_part_done(w, p);
		return;
	}
	/* Run our items of another worker's (or a peer's) request and send it back. */
	(void)exec_items(w, p->origin, &p->h, p->body, p->results, false,
	                 p->remote ? p->marks : NULL, &remote);
	xsend(w, p->origin, p);
}

/* Replicated records applied per loop at most, so clients are served in between. */
#define APPLY_BUDGET 4096

static void drain_inbound(struct worker *w)
{
	uint32_t peer = w->srv->nworkers, budget = APPLY_BUDGET;
	void *msgs[256];

	/* Other workers' requests: small, all of them. */
	for (uint32_t from = 0; from < w->srv->nworkers; from++) {
		uint32_t n;

		if (from == w->id)
			continue;
		while ((n = xcore_recv(&w->srv->xcore, from, w->id, msgs, 256)) > 0)
			for (uint32_t i = 0; i < n; i++)
				on_message(w, from, msgs[i]);
	}
	/* The peer thread's: records by the thousand, so a budget per loop. */
	w->inbound_more = false;
	while (w->srv->peer && budget > 0) {
		void *m;

		if (xcore_recv(&w->srv->xcore, peer, w->id, &m, 1) == 0)
			return;
		if (*(uint8_t *)m == XM_APPLY || *(uint8_t *)m == XM_REPAIR) {
			uint32_t n = ((struct xrecords *)m)->count;

			budget = n >= budget ? 0 : budget - n;
		}
		on_message(w, peer, m);
	}
	w->inbound_more = w->srv->peer != NULL; /* maybe more: look again without sleeping */
}

/* ---- request handling ---- */

static void handle_write(struct worker *w, uint32_t idx, const struct proto_header *h,
                         const uint8_t *body)
{
	int16_t local[1024];
	uint8_t local_marks[1024];
	int16_t *results = h->count <= 1024 ? local : NULL;
	uint8_t *marks = local_marks;
	struct pending *p = NULL;
	bool route = w->srv->peer != NULL;
	uint32_t remote = 0;
	uint64_t others;

	if (results == NULL) {
		/* Large batches keep their results in a pending from the start. */
		p = pending_new(w, h, body, idx);
		if (p == NULL) {
			WSTAT_INC(w, busy);
			send_error(w, idx, h->op | PROTO_RESPONSE, h->request_id, -ERR_BUSY);
			return;
		}
		results = p->results;
		marks = p->marks;
	}
	others = exec_items(w, w->id, h, body, results, route, route ? marks : NULL, &remote);
	if (others == 0 && remote == 0) {
		respond_results(w, idx, h, results);
		if (p)
			pending_free(w, p);
		return;
	}
	if (p == NULL) {
		p = pending_new(w, h, body, idx);
		if (p == NULL) {
			/*
			 * Our own items already ran. Answer them, and refuse the
			 * rest as busy so the client retries those (idempotent).
			 */
			WSTAT_INC(w, busy);
			struct proto_rd r;
			uint32_t shard;
			struct store_kv kv[1];

			proto_rd_init(&r, body, h->body_len);
			for (uint32_t i = 0; i < h->count; i++) {
				struct store_key k;
				struct store_val v;
				int e;

				if (h->op == OP_DEREGISTER)
					proto_rd_key(&r, &k);
				else
					proto_rd_instance(&r, &k, &v, kv, 0, &e);
				shard = k.svc.service.p ? store_shard_of(w->srv->store, &k.svc)
				                        : w->id;
				if (shard != w->id || (route && marks[i]))
					results[i] = (int16_t)-ERR_BUSY;
			}
			respond_results(w, idx, h, results);
			return;
		}
		memcpy(p->results, results, 2u * h->count);
		if (route)
			memcpy(p->marks, marks, h->count);
	}
	p->shard_mask = others;
	p->remote = remote > 0;
	p->parts = (uint32_t)__builtin_popcountll(others) + (remote > 0);
	conn_at(w, idx)->pending++;
	for (uint32_t s = 0; s < w->srv->nworkers; s++)
		if (others & (1ull << s))
			xsend(w, s, p);
	if (remote)
		xsend(w, w->srv->nworkers, p); /* the peer thread forwards them */
}

/*
 * Lists a service into the connection's output as a frame of op/id
 * (a LIST or SUBSCRIBE answer, or a PUSH). 0, or a negative code.
 */
static int send_list(struct worker *w, uint32_t idx, uint8_t op, uint32_t id,
                     const struct store_svc_key *sk, const struct store_filter *f)
{
	struct store_list_info info;
	struct proto_wr wr;
	uint32_t n, body_len;
	uint8_t *p;
	int rc;

	epoch_enter(w->rec);
	rc = store_list(w->srv->store, sk, f, w->views, w->views_cap, &info);
	if (rc < 0) {
		epoch_exit(w->rec);
		return rc;
	}
	n = (uint32_t)rc;
	if (info.total > n && info.total <= w->srv->cfg.store.limits.service_instances_max) {
		/* Bigger than the scratch: grow it once for this and later lists. */
		struct store_view *v = mem_alloc(sizeof(*v) * info.total);

		if (v) {
			mem_free(w->views);
			w->views = v;
			w->views_cap = info.total;
			rc = store_list(w->srv->store, sk, f, w->views, w->views_cap, &info);
			n = rc < 0 ? 0 : (uint32_t)rc;
		}
	}
	if (n > UINT16_MAX)
		n = UINT16_MAX;
	/* An upper bound of the encoded size; the frame is written in place. */
	/*
	 * Frames in both directions stay within --frame-max: a list that would
	 * not fit is cut; `total` tells the client how many matched.
	 */
	body_len = 12;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t m = store_meta_count(w->views[i].meta);
		uint32_t one = 2 + w->views[i].cluster.len + 1 + 16 + 2 + 4 + 1 + 12 + 2;

		for (uint32_t j = 0; j < m; j++) {
			struct store_kv kv = store_meta_at(w->views[i].meta, j);

			one += 4 + kv.key.len + kv.val.len;
		}
		if ((uint64_t)PROTO_HEADER_BYTES + body_len + one > w->srv->cfg.frame_bytes_max) {
			n = i;
			WSTAT_INC(w, lists_cut);
			break;
		}
		body_len += one;
	}
	p = out_reserve(w, idx, PROTO_HEADER_BYTES + body_len);
	if (p == NULL) {
		epoch_exit(w->rec);
		return -ERR_NOMEM;
	}
	proto_wr_init(&wr, p + PROTO_HEADER_BYTES, body_len);
	proto_wr_u64(&wr, info.revision);
	proto_wr_u32(&wr, info.total);
	for (uint32_t i = 0; i < n; i++)
		proto_wr_view(&wr, &w->views[i]);
	epoch_exit(w->rec);
	body_len = (uint32_t)(wr.p - (p + PROTO_HEADER_BYTES));
	proto_header_put(p, op, body_len, id, 0, (uint16_t)n);
	out_commit(w, idx, PROTO_HEADER_BYTES + body_len);
	return 0;
}

static void handle_list(struct worker *w, uint32_t idx, const struct proto_header *h,
                        const uint8_t *body)
{
	struct store_str clusters[PROTO_FILTER_MAX];
	struct store_svc_key sk;
	struct store_filter f;
	struct proto_rd r;
	int rc;

	WSTAT_INC(w, op_list);
	proto_rd_init(&r, body, h->body_len);
	proto_rd_svc(&r, &sk);
	proto_rd_filter(&r, &f, clusters);
	rc = send_list(w, idx, h->op | PROTO_RESPONSE, h->request_id, &sk, &f);
	if (rc < 0 && rc != -ERR_NOMEM)
		send_error(w, idx, h->op | PROTO_RESPONSE, h->request_id, rc);
}

/* ---- subscriptions ----
 *
 * A subscription lives on the worker that holds its connection. Each
 * worker keeps one `watch` per distinct service its subscribers follow,
 * with the service's last revision seen. Every push window the worker reads
 * each watched service's revision (store_revision: one lookup, no lock) and,
 * when it moved, lists the service once per subscriber (each has its own
 * filter) as a PUSH. So a burst of changes inside one window is one push,
 * changes on any shard are seen without messages between cores, and the
 * cost per window is O(watched services), not O(instances).
 *
 * A subscription ends with UNSUBSCRIBE or its connection; it is then marked
 * dead and unlinked at the end of the loop, never in the middle of a pass.
 */

#define WATCH_BUCKETS 4096

struct sub {
	struct sub *next_in_watch, *prev_in_watch; /* O(1) unlink */
	struct sub *next_in_conn;
	struct sub *next_dead;
	struct watch *watch;
	uint32_t conn, conn_gen, id;
	bool dead;
	struct store_filter filter;
	struct store_str clusters[];
	/* then the cluster names' bytes */
};

struct watch {
	struct watch *next_in_bucket;
	struct watch *next, *prev; /* every watch of the worker */
	struct sub *subs;
	uint64_t hash;
	uint64_t revision;
	struct store_svc_key key; /* strings point into names */
	char names[];
};

static uint64_t svc_key_hash(const struct store_svc_key *k)
{
	uint64_t h = XXH3_64bits(k->ns.p ? k->ns.p : "", k->ns.len);

	h = XXH3_64bits_withSeed(k->group.p ? k->group.p : "", k->group.len, h ^ 1);
	return XXH3_64bits_withSeed(k->service.p, k->service.len, h ^ 2);
}

static bool str_same(struct store_str a, struct store_str b)
{
	if (a.p == NULL || b.p == NULL)
		return a.p == b.p;
	return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

static struct watch *watch_get(struct worker *w, const struct store_svc_key *k)
{
	uint64_t h = svc_key_hash(k);
	struct watch **b = &w->watch_tab[h & (WATCH_BUCKETS - 1)], *x;
	size_t bytes;
	char *at;

	for (x = *b; x; x = x->next_in_bucket)
		if (x->hash == h && str_same(x->key.ns, k->ns) &&
		    str_same(x->key.group, k->group) && str_same(x->key.service, k->service))
			return x;
	bytes = sizeof(*x) + k->ns.len + k->group.len + k->service.len;
	x = mem_calloc(1, bytes);
	if (x == NULL)
		return NULL;
	x->hash = h;
	at = x->names;
#define COPY_NAME(f)                                                                               \
	do {                                                                                       \
		x->key.f.len = k->f.len;                                                           \
		x->key.f.p = k->f.p ? at : NULL;                                                   \
		if (k->f.p)                                                                        \
			memcpy(at, k->f.p, k->f.len);                                              \
		at += k->f.len;                                                                    \
	} while (0)
	COPY_NAME(ns);
	COPY_NAME(group);
	COPY_NAME(service);
#undef COPY_NAME
	x->next_in_bucket = *b;
	*b = x;
	x->next = w->watches;
	if (w->watches)
		w->watches->prev = x;
	w->watches = x;
	WSTAT_INC(w, watches);
	return x;
}

static void watch_drop(struct worker *w, struct watch *x)
{
	struct watch **b = &w->watch_tab[x->hash & (WATCH_BUCKETS - 1)];

	while (*b != x)
		b = &(*b)->next_in_bucket;
	*b = x->next_in_bucket;
	if (x->prev)
		x->prev->next = x->next;
	else
		w->watches = x->next;
	if (x->next)
		x->next->prev = x->prev;
	WSTAT_ADD(w, watches, (uint64_t)-1);
	mem_free(x);
}

/* Marks every subscription of a connection dead (it is closing). */
static void subs_of_conn_end(struct worker *w, struct conn *c)
{
	while (c->subs) {
		struct sub *s = c->subs;

		c->subs = s->next_in_conn;
		s->dead = true;
		s->next_dead = w->dead_subs;
		w->dead_subs = s;
	}
}

/* Unlinks and frees dead subscriptions; drops watches nobody follows. */
static void subs_reap(struct worker *w)
{
	while (w->dead_subs) {
		struct sub *s = w->dead_subs;
		struct watch *x = s->watch;

		w->dead_subs = s->next_dead;
		if (s->prev_in_watch)
			s->prev_in_watch->next_in_watch = s->next_in_watch;
		else
			x->subs = s->next_in_watch;
		if (s->next_in_watch)
			s->next_in_watch->prev_in_watch = s->prev_in_watch;
		if (x->subs == NULL)
			watch_drop(w, x);
		mem_free(s);
		w->nsubs--;
		WSTAT_ADD(w, subs, (uint64_t)-1);
	}
}

static void handle_subscribe(struct worker *w, uint32_t idx, const struct proto_header *h,
                             const uint8_t *body)
{
	struct store_str clusters[PROTO_FILTER_MAX];
	struct conn *c = conn_at(w, idx);
	struct store_svc_key sk;
	struct store_filter f;
	struct proto_rd r;
	struct watch *x;
	struct sub *s;
	size_t bytes;
	char *at;
	int rc;

	WSTAT_INC(w, op_subscribe);
	proto_rd_init(&r, body, h->body_len);
	proto_rd_svc(&r, &sk);
	proto_rd_filter(&r, &f, clusters);
	if (w->nsubs >= w->srv->cfg.subs_max) {
		send_error(w, idx, h->op | PROTO_RESPONSE, h->request_id, -ERR_LIMIT_SUBS);
		return;
	}
	/* Validate the names first: a bad name is an error answer and keeps nothing. */
	if (sk.service.p == NULL) {
		send_error(w, idx, h->op | PROTO_RESPONSE, h->request_id, -ERR_NAME_EMPTY);
		return;
	}
	uint64_t rev = store_revision(w->srv->store, &sk);

	/* Allocate before answering, so running out of memory is the answer itself. */
	bytes = sizeof(*s) + sizeof(s->clusters[0]) * f.clusters_n;
	for (uint32_t i = 0; i < f.clusters_n; i++)
		bytes += f.clusters[i].len;
	s = mem_calloc(1, bytes);
	x = s ? watch_get(w, &sk) : NULL;
	if (x == NULL) {
		mem_free(s);
		send_error(w, idx, h->op | PROTO_RESPONSE, h->request_id, -ERR_NOMEM);
		return;
	}
	rc = send_list(w, idx, h->op | PROTO_RESPONSE, h->request_id, &sk, &f);
	if (rc < 0) {
		if (rc != -ERR_NOMEM)
			send_error(w, idx, h->op | PROTO_RESPONSE, h->request_id, rc);
		mem_free(s);
		if (x->subs == NULL)
			watch_drop(w, x);
		return;
	}
	at = (char *)&s->clusters[f.clusters_n];
	for (uint32_t i = 0; i < f.clusters_n; i++) {
		s->clusters[i].len = f.clusters[i].len;
		s->clusters[i].p = at;
		memcpy(at, f.clusters[i].p ? f.clusters[i].p : "", f.clusters[i].len);
		at += f.clusters[i].len;
	}
	s->filter = f;
	s->filter.clusters = s->clusters;
	s->watch = x;
	s->conn = idx;
	s->conn_gen = c->gen;
	s->id = h->request_id;
	if (x->subs == NULL)
		x->revision = rev;
	s->next_in_watch = x->subs;
	s->prev_in_watch = NULL;
	if (x->subs)
		x->subs->prev_in_watch = s;
	x->subs = s;
	s->next_in_conn = c->subs;
	c->subs = s;
	w->nsubs++;
	WSTAT_INC(w, subs);
}

static void handle_unsubscribe(struct worker *w, uint32_t idx, const struct proto_header *h,
                               const uint8_t *body)
{
	struct conn *c = conn_at(w, idx);
	struct proto_rd r;
	struct sub **pp;
	uint32_t id;
	uint8_t *p;

	WSTAT_INC(w, op_unsubscribe);
	proto_rd_init(&r, body, h->body_len);
	id = proto_rd_u32(&r);
	for (pp = &c->subs; *pp && (*pp)->id != id; pp = &(*pp)->next_in_conn)
		;
	if (*pp == NULL) {
		send_error(w, idx, h->op | PROTO_RESPONSE, h->request_id, -ERR_NOT_FOUND);
		return;
	}
	struct sub *s = *pp;

	*pp = s->next_in_conn;
	s->dead = true;
	s->next_dead = w->dead_subs;
	w->dead_subs = s;
	p = out_reserve(w, idx, PROTO_HEADER_BYTES);
	if (p) {
		proto_header_put(p, h->op | PROTO_RESPONSE, 0, h->request_id, 0, 0);
		out_commit(w, idx, PROTO_HEADER_BYTES);
	}
}

/* The push pass: one revision read per watched service. */
static void push_changes(struct worker *w)
{
	for (struct watch *x = w->watches; x; x = x->next) {
		uint64_t rev = store_revision(w->srv->store, &x->key);

		if (rev == x->revision)
			continue;
		x->revision = rev;
		for (struct sub *s = x->subs; s; s = s->next_in_watch) {
			struct conn *c = conn_at(w, s->conn);

			if (s->dead || c->gen != s->conn_gen || c->state != C_OPEN)
				continue;
			if (send_list(w, s->conn, OP_PUSH, s->id, &x->key, &s->filter) == 0)
				WSTAT_INC(w, pushes);
		}
	}
}

static void handle_stats(struct worker *w, uint32_t idx, const struct proto_header *h)
{
	struct worker_stats ws;
	struct store_stats ss;
	static __thread struct peer_status ps;
	char text[8192];
	int n = 0;
	uint8_t *p;

	WSTAT_INC(w, op_stats);
	server_stats(w->srv, &ws);
	store_stats(w->srv->store, &ss);
#define WS_LINE(name)                                                                              \
	n += snprintf(text + n, sizeof(text) - (size_t)n, "%s %llu\n", #name,                      \
	              (unsigned long long)ws.name);
	WORKER_STATS(WS_LINE)
#undef WS_LINE
#define SS_LINE(name)                                                                              \
	n += snprintf(text + n, sizeof(text) - (size_t)n, "store_%s %llu\n", #name,                \
	              (unsigned long long)ss.name);
	STORE_STATS(SS_LINE)
#undef SS_LINE
	n += snprintf(text + n, sizeof(text) - (size_t)n, "workers %u\n", w->srv->nworkers);
	if (w->srv->peer) {
		peer_status_read(w->srv->peer, &ps);
		n += snprintf(text + n, sizeof(text) - (size_t)n,
		              "cluster_member %u\ncluster_ready %u\ncluster_quorum %u\n"
		              "cluster_map_version %llu\n",
		              ps.self_id, ps.ready, ps.quorum, (unsigned long long)ps.map_version);
#define PS_LINE(name)                                                                              \
	n += snprintf(text + n, sizeof(text) - (size_t)n, "peer_%s %llu\n", #name,                 \
	              (unsigned long long)ps.stats.name);
		PEER_STATS(PS_LINE)
#undef PS_LINE
		for (int b = 0; b < WORKER_REPL_BUCKETS; b++) {
			if (b < WORKER_REPL_BUCKETS - 1)
				n += snprintf(text + n, sizeof(text) - (size_t)n,
				              "repl_lag_ms_le_%u %llu\n", worker_repl_bounds_ms[b],
				              (unsigned long long)ws.repl_count[b]);
			else
				n += snprintf(text + n, sizeof(text) - (size_t)n,
				              "repl_lag_ms_le_inf %llu\n",
				              (unsigned long long)ws.repl_count[b]);
		}
	}
	p = out_reserve(w, idx, PROTO_HEADER_BYTES + (uint32_t)n);
	if (p == NULL)
		return;
	proto_header_put(p, OP_STATS | PROTO_RESPONSE, (uint32_t)n, h->request_id, 0, 0);
	memcpy(p + PROTO_HEADER_BYTES, text, (size_t)n);
	out_commit(w, idx, PROTO_HEADER_BYTES + (uint32_t)n);
}

static void handle_frame_inner(struct worker *w, uint32_t idx, const struct proto_header *h,
                               const uint8_t *body);

/* ---- the cluster: the feed out, records in, takeovers, the slot map ---- */

#define SYNC_MSG_BYTES (256u << 10)

static void xrecords_unref(struct xrecords *m)
{
	if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		if (m->done) /* the peer thread waits for a startup load to be applied */
			__atomic_add_fetch(m->done, 1, __ATOMIC_RELEASE);
		mem_free(m);
	}
}

/*
 * Every --sync-window the shard's change feed (one entry per changed
 * instance however often it changed: the coalescing) is encoded into record
 * batches for the peer thread, which sends each batch to every peer.
 */
static void sync_out(struct worker *w)
{
	struct xrecords *m = NULL;
	uint32_t n;

	while ((n = store_feed_drain(w->shard, w->views, w->views_cap, NULL)) > 0) {
		for (uint32_t i = 0; i < n; i++) {
			struct proto_wr wr;

			if (m == NULL) {
				m = mem_alloc(sizeof(*m) + SYNC_MSG_BYTES);
				if (m == NULL) {
					log_error(
					        "out of memory for sync: %u records left to verify",
					        n - i);
					break;
				}
				memset(m, 0, sizeof(*m));
				m->kind = XM_SYNC;
			}
			proto_wr_init(&wr, m->data + m->len, SYNC_MSG_BYTES - m->len);
			record_put(&wr, &w->views[i]);
			if (wr.overflow) { /* full: send it, put this record in the next one */
				xsend(w, w->srv->nworkers, m);
				m = NULL;
				i--;
				continue;
			}
			m->len = (uint32_t)(wr.p - m->data);
			m->count++;
		}
	}
	if (m)
		xsend(w, w->srv->nworkers, m);
}

static uint64_t key_hash(const struct store_key *k)
{
	uint64_t h = XXH3_64bits_withSeed(k->svc.ns.p, k->svc.ns.len, k->svc.ns.len);

	h = XXH3_64bits_withSeed(k->svc.group.p, k->svc.group.len, h ^ k->svc.group.len);
	h = XXH3_64bits_withSeed(k->svc.service.p, k->svc.service.len, h ^ k->svc.service.len);
	h = XXH3_64bits_withSeed(k->cluster.p, k->cluster.len, h ^ k->cluster.len);
	return XXH3_64bits_withSeed(&k->addr, sizeof(k->addr), h);
}

static void key_of_view(const struct store_view *v, struct store_key *k)
{
	memset(k, 0, sizeof(*k));
	k->svc.ns = v->ns;
	k->svc.group = v->group;
	k->svc.service = v->service;
	k->cluster = v->cluster;
	k->addr = v->addr;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long a synced record took from its owner's clock to here (same-host clocks agree). */
static void repl_lag_record(struct worker *w, int64_t now_wall, uint64_t version)
{
	int64_t lag = now_wall - (int64_t)(version >> 16);
	int b = 0;

	while (b < WORKER_REPL_BUCKETS - 1 && lag > (int64_t)worker_repl_bounds_ms[b])
		b++;
	WSTAT_ADD(w, repl_count[b], 1);
}

/* Applies records of our shard (last writer wins); keys gets their hashes if not NULL. */
static uint32_t records_apply(struct worker *w, const struct xrecords *m, uint64_t *keys)
{
	static __thread struct store_kv kv[RECORD_META_MAX];
	struct proto_rd rd;
	uint32_t nkeys = 0;
	bool synced = m->kind == XM_APPLY && m->before == 0; /* not a load chunk */
	int64_t now_wall = synced ? wall_ms() : 0;

	proto_rd_init(&rd, m->data, m->len);
	for (uint32_t i = 0; i < m->count; i++) {
		struct store_record r;

		record_get(&rd, &r, kv, RECORD_META_MAX);
		if (rd.err) /* checked by the peer thread: cannot happen */
			break;
		if (r.key.svc.service.p == NULL) /* the peer thread sent us only our shard's */
			continue;
		if (keys)
			keys[nkeys++] = key_hash(&r.key);
		if (m->kind == XM_REPAIR)
			(void)store_repair_apply(w->shard, &r, m->before);
		else if (store_apply(w->shard, &r) >= 0 && synced)
			repl_lag_record(w, now_wall, r.version);
	}
	return nkeys;
}

/*
 * The owner's copy of a slot replaces ours: its records are applied, and
 * our instances of the slot it does not have - and that are older than
 * its listing - are forgotten.
 */
static void repair_slot(struct worker *w, const struct xrecords *m)
{
	uint64_t *keys = mem_alloc(sizeof(keys[0]) * (m->count ? m->count : 1));
	struct store_cursor c;
	uint32_t nkeys;

	if (keys == NULL) {
		log_error("out of memory for a repair of slot %u: verify retries it", m->slot);
		return;
	}
	nkeys = records_apply(w, m, keys);
	qsort(keys, nkeys, sizeof(keys[0]), u64_cmp);
	epoch_enter(w->rec);
	store_cursor_init(&c, m->slot);
	while (!c.done) {
		uint32_t n = store_slot_scan(w->srv->store, &c, w->views, w->views_cap);

		for (uint32_t i = 0; i < n; i++) {
			const struct store_view *v = &w->views[i];
			struct store_key k;
			uint64_t h;

			if (v->version >= m->before)
				continue;
			key_of_view(v, &k);
			if (store_shard_of(w->srv->store, &k.svc) != w->id)
				continue;
			h = key_hash(&k);
			if (bsearch(&h, keys, nkeys, sizeof(keys[0]), u64_cmp) == NULL)
				(void)store_forget(w->shard, &k, m->before);
		}
	}
	epoch_exit(w->rec);
	mem_free(keys);
}

/* Slots this node gained: every instance in them gets a full fresh deadline. */
static void take_over(struct worker *w, const struct xtakeover *t)
{
	epoch_enter(w->rec);
	for (uint32_t word = 0; word < STORE_SLOTS / 64; word++) {
		uint64_t bits = t->bits[word];

		while (bits) {
			struct store_cursor c;

			store_cursor_init(&c, word * 64 + (uint32_t)__builtin_ctzll(bits));
			bits &= bits - 1;
			while (!c.done) {
				uint32_t n =
				        store_slot_scan(w->srv->store, &c, w->views, w->views_cap);

				for (uint32_t i = 0; i < n; i++) {
					struct store_key k;

					key_of_view(&w->views[i], &k);
					if (store_shard_of(w->srv->store, &k.svc) == w->id)
						(void)store_adopt(w->shard, &k);
				}
			}
		}
	}
	epoch_exit(w->rec);
}

static void on_cluster_message(struct worker *w, void *msg)
{
	switch (*(uint8_t *)msg) {
	case XM_APPLY:
		records_apply(w, msg, NULL);
		xrecords_unref(msg);
		break;
	case XM_REPAIR:
		repair_slot(w, msg);
		xrecords_unref(msg);
		break;
	case XM_TAKEOVER: {
		struct xtakeover *t = msg;

		take_over(w, t);
		if (__atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0)
			mem_free(t);
		break;
	}
	default:
		log_error("unknown cross-core message kind %u", *(uint8_t *)msg);
		abort();
	}
}

static void handle_slot_map(struct worker *w, uint32_t idx, const struct proto_header *h)
{
	static __thread struct peer_status st;
	static __thread uint16_t owners[STORE_SLOTS];
	struct proto_wr wr;
	uint32_t len = 11;
	uint8_t *p;

	if (w->srv->peer == NULL) {
		p = out_reserve(w, idx, PROTO_HEADER_BYTES + len);
		if (p == NULL)
			return;
		proto_header_put(p, OP_SLOT_MAP | PROTO_RESPONSE, len, h->request_id, 0, 0);
		proto_wr_init(&wr, p + PROTO_HEADER_BYTES, len);
		proto_wr_u64(&wr, 0);
		proto_wr_u16(&wr, 0);
		proto_wr_u8(&wr, 1);
		out_commit(w, idx, PROTO_HEADER_BYTES + len);
		return;
	}
	peer_status_read(w->srv->peer, &st);
	uint64_t version = peer_map_read(w->srv->peer, owners);

	for (uint32_t i = 0; i < st.n; i++)
		len += 2 + 1 + 1 + 2 + (uint32_t)strlen(st.m[i].addr) + 2 +
		       (uint32_t)strlen(st.m[i].client_addr);
	len += 2 * STORE_SLOTS;
	p = out_reserve(w, idx, PROTO_HEADER_BYTES + len);
	if (p == NULL)
		return;
	proto_header_put(p, OP_SLOT_MAP | PROTO_RESPONSE, len, h->request_id, 0, (uint16_t)st.n);
	proto_wr_init(&wr, p + PROTO_HEADER_BYTES, len);
	proto_wr_u64(&wr, version);
	proto_wr_u16(&wr, st.self_id);
	proto_wr_u8(&wr, st.ready);
	for (uint32_t i = 0; i < st.n; i++) {
		proto_wr_u16(&wr, st.m[i].id);
		proto_wr_u8(&wr, (uint8_t)st.m[i].health);
		proto_wr_u8(&wr, st.m[i].ready);
		proto_wr_str(&wr,
		             (struct store_str){ st.m[i].addr, (uint32_t)strlen(st.m[i].addr) });
		proto_wr_str(&wr, (struct store_str){ st.m[i].client_addr,
		                                      (uint32_t)strlen(st.m[i].client_addr) });
	}
	for (uint32_t s = 0; s < STORE_SLOTS; s++)
		proto_wr_u16(&wr, owners[s]);
	out_commit(w, idx, PROTO_HEADER_BYTES + len);
}

/* Frames answered here are timed here; frames sent to other shards when they come back. */
static void handle_frame(struct worker *w, uint32_t idx, const struct proto_header *h,
                         const uint8_t *body)
{
	uint32_t before = w->pendings_n;

	w->frame_start_us = mono_us();
	handle_frame_inner(w, idx, h, body);
	if (w->pendings_n == before)
		latency_record(w, w->frame_start_us);
}

static void handle_frame_inner(struct worker *w, uint32_t idx, const struct proto_header *h,
                               const uint8_t *body)
{
	int rc = proto_body_check(h, body, w->srv->cfg.batch_max);
	uint8_t *p;

	WSTAT_INC(w, frames);
	if (rc < 0) {
		protocol_error(w, idx, h->request_id, rc);
		return;
	}
	switch (h->op) {
	case OP_PING:
		WSTAT_INC(w, op_ping);
		p = out_reserve(w, idx, PROTO_HEADER_BYTES + h->body_len);
		if (p) {
			proto_header_put(p, OP_PING | PROTO_RESPONSE, h->body_len, h->request_id, 0,
			                 0);
			memcpy(p + PROTO_HEADER_BYTES, body, h->body_len);
			out_commit(w, idx, PROTO_HEADER_BYTES + h->body_len);
		}
		break;
	case OP_REGISTER:
	case OP_DEREGISTER:
	case OP_HEARTBEAT:
		handle_write(w, idx, h, body);
		break;
	case OP_LIST:
		handle_list(w, idx, h, body);
		break;
	case OP_STATS:
		handle_stats(w, idx, h);
		break;
	case OP_SUBSCRIBE:
		handle_subscribe(w, idx, h, body);
		break;
	case OP_UNSUBSCRIBE:
		handle_unsubscribe(w, idx, h, body);
		break;
	case OP_SLOT_MAP:
		handle_slot_map(w, idx, h);
		break;
	default:
		send_error(w, idx, h->op | PROTO_RESPONSE, h->request_id, -ERR_PROTO_OP);
		break;
	}
}

/* Parses every complete frame in data; returns bytes consumed, or -1 to stop reading. */
static long parse_frames(struct worker *w, uint32_t idx, const uint8_t *data, size_t len)
{
	struct conn *c = conn_at(w, idx);
	size_t off = 0;

	while (off < len && c->state == C_OPEN && !c->close_after_flush) {
		struct proto_header h;
		long n = proto_frame_check(data + off, len - off, w->srv->cfg.frame_bytes_max, &h);

		if (n < 0) {
			protocol_error(w, idx, 0, (int)n);
			return -1;
		}
		if (n == 0)
			break;
		handle_frame(w, idx, &h, data + off + PROTO_HEADER_BYTES);
		off += (size_t)n;
	}
	if (c->close_after_flush || c->state != C_OPEN)
		return -1;
	return (long)off;
}

static void on_data(struct worker *w, uint32_t idx, const uint8_t *data, size_t len)
{
	struct conn *c = conn_at(w, idx);
	long used;

	c->active_ms = w->now_ms;
	WSTAT_ADD(w, bytes_in, len);
	if (c->in.len == 0) {
		used = parse_frames(w, idx, data, len);
		if (used < 0)
			return;
		if ((size_t)used < len) {
			/* Keep the partial frame; the receive buffer goes back to the kernel. */
			if (!buf_reserve(&c->in, (uint32_t)(len - (size_t)used),
			                 w->srv->cfg.frame_bytes_max + RECV_BUF_BYTES)) {
				conn_close(w, idx);
				return;
			}
			memcpy(c->in.p, data + used, len - (size_t)used);
			c->in.len = (uint32_t)(len - (size_t)used);
		}
		return;
	}
	if (!buf_reserve(&c->in, (uint32_t)len, w->srv->cfg.frame_bytes_max + RECV_BUF_BYTES)) {
		conn_close(w, idx);
		return;
	}
	memcpy(c->in.p + c->in.len, data, len);
	c->in.len += (uint32_t)len;
	used = parse_frames(w, idx, c->in.p, c->in.len);
	if (used < 0)
		return;
	c->in.len -= (uint32_t)used;
	if (c->in.len == 0)
		buf_release(&c->in);
	else
		memmove(c->in.p, c->in.p + used, c->in.len);
}

/* ---- io_uring operations ---- */

static void arm_accept(struct worker *w)
{
	struct io_uring_sqe *sqe = uring_sqe(&w->ring);

	io_uring_prep_multishot_accept(sqe, w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, ud_make(UD_ACCEPT, 0, 0));
	w->accept_armed = true;
}

static void arm_recv(struct worker *w, uint32_t idx)
{
	struct conn *c = conn_at(w, idx);
	struct io_uring_sqe *sqe = uring_sqe(&w->ring);

	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BUF_GROUP;
	io_uring_sqe_set_data64(sqe, ud_make(UD_RECV, idx, c->gen));
	c->recv_armed = true;
}

static void submit_send(struct worker *w, uint32_t idx)
{
	struct conn *c = conn_at(w, idx);
	struct io_uring_sqe *sqe = uring_sqe(&w->ring);

	io_uring_prep_send(sqe, c->fd, c->sending.p + c->send_off, c->sending.len - c->send_off,
	                   MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud_make(UD_SEND, idx, c->gen));
	c->send_inflight = true;
}

static void on_accept(struct worker *w, struct io_uring_cqe *cqe)
{
	uint32_t idx;
	struct conn *c;
	int one = 1;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		w->accept_armed = false;
	if (cqe->res < 0) {
		if (cqe->res != -ECANCELED && !w->stopping) {
			/*
			 * Out of descriptors (or another accept failure): pause
			 * accepting for a moment instead of spinning on it, and
			 * log at most once a second.
			 */
			WSTAT_INC(w, accept_errors);
			w->accept_resume_ms = w->now_ms + 100;
			if (w->now_ms - w->accept_log_ms >= 1000) {
				w->accept_log_ms = w->now_ms;
				log_warn("accept: %s (pausing accepts for 100 ms)",
				         strerror(-cqe->res));
			}
		}
		return;
	}
	if (w->stopping || w->conn_free == UINT32_MAX) {
		WSTAT_INC(w, conns_refused);
		close(cqe->res);
		return;
	}
	idx = w->conn_free;
	c = conn_at(w, idx);
	w->conn_free = c->next_free;
	w->conns_used++;
	c->fd = cqe->res;
	c->state = C_OPEN;
	c->recv_armed = c->send_inflight = c->dirty = c->close_after_flush = false;
	c->pending = 0;
	c->send_off = 0;
	c->subs = NULL;
	c->active_ms = w->now_ms;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	WSTAT_INC(w, conns_accepted);
	arm_recv(w, idx);
}

static void on_recv(struct worker *w, struct io_uring_cqe *cqe)
{
	uint32_t idx = ud_idx(cqe->user_data);
	struct conn *c = conn_at(w, idx);
	bool more = cqe->flags & IORING_CQE_F_MORE;

	if (c->gen != ud_gen(cqe->user_data) || c->state == C_FREE) {
		/* Stale (the slot was reused): still give its buffer back. */
		if (cqe->flags & IORING_CQE_F_BUFFER)
			uring_buf_recycle(&w->bufs,
			                  (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT));
		return;
	}
	if (!more)
		c->recv_armed = false;
	if (cqe->res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
		uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);

		if (c->state == C_OPEN && !w->stopping)
			on_data(w, idx, uring_buf(&w->bufs, bid), (size_t)cqe->res);
		uring_buf_recycle(&w->bufs, bid);
	}
	if (cqe->res == -ENOBUFS && c->state == C_OPEN) {
		/* Every buffer was out; they came back as we parsed. Re-arm. */
		if (!more)
			arm_recv(w, idx);
		return;
	}
	if (cqe->res <= 0 && cqe->res != -ENOBUFS) {
		conn_close(w, idx);
		return;
	}
	if (!more && c->state == C_OPEN && !c->close_after_flush)
		arm_recv(w, idx);
	else if (c->state == C_CLOSING)
		conn_close(w, idx);
}

static void on_send(struct worker *w, struct io_uring_cqe *cqe)
{
	uint32_t idx = ud_idx(cqe->user_data);
	struct conn *c = conn_at(w, idx);

	if (c->gen != ud_gen(cqe->user_data) || c->state == C_FREE)
		return;
	c->send_inflight = false;
	if (cqe->res < 0) {
		conn_close(w, idx);
		return;
	}
	c->send_off += (uint32_t)cqe->res;
	if (c->send_off < c->sending.len && c->state == C_OPEN) {
		submit_send(w, idx);
		return;
	}
	c->sending.len = 0;
	c->send_off = 0;
	if (c->sending.cap > 4 * OUT_CHUNK)
		buf_release(&c->sending); /* a burst's big buffer does not stay */
	if (c->out.len > 0)
		conn_mark_dirty(w, idx);
	else if (c->close_after_flush)
		conn_close(w, idx);
	if (c->state == C_CLOSING)
		conn_close(w, idx);
}

/* One send per connection with output: swap the buffers, send the full one. */
static void flush(struct worker *w)
{
	for (uint32_t i = 0; i < w->dirty_n; i++) {
		uint32_t idx = w->dirty[i];
		struct conn *c = conn_at(w, idx);
		struct buf t;

		c->dirty = false;
		if (c->state == C_FREE)
			continue;
		if (c->send_inflight || c->out.len == 0) {
			if (c->state == C_CLOSING)
				conn_close(w, idx);
			continue;
		}
		if (c->state == C_CLOSING && !c->close_after_flush) {
			conn_close(w, idx);
			continue;
		}
		t = c->sending;
		c->sending = c->out;
		c->out = t;
		c->out.len = 0;
		c->send_off = 0;
		submit_send(w, idx);
	}
	w->dirty_n = 0;
}

static void idle_sweep(struct worker *w)
{
	uint32_t idle = w->srv->cfg.idle_timeout_ms;

	if (idle == 0)
		return;
	for (uint32_t i = 0; i < w->conns_max; i++) {
		struct conn *c = conn_at(w, i);

		/* A subscriber may rightly be silent: it waits for pushes. */
		if (c->state == C_OPEN && c->pending == 0 && c->subs == NULL &&
		    w->now_ms - c->active_ms >= idle) {
			WSTAT_INC(w, conns_idle_closed);
			conn_close(w, i);
		}
	}
}

static void send_wakes(struct worker *w)
{
	uint64_t m = w->wake_mask;

	w->wake_mask = 0;
	while (m) {
		uint32_t to = (uint32_t)__builtin_ctzll(m);
		struct io_uring_sqe *sqe;

		m &= m - 1;
		if (to == w->srv->nworkers) { /* the peer thread sleeps in epoll */
			uint64_t one = 1;

			if (write(peer_wake_fd(w->srv->peer), &one, sizeof(one)) < 0 &&
			    errno != EAGAIN)
				log_error("waking the peer thread: %s", strerror(errno));
			continue;
		}
		sqe = uring_sqe(&w->ring);
		io_uring_prep_msg_ring(sqe, self_of(w->srv, to)->ring.ring_fd, 0,
		                       ud_make(UD_WAKE, 0, 0), 0);
		io_uring_sqe_set_data64(sqe, ud_make(UD_MSG, 0, 0));
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	}
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool drained(struct worker *w)
{
	if (w->pendings_n > 0 || w->backlog_n > 0)
		return false;
	for (uint32_t i = 0; i < w->conns_max; i++) {
		struct conn *c = conn_at(w, i);

		if (c->state != C_FREE && (c->send_inflight || c->out.len > 0 || c->pending))
			return false;
	}
	return true;
}

static void begin_stop(struct worker *w)
{
	w->stopping = true;
	if (w->listen_fd >= 0) {
		shutdown(w->listen_fd, SHUT_RDWR);
		close(w->listen_fd);
		w->listen_fd = -1;
	}
}

static void close_all(struct worker *w)
{
	for (uint32_t i = 0; i < w->conns_max; i++)
		if (conn_at(w, i)->state == C_OPEN)
			conn_close(w, i);
}

static void loop(struct worker *w)
{
	struct server *s = w->srv;
	struct __kernel_timespec ts = { 0, WAIT_MS * 1000000LL };
	int64_t stop_deadline = 0;

	for (;;) {
		struct io_uring_cqe *cqe, *wait;
		unsigned head, n = 0;
		int rc;

		rc = io_uring_submit_and_wait_timeout(&w->ring, &wait, 1, &ts, NULL);
		if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY)
			log_error("io_uring wait: %s", strerror(-rc));
		w->now_ms = mono_ms();
		io_uring_for_each_cqe(&w->ring, head, cqe)
		{
			n++;
			switch (ud_op(cqe->user_data)) {
			case UD_ACCEPT:
				on_accept(w, cqe);
				break;
			case UD_RECV:
				on_recv(w, cqe);
				break;
			case UD_SEND:
				on_send(w, cqe);
				break;
			case UD_MSG:
				if (cqe->res < 0)
					log_error("msg_ring: %s", strerror(-cqe->res));
				break;
			case UD_WAKE:
			default:
				break;
			}
		}
		io_uring_cq_advance(&w->ring, n);
		WSTAT_ADD(w, cqes, n);
		WSTAT_INC(w, loops);
		if (n > 0) {
			int b = 31 - __builtin_clz(n);

			if (b >= WORKER_BATCH_BUCKETS)
				b = WORKER_BATCH_BUCKETS - 1;
			WSTAT_ADD(w, batch_count[b], 1);
		}

		/* Before sleep. */
		backlog_retry(w);
		drain_inbound(w);
		store_expire(w->shard, s->cfg.expire_budget);
		store_poll(w->shard);
		if (w->now_ms - w->last_sweep_ms >= 1000) {
			w->last_sweep_ms = w->now_ms;
			idle_sweep(w);
		}
		if (w->watches && w->now_ms - w->last_push_ms >= (int64_t)s->cfg.push_window_ms) {
			w->last_push_ms = w->now_ms;
			push_changes(w);
		}
		subs_reap(w);
		if (s->peer && store_feed_len(w->shard) > 0) {
			/* A precise clock: the coarse one ticks every few ms, longer than the
			 * window. */
			int64_t now_us = mono_us();

			if (now_us - w->last_sync_us >= (int64_t)s->cfg.sync_window_ms * 1000) {
				w->last_sync_us = now_us;
				sync_out(w);
			}
		}
		flush(w);
		send_wakes(w);
		/* Subscribers need a look every push window; otherwise sleep longer. */
		ts.tv_nsec =
		        (w->watches && s->cfg.push_window_ms < WAIT_MS ? (long)s->cfg.push_window_ms
		                                                       : WAIT_MS) *
		        1000000L;
		if (w->inbound_more)
			ts.tv_nsec = 0;
		/* Changes waiting for the peers: back within the sync window. */
		if (s->peer && store_feed_len(w->shard) > 0 &&
		    (long)s->cfg.sync_window_ms * 1000000L < ts.tv_nsec)
			ts.tv_nsec = (long)s->cfg.sync_window_ms * 1000000L;
		if (!w->accept_armed && !w->stopping && w->listen_fd >= 0 &&
		    w->now_ms >= w->accept_resume_ms)
			arm_accept(w);

		if (!w->stopping && LOAD_ACQUIRE(&s->stop)) {
			begin_stop(w);
			stop_deadline = w->now_ms + 5000;
		}
		if (w->stopping && !w->done && (drained(w) || w->now_ms > stop_deadline)) {
			w->done = true;
			__atomic_add_fetch(&s->n_done, 1, __ATOMIC_ACQ_REL);
		}
		if (w->done && LOAD_ACQUIRE(&s->n_done) == s->nworkers) {
			close_all(w);
			break;
		}
	}
	/* Let in-flight operations of closed connections finish. */
	for (int tries = 0; tries < 20 && w->conns_used > 0; tries++) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
		io_uring_for_each_cqe(&w->ring, head, cqe)
		{
			n++;
			if (ud_op(cqe->user_data) == UD_RECV)
				on_recv(w, cqe);
			else if (ud_op(cqe->user_data) == UD_SEND)
				on_send(w, cqe);
		}
		io_uring_cq_advance(&w->ring, n);
		flush(w);
	}
}

/* ---- start, stop ---- */

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct server *s = w->srv;
	const char *why = "";
	char name[16];
	int rc;

	snprintf(name, sizeof(name), "worker-%u", w->id);
	log_thread_name(name);
	rc = uring_init(&w->ring, RING_ENTRIES, &why);
	if (rc == 0) {
		rc = uring_bufs_init(&w->ring, &w->bufs, BUF_GROUP, RECV_BUFS, RECV_BUF_BYTES);
		if (rc < 0)
			why = "cannot register the receive buffer ring";
	}
	if (rc < 0) {
		log_error("%s: %s", why, strerror(-rc));
		__atomic_store_n(&s->start_rc, rc, __ATOMIC_RELEASE);
	}
	pthread_barrier_wait(&s->ready);
	if (LOAD_ACQUIRE(&s->start_rc) < 0) {
		if (rc == 0) {
			uring_bufs_free(&w->ring, &w->bufs);
			io_uring_queue_exit(&w->ring);
		}
		return NULL;
	}
	w->now_ms = mono_ms();
	w->last_sweep_ms = w->now_ms;
	arm_accept(w);
	loop(w);
	uring_bufs_free(&w->ring, &w->bufs);
	io_uring_queue_exit(&w->ring);
	log_debug("stopped");
	return NULL;
}

static int listen_socket(const struct server_config *cfg, uint16_t port, uint16_t *bound)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, cfg->bind, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		slen = sizeof(*a);
	} else if (inet_pton(AF_INET6, cfg->bind, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		slen = sizeof(*a);
	} else {
		log_error("--bind %s: not an IPv4 or IPv6 address", cfg->bind);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, slen) < 0 || listen(fd, 4096) < 0) {
		int e = -errno;

		log_error("cannot listen on %s:%u: %s", cfg->bind, port, strerror(errno));
		close(fd);
		return e;
	}
	if (bound) {
		slen = sizeof(ss);
		getsockname(fd, (struct sockaddr *)&ss, &slen);
		*bound = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
		                                       : ((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return fd;
}

static int worker_init(struct server *s, struct worker *w, uint32_t id)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->srv = s;
	w->listen_fd = -1;
	w->shard = store_shard(s->store, id);
	w->rec = store_shard_rec(w->shard);
	w->conns_max = (s->cfg.conns_max + s->nworkers - 1) / s->nworkers;
	w->conns = mem_calloc(w->conns_max, sizeof(w->conns[0]));
	w->dirty = mem_alloc(sizeof(w->dirty[0]) * w->conns_max);
	w->views_cap = 1024;
	w->views = mem_alloc(sizeof(w->views[0]) * w->views_cap);
	if (!w->conns || !w->dirty || !w->views)
		return -ENOMEM;
	w->conn_free = UINT32_MAX;
	for (uint32_t i = w->conns_max; i-- > 0;) {
		w->conns[i].fd = -1;
		w->conns[i].next_free = w->conn_free;
		w->conn_free = i;
	}
	pool_init(&w->pendings, PENDING_INLINE);
	w->watch_tab = mem_calloc(WATCH_BUCKETS, sizeof(w->watch_tab[0]));
	if (w->watch_tab == NULL)
		return -ENOMEM;
	return 0;
}

static void worker_free(struct worker *w)
{
	if (w->conns) {
		for (uint32_t i = 0; i < w->conns_max; i++)
			if (w->conns[i].state != C_FREE)
				conn_free_slot(w, i);
	}
	if (w->listen_fd >= 0)
		close(w->listen_fd);
	mem_free(w->conns);
	mem_free(w->dirty);
	mem_free(w->views);
	mem_free(w->backlog);
	pool_destroy(&w->pendings);
	if (w->watch_tab)
		subs_reap(w);
	mem_free(w->watch_tab);
}

static int ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;

	return x < y ? -1 : x > y;
}

static bool msgs_add(void ***v, uint32_t *n, uint32_t *cap, void *m)
{
	if (*n == *cap) {
		uint32_t c = *cap ? *cap * 2 : 256;
		void **nv = mem_alloc(sizeof(nv[0]) * c);

		if (nv == NULL)
			return false;
		if (*n)
			memcpy(nv, *v, sizeof(nv[0]) * *n);
		mem_free(*v);
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = m;
	return true;
}

/*
 * After every thread stopped, before the workers' pools go: frees the
 * cluster messages left on the rings and in the backlogs. One message can
 * be in several places (a forwarded request sent to every shard, a
 * takeover to every worker), so each is freed once, whatever its count.
 */
static void drop_messages(struct server *s)
{
	void **v = NULL, *msgs[256];
	uint32_t n = 0, cap = 0;

	if (s->xcore.q == NULL || s->peer == NULL)
		return;
	for (uint32_t from = 0; from < s->xcore.n; from++)
		for (uint32_t to = 0; to < s->xcore.n; to++) {
			uint32_t k;

			while (from != to && (k = xcore_recv(&s->xcore, from, to, msgs, 256)) > 0)
				for (uint32_t i = 0; i < k; i++)
					(void)msgs_add(&v, &n, &cap, msgs[i]);
		}
	for (uint32_t w = 0; s->workers && w < s->nworkers; w++)
		for (uint32_t i = 0; i < s->workers[w].backlog_n; i++)
			(void)msgs_add(&v, &n, &cap, s->workers[w].backlog[2 * i + 1]);
	peer_backlog_take(s->peer, msgs_add, &v, &n, &cap);
	if (n > 1)
		qsort(v, n, sizeof(v[0]), ptr_cmp);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t kind;

		if (i > 0 && v[i] == v[i - 1])
			continue;
		kind = *(uint8_t *)v[i];
		if (kind == XM_PENDING) {
			struct pending *pd = v[i];

			if (pd->origin == s->nworkers)
				mem_free(pd); /* the peer thread's: one allocation */
			else if (pd->heap)
				mem_free(pd->results); /* the pool object goes with the pool */
		} else {
			mem_free(v[i]);
		}
	}
	mem_free(v);
}

static void server_free(struct server *s)
{
	drop_messages(s); /* before the pools: pendings on the rings live in them */
	if (s->workers) {
		for (uint32_t i = 0; i < s->nworkers; i++)
			worker_free(&s->workers[i]);
		mem_free(s->workers);
		s->workers = NULL;
	}
	xcore_free(&s->xcore);
	store_destroy(s->store);
	s->store = NULL;
	peer_destroy(s->peer); /* its epoch record outlives the store's epoch */
	s->peer = NULL;
}

int server_start(struct server *s, const struct server_config *cfg)
{
	int rc;
	uint32_t started = 0;

	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->nworkers = cfg->workers;
	/* A cluster: the peer thread is one more participant of the rings. */
	if (peer_create(s, &s->peer) < 0)
		return -EINVAL;
	if ((rc = store_create(&s->cfg.store, &s->store)) < 0) {
		log_error("store: %s", err_str(rc));
		peer_destroy(s->peer);
		s->peer = NULL;
		return -EINVAL;
	}
	if (xcore_init(&s->xcore, s->nworkers + (s->peer != NULL), XCORE_SLOTS) < 0) {
		server_free(s);
		return -ENOMEM;
	}
	s->workers = mem_alloc_aligned(64, sizeof(s->workers[0]) * s->nworkers);
	if (s->workers == NULL) {
		server_free(s);
		return -ENOMEM;
	}
	memset(s->workers, 0, sizeof(s->workers[0]) * s->nworkers);
	for (uint32_t i = 0; i < s->nworkers; i++) {
		if ((rc = worker_init(s, &s->workers[i], i)) < 0) {
			server_free(s);
			return rc;
		}
	}
	/* The first socket resolves port 0; the others join it with SO_REUSEPORT. */
	for (uint32_t i = 0; i < s->nworkers; i++) {
		int fd = listen_socket(cfg, i == 0 ? (uint16_t)cfg->port : s->port,
		                       i == 0 ? &s->port : NULL);

		if (fd < 0) {
			server_free(s);
			return fd;
		}
		s->workers[i].listen_fd = fd;
	}
	pthread_barrier_init(&s->ready, NULL, s->nworkers + 1);
	for (uint32_t i = 0; i < s->nworkers; i++) {
		if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
			__atomic_store_n(&s->start_rc, -EAGAIN, __ATOMIC_RELEASE);
			break;
		}
		started++;
	}
	/* Threads that never started still count for the barrier. */
	for (uint32_t i = started; i < s->nworkers; i++)
		pthread_barrier_wait(&s->ready);
	pthread_barrier_wait(&s->ready);
	if (LOAD_ACQUIRE(&s->start_rc) < 0) {
		rc = s->start_rc;
		for (uint32_t i = 0; i < started; i++)
			pthread_join(s->workers[i].thread, NULL);
		pthread_barrier_destroy(&s->ready);
		server_free(s);
		return rc;
	}
	log_info("distrod listening on %s:%u (binary protocol), %u workers", cfg->bind, s->port,
	         s->nworkers);
	if (s->peer && (rc = peer_start(s->peer)) < 0) {
		server_stop(s);
		return rc;
	}
	return 0;
}

void server_stop(struct server *s)
{
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	for (uint32_t i = 0; i < s->nworkers; i++)
		pthread_join(s->workers[i].thread, NULL);
	/* The peer thread outlives the workers: their forwarded writes need answers. */
	if (s->peer)
		peer_stop(s->peer);
	pthread_barrier_destroy(&s->ready);
	server_free(s);
}

static void stats_add(struct worker_stats *out, const struct worker_stats *st)
{
#define WS_SUM(name) out->name += LOAD_RELAXED(&st->name);
	WORKER_STATS(WS_SUM)
#undef WS_SUM
	for (int i = 0; i < WORKER_LAT_BUCKETS; i++)
		out->lat_count[i] += LOAD_RELAXED(&st->lat_count[i]);
	out->lat_sum_us += LOAD_RELAXED(&st->lat_sum_us);
	for (int i = 0; i < WORKER_BATCH_BUCKETS; i++)
		out->batch_count[i] += LOAD_RELAXED(&st->batch_count[i]);
	for (int i = 0; i < WORKER_REPL_BUCKETS; i++)
		out->repl_count[i] += LOAD_RELAXED(&st->repl_count[i]);
}

void worker_stats_read(struct worker *w, struct worker_stats *out)
{
	memset(out, 0, sizeof(*out));
	stats_add(out, &w->stats);
}

void server_stats(struct server *s, struct worker_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < s->nworkers; i++)
		stats_add(out, &s->workers[i].stats);
}
