/*
 * store.c - the instance tables of one node: shards, services, instances,
 * versions, slot checksums, the expiry FIFOs and the change feed, and the
 * local writes. Records from other nodes, takeovers, the expiry sweep and
 * stalls are apply.c's; reads are read.c's; services, their cluster lists
 * and instance arrays are svc.c's; names, defaults and hashes of a key are
 * key.c's; the holders' leases on an instance (gRPC connections) are
 * lease.c's, a side table freed with the instance (inst_kill).
 *
 * Ownership. The store is split into shards by the hash of a service's
 * names, so every instance of a service lives in one shard and a list reads
 * one shard. Each shard has exactly one writer thread, which alone mutates
 * that shard's tables, pools, FIFOs and counters; there is no lock anywhere.
 * Readers on any thread reach any shard lock-free inside an epoch section:
 *
 *   - the tables (store/table.h) never move an entry in place and publish
 *     rebuilt arrays with a release store;
 *   - a service's instance array (svc_arr) is append-only in place; a removal
 *     leaves a NULL hole; growth or compaction builds a new array;
 *   - an instance's replicated fields (weight, flags, timing, meta, version,
 *     node) change in place under a per-instance seqlock, so a reader copies
 *     a consistent set or retries; key fields never change while reachable;
 *   - everything unlinked (arrays, records, strings, metadata maps) is
 *     retired through the shard's epoch record and freed (records go back to
 *     the shard's pool) only when no reader can still hold it.
 *
 * Versions. Every local change is stamped by the shard's hybrid logical
 * clock, version = wall ms << 16 | logical, together with the node id. A
 * replicated record applies only if (version, node) is newer than what the
 * shard holds, live or deleted; applying advances the clock past it, so the
 * next local write wins over everything seen. A delete leaves a tombstone
 * (STORE_F_DELETED) that refuses older updates for tombstone_ms.
 *
 * Slots. slot = XXH3(ip || port) mod STORE_SLOTS (core/addr.h). The
 * instance table's hash carries the slot in its top bits, so the table is
 * laid out in slot order and one slot's entries form one region
 * (store_slot_scan). Each shard keeps,
 * per slot, the sum mod 2^64 of the hashes of its live records' replicated
 * state, and their count: adding, removing or changing a record adjusts one
 * sum in O(1); sums from any order of changes agree, so a slot's checksum is
 * the same on every node holding the same records.
 *
 * Expiry. Heartbeat deadlines are beat + constant per timing, and beats come
 * in time order, so each distinct timing keeps a FIFO of its tracked
 * instances ordered by last beat: a beat moves an instance to the tail of the
 * healthy FIFO, the sweep pops from the heads while the deadline has passed
 * (healthy -> unhealthy FIFO -> removed). Work is O(expired), never O(all).
 * Distinct timings per shard are bounded (timings_max). Only instances this
 * node must expire are tracked: local writes, beats and store_adopt track, replicated
 * records do not.
 *
 * The change feed is a FIFO of instances whose replicated state changed
 * locally, each at most once (W_IN_FEED), so it is bounded by the record
 * count; its capacity grows with the record count, so a push never fails.
 * A store without readers of the feed (a standalone server) turns it off
 * (store_config.feed): nothing is pushed and no capacity is reserved.
 */
#include "store/store_internal.h"

#include "core/err.h"
#include "core/mem.h"

#include <assert.h>
#include <string.h>

/* The memory budget (docs/store.md) counts on this size. */
_Static_assert(sizeof(struct store_inst) == 88, "store_inst grew");

/* ---- configuration, creation ---- */

void store_config_default(struct store_config *c)
{
	memset(c, 0, sizeof(*c));
	c->shards = 1;
	c->node_id = 0;
	c->limits = (struct store_limits){
		.name_bytes_max = 256,
		.meta_bytes_max = 4096,
		.meta_pairs_max = 64,
		.meta_key_bytes_max = 256,
		.instances_max = 16u << 20,
		.service_instances_max = 100000,
		.services_max = 1u << 20,
		.clusters_max = 1024,
		.timings_max = 64,
		.timing_ms_min = 1,
		.timing_ms_max = 24u * 3600 * 1000,
	};
	c->timing = (struct store_timing){ 5000, 15000, 30000 };
	c->tombstone_ms = 60000;
	c->version_skew_ms = 60000;
	c->feed = true;
}

void store_val_default(struct store_val *v)
{
	memset(v, 0, sizeof(*v));
	v->weight_milli = STORE_WEIGHT_SCALE;
	v->healthy = true;
	v->enabled = true;
	v->ephemeral = true;
}

static int timing_check(const struct store_limits *l, const struct store_timing *t)
{
	if (t->interval_ms < l->timing_ms_min || t->delete_ms > l->timing_ms_max)
		return -ERR_TIMING;
	if (!(t->interval_ms < t->timeout_ms && t->timeout_ms <= t->delete_ms))
		return -ERR_TIMING;
	return 0;
}

static int config_check(const struct store_config *c)
{
	const struct store_limits *l = &c->limits;

	if (c->shards == 0 || c->shards > STORE_SHARDS_MAX)
		return -ERR_INVAL;
	if (c->tombstone_ms < 1000 || c->version_skew_ms < 1000)
		return -ERR_INVAL;
	if (l->name_bytes_max == 0 || l->meta_key_bytes_max == 0 || l->instances_max == 0 ||
	    l->service_instances_max == 0 || l->services_max == 0 || l->clusters_max == 0 ||
	    l->clusters_max > STORE_CLUSTERS_HARD || l->timings_max == 0 ||
	    l->timings_max > STORE_TIMINGS_HARD || l->timing_ms_min == 0 ||
	    l->timing_ms_min > l->timing_ms_max)
		return -ERR_INVAL;
	return timing_check(l, &c->timing) < 0 ? -ERR_INVAL : 0;
}

/* Leased instances a shard keeps at most: its share of instances_max, at least 1024. */
static uint32_t leases_max(const struct store *s)
{
	uint64_t n = s->cfg.limits.instances_max / s->nshards;

	if (n < 1024)
		return 1024;
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/*
 * A shard as store_create makes it: every field zero but what is set here.
 * `slot_sum`/`slot_count`: zeroed arrays to keep (store_reset), or NULL.
 */
static int shard_init(struct store *s, struct store_shard *sh, uint32_t i, uint64_t *slot_sum,
                      uint32_t *slot_count)
{
	int rc = -ERR_NOMEM;

	memset(sh, 0, sizeof(*sh));
	sh->store = s;
	sh->index = i;
	epoch_register(&s->epoch, &sh->rec);
	pool_init(&sh->insts, sizeof(struct store_inst));
	sh->slot_sum = slot_sum ? slot_sum : mem_calloc(STORE_SLOTS, sizeof(sh->slot_sum[0]));
	sh->slot_count =
	        slot_count ? slot_count : mem_calloc(STORE_SLOTS, sizeof(sh->slot_count[0]));
	if ((rc = intern_init(&sh->intern, &sh->rec)) < 0)
		return rc;
	if ((rc = table_init(&sh->svcs, 4)) < 0)
		return rc;
	if ((rc = table_init(&sh->table, 6)) < 0)
		return rc;
	lease_table_init(&sh->leases, leases_max(s));
	sh->timings = mem_calloc(s->cfg.limits.timings_max, sizeof(sh->timings[0]));
	if (!sh->timings || !sh->slot_sum || !sh->slot_count)
		return -ERR_NOMEM;
	/* Timing 0 is the default, so most instances share one FIFO pair. */
	sh->timings[0].t = s->cfg.timing;
	sh->timings[0].state = T_USED;
	sh->timings_n = 1;
	return 0;
}

int store_create(const struct store_config *c, struct store **out)
{
	struct store *s;
	int rc;

	*out = NULL;
	if ((rc = config_check(c)) < 0)
		return rc;
	s = mem_calloc(1, sizeof(*s));
	if (s == NULL)
		return -ERR_NOMEM;
	s->cfg = *c;
	s->nshards = c->shards;
	s->def_ns = (struct store_str){ "public", 6 };
	s->def_group = (struct store_str){ "DEFAULT_GROUP", 13 };
	s->def_cluster = (struct store_str){ "DEFAULT", 7 };
	s->def_cluster_hash = intern_hash(s->def_cluster.p, s->def_cluster.len);
	epoch_init(&s->epoch);
	s->shards = mem_alloc_aligned(CACHELINE_BYTES, sizeof(s->shards[0]) * s->nshards);
	if (s->shards == NULL) {
		mem_free(s);
		return -ERR_NOMEM;
	}
	for (uint32_t i = 0; i < s->nshards; i++) {
		if ((rc = shard_init(s, &s->shards[i], i, NULL, NULL)) < 0) {
			s->nshards = i + 1;
			store_destroy(s);
			return rc;
		}
	}
	*out = s;
	return 0;
}

/* Frees what the shard holds but its slot arrays and its epoch record. */
static void shard_release(struct store_shard *sh)
{
	/* Wait out readers and run pending frees first: they return records to the pool. */
	epoch_barrier(&sh->rec);
	if (sh->table.arr) {
		struct table_arr *a = sh->table.arr;

		for (uint64_t i = 0; i < ((uint64_t)1 << a->bits); i++)
			if (a->e[i] != TABLE_EMPTY && a->e[i] != TABLE_TOMB)
				pool_put(&sh->insts, table_obj(a->e[i]));
		table_destroy(&sh->table);
	}
	if (sh->svcs.arr)
		svc_destroy_all(sh);
	if (sh->intern.strs.arr)
		intern_destroy(&sh->intern);
	pool_destroy(&sh->insts);
	lease_table_destroy(&sh->leases);
	mem_free(sh->timings);
	mem_free(sh->feed);
}

static void shard_destroy(struct store_shard *sh)
{
	shard_release(sh);
	mem_free(sh->slot_sum);
	mem_free(sh->slot_count);
	ck_epoch_unregister(&sh->rec.ck);
}

void store_destroy(struct store *s)
{
	if (s == NULL)
		return;
	for (uint32_t i = 0; i < s->nshards; i++)
		shard_destroy(&s->shards[i]);
	mem_free(s->shards);
	mem_free(s);
}

/*
 * What store_create does after allocating the store, with the shards'
 * structs and slot arrays kept: shard_init clears each shard whole, and the
 * epoch starts again without records (the shards' registered anew), so
 * nothing of the old contents can survive but in the kept arrays, which are
 * zeroed here.
 */
int store_reset(struct store *s)
{
	int rc = 0;

	for (uint32_t i = 0; i < s->nshards; i++)
		shard_release(&s->shards[i]);
	s->records = 0;
	s->services = 0;
	epoch_init(&s->epoch);
	for (uint32_t i = 0; i < s->nshards; i++) {
		struct store_shard *sh = &s->shards[i];
		uint64_t *sum = sh->slot_sum;
		uint32_t *count = sh->slot_count;
		int r;

		memset(sum, 0, STORE_SLOTS * sizeof(sum[0]));
		memset(count, 0, STORE_SLOTS * sizeof(count[0]));
		r = shard_init(s, sh, i, sum, count); /* a failed one: store_destroy frees it */
		if (rc == 0)
			rc = r;
	}
	return rc;
}

struct store_shard *store_shard(struct store *s, uint32_t i)
{
	return i < s->nshards ? &s->shards[i] : NULL;
}

uint32_t store_shards(const struct store *s)
{
	return s->nshards;
}

struct epoch *store_epoch(struct store *s)
{
	return &s->epoch;
}

struct epoch_rec *store_shard_rec(struct store_shard *sh)
{
	return &sh->rec;
}

/* ---- retiring ---- */

static void free_inst(void *ctx, void *obj)
{
	pool_put(&((struct store_shard *)ctx)->insts, obj);
}

/* ---- instances ---- */

struct inst_lookup {
	const struct store_svc *svc;
	int cluster;
	const struct addr *addr;
};

static bool inst_eq(const void *obj, const void *key)
{
	const struct store_inst *in = obj;
	const struct inst_lookup *k = key;

	uint64_t a[2], b[2];

	if (in->svc != k->svc || in->cluster != k->cluster || in->port != k->addr->port)
		return false;
	memcpy(a, in->ip, 16); /* two loads, not a call */
	memcpy(b, k->addr->ip, 16);
	return ((a[0] ^ b[0]) | (a[1] ^ b[1])) == 0;
}

static uint64_t inst_rehash(const void *obj)
{
	const struct store_inst *in = obj;

	return inst_table_hash(in->svc->hash, svc_cluster_of(in)->hash,
	                       addr_slot_hash(in->ip, in->port));
}

/* Reader-safe lookup of a resolved key; NULL if absent. */
struct store_inst *inst_find(const struct store_shard *sh, const struct rkey *rk,
                             const struct store_svc **svc_out)
{
	const struct store_svc *svc = svc_find(sh, rk);
	struct inst_lookup k;

	if (svc_out)
		*svc_out = svc;
	if (svc == NULL)
		return NULL;
	k.svc = svc;
	k.cluster = svc_cluster_find(svc, rk->cluster, rk->cluster_hash);
	k.addr = rk->addr;
	if (k.cluster < 0)
		return NULL;
	return table_find(&sh->table, rk->hash, inst_eq, &k);
}

static uint64_t inst_record_hash(const struct store_shard *sh, const struct store_inst *in)
{
	return record_hash(in->svc->hash, svc_cluster_of(in)->hash, in->ip, in->port,
	                   in->weight_milli, in->flags, &sh->timings[in->timing].t,
	                   in->meta ? in->meta->hash : 0, in->version, in->node);
}

static void slot_adjust(struct store_shard *sh, uint16_t slot, uint64_t add, uint64_t sub,
                        int32_t dcount)
{
	STORE_RELAXED(&sh->slot_sum[slot], sh->slot_sum[slot] + add - sub);
	STORE_RELAXED(&sh->slot_count[slot], sh->slot_count[slot] + (uint32_t)dcount);
}

/*
 * Heartbeat timings: a small per-shard table, so an instance names its
 * timing in one byte. Entry 0 is the store default and permanent. Other
 * entries count the live instances using them; an unused entry cools
 * through a grace period (a reader may still hold an instance naming it)
 * before its place can hold another timing.
 */
static void timing_cooled(void *ctx, void *obj)
{
	struct store_shard *sh = ctx;
	uintptr_t v = (uintptr_t)obj;
	struct timing_entry *te = &sh->timings[v >> 32];

	if (te->state == T_COOLING && te->cool_gen == (uint32_t)v)
		te->state = T_FREE;
}

/* An entry that may have just lost its last user (or never had one). */
static void timing_maybe_release(struct store_shard *sh, uint8_t idx)
{
	struct timing_entry *te = &sh->timings[idx];

	if (idx == 0 || te->users > 0 || te->state != T_USED)
		return;
	assert(te->healthy.head == NULL && te->unhealthy.head == NULL);
	te->state = T_COOLING;
	te->cool_gen++;
	epoch_retire(&sh->rec, timing_cooled, sh, (void *)(((uintptr_t)idx << 32) | te->cool_gen));
}

static void timing_use(struct store_shard *sh, uint8_t idx)
{
	sh->timings[idx].users++;
}

static void timing_unuse(struct store_shard *sh, uint8_t idx)
{
	assert(sh->timings[idx].users > 0);
	sh->timings[idx].users--;
	timing_maybe_release(sh, idx);
}

static int timing_index(struct store_shard *sh, const struct store_timing *given)
{
	const struct store_config *c = &sh->store->cfg;
	struct store_timing t = *given;
	uint32_t free_at = UINT32_MAX;
	int rc;

	if (t.interval_ms == 0)
		t.interval_ms = c->timing.interval_ms;
	if (t.timeout_ms == 0)
		t.timeout_ms = c->timing.timeout_ms;
	if (t.delete_ms == 0)
		t.delete_ms = c->timing.delete_ms;
	if ((rc = timing_check(&c->limits, &t)) < 0)
		return rc;
	for (uint32_t i = 0; i < sh->timings_n; i++) {
		struct timing_entry *te = &sh->timings[i];

		if (te->state == T_FREE && i > 0) {
			if (free_at == UINT32_MAX)
				free_at = i;
			continue;
		}
		if (memcmp(&te->t, &t, sizeof(t)) == 0) {
			te->state = T_USED; /* a cooling entry with the same values comes back */
			return (int)i;
		}
	}
	if (free_at == UINT32_MAX) {
		if (sh->timings_n >= c->limits.timings_max)
			return -ERR_LIMIT_TIMINGS;
		free_at = sh->timings_n++;
	}
	sh->timings[free_at].t = t;
	sh->timings[free_at].state = T_USED;
	sh->timings[free_at].users = 0;
	return (int)free_at;
}

int pval_make(struct store_shard *sh, const struct store_val *v, struct pval *p)
{
	int rc;

	if (v->weight_milli > STORE_WEIGHT_MAX * STORE_WEIGHT_SCALE)
		return -ERR_WEIGHT;
	if (v->meta_n > 0 && v->meta == NULL)
		return -ERR_INVAL;
	p->weight_milli = v->weight_milli;
	p->flags = (v->healthy ? STORE_F_HEALTHY : 0) | (v->enabled ? STORE_F_ENABLED : 0) |
	           (v->ephemeral ? STORE_F_EPHEMERAL : 0);
	if ((rc = intern_meta(&sh->intern, &sh->store->cfg.limits, v->meta, v->meta_n, &p->meta)) <
	    0)
		return rc;
	if ((rc = timing_index(sh, &v->timing)) < 0) {
		intern_meta_unref(&sh->intern, p->meta);
		return rc;
	}
	p->timing = (uint8_t)rc;
	return 0;
}

/* Gives back what pval_make took when the value is not stored after all. */
void pval_drop(struct store_shard *sh, const struct pval *p)
{
	intern_meta_unref(&sh->intern, p->meta);
	timing_maybe_release(sh, p->timing);
}

static bool pval_same(const struct store_inst *in, const struct pval *p)
{
	return in->weight_milli == p->weight_milli && in->flags == p->flags &&
	       in->timing == p->timing && in->meta == p->meta;
}

uint64_t hlc_next(struct store_shard *sh)
{
	uint64_t wall = (uint64_t)clock_wall_ms(&sh->store->cfg.clock) << 16;

	sh->hlc = wall > sh->hlc ? wall : sh->hlc + 1;
	return sh->hlc;
}

void hlc_observe(struct store_shard *sh, uint64_t version)
{
	if (version > sh->hlc)
		sh->hlc = version;
}

int64_t now_ms(const struct store_shard *sh)
{
	return clock_mono_ms(&sh->store->cfg.clock);
}

/* ---- FIFOs ---- */

void fifo_unlink(struct fifo *f, struct store_inst *in)
{
	if (in->prev)
		in->prev->next = in->next;
	else
		f->head = in->next;
	if (in->next)
		in->next->prev = in->prev;
	else
		f->tail = in->prev;
	in->prev = in->next = NULL;
}

void fifo_append(struct fifo *f, struct store_inst *in)
{
	in->next = NULL;
	in->prev = f->tail;
	if (f->tail)
		f->tail->next = in;
	else
		f->head = in;
	f->tail = in;
}

static struct fifo *inst_fifo(struct store_shard *sh, const struct store_inst *in)
{
	switch (in->wflags & W_LIST_MASK) {
	case W_LIST_HEALTHY:
		return &sh->timings[in->timing].healthy;
	case W_LIST_UNHEALTHY:
		return &sh->timings[in->timing].unhealthy;
	case W_LIST_DEAD:
		return &sh->dead;
	}
	return NULL;
}

void list_leave(struct store_shard *sh, struct store_inst *in)
{
	struct fifo *f = inst_fifo(sh, in);

	if (f)
		fifo_unlink(f, in);
	in->wflags &= (uint8_t)~W_LIST_MASK;
}

void list_enter(struct store_shard *sh, struct store_inst *in, uint8_t list)
{
	in->wflags = (uint8_t)((in->wflags & ~W_LIST_MASK) | list);
	fifo_append(inst_fifo(sh, in), in);
}

/* A heartbeat: fresh beat time, tail of the healthy FIFO (ephemeral live instances only). */
void track(struct store_shard *sh, struct store_inst *in, int64_t now)
{
	list_leave(sh, in);
	STORE_RELAXED(&in->beat_ms, now);
	if ((in->flags & STORE_F_EPHEMERAL) && !(in->flags & STORE_F_DELETED))
		list_enter(sh, in, W_LIST_HEALTHY);
}

/* ---- change feed ---- */

static int feed_reserve(struct store_shard *sh)
{
	uint64_t records = sh->stats.instances + sh->stats.tombstones + 1;
	struct store_inst **f;
	uint32_t cap;

	if (records <= sh->feed_cap || !sh->store->cfg.feed)
		return 0;
	cap = sh->feed_cap ? sh->feed_cap * 2 : 64;
	f = mem_alloc(sizeof(f[0]) * cap);
	if (f == NULL)
		return -ERR_NOMEM;
	sh->feed_n -= sh->feed_head;
	if (sh->feed_n)
		memcpy(f, sh->feed + sh->feed_head, sizeof(f[0]) * sh->feed_n);
	sh->feed_head = 0;
	mem_free(sh->feed);
	sh->feed = f;
	sh->feed_cap = cap;
	return 0;
}

void feed_push(struct store_shard *sh, struct store_inst *in)
{
	if ((in->wflags & W_IN_FEED) || !sh->store->cfg.feed)
		return;
	if (sh->feed_n == sh->feed_cap) {
		/* Entries waiting never exceed the records, which feed_reserve covers. */
		assert(sh->feed_head > 0);
		sh->feed_n -= sh->feed_head;
		memmove(sh->feed, sh->feed + sh->feed_head, sizeof(sh->feed[0]) * sh->feed_n);
		sh->feed_head = 0;
	}
	in->wflags |= W_IN_FEED;
	sh->feed[sh->feed_n++] = in;
}

/* ---- state transitions (writer) ---- */

/* Changes the replicated value of a live instance; consumes p's meta reference. */
void inst_set(struct store_shard *sh, struct store_inst *in, const struct pval *p, uint64_t version,
              uint16_t node)
{
	uint64_t before = inst_record_hash(sh, in);
	const struct store_meta *old_meta = in->meta;

	/* The FIFO belongs to the timing: a new timing moves it to that one's healthy tail. */
	uint8_t old_timing = in->timing;
	bool retime = old_timing != p->timing;
	bool tracked = (in->wflags & W_LIST_MASK) != W_LIST_NONE;

	in->wflags &= (uint8_t)~W_FORGOTTEN;
	if (retime) {
		list_leave(sh, in);
		timing_use(sh, p->timing);
	}
	seq_begin(in);
	STORE_RELEASE(&in->weight_milli, p->weight_milli);
	STORE_RELEASE(&in->flags, p->flags);
	STORE_RELEASE(&in->timing, p->timing);
	STORE_RELEASE(&in->meta, p->meta);
	STORE_RELEASE(&in->version, version);
	STORE_RELEASE(&in->node, node);
	seq_end(in);
	if (retime && tracked) {
		/*
		 * The new FIFO is ordered by beat time and its tail is the latest
		 * beat, so joining it takes a fresh beat: order holds, and the new
		 * timing runs in full from now.
		 */
		STORE_RELAXED(&in->beat_ms, now_ms(sh));
		list_enter(sh, in, W_LIST_HEALTHY);
	}
	if (retime)
		timing_unuse(sh, old_timing);
	slot_adjust(sh, in->slot, inst_record_hash(sh, in), before, 0);
	STORE_RELEASE(&in->svc->revision, in->svc->revision + 1);
	intern_meta_unref(&sh->intern, old_meta);
}

/* A live instance becomes a tombstone (flags DELETED, plus EXPIRED when expiry made it). */
void inst_kill(struct store_shard *sh, struct store_inst *in, uint64_t version, uint16_t node,
               uint8_t expired)
{
	const struct store_meta *old_meta = in->meta;

	uint8_t old_timing = in->timing;

	in->wflags &= (uint8_t)~W_FORGOTTEN; /* store_forget sets it after */
	if (in->wflags & W_LEASED)           /* its holders' leases die with it */
		inst_lease_drop(sh, in);
	slot_adjust(sh, in->slot, 0, inst_record_hash(sh, in), -1);
	list_leave(sh, in);
	seq_begin(in);
	STORE_RELEASE(&in->flags, (uint8_t)(STORE_F_DELETED | expired));
	STORE_RELEASE(&in->timing, (uint8_t)0); /* a tombstone keeps no timing */
	STORE_RELEASE(&in->meta, NULL);
	STORE_RELEASE(&in->version, version);
	STORE_RELEASE(&in->node, node);
	seq_end(in);
	intern_meta_unref(&sh->intern, old_meta);
	svc_arr_remove(sh, in->svc, in);
	timing_unuse(sh, old_timing);
	STORE_RELAXED(&in->beat_ms, now_ms(sh));
	list_enter(sh, in, W_LIST_DEAD);
	STAT_ADD(sh, instances, (uint64_t)-1);
	STAT_INC(sh, tombstones);
}

/* A tombstone (flags DELETED, in the dead FIFO) comes back to life; consumes p's meta. */
int inst_revive(struct store_shard *sh, struct store_inst *in, const struct pval *p,
                uint64_t version, uint16_t node)
{
	struct store_svc *svc = in->svc;
	int rc;

	if (svc->live >= sh->store->cfg.limits.service_instances_max)
		return -ERR_LIMIT_SERVICE;
	if ((rc = svc_arr_add(sh, svc, in)) < 0)
		return rc;
	in->wflags &= (uint8_t)~W_FORGOTTEN;
	list_leave(sh, in);
	timing_use(sh, p->timing);
	seq_begin(in);
	STORE_RELEASE(&in->weight_milli, p->weight_milli);
	STORE_RELEASE(&in->flags, p->flags);
	STORE_RELEASE(&in->timing, p->timing);
	STORE_RELEASE(&in->meta, p->meta);
	STORE_RELEASE(&in->version, version);
	STORE_RELEASE(&in->node, node);
	seq_end(in);
	slot_adjust(sh, in->slot, inst_record_hash(sh, in), 0, 1);
	STAT_INC(sh, instances);
	STAT_ADD(sh, tombstones, (uint64_t)-1);
	return 0;
}

/*
 * A new record: live with p (consumes its meta) or, when p is NULL, a
 * tombstone. Creates the service and cluster entries as needed.
 */
int inst_create(struct store_shard *sh, const struct rkey *rk, const struct pval *p,
                uint64_t version, uint16_t node, struct store_inst **out)
{
	struct store *s = sh->store;
	struct store_svc *svc;
	struct store_inst *in;
	int cl, rc;

	/* Reserve first, so shards racing for the last places cannot overshoot. */
	if (__atomic_add_fetch(&s->records, 1, __ATOMIC_RELAXED) > s->cfg.limits.instances_max) {
		__atomic_sub_fetch(&s->records, 1, __ATOMIC_RELAXED);
		return -ERR_LIMIT_INSTANCES;
	}
	if ((rc = svc_get(sh, rk, &svc)) < 0) {
		__atomic_sub_fetch(&s->records, 1, __ATOMIC_RELAXED);
		return rc;
	}
	if (p && svc->live >= s->cfg.limits.service_instances_max) {
		rc = -ERR_LIMIT_SERVICE;
		goto err_svc;
	}
	if ((cl = svc_cluster_get(sh, svc, rk)) < 0) {
		rc = cl;
		goto err_svc;
	}
	if ((rc = feed_reserve(sh)) < 0)
		goto err_svc;
	in = pool_get(&sh->insts);
	if (in == NULL) {
		rc = -ERR_NOMEM;
		goto err_svc;
	}
	memset(in, 0, sizeof(*in));
	in->svc = svc;
	memcpy(in->ip, rk->addr->ip, 16);
	in->port = rk->addr->port;
	in->cluster = (uint16_t)cl;
	in->slot = rk->slot;
	in->version = version;
	in->node = node;
	in->beat_ms = now_ms(sh);
	if (p) {
		in->weight_milli = p->weight_milli;
		in->flags = p->flags;
		in->timing = p->timing;
		in->meta = p->meta;
		if ((rc = svc_arr_add(sh, svc, in)) < 0)
			goto err_inst;
	} else {
		in->flags = STORE_F_DELETED;
	}
	if ((rc = table_insert(&sh->table, &sh->rec, rk->hash, in, inst_rehash)) < 0) {
		if (p)
			svc_arr_remove(sh, svc, in);
		goto err_inst;
	}
	svc->records++;
	if (p) {
		timing_use(sh, p->timing);
		slot_adjust(sh, in->slot, inst_record_hash(sh, in), 0, 1);
		STAT_INC(sh, instances);
	} else {
		list_enter(sh, in, W_LIST_DEAD);
		STAT_INC(sh, tombstones);
	}
	*out = in;
	return 0;

err_inst:
	/* Never published (or unpublished above): readers may have seen it in svc->arr. */
	epoch_retire(&sh->rec, free_inst, sh, in);
err_svc:
	svc_maybe_release(sh, svc);
	__atomic_sub_fetch(&s->records, 1, __ATOMIC_RELAXED);
	return rc;
}

/* Forgets a tombstone. */
void inst_purge(struct store_shard *sh, struct store_inst *in)
{
	struct store_svc *svc = in->svc;

	list_leave(sh, in);
	table_remove(&sh->table, inst_rehash(in), in);
	epoch_retire(&sh->rec, free_inst, sh, in);
	svc->records--;
	__atomic_sub_fetch(&sh->store->records, 1, __ATOMIC_RELAXED);
	STAT_ADD(sh, tombstones, (uint64_t)-1);
	STAT_INC(sh, tombstones_purged);
	svc_maybe_release(sh, svc);
}

int store_reserve(struct store_shard *sh, uint64_t records)
{
	uint64_t max = sh->store->cfg.limits.instances_max;

	return table_reserve(&sh->table, &sh->rec, records < max ? records : max, inst_rehash);
}

/* ---- writer operations ---- */

int resolve_for_write(struct store_shard *sh, const struct store_key *k, struct rkey *rk)
{
	int rc = key_resolve(sh->store, k, rk);

	if (rc == 0 && shard_of_hash(sh->store, rk->svc_hash) != sh->index)
		rc = -ERR_WRONG_SHARD;
	return rc;
}

int rejected(struct store_shard *sh, int rc)
{
	STAT_INC(sh, rejected);
	return rc;
}

int store_upsert(struct store_shard *sh, const struct store_key *k, const struct store_val *v)
{
	struct store_inst *in;
	struct rkey rk;
	struct pval p;
	int rc;

	if ((rc = resolve_for_write(sh, k, &rk)) < 0 || (rc = pval_make(sh, v, &p)) < 0)
		return rejected(sh, rc);
	in = inst_find(sh, &rk, NULL);
	if (in && !(in->flags & STORE_F_DELETED)) {
		rc = STORE_SAME;
		if (pval_same(in, &p)) {
			pval_drop(sh, &p);
		} else {
			inst_set(sh, in, &p, hlc_next(sh), sh->store->cfg.node_id);
			feed_push(sh, in);
			rc = STORE_CHANGED;
		}
	} else if (in) {
		if ((rc = inst_revive(sh, in, &p, hlc_next(sh), sh->store->cfg.node_id)) < 0) {
			pval_drop(sh, &p);
			return rejected(sh, rc);
		}
		feed_push(sh, in);
		rc = STORE_CREATED;
	} else {
		if ((rc = inst_create(sh, &rk, &p, hlc_next(sh), sh->store->cfg.node_id, &in)) <
		    0) {
			pval_drop(sh, &p);
			return rejected(sh, rc);
		}
		feed_push(sh, in);
		rc = STORE_CREATED;
	}
	track(sh, in, now_ms(sh));
	in->wflags |= W_HEARD;
	STAT_INC(sh, upserts);
	return rc;
}

/* The live instance with this key on this shard, for a writer op: 0, or a negative code. */
int live_find(struct store_shard *sh, const struct store_key *k, struct store_inst **out)
{
	struct rkey rk;
	int rc;

	if ((rc = resolve_for_write(sh, k, &rk)) < 0)
		return rejected(sh, rc);
	*out = inst_find(sh, &rk, NULL);
	if (*out == NULL || ((*out)->flags & STORE_F_DELETED))
		return -ERR_NOT_FOUND;
	return 0;
}

int store_delete(struct store_shard *sh, const struct store_key *k)
{
	struct store_inst *in;
	struct rkey rk;
	int rc;

	if ((rc = resolve_for_write(sh, k, &rk)) < 0)
		return rejected(sh, rc);
	in = inst_find(sh, &rk, NULL);
	if (in && !(in->flags & STORE_F_DELETED)) {
		inst_kill(sh, in, hlc_next(sh), sh->store->cfg.node_id, 0);
		feed_push(sh, in);
		STAT_INC(sh, deletes);
		return 0;
	}
	/*
	 * Unknown here, or only an older delete: the registration may live on
	 * a node we have not heard from (the other side of a cut link). A
	 * tombstone newer than it goes out all the same; it is forgotten after
	 * tombstone_ms like any other.
	 */
	if (in == NULL) {
		if (inst_create(sh, &rk, NULL, hlc_next(sh), sh->store->cfg.node_id, &in) < 0)
			return -ERR_NOT_FOUND; /* no room to remember it: a plain "not found" */
	} else {
		in->wflags &= (uint8_t)~W_FORGOTTEN; /* a client's delete now, no forgotten copy */
		seq_begin(in);
		STORE_RELEASE(&in->flags, (uint8_t)STORE_F_DELETED);
		STORE_RELEASE(&in->version, hlc_next(sh));
		STORE_RELEASE(&in->node, sh->store->cfg.node_id);
		seq_end(in);
		list_leave(sh, in);
		STORE_RELAXED(&in->beat_ms, now_ms(sh));
		list_enter(sh, in, W_LIST_DEAD);
	}
	feed_push(sh, in);
	STAT_INC(sh, blind_deletes);
	return -ERR_NOT_FOUND;
}

int store_touch(struct store_shard *sh, const struct store_key *k)
{
	struct store_inst *in;
	int rc;

	if ((rc = live_find(sh, k, &in)) < 0)
		return rc;
	rc = STORE_SAME;
	if (!(in->flags & STORE_F_HEALTHY) && (in->flags & STORE_F_EPHEMERAL)) {
		struct pval p = { in->weight_milli,
			          (uint8_t)((in->flags | STORE_F_HEALTHY) & ~STORE_F_EXPIRED),
			          in->timing, in->meta };

		intern_meta_ref(p.meta); /* inst_set consumes one */
		inst_set(sh, in, &p, hlc_next(sh), sh->store->cfg.node_id);
		feed_push(sh, in);
		rc = STORE_CHANGED;
	}
	track(sh, in, now_ms(sh));
	in->wflags |= W_HEARD;
	STAT_INC(sh, touches);
	return rc;
}

void store_poll(struct store_shard *sh)
{
	epoch_poll(&sh->rec);
}

uint32_t store_feed_len(const struct store_shard *sh)
{
	return sh->feed_n - sh->feed_head;
}

uint32_t store_feed_drain(struct store_shard *sh, struct store_view *out, uint32_t max,
                          roaring_bitmap_t *slots)
{
	uint32_t n = store_feed_len(sh) < max ? store_feed_len(sh) : max;

	for (uint32_t i = 0; i < n; i++) {
		struct store_inst *in = sh->feed[sh->feed_head + i];

		in->wflags &= (uint8_t)~W_IN_FEED;
		inst_read(sh, in, &out[i]);
		if (slots)
			roaring_bitmap_add(slots, in->slot);
	}
	sh->feed_head += n;
	if (sh->feed_head == sh->feed_n)
		sh->feed_head = sh->feed_n = 0;
	return n;
}
