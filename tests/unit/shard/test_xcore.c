/* Cross-core rings: order, bounds, wrap-around, and a two-thread run. */
#include "core/err.h"
#include "shard/xcore.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>

Test(xcore, fifo_bounded_and_wraps)
{
	struct xcore x;
	void *got[16];

	cr_assert_eq(xcore_init(&x, 2, 8), 0);
	for (uintptr_t round = 0; round < 100; round++) {
		for (uintptr_t i = 1; i <= 8; i++)
			cr_assert(xcore_send(&x, 0, 1, (void *)(round * 8 + i)));
		cr_assert_not(xcore_send(&x, 0, 1, (void *)1), "a full ring refuses");
		cr_assert_eq(xcore_recv(&x, 1, 0, got, 16), 0, "the other direction is separate");
		cr_assert_eq(xcore_recv(&x, 0, 1, got, 3), 3);
		cr_assert_eq((uintptr_t)got[0], round * 8 + 1);
		cr_assert_eq(xcore_recv(&x, 0, 1, got, 16), 5);
		cr_assert_eq((uintptr_t)got[4], round * 8 + 8);
		cr_assert_eq(xcore_recv(&x, 0, 1, got, 16), 0);
	}
	xcore_free(&x);
	cr_assert_eq(xcore_init(&x, 2, 6), -ERR_INVAL, "sizes are powers of two");
}

static struct xcore shared;

static void *producer(void *arg)
{
	(void)arg;
	for (uintptr_t i = 1; i <= 200000;)
		if (xcore_send(&shared, 0, 1, (void *)i))
			i++;
	return NULL;
}

Test(xcore, two_threads_keep_order)
{
	pthread_t t;
	uintptr_t want = 1;
	void *got[64];

	cr_assert_eq(xcore_init(&shared, 2, 64), 0);
	pthread_create(&t, NULL, producer, NULL);
	while (want <= 200000) {
		uint32_t n = xcore_recv(&shared, 0, 1, got, 64);

		for (uint32_t i = 0; i < n; i++)
			cr_assert_eq((uintptr_t)got[i], want++, "out of order");
	}
	pthread_join(t, NULL);
	xcore_free(&shared);
}
