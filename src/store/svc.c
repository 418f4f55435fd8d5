/*
 * svc.c - a shard's services: the table of services, each service's list
 * of cluster names and its array of live instances.
 *
 * A service is the unit a list reads: its live instances are one array
 * (struct svc_arr) that a reader walks inside an epoch section without a
 * lock. The writer (the shard's thread) appends in place - the position
 * is written, then the count with release - and a removal writes NULL in
 * place, leaving a hole, so a reader sees each instance at most once and
 * never a torn entry. Growth, and compaction once more than half of the
 * positions are holes, build a new array, publish it with a release store
 * and retire the old one through the shard's epoch record: a reader still
 * on the old one sees an older, consistent list. The revision is bumped
 * after every change of the list (release), so a reader that sees a new
 * revision sees the list that goes with it.
 *
 * Cluster names are append-only per service (an instance names its
 * cluster by index, in one uint16_t), bounded by limits.clusters_max;
 * their array grows the same way.
 *
 * Lifetime: a service exists while a record (live or tombstone) refers to
 * it (svc->records). The last one gone, svc_maybe_release unlinks it and
 * retires its names, arrays and itself; creating it again later starts a
 * fresh revision from the shard's clock, so revisions never repeat.
 *
 * Memory: an array is sized to fill an allocation of a power of two bytes
 * (the allocator's size classes), with at least 1/8 of it free after a
 * rebuild, so a steady service does not rebuild on every other write.
 * Bounds: services_max per store (counted across shards, reserved before
 * the allocation), service_instances_max live instances per service
 * (store.c checks it), clusters_max names per service.
 *
 * Writer thread of the shard for everything but svc_find,
 * svc_cluster_find and svc_cluster_of, which are reader-safe.
 */
#include "store/store_internal.h"

#include "core/err.h"
#include "core/mem.h"

#include <assert.h>
#include <string.h>

static void free_plain(void *ctx, void *obj)
{
	(void)ctx;
	mem_free(obj);
}

struct svc_lookup {
	struct store_str ns, group, name;
};

static bool svc_eq(const void *obj, const void *key)
{
	const struct store_svc *s = obj;
	const struct svc_lookup *k = key;

	return s->name->len == k->name.len && s->group->len == k->group.len &&
	       s->ns->len == k->ns.len && memcmp(s->name->s, k->name.p, k->name.len) == 0 &&
	       memcmp(s->group->s, k->group.p, k->group.len) == 0 &&
	       memcmp(s->ns->s, k->ns.p, k->ns.len) == 0;
}

static uint64_t svc_rehash(const void *obj)
{
	return ((const struct store_svc *)obj)->hash;
}

struct store_svc *svc_find(const struct store_shard *sh, const struct rkey *rk)
{
	struct svc_lookup k = { rk->ns, rk->group, rk->service };

	return table_find(&sh->svcs, rk->svc_hash, svc_eq, &k);
}

int svc_get(struct store_shard *sh, const struct rkey *rk, struct store_svc **out)
{
	struct store *s = sh->store;
	struct store_svc *svc = svc_find(sh, rk);

	if (svc) {
		*out = svc;
		return 0;
	}
	if (__atomic_add_fetch(&s->services, 1, __ATOMIC_RELAXED) > s->cfg.limits.services_max) {
		__atomic_sub_fetch(&s->services, 1, __ATOMIC_RELAXED);
		return -ERR_LIMIT_SERVICES;
	}
	svc = mem_calloc(1, sizeof(*svc));
	if (svc == NULL) {
		__atomic_sub_fetch(&s->services, 1, __ATOMIC_RELAXED);
		return -ERR_NOMEM;
	}
	/* Revisions never repeat, even for a service deleted and created again. */
	svc->revision = hlc_next(sh);
	svc->hash = rk->svc_hash;
	svc->ns = intern_str(&sh->intern, rk->ns.p, rk->ns.len);
	svc->group = intern_str(&sh->intern, rk->group.p, rk->group.len);
	svc->name = intern_str(&sh->intern, rk->service.p, rk->service.len);
	if (!svc->ns || !svc->group || !svc->name ||
	    table_insert(&sh->svcs, &sh->rec, svc->hash, svc, svc_rehash) < 0) {
		intern_unref(&sh->intern, svc->ns);
		intern_unref(&sh->intern, svc->group);
		intern_unref(&sh->intern, svc->name);
		mem_free(svc);
		__atomic_sub_fetch(&s->services, 1, __ATOMIC_RELAXED);
		return -ERR_NOMEM;
	}
	STAT_INC(sh, services);
	*out = svc;
	return 0;
}

void svc_maybe_release(struct store_shard *sh, struct store_svc *svc)
{
	if (svc->records > 0)
		return;
	table_remove(&sh->svcs, svc->hash, svc);
	intern_unref(&sh->intern, svc->ns);
	intern_unref(&sh->intern, svc->group);
	intern_unref(&sh->intern, svc->name);
	if (svc->clusters) {
		for (uint32_t i = 0; i < svc->clusters->n; i++)
			intern_unref(&sh->intern, svc->clusters->names[i]);
		epoch_retire(&sh->rec, free_plain, NULL, svc->clusters);
	}
	if (svc->arr)
		epoch_retire(&sh->rec, free_plain, NULL, svc->arr);
	epoch_retire(&sh->rec, free_plain, NULL, svc);
	__atomic_sub_fetch(&sh->store->services, 1, __ATOMIC_RELAXED);
	STAT_ADD(sh, services, (uint64_t)-1);
}

int svc_cluster_find(const struct store_svc *svc, struct store_str name, uint64_t hash)
{
	const struct svc_clusters *c = LOAD_ACQUIRE(&svc->clusters);
	uint32_t n;

	if (c == NULL)
		return -1;
	n = LOAD_ACQUIRE(&c->n);
	for (uint32_t i = 0; i < n; i++) {
		const struct istr *s = LOAD_ACQUIRE(&c->names[i]);

		if (s->hash == hash && s->len == name.len && memcmp(s->s, name.p, name.len) == 0)
			return (int)i;
	}
	return -1;
}

int svc_cluster_get(struct store_shard *sh, struct store_svc *svc, const struct rkey *rk)
{
	struct svc_clusters *c = svc->clusters, *nc;
	int i = svc_cluster_find(svc, rk->cluster, rk->cluster_hash);
	const struct istr *name;

	if (i >= 0)
		return i;
	if (c && c->n >= sh->store->cfg.limits.clusters_max)
		return -ERR_LIMIT_CLUSTERS;
	name = intern_str(&sh->intern, rk->cluster.p, rk->cluster.len);
	if (name == NULL)
		return -ERR_NOMEM;
	if (c && c->n < c->cap) {
		STORE_RELEASE(&c->names[c->n], name);
		STORE_RELEASE(&c->n, c->n + 1);
		return (int)c->n - 1;
	}
	uint32_t cap = c ? c->cap * 2 : 2;

	nc = mem_alloc(sizeof(*nc) + sizeof(nc->names[0]) * cap);
	if (nc == NULL) {
		intern_unref(&sh->intern, name);
		return -ERR_NOMEM;
	}
	nc->cap = cap;
	nc->n = c ? c->n : 0;
	if (c)
		memcpy(nc->names, c->names, sizeof(c->names[0]) * c->n);
	nc->names[nc->n++] = name;
	STORE_RELEASE(&svc->clusters, nc);
	if (c)
		epoch_retire(&sh->rec, free_plain, NULL, c);
	return (int)nc->n - 1;
}

const struct istr *svc_cluster_of(const struct store_inst *in)
{
	return LOAD_ACQUIRE(&in->svc->clusters)->names[in->cluster];
}

/*
 * Room for `want` positions and some slack, in an allocation of a power of
 * two bytes: the allocator's size classes are powers of two (and three
 * quarters between them) at these sizes, so a power of two of pointers
 * plus the header (8 + 8 * 2^k) would be rounded up by a quarter: 2,056
 * bytes for 256 positions take 2,560.
 */
static uint32_t arr_cap_for(uint32_t want)
{
	size_t bytes = 64;
	uint32_t cap;

	for (;;) {
		cap = (uint32_t)((bytes - sizeof(struct svc_arr)) /
		                 sizeof(((struct svc_arr *)0)->v[0]));
		if (cap >= want && cap - want >= cap / 8)
			return cap;
		bytes *= 2;
	}
}

/* Rebuilds the array without holes, room for `extra` more. */
static int svc_arr_rebuild(struct store_shard *sh, struct store_svc *svc, uint32_t extra)
{
	struct svc_arr *old = svc->arr, *a;
	uint32_t cap = arr_cap_for(svc->live + extra);

	a = mem_alloc(sizeof(*a) + sizeof(a->v[0]) * cap);
	if (a == NULL)
		return -ERR_NOMEM;
	a->cap = cap;
	a->n = 0;
	if (old) {
		for (uint32_t i = 0; i < old->n; i++) {
			struct store_inst *in = old->v[i];

			if (in) {
				in->svc_pos = a->n;
				a->v[a->n++] = in;
			}
		}
	}
	svc->holes = 0;
	/* Publish first, retire after: a reader arriving later must not find the old one. */
	STORE_RELEASE(&svc->arr, a);
	if (old)
		epoch_retire(&sh->rec, free_plain, NULL, old);
	return 0;
}

/* A record of a reserved cluster (store.h): stored, never listed. */
static bool inst_reserved(const struct store_inst *in)
{
	return svc_cluster_of(in)->s[0] == '@';
}

int svc_arr_add(struct store_shard *sh, struct store_svc *svc, struct store_inst *in)
{
	struct svc_arr *a = svc->arr;

	if (a == NULL || a->n == a->cap) {
		int rc = svc_arr_rebuild(sh, svc, 1);

		if (rc < 0)
			return rc;
		a = svc->arr;
	}
	in->svc_pos = a->n;
	STORE_RELEASE(&a->v[a->n], in);
	STORE_RELEASE(&a->n, a->n + 1);
	STORE_RELAXED(&svc->live, svc->live + 1); /* store_services reads it */
	/* After the list: a reader that sees the revision sees the list. */
	STORE_RELEASE(&svc->revision, svc->revision + 1);
	if (inst_reserved(in))
		STAT_INC(sh, service_records);
	return 0;
}

void svc_arr_remove(struct store_shard *sh, struct store_svc *svc, struct store_inst *in)
{
	struct svc_arr *a = svc->arr;

	assert(a->v[in->svc_pos] == in);
	STORE_RELEASE(&a->v[in->svc_pos], NULL);
	svc->holes++;
	STORE_RELAXED(&svc->live, svc->live - 1);
	/* After the list: a reader that sees the revision sees the list. */
	STORE_RELEASE(&svc->revision, svc->revision + 1);
	if (inst_reserved(in))
		STAT_ADD(sh, service_records, (uint64_t)-1);
	/* Compact when most positions are holes; failure only delays it. */
	if (svc->holes > 8 && svc->holes * 2 > a->n)
		(void)svc_arr_rebuild(sh, svc, 0);
}

void svc_destroy_all(struct store_shard *sh)
{
	struct table_arr *a = sh->svcs.arr;

	for (uint64_t i = 0; i < ((uint64_t)1 << a->bits); i++) {
		struct store_svc *svc;

		if (a->e[i] == TABLE_EMPTY || a->e[i] == TABLE_TOMB)
			continue;
		svc = table_obj(a->e[i]);
		mem_free(svc->arr);
		mem_free(svc->clusters);
		mem_free(svc);
	}
	table_destroy(&sh->svcs);
}
