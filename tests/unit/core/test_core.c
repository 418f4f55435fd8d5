/* Core helpers: the pool, epoch retirement, error strings. */
#include "core/epoch.h"
#include "core/err.h"
#include "core/pool.h"

#include <criterion/criterion.h>

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
