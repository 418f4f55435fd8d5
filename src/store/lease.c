/*
 * lease.c - which holders keep an instance alive, at the instance's owner.
 *
 * A Nacos 2.x client's instance lives as long as the gRPC connection that
 * registered it; Nacos keeps one publication per connection, so an
 * instance two connections registered goes only when the last of them
 * goes. distrod keeps one record per instance (the key decides it), so the
 * owner of the record remembers who holds it: a lease per holder (a gRPC
 * connection anywhere in the cluster, named by a u64 id unique in the
 * cluster, docs/distro.md), renewed by the holder's RENEW items and given
 * back by its RELEASE. A release deletes the record only when no other
 * holder's lease still runs; a holder that vanished without a release (its
 * node died) stops renewing and its lease runs out after 2 x its renew
 * interval + LEASE_MARGIN_MS, so it never keeps an instance by itself.
 *
 * Who owns the data: the shard's writer thread, alone. Leases are not
 * replicated and not read by readers: they only decide what a RELEASE does
 * on the owner. A slot that moves to another owner starts without leases
 * there, so a release there deletes as a DEREGISTER does (the renewals of
 * the remaining holders re-create the instance after --peer-down, as
 * before leases existed); the next renewals rebuild the leases.
 *
 * Cost: nothing for an instance without a lease - no byte in store_inst
 * (a writer flag bit, W_LEASED, says "look in the table"), no lookup on
 * any path but the leased ops and the death of a leased instance. The
 * table is a side table per shard: open addressing on the instance's
 * address, linear probing, at most half full, backward-shift deletion (no
 * tombstones); an entry is 56 bytes and keeps LEASE_INLINE holders in
 * place, up to LEASE_HOLDERS_MAX in one array allocated on the third.
 *
 * Bounds: LEASE_HOLDERS_MAX holders per instance (a new holder past it
 * takes the place of the one renewed longest ago, counted
 * `lease_evicted`: that one is re-added by its next renewal, and a release
 * keeps the instance while any recorded lease runs); at most
 * lease_table.max entries per shard (instances_max / shards, at least
 * 1024: every live instance of the shard could have one). Past that a
 * RENEW or HOLD still writes and keeps the instance alive, without a lease
 * (`lease_refused`), and that instance's releases delete it, as before.
 *
 * Lifetime: an entry goes when its last lease is released, when the
 * instance dies (deregistered, expired, deleted by a replicated record or
 * a repair: inst_kill) and when the shard is destroyed.
 */
#include "store/lease.h"

#include "core/err.h"
#include "core/mem.h"
#include "store/store_internal.h"

#include <string.h>

#define LEASE_BITS_MIN 6

static uint32_t home_of(const struct store_inst *in, uint32_t bits)
{
	uint64_t h = ((uint64_t)(uintptr_t)in >> 3) * 0x9e3779b97f4a7c15ull;

	return (uint32_t)(h >> (64 - bits));
}

void lease_table_init(struct lease_table *t, uint32_t max)
{
	memset(t, 0, sizeof(*t));
	t->max = max;
}

void lease_table_destroy(struct lease_table *t)
{
	for (uint64_t i = 0; t->e && i < ((uint64_t)1 << t->bits); i++)
		mem_free(t->e[i].more);
	mem_free(t->e);
	memset(t, 0, sizeof(*t));
}

static struct lease_holder *holders(struct lease *l)
{
	return l->more ? l->more : l->in;
}

struct lease *lease_find(const struct lease_table *t, const struct store_inst *in)
{
	uint32_t mask, i;

	if (t->n == 0)
		return NULL;
	mask = (1u << t->bits) - 1;
	for (i = home_of(in, t->bits);; i = (i + 1) & mask) {
		if (t->e[i].inst == in)
			return &t->e[i];
		if (t->e[i].inst == NULL)
			return NULL;
	}
}

/* Places an entry (not present) in an array with room. */
static struct lease *place(struct lease *e, uint32_t bits, const struct lease *l)
{
	uint32_t mask = (1u << bits) - 1, i;

	for (i = home_of(l->inst, bits); e[i].inst != NULL; i = (i + 1) & mask)
		;
	e[i] = *l;
	return &e[i];
}

static int grow(struct lease_table *t)
{
	uint32_t bits = t->bits ? t->bits + 1 : LEASE_BITS_MIN;
	struct lease *e = mem_calloc((size_t)1 << bits, sizeof(*e));

	if (e == NULL)
		return -ERR_NOMEM;
	for (uint64_t i = 0; t->e && i < ((uint64_t)1 << t->bits); i++)
		if (t->e[i].inst)
			place(e, bits, &t->e[i]);
	mem_free(t->e);
	t->e = e;
	t->bits = bits;
	return 0;
}

/* Removes the entry at l, shifting the probe run behind it back. */
static void remove_at(struct lease_table *t, struct lease *l)
{
	uint32_t mask = (1u << t->bits) - 1;
	uint32_t i = (uint32_t)(l - t->e), j = i;

	mem_free(l->more);
	for (;;) {
		uint32_t k;

		j = (j + 1) & mask;
		if (t->e[j].inst == NULL)
			break;
		k = home_of(t->e[j].inst, t->bits);
		/* k cyclically in (i, j]: the entry at j is still reachable from its home */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		t->e[i] = t->e[j];
		i = j;
	}
	memset(&t->e[i], 0, sizeof(t->e[i]));
	t->n--;
}

uint32_t lease_pause_credit(struct lease_table *t, int64_t ms)
{
	uint32_t n = 0;

	for (uint32_t i = 0; t->bits && i < (1u << t->bits); i++) {
		struct lease *l = &t->e[i];
		struct lease_holder *h = holders(l);

		for (uint32_t k = 0; l->inst && k < l->n; k++, n++)
			h[k].until_ms += ms;
	}
	return n;
}

/* Drops holders whose lease ran out (except keep); returns how many remain. */
static uint32_t prune(struct lease *l, uint64_t keep, int64_t now_ms)
{
	struct lease_holder *h = holders(l);
	uint32_t w = 0;

	for (uint32_t i = 0; i < l->n; i++)
		if (h[i].holder == keep || h[i].until_ms > now_ms)
			h[w++] = h[i];
	l->n = w;
	return w;
}

int lease_hold(struct lease_table *t, struct store_inst *in, uint64_t holder, int64_t until_ms,
               int64_t now_ms, struct lease_note *note)
{
	struct lease *l = lease_find(t, in);
	struct lease_holder *h;
	uint32_t n;

	memset(note, 0, sizeof(*note));
	if (l == NULL) {
		struct lease fresh = { .inst = in };

		if (t->n >= t->max)
			return -ERR_LIMIT_LEASES;
		if ((t->bits == 0 || 2ull * (t->n + 1) > ((uint64_t)1 << t->bits)) && grow(t) < 0)
			return -ERR_NOMEM;
		l = place(t->e, t->bits, &fresh);
		t->n++;
		note->created = true;
	}
	n = prune(l, holder, now_ms);
	h = holders(l);
	for (uint32_t i = 0; i < n; i++)
		if (h[i].holder == holder) {
			h[i].until_ms = until_ms;
			return 0;
		}
	if (n == LEASE_HOLDERS_MAX) {
		uint32_t old = 0;

		for (uint32_t i = 1; i < n; i++)
			if (h[i].until_ms < h[old].until_ms)
				old = i;
		h[old] = (struct lease_holder){ holder, until_ms };
		note->evicted = true;
		return 0;
	}
	if (n == LEASE_INLINE && l->more == NULL) {
		struct lease_holder *m = mem_alloc(sizeof(*m) * LEASE_HOLDERS_MAX);

		if (m == NULL)
			return -ERR_NOMEM;
		memcpy(m, l->in, sizeof(l->in));
		l->more = m;
		h = m;
	}
	h[n] = (struct lease_holder){ holder, until_ms };
	l->n = n + 1;
	note->added = true;
	return 0;
}

bool lease_release(struct lease_table *t, struct store_inst *in, uint64_t holder, int64_t now_ms)
{
	struct lease *l = lease_find(t, in);
	struct lease_holder *h;
	uint32_t w = 0;

	if (l == NULL)
		return false;
	h = holders(l);
	for (uint32_t i = 0; i < l->n; i++)
		if (h[i].holder != holder && h[i].until_ms > now_ms)
			h[w++] = h[i];
	l->n = w;
	if (w > 0)
		return true;
	remove_at(t, l);
	return false;
}

void lease_drop(struct lease_table *t, const struct store_inst *in)
{
	struct lease *l = lease_find(t, in);

	if (l)
		remove_at(t, l);
}

/* ---- the store's leased writes ---- */

int store_hold(struct store_shard *sh, const struct store_key *k, uint64_t holder,
               uint32_t renew_ms)
{
	struct store_inst *in;
	struct lease_note note;
	int64_t now = now_ms(sh);
	int rc;

	if (holder == 0 || renew_ms == 0)
		return -ERR_INVAL;
	if ((rc = live_find(sh, k, &in)) < 0)
		return rc;
	rc = lease_hold(&sh->leases, in, holder, now + 2 * (int64_t)renew_ms + LEASE_MARGIN_MS, now,
	                &note);
	if (rc < 0) {
		STAT_INC(sh, lease_refused);
		return rc;
	}
	in->wflags |= W_LEASED;
	if (note.created)
		STAT_INC(sh, leases);
	if (note.evicted)
		STAT_INC(sh, lease_evicted);
	return 0;
}

int store_release(struct store_shard *sh, const struct store_key *k, uint64_t holder)
{
	struct store_inst *in;
	int rc = live_find(sh, k, &in);

	if (rc < 0 && rc != -ERR_NOT_FOUND)
		return rc;
	if (rc == 0 && (in->wflags & W_LEASED)) {
		if (lease_release(&sh->leases, in, holder, now_ms(sh))) {
			STAT_INC(sh, releases_kept);
			return STORE_HELD;
		}
		in->wflags &= (uint8_t)~W_LEASED; /* the entry went with its last lease */
		STAT_ADD(sh, leases, (uint64_t)-1);
	}
	return store_delete(sh, k);
}

void inst_lease_drop(struct store_shard *sh, struct store_inst *in)
{
	lease_drop(&sh->leases, in);
	in->wflags &= (uint8_t)~W_LEASED;
	STAT_ADD(sh, leases, (uint64_t)-1);
}
