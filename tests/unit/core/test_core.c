/* Core helpers: the pool, epoch retirement, error strings. */
#include "core/epoch.h"
#include "core/err.h"
#include "core/pool.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

Test(pool, reuses_objects_and_counts)
{
	struct pool p;
	void *objs[10000];

	pool_init(&p, 88);
	for (int i = 0; i < 10000; i++) {
		objs[i] = pool_get(&p);
		cr_assert_not_null(objs[i]);
		memset(objs[i], 0xab, 88);
	}
	cr_assert_eq(p.live, 10000);
	uint64_t bytes = p.bytes;

	for (int i = 0; i < 10000; i++)
		pool_put(&p, objs[i]);
	cr_assert_eq(p.live, 0);

	for (int i = 0; i < 10000; i++)
		objs[i] = pool_get(&p);
	cr_assert_eq(p.bytes, bytes, "a steady population allocates nothing new");
	for (int i = 0; i < 10000; i++)
		pool_put(&p, objs[i]);
	pool_destroy(&p);
}

Test(pool, objects_are_distinct_across_chunks_and_reuse)
{
	/* Enough for three chunks, gets and puts interleaved: no object twice. */
	enum { N = 3 * POOL_CHUNK_OBJS };
	static uint32_t *objs[N];
	struct pool p;

	pool_init(&p, 24);
	for (uint32_t i = 0; i < N; i++) {
		objs[i] = pool_get(&p);
		cr_assert_not_null(objs[i]);
		objs[i][2] = i;   /* past the free-list word */
		if (i % 3 == 2) { /* give one back and take it (or another) again */
			pool_put(&p, objs[i - 1]);
			objs[i - 1] = pool_get(&p);
			objs[i - 1][2] = i - 1;
		}
	}
	cr_assert_eq(p.live, N);
	for (uint32_t i = 0; i < N; i++)
		cr_assert_eq(objs[i][2], i, "object %u was handed out twice", i);
	for (uint32_t i = 0; i < N; i++)
		pool_put(&p, objs[i]);
	cr_assert_eq(p.live, 0);
	pool_destroy(&p);
}

#ifndef DISTRO_SANITIZED
#include <sys/mman.h>
#include <unistd.h>

/* Pages of [p, p + bytes) in memory (mincore), or -1. */
static long resident_pages(void *p, size_t bytes)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)(page - 1);
	size_t n = ((uintptr_t)p + bytes - a + (size_t)page - 1) / (size_t)page;
	unsigned char *v = malloc(n);
	long r = 0;

	if (v == NULL || mincore((void *)a, n * (size_t)page, v) < 0) {
		free(v);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		r += v[i] & 1;
	free(v);
	return r;
}
#endif

Test(pool, a_new_chunk_is_not_touched_beyond_what_is_handed_out)
{
#ifdef DISTRO_SANITIZED
	cr_skip_test("sanitizer builds allocate each object on its own: no chunks");
#else
	/* 4 KiB objects, as a worker's pendings: a chunk is 16 MiB. */
	struct pool p;
	void *first[4];
	long r;

	pool_init(&p, 4096);
	for (int i = 0; i < 4; i++)
		first[i] = pool_get(&p);
	for (int i = 1; i < 4; i++)
		cr_assert_eq((char *)first[i], (char *)first[0] + 4096 * i, "handed out in order");
	r = resident_pages(first[0], (size_t)4096 * POOL_CHUNK_OBJS);
	cr_assert_geq(r, 0);
	/* The four objects (and the chunk's first page) at most, not 4096 pages. */
	cr_assert_leq(r, 8, "%ld pages of a fresh chunk resident", r);
	for (int i = 0; i < 4; i++)
		pool_put(&p, first[i]);
	pool_destroy(&p);
#endif
}

static int freed;

static void count_free(void *ctx, void *obj)
{
	(void)ctx;
	(void)obj;
	freed++;
}

static struct epoch ep;
static struct epoch_rec writer, reader;

Test(epoch, retired_objects_wait_for_readers)
{
	int dummy[300];

	epoch_init(&ep);
	epoch_register(&ep, &writer);
	epoch_register(&ep, &reader);
	freed = 0;
	epoch_enter(&reader);
	for (int i = 0; i < 300; i++)
		epoch_retire(&writer, count_free, NULL, &dummy[i]);
	for (int i = 0; i < 5; i++)
		epoch_poll(&writer);
	cr_assert_eq(freed, 0, "a reader inside its section holds everything retired");
	epoch_exit(&reader);
	for (int i = 0; i < 5 && freed < 300; i++)
		epoch_poll(&writer);
	epoch_barrier(&writer);
	cr_assert_eq(freed, 300);
	cr_assert_eq(writer.retired, 300);
	cr_assert_eq(writer.freed, 300);
	epoch_unregister(&reader);
	epoch_unregister(&writer);
}

Test(err, every_code_has_a_message)
{
	for (int c = 1; c <= ERR_LIMIT_SUBS; c++)
		cr_assert_str_neq(err_str(-c), "unknown error", "code %d", c);
}
