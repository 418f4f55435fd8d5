/*
 * sync.c - the change feed to every peer, and the peers' records to the
 * workers.
 *
 * Out. Every --sync-window each worker drains its shard's change feed
 * (the feed keeps one entry per changed instance: changes within the window
 * coalesce) into record batches of at most 256 KiB and hands them here
 * (XM_SYNC); each batch goes to every UP peer as one SYNC frame. A link
 * whose unsent output passes --peer-backlog gets no more sync (counted in
 * sync_dropped): those changes are left to verify, which finds and
 * repairs them. The worker's side is bounded too: while its outbox holds a
 * backlog it leaves records in the (bounded, coalescing) feed rather than
 * piling batches up (server/replica.c).
 *
 * In. A SYNC frame is checked whole (pwire_check) before anything is
 * applied; how late its oldest record is (owner's stamp -> here) feeds
 * verify's estimate of what may still be in flight from that owner. Its records are split by shard
 * here, decoded once, so each worker gets one message with only its shard's records (XM_APPLY) and
 * applies them last-writer-wins; a newer delete is never resurrected.
 * Loads (XM_LOAD) and repairs (XM_REPAIR) take the same path
 * (sync_records_to_workers); a repair goes to every worker even with no
 * record of its shard, since each prunes its own part of the slot.
 *
 * Runs on the peer thread only.
 */
#include "cluster/peer_internal.h"

#include "cluster/records.h"
#include "core/clock.h"
#include "core/log.h"

#include <assert.h>
#include <string.h>

uint64_t sync_records_to_workers(struct peer *p, uint8_t kind, const uint8_t *data, uint32_t len,
                                 uint32_t count, uint16_t slot, uint64_t before)
{
	static __thread struct store_kv kv[PROTO_META_MAX];
	uint32_t nw = p->env.nworkers;
	uint32_t bytes[STORE_SHARDS_MAX] = { 0 }, n[STORE_SHARDS_MAX] = { 0 };
	struct xrecords *m[STORE_SHARDS_MAX] = { 0 };
	uint64_t oldest = UINT64_MAX;
	struct proto_rd rd;

	assert(count <= sizeof(p->split) / sizeof(p->split[0]));
	proto_rd_init(&rd, data, len);
	for (uint32_t i = 0; i < count; i++) { /* checked whole already: cannot fail */
		const uint8_t *start = rd.p;
		struct store_record r;

		record_get(&rd, &r, kv, PROTO_META_MAX);
		if (!r.expired && r.version < oldest) /* an expiry's version is its base's */
			oldest = r.version;
		p->split[i].shard =
		        r.key.svc.service.p ? (uint8_t)store_shard_of(p->env.store, &r.key.svc) : 0;
		p->split[i].off = (uint32_t)(start - data);
		p->split[i].len = (uint32_t)(rd.p - start);
		bytes[p->split[i].shard] += p->split[i].len;
		n[p->split[i].shard]++;
	}
	for (uint32_t w = 0; w < nw; w++) {
		if (n[w] == 0 && kind != XM_REPAIR)
			continue;
		m[w] = xmsg_records_new(kind, bytes[w]);
		if (m[w] == NULL) {
			log_error("out of memory for %u replicated records: verify repairs them",
			          n[w]);
			continue;
		}
		m[w]->slot = slot;
		m[w]->before = before;
		m[w]->sent_us = clock_mono_us();
		if (kind == XM_LOAD)
			m[w]->done = &p->load_done;
		else if (kind == XM_APPLY)
			m[w]->done = &p->apply_done;
	}
	for (uint32_t i = 0; i < count; i++) {
		struct xrecords *x = m[p->split[i].shard];

		if (x == NULL)
			continue;
		memcpy(x->data + x->len, data + p->split[i].off, p->split[i].len);
		x->len += p->split[i].len;
		x->count++;
	}
	for (uint32_t w = 0; w < nw; w++) {
		if (m[w] == NULL)
			continue;
		if (kind == XM_LOAD)
			p->load_sent++;
		else if (kind == XM_APPLY)
			p->apply_sent++;
		peer_to_worker(p, w, m[w]);
	}
	return oldest == UINT64_MAX ? 0 : oldest;
}

/* A batch of this node's changes goes to every peer. */
void sync_on_feed(struct peer *p, struct xrecords *m)
{
	/* The frame's id carries our wall clock (us, low 32 bits): the link stage. */
	uint32_t stamp = (uint32_t)clock_wall_us() | 1; /* never 0: 0 is "not stamped" */

	PSTAGE_ADD(p, REPL_HANDOFF, clock_mono_us() - m->sent_us);
	for (uint16_t id = 1; id <= p->conf.n; id++) {
		struct link *l = id == p->self ? NULL : member_up(p, id);

		if (id == p->self)
			continue;
		if (l == NULL || buf_used(&l->out) + m->len > p->cfg->peer_backlog_bytes) {
			PSTAT_ADD(p, sync_dropped, m->count);
			continue;
		}
		if (fault_drop(p)) {
			PSTAT_INC(p, fault_dropped);
			continue;
		}
		if (fault_hold(p, id, P_SYNC, m->data, m->len, (uint16_t)m->count, p->now_ms))
			continue;
		if (!link_frame_put(l, P_SYNC, m->data, m->len, stamp, 0, (uint16_t)m->count)) {
			PSTAT_ADD(p, sync_dropped, m->count);
			continue;
		}
		PSTAT_INC(p, sync_frames_out);
		PSTAT_ADD(p, sync_records_out, m->count);
	}
	xmsg_release(m);
}

void sync_on_frame(struct peer *p, uint16_t from, const struct proto_header *h, const uint8_t *body)
{
	uint64_t oldest = sync_records_to_workers(p, XM_APPLY, body, h->body_len, h->count, 0, 0);
	uint32_t took = (uint32_t)clock_wall_us() - h->request_id;

	if (h->request_id != 0 && took < (1u << 31)) /* 0: not stamped (fault hook, older) */
		PSTAGE_ADD(p, REPL_LINK, (int64_t)took);

	if (oldest)
		verify_note_lag(&p->by_id[from].pulls.verify, clock_wall_ms(NULL), oldest);
	PSTAT_INC(p, sync_frames_in);
	PSTAT_ADD(p, sync_records_in, h->count);
}
