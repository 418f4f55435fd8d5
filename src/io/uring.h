/*
 * uring.h - one io_uring per worker thread, and its provided-buffer ring.
 *
 * uring_init creates the ring on the calling thread with SINGLE_ISSUER and
 * DEFER_TASKRUN when the kernel has them (probed by trying, falling back to
 * COOP_TASKRUN, then to plain), and checks the opcodes the server needs
 * (multishot accept and recv with provided buffers, send, MSG_RING), so a
 * kernel without them gets a clear message at start instead of failures
 * later.
 *
 * The buffer ring gives the kernel `count` buffers of `bytes` each for
 * multishot recv: a completion names the buffer it filled; the worker parses
 * it and hands it straight back (uring_buf_recycle), so a connection holds
 * no buffer between reads.
 */
#ifndef DISTRO_IO_URING_H
#define DISTRO_IO_URING_H

#include <liburing.h>
#include <stdint.h>

struct uring_bufs {
	struct io_uring_buf_ring *br;
	uint8_t *mem;
	uint32_t count; /* power of two */
	uint32_t bytes;
	uint16_t group;
	uint32_t mask;
};

/* Creates the ring; 0, or a negative errno with *why set to a human reason. */
int uring_init(struct io_uring *ring, unsigned entries, const char **why);

/* Registers `count` buffers of `bytes` as buffer group `group`. 0 or -errno. */
int uring_bufs_init(struct io_uring *ring, struct uring_bufs *b, uint16_t group, uint32_t count,
                    uint32_t bytes);

void uring_bufs_free(struct io_uring *ring, struct uring_bufs *b);

static inline uint8_t *uring_buf(struct uring_bufs *b, uint16_t bid)
{
	return b->mem + (size_t)bid * b->bytes;
}

/* Gives buffer bid back to the kernel (visible at the next advance). */
static inline void uring_buf_recycle(struct uring_bufs *b, uint16_t bid)
{
	io_uring_buf_ring_add(b->br, uring_buf(b, bid), b->bytes, bid, (int)b->mask, 0);
	io_uring_buf_ring_advance(b->br, 1);
}

/* An SQE, submitting what is queued first if the SQ is full. Never NULL. */
struct io_uring_sqe *uring_sqe(struct io_uring *ring);

#endif
