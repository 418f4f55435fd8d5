/*
 * nacos_node.h - the tests' side of the Nacos v1 HTTP API: a real distrod
 * (node.h starts every node with --nacos-port 0 and learns the port from
 * --nacos-port-file), requests written raw over one keep-alive connection
 * (http_node.h's client), answers parsed with a JSON parser that is not the
 * server's (jsmn from Debian's libjsmn-dev, strict mode), so an escaping
 * mistake of the server cannot cancel out in the test.
 *
 * Everything here asserts: a test reads as a list of requests and checks.
 */
#ifndef DISTRO_TESTS_NACOS_NODE_H
#define DISTRO_TESTS_NACOS_NODE_H

#include "http_node.h"

#include <netinet/tcp.h>
#include <stdarg.h>

#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

/* ---- one answer ---- */

struct nacos_ans {
	int status; /* 0: no answer (closed or timed out) */
	char head[4096];
	char body[1 << 20]; /* NUL-terminated copy */
	size_t len;
};

/* Reads the next answer on c into a (copying the body out of the connection's buffer). */
static inline int nacos_read(struct http_conn *c, struct nacos_ans *a)
{
	struct http_resp r;

	http_read(c, &r, false);
	a->status = r.status;
	memcpy(a->head, r.head, sizeof(a->head));
	cr_assert_lt(r.body_len, sizeof(a->body), "answer larger than the test's buffer");
	memcpy(a->body, r.body ? r.body : "", r.body_len);
	a->body[r.body_len] = '\0';
	a->len = r.body_len;
	return a->status;
}

/*
 * Formats one request: method target, Host, Content-Length (when body is
 * not NULL) and Content-Type (when ctype is not NULL), plus the extra
 * header lines in hdrs (each ending "\r\n"; may be NULL). Returns its length.
 */
static inline size_t nacos_fmt(char *out, size_t cap, const char *method, const char *target,
                               const char *hdrs, const char *ctype, const char *body)
{
	int n = snprintf(out, cap,
	                 "%s %s HTTP/1.1\r\nHost: t\r\nUser-Agent: Nacos-Java-Client:v1.0.0\r\n",
	                 method, target);

	if (hdrs)
		n += snprintf(out + n, cap - (size_t)n, "%s", hdrs);
	if (ctype)
		n += snprintf(out + n, cap - (size_t)n, "Content-Type: %s\r\n", ctype);
	if (body)
		n += snprintf(out + n, cap - (size_t)n, "Content-Length: %zu\r\n", strlen(body));
	n += snprintf(out + n, cap - (size_t)n, "\r\n%s", body ? body : "");
	cr_assert_lt((size_t)n, cap, "request larger than the test's buffer");
	return (size_t)n;
}

/* One request and its answer on c. */
static inline int nacos_do(struct http_conn *c, struct nacos_ans *a, const char *method,
                           const char *target, const char *ctype, const char *body)
{
	static char req[1 << 18];
	size_t n = nacos_fmt(req, sizeof(req), method, target, NULL, ctype, body);

	http_send(c, req, n);
	return nacos_read(c, a);
}

/* ---- URL encoding ---- */

/* s percent-encoded for a query or form value (rotating static buffers: 8 alive at once). */
static inline const char *nacos_enc(const char *s)
{
	static char bufs[8][16384];
	static int next;
	char *out = bufs[next++ & 7], *p = out;

	for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
		cr_assert_lt((size_t)(p - out), sizeof(bufs[0]) - 4);
		if ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
		    (*q >= '0' && *q <= '9') || *q == '-' || *q == '_' || *q == '.' || *q == '~')
			*p++ = (char)*q;
		else
			p += sprintf(p, "%%%02X", *q);
	}
	*p = '\0';
	return out;
}

/* ---- JSON, read with jsmn ---- */

#define NJ_TOKENS (1 << 17)

struct njson {
	const char *s;
	int n;
	jsmntok_t t[NJ_TOKENS];
};

/*
 * Parses s[0, len) strictly: jsmn in strict mode, one value covering the
 * text, and no raw control byte anywhere (the server writes compact JSON,
 * so one would be an unescaped character inside a string).
 */
static inline void nj_parse(struct njson *d, const char *s, size_t len)
{
	jsmn_parser p;

	for (size_t i = 0; i < len; i++)
		cr_assert_geq((unsigned char)s[i], 0x20, "raw control byte 0x%02x at %zu in %.*s",
		              (unsigned char)s[i], i, (int)len, s);
	jsmn_init(&p);
	d->s = s;
	d->n = jsmn_parse(&p, s, len, d->t, NJ_TOKENS);
	cr_assert_gt(d->n, 0, "not JSON (%d): %.*s", d->n, (int)len, s);
	cr_assert(d->t[0].start == 0 && (size_t)d->t[0].end == len,
	          "trailing bytes after the JSON value: %.*s", (int)len, s);
}

/* The index after token i and its descendants. */
static inline int nj_skip(const struct njson *d, int i)
{
	int j = i + 1;

	for (int k = 0; k < d->t[i].size; k++)
		j = nj_skip(d, j);
	return j;
}

/* Decodes the string token i (escapes, \u and surrogate pairs to UTF-8) into out. */
static inline size_t nj_str_at(const struct njson *d, int i, char *out, size_t cap)
{
	const char *p = d->s + d->t[i].start, *e = d->s + d->t[i].end;
	size_t n = 0;

	cr_assert(d->t[i].type == JSMN_STRING || d->t[i].type == JSMN_PRIMITIVE);
	while (p < e) {
		unsigned long cp;
		unsigned char ch = (unsigned char)*p++;

		cr_assert_lt(n + 4, cap);
		if (ch != '\\' || d->t[i].type == JSMN_PRIMITIVE) {
			out[n++] = (char)ch;
			continue;
		}
		ch = (unsigned char)*p++;
		switch (ch) {
		case 'b':
			out[n++] = '\b';
			continue;
		case 'f':
			out[n++] = '\f';
			continue;
		case 'n':
			out[n++] = '\n';
			continue;
		case 'r':
			out[n++] = '\r';
			continue;
		case 't':
			out[n++] = '\t';
			continue;
		case 'u':
			break;
		default:
			out[n++] = (char)ch;
			continue; /* " \ / */
		}
		cp = strtoul((char[]){ p[0], p[1], p[2], p[3], 0 }, NULL, 16);
		p += 4;
		if (cp >= 0xd800 && cp < 0xdc00) {
			unsigned long lo;

			cr_assert(p + 6 <= e && p[0] == '\\' && p[1] == 'u', "lone high surrogate");
			lo = strtoul((char[]){ p[2], p[3], p[4], p[5], 0 }, NULL, 16);
			cr_assert(lo >= 0xdc00 && lo < 0xe000, "bad low surrogate");
			p += 6;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		}
		if (cp < 0x80) {
			out[n++] = (char)cp;
		} else if (cp < 0x800) {
			out[n++] = (char)(0xc0 | cp >> 6);
			out[n++] = (char)(0x80 | (cp & 0x3f));
		} else if (cp < 0x10000) {
			out[n++] = (char)(0xe0 | cp >> 12);
			out[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			out[n++] = (char)(0x80 | (cp & 0x3f));
		} else {
			out[n++] = (char)(0xf0 | cp >> 18);
			out[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
			out[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			out[n++] = (char)(0x80 | (cp & 0x3f));
		}
	}
	out[n] = '\0';
	return n;
}

/* The value token of key in object token obj, or -1. */
static inline int nj_get(const struct njson *d, int obj, const char *key)
{
	char tmp[1024];
	int j = obj + 1;

	cr_assert_eq(d->t[obj].type, JSMN_OBJECT, "not an object");
	for (int k = 0; k < d->t[obj].size; k++) {
		nj_str_at(d, j, tmp, sizeof(tmp));
		if (strcmp(tmp, key) == 0)
			return j + 1;
		j = nj_skip(d, j);
	}
	return -1;
}

/* Element idx of array token arr. */
static inline int nj_at(const struct njson *d, int arr, int idx)
{
	int j = arr + 1;

	cr_assert_eq(d->t[arr].type, JSMN_ARRAY, "not an array");
	cr_assert_lt(idx, d->t[arr].size);
	for (int k = 0; k < idx; k++)
		j = nj_skip(d, j);
	return j;
}

/* The text of key (decoded when a string; raw when a primitive) in a static buffer; asserts. */
static inline const char *nj_s(const struct njson *d, int obj, const char *key)
{
	static char bufs[4][8192];
	static int next;
	char *out = bufs[next++ & 3];
	int v = nj_get(d, obj, key);

	cr_assert_geq(v, 0, "no \"%s\" in %.*s", key, d->t[obj].end - d->t[obj].start,
	              d->s + d->t[obj].start);
	nj_str_at(d, v, out, sizeof(bufs[0]));
	return out;
}

/* The type of key's value; asserts that it is there. */
static inline jsmntype_t nj_type(const struct njson *d, int obj, const char *key)
{
	int v = nj_get(d, obj, key);

	cr_assert_geq(v, 0, "no \"%s\"", key);
	return d->t[v].type;
}

#ifdef DISTROCTL_BIN
/*
 * A line of an --auth-users file: user, bcrypt hash of pass (through
 * distroctl hash-password, at cost), ":admin" when admin. Needs
 * DISTROCTL_BIN (the integration tests' CMake defines it).
 */
static inline void nacos_user_line(FILE *out, const char *user, const char *pass, int cost,
                                   bool admin)
{
	char cmd[512], hash[128];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "printf '%%s\\n%%s\\n' '%s' '%s' | %s hash-password --cost %d",
	         pass, pass, DISTROCTL_BIN, cost);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	cr_assert_not_null(fgets(hash, sizeof(hash), p));
	cr_assert_eq(pclose(p), 0, "distroctl hash-password");
	hash[strcspn(hash, "\n")] = '\0';
	cr_assert_eq(strlen(hash), 60, "a bcrypt hash: %s", hash);
	fprintf(out, "%s:%s%s\n", user, hash, admin ? ":admin" : "");
}
#endif

#endif
