/*
 * replica.c - the worker's half of Distro.
 *
 * The worker reaches Distro through the entry points of cluster/peer.h
 * alone, and everything it does for the cluster is here:
 *
 *   route     which member runs a write item: one relaxed owner read per
 *             item (view.h), decided once by the origin (cluster/xmsg.h);
 *             none, when this node takes no writes (no quorum, or it left)
 *   sync out  every --sync-window the shard's change feed (one entry per
 *             changed instance: the coalescing) is encoded into record
 *             batches of at most SYNC_MSG_BYTES for the peer thread, which
 *             sends each to every peer. While the worker's outbox holds a
 *             backlog (the peer thread is behind), records stay in the
 *             feed, which is bounded and coalesces, instead of piling up
 *             as messages.
 *   apply     a peer's records of this shard, last writer wins (XM_APPLY,
 *             and XM_LOAD for a load or merge, whose release tells the peer
 *             thread the load is applied)
 *   repair    the owner's copy of a slot (XM_REPAIR): its records are
 *             applied at once, last writer wins, and where ours is newer it
 *             goes back on the feed to the owner and everyone (a heal
 *             merges both sides; a tombstone is never undone by an older
 *             live record); then the instances of the slot in this shard
 *             that the owner did not list, and that are older than its
 *             listing, are forgotten - unless they beat here recently, in
 *             which case they are written again (store_forget)
 *   takeover  every instance of a slot this node gained gets a full fresh
 *             deadline (store_adopt: an unhealthy instance stays unhealthy)
 *
 * Bounds. Applies count against APPLY_BUDGET records per loop (worker.c).
 * A repair's pruning and a takeover walk only this worker's shard
 * (store_cursor_init_shard) and visit at most REPLICA_BUDGET instances per
 * loop, so a takeover of thousands of slots at 1M instances is spread over
 * loops instead of stalling the clients of this worker. Store writes are
 * never made inside an epoch section (store.h): keys are copied out of the
 * views into `scratch`, the section ends, then they are forgotten or
 * adopted. While a repair prunes, the worker takes nothing more from the
 * peer thread's ring (worker.c): a record that arrives after the owner's
 * listing is applied only after the pruning, so the pruning cannot drop
 * it - as when the pruning ran in one go.
 */
#include "server/worker_internal.h"

#include "cluster/peer.h"
#include "cluster/records.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/mem.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define SYNC_MSG_BYTES (256u << 10)

/* A repair whose records are applied and whose pruning is under way. */
struct repair_job {
	struct repair_job *next;
	uint16_t slot;
	uint64_t before; /* the owner's clock when it listed the slot */
	uint64_t *keys;  /* hashes of the listed keys, sorted */
	uint32_t nkeys;
	struct store_cursor cur; /* this shard's part of the slot */
};

/* A key copied out of a view: its names live in replica.scratch at off. */
struct saved_key {
	uint32_t off;
	uint32_t len[4];   /* ns, group, service, cluster */
	uint8_t null_mask; /* bit i: name i was absent (NULL), not empty */
	struct addr addr;
};

/* ---- route ---- */

uint16_t replica_route(struct worker *w, const struct addr *addr)
{
	struct peer *p = w->srv->peer;
	uint16_t owner = peer_owner(p, addr_slot(addr));

	/*
	 * A node that left the cluster, or that cannot reach a quorum, takes no
	 * writes it could not replicate: its client retries through a node of
	 * the majority, which then hears the beats it would otherwise expire.
	 */
	if (!peer_writable(p))
		return REPLICA_REFUSE;
	/* Another node's slot goes to its owner; nobody's (no READY member) runs here. */
	return owner != 0 && owner != peer_self_id(p) ? owner : 0;
}

/* ---- sync out ---- */

void replica_sync_out(struct worker *w)
{
	struct replica *rp = &w->replica;
	struct xrecords *m = NULL;
	int64_t now_us, now_wall_ms;
	uint32_t n;

	if (store_feed_len(w->shard) == 0)
		return;
	/* A precise clock: the coarse one ticks every few ms, longer than the window. */
	now_us = clock_mono_us();
	if (now_us - rp->last_sync_us < (int64_t)w->srv->cfg.sync_window_ms * 1000)
		return;
	if (outbox_backlog(&w->out) > 0)
		return; /* the peer thread (or a worker) is behind: the feed keeps them */
	rp->last_sync_us = now_us;
	now_wall_ms = clock_wall_ms(NULL);
	while (outbox_backlog(&w->out) == 0 &&
	       (n = store_feed_drain(w->shard, w->views, w->views_cap, NULL)) > 0) {
		for (uint32_t i = 0; i < n; i++) {
			struct proto_wr wr;

			if (m == NULL) {
				m = xmsg_records_new(XM_SYNC, SYNC_MSG_BYTES);
				if (m == NULL) {
					log_error(
					        "out of memory for sync: %u records left to verify",
					        n - i);
					return;
				}
			}
			proto_wr_init(&wr, m->data + m->len, m->cap - m->len);
			record_put(&wr, &w->views[i]);
			if (wr.overflow) { /* full: send it, put this record in the next one */
				assert(m->count > 0);
				m->sent_us = clock_mono_us();
				worker_send(w, w->srv->nworkers, m);
				m = NULL;
				i--;
				continue;
			}
			m->len = (uint32_t)(wr.p - m->data);
			m->count++;
			if (!(w->views[i].flags &
			      STORE_F_EXPIRED)) /* an expiry's version is its base's */
				WSTAT_ADD(w,
				          repl_stage[REPL_FEED][repl_stage_bucket(
				                  (now_wall_ms -
				                   (int64_t)(w->views[i].version >> 16)) *
				                  1000)],
				          1);
		}
	}
	if (m) {
		m->sent_us = clock_mono_us();
		worker_send(w, w->srv->nworkers, m);
	}
}

/* ---- apply ---- */

static uint64_t key_hash(const struct store_key *k)
{
	uint64_t h = XXH3_64bits_withSeed(k->svc.ns.p, k->svc.ns.len, k->svc.ns.len);

	h = XXH3_64bits_withSeed(k->svc.group.p, k->svc.group.len, h ^ k->svc.group.len);
	h = XXH3_64bits_withSeed(k->svc.service.p, k->svc.service.len, h ^ k->svc.service.len);
	h = XXH3_64bits_withSeed(k->cluster.p, k->cluster.len, h ^ k->cluster.len);
	return XXH3_64bits_withSeed(&k->addr, sizeof(k->addr), h);
}

static void key_of_view(const struct store_view *v, struct store_key *k)
{
	memset(k, 0, sizeof(*k));
	k->svc.ns = v->ns;
	k->svc.group = v->group;
	k->svc.service = v->service;
	k->cluster = v->cluster;
	k->addr = v->addr;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* How long a synced record took from its owner's clock to here (same-host clocks agree). */
static void repl_lag_record(struct worker *w, int64_t now_wall, uint64_t version)
{
	int64_t lag = now_wall - (int64_t)(version >> 16);
	int b = 0;

	while (b < WORKER_REPL_BUCKETS - 1 && lag > (int64_t)worker_repl_bounds_ms[b])
		b++;
	WSTAT_ADD(w, repl_count[b], 1);
}

/*
 * Applies records of our shard (last writer wins); keys gets their hashes if
 * not NULL. Decoded STORE_APPLY_BATCH_MAX at a time and applied as a batch
 * (store_apply_batch: each record's cache misses start a few records
 * ahead). The batch's metadata pairs share kv: a batch ends early when
 * fewer than PROTO_META_MAX places are left, so a record always fits.
 */
static uint32_t records_apply(struct worker *w, const struct xrecords *m, uint64_t *keys)
{
	static __thread struct store_kv kv[2 * PROTO_META_MAX];
	static __thread struct store_record recs[STORE_APPLY_BATCH_MAX];
	int rcs[STORE_APPLY_BATCH_MAX];
	struct proto_rd rd;
	uint32_t nkeys = 0, i = 0;
	bool synced = xmsg_kind(m) == XM_APPLY;
	/* Only a repair is the slot owner's listing (repair.c checks who sent it). */
	enum store_source src = synced                      ? STORE_FROM_SYNC
	                        : xmsg_kind(m) == XM_REPAIR ? STORE_FROM_OWNER
	                                                    : STORE_FROM_LOAD;
	int64_t now_wall = synced ? clock_wall_ms(NULL) : 0;

	if (synced && m->sent_us)
		WSTAT_ADD(w,
		          repl_stage[REPL_APPLY][repl_stage_bucket(clock_mono_us() - m->sent_us)],
		          m->count);

	proto_rd_init(&rd, m->data, m->len);
	while (i < m->count && !rd.err) {
		uint32_t n = 0, kv_used = 0;

		while (i < m->count && n < STORE_APPLY_BATCH_MAX &&
		       kv_used + PROTO_META_MAX <= 2 * PROTO_META_MAX) {
			struct store_record *r = &recs[n];

			record_get(&rd, r, kv + kv_used, PROTO_META_MAX);
			i++;
			if (rd.err) /* checked by the peer thread: cannot happen */
				break;
			/* The peer thread sent us only our shard's. */
			if (r->key.svc.service.p == NULL)
				continue;
			kv_used += r->val.meta_n;
			if (keys)
				keys[nkeys++] = key_hash(&r->key);
			n++;
		}
		/* A repair or a load: what we hold newer goes back out. */
		store_apply_batch(w->shard, recs, n, src, rcs);
		for (uint32_t k = 0; synced && k < n; k++)
			if (rcs[k] >= 0 && !recs[k].expired) /* an expiry's version is its base's */
				repl_lag_record(w, now_wall, recs[k].version);
	}
	return nkeys;
}

/* The owner's copy of a slot: applied now, pruned over the next loops (replica_step). */
static void repair_begin(struct worker *w, const struct xrecords *m)
{
	struct repair_job *j = mem_calloc(1, sizeof(*j));

	if (j)
		j->keys = mem_alloc(sizeof(j->keys[0]) * (m->count ? m->count : 1));
	if (j == NULL || j->keys == NULL) {
		/* Nothing applied, nothing forgotten: verify finds the slot again. */
		log_error("out of memory for a repair of slot %u: verify retries it", m->slot);
		if (j)
			mem_free(j);
		return;
	}
	j->nkeys = records_apply(w, m, j->keys);
	qsort(j->keys, j->nkeys, sizeof(j->keys[0]), u64_cmp);
	j->slot = m->slot;
	j->before = m->before;
	store_cursor_init_shard(&j->cur, m->slot, w->id);
	if (w->replica.repairs_tail)
		w->replica.repairs_tail->next = j;
	else
		w->replica.repairs = j;
	w->replica.repairs_tail = j;
}

/*
 * A load brings a whole copy, slot by slot, and slots hold about the same
 * number of records each (slot = hash of the address). After the first
 * LOAD_PRESIZE_SLOTS slots the total for this shard is estimated (records
 * so far x STORE_SLOTS / slots) and the instance table sized for it once,
 * instead of rebuilt at every doubling on the way (each rebuild touches
 * every record already loaded). Only for a dense load (at least
 * LOAD_PRESIZE_DENSITY records per slot, so that few slots are empty and
 * the estimate is not inflated); an estimate short of the truth costs one
 * more ordinary doubling at the end, nothing else.
 */
#define LOAD_PRESIZE_SLOTS   64
#define LOAD_PRESIZE_DENSITY 4

static void load_presize(struct worker *w, const struct xrecords *m)
{
	struct replica *rp = &w->replica;

	if (rp->load_presized)
		return;
	if (rp->load_slots == 0 || m->slot != rp->load_slot)
		rp->load_slots++;
	rp->load_slot = m->slot;
	rp->load_records += m->count;
	if (rp->load_slots < LOAD_PRESIZE_SLOTS)
		return;
	rp->load_presized = true;
	if (rp->load_records >= (uint64_t)LOAD_PRESIZE_DENSITY * rp->load_slots &&
	    store_reserve(w->shard, rp->load_records * STORE_SLOTS / rp->load_slots) < 0)
		log_warn("out of memory sizing the table for the load: it grows as it goes");
}

void replica_on_message(struct worker *w, void *msg)
{
	struct replica *rp = &w->replica;

	switch (xmsg_kind(msg)) {
	case XM_APPLY:
		records_apply(w, msg, NULL);
		break;
	case XM_LOAD:
		load_presize(w, msg);
		records_apply(w, msg, NULL);
		break;
	case XM_REPAIR:
		repair_begin(w, msg);
		break;
	case XM_TAKEOVER: {
		const struct xtakeover *t = msg;

		for (uint32_t i = 0; i < STORE_SLOTS / 64; i++)
			rp->takeover_due[i] |= t->bits[i];
		rp->takeover_word = 0;
		break;
	}
	default:
		log_error("unknown cross-core message kind %u", xmsg_kind(msg));
		abort();
	}
	xmsg_release(msg);
}

/* ---- budgeted walks: repair pruning and takeovers ---- */

/* Copies a view's key into scratch (names included); false without memory. */
static bool key_save(struct buf *scratch, const struct store_view *v)
{
	const struct store_str s[4] = { v->ns, v->group, v->service, v->cluster };
	struct saved_key sk = { .addr = v->addr };
	size_t names = 0;

	for (int i = 0; i < 4; i++)
		names += s[i].len;
	if (!buf_reserve(scratch, sizeof(sk) + names, (size_t)64 << 20))
		return false;
	sk.off = (uint32_t)(scratch->len + sizeof(sk));
	for (int i = 0; i < 4; i++) {
		sk.len[i] = s[i].len;
		if (s[i].p == NULL)
			sk.null_mask |= (uint8_t)(1u << i);
	}
	memcpy(scratch->p + scratch->len, &sk, sizeof(sk));
	scratch->len += sizeof(sk);
	for (int i = 0; i < 4; i++) {
		if (s[i].len)
			memcpy(scratch->p + scratch->len, s[i].p, s[i].len);
		scratch->len += s[i].len;
	}
	return true;
}

/* Calls fn for each key saved in scratch (outside any epoch section), then empties it. */
static uint32_t keys_each(struct worker *w,
                          void (*fn)(struct worker *w, const struct store_key *k, uint64_t arg),
                          uint64_t arg)
{
	struct buf *b = &w->replica.scratch;
	size_t off = 0;
	uint32_t n = 0;

	while (off < b->len) {
		struct saved_key sk;
		struct store_key k;
		const char *names;
		struct store_str *f[4] = { &k.svc.ns, &k.svc.group, &k.svc.service, &k.cluster };

		memcpy(&sk, b->p + off, sizeof(sk));
		names = (const char *)b->p + sk.off;
		memset(&k, 0, sizeof(k));
		for (int i = 0; i < 4; i++) {
			f[i]->p = (sk.null_mask & (1u << i)) ? NULL : names;
			f[i]->len = sk.len[i];
			names += sk.len[i];
		}
		k.addr = sk.addr;
		fn(w, &k, arg);
		n++;
		off = (size_t)((const uint8_t *)names - b->p);
	}
	buf_clear(b);
	return n;
}

static void forget_one(struct worker *w, const struct store_key *k, uint64_t before)
{
	int rc = store_forget(w->shard, k, before, true);

	if (rc == 0)
		WSTAT_INC(w, repair_forgotten);
}

static void adopt_one(struct worker *w, const struct store_key *k, uint64_t unused)
{
	(void)unused;
	if (store_adopt(w->shard, k) >= 0)
		WSTAT_INC(w, takeover_adopted);
}

/* Scans up to max of the cursor's views; saves the keys keep() selects. Returns views seen. */
static uint32_t walk(struct worker *w, struct store_cursor *c, uint32_t max,
                     const struct repair_job *j)
{
	uint32_t n;

	if (max > w->views_cap)
		max = w->views_cap;
	epoch_enter(w->rec);
	n = store_slot_scan(w->srv->store, c, w->views, max);
	for (uint32_t i = 0; i < n; i++) {
		const struct store_view *v = &w->views[i];

		if (j) { /* repair: only what the owner did not list, older than the listing */
			struct store_key k;
			uint64_t h;

			if (v->version >= j->before)
				continue;
			key_of_view(v, &k);
			h = key_hash(&k);
			if (bsearch(&h, j->keys, j->nkeys, sizeof(j->keys[0]), u64_cmp) != NULL)
				continue;
		}
		if (!key_save(&w->replica.scratch, v)) {
			/*
			 * No memory to keep the key: the cursor is already past
			 * these views, so walk the slot again from its start
			 * (adopting or forgetting twice is harmless; skipping is
			 * not).
			 */
			bool tombs = c->tombstones;

			store_cursor_init_shard(c, c->slot, w->id);
			c->tombstones = tombs;
			break;
		}
	}
	epoch_exit(w->rec);
	return n;
}

bool replica_prune(struct worker *w, uint32_t *budget_io)
{
	struct replica *rp = &w->replica;
	uint32_t budget = *budget_io;

	while (rp->repairs && budget > 0) {
		struct repair_job *j = rp->repairs;
		uint32_t seen = walk(w, &j->cur, budget, j);

		keys_each(w, forget_one, j->before);
		budget = seen >= budget ? 0 : budget - (seen ? seen : 1);
		if (!j->cur.done)
			continue;
		rp->repairs = j->next;
		if (rp->repairs == NULL)
			rp->repairs_tail = NULL;
		mem_free(j->keys);
		mem_free(j);
	}
	*budget_io = budget;
	return rp->repairs == NULL;
}

bool replica_step(struct worker *w)
{
	struct replica *rp = &w->replica;
	uint32_t budget = REPLICA_BUDGET;

	replica_prune(w, &budget);
	while (budget > 0) {
		uint32_t seen;

		if (!rp->takeover_active) {
			/*
			 * From the first word that may hold a bit: scanning from 0
			 * for every slot made a takeover of half the slots ~1M word
			 * reads (a quarter of fuzz_peer_session's time, where each
			 * input is a member coming and going).
			 */
			uint32_t word = rp->takeover_word;

			while (word < STORE_SLOTS / 64 && rp->takeover_due[word] == 0)
				word++;
			rp->takeover_word = word;
			if (word == STORE_SLOTS / 64)
				break;
			uint32_t slot =
			        word * 64 + (uint32_t)__builtin_ctzll(rp->takeover_due[word]);

			rp->takeover_due[word] &= rp->takeover_due[word] - 1;
			store_cursor_init_shard(&rp->takeover_cur, slot, w->id);
			rp->takeover_active = true;
		}
		seen = walk(w, &rp->takeover_cur, budget, NULL);
		keys_each(w, adopt_one, 0);
		budget = seen >= budget ? 0 : budget - (seen ? seen : 1);
		if (rp->takeover_cur.done)
			rp->takeover_active = false;
	}
	if (rp->repairs || rp->takeover_active)
		return true;
	for (uint32_t i = rp->takeover_word; i < STORE_SLOTS / 64; i++)
		if (rp->takeover_due[i])
			return true;
	return false;
}

void replica_free(struct worker *w)
{
	struct replica *rp = &w->replica;

	while (rp->repairs) {
		struct repair_job *j = rp->repairs;

		rp->repairs = j->next;
		mem_free(j->keys);
		mem_free(j);
	}
	rp->repairs_tail = NULL;
	buf_free(&rp->scratch);
}
