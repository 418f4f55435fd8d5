/*
 * test_grpc_auth.c - the Nacos 2.x gRPC port of a real distrod with
 * --auth-users (docs/nacos.md, "Authentication"): a naming request
 * carries the token of a Nacos login as the `accessToken` header, in the
 * Payload's metadata (what the SDKs send) or in the body's "headers"
 * (what this test sends: both are read the same way, grpc_naming.c).
 * Without one, or with a wrong or forged one, it is answered errorCode
 * 403 with Nacos's message and changes nothing; with the login's token it
 * is served. The connection life cycle (ServerCheck, ConnectionSetup,
 * HealthCheck) needs no token, as in Nacos.
 */
#include "grpc_suite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char dir[128], users[192];
static char tok[512];

static void start_auth(void)
{
	const char *more[] = { "--auth-users", users, NULL };
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/distro-grpc-auth-%d-%ld", getpid(), (long)now_ms());
	cr_assert_eq(mkdir(dir, 0700), 0);
	snprintf(users, sizeof(users), "%s/users", dir);
	f = fopen(users, "w");
	cr_assert_not_null(f);
	nacos_user_line(f, "nacos", "nacos-pw", 4, true);
	fclose(f);
	start_with(more);
}

static void stop_auth(void)
{
	char cmd[200];

	stop();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(grpc_auth, .init = start_auth, .fini = stop_auth, .timeout = 120);

/* The token of a Nacos login on the HTTP port: its status. */
static int login(const char *user, const char *pass)
{
	struct http_conn *h = http_open(nd.nacos_port);
	struct nacos_ans a;
	struct njson j;
	char target[256], body[256];
	int st;

	snprintf(target, sizeof(target), "/nacos/v1/auth/login?username=%s", nacos_enc(user));
	snprintf(body, sizeof(body), "password=%s", nacos_enc(pass));
	st = nacos_do(h, &a, "POST", target, NULL, body);
	if (st == 200) {
		nj_parse(&j, a.body, a.len);
		snprintf(tok, sizeof(tok), "%s", nj_s(&j, 0, "accessToken"));
	}
	http_close(h);
	return st;
}

/* An InstanceRequest registering 192.0.2.7:port with `headers`: the answer's errorCode. */
static int register_with(struct gcli *c, const char *headers, int port, char *msg, size_t cap)
{
	char j[1024];
	struct gmsg a;
	struct njson *d;
	int code;

	snprintf(j, sizeof(j),
	         "{\"headers\":%s,\"requestId\":\"a-%d\",\"namespace\":\"\",\"serviceName\":"
	         "\"guarded\",\"groupName\":\"DEFAULT_GROUP\",\"module\":\"naming\",\"type\":"
	         "\"registerInstance\",\"instance\":{\"ip\":\"192.0.2.7\",\"port\":%d,"
	         "\"weight\":1.0,\"healthy\":true,\"enabled\":true,\"ephemeral\":true,"
	         "\"clusterName\":\"c1\",\"metadata\":{}}}",
	         headers, port, port);
	cr_assert_eq(gcli_call(c, "InstanceRequest", j, &a), 0);
	cr_assert_str_eq(a.type, "InstanceResponse", "%s: %s", a.type, a.json);
	d = gjson(&a);
	code = atoi(nj_s(d, 0, "errorCode"));
	snprintf(msg, cap, "%s", nj_s(d, 0, "message"));
	if (code == 0)
		cr_assert_str_eq(nj_s(d, 0, "resultCode"), "200", "%s", a.json);
	gmsg_free(&a);
	return code;
}

/* A ServiceQueryRequest of "guarded" with `headers`: the errorCode; the hosts into *hosts. */
static int query_with(struct gcli *c, const char *headers, int *hosts)
{
	char q[900];
	struct gmsg a;
	struct njson *d;
	int code, si, h;

	snprintf(q, sizeof(q),
	         "{\"headers\":%s,\"requestId\":\"q\",\"namespace\":\"public\",\"serviceName\":"
	         "\"guarded\",\"groupName\":\"DEFAULT_GROUP\",\"module\":\"naming\","
	         "\"cluster\":\"\",\"healthyOnly\":false,\"udpPort\":0}",
	         headers);
	cr_assert_eq(gcli_call(c, "ServiceQueryRequest", q, &a), 0);
	cr_assert_str_eq(a.type, "QueryServiceResponse", "%s", a.json);
	d = gjson(&a);
	code = atoi(nj_s(d, 0, "errorCode"));
	*hosts = -1;
	if (code == 0 && (si = nj_get(d, 0, "serviceInfo")) >= 0 &&
	    (h = nj_get(d, si, "hosts")) >= 0)
		*hosts = d->t[h].size;
	gmsg_free(&a);
	return code;
}

Test(grpc_auth, naming_requests_need_the_logins_token)
{
	struct gcli c;
	char msg[128], hdr[700], forged[520];
	int hosts;

	setup_conn(&c, NULL, 0); /* ServerCheck and ConnectionSetup: no token needed */
	cr_assert_eq(register_with(&c, "{}", 8001, msg, sizeof(msg)), 403, "without a token");
	cr_assert_str_eq(msg, "user not found!");
	cr_assert_eq(register_with(&c, "{\"accessToken\":\"not-a-token\"}", 8002, msg, sizeof(msg)),
	             403);
	cr_assert_str_eq(msg, "token invalid!");
	cr_assert_eq(login("nacos", "wrong"), 403, "a wrong password gets no token");
	cr_assert_eq(login("nacos", "nacos-pw"), 200);
	cr_assert_gt(strlen(tok), 20, "a token: %s", tok);
	/* The same token with its last character changed: the signature no longer holds. */
	snprintf(forged, sizeof(forged), "%s", tok);
	forged[strlen(forged) - 1] = forged[strlen(forged) - 1] == 'A' ? 'B' : 'A';
	snprintf(hdr, sizeof(hdr), "{\"accessToken\":\"%s\"}", forged);
	cr_assert_eq(register_with(&c, hdr, 8003, msg, sizeof(msg)), 403, "a forged token");
	cr_assert_eq(query_with(&c, "{}", &hosts), 403, "a query without a token is refused too");
	snprintf(hdr, sizeof(hdr), "{\"accessToken\":\"%s\"}", tok);
	cr_assert_eq(register_with(&c, hdr, 8004, msg, sizeof(msg)), 0, "the login's token: %s",
	             msg);
	/* Only the registration with the token was made. */
	cr_assert_eq(query_with(&c, hdr, &hosts), 0);
	cr_assert_eq(hosts, 1, "the refused registrations changed nothing: %d hosts", hosts);
	gcli_close(&c);
}
