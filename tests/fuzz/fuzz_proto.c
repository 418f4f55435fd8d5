/*
 * libFuzzer target for the client protocol decoder: splits the input into
 * frames with proto_frame_check exactly as a connection does, checks each
 * complete body with proto_body_check, and for bodies that pass, decodes
 * every item the way the server will. Any read past a body is an ASan
 * report; a body that passes the check but fails to decode is an abort.
 */
#include "proto/wire.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_header h;
	long n;

	while (size > 0 && (n = proto_frame_check(data, size, 1 << 16, &h)) > 0) {
		const uint8_t *body = data + PROTO_HEADER_BYTES;

		if (proto_body_check(&h, body, 512) == 0) {
			struct store_str clusters[PROTO_FILTER_MAX];
			struct store_kv kv[8];
			struct store_key k;
			struct store_val v;
			struct store_filter f;
			struct proto_rd r;
			int item_err;

			proto_rd_init(&r, body, h.body_len);
			switch (h.op) {
			case OP_REGISTER:
			case OP_HEARTBEAT:
				for (uint32_t i = 0; i < h.count; i++)
					proto_rd_instance(&r, &k, &v, kv, 8, &item_err);
				break;
			case OP_DEREGISTER:
				for (uint32_t i = 0; i < h.count; i++)
					proto_rd_key(&r, &k);
				break;
			case OP_RENEW:
			case OP_RELEASE:
			case OP_HOLD: {
				struct proto_hold hold;

				for (uint32_t i = 0; i < h.count; i++)
					proto_rd_item_held(&r, h.op, &k, &v, kv, 8, &item_err,
					                   &hold);
				break;
			}
			case OP_LIST:
			case OP_SUBSCRIBE:
				proto_rd_svc(&r, &k.svc);
				proto_rd_filter(&r, &f, clusters);
				break;
			case OP_UNSUBSCRIBE:
				(void)proto_rd_u32(&r);
				break;
			default:
				r.p = r.end;
			}
			if (proto_rd_done(&r) != 0)
				abort();
		}
		data += n;
		size -= (size_t)n;
	}
	/* Views, as a client decodes a LIST answer. */
	{
		struct proto_rd r;
		struct proto_view v;
		struct store_kv kv[4];

		proto_rd_init(&r, data, size);
		while (r.p < r.end && !r.err)
			proto_rd_view(&r, &v, kv, 4);
	}
	return 0;
}
