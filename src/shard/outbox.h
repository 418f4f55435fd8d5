/*
 * outbox.h - one thread's sending side of the cross-core rings.
 *
 * Every participant of the rings (each worker, the peer thread) sends
 * through its own outbox. A message goes straight onto its ring when the
 * ring has room and nothing older waits; otherwise it joins the backlog,
 * (destination, message) pairs in send order, retried at every loop, so
 * messages to one destination are never reordered. Destinations that got
 * something are collected in wake_mask; the owner wakes each of them once
 * per loop (a worker with MSG_RING, the peer thread through its eventfd).
 *
 * Bounds: the rings are bounded (XCORE slots); the backlog is bounded by
 * OUTBOX_BACKLOG_MAX. A message already accepted (a request's part, an
 * answer owed) cannot be dropped, so past that bound - or without memory
 * to grow - outbox_send fails and the caller decides. Producers of bulk
 * work keep it where it is bounded already instead: a worker's sync
 * checks outbox_backlog and leaves records in the store's coalescing feed
 * (server/replica.c); the peer thread stops reading its links while its
 * backlog is long, so peers' records wait in the sockets (cluster/link.c).
 *
 * Owned by one thread; nothing here is shared.
 */
#ifndef DISTRO_SHARD_OUTBOX_H
#define DISTRO_SHARD_OUTBOX_H

#include "shard/xcore.h"

#include <stdbool.h>
#include <stdint.h>

#define OUTBOX_BACKLOG_MAX (1u << 22) /* messages */

struct outbox {
	struct xcore *x;
	uint32_t self; /* this participant's index on the rings */
	void **v;      /* backlog: (destination, message) pairs */
	uint32_t n, cap;
	uint64_t wake_mask; /* destinations to wake at the end of this loop */
	uint64_t sent;      /* messages enqueued on a ring */
	uint64_t full;      /* sends that found the ring full (or a backlog) */
};

void outbox_init(struct outbox *o, struct xcore *x, uint32_t self);

/*
 * Sends msg to `to`: on its ring, or at the end of the backlog. False only
 * when the backlog is at OUTBOX_BACKLOG_MAX or out of memory: msg was not
 * taken and still belongs to the caller.
 */
bool outbox_send(struct outbox *o, uint32_t to, void *msg);

/* Moves the backlog onto the rings, oldest first, until a ring is full. */
void outbox_retry(struct outbox *o);

/* Messages waiting in the backlog. */
static inline uint32_t outbox_backlog(const struct outbox *o)
{
	return o->n;
}

/* The destinations to wake, cleared. */
static inline uint64_t outbox_take_wakes(struct outbox *o)
{
	uint64_t m = o->wake_mask;

	o->wake_mask = 0;
	return m;
}

/* Hands every backlogged message to fn (shutdown) and empties the backlog. */
void outbox_drain(struct outbox *o, void (*fn)(void *ctx, void *msg), void *ctx);

void outbox_free(struct outbox *o);

#endif
