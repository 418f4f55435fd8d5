/* Shared helpers for the store tests: a fake clock and key builders. */
#ifndef DISTRO_TESTS_STORE_HELPERS_H
#define DISTRO_TESTS_STORE_HELPERS_H

#include "core/err.h"
#include "store/store.h"

#ifndef DISTRO_NO_CRITERION
#include <criterion/criterion.h>
#endif
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct fake_clock {
	int64_t mono_ms;
	int64_t wall_ms;
};

static inline int64_t fake_mono(void *ctx)
{
	return ((struct fake_clock *)ctx)->mono_ms;
}

static inline int64_t fake_wall(void *ctx)
{
	return ((struct fake_clock *)ctx)->wall_ms;
}

static inline void fake_clock_install(struct store_config *c, struct fake_clock *fc)
{
	fc->mono_ms = 1000000;
	fc->wall_ms = 1700000000000LL;
	c->clock = (struct clock){ fake_mono, fake_wall, fc };
}

static inline void fake_advance(struct fake_clock *fc, int64_t ms)
{
	fc->mono_ms += ms;
	fc->wall_ms += ms;
}

static inline struct store_str S(const char *s) {
	return (struct store_str){ s, s ? (uint32_t)strlen(s) : 0 };
}

/* Key of service `svc`, cluster default, 10.a.b.c:port from n. */
static inline struct store_key
key_n(const char *svc, uint32_t n)
{
	struct store_key k;

	memset(&k, 0, sizeof(k));
	k.svc.service = S(svc);
	k.addr.ip[10] = 0xff;
	k.addr.ip[11] = 0xff;
	k.addr.ip[12] = 10;
	k.addr.ip[13] = (uint8_t)(n >> 16);
	k.addr.ip[14] = (uint8_t)(n >> 8);
	k.addr.ip[15] = (uint8_t)n;
	k.addr.port = (uint16_t)(8000 + (n % 1000) + 1);
	return k;
}

/* The shard that owns a key's service. */
static inline struct store_shard *shard_for(struct store *s, const struct store_key *k)
{
	return store_shard(s, store_shard_of(s, &k->svc));
}

static inline int up(struct store *s, const struct store_key *k, const struct store_val *v)
{
	return store_upsert(shard_for(s, k), k, v);
}

static inline int up_default(struct store *s, const struct store_key *k)
{
	struct store_val v;

	store_val_default(&v);
	return up(s, k, &v);
}

static inline bool str_is(struct store_str a, const char *b)
{
	return a.len == strlen(b) && memcmp(a.p, b, a.len) == 0;
}

#ifndef DISTRO_NO_CRITERION
/*
 * The fixture most store tests share: a store on a fake clock and a reader
 * record (static: records outlive their epoch), entered when `enter`.
 */
static struct store *s;
static struct store_config cfg;
static struct fake_clock fc;
static struct epoch_rec rd;
static bool rd_entered;

/* Opens the store with cfg as the caller prepared it (after store_config_default). */
static inline void fixture_open(bool enter)
{
	fake_clock_install(&cfg, &fc);
	cr_assert_eq(store_create(&cfg, &s), 0);
	epoch_register(store_epoch(s), &rd);
	rd_entered = enter;
	if (enter)
		epoch_enter(&rd);
}

static inline void fixture_close(void)
{
	if (rd_entered)
		epoch_exit(&rd);
	epoch_unregister(&rd);
	store_destroy(s);
}

/* The common case: defaults with this many shards and this node id. */
static inline void fixture_default(uint32_t shards, uint16_t node, bool enter)
{
	store_config_default(&cfg);
	cfg.shards = shards;
	cfg.node_id = node;
	fixture_open(enter);
}
#endif

/* Runs expiry and epoch reclamation on every shard. */
static inline uint32_t expire_all(struct store *s)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < store_shards(s); i++) {
		n += store_expire(store_shard(s, i), UINT32_MAX);
		store_poll(store_shard(s, i));
	}
	return n;
}

#endif
