/*
 * The admin port's request glue (http/request.h) over http-parser: good
 * requests, every split point, pipelining, the head bound, refusals and
 * garbage.
 */
#include "http/request.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Feeds the whole of s in one call; returns the result and the bytes used. */
static int feed_all(struct request *r, const char *s, size_t n, size_t *used)
{
	request_init(r);
	return request_feed(r, s, n, used);
}

static void same_result(const struct request *a, const struct request *b)
{
	cr_assert_eq(a->status, b->status);
	cr_assert_eq(a->route, b->route);
	cr_assert_eq(a->keep_alive, b->keep_alive);
	cr_assert_eq(a->head_only, b->head_only);
}

Test(request, get_metrics)
{
	const char *s = "GET /metrics HTTP/1.1\r\nHost: localhost:8851\r\nAccept: */*\r\n\r\n";
	struct request r;
	size_t used;

	cr_assert_eq(feed_all(&r, s, strlen(s), &used), REQUEST_DONE);
	cr_assert_eq(used, strlen(s));
	cr_assert_eq(r.status, 0);
	cr_assert_eq(r.route, REQUEST_ROUTE_METRICS);
	cr_assert(r.keep_alive);
	cr_assert_not(r.head_only);
}

Test(request, routes_and_targets)
{
	static const struct {
		const char *target;
		enum request_route route;
	} cases[] = {
		{ "/metrics", REQUEST_ROUTE_METRICS },
		{ "/metrics?name[]=distrod_instances", REQUEST_ROUTE_METRICS },
		{ "/health", REQUEST_ROUTE_HEALTH },
		{ "/health#x", REQUEST_ROUTE_HEALTH },
		{ "/cluster", REQUEST_ROUTE_CLUSTER },
		{ "/cluster?pretty", REQUEST_ROUTE_CLUSTER },
		{ "/cluster/", REQUEST_ROUTE_NONE },
		{ "http://localhost:8851/health", REQUEST_ROUTE_HEALTH },
		{ "/", REQUEST_ROUTE_NONE },
		{ "/metrics/", REQUEST_ROUTE_NONE },
		{ "/metricsx", REQUEST_ROUTE_NONE },
		{ "/Health", REQUEST_ROUTE_NONE },
		{ "/healt", REQUEST_ROUTE_NONE },
	};
	char s[256];
	struct request r;
	size_t used;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = snprintf(s, sizeof(s), "GET %s HTTP/1.1\r\n\r\n", cases[i].target);

		cr_assert_eq(feed_all(&r, s, (size_t)n, &used), REQUEST_DONE, "%s", s);
		cr_assert_eq(r.status, 0, "%s", cases[i].target);
		cr_assert_eq(r.route, cases[i].route, "%s", cases[i].target);
	}
}

Test(request, head_and_keep_alive)
{
	struct request r;
	size_t used;
	const char *head = "HEAD /health HTTP/1.1\r\n\r\n";
	const char *close11 = "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n";
	const char *plain10 = "GET /health HTTP/1.0\r\n\r\n";
	const char *ka10 = "GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";

	cr_assert_eq(feed_all(&r, head, strlen(head), &used), REQUEST_DONE);
	cr_assert(r.head_only);
	cr_assert(r.keep_alive);
	cr_assert_eq(feed_all(&r, close11, strlen(close11), &used), REQUEST_DONE);
	cr_assert_not(r.keep_alive);
	cr_assert_eq(feed_all(&r, plain10, strlen(plain10), &used), REQUEST_DONE);
	cr_assert_not(r.keep_alive);
	cr_assert_eq(r.route, REQUEST_ROUTE_HEALTH);
	cr_assert_eq(feed_all(&r, ka10, strlen(ka10), &used), REQUEST_DONE);
	cr_assert(r.keep_alive);
}

/* Every way of cutting a request in two gives the same answer as feeding it whole. */
Test(request, split_at_every_byte)
{
	static const char *const reqs[] = {
		"GET /metrics HTTP/1.1\r\nHost: a\r\nUser-Agent: Prometheus/2.42\r\n"
		"Accept: text/plain;version=0.0.4;q=1,*/*;q=0.1\r\n\r\n",
		"HEAD /health?x=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"POST /metrics HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody",
		"GET /nope HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"\r\nGET /health HTTP/1.1\r\n\r\n",
		"GET /health HTTP/1.1\r\nBad Header\r\n\r\n",
	};

	for (size_t k = 0; k < sizeof(reqs) / sizeof(reqs[0]); k++) {
		const char *s = reqs[k];
		size_t n = strlen(s), used_whole, used;
		struct request whole, r;
		int rc_whole = feed_all(&whole, s, n, &used_whole);

		cr_assert_eq(rc_whole, REQUEST_DONE, "%s", s);
		for (size_t cut = 0; cut <= n; cut++) {
			size_t u1, u2 = 0;
			int rc;

			request_init(&r);
			rc = request_feed(&r, s, cut, &u1);
			if (rc == REQUEST_AGAIN) {
				cr_assert_eq(u1, cut, "AGAIN takes every byte");
				rc = request_feed(&r, s + cut, n - cut, &u2);
			}
			cr_assert_eq(rc, REQUEST_DONE, "request %zu cut at %zu", k, cut);
			used = u1 + u2;
			cr_assert_eq(used, used_whole, "request %zu cut at %zu", k, cut);
			same_result(&r, &whole);
		}
		/* And one byte at a time. */
		request_init(&r);
		used = 0;
		for (size_t i = 0; i < n; i++) {
			size_t u;
			int rc = request_feed(&r, s + i, 1, &u);

			used += u;
			if (rc == REQUEST_DONE)
				break;
			cr_assert_eq(u, 1);
		}
		cr_assert(r.done, "request %zu byte by byte", k);
		cr_assert_eq(used, used_whole);
		same_result(&r, &whole);
	}
}

Test(request, pipelined_requests_stay_unread)
{
	const char *s =
	        "GET /health HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\nHEAD /x HTTP/1.1\r\n\r\n";
	size_t n = strlen(s), off = 0, used;
	enum request_route want[] = { REQUEST_ROUTE_HEALTH, REQUEST_ROUTE_METRICS,
		                      REQUEST_ROUTE_NONE };
	struct request r;

	for (int i = 0; i < 3; i++) {
		cr_assert_eq(feed_all(&r, s + off, n - off, &used), REQUEST_DONE);
		cr_assert_eq(r.route, want[i]);
		cr_assert(r.keep_alive);
		off += used;
	}
	cr_assert_eq(off, n);
	cr_assert(r.head_only);
	/* A finished request takes nothing more until it is re-initialised. */
	cr_assert_eq(request_feed(&r, "GET", 3, &used), REQUEST_DONE);
	cr_assert_eq(used, 0);
}

Test(request, empty_feed_waits)
{
	struct request r;
	size_t used = 7;

	request_init(&r);
	cr_assert_eq(request_feed(&r, "", 0, &used), REQUEST_AGAIN);
	cr_assert_eq(used, 0);
	cr_assert_eq(request_feed(&r, "GET /health HTTP/1.1\r\n", 22, &used), REQUEST_AGAIN);
	cr_assert_eq(used, 22);
}

/* A request of exactly `bytes` bytes: one padding header fills it up. */
static char *request_of_size(size_t bytes)
{
	const char *pre = "GET /health HTTP/1.1\r\nX-Pad: ";
	const char *post = "\r\n\r\n";
	char *s = malloc(bytes + 1);
	size_t pad = bytes - strlen(pre) - strlen(post);

	cr_assert_not_null(s);
	strcpy(s, pre);
	memset(s + strlen(pre), 'a', pad);
	strcpy(s + strlen(pre) + pad, post);
	cr_assert_eq(strlen(s), bytes);
	return s;
}

Test(request, head_bound)
{
	struct request r;
	size_t used;
	char *at = request_of_size(REQUEST_HEAD_MAX), *over = request_of_size(REQUEST_HEAD_MAX + 1);

	cr_assert_eq(feed_all(&r, at, REQUEST_HEAD_MAX, &used), REQUEST_DONE);
	cr_assert_eq(r.status, 0, "a head of exactly REQUEST_HEAD_MAX bytes is fine");
	cr_assert_eq(r.route, REQUEST_ROUTE_HEALTH);

	cr_assert_eq(feed_all(&r, over, REQUEST_HEAD_MAX + 1, &used), REQUEST_DONE);
	cr_assert_eq(r.status, 431);
	cr_assert_not(r.keep_alive);
	cr_assert_leq(used, REQUEST_HEAD_MAX, "never reads past the bound");

	/* The same in 1000-byte reads: the parser never sees more than the bound. */
	request_init(&r);
	size_t total = 0;
	int rc = REQUEST_AGAIN;

	for (size_t off = 0; rc == REQUEST_AGAIN && off < REQUEST_HEAD_MAX + 1; off += 1000) {
		size_t len = REQUEST_HEAD_MAX + 1 - off < 1000 ? REQUEST_HEAD_MAX + 1 - off : 1000;

		rc = request_feed(&r, over + off, len, &used);
		total += used;
	}
	cr_assert_eq(rc, REQUEST_DONE);
	cr_assert_eq(r.status, 431);
	cr_assert_leq(total, REQUEST_HEAD_MAX);

	/* An endless stream of header bytes stops at the bound too. */
	request_init(&r);
	cr_assert_eq(request_feed(&r, "GET / HTTP/1.1\r\nX: ", 19, &used), REQUEST_AGAIN);
	char junk[1024];

	memset(junk, 'b', sizeof(junk));
	rc = REQUEST_AGAIN;
	for (int i = 0; i < 100 && rc == REQUEST_AGAIN; i++)
		rc = request_feed(&r, junk, sizeof(junk), &used);
	cr_assert_eq(rc, REQUEST_DONE);
	cr_assert_eq(r.status, 431);
	free(at);
	free(over);
}

Test(request, target_bound)
{
	char s[2048];
	struct request r;
	size_t used;
	int n;

	n = snprintf(s, sizeof(s), "GET /%0*d HTTP/1.1\r\n\r\n", REQUEST_URL_MAX - 1, 0);
	cr_assert_eq(feed_all(&r, s, (size_t)n, &used), REQUEST_DONE);
	cr_assert_eq(r.status, 0, "a target of exactly REQUEST_URL_MAX bytes is read");
	cr_assert_eq(r.route, REQUEST_ROUTE_NONE);
	n = snprintf(s, sizeof(s), "GET /%0*d HTTP/1.1\r\n\r\n", REQUEST_URL_MAX, 0);
	cr_assert_eq(feed_all(&r, s, (size_t)n, &used), REQUEST_DONE);
	cr_assert_eq(r.status, 414);
	cr_assert_not(r.keep_alive);
}

Test(request, methods_other_than_get_and_head)
{
	static const char *const methods[] = { "POST",    "PUT",   "DELETE", "PATCH",
		                               "OPTIONS", "TRACE", "PURGE" };
	char s[128];
	struct request r;
	size_t used;

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		int n = snprintf(s, sizeof(s), "%s /metrics HTTP/1.1\r\n\r\n", methods[i]);

		cr_assert_eq(feed_all(&r, s, (size_t)n, &used), REQUEST_DONE, "%s", s);
		cr_assert_eq(r.status, 405, "%s", methods[i]);
		cr_assert(r.keep_alive, "%s without a body can keep the connection", methods[i]);
		cr_assert_eq(used, (size_t)n);
	}
	/* With a body: 405 still, and the connection closes (the body is never read). */
	const char *post = "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";

	cr_assert_eq(feed_all(&r, post, strlen(post), &used), REQUEST_DONE);
	cr_assert_eq(r.status, 405);
	cr_assert_not(r.keep_alive);
	cr_assert_leq(used, strlen(post) - 5);
	/* CONNECT is not routed either. */
	const char *conn = "CONNECT host:443 HTTP/1.1\r\n\r\n";

	cr_assert_eq(feed_all(&r, conn, strlen(conn), &used), REQUEST_DONE);
	cr_assert_eq(r.status, 405);
	cr_assert_not(r.keep_alive);
}

Test(request, bodies_are_refused)
{
	const char *cl = "GET /health HTTP/1.1\r\nContent-Length: 1\r\n\r\nx";
	const char *chunked =
	        "GET /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n";
	const char *zero = "GET /health HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
	struct request r;
	size_t used;

	cr_assert_eq(feed_all(&r, cl, strlen(cl), &used), REQUEST_DONE);
	cr_assert_eq(r.status, 413);
	cr_assert_not(r.keep_alive);
	cr_assert_eq(feed_all(&r, chunked, strlen(chunked), &used), REQUEST_DONE);
	cr_assert_eq(r.status, 413);
	cr_assert_not(r.keep_alive);
	cr_assert_eq(feed_all(&r, zero, strlen(zero), &used), REQUEST_DONE);
	cr_assert_eq(r.status, 0, "Content-Length: 0 is no body");
	cr_assert_eq(r.route, REQUEST_ROUTE_HEALTH);
	cr_assert(r.keep_alive);
}

Test(request, upgrade_closes)
{
	const char *s = "GET /health HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
	struct request r;
	size_t used;

	cr_assert_eq(feed_all(&r, s, strlen(s), &used), REQUEST_DONE);
	cr_assert_eq(r.route, REQUEST_ROUTE_HEALTH);
	cr_assert_not(r.keep_alive, "we answer but do not switch protocols");
}

Test(request, malformed_is_400_and_close)
{
	static const char *const bad[] = {
		"GARBAGE\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n",
		"GET /metrics HTTP/9.9\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nContent-Length: x\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"GET /me\x01trics HTTP/1.1\r\n\r\n",
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* a TLS ClientHello */
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	};
	struct request r;
	size_t used;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = strlen(bad[i]);
		int rc = feed_all(&r, bad[i], n, &used);

		cr_assert_eq(rc, REQUEST_DONE, "case %zu", i);
		cr_assert(r.status == 400 || r.status == 405, "case %zu: status %u", i, r.status);
		if (r.status == 400)
			cr_assert_not(r.keep_alive, "case %zu", i);
		cr_assert_leq(used, n);
	}
}

/* Random bytes: never a crash, never a read past the input, always a decision by the bound. */
Test(request, garbage)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	char buf[512];
	struct request r;

	for (int round = 0; round < 20000; round++) {
		size_t n, used, total = 0;
		int rc = REQUEST_AGAIN;

		request_init(&r);
		for (int chunk = 0; chunk < 40 && rc == REQUEST_AGAIN; chunk++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			n = 1 + x % sizeof(buf);
			for (size_t i = 0; i < n; i++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				/* Half the rounds bias toward HTTP-ish bytes to get deeper. */
				buf[i] = (round & 1) ? "GET /metrics HTTP/1.1\r\n:aZ "[x % 27]
				                     : (char)x;
			}
			rc = request_feed(&r, buf, n, &used);
			cr_assert_leq(used, n);
			total += used;
		}
		cr_assert_leq(total, REQUEST_HEAD_MAX);
		if (rc == REQUEST_DONE && r.status == 0)
			cr_assert(r.route <= REQUEST_ROUTE_HEALTH);
	}
}
