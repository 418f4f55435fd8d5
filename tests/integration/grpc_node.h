/*
 * grpc_node.h - the tests' side of the Nacos gRPC port: a blocking HTTP/2
 * client on nghttp2's client session (prior knowledge, cleartext), gRPC
 * framing and the Payload envelope written and read by hand here (not
 * with the server's protobuf-c codec, so a wrong field number on the
 * server cannot cancel out), JSON answers read with jsmn (nacos_node.h).
 *
 * One struct gcli is one TCP connection. Unary calls (gcli_call) open a
 * stream, send one message and wait, bounded, for the stream to end; the
 * bi-stream (gcli_bi_open, gcli_bi_send) keeps what the server sends in a
 * queue that gcli_bi_next reads with a deadline. Everything asserts.
 */
#ifndef DISTRO_TESTS_GRPC_NODE_H
#define DISTRO_TESTS_GRPC_NODE_H

#include "nacos_node.h"

#include <arpa/inet.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <sys/socket.h>

#define GCLI_STREAMS 64
#define GCLI_MSG_MAX (8u << 20)
#define GCLI_QUEUE   64

/* One message of Nacos: the type and the JSON body. */
struct gmsg {
	char type[128];
	char *json; /* NUL-terminated, malloc'd */
	size_t len;
};

struct gstream {
	int32_t id;
	bool closed;
	bool reaped; /* its answer was read: the slot may be reused */
	bool bi;
	int grpc_status; /* -1: none seen */
	char grpc_message[256];
	uint32_t rst_code;
	uint8_t *in; /* received DATA */
	size_t in_len, in_cap;
	uint8_t *out; /* to send */
	size_t out_len, out_off;
	bool out_end;                  /* END_STREAM after out */
	struct gmsg queue[GCLI_QUEUE]; /* bi: whole messages received */
	int q_head, q_tail;
};

struct gcli {
	int fd;
	bool eof;
	nghttp2_session *s;
	struct gstream st[GCLI_STREAMS];
	int nst;
	bool goaway;
};

/* ---- the Payload, by hand: Payload{metadata=2{type=3}, body=3{value=2}} ---- */

static inline size_t pb_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	do {
		p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return n;
}

/* The gRPC message (5-byte prefix + Payload) for type and json, into out (malloc'd). */
static inline size_t gmsg_encode(const char *type, const char *json, size_t jlen, uint8_t **out)
{
	size_t tl = strlen(type), md = 1 + 10 + tl, any = 1 + 10 + jlen,
	       cap = 5 + 2 * 11 + md + any;
	uint8_t *p = malloc(cap), mdb[160], anyh[16];
	size_t n = 5, mdl = 0, ahl = 0;

	cr_assert(p && tl < 128);
	mdb[mdl++] = 3 << 3 | 2;
	mdl += pb_varint(mdb + mdl, tl);
	memcpy(mdb + mdl, type, tl);
	mdl += tl;
	p[n++] = 2 << 3 | 2;
	n += pb_varint(p + n, mdl);
	memcpy(p + n, mdb, mdl);
	n += mdl;
	anyh[ahl++] = 2 << 3 | 2;
	ahl += pb_varint(anyh + ahl, jlen);
	p[n++] = 3 << 3 | 2;
	n += pb_varint(p + n, ahl + jlen);
	memcpy(p + n, anyh, ahl);
	n += ahl;
	memcpy(p + n, json, jlen);
	n += jlen;
	p[0] = 0;
	p[1] = (uint8_t)((n - 5) >> 24);
	p[2] = (uint8_t)((n - 5) >> 16);
	p[3] = (uint8_t)((n - 5) >> 8);
	p[4] = (uint8_t)(n - 5);
	*out = p;
	return n;
}

static inline bool pb_read_varint(const uint8_t *p, size_t len, size_t *off, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; *off < len && shift < 64; shift += 7) {
		uint8_t b = p[(*off)++];

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

/* Finds length-delimited field `field` in p[0, len): its bytes. */
static inline bool pb_field(const uint8_t *p, size_t len, uint32_t field, const uint8_t **v,
                            size_t *vlen)
{
	size_t off = 0;
	bool found = false;

	while (off < len) {
		uint64_t key, l;

		cr_assert(pb_read_varint(p, len, &off, &key), "bad protobuf key");
		if ((key & 7) == 2) {
			cr_assert(pb_read_varint(p, len, &off, &l) && l <= len - off, "bad length");
			if ((key >> 3) == field) {
				*v = p + off;
				*vlen = l;
				found = true;
			}
			off += l;
		} else if ((key & 7) == 0) {
			cr_assert(pb_read_varint(p, len, &off, &l));
		} else {
			cr_assert_fail("unexpected wire type %d", (int)(key & 7));
		}
	}
	return found;
}

static inline void gmsg_decode(const uint8_t *p, size_t len, struct gmsg *m)
{
	const uint8_t *md, *t, *any, *val;
	size_t mdl, tl, anyl, vl;

	memset(m, 0, sizeof(*m));
	cr_assert(pb_field(p, len, 2, &md, &mdl), "Payload without metadata");
	cr_assert(pb_field(md, mdl, 3, &t, &tl) && tl < sizeof(m->type), "metadata without type");
	memcpy(m->type, t, tl);
	if (pb_field(p, len, 3, &any, &anyl) && pb_field(any, anyl, 2, &val, &vl)) {
		m->json = malloc(vl + 1);
		memcpy(m->json, val, vl);
		m->json[vl] = '\0';
		m->len = vl;
	} else {
		m->json = strdup("");
	}
}

static inline void gmsg_free(struct gmsg *m)
{
	free(m->json);
	m->json = NULL;
}

/* ---- the HTTP/2 client ---- */

static inline struct gstream *gcli_stream(struct gcli *c, int32_t id)
{
	for (int i = 0; i < c->nst; i++)
		if (c->st[i].id == id)
			return &c->st[i];
	return NULL;
}

static ssize_t gcli_send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags,
                            void *user)
{
	struct gcli *c = user;
	ssize_t n;

	(void)s;
	(void)flags;
	n = send(c->fd, data, len, MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return NGHTTP2_ERR_WOULDBLOCK;
	if (n < 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return n;
}

/* Whole gRPC messages of a bi-stream go to its queue. */
static inline void gcli_split(struct gstream *st)
{
	while (st->bi && st->in_len >= 5) {
		uint32_t ml = (uint32_t)st->in[1] << 24 | (uint32_t)st->in[2] << 16 |
		              (uint32_t)st->in[3] << 8 | st->in[4];

		if (st->in_len < 5 + (size_t)ml)
			return;
		cr_assert_lt((st->q_tail + 1) % GCLI_QUEUE != st->q_head ? 0 : 1, 1, "queue full");
		gmsg_decode(st->in + 5, ml, &st->queue[st->q_tail]);
		st->q_tail = (st->q_tail + 1) % GCLI_QUEUE;
		memmove(st->in, st->in + 5 + ml, st->in_len - 5 - ml);
		st->in_len -= 5 + ml;
	}
}

static int gcli_data_cb(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                        size_t len, void *user)
{
	struct gstream *st = gcli_stream(user, id);

	(void)s;
	(void)flags;
	if (st == NULL)
		return 0;
	if (st->in_len + len > st->in_cap) {
		st->in_cap = (st->in_len + len) * 2;
		st->in = realloc(st->in, st->in_cap);
		cr_assert(st->in);
	}
	memcpy(st->in + st->in_len, data, len);
	st->in_len += len;
	gcli_split(st);
	return 0;
}

static int gcli_header_cb(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                          size_t nl, const uint8_t *val, size_t vl, uint8_t flags, void *user)
{
	struct gstream *st = gcli_stream(user, f->hd.stream_id);

	(void)s;
	(void)flags;
	if (st == NULL)
		return 0;
	if (nl == 11 && memcmp(name, "grpc-status", 11) == 0)
		st->grpc_status = atoi((const char *)val); /* nghttp2 NUL-terminates values */
	if (nl == 12 && memcmp(name, "grpc-message", 12) == 0)
		snprintf(st->grpc_message, sizeof(st->grpc_message), "%.*s", (int)vl, val);
	return 0;
}

static int gcli_close_cb(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
	struct gstream *st = gcli_stream(user, id);

	(void)s;
	if (st) {
		st->closed = true;
		st->rst_code = code;
	}
	return 0;
}

static int gcli_frame_cb(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	(void)s;
	if (f->hd.type == NGHTTP2_GOAWAY)
		((struct gcli *)user)->goaway = true;
	return 0;
}

static inline void gcli_connect(struct gcli *c, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	nghttp2_session_callbacks *cb;
	nghttp2_settings_entry set[] = { { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24 } };
	int one = 1;

	memset(c, 0, sizeof(*c));
	cr_assert_gt(port, 0, "no gRPC port");
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(c->fd, 0);
	cr_assert_eq(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect: %s",
	             strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	cr_assert_eq(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_send_callback(cb, gcli_send_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, gcli_data_cb);
	nghttp2_session_callbacks_set_on_header_callback(cb, gcli_header_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, gcli_close_cb);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, gcli_frame_cb);
	cr_assert_eq(nghttp2_session_client_new(&c->s, cb, c), 0);
	nghttp2_session_callbacks_del(cb);
	cr_assert_eq(nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, set, 1), 0);
	cr_assert_eq(nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, 1 << 24), 0);
}

static inline void gcli_close(struct gcli *c)
{
	if (c->s)
		nghttp2_session_del(c->s);
	c->s = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	for (int i = 0; i < c->nst; i++) {
		free(c->st[i].in);
		free(c->st[i].out);
		while (c->st[i].q_head != c->st[i].q_tail) {
			gmsg_free(&c->st[i].queue[c->st[i].q_head]);
			c->st[i].q_head = (c->st[i].q_head + 1) % GCLI_QUEUE;
		}
	}
	c->nst = 0;
}

/* Sends what is due and reads for at most wait_ms (0: whatever is there). False at EOF. */
static inline bool gcli_io(struct gcli *c, int wait_ms)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	uint8_t buf[65536];
	ssize_t n;

	if (c->eof)
		return false;
	cr_assert_eq(nghttp2_session_send(c->s), 0, "client send");
	if (poll(&p, 1, wait_ms) <= 0)
		return true;
	n = recv(c->fd, buf, sizeof(buf), 0);
	if (n <= 0) {
		c->eof = true;
		return false;
	}
	if (nghttp2_session_mem_recv(c->s, buf, (size_t)n) < 0) {
		c->eof = true;
		return false;
	}
	(void)nghttp2_session_send(c->s);
	return true;
}

static ssize_t gcli_read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                              uint32_t *flags, nghttp2_data_source *src, void *user)
{
	struct gstream *st = src->ptr;
	size_t n = st->out_len - st->out_off;

	(void)s;
	(void)id;
	(void)user;
	if (n > len)
		n = len;
	memcpy(buf, st->out + st->out_off, n);
	st->out_off += n;
	if (st->out_off == st->out_len) {
		if (st->out_end)
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		else if (n == 0)
			return NGHTTP2_ERR_DEFERRED;
	}
	return (ssize_t)n;
}

/* Opens a stream on path with raw body bytes (the gRPC framing included); end: half-close. */
static inline struct gstream *gcli_open(struct gcli *c, const char *path, const uint8_t *body,
                                        size_t len, bool end)
{
	nghttp2_nv nv[] = {
		{ (uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0 },
		{ (uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0 },
		{ (uint8_t *)":authority", (uint8_t *)"127.0.0.1", 10, 9, 0 },
		{ (uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0 },
		{ (uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0 },
		{ (uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0 },
	};
	struct gstream *st;
	nghttp2_data_provider dp;
	int32_t id;

	st = NULL;
	for (int i = 0; i < c->nst && st == NULL; i++) /* a finished unary stream's slot */
		if (c->st[i].closed && !c->st[i].bi && c->st[i].reaped) {
			st = &c->st[i];
			free(st->in);
			free(st->out);
		}
	if (st == NULL) {
		cr_assert_lt(c->nst, GCLI_STREAMS);
		st = &c->st[c->nst++];
	}
	memset(st, 0, sizeof(*st));
	st->grpc_status = -1;
	st->out = malloc(len ? len : 1);
	if (len)
		memcpy(st->out, body, len);
	st->out_len = len;
	st->out_end = end;
	dp.source.ptr = st;
	dp.read_callback = gcli_read_body;
	id = nghttp2_submit_request(c->s, NULL, nv, 6, &dp, NULL);
	cr_assert_gt(id, 0);
	st->id = id;
	return st;
}

/* Runs the connection until st is closed (true) or ms pass / EOF (false). */
static inline bool gcli_wait_closed(struct gcli *c, struct gstream *st, int ms)
{
	for (int64_t end = now_ms() + ms; !st->closed && now_ms() < end;)
		if (!gcli_io(c, 20))
			return st->closed;
	return st->closed;
}

/*
 * A unary call: type + json on /Request/request; the answer's type and
 * JSON into *ans (ans->type "" when the stream ended without a message).
 * Returns the grpc-status.
 */
static inline int gcli_call(struct gcli *c, const char *type, const char *json, struct gmsg *ans)
{
	uint8_t *m;
	size_t n = gmsg_encode(type, json, strlen(json), &m);
	struct gstream *st = gcli_open(c, "/Request/request", m, n, true);

	free(m);
	cr_assert(gcli_wait_closed(c, st, 5000), "no answer to %s within 5 s", type);
	memset(ans, 0, sizeof(*ans));
	if (st->in_len >= 5) {
		uint32_t ml = (uint32_t)st->in[1] << 24 | (uint32_t)st->in[2] << 16 |
		              (uint32_t)st->in[3] << 8 | st->in[4];

		cr_assert_eq(st->in_len, 5 + (size_t)ml, "one whole message");
		gmsg_decode(st->in + 5, ml, ans);
	} else {
		ans->json = strdup("");
	}
	st->reaped = true;
	return st->grpc_status;
}

static inline struct gstream *gcli_bi_open(struct gcli *c)
{
	struct gstream *st = gcli_open(c, "/BiRequestStream/requestBiStream", NULL, 0, false);

	st->bi = true;
	return st;
}

static inline void gcli_bi_send(struct gcli *c, struct gstream *st, const char *type,
                                const char *json)
{
	uint8_t *m;
	size_t n = gmsg_encode(type, json, strlen(json), &m);

	memmove(st->out, st->out + st->out_off, st->out_len - st->out_off);
	st->out_len -= st->out_off;
	st->out_off = 0;
	st->out = realloc(st->out, st->out_len + n);
	memcpy(st->out + st->out_len, m, n);
	st->out_len += n;
	free(m);
	nghttp2_session_resume_data(c->s, st->id);
	(void)gcli_io(c, 0);
}

/* The next message the server sent on the bi-stream, within ms; false if none came. */
static inline bool gcli_bi_next(struct gcli *c, struct gstream *st, struct gmsg *m, int ms)
{
	for (int64_t end = now_ms() + ms; st->q_head == st->q_tail && now_ms() < end;)
		if (!gcli_io(c, 20))
			break;
	if (st->q_head == st->q_tail)
		return false;
	*m = st->queue[st->q_head];
	st->q_head = (st->q_head + 1) % GCLI_QUEUE;
	return true;
}

/* ---- JSON of the answers ---- */

/* Parses m's JSON into the static document and returns it (one alive at a time). */
static inline struct njson *gjson(const struct gmsg *m)
{
	static struct njson d;

	nj_parse(&d, m->json, m->len);
	return &d;
}

/* ---- the naming calls the tests share (test_grpc_lease.c, the cluster's) ---- */

/* The bi-stream, opened with ConnectionSetupRequest as an SDK's naming client does. */
static inline struct gstream *gcli_setup_stream(struct gcli *c)
{
	struct gstream *bi = gcli_bi_open(c);

	gcli_bi_send(c, bi, "ConnectionSetupRequest",
	             "{\"clientVersion\":\"test\",\"tenant\":\"\",\"labels\":{\"source\":\"sdk\","
	             "\"module\":\"naming\"},\"headers\":{},\"requestId\":\"2\"}");
	return bi;
}

/* ServerCheck, then the bi-stream with ConnectionSetupRequest: a registered connection. */
static inline struct gstream *gcli_setup(struct gcli *c, uint16_t port)
{
	struct gmsg a;

	gcli_connect(c, port);
	cr_assert_eq(gcli_call(c, "ServerCheckRequest", "{\"headers\":{},\"requestId\":\"1\"}", &a),
	             0);
	cr_assert_str_eq(a.type, "ServerCheckResponse", "%s", a.json);
	gmsg_free(&a);
	return gcli_setup_stream(c);
}

/* An InstanceRequest of type (registerInstance, deregisterInstance) on c; asserts success. */
static inline void gcli_instance(struct gcli *c, const char *svc, const char *ip, int port,
                                 const char *type)
{
	char j[1024];
	struct gmsg a;
	struct njson *d;

	snprintf(j, sizeof(j),
	         "{\"headers\":{},\"requestId\":\"r-%s-%d\",\"namespace\":\"\",\"serviceName\":"
	         "\"%s\",\"groupName\":\"DEFAULT_GROUP\",\"module\":\"naming\",\"type\":\"%s\","
	         "\"instance\":{\"ip\":\"%s\",\"port\":%d,\"weight\":1.0,\"healthy\":true,"
	         "\"enabled\":true,\"ephemeral\":true,\"clusterName\":\"c1\",\"metadata\":{}}}",
	         ip, port, svc, type, ip, port);
	cr_assert_eq(gcli_call(c, "InstanceRequest", j, &a), 0);
	cr_assert_str_eq(a.type, "InstanceResponse", "%s: %s", a.type, a.json);
	d = gjson(&a);
	cr_assert_str_eq(nj_s(d, 0, "resultCode"), "200", "%s", a.json);
	gmsg_free(&a);
}

/* How many hosts a ServiceQueryRequest on c finds for svc (default group). */
static inline int gcli_hosts(struct gcli *c, const char *svc)
{
	char q[512];
	struct gmsg a;
	struct njson *d;
	int si, hosts, n;

	snprintf(q, sizeof(q),
	         "{\"headers\":{},\"requestId\":\"q\",\"namespace\":\"public\",\"serviceName\":"
	         "\"%s\",\"groupName\":\"DEFAULT_GROUP\",\"module\":\"naming\",\"cluster\":\"\","
	         "\"healthyOnly\":false,\"udpPort\":0}",
	         svc);
	cr_assert_eq(gcli_call(c, "ServiceQueryRequest", q, &a), 0);
	cr_assert_str_eq(a.type, "QueryServiceResponse", "%s", a.json);
	d = gjson(&a);
	si = nj_get(d, 0, "serviceInfo");
	cr_assert_geq(si, 0);
	hosts = nj_get(d, si, "hosts");
	cr_assert_geq(hosts, 0);
	n = d->t[hosts].size;
	gmsg_free(&a);
	return n;
}

/*
 * A NotifySubscriberRequest's host count; acknowledged when ack (an
 * unacknowledged push is sent again after --grpc-push-timeout).
 */
static inline int gcli_push_hosts(struct gcli *c, struct gstream *bi, struct gmsg *m, bool ack)
{
	struct njson *d = gjson(m);
	char rid[64], resp[160];
	int si, hosts;

	cr_assert_str_eq(m->type, "NotifySubscriberRequest", "%s", m->json);
	snprintf(rid, sizeof(rid), "%s", nj_s(d, 0, "requestId"));
	si = nj_get(d, 0, "serviceInfo");
	cr_assert_geq(si, 0);
	hosts = nj_get(d, si, "hosts");
	cr_assert_geq(hosts, 0);
	if (ack) {
		snprintf(resp, sizeof(resp),
		         "{\"resultCode\":200,\"errorCode\":0,\"requestId\":\"%s\",\"success\":"
		         "true}",
		         rid);
		gcli_bi_send(c, bi, "NotifySubscriberResponse", resp);
	}
	return d->t[hosts].size;
}

/* Subscribes c to svc and reads the first push (the list at once); its host count. */
static inline int gcli_subscribe(struct gcli *c, struct gstream *bi, const char *svc)
{
	char j[512];
	struct gmsg a, m;
	int n;

	snprintf(j, sizeof(j),
	         "{\"requestId\":\"s\",\"namespace\":\"public\",\"serviceName\":\"%s\","
	         "\"groupName\":\"DEFAULT_GROUP\",\"subscribe\":true,\"clusters\":\"\"}",
	         svc);
	cr_assert_eq(gcli_call(c, "SubscribeServiceRequest", j, &a), 0);
	cr_assert_str_eq(a.type, "SubscribeServiceResponse", "%s", a.json);
	gmsg_free(&a);
	/* SetupAck or other server requests may come first: the first push is what counts. */
	for (;;) {
		cr_assert(gcli_bi_next(c, bi, &m, 3000), "a push after subscribing");
		if (strcmp(m.type, "NotifySubscriberRequest") == 0)
			break;
		gmsg_free(&m);
	}
	n = gcli_push_hosts(c, bi, &m, true);
	gmsg_free(&m);
	return n;
}

#endif
