/*
 * pwire.h - frames on the peer port (docs/distro.md, "Peer frames").
 *
 * Peer frames share the client protocol's 16-byte header layout with their
 * own magic ("DP"), so a peer frame sent to a client port is refused as bad
 * magic and a client frame sent to the peer port likewise. Every body is
 * checked whole by pwire_check before the peer thread acts on it: this is
 * the decoder of a peer's bytes, and it has a fuzz target.
 */
#ifndef DISTRO_CLUSTER_PWIRE_H
#define DISTRO_CLUSTER_PWIRE_H

#include "proto/wire.h"

#include <stddef.h>
#include <stdint.h>

#define PWIRE_MAGIC0      0x44 /* 'D' */
#define PWIRE_MAGIC1      0x50 /* 'P' */
#define PWIRE_VERSION     1
#define PWIRE_FRAME_MAX   (16u << 20) /* largest peer frame accepted */
#define PWIRE_RANGES      256         /* digest ranges */
#define PWIRE_RANGE_SLOTS (STORE_SLOTS / PWIRE_RANGES)
#define PWIRE_PULL_MAX    1024  /* slots in one PULL */
#define PWIRE_FWD_MAX     65535 /* items in one FWD */
#define PWIRE_PING_BYTES  25    /* u8 flags, u64 map version, u64 sees, u64 list hash */

enum pwire_op {
	P_HELLO = 1,    /* u16 version, u16 from, u16 to, u16 client port, nonce[32] */
	P_AUTH = 2,     /* mac[32] */
	P_PING = 3,     /* u8 flags, u64 map version[, u64 sees, u64 list hash] */
	P_FWD = 4,      /* id = tag, status = client op, count items (client encoding) */
	P_FWD_ACK = 5,  /* id = tag, count i16 results */
	P_SYNC = 6,     /* count records */
	P_DIGEST = 7,   /* PWIRE_RANGES u64 */
	P_SUMS_REQ = 8, /* u16 n, n u16 ranges */
	P_SUMS = 9,     /* u16 n, n (u16 slot, u64 checksum, u32 count) */
	P_PULL = 10,    /* id = tag, status = flags, u16 n, n u16 slots */
	P_CHUNK = 11,   /* id = tag, status = flags, count records: u16 slot, u64 before, records */
	P_PULL_DONE = 12 /* id = tag, status = 0 or an error code */
};

enum pwire_pull_flag { PULL_LOAD = 1 };   /* startup load: any slot, apply only */
enum pwire_chunk_flag { CHUNK_LAST = 1 }; /* the slot's last chunk */

/*
 * A PING's first byte. Versions before PING_NO_SLOTS sent 0 or 1 and read
 * any non-zero byte as READY, so they take a READY node without a quorum
 * for an eligible one (as they always did); a receiver of this version
 * treats a PING without PING_NO_SLOTS as eligible, so a node of an
 * earlier version keeps its slots while READY, as it did.
 */
enum pwire_ping_flag {
	PING_READY = 1,   /* the sender has loaded the cluster's copy */
	PING_NO_SLOTS = 2 /* the sender may own no slot now: it has no quorum */
};

/* Writes a peer header at out (PROTO_HEADER_BYTES). */
void pwire_header_put(uint8_t *out, uint8_t op, uint32_t body_len, uint32_t id, uint16_t status,
                      uint16_t count);

/*
 * Parses a header from buf: >0 the whole frame's length once it is all in
 * buf, 0 when more bytes are needed, or a negative -ERR_PROTO_* code.
 */
long pwire_frame_check(const uint8_t *buf, size_t len, struct proto_header *h);

/* Checks a whole body for its op: 0 or -ERR_PROTO_*. */
int pwire_check(const struct proto_header *h, const uint8_t *body);

#endif
