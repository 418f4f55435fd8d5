#include "core/pool.h"

#include "core/mem.h"

#include <assert.h>

struct pool_chunk {
	struct pool_chunk *next;
	/* objects follow, aligned to 16 bytes */
};

#define CHUNK_HEAD_BYTES 16

void pool_init(struct pool *p, size_t obj_bytes)
{
	if (obj_bytes < sizeof(void *))
		obj_bytes = sizeof(void *);
	p->obj_bytes = (obj_bytes + 7) & ~(size_t)7;
	p->free = NULL;
	p->fresh = p->fresh_end = NULL;
	p->chunks = NULL;
	p->live = 0;
	p->bytes = 0;
}

#ifdef DISTRO_SANITIZED

void *pool_get(struct pool *p)
{
	void *o = mem_alloc(p->obj_bytes);

	if (o) {
		p->live++;
		p->bytes += p->obj_bytes;
	}
	return o;
}

void pool_put(struct pool *p, void *obj)
{
	assert(p->live > 0);
	p->live--;
	p->bytes -= p->obj_bytes;
	mem_free(obj);
}

void pool_destroy(struct pool *p)
{
	p->live = 0;
	p->bytes = 0;
}

#else

static int pool_grow(struct pool *p)
{
	size_t bytes = CHUNK_HEAD_BYTES + p->obj_bytes * POOL_CHUNK_OBJS;
	struct pool_chunk *c = mem_alloc(bytes);

	if (c == NULL)
		return -1;
	c->next = p->chunks;
	p->chunks = c;
	p->bytes += bytes;
	/* Handed out by pool_get in order: nothing of the chunk is written here. */
	p->fresh = (char *)c + CHUNK_HEAD_BYTES;
	p->fresh_end = p->fresh + p->obj_bytes * POOL_CHUNK_OBJS;
	return 0;
}

void *pool_get(struct pool *p)
{
	void **o = p->free;

	if (o) {
		p->free = *o;
	} else {
		if (p->fresh == p->fresh_end && pool_grow(p) < 0)
			return NULL;
		o = (void **)p->fresh;
		p->fresh += p->obj_bytes;
	}
	p->live++;
	return o;
}

void pool_put(struct pool *p, void *obj)
{
	assert(p->live > 0);
	*(void **)obj = p->free;
	p->free = obj;
	p->live--;
}

void pool_destroy(struct pool *p)
{
	while (p->chunks) {
		struct pool_chunk *c = p->chunks;

		p->chunks = c->next;
		mem_free(c);
	}
	p->free = NULL;
	p->fresh = p->fresh_end = NULL;
	p->live = 0;
	p->bytes = 0;
}

#endif
