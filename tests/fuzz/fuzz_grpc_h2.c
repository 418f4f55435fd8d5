/*
 * libFuzzer target for the gRPC port's input path: HTTP/2 (nghttp2 under
 * grpc/h2.h), gRPC message framing, the Payload envelope and the JSON
 * body, as a connection of the gRPC port takes them. The first input byte
 * chooses how the rest is split into feeds (1..256 bytes each, or all at
 * once), so reassembly across any split is exercised; the rest is what a
 * client sends, starting with the preface.
 *
 * Each whole message is decoded (payload_decode, json_parse) and, on a
 * unary stream, answered with a message and trailers, on a bi-stream with
 * a message, so the output side (data provider, trailers, flow control)
 * runs too; all output is taken after each feed, as the worker does.
 * Checks: messages within the bound, streams within the bound, no feed
 * after a failed one.
 */
#include "grpc/h2.h"
#include "grpc/payload.h"
#include "nacos/json.h"

#include "core/err.h"

#include <stdlib.h>
#include <string.h>

#define MSG_MAX     4096
#define STREAMS_MAX 8

static struct h2_conn h;
static struct payload_arena arena;
static jsmntok_t toks[1024];

static void on_message(void *user, int32_t stream, enum h2_path path, const uint8_t *msg,
                       size_t len)
{
	struct payload p;
	struct json_doc d;
	struct buf *out;

	(void)user;
	if (len > MSG_MAX)
		abort();
	if (payload_decode(&arena, msg, len, &p) == 0)
		(void)json_parse(&d, p.body.p, p.body.len, toks, 1024);
	out = h2_stream_out(&h, stream);
	if (out == NULL)
		return;
	if (payload_encode(out, 1 << 16, true, "ErrorResponse", "{}", 2) < 0)
		return;
	if (path == H2_PATH_UNARY)
		h2_finish(&h, stream, GRPC_OK, NULL);
	else
		h2_flush(&h, stream);
}

static void on_close(void *user, int32_t stream, enum h2_path path)
{
	(void)user;
	(void)stream;
	(void)path;
}

static const struct h2_ops ops = { on_message, on_close };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct h2_limits lim = { MSG_MAX, STREAMS_MAX, 1 << 16 };
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	size_t chunk, off = 0;
	uint8_t *in;
	const uint8_t *d;

	if (size < 1)
		return 0;
	if (arena.p == NULL && payload_arena_init(&arena, 2 * MSG_MAX + 4096) < 0)
		abort();
	chunk = data[0] ? data[0] : (size_t)-1;
	data++;
	size--;
	/* the preface is given: the interesting input is what follows it */
	in = malloc(24 + size);
	memcpy(in, preface, 24);
	memcpy(in + 24, data, size);
	size += 24;
	if (h2_init(&h, &ops, NULL, &lim) < 0)
		abort();
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;
		long m;

		if (h2_feed(&h, in + off, n) < 0)
			break;
		if (h.streams > STREAMS_MAX)
			abort();
		off += n;
		while ((m = h2_take(&h, &d)) > 0)
			;
		if (m < 0 || h2_done(&h))
			break;
	}
	h2_free(&h);
	free(in);
	return 0;
}
