/*
 * repair.c - pulls: asking owners for whole slots (repair and load),
 * collecting them, and serving the pulls peers ask of this node.
 *
 * Asking. Slots verify marked (verify_bits.want) are pulled from their
 * owner in PULLs of up to PULL_SLOTS slots, at most PULLS_MAX in flight
 * per peer, so repairs from several owners proceed at once and never queue
 * behind one another (Nacos #6018). The startup load and the merge
 * (load.c) use the same pulls, one load set each. A pull whose link drops,
 * or whose end is WAIT_TIMEOUT_MS late, is given up: a load set goes back
 * to the plan for another peer, a repair is found again by verify.
 *
 * Collecting. The owner streams each slot in CHUNKs of at most
 * CHUNK_RECORDS records. Load chunks go to the workers as they come (they
 * are applied last-writer-wins, nothing dropped). Repair chunks are
 * collected until the slot's last chunk, then the slot goes to the workers
 * to replace: records applied, and instances the owner did not list (older
 * than its listing) forgotten. So a slot must arrive whole or not at all: a
 * slot over REPAIR_SLOT_RECORDS / REPAIR_SLOT_BYTES, or one whose chunk
 * could not be kept for want of memory, is abandoned (counted) and never
 * applied - a truncated listing would forget every replica it missed.
 * A node only replaces slots the sender owns in its own view and it does
 * not own itself: a peer can never make it delete what it owns.
 *
 * Serving. A peer's PULL is queued (at most SERVES_MAX per peer; beyond,
 * ERR_BUSY and the puller retries) and streamed while the link's unsent
 * output stays under SERVE_HIGH_BYTES, tombstones included: a replica that
 * learns the delete with the listing refuses the older registration a late
 * sync frame may still carry. A node that is not READY serves nothing.
 *
 * Runs on the peer thread only.
 */
#include "cluster/peer_internal.h"

#include "cluster/records.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <string.h>

/* ---- asking ---- */

uint32_t repair_pulls_free(const struct member_pulls *mp)
{
	uint32_t n = 0;

	for (int k = 0; k < PULLS_MAX; k++)
		n += mp->pulls[k] == NULL;
	return n;
}

bool repair_pull_send(struct peer *p, uint16_t id, struct pull *pl)
{
	struct member_pulls *mp = &p->by_id[id].pulls;
	struct link *l = member_up(p, id);
	uint8_t body[2 + 2 * PULL_SLOTS];
	struct proto_wr w;
	int k;

	for (k = 0; k < PULLS_MAX && mp->pulls[k]; k++)
		;
	if (k == PULLS_MAX || l == NULL)
		return false;
	pl->tag = p->next_tag++;
	pl->sent_ms = p->now_ms;
	proto_wr_init(&w, body, sizeof(body));
	proto_wr_u16(&w, pl->n);
	for (uint16_t i = 0; i < pl->n; i++)
		proto_wr_u16(&w, pl->slots[i]);
	if (!link_frame_put(l, P_PULL, body, 2u + 2u * pl->n, pl->tag, pl->load ? PULL_LOAD : 0, 0))
		return false;
	mp->pulls[k] = pl;
	return true;
}

void repair_schedule(struct peer *p)
{
	for (uint16_t id = 1; id <= p->conf.n; id++) {
		struct member_pulls *mp = &p->by_id[id].pulls;

		while (id != p->self && member_up(p, id) && repair_pulls_free(mp) > 0) {
			struct pull *pl = mem_alloc(sizeof(*pl));

			if (pl == NULL)
				return;
			memset(pl, 0, sizeof(*pl));
			for (uint32_t wd = 0; wd < STORE_SLOTS / 64 && pl->n < PULL_SLOTS; wd++) {
				uint64_t *want = &mp->verify.want[wd];

				while (*want && pl->n < PULL_SLOTS) {
					uint32_t b = (uint32_t)__builtin_ctzll(*want);

					*want &= *want - 1;
					pl->slots[pl->n++] = (uint16_t)(wd * 64 + b);
				}
			}
			if (pl->n == 0 || !repair_pull_send(p, id, pl)) {
				mem_free(pl);
				break;
			}
			PSTAT_ADD(p, repair_slots, pl->n);
		}
	}
}

static void pull_finished(struct peer *p, uint16_t id, int k, bool ok)
{
	struct member_pulls *mp = &p->by_id[id].pulls;
	struct pull *pl = mp->pulls[k];

	mp->pulls[k] = NULL;
	if (pl->load)
		load_pull_finished(p, pl, ok);
	mem_free(pl);
}

static void serves_drop(struct member_serve *ms)
{
	while (ms->head) {
		struct serve *sv = ms->head;

		ms->head = sv->next_serve;
		mem_free(sv);
	}
	ms->tail = NULL;
	ms->n = 0;
}

static void collect_reset(struct collect *c)
{
	c->slot = -1;
	c->count = 0;
	c->abandoned = false;
	buf_clear(&c->records);
}

/* A link went down: its pulls are lost (load sets go back to the plan), its serves dropped. */
void repair_pulls_lost(struct peer *p, uint16_t id)
{
	struct member_state *st = &p->by_id[id];

	for (int k = 0; k < PULLS_MAX; k++)
		if (st->pulls.pulls[k])
			pull_finished(p, id, k, false);
	verify_reset(&st->pulls.verify);
	collect_reset(&st->pulls.collect);
	serves_drop(&st->serve);
}

/* A peer that stays UP but never finishes a pull: the pull goes elsewhere. */
void repair_pulls_expire(struct peer *p, uint16_t id, int64_t now)
{
	struct member_pulls *mp = &p->by_id[id].pulls;

	for (int k = 0; k < PULLS_MAX; k++)
		if (mp->pulls[k] && now - mp->pulls[k]->sent_ms >= WAIT_TIMEOUT_MS)
			pull_finished(p, id, k, false);
}

static int pull_find(const struct member_pulls *mp, uint32_t tag)
{
	for (int k = 0; k < PULLS_MAX; k++)
		if (mp->pulls[k] && mp->pulls[k]->tag == tag)
			return k;
	return -1;
}

/* ---- collecting ---- */

static void collect_abandon(struct peer *p, uint16_t from, struct collect *c, const char *why)
{
	if (c->abandoned)
		return;
	log_warn("repair of slot %d from %s given up: %s", c->slot, member_conf(p, from)->addr,
	         why);
	PSTAT_INC(p, repair_abandoned);
	c->abandoned = true;
	buf_clear(&c->records);
}

void repair_on_chunk(struct peer *p, uint16_t from, const struct proto_header *h,
                     const uint8_t *body)
{
	struct member_pulls *mp = &p->by_id[from].pulls;
	struct collect *c = &mp->collect;
	int k = pull_find(mp, h->request_id);
	struct proto_rd r;
	uint16_t slot;
	uint64_t before;

	if (k < 0)
		return; /* a pull we gave up on */
	proto_rd_init(&r, body, 10);
	slot = proto_rd_u16(&r);
	before = proto_rd_u64(&r);
	if (mp->pulls[k]->load) {
		if (h->count)
			(void)sync_records_to_workers(p, XM_LOAD, body + 10, h->body_len - 10,
			                              h->count, slot, before);
		PSTAT_ADD(p, load_records, h->count);
		if (h->status & CHUNK_LAST)
			PSTAT_INC(p, load_slots);
		return;
	}
	/* Repair: collect the slot whole, then replace ours. */
	if (c->slot != slot || c->tag != h->request_id) { /* a new slot, or a pull given up */
		collect_reset(c);
		c->slot = slot;
		c->tag = h->request_id;
	}
	if (c->count + h->count > REPAIR_SLOT_RECORDS ||
	    buf_used(&c->records) + h->body_len > REPAIR_SLOT_BYTES)
		collect_abandon(p, from, c, "the slot is too big for one repair");
	if (h->body_len > 10 && !c->abandoned) {
		if (buf_append(&c->records, body + 10, h->body_len - 10, REPAIR_SLOT_BYTES))
			c->count += h->count;
		else
			collect_abandon(p, from, c, "out of memory");
	}
	if (!(h->status & CHUNK_LAST))
		return;
	/* Never replace a slot we own, nor one the sender no longer owns in our view. */
	if (p->view.owners[slot] == from && p->ready && !c->abandoned) {
		(void)sync_records_to_workers(p, XM_REPAIR, c->records.p,
		                              (uint32_t)buf_used(&c->records), c->count, slot,
		                              before);
		PSTAT_ADD(p, repair_records, c->count);
	}
	collect_reset(c);
}

void repair_on_pull_done(struct peer *p, uint16_t from, const struct proto_header *h)
{
	int k = pull_find(&p->by_id[from].pulls, h->request_id);

	if (k >= 0)
		pull_finished(p, from, k, h->status == 0);
}

/* ---- serving ---- */

void repair_on_pull(struct peer *p, uint16_t from, const struct proto_header *h,
                    const uint8_t *body)
{
	struct member_serve *ms = &p->by_id[from].serve;
	struct link *l = member_up(p, from);
	struct serve *sv;
	struct proto_rd r;

	if (!p->ready) { /* a node still loading serves no snapshot */
		link_frame_put(l, P_PULL_DONE, NULL, 0, h->request_id, ERR_UNAVAILABLE, 0);
		return;
	}
	if (ms->n >= SERVES_MAX) { /* bounded: the puller retries */
		link_frame_put(l, P_PULL_DONE, NULL, 0, h->request_id, ERR_BUSY, 0);
		return;
	}
	sv = mem_alloc(sizeof(*sv));
	if (sv == NULL) {
		link_frame_put(l, P_PULL_DONE, NULL, 0, h->request_id, ERR_NOMEM, 0);
		return;
	}
	memset(sv, 0, sizeof(*sv));
	sv->tag = h->request_id;
	proto_rd_init(&r, body, h->body_len);
	sv->n = proto_rd_u16(&r);
	for (uint16_t i = 0; i < sv->n; i++)
		sv->slots[i] = proto_rd_u16(&r);
	if (ms->tail)
		ms->tail->next_serve = sv;
	else
		ms->head = sv;
	ms->tail = sv;
	ms->n++;
}

/* Streams queued pulls while the link has room. */
void repair_serve_some(struct peer *p, uint16_t id)
{
	static __thread struct store_view views[CHUNK_RECORDS];
	struct member_serve *ms = &p->by_id[id].serve;
	struct link *l = member_up(p, id);

	while (ms->head && l && l->state == L_UP && buf_used(&l->out) < SERVE_HIGH_BYTES) {
		struct serve *sv = ms->head;

		if (sv->next == sv->n) {
			link_frame_put(l, P_PULL_DONE, NULL, 0, sv->tag, 0, 0);
			ms->head = sv->next_serve;
			if (ms->head == NULL)
				ms->tail = NULL;
			ms->n--;
			mem_free(sv);
			continue;
		}
		if (!sv->started) {
			store_cursor_init(&sv->cur, sv->slots[sv->next]);
			sv->cur.tombstones = true; /* deletes too: see the essay */
			sv->before = peer_wall_version();
			sv->started = true;
		}
		epoch_enter(&p->rec);
		uint32_t n = store_slot_scan(p->env.store, &sv->cur, views, CHUNK_RECORDS);
		size_t need = 4096 + (size_t)n * 256;
		struct proto_wr w;
		uint8_t *f;

		for (;;) { /* records are small; a big one doubles the room and encodes again */
			f = link_frame_begin(l, need);
			if (f == NULL) {
				epoch_exit(&p->rec);
				link_close(p, l, "out of memory");
				return;
			}
			proto_wr_init(&w, f + PROTO_HEADER_BYTES, need);
			proto_wr_u16(&w, sv->slots[sv->next]);
			proto_wr_u64(&w, sv->before);
			for (uint32_t i = 0; i < n; i++)
				record_put(&w, &views[i]);
			if (!w.overflow)
				break;
			need *= 2;
		}
		epoch_exit(&p->rec);
		link_frame_end(l, P_CHUNK, (uint32_t)(w.p - (f + PROTO_HEADER_BYTES)), sv->tag,
		               sv->cur.done ? CHUNK_LAST : 0, (uint16_t)n);
		PSTAT_ADD(p, snapshot_records, n);
		if (sv->cur.done) {
			sv->next++;
			sv->started = false;
		}
	}
}

void repair_member_free(struct member_state *st)
{
	for (int k = 0; k < PULLS_MAX; k++) {
		mem_free(st->pulls.pulls[k]);
		st->pulls.pulls[k] = NULL;
	}
	serves_drop(&st->serve);
	buf_free(&st->pulls.collect.records);
	verify_free(&st->pulls.verify);
}
