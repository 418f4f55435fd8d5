/*
 * route.c - the client's writes sent straight to their slot's owner.
 *
 * With routing on (distro_route_enable), a write batch is split by slot
 * owner (from the map the connected node gave) and each part goes straight
 * to its owner over a connection of its own, so no node forwards. Anything
 * that goes wrong with an owner's connection sends that part through the
 * main connection instead (its node forwards it): routing only ever saves
 * work. The map is fetched again every ROUTE_REFRESH_MS, and at once when
 * an owner's connection failed.
 */
#include "client/client_internal.h"
#include "core/clock.h"

#include <stdlib.h>

#define ROUTE_REFRESH_MS 5000

struct route {
	struct distro_slot_map map;
	int64_t fetched_ms;
	struct distro_client *owner[DISTRO_MEMBERS_MAX + 1]; /* by member id, lazily */
	uint8_t dead[DISTRO_MEMBERS_MAX + 1];                /* connect failed since the map */
	uint32_t idx[BATCH_MAX];
	struct distro_instance part[BATCH_MAX];
	int res[BATCH_MAX];
};

/* The precise monotonic clock in ms (clock_mono_ms would be the coarse one). */
static int64_t route_now_ms(void)
{
	return clock_mono_us() / 1000;
}

static void route_drop_owners(struct route *r)
{
	for (uint32_t id = 0; id <= DISTRO_MEMBERS_MAX; id++) {
		distro_close(r->owner[id]);
		r->owner[id] = NULL;
		r->dead[id] = 0;
	}
}

static int route_refresh(struct distro_client *c)
{
	struct route *r = c->route;
	int rc = distro_slot_map(c, &r->map);

	if (rc < 0) {
		r->map.n = 0; /* no map: everything through the main connection */
		return rc;
	}
	r->fetched_ms = route_now_ms();
	route_drop_owners(r); /* addresses may have changed */
	return 0;
}

int distro_route_enable(struct distro_client *c)
{
	int rc;

	if (c->route)
		return 0;
	c->route = calloc(1, sizeof(*c->route));
	if (c->route == NULL)
		return -DISTRO_ENOMEM;
	if ((rc = route_refresh(c)) < 0) {
		free(c->route);
		c->route = NULL;
	}
	return rc;
}

/* The connection to member id, or NULL (then the main connection carries its items). */
static struct distro_client *route_owner(struct distro_client *c, uint16_t id)
{
	struct route *r = c->route;
	const struct distro_member *m = distro_slot_map_member(&r->map, id);

	if (m == NULL || m->client_addr[0] == '\0' || r->dead[id] || id == r->map.self_id)
		return NULL;
	if (r->owner[id] == NULL &&
	    (distro_connect(m->client_addr, c->timeout_ms, &r->owner[id]) < 0 ||
	     client_creds_copy(r->owner[id], c) < 0)) {
		distro_close(r->owner[id]);
		r->owner[id] = NULL;
		r->dead[id] = 1;
	}
	return r->owner[id];
}

int client_routed_write(struct distro_client *c, uint8_t op, const struct distro_instance *in,
                        uint32_t n, int *results)
{
	struct route *r = c->route;
	uint64_t done[(BATCH_MAX + 63) / 64] = { 0 };
	bool failed = false;
	int rc;

	if (n == 0 || n > BATCH_MAX)
		return -DISTRO_EINVAL;
	if (r->map.n == 0 || route_now_ms() - r->fetched_ms > ROUTE_REFRESH_MS)
		(void)route_refresh(c);
	if (r->map.n == 0)
		return client_write_batch(c, op, in, n, results);
	/* One owner at a time: its items, in order, through its connection. */
	for (uint32_t first = 0; first < n; first++) {
		struct distro_client *oc;
		uint16_t owner;
		uint32_t k = 0;
		int slot;

		if (done[first / 64] & (1ull << (first % 64)))
			continue;
		slot = in[first].ip ? distro_slot_of(in[first].ip, in[first].port) : -1;
		owner = slot < 0 ? 0 : r->map.owners[slot];
		for (uint32_t i = first; i < n; i++) {
			int si;

			if (done[i / 64] & (1ull << (i % 64)))
				continue;
			si = in[i].ip ? distro_slot_of(in[i].ip, in[i].port) : -1;
			if ((si < 0 ? 0 : r->map.owners[si]) != owner)
				continue;
			r->idx[k] = i;
			r->part[k++] = in[i];
			done[i / 64] |= 1ull << (i % 64);
		}
		oc = owner ? route_owner(c, owner) : NULL;
		rc = oc ? client_write_batch(oc, op, r->part, k, r->res) : -1;
		if (oc && rc < 0) { /* the owner is gone or moved: its node will forward */
			distro_close(r->owner[owner]);
			r->owner[owner] = NULL;
			r->dead[owner] = 1;
			failed = true;
		}
		if (rc < 0 && (rc = client_write_batch(c, op, r->part, k, r->res)) < 0)
			return rc;
		for (uint32_t j = 0; results && j < k; j++)
			results[r->idx[j]] = r->res[j];
	}
	if (failed)
		r->fetched_ms = 0; /* a fresh map on the next write */
	return 0;
}

void client_route_free(struct route *r)
{
	if (r == NULL)
		return;
	route_drop_owners(r);
	free(r);
}
