/*
 * h2.h - gRPC over cleartext HTTP/2 (prior knowledge) for one server
 * connection, sans I/O: bytes in, bytes out, messages up.
 *
 * The caller owns the socket (the worker's io_uring): it feeds what it
 * received (h2_feed), takes what is to be sent (h2_take) into its own send
 * buffer, and sends when it sends everything else. HTTP/2 itself (HPACK,
 * SETTINGS, flow control and WINDOW_UPDATE, PING answers, stream states,
 * GOAWAY) is nghttp2's; this module adds gRPC: the request path chosen at
 * the HEADERS, 5-byte length-prefixed messages reassembled from DATA
 * frames and handed up whole, answers as HEADERS + DATA + trailers
 * (grpc-status, grpc-message), or trailers alone for an error before any
 * message.
 *
 * Bounds: a message over h2_limits.msg_bytes_max is refused with
 * RESOURCE_EXHAUSTED (8) and the stream ends, before its bytes are held;
 * at most streams_max streams are open at once (SETTINGS, and streams past
 * it are refused with REFUSED_STREAM); a stream's unsent output is at most
 * out_bytes_max (a client that stops reading its window cannot make us
 * hold more; the caller closes it); a request's header block is at most
 * H2_HEADER_BYTES_MAX.
 */
#ifndef DISTRO_GRPC_H2_H
#define DISTRO_GRPC_H2_H

#include "core/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define H2_HEADER_BYTES_MAX 16384

/* gRPC status codes used here (grpc/doc/statuscodes.md) */
enum {
	GRPC_OK = 0,
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_UNIMPLEMENTED = 12,
	GRPC_INTERNAL = 13,
	GRPC_UNAVAILABLE = 14,
};

/* What a stream's :path asked for. */
enum h2_path {
	H2_PATH_UNARY = 1, /* /Request/request */
	H2_PATH_BIDI = 2,  /* /BiRequestStream/requestBiStream */
};

struct h2_ops {
	/* A whole message (without its 5-byte prefix) on stream. */
	void (*on_message)(void *user, int32_t stream, enum h2_path path, const uint8_t *msg,
	                   size_t len);
	/* A stream of path ended (either side, reset or finished); its id is gone after. */
	void (*on_close)(void *user, int32_t stream, enum h2_path path);
};

struct h2_limits {
	uint32_t msg_bytes_max;
	uint32_t streams_max;
	size_t out_bytes_max; /* unsent bytes of one stream */
};

/* The partial inbound messages one connection may hold, all streams together. */
#define H2_HELD_MAX(lim) (2 * (5 + (size_t)(lim)->msg_bytes_max))

struct h2_stream;

struct h2_conn {
	struct nghttp2_session *s;
	const struct h2_ops *ops;
	void *user;
	struct h2_limits lim;
	uint32_t streams; /* open, with state */
	size_t in_held;   /* bytes of partial inbound messages, all streams: <= H2_HELD_MAX */
	struct h2_stream *list;
	const char *error; /* why a feed failed (static text) */
};

/* A server session that has queued its SETTINGS. 0 or -ERR_NOMEM. */
int h2_init(struct h2_conn *h, const struct h2_ops *ops, void *user, const struct h2_limits *lim);
void h2_free(struct h2_conn *h);

/*
 * Feeds received bytes (any split). Callbacks run from inside. 0, or
 * -ERR_INVAL when the connection is broken (bad preface, a protocol error,
 * a flood): h->error says why; output may hold a GOAWAY to send before
 * closing.
 */
int h2_feed(struct h2_conn *h, const uint8_t *data, size_t len);

/*
 * The next bytes to send, *data valid until the next h2_* call: their
 * count, 0 when nothing is due (flow control may hold data back), or
 * -ERR_NOMEM.
 */
long h2_take(struct h2_conn *h, const uint8_t **data);

/* Whether the session is over (GOAWAY both ways, or a fatal error): close after sending. */
bool h2_done(const struct h2_conn *h);

/*
 * The unsent output buffer of an open stream, to append gRPC messages
 * to (payload_encode with the frame prefix, bounded by the limit's
 * out_bytes_max), then h2_flush. NULL when the stream is gone or finished.
 */
struct buf *h2_stream_out(struct h2_conn *h, int32_t stream);
/*
 * Bytes of outbound messages not yet framed, all streams together (held
 * back by the client's flow-control windows). Walks the open streams.
 */
size_t h2_out_held(const struct h2_conn *h);

/* Sends the response headers if not yet, and what the stream's buffer holds as flow allows. */
int h2_flush(struct h2_conn *h, int32_t stream);

/*
 * Ends a stream with status (grpc-status) and msg (grpc-message, ASCII
 * without '%', may be NULL) after its buffered messages; trailers only if
 * nothing was sent yet. A stream already finished is left as it is.
 */
int h2_finish(struct h2_conn *h, int32_t stream, int status, const char *msg);

/* Shutdown: GOAWAY (NO_ERROR) naming the last stream seen; open streams may finish. */
void h2_goaway(struct h2_conn *h);

#endif
