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
	char *base;

	if (c == NULL)
		return -1;
	c->next = p->chunks;
	p->chunks = c;
	p->bytes += bytes;
	base = (char *)c + CHUNK_HEAD_BYTES;
	for (size_t i = POOL_CHUNK_OBJS; i-- > 0;) {
		void **o = (void **)(base + i * p->obj_bytes);

		*o = p->free;
		p->free = o;
	}
	return 0;
}

void *pool_get(struct pool *p)
{
	void **o;

	if (p->free == NULL && pool_grow(p) < 0)
		return NULL;
	o = p->free;
	p->free = *o;
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
	p->live = 0;
	p->bytes = 0;
}

#endif
