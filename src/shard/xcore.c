#include "shard/xcore.h"

#include "core/atomic.h"
#include "core/err.h"
#include "core/mem.h"

#include <string.h>

_Static_assert(__builtin_offsetof(struct xq, head) == 64, "indexes on separate cache lines");

int xcore_init(struct xcore *x, uint32_t workers, uint32_t slots)
{
	memset(x, 0, sizeof(*x));
	if (slots == 0 || (slots & (slots - 1)) != 0)
		return -ERR_INVAL;
	x->n = workers;
	x->slots = slots;
	x->q = mem_alloc_aligned(64, sizeof(x->q[0]) * workers * workers);
	if (x->q == NULL)
		return -ERR_NOMEM;
	memset(x->q, 0, sizeof(x->q[0]) * workers * workers);
	for (uint32_t i = 0; i < workers * workers; i++) {
		x->q[i].slots = mem_calloc(slots, sizeof(void *));
		x->q[i].mask = slots - 1;
		if (x->q[i].slots == NULL) {
			xcore_free(x);
			return -ERR_NOMEM;
		}
	}
	return 0;
}

void xcore_free(struct xcore *x)
{
	if (x->q == NULL)
		return;
	for (uint32_t i = 0; i < x->n * x->n; i++)
		mem_free(x->q[i].slots);
	mem_free(x->q);
	x->q = NULL;
}

bool xcore_send(struct xcore *x, uint32_t from, uint32_t to, void *msg)
{
	struct xq *q = &x->q[from * x->n + to];
	uint32_t t = q->tail;

	if (t - q->head_cached > q->mask) {
		q->head_cached = LOAD_ACQUIRE(&q->head);
		if (t - q->head_cached > q->mask)
			return false;
	}
	STORE_RELAXED(&q->slots[t & q->mask], msg);
	STORE_RELEASE(&q->tail, t + 1);
	return true;
}

uint32_t xcore_recv(struct xcore *x, uint32_t from, uint32_t to, void **msgs, uint32_t max)
{
	struct xq *q = &x->q[from * x->n + to];
	uint32_t h = q->head, n = 0;

	if (h == q->tail_cached) {
		q->tail_cached = LOAD_ACQUIRE(&q->tail);
		if (h == q->tail_cached)
			return 0;
	}
	while (n < max && h != q->tail_cached)
		msgs[n++] = LOAD_RELAXED(&q->slots[h++ & q->mask]);
	STORE_RELEASE(&q->head, h);
	return n;
}
