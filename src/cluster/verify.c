/*
 * verify.c - finding what sync missed: digests, per-slot sums, and the
 * confirming look.
 *
 * Every --verify-interval a READY node (that has merged a peer's copy,
 * load.c) sends every peer a DIGEST: for each of 256 ranges of 64 slots, a
 * sum of mixes of (slot, checksum, count) over the slots it owns in the
 * range - 2 KiB however many instances. The peer computes the same over its
 * copy of those slots (the ones it believes the sender owns) and asks for
 * the per-slot sums of the ranges that differ (SUMS_REQ); the owner answers
 * with the sums of the slots it owns in them (SUMS).
 *
 * The confirming look (verify_note). A slot that differs once may be sync
 * still in flight: the owner's sum counts writes that are still in its
 * worker's feed, its 2 ms sync window, the socket, or this node's workers'
 * rings. So one look never repairs. It marks the slot suspect and asks for
 * the sums of its range again a delay later: VERIFY_CONFIRM_MS (at most
 * half the interval), or twice the largest lag of that owner's sync seen
 * over the last two intervals if that is longer (an overloaded cluster
 * replicates in hundreds of ms, and the look must wait for it), but never
 * more than VERIFY_CONFIRM_MAX intervals (a clock ahead of ours inflates the
 * estimate; it must not postpone repairs for ever). Looks
 * (periodic rounds) before the confirming one mark, never decide; so does a
 * confirming look whose answer finds this node's workers still applying
 * synced records handed to them before it was asked (apply_mark: a worker
 * held up, by a repair's pruning or a busy CPU, is replication in flight
 * too) - it is asked again after another delay. At the
 * confirming look the slot is pulled unless this node now holds exactly
 * what the owner held at the previous look (the same slot sum): everything
 * the owner had then has arrived, as it should have by now, so what still
 * differs is newer writes in flight - look again after another delay,
 * remembering the owner's sum of this look. A node that lacks a lost record
 * matches none of the owner's sums that include it, so a lost record is
 * pulled at the confirming look however often the slot is written; a slot
 * whose writes are only in flight is pulled only if, of two or more writes
 * it took within one delay, some arrived and some not (rare; it costs a
 * pull, never a record). A slot seen equal, or a whole range seen equal in
 * a digest, clears its suspicion. The periodic rounds feed the same rule, so a look
 * lost with its link only costs one round. Only slots the sender owns in our
 * view are ever marked, and never one we own: a peer can never make this
 * node replace what it owns.
 *
 * Why this rather than two rounds a full interval apart (the rule before):
 * detection took up to two intervals (2 s at the default) although what it
 * waits out is milliseconds. The confirming look costs no byte when
 * nothing differs (the digest is unchanged: 2 KiB per peer per round), and
 * when something does, one SUMS_REQ of the suspect ranges (2 bytes each)
 * and a SUMS of about 300 bytes per range. It needs no new frame: any
 * version answers a SUMS_REQ whenever it comes. The owner's sum at the
 * last look is kept per slot (seen, 64 KiB per peer, allocated at the
 * first difference); without it (no memory) the second look decides alone,
 * as the two-round rule did.
 *
 * Cost: a digest reads the store's per-slot checksums (O(16384), no
 * instance touched) under the epoch; SUMS are at most 256 x 64 slots.
 * Runs on the peer thread only.
 */
#include "cluster/peer_internal.h"

#include "core/hash.h"
#include "core/mem.h"

#include <string.h>

enum verify_verdict verify_note(struct verify_bits *v, uint32_t slot, bool differs,
                                uint32_t owner_sum, uint32_t my_sum, bool may_decide)
{
	uint64_t bit = 1ull << (slot % 64);
	uint32_t w = slot / 64;

	if (!differs) {
		v->suspect[w] &= ~bit;
		return VERIFY_EQUAL;
	}
	if (v->seen == NULL)
		v->seen = mem_calloc(STORE_SLOTS, sizeof(*v->seen)); /* NULL: two looks decide */
	if (!(v->suspect[w] & bit)) {                                /* the first look */
		v->suspect[w] |= bit;
		if (v->seen)
			v->seen[slot] = owner_sum;
		return VERIFY_LOOK_AGAIN;
	}
	if (!may_decide) /* too soon after the last look: what it showed may still come */
		return VERIFY_LOOK_AGAIN;
	if (v->seen && my_sum == v->seen[slot]) {
		/* We hold what the owner had then: only newer writes differ, in flight. */
		v->seen[slot] = owner_sum;
		return VERIFY_LOOK_AGAIN;
	}
	v->want[w] |= bit;
	if (v->seen) /* a look after the pull compares with what it brings */
		v->seen[slot] = owner_sum;
	return VERIFY_PULL;
}

void verify_range_clean(struct verify_bits *v, uint32_t range)
{
	v->suspect[range] = 0; /* a range of 64 slots is one word */
}

void verify_note_lag(struct verify_bits *v, int64_t now_wall_ms, uint64_t version)
{
	int64_t lag = now_wall_ms - (int64_t)(version >> 16);

	if (lag > (int64_t)v->lag_ms[0])
		v->lag_ms[0] = lag > UINT32_MAX ? UINT32_MAX : (uint32_t)lag;
}

uint32_t verify_confirm_delay_ms(const struct verify_bits *v, uint32_t verify_ms)
{
	uint32_t base = verify_ms / 2 < VERIFY_CONFIRM_MS ? verify_ms / 2 : VERIFY_CONFIRM_MS;
	uint32_t lag = v->lag_ms[0] > v->lag_ms[1] ? v->lag_ms[0] : v->lag_ms[1];
	uint64_t d = 2ull * lag > base ? 2ull * lag : base;
	uint64_t cap = VERIFY_CONFIRM_MAX * (uint64_t)verify_ms;

	if (d > cap)
		d = cap;
	return d < UINT32_MAX ? (uint32_t)d : UINT32_MAX;
}

/* The link went: what it showed is forgotten (the slots may move); the allocation stays. */
void verify_reset(struct verify_bits *v)
{
	uint32_t *seen = v->seen;

	memset(v, 0, sizeof(*v));
	v->seen = seen;
}

void verify_free(struct verify_bits *v)
{
	mem_free(v->seen);
	memset(v, 0, sizeof(*v));
}

static uint64_t slot_mix(uint32_t slot, uint64_t sum, uint32_t count)
{
	uint64_t b[2] = { sum, ((uint64_t)slot << 32) | count };

	return XXH3_64bits(b, sizeof(b));
}

/* The digest of the slots `owner` owns in our map, over our copy. */
static void digest(struct peer *p, uint16_t owner, uint64_t *d)
{
	epoch_enter(&p->rec);
	for (uint32_t r = 0; r < PWIRE_RANGES; r++) {
		uint64_t acc = 0;

		for (uint32_t s = r * PWIRE_RANGE_SLOTS; s < (r + 1) * PWIRE_RANGE_SLOTS; s++) {
			uint32_t count;
			uint64_t sum;

			if (p->view.owners[s] != owner)
				continue;
			sum = store_slot_checksum(p->env.store, s, &count);
			acc += slot_mix(s, sum, count);
		}
		d[r] = acc;
	}
	epoch_exit(&p->rec);
}

void verify_round(struct peer *p)
{
	uint64_t d[PWIRE_RANGES];
	uint8_t body[8 * PWIRE_RANGES];
	struct proto_wr w;

	for (uint16_t id = 1; id <= p->conf.n; id++) { /* the lag estimate spans two intervals */
		struct verify_bits *v = &p->by_id[id].pulls.verify;

		v->lag_ms[1] = v->lag_ms[0];
		v->lag_ms[0] = 0;
	}
	digest(p, p->self, d);
	proto_wr_init(&w, body, sizeof(body));
	for (uint32_t r = 0; r < PWIRE_RANGES; r++)
		proto_wr_u64(&w, d[r]);
	for (uint16_t id = 1; id <= p->conf.n; id++) {
		struct link *l = id == p->self ? NULL : member_up(p, id);

		if (l && link_frame_put(l, P_DIGEST, body, sizeof(body), 0, 0, 0)) {
			PSTAT_INC(p, verify_rounds);
			PSTAT_ADD(p, verify_bytes_out, PROTO_HEADER_BYTES + sizeof(body));
		}
	}
}

void verify_on_digest(struct peer *p, uint16_t from, const uint8_t *body)
{
	uint64_t mine[PWIRE_RANGES];
	uint8_t req[2 + 2 * PWIRE_RANGES];
	struct proto_rd r;
	struct proto_wr w;
	uint16_t n = 0;

	if (!p->ready)
		return; /* loading: the load brings everything */
	digest(p, from, mine);
	proto_rd_init(&r, body, 8 * PWIRE_RANGES);
	proto_wr_init(&w, req + 2, sizeof(req) - 2);
	for (uint32_t i = 0; i < PWIRE_RANGES; i++) {
		if (proto_rd_u64(&r) != mine[i]) {
			proto_wr_u16(&w, (uint16_t)i);
			n++;
		} else {
			verify_range_clean(&p->by_id[from].pulls.verify, i);
		}
	}
	if (n == 0)
		return;
	PSTAT_ADD(p, verify_mismatch, n);
	req[0] = (uint8_t)n;
	req[1] = (uint8_t)(n >> 8);
	if (link_frame_put(p->by_id[from].link.up, P_SUMS_REQ, req, 2u + 2u * n, 0, 0, 0))
		PSTAT_ADD(p, verify_sums_bytes_out, PROTO_HEADER_BYTES + 2u + 2u * n);
}

/* A peer asks for our per-slot sums of some ranges: the slots we own in them. */
void verify_on_sums_req(struct peer *p, uint16_t from, const struct proto_header *h,
                        const uint8_t *body)
{
	struct proto_rd r;
	struct buf b = { 0 };
	uint16_t n, out = 0;

	if (!p->ready)
		return;
	proto_rd_init(&r, body, h->body_len);
	n = proto_rd_u16(&r);
	if (!buf_reserve(&b, 2 + (size_t)n * PWIRE_RANGE_SLOTS * 14, PWIRE_FRAME_MAX))
		return;
	b.len = 2;
	epoch_enter(&p->rec);
	for (uint16_t i = 0; i < n; i++) {
		uint16_t range = proto_rd_u16(&r);

		for (uint32_t s = range * PWIRE_RANGE_SLOTS; s < (range + 1u) * PWIRE_RANGE_SLOTS;
		     s++) {
			uint32_t count;
			uint64_t sum;
			struct proto_wr w;

			if (p->view.owners[s] != p->self)
				continue;
			sum = store_slot_checksum(p->env.store, s, &count);
			proto_wr_init(&w, b.p + b.len, 14);
			proto_wr_u16(&w, (uint16_t)s);
			proto_wr_u64(&w, sum);
			proto_wr_u32(&w, count);
			b.len += 14;
			out++;
		}
	}
	epoch_exit(&p->rec);
	b.p[0] = (uint8_t)out;
	b.p[1] = (uint8_t)(out >> 8);
	if (link_frame_put(p->by_id[from].link.up, P_SUMS, b.p, (uint32_t)b.len, 0, 0, 0))
		PSTAT_ADD(p, verify_sums_bytes_out, PROTO_HEADER_BYTES + b.len);
	buf_free(&b);
}

/* The owner's per-slot sums: a slot that differs is looked at again, then pulled (above). */
void verify_on_sums(struct peer *p, uint16_t from, const struct proto_header *h,
                    const uint8_t *body)
{
	struct verify_bits *v = &p->by_id[from].pulls.verify;
	/*
	 * A look decides only with no confirming look pending and once our
	 * workers applied every synced record handed to them before the last
	 * confirming request went: what the owner had a delay ago is here.
	 */
	bool again = false,
	     may_decide = v->confirm_ms == 0 && LOAD_ACQUIRE(&p->apply_done) >= v->apply_mark;
	struct proto_rd r;
	uint16_t n;

	if (!p->ready)
		return;
	proto_rd_init(&r, body, h->body_len);
	n = proto_rd_u16(&r);
	epoch_enter(&p->rec);
	for (uint16_t i = 0; i < n; i++) {
		uint16_t s = proto_rd_u16(&r);
		uint64_t sum = proto_rd_u64(&r);
		uint32_t count = proto_rd_u32(&r), my_count;
		uint64_t my_sum = store_slot_checksum(p->env.store, s, &my_count);
		/* Only slots the sender owns in our view (so never one we own). */
		bool differs = p->view.owners[s] == from && (sum != my_sum || count != my_count);

		again |= verify_note(v, s, differs, (uint32_t)slot_mix(s, sum, count),
		                     (uint32_t)slot_mix(s, my_sum, my_count),
		                     may_decide) == VERIFY_LOOK_AGAIN;
	}
	epoch_exit(&p->rec);
	if (again && v->confirm_ms == 0)
		v->confirm_ms = p->now_ms + verify_confirm_delay_ms(v, p->cfg->verify_ms);
}

/* Confirming looks that are due: the sums of every range holding a suspect slot, asked again. */
void verify_confirm_due(struct peer *p, int64_t now)
{
	for (uint16_t id = 1; id <= p->conf.n; id++) {
		struct verify_bits *v = &p->by_id[id].pulls.verify;
		uint8_t req[2 + 2 * PWIRE_RANGES];
		struct link *l;
		uint16_t n = 0;

		if (id == p->self || v->confirm_ms == 0 || now < v->confirm_ms)
			continue;
		v->confirm_ms = 0;
		l = member_up(p, id);
		for (uint32_t range = 0; range < PWIRE_RANGES; range++) {
			if (v->suspect[range] == 0)
				continue;
			req[2 + 2 * n] = (uint8_t)range;
			req[3 + 2 * n] = (uint8_t)(range >> 8);
			n++;
		}
		if (l == NULL || n == 0)
			continue;
		req[0] = (uint8_t)n;
		req[1] = (uint8_t)(n >> 8);
		if (link_frame_put(l, P_SUMS_REQ, req, 2u + 2u * n, 0, 0, 0)) {
			v->apply_mark = p->apply_sent;
			PSTAT_INC(p, verify_confirms);
			PSTAT_ADD(p, verify_sums_bytes_out, PROTO_HEADER_BYTES + 2u + 2u * n);
		}
	}
}
