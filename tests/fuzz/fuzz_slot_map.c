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
static bool owner_ok[DISTRO_MEMBERS_MAX + 1];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len;
	int rc;

	if (size < 1 || size - 1 > (1u << 16))
		return 0;
	len = size - 1;
	if ((data[0] & 0x80) && size >= 3) {
		size_t done = 2;

		len -= 2; /* the owner value, not body */
		memcpy(body, data + 1, len);
		memcpy(body + len, data + size - 2, 2);
		while (done < 2 * DISTRO_SLOTS) { /* doubling: a few copies, not 16384 stores */
			size_t n = done < 2 * DISTRO_SLOTS - done ? done : 2 * DISTRO_SLOTS - done;

			memcpy(body + len + done, body + len, n);
			done += n;
		}
		len += 2 * DISTRO_SLOTS;
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
		/* Each owner id looked up once: 16384 slots name few of them. */
		memset(owner_ok, 0, sizeof(owner_ok));
		for (uint32_t s = 0; s < DISTRO_SLOTS; s++) {
			uint16_t o = map.owners[s];

			if (o > DISTRO_MEMBERS_MAX)
				abort();
			if (o == 0 || owner_ok[o])
				continue;
			if (distro_slot_map_member(&map, o) == NULL)
				abort();
			owner_ok[o] = true;
		}
	}
	return 0;
}
