/*
 * Slots: the incremental per-slot checksums always equal a recomputation
 * from scratch, agree between stores holding the same records whatever the
 * order they came in, and slot scans see every live instance.
 */
#include "helpers.h"

#include <stdlib.h>

static void setup(void)
{
	fixture_default(3, 1, false);
}

TestSuite(slots, .init = setup, .fini = fixture_close);

static uint64_t rng = 88172645463325252ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

#define KEYS 3000

static struct store_key random_key(void)
{
	static char names[8][8];
	uint32_t n = (uint32_t)(next_rand() % KEYS);

	snprintf(names[n % 8], sizeof(names[0]), "p%u", n % 8);
	return key_n(names[n % 8], n);
}

/* Recomputes a slot from its scan and compares with the incremental figures. */
static void check_slot(struct store *st, struct epoch_rec *r, uint32_t slot)
{
	struct store_view out[7];
	struct store_cursor c;
	uint64_t sum = 0;
	uint32_t count = 0, n, want_count;
	uint64_t want;

	epoch_enter(r);
	store_cursor_init(&c, slot);
	while ((n = store_slot_scan(st, &c, out, 7)) > 0) {
		for (uint32_t i = 0; i < n; i++) {
			cr_assert_eq(out[i].slot, slot);
			sum += store_view_hash(&out[i]);
			count++;
		}
	}
	cr_assert(c.done);
	want = store_slot_checksum(st, slot, &want_count);
	epoch_exit(r);
	cr_assert_eq(count, want_count, "slot %u: %u scanned, count says %u", slot, count,
	             want_count);
	cr_assert_eq(sum, want, "slot %u: recomputed checksum differs", slot);
}

Test(slots, property_incremental_equals_recomputed, .timeout = 300)
{
	struct store_kv meta[2] = { { S("zone"), S("a") }, { S("v"), S("1") } };
	static const char *zones[] = { "a", "b", "c" };
	uint64_t total = 0, total_count = 0;

	for (uint32_t op = 0; op < 100000; op++) {
		struct store_key k = random_key();
		struct store_shard *sh = shard_for(s, &k);
		uint64_t r = next_rand();
		struct store_val v;

		store_val_default(&v);
		v.weight_milli = (uint32_t)(r % 5000);
		v.healthy = (r >> 20) & 1;
		meta[0].val = S(zones[(r >> 24) % 3]);
		v.meta = meta;
		v.meta_n = (uint32_t)((r >> 28) % 3);
		switch ((r >> 32) % 10) {
		case 0:
		case 1:
		case 2:
		case 3:
			cr_assert_geq(store_upsert(sh, &k, &v), 0);
			break;
		case 4:
		case 5:
			(void)store_delete(sh, &k);
			break;
		case 6:
			(void)store_touch(sh, &k);
			break;
		default: {
			/* A peer's record: versions around ours, some deletes. */
			struct store_record rec = { .key = k, .val = v };

			rec.version = ((uint64_t)fc.wall_ms << 16) + (r % 2000) - 1000;
			rec.node = (uint16_t)(2 + (r >> 40) % 3);
			rec.deleted = ((r >> 44) % 4) == 0;
			int rc = store_apply(sh, &rec);

			cr_assert(rc >= 0 || rc == -ERR_STALE, "apply: %s", err_str(rc));
			break;
		}
		}
		if (op % 1000 == 0) {
			fake_advance(&fc, 1000);
			expire_all(s);
		}
	}
	roaring_bitmap_t *nonempty = roaring_bitmap_create();

	epoch_enter(&rd);
	store_slots_nonempty(s, nonempty);
	epoch_exit(&rd);
	for (uint32_t slot = 0; slot < STORE_SLOTS; slot++) {
		uint32_t c;

		check_slot(s, &rd, slot);
		total += store_slot_checksum(s, slot, &c);
		total_count += c;
		cr_assert_eq(roaring_bitmap_contains(nonempty, slot), c > 0);
	}
	uint64_t range_count;

	cr_assert_eq(store_range_checksum(s, 0, STORE_SLOTS, &range_count), total);
	cr_assert_eq(range_count, total_count);
	struct store_stats st;

	store_stats(s, &st);
	cr_assert_eq(st.instances, total_count);
	cr_assert_gt(total_count, 100, "the mix leaves a population (%lu)",
	             (unsigned long)total_count);
	roaring_bitmap_free(nonempty);
}

/* Copying every live record into a second store in reverse order gives equal checksums. */
Test(slots, same_records_any_order_same_checksums, .timeout = 120)
{
	struct store_config c2 = cfg;
	struct store *t;
	struct epoch_rec rt;
	struct store_view out[64];
	static struct store_record recs[KEYS];
	static struct store_kv kvs[KEYS][2];
	uint32_t nrec = 0;

	for (uint32_t i = 0; i < 5000; i++) {
		struct store_key k = random_key();
		struct store_val v;
		struct store_kv meta[] = { { S("a"), S("x") }, { S("b"), S("y") } };

		store_val_default(&v);
		v.weight_milli = i;
		v.meta = meta;
		v.meta_n = i % 3;
		cr_assert_geq(up(s, &k, &v), 0);
		if (i % 5 == 0)
			(void)store_delete(shard_for(s, &k), &k);
	}
	c2.shards = 2; /* a different shard count must not matter */
	c2.node_id = 2;
	cr_assert_eq(store_create(&c2, &t), 0);
	epoch_register(store_epoch(t), &rt);

	epoch_enter(&rd);
	for (uint32_t slot = 0; slot < STORE_SLOTS; slot++) {
		struct store_cursor c;
		uint32_t n;

		store_cursor_init(&c, slot);
		while ((n = store_slot_scan(s, &c, out, 64)) > 0) {
			for (uint32_t i = 0; i < n; i++) {
				struct store_record *r = &recs[nrec];

				cr_assert_lt(nrec, KEYS);
				r->key.svc = (struct store_svc_key){ out[i].ns, out[i].group,
					                             out[i].service };
				r->key.cluster = out[i].cluster;
				r->key.addr = out[i].addr;
				r->val.weight_milli = out[i].weight_milli;
				r->val.healthy = out[i].flags & STORE_F_HEALTHY;
				r->val.enabled = out[i].flags & STORE_F_ENABLED;
				r->val.ephemeral = out[i].flags & STORE_F_EPHEMERAL;
				r->val.timing = out[i].timing;
				r->val.meta_n = store_meta_count(out[i].meta);
				for (uint32_t j = 0; j < r->val.meta_n; j++)
					kvs[nrec][j] = store_meta_at(out[i].meta, j);
				r->val.meta = kvs[nrec];
				r->version = out[i].version;
				r->node = out[i].node;
				nrec++;
			}
		}
	}
	/* The views stay valid: s is not written while we apply into t. */
	for (uint32_t i = nrec; i-- > 0;) {
		struct store_shard *sh = store_shard(t, store_shard_of(t, &recs[i].key.svc));

		cr_assert_eq(store_apply(sh, &recs[i]), STORE_CREATED);
	}
	epoch_exit(&rd);
	for (uint32_t slot = 0; slot < STORE_SLOTS; slot++) {
		uint32_t ca, cb;

		cr_assert_eq(store_slot_checksum(s, slot, &ca), store_slot_checksum(t, slot, &cb),
		             "slot %u differs", slot);
		cr_assert_eq(ca, cb);
	}
	/* One change on one side shows in exactly that slot. */
	struct store_val v;

	store_val_default(&v);
	v.weight_milli = 424242;
	recs[0].val = v;
	recs[0].version++;
	cr_assert_eq(store_apply(store_shard(t, store_shard_of(t, &recs[0].key.svc)), &recs[0]),
	             STORE_CHANGED);
	uint32_t differ = 0, slot0 = addr_slot(&recs[0].key.addr);

	for (uint32_t slot = 0; slot < STORE_SLOTS; slot++)
		if (store_slot_checksum(s, slot, NULL) != store_slot_checksum(t, slot, NULL)) {
			differ++;
			cr_assert_eq(slot, slot0);
		}
	cr_assert_eq(differ, 1);
	epoch_unregister(&rt);
	store_destroy(t);
}

/* A scan in small chunks, with table rebuilds between chunks, skips no live instance. */
Test(slots, scan_survives_rebuilds_between_chunks)
{
	struct store_view out[2];
	struct store_key k;
	uint32_t slot, placed = 0, nseen = 0;
	static uint64_t seen[4000];
	struct store_cursor c;
	uint32_t n, extra = 100000;

	/* Put 400 instances in one slot: vary ports until the slot matches. */
	k = key_n("scan", 1);
	slot = addr_slot(&k.addr);
	for (uint32_t port = 1; placed < 400 && port < 65535; port++) {
		k.addr.port = (uint16_t)port;
		if (addr_slot(&k.addr) != slot)
			continue;
		char name[16];

		snprintf(name, sizeof(name), "scan%u", placed % 5);
		k.svc.service = S(name);
		cr_assert_eq(up_default(s, &k), STORE_CREATED);
		placed++;
	}
	for (uint32_t ip = 2; placed < 400; ip++) {
		k = key_n("scan", ip);
		if (addr_slot(&k.addr) == slot) {
			cr_assert_eq(up_default(s, &k), STORE_CREATED);
			placed++;
		}
	}
	store_cursor_init(&c, slot);
	uint32_t chunks = 0, total = 0;

	while (!c.done) {
		epoch_enter(&rd);
		n = store_slot_scan(s, &c, out, 2);
		for (uint32_t i = 0; i < n; i++) {
			cr_assert_eq(out[i].slot, slot);
			/* The record hash identifies an instance (versions are unique). */
			cr_assert_lt(nseen, 4000);
			seen[nseen++] = store_view_hash(&out[i]);
		}
		epoch_exit(&rd);
		total += n;
		if (++chunks % 20 == 0) {
			/* Grow the tables under the cursor. */
			for (uint32_t i = 0; i < 2000; i++) {
				struct store_key x = key_n("filler", extra++);

				cr_assert_geq(up_default(s, &x), 0);
			}
			for (uint32_t i = 0; i < store_shards(s); i++)
				store_poll(store_shard(s, i));
		}
	}
	cr_assert_geq(total, 400, "scanned %u", total);
	/* Every instance of the slot came at least once: compare with a fresh full scan. */
	uint32_t fresh = 0;

	store_cursor_init(&c, slot);
	epoch_enter(&rd);
	uint32_t all_seen = 1;

	while ((n = store_slot_scan(s, &c, out, 2)) > 0) {
		for (uint32_t i = 0; i < n; i++) {
			if (out[i].service.len >= 4 && memcmp(out[i].service.p, "scan", 4) == 0) {
				fresh++;
				uint64_t h = store_view_hash(&out[i]);
				uint32_t j = 0;

				while (j < nseen && seen[j] != h)
					j++;
				all_seen &= j < nseen;
			}
		}
	}
	epoch_exit(&rd);
	cr_assert_eq(fresh, 400);
	cr_assert(all_seen, "an instance was skipped by the chunked scan");
}
