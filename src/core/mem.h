/*
 * mem.h - the allocator.
 *
 * Release builds allocate from mimalloc (fast per-thread free lists, little
 * overhead per small object). Sanitizer builds (DISTRO_SANITIZED) go through
 * libc so ASan/TSan see every allocation and free. Allocation failure returns
 * NULL; callers turn it into -ERR_NOMEM.
 */
#ifndef DISTRO_CORE_MEM_H
#define DISTRO_CORE_MEM_H

#include <stddef.h>

void *mem_alloc(size_t bytes);
void *mem_calloc(size_t n, size_t bytes);
/* bytes rounded up to a multiple of align (a power of two); free with mem_free. */
void *mem_alloc_aligned(size_t align, size_t bytes);
void mem_free(void *p);

/* Blocks of at least this many bytes are worth a mapping of their own. */
#define MEM_BIG_BYTES (1u << 20)

/* `bytes` zeroed bytes; NULL when memory is exhausted. Free with mem_big_free. */
void *mem_big_calloc(size_t bytes);
/* Returns a block of mem_big_calloc to the kernel; `bytes` as allocated. */
void mem_big_free(void *p, size_t bytes);

#endif
