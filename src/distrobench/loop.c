/*
 * loop.c - one distrobench client thread: raw protocol over io_uring.
 *
 * Why io_uring and not epoll: the client shares the machine with the node
 * it loads (two cores in our runs), so its cost per request is taken from
 * the server's throughput. With epoll every connection costs a recv and a
 * send system call per round trip, plus epoll_wait; here the thread queues
 * every send and recv it has for one loop and makes one io_uring_enter,
 * whatever the number of connections. Receives are multishot with a
 * provided buffer ring (as in the server, src/io/uring.h), so a connection
 * holds no receive buffer while idle and one armed recv lasts for as long as
 * buffers are available. The ring is created on this thread with
 * SINGLE_ISSUER and DEFER_TASKRUN where the kernel has them.
 *
 * Loop: read the clock; move open-loop connections whose time has come from
 * the timer heap to the ready list; for each ready connection encode the
 * frames it may send (closed loop: up to --pipeline in flight; open loop:
 * those whose intended time has passed, within --pipeline), re-arm its recv
 * if needed, and start one send of everything encoded; then submit and wait
 * (at most WAIT_MAX_NS, or until the next intended send), read the clock,
 * and handle every completion: parse whole answers straight from the
 * receive buffer (a frame split across buffers is carried in a per-
 * connection buffer), match each to its slot by request id (answers may
 * come out of order), check every item, record the latency, free the slot
 * and make the connection ready again.
 *
 * Request ids: slot index in the low 12 bits, the slot's use count in the
 * next 19; bit 31 marks a subscription's id (SUBSCRIBE answers and PUSH),
 * which indexes the connection's subscriptions. An answer matching no slot
 * in use, or of the wrong op, is an error and ends the connection, since
 * the frame it answers would otherwise hold its slot forever.
 *
 * Latency: closed loop from the moment the frame is encoded (just before
 * the send is submitted); open loop from the frame's intended time on the
 * connection's schedule (start + k * period), whether or not it could be
 * sent then. A connection whose pipeline is full keeps its schedule and
 * sends the late frames as soon as answers free slots, so queueing in the
 * node shows in the percentiles (no coordinated omission). Subscribe: from
 * the change's send time to each subscriber's first PUSH showing it.
 *
 * The window: a closed loop counts the answers that arrive in it; an open
 * loop counts the frames scheduled in it, sent even after its end and
 * answered within DRAIN_NS (those still unsent then are `unsent`), so the
 * slowest answers at the end are not cut off.
 *
 * Bounds: --pipeline frames in flight per connection (slots), at most
 * OUT_SOFT_BYTES encoded ahead of the socket, answers up to
 * FRAME_BYTES_MAX, the receive ring's size, and LOOP_PROBE_RING changes
 * remembered per service. A connection that breaks is not reopened: its
 * frames in flight count as errors and the others go on.
 *
 * The encoding is in encode.c, the answers in answer.c; loop_internal.h
 * holds the state they share.
 */
#include "distrobench/loop_internal.h"

static uint32_t pow2_at_least(uint32_t v)
{
	uint32_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

/* ---- the ready list and the timer heap ---- */

void loop_make_ready(struct loop *l, struct conn *c)
{
	if (c->in_ready)
		return;
	c->in_ready = true;
	l->ready[l->ready_n++] = (uint32_t)(c - l->conns);
}

static bool heap_less(struct loop *l, uint32_t a, uint32_t b)
{
	return l->conns[l->heap[a]].due_ns < l->conns[l->heap[b]].due_ns;
}

static void heap_swap(struct loop *l, uint32_t a, uint32_t b)
{
	uint32_t t = l->heap[a];

	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->conns[l->heap[a]].heap_pos = a;
	l->conns[l->heap[b]].heap_pos = b;
}

void loop_heap_push(struct loop *l, struct conn *c)
{
	uint32_t i = l->heap_n++;

	l->heap[i] = (uint32_t)(c - l->conns);
	c->heap_pos = i;
	c->in_heap = true;
	while (i > 0 && heap_less(l, i, (i - 1) / 2)) {
		heap_swap(l, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static struct conn *heap_pop(struct loop *l)
{
	struct conn *c = &l->conns[l->heap[0]];
	uint32_t i = 0;

	l->heap_n--;
	if (l->heap_n) {
		heap_swap(l, 0, l->heap_n);
		for (;;) {
			uint32_t m = i, a = 2 * i + 1, b = 2 * i + 2;

			if (a < l->heap_n && heap_less(l, a, m))
				m = a;
			if (b < l->heap_n && heap_less(l, b, m))
				m = b;
			if (m == i)
				break;
			heap_swap(l, i, m);
			i = m;
		}
	}
	c->in_heap = false;
	return c;
}

/* ---- accounting ---- */

/* Where an answer arriving now is counted: the window's stats or the scratch. */
struct bench_stats *loop_acc(struct loop *l)
{
	return in_window(l, l->now) ? &l->th->stats : &l->scratch;
}

void loop_check_done(struct loop *l, struct conn *c)
{
	bool done;

	if (c->done)
		return;
	switch (l->phase) {
	case PH_SETUP:
	case PH_TEARDOWN:
		done = c->dead || (c->setup_cur == c->setup_hi && c->inflight == 0 &&
		                   (c->g == NULL || l->phase == PH_TEARDOWN || c->g_ready));
		break;
	case PH_SUBSCRIBE:
		done = c->dead || c->subs_answered == c->subs_n;
		break;
	default:
		done = true;
		break;
	}
	if (done) {
		c->done = true;
		l->conns_done++;
	}
}

void loop_slot_free(struct loop *l, struct conn *c, struct slot *s)
{
	s->busy = false;
	c->free_slots[c->free_n++] = (uint16_t)(s - c->slots);
	c->inflight--;
	l->inflight--;
}

/* The connection broke: what it had in flight failed. */
void loop_conn_fail(struct loop *l, struct conn *c, int code)
{
	if (c->dead)
		return;
	c->dead = true;
	for (uint32_t i = 0; i < c->slots_n; i++) {
		struct slot *s = &c->slots[i];

		if (!s->busy)
			continue;
		if (s->kind == SK_SETUP || s->kind == SK_HELLO)
			__atomic_fetch_add(&l->sh->setup_errors, s->items, __ATOMIC_RELAXED);
		else if (s->kind != SK_TEARDOWN && s->kind != SK_SUB) { /* SUB: below */
			report_error(loop_acc(l), code, s->items);
			l->iv_errors += s->items;
		}
		loop_slot_free(l, c, s);
	}
	if (l->phase == PH_SUBSCRIBE)
		__atomic_fetch_add(&l->sh->setup_errors, c->subs_n - c->subs_answered,
		                   __ATOMIC_RELAXED);
	l->th->stats.conns_lost++;  /* counted whenever it happens */
	shutdown(c->fd, SHUT_RDWR); /* ends the armed recv; the fd is closed at exit */
	loop_check_done(l, c);
}

/* ---- io_uring ---- */

static void arm_recv(struct loop *l, struct conn *c)
{
	struct io_uring_sqe *sqe = uring_sqe(&l->ring);

	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BUF_GROUP;
	io_uring_sqe_set_data64(sqe, ud_make(UD_RECV, (uint32_t)(c - l->conns)));
	c->recv_armed = true;
}

void loop_submit_send(struct loop *l, struct conn *c)
{
	struct io_uring_sqe *sqe = uring_sqe(&l->ring);

	io_uring_prep_send(sqe, c->fd, c->sending.p + c->sending.off, buf_used(&c->sending),
	                   MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud_make(UD_SEND, (uint32_t)(c - l->conns)));
	c->send_busy = true;
}

static void flush(struct loop *l, struct conn *c)
{
	struct buf t = c->sending;

	c->sending = c->out;
	c->out = t;
	buf_clear(&c->out);
	loop_submit_send(l, c);
}

/* ---- the loop ---- */

/* Hands the progress figures to main: on each new tick, and when the run ends. */
static void publish(struct loop *l, bool force)
{
	uint32_t t = LOAD_ACQUIRE(&l->sh->tick);

	if (t == l->tick && !force)
		return;
	pthread_mutex_lock(&l->th->mu);
	hist_merge(&l->th->pub_hist, &l->iv);
	l->th->pub_ops = l->iv_ops;
	l->th->pub_errors = l->iv_errors;
	pthread_mutex_unlock(&l->th->mu);
	hist_reset(&l->iv);
	l->tick = t;
	STORE_RELEASE(&l->th->tick_seen, t);
}

/* One turn: timers, before-sleep work, submit and wait, completions. */
static void turn(struct loop *l)
{
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts;
	uint64_t wait = WAIT_MAX_NS;
	unsigned head, n = 0;

	l->now = clock_mono_ns();
	l->t_end = LOAD_RELAXED(&l->sh->t_end_ns);
	publish(l, false);
	while (l->heap_n && l->conns[l->heap[0]].due_ns <= l->now)
		loop_make_ready(l, heap_pop(l));
	while (l->ready_n) {
		struct conn *c = &l->conns[l->ready[--l->ready_n]];

		c->in_ready = false;
		loop_fill(l, c);
		if (c->dead)
			continue;
		if (!c->recv_armed)
			arm_recv(l, c);
		if (!c->send_busy && buf_used(&c->out))
			flush(l, c);
	}
	if (l->heap_n) {
		uint64_t due = l->conns[l->heap[0]].due_ns, tick = l->cfg->tick_us * 1000ull;

		if (tick && due > l->sh->t_start_ns) /* wake on the next tick at or after it */
			due = l->sh->t_start_ns +
			      (due - l->sh->t_start_ns + tick - 1) / tick * tick;

		wait = due > l->now ? due - l->now : 0;
		if (wait > WAIT_MAX_NS)
			wait = WAIT_MAX_NS;
	}
	if (l->phase == PH_RUN && !l->idle && l->now < l->t_end && l->t_end - l->now < wait)
		wait = l->t_end - l->now;
	ts.tv_sec = (long long)(wait / 1000000000ull);
	ts.tv_nsec = (long long)(wait % 1000000000ull);
	io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
	l->now = clock_mono_ns();
	io_uring_for_each_cqe(&l->ring, head, cqe)
	{
		loop_handle_cqe(l, cqe);
		n++;
	}
	io_uring_cq_advance(&l->ring, n);
}

static bool phase_over(struct loop *l)
{
	uint64_t drain;

	if (l->phase != PH_RUN)
		return l->conns_done == l->conns_n;
	if (l->now < l->t_end)
		return false;
	drain = l->cfg->workload == WL_SUBSCRIBE ? PUSH_DRAIN_NS : DRAIN_NS;
	if (l->now >= l->t_end + drain)
		return true;
	return l->cfg->workload != WL_SUBSCRIBE && l->inflight == 0;
}

/* Open loop: the frames whose intended time fell in the window but were never sent. */
static void count_unsent(struct loop *l)
{
	for (uint32_t i = 0; i < l->conns_n; i++) {
		struct conn *c = &l->conns[i];
		uint64_t from = c->due_ns > l->t_measure ? c->due_ns : l->t_measure;

		if (c->period_ns <= 0 || c->dead || from >= l->t_end)
			continue;
		l->th->stats.unsent += (uint64_t)((double)(l->t_end - from) / c->period_ns) + 1;
	}
}

static void run_phase(struct loop *l, enum bench_phase ph)
{
	l->phase = ph;
	l->idle = false;
	l->conns_done = 0;
	for (uint32_t i = 0; i < l->heap_n; i++)
		l->conns[l->heap[i]].in_heap = false;
	l->heap_n = 0;
	if (ph == PH_RUN) {
		l->t_measure = l->sh->t_measure_ns;
		l->t_end = LOAD_RELAXED(&l->sh->t_end_ns);
	}
	for (uint32_t i = 0; i < l->conns_n; i++) {
		struct conn *c = &l->conns[i];

		c->done = false;
		if (ph == PH_TEARDOWN) /* only populations that do not expire by themselves */
			c->setup_cur = l->plan->setup_per_target ? c->setup_lo : c->setup_hi;
		if (ph == PH_RUN && c->period_ns > 0) {
			/* Stagger the schedules so connections do not send in step. */
			c->due_rel_ns =
			        c->period_ns * (double)c->j /
			        (c->role == ROLE_WRITER ? plan_writers(l->plan) : l->cfg->conns);
			c->due_ns = l->sh->t_start_ns + (uint64_t)c->due_rel_ns;
		}
		loop_make_ready(l, c);
		loop_check_done(l, c);
	}
	do
		turn(l);
	while (!phase_over(l) && !LOAD_ACQUIRE(&l->sh->abort));
	l->idle = true;
	if (ph == PH_RUN) {
		count_unsent(l);
		publish(l, true); /* main reads the last figures once we have arrived */
	}
}

/* Says phase ph is done and serves the ring until main releases the next. */
static bool wait_go(struct loop *l, enum bench_phase ph)
{
	l->idle = true;
	STORE_RELEASE(&l->th->arrived, (uint32_t)ph + 1);
	while (LOAD_ACQUIRE(&l->sh->go) <= (uint32_t)ph) {
		if (LOAD_ACQUIRE(&l->sh->abort))
			return false;
		turn(l);
	}
	return !LOAD_ACQUIRE(&l->sh->abort);
}

/* ---- set-up and tear-down ---- */

static int conn_init(struct conn *c, uint32_t slots_n)
{
	c->fd = -1;
	c->slots_n = slots_n;
	c->slots = mem_calloc(slots_n, sizeof(c->slots[0]));
	c->free_slots = mem_alloc(sizeof(c->free_slots[0]) * slots_n);
	if (c->slots == NULL || c->free_slots == NULL)
		return -ERR_NOMEM;
	for (uint32_t i = 0; i < slots_n; i++)
		c->free_slots[i] = (uint16_t)(slots_n - 1 - i);
	c->free_n = slots_n;
	return 0;
}

static int conn_connect(struct loop *l, struct conn *c)
{
	const struct sockaddr_storage *sa =
	        c->g ? &l->sh->gaddrs[c->target] : &l->sh->addrs[c->target];
	socklen_t sa_len = c->g ? l->sh->gaddr_lens[c->target] : l->sh->addr_lens[c->target];
	int one = 1;

	c->fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	if (connect(c->fd, (const struct sockaddr *)sa, sa_len) < 0)
		return -errno;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

static int loop_init(struct loop *l, struct bench_thread *th)
{
	const struct bench_config *cfg = th->sh->cfg;
	const struct plan *plan = th->sh->plan;
	uint32_t load_n = (cfg->conns - th->id + cfg->threads - 1) / cfg->threads;
	bool grpc = cfg->proto == PROTO_GRPC;
	/* Writers: subscribe's changes; with gRPC also the binary setup of list and subscribe. */
	uint32_t writers_n =
	        cfg->workload == WL_SUBSCRIBE || plan_setup_by_writers(plan) ? cfg->targets_n : 0;
	uint32_t slots_n = cfg->pipeline > SETUP_PIPELINE ? cfg->pipeline : SETUP_PIPELINE;
	uint32_t subs_all = cfg->services * cfg->subscribers;
	uint32_t entries, bufs_n;
	const char *why = "";
	int rc;

	memset(l, 0, sizeof(*l));
	l->th = th;
	l->sh = th->sh;
	l->cfg = cfg;
	l->plan = plan;
	l->idle = true;
	hist_reset(&l->iv);
	report_stats_init(&l->scratch);
	l->conns_n = load_n + writers_n;
	l->conns = mem_calloc(l->conns_n, sizeof(l->conns[0]));
	l->ready = mem_alloc(sizeof(l->ready[0]) * l->conns_n);
	l->heap = mem_alloc(sizeof(l->heap[0]) * l->conns_n);
	if (l->conns == NULL || l->ready == NULL || l->heap == NULL)
		return -ERR_NOMEM;
	for (uint32_t k = 0; k < l->conns_n; k++) {
		struct conn *c = &l->conns[k];
		uint32_t hi;

		c->fd = -1;
		if (k < load_n) {
			c->j = th->id + k * cfg->threads;
			c->role = ROLE_LOAD;
			c->target = plan_target_of(plan, c->j);
			if (cfg->workload != WL_LIST && cfg->workload != WL_SUBSCRIBE &&
			    cfg->workload != WL_PING) {
				plan_share(plan, c->j, &c->lo, &hi);
				c->own = hi - c->lo;
			}
			plan_setup_share(plan, c->j, &c->setup_lo, &c->setup_hi);
			c->setup_cur = c->setup_lo;
			c->svc_cur = c->j % plan->services;
			c->rng = c->j + 1;
			c->period_ns =
			        cfg->workload == WL_SUBSCRIBE ? 0 : plan_period_ns(plan, c->j);
			if (cfg->workload == WL_SUBSCRIBE && subs_all > c->j) {
				c->subs_n = (subs_all - c->j + cfg->conns - 1) / cfg->conns;
				c->subs = mem_calloc(c->subs_n, sizeof(c->subs[0]));
				if (c->subs == NULL)
					return -ERR_NOMEM;
				for (uint32_t i = 0; i < c->subs_n; i++)
					c->subs[i].service =
					        (c->j + i * cfg->conns) % cfg->services;
			}
		} else {
			c->j = th->id * cfg->targets_n + (k - load_n);
			c->role = ROLE_WRITER;
			c->target = c->j % cfg->targets_n;
			if (cfg->workload == WL_SUBSCRIBE) {
				c->w_own = plan_writer_services(plan, c->j);
				c->period_ns = plan_writer_period_ns(plan, c->j);
			}
			plan_writer_setup_share(plan, c->j, &c->setup_lo, &c->setup_hi);
			c->setup_cur = c->setup_lo;
		}
		if (grpc && c->role == ROLE_LOAD) {
			rc = conn_init(c, slots_n > SUB_PIPELINE ? slots_n : SUB_PIPELINE);
			if (rc == 0)
				rc = gload_conn_init(l, c);
		} else {
			rc = conn_init(c, slots_n);
		}
		if (rc < 0)
			return rc;
	}
	if (grpc) {
		rc = gload_loop_init(l);
		if (rc < 0)
			return rc;
	}
	entries = pow2_at_least(2 * l->conns_n + 64);
	if (entries > RING_ENTRIES_MAX)
		entries = RING_ENTRIES_MAX;
	rc = uring_init(&l->ring, entries, &why);
	if (rc < 0) {
		snprintf(th->why, sizeof(th->why), "io_uring: %s (%s)", why, strerror(-rc));
		return rc;
	}
	l->ring_ok = true;
	bufs_n = pow2_at_least(4 * l->conns_n);
	if (bufs_n < RECV_BUFS_MIN)
		bufs_n = RECV_BUFS_MIN;
	if (bufs_n > RECV_BUFS_MAX)
		bufs_n = RECV_BUFS_MAX;
	rc = uring_bufs_init(&l->ring, &l->bufs, BUF_GROUP, bufs_n, bufs_n, RECV_BUF_BYTES);
	if (rc < 0) {
		snprintf(th->why, sizeof(th->why), "io_uring buffer ring: %s", strerror(-rc));
		return rc;
	}
	return 0;
}

static void loop_free(struct loop *l)
{
	if (l->ring_ok) {
		uring_bufs_free(&l->ring, &l->bufs);
		io_uring_queue_exit(&l->ring);
	}
	for (uint32_t k = 0; l->conns && k < l->conns_n; k++) {
		struct conn *c = &l->conns[k];

		if (c->fd >= 0)
			close(c->fd);
		buf_free(&c->carry);
		buf_free(&c->out);
		buf_free(&c->sending);
		gload_conn_free(c);
		mem_free(c->slots);
		mem_free(c->free_slots);
		mem_free(c->subs);
	}
	gload_loop_free(l);
	mem_free(l->conns);
	mem_free(l->ready);
	mem_free(l->heap);
}

void *loop_thread(void *arg)
{
	struct bench_thread *th = arg;
	struct loop *l = mem_calloc(1, sizeof(*l));
	const struct bench_config *cfg = th->sh->cfg;
	int rc;

	if (l == NULL) {
		th->rc = -ERR_NOMEM;
		snprintf(th->why, sizeof(th->why), "out of memory");
		STORE_RELEASE(&th->arrived, (uint32_t)PH_COUNT);
		return NULL;
	}
	rc = loop_init(l, th);
	for (uint32_t k = 0; rc == 0 && k < l->conns_n; k++) {
		struct conn *c = &l->conns[k];

		rc = conn_connect(l, c);
		if (rc < 0)
			snprintf(th->why, sizeof(th->why), "connect to %s:%u: %s",
			         cfg->targets[c->target].host, cfg->targets[c->target].port,
			         strerror(-rc));
	}
	if (rc < 0) {
		th->rc = rc;
		if (th->why[0] == '\0')
			snprintf(th->why, sizeof(th->why), "set-up failed: %s", err_str(rc));
		STORE_RELEASE(&th->arrived, (uint32_t)PH_COUNT);
		goto out;
	}
	if (!wait_go(l, PH_CONNECT))
		goto out;
	for (int ph = PH_SETUP; ph < PH_COUNT; ph++) {
		run_phase(l, (enum bench_phase)ph);
		if (!wait_go(l, (enum bench_phase)ph))
			break;
	}
out:
	loop_free(l);
	mem_free(l);
	return NULL;
}
