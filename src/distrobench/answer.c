/*
 * answer.c - a distrobench thread's completions.
 *
 * Receives hand their bytes to feed(): whole frames are parsed in place,
 * a frame split across buffers is carried in the connection's buffer.
 * Each answer is matched to its slot by request id and op, its items
 * checked against what was sent (a list against the instances it must
 * hold), its latency recorded, and its slot freed; a PUSH is matched to
 * its subscription. An answer matching nothing ends the connection.
 */
#include "distrobench/loop_internal.h"

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
uint32_t loop_list_expected(const struct loop *l, uint32_t s)
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
	want = loop_list_expected(l, s->first);
	if (want != UINT32_MAX && (total != want || h->count != want))
		report_error(a, REPORT_E_LIST, 1);
}

/* A PING's answer carries its body back. */
static void check_ping(struct bench_stats *a, const struct proto_header *h, const uint8_t *body)
{
	if (h->status)
		report_error(a, h->status, 1);
	else if (h->body_len != 4 || memcmp(body, "ping", 4) != 0)
		report_error(a, REPORT_E_ANSWER, 1);
}

/* Where the answer to slot s counts: the window or the scratch. */
struct bench_stats *loop_slot_acc(struct loop *l, const struct conn *c, const struct slot *s)
{
	bool timed = s->kind == SK_TIMED || s->kind == SK_CHANGE;

	if (!timed)
		return &l->scratch;
	if (c->period_ns <= 0)
		return loop_acc(l);                      /* closed loop: by completion */
	return in_window(l, s->start_ns) ? &l->th->stats /* open: by schedule */
	                                 : &l->scratch;
}

/*
 * The answer to slot s was checked into a (loop_slot_acc's), with errs
 * errors: setup counts, latency and ops, then the slot is free.
 */
void loop_slot_close(struct loop *l, struct conn *c, struct slot *s, struct bench_stats *a,
                     uint64_t errs)
{
	bool timed = s->kind == SK_TIMED || s->kind == SK_CHANGE;
	uint64_t lat_us;

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
	loop_slot_free(l, c, s);
}

static void slot_answer(struct loop *l, struct conn *c, struct slot *s,
                        const struct proto_header *h, const uint8_t *body)
{
	struct bench_stats *a = loop_slot_acc(l, c, s);
	uint64_t errors0 = a->errors;

	if (s->op == OP_LIST)
		check_list(l, a, s, h, body);
	else if (s->op == OP_PING)
		check_ping(a, h, body);
	else
		check_results(a, s, h, body);
	loop_slot_close(l, c, s, a, a->errors - errors0);
}

/* Subscribe: one subscriber's delivery of change seq, sent at t (0: unknown). */
static void delivered(struct loop *l, uint64_t t)
{
	struct bench_stats *a;
	uint64_t lat_us;

	if (t == 0) {
		a = loop_acc(l);
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
		report_error(loop_acc(l), REPORT_E_ANSWER, 1);
		loop_conn_fail(l, c, REPORT_E_ANSWER);
		return;
	}
	sb = &c->subs[i];
	plan_addr(sb->service * l->plan->block, &probe);
	if (h->op == OP_PUSH) {
		loop_acc(l)->pushes++;
		loop_acc(l)->list_views += h->count;
	}
	if (h->status || parse_list(l, h, body, &total, &probe, &w) < 0) {
		if (h->op == OP_PUSH) {
			report_error(loop_acc(l), h->status ? h->status : REPORT_E_ANSWER, 1);
			l->iv_errors++;
		} else {
			__atomic_fetch_add(&l->sh->setup_errors, 1, __ATOMIC_RELAXED);
			c->subs_answered++;
			loop_check_done(l, c);
			loop_make_ready(l, c); /* room in the pipeline: the next SUBSCRIBE */
		}
		return;
	}
	if (h->op != OP_PUSH) {
		sb->last = w == UINT32_MAX ? 0 : w;
		c->subs_answered++;
		__atomic_fetch_add(&l->sh->subscriptions, 1, __ATOMIC_RELAXED);
		loop_check_done(l, c);
		loop_make_ready(l, c); /* room in the pipeline: the next SUBSCRIBE */
		return;
	}
	loop_sub_seen(l, sb, w);
}

/* A push showed subscription sb the probe's weight w (UINT32_MAX: not there). */
void loop_sub_seen(struct loop *l, struct sub *sb, uint32_t w)
{
	if (w == UINT32_MAX || w <= sb->last)
		return; /* a push for another change (or none of ours) */
	/* Every change after the last one seen is shown by this push. */
	uint32_t from = sb->last + 1;

	if (w - sb->last > LOOP_PROBE_RING) {
		for (; from <= w - LOOP_PROBE_RING; from++)
			delivered(l, 0);
	}
	for (uint32_t seq = from; seq <= w; seq++)
		delivered(l, loop_probe_time(l, sb->service, seq));
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
		loop_conn_fail(l, c, h->status ? h->status : REPORT_E_ANSWER);
		return;
	}
	s = i < c->slots_n ? &c->slots[i] : NULL;
	if (s == NULL || !s->busy || s->gen != gen || h->op != (s->op | PROTO_RESPONSE)) {
		report_error(loop_acc(l), REPORT_E_ANSWER, 1);
		l->iv_errors++;
		loop_conn_fail(l, c, REPORT_E_ANSWER);
		return;
	}
	slot_answer(l, c, s, h, body);
	loop_make_ready(l, c);
	loop_check_done(l, c);
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
			report_error(loop_acc(l), REPORT_E_ANSWER, 1);
			l->iv_errors++;
			loop_conn_fail(l, c, REPORT_E_ANSWER);
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

	if (c->g) {
		gload_feed(l, c, data, len);
		if (!c->dead)
			loop_make_ready(l,
			                c); /* what the session has to say back, and more calls */
		return;
	}
	if (buf_used(&c->carry) == 0) {
		used = parse_frames(l, c, data, len);
		if (c->dead || used == len)
			return;
		if (!buf_append(&c->carry, data + used, len - used, CONN_BUF_BYTES_MAX))
			loop_conn_fail(l, c, REPORT_E_ANSWER);
		return;
	}
	if (!buf_append(&c->carry, data, len, CONN_BUF_BYTES_MAX)) {
		loop_conn_fail(l, c, REPORT_E_ANSWER);
		return;
	}
	used = parse_frames(l, c, c->carry.p + c->carry.off, (uint32_t)buf_used(&c->carry));
	if (c->dead)
		return;
	buf_consume(&c->carry, used);
}

void loop_handle_cqe(struct loop *l, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	struct conn *c = &l->conns[(uint32_t)ud];

	if ((ud >> 32) == UD_SEND) {
		c->send_busy = false;
		if (cqe->res < 0) {
			loop_conn_fail(l, c, REPORT_E_CONN);
			return;
		}
		buf_consume(&c->sending, (size_t)cqe->res);
		if (buf_used(&c->sending) && !c->dead) {
			loop_submit_send(l, c); /* a short send: the rest */
			return;
		}
		buf_clear(&c->sending);
		loop_make_ready(l, c);
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
		loop_conn_fail(l, c, REPORT_E_CONN); /* closed by the node, or broken */
	}
	if (!c->recv_armed && !c->dead)
		loop_make_ready(l, c);
}
