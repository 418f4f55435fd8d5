/*
 * udp_packet.h - the datagram of a Nacos UDP push: the list's JSON as
 * the escaped `data` string of {"type":"dom","lastRefTime":ref,"data":...},
 * gzipped when it is long (udp.h has the protocol; udp.c sends, keeps and
 * retries what this encodes).
 *
 * A packet under UDP_GZIP_MIN_BYTES is written straight into the output
 * buffer (the escaped length is counted first); a longer one is escaped in
 * chunks straight into deflate, whose output buffer is the datagram's
 * maximum, so running out of it is "too big" and no plain copy of a
 * large list is ever made. The deflate state is made once and reset per
 * packet.
 *
 * Contract: one encoder per udp_push (per worker); not thread-safe. The
 * bytes of an encoded packet stay in `out` until the next encode.
 */
#ifndef DISTRO_NACOS_UDP_PACKET_H
#define DISTRO_NACOS_UDP_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#define UDP_PACKET_CHUNK_BYTES 4096 /* escaped bytes per deflate call */

struct udp_packet {
	uint8_t *out; /* UDP_PACKET_BYTES_MAX: the packet being sent */
	z_stream z;
	bool z_ready;
	char chunk[UDP_PACKET_CHUNK_BYTES];
};

/* gzip_level 1..9; -ERR_NOMEM when the buffer or deflate state cannot be made. */
int udp_packet_init(struct udp_packet *p, int gzip_level);

/* Frees what init made; safe on a zeroed or partly made encoder. */
void udp_packet_free(struct udp_packet *p);

/*
 * Encodes the packet of ref and data[0..n) into p->out: its length, or
 * -ERR_PROTO_TOO_BIG when it does not fit UDP_PACKET_BYTES_MAX. Sets *gz.
 */
int udp_packet_encode(struct udp_packet *p, uint64_t ref, const char *data, size_t n, bool *gz);

#endif
