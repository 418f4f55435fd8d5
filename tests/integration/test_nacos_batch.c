/*
 * Three pieces of the Nacos v1 API of a real distrod (issue 10,
 * docs/nacos.md): PUT/DELETE /instance/metadata/batch (one write frame of
 * many items, answered once), GET /service/subscribers (the UDP
 * subscribers of every worker of this node), and the admin endpoints
 * /metrics, /health, /cluster answered on the Nacos port as on the admin
 * port.
 *
 * Each test runs its own distrod with two workers, so a batch's items run
 * on both shards and subscribers live on both workers. Answers are parsed
 * with jsmn (nacos_node.h), not with the server's JSON code. Instances use
 * documentation addresses only (192.0.2.0/24, 198.18.0.0/15).
 */
#include "nacos_node.h"

#include <sys/wait.h>

#define NS "/nacos/v1/ns"

static struct http_node hn;
static struct http_conn *C;
static struct nacos_ans A;
static struct njson J;

static void start(void)
{
	static const char *const extra[] = { "--workers", "2", NULL };

	http_node_start(&hn, extra);
	cr_assert_gt(hn.node.nacos_port, 0, "no --nacos-port-file");
	C = http_open(hn.node.nacos_port);
}

static void stop(void)
{
	if (C)
		http_close(C);
	cr_assert_eq(http_node_stop(&hn), 0, "distrod exits 0 on SIGTERM");
}

TestSuite(nacos_batch, .init = start, .fini = stop, .timeout = 120);

/* ---- helpers ---- */

static int call(const char *method, const char *fmt, ...)
{
	static char t[1 << 17];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t, sizeof(t), fmt, ap);
	va_end(ap);
	cr_assert_lt((size_t)n, sizeof(t));
	return nacos_do(C, &A, method, t, NULL, NULL);
}

static void expect(int status, const char *body)
{
	cr_assert_eq(A.status, status, "status %d, want %d; body: %s", A.status, status, A.body);
	if (body)
		cr_assert_str_eq(A.body, body);
}

static void reg(const char *svc, const char *ip, int port, const char *extra)
{
	call("POST", NS "/instance?serviceName=%s&ip=%s&port=%d&%s", svc, ip, port,
	     extra ? extra : "");
	expect(200, "ok");
}

/* A metadata batch: method, service, metadata JSON, then "instances=..." or "consistencyType=...".
 */
static int batch(const char *method, const char *svc, const char *meta, const char *which)
{
	return call(method, NS "/instance/metadata/batch?serviceName=%s&metadata=%s&%s", svc,
	            nacos_enc(meta), which);
}

static const char *instances(const char *json)
{
	static char out[20000];

	snprintf(out, sizeof(out), "instances=%s", nacos_enc(json));
	return out;
}

/* The last answer's "updated" list equals want[0..n), in order. */
static void expect_updated(const char *const *want, int n)
{
	int arr;

	expect(200, NULL);
	cr_assert_not_null(strstr(A.head, "\r\nContent-Type: application/json"), "%s", A.head);
	nj_parse(&J, A.body, A.len);
	cr_assert_eq(J.t[0].size, 1, "only \"updated\": %s", A.body);
	arr = nj_get(&J, 0, "updated");
	cr_assert_geq(arr, 0, "no updated: %s", A.body);
	cr_assert_eq(J.t[arr].type, JSMN_ARRAY);
	cr_assert_eq(J.t[arr].size, n, "%d updated, want %d: %s", J.t[arr].size, n, A.body);
	for (int i = 0; i < n; i++) {
		char s[256];

		nj_str_at(&J, nj_at(&J, arr, i), s, sizeof(s));
		cr_assert_str_eq(s, want[i], "updated[%d]", i);
	}
}

/* Lists svc into J; the host with ip and port (token index), or -1. */
static int listed(const char *svc, const char *ip, const char *port)
{
	int hosts;

	call("GET", NS "/instance/list?serviceName=%s", svc);
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	hosts = nj_get(&J, 0, "hosts");
	for (int i = 0; i < J.t[hosts].size; i++) {
		int h = nj_at(&J, hosts, i);

		if (strcmp(nj_s(&J, h, "ip"), ip) == 0 && strcmp(nj_s(&J, h, "port"), port) == 0)
			return h;
	}
	return -1;
}

/* The metadata of host h of J: the value of key, or NULL when absent; *n the pair count. */
static const char *meta_of(int h, const char *key, int *n)
{
	int m = nj_get(&J, h, "metadata");

	cr_assert_geq(m, 0);
	cr_assert_eq(J.t[m].type, JSMN_OBJECT);
	if (n)
		*n = J.t[m].size;
	return nj_get(&J, m, key) < 0 ? NULL : nj_s(&J, m, key);
}

static void expect_meta(const char *svc, const char *ip, const char *port, const char *key,
                        const char *val)
{
	int h = listed(svc, ip, port);
	const char *got;

	cr_assert_geq(h, 0, "%s:%s not listed: %s", ip, port, A.body);
	got = meta_of(h, key, NULL);
	if (val == NULL)
		cr_assert_null(got, "%s:%s still has %s=%s", ip, port, key, got);
	else
		cr_assert(got && strcmp(got, val) == 0, "%s:%s: %s=%s, want %s", ip, port, key,
		          got ? got : "(absent)", val);
}

/* ---- metadata batch ---- */

Test(nacos_batch, put_merges_into_the_listed_instances_and_answers_each)
{
	static const char *const want[] = {
		"192.0.2.1:80:unknown:DEFAULT:ephemeral",
		"192.0.2.2:80:unknown:DEFAULT:ephemeral",
		"192.0.2.4:81:unknown:c2:ephemeral",
	};
	int n;

	/* Several addresses and clusters: on two workers their items run on both shards. */
	reg("mb", "192.0.2.1", 80, "metadata=%7B%22a%22%3A%221%22%7D");
	reg("mb", "192.0.2.2", 80, "metadata=%7B%22a%22%3A%221%22%2C%22k%22%3A%22v%22%7D");
	reg("mb", "192.0.2.3", 80, "metadata=%7B%22a%22%3A%221%22%7D");
	reg("mb", "192.0.2.4", 81, "clusterName=c2");
	batch("PUT", "mb", "{\"a\":\"9\",\"b\":\"2\"}",
	      instances("[{\"ip\":\"192.0.2.1\",\"port\":80},"
	                "{\"ip\":\"192.0.2.2\",\"port\":\"80\",\"clusterName\":\"DEFAULT\"},"
	                "{\"ip\":\"192.0.2.4\",\"port\":81,\"clusterName\":\"c2\"},"
	                "{\"ip\":\"192.0.2.1\",\"port\":80},"
	                "{\"ip\":\"198.18.0.9\",\"port\":1}]"));
	/* The unknown instance is left out, the repeated one counted once, as Nacos does. */
	expect_updated(want, 3);

	expect_meta("mb", "192.0.2.1", "80", "a", "9");
	expect_meta("mb", "192.0.2.1", "80", "b", "2");
	expect_meta("mb", "192.0.2.2", "80", "k", "v"); /* merged: the other keys stay */
	expect_meta("mb", "192.0.2.2", "80", "b", "2");
	expect_meta("mb", "192.0.2.4", "81", "b", "2");
	expect_meta("mb", "192.0.2.3", "80", "a", "1"); /* not named: untouched */
	cr_assert_geq(listed("mb", "192.0.2.3", "80"), 0);
	cr_assert_null(meta_of(listed("mb", "192.0.2.3", "80"), "b", &n));
	cr_assert_eq(n, 1);
	cr_assert_lt(listed("mb", "198.18.0.9", "1"), 0, "a batch creates no instance");
}

Test(nacos_batch, delete_removes_the_given_keys)
{
	static const char *const want[] = { "192.0.2.1:80:unknown:DEFAULT:ephemeral" };
	int n;

	reg("md", "192.0.2.1", 80, "metadata=%7B%22a%22%3A%221%22%2C%22b%22%3A%222%22%7D");
	reg("md", "192.0.2.2", 80, "metadata=%7B%22a%22%3A%221%22%7D");
	/* The values do not matter for DELETE; an absent key is no error. */
	batch("DELETE", "md", "{\"a\":\"x\",\"nope\":\"\"}",
	      instances("[{\"ip\":\"192.0.2.1\",\"port\":80}]"));
	expect_updated(want, 1);
	cr_assert_null(meta_of(listed("md", "192.0.2.1", "80"), "a", &n));
	cr_assert_eq(n, 1);
	expect_meta("md", "192.0.2.1", "80", "b", "2");
	expect_meta("md", "192.0.2.2", "80", "a", "1");
}

Test(nacos_batch, consistency_type_picks_every_instance_of_that_kind)
{
	static const char *const persist[] = {
		"192.0.2.11:80:unknown:DEFAULT:persist",
		"192.0.2.12:80:unknown:DEFAULT:persist",
	};
	const char *const *got;
	int arr;

	reg("mk", "192.0.2.11", 80, "ephemeral=false");
	reg("mk", "192.0.2.12", 80, "ephemeral=false&enabled=false"); /* disabled: included */
	reg("mk", "192.0.2.13", 80, NULL);
	reg("mk", "192.0.2.14", 80, NULL);

	batch("PUT", "mk", "{\"p\":\"1\"}", "consistencyType=persist");
	/* The order is the store's: compare as a set. */
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	arr = nj_get(&J, 0, "updated");
	cr_assert_eq(J.t[arr].size, 2, "%s", A.body);
	got = persist;
	for (int i = 0; i < 2; i++) {
		char s[128];

		nj_str_at(&J, nj_at(&J, arr, i), s, sizeof(s));
		cr_assert(strcmp(s, got[0]) == 0 || strcmp(s, got[1]) == 0, "%s", s);
	}
	expect_meta("mk", "192.0.2.11", "80", "p", "1");
	expect_meta("mk", "192.0.2.13", "80", "p", NULL);

	batch("PUT", "mk", "{\"e\":\"1\"}", "consistencyType=ephemeral");
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	cr_assert_eq(J.t[nj_get(&J, 0, "updated")].size, 2, "%s", A.body);
	cr_assert_not_null(strstr(A.body, "\"192.0.2.13:80:unknown:DEFAULT:ephemeral\""));
	cr_assert_not_null(strstr(A.body, "\"192.0.2.14:80:unknown:DEFAULT:ephemeral\""));
	expect_meta("mk", "192.0.2.14", "80", "e", "1");
	expect_meta("mk", "192.0.2.11", "80", "e", NULL);

	batch("DELETE", "mk", "{\"e\":\"\"}", "consistencyType=ephemeral");
	expect(200, NULL);
	expect_meta("mk", "192.0.2.14", "80", "e", NULL);

	/* consistencyType wins over instances, as in Nacos. */
	batch("PUT", "mk", "{\"w\":\"1\"}",
	      "consistencyType=persist&instances=%5B%7B%22ip%22%3A%22192.0.2.13%22%2C%22port%22%"
	      "3A80%7D%5D");
	expect(200, NULL);
	expect_meta("mk", "192.0.2.13", "80", "w", NULL);
	expect_meta("mk", "192.0.2.11", "80", "w", "1");
}

Test(nacos_batch, preserved_keys_set_by_a_batch_take_effect)
{
	static const char *const want[] = { "192.0.2.21:80:unknown:DEFAULT:ephemeral" };

	reg("mp", "192.0.2.21", 80, NULL);
	batch("PUT", "mp", "{\"preserved.heart.beat.interval\":\"7000\"}",
	      instances("[{\"ip\":\"192.0.2.21\",\"port\":80}]"));
	expect_updated(want, 1);
	call("PUT", NS "/instance/beat?serviceName=mp&ip=192.0.2.21&port=80");
	expect(200, NULL);
	cr_assert_not_null(strstr(A.body, "\"clientBeatInterval\":7000"), "%s", A.body);
}

Test(nacos_batch, malformed_or_missing_parameters_are_400)
{
	static const char *const bad_instances[] = {
		"nope",
		"{\"ip\":\"192.0.2.1\",\"port\":80}", /* an object, not a list */
		"[1,2]",
		"[{\"ip\":\"192.0.2.1\",\"port\":80},]",
		"[{\"ip\":\"192.0.2.1\"}]",                                     /* no port */
		"[{\"port\":80}]",                                              /* no ip */
		"[{\"ip\":\"192.0.2.1\",\"port\":70000}]",                      /* not a port */
		"[{\"ip\":\"not-an-ip\",\"port\":80}]",                         /* not an address */
		"[{\"ip\":\"192.0.2.1\",\"port\":80,\"clusterName\":\"a@b\"}]", /* bad cluster */
	};

	reg("me", "192.0.2.1", 80, NULL);
	for (size_t i = 0; i < sizeof(bad_instances) / sizeof(bad_instances[0]); i++) {
		batch("PUT", "me", "{\"a\":\"1\"}", instances(bad_instances[i]));
		cr_assert_eq(A.status, 400, "%s: %d %s", bad_instances[i], A.status, A.body);
		cr_assert(strncmp(A.body, "Param 'instances'", 17) == 0, "%s: %s", bad_instances[i],
		          A.body);
	}
	call("PUT", NS "/instance/metadata/batch?serviceName=me&consistencyType=persist");
	expect(400, "Param 'metadata' is required.");
	call("PUT", NS "/instance/metadata/batch?metadata=%%7B%%7D&consistencyType=persist");
	expect(400, "Param 'serviceName' is required.");
	batch("PUT", "me", "{\"a\":\"1\"}", "x=1");
	expect(400, "Param 'instances' or 'consistencyType' is required.");
	batch("PUT", "me", "{\"a\":\"1\"}", "consistencyType=all");
	expect(400, "Param 'consistencyType' must be 'ephemeral' or 'persist'");
	batch("DELETE", "me", "{\"a\":{\"nested\":1}}", "consistencyType=ephemeral");
	cr_assert_eq(A.status, 400, "%s", A.body);
	cr_assert(strncmp(A.body, "metadata format incorrect", 25) == 0, "%s", A.body);
	/* Nothing changed on the way. */
	expect_meta("me", "192.0.2.1", "80", "a", NULL);
	/* Other methods on the path: 405, as for every known path. */
	call("GET", NS "/instance/metadata/batch?serviceName=me");
	expect(405, NULL);
}

Test(nacos_batch, unknown_service_or_instances_update_nothing)
{
	batch("PUT", "nosuch", "{\"a\":\"1\"}", instances("[{\"ip\":\"192.0.2.1\",\"port\":80}]"));
	expect(200, "{\"updated\":[]}");
	batch("PUT", "nosuch", "{\"a\":\"1\"}", "consistencyType=ephemeral");
	expect(200, "{\"updated\":[]}");
	reg("mu", "192.0.2.1", 80, NULL);
	batch("PUT", "mu", "{\"a\":\"1\"}", "consistencyType=persist");
	expect(200, "{\"updated\":[]}");
	batch("PUT", "mu", "{\"a\":\"1\"}",
	      instances("[{\"ip\":\"192.0.2.1\",\"port\":80,\"clusterName\":\"other\"}]"));
	expect(200, "{\"updated\":[]}");
	batch("PUT", "mu", "{\"a\":\"1\"}", instances("[]"));
	expect(200, "{\"updated\":[]}");
}

Test(nacos_batch, form_body_group_and_namespace)
{
	static const char *const want[] = { "192.0.2.31:80:unknown:DEFAULT:ephemeral" };
	char body[1024];

	call("POST", NS "/instance?serviceName=G1@@mf&namespaceId=n1&ip=192.0.2.31&port=80");
	expect(200, "ok");
	snprintf(body, sizeof(body), "serviceName=mf&groupName=G1&namespaceId=n1&metadata=%s&%s",
	         nacos_enc("{\"f\":\"1\"}"), instances("[{\"ip\":\"192.0.2.31\",\"port\":80}]"));
	nacos_do(C, &A, "PUT", NS "/instance/metadata/batch", "application/x-www-form-urlencoded",
	         body);
	expect_updated(want, 1);
	call("GET", NS "/instance/list?serviceName=G1@@mf&namespaceId=n1");
	expect(200, NULL);
	cr_assert_not_null(strstr(A.body, "\"metadata\":{\"f\":\"1\"}"), "%s", A.body);
	/* Another namespace's service of that name is another service. */
	batch("PUT", "G1@@mf", "{\"a\":\"1\"}", "consistencyType=ephemeral");
	expect(200, "{\"updated\":[]}");
}

Test(nacos_batch, a_batch_pipelined_between_requests_is_answered_in_order)
{
	static char req[1 << 16];
	size_t n = 0;
	char target[4096];

	for (int i = 0; i < 16; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "198.18.%d.%d", i / 8, 1 + i % 8);
		reg("mq", ip, 8000 + i, NULL);
	}
	snprintf(target, sizeof(target),
	         NS "/instance/metadata/batch?serviceName=mq&metadata=%s&%s",
	         nacos_enc("{\"q\":\"1\"}"), "consistencyType=ephemeral");
	n += nacos_fmt(req + n, sizeof(req) - n, "GET", NS "/instance/list?serviceName=mq", NULL,
	               NULL, NULL);
	n += nacos_fmt(req + n, sizeof(req) - n, "PUT", target, NULL, NULL, NULL);
	n += nacos_fmt(req + n, sizeof(req) - n, "GET", NS "/instance/list?serviceName=mq", NULL,
	               NULL, NULL);
	http_send(C, req, n);
	nacos_read(C, &A);
	expect(200, NULL);
	cr_assert_null(strstr(A.body, "\"q\":\"1\""), "the first list is from before");
	nacos_read(C, &A);
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	cr_assert_eq(J.t[nj_get(&J, 0, "updated")].size, 16, "%s", A.body);
	nacos_read(C, &A);
	expect(200, NULL);
	nj_parse(&J, A.body, A.len);
	{
		int hosts = nj_get(&J, 0, "hosts");

		cr_assert_eq(J.t[hosts].size, 16);
		for (int i = 0; i < 16; i++)
			cr_assert_str_eq(meta_of(nj_at(&J, hosts, i), "q", NULL), "1",
			                 "host %d: the write is answered before the next request",
			                 i);
	}
}

/* ---- subscribers ---- */

/* A UDP socket on 127.0.0.1 (an ephemeral port): a subscriber's push socket. */
static int udp_sock(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

#define SUBS 6

/* The subscriber objects of the last answer (J) as "port|agent|app|cluster", and the count. */
static int subscribers(char out[][256], int max, long *count)
{
	int arr;

	expect(200, NULL);
	cr_assert_not_null(strstr(A.head, "\r\nContent-Type: application/json"), "%s", A.head);
	nj_parse(&J, A.body, A.len);
	cr_assert_eq(J.t[0].size, 2, "subscribers and count: %s", A.body);
	*count = atol(nj_s(&J, 0, "count"));
	arr = nj_get(&J, 0, "subscribers");
	cr_assert_eq(J.t[arr].type, JSMN_ARRAY);
	cr_assert_leq(J.t[arr].size, max);
	for (int i = 0; i < J.t[arr].size; i++) {
		int s = nj_at(&J, arr, i);
		char addr[64];

		cr_assert_eq(J.t[s].size, 8, "eight fields: %.*s", J.t[s].end - J.t[s].start,
		             A.body + J.t[s].start);
		snprintf(addr, sizeof(addr), "127.0.0.1:%s", nj_s(&J, s, "port"));
		cr_assert_str_eq(nj_s(&J, s, "addrStr"), addr);
		cr_assert_str_eq(nj_s(&J, s, "ip"), "127.0.0.1");
		cr_assert_eq(nj_type(&J, s, "port"), JSMN_PRIMITIVE);
		cr_assert_str_eq(nj_s(&J, s, "namespaceId"), "public");
		cr_assert_str_eq(nj_s(&J, s, "serviceName"), "DEFAULT_GROUP@@subs");
		snprintf(out[i], 256, "%s|%s|%s|%s", nj_s(&J, s, "port"), nj_s(&J, s, "agent"),
		         nj_s(&J, s, "app"), nj_s(&J, s, "cluster"));
	}
	return J.t[arr].size;
}

Test(nacos_batch, subscribers_of_every_worker_are_listed_and_paged)
{
	int fds[SUBS];
	uint16_t ports[SUBS];
	char all[SUBS][256], page[SUBS][256], want[SUBS][256];
	long count;
	int n;

	/* Several targets: they hash to both workers. */
	for (int i = 0; i < SUBS; i++) {
		fds[i] = udp_sock(&ports[i]);
		call("GET", NS "/instance/list?serviceName=subs&udpPort=%u%s", ports[i],
		     i % 2 ? "&app=a1&clusters=c1" : "");
		expect(200, NULL);
		snprintf(want[i], 256, "%u|Nacos-Java-Client:v1.0.0|%s|%s", ports[i],
		         i % 2 ? "a1" : "", i % 2 ? "c1" : "");
	}
	/* A poll again refreshes, it does not add. */
	call("GET", NS "/instance/list?serviceName=subs&udpPort=%u", ports[0]);

	call("GET", NS "/service/subscribers?serviceName=subs");
	n = subscribers(all, SUBS, &count);
	cr_assert_eq(n, SUBS, "%s", A.body);
	cr_assert_eq(count, SUBS);
	for (int i = 0; i < SUBS; i++) {
		bool found = false;

		for (int j = 0; j < n; j++)
			found = found || strcmp(all[j], want[i]) == 0;
		cr_assert(found, "subscriber %s not listed: %s", want[i], A.body);
	}
	/* Pages of 4: the same order, whichever connection (and worker) asks. */
	for (int p = 1; p <= 3; p++) {
		struct http_conn *c = http_open(hn.node.nacos_port);
		char t[256];

		snprintf(t, sizeof(t),
		         NS "/service/subscribers?serviceName=subs&pageNo=%d&pageSize=4", p);
		nacos_do(c, &A, "GET", t, NULL, NULL);
		n = subscribers(page, SUBS, &count);
		cr_assert_eq(count, SUBS);
		cr_assert_eq(n, p == 1 ? 4 : p == 2 ? 2 : 0, "page %d: %s", p, A.body);
		for (int i = 0; i < n; i++)
			cr_assert_str_eq(page[i], all[(p - 1) * 4 + i], "page %d entry %d", p, i);
		http_close(c);
	}
	/* Another service, another namespace: none. */
	call("GET", NS "/service/subscribers?serviceName=other");
	expect(200, "{\"subscribers\":[],\"count\":0}");
	call("GET", NS "/service/subscribers?serviceName=subs&namespaceId=n2");
	expect(200, "{\"subscribers\":[],\"count\":0}");
	call("GET", NS "/service/subscribers");
	expect(400, "Param 'serviceName' is required.");
	call("GET", NS "/service/subscribers?serviceName=subs&pageSize=x");
	cr_assert_eq(A.status, 400);
	for (int i = 0; i < SUBS; i++)
		close(fds[i]);
}

Test(nacos_batch, subscribers_pipelined_with_other_requests)
{
	static char req[1 << 14];
	uint16_t port;
	int fd = udp_sock(&port);
	char t[256];
	size_t n = 0;

	call("GET", NS "/instance/list?serviceName=subs&udpPort=%u", port);
	expect(200, NULL);
	/* Listing visits both workers: what follows it waits for its answer. */
	for (int i = 0; i < 4; i++) {
		n += nacos_fmt(req + n, sizeof(req) - n, "GET",
		               NS "/service/subscribers?serviceName=subs", NULL, NULL, NULL);
		snprintf(t, sizeof(t), NS "/instance/list?serviceName=s%d", i);
		n += nacos_fmt(req + n, sizeof(req) - n, "GET", t, NULL, NULL, NULL);
	}
	http_send(C, req, n);
	for (int i = 0; i < 4; i++) {
		nacos_read(C, &A);
		expect(200, NULL);
		cr_assert_not_null(strstr(A.body, "\"count\":1}"), "%s", A.body);
		nacos_read(C, &A);
		expect(200, NULL);
		snprintf(t, sizeof(t), "\"name\":\"DEFAULT_GROUP@@s%d\"", i);
		cr_assert_not_null(strstr(A.body, t), "answer %d out of order: %s", i, A.body);
	}
	close(fd);
}

/* ---- the admin endpoints on the Nacos port ---- */

/* GET path on port: status, body (malloc'd) and Content-Type. */
static int get(uint16_t port, const char *path, char **body, char *ctype)
{
	return http_get(port, path, body, ctype, 128);
}

Test(nacos_batch, health_and_cluster_answer_as_on_the_admin_port)
{
	static const char *const paths[] = { "/health", "/cluster" };

	for (size_t i = 0; i < 2; i++) {
		char *a, *b, ta[128], tb[128];
		int sa = get(hn.http_port, paths[i], &a, ta);
		int sb = get(hn.node.nacos_port, paths[i], &b, tb);

		cr_assert_eq(sa, 200);
		cr_assert_eq(sb, sa, "%s", paths[i]);
		cr_assert_str_eq(tb, ta, "%s: Content-Type", paths[i]);
		cr_assert_str_eq(b, a, "%s", paths[i]);
		free(a);
		free(b);
	}
	/* Only GET and HEAD, as on the admin port. */
	call("POST", "/metrics");
	expect(405, "405 Method Not Allowed\n");
	{
		struct http_resp r;
		char req[256];
		size_t n = nacos_fmt(req, sizeof(req), "HEAD", "/health", NULL, NULL, NULL);

		http_send(C, req, n);
		http_read(C, &r, true);
		cr_assert_eq(r.status, 200);
		cr_assert_not_null(strstr(r.head, "Content-Length: 15\r\n"), "%s", r.head);
	}
	/* Paths beside them still answer 404. */
	call("GET", "/metricsx");
	cr_assert_eq(A.status, 404);
}

/* The series of a metrics text, values dropped, one per line, in order. */
static char *series(const char *text)
{
	size_t len = strlen(text);
	char *out = malloc(len + 1), *o = out;

	for (const char *p = text; *p;) {
		const char *e = strchr(p, '\n');
		const char *sp;

		if (e == NULL)
			e = p + strlen(p);
		sp = e;
		if (*p != '#')
			while (sp > p && sp[-1] != ' ')
				sp--;
		memcpy(o, p, (size_t)(sp - p));
		o += sp - p;
		*o++ = '\n';
		p = *e ? e + 1 : e;
	}
	*o = '\0';
	return out;
}

Test(nacos_batch, metrics_on_the_nacos_port_are_the_admin_ports)
{
	char *a, *b, ta[128], tb[128], *sa, *sb, cmd[512], out[8192];
	char path[] = "/tmp/distrod-nacos-metrics-XXXXXX";
	size_t got;
	FILE *p;
	int fd, status;

	reg("mm", "192.0.2.1", 80, NULL); /* some traffic to count */
	cr_assert_eq(get(hn.http_port, "/metrics", &a, ta), 200);
	cr_assert_eq(get(hn.node.nacos_port, "/metrics", &b, tb), 200);
	cr_assert_str_eq(tb, ta);
	cr_assert_str_eq(tb, "text/plain; version=0.0.4");
	/* The same series in the same order (values move between the two scrapes). */
	sa = series(a);
	sb = series(b);
	cr_assert_str_eq(sb, sa);
	cr_assert_not_null(strstr(b, "\ndistrod_http_requests_total{code=\"200\"} "),
	                   "the admin port's own counters too");
	cr_assert_not_null(strstr(b, "\ndistrod_workers 2\n"));

	if (access("/usr/bin/promtool", X_OK) != 0)
		cr_skip_test("promtool is not installed (Debian package prometheus; tools/deps "
		             "installs it): the Nacos port's /metrics not validated");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, b, strlen(b)), (ssize_t)strlen(b));
	close(fd);
	snprintf(cmd, sizeof(cmd), "/usr/bin/promtool check metrics < %s 2>&1", path);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	got = fread(out, 1, sizeof(out) - 1, p);
	out[got] = 0;
	status = pclose(p);
	unlink(path);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	          "promtool check metrics: exit %d:\n%s", WEXITSTATUS(status), out);
	cr_assert_eq(got, 0, "promtool check metrics printed:\n%s", out);
	free(a);
	free(b);
	free(sa);
	free(sb);
}
