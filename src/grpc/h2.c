/*
 * h2.c - gRPC over HTTP/2 on nghttp2's server session, fed from memory
 * (h2.h).
 *
 * Why nghttp2: HTTP/2 is a large protocol to get right on hostile input
 * (HPACK with its dynamic table, flow control in both directions, stream
 * states, SETTINGS, PING and the flood defences of CVE-2019-9511..9518 and
 * CVE-2023-44487). nghttp2 is maintained, in Debian, and has a memory API
 * (nghttp2_session_mem_recv / mem_send) with no I/O and no threads of its
 * own, so the worker's io_uring, receive buffers and one-send-per-loop
 * stay as they are. gRPC's part on top is small and is here.
 *
 * Ownership: one struct h2_conn per TCP connection, used by the worker
 * thread that holds the connection only. Per stream, a struct h2_stream
 * (nghttp2's stream user data) holds the partial inbound message (at most
 * 5 + msg_bytes_max bytes) and the outbound messages not yet framed (at
 * most out_bytes_max); it is freed by nghttp2's stream-close callback,
 * after on_close told the caller. Outbound DATA is read from that buffer
 * by a data provider that answers "deferred" when it is empty; h2_flush
 * resumes it. Trailers are submitted from the provider when the buffer is
 * drained and the stream was finished (nghttp2 allows this inside the
 * read callback), so they always follow the last message.
 *
 * Bounds on a client: besides each stream's message, the partial
 * messages of all its streams together are at most H2_HELD_MAX (two
 * whole messages): nghttp2 keeps the window open with automatic
 * WINDOW_UPDATEs, so without it one connection could hold streams_max
 * times a message. A stream that would pass it is refused
 * (RESOURCE_EXHAUSTED), the others go on. CMake requires nghttp2 1.52 or
 * later: Debian 12's carries the fixes of CVE-2023-44487 (rapid reset)
 * and CVE-2024-28182 (unbounded CONTINUATION).
 *
 * Errors inside a stream (unknown path, a message too large, compressed
 * messages, a message cut by END_STREAM) end that stream with a gRPC
 * status and never the connection; errors of the connection (bad preface,
 * a frame over our SETTINGS_MAX_FRAME_SIZE, HPACK errors, floods) make
 * h2_feed fail, with nghttp2's GOAWAY queued for the caller to send.
 */
#include "grpc/h2.h"

#include "core/err.h"
#include "core/mem.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <string.h>

struct h2_stream {
	struct h2_stream *next, *prev; /* the connection's streams (h2_conn.list) */
	int32_t id;
	uint8_t path; /* enum h2_path, 0: not one of ours */
	bool bad;     /* refused already: ignore the rest of its input */
	bool headers_sent;
	bool ending; /* h2_finish: trailers once out is drained */
	bool finished;
	int status;
	uint32_t hdr_bytes;
	struct buf in;
	struct buf out;
	char msg[160];
};

static struct h2_stream *stream_of(struct h2_conn *h, int32_t id)
{
	return nghttp2_session_get_stream_user_data(h->s, id);
}

static int send_trailers_only(struct h2_conn *h, struct h2_stream *st, int status, const char *msg)
{
	char code[12];
	nghttp2_nv nv[4];
	size_t n = 0;

	snprintf(code, sizeof(code), "%d", status);
#define NV(k, v) (nghttp2_nv){ (uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), 0 }
	nv[n++] = NV(":status", "200");
	nv[n++] = NV("content-type", "application/grpc");
	nv[n++] = NV("grpc-status", code);
	if (msg && *msg)
		nv[n++] = NV("grpc-message", msg);
	st->headers_sent = st->finished = true;
	return nghttp2_submit_response(h->s, st->id, nv, n, NULL);
}

static int submit_trailers(struct h2_conn *h, struct h2_stream *st)
{
	char code[12];
	nghttp2_nv nv[2];
	size_t n = 0;

	snprintf(code, sizeof(code), "%d", st->status);
	nv[n++] = NV("grpc-status", code);
	if (st->msg[0])
		nv[n++] = NV("grpc-message", st->msg);
#undef NV
	st->finished = true;
	return nghttp2_submit_trailer(h->s, st->id, nv, n);
}

static ssize_t read_out(nghttp2_session *s, int32_t id, uint8_t *dst, size_t cap, uint32_t *flags,
                        nghttp2_data_source *src, void *user)
{
	struct h2_stream *st = src->ptr;
	size_t n = buf_used(&st->out);

	(void)s;
	(void)id;
	if (n > cap)
		n = cap;
	if (n) {
		memcpy(dst, st->out.p + st->out.off, n);
		buf_consume(&st->out, n);
	}
	if (buf_used(&st->out) == 0) {
		if (st->ending && !st->finished) {
			*flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
			if (submit_trailers(user, st) != 0)
				return NGHTTP2_ERR_CALLBACK_FAILURE;
			return (ssize_t)n;
		}
		if (n == 0)
			return NGHTTP2_ERR_DEFERRED;
	}
	return (ssize_t)n;
}

static int start_response(struct h2_conn *h, struct h2_stream *st)
{
	nghttp2_nv nv[2] = {
		{ (uint8_t *)":status", (uint8_t *)"200", 7, 3, 0 },
		{ (uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0 },
	};
	nghttp2_data_provider dp = { .source.ptr = st, .read_callback = read_out };

	st->headers_sent = true;
	return nghttp2_submit_response(h->s, st->id, nv, 2, &dp);
}

/* ---- callbacks ---- */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	struct h2_conn *h = user;
	struct h2_stream *st;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (h->streams >= h->lim.streams_max) {
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id,
		                          NGHTTP2_REFUSED_STREAM);
		return 0;
	}
	st = mem_calloc(1, sizeof(*st));
	if (st == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets this stream */
	st->id = f->hd.stream_id;
	st->next = h->list;
	if (h->list)
		h->list->prev = st;
	h->list = st;
	nghttp2_session_set_stream_user_data(s, st->id, st);
	h->streams++;
	return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *val, size_t vlen, uint8_t flags, void *user)
{
	struct h2_stream *st = stream_of(user, f->hd.stream_id);

	(void)s;
	(void)flags;
	if (st == NULL || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	st->hdr_bytes += (uint32_t)(nlen + vlen + 32);
	if (st->hdr_bytes > H2_HEADER_BYTES_MAX)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0; /* trailers of a request: nothing we read */
	if (nlen == 5 && memcmp(name, ":path", 5) == 0) {
		if (vlen == 16 && memcmp(val, "/Request/request", 16) == 0)
			st->path = H2_PATH_UNARY;
		else if (vlen == 32 && memcmp(val, "/BiRequestStream/requestBiStream", 32) == 0)
			st->path = H2_PATH_BIDI;
	}
	return 0;
}

/* Drops a stream's partial message from the connection's held count. */
static void held_drop(struct h2_conn *h, struct h2_stream *st)
{
	h->in_held -= buf_used(&st->in);
	buf_free(&st->in);
}

static void stream_refuse(struct h2_conn *h, struct h2_stream *st, int status, const char *msg)
{
	st->bad = true;
	held_drop(h, st);
	if (st->finished)
		return;
	if (!st->headers_sent) {
		send_trailers_only(h, st, status, msg);
		return;
	}
	buf_clear(&st->out);
	h2_finish(h, st->id, status, msg);
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	struct h2_conn *h = user;
	struct h2_stream *st;

	(void)s;
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	st = stream_of(h, f->hd.stream_id);
	if (st == NULL || st->bad)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
		if (st->path == 0) {
			stream_refuse(h, st, GRPC_UNIMPLEMENTED, "unknown service or method");
			return 0;
		}
		/*
		 * A bi-stream's response headers go at once: a client (tonic) waits
		 * for them before its call returns, and the server may push first.
		 */
		if (st->path == H2_PATH_BIDI && start_response(h, st) != 0)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && buf_used(&st->in) > 0)
		stream_refuse(h, st, GRPC_INTERNAL, "stream ended inside a message");
	return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
	struct h2_conn *h = user;
	struct h2_stream *st = stream_of(h, id);

	(void)s;
	(void)flags;
	if (st == NULL || st->bad || st->path == 0)
		return 0;
	while (len > 0 && !st->bad) {
		const uint8_t *p;
		size_t have, take;
		uint32_t mlen;

		/* Whole messages straight from the frame when nothing is held. */
		if (buf_used(&st->in) == 0 && len >= 5) {
			mlen = (uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 |
			       (uint32_t)data[3] << 8 | data[4];
			if (data[0] != 0) {
				stream_refuse(h, st, GRPC_UNIMPLEMENTED, "compressed messages");
				return 0;
			}
			if (mlen > h->lim.msg_bytes_max) {
				stream_refuse(h, st, GRPC_RESOURCE_EXHAUSTED,
				              "message larger than the server's bound");
				return 0;
			}
			if (len - 5 >= mlen) {
				h->ops->on_message(h->user, id, (enum h2_path)st->path, data + 5,
				                   mlen);
				data += 5 + mlen;
				len -= 5 + mlen;
				continue;
			}
		}
		/* Otherwise collect: the prefix first, then exactly the message. */
		have = buf_used(&st->in);
		if (have < 5) {
			take = 5 - have < len ? 5 - have : len;
		} else {
			p = st->in.p + st->in.off;
			mlen = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 |
			       p[4];
			take = 5 + mlen - have < len ? 5 + mlen - have : len;
		}
		/*
		 * The connection's partial messages together are bounded too
		 * (H2_HELD_MAX): otherwise one client holds streams_max times a
		 * message, the window kept open by nghttp2's WINDOW_UPDATEs.
		 */
		if (h->in_held + take > H2_HELD_MAX(&h->lim)) {
			stream_refuse(h, st, GRPC_RESOURCE_EXHAUSTED,
			              "too many partial messages on this connection");
			return 0;
		}
		if (!buf_append(&st->in, data, take, 5 + (size_t)h->lim.msg_bytes_max)) {
			stream_refuse(h, st, GRPC_RESOURCE_EXHAUSTED, "out of memory");
			return 0;
		}
		h->in_held += take;
		data += take;
		len -= take;
		have = buf_used(&st->in);
		p = st->in.p + st->in.off;
		if (have < 5)
			continue;
		mlen = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
		if (p[0] != 0) {
			stream_refuse(h, st, GRPC_UNIMPLEMENTED, "compressed messages");
			return 0;
		}
		if (mlen > h->lim.msg_bytes_max) {
			stream_refuse(h, st, GRPC_RESOURCE_EXHAUSTED,
			              "message larger than the server's bound");
			return 0;
		}
		if (have == 5 + (size_t)mlen) {
			h->ops->on_message(h->user, id, (enum h2_path)st->path, p + 5, mlen);
			st = stream_of(h, id);
			if (st == NULL)
				return 0;
			h->in_held -= buf_used(&st->in);
			buf_clear(&st->in);
			if (st->in.cap > 4 * BUF_FIRST_BYTES)
				buf_free(&st->in);
		}
	}
	return 0;
}

static void stream_free(struct h2_conn *h, struct h2_stream *st);

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
	struct h2_conn *h = user;
	struct h2_stream *st = stream_of(h, id);

	(void)code;
	if (st == NULL)
		return 0;
	if (st->path)
		h->ops->on_close(h->user, id, (enum h2_path)st->path);
	nghttp2_session_set_stream_user_data(s, id, NULL);
	stream_free(h, st);
	return 0;
}

static void stream_free(struct h2_conn *h, struct h2_stream *st)
{
	if (st->prev)
		st->prev->next = st->next;
	else
		h->list = st->next;
	if (st->next)
		st->next->prev = st->prev;
	held_drop(h, st);
	buf_free(&st->out);
	mem_free(st);
	h->streams--;
}

/* ---- the session ---- */

int h2_init(struct h2_conn *h, const struct h2_ops *ops, void *user, const struct h2_limits *lim)
{
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_option *opt = NULL;
	nghttp2_settings_entry set[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, lim->streams_max },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, H2_HEADER_BYTES_MAX },
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
	};
	int rc = -ERR_NOMEM;

	memset(h, 0, sizeof(*h));
	h->ops = ops;
	h->user = user;
	h->lim = *lim;
	if (nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
		goto out;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	/* Streams past the bound are refused by nghttp2 itself once SETTINGS is acked. */
	nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
	if (nghttp2_session_server_new2(&h->s, cb, h, opt) != 0)
		goto out;
	if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, set, sizeof(set) / sizeof(set[0])) !=
	    0) {
		nghttp2_session_del(h->s);
		h->s = NULL;
		goto out;
	}
	rc = 0;
out:
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	return rc;
}

void h2_free(struct h2_conn *h)
{
	if (h->s) {
		/* nghttp2 frees its streams without callbacks: ours go here. */
		nghttp2_session_del(h->s);
		h->s = NULL;
	}
	while (h->list)
		stream_free(h, h->list);
}

int h2_feed(struct h2_conn *h, const uint8_t *data, size_t len)
{
	ssize_t n = nghttp2_session_mem_recv(h->s, data, len);

	if (n < 0) {
		h->error = nghttp2_strerror((int)n);
		return -ERR_INVAL;
	}
	return 0;
}

long h2_take(struct h2_conn *h, const uint8_t **data)
{
	ssize_t n = nghttp2_session_mem_send(h->s, data);

	if (n < 0) {
		h->error = nghttp2_strerror((int)n);
		return -ERR_NOMEM;
	}
	return (long)n;
}

bool h2_done(const struct h2_conn *h)
{
	return !nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s);
}

struct buf *h2_stream_out(struct h2_conn *h, int32_t stream)
{
	struct h2_stream *st = stream_of(h, stream);

	return st && !st->ending && !st->finished && !st->bad ? &st->out : NULL;
}

size_t h2_out_held(const struct h2_conn *h)
{
	size_t n = 0;

	for (const struct h2_stream *st = h->list; st; st = st->next)
		n += buf_used(&st->out);
	return n;
}

int h2_flush(struct h2_conn *h, int32_t stream)
{
	struct h2_stream *st = stream_of(h, stream);

	if (st == NULL || st->finished)
		return 0;
	if (!st->headers_sent)
		return start_response(h, st) == 0 ? 0 : -ERR_NOMEM;
	(void)nghttp2_session_resume_data(h->s, stream); /* not deferred: nothing to do */
	return 0;
}

int h2_finish(struct h2_conn *h, int32_t stream, int status, const char *msg)
{
	struct h2_stream *st = stream_of(h, stream);

	if (st == NULL || st->finished || st->ending)
		return 0;
	if (!st->headers_sent && buf_used(&st->out) == 0)
		return send_trailers_only(h, st, status, msg) == 0 ? 0 : -ERR_NOMEM;
	st->ending = true;
	st->status = status;
	snprintf(st->msg, sizeof(st->msg), "%s", msg ? msg : "");
	return h2_flush(h, stream);
}

void h2_goaway(struct h2_conn *h)
{
	int32_t last = nghttp2_session_get_last_proc_stream_id(h->s);

	(void)nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, NULL, 0);
}
