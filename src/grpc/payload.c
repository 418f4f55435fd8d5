/*
 * payload.c - the gRPC Payload codec over protobuf-c (payload.h).
 *
 * Why protobuf-c and not a hand-written decoder: the envelope is small,
 * but protobuf's wire rules (varints, unknown fields of every wire type to
 * skip, repeated and packed forms, a map as repeated entries, the last
 * value of a repeated scalar field winning) are where hand-written
 * decoders go wrong on hostile input; protobuf-c is maintained, in Debian,
 * fuzzed upstream, and takes an allocator, which is what lets us bound
 * its memory. protoc-c generates the descriptors at build time from our
 * own .proto with Nacos's field numbers (nacos_grpc.proto).
 *
 * The arena: protobuf-c calls alloc for the message structs, every string
 * and bytes field and the repeated arrays. arena_alloc hands out aligned
 * pieces of one buffer and fails past its end, which protobuf-c turns
 * into a failed unpack; free is a no-op (the whole arena is reset before
 * the next decode). protobuf-c never allocates more than a bounded
 * multiple of the input (each field costs at most its struct plus its
 * bytes), so an arena of twice the largest message plus slack decodes
 * every legitimate message and refuses the rest.
 */
#include "grpc/payload.h"

#include "core/err.h"
#include "core/mem.h"
#include "nacos_grpc.pb-c.h"

#include <string.h>

int payload_arena_init(struct payload_arena *a, size_t cap)
{
	a->p = mem_alloc(cap);
	a->cap = a->p ? cap : 0;
	a->used = 0;
	return a->p ? 0 : -ERR_NOMEM;
}

void payload_arena_free(struct payload_arena *a)
{
	mem_free(a->p);
	a->p = NULL;
	a->cap = a->used = 0;
}

static void *arena_alloc(void *data, size_t size)
{
	struct payload_arena *a = data;
	size_t at = (a->used + 15) & ~(size_t)15;

	if (size == 0)
		size = 1;
	if (at > a->cap || size > a->cap - at)
		return NULL;
	a->used = at + size;
	return a->p + at;
}

static void arena_free(void *data, void *ptr)
{
	(void)data;
	(void)ptr;
}

static struct store_str str_of(const char *s)
{
	return (struct store_str){ s ? s : "", s ? (uint32_t)strlen(s) : 0 };
}

int payload_decode(struct payload_arena *a, const uint8_t *msg, size_t len, struct payload *out)
{
	ProtobufCAllocator al = { arena_alloc, arena_free, a };
	GrpcPayload *pl;

	memset(out, 0, sizeof(*out));
	out->type = out->client_ip = out->body = (struct store_str){ "", 0 }; /* never NULL */
	a->used = 0;
	if (len > a->cap / 2)
		return -ERR_TOO_BIG;
	pl = grpc_payload__unpack(&al, len, msg);
	if (pl == NULL)
		return a->used + 64 >= a->cap ? -ERR_TOO_BIG : -ERR_INVAL;
	if (pl->metadata) {
		GrpcMetadata *m = pl->metadata;

		out->type = str_of(m->type);
		out->client_ip = str_of(m->client_ip);
		if (out->type.len > PAYLOAD_TYPE_MAX || m->n_headers > PAYLOAD_HEADERS_MAX)
			return -ERR_TOO_BIG;
		for (size_t i = 0; i < m->n_headers; i++) {
			out->headers[i].key = str_of(m->headers[i]->key);
			out->headers[i].val = str_of(m->headers[i]->value);
		}
		out->headers_n = (uint32_t)m->n_headers;
	}
	if (pl->body && pl->body->value.data) {
		out->body.p = (const char *)pl->body->value.data;
		out->body.len = (uint32_t)pl->body->value.len;
	} else {
		out->body.p = "";
	}
	return 0;
}

bool payload_header(const struct payload *p, const char *name, struct store_str *val)
{
	size_t n = strlen(name);

	/* Last one wins, as a map's later entry replaces an earlier one. */
	for (uint32_t i = p->headers_n; i-- > 0;)
		if (p->headers[i].key.len == n && memcmp(p->headers[i].key.p, name, n) == 0) {
			*val = p->headers[i].val;
			return true;
		}
	return false;
}

int payload_encode(struct buf *b, size_t max, bool grpc_frame, const char *type, const char *json,
                   size_t json_len)
{
	GrpcMetadata md = GRPC_METADATA__INIT;
	GrpcAny any = GRPC_ANY__INIT;
	GrpcPayload pl = GRPC_PAYLOAD__INIT;
	size_t n, hdr = grpc_frame ? 5 : 0;
	uint8_t *p;

	md.type = (char *)type;
	any.value.data = (uint8_t *)json;
	any.value.len = json_len;
	pl.metadata = &md;
	pl.body = &any;
	n = grpc_payload__get_packed_size(&pl);
	if (n > UINT32_MAX || !buf_reserve(b, hdr + n, max))
		return -ERR_NOMEM;
	p = b->p + b->len;
	if (grpc_frame) {
		p[0] = 0;
		p[1] = (uint8_t)(n >> 24);
		p[2] = (uint8_t)(n >> 16);
		p[3] = (uint8_t)(n >> 8);
		p[4] = (uint8_t)n;
	}
	if (grpc_payload__pack(&pl, p + hdr) != n)
		return -ERR_NOMEM; /* cannot happen: the size was just computed */
	b->len += hdr + n;
	return 0;
}
