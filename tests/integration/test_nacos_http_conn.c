/*
 * The HTTP side of the Nacos port of a real distrod (issue 10,
 * docs/nacos.md): pipelining, a client sending one byte at a time, a
 * connection closed mid-request harming no other, the framing limits
 * (414, 431, 413, 411, 400, HTTP/2 and HTTP/0.9 refused), keep-alive and
 * Connection: close, 100-continue, routing of unknown paths and methods,
 * the operator and health endpoints, and a large service's answers.
 */
#include "nacos_http_suite.h"

TestSuite(nacos_http_conn, .init = start, .fini = stop, .timeout = 120);

/* ---- connections: pipelining, one byte at a time, closing mid-request ---- */

Test(nacos_http_conn, pipelined_requests_are_answered_in_order)
{
	char all[8192];
	size_t n = 0;
	static const struct {
		const char *method, *target;
	} reqs[] = {
		{ "POST", NS "/instance?serviceName=pl&ip=192.0.2.1&port=80" },
		{ "GET", NS "/instance/list?serviceName=pl" },
		{ "PUT", NS "/instance/beat?serviceName=pl&ip=192.0.2.1&port=80" },
		{ "DELETE", NS "/instance?serviceName=pl&ip=192.0.2.1&port=80" },
		{ "GET", NS "/instance/list?serviceName=pl" },
		{ "GET", NS "/nope" },
		{ "POST", NS "/instance?serviceName=pl&ip=192.0.2.2&port=80" },
		{ "GET", NS "/instance/list?serviceName=pl" },
	};
	static const int hosts[] = { -1, 1, -1, -1, 0, -1, -1, 1 };

	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
		n += nacos_fmt(all + n, sizeof(all) - n, reqs[i].method, reqs[i].target, NULL, NULL,
		               NULL);
	http_send(C, all, n); /* one send */
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		nacos_read(C, &A);
		if (i == 5) {
			expect(501, NULL);
		} else {
			expect(200, NULL);
		}
		if (hosts[i] >= 0) {
			nj_parse(&J, A.body, A.len);
			cr_assert_eq(J.t[nj_get(&J, 0, "hosts")].size, hosts[i], "answer %zu: %s",
			             i, A.body);
		} else if (i == 2) {
			cr_assert_not_null(strstr(A.body, "\"code\":10200"), "%s", A.body);
		} else if (i != 5) {
			cr_assert_str_eq(A.body, "ok", "answer %zu", i);
		}
	}
	/* Many writes pipelined: each answered, in order. */
	n = 0;
	{
		static char big[1 << 17];
		int count = 200;

		for (int i = 0; i < count; i++) {
			char t[256];

			snprintf(t, sizeof(t),
			         NS "/instance?serviceName=pl2&ip=198.18.%d.%d&port=80", i / 250,
			         i % 250 + 1);
			n += nacos_fmt(big + n, sizeof(big) - n, "POST", t, NULL, NULL, NULL);
		}
		n += nacos_fmt(big + n, sizeof(big) - n, "GET", NS "/instance/list?serviceName=pl2",
		               NULL, NULL, NULL);
		http_send(C, big, n);
		for (int i = 0; i < count; i++) {
			nacos_read(C, &A);
			expect(200, "ok");
		}
		nacos_read(C, &A);
		nj_parse(&J, A.body, A.len);
		cr_assert_eq(J.t[nj_get(&J, 0, "hosts")].size, count);
	}
}

Test(nacos_http_conn, a_request_one_byte_at_a_time)
{
	char req[1024];
	size_t n = nacos_fmt(req, sizeof(req), "POST", NS "/instance?serviceName=ob",
	                     "Connection: keep-alive\r\n", "application/x-www-form-urlencoded",
	                     "ip=192.0.2.1&port=80&metadata=%7B%22a%22%3A%22b%22%7D");
	int one = 1;

	setsockopt(C->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (size_t i = 0; i < n; i++) {
		http_send(C, req + i, 1);
		if (i % 16 == 0)
			nap_ms(1); /* let some bytes arrive alone */
	}
	nacos_read(C, &A);
	expect(200, "ok");
	n = nacos_fmt(req, sizeof(req), "GET", NS "/instance/list?serviceName=ob", NULL, NULL,
	              NULL);
	for (size_t i = 0; i < n; i++)
		http_send(C, req + i, 1);
	nacos_read(C, &A);
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	cr_assert_eq(J.t[nj_get(&J, 0, "hosts")].size, 1);
	cr_assert_str_eq(meta(host(0), "a"), "b");
}

Test(nacos_http_conn, a_connection_closed_mid_request_harms_no_other)
{
	static const char partial_head[] =
	        "POST " NS
	        "/instance?serviceName=cm&ip=192.0.2.1&port=80 HTTP/1.1\r\nHost: t\r\nCont";
	static const char partial_body[] =
	        "POST " NS "/instance HTTP/1.1\r\nHost: t\r\n"
	        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 46\r\n\r\n"
	        "serviceName=cm&ip=192.0.2.2";
	struct http_conn *x = http_open(nd.nacos_port), *y = http_open(nd.nacos_port);

	http_send(x, partial_head, sizeof(partial_head) - 1);
	http_send(y, partial_body, sizeof(partial_body) - 1);
	/* The others are waiting for bytes; this connection is answered meanwhile. */
	cr_assert_eq(list("serviceName=cm"), 0);
	reg("serviceName=cm&ip=192.0.2.3&port=80");
	http_close(x);
	http_close(y);
	cr_assert_eq(list("serviceName=cm"), 1, "half requests did nothing");
	cr_assert_str_eq(nj_s(&J, host(0), "ip"), "192.0.2.3");
	/* Closed right after a complete request: the write still happens, the node lives. */
	x = http_open(nd.nacos_port);
	{
		char req[512];
		size_t n = nacos_fmt(req, sizeof(req), "POST",
		                     NS "/instance?serviceName=cm&ip=192.0.2.4&port=80", NULL, NULL,
		                     NULL);

		http_send(x, req, n);
	}
	http_close(x);
	for (int64_t end = now_ms() + 5000; now_ms() < end; nap_ms(10))
		if (list("serviceName=cm") == 2)
			break;
	cr_assert_eq(list("serviceName=cm"), 2);
	call("GET", NS "/operator/metrics");
	expect(200, NULL);
}

/* ---- framing limits and bad requests ---- */

Test(nacos_http_conn, target_over_16_KiB_is_414)
{
	static char t[40000];
	int n = snprintf(t, sizeof(t), NS "/instance/list?serviceName=lim&pad=");

	/* Exactly 16384 bytes: answered. */
	memset(t + n, 'a', 16384 - (size_t)n);
	t[16384] = '\0';
	cr_assert_eq(call("GET", "%s", t), 200, "%s", A.body);
	/* One more: 414, and the connection closes. */
	memset(t + n, 'a', 16385 - (size_t)n);
	t[16385] = '\0';
	call("GET", "%s", t);
	cr_assert_eq(A.status, 414, "%d %s", A.status, A.body);
	cr_assert_not_null(strcasestr(A.head, "\r\nConnection: close\r\n"), "%s", A.head);
	cr_assert(http_eof(C));
	http_close(C);
	/* A long target is fine on a POST as well: metadata up to the node's 4 KiB bound. */
	C = http_open(nd.nacos_port);
	{
		char md[8000];
		size_t o = (size_t)snprintf(md, sizeof(md), "{\"big\":\"");

		memset(md + o, 'x', 4093);
		snprintf(md + o + 4093, sizeof(md) - o - 4093, "\"}");
		reg("serviceName=lim&ip=192.0.2.1&port=80&metadata=%s", nacos_enc(md));
		cr_assert_eq(list("serviceName=lim"), 1);
		cr_assert_eq(strlen(meta(host(0), "big")), 4093);
		/* One byte more than --meta-max (4096 bytes of keys and values). */
		memset(md + o, 'x', 4094);
		snprintf(md + o + 4094, sizeof(md) - o - 4094, "\"}");
		call("POST", NS "/instance?serviceName=lim&ip=192.0.2.2&port=80&metadata=%s",
		     nacos_enc(md));
		expect(400, NULL);
		cr_assert_eq(list("serviceName=lim"), 1);
	}
}

Test(nacos_http_conn, header_block_over_32_KiB_is_431)
{
	static char req[50000];
	int n = snprintf(req, sizeof(req), "GET " NS "/operator/metrics HTTP/1.1\r\nHost: t\r\n");

	for (int i = 0; i < 40; i++)
		n += snprintf(req + n, sizeof(req) - (size_t)n, "X-Pad-%02d: %01000d\r\n", i, 0);
	n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
	http_send(C, req, (size_t)n);
	expect_closed_after(C, 431);
	http_close(C);
	/* Just under the bound: answered. */
	C = http_open(nd.nacos_port);
	n = snprintf(req, sizeof(req), "GET " NS "/operator/metrics HTTP/1.1\r\nHost: t\r\n");
	for (int i = 0; i < 30; i++)
		n += snprintf(req + n, sizeof(req) - (size_t)n, "X-Pad-%02d: %01000d\r\n", i, 0);
	n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
	http_send(C, req, (size_t)n);
	nacos_read(C, &A);
	expect(200, NULL);
}

Test(nacos_http_conn, body_over_64_KiB_is_413)
{
	static char body[70000];
	static const char head[] = "POST " NS "/instance HTTP/1.1\r\nHost: t\r\n"
	                           "Content-Type: application/x-www-form-urlencoded\r\n"
	                           "Content-Length: 65537\r\n\r\n";
	int n;

	http_send(C, head, sizeof(head) - 1);
	expect_closed_after(C, 413);
	http_close(C);
	/* 65536 bytes exactly: read and answered. */
	C = http_open(nd.nacos_port);
	n = snprintf(body, sizeof(body), "serviceName=big&ip=192.0.2.1&port=80&pad=");
	memset(body + n, 'p', 65536 - (size_t)n);
	body[65536] = '\0';
	call_form("POST", NS "/instance", body);
	expect(200, "ok");
	cr_assert_eq(list("serviceName=big"), 1);
}

Test(nacos_http_conn, chunked_body_is_411)
{
	static const char req[] = "POST " NS "/instance HTTP/1.1\r\nHost: t\r\n"
	                          "Transfer-Encoding: chunked\r\n\r\n"
	                          "5\r\nip=19\r\n0\r\n\r\n";

	http_send(C, req, sizeof(req) - 1);
	expect_closed_after(C, 411);
}

Test(nacos_http_conn, garbage_is_400)
{
	static const char *const bad[] = {
		"\x01\x02\x03 garbage\r\n\r\n",
		"GET " NS "/operator/metrics HTTP/1.1\r\nHost t\r\n\r\n",
		"GET " NS "/operator/metrics HTTP/1.1\r\nContent-Length: x\r\n\r\n",
		"GET " NS
		"/operator/metrics HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"GET /a b c HTTP/1.1\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct http_conn *c = http_open(nd.nacos_port);

		http_send(c, bad[i], strlen(bad[i]));
		nacos_read(c, &A);
		cr_assert_eq(A.status, 400, "case %zu: %d %s", i, A.status, A.body);
		cr_assert(http_eof(c), "case %zu: closed after 400", i);
		http_close(c);
	}
	/* The node still answers. */
	call("GET", NS "/operator/metrics");
	expect(200, NULL);
}

/* An error (or nothing) and then the close, within the 5 s receive timeout. */
static void refused_and_closed(const char *req, size_t len)
{
	struct http_conn *c = http_open(nd.nacos_port);
	int64_t t0 = now_ms();

	http_send(c, req, len);
	nacos_read(c, &A);
	cr_assert(A.status == 0 || A.status >= 400, "%d %s", A.status, A.body);
	cr_assert_neq(A.status, 0, "no answer within 5 s to %.*s", (int)len, req);
	cr_assert(http_eof(c), "closed after %d", A.status);
	cr_assert_lt(now_ms() - t0, 4000);
	http_close(c);
}

Test(nacos_http_conn, http2_preface_is_refused)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

	refused_and_closed(preface, sizeof(preface) - 1);
	refused_and_closed("GET / HTTP/2.0\r\nHost: t\r\n\r\n",
	                   strlen("GET / HTTP/2.0\r\nHost: t\r\n\r\n"));
	cr_assert_eq(A.status, 505);
}

Test(nacos_http_conn, http_0_9_is_refused)
{
	static const char req[] = "GET " NS "/operator/metrics\r\n";

	refused_and_closed(req, sizeof(req) - 1);
}

/* ---- connections: keep-alive, close, 100-continue ---- */

Test(nacos_http_conn, keep_alive_serves_many_requests)
{
	for (int i = 0; i < 300; i++) {
		if (i % 3 == 0)
			reg("serviceName=ka&ip=198.18.0.%d&port=80", i / 3 + 1);
		else if (i % 3 == 1)
			cr_assert_eq(list("serviceName=ka"), i / 3 + 1);
		else
			call("GET", NS "/operator/metrics");
		expect(200, NULL);
		cr_assert_null(strcasestr(A.head, "Connection: close"), "%s", A.head);
	}
	/* HTTP/1.1 with Connection: close: answered, then closed. */
	{
		char req[512];
		size_t n = nacos_fmt(req, sizeof(req), "GET", NS "/operator/metrics",
		                     "Connection: close\r\n", NULL, NULL);

		http_send(C, req, n);
		expect_closed_after(C, 200);
		http_close(C);
	}
	/* HTTP/1.0 closes by default, stays with keep-alive. */
	C = http_open(nd.nacos_port);
	http_send(C, "GET " NS "/health/server HTTP/1.0\r\n\r\n",
	          strlen("GET " NS "/health/server HTTP/1.0\r\n\r\n"));
	expect_closed_after(C, 200);
	http_close(C);
	C = http_open(nd.nacos_port);
	for (int i = 0; i < 3; i++) {
		static const char req[] =
		        "GET " NS "/health/server HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";

		http_send(C, req, sizeof(req) - 1);
		nacos_read(C, &A);
		expect(200, NULL);
	}
	cr_assert_null(strcasestr(A.head, "Connection: close"), "%s", A.head);
}

Test(nacos_http_conn, expect_100_continue)
{
	static const char body[] = "serviceName=ec&ip=192.0.2.1&port=80";
	char head[512], got[256];
	int n = snprintf(head, sizeof(head),
	                 "POST " NS "/instance HTTP/1.1\r\nHost: t\r\n"
	                 "Content-Type: application/x-www-form-urlencoded\r\n"
	                 "Expect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
	                 sizeof(body) - 1);

	http_send(C, head, (size_t)n);
	read_head_raw(C, got, sizeof(got));
	cr_assert_str_eq(got, "HTTP/1.1 100 Continue\r\n\r\n");
	http_send(C, body, sizeof(body) - 1);
	nacos_read(C, &A);
	expect(200, "ok");
	cr_assert_eq(list("serviceName=ec"), 1);
	/* Body sent along with the head at once: one 100 at most, then the answer. */
	n = snprintf(head, sizeof(head),
	             "POST " NS "/instance HTTP/1.1\r\nHost: t\r\n"
	             "Content-Type: application/x-www-form-urlencoded\r\n"
	             "Expect: 100-continue\r\nContent-Length: %zu\r\n\r\n%s",
	             sizeof(body) - 1, "serviceName=ec&ip=192.0.2.2&port=80");
	http_send(C, head, (size_t)n);
	nacos_read(C, &A);
	if (A.status == 100) /* no Content-Length on a 100: nacos_read took none */
		nacos_read(C, &A);
	expect(200, "ok");
	cr_assert_eq(list("serviceName=ec"), 2);
	/* Too large: refused without a 100. */
	http_send(C,
	          "POST " NS "/instance HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
	          "Content-Length: 100000\r\n\r\n",
	          strlen("POST " NS "/instance HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
	                 "Content-Length: 100000\r\n\r\n"));
	expect_closed_after(C, 413);
}

/* ---- routing ---- */

Test(nacos_http_conn, unknown_paths_and_methods)
{
	call("GET", NS "/nope");
	expect(501, "no such api:/v1/ns/nope");
	call("GET", "/nacos/v2/ns/instance/list?serviceName=x");
	expect_prefix(501, "no such api:");
	call("DELETE", NS "/instance/list?serviceName=x");
	expect(405, "Request method 'DELETE' not supported");
	call("POST", NS "/instance/beat?serviceName=x");
	expect(405, NULL);
	call("GET", NS "/operator/servers/x");
	expect(501, NULL);
	call("GET", "/other");
	expect_prefix(404, "no such path:");
	call("GET", "/nacosx/v1/ns/instance/list");
	expect(404, NULL);
	/* A trailing slash is the same path. */
	cr_assert_eq(list("serviceName=x&"), 0);
	call("GET", NS "/instance/list/?serviceName=x");
	expect(200, NULL);
	/* HEAD of a GET endpoint: the head only, and the connection goes on. */
	{
		struct http_resp r;
		char req[256];
		size_t n = nacos_fmt(req, sizeof(req), "HEAD", NS "/operator/metrics", NULL, NULL,
		                     NULL);

		n += nacos_fmt(req + n, sizeof(req) - n, "GET", NS "/health/server", NULL, NULL,
		               NULL);
		http_send(C, req, n);
		http_read(C, &r, true);
		cr_assert_eq(r.status, 200);
		nacos_read(C, &A);
		expect_prefix(200, "{\"msg\":\"Hello! I am Nacos-Naming");
	}
}

/* ---- operator and health ---- */

Test(nacos_http_conn, operator_endpoints)
{
	int servers;

	reg("serviceName=op&ip=192.0.2.1&port=80");
	reg("serviceName=op&ip=192.0.2.2&port=80");
	for (int i = 0; i < 2; i++) {
		call("GET", i ? NS "/ops/metrics" : NS "/operator/metrics");
		expect(200, NULL);
		nj_parse(&J, A.body, A.len);
		cr_assert_str_eq(nj_s(&J, 0, "status"), "UP");
		cr_assert_str_eq(nj_s(&J, 0, "instanceCount"), "2");
		cr_assert_str_eq(nj_s(&J, 0, "serviceCount"), "1");
	}
	call("GET", NS "/operator/switches");
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "name"), "00-00---000-NACOS_SWITCH_DOMAIN-000---00-00");
	cr_assert_str_eq(nj_s(&J, 0, "clientBeatInterval"), "5000");
	cr_assert_str_eq(nj_s(&J, 0, "lightBeatEnabled"), "false");
	call("PUT", NS "/operator/switches?entry=pushEnabled&value=false");
	expect(200, "ok");
	call_form("PUT", NS "/operator/switches", "entry=distroThreshold&value=0.5");
	expect(200, "ok");
	call("PUT", NS "/operator/switches?value=1");
	expect(400, "Param 'entry' is required.");
	call("GET", NS "/operator/servers");
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	servers = nj_get(&J, 0, "servers");
	cr_assert_eq(J.t[servers].size, 1, "%s", A.body);
	cr_assert_str_eq(nj_s(&J, nj_at(&J, servers, 0), "state"), "UP");
	call("GET", NS "/health/server");
	expect_prefix(200, "{\"msg\":\"Hello! I am Nacos-Naming and healthy!");
	nj_parse(&J, A.body, A.len);
}

Test(nacos_http_conn, health_instance_sets_healthy)
{
	reg("serviceName=hi&ip=192.0.2.1&port=80&metadata=%s", nacos_enc("{\"k\":\"v\"}"));
	call("PUT", NS "/health/instance?serviceName=hi&ip=192.0.2.1&port=80&healthy=false");
	expect(200, "ok");
	cr_assert_eq(list("serviceName=hi"), 1);
	cr_assert_str_eq(nj_s(&J, host(0), "healthy"), "false");
	cr_assert_str_eq(meta(host(0), "k"), "v", "the rest kept");
	cr_assert_eq(list("serviceName=hi&healthyOnly=true"), 0);
	call_form("PUT", NS "/health", "serviceName=hi&ip=192.0.2.1&port=80&valid=true");
	expect(200, "ok");
	cr_assert_eq(list("serviceName=hi&healthyOnly=true"), 1);
	call("PUT", NS "/health/instance?serviceName=hi&ip=192.0.2.1&port=80");
	expect(400, "Param 'healthy' is required.");
	call("PUT", NS "/health/instance?serviceName=hi&ip=192.0.2.1&port=80&healthy=x");
	expect(400, NULL);
	call("PUT", NS "/health/instance?serviceName=hi&ip=192.0.2.9&port=80&healthy=true");
	expect(400, NULL);
	cr_assert_eq(list("serviceName=hi"), 1);
}

/* Registers n instances of svc (198.18.x.y:80) pipelined on the test's connection. */
static void reg_many(const char *svc, int n)
{
	static char all[1 << 18];

	for (int done = 0; done < n;) {
		size_t len = 0;
		int batch = n - done < 500 ? n - done : 500;

		for (int i = done; i < done + batch; i++) {
			char t[256];

			snprintf(t, sizeof(t),
			         NS "/instance?serviceName=%s&ip=198.18.%d.%d&port=80", svc,
			         i / 250, i % 250 + 1);
			len += nacos_fmt(all + len, sizeof(all) - len, "POST", t, NULL, NULL, NULL);
		}
		http_send(C, all, len);
		for (int i = 0; i < batch; i++) {
			nacos_read(C, &A);
			expect(200, "ok");
		}
		done += batch;
	}
}

Test(nacos_http_conn, statuses_and_lists_of_a_large_service)
{
	reg_many("large", 1500);
	/* Statuses first: no list has grown the worker's scratch yet. */
	call("GET", NS "/instance/statuses?key=DEFAULT_GROUP%%40%%40large");
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	cr_assert_eq(J.t[nj_get(&J, 0, "ips")].size, 1500, "every instance, not %d",
	             J.t[nj_get(&J, 0, "ips")].size);
	cr_assert_eq(list("serviceName=large"), 1500);
	call("GET", NS "/instance/statuses?key=DEFAULT_GROUP%%40%%40large");
	nj_parse(&J, A.body, A.len);
	cr_assert_eq(J.t[nj_get(&J, 0, "ips")].size, 1500, "every instance, not %d",
	             J.t[nj_get(&J, 0, "ips")].size);
}

/*
 * A long head (a 14 KiB target and 12 KiB of headers, as beat JSON and
 * metadata make them) arriving in pieces, its end and a form body in the
 * last send: answered without the client sending anything more.
 */
Test(nacos_http_conn, body_after_a_long_head_split_over_sends)
{
	static char req[80000];
	static char body[16000];
	size_t n, first, second;
	int bl = snprintf(body, sizeof(body), "serviceName=lh&ip=192.0.2.1&port=80&pad=");
	int one = 1;

	memset(body + bl, 'b', sizeof(body) - 1 - (size_t)bl);
	body[sizeof(body) - 1] = '\0';
	n = (size_t)snprintf(req, sizeof(req), "POST " NS "/instance?q=");
	memset(req + n, 'q', 14000);
	n += 14000;
	n += (size_t)snprintf(req + n, sizeof(req) - n, " HTTP/1.1\r\nHost: t\r\n");
	for (int i = 0; i < 12; i++)
		n += (size_t)snprintf(req + n, sizeof(req) - n, "X-Pad-%02d: %01000d\r\n", i, 0);
	n += (size_t)snprintf(req + n, sizeof(req) - n,
	                      "Content-Type: application/x-www-form-urlencoded\r\n"
	                      "Content-Length: %zu\r\n\r\n%s",
	                      strlen(body), body);
	setsockopt(C->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	first = 10000;
	second = 26000; /* most of the head: it ends in the third send */
	http_send(C, req, first);
	nap_ms(50); /* separate receives (not an assertion: any split must work) */
	http_send(C, req + first, second - first);
	nap_ms(50);
	http_send(C, req + second, n - second);
	nacos_read(C, &A);
	expect(200, "ok");
	cr_assert_eq(list("serviceName=lh"), 1);
}
