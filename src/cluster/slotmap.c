#include "cluster/slotmap.h"

#include "core/hash.h"

#include <string.h>

#define SLOTMAP_SEED 0x736c6f746d6170ULL /* "slotmap" */

uint64_t slotmap_score(uint32_t slot, const char *addr)
{
	return XXH3_64bits_withSeed(addr, strlen(addr), SLOTMAP_SEED ^ ((uint64_t)slot << 1));
}

uint32_t slotmap_compute(struct slotmap *sm, const struct members *ms, const bool *eligible)
{
	uint32_t changed = 0;

	for (uint32_t slot = 0; slot < STORE_SLOTS; slot++) {
		uint64_t best = 0;
		uint16_t owner = 0;

		for (uint32_t i = 0; i < ms->n; i++) {
			const struct member *m = &ms->m[i];
			uint64_t score;

			if (!eligible[m->id])
				continue;
			score = slotmap_score(slot, m->addr);
			/* Ties (astronomically rare) go to the lower id, the same on every node. */
			if (owner == 0 || score > best) {
				best = score;
				owner = m->id;
			}
		}
		if (sm->owner[slot] != owner) {
			sm->owner[slot] = owner;
			changed++;
		}
	}
	return changed;
}

uint64_t slotmap_eligible(const struct slotmap_seen *seen, uint32_t n, uint16_t self, bool self_ok,
                          bool *eligible)
{
	uint64_t sees = self_ok ? 1ull << (self - 1) : 0;

	eligible[self] = self_ok;
	for (uint16_t id = 1; id <= n; id++) {
		const struct slotmap_seen *s = &seen[id];

		if (id == self || !s->reached)
			continue;
		eligible[id] = s->ready && !s->no_slots;
		if (eligible[id])
			sees |= 1ull << (id - 1);
	}
	for (uint16_t id = 1; id <= n; id++) {
		if (id == self || seen[id].reached)
			continue;
		eligible[id] = false;
		for (uint16_t j = 1; j <= n && !eligible[id]; j++)
			eligible[id] = j != self && j != id && seen[j].reached &&
			               (seen[j].sees & (1ull << (id - 1)));
	}
	return sees;
}

uint32_t slotmap_count(const struct slotmap *sm, uint16_t id)
{
	uint32_t n = 0;

	for (uint32_t slot = 0; slot < STORE_SLOTS; slot++)
		n += sm->owner[slot] == id;
	return n;
}
