/*
 * payload.h - the Nacos 2.x gRPC envelope, Payload{Metadata, Any}, decoded
 * and encoded with protobuf-c (src/grpc/nacos_grpc.proto).
 *
 * Every Nacos request and response is one Payload: Metadata.type names the
 * Java class ("InstanceRequest"), Metadata.headers carries the request's
 * headers (an access token among them), Metadata.clientIp the client's
 * address as it sees it, and body.value the Jackson JSON of the object.
 *
 * Decoding is bounded and allocation free: protobuf-c unpacks into a
 * caller's arena (struct payload_arena, one per worker), which refuses to
 * hand out more than its size, so an input can cost at most that much
 * memory whatever its field counts; the arena is reset before each
 * decode. The decoded view points into the arena and is valid until the
 * next decode with it.
 */
#ifndef DISTRO_GRPC_PAYLOAD_H
#define DISTRO_GRPC_PAYLOAD_H

#include "core/buf.h"
#include "store/types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PAYLOAD_HEADERS_MAX 64  /* metadata headers kept; more is a decode error */
#define PAYLOAD_TYPE_MAX    128 /* bytes of a type name */

/* Memory for decoding, reused: bytes = the largest message accepted * 2 + slack. */
struct payload_arena {
	uint8_t *p;
	size_t cap, used;
};

int payload_arena_init(struct payload_arena *a, size_t cap);
void payload_arena_free(struct payload_arena *a);

struct payload {
	struct store_str type;      /* Metadata.type; len 0 when absent */
	struct store_str client_ip; /* Metadata.clientIp */
	struct store_kv headers[PAYLOAD_HEADERS_MAX];
	uint32_t headers_n;
	struct store_str body; /* body.value: the JSON text (not NUL-terminated) */
};

/*
 * Decodes the protobuf message msg[0, len) into *out, whose strings point
 * into the arena. 0; -ERR_INVAL when it is not a Payload protobuf-c
 * accepts (malformed varints, wrong wire types, truncated fields);
 * -ERR_TOO_BIG when it needs more than the arena or has more than
 * PAYLOAD_HEADERS_MAX headers or a type over PAYLOAD_TYPE_MAX bytes.
 * Cost: one pass over the bytes, one copy of its strings.
 */
int payload_decode(struct payload_arena *a, const uint8_t *msg, size_t len, struct payload *out);

/* The value of header name (exact bytes), or false. */
bool payload_header(const struct payload *p, const char *name, struct store_str *val);

/*
 * Appends the encoded Payload{metadata{type}, body{value = json}} to b,
 * prefixed by the 5-byte gRPC message header (not compressed, length)
 * when grpc_frame, keeping b at most max unconsumed bytes. 0 or
 * -ERR_NOMEM (the bound, or memory).
 */
int payload_encode(struct buf *b, size_t max, bool grpc_frame, const char *type, const char *json,
                   size_t json_len);

#ifdef __cplusplus
}
#endif

#endif
