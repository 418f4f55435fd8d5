/* The client protocol codec: round trips, every framing error, truncation anywhere. */
#include "core/err.h"
#include "proto/wire.h"

#include <criterion/criterion.h>
#include <string.h>

static struct store_str S(const char *s) {
	return (struct store_str){ s, s ? (uint32_t)strlen(s) : 0 };
}

static bool
str_eq(struct store_str a, struct store_str b)
{
	if (a.p == NULL || b.p == NULL)
		return a.p == b.p;
	return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

/* A REGISTER frame with two instances: one IPv4 with metadata, one IPv6 with defaults. */
static size_t make_register(uint8_t *buf, size_t cap, uint32_t id)
{
	struct store_kv meta[] = { { S("zone"), S("a") }, { S("v"), S("") } };
	struct store_key k1 = { .svc = { S("dev"), S(NULL), S("orders") }, .cluster = S("east") };
	struct store_key k2 = { .svc = { S(NULL), S(NULL), S("orders") } };
	struct store_val v1 = { .weight_milli = 1500,
		                .healthy = true,
		                .enabled = true,
		                .ephemeral = true,
		                .meta = meta,
		                .meta_n = 2,
		                .timing = { 1000, 3000, 6000 } };
	struct store_val v2 = { .weight_milli = 1000, .enabled = true };
	struct proto_wr w;

	cr_assert_eq(addr_parse("10.1.2.3", 8080, &k1.addr), 0);
	cr_assert_eq(addr_parse("2001:db8::1", 9090, &k2.addr), 0);
	proto_wr_init(&w, buf + PROTO_HEADER_BYTES, cap - PROTO_HEADER_BYTES);
	proto_wr_instance(&w, &k1, &v1);
	proto_wr_instance(&w, &k2, &v2);
	cr_assert_not(w.overflow);
	size_t body = (size_t)(w.p - (buf + PROTO_HEADER_BYTES));

	proto_header_put(buf, OP_REGISTER, (uint32_t)body, id, 0, 2);
	return PROTO_HEADER_BYTES + body;
}

Test(wire, register_round_trip)
{
	uint8_t buf[512];
	size_t len = make_register(buf, sizeof(buf), 77);
	struct proto_header h;
	struct proto_rd r;
	struct store_key k;
	struct store_val v;
	struct store_kv kv[4];
	int item_err;
	char ip[64];

	cr_assert_eq(proto_frame_check(buf, len, 1 << 20, &h), (long)len);
	cr_assert_eq(h.op, OP_REGISTER);
	cr_assert_eq(h.request_id, 77);
	cr_assert_eq(h.count, 2);
	cr_assert_eq(proto_body_check(&h, buf + PROTO_HEADER_BYTES, 1000), 0);

	proto_rd_init(&r, buf + PROTO_HEADER_BYTES, h.body_len);
	proto_rd_instance(&r, &k, &v, kv, 4, &item_err);
	cr_assert_eq(item_err, 0);
	cr_assert(str_eq(k.svc.ns, S("dev")));
	cr_assert_null(k.svc.group.p, "absent stays absent");
	cr_assert(str_eq(k.svc.service, S("orders")));
	cr_assert(str_eq(k.cluster, S("east")));
	addr_format(&k.addr, ip, sizeof(ip));
	cr_assert_str_eq(ip, "10.1.2.3");
	cr_assert_eq(k.addr.port, 8080);
	cr_assert_eq(v.weight_milli, 1500);
	cr_assert(v.healthy && v.enabled && v.ephemeral);
	cr_assert_eq(v.timing.timeout_ms, 3000);
	cr_assert_eq(v.meta_n, 2);
	cr_assert(str_eq(v.meta[1].key, S("v")));
	cr_assert_not_null(v.meta[1].val.p, "empty is not absent");
	cr_assert_eq(v.meta[1].val.len, 0);

	proto_rd_instance(&r, &k, &v, kv, 4, &item_err);
	addr_format(&k.addr, ip, sizeof(ip));
	cr_assert_str_eq(ip, "2001:db8::1");
	cr_assert_null(k.cluster.p);
	cr_assert_not(v.healthy);
	cr_assert_eq(v.meta_n, 0);
	cr_assert_eq(proto_rd_done(&r), 0);
}

Test(wire, framing_needs_more_until_complete)
{
	uint8_t buf[512];
	size_t len = make_register(buf, sizeof(buf) - 1, 1); /* a byte left after the frame */
	struct proto_header h;

	cr_assert_lt(len, sizeof(buf));
	for (size_t i = 0; i < len; i++)
		cr_assert_eq(proto_frame_check(buf, i, 1 << 20, &h), 0, "prefix of %zu bytes", i);
	cr_assert_eq(proto_frame_check(buf, len, 1 << 20, &h), (long)len);
	/* Garbage after a complete frame belongs to the next frame, not this one. */
	buf[len < sizeof(buf) ? len : 0] = 0x00;
	cr_assert_eq(proto_frame_check(buf, len + 1, 1 << 20, &h), (long)len);
	cr_assert_eq(proto_frame_check(buf + len, 1, 1 << 20, &h), -ERR_PROTO_MAGIC);
}

Test(wire, framing_errors)
{
	uint8_t buf[PROTO_HEADER_BYTES];
	struct proto_header h;

	proto_header_put(buf, OP_PING, 0, 1, 0, 0);
	cr_assert_eq(proto_frame_check(buf, sizeof(buf), 1 << 20, &h), PROTO_HEADER_BYTES);
	buf[0] = 'G'; /* an HTTP client on the wrong port: refused at the first byte */
	cr_assert_eq(proto_frame_check(buf, 1, 1 << 20, &h), -ERR_PROTO_MAGIC);
	buf[0] = PROTO_MAGIC0;
	buf[1] = 0;
	cr_assert_eq(proto_frame_check(buf, 2, 1 << 20, &h), -ERR_PROTO_MAGIC);
	buf[1] = PROTO_MAGIC1;
	buf[2] = 2;
	cr_assert_eq(proto_frame_check(buf, 3, 1 << 20, &h), -ERR_PROTO_VERSION);
	proto_header_put(buf, OP_PING, (1 << 20) - PROTO_HEADER_BYTES + 1, 1, 0, 0);
	cr_assert_eq(proto_frame_check(buf, sizeof(buf), 1 << 20, &h), -ERR_PROTO_TOO_BIG);
	proto_header_put(buf, OP_PING, 0xffffffffu, 1, 0, 0);
	cr_assert_eq(proto_frame_check(buf, sizeof(buf), 1 << 20, &h), -ERR_PROTO_TOO_BIG,
	             "a huge length never wraps");
	proto_header_put(buf, OP_PING, (1 << 20) - PROTO_HEADER_BYTES, 1, 0, 0);
	cr_assert_eq(proto_frame_check(buf, sizeof(buf), 1 << 20, &h), 0, "at the limit: wait");
}

Test(wire, body_errors)
{
	uint8_t buf[512];
	size_t len = make_register(buf, sizeof(buf), 1);
	struct proto_header h;
	const uint8_t *body = buf + PROTO_HEADER_BYTES;

	cr_assert_eq(proto_frame_check(buf, len, 1 << 20, &h), (long)len);
	/* Every truncation of the body is a clean error, never a read past it. */
	for (uint32_t cut = 0; cut < h.body_len; cut++) {
		struct proto_header t = h;

		t.body_len = cut;
		cr_assert_eq(proto_body_check(&t, body, 1000), -ERR_PROTO_TRUNCATED, "cut %u", cut);
	}
	struct proto_header t = h;

	t.count = 1;
	cr_assert_eq(proto_body_check(&t, body, 1000), -ERR_PROTO_TRAILING);
	t.count = 3;
	cr_assert_eq(proto_body_check(&t, body, 1000), -ERR_PROTO_TRUNCATED);
	t.count = 2;
	cr_assert_eq(proto_body_check(&t, body, 1), -ERR_PROTO_COUNT);
	t.op = 99;
	cr_assert_eq(proto_body_check(&t, body, 1000), -ERR_PROTO_OP);
	t.op = OP_STATS;
	cr_assert_eq(proto_body_check(&t, body, 1000), -ERR_PROTO_TRAILING);
	t.op = OP_PING;
	t.body_len = PROTO_PING_MAX + 1;
	cr_assert_eq(proto_body_check(&t, body, 1000), -ERR_PROTO_TOO_BIG);

	/* A bad address family. */
	uint8_t bad[64];
	struct proto_wr w;

	proto_wr_init(&w, bad, sizeof(bad));
	proto_wr_svc(&w, &(struct store_svc_key){ S(NULL), S(NULL), S("s") });
	proto_wr_str(&w, S(NULL));
	proto_wr_u8(&w, 5);
	t = (struct proto_header){ .op = OP_DEREGISTER,
		                   .count = 1,
		                   .body_len = (uint32_t)(w.p - bad) + 6 };
	memset(w.p, 0, 6);
	cr_assert_eq(proto_body_check(&t, bad, 1000), -ERR_PROTO_FAMILY);
}

Test(wire, too_many_meta_pairs_fail_the_item_not_the_frame)
{
	uint8_t buf[4096];
	struct store_kv meta[10];
	struct store_key k = { .svc = { S(NULL), S(NULL), S("s") } };
	struct store_val v = { .weight_milli = 1, .meta = meta, .meta_n = 10 };
	struct proto_wr w;
	struct proto_rd r;
	struct store_kv kv[4];
	int item_err;

	for (int i = 0; i < 10; i++)
		meta[i] = (struct store_kv){ S("k"), S("v") };
	cr_assert_eq(addr_parse("10.0.0.1", 1, &k.addr), 0);
	proto_wr_init(&w, buf, sizeof(buf));
	proto_wr_instance(&w, &k, &v);
	proto_wr_instance(&w, &k, &(struct store_val){ .weight_milli = 2 });
	proto_rd_init(&r, buf, (size_t)(w.p - buf));
	proto_rd_instance(&r, &k, &v, kv, 4, &item_err);
	cr_assert_eq(item_err, -ERR_META_PAIRS);
	proto_rd_instance(&r, &k, &v, kv, 4, &item_err);
	cr_assert_eq(item_err, 0);
	cr_assert_eq(v.weight_milli, 2);
	cr_assert_eq(proto_rd_done(&r), 0);
}

Test(wire, writer_flags_overflow)
{
	uint8_t buf[8];
	struct proto_wr w;

	proto_wr_init(&w, buf, sizeof(buf));
	proto_wr_u32(&w, 1);
	proto_wr_u32(&w, 2);
	cr_assert_not(w.overflow);
	proto_wr_u8(&w, 3);
	cr_assert(w.overflow);
	cr_assert_eq(w.p, buf + 8, "nothing written past the end");
}

Test(wire, list_filter_and_view_round_trip)
{
	uint8_t buf[512];
	struct store_str cl[] = { S("a"), S("b") };
	struct store_filter f = { cl, 2, true, false }, g;
	struct store_str got[PROTO_FILTER_MAX];
	struct proto_wr w;
	struct proto_rd r;
	struct store_svc_key sk;

	proto_wr_init(&w, buf, sizeof(buf));
	proto_wr_svc(&w, &(struct store_svc_key){ S("ns"), S("g"), S("svc") });
	proto_wr_filter(&w, &f);
	proto_rd_init(&r, buf, (size_t)(w.p - buf));
	proto_rd_svc(&r, &sk);
	proto_rd_filter(&r, &g, got);
	cr_assert_eq(proto_rd_done(&r), 0);
	cr_assert(str_eq(sk.group, S("g")));
	cr_assert_eq(g.clusters_n, 2);
	cr_assert(str_eq(g.clusters[1], S("b")));
	cr_assert(g.healthy_only);
	cr_assert_not(g.enabled_only, "include-disabled flag");
}

/* ---- leased ops (RENEW, RELEASE, HOLD): the holder prefix of each item ---- */

/* One item of op for holder into buf: the prefix, then an instance (or a key for RELEASE). */
static size_t lease_item(uint8_t *buf, size_t cap, uint8_t op, uint64_t holder, uint32_t renew_ms)
{
	struct store_key k = { .svc = { S(NULL), S(NULL), S("orders") } };
	struct proto_wr w;

	cr_assert_eq(addr_parse("192.0.2.7", 8080, &k.addr), 0);
	proto_wr_init(&w, buf, cap);
	proto_wr_u64(&w, holder);
	if (op != OP_RELEASE)
		proto_wr_u32(&w, renew_ms);
	if (op == OP_RELEASE)
		proto_wr_key(&w, &k);
	else
		proto_wr_instance(&w, &k, &(struct store_val){ .weight_milli = 1000 });
	cr_assert_not(w.overflow);
	return (size_t)(w.p - buf);
}

Test(wire, leased_items_round_trip)
{
	static const uint8_t ops[] = { OP_RENEW, OP_RELEASE, OP_HOLD };

	for (size_t o = 0; o < sizeof(ops); o++) {
		uint8_t buf[512];
		size_t len = lease_item(buf, sizeof(buf), ops[o], 0x0003020000000042ull, 300);
		struct proto_header h = { .op = ops[o], .count = 1, .body_len = (uint32_t)len };
		struct proto_hold hold;
		struct proto_rd r;
		struct store_key k;
		struct store_val v;
		struct store_kv kv[2];
		int item_err;

		cr_assert(proto_op_write(ops[o]) && proto_op_leased(ops[o]));
		cr_assert_eq(proto_body_check(&h, buf, 10), 0, "op %u", ops[o]);
		proto_rd_init(&r, buf, len);
		proto_rd_item_held(&r, ops[o], &k, &v, kv, 2, &item_err, &hold);
		cr_assert_eq(item_err, 0);
		cr_assert_eq(proto_rd_done(&r), 0);
		cr_assert_eq(hold.holder, 0x0003020000000042ull);
		cr_assert_eq(hold.renew_ms, ops[o] == OP_RELEASE ? 0u : 300u);
		cr_assert(str_eq(k.svc.service, S("orders")));
		/* The plain reader steps over the prefix the same way (forwarding, skipping). */
		proto_rd_init(&r, buf, len);
		proto_rd_skip_item(&r, ops[o]);
		cr_assert_eq(proto_rd_done(&r), 0);
	}
}

Test(wire, leased_items_truncated_or_trailing_are_framing_errors)
{
	static const uint8_t ops[] = { OP_RENEW, OP_RELEASE, OP_HOLD };

	for (size_t o = 0; o < sizeof(ops); o++) {
		uint8_t buf[512];
		size_t len = lease_item(buf, sizeof(buf), ops[o], 9, 300);
		struct proto_header h = { .op = ops[o], .count = 1 };

		/* Cut anywhere, the holder and the renew interval included. */
		for (size_t cut = 0; cut < len; cut++) {
			h.body_len = (uint32_t)cut;
			cr_assert_eq(proto_body_check(&h, buf, 10), -ERR_PROTO_TRUNCATED,
			             "op %u cut at %zu", ops[o], cut);
		}
		/* A wrong length: one byte more than the item. */
		buf[len] = 0;
		h.body_len = (uint32_t)len + 1;
		cr_assert_eq(proto_body_check(&h, buf, 10), -ERR_PROTO_TRAILING);
		/* A count the body does not hold. */
		h.body_len = (uint32_t)len;
		h.count = 2;
		cr_assert_eq(proto_body_check(&h, buf, 10), -ERR_PROTO_TRUNCATED);
	}
}

Test(wire, leased_item_with_holder_0_or_bad_interval_fails_the_item_not_the_frame)
{
	uint8_t buf[1024];
	size_t a = lease_item(buf, sizeof(buf), OP_RENEW, 0, 300);
	size_t b = lease_item(buf + a, sizeof(buf) - a, OP_RENEW, 5, 0);
	size_t c =
	        lease_item(buf + a + b, sizeof(buf) - a - b, OP_RENEW, 5, PROTO_RENEW_MS_MAX + 1);
	size_t d = lease_item(buf + a + b + c, sizeof(buf) - a - b - c, OP_RENEW, 5, 300);
	struct proto_header h = { .op = OP_RENEW,
		                  .count = 4,
		                  .body_len = (uint32_t)(a + b + c + d) };
	struct proto_hold hold;
	struct proto_rd r;
	struct store_key k;
	struct store_val v;
	int item_err;

	cr_assert_eq(proto_body_check(&h, buf, 10), 0);
	proto_rd_init(&r, buf, h.body_len);
	proto_rd_item_held(&r, OP_RENEW, &k, &v, NULL, 0, &item_err, &hold);
	cr_assert_eq(item_err, -ERR_INVAL, "holder 0 names nobody");
	proto_rd_item_held(&r, OP_RENEW, &k, &v, NULL, 0, &item_err, &hold);
	cr_assert_eq(item_err, -ERR_INVAL, "renew_ms 0");
	proto_rd_item_held(&r, OP_RENEW, &k, &v, NULL, 0, &item_err, &hold);
	cr_assert_eq(item_err, -ERR_INVAL, "renew_ms over a day");
	proto_rd_item_held(&r, OP_RENEW, &k, &v, NULL, 0, &item_err, &hold);
	cr_assert_eq(item_err, 0);
	cr_assert_eq(hold.holder, 5);
	cr_assert_eq(proto_rd_done(&r), 0);
	/* RELEASE with holder 0 too. */
	a = lease_item(buf, sizeof(buf), OP_RELEASE, 0, 0);
	proto_rd_init(&r, buf, a);
	proto_rd_item_held(&r, OP_RELEASE, &k, &v, NULL, 0, &item_err, &hold);
	cr_assert_eq(item_err, -ERR_INVAL);
	cr_assert_eq(proto_rd_done(&r), 0);
}

Test(wire, unknown_op_past_the_leased_ones)
{
	uint8_t body[1] = { 0 };
	struct proto_header h = { .op = OP_HOLD + 1, .body_len = 0 };

	cr_assert_not(proto_op_write(OP_HOLD + 1));
	cr_assert_eq(proto_body_check(&h, body, 10), -ERR_PROTO_OP);
}
