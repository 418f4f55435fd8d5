/*
 * worker.c - the per-core server loop and its connections.
 *
 * Thread per core. Worker i owns store shard i, its own io_uring (created on
 * its own thread), its own listening sockets on the shared client ports
 * (SO_REUSEPORT: the kernel spreads connections; accept.c), its own
 * connections and its own pools. Nothing here is shared between workers except the store
 * (read lock-free by everyone, written only by each shard's owner) and the
 * cross-core rings (shard/xcore.h), which each worker writes through its
 * own outbox (shard/outbox.h).
 *
 * Loop: submit and wait (bounded by a short timeout for the timers); reap
 * every completion (accepts, multishot receives from the provided buffer
 * ring, sends, wake-ups); give the buffer ring more if receives found it
 * empty while many connections had data (it starts small and grows on
 * demand to RECV_BUFS_MAX: every buffer given becomes resident,
 * io/uring.h; recv_bufs_check); then "before sleep": retry
 * the outbox, drain the inbound rings (other workers' requests, all of
 * them; the peer thread's records, APPLY_BUDGET per loop; the auth
 * thread's answers, authq.h), run heartbeat expiry and epoch
 * reclamation, the push pass (subs.c), the replica's budgeted work and
 * the feed to the peer thread (replica.c), flush every connection that
 * has output with one send, and wake each thread we queued messages for,
 * once.
 *
 * Connections live in a fixed table (bounded by --conns-max / workers).
 * user_data carries the operation, the slot and the slot's generation, so a
 * completion for a slot that was closed and reused is recognised and
 * dropped. A connection holds no input buffer unless a frame is split
 * across receives, and no output buffer when idle. Broken framing gets one
 * ERROR frame and the connection closes after it is sent; nothing another
 * connection holds is touched.
 *
 * Stalls. A loop that comes back after more than STALL_MS (the process was
 * stopped, the VM frozen) finds the world moved on: heartbeats could not
 * reach it, and its sockets hold requests whose clients gave up. So
 * (worker_stalled) the shard's deadlines move by the stall's length
 * (store_pause_credit: the paused time does not count against any
 * instance), and every connection open during the stall, or accepted just
 * after it, is asked whether its client is still there before its bytes
 * are run (TCP_INFO: a client that timed out and closed leaves the socket
 * in CLOSE_WAIT): a register queued behind a closed connection would
 * otherwise replay after the client re-sent it elsewhere and deregistered.
 * A client still waiting gets its answer. (The peer thread does its own
 * part: cluster/peer.c.) The clock is read again just before expiry and
 * that same reading judges the stall, the peer view's freshness and every
 * deadline (store_expire_at): a stop that lands anywhere in the loop's
 * work is credited before expiry looks, never after it has deleted.
 *
 * Shutdown: stop accepting and reading, finish every started request
 * (including parts run for other workers), flush, then exit once every
 * worker has drained, because a worker may still owe another one results.
 * The io_uring outlives the thread: the server closes it after the peer
 * thread stopped, so a late wake-up never lands on a closed (or reused)
 * descriptor.
 */
#include "server/worker_internal.h"

#include "cluster/peer.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "server/authq.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct worker *worker_at(struct server *s, uint32_t i)
{
	assert(i < s->nworkers);
	return &s->workers[i];
}

/* ---- connections ---- */

static void conn_mark_dirty(struct worker *w, uint32_t idx)
{
	struct conn *c = conn_at(w, idx);

	if (!c->dirty) {
		c->dirty = true;
		assert(w->dirty_n < w->conns_max);
		w->dirty[w->dirty_n++] = idx;
	}
}

static void conn_free_slot(struct worker *w, uint32_t idx)
{
	struct conn *c = conn_at(w, idx);

	subs_of_conn_end(w, c);
	nacos_conn_end(w, c);
	grpc_conn_end(w, c);
	close(c->fd);
	srclimit_put(&w->srv->sources, c->src_bucket);
	c->src_bucket = SRCLIMIT_NONE;
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->sending);
	c->fd = -1;
	c->partial_ms = 0;
	c->state = C_FREE;
	c->gen = (c->gen + 1) & UD_GEN_MASK; /* user_data carries 24 bits of it */
	c->next_free = w->conn_free;
	w->conn_free = idx;
	w->conns_used--;
	WSTAT_INC(w, conns_closed);
}

/* Starts closing; the slot is freed once no operation and no request holds it. */
void conn_close(struct worker *w, uint32_t idx)
{
	struct conn *c = conn_at(w, idx);

	if (c->state == C_OPEN) {
		c->state = C_CLOSING;
		shutdown(c->fd, SHUT_RDWR); /* ends the armed receive */
		if (c->kind == CONN_GRPC)
			grpc_conn_closing(
			        w, idx); /* its instances go (pending writes hold the slot) */
	}
	if (c->state == C_CLOSING && !c->recv_armed && !c->send_inflight && c->pending == 0 &&
	    !c->dirty)
		conn_free_slot(w, idx);
}

void conn_close_later(struct worker *w, uint32_t idx)
{
	conn_mark_dirty(w, idx); /* a dirty slot is not freed; flush closes it again */
	conn_close(w, idx);
}

/*
 * Room for n more output bytes; NULL closes the connection as too slow
 * (the slot freed by the flush, not now: the caller may be walking it).
 */
uint8_t *out_reserve(struct worker *w, uint32_t idx, uint32_t n)
{
	struct conn *c = conn_at(w, idx);

	if (!buf_reserve(&c->out, n, w->srv->cfg.out_bytes_max)) {
		WSTAT_INC(w, conns_slow_closed);
		log_warn("connection %u: output over %u bytes, closing", idx,
		         w->srv->cfg.out_bytes_max);
		conn_close_later(w, idx);
		return NULL;
	}
	conn_mark_dirty(w, idx);
	return c->out.p + c->out.len;
}

void out_commit(struct worker *w, uint32_t idx, uint32_t n)
{
	conn_at(w, idx)->out.len += n;
	WSTAT_ADD(w, bytes_out, n);
}

/* Sends an ERROR-shaped response: status = code, body = str message. */
void send_error(struct worker *w, uint32_t idx, uint8_t op, uint32_t id, int code)
{
	const char *msg = err_str(code);
	uint32_t mlen = (uint32_t)strlen(msg);
	uint8_t *p = out_reserve(w, idx, PROTO_HEADER_BYTES + 2 + mlen);

	if (p == NULL)
		return;
	proto_header_put(p, op, 2 + mlen, id, (uint16_t)(code < 0 ? -code : code), 0);
	p[PROTO_HEADER_BYTES] = (uint8_t)mlen;
	p[PROTO_HEADER_BYTES + 1] = (uint8_t)(mlen >> 8);
	memcpy(p + PROTO_HEADER_BYTES + 2, msg, mlen);
	out_commit(w, idx, PROTO_HEADER_BYTES + 2 + mlen);
}

void protocol_error(struct worker *w, uint32_t idx, uint32_t id, int code)
{
	WSTAT_INC(w, proto_errors);
	log_debug("connection %u: %s, closing", idx, err_str(code));
	send_error(w, idx, OP_ERROR, id, code);
	conn_at(w, idx)->close_after_flush = true;
}

void latency_record(struct worker *w, int64_t start_us)
{
	int64_t us = clock_mono_us() - start_us;
	int b = 0;

	while (b < WORKER_LAT_BUCKETS - 1 && us > worker_lat_bounds_us[b])
		b++;
	WSTAT_ADD(w, lat_count[b], 1);
	WSTAT_ADD(w, lat_sum_us, (uint64_t)(us < 0 ? 0 : us));
}

/* ---- cross-core ---- */

/*
 * Sends a message the worker has accepted (a request's part, an answer
 * owed): it cannot be dropped, so an outbox past its bound is fatal.
 */
void worker_send(struct worker *w, uint32_t to, void *msg)
{
	if (!outbox_send(&w->out, to, msg)) {
		log_error("out of memory for the cross-core backlog");
		abort(); /* dropping an accepted request is not an option */
	}
}

static void send_wakes(struct worker *w)
{
	uint64_t m = outbox_take_wakes(&w->out);

	STORE_RELAXED(&w->stats.xcore_sent, w->out.sent);
	STORE_RELAXED(&w->stats.xcore_full, w->out.full);
	while (m) {
		uint32_t to = (uint32_t)__builtin_ctzll(m);
		struct io_uring_sqe *sqe;

		m &= m - 1;
		if (to == w->srv->nworkers) { /* the peer thread sleeps in epoll */
			peer_wake(w->srv->peer);
			continue;
		}
		sqe = uring_sqe(&w->ring);
		io_uring_prep_msg_ring(sqe, worker_at(w->srv, to)->ring.ring_fd, 0,
		                       ud_make(UD_WAKE, 0, 0), 0);
		io_uring_sqe_set_data64(sqe, ud_make(UD_MSG, 0, 0));
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	}
}

static void drain_inbound(struct worker *w)
{
	uint32_t peer = w->srv->nworkers, budget = APPLY_BUDGET;
	void *msgs[256];

	/* Other workers' requests: small, all of them. */
	for (uint32_t from = 0; from < w->srv->nworkers; from++) {
		uint32_t n;

		if (from == w->id)
			continue;
		while ((n = xcore_recv(&w->srv->xcore, from, w->id, msgs, 256)) > 0)
			for (uint32_t i = 0; i < n; i++) {
				if (xmsg_kind(msgs[i]) == XM_UDP_SUB)
					nacos_push_on_sub(w, msgs[i]);
				else if (xmsg_kind(msgs[i]) == XM_UDP_LIST)
					nacos_push_on_list(w, msgs[i]);
				else
					ops_on_pending(w, msgs[i]);
			}
	}
	/*
	 * The peer thread's: records by the thousand, so a budget per loop.
	 * A repair's pruning runs before anything that came after it, so
	 * records that arrived after the owner's listing are never pruned by
	 * it (replica.c); it shares the budget, and many small repairs go in
	 * one loop.
	 */
	w->inbound_more = false;
	while (worker_clustered(w) && budget > 0) {
		void *m;

		if (w->replica.repairs && !replica_prune(w, &budget))
			break;
		if (xcore_recv(&w->srv->xcore, peer, w->id, &m, 1) == 0)
			return;
		if (xmsg_kind(m) == XM_PENDING) {
			ops_on_pending(w, m);
			continue;
		}
		if (xmsg_kind(m) != XM_TAKEOVER) {
			uint32_t n = ((struct xrecords *)m)->count;

			budget = n >= budget ? 0 : budget - n;
		}
		replica_on_message(w, m);
	}
	/* Maybe more (the budget ran out, or a repair holds them back): no sleep. */
	w->inbound_more = worker_clustered(w);
}

/* ---- input ---- */

/* Parses every complete frame in data; returns bytes consumed, or -1 to stop reading. */
static long parse_frames(struct worker *w, uint32_t idx, const uint8_t *data, size_t len)
{
	struct conn *c = conn_at(w, idx);
	size_t off = 0;

	while (off < len && c->state == C_OPEN && !c->close_after_flush && !c->auth_wait) {
		struct proto_header h;
		long n = proto_frame_check(data + off, len - off, w->srv->cfg.frame_bytes_max, &h);

		if (n < 0) {
			protocol_error(w, idx, 0, (int)n);
			return -1;
		}
		if (n == 0)
			break;
		ops_frame(w, idx, &h, data + off + PROTO_HEADER_BYTES);
		off += (size_t)n;
	}
	if (c->close_after_flush || c->state != C_OPEN)
		return -1;
	return (long)off;
}

static void on_data(struct worker *w, uint32_t idx, const uint8_t *data, size_t len)
{
	struct conn *c = conn_at(w, idx);
	size_t in_max = w->srv->cfg.frame_bytes_max + RECV_BUF_BYTES;
	long used;

	if (c->kind == CONN_NACOS) {
		nacos_on_data(w, idx, data, len);
		return;
	}
	if (c->kind == CONN_GRPC) {
		grpc_on_data(w, idx, data, len);
		return;
	}
	c->active_ms = w->now_ms;
	WSTAT_ADD(w, bytes_in, len);
	if (buf_used(&c->in) == 0) {
		used = parse_frames(w, idx, data, len);
		if (used < 0)
			return;
		/* Keep a partial frame; the receive buffer goes back to the kernel. */
		if ((size_t)used < len &&
		    !buf_append(&c->in, data + used, len - (size_t)used, in_max)) {
			conn_close(w, idx);
			return;
		}
		conn_partial_mark(w, c, true);
		return;
	}
	if (!buf_append(&c->in, data, len, in_max)) {
		conn_close(w, idx);
		return;
	}
	conn_resume_frames(w, idx);
}

/*
 * After input was handled: does the connection hold the start of a request
 * that is not whole yet (a binary frame, an HTTP head or body)? Then it has
 * --header-timeout from that start to send the rest (idle_sweep), however
 * slowly the bytes trickle in: that is what bounds a slowloris, which the
 * idle timeout (reset by every byte) cannot. progress: a request was
 * consumed, so what is left is a new one, whose clock starts now. Bytes that
 * wait on us (a request out on another worker, an AUTH's bcrypt) are not
 * the client's delay and do not count.
 */
void conn_partial_mark(struct worker *w, struct conn *c, bool progress)
{
	if (buf_used(&c->in) == 0 || c->pending > 0 || c->auth_wait)
		c->partial_ms = 0;
	else if (progress || c->partial_ms == 0)
		c->partial_ms = w->now_ms;
}

/* Parses the frames kept in conn.in (after a split frame, or an AUTH that waited). */
void conn_resume_frames(struct worker *w, uint32_t idx)
{
	struct conn *c = conn_at(w, idx);
	long used;

	if (buf_used(&c->in) == 0)
		return;
	used = parse_frames(w, idx, c->in.p + c->in.off, buf_used(&c->in));
	if (used < 0)
		return;
	buf_consume(&c->in, (size_t)used);
	if (buf_used(&c->in) == 0)
		buf_free(&c->in);
	conn_partial_mark(w, c, used > 0);
}

/* The auth thread's answers (server/authq.h): each resumes the connection it parked. */
static void drain_auth(struct worker *w)
{
	struct authq_job *jobs[64];
	uint32_t n;

	if (w->srv->authq == NULL)
		return;
	while ((n = authq_recv(w->srv->authq, w->id, jobs, 64)) > 0)
		for (uint32_t i = 0; i < n; i++) {
			if (jobs[i]->crypted)
				WSTAT_INC(w, auth_bcrypt);
			if (jobs[i]->kind == AUTHQ_HTTP)
				nacos_auth_done(w, jobs[i]);
			else
				ops_auth_done(w, jobs[i]);
			authq_job_put(w->srv->authq, w->id, jobs[i]);
		}
}

/* ---- io_uring operations ---- */

void conn_arm_recv(struct worker *w, uint32_t idx)
{
	struct conn *c = conn_at(w, idx);
	struct io_uring_sqe *sqe = uring_sqe(&w->ring);

	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BUF_GROUP;
	io_uring_sqe_set_data64(sqe, ud_make(UD_RECV, idx, c->gen));
	c->recv_armed = true;
}

static void submit_send(struct worker *w, uint32_t idx)
{
	struct conn *c = conn_at(w, idx);
	struct io_uring_sqe *sqe = uring_sqe(&w->ring);

	io_uring_prep_send(sqe, c->fd, c->sending.p + c->sending.off, buf_used(&c->sending),
	                   MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud_make(UD_SEND, idx, c->gen));
	c->send_inflight = true;
}

/* Is the client of this TCP connection still there (not closed, not reset)? */
static bool client_still_there(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
		return true; /* cannot tell: serve it, as before the stall */
	return ti.tcpi_state == TCP_ESTABLISHED;
}

static void on_recv(struct worker *w, struct io_uring_cqe *cqe)
{
	uint32_t idx = ud_idx(cqe->user_data);
	struct conn *c = conn_at(w, idx);
	bool more = cqe->flags & IORING_CQE_F_MORE;

	if (cqe->flags & IORING_CQE_F_BUFFER) {
		w->bufs_filled++;
		if (c->recv_loop != w->loop_seq) {
			c->recv_loop = w->loop_seq;
			w->bufs_conns++;
		}
	}
	if (c->gen != ud_gen(cqe->user_data) || c->state == C_FREE) {
		/* Stale (the slot was reused): still give its buffer back. */
		if (cqe->flags & IORING_CQE_F_BUFFER)
			uring_buf_recycle(&w->bufs,
			                  (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT));
		return;
	}
	if (!more)
		c->recv_armed = false;
	if (cqe->res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
		uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);

		if (c->stale_check && c->state == C_OPEN) {
			c->stale_check = false;
			if (!client_still_there(c->fd)) {
				/* Its client gave up during a stall: never run what it left. */
				WSTAT_INC(w, stale_dropped);
				uring_buf_recycle(&w->bufs, bid);
				conn_close(w, idx);
				return;
			}
		}
		if (c->state == C_OPEN && !w->stopping)
			on_data(w, idx, uring_buf(&w->bufs, bid), (size_t)cqe->res);
		uring_buf_recycle(&w->bufs, bid);
	}
	if (cqe->res == -ENOBUFS && c->state == C_OPEN) {
		/*
		 * Every buffer was out; they came back as we parsed, and the
		 * ring may get more before the next submit (recv_bufs_check).
		 * The data waits in the socket. Re-arm.
		 */
		WSTAT_INC(w, recv_nobufs);
		w->bufs_short = true;
		if (!more && !c->close_after_flush) /* as below: a closing one reads no more */
			conn_arm_recv(w, idx);
		return;
	}
	if (cqe->res <= 0 && cqe->res != -ENOBUFS) {
		conn_close(w, idx);
		return;
	}
	if (!more && c->state == C_OPEN && !c->close_after_flush)
		conn_arm_recv(w, idx);
	else if (c->state == C_CLOSING)
		conn_close(w, idx);
}

static void on_send(struct worker *w, struct io_uring_cqe *cqe)
{
	uint32_t idx = ud_idx(cqe->user_data);
	struct conn *c = conn_at(w, idx);

	if (c->gen != ud_gen(cqe->user_data) || c->state == C_FREE)
		return;
	c->send_inflight = false;
	if (cqe->res < 0) {
		conn_close(w, idx);
		return;
	}
	buf_consume(&c->sending, (size_t)cqe->res);
	if (buf_used(&c->sending) > 0 && c->state == C_OPEN) {
		submit_send(w, idx);
		return;
	}
	buf_clear(&c->sending);
	if (c->sending.cap > 4 * OUT_CHUNK)
		buf_free(&c->sending); /* a burst's big buffer does not stay */
	if (c->out.len > 0)
		conn_mark_dirty(w, idx);
	else if (c->close_after_flush)
		conn_close(w, idx);
	if (c->state == C_CLOSING)
		conn_close(w, idx);
}

/* One send per connection with output: swap the buffers, send the full one. */
static void flush(struct worker *w)
{
	for (uint32_t i = 0; i < w->dirty_n; i++) {
		uint32_t idx = w->dirty[i];
		struct conn *c = conn_at(w, idx);
		struct buf t;

		c->dirty = false;
		if (c->state == C_FREE)
			continue;
		if (c->send_inflight || c->out.len == 0) {
			if (c->state == C_CLOSING)
				conn_close(w, idx);
			continue;
		}
		if (c->state == C_CLOSING && !c->close_after_flush) {
			conn_close(w, idx);
			continue;
		}
		t = c->sending;
		c->sending = c->out;
		c->out = t;
		buf_clear(&c->out);
		submit_send(w, idx);
	}
	w->dirty_n = 0;
}

/*
 * Closes connections silent past --idle-timeout, and those holding the start
 * of a request that did not arrive whole within --header-timeout
 * (conn_partial_mark). O(slots); runs every SWEEP_MS at most.
 */
static void idle_sweep(struct worker *w)
{
	uint32_t idle = w->srv->cfg.idle_timeout_ms;
	int64_t header = w->srv->cfg.header_timeout_ms;

	for (uint32_t i = 0; i < w->conns_max; i++) {
		struct conn *c = conn_at(w, i);

		if (c->state != C_OPEN)
			continue;
		if (c->partial_ms && w->now_ms - c->partial_ms >= header) {
			WSTAT_INC(w, conns_header_closed);
			conn_close(w, i);
			continue;
		}
		/* A subscriber may rightly be silent: it waits for pushes. */
		if (idle && c->pending == 0 && c->subs == NULL &&
		    w->now_ms - c->active_ms >= idle) {
			WSTAT_INC(w, conns_idle_closed);
			conn_close(w, i);
		}
	}
}

static bool drained(struct worker *w)
{
	if (w->pendings_n > 0 || outbox_backlog(&w->out) > 0)
		return false;
	for (uint32_t i = 0; i < w->conns_max; i++) {
		struct conn *c = conn_at(w, i);

		if (c->state != C_FREE && (c->send_inflight || c->out.len > 0 || c->pending))
			return false;
	}
	return true;
}

static void begin_stop(struct worker *w)
{
	w->stopping = true;
	accept_stop(w);
	grpc_stop(w);
}

static void close_all(struct worker *w)
{
	for (uint32_t i = 0; i < w->conns_max; i++)
		if (conn_at(w, i)->state == C_OPEN)
			conn_close(w, i);
}

static void count_batch(struct worker *w, unsigned n)
{
	WSTAT_ADD(w, cqes, n);
	WSTAT_INC(w, loops);
	if (n > 0) {
		int b = 31 - __builtin_clz(n);

		if (b >= WORKER_BATCH_BUCKETS)
			b = WORKER_BATCH_BUCKETS - 1;
		WSTAT_ADD(w, batch_count[b], 1);
	}
}

/*
 * After a reap: the buffers this loop's completions filled were all out
 * with us at once (with DEFER_TASKRUN the kernel fills them only inside
 * the wait; we hand each back as it is parsed), so their number is the
 * ring's high-water mark.
 *
 * When a receive found the ring empty, more buffers (io/uring.h: doubling,
 * up to RECV_BUFS_MAX) help only if the ring is short of connections:
 * most of them had a buffer each, and others found none. If instead a few
 * connections took several buffers each (a client writing faster than we
 * parse: a bulk registration, a loop that was descheduled), more buffers
 * would only move bytes from their sockets into our memory, where they
 * wait just the same; the rest of their data waits in the socket, under
 * TCP's flow control, and comes in the next loops. So the ring grows only
 * when the buffers filled were spread over at least half as many
 * connections: a storm of active connections, not a fast writer.
 */
static void recv_bufs_check(struct worker *w)
{
	if (w->bufs_filled > w->stats.recv_bufs_peak)
		STORE_RELAXED(&w->stats.recv_bufs_peak, (uint64_t)w->bufs_filled);
	if (w->bufs_short && 2 * w->bufs_conns >= w->bufs.given && uring_bufs_grow(&w->bufs) > 0) {
		STORE_RELAXED(&w->stats.recv_bufs, (uint64_t)w->bufs.given);
		log_info("worker %u: receive buffers ran out over %u connections: %u now (at most "
		         "%u)",
		         w->id, w->bufs_conns, w->bufs.given, w->bufs.count);
	}
	w->bufs_filled = w->bufs_conns = 0;
	w->bufs_short = false;
	w->loop_seq++;
}

static void worker_stalled(struct worker *w, int64_t gap)
{
	uint32_t moved = store_pause_credit(w->shard, gap);

	WSTAT_INC(w, stalls);
	for (uint32_t i = 0; i < w->conns_max; i++)
		if (conn_at(w, i)->state == C_OPEN)
			conn_at(w, i)->stale_check = true;
	w->stall_until_ms = w->now_ms + STALL_MS; /* connections the kernel accepted meanwhile */
	log_warn("worker %u: the loop stood still for %lld ms: %u deadlines moved by as much, "
	         "connections checked before their queued requests run",
	         w->id, (long long)gap, moved);
}

/*
 * Reads the clock into w->now_ms; a gap past STALL_MS since the last
 * reading is a stall, credited before anything that judges deadlines
 * runs. Called at the top of the loop and again just before expiry.
 */
static int64_t worker_clock(struct worker *w)
{
	int64_t prev = w->now_ms;

	w->now_ms = clock_mono_ms(NULL);
	if (w->now_ms - prev > STALL_MS)
		worker_stalled(w, w->now_ms - prev);
	return w->now_ms;
}

static void loop(struct worker *w)
{
	struct server *s = w->srv;
	struct __kernel_timespec ts = { 0, WAIT_MS * 1000000LL };
	int64_t stop_deadline = 0;
	/* A quarter of --header-timeout, so a late request is closed within 1.25x of it. */
	int64_t sweep_ms =
	        s->cfg.header_timeout_ms / 4 < 1000 ? s->cfg.header_timeout_ms / 4 : 1000;

	for (;;) {
		struct io_uring_cqe *cqe, *wait;
		unsigned head, n = 0;
		bool more_work;
		int64_t push_next;
		int64_t now;
		int rc;

		rc = io_uring_submit_and_wait_timeout(&w->ring, &wait, 1, &ts, NULL);
		if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY)
			log_error("io_uring wait: %s", strerror(-rc));
		worker_clock(w); /* a stall is credited before anything it queued runs */
		io_uring_for_each_cqe(&w->ring, head, cqe)
		{
			n++;
			switch (ud_op(cqe->user_data)) {
			case UD_ACCEPT:
				accept_on_cqe(w, cqe);
				break;
			case UD_RECV:
				on_recv(w, cqe);
				break;
			case UD_SEND:
				on_send(w, cqe);
				break;
			case UD_UDP_SEND:
			case UD_UDP_RECV:
				nacos_push_on_cqe(w, cqe);
				break;
			case UD_MSG:
				if (cqe->res < 0)
					log_error("msg_ring: %s", strerror(-cqe->res));
				break;
			case UD_WAKE:
			default:
				break;
			}
		}
		io_uring_cq_advance(&w->ring, n);
		count_batch(w, n);
		recv_bufs_check(w);

		/* Before sleep. */
		outbox_retry(&w->out);
		drain_inbound(w);
		drain_auth(w);
		now = worker_clock(w); /* one reading for the view's age and every deadline */
		if (!worker_clustered(w) || peer_view_fresh(s->peer, now, s->cfg.peer_down_ms))
			store_expire_at(w->shard, s->cfg.expire_budget, now);
		store_poll(w->shard);
		if (w->now_ms - w->last_sweep_ms >= sweep_ms) {
			w->last_sweep_ms = w->now_ms;
			idle_sweep(w);
		}
		if (w->watches && w->now_ms - w->last_push_ms >= (int64_t)s->cfg.push_window_ms) {
			w->last_push_ms = w->now_ms;
			subs_push(w);
		}
		subs_reap(w);
		grpc_step(w);
		push_next = nacos_push_step(w);
		more_work = worker_clustered(w) && replica_step(w);
		if (accept_some(w))
			more_work = true;
		if (worker_clustered(w))
			replica_sync_out(w);
		flush(w);
		send_wakes(w);
		/* Subscribers need a look every push window; otherwise sleep longer. */
		ts.tv_nsec =
		        (w->watches && s->cfg.push_window_ms < WAIT_MS ? (long)s->cfg.push_window_ms
		                                                       : WAIT_MS) *
		        1000000L;
		if (push_next >= 0 && push_next * 1000000L < ts.tv_nsec)
			ts.tv_nsec = (long)push_next * 1000000L;
		if (w->inbound_more || more_work)
			ts.tv_nsec = 0;
		/* Changes waiting for the peers: back within the sync window. */
		if (worker_clustered(w) && store_feed_len(w->shard) > 0 &&
		    (long)s->cfg.sync_window_ms * 1000000L < ts.tv_nsec)
			ts.tv_nsec = (long)s->cfg.sync_window_ms * 1000000L;
		accept_arm(w);

		if (!w->stopping && LOAD_ACQUIRE(&s->stop)) {
			begin_stop(w);
			stop_deadline = w->now_ms + 5000;
		}
		if (w->stopping && !w->done && (drained(w) || w->now_ms > stop_deadline)) {
			w->done = true;
			__atomic_add_fetch(&s->n_done, 1, __ATOMIC_ACQ_REL);
		}
		if (w->done && LOAD_ACQUIRE(&s->n_done) == s->nworkers) {
			close_all(w);
			break;
		}
	}
	/* Let in-flight operations of closed connections finish. */
	for (int tries = 0; tries < 20 && w->conns_used > 0; tries++) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
		io_uring_for_each_cqe(&w->ring, head, cqe)
		{
			n++;
			if (ud_op(cqe->user_data) == UD_RECV)
				on_recv(w, cqe);
			else if (ud_op(cqe->user_data) == UD_SEND)
				on_send(w, cqe);
		}
		io_uring_cq_advance(&w->ring, n);
		flush(w);
	}
}

/* ---- start, stop ---- */

void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct server *s = w->srv;
	const char *why = "";
	char name[16];
	int rc;

	snprintf(name, sizeof(name), "worker-%u", w->id);
	log_thread_name(name);
	rc = uring_init(&w->ring, RING_ENTRIES, &why);
	if (rc == 0) {
		rc = uring_bufs_init(&w->ring, &w->bufs, BUF_GROUP, RECV_BUFS_MAX, RECV_BUFS_START,
		                     RECV_BUF_BYTES);
		if (rc < 0) {
			why = "cannot register the receive buffer ring";
			io_uring_queue_exit(&w->ring);
		} else {
			STORE_RELAXED(&w->stats.recv_bufs, (uint64_t)w->bufs.given);
		}
	}
	if (rc < 0) {
		log_error("%s: %s", why, strerror(-rc));
		__atomic_store_n(&s->start_rc, rc, __ATOMIC_RELEASE);
	} else {
		w->ring_ok = true; /* closed by worker_free, after the peer thread stopped */
		s->ring_fds[w->id] = w->ring.ring_fd;
	}
	pthread_barrier_wait(&s->ready);
	if (LOAD_ACQUIRE(&s->start_rc) < 0)
		return NULL;
	w->now_ms = clock_mono_ms(NULL);
	w->last_sweep_ms = w->now_ms;
	if ((rc = nacos_push_start(w)) < 0)
		log_warn("Nacos UDP push unavailable on this worker: %s", strerror(-rc));
	accept_arm(w);
	loop(w);
	/* The buffer ring is unregistered by its issuer; the ring itself stays (worker_free). */
	uring_bufs_free(&w->ring, &w->bufs);
	log_debug("stopped");
	return NULL;
}

int worker_init(struct server *s, struct worker *w, uint32_t id)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->srv = s;
	for (uint32_t k = 0; k < WORKER_LISTENERS; k++)
		w->listeners[k].fd = -1;
	w->shard = store_shard(s->store, id);
	w->rec = store_shard_rec(w->shard);
	w->conns_max = (s->cfg.conns_max + s->nworkers - 1) / s->nworkers;
	w->conns = mem_calloc(w->conns_max, sizeof(w->conns[0]));
	w->dirty = mem_alloc(sizeof(w->dirty[0]) * w->conns_max);
	w->views_cap = 1024;
	w->views = mem_alloc(sizeof(w->views[0]) * w->views_cap);
	if (!w->conns || !w->dirty || !w->views)
		return -ENOMEM;
	w->conn_free = UINT32_MAX;
	for (uint32_t i = w->conns_max; i-- > 0;) {
		w->conns[i].fd = -1;
		w->conns[i].src_bucket = SRCLIMIT_NONE;
		w->conns[i].next_free = w->conn_free;
		w->conn_free = i;
	}
	pool_init(&w->pendings, PENDING_INLINE);
	outbox_init(&w->out, &s->xcore, id);
	if (nacos_init(w) < 0 || grpc_init(w) < 0)
		return -ENOMEM;
	return subs_init(w);
}

void worker_free(struct worker *w)
{
	if (w->conns) {
		for (uint32_t i = 0; i < w->conns_max; i++)
			if (w->conns[i].state != C_FREE)
				conn_free_slot(w, i);
	}
	accept_stop(w);
	if (w->ring_ok) {
		uring_bufs_free(&w->ring, &w->bufs);
		io_uring_queue_exit(&w->ring);
		w->ring_ok = false;
	}
	mem_free(w->conns);
	mem_free(w->dirty);
	mem_free(w->views);
	outbox_free(&w->out);
	pool_destroy(&w->pendings);
	subs_free(w);
	replica_free(w);
	nacos_push_stop(w);
	nacos_free(w);
	grpc_free(w);
}
