/*
 * pool.h - a fixed-size object pool for one thread.
 *
 * Objects come from chunks of POOL_CHUNK_OBJS; a free object holds the link
 * of the free list in its first word. No header per object, no lock: the
 * pool belongs to one owner (a store shard) and only that thread calls it.
 * Chunks are kept until pool_destroy, so a steady population stops
 * allocating. Sanitizer builds allocate each object on its own so ASan sees
 * use-after-free and leaks.
 *
 * A new chunk is handed out front to back (a bump pointer), not threaded
 * onto the free list when it arrives: threading writes a word into every
 * object, which makes the whole chunk resident at once. For small objects
 * that is the chunk anyway, but a pool of 4 KiB objects (a worker's
 * pendings) would hold 16 MiB resident after its first use. Untouched, the
 * rest of a chunk is address space only.
 */
#ifndef DISTRO_CORE_POOL_H
#define DISTRO_CORE_POOL_H

#include <stddef.h>
#include <stdint.h>

#define POOL_CHUNK_OBJS 4096

struct pool_chunk;

struct pool {
	size_t obj_bytes;
	void *free;                /* free list */
	char *fresh, *fresh_end;   /* never handed out yet: the newest chunk's tail */
	struct pool_chunk *chunks; /* every chunk, for pool_destroy */
	uint64_t live;             /* objects handed out */
	uint64_t bytes;            /* bytes held from the allocator */
};

void pool_init(struct pool *p, size_t obj_bytes);

/* An uninitialised object, or NULL when memory is exhausted. O(1). */
void *pool_get(struct pool *p);

/* Returns an object from pool_get. O(1). */
void pool_put(struct pool *p, void *obj);

/* Frees every chunk. Objects still handed out become invalid. */
void pool_destroy(struct pool *p);

#endif
