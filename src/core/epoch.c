#include "core/epoch.h"

#include "core/mem.h"

#include <stddef.h>

struct epoch_item {
	epoch_free_fn *fn;
	void *ctx;
	void *obj;
};

struct epoch_batch {
	ck_epoch_entry_t entry;
	struct epoch_rec *rec;
	uint32_t n;
	struct epoch_item items[EPOCH_BATCH];
};

void epoch_init(struct epoch *e)
{
	ck_epoch_init(&e->ck);
}

void epoch_register(struct epoch *e, struct epoch_rec *r)
{
	ck_epoch_register(&e->ck, &r->ck, NULL);
	r->epoch = e;
	r->batch = NULL;
	r->retired = 0;
	r->freed = 0;
}

static void batch_run(struct epoch_batch *b)
{
	EPOCH_TSAN_ACQUIRE(b->rec->epoch);
	for (uint32_t i = 0; i < b->n; i++)
		b->items[i].fn(b->items[i].ctx, b->items[i].obj);
	b->rec->freed += b->n;
	mem_free(b);
}

static void batch_cb(ck_epoch_entry_t *entry)
{
	batch_run((struct epoch_batch *)((char *)entry - offsetof(struct epoch_batch, entry)));
}

static void batch_submit(struct epoch_rec *r)
{
	struct epoch_batch *b = r->batch;

	if (b == NULL)
		return;
	r->batch = NULL;
	ck_epoch_call(&r->ck, &b->entry, batch_cb);
}

void epoch_retire(struct epoch_rec *r, epoch_free_fn *fn, void *ctx, void *obj)
{
	struct epoch_batch *b = r->batch;

	r->retired++;
	if (b == NULL) {
		b = mem_alloc(sizeof(*b));
		if (b == NULL) {
			ck_epoch_synchronize(&r->ck);
			EPOCH_TSAN_ACQUIRE(r->epoch);
			fn(ctx, obj);
			r->freed++;
			return;
		}
		b->rec = r;
		b->n = 0;
		r->batch = b;
	}
	b->items[b->n++] = (struct epoch_item){ fn, ctx, obj };
	if (b->n == EPOCH_BATCH)
		batch_submit(r);
}

void epoch_poll(struct epoch_rec *r)
{
	batch_submit(r);
	ck_epoch_poll(&r->ck);
}

void epoch_barrier(struct epoch_rec *r)
{
	batch_submit(r);
	ck_epoch_barrier(&r->ck);
}

void epoch_unregister(struct epoch_rec *r)
{
	epoch_barrier(r);
	ck_epoch_unregister(&r->ck);
}
