/*
 * load.c - the startup load, merge-before-verify, and becoming READY.
 *
 * A node starts not READY: it owns nothing and serves no PULL and no
 * DIGEST. Once a READY peer is UP it pulls all 16384 slots as LOAD_SETS
 * load sets of 64 slots, up to PULLS_MAX sets in flight per READY peer,
 * spread over all of them; a set whose pull is lost (link down, refused,
 * late) goes back to the plan and another peer takes it. When every set
 * is in, and the workers have applied every message of it (load_done
 * counts the XM_LOAD messages they released), the node becomes READY:
 * then the map gives it its slots and it takes them over. If no READY peer
 * appears within --startup-wait of the start (a whole cluster starting),
 * it becomes READY with what it has. Never one giant message (Nacos #7429,
 * #13913).
 *
 * Load set s is every LOAD_SETS-th slot from s, not 64 neighbours: a slot
 * is a region of the store's table, and filling an empty table region by
 * region piles every probe sequence into the next region (quadratic);
 * spread out, a load fills the table evenly. (A digest "range", verify.c,
 * is 64 neighbouring slots: a different thing.)
 *
 * Merge before verify. A node that became READY without a peer's copy (it
 * started alone, a load stalled, or it was cut off from most of the
 * cluster) may own slots whose instances live elsewhere. Until it has
 * merged a READY peer's copy (the same pulls, applied last-writer-wins,
 * nothing dropped) it sends no digest: otherwise its peers would "repair"
 * those slots to its incomplete copy and forget live instances.
 *
 * Loading again. A node whose loop stood still longer than --peer-down (a
 * SIGSTOP, a VM freeze, a stalled disk) was DOWN to its peers: they took
 * its slots, took its clients' beats and writes, and closed its links. Its
 * copy and its beat times are from before the stall, so it must not act on
 * them: load_restart drops READY (the map at once gives it nothing to own
 * or expire), and it loads from its READY peers like a node starting, then
 * takes its slots back with fresh deadlines. Its links are closed before
 * (peer.c): what waited in them is as old as the stall.
 *
 * The plan (struct load_plan) is pure state, unit-tested on its own.
 * Runs on the peer thread only.
 */
#include "cluster/peer_internal.h"

#include "core/log.h"
#include "core/mem.h"

#include <string.h>

/* ---- the plan ---- */

void load_plan_reset(struct load_plan *lp)
{
	memset(lp, 0, sizeof(*lp));
}

int load_plan_take(struct load_plan *lp)
{
	for (uint32_t s = 0; s < LOAD_SETS; s++)
		if (lp->state[s] == SET_TODO) {
			lp->state[s] = SET_IN_FLIGHT;
			return (int)s;
		}
	return -1;
}

void load_plan_finish(struct load_plan *lp, uint32_t set, bool ok)
{
	if (set >= LOAD_SETS || lp->state[set] != SET_IN_FLIGHT)
		return;
	if (ok) {
		lp->state[set] = SET_DONE;
		lp->done++;
	} else {
		lp->state[set] = SET_TODO; /* another peer takes it */
	}
}

bool load_plan_complete(const struct load_plan *lp)
{
	return lp->done == LOAD_SETS;
}

void load_set_slots(uint32_t set, struct pull *pl)
{
	pl->n = 0;
	for (uint32_t i = 0; i < STORE_SLOTS / LOAD_SETS; i++)
		pl->slots[pl->n++] = (uint16_t)(i * LOAD_SETS + set);
}

/* ---- pulling it ---- */

bool load_any_ready_peer(struct peer *p)
{
	for (uint16_t id = 1; id <= p->conf.n; id++)
		if (id != p->self && p->view.m[id].ready && member_up(p, id))
			return true;
	return false;
}

static void load_schedule(struct peer *p)
{
	for (uint16_t id = 1; id <= p->conf.n; id++) {
		if (id == p->self || !p->view.m[id].ready || member_up(p, id) == NULL)
			continue;
		while (repair_pulls_free(&p->by_id[id].pulls) > 0) {
			struct pull *pl;
			int set = load_plan_take(&p->plan);

			if (set < 0)
				return;
			pl = mem_alloc(sizeof(*pl));
			if (pl == NULL) {
				load_plan_finish(&p->plan, (uint32_t)set, false);
				return;
			}
			memset(pl, 0, sizeof(*pl));
			pl->load = true;
			pl->set = (uint16_t)set;
			load_set_slots((uint32_t)set, pl);
			if (!repair_pull_send(p, id, pl)) {
				load_plan_finish(&p->plan, (uint32_t)set, false);
				mem_free(pl);
				break;
			}
		}
	}
}

void load_pull_finished(struct peer *p, const struct pull *pl, bool ok)
{
	load_plan_finish(&p->plan, pl->set, ok);
	if (ok)
		p->load_progress_ms = p->now_ms;
}

static bool load_applied(struct peer *p)
{
	return LOAD_ACQUIRE(&p->load_done) == p->load_sent;
}

static void become_ready(struct peer *p, const char *how, bool loaded)
{
	/*
	 * The map first: whoever sees READY sees the slots it owns (SLOT_MAP).
	 * Without a quorum it owns none yet (health.c, eligible_update).
	 */
	p->eligible[p->self] = p->quorum;
	health_map_update(p);
	p->ready = true;
	STORE_RELEASE(&p->view.ready, 1);
	p->loading = false;
	p->need_merge = !loaded;
	log_info("READY (%s)", how);
	health_pings(p); /* peers learn it now: they give us our slots sooner */
}

void load_restart(struct peer *p, int64_t now)
{
	bool was_ready = p->ready;

	p->ready = false;
	STORE_RELEASE(&p->view.ready, 0);
	p->eligible[p->self] = false;
	health_map_update(p); /* READY off first, then the map: nobody sees slots without READY */
	load_plan_reset(&p->plan);
	p->loading = p->need_merge = p->merging = false;
	p->start_ms = now; /* --startup-wait counts from here */
	if (was_ready)
		log_warn("not READY: loading the cluster's copy again before owning any slot");
}

void load_progress(struct peer *p, int64_t now)
{
	if (p->ready)
		return;
	if (load_plan_complete(&p->plan)) {
		/* READY once the workers have applied every chunk, not just received it. */
		if (load_applied(p))
			become_ready(p, "loaded from peers", true);
		return;
	}
	if (!load_any_ready_peer(p)) {
		/* Nobody to load from: a cluster starting as a whole, or alone. */
		int64_t since = p->loading ? p->load_progress_ms : p->start_ms;

		if (now - since >= (int64_t)p->cfg->startup_wait_ms)
			become_ready(p,
			             p->loading ? "load stalled: no READY peer left"
			                        : "no READY peer: with what this node holds",
			             false);
		return;
	}
	if (!p->loading) {
		p->loading = true;
		p->load_progress_ms = now;
		log_info("loading from READY peers");
	}
	load_schedule(p);
}

void load_merge_progress(struct peer *p)
{
	if (!p->ready || !p->need_merge)
		return;
	if (!p->merging) {
		if (!load_any_ready_peer(p))
			return;
		load_plan_reset(&p->plan);
		p->merging = true;
		log_info("merging a READY peer's copy before verifying");
	}
	if (load_plan_complete(&p->plan) && load_applied(p)) {
		p->merging = false;
		p->need_merge = false;
		log_info("merged: verify resumes");
		return;
	}
	load_schedule(p);
}
