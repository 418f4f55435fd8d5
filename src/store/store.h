/*
 * store.h - the in-memory instance tables of one node.
 *
 * See store.c for the design essay and docs/store.md for the overview. In
 * short: the store is split into shards by hash of the service (namespace,
 * group, name), so a list touches one shard. Each shard has exactly one
 * writer thread; every thread may read every shard lock-free inside an epoch
 * section (epoch_enter/epoch_exit on its own record). Instances are also
 * grouped into STORE_SLOTS slots by hash of ip:port, the unit of cluster
 * responsibility; each slot has an order-independent checksum and a count.
 *
 * Writer functions take the shard and must be called only from its writer
 * thread, outside any epoch section of that thread (a writer that runs out
 * of memory for retirement batches waits for a grace period in place). Reader functions take the
 * store and must be called inside an epoch section; the views they fill stay valid until the
 * section ends.
 */
#ifndef DISTRO_STORE_STORE_H
#define DISTRO_STORE_STORE_H

#include "core/clock.h"
#include "core/epoch.h"
#include "store/types.h"

#include <roaring/roaring.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STORE_SHARDS_MAX    64
#define STORE_CLUSTERS_HARD 65535u
#define STORE_TIMINGS_HARD  255u

/* Return values of the writer operations (negative values are -ERR_* codes). */
enum store_result {
	STORE_SAME = 0,    /* nothing replicated changed */
	STORE_CHANGED = 1, /* an existing instance changed */
	STORE_CREATED = 2, /* a new (or resurrected) instance */
	STORE_HELD = 3,    /* a release kept the instance: another holder's lease runs */
};

/* Instance flags, replicated. */
enum store_flag {
	STORE_F_HEALTHY = 1u << 0,
	STORE_F_ENABLED = 1u << 1,
	STORE_F_EPHEMERAL = 1u << 2,
	STORE_F_DELETED = 1u << 3, /* a tombstone: kept to refuse older updates */
	/*
	 * Written by expiry (marked unhealthy or removed for missing beats),
	 * not by a client. A node that heard the instance beat recently
	 * overrides such a record instead of applying it (store_apply).
	 */
	STORE_F_EXPIRED = 1u << 4,
};

/* A replicated record from a peer: key, value and its version. */
struct store_record {
	struct store_key key;
	struct store_val val;
	uint64_t version; /* hybrid logical clock: wall ms << 16 | logical */
	uint16_t node;    /* writer's node id; breaks version ties */
	bool deleted;
	bool expired; /* written by expiry: STORE_F_EXPIRED */
};

struct store_meta; /* interned immutable metadata map; read with store_meta_* */

/* What a reader sees of one instance; strings borrowed from the store. */
struct store_view {
	struct store_str ns, group, service, cluster;
	struct addr addr;
	uint16_t slot;
	uint8_t flags; /* STORE_F_* */
	uint32_t weight_milli;
	struct store_timing timing;
	const struct store_meta *meta; /* NULL when empty */
	uint64_t version;
	uint16_t node;
	int64_t beat_ms; /* owner-local: last heartbeat (monotonic clock), not replicated */
};

struct store_list_info {
	uint32_t total;    /* instances that matched (may exceed what fit) */
	uint64_t revision; /* the service's change counter; 0 if the service is unknown */
};

/* Enumeration of one slot, resumable across epoch sections. */
struct store_cursor {
	uint32_t slot;
	uint32_t shard;
	uint32_t pos;
	uint32_t gen;
	bool done;
	bool tombstones; /* also list remembered deletes (set after store_cursor_init) */
	bool one_shard;  /* only shard `shard` (store_cursor_init_shard) */
};

struct store_limits {
	uint32_t name_bytes_max;        /* namespace, group, service, cluster: 256 */
	uint32_t meta_bytes_max;        /* sum of key and value bytes: 4096 */
	uint32_t meta_pairs_max;        /* 64 */
	uint32_t meta_key_bytes_max;    /* 256 */
	uint64_t instances_max;         /* live instances and tombstones of the node: 16M */
	uint32_t service_instances_max; /* live instances of one service: 100000 */
	uint32_t services_max;          /* services of the node: 1M */
	uint32_t clusters_max;          /* distinct clusters of one service: 1024 */
	uint32_t timings_max;           /* distinct heartbeat timings per shard: 64 */
	uint32_t timing_ms_min;         /* 1 */
	uint32_t timing_ms_max;         /* 24 h */
};

struct store_config {
	uint32_t shards; /* 1..STORE_SHARDS_MAX */
	uint16_t node_id;
	struct store_limits limits;
	struct store_timing timing; /* defaults: 5000, 15000, 30000 (Nacos) */
	uint32_t tombstone_ms;      /* how long a delete is remembered: 60000 (>= 1000) */
	uint32_t version_skew_ms;   /* refuse replicated versions this far past our clock: 60000 */
	struct clock clock;         /* zeroed: the real clocks */
	/*
	 * Cluster responsibility, or NULL (standalone: every slot is ours).
	 * store_expire only expires instances of slots for which owns() is
	 * true; an instance of another node's slot leaves the expiry lists
	 * when its turn comes (its owner expires it) until store_adopt tracks
	 * it again (a takeover). Called on the writer thread; must be cheap.
	 */
	bool (*owns)(void *ctx, uint32_t slot);
	void *owns_ctx;
	/*
	 * Keep the change feed (default true). A standalone server has nobody
	 * to replicate to and never drains it: with the feed on, every record
	 * would sit in it for good, 8 bytes each plus the feed's doublings.
	 * Off, store_feed_len is always 0 and nothing is pushed.
	 */
	bool feed;
};

/* Per-shard counters: declared once, summed by store_stats. */
#define STORE_STATS(X)                                                                             \
	X(instances)         /* live instances (gauge) */                                          \
	X(tombstones)        /* deleted instances remembered (gauge) */                            \
	X(services)          /* services with at least one record (gauge) */                       \
	X(service_records)   /* live records of reserved clusters, in instances too (gauge) */     \
	X(upserts)           /* local registers/updates accepted */                                \
	X(deletes)           /* local deregisters that found the instance */                       \
	X(touches)           /* heartbeats that found the instance */                              \
	X(applies)           /* replicated records applied */                                      \
	X(applies_stale)     /* replicated records refused as older */                             \
	X(expired_unhealthy) /* instances marked unhealthy by missing heartbeats */                \
	X(expired_removed)   /* instances removed by missing heartbeats */                         \
	X(tombstones_purged) /* tombstones forgotten after tombstone_ms */                         \
	X(expiry_checks)     /* FIFO heads examined by store_expire: the sweep's work */           \
	X(expiry_released)   /* instances of another node's slot left to their owner */            \
	X(forgotten)         /* replicas dropped by store_forget (repair) */                       \
	X(reasserted)        /* expiry records overridden: the instance beat here recently */      \
	X(refed)             /* newer records sent back to the owner a repair listed older */      \
	X(blind_deletes)     /* deregisters of unknown instances remembered as tombstones */       \
	X(pause_credits)     /* instances whose deadline moved by a stall of this node */          \
	X(leases)            /* instances with at least one holder's lease (gauge) */              \
	X(lease_refused)     /* leases not recorded: the shard's lease table at its bound */       \
	X(lease_evicted)     /* holders displaced from an instance with LEASE_HOLDERS_MAX */       \
	X(releases_kept)     /* releases that kept the instance: another holder's lease runs */    \
	X(rejected)          /* writes refused with an error */

struct store_stats {
#define STORE_STAT_FIELD(name) uint64_t name;
	STORE_STATS(STORE_STAT_FIELD)
#undef STORE_STAT_FIELD
};

struct store;
struct store_shard;

void store_config_default(struct store_config *c);

/* Creates a store; 0 or -ERR_INVAL (bad config) / -ERR_NOMEM. */
int store_create(const struct store_config *c, struct store **out);

/* Frees everything. No reader may be inside a section and no writer running. */
void store_destroy(struct store *s);

/*
 * Empties the store: afterwards it is what store_create made with the same
 * config (no instance, tombstone, service, string, lease, feed entry,
 * timing but the default, clock or counter), keeping the allocations that
 * do not depend on the contents (the shards, their slot arrays), so a
 * fuzzer starts every input from a new store without building one. As for
 * store_destroy, no reader may be inside a section and no writer running;
 * every record registered with store_epoch() is forgotten (register again).
 * 0, or -ERR_NOMEM: then the store may only be destroyed.
 * Cost: O(contents) plus clearing 12 bytes per slot per shard.
 */
int store_reset(struct store *s);

struct store_shard *store_shard(struct store *s, uint32_t i);
uint32_t store_shards(const struct store *s);

/* The epoch domain readers register with (epoch_register). */
struct epoch *store_epoch(struct store *s);

/*
 * A shard's own epoch record, registered for its writer thread. The writer
 * may also use it to read (epoch_enter/exit) any shard.
 */
struct epoch_rec *store_shard_rec(struct store_shard *sh);

/* The shard that holds a service. Pure function of the names; O(name bytes). */
uint32_t store_shard_of(const struct store *s, const struct store_svc_key *k);

/* Metadata of a view. */
uint32_t store_meta_count(const struct store_meta *m);
struct store_kv store_meta_at(const struct store_meta *m, uint32_t i);

/* A store_val with the defaults: weight 1, healthy, enabled, ephemeral, no metadata. */
void store_val_default(struct store_val *v);

/* ---- writer operations (the shard's writer thread only) ---- */

/*
 * Registers or updates an instance and counts as a heartbeat. Returns
 * STORE_CREATED, STORE_CHANGED or STORE_SAME (replicated state untouched), or
 * a negative -ERR_* for a bad field, a bound or a key of another shard. A
 * change gets a new version and goes on the change feed. O(1) plus metadata.
 */
int store_upsert(struct store_shard *sh, const struct store_key *k, const struct store_val *v);

/*
 * Deregisters: the instance becomes a tombstone. 0, or -ERR_NOT_FOUND. O(1).
 * An instance this shard never saw (or already deleted) is remembered as a
 * new tombstone anyway and put on the feed, still -ERR_NOT_FOUND: in a
 * cluster the registration may live on a node this one has not heard from,
 * and the delete must reach it.
 */
int store_delete(struct store_shard *sh, const struct store_key *k);

/*
 * Is the key held as a tombstone a client's deregister wrote (not expiry)
 * less than within_ms ago? A heartbeat does not re-create such an instance
 * (ops.c): a beat still in flight when its client deregistered must not
 * bring it back. Later beats do (as Nacos: a live client's beats re-create
 * an instance an operator deregistered); expiry's tombstones never count -
 * a beat after an expiry is the client alive.
 */
bool store_deleted_by_client(struct store_shard *sh, const struct store_key *k, int64_t within_ms);

/*
 * Leases (store/lease.c): `holder` (a gRPC connection of some node, never
 * 0) keeps the live instance k for 2 x renew_ms + LEASE_MARGIN_MS from
 * now; a later store_hold of the same holder renews it. Called after the
 * write that registers or renews the instance (ops.c: HOLD, RENEW). 0,
 * -ERR_NOT_FOUND (no live instance), -ERR_INVAL, or -ERR_LIMIT_LEASES /
 * -ERR_NOMEM (not recorded; the instance is unchanged). O(1) expected.
 */
int store_hold(struct store_shard *sh, const struct store_key *k, uint64_t holder,
               uint32_t renew_ms);

/*
 * holder lets go of k: if another holder's lease still runs, the instance
 * stays and STORE_HELD is returned (nothing replicated changes, no
 * tombstone: store_deleted_by_client stays false); otherwise it is
 * deleted as by store_delete (whose result this returns). A DEREGISTER
 * (store_delete) deletes whatever the leases, and every death of an
 * instance drops its leases. O(1) expected.
 */
int store_release(struct store_shard *sh, const struct store_key *k, uint64_t holder);

/*
 * Heartbeat: sets the owner-local beat time only, and starts expiry tracking
 * if the instance was not tracked (a takeover gives a full fresh deadline).
 * STORE_CHANGED if the instance was unhealthy and is healthy again,
 * STORE_SAME otherwise, -ERR_NOT_FOUND if absent or deleted. O(1).
 */
int store_touch(struct store_shard *sh, const struct store_key *k);

/*
 * Applies a replicated record: last writer wins by (version, node); a record
 * not newer than the stored one (live or tombstone) is refused with
 * -ERR_STALE, so a late update never resurrects a newer delete. A delete of an
 * unknown key is remembered as a tombstone. Applied instances are not tracked
 * for expiry (their owner does that) until store_touch or store_adopt.
 *
 * One exception, for records written by expiry (STORE_F_EXPIRED): if this
 * node tracks the instance and heard it beat within its healthy timeout,
 * the expiry was made by a node that did not hear those beats (a wrong
 * takeover, a heal), and the instance is alive. The record is not applied:
 * the instance is written again here with a version newer than it
 * (STORE_CHANGED, counted as `reasserted`), and that write replicates and
 * wins everywhere. A client's own deregister carries no such flag and
 * always wins by its version.
 */
int store_apply(struct store_shard *sh, const struct store_record *r);

/* Records store_apply_batch takes at once at most. */
#define STORE_APPLY_BATCH_MAX 64

/* Where replicated records come from: what last-writer-wins does besides. */
enum store_source {
	STORE_FROM_SYNC,  /* a peer's changes (store_apply) */
	STORE_FROM_LOAD,  /* a load or merge from any READY peer: ours back if newer */
	STORE_FROM_OWNER, /* the slot owner's listing (store_repair_apply): also takes back a
	                     forgotten copy */
};

/*
 * n (<= STORE_APPLY_BATCH_MAX) records, each applied as store_apply
 * (STORE_FROM_SYNC) or store_repair_apply (STORE_FROM_OWNER) would, in
 * order; rc[i] gets record i's result. The same work, with each record's cache misses (its service,
 * the table buckets, the service's array) started a few records ahead of
 * its apply, so they overlap instead of following one another: for loads
 * and sync batches, where nothing is in cache.
 */
void store_apply_batch(struct store_shard *sh, const struct store_record *r, uint32_t n,
                       enum store_source from, int *rc);

/*
 * Takeover: this node now owns the instance's slot. It gets a full fresh
 * deadline in its present state (an unhealthy one stays unhealthy and is
 * removed delete_ms from now; a healthy one turns unhealthy timeout_ms from
 * now): nothing replicated changes, so a takeover never advertises a dead
 * instance as healthy. STORE_SAME, or -ERR_NOT_FOUND.
 */
int store_adopt(struct store_shard *sh, const struct store_key *k);

/*
 * Repair: a record of the slot owner's listing. Last writer wins, as
 * store_apply - the owner is not trusted over a newer record: a tombstone
 * is never replaced by an older live record (a deregister acknowledged on
 * the other side of a cut link stands), nor a newer write by an older
 * one. When ours is the newer, it goes back on the feed (`refed`), so the
 * owner and every other replica get it: a heal merges what was written on
 * either side instead of dropping one side.
 */
int store_repair_apply(struct store_shard *sh, const struct store_record *r);

/*
 * Repair: the slot's owner has no such instance, so this replica drops it -
 * if its version is older than `before` (the owner's clock when it listed
 * the slot: anything newer reached us after that list and is kept). The
 * instance becomes a tombstone keeping its version (the same or an older
 * copy arriving later in a sync is refused; the same copy in a later
 * listing of the owner, which got it after all, is taken back) and nothing
 * goes on the feed. 0, -ERR_NOT_FOUND, or
 * -ERR_STALE when it is not older than `before`.
 *
 * With `keep_beating`, an instance this node tracks and heard beat within
 * its healthy timeout is not dropped but written again (STORE_CHANGED,
 * `reasserted`): it is alive here, and its owner missed it (it was
 * registered on the other side of a partition).
 */
int store_forget(struct store_shard *sh, const struct store_key *k, uint64_t before,
                 bool keep_beating);

/*
 * This shard's loop stood still for `ms` (a SIGSTOP, a VM freeze, a stall):
 * heartbeats could not arrive meanwhile, so no instance tracked now may be
 * expired for that time. Every tracked deadline moves `ms` later. O(tracked
 * instances); once per stall. Returns how many moved.
 */
uint32_t store_pause_credit(struct store_shard *sh, int64_t ms);

uint64_t store_version_now(struct store_shard *sh);

/*
 * Marks unhealthy / removes instances whose heartbeats stopped, and forgets
 * tombstones older than tombstone_ms. Does at most `budget` actions; returns
 * how many it did. Cost O(actions), never O(instances).
 */
uint32_t store_expire(struct store_shard *sh, uint32_t budget);

/*
 * store_expire judged at `now` (the store's monotonic clock) instead of a
 * reading of its own: the caller checked, at that same reading, that no
 * stall is uncredited and that its view of the cluster is fresh, so a stop
 * that lands inside expiry cannot make it judge later deadlines by a
 * check made before it (server/worker.c).
 */
uint32_t store_expire_at(struct store_shard *sh, uint32_t budget, int64_t now);

/* Reclaims memory retired by earlier writes when no reader can hold it. Once per loop. */
void store_poll(struct store_shard *sh);

/*
 * Sizes the shard's instance table for `records` records in all (capped at
 * limits.instances_max), so that creating them does not rebuild it once
 * per doubling: a bulk load whose size is estimated ahead rebuilds once.
 * Nothing if the table is large enough. 0 or -ERR_NOMEM (then growth
 * happens as usual). Writer thread; O(records held) when it rebuilds.
 */
int store_reserve(struct store_shard *sh, uint64_t records);

/*
 * Change feed: copies up to max changed instances (coalesced: one entry per
 * key however often it changed, deletes included with STORE_F_DELETED) in
 * change order and removes them from the feed. If slots is not NULL, adds
 * the slot of each to it. The views stay valid until the next write to this
 * shard. Returns the count.
 */
uint32_t store_feed_drain(struct store_shard *sh, struct store_view *out, uint32_t max,
                          roaring_bitmap_t *slots);

/* Entries waiting in the feed. */
uint32_t store_feed_len(const struct store_shard *sh);

/*
 * Reserved clusters. A cluster name that starts with '@' is the store's,
 * not a client's (Nacos cluster names match [0-9a-zA-Z-_]+): its records
 * are stored, versioned, replicated, checksummed and repaired like any
 * other, found by store_get, but never listed (store_list skips them) and
 * counted apart (the service_records gauge). The one in use is
 * STORE_SERVICE_CLUSTER: the service record, one per service, whose value
 * is the service's own state (the Nacos API keeps protectThreshold in its
 * weight and the service metadata in its metadata; docs/nacos.md).
 */
#define STORE_SERVICE_CLUSTER "@service"

/*
 * The key of a service's record: the service, STORE_SERVICE_CLUSTER, and
 * the address [100::<h>]:1, h the 64-bit hash of the service's names
 * (RFC 6666's discard-only prefix: no host has it, and distrod never
 * connects to a registered address anyway). The hash spreads the records
 * of many services over the slots, so their owners share the writes. A
 * wire constant like the slot hash: every node must derive the same key.
 * Strings of out borrow from sk. 0, or -ERR_* for a bad name. O(name bytes).
 */
int store_service_key(const struct store *s, const struct store_svc_key *sk, struct store_key *out);

/* ---- reader operations (inside an epoch section, any thread) ---- */

/* The live instance with this key: 0, or -ERR_NOT_FOUND. O(1). */
int store_get(struct store *s, const struct store_key *k, struct store_view *out);

/*
 * Instances of a service passing the filter, up to max of them into out;
 * records of reserved clusters never pass. Returns how many were written,
 * or a negative -ERR_* for a bad name; info (optional) gets the total
 * matched and the revision (which a service record's changes move too).
 * O(instances of the service).
 */
int store_list(struct store *s, const struct store_svc_key *k, const struct store_filter *f,
               struct store_view *out, uint32_t max, struct store_list_info *info);

/*
 * A service's change counter: it moves on every change of its instance list
 * and never repeats, also across the service's deletion and re-creation.
 * 0 when the service does not exist. O(1).
 */
uint64_t store_revision(struct store *s, const struct store_svc_key *k);

/* A service as store_services sees it; strings borrowed from the store. */
struct store_svc_view {
	struct store_str ns, group, service;
	uint32_t live;     /* live records, the service record too (a relaxed read) */
	uint64_t revision; /* store_revision of the service */
};

/*
 * Calls fn for every service with live records (a service record alone
 * counts: a service can exist without instances) in namespace ns (and
 * group, when not NULL), shard by shard in no particular order, until fn
 * returns false. Returns how many services were passed to fn. O(services of
 * the node): for listings, not for a hot path.
 */
uint32_t store_services(struct store *s, struct store_str ns, const struct store_str *group,
                        bool (*fn)(void *ctx, const struct store_svc_view *v), void *ctx);

/* The checksum (order-independent sum of record hashes) and count of a slot. */
uint64_t store_slot_checksum(struct store *s, uint32_t slot, uint32_t *count);

/* The same over slots [lo, hi). */
uint64_t store_range_checksum(struct store *s, uint32_t lo, uint32_t hi, uint64_t *count);

/* Adds every slot holding at least one live instance to out. */
void store_slots_nonempty(struct store *s, roaring_bitmap_t *out);

/*
 * Hash of one record's replicated state, computed from its strings alone:
 * the from-scratch counterpart of the incremental checksums.
 */
uint64_t store_view_hash(const struct store_view *v);

void store_cursor_init(struct store_cursor *c, uint32_t slot);

/*
 * A cursor over one shard's part of a slot: the shard's writer walks only
 * its own rows (a takeover, a repair), never re-hashing other shards' rows
 * to skip them.
 */
void store_cursor_init_shard(struct store_cursor *c, uint32_t slot, uint32_t shard);

/*
 * Next chunk of a slot's live instances: up to max views; sets c->done after
 * the last. A resize between chunks restarts the affected shard's part, so an
 * instance may come twice but a live one is never skipped.
 */
uint32_t store_slot_scan(struct store *s, struct store_cursor *c, struct store_view *out,
                         uint32_t max);

/* Sums every shard's counters (relaxed reads). */
void store_stats(struct store *s, struct store_stats *out);

#ifdef __cplusplus
}
#endif

#endif
