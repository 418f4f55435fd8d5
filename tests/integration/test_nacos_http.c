/*
 * The Nacos v1 naming HTTP API of a real distrod (issue 10, docs/nacos.md,
 * ../shared/reference/nacos-compat.md §1-2): every endpoint, every error
 * path, the HTTP framing limits, pipelining, keep-alive, a client sending
 * one byte at a time, a connection closed mid-request, 100-continue, and
 * JSON escaping checked by parsing the answers with jsmn (not the
 * server's own JSON code).
 *
 * Instances use documentation addresses only (192.0.2.0/24,
 * 198.18.0.0/15): distrod never connects to them. Each test runs its own
 * distrod, so the tests are independent; a test ends by checking that the
 * node stops cleanly (an ASan report would make it exit non-zero).
 */
#include "core/err.h"
#include "nacos_node.h"

#define NS "/nacos/v1/ns"

static struct node nd;
static struct http_conn *C; /* the test's keep-alive connection */
static struct nacos_ans A;  /* the last answer */
static struct njson J;      /* the last list, parsed */

static void start(void)
{
	static const char *const extra[] = { "--workers", "2", NULL };

	node_start(&nd, extra);
	cr_assert_gt(nd.nacos_port, 0, "no --nacos-port-file");
	C = http_open(nd.nacos_port);
}

static void stop(void)
{
	if (C)
		http_close(C);
	cr_assert_eq(node_stop(&nd), 0, "distrod exits 0 on SIGTERM");
}

TestSuite(nacos_http, .init = start, .fini = stop, .timeout = 120);

/* ---- helpers ---- */

static char target_buf[1 << 17];

static const char *vtarget(const char *fmt, va_list ap)
{
	int n = vsnprintf(target_buf, sizeof(target_buf), fmt, ap);

	cr_assert_lt((size_t)n, sizeof(target_buf));
	return target_buf;
}

/* method target (printf-style) on the test's connection, no body. The status. */
static int call(const char *method, const char *fmt, ...)
{
	va_list ap;
	const char *t;

	va_start(ap, fmt);
	t = vtarget(fmt, ap);
	va_end(ap);
	return nacos_do(C, &A, method, t, NULL, NULL);
}

/* method target with a form body (application/x-www-form-urlencoded). */
static int call_form(const char *method, const char *target, const char *body)
{
	return nacos_do(C, &A, method, target, "application/x-www-form-urlencoded", body);
}

static void expect(int status, const char *body)
{
	cr_assert_eq(A.status, status, "status %d, want %d; body: %s", A.status, status, A.body);
	if (body)
		cr_assert_str_eq(A.body, body);
}

static void expect_prefix(int status, const char *prefix)
{
	cr_assert_eq(A.status, status, "status %d, want %d; body: %s", A.status, status, A.body);
	cr_assert(strncmp(A.body, prefix, strlen(prefix)) == 0, "body \"%s\" does not start \"%s\"",
	          A.body, prefix);
}

/* POST /instance with the query (printf-style) and answer ok. */
static void reg(const char *fmt, ...)
{
	va_list ap;
	const char *q;
	char t[1 << 16];

	va_start(ap, fmt);
	q = vtarget(fmt, ap);
	va_end(ap);
	snprintf(t, sizeof(t), NS "/instance?%s", q);
	nacos_do(C, &A, "POST", t, NULL, NULL);
	expect(200, "ok");
}

/* GET /instance/list with the query: parsed into J; the number of hosts. */
static int list(const char *fmt, ...)
{
	va_list ap;
	const char *q;
	char t[1 << 16];
	int hosts;

	va_start(ap, fmt);
	q = vtarget(fmt, ap);
	va_end(ap);
	snprintf(t, sizeof(t), NS "/instance/list?%s", q);
	nacos_do(C, &A, "GET", t, NULL, NULL);
	expect(200, NULL);
	cr_assert_not_null(strstr(A.head, "\r\nContent-Type: application/json"), "%s", A.head);
	nj_parse(&J, A.body, A.len);
	hosts = nj_get(&J, 0, "hosts");
	cr_assert_geq(hosts, 0, "no hosts: %s", A.body);
	cr_assert_eq(J.t[hosts].type, JSMN_ARRAY);
	return J.t[hosts].size;
}

/* Host i of the last list (a token index of J). */
static int host(int i)
{
	return nj_at(&J, nj_get(&J, 0, "hosts"), i);
}

/* The host of the last list with this ip and port, or -1. */
static int host_of(const char *ip, const char *port)
{
	int hosts = nj_get(&J, 0, "hosts");

	for (int i = 0; i < J.t[hosts].size; i++) {
		int h = nj_at(&J, hosts, i);

		if (strcmp(nj_s(&J, h, "ip"), ip) == 0 && strcmp(nj_s(&J, h, "port"), port) == 0)
			return h;
	}
	return -1;
}

/* The metadata value of key in host token h (asserts it is there). */
static const char *meta(int h, const char *key)
{
	int m = nj_get(&J, h, "metadata");

	cr_assert_geq(m, 0);
	return nj_s(&J, m, key);
}

static int meta_n(int h)
{
	int m = nj_get(&J, h, "metadata");

	cr_assert_geq(m, 0);
	cr_assert_eq(J.t[m].type, JSMN_OBJECT);
	return J.t[m].size;
}

/* Reads until "\r\n\r\n" on c, raw (for answers without Content-Length, e.g. 100). */
static void read_head_raw(struct http_conn *c, char *out, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		ssize_t r = recv(c->fd, out + n, 1, 0);

		cr_assert_eq(r, 1, "connection closed or timed out after %zu bytes", n);
		n++;
		if (n >= 4 && memcmp(out + n - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	out[n] = '\0';
}

/* The answer on c, expected to carry Connection: close and be followed by EOF. */
static void expect_closed_after(struct http_conn *c, int status)
{
	struct nacos_ans *a = &A;

	nacos_read(c, a);
	cr_assert_eq(a->status, status, "status %d, want %d: %s", a->status, status, a->body);
	cr_assert_not_null(strcasestr(a->head, "\r\nConnection: close\r\n"), "%s", a->head);
	cr_assert(http_eof(c), "the connection stays open after %d", status);
}

/* ---- instances: register and list ---- */

Test(nacos_http, register_then_list_has_every_field)
{
	int h;

	reg("serviceName=svc1&ip=192.0.2.1&port=8080");
	cr_assert_not_null(strstr(A.head, "\r\nContent-Type: text/plain"), "%s", A.head);
	cr_assert_eq(list("serviceName=svc1"), 1, "%s", A.body);
	cr_assert_str_eq(nj_s(&J, 0, "name"), "DEFAULT_GROUP@@svc1");
	cr_assert_str_eq(nj_s(&J, 0, "dom"), "DEFAULT_GROUP@@svc1");
	cr_assert_str_eq(nj_s(&J, 0, "groupName"), "DEFAULT_GROUP");
	cr_assert_str_eq(nj_s(&J, 0, "clusters"), "");
	cr_assert_str_eq(nj_s(&J, 0, "cacheMillis"), "10000");
	cr_assert_eq(nj_type(&J, 0, "lastRefTime"), JSMN_PRIMITIVE);
	cr_assert_gt(atoll(nj_s(&J, 0, "lastRefTime")), 1600000000000LL, "wall clock ms");
	cr_assert_eq(nj_type(&J, 0, "checksum"), JSMN_STRING);
	cr_assert_str_eq(nj_s(&J, 0, "allIPs"), "false");
	h = host(0);
	cr_assert_str_eq(nj_s(&J, h, "instanceId"), "192.0.2.1#8080#DEFAULT#DEFAULT_GROUP@@svc1");
	cr_assert_str_eq(nj_s(&J, h, "ip"), "192.0.2.1");
	cr_assert_eq(nj_type(&J, h, "port"), JSMN_PRIMITIVE, "port is a number");
	cr_assert_str_eq(nj_s(&J, h, "port"), "8080");
	cr_assert_str_eq(nj_s(&J, h, "weight"), "1.0");
	cr_assert_str_eq(nj_s(&J, h, "healthy"), "true");
	cr_assert_str_eq(nj_s(&J, h, "enabled"), "true");
	cr_assert_str_eq(nj_s(&J, h, "ephemeral"), "true");
	cr_assert_str_eq(nj_s(&J, h, "valid"), "true");
	cr_assert_str_eq(nj_s(&J, h, "clusterName"), "DEFAULT");
	cr_assert_str_eq(nj_s(&J, h, "serviceName"), "DEFAULT_GROUP@@svc1");
	cr_assert_eq(meta_n(h), 0);
	/* The npm client's register: grouped name, groupName, enable, metadata {}
	 * (nacos-naming-client.md). */
	reg("namespaceId=public&serviceName=DEFAULT_GROUP%%40%%40svc1&groupName=DEFAULT_GROUP&"
	    "clusterName=NODEJS&ip=192.0.2.2&port=8080&weight=1&enable=true&healthy=true&"
	    "ephemeral=true&metadata=%%7B%%7D");
	cr_assert_eq(
	        list("namespaceId=public&serviceName=DEFAULT_GROUP%%40%%40svc1&clusters=NODEJS&"
	             "udpPort=0&clientIP=192.0.2.99&healthyOnly=false"),
	        1);
	cr_assert_str_eq(nj_s(&J, 0, "clusters"), "NODEJS");
	cr_assert_str_eq(nj_s(&J, host(0), "ip"), "192.0.2.2");
	cr_assert_eq(list("serviceName=svc1"), 2);
	/* Registering again replaces, it does not add. */
	reg("serviceName=svc1&ip=192.0.2.1&port=8080&weight=2");
	cr_assert_eq(list("serviceName=svc1"), 2);
	cr_assert_str_eq(nj_s(&J, host_of("192.0.2.1", "8080"), "weight"), "2.0");
}

Test(nacos_http, list_of_an_unknown_service_is_empty)
{
	cr_assert_eq(list("serviceName=nosuch"), 0);
	cr_assert_str_eq(nj_s(&J, 0, "name"), "DEFAULT_GROUP@@nosuch");
	call("GET", NS "/instance/list");
	expect(400, "Param 'serviceName' is required.");
	call("GET", NS "/instance/list?serviceName=s&healthyOnly=maybe");
	expect(400, NULL);
}

Test(nacos_http, missing_and_blank_parameters_are_refused)
{
	static const struct {
		const char *query, *body;
	} cases[] = {
		{ "ip=192.0.2.1&port=80", "Param 'serviceName' is required." },
		{ "serviceName=&ip=192.0.2.1&port=80", "Param 'serviceName' is required." },
		{ "dom=&ip=192.0.2.1&port=80", "Param 'serviceName' is required." },
		{ "serviceName=rq&port=80", "Param 'ip' is required." },
		{ "serviceName=rq&ip=&port=80", "Param 'ip' is required." },
		{ "serviceName=rq&ip=192.0.2.1", "Param 'port' is required." },
		{ "serviceName=rq&ip=192.0.2.1&port=", "Param 'port' is required." },
	};
	static const char *const methods[] = { "POST", "PUT", "DELETE", "PATCH", "GET" };

	reg("serviceName=rq&ip=192.0.2.200&port=1"); /* so PUT reaches its parameters */
	for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++)
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			call(methods[m], NS "/instance?%s", cases[i].query);
			cr_assert_eq(A.status, 400, "%s ?%s: %d %s", methods[m], cases[i].query,
			             A.status, A.body);
			cr_assert_str_eq(A.body, cases[i].body, "%s ?%s", methods[m],
			                 cases[i].query);
		}
	cr_assert_eq(list("serviceName=rq"), 1, "nothing but the first was registered");
}

Test(nacos_http, bad_ports_and_addresses_are_refused)
{
	static const char *const bad[] = {
		"ip=192.0.2.1&port=0",      "ip=192.0.2.1&port=70000", "ip=192.0.2.1&port=abc",
		"ip=192.0.2.1&port=-1",     "ip=192.0.2.1&port=80x",   "ip=192.0.2.1&port=65536",
		"ip=192.0.2.300&port=80",   "ip=not-an-ip&port=80",    "ip=192.0.2&port=80",
		"ip=192.0.2.1%%00&port=80",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		call("POST", NS "/instance?serviceName=bp&%s", bad[i]);
		cr_assert_eq(A.status, 400, "?%s: %d %s", bad[i], A.status, A.body);
	}
	cr_assert_eq(list("serviceName=bp"), 0);
	reg("serviceName=bp&ip=192.0.2.1&port=65535");
	reg("serviceName=bp&ip=192.0.2.1&port=1");
	reg("serviceName=bp&ip=2001:db8::1&port=80");
	cr_assert_eq(list("serviceName=bp"), 3);
	cr_assert_geq(host_of("2001:db8::1", "80"), 0, "%s", A.body);
}

Test(nacos_http, weight_out_of_range_is_refused)
{
	static const char *const bad[] = {
		"-1", "-0.5", "10000.5", "1e9", "abc", "nan", "inf", "1x"
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		call("POST", NS "/instance?serviceName=w&ip=192.0.2.1&port=80&weight=%s", bad[i]);
		cr_assert_eq(A.status, 400, "weight=%s: %d %s", bad[i], A.status, A.body);
		if (i < 4)
			cr_assert_str_eq(A.body,
			                 "instance format invalid: The weights range from 0.0 to "
			                 "10000.0");
	}
	cr_assert_eq(list("serviceName=w"), 0);
	reg("serviceName=w&ip=192.0.2.1&port=1&weight=10000");
	reg("serviceName=w&ip=192.0.2.1&port=2&weight=0");
	reg("serviceName=w&ip=192.0.2.1&port=3&weight=0.5");
	cr_assert_eq(list("serviceName=w"), 3);
	cr_assert_str_eq(nj_s(&J, host_of("192.0.2.1", "1"), "weight"), "10000.0");
	cr_assert_str_eq(nj_s(&J, host_of("192.0.2.1", "2"), "weight"), "0.0");
	cr_assert_str_eq(nj_s(&J, host_of("192.0.2.1", "3"), "weight"), "0.5");
}

Test(nacos_http, metadata_json_and_the_kv_fallback)
{
	static const char *const bad[] = {
		"{\"a\":\"1\"",          /* unterminated JSON, and not k=v either */
		"{\"a\":{\"b\":\"c\"}}", /* nested */
		"[\"a\"]",               /* not an object */
		"a=1,,b=2",              /* k=v with an empty piece */
		"a=",                    /* k=v without a value */
		"a=b=c",                 /* k=v with two '=' */
		"novalue",               /* neither */
	};
	int h;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		call("POST", NS "/instance?serviceName=md&ip=192.0.2.1&port=80&metadata=%s",
		     nacos_enc(bad[i]));
		cr_assert_eq(A.status, 400, "metadata=%s: %d %s", bad[i], A.status, A.body);
		cr_assert(strncmp(A.body, "metadata format incorrect:", 26) == 0, "%s", A.body);
	}
	cr_assert_eq(list("serviceName=md"), 0);

	reg("serviceName=md&ip=192.0.2.1&port=1&metadata=%s",
	    nacos_enc("{\"a\":\"1\",\"b\":\"x y\"}"));
	reg("serviceName=md&ip=192.0.2.1&port=2&metadata=%s", nacos_enc("k1=v1,k2=v2"));
	reg("serviceName=md&ip=192.0.2.1&port=3&metadata=%s",
	    nacos_enc("{\"n\":5,\"t\":true,\"z\":null}"));
	reg("serviceName=md&ip=192.0.2.1&port=4&metadata=%s",
	    nacos_enc("{\"d\":\"1\",\"d\":\"2\"}"));
	reg("serviceName=md&ip=192.0.2.1&port=5&metadata=%%20");
	cr_assert_eq(list("serviceName=md"), 5);
	h = host_of("192.0.2.1", "1");
	cr_assert_eq(meta_n(h), 2);
	cr_assert_str_eq(meta(h, "a"), "1");
	cr_assert_str_eq(meta(h, "b"), "x y");
	h = host_of("192.0.2.1", "2");
	cr_assert_eq(meta_n(h), 2);
	cr_assert_str_eq(meta(h, "k1"), "v1");
	cr_assert_str_eq(meta(h, "k2"), "v2");
	h = host_of("192.0.2.1", "3");
	cr_assert_eq(nj_get(&J, nj_get(&J, h, "metadata"), "n") >= 0, true);
	cr_assert_eq(J.t[nj_get(&J, nj_get(&J, h, "metadata"), "n")].type, JSMN_STRING,
	             "metadata values are strings");
	cr_assert_str_eq(meta(h, "n"), "5");
	cr_assert_str_eq(meta(h, "t"), "true");
	cr_assert_str_eq(meta(h, "z"), "");
	h = host_of("192.0.2.1", "4");
	cr_assert_eq(meta_n(h), 1, "a repeated key once");
	cr_assert_str_eq(meta(h, "d"), "2", "the last value wins");
	cr_assert_eq(meta_n(host_of("192.0.2.1", "5")), 0, "blank metadata is none");
}

/* ---- names: groups, dom, namespaces ---- */

Test(nacos_http, grouped_names_and_group_name)
{
	reg("serviceName=G1%%40%%40gs&ip=192.0.2.1&port=80");
	cr_assert_eq(list("serviceName=G1%%40%%40gs"), 1);
	cr_assert_str_eq(nj_s(&J, 0, "name"), "G1@@gs");
	cr_assert_str_eq(nj_s(&J, 0, "groupName"), "G1");
	cr_assert_str_eq(nj_s(&J, host(0), "serviceName"), "G1@@gs");
	cr_assert_str_eq(nj_s(&J, host(0), "instanceId"), "192.0.2.1#80#DEFAULT#G1@@gs");
	cr_assert_eq(list("serviceName=gs&groupName=G1"), 1);
	cr_assert_str_eq(nj_s(&J, 0, "name"), "G1@@gs");
	cr_assert_eq(list("serviceName=gs"), 0, "DEFAULT_GROUP@@gs is another service");
	cr_assert_str_eq(nj_s(&J, 0, "name"), "DEFAULT_GROUP@@gs");
	cr_assert_eq(list("serviceName=gs&groupName=G2"), 0);
	reg("serviceName=gs&groupName=G2&ip=192.0.2.2&port=80");
	cr_assert_eq(list("serviceName=G2%%40%%40gs"), 1);
	cr_assert_str_eq(nj_s(&J, host(0), "ip"), "192.0.2.2");
	/* A grouped name carries its group; groupName does not override it. */
	cr_assert_eq(list("serviceName=G1%%40%%40gs&groupName=G2"), 1);
	cr_assert_str_eq(nj_s(&J, host(0), "ip"), "192.0.2.1");
	/* Blank groupName is the default group. */
	reg("serviceName=gs&groupName=&ip=192.0.2.3&port=80");
	cr_assert_eq(list("serviceName=DEFAULT_GROUP%%40%%40gs"), 1);
	for (int i = 0; i < 3; i++) {
		static const char *const bad[] = { "%40%40gs", "G1%40%40", "a%40%40b%40%40c" };

		call("POST", NS "/instance?serviceName=%s&ip=192.0.2.1&port=80", bad[i]);
		expect(400, "Param 'serviceName' is illegal, it should be format as "
		            "'groupName@@serviceName'");
		call("GET", NS "/instance/list?serviceName=%s", bad[i]);
		expect(400, NULL);
	}
}

Test(nacos_http, dom_is_serviceName)
{
	reg("dom=ds&ip=192.0.2.1&port=80");
	cr_assert_eq(list("serviceName=ds"), 1);
	cr_assert_eq(list("dom=ds"), 1);
	cr_assert_str_eq(nj_s(&J, 0, "dom"), "DEFAULT_GROUP@@ds");
	/* serviceName wins over dom. */
	cr_assert_eq(list("serviceName=other&dom=ds"), 0);
	call("DELETE", NS "/instance?dom=ds&ip=192.0.2.1&port=80");
	expect(200, "ok");
	cr_assert_eq(list("dom=ds"), 0);
}

Test(nacos_http, namespaces_scope_instances_and_services)
{
	int svcs;

	reg("namespaceId=nsA&serviceName=s&ip=192.0.2.1&port=80");
	cr_assert_eq(list("namespaceId=nsA&serviceName=s"), 1);
	cr_assert_eq(list("namespaceId=nsB&serviceName=s"), 0);
	cr_assert_eq(list("serviceName=s"), 0, "public is another namespace");
	cr_assert_eq(list("namespaceId=&serviceName=s"), 0, "blank is public");
	reg("namespaceId=public&serviceName=s&ip=192.0.2.2&port=80");
	cr_assert_eq(list("serviceName=s"), 1);
	cr_assert_str_eq(nj_s(&J, host(0), "ip"), "192.0.2.2");
	/* A delete in B does not touch A. */
	call("DELETE", NS "/instance?namespaceId=nsB&serviceName=s&ip=192.0.2.1&port=80");
	expect(200, "ok");
	cr_assert_eq(list("namespaceId=nsA&serviceName=s"), 1);
	call("GET", NS "/service/names?namespaceId=nsA");
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "count"), "1");
	svcs = nj_get(&J, nj_get(&J, 0, "services"), "nsA");
	cr_assert_geq(svcs, 0, "%s", A.body);
	cr_assert_eq(J.t[svcs].size, 1);
	call("GET", NS "/service/names?namespaceId=nsB");
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "count"), "0");
	call("GET", NS "/instance/statuses?key=nsA%%23%%23DEFAULT_GROUP%%40%%40s");
	expect(200, "{\"ips\":[\"192.0.2.1:80_true\"]}");
}

/* ---- list filters ---- */

Test(nacos_http, clusters_filter_and_echo)
{
	static const char *const echo[] = { "c1,c3", "c3,c1", "c1,,c3,", ",c1,c3" };

	reg("serviceName=cl&clusterName=c1&ip=192.0.2.1&port=80");
	reg("serviceName=cl&clusterName=c2&ip=192.0.2.2&port=80");
	reg("serviceName=cl&clusterName=c3&ip=192.0.2.3&port=80");
	reg("serviceName=cl&cluster=c2&ip=192.0.2.4&port=80"); /* the old name of clusterName */
	cr_assert_eq(list("serviceName=cl"), 4);
	cr_assert_str_eq(nj_s(&J, host_of("192.0.2.4", "80"), "clusterName"), "c2");
	for (size_t i = 0; i < sizeof(echo) / sizeof(echo[0]); i++) {
		cr_assert_eq(list("serviceName=cl&clusters=%s", nacos_enc(echo[i])), 2,
		             "clusters=%s", echo[i]);
		cr_assert_str_eq(nj_s(&J, 0, "clusters"), echo[i], "echoed byte for byte");
		cr_assert_str_eq(nj_s(&J, host_of("192.0.2.1", "80"), "clusterName"), "c1");
		cr_assert_str_eq(nj_s(&J, host_of("192.0.2.3", "80"), "clusterName"), "c3");
	}
	cr_assert_eq(list("serviceName=cl&clusters=c2"), 2);
	cr_assert_eq(list("serviceName=cl&clusters=nosuch"), 0);
	cr_assert_str_eq(nj_s(&J, 0, "clusters"), "nosuch");
	cr_assert_eq(list("serviceName=cl&clusters="), 4);
	/* Bytes a client may send in clusters come back as they were. */
	cr_assert_eq(list("serviceName=cl&clusters=%s", nacos_enc("c1,\"<x>\"")), 1);
	cr_assert_str_eq(nj_s(&J, 0, "clusters"), "c1,\"<x>\"");
	call("POST", NS "/instance?serviceName=cl&clusterName=%s&ip=192.0.2.9&port=80",
	     nacos_enc("c 1"));
	expect(400, NULL);
	call("POST", NS "/instance?serviceName=cl&clusterName=a%%40b&ip=192.0.2.9&port=80");
	expect(400, NULL);
}

Test(nacos_http, healthy_only)
{
	reg("serviceName=ho&ip=192.0.2.1&port=80&healthy=true");
	reg("serviceName=ho&ip=192.0.2.2&port=80&healthy=false");
	cr_assert_eq(list("serviceName=ho"), 2);
	cr_assert_str_eq(nj_s(&J, host_of("192.0.2.2", "80"), "healthy"), "false");
	cr_assert_str_eq(nj_s(&J, host_of("192.0.2.1", "80"), "healthy"), "true");
	cr_assert_eq(list("serviceName=ho&healthyOnly=true"), 1);
	cr_assert_str_eq(nj_s(&J, host(0), "ip"), "192.0.2.1");
	cr_assert_eq(list("serviceName=ho&healthyOnly=false"), 2);
	cr_assert_eq(list("serviceName=ho&healthyOnly="), 2, "blank is the default");
	call("POST", NS "/instance?serviceName=ho&ip=192.0.2.3&port=80&healthy=yes");
	expect(400, NULL);
}

Test(nacos_http, disabled_instances_are_not_listed)
{
	reg("serviceName=en&ip=192.0.2.1&port=80&enabled=false");
	reg("serviceName=en&ip=192.0.2.2&port=80&enable=false"); /* the npm client's name */
	reg("serviceName=en&ip=192.0.2.3&port=80&enabled=true&enable=false"); /* enabled wins */
	reg("serviceName=en&ip=192.0.2.4&port=80");
	cr_assert_eq(list("serviceName=en"), 2, "%s", A.body);
	cr_assert_geq(host_of("192.0.2.3", "80"), 0);
	cr_assert_geq(host_of("192.0.2.4", "80"), 0);
	cr_assert_eq(list("serviceName=en&healthyOnly=true"), 2);
	call("GET", NS "/instance?serviceName=en&ip=192.0.2.1&port=80");
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "enabled"), "false", "disabled, not gone");
	call("POST", NS "/instance?serviceName=en&ip=192.0.2.5&port=80&enabled=no");
	expect(400, NULL);
}

/* ---- beats ---- */

static const char *beat_json(const char *svc, const char *ip, int port, const char *extra)
{
	static char b[4096];

	snprintf(b, sizeof(b),
	         "{\"serviceName\":\"%s\",\"ip\":\"%s\",\"port\":%d,\"cluster\":\"DEFAULT\","
	         "\"weight\":2,\"scheduled\":true%s}",
	         svc, ip, port, extra ? extra : "");
	return b;
}

/* The beat answer in A: its clientBeatInterval and code. */
static void beat_answer(long *interval, long *code)
{
	cr_assert_eq(A.status, 200, "%d %s", A.status, A.body);
	cr_assert_not_null(strstr(A.head, "\r\nContent-Type: application/json"), "%s", A.head);
	nj_parse(&J, A.body, A.len);
	cr_assert_eq(nj_type(&J, 0, "clientBeatInterval"), JSMN_PRIMITIVE);
	*interval = atol(nj_s(&J, 0, "clientBeatInterval"));
	*code = atol(nj_s(&J, 0, "code"));
}

Test(nacos_http, beat_with_a_body_recreates_an_unknown_instance)
{
	long interval, code;
	int h;

	call("PUT",
	     NS "/instance/beat?namespaceId=public&serviceName=DEFAULT_GROUP%%40%%40bt&beat=%s",
	     nacos_enc(beat_json("DEFAULT_GROUP@@bt", "192.0.2.9", 9000,
	                         ",\"metadata\":{\"k\":\"v\"}")));
	beat_answer(&interval, &code);
	cr_assert_eq(interval, 5000);
	cr_assert_eq(code, 10200);
	cr_assert_eq(list("serviceName=bt"), 1, "re-created from the beat");
	h = host(0);
	cr_assert_str_eq(nj_s(&J, h, "ip"), "192.0.2.9");
	cr_assert_str_eq(nj_s(&J, h, "port"), "9000");
	cr_assert_str_eq(nj_s(&J, h, "weight"), "2.0");
	cr_assert_str_eq(nj_s(&J, h, "healthy"), "true");
	cr_assert_str_eq(meta(h, "k"), "v");
	/* Java 1.x: the beat in a form body, the rest in the query. */
	{
		char body[4096];

		snprintf(body, sizeof(body), "beat=%s",
		         nacos_enc(beat_json("DEFAULT_GROUP@@bt", "192.0.2.10", 9000, NULL)));
		call_form("PUT", NS "/instance/beat?serviceName=DEFAULT_GROUP%40%40bt", body);
	}
	beat_answer(&interval, &code);
	cr_assert_eq(code, 10200);
	cr_assert_eq(list("serviceName=bt"), 2);
	/* No serviceName parameter: the beat's names the service. */
	call("PUT", NS "/instance/beat?beat=%s",
	     nacos_enc(beat_json("G9@@bt2", "192.0.2.11", 9000, NULL)));
	beat_answer(&interval, &code);
	cr_assert_eq(code, 10200);
	cr_assert_eq(list("serviceName=G9%%40%%40bt2"), 1);
	/* Not a beat. */
	call("PUT", NS "/instance/beat?serviceName=bt&beat=%s", nacos_enc("{\"ip\":"));
	expect(400, NULL);
	call("PUT", NS "/instance/beat?serviceName=bt&beat=%s", nacos_enc("[1,2]"));
	expect(400, NULL);
}

Test(nacos_http, beat_without_a_body_for_an_unknown_instance_is_20404)
{
	long interval, code;

	call("PUT", NS "/instance/beat?serviceName=nb&ip=192.0.2.1&port=80");
	expect(200, "{\"clientBeatInterval\":5000,\"code\":20404}");
	cr_assert_eq(list("serviceName=nb"), 0, "a light beat creates nothing");
	reg("serviceName=nb&ip=192.0.2.1&port=80");
	call("PUT", NS "/instance/beat?serviceName=nb&ip=192.0.2.1&port=80");
	beat_answer(&interval, &code);
	cr_assert_eq(interval, 5000);
	cr_assert_eq(code, 10200);
	/* Another cluster is another instance. */
	call("PUT", NS "/instance/beat?serviceName=nb&ip=192.0.2.1&port=80&clusterName=other");
	expect(200, "{\"clientBeatInterval\":5000,\"code\":20404}");
	call("PUT", NS "/instance/beat?serviceName=nb&ip=192.0.2.1");
	expect(400, "Param 'port' is required.");
}

Test(nacos_http, beat_interval_follows_preserved_metadata)
{
	long interval, code;

	reg("serviceName=bi&ip=192.0.2.1&port=80&metadata=%s",
	    nacos_enc("{\"preserved.heart.beat.interval\":\"3000\"}"));
	call("PUT", NS "/instance/beat?serviceName=bi&ip=192.0.2.1&port=80");
	beat_answer(&interval, &code);
	cr_assert_eq(interval, 3000);
	cr_assert_eq(code, 10200);
	cr_assert_eq(list("serviceName=bi"), 1);
	cr_assert_str_eq(nj_s(&J, host(0), "instanceHeartBeatInterval"), "3000");
	/* A beat whose metadata says 2000. */
	call("PUT", NS "/instance/beat?serviceName=bi&beat=%s",
	     nacos_enc(beat_json("bi", "192.0.2.2", 80,
	                         ",\"metadata\":{\"preserved.heart.beat.interval\":\"2000\"}")));
	beat_answer(&interval, &code);
	cr_assert_eq(interval, 2000);
	cr_assert_eq(code, 10200);
	/* Registered without it: the default. */
	reg("serviceName=bi&ip=192.0.2.3&port=80");
	call("PUT", NS "/instance/beat?serviceName=bi&ip=192.0.2.3&port=80");
	beat_answer(&interval, &code);
	cr_assert_eq(interval, 5000);
}

/* ---- delete, update, patch, detail ---- */

Test(nacos_http, delete_is_visible_at_once)
{
	struct http_conn *other = http_open(nd.nacos_port);

	reg("serviceName=dl&ip=192.0.2.1&port=80");
	reg("serviceName=dl&ip=192.0.2.2&port=80");
	cr_assert_eq(list("serviceName=dl"), 2);
	call("DELETE", NS "/instance?serviceName=dl&ip=192.0.2.1&port=80");
	expect(200, "ok");
	cr_assert_eq(list("serviceName=dl"), 1, "the next list, same connection");
	nacos_do(other, &A, "GET", NS "/instance/list?serviceName=dl", NULL, NULL);
	nj_parse(&J, A.body, A.len);
	cr_assert_eq(J.t[nj_get(&J, 0, "hosts")].size, 1, "the next list, another connection");
	http_close(other);
	/* Unknown instance, unknown service, other cluster: ok, nothing changes. */
	call("DELETE", NS "/instance?serviceName=dl&ip=192.0.2.1&port=80");
	expect(200, "ok");
	call("DELETE", NS "/instance?serviceName=nosuch&ip=192.0.2.1&port=80");
	expect(200, "ok");
	call("DELETE", NS "/instance?serviceName=dl&ip=192.0.2.2&port=80&clusterName=other");
	expect(200, "ok");
	cr_assert_eq(list("serviceName=dl"), 1);
	call("DELETE", NS "/instance?serviceName=dl&ip=192.0.2.2&port=80&ephemeral=true");
	expect(200, "ok");
	cr_assert_eq(list("serviceName=dl"), 0);
}

Test(nacos_http, put_updates_and_refuses_an_unknown_service)
{
	call("PUT", NS "/instance?serviceName=nosuch&ip=192.0.2.1&port=80");
	expect(400, "service not found, namespace: public, service: DEFAULT_GROUP@@nosuch");
	cr_assert_eq(list("serviceName=nosuch"), 0);
	reg("serviceName=up&ip=192.0.2.1&port=80");
	call("PUT", NS "/instance?serviceName=up&ip=192.0.2.1&port=80&weight=3&enabled=true");
	expect(200, "ok");
	cr_assert_eq(list("serviceName=up"), 1);
	cr_assert_str_eq(nj_s(&J, host(0), "weight"), "3.0");
	/* PUT of a new instance of a known service creates it. */
	call("PUT", NS "/instance?serviceName=up&ip=192.0.2.2&port=80");
	expect(200, "ok");
	cr_assert_eq(list("serviceName=up"), 2);
	call("PUT", NS "/instance?serviceName=up&ip=192.0.2.2&port=80&weight=-1");
	expect(400, NULL);
}

Test(nacos_http, patch_changes_only_what_it_names)
{
	int h;

	call("PATCH", NS "/instance?serviceName=pt&ip=192.0.2.1&port=80&weight=2");
	expect(404, "instance not found");
	cr_assert_eq(list("serviceName=pt"), 0);
	reg("serviceName=pt&ip=192.0.2.1&port=80&weight=1&metadata=%s",
	    nacos_enc("{\"a\":\"1\",\"b\":\"2\"}"));
	call("PATCH", NS "/instance?serviceName=pt&ip=192.0.2.1&port=80&weight=4");
	expect(200, "ok");
	cr_assert_eq(list("serviceName=pt"), 1);
	h = host(0);
	cr_assert_str_eq(nj_s(&J, h, "weight"), "4.0");
	cr_assert_eq(meta_n(h), 2, "metadata kept");
	cr_assert_str_eq(meta(h, "a"), "1");
	cr_assert_str_eq(meta(h, "b"), "2");
	cr_assert_str_eq(nj_s(&J, h, "healthy"), "true");
	call("PATCH", NS "/instance?serviceName=pt&ip=192.0.2.1&port=80&metadata=%s",
	     nacos_enc("{\"c\":\"3\"}"));
	expect(200, "ok");
	cr_assert_eq(list("serviceName=pt"), 1);
	h = host(0);
	cr_assert_str_eq(nj_s(&J, h, "weight"), "4.0", "weight kept");
	cr_assert_eq(meta_n(h), 1);
	cr_assert_str_eq(meta(h, "c"), "3");
	call("PATCH", NS "/instance?serviceName=pt&ip=192.0.2.1&port=80&healthy=false");
	expect(200, "ok");
	cr_assert_eq(list("serviceName=pt"), 1);
	cr_assert_str_eq(nj_s(&J, host(0), "healthy"), "false");
	call("PATCH", NS "/instance?serviceName=pt&ip=192.0.2.1&port=80&enabled=false");
	expect(200, "ok");
	cr_assert_eq(list("serviceName=pt"), 0, "disabled by PATCH");
	call("PATCH", NS "/instance?serviceName=pt&ip=192.0.2.1&port=80&weight=20000");
	expect(400, NULL);
	call("PATCH", NS "/instance?serviceName=pt&ip=192.0.2.1&port=80&metadata=%s",
	     nacos_enc("{\"x\":[1]}"));
	expect(400, NULL);
}

Test(nacos_http, detail_of_an_instance)
{
	reg("serviceName=G%%40%%40dt&clusterName=c1&ip=192.0.2.1&port=80&weight=1.5&metadata=%s",
	    nacos_enc("{\"k\":\"v\"}"));
	call("GET", NS "/instance?serviceName=G%%40%%40dt&clusterName=c1&ip=192.0.2.1&port=80");
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "service"), "G@@dt");
	cr_assert_str_eq(nj_s(&J, 0, "ip"), "192.0.2.1");
	cr_assert_str_eq(nj_s(&J, 0, "port"), "80");
	cr_assert_str_eq(nj_s(&J, 0, "clusterName"), "c1");
	cr_assert_str_eq(nj_s(&J, 0, "weight"), "1.5");
	cr_assert_str_eq(nj_s(&J, 0, "healthy"), "true");
	cr_assert_str_eq(nj_s(&J, 0, "instanceId"), "192.0.2.1#80#c1#G@@dt");
	cr_assert_str_eq(nj_s(&J, nj_get(&J, 0, "metadata"), "k"), "v");
	call("GET", NS "/instance?serviceName=G%%40%%40dt&ip=192.0.2.1&port=80");
	expect(404, NULL); /* cluster DEFAULT */
	call("GET", NS "/instance?serviceName=G%%40%%40dt&clusterName=c1&ip=192.0.2.2&port=80");
	expect(404, NULL);
	call("GET", NS "/instance?serviceName=nosuch&ip=192.0.2.1&port=80");
	expect(404, NULL);
	call("GET", NS "/instance?serviceName=G%%40%%40dt&clusterName=c1&ip=192.0.2.1");
	expect(400, "Param 'port' is required.");
}

Test(nacos_http, statuses)
{
	int ips;
	bool seen1 = false, seen2 = false;

	reg("serviceName=st&ip=192.0.2.1&port=80");
	reg("serviceName=st&ip=192.0.2.2&port=81&healthy=false");
	call("GET", NS "/instance/statuses?key=DEFAULT_GROUP%%40%%40st");
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	ips = nj_get(&J, 0, "ips");
	cr_assert_eq(J.t[ips].size, 2, "%s", A.body);
	for (int i = 0; i < 2; i++) {
		char s[64];

		nj_str_at(&J, nj_at(&J, ips, i), s, sizeof(s));
		seen1 |= strcmp(s, "192.0.2.1:80_true") == 0;
		seen2 |= strcmp(s, "192.0.2.2:81_false") == 0;
	}
	cr_assert(seen1 && seen2, "%s", A.body);
	call("GET", NS "/instance/statuses?key=public%%23%%23DEFAULT_GROUP%%40%%40st");
	expect(200, NULL);
	call("GET", NS "/instance/statuses");
	expect(400, "Param 'key' is required.");
	call("GET", NS "/instance/statuses?key=st");
	expect(400, NULL);
	call("GET", NS "/instance/statuses?key=DEFAULT_GROUP%%40%%40nosuch");
	expect(404, NULL);
}

/* ---- services ---- */

Test(nacos_http, service_list_pages_and_counts)
{
	char seen[5] = { 0 };
	int total = 0;

	for (int i = 0; i < 5; i++)
		reg("namespaceId=pg&serviceName=sv%d&ip=192.0.2.1&port=80", i);
	reg("namespaceId=pg&serviceName=G%%40%%40other&ip=192.0.2.1&port=80");
	for (int page = 0; page <= 4; page++) {
		int doms, want = page <= 1 ? 2 : page == 2 ? 2 : page == 3 ? 1 : 0;

		call("GET",
		     NS "/service/list?pageNo=%d&pageSize=2&namespaceId=pg&groupName=DEFAULT_GROUP",
		     page);
		expect(200, NULL);
		nj_parse(&J, A.body, A.len);
		cr_assert_str_eq(nj_s(&J, 0, "count"), "5", "count is the total: %s", A.body);
		doms = nj_get(&J, 0, "doms");
		cr_assert_eq(J.t[doms].size, want, "page %d: %s", page, A.body);
		for (int i = 0; i < J.t[doms].size && page >= 1; i++) {
			char s[64];

			nj_str_at(&J, nj_at(&J, doms, i), s, sizeof(s));
			cr_assert(strncmp(s, "sv", 2) == 0 && s[2] >= '0' && s[2] <= '4' && !s[3],
			          "bare names: %s", s);
			cr_assert_eq(seen[s[2] - '0'], 0, "%s twice", s);
			seen[s[2] - '0'] = 1;
			total++;
		}
	}
	cr_assert_eq(total, 5, "pages 1..3 hold every service once");
	/* pageNo=0 (the npm client's) is the first page. */
	{
		char first[512];

		call("GET", NS "/service/list?pageNo=1&pageSize=2&namespaceId=pg");
		cr_assert_lt(A.len, sizeof(first));
		memcpy(first, A.body, A.len + 1);
		call("GET", NS "/service/list?pageNo=0&pageSize=2&namespaceId=pg");
		cr_assert_str_eq(A.body, first);
	}
	call("GET", NS "/service/list?pageNo=1&pageSize=10&namespaceId=pg&groupName=G");
	expect(200, "{\"doms\":[\"other\"],\"count\":1}");
	call("GET", NS "/service/list?pageNo=1&pageSize=10&namespaceId=pg&groupName=NONE");
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "count"), "0");
	call("GET", NS "/service/list?pageNo=1&pageSize=10&namespaceId=empty");
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "count"), "0");
	call("GET", NS "/service/list?pageNo=x&pageSize=10");
	expect(400, NULL);
	/* Deleting a service's last instance removes it from the list. */
	call("DELETE", NS "/instance?namespaceId=pg&serviceName=sv0&ip=192.0.2.1&port=80");
	call("GET", NS "/service/list?pageNo=1&pageSize=10&namespaceId=pg");
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "count"), "4", "%s", A.body);
}

Test(nacos_http, service_names)
{
	int arr;
	bool a = false, b = false;

	reg("namespaceId=nm&serviceName=a&ip=192.0.2.1&port=80");
	reg("namespaceId=nm&serviceName=G%%40%%40b&ip=192.0.2.1&port=80");
	reg("namespaceId=other&serviceName=c&ip=192.0.2.1&port=80");
	call("GET", NS "/service/names?namespaceId=nm");
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "count"), "2");
	arr = nj_get(&J, nj_get(&J, 0, "services"), "nm");
	cr_assert_eq(J.t[arr].size, 2, "%s", A.body);
	for (int i = 0; i < 2; i++) {
		char s[64];

		nj_str_at(&J, nj_at(&J, arr, i), s, sizeof(s));
		a |= strcmp(s, "DEFAULT_GROUP@@a") == 0;
		b |= strcmp(s, "G@@b") == 0;
	}
	cr_assert(a && b, "%s", A.body);
	call("GET", NS "/service/names");
	expect(200, "{\"services\":{\"public\":[]},\"count\":0}");
}

/* ---- parameters from form bodies ---- */

/* ---- service-level state: POST/PUT/DELETE/GET /service, protection ---- */

/* GET /service?<query>: parsed into J (asserts 200). */
static void service_get(const char *fmt, ...)
{
	va_list ap;
	const char *q;
	char t[1 << 16];

	va_start(ap, fmt);
	q = vtarget(fmt, ap);
	va_end(ap);
	snprintf(t, sizeof(t), NS "/service?%s", q);
	nacos_do(C, &A, "GET", t, NULL, NULL);
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
}

/* The count of GET /service/list (default namespace and group). */
static int service_count(void)
{
	call("GET", NS "/service/list?pageNo=1&pageSize=100");
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	return atoi(nj_s(&J, 0, "count"));
}

Test(nacos_http, service_create_get_update_delete)
{
	char dom[64];
	int m, cl;

	call("GET", NS "/service?serviceName=sv");
	expect(400, "service not found, namespace: public, serviceName: sv");
	call("POST", NS "/service");
	expect(400, "Param 'serviceName' is required.");
	call("POST", NS "/service?serviceName=sv&protectThreshold=x");
	expect(400, "Param 'protectThreshold' is not a number.");
	call("POST", NS "/service?serviceName=sv&metadata=%s", nacos_enc("{\"a\":"));
	expect_prefix(400, "metadata format incorrect:");
	cr_assert_eq(service_count(), 0, "refused creates create nothing");

	call("POST", NS "/service?serviceName=sv&protectThreshold=0.5&metadata=%s&selector=%s",
	     nacos_enc("{\"k\":\"v\"}"), nacos_enc("{\"type\":\"none\"}"));
	expect(200, "ok");
	call("POST", NS "/service?serviceName=sv");
	expect(400, "specified service DEFAULT_GROUP@@sv already exists!");
	service_get("serviceName=sv");
	cr_assert_str_eq(nj_s(&J, 0, "name"), "sv");
	cr_assert_str_eq(nj_s(&J, 0, "groupName"), "DEFAULT_GROUP");
	cr_assert_str_eq(nj_s(&J, 0, "namespaceId"), "public");
	cr_assert_str_eq(nj_s(&J, 0, "protectThreshold"), "0.5");
	m = nj_get(&J, 0, "metadata");
	cr_assert_eq(J.t[m].size, 1, "%s", A.body);
	cr_assert_str_eq(nj_s(&J, m, "k"), "v");
	cr_assert_str_eq(nj_s(&J, nj_get(&J, 0, "selector"), "type"), "none");
	cl = nj_get(&J, 0, "clusters");
	cr_assert_eq(J.t[cl].type, JSMN_ARRAY);
	cr_assert_eq(J.t[cl].size, 0, "no instance, no cluster: %s", A.body);

	/* An empty service exists: listed by name, its list empty with its metadata. */
	cr_assert_eq(service_count(), 1);
	nj_str_at(&J, nj_at(&J, nj_get(&J, 0, "doms"), 0), dom, sizeof(dom));
	cr_assert_str_eq(dom, "sv");
	cr_assert_eq(list("serviceName=sv"), 0);
	cr_assert_str_eq(nj_s(&J, nj_get(&J, 0, "metadata"), "k"), "v");
	call("GET", NS "/operator/metrics");
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "instanceCount"), "0", "the service record is no instance");

	/* PUT: protectThreshold required; metadata kept when absent, replaced when given. */
	call("PUT", NS "/service?serviceName=sv");
	expect(400, "Param 'protectThreshold' is required.");
	call("PUT", NS "/service?serviceName=sv&protectThreshold=abc");
	expect(400, "Param 'protectThreshold' is not a number.");
	call("PUT", NS "/service?serviceName=nosuch&protectThreshold=0.1");
	expect(400, "service DEFAULT_GROUP@@nosuch not found!");
	call_form("PUT", NS "/service", "serviceName=sv&protectThreshold=0.8");
	expect(200, "ok");
	service_get("serviceName=DEFAULT_GROUP%%40%%40sv");
	cr_assert_str_eq(nj_s(&J, 0, "protectThreshold"), "0.8");
	cr_assert_str_eq(nj_s(&J, nj_get(&J, 0, "metadata"), "k"), "v");
	call("PUT", NS "/service?serviceName=sv&protectThreshold=7&metadata=%s",
	     nacos_enc("a=1,b=2"));
	expect(200, "ok");
	service_get("serviceName=sv");
	cr_assert_str_eq(nj_s(&J, 0, "protectThreshold"), "1.0", "clamped to 0..1");
	m = nj_get(&J, 0, "metadata");
	cr_assert_eq(J.t[m].size, 2, "%s", A.body);
	cr_assert_str_eq(nj_s(&J, m, "a"), "1");
	cr_assert_str_eq(nj_s(&J, m, "b"), "2");
	call("PUT", NS "/service?serviceName=sv&protectThreshold=-3");
	expect(200, "ok");
	service_get("serviceName=sv");
	cr_assert_str_eq(nj_s(&J, 0, "protectThreshold"), "0.0");

	/* Instances: their clusters in GET; DELETE refused until they are gone. */
	reg("serviceName=sv&clusterName=c1&ip=192.0.2.1&port=80");
	reg("serviceName=sv&clusterName=c1&ip=192.0.2.2&port=80");
	reg("serviceName=sv&clusterName=c2&ip=192.0.2.3&port=80");
	service_get("serviceName=sv");
	cl = nj_get(&J, 0, "clusters");
	cr_assert_eq(J.t[cl].size, 2, "%s", A.body);
	for (int i = 0; i < 2; i++) {
		int c = nj_at(&J, cl, i);
		const char *name = nj_s(&J, c, "name");

		cr_assert(strcmp(name, "c1") == 0 || strcmp(name, "c2") == 0, "%s", A.body);
		cr_assert_str_eq(nj_s(&J, nj_get(&J, c, "healthChecker"), "type"), "NONE");
		cr_assert_eq(nj_type(&J, c, "metadata"), JSMN_OBJECT);
	}
	call("DELETE", NS "/service?serviceName=sv");
	expect(400, "Service DEFAULT_GROUP@@sv is not empty, can't be delete. Please unregister "
	            "instance first");
	call("DELETE", NS "/instance?serviceName=sv&clusterName=c1&ip=192.0.2.1&port=80");
	call("DELETE", NS "/instance?serviceName=sv&clusterName=c1&ip=192.0.2.2&port=80");
	call("DELETE", NS "/instance?serviceName=sv&clusterName=c2&ip=192.0.2.3&port=80");
	expect(200, "ok");
	call("DELETE", NS "/service?serviceName=sv");
	expect(200, "ok");
	call("GET", NS "/service?serviceName=sv");
	expect(400, "service not found, namespace: public, serviceName: sv");
	call("DELETE", NS "/service?serviceName=sv");
	expect(400, "service DEFAULT_GROUP@@sv not found!");
	cr_assert_eq(service_count(), 0);
	/* Created again after a delete: a new service, defaults and all. */
	call("POST", NS "/service?serviceName=sv");
	expect(200, "ok");
	service_get("serviceName=sv");
	cr_assert_str_eq(nj_s(&J, 0, "protectThreshold"), "0.0");
	cr_assert_eq(J.t[nj_get(&J, 0, "metadata")].size, 0);
}

Test(nacos_http, service_of_instances_only_and_scopes)
{
	/* A service that exists by its instances: POST refused, PUT and GET served. */
	reg("serviceName=inst&ip=192.0.2.1&port=80");
	call("POST", NS "/service?serviceName=inst");
	expect(400, "specified service DEFAULT_GROUP@@inst already exists!");
	service_get("serviceName=inst");
	cr_assert_str_eq(nj_s(&J, 0, "protectThreshold"), "0.0");
	cr_assert_eq(J.t[nj_get(&J, 0, "clusters")].size, 1);
	call("PUT", NS "/service?serviceName=inst&protectThreshold=0.25");
	expect(200, "ok");
	service_get("serviceName=inst");
	cr_assert_str_eq(nj_s(&J, 0, "protectThreshold"), "0.25");
	cr_assert_eq(service_count(), 1);

	/* Namespace and group scope a service; grouped names work everywhere. */
	call("POST", NS "/service?serviceName=g1%%40%%40x&namespaceId=ns1&protectThreshold=0.1");
	expect(200, "ok");
	call("GET", NS "/service?serviceName=x&namespaceId=ns1");
	expect(400, "service not found, namespace: ns1, serviceName: x");
	call("GET", NS "/service?serviceName=g1%%40%%40x");
	expect(400, NULL);
	service_get("serviceName=x&groupName=g1&namespaceId=ns1");
	cr_assert_str_eq(nj_s(&J, 0, "name"), "x");
	cr_assert_str_eq(nj_s(&J, 0, "groupName"), "g1");
	cr_assert_str_eq(nj_s(&J, 0, "namespaceId"), "ns1");
	cr_assert_str_eq(nj_s(&J, 0, "protectThreshold"), "0.1");
	call("GET", NS "/service/list?pageNo=1&pageSize=10&groupName=g1&namespaceId=ns1");
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "count"), "1");
	call("DELETE", NS "/service?serviceName=x&groupName=g1&namespaceId=ns1");
	expect(200, "ok");
}

/* Nothing that shows instances shows the service record. */
Test(nacos_http, service_record_is_never_shown)
{
	struct distro_client *cl;
	char addr[32];
	uint64_t rev = 0;
	int ips, n;

	call("POST", NS "/service?serviceName=hid&protectThreshold=0.5&metadata=%s",
	     nacos_enc("{\"k\":\"v\"}"));
	expect(200, "ok");
	reg("serviceName=hid&ip=192.0.2.1&port=80");
	reg("serviceName=hid&ip=192.0.2.2&port=80");
	cr_assert_eq(list("serviceName=hid"), 2);
	cr_assert_eq(list("serviceName=hid&clusters=%s", nacos_enc("@service")), 0);
	cr_assert_eq(list("serviceName=hid&clusters=%s", nacos_enc("DEFAULT,@service")), 2);
	call("GET", NS "/instance/statuses?key=DEFAULT_GROUP%%40%%40hid");
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	ips = nj_get(&J, 0, "ips");
	cr_assert_eq(J.t[ips].size, 2, "%s", A.body);
	/* Nacos names cannot reach it. */
	call("GET", NS "/instance?serviceName=hid&clusterName=%s&ip=100::1&port=1",
	     nacos_enc("@service"));
	expect(400, "Param 'clusterName' is illegal, it should match [0-9a-zA-Z-_]+");
	call("GET", NS "/operator/metrics");
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "instanceCount"), "2");
	cr_assert_str_eq(nj_s(&J, 0, "serviceCount"), "1");

	/* The binary protocol's LIST, disabled instances included, lists the two. */
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", nd.port);
	cr_assert_eq(distro_connect(addr, 0, &cl), 0);
	n = distro_list(cl, NULL, NULL, "hid",
	                &(struct distro_list_opts){ .include_disabled = true }, NULL, NULL, &rev);
	cr_assert_eq(n, 2, "binary LIST: %d", n);
	cr_assert_neq(rev, 0);

	/* Nor binary names: a client's write of a reserved cluster is refused whole. */
	struct distro_instance in[2];

	distro_instance_init(&in[0]);
	in[0].service = "hid";
	in[0].ip = "192.0.2.3";
	in[0].port = 80;
	in[1] = in[0];
	in[1].cluster = "@hidden";
	in[1].ip = "192.0.2.4";
	cr_assert_eq(distro_register(cl, in, 2, NULL), -ERR_NAME_CHARS);
	cr_assert_eq(distro_register(cl, &in[1], 1, NULL), -ERR_NAME_CHARS);
	in[1].cluster = "@service";
	cr_assert_eq(distro_deregister(cl, &in[1], 1, NULL), -ERR_NAME_CHARS);
	cr_assert_eq(distro_heartbeat(cl, &in[1], 1, NULL), -ERR_NAME_CHARS);
	cr_assert_eq(distro_register(cl, in, 1, NULL), 0, "the connection still serves");
	distro_close(cl);
	call("GET", NS "/operator/metrics");
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "instanceCount"), "3");
	call("GET", NS "/service?serviceName=hid");
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "protectThreshold"), "0.5");
}

/* PUT /health/instance for ip 192.0.2.<i>:80 of svc (cluster a for 1 and 2, else b). */
static void set_healthy(const char *svc, int i, bool healthy)
{
	call("PUT",
	     NS "/health/instance?serviceName=%s&ip=192.0.2.%d&port=80&clusterName=%s&healthy=%s",
	     svc, i, i <= 2 ? "a" : "b", healthy ? "true" : "false");
	expect(200, "ok");
}

/* The last list's hosts answered healthy, and whether it says reachProtectionThreshold. */
static int healthy_hosts(bool *reached)
{
	int hosts = nj_get(&J, 0, "hosts"), n = 0;

	*reached = strcmp(nj_s(&J, 0, "reachProtectionThreshold"), "true") == 0;
	for (int i = 0; i < J.t[hosts].size; i++)
		n += strcmp(nj_s(&J, nj_at(&J, hosts, i), "healthy"), "true") == 0;
	return n;
}

Test(nacos_http, protection_threshold)
{
	bool reached;

	for (int i = 1; i <= 4; i++)
		reg("serviceName=pt&ip=192.0.2.%d&port=80&clusterName=%s&ephemeral=false", i,
		    i <= 2 ? "a" : "b");
	for (int i = 1; i <= 3; i++)
		set_healthy("pt", i, false);

	/* No service state: no protection (Nacos 2.x), even with every instance down. */
	cr_assert_eq(list("serviceName=pt"), 4);
	cr_assert_eq(healthy_hosts(&reached), 1);
	cr_assert(!reached);
	set_healthy("pt", 4, false);
	cr_assert_eq(list("serviceName=pt"), 4);
	cr_assert_eq(healthy_hosts(&reached), 0);
	cr_assert(!reached);
	cr_assert_eq(list("serviceName=pt&healthyOnly=true"), 0);
	set_healthy("pt", 4, true);

	/* 1 of 4 healthy, threshold 0.5: every instance answered healthy, also healthyOnly. */
	call("PUT", NS "/service?serviceName=pt&protectThreshold=0.5");
	expect(200, "ok");
	cr_assert_eq(list("serviceName=pt"), 4);
	cr_assert_eq(healthy_hosts(&reached), 4);
	cr_assert(reached);
	cr_assert_eq(list("serviceName=pt&healthyOnly=true"), 4);
	cr_assert(reached);
	/* 2 of 4 = 0.5 <= 0.5: still protected. */
	set_healthy("pt", 3, true);
	cr_assert_eq(list("serviceName=pt"), 4);
	cr_assert_eq(healthy_hosts(&reached), 4);
	cr_assert(reached);
	/* 3 of 4 > 0.5: the truth again, and healthyOnly drops the unhealthy one. */
	set_healthy("pt", 2, true);
	cr_assert_eq(list("serviceName=pt"), 4);
	cr_assert_eq(healthy_hosts(&reached), 3);
	cr_assert(!reached);
	cr_assert_eq(list("serviceName=pt&healthyOnly=true"), 3);

	/* The cluster filter first: cluster a has 1 of 2 healthy (protected), b 2 of 2. */
	cr_assert_eq(list("serviceName=pt&clusters=a"), 2);
	cr_assert_eq(healthy_hosts(&reached), 2);
	cr_assert(reached);
	cr_assert_eq(list("serviceName=pt&clusters=b"), 2);
	cr_assert(!(healthy_hosts(&reached) != 2 || reached));

	/* Disabled instances are not counted: 192.0.2.2 and .3 off leaves 1 of 2 (.1 down). */
	call("PUT", NS "/instance?serviceName=pt&ip=192.0.2.2&port=80&clusterName=a&enabled=false&"
	               "ephemeral=false");
	expect(200, "ok");
	call("PUT", NS "/instance?serviceName=pt&ip=192.0.2.3&port=80&clusterName=b&enabled=false&"
	               "ephemeral=false");
	expect(200, "ok");
	cr_assert_eq(list("serviceName=pt"), 2);
	cr_assert_eq(healthy_hosts(&reached), 2);
	cr_assert(reached);

	/* Threshold 0 is off (Nacos fires at 0 when all are down; docs/nacos.md). */
	call("PUT", NS "/service?serviceName=pt&protectThreshold=0");
	expect(200, "ok");
	set_healthy("pt", 4, false);
	cr_assert_eq(list("serviceName=pt"), 2);
	cr_assert_eq(healthy_hosts(&reached), 0);
	cr_assert(!reached);
	cr_assert_eq(list("serviceName=pt&healthyOnly=true"), 0);
}

Test(nacos_http, form_body_parameters_on_every_write)
{
	call_form("POST", NS "/instance",
	          "serviceName=fb&ip=192.0.2.1&port=80&metadata="
	          "%7B%22k%22%3A%22v%20w%22%7D");
	expect(200, "ok");
	cr_assert_eq(list("serviceName=fb"), 1);
	cr_assert_str_eq(meta(host(0), "k"), "v w");
	call_form("PUT", NS "/instance", "serviceName=fb&ip=192.0.2.1&port=80&weight=2.5");
	expect(200, "ok");
	cr_assert_eq(list("serviceName=fb"), 1);
	cr_assert_str_eq(nj_s(&J, host(0), "weight"), "2.5");
	call_form("PATCH", NS "/instance", "serviceName=fb&ip=192.0.2.1&port=80&weight=3");
	expect(200, "ok");
	cr_assert_eq(list("serviceName=fb"), 1);
	cr_assert_str_eq(nj_s(&J, host(0), "weight"), "3.0");
	call_form("DELETE", NS "/instance", "serviceName=fb&ip=192.0.2.1&port=80");
	expect(200, "ok");
	cr_assert_eq(list("serviceName=fb"), 0);
	/* Split between the query and the body; '+' is a space in a form. */
	call_form("POST", NS "/instance?serviceName=fb&ip=192.0.2.2",
	          "port=81&metadata=%7B%22s%22%3A%22a+b%22%7D");
	expect(200, "ok");
	cr_assert_eq(list("serviceName=fb"), 1);
	cr_assert_str_eq(nj_s(&J, host(0), "port"), "81");
	cr_assert_str_eq(meta(host(0), "s"), "a b");
	/* A charset after the media type. */
	nacos_do(C, &A, "POST", NS "/instance", "application/x-www-form-urlencoded; charset=UTF-8",
	         "serviceName=fb&ip=192.0.2.3&port=80");
	expect(200, "ok");
	cr_assert_eq(list("serviceName=fb"), 2);
	/* A JSON body is not parameters. */
	nacos_do(C, &A, "POST", NS "/instance", "application/json",
	         "serviceName=fb&ip=192.0.2.4&port=80");
	expect(400, "Param 'serviceName' is required.");
	call_form("POST", NS "/instance", "serviceName=fb&ip=192.0.2.4&port=80&metadata=%zz");
	expect(400, NULL);
	cr_assert_eq(list("serviceName=fb"), 2);
}

Test(nacos_http, the_query_wins_over_the_body)
{
	call_form("POST", NS "/instance?serviceName=qp&port=8081",
	          "serviceName=body&ip=192.0.2.1&port=8082");
	expect(200, "ok");
	cr_assert_eq(list("serviceName=qp"), 1);
	cr_assert_str_eq(nj_s(&J, host(0), "port"), "8081");
	cr_assert_eq(list("serviceName=body"), 0);
	/* Within the query, the first of a repeated name. */
	reg("serviceName=qp&ip=192.0.2.2&port=1&port=2");
	cr_assert_eq(list("serviceName=qp"), 2);
	cr_assert_geq(host_of("192.0.2.2", "1"), 0, "%s", A.body);
	call_form("DELETE", NS "/instance?serviceName=qp&ip=192.0.2.1",
	          "serviceName=body&port=8081");
	expect(200, "ok");
	cr_assert_eq(list("serviceName=qp"), 1);
}

/* ---- JSON escaping ---- */

Test(nacos_http, json_escaping_round_trips)
{
	static const struct {
		const char *key, *json, *want;
	} kv[] = {
		{ "quote", "a\\\"b", "a\"b" },
		{ "backslash", "c\\\\d\\\\", "c\\d\\" },
		{ "controls", "\\u0001\\u001f\\n\\t\\r\\b\\f\\u0000x", "\x01\x1f\n\t\r\b\f\0x" },
		{ "html", "<script>alert('x')</script>&amp;", "<script>alert('x')</script>&amp;" },
		{ "utf8", "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9d\x84\x9e \xe4\xb8\xad",
		  "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9d\x84\x9e \xe4\xb8\xad" },
		{ "escaped-utf8", "\\u00e9\\ud834\\udd1e", "\xc3\xa9\xf0\x9d\x84\x9e" },
		{ "separators", "\\u2028\\u2029", "\xe2\x80\xa8\xe2\x80\xa9" },
		{ "slash", "\\/a/b", "/a/b" },
		{ "del", "\x7f", "\x7f" },
		{ "k\\\"ey<>", "v", "v" },
	};
	char json[4096], got[256];
	size_t off = 0;
	int h, m;

	off += (size_t)snprintf(json + off, sizeof(json) - off, "{");
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		off += (size_t)snprintf(json + off, sizeof(json) - off, "%s\"%s\":\"%s\"",
		                        i ? "," : "", kv[i].key, kv[i].json);
	snprintf(json + off, sizeof(json) - off, "}");
	reg("serviceName=%s&ip=192.0.2.1&port=80&metadata=%s", nacos_enc("q\"s<x>&'"),
	    nacos_enc(json));
	cr_assert_eq(list("serviceName=%s", nacos_enc("q\"s<x>&'")), 1);
	cr_assert_null(memchr(A.body, '<', A.len), "< escaped for HTML: %s", A.body);
	cr_assert_null(memchr(A.body, '>', A.len), "> escaped for HTML");
	cr_assert_str_eq(nj_s(&J, 0, "name"), "DEFAULT_GROUP@@q\"s<x>&'");
	h = host(0);
	cr_assert_str_eq(nj_s(&J, h, "serviceName"), "DEFAULT_GROUP@@q\"s<x>&'");
	m = nj_get(&J, h, "metadata");
	cr_assert_eq(J.t[m].size, (int)(sizeof(kv) / sizeof(kv[0])), "%s", A.body);
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
		const char *key = i == 9 ? "k\"ey<>" : kv[i].key;
		int v = nj_get(&J, m, key);
		size_t n, want = i == 2 ? 9 : strlen(kv[i].want);

		cr_assert_geq(v, 0, "no key %s in %s", key, A.body);
		n = nj_str_at(&J, v, got, sizeof(got));
		cr_assert_eq(n, want, "%s: %zu bytes, want %zu", key, n, want);
		cr_assert(memcmp(got, kv[i].want, want) == 0, "%s round-trips", key);
	}
	/* The same through GET /instance. */
	call("GET", NS "/instance?serviceName=%s&ip=192.0.2.1&port=80", nacos_enc("q\"s<x>&'"));
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, nj_get(&J, 0, "metadata"), "quote"), "a\"b");
	cr_assert_str_eq(nj_s(&J, nj_get(&J, 0, "metadata"), "html"),
	                 "<script>alert('x')</script>&amp;");
	/* Invalid UTF-8 comes back as U+FFFD, never as a byte that breaks the document. */
	reg("serviceName=esc2&ip=192.0.2.1&port=80&metadata=%s", nacos_enc("{\"bad\":\"a\xff"
	                                                                   "b\"}"));
	cr_assert_eq(list("serviceName=esc2"), 1);
	cr_assert_str_eq(meta(host(0), "bad"), "a\xef\xbf\xbd"
	                                       "b");
}

/* ---- connections: pipelining, one byte at a time, closing mid-request ---- */

Test(nacos_http, pipelined_requests_are_answered_in_order)
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

Test(nacos_http, a_request_one_byte_at_a_time)
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

Test(nacos_http, a_connection_closed_mid_request_harms_no_other)
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

Test(nacos_http, target_over_16_KiB_is_414)
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

Test(nacos_http, header_block_over_32_KiB_is_431)
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

Test(nacos_http, body_over_64_KiB_is_413)
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

Test(nacos_http, chunked_body_is_411)
{
	static const char req[] = "POST " NS "/instance HTTP/1.1\r\nHost: t\r\n"
	                          "Transfer-Encoding: chunked\r\n\r\n"
	                          "5\r\nip=19\r\n0\r\n\r\n";

	http_send(C, req, sizeof(req) - 1);
	expect_closed_after(C, 411);
}

Test(nacos_http, garbage_is_400)
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

Test(nacos_http, http2_preface_is_refused)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

	refused_and_closed(preface, sizeof(preface) - 1);
	refused_and_closed("GET / HTTP/2.0\r\nHost: t\r\n\r\n",
	                   strlen("GET / HTTP/2.0\r\nHost: t\r\n\r\n"));
	cr_assert_eq(A.status, 505);
}

Test(nacos_http, http_0_9_is_refused)
{
	static const char req[] = "GET " NS "/operator/metrics\r\n";

	refused_and_closed(req, sizeof(req) - 1);
}

/* ---- connections: keep-alive, close, 100-continue ---- */

Test(nacos_http, keep_alive_serves_many_requests)
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

Test(nacos_http, expect_100_continue)
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

Test(nacos_http, unknown_paths_and_methods)
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

Test(nacos_http, operator_endpoints)
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

Test(nacos_http, health_instance_sets_healthy)
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

Test(nacos_http, statuses_and_lists_of_a_large_service)
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
Test(nacos_http, body_after_a_long_head_split_over_sends)
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
