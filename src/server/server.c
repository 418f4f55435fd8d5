/*
 * server.c - the server's life cycle: the store, the rings, the workers
 * and, in a cluster, the peer thread, started and stopped in an order that
 * keeps every contract between them.
 *
 * Start: the peer (cluster.conf, the secret; it sets the store's node id
 * and expiry hook), the store, the rings (nworkers participants, one more
 * for the peer thread), the workers' memory and listening sockets (the
 * first resolves port 0, the others join it with SO_REUSEPORT), the worker
 * threads (each creates its io_uring; a barrier waits for all of them),
 * then the peer thread with its environment (struct peer_env: the store,
 * the rings, the workers' ring fds).
 *
 * Authentication (--auth-users): the users file is loaded before anything
 * else that can fail late, so a bad line stops the start with its line
 * number; in a cluster the token key is derived from the cluster secret
 * (nauth_set_secret), so a token issued by one member verifies on all of
 * them. The auth thread (authq.h) starts once the workers' rings exist and
 * stops right after the workers: a draining worker waits for its jobs.
 *
 * Stop: the workers drain and exit first (their forwarded writes need the
 * peer thread's answers), then the peer thread; only then are the
 * workers' rings closed (worker_free), so the peer thread never wakes a
 * closed or reused descriptor. Messages still on the rings or in the
 * outboxes are freed once each (drop_messages), then the pools, the store,
 * and last the peer (its epoch record outlives the store's epoch).
 */
#include "server/server.h"

#include "server/authq.h"

#include "cluster/peer.h"
#include "cluster/xmsg.h"
#include "core/atomic.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "http/admin.h"
#include "server/worker_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int listen_socket(const struct server_config *cfg, uint16_t port, uint16_t *bound)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, cfg->bind, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		slen = sizeof(*a);
	} else if (inet_pton(AF_INET6, cfg->bind, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		slen = sizeof(*a);
	} else {
		log_error("--bind %s: not an IPv4 or IPv6 address", cfg->bind);
		return -EINVAL;
	}
	/* Non-blocking: the workers accept until EAGAIN (worker.c, accept_some). */
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, slen) < 0 || listen(fd, 4096) < 0) {
		int e = -errno;

		log_error("cannot listen on %s:%u: %s", cfg->bind, port, strerror(errno));
		close(fd);
		return e;
	}
	if (bound) {
		slen = sizeof(ss);
		getsockname(fd, (struct sockaddr *)&ss, &slen);
		*bound = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
		                                       : ((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return fd;
}

/* ---- messages left at shutdown ---- */

struct msg_set {
	void **v;
	uint32_t n, cap;
};

static void msg_set_add(void *ctx, void *m)
{
	struct msg_set *set = ctx;

	if (set->n == set->cap) {
		uint32_t c = set->cap ? set->cap * 2 : 256;
		void **nv = mem_alloc(sizeof(nv[0]) * c);

		if (nv == NULL)
			return; /* shutdown: a leak, not a crash */
		if (set->n)
			memcpy(nv, set->v, sizeof(nv[0]) * set->n);
		mem_free(set->v);
		set->v = nv;
		set->cap = c;
	}
	set->v[set->n++] = m;
}

static int ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;

	return x < y ? -1 : x > y;
}

/*
 * After every thread stopped, before the workers' pools go: frees the
 * messages left on the rings and in the outboxes. One pending can be in
 * several places (sent to every shard it touches), so each message is
 * freed once, whatever its count.
 */
static void drop_messages(struct server *s)
{
	struct msg_set set = { 0 };
	void *msgs[256];

	if (s->xcore.q == NULL)
		return;
	for (uint32_t from = 0; from < s->xcore.n; from++)
		for (uint32_t to = 0; to < s->xcore.n; to++) {
			uint32_t k;

			while (from != to && (k = xcore_recv(&s->xcore, from, to, msgs, 256)) > 0)
				for (uint32_t i = 0; i < k; i++)
					msg_set_add(&set, msgs[i]);
		}
	for (uint32_t w = 0; s->workers && w < s->nworkers; w++)
		outbox_drain(&s->workers[w].out, msg_set_add, &set);
	peer_backlog_drain(s->peer, msg_set_add, &set);
	if (set.n > 1)
		qsort(set.v, set.n, sizeof(set.v[0]), ptr_cmp);
	for (uint32_t i = 0; i < set.n; i++) {
		if (i > 0 && set.v[i] == set.v[i - 1])
			continue;
		if (xmsg_kind(set.v[i]) == XM_PENDING) {
			struct pending *pd = set.v[i];

			if (pd->origin == s->nworkers)
				mem_free(pd); /* the peer thread's: one allocation */
			else if (pd->heap)
				mem_free(pd->results); /* the pool object goes with the pool */
		} else {
			xmsg_release(set.v[i]);
		}
	}
	mem_free(set.v);
}

static void server_free(struct server *s)
{
	drop_messages(s); /* before the pools: pendings on the rings live in them */
	if (s->workers) {
		for (uint32_t i = 0; i < s->nworkers; i++)
			worker_free(&s->workers[i]);
		mem_free(s->workers);
		s->workers = NULL;
	}
	mem_free(s->ring_fds);
	s->ring_fds = NULL;
	xcore_free(&s->xcore);
	srclimit_free(&s->sources);
	store_destroy(s->store);
	s->store = NULL;
	peer_destroy(s->peer); /* its epoch record outlives the store's epoch */
	s->peer = NULL;
	authq_destroy(s->authq); /* the workers that used it are gone */
	s->authq = NULL;
	nauth_free(s->auth);
	s->auth = NULL;
}

/*
 * Loads --auth-users into s->auth with the token lifetime and, in a
 * cluster, the token key derived from the cluster secret. Off (nothing
 * done) when no file is named. 0, or -EINVAL after logging why.
 */
static int auth_load(struct server *s)
{
	const struct server_config *cfg = &s->cfg;
	char why[NAUTH_WHY_CAP];
	int rc;

	if (cfg->auth_users[0] == '\0')
		return 0;
	rc = nauth_load(cfg->auth_users, &s->auth, why, sizeof(why));
	if (rc < 0) {
		log_error("--auth-users: %s", rc == -ERR_AUTH_USERS_FILE ? why : err_str(rc));
		return -EINVAL;
	}
	rc = nauth_set_times(s->auth, cfg->auth_token_ttl_ms, NAUTH_SKEW_MS_DEFAULT);
	if (rc == 0 && s->peer) {
		size_t len;
		const uint8_t *secret = peer_secret(s->peer, &len);

		rc = nauth_set_secret(s->auth, secret, len);
	}
	if (rc < 0) {
		log_error("--auth-users: cannot set up tokens: %s", err_str(rc));
		return -EINVAL;
	}
	log_info("authentication on: %u users from %s, tokens for %u s, %s",
	         nauth_user_count(s->auth), cfg->auth_users, cfg->auth_token_ttl_ms / 1000,
	         s->peer ? "keyed by the cluster secret" : "keyed by this process only");
	return 0;
}

int server_start(struct server *s, const struct server_config *cfg)
{
	int rc;
	uint32_t started = 0;

	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->nworkers = cfg->workers;
	/* A cluster: the peer thread is one more participant of the rings. */
	if (peer_create(&s->cfg, s->nworkers, &s->peer) < 0)
		return -EINVAL;
	if (s->peer)
		peer_store_hooks(s->peer, &s->cfg.store);
	if (auth_load(s) < 0) {
		server_free(s);
		return -EINVAL;
	}
	if ((rc = store_create(&s->cfg.store, &s->store)) < 0) {
		log_error("store: %s", err_str(rc));
		peer_destroy(s->peer);
		s->peer = NULL;
		return -EINVAL;
	}
	if (xcore_init(&s->xcore, s->nworkers + (s->peer != NULL), XCORE_SLOTS) < 0) {
		server_free(s);
		return -ENOMEM;
	}
	s->ring_fds = mem_calloc(s->nworkers, sizeof(s->ring_fds[0]));
	if (s->ring_fds == NULL || srclimit_init(&s->sources, cfg->conns_per_source) < 0 ||
	    (s->auth && authq_create(s->auth, s->nworkers, s->ring_fds, &s->authq) < 0)) {
		server_free(s);
		return -ENOMEM;
	}
	s->workers = mem_alloc_aligned(64, sizeof(s->workers[0]) * s->nworkers);
	if (s->workers) { /* zeroed at once: server_free may read them */
		memset(s->workers, 0, sizeof(s->workers[0]) * s->nworkers);
		for (uint32_t i = 0; i < s->nworkers; i++)
			for (uint32_t k = 0; k < WORKER_LISTENERS; k++)
				s->workers[i].listeners[k].fd = -1;
	}
	if (s->workers == NULL) {
		server_free(s);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < s->nworkers; i++) {
		if ((rc = worker_init(s, &s->workers[i], i)) < 0) {
			server_free(s);
			return rc;
		}
	}
	for (uint32_t i = 0; i < s->nworkers; i++) {
		int fd = listen_socket(cfg, i == 0 ? (uint16_t)cfg->port : s->port,
		                       i == 0 ? &s->port : NULL);

		if (fd < 0) {
			server_free(s);
			return fd;
		}
		s->workers[i].listeners[CONN_BINARY].fd = fd;
		fd = listen_socket(cfg, i == 0 ? (uint16_t)cfg->nacos_port : s->nacos_port,
		                   i == 0 ? &s->nacos_port : NULL);
		if (fd < 0) {
			server_free(s);
			return fd;
		}
		s->workers[i].listeners[CONN_NACOS].fd = fd;
		if (!cfg->grpc_on)
			continue;
		fd = listen_socket(cfg, i == 0 ? (uint16_t)cfg->grpc_port : s->grpc_port,
		                   i == 0 ? &s->grpc_port : NULL);
		if (fd < 0) {
			server_free(s);
			return fd;
		}
		s->workers[i].listeners[CONN_GRPC].fd = fd;
	}
	if (s->peer) /* before the workers run: they read it for SLOT_MAP and STATS */
		peer_client_port_set(s->peer, s->port);
	pthread_barrier_init(&s->ready, NULL, s->nworkers + 1);
	for (uint32_t i = 0; i < s->nworkers; i++) {
		if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
			__atomic_store_n(&s->start_rc, -EAGAIN, __ATOMIC_RELEASE);
			break;
		}
		started++;
	}
	/* Threads that never started still count for the barrier. */
	for (uint32_t i = started; i < s->nworkers; i++)
		pthread_barrier_wait(&s->ready);
	pthread_barrier_wait(&s->ready);
	if (LOAD_ACQUIRE(&s->start_rc) < 0) {
		rc = s->start_rc;
		for (uint32_t i = 0; i < started; i++)
			pthread_join(s->workers[i].thread, NULL);
		pthread_barrier_destroy(&s->ready);
		server_free(s);
		return rc;
	}
	if (s->authq && (rc = authq_start(s->authq)) < 0) {
		server_stop(s);
		return rc;
	}
	log_info("distrod listening on %s:%u (binary protocol), %s:%u (Nacos HTTP API), %s:%u "
	         "(Nacos gRPC%s), %u workers",
	         cfg->bind, s->port, cfg->bind, s->nacos_port, cfg->bind, s->grpc_port,
	         cfg->grpc_on ? "" : ": off", s->nworkers);
	if (s->peer) {
		struct peer_env env = {
			.cfg = &s->cfg,
			.store = s->store,
			.xcore = &s->xcore,
			.nworkers = s->nworkers,
			.client_port = s->port,
			.worker_ring_fds = s->ring_fds,
		};

		if ((rc = peer_start(s->peer, &env)) < 0) {
			server_stop(s);
			return rc;
		}
	}
	return 0;
}

void server_stop(struct server *s)
{
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	for (uint32_t i = 0; i < s->nworkers; i++)
		pthread_join(s->workers[i].thread, NULL);
	authq_stop(s->authq); /* after the workers: they waited for their jobs */
	/* The peer thread outlives the workers: their forwarded writes need answers. */
	if (s->peer)
		peer_stop(s->peer);
	pthread_barrier_destroy(&s->ready);
	server_free(s); /* closes the workers' rings: nobody wakes them any more */
}

static void stats_add(struct worker_stats *out, const struct worker_stats *st)
{
#define WS_SUM(name) out->name += LOAD_RELAXED(&st->name);
	WORKER_STATS(WS_SUM)
#undef WS_SUM
	for (int i = 0; i < WORKER_LAT_BUCKETS; i++)
		out->lat_count[i] += LOAD_RELAXED(&st->lat_count[i]);
	out->lat_sum_us += LOAD_RELAXED(&st->lat_sum_us);
	for (int i = 0; i < WORKER_BATCH_BUCKETS; i++)
		out->batch_count[i] += LOAD_RELAXED(&st->batch_count[i]);
	for (int i = 0; i < WORKER_REPL_BUCKETS; i++)
		out->repl_count[i] += LOAD_RELAXED(&st->repl_count[i]);
}

void worker_stats_read(struct worker *w, struct worker_stats *out)
{
	memset(out, 0, sizeof(*out));
	stats_add(out, &w->stats);
}

void server_stats(struct server *s, struct worker_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < s->nworkers; i++)
		stats_add(out, &s->workers[i].stats);
}

uint64_t server_worker_loops(struct server *s, uint32_t i)
{
	return LOAD_RELAXED(&s->workers[i].stats.loops);
}

void server_admin_snapshot(void *ctx, struct admin_snapshot *out)
{
	struct server *s = ctx;

	if (out->want & ADMIN_WANT_COUNTERS) {
		server_stats(s, out->total);
		for (uint32_t i = 0; i < s->nworkers; i++)
			worker_stats_read(&s->workers[i], &out->workers[i]);
		store_stats(s->store, out->store);
		out->limits = (struct metrics_limits){
			.conns_max = s->cfg.conns_max,
			.instances_max = s->cfg.store.limits.instances_max,
			.services_max = s->cfg.store.limits.services_max,
			.subscribers_max = (uint64_t)s->cfg.subs_max * s->nworkers,
			.peer_backlog_bytes_max = s->peer != NULL ? s->cfg.peer_backlog_bytes : 0,
		};
	}
	if (out->want & ADMIN_WANT_PEER) {
		if (s->peer != NULL)
			peer_status_read(s->peer, out->peer);
		else
			memset(out->peer, 0, sizeof(*out->peer)); /* standalone: clustered false */
	}
}
