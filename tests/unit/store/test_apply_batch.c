/*
 * store_apply_batch against store_apply: the same records, one store fed
 * one by one, the other in batches, must give the same result for every
 * record and end in the same state (counters, slot checksums, every
 * key's version). The records mix new and repeated keys, older and newer
 * versions, deletes, expiry records, refused ones (bad address, bad
 * weight, another shard's service) and new services inside a batch, over
 * enough keys that the instance table grows in the middle of a batch.
 */
#include "helpers.h"

#define RECORDS  6000
#define KEYS     1500
#define SERVICES 37

struct side {
	struct store *s;
	struct fake_clock fc;
	struct epoch_rec rd;
};

static char names[SERVICES][16];

static void side_open(struct side *d)
{
	struct store_config c;

	store_config_default(&c);
	c.shards = 2;
	c.node_id = 1;
	fake_clock_install(&c, &d->fc);
	cr_assert_eq(store_create(&c, &d->s), 0);
	epoch_register(store_epoch(d->s), &d->rd);
}

static void side_close(struct side *d)
{
	epoch_unregister(&d->rd);
	store_destroy(d->s);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t next_u32(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

/* A record of the sequence: keys repeat, versions go both ways. */
static struct store_record make(void)
{
	struct store_record r;
	uint32_t k = next_u32() % KEYS, roll = next_u32() % 100;

	memset(&r, 0, sizeof(r));
	r.key = key_n(names[k % SERVICES], k);
	store_val_default(&r.val);
	r.val.weight_milli = 1000 + next_u32() % 5000;
	/* In no order: a key's later records are as often older (stale) as newer. */
	r.version = ((uint64_t)1700000000000LL << 16) + next_u32() % (2 * RECORDS);
	r.node = (uint16_t)(2 + next_u32() % 2);
	if (roll < 10)
		r.deleted = true;
	else if (roll < 13) {
		r.expired = true; /* an expiry record: marked unhealthy */
		r.val.healthy = false;
	} else if (roll < 15)
		r.key.addr.port = 0; /* -ERR_ADDR */
	else if (roll < 16)
		r.val.weight_milli = 20000000; /* -ERR_WEIGHT */
	return r;
}

static void compare(struct side *a, struct side *b, const struct store_record *r, uint32_t n)
{
	struct store_stats sa, sb;

	store_stats(a->s, &sa);
	store_stats(b->s, &sb);
	cr_assert_eq(memcmp(&sa, &sb, sizeof(sa)), 0, "the same counters");
	cr_assert_gt(sa.applies, 1000, "a real mix: %llu applied", (unsigned long long)sa.applies);
	cr_assert_gt(sa.applies_stale, 10);
	cr_assert_gt(sa.rejected, 10);
	cr_assert_gt(sa.tombstones, 0);
	for (uint32_t slot = 0; slot < STORE_SLOTS; slot++) {
		uint32_t ca, cb;

		cr_assert_eq(store_slot_checksum(a->s, slot, &ca),
		             store_slot_checksum(b->s, slot, &cb), "slot %u", slot);
		cr_assert_eq(ca, cb, "slot %u", slot);
	}
	epoch_enter(&a->rd);
	epoch_enter(&b->rd);
	for (uint32_t i = 0; i < n; i++) {
		struct store_view va, vb;
		int ra = store_get(a->s, &r[i].key, &va), rb = store_get(b->s, &r[i].key, &vb);

		cr_assert_eq(ra, rb, "record %u", i);
		if (ra == 0) {
			cr_assert_eq(va.version, vb.version, "record %u", i);
			cr_assert_eq(va.node, vb.node, "record %u", i);
			cr_assert_eq(va.weight_milli, vb.weight_milli, "record %u", i);
			cr_assert_eq(va.flags, vb.flags, "record %u", i);
		}
	}
	epoch_exit(&b->rd);
	epoch_exit(&a->rd);
}

static void run(bool repair)
{
	static struct store_record r[RECORDS];
	static int rc_one[RECORDS], rc_batch[RECORDS];
	struct side a, b;
	struct store_shard *sha, *shb;
	uint32_t wrong = 0;

	for (int i = 0; i < SERVICES; i++)
		snprintf(names[i], sizeof(names[i]), "svc-%d", i);
	for (uint32_t i = 0; i < RECORDS; i++)
		r[i] = make();
	side_open(&a);
	side_open(&b);
	/* Everything goes to shard 0: the other shard's services are refused (wrong shard). */
	sha = store_shard(a.s, 0);
	shb = store_shard(b.s, 0);
	for (uint32_t i = 0; i < RECORDS; i++)
		rc_one[i] = repair ? store_repair_apply(sha, &r[i]) : store_apply(sha, &r[i]);
	for (uint32_t i = 0; i < RECORDS;) {
		uint32_t n = 1 + next_u32() % STORE_APPLY_BATCH_MAX;

		if (n > RECORDS - i)
			n = RECORDS - i;
		store_apply_batch(shb, r + i, n, repair ? STORE_FROM_OWNER : STORE_FROM_SYNC,
		                  rc_batch + i);
		i += n;
	}
	for (uint32_t i = 0; i < RECORDS; i++) {
		cr_assert_eq(rc_batch[i], rc_one[i], "record %u: %d in a batch, %d alone", i,
		             rc_batch[i], rc_one[i]);
		wrong += rc_one[i] == -ERR_WRONG_SHARD;
	}
	cr_assert_gt(wrong, 100, "records of the other shard were in the batches");
	compare(&a, &b, r, RECORDS);
	side_close(&a);
	side_close(&b);
}

Test(apply_batch, same_results_as_one_by_one)
{
	run(false);
}

Test(apply_batch, same_results_as_one_by_one_for_repairs)
{
	run(true);
}
