#include "proto/wire_internal.h"

#include "core/err.h"

#include <endian.h>
#include <stddef.h>
#include <string.h>

_Static_assert(sizeof(struct proto_header) == PROTO_HEADER_BYTES, "header is 16 bytes");
_Static_assert(offsetof(struct proto_header, op) == 3, "op at 3");
_Static_assert(offsetof(struct proto_header, body_len) == 4, "body_len at 4");
_Static_assert(offsetof(struct proto_header, request_id) == 8, "request_id at 8");
_Static_assert(offsetof(struct proto_header, status) == 12, "status at 12");
_Static_assert(offsetof(struct proto_header, count) == 14, "count at 14");

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return le16toh(v);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

long proto_frame_check(const uint8_t *buf, size_t len, uint32_t frame_bytes_max,
                       struct proto_header *h)
{
	/* Judge the magic and version as soon as they arrive: garbage fails fast. */
	if (len >= 1 && buf[0] != PROTO_MAGIC0)
		return -ERR_PROTO_MAGIC;
	if (len >= 2 && buf[1] != PROTO_MAGIC1)
		return -ERR_PROTO_MAGIC;
	if (len >= 3 && buf[2] != PROTO_VERSION)
		return -ERR_PROTO_VERSION;
	if (len < PROTO_HEADER_BYTES)
		return 0;
	h->magic[0] = buf[0];
	h->magic[1] = buf[1];
	h->version = buf[2];
	h->op = buf[3];
	h->body_len = get32(buf + 4);
	h->request_id = get32(buf + 8);
	h->status = get16(buf + 12);
	h->count = get16(buf + 14);
	if ((uint64_t)h->body_len + PROTO_HEADER_BYTES > frame_bytes_max)
		return -ERR_PROTO_TOO_BIG;
	if (len < PROTO_HEADER_BYTES + (size_t)h->body_len)
		return 0;
	return (long)(PROTO_HEADER_BYTES + h->body_len);
}

void proto_header_put(uint8_t *out, uint8_t op, uint32_t body_len, uint32_t request_id,
                      uint16_t status, uint16_t count)
{
	uint32_t v32;
	uint16_t v16;

	out[0] = PROTO_MAGIC0;
	out[1] = PROTO_MAGIC1;
	out[2] = PROTO_VERSION;
	out[3] = op;
	v32 = htole32(body_len);
	memcpy(out + 4, &v32, 4);
	v32 = htole32(request_id);
	memcpy(out + 8, &v32, 4);
	v16 = htole16(status);
	memcpy(out + 12, &v16, 2);
	v16 = htole16(count);
	memcpy(out + 14, &v16, 2);
}

/* ---- reading ---- */

static const uint8_t *take(struct proto_rd *r, size_t n)
{
	const uint8_t *p = r->p;

	if (r->err || (size_t)(r->end - r->p) < n) {
		if (!r->err)
			r->err = -ERR_PROTO_TRUNCATED;
		return NULL;
	}
	r->p += n;
	return p;
}

uint8_t proto_rd_u8(struct proto_rd *r)
{
	const uint8_t *p = take(r, 1);

	return p ? p[0] : 0;
}

uint16_t proto_rd_u16(struct proto_rd *r)
{
	const uint8_t *p = take(r, 2);

	return p ? get16(p) : 0;
}

uint32_t proto_rd_u32(struct proto_rd *r)
{
	const uint8_t *p = take(r, 4);

	return p ? get32(p) : 0;
}

uint64_t proto_rd_u64(struct proto_rd *r)
{
	const uint8_t *p = take(r, 8);
	uint64_t v;

	if (p == NULL)
		return 0;
	memcpy(&v, p, 8);
	return le64toh(v);
}

struct store_str proto_rd_str(struct proto_rd *r)
{
	uint16_t len = proto_rd_u16(r);
	const uint8_t *p;

	if (r->err || len == PROTO_STR_ABSENT)
		return (struct store_str){ NULL, 0 };
	p = take(r, len);
	/* An empty string keeps a non-NULL pointer: empty is not absent. */
	return p ? (struct store_str){ (const char *)p, len } : (struct store_str){ NULL, 0 };
}

void proto_rd_addr(struct proto_rd *r, struct addr *a)
{
	uint8_t family = proto_rd_u8(r);
	const uint8_t *p;

	memset(a, 0, sizeof(*a));
	if (r->err)
		return;
	if (family == 4) {
		p = take(r, 4);
		if (p) {
			a->ip[10] = a->ip[11] = 0xff;
			memcpy(&a->ip[12], p, 4);
		}
	} else if (family == 6) {
		p = take(r, 16);
		if (p)
			memcpy(a->ip, p, 16);
	} else {
		r->err = -ERR_PROTO_FAMILY;
		return;
	}
	a->port = proto_rd_u16(r);
}

void proto_rd_svc(struct proto_rd *r, struct store_svc_key *k)
{
	k->ns = proto_rd_str(r);
	k->group = proto_rd_str(r);
	k->service = proto_rd_str(r);
}

void proto_rd_key(struct proto_rd *r, struct store_key *k)
{
	proto_rd_svc(r, &k->svc);
	k->cluster = proto_rd_str(r);
	proto_rd_addr(r, &k->addr);
}

static void rd_timing(struct proto_rd *r, struct store_timing *t)
{
	t->interval_ms = proto_rd_u32(r);
	t->timeout_ms = proto_rd_u32(r);
	t->delete_ms = proto_rd_u32(r);
}

/* Reads n metadata pairs, keeping the first kv_max; returns how many were kept. */
static uint32_t rd_meta(struct proto_rd *r, uint32_t n, struct store_kv *kv, uint32_t kv_max)
{
	uint32_t kept = 0;

	for (uint32_t i = 0; i < n && !r->err; i++) {
		struct store_kv pair;

		pair.key = proto_rd_str(r);
		pair.val = proto_rd_str(r);
		if (kept < kv_max && kv)
			kv[kept++] = pair;
	}
	return kept;
}

void proto_rd_instance(struct proto_rd *r, struct store_key *k, struct store_val *v,
                       struct store_kv *kv, uint32_t kv_max, int *item_err)
{
	uint8_t flags;
	uint16_t n;

	*item_err = 0;
	proto_rd_key(r, k);
	memset(v, 0, sizeof(*v));
	v->weight_milli = proto_rd_u32(r);
	flags = proto_rd_u8(r);
	v->healthy = flags & PF_HEALTHY;
	v->enabled = flags & PF_ENABLED;
	v->ephemeral = flags & PF_EPHEMERAL;
	rd_timing(r, &v->timing);
	n = proto_rd_u16(r);
	v->meta = kv;
	v->meta_n = rd_meta(r, n, kv, kv_max);
	if (n > kv_max)
		*item_err = -ERR_META_PAIRS;
}

void proto_rd_filter(struct proto_rd *r, struct store_filter *f, struct store_str *clusters)
{
	uint8_t flags = proto_rd_u8(r);
	uint16_t n = proto_rd_u16(r);

	memset(f, 0, sizeof(*f));
	f->healthy_only = flags & PFF_HEALTHY_ONLY;
	f->enabled_only = !(flags & PFF_INCLUDE_DISABLED);
	if (n > PROTO_FILTER_MAX) {
		if (!r->err)
			r->err = -ERR_PROTO_COUNT;
		return;
	}
	for (uint16_t i = 0; i < n && !r->err; i++)
		clusters[i] = proto_rd_str(r);
	f->clusters = clusters;
	f->clusters_n = r->err ? 0 : n;
}

void proto_rd_view(struct proto_rd *r, struct proto_view *v, struct store_kv *kv, uint32_t kv_max)
{
	memset(v, 0, sizeof(*v));
	v->cluster = proto_rd_str(r);
	proto_rd_addr(r, &v->addr);
	v->weight_milli = proto_rd_u32(r);
	v->flags = proto_rd_u8(r);
	rd_timing(r, &v->timing);
	v->meta_total = proto_rd_u16(r);
	v->meta = kv;
	v->meta_n = rd_meta(r, v->meta_total, kv, kv_max);
}

int proto_rd_done(const struct proto_rd *r)
{
	if (r->err)
		return r->err;
	return r->p == r->end ? 0 : -ERR_PROTO_TRAILING;
}

void proto_rd_item_held(struct proto_rd *r, uint8_t op, struct store_key *k, struct store_val *v,
                        struct store_kv *kv, uint32_t kv_max, int *item_err,
                        struct proto_hold *hold)
{
	int bad = 0;

	*item_err = 0;
	hold->holder = 0;
	hold->renew_ms = 0;
	if (proto_op_leased(op)) {
		hold->holder = proto_rd_u64(r);
		if (op != OP_RELEASE)
			hold->renew_ms = proto_rd_u32(r);
		if (hold->holder == 0 ||
		    (op != OP_RELEASE &&
		     (hold->renew_ms == 0 || hold->renew_ms > PROTO_RENEW_MS_MAX)))
			bad = -ERR_INVAL;
	}
	if (proto_op_keyed(op))
		proto_rd_key(r, k);
	else
		proto_rd_instance(r, k, v, kv, kv_max, item_err);
	if (bad && *item_err == 0)
		*item_err = bad;
}

void proto_rd_item(struct proto_rd *r, uint8_t op, struct store_key *k, struct store_val *v,
                   struct store_kv *kv, uint32_t kv_max, int *item_err)
{
	struct proto_hold hold;

	proto_rd_item_held(r, op, k, v, kv, kv_max, item_err, &hold);
}

void proto_rd_skip_item(struct proto_rd *r, uint8_t op)
{
	struct store_key k;
	struct store_val v;
	int item_err;

	proto_rd_item(r, op, &k, &v, NULL, 0, &item_err);
}

int proto_body_check(const struct proto_header *h, const uint8_t *body, uint32_t batch_max)
{
	struct store_str clusters[PROTO_FILTER_MAX];
	struct proto_rd r;
	struct store_key k;
	struct store_val v;
	struct store_filter f;
	int item_err;

	proto_rd_init(&r, body, h->body_len);
	switch (h->op) {
	case OP_PING:
		return h->body_len <= PROTO_PING_MAX ? 0 : -ERR_PROTO_TOO_BIG;
	case OP_STATS:
	case OP_SLOT_MAP:
		return h->body_len == 0 ? 0 : -ERR_PROTO_TRAILING;
	case OP_REGISTER:
	case OP_HEARTBEAT:
	case OP_DEREGISTER:
	case OP_RENEW:
	case OP_RELEASE:
	case OP_HOLD:
		if (h->count > batch_max)
			return -ERR_PROTO_COUNT;
		for (uint32_t i = 0; i < h->count && !r.err; i++)
			proto_rd_item(&r, h->op, &k, &v, NULL, 0, &item_err);
		return proto_rd_done(&r);
	case OP_LIST:
	case OP_SUBSCRIBE:
		proto_rd_svc(&r, &k.svc);
		proto_rd_filter(&r, &f, clusters);
		return proto_rd_done(&r);
	case OP_UNSUBSCRIBE:
		(void)proto_rd_u32(&r);
		return proto_rd_done(&r);
	case OP_AUTH:
		switch (proto_rd_u8(&r)) {
		case PROTO_AUTH_TOKEN:
			(void)proto_rd_str(&r);
			break;
		case PROTO_AUTH_PASSWORD:
			(void)proto_rd_str(&r);
			(void)proto_rd_str(&r);
			break;
		default:
			return r.err ? r.err : -ERR_PROTO_OP; /* an unknown method */
		}
		return proto_rd_done(&r);
	}
	return -ERR_PROTO_OP;
}

/* ---- writing ---- */

void proto_wr_u8(struct proto_wr *w, uint8_t v)
{
	wr_u8(w, v);
}

void proto_wr_u16(struct proto_wr *w, uint16_t v)
{
	wr_u16(w, v);
}

void proto_wr_u32(struct proto_wr *w, uint32_t v)
{
	wr_u32(w, v);
}

void proto_wr_u64(struct proto_wr *w, uint64_t v)
{
	wr_u64(w, v);
}

void proto_wr_bytes(struct proto_wr *w, const void *src, size_t len)
{
	uint8_t *p = wr_take(w, len);

	if (p && len)
		memcpy(p, src, len);
}

void proto_wr_str(struct proto_wr *w, struct store_str s)
{
	if (s.p == NULL) {
		proto_wr_u16(w, PROTO_STR_ABSENT);
		return;
	}
	if (s.len >= PROTO_STR_ABSENT) {
		w->overflow = true; /* not representable: callers bound names far below */
		return;
	}
	proto_wr_u16(w, (uint16_t)s.len);
	proto_wr_bytes(w, s.p, s.len);
}

void proto_wr_addr(struct proto_wr *w, const struct addr *a)
{
	static const uint8_t v4[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (memcmp(a->ip, v4, 12) == 0) {
		proto_wr_u8(w, 4);
		proto_wr_bytes(w, &a->ip[12], 4);
	} else {
		proto_wr_u8(w, 6);
		proto_wr_bytes(w, a->ip, 16);
	}
	proto_wr_u16(w, a->port);
}

void proto_wr_svc(struct proto_wr *w, const struct store_svc_key *k)
{
	proto_wr_str(w, k->ns);
	proto_wr_str(w, k->group);
	proto_wr_str(w, k->service);
}

void proto_wr_key(struct proto_wr *w, const struct store_key *k)
{
	proto_wr_svc(w, &k->svc);
	proto_wr_str(w, k->cluster);
	proto_wr_addr(w, &k->addr);
}

void proto_wr_instance(struct proto_wr *w, const struct store_key *k, const struct store_val *v)
{
	proto_wr_key(w, k);
	proto_wr_u32(w, v->weight_milli);
	proto_wr_u8(w, (uint8_t)((v->healthy ? PF_HEALTHY : 0) | (v->enabled ? PF_ENABLED : 0) |
	                         (v->ephemeral ? PF_EPHEMERAL : 0)));
	wr_timing(w, &v->timing);
	proto_wr_u16(w, (uint16_t)v->meta_n);
	for (uint32_t i = 0; i < v->meta_n; i++) {
		proto_wr_str(w, v->meta[i].key);
		proto_wr_str(w, v->meta[i].val);
	}
}

void proto_wr_filter(struct proto_wr *w, const struct store_filter *f)
{
	proto_wr_u8(w, (uint8_t)((f->healthy_only ? PFF_HEALTHY_ONLY : 0) |
	                         (f->enabled_only ? 0 : PFF_INCLUDE_DISABLED)));
	proto_wr_u16(w, (uint16_t)f->clusters_n);
	for (uint32_t i = 0; i < f->clusters_n; i++)
		proto_wr_str(w, f->clusters[i]);
}
