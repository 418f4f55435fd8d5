/*
 * http1.c - HTTP/1.1 request framing over http-parser, in place.
 *
 * http-parser (Debian's libhttp-parser, node.js's parser until v12; the
 * admin port uses it too, docs/http.md) is a resumable state machine that
 * calls back with pieces of the target, header names, header values and
 * the body as it meets them. Because the caller keeps the request's bytes
 * contiguous (http1.h), a piece's position is an offset from the first
 * byte and consecutive pieces of one item are adjacent: a span is its
 * first offset and the sum of the lengths. Nothing is copied but header
 * names (up to 24 bytes, lower-cased, to recognise the few we keep).
 *
 * on_headers_complete decides every refusal that the head alone settles
 * (version, target length, body length, chunked) and pauses the parser on
 * one, so a refused request's body is never read; on_message_complete
 * pauses it so that http_parser_execute returns exactly at the end of the
 * request and pipelined bytes stay for the next one.
 */
#include "nacos/http1.h"

#include <string.h>

static struct h1_req *req_of(http_parser *p)
{
	return p->data;
}

static uint32_t off_of(const struct h1_req *r, const char *at)
{
	return (uint32_t)(at - r->base);
}

static void span_add(struct h1_req *r, struct h1_span *s, const char *at, size_t n)
{
	if (!s->set) {
		s->set = true;
		s->off = off_of(r, at);
		s->len = 0;
	}
	s->len += (uint32_t)n;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct h1_req *r = req_of(p);

	span_add(r, &r->url, at, n);
	return 0;
}

static const char *const header_names[H1_H_COUNT] = {
	[H1_H_CONTENT_TYPE] = "content-type",
	[H1_H_USER_AGENT] = "user-agent",
	[H1_H_CLIENT_VERSION] = "client-version",
	[H1_H_AUTHORIZATION] = "authorization",
	[H1_H_EXPECT] = "expect",
	[H1_H_IF_NONE_MATCH] = "if-none-match",
};

static int on_header_field(http_parser *p, const char *at, size_t n)
{
	struct h1_req *r = req_of(p);

	if (r->in_value) { /* a new header begins */
		r->in_value = false;
		r->field_len = 0;
		r->field_long = false;
	}
	for (size_t i = 0; i < n; i++) {
		char ch = at[i];

		if (r->field_len == sizeof(r->field)) {
			r->field_long = true;
			break;
		}
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		r->field[r->field_len++] = ch;
	}
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
	struct h1_req *r = req_of(p);

	if (!r->in_value) { /* the first piece of this value: which header is it? */
		r->in_value = true;
		r->cur = H1_H_NONE;
		for (int h = 1; h < H1_H_COUNT && !r->field_long; h++)
			if (strlen(header_names[h]) == r->field_len &&
			    memcmp(header_names[h], r->field, r->field_len) == 0) {
				r->cur = (uint8_t)h;
				r->headers[h].set =
				        false; /* a repeated header: the last one counts */
				break;
			}
	}
	if (r->cur != H1_H_NONE)
		span_add(r, &r->headers[r->cur], at, n);
	return 0;
}

static uint8_t method_of(unsigned m)
{
	switch (m) {
	case HTTP_GET:
		return H1_GET;
	case HTTP_HEAD:
		return H1_HEAD;
	case HTTP_POST:
		return H1_POST;
	case HTTP_PUT:
		return H1_PUT;
	case HTTP_DELETE:
		return H1_DELETE;
	case HTTP_PATCH:
		return H1_PATCH;
	default:
		return H1_OTHER;
	}
}

static int refuse_at_head(http_parser *p, uint16_t status)
{
	struct h1_req *r = req_of(p);

	r->status = status;
	r->keep_alive = false;
	r->done = true;
	http_parser_pause(p, 1); /* the body, if any, is never read */
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct h1_req *r = req_of(p);

	r->head_done = true;
	r->method = method_of(p->method);
	r->keep_alive = http_should_keep_alive(p) && !p->upgrade;
	if (p->http_major != 1)
		return refuse_at_head(p, 505);
	if (r->url.len > H1_URL_MAX)
		return refuse_at_head(p, 414);
	if ((p->flags & F_CHUNKED) || p->uses_transfer_encoding)
		return refuse_at_head(p, 411);
	if ((p->flags & F_CONTENTLENGTH) && p->content_length > H1_BODY_MAX)
		return refuse_at_head(p, 413);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	struct h1_req *r = req_of(p);

	span_add(r, &r->body, at, n);
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct h1_req *r = req_of(p);

	r->done = true;
	http_parser_pause(p, 1); /* pipelined bytes stay for the next request */
	return 0;
}

static const http_parser_settings settings = {
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

void h1_init(struct h1_req *r)
{
	memset(r, 0, sizeof(*r));
	http_parser_init(&r->parser, HTTP_REQUEST);
	r->parser.data = r;
}

static int refuse(struct h1_req *r, uint16_t status)
{
	r->status = status;
	r->keep_alive = false;
	r->done = true;
	return H1_DONE;
}

int h1_feed(struct h1_req *r, const char *p, size_t n)
{
	size_t take = n, got;

	if (r->done)
		return H1_DONE;
	if (n == 0)
		return H1_AGAIN; /* a zero length would tell the parser "EOF" */
	if (!r->head_done) {
		size_t room = H1_HEAD_MAX - r->head_bytes;

		take = n < room ? n : room;
	}
	r->base = p - r->fed;
	got = http_parser_execute(&r->parser, &settings, p, take);
	r->base = NULL;
	if (!r->head_done || r->done)
		r->head_bytes += (uint32_t)got; /* an upper bound once the body began */
	r->fed += (uint32_t)got;
	if (r->done)
		return H1_DONE;
	if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK || got != take)
		return refuse(r, 400);
	/*
	 * "GET /x\r\n": an HTTP/0.9 request, one line without a version.
	 * http-parser would read what follows as headers, so the client (which
	 * sends nothing more) would wait for an answer until the idle timeout.
	 */
	if (!r->head_done && r->parser.http_major == 0 && r->parser.http_minor == 9)
		return refuse(r, 505);
	if (!r->head_done && r->head_bytes >= H1_HEAD_MAX)
		return refuse(r, 431);
	/*
	 * The head ended within the bytes its bound let through and the rest
	 * of p is body: feed it too (once, the head is done), since H1_AGAIN
	 * tells the caller that every byte was taken.
	 */
	if (take < n)
		return h1_feed(r, p + got, n - got);
	return H1_AGAIN;
}

const char *h1_reason(uint16_t status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 301:
		return "Moved Permanently";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 411:
		return "Length Required";
	case 413:
		return "Payload Too Large";
	case 414:
		return "URI Too Long";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}
