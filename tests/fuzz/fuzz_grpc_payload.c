/*
 * libFuzzer target for the gRPC Payload codec (grpc/payload.h). The input
 * is a protobuf message, copied to a buffer of exactly its size so a read
 * past it is an ASan report, decoded with a small arena (the bound is
 * part of what is tested: refusals must be clean).
 *
 * Checks: a decoded view points inside the arena or the input's copy; the
 * header count is within PAYLOAD_HEADERS_MAX; the type within its bound.
 * What decodes re-encodes (type and body) and decodes again to the same
 * type and body, with the gRPC prefix giving the length.
 */
#include "grpc/payload.h"

#include "core/err.h"

#include <stdlib.h>
#include <string.h>

static struct payload_arena arena;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct payload p, q;
	struct buf b = { 0 };
	uint8_t *in;
	char *type, *body;
	int rc;

	if (arena.p == NULL && payload_arena_init(&arena, 1 << 15) < 0)
		abort();
	in = malloc(size ? size : 1);
	if (size) /* libFuzzer passes NULL for the empty input */
		memcpy(in, data, size);
	rc = payload_decode(&arena, in, size, &p);
	if (rc == 0) {
		if (p.headers_n > PAYLOAD_HEADERS_MAX || p.type.len > PAYLOAD_TYPE_MAX)
			abort();
		for (uint32_t i = 0; i < p.headers_n; i++)
			if (p.headers[i].key.p == NULL || p.headers[i].val.p == NULL)
				abort();
		/* copies: the arena is reused by the next decode */
		type = strndup(p.type.p, p.type.len);
		body = malloc(p.body.len + 1);
		memcpy(body, p.body.p, p.body.len);
		if (strlen(type) == p.type.len) { /* a type with a NUL cannot be one of ours */
			if (payload_encode(&b, 1 << 20, true, type, body, p.body.len) != 0)
				abort();
			if (((uint32_t)b.p[1] << 24 | (uint32_t)b.p[2] << 16 |
			     (uint32_t)b.p[3] << 8 | b.p[4]) != b.len - 5)
				abort();
			if (payload_decode(&arena, b.p + 5, b.len - 5, &q) == 0) {
				if (q.type.len != strlen(type) ||
				    memcmp(q.type.p, type, q.type.len) ||
				    q.body.len != p.body.len || memcmp(q.body.p, body, q.body.len))
					abort();
			} else if (b.len - 5 <= arena.cap / 4) {
				abort(); /* what we wrote, small, must read back */
			}
		}
		free(type);
		free(body);
		buf_free(&b);
	} else if (rc != -ERR_INVAL && rc != -ERR_TOO_BIG) {
		abort();
	}
	free(in);
	return 0;
}
