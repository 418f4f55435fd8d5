/*
 * encode.c - what a distrobench connection sends next.
 *
 * A ready connection gets frames encoded into its out buffer until its
 * pipeline (slots) is full, OUT_SOFT_BYTES are waiting, or (open loop) no
 * frame is due yet: the workload's writes and lists over the connection's
 * share of the instances, subscribe's changes, the set-up and tear-down
 * batches. Every frame takes a slot whose id the answer must carry back
 * (loop.c's essay: request ids, latency start).
 */
#include "distrobench/loop_internal.h"

struct slot *loop_slot_take(struct loop *l, struct conn *c, uint32_t *id)
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
	s = loop_slot_take(l, c, &id);
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
		struct slot *s = loop_slot_take(l, c, &id);

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

/* A PING frame: its body comes back as it went, the node does nothing else. */
static int encode_ping(struct loop *l, struct conn *c, uint64_t start)
{
	uint32_t id;
	struct slot *s;
	uint8_t *p;

	if (!buf_reserve(&c->out, PROTO_HEADER_BYTES + 4, CONN_BUF_BYTES_MAX))
		return -ERR_NOMEM;
	s = loop_slot_take(l, c, &id);
	s->start_ns = start;
	s->items = 1;
	s->op = OP_PING;
	s->cls = CLS_PING;
	s->kind = SK_TIMED;
	p = c->out.p + c->out.len;
	proto_header_put(p, OP_PING, 4, id, 0, 0);
	memcpy(p + PROTO_HEADER_BYTES, "ping", 4);
	c->out.len += PROTO_HEADER_BYTES + 4;
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
	s = loop_slot_take(l, c, &id);
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
uint64_t loop_probe_time(const struct loop *l, uint32_t service, uint32_t seq)
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
		if (c->g)
			rc = gload_register(l, c, c->lo + c->cur,
			                    weight_of(l, c->lo + c->cur, c->pass, SK_TIMED), start);
		else
			rc = encode_batch(l, c, OP_REGISTER, CLS_REGISTER, SK_TIMED, c->lo, c->own,
			                  c->cur, n, c->pass, start);
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
		rc = c->g ? gload_query(l, c, c->svc_cur, start)
		          : encode_list(l, c, OP_LIST, c->svc_cur, 0, start);
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
	case WL_PING:
		return encode_ping(l, c, start);
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
void loop_fill(struct loop *l, struct conn *c)
{
	const struct bench_config *cfg = l->cfg;
	int rc = 0;

	if (c->dead)
		return;
	if (l->idle) {
		if (c->g)
			gload_flush(l, c); /* acks, window updates */
		return;
	}
	switch (l->phase) {
	case PH_SETUP:
	case PH_TEARDOWN:
		if (c->g && !c->g_hello_sent && l->phase == PH_SETUP)
			rc = gload_hello(l, c);
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
		while (c->g && rc == 0 && c->subs_sent < c->subs_n &&
		       c->subs_sent - c->subs_answered < SUB_PIPELINE && c->free_n > 0 &&
		       out_room(c)) {
			rc = gload_subscribe(l, c, c->subs_sent);
			if (rc == 0)
				c->subs_sent++;
		}
		while (!c->g && rc == 0 && c->subs_sent < c->subs_n &&
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
				loop_heap_push(l, c);
		} else if (c->role == ROLE_LOAD && l->now < l->t_end) {
			while (rc == 0 && c->inflight < cfg->pipeline && out_room(c))
				rc = encode_next(l, c, l->now);
		}
		break;
	case PH_CONNECT:
	case PH_COUNT:
		break;
	}
	if (rc == 0 && c->g)
		gload_flush(l, c);
	else if (rc < 0)
		loop_conn_fail(l, c, REPORT_E_CONN);
	loop_check_done(l, c);
}
