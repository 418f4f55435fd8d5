/*
 * view.c - the node's encoder of list entries, from the store's views.
 *
 * The one encoder of the protocol that needs the store's code: a view's
 * metadata is the store's interned map, read through store_meta_count and
 * store_meta_at. It is kept out of wire.c so that the codec links without
 * the store - the client library links wire.c and not this file - and it
 * has no header of its own: it is declared in proto/wire.h beside the
 * other encoders, where its callers (the worker) look for it.
 */
#include "proto/wire_internal.h"

#include "store/store.h"

void proto_wr_view(struct proto_wr *w, const struct store_view *v)
{
	uint32_t n = store_meta_count(v->meta);

	proto_wr_str(w, v->cluster);
	proto_wr_addr(w, &v->addr);
	wr_u32(w, v->weight_milli);
	wr_u8(w, (uint8_t)(((v->flags & STORE_F_HEALTHY) ? PF_HEALTHY : 0) |
	                   ((v->flags & STORE_F_ENABLED) ? PF_ENABLED : 0) |
	                   ((v->flags & STORE_F_EPHEMERAL) ? PF_EPHEMERAL : 0)));
	wr_timing(w, &v->timing);
	wr_u16(w, (uint16_t)n);
	for (uint32_t i = 0; i < n; i++) {
		struct store_kv kv = store_meta_at(v->meta, i);

		proto_wr_str(w, kv.key);
		proto_wr_str(w, kv.val);
	}
}
