/*
 * lease.h - a shard's leases: which holders keep an instance (store's own).
 *
 * See lease.c for the design. Writer thread of the shard only; readers
 * never look at leases (they are not replicated and change no view).
 */
#ifndef DISTRO_STORE_LEASE_H
#define DISTRO_STORE_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#define LEASE_HOLDERS_MAX 8    /* holders remembered per instance */
#define LEASE_INLINE      2    /* of them kept in the entry itself (no allocation) */
#define LEASE_MARGIN_MS   2000 /* a lease lasts 2 x its holder's renew interval + this */

struct store_inst;

struct lease_holder {
	uint64_t holder;
	int64_t until_ms; /* the store's monotonic clock: alive while now < until_ms */
};

/* One instance's holders: in[] while they fit, else more[] (LEASE_HOLDERS_MAX). */
struct lease {
	struct store_inst *inst; /* NULL: an empty slot of the table */
	struct lease_holder *more;
	uint32_t n;
	struct lease_holder in[LEASE_INLINE];
};

/* Open addressing by instance address, linear probing, at most half full. */
struct lease_table {
	struct lease *e;
	uint32_t bits; /* 0: no array yet (a shard without leases holds nothing) */
	uint32_t n;
	uint32_t max; /* entries at most: the bound */
};

/* Outcome of lease_hold beyond its return value. */
struct lease_note {
	bool added;   /* a new holder (not a refresh) */
	bool evicted; /* the instance had LEASE_HOLDERS_MAX: the longest unrenewed one went */
	bool created; /* the instance got its entry */
};

void lease_table_init(struct lease_table *t, uint32_t max);
void lease_table_destroy(struct lease_table *t);

/* The instance's entry, or NULL. O(1) expected. */
struct lease *lease_find(const struct lease_table *t, const struct store_inst *in);

/*
 * Adds or refreshes holder on in until until_ms; holders past their time
 * are dropped on the way. 0, -ERR_LIMIT_LEASES (the table is at its bound,
 * nothing recorded) or -ERR_NOMEM. Allocates only for a new entry that
 * grows the array or a third holder.
 */
int lease_hold(struct lease_table *t, struct store_inst *in, uint64_t holder, int64_t until_ms,
               int64_t now_ms, struct lease_note *note);

/*
 * holder lets go of in: removed from its entry. True when another holder's
 * lease still runs at now_ms (the instance stays); false when none does,
 * and then the entry is gone. An instance without an entry: false.
 */
bool lease_release(struct lease_table *t, struct store_inst *in, uint64_t holder, int64_t now_ms);

/* Forgets in's entry (the instance died or is freed). Nothing if it has none. */
void lease_drop(struct lease_table *t, const struct store_inst *in);

/*
 * This node's loop stood still for ms (a SIGSTOP, a VM pause): every
 * holder's lease runs ms longer, as the instances' expiry deadlines do
 * (store_pause_credit). Holders could not renew while this node did not
 * listen, so the pause must not count against them. Returns the holders
 * moved.
 */
uint32_t lease_pause_credit(struct lease_table *t, int64_t ms);

#endif
