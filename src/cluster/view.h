/*
 * view.h - what the peer thread publishes for every other thread to read.
 *
 * The peer thread is the only writer of everything here; workers, the
 * admin thread and STATS read it without locks. Each field has one read
 * rule:
 *
 *   owners[slot]      relaxed, one 16-bit load per item. An item that sees
 *                     the old or the new owner during a change is fine: any
 *                     node accepts any write (forwarded or run here).
 *   map_seq           a seqlock around owners: odd while the peer thread
 *                     rewrites them. peer_map_read copies a whole map of one
 *                     version (SLOT_MAP, /cluster), retrying across a change;
 *                     the map version is map_seq / 2.
 *   ready, quorum     relaxed flags; ready is stored with release after the
 *                     map that gives this node its slots (whoever sees READY
 *                     sees the slots).
 *   writable          relaxed: client writes are taken here (health.c: a
 *                     quorum, or links still coming up after a start or a
 *                     list change). A write item that reads the old value
 *                     during a change is fine either way: it is one item at
 *                     the edge of a partition the node has just noticed.
 *   loop_ms           relaxed: when the peer thread last ran its loop. A
 *                     worker expires nothing while it is older than
 *                     --peer-down (peer_view_fresh): the whole process may
 *                     have stood still, and until the peer thread has
 *                     looked, the map and the quorum are from before.
 *   m[id].*           relaxed, one field at a time: health, ready,
 *                     client_port (learned at the handshake; the host is
 *                     cluster.conf's and never changes, so an address is
 *                     formatted by the reader, never torn), last_rx_ms,
 *                     backlog_bytes, peer_map_version.
 *   stats             relaxed counters (PEER_STATS), summed by nobody: one
 *                     writer.
 *
 * A status snapshot (peer_status_read) is a set of such reads, not a
 * consistent cut; only the map is read whole under the seqlock.
 */
#ifndef DISTRO_CLUSTER_VIEW_H
#define DISTRO_CLUSTER_VIEW_H

#include "cluster/members.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

enum peer_health { PEER_DOWN = 0, PEER_SUSPICIOUS = 1, PEER_UP = 2 };

/* Counters of the peer thread: declared once, for STATS, /metrics and /cluster. */
#define PEER_STATS(X)                                                                              \
	X(links_up)        /* handshakes that completed */                                         \
	X(dials)           /* connections attempted to members (a link down is dialled again) */   \
	X(auth_failures)   /* links refused: bad secret, unknown member, bad hello */              \
	X(preauth_refused) /* accepts refused: PREAUTH_PER_SOURCE unauthenticated from one address \
	                    */                                                                     \
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
	X(verify_confirms)  /* confirming looks asked (SUMS_REQ soon after a slot differed) */     \
	X(verify_sums_bytes_out) /* SUMS_REQ and SUMS bytes sent, all peers */                     \
	X(repair_slots)          /* slots pulled from their owner to repair */                     \
	X(repair_records)                                                                          \
	X(repair_abandoned) /* slot repairs given up (too big, out of memory): verify retries */   \
	X(load_slots)       /* slots loaded at startup */                                          \
	X(load_records)                                                                            \
	X(snapshot_records) /* records served to peers (repair and load) */                        \
	X(takeover_slots)   /* slots gained: every instance in them got a fresh deadline */        \
	X(takeover_retries) /* takeovers kept pending for want of memory, sent later */            \
	X(map_changes)      /* slot map recomputations that changed something */                   \
	X(fault_dropped)    /* sync frames dropped (or not held) by the fault hooks */             \
	X(proto_errors)     /* peer frames refused; the link was closed */                         \
	X(stalls)           /* loops that stood still past --peer-down: links dropped, reloaded */ \
	X(membership_changes)  /* cluster.conf changes applied (membership.c) */                   \
	X(membership_deferred) /* changed lists read once, to be confirmed 50 ms later */

/*
 * Replication lag by stage (us buckets, the last +Inf; not cumulative): where
 * a synced record's time goes between its owner's write and its apply here.
 *   feed     owner: written -> drained from the change feed by its worker
 *            (ms resolution: the version's stamp)
 *   handoff  owner: the worker's batch -> taken by the peer thread
 *   link     the peer thread queued the SYNC frame -> the receiving peer
 *            thread read it (flush, TLS, socket, the receiver's wake-up;
 *            the sender's wall clock in the frame's id: same-clock hosts)
 *   apply    receiver: the peer thread handed the records -> a worker
 *            applied them
 * feed and apply are counted by workers (server/stats.h), handoff and link
 * by the peer thread (struct peer_view); each record counts once per stage
 * except handoff and link, counted once per batch / frame.
 */
#define REPL_STAGES        4
#define REPL_STAGE_BUCKETS 12
enum { REPL_FEED = 0, REPL_HANDOFF, REPL_LINK, REPL_APPLY };
static const uint32_t repl_stage_bounds_us[REPL_STAGE_BUCKETS - 1] = { 100,   250,    500,    1000,
	                                                               2000,  3000,   5000,   10000,
	                                                               25000, 100000, 1000000 };
static const char *const repl_stage_names[REPL_STAGES] = { "feed", "handoff", "link", "apply" };

static inline uint32_t repl_stage_bucket(int64_t us)
{
	uint32_t b = 0;

	while (b < REPL_STAGE_BUCKETS - 1 && us > (int64_t)repl_stage_bounds_us[b])
		b++;
	return b;
}

struct peer_stats {
#define PEER_STAT_FIELD(name) uint64_t name;
	PEER_STATS(PEER_STAT_FIELD)
#undef PEER_STAT_FIELD
};

/* One member's published state (by member id). */
struct peer_view_member {
	uint32_t health;           /* enum peer_health */
	uint32_t ready;            /* its READY flag, from its pings */
	uint32_t client_port;      /* 0 until a handshake told it */
	int64_t last_rx_ms;        /* monotonic ms when anything last arrived; 0 never */
	uint64_t backlog_bytes;    /* unsent bytes on its link */
	uint64_t peer_map_version; /* the map version its last ping carried (its own map) */
};

struct peer_view {
	uint16_t self;        /* relaxed: changes only with the member list (membership.c) */
	uint32_t n;           /* members; relaxed, as self */
	uint32_t client_port; /* this node's, set at peer_start */
	uint64_t map_seq;
	uint16_t owners[STORE_SLOTS];
	uint32_t ready;
	uint32_t quorum;
	uint32_t writable; /* relaxed: client writes are taken (a quorum, or links coming up) */
	int64_t loop_ms;   /* monotonic ms of the peer thread's latest loop */
	uint32_t left;     /* relaxed: this node is no longer in cluster.conf (membership.c) */
	struct peer_view_member m[MEMBERS_MAX + 1];
	struct peer_stats stats;
	uint64_t stage[REPL_STAGES][REPL_STAGE_BUCKETS]; /* handoff and link (relaxed) */
};

/* One member as this node sees it. */
struct peer_member_status {
	uint16_t id;
	char addr[MEMBER_ADDR_MAX];        /* peer address, as in cluster.conf */
	char client_addr[MEMBER_ADDR_MAX]; /* host:client port, learned at the handshake */
	bool self;
	enum peer_health health; /* self: always UP */
	bool ready;
	uint32_t slots;            /* slots it owns in this node's map */
	int64_t last_rx_ms;        /* ms since anything arrived from it; -1 never */
	uint64_t backlog_bytes;    /* output waiting on the link */
	uint64_t peer_map_version; /* the version of its own map, from its last ping */
};

struct peer_status {
	bool clustered; /* false: standalone, the rest is zero */
	uint16_t self_id;
	bool ready;
	bool quorum; /* a majority of the members reachable: expiry runs */
	uint64_t map_version;
	uint32_t n;
	struct peer_member_status m[MEMBERS_MAX];
	struct peer_stats stats;
	uint64_t stage[REPL_STAGES][REPL_STAGE_BUCKETS]; /* handoff and link only */
};

#endif
