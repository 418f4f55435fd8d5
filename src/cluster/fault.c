/*
 * fault.c - test-only hooks that make sync unreliable on purpose.
 *
 * --fault-drop-pct drops that share of outgoing SYNC frames (per peer);
 * --fault-delay-ms holds every outgoing SYNC frame that long before it is
 * queued on its link, so tests can show that verify and repair converge
 * when sync is lost or late. Both are 0 (off) by default and cost one
 * branch when off. Held frames are bounded (DELAYED_MAX per peer; beyond,
 * a frame is dropped and counted in fault_dropped) and dropped with the
 * link (they were never acknowledged).
 *
 * Runs on the peer thread only.
 */
#include "cluster/peer_internal.h"

#include "core/mem.h"

#include <string.h>

bool fault_drop(struct peer *p)
{
	uint32_t pct = p->cfg->fault_drop_pct;

	if (pct == 0)
		return false;
	p->rng ^= p->rng << 13;
	p->rng ^= p->rng >> 7;
	p->rng ^= p->rng << 17;
	return p->rng % 100 < pct;
}

bool fault_hold(struct peer *p, uint16_t id, uint8_t op, const uint8_t *body, uint32_t len,
                uint16_t count, int64_t now)
{
	struct member_fault *mf = &p->by_id[id].fault;
	struct delayed *d;

	if (p->cfg->fault_delay_ms == 0)
		return false;
	if (mf->n >= DELAYED_MAX ||
	    (d = mem_alloc(sizeof(*d) + PROTO_HEADER_BYTES + len)) == NULL) {
		PSTAT_INC(p, fault_dropped);
		return true;
	}
	d->due_ms = now + p->cfg->fault_delay_ms;
	d->next = NULL;
	d->len = PROTO_HEADER_BYTES + len;
	pwire_header_put(d->frame, op, len, 0, 0, count);
	memcpy(d->frame + PROTO_HEADER_BYTES, body, len);
	if (mf->tail)
		mf->tail->next = d;
	else
		mf->head = d;
	mf->tail = d;
	mf->n++;
	return true;
}

void fault_flush(struct peer *p, int64_t now)
{
	for (uint16_t id = 1; id <= p->conf.n; id++) {
		struct member_fault *mf = &p->by_id[id].fault;

		while (mf->head && mf->head->due_ms <= now) {
			struct delayed *d = mf->head;
			struct link *l = member_up(p, id);

			mf->head = d->next;
			if (mf->head == NULL)
				mf->tail = NULL;
			mf->n--;
			if (l && buf_append(&l->out, d->frame, d->len, PWIRE_FRAME_MAX * 8u))
				PSTAT_INC(p, sync_frames_out);
			mem_free(d);
		}
	}
}

void fault_member_down(struct peer *p, uint16_t id)
{
	struct member_fault *mf = &p->by_id[id].fault;

	while (mf->head) {
		struct delayed *d = mf->head;

		mf->head = d->next;
		mem_free(d);
	}
	mf->tail = NULL;
	mf->n = 0;
}
