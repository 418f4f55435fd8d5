/*
 * libFuzzer target: arbitrary bytes drive the store's writer and reader
 * operations (names, addresses, metadata, versions and timings straight from
 * the input, so most are invalid), then the invariants are checked: every
 * slot touched has a checksum and count equal to a recomputation from a scan,
 * and the counters agree with the contents (lease entries never outlive
 * their instances). A crash, a sanitizer report or a
 * broken invariant (abort) is a finding. Each input starts from an empty
 * store (store_reset) at the same time.
 *
 * Input: a sequence of operations, each an op byte followed by its fields
 * (see next_* below); running out of bytes ends the run.
 */
#include "core/err.h"
#include "store/store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t next_u8(struct in *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

static uint16_t next_u16(struct in *in)
{
	return (uint16_t)(next_u8(in) | (next_u8(in) << 8));
}

/* A string: length byte (0xff = absent, bit 7 set = pick a common name). */
static struct store_str next_str(struct in *in)
{
	static const char *common[] = { "svc", "orders", "DEFAULT", "east", "g", "public" };
	uint8_t len = next_u8(in);
	struct store_str s;

	if (len == 0xff)
		return (struct store_str){ NULL, 0 };
	if (len & 0x80) {
		const char *c = common[(len & 0x7f) % 6];

		return (struct store_str){ c, (uint32_t)strlen(c) };
	}
	len &= 0x3f;
	if (len > in->n)
		len = (uint8_t)in->n;
	s = (struct store_str){ (const char *)in->p, len };
	in->p += len;
	in->n -= len;
	return s;
}

static void next_key(struct in *in, struct store_key *k)
{
	memset(k, 0, sizeof(*k));
	k->svc.ns = next_str(in);
	k->svc.group = next_str(in);
	k->svc.service = next_str(in);
	k->cluster = next_str(in);
	/* Mostly a few IPv4 addresses, so keys collide and slots fill. */
	uint8_t a = next_u8(in);

	if (a & 0x80) {
		for (int i = 0; i < 16; i++)
			k->addr.ip[i] = next_u8(in);
	} else {
		k->addr.ip[10] = k->addr.ip[11] = 0xff;
		k->addr.ip[12] = 10;
		k->addr.ip[15] = a & 7;
	}
	k->addr.port = (uint16_t)(next_u8(in) % 4);
}

static struct store_kv kvs[8];

static void next_val(struct in *in, struct store_val *v)
{
	uint8_t f = next_u8(in);

	store_val_default(v);
	v->weight_milli = (f & 1) ? next_u16(in) * 200u : 1000;
	v->healthy = f & 2;
	v->enabled = f & 4;
	v->ephemeral = !(f & 8);
	v->meta_n = (f >> 4) % 4;
	for (uint32_t i = 0; i < v->meta_n; i++) {
		kvs[i].key = next_str(in);
		kvs[i].val = next_str(in);
	}
	v->meta = kvs;
	if (next_u8(in) & 1)
		v->timing = (struct store_timing){ next_u8(in), next_u16(in), next_u16(in) };
}

/*
 * The slots an input's keys fall in, each once: every instance the store
 * holds is in one of them, so checking these is checking every slot.
 */
static uint32_t touched[STORE_SLOTS], ntouched;
static uint64_t touched_bits[STORE_SLOTS / 64];

static void touch(uint32_t slot)
{
	if (touched_bits[slot / 64] & (1ull << (slot % 64)))
		return;
	touched_bits[slot / 64] |= 1ull << (slot % 64);
	touched[ntouched++] = slot;
}

static void check(struct store *s, struct epoch_rec *rd)
{
	struct store_view out[5];
	struct store_stats st;
	uint64_t live = 0;

	epoch_enter(rd);
	for (uint32_t i = 0; i < ntouched; i++) {
		struct store_cursor c;
		uint64_t sum = 0, range_sum, range_count;
		uint32_t count = 0, got, want_count;

		store_cursor_init(&c, touched[i]);
		while ((got = store_slot_scan(s, &c, out, 5)) > 0) {
			for (uint32_t j = 0; j < got; j++)
				sum += store_view_hash(&out[j]);
			count += got;
		}
		range_sum = store_range_checksum(s, touched[i], touched[i] + 1, &range_count);
		if (store_slot_checksum(s, touched[i], &want_count) != sum || count != want_count ||
		    range_sum != sum || range_count != count) {
			fprintf(stderr, "slot %u: checksum/count differ from a recomputation\n",
			        touched[i]);
			abort();
		}
		live += count;
	}
	epoch_exit(rd);
	store_stats(s, &st);
	/* A lease entry lives only as long as its live instance (lease.c). */
	if (st.leases > st.instances) {
		fprintf(stderr, "%lu instances with leases but %lu instances\n",
		        (unsigned long)st.leases, (unsigned long)st.instances);
		abort();
	}
	/* Equal only if no slot outside the touched ones counts an instance. */
	if (st.instances != live) {
		fprintf(stderr, "instances %lu but the touched slots count %lu\n",
		        (unsigned long)st.instances, (unsigned long)live);
		abort();
	}
}

static int64_t now_mono = 1000000, now_wall = 1700000000000LL;

static int64_t mono(void *ctx)
{
	(void)ctx;
	return now_mono;
}

static int64_t wall(void *ctx)
{
	(void)ctx;
	return now_wall;
}

static struct store *s;
static struct epoch_rec rd; /* static: records outlive their epoch (epoch.h) */

/*
 * One store for the whole run, emptied by store_reset after each input: a
 * new store costs more than most inputs (its slot arrays alone are 192 KiB
 * a shard), and a reset one is a new one (tests/unit/store/test_reset.c).
 * The reset runs at the end of the input, so each input frees what it
 * allocated and libFuzzer's leak check keeps working.
 */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct store_config cfg;

	(void)argc, (void)argv;
	store_config_default(&cfg);
	cfg.shards = 2;
	cfg.limits.instances_max = 64;
	cfg.limits.service_instances_max = 16;
	cfg.limits.services_max = 8;
	cfg.limits.clusters_max = 4;
	cfg.limits.timings_max = 4;
	cfg.limits.name_bytes_max = 32;
	cfg.limits.meta_bytes_max = 64;
	cfg.limits.meta_pairs_max = 3;
	cfg.limits.meta_key_bytes_max = 16;
	cfg.tombstone_ms = 1000;
	cfg.clock = (struct clock){ mono, wall, NULL };
	if (store_create(&cfg, &s) < 0)
		abort();
	epoch_register(store_epoch(s), &rd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	struct store_view out[8];

	/* Every input starts at the same time, as from a new store. */
	now_mono = 1000000;
	now_wall = 1700000000000LL;
	ntouched = 0;
	while (in.n > 0) {
		uint8_t op = next_u8(&in);
		struct store_key k;
		struct store_val v;
		struct store_shard *sh;

		next_key(&in, &k);
		sh = store_shard(s, store_shard_of(s, &k.svc));
		touch(addr_slot(&k.addr));
		switch (op % 10) {
		case 0:
		case 1:
			next_val(&in, &v);
			(void)store_upsert(sh, &k, &v);
			break;
		case 2:
			(void)store_delete(sh, &k);
			break;
		case 3:
			(void)store_touch(sh, &k);
			break;
		case 4: {
			struct store_record r = { .key = k };

			next_val(&in, &r.val);
			r.version = ((uint64_t)now_wall << 16) + next_u16(&in) - 32768;
			r.node = next_u8(&in);
			r.deleted = next_u8(&in) & 1;
			(void)store_apply(sh, &r);
			break;
		}
		case 5:
			now_mono += next_u16(&in);
			now_wall += 7;
			for (uint32_t i = 0; i < store_shards(s); i++) {
				store_expire(store_shard(s, i), next_u8(&in));
				store_poll(store_shard(s, i));
			}
			break;
		case 6: {
			struct store_str cl = next_str(&in);
			struct store_filter f = { &cl, cl.p ? 1 : 0, next_u8(&in) & 1, true };

			epoch_enter(&rd);
			(void)store_get(s, &k, &out[0]);
			(void)store_list(s, &k.svc, &f, out, 8, NULL);
			epoch_exit(&rd);
			break;
		}
		case 7:
			(void)store_feed_drain(sh, out, next_u8(&in) % 8, NULL);
			break;
		case 8: /* a lease: a few holders, so they collide, renew and displace */
			(void)store_hold(sh, &k, next_u8(&in) % 12, next_u16(&in));
			break;
		case 9:
			(void)store_release(sh, &k, next_u8(&in) % 12);
			break;
		}
	}
	check(s, &rd);
	for (uint32_t i = 0; i < ntouched; i++)
		touched_bits[touched[i] / 64] = 0;
	if (store_reset(s) < 0)
		abort();
	epoch_register(store_epoch(s), &rd); /* the reset forgot it */
	return 0;
}
