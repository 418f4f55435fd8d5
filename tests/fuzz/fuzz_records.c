/*
 * libFuzzer target for the peer record decoder: arbitrary bytes as a batch
 * of records (the first byte is the count). Records that decode are applied
 * to a small store, so what a hostile or broken peer sends can at worst be
 * refused, never crash the node or break the store's checksums. Every
 * input starts from an empty store (one store, store_reset after each).
 */
#include "cluster/records.h"
#include "core/err.h"

#include <stdlib.h>

static struct store *s;

/* One store for the run, emptied after each input (store_reset: as new). */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct store_config c;

	(void)argc, (void)argv;
	store_config_default(&c);
	c.shards = 2;
	if (store_create(&c, &s) < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct store_kv kv[PROTO_META_MAX];
	struct proto_rd rd;
	uint32_t count;

	if (size < 1)
		return 0;
	count = data[0];
	proto_rd_init(&rd, data + 1, size - 1);
	for (uint32_t i = 0; i < count && !rd.err; i++) {
		struct store_record r;

		record_get(&rd, &r, kv, PROTO_META_MAX);
		if (rd.err)
			break;
		(void)store_apply(store_shard(s, store_shard_of(s, &r.key.svc)), &r);
	}
	/* The batch check must agree with the decoder about where the bytes end. */
	int whole = record_batch_check(data + 1, size - 1, count);

	if (whole == 0 && proto_rd_done(&rd) != 0)
		abort();
	if (store_reset(s) < 0)
		abort();
	return 0;
}
