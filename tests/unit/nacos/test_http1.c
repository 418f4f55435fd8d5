/*
 * nacos/http1.h: request framing over http-parser, in place. Every split
 * point of a request with a body gives the same request; pipelined
 * requests stop at their end; each refusal has its status, with the
 * bounds exactly at their limits; and the spans point into the request.
 */
#include "nacos/http1.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char post[] = "POST /nacos/v1/ns/instance?serviceName=s HTTP/1.1\r\n"
                           "Host: t\r\n"
                           "content-TYPE: application/x-www-form-urlencoded\r\n"
                           "User-Agent: Nacos-Java-Client:v1.0.0\r\n"
                           "Client-Version: v1\r\n"
                           "Authorization: Bearer x\r\n"
                           "Expect: 100-continue\r\n"
                           "Content-Length: 23\r\n"
                           "\r\n"
                           "ip=192.0.2.1&port=80&x=";

static void span_is(const char *req, struct h1_span s, const char *want)
{
	cr_assert(s.set, "span of \"%s\" not set", want);
	cr_assert_eq(s.len, strlen(want), "%.*s vs %s", (int)s.len, h1_at(req, s), want);
	cr_assert(memcmp(h1_at(req, s), want, s.len) == 0, "%.*s vs %s", (int)s.len, h1_at(req, s),
	          want);
}

static void check_post(const struct h1_req *r, const char *req)
{
	cr_assert(r->done);
	cr_assert_eq(r->status, 0);
	cr_assert_eq(r->fed, sizeof(post) - 1);
	cr_assert_eq(r->method, H1_POST);
	cr_assert(r->keep_alive);
	span_is(req, r->url, "/nacos/v1/ns/instance?serviceName=s");
	span_is(req, r->body, "ip=192.0.2.1&port=80&x=");
	span_is(req, r->headers[H1_H_CONTENT_TYPE], "application/x-www-form-urlencoded");
	span_is(req, r->headers[H1_H_USER_AGENT], "Nacos-Java-Client:v1.0.0");
	span_is(req, r->headers[H1_H_CLIENT_VERSION], "v1");
	span_is(req, r->headers[H1_H_AUTHORIZATION], "Bearer x");
	span_is(req, r->headers[H1_H_EXPECT], "100-continue");
}

/* Feeds req[0, n) as the worker does: bytes revealed up to each cut in turn. */
static int feed_cuts(struct h1_req *r, const char *req, size_t n, const size_t *cuts, int ncuts)
{
	int rc = H1_AGAIN;

	for (int i = 0; i <= ncuts && rc == H1_AGAIN; i++) {
		size_t upto = i < ncuts ? cuts[i] : n;

		if (upto < r->fed)
			continue;
		rc = h1_feed(r, req + r->fed, upto - r->fed);
		if (rc == H1_AGAIN)
			cr_assert_eq(r->fed, upto, "AGAIN takes every byte");
	}
	return rc;
}

Test(http1, whole_request)
{
	struct h1_req r;

	h1_init(&r);
	cr_assert_eq(h1_feed(&r, post, sizeof(post) - 1), H1_DONE);
	check_post(&r, post);
}

Test(http1, every_split_point_of_a_request_with_a_body)
{
	size_t n = sizeof(post) - 1;

	for (size_t cut = 0; cut <= n; cut++) {
		/* a fresh heap copy each time: the request's bytes and nothing around them */
		char *req = malloc(n);
		struct h1_req r;

		memcpy(req, post, n);
		h1_init(&r);
		cr_assert_eq(feed_cuts(&r, req, n, &cut, 1), H1_DONE, "cut at %zu", cut);
		check_post(&r, req);
		free(req);
	}
}

Test(http1, every_pair_of_split_points)
{
	size_t n = sizeof(post) - 1;

	for (size_t a = 1; a < n; a += 3)
		for (size_t b = a; b < n; b += 5) {
			size_t cuts[2] = { a, b };
			struct h1_req r;

			h1_init(&r);
			cr_assert_eq(feed_cuts(&r, post, n, cuts, 2), H1_DONE, "cuts %zu %zu", a,
			             b);
			check_post(&r, post);
		}
}

Test(http1, one_byte_at_a_time)
{
	struct h1_req r;
	size_t n = sizeof(post) - 1;
	int rc = H1_AGAIN;

	h1_init(&r);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(rc, H1_AGAIN, "done early at %zu", i);
		rc = h1_feed(&r, post + i, 1);
		if (i >= 1 && i + 1 < n && rc == H1_AGAIN)
			cr_assert_eq(r.fed, i + 1);
	}
	cr_assert_eq(rc, H1_DONE);
	check_post(&r, post);
	/* Headers complete before the body: what the worker's 100-continue looks at. */
	h1_init(&r);
	cr_assert_eq(h1_feed(&r, post, sizeof(post) - 1 - 23), H1_AGAIN);
	cr_assert(r.head_done);
	span_is(post, r.headers[H1_H_EXPECT], "100-continue");
}

Test(http1, zero_bytes_is_again)
{
	struct h1_req r;

	h1_init(&r);
	cr_assert_eq(h1_feed(&r, post, 0), H1_AGAIN);
	cr_assert_eq(r.fed, 0);
	cr_assert_eq(h1_feed(&r, post, sizeof(post) - 1), H1_DONE);
	check_post(&r, post);
	cr_assert_eq(h1_feed(&r, post, 10), H1_DONE, "a done request stays done");
}

Test(http1, pipelined_requests_stop_at_their_end)
{
	char buf[2048];
	static const char get[] = "GET /nacos/v1/ns/instance/list?serviceName=s HTTP/1.1\r\n"
	                          "Host: t\r\n\r\n";
	static const char del[] = "DELETE /nacos/v1/ns/instance?serviceName=s&ip=192.0.2.1&port=80 "
	                          "HTTP/1.1\r\nConnection: close\r\n\r\n";
	size_t n = 0, off = 0;
	struct h1_req r;

	memcpy(buf + n, post, sizeof(post) - 1), n += sizeof(post) - 1;
	memcpy(buf + n, get, sizeof(get) - 1), n += sizeof(get) - 1;
	memcpy(buf + n, del, sizeof(del) - 1), n += sizeof(del) - 1;
	h1_init(&r);
	cr_assert_eq(h1_feed(&r, buf, n), H1_DONE);
	check_post(&r, buf);
	off += r.fed;
	h1_init(&r);
	cr_assert_eq(h1_feed(&r, buf + off, n - off), H1_DONE);
	cr_assert_eq(r.fed, sizeof(get) - 1);
	cr_assert_eq(r.method, H1_GET);
	cr_assert(!r.body.set);
	cr_assert(r.keep_alive);
	span_is(buf + off, r.url, "/nacos/v1/ns/instance/list?serviceName=s");
	off += r.fed;
	h1_init(&r);
	cr_assert_eq(h1_feed(&r, buf + off, n - off), H1_DONE);
	cr_assert_eq(r.fed, sizeof(del) - 1);
	cr_assert_eq(r.method, H1_DELETE);
	cr_assert(!r.keep_alive, "Connection: close");
	cr_assert_eq(off + r.fed, n);
}

Test(http1, methods_and_keep_alive)
{
	static const struct {
		const char *req;
		uint8_t method;
		bool keep_alive;
	} cases[] = {
		{ "GET / HTTP/1.1\r\n\r\n", H1_GET, true },
		{ "HEAD / HTTP/1.1\r\n\r\n", H1_HEAD, true },
		{ "PUT / HTTP/1.1\r\n\r\n", H1_PUT, true },
		{ "PATCH / HTTP/1.1\r\n\r\n", H1_PATCH, true },
		{ "OPTIONS / HTTP/1.1\r\n\r\n", H1_OTHER, true },
		{ "GET / HTTP/1.0\r\n\r\n", H1_GET, false },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", H1_GET, true },
		{ "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", H1_GET, false },
		{ "GET / HTTP/1.1\r\nConnection: Keep-Alive\r\n\r\n", H1_GET, true },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct h1_req r;

		h1_init(&r);
		cr_assert_eq(h1_feed(&r, cases[i].req, strlen(cases[i].req)), H1_DONE, "%s",
		             cases[i].req);
		cr_assert_eq(r.status, 0, "%s", cases[i].req);
		cr_assert_eq(r.method, cases[i].method, "%s", cases[i].req);
		cr_assert_eq(r.keep_alive, cases[i].keep_alive, "%s", cases[i].req);
		cr_assert_eq(r.fed, strlen(cases[i].req));
	}
}

Test(http1, headers_kept_and_others_ignored)
{
	static const char req[] = "GET / HTTP/1.1\r\n"
	                          "Content-Type-And-Then-Some-Long-Name: no\r\n"
	                          "Content-Typ: no\r\n"
	                          "X-User-Agent: no\r\n"
	                          "User-Agent: first\r\n"
	                          "user-agent: second\r\n"
	                          "Content-Type: \r\n"
	                          "\r\n";
	struct h1_req r;

	h1_init(&r);
	cr_assert_eq(h1_feed(&r, req, sizeof(req) - 1), H1_DONE);
	cr_assert_eq(r.status, 0);
	span_is(req, r.headers[H1_H_USER_AGENT], "second");
	cr_assert(!r.headers[H1_H_CONTENT_TYPE].set || r.headers[H1_H_CONTENT_TYPE].len == 0,
	          "only an empty Content-Type");
	cr_assert(!r.headers[H1_H_EXPECT].set);
	cr_assert(!r.headers[H1_H_AUTHORIZATION].set);
}

/* Feeds req whole and then byte by byte; both are refused with status. */
static void refused(const char *req, size_t n, uint16_t status)
{
	struct h1_req r;
	int rc = H1_AGAIN;

	h1_init(&r);
	cr_assert_eq(h1_feed(&r, req, n), H1_DONE, "%.40s: not done", req);
	cr_assert_eq(r.status, status, "%.40s: %u, want %u", req, r.status, status);
	cr_assert(!r.keep_alive, "a refusal closes");
	cr_assert_leq(r.fed, n);
	h1_init(&r);
	for (size_t i = 0; i < n && rc == H1_AGAIN; i++)
		rc = h1_feed(&r, req + i, 1);
	cr_assert_eq(rc, H1_DONE);
	cr_assert_eq(r.status, status, "%.40s byte by byte: %u, want %u", req, r.status, status);
}

/* Feeds req whole: answered (status 0). */
static void accepted(const char *req, size_t n)
{
	struct h1_req r;

	h1_init(&r);
	cr_assert_eq(h1_feed(&r, req, n), H1_DONE, "not done");
	cr_assert_eq(r.status, 0, "refused %u", r.status);
	cr_assert_eq(r.fed, n);
}

Test(http1, garbage_is_400)
{
	static const char *const bad[] = {
		"\x01\x02 garbage\r\n\r\n",
		"GET / HTTP/1.1\r\nHost t\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"GET /a b HTTP/1.1\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused(bad[i], strlen(bad[i]), 400);
}

Test(http1, not_http_1_is_505)
{
	refused("GET / HTTP/2.0\r\n\r\n", 18, 505);
	refused("GET / HTTP/0.9\r\n\r\n", 18, 505);
	/* HTTP/0.9: the request line alone is the request. */
	refused("GET /nacos/v1/ns/operator/metrics\r\n", 35, 505);
	refused("GET /\n", 6, 505);
}

Test(http1, chunked_is_411)
{
	static const char req[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	                          "5\r\nhello\r\n0\r\n\r\n";

	refused(req, sizeof(req) - 1, 411);
	refused("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	        strlen("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 411);
}

Test(http1, body_bound_is_413)
{
	static char req[H1_BODY_MAX + 256];
	int n = snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nContent-Length: %u\r\n\r\n",
	                 H1_BODY_MAX + 1);
	struct h1_req r;

	refused(req, (size_t)n, 413); /* decided by the head: the body is never read */
	n = snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nContent-Length: %u\r\n\r\n",
	             H1_BODY_MAX);
	memset(req + n, 'b', H1_BODY_MAX);
	accepted(req, (size_t)n + H1_BODY_MAX);
	h1_init(&r);
	h1_feed(&r, req, (size_t)n + H1_BODY_MAX);
	cr_assert_eq(r.body.len, H1_BODY_MAX);
	cr_assert_eq(r.body.off, (uint32_t)n);
}

Test(http1, target_bound_is_414)
{
	static char req[H1_URL_MAX + 256];
	int n = snprintf(req, sizeof(req), "GET /");

	memset(req + n, 'u', H1_URL_MAX - 1);
	n += H1_URL_MAX - 1;
	n += snprintf(req + n, sizeof(req) - (size_t)n, " HTTP/1.1\r\n\r\n");
	accepted(req, (size_t)n); /* exactly H1_URL_MAX */
	n = snprintf(req, sizeof(req), "GET /");
	memset(req + n, 'u', H1_URL_MAX);
	n += H1_URL_MAX;
	n += snprintf(req + n, sizeof(req) - (size_t)n, " HTTP/1.1\r\n\r\n");
	refused(req, (size_t)n, 414);
}

/* A GET whose head is exactly len bytes (len large), padded with one header. */
static size_t head_of(char *req, size_t len)
{
	static const char start[] = "GET / HTTP/1.1\r\nX: ";
	size_t n = sizeof(start) - 1;

	memcpy(req, start, n);
	memset(req + n, 'h', len - n - 4);
	memcpy(req + len - 4, "\r\n\r\n", 4);
	return len;
}

Test(http1, head_bound_is_431)
{
	static char req[H1_HEAD_MAX + 1024];
	struct h1_req r;

	accepted(req, head_of(req, H1_HEAD_MAX)); /* exactly the bound */
	refused(req, head_of(req, H1_HEAD_MAX + 1), 431);
	/* A head that never ends is refused at the bound, not read on. */
	memset(req, 0, sizeof(req));
	head_of(req, sizeof(req));
	h1_init(&r);
	cr_assert_eq(h1_feed(&r, req, H1_HEAD_MAX - 10), H1_AGAIN);
	cr_assert_eq(h1_feed(&r, req + r.fed, sizeof(req) - r.fed - 4), H1_DONE);
	cr_assert_eq(r.status, 431);
	cr_assert_leq(r.fed, H1_HEAD_MAX);
}

Test(http1, reasons)
{
	static const uint16_t statuses[] = { 100, 200, 400, 403, 404, 405, 411,
		                             413, 414, 431, 500, 501, 503, 505 };

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		cr_assert_str_neq(h1_reason(statuses[i]), "Unknown", "%u", statuses[i]);
	cr_assert_str_eq(h1_reason(599), "Unknown");
}

/*
 * The head ends inside a feed that its bound cut short (20 KiB of head
 * fed, then the head's end and a body in one feed larger than the 12 KiB
 * left of the bound): the body is taken in the same call, since AGAIN
 * would tell the worker that every byte was fed and it would wait for
 * bytes the client never sends.
 */
Test(http1, body_after_a_long_head_in_one_feed)
{
	static char req[64 * 1024];
	struct h1_req r;
	int n = snprintf(req, sizeof(req), "POST /x HTTP/1.1\r\nContent-Length: 20000\r\nX: ");
	size_t head;

	memset(req + n, 'h', 24000);
	n += 24000;
	n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n\r\n");
	head = (size_t)n;
	memset(req + n, 'b', 20000);
	n += 20000;
	h1_init(&r);
	cr_assert_eq(h1_feed(&r, req, 20000), H1_AGAIN);
	cr_assert_eq(h1_feed(&r, req + 20000, (size_t)n - 20000), H1_DONE);
	cr_assert_eq(r.status, 0);
	cr_assert_eq(r.fed, (uint32_t)n);
	cr_assert_eq(r.body.off, head);
	cr_assert_eq(r.body.len, 20000);
	/* Without a body to end it, the same feed takes every byte. */
	h1_init(&r);
	n = snprintf(req, sizeof(req), "POST /x HTTP/1.1\r\nContent-Length: 30000\r\nX: ");
	memset(req + n, 'h', 24000);
	n += 24000;
	n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n\r\n");
	memset(req + n, 'b', 20000);
	n += 20000;
	cr_assert_eq(h1_feed(&r, req, 20000), H1_AGAIN);
	cr_assert_eq(h1_feed(&r, req + 20000, (size_t)n - 20000), H1_AGAIN);
	cr_assert_eq(r.fed, (uint32_t)n, "AGAIN took every byte");
}
