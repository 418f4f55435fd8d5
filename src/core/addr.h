/*
 * addr.h - an instance's address, and the slot it falls in.
 *
 * An instance is keyed by its ip:port, kept in one form for both families:
 * 16 bytes of IPv6, with IPv4 as the mapped ::ffff:a.b.c.d, so that one
 * host written either way is one key. The slot of an address is
 * XXH3_64(ip[16] || port big-endian[2]) mod ADDR_SLOTS: a wire constant.
 * Every node decides slot ownership, checksums and repair by it, and a
 * routing client sends each write to its slot's owner by it, so the hash,
 * the byte order and ADDR_SLOTS must never change (tests/unit/core/
 * test_addr.c pins a few values).
 *
 * This module is here, and not in the store, because the client library
 * needs exactly this much of the store (parse, format, slot) and must not
 * link the store: it depends on nothing but libc and the inlined xxHash.
 * Pure functions; no state, no allocation, any thread.
 */
#ifndef DISTRO_CORE_ADDR_H
#define DISTRO_CORE_ADDR_H

#include "core/hash.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ADDR_SLOT_BITS 14
#define ADDR_SLOTS     (1u << ADDR_SLOT_BITS)

/* IPv6 address or IPv4-mapped (::ffff:a.b.c.d), and a port. */
struct addr {
	uint8_t ip[16];
	uint16_t port;
};

/*
 * The 64-bit hash whose low ADDR_SLOT_BITS bits are the slot. Inline: the
 * store hashes every key it resolves, and keeps the whole hash (it orders
 * its instance table by slot). O(1).
 */
static inline uint64_t addr_slot_hash(const uint8_t ip[16], uint16_t port)
{
	uint8_t b[18];

	memcpy(b, ip, 16);
	b[16] = (uint8_t)(port >> 8);
	b[17] = (uint8_t)port;
	return XXH3_64bits(b, sizeof(b));
}

/* The slot of an address, 0..ADDR_SLOTS-1. O(1). */
uint32_t addr_slot(const struct addr *a);

/*
 * Parses a textual IPv4 or IPv6 address (no scope id, no brackets) and
 * takes the port. 0, or -ERR_ADDR when the text does not parse or the
 * result fails addr_check (then *out holds no usable address).
 */
int addr_parse(const char *ip, uint16_t port, struct addr *out);

/*
 * Whether an address may key an instance: port not 0, ip neither :: nor
 * ::ffff:0.0.0.0. 0 or -ERR_ADDR. Decoders of outside bytes call it on
 * every address they take.
 */
int addr_check(const struct addr *a);

/*
 * Formats the ip (not the port) into buf, NUL-terminated; IPv4-mapped
 * addresses print as IPv4. INET6_ADDRSTRLEN (46) bytes always suffice; a
 * shorter buf gets an empty string when the text does not fit.
 */
void addr_format(const struct addr *a, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
