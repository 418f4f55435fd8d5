/*
 * nacos_push.c - UDP push to Nacos subscribers, on the workers' rings.
 *
 * The protocol (subscribers, coalescing, packets, acks, retries, expiry)
 * is nacos/udp.c, which does no I/O; this file gives it a socket, a clock,
 * the list rendering and the store's change signal, on one worker.
 *
 * Which worker. A subscriber is kept by the worker chosen by a hash of its
 * target (the source address of its HTTP connection and its udpPort), so
 * a client whose polls arrive on several connections, on several workers,
 * is one subscriber and gets one push per change. The worker that served
 * the poll refreshes the subscriber itself when it is the chosen one and
 * otherwise sends it an XM_UDP_SUB message (one per poll: every 10 s per
 * subscriber, not a hot path).
 *
 * Changes. A worker with subscribers reads the revision of every service
 * they follow (store_revision: one lookup, no lock) once per millisecond
 * of its clock, and tells udp.c of each that moved; udp.c then pushes each
 * subscriber window_ms later with the list as it is then. Changes on any
 * shard and any node (replicated writes bump revisions too) are seen the
 * same way, without messages between cores. While it has subscribers the
 * worker sleeps at most push_window_ms.
 *
 * I/O. One UDP socket per worker (dual-stack IPv6 when the bind address is
 * a wildcard, so IPv4 and IPv6 subscribers share it), bound to an ephemeral
 * port: clients ack to the source address of the push. Each datagram is
 * copied into one of PUSH_SLOTS send slots (msghdr, address, bytes) and
 * sent with IORING_OP_SENDMSG; when every slot is in flight the send fails
 * and udp.c's retry covers it. Acks arrive by IORING_OP_RECVMSG into one
 * buffer, re-armed after each. Nothing blocks the worker.
 */
#include "server/nacos_internal.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/mem.h"
#include "nacos/json.h"
#include "nacos/udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PUSH_SLOTS   128
#define ACK_BUF_SIZE 2048

struct push_slot {
	struct msghdr mh;
	struct iovec iov;
	struct sockaddr_storage to;
	struct buf data;
	uint32_t next_free;
	bool busy;
};

struct nacos_push {
	struct udp_push *udp;
	int fd;
	int family;
	struct push_slot slots[PUSH_SLOTS];
	uint32_t free_head; /* UINT32_MAX: every slot in flight */
	struct msghdr rmh;
	struct iovec riov;
	struct sockaddr_storage rfrom;
	uint8_t rbuf[ACK_BUF_SIZE];
	bool recv_armed;
	int64_t revs_ms; /* revisions last read */
	int64_t now_ms;  /* the push clock: precise (the 2 ms window is shorter than a coarse tick),
	                    never back */
};

/* udp.c's clock: milliseconds of the precise monotonic clock, never going back. */
static int64_t push_now(struct nacos_push *np)
{
	int64_t t = clock_mono_us() / 1000;

	if (t > np->now_ms)
		np->now_ms = t;
	return np->now_ms;
}

/* A subscription carried to the worker that keeps its target. */
struct xudpsub {
	struct xmsg head; /* XM_UDP_SUB */
	struct sockaddr_storage peer;
	uint16_t udp_port;
	bool healthy_only;
	uint64_t word; /* the revision the poll answered, + 1 (revision_check's word) */
	uint32_t ns_len, group_len, service_len, clusters_len, agent_len, app_len;
	char data[]; /* in that order */
};

/* ---- callbacks of udp.c ---- */

static int render(void *ctx, const struct udp_sub_view *sub, int64_t now_ms, char *out, size_t cap)
{
	struct worker *w = ctx;
	struct buf *b = &w->nacos->body;
	int rc;

	(void)now_ms;
	buf_clear(b);
	epoch_enter(w->rec);
	rc = nacos_render_list(w, &sub->svc, sub->clusters, sub->healthy_only, b, NULL);
	epoch_exit(w->rec);
	if (rc < 0)
		return rc == -ERR_NOMEM ? -ERR_PROTO_TOO_BIG : rc;
	if (buf_used(b) > cap)
		return -ERR_PROTO_TOO_BIG;
	memcpy(out, b->p + b->off, buf_used(b));
	return (int)buf_used(b);
}

static int send_one(void *ctx, const struct sockaddr_storage *to, socklen_t to_len,
                    const void *bytes, size_t len)
{
	struct worker *w = ctx;
	struct nacos_push *np = w->nacos->push;
	struct push_slot *s;
	struct io_uring_sqe *sqe;
	uint32_t i = np->free_head;

	if (i == UINT32_MAX)
		return -ERR_BUSY;
	s = &np->slots[i];
	buf_clear(&s->data);
	if (!buf_append(&s->data, bytes, len, UDP_PACKET_BYTES_MAX))
		return -ERR_NOMEM;
	memset(&s->to, 0, sizeof(s->to));
	if (np->family == AF_INET6 && to->ss_family == AF_INET) {
		/* A dual-stack socket reaches IPv4 through the v4-mapped address. */
		const struct sockaddr_in *a = (const struct sockaddr_in *)to;
		struct sockaddr_in6 *m = (struct sockaddr_in6 *)&s->to;

		m->sin6_family = AF_INET6;
		m->sin6_port = a->sin_port;
		m->sin6_addr.s6_addr[10] = m->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&m->sin6_addr.s6_addr[12], &a->sin_addr, 4);
		to_len = sizeof(*m);
	} else if (np->family != to->ss_family) {
		return -ERR_INVAL; /* an IPv6 subscriber and an IPv4-only socket */
	} else {
		memcpy(&s->to, to, to_len);
	}
	s->iov.iov_base = s->data.p;
	s->iov.iov_len = len;
	memset(&s->mh, 0, sizeof(s->mh));
	s->mh.msg_name = &s->to;
	s->mh.msg_namelen = to_len;
	s->mh.msg_iov = &s->iov;
	s->mh.msg_iovlen = 1;
	sqe = uring_sqe(&w->ring);
	io_uring_prep_sendmsg(sqe, np->fd, &s->mh, 0);
	io_uring_sqe_set_data64(sqe, ud_make(UD_UDP_SEND, i, 0));
	np->free_head = s->next_free;
	s->busy = true;
	return 0;
}

/* ---- the socket ---- */

static void arm_recv(struct worker *w)
{
	struct nacos_push *np = w->nacos->push;
	struct io_uring_sqe *sqe = uring_sqe(&w->ring);

	np->riov.iov_base = np->rbuf;
	np->riov.iov_len = sizeof(np->rbuf);
	memset(&np->rmh, 0, sizeof(np->rmh));
	np->rmh.msg_name = &np->rfrom;
	np->rmh.msg_namelen = sizeof(np->rfrom);
	np->rmh.msg_iov = &np->riov;
	np->rmh.msg_iovlen = 1;
	io_uring_prep_recvmsg(sqe, np->fd, &np->rmh, 0);
	io_uring_sqe_set_data64(sqe, ud_make(UD_UDP_RECV, 0, 0));
	np->recv_armed = true;
}

static int open_socket(const char *bind_addr, int *family)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, zero = 0;
	bool wildcard = strcmp(bind_addr, "0.0.0.0") == 0 || strcmp(bind_addr, "::") == 0;

	memset(&ss, 0, sizeof(ss));
	if (wildcard) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd >= 0) {
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
			a->sin6_family = AF_INET6;
			a->sin6_addr = in6addr_any;
			if (bind(fd, (struct sockaddr *)a, sizeof(*a)) == 0) {
				*family = AF_INET6;
				return fd;
			}
			close(fd);
		}
		/* No IPv6 on this host: IPv4 only. */
		bind_addr = "0.0.0.0";
		memset(&ss, 0, sizeof(ss));
	}
	if (inet_pton(AF_INET, bind_addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		len = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, bind_addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		len = sizeof(struct sockaddr_in6);
	} else {
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	*family = ss.ss_family;
	return fd;
}

/* On the worker thread, once its ring exists. 0 or -errno (the node then has no push). */
int nacos_push_start(struct worker *w)
{
	const struct server_config *cfg = &w->srv->cfg;
	struct udp_callbacks cb = { .render = render, .send = send_one };
	struct udp_config uc;
	struct nacos_push *np;
	int rc;

	np = mem_calloc(1, sizeof(*np));
	if (np == NULL)
		return -ENOMEM;
	np->fd = -1;
	np->free_head = UINT32_MAX;
	for (uint32_t i = PUSH_SLOTS; i-- > 0;) {
		np->slots[i].next_free = np->free_head;
		np->free_head = i;
	}
	w->nacos->push = np;
	udp_config_default(&uc);
	uc.worker_id = w->id;
	uc.window_ms = cfg->nacos_push_window_ms;
	uc.retry_ms = cfg->nacos_push_retry_ms;
	uc.sub_ttl_ms = cfg->nacos_push_ttl_ms;
	uc.subs_max = (cfg->nacos_push_subs_max + w->srv->nworkers - 1) / w->srv->nworkers;
	rc = udp_create(&uc, &cb, w, &np->udp);
	if (rc < 0)
		return rc == -ERR_NOMEM ? -ENOMEM : -EINVAL;
	np->fd = open_socket(cfg->bind, &np->family);
	if (np->fd < 0) {
		rc = np->fd;
		udp_destroy(np->udp);
		np->udp = NULL; /* no socket, no push: lists still answer */
		return rc;
	}
	arm_recv(w);
	return 0;
}

void nacos_push_stop(struct worker *w)
{
	struct nacos_push *np = w->nacos ? w->nacos->push : NULL;

	if (np == NULL)
		return;
	if (np->fd >= 0)
		close(np->fd);
	udp_destroy(np->udp);
	for (uint32_t i = 0; i < PUSH_SLOTS; i++)
		buf_free(&np->slots[i].data);
	mem_free(np);
	w->nacos->push = NULL;
}

void nacos_push_on_cqe(struct worker *w, struct io_uring_cqe *cqe)
{
	struct nacos_push *np = w->nacos->push;

	if (np == NULL)
		return;
	if (ud_op(cqe->user_data) == UD_UDP_SEND) {
		struct push_slot *s = &np->slots[ud_idx(cqe->user_data)];

		s->busy = false;
		s->next_free = np->free_head;
		np->free_head = ud_idx(cqe->user_data);
		if (cqe->res < 0)
			WSTAT_INC(w, nacos_push_send_errors);
		return;
	}
	np->recv_armed = false;
	if (cqe->res >= 0)
		udp_on_datagram(np->udp, &np->rfrom, np->rbuf, (size_t)cqe->res, push_now(np));
	if (!w->stopping && np->fd >= 0)
		arm_recv(w);
}

/* ---- subscriptions ---- */

static uint32_t worker_of_target(const struct worker *w, const struct sockaddr_storage *peer,
                                 uint16_t udp_port)
{
	uint8_t key[18] = { 0 };

	if (peer->ss_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)peer)->sin_addr, 4);
	} else {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)peer)->sin6_addr;

		memcpy(key, a, 16);
		if (IN6_IS_ADDR_V4MAPPED(a)) { /* the same client as its IPv4 form */
			memset(key, 0, sizeof(key));
			memcpy(key, &a->s6_addr[12], 4);
		}
	}
	key[16] = (uint8_t)(udp_port >> 8);
	key[17] = (uint8_t)udp_port;
	return (uint32_t)(XXH3_64bits(key, sizeof(key)) % w->srv->nworkers);
}

static void refresh(struct worker *w, const struct udp_sub_params *p)
{
	struct nacos_push *np = w->nacos->push;

	if (np == NULL || np->udp == NULL)
		return;
	if (udp_sub_refresh(np->udp, p, push_now(np)) < 0)
		return; /* counted by udp.c (refused, invalid) */
}

/*
 * revision: the service's revision the poll's answer shows. A subscriber
 * is pushed every change after it: a service new to the keeping worker
 * starts from it (not from the worker's next look, which may already see
 * a later change), and an existing one whose last look differs pushes
 * this subscriber at once.
 */
/* The client's agent: User-Agent, else Client-Version (Nacos's ClientInfo); p NULL when none. */
static struct store_str agent_of(struct nctx *x)
{
	struct h1_span a = x->h->headers[H1_H_USER_AGENT];

	if (!a.set || a.len == 0)
		a = x->h->headers[H1_H_CLIENT_VERSION];
	if (!a.set || a.len == 0)
		return (struct store_str){ NULL, 0 };
	return (struct store_str){ h1_at(x->req, a), a.len };
}

void nacos_push_subscribe(struct nctx *x, const struct store_svc_key *sk, struct store_str clusters,
                          bool healthy_only, uint16_t udp_port, uint64_t revision)
{
	struct worker *w = x->w;
	const struct sockaddr_storage *peer = nacos_peer(x);
	struct udp_sub_params p = {
		.svc = *sk,
		.clusters = clusters,
		.peer = peer,
		.udp_port = udp_port,
		.healthy_only = healthy_only,
		.word = revision + 1,
		.agent = agent_of(x),
	};
	struct xudpsub *m;
	uint32_t to;
	size_t n;
	char *d;

	if (peer == NULL)
		return;
	if (!nacos_param(x, "app", &p.app))
		p.app = (struct store_str){ NULL, 0 };
	if (p.agent.len > UDP_AGENT_BYTES_MAX)
		p.agent.len = UDP_AGENT_BYTES_MAX;
	if (p.app.len > UDP_AGENT_BYTES_MAX)
		p.app.len = UDP_AGENT_BYTES_MAX;
	to = worker_of_target(w, peer, udp_port);
	if (to == w->id) {
		refresh(w, &p);
		return;
	}
	n = sizeof(*m) + sk->ns.len + sk->group.len + sk->service.len + clusters.len + p.agent.len +
	    p.app.len;
	m = mem_alloc(n);
	if (m == NULL)
		return; /* the next poll subscribes again */
	memset(m, 0, sizeof(*m));
	m->head.kind = XM_UDP_SUB;
	m->peer = *peer;
	m->udp_port = udp_port;
	m->healthy_only = healthy_only;
	m->word = p.word;
	m->ns_len = sk->ns.len;
	m->group_len = sk->group.len;
	m->service_len = sk->service.len;
	m->clusters_len = clusters.len;
	m->agent_len = p.agent.p ? p.agent.len : UINT32_MAX; /* UINT32_MAX: none */
	m->app_len = p.app.p ? p.app.len : UINT32_MAX;
	d = m->data;
	memcpy(d, sk->ns.p, sk->ns.len);
	d += sk->ns.len;
	memcpy(d, sk->group.p, sk->group.len);
	d += sk->group.len;
	memcpy(d, sk->service.p, sk->service.len);
	d += sk->service.len;
	if (clusters.len)
		memcpy(d, clusters.p, clusters.len);
	d += clusters.len;
	if (p.agent.len)
		memcpy(d, p.agent.p, p.agent.len);
	d += p.agent.len;
	if (p.app.len)
		memcpy(d, p.app.p, p.app.len);
	worker_send(w, to, m);
}

void nacos_push_on_sub(struct worker *w, void *msg)
{
	struct xudpsub *m = msg;
	const char *d = m->data;
	const char *cl = d + m->ns_len + m->group_len + m->service_len;
	const char *agent = cl + m->clusters_len;
	uint32_t agent_len = m->agent_len == UINT32_MAX ? 0 : m->agent_len;
	struct udp_sub_params p = {
		.svc = { { d, m->ns_len },
		         { d + m->ns_len, m->group_len },
		         { d + m->ns_len + m->group_len, m->service_len } },
		.clusters = { cl, m->clusters_len },
		.peer = &m->peer,
		.udp_port = m->udp_port,
		.healthy_only = m->healthy_only,
		.word = m->word,
		.agent = { m->agent_len == UINT32_MAX ? NULL : agent, agent_len },
		.app = { m->app_len == UINT32_MAX ? NULL : agent + agent_len,
		         m->app_len == UINT32_MAX ? 0 : m->app_len },
	};

	refresh(w, &p);
	xmsg_release(m);
}

/* ---- GET /service/subscribers: every worker's subscribers of a service ---- */

/*
 * A node's subscribers of one service live on every worker (each keeps
 * those whose target hashes to it), and each table is its worker's alone.
 * So the request travels: one XM_UDP_LIST message visits the workers in
 * order 0, 1, ..., n-1 (the same order whichever worker asked, so pages
 * of one listing fit together), each adding its subscribers that fall in
 * the page and counting all, then goes back to the worker that asked,
 * which answers. No table is shared and no lock is taken; the request
 * costs one message hop per worker, and while it travels its connection
 * reads no further request (like a write out on other shards).
 *
 * Not a hot path (an operator's query), so the message is allocated per
 * request, and grown (allocate, copy, free) by a worker whose entries do
 * not fit; a page is bounded by NACOS_BODY_MAX bytes and its pageSize.
 */
struct xudplist {
	struct xmsg head; /* XM_UDP_LIST */
	uint32_t origin;  /* the worker that answers */
	uint32_t conn, conn_gen;
	uint32_t next;       /* the next worker to add its part; nworkers: done */
	uint64_t skip, take; /* of the page, still to skip and to take */
	uint64_t count;      /* subscribers counted so far */
	bool head_only;
	bool too_big; /* the page went over NACOS_BODY_MAX: answered 500 */
	uint32_t ns_len, group_len, service_len;
	uint32_t names; /* bytes of the names at data */
	uint32_t len;   /* bytes used at data: names, then the page's entries */
	uint32_t cap;   /* bytes at data */
	char data[];
};

struct list_walk {
	struct xudplist *m;
	struct buf *b;
	bool ok;
};

static bool put_sv(struct buf *b, struct store_str s)
{
	return json_put_str(b, s.p ? s.p : "", s.p ? s.len : 0, NACOS_BODY_MAX);
}

/* One subscriber as Nacos's Subscriber serialises. */
static void list_one(void *ctx, const struct udp_sub_view *sub)
{
	struct list_walk *lw = ctx;
	struct xudplist *m = lw->m;
	struct buf *b = lw->b;
	const struct sockaddr_storage *t = sub->target;
	char ip[INET6_ADDRSTRLEN], addr[INET6_ADDRSTRLEN + 8];
	uint16_t port;

	m->count++;
	if (m->skip > 0) {
		m->skip--;
		return;
	}
	if (m->take == 0 || !lw->ok)
		return;
	m->take--;
	if (t->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)t;

		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		port = ntohs(a->sin_port);
	} else {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)t;

		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		port = ntohs(a->sin6_port);
	}
	snprintf(addr, sizeof(addr), "%s:%u", ip, port);
	lw->ok = (m->len + buf_used(b) == m->names || nacos_put(b, ",")) &&
	         nacos_put(b, "{\"addrStr\":") &&
	         json_put_str(b, addr, strlen(addr), NACOS_BODY_MAX) &&
	         nacos_put(b, ",\"agent\":") && put_sv(b, sub->agent) &&
	         nacos_put(b, ",\"app\":") && put_sv(b, sub->app) && nacos_put(b, ",\"ip\":") &&
	         json_put_str(b, ip, strlen(ip), NACOS_BODY_MAX) && nacos_put(b, ",\"port\":") &&
	         json_put_u64(b, port, NACOS_BODY_MAX) && nacos_put(b, ",\"namespaceId\":") &&
	         put_sv(b, sub->svc.ns) && nacos_put(b, ",\"serviceName\":") &&
	         nacos_put_grouped(b, &sub->svc) && nacos_put(b, ",\"cluster\":") &&
	         put_sv(b, sub->clusters) && nacos_put(b, "}");
}

/* Adds this worker's part to m; returns m, or its grown copy (m freed). */
static struct xudplist *list_add(struct worker *w, struct xudplist *m)
{
	struct nacos_push *np = w->nacos->push;
	struct buf *b = &w->nacos->body; /* free between requests; a push renders into it too */
	struct list_walk lw = { .m = m, .b = b, .ok = !m->too_big };
	const char *d = m->data;
	struct store_svc_key sk = { { d, m->ns_len },
		                    { d + m->ns_len, m->group_len },
		                    { d + m->ns_len + m->group_len, m->service_len } };

	if (np == NULL || np->udp == NULL)
		return m;
	buf_clear(b);
	(void)udp_each_sub(np->udp, &sk, list_one, &lw);
	if (!lw.ok || (size_t)m->len + buf_used(b) > NACOS_BODY_MAX) {
		m->too_big = true;
		return m;
	}
	if (buf_used(b) == 0)
		return m; /* none of its subscribers is on the page (b may have no memory yet) */
	if (m->len + buf_used(b) > m->cap) {
		uint32_t cap = (uint32_t)(m->len + buf_used(b)) * 2;
		struct xudplist *g = mem_alloc(sizeof(*g) + cap);

		if (g == NULL) {
			m->too_big = true;
			return m;
		}
		memcpy(g, m, sizeof(*m) + m->len);
		g->cap = cap;
		mem_free(m);
		m = g;
	}
	memcpy(m->data + m->len, b->p + b->off, buf_used(b));
	m->len += (uint32_t)buf_used(b);
	return m;
}

static void list_answer(struct worker *w, struct xudplist *m)
{
	struct buf *b = &w->nacos->body;
	bool ok;

	buf_clear(b);
	ok = !m->too_big && nacos_put(b, "{\"subscribers\":[") &&
	     json_put_raw(b, m->data + m->names, m->len - m->names, NACOS_BODY_MAX) &&
	     nacos_put(b, "],\"count\":") && json_put_u64(b, m->count, NACOS_BODY_MAX) &&
	     nacos_put(b, "}");
	if (!ok) {
		buf_clear(b);
		(void)nacos_put(b, "answer larger than the server's bound");
	}
	nacos_later_done(w, m->conn, m->conn_gen, m->head_only, ok ? 200 : 500,
	                 ok ? NACOS_JSON_CT : "text/plain;charset=UTF-8",
	                 (const char *)b->p + b->off, buf_used(b));
	mem_free(m);
}

/* Adds this worker's part if it is its turn, then sends m on, or answers it at the origin. */
static void list_step(struct worker *w, struct xudplist *m)
{
	uint32_t n = w->srv->nworkers;

	if (m->next == w->id) {
		m = list_add(w, m);
		m->next++;
	}
	if (m->next < n) {
		worker_send(w, m->next, m);
		return;
	}
	if (w->id != m->origin) {
		worker_send(w, m->origin, m);
		return;
	}
	list_answer(w, m);
}

void nacos_push_on_list(struct worker *w, void *msg)
{
	list_step(w, msg);
}

/* GET /service/subscribers?serviceName&pageNo(1)&pageSize(1000): this node's UDP subscribers. */
void nacos_service_subscribers(struct nctx *x)
{
	struct store_svc_key sk;
	struct xudplist *m;
	int64_t page_no, page_size;
	uint32_t names, cap;
	int err = 0;

	if (nacos_svc_of(x, &sk) < 0)
		return;
	page_no = form_get_int(&x->form, "pageNo", 1, INT32_MIN, INT32_MAX, &err);
	page_size = form_get_int(&x->form, "pageSize", 1000, 0, INT32_MAX, &err);
	if (err) {
		nacos_reply_text(x, 400, "Param 'pageNo' or 'pageSize' is not a number.");
		return;
	}
	if (page_no < 1)
		page_no = 1; /* Nacos: a start below 0 is the first page */
	names = sk.ns.len + sk.group.len + sk.service.len;
	cap = names + 4096;
	m = mem_alloc(sizeof(*m) + cap);
	if (m == NULL) {
		nacos_reply_text(x, 503, "out of memory");
		return;
	}
	memset(m, 0, sizeof(*m));
	m->head.kind = XM_UDP_LIST;
	m->origin = x->w->id;
	m->conn = x->idx;
	m->head_only = x->h->method == H1_HEAD;
	m->skip = (uint64_t)(page_no - 1) * (uint64_t)page_size;
	m->take = (uint64_t)page_size;
	m->ns_len = sk.ns.len;
	m->group_len = sk.group.len;
	m->service_len = sk.service.len;
	m->names = m->len = names;
	m->cap = cap;
	memcpy(m->data, sk.ns.p, sk.ns.len);
	memcpy(m->data + sk.ns.len, sk.group.p, sk.group.len);
	memcpy(m->data + sk.ns.len + sk.group.len, sk.service.p, sk.service.len);
	m->conn_gen = nacos_later(x);
	/* Worker 0 adds its part at once; a node of one worker answers at once. */
	list_step(x->w, m);
}

/* ---- each loop ---- */

static void revision_check(void *ctx, const struct store_svc_key *k, uint64_t *word)
{
	struct worker *w = ctx;
	/* The word holds revision + 1: 0 is udp.c's "new subscriber, nothing seen yet". */
	uint64_t seen = store_revision(w->srv->store, k) + 1;

	if (*word != 0 && seen != *word)
		udp_service_changed(w->nacos->push->udp, k, w->nacos->push->now_ms);
	*word = seen;
}

/*
 * Reads the followed services' revisions (once per ms), then does what is
 * due. Returns the ms the worker may sleep at most, or -1: no subscribers.
 */
int64_t nacos_push_step(struct worker *w)
{
	struct nacos_push *np = w->nacos ? w->nacos->push : NULL;
	const struct udp_stats *st;
	int64_t next, now;

	if (np == NULL || np->udp == NULL)
		return -1;
	st = udp_stats(np->udp);
	now = push_now(np);
	if (st->services > 0 && now != np->revs_ms) {
		np->revs_ms = now;
		epoch_enter(w->rec);
		udp_each_service(np->udp, revision_check, w);
		epoch_exit(w->rec);
	}
	next = udp_poll(np->udp, now);
	STORE_RELAXED(&w->stats.nacos_push_subs, st->subs);
	STORE_RELAXED(&w->stats.nacos_pushes, st->pushes);
	STORE_RELAXED(&w->stats.nacos_push_acked, st->acked);
	STORE_RELAXED(&w->stats.nacos_push_retries, st->retries);
	STORE_RELAXED(&w->stats.nacos_push_failed, st->failed);
	STORE_RELAXED(&w->stats.nacos_push_refused, st->subs_refused + st->not_retried);
	STORE_RELAXED(&w->stats.nacos_push_too_big, st->too_big);
	if (st->services > 0 && (next < 0 || next > 1))
		next = 1; /* revisions are read every ms */
	return next;
}
