/*
 * peer.c - the peer thread: Distro between the members of a cluster.
 *
 * One thread per node, beside the workers, owns every peer link. It is the
 * control plane and the batching point, never the data path of a single
 * request: workers hand it whole frames' worth of work over the cross-core
 * rings (it is participant `nworkers` there) and it hands back records to
 * apply (cluster/xmsg.h). It sleeps in epoll (links, the listener, an
 * eventfd the workers write once per loop when they queued something for
 * it) and wakes workers with MSG_RING from a small io_uring of its own.
 * What it publishes for the other threads is cluster/view.h; what it uses
 * of the server is the environment given at start (struct peer_env). The
 * concepts live one per file, listed in peer_internal.h.
 *
 * The loop, in this order, and why:
 *   1. epoll: accept, finish connects, read every readable link (bounded
 *      per link per loop) and dispatch its frames;
 *   2. retry the backlog to the workers, then decide whether to pause
 *      reading the links (workers behind: TCP slows the peers down);
 *   3. drain the workers' rings: sync batches go onto the links, write
 *      items onto the forward builders, finished parts back to peers;
 *   4. timers: pings, health (which may change the map and send a
 *      takeover), load and merge progress, a verify round, the confirming
 *      looks due, repair pulls, held fault frames;
 *   5. flush the forward builders (one FWD frame per owner per op per
 *      loop, whatever the number of requests) and stream served pulls;
 *   6. write every link with output, wake the workers we queued for, poll
 *      the epoch.
 * Reading before draining means a FWD_ACK read in (1) answers its pendings
 * in the same loop; flushing last means everything a loop produced leaves
 * in one send per link.
 *
 * Timers: --peer-ping, --peer-suspect, --peer-down (health.c),
 * --verify-interval (verify.c), --startup-wait (load.c), WAIT_TIMEOUT_MS
 * for forwards and pulls. The loop wakes at least every LOOP_WAIT_MS.
 */
#include "cluster/peer_internal.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

int64_t peer_now_ms(void)
{
	return clock_mono_us() / 1000;
}

uint64_t peer_wall_version(void)
{
	return (uint64_t)clock_wall_ms(NULL) << 16;
}

/* ---- talking to the workers ---- */

/*
 * A message for worker w. A pending (a request's part, an answer owed)
 * cannot be dropped: past the outbox's bound the node is broken beyond
 * repair. Records can: verify repairs them. (Takeovers do not come here:
 * health.c keeps one it cannot send and sends it again.)
 */
void peer_to_worker(struct peer *p, uint32_t w, void *msg)
{
	assert(w < p->env.nworkers);
	if (outbox_send(&p->out, w, msg))
		return;
	if (xmsg_kind(msg) == XM_PENDING) {
		log_error("the peer thread's backlog to the workers is full: cannot go on");
		abort();
	}
	log_error("the peer thread's backlog to the workers is full: a message dropped "
	          "(verify repairs it)");
	xmsg_release(msg);
}

static void send_wakes(struct peer *p)
{
	uint64_t m = outbox_take_wakes(&p->out);
	bool any = false;

	while (m && p->ring_ok) {
		uint32_t to = (uint32_t)__builtin_ctzll(m);
		struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);

		m &= m - 1;
		if (sqe == NULL) {
			io_uring_submit(&p->ring);
			sqe = io_uring_get_sqe(&p->ring);
			if (sqe == NULL)
				break;
		}
		/* The workers' rings stay open until peer_stop returned (server.c). */
		io_uring_prep_msg_ring(sqe, p->env.worker_ring_fds[to], 0, XMSG_WAKE_UD, 0);
		io_uring_sqe_set_data64(sqe, 0);
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		any = true;
	}
	if (any) {
		struct io_uring_cqe *cqe;

		io_uring_submit(&p->ring);
		while (io_uring_peek_cqe(&p->ring, &cqe) == 0) {
			/* Stopping: a worker whose thread has exited may refuse it (EOWNERDEAD). */
			if (cqe->res < 0 && !LOAD_ACQUIRE(&p->stop))
				log_error("waking a worker: %s", strerror(-cqe->res));
			io_uring_cqe_seen(&p->ring, cqe);
		}
	}
}

static void drain_workers(struct peer *p)
{
	void *msgs[256];

	for (uint32_t w = 0; w < p->env.nworkers; w++) {
		uint32_t n;

		while ((n = xcore_recv(p->env.xcore, w, p->idx, msgs, 256)) > 0) {
			for (uint32_t i = 0; i < n; i++) {
				switch (xmsg_kind(msgs[i])) {
				case XM_SYNC:
					sync_on_feed(p, msgs[i]);
					break;
				case XM_PENDING: {
					struct pending *pd = msgs[i];

					if (pd->origin == p->idx)
						forward_on_part(p, pd);
					else
						forward_on_pending(p, pd);
					break;
				}
				default:
					log_error("a worker sent the peer thread kind %u",
					          xmsg_kind(msgs[i]));
					abort();
				}
			}
		}
	}
}

/* ---- the loop ---- */

/*
 * This loop stood still longer than --peer-down: to the peers this node
 * was DOWN, they closed its links and took its slots. What waits in the
 * links (forwarded writes whose origin answered "unavailable" long ago,
 * syncs) is as old as the stall, so it is dropped unread, and the node
 * loads again before owning anything (load_restart).
 */
static void stalled(struct peer *p, int64_t gap, int64_t now)
{
	PSTAT_INC(p, stalls);
	log_warn("the peer loop stood still for %lld ms (past --peer-down %u): dropping its "
	         "links, loading again",
	         (long long)gap, p->cfg->peer_down_ms);
	for (uint32_t i = 0; i < LINKS_MAX; i++)
		link_close(p, &p->links[i], "this node stood still");
	p->now_ms = now; /* what the closes above answer is timed from now */
	load_restart(p, now);
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	struct epoll_event evs[64];

	epoch_register(store_epoch(p->env.store), &p->rec);
	p->start_ms = p->now_ms = peer_now_ms();
	p->writes_grace_ms = p->now_ms + p->cfg->peer_down_ms; /* links come up meanwhile */
	STORE_RELAXED(&p->view.loop_ms, p->now_ms);
	for (;;) {
		int n = epoll_wait(p->epfd, evs, 64, LOOP_WAIT_MS);
		int64_t now = peer_now_ms();
		bool stopping = LOAD_ACQUIRE(&p->stop);

		if (now - p->now_ms > (int64_t)p->cfg->peer_down_ms) {
			stalled(p, now - p->now_ms, now);
			n = 0; /* their events are for links now closed */
		}
		p->now_ms = now;
		/* Release, after stalled(): a worker that sees this time sees the map it left. */
		STORE_RELEASE(&p->view.loop_ms, now);
		for (int i = 0; i < n; i++) {
			void *ptr = evs[i].data.ptr;

			if (ptr == &p->listen_fd) {
				link_on_accept(p);
			} else if (ptr == &p->inotify_fd) {
				membership_on_inotify(p);
			} else if (ptr == &p->wake_fd) {
				uint64_t v;

				if (read(p->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					log_error("peer wake: %s", strerror(errno));
			} else {
				link_on_event(p, ptr, evs[i].events);
			}
		}
		outbox_retry(&p->out);
		link_reading_pause_check(p);
		drain_workers(p);
		if (stopping)
			break;
		if (now - p->last_ping_ms >= (int64_t)p->cfg->peer_ping_ms) {
			p->last_ping_ms = now;
			health_pings(p);
		}
		membership_step(p, now);
		link_accept_resume(p, now);
		if (!p->left) {
			health_check(p, now);
			load_progress(p, now);
		}
		load_merge_progress(p);
		if (p->ready && !p->need_merge &&
		    now - p->last_verify_ms >= (int64_t)p->cfg->verify_ms) {
			p->last_verify_ms = now;
			verify_round(p);
		}
		if (p->ready && !p->need_merge)
			verify_confirm_due(p, now);
		repair_schedule(p);
		fault_flush(p, now);
		forward_flush_all(p);
		for (uint16_t id = 1; id <= p->conf.n; id++)
			if (id != p->self)
				repair_serve_some(p, id);
		link_flush_all(p);
		send_wakes(p);
		epoch_poll(&p->rec);
	}
	for (uint32_t i = 0; i < LINKS_MAX; i++)
		link_close(p, &p->links[i], "stopping");
	send_wakes(p);
	epoch_unregister(&p->rec); /* before the store (and its epoch) goes */
	return NULL;
}

/* ---- setup ---- */

static int read_secret(struct peer *p, const struct server_config *cfg)
{
	const char *env = getenv("DISTRO_CLUSTER_SECRET");
	size_t n = 0;

	if (cfg->cluster_secret_file[0]) {
		FILE *f = fopen(cfg->cluster_secret_file, "rb");

		if (f == NULL) {
			log_error("--cluster-secret-file %s: %s", cfg->cluster_secret_file,
			          strerror(errno));
			return -1;
		}
		n = fread(p->secret, 1, sizeof(p->secret), f);
		fclose(f);
		while (n > 0 && (p->secret[n - 1] == '\n' || p->secret[n - 1] == '\r' ||
		                 p->secret[n - 1] == ' ' || p->secret[n - 1] == '\t'))
			n--; /* files made by hand end with a newline */
	} else if (env) {
		n = strlen(env) < sizeof(p->secret) ? strlen(env) : sizeof(p->secret);
		memcpy(p->secret, env, n);
	}
	if (n < AUTH_SECRET_MIN) {
		log_error("a cluster needs a shared secret of at least %d bytes "
		          "(--cluster-secret-file or DISTRO_CLUSTER_SECRET)",
		          AUTH_SECRET_MIN);
		return -1;
	}
	p->secret_len = n;
	return 0;
}

int peer_create(const struct server_config *cfg, uint32_t nworkers, struct peer **out)
{
	char err[256];
	struct peer *p;

	*out = NULL;
	if (cfg->cluster_conf[0] == '\0')
		return 0;
	p = mem_calloc(1, sizeof(*p));
	if (p == NULL)
		return -1;
	p->cfg = cfg;
	p->listen_fd = p->epfd = p->wake_fd = p->inotify_fd = -1;
	pthread_mutex_init(&p->conf_mu, NULL);
	if (members_load(cfg->cluster_conf, &p->conf, err, sizeof(err)) < 0) {
		log_error("--cluster-conf %s: %s", cfg->cluster_conf, err);
		mem_free(p);
		return -1;
	}
	if (membership_find_self(&p->conf, cfg) < 0 || read_secret(p, cfg) < 0) {
		mem_free(p);
		return -1;
	}
	if (p->conf.n <= 1) {
		log_info("%s lists only this node: standalone", cfg->cluster_conf);
		mem_free(p);
		return 0;
	}
	if (nworkers >= 64) { /* the peer thread is ring participant nworkers: 64-bit masks */
		log_error("a cluster member runs at most 63 workers (--workers %u)", nworkers);
		mem_free(p);
		return -1;
	}
	if (strcmp(cfg->peer_tls, "off") != 0 && ptls_init(&p->tls, p->secret, p->secret_len) < 0) {
		peer_destroy(p);
		return -1;
	}
	p->self = p->conf.self_id;
	p->conf_hash = members_hash(&p->conf);
	p->idx = nworkers;
	p->view.self = p->self;
	p->view.n = p->conf.n;
	/* Until health says otherwise; a node starting owns nothing anyway. */
	p->quorum = true;
	p->view.quorum = true;
	p->writable = true;
	p->view.writable = true;
	p->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)peer_now_ms() ^ p->self;
	for (uint32_t id = 0; id <= MEMBERS_MAX; id++)
		p->by_id[id].pulls.collect.slot = -1;
	/* Before the workers start: they write wake_fd from their first loop. */
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->epfd < 0 || p->wake_fd < 0) {
		log_error("peer thread: %s", strerror(errno));
		peer_destroy(p);
		return -1;
	}
	*out = p;
	return 0;
}

void peer_client_port_set(struct peer *p, uint16_t port)
{
	STORE_RELAXED(&p->view.client_port, (uint32_t)port);
}

void peer_store_hooks(struct peer *p, struct store_config *sc)
{
	sc->node_id = p->self; /* versions name their writer */
	sc->owns = peer_owns;
	sc->owns_ctx = p;
}

/* "host:port" or "[v6]:port" into host (sized as --peer-listen) and port (8 bytes). */
static int peer_listen_split(const char *s, char *host, char *port)
{
	const char *colon = strrchr(s, ':');
	size_t hl;

	if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) > 5)
		return -EINVAL;
	hl = (size_t)(colon - s);
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
		s++;
		hl -= 2;
	}
	memcpy(host, s, hl);
	host[hl] = '\0';
	snprintf(port, 8, "%s", colon + 1);
	return 0;
}

int peer_start(struct peer *p, const struct peer_env *env)
{
	const struct member *me = member_conf(p, p->self);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
		                  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	struct epoll_event ev = { .events = EPOLLIN };
	char port[8];
	int one = 1, rc;

	p->env = *env;
	p->cfg = env->cfg;
	outbox_init(&p->out, env->xcore, p->idx);
	char host[sizeof(p->cfg->peer_listen)];

	/* --peer-listen: where to listen when cluster.conf names another address (NAT, relay). */
	snprintf(host, sizeof(host), "%s", me->host);
	snprintf(port, sizeof(port), "%u", me->port);
	if (p->cfg->peer_listen[0] && peer_listen_split(p->cfg->peer_listen, host, port) < 0) {
		log_error("--peer-listen %s: need host:port", p->cfg->peer_listen);
		return -EINVAL;
	}
	if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0 || ai == NULL) {
		log_error("peer address %s:%s: %s", host, port, gai_strerror(rc));
		return -EINVAL;
	}
	p->listen_fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->listen_fd < 0 ||
	    setsockopt(p->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(p->listen_fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(p->listen_fd, 64) < 0) {
		rc = -errno;
		log_error("peer port %s: %s", me->addr, strerror(errno));
		freeaddrinfo(ai);
		return rc;
	}
	freeaddrinfo(ai);
	ev.data.ptr = &p->listen_fd;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->listen_fd, &ev) < 0)
		goto err_errno;
	ev.data.ptr = &p->wake_fd;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->wake_fd, &ev) < 0)
		goto err_errno;
	if ((p->resolver = mem_calloc(1, sizeof(*p->resolver))) == NULL)
		return -ENOMEM;
	if ((rc = resolver_start(p->resolver, &p->conf)) < 0) {
		log_error("peer thread: no resolver thread");
		return rc;
	}
	membership_watch(p);
	if ((rc = io_uring_queue_init(64, &p->ring, 0)) < 0) {
		log_error("peer thread io_uring: %s", strerror(-rc));
		return rc;
	}
	p->ring_ok = true;
	if (pthread_create(&p->thread, NULL, peer_main, p) != 0)
		return -EAGAIN;
	p->started = true;
	log_info("cluster member %u of %u, peer port %s (%s), %s", p->self, p->conf.n, me->addr,
	         p->tls.ctx ? "TLS 1.3, key from the cluster secret" : "plaintext: --peer-tls off",
	         "not READY until loaded");
	return 0;
err_errno:
	rc = -errno;
	log_error("peer thread epoll: %s", strerror(errno));
	return rc;
}

void peer_stop(struct peer *p)
{
	if (p == NULL || !p->started)
		return;
	STORE_RELEASE(&p->stop, 1);
	peer_wake(p);
	pthread_join(p->thread, NULL);
	p->started = false;
	if (p->resolver)
		resolver_stop(p->resolver);
}

void peer_backlog_drain(struct peer *p, void (*fn)(void *ctx, void *msg), void *ctx)
{
	if (p)
		outbox_drain(&p->out, fn, ctx);
}

void peer_destroy(struct peer *p)
{
	if (p == NULL)
		return;
	if (p->resolver) { /* started, but the thread never was (peer_start failed) */
		resolver_stop(p->resolver);
		mem_free(p->resolver);
	}
	outbox_free(&p->out);
	for (uint32_t id = 0; id <= MEMBERS_MAX; id++) {
		struct member_state *st = &p->by_id[id];

		fwd_member_free(&st->fwd);
		repair_member_free(st);
		fault_member_down(p, (uint16_t)id);
	}
	for (uint32_t i = 0; i < LINKS_MAX; i++)
		if (p->links[i].state != L_FREE) {
			close(p->links[i].fd);
			buf_free(&p->links[i].in);
			buf_free(&p->links[i].out);
			ptls_link_free(&p->links[i].tls);
		}
	ptls_free(&p->tls);
	if (p->ring_ok)
		io_uring_queue_exit(&p->ring);
	if (p->listen_fd >= 0)
		close(p->listen_fd);
	if (p->epfd >= 0)
		close(p->epfd);
	if (p->inotify_fd >= 0)
		close(p->inotify_fd);
	pthread_mutex_destroy(&p->conf_mu);
	if (p->wake_fd >= 0)
		close(p->wake_fd);
	mem_free(p); /* after the store: its epoch lists our record until it is destroyed */
}

const uint8_t *peer_secret(const struct peer *p, size_t *len)
{
	*len = p->secret_len;
	return p->secret;
}

void peer_reload_request(struct peer *p)
{
	STORE_RELEASE(&p->reload_req, 1u);
	peer_wake(p);
}

void peer_wake(struct peer *p)
{
	uint64_t one = 1;

	if (write(p->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error("waking the peer thread: %s", strerror(errno));
}
