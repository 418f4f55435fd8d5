/*
 * test_grpc_input.c - bad input on the Nacos 2.x gRPC port of a real
 * distrod: a bad or silent preface, malformed messages and bodies, a
 * stream reset mid-message, an oversized frame, partial messages held on
 * many streams, a message never finished. Each is answered with a gRPC
 * error or a closed connection, and another connection is served
 * meanwhile (test_grpc.c has the protocol's normal paths).
 */
#include "grpc_suite.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(grpc, .init = start, .fini = stop, .timeout = 120);

/* ---- malformed input ---- */

/* Another connection still works: the node was not harmed. */
static void still_serving(void)
{
	struct gcli c;
	struct gmsg a;

	gcli_connect(&c, nd.grpc_port);
	cr_assert_eq(gcli_call(&c, "ServerCheckRequest", "{\"requestId\":\"ok\"}", &a), 0);
	cr_assert_str_eq(a.type, "ServerCheckResponse");
	gmsg_free(&a);
	gcli_close(&c);
}

/* Reads raw until EOF within ms: true when the server closed the connection. */
static bool raw_closed(int fd, int ms)
{
	char buf[4096];

	for (int64_t end = now_ms() + ms; now_ms() < end;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 50) > 0) {
			ssize_t n = recv(fd, buf, sizeof(buf), 0);

			if (n <= 0)
				return true;
		}
	}
	return false;
}

Test(grpc, bad_preface_closes_only_that_connection)
{
	struct gcli keep;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(nd.grpc_port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\nnot an HTTP/2 preface at all...";

	setup_conn(&keep, NULL, 0);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(send(fd, junk, sizeof(junk) - 1, 0), (ssize_t)sizeof(junk) - 1);
	cr_assert(raw_closed(fd, 3000), "a bad preface closes the connection");
	close(fd);
	{
		struct gmsg m;

		cr_assert_eq(gcli_call(&keep, "ServerCheckRequest", "{\"requestId\":\"k\"}", &m),
		             0);
		cr_assert_str_eq(m.type, "ServerCheckResponse");
		gmsg_free(&m);
	}
	gcli_close(&keep);
	still_serving();
}

Test(grpc, silent_preface_times_out)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(nd.grpc_port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	/* Half a preface, then nothing: --header-timeout (1 s for this suite's node) */
	cr_assert_eq(send(fd, "PRI * HTTP/2.0\r\n", 16, 0), 16);
	cr_assert(raw_closed(fd, 3000), "closed within --header-timeout");
	close(fd);
	still_serving();
}

/* Sends raw gRPC message bytes on a unary stream; returns the stream. */
static struct gstream *raw_unary(struct gcli *c, const uint8_t *body, size_t len)
{
	return gcli_open(c, "/Request/request", body, len, true);
}

Test(grpc, malformed_messages_get_grpc_errors)
{
	struct gcli c;
	struct gstream *st;
	struct gmsg a;
	uint8_t *m;
	size_t n;
	uint8_t big[5] = { 0, 0x00, 0x50, 0x00, 0x00 };        /* 5 MiB announced */
	uint8_t zipped[10] = { 1, 0, 0, 0, 5, 1, 2, 3, 4, 5 }; /* compressed flag */
	uint8_t notpb[10] = { 0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff };

	setup_conn(&c, NULL, 0);
	st = raw_unary(&c, big, sizeof(big));
	cr_assert(gcli_wait_closed(&c, st, 3000));
	cr_assert_eq(st->grpc_status, 8, "oversized message: RESOURCE_EXHAUSTED");
	st = raw_unary(&c, zipped, sizeof(zipped));
	cr_assert(gcli_wait_closed(&c, st, 3000));
	cr_assert_eq(st->grpc_status, 12, "compressed: UNIMPLEMENTED");
	st = raw_unary(&c, notpb, sizeof(notpb));
	cr_assert(gcli_wait_closed(&c, st, 3000));
	cr_assert_eq(st->grpc_status, 3, "not a Payload: INVALID_ARGUMENT");
	/* a message cut by END_STREAM */
	n = gmsg_encode("ServerCheckRequest", "{}", 2, &m);
	st = raw_unary(&c, m, n - 3);
	free(m);
	cr_assert(gcli_wait_closed(&c, st, 3000));
	cr_assert_eq(st->grpc_status, 13, "cut message: INTERNAL");
	/* an unknown method */
	n = gmsg_encode("ServerCheckRequest", "{}", 2, &m);
	st = gcli_open(&c, "/No/such", m, n, true);
	free(m);
	cr_assert(gcli_wait_closed(&c, st, 3000));
	cr_assert_eq(st->grpc_status, 12, "unknown path: UNIMPLEMENTED");
	/* broken JSON: an ErrorResponse */
	cr_assert_eq(gcli_call(&c, "InstanceRequest", "{\"requestId\":", &a), 0);
	cr_assert_str_eq(a.type, "ErrorResponse");
	cr_assert_str_eq(nj_s(gjson(&a), 0, "resultCode"), "500");
	cr_assert_str_eq(nj_s(gjson(&a), 0, "errorCode"), "502");
	gmsg_free(&a);
	/* The connection itself still works. */
	cr_assert_eq(gcli_call(&c, "HealthCheckRequest", "{\"requestId\":\"h\"}", &a), 0);
	cr_assert_str_eq(a.type, "HealthCheckResponse");
	gmsg_free(&a);
	gcli_close(&c);
	still_serving();
}

Test(grpc, stream_reset_mid_message)
{
	struct gcli c;
	struct gstream *st;
	struct gmsg a;
	uint8_t *m;
	size_t n = gmsg_encode("ServerCheckRequest", "{\"requestId\":\"1\"}", 17, &m);

	setup_conn(&c, NULL, 0);
	/* half a message, no END_STREAM, then RST_STREAM */
	st = gcli_open(&c, "/Request/request", m, n / 2, false);
	free(m);
	for (int i = 0; i < 5; i++)
		gcli_io(&c, 10);
	nghttp2_submit_rst_stream(c.s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
	gcli_io(&c, 10);
	cr_assert_eq(gcli_call(&c, "HealthCheckRequest", "{\"requestId\":\"h\"}", &a), 0);
	cr_assert_str_eq(a.type, "HealthCheckResponse");
	gmsg_free(&a);
	gcli_close(&c);
	still_serving();
}

Test(grpc, oversized_frame_closes_the_connection)
{
	struct gcli keep;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(nd.grpc_port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	static uint8_t buf[24 + 9 + 9 + 100000];
	size_t n = 0;

	setup_conn(&keep, NULL, 0);
	memcpy(buf, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
	n = 24;
	/* an empty SETTINGS */
	memcpy(buf + n, (uint8_t[]){ 0, 0, 0, 4, 0, 0, 0, 0, 0 }, 9);
	n += 9;
	/* a DATA frame of 100,000 bytes: over SETTINGS_MAX_FRAME_SIZE (16384) */
	memcpy(buf + n, (uint8_t[]){ 0x01, 0x86, 0xa0, 0, 0, 0, 0, 0, 1 }, 9);
	n += 9 + 100000;
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(send(fd, buf, n, MSG_NOSIGNAL), (ssize_t)n);
	cr_assert(raw_closed(fd, 3000), "a frame over the size bound closes the connection");
	close(fd);
	{
		struct gmsg m;

		cr_assert_eq(gcli_call(&keep, "HealthCheckRequest", "{\"requestId\":\"k\"}", &m),
		             0);
		cr_assert_str_eq(m.type, "HealthCheckResponse");
		gmsg_free(&m);
	}
	gcli_close(&keep);
}

static long rss_kb(pid_t pid)
{
	char p[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
	f = fopen(p, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/*
 * Partial messages on many streams of one connection (each claims 4 MiB
 * and stops 16 bytes short): the connection holds at most H2_HELD_MAX of
 * them, the other streams are refused with RESOURCE_EXHAUSTED, and
 * another connection is served meanwhile. Its own node, with a
 * --header-timeout of 10 s: the bound under test is the count of held
 * messages, and the 240 MiB must not have to arrive within the 1 s
 * deadline of the other suites (a loaded machine took longer, and the
 * connection was closed before every stream was refused).
 */
static void start_partial(void)
{
	const char *more[] = { "--header-timeout", "10000", NULL };

	start_with(more);
}

TestSuite(grpc_partial, .init = start_partial, .fini = stop, .timeout = 120);

Test(grpc_partial, bounded_per_connection)
{
	struct gcli c, other;
	struct gmsg a;
	long before, after;
	size_t body = (4u << 20) - 16;
	uint8_t *m = calloc(1, 5 + body);
	int streams = 60, refused = 0;

	cr_assert_not_null(m);
	setup_conn(&c, NULL, 0);
	before = rss_kb(nd.pid);
	m[2] = 0x40; /* claims 4 MiB, sends 4 MiB - 16 */
	for (int i = 0; i < streams; i++)
		gcli_open(&c, "/Request/request", m, 5 + body, false);
	free(m);
	/*
	 * Until everything is sent and the refusals are in: a slow node (a
	 * TSan build) may still be answering when the last bytes are sent.
	 */
	for (int64_t end = now_ms() + 20000; now_ms() < end;) {
		bool left = false;
		int closed = 0;

		if (!gcli_io(&c, 20))
			break;
		for (int i = 0; i < c.nst; i++) {
			left = left || (!c.st[i].bi && !c.st[i].closed &&
			                c.st[i].out_off < c.st[i].out_len);
			closed += !c.st[i].bi && c.st[i].closed;
		}
		if (!left && closed >= streams - 3)
			break;
	}
	after = rss_kb(nd.pid);
	for (int i = 0; i < c.nst; i++)
		refused += !c.st[i].bi && c.st[i].grpc_status == 8; /* RESOURCE_EXHAUSTED */
	cr_log_info("distrod RSS %ld kB -> %ld kB, %d of %d streams refused", before, after,
	            refused, streams);
	cr_assert_geq(refused, streams - 3, "only %d of %d partial streams refused", refused,
	              streams);
	/*
	 * Unbounded, the 60 partial messages alone are 240 MiB. Bounded, the
	 * growth is the two held messages (with their buffers' doublings),
	 * the receive buffers the 240 MiB went through and ASan's quarantine
	 * and shadow: about 100 MiB under ASan.
	 */
	cr_assert_lt(after - before, 160 * 1024, "RSS grew by %ld kB for one connection",
	             after - before);
	setup_conn(&other, NULL, 0); /* served meanwhile */
	cr_assert_eq(gcli_call(&other, "ServerCheckRequest", "{\"requestId\":\"1\"}", &a), 0);
	gmsg_free(&a);
	gcli_close(&other);
	gcli_close(&c);
}

/*
 * A message started and never finished: after the first message,
 * --header-timeout (1 s here) still bounds how long a connection may hold
 * a partial message without completing one.
 */
Test(grpc, unfinished_message_has_a_deadline)
{
	struct gcli c;
	uint8_t part[15] = { 0, 0, 0, 0x03, 0xe8 }; /* claims 1000 bytes, sends 10 */
	bool open = true;
	int64_t start;

	setup_conn(&c, NULL, 0);
	gcli_open(&c, "/Request/request", part, sizeof(part), false);
	start = now_ms();
	for (int64_t end = start + 5000; open && now_ms() < end;)
		open = gcli_io(&c, 20);
	cr_assert(!open, "a connection holding an unfinished message is closed");
	cr_assert_geq(now_ms() - start, 900, "not before --header-timeout");
	gcli_close(&c);
}
