/*
 * store_internal.h - the store's structures, shared by its .c files only.
 * The rules that govern them are in the essay at the top of store.c.
 */
#ifndef DISTRO_STORE_INTERNAL_H
#define DISTRO_STORE_INTERNAL_H

#include "core/atomic.h"
#include "core/pool.h"
#include "store/intern.h"
#include "store/lease.h"
#include "store/store.h"
#include "store/svc.h"
#include "store/table.h"

/* Writer-only bits of an instance (store_inst.wflags). */
enum {
	W_LIST_NONE = 0,      /* not tracked for expiry */
	W_LIST_HEALTHY = 1,   /* in its timing's healthy FIFO */
	W_LIST_UNHEALTHY = 2, /* in its timing's unhealthy FIFO */
	W_LIST_DEAD = 3,      /* a tombstone, in the shard's dead FIFO */
	W_LIST_MASK = 3,
	W_IN_FEED = 1u << 2,
	/*
	 * A heartbeat or a client's write reached this node since the instance
	 * was last tracked here: its beat time is a beat heard, not a deadline
	 * given by a takeover or a stall (store.c: beating_here).
	 */
	W_HEARD = 1u << 3,
	/* Some holder has a lease on it: it has an entry in the shard's lease table (lease.c). */
	W_LEASED = 1u << 4,
	/*
	 * A tombstone left by store_forget (the owner's listing lacked it),
	 * keeping the live copy's version: the same copy in the owner's
	 * listing later is taken back (apply.c: relisted). Cleared by any
	 * change of the record.
	 */
	W_FORGOTTEN = 1u << 5,
};

/*
 * The flags a slot checksum covers. STORE_F_EXPIRED is replicated too but
 * says who wrote a record, not what it is: left out, so a node of an
 * earlier version (which drops the bit) does not differ from us.
 */
#define REPLICATED_FLAGS (STORE_F_HEALTHY | STORE_F_ENABLED | STORE_F_EPHEMERAL | STORE_F_DELETED)

/*
 * One instance: 88 bytes. Key fields are immutable while the record is
 * reachable; replicated fields change under the seqlock `seq`; the rest is
 * the writer's own.
 */
struct store_inst {
	uint32_t seq;          /* seqlock: odd while the writer changes the fields below it */
	uint32_t weight_milli; /* replicated */
	struct store_svc *svc; /* key */
	uint8_t ip[16];        /* key */
	uint16_t port;         /* key */
	uint16_t cluster;      /* key: index into svc->clusters */
	uint16_t slot;         /* derived from ip, port */
	uint16_t node;         /* replicated: node that wrote `version` */
	uint64_t version;      /* replicated */
	const struct store_meta *meta;  /* replicated; NULL when empty */
	int64_t beat_ms;                /* owner-local (relaxed atomic) */
	struct store_inst *prev, *next; /* writer: expiry FIFO links */
	uint32_t svc_pos;               /* writer: index in svc->arr while live */
	uint8_t flags;                  /* replicated STORE_F_* */
	uint8_t timing;                 /* replicated through the shard's timing table */
	uint8_t wflags;                 /* writer: W_* */
	uint8_t pad;
};

struct fifo {
	struct store_inst *head, *tail;
};

/* States of a timing entry. */
enum { T_FREE = 0, T_USED = 1, T_COOLING = 2 };

struct timing_entry {
	struct store_timing t;
	uint32_t users;        /* live instances with this timing */
	uint32_t cool_gen;     /* matches a pending release to its cooling */
	uint8_t state;         /* T_* */
	struct fifo healthy;   /* ordered by beat_ms */
	struct fifo unhealthy; /* ordered by beat_ms */
};

struct store_shard {
	struct store *store;
	uint32_t index;
	struct epoch_rec rec;
	struct pool insts;
	struct intern intern;
	struct table svcs;  /* by service hash */
	struct table table; /* instances by (slot << 50 | key hash >> 14) */
	uint64_t hlc;       /* last version stamped or seen */
	struct timing_entry *timings;
	uint32_t timings_n;
	struct fifo dead; /* tombstones, ordered by time of death (beat_ms) */
	struct store_inst **feed;
	uint32_t feed_head, feed_n, feed_cap; /* waiting: feed[feed_head..feed_n) */
	uint64_t *slot_sum;                   /* per slot, relaxed atomics */
	uint32_t *slot_count;                 /* per slot, relaxed atomics */
	struct lease_table leases;            /* holders of leased instances (writer only) */
	struct store_stats stats;
} __attribute__((aligned(CACHELINE_BYTES)));

struct store {
	struct store_config cfg;
	struct epoch epoch;
	uint64_t records; /* live + tombstones, all shards (atomic) */
	uint64_t services;
	uint32_t nshards;
	struct store_shard *shards;
	struct store_str def_ns, def_group, def_cluster;
	uint64_t def_cluster_hash;
};

#define STAT_ADD(sh, name, d) STORE_RELAXED(&(sh)->stats.name, (sh)->stats.name + (d))
#define STAT_INC(sh, name)    STAT_ADD(sh, name, 1)

/* Content hash of a service's names, identical on every node. */
uint64_t svc_hash_of(const char *ns, uint32_t ns_len, const char *group, uint32_t group_len,
                     const char *name, uint32_t name_len);

/* Table hash of an instance: slot in the top STORE_SLOT_BITS bits. */
uint64_t inst_table_hash(uint64_t svc_hash, uint64_t cluster_hash, uint64_t slot_hash);

/* Hash of the replicated state that goes into the slot checksum. */
uint64_t record_hash(uint64_t svc_hash, uint64_t cluster_hash, const uint8_t ip[16], uint16_t port,
                     uint32_t weight_milli, uint8_t flags, const struct store_timing *t,
                     uint64_t meta_hash, uint64_t version, uint16_t node);

/* Reads an instance consistently into a view (seqlock). */
void inst_read(const struct store_shard *sh, const struct store_inst *in, struct store_view *v);

/* Resolves the default for an absent name. */
struct store_str name_or_default(struct store_str s, struct store_str def);

/* Validates a name; `cluster` also refuses ',' (Nacos lists clusters comma-separated). */
int name_check(const struct store *s, struct store_str n, bool cluster);

/* A key with defaults applied, validated and hashed. */
struct rkey {
	struct store_str ns, group, service, cluster;
	uint64_t svc_hash, cluster_hash, slot_hash, hash;
	uint16_t slot;
	const struct addr *addr;
};

int svc_key_resolve(const struct store *s, const struct store_svc_key *k, struct rkey *rk);
int key_resolve(const struct store *s, const struct store_key *k, struct rkey *rk);
uint32_t shard_of_hash(const struct store *s, uint64_t svc_hash);

/* Reader-safe lookup of a resolved key; NULL when absent. */
struct store_inst *inst_find(const struct store_shard *sh, const struct rkey *rk,
                             const struct store_svc **svc_out);

/*
 * The writer's primitives (store.c), shared with apply.c: the shard's
 * clock, its FIFOs and feed, and the state transitions of an instance.
 * Writer thread of the shard only.
 */
/*
 * Seqlock writer side. Fields are stored with release and read with acquire
 * (plain moves on x86): a reader that sees any new field value then sees the
 * odd sequence number, without standalone fences (which TSan cannot model).
 */
static inline void seq_begin(struct store_inst *in)
{
	STORE_RELAXED(&in->seq, in->seq + 1);
}

static inline void seq_end(struct store_inst *in)
{
	STORE_RELEASE(&in->seq, in->seq + 1);
}

/* The replicated value of a write, validated and resolved. Holds a meta reference. */
struct pval {
	uint32_t weight_milli;
	uint8_t flags;
	uint8_t timing;
	const struct store_meta *meta;
};

uint64_t hlc_next(struct store_shard *sh);
void hlc_observe(struct store_shard *sh, uint64_t version);
int64_t now_ms(const struct store_shard *sh);
void fifo_unlink(struct fifo *f, struct store_inst *in);
void fifo_append(struct fifo *f, struct store_inst *in);
void list_leave(struct store_shard *sh, struct store_inst *in);
void list_enter(struct store_shard *sh, struct store_inst *in, uint8_t list);
void track(struct store_shard *sh, struct store_inst *in, int64_t now);
void feed_push(struct store_shard *sh, struct store_inst *in);
void inst_set(struct store_shard *sh, struct store_inst *in, const struct pval *p, uint64_t version,
              uint16_t node);
void inst_kill(struct store_shard *sh, struct store_inst *in, uint64_t version, uint16_t node,
               uint8_t expired);
int inst_revive(struct store_shard *sh, struct store_inst *in, const struct pval *p,
                uint64_t version, uint16_t node);
int inst_create(struct store_shard *sh, const struct rkey *rk, const struct pval *p,
                uint64_t version, uint16_t node, struct store_inst **out);
void inst_purge(struct store_shard *sh, struct store_inst *in);
/* Drops a W_LEASED instance's leases (it died). lease.c. */
void inst_lease_drop(struct store_shard *sh, struct store_inst *in);
int resolve_for_write(struct store_shard *sh, const struct store_key *k, struct rkey *rk);
int rejected(struct store_shard *sh, int rc);
int live_find(struct store_shard *sh, const struct store_key *k, struct store_inst **out);
int pval_make(struct store_shard *sh, const struct store_val *v, struct pval *p);
void pval_drop(struct store_shard *sh, const struct pval *p);

#endif
