/*
 * test_grpc.c - the Nacos 2.x gRPC port of a real distrod, through an
 * HTTP/2 client of nghttp2's (grpc_node.h): the connection life cycle,
 * instances that live as long as their connection, queries,
 * subscriptions and their pushes, client detection and ejection, and
 * malformed input answered with a gRPC error or a closed connection while
 * another connection keeps working.
 *
 * Instance addresses are documentation ranges (192.0.2.0/24); nothing
 * probes them.
 */
#include "grpc_suite.h"

TestSuite(grpc, .init = start, .fini = stop, .timeout = 120);

static const char *reg_json(const char *svc, const char *ip, int port, const char *type)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf),
	         "{\"headers\":{},\"requestId\":\"r-%s-%d\",\"namespace\":\"\",\"serviceName\":"
	         "\"%s\",\"groupName\":\"DEFAULT_GROUP\",\"module\":\"naming\",\"type\":\"%s\","
	         "\"instance\":{\"ip\":\"%s\",\"port\":%d,\"weight\":2.5,\"healthy\":true,"
	         "\"enabled\":true,\"ephemeral\":true,\"clusterName\":\"c1\",\"metadata\":{\"k\":"
	         "\"v\"}}}",
	         ip, port, svc, type, ip, port);
	return buf;
}

/* Registers (or deregisters) one instance and asserts the InstanceResponse. */
static void instance_call(struct gcli *c, const char *svc, const char *ip, int port,
                          const char *type)
{
	struct gmsg a;
	struct njson *d;

	cr_assert_eq(gcli_call(c, "InstanceRequest", reg_json(svc, ip, port, type), &a), 0);
	cr_assert_str_eq(a.type, "InstanceResponse", "%s: %s", a.type, a.json);
	d = gjson(&a);
	cr_assert_str_eq(nj_s(d, 0, "resultCode"), "200", "%s", a.json);
	cr_assert_str_eq(nj_s(d, 0, "success"), "true");
	cr_assert_str_eq(nj_s(d, 0, "type"), type);
	gmsg_free(&a);
}

/* The hosts of svc as a ServiceQueryRequest on c sees them: their count; first ip into ip. */
static int query_hosts(struct gcli *c, const char *svc, char *ip, size_t cap)
{
	char q[512];
	struct gmsg a;
	struct njson *d;
	int si, hosts, n;

	snprintf(q, sizeof(q),
	         "{\"headers\":{},\"requestId\":\"q\",\"namespace\":\"public\",\"serviceName\":"
	         "\"%s\",\"groupName\":\"DEFAULT_GROUP\",\"module\":\"naming\",\"cluster\":\"\","
	         "\"healthyOnly\":false,\"udpPort\":0}",
	         svc);
	cr_assert_eq(gcli_call(c, "ServiceQueryRequest", q, &a), 0);
	cr_assert_str_eq(a.type, "QueryServiceResponse", "%s", a.json);
	d = gjson(&a);
	si = nj_get(d, 0, "serviceInfo");
	cr_assert_geq(si, 0);
	cr_assert_str_eq(nj_s(d, si, "name"), svc, "gRPC's ServiceInfo has the bare name");
	cr_assert_str_eq(nj_s(d, si, "groupName"), "DEFAULT_GROUP");
	hosts = nj_get(d, si, "hosts");
	cr_assert_geq(hosts, 0);
	n = d->t[hosts].size;
	if (n > 0 && ip)
		snprintf(ip, cap, "%s", nj_s(d, nj_at(d, hosts, 0), "ip"));
	gmsg_free(&a);
	return n;
}

/* Waits (bounded) until svc has want hosts as c queries them. */
static bool wait_hosts(struct gcli *c, const char *svc, int want, int ms)
{
	for (int64_t end = now_ms() + ms; now_ms() < end; nap_ms(50))
		if (query_hosts(c, svc, NULL, 0) == want)
			return true;
	return false;
}

Test(grpc, life_cycle_errors_and_connection_id)
{
	struct gcli c;
	struct gmsg a;
	struct njson *d;
	struct gstream *bi;
	char id[128], want[64];

	gcli_connect(&c, nd.grpc_port);
	/* Before setup: health checks are answered (the Rust SDK sends one at once) ... */
	cr_assert_eq(gcli_call(&c, "HealthCheckRequest", "{\"requestId\":null}", &a), 0);
	cr_assert_str_eq(a.type, "HealthCheckResponse");
	gmsg_free(&a);
	/* ... but a naming request is 301 UN_REGISTER. */
	cr_assert_eq(gcli_call(&c, "InstanceRequest",
	                       reg_json("early", "192.0.2.9", 1, "registerInstance"), &a),
	             0);
	cr_assert_str_eq(a.type, "ErrorResponse");
	d = gjson(&a);
	cr_assert_str_eq(nj_s(d, 0, "errorCode"), "301");
	cr_assert_str_eq(nj_s(d, 0, "resultCode"), "500");
	gmsg_free(&a);
	gcli_close(&c);

	bi = setup_conn(&c, id, sizeof(id));
	/* <ms>_<ip>_<port> of the client's side of the transport */
	cr_assert(strchr(id, '_') != NULL && strstr(id, "_127.0.0.1_") != NULL, "id %s", id);
	{
		struct sockaddr_in me;
		socklen_t l = sizeof(me);

		getsockname(c.fd, (struct sockaddr *)&me, &l);
		snprintf(want, sizeof(want), "_127.0.0.1_%u", ntohs(me.sin_port));
		cr_assert(strstr(id, want) != NULL, "id %s names the client's port (%s)", id, want);
	}
	/* After setup: a naming request is served; an unknown type is 302. */
	instance_call(&c, "early", "192.0.2.9", 1, "registerInstance");
	cr_assert_eq(gcli_call(&c, "HealthCheckRequest", "{\"requestId\":\"h2\"}", &a), 0);
	d = gjson(&a);
	cr_assert_str_eq(nj_s(d, 0, "resultCode"), "200");
	cr_assert_str_eq(nj_s(d, 0, "errorCode"), "0");
	cr_assert_str_eq(nj_s(d, 0, "requestId"), "h2");
	gmsg_free(&a);
	cr_assert_eq(gcli_call(&c, "NoSuchRequest", "{\"requestId\":\"x\"}", &a), 0);
	cr_assert_str_eq(a.type, "ErrorResponse");
	cr_assert_str_eq(nj_s(gjson(&a), 0, "errorCode"), "302");
	gmsg_free(&a);
	(void)bi;
	gcli_close(&c);
}

Test(grpc, setup_ack_when_abilities_are_offered)
{
	struct gcli c;
	struct gmsg a, m;
	struct gstream *bi;

	gcli_connect(&c, nd.grpc_port);
	cr_assert_eq(gcli_call(&c, "ServerCheckRequest", "{\"requestId\":\"1\"}", &a), 0);
	cr_assert_str_eq(nj_s(gjson(&a), 0, "supportAbilityNegotiation"), "true");
	gmsg_free(&a);
	bi = gcli_bi_open(&c);
	gcli_bi_send(
	        &c, bi, "ConnectionSetupRequest",
	        "{\"clientVersion\":\"t\",\"abilityTable\":{\"supportPersistentInstanceByGrpc\":"
	        "true},\"labels\":{},\"requestId\":\"s\"}");
	cr_assert(gcli_bi_next(&c, bi, &m, 5000), "a SetupAckRequest on the bi-stream");
	cr_assert_str_eq(m.type, "SetupAckRequest");
	gmsg_free(&m);
	gcli_close(&c);
}

Test(grpc, register_query_close_gone)
{
	struct gcli c, other;
	char ip[64];

	setup_conn(&c, NULL, 0);
	setup_conn(&other, NULL, 0);
	instance_call(&c, "grpc-svc", "192.0.2.10", 8080, "registerInstance");
	cr_assert_eq(query_hosts(&other, "grpc-svc", ip, sizeof(ip)), 1);
	cr_assert_str_eq(ip, "192.0.2.10");
	/* Alive well past --delete-timeout (3 s): the connection renews it. */
	for (int64_t end = now_ms() + 4500; now_ms() < end; nap_ms(200))
		cr_assert_eq(query_hosts(&other, "grpc-svc", NULL, 0), 1,
		             "an instance lives as long as its connection");
	/* The HTTP API sees it too, with its fields. */
	{
		struct http_conn *h = http_open(nd.nacos_port);
		struct nacos_ans *ans = malloc(sizeof(*ans));
		static struct njson d;
		int hosts;

		nacos_do(h, ans, "GET", "/nacos/v1/ns/instance/list?serviceName=grpc-svc", NULL,
		         NULL);
		cr_assert_eq(ans->status, 200);
		nj_parse(&d, ans->body, ans->len);
		hosts = nj_get(&d, 0, "hosts");
		cr_assert_eq(d.t[hosts].size, 1);
		cr_assert_str_eq(nj_s(&d, nj_at(&d, hosts, 0), "clusterName"), "c1");
		cr_assert_str_eq(nj_s(&d, nj_at(&d, hosts, 0), "weight"), "2.5");
		cr_assert_str_eq(nj_s(&d, nj_at(&d, hosts, 0), "ephemeral"), "true");
		free(ans);
		http_close(h);
	}
	/* Closed: its instances go at once, not after a timeout. */
	gcli_close(&c);
	cr_assert(wait_hosts(&other, "grpc-svc", 0, 1000), "gone when the connection closed");
	gcli_close(&other);
}

Test(grpc, deregister_and_persistent)
{
	struct gcli c, other;
	struct gmsg a;
	char pj[1024];

	setup_conn(&c, NULL, 0);
	setup_conn(&other, NULL, 0);
	instance_call(&c, "grpc-dereg", "192.0.2.11", 8081, "registerInstance");
	instance_call(&other, "grpc-dereg", "192.0.2.12", 8082, "registerInstance");
	cr_assert_eq(query_hosts(&other, "grpc-dereg", NULL, 0), 2);
	instance_call(&c, "grpc-dereg", "192.0.2.11", 8081, "deregisterInstance");
	cr_assert_eq(query_hosts(&other, "grpc-dereg", NULL, 0), 1);
	/* A persistent instance is not the connection's: it stays after it closes. */
	snprintf(pj, sizeof(pj), "%s",
	         reg_json("grpc-dereg", "192.0.2.13", 8083, "registerInstance"));
	cr_assert_eq(gcli_call(&c, "PersistentInstanceRequest", pj, &a), 0);
	cr_assert_str_eq(a.type, "InstanceResponse", "%s", a.json);
	cr_assert_str_eq(nj_s(gjson(&a), 0, "resultCode"), "200", "%s", a.json);
	gmsg_free(&a);
	gcli_close(&c);
	gcli_close(&other);
	setup_conn(&other, NULL, 0);
	/* other's .12 went with it; the persistent one stays */
	cr_assert(wait_hosts(&other, "grpc-dereg", 1, 1000), "the persistent one stays");
	{
		char ip[64];

		cr_assert_eq(query_hosts(&other, "grpc-dereg", ip, sizeof(ip)), 1);
		cr_assert_str_eq(ip, "192.0.2.13");
	}
	gcli_close(&other);
}

Test(grpc, batch_replaces_the_connections_set)
{
	struct gcli c, other;
	struct gmsg a;
	const char *b1 =
	        "{\"requestId\":\"b1\",\"namespace\":\"public\",\"serviceName\":\"grpc-batch\","
	        "\"groupName\":\"DEFAULT_GROUP\",\"type\":\"batchRegisterInstance\",\"instances\":["
	        "{\"ip\":\"192.0.2.20\",\"port\":1,\"ephemeral\":true},"
	        "{\"ip\":\"192.0.2.21\",\"port\":1,\"ephemeral\":true},"
	        "{\"ip\":\"192.0.2.22\",\"port\":1,\"ephemeral\":true}]}";
	const char *b2 =
	        "{\"requestId\":\"b2\",\"namespace\":\"public\",\"serviceName\":\"grpc-batch\","
	        "\"groupName\":\"DEFAULT_GROUP\",\"type\":\"batchRegisterInstance\",\"instances\":["
	        "{\"ip\":\"192.0.2.22\",\"port\":1,\"ephemeral\":true}]}";

	setup_conn(&c, NULL, 0);
	setup_conn(&other, NULL, 0);
	cr_assert_eq(gcli_call(&c, "BatchInstanceRequest", b1, &a), 0);
	cr_assert_str_eq(a.type, "BatchInstanceResponse", "%s", a.json);
	cr_assert_str_eq(nj_s(gjson(&a), 0, "type"), "batchRegisterInstance");
	gmsg_free(&a);
	cr_assert_eq(query_hosts(&other, "grpc-batch", NULL, 0), 3);
	cr_assert_eq(gcli_call(&c, "BatchInstanceRequest", b2, &a), 0);
	cr_assert_str_eq(nj_s(gjson(&a), 0, "resultCode"), "200", "%s", a.json);
	gmsg_free(&a);
	cr_assert(wait_hosts(&other, "grpc-batch", 1, 1000), "the second batch replaced the first");
	gcli_close(&c);
	cr_assert(wait_hosts(&other, "grpc-batch", 0, 1000));
	gcli_close(&other);
}

Test(grpc, subscribe_notify_ack_retry_unsubscribe)
{
	struct gcli sub, pub, pub2;
	struct gstream *bi;
	struct gmsg a, m;
	const char *sj =
	        "{\"requestId\":\"s\",\"namespace\":\"public\",\"serviceName\":\"grpc-sub\","
	        "\"groupName\":\"DEFAULT_GROUP\",\"subscribe\":true,\"clusters\":\"\"}";
	const char *uj =
	        "{\"requestId\":\"u\",\"namespace\":\"public\",\"serviceName\":\"grpc-sub\","
	        "\"groupName\":\"DEFAULT_GROUP\",\"subscribe\":false,\"clusters\":\"\"}";

	bi = setup_conn(&sub, NULL, 0);
	setup_conn(&pub, NULL, 0);
	setup_conn(&pub2, NULL, 0);
	cr_assert_eq(gcli_call(&sub, "SubscribeServiceRequest", sj, &a), 0);
	cr_assert_str_eq(a.type, "SubscribeServiceResponse", "%s", a.json);
	cr_assert_str_eq(nj_s(gjson(&a), 0, "resultCode"), "200");
	gmsg_free(&a);
	/* As Nacos: the list is pushed once right after subscribing (empty here). */
	cr_assert(gcli_bi_next(&sub, bi, &m, 3000), "a push after subscribing");
	cr_assert_eq(gcli_push_hosts(&sub, bi, &m, true), 0);
	gmsg_free(&m);

	instance_call(&pub, "grpc-sub", "192.0.2.30", 9000, "registerInstance");
	cr_assert(gcli_bi_next(&sub, bi, &m, 3000), "a push after the register");
	cr_assert_eq(gcli_push_hosts(&sub, bi, &m, true), 1);
	gmsg_free(&m);

	/* Not acknowledged: sent again after --grpc-push-timeout (300 ms here). */
	instance_call(&pub2, "grpc-sub", "192.0.2.31", 9000, "registerInstance");
	cr_assert(gcli_bi_next(&sub, bi, &m, 3000), "a push after the second register");
	cr_assert_eq(gcli_push_hosts(&sub, bi, &m, false), 2);
	gmsg_free(&m);
	cr_assert(gcli_bi_next(&sub, bi, &m, 3000), "the unacknowledged push is sent again");
	cr_assert_eq(gcli_push_hosts(&sub, bi, &m, true), 2);
	gmsg_free(&m);

	/* The publishers' connections close: their instances go, and that is pushed. */
	gcli_close(&pub);
	gcli_close(&pub2);
	/* The two deregisters may land in different push windows: one push each, then empty. */
	for (int left = 2, pushes = 0;; pushes++) {
		cr_assert_lt(pushes, 2, "a push when the publishers are gone: %d hosts left", left);
		cr_assert(gcli_bi_next(&sub, bi, &m, 3000), "a push when the publisher is gone");
		left = gcli_push_hosts(&sub, bi, &m, true);
		gmsg_free(&m);
		cr_assert(left == 0 || left == 1, "%d hosts", left);
		if (left == 0)
			break;
	}

	/* Unsubscribed: no more pushes. */
	cr_assert_eq(gcli_call(&sub, "SubscribeServiceRequest", uj, &a), 0);
	cr_assert_str_eq(nj_s(gjson(&a), 0, "resultCode"), "200");
	gmsg_free(&a);
	setup_conn(&pub, NULL, 0);
	instance_call(&pub, "grpc-sub", "192.0.2.32", 9000, "registerInstance");
	cr_assert(wait_hosts(&pub, "grpc-sub", 1, 1000));
	cr_assert_not(gcli_bi_next(&sub, bi, &m, 500), "no push after unsubscribing");
	gcli_close(&pub);
	gcli_close(&sub);
}

Test(grpc, service_list)
{
	struct gcli c;
	struct gmsg a;
	struct njson *d;
	int names;

	setup_conn(&c, NULL, 0);
	instance_call(&c, "grpc-list-a", "192.0.2.40", 1, "registerInstance");
	instance_call(&c, "grpc-list-b", "192.0.2.41", 1, "registerInstance");
	cr_assert_eq(gcli_call(&c, "ServiceListRequest",
	                       "{\"requestId\":\"l\",\"namespace\":\"public\",\"groupName\":"
	                       "\"DEFAULT_GROUP\",\"pageNo\":1,\"pageSize\":100}",
	                       &a),
	             0);
	cr_assert_str_eq(a.type, "ServiceListResponse", "%s", a.json);
	d = gjson(&a);
	cr_assert_geq(atoi(nj_s(d, 0, "count")), 2);
	names = nj_get(d, 0, "serviceNames");
	cr_assert_geq(d->t[names].size, 2);
	cr_assert(strstr(a.json, "\"grpc-list-a\"") && strstr(a.json, "\"grpc-list-b\""), "%s",
	          a.json);
	gmsg_free(&a);
	gcli_close(&c);
}

/* ---- detection and ejection: short times ---- */

static void start_detect(void)
{
	const char *more[] = { "--grpc-detect-idle", "400", "--grpc-detect-timeout", "400", NULL };

	start_with(more);
}

TestSuite(grpc_detect, .init = start_detect, .fini = stop, .timeout = 120);

Test(grpc_detect, silent_connection_is_ejected_with_its_instances)
{
	struct gcli c, other, alive;
	struct gstream *bi, *abi;
	struct gmsg m;
	bool detected = false;

	bi = setup_conn(&c, NULL, 0);
	abi = setup_conn(&alive, NULL, 0);
	instance_call(&c, "grpc-eject", "192.0.2.50", 1, "registerInstance");
	instance_call(&alive, "grpc-eject", "192.0.2.51", 1, "registerInstance");
	/* alive answers every detection; c reads them and says nothing. */
	for (int64_t end = now_ms() + 5000; now_ms() < end && !c.eof;) {
		if (gcli_bi_next(&c, bi, &m, 20)) {
			if (strcmp(m.type, "ClientDetectionRequest") == 0)
				detected = true;
			gmsg_free(&m);
		}
		if (gcli_bi_next(&alive, abi, &m, 20)) {
			char resp[160];

			cr_assert_str_eq(m.type, "ClientDetectionRequest");
			snprintf(resp, sizeof(resp), "{\"resultCode\":200,\"requestId\":\"%s\"}",
			         nj_s(gjson(&m), 0, "requestId"));
			gcli_bi_send(&alive, abi, "ClientDetectionResponse", resp);
			gmsg_free(&m);
		}
	}
	cr_assert(detected, "the silent connection was asked");
	cr_assert(c.eof, "and closed when it did not answer");
	setup_conn(&other, NULL, 0);
	cr_assert(wait_hosts(&other, "grpc-eject", 1, 1000), "its instance went with it");
	{
		char ip[64];

		cr_assert_eq(query_hosts(&other, "grpc-eject", ip, sizeof(ip)), 1);
		cr_assert_str_eq(ip, "192.0.2.51", "the answering connection's instance stays");
	}
	gcli_close(&c);
	gcli_close(&alive);
	gcli_close(&other);
}

/* The Rust SDK's order: the bi-stream and its setup first, then health checks, then ServerCheck. */
Test(grpc, setup_before_server_check)
{
	struct gcli c;
	struct gmsg a;
	struct gstream *bi;

	gcli_connect(&c, nd.grpc_port);
	bi = gcli_bi_open(&c);
	gcli_bi_send(&c, bi, "ConnectionSetupRequest",
	             "{\"clientVersion\":\"Nacos-Rust-Client:0.8.0\",\"abilities\":{},\"tenant\":"
	             "\"public\",\"labels\":{\"source\":\"sdk\",\"module\":\"naming\"},"
	             "\"headers\":{},\"requestId\":null}");
	cr_assert_eq(gcli_call(&c, "HealthCheckRequest", "{\"headers\":{},\"requestId\":null}", &a),
	             0);
	cr_assert_str_eq(a.type, "HealthCheckResponse");
	gmsg_free(&a);
	cr_assert_eq(
	        gcli_call(&c, "ServerCheckRequest", "{\"headers\":{},\"requestId\":\"1\"}", &a), 0);
	cr_assert_str_eq(a.type, "ServerCheckResponse");
	cr_assert_neq(strlen(nj_s(gjson(&a), 0, "connectionId")), 0);
	gmsg_free(&a);
	instance_call(&c, "rust-order", "192.0.2.70", 1, "registerInstance");
	cr_assert_eq(query_hosts(&c, "rust-order", NULL, 0), 1);
	gcli_close(&c);
}

/*
 * Nacos keeps one publication per connection and service: a second
 * register of the service replaces the first; a deregister names ip and
 * port, whatever cluster the client puts in it.
 */
Test(grpc, second_register_of_a_service_replaces_the_first)
{
	struct gcli c;
	struct gmsg a;
	char ip[64];
	const char *dj =
	        "{\"headers\":{},\"requestId\":\"d\",\"namespace\":\"public\",\"serviceName\":"
	        "\"grpc-replace\",\"groupName\":\"DEFAULT_GROUP\",\"type\":"
	        "\"deregisterInstance\",\"instance\":{\"instanceId\":null,\"ip\":"
	        "\"192.0.2.61\",\"port\":1,\"weight\":1,\"healthy\":true,\"enabled\":true,"
	        "\"ephemeral\":true,\"clusterName\":null,\"serviceName\":null,"
	        "\"metadata\":{}}}";

	setup_conn(&c, NULL, 0);
	instance_call(&c, "grpc-replace", "192.0.2.60", 1, "registerInstance");
	instance_call(&c, "grpc-replace", "192.0.2.61", 1, "registerInstance");
	cr_assert_eq(query_hosts(&c, "grpc-replace", ip, sizeof(ip)), 1);
	cr_assert_str_eq(ip, "192.0.2.61");
	cr_assert_eq(gcli_call(&c, "InstanceRequest", dj, &a), 0);
	cr_assert_str_eq(nj_s(gjson(&a), 0, "resultCode"), "200", "%s", a.json);
	cr_assert_str_eq(nj_s(gjson(&a), 0, "type"), "deregisterInstance");
	gmsg_free(&a);
	cr_assert_eq(query_hosts(&c, "grpc-replace", NULL, 0), 0,
	             "the deregister (cluster null) removed the instance registered in c1");
	gcli_close(&c);
}

/*
 * A node stopped with gRPC clients connected: GOAWAY to each, their
 * instances deregistered while the workers still run (each worker's
 * share goes to the other's shard too), and a clean exit (0: an ASan
 * build exits non-zero on a leaked write).
 */
Test(grpc, stop_with_clients_connected)
{
	struct gcli c[3];
	char svc[32];

	for (int i = 0; i < 3; i++) {
		setup_conn(&c[i], NULL, 0);
		for (int s = 0; s < 4; s++) {
			snprintf(svc, sizeof(svc), "grpc-stop-%d", s);
			instance_call(&c[i], svc,
			              i == 0   ? "192.0.2.90"
			              : i == 1 ? "192.0.2.91"
			                       : "192.0.2.92",
			              1, "registerInstance");
		}
	}
	cr_assert_eq(node_stop(&nd), 0, "distrod exits 0 with gRPC clients connected");
	for (int i = 0; i < 3; i++) {
		for (int64_t end = now_ms() + 3000; !c[i].eof && now_ms() < end;)
			(void)gcli_io(&c[i], 20);
		cr_assert(c[i].goaway || c[i].eof, "told to go away, or closed");
		gcli_close(&c[i]);
	}
}

/*
 * A deregister pipelined behind its register (both messages in one DATA
 * frame, so one feed handles both while the register is still pending):
 * the instance stays gone; the connection must not adopt and renew it
 * when the register's answer comes.
 */
Test(grpc, deregister_while_register_pending)
{
	struct gcli c;
	int left = 0;

	setup_conn(&c, NULL, 0);
	for (int k = 0; k < 8; k++) {
		char svc[32], ip[32];
		uint8_t *m1, *m2, *both;
		size_t n1, n2;
		struct gstream *s;
		const char *j;

		snprintf(svc, sizeof(svc), "pend-race-%d", k);
		snprintf(ip, sizeof(ip), "192.0.2.%d", 100 + k);
		j = reg_json(svc, ip, 1, "registerInstance");
		n1 = gmsg_encode("InstanceRequest", j, strlen(j), &m1);
		j = reg_json(svc, ip, 1, "deregisterInstance");
		n2 = gmsg_encode("InstanceRequest", j, strlen(j), &m2);
		both = malloc(n1 + n2);
		cr_assert_not_null(both);
		memcpy(both, m1, n1);
		memcpy(both + n1, m2, n2);
		s = gcli_open(&c, "/Request/request", both, n1 + n2, true);
		free(both);
		free(m1);
		free(m2);
		cr_assert(gcli_wait_closed(&c, s, 5000));
		s->reaped = true;
	}
	for (int64_t end = now_ms() + 6000; now_ms() < end;) /* renewals would re-create them */
		gcli_io(&c, 20);
	for (int k = 0; k < 8; k++) {
		char svc[32];

		snprintf(svc, sizeof(svc), "pend-race-%d", k);
		left += query_hosts(&c, svc, NULL, 0);
	}
	cr_assert_eq(left, 0, "%d of 8 deregistered instances are back", left);
	gcli_close(&c);
}

/*
 * Registers still pending when the connection closes (sent, then the
 * socket closed at once): they are deregistered with the connection, not
 * left until --delete-timeout expires them.
 */
Test(grpc, close_with_registers_pending)
{
	struct gcli c, q;
	int left = 0;

	for (int round = 0; round < 4; round++) {
		setup_conn(&c, NULL, 0);
		for (int k = 0; k < 16; k++) {
			char svc[48], ip[32];
			uint8_t *m;
			size_t n;
			const char *j;

			snprintf(svc, sizeof(svc), "pend-close-%d-%d", round, k);
			snprintf(ip, sizeof(ip), "192.0.2.%d", 10 + k);
			j = reg_json(svc, ip, 1, "registerInstance");
			n = gmsg_encode("InstanceRequest", j, strlen(j), &m);
			gcli_open(&c, "/Request/request", m, n, true);
			free(m);
		}
		cr_assert_eq(nghttp2_session_send(c.s), 0);
		gcli_close(&c); /* the registers' answers are not awaited */
	}
	setup_conn(&q, NULL, 0);
	for (int64_t end = now_ms() + 800; now_ms() < end;) /* well before --delete-timeout */
		gcli_io(&q, 20);
	for (int round = 0; round < 4; round++)
		for (int k = 0; k < 16; k++) {
			char svc[48];

			snprintf(svc, sizeof(svc), "pend-close-%d-%d", round, k);
			left += query_hosts(&q, svc, NULL, 0);
		}
	cr_assert_eq(left, 0, "%d instances of closed connections are left", left);
	gcli_close(&q);
}

/* ---- a client that opens no window: --out-max small ---- */

static void start_slow(void)
{
	const char *more[] = { "--out-max", "65536", NULL };

	start_with(more);
}

TestSuite(grpc_slow, .init = start_slow, .fini = stop, .timeout = 120);

/*
 * Answers held back by a client's closed flow-control window (SETTINGS
 * INITIAL_WINDOW_SIZE 0) count against --out-max for the connection:
 * past it the connection closes as too slow; others are served.
 */
Test(grpc_slow, answers_behind_a_closed_window_are_bounded)
{
	static char batch[64 << 10];
	nghttp2_settings_entry zero[] = { { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0 } };
	const char *q = "{\"requestId\":\"q\",\"namespace\":\"public\",\"serviceName\":"
	                "\"grpc-slow\",\"groupName\":\"DEFAULT_GROUP\"}";
	struct gcli c, other;
	struct gmsg a;
	uint8_t *m;
	size_t n, len;
	bool open = true;

	len = (size_t)snprintf(batch, sizeof(batch),
	                       "{\"requestId\":\"b\",\"namespace\":\"public\",\"serviceName\":"
	                       "\"grpc-slow\",\"groupName\":\"DEFAULT_GROUP\",\"type\":"
	                       "\"batchRegisterInstance\",\"instances\":[");
	for (int i = 0; i < 400; i++)
		len += (size_t)snprintf(batch + len, sizeof(batch) - len,
		                        "%s{\"ip\":\"10.9.%d.%d\",\"port\":1,\"ephemeral\":true}",
		                        i ? "," : "", i / 200, i % 200);
	snprintf(batch + len, sizeof(batch) - len, "]}");
	setup_conn(&c, NULL, 0);
	cr_assert_eq(gcli_call(&c, "BatchInstanceRequest", batch, &a), 0);
	cr_assert_str_eq(nj_s(gjson(&a), 0, "resultCode"), "200");
	gmsg_free(&a);
	cr_assert_eq(nghttp2_submit_settings(c.s, NGHTTP2_FLAG_NONE, zero, 1), 0);
	n = gmsg_encode("ServiceQueryRequest", q, strlen(q), &m);
	for (int i = 0; i < 8; i++) /* each answer is some 40 KB: 8 are over 64 KiB */
		gcli_open(&c, "/Request/request", m, n, true);
	free(m);
	for (int64_t end = now_ms() + 5000; open && now_ms() < end;)
		open = gcli_io(&c, 20);
	cr_assert(!open, "the connection holding answers over --out-max is closed");
	setup_conn(&other, NULL, 0);
	cr_assert_eq(gcli_call(&other, "ServerCheckRequest", "{\"requestId\":\"1\"}", &a), 0);
	gmsg_free(&a);
	gcli_close(&other);
	gcli_close(&c);
}

/* ---- a subscriber slow to acknowledge: one push in flight per subscription ---- */

#define SLOWACK_TIMEOUT_MS 2500

static void start_slowack(void)
{
	const char *more[] = { "--grpc-push-timeout", "2500", NULL };

	start_with(more);
}

TestSuite(grpc_slowack, .init = start_slowack, .fini = stop, .timeout = 120);

/* The connection's set of svc becomes n instances, 192.0.2.100 .. 100+n-1 (a batch). */
static void batch_n(struct gcli *c, const char *svc, int n)
{
	char body[4096];
	struct gmsg a;
	int off;

	off = snprintf(body, sizeof(body),
	               "{\"requestId\":\"bn%d\",\"namespace\":\"public\",\"serviceName\":\"%s\","
	               "\"groupName\":\"DEFAULT_GROUP\",\"type\":\"batchRegisterInstance\","
	               "\"instances\":[",
	               n, svc);
	for (int i = 0; i < n; i++)
		off += snprintf(body + off, sizeof(body) - (size_t)off,
		                "%s{\"ip\":\"192.0.2.%d\",\"port\":1,\"ephemeral\":true}",
		                i ? "," : "", 100 + i);
	snprintf(body + off, sizeof(body) - (size_t)off, "]}");
	cr_assert_eq(gcli_call(c, "BatchInstanceRequest", body, &a), 0);
	cr_assert_str_eq(nj_s(gjson(&a), 0, "resultCode"), "200", "%s", a.json);
	gmsg_free(&a);
}

static void push_ack(struct gcli *c, struct gstream *bi, const char *rid)
{
	char resp[160];

	snprintf(resp, sizeof(resp),
	         "{\"resultCode\":200,\"errorCode\":0,\"requestId\":\"%s\",\"success\":true}", rid);
	gcli_bi_send(c, bi, "NotifySubscriberResponse", resp);
}

/* The next push within ms: its hosts count, its requestId into rid. Asserts one came. */
static int next_push(struct gcli *c, struct gstream *bi, char *rid, size_t cap, int ms,
                     const char *what)
{
	struct gmsg m;
	int n;

	cr_assert(gcli_bi_next(c, bi, &m, ms), "no push within %d ms: %s", ms, what);
	n = gcli_push_hosts(c, bi, &m, false);
	snprintf(rid, cap, "%s", nj_s(gjson(&m), 0, "requestId"));
	gmsg_free(&m);
	return n;
}

/*
 * The push bug: a change while a push waited for its ack used to send
 * another push (and forget the first one's id, so its ack matched
 * nothing), one per change for a client slow to ack. Now a subscription
 * has one push in flight: the changes made meanwhile are held and go as
 * one push, with the last state, when the ack comes; a push not acked in
 * time is sent again with the current state, and the late ack of the old
 * one is harmless.
 */
Test(grpc_slowack, changes_while_a_push_waits_go_as_one_push_after_its_ack)
{
	struct gcli sub, pub, q;
	struct gstream *bi;
	struct gmsg a, m;
	char rid0[64], rid1[64], rid2[64], rid3[64];
	const char *sj =
	        "{\"requestId\":\"s\",\"namespace\":\"public\",\"serviceName\":\"grpc-slowack\","
	        "\"groupName\":\"DEFAULT_GROUP\",\"subscribe\":true,\"clusters\":\"\"}";
	int64_t sent0;

	bi = setup_conn(&sub, NULL, 0);
	setup_conn(&pub, NULL, 0);
	setup_conn(&q, NULL, 0);
	cr_assert_eq(gcli_call(&sub, "SubscribeServiceRequest", sj, &a), 0);
	cr_assert_str_eq(nj_s(gjson(&a), 0, "resultCode"), "200", "%s", a.json);
	gmsg_free(&a);
	/* The push after subscribing (empty), left unacknowledged. */
	cr_assert_eq(next_push(&sub, bi, rid0, sizeof(rid0), 3000, "after subscribing"), 0);
	sent0 = now_ms();

	/* Five changes while it waits: nothing is pushed for them yet. */
	for (int n = 1; n <= 5; n++) {
		batch_n(&pub, "grpc-slowack", n);
		cr_assert(wait_hosts(&q, "grpc-slowack", n, 2000), "change %d listed", n);
	}
	/* (300 ms: many push windows of 10 ms for a wrong push to go out) */
	cr_assert_not(gcli_bi_next(&sub, bi, &m, 300), "a second push while the first waits: %s",
	              m.json);
	cr_assert_lt(
	        now_ms() - sent0, SLOWACK_TIMEOUT_MS - 100,
	        "the changes took longer than the push timeout: the check above means nothing");

	/* The ack: one push, with the last state, and nothing after it. */
	push_ack(&sub, bi, rid0);
	cr_assert_eq(next_push(&sub, bi, rid1, sizeof(rid1), 2000, "after the ack"), 5,
	             "the held changes go as one push with the last state");
	cr_assert_str_neq(rid1, rid0);
	push_ack(&sub, bi, rid1);
	cr_assert_not(gcli_bi_next(&sub, bi, &m, 500), "one push for the held changes, not %s",
	              m.json);

	/*
	 * Not acknowledged: a change, its push held unacked, another change
	 * held behind it; the timeout sends the current state again under a
	 * new id. The late ack of the first one matches nothing and harms
	 * nothing; the ack of the resend ends it.
	 */
	batch_n(&pub, "grpc-slowack", 3);
	cr_assert_eq(next_push(&sub, bi, rid2, sizeof(rid2), 2000, "after a change"), 3);
	batch_n(&pub, "grpc-slowack", 2);
	cr_assert(wait_hosts(&q, "grpc-slowack", 2, 2000));
	cr_assert_eq(next_push(&sub, bi, rid3, sizeof(rid3), SLOWACK_TIMEOUT_MS + 2000,
	                       "the resend after --grpc-push-timeout"),
	             2, "the resend carries the state as it is now");
	cr_assert_str_neq(rid3, rid2);
	push_ack(&sub, bi, rid2); /* late: that push was replaced */
	push_ack(&sub, bi, rid3);
	cr_assert_not(gcli_bi_next(&sub, bi, &m, 500), "nothing more to push: %s", m.json);

	/* The connection still works: a query and the next change's push. */
	cr_assert_eq(query_hosts(&sub, "grpc-slowack", NULL, 0), 2);
	batch_n(&pub, "grpc-slowack", 1);
	cr_assert_eq(next_push(&sub, bi, rid1, sizeof(rid1), 2000, "the next change"), 1);
	push_ack(&sub, bi, rid1);
	gcli_close(&pub);
	gcli_close(&q);
	gcli_close(&sub);
}
