/*
 * The Nacos v1 naming HTTP API of a real distrod (issue 10, docs/nacos.md,
 * ../shared/reference/nacos-compat.md §1-2), instance by instance:
 * register and list with every field and every refusal, group and
 * namespace scoping, the list filters, beats (with and without a body),
 * delete, update, patch, detail, statuses and the service listings.
 * Service-level state is in test_nacos_service.c, the HTTP framing and
 * connection handling in test_nacos_http_conn.c; the shared helpers in
 * nacos_http_suite.h.
 */
#include "nacos_http_suite.h"

TestSuite(nacos_http, .init = start, .fini = stop, .timeout = 120);

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
