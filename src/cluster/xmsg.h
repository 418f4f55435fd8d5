/*
 * xmsg.h - what travels on the cross-core rings between the workers and
 * the peer thread: the contract between those threads.
 *
 * A ring carries pointers (shard/xcore.h). Every message starts with the
 * same head, `struct xmsg`, whose kind says what it is; the asserts below
 * pin the head at offset 0 of every message, so a receiver may read the
 * kind of any pointer it dequeues. One kind per meaning:
 *
 *   XM_PENDING   worker <-> worker, worker <-> peer thread: a write request
 *                whose items run on several shards or nodes (struct pending)
 *   XM_SYNC      worker -> peer thread: records from the shard's change feed
 *   XM_APPLY     peer thread -> worker: a peer's synced records of its shard
 *   XM_LOAD      peer thread -> worker: records of a startup load or merge;
 *                the peer thread counts them applied (load_done)
 *   XM_REPAIR    peer thread -> worker: an owner's whole copy of one slot,
 *                the worker's shard's part of it
 *   XM_TAKEOVER  peer thread -> worker: slots this node now owns
 *   XM_UDP_SUB   worker -> worker: a Nacos UDP subscription, to the worker
 *                that keeps its target
 *   XM_UDP_LIST  worker -> workers -> worker: a listing of a service's UDP
 *                subscribers, visiting every worker once
 *
 * Ownership moves with the pointer: whoever dequeues a message owns it
 * until it sends it on or releases it. Nothing is shared between two
 * receivers: the peer thread sends each worker a message of its own (the
 * records of that worker's shard, its own copy of a takeover), so no
 * message carries a reference count. Records messages and takeovers are
 * made by xmsg_records_new / xmsg_takeover_new and freed by xmsg_release,
 * the one release function (a load message's release also counts it
 * applied). A pending belongs to its origin and goes back to it; only the
 * origin frees it (worker.c's pool, or the peer thread's heap).
 */
#ifndef DISTRO_CLUSTER_XMSG_H
#define DISTRO_CLUSTER_XMSG_H

#include "cluster/members.h"
#include "proto/wire.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum xmsg_kind {
	XM_PENDING = 1,
	XM_SYNC = 2,
	XM_APPLY = 3,
	XM_LOAD = 4,
	XM_REPAIR = 5,
	XM_TAKEOVER = 6,
	XM_UDP_SUB = 7,  /* worker to worker: a Nacos UDP subscription (server/nacos_push.c) */
	XM_UDP_LIST = 8, /* worker to worker: listing a service's UDP subscribers (same file) */
};

/*
 * The user_data of the completion a wake-up posts on a worker's ring
 * (MSG_RING, from another worker or the peer thread): the worker's loop
 * reads its rings after it.
 */
#define XMSG_WAKE_UD (4ull << 56)

/* The common head of every message. */
struct xmsg {
	uint8_t kind; /* enum xmsg_kind */
};

static inline uint8_t xmsg_kind(const void *m)
{
	return ((const struct xmsg *)m)->kind;
}

/* The result of an item its origin routed to another node, until its answer. */
#define RESULT_REMOTE INT16_MIN

/*
 * A write request whose items run on several workers (and, in a cluster,
 * on other nodes). Owned by its origin: a worker, or the peer thread for
 * writes a peer forwarded here. Each part writes only its own items'
 * results.
 *
 * Routing is decided once, by the origin: owners[i] is the member that
 * runs item i (0: this node, its shard's worker). The peer thread forwards
 * to exactly that member, and workers skip the items it names, so a map
 * change while the request travels cannot leave an item with nobody.
 */
struct pending {
	struct xmsg head; /* XM_PENDING */
	bool heap;        /* results and body are a separate allocation */
	bool remote;      /* some items go to peers: owners[] says which (read-only once sent) */
	bool forget;      /* second round of a DEREGISTER: shards drop their stale replicas */
	uint32_t origin;
	uint32_t conn, conn_gen;
	struct proto_header h;
	uint32_t parts;      /* shards (and the peer thread) still to answer */
	uint64_t shard_mask; /* shards with items */
	int16_t *results;    /* each written by the one part that runs the item */
	uint8_t *body;
	uint8_t *owners;   /* count bytes: the member that runs item i, 0 = here */
	int64_t start_us;  /* when the frame arrived, for the latency histogram */
	uint32_t fwd_left; /* peer thread: remote items not answered yet */
	uint32_t fwd_tag;  /* peer thread: the forward frame this answers (origin = peer) */
	uint16_t fwd_from; /* peer thread: member that forwarded it (origin = peer) */
	uint32_t fwd_gen;  /* peer thread: its member list generation then (membership.c) */
};

_Static_assert(MEMBERS_MAX <= UINT8_MAX, "pending.owners holds a member id in a byte");

/* Records (cluster/records.h encoding): XM_SYNC, XM_APPLY, XM_LOAD, XM_REPAIR. */
struct xrecords {
	struct xmsg head;
	uint32_t count;  /* records */
	uint32_t len;    /* bytes at data */
	uint32_t cap;    /* bytes the allocation holds at data */
	uint16_t slot;   /* XM_REPAIR: the slot replaced */
	uint64_t before; /* XM_REPAIR: the owner's clock when it listed the slot */
	uint64_t *done;  /* XM_LOAD, XM_APPLY: incremented (release) when the message is released */
	int64_t sent_us; /* XM_SYNC, XM_APPLY: clock_mono_us when handed over (lag stages) */
	uint8_t data[];
};

/* XM_TAKEOVER: every instance of these slots gets a fresh heartbeat deadline. */
struct xtakeover {
	struct xmsg head;
	uint32_t slots; /* bits set */
	uint64_t bits[STORE_SLOTS / 64];
};

_Static_assert(offsetof(struct pending, head) == 0, "every message starts with its head");
_Static_assert(offsetof(struct xrecords, head) == 0, "every message starts with its head");
_Static_assert(offsetof(struct xtakeover, head) == 0, "every message starts with its head");

/* A records message of `kind` with room for cap bytes, empty; NULL without memory. */
struct xrecords *xmsg_records_new(uint8_t kind, uint32_t cap);

/* An empty takeover; NULL without memory. */
struct xtakeover *xmsg_takeover_new(void);

/*
 * Frees a records message or a takeover (never a pending: it goes back to
 * its origin). A load message first counts itself applied in *done.
 */
void xmsg_release(void *m);

#endif
