/*
 * wire.h - the client protocol's frames and field codecs (docs/protocol.md).
 *
 * Framing is a resumable check over whatever bytes have arrived:
 * proto_frame_check says "need more", "a frame of N bytes is complete", or
 * a protocol error, without copying. Bodies are decoded only once complete,
 * through a bounds-checked reader whose first error sticks, so a decoder
 * never reads past the body and a truncated field is one clear error.
 * proto_body_check walks a whole body before anything in it is acted on:
 * a malformed frame is refused as a whole, never half-applied.
 *
 * Encoders write into a caller's buffer and flag overflow instead of
 * writing past it. Nothing here allocates.
 *
 * The codec (wire.c) needs only the key and value types of store/types.h
 * and struct addr of core/addr.h, never the store's code: the client
 * library links it on its own. The one encoder that reads the store,
 * proto_wr_view, is in proto/view.c and only the node links it.
 */
#ifndef DISTRO_PROTO_WIRE_H
#define DISTRO_PROTO_WIRE_H

#include "store/types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PROTO_MAGIC0       0x44 /* 'D' */
#define PROTO_MAGIC1       0x52 /* 'R' */
#define PROTO_VERSION      1
#define PROTO_HEADER_BYTES 16
#define PROTO_RESPONSE     0x80
#define PROTO_STR_ABSENT   0xffff
#define PROTO_PING_MAX     64
#define PROTO_FILTER_MAX   64        /* clusters in a filter */
#define PROTO_META_MAX     256       /* metadata pairs an item may carry on the wire */
#define PROTO_RENEW_MS_MAX 86400000u /* a lease item's renew_ms: at most a day */

enum proto_op {
	OP_PING = 1,
	OP_REGISTER = 2,
	OP_DEREGISTER = 3,
	OP_HEARTBEAT = 4,
	OP_LIST = 5,
	OP_SUBSCRIBE = 6,
	OP_UNSUBSCRIBE = 7,
	OP_STATS = 8,
	OP_PUSH = 9,
	OP_SLOT_MAP = 10, /* the cluster's members and slot owners (docs/protocol.md) */
	OP_AUTH = 11,     /* authenticate the connection (docs/protocol.md, "Authentication") */
	/*
	 * Leased writes (docs/protocol.md, "Leases"): a holder's claim on an
	 * instance, so that one holder's end does not remove what another
	 * still holds. Each item starts with the holder's u64 id.
	 */
	OP_RENEW = 12, /* a HEARTBEAT that renews the holder's lease: holder, renew_ms, instance */
	OP_RELEASE = 13, /* the holder lets go; deleted only if no other holder: holder, key */
	OP_HOLD = 14,    /* a REGISTER that takes a lease: holder, renew_ms, instance */
	OP_ERROR = 127,
};

/* AUTH request: the first byte says which credentials follow. */
enum proto_auth_method {
	PROTO_AUTH_TOKEN = 1,    /* `str` token (a Nacos login's accessToken) */
	PROTO_AUTH_PASSWORD = 2, /* `str` user, `str` password */
};

/* AUTH answer: u8 flags, then `str` the user's name. */
enum proto_auth_flag {
	PROTO_AUTH_ADMIN = 1u << 0, /* the users file calls the user admin */
	PROTO_AUTH_OFF = 1u << 1,   /* the node runs without authentication: nothing was checked */
};

enum proto_item_flag {
	PF_HEALTHY = 1u << 0,
	PF_ENABLED = 1u << 1,
	PF_EPHEMERAL = 1u << 2,
};

enum proto_filter_flag {
	PFF_HEALTHY_ONLY = 1u << 0,
	PFF_INCLUDE_DISABLED = 1u << 1,
};

/* The lease prefix of a RENEW, HOLD or RELEASE item (renew_ms 0 for RELEASE). */
struct proto_hold {
	uint64_t holder;   /* unique in the cluster; 0 is invalid (an item error) */
	uint32_t renew_ms; /* how often the holder renews: its lease lasts 2x that + a margin */
};

/* A write op: its frames carry items (REGISTER ... HOLD). */
static inline bool proto_op_write(uint8_t op)
{
	return op == OP_REGISTER || op == OP_DEREGISTER || op == OP_HEARTBEAT || op == OP_RENEW ||
	       op == OP_RELEASE || op == OP_HOLD;
}

/* A write op whose items name a key only (DEREGISTER, RELEASE), not a whole instance. */
static inline bool proto_op_keyed(uint8_t op)
{
	return op == OP_DEREGISTER || op == OP_RELEASE;
}

/* A write op whose items start with a lease prefix (struct proto_hold). */
static inline bool proto_op_leased(uint8_t op)
{
	return op == OP_RENEW || op == OP_RELEASE || op == OP_HOLD;
}

struct proto_header {
	uint8_t magic[2];
	uint8_t version;
	uint8_t op;
	uint32_t body_len;
	uint32_t request_id;
	uint16_t status;
	uint16_t count;
};

/*
 * Looks at the first len bytes of a stream. Returns 0 if a complete frame is
 * not there yet, the frame's total length (header + body) when it is, or a
 * negative -ERR_PROTO_* (magic, version, too big) as soon as the header
 * shows it. Fills *h once the header is complete.
 */
long proto_frame_check(const uint8_t *buf, size_t len, uint32_t frame_bytes_max,
                       struct proto_header *h);

/* Writes a header at out (PROTO_HEADER_BYTES). */
void proto_header_put(uint8_t *out, uint8_t op, uint32_t body_len, uint32_t request_id,
                      uint16_t status, uint16_t count);

/* ---- reading ---- */

struct proto_rd {
	const uint8_t *p, *end;
	int err; /* first error, sticky */
};

static inline void proto_rd_init(struct proto_rd *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->end = p + len;
	r->err = 0;
}

uint8_t proto_rd_u8(struct proto_rd *r);
uint16_t proto_rd_u16(struct proto_rd *r);
uint32_t proto_rd_u32(struct proto_rd *r);
uint64_t proto_rd_u64(struct proto_rd *r);
struct store_str proto_rd_str(struct proto_rd *r);
void proto_rd_addr(struct proto_rd *r, struct addr *a);

/* Service key (ns, group, service). */
void proto_rd_svc(struct proto_rd *r, struct store_svc_key *k);
void proto_rd_key(struct proto_rd *r, struct store_key *k);

/*
 * An instance item. Metadata pairs beyond kv_max are read past and reported
 * in *item_err as -ERR_META_PAIRS (the item fails, the frame goes on).
 */
void proto_rd_instance(struct proto_rd *r, struct store_key *k, struct store_val *v,
                       struct store_kv *kv, uint32_t kv_max, int *item_err);

/*
 * One write item of op: a key for DEREGISTER (v untouched, *item_err 0),
 * else an instance (proto_rd_instance's rules). The one decoder of items
 * every reader of a write frame uses.
 */
void proto_rd_item(struct proto_rd *r, uint8_t op, struct store_key *k, struct store_val *v,
                   struct store_kv *kv, uint32_t kv_max, int *item_err);

/*
 * proto_rd_item that also returns the lease prefix of a leased op's item
 * (RENEW, HOLD: u64 holder, u32 renew_ms; RELEASE: u64 holder) in *hold,
 * zeroed for other ops. A holder of 0, or a renew_ms outside
 * 1..PROTO_RENEW_MS_MAX, is an item error (-ERR_INVAL), not a framing one.
 */
void proto_rd_item_held(struct proto_rd *r, uint8_t op, struct store_key *k, struct store_val *v,
                        struct store_kv *kv, uint32_t kv_max, int *item_err,
                        struct proto_hold *hold);

/*
 * A write's answer body: one i16 result per item, little-endian (0 or a
 * positive STORE_* code, or a negative -ERR_*). The one encoder and decoder
 * of it, for client answers and peer FWD_ACKs alike.
 */
static inline void proto_result_put(uint8_t *out, uint32_t i, int16_t r)
{
	out[2 * i] = (uint8_t)(uint16_t)r;
	out[2 * i + 1] = (uint8_t)((uint16_t)r >> 8);
}

static inline void proto_results_put(uint8_t *out, const int16_t *results, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		proto_result_put(out, i, results[i]);
}

static inline int16_t proto_result_at(const uint8_t *body, uint32_t i)
{
	return (int16_t)(uint16_t)(body[2 * i] | (body[2 * i + 1] << 8));
}

/* Steps over one write item (a key for DEREGISTER, else an instance). */
void proto_rd_skip_item(struct proto_rd *r, uint8_t op);

/* A filter; clusters beyond PROTO_FILTER_MAX are a framing error. */
void proto_rd_filter(struct proto_rd *r, struct store_filter *f, struct store_str *clusters);

/*
 * A list entry as the client sees it (ns/group/service are the request's).
 * Metadata pairs beyond kv_max are skipped; *meta_total tells how many came.
 */
struct proto_view {
	struct store_str cluster;
	struct addr addr;
	uint32_t weight_milli;
	uint8_t flags;
	struct store_timing timing;
	struct store_kv *meta;
	uint32_t meta_n;
	uint32_t meta_total;
};

void proto_rd_view(struct proto_rd *r, struct proto_view *v, struct store_kv *kv, uint32_t kv_max);

/* 0 when the reader consumed everything without error, else the error. */
int proto_rd_done(const struct proto_rd *r);

/*
 * Walks a complete request body for its op: 0 if every field is present and
 * nothing trails, else -ERR_PROTO_*. batch_max bounds `count`.
 */
int proto_body_check(const struct proto_header *h, const uint8_t *body, uint32_t batch_max);

/* ---- writing ---- */

struct proto_wr {
	uint8_t *p, *end;
	bool overflow;
};

static inline void proto_wr_init(struct proto_wr *w, uint8_t *p, size_t cap)
{
	w->p = p;
	w->end = p + cap;
	w->overflow = false;
}

void proto_wr_u8(struct proto_wr *w, uint8_t v);
void proto_wr_u16(struct proto_wr *w, uint16_t v);
void proto_wr_u32(struct proto_wr *w, uint32_t v);
void proto_wr_u64(struct proto_wr *w, uint64_t v);
void proto_wr_bytes(struct proto_wr *w, const void *p, size_t len);
void proto_wr_str(struct proto_wr *w, struct store_str s);
void proto_wr_addr(struct proto_wr *w, const struct addr *a);
void proto_wr_svc(struct proto_wr *w, const struct store_svc_key *k);
void proto_wr_key(struct proto_wr *w, const struct store_key *k);
void proto_wr_instance(struct proto_wr *w, const struct store_key *k, const struct store_val *v);
void proto_wr_filter(struct proto_wr *w, const struct store_filter *f);

struct store_view;

/*
 * A list entry from the store's view of an instance: the node's side of
 * proto_rd_view. Defined in proto/view.c, apart from the codec, because it
 * reads the store's interned metadata: the client library links wire.c
 * alone and so none of the store.
 */
void proto_wr_view(struct proto_wr *w, const struct store_view *v);

#ifdef __cplusplus
}
#endif

#endif
