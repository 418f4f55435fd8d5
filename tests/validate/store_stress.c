/*
 * A validate program in the manner of ck's regressions: a plain main(), not
 * Criterion, because Criterion's forked test boxes cannot map their arena
 * under ThreadSanitizer and this program must run in the TSan build.
 *
 * Readers on other threads list, get and scan while each shard's writer
 * mutates: no torn read (an instance's metadata always names its weight), no
 * missing instance (a stable set is always listed in full), no deleted one
 * listed, no use-after-free (ASan build) and no data race (TSan build).
 */
#include "../unit/store/validate.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define SERVICES   4
#define STABLE     40  /* per service, never deleted */
#define CHURN      400 /* per service, registered and deleted at random */
#define WRITER_OPS 60000
#define READERS    2

static struct store *s;
static atomic_int writers_done;
static atomic_ulong torn, missing, listed_deleted, reads;

static void svc_name(char *buf, uint32_t i)
{
	snprintf(buf, 16, "stress%u", i);
}

static void make_val(struct store_val *v, struct store_kv *kv, char *wbuf, uint32_t w)
{
	store_val_default(v);
	v->weight_milli = w;
	snprintf(wbuf, 16, "%u", w);
	kv[0] = (struct store_kv){ S("w"), S(wbuf) };
	kv[1] = (struct store_kv){ S("pad"), S(w % 2 ? "odd" : "even") };
	v->meta = kv;
	v->meta_n = 1 + w % 2;
}

struct writer_arg {
	uint32_t shard;
	uint64_t seed;
};

static void *writer(void *p)
{
	struct writer_arg *a = p;
	struct store_shard *sh = store_shard(s, a->shard);
	uint64_t r = a->seed;
	char name[16], wbuf[16];
	struct store_kv kv[2];
	struct store_val v;

	/*
	 * At least WRITER_OPS, and on until the readers had some rounds (a
	 * loaded machine may not schedule them at first), bounded at 20x.
	 */
	for (uint32_t op = 0;
	     op < WRITER_OPS || (atomic_load(&reads) <= 10 && op < 20 * WRITER_OPS); op++) {
		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		uint32_t svc = (uint32_t)(r % SERVICES);

		svc_name(name, svc);
		if (store_shard_of(s, &(struct store_svc_key){ .service = S(name) }) != a->shard)
			continue;
		uint32_t idx = (uint32_t)((r >> 8) % (STABLE + CHURN));
		struct store_key k = key_n(name, idx);

		make_val(&v, kv, wbuf, (uint32_t)(r >> 20) % 10000);
		if (idx < STABLE || (r >> 40) % 2) {
			store_upsert(sh, &k, &v);
		} else {
			store_delete(sh, &k);
		}
		if (op % 64 == 0)
			store_poll(sh);
	}
	store_poll(sh);
	atomic_fetch_add(&writers_done, 1);
	return NULL;
}

static bool view_consistent(const struct store_view *v)
{
	char wbuf[16];

	if (store_meta_count(v->meta) < 1)
		return false;
	struct store_kv kv = store_meta_at(v->meta, store_meta_count(v->meta) == 2 ? 1 : 0);

	snprintf(wbuf, sizeof(wbuf), "%u", v->weight_milli);
	return str_is(kv.key, "w") && str_is(kv.val, wbuf) &&
	       store_meta_count(v->meta) == 1 + v->weight_milli % 2;
}

/* Records stay on the epoch's list for its whole life: static, not on the stack. */
static struct epoch_rec reader_recs[READERS];

static void *reader(void *p)
{
	struct epoch_rec *rec = &reader_recs[(uintptr_t)p - 1];
	static __thread struct store_view out[STABLE + CHURN + 8];
	char name[16];
	uint64_t r = (uintptr_t)p * 7919 + 1;

	epoch_register(store_epoch(s), rec);
	while (atomic_load(&writers_done) < (int)store_shards(s)) {
		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		uint32_t svc = (uint32_t)(r % SERVICES);

		svc_name(name, svc);
		epoch_enter(rec);
		struct store_svc_key sk = { .service = S(name) };
		int n = store_list(s, &sk, NULL, out, STABLE + CHURN + 8, NULL);
		bool stable_seen[STABLE] = { 0 };

		for (int i = 0; i < n; i++) {
			if (!view_consistent(&out[i]))
				atomic_fetch_add(&torn, 1);
			if (out[i].flags & STORE_F_DELETED)
				atomic_fetch_add(&listed_deleted, 1);
			uint32_t idx = ((uint32_t)out[i].addr.ip[14] << 8) | out[i].addr.ip[15];

			if (idx < STABLE)
				stable_seen[idx] = true;
		}
		/* The stable set is only complete once each was registered. */
		for (uint32_t i = 0; i < STABLE && n > 0; i++) {
			struct store_key k = key_n(name, i);
			struct store_view v;

			if (!stable_seen[i] && store_get(s, &k, &v) == 0)
				atomic_fetch_add(&missing, 1);
		}
		struct store_key k = key_n(name, (uint32_t)((r >> 9) % (STABLE + CHURN)));
		struct store_view v;

		if (store_get(s, &k, &v) == 0 && !view_consistent(&v))
			atomic_fetch_add(&torn, 1);
		/* Scan one slot in small chunks. */
		struct store_cursor c;

		store_cursor_init(&c, addr_slot(&k.addr));
		while (store_slot_scan(s, &c, out, 3) > 0)
			if (!view_consistent(&out[0]) && str_is(out[0].service, name))
				atomic_fetch_add(&torn, 1);
		epoch_exit(rec);
		atomic_fetch_add(&reads, 1);
	}
	epoch_unregister(rec);
	return NULL;
}

int main(void)
{
	struct store_config cfg;
	pthread_t w[2], rd[READERS];
	struct writer_arg wa[2] = { { 0, 0x9e3779b97f4a7c15ULL }, { 1, 0xbf58476d1ce4e5b9ULL } };
	char name[16], wbuf[16];
	struct store_kv kv[2];
	struct store_val v;

	store_config_default(&cfg);
	cfg.shards = 2;
	CHECK(store_create(&cfg, &s) == 0, "store_create");
	/* The stable set exists before readers start. */
	for (uint32_t svc = 0; svc < SERVICES; svc++) {
		svc_name(name, svc);
		for (uint32_t i = 0; i < STABLE; i++) {
			struct store_key k = key_n(name, i);

			make_val(&v, kv, wbuf, i);
			CHECK(up(s, &k, &v) == STORE_CREATED, "register stable %u", i);
		}
	}
	for (int i = 0; i < READERS; i++)
		pthread_create(&rd[i], NULL, reader, (void *)(uintptr_t)(i + 1));
	for (int i = 0; i < 2; i++)
		pthread_create(&w[i], NULL, writer, &wa[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(w[i], NULL);
	for (int i = 0; i < READERS; i++)
		pthread_join(rd[i], NULL);

	CHECK(atomic_load(&torn) == 0, "torn reads: %lu", atomic_load(&torn));
	CHECK(atomic_load(&missing) == 0, "stable instances missing from a list: %lu",
	      atomic_load(&missing));
	CHECK(atomic_load(&listed_deleted) == 0, "deleted instances listed: %lu",
	      atomic_load(&listed_deleted));
	CHECK(atomic_load(&reads) > 10, "readers ran only %lu rounds", atomic_load(&reads));
	for (uint32_t i = 0; i < store_shards(s); i++)
		store_poll(store_shard(s, i));
	store_destroy(s);
	printf("store_stress: ok (%lu reader rounds)\n", atomic_load(&reads));
	return 0;
}
