/*
 * ops.c - request dispatch and the ops, on the worker that read the frame.
 *
 * A frame is checked whole (proto_body_check) before any item is acted on.
 * Reads (LIST) are served from any shard under the epoch. A write item
 * (register, deregister, heartbeat) belongs to the shard of its service
 * and, in a cluster, to the member that owns its slot. The origin decides
 * both once per item: items of its own shard run at once; if others
 * remain, the frame is copied into a `pending` (a per-worker pool object,
 * cluster/xmsg.h) and a pointer to it is sent to each shard concerned -
 * and to the peer thread when some items are other members' (owners[]) -
 * which runs its own items, writes their results in the pending's result
 * array (distinct slots, no sharing) and sends the pointer back. When the
 * last part is back the response goes out. So a batch costs one message
 * per shard it touches, not one per item, and nothing is allocated per
 * request beyond the pool object (and, past PENDING_INLINE bytes, one
 * buffer for the results and body).
 *
 * A DEREGISTER another member ran takes a second round before its answer:
 * the shards concerned drop their replicas (forget_start), so the delete is
 * visible to the next read on the node that answered, not a sync window
 * later.
 *
 * Leased writes (HOLD, RENEW, RELEASE: docs/protocol.md, "Leases") are
 * routed and split exactly like the others; at the shard they do what
 * REGISTER, HEARTBEAT and DEREGISTER do, plus the holder's lease
 * (store_hold after the write; store_release instead of the delete, which
 * keeps the instance while another holder's lease runs).
 *
 * Every item gets exactly one result: its own, ERR_BUSY when the worker
 * has no room to carry the request across (the client retries: writes are
 * idempotent), or ERR_UNAVAILABLE from the peer thread when its owner
 * cannot be reached.
 */
#include "server/worker_internal.h"

#include "cluster/peer.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "nacos/auth.h"
#include "server/authq.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Shard number that marks an item for the peer thread: its slot is another node's. */
#define SHARD_REMOTE UINT32_MAX

/* ---- executing write items on this worker's shard ---- */

/*
 * Decodes one item and, if it is this worker's, runs it. *shard_out: the
 * shard that runs it (SHARD_REMOTE: another member, *owner_out). With
 * `route` (the origin of a client frame in a cluster) the owner is decided
 * here, once.
 */
static int exec_item(struct worker *w, uint32_t origin, uint8_t op, struct proto_rd *r,
                     struct store_kv *kv, bool route, uint32_t *shard_out, uint8_t *owner_out)
{
	struct proto_hold hold;
	struct store_key k;
	struct store_val v;
	int item_err, rc;

	proto_rd_item_held(r, op, &k, &v, kv, PROTO_META_MAX, &item_err, &hold);
	*owner_out = 0;
	if (k.svc.service.p == NULL) {
		*shard_out = origin; /* no shard: the origin answers it, once */
		return -ERR_NAME_EMPTY;
	}
	if (route && !item_err) {
		uint16_t owner = replica_route(w, &k.addr);

		if (owner == REPLICA_REFUSE) {
			WSTAT_INC(w, writes_refused);
			*shard_out = origin; /* the origin answers it: retry on another node */
			return -ERR_UNAVAILABLE;
		}
		if (owner != 0) {
			*owner_out = (uint8_t)owner;
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
	case OP_RELEASE: /* deleted unless another holder's lease runs (store/lease.c) */
		return store_release(w->shard, &k, hold.holder);
	case OP_HOLD:
		rc = store_upsert(w->shard, &k, &v);
		break;
	default: /* HEARTBEAT, RENEW */
		rc = store_touch(w->shard, &k);
		/*
		 * A beat for an instance we lack re-creates it (a node that lost
		 * it heals) - unless a client deregistered it within --peer-down:
		 * a beat still in flight then (a forwarded one waits at most that
		 * long, ops_on_pending) must not bring it back.
		 */
		if (rc == -ERR_NOT_FOUND &&
		    !store_deleted_by_client(w->shard, &k, (int64_t)w->srv->cfg.peer_down_ms))
			rc = store_upsert(w->shard, &k, &v);
		break;
	}
	/*
	 * HOLD and RENEW: the write stands whatever becomes of the lease; one
	 * the shard could not record (its table full) is counted by the store
	 * and the instance's releases then delete it, as a DEREGISTER would.
	 */
	if (rc >= 0 && op != OP_HEARTBEAT)
		(void)store_hold(w->shard, &k, hold.holder, hold.renew_ms);
	return rc;
}

/*
 * Runs the items of a checked body that belong to this worker's shard,
 * writing their results; returns the mask of other shards with items.
 *
 * With `route` (the origin handling a client's frame in a cluster) every
 * item gets its owner in owners[i] - a member id when its slot is another
 * node's (counted in *remote; the peer thread forwards those), 0 when it
 * runs here - and every result is written (RESULT_REMOTE, or 0 for other
 * shards' items until they answer). A part run for another origin skips
 * the items owners[] gives to other members (owners non-NULL). owners[] is
 * never written once the pending is sent: parts read it, and each part
 * writes only the results of its own items.
 */
static uint64_t exec_items(struct worker *w, uint32_t origin, const struct proto_header *h,
                           const uint8_t *body, int16_t *results, bool route, uint8_t *owners,
                           uint32_t *remote)
{
	static __thread struct store_kv kv[PROTO_META_MAX];
	struct proto_rd r;
	uint64_t others = 0;
	uint64_t done = 0;

	assert(!route || owners != NULL);
	proto_rd_init(&r, body, h->body_len);
	for (uint32_t i = 0; i < h->count; i++) {
		uint32_t shard;
		uint8_t owner;
		int rc;

		if (!route && owners && owners[i]) {
			proto_rd_skip_item(&r, h->op);
			continue;
		}
		rc = exec_item(w, origin, h->op, &r, kv, route, &shard, &owner);
		if (route)
			owners[i] = owner;
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
	if (h->op == OP_REGISTER || h->op == OP_HOLD)
		WSTAT_ADD(w, op_register, done);
	else if (proto_op_keyed(h->op))
		WSTAT_ADD(w, op_deregister, done);
	else
		WSTAT_ADD(w, op_heartbeat, done);
	return others;
}

/* body: the request's items, for an answer that names them (a Nacos batch's). */
static void respond_results(struct worker *w, uint32_t idx, const struct proto_header *h,
                            const uint8_t *body, const int16_t *results)
{
	if (conn_at(w, idx)->kind == CONN_NACOS) { /* a Nacos write: an HTTP answer */
		nacos_write_done(w, idx, h, body, results);
		return;
	}
	if (conn_at(w, idx)->kind == CONN_GRPC) { /* a gRPC write: a Nacos response, or none */
		grpc_write_done(w, idx, h, results);
		return;
	}
	uint32_t len = 2u * h->count;
	uint8_t *p = out_reserve(w, idx, PROTO_HEADER_BYTES + len);

	if (p == NULL)
		return;
	proto_header_put(p, h->op | PROTO_RESPONSE, len, h->request_id, 0, h->count);
	proto_results_put(p + PROTO_HEADER_BYTES, results, h->count);
	out_commit(w, idx, PROTO_HEADER_BYTES + len);
}

/* ---- pendings ---- */

void ops_pending_free(struct worker *w, struct pending *p)
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
	memset(p, 0, sizeof(*p));
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
	p->owners = p->body + h->body_len;
	memset(p->owners, 0, h->count);
	p->head.kind = XM_PENDING;
	p->origin = w->id;
	p->start_us = w->frame_start_us;
	p->conn = idx;
	p->conn_gen = conn_at(w, idx)->gen;
	p->h = *h;
	w->pendings_n++;
	return p;
}

/* ---- deregisters answered by another member ---- */

/*
 * Did the owner's answer leave a replica here to drop (it deleted it, or
 * never had it)? Not a release the owner answered STORE_HELD: the
 * instance stays.
 */
static bool forget_due(const struct pending *p, uint32_t i)
{
	return p->owners[i] != 0 && p->results[i] != STORE_HELD &&
	       (p->results[i] >= 0 || p->results[i] == -ERR_NOT_FOUND);
}

/*
 * Drops this worker's replicas of the items another member deregistered:
 * store_forget, so nothing is replicated (the owner's own delete is on its
 * way) and the tombstone keeps the replica's version (an older copy that
 * arrives later is refused). Returns the mask of other shards with such
 * items.
 */
static uint64_t forget_items(struct worker *w, struct pending *p)
{
	struct proto_rd r;
	uint64_t others = 0;

	proto_rd_init(&r, p->body, p->h.body_len);
	for (uint32_t i = 0; i < p->h.count; i++) {
		struct store_key k;
		struct store_val v;
		uint32_t shard;
		int e;

		proto_rd_item(&r, p->h.op, &k, &v, NULL, 0, &e);
		if (!forget_due(p, i) || k.svc.service.p == NULL)
			continue;
		shard = store_shard_of(w->srv->store, &k.svc);
		if (shard != w->id)
			others |= 1ull << shard;
		else
			(void)store_forget(w->shard, &k, store_version_now(w->shard), false);
	}
	return others;
}

/*
 * A deregister is visible to the next read on the node that answered it,
 * also when another member owns the instance: before the answer, a second
 * round through the shards concerned drops their replicas (the owner's
 * sync would otherwise bring the delete a sync window later). Returns
 * true when that round is under way (the answer waits for it).
 */
static bool forget_start(struct worker *w, struct pending *p)
{
	uint64_t others;

	if (p->forget || !p->remote || !proto_op_keyed(p->h.op))
		return false;
	p->forget = true;
	others = forget_items(w, p);
	if (others == 0)
		return false;
	p->parts = (uint32_t)__builtin_popcountll(others);
	for (uint32_t s = 0; s < w->srv->nworkers; s++)
		if (others & (1ull << s))
			worker_send(w, s, p);
	return true;
}

/* A pending came back from a shard (or the peer thread) that ran its part. */
static void pending_part_done(struct worker *w, struct pending *p)
{
	struct conn *c = conn_at(w, p->conn);

	assert(p->parts > 0);
	if (--p->parts > 0)
		return;
	if (forget_start(w, p))
		return;
	latency_record(w, p->start_us);
	if (c->gen == p->conn_gen) {
		c->pending--;
		if (c->state == C_OPEN) {
			respond_results(w, p->conn, &p->h, p->body, p->results);
			/* Bytes waiting behind it: their --header-timeout runs from now. */
			conn_partial_mark(w, c, true);
		} else {
			conn_close(w, p->conn);
		}
	}
	ops_pending_free(w, p);
}

/*
 * A peer's forwarded items that waited longer than --peer-down to run here
 * (this node stood still): the forwarding node has counted us DOWN and
 * answered them "unavailable", so its client tried elsewhere. Running them
 * now would replay a write the client may have undone since; they are
 * answered unavailable here too.
 */
static bool forwarded_too_late(struct worker *w, const struct pending *p)
{
	return p->origin == w->srv->nworkers &&
	       clock_mono_us() - p->start_us > (int64_t)w->srv->cfg.peer_down_ms * 1000;
}

static void refuse_our_items(struct worker *w, struct pending *p, int code)
{
	struct proto_rd r;

	proto_rd_init(&r, p->body, p->h.body_len);
	for (uint32_t i = 0; i < p->h.count; i++) {
		struct store_key k;
		struct store_val v;
		int e;

		proto_rd_item(&r, p->h.op, &k, &v, NULL, 0, &e);
		if (k.svc.service.p && store_shard_of(w->srv->store, &k.svc) == w->id) {
			p->results[i] = (int16_t)code;
			WSTAT_INC(w, fwd_stale);
		}
	}
}

void ops_on_pending(struct worker *w, struct pending *p)
{
	uint32_t remote = 0;

	assert(xmsg_kind(p) == XM_PENDING);
	if (p->origin == w->id) {
		pending_part_done(w, p);
		return;
	}
	/* Run our items of another worker's (or a peer's) request and send it back. */
	if (p->forget)
		(void)forget_items(w, p);
	else if (forwarded_too_late(w, p))
		refuse_our_items(w, p, -ERR_UNAVAILABLE);
	else
		(void)exec_items(w, p->origin, &p->h, p->body, p->results, false,
		                 p->remote ? p->owners : NULL, &remote);
	worker_send(w, p->origin, p);
}

/* ---- writes ---- */

/* Our own items ran but the rest cannot travel: they are answered busy (retryable). */
static void answer_rest_busy(struct worker *w, uint32_t idx, const struct proto_header *h,
                             const uint8_t *body, int16_t *results, const uint8_t *owners)
{
	struct proto_rd r;

	WSTAT_INC(w, busy);
	proto_rd_init(&r, body, h->body_len);
	for (uint32_t i = 0; i < h->count; i++) {
		struct store_key k;
		struct store_val v;
		int e;

		proto_rd_item(&r, h->op, &k, &v, NULL, 0, &e);
		if ((owners && owners[i]) ||
		    (k.svc.service.p && store_shard_of(w->srv->store, &k.svc) != w->id))
			results[i] = (int16_t)-ERR_BUSY;
	}
	respond_results(w, idx, h, body, results);
}

/* Not inlined: perf/instr counts the handlers' inclusive cost by name. */
static __attribute__((noinline)) void
handle_write(struct worker *w, uint32_t idx, const struct proto_header *h, const uint8_t *body)
{
	int16_t local[ITEMS_INLINE];
	uint8_t local_owners[ITEMS_INLINE];
	int16_t *results = h->count <= ITEMS_INLINE ? local : NULL;
	uint8_t *owners = local_owners;
	struct pending *p = NULL;
	bool route = worker_clustered(w);
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
		owners = p->owners;
	}
	others = exec_items(w, w->id, h, body, results, route, route ? owners : NULL, &remote);
	if (others == 0 && remote == 0) {
		respond_results(w, idx, h, body, results);
		if (p)
			ops_pending_free(w, p);
		return;
	}
	if (p == NULL) {
		p = pending_new(w, h, body, idx);
		if (p == NULL) {
			answer_rest_busy(w, idx, h, body, results, route ? owners : NULL);
			return;
		}
		memcpy(p->results, results, 2u * h->count);
		if (route)
			memcpy(p->owners, owners, h->count);
	}
	p->shard_mask = others;
	p->remote = remote > 0;
	p->parts = (uint32_t)__builtin_popcountll(others) + (remote > 0);
	conn_at(w, idx)->pending++;
	for (uint32_t s = 0; s < w->srv->nworkers; s++)
		if (others & (1ull << s))
			worker_send(w, s, p);
	if (remote)
		worker_send(w, w->srv->nworkers, p); /* the peer thread forwards them */
}

/* A write of one connection's request that is not a binary frame (the Nacos API). */
void ops_write(struct worker *w, uint32_t idx, const struct proto_header *h, const uint8_t *body)
{
	handle_write(w, idx, h, body);
}

/* ---- reads ---- */

/*
 * Lists a service into the connection's output as a frame of op/id
 * (a LIST or SUBSCRIBE answer, or a PUSH). 0, or a negative code.
 * Frames in both directions stay within --frame-max: a list that would
 * not fit is cut; `total` tells the client how many matched.
 */
int ops_send_list(struct worker *w, uint32_t idx, uint8_t op, uint32_t id,
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

static __attribute__((noinline)) void handle_list(struct worker *w, uint32_t idx,
                                                  const struct proto_header *h, const uint8_t *body)
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
	rc = ops_send_list(w, idx, h->op | PROTO_RESPONSE, h->request_id, &sk, &f);
	if (rc < 0 && rc != -ERR_NOMEM)
		send_error(w, idx, h->op | PROTO_RESPONSE, h->request_id, rc);
}

/* ---- STATS ---- */

/* A bounded text: what does not fit is cut, never written past the end. */
struct text {
	char *p;
	size_t len, cap;
};

static void __attribute__((format(printf, 2, 3))) text_put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->len >= t->cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	t->len += (size_t)n < t->cap - t->len ? (size_t)n : t->cap - t->len - 1;
}

#define STATS_TEXT_MAX 16384

static void handle_stats(struct worker *w, uint32_t idx, const struct proto_header *h)
{
	static __thread struct peer_status ps;
	static __thread char buf[STATS_TEXT_MAX];
	struct text t = { buf, 0, sizeof(buf) };
	struct worker_stats ws;
	struct store_stats ss;
	uint8_t *p;

	WSTAT_INC(w, op_stats);
	server_stats(w->srv, &ws);
	store_stats(w->srv->store, &ss);
#define WS_LINE(name) text_put(&t, "%s %llu\n", #name, (unsigned long long)ws.name);
	WORKER_STATS(WS_LINE)
#undef WS_LINE
#define SS_LINE(name) text_put(&t, "store_%s %llu\n", #name, (unsigned long long)ss.name);
	STORE_STATS(SS_LINE)
#undef SS_LINE
	text_put(&t, "workers %u\n", w->srv->nworkers);
	if (worker_clustered(w)) {
		peer_status_read(w->srv->peer, &ps);
		text_put(&t,
		         "cluster_member %u\ncluster_ready %u\ncluster_quorum %u\n"
		         "cluster_map_version %llu\n",
		         ps.self_id, ps.ready, ps.quorum, (unsigned long long)ps.map_version);
#define PS_LINE(name) text_put(&t, "peer_%s %llu\n", #name, (unsigned long long)ps.stats.name);
		PEER_STATS(PS_LINE)
#undef PS_LINE
		for (int b = 0; b < WORKER_REPL_BUCKETS - 1; b++)
			text_put(&t, "repl_lag_ms_le_%u %llu\n", worker_repl_bounds_ms[b],
			         (unsigned long long)ws.repl_count[b]);
		text_put(&t, "repl_lag_ms_le_inf %llu\n",
		         (unsigned long long)ws.repl_count[WORKER_REPL_BUCKETS - 1]);
		for (int st = 0; st < REPL_STAGES; st++) {
			/* feed and apply are the workers', handoff and link the peer thread's */
			const uint64_t *c = st == REPL_FEED || st == REPL_APPLY ? ws.repl_stage[st]
			                                                        : ps.stage[st];

			for (int b = 0; b < REPL_STAGE_BUCKETS; b++) {
				if (b < REPL_STAGE_BUCKETS - 1)
					text_put(&t, "repl_stage_%s_us_le_%u %llu\n",
					         repl_stage_names[st], repl_stage_bounds_us[b],
					         (unsigned long long)c[b]);
				else
					text_put(&t, "repl_stage_%s_us_le_inf %llu\n",
					         repl_stage_names[st], (unsigned long long)c[b]);
			}
		}
	}
	p = out_reserve(w, idx, PROTO_HEADER_BYTES + (uint32_t)t.len);
	if (p == NULL)
		return;
	proto_header_put(p, OP_STATS | PROTO_RESPONSE, (uint32_t)t.len, h->request_id, 0, 0);
	memcpy(p + PROTO_HEADER_BYTES, t.p, t.len);
	out_commit(w, idx, PROTO_HEADER_BYTES + (uint32_t)t.len);
}

/* ---- SLOT_MAP ---- */

static void handle_slot_map(struct worker *w, uint32_t idx, const struct proto_header *h)
{
	static __thread struct peer_status st;
	static __thread uint16_t owners[STORE_SLOTS];
	struct proto_wr wr;
	uint32_t len = 11;
	uint64_t version;
	uint8_t *p;

	if (!worker_clustered(w)) {
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
	version = peer_map_read(w->srv->peer, owners); /* the owners and their version agree */
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

/* ---- AUTH (docs/protocol.md, "Authentication") ---- */

/* Answers an AUTH whose check is done: the connection is authenticated, or not, from now on. */
static void auth_finish(struct worker *w, uint32_t idx, uint32_t id, int rc,
                        const struct nauth_id *who)
{
	struct conn *c = conn_at(w, idx);
	struct proto_wr wr;
	uint32_t len;
	uint8_t *p;

	c->authed = rc == 0;
	if (rc != 0) {
		WSTAT_INC(w, auth_refused);
		log_debug("connection %u: AUTH refused: %s", idx, err_str(rc));
		/* Expiry is worth telling (log in again); the rest says nothing about users. */
		send_error(w, idx, OP_AUTH | PROTO_RESPONSE, id,
		           rc == -ERR_AUTH_TOKEN_EXPIRED ? rc : -ERR_AUTH_REFUSED);
		return;
	}
	WSTAT_INC(w, auth_ok);
	len = 1 + 2 + who->name_len;
	p = out_reserve(w, idx, PROTO_HEADER_BYTES + len);
	if (p == NULL)
		return;
	proto_header_put(p, OP_AUTH | PROTO_RESPONSE, len, id, 0, 0);
	proto_wr_init(&wr, p + PROTO_HEADER_BYTES, len);
	proto_wr_u8(&wr, who->admin ? PROTO_AUTH_ADMIN : 0);
	proto_wr_str(&wr, (struct store_str){ who->name, who->name_len });
	out_commit(w, idx, PROTO_HEADER_BYTES + len);
}

/*
 * AUTH: a token is checked here; a password through the users cache, or,
 * when only a bcrypt can tell, on the auth thread (authq.h) while the
 * connection reads no further frame (conn.auth_wait), so a write
 * pipelined behind the AUTH is judged by its outcome.
 */
static void handle_auth(struct worker *w, uint32_t idx, const struct proto_header *h,
                        const uint8_t *body)
{
	struct nauth *a = w->srv->auth;
	struct conn *c = conn_at(w, idx);
	struct nauth_id who = { .name_len = 0 };
	struct store_str tok, user, pass;
	struct authq_job *j;
	struct proto_rd r;
	uint8_t *p;
	int rc;

	WSTAT_INC(w, op_auth);
	if (a == NULL) { /* auth off: nothing to prove, say so */
		p = out_reserve(w, idx, PROTO_HEADER_BYTES + 3);
		if (p == NULL)
			return;
		proto_header_put(p, OP_AUTH | PROTO_RESPONSE, 3, h->request_id, 0, 0);
		p[PROTO_HEADER_BYTES] = PROTO_AUTH_OFF;
		p[PROTO_HEADER_BYTES + 1] = p[PROTO_HEADER_BYTES + 2] = 0;
		out_commit(w, idx, PROTO_HEADER_BYTES + 3);
		return;
	}
	proto_rd_init(&r, body, h->body_len);
	if (proto_rd_u8(&r) == PROTO_AUTH_TOKEN) { /* proto_body_check allowed only the two */
		tok = proto_rd_str(&r);
		rc = nauth_verify(a, tok.p ? tok.p : "", tok.len, clock_wall_ms(NULL), &who);
		auth_finish(w, idx, h->request_id, rc, &who);
		return;
	}
	user = proto_rd_str(&r);
	pass = proto_rd_str(&r);
	rc = nauth_check_cached(a, user.p ? user.p : "", user.len, pass.p ? pass.p : "", pass.len,
	                        &who);
	if (rc != NAUTH_NEEDS_CRYPT) {
		auth_finish(w, idx, h->request_id, rc, &who);
		return;
	}
	j = authq_job_get(w->srv->authq, w->id);
	if (j == NULL) {
		WSTAT_INC(w, auth_busy);
		send_error(w, idx, OP_AUTH | PROTO_RESPONSE, h->request_id, -ERR_BUSY);
		return;
	}
	/* nauth_check_cached refused longer names and passwords: they fit. */
	j->kind = AUTHQ_BINARY;
	j->conn = idx;
	j->conn_gen = c->gen;
	j->request_id = h->request_id;
	j->user_len = user.len;
	memcpy(j->user, user.p, user.len);
	j->pass_len = pass.len;
	memcpy(j->pass, pass.p, pass.len);
	c->pending++;
	c->auth_wait = true;
	authq_submit(w->srv->authq, w->id, j);
}

void ops_auth_done(struct worker *w, struct authq_job *j)
{
	struct conn *c = conn_at(w, j->conn);

	assert(c->gen == j->conn_gen && c->pending > 0); /* the pending held the slot */
	c->pending--;
	c->auth_wait = false;
	if (c->state != C_OPEN) {
		conn_close(w, j->conn);
		return;
	}
	auth_finish(w, j->conn, j->request_id, j->rc, &j->who);
	conn_resume_frames(w, j->conn); /* the frames that waited behind it */
}

/* ---- dispatch ---- */

/*
 * Does a client's write frame name a reserved cluster ('@...', store.h)?
 * Those records are the node's own (the Nacos API's service records): a
 * client that could write them would make instances no list shows and
 * overwrite or delete a service's state. The Nacos API never names one
 * (its cluster names are [0-9a-zA-Z-_]+) and writes its service records
 * through ops_write, not here. O(items).
 */
static bool names_reserved(const struct proto_header *h, const uint8_t *body)
{
	struct proto_rd r;

	proto_rd_init(&r, body, h->body_len);
	for (uint32_t i = 0; i < h->count; i++) {
		struct store_key k;
		struct store_val v;
		int e;

		proto_rd_item(&r, h->op, &k, &v, NULL, 0, &e);
		if (k.cluster.p != NULL && k.cluster.len > 0 && k.cluster.p[0] == '@')
			return true;
	}
	return false;
}

static void dispatch(struct worker *w, uint32_t idx, const struct proto_header *h,
                     const uint8_t *body)
{
	int rc = proto_body_check(h, body, w->srv->cfg.batch_max);
	uint8_t *p;

	WSTAT_INC(w, frames);
	if (rc < 0) {
		protocol_error(w, idx, h->request_id, rc);
		return;
	}
	/* Auth on: only PING (a liveness probe, as Nacos's server check) and AUTH itself before. */
	if (w->srv->auth && !conn_at(w, idx)->authed && h->op != OP_PING && h->op != OP_AUTH) {
		WSTAT_INC(w, auth_refused);
		send_error(w, idx, h->op | PROTO_RESPONSE, h->request_id, -ERR_AUTH_REQUIRED);
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
	case OP_RENEW:
	case OP_RELEASE:
	case OP_HOLD:
		if (names_reserved(h, body)) {
			WSTAT_INC(w, item_errors);
			send_error(w, idx, h->op | PROTO_RESPONSE, h->request_id, -ERR_NAME_CHARS);
			break;
		}
		handle_write(w, idx, h, body);
		break;
	case OP_LIST:
		handle_list(w, idx, h, body);
		break;
	case OP_STATS:
		handle_stats(w, idx, h);
		break;
	case OP_SUBSCRIBE:
		subs_subscribe(w, idx, h, body);
		break;
	case OP_UNSUBSCRIBE:
		subs_unsubscribe(w, idx, h, body);
		break;
	case OP_SLOT_MAP:
		handle_slot_map(w, idx, h);
		break;
	case OP_AUTH:
		handle_auth(w, idx, h, body);
		break;
	default:
		send_error(w, idx, h->op | PROTO_RESPONSE, h->request_id, -ERR_PROTO_OP);
		break;
	}
}

/* Frames answered here are timed here; frames sent to other shards when they come back. */
void ops_frame(struct worker *w, uint32_t idx, const struct proto_header *h, const uint8_t *body)
{
	uint32_t before = w->pendings_n;

	w->frame_start_us = clock_mono_us();
	dispatch(w, idx, h, body);
	if (w->pendings_n == before)
		latency_record(w, w->frame_start_us);
}
