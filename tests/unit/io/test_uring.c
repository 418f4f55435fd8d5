/*
 * The provided-buffer ring: it starts with a few buffers, a receive that
 * finds it empty gets -ENOBUFS with the data left in the socket, the ring
 * grows (doubling, to its bound) and the data arrives whole and in order;
 * buffers never given are never resident. A real io_uring and a real
 * socket pair (skipped, with the reason, where the kernel has no io_uring).
 */
#include "io/uring.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define GROUP 7
#define BYTES 4096u /* a page each, so residency is per buffer */
#define COUNT 8u
#define START 2u

static struct io_uring ring;

static void ring_up(void)
{
	const char *why = "";
	int rc = uring_init(&ring, 64, &why);

	if (rc < 0)
		cr_skip_test("no usable io_uring: %s (%s)", why, strerror(-rc));
}

static void arm(int fd)
{
	struct io_uring_sqe *sqe = uring_sqe(&ring);

	io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = GROUP;
	io_uring_sqe_set_data64(sqe, 1);
	cr_assert_geq(io_uring_submit(&ring), 1);
}

/* The next completion, within 5 s: its result, flags and buffer id. */
static int next(uint32_t *flags, uint16_t *bid)
{
	struct __kernel_timespec ts = { 5, 0 };
	struct io_uring_cqe *cqe;
	int rc = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);

	cr_assert_eq(rc, 0, "no completion within 5 s: %s", strerror(-rc));
	rc = cqe->res;
	*flags = cqe->flags;
	*bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
	io_uring_cqe_seen(&ring, cqe);
	return rc;
}

/* Pages of the buffer memory that are resident, as a bit mask by buffer. */
static uint32_t resident(const struct uring_bufs *b)
{
	unsigned char vec[COUNT];
	uint32_t m = 0;

	cr_assert_eq(mincore(b->mem, (size_t)COUNT * BYTES, vec), 0);
	for (uint32_t i = 0; i < COUNT; i++)
		if (vec[i] & 1)
			m |= 1u << i;
	return m;
}

Test(uring_bufs, grows_on_enobufs_within_its_bound)
{
	struct uring_bufs b;
	uint8_t sent[3 * BYTES], got[3 * BYTES];
	size_t got_n = 0;
	uint32_t flags;
	uint16_t bid;
	int sv[2], rc;

	ring_up();
	cr_assert_eq(uring_bufs_init(&ring, &b, GROUP, COUNT, START, BYTES), 0);
	cr_assert_eq(b.given, START);
	cr_assert_eq(resident(&b), 0, "nothing is touched before the kernel fills a buffer");
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	for (size_t i = 0; i < sizeof(sent); i++)
		sent[i] = (uint8_t)(i * 7 + i / 251);
	cr_assert_eq(write(sv[1], sent, sizeof(sent)), (ssize_t)sizeof(sent));

	/* Three buffers' worth waits; two buffers are given: two fills, then -ENOBUFS. */
	arm(sv[0]);
	for (int i = 0; i < 2; i++) {
		rc = next(&flags, &bid);
		cr_assert_eq(rc, (int)BYTES, "fill %d: %d", i, rc);
		cr_assert(flags & IORING_CQE_F_BUFFER);
		cr_assert_lt(bid, START, "only given buffers are used");
		memcpy(got + got_n, uring_buf(&b, bid), (size_t)rc);
		got_n += (size_t)rc;
	}
	rc = next(&flags, &bid);
	cr_assert_eq(rc, -ENOBUFS, "an empty ring ends the receive: %d", rc);
	cr_assert_not(flags & IORING_CQE_F_MORE);
	cr_assert_eq(resident(&b), 0x3, "only the two given buffers became resident");

	/* Grown (doubling), the buffers handed back, re-armed: the rest arrives. */
	cr_assert_eq(uring_bufs_grow(&b), START);
	cr_assert_eq(b.given, 2 * START);
	uring_buf_recycle(&b, 0);
	uring_buf_recycle(&b, 1);
	arm(sv[0]);
	rc = next(&flags, &bid);
	cr_assert_eq(rc, (int)BYTES);
	cr_assert(flags & IORING_CQE_F_MORE, "the receive stays armed");
	cr_assert_lt(bid, 2 * START);
	memcpy(got + got_n, uring_buf(&b, bid), (size_t)rc);
	got_n += (size_t)rc;
	cr_assert_eq(got_n, sizeof(sent));
	cr_assert_eq(memcmp(got, sent, sizeof(sent)), 0, "nothing lost, nothing reordered");

	/* Doubling stops at the bound. */
	cr_assert_eq(uring_bufs_grow(&b), 2 * START);
	cr_assert_eq(b.given, COUNT);
	cr_assert_eq(uring_bufs_grow(&b), 0);
	cr_assert_eq(b.given, COUNT);

	close(sv[1]); /* ends the receive: a 0-byte completion without F_MORE */
	rc = next(&flags, &bid);
	cr_assert_eq(rc, 0);
	close(sv[0]);
	uring_bufs_free(&ring, &b);
	io_uring_queue_exit(&ring);
}

Test(uring_bufs, refuses_bad_sizes)
{
	struct uring_bufs b;

	ring_up();
	cr_assert_eq(uring_bufs_init(&ring, &b, GROUP, 6, 2, BYTES), -EINVAL, "not a power of two");
	cr_assert_eq(uring_bufs_init(&ring, &b, GROUP, 8, 0, BYTES), -EINVAL, "none given");
	cr_assert_eq(uring_bufs_init(&ring, &b, GROUP, 8, 9, BYTES), -EINVAL, "more than fit");
	uring_bufs_free(&ring, &b); /* after a failed init: nothing to free, no crash */
	io_uring_queue_exit(&ring);
}
