/*
 * libFuzzer target for the client's SLOT_MAP decoder
 * (distro_slot_map_decode): whatever a node — or something pretending to
 * be one — answers, a client gets a checked map or -DISTRO_EPROTO, never a
 * crash or an out-of-bounds read.
 *
 * Input: byte 0 is the frame's member count (low 7 bits); the rest is the
 * body. A good clustered answer is over 32 KiB (16384 owners), beyond the
 * fuzzer's usual max_len, so when byte 0 has its high bit set the body is
 * followed by 16384 owners all equal to the input's last two bytes, which
 * are then not part of the body: the owner checks run too.
 */
#include "distro/client.h"

#include <stdlib.h>
#include <string.h>

static struct distro_slot_map map;
static uint8_t body[(1u << 16) + 2 * DISTRO_SLOTS];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len;
	int rc;

	if (size < 1 || size - 1 > (1u << 16))
		return 0;
	len = size - 1;
	if ((data[0] & 0x80) && size >= 3) {
		len -= 2; /* the owner value, not body */
		memcpy(body, data + 1, len);
		for (uint32_t s = 0; s < DISTRO_SLOTS; s++) {
			body[len++] = data[size - 2];
			body[len++] = data[size - 1];
		}
	} else {
		memcpy(body, data + 1, len);
	}
	rc = distro_slot_map_decode(body, len, data[0] & 0x7f, &map);
	if (rc != 0 && rc != -DISTRO_EPROTO)
		abort();
	if (rc == 0) {
		if (map.n > DISTRO_MEMBERS_MAX)
			abort();
		for (uint32_t i = 0; i < map.n; i++)
			if (memchr(map.m[i].addr, 0, DISTRO_ADDR_MAX) == NULL ||
			    memchr(map.m[i].client_addr, 0, DISTRO_ADDR_MAX) == NULL ||
			    distro_slot_map_member(&map, map.m[i].id) != &map.m[i])
				abort();
		for (uint32_t s = 0; s < DISTRO_SLOTS; s++)
			if (map.owners[s] != 0 &&
			    distro_slot_map_member(&map, map.owners[s]) == NULL)
				abort();
	}
	return 0;
}
