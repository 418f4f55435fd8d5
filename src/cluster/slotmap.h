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

/* Slots owned by member id (0 counts the unowned). */
uint32_t slotmap_count(const struct slotmap *sm, uint16_t id);

#endif
