/*
 * libFuzzer target for the Nacos port's request framing (nacos/http1.h):
 * the input is the byte stream of one connection, after two bytes that
 * choose where it is cut into two receives. It is framed as the worker
 * frames it: the current request's bytes are kept contiguous from its
 * first byte and only the bytes not fed yet are fed. Each feed gets a
 * fresh heap copy of exactly the request's bytes received so far, so a
 * read before or after them, or through a pointer kept from an earlier
 * feed, is an ASan report.
 *
 * Checks: a feed takes every byte offered or stops at the end of a
 * request; a complete request has a status this layer sends, and when it
 * is answered (status 0) its target, body and header spans lie inside its
 * bytes, within the bounds (target, head, body), with a known method.
 * And the framing does not depend on the cut: the same stream fed in one
 * receive gives the same requests (status, length, method, spans).
 */
#include "nacos/http1.h"

#include <stdlib.h>
#include <string.h>

#define MAX_REQS 64

struct seen {
	uint16_t status;
	uint8_t method;
	bool keep_alive;
	uint32_t fed;
	struct h1_span url, body, headers[H1_H_COUNT];
};

static bool span_inside(struct h1_span s, uint32_t len)
{
	return !s.set || ((uint64_t)s.off + s.len <= len);
}

static void check_done(const struct h1_req *r, size_t avail)
{
	if (r->fed > avail || !r->done)
		abort();
	switch (r->status) {
	case 0:
		if (!r->url.set || r->url.len > H1_URL_MAX || r->body.len > H1_BODY_MAX)
			abort();
		if (!span_inside(r->url, r->fed) || !span_inside(r->body, r->fed))
			abort();
		if (r->body.set && r->body.off + r->body.len != r->fed)
			abort(); /* the body ends the request */
		if (r->fed - r->body.len > H1_HEAD_MAX)
			abort();
		if (r->method > H1_PATCH)
			abort();
		for (int h = 1; h < H1_H_COUNT; h++)
			if (!span_inside(r->headers[h], r->fed))
				abort();
		break;
	case 400:
	case 411:
	case 413:
	case 414:
	case 431:
	case 505:
		if (r->keep_alive)
			abort(); /* a refusal closes the connection */
		break;
	default:
		abort();
	}
}

/*
 * Frames data[0, size) revealed in two receives (the first `cut` bytes,
 * then the rest); records each complete request. The number recorded.
 */
static int frame(const uint8_t *data, size_t size, size_t cut, struct seen *out)
{
	struct h1_req r;
	size_t start = 0; /* the current request's first byte in data */
	int n = 0;

	h1_init(&r);
	for (int step = 0; step < 2; step++) {
		size_t revealed = step == 0 ? cut : size;

		while (start < revealed && n < MAX_REQS) {
			size_t avail = revealed - start;
			char *copy = malloc(avail ? avail : 1);
			int rc;

			if (copy == NULL)
				abort();
			memcpy(copy, data + start, avail);
			if (r.fed > avail)
				abort();
			rc = h1_feed(&r, copy + r.fed, avail - r.fed);
			if (rc == H1_AGAIN) {
				free(copy);
				if (r.fed != avail || r.done)
					abort(); /* AGAIN takes everything */
				if (!r.head_done && r.fed >= H1_HEAD_MAX)
					abort(); /* the head bound decides */
				if (r.fed > H1_REQ_MAX)
					abort();
				break;
			}
			check_done(&r, avail);
			if (r.status == 0 && r.body.set &&
			    memcmp(copy + r.body.off, data + start + r.body.off, r.body.len) != 0)
				abort();
			free(copy);
			out[n] = (struct seen){
				.status = r.status,
				.method = r.method,
				.keep_alive = r.keep_alive,
				.fed = r.fed,
				.url = r.url,
				.body = r.body,
			};
			memcpy(out[n].headers, r.headers, sizeof(r.headers));
			n++;
			if (!r.keep_alive)
				return n; /* the connection closes: the rest is never read */
			if (r.fed == 0)
				abort(); /* a request is at least one byte */
			start += r.fed;
			h1_init(&r);
		}
	}
	return n;
}

static bool span_eq(struct h1_span a, struct h1_span b)
{
	return a.set == b.set && (!a.set || (a.off == b.off && a.len == b.len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct seen split[MAX_REQS], whole[MAX_REQS];
	size_t cut;
	int n1, n2;

	if (size < 2)
		return 0;
	cut = (size_t)(data[0] | data[1] << 8);
	data += 2, size -= 2;
	cut = size ? cut % (size + 1) : 0;
	n1 = frame(data, size, cut, split);
	n2 = frame(data, size, size, whole);
	/*
	 * Both framings see the whole stream in the end, so they agree request
	 * by request: the same requests answered, with the same bytes. A bad
	 * request is refused in both, but which refusal and after how many
	 * bytes may depend on what had arrived (an HTTP/0.9 line is refused
	 * 505 when the stream stops after it; followed by bad header bytes
	 * in the same feed, 400), and it ends the connection either way.
	 */
	if (n1 != n2)
		abort();
	for (int i = 0; i < n1; i++) {
		const struct seen *a = &split[i], *b = &whole[i];

		if ((a->status == 0) != (b->status == 0))
			abort();
		if (a->status != 0)
			continue; /* the last one: a refusal closes */
		if (a->fed != b->fed || a->keep_alive != b->keep_alive)
			abort();
		if (a->method != b->method || !span_eq(a->url, b->url) ||
		    !span_eq(a->body, b->body))
			abort();
		for (int h = 1; h < H1_H_COUNT; h++)
			if (!span_eq(a->headers[h], b->headers[h]))
				abort();
	}
	return 0;
}
