/*
 * gload.c - distrobench's --proto grpc: a load connection as a Nacos 2.x
 * client (docs/nacos.md "Nacos 2.x clients").
 *
 * Each load connection holds an nghttp2 client session used through its
 * memory API, as the server's src/grpc/h2.c is: the bytes a receive
 * completion brings are fed to nghttp2_session_mem_recv, and what the
 * session has to send is taken with nghttp2_session_mem_send into the
 * connection's out buffer, which loop.c sends with the binary protocol's
 * frames' machinery (one send per connection per turn, multishot receives
 * into the provided buffer ring). So the gRPC mode costs the client what
 * HTTP/2 and the JSON cost, no extra system calls, and the same loop, slots,
 * phases, histograms and report serve both protocols.
 *
 * A connection is set up as the Rust SDK sets it up: the bi-stream
 * (/BiRequestStream/requestBiStream) opened with a ConnectionSetupRequest,
 * then a unary ServerCheckRequest; the node handles one connection's
 * frames in order, so when the ServerCheck is answered the setup before it
 * has been handled, and the connection is ready (set-up phase, untimed).
 * Every call of the workload is then one unary stream on /Request/request
 * taking one slot (its request id is the slot; the stream's user data
 * points at the slot's struct gstream): InstanceRequest registerInstance
 * (register), ServiceQueryRequest (list), SubscribeServiceRequest
 * (subscribe's subscriptions). Latency runs from encoding the call to the
 * close of its stream, as for a binary frame. An answer counts only with
 * grpc-status 0, the response type expected and resultCode 200; a query's
 * serviceInfo must hold exactly the instances the service has.
 *
 * The node's requests come on the bi-stream: every NotifySubscriberRequest
 * is acknowledged with a NotifySubscriberResponse carrying its requestId
 * (an unacknowledged push is sent again after 5 s), and shows each
 * subscription of that service on this connection the probe's weight, i.e.
 * the number of the newest change it has seen (loop_sub_seen). The node
 * keeps one subscription per connection and service: several subscribers
 * of one service on one connection are that subscription's listeners, and
 * each counts the one push. ClientDetectionRequest is answered too.
 *
 * Bounds: a connection's calls in flight are its slots (--pipeline, at most
 * ARGS_GRPC_STREAMS, under the node's 128 streams); an answer or a push is
 * at most GLOAD_MSG_MAX bytes (the node's --grpc-msg-max default) and its
 * JSON at most loop->toks_n tokens (sized for --list-size hosts); the
 * session's output joins the out buffer under CONN_BUF_BYTES_MAX. Anything
 * beyond is an error of the call, or of the connection, never a crash.
 */
#include "distrobench/loop_internal.h"

#include "nacos/json.h"

#include <nghttp2/nghttp2.h>

#define GLOAD_MSG_MAX       (4u << 20) /* the node's --grpc-msg-max default */
#define GLOAD_WINDOW        (1 << 24)  /* our receive window: the node never waits for us */
#define GLOAD_TOKS_BASE     64u
#define GLOAD_TOKS_PER_HOST 48u /* a host of serviceInfo without metadata takes ~30 */
#define GLOAD_JSON_MAX      1024u

struct gstream {
	struct buf out; /* the request (unary) or messages still to send (bi) */
	struct buf in;  /* DATA received */
	int32_t id;
	int grpc_status; /* -1: none seen */
	bool bi;
};

struct gconn {
	nghttp2_session *s;
	struct loop *l;
	struct conn *c;
	struct gstream *st; /* one per slot */
	struct gstream bi;
	uint32_t acks;
};

/* ---- the session's callbacks ---- */

static ssize_t read_out(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                        nghttp2_data_source *src, void *user)
{
	struct gstream *st = src->ptr;
	size_t n = buf_used(&st->out);

	(void)s;
	(void)id;
	(void)user;
	if (n > len)
		n = len;
	memcpy(buf, st->out.p + st->out.off, n);
	buf_consume(&st->out, n);
	if (buf_used(&st->out) == 0) {
		if (!st->bi)
			*flags |= NGHTTP2_DATA_FLAG_EOF; /* a unary call half-closes */
		else if (n == 0)
			return NGHTTP2_ERR_DEFERRED; /* resumed when a message is queued */
	}
	return (ssize_t)n;
}

/* A gRPC message that is the whole of p[0, len): its Payload into *out. 0 or -1. */
static int one_message(struct loop *l, const uint8_t *p, size_t len, struct payload *out)
{
	uint32_t ml;

	if (len < 5 || p[0] != 0)
		return -1;
	ml = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
	if (len != 5 + (size_t)ml)
		return -1;
	return payload_decode(&l->arena, p + 5, ml, out) == 0 ? 0 : -1;
}

static bool str_is(struct store_str s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/* Parses the Payload's JSON into d. 0 or -1. */
static int parse_json(struct loop *l, const struct payload *pl, struct json_doc *d)
{
	return json_parse(d, pl->body.p, pl->body.len, l->toks, l->toks_n) == 0 &&
	                       d->t[0].type == JSMN_OBJECT
	               ? 0
	               : -1;
}

/*
 * The hosts of obj's serviceInfo: their count into *n and, when probe is
 * not NULL, the probe's weight in thousandths into *w (UINT32_MAX when it
 * is not listed). 0, or -1 when there is no hosts array.
 */
static int hosts_scan(const struct json_doc *d, int obj, const struct addr *probe, uint32_t *n,
                      uint32_t *w)
{
	int si = json_obj_get(d, obj, "serviceInfo"), h, e;
	char want[INET6_ADDRSTRLEN], ip[INET6_ADDRSTRLEN];

	h = si < 0 ? -1 : json_obj_get(d, si, "hosts");
	if (h < 0 || d->t[h].type != JSMN_ARRAY)
		return -1;
	*n = (uint32_t)d->t[h].size;
	if (probe == NULL)
		return 0;
	*w = UINT32_MAX;
	addr_format(probe, want, sizeof(want));
	e = h + 1;
	for (int k = 0; k < d->t[h].size; k++, e = json_next(d, e)) {
		int ti = json_obj_get(d, e, "ip"), tp = json_obj_get(d, e, "port"),
		    tw = json_obj_get(d, e, "weight");
		int64_t port;
		double weight;
		int len;

		if (ti < 0 || tp < 0 || tw < 0)
			continue;
		len = json_str(d, ti, ip, sizeof(ip) - 1);
		if (len < 0)
			continue;
		ip[len] = '\0';
		if (strcmp(ip, want) != 0 || json_int(d, tp, 0, 65535, &port) < 0 ||
		    port != probe->port || json_double(d, tw, &weight) < 0 || weight < 0 ||
		    weight * 1000.0 > (double)SEQ_MAX)
			continue;
		*w = (uint32_t)(weight * 1000.0 + 0.5);
	}
	return 0;
}

/* resultCode 200 in d's top object. */
static bool result_ok(const struct json_doc *d)
{
	int t = json_obj_get(d, 0, "resultCode");
	int64_t v;

	return t >= 0 && json_int(d, t, 0, 999, &v) == 0 && v == 200;
}

/*
 * Checks the answer of slot s's call: 0, or the error code. A list adds
 * its hosts to a->list_views; a subscription's probe weight goes to *w.
 */
static int check_answer(struct loop *l, struct conn *c, const struct slot *s,
                        const struct gstream *st, uint32_t code, struct bench_stats *a, uint32_t *w)
{
	static const char *const want[] = {
		[SK_HELLO] = "ServerCheckResponse", [SK_SUB] = "SubscribeServiceResponse"
	};
	struct payload pl;
	struct json_doc d;
	struct addr probe;
	uint32_t n, expect;
	const char *type;

	if (code != NGHTTP2_NO_ERROR || st->grpc_status != 0)
		return REPORT_E_GRPC;
	if (one_message(l, st->in.p + st->in.off, buf_used(&st->in), &pl) < 0 ||
	    parse_json(l, &pl, &d) < 0)
		return REPORT_E_ANSWER;
	type = s->kind == SK_TIMED
	               ? (s->op == OP_LIST ? "QueryServiceResponse" : "InstanceResponse")
	               : want[s->kind];
	if (!str_is(pl.type, type) || !result_ok(&d))
		return REPORT_E_GRPC;
	if (s->kind == SK_SUB) {
		plan_addr(c->subs[s->first].service * l->plan->block, &probe);
		return hosts_scan(&d, 0, &probe, &n, w) < 0 ? REPORT_E_ANSWER : 0;
	}
	if (s->op != OP_LIST)
		return 0;
	if (hosts_scan(&d, 0, NULL, &n, NULL) < 0)
		return REPORT_E_ANSWER;
	a->list_views += n;
	expect = loop_list_expected(l, s->first);
	return expect != UINT32_MAX && n != expect ? REPORT_E_LIST : 0;
}

/* Stream st of slot s closed: the call is answered (or failed), the slot free. */
static void call_done(struct gconn *g, struct slot *s, struct gstream *st, uint32_t code)
{
	struct loop *l = g->l;
	struct conn *c = g->c;
	struct bench_stats *a = loop_slot_acc(l, c, s);
	uint32_t w = UINT32_MAX;
	int err = check_answer(l, c, s, st, code, a, &w);

	switch (s->kind) {
	case SK_HELLO:
		if (err)
			__atomic_fetch_add(&l->sh->setup_errors, 1, __ATOMIC_RELAXED);
		else
			c->g_ready = true;
		loop_slot_free(l, c, s);
		break;
	case SK_SUB:
		if (err) {
			__atomic_fetch_add(&l->sh->setup_errors, 1, __ATOMIC_RELAXED);
		} else {
			c->subs[s->first].last = w == UINT32_MAX ? 0 : w;
			__atomic_fetch_add(&l->sh->subscriptions, 1, __ATOMIC_RELAXED);
		}
		c->subs_answered++;
		loop_slot_free(l, c, s);
		break;
	default:
		if (err)
			report_error(a, err, s->items);
		loop_slot_close(l, c, s, a, err ? s->items : 0);
		break;
	}
	buf_clear(&st->in);
	buf_clear(&st->out);
	st->id = 0;
	loop_check_done(l, c);
	loop_make_ready(l, c);
}

/* The service a push names ("<prefix>-l<size>-<s>"), or UINT32_MAX if none of ours. */
static uint32_t service_named(const struct loop *l, const char *name, size_t len)
{
	const char *dash = memrchr(name, '-', len);
	struct store_svc_key k;
	uint64_t s = 0;

	if (dash == NULL || dash + 1 == name + len)
		return UINT32_MAX;
	for (const char *p = dash + 1; p < name + len; p++) {
		if (*p < '0' || *p > '9' || s >= l->plan->services)
			return UINT32_MAX;
		s = s * 10 + (uint64_t)(*p - '0');
	}
	if (s >= l->plan->services)
		return UINT32_MAX;
	plan_svc_key(l->plan, (uint32_t)s, &k);
	if (k.service.len != len || memcmp(k.service.p, name, len) != 0)
		return UINT32_MAX;
	return (uint32_t)s;
}

/* Queues an answer to the node's request rid on the bi-stream. 0 or -1. */
static int bi_answer(struct gconn *g, const char *type, const char *rid)
{
	char json[GLOAD_JSON_MAX];
	int n = snprintf(
	        json, sizeof(json),
	        "{\"resultCode\":200,\"errorCode\":0,\"message\":null,\"requestId\":\"%s\","
	        "\"success\":true}",
	        rid);

	if (n < 0 || (size_t)n >= sizeof(json) ||
	    payload_encode(&g->bi.out, GLOAD_MSG_MAX, true, type, json, (size_t)n) < 0)
		return -1;
	/* Fails (harmlessly) when the stream's data is not deferred: it is being sent. */
	(void)nghttp2_session_resume_data(g->s, g->bi.id);
	return 0;
}

/* The requestId of the node's request (decimal, or at least safe to echo raw). */
static int request_id(const struct json_doc *d, char *out, size_t cap)
{
	int t = json_obj_get(d, 0, "requestId"), n;

	n = t < 0 ? -1 : json_str(d, t, out, cap - 1);
	if (n <= 0)
		return -1;
	out[n] = '\0';
	for (int i = 0; i < n; i++)
		if (!((out[i] >= '0' && out[i] <= '9') || (out[i] >= 'a' && out[i] <= 'z') ||
		      (out[i] >= 'A' && out[i] <= 'Z') || out[i] == '-' || out[i] == '_'))
			return -1;
	return 0;
}

/* A NotifySubscriberRequest: acknowledged, and seen by this connection's subscriptions. */
static int on_push(struct gconn *g, const struct json_doc *d)
{
	struct loop *l = g->l;
	struct conn *c = g->c;
	char rid[64], name[PLAN_NAME_MAX + 1];
	int t = json_obj_get(d, 0, "serviceName"), len;
	uint32_t svc, n, w;
	struct addr probe;

	if (request_id(d, rid, sizeof(rid)) < 0 ||
	    bi_answer(g, "NotifySubscriberResponse", rid) < 0)
		return -1;
	len = t < 0 ? -1 : json_str(d, t, name, sizeof(name));
	svc = len < 0 ? UINT32_MAX : service_named(l, name, (size_t)len);
	if (svc == UINT32_MAX || l->plan->block == 0)
		return -1;
	plan_addr(svc * l->plan->block, &probe);
	if (hosts_scan(d, 0, &probe, &n, &w) < 0)
		return -1;
	loop_acc(l)->pushes++;
	loop_acc(l)->list_views += n;
	for (uint32_t i = 0; i < c->subs_n; i++)
		if (c->subs[i].service == svc)
			loop_sub_seen(l, &c->subs[i], w);
	return 0;
}

/* One message the node sent on the bi-stream. */
static void bi_message(struct gconn *g, const uint8_t *p, size_t len)
{
	struct loop *l = g->l;
	struct payload pl;
	struct json_doc d;
	char rid[64];
	int rc = -1;

	if (payload_decode(&l->arena, p, len, &pl) == 0 && parse_json(l, &pl, &d) == 0) {
		if (str_is(pl.type, "NotifySubscriberRequest"))
			rc = on_push(g, &d);
		else if (str_is(pl.type, "ClientDetectionRequest"))
			rc = request_id(&d, rid, sizeof(rid)) == 0
			             ? bi_answer(g, "ClientDetectionResponse", rid)
			             : -1;
		else
			rc = 0; /* SetupAckRequest comes only when asked for; others need nothing */
	}
	if (rc < 0) {
		report_error(loop_acc(l), REPORT_E_ANSWER, 1);
		l->iv_errors++;
	}
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *user)
{
	struct gconn *g = user;
	struct gstream *st = nghttp2_session_get_stream_user_data(s, id);

	(void)flags;
	if (st == NULL || g->c->dead)
		return 0;
	if (!buf_append(&st->in, data, len, 5 + (size_t)GLOAD_MSG_MAX)) {
		if (!st->bi) /* the call fails at its close: not one whole message */
			return nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id,
			                                 NGHTTP2_CANCEL) == 0
			               ? 0
			               : NGHTTP2_ERR_CALLBACK_FAILURE;
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	while (st->bi && buf_used(&st->in) >= 5) {
		const uint8_t *p = st->in.p + st->in.off;
		uint32_t ml =
		        (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];

		if (p[0] != 0 || ml > GLOAD_MSG_MAX)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		if (buf_used(&st->in) < 5 + (size_t)ml)
			break;
		bi_message(g, p + 5, ml);
		buf_consume(&st->in, 5 + (size_t)ml);
	}
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *val, size_t vl, uint8_t flags, void *user)
{
	struct gstream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);

	(void)flags;
	(void)user;
	if (st != NULL && nl == 11 && memcmp(name, "grpc-status", 11) == 0) {
		st->grpc_status = 0;
		for (size_t i = 0; i < vl; i++) {
			if (val[i] < '0' || val[i] > '9' || st->grpc_status > 1000) {
				st->grpc_status = 1000; /* not a status */
				break;
			}
			st->grpc_status = st->grpc_status * 10 + (val[i] - '0');
		}
	}
	return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
	struct gconn *g = user;
	struct gstream *st = nghttp2_session_get_stream_user_data(s, id);
	struct slot *sl;

	if (st == NULL || g->c->dead)
		return 0;
	if (st->bi) { /* the node ended the bi-stream: nothing can be pushed any more */
		loop_conn_fail(g->l, g->c, REPORT_E_CONN);
		return 0;
	}
	sl = &g->c->slots[st - g->st];
	if (sl->busy)
		call_done(g, sl, st, code);
	return 0;
}

/* ---- calls ---- */

static int submit(struct gconn *g, const char *path, struct gstream *st)
{
	nghttp2_nv nv[] = {
		{ (uint8_t *)":method", (uint8_t *)"POST", 7, 4, NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)":scheme", (uint8_t *)"http", 7, 4, NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)":authority", (uint8_t *)"distrobench", 10, 11, NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)":path", (uint8_t *)path, 5, strlen(path), NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16,
		  NGHTTP2_NV_FLAG_NONE },
		{ (uint8_t *)"te", (uint8_t *)"trailers", 2, 8, NGHTTP2_NV_FLAG_NONE },
	};
	nghttp2_data_provider dp = { .source.ptr = st, .read_callback = read_out };
	int32_t id = nghttp2_submit_request(g->s, NULL, nv, sizeof(nv) / sizeof(nv[0]), &dp, st);

	if (id < 0)
		return -ERR_INVAL; /* e.g. after the node's GOAWAY */
	st->id = id;
	return 0;
}

/* A unary call of type with json, in a new slot (filled by the caller). 0 or an error. */
static int call(struct loop *l, struct conn *c, const char *type, const char *json, size_t len,
                struct slot **out)
{
	struct gconn *g = c->g;
	uint32_t id;
	struct slot *s = loop_slot_take(l, c, &id);
	struct gstream *st = &g->st[s - c->slots];
	int rc;

	buf_clear(&st->in);
	buf_clear(&st->out);
	st->grpc_status = -1;
	st->bi = false;
	rc = payload_encode(&st->out, 5 + (size_t)GLOAD_MSG_MAX, true, type, json, len);
	if (rc == 0)
		rc = submit(g, "/Request/request", st);
	if (rc < 0) {
		s->kind = SK_TEARDOWN; /* counted by the caller's connection failure */
		loop_slot_free(l, c, s);
		return rc;
	}
	*out = s;
	return 0;
}

/* "\"namespace\":...,\"serviceName\":...,\"groupName\":...": the naming request's head. */
static int naming_head(const struct loop *l, uint32_t service, uint32_t rid, char *out, size_t cap)
{
	struct store_svc_key k;

	plan_svc_key(l->plan, service, &k);
	return snprintf(out, cap,
	                "{\"headers\":{},\"requestId\":\"%u\",\"namespace\":\"public\","
	                "\"serviceName\":\"%.*s\",\"groupName\":\"DEFAULT_GROUP\","
	                "\"module\":\"naming\",",
	                rid, (int)k.service.len, k.service.p);
}

int gload_register(struct loop *l, struct conn *c, uint32_t i, uint32_t weight_milli,
                   uint64_t start)
{
	char json[GLOAD_JSON_MAX], ip[INET6_ADDRSTRLEN];
	uint32_t svc = plan_service_of(l->plan, i);
	struct addr a;
	struct slot *s;
	int n, rc;

	plan_addr(i, &a);
	addr_format(&a, ip, sizeof(ip));
	n = naming_head(l, svc, i, json, sizeof(json));
	n += snprintf(json + n, sizeof(json) - (size_t)n,
	              "\"type\":\"registerInstance\",\"instance\":{\"ip\":\"%s\",\"port\":%u,"
	              "\"weight\":%u.%03u,\"healthy\":true,\"enabled\":true,\"ephemeral\":true,"
	              "\"clusterName\":null,\"metadata\":{}}}",
	              ip, a.port, weight_milli / 1000, weight_milli % 1000);
	if ((size_t)n >= sizeof(json))
		abort(); /* names are at most PLAN_NAME_MAX */
	rc = call(l, c, "InstanceRequest", json, (size_t)n, &s);
	if (rc < 0)
		return rc;
	s->start_ns = start;
	s->first = i;
	s->items = 1;
	s->op = OP_REGISTER;
	s->cls = CLS_REGISTER;
	s->kind = SK_TIMED;
	return 0;
}

int gload_query(struct loop *l, struct conn *c, uint32_t service, uint64_t start)
{
	char json[GLOAD_JSON_MAX];
	struct slot *s;
	int n = naming_head(l, service, service, json, sizeof(json)), rc;

	n += snprintf(json + n, sizeof(json) - (size_t)n,
	              "\"cluster\":\"\",\"healthyOnly\":false,\"udpPort\":0}");
	if ((size_t)n >= sizeof(json))
		abort();
	rc = call(l, c, "ServiceQueryRequest", json, (size_t)n, &s);
	if (rc < 0)
		return rc;
	s->start_ns = start;
	s->first = service;
	s->items = 1;
	s->op = OP_LIST;
	s->cls = CLS_LIST;
	s->kind = SK_TIMED;
	return 0;
}

int gload_subscribe(struct loop *l, struct conn *c, uint32_t sub)
{
	char json[GLOAD_JSON_MAX];
	struct slot *s;
	int n = naming_head(l, c->subs[sub].service, sub, json, sizeof(json)), rc;

	n += snprintf(json + n, sizeof(json) - (size_t)n, "\"subscribe\":true,\"clusters\":\"\"}");
	if ((size_t)n >= sizeof(json))
		abort();
	rc = call(l, c, "SubscribeServiceRequest", json, (size_t)n, &s);
	if (rc < 0)
		return rc;
	s->start_ns = l->now;
	s->first = sub;
	s->items = 1;
	s->op = OP_SUBSCRIBE;
	s->cls = CLS_LIST;
	s->kind = SK_SUB;
	return 0;
}

int gload_hello(struct loop *l, struct conn *c)
{
	static const char setup[] = "{\"clientVersion\":\"distrobench\",\"tenant\":\"\","
	                            "\"labels\":{\"source\":\"sdk\",\"module\":\"naming\"},"
	                            "\"headers\":{},\"requestId\":\"0\"}";
	static const char check[] = "{\"headers\":{},\"requestId\":\"1\"}";
	struct gconn *g = c->g;
	struct slot *s;
	int rc;

	g->bi.bi = true;
	g->bi.grpc_status = -1;
	rc = payload_encode(&g->bi.out, GLOAD_MSG_MAX, true, "ConnectionSetupRequest", setup,
	                    sizeof(setup) - 1);
	if (rc == 0)
		rc = submit(g, "/BiRequestStream/requestBiStream", &g->bi);
	if (rc == 0)
		rc = call(l, c, "ServerCheckRequest", check, sizeof(check) - 1, &s);
	if (rc < 0)
		return rc;
	s->start_ns = l->now;
	s->items = 1;
	s->kind = SK_HELLO;
	c->g_hello_sent = true;
	return 0;
}

/* ---- bytes in and out ---- */

void gload_flush(struct loop *l, struct conn *c)
{
	for (;;) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(c->g->s, &data);

		if (n == 0)
			return;
		if (n < 0 || !buf_append(&c->out, data, (size_t)n, CONN_BUF_BYTES_MAX)) {
			loop_conn_fail(l, c, REPORT_E_CONN);
			return;
		}
	}
}

void gload_feed(struct loop *l, struct conn *c, const uint8_t *data, uint32_t len)
{
	ssize_t n = nghttp2_session_mem_recv(c->g->s, data, len);

	if (n < 0 && !c->dead) {
		report_error(loop_acc(l), REPORT_E_ANSWER, 1);
		l->iv_errors++;
		loop_conn_fail(l, c, REPORT_E_ANSWER);
	}
}

/* ---- set-up ---- */

int gload_conn_init(struct loop *l, struct conn *c)
{
	nghttp2_settings_entry set[] = { { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		                         { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, GLOAD_WINDOW } };
	nghttp2_session_callbacks *cb;
	struct gconn *g = mem_calloc(1, sizeof(*g));
	int rc = -ERR_NOMEM;

	if (g == NULL)
		return -ERR_NOMEM;
	c->g = g;
	g->l = l;
	g->c = c;
	g->st = mem_calloc(c->slots_n, sizeof(g->st[0]));
	if (g->st == NULL || nghttp2_session_callbacks_new(&cb) != 0)
		return -ERR_NOMEM;
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
	if (nghttp2_session_client_new(&g->s, cb, g) == 0 &&
	    nghttp2_submit_settings(g->s, NGHTTP2_FLAG_NONE, set, sizeof(set) / sizeof(set[0])) ==
	            0 &&
	    nghttp2_session_set_local_window_size(g->s, NGHTTP2_FLAG_NONE, 0, GLOAD_WINDOW) == 0)
		rc = 0;
	nghttp2_session_callbacks_del(cb);
	return rc;
}

void gload_conn_free(struct conn *c)
{
	struct gconn *g = c->g;

	if (g == NULL)
		return;
	if (g->s)
		nghttp2_session_del(g->s);
	for (uint32_t i = 0; g->st && i < c->slots_n; i++) {
		buf_free(&g->st[i].in);
		buf_free(&g->st[i].out);
	}
	buf_free(&g->bi.in);
	buf_free(&g->bi.out);
	mem_free(g->st);
	mem_free(g);
	c->g = NULL;
}

int gload_loop_init(struct loop *l)
{
	uint32_t hosts = l->plan->block ? l->plan->block : 1;

	l->toks_n = GLOAD_TOKS_BASE + GLOAD_TOKS_PER_HOST * hosts;
	l->toks = mem_alloc(sizeof(jsmntok_t) * l->toks_n);
	if (l->toks == NULL)
		return -ERR_NOMEM;
	/* protobuf-c's structs and strings: twice the largest message, as the node's. */
	return payload_arena_init(&l->arena, 2 * (size_t)GLOAD_MSG_MAX + 4096);
}

void gload_loop_free(struct loop *l)
{
	payload_arena_free(&l->arena);
	mem_free(l->toks);
	l->toks = NULL;
}
