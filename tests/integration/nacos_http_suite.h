/*
 * nacos_http_suite.h - what the Nacos v1 HTTP integration tests share: a
 * distrod per test (two workers) with one keep-alive connection to its
 * Nacos port, the last answer (A) and the last list parsed with jsmn (J,
 * not the server's own JSON code), and helpers that register, list and
 * read hosts and metadata. Included by one test program each
 * (test_nacos_http.c, test_nacos_service.c, test_nacos_http_conn.c): the
 * statics are that program's.
 *
 * Instances use documentation addresses only (192.0.2.0/24,
 * 198.18.0.0/15): distrod never connects to them. Each test runs its own
 * distrod, so the tests are independent; a test ends by checking that the
 * node stops cleanly (an ASan report would make it exit non-zero).
 */
#ifndef DISTRO_TEST_NACOS_HTTP_SUITE_H
#define DISTRO_TEST_NACOS_HTTP_SUITE_H

#include "core/err.h"
#include "nacos_node.h"

#define NS "/nacos/v1/ns"

static struct node nd;
static struct http_conn *C; /* the test's keep-alive connection */
static struct nacos_ans A;  /* the last answer */
static struct njson J;      /* the last list, parsed */

static inline void start(void)
{
	static const char *const extra[] = { "--workers", "2", NULL };

	node_start(&nd, extra);
	cr_assert_gt(nd.nacos_port, 0, "no --nacos-port-file");
	C = http_open(nd.nacos_port);
}

static inline void stop(void)
{
	if (C)
		http_close(C);
	cr_assert_eq(node_stop(&nd), 0, "distrod exits 0 on SIGTERM");
}

static char target_buf[1 << 17];

static inline const char *vtarget(const char *fmt, va_list ap)
{
	int n = vsnprintf(target_buf, sizeof(target_buf), fmt, ap);

	cr_assert_lt((size_t)n, sizeof(target_buf));
	return target_buf;
}

/* method target (printf-style) on the test's connection, no body. The status. */
static inline int call(const char *method, const char *fmt, ...)
{
	va_list ap;
	const char *t;

	va_start(ap, fmt);
	t = vtarget(fmt, ap);
	va_end(ap);
	return nacos_do(C, &A, method, t, NULL, NULL);
}

/* method target with a form body (application/x-www-form-urlencoded). */
static inline int call_form(const char *method, const char *target, const char *body)
{
	return nacos_do(C, &A, method, target, "application/x-www-form-urlencoded", body);
}

static inline void expect(int status, const char *body)
{
	cr_assert_eq(A.status, status, "status %d, want %d; body: %s", A.status, status, A.body);
	if (body)
		cr_assert_str_eq(A.body, body);
}

static inline void expect_prefix(int status, const char *prefix)
{
	cr_assert_eq(A.status, status, "status %d, want %d; body: %s", A.status, status, A.body);
	cr_assert(strncmp(A.body, prefix, strlen(prefix)) == 0, "body \"%s\" does not start \"%s\"",
	          A.body, prefix);
}

/* method NS path?query (the query printf-style, from ap) on the test's connection. */
static inline void vquery(const char *method, const char *path, const char *fmt, va_list ap)
{
	char t[sizeof(target_buf) + 64];

	snprintf(t, sizeof(t), NS "%s?%s", path, vtarget(fmt, ap));
	nacos_do(C, &A, method, t, NULL, NULL);
}

/* POST /instance with the query (printf-style) and answer ok. */
static inline void reg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vquery("POST", "/instance", fmt, ap);
	va_end(ap);
	expect(200, "ok");
}

/* GET /instance/list with the query: parsed into J; the number of hosts. */
static inline int list(const char *fmt, ...)
{
	va_list ap;
	int hosts;

	va_start(ap, fmt);
	vquery("GET", "/instance/list", fmt, ap);
	va_end(ap);
	expect(200, NULL);
	cr_assert_not_null(strstr(A.head, "\r\nContent-Type: application/json"), "%s", A.head);
	nj_parse(&J, A.body, A.len);
	hosts = nj_get(&J, 0, "hosts");
	cr_assert_geq(hosts, 0, "no hosts: %s", A.body);
	cr_assert_eq(J.t[hosts].type, JSMN_ARRAY);
	return J.t[hosts].size;
}

/* Host i of the last list (a token index of J). */
static inline int host(int i)
{
	return nj_at(&J, nj_get(&J, 0, "hosts"), i);
}

/* The host of the last list with this ip and port, or -1. */
static inline int host_of(const char *ip, const char *port)
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
static inline const char *meta(int h, const char *key)
{
	int m = nj_get(&J, h, "metadata");

	cr_assert_geq(m, 0);
	return nj_s(&J, m, key);
}

static inline int meta_n(int h)
{
	int m = nj_get(&J, h, "metadata");

	cr_assert_geq(m, 0);
	cr_assert_eq(J.t[m].type, JSMN_OBJECT);
	return J.t[m].size;
}

/* Reads until "\r\n\r\n" on c, raw (for answers without Content-Length, e.g. 100). */
static inline void read_head_raw(struct http_conn *c, char *out, size_t cap)
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
static inline void expect_closed_after(struct http_conn *c, int status)
{
	struct nacos_ans *a = &A;

	nacos_read(c, a);
	cr_assert_eq(a->status, status, "status %d, want %d: %s", a->status, status, a->body);
	cr_assert_not_null(strcasestr(a->head, "\r\nConnection: close\r\n"), "%s", a->head);
	cr_assert(http_eof(c), "the connection stays open after %d", status);
}

#endif
