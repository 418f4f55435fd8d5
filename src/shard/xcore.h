/*
 * xcore.h - messages between worker cores.
 *
 * One bounded single-producer/single-consumer ring per ordered pair of
 * workers, so no two threads ever write the same index: worker `from` alone
 * enqueues on q[from][to], worker `to` alone dequeues. The producer's and
 * the consumer's indexes live on separate cache lines, and each side keeps
 * a cached copy of the other's index so it touches the shared line only
 * when the cache says full (or empty). A message is one pointer; what it
 * points to belongs to the sender until the receiver sends it back.
 *
 * Why not ck_ring: its slot copies are plain loads and stores ordered by
 * inline-assembly fences, which ThreadSanitizer cannot see, so every message
 * reads as a race and the TSan build could not check this code. These rings
 * order the same accesses with C11 acquire/release (plain moves on x86), and
 * TSan verifies them.
 *
 * Waking the receiver is the sender's job and is done once per loop, not
 * per message (see worker.c).
 */
#ifndef DISTRO_SHARD_XCORE_H
#define DISTRO_SHARD_XCORE_H

#include <stdbool.h>
#include <stdint.h>

struct xq {
	/* producer's line */
	uint32_t tail;        /* next slot to write (release) */
	uint32_t head_cached; /* producer's last look at head */
	uint8_t pad0[56];
	/* consumer's line */
	uint32_t head;        /* next slot to read (release) */
	uint32_t tail_cached; /* consumer's last look at tail */
	uint8_t pad1[56];
	void **slots;
	uint32_t mask;
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
