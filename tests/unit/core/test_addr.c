/* core/addr: parsing, formatting, and the slot function (a wire constant). */
#include "core/addr.h"
#include "core/err.h"

#include <criterion/criterion.h>

static struct addr parsed(const char *ip, uint16_t port)
{
	struct addr a;

	cr_assert_eq(addr_parse(ip, port, &a), 0, "%s parses", ip);
	return a;
}

Test(addr, parses_both_families_into_one_form)
{
	static const uint8_t v4[16] = { [10] = 0xff, [11] = 0xff, [12] = 10, [15] = 1 };
	struct addr a = parsed("10.0.0.1", 8080), b = parsed("::ffff:10.0.0.1", 8080);

	cr_assert_arr_eq(a.ip, v4, 16, "IPv4 is kept IPv4-mapped");
	cr_assert_eq(a.port, 8080);
	cr_assert_arr_eq(a.ip, b.ip, 16, "one host written either way is one key");
	a = parsed("2001:db8::7", 9090);
	cr_assert_eq(a.ip[0], 0x20);
	cr_assert_eq(a.ip[15], 0x07);
}

Test(addr, refuses_what_cannot_key_an_instance)
{
	struct addr a;

	cr_assert_eq(addr_parse("10.0.0.256", 80, &a), -ERR_ADDR);
	cr_assert_eq(addr_parse("not-an-ip", 80, &a), -ERR_ADDR);
	cr_assert_eq(addr_parse("", 80, &a), -ERR_ADDR);
	cr_assert_eq(addr_parse(NULL, 80, &a), -ERR_ADDR);
	cr_assert_eq(addr_parse("0.0.0.0", 80, &a), -ERR_ADDR);
	cr_assert_eq(addr_parse("::", 80, &a), -ERR_ADDR);
	cr_assert_eq(addr_parse("::ffff:0.0.0.0", 80, &a), -ERR_ADDR);
	cr_assert_eq(addr_parse("10.0.0.1", 0, &a), -ERR_ADDR);
	cr_assert_eq(addr_parse("fe80::1%eth0", 80, &a), -ERR_ADDR);
	cr_assert_eq(addr_parse("[::1]", 80, &a), -ERR_ADDR);

	a = parsed("10.0.0.1", 80);
	cr_assert_eq(addr_check(&a), 0);
	a.port = 0;
	cr_assert_eq(addr_check(&a), -ERR_ADDR);
	a = parsed("::1", 80);
	memset(a.ip, 0, 16);
	cr_assert_eq(addr_check(&a), -ERR_ADDR);
	a.ip[10] = a.ip[11] = 0xff; /* ::ffff:0.0.0.0 */
	cr_assert_eq(addr_check(&a), -ERR_ADDR);
}

Test(addr, formats_ipv4_mapped_as_ipv4)
{
	char ip[46], small[4];
	struct addr a = parsed("192.168.1.20", 80);

	addr_format(&a, ip, sizeof(ip));
	cr_assert_str_eq(ip, "192.168.1.20");
	a = parsed("2001:DB8::7", 80);
	addr_format(&a, ip, sizeof(ip));
	cr_assert_str_eq(ip, "2001:db8::7");
	addr_format(&a, small, sizeof(small));
	cr_assert_str_eq(small, "", "a text that does not fit leaves an empty string");
}

/*
 * The slot is a wire constant: nodes and routing clients of different
 * versions must agree on it. These values were taken from the store's own
 * slot function before it moved here (commit 2f71ff2); never update them.
 */
Test(addr, slot_values_are_pinned)
{
	static const struct {
		const char *ip;
		uint16_t port;
		uint32_t slot;
	} pins[] = {
		{ "10.0.0.1", 80, 14630 },          { "192.168.1.20", 8080, 10564 },
		{ "2001:db8::7", 9090, 15598 },     { "::1", 1, 1988 },
		{ "255.255.255.255", 65535, 7163 },
	};

	cr_assert_eq(ADDR_SLOTS, 16384);
	for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
		struct addr a = parsed(pins[i].ip, pins[i].port);

		cr_assert_eq(addr_slot(&a), pins[i].slot, "slot of %s:%u", pins[i].ip,
		             pins[i].port);
		cr_assert_eq(addr_slot(&a), addr_slot_hash(a.ip, a.port) & (ADDR_SLOTS - 1));
	}
}
