/*
 * addr.c - addresses and slots (the rules are in addr.h).
 *
 * Text goes through inet_pton/inet_ntop, so what parses is exactly what
 * the C library calls an address: no scope ids, no leading zeros in IPv4.
 */
#include "core/addr.h"

#include "core/err.h"

#include <arpa/inet.h>
#include <stdbool.h>

static const uint8_t zero[16];

static bool ip_is_v4(const uint8_t ip[16])
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return memcmp(ip, prefix, 12) == 0;
}

uint32_t addr_slot(const struct addr *a)
{
	return (uint32_t)(addr_slot_hash(a->ip, a->port) & (ADDR_SLOTS - 1));
}

int addr_check(const struct addr *a)
{
	if (a->port == 0 || memcmp(a->ip, zero, 16) == 0)
		return -ERR_ADDR;
	if (ip_is_v4(a->ip) && memcmp(&a->ip[12], zero, 4) == 0)
		return -ERR_ADDR;
	return 0;
}

int addr_parse(const char *ip, uint16_t port, struct addr *out)
{
	struct in_addr v4;

	memset(out, 0, sizeof(*out));
	if (ip == NULL)
		return -ERR_ADDR;
	if (inet_pton(AF_INET, ip, &v4) == 1) {
		out->ip[10] = 0xff;
		out->ip[11] = 0xff;
		memcpy(&out->ip[12], &v4, 4);
	} else if (inet_pton(AF_INET6, ip, out->ip) != 1) {
		return -ERR_ADDR;
	}
	out->port = port;
	return addr_check(out);
}

void addr_format(const struct addr *a, char *buf, size_t len)
{
	const char *s;

	if (ip_is_v4(a->ip))
		s = inet_ntop(AF_INET, &a->ip[12], buf, (socklen_t)len);
	else
		s = inet_ntop(AF_INET6, a->ip, buf, (socklen_t)len);
	if (s == NULL && len > 0)
		buf[0] = '\0';
}
