/*
 * subs.c - subscriptions and the push pass, on the worker that holds the
 * subscriber's connection.
 *
 * A subscription lives on the worker that holds its connection. Each
 * worker keeps one `watch` per distinct service its subscribers follow,
 * with the service's last revision seen. Every push window the worker reads
 * each watched service's revision (store_revision: one lookup, no lock, in
 * an epoch section like every read of the store) and,
 * when it moved, lists the service once per subscriber (each has its own
 * filter) as a PUSH. So a burst of changes inside one window is one push,
 * changes on any shard are seen without messages between cores, and the
 * cost per window is O(watched services), not O(instances).
 *
 * A subscription ends with UNSUBSCRIBE or its connection; it is then marked
 * dead and unlinked at the end of the loop, never in the middle of a pass.
 *
 * gRPC pushes wait for their ack (NotifySubscriberResponse), at most one
 * per subscription at a time. A change while one waits marks the
 * subscription dirty instead of pushing again; the ack makes it due, and
 * the next window pushes the service as it is then. A push not acked
 * within --grpc-push-timeout is sent again with the current state (which
 * also covers a held change), under a new request id; a late ack of the
 * old id matches nothing and is ignored. So a slow client holds at most
 * one push per subscription, the last push it gets carries the last
 * state, and each ack is matched to the one push it answers. (Nacos sends
 * each change as its own push with its own callback; one in flight is
 * the bounded form of that, and the client, which keeps only the newest
 * ServiceInfo, sees the same end state.)
 */

#include "server/worker_internal.h"

#include "core/err.h"
#include "core/hash.h"
#include "core/mem.h"

#include <errno.h>
#include <string.h>

#define WATCH_BUCKETS 4096

struct sub {
	struct sub *next_in_watch, *prev_in_watch; /* O(1) unlink */
	struct sub *next_in_conn;
	struct sub *next_dead;
	struct watch *watch;
	uint32_t conn, conn_gen, id;
	bool dead;
	bool due;   /* gRPC: pushed at the next window, changed or not (new, or acked dirty) */
	bool dirty; /* gRPC: changed while push_id waited for its ack */
	uint64_t push_id; /* gRPC: the push waiting for its ack, 0: none (at most one) */
	int64_t push_ms;  /* when it was sent */
	struct store_filter filter;
	struct store_str clusters[];
	/* then the cluster names' bytes */
};

struct watch {
	struct watch *next_in_bucket;
	struct watch *next, *prev; /* every watch of the worker */
	struct sub *subs;
	uint64_t hash;
	uint64_t revision;
	bool due;                 /* a sub of it is due (gRPC): the next window pushes to it */
	struct store_svc_key key; /* strings point into names */
	char names[];
};

/*
 * store_revision is a reader operation: the service (and the table that
 * finds it) may be on another shard, whose writer retires them through the
 * epoch when the service's last record goes. So a look is one epoch section.
 */
static uint64_t revision_of(struct worker *w, const struct store_svc_key *k)
{
	uint64_t rev;

	epoch_enter(w->rec);
	rev = store_revision(w->srv->store, k);
	epoch_exit(w->rec);
	return rev;
}

static uint64_t svc_key_hash(const struct store_svc_key *k)
{
	uint64_t h = XXH3_64bits(k->ns.p ? k->ns.p : "", k->ns.len);

	h = XXH3_64bits_withSeed(k->group.p ? k->group.p : "", k->group.len, h ^ 1);
	return XXH3_64bits_withSeed(k->service.p, k->service.len, h ^ 2);
}

static bool str_same(struct store_str a, struct store_str b)
{
	if (a.p == NULL || b.p == NULL)
		return a.p == b.p;
	return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

static struct watch *watch_get(struct worker *w, const struct store_svc_key *k)
{
	uint64_t h = svc_key_hash(k);
	struct watch **b = &w->watch_tab[h & (WATCH_BUCKETS - 1)], *x;
	size_t bytes;
	char *at;

	for (x = *b; x; x = x->next_in_bucket)
		if (x->hash == h && str_same(x->key.ns, k->ns) &&
		    str_same(x->key.group, k->group) && str_same(x->key.service, k->service))
			return x;
	bytes = sizeof(*x) + k->ns.len + k->group.len + k->service.len;
	x = mem_calloc(1, bytes);
	if (x == NULL)
		return NULL;
	x->hash = h;
	at = x->names;
#define COPY_NAME(f)                                                                               \
	do {                                                                                       \
		x->key.f.len = k->f.len;                                                           \
		x->key.f.p = k->f.p ? at : NULL;                                                   \
		if (k->f.p)                                                                        \
			memcpy(at, k->f.p, k->f.len);                                              \
		at += k->f.len;                                                                    \
	} while (0)
	COPY_NAME(ns);
	COPY_NAME(group);
	COPY_NAME(service);
#undef COPY_NAME
	x->next_in_bucket = *b;
	*b = x;
	x->next = w->watches;
	if (w->watches)
		w->watches->prev = x;
	w->watches = x;
	WSTAT_INC(w, watches);
	return x;
}

static void watch_drop(struct worker *w, struct watch *x)
{
	struct watch **b = &w->watch_tab[x->hash & (WATCH_BUCKETS - 1)];

	while (*b != x)
		b = &(*b)->next_in_bucket;
	*b = x->next_in_bucket;
	if (x->prev)
		x->prev->next = x->next;
	else
		w->watches = x->next;
	if (x->next)
		x->next->prev = x->prev;
	WSTAT_ADD(w, watches, (uint64_t)-1);
	mem_free(x);
}

/* Marks every subscription of a connection dead (it is closing). */
void subs_of_conn_end(struct worker *w, struct conn *c)
{
	while (c->subs) {
		struct sub *s = c->subs;

		c->subs = s->next_in_conn;
		s->dead = true;
		s->next_dead = w->dead_subs;
		w->dead_subs = s;
	}
}

/* Unlinks and frees dead subscriptions; drops watches nobody follows. */
void subs_reap(struct worker *w)
{
	while (w->dead_subs) {
		struct sub *s = w->dead_subs;
		struct watch *x = s->watch;

		w->dead_subs = s->next_dead;
		if (s->prev_in_watch)
			s->prev_in_watch->next_in_watch = s->next_in_watch;
		else
			x->subs = s->next_in_watch;
		if (s->next_in_watch)
			s->next_in_watch->prev_in_watch = s->prev_in_watch;
		if (x->subs == NULL)
			watch_drop(w, x);
		mem_free(s);
		w->nsubs--;
		WSTAT_ADD(w, subs, (uint64_t)-1);
	}
}

void subs_subscribe(struct worker *w, uint32_t idx, const struct proto_header *h,
                    const uint8_t *body)
{
	struct store_str clusters[PROTO_FILTER_MAX];
	struct conn *c = conn_at(w, idx);
	struct store_svc_key sk;
	struct store_filter f;
	struct proto_rd r;
	struct watch *x;
	struct sub *s;
	size_t bytes;
	char *at;
	int rc;

	WSTAT_INC(w, op_subscribe);
	proto_rd_init(&r, body, h->body_len);
	proto_rd_svc(&r, &sk);
	proto_rd_filter(&r, &f, clusters);
	if (w->nsubs >= w->srv->cfg.subs_max) {
		send_error(w, idx, h->op | PROTO_RESPONSE, h->request_id, -ERR_LIMIT_SUBS);
		return;
	}
	/* Validate the names first: a bad name is an error answer and keeps nothing. */
	if (sk.service.p == NULL) {
		send_error(w, idx, h->op | PROTO_RESPONSE, h->request_id, -ERR_NAME_EMPTY);
		return;
	}
	uint64_t rev = revision_of(w, &sk);

	/* Allocate before answering, so running out of memory is the answer itself. */
	bytes = sizeof(*s) + sizeof(s->clusters[0]) * f.clusters_n;
	for (uint32_t i = 0; i < f.clusters_n; i++)
		bytes += f.clusters[i].len;
	s = mem_calloc(1, bytes);
	x = s ? watch_get(w, &sk) : NULL;
	if (x == NULL) {
		mem_free(s);
		send_error(w, idx, h->op | PROTO_RESPONSE, h->request_id, -ERR_NOMEM);
		return;
	}
	rc = ops_send_list(w, idx, h->op | PROTO_RESPONSE, h->request_id, &sk, &f);
	if (rc < 0) {
		if (rc != -ERR_NOMEM)
			send_error(w, idx, h->op | PROTO_RESPONSE, h->request_id, rc);
		mem_free(s);
		if (x->subs == NULL)
			watch_drop(w, x);
		return;
	}
	at = (char *)&s->clusters[f.clusters_n];
	for (uint32_t i = 0; i < f.clusters_n; i++) {
		s->clusters[i].len = f.clusters[i].len;
		s->clusters[i].p = at;
		memcpy(at, f.clusters[i].p ? f.clusters[i].p : "", f.clusters[i].len);
		at += f.clusters[i].len;
	}
	s->filter = f;
	s->filter.clusters = s->clusters;
	s->watch = x;
	s->conn = idx;
	s->conn_gen = c->gen;
	s->id = h->request_id;
	if (x->subs == NULL)
		x->revision = rev;
	s->next_in_watch = x->subs;
	s->prev_in_watch = NULL;
	if (x->subs)
		x->subs->prev_in_watch = s;
	x->subs = s;
	s->next_in_conn = c->subs;
	c->subs = s;
	w->nsubs++;
	WSTAT_INC(w, subs);
}

void subs_unsubscribe(struct worker *w, uint32_t idx, const struct proto_header *h,
                      const uint8_t *body)
{
	struct conn *c = conn_at(w, idx);
	struct proto_rd r;
	struct sub **pp;
	uint32_t id;
	uint8_t *p;

	WSTAT_INC(w, op_unsubscribe);
	proto_rd_init(&r, body, h->body_len);
	id = proto_rd_u32(&r);
	for (pp = &c->subs; *pp && (*pp)->id != id; pp = &(*pp)->next_in_conn)
		;
	if (*pp == NULL) {
		send_error(w, idx, h->op | PROTO_RESPONSE, h->request_id, -ERR_NOT_FOUND);
		return;
	}
	struct sub *s = *pp;

	*pp = s->next_in_conn;
	s->dead = true;
	s->next_dead = w->dead_subs;
	w->dead_subs = s;
	p = out_reserve(w, idx, PROTO_HEADER_BYTES);
	if (p) {
		proto_header_put(p, h->op | PROTO_RESPONSE, 0, h->request_id, 0, 0);
		out_commit(w, idx, PROTO_HEADER_BYTES);
	}
}

/*
 * gRPC subscriptions (grpc_naming.c). A Nacos 2.x client subscribes to a
 * whole service (it filters clusters itself), once per service on its
 * connection: a second subscribe of the same service keeps the one it has.
 * 0, -ERR_LIMIT_SUBS or -ERR_NOMEM.
 */
int subs_grpc_add(struct worker *w, uint32_t idx, const struct store_svc_key *sk)
{
	struct conn *c = conn_at(w, idx);
	struct watch *x;
	struct sub *s;

	for (s = c->subs; s; s = s->next_in_conn)
		if (str_same(s->watch->key.ns, sk->ns) &&
		    str_same(s->watch->key.group, sk->group) &&
		    str_same(s->watch->key.service, sk->service))
			return 0;
	if (w->nsubs >= w->srv->cfg.subs_max)
		return -ERR_LIMIT_SUBS;
	s = mem_calloc(1, sizeof(*s));
	x = s ? watch_get(w, sk) : NULL;
	if (x == NULL) {
		mem_free(s);
		return -ERR_NOMEM;
	}
	if (x->subs == NULL)
		x->revision = revision_of(w, sk);
	s->watch = x;
	s->conn = idx;
	s->conn_gen = c->gen;
	/*
	 * As Nacos does (a ServiceSubscribedEvent pushes to the new
	 * subscriber): the list is pushed once right after a subscription,
	 * whatever the answer carried. A client re-subscribing after a
	 * reconnect (its redo) may ignore the answer's list, and distrod
	 * pushes only changes: without this push its cache could stay on
	 * what it held before the reconnect.
	 */
	s->due = true;
	x->due = true;
	s->next_in_watch = x->subs;
	if (x->subs)
		x->subs->prev_in_watch = s;
	x->subs = s;
	s->next_in_conn = c->subs;
	c->subs = s;
	w->nsubs++;
	WSTAT_INC(w, subs);
	return 0;
}

void subs_grpc_remove(struct worker *w, uint32_t idx, const struct store_svc_key *sk)
{
	struct conn *c = conn_at(w, idx);

	for (struct sub **pp = &c->subs; *pp; pp = &(*pp)->next_in_conn) {
		struct sub *s = *pp;

		if (str_same(s->watch->key.ns, sk->ns) &&
		    str_same(s->watch->key.group, sk->group) &&
		    str_same(s->watch->key.service, sk->service)) {
			*pp = s->next_in_conn;
			s->dead = true;
			s->next_dead = w->dead_subs;
			w->dead_subs = s;
			return;
		}
	}
}

/* Sends s its service as it is now: the one push of s in flight (0 when it could not go). */
static void grpc_push_sub(struct worker *w, struct sub *s)
{
	s->push_id = grpc_push(w, s->conn, &s->watch->key);
	s->push_ms = w->now_ms;
	s->dirty = false;
}

/*
 * The client acknowledged push_id: true when one of its subscriptions
 * waited for it. A change held meanwhile goes at the next window.
 */
bool subs_grpc_ack(struct worker *w, struct conn *c, uint64_t push_id)
{
	(void)w;
	if (push_id == 0)
		return false;
	for (struct sub *s = c->subs; s; s = s->next_in_conn)
		if (s->push_id == push_id) {
			s->push_id = 0;
			if (s->dirty) {
				s->dirty = false;
				s->due = true;
				s->watch->due = true;
			}
			return true;
		}
	return false;
}

/* Pushes not acknowledged within timeout_ms go again, with the service as it is now. */
void subs_grpc_retry(struct worker *w, struct conn *c, uint32_t timeout_ms)
{
	for (struct sub *s = c->subs; s; s = s->next_in_conn)
		if (s->push_id && w->now_ms - s->push_ms >= (int64_t)timeout_ms)
			grpc_push_sub(w, s);
}

/* The push pass: one revision read per watched service. */
void subs_push(struct worker *w)
{
	for (struct watch *x = w->watches; x; x = x->next) {
		uint64_t rev = revision_of(w, &x->key);
		bool changed = rev != x->revision;

		if (!changed && !x->due)
			continue;
		x->revision = rev;
		x->due = false;
		for (struct sub *s = x->subs; s; s = s->next_in_watch) {
			struct conn *c = conn_at(w, s->conn);
			bool due = s->due;

			s->due = false;
			if (!changed && !due)
				continue; /* only the due subscribers of an unchanged service */
			if (s->dead || c->gen != s->conn_gen || c->state != C_OPEN)
				continue;
			if (c->kind == CONN_GRPC) {
				if (s->push_id)
					s->dirty = true; /* one push in flight: this one waits for
					                    its ack */
				else
					grpc_push_sub(w, s);
				continue;
			}
			if (ops_send_list(w, s->conn, OP_PUSH, s->id, &x->key, &s->filter) == 0)
				WSTAT_INC(w, pushes);
		}
	}
}

int subs_init(struct worker *w)
{
	w->watch_tab = mem_calloc(WATCH_BUCKETS, sizeof(w->watch_tab[0]));
	return w->watch_tab ? 0 : -ENOMEM;
}

/* After the connections were freed (their subscriptions are dead by then). */
void subs_free(struct worker *w)
{
	if (w->watch_tab)
		subs_reap(w);
	mem_free(w->watch_tab);
	w->watch_tab = NULL;
}
