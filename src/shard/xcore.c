#include "shard/xcore.h"

#include "core/err.h"
#include "core/mem.h"

#include <string.h>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define XQ_RELEASE(a) __tsan_release(a)
#define XQ_ACQUIRE(a) __tsan_acquire(a)
#else
#define XQ_RELEASE(a) ((void)(a))
#define XQ_ACQUIRE(a) ((void)(a))
#endif

int xcore_init(struct xcore *x, uint32_t workers, uint32_t slots)
{
	memset(x, 0, sizeof(*x));
	x->n = workers;
	x->slots = slots;
	x->q = mem_alloc_aligned(64, sizeof(x->q[0]) * workers * workers);
	if (x->q == NULL)
		return -ERR_NOMEM;
	memset(x->q, 0, sizeof(x->q[0]) * workers * workers);
	for (uint32_t i = 0; i < workers * workers; i++) {
		x->q[i].buf = mem_calloc(slots, sizeof(ck_ring_buffer_t));
		if (x->q[i].buf == NULL) {
			xcore_free(x);
			return -ERR_NOMEM;
		}
		ck_ring_init(&x->q[i].ring, slots);
	}
	return 0;
}

void xcore_free(struct xcore *x)
{
	if (x->q == NULL)
		return;
	for (uint32_t i = 0; i < x->n * x->n; i++)
		mem_free(x->q[i].buf);
	mem_free(x->q);
	x->q = NULL;
}

bool xcore_send(struct xcore *x, uint32_t from, uint32_t to, void *msg)
{
	struct xq *q = &x->q[from * x->n + to];

	XQ_RELEASE(q);
	return ck_ring_enqueue_spsc(&q->ring, q->buf, msg);
}

uint32_t xcore_recv(struct xcore *x, uint32_t from, uint32_t to, void **msgs, uint32_t max)
{
	struct xq *q = &x->q[from * x->n + to];
	uint32_t n = 0;

	while (n < max && ck_ring_dequeue_spsc(&q->ring, q->buf, &msgs[n]))
		n++;
	if (n)
		XQ_ACQUIRE(q);
	return n;
}
