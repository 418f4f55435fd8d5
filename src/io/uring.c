#include "io/uring.h"

#include "core/mem.h"

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
                    uint32_t bytes)
{
	struct io_uring_buf_reg reg;
	size_t ring_bytes = count * sizeof(struct io_uring_buf);
	void *mem;
	int rc;

	memset(b, 0, sizeof(*b));
	mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	b->br = mem;
	b->count = count;
	b->bytes = bytes;
	b->group = group;
	b->mask = (uint32_t)io_uring_buf_ring_mask(count);
	b->mem = mem_alloc_aligned(4096, (size_t)count * bytes);
	if (b->mem == NULL) {
		munmap(mem, ring_bytes);
		return -ENOMEM;
	}
	io_uring_buf_ring_init(b->br);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)b->br;
	reg.ring_entries = count;
	reg.bgid = group;
	rc = io_uring_register_buf_ring(ring, &reg, 0);
	if (rc < 0) {
		mem_free(b->mem);
		munmap(mem, ring_bytes);
		return rc;
	}
	for (uint32_t i = 0; i < count; i++)
		io_uring_buf_ring_add(b->br, uring_buf(b, (uint16_t)i), bytes, (uint16_t)i,
		                      (int)b->mask, (int)i);
	io_uring_buf_ring_advance(b->br, (int)count);
	return 0;
}

void uring_bufs_free(struct io_uring *ring, struct uring_bufs *b)
{
	if (b->br == NULL)
		return;
	io_uring_unregister_buf_ring(ring, b->group);
	munmap(b->br, b->count * sizeof(struct io_uring_buf));
	mem_free(b->mem);
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
