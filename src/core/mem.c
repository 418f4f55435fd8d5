#include "core/mem.h"

#include <stdlib.h>
#include <sys/mman.h>

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

void *mem_big_calloc(size_t bytes)
{
#ifdef DISTRO_SANITIZED
	return calloc(1, bytes); /* ASan sees it: leaks, overflows */
#else
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
#endif
}

void mem_big_free(void *p, size_t bytes)
{
#ifdef DISTRO_SANITIZED
	(void)bytes;
	free(p);
#else
	if (p)
		munmap(p, bytes);
#endif
}
