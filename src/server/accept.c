/*
 * accept.c - a worker's listeners: readiness, accepting within a budget,
 * and setting up each accepted connection.
 *
 * Every worker listens on each client port itself (SO_REUSEPORT: the
 * kernel spreads connections): the binary protocol, the Nacos HTTP port
 * and the Nacos gRPC port, one struct listener each (worker.h), indexed by
 * enum conn_kind, fd -1 when the port is not served. A connection's kind
 * is the listener that accepted it and decides who parses its bytes
 * (worker.c on_data).
 *
 * Readiness, not accepts, comes from the ring: a multishot poll per
 * listener (the user_data idx says which). A multishot accept would accept
 * every waiting connection in one go, on this thread, before any other
 * completion is seen: 5,000 connects at once stall the loop for tens of
 * ms. So the poll only says "connections wait", and accept_some takes at
 * most ACCEPT_BUDGET per loop, over all listeners.
 *
 * The bounds every port shares are checked here, before a connection gets
 * a slot: the worker's share of --conns-max, --conns-per-source (one count
 * across the ports), and the per-kind state (an HTTP parser, an HTTP/2
 * session) that can run out.
 */
#include "server/worker_internal.h"

#include "core/err.h"
#include "core/log.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void arm_one(struct worker *w, enum conn_kind kind)
{
	struct io_uring_sqe *sqe = uring_sqe(&w->ring);

	io_uring_prep_poll_multishot(sqe, w->listeners[kind].fd, POLLIN);
	io_uring_sqe_set_data64(sqe, ud_make(UD_ACCEPT, kind, 0));
	w->listeners[kind].armed = true;
}

void accept_arm(struct worker *w)
{
	if (w->stopping)
		return;
	for (uint32_t k = 0; k < WORKER_LISTENERS; k++)
		if (!w->listeners[k].armed && w->listeners[k].fd >= 0)
			arm_one(w, (enum conn_kind)k);
}

/*
 * Sets up one accepted connection: the checks that can refuse it (slots,
 * --conns-per-source, the kind's own state), its slot, its first receive.
 * Two syscalls (getpeername, setsockopt) besides the accept, and the
 * receive's share of the next submit: accept_some bounds how many run per
 * loop.
 */
static void conn_setup(struct worker *w, int fd, enum conn_kind kind)
{
	struct srclimit *src = &w->srv->sources;
	uint64_t key;
	int64_t bucket;
	uint32_t idx;
	struct conn *c;
	int one = 1;

	if (w->stopping || w->conn_free == UINT32_MAX) {
		WSTAT_INC(w, conns_refused);
		close(fd);
		return;
	}
	bucket = SRCLIMIT_NONE;
	if (src->max) {
		key = srclimit_key_of_fd(fd);
		if (key == 0) { /* gone already (reset before we got to it) */
			close(fd);
			return;
		}
		bucket = srclimit_take(src, key);
		if (bucket < 0) {
			WSTAT_INC(w, conns_source_refused);
			close(fd);
			return;
		}
	}
	idx = w->conn_free;
	c = conn_at(w, idx);
	c->kind = (uint8_t)kind;
	c->http = NULL;
	c->grpc = NULL;
	c->fd = fd;
	if ((kind == CONN_NACOS && !nacos_conn_open(w, c)) ||
	    (kind == CONN_GRPC && !grpc_conn_open(w, idx))) {
		WSTAT_INC(w, conns_refused);
		srclimit_put(src, (uint32_t)bucket);
		c->fd = -1;
		close(fd);
		return;
	}
	w->conn_free = c->next_free;
	w->conns_used++;
	c->src_bucket = (uint32_t)bucket;
	c->partial_ms = 0;
	c->state = C_OPEN;
	c->recv_armed = c->send_inflight = c->dirty = c->close_after_flush = false;
	c->authed = c->auth_wait = false;
	c->stale_check = w->now_ms < w->stall_until_ms;
	c->pending = 0;
	c->subs = NULL;
	c->active_ms = w->now_ms;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	WSTAT_INC(w, conns_accepted);
	if (kind == CONN_GRPC)
		grpc_conn_started(w, idx); /* its SETTINGS go first; the preface has a deadline */
	conn_arm_recv(w, idx);
}

/*
 * Accepts and sets up at most ACCEPT_BUDGET connections, over every
 * listener that polled ready. A connection storm (thousands of connects
 * at once) then costs each loop a bounded slice, so the established
 * connections' completions are answered after at most that much accept
 * work. A listener stays marked ready until accept says EAGAIN; the poll
 * marks it again when a new connection comes. Out of descriptors (or
 * another accept failure): accepting pauses ACCEPT_PAUSE_MS instead of
 * spinning on it, logged at most once a second. True when connections may
 * still wait (the loop must not sleep).
 */
bool accept_some(struct worker *w)
{
	uint32_t budget = ACCEPT_BUDGET;
	bool more = false;

	if (w->stopping || w->now_ms < w->accept_resume_ms)
		return false;
	for (uint32_t k = 0; k < WORKER_LISTENERS; k++) {
		struct listener *l = &w->listeners[k];

		while (l->ready && budget > 0 && l->fd >= 0) {
			int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0) {
				budget--;
				conn_setup(w, fd, (enum conn_kind)k);
				continue;
			}
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			l->ready = false;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			WSTAT_INC(w, accept_errors);
			w->accept_resume_ms = w->now_ms + ACCEPT_PAUSE_MS;
			l->ready = true; /* try again after the pause */
			if (w->now_ms - w->accept_log_ms >= 1000) {
				w->accept_log_ms = w->now_ms;
				log_warn("accept: %s (pausing accepts for %d ms)", strerror(errno),
				         ACCEPT_PAUSE_MS);
			}
			return false;
		}
	}
	if (budget == 0)
		WSTAT_INC(w, accepts_deferred);
	for (uint32_t k = 0; k < WORKER_LISTENERS; k++)
		more = more || (w->listeners[k].ready && w->listeners[k].fd >= 0);
	return more;
}

/* A listener's poll fired: connections wait for accept_some. */
void accept_on_cqe(struct worker *w, struct io_uring_cqe *cqe)
{
	uint32_t k = ud_idx(cqe->user_data);
	struct listener *l;

	if (k >= WORKER_LISTENERS)
		return;
	l = &w->listeners[k];
	if (!(cqe->flags & IORING_CQE_F_MORE))
		l->armed = false;
	if (cqe->res < 0) {
		if (cqe->res != -ECANCELED && !w->stopping)
			log_warn("poll on a listener: %s", strerror(-cqe->res));
		return;
	}
	l->ready = true;
}

void accept_stop(struct worker *w)
{
	for (uint32_t k = 0; k < WORKER_LISTENERS; k++) {
		struct listener *l = &w->listeners[k];

		if (l->fd >= 0) {
			shutdown(l->fd, SHUT_RDWR);
			close(l->fd);
			l->fd = -1;
		}
	}
}
