/*
 * verify.c - finding what sync missed: digests, per-slot sums, and the
 * two-round rule.
 *
 * Every --verify-interval a READY node (that has merged a peer's copy,
 * load.c) sends every peer a DIGEST: for each of 256 ranges of 64 slots, a
 * sum of mixes of (slot, checksum, count) over the slots it owns in the
 * range - 2 KiB however many instances. The peer computes the same over its
 * copy of those slots (the ones it believes the sender owns) and asks for
 * the per-slot sums of the ranges that differ (SUMS_REQ); the owner answers
 * with the sums of the slots it owns in them (SUMS).
 *
 * The two-round rule (verify_note). A slot that differs once may be sync
 * still in flight: the digest counts writes the owner has not sent yet. A
 * slot seen different in two rounds in a row is really different, and is
 * marked to pull (verify_bits.want; repair.c pulls it). A slot seen equal,
 * or a whole range seen equal, clears its suspicion. Only slots the sender
 * owns in our view are ever marked, and never one we own: a peer can never
 * make this node replace what it owns.
 *
 * Cost: a digest reads the store's per-slot checksums (O(16384), no
 * instance touched) under the epoch; SUMS are at most 256 x 64 slots.
 * Runs on the peer thread only.
 */
#include "cluster/peer_internal.h"

#include "core/hash.h"
#include "core/mem.h"

bool verify_note(struct verify_bits *v, uint32_t slot, bool differs)
{
	uint64_t bit = 1ull << (slot % 64);

	if (!differs) {
		v->suspect[slot / 64] &= ~bit;
		return false;
	}
	if (v->suspect[slot / 64] & bit) {
		v->want[slot / 64] |= bit;
		return true;
	}
	v->suspect[slot / 64] |= bit;
	return false;
}

void verify_range_clean(struct verify_bits *v, uint32_t range)
{
	v->suspect[range] = 0; /* a range of 64 slots is one word */
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
	link_frame_put(p->by_id[from].link.up, P_SUMS_REQ, req, 2u + 2u * n, 0, 0, 0);
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
	link_frame_put(p->by_id[from].link.up, P_SUMS, b.p, (uint32_t)b.len, 0, 0, 0);
	buf_free(&b);
}

/* The owner's per-slot sums: the slots that differ from our copy twice in a row get pulled. */
void verify_on_sums(struct peer *p, uint16_t from, const struct proto_header *h,
                    const uint8_t *body)
{
	struct verify_bits *v = &p->by_id[from].pulls.verify;
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
		(void)verify_note(
		        v, s, p->view.owners[s] == from && (sum != my_sum || count != my_count));
	}
	epoch_exit(&p->rec);
}
