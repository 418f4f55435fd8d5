/*
 * xcore.h - messages between worker cores.
 *
 * One bounded single-producer/single-consumer ring (Concurrency Kit's
 * ck_ring) per ordered pair of workers, so no two threads ever write the
 * same index: worker `from` alone enqueues on q[from][to], worker `to` alone
 * dequeues. ck_ring keeps the producer and consumer indexes on separate
 * cache lines. A message is one pointer; what it points to belongs to the
 * sender until the receiver is done with it and says so by a message back.
 *
 * Waking the receiver is the sender's job and is done once per loop, not
 * per message (see worker.c). Under ThreadSanitizer the enqueue releases and
 * the dequeue acquires the ring's address, because ck_ring's fences are
 * inline assembly TSan cannot see.
 */
#ifndef DISTRO_SHARD_XCORE_H
#define DISTRO_SHARD_XCORE_H

#include <ck_ring.h>
#include <stdbool.h>
#include <stdint.h>

struct xq {
	ck_ring_t ring;
	ck_ring_buffer_t *buf;
} __attribute__((aligned(64)));

struct xcore {
	uint32_t n;
	uint32_t slots; /* per ring, a power of two */
	struct xq *q;   /* n * n, q[from * n + to] */
};

int xcore_init(struct xcore *x, uint32_t workers, uint32_t slots);
void xcore_free(struct xcore *x);

/* Enqueues msg for worker `to`; false when that ring is full (retry later). */
bool xcore_send(struct xcore *x, uint32_t from, uint32_t to, void *msg);

/* Dequeues up to max messages sent by `from` to `to`. Returns how many. */
uint32_t xcore_recv(struct xcore *x, uint32_t from, uint32_t to, void **msgs, uint32_t max);

#endif
