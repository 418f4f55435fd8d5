/*
 * read.c - the store's reader side: get, list, slot checksums, slot scans and
 * statistics. Everything here runs on any thread inside an epoch section and
 * never writes shared state; see store.c for the rules it relies on.
 */
#include "store/store_internal.h"

#include "core/err.h"

#include <ck_pr.h>

#include <string.h>

static inline uint32_t seq_read_begin(const struct store_inst *in)
{
	uint32_t s;

	while ((s = LOAD_ACQUIRE(&in->seq)) & 1)
		ck_pr_stall();
	return s;
}

void inst_read(const struct store_shard *sh, const struct store_inst *in, struct store_view *v)
{
	const struct store_svc *svc = in->svc;
	const struct istr *cl = LOAD_ACQUIRE(&svc->clusters)->names[in->cluster];
	uint8_t timing;
	uint32_t s;

	v->ns = (struct store_str){ svc->ns->s, svc->ns->len };
	v->group = (struct store_str){ svc->group->s, svc->group->len };
	v->service = (struct store_str){ svc->name->s, svc->name->len };
	v->cluster = (struct store_str){ cl->s, cl->len };
	memcpy(v->addr.ip, in->ip, 16);
	v->addr.port = in->port;
	v->slot = in->slot;
	do {
		s = seq_read_begin(in);
		v->weight_milli = LOAD_ACQUIRE(&in->weight_milli);
		v->flags = LOAD_ACQUIRE(&in->flags);
		timing = LOAD_ACQUIRE(&in->timing);
		v->meta = LOAD_ACQUIRE(&in->meta);
		v->version = LOAD_ACQUIRE(&in->version);
		v->node = LOAD_ACQUIRE(&in->node);
	} while (LOAD_ACQUIRE(&in->seq) != s);
	v->timing = sh->timings[timing].t;
	v->beat_ms = LOAD_RELAXED(&in->beat_ms);
}

uint32_t store_meta_count(const struct store_meta *m)
{
	return m ? m->n : 0;
}

struct store_kv store_meta_at(const struct store_meta *m, uint32_t i)
{
	const struct meta_kv *kv = &m->kv[i];

	return (struct store_kv){ { kv->key->s, kv->key->len }, { kv->val->s, kv->val->len } };
}

uint64_t store_view_hash(const struct store_view *v)
{
	uint64_t meta_hash = v->meta ? intern_meta_hash_bytes(v->meta) : 0;

	return record_hash(svc_hash_of(v->ns.p, v->ns.len, v->group.p, v->group.len, v->service.p,
	                               v->service.len),
	                   intern_hash(v->cluster.p, v->cluster.len), v->addr.ip, v->addr.port,
	                   v->weight_milli, v->flags, &v->timing, meta_hash, v->version, v->node);
}

int store_get(struct store *s, const struct store_key *k, struct store_view *out)
{
	const struct store_inst *in;
	struct store_shard *sh;
	struct rkey rk;
	int rc;

	if ((rc = key_resolve(s, k, &rk)) < 0)
		return rc;
	sh = &s->shards[shard_of_hash(s, rk.svc_hash)];
	in = inst_find(sh, &rk, NULL);
	if (in == NULL)
		return -ERR_NOT_FOUND;
	inst_read(sh, in, out);
	return (out->flags & STORE_F_DELETED) ? -ERR_NOT_FOUND : 0;
}

/* Cluster indexes the filter admits; -1 entries are names the service lacks. */
#define FILTER_CLUSTERS_MAX 64

static bool pass(const struct store_view *v, const struct store_filter *f)
{
	if (v->flags & STORE_F_DELETED)
		return false;
	if (v->cluster.p[0] == '@')
		return false; /* a reserved cluster's record (store.h): never listed */
	if (f->healthy_only && !(v->flags & STORE_F_HEALTHY))
		return false;
	if (f->enabled_only && !(v->flags & STORE_F_ENABLED))
		return false;
	return true;
}

int store_list(struct store *s, const struct store_svc_key *k, const struct store_filter *f,
               struct store_view *out, uint32_t max, struct store_list_info *info)
{
	static const struct store_filter all = { 0 };
	int clusters[FILTER_CLUSTERS_MAX];
	const struct store_svc *svc;
	const struct svc_arr *a;
	struct store_shard *sh;
	struct store_view v;
	uint32_t n, total = 0, written = 0;
	struct rkey rk;
	int rc;

	if (f == NULL)
		f = &all;
	if (info)
		*info = (struct store_list_info){ 0, 0 };
	if ((rc = svc_key_resolve(s, k, &rk)) < 0)
		return rc;
	if (f->clusters_n > FILTER_CLUSTERS_MAX)
		return -ERR_INVAL;
	sh = &s->shards[shard_of_hash(s, rk.svc_hash)];
	svc = svc_find(sh, &rk);
	if (svc == NULL)
		return 0;
	for (uint32_t i = 0; i < f->clusters_n; i++) {
		struct store_str c = f->clusters[i];

		if ((rc = name_check(s, c, true)) < 0)
			return rc;
		clusters[i] = svc_cluster_find(svc, c, intern_hash(c.p, c.len));
	}
	if (info)
		info->revision = LOAD_ACQUIRE(&svc->revision);
	a = LOAD_ACQUIRE(&svc->arr);
	n = a ? LOAD_ACQUIRE(&a->n) : 0;
	for (uint32_t i = 0; i < n; i++) {
		const struct store_inst *in = LOAD_ACQUIRE(&a->v[i]);

		if (in == NULL)
			continue;
		if (f->clusters_n > 0) {
			uint32_t j;

			for (j = 0; j < f->clusters_n; j++)
				if (clusters[j] == in->cluster)
					break;
			if (j == f->clusters_n)
				continue;
		}
		inst_read(sh, in, &v);
		if (!pass(&v, f))
			continue;
		if (written < max)
			out[written++] = v;
		total++;
	}
	if (info)
		info->total = total;
	return (int)written;
}

uint64_t store_revision(struct store *s, const struct store_svc_key *k)
{
	const struct store_svc *svc;
	struct rkey rk;

	if (svc_key_resolve(s, k, &rk) < 0)
		return 0;
	svc = svc_find(&s->shards[shard_of_hash(s, rk.svc_hash)], &rk);
	return svc ? LOAD_ACQUIRE(&svc->revision) : 0;
}

uint64_t store_slot_checksum(struct store *s, uint32_t slot, uint32_t *count)
{
	uint64_t sum = 0;
	uint32_t c = 0;

	slot &= STORE_SLOTS - 1;
	for (uint32_t i = 0; i < s->nshards; i++) {
		sum += LOAD_RELAXED(&s->shards[i].slot_sum[slot]);
		c += LOAD_RELAXED(&s->shards[i].slot_count[slot]);
	}
	if (count)
		*count = c;
	return sum;
}

uint64_t store_range_checksum(struct store *s, uint32_t lo, uint32_t hi, uint64_t *count)
{
	uint64_t sum = 0, c = 0;

	if (hi > STORE_SLOTS)
		hi = STORE_SLOTS;
	for (uint32_t i = 0; i < s->nshards; i++) {
		const struct store_shard *sh = &s->shards[i];

		for (uint32_t slot = lo; slot < hi; slot++) {
			sum += LOAD_RELAXED(&sh->slot_sum[slot]);
			c += LOAD_RELAXED(&sh->slot_count[slot]);
		}
	}
	if (count)
		*count = c;
	return sum;
}

void store_slots_nonempty(struct store *s, roaring_bitmap_t *out)
{
	for (uint32_t slot = 0; slot < STORE_SLOTS; slot++) {
		for (uint32_t i = 0; i < s->nshards; i++) {
			if (LOAD_RELAXED(&s->shards[i].slot_count[slot]) > 0) {
				roaring_bitmap_add(out, slot);
				break;
			}
		}
	}
}

void store_cursor_init(struct store_cursor *c, uint32_t slot)
{
	memset(c, 0, sizeof(*c));
	c->slot = slot & (STORE_SLOTS - 1);
}

void store_cursor_init_shard(struct store_cursor *c, uint32_t slot, uint32_t shard)
{
	store_cursor_init(c, slot);
	c->shard = shard;
	c->one_shard = true;
}

/*
 * A slot's entries in a table of 2^bits buckets have their home in
 * [first, first + span) and lie between first and the first EMPTY bucket at
 * or after first + span (linear probing never moves an entry and never turns
 * a bucket back to EMPTY). When the table is smaller than STORE_SLOTS,
 * several slots share a home bucket and the filter on in->slot sorts them out.
 */
static void slot_region(uint32_t bits, uint32_t slot, uint32_t *first, uint32_t *span)
{
	if (bits >= STORE_SLOT_BITS) {
		*first = slot << (bits - STORE_SLOT_BITS);
		*span = 1u << (bits - STORE_SLOT_BITS);
	} else {
		*first = slot >> (STORE_SLOT_BITS - bits);
		*span = 1;
	}
}

uint32_t store_slot_scan(struct store *s, struct store_cursor *c, struct store_view *out,
                         uint32_t max)
{
	uint32_t n = 0;

	while (!c->done && n < max) {
		struct store_shard *sh = &s->shards[c->shard];
		const struct table_arr *a = LOAD_ACQUIRE(&sh->table.arr);
		uint32_t mask = (1u << a->bits) - 1, first, span;
		bool region_done = false;

		if (c->pos > 0 && c->gen != a->gen)
			c->pos = 0; /* rebuilt since the last chunk: start this shard again */
		c->gen = a->gen;
		slot_region(a->bits, c->slot, &first, &span);
		while (n < max) {
			const struct store_inst *in;
			uintptr_t e;

			if (c->pos > mask) {
				region_done = true; /* went all the way round */
				break;
			}
			e = LOAD_ACQUIRE(&a->e[(first + c->pos) & mask]);
			if (e == TABLE_EMPTY && c->pos >= span) {
				region_done = true;
				break;
			}
			c->pos++;
			if (e == TABLE_EMPTY || e == TABLE_TOMB)
				continue;
			in = table_obj(e);
			if (in->slot != c->slot)
				continue;
			inst_read(sh, in, &out[n]);
			if (c->tombstones || !(out[n].flags & STORE_F_DELETED))
				n++;
		}
		if (region_done) {
			c->pos = 0;
			c->gen = 0;
			if (c->one_shard || ++c->shard == s->nshards)
				c->done = true;
		}
	}
	return n;
}

void store_stats(struct store *s, struct store_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < s->nshards; i++) {
		const struct store_stats *st = &s->shards[i].stats;
#define STORE_STAT_SUM(name) out->name += LOAD_RELAXED(&st->name);
		STORE_STATS(STORE_STAT_SUM)
#undef STORE_STAT_SUM
	}
}

static bool str_is(const struct istr *i, struct store_str s)
{
	return i->len == s.len && memcmp(i->s, s.p, s.len) == 0;
}

uint32_t store_services(struct store *s, struct store_str ns, const struct store_str *group,
                        bool (*fn)(void *ctx, const struct store_svc_view *v), void *ctx)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < s->nshards; i++) {
		const struct table_arr *a = LOAD_ACQUIRE(&s->shards[i].svcs.arr);
		uint32_t size = 1u << a->bits;

		for (uint32_t j = 0; j < size; j++) {
			uintptr_t e = LOAD_ACQUIRE(&a->e[j]);
			const struct store_svc *svc;
			struct store_svc_view v;

			if (e == TABLE_EMPTY || e == TABLE_TOMB)
				continue;
			svc = table_obj(e);
			v.live = LOAD_RELAXED(&svc->live);
			if (v.live == 0 || !str_is(svc->ns, ns) ||
			    (group && !str_is(svc->group, *group)))
				continue;
			v.ns = (struct store_str){ svc->ns->s, svc->ns->len };
			v.group = (struct store_str){ svc->group->s, svc->group->len };
			v.service = (struct store_str){ svc->name->s, svc->name->len };
			v.revision = LOAD_ACQUIRE(&svc->revision);
			n++;
			if (!fn(ctx, &v))
				return n;
		}
	}
	return n;
}
