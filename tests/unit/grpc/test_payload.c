/*
 * The Payload codec (src/grpc/payload.h): bytes written by hand with
 * Nacos's field numbers decode to their fields; encode then decode gives
 * them back; malformed and oversized input is refused within the arena.
 */
#include "grpc/payload.h"

#include "core/err.h"

#include <criterion/criterion.h>
#include <string.h>

static struct payload_arena arena;

static void setup(void)
{
	cr_assert_eq(payload_arena_init(&arena, 1 << 16), 0);
}

static void teardown(void)
{
	payload_arena_free(&arena);
}

TestSuite(payload, .init = setup, .fini = teardown);

static bool str_is(struct store_str s, const char *want)
{
	return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

/*
 * Payload{metadata=2{type=3 "InstanceRequest", clientIp=8 "1.2.3.4",
 * headers=7 {"app":"x"}}, body=3{type_url=1 "", value=2 "{}"}}, by hand.
 */
static const uint8_t nacos_bytes[] = {
	0x12, 0x24, /* metadata, 36 bytes */
	0x1a, 0x0f, 'I',  'n',  's',  't',  'a', 'n',  'c',  'e', 'R', 'e', 'q',
	'u',  'e',  's',  't',  0x42, 0x07, '1', '.',  '2',  '.', '3', '.', '4', /* clientIp */
	0x3a, 0x08, 0x0a, 0x03, 'a',  'p',  'p', 0x12, 0x01, 'x', /* headers entry, 8 bytes */
	0x1a, 0x04, 0x12, 0x02, '{',  '}',                        /* body */
};

Test(payload, decodes_nacos_field_numbers)
{
	struct payload p;
	struct store_str v;

	cr_assert_eq(payload_decode(&arena, nacos_bytes, sizeof(nacos_bytes), &p), 0);
	cr_assert(str_is(p.type, "InstanceRequest"));
	cr_assert(str_is(p.client_ip, "1.2.3.4"));
	cr_assert_eq(p.headers_n, 1);
	cr_assert(payload_header(&p, "app", &v) && str_is(v, "x"));
	cr_assert_not(payload_header(&p, "accessToken", &v));
	cr_assert(str_is(p.body, "{}"));
}

Test(payload, encode_then_decode)
{
	struct buf b = { 0 };
	struct payload p;
	const char *json = "{\"resultCode\":200,\"x\":\"\\u00e9\"}";

	cr_assert_eq(payload_encode(&b, 1 << 20, true, "HealthCheckResponse", json, strlen(json)),
	             0);
	cr_assert_geq(b.len, 5);
	cr_assert_eq(b.p[0], 0, "not compressed");
	cr_assert_eq(((uint32_t)b.p[1] << 24 | b.p[2] << 16 | b.p[3] << 8 | b.p[4]), b.len - 5,
	             "the gRPC prefix holds the length");
	cr_assert_eq(payload_decode(&arena, b.p + 5, b.len - 5, &p), 0);
	cr_assert(str_is(p.type, "HealthCheckResponse"));
	cr_assert(str_is(p.body, json));
	/* The bound: nothing is appended past max. */
	buf_clear(&b);
	cr_assert_eq(payload_encode(&b, 16, false, "T", json, strlen(json)), -ERR_NOMEM);
	cr_assert_eq(b.len, 0);
	buf_free(&b);
}

Test(payload, empty_and_unknown_fields)
{
	struct payload p;
	/* an unknown varint field 15 and an unknown fixed64 field 9, then body only */
	const uint8_t in[] = {
		0x78, 0x05, 0x49, 1, 2, 3, 4, 5, 6, 7, 8, 0x1a, 0x03, 0x12, 0x01, 'x'
	};

	cr_assert_eq(payload_decode(&arena, (const uint8_t *)"", 0, &p), 0);
	cr_assert_eq(p.type.len, 0);
	cr_assert_eq(p.body.len, 0);
	cr_assert_eq(payload_decode(&arena, in, sizeof(in), &p), 0);
	cr_assert(str_is(p.body, "x"));
}

Test(payload, malformed_is_refused)
{
	struct payload p;
	const uint8_t truncated[] = { 0x12, 0x10, 0x1a, 0x02 };
	const uint8_t bad_varint[] = { 0x12, 0xff, 0xff, 0xff, 0xff, 0xff,
		                       0xff, 0xff, 0xff, 0xff, 0xff };
	const uint8_t wrong_type[] = { 0x10, 0x01 }; /* metadata as a varint */

	cr_assert_lt(payload_decode(&arena, truncated, sizeof(truncated), &p), 0);
	cr_assert_lt(payload_decode(&arena, bad_varint, sizeof(bad_varint), &p), 0);
	cr_assert_lt(payload_decode(&arena, wrong_type, sizeof(wrong_type), &p), 0);
}

Test(payload, bounded_by_the_arena)
{
	static uint8_t big[40000];
	struct payload p;
	size_t n = 0;

	/* 40,000 bytes of body: over half the 64 KiB arena */
	big[n++] = 0x1a;
	big[n++] = 0xba; /* 39,994 = 0x9c3a */
	big[n++] = 0xb8;
	big[n++] = 0x02;
	big[n++] = 0x12;
	big[n++] = 0xb6;
	big[n++] = 0xb8;
	big[n++] = 0x02;
	cr_assert_eq(payload_decode(&arena, big, sizeof(big), &p), -ERR_TOO_BIG);
	/* many map entries: each costs an allocation; the count bound refuses them */
	n = 0;
	big[n++] = 0x12;
	big[n++] = 0x80;
	big[n++] = 0x01; /* 128 bytes of metadata */
	for (int i = 0; i < 64; i++) {
		big[n++] = 0x3a;
		big[n++] = 0x00;
	}
	cr_assert_eq(payload_decode(&arena, big, n, &p), 0, "64 empty headers fit");
	big[2] = 0x01;
	big[1] = 0x82; /* 130 bytes: 65 headers */
	big[n++] = 0x3a;
	big[n++] = 0x00;
	cr_assert_eq(payload_decode(&arena, big, n, &p), -ERR_TOO_BIG);
}
