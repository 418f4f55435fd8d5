/*
 * gRPC over HTTP/2 (src/grpc/h2.h), sans I/O against nghttp2's client
 * session in memory: the client's bytes are fed to the server (whole, or
 * one byte at a time), the server's bytes to the client. Messages arrive
 * whole and once; answers carry grpc-status trailers; the bounds (message
 * size, streams) and the stream-level errors end a stream, never the
 * connection.
 */
#include "grpc/h2.h"

#include "core/err.h"

#include <criterion/criterion.h>
#include <nghttp2/nghttp2.h>
#include <string.h>

struct got {
	int32_t stream;
	enum h2_path path;
	uint8_t msg[256];
	size_t len;
};

static struct h2_conn srv;
static nghttp2_session *cli;
static struct got got[64];
static int ngot, nclosed;
static bool echo; /* answer each unary message with itself */
static int status_of[64];
static bool closed_of[64];

static void on_message(void *user, int32_t stream, enum h2_path path, const uint8_t *msg,
                       size_t len)
{
	(void)user;
	cr_assert_lt(ngot, 64);
	got[ngot].stream = stream;
	got[ngot].path = path;
	cr_assert_leq(len, sizeof(got[0].msg));
	memcpy(got[ngot].msg, msg, len);
	got[ngot].len = len;
	ngot++;
	if (echo && path == H2_PATH_UNARY) {
		struct buf *out = h2_stream_out(&srv, stream);

		cr_assert(out);
		cr_assert(buf_append(out, (uint8_t[]){ 0, 0, 0, 0, (uint8_t)len }, 5, 1 << 20));
		cr_assert(buf_append(out, msg, len, 1 << 20));
		cr_assert_eq(h2_finish(&srv, stream, GRPC_OK, NULL), 0);
	}
}

static void on_close(void *user, int32_t stream, enum h2_path path)
{
	(void)user;
	(void)stream;
	(void)path;
	nclosed++;
}

static const struct h2_ops ops = { on_message, on_close };

static int cli_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                      const uint8_t *val, size_t vl, uint8_t flags, void *user)
{
	(void)s;
	(void)flags;
	(void)user;
	(void)vl;
	if (nl == 11 && memcmp(name, "grpc-status", 11) == 0 && f->hd.stream_id < 64)
		status_of[f->hd.stream_id] = atoi((const char *)val);
	return 0;
}

static int cli_close(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
	(void)s;
	(void)code;
	(void)user;
	if (id < 64)
		closed_of[id] = true;
	return 0;
}

static int goaways;

static int cli_frame(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	(void)s;
	(void)user;
	if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code == NGHTTP2_NO_ERROR)
		goaways++;
	return 0;
}

static uint8_t echoed[1024];
static size_t echoed_len;

static int cli_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                    void *user)
{
	(void)s;
	(void)flags;
	(void)id;
	(void)user;
	cr_assert_leq(echoed_len + len, sizeof(echoed));
	memcpy(echoed + echoed_len, data, len);
	echoed_len += len;
	return 0;
}

static void setup(void)
{
	struct h2_limits lim = { .msg_bytes_max = 100, .streams_max = 4, .out_bytes_max = 1 << 20 };
	nghttp2_session_callbacks *cb;

	memset(got, 0, sizeof(got));
	memset(status_of, 0xff, sizeof(status_of));
	memset(closed_of, 0, sizeof(closed_of));
	ngot = nclosed = goaways = 0;
	echo = false;
	echoed_len = 0;
	cr_assert_eq(h2_init(&srv, &ops, NULL, &lim), 0);
	cr_assert_eq(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_on_header_callback(cb, cli_header);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, cli_close);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, cli_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, cli_frame);
	cr_assert_eq(nghttp2_session_client_new(&cli, cb, NULL), 0);
	nghttp2_session_callbacks_del(cb);
	cr_assert_eq(nghttp2_submit_settings(cli, NGHTTP2_FLAG_NONE, NULL, 0), 0);
}

static void teardown(void)
{
	h2_free(&srv);
	nghttp2_session_del(cli);
}

TestSuite(h2, .init = setup, .fini = teardown);

/* Moves bytes both ways until neither side has any; bytewise: the server gets 1 byte at a time. */
static void exchange(bool bytewise)
{
	for (int round = 0; round < 100; round++) {
		const uint8_t *d;
		ssize_t n;
		long m;
		bool moved = false;

		while ((n = nghttp2_session_mem_send(cli, &d)) > 0) {
			moved = true;
			if (bytewise)
				for (ssize_t i = 0; i < n; i++)
					cr_assert_eq(h2_feed(&srv, d + i, 1), 0, "%s", srv.error);
			else
				cr_assert_eq(h2_feed(&srv, d, (size_t)n), 0, "%s", srv.error);
		}
		while ((m = h2_take(&srv, &d)) > 0) {
			moved = true;
			cr_assert_eq(nghttp2_session_mem_recv(cli, d, (size_t)m), m);
		}
		if (!moved)
			return;
	}
	cr_assert_fail("the sessions never went quiet");
}

static uint8_t body[4096];
static size_t body_len, body_off;

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
	size_t n = body_len - body_off;

	(void)s;
	(void)id;
	(void)src;
	(void)user;
	if (n > len)
		n = len;
	memcpy(buf, body + body_off, n);
	body_off += n;
	if (body_off == body_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int32_t request(const char *path, const uint8_t *b, size_t len)
{
	nghttp2_nv nv[] = {
		{ (uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0 },
		{ (uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0 },
		{ (uint8_t *)":authority", (uint8_t *)"t", 10, 1, 0 },
		{ (uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0 },
		{ (uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0 },
	};
	nghttp2_data_provider dp = { .read_callback = read_body };

	memcpy(body, b, len);
	body_len = len;
	body_off = 0;
	return nghttp2_submit_request(cli, NULL, nv, 5, &dp, NULL);
}

/* Two messages in one DATA stream, framed by hand. */
static size_t two_messages(uint8_t *out)
{
	memcpy(out, (uint8_t[]){ 0, 0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0, 2, 'd', 'e' }, 15);
	return 15;
}

static void messages_arrive_whole(bool bytewise)
{
	uint8_t m[32];
	size_t n = two_messages(m);
	int32_t id = request("/BiRequestStream/requestBiStream", m, n);

	exchange(bytewise);
	cr_assert_eq(ngot, 2);
	cr_assert_eq(got[0].stream, id);
	cr_assert_eq(got[0].path, H2_PATH_BIDI);
	cr_assert_eq(got[0].len, 3);
	cr_assert_eq(memcmp(got[0].msg, "abc", 3), 0);
	cr_assert_eq(got[1].len, 2);
	cr_assert_eq(memcmp(got[1].msg, "de", 2), 0);
}

Test(h2, messages_arrive_whole)
{
	messages_arrive_whole(false);
}

Test(h2, messages_arrive_whole_fed_bytewise)
{
	messages_arrive_whole(true);
}

Test(h2, unary_answer_with_trailers)
{
	int32_t id;

	echo = true;
	id = request("/Request/request", (uint8_t[]){ 0, 0, 0, 0, 4, 'p', 'i', 'n', 'g' }, 9);
	exchange(false);
	cr_assert_eq(ngot, 1);
	cr_assert(closed_of[id]);
	cr_assert_eq(status_of[id], 0);
	cr_assert_eq(echoed_len, 9);
	cr_assert_eq(memcmp(echoed + 5, "ping", 4), 0);
	cr_assert_eq(nclosed, 1, "the caller heard the stream end");
}

Test(h2, stream_errors_end_the_stream_only)
{
	int32_t big, zip, path, cut, ok;

	big = request("/Request/request", (uint8_t[]){ 0, 0, 0, 0, 101 }, 5);
	exchange(false);
	zip = request("/Request/request", (uint8_t[]){ 1, 0, 0, 0, 1, 'x' }, 6);
	exchange(false);
	path = request("/Other/method", (uint8_t[]){ 0, 0, 0, 0, 1, 'x' }, 6);
	exchange(false);
	cut = request("/Request/request", (uint8_t[]){ 0, 0, 0, 0, 9, 'x' }, 6);
	exchange(false);
	echo = true;
	ok = request("/Request/request", (uint8_t[]){ 0, 0, 0, 0, 1, 'y' }, 6);
	exchange(false);
	cr_assert_eq(status_of[big], GRPC_RESOURCE_EXHAUSTED);
	cr_assert_eq(status_of[zip], GRPC_UNIMPLEMENTED);
	cr_assert_eq(status_of[path], GRPC_UNIMPLEMENTED);
	cr_assert_eq(status_of[cut], GRPC_INTERNAL);
	cr_assert_eq(status_of[ok], GRPC_OK);
	cr_assert_eq(ngot, 1, "only the good message went up");
	cr_assert_not(h2_done(&srv));
}

Test(h2, bad_preface_fails_the_connection)
{
	const char junk[] = "GET / HTTP/1.1\r\n\r\n";

	cr_assert_eq(h2_feed(&srv, (const uint8_t *)junk, sizeof(junk) - 1), -ERR_INVAL);
	cr_assert_not_null(srv.error);
}

Test(h2, streams_over_the_bound_are_refused)
{
	nghttp2_nv nv[] = {
		{ (uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0 },
		{ (uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0 },
		{ (uint8_t *)":authority", (uint8_t *)"t", 10, 1, 0 },
		{ (uint8_t *)":path", (uint8_t *)"/BiRequestStream/requestBiStream", 5, 32, 0 },
	};
	int32_t ids[8];

	exchange(false); /* SETTINGS both ways first; then open 8 bi-streams that stay open */
	for (int i = 0; i < 8; i++) {
		ids[i] = nghttp2_submit_headers(cli, NGHTTP2_FLAG_NONE, -1, NULL, nv, 4, NULL);
		cr_assert_gt(ids[i], 0);
	}
	exchange(false);
	cr_assert_leq(srv.streams, 4, "at most streams_max open: %u", srv.streams);
}

Test(h2, goaway)
{
	exchange(false);
	cr_assert_eq(goaways, 0);
	h2_goaway(&srv);
	exchange(false);
	cr_assert_eq(goaways, 1, "the client saw one GOAWAY, NO_ERROR");
}
