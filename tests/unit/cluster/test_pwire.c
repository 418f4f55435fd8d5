/*
 * Peer frames: the header check and every op's body check accept what the
 * peer thread sends and refuse, with a clear code, what it never sends.
 */
#include "cluster/pwire.h"
#include "cluster/records.h"
#include "core/err.h"

#include <criterion/criterion.h>
#include <string.h>

static uint8_t frame[1 << 16];

/* Builds a frame; returns its length. */
static size_t mk(uint8_t op, const void *body, uint32_t len, uint16_t status, uint16_t count)
{
	pwire_header_put(frame, op, len, 7, status, count);
	if (len)
		memcpy(frame + PROTO_HEADER_BYTES, body, len);
	return PROTO_HEADER_BYTES + len;
}

static int check(size_t n)
{
	struct proto_header h;
	long f = pwire_frame_check(frame, n, &h);

	cr_assert_eq(f, (long)n, "the whole frame is recognised (got %ld)", f);
	return pwire_check(&h, frame + PROTO_HEADER_BYTES);
}

Test(pwire, header_needs_all_its_bytes_then_the_body)
{
	struct proto_header h;
	uint8_t ping[9] = { 1 };
	size_t n = mk(P_PING, ping, sizeof(ping), 0, 0);

	for (size_t i = 0; i < n; i++)
		cr_assert_eq(pwire_frame_check(frame, i, &h), 0, "%zu bytes: wait for more", i);
	cr_assert_eq(pwire_frame_check(frame, n, &h), (long)n);
	cr_assert_eq(h.op, P_PING);
	cr_assert_eq(h.request_id, 7);
	cr_assert_eq(pwire_check(&h, frame + PROTO_HEADER_BYTES), 0);
}

Test(pwire, client_frames_and_garbage_are_refused_at_the_magic)
{
	struct proto_header h;

	proto_header_put(frame, OP_PING, 0, 1, 0, 0); /* a client frame on the peer port */
	cr_assert_eq(pwire_frame_check(frame, PROTO_HEADER_BYTES, &h), -ERR_PROTO_MAGIC);
	cr_assert_eq(pwire_frame_check(frame, 2, &h), -ERR_PROTO_MAGIC, "known after two bytes");
	memcpy(frame, "GET / HTTP/1.1\r\n", 16);
	cr_assert_eq(pwire_frame_check(frame, 16, &h), -ERR_PROTO_MAGIC);
	mk(P_PING, NULL, 0, 0, 0);
	frame[2] = 9;
	cr_assert_eq(pwire_frame_check(frame, PROTO_HEADER_BYTES, &h), -ERR_PROTO_VERSION);
}

Test(pwire, frames_over_the_limit_are_refused_before_their_body)
{
	struct proto_header h;

	pwire_header_put(frame, P_SYNC, PWIRE_FRAME_MAX + 1, 0, 0, 1);
	cr_assert_eq(pwire_frame_check(frame, PROTO_HEADER_BYTES, &h), -ERR_PROTO_TOO_BIG);
	pwire_header_put(frame, P_SYNC, PWIRE_FRAME_MAX, 0, 0, 1);
	cr_assert_eq(pwire_frame_check(frame, PROTO_HEADER_BYTES, &h), 0, "at the limit: wait");
}

Test(pwire, fixed_size_bodies_must_have_their_size)
{
	uint8_t b[4096] = { 0 };

	cr_assert_eq(check(mk(P_HELLO, b, 40, 0, 0)), 0);
	cr_assert_lt(check(mk(P_HELLO, b, 39, 0, 0)), 0);
	cr_assert_lt(check(mk(P_HELLO, b, 41, 0, 0)), 0);
	cr_assert_eq(check(mk(P_AUTH, b, 32, 0, 0)), 0);
	cr_assert_lt(check(mk(P_AUTH, b, 31, 0, 0)), 0);
	cr_assert_eq(check(mk(P_DIGEST, b, 8 * PWIRE_RANGES, 0, 0)), 0);
	cr_assert_lt(check(mk(P_DIGEST, b, 8 * PWIRE_RANGES - 8, 0, 0)), 0);
	cr_assert_eq(check(mk(P_FWD_ACK, b, 6, 0, 3)), 0);
	cr_assert_lt(check(mk(P_FWD_ACK, b, 6, 0, 4)), 0, "count and length must agree");
	cr_assert_eq(check(mk(P_PULL_DONE, b, 0, 0, 0)), 0);
	cr_assert_eq(check(mk(P_PULL_DONE, b, 1, 0, 0)), -ERR_PROTO_TRAILING);
	cr_assert_eq(check(mk(99, b, 0, 0, 0)), -ERR_PROTO_OP);
}

static size_t u16s(uint8_t *b, const uint16_t *v, uint16_t n)
{
	b[0] = (uint8_t)n;
	b[1] = (uint8_t)(n >> 8);
	for (uint16_t i = 0; i < n; i++) {
		b[2 + 2 * i] = (uint8_t)v[i];
		b[3 + 2 * i] = (uint8_t)(v[i] >> 8);
	}
	return 2u + 2u * n;
}

Test(pwire, slot_and_range_lists_are_bounded)
{
	static uint8_t b[2 + 2 * 2048];
	static uint16_t v[2048];

	v[0] = 0;
	v[1] = STORE_SLOTS - 1;
	cr_assert_eq(check(mk(P_PULL, b, (uint32_t)u16s(b, v, 2), 0, 0)), 0);
	v[1] = STORE_SLOTS;
	cr_assert_eq(check(mk(P_PULL, b, (uint32_t)u16s(b, v, 2), 0, 0)), -ERR_INVAL);
	memset(v, 0, sizeof(v));
	cr_assert_eq(check(mk(P_PULL, b, (uint32_t)u16s(b, v, PWIRE_PULL_MAX), 0, 0)), 0);
	cr_assert_eq(check(mk(P_PULL, b, (uint32_t)u16s(b, v, PWIRE_PULL_MAX + 1), 0, 0)),
	             -ERR_PROTO_COUNT);
	v[0] = PWIRE_RANGES - 1;
	cr_assert_eq(check(mk(P_SUMS_REQ, b, (uint32_t)u16s(b, v, 1), 0, 0)), 0);
	v[0] = PWIRE_RANGES;
	cr_assert_eq(check(mk(P_SUMS_REQ, b, (uint32_t)u16s(b, v, 1), 0, 0)), -ERR_INVAL);
	/* A list claiming more entries than its bytes hold. */
	v[0] = 1;
	size_t n = u16s(b, v, 3);

	cr_assert_lt(check(mk(P_PULL, b, (uint32_t)n - 2, 0, 0)), 0);
}

Test(pwire, forwarded_items_are_client_write_items_only)
{
	uint8_t b[64];
	struct proto_wr w;
	struct store_key k;

	memset(&k, 0, sizeof(k));
	k.svc.service = (struct store_str){ "svc", 3 };
	cr_assert_eq(addr_parse("10.0.0.1", 80, &k.addr), 0);
	proto_wr_init(&w, b, sizeof(b));
	proto_wr_key(&w, &k);
	uint32_t len = (uint32_t)(w.p - b);

	cr_assert_eq(check(mk(P_FWD, b, len, OP_DEREGISTER, 1)), 0);
	cr_assert_eq(check(mk(P_FWD, b, len, OP_LIST, 1)), -ERR_PROTO_OP);
	cr_assert_eq(check(mk(P_FWD, b, len, OP_PING, 1)), -ERR_PROTO_OP);
	cr_assert_lt(check(mk(P_FWD, b, len, OP_DEREGISTER, 2)), 0, "count past the body");
	cr_assert_lt(check(mk(P_FWD, b, len - 1, OP_DEREGISTER, 1)), 0);
}

Test(pwire, forwarded_releases_carry_their_holder)
{
	uint8_t b[64];
	struct proto_wr w;
	struct store_key k;

	memset(&k, 0, sizeof(k));
	k.svc.service = (struct store_str){ "svc", 3 };
	cr_assert_eq(addr_parse("192.0.2.1", 80, &k.addr), 0);
	proto_wr_init(&w, b, sizeof(b));
	proto_wr_u64(&w, 0x0002010000000007ull);
	proto_wr_key(&w, &k);
	uint32_t len = (uint32_t)(w.p - b);

	cr_assert_eq(check(mk(P_FWD, b, len, OP_RELEASE, 1)), 0);
	/* The holder cut short, and a body one byte long. */
	cr_assert_lt(check(mk(P_FWD, b, 7, OP_RELEASE, 1)), 0);
	cr_assert_lt(check(mk(P_FWD, b, len + 1, OP_RELEASE, 1)), 0);
	cr_assert_eq(check(mk(P_FWD, b, len, 0x10f, 1)), -ERR_PROTO_OP, "an op past a byte");
}

Test(pwire, every_truncation_of_a_sync_or_chunk_is_refused)
{
	uint8_t b[256];
	struct proto_wr w;
	struct store_view v;

	memset(&v, 0, sizeof(v));
	v.service = (struct store_str){ "svc", 3 };
	v.ns = (struct store_str){ "public", 6 };
	v.group = (struct store_str){ "DEFAULT_GROUP", 13 };
	v.cluster = (struct store_str){ "DEFAULT", 7 };
	cr_assert_eq(addr_parse("10.0.0.1", 80, &v.addr), 0);
	v.flags = STORE_F_HEALTHY | STORE_F_ENABLED | STORE_F_EPHEMERAL;
	v.version = 1ull << 40;
	v.node = 2;
	proto_wr_init(&w, b + 10, sizeof(b) - 10);
	record_put(&w, &v);
	record_put(&w, &v);
	uint32_t len = (uint32_t)(w.p - (b + 10));

	cr_assert_eq(check(mk(P_SYNC, b + 10, len, 0, 2)), 0);
	for (uint32_t cut = 0; cut < len; cut++)
		cr_assert_lt(check(mk(P_SYNC, b + 10, cut, 0, 2)), 0, "cut at %u", cut);
	cr_assert_lt(check(mk(P_SYNC, b + 10, len, 0, 3)), 0, "one record too many");
	/* A chunk: slot and listing time first. */
	b[0] = 0x10;
	b[1] = 0x00;
	memset(b + 2, 0, 8);
	cr_assert_eq(check(mk(P_CHUNK, b, 10 + len, CHUNK_LAST, 2)), 0);
	cr_assert_lt(check(mk(P_CHUNK, b, 9, 0, 0)), 0);
	b[0] = 0x00;
	b[1] = 0x40; /* slot 16384 */
	cr_assert_eq(check(mk(P_CHUNK, b, 10 + len, 0, 2)), -ERR_INVAL);
}
