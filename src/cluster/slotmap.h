/*
 * slotmap.h - which member is responsible for each slot.
 *
 * Rendezvous (highest-random-weight) hashing: for slot s, every eligible
 * member m (UP and READY) gets the score hash(s, m.addr) and the highest
 * score owns s. Every node that sees the same eligible set computes the same
 * map, with no coordination; when a member leaves, only the slots it owned
 * move (each to its runner-up), and when one joins, it takes only the slots
 * where it now scores highest: about 1/N of them. Nacos's hash-mod-N over a
 * sorted list moves most keys instead.
 *
 * The score is XXH3 of (slot, member address text) — a documented wire
 * constant, so smart clients can compute the same map. An empty eligible
 * set owns nothing (a node that is not READY owns no slot).
 *
 * Who is eligible (slotmap_eligible) is a rule of its own, pure so that it
 * is unit-tested: a member may own slots only while it is READY and has a
 * quorum, and says so in its PINGs; a member is eligible here when this node
 * reaches it and its PINGs say so, or when this node cannot reach it but a
 * member it does reach reports it eligible there (one cut link is not a
 * death). docs/distro.md, "Health and READY", gives the why.
 */
#ifndef DISTRO_CLUSTER_SLOTMAP_H
#define DISTRO_CLUSTER_SLOTMAP_H

#include "cluster/members.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

struct slotmap {
	uint16_t owner[STORE_SLOTS]; /* member id, 0 = nobody */
};

/* (The published map and its version live in the peer thread's view: cluster/view.h.) */

/* The score of member address `addr` for slot. */
uint64_t slotmap_score(uint32_t slot, const char *addr);

/*
 * Recomputes the map for the members whose eligible[id] is true
 * (eligible is indexed by member id, 1..n). Returns how many slots changed
 * owner. O(STORE_SLOTS x eligible members).
 */
uint32_t slotmap_compute(struct slotmap *sm, const struct members *ms, const bool *eligible);

/* What one node knows of another member, from its link and its last PING. */
struct slotmap_seen {
	bool reached;  /* UP or SUSPICIOUS here: its link is up */
	bool ready;    /* its PING said READY */
	bool no_slots; /* its PING said it may own no slot (no quorum; never from older versions) */
	uint64_t sees; /* its PING's report: bit id-1 = it has member id eligible (reached there) */
};

/*
 * The eligible set of member `self` (eligible[id], id 1..n) from what it
 * knows of the others (seen[id], id 1..n; seen[self] is not read) and
 * whether it may own slots itself (self_ok: READY with a quorum). Member id
 * is eligible when it is reached, READY and not saying no_slots; or, not
 * reached, when a reached member's `sees` has it. Returns the `sees` this
 * node reports in its PINGs: itself if self_ok, and every member reached
 * and eligible (never one known only from another's report: a report is
 * relayed one hop, so it dies with the member that made it). O(n^2).
 */
uint64_t slotmap_eligible(const struct slotmap_seen *seen, uint32_t n, uint16_t self, bool self_ok,
                          bool *eligible);

/* Slots owned by member id (0 counts the unowned). */
uint32_t slotmap_count(const struct slotmap *sm, uint16_t id);

#endif
