#include "io/uring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif

int uring_init(struct io_uring *ring, unsigned entries, const char **why)
{
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	static const int needed[] = { IORING_OP_ACCEPT, IORING_OP_RECV, IORING_OP_SEND,
		                      IORING_OP_MSG_RING, IORING_OP_PROVIDE_BUFFERS };
	struct io_uring_params p;
	struct io_uring_probe *probe;
	int rc = -ENOSYS;

	for (unsigned i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		memset(&p, 0, sizeof(p));
		p.flags = tries[i] | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
		p.cq_entries = entries * 4;
		rc = io_uring_queue_init_params(entries, ring, &p);
		if (rc == 0)
			break;
	}
	if (rc < 0) {
		*why = rc == -ENOSYS  ? "io_uring is not available in this kernel"
		       : rc == -EPERM ? "io_uring is disabled (kernel.io_uring_disabled or seccomp)"
		                      : "io_uring_queue_init failed";
		return rc;
	}
	if (!(p.features & IORING_FEAT_FAST_POLL)) {
		*why = "the kernel's io_uring lacks FAST_POLL (need Linux 5.19 or later)";
		io_uring_queue_exit(ring);
		return -ENOTSUP;
	}
	probe = io_uring_get_probe_ring(ring);
	if (probe == NULL) {
		*why = "cannot probe io_uring opcodes";
		io_uring_queue_exit(ring);
		return -ENOTSUP;
	}
	for (unsigned i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		if (!io_uring_opcode_supported(probe, needed[i])) {
			*why = "the kernel's io_uring lacks an opcode distrod needs "
			       "(accept/recv/send/msg_ring; need Linux 5.19 or later)";
			io_uring_free_probe(probe);
			io_uring_queue_exit(ring);
			return -ENOTSUP;
		}
	}
	io_uring_free_probe(probe);
	return 0;
}

int uring_bufs_init(struct io_uring *ring, struct uring_bufs *b, uint16_t group, uint32_t count,
                    uint32_t start, uint32_t bytes)
{
	struct io_uring_buf_reg reg;
	size_t ring_bytes = count * sizeof(struct io_uring_buf);
	void *mem, *bufs;
	int rc;

	memset(b, 0, sizeof(*b));
	if (count == 0 || (count & (count - 1)) != 0 || count > 32768 || start == 0 ||
	    start > count || bytes == 0)
		return -EINVAL;
	mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	/* Its own mapping: a buffer never given is never touched, never resident. */
	bufs = mmap(NULL, (size_t)count * bytes, PROT_READ | PROT_WRITE,
	            MAP_ANONYMOUS | MAP_PRIVATE | MAP_NORESERVE, -1, 0);
	if (bufs == MAP_FAILED) {
		rc = -errno;
		munmap(mem, ring_bytes);
		return rc;
	}
	/* With THP "always", a first touch could make a 2 MiB page resident. */
	madvise(bufs, (size_t)count * bytes, MADV_NOHUGEPAGE);
	b->br = mem;
	b->mem = bufs;
	b->count = count;
	b->bytes = bytes;
	b->group = group;
	b->mask = (uint32_t)io_uring_buf_ring_mask(count);
	io_uring_buf_ring_init(b->br);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)b->br;
	reg.ring_entries = count;
	reg.bgid = group;
	rc = io_uring_register_buf_ring(ring, &reg, 0);
	if (rc < 0) {
		munmap(bufs, (size_t)count * bytes);
		munmap(mem, ring_bytes);
		b->br = NULL;
		return rc;
	}
	for (uint32_t i = 0; i < start; i++)
		io_uring_buf_ring_add(b->br, uring_buf(b, (uint16_t)i), bytes, (uint16_t)i,
		                      (int)b->mask, (int)i);
	io_uring_buf_ring_advance(b->br, (int)start);
	b->given = start;
	return 0;
}

uint32_t uring_bufs_grow(struct uring_bufs *b)
{
	uint32_t add = b->given < b->count - b->given ? b->given : b->count - b->given;

	/*
	 * The ring holds at most `given` entries (each buffer is in the ring
	 * or out with the kernel or us, once), so `count` entries leave room
	 * for the new ones.
	 */
	for (uint32_t i = 0; i < add; i++)
		io_uring_buf_ring_add(b->br, uring_buf(b, (uint16_t)(b->given + i)), b->bytes,
		                      (uint16_t)(b->given + i), (int)b->mask, (int)i);
	if (add > 0)
		io_uring_buf_ring_advance(b->br, (int)add);
	b->given += add;
	return add;
}

void uring_bufs_free(struct io_uring *ring, struct uring_bufs *b)
{
	if (b->br == NULL)
		return;
	io_uring_unregister_buf_ring(ring, b->group);
	munmap(b->br, b->count * sizeof(struct io_uring_buf));
	munmap(b->mem, (size_t)b->count * b->bytes);
	b->br = NULL;
}

struct io_uring_sqe *uring_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *sqe;

	/* A full SQ is submitted; the kernel consumes it, so this ends. */
	while ((sqe = io_uring_get_sqe(ring)) == NULL)
		io_uring_submit(ring);
	return sqe;
}
