/*
 * peer.h - Distro, as the rest of distrod sees it: the peer thread's life
 * cycle and the few entry points other threads use.
 *
 * The peer thread (cluster/peer.c and its siblings, one file per concept;
 * docs/distro.md is the protocol) keeps the links to the other members,
 * their health, the slot map, forwarding, sync, verify, repair and the
 * startup load. It is one more participant of the cross-core rings (index
 * nworkers): workers hand it forwarded writes and their change feed, it
 * hands them records to apply (cluster/xmsg.h, the messages). What it
 * publishes for other threads is cluster/view.h; the functions below are
 * the only way to read it.
 *
 * Life cycle: peer_create (before the store: it decides the store's node
 * id and expiry hook, peer_store_hooks), then the server creates the store,
 * the rings and the workers, then peer_start with the environment, then at
 * shutdown the workers stop first (their forwarded writes need answers),
 * peer_stop, and peer_destroy after the store.
 */
#ifndef DISTRO_CLUSTER_PEER_H
#define DISTRO_CLUSTER_PEER_H

#include "cluster/view.h"
#include "server/config.h"
#include "shard/xcore.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

struct peer;

/*
 * Everything the peer thread uses that it does not own, given once at
 * peer_start: it never reaches into the server.
 */
struct peer_env {
	const struct server_config *cfg; /* timers and bounds; read-only */
	struct store *store;             /* read under the peer thread's epoch record */
	struct xcore *xcore;             /* the rings; the peer thread is nworkers */
	uint32_t nworkers;
	uint16_t client_port; /* this node's binary protocol port, told in HELLO */
	/* Each worker's io_uring fd, for MSG_RING wake-ups: open until peer_stop returns. */
	const int *worker_ring_fds;
};

/*
 * Reads cluster.conf and the secret the settings name. 0 when standalone
 * (no --cluster-conf, or only this node listed): *out stays NULL. -1 after
 * logging the problem (bad file, self not found, short secret).
 */
int peer_create(const struct server_config *cfg, uint32_t nworkers, struct peer **out);

/*
 * The cluster secret peer_create read (never changes afterwards): the
 * server derives the Nacos token key from it (nacos/auth.h), so a token
 * issued by one member verifies on every other. *len gets its length.
 */
const uint8_t *peer_secret(const struct peer *p, size_t *len);

/* Sets the store's node id and its expiry hook (peer_owns): before store_create. */
void peer_store_hooks(struct peer *p, struct store_config *sc);

/* This node's client port, once bound: before the workers start (they publish it). */
void peer_client_port_set(struct peer *p, uint16_t port);

/* Binds the peer port and starts the thread. 0 or -errno. env is copied. */
int peer_start(struct peer *p, const struct peer_env *env);

/* Stops the thread and closes the links (after the workers stopped). */
void peer_stop(struct peer *p);

/* Hands every message still waiting for the workers to fn (shutdown, threads stopped). */
void peer_backlog_drain(struct peer *p, void (*fn)(void *ctx, void *msg), void *ctx);

/* Frees what is left; after the store is destroyed (the epoch record). NULL is fine. */
void peer_destroy(struct peer *p);

/* ---- for the workers: any thread ---- */

/* The owner of a slot in the current map: a member id, 0 for nobody. One relaxed load. */
uint16_t peer_owner(const struct peer *p, uint32_t slot);

uint16_t peer_self_id(const struct peer *p);

/* Has this node left the cluster (no longer in cluster.conf)? Then it takes no writes. */
bool peer_left(const struct peer *p);

/*
 * Does this node take client writes? Not when it left the cluster, nor
 * when it cannot reach a quorum of the members (health.c, docs/distro.md
 * "Writes need a quorum"). One relaxed load.
 */
bool peer_writable(const struct peer *p);

/* Asks the peer thread to read cluster.conf again (SIGHUP): any thread. */
void peer_reload_request(struct peer *p);

/* Wakes the peer thread (a worker queued messages for it): one eventfd write. */
void peer_wake(struct peer *p);

/* Expiry runs only for instances this node is responsible for (the store's owns hook). */
bool peer_owns(void *ctx, uint32_t slot);

/*
 * Has the peer thread run its loop within --peer-down (the caller's copy of
 * the setting: p->cfg is set by peer_start, after the workers run) of
 * now_ms? If not,
 * the map and the quorum may be from before a stall of the whole process,
 * and a worker expires nothing until the peer thread has looked (view.h).
 */
bool peer_view_fresh(const struct peer *p, int64_t now_ms, uint32_t peer_down_ms);

/* ---- for status pages: any thread ---- */

/* A snapshot for status pages (relaxed reads, view.h). */
void peer_status_read(const struct peer *p, struct peer_status *out);

/* The slot map's owners (STORE_SLOTS entries), all of one version, and that version. */
uint64_t peer_map_read(const struct peer *p, uint16_t *owners);

#endif
