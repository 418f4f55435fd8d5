/*
 * apply.c - what other nodes and the passage of time do to a shard:
 * replicated records, repairs, takeovers, expiry, stalls.
 *
 * Last writer wins. A record from another node (sync, a repair, a load)
 * applies only if its (version, node) is newer than what the shard holds,
 * live or tombstone, so a late update never resurrects a newer delete and a
 * tombstone is never replaced by an older live record. A repair or a load
 * that brings an older record than ours sends ours back on the feed
 * (`refed`): the slot's owner and everyone get it, and a heal merges what
 * either side wrote.
 *
 * Expiry records. The sweep marks unhealthy, then removes, the tracked
 * instances whose beats stopped (O(expired): FIFOs per timing, store.c).
 * Its records carry STORE_F_EXPIRED and the version one step after the
 * write they mark, so any later write - a client's delete made elsewhere
 * above all - outranks them. A node that applies such a record for an
 * instance it heard beat within its healthy timeout (W_HEARD: a beat or a
 * client's write, not a deadline given by a takeover or moved by a stall)
 * writes the instance again one step newer instead: the expiry was made
 * by a node that did not hear it, and the instance is alive.
 *
 * Responsibility. Only a slot's owner expires (the owns hook); instances
 * of slots lost leave the expiry FIFOs as they reach the front. A
 * takeover adopts (a fresh deadline in the present state); a repair
 * forgets what the owner did not list, unless it beat here; a stall moves
 * every deadline by its length. docs/distro.md has the rules and why.
 *
 * Writer thread of the shard only, like store.c's writes.
 */
#include "store/store_internal.h"

#include "core/err.h"

#include <assert.h>

bool store_deleted_by_client(struct store_shard *sh, const struct store_key *k, int64_t within_ms)
{
	struct store_inst *in;
	struct rkey rk;

	if (resolve_for_write(sh, k, &rk) < 0 || (in = inst_find(sh, &rk, NULL)) == NULL)
		return false;
	/* A tombstone's beat_ms is when it was written or arrived here (inst_kill, apply). */
	return (in->flags & (STORE_F_DELETED | STORE_F_EXPIRED)) == STORE_F_DELETED &&
	       now_ms(sh) - in->beat_ms < within_ms;
}

int store_adopt(struct store_shard *sh, const struct store_key *k)
{
	struct store_inst *in;
	int rc;

	if ((rc = live_find(sh, k, &in)) < 0)
		return rc;
	if (!(in->flags & STORE_F_EPHEMERAL))
		return STORE_SAME;
	/* A fresh deadline in its present state: healthy or not, nothing replicated changes. */
	list_leave(sh, in);
	in->wflags &= (uint8_t)~W_HEARD; /* a deadline given, no beat heard */
	STORE_RELAXED(&in->beat_ms, now_ms(sh));
	list_enter(sh, in, (in->flags & STORE_F_HEALTHY) ? W_LIST_HEALTHY : W_LIST_UNHEALTHY);
	return STORE_SAME;
}

uint64_t store_version_now(struct store_shard *sh)
{
	return hlc_next(sh);
}

/*
 * Did this node hear the instance beat within its healthy timeout? Only an
 * instance tracked here (its slot's owner now or lately) has beat times
 * worth asking; a replica is untracked.
 */
static bool beating_here(struct store_shard *sh, const struct store_inst *in)
{
	return (in->wflags & W_LIST_MASK) == W_LIST_HEALTHY && (in->wflags & W_HEARD) &&
	       (in->flags & STORE_F_HEALTHY) &&
	       in->beat_ms + (int64_t)sh->timings[in->timing].t.timeout_ms > now_ms(sh);
}

/*
 * Writes a live instance again as it is (not EXPIRED), one step newer than
 * both its own version and `over` (the expiry record it answers, or 0): it
 * wins over that record everywhere, and still loses to any later write - a
 * client's deregister made meanwhile on another node included.
 */
static void reassert(struct store_shard *sh, struct store_inst *in, uint64_t over)
{
	struct pval p = { in->weight_milli, (uint8_t)(in->flags & ~STORE_F_EXPIRED), in->timing,
		          in->meta };
	uint64_t v = (in->version > over ? in->version : over) + 1;

	hlc_observe(sh, v);
	intern_meta_ref(p.meta); /* inst_set consumes one */
	inst_set(sh, in, &p, v, sh->store->cfg.node_id);
	feed_push(sh, in);
	STAT_INC(sh, reasserted);
}

int store_forget(struct store_shard *sh, const struct store_key *k, uint64_t before,
                 bool keep_beating)
{
	struct store_inst *in;
	int rc;

	if ((rc = live_find(sh, k, &in)) < 0)
		return rc;
	if (in->version >= before)
		return -ERR_STALE;
	if (keep_beating && beating_here(sh, in)) {
		reassert(sh, in, 0);
		return STORE_CHANGED;
	}
	inst_kill(sh, in, in->version, in->node, (uint8_t)(in->flags & STORE_F_EXPIRED));
	in->wflags |= W_FORGOTTEN;
	STAT_INC(sh, forgotten);
	return 0;
}

uint32_t store_pause_credit(struct store_shard *sh, int64_t ms)
{
	uint32_t n = 0;

	int64_t now = now_ms(sh);

	/*
	 * Every tracked FIFO moves as a whole - min(beat + ms, now) keeps each
	 * ordered, and a beat taken after the stall (the loop may have resumed
	 * mid-way) does not move into the future. The moved times are
	 * deadlines given, not beats heard.
	 */
	for (uint32_t i = 0; i < sh->timings_n; i++) {
		struct fifo *lists[2] = { &sh->timings[i].healthy, &sh->timings[i].unhealthy };

		for (int l = 0; l < 2; l++)
			for (struct store_inst *in = lists[l]->head; in; in = in->next, n++) {
				int64_t b = in->beat_ms + ms;

				STORE_RELAXED(&in->beat_ms, b < now ? b : now);
				in->wflags &= (uint8_t)~W_HEARD;
			}
	}
	STAT_ADD(sh, pause_credits, n);
	(void)lease_pause_credit(&sh->leases, ms); /* the holders could not renew either */
	return n;
}

static bool newer(uint64_t v1, uint16_t n1, uint64_t v2, uint16_t n2)
{
	return v1 > v2 || (v1 == v2 && n1 > n2);
}

static int apply(struct store_shard *sh, const struct store_record *r, const struct rkey *rk,
                 enum store_source from);

/*
 * A replicated instance that appears in a slot this node owns (it arrived
 * after the takeover, say) must be expired by us: tracked from now. In
 * other slots, and standalone, replicas stay untracked (their owner expires).
 */
static void owned_track(struct store_shard *sh, struct store_inst *in)
{
	const struct store_config *c = &sh->store->cfg;

	if (c->owns && c->owns(c->owns_ctx, in->slot) && !(in->wflags & W_LIST_MASK)) {
		track(sh, in, now_ms(sh));
		in->wflags &= (uint8_t)~W_HEARD; /* tracked from its arrival, not from a beat */
	}
}

int store_apply(struct store_shard *sh, const struct store_record *r)
{
	struct rkey rk;
	int rc;

	if ((rc = resolve_for_write(sh, &r->key, &rk)) < 0)
		return rejected(sh, rc);
	return apply(sh, r, &rk, STORE_FROM_SYNC);
}

int store_repair_apply(struct store_shard *sh, const struct store_record *r)
{
	struct rkey rk;
	int rc;

	if ((rc = resolve_for_write(sh, &r->key, &rk)) < 0)
		return rejected(sh, rc);
	return apply(sh, r, &rk, STORE_FROM_OWNER);
}

/*
 * A batch, pipelined. Applying a record of a load or a sync is a chain of
 * cache misses, each address known only from the one before: the service
 * table's bucket, then the service (and its name, compared), then its
 * instance array's end; the instance table's bucket. At a million
 * records none of them is in cache, and one record's misses follow one
 * another. Here each record passes four prefetch stages, APPLY_AHEAD
 * records apart, so its misses overlap the work on the records before it:
 *
 *   1. resolve the key (the hashes; pure) and prefetch both buckets, and
 *      the slot's checksum;
 *   2. read the service bucket (now cached) and prefetch the service it
 *      points to (a tag match: almost always the one), and the instance
 *      the table bucket points to, if any (an update's);
 *   3. prefetch what the service points to: its name, its cluster list
 *      and its instance array's header;
 *   4. prefetch the array's end (where an add writes);
 *
 * then apply, as store_apply does with the key resolved. A prefetch is a
 * hint: a table rebuilt or a service created by an earlier record of the
 * batch costs a miss, never a wrong result: the apply looks everything
 * up again. Results and counters are those of store_apply (or
 * store_repair_apply) called on each record in order: resolving a key
 * reads nothing the applies write.
 */
#define APPLY_AHEAD 4

static void prefetch_buckets(const struct store_shard *sh, const struct rkey *rk)
{
	const struct table_arr *sa = sh->svcs.arr, *ia = sh->table.arr;

	__builtin_prefetch(&sa->e[table_home(sa->bits, rk->svc_hash)]);
	__builtin_prefetch(&ia->e[table_home(ia->bits, rk->hash)]);
	__builtin_prefetch(&sh->slot_sum[rk->slot], 1);
}

/* The service of a bucket whose tag matches (likely the one), or NULL. */
static const struct store_svc *bucket_svc(const struct store_shard *sh, const struct rkey *rk)
{
	const struct table_arr *sa = sh->svcs.arr;
	uintptr_t e = sa->e[table_home(sa->bits, rk->svc_hash)];

	if (e == TABLE_EMPTY || e == TABLE_TOMB || (e >> 48) != (rk->svc_hash & 0xffff))
		return NULL;
	return table_obj(e);
}

static void prefetch_objects(const struct store_shard *sh, const struct rkey *rk)
{
	const struct table_arr *ia = sh->table.arr;
	const struct store_svc *svc = bucket_svc(sh, rk);
	uintptr_t e = ia->e[table_home(ia->bits, rk->hash)];

	if (svc)
		__builtin_prefetch(svc);
	if (e != TABLE_EMPTY && e != TABLE_TOMB)
		__builtin_prefetch(table_obj(e));
}

static void prefetch_svc_parts(const struct store_shard *sh, const struct rkey *rk)
{
	const struct store_svc *svc = bucket_svc(sh, rk);

	if (svc) {
		__builtin_prefetch(svc->name);
		__builtin_prefetch(svc->arr);
		__builtin_prefetch(svc->clusters);
	}
}

static void prefetch_arr_end(const struct store_shard *sh, const struct rkey *rk)
{
	const struct store_svc *svc = bucket_svc(sh, rk);
	const struct svc_arr *a = svc ? svc->arr : NULL;

	if (a && a->n < a->cap)
		__builtin_prefetch(&a->v[a->n], 1);
}

void store_apply_batch(struct store_shard *sh, const struct store_record *r, uint32_t n,
                       enum store_source from, int *rc)
{
	struct rkey rk[STORE_APPLY_BATCH_MAX];
	int res[STORE_APPLY_BATCH_MAX] = { 0 }; /* each set at its step before use */

	assert(n <= STORE_APPLY_BATCH_MAX);
	/* Record k is in stage s at step k + s * APPLY_AHEAD. */
	for (uint32_t i = 0; i < n + 4 * APPLY_AHEAD; i++) {
		uint32_t k;

		if (i < n && (res[i] = resolve_for_write(sh, &r[i].key, &rk[i])) == 0)
			prefetch_buckets(sh, &rk[i]);
		k = i - APPLY_AHEAD;
		if (i >= APPLY_AHEAD && k < n && res[k] == 0)
			prefetch_objects(sh, &rk[k]);
		k = i - 2 * APPLY_AHEAD;
		if (i >= 2 * APPLY_AHEAD && k < n && res[k] == 0)
			prefetch_svc_parts(sh, &rk[k]);
		k = i - 3 * APPLY_AHEAD;
		if (i >= 3 * APPLY_AHEAD && k < n && res[k] == 0)
			prefetch_arr_end(sh, &rk[k]);
		k = i - 4 * APPLY_AHEAD;
		if (i >= 4 * APPLY_AHEAD && k < n)
			rc[k] = res[k] < 0 ? rejected(sh, res[k]) : apply(sh, &r[k], &rk[k], from);
	}
}

/*
 * The owner's listing (a repair, never a load from any peer) holds the very copy this replica
 * forgot because an earlier listing of the owner lacked it: the owner got it since - from the old
 * owner, after that repair - and it is taken back. Refusing it would leave this replica without a
 * live instance until the tombstone expires (a heartbeat bumps no version, so nothing newer comes),
 * the slot's digest differing every verify round. The same copy from a sync is still refused: a
 * stale one in flight from the old owner must not bring back what its owner does not list.
 */
static bool relisted(const struct store_inst *in, const struct store_record *r,
                     enum store_source from)
{
	return from == STORE_FROM_OWNER && (in->wflags & W_FORGOTTEN) && !r->deleted &&
	       r->version == in->version && r->node == in->node;
}

/* Last writer wins (store.h: the expiry exception, and what a repair sends back). */
static int apply(struct store_shard *sh, const struct store_record *r, const struct rkey *rk,
                 enum store_source from)
{
	struct store_inst *in;
	struct pval p = { 0 };
	uint8_t expired = r->expired ? STORE_F_EXPIRED : 0;
	int rc;

	/* A version far ahead of our clock would drag every later version with it. */
	if (r->version >
	    ((uint64_t)clock_wall_ms(&sh->store->cfg.clock) + sh->store->cfg.version_skew_ms) << 16)
		return rejected(sh, -ERR_CLOCK_SKEW);
	in = inst_find(sh, rk, NULL);
	if (in && !newer(r->version, r->node, in->version, in->node) && !relisted(in, r, from)) {
		STAT_INC(sh, applies_stale);
		if (from != STORE_FROM_SYNC && newer(in->version, in->node, r->version, r->node) &&
		    !(in->wflags & W_IN_FEED)) {
			/* The owner listed an older record: ours goes to it and everyone. */
			feed_push(sh, in);
			STAT_INC(sh, refed);
		}
		return -ERR_STALE;
	}
	hlc_observe(sh, r->version);
	if (expired && in && !(in->flags & STORE_F_DELETED) && beating_here(sh, in)) {
		reassert(sh, in, r->version);
		return STORE_CHANGED;
	}
	if (!r->deleted) {
		if ((rc = pval_make(sh, &r->val, &p)) < 0)
			return rejected(sh, rc);
		p.flags |= expired;
	}

	if (r->deleted) {
		if (in == NULL) {
			/* Remember the delete so an older create arriving later is refused. */
			if ((rc = inst_create(sh, rk, NULL, r->version, r->node, &in)) < 0)
				return rejected(sh, rc);
			if (expired) {
				seq_begin(in);
				STORE_RELEASE(&in->flags, (uint8_t)(in->flags | expired));
				seq_end(in);
			}
			rc = STORE_SAME;
		} else if (in->flags & STORE_F_DELETED) {
			in->wflags &= (uint8_t)~W_FORGOTTEN;
			seq_begin(in);
			STORE_RELEASE(&in->flags, (uint8_t)(STORE_F_DELETED | expired));
			STORE_RELEASE(&in->version, r->version);
			STORE_RELEASE(&in->node, r->node);
			seq_end(in);
			/* A newer delete restarts the time it is remembered. */
			list_leave(sh, in);
			STORE_RELAXED(&in->beat_ms, now_ms(sh));
			list_enter(sh, in, W_LIST_DEAD);
			rc = STORE_SAME;
		} else {
			inst_kill(sh, in, r->version, r->node, expired);
			rc = STORE_CHANGED;
		}
	} else if (in == NULL) {
		if ((rc = inst_create(sh, rk, &p, r->version, r->node, &in)) < 0) {
			pval_drop(sh, &p);
			return rejected(sh, rc);
		}
		owned_track(sh, in);
		rc = STORE_CREATED;
	} else if (in->flags & STORE_F_DELETED) {
		if ((rc = inst_revive(sh, in, &p, r->version, r->node)) < 0) {
			pval_drop(sh, &p);
			return rejected(sh, rc);
		}
		STORE_RELAXED(&in->beat_ms, now_ms(sh));
		owned_track(sh, in);
		rc = STORE_CREATED;
	} else {
		inst_set(sh, in, &p, r->version, r->node);
		/* A tracked instance keeps its place; one turned non-ephemeral stops expiring. */
		if (!(in->flags & STORE_F_EPHEMERAL))
			list_leave(sh, in);
		rc = STORE_CHANGED;
	}
	STAT_INC(sh, applies);
	return rc;
}

/* Counts one examined FIFO head; always true, to sit inside the loop conditions. */
static inline bool checked(struct store_shard *sh)
{
	STAT_INC(sh, expiry_checks);
	return true;
}

/*
 * Expiry of another node's slot is that node's job: the instance leaves the
 * expiry lists here (a takeover's store_adopt tracks it again).
 */
static bool responsible(struct store_shard *sh, struct store_inst *in)
{
	const struct store_config *c = &sh->store->cfg;

	if (c->owns == NULL || c->owns(c->owns_ctx, in->slot))
		return true;
	list_leave(sh, in);
	STAT_INC(sh, expiry_released);
	return false;
}

/*
 * An expiry record's version: one step after the write it marks, not the
 * clock's now. It replaces that write everywhere, but any later write -
 * above all a client's deregister made on the other side of a partition
 * before the expiry - stays newer than it, so an expiry can never undo a
 * delete (it would bring the instance back, unhealthy) nor a newer update.
 */
static uint64_t expiry_version(struct store_shard *sh, const struct store_inst *in)
{
	hlc_observe(sh, in->version + 1);
	return in->version + 1;
}

uint32_t store_expire(struct store_shard *sh, uint32_t budget)
{
	return store_expire_at(sh, budget, now_ms(sh));
}

uint32_t store_expire_at(struct store_shard *sh, uint32_t budget, int64_t now)
{
	uint16_t node = sh->store->cfg.node_id;
	uint32_t done = 0;

	for (uint32_t i = 0; i < sh->timings_n && done < budget; i++) {
		struct timing_entry *te = &sh->timings[i];
		struct store_inst *in;

		while (done < budget && (in = te->healthy.head) && checked(sh) &&
		       in->beat_ms + te->t.timeout_ms <= now) {
			if (!responsible(sh, in)) {
				done++;
				continue;
			}
			fifo_unlink(&te->healthy, in);
			list_enter(sh, in, W_LIST_UNHEALTHY);
			if (in->flags & STORE_F_HEALTHY) {
				struct pval p = { in->weight_milli,
					          (uint8_t)((in->flags & ~STORE_F_HEALTHY) |
					                    STORE_F_EXPIRED),
					          in->timing, in->meta };

				intern_meta_ref(p.meta);
				inst_set(sh, in, &p, expiry_version(sh, in), node);
				feed_push(sh, in);
				STAT_INC(sh, expired_unhealthy);
			}
			done++;
		}
		while (done < budget && (in = te->unhealthy.head) && checked(sh) &&
		       in->beat_ms + te->t.delete_ms <= now) {
			if (!responsible(sh, in)) {
				done++;
				continue;
			}
			inst_kill(sh, in, expiry_version(sh, in), node, STORE_F_EXPIRED);
			feed_push(sh, in);
			STAT_INC(sh, expired_removed);
			done++;
		}
	}

	struct store_inst *in;

	while (done < budget && (in = sh->dead.head) && checked(sh) &&
	       in->beat_ms + sh->store->cfg.tombstone_ms <= now) {
		if (in->wflags & W_IN_FEED) {
			/* The feed still names it: keep it one more period. */
			fifo_unlink(&sh->dead, in);
			in->beat_ms = now;
			fifo_append(&sh->dead, in);
		} else {
			inst_purge(sh, in);
		}
		done++;
	}
	return done;
}
