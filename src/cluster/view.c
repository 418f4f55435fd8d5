/*
 * view.c - reading what the peer thread publishes (view.h), from any
 * thread, and the peer thread's one multi-field write: the map.
 *
 * The map is a seqlock: the writer makes map_seq odd, rewrites the owners
 * that changed (release stores, so each is ordered after the odd value),
 * then makes it even again (release); a reader that wants a whole map
 * (SLOT_MAP, /cluster) copies the owners with acquire loads between two
 * reads of map_seq and retries when they differ or were odd. No fences:
 * ThreadSanitizer checks this form (it cannot see fences). A worker
 * routing one item reads one owner, relaxed, and needs no more (view.h).
 */
#include "cluster/peer_internal.h"

#include <stdio.h>
#include <string.h>

uint16_t peer_owner(const struct peer *p, uint32_t slot)
{
	return LOAD_RELAXED(&p->view.owners[slot]);
}

uint16_t peer_self_id(const struct peer *p)
{
	return LOAD_RELAXED(&p->view.self);
}

bool peer_left(const struct peer *p)
{
	return LOAD_RELAXED(&p->view.left) != 0;
}

bool peer_writable(const struct peer *p)
{
	return LOAD_RELAXED(&p->view.writable) != 0 && LOAD_RELAXED(&p->view.left) == 0;
}

bool peer_owns(void *ctx, uint32_t slot)
{
	const struct peer *p = ctx;

	/* Cut off from most of the cluster, expire nothing: see health.c. */
	/* Acquire: a new self id (membership.c) comes with the quorum off that preceded it. */
	uint16_t self = LOAD_ACQUIRE(&p->view.self);

	return peer_owner(p, slot) == self && LOAD_RELAXED(&p->view.quorum);
}

bool peer_view_fresh(const struct peer *p, int64_t now_ms, uint32_t peer_down_ms)
{
	/* Acquire: a fresh loop_ms comes with the map and quorum its loop left (peer.c). */
	return now_ms - LOAD_ACQUIRE(&p->view.loop_ms) <= (int64_t)peer_down_ms;
}

uint64_t peer_map_read(const struct peer *p, uint16_t *owners)
{
	for (;;) {
		uint64_t s1 = LOAD_ACQUIRE(&p->view.map_seq), s2;

		if (s1 & 1)
			continue; /* a change is being written: a few hundred ns */
		/*
		 * Acquire loads: a reader that sees an owner of a change in
		 * progress synchronizes with its release store, which follows
		 * the odd map_seq, so s2 cannot equal s1.
		 */
		for (uint32_t s = 0; s < STORE_SLOTS; s++)
			owners[s] = LOAD_ACQUIRE(&p->view.owners[s]);
		s2 = LOAD_RELAXED(&p->view.map_seq);
		if (s1 == s2)
			return s1 / 2;
	}
}

void view_map_publish(struct peer *p, const uint16_t *owners, uint32_t *changed, uint32_t *gained)
{
	bool open = false;

	*changed = *gained = 0;
	for (uint32_t s = 0; s < STORE_SLOTS; s++) {
		if (p->view.owners[s] == owners[s]) /* the only writer: a plain read */
			continue;
		if (!open) {
			STORE_RELAXED(&p->view.map_seq, p->view.map_seq + 1); /* odd */
			open = true;
		}
		(*changed)++;
		if (owners[s] == p->self)
			(*gained)++;
		/* Release: ordered after the odd map_seq for whoever reads this owner. */
		STORE_RELEASE(&p->view.owners[s], owners[s]);
	}
	if (open)
		STORE_RELEASE(&p->view.map_seq, p->view.map_seq + 1); /* even: a new version */
}

static void format_addr(char *out, size_t len, const char *host, uint32_t port)
{
	snprintf(out, len, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
}

void peer_status_read(const struct peer *p, struct peer_status *out)
{
	static __thread uint16_t owners[STORE_SLOTS];
	int64_t now = peer_now_ms();

	memset(out, 0, sizeof(*out));
	if (p == NULL)
		return;
	/* The member list changes only under conf_mu (membership.c): copied whole. */
	pthread_mutex_lock((pthread_mutex_t *)&p->conf_mu);
	out->clustered = true;
	out->self_id = p->self;
	out->ready = LOAD_ACQUIRE(&p->view.ready);
	out->quorum = LOAD_RELAXED(&p->view.quorum);
	out->map_version = peer_map_read(p, owners);
	out->n = p->conf.n;
	for (uint32_t i = 0; i < p->conf.n; i++) {
		const struct member *mb = &p->conf.m[i];
		const struct peer_view_member *vm = &p->view.m[mb->id];
		struct peer_member_status *o = &out->m[i];

		o->id = mb->id;
		memcpy(o->addr, mb->addr, sizeof(o->addr));
		o->self = mb->id == p->self;
		if (o->self) {
			o->health = PEER_UP;
			o->ready = out->ready;
			format_addr(o->client_addr, sizeof(o->client_addr), mb->host,
			            LOAD_RELAXED(&p->view.client_port));
			o->last_rx_ms = 0;
			o->peer_map_version = out->map_version;
		} else {
			uint32_t cport = LOAD_RELAXED(&vm->client_port);
			int64_t rx = LOAD_RELAXED(&vm->last_rx_ms);

			o->health = (enum peer_health)LOAD_RELAXED(&vm->health);
			o->ready = LOAD_RELAXED(&vm->ready);
			if (cport)
				format_addr(o->client_addr, sizeof(o->client_addr), mb->host,
				            cport);
			o->last_rx_ms = rx ? now - rx : -1;
			o->backlog_bytes = LOAD_RELAXED(&vm->backlog_bytes);
			o->peer_map_version = LOAD_RELAXED(&vm->peer_map_version);
		}
	}
	pthread_mutex_unlock((pthread_mutex_t *)&p->conf_mu);
	for (uint32_t s = 0; s < STORE_SLOTS; s++)
		for (uint32_t i = 0; i < out->n; i++)
			if (out->m[i].id == owners[s])
				out->m[i].slots++;
#define PEER_STAT_READ(name) out->stats.name = LOAD_RELAXED(&p->view.stats.name);
	PEER_STATS(PEER_STAT_READ)
#undef PEER_STAT_READ
	for (uint32_t st = 0; st < REPL_STAGES; st++)
		for (uint32_t b = 0; b < REPL_STAGE_BUCKETS; b++)
			out->stage[st][b] = LOAD_RELAXED(&p->view.stage[st][b]);
}
