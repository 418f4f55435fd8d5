/*
 * svc.h - a shard's services, their cluster names and instance arrays
 * (svc.c has the rules). Internal to the store: included by
 * store_internal.h.
 */
#ifndef DISTRO_STORE_SVC_H
#define DISTRO_STORE_SVC_H

#include "store/intern.h"

#include <stdint.h>

struct store_inst;
struct store_shard;
struct rkey;

/* Live instances of a service, appended in place, holes left NULL. */
struct svc_arr {
	uint32_t n; /* used positions (release) */
	uint32_t cap;
	struct store_inst *v[];
};

struct svc_clusters {
	uint32_t n;
	uint32_t cap;
	const struct istr *names[];
};

struct store_svc {
	const struct istr *ns, *group, *name;
	uint64_t hash;                 /* content hash of the three names; also picks the shard */
	struct svc_arr *arr;           /* release-published */
	struct svc_clusters *clusters; /* release-published, append-only */
	uint64_t revision;             /* bumped on every change of the list (relaxed atomic) */
	uint32_t live;                 /* live instances: writer, relaxed stores */
	uint32_t holes;                /* writer: NULL positions in arr */
	uint32_t records;              /* writer: live + tombstones pointing here */
};

/* Reader-safe: the service of a resolved key, or NULL. */
struct store_svc *svc_find(const struct store_shard *sh, const struct rkey *rk);

/* Reader-safe: index of a cluster name in the service, or -1. */
int svc_cluster_find(const struct store_svc *svc, struct store_str name, uint64_t hash);

/* Reader-safe: the interned name of an instance's cluster. */
const struct istr *svc_cluster_of(const struct store_inst *in);

/*
 * The service of a resolved key, created (with a fresh revision) if it is
 * new: 0, -ERR_LIMIT_SERVICES or -ERR_NOMEM. A new service has no
 * records: the caller that fails to add one calls svc_maybe_release.
 */
int svc_get(struct store_shard *sh, const struct rkey *rk, struct store_svc **out);

/* Drops a service that no record refers to any more (records == 0); else nothing. */
void svc_maybe_release(struct store_shard *sh, struct store_svc *svc);

/* Index of the key's cluster in the service, added if new: >= 0, or -ERR_LIMIT_CLUSTERS /
 * -ERR_NOMEM. */
int svc_cluster_get(struct store_shard *sh, struct store_svc *svc, const struct rkey *rk);

/*
 * Appends a live instance to the service's array (sets in->svc_pos, bumps
 * live and the revision): 0 or -ERR_NOMEM (nothing changed). Amortised
 * O(1); a full array is rebuilt without holes.
 */
int svc_arr_add(struct store_shard *sh, struct store_svc *svc, struct store_inst *in);

/* Leaves a hole at the instance's position; compacts once holes are most of it. */
void svc_arr_remove(struct store_shard *sh, struct store_svc *svc, struct store_inst *in);

/* Frees every service of the shard and its table at once (store_destroy: no readers left). */
void svc_destroy_all(struct store_shard *sh);

#endif
