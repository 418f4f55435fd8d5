/*
 * The console's side of the Nacos API on a real distrod: the catalog
 * endpoints (GET /nacos/v1/ns/catalog/services and /catalog/instances,
 * docs/nacos.md "Console API") and the web console's files (/, /nacos/,
 * /nacos/console/..., docs/console.md): types, validators, the security
 * headers, and that they stay open when authentication is on while the
 * catalog does not.
 *
 * The counts are checked against what each test registered; the paging
 * against 100,000 services (registered in batches through the binary
 * client, the fast way in): every service on exactly one page, and the
 * last page answered within a bound. Answers are parsed with jsmn
 * (nacos_node.h), not the server's JSON code.
 *
 * Instances use documentation addresses only (192.0.2.0/24,
 * 198.18.0.0/15): distrod never connects to them.
 */
#include "nacos_node.h"

#include <distro/client.h>

#define NS "/nacos/v1/ns"

static struct node nd;
static struct http_conn *C;
static struct nacos_ans A;
static struct njson J;

static void start_with(const char *const *extra)
{
	node_start(&nd, extra);
	cr_assert_gt(nd.nacos_port, 0, "no --nacos-port-file");
	C = http_open(nd.nacos_port);
}

static void start(void)
{
	/* Nothing beats here: instances stay healthy as long as a test runs, however slow. */
	static const char *const extra[] = {
		"--workers", "2", "--beat-timeout", "600000", "--delete-timeout", "600000", NULL
	};

	start_with(extra);
}

static void stop(void)
{
	if (C)
		http_close(C);
	C = NULL;
	cr_assert_eq(node_stop(&nd), 0, "distrod exits 0 on SIGTERM");
}

TestSuite(nacos_catalog, .init = start, .fini = stop, .timeout = 300);

/* ---- helpers ---- */

static int call(const char *method, const char *fmt, ...)
{
	static char t[1 << 16];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t, sizeof(t), fmt, ap);
	va_end(ap);
	cr_assert_lt((size_t)n, sizeof(t));
	return nacos_do(C, &A, method, t, NULL, NULL);
}

static void expect(int status)
{
	cr_assert_eq(A.status, status, "status %d, want %d; body: %s", A.status, status, A.body);
}

/*
 * method target with extra header lines (may be NULL), answered by a head
 * alone (a HEAD, a 304: the Content-Length is the file's, no body follows).
 */
static void call_head_only(const char *method, const char *target, const char *hdrs)
{
	char raw[1024];
	struct http_resp r;
	size_t n = nacos_fmt(raw, sizeof(raw), method, target, hdrs, NULL, NULL);

	http_send(C, raw, n);
	http_read(C, &r, true);
	A.status = r.status;
	memcpy(A.head, r.head, sizeof(A.head));
	A.body[0] = '\0';
	A.len = 0;
}

/* GET /catalog/services with the query: parsed into J; the serviceList token. */
static int services(const char *fmt, ...)
{
	static char q[1 << 14];
	va_list ap;
	int list;

	va_start(ap, fmt);
	vsnprintf(q, sizeof(q), fmt, ap);
	va_end(ap);
	call("GET", NS "/catalog/services?%s", q);
	expect(200);
	cr_assert_not_null(strstr(A.head, "\r\nContent-Type: application/json"), "%s", A.head);
	nj_parse(&J, A.body, A.len);
	list = nj_get(&J, 0, "serviceList");
	cr_assert_geq(list, 0, "no serviceList: %s", A.body);
	cr_assert_eq(J.t[list].type, JSMN_ARRAY);
	return list;
}

static long count_of(void)
{
	return strtol(nj_s(&J, 0, "count"), NULL, 10);
}

/* The row of J's serviceList named name, or -1. */
static int row_of(int list, const char *name)
{
	for (int i = 0; i < J.t[list].size; i++) {
		int r = nj_at(&J, list, i);

		if (strcmp(nj_s(&J, r, "name"), name) == 0)
			return r;
	}
	return -1;
}

static void reg(const char *q)
{
	call("POST", NS "/instance?%s", q);
	expect(200);
}

/* ---- /catalog/services ---- */

Test(nacos_catalog, services_have_nacos_counts)
{
	int list, r;

	/* a: two clusters, three instances, one unhealthy, one disabled (counted, as in Nacos) */
	reg("serviceName=a&ip=192.0.2.1&port=80&clusterName=c1");
	reg("serviceName=a&ip=192.0.2.2&port=80&clusterName=c1&healthy=false");
	reg("serviceName=a&ip=192.0.2.3&port=80&clusterName=c2&enabled=false");
	/* b in group G, protected at 0.9 with 1 of 2 healthy: triggerFlag "true" */
	call("POST", NS "/service?serviceName=b&groupName=G&protectThreshold=0.9");
	expect(200);
	reg("serviceName=b&groupName=G&ip=192.0.2.4&port=80");
	reg("serviceName=b&groupName=G&ip=192.0.2.5&port=80&healthy=false");
	/* empty: a service record and no instance */
	call("POST", NS "/service?serviceName=empty");
	expect(200);

	list = services("pageNo=1&pageSize=10");
	cr_assert_eq(count_of(), 3, "%s", A.body);
	cr_assert_eq(J.t[list].size, 3);
	r = row_of(list, "a");
	cr_assert_geq(r, 0, "%s", A.body);
	cr_assert_str_eq(nj_s(&J, r, "groupName"), "DEFAULT_GROUP");
	cr_assert_str_eq(nj_s(&J, r, "clusterCount"), "2");
	cr_assert_str_eq(nj_s(&J, r, "ipCount"), "3");
	cr_assert_str_eq(nj_s(&J, r, "healthyInstanceCount"), "2");
	cr_assert_eq(nj_type(&J, r, "triggerFlag"), JSMN_STRING,
	             "a string, as Nacos's ServiceView");
	cr_assert_str_eq(nj_s(&J, r, "triggerFlag"), "false");
	r = row_of(list, "b");
	cr_assert_str_eq(nj_s(&J, r, "groupName"), "G");
	cr_assert_str_eq(nj_s(&J, r, "ipCount"), "2");
	cr_assert_str_eq(nj_s(&J, r, "healthyInstanceCount"), "1");
	cr_assert_str_eq(nj_s(&J, r, "triggerFlag"), "true");
	r = row_of(list, "empty");
	cr_assert_str_eq(nj_s(&J, r, "ipCount"), "0");
	cr_assert_str_eq(nj_s(&J, r, "clusterCount"), "0");
	cr_assert_str_eq(nj_s(&J, r, "triggerFlag"), "false");

	/* hasIpCount=true hides the service without instances (Nacos's console default) */
	list = services("pageNo=1&pageSize=10&hasIpCount=true");
	cr_assert_eq(count_of(), 2, "%s", A.body);
	cr_assert_lt(row_of(list, "empty"), 0);

	/* a change shows at once */
	call("DELETE", NS "/instance?serviceName=a&ip=192.0.2.1&port=80&clusterName=c1");
	expect(200);
	list = services("pageSize=10");
	r = row_of(list, "a");
	cr_assert_str_eq(nj_s(&J, r, "ipCount"), "2");
	cr_assert_str_eq(nj_s(&J, r, "healthyInstanceCount"), "1");
}

Test(nacos_catalog, services_search_groups_namespaces_and_bounds)
{
	int list;

	reg("serviceName=orders-api&groupName=SHOP&ip=192.0.2.1&port=80");
	reg("serviceName=orders-db&groupName=SHOP&ip=192.0.2.1&port=81");
	reg("serviceName=payments&groupName=SHOP&ip=192.0.2.1&port=82");
	reg("serviceName=orders-api&groupName=OTHER&ip=192.0.2.1&port=83");
	reg("namespaceId=dev&serviceName=orders-api&ip=192.0.2.1&port=84");

	/* substrings, as Nacos's ".*param.*" */
	services("serviceNameParam=orders&pageSize=10");
	cr_assert_eq(count_of(), 3, "%s", A.body);
	services("serviceNameParam=orders&groupNameParam=SHOP&pageSize=10");
	cr_assert_eq(count_of(), 2, "%s", A.body);
	services("groupNameParam=OTH&pageSize=10");
	cr_assert_eq(count_of(), 1, "%s", A.body);
	services("serviceNameParam=nothing&pageSize=10");
	cr_assert_eq(count_of(), 0);
	/* the namespace scopes */
	list = services("namespaceId=dev&pageSize=10");
	cr_assert_eq(count_of(), 1, "%s", A.body);
	cr_assert_str_eq(nj_s(&J, nj_at(&J, list, 0), "groupName"), "DEFAULT_GROUP");
	services("namespaceId=none&pageSize=10");
	cr_assert_eq(count_of(), 0);
	/* past the end: the count, no rows; pageNo below 1 is the first page */
	list = services("pageNo=9&pageSize=2");
	cr_assert_eq(count_of(), 4);
	cr_assert_eq(J.t[list].size, 0);
	list = services("pageNo=0&pageSize=3");
	cr_assert_eq(J.t[list].size, 3);
	/* bounds and refusals */
	call("GET", NS "/catalog/services?pageSize=1001");
	expect(400);
	call("GET", NS "/catalog/services?pageNo=x");
	expect(400);
	call("GET", NS "/catalog/services?hasIpCount=maybe");
	expect(400);
	call("GET", NS "/catalog/services?withInstances=true");
	expect(400);
	call("POST", NS "/catalog/services");
	expect(405);
}

Test(nacos_catalog, names_are_json_escaped)
{
	static const char name[] = "<script>\"x\"\\</script>";
	int list;

	reg("serviceName=%3Cscript%3E%22x%22%5C%3C%2Fscript%3E&groupName=%3Cb%3E&ip=192.0.2.9&port="
	    "80");
	list = services("groupNameParam=%%3Cb%%3E&pageSize=10");
	cr_assert_eq(J.t[list].size, 1, "%s", A.body);
	cr_assert_str_eq(nj_s(&J, nj_at(&J, list, 0), "name"), name);
	cr_assert_str_eq(nj_s(&J, nj_at(&J, list, 0), "groupName"), "<b>");
	cr_assert_null(strchr(A.body, '<'), "< written raw: %s", A.body);
}

/* 100,000 services: every one on exactly one page, the last page within a bound. */
Test(nacos_catalog, paging_over_100000_services)
{
	enum { N = 100000, BATCH = 1000, PAGE = 1000 };
	struct distro_client *cl = node_client(&nd);
	static struct distro_instance in[BATCH];
	static char names[BATCH][16];
	static int res[BATCH];
	static unsigned char seen[N];
	int64_t t0, last_ms;
	int list;

	for (int b = 0; b < N / BATCH; b++) {
		for (int i = 0; i < BATCH; i++) {
			distro_instance_init(&in[i]);
			snprintf(names[i], sizeof(names[i]), "s%06d", b * BATCH + i);
			in[i].service = names[i];
			in[i].ip = "198.18.3.1";
			in[i].port = 1000;
			in[i].ephemeral = false; /* nothing beats: they must outlive the test */
		}
		cr_assert_eq(distro_register(cl, in, BATCH, res), 0);
		for (int i = 0; i < BATCH; i++)
			cr_assert_geq(res[i], 0, "item %d: %d", i, res[i]);
	}
	distro_close(cl);

	/* the last page of 20: one pass over the services, 20 rows of counts */
	t0 = now_ms();
	list = services("pageNo=%d&pageSize=20", N / 20);
	last_ms = now_ms() - t0;
	cr_assert_eq(count_of(), N, "%s", A.body);
	cr_assert_eq(J.t[list].size, 20);
	cr_assert_str_eq(nj_s(&J, nj_at(&J, list, 19), "ipCount"), "1");
	/* generous for ASan on a shared machine; a Release build answers in a few ms */
	cr_assert_lt(last_ms, 3000, "the last page took %lld ms", (long long)last_ms);
	cr_log_info("the last page of 100,000 services: %lld ms", (long long)last_ms);

	for (int p = 1; p <= N / PAGE; p++) {
		list = services("pageNo=%d&pageSize=%d", p, PAGE);
		cr_assert_eq(J.t[list].size, PAGE, "page %d", p);
		for (int i = 0; i < PAGE; i++) {
			const char *s = nj_s(&J, nj_at(&J, list, i), "name");
			long k = strtol(s + 1, NULL, 10);

			cr_assert(s[0] == 's' && k >= 0 && k < N, "name %s", s);
			cr_assert_eq(seen[k], 0, "%s on two pages", s);
			seen[k] = 1;
		}
	}
	for (int k = 0; k < N; k++)
		cr_assert_eq(seen[k], 1, "s%06d on no page", k);
}

/* ---- /catalog/instances ---- */

Test(nacos_catalog, instances_with_last_beat)
{
	int list, h;
	long long beat, now;

	reg("serviceName=svc&groupName=G&ip=192.0.2.1&port=80&clusterName=c1&weight=2"
	    "&metadata=%7B%22k%22%3A%22%3Cv%3E%22%7D");
	reg("serviceName=svc&groupName=G&ip=192.0.2.2&port=80&clusterName=c2&enabled=false");
	call("GET", NS "/catalog/instances?serviceName=svc&groupName=G&pageNo=1&pageSize=10");
	expect(200);
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "count"), "2");
	list = nj_get(&J, 0, "list");
	cr_assert_eq(J.t[list].size, 2, "disabled instances too: %s", A.body);
	h = nj_at(&J, list, 0);
	if (strcmp(nj_s(&J, h, "ip"), "192.0.2.1") != 0)
		h = nj_at(&J, list, 1);
	cr_assert_str_eq(nj_s(&J, h, "ip"), "192.0.2.1");
	cr_assert_str_eq(nj_s(&J, h, "port"), "80");
	cr_assert_str_eq(nj_s(&J, h, "clusterName"), "c1");
	cr_assert_str_eq(nj_s(&J, h, "weight"), "2.0");
	cr_assert_str_eq(nj_s(&J, h, "healthy"), "true");
	cr_assert_str_eq(nj_s(&J, h, "enabled"), "true");
	cr_assert_str_eq(nj_s(&J, h, "ephemeral"), "true");
	cr_assert_str_eq(nj_s(&J, nj_get(&J, h, "metadata"), "k"), "<v>");
	cr_assert_str_eq(nj_s(&J, h, "serviceName"), "G@@svc");
	beat = strtoll(nj_s(&J, h, "lastBeat"), NULL, 10);
	now = (long long)time(NULL) * 1000;
	cr_assert(beat > now - 60000 && beat < now + 60000, "lastBeat %lld, now %lld", beat, now);
	/* grouped name, cluster filter, paging */
	call("GET",
	     NS "/catalog/instances?serviceName=G%%40%%40svc&clusterName=c2&pageNo=1&pageSize=10");
	expect(200);
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "count"), "1");
	cr_assert_str_eq(nj_s(&J, nj_at(&J, nj_get(&J, 0, "list"), 0), "enabled"), "false");
	call("GET", NS "/catalog/instances?serviceName=svc&groupName=G&pageNo=2&pageSize=1");
	expect(200);
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "count"), "2");
	cr_assert_eq(J.t[nj_get(&J, 0, "list")].size, 1);
	call("GET", NS "/catalog/instances?serviceName=svc&groupName=G&pageNo=3&pageSize=1");
	nj_parse(&J, A.body, A.len);
	cr_assert_eq(J.t[nj_get(&J, 0, "list")].size, 0);
	/* unknown service, missing name */
	call("GET", NS "/catalog/instances?serviceName=nope");
	expect(404);
	call("GET", NS "/catalog/instances");
	expect(400);
}

/* ---- the console's files ---- */

static const char *header(const char *name)
{
	static char out[1024];
	char key[128];
	const char *p;
	size_t n;

	snprintf(key, sizeof(key), "\r\n%s: ", name);
	p = strcasestr(A.head, key);
	if (p == NULL)
		return NULL;
	p += strlen(key);
	n = strcspn(p, "\r");
	cr_assert_lt(n, sizeof(out));
	memcpy(out, p, n);
	out[n] = '\0';
	return out;
}

static void expect_security_headers(void)
{
	cr_assert_not_null(header("Content-Security-Policy"), "%s", A.head);
	cr_assert(strncmp(header("Content-Security-Policy"), "default-src 'self'", 18) == 0, "%s",
	          A.head);
	cr_assert_not_null(strstr(header("Content-Security-Policy"), "frame-ancestors 'none'"));
	cr_assert_str_eq(header("X-Content-Type-Options"), "nosniff");
	cr_assert_str_eq(header("X-Frame-Options"), "DENY");
}

Test(nacos_catalog, console_files_types_validators_and_headers)
{
	static const char *const paths[][2] = {
		{ "/", "text/html; charset=utf-8" },
		{ "/nacos/", "text/html; charset=utf-8" },
		{ "/nacos/console/console.css", "text/css; charset=utf-8" },
		{ "/nacos/console/console.js", "text/javascript; charset=utf-8" },
	};
	static char html[1 << 16];
	char tag[64], req[512];
	size_t len;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		call("GET", "%s", paths[i][0]);
		expect(200);
		cr_assert_str_eq(header("Content-Type"), paths[i][1]);
		cr_assert_str_eq(header("Cache-Control"), "no-cache");
		expect_security_headers();
		cr_assert_gt(A.len, 100);
		cr_assert_not_null(header("ETag"));
		snprintf(tag, sizeof(tag), "%s", header("ETag"));
		cr_assert(tag[0] == '"' && tag[strlen(tag) - 1] == '"', "a strong tag: %s", tag);
		len = A.len;
		if (i == 0) {
			cr_assert_lt(A.len, sizeof(html));
			memcpy(html, A.body, A.len + 1);
			cr_assert(strncmp(html, "<!doctype html>", 15) == 0);
			/* no inline script or style: the CSP would refuse them */
			cr_assert_null(strstr(html, "<script>"));
			cr_assert_null(strstr(html, "<style"));
			cr_assert_null(strstr(html, "style="));
		}
		if (i == 1)
			cr_assert_str_eq(A.body, html, "/ and /nacos/ are the same page");
		/* If-None-Match: 304, no body, the same validators */
		snprintf(req, sizeof(req), "If-None-Match: W/\"0\", %s\r\n", tag);
		call_head_only("GET", paths[i][0], req);
		expect(304);
		cr_assert_eq((size_t)strtoul(header("Content-Length"), NULL, 10), len);
		cr_assert_str_eq(header("ETag"), tag);
		expect_security_headers();
		/* HEAD: the head alone */
		call_head_only("HEAD", paths[i][0], NULL);
		expect(200);
		cr_assert_eq((size_t)strtoul(header("Content-Length"), NULL, 10), len);
	}
	/* a stale tag: the file again */
	{
		char raw[1024];
		size_t n = nacos_fmt(raw, sizeof(raw), "GET", "/nacos/console/console.js",
		                     "If-None-Match: \"0000000000000000\"\r\n", NULL, NULL);

		http_send(C, raw, n);
		nacos_read(C, &A);
		expect(200);
		cr_assert_gt(A.len, 100);
	}
	call("GET", "/nacos");
	expect(301);
	cr_assert_str_eq(header("Location"), "/nacos/");
	call("POST", "/nacos/");
	expect(405);
	cr_assert_str_eq(header("Allow"), "GET, HEAD");
	call("GET", "/nacos/console/other.js");
	expect(501); /* not a file of ours: the API's "no such api" */
	call("GET", "/index.html");
	expect(404);
}

/* With --auth-users: the files are open, the catalog is not until a login. */
static char users[192];

static void start_auth(void)
{
	const char *extra[] = { "--workers", "1", "--auth-users", users, NULL };
	char cmd[512], hash[128];
	FILE *p, *f;

	snprintf(users, sizeof(users), "/tmp/distrod-catalog-users-%d", getpid());
	snprintf(cmd, sizeof(cmd), "printf 'pw\\npw\\n' | %s hash-password --cost 4",
	         DISTROCTL_BIN);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	cr_assert_not_null(fgets(hash, sizeof(hash), p));
	cr_assert_eq(pclose(p), 0, "distroctl hash-password");
	hash[strcspn(hash, "\n")] = '\0';
	f = fopen(users, "w");
	cr_assert_not_null(f);
	fprintf(f, "u:%s\n", hash);
	fclose(f);
	start_with(extra);
}

static void stop_auth(void)
{
	stop();
	unlink(users);
}

TestSuite(nacos_catalog_auth, .init = start_auth, .fini = stop_auth, .timeout = 120);

Test(nacos_catalog_auth, console_files_open_and_catalog_gated)
{
	char tok[512];

	call("GET", "/nacos/");
	expect(200);
	expect_security_headers();
	call("GET", "/");
	expect(200);
	call("GET", "/nacos/console/console.js");
	expect(200);
	call("GET", "/nacos");
	expect(301);
	call("GET", NS "/catalog/services?pageNo=1&pageSize=10");
	expect(403);
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "message"), "user not found!");
	call("GET", NS "/catalog/instances?serviceName=a");
	expect(403);
	call("GET", NS "/catalog/services?accessToken=bogus");
	expect(403);
	/* the login the page makes, then the page's call with its token */
	nacos_do(C, &A, "POST", "/nacos/v1/auth/login", "application/x-www-form-urlencoded",
	         "username=u&password=pw");
	expect(200);
	nj_parse(&J, A.body, A.len);
	snprintf(tok, sizeof(tok), "%s", nj_s(&J, 0, "accessToken"));
	call("GET", NS "/catalog/services?pageNo=1&pageSize=10&accessToken=%s", nacos_enc(tok));
	expect(200);
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "count"), "0");
}
