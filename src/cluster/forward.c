/*
 * forward.c - writes for slots another member owns, both ways.
 *
 * Out. The worker that read a client's frame decides, once, which member
 * runs each item (pending.owners, cluster/xmsg.h) and sends the pending
 * here when some are other members'. Items are grouped per owner and per
 * op into one FWD frame per owner per op per loop (or sooner at
 * FWD_FRAME_BYTES or PWIRE_FWD_MAX items), whatever the number of client
 * requests. Each frame sent waits for its FWD_ACK in the owner's waits
 * (at most FWD_WAITS_MAX frames per owner; beyond, items are answered
 * ERR_UNAVAILABLE). Results go back into the pending, which returns to
 * its worker once its last remote item is answered.
 *
 * Every item is answered exactly once: by the owner's FWD_ACK, or
 * ERR_UNAVAILABLE (retryable, never silently lost) when the owner is not
 * reachable, when its link drops before the answer (fwd_fail_all), when the
 * answer is WAIT_TIMEOUT_MS late (fwd_expire), or when a bound is hit. The
 * fwd_* functions hold that rule on a `struct member_fwd` alone, so the
 * unit tests check it without links (tests/unit/cluster/test_rules.c).
 *
 * In. A peer's FWD runs here like a client frame, never routed again (no
 * loops, no amplification: Nacos #6967): the items go to the workers of
 * their shards as a pending owned by the peer thread, and one FWD_ACK
 * answers the frame once every part came back. At most FWD_SERVING_MAX
 * frames of one peer run at once; past that the frame is answered
 * ERR_BUSY and the origin's client retries.
 *
 * Runs on the peer thread only.
 */
#include "cluster/peer_internal.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <assert.h>
#include <string.h>

/* The write ops: each forwarded in frames of its own, items as the client sent them. */
static const uint8_t fwd_ops[FWD_OPS] = { OP_REGISTER, OP_DEREGISTER, OP_HEARTBEAT,
	                                  OP_RENEW,    OP_RELEASE,    OP_HOLD };

static uint32_t op_index(uint8_t op)
{
	for (uint32_t i = 0; i < FWD_OPS; i++)
		if (fwd_ops[i] == op)
			return i;
	assert(!"a write op");
	return 0;
}

/* ---- the rule, on one member's state ---- */

bool fwd_add(struct member_fwd *f, uint32_t opi, const uint8_t *item, size_t len,
             struct pending *pd, uint32_t i)
{
	struct fwd_build *b = &f->build[opi];

	assert(opi < FWD_OPS);
	if (b->n == b->cap) {
		uint32_t cap = b->cap ? b->cap * 2 : 64;
		struct fref *r = mem_alloc(sizeof(r[0]) * cap);

		if (r == NULL)
			return false;
		if (b->n)
			memcpy(r, b->refs, sizeof(r[0]) * b->n);
		mem_free(b->refs);
		b->refs = r;
		b->cap = cap;
	}
	if (!buf_append(&b->items, item, len, PWIRE_FRAME_MAX))
		return false;
	b->refs[b->n].p = pd;
	b->refs[b->n].i = i;
	b->n++;
	return true;
}

static void build_reset(struct fwd_build *b)
{
	b->n = 0;
	buf_clear(&b->items);
}

uint32_t fwd_flush(struct member_fwd *f, uint32_t opi, struct link *l, uint32_t tag, int64_t now,
                   fwd_answer_fn *answer, void *ctx)
{
	struct fwd_build *b = &f->build[opi];
	struct fwd_wait *wt;
	uint32_t n = b->n;

	if (n == 0)
		return 0;
	if (l != NULL && f->waits_n == f->waits_cap && f->waits_cap < FWD_WAITS_MAX) {
		uint32_t cap = f->waits_cap ? f->waits_cap * 2 : 16;
		struct fwd_wait *nw = mem_alloc(sizeof(nw[0]) * cap);

		if (nw) {
			if (f->waits_n)
				memcpy(nw, f->waits, sizeof(nw[0]) * f->waits_n);
			mem_free(f->waits);
			f->waits = nw;
			f->waits_cap = cap;
		}
	}
	if (l == NULL || f->waits_n == f->waits_cap ||
	    !link_frame_put(l, P_FWD, b->items.p, (uint32_t)buf_used(&b->items), tag, fwd_ops[opi],
	                    (uint16_t)n)) {
		for (uint32_t i = 0; i < n; i++)
			answer(ctx, &b->refs[i], (int16_t)-ERR_UNAVAILABLE);
		build_reset(b);
		return n;
	}
	wt = &f->waits[f->waits_n++];
	wt->tag = tag;
	wt->sent_ms = now;
	wt->n = n;
	wt->refs = b->refs; /* the build takes a fresh array */
	b->refs = NULL;
	b->cap = 0;
	build_reset(b);
	return 0;
}

static void wait_answer_all(struct fwd_wait *wt, fwd_answer_fn *answer, void *ctx)
{
	for (uint32_t j = 0; j < wt->n; j++)
		answer(ctx, &wt->refs[j], (int16_t)-ERR_UNAVAILABLE);
	mem_free(wt->refs);
}

uint32_t fwd_ack(struct member_fwd *f, uint32_t tag, const uint8_t *results, uint32_t n,
                 fwd_answer_fn *answer, void *ctx)
{
	for (uint32_t i = 0; i < f->waits_n; i++) {
		struct fwd_wait *wt = &f->waits[i];
		uint32_t missing = 0;

		if (wt->tag != tag)
			continue;
		for (uint32_t j = 0; j < wt->n; j++) {
			int16_t res = (int16_t)-ERR_UNAVAILABLE;

			if (j < n)
				res = proto_result_at(results, j);
			else
				missing++;
			answer(ctx, &wt->refs[j], res);
		}
		mem_free(wt->refs);
		f->waits[i] = f->waits[--f->waits_n];
		return missing;
	}
	return 0; /* an answer we gave up on */
}

uint32_t fwd_expire(struct member_fwd *f, int64_t now, int64_t timeout_ms, fwd_answer_fn *answer,
                    void *ctx)
{
	uint32_t items = 0;

	for (uint32_t i = 0; i < f->waits_n;) {
		struct fwd_wait *wt = &f->waits[i];

		if (now - wt->sent_ms < timeout_ms) {
			i++;
			continue;
		}
		items += wt->n;
		wait_answer_all(wt, answer, ctx);
		*wt = f->waits[--f->waits_n];
	}
	return items;
}

uint32_t fwd_fail_all(struct member_fwd *f, fwd_answer_fn *answer, void *ctx)
{
	uint32_t items = 0;

	for (uint32_t opi = 0; opi < FWD_OPS; opi++)
		items += fwd_flush(f, opi, NULL, 0, 0, answer, ctx);
	for (uint32_t i = 0; i < f->waits_n; i++) {
		items += f->waits[i].n;
		wait_answer_all(&f->waits[i], answer, ctx);
	}
	f->waits_n = 0;
	return items;
}

void fwd_member_free(struct member_fwd *f)
{
	for (uint32_t opi = 0; opi < FWD_OPS; opi++) {
		buf_free(&f->build[opi].items);
		mem_free(f->build[opi].refs);
		f->build[opi].refs = NULL;
		f->build[opi].n = f->build[opi].cap = 0;
	}
	for (uint32_t i = 0; i < f->waits_n; i++)
		mem_free(f->waits[i].refs);
	mem_free(f->waits);
	f->waits = NULL;
	f->waits_n = f->waits_cap = 0;
}

/* ---- out: this node's items to their owners ---- */

static void fref_answer(void *ctx, struct fref *f, int16_t res)
{
	struct peer *p = ctx;

	f->p->results[f->i] = res;
	assert(f->p->fwd_left > 0);
	if (--f->p->fwd_left == 0)
		peer_to_worker(p, f->p->origin, f->p);
}

/* One owner's collected items of one op as a FWD frame, counted. */
static void flush_one(struct peer *p, uint16_t id, uint32_t opi)
{
	struct member_fwd *f = &p->by_id[id].fwd;
	uint32_t n = f->build[opi].n, failed;

	if (n == 0)
		return;
	failed = fwd_flush(f, opi, member_up(p, id), p->next_tag++, p->now_ms, fref_answer, p);
	PSTAT_ADD(p, fwd_unavailable, failed);
	if (failed == 0) {
		PSTAT_INC(p, fwd_batches);
		PSTAT_ADD(p, fwd_items, n);
	}
}

void forward_on_pending(struct peer *p, struct pending *pd)
{
	uint32_t opi = op_index(pd->h.op);
	struct proto_rd r;

	assert(pd->remote && pd->origin < p->env.nworkers);
	pd->fwd_left = 1; /* held until every item is placed */
	proto_rd_init(&r, pd->body, pd->h.body_len);
	for (uint32_t i = 0; i < pd->h.count; i++) {
		const uint8_t *start = r.p;
		uint16_t owner = pd->owners[i];

		proto_rd_skip_item(&r, pd->h.op);
		if (owner == 0) /* run by the workers */
			continue;
		/*
		 * Routed under the member list before a change (membership.c)
		 * that reached this thread first: the id may now name nobody, or
		 * this node. Retryable, as an owner out of reach is. (An id that
		 * names another member now goes to it: any node takes any write.)
		 */
		if (owner == p->self || owner > p->conf.n || member_up(p, owner) == NULL) {
			pd->results[i] = (int16_t)-ERR_UNAVAILABLE;
			PSTAT_INC(p, fwd_unavailable);
			continue;
		}
		struct member_fwd *f = &p->by_id[owner].fwd;

		/*
		 * The owner runs frames in arrival order: another op's items
		 * collected before this one go first, so one client's writes
		 * keep their order per owner (a register then a deregister of
		 * one instance, pipelined, must not arrive swapped). Batching
		 * within an op is unchanged; frames split only where ops
		 * alternate.
		 */
		for (uint32_t o = 0; o < FWD_OPS; o++)
			if (o != opi && f->build[o].n)
				flush_one(p, owner, o);
		if (buf_used(&f->build[opi].items) >= FWD_FRAME_BYTES ||
		    f->build[opi].n == PWIRE_FWD_MAX)
			flush_one(p, owner, opi);
		if (!fwd_add(f, opi, start, (size_t)(r.p - start), pd, i)) {
			pd->results[i] = (int16_t)-ERR_UNAVAILABLE;
			PSTAT_INC(p, fwd_unavailable);
			continue;
		}
		pd->fwd_left++;
	}
	if (--pd->fwd_left == 0)
		peer_to_worker(p, pd->origin, pd);
}

/* Every owner's collected items as FWD frames: once per loop. */
void forward_flush_all(struct peer *p)
{
	for (uint16_t id = 1; id <= p->conf.n; id++)
		for (uint32_t opi = 0; id != p->self && opi < FWD_OPS; opi++)
			flush_one(p, id, opi);
}

void forward_on_ack(struct peer *p, uint16_t from, const struct proto_header *h,
                    const uint8_t *body)
{
	PSTAT_ADD(p, fwd_unavailable,
	          fwd_ack(&p->by_id[from].fwd, h->request_id, body, h->count, fref_answer, p));
}

void forward_member_down(struct peer *p, uint16_t id)
{
	PSTAT_ADD(p, fwd_unavailable, fwd_fail_all(&p->by_id[id].fwd, fref_answer, p));
}

/*
 * A peer that stays UP but never answers: its forwarded items get
 * ERR_UNAVAILABLE after WAIT_TIMEOUT_MS, so no client write waits for it
 * forever.
 */
void forward_expire(struct peer *p, uint16_t id, int64_t now)
{
	PSTAT_ADD(p, fwd_unavailable,
	          fwd_expire(&p->by_id[id].fwd, now, WAIT_TIMEOUT_MS, fref_answer, p));
}

/* ---- in: a peer's items run here ---- */

static void answer_busy(struct peer *p, uint16_t from, const struct proto_header *h)
{
	struct link *l = member_up(p, from);
	uint8_t *f = l ? link_frame_begin(l, 2u * h->count) : NULL;

	if (f == NULL)
		return; /* the origin times the frame out: ERR_UNAVAILABLE, retryable */
	for (uint32_t i = 0; i < h->count; i++)
		proto_result_put(f + PROTO_HEADER_BYTES, i, (int16_t)-ERR_BUSY);
	link_frame_end(l, P_FWD_ACK, 2u * h->count, h->request_id, 0, h->count);
}

void forward_on_fwd(struct peer *p, uint16_t from, const struct proto_header *h,
                    const uint8_t *body)
{
	static __thread struct store_kv kv[PROTO_META_MAX];
	struct member_fwd *f = &p->by_id[from].fwd;
	bool over = f->serving >= FWD_SERVING_MAX;
	struct pending *pd = over ? NULL : mem_alloc(sizeof(*pd) + 2u * h->count + h->body_len);
	struct proto_rd r;

	if (pd == NULL) { /* bounded: answer busy, the origin's client retries */
		answer_busy(p, from, h);
		return;
	}
	memset(pd, 0, sizeof(*pd));
	pd->head.kind = XM_PENDING;
	pd->origin = p->idx;
	pd->h = *h;
	pd->h.op = (uint8_t)h->status;
	pd->h.status = 0;
	pd->results = (int16_t *)(pd + 1);
	pd->body = (uint8_t *)(pd->results + h->count);
	memcpy(pd->body, body, h->body_len);
	pd->fwd_tag = h->request_id;
	pd->fwd_from = from;
	pd->fwd_gen = p->conf_gen;
	pd->start_us = clock_mono_us(); /* a worker refuses it if it waits past --peer-down */
	proto_rd_init(&r, pd->body, h->body_len);
	for (uint32_t i = 0; i < h->count; i++) {
		struct store_key k;
		struct store_val v;
		int item_err;

		pd->results[i] = 0;
		proto_rd_item(&r, pd->h.op, &k, &v, kv, PROTO_META_MAX, &item_err);
		if (k.svc.service.p == NULL)
			pd->results[i] = (int16_t)-ERR_NAME_EMPTY;
		else
			pd->shard_mask |= 1ull << store_shard_of(p->env.store, &k.svc);
	}
	PSTAT_ADD(p, fwd_served, h->count);
	f->serving++;
	pd->parts = (uint32_t)__builtin_popcountll(pd->shard_mask);
	if (pd->parts == 0) {
		pd->parts = 1;
		peer_to_worker(p, 0, pd); /* nothing to run: a round trip keeps one path */
		return;
	}
	for (uint32_t w = 0; w < p->env.nworkers; w++)
		if (pd->shard_mask & (1ull << w))
			peer_to_worker(p, w, pd);
}

/* A part of a peer's forwarded request came back from a worker. */
void forward_on_part(struct peer *p, struct pending *pd)
{
	struct member_fwd *f = &p->by_id[pd->fwd_from].fwd;
	struct link *l;

	assert(pd->parts > 0);
	if (--pd->parts > 0)
		return;
	if (f->serving > 0)
		f->serving--;
	/* After a member list change the id may name another member: the origin has given up. */
	l = pd->fwd_gen == p->conf_gen ? member_up(p, pd->fwd_from) : NULL;
	if (l) {
		uint8_t *fr = link_frame_begin(l, 2u * pd->h.count);

		if (fr) {
			proto_results_put(fr + PROTO_HEADER_BYTES, pd->results, pd->h.count);
			link_frame_end(l, P_FWD_ACK, 2u * pd->h.count, pd->fwd_tag, 0, pd->h.count);
		}
	}
	mem_free(pd);
}
