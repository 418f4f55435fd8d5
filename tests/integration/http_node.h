/*
 * http_node.h - a real distrod with its HTTP admin port on an ephemeral
 * loopback port (learned through --http-port-file), and a small blocking
 * HTTP/1.1 client for the tests: one connection, requests written raw,
 * answers read by Content-Length, bounded waits.
 */
#ifndef DISTRO_TESTS_HTTP_NODE_H
#define DISTRO_TESTS_HTTP_NODE_H

#include "node.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/time.h>

struct http_node {
	struct node node;
	uint16_t http_port;
	char http_port_file[128];
};

/* Starts distrod with its admin port on 127.0.0.1:0 plus the extra flags (NULL-terminated). */
static inline void http_node_start(struct http_node *h, const char *const *extra)
{
	const char *argv[48];
	int argc = 0;

	snprintf(h->http_port_file, sizeof(h->http_port_file), "/tmp/distrod-test-%d-%ld.http",
	         getpid(), (long)now_ms());
	unlink(h->http_port_file);
	argv[argc++] = "--http-bind";
	argv[argc++] = "127.0.0.1";
	argv[argc++] = "--http-port";
	argv[argc++] = "0";
	argv[argc++] = "--http-port-file";
	argv[argc++] = h->http_port_file;
	for (int i = 0; extra && extra[i] && argc < 46; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;
	node_start(&h->node, argv);
	h->http_port = 0;
	for (int64_t end = now_ms() + 10000; now_ms() < end; nap_ms(10)) {
		FILE *f = fopen(h->http_port_file, "r");
		int port = 0;

		if (f) {
			if (fscanf(f, "%d", &port) != 1)
				port = 0;
			fclose(f);
		}
		if (port > 0) {
			h->http_port = (uint16_t)port;
			return;
		}
	}
	cr_assert_fail("no --http-port-file within 10 s");
}

static inline int http_node_stop(struct http_node *h)
{
	unlink(h->http_port_file);
	return node_stop(&h->node);
}

/* One client connection and what it has read but not consumed. */
struct http_conn {
	int fd;
	size_t len;
	size_t consumed; /* bytes of the last answer read, dropped at the next read */
	char buf[1 << 20];
};

struct http_resp {
	int status; /* 0: the connection closed (or timed out) before an answer */
	char head[4096];
	const char *body; /* inside the conn's buffer, valid until the next read */
	size_t body_len;
};

/* A connection to 127.0.0.1:port from the source address src (NULL: any; 127.x.y.z). */
static inline struct http_conn *http_open_from(uint16_t port, const char *src)
{
	struct http_conn *c = calloc(1, sizeof(*c));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 5 };

	cr_assert_not_null(c);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(c->fd, 0);
	if (src) {
		struct sockaddr_in s = { .sin_family = AF_INET };

		cr_assert_eq(inet_pton(AF_INET, src, &s.sin_addr), 1);
		cr_assert_eq(bind(c->fd, (struct sockaddr *)&s, sizeof(s)), 0, "bind %s: %s", src,
		             strerror(errno));
	}
	cr_assert_eq(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect :%u: %s", port,
	             strerror(errno));
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return c;
}

static inline struct http_conn *http_open(uint16_t port)
{
	return http_open_from(port, NULL);
}

static inline void http_close(struct http_conn *c)
{
	close(c->fd);
	free(c);
}

static inline void http_send(struct http_conn *c, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);

		cr_assert_gt(w, 0, "send: %s", strerror(errno));
		s += w;
		n -= (size_t)w;
	}
}

/* Reads more into the buffer: false on EOF, error or the 5 s timeout. */
static inline bool http_fill(struct http_conn *c)
{
	ssize_t n;

	cr_assert_lt(c->len, sizeof(c->buf), "answer larger than the test buffer");
	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (n <= 0)
		return false;
	c->len += (size_t)n;
	return true;
}

/* True when the server closed the connection (EOF) within the timeout. */
static inline bool http_eof(struct http_conn *c)
{
	char b;

	return c->len == c->consumed && recv(c->fd, &b, 1, 0) == 0;
}

/*
 * Reads one answer (a HEAD answer has no body whatever its Content-Length).
 * The previous answer's bytes are dropped first.
 */
static inline void http_read(struct http_conn *c, struct http_resp *r, bool head_only)
{
	char *end, *cl;
	size_t hlen, blen = 0;

	memmove(c->buf, c->buf + c->consumed, c->len - c->consumed);
	c->len -= c->consumed;
	c->consumed = 0;
	memset(r, 0, sizeof(*r));
	while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL)
		if (!http_fill(c))
			return;
	hlen = (size_t)(end - c->buf) + 4;
	cr_assert_lt(hlen, sizeof(r->head));
	memcpy(r->head, c->buf, hlen);
	cr_assert_eq(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1, "%s", r->head);
	cl = strcasestr(r->head, "\r\nContent-Length: ");
	cr_assert_not_null(cl, "every answer has a Content-Length: %s", r->head);
	if (!head_only)
		blen = strtoul(cl + 18, NULL, 10);
	while (c->len < hlen + blen)
		cr_assert(http_fill(c), "body shorter than Content-Length");
	r->body = c->buf + hlen;
	r->body_len = blen;
	c->consumed = hlen + blen;
}

/* A header's value in an answer, or NULL. */
static inline const char *http_header(const struct http_resp *r, const char *name, char *out,
                                      size_t cap)
{
	char key[64];
	const char *p, *e;

	snprintf(key, sizeof(key), "\r\n%s: ", name);
	p = strcasestr(r->head, key);
	if (p == NULL)
		return NULL;
	p += strlen(key);
	e = strstr(p, "\r\n");
	snprintf(out, cap, "%.*s", (int)(e - p), p);
	return out;
}

/* GET path on a fresh connection; the body NUL-terminated in a malloc'd copy. */
static inline int http_get(uint16_t port, const char *path, char **body, char *ctype, size_t cap)
{
	struct http_conn *c = http_open(port);
	struct http_resp r;
	char req[256];
	int n = snprintf(req, sizeof(req),
	                 "GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", path);

	http_send(c, req, (size_t)n);
	http_read(c, &r, false);
	cr_assert_gt(r.status, 0, "no answer to GET %s", path);
	if (ctype)
		cr_assert_not_null(http_header(&r, "Content-Type", ctype, cap));
	*body = malloc(r.body_len + 1);
	memcpy(*body, r.body, r.body_len);
	(*body)[r.body_len] = 0;
	http_close(c);
	return r.status;
}

#endif
