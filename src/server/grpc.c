/*
 * grpc.c - the Nacos 2.x gRPC port's connections, on the worker that
 * accepted them.
 *
 * Transport. Each worker listens on the gRPC port itself (SO_REUSEPORT,
 * accept.c) and receives with the same provided buffers as on the other
 * ports. The bytes go to the connection's HTTP/2 session (src/grpc/h2.h,
 * nghttp2 in memory); what the session has to send is taken after each
 * feed and after each answer or push, into conn.out, and sent with
 * everything else at the end of the loop. Nothing is taken from inside
 * the session's callbacks (nghttp2 forbids sending from them): answers
 * made there are left in the stream and taken when the feed returns.
 * Closes from here (an answer that cannot be queued, output over
 * --out-max, an ejection) use conn_close_later: they may run inside the
 * session's feed (an answer from on_message) or a walk of the
 * connection's subscriptions (a push retried), so the slot, and the
 * session and subscriptions with it, are freed by the loop's flush and
 * never under the walker.
 *
 * Life cycle, as a Nacos 2.x server (docs/nacos.md, "gRPC"):
 *  - ServerCheckRequest, unary, is answered at any time with the
 *    connection id, which is the transport's: <ms>_<ip>_<port> of the
 *    client's address, like Nacos's AddressTransportFilter.
 *  - ConnectionSetupRequest on the bi-stream registers the connection
 *    (its tenant; a SetupAckRequest goes back when it offered an ability
 *    table). Every other unary request before it is an ErrorResponse 301
 *    (UN_REGISTER); an unknown type is 302 (NO_HANDLER).
 *  - HealthCheckRequest is answered; any message counts as activity. A
 *    registered connection silent for --grpc-detect-idle gets a
 *    ClientDetectionRequest on the bi-stream; one that still says nothing
 *    within --grpc-detect-timeout is ejected: closed, with its instances.
 *  - Before its first whole message, a connection has --header-timeout
 *    (the preface deadline, via conn.partial_ms); after it, while it
 *    holds partial messages, it must complete one within it.
 *  - At shutdown every session sends GOAWAY (grpc_stop).
 *
 * Instances that live as long as their connection. A Nacos 2.x client
 * does not beat: the server keeps its ephemeral instances while the
 * connection lives. Here the connection keeps the wire items of what it
 * registered (struct ginst, at most GRPC_INSTS_MAX) and every
 * --grpc-renew ms sends them as one RENEW frame (or a few, of
 * NACOS_BATCH_MAX items) through ops_write: the same path as a binary
 * client's beats, so the owner of each instance (a shard here, or another
 * node) renews it, or re-creates it if it was lost. When the connection
 * ends (closed by the client, ejected, too slow, shutdown), its instances
 * are released the same way (RELEASE), and the slot is kept until those
 * writes are answered (conn.pending). If this process dies instead,
 * nothing renews them and they expire at their owner after
 * --delete-timeout, as a beating client's would; the client reconnects
 * and registers again.
 *
 * Leases. Every item of a register (HOLD), renewal (RENEW) or release
 * (RELEASE) carries the connection's holder id (gconn.holder, unique in
 * the cluster), so the owner keeps a lease per connection on the one
 * record of an instance (store/lease.c): an instance two connections
 * registered, here or on two nodes, stays while either lives and goes with
 * the last, as Nacos keeps one publication per connection
 * (docs/distro.md, "gRPC connections and their instances").
 *
 * Pushes. SubscribeServiceRequest adds a subscription to the worker's
 * watches (subs.c), like a binary SUBSCRIBE: every push window the
 * revisions of the watched services are read and a changed service is
 * pushed once to each subscriber, here as a NotifySubscriberRequest on
 * the bi-stream (grpc_push). Each push waits for its
 * NotifySubscriberResponse, one at a time per subscription: a change
 * meanwhile is pushed once the ack comes; a push not acknowledged within
 * --grpc-push-timeout is sent again with the current state (subs.c).
 *
 * Memory: a connection's state comes from the worker's pool; the HTTP/2
 * session allocates through nghttp2 (bounded by SETTINGS: streams, header
 * sizes, our message bound). Requests are decoded into per-worker scratch
 * (a protobuf arena, a JSON token array, a string buffer) and answers are
 * built in one per-worker buffer.
 */
#include "server/grpc_internal.h"

#include "cluster/peer.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/mem.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void on_message(void *user, int32_t stream, enum h2_path path, const uint8_t *msg,
                       size_t len);
static void on_close(void *user, int32_t stream, enum h2_path path);

static const struct h2_ops grpc_h2_ops = { on_message, on_close };

int grpc_init(struct worker *w)
{
	struct grpc_worker *g = mem_calloc(1, sizeof(*g));

	if (g == NULL)
		return -ENOMEM;
	w->grpc = g;
	pool_init(&g->gconns, sizeof(struct gconn));
	g->holder_seq = ((uint64_t)clock_wall_ms(NULL) & GRPC_HOLDER_SEQ_MASK) | 1;
	g->toks = mem_alloc(sizeof(jsmntok_t) * GRPC_TOKENS_MAX);
	g->scratch = mem_alloc(GRPC_SCRATCH);
	g->frame = mem_alloc(NACOS_FRAME_BYTES);
	/* Untouched pages cost nothing: a worker without gRPC clients keeps little of this. */
	if (g->toks == NULL || g->scratch == NULL || g->frame == NULL ||
	    payload_arena_init(&g->arena, 2 * (size_t)w->srv->cfg.grpc_msg_bytes_max + 65536) < 0)
		return -ENOMEM;
	return 0;
}

void grpc_free(struct worker *w)
{
	struct grpc_worker *g = w->grpc;

	if (g == NULL)
		return;
	pool_destroy(&g->gconns);
	payload_arena_free(&g->arena);
	buf_free(&g->body);
	mem_free(g->toks);
	mem_free(g->scratch);
	mem_free(g->frame);
	mem_free(g);
	w->grpc = NULL;
}

/* ---- output ---- */

/* Moves what the session has to send into conn.out; closes when the session is over. */
static void pump(struct worker *w, uint32_t idx)
{
	struct conn *c = conn_at(w, idx);
	struct gconn *g = c->grpc;

	if (g == NULL || g->in_feed || c->state == C_FREE)
		return;
	for (;;) {
		const uint8_t *d;
		long n = h2_take(&g->h2, &d);
		uint8_t *p;

		if (n < 0) {
			conn_close_later(w, idx);
			return;
		}
		if (n == 0)
			break;
		if (c->state != C_OPEN)
			continue; /* closing: what it says no longer matters */
		p = out_reserve(w, idx, (uint32_t)n);
		if (p == NULL)
			return; /* closed as too slow */
		memcpy(p, d, (size_t)n);
		out_commit(w, idx, (uint32_t)n);
	}
	if (c->state == C_OPEN && h2_done(&g->h2)) {
		c->close_after_flush = true;
		if (c->out.len == 0 && !c->send_inflight)
			conn_close_later(w, idx);
	}
}

struct buf *grpc_body(struct worker *w)
{
	buf_clear(&w->grpc->body);
	return &w->grpc->body;
}

bool grpc_put(struct buf *b, const char *s)
{
	return json_put_raw(b, s, strlen(s), NACOS_BODY_MAX);
}

bool grpc_put_head(struct buf *b, const char *rid)
{
	return grpc_put(b, "{\"resultCode\":200,\"errorCode\":0,\"message\":null,\"requestId\":") &&
	       json_put_str(b, rid, strlen(rid), NACOS_BODY_MAX) &&
	       grpc_put(b, ",\"success\":true");
}

/* Sends the worker's body as one message of type on stream; on a unary stream, ends it. */
static int send_body(struct worker *w, uint32_t idx, int32_t stream, const char *type, bool end)
{
	struct gconn *g = conn_at(w, idx)->grpc;
	struct buf *b = &w->grpc->body, *out;
	size_t max = w->srv->cfg.grpc_msg_bytes_max;

	if (g == NULL || conn_at(w, idx)->state != C_OPEN)
		return -ERR_NOT_FOUND;
	out = h2_stream_out(&g->h2, stream);
	if (out == NULL)
		return -ERR_NOT_FOUND;
	if (buf_used(b) + 256 > max) {
		WSTAT_INC(w, grpc_errors);
		if (end)
			h2_finish(&g->h2, stream, GRPC_RESOURCE_EXHAUSTED,
			          "answer larger than the message bound");
		return -ERR_TOO_BIG;
	}
	/*
	 * Answers held back by the client's windows (a client that announced
	 * SETTINGS_INITIAL_WINDOW_SIZE 0, or stopped reading) count against
	 * --out-max for the whole connection, as conn.out does: past it the
	 * client is too slow and the connection closes.
	 */
	if (h2_out_held(&g->h2) + buf_used(b) + 256 > w->srv->cfg.out_bytes_max) {
		WSTAT_INC(w, conns_slow_closed);
		log_warn("gRPC connection %u: answers held over %u bytes, closing", idx,
		         w->srv->cfg.out_bytes_max);
		conn_close_later(w, idx);
		return -ERR_NOMEM;
	}
	if (payload_encode(out, max + 5 + (end ? 0 : (size_t)w->srv->cfg.out_bytes_max), true, type,
	                   (const char *)b->p + b->off, buf_used(b)) < 0) {
		/* A client that stopped reading its stream: it cannot be served. */
		conn_close_later(w, idx);
		return -ERR_NOMEM;
	}
	if (end)
		h2_finish(&g->h2, stream, GRPC_OK, NULL);
	else
		h2_flush(&g->h2, stream);
	pump(w, idx);
	return 0;
}

void grpc_answer(struct worker *w, uint32_t idx, int32_t stream, const char *type)
{
	(void)send_body(w, idx, stream, type, true);
}

void grpc_answer_fail(struct worker *w, uint32_t idx, int32_t stream, const char *type,
                      const char *rid, int code, const char *msg)
{
	struct buf *b = grpc_body(w);
	char num[16];

	WSTAT_INC(w, grpc_errors);
	snprintf(num, sizeof(num), "%d", code);
	if (grpc_put(b, "{\"resultCode\":500,\"errorCode\":") && grpc_put(b, num) &&
	    grpc_put(b, ",\"message\":") && json_put_str(b, msg, strlen(msg), NACOS_BODY_MAX) &&
	    grpc_put(b, ",\"requestId\":") && json_put_str(b, rid, strlen(rid), NACOS_BODY_MAX) &&
	    grpc_put(b, ",\"success\":false}"))
		grpc_answer(w, idx, stream, type);
}

/* ---- requests ---- */

bool grpc_jstr(struct greq *r, int obj, const char *key, struct store_str *out)
{
	int t = json_obj_get(&r->d, obj, key), n;
	char *at = r->w->grpc->scratch + r->scratch_used;

	if (t < 0 || json_is_null(&r->d, t))
		return false;
	n = json_str(&r->d, t, at, GRPC_SCRATCH - r->scratch_used);
	if (n < 0)
		return false;
	r->scratch_used += (size_t)n;
	*out = (struct store_str){ at, (uint32_t)n };
	return true;
}

bool grpc_jbool(struct greq *r, int obj, const char *key, bool dflt)
{
	int t = json_obj_get(&r->d, obj, key);
	char v[8];
	int n;

	if (t < 0)
		return dflt;
	n = json_str(&r->d, t, v, sizeof(v));
	if (n == 4 && memcmp(v, "true", 4) == 0)
		return true;
	if (n == 5 && memcmp(v, "false", 5) == 0)
		return false;
	return dflt;
}

uint64_t grpc_svc_hash(const struct store_svc_key *sk)
{
	uint64_t h = XXH3_64bits(sk->ns.p ? sk->ns.p : "", sk->ns.len);

	h = XXH3_64bits_withSeed(sk->group.p ? sk->group.p : "", sk->group.len, h ^ 1);
	return XXH3_64bits_withSeed(sk->service.p ? sk->service.p : "", sk->service.len, h ^ 2);
}

static void server_check(struct greq *r)
{
	struct buf *b = grpc_body(r->w);

	if (grpc_put_head(b, r->rid) && grpc_put(b, ",\"connectionId\":") &&
	    json_put_str(b, r->g->id, strlen(r->g->id), NACOS_BODY_MAX) &&
	    grpc_put(b, ",\"supportAbilityNegotiation\":true}"))
		grpc_answer(r->w, r->idx, r->stream, "ServerCheckResponse");
}

/* Sends a request of the server's on the bi-stream; its id, or 0 when it could not. */
static uint64_t server_request(struct worker *w, uint32_t idx, const char *type, const char *fields)
{
	struct gconn *g = conn_at(w, idx)->grpc;
	struct buf *b = grpc_body(w);
	char rid[24];
	uint64_t id;

	if (g == NULL || g->bi == 0)
		return 0;
	id = ++g->next_rid;
	snprintf(rid, sizeof(rid), "%llu", (unsigned long long)id);
	if (!(grpc_put(b, "{\"headers\":{},\"requestId\":") &&
	      json_put_str(b, rid, strlen(rid), NACOS_BODY_MAX) && grpc_put(b, fields) &&
	      grpc_put(b, "}")))
		return 0;
	return send_body(w, idx, g->bi, type, false) == 0 ? id : 0;
}

static void setup(struct greq *r)
{
	struct gconn *g = r->g;
	struct store_str tenant;
	int t;

	if (r->stream != g->bi && g->bi != 0) {
		/* A second bi-stream replaces the first (a client that re-opened it). */
		h2_finish(&g->h2, g->bi, GRPC_OK, NULL);
	}
	g->bi = r->stream;
	g->setup = true;
	if (grpc_jstr(r, 0, "tenant", &tenant))
		snprintf(g->tenant, sizeof(g->tenant), "%.*s", (int)tenant.len, tenant.p);
	t = json_obj_get(&r->d, 0, "abilityTable");
	if (t >= 0 && !json_is_null(&r->d, t))
		(void)server_request(r->w, r->idx, "SetupAckRequest",
		                     ",\"module\":\"internal\",\"abilityTable\":{}");
}

/* A response of the client's to one of our requests on the bi-stream. */
static void client_response(struct greq *r, struct store_str type)
{
	uint64_t id = strtoull(r->rid, NULL, 10);

	if (nacos_str_eq(type, "NotifySubscriberResponse")) {
		if (subs_grpc_ack(r->w, conn_at(r->w, r->idx), id))
			WSTAT_INC(r->w, grpc_push_acked);
	} else if (nacos_str_eq(type, "ClientDetectionResponse")) {
		if (id == r->g->detect_id)
			r->g->detect_ms = 0;
	}
	/* SetupAckResponse, ConnectResetResponse and others: activity, nothing more */
}

static bool type_is(struct store_str t, const char *s)
{
	return nacos_str_eq(t, s);
}

static void on_message(void *user, int32_t stream, enum h2_path path, const uint8_t *msg,
                       size_t len)
{
	struct gconn *g = user;
	struct worker *w = g->w;
	struct conn *c = conn_at(w, g->idx);
	struct greq r = { .w = w, .idx = g->idx, .g = g, .stream = stream };
	struct store_str type, rid;
	int rc;

	if (c->state != C_OPEN)
		return;
	WSTAT_INC(w, grpc_requests);
	g->messages++;
	g->active_ms = w->now_ms;
	g->detect_ms = 0; /* any message answers a detection */
	if (!g->first_message) {
		g->first_message = true;
		c->partial_ms = 0; /* the preface deadline is met */
	}
	rc = payload_decode(&w->grpc->arena, msg, len, &r.pl);
	if (rc < 0) {
		WSTAT_INC(w, grpc_errors);
		h2_finish(&g->h2, stream, GRPC_INVALID_ARGUMENT, "malformed Payload");
		return;
	}
	type = r.pl.type;
	rc = json_parse(&r.d, r.pl.body.p, r.pl.body.len, w->grpc->toks, GRPC_TOKENS_MAX);
	if (rc < 0 || r.d.t[0].type != JSMN_OBJECT) {
		if (path == H2_PATH_UNARY)
			grpc_answer_fail(w, g->idx, stream, "ErrorResponse", "", 502,
			                 "request body is not a JSON object");
		else
			WSTAT_INC(w, grpc_errors);
		return;
	}
	if (grpc_jstr(&r, 0, "requestId", &rid))
		snprintf(r.rid, sizeof(r.rid), "%.*s", (int)rid.len, rid.p);
	if (path == H2_PATH_BIDI) {
		if (type_is(type, "ConnectionSetupRequest"))
			setup(&r);
		else if (type.len > 8 && memcmp(type.p + type.len - 8, "Response", 8) == 0)
			client_response(&r, type);
		return;
	}
	if (type_is(type, "ServerCheckRequest")) {
		server_check(&r);
		return;
	}
	/*
	 * A health check is answered before the setup too: the Rust SDK sends
	 * one right after opening the bi-stream, which may still be on its way
	 * (Nacos answers 301 then, and the client retries for seconds).
	 */
	if (type_is(type, "HealthCheckRequest")) {
		struct buf *b = grpc_body(w);

		if (grpc_put_head(b, r.rid) && grpc_put(b, "}"))
			grpc_answer(w, g->idx, stream, "HealthCheckResponse");
		return;
	}
	if (!g->setup) {
		grpc_answer_fail(w, g->idx, stream, "ErrorResponse", r.rid, 301,
		                 "Connection is unregistered.");
		return;
	}
	if (grpc_naming_type(type)) {
		grpc_naming(&r, type);
		return;
	}
	{
		char m[200];

		snprintf(m, sizeof(m), "RequestHandler Not Found: %.*s",
		         (int)(type.len > 120 ? 120 : type.len), type.p);
		grpc_answer_fail(w, g->idx, stream, "ErrorResponse", r.rid, 302, m);
	}
}

static void on_close(void *user, int32_t stream, enum h2_path path)
{
	struct gconn *g = user;

	(void)path;
	if (stream == g->bi) {
		/*
		 * The bi-stream is the connection, for Nacos: without it nothing can
		 * be pushed or detected. The client opens a new connection.
		 */
		g->bi = 0;
		if (g->setup && conn_at(g->w, g->idx)->state == C_OPEN)
			conn_at(g->w, g->idx)->close_after_flush = true;
	}
	for (uint32_t i = 0; i < GRPC_WAITS_MAX; i++)
		if (g->waits[i].used && g->waits[i].stream == stream)
			g->waits[i].stream = 0; /* its answer has nowhere to go */
}

/* ---- connections ---- */

bool grpc_conn_open(struct worker *w, uint32_t idx)
{
	struct conn *c = conn_at(w, idx);
	struct grpc_worker *gw = w->grpc;
	struct h2_limits lim = {
		.msg_bytes_max = w->srv->cfg.grpc_msg_bytes_max,
		.streams_max = w->srv->cfg.grpc_streams_max,
		.out_bytes_max = w->srv->cfg.out_bytes_max,
	};
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct gconn *g = pool_get(&gw->gconns);
	char ip[INET6_ADDRSTRLEN] = "0.0.0.0";
	unsigned port = 0;

	if (g == NULL)
		return false;
	memset(g, 0, sizeof(*g));
	if (h2_init(&g->h2, &grpc_h2_ops, g, &lim) < 0) {
		pool_put(&gw->gconns, g);
		return false;
	}
	g->w = w;
	g->idx = idx;
	g->active_ms = w->now_ms;
	g->since_ms = w->now_ms;
	g->renew_every_ms = w->srv->cfg.grpc_renew_ms;
	g->renew_ms = w->now_ms + g->renew_every_ms;
	/*
	 * The holder id of its leases, unique in the cluster: the member id
	 * (0 standalone), the worker, and a per-worker sequence started at the
	 * wall clock's ms, so a restarted node does not reuse the ids its
	 * previous run gave (unless it opened more than one connection per ms
	 * per worker on average). Never 0: the sequence starts past it.
	 */
	g->holder = (uint64_t)(worker_clustered(w) ? peer_self_id(w->srv->peer) : 0) << 48 |
	            (uint64_t)(w->id & 0xff) << 40 | (gw->holder_seq++ & GRPC_HOLDER_SEQ_MASK);
	if (g->holder == 0)
		g->holder = gw->holder_seq++ & GRPC_HOLDER_SEQ_MASK;
	if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
			port = ntohs(a->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
			port = ntohs(a->sin6_port);
		}
	}
	snprintf(g->id, sizeof(g->id), "%lld_%s_%u", (long long)clock_wall_ms(NULL), ip, port);
	g->next = gw->list;
	if (gw->list)
		gw->list->prev = g;
	gw->list = g;
	c->grpc = g;
	return true;
}

void grpc_conn_started(struct worker *w, uint32_t idx)
{
	conn_at(w, idx)->partial_ms = w->now_ms; /* the preface and a first message are due */
	pump(w, idx);                            /* our SETTINGS */
}

static uint32_t renew_floor(uint32_t interval_ms)
{
	return interval_ms < GRPC_RENEW_MIN_MS ? GRPC_RENEW_MIN_MS : interval_ms;
}

/* --grpc-renew, or the shortest interval of the instances it has now. */
static uint32_t renew_every(struct worker *w, const struct gconn *g)
{
	uint32_t every = w->srv->cfg.grpc_renew_ms;

	for (const struct ginst *x = g->insts; x; x = x->next)
		if (x->interval_ms && renew_floor(x->interval_ms) < every)
			every = renew_floor(x->interval_ms);
	return every;
}

void grpc_insts_adopt(struct gconn *g, struct ginst *n)
{
	const uint8_t *key = n->bytes + n->inst_len;

	(void)grpc_insts_drop(g, key, n->key_len);
	/*
	 * An instance whose metadata asks for a shorter heartbeat interval
	 * (preserved.heart.beat.interval) gets it: the connection's renewals
	 * go that often while it is there (at least every GRPC_RENEW_MIN_MS:
	 * one instance must not make all of them renewed ten times a second;
	 * renew_every recomputes it as instances go).
	 */
	if (n->interval_ms && renew_floor(n->interval_ms) < g->renew_every_ms) {
		g->renew_every_ms = renew_floor(n->interval_ms);
		if (g->renew_ms > g->w->now_ms + g->renew_every_ms)
			g->renew_ms = g->w->now_ms + g->renew_every_ms;
	}
	n->next = g->insts;
	g->insts = n;
	g->insts_n++;
}

bool grpc_insts_drop(struct gconn *g, const uint8_t *key, uint32_t key_len)
{
	for (struct ginst **pp = &g->insts; *pp; pp = &(*pp)->next) {
		struct ginst *x = *pp;

		if (x->key_len == key_len && memcmp(x->bytes + x->inst_len, key, key_len) == 0) {
			*pp = x->next;
			mem_free(x);
			g->insts_n--;
			return true;
		}
	}
	return false;
}

uint32_t grpc_item_len(uint8_t op, const struct ginst *x)
{
	uint32_t n = proto_op_keyed(op) ? x->key_len : x->inst_len;

	if (proto_op_leased(op))
		n += op == OP_RELEASE ? 8 : 12;
	return n;
}

uint32_t grpc_item_put(uint8_t *dst, const struct gconn *g, uint8_t op, const struct ginst *x)
{
	const uint8_t *item = proto_op_keyed(op) ? x->bytes + x->inst_len : x->bytes;
	uint32_t n = proto_op_keyed(op) ? x->key_len : x->inst_len, pre = 0;

	if (proto_op_leased(op)) {
		struct proto_wr wr;

		pre = op == OP_RELEASE ? 8 : 12;
		proto_wr_init(&wr, dst, pre);
		proto_wr_u64(&wr, g->holder);
		if (op != OP_RELEASE)
			proto_wr_u32(&wr, g->renew_every_ms);
	}
	memcpy(dst + pre, item, n);
	return pre + n;
}

/*
 * Sends the connection's instances as frames of op (RENEW: the instance
 * items; RELEASE: the key items; both under the connection's holder id),
 * at most NACOS_BATCH_MAX items or NACOS_FRAME_BYTES each, tagged kind.
 */
static void insts_send(struct worker *w, uint32_t idx, struct gconn *g, uint8_t op,
                       enum grpc_write_kind kind)
{
	uint8_t *frame = w->grpc->frame;
	struct ginst *x = g->insts;

	while (x) {
		struct proto_header h = { .op = op, .request_id = grpc_tag(kind, 0) };
		size_t len = 0;

		for (; x && h.count < NACOS_BATCH_MAX; x = x->next) {
			if (len + grpc_item_len(op, x) > NACOS_FRAME_BYTES)
				break;
			len += grpc_item_put(frame + len, g, op, x);
			h.count++;
		}
		if (h.count == 0)
			break; /* cannot happen: an item is at most NACOS_ITEM_BYTES */
		h.body_len = (uint32_t)len;
		if (op == OP_RENEW)
			WSTAT_ADD(w, grpc_renewed, h.count);
		ops_write(w, idx, &h, frame);
	}
}

/*
 * The connection ends (closing, or the node stopping): the instances of
 * its publishes still waiting for their answer join its set, so they are
 * deregistered with it (after their register, on the same path), and
 * the answers adopt nothing any more.
 */
static void pending_take(struct gconn *g)
{
	g->ending = true;
	for (uint32_t i = 0; i < GRPC_WAITS_MAX; i++) {
		struct gwait *x = &g->waits[i];

		x->publish = false;
		while (x->insts) {
			struct ginst *n = x->insts;

			x->insts = n->next;
			n->next = g->insts;
			g->insts = n;
		}
	}
}

void grpc_conn_closing(struct worker *w, uint32_t idx)
{
	struct conn *c = conn_at(w, idx);
	struct gconn *g = c->grpc;

	if (g == NULL)
		return;
	/*
	 * Its instances go with it (answered to nobody: the slot waits for
	 * them). Not once the loop has ended (close_all at shutdown): a write
	 * could no longer finish; grpc_stop deregistered them while it ran.
	 */
	pending_take(g);
	if (!w->done)
		insts_send(w, idx, g, OP_RELEASE, GW_DROP);
	while (g->insts) {
		struct ginst *x = g->insts;

		g->insts = x->next;
		mem_free(x);
	}
	g->insts_n = 0;
}

void grpc_conn_end(struct worker *w, struct conn *c)
{
	struct gconn *g = c->grpc;
	struct grpc_worker *gw = w->grpc;

	if (g == NULL)
		return;
	for (uint32_t i = 0; i < GRPC_WAITS_MAX; i++)
		while (g->waits[i].insts) {
			struct ginst *x = g->waits[i].insts;

			g->waits[i].insts = x->next;
			mem_free(x);
		}
	while (g->insts) { /* none unless it closed before grpc_conn_closing ran */
		struct ginst *x = g->insts;

		g->insts = x->next;
		mem_free(x);
	}
	h2_free(&g->h2);
	if (g->prev)
		g->prev->next = g->next;
	else
		gw->list = g->next;
	if (g->next)
		g->next->prev = g->prev;
	pool_put(&gw->gconns, g);
	c->grpc = NULL;
}

void grpc_on_data(struct worker *w, uint32_t idx, const uint8_t *data, size_t len)
{
	struct conn *c = conn_at(w, idx);
	struct gconn *g = c->grpc;
	int rc;

	c->active_ms = w->now_ms;
	WSTAT_ADD(w, bytes_in, len);
	uint64_t messages = g->messages;

	g->in_feed = true;
	rc = h2_feed(&g->h2, data, len);
	g->in_feed = false;
	/*
	 * After the first message, --header-timeout applies to partial
	 * messages: a connection holding some must complete one within it
	 * (conn.partial_ms, checked by the idle sweep), or it closes.
	 */
	if (g->first_message) {
		if (g->h2.in_held == 0)
			c->partial_ms = 0;
		else if (c->partial_ms == 0 || g->messages != messages)
			c->partial_ms = w->now_ms;
	}
	if (rc < 0) {
		WSTAT_INC(w, proto_errors);
		log_debug("gRPC connection %u: %s, closing", idx, g->h2.error);
		c->close_after_flush = true; /* after nghttp2's GOAWAY */
	}
	pump(w, idx);
	if (c->state == C_OPEN && c->close_after_flush && c->out.len == 0 && !c->send_inflight)
		conn_close_later(w, idx);
}

/* ---- writes ---- */

int grpc_wait_new(struct greq *r, const char *type)
{
	struct gconn *g = r->g;

	for (uint32_t i = 0; i < GRPC_WAITS_MAX; i++)
		if (!g->waits[i].used) {
			struct gwait *x = &g->waits[i];

			memset(x, 0, sizeof(*x));
			x->used = true;
			x->stream = r->stream;
			x->type = type;
			snprintf(x->rid, sizeof(x->rid), "%s", r->rid);
			g->waits_n++;
			return (int)i;
		}
	return -ERR_BUSY;
}

void grpc_write_done(struct worker *w, uint32_t idx, const struct proto_header *h,
                     const int16_t *results)
{
	struct conn *c = conn_at(w, idx);
	struct gconn *g = c->grpc;
	uint32_t kind = h->request_id >> 24, slot = h->request_id & 0xffffffu;
	struct gwait *x;
	int err = 0;

	if (g == NULL || kind != GW_ANSWER || slot >= GRPC_WAITS_MAX || !g->waits[slot].used)
		return; /* renewals and drops: nobody waits */
	x = &g->waits[slot];
	for (uint32_t i = 0; i < h->count && err == 0; i++)
		if (results[i] < 0)
			err = results[i];
	if (err == 0 && c->state == C_OPEN && !g->ending) {
		if (x->publish) { /* it replaces what the connection had of the service */
			for (struct ginst **pp = &g->insts; *pp;) {
				if ((*pp)->svc_hash == x->svc_hash) {
					struct ginst *d = *pp;

					*pp = d->next;
					mem_free(d);
					g->insts_n--;
				} else {
					pp = &(*pp)->next;
				}
			}
		}
		while (x->insts) {
			struct ginst *n = x->insts;

			x->insts = n->next;
			grpc_insts_adopt(g, n);
		}
	}
	while (x->insts) {
		struct ginst *n = x->insts;

		x->insts = n->next;
		mem_free(n);
	}
	x->used = false;
	g->waits_n--;
	if (c->state != C_OPEN || x->stream == 0)
		return;
	if (err) {
		grpc_answer_fail(w, idx, x->stream, x->type, x->rid,
		                 err == -ERR_UNAVAILABLE || err == -ERR_BUSY ? 503 : 400,
		                 err_str(err));
	} else {
		struct buf *b = grpc_body(w);
		const char *t = x->op_type;

		if (grpc_put_head(b, x->rid) &&
		    (t == NULL ||
		     (grpc_put(b, ",\"type\":\"") && grpc_put(b, t) && grpc_put(b, "\""))) &&
		    grpc_put(b, "}"))
			grpc_answer(w, idx, x->stream, x->type);
	}
	pump(w, idx);
}

/* ---- pushes ---- */

uint64_t grpc_push(struct worker *w, uint32_t idx, const struct store_svc_key *k)
{
	struct buf *b = &w->grpc->body;
	struct gconn *g = conn_at(w, idx)->grpc;
	char rid[24];
	uint64_t id;
	bool ok;
	int rc;

	if (g == NULL || g->bi == 0 || conn_at(w, idx)->state != C_OPEN)
		return 0;
	buf_clear(b);
	id = ++g->next_rid;
	snprintf(rid, sizeof(rid), "%llu", (unsigned long long)id);
	ok = grpc_put(b, "{\"headers\":{},\"requestId\":") &&
	     json_put_str(b, rid, strlen(rid), NACOS_BODY_MAX) &&
	     grpc_put(b, ",\"module\":\"naming\",\"namespace\":") && nacos_put_str(b, k->ns) &&
	     grpc_put(b, ",\"serviceName\":") && nacos_put_str(b, k->service) &&
	     grpc_put(b, ",\"groupName\":") && nacos_put_str(b, k->group) &&
	     grpc_put(b, ",\"serviceInfo\":");
	epoch_enter(w->rec);
	rc = ok ? nacos_render_service(w, k, (struct store_str){ "", 0 }, false, true, b, NULL)
	        : -ERR_NOMEM;
	epoch_exit(w->rec);
	if (rc < 0 || !grpc_put(b, "}"))
		return 0;
	if (send_body(w, idx, g->bi, "NotifySubscriberRequest", false) < 0)
		return 0;
	WSTAT_INC(w, grpc_pushes);
	return id;
}

/* ---- timers ---- */

/*
 * Whether this node moves its gRPC clients now: it has refused writes (no
 * quorum, or it left the cluster) for --peer-down, so their renewals are
 * refused too and their instances would expire at their owners while the
 * connections look healthy. A binary or HTTP client retries its beats on
 * another node by itself; a Nacos 2.x client stays on its connection until
 * told, so it is told: ConnectResetRequest, then the connection closes
 * (GRPC_MOVE_CLOSE_MS later, time for a Java client to switch first; the
 * Rust SDK ignores the request and reconnects when the connection goes).
 * Only connections at least --grpc-move-after old move: a client that
 * lands on this node again is not bounced around faster than that.
 */
static bool moving_now(struct worker *w, struct grpc_worker *gw)
{
	bool refusing = worker_clustered(w) && !peer_writable(w->srv->peer);

	if (!refusing) {
		gw->refusing_ms = 0;
		return false;
	}
	if (gw->refusing_ms == 0)
		gw->refusing_ms = w->now_ms;
	return w->now_ms - gw->refusing_ms >= (int64_t)w->srv->cfg.peer_down_ms;
}

/* Asks g's client to move (true), or closes it once it was asked long enough ago. */
static bool move_conn(struct worker *w, struct gconn *g, bool moving)
{
	const struct server_config *cfg = &w->srv->cfg;

	if (g->moving_ms) {
		if (w->now_ms - g->moving_ms >= GRPC_MOVE_CLOSE_MS) {
			h2_goaway(&g->h2);
			pump(w, g->idx);
			conn_close_later(w, g->idx);
			return true;
		}
		return false;
	}
	if (!moving || !g->setup || w->now_ms - g->since_ms < (int64_t)cfg->grpc_move_after_ms)
		return false;
	WSTAT_INC(w, grpc_moved);
	log_debug("gRPC connection %s: this node takes no writes, asked to move", g->id);
	g->moving_ms = w->now_ms;
	/* No server named: the client picks another from its list. */
	(void)server_request(w, g->idx, "ConnectResetRequest", ",\"module\":\"internal\"");
	/* Sending it failed and closed the connection: nothing more for it. */
	return conn_at(w, g->idx)->grpc != g || conn_at(w, g->idx)->state != C_OPEN;
}

void grpc_step(struct worker *w)
{
	struct grpc_worker *gw = w->grpc;
	const struct server_config *cfg = &w->srv->cfg;
	struct gconn *g, *next;
	bool moving;

	if (gw == NULL || w->now_ms - gw->last_step_ms < GRPC_STEP_MS)
		return;
	gw->last_step_ms = w->now_ms;
	moving = moving_now(w, gw);
	for (g = gw->list; g; g = next) {
		uint32_t idx = g->idx;
		struct conn *c = conn_at(w, idx);

		next = g->next; /* an ejection below frees nothing yet: the slot is closing */
		if (c->state != C_OPEN)
			continue;
		if (move_conn(w, g, moving))
			continue;
		if (g->insts && w->now_ms >= g->renew_ms) {
			g->renew_every_ms = renew_every(w, g); /* back up when instances went */
			g->renew_ms = w->now_ms + g->renew_every_ms;
			insts_send(w, idx, g, OP_RENEW, GW_RENEW);
		}
		if (g->detect_ms && w->now_ms - g->detect_ms >= cfg->grpc_detect_timeout_ms) {
			WSTAT_INC(w, grpc_ejected);
			log_debug("gRPC connection %s: silent to a detection, ejected", g->id);
			conn_close_later(w, idx);
			continue;
		}
		if (g->setup && g->detect_ms == 0 &&
		    w->now_ms - g->active_ms >= cfg->grpc_detect_idle_ms) {
			uint64_t id = server_request(w, idx, "ClientDetectionRequest",
			                             ",\"module\":\"internal\"");

			if (c->grpc != g || c->state != C_OPEN)
				continue; /* sending it failed and closed the connection */
			g->detect_id = id;
			g->detect_ms = w->now_ms; /* also when it could not be sent: then ejected */
		}
		subs_grpc_retry(w, c, cfg->grpc_push_timeout_ms);
		pump(w, idx); /* a no-op when a push closed the connection */
	}
}

void grpc_stop(struct worker *w)
{
	struct grpc_worker *gw = w->grpc;

	if (gw == NULL)
		return;
	/*
	 * GOAWAY, and the connections' instances deregistered now, while the
	 * loop still runs to finish those writes (the workers drain before
	 * they stop; input is no longer read, so nothing registers again).
	 */
	for (struct gconn *g = gw->list; g; g = g->next)
		if (conn_at(w, g->idx)->state == C_OPEN) {
			pending_take(g);
			insts_send(w, g->idx, g, OP_RELEASE, GW_DROP);
			while (g->insts) {
				struct ginst *x = g->insts;

				g->insts = x->next;
				mem_free(x);
			}
			g->insts_n = 0;
			h2_goaway(&g->h2);
			pump(w, g->idx);
		}
}
