#include "shard/outbox.h"

#include "core/atomic.h"
#include "core/mem.h"

#include <string.h>

void outbox_init(struct outbox *o, struct xcore *x, uint32_t self)
{
	memset(o, 0, sizeof(*o));
	o->x = x;
	o->self = self;
}

bool outbox_send(struct outbox *o, uint32_t to, void *msg)
{
	if (o->n == 0 && xcore_send(o->x, o->self, to, msg)) {
		STORE_RELAXED(&o->sent, o->sent + 1);
		o->wake_mask |= 1ull << to;
		return true;
	}
	STORE_RELAXED(&o->full, o->full + 1);
	if (o->n == o->cap) {
		uint32_t cap = o->cap ? o->cap * 2 : 64;
		void **v;

		if (o->cap >= OUTBOX_BACKLOG_MAX)
			return false;
		v = mem_alloc(sizeof(v[0]) * 2 * cap);
		if (v == NULL)
			return false;
		if (o->n)
			memcpy(v, o->v, sizeof(v[0]) * 2 * o->n);
		mem_free(o->v);
		o->v = v;
		o->cap = cap;
	}
	o->v[2 * o->n] = (void *)(uintptr_t)to;
	o->v[2 * o->n + 1] = msg;
	o->n++;
	return true;
}

void outbox_retry(struct outbox *o)
{
	uint32_t i = 0;

	while (i < o->n) {
		uint32_t to = (uint32_t)(uintptr_t)o->v[2 * i];

		if (!xcore_send(o->x, o->self, to, o->v[2 * i + 1]))
			break;
		STORE_RELAXED(&o->sent, o->sent + 1);
		o->wake_mask |= 1ull << to;
		i++;
	}
	if (i) {
		o->n -= i;
		memmove(o->v, o->v + 2 * i, sizeof(o->v[0]) * 2 * o->n);
	}
}

void outbox_drain(struct outbox *o, void (*fn)(void *ctx, void *msg), void *ctx)
{
	for (uint32_t i = 0; i < o->n; i++)
		fn(ctx, o->v[2 * i + 1]);
	o->n = 0;
}

void outbox_free(struct outbox *o)
{
	mem_free(o->v);
	o->v = NULL;
	o->n = o->cap = 0;
}
