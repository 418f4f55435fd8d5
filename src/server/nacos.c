/*
 * nacos.c - the Nacos port's HTTP/1.1 connections, on the worker that
 * accepted them.
 *
 * Why on the workers and not on the admin thread: every Nacos 1.x client
 * beats every instance every 5 s over HTTP, so this is the hot path of
 * Nacos traffic. Each worker listens on the Nacos port itself
 * (SO_REUSEPORT, like the binary port), receives with the same provided
 * buffers and sends once per connection per loop.
 *
 * Reading. A connection's requests are parsed in place (nacos/http1.h):
 * a request is handled straight from the receive buffer when it is whole
 * there; otherwise its bytes are kept in conn.in until the rest arrives,
 * and the parser, which records offsets, carries on from where it stopped.
 * Pipelined requests are answered in order: a write that has to travel
 * (another shard, another node) leaves the connection waiting (conn.pending)
 * and whatever arrived after it stays in conn.in until the answer is
 * written, then parsing resumes (nacos_write_done). At most NACOS_IN_MAX
 * bytes wait; a client that pipelines more is closed.
 *
 * Authentication (--auth-users, nacos_auth.c) runs before routing. A
 * password check that needs a bcrypt parks the request: it stays
 * unconsumed in conn.in, the connection counts as pending (so it reads
 * nothing more and its slot stays), and when the auth thread's answer
 * comes back (nacos_auth_done) the same request is handled again from its
 * first byte, the answer waiting for it on the connection.
 *
 * Answering. An answer is a status line, Content-Type, Content-Length and
 * the body, appended to conn.out and sent with the connection's other
 * output at the end of the loop. A refusal of the parser (400, 411, 413,
 * 414, 431, 505) is answered and the connection closed after it, as is a
 * request that asked for Connection: close.
 *
 * Writes are frames of the binary protocol built in one per-worker buffer
 * (nacos_frame_*: one item, or many for a metadata batch) and answered
 * once every item has run (nacos_write_done). Other requests that visit
 * other workers (/service/subscribers) hold the connection the same way
 * (nacos_later, nacos_later_done).
 *
 * Nothing here allocates per request: the connection state comes from the
 * worker's pool when the connection opens, the answer is built in one
 * per-worker buffer, parameters are decoded into per-worker scratch. (The
 * rare requests served elsewhere may: see /service/subscribers and the
 * admin paths.)
 */
#include "server/nacos_internal.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "server/authq.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

int nacos_init(struct worker *w)
{
	struct nacos_worker *n = mem_calloc(1, sizeof(*n));

	if (n == NULL)
		return -ENOMEM;
	pool_init(&n->nconns, sizeof(struct nconn));
	n->form_cap = H1_REQ_MAX;
	n->form_buf = mem_alloc(n->form_cap);
	n->meta_cap = H1_REQ_MAX;
	n->meta_buf = mem_alloc(n->meta_cap);
	/* Untouched pages cost no memory: a worker that never writes a batch keeps ~16 KiB. */
	n->frame = mem_alloc(NACOS_FRAME_BYTES);
	n->batch_cap = 2 * H1_REQ_MAX; /* halves: metadata, instances */
	n->batch_buf = mem_alloc(n->batch_cap);
	w->nacos = n;
	if (n->form_buf == NULL || n->meta_buf == NULL || n->frame == NULL || n->batch_buf == NULL)
		return -ENOMEM;
	return 0;
}

void nacos_free(struct worker *w)
{
	struct nacos_worker *n = w->nacos;

	if (n == NULL)
		return;
	pool_destroy(&n->nconns);
	buf_free(&n->body);
	mem_free(n->form_buf);
	mem_free(n->meta_buf);
	mem_free(n->frame);
	mem_free(n->batch_buf);
	mem_free(n);
	w->nacos = NULL;
}

bool nacos_conn_open(struct worker *w, struct conn *c)
{
	struct nconn *n = pool_get(&w->nacos->nconns);

	if (n == NULL)
		return false;
	memset(n, 0, sizeof(*n));
	h1_init(&n->req);
	c->http = n;
	return true;
}

void nacos_conn_end(struct worker *w, struct conn *c)
{
	if (c->http) {
		pool_put(&w->nacos->nconns, c->http);
		c->http = NULL;
	}
}

/* ---- answers ---- */

/*
 * An answer; head_only (to a HEAD, or a 304) sends the head with the
 * body's Content-Length, not the body. hdrs: more header lines, each
 * ending CRLF (NULL: none), constants of ours of at most NACOS_HDRS_MAX
 * bytes.
 */
static void reply_raw(struct worker *w, uint32_t idx, bool keep_alive, bool head_only,
                      uint16_t status, const char *ctype, const char *hdrs, const char *body,
                      size_t len)
{
	struct conn *c = conn_at(w, idx);
	char head[192 + NACOS_HDRS_MAX];
	int hl;
	uint8_t *p;

	if (c->state != C_OPEN)
		return;
	assert(hdrs == NULL || strlen(hdrs) <= NACOS_HDRS_MAX);
	hl = snprintf(head, sizeof(head),
	              "HTTP/1.1 %u %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
	              status, h1_reason(status), ctype, len, hdrs ? hdrs : "",
	              keep_alive ? "" : "Connection: close\r\n");
	assert(hl > 0 && (size_t)hl < sizeof(head));
	if (status >= 400)
		WSTAT_INC(w, nacos_errors);
	if (head_only)
		len = 0;
	p = out_reserve(w, idx, (uint32_t)((size_t)hl + len));
	if (p == NULL)
		return;
	memcpy(p, head, (size_t)hl);
	if (len)
		memcpy(p + hl, body, len);
	out_commit(w, idx, (uint32_t)((size_t)hl + len));
	if (!keep_alive)
		c->close_after_flush = true;
}

void nacos_reply(struct nctx *x, uint16_t status, const char *ctype, const char *body, size_t len)
{
	reply_raw(x->w, x->idx, x->h->keep_alive, x->h->method == H1_HEAD, status, ctype, NULL,
	          body, len);
}

void nacos_reply_hdrs(struct nctx *x, uint16_t status, const char *ctype, const char *hdrs,
                      bool head_only, const char *body, size_t len)
{
	reply_raw(x->w, x->idx, x->h->keep_alive, head_only || x->h->method == H1_HEAD, status,
	          ctype, hdrs, body, len);
}

void nacos_reply_text(struct nctx *x, uint16_t status, const char *text)
{
	nacos_reply(x, status, "text/plain;charset=UTF-8", text, strlen(text));
}

void nacos_reply_json(struct nctx *x, struct buf *b)
{
	nacos_reply(x, 200, "application/json;charset=UTF-8", (const char *)b->p + b->off,
	            buf_used(b));
}

const struct sockaddr_storage *nacos_peer(struct nctx *x)
{
	struct conn *c = conn_at(x->w, x->idx);
	struct nconn *n = c->http;

	if (!n->peer_known) {
		socklen_t len = sizeof(n->peer);

		if (getpeername(c->fd, (struct sockaddr *)&n->peer, &len) < 0)
			return NULL;
		n->peer_known = true;
	}
	return &n->peer;
}

/* ---- writes: the binary protocol's path, answered here ---- */

void nacos_frame_init(struct nctx *x, struct nacos_frame *f, uint8_t op)
{
	struct nacos_worker *nw = x->w->nacos;

	proto_wr_init(&f->wr, nw->frame, NACOS_FRAME_BYTES);
	f->op = op;
	f->count = 0;
}

int nacos_frame_add(struct nacos_frame *f, const struct store_key *k, const struct store_val *v)
{
	uint8_t *start = f->wr.p;

	if (f->count >= NACOS_BATCH_MAX)
		return -ERR_TOO_BIG;
	if (f->op == OP_DEREGISTER)
		proto_wr_key(&f->wr, k);
	else
		proto_wr_instance(&f->wr, k, v);
	if (f->wr.overflow || (size_t)(f->wr.p - start) > NACOS_ITEM_BYTES) {
		/* Undo: the frame stays as it was before this item. */
		f->wr.p = start;
		f->wr.overflow = false;
		return -ERR_TOO_BIG;
	}
	f->count++;
	return 0;
}

void nacos_frame_send(struct nctx *x, struct nacos_frame *f, uint32_t tag)
{
	struct worker *w = x->w;
	struct proto_header h;

	assert(f->count > 0);
	memset(&h, 0, sizeof(h));
	h.op = f->op;
	h.count = f->count;
	h.request_id = tag;
	h.body_len = (uint32_t)(f->wr.p - w->nacos->frame);
	conn_at(w, x->idx)->http->keep_alive = x->h->keep_alive;
	/* ops_write copies what has to travel: the frame buffer is free again on return. */
	ops_write(w, x->idx, &h, w->nacos->frame);
}

void nacos_write(struct nctx *x, uint8_t op, uint32_t tag, const struct store_key *k,
                 const struct store_val *v)
{
	struct nacos_frame f;

	nacos_frame_init(x, &f, op);
	if (nacos_frame_add(&f, k, v) < 0) {
		nacos_reply_text(x, 400, "instance too large");
		return;
	}
	nacos_frame_send(x, &f, tag);
}

static void resume(struct worker *w, uint32_t idx);

void nacos_write_done(struct worker *w, uint32_t idx, const struct proto_header *h,
                      const uint8_t *body, const int16_t *results)
{
	struct conn *c = conn_at(w, idx);
	struct nconn *n = c->http;
	struct buf *b = &w->nacos->body;
	const char *ctype = "text/plain;charset=UTF-8";
	uint16_t status = 200;
	bool parsing = n->parsing; /* read first: an answer that closes may free n */

	buf_clear(b);
	if (nacos_write_answer(h, body, results, b, &status, &ctype) < 0) {
		buf_clear(b);
		status = 500;
		ctype = "text/plain;charset=UTF-8";
		(void)buf_append(b, "answer larger than the server's bound", 37, NACOS_BODY_MAX);
	}
	reply_raw(w, idx, n->keep_alive, false, status, ctype, NULL, (const char *)b->p + b->off,
	          buf_used(b));
	if (!parsing && c->state == C_OPEN && c->pending == 0)
		resume(w, idx);
}

/* ---- answers that come later ---- */

uint32_t nacos_later(struct nctx *x)
{
	struct conn *c = conn_at(x->w, x->idx);

	c->http->keep_alive = x->h->keep_alive;
	c->pending++;
	return c->gen;
}

void nacos_later_done(struct worker *w, uint32_t idx, uint32_t gen, bool head_only, uint16_t status,
                      const char *ctype, const char *body, size_t len)
{
	struct conn *c = conn_at(w, idx);

	if (c->gen != gen || c->pending == 0)
		return; /* cannot happen: a connection with pending requests keeps its slot */
	c->pending--;
	if (c->state != C_OPEN) {
		conn_close(w, idx); /* it waited for this answer to be freed */
		return;
	}
	reply_raw(w, idx, c->http->keep_alive, head_only, status, ctype, NULL, body, len);
	if (!c->http->parsing && c->pending == 0 && c->state == C_OPEN)
		resume(w, idx);
}

/* ---- requests ---- */

/*
 * Handles one whole request. Returns true when the request is parked (its
 * password check went to the auth thread, nacos_auth.c): its bytes stay
 * unconsumed and it is handled again, from the start, when the answer is
 * back (nacos_auth_done).
 */
static bool handle(struct worker *w, uint32_t idx, const char *req)
{
	struct nconn *n = conn_at(w, idx)->http;
	struct h1_req *r = &n->req;
	struct nctx x = { .w = w, .idx = idx, .req = req, .h = r };
	const char *url, *q;
	uint32_t before = w->pendings_n;
	int rc = 0;

	w->frame_start_us = clock_mono_us();
	if (!n->auth_ready) /* not again for a parked request */
		WSTAT_INC(w, nacos_requests);
	if (r->status) {
		char msg[96];

		snprintf(msg, sizeof(msg), "%u %s", r->status, h1_reason(r->status));
		nacos_reply_text(&x, r->status, msg);
		return false;
	}
	url = h1_at(req, r->url);
	q = memchr(url, '?', r->url.len);
	x.path.p = url;
	x.path.len = q ? (uint32_t)(q - url) : r->url.len;
	form_init(&x.form, w->nacos->form_buf, w->nacos->form_cap);
	if (q)
		rc = form_parse(&x.form, q + 1, (size_t)(url + r->url.len - (q + 1)));
	if (rc == 0 && r->body.len > 0) {
		/* Form bodies (Java clients, curl -d); any other body is not parameters. */
		struct h1_span ct = r->headers[H1_H_CONTENT_TYPE];

		if (!ct.set ||
		    (ct.len >= 33 &&
		     strncasecmp(h1_at(req, ct), "application/x-www-form-urlencoded", 33) == 0))
			rc = form_parse(&x.form, h1_at(req, r->body), r->body.len);
	}
	if (rc < 0) {
		nacos_reply_text(&x, 400,
		                 rc == -ERR_INVAL ? "malformed query or form parameters"
		                                  : "too many or too large parameters");
		return false;
	}
	if (w->srv->auth) {
		rc = nacos_auth_gate(&x);
		if (rc == NACOS_AUTH_PARKED)
			return true;
		if (rc == NACOS_AUTH_ANSWERED) {
			latency_record(w, w->frame_start_us);
			return false;
		}
	}
	nacos_api_dispatch(&x);
	if (w->pendings_n == before)
		latency_record(w, w->frame_start_us);
	return false;
}

/* Handles every complete request in [base, base + len); returns bytes used, or -1 (closing). */
static long parse(struct worker *w, uint32_t idx, const char *base, size_t len)
{
	struct conn *c = conn_at(w, idx);
	struct nconn *n = c->http;
	size_t off = 0;

	n->parsing = true;
	while (off < len && c->state == C_OPEN && !c->close_after_flush && c->pending == 0) {
		struct h1_req *r = &n->req;

		if (h1_feed(r, base + off + r->fed, len - off - r->fed) == H1_AGAIN) {
			struct h1_span e = r->headers[H1_H_EXPECT];

			if (r->head_done && !n->continue_sent && e.set && e.len == 12 &&
			    strncasecmp(base + off + e.off, "100-continue", 12) == 0) {
				static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
				uint8_t *p = out_reserve(w, idx, sizeof(cont) - 1);

				if (p) {
					memcpy(p, cont, sizeof(cont) - 1);
					out_commit(w, idx, sizeof(cont) - 1);
				}
				n->continue_sent = true;
			}
			break;
		}
		if (handle(w, idx, base + off)) {
			h1_init(r); /* parked: parsed again from its first byte */
			break;
		}
		if (c->state == C_FREE || c->http != n)
			return -1; /* an answer closed and freed the connection: n and base are gone
			            */
		off += r->fed;
		h1_init(r);
		n->continue_sent = false;
	}
	n->parsing = false;
	if (c->state != C_OPEN || c->close_after_flush)
		return -1;
	return (long)off;
}

static void resume(struct worker *w, uint32_t idx)
{
	struct conn *c = conn_at(w, idx);
	long used;

	if (buf_used(&c->in) == 0)
		return;
	used = parse(w, idx, (const char *)c->in.p + c->in.off, buf_used(&c->in));
	if (used < 0)
		return;
	buf_consume(&c->in, (size_t)used);
	if (buf_used(&c->in) == 0)
		buf_free(&c->in);
	conn_partial_mark(w, c, used > 0);
}

/*
 * The auth thread answered the password check of the request this
 * connection parked: leave the answer for the gate and handle the request
 * again (it is first in conn.in), then whatever followed it.
 */
void nacos_auth_done(struct worker *w, struct authq_job *j)
{
	struct conn *c = conn_at(w, j->conn);
	struct nconn *n = c->http;

	assert(c->gen == j->conn_gen && c->pending > 0); /* the pending held the slot */
	c->pending--;
	if (c->state != C_OPEN) {
		conn_close(w, j->conn);
		return;
	}
	n->auth_ready = true;
	n->auth_rc = j->rc;
	n->auth_who = j->who;
	resume(w, j->conn);
	n->auth_ready = false; /* used by now, unless the connection closed first */
}

void nacos_on_data(struct worker *w, uint32_t idx, const uint8_t *data, size_t len)
{
	struct conn *c = conn_at(w, idx);
	long used;

	c->active_ms = w->now_ms;
	WSTAT_ADD(w, bytes_in, len);
	if (buf_used(&c->in) == 0 && c->pending == 0) {
		used = parse(w, idx, (const char *)data, len);
		if (used < 0)
			return;
		if ((size_t)used < len &&
		    !buf_append(&c->in, data + used, len - (size_t)used, NACOS_IN_MAX)) {
			conn_close(w, idx);
			return;
		}
		conn_partial_mark(w, c, true); /* a request's start waits: --header-timeout */
		return;
	}
	if (!buf_append(&c->in, data, len, NACOS_IN_MAX)) {
		log_debug("connection %u: over %u bytes pipelined, closing", idx, NACOS_IN_MAX);
		conn_close(w, idx);
		return;
	}
	if (c->pending == 0)
		resume(w, idx);
}
