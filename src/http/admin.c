/*
 * admin.c - the HTTP admin port: one thread, one poll loop.
 *
 * Why a thread of its own: admin traffic (a scrape every few seconds, a
 * health probe) is rare and slow next to client traffic, and rendering
 * /metrics walks every worker's counters. On its own thread it never sits
 * in a worker's loop, never touches a worker's ring and needs no care
 * about the hot path's no-malloc, no-syscall rules.
 *
 * Where the numbers come from. This file does not know the server: it
 * gets a struct admin_source at admin_start and calls its snapshot
 * callback, on this thread, for each /metrics (the counters and the peer
 * view) and each /health or /cluster (the peer view only). The callback
 * reads the owners' counters with relaxed loads into buffers this module
 * allocated once at admin_start (a->snap: a sum and one struct per
 * worker, the store's sums, a peer_status of ~10 KiB), so it takes no
 * lock, allocates nothing and waits for no one; rendering then works on
 * that private copy (http/metrics.c, http/status.c), and allocates only
 * the answer. admin.h states the contract in full. Sharing nothing else
 * with the workers, the admin thread needs no lock anywhere.
 *
 * One renderer, two ports. admin_answer_render turns a route into its
 * answer from a snapshot; the admin thread calls it with its own buffers
 * and counters, and a worker of the Nacos port calls it with a snapshot
 * it allocates for the request and a relaxed copy of this thread's
 * counters (metrics_http_read: they are written with relaxed stores), so
 * /metrics, /health and /cluster answer the same on both ports.
 *
 * Loop: poll() over the eventfd admin_stop knocks on, the listening socket
 * and the connections. poll is enough: at most ADMIN_CONNS_MAX + 2 fds.
 * Each connection is a small state machine: read a chunk, feed it to its
 * request (http/request.h: resumable, never reads past the end of the
 * request); once a request is complete, build the whole answer in one
 * buffer and send it, polling for POLLOUT if the socket takes only part.
 * While an answer is in flight the connection reads nothing more. Bytes
 * of a pipelined next request wait in the connection's buffer and are
 * handled on the next turn of the loop, so each turn serves at most one
 * request per connection and no client can monopolise the thread.
 *
 * Bounds: ADMIN_CONNS_MAX connections; a request head of at most
 * REQUEST_HEAD_MAX bytes (431); no bodies (413); each request and its
 * answer must be done within ADMIN_IDLE_MS of the connection's accept or
 * previous answer, and a head must be whole within --header-timeout of
 * its first byte, else the connection is closed; an answer is at most
 * METRICS_BYTES_MAX plus its head.
 *
 * Slow clients must not lock out the probes. This port answers the
 * orchestrator's /health: if a slowloris (connections that send a head a
 * byte at a time, or nothing) could hold every slot, a healthy node would
 * answer 503 and be restarted. So a new connection that finds every slot
 * taken evicts the connection that has waited longest for its request
 * (open and idle, or with a head still unfinished: no answer owed,
 * nothing lost but a slow client's place), and only when every slot is
 * busy answering is it answered 503 and closed. A probe sends its request
 * at once, so it is answered long before ADMIN_CONNS_MAX newer
 * connections could evict it. One address may hold at most
 * ADMIN_CONNS_PER_SOURCE connections (more: 503), so one host cannot churn
 * every slot by itself either.
 *
 * Answers: 200 for GET/HEAD of /metrics, /health and /cluster (503 for
 * /health while a clustered node is not READY; http/status.c), 404 other paths, 405
 * other methods (Allow: GET, HEAD), 400 malformed (then close), 413/414/431
 * (then close). Keep-alive follows HTTP/1.1 (HTTP/1.0 with keep-alive).
 * A connection closed by us after an answer lingers (see conn_flush) so
 * unread input cannot turn the close into a reset that eats the answer.
 */
#include "http/admin.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/srclimit.h"
#include "http/request.h"
#include "http/status.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct admin_conn {
	int fd; /* -1: free slot */
	int64_t deadline_ms;
	int64_t since_ms;   /* waiting for a request since (accept, previous answer): eviction order
	                     */
	int64_t partial_ms; /* first byte of an unfinished head; 0: none (--header-timeout) */
	uint64_t src_key;   /* its source address (srclimit_key): ADMIN_CONNS_PER_SOURCE */
	struct request req;
	char *out; /* the answer in flight, or NULL */
	size_t out_len, out_off;
	bool close_after; /* close once the answer is sent */
	bool lingering;   /* answered and shut for writing: reading to EOF before close */
	uint32_t in_len;  /* bytes in `in` not fed yet (a pipelined request) */
	char in[ADMIN_IN_BYTES];
};

static const char text_type[] = ADMIN_TEXT_TYPE;

static int64_t now_ms(void)
{
	return clock_mono_us() / 1000;
}

static void conn_close(struct admin_conn *c)
{
	close(c->fd);
	c->fd = -1;
	mem_free(c->out);
	c->out = NULL;
	c->in_len = 0;
	c->lingering = false;
}

/* Sends what the socket takes. 0 while sending or done, -1 when the connection died. */
static int conn_flush(struct admin_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		c->out_off += (size_t)n;
	}
	mem_free(c->out);
	c->out = NULL;
	if (c->close_after) {
		/*
		 * Lingering close: closing a socket with unread input sends a
		 * reset, which can destroy the answer before the client reads
		 * it. So send FIN, then read and drop until the client closes,
		 * for at most ADMIN_LINGER_MS.
		 */
		shutdown(c->fd, SHUT_WR);
		c->lingering = true;
		c->in_len = 0;
		c->deadline_ms = now_ms() + ADMIN_LINGER_MS;
		return 0;
	}
	/* Answered: the next request gets a fresh parser and a fresh deadline. */
	request_init(&c->req);
	c->since_ms = now_ms();
	c->deadline_ms = c->since_ms + ADMIN_IDLE_MS;
	c->partial_ms = c->in_len ? c->since_ms : 0; /* a pipelined head started already */
	return 0;
}

/* Builds the answer (head + body, one buffer) into c->out. 0 or -ERR_NOMEM. */
static int conn_answer(struct admin_conn *c, unsigned status, const char *type, const char *body,
                       size_t body_len, bool head_only, bool keep_alive)
{
	char head[256];
	int n;

	n = snprintf(head, sizeof(head),
	             "HTTP/1.1 %u %s\r\n"
	             "Content-Type: %s\r\n"
	             "Content-Length: %zu\r\n"
	             "Cache-Control: no-store\r\n"
	             "%s"
	             "Connection: %s\r\n\r\n",
	             status, http_status_str((enum http_status)status), type, body_len,
	             status == 405 ? "Allow: GET, HEAD\r\n" : "",
	             keep_alive ? "keep-alive" : "close");
	if (n < 0 || (size_t)n >= sizeof(head))
		return -ERR_NOMEM;
	if (head_only)
		body_len = 0;
	c->out = mem_alloc((size_t)n + body_len);
	if (c->out == NULL)
		return -ERR_NOMEM;
	memcpy(c->out, head, (size_t)n);
	if (body_len)
		memcpy(c->out + n, body, body_len);
	c->out_len = (size_t)n + body_len;
	c->out_off = 0;
	c->close_after = !keep_alive;
	return 0;
}

/* ---- the answers, for this port and the Nacos port alike ---- */

int admin_snapshot_alloc(struct admin_snapshot *s, uint32_t nworkers)
{
	memset(s, 0, sizeof(*s));
	s->total = metrics_worker_stats_new(1);
	s->workers = metrics_worker_stats_new(nworkers);
	s->store = metrics_store_stats_new();
	s->peer = mem_calloc(1, sizeof(*s->peer));
	if (s->total == NULL || s->workers == NULL || s->store == NULL || s->peer == NULL) {
		admin_snapshot_free(s);
		return -ERR_NOMEM;
	}
	return 0;
}

void admin_snapshot_free(struct admin_snapshot *s)
{
	mem_free(s->total);
	mem_free(s->workers);
	mem_free(s->store);
	mem_free(s->peer);
	memset(s, 0, sizeof(*s));
}

/* Has the source fill the parts of snap that want names (admin.h's contract). */
static const struct admin_snapshot *snapshot(const struct admin_source *src,
                                             struct admin_snapshot *snap, unsigned want)
{
	snap->want = want;
	src->snapshot(src->ctx, snap);
	return snap;
}

static void answer_status(struct admin_answer *out, unsigned status)
{
	int n = snprintf(out->small, sizeof(out->small), "%u %s\n", status,
	                 http_status_str((enum http_status)status));

	out->status = status;
	out->type = ADMIN_TEXT_TYPE;
	out->body = out->small;
	out->len = (size_t)n;
}

void admin_answer_render(enum request_route route, const struct admin_source *src,
                         struct admin_snapshot *snap, const struct metrics_http *http,
                         struct admin_answer *out)
{
	const struct admin_snapshot *s;
	char *text = NULL;
	size_t len = 0;

	memset(out, 0, sizeof(*out));
	switch (route) {
	case REQUEST_ROUTE_METRICS: {
		struct metrics_input in;

		s = snapshot(src, snap, ADMIN_WANT_COUNTERS | ADMIN_WANT_PEER);
		in = (struct metrics_input){
			.total = s->total,
			.workers = s->workers,
			.nworkers = src->nworkers,
			.store = s->store,
			.http = http,
			.peer = s->peer,
			.limits = &s->limits,
		};
		if (metrics_render(&in, &text, &len) < 0) {
			log_warn("http: /metrics over %u bytes or out of memory",
			         METRICS_BYTES_MAX);
			answer_status(out, 500);
			return;
		}
		out->status = 200;
		out->type = ADMIN_METRICS_TYPE;
		break;
	}
	case REQUEST_ROUTE_HEALTH:
		out->status = status_health(snapshot(src, snap, ADMIN_WANT_PEER)->peer, &out->body,
		                            &out->len);
		out->type = ADMIN_JSON_TYPE;
		return;
	case REQUEST_ROUTE_CLUSTER:
		if (status_cluster_json(snapshot(src, snap, ADMIN_WANT_PEER)->peer, &text, &len) <
		    0) {
			log_warn("http: /cluster: out of memory");
			answer_status(out, 500);
			return;
		}
		out->status = 200;
		out->type = ADMIN_JSON_TYPE;
		break;
	case REQUEST_ROUTE_NONE:
	default:
		answer_status(out, 404);
		return;
	}
	out->owned = text;
	out->body = text;
	out->len = len;
}

void admin_answer_free(struct admin_answer *a)
{
	mem_free(a->owned);
	a->owned = NULL;
}

/* Answers the complete request in c->req. 0, or -1 to drop the connection. */
static int conn_respond(struct admin *a, struct admin_conn *c)
{
	const struct request *r = &c->req;
	struct admin_answer ans;
	int rc;

	if (r->status != 0)
		answer_status(&ans, r->status);
	else
		admin_answer_render(r->route, &a->src, &a->snap, &a->http, &ans);
	rc = conn_answer(c, ans.status, ans.type, ans.body, ans.len, r->head_only,
	                 r->keep_alive && (ans.status < 500 || ans.status == 503));
	metrics_http_count(&a->http, ans.status);
	admin_answer_free(&ans);
	return rc < 0 ? -1 : 0;
}

/* Feeds buffered bytes to the request; answers once it is complete. 0 or -1 (drop). */
static int conn_process(struct admin *a, struct admin_conn *c)
{
	size_t used;
	int rc;

	rc = request_feed(&c->req, c->in, c->in_len, &used);
	c->in_len -= (uint32_t)used;
	memmove(c->in, c->in + used, c->in_len);
	if (rc == REQUEST_AGAIN)
		return 0;
	c->partial_ms = 0; /* whole: the answer's deadline is deadline_ms */
	if (conn_respond(a, c) < 0)
		return -1;
	return conn_flush(c);
}

static int conn_read(struct admin *a, struct admin_conn *c)
{
	ssize_t n;

	if (c->lingering) {
		n = recv(c->fd, c->in, sizeof(c->in), MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
		return n == 0 ? -1 : 0; /* dropped: the answer was the last word */
	}
	n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
	if (n == 0)
		return -1; /* the client closed; a half-sent head is dropped with it */
	c->in_len += (uint32_t)n;
	if (c->partial_ms == 0)
		c->partial_ms = now_ms();
	return conn_process(a, c);
}

/* When c must be done: its request and answer, or its unfinished head. */
static int64_t conn_deadline(const struct admin *a, const struct admin_conn *c)
{
	int64_t head = c->partial_ms + a->header_timeout_ms;

	return c->partial_ms && head < c->deadline_ms ? head : c->deadline_ms;
}

/* Best effort: a fresh socket takes this small write. Then close. */
static void refuse(struct admin *a, int fd, const char *why)
{
	char busy[256];
	int len = snprintf(busy, sizeof(busy),
	                   "HTTP/1.1 503 Service Unavailable\r\n"
	                   "Content-Type: %s\r\n"
	                   "Content-Length: %zu\r\n"
	                   "Connection: close\r\n\r\n%s",
	                   text_type, strlen(why), why);

	if (send(fd, busy, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		(void)0;
	close(fd);
	metrics_http_count(&a->http, 503);
}

/*
 * A slot for a new connection: a free one, else the one waiting longest
 * for its request (idle, or a head unfinished), which is closed; NULL when
 * every connection is busy answering. O(ADMIN_CONNS_MAX).
 */
static struct admin_conn *slot_for_new(struct admin *a)
{
	struct admin_conn *victim = NULL;

	for (int i = 0; i < ADMIN_CONNS_MAX; i++) {
		struct admin_conn *c = &a->conns[i];

		if (c->fd < 0)
			return c;
		/* Lingering ones too: their answer is with the kernel already. */
		if (c->out == NULL && (victim == NULL || c->since_ms < victim->since_ms))
			victim = c;
	}
	if (victim) {
		conn_close(victim);
		METRICS_HTTP_INC(&a->http.conns_evicted);
	}
	return victim;
}

/* Accepts what is waiting; see the top of the file for who gets a slot. */
static void accept_all(struct admin *a)
{
	for (int k = 0; k < ADMIN_CONNS_MAX; k++) {
		struct admin_conn *c;
		struct sockaddr_storage ss;
		socklen_t slen = sizeof(ss);
		int fd = accept4(a->listen_fd, (struct sockaddr *)&ss, &slen,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC),
		    one = 1, same = 0;
		uint64_t key;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/* Out of descriptors: poll would wake at once again; wait a little.
				 */
				if (a->accept_pause_until_ms == 0)
					log_warn("http: accept: %s: accepting pauses 100 ms at a "
					         "time",
					         strerror(errno));
				a->accept_pause_until_ms = now_ms() + 100;
			} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			           errno != ECONNABORTED) {
				log_warn("http: accept: %s", strerror(errno));
			}
			return;
		}
		a->accept_pause_until_ms = 0;
		key = srclimit_key((struct sockaddr *)&ss, slen);
		for (int i = 0; i < ADMIN_CONNS_MAX; i++)
			same += a->conns[i].fd >= 0 && a->conns[i].src_key == key;
		if (same >= ADMIN_CONNS_PER_SOURCE) {
			refuse(a, fd, "too many admin connections from this address\n");
			METRICS_HTTP_INC(&a->http.conns_source_refused);
			continue;
		}
		c = slot_for_new(a);
		if (c == NULL) {
			refuse(a, fd, "too many admin connections\n");
			METRICS_HTTP_INC(&a->http.conns_refused);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		c->src_key = key;
		c->in_len = 0;
		c->out = NULL;
		c->lingering = false;
		c->since_ms = now_ms();
		c->partial_ms = 0;
		c->deadline_ms = c->since_ms + ADMIN_IDLE_MS;
		request_init(&c->req);
		METRICS_HTTP_INC(&a->http.conns_accepted);
	}
}

static void *admin_main(void *arg)
{
	struct admin *a = arg;
	struct pollfd pfd[ADMIN_CONNS_MAX + 2];
	int slot[ADMIN_CONNS_MAX + 2];
	bool ready[ADMIN_CONNS_MAX];

	log_thread_name("http");
	for (;;) {
		int nfds = 2, timeout = -1;
		int64_t now = now_ms();

		pfd[0] = (struct pollfd){ .fd = a->wake_fd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = a->listen_fd, .events = POLLIN };
		if (a->accept_pause_until_ms > now) { /* out of descriptors: not polled meanwhile */
			pfd[1].fd = -1;
			timeout = (int)(a->accept_pause_until_ms - now);
		}
		for (int i = 0; i < ADMIN_CONNS_MAX; i++) {
			struct admin_conn *c = &a->conns[i];
			int64_t wait;

			ready[i] = false;
			if (c->fd < 0)
				continue;
			if (c->out == NULL && c->in_len > 0) {
				ready[i] = true;
				timeout = 0; /* a pipelined request waits in the buffer */
				continue;
			}
			wait = conn_deadline(a, c) - now;
			if (wait < 0)
				wait = 0;
			if (timeout < 0 || wait < timeout)
				timeout = (int)wait;
			slot[nfds] = i;
			pfd[nfds++] =
			        (struct pollfd){ .fd = c->fd, .events = c->out ? POLLOUT : POLLIN };
		}
		if (poll(pfd, (nfds_t)nfds, timeout) < 0 && errno != EINTR) {
			log_error("http: poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents)
			break; /* admin_stop */
		for (int k = 2; k < nfds; k++) {
			struct admin_conn *c = &a->conns[slot[k]];
			int rc = 0;

			if (pfd[k].revents == 0)
				continue;
			if (c->out)
				rc = (pfd[k].revents & (POLLERR | POLLHUP)) ? -1 : conn_flush(c);
			else
				rc = conn_read(a, c);
			if (rc < 0)
				conn_close(c);
		}
		/* Pipelined requests: one each per turn of the loop. */
		now = now_ms();
		for (int i = 0; i < ADMIN_CONNS_MAX; i++) {
			struct admin_conn *c = &a->conns[i];

			if (c->fd < 0)
				continue;
			if (ready[i] && conn_process(a, c) < 0) {
				conn_close(c);
				continue;
			}
			if (c->fd >= 0 && now >= conn_deadline(a, c)) {
				if (c->lingering)
					(void)0;
				else if (c->partial_ms && conn_deadline(a, c) < c->deadline_ms)
					METRICS_HTTP_INC(&a->http.conns_header_closed);
				else
					METRICS_HTTP_INC(&a->http.conns_idle_closed);
				conn_close(c);
			}
		}
		if (pfd[1].revents)
			accept_all(a);
	}
	for (int i = 0; i < ADMIN_CONNS_MAX; i++)
		if (a->conns[i].fd >= 0)
			conn_close(&a->conns[i]);
	return NULL;
}

static int listen_on(const char *host, uint32_t port, uint16_t *bound)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	int fd, one = 1, e;

	if (port > 65535) {
		log_error("--http-port %u: not a port", port);
		return -EINVAL;
	}
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		slen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		slen = sizeof(*s6);
	} else {
		log_error("--http-bind %s: not an IPv4 or IPv6 address", host);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* SO_REUSEADDR only: a second distrod on the same port must fail, not share it. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, slen) < 0 || listen(fd, 128) < 0) {
		e = errno;
		log_error("cannot listen for HTTP on %s%s%s:%u: %s", strchr(host, ':') ? "[" : "",
		          host, strchr(host, ':') ? "]" : "", port, strerror(e));
		close(fd);
		return -e;
	}
	slen = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &slen);
	*bound = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
	                                       : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

int admin_start(struct admin *a, const char *host, uint32_t port, const struct admin_source *src)
{
	int rc;

	memset(a, 0, sizeof(*a));
	a->listen_fd = a->wake_fd = -1;
	if (src == NULL || src->snapshot == NULL) {
		rc = -EINVAL;
		goto err;
	}
	a->src = *src;
	a->header_timeout_ms = src->header_timeout_ms ? src->header_timeout_ms : ADMIN_IDLE_MS;
	a->conns = mem_calloc(ADMIN_CONNS_MAX, sizeof(a->conns[0]));
	if (a->conns == NULL || admin_snapshot_alloc(&a->snap, src->nworkers) < 0) {
		rc = -ENOMEM;
		goto err;
	}
	for (int i = 0; i < ADMIN_CONNS_MAX; i++)
		a->conns[i].fd = -1;
	a->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (a->wake_fd < 0) {
		rc = -errno;
		goto err;
	}
	rc = listen_on(host, port, &a->port);
	if (rc < 0)
		goto err;
	a->listen_fd = rc;
	rc = -pthread_create(&a->thread, NULL, admin_main, a);
	if (rc < 0)
		goto err;
	a->running = true;
	return 0;
err:
	admin_stop(a);
	return rc;
}

void admin_stop(struct admin *a)
{
	if (a->running) {
		uint64_t one = 1;

		if (write(a->wake_fd, &one, sizeof(one)) < 0)
			log_warn("http: cannot wake the admin thread: %s", strerror(errno));
		pthread_join(a->thread, NULL);
		a->running = false;
	}
	if (a->listen_fd >= 0)
		close(a->listen_fd);
	if (a->wake_fd >= 0)
		close(a->wake_fd);
	a->listen_fd = a->wake_fd = -1;
	mem_free(a->conns);
	admin_snapshot_free(&a->snap);
	a->conns = NULL;
}
