/*
 * health.c - who is UP, who is READY, whether we have a quorum, and the
 * slot map that follows from them.
 *
 * Health. Every link carries a PING each --peer-ping with the sender's
 * flags - READY, and NO_SLOTS while it has no quorum - (and its map
 * version, published per member for /cluster). A member heard from within
 * --peer-suspect is UP; silent longer, SUSPICIOUS (it keeps its slots: a
 * pause is not a failure); silent past --peer-down, or its link closed,
 * DOWN: the link is closed, everything waiting on it is answered or given
 * back (health_member_down), and its slots move.
 *
 * Eligible: may own slots. A member is eligible while it is READY and has
 * a quorum, and only then. A member without a quorum refuses client writes
 * and expires nothing (below); owning slots it would leave them with
 * nobody who takes a write or expires an instance, whoever can still reach
 * it. So it says NO_SLOTS in its PINGs, owns nothing in its own map, and
 * the others hand its slots to the eligible members - the same rendezvous
 * runner-ups as for a member that is DOWN, so every node agrees - until it
 * has a quorum again (then it merges a peer's copy before it sends a
 * digest, load.c, and takes its slots back with fresh deadlines). A PING
 * of an earlier version has no NO_SLOTS: such a member is eligible while
 * READY, as it always was.
 *
 * One broken link is not a death. Each PING also carries `sees`: the
 * members its sender reaches (UP or SUSPICIOUS) and has eligible (read only
 * when the PING's list hash is ours: the bits are member ids). A member
 * that is DOWN here but that a member we do reach has eligible stays
 * eligible: only the link between us is cut (or one-way), it is alive and
 * serving its slots, and taking them would make two nodes expire each
 * other's beating instances. Writes for its slots are answered
 * "unavailable" here (the client retries through another node); its syncs
 * reach us again when the link does, and verify settles what we missed.
 * When it really dies, or loses its quorum, every member that reaches it
 * drops it and the last report clears within a ping. (Before NO_SLOTS, a
 * member that reached only one other kept its slots everywhere on that
 * one's report, refusing every write for them: issue 11.)
 *
 * The map. The eligible set is computed from those observations by a pure
 * rule (slotmap_eligible, unit-tested). Whenever it changes the map is
 * recomputed by rendezvous hashing (cluster/slotmap.c) and published under
 * the view's seqlock (view.c). Slots gained are taken over: every instance
 * in them gets a full fresh deadline (store_adopt, which keeps an unhealthy
 * instance unhealthy - store_touch would heal it). The takeover goes to
 * each worker as its own message; if one cannot be allocated the slots stay
 * in takeover_due and are sent at a later loop (counted), so instances of a
 * gained slot never go without a deadline. Slots lost stop being expired
 * here (the store's owns hook, peer_owns).
 *
 * Quorum. Expiry needs one: a node on the small side of a partition stops
 * hearing about instances that are most likely beating on the other side,
 * and deletes it made now would win over them (newer versions) once the
 * partition heals. A node has a quorum when it reaches (itself included)
 * more than half the members, or exactly half of them including the member
 * with the lowest id: of two halves, only one can hold that member, so an
 * even split never lets both sides expire each other's instances. (A
 * 2-node cluster therefore keeps expiring on member 1 alone, and member 2
 * alone waits: clusters of an odd size have no such asymmetry.) Without a
 * quorum it owns no slot (above), so the store releases the instances from
 * its expiry lists; when the quorum comes back its slots return with the
 * map, taken over as gained, and a READY node merges a peer's copy before
 * it verifies again (load.c).
 *
 * Writes need the quorum too (view.writable, read by replica_route): a
 * node without one answers every client write "unavailable", so a client
 * with a server list beats through a node of the majority - the side that
 * expires - instead of keeping its instance alive where nobody else hears
 * it (docs/distro.md, "Partitions"). Reads are still served. While links
 * are coming up (the first --peer-down after the start, or after a change
 * of the member list) the quorum is unknown rather than lost, and writes
 * are taken as before.
 *
 * Runs on the peer thread only.
 */
#include "cluster/peer_internal.h"

#include "core/log.h"

#include <string.h>

bool health_quorum(uint32_t reachable, uint32_t n, bool lowest_reachable)
{
	return 2 * reachable > n || (2 * reachable == n && lowest_reachable);
}

/* ---- the takeover ---- */

/* Sends takeover_due to every worker, each its own copy; kept for later without memory. */
void health_takeover_retry(struct peer *p)
{
	struct xtakeover *t[64];
	uint32_t nw = p->env.nworkers, slots = 0;
	bool any = false;

	for (uint32_t i = 0; i < STORE_SLOTS / 64; i++)
		if (p->takeover_due[i]) {
			any = true;
			slots += (uint32_t)__builtin_popcountll(p->takeover_due[i]);
		}
	if (!any)
		return;
	for (uint32_t w = 0; w < nw; w++) {
		t[w] = xmsg_takeover_new();
		if (t[w] == NULL) {
			for (uint32_t k = 0; k < w; k++)
				xmsg_release(t[k]);
			PSTAT_INC(p, takeover_retries);
			return;
		}
		memcpy(t[w]->bits, p->takeover_due, sizeof(t[w]->bits));
		t[w]->slots = slots;
	}
	memset(p->takeover_due, 0, sizeof(p->takeover_due));
	PSTAT_ADD(p, takeover_slots, slots);
	for (uint32_t w = 0; w < nw; w++) {
		if (outbox_send(&p->out, w, t[w]))
			continue;
		/*
		 * Not taken (the outbox is at its bound): the slots are due again,
		 * for every worker - adopting an instance twice only renews its
		 * deadline once more, while not adopting it would leave it without
		 * one.
		 */
		for (uint32_t i = 0; i < STORE_SLOTS / 64; i++)
			p->takeover_due[i] |= t[w]->bits[i];
		xmsg_release(t[w]);
		PSTAT_INC(p, takeover_retries);
	}
}

/* ---- the map ---- */

void health_map_update(struct peer *p)
{
	struct slotmap *sm = &p->scratch;
	uint32_t changed, gained;

	slotmap_compute(sm, &p->conf, p->eligible);
	for (uint32_t s = 0; s < STORE_SLOTS; s++)
		if (sm->owner[s] == p->self && p->view.owners[s] != p->self)
			p->takeover_due[s / 64] |= 1ull << (s % 64);
	view_map_publish(p, sm->owner, &changed, &gained);
	if (changed) {
		PSTAT_INC(p, map_changes);
		log_info("slot map changed: %u slots moved, %u gained (this node owns %u)", changed,
		         gained, slotmap_count(sm, p->self));
	}
	health_takeover_retry(p);
}

/* ---- members ---- */

void health_member_down(struct peer *p, uint16_t id)
{
	STORE_RELAXED(&p->view.m[id].health, PEER_DOWN);
	STORE_RELAXED(&p->view.m[id].ready, 0);
	forward_member_down(p, id);
	repair_pulls_lost(p, id);
	fault_member_down(p, id);
}

void health_send_ping(struct peer *p, struct link *l)
{
	uint8_t b[PWIRE_PING_BYTES];
	struct proto_wr w;

	proto_wr_init(&w, b, sizeof(b));
	/* NO_SLOTS only with READY: an earlier version reads any non-zero byte as READY. */
	proto_wr_u8(&w, p->ready ? PING_READY | (p->quorum ? 0 : PING_NO_SLOTS) : 0);
	proto_wr_u64(&w, LOAD_RELAXED(&p->view.map_seq) / 2);
	proto_wr_u64(&w, p->sees);
	proto_wr_u64(&w, p->conf_hash);
	link_frame_put(l, P_PING, b, sizeof(b), 0, 0, 0);
}

void health_pings(struct peer *p)
{
	for (uint16_t id = 1; id <= p->conf.n; id++) {
		struct link *l = id == p->self ? NULL : member_up(p, id);

		if (l)
			health_send_ping(p, l);
	}
}

void health_on_ping(struct peer *p, uint16_t id, const uint8_t *body, uint32_t len)
{
	struct proto_rd r;
	uint8_t flags;

	proto_rd_init(&r, body, len);
	flags = proto_rd_u8(&r);
	STORE_RELAXED(&p->view.m[id].ready, (uint32_t)((flags & PING_READY) != 0));
	/* Absent from earlier versions: they are eligible whenever READY, as they were. */
	p->by_id[id].no_slots = (flags & PING_NO_SLOTS) != 0;
	STORE_RELAXED(&p->view.m[id].peer_map_version, proto_rd_u64(&r));
	if (len >= PWIRE_PING_BYTES) {
		uint64_t seen = proto_rd_u64(&r);

		/* Bits are member ids: read only under the same member list. */
		p->by_id[id].sees = proto_rd_u64(&r) == p->conf_hash ? seen : 0;
	} else {
		p->by_id[id].sees = 0;
	}
}

void health_on_link_up(struct peer *p, uint16_t id)
{
	STORE_RELAXED(&p->view.m[id].last_rx_ms, p->now_ms);
	STORE_RELAXED(&p->view.m[id].health, PEER_UP);
	health_send_ping(p, p->by_id[id].link.up); /* our READY flag now, not a ping later */
}

/*
 * Writes follow the quorum, except while links are still coming up (the
 * node starts, or the member list changed): until writes_grace_ms a node
 * without a quorum still takes writes, as before it had looked.
 */
static void writable_check(struct peer *p, int64_t now)
{
	bool w = p->quorum || now < p->writes_grace_ms;

	if (w == p->writable)
		return;
	p->writable = w;
	STORE_RELAXED(&p->view.writable, (uint32_t)w);
	if (w)
		log_info("writes accepted again");
	else
		log_warn("no quorum: client writes are answered \"unavailable\" (clients retry "
		         "through a node of the majority) until a quorum is back");
}

static void quorum_check(struct peer *p, int64_t now)
{
	uint32_t up = 1;
	bool lowest = p->self == 1, q;

	for (uint16_t id = 1; id <= p->conf.n; id++)
		if (id != p->self && p->view.m[id].health != PEER_DOWN) {
			up++;
			lowest |= id == 1;
		}
	q = health_quorum(up, p->conf.n, lowest);
	if (q == p->quorum) {
		writable_check(p, now);
		return;
	}
	p->quorum = q;
	STORE_RELAXED(&p->view.quorum, (uint32_t)q);
	if (q) {
		if (p->ready) {
			log_info("quorum back (%u of %u members reachable): expiry resumes", up,
			         p->conf.n);
			p->need_merge = true; /* what the others did meanwhile, before digests */
		}
		/* Its slots come back with the map (eligible_update), taken over as gained. */
	} else if (p->ready) {
		log_warn("only %u of %u members reachable: expiry paused, and this node owns no "
		         "slot, until a quorum is back",
		         up, p->conf.n);
	}
	writable_check(p, now);
}

/*
 * The eligible set from what this node knows (slotmap_eligible, the pure
 * rule), and the map when it changed. A change of what this node relays
 * (its own eligibility, or a member it sees eligible or no longer) is
 * pinged at once: the members that reach a member only through this node
 * learn it without waiting a ping interval, so a member that regains its
 * quorum is not an owner here and a stranger there for a whole interval.
 */
static void eligible_update(struct peer *p, int64_t now)
{
	struct slotmap_seen seen[MEMBERS_MAX + 1];
	bool el[MEMBERS_MAX + 1], changed = false;
	uint64_t sees_was = p->sees;

	memset(seen, 0, sizeof(seen));
	memset(el, 0, sizeof(el));
	for (uint16_t id = 1; id <= p->conf.n; id++) {
		if (id == p->self)
			continue;
		seen[id].reached = p->view.m[id].health != PEER_DOWN;
		seen[id].ready = p->view.m[id].ready != 0;
		seen[id].no_slots = p->by_id[id].no_slots;
		seen[id].sees = p->by_id[id].sees;
	}
	p->sees = slotmap_eligible(seen, p->conf.n, p->self, p->ready && p->quorum, el);
	for (uint16_t id = 1; id <= p->conf.n; id++) {
		if (el[id] != p->eligible[id]) {
			p->eligible[id] = el[id];
			changed = true;
		}
		if (id != p->self)
			link_dial_due(p, id, now, !seen[id].reached && el[id]);
	}
	if (changed)
		health_map_update(p);
	else
		health_takeover_retry(p);
	if (sees_was != p->sees)
		health_pings(p);
}

void health_check(struct peer *p, int64_t now)
{
	link_handshake_timeouts(p, now);
	for (uint16_t id = 1; id <= p->conf.n; id++) {
		struct peer_view_member *vm = &p->view.m[id];
		struct link *l = member_up(p, id);
		enum peer_health h = PEER_DOWN;

		if (id == p->self)
			continue;
		forward_expire(p, id, now);
		repair_pulls_expire(p, id, now);
		if (l) {
			int64_t quiet = now - vm->last_rx_ms;

			if (quiet > (int64_t)p->cfg->peer_down_ms) {
				link_close(p, l, "silent past --peer-down");
			} else {
				h = quiet > (int64_t)p->cfg->peer_suspect_ms ? PEER_SUSPICIOUS
				                                             : PEER_UP;
			}
		}
		if (h != (enum peer_health)vm->health) {
			log_info("peer %s: %s", member_conf(p, id)->addr,
			         h == PEER_UP           ? "UP"
			         : h == PEER_SUSPICIOUS ? "SUSPICIOUS"
			                                : "DOWN");
			STORE_RELAXED(&vm->health, (uint32_t)h);
		}
		if (h == PEER_DOWN) {
			STORE_RELAXED(&vm->ready, 0);
			/* Its reports and its flags are as old as its link. */
			p->by_id[id].sees = 0;
			p->by_id[id].no_slots = false;
		}
	}
	/* The quorum first: this node's own eligibility follows it. */
	quorum_check(p, now);
	eligible_update(p, now);
}
