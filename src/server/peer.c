/*
 * peer.c - the peer thread: Distro between the members of a cluster.
 *
 * One thread per node, beside the workers, owns every peer link. It is the
 * control plane and the batching point, never the data path of a single
 * request: workers hand it whole frames' worth of work over the cross-core
 * rings (it is participant `nworkers` there) and it hands back records to
 * apply. It sleeps in epoll (links, the listener, an eventfd the workers
 * write once per loop when they queued something for it) and wakes workers
 * with MSG_RING from a small io_uring of its own.
 *
 * Links. One TCP connection per pair on the peer port. A member with no
 * link to another dials it (backoff 100 ms doubling to 2 s) and also
 * accepts; when both ends dialled, both keep the link the lower id dialled
 * (link_up). The handshake (HELLO both ways, then AUTH: HMAC-SHA256 over
 * both nonces and ids, cluster/auth.c) must finish within --peer-down;
 * until it does, any other frame closes the link.
 *
 * Health. Every link carries a PING each --peer-ping with the sender's
 * READY flag. A member heard from within --peer-suspect is UP; silent
 * longer, SUSPICIOUS (it keeps its slots: a pause is not a failure); silent
 * past --peer-down, or its link closed, DOWN: the link is closed and its
 * slots move. The slot map (cluster/slotmap.c, rendezvous) is recomputed
 * whenever the set of eligible members (UP or SUSPICIOUS, and READY;
 * ourselves when READY) changes, and written in place: workers read one
 * 16-bit owner per item, and an item seeing the old or the new owner during
 * the change is fine (any node may accept any write). Slots gained are sent
 * to the workers as a takeover: every instance in them gets a full fresh
 * deadline (store_touch). Slots lost stop being expired here (the store's
 * owns hook).
 *
 * Forwarding. A worker marks the items of a client frame whose slot another
 * member owns and sends the pending here. Items are grouped per owner and
 * per op into one FWD frame per owner per op per loop, whatever the number
 * of client requests; the owner runs them like a client frame (not routed
 * again: no loops, no amplification - Nacos #6967) and answers one FWD_ACK.
 * Results go back into the pending, which returns to its worker. Items for
 * an owner that is not reachable, or whose link drops before the answer,
 * get ERR_UNAVAILABLE: retryable, never silently lost.
 *
 * Sync. Workers drain their change feeds every --sync-window (the feed
 * keeps one entry per changed instance: changes within the window
 * coalesce) into record batches; each batch goes to every UP link as one
 * SYNC frame. A link whose unsent output passes --peer-backlog gets no
 * more sync (counted): those changes are left to verify. Received batches
 * are checked whole, then sent to every worker, which applies the records
 * of its shard (last writer wins; a newer delete is never resurrected).
 *
 * Verify and repair. Every --verify-interval a READY node sends every peer
 * a DIGEST: for each of 256 ranges of 64 slots, a sum of mixes of (slot,
 * checksum, count) over the slots it owns in the range - 2 KiB however many
 * instances. The peer computes the same over its copy of those slots (the
 * ones it believes the sender owns) and asks for the per-slot sums of the
 * ranges that differ (SUMS_REQ, SUMS), then PULLs the slots that differ -
 * up to 4 pulls of up to 256 slots in flight per peer, so repairs from
 * several owners proceed at once and never queue behind one another (Nacos
 * #6018). The owner streams each slot in CHUNKs of at most 512 records,
 * pausing while the link's output is over 4 MiB. The puller collects a
 * slot's chunks and sends the slot to the workers to replace: records
 * applied, and instances the owner did not list (older than its listing)
 * forgotten. A node only replaces slots the sender owns in its own view and
 * it does not own itself: a peer can never make it delete what it owns.
 *
 * Startup load. A node starts not READY: it owns nothing and serves no
 * PULL and no DIGEST. Once a READY peer is UP it pulls all 16384 slots in
 * 256 ranges of 64, up to 4 ranges in flight per READY peer, spread over
 * all of them; a range whose link drops goes to another peer. When every
 * range is in it becomes READY (then the map gives it its slots, and it
 * takes them over). If no READY peer appears within --startup-wait of the
 * start (a whole cluster starting), it becomes READY with what it has.
 * Never one giant message (Nacos #7429, #13913).
 */
#include "server/peer.h"

#include "cluster/auth.h"
#include "cluster/pwire.h"
#include "cluster/records.h"
#include "core/atomic.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/mem.h"
#include "server/worker.h"
#include "server/xmsg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DIAL_BACKOFF_MIN_MS 100
#define DIAL_BACKOFF_MAX_MS 2000
#define LOOP_WAIT_MS        5
#define PULLS_MAX           4          /* pulls in flight per peer */
#define PULL_SLOTS          256        /* slots per repair pull */
#define LOAD_RANGES         256        /* startup load: ranges of 64 slots */
#define CHUNK_RECORDS       512        /* records per CHUNK */
#define SERVE_HIGH_BYTES    (4u << 20) /* stop streaming while the link holds this much */
#define FWD_FRAME_BYTES     (1u << 20) /* a FWD frame is sent once it holds this much */
#define SECRET_MAX          1024
#define SERVES_MAX          16          /* pulls a peer may have queued here */
#define REPAIR_SLOT_RECORDS 65536       /* one slot's records in one repair (split[] size) */
#define REPAIR_SLOT_BYTES   (64u << 20) /* ... and bytes */
#define OUT_CLOSE_FACTOR    2           /* a link holding 2 x --peer-backlog unsent is closed */
#define FRAMES_PER_READ     256         /* frames handled per readable link per loop */
#define PREAUTH_FRAME_MAX   64          /* body bytes accepted before a link is authenticated */
#define WAIT_TIMEOUT_MS     10000       /* a FWD answer or a pull's end this late: given up */
#define FWD_SERVING_MAX     4096        /* forward frames of one peer running here */
#define BACKLOG_PAUSE       8192        /* messages for the workers before links stop being read */
#define LINKS_MAX           (MEMBERS_MAX * 2)

static const uint8_t fwd_ops[3] = { OP_REGISTER, OP_DEREGISTER, OP_HEARTBEAT };

struct pbuf {
	uint8_t *p;
	size_t len, cap, off; /* off: bytes already consumed / written from the front */
};

/* An item forwarded: where its result goes. */
struct fref {
	struct pending *p;
	uint32_t i;
};

/* Items for one owner and one op, collected during a loop. */
struct fwd_build {
	struct pbuf items;
	struct fref *refs;
	uint32_t n, cap;
};

/* A FWD frame waiting for its answer. */
struct fwd_wait {
	uint32_t tag;
	uint32_t n;
	int64_t sent_ms;
	struct fref *refs;
};

/* A pull this node asked a peer for (repair or load). */
struct pull {
	uint32_t tag;
	int64_t sent_ms;
	bool load;
	uint16_t range; /* load: the range */
	uint16_t n;
	uint16_t slots[PULL_SLOTS];
};

/* A pull a peer asked of this node, streamed as the link drains. */
struct serve {
	uint32_t tag;
	uint16_t n, next;
	bool started;
	struct store_cursor cur;
	uint64_t before;
	uint16_t slots[PWIRE_PULL_MAX];
	struct serve *link_next;
};

/* A sync frame held back by the fault hook. */
struct delayed {
	int64_t due_ms;
	struct delayed *next;
	size_t len;
	uint8_t frame[];
};

enum link_state { L_FREE = 0, L_CONNECTING, L_HELLO, L_AUTH, L_UP };

struct link {
	int fd;
	enum link_state state;
	bool initiator;
	bool want_out;
	uint16_t id;          /* member, once known */
	uint16_t client_port; /* from its HELLO; believed once the link is authenticated */
	uint8_t nonce_me[AUTH_NONCE_BYTES], nonce_peer[AUTH_NONCE_BYTES];
	bool have_peer_hello;
	int64_t opened_ms;
	struct pbuf in, out;
};

struct mstate {
	struct link *link;    /* the UP link */
	struct link *dialing; /* our connection attempt, until it is UP or closed */
	enum peer_health health;
	bool ready;
	int64_t last_rx_ms;
	int64_t next_dial_ms;
	uint32_t backoff_ms;
	char client_addr[MEMBER_ADDR_MAX];
	struct fwd_build build[3];
	struct fwd_wait *waits;
	uint32_t waits_n, waits_cap;
	struct pull *pulls[PULLS_MAX];
	uint64_t repair_want[STORE_SLOTS / 64]; /* slots to pull from this owner */
	uint64_t suspect[STORE_SLOTS / 64];     /* slots that differed in the last round */
	struct serve *serving, *serving_tail;
	uint32_t serving_n;   /* pulls queued (SERVES_MAX) */
	uint32_t fwd_serving; /* its forward frames running here (FWD_SERVING_MAX) */
	struct delayed *delayed, *delayed_tail;
	struct pbuf chunk[1]; /* repair: the slot being collected */
	int32_t chunk_slot;   /* -1: none */
	uint32_t chunk_count;
	bool chunk_over; /* the slot is over REPAIR_SLOT_*_MAX: its repair is given up */
};

struct peer {
	struct server *srv;
	struct members ms;
	uint16_t self;
	uint32_t idx; /* our participant number on the rings */
	uint8_t secret[SECRET_MAX];
	size_t secret_len;
	int listen_fd, epfd, wake_fd;
	struct io_uring ring;
	bool ring_ok;
	pthread_t thread;
	bool started;
	uint32_t stop;        /* atomic */
	struct epoch_rec rec; /* reads the store (digests, snapshots) */

	uint16_t owners[STORE_SLOTS]; /* relaxed atomics: read by every worker */
	struct slotmap scratch;       /* the next map, computed here */
	uint64_t map_version;         /* atomic */
	bool eligible[MEMBERS_MAX + 1];
	bool ready;  /* atomic for readers */
	bool quorum; /* at least half the members (us included) not DOWN; atomic */
	int64_t start_ms;
	int64_t last_verify_ms;
	int64_t last_ping_ms;

	/* startup load */
	bool loading;
	bool need_merge; /* READY without a peer's copy: merge one before sending digests */
	bool merging;
	uint8_t range_state[LOAD_RANGES]; /* 0 to do, 1 in flight, 2 done */
	uint32_t ranges_done;
	int64_t load_progress_ms;
	uint64_t load_sent; /* load messages handed to the workers */
	struct {
		uint8_t shard;
		uint32_t off, len;
	} split[65536];     /* records_to_workers: where each record of a frame goes */
	uint64_t load_done; /* ... and applied by all of them (atomic, workers add) */

	uint32_t next_tag;
	struct mstate m[MEMBERS_MAX + 1]; /* by member id */
	struct link links[LINKS_MAX];

	void **backlog; /* (worker, message) pairs whose ring was full */
	uint32_t backlog_n, backlog_cap;
	uint64_t wake_mask;
	bool reading_paused;

	struct peer_stats stats;
	uint64_t rng;
};

#define PSTAT_ADD(p, name, d) STORE_RELAXED(&(p)->stats.name, (p)->stats.name + (d))
#define PSTAT_INC(p, name)    PSTAT_ADD(p, name, 1)

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t wall_version(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000) << 16;
}

/* ---- buffers ---- */

static bool pbuf_reserve(struct pbuf *b, size_t more)
{
	size_t cap;
	uint8_t *n;

	if (b->off > 0 && b->off == b->len) {
		b->off = b->len = 0;
	}
	if (b->len + more <= b->cap)
		return true;
	if (b->off > 0) { /* compact first */
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->len + more <= b->cap)
			return true;
	}
	cap = b->cap ? b->cap : 16384;
	while (cap < b->len + more)
		cap *= 2;
	n = mem_alloc(cap);
	if (n == NULL)
		return false;
	if (b->len)
		memcpy(n, b->p, b->len);
	mem_free(b->p);
	b->p = n;
	b->cap = cap;
	return true;
}

static void pbuf_free(struct pbuf *b)
{
	mem_free(b->p);
	memset(b, 0, sizeof(*b));
}

static size_t pbuf_used(const struct pbuf *b)
{
	return b->len - b->off;
}

/* ---- the map ---- */

uint16_t peer_owner(const struct peer *p, uint32_t slot)
{
	return LOAD_RELAXED(&p->owners[slot]);
}

uint16_t peer_self_id(const struct peer *p)
{
	return p->self;
}

int peer_wake_fd(const struct peer *p)
{
	return p->wake_fd;
}

bool peer_owns(void *ctx, uint32_t slot)
{
	const struct peer *p = ctx;

	/* Cut off from most of the cluster, expire nothing: see quorum_check. */
	return peer_owner(p, slot) == p->self && LOAD_RELAXED(&p->quorum);
}

uint64_t peer_map_read(const struct peer *p, uint16_t *owners)
{
	uint64_t v = LOAD_ACQUIRE(&p->map_version);

	for (uint32_t s = 0; s < STORE_SLOTS; s++)
		owners[s] = peer_owner(p, s);
	return v;
}

/* ---- talking to the workers ---- */

static void to_worker(struct peer *p, uint32_t w, void *msg)
{
	if (p->backlog_n == 0 && xcore_send(&p->srv->xcore, p->idx, w, msg)) {
		p->wake_mask |= 1ull << w;
		return;
	}
	if (p->backlog_n == p->backlog_cap) {
		uint32_t cap = p->backlog_cap ? p->backlog_cap * 2 : 64;
		void **b = mem_alloc(sizeof(b[0]) * 2 * cap);

		if (b == NULL) {
			log_error("out of memory for the peer thread's backlog");
			abort();
		}
		if (p->backlog_n)
			memcpy(b, p->backlog, sizeof(b[0]) * 2 * p->backlog_n);
		mem_free(p->backlog);
		p->backlog = b;
		p->backlog_cap = cap;
	}
	p->backlog[2 * p->backlog_n] = (void *)(uintptr_t)w;
	p->backlog[2 * p->backlog_n + 1] = msg;
	p->backlog_n++;
}

static void backlog_retry(struct peer *p)
{
	uint32_t i = 0;

	while (i < p->backlog_n) {
		uint32_t w = (uint32_t)(uintptr_t)p->backlog[2 * i];

		if (!xcore_send(&p->srv->xcore, p->idx, w, p->backlog[2 * i + 1]))
			break;
		p->wake_mask |= 1ull << w;
		i++;
	}
	if (i) {
		p->backlog_n -= i;
		memmove(p->backlog, p->backlog + 2 * i, sizeof(p->backlog[0]) * 2 * p->backlog_n);
	}
}

static void send_wakes(struct peer *p)
{
	uint64_t m = p->wake_mask;
	bool any = false;

	p->wake_mask = 0;
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
		io_uring_prep_msg_ring(sqe, p->srv->workers[to].ring.ring_fd, 0, WORKER_WAKE_UD, 0);
		io_uring_sqe_set_data64(sqe, 0);
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		any = true;
	}
	if (any) {
		struct io_uring_cqe *cqe;

		io_uring_submit(&p->ring);
		while (io_uring_peek_cqe(&p->ring, &cqe) == 0) {
			/* A worker that already stopped closed its ring: nothing to wake. */
			if (cqe->res < 0 && !LOAD_ACQUIRE(&p->srv->stop))
				log_error("waking a worker: %s", strerror(-cqe->res));
			io_uring_cqe_seen(&p->ring, cqe);
		}
	}
}

/* Records to every worker, which applies those of its shard. */
/*
 * Records to the workers: each record goes only to the worker whose shard
 * holds its service (decoded once here, so a worker decodes only its own),
 * one message per worker with records. A repair goes to every worker even
 * with no record of its shard: each prunes its part of the slot.
 */
static void records_to_workers(struct peer *p, uint8_t kind, const uint8_t *data, uint32_t len,
                               uint32_t count, uint16_t slot, uint64_t before, uint64_t *done)
{
	static __thread struct store_kv kv[RECORD_META_MAX];
	uint32_t nw = p->srv->nworkers;
	uint32_t bytes[STORE_SHARDS_MAX] = { 0 }, n[STORE_SHARDS_MAX] = { 0 };
	struct xrecords *m[STORE_SHARDS_MAX] = { 0 };
	struct proto_rd rd;

	proto_rd_init(&rd, data, len);
	for (uint32_t i = 0; i < count; i++) { /* checked whole already: cannot fail */
		const uint8_t *start = rd.p;
		struct store_record r;

		record_get(&rd, &r, kv, RECORD_META_MAX);
		p->split[i].shard = r.key.svc.service.p
		                            ? (uint8_t)store_shard_of(p->srv->store, &r.key.svc)
		                            : 0;
		p->split[i].off = (uint32_t)(start - data);
		p->split[i].len = (uint32_t)(rd.p - start);
		bytes[p->split[i].shard] += p->split[i].len;
		n[p->split[i].shard]++;
	}
	for (uint32_t w = 0; w < nw; w++) {
		if (n[w] == 0 && kind != XM_REPAIR)
			continue;
		m[w] = mem_alloc(sizeof(*m[w]) + bytes[w]);
		if (m[w] == NULL) {
			log_error("out of memory for %u replicated records: verify repairs them",
			          n[w]);
			continue;
		}
		memset(m[w], 0, sizeof(*m[w]));
		m[w]->kind = kind;
		m[w]->refs = 1;
		m[w]->slot = slot;
		m[w]->before = before;
		m[w]->done = done;
	}
	for (uint32_t i = 0; i < count; i++) {
		struct xrecords *x = m[p->split[i].shard];

		if (x == NULL)
			continue;
		memcpy(x->data + x->len, data + p->split[i].off, p->split[i].len);
		x->len += p->split[i].len;
		x->count++;
	}
	for (uint32_t w = 0; w < nw; w++) {
		if (m[w] == NULL)
			continue;
		if (done)
			p->load_sent++;
		to_worker(p, w, m[w]);
	}
}

/* ---- frames out ---- */

static void link_close(struct peer *p, struct link *l, const char *why);

/* Reserves a frame of body_len on the link's output; NULL if memory ran out. */
static uint8_t *frame_begin(struct link *l, size_t body_len)
{
	if (!pbuf_reserve(&l->out, PROTO_HEADER_BYTES + body_len))
		return NULL;
	return l->out.p + l->out.len;
}

static void frame_end(struct link *l, uint8_t op, uint32_t body_len, uint32_t id, uint16_t status,
                      uint16_t count)
{
	pwire_header_put(l->out.p + l->out.len, op, body_len, id, status, count);
	l->out.len += PROTO_HEADER_BYTES + body_len;
}

static bool frame_put(struct link *l, uint8_t op, const void *body, uint32_t len, uint32_t id,
                      uint16_t status, uint16_t count)
{
	uint8_t *f = frame_begin(l, len);

	if (f == NULL)
		return false;
	if (len)
		memcpy(f + PROTO_HEADER_BYTES, body, len);
	frame_end(l, op, len, id, status, count);
	return true;
}

static void link_events(struct peer *p, struct link *l);

static void link_flush(struct peer *p, struct link *l)
{
	while (pbuf_used(&l->out) > 0) {
		ssize_t n = send(l->fd, l->out.p + l->out.off, pbuf_used(&l->out), MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			link_close(p, l, strerror(errno));
			return;
		}
		l->out.off += (size_t)n;
	}
	if (l->out.off == l->out.len)
		l->out.off = l->out.len = 0;
	if (pbuf_used(&l->out) > OUT_CLOSE_FACTOR * p->srv->cfg.peer_backlog_bytes) {
		link_close(p, l, "the peer does not read what it asks for");
		return;
	}
	bool want = pbuf_used(&l->out) > 0;

	if (want != l->want_out) {
		l->want_out = want;
		link_events(p, l);
	}
}

/* What epoll watches on a link: input unless reading is paused, output while some waits. */
static void link_events(struct peer *p, struct link *l)
{
	struct epoll_event ev = { .events = (p->reading_paused ? 0 : EPOLLIN) |
		                            (l->want_out ? EPOLLOUT : 0),
		                  .data.ptr = l };

	epoll_ctl(p->epfd, EPOLL_CTL_MOD, l->fd, &ev);
}

/*
 * Workers behind (BACKLOG_PAUSE messages wait for them): stop watching the
 * links' input, so bytes wait in the sockets and TCP slows the peers down
 * instead of our memory growing; watch again once the workers caught up.
 * Silence while paused is ours, not the peers': their last_rx is kept fresh.
 */
static void reading_pause_check(struct peer *p)
{
	bool pause = p->backlog_n > BACKLOG_PAUSE;

	if (p->reading_paused && !pause && p->backlog_n > BACKLOG_PAUSE / 2)
		pause = true; /* hysteresis */
	if (pause == p->reading_paused) {
		if (pause)
			for (uint32_t id = 1; id <= p->ms.n; id++)
				if (p->m[id].link)
					STORE_RELAXED(&p->m[id].last_rx_ms, mono_ms());
		return;
	}
	p->reading_paused = pause;
	for (uint32_t i = 0; i < LINKS_MAX; i++)
		if (p->links[i].state >= L_HELLO)
			link_events(p, &p->links[i]);
}

/* ---- links ---- */

static struct link *link_new(struct peer *p, int fd, bool initiator, uint16_t id)
{
	for (uint32_t i = 0; i < LINKS_MAX; i++) {
		struct link *l = &p->links[i];

		if (l->state != L_FREE)
			continue;
		memset(l, 0, sizeof(*l));
		l->fd = fd;
		l->initiator = initiator;
		l->id = id;
		l->opened_ms = mono_ms();
		l->state = initiator ? L_CONNECTING : L_HELLO;
		struct epoll_event ev = { .events = EPOLLIN | (initiator ? EPOLLOUT : 0),
			                  .data.ptr = l };

		l->want_out = initiator;
		if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			l->state = L_FREE;
			return NULL;
		}
		return l;
	}
	return NULL;
}

static void fail_forwards(struct peer *p, struct mstate *ms);
static void pulls_lost(struct peer *p, struct mstate *ms);
static void member_down(struct peer *p, uint16_t id);

static void link_close(struct peer *p, struct link *l, const char *why)
{
	if (l->state == L_FREE)
		return;
	if (l->id && p->m[l->id].dialing == l)
		p->m[l->id].dialing = NULL;
	if (l->id && p->m[l->id].link == l) {
		if (l->state == L_UP)
			log_warn("peer %s: link lost (%s)", p->ms.m[l->id - 1].addr, why);
		p->m[l->id].link = NULL;
		member_down(p, l->id);
	}
	epoll_ctl(p->epfd, EPOLL_CTL_DEL, l->fd, NULL);
	close(l->fd);
	pbuf_free(&l->in);
	pbuf_free(&l->out);
	l->state = L_FREE;
	l->fd = -1;
}

static void send_hello(struct peer *p, struct link *l, uint16_t to)
{
	uint8_t b[8 + AUTH_NONCE_BYTES];
	struct proto_wr w;

	proto_wr_init(&w, b, sizeof(b));
	proto_wr_u16(&w, PWIRE_VERSION);
	proto_wr_u16(&w, p->self);
	proto_wr_u16(&w, to);
	proto_wr_u16(&w, p->srv->port);
	proto_wr_bytes(&w, l->nonce_me, AUTH_NONCE_BYTES);
	frame_put(l, P_HELLO, b, sizeof(b), 0, 0, 0);
}

static void dial(struct peer *p, uint16_t id, int64_t now)
{
	const struct member *mb = &p->ms.m[id - 1];
	struct mstate *ms = &p->m[id];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	char port[8];
	int fd = -1;

	ms->backoff_ms = ms->backoff_ms ? ms->backoff_ms * 2 : DIAL_BACKOFF_MIN_MS;
	if (ms->backoff_ms > DIAL_BACKOFF_MAX_MS)
		ms->backoff_ms = DIAL_BACKOFF_MAX_MS;
	ms->next_dial_ms = now + ms->backoff_ms;
	snprintf(port, sizeof(port), "%u", mb->port);
	if (getaddrinfo(mb->host, port, &hints, &ai) != 0 || ai == NULL)
		return;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		int one = 1;

		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return;
	struct link *l = link_new(p, fd, true, id);

	if (l == NULL) {
		close(fd);
		return;
	}
	ms->dialing = l;
}

static void on_connected(struct peer *p, struct link *l)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
		link_close(p, l, strerror(err ? err : errno));
		return;
	}
	l->state = L_HELLO;
	auth_nonce(l->nonce_me);
	send_hello(p, l, l->id);
}

static void on_accept(struct peer *p)
{
	for (;;) {
		int fd = accept4(p->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int one = 1;

		if (fd < 0)
			return;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (link_new(p, fd, false, 0) == NULL) {
			log_warn("peer port: too many links, connection refused");
			close(fd);
		}
	}
}

static void auth_refuse(struct peer *p, struct link *l, const char *why)
{
	PSTAT_INC(p, auth_failures);
	log_warn("peer link refused: %s", why);
	link_close(p, l, why);
}

static void send_ping(struct peer *p, struct link *l);
static void client_addr_set(struct peer *p, uint16_t id, uint16_t client_port);

/* The member that dialled a link. */
static uint16_t dialler(const struct peer *p, const struct link *l)
{
	return l->initiator ? p->self : l->id;
}

static void link_up(struct peer *p, struct link *l)
{
	struct mstate *ms = &p->m[l->id];

	if (ms->dialing == l)
		ms->dialing = NULL;
	if (ms->link && ms->link != l) {
		/*
		 * Two links to one member: both dialled at once (a node
		 * starting dials everyone), or the member restarted. Both ends
		 * keep the link the lower id dialled, so they keep the same
		 * one; between links of the same dialler the new one wins.
		 */
		if (dialler(p, ms->link) < dialler(p, l)) {
			link_close(p, l, "a link to this member already exists");
			return;
		}
		link_close(p, ms->link, "replaced by a new link");
	}
	ms->link = l;
	l->state = L_UP;
	client_addr_set(p, l->id, l->client_port);
	STORE_RELAXED(&ms->last_rx_ms, mono_ms());
	ms->backoff_ms = 0;
	STORE_RELAXED(&ms->health, PEER_UP);
	PSTAT_INC(p, links_up);
	log_info("peer %s: link up", p->ms.m[l->id - 1].addr);
	send_ping(p, l); /* our READY flag now, not a ping interval later */
}

static void client_addr_set(struct peer *p, uint16_t id, uint16_t client_port)
{
	const struct member *mb = &p->ms.m[id - 1];

	snprintf(p->m[id].client_addr, sizeof(p->m[id].client_addr),
	         strchr(mb->host, ':') ? "[%s]:%u" : "%s:%u", mb->host, client_port);
}

static void on_hello(struct peer *p, struct link *l, const uint8_t *body)
{
	struct proto_rd r;
	uint16_t ver, from, to, cport;
	uint8_t mac[AUTH_MAC_BYTES];

	proto_rd_init(&r, body, 8 + AUTH_NONCE_BYTES);
	ver = proto_rd_u16(&r);
	from = proto_rd_u16(&r);
	to = proto_rd_u16(&r);
	cport = proto_rd_u16(&r);
	if (ver != PWIRE_VERSION || to != p->self || from == 0 || from > p->ms.n ||
	    from == p->self || l->have_peer_hello) {
		auth_refuse(p, l, "bad hello (version, ids or repeated)");
		return;
	}
	memcpy(l->nonce_peer, r.p, AUTH_NONCE_BYTES);
	l->have_peer_hello = true;
	if (l->initiator) {
		if (from != l->id) {
			auth_refuse(p, l, "hello from another member than dialled");
			return;
		}
		l->client_port = cport;
		l->state = L_AUTH; /* the acceptor's AUTH follows */
		return;
	}
	l->id = from;
	l->client_port = cport;
	auth_nonce(l->nonce_me);
	send_hello(p, l, from);
	auth_mac(p->secret, p->secret_len, AUTH_ACCEPTOR, l->nonce_peer, l->nonce_me, from, p->self,
	         mac);
	frame_put(l, P_AUTH, mac, sizeof(mac), 0, 0, 0);
	l->state = L_AUTH;
}

static void on_auth(struct peer *p, struct link *l, const uint8_t *body)
{
	uint8_t mac[AUTH_MAC_BYTES];

	if (l->state != L_AUTH) {
		auth_refuse(p, l, "auth before hello");
		return;
	}
	if (l->initiator) {
		if (auth_check(p->secret, p->secret_len, AUTH_ACCEPTOR, l->nonce_me, l->nonce_peer,
		               p->self, l->id, body) != 0) {
			auth_refuse(p, l, "the acceptor does not know the cluster secret");
			return;
		}
		auth_mac(p->secret, p->secret_len, AUTH_INITIATOR, l->nonce_me, l->nonce_peer,
		         p->self, l->id, mac);
		frame_put(l, P_AUTH, mac, sizeof(mac), 0, 0, 0);
	} else if (auth_check(p->secret, p->secret_len, AUTH_INITIATOR, l->nonce_peer, l->nonce_me,
	                      l->id, p->self, body) != 0) {
		auth_refuse(p, l, "the dialler does not know the cluster secret");
		return;
	}
	link_up(p, l);
}

/* ---- forwarding: this node's items to their owners ---- */

static void pending_back(struct peer *p, struct pending *pd)
{
	to_worker(p, pd->origin, pd);
}

static void fref_answer(struct peer *p, struct fref *f, int16_t res)
{
	f->p->results[f->i] = res;
	if (--f->p->fwd_left == 0)
		pending_back(p, f->p);
}

static bool build_add(struct fwd_build *b, const uint8_t *item, size_t len, struct pending *pd,
                      uint32_t i)
{
	if (b->n == b->cap) {
		uint32_t cap = b->cap ? b->cap * 2 : 64;
		struct fref *r = mem_alloc(sizeof(r[0]) * cap);

		if (r == NULL)
			return false;
		if (b->n)
			memcpy(r, b->refs, sizeof(r[0]) * b->n);
		mem_free(b->refs);
		b->refs = r;
		b->cap = cap;
	}
	if (!pbuf_reserve(&b->items, len))
		return false;
	memcpy(b->items.p + b->items.len, item, len);
	b->items.len += len;
	b->refs[b->n].p = pd;
	b->refs[b->n].i = i;
	b->n++;
	return true;
}

/* Sends one owner's collected items of one op as a FWD frame. */
static void build_flush(struct peer *p, uint16_t id, uint32_t opi)
{
	struct mstate *ms = &p->m[id];
	struct fwd_build *b = &ms->build[opi];
	struct link *l = ms->link;
	struct fwd_wait *wt;

	if (b->n == 0)
		return;
	if (l == NULL || l->state != L_UP || ms->waits_n == UINT32_MAX ||
	    !frame_put(l, P_FWD, b->items.p, (uint32_t)b->items.len, p->next_tag, fwd_ops[opi],
	               (uint16_t)b->n)) {
		for (uint32_t i = 0; i < b->n; i++)
			fref_answer(p, &b->refs[i], (int16_t)-ERR_UNAVAILABLE);
		PSTAT_ADD(p, fwd_unavailable, b->n);
		b->n = 0;
		b->items.len = 0;
		return;
	}
	if (ms->waits_n == ms->waits_cap) {
		uint32_t cap = ms->waits_cap ? ms->waits_cap * 2 : 16;
		struct fwd_wait *nw = mem_alloc(sizeof(nw[0]) * cap);

		if (nw == NULL) {
			log_error("out of memory for forwards");
			abort(); /* the frame is sent: its answers must find their requests */
		}
		if (ms->waits_n)
			memcpy(nw, ms->waits, sizeof(nw[0]) * ms->waits_n);
		mem_free(ms->waits);
		ms->waits = nw;
		ms->waits_cap = cap;
	}
	wt = &ms->waits[ms->waits_n++];
	wt->tag = p->next_tag++;
	wt->sent_ms = mono_ms();
	wt->n = b->n;
	wt->refs = b->refs; /* the build takes a fresh array */
	PSTAT_INC(p, fwd_batches);
	PSTAT_ADD(p, fwd_items, b->n);
	b->refs = NULL;
	b->cap = 0;
	b->n = 0;
	b->items.len = 0;
}

/* A worker's request with items for other nodes. */
static void on_forward(struct peer *p, struct pending *pd)
{
	static __thread struct store_kv kv[PROTO_META_MAX];
	struct proto_rd r;
	uint32_t opi = pd->h.op == OP_REGISTER ? 0 : pd->h.op == OP_DEREGISTER ? 1 : 2;

	pd->fwd_left = 1; /* held until every item is placed */
	proto_rd_init(&r, pd->body, pd->h.body_len);
	for (uint32_t i = 0; i < pd->h.count; i++) {
		const uint8_t *start = r.p;
		struct store_key k;
		struct store_val v;
		int item_err;
		uint16_t owner;

		if (pd->h.op == OP_DEREGISTER)
			proto_rd_key(&r, &k);
		else
			proto_rd_instance(&r, &k, &v, kv, PROTO_META_MAX, &item_err);
		if (!pd->marks[i]) /* run by the workers */
			continue;
		owner = peer_owner(p, store_slot_of(&k.addr));
		if (owner == 0 || owner == p->self || owner > p->ms.n || p->m[owner].link == NULL ||
		    p->m[owner].link->state != L_UP) {
			pd->results[i] = (int16_t)-ERR_UNAVAILABLE;
			PSTAT_INC(p, fwd_unavailable);
			continue;
		}
		if (p->m[owner].build[opi].items.len >= FWD_FRAME_BYTES ||
		    p->m[owner].build[opi].n == PWIRE_FWD_MAX)
			build_flush(p, owner, opi);
		if (!build_add(&p->m[owner].build[opi], start, (size_t)(r.p - start), pd, i)) {
			pd->results[i] = (int16_t)-ERR_UNAVAILABLE;
			continue;
		}
		pd->fwd_left++;
	}
	if (--pd->fwd_left == 0)
		pending_back(p, pd);
}

static void on_fwd_ack(struct peer *p, uint16_t id, const struct proto_header *h,
                       const uint8_t *body)
{
	struct mstate *ms = &p->m[id];

	for (uint32_t i = 0; i < ms->waits_n; i++) {
		struct fwd_wait *wt = &ms->waits[i];

		if (wt->tag != h->request_id)
			continue;
		for (uint32_t j = 0; j < wt->n; j++) {
			int16_t res = (int16_t)-ERR_UNAVAILABLE;

			if (j < h->count)
				res = (int16_t)(body[2 * j] | (body[2 * j + 1] << 8));
			fref_answer(p, &wt->refs[j], res);
		}
		mem_free(wt->refs);
		ms->waits[i] = ms->waits[--ms->waits_n];
		return;
	}
}

/* The link to an owner is gone: everything waiting on it is answered retryable. */
static void fail_forwards(struct peer *p, struct mstate *ms)
{
	for (uint32_t i = 0; i < ms->waits_n; i++) {
		for (uint32_t j = 0; j < ms->waits[i].n; j++)
			fref_answer(p, &ms->waits[i].refs[j], (int16_t)-ERR_UNAVAILABLE);
		PSTAT_ADD(p, fwd_unavailable, ms->waits[i].n);
		mem_free(ms->waits[i].refs);
	}
	ms->waits_n = 0;
}

/* ---- forwarding: a peer's items run here ---- */

static void on_fwd(struct peer *p, uint16_t from, const struct proto_header *h, const uint8_t *body)
{
	static __thread struct store_kv kv[PROTO_META_MAX];
	bool over = p->m[from].fwd_serving >= FWD_SERVING_MAX;
	struct pending *pd = over ? NULL : mem_alloc(sizeof(*pd) + 2u * h->count + h->body_len);
	struct proto_rd r;

	if (pd == NULL) { /* bounded: answer busy, the origin's client retries */
		int16_t *res = mem_alloc(2u * h->count + 1);

		if (res && p->m[from].link) {
			for (uint32_t i = 0; i < h->count; i++)
				res[i] = (int16_t)-ERR_BUSY;
			frame_put(p->m[from].link, P_FWD_ACK, res, 2u * h->count, h->request_id, 0,
			          h->count);
		}
		mem_free(res);
		return;
	}
	memset(pd, 0, sizeof(*pd));
	pd->kind = XM_PENDING;
	pd->origin = p->idx;
	pd->h = *h;
	pd->h.op = (uint8_t)h->status;
	pd->h.status = 0;
	pd->results = (int16_t *)(pd + 1);
	pd->body = (uint8_t *)(pd->results + h->count);
	memcpy(pd->body, body, h->body_len);
	pd->fwd_tag = h->request_id;
	pd->fwd_from = from;
	proto_rd_init(&r, pd->body, h->body_len);
	for (uint32_t i = 0; i < h->count; i++) {
		struct store_key k;
		struct store_val v;
		int item_err;

		pd->results[i] = 0;
		if (pd->h.op == OP_DEREGISTER)
			proto_rd_key(&r, &k);
		else
			proto_rd_instance(&r, &k, &v, kv, PROTO_META_MAX, &item_err);
		if (k.svc.service.p == NULL)
			pd->results[i] = (int16_t)-ERR_NAME_EMPTY;
		else
			pd->shard_mask |= 1ull << store_shard_of(p->srv->store, &k.svc);
	}
	PSTAT_ADD(p, fwd_served, h->count);
	p->m[from].fwd_serving++;
	pd->parts = (uint32_t)__builtin_popcountll(pd->shard_mask);
	if (pd->parts == 0) {
		pd->parts = 1;
		to_worker(p, 0, pd); /* nothing to run: a round trip keeps one path */
		return;
	}
	for (uint32_t w = 0; w < p->srv->nworkers; w++)
		if (pd->shard_mask & (1ull << w))
			to_worker(p, w, pd);
}

/* A part of a peer's forwarded request came back from a worker. */
static void on_fwd_part(struct peer *p, struct pending *pd)
{
	struct link *l;

	if (--pd->parts > 0)
		return;
	if (p->m[pd->fwd_from].fwd_serving > 0)
		p->m[pd->fwd_from].fwd_serving--;
	l = p->m[pd->fwd_from].link;
	if (l && l->state == L_UP) {
		uint8_t *f = frame_begin(l, 2u * pd->h.count);

		if (f) {
			for (uint32_t i = 0; i < pd->h.count; i++) {
				uint16_t v = (uint16_t)pd->results[i];

				f[PROTO_HEADER_BYTES + 2 * i] = (uint8_t)v;
				f[PROTO_HEADER_BYTES + 2 * i + 1] = (uint8_t)(v >> 8);
			}
			frame_end(l, P_FWD_ACK, 2u * pd->h.count, pd->fwd_tag, 0, pd->h.count);
		}
	}
	mem_free(pd);
}

/* ---- sync ---- */

static void delayed_push(struct mstate *ms, const uint8_t *hdr, const uint8_t *body, uint32_t len,
                         int64_t due)
{
	struct delayed *d = mem_alloc(sizeof(*d) + PROTO_HEADER_BYTES + len);

	if (d == NULL)
		return;
	d->due_ms = due;
	d->next = NULL;
	d->len = PROTO_HEADER_BYTES + len;
	memcpy(d->frame, hdr, PROTO_HEADER_BYTES);
	memcpy(d->frame + PROTO_HEADER_BYTES, body, len);
	if (ms->delayed_tail)
		ms->delayed_tail->next = d;
	else
		ms->delayed = d;
	ms->delayed_tail = d;
}

static bool fault_drop(struct peer *p)
{
	uint32_t pct = p->srv->cfg.fault_drop_pct;

	if (pct == 0)
		return false;
	p->rng ^= p->rng << 13;
	p->rng ^= p->rng >> 7;
	p->rng ^= p->rng << 17;
	return p->rng % 100 < pct;
}

/* A batch of this node's changes goes to every peer. */
static void on_sync_out(struct peer *p, struct xrecords *m)
{
	int64_t now = mono_ms();

	for (uint32_t id = 1; id <= p->ms.n; id++) {
		struct mstate *ms = &p->m[id];
		struct link *l = ms->link;

		if (id == p->self)
			continue;
		if (l == NULL || l->state != L_UP ||
		    pbuf_used(&l->out) + m->len > p->srv->cfg.peer_backlog_bytes) {
			PSTAT_ADD(p, sync_dropped, m->count);
			continue;
		}
		if (fault_drop(p)) {
			PSTAT_INC(p, fault_dropped);
			continue;
		}
		if (p->srv->cfg.fault_delay_ms) {
			uint8_t hdr[PROTO_HEADER_BYTES];

			pwire_header_put(hdr, P_SYNC, m->len, 0, 0, (uint16_t)m->count);
			delayed_push(ms, hdr, m->data, m->len, now + p->srv->cfg.fault_delay_ms);
			continue;
		}
		if (!frame_put(l, P_SYNC, m->data, m->len, 0, 0, (uint16_t)m->count)) {
			PSTAT_ADD(p, sync_dropped, m->count);
			continue;
		}
		PSTAT_INC(p, sync_frames_out);
		PSTAT_ADD(p, sync_records_out, m->count);
	}
	mem_free(m);
}

static void delayed_flush(struct peer *p, int64_t now)
{
	for (uint32_t id = 1; id <= p->ms.n; id++) {
		struct mstate *ms = &p->m[id];

		while (ms->delayed && ms->delayed->due_ms <= now) {
			struct delayed *d = ms->delayed;

			ms->delayed = d->next;
			if (ms->delayed == NULL)
				ms->delayed_tail = NULL;
			if (ms->link && ms->link->state == L_UP &&
			    pbuf_reserve(&ms->link->out, d->len)) {
				memcpy(ms->link->out.p + ms->link->out.len, d->frame, d->len);
				ms->link->out.len += d->len;
				PSTAT_INC(p, sync_frames_out);
			}
			mem_free(d);
		}
	}
}

/* A sync record batch of a workers' feed may exceed 65535 records: it never does (256 KiB). */

/* ---- verify ---- */

static uint64_t slot_mix(uint32_t slot, uint64_t sum, uint32_t count)
{
	uint64_t b[2] = { sum, ((uint64_t)slot << 32) | count };

	return XXH3_64bits(b, sizeof(b));
}

/* The digest of the slots `owner` owns in our map, over our copy. */
static void digest(struct peer *p, uint16_t owner, uint64_t *d)
{
	epoch_enter(&p->rec);
	for (uint32_t r = 0; r < PWIRE_RANGES; r++) {
		uint64_t acc = 0;

		for (uint32_t s = r * PWIRE_RANGE_SLOTS; s < (r + 1) * PWIRE_RANGE_SLOTS; s++) {
			uint32_t count;
			uint64_t sum;

			if (peer_owner(p, s) != owner)
				continue;
			sum = store_slot_checksum(p->srv->store, s, &count);
			acc += slot_mix(s, sum, count);
		}
		d[r] = acc;
	}
	epoch_exit(&p->rec);
}

static void verify_round(struct peer *p)
{
	uint64_t d[PWIRE_RANGES];
	uint8_t body[8 * PWIRE_RANGES];
	struct proto_wr w;

	digest(p, p->self, d);
	proto_wr_init(&w, body, sizeof(body));
	for (uint32_t r = 0; r < PWIRE_RANGES; r++)
		proto_wr_u64(&w, d[r]);
	for (uint32_t id = 1; id <= p->ms.n; id++) {
		struct link *l = p->m[id].link;

		if (id == p->self || l == NULL || l->state != L_UP)
			continue;
		if (frame_put(l, P_DIGEST, body, sizeof(body), 0, 0, 0)) {
			PSTAT_INC(p, verify_rounds);
			PSTAT_ADD(p, verify_bytes_out, PROTO_HEADER_BYTES + sizeof(body));
		}
	}
}

static void on_digest(struct peer *p, uint16_t from, const uint8_t *body)
{
	uint64_t mine[PWIRE_RANGES];
	uint8_t req[2 + 2 * PWIRE_RANGES];
	struct proto_rd r;
	struct proto_wr w;
	uint16_t n = 0;

	if (!p->ready)
		return; /* loading: the load brings everything */
	digest(p, from, mine);
	proto_rd_init(&r, body, 8 * PWIRE_RANGES);
	proto_wr_init(&w, req + 2, sizeof(req) - 2);
	for (uint32_t i = 0; i < PWIRE_RANGES; i++) {
		if (proto_rd_u64(&r) != mine[i]) {
			proto_wr_u16(&w, (uint16_t)i);
			n++;
		} else { /* ranges of 64 slots: one bitmap word */
			p->m[from].suspect[i] = 0;
		}
	}
	if (n == 0)
		return;
	PSTAT_ADD(p, verify_mismatch, n);
	req[0] = (uint8_t)n;
	req[1] = (uint8_t)(n >> 8);
	frame_put(p->m[from].link, P_SUMS_REQ, req, 2u + 2u * n, 0, 0, 0);
}

/* A peer asks for our per-slot sums of some ranges: the slots we own in them. */
static void on_sums_req(struct peer *p, uint16_t from, const struct proto_header *h,
                        const uint8_t *body)
{
	struct proto_rd r;
	struct pbuf b = { 0 };
	uint16_t n, out = 0;

	if (!p->ready)
		return;
	proto_rd_init(&r, body, h->body_len);
	n = proto_rd_u16(&r);
	if (!pbuf_reserve(&b, 2 + (size_t)n * PWIRE_RANGE_SLOTS * 14))
		return;
	b.len = 2;
	epoch_enter(&p->rec);
	for (uint16_t i = 0; i < n; i++) {
		uint16_t range = proto_rd_u16(&r);

		for (uint32_t s = range * PWIRE_RANGE_SLOTS; s < (range + 1u) * PWIRE_RANGE_SLOTS;
		     s++) {
			uint32_t count;
			uint64_t sum;
			struct proto_wr w;

			if (peer_owner(p, s) != p->self)
				continue;
			sum = store_slot_checksum(p->srv->store, s, &count);
			proto_wr_init(&w, b.p + b.len, 14);
			proto_wr_u16(&w, (uint16_t)s);
			proto_wr_u64(&w, sum);
			proto_wr_u32(&w, count);
			b.len += 14;
			out++;
		}
	}
	epoch_exit(&p->rec);
	b.p[0] = (uint8_t)out;
	b.p[1] = (uint8_t)(out >> 8);
	frame_put(p->m[from].link, P_SUMS, b.p, (uint32_t)b.len, 0, 0, 0);
	pbuf_free(&b);
}

/* The owner's per-slot sums: the slots that differ from our copy are to be pulled. */
static void on_sums(struct peer *p, uint16_t from, const struct proto_header *h,
                    const uint8_t *body)
{
	struct proto_rd r;
	uint16_t n;

	if (!p->ready)
		return;
	proto_rd_init(&r, body, h->body_len);
	n = proto_rd_u16(&r);
	epoch_enter(&p->rec);
	for (uint16_t i = 0; i < n; i++) {
		uint16_t s = proto_rd_u16(&r);
		uint64_t sum = proto_rd_u64(&r);
		uint32_t count = proto_rd_u32(&r), my_count;
		uint64_t my_sum = store_slot_checksum(p->srv->store, s, &my_count);

		uint64_t bit = 1ull << (s % 64);

		/* Only slots the sender owns in our view, and never one we own. */
		if (peer_owner(p, s) != from || (sum == my_sum && count == my_count)) {
			p->m[from].suspect[s / 64] &= ~bit;
			continue;
		}
		/*
		 * A difference seen once may be sync still in flight (the digest
		 * counts writes the owner has not sent yet); seen in two rounds
		 * in a row, it is real: pull the slot.
		 */
		if (p->m[from].suspect[s / 64] & bit)
			p->m[from].repair_want[s / 64] |= bit;
		else
			p->m[from].suspect[s / 64] |= bit;
	}
	epoch_exit(&p->rec);
}

/* ---- pulls: repair and load ---- */

static bool pull_send(struct peer *p, uint16_t id, struct pull *pl)
{
	struct mstate *ms = &p->m[id];
	uint8_t body[2 + 2 * PULL_SLOTS];
	struct proto_wr w;
	int k;

	for (k = 0; k < PULLS_MAX && ms->pulls[k]; k++)
		;
	if (k == PULLS_MAX || ms->link == NULL || ms->link->state != L_UP)
		return false;
	pl->tag = p->next_tag++;
	pl->sent_ms = mono_ms();
	proto_wr_init(&w, body, sizeof(body));
	proto_wr_u16(&w, pl->n);
	for (uint16_t i = 0; i < pl->n; i++)
		proto_wr_u16(&w, pl->slots[i]);
	if (!frame_put(ms->link, P_PULL, body, 2u + 2u * pl->n, pl->tag, pl->load ? PULL_LOAD : 0,
	               0))
		return false;
	ms->pulls[k] = pl;
	return true;
}

static uint32_t pulls_free(const struct mstate *ms)
{
	uint32_t n = 0;

	for (int k = 0; k < PULLS_MAX; k++)
		n += ms->pulls[k] == NULL;
	return n;
}

static void repair_schedule(struct peer *p)
{
	for (uint32_t id = 1; id <= p->ms.n; id++) {
		struct mstate *ms = &p->m[id];

		while (id != p->self && ms->link && ms->link->state == L_UP && pulls_free(ms) > 0) {
			struct pull *pl = mem_alloc(sizeof(*pl));

			if (pl == NULL)
				return;
			memset(pl, 0, sizeof(*pl));
			for (uint32_t wd = 0; wd < STORE_SLOTS / 64 && pl->n < PULL_SLOTS; wd++) {
				while (ms->repair_want[wd] && pl->n < PULL_SLOTS) {
					uint32_t b = (uint32_t)__builtin_ctzll(ms->repair_want[wd]);

					ms->repair_want[wd] &= ms->repair_want[wd] - 1;
					pl->slots[pl->n++] = (uint16_t)(wd * 64 + b);
				}
			}
			if (pl->n == 0 || !pull_send(p, (uint16_t)id, pl)) {
				mem_free(pl);
				break;
			}
			PSTAT_ADD(p, repair_slots, pl->n);
		}
	}
}

static void load_schedule(struct peer *p)
{
	for (uint32_t id = 1; id <= p->ms.n; id++) {
		struct mstate *ms = &p->m[id];

		if (id == p->self || !ms->ready || ms->link == NULL || ms->link->state != L_UP)
			continue;
		for (uint32_t r = 0; r < LOAD_RANGES && pulls_free(ms) > 0; r++) {
			struct pull *pl;

			if (p->range_state[r] != 0)
				continue;
			pl = mem_alloc(sizeof(*pl));
			if (pl == NULL)
				return;
			memset(pl, 0, sizeof(*pl));
			pl->load = true;
			pl->range = (uint16_t)r;
			/*
			 * Range r is every LOAD_RANGES-th slot from r, not 64
			 * neighbours: a slot is a region of the store's table,
			 * and filling an empty table region by region piles
			 * every probe sequence into the next region (quadratic);
			 * spread out, a load fills the table evenly.
			 */
			for (uint32_t s = 0; s < STORE_SLOTS / LOAD_RANGES; s++)
				pl->slots[pl->n++] = (uint16_t)(s * LOAD_RANGES + r);
			if (!pull_send(p, (uint16_t)id, pl)) {
				mem_free(pl);
				break;
			}
			p->range_state[r] = 1;
		}
	}
}

static void pull_finished(struct peer *p, uint16_t id, int k, bool ok)
{
	struct mstate *ms = &p->m[id];
	struct pull *pl = ms->pulls[k];

	ms->pulls[k] = NULL;
	if (pl->load) {
		if (ok) {
			p->range_state[pl->range] = 2;
			p->ranges_done++;
			p->load_progress_ms = mono_ms();
		} else {
			p->range_state[pl->range] = 0; /* another peer takes it */
		}
	}
	mem_free(pl);
}

/* A link went down: its pulls are lost (load ranges go back to the queue). */
static void pulls_lost(struct peer *p, struct mstate *ms)
{
	uint16_t id = (uint16_t)(ms - p->m);

	for (int k = 0; k < PULLS_MAX; k++)
		if (ms->pulls[k])
			pull_finished(p, id, k, false);
	memset(ms->repair_want, 0, sizeof(ms->repair_want));
	memset(ms->suspect, 0, sizeof(ms->suspect));
	ms->chunk_slot = -1;
	ms->chunk->len = 0;
	while (ms->serving) {
		struct serve *sv = ms->serving;

		ms->serving = sv->link_next;
		mem_free(sv);
	}
	ms->serving_tail = NULL;
	ms->serving_n = 0;
}

static int pull_find(struct mstate *ms, uint32_t tag)
{
	for (int k = 0; k < PULLS_MAX; k++)
		if (ms->pulls[k] && ms->pulls[k]->tag == tag)
			return k;
	return -1;
}

static void on_chunk(struct peer *p, uint16_t from, const struct proto_header *h,
                     const uint8_t *body)
{
	struct mstate *ms = &p->m[from];
	int k = pull_find(ms, h->request_id);
	struct proto_rd r;
	uint16_t slot;
	uint64_t before;

	if (k < 0)
		return; /* a pull we gave up on */
	proto_rd_init(&r, body, 10);
	slot = proto_rd_u16(&r);
	before = proto_rd_u64(&r);
	if (ms->pulls[k]->load) {
		if (h->count)
			records_to_workers(p, XM_APPLY, body + 10, h->body_len - 10, h->count, slot,
			                   before, &p->load_done);
		PSTAT_ADD(p, load_records, h->count);
		if (h->status & CHUNK_LAST)
			PSTAT_INC(p, load_slots);
		return;
	}
	/* Repair: collect the slot whole, then replace ours. */
	if (ms->chunk_slot != slot) {
		ms->chunk_slot = slot;
		ms->chunk->len = 0;
		ms->chunk_count = 0;
		ms->chunk_over = false;
	}
	if (!ms->chunk_over && (ms->chunk_count + h->count > REPAIR_SLOT_RECORDS ||
	                        ms->chunk->len + h->body_len > REPAIR_SLOT_BYTES)) {
		log_warn("repair of slot %u from %s given up: over %u records or %u MiB", slot,
		         p->ms.m[from - 1].addr, REPAIR_SLOT_RECORDS, REPAIR_SLOT_BYTES >> 20);
		ms->chunk_over = true;
		ms->chunk->len = 0;
	}
	if (h->body_len > 10 && !ms->chunk_over) {
		if (!pbuf_reserve(ms->chunk, h->body_len - 10))
			return;
		memcpy(ms->chunk->p + ms->chunk->len, body + 10, h->body_len - 10);
		ms->chunk->len += h->body_len - 10;
		ms->chunk_count += h->count;
	}
	if (!(h->status & CHUNK_LAST))
		return;
	/* Never replace a slot we own, nor one the sender no longer owns in our view. */
	if (peer_owner(p, slot) == from && p->ready && !ms->chunk_over)
		records_to_workers(p, XM_REPAIR, ms->chunk->p, (uint32_t)ms->chunk->len,
		                   ms->chunk_count, slot, before, NULL);
	PSTAT_ADD(p, repair_records, ms->chunk_count);
	ms->chunk_slot = -1;
	ms->chunk->len = 0;
	ms->chunk_count = 0;
}

static void on_pull_done(struct peer *p, uint16_t from, const struct proto_header *h)
{
	int k = pull_find(&p->m[from], h->request_id);

	if (k >= 0)
		pull_finished(p, from, k, h->status == 0);
}

/* A peer pulls slots from us: queued, streamed as the link drains. */
static void on_pull(struct peer *p, uint16_t from, const struct proto_header *h,
                    const uint8_t *body)
{
	struct mstate *ms = &p->m[from];
	struct serve *sv;
	struct proto_rd r;

	if (!p->ready) { /* a node still loading serves no snapshot */
		frame_put(ms->link, P_PULL_DONE, NULL, 0, h->request_id, ERR_UNAVAILABLE, 0);
		return;
	}
	if (ms->serving_n >= SERVES_MAX) { /* bounded: the puller retries */
		frame_put(ms->link, P_PULL_DONE, NULL, 0, h->request_id, ERR_BUSY, 0);
		return;
	}
	sv = mem_alloc(sizeof(*sv));
	if (sv == NULL) {
		frame_put(ms->link, P_PULL_DONE, NULL, 0, h->request_id, ERR_NOMEM, 0);
		return;
	}
	memset(sv, 0, sizeof(*sv));
	sv->tag = h->request_id;
	proto_rd_init(&r, body, h->body_len);
	sv->n = proto_rd_u16(&r);
	for (uint16_t i = 0; i < sv->n; i++)
		sv->slots[i] = proto_rd_u16(&r);
	if (ms->serving_tail)
		ms->serving_tail->link_next = sv;
	else
		ms->serving = sv;
	ms->serving_tail = sv;
	ms->serving_n++;
}

/* Streams queued pulls while the link has room. */
static void serve_some(struct peer *p, uint16_t id)
{
	static __thread struct store_view views[CHUNK_RECORDS];
	struct mstate *ms = &p->m[id];
	struct link *l = ms->link;

	while (ms->serving && l && l->state == L_UP && pbuf_used(&l->out) < SERVE_HIGH_BYTES) {
		struct serve *sv = ms->serving;

		if (sv->next == sv->n) {
			frame_put(l, P_PULL_DONE, NULL, 0, sv->tag, 0, 0);
			ms->serving = sv->link_next;
			if (ms->serving == NULL)
				ms->serving_tail = NULL;
			ms->serving_n--;
			mem_free(sv);
			continue;
		}
		if (!sv->started) {
			store_cursor_init(&sv->cur, sv->slots[sv->next]);
			/*
			 * Deletes too: a replica that learns the delete with the
			 * listing refuses the older registration a late sync frame
			 * may still carry (it would come back until that frame's
			 * successor arrived).
			 */
			sv->cur.tombstones = true;
			sv->before = wall_version();
			sv->started = true;
		}
		epoch_enter(&p->rec);
		uint32_t n = store_slot_scan(p->srv->store, &sv->cur, views, CHUNK_RECORDS);
		size_t need = 4096 + (size_t)n * 256;
		struct proto_wr w;
		uint8_t *f;

		for (;;) { /* records are small; a big one doubles the room and encodes again */
			f = frame_begin(l, need);
			if (f == NULL) {
				epoch_exit(&p->rec);
				link_close(p, l, "out of memory");
				return;
			}
			proto_wr_init(&w, f + PROTO_HEADER_BYTES, need);
			proto_wr_u16(&w, sv->slots[sv->next]);
			proto_wr_u64(&w, sv->before);
			for (uint32_t i = 0; i < n; i++)
				record_put(&w, &views[i]);
			if (!w.overflow)
				break;
			need *= 2;
		}
		epoch_exit(&p->rec);
		frame_end(l, P_CHUNK, (uint32_t)(w.p - (f + PROTO_HEADER_BYTES)), sv->tag,
		          sv->cur.done ? CHUNK_LAST : 0, (uint16_t)n);
		PSTAT_ADD(p, snapshot_records, n);
		if (sv->cur.done) {
			sv->next++;
			sv->started = false;
		}
	}
}

/* ---- health and the map ---- */

static void map_update(struct peer *p)
{
	struct slotmap *sm = &p->scratch;
	struct xtakeover *t;
	uint32_t gained = 0, changed = 0;

	slotmap_compute(sm, &p->ms, p->eligible);
	t = mem_alloc(sizeof(*t));
	if (t)
		memset(t, 0, sizeof(*t));
	for (uint32_t s = 0; s < STORE_SLOTS; s++) {
		uint16_t old = peer_owner(p, s);

		if (old == sm->owner[s])
			continue;
		changed++;
		if (sm->owner[s] == p->self) {
			gained++;
			if (t)
				t->bits[s / 64] |= 1ull << (s % 64);
		}
		STORE_RELAXED(&p->owners[s], sm->owner[s]);
	}
	if (changed) {
		__atomic_add_fetch(&p->map_version, 1, __ATOMIC_RELEASE);
		PSTAT_INC(p, map_changes);
		log_info("slot map changed: %u slots moved, %u gained (this node owns %u)", changed,
		         gained, slotmap_count(sm, p->self));
	}
	if (gained && t) {
		t->kind = XM_TAKEOVER;
		t->refs = p->srv->nworkers;
		PSTAT_ADD(p, takeover_slots, gained);
		for (uint32_t w = 0; w < p->srv->nworkers; w++)
			to_worker(p, w, t);
	} else {
		mem_free(t);
	}
}

static void member_down(struct peer *p, uint16_t id)
{
	struct mstate *ms = &p->m[id];

	STORE_RELAXED(&ms->health, PEER_DOWN);
	STORE_RELAXED(&ms->ready, false);
	for (uint32_t opi = 0; opi < 3; opi++)
		build_flush(p, id, opi); /* no link: answered unavailable */
	fail_forwards(p, ms);
	pulls_lost(p, ms);
	while (ms->delayed) {
		struct delayed *d = ms->delayed;

		ms->delayed = d->next;
		mem_free(d);
	}
	ms->delayed_tail = NULL;
}

/*
 * A peer that stays UP but never answers: its forwarded items get
 * ERR_UNAVAILABLE and its pulls go elsewhere after WAIT_TIMEOUT_MS, so no
 * client write and no load waits for it forever.
 */
static void waits_expire(struct peer *p, uint16_t id, int64_t now)
{
	struct mstate *ms = &p->m[id];

	for (uint32_t i = 0; i < ms->waits_n;) {
		struct fwd_wait *wt = &ms->waits[i];

		if (now - wt->sent_ms < WAIT_TIMEOUT_MS) {
			i++;
			continue;
		}
		for (uint32_t j = 0; j < wt->n; j++)
			fref_answer(p, &wt->refs[j], (int16_t)-ERR_UNAVAILABLE);
		PSTAT_ADD(p, fwd_unavailable, wt->n);
		mem_free(wt->refs);
		*wt = ms->waits[--ms->waits_n];
	}
	for (int k = 0; k < PULLS_MAX; k++)
		if (ms->pulls[k] && now - ms->pulls[k]->sent_ms >= WAIT_TIMEOUT_MS)
			pull_finished(p, id, k, false);
}

/* Every instance of every slot we own gets a fresh deadline (TAKEOVER). */
static void take_over_owned(struct peer *p)
{
	struct xtakeover *t = mem_alloc(sizeof(*t));
	uint32_t n = 0;

	if (t == NULL)
		return;
	memset(t, 0, sizeof(*t));
	t->kind = XM_TAKEOVER;
	t->refs = p->srv->nworkers;
	for (uint32_t s = 0; s < STORE_SLOTS; s++)
		if (peer_owner(p, s) == p->self) {
			t->bits[s / 64] |= 1ull << (s % 64);
			n++;
		}
	PSTAT_ADD(p, takeover_slots, n);
	for (uint32_t w = 0; w < p->srv->nworkers; w++)
		to_worker(p, w, t);
}

/*
 * Expiry needs a quorum. A node that sees fewer than half the members
 * (itself included) is on the small side of a partition: the instances
 * it stops hearing about are most likely beating on the other side, and
 * deletes it made now would win over them (newer versions) once the
 * partition heals. So it expires nothing while cut off (the store releases
 * those instances from its expiry lists); when the quorum comes back, every
 * instance it owns gets a fresh deadline. The big side expires as usual. A
 * 2-node cluster keeps expiring on both sides (one of two is half).
 */
static void quorum_check(struct peer *p)
{
	uint32_t up = 1;
	bool q;

	for (uint32_t id = 1; id <= p->ms.n; id++)
		if (id != p->self && p->m[id].health != PEER_DOWN)
			up++;
	q = 2 * up >= p->ms.n;
	if (q == p->quorum)
		return;
	STORE_RELAXED(&p->quorum, q);
	if (q) {
		if (p->ready) {
			log_info("quorum back (%u of %u members reachable): expiry resumes", up,
			         p->ms.n);
			p->need_merge = true; /* what the others did meanwhile, before digests */
		}
		take_over_owned(p);
	} else if (p->ready) {
		log_warn("only %u of %u members reachable: expiry paused until a quorum is back",
		         up, p->ms.n);
	}
}

static void health_check(struct peer *p, int64_t now)
{
	bool changed = false;

	/* A handshake has --peer-down to finish. */
	for (uint32_t i = 0; i < LINKS_MAX; i++) {
		struct link *l = &p->links[i];

		if (l->state != L_FREE && l->state != L_UP &&
		    now - l->opened_ms > (int64_t)p->srv->cfg.peer_down_ms)
			link_close(p, l, "handshake timed out");
	}

	for (uint32_t id = 1; id <= p->ms.n; id++) {
		struct mstate *ms = &p->m[id];
		struct link *l = ms->link;
		enum peer_health h = PEER_DOWN;
		bool el;

		if (id == p->self)
			continue;
		waits_expire(p, (uint16_t)id, now);
		if (l && l->state == L_UP) {
			int64_t quiet = now - ms->last_rx_ms;

			if (quiet > (int64_t)p->srv->cfg.peer_down_ms) {
				link_close(p, l, "silent past --peer-down");
				l = NULL;
			} else {
				h = quiet > (int64_t)p->srv->cfg.peer_suspect_ms ? PEER_SUSPICIOUS
				                                                 : PEER_UP;
			}
		}
		if (h != ms->health) {
			log_info("peer %s: %s", p->ms.m[id - 1].addr,
			         h == PEER_UP           ? "UP"
			         : h == PEER_SUSPICIOUS ? "SUSPICIOUS"
			                                : "DOWN");
			STORE_RELAXED(&ms->health, h);
		}
		if (h == PEER_DOWN)
			STORE_RELAXED(&ms->ready, false);
		el = h != PEER_DOWN && ms->ready;
		if (el != p->eligible[id]) {
			p->eligible[id] = el;
			changed = true;
		}
		/* Not linked: dial (both ends may; link_up keeps one link). */
		if (ms->link == NULL && ms->dialing == NULL && now >= ms->next_dial_ms &&
		    !LOAD_ACQUIRE(&p->stop))
			dial(p, (uint16_t)id, now);
	}
	if (changed)
		map_update(p);
	quorum_check(p);
}

static void send_ping(struct peer *p, struct link *l)
{
	uint8_t b[9];
	struct proto_wr w;

	proto_wr_init(&w, b, sizeof(b));
	proto_wr_u8(&w, p->ready);
	proto_wr_u64(&w, LOAD_RELAXED(&p->map_version));
	frame_put(l, P_PING, b, sizeof(b), 0, 0, 0);
}

static void pings(struct peer *p)
{
	for (uint32_t id = 1; id <= p->ms.n; id++)
		if (id != p->self && p->m[id].link && p->m[id].link->state == L_UP)
			send_ping(p, p->m[id].link);
}

static void become_ready(struct peer *p, const char *how, bool loaded)
{
	/* The map first: whoever sees READY sees the slots it owns (SLOT_MAP). */
	p->eligible[p->self] = true;
	map_update(p);
	STORE_RELEASE(&p->ready, true);
	p->loading = false;
	p->need_merge = !loaded;
	log_info("READY (%s)", how);
	pings(p); /* peers learn it now: they give us our slots sooner */
}

static void load_progress(struct peer *p, int64_t now)
{
	bool any_ready = false;

	if (p->ready)
		return;
	for (uint32_t id = 1; id <= p->ms.n; id++)
		if (id != p->self && p->m[id].ready && p->m[id].link &&
		    p->m[id].link->state == L_UP)
			any_ready = true;
	if (p->ranges_done == LOAD_RANGES) {
		/* READY once the workers have applied every chunk, not just received it. */
		if (LOAD_ACQUIRE(&p->load_done) == p->load_sent)
			become_ready(p, "loaded from peers", true);
		return;
	}
	if (!any_ready) {
		/* Nobody to load from: a cluster starting as a whole, or alone. */
		int64_t since = p->loading ? p->load_progress_ms : p->start_ms;

		if (now - since >= (int64_t)p->srv->cfg.startup_wait_ms)
			become_ready(p,
			             p->loading ? "load stalled: no READY peer left"
			                        : "no READY peer: starting empty",
			             false);
		return;
	}
	if (!p->loading) {
		p->loading = true;
		p->load_progress_ms = now;
		log_info("loading from READY peers");
	}
	load_schedule(p);
}

/*
 * A node that became READY without a peer's copy (it started alone, or a
 * load stalled, or it was cut off from most of the cluster) may own slots
 * whose instances live elsewhere. Until it has merged a READY peer's copy
 * (the startup load's pulls, applied last-writer-wins, nothing dropped) it
 * sends no digest: otherwise its peers would "repair" those slots to its
 * incomplete copy and forget live instances.
 */
static void merge_progress(struct peer *p)
{
	bool any_ready = false;

	if (!p->ready || !p->need_merge)
		return;
	for (uint32_t id = 1; id <= p->ms.n; id++)
		if (id != p->self && p->m[id].ready && p->m[id].link &&
		    p->m[id].link->state == L_UP)
			any_ready = true;
	if (!p->merging) {
		if (!any_ready)
			return;
		memset(p->range_state, 0, sizeof(p->range_state));
		p->ranges_done = 0;
		p->merging = true;
		log_info("merging a READY peer's copy before verifying");
	}
	if (p->ranges_done == LOAD_RANGES && LOAD_ACQUIRE(&p->load_done) == p->load_sent) {
		p->merging = false;
		p->need_merge = false;
		log_info("merged: verify resumes");
		return;
	}
	load_schedule(p);
}

/* ---- frames in ---- */

static void on_frame(struct peer *p, struct link *l, const struct proto_header *h,
                     const uint8_t *body)
{
	int rc = pwire_check(h, body);

	if (rc < 0) {
		PSTAT_INC(p, proto_errors);
		log_warn("peer frame refused (op %u): %s", h->op, err_str(rc));
		link_close(p, l, "bad frame");
		return;
	}
	if (l->state != L_UP) {
		if (h->op == P_HELLO)
			on_hello(p, l, body);
		else if (h->op == P_AUTH)
			on_auth(p, l, body);
		else
			auth_refuse(p, l, "frame before authentication");
		return;
	}
	struct mstate *ms = &p->m[l->id];

	STORE_RELAXED(&ms->last_rx_ms, mono_ms());
	switch (h->op) {
	case P_PING:
		STORE_RELAXED(&ms->ready, body[0] != 0);
		break;
	case P_FWD:
		on_fwd(p, l->id, h, body);
		break;
	case P_FWD_ACK:
		on_fwd_ack(p, l->id, h, body);
		break;
	case P_SYNC:
		records_to_workers(p, XM_APPLY, body, h->body_len, h->count, 0, 0, NULL);
		PSTAT_INC(p, sync_frames_in);
		PSTAT_ADD(p, sync_records_in, h->count);
		break;
	case P_DIGEST:
		on_digest(p, l->id, body);
		break;
	case P_SUMS_REQ:
		on_sums_req(p, l->id, h, body);
		break;
	case P_SUMS:
		on_sums(p, l->id, h, body);
		break;
	case P_PULL:
		on_pull(p, l->id, h, body);
		break;
	case P_CHUNK:
		on_chunk(p, l->id, h, body);
		break;
	case P_PULL_DONE:
		on_pull_done(p, l->id, h);
		break;
	default:
		auth_refuse(p, l, "hello or auth on an open link");
		break;
	}
}

static void on_readable(struct peer *p, struct link *l)
{
	if (p->reading_paused)
		return; /* see reading_pause_check */
	/* A bounded amount per loop: one busy link cannot starve the others (epoll is
	 * level-triggered). */
	for (int reads = 0; reads < FRAMES_PER_READ / 16; reads++) {
		ssize_t n;

		if (!pbuf_reserve(&l->in, 65536)) {
			link_close(p, l, "out of memory");
			return;
		}
		n = recv(l->fd, l->in.p + l->in.len, l->in.cap - l->in.len, 0);
		if (n == 0) {
			link_close(p, l, "closed by the peer");
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				link_close(p, l, strerror(errno));
			break;
		}
		l->in.len += (size_t)n;
		/* Every whole frame in the buffer. */
		for (;;) {
			struct proto_header h;
			long f = pwire_frame_check(l->in.p + l->in.off, pbuf_used(&l->in), &h);

			/* Before authentication only the handshake's small frames. */
			if (f >= 0 && l->state != L_UP && pbuf_used(&l->in) >= PROTO_HEADER_BYTES &&
			    h.body_len > PREAUTH_FRAME_MAX) {
				PSTAT_INC(p, proto_errors);
				auth_refuse(p, l, "a big frame before authentication");
				return;
			}
			if (f == 0)
				break;
			if (f < 0) {
				PSTAT_INC(p, proto_errors);
				if (l->state == L_UP)
					log_warn("peer link: %s", err_str((int)f));
				auth_refuse(p, l, "not a peer frame");
				return;
			}
			l->in.off += (size_t)f;
			on_frame(p, l, &h, l->in.p + l->in.off - f + PROTO_HEADER_BYTES);
			if (l->state == L_FREE)
				return;
		}
		if (l->in.off == l->in.len)
			l->in.off = l->in.len = 0;
	}
}

/* ---- the loop ---- */

static void drain_workers(struct peer *p)
{
	void *msgs[256];

	for (uint32_t w = 0; w < p->srv->nworkers; w++) {
		uint32_t n;

		while ((n = xcore_recv(&p->srv->xcore, w, p->idx, msgs, 256)) > 0) {
			for (uint32_t i = 0; i < n; i++) {
				uint8_t kind = *(uint8_t *)msgs[i];

				if (kind == XM_SYNC) {
					on_sync_out(p, msgs[i]);
				} else if (kind == XM_PENDING) {
					struct pending *pd = msgs[i];

					if (pd->origin == p->idx)
						on_fwd_part(p, pd);
					else
						on_forward(p, pd);
				}
			}
		}
	}
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	struct epoll_event evs[64];

	epoch_register(store_epoch(p->srv->store), &p->rec);
	p->start_ms = mono_ms();
	for (;;) {
		int n = epoll_wait(p->epfd, evs, 64, LOOP_WAIT_MS);
		int64_t now = mono_ms();
		bool stopping = LOAD_ACQUIRE(&p->stop);

		for (int i = 0; i < n; i++) {
			void *ptr = evs[i].data.ptr;

			if (ptr == &p->listen_fd) {
				on_accept(p);
			} else if (ptr == &p->wake_fd) {
				uint64_t v;

				if (read(p->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					log_error("peer wake: %s", strerror(errno));
			} else {
				struct link *l = ptr;

				if (l->state == L_FREE)
					continue;
				if (l->state == L_CONNECTING &&
				    (evs[i].events & (EPOLLOUT | EPOLLERR)))
					on_connected(p, l);
				if (l->state != L_FREE &&
				    (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
					on_readable(p, l);
			}
		}
		backlog_retry(p);
		reading_pause_check(p);
		drain_workers(p);
		if (stopping)
			break;
		if (now - p->last_ping_ms >= (int64_t)p->srv->cfg.peer_ping_ms) {
			p->last_ping_ms = now;
			pings(p);
		}
		health_check(p, now);
		load_progress(p, now);
		merge_progress(p);
		if (p->ready && !p->need_merge &&
		    now - p->last_verify_ms >= (int64_t)p->srv->cfg.verify_ms) {
			p->last_verify_ms = now;
			verify_round(p);
		}
		repair_schedule(p);
		delayed_flush(p, now);
		for (uint32_t id = 1; id <= p->ms.n; id++) {
			if (id == p->self)
				continue;
			for (uint32_t opi = 0; opi < 3; opi++)
				build_flush(p, (uint16_t)id, opi);
			serve_some(p, (uint16_t)id);
		}
		for (uint32_t i = 0; i < LINKS_MAX; i++)
			if (p->links[i].state >= L_HELLO && pbuf_used(&p->links[i].out) > 0)
				link_flush(p, &p->links[i]);
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

/* True when host is an address of this machine (it can be bound). */
static bool host_is_local(const char *host)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *ai = NULL;
	bool ok = false;

	if (getaddrinfo(host, "0", &hints, &ai) != 0 || ai == NULL)
		return false;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0) {
		ok = bind(fd, ai->ai_addr, ai->ai_addrlen) == 0;
		close(fd);
	}
	freeaddrinfo(ai);
	return ok;
}

static int find_self(struct peer *p, const struct server_config *cfg)
{
	char err[256];

	if (cfg->cluster_self[0]) {
		if (members_find_self(&p->ms, cfg->cluster_self) < 0) {
			log_error("--cluster-self %s is not in %s", cfg->cluster_self,
			          cfg->cluster_conf);
			return -1;
		}
		return 0;
	}
	for (uint32_t i = 0; i < p->ms.n; i++) {
		if (p->ms.m[i].port == cfg->peer_port && host_is_local(p->ms.m[i].host)) {
			p->ms.self_id = p->ms.m[i].id;
			return 0;
		}
	}
	(void)err;
	log_error("no line of %s is a local address with --peer-port %u (set --cluster-self)",
	          cfg->cluster_conf, cfg->peer_port);
	return -1;
}

int peer_create(struct server *s, struct peer **out)
{
	struct server_config *cfg = &s->cfg;
	char err[256];
	struct peer *p;

	*out = NULL;
	if (cfg->cluster_conf[0] == '\0')
		return 0;
	p = mem_calloc(1, sizeof(*p));
	if (p == NULL)
		return -1;
	p->srv = s;
	p->listen_fd = p->epfd = p->wake_fd = -1;
	if (members_load(cfg->cluster_conf, &p->ms, err, sizeof(err)) < 0) {
		log_error("--cluster-conf %s: %s", cfg->cluster_conf, err);
		mem_free(p);
		return -1;
	}
	if (find_self(p, cfg) < 0 || read_secret(p, cfg) < 0) {
		mem_free(p);
		return -1;
	}
	if (p->ms.n <= 1) {
		log_info("%s lists only this node: standalone", cfg->cluster_conf);
		mem_free(p);
		return 0;
	}
	if (s->nworkers >= 64) { /* the peer thread is ring participant nworkers: 64-bit masks */
		log_error("a cluster member runs at most 63 workers (--workers %u)", s->nworkers);
		mem_free(p);
		return -1;
	}
	p->self = p->ms.self_id;
	p->idx = s->nworkers;
	p->quorum = true; /* until health says otherwise; a node starting owns nothing anyway */
	p->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)mono_ms() ^ p->self;
	for (uint32_t id = 0; id <= MEMBERS_MAX; id++)
		p->m[id].chunk_slot = -1;
	/* Before the workers start: they write wake_fd from their first loop. */
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->epfd < 0 || p->wake_fd < 0) {
		log_error("peer thread: %s", strerror(errno));
		peer_destroy(p);
		return -1;
	}
	cfg->store.node_id = p->self; /* versions name their writer */
	cfg->store.owns = peer_owns;
	cfg->store.owns_ctx = p;
	*out = p;
	return 0;
}

int peer_start(struct peer *p)
{
	const struct member *me = &p->ms.m[p->self - 1];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
		                  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	char port[8];
	int one = 1, rc;

	snprintf(port, sizeof(port), "%u", me->port);
	if ((rc = getaddrinfo(me->host, port, &hints, &ai)) != 0 || ai == NULL) {
		log_error("peer address %s: %s", me->addr, gai_strerror(rc));
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
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &p->listen_fd };

	epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->listen_fd, &ev);
	ev.data.ptr = &p->wake_fd;
	epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->wake_fd, &ev);
	if ((rc = io_uring_queue_init(64, &p->ring, 0)) < 0) {
		log_error("peer thread io_uring: %s", strerror(-rc));
		return rc;
	}
	p->ring_ok = true;
	if (pthread_create(&p->thread, NULL, peer_main, p) != 0)
		return -EAGAIN;
	p->started = true;
	log_info("cluster member %u of %u, peer port %s, %s", p->self, p->ms.n, me->addr,
	         "not READY until loaded");
	return 0;
}

void peer_stop(struct peer *p)
{
	if (p == NULL || !p->started)
		return;
	STORE_RELEASE(&p->stop, 1);
	if (p->wake_fd >= 0) {
		uint64_t one = 1;

		(void)!write(p->wake_fd, &one, sizeof(one));
	}
	pthread_join(p->thread, NULL);
	p->started = false;
}

void peer_backlog_take(struct peer *p, bool (*add)(void ***v, uint32_t *n, uint32_t *cap, void *m),
                       void ***v, uint32_t *n, uint32_t *cap)
{
	if (p == NULL)
		return;
	for (uint32_t i = 0; i < p->backlog_n; i++)
		(void)add(v, n, cap, p->backlog[2 * i + 1]);
	p->backlog_n = 0;
}

void peer_destroy(struct peer *p)
{
	if (p == NULL)
		return;
	mem_free(p->backlog);
	for (uint32_t id = 0; id <= MEMBERS_MAX; id++) {
		struct mstate *ms = &p->m[id];

		for (uint32_t opi = 0; opi < 3; opi++) {
			pbuf_free(&ms->build[opi].items);
			mem_free(ms->build[opi].refs);
		}
		for (uint32_t i = 0; i < ms->waits_n; i++)
			mem_free(ms->waits[i].refs);
		mem_free(ms->waits);
		for (int k = 0; k < PULLS_MAX; k++)
			mem_free(ms->pulls[k]);
		while (ms->serving) {
			struct serve *sv = ms->serving;

			ms->serving = sv->link_next;
			mem_free(sv);
		}
		while (ms->delayed) {
			struct delayed *d = ms->delayed;

			ms->delayed = d->next;
			mem_free(d);
		}
		pbuf_free(ms->chunk);
	}
	for (uint32_t i = 0; i < LINKS_MAX; i++)
		if (p->links[i].state != L_FREE) {
			close(p->links[i].fd);
			pbuf_free(&p->links[i].in);
			pbuf_free(&p->links[i].out);
		}
	if (p->ring_ok)
		io_uring_queue_exit(&p->ring);
	if (p->listen_fd >= 0)
		close(p->listen_fd);
	if (p->epfd >= 0)
		close(p->epfd);
	if (p->wake_fd >= 0)
		close(p->wake_fd);
	mem_free(p); /* after the store: its epoch lists our record until it is destroyed */
}

/* ---- status ---- */

void peer_status_read(const struct peer *p, struct peer_status *out)
{
	int64_t now = mono_ms();

	memset(out, 0, sizeof(*out));
	if (p == NULL)
		return;
	out->clustered = true;
	out->self_id = p->self;
	out->ready = LOAD_ACQUIRE(&p->ready);
	out->quorum = LOAD_RELAXED(&p->quorum);
	out->map_version = LOAD_ACQUIRE(&p->map_version);
	out->n = p->ms.n;
	for (uint32_t i = 0; i < p->ms.n; i++) {
		const struct member *mb = &p->ms.m[i];
		const struct mstate *ms = &p->m[mb->id];
		struct peer_member_status *o = &out->m[i];

		o->id = mb->id;
		memcpy(o->addr, mb->addr, sizeof(o->addr));
		o->self = mb->id == p->self;
		if (o->self) {
			o->health = PEER_UP;
			o->ready = out->ready;
			snprintf(o->client_addr, sizeof(o->client_addr),
			         strchr(mb->host, ':') ? "[%s]:%u" : "%s:%u", mb->host,
			         p->srv->port);
			o->last_rx_ms = 0;
		} else {
			o->health = LOAD_RELAXED(&ms->health);
			o->ready = LOAD_RELAXED(&ms->ready);
			memcpy(o->client_addr, ms->client_addr, sizeof(o->client_addr));
			int64_t rx = LOAD_RELAXED(&ms->last_rx_ms);

			o->last_rx_ms = rx ? now - rx : -1;
		}
	}
	for (uint32_t s = 0; s < STORE_SLOTS; s++) {
		uint16_t o = peer_owner(p, s);

		for (uint32_t i = 0; i < p->ms.n; i++)
			if (out->m[i].id == o)
				out->m[i].slots++;
	}
#define PEER_STAT_READ(name) out->stats.name = LOAD_RELAXED(&p->stats.name);
	PEER_STATS(PEER_STAT_READ)
#undef PEER_STAT_READ
}
