/*
 * http1.h - HTTP/1.1 request framing for the workers' Nacos connections:
 * the glue between Debian's http-parser (a resumable callback parser) and
 * a worker that keeps a request's bytes in one contiguous buffer.
 *
 * The contract that makes it cheap: the caller keeps every byte of the
 * current request contiguous, from its first byte (a receive buffer, or
 * the connection's carry-over buffer once a request spans receives), and
 * feeds only the bytes not fed yet. So the parser records where things
 * are as offsets from the request's first byte (struct h1_span) and never
 * copies the target, a header or the body: once h1_feed says DONE, they
 * are read in place. Pipelined bytes after the request are not consumed:
 * they start the next request.
 *
 * What is kept of the head: method, target, body, keep-alive, and the
 * headers the Nacos API reads (Content-Type, User-Agent, Client-Version,
 * Authorization, Expect). Bodies need a Content-Length (chunked bodies are
 * refused 411: Nacos clients never send them).
 *
 * Bounds, each refused with its status and the connection closed after
 * the answer: head (request line and headers) over H1_HEAD_MAX 431,
 * target over H1_URL_MAX 414, body over H1_BODY_MAX 413, malformed 400,
 * not HTTP/1.x 505. No allocation, no I/O; O(bytes fed).
 */
#ifndef DISTRO_NACOS_HTTP1_H
#define DISTRO_NACOS_HTTP1_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define H1_HEAD_MAX 32768u /* request line and headers: beat JSON and metadata fit */
#define H1_URL_MAX  16384u
#define H1_BODY_MAX 65536u
#define H1_REQ_MAX  (H1_HEAD_MAX + H1_BODY_MAX) /* what a caller may have to keep */

enum h1_method {
	H1_OTHER = 0,
	H1_GET,
	H1_HEAD,
	H1_POST,
	H1_PUT,
	H1_DELETE,
	H1_PATCH,
};

/* Bytes [off, off + len) of the request, counted from its first byte. */
struct h1_span {
	uint32_t off, len;
	bool set;
};

enum h1_header {
	H1_H_NONE = 0,
	H1_H_CONTENT_TYPE,
	H1_H_USER_AGENT,
	H1_H_CLIENT_VERSION,
	H1_H_AUTHORIZATION,
	H1_H_EXPECT,
	H1_H_IF_NONE_MATCH, /* the console's conditional GETs (nacos_console.c) */
	H1_H_COUNT,
};

struct h1_req {
	http_parser parser;
	const char *base; /* the request's first byte, during h1_feed only */
	uint32_t fed;     /* bytes of this request fed so far */
	uint32_t head_bytes;
	bool head_done; /* headers complete: the body (if any) follows */
	bool done;
	bool field_long;   /* the current header name is longer than any we keep */
	bool in_value;     /* the last callback was a header value */
	uint8_t field_len; /* bytes of field[] */
	uint8_t cur;       /* enum h1_header the current value belongs to */
	char field[24];    /* the current header name, lower case */
	/* Valid once h1_feed returned H1_DONE: */
	uint16_t status; /* 0: a request to answer; else the refusal to send */
	bool keep_alive;
	uint8_t method; /* enum h1_method */
	struct h1_span url, body;
	struct h1_span headers[H1_H_COUNT];
};

enum {
	H1_AGAIN = 0, /* not complete: keep the bytes, feed the next ones */
	H1_DONE = 1,  /* complete (or refused: status) */
};

/* Readies r for a new request (also between requests on one connection). */
void h1_init(struct h1_req *r);

/*
 * Feeds the n bytes at p, which continue the request: p - r->fed is its
 * first byte and the caller keeps those bytes where they are. Returns
 * H1_DONE (the request is r->fed bytes long; the rest of p belongs to the
 * next one) or H1_AGAIN (all n bytes taken).
 */
int h1_feed(struct h1_req *r, const char *p, size_t n);

/* A span's bytes, given the request's first byte. */
static inline const char *h1_at(const char *req, struct h1_span s)
{
	return req + s.off;
}

/* The reason phrase of a status this layer sends. */
const char *h1_reason(uint16_t status);

#endif
