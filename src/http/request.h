/*
 * request.h - one HTTP/1.x request head for the admin port: the glue
 * between Debian's http-parser (nodejs http-parser 2.9, a resumable
 * callback parser) and the admin loop.
 *
 * The admin port accepts GET and HEAD of a few fixed paths and no bodies,
 * so a request here is only its head: method, path and the keep-alive
 * decision. request_feed is resumable: bytes may arrive split anywhere
 * (the tests split at every byte). It says "complete", "need more" or
 * gives the status of a refusal; it never reads past the end of the
 * request, so pipelined requests stay in the caller's buffer for the next
 * round. Bounds: the head (request line and headers) at most
 * REQUEST_HEAD_MAX bytes, the target at most REQUEST_URL_MAX.
 */
#ifndef DISTRO_HTTP_REQUEST_H
#define DISTRO_HTTP_REQUEST_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REQUEST_HEAD_MAX 8192 /* bytes of request line and headers: 431 beyond */
#define REQUEST_URL_MAX  512  /* bytes of request target: 414 beyond */

/* What a complete request asks for. */
enum request_route {
	REQUEST_ROUTE_NONE = 0, /* unknown path: 404 */
	REQUEST_ROUTE_METRICS,  /* /metrics */
	REQUEST_ROUTE_HEALTH,   /* /health */
	REQUEST_ROUTE_CLUSTER,  /* /cluster */
	REQUEST_ROUTE_LAST = REQUEST_ROUTE_CLUSTER,
};

struct request {
	http_parser parser;
	uint32_t head_bytes; /* fed so far, toward REQUEST_HEAD_MAX */
	uint32_t url_len;
	bool url_overflow;
	bool done;
	/* Valid once request_feed returned REQUEST_DONE: */
	uint16_t status; /* 0: answer by route; else the error status to send (4xx) */
	bool head_only;  /* HEAD: headers without the body */
	bool keep_alive; /* the connection may carry another request after the answer */
	enum request_route route;
	char url[REQUEST_URL_MAX];
};

enum {
	REQUEST_AGAIN = 0, /* the head is not complete: feed more bytes */
	REQUEST_DONE = 1,  /* complete: see status, route, head_only, keep_alive */
};

/* Readies r for a new request (also between requests on one connection). */
void request_init(struct request *r);

/*
 * Feeds n bytes. Returns REQUEST_DONE or REQUEST_AGAIN, and in *used how
 * many of the bytes belong to this request (on DONE the rest belongs to the
 * next one; on AGAIN all n were taken). Refusals are also DONE, with
 * r->status set and keep_alive false when the connection cannot continue:
 * 400 malformed, 405 method not GET/HEAD, 413 a body, 414 target too long,
 * 431 head over REQUEST_HEAD_MAX. O(n); never allocates.
 */
int request_feed(struct request *r, const char *p, size_t n, size_t *used);

#endif
