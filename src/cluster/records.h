/*
 * records.h - replicated records on the peer wire.
 *
 * A record is what the store replicates: an instance's key, its replicated
 * value, its version (HLC) and writer node, or a delete. Sync batches, repair
 * chunks and startup loads all carry records in this one encoding, so there
 * is one decoder of peer bytes to fuzz and to trust.
 *
 * Record (little-endian, strings as in docs/protocol.md: u16 length + bytes,
 * 0xFFFF = absent):
 *
 *   key          str ns, str group, str service, str cluster, addr
 *   u8  flags    bit 0 healthy, 1 enabled, 2 ephemeral, 3 deleted
 *   u64 version  hybrid logical clock: wall ms << 16 | logical
 *   u16 node     writer's node id
 *   (only when not deleted:)
 *   u32 weight   thousandths
 *   u32 interval, u32 timeout, u32 delete (ms)
 *   u16 pairs, then pairs x (str key, str value)
 *
 * A batch body is `count` records back to back (count in the frame header).
 * The decoder is bounded by the body and refuses trailing bytes.
 */
#ifndef DISTRO_CLUSTER_RECORDS_H
#define DISTRO_CLUSTER_RECORDS_H

#include "proto/wire.h"
#include "store/store.h"

/* A record carries at most PROTO_META_MAX metadata pairs, as a client item does. */

enum record_flag {
	RF_HEALTHY = 1u << 0,
	RF_ENABLED = 1u << 1,
	RF_EPHEMERAL = 1u << 2,
	RF_DELETED = 1u << 3,
	RF_EXPIRED = 1u << 4, /* written by expiry (STORE_F_EXPIRED); earlier versions ignore it */
};

/* Appends a record made from a store view (a feed entry or a scanned instance). */
void record_put(struct proto_wr *w, const struct store_view *v);

/*
 * Reads one record into r; its metadata pairs go to kv (up to kv_max; more
 * is a decoding error, as a peer never sends more than the store allows).
 * Strings point into the body. Errors stick in the reader.
 */
void record_get(struct proto_rd *rd, struct store_record *r, struct store_kv *kv, uint32_t kv_max);

/* Walks a batch body of count records: 0, or -ERR_PROTO_* (truncated, trailing...). */
int record_batch_check(const uint8_t *body, size_t len, uint32_t count);

#endif
