/*
 * udp.c - Nacos UDP push: see udp.h for the protocol, the choices and the
 * contracts; this is how the tables hold together.
 *
 * Tables. Services with subscribers are in a chained hash table keyed by
 * (namespace, group, service) and on one list (udp_each_service). Each
 * service lists its subscribers; subscribers are also in a chained hash
 * table keyed by (service, clusters, target) for the refresh of each poll.
 * Both tables have a fixed bucket array sized at udp_create (a power of
 * two >= subs_max), so they never rehash; a chain holds on average at most
 * one entry. A subscriber (with its clusters bytes) and a service (with
 * its names) are one allocation each, made when created.
 *
 * Three FIFOs order the timed work, each by a deadline that is "now + a
 * constant" when an item enters it, so each is sorted by construction and
 * udp_poll looks only at heads:
 *   lru      subscribers by last poll; expiry at refreshed_ms + sub_ttl_ms;
 *   due      subscribers with a push pending, at first mark + window_ms;
 *   unacked  unacked pushes, at send + retry_ms (a retry goes to the tail
 *            with now + retry_ms: its give-up deadline).
 * An item leaves a FIFO from anywhere in O(1) (doubly linked). A
 * subscriber is in `due` at most once (a mark while pending adds nothing:
 * that is the coalescing) and has at most one unacked push (a newer one
 * drops it: superseded).
 *
 * Unacked pushes. unacked_max entries are allocated up front, with a
 * free list and a chained hash table by ref (refs are counter * 64 +
 * worker, so ref >> 6 spreads them evenly). Their bytes, kept for the one
 * retry, live in a byte ring of retry_bytes_max: pushes take space at the
 * tail in send order, and space comes back from the head only, when the
 * oldest region is released (acked, given up, superseded, abandoned). A
 * region released out of order waits, as a hole, until those before it
 * go; every region is released at the latest 2 * retry_ms after its
 * send, so holes are bounded in time. A region that would wrap past the
 * end starts again at 0 and the skipped tail counts as part of it. The
 * regions themselves are a ring of unacked_max records. When the ring or
 * the records are full, the push goes out without retry state.
 *
 * Encoding: udp_packet.c (escaped JSON, gzipped over UDP_GZIP_MIN_BYTES).
 *
 * Address forms. Targets and ack sources are compared in one form:
 * IPv4-mapped IPv6 addresses become IPv4, so a dual-stack HTTP listener
 * and an IPv4 push socket (or the reverse) still match an ack to its push.
 */
#include "nacos/udp.h"
#include "nacos/udp_packet.h"

#include "core/err.h"
#include "core/hash.h"
#include "core/mem.h"

#include <assert.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#define HASH_SEED         0x7564702d70757368ULL /* "udp-push" */
#define TABLE_BUCKETS_MAX (1u << 24)
#define REF_COUNTER_MAX   (UDP_REF_MAX / UDP_WORKERS_MAX)

_Static_assert(UDP_WORKERS_MAX == 64, "refs keep the worker id in 6 bits");

/* ---- intrusive lists ---- */

struct link {
	struct link *next, *prev;
};

static void link_init(struct link *l)
{
	l->next = l->prev = l;
}

static bool link_empty(const struct link *l)
{
	return l->next == l;
}

static void link_tail(struct link *head, struct link *l)
{
	l->prev = head->prev;
	l->next = head;
	head->prev->next = l;
	head->prev = l;
}

/* Unlinks l and leaves it empty, so link_empty(l) says "not on a list". */
static void link_del(struct link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	link_init(l);
}

#define LINK_OWNER(l, type, member) ((type *)(void *)((char *)(l)-offsetof(type, member)))

/* ---- addresses ---- */

struct target {
	uint8_t ip[16]; /* IPv4: the first 4 bytes, the rest 0 */
	uint32_t scope; /* IPv6 scope id, sent but not compared */
	uint16_t port;
	uint16_t family; /* AF_INET or AF_INET6 */
};

static int target_from(const struct sockaddr_storage *ss, uint16_t port, bool keep_port,
                       struct target *t)
{
	memset(t, 0, sizeof(*t));
	if (ss == NULL)
		return -ERR_ADDR;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

		t->family = AF_INET;
		memcpy(t->ip, &in->sin_addr, 4);
		t->port = keep_port ? ntohs(in->sin_port) : port;
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			t->family = AF_INET;
			memcpy(t->ip, in6->sin6_addr.s6_addr + 12, 4);
		} else {
			t->family = AF_INET6;
			memcpy(t->ip, &in6->sin6_addr, 16);
			t->scope = in6->sin6_scope_id;
		}
		t->port = keep_port ? ntohs(in6->sin6_port) : port;
	} else {
		return -ERR_ADDR;
	}
	return t->port == 0 ? -ERR_ADDR : 0;
}

static socklen_t target_to(const struct target *t, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (t->family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(t->port);
		memcpy(&in->sin_addr, t->ip, 4);
		return sizeof(*in);
	}
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(t->port);
	memcpy(&in6->sin6_addr, t->ip, 16);
	in6->sin6_scope_id = t->scope;
	return sizeof(*in6);
}

static bool target_same(const struct target *a, const struct target *b)
{
	return a->family == b->family && a->port == b->port && memcmp(a->ip, b->ip, 16) == 0;
}

/* ---- the tables' records ---- */

struct udp_svc {
	struct udp_svc *hash_next;
	struct link in_all; /* udp_push.svcs */
	struct link subs;   /* its subscribers, by udp_sub.in_svc */
	uint64_t hash;
	uint64_t word; /* the caller's (udp_each_service) */
	uint32_t n;
	struct store_svc_key key; /* strings point into names */
	char names[];
};

struct udp_entry;

struct udp_sub {
	struct udp_sub *hash_next;
	struct link in_svc, in_lru, in_due;
	struct udp_svc *svc;
	struct udp_entry *unacked; /* its unacked push, or NULL */
	uint64_t hash;
	int64_t refreshed_ms;
	int64_t due_ms;
	struct target target;
	bool healthy_only;
	uint8_t shape;
	uint32_t clusters_len;
	uint16_t agent_len, app_len; /* after the clusters in the same bytes */
	char clusters[];             /* clusters, agent, app */
};

struct udp_entry {
	struct udp_entry *hash_next; /* by ref; the free list when unused */
	struct link in_fifo;         /* udp_push.unacked */
	struct udp_sub *sub;
	uint64_t ref;
	int64_t deadline_ms;
	uint64_t region; /* sequence number of its bytes' region */
	uint32_t off, len;
	bool retried;
};

struct udp_region {
	uint64_t end; /* ring position after it */
	bool live;
};

struct udp_push {
	struct udp_config cfg;
	struct udp_callbacks cb;
	void *ctx;
	struct udp_stats st;

	struct udp_svc **svc_tab;
	struct udp_sub **sub_tab;
	uint32_t tab_mask;
	struct link svcs, lru, due, unacked;

	struct udp_entry *entries, *free_entries, **ack_tab;
	uint32_t ack_mask;
	struct udp_region *regions;
	uint64_t reg_head, reg_tail; /* sequence numbers, reg_tail - reg_head <= unacked_max */
	char *ring;
	uint64_t ring_head, ring_tail; /* positions, ring_tail - ring_head <= retry_bytes_max */

	uint64_t ref_counter;
	char *render;          /* render_bytes_max */
	struct udp_packet pkt; /* the datagram being sent */
};

/* ---- configuration ---- */

void udp_config_default(struct udp_config *c)
{
	*c = (struct udp_config){
		.worker_id = 0,
		.subs_max = 65536,
		.sub_ttl_ms = 30000,
		.window_ms = 2,
		.retry_ms = 1000,
		.unacked_max = 16384,
		.retry_bytes_max = 8u << 20,
		.render_bytes_max = 1u << 20,
		.poll_budget = 256,
		.name_bytes_max = 256,
		.clusters_bytes_max = 1024,
		.gzip_level = 1,
	};
}

static bool config_ok(const struct udp_config *c)
{
	return c->worker_id < UDP_WORKERS_MAX && c->subs_max >= 1 &&
	       c->subs_max <= TABLE_BUCKETS_MAX && c->sub_ttl_ms >= 1 && c->retry_ms >= 1 &&
	       c->unacked_max <= TABLE_BUCKETS_MAX && c->retry_bytes_max <= (1u << 30) &&
	       c->render_bytes_max >= 1024 && c->render_bytes_max <= (64u << 20) &&
	       c->poll_budget >= 1 && c->name_bytes_max >= 1 && c->name_bytes_max <= 65535 &&
	       c->clusters_bytes_max <= 65535 && c->gzip_level >= 1 && c->gzip_level <= 9;
}

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 16;

	while (p < n)
		p <<= 1;
	return p;
}

/*
 * What a udp_push holds beyond its zeroed struct and tables: empty lists,
 * the table masks, every unacked entry free (when it has them).
 */
static void udp_start(struct udp_push *u)
{
	link_init(&u->svcs);
	link_init(&u->lru);
	link_init(&u->due);
	link_init(&u->unacked);
	u->tab_mask = pow2_at_least(u->cfg.subs_max) - 1;
	u->ack_mask = pow2_at_least(u->cfg.unacked_max) - 1;
	u->free_entries = NULL;
	for (uint32_t i = u->entries ? u->cfg.unacked_max : 0; i-- > 0;) {
		u->entries[i].hash_next = u->free_entries;
		u->free_entries = &u->entries[i];
	}
}

int udp_create(const struct udp_config *cfg, const struct udp_callbacks *cb, void *ctx,
               struct udp_push **out)
{
	struct udp_push *u;
	uint32_t buckets, acks;

	*out = NULL;
	if (cfg == NULL || cb == NULL || cb->render == NULL || cb->send == NULL || !config_ok(cfg))
		return -ERR_INVAL;
	u = mem_calloc(1, sizeof(*u));
	if (u == NULL)
		return -ERR_NOMEM;
	u->cfg = *cfg;
	u->cb = *cb;
	u->ctx = ctx;
	udp_start(u); /* the lists first: udp_destroy walks them */
	buckets = u->tab_mask + 1;
	acks = u->ack_mask + 1;
	u->svc_tab = mem_calloc(buckets, sizeof(*u->svc_tab));
	u->sub_tab = mem_calloc(buckets, sizeof(*u->sub_tab));
	u->ack_tab = mem_calloc(acks, sizeof(*u->ack_tab));
	u->render = mem_alloc(cfg->render_bytes_max);
	if (!u->svc_tab || !u->sub_tab || !u->ack_tab || !u->render ||
	    udp_packet_init(&u->pkt, cfg->gzip_level) < 0)
		goto err;
	if (cfg->unacked_max > 0 && cfg->retry_bytes_max > 0) {
		u->entries = mem_calloc(cfg->unacked_max, sizeof(*u->entries));
		u->regions = mem_calloc(cfg->unacked_max, sizeof(*u->regions));
		u->ring = mem_alloc(cfg->retry_bytes_max);
		if (!u->entries || !u->regions || !u->ring)
			goto err;
		udp_start(u); /* now with entries to put on the free list */
	}
	*out = u;
	return 0;
err:
	udp_destroy(u);
	return -ERR_NOMEM;
}

/* Frees the subscribers and services (each one allocation). */
static void free_contents(struct udp_push *u)
{
	while (!link_empty(&u->lru)) {
		struct udp_sub *s = LINK_OWNER(u->lru.next, struct udp_sub, in_lru);

		link_del(&s->in_lru);
		mem_free(s);
	}
	while (!link_empty(&u->svcs)) {
		struct udp_svc *v = LINK_OWNER(u->svcs.next, struct udp_svc, in_all);

		link_del(&v->in_all);
		mem_free(v);
	}
}

void udp_destroy(struct udp_push *u)
{
	if (u == NULL)
		return;
	free_contents(u);
	udp_packet_free(&u->pkt);
	mem_free(u->svc_tab);
	mem_free(u->sub_tab);
	mem_free(u->ack_tab);
	mem_free(u->entries);
	mem_free(u->regions);
	mem_free(u->ring);
	mem_free(u->render);
	mem_free(u);
}

/*
 * The struct is cleared whole and only the allocations made by udp_create
 * (and its config and callbacks) are put back, so no state can survive
 * but in those buffers: the tables and the entries and regions are
 * cleared too; the ring's and the render buffer's bytes are read only
 * within a region or a render written after this; the encoder resets
 * zlib before each packet (udp_packet_encode). The encoder goes back to
 * the same address: zlib's state points at its z_stream.
 */
void udp_reset(struct udp_push *u)
{
	struct udp_push keep = *u;

	free_contents(u);
	memset(u, 0, sizeof(*u));
	u->cfg = keep.cfg;
	u->cb = keep.cb;
	u->ctx = keep.ctx;
	u->svc_tab = keep.svc_tab;
	u->sub_tab = keep.sub_tab;
	u->ack_tab = keep.ack_tab;
	u->entries = keep.entries;
	u->regions = keep.regions;
	u->ring = keep.ring;
	u->render = keep.render;
	u->pkt = keep.pkt;
	memset(u->svc_tab, 0, (keep.tab_mask + 1) * sizeof(*u->svc_tab));
	memset(u->sub_tab, 0, (keep.tab_mask + 1) * sizeof(*u->sub_tab));
	memset(u->ack_tab, 0, (keep.ack_mask + 1) * sizeof(*u->ack_tab));
	if (u->entries) {
		memset(u->regions, 0, u->cfg.unacked_max * sizeof(*u->regions));
		memset(u->entries, 0, u->cfg.unacked_max * sizeof(*u->entries));
	}
	udp_start(u);
}

const struct udp_stats *udp_stats(const struct udp_push *u)
{
	return &u->st;
}

/* ---- services ---- */

static bool str_eq(struct store_str a, const char *p, uint32_t len)
{
	return a.len == len && (len == 0 || memcmp(a.p, p, len) == 0);
}

/* Fills in the defaults and checks the bounds: the one form tables compare. */
static int svc_canon(const struct udp_push *u, const struct store_svc_key *in,
                     struct store_svc_key *out)
{
	static const struct store_str def_ns = { "public", 6 };
	static const struct store_str def_group = { "DEFAULT_GROUP", 13 };

	out->ns = in->ns.p && in->ns.len ? in->ns : def_ns;
	out->group = in->group.p && in->group.len ? in->group : def_group;
	out->service = in->service;
	if (out->service.p == NULL || out->service.len == 0)
		return -ERR_NAME_EMPTY;
	if (out->ns.len > u->cfg.name_bytes_max || out->group.len > u->cfg.name_bytes_max ||
	    out->service.len > u->cfg.name_bytes_max)
		return -ERR_NAME_LONG;
	return 0;
}

static uint64_t svc_hash(const struct store_svc_key *k)
{
	/* Chained seeds keep the names apart: ("a","bc") != ("ab","c"). */
	uint64_t h = XXH3_64bits_withSeed(k->ns.p, k->ns.len, HASH_SEED ^ k->ns.len);

	h = XXH3_64bits_withSeed(k->group.p, k->group.len, h ^ k->group.len);
	return XXH3_64bits_withSeed(k->service.p, k->service.len, h ^ k->service.len);
}

static struct udp_svc *svc_find(const struct udp_push *u, const struct store_svc_key *k, uint64_t h)
{
	for (struct udp_svc *v = u->svc_tab[h & u->tab_mask]; v; v = v->hash_next)
		if (v->hash == h && str_eq(v->key.service, k->service.p, k->service.len) &&
		    str_eq(v->key.group, k->group.p, k->group.len) &&
		    str_eq(v->key.ns, k->ns.p, k->ns.len))
			return v;
	return NULL;
}

static struct udp_svc *svc_create(struct udp_push *u, const struct store_svc_key *k, uint64_t h,
                                  uint64_t word)
{
	struct udp_svc *v = mem_alloc(sizeof(*v) + k->ns.len + k->group.len + k->service.len);
	char *at;

	if (v == NULL)
		return NULL;
	memset(v, 0, sizeof(*v));
	v->hash = h;
	v->word = word;
	link_init(&v->subs);
	at = v->names;
#define COPY_NAME(f)                                                                               \
	do {                                                                                       \
		memcpy(at, k->f.p, k->f.len);                                                      \
		v->key.f = (struct store_str){ at, k->f.len };                                     \
		at += k->f.len;                                                                    \
	} while (0)
	COPY_NAME(ns);
	COPY_NAME(group);
	COPY_NAME(service);
#undef COPY_NAME
	v->hash_next = u->svc_tab[h & u->tab_mask];
	u->svc_tab[h & u->tab_mask] = v;
	link_tail(&u->svcs, &v->in_all);
	u->st.services++;
	return v;
}

static void svc_free(struct udp_push *u, struct udp_svc *v)
{
	struct udp_svc **b = &u->svc_tab[v->hash & u->tab_mask];

	assert(v->n == 0 && link_empty(&v->subs));
	while (*b != v)
		b = &(*b)->hash_next;
	*b = v->hash_next;
	link_del(&v->in_all);
	u->st.services--;
	mem_free(v);
}

/* ---- the retry ring ---- */

/* Takes len bytes at the ring's tail; false when the ring or the region records are full. */
static bool ring_take(struct udp_push *u, uint32_t len, uint64_t *region, uint32_t *off)
{
	uint64_t cap = u->cfg.retry_bytes_max, pos, at, pad;
	struct udp_region *r;

	if (u->ring == NULL || len > cap || u->reg_tail - u->reg_head == u->cfg.unacked_max)
		return false;
	if (u->reg_head == u->reg_tail) /* empty: start again at 0, no wrap needed */
		u->ring_head = u->ring_tail = 0;
	pos = u->ring_tail;
	at = pos % cap;
	pad = at + len > cap ? cap - at : 0;
	if (pos + pad + len - u->ring_head > cap)
		return false;
	r = &u->regions[u->reg_tail % u->cfg.unacked_max];
	r->end = pos + pad + len;
	r->live = true;
	*region = u->reg_tail++;
	*off = (uint32_t)(pad ? 0 : at);
	u->ring_tail = r->end;
	u->st.retry_bytes = u->ring_tail - u->ring_head;
	return true;
}

/* Releases a region; space returns from the head, in the order it was taken. */
static void ring_release(struct udp_push *u, uint64_t region)
{
	assert(region - u->reg_head < u->reg_tail - u->reg_head);
	u->regions[region % u->cfg.unacked_max].live = false;
	while (u->reg_head != u->reg_tail && !u->regions[u->reg_head % u->cfg.unacked_max].live)
		u->ring_head = u->regions[u->reg_head++ % u->cfg.unacked_max].end;
	u->st.retry_bytes = u->ring_tail - u->ring_head;
}

/* ---- unacked entries ---- */

static struct udp_entry **ack_bucket(struct udp_push *u, uint64_t ref)
{
	return &u->ack_tab[(ref >> 6) & u->ack_mask];
}

static void entry_free(struct udp_push *u, struct udp_entry *e)
{
	struct udp_entry **b = ack_bucket(u, e->ref);

	while (*b != e)
		b = &(*b)->hash_next;
	*b = e->hash_next;
	link_del(&e->in_fifo);
	ring_release(u, e->region);
	assert(e->sub->unacked == e);
	e->sub->unacked = NULL;
	e->sub = NULL;
	e->hash_next = u->free_entries;
	u->free_entries = e;
	u->st.unacked--;
}

/* Keeps a sent packet for its retry; false when there is no room (not_retried). */
static bool entry_keep(struct udp_push *u, struct udp_sub *s, uint64_t ref, const uint8_t *pkt,
                       uint32_t len, int64_t now_ms)
{
	struct udp_entry *e = u->free_entries, **b;

	if (e == NULL || !ring_take(u, len, &e->region, &e->off))
		return false;
	u->free_entries = e->hash_next;
	memcpy(u->ring + e->off, pkt, len);
	e->len = len;
	e->ref = ref;
	e->sub = s;
	e->retried = false;
	e->deadline_ms = now_ms + u->cfg.retry_ms;
	b = ack_bucket(u, ref);
	e->hash_next = *b;
	*b = e;
	link_tail(&u->unacked, &e->in_fifo);
	s->unacked = e;
	u->st.unacked++;
	return true;
}

/* ---- subscribers ---- */

static uint64_t sub_hash(uint64_t svc_h, const char *clusters, uint32_t len, const struct target *t)
{
	uint64_t h = XXH3_64bits_withSeed(clusters, len, svc_h ^ len);

	return XXH3_64bits_withSeed(t->ip, sizeof(t->ip),
	                            h ^ ((uint64_t)t->family << 16 | t->port));
}

static void sub_view(const struct udp_sub *s, struct sockaddr_storage *ss, struct udp_sub_view *v)
{
	v->svc = s->svc->key;
	v->clusters = (struct store_str){ s->clusters, s->clusters_len };
	v->agent = (struct store_str){ s->clusters + s->clusters_len, s->agent_len };
	v->app = (struct store_str){ s->clusters + s->clusters_len + s->agent_len, s->app_len };
	v->healthy_only = s->healthy_only;
	v->shape = s->shape;
	v->target_len = target_to(&s->target, ss);
	v->target = ss;
	v->refreshed_ms = s->refreshed_ms;
}

/* A push due window_ms from now, unless one is pending already (coalescing). */
static bool sub_mark(struct udp_push *u, struct udp_sub *s, int64_t now_ms)
{
	if (!link_empty(&s->in_due))
		return false; /* already pending: this change rides along */
	s->due_ms = now_ms + u->cfg.window_ms;
	link_tail(&u->due, &s->in_due);
	return true;
}

/* The poll's answer is not what the service's word says was last seen: push it. */
static void sub_catch_up(struct udp_push *u, struct udp_sub *s, uint64_t word, int64_t now_ms)
{
	if (word != 0 && s->svc->word != 0 && word != s->svc->word)
		sub_mark(u, s, now_ms);
}

int udp_sub_refresh(struct udp_push *u, const struct udp_sub_params *p, int64_t now_ms)
{
	struct store_svc_key k;
	struct target t;
	struct udp_svc *v;
	struct udp_sub *s;
	const char *cl = p->clusters.p ? p->clusters.p : "";
	uint32_t cl_len = p->clusters.p ? p->clusters.len : 0;
	uint16_t agent_len = (uint16_t)(p->agent.p ? p->agent.len : 0);
	uint16_t app_len = (uint16_t)(p->app.p ? p->app.len : 0);
	uint64_t vh, h;
	int rc;

	if ((rc = svc_canon(u, &p->svc, &k)) < 0 ||
	    (rc = target_from(p->peer, p->udp_port, false, &t)) < 0) {
		u->st.subs_invalid++;
		return rc;
	}
	if (cl_len > u->cfg.clusters_bytes_max) {
		u->st.subs_invalid++;
		return -ERR_NAME_LONG;
	}
	vh = svc_hash(&k);
	h = sub_hash(vh, cl, cl_len, &t);
	v = svc_find(u, &k, vh);
	if (v != NULL)
		for (s = u->sub_tab[h & u->tab_mask]; s; s = s->hash_next)
			if (s->hash == h && s->svc == v && s->clusters_len == cl_len &&
			    memcmp(s->clusters, cl, cl_len) == 0 && target_same(&s->target, &t)) {
				s->refreshed_ms = now_ms;
				s->healthy_only = p->healthy_only;
				s->shape = p->shape;
				s->target.scope = t.scope;
				link_del(&s->in_lru);
				link_tail(&u->lru, &s->in_lru);
				u->st.subs_refreshed++;
				sub_catch_up(u, s, p->word, now_ms);
				return 0;
			}
	if (u->st.subs >= u->cfg.subs_max) {
		u->st.subs_refused++;
		return -ERR_LIMIT_SUBS;
	}
	/* Agent and app are what the creating poll said, cut at UDP_AGENT_BYTES_MAX. */
	if (p->agent.p == NULL || p->agent.len > UDP_AGENT_BYTES_MAX)
		agent_len = p->agent.p ? UDP_AGENT_BYTES_MAX : 0;
	if (p->app.p == NULL || p->app.len > UDP_AGENT_BYTES_MAX)
		app_len = p->app.p ? UDP_AGENT_BYTES_MAX : 0;
	s = mem_alloc(sizeof(*s) + cl_len + agent_len + app_len);
	if (s == NULL)
		return -ERR_NOMEM;
	if (v == NULL && (v = svc_create(u, &k, vh, p->word)) == NULL) {
		mem_free(s);
		return -ERR_NOMEM;
	}
	memset(s, 0, sizeof(*s));
	link_init(&s->in_due);
	s->svc = v;
	s->hash = h;
	s->refreshed_ms = now_ms;
	s->target = t;
	s->healthy_only = p->healthy_only;
	s->shape = p->shape;
	s->clusters_len = cl_len;
	memcpy(s->clusters, cl, cl_len);
	s->agent_len = agent_len;
	if (agent_len)
		memcpy(s->clusters + cl_len, p->agent.p, agent_len);
	s->app_len = app_len;
	if (app_len)
		memcpy(s->clusters + cl_len + agent_len, p->app.p, app_len);
	s->hash_next = u->sub_tab[h & u->tab_mask];
	u->sub_tab[h & u->tab_mask] = s;
	link_tail(&v->subs, &s->in_svc);
	v->n++;
	link_tail(&u->lru, &s->in_lru);
	u->st.subs++;
	u->st.subs_created++;
	sub_catch_up(u, s, p->word, now_ms);
	return 0;
}

static void sub_expire(struct udp_push *u, struct udp_sub *s)
{
	struct udp_sub **b = &u->sub_tab[s->hash & u->tab_mask];
	struct udp_svc *v = s->svc;

	if (s->unacked) {
		entry_free(u, s->unacked);
		u->st.abandoned++;
	}
	while (*b != s)
		b = &(*b)->hash_next;
	*b = s->hash_next;
	link_del(&s->in_due);
	link_del(&s->in_lru);
	link_del(&s->in_svc);
	v->n--;
	if (v->n == 0)
		svc_free(u, v);
	u->st.subs--;
	u->st.subs_expired++;
	mem_free(s);
}

int udp_service_changed(struct udp_push *u, const struct store_svc_key *k, int64_t now_ms)
{
	struct store_svc_key c;
	struct udp_svc *v;
	int rc, marked = 0;

	if ((rc = svc_canon(u, k, &c)) < 0)
		return rc == -ERR_NAME_LONG ? 0
		                            : rc; /* too long to be subscribed: nobody to mark */
	v = svc_find(u, &c, svc_hash(&c));
	if (v == NULL)
		return 0;
	u->st.changes++;
	for (struct link *l = v->subs.next; l != &v->subs; l = l->next) {
		if (sub_mark(u, LINK_OWNER(l, struct udp_sub, in_svc), now_ms))
			marked++;
	}
	return marked;
}

void udp_each_service(struct udp_push *u,
                      void (*fn)(void *ctx, const struct store_svc_key *k, uint64_t *word),
                      void *ctx)
{
	for (struct link *l = u->svcs.next; l != &u->svcs; l = l->next) {
		struct udp_svc *v = LINK_OWNER(l, struct udp_svc, in_all);

		fn(ctx, &v->key, &v->word);
	}
}

uint32_t udp_each_sub(struct udp_push *u, const struct store_svc_key *k,
                      void (*fn)(void *ctx, const struct udp_sub_view *sub), void *ctx)
{
	struct store_svc_key c;
	struct sockaddr_storage ss;
	struct udp_sub_view view;
	struct udp_svc *v;

	if (svc_canon(u, k, &c) < 0 || (v = svc_find(u, &c, svc_hash(&c))) == NULL)
		return 0;
	for (struct link *l = v->subs.next; l != &v->subs; l = l->next) {
		sub_view(LINK_OWNER(l, struct udp_sub, in_svc), &ss, &view);
		fn(ctx, &view);
	}
	return v->n;
}

/* ---- packets (encoded by udp_packet.c) ---- */

static uint64_t next_ref(struct udp_push *u)
{
	/*
	 * 2^47 refs per worker: at a million pushes a second that is 4 years;
	 * then the counter starts again, long after the old refs were acked
	 * or given up (2 * retry_ms).
	 */
	if (++u->ref_counter > REF_COUNTER_MAX)
		u->ref_counter = 1;
	return u->ref_counter * UDP_WORKERS_MAX + u->cfg.worker_id;
}

static int send_packet(struct udp_push *u, const struct udp_sub *s, const void *p, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = target_to(&s->target, &ss);
	int rc = u->cb.send(u->ctx, &ss, sl, p, len);

	if (rc < 0) {
		u->st.send_errors++;
		return rc;
	}
	u->st.push_bytes += len;
	return 0;
}

static void push_sub(struct udp_push *u, struct udp_sub *s, int64_t now_ms)
{
	struct sockaddr_storage ss;
	struct udp_sub_view view;
	uint64_t ref;
	bool gz;
	int n, len;

	if (s->unacked) { /* newer data supersedes: its retry must not undo this push */
		entry_free(u, s->unacked);
		u->st.superseded++;
	}
	sub_view(s, &ss, &view);
	n = u->cb.render(u->ctx, &view, now_ms, u->render, u->cfg.render_bytes_max);
	if (n < 0) {
		if (n == -ERR_PROTO_TOO_BIG)
			u->st.too_big++;
		else
			u->st.render_failed++;
		return;
	}
	assert((uint32_t)n <= u->cfg.render_bytes_max);
	ref = next_ref(u);
	len = udp_packet_encode(&u->pkt, ref, u->render, (size_t)n, &gz);
	if (len < 0) {
		u->st.too_big++;
		return;
	}
	if (send_packet(u, s, u->pkt.out, (size_t)len) == 0) {
		u->st.pushes++;
		u->st.gzipped += gz;
	}
	if (!entry_keep(u, s, ref, u->pkt.out, (uint32_t)len, now_ms))
		u->st.not_retried++;
}

/* An unacked push at its deadline: the one retry, or the give-up after it. */
static void entry_due(struct udp_push *u, struct udp_entry *e, int64_t now_ms)
{
	if (e->retried) {
		u->st.failed++;
		entry_free(u, e);
		return;
	}
	if (send_packet(u, e->sub, u->ring + e->off, e->len) == 0)
		u->st.retries++;
	e->retried = true;
	e->deadline_ms = now_ms + u->cfg.retry_ms;
	link_del(&e->in_fifo);
	link_tail(&u->unacked, &e->in_fifo);
}

int64_t udp_poll(struct udp_push *u, int64_t now_ms)
{
	uint32_t budget = u->cfg.poll_budget;
	int64_t next = INT64_MAX;

	while (budget > 0 && !link_empty(&u->unacked)) {
		struct udp_entry *e = LINK_OWNER(u->unacked.next, struct udp_entry, in_fifo);

		if (e->deadline_ms > now_ms)
			break;
		entry_due(u, e, now_ms);
		budget--;
	}
	while (budget > 0 && !link_empty(&u->lru)) {
		struct udp_sub *s = LINK_OWNER(u->lru.next, struct udp_sub, in_lru);

		if (s->refreshed_ms + (int64_t)u->cfg.sub_ttl_ms > now_ms)
			break;
		sub_expire(u, s);
		budget--;
	}
	while (budget > 0 && !link_empty(&u->due)) {
		struct udp_sub *s = LINK_OWNER(u->due.next, struct udp_sub, in_due);

		if (s->due_ms > now_ms)
			break;
		link_del(&s->in_due);
		push_sub(u, s, now_ms);
		budget--;
	}
	if (!link_empty(&u->unacked)) {
		int64_t t = LINK_OWNER(u->unacked.next, struct udp_entry, in_fifo)->deadline_ms;

		next = t < next ? t : next;
	}
	if (!link_empty(&u->lru)) {
		int64_t t = LINK_OWNER(u->lru.next, struct udp_sub, in_lru)->refreshed_ms +
		            (int64_t)u->cfg.sub_ttl_ms;

		next = t < next ? t : next;
	}
	if (!link_empty(&u->due)) {
		int64_t t = LINK_OWNER(u->due.next, struct udp_sub, in_due)->due_ms;

		next = t < next ? t : next;
	}
	if (next == INT64_MAX)
		return -1;
	return next <= now_ms ? 0 : next - now_ms;
}

/* ---- acks (the decoder is nacos/udp_ack.c) ---- */

int udp_on_datagram(struct udp_push *u, const struct sockaddr_storage *from, const void *bytes,
                    size_t len, int64_t now_ms)
{
	struct udp_ack ack;
	struct target t;

	(void)now_ms; /* in the contract for symmetry and for a future ack-latency figure */
	if (udp_ack_decode(bytes, len, &ack) < 0) {
		u->st.garbage++;
		return -ERR_INVAL;
	}
	if (ack.type == UDP_ACK_DUMP) {
		u->st.acks_dump++;
		return -ERR_NOT_FOUND;
	}
	if (ack.type == UDP_ACK_UNKNOWN) {
		u->st.acks_unknown++;
		return -ERR_NOT_FOUND;
	}
	if (target_from(from, 0, true, &t) == 0)
		for (struct udp_entry *e = *ack_bucket(u, ack.ref); e; e = e->hash_next)
			if (e->ref == ack.ref && target_same(&e->sub->target, &t)) {
				entry_free(u, e);
				u->st.acked++;
				return 0;
			}
	u->st.acks_unmatched++;
	return -ERR_NOT_FOUND;
}
