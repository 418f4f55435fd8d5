/*
 * The Nacos v1 HTTP API of a real distrod, beyond single instances
 * (issue 10, docs/nacos.md): the service record (POST/PUT/DELETE/GET
 * /service) and its scopes, that no instance listing ever shows it, the
 * protection threshold, parameters taken from form bodies on every write
 * (and the query winning over the body), and JSON escaping checked by
 * parsing the answers with jsmn.
 */
#include "nacos_http_suite.h"

TestSuite(nacos_service, .init = start, .fini = stop, .timeout = 120);

/* ---- service-level state: POST/PUT/DELETE/GET /service, protection ---- */

/* GET /service?<query>: parsed into J (asserts 200). */
static void service_get(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vquery("GET", "/service", fmt, ap);
	va_end(ap);
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

Test(nacos_service, service_create_get_update_delete)
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

Test(nacos_service, service_of_instances_only_and_scopes)
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
Test(nacos_service, service_record_is_never_shown)
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

Test(nacos_service, protection_threshold)
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

/* ---- parameters from form bodies ---- */

Test(nacos_service, form_body_parameters_on_every_write)
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

Test(nacos_service, the_query_wins_over_the_body)
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

Test(nacos_service, json_escaping_round_trips)
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
