/*
 * xmsg.h - what travels on the cross-core rings between workers and the
 * peer thread.
 *
 * A ring carries pointers; every message starts with its kind. Ownership
 * moves with the pointer: whoever dequeues a message owns it until it sends
 * it on (a pending goes back to its origin) or frees it. Messages that go
 * to every worker at once (records to apply, slots taken over) carry a
 * reference count instead: the last worker done frees them.
 */
#ifndef DISTRO_SERVER_XMSG_H
#define DISTRO_SERVER_XMSG_H

#include "proto/wire.h"

#include <stdbool.h>
#include <stdint.h>

enum xmsg_kind {
	XM_PENDING = 1,  /* a write request whose items run on several shards or nodes */
	XM_SYNC = 2,     /* worker -> peer thread: records from the change feed */
	XM_APPLY = 3,    /* peer thread -> every worker: replicated records */
	XM_REPAIR = 4,   /* peer thread -> every worker: an owner's copy of one slot */
	XM_TAKEOVER = 5, /* peer thread -> every worker: slots this node now owns */
};

/* The result of an item the origin marked for another node, until its answer. */
#define RESULT_REMOTE INT16_MIN

/*
 * A request whose items run on several workers (and, in a cluster, on other
 * nodes). Owned by its origin: a worker, or the peer thread for writes a
 * peer forwarded here. Each part writes only its own items' results.
 */
struct pending {
	uint8_t kind; /* XM_PENDING */
	bool heap;    /* results and body are a separate allocation */
	bool remote;  /* some items go to peers: marks[i] says which (read-only once sent) */
	uint32_t origin;
	uint32_t conn, conn_gen;
	struct proto_header h;
	uint32_t parts;      /* shards (and the peer thread) still to answer */
	uint64_t shard_mask; /* shards with items */
	int16_t *results;    /* each written by the one part that runs the item */
	uint8_t *body;
	uint8_t *marks;    /* count bytes: 1 = the item's slot is another node's */
	int64_t start_us;  /* when the frame arrived, for the latency histogram */
	uint32_t fwd_left; /* peer thread: remote items not answered yet */
	uint32_t fwd_tag;  /* peer thread: the forward frame this answers (origin = peer) */
	uint16_t fwd_from; /* peer thread: member that forwarded it (origin = peer) */
};

/* Records (cluster/records.h encoding), XM_SYNC / XM_APPLY / XM_REPAIR. */
struct xrecords {
	uint8_t kind;
	uint32_t refs;   /* workers still to process it (XM_APPLY, XM_REPAIR); atomic */
	uint32_t count;  /* records */
	uint32_t len;    /* bytes at data */
	uint16_t slot;   /* XM_REPAIR: the slot replaced */
	uint64_t before; /* XM_REPAIR: the owner's clock when it listed the slot */
	uint64_t *done;  /* if set, incremented (atomic) once every worker is done with it */
	uint8_t data[];
};

/* XM_TAKEOVER: every instance of these slots gets a fresh heartbeat deadline. */
struct xtakeover {
	uint8_t kind;
	uint32_t refs; /* atomic */
	uint64_t bits[16384 / 64];
};

#endif
