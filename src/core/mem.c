#include "core/mem.h"

#include <stdlib.h>

#ifndef DISTRO_SANITIZED
#include <mimalloc.h>
#endif

void *mem_alloc(size_t bytes)
{
#ifdef DISTRO_SANITIZED
	return malloc(bytes);
#else
	return mi_malloc(bytes);
#endif
}

void *mem_calloc(size_t n, size_t bytes)
{
#ifdef DISTRO_SANITIZED
	return calloc(n, bytes);
#else
	return mi_calloc(n, bytes);
#endif
}

void *mem_alloc_aligned(size_t align, size_t bytes)
{
	bytes = (bytes + align - 1) & ~(align - 1);
#ifdef DISTRO_SANITIZED
	return aligned_alloc(align, bytes);
#else
	return mi_malloc_aligned(bytes, align);
#endif
}

void mem_free(void *p)
{
#ifdef DISTRO_SANITIZED
	free(p);
#else
	mi_free(p);
#endif
}
