#include "cluster/records.h"

#include "core/err.h"

#include <string.h>

void record_put(struct proto_wr *w, const struct store_view *v)
{
	struct store_key k = {
		.svc = { v->ns, v->group, v->service },
		.cluster = v->cluster,
		.addr = v->addr,
	};
	bool deleted = v->flags & STORE_F_DELETED;
	uint32_t n = deleted ? 0 : store_meta_count(v->meta);

	proto_wr_key(w, &k);
	proto_wr_u8(w, (uint8_t)(((v->flags & STORE_F_HEALTHY) ? RF_HEALTHY : 0) |
	                         ((v->flags & STORE_F_ENABLED) ? RF_ENABLED : 0) |
	                         ((v->flags & STORE_F_EPHEMERAL) ? RF_EPHEMERAL : 0) |
	                         ((v->flags & STORE_F_EXPIRED) ? RF_EXPIRED : 0) |
	                         (deleted ? RF_DELETED : 0)));
	proto_wr_u64(w, v->version);
	proto_wr_u16(w, v->node);
	if (deleted)
		return;
	proto_wr_u32(w, v->weight_milli);
	proto_wr_u32(w, v->timing.interval_ms);
	proto_wr_u32(w, v->timing.timeout_ms);
	proto_wr_u32(w, v->timing.delete_ms);
	proto_wr_u16(w, (uint16_t)n);
	for (uint32_t i = 0; i < n; i++) {
		struct store_kv kv = store_meta_at(v->meta, i);

		proto_wr_str(w, kv.key);
		proto_wr_str(w, kv.val);
	}
}

void record_get(struct proto_rd *rd, struct store_record *r, struct store_kv *kv, uint32_t kv_max)
{
	uint8_t flags;
	uint16_t n;

	memset(r, 0, sizeof(*r));
	proto_rd_key(rd, &r->key);
	flags = proto_rd_u8(rd);
	r->version = proto_rd_u64(rd);
	r->node = proto_rd_u16(rd);
	r->deleted = flags & RF_DELETED;
	r->expired = flags & RF_EXPIRED;
	r->val.healthy = flags & RF_HEALTHY;
	r->val.enabled = flags & RF_ENABLED;
	r->val.ephemeral = flags & RF_EPHEMERAL;
	if (r->deleted)
		return;
	r->val.weight_milli = proto_rd_u32(rd);
	r->val.timing.interval_ms = proto_rd_u32(rd);
	r->val.timing.timeout_ms = proto_rd_u32(rd);
	r->val.timing.delete_ms = proto_rd_u32(rd);
	n = proto_rd_u16(rd);
	if (n > kv_max) {
		if (!rd->err)
			rd->err = -ERR_PROTO_COUNT;
		return;
	}
	for (uint16_t i = 0; i < n && !rd->err; i++) {
		kv[i].key = proto_rd_str(rd);
		kv[i].val = proto_rd_str(rd);
	}
	r->val.meta = kv;
	r->val.meta_n = rd->err ? 0 : n;
}

int record_batch_check(const uint8_t *body, size_t len, uint32_t count)
{
	static __thread struct store_kv kv[PROTO_META_MAX];
	struct store_record r;
	struct proto_rd rd;

	proto_rd_init(&rd, body, len);
	for (uint32_t i = 0; i < count && !rd.err; i++)
		record_get(&rd, &r, kv, PROTO_META_MAX);
	return proto_rd_done(&rd);
}
