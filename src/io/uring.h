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
 * The buffer ring gives the kernel buffers of `bytes` each for multishot
 * recv: a completion names the buffer it filled; the worker parses it and
 * hands it straight back (uring_buf_recycle), so a connection holds no
 * buffer between reads.
 *
 * Grown on demand, within a bound. The kernel takes buffers from the ring
 * in order, so every buffer ever given cycles through use and becomes
 * resident: a ring of 512 x 16 KiB was 8 MiB of RSS per worker whatever the
 * load (8.4 B per instance at 2M). So the ring has room for `count` buffers
 * but starts with `given` of them; the memory behind the rest is address
 * space only (an anonymous mapping, touched when given). When the kernel
 * finds the ring empty (a receive completes with -ENOBUFS; the data stays
 * in the socket and the receive is re-armed) the owner may give more
 * (uring_bufs_grow: doubling, up to `count`; the server's policy is in
 * server/worker.c, recv_bufs_check). Buffers are never taken back: a
 * burst's high-water mark stays, bounded by `count`.
 */
#ifndef DISTRO_IO_URING_H
#define DISTRO_IO_URING_H

#include <liburing.h>
#include <stdint.h>

struct uring_bufs {
	struct io_uring_buf_ring *br;
	uint8_t *mem;
	uint32_t count; /* ring entries, power of two: the most buffers ever given */
	uint32_t given; /* buffers handed to the kernel so far: ids 0..given-1 */
	uint32_t bytes;
	uint16_t group;
	uint32_t mask;
};

/* Creates the ring; 0, or a negative errno with *why set to a human reason. */
int uring_init(struct io_uring *ring, unsigned entries, const char **why);

/*
 * Registers a ring of `count` entries (a power of two) as buffer group
 * `group` and gives the kernel the first `start` (1..count) buffers of
 * `bytes`. Maps count x bytes of address space, of which only buffers given
 * ever become resident. 0 or -errno.
 */
int uring_bufs_init(struct io_uring *ring, struct uring_bufs *b, uint16_t group, uint32_t count,
                    uint32_t start, uint32_t bytes);

/*
 * Gives the kernel as many more buffers as it has (doubling), up to
 * `count`: after a receive found the ring empty. Returns how many were
 * added, 0 at the bound. Visible to the kernel at once; O(added).
 */
uint32_t uring_bufs_grow(struct uring_bufs *b);

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
