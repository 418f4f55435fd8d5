/*
 * nacos_internal.h - what the worker's Nacos files share.
 *
 *   nacos.c      the HTTP/1.1 connections of the Nacos port on a worker:
 *                reading requests in order, answering them, resuming a
 *                connection whose write came back from another shard or node
 *   nacos_api.c  the endpoints of /nacos/v1/ns (docs/nacos.md): parameters,
 *                instance keys and values, the JSON answers
 *   nacos_auth.c authentication (--auth-users): the gate before routing,
 *                the login endpoint
 *   nacos_console.c  the web console's static files (/ and /nacos/)
 *   nacos_catalog.c  the console's reads: /v1/ns/catalog/services, /instances
 *
 * A Nacos write is the binary protocol's write: the endpoint encodes its
 * items (src/proto/wire.h) into one frame (struct nacos_frame: one item
 * for an instance write, up to NACOS_BATCH_MAX for a metadata batch) and
 * hands it to ops_write, so routing to the shards and to the slots'
 * owners, forwarding and replication are the same code as for the binary
 * protocol. The answer comes back once, through nacos_write_done, when
 * every item has its result, with the frame's body (a batch answer names
 * its items); the request id carries what the answer needs (nw_tag). An
 * HTTP connection answers in order, so while one of its writes is out it
 * reads no further request (its bytes wait in conn.in, bounded) and
 * resumes when the answer is written.
 */
#ifndef DISTRO_SERVER_NACOS_INTERNAL_H
#define DISTRO_SERVER_NACOS_INTERNAL_H

#include "nacos/form.h"
#include "nacos/auth.h"
#include "nacos/http1.h"
#include "nacos/json.h"
#include "server/worker_internal.h"

struct nacos_push;

#include <sys/socket.h>

#define NACOS_IN_MAX      (4u * H1_REQ_MAX) /* buffered bytes of one connection */
#define NACOS_BODY_MAX    (8u << 20)        /* one answer; a list of 100,000 fits */
#define NACOS_ITEM_BYTES  16384             /* one encoded write item */
#define NACOS_KV_MAX      PROTO_META_MAX
#define NACOS_BATCH_MAX   1024 /* items of one write frame (= ITEMS_INLINE: results on stack) */
#define NACOS_FRAME_BYTES (1u << 20) /* one write frame, encoded */

_Static_assert(NACOS_BATCH_MAX <= ITEMS_INLINE, "a batch's results fit handle_write's stack");
_Static_assert(NACOS_BATCH_MAX <= UINT16_MAX, "a frame counts its items in 16 bits");

/* One HTTP connection's state, from the worker's pool while it is open. */
struct nconn {
	struct h1_req req;
	struct sockaddr_storage peer; /* the client's address: UDP pushes go there */
	bool peer_known;
	bool continue_sent; /* "100 Continue" answered for this request */
	bool keep_alive;    /* of the request whose write is out */
	bool parsing;       /* inside the parse loop: a write answered now must not resume */
	/* The auth thread's answer for the parked request (nacos_auth.c), until it is re-handled.
	 */
	bool auth_ready;
	int auth_rc;
	struct nauth_id auth_who;
};

/* The worker's Nacos state (nacos_init), scratch included. */
struct nacos_worker {
	struct pool nconns;
	struct buf body; /* the answer being built */
	char *form_buf;  /* decoded parameters of the request being handled */
	size_t form_cap;
	char *meta_buf; /* unescaped metadata and beat strings */
	size_t meta_cap;
	struct nacos_push *push; /* UDP push (nacos_push.c); NULL if it could not start */
	struct store_kv kv[NACOS_KV_MAX];
	uint8_t *frame; /* NACOS_FRAME_BYTES: the write frame being built */
	/* A metadata batch (nacos_instance.c): its metadata and instances, decoded. */
	char *batch_buf; /* their strings */
	size_t batch_cap;
	struct store_kv batch_kv[NACOS_KV_MAX];
	struct json_inst inst[NACOS_BATCH_MAX];
	struct store_key keys[NACOS_BATCH_MAX];
};

/* What an asynchronous write answers, in the request id: kind << 24 | beat interval ms. */
enum nacos_write_kind {
	NW_REGISTER = 1, /* "ok" */
	NW_DEREGISTER,   /* "ok", also when absent */
	NW_BEAT,         /* {"clientBeatInterval":..,"code":10200,..} */
	NW_META_BATCH,   /* {"updated":["ip:port:unknown:cluster:ephemeral",..]}, one per item */
};

static inline uint32_t nw_tag(enum nacos_write_kind k, uint32_t interval_ms)
{
	/* 24 bits hold 4.6 hours: a longer interval is answered as that (the client beats sooner).
	 */
	return (uint32_t)k << 24 | (interval_ms > 0xffffffu ? 0xffffffu : interval_ms);
}

/* A request being answered. */
struct nctx {
	struct worker *w;
	uint32_t idx;
	const char *req; /* its first byte: spans of h are offsets from here */
	const struct h1_req *h;
	struct form form;
	struct store_str path; /* without the query */
	struct nauth_id who;   /* auth on: who the credentials proved (nacos_auth_gate) */
};

/* A write frame being built: items of one op, sent as one request, answered once. */
struct nacos_frame {
	struct proto_wr wr; /* into the worker's frame buffer */
	uint8_t op;
	uint16_t count;
};

/* nacos.c */
void nacos_reply(struct nctx *x, uint16_t status, const char *ctype, const char *body, size_t len);
void nacos_reply_text(struct nctx *x, uint16_t status, const char *text);
void nacos_reply_json(struct nctx *x, struct buf *b); /* 200, the body built in b */
/*
 * An answer with more header lines (hdrs: each ending CRLF, at most
 * NACOS_HDRS_MAX bytes); head_only: the head alone, its Content-Length the
 * body's (a 304 says the length it would have sent, as RFC 9110 allows).
 */
#define NACOS_HDRS_MAX 768
void nacos_reply_hdrs(struct nctx *x, uint16_t status, const char *ctype, const char *hdrs,
                      bool head_only, const char *body, size_t len);
/*
 * One write of one item: encoded, handed to ops_write, answered by
 * nacos_write_answer with the item's result (400 "instance too large"
 * when the item is over NACOS_ITEM_BYTES).
 */
void nacos_write(struct nctx *x, uint8_t op, uint32_t tag, const struct store_key *k,
                 const struct store_val *v);
/*
 * A write of many items, all of op: init, add each, send. The frame lives
 * in the worker's buffer, so one frame is built at a time and sent (or
 * dropped) before the handler returns. add: 0, or -ERR_TOO_BIG (over
 * NACOS_BATCH_MAX items, an item over NACOS_ITEM_BYTES, the frame over
 * NACOS_FRAME_BYTES), the frame unchanged. send (count > 0): one request
 * whose answer, when every item has its result wherever it ran, is
 * nacos_write_answer's for the tag.
 */
void nacos_frame_init(struct nctx *x, struct nacos_frame *f, uint8_t op);
int nacos_frame_add(struct nacos_frame *f, const struct store_key *k, const struct store_val *v);
void nacos_frame_send(struct nctx *x, struct nacos_frame *f, uint32_t tag);
const struct sockaddr_storage *nacos_peer(struct nctx *x);
/*
 * An answer that comes later (a request that visits other workers): the
 * connection reads no further request until nacos_later_done answers it,
 * on this worker, with the generation nacos_later returned (also at once,
 * from the handler itself). A connection closed meanwhile is freed then.
 */
uint32_t nacos_later(struct nctx *x);
void nacos_later_done(struct worker *w, uint32_t idx, uint32_t gen, bool head_only, uint16_t status,
                      const char *ctype, const char *body, size_t len);

/* nacos_push.c */
void nacos_push_subscribe(struct nctx *x, const struct store_svc_key *sk, struct store_str clusters,
                          bool healthy_only, uint16_t udp_port, uint64_t revision);
void nacos_service_subscribers(struct nctx *x);

/* nacos_params.c: parameters in, JSON out */
#define NACOS_JSON_CT "application/json;charset=UTF-8"

#define NACOS_DEFAULT_NS      "public"
#define NACOS_DEFAULT_GROUP   "DEFAULT_GROUP"
#define NACOS_DEFAULT_CLUSTER "DEFAULT"

#define NACOS_BEAT_INTERVAL_MS 5000u /* Nacos's clientBeatInterval default */
#define NACOS_CACHE_MILLIS     10000u

#define NACOS_META_INTERVAL "preserved.heart.beat.interval"
#define NACOS_META_TIMEOUT  "preserved.heart.beat.timeout"
#define NACOS_META_DELETE   "preserved.ip.delete.timeout"

struct store_str nacos_str_of(const char *s);
bool nacos_str_eq(struct store_str a, const char *b);
bool nacos_param(struct nctx *x, const char *key, struct store_str *out);
struct buf *nacos_body(struct nctx *x);
bool nacos_put(struct buf *b, const char *s);
bool nacos_put_str(struct buf *b, struct store_str s);
void nacos_reply_400(struct nctx *x, const char *fmt, const char *arg);
void nacos_reply_json_or_500(struct nctx *x, struct buf *b, bool ok);
uint16_t nacos_status_of(int code);
bool nacos_cluster_name_ok(struct store_str c);
int nacos_svc_of_or(struct nctx *x, struct store_svc_key *sk, struct store_str fallback);
int nacos_svc_of(struct nctx *x, struct store_svc_key *sk);
bool nacos_put_grouped(struct buf *b, const struct store_svc_key *sk);
int nacos_addr_of(struct nctx *x, struct store_str ip, int64_t port, struct addr *a);
int nacos_port_param(struct nctx *x, int64_t *port);
int nacos_cluster_of(struct nctx *x, struct store_str *c);
int nacos_key_of(struct nctx *x, struct store_key *k);
void nacos_timing_of(struct store_val *v);
int nacos_meta_of(struct nctx *x, struct store_val *v, bool *given);
int nacos_weight_of(struct nctx *x, double dflt, uint32_t *milli);
int nacos_val_of(struct nctx *x, struct store_val *v);
double nacos_weight_double(uint32_t milli);
bool nacos_put_meta_of(struct buf *b, const struct store_meta *m);
bool nacos_put_instance_id(struct buf *b, const struct store_view *v, const char *ip);
bool nacos_put_host(struct buf *b, const struct store_view *v, bool as_healthy);
void nacos_val_from_view(struct worker *w, const struct store_view *sv, struct store_val *v);
int nacos_instance_read(struct nctx *x, const struct store_key *k, struct store_val *v);

/* nacos_list.c */
bool nacos_views_grow(struct worker *w, uint32_t n);
void nacos_instance_list(struct nctx *x);
void nacos_instance_statuses(struct nctx *x);
void nacos_service_list(struct nctx *x);
void nacos_service_names(struct nctx *x);

/* nacos_instance.c */
void nacos_instance_register(struct nctx *x);
void nacos_instance_update(struct nctx *x);
void nacos_instance_deregister(struct nctx *x);
void nacos_instance_patch(struct nctx *x);
void nacos_instance_detail(struct nctx *x);
void nacos_instance_beat(struct nctx *x);
void nacos_health_instance(struct nctx *x);
void nacos_instance_metadata_batch(struct nctx *x);

/* nacos_service.c */
struct nacos_svc_state {
	bool found;                    /* the service has a service record */
	double threshold;              /* protectThreshold, 0..1 */
	const struct store_meta *meta; /* service metadata; valid in the epoch section */
};

int nacos_service_state(struct worker *w, const struct store_svc_key *sk,
                        struct nacos_svc_state *st);
void nacos_service_create(struct nctx *x);
void nacos_service_update(struct nctx *x);
void nacos_service_delete(struct nctx *x);
void nacos_service_detail(struct nctx *x);

/* nacos_auth.c: with --auth-users, before a request is routed */
enum nacos_auth_verdict {
	NACOS_AUTH_PASS = 0, /* go on: x->who says who */
	NACOS_AUTH_ANSWERED, /* refused (403, 503): the request is done */
	NACOS_AUTH_PARKED,   /* a bcrypt runs on the auth thread: handle the request again later */
};
int nacos_auth_gate(struct nctx *x);
void nacos_auth_login(struct nctx *x);

/* nacos_console.c: the web console's files */
bool nacos_console_path(struct store_str path); /* /, /nacos, /nacos/, /nacos/console/... */
bool nacos_console_serve(struct nctx *x);       /* false: not a console path */
/*
 * Whether an If-None-Match value (outside bytes, inm.len of them) names
 * tag: a comma-separated list of entity tags, a weak one (W/) compared
 * weakly as RFC 9110 13.1.2 says for GET, or "*". O(inm.len), no copy.
 */
bool nacos_console_etag_match(struct store_str inm, const char *tag);

/* nacos_catalog.c: the console's reads (GET /v1/ns/catalog/...) */
void nacos_catalog_services(struct nctx *x);
void nacos_catalog_instances(struct nctx *x);

/* nacos_api.c */
int nacos_render_list(struct worker *w, const struct store_svc_key *sk, struct store_str clusters,
                      bool healthy_only, struct buf *b, uint64_t *revision);
/* The same, with the bare service name in "name" (gRPC's ServiceInfo) when bare_name. */
int nacos_render_service(struct worker *w, const struct store_svc_key *sk,
                         struct store_str clusters, bool healthy_only, bool bare_name,
                         struct buf *b, uint64_t *revision);
void nacos_api_dispatch(struct nctx *x);
/*
 * The answer of a write frame whose items all have their results: into b,
 * with its status and content type. 0, or -ERR_NOMEM (over NACOS_BODY_MAX).
 */
int nacos_write_answer(const struct proto_header *h, const uint8_t *body, const int16_t *results,
                       struct buf *b, uint16_t *status, const char **ctype);

#endif
