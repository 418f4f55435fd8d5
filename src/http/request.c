/*
 * request.c - the admin port's request heads, parsed by http-parser.
 *
 * Why a library: http-parser (Debian's libhttp-parser, the parser node.js
 * used until v12) is a small, heavily fuzzed, resumable state machine with
 * callbacks and no allocation: exactly the shape STYLE.md asks of a parser
 * of outside bytes. docs/http.md says more.
 *
 * The glue. One http_parser per connection, re-initialised for every
 * request (nothing carries over between requests, so a refused request can
 * leave no state behind). Callbacks: on_url copies the target (it may come
 * in pieces) into a bounded buffer; on_headers_complete decides everything
 * (method, body, target, keep-alive) and on_message_complete pauses the
 * parser, so http_parser_execute returns exactly at the end of the request
 * and pipelined bytes stay unread. A request announcing a body pauses at
 * its headers instead: the admin port reads no bodies, so the answer (413)
 * closes the connection and the body is never looked at.
 *
 * Bounds: the parser is never given more than REQUEST_HEAD_MAX bytes of one
 * request (it has its own 80 KiB limit, which we never reach), and the
 * target is kept only up to REQUEST_URL_MAX bytes. No allocation, no I/O.
 */
#include "http/request.h"

#include <string.h>

static struct request *req_of(http_parser *p)
{
	return p->data;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct request *r = req_of(p);

	if (r->url_overflow || n > sizeof(r->url) - r->url_len) {
		r->url_overflow = true;
		return 0; /* keep parsing: the answer is 414, after the whole head */
	}
	memcpy(r->url + r->url_len, at, n);
	r->url_len += (uint32_t)n;
	return 0;
}

static enum request_route route_of(const struct request *r)
{
	struct http_parser_url u;
	const char *path;
	size_t len;

	http_parser_url_init(&u);
	if (http_parser_parse_url(r->url, r->url_len, 0, &u) != 0 ||
	    !(u.field_set & (1u << UF_PATH)))
		return REQUEST_ROUTE_NONE;
	/* Origin form "/metrics?x" or absolute form "http://h/metrics": the path only. */
	path = r->url + u.field_data[UF_PATH].off;
	len = u.field_data[UF_PATH].len;
	if (len == 8 && memcmp(path, "/metrics", 8) == 0)
		return REQUEST_ROUTE_METRICS;
	if (len == 7 && memcmp(path, "/health", 7) == 0)
		return REQUEST_ROUTE_HEALTH;
	if (len == 8 && memcmp(path, "/cluster", 8) == 0)
		return REQUEST_ROUTE_CLUSTER;
	return REQUEST_ROUTE_NONE;
}

static int on_headers_complete(http_parser *p)
{
	struct request *r = req_of(p);
	bool body = (p->flags & F_CHUNKED) || p->uses_transfer_encoding ||
	            ((p->flags & F_CONTENTLENGTH) && p->content_length > 0);

	r->head_only = p->method == HTTP_HEAD;
	r->keep_alive = http_should_keep_alive(p) && !p->upgrade;
	if (p->http_major != 1)
		r->status = 400; /* HTTP/1.x only (the parser takes any digit) */
	else if (p->method != HTTP_GET && p->method != HTTP_HEAD)
		r->status = 405;
	else if (body)
		r->status = 413;
	else if (r->url_overflow)
		r->status = 414;
	else
		r->route = route_of(r);
	if (body || r->url_overflow || r->status == 400)
		r->keep_alive = false;
	if (body) {
		/* Stop before the body: it is never read, the connection closes. */
		r->done = true;
		http_parser_pause(p, 1);
	}
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct request *r = req_of(p);

	r->done = true;
	http_parser_pause(p, 1); /* leave pipelined bytes for the next request */
	return 0;
}

static const http_parser_settings settings = {
	.on_url = on_url,
	.on_headers_complete = on_headers_complete,
	.on_message_complete = on_message_complete,
};

void request_init(struct request *r)
{
	memset(r, 0, offsetof(struct request, url)); /* the url bytes need no clearing */
	http_parser_init(&r->parser, HTTP_REQUEST);
	r->parser.data = r;
}

static int refuse(struct request *r, uint16_t status)
{
	r->status = status;
	r->keep_alive = false;
	r->done = true;
	return REQUEST_DONE;
}

int request_feed(struct request *r, const char *p, size_t n, size_t *used)
{
	size_t room = REQUEST_HEAD_MAX - r->head_bytes, take, got;

	*used = 0;
	if (r->done)
		return REQUEST_DONE;
	if (n == 0)
		return REQUEST_AGAIN; /* a zero length would tell the parser "EOF" */
	take = n < room ? n : room;
	got = http_parser_execute(&r->parser, &settings, p, take);
	r->head_bytes += (uint32_t)got;
	*used = got;
	if (r->done)
		return REQUEST_DONE;
	if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK || got != take)
		return refuse(r, 400);
	if (r->head_bytes >= REQUEST_HEAD_MAX)
		return refuse(r, 431);
	return REQUEST_AGAIN;
}
