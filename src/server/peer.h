/*
 * peer.h - the cluster's peer thread: links to the other members, health,
 * the slot map, forwarding, sync, verify and repair, startup load.
 *
 * docs/distro.md is the protocol; peer.c holds the design notes. The peer
 * thread is one more participant of the cross-core rings (index nworkers),
 * so workers hand it forwarded writes and their change feed, and it hands
 * them records to apply, without locks.
 */
#ifndef DISTRO_SERVER_PEER_H
#define DISTRO_SERVER_PEER_H

#include "cluster/members.h"
#include "cluster/slotmap.h"

#include <stdbool.h>
#include <stdint.h>

struct server;
struct peer;

enum peer_health { PEER_DOWN = 0, PEER_SUSPICIOUS = 1, PEER_UP = 2 };

/* Counters of the peer thread: declared once, for STATS, /metrics and /cluster. */
#define PEER_STATS(X)                                                                              \
	X(links_up)        /* handshakes that completed */                                         \
	X(auth_failures)   /* links refused: bad secret, unknown member, bad hello */              \
	X(fwd_batches)     /* forward frames sent */                                               \
	X(fwd_items)       /* write items forwarded to their owner */                              \
	X(fwd_unavailable) /* items answered retryable: the owner was unreachable */               \
	X(fwd_served)      /* items executed here for a peer */                                    \
	X(sync_frames_out)                                                                         \
	X(sync_records_out) /* records sent (per peer) */                                          \
	X(sync_dropped)     /* records not sent: backlog full or link down (verify repairs) */     \
	X(sync_frames_in)                                                                          \
	X(sync_records_in)                                                                         \
	X(verify_rounds)    /* digests sent */                                                     \
	X(verify_bytes_out) /* digest bytes sent, all peers */                                     \
	X(verify_mismatch)  /* digest ranges that differed */                                      \
	X(repair_slots)     /* slots pulled from their owner to repair */                          \
	X(repair_records)                                                                          \
	X(load_slots) /* slots loaded at startup */                                                \
	X(load_records)                                                                            \
	X(snapshot_records) /* records served to peers (repair and load) */                        \
	X(takeover_slots)   /* slots gained: every instance in them got a fresh deadline */        \
	X(map_changes)      /* slot map recomputations that changed something */                   \
	X(fault_dropped)    /* sync frames dropped by the fault hook */                            \
	X(proto_errors)     /* peer frames refused; the link was closed */

struct peer_stats {
#define PEER_STAT_FIELD(name) uint64_t name;
	PEER_STATS(PEER_STAT_FIELD)
#undef PEER_STAT_FIELD
};

/* One member as this node sees it. */
struct peer_member_status {
	uint16_t id;
	char addr[MEMBER_ADDR_MAX];        /* peer address, as in cluster.conf */
	char client_addr[MEMBER_ADDR_MAX]; /* host:client port, learned at the handshake */
	bool self;
	enum peer_health health; /* self: always UP */
	bool ready;
	uint32_t slots;         /* slots it owns in this node's map */
	int64_t last_rx_ms;     /* monotonic ms since anything arrived from it; -1 never */
	uint64_t backlog_bytes; /* output waiting on the link */
};

struct peer_status {
	bool clustered; /* false: standalone, the rest is zero */
	uint16_t self_id;
	bool ready;
	bool quorum; /* at least half the members reachable: expiry runs */
	uint64_t map_version;
	uint32_t n;
	struct peer_member_status m[MEMBERS_MAX];
	struct peer_stats stats;
};

/*
 * Reads cluster.conf and the secret named in the server's settings. 0 when
 * standalone (no --cluster-conf, or only this node listed): *out stays NULL.
 * -1 after logging the problem (bad file, self not found, short secret).
 */
int peer_create(struct server *s, struct peer **out);

/* Binds the peer port and starts the thread. 0 or -errno. */
int peer_start(struct peer *p);

/* Stops the thread and closes the links (after the workers stopped). */
void peer_stop(struct peer *p);

/* Hands the messages still waiting for the workers to add() (shutdown, threads stopped). */
void peer_backlog_take(struct peer *p, bool (*add)(void ***v, uint32_t *n, uint32_t *cap, void *m),
                       void ***v, uint32_t *n, uint32_t *cap);

/* Frees what is left; after the store is destroyed (the epoch record). NULL is fine. */
void peer_destroy(struct peer *p);

/* The owner of a slot in the current map: a member id, 0 for nobody. Any thread. */
uint16_t peer_owner(const struct peer *p, uint32_t slot);

uint16_t peer_self_id(const struct peer *p);

/* The file descriptor workers write to wake the peer thread. */
int peer_wake_fd(const struct peer *p);

/* A consistent-enough snapshot for status pages (relaxed reads). Any thread. */
void peer_status_read(const struct peer *p, struct peer_status *out);

/* The slot map's owners (STORE_SLOTS entries) and version, for SLOT_MAP. Any thread. */
uint64_t peer_map_read(const struct peer *p, uint16_t *owners);

/* Expiry runs only for instances this node is responsible for (store hook). */
bool peer_owns(void *ctx, uint32_t slot);

#endif
