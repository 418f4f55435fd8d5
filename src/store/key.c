/*
 * key.c - a client's key made into the store's: names checked, defaults
 * applied, and the hashes that place it.
 *
 * A key (types.h) names a service by namespace, group and name, a cluster
 * and an address; absent names take the defaults ("public",
 * "DEFAULT_GROUP", "DEFAULT"). Resolving checks each given name (length,
 * control characters, "@@", and ',' in a cluster) and computes:
 *
 *   - the service hash, XXH3 of the three names chained by seeds: the same
 *     on every node (it picks the shard, and goes into the slot checksums);
 *   - the slot, from the address (core/addr.h), also the same everywhere;
 *   - the instance table hash, node-local: the slot in its top bits (so a
 *     slot is a region of the table, store.c) and two multiplies of the
 *     service, cluster and slot hashes below;
 *   - record_hash, the hash of a record's replicated state that the slot
 *     checksums sum: any change of a replicated field changes it.
 *
 * Pure functions of their arguments and the store's configuration: any
 * thread, no state, no allocation.
 */
#include "store/store_internal.h"

#include "core/err.h"
#include "core/hash.h"

#include <string.h>

#define HASH_SEED 0x64697374726fULL

uint64_t svc_hash_of(const char *ns, uint32_t ns_len, const char *group, uint32_t group_len,
                     const char *name, uint32_t name_len)
{
	/* Chained seeds keep the three names apart: ("a","bc") != ("ab","c"). */
	uint64_t h = XXH3_64bits_withSeed(ns, ns_len, HASH_SEED ^ ns_len);

	h = XXH3_64bits_withSeed(group, group_len, h ^ group_len);
	return XXH3_64bits_withSeed(name, name_len, h ^ name_len);
}

/* A 64x64->128 multiply folded: a strong, cheap mixer of two words. */
static inline uint64_t mum(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

uint64_t inst_table_hash(uint64_t svc_hash, uint64_t cluster_hash, uint64_t slot_hash)
{
	/* Node-local (table placement only), so it need not be XXH3: two multiplies. */
	uint64_t h = mum(svc_hash ^ 0x9e3779b97f4a7c15ULL, cluster_hash ^ 0xbf58476d1ce4e5b9ULL);

	h = mum(h ^ slot_hash, 0x94d049bb133111ebULL);
	return ((slot_hash & (STORE_SLOTS - 1)) << (64 - STORE_SLOT_BITS)) | (h >> STORE_SLOT_BITS);
}

uint64_t record_hash(uint64_t svc_hash, uint64_t cluster_hash, const uint8_t ip[16], uint16_t port,
                     uint32_t weight_milli, uint8_t flags, const struct store_timing *t,
                     uint64_t meta_hash, uint64_t version, uint16_t node)
{
	struct __attribute__((packed)) {
		uint64_t svc, cluster, meta, version;
		uint8_t ip[16];
		uint32_t weight, interval, timeout, del;
		uint16_t port, node;
		uint8_t flags;
	} b;

	memset(&b, 0, sizeof(b));
	b.svc = svc_hash;
	b.cluster = cluster_hash;
	b.meta = meta_hash;
	b.version = version;
	memcpy(b.ip, ip, 16);
	b.weight = weight_milli;
	b.interval = t->interval_ms;
	b.timeout = t->timeout_ms;
	b.del = t->delete_ms;
	b.port = port;
	b.node = node;
	b.flags = flags & REPLICATED_FLAGS;
	return XXH3_64bits_withSeed(&b, sizeof(b), HASH_SEED);
}

/* ---- names ---- */

struct store_str name_or_default(struct store_str s, struct store_str def)
{
	return s.p == NULL ? def : s;
}

/* Byte classes for name checks: one table load per byte, one branch per name. */
enum { NC_CTRL = 1, NC_COMMA = 2, NC_AT = 4 };

static const uint8_t name_class[256] = {
	[0 ... 0x1f] = NC_CTRL,
	[0x7f] = NC_CTRL,
	[','] = NC_COMMA,
	['@'] = NC_AT,
};

int name_check(const struct store *s, struct store_str n, bool cluster)
{
	uint8_t seen = 0;

	if (n.len == 0)
		return -ERR_NAME_EMPTY;
	if (n.len > s->cfg.limits.name_bytes_max)
		return -ERR_NAME_LONG;
	for (uint32_t i = 0; i < n.len; i++)
		seen |= name_class[(unsigned char)n.p[i]];
	if (seen == 0)
		return 0;
	if ((seen & NC_CTRL) || (cluster && (seen & NC_COMMA)))
		return -ERR_NAME_CHARS;
	if ((seen & NC_AT) && memmem(n.p, n.len, "@@", 2) != NULL)
		return -ERR_NAME_CHARS;
	return 0;
}

/* A given name is checked; an absent one takes its default, which needs no check. */
static int name_resolve(const struct store *s, struct store_str given, struct store_str def,
                        bool cluster, struct store_str *out)
{
	*out = name_or_default(given, def);
	return given.p == NULL ? 0 : name_check(s, given, cluster);
}

int svc_key_resolve(const struct store *s, const struct store_svc_key *k, struct rkey *rk)
{
	int rc;

	if (k->service.p == NULL)
		return -ERR_NAME_EMPTY;
	if ((rc = name_resolve(s, k->ns, s->def_ns, false, &rk->ns)) < 0 ||
	    (rc = name_resolve(s, k->group, s->def_group, false, &rk->group)) < 0 ||
	    (rc = name_check(s, k->service, false)) < 0)
		return rc;
	rk->service = k->service;
	rk->svc_hash = svc_hash_of(rk->ns.p, rk->ns.len, rk->group.p, rk->group.len, rk->service.p,
	                           rk->service.len);
	return 0;
}

int key_resolve(const struct store *s, const struct store_key *k, struct rkey *rk)
{
	int rc = svc_key_resolve(s, &k->svc, rk);

	if (rc < 0)
		return rc;
	if ((rc = name_resolve(s, k->cluster, s->def_cluster, true, &rk->cluster)) < 0)
		return rc;
	if ((rc = addr_check(&k->addr)) < 0)
		return rc;
	rk->addr = &k->addr;
	/* Most instances are in the default cluster: its hash is computed once. */
	rk->cluster_hash =
	        k->cluster.p ? intern_hash(rk->cluster.p, rk->cluster.len) : s->def_cluster_hash;
	rk->slot_hash = addr_slot_hash(k->addr.ip, k->addr.port);
	rk->slot = (uint16_t)(rk->slot_hash & (STORE_SLOTS - 1));
	rk->hash = inst_table_hash(rk->svc_hash, rk->cluster_hash, rk->slot_hash);
	return 0;
}

int store_service_key(const struct store *s, const struct store_svc_key *sk, struct store_key *out)
{
	struct rkey rk;
	int rc;

	if ((rc = svc_key_resolve(s, sk, &rk)) < 0)
		return rc;
	memset(out, 0, sizeof(*out));
	out->svc = *sk;
	out->cluster =
	        (struct store_str){ STORE_SERVICE_CLUSTER, sizeof(STORE_SERVICE_CLUSTER) - 1 };
	out->addr.ip[0] = 0x01; /* 100::/64, RFC 6666 */
	for (int i = 0; i < 8; i++)
		out->addr.ip[8 + i] = (uint8_t)(rk.svc_hash >> (56 - 8 * i));
	out->addr.port = 1;
	return 0;
}

uint32_t shard_of_hash(const struct store *s, uint64_t svc_hash)
{
	return (uint32_t)(((svc_hash & 0xffffffffu) * s->nshards) >> 32);
}

uint32_t store_shard_of(const struct store *s, const struct store_svc_key *k)
{
	struct rkey rk;

	if (svc_key_resolve(s, k, &rk) < 0)
		return 0;
	return shard_of_hash(s, rk.svc_hash);
}
