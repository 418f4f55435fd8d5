/*
 * Records on the peer wire, end to end with two stores: changes drained
 * from one node's feed, encoded, decoded and applied on another node leave
 * the two with equal slot checksums — the core of sync — and every
 * truncation of a batch is a clean error.
 */
#include "cluster/records.h"
#include "core/err.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static struct store_str S(const char *s) {
	return (struct store_str){ s, (uint32_t)strlen(s) };
}

static struct store *
make(uint16_t node)
{
	struct store_config c;
	struct store *s;

	store_config_default(&c);
	c.shards = 2;
	c.node_id = node;
	cr_assert_eq(store_create(&c, &s), 0);
	return s;
}

static struct store_key key_n(const char *svc, uint32_t n)
{
	struct store_key k;

	memset(&k, 0, sizeof(k));
	k.svc.service = S(svc);
	if (n % 7 == 0)
		k.cluster = S("east");
	k.addr.ip[10] = k.addr.ip[11] = 0xff;
	k.addr.ip[12] = 10;
	k.addr.ip[14] = (uint8_t)(n >> 8);
	k.addr.ip[15] = (uint8_t)n;
	k.addr.port = (uint16_t)(1000 + n);
	return k;
}

/* Drains every shard's feed of a into one batch and applies it on b. */
static uint32_t sync_once(struct store *a, struct store *b, uint8_t *buf, size_t cap)
{
	static struct store_view views[4096];
	static struct store_kv kv[PROTO_META_MAX];
	struct proto_wr w;
	struct proto_rd rd;
	uint32_t count = 0;

	proto_wr_init(&w, buf, cap);
	for (uint32_t i = 0; i < store_shards(a); i++) {
		uint32_t n = store_feed_drain(store_shard(a, i), views, 4096, NULL);

		for (uint32_t j = 0; j < n; j++)
			record_put(&w, &views[j]);
		count += n;
	}
	cr_assert_not(w.overflow);
	size_t len = (size_t)(w.p - buf);

	cr_assert_eq(record_batch_check(buf, len, count), 0);
	proto_rd_init(&rd, buf, len);
	for (uint32_t i = 0; i < count; i++) {
		struct store_record r;

		record_get(&rd, &r, kv, PROTO_META_MAX);
		cr_assert_eq(rd.err, 0);
		int rc = store_apply(store_shard(b, store_shard_of(b, &r.key.svc)), &r);

		cr_assert(rc >= 0 || rc == -ERR_STALE, "apply: %s", err_str(rc));
	}
	cr_assert_eq(proto_rd_done(&rd), 0);
	return count;
}

static void assert_same(struct store *a, struct store *b)
{
	for (uint32_t slot = 0; slot < STORE_SLOTS; slot++) {
		uint32_t ca, cb;

		cr_assert_eq(store_slot_checksum(a, slot, &ca), store_slot_checksum(b, slot, &cb),
		             "slot %u differs", slot);
		cr_assert_eq(ca, cb);
	}
}

Test(records, sync_through_the_wire_converges)
{
	struct store *a = make(1), *b = make(2);
	size_t cap = 4 << 20;
	uint8_t *buf = malloc(cap);
	struct store_kv meta[] = { { S("zone"), S("a") }, { S("v"), S("") } };
	uint64_t rng = 12345;

	for (int round = 0; round < 20; round++) {
		for (uint32_t i = 0; i < 300; i++) {
			rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
			uint32_t n = (uint32_t)(rng >> 33) % 500;
			char svc[16];

			snprintf(svc, sizeof(svc), "s%u", n % 9);
			struct store_key k = key_n(svc, n);
			struct store_shard *sh = store_shard(a, store_shard_of(a, &k.svc));
			struct store_val v;

			store_val_default(&v);
			v.weight_milli = (uint32_t)(rng >> 40) % 9000;
			v.meta = meta;
			v.meta_n = (uint32_t)(rng >> 50) % 3;
			if ((rng >> 60) % 4 == 0)
				(void)store_delete(sh, &k);
			else
				cr_assert_geq(store_upsert(sh, &k, &v), 0);
		}
		sync_once(a, b, buf, cap);
		assert_same(a, b);
	}
	/* Deletes travel too: b ends with exactly a's live instances. */
	struct store_stats sa, sb;

	store_stats(a, &sa);
	store_stats(b, &sb);
	cr_assert_eq(sa.instances, sb.instances);
	free(buf);
	store_destroy(a);
	store_destroy(b);
}

Test(records, every_truncation_is_a_clean_error)
{
	struct store *a = make(1);
	uint8_t buf[8192];
	struct store_view views[8];
	struct store_kv meta[] = { { S("k"), S("v") } };
	struct proto_wr w;
	struct store_val v;
	uint32_t n = 0;

	store_val_default(&v);
	v.meta = meta;
	v.meta_n = 1;
	struct store_key k1 = key_n("t", 1), k2 = key_n("t", 7);

	cr_assert_eq(store_upsert(store_shard(a, store_shard_of(a, &k1.svc)), &k1, &v),
	             STORE_CREATED);
	cr_assert_eq(store_upsert(store_shard(a, store_shard_of(a, &k2.svc)), &k2, &v),
	             STORE_CREATED);
	cr_assert_eq(store_delete(store_shard(a, store_shard_of(a, &k2.svc)), &k2), 0);
	proto_wr_init(&w, buf, sizeof(buf));
	for (uint32_t i = 0; i < store_shards(a); i++) {
		uint32_t m = store_feed_drain(store_shard(a, i), views, 8, NULL);

		for (uint32_t j = 0; j < m; j++)
			record_put(&w, &views[j]);
		n += m;
	}
	cr_assert_eq(n, 2, "one live, one delete (coalesced)");
	size_t len = (size_t)(w.p - buf);

	cr_assert_eq(record_batch_check(buf, len, n), 0);
	for (size_t cut = 0; cut < len; cut++)
		cr_assert_eq(record_batch_check(buf, cut, n), -ERR_PROTO_TRUNCATED, "cut %zu", cut);
	cr_assert_eq(record_batch_check(buf, len, n - 1), -ERR_PROTO_TRAILING);
	store_destroy(a);
}
