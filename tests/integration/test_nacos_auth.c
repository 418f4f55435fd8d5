/*
 * Authentication (issue 10, docs/nacos.md "Authentication", docs/protocol.md
 * "Authentication") through real distrod processes: the Nacos login, every
 * way a call may carry credentials, every refusal (wrong password, unknown
 * user, missing, forged, expired and foreign tokens), the probes left open,
 * auth off by default, and the client port: AUTH with a token or a
 * password, ERR_AUTH_REQUIRED before it, the client library's re-AUTH after
 * a reconnect, distroctl --user / --token.
 *
 * The users file is made with `distroctl hash-password` at cost 4 (fast);
 * one user has cost 12 (a bcrypt of ~0.3 s) to show that a password check
 * the cache cannot answer runs off the worker: with one worker, another
 * connection is answered while it runs. Every wait is bounded.
 */
#include "nacos_node.h"
#include "tool.h"
#include "core/err.h"
#include "proto/wire.h"

#include <poll.h>
#include <sys/stat.h>

#define NS "/nacos/v1/ns"

static struct node nd;
static struct http_conn *C;
static struct nacos_ans A;
static struct njson J;
static char dir[128], users[192], http_port_file[192];

static void make_users(void)
{
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/distro-auth-%d-%ld", getpid(), (long)now_ms());
	cr_assert_eq(mkdir(dir, 0700), 0);
	snprintf(users, sizeof(users), "%s/users", dir);
	snprintf(http_port_file, sizeof(http_port_file), "%s/http.port", dir);
	f = fopen(users, "w");
	cr_assert_not_null(f);
	fprintf(f, "# made by the test\n");
	nacos_user_line(f, "nacos", "nacos-pw", 4, true);
	nacos_user_line(f, "bob", "bob pw&=", 4, false); /* needs URL encoding */
	nacos_user_line(f, "slow", "slow-pw", 12, false);
	fclose(f);
}

static void start_with(const char *const *extra)
{
	make_users();
	node_start(&nd, extra);
	cr_assert_gt(nd.nacos_port, 0);
	C = http_open(nd.nacos_port);
}

static void start(void)
{
	make_users();
	const char *const extra[] = { "--workers",
		                      "1",
		                      "--auth-users",
		                      users,
		                      "--http-port-file",
		                      http_port_file,
		                      "--idle-timeout",
		                      "1000",
		                      NULL };

	node_start(&nd, extra);
	cr_assert_gt(nd.nacos_port, 0);
	C = http_open(nd.nacos_port);
}

static void stop(void)
{
	char cmd[300];

	if (C)
		http_close(C);
	C = NULL;
	cr_assert_eq(node_stop(&nd), 0, "distrod exits 0 on SIGTERM");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(nacos_auth, .init = start, .fini = stop, .timeout = 120);

/* ---- helpers ---- */

static int req(const char *method, const char *target, const char *hdrs, const char *body)
{
	static char buf[1 << 16];
	size_t n = nacos_fmt(buf, sizeof(buf), method, target, hdrs,
	                     body ? "application/x-www-form-urlencoded" : NULL, body);

	http_send(C, buf, n);
	return nacos_read(C, &A);
}

/* A login; the token into tok (cap NAUTH-sized). The status. */
static int login(const char *path, const char *user, const char *pass, char *tok, size_t cap)
{
	char target[256], body[256];
	int st;

	snprintf(target, sizeof(target), "/nacos/v1/auth/%s?username=%s", path, nacos_enc(user));
	snprintf(body, sizeof(body), "password=%s", nacos_enc(pass));
	st = req("POST", target, NULL, body);
	if (st == 200) {
		nj_parse(&J, A.body, A.len);
		snprintf(tok, cap, "%s", nj_s(&J, 0, "accessToken"));
	}
	return st;
}

/* A 403 with Nacos's message (and the JSON shape of every refusal). */
static void expect_403(const char *message)
{
	cr_assert_eq(A.status, 403, "%d %s", A.status, A.body);
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "message"), message, "%s", A.body);
	cr_assert_str_eq(nj_s(&J, 0, "error"), "Forbidden");
}

static int list_with(const char *cred)
{
	char target[1024];

	snprintf(target, sizeof(target), NS "/instance/list?serviceName=orders%s", cred);
	return req("GET", target, NULL, NULL);
}

static char tok[512];

/* ---- the Nacos API ---- */

Test(nacos_auth, login_answers_a_token_as_nacos_does)
{
	cr_assert_eq(login("users/login", "nacos", "nacos-pw", tok, sizeof(tok)), 200, "%s",
	             A.body);
	cr_assert_gt(strlen(tok), 20);
	cr_assert_eq(nj_type(&J, 0, "tokenTtl"), JSMN_PRIMITIVE);
	cr_assert_str_eq(nj_s(&J, 0, "tokenTtl"), "18000");
	cr_assert_str_eq(nj_s(&J, 0, "globalAdmin"), "true");
	cr_assert_str_eq(nj_s(&J, 0, "username"), "nacos");
	/* The other path, both parameters in the form, a user who is not admin. */
	cr_assert_eq(
	        req("POST", "/nacos/v1/auth/login", NULL, "username=bob&password=bob%20pw%26%3D"),
	        200, "%s", A.body);
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "globalAdmin"), "false");
	cr_assert_str_eq(nj_s(&J, 0, "username"), "bob");
	/* A token works at once, in the parameter and in the header. */
	snprintf(tok, sizeof(tok), "%s", nj_s(&J, 0, "accessToken"));
	char cred[600];

	snprintf(cred, sizeof(cred), "&accessToken=%s", tok);
	cr_assert_eq(list_with(cred), 200, "%s", A.body);
	snprintf(cred, sizeof(cred), "Authorization: Bearer %s\r\n", tok);
	cr_assert_eq(req("GET", NS "/instance/list?serviceName=orders", cred, NULL), 200, "%s",
	             A.body);
}

Test(nacos_auth, wrong_password_and_unknown_user_are_refused_alike)
{
	char first[1024];

	cr_assert_eq(login("users/login", "nacos", "not-it", tok, sizeof(tok)), 403);
	expect_403("unknown user!");
	cr_assert_lt(A.len, sizeof(first));
	memcpy(first, A.body, A.len + 1);
	cr_assert_eq(login("users/login", "nobody", "not-it", tok, sizeof(tok)), 403);
	expect_403("unknown user!");
	cr_assert_str_eq(A.body, first, "the answer does not tell which names exist");
	/* The same on an API call with username+password parameters. */
	cr_assert_eq(list_with("&username=nacos&password=wrong"), 403);
	expect_403("unknown user!");
	cr_assert_eq(list_with("&username=ghost&password=wrong"), 403);
	expect_403("unknown user!");
	/* A login without a password is a login without credentials. */
	cr_assert_eq(req("POST", "/nacos/v1/auth/users/login?username=nacos", NULL, "x=1"), 403);
	expect_403("user not found!");
}

Test(nacos_auth, missing_credentials_are_refused_but_the_probes_stay_open)
{
	cr_assert_eq(list_with(""), 403);
	expect_403("user not found!");
	cr_assert_eq(
	        req("POST", NS "/instance?serviceName=orders&ip=192.0.2.1&port=80", NULL, NULL),
	        403);
	expect_403("user not found!");
	cr_assert_eq(
	        req("PUT", NS "/instance/beat?serviceName=orders&ip=192.0.2.1&port=80", NULL, NULL),
	        403);
	expect_403("user not found!");
	cr_assert_eq(req("GET", NS "/service/list", NULL, NULL), 403);
	cr_assert_eq(req("GET", NS "/operator/servers", NULL, NULL), 403);
	cr_assert_eq(req("GET", "/nacos/v1/no/such/api", NULL, NULL), 403,
	             "refused before routing");
	/* A non-Bearer Authorization header is no credential (Nacos reads only Bearer). */
	cr_assert_eq(req("GET", NS "/instance/list?serviceName=orders",
	                 "Authorization: Basic eDp5\r\n", NULL),
	             403);
	expect_403("user not found!");
	cr_assert_eq(req("GET", NS "/health/server", NULL, NULL), 200);
	cr_assert_eq(req("GET", NS "/operator/metrics", NULL, NULL), 200);
	cr_assert_eq(req("GET", NS "/ops/metrics", NULL, NULL), 200);
	/* The admin port's probes, served on this port too, are as open as there. */
	cr_assert_eq(req("GET", "/health", NULL, NULL), 200, "%s", A.body);
	cr_assert_eq(req("GET", "/metrics", NULL, NULL), 200);
	cr_assert_eq(req("GET", "/cluster", NULL, NULL), 403, "the member list is not a probe");
}

Test(nacos_auth, forged_tokens_are_refused)
{
	char cred[600];
	size_t n;

	cr_assert_eq(login("users/login", "nacos", "nacos-pw", tok, sizeof(tok)), 200);
	n = strlen(tok);
	/* Flip one character anywhere: the name, the expiry, the MAC. */
	for (size_t at = 2; at < n; at += n / 5) {
		char bad[512];

		snprintf(bad, sizeof(bad), "%s", tok);
		bad[at] = bad[at] == 'A' ? 'B' : 'A';
		snprintf(cred, sizeof(cred), "&accessToken=%s", bad);
		cr_assert_eq(list_with(cred), 403, "flipped at %zu", at);
		expect_403("token invalid!");
	}
	cr_assert_eq(list_with("&accessToken=not-a-token"), 403);
	expect_403("token invalid!");
	/* A bad token decides, even with a right password after it (Nacos's order). */
	snprintf(cred, sizeof(cred), "&accessToken=%sA&username=nacos&password=nacos-pw", tok);
	cr_assert_eq(list_with(cred), 403);
	expect_403("token invalid!");
	snprintf(cred, sizeof(cred), "Authorization: Bearer x%s\r\n", tok);
	cr_assert_eq(req("GET", NS "/instance/list?serviceName=orders&accessToken=x", cred, NULL),
	             403);
	expect_403("token invalid!");
}

Test(nacos_auth, username_and_password_parameters_pass_on_every_call)
{
	const char *cred = "username=bob&password=bob%20pw%26%3D";
	char target[512];

	snprintf(target, sizeof(target),
	         NS "/instance?serviceName=orders&ip=192.0.2.7&port=8080&%s", cred);
	cr_assert_eq(req("POST", target, NULL, NULL), 200, "%s", A.body);
	cr_assert_str_eq(A.body, "ok");
	/* In the form body too, as the npm client sends them with a POST. */
	cr_assert_eq(req("PUT", NS "/instance/beat?serviceName=orders&ip=192.0.2.7&port=8080", NULL,
	                 cred),
	             200, "%s", A.body);
	snprintf(target, sizeof(target), "&%s", cred);
	cr_assert_eq(list_with(target), 200);
	cr_assert_not_null(strstr(A.body, "192.0.2.7"), "%s", A.body);
	snprintf(target, sizeof(target), NS "/service/list?pageNo=1&pageSize=10&%s", cred);
	cr_assert_eq(req("GET", target, NULL, NULL), 200, "%s", A.body);
	snprintf(target, sizeof(target),
	         NS "/instance?serviceName=orders&ip=192.0.2.7&port=8080&%s", cred);
	cr_assert_eq(req("DELETE", target, NULL, NULL), 200, "%s", A.body);
}

Test(nacos_auth, a_token_from_another_node_secret_is_refused)
{
	struct node other;
	struct http_conn *oc;
	const char *const extra[] = { "--auth-users", users, NULL };
	char cred[600];

	node_start(&other, extra); /* no cluster secret: a random token key of its own */
	oc = http_open(other.nacos_port);
	{
		struct http_conn *mine = C;

		C = oc;
		cr_assert_eq(login("users/login", "nacos", "nacos-pw", tok, sizeof(tok)), 200);
		snprintf(cred, sizeof(cred), "&accessToken=%s", tok);
		cr_assert_eq(list_with(cred), 200, "good where it was issued");
		C = mine;
	}
	cr_assert_eq(list_with(cred), 403);
	expect_403("token invalid!");
	http_close(oc);
	cr_assert_eq(node_stop(&other), 0);
}

/* Readable within ms? */
static bool readable(int fd, int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };

	return poll(&p, 1, ms) == 1;
}

Test(nacos_auth, a_bcrypt_parks_its_connection_not_the_worker)
{
	struct http_conn *slow = http_open(nd.nacos_port);
	char cred[600], buf[1024];
	int64_t t0;
	size_t n;

	cr_assert_eq(login("users/login", "nacos", "nacos-pw", tok, sizeof(tok)), 200);
	/* A password never seen (cost 12: ~0.3 s of bcrypt), with a request pipelined behind it. */
	n = nacos_fmt(buf, sizeof(buf), "GET",
	              NS "/instance/list?serviceName=orders&username=slow&password=slow-pw", NULL,
	              NULL, NULL);
	n += nacos_fmt(buf + n, sizeof(buf) - n, "GET", NS "/health/server", NULL, NULL, NULL);
	t0 = now_ms();
	http_send(slow, buf, n);
	/* The one worker answers another connection meanwhile. */
	snprintf(cred, sizeof(cred), "&accessToken=%s", tok);
	cr_assert_eq(list_with(cred), 200);
	if (now_ms() - t0 < 100) /* bcrypt at cost 12 takes far longer on any machine */
		cr_assert(!readable(slow->fd, 0), "the parked request is not answered yet");
	cr_assert_eq(nacos_read(slow, &A), 200, "%s", A.body);
	cr_assert_not_null(strstr(A.body, "\"hosts\""), "the parked request first: %s", A.body);
	cr_assert_eq(nacos_read(slow, &A), 200);
	cr_assert_not_null(strstr(A.body, "Nacos-Naming"), "then the one behind it");
	/* Now cached: the same password answers at once, wrong ones are refused. */
	cr_assert_eq(list_with("&username=slow&password=slow-pw"), 200);
	cr_assert_eq(list_with("&username=slow&password=slow-pX"), 403);
	http_close(slow);
}

Test(nacos_auth, counters_in_metrics)
{
	char *body;
	FILE *f;
	int port = 0;

	cr_assert_eq(list_with(""), 403);
	cr_assert_eq(login("users/login", "nacos", "nacos-pw", tok, sizeof(tok)), 200);
	f = fopen(http_port_file, "r");
	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%d", &port), 1);
	fclose(f);
	cr_assert_eq(http_get((uint16_t)port, "/metrics", &body, NULL, 0), 200);
	cr_assert_not_null(strstr(body, "distrod_auth_total{result=\"ok\"} 1\n"), "%s", body);
	cr_assert_not_null(strstr(body, "distrod_auth_total{result=\"refused\"} 1\n"));
	cr_assert_not_null(strstr(body, "distrod_auth_bcrypt_total 1\n"));
	cr_assert_not_null(strstr(body, "distrod_auth_logins_total 1\n"));
	free(body);
}

/* ---- the client port ---- */

static int list_n(struct distro_client *c)
{
	return distro_list(c, NULL, NULL, "orders", NULL, NULL, NULL, NULL);
}

Test(nacos_auth, client_port_needs_auth_before_anything_but_ping)
{
	struct distro_client *c = node_client(&nd);
	struct distro_instance in = inst("orders", "192.0.2.9", 9000);
	char stats[256];

	cr_assert_eq(distro_ping(c), 0, "PING stays open, as Nacos's server check");
	cr_assert_eq(list_n(c), -ERR_AUTH_REQUIRED);
	cr_assert_eq(distro_register(c, &in, 1, NULL), -ERR_AUTH_REQUIRED);
	cr_assert_eq(distro_stats(c, stats, sizeof(stats)), -ERR_AUTH_REQUIRED);
	cr_assert_eq(distro_auth_password(c, "nacos", "wrong"), -DISTRO_EAUTH_REFUSED);
	cr_assert_eq(distro_auth_password(c, "nobody", "wrong"), -DISTRO_EAUTH_REFUSED);
	cr_assert_eq(distro_auth_token(c, "forged"), -DISTRO_EAUTH_REFUSED);
	cr_assert_eq(list_n(c), -ERR_AUTH_REQUIRED, "refusals leave it unauthenticated");
	cr_assert_eq(distro_auth_password(c, "bob", "bob pw&="), 0);
	cr_assert_eq(distro_register(c, &in, 1, NULL), 0);
	cr_assert_eq(list_n(c), 1);
	distro_close(c);

	/* A token from the Nacos login. */
	cr_assert_eq(login("users/login", "nacos", "nacos-pw", tok, sizeof(tok)), 200);
	c = node_client(&nd);
	cr_assert_eq(distro_auth_token(c, tok), 0);
	cr_assert_eq(list_n(c), 1);
	/* The node closes idle connections after 1 s: the next call reconnects and re-AUTHs. */
	nap_ms(2500);
	cr_assert_eq(list_n(c), 1, "credentials sent again after the reconnect");
	distro_close(c);
}

/* Raw frames: an AUTH whose bcrypt runs, and a LIST pipelined right behind it. */
Test(nacos_auth, a_frame_pipelined_behind_auth_waits_for_its_outcome)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(nd.port) };
	uint8_t buf[512], *p = buf;
	struct proto_header h;
	struct proto_wr wr;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t got = 0;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	proto_wr_init(&wr, p + PROTO_HEADER_BYTES, 128);
	proto_wr_u8(&wr, PROTO_AUTH_PASSWORD);
	proto_wr_str(&wr, (struct store_str){ "slow", 4 });
	proto_wr_str(&wr, (struct store_str){ "slow-pw", 7 });
	proto_header_put(p, OP_AUTH, (uint32_t)(wr.p - (p + PROTO_HEADER_BYTES)), 1, 0, 0);
	p = wr.p;
	proto_wr_init(&wr, p + PROTO_HEADER_BYTES, 128);
	proto_wr_str(&wr, (struct store_str){ NULL, 0 });
	proto_wr_str(&wr, (struct store_str){ NULL, 0 });
	proto_wr_str(&wr, (struct store_str){ "orders", 6 });
	proto_wr_u8(&wr, 0);
	proto_wr_u16(&wr, 0);
	proto_header_put(p, OP_LIST, (uint32_t)(wr.p - (p + PROTO_HEADER_BYTES)), 2, 0, 0);
	p = wr.p;
	cr_assert_eq(send(fd, buf, (size_t)(p - buf), 0), p - buf);
	/* Two answers, in order: AUTH ok (flags, "slow"), then the LIST, not ERR_AUTH_REQUIRED. */
	for (int i = 0; i < 2; i++) {
		long flen;

		while ((flen = proto_frame_check(buf, got, 1 << 20, &h)) == 0) {
			ssize_t r;

			cr_assert(readable(fd, 5000), "answer %d within 5 s", i);
			r = recv(fd, buf + got, sizeof(buf) - got, 0);
			cr_assert_gt(r, 0);
			got += (size_t)r;
		}
		cr_assert_gt(flen, 0);
		cr_assert_eq(h.status, 0, "answer %d: status %u", i, h.status);
		cr_assert_eq(h.op, (i == 0 ? OP_AUTH : OP_LIST) | PROTO_RESPONSE);
		cr_assert_eq(h.request_id, (uint32_t)i + 1);
		if (i == 0)
			cr_assert(h.body_len == 7 &&
			          memcmp(buf + PROTO_HEADER_BYTES + 3, "slow", 4) == 0);
		memmove(buf, buf + flen, got - (size_t)flen);
		got -= (size_t)flen;
	}
	close(fd);
}

static int ctl(char *out, size_t cap, const char *fmt, ...)
{
	char head[256];
	va_list ap;
	int rc;

	snprintf(head, sizeof(head), "%s -s %s", DISTROCTL_BIN, nd.addr);
	va_start(ap, fmt);
	rc = tool_vrun(out, cap, head, "2>&1", fmt, ap);
	va_end(ap);
	return rc;
}

Test(nacos_auth, distroctl_user_password_file_and_token)
{
	char out[4096], pwfile[256];
	FILE *f;

	snprintf(pwfile, sizeof(pwfile), "%s/pw", dir);
	f = fopen(pwfile, "w");
	cr_assert_not_null(f);
	fputs("nacos-pw\n", f);
	fclose(f);
	cr_assert_eq(ctl(out, sizeof(out), "list orders"), 1);
	cr_assert_not_null(strstr(out, "authentication required"), "%s", out);
	cr_assert_eq(ctl(out, sizeof(out),
	                 "--user nacos --password-file %s register orders "
	                 "192.0.2.3:80",
	                 pwfile),
	             0, "%s", out);
	cr_assert_eq(ctl(out, sizeof(out), "list orders --user nacos --password-file %s", pwfile),
	             0, "%s", out);
	cr_assert_not_null(strstr(out, "192.0.2.3:80"), "%s", out);
	cr_assert_eq(ctl(out, sizeof(out), "--user bob --password-file %s list orders", pwfile), 1);
	cr_assert_not_null(strstr(out, "authentication refused"), "%s", out);
	cr_assert_eq(ctl(out, sizeof(out), "--user nacos list orders"), 2, "no password: usage");
	/* C sat idle through five distroctl runs: past this suite's --idle-timeout (1 s) */
	http_close(C);
	C = http_open(nd.nacos_port);
	cr_assert_eq(login("users/login", "nacos", "nacos-pw", tok, sizeof(tok)), 200, "%d %.*s",
	             A.status, (int)A.len, A.body);
	cr_assert_eq(ctl(out, sizeof(out), "--token %s list orders", tok), 0, "%s", out);
	cr_assert_eq(ctl(out, sizeof(out), "--token %sA list orders", tok), 1, "%s", out);
}

/* ---- a short token lifetime ---- */

static void start_short_ttl(void)
{
	make_users();
	const char *const extra[] = { "--auth-users", users, "--auth-token-ttl", "1000", NULL };

	node_start(&nd, extra);
	C = http_open(nd.nacos_port);
}

TestSuite(nacos_auth_ttl, .init = start_short_ttl, .fini = stop, .timeout = 60);

Test(nacos_auth_ttl, an_expired_token_is_refused)
{
	char cred[600];
	struct distro_client *c = node_client(&nd);
	int64_t t0 = now_ms(), end = t0 + 10000;

	cr_assert_eq(login("users/login", "nacos", "nacos-pw", tok, sizeof(tok)), 200);
	cr_assert_str_eq(nj_s(&J, 0, "tokenTtl"), "1");
	snprintf(cred, sizeof(cred), "&accessToken=%s", tok);
	cr_assert_eq(list_with(cred), 200);
	while (list_with(cred) == 200 && now_ms() < end)
		nap_ms(50);
	expect_403("token expired!");
	cr_assert_geq(now_ms() - t0, 900, "not before its lifetime");
	cr_assert_eq(distro_auth_token(c, tok), -DISTRO_EAUTH_EXPIRED);
	distro_close(c);
}

/* ---- off by default ---- */

static void start_open(void)
{
	const char *const extra[] = { "--workers", "1", NULL };

	start_with(extra);
}

TestSuite(nacos_auth_off, .init = start_open, .fini = stop, .timeout = 60);

Test(nacos_auth_off, without_the_flag_everything_is_open)
{
	struct distro_client *c = node_client(&nd);

	cr_assert_eq(list_with(""), 200);
	cr_assert_eq(
	        req("POST", NS "/instance?serviceName=orders&ip=192.0.2.1&port=80", NULL, NULL),
	        200);
	cr_assert_eq(
	        req("POST", "/nacos/v1/auth/users/login?username=nacos", NULL, "password=nacos-pw"),
	        501, "no users to log in: %s", A.body);
	cr_assert_eq(list_n(c), 1);
	/* A client configured with credentials works as well: the node says it checked nothing. */
	cr_assert_eq(distro_auth_password(c, "anyone", "anything"), 0);
	cr_assert_eq(list_n(c), 1);
	distro_close(c);
}

/* A bad users file stops the start, naming the line. */
Test(nacos_auth_off, a_malformed_users_file_fails_the_start)
{
	char bad[256], cmd[600], out[1024];
	FILE *f, *p;
	size_t n;

	snprintf(bad, sizeof(bad), "%s/bad-users", dir);
	f = fopen(bad, "w");
	cr_assert_not_null(f);
	fputs("# ok\nalice:not-a-hash\n", f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s --port 0 --nacos-port 0 --http-port 0 --auth-users %s 2>&1",
	         DISTROD_BIN, bad);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	cr_assert_neq(pclose(p), 0, "distrod refuses to start");
	cr_assert_not_null(strstr(out, "bad-users:2:"), "%s", out);
}
