/*
 * libFuzzer target for Nacos UDP push (nacos/udp.h): the ack decoder, the
 * ack matching, and the packet encoder, all on outside bytes.
 *
 * Each input starts from a new udp_push (udp_reset) with two subscribers (127.0.0.1:40001
 * and [::1]:40002) and one push each, so the refs are fixed: 64 and 128
 * (worker 0); the seed corpus acks them. The first input byte picks the
 * source of the datagram (which subscriber, the right port or not, IPv4
 * or v4-mapped); the rest is both the datagram and the list the render
 * callback returns. Checks:
 *   - every packet undoes to exactly the rendered bytes: plain below 1024
 *     bytes, gzip from 1024 on, the data string escaped without a raw
 *     control character, nothing after the closing brace;
 *   - udp_ack_decode and udp_on_datagram agree, exactly one counter moves
 *     per datagram, and an ack matches only a ref we sent, from the
 *     subscriber's address.
 */
#include "core/err.h"
#include "nacos/udp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const uint8_t *payload;
static size_t payload_len;
static unsigned sent;
static uint64_t sent_refs[2];
static uint8_t plain[1u << 20];

static int render(void *ctx, const struct udp_sub_view *s, int64_t now_ms, char *buf, size_t cap)
{
	(void)ctx, (void)s, (void)now_ms;
	if (payload_len > cap)
		return -ERR_PROTO_TOO_BIG;
	memcpy(buf, payload, payload_len);
	return (int)payload_len;
}

static int hexval(uint8_t c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Checks that the packet is the rendered payload, escaped; returns its ref. */
static uint64_t check_packet(const uint8_t *p, size_t len)
{
	static const char head[] = "{\"type\":\"dom\",\"lastRefTime\":";
	const uint8_t *s, *end;
	size_t n = len, i = 0;
	uint64_t ref = 0;

	if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
		z_stream z = { 0 };

		if (inflateInit2(&z, 15 + 16) != Z_OK)
			abort();
		z.next_in = (Bytef *)(uintptr_t)p;
		z.avail_in = (uInt)len;
		z.next_out = plain;
		z.avail_out = sizeof(plain);
		if (inflate(&z, Z_FINISH) != Z_STREAM_END || z.avail_in != 0)
			abort();
		n = sizeof(plain) - z.avail_out;
		inflateEnd(&z);
		if (n < UDP_GZIP_MIN_BYTES)
			abort(); /* compressed below the threshold */
	} else {
		if (len >= UDP_GZIP_MIN_BYTES)
			abort(); /* plain at or above it */
		memcpy(plain, p, len);
	}
	s = plain;
	end = plain + n;
	if (n < sizeof(head) || memcmp(s, head, sizeof(head) - 1) != 0)
		abort();
	s += sizeof(head) - 1;
	while (s < end && *s >= '0' && *s <= '9')
		ref = ref * 10 + (uint64_t)(*s++ - '0');
	if (ref == 0 || ref > UDP_REF_MAX || end - s < 9 || memcmp(s, ",\"data\":\"", 9) != 0)
		abort();
	s += 9;
	for (;;) {
		uint8_t c, want;

		if (s >= end)
			abort();
		c = *s++;
		if (c < 0x20)
			abort();
		if (c == '"')
			break;
		if (c == '\\') {
			if (s >= end)
				abort();
			switch (*s++) {
			case '"':
				c = '"';
				break;
			case '\\':
				c = '\\';
				break;
			case 'b':
				c = '\b';
				break;
			case 'f':
				c = '\f';
				break;
			case 'n':
				c = '\n';
				break;
			case 'r':
				c = '\r';
				break;
			case 't':
				c = '\t';
				break;
			case 'u':
				if (end - s < 4 || s[0] != '0' || s[1] != '0' || hexval(s[2]) < 0 ||
				    hexval(s[3]) < 0)
					abort();
				c = (uint8_t)(hexval(s[2]) * 16 + hexval(s[3]));
				s += 4;
				break;
			default:
				abort();
			}
		}
		want = i < payload_len ? payload[i] : 0;
		if (i++ >= payload_len || c != want)
			abort();
	}
	if (i != payload_len || end - s != 1 || *s != '}')
		abort();
	return ref;
}

static int send_cb(void *ctx, const struct sockaddr_storage *to, socklen_t to_len,
                   const void *bytes, size_t len)
{
	(void)ctx, (void)to, (void)to_len;
	if (len == 0 || len > UDP_PACKET_BYTES_MAX || sent >= 2)
		abort();
	sent_refs[sent++] = check_packet(bytes, len);
	return 0;
}

static struct sockaddr_storage addr(int family, const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		inet_pton(AF_INET, ip, &in->sin_addr);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &in6->sin6_addr);
	}
	return ss;
}

#define RENDER_MAX (1u << 16)

static struct udp_push *u;

/*
 * One udp_push for the run, emptied by udp_reset after each input: a new
 * one costs ~0.5 MiB of buffers and zlib's state, more than most inputs,
 * and a reset one is a new one (tests/unit/nacos/test_udp.c).
 */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const struct udp_callbacks cb = { render, send_cb };
	struct udp_config c;

	(void)argc, (void)argv;
	udp_config_default(&c);
	c.subs_max = 4;
	c.unacked_max = 4;
	c.retry_bytes_max = 1u << 17;
	c.render_bytes_max = RENDER_MAX;
	if (udp_create(&c, &cb, NULL, &u) < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage peer4 = addr(AF_INET, "127.0.0.1", 50000);
	struct sockaddr_storage peer6 = addr(AF_INET6, "::1", 50000);
	struct store_svc_key k = { .service = { "svc", 3 } };
	struct udp_sub_params p = { .svc = k, .peer = &peer4, .udp_port = 40001 };
	struct sockaddr_storage from;
	struct udp_stats before;
	const struct udp_stats *st;
	struct udp_ack ack;
	uint64_t moved;
	uint8_t pick;
	int dec, rc;

	if (size == 0)
		return 0;
	pick = data[0];
	payload = data + 1;
	payload_len = size - 1;
	sent = 0;

	if (udp_sub_refresh(u, &p, 0) < 0)
		abort();
	p.peer = &peer6;
	p.udp_port = 40002;
	if (udp_sub_refresh(u, &p, 0) < 0)
		abort();
	if (udp_service_changed(u, &k, 0) != 2)
		abort();
	udp_poll(u, 2);
	if (payload_len <= RENDER_MAX && sent == 0 && udp_stats(u)->too_big == 0)
		abort(); /* small enough to render, yet neither sent nor too big */

	/* The datagram, from one of the subscribers (or a neighbour of one). */
	switch (pick & 3) {
	case 0:
		from = addr(AF_INET, "127.0.0.1", 40001);
		break;
	case 1:
		from = addr(AF_INET6, "::ffff:127.0.0.1", 40001);
		break;
	case 2:
		from = addr(AF_INET6, "::1", 40002);
		break;
	default:
		from = addr(AF_INET, "127.0.0.1", 40002);
		break; /* nobody's */
	}
	if (pick & 4)
		from = addr(AF_INET, "127.0.0.2", 40001); /* a wrong address */
	dec = udp_ack_decode(payload, payload_len, &ack);
	if (dec == 0 && (ack.type < UDP_ACK_PUSH || ack.type > UDP_ACK_UNKNOWN ||
	                 (ack.type == UDP_ACK_PUSH && !ack.has_ref)))
		abort();
	if (dec != 0 && dec != -ERR_INVAL)
		abort();
	before = *udp_stats(u);
	rc = udp_on_datagram(u, &from, payload, payload_len, 3);
	st = udp_stats(u);
	moved = (st->garbage - before.garbage) + (st->acks_dump - before.acks_dump) +
	        (st->acks_unknown - before.acks_unknown) +
	        (st->acks_unmatched - before.acks_unmatched) + (st->acked - before.acked);
	if (moved != 1 || (dec < 0) != (rc == -ERR_INVAL))
		abort();
	if (rc == 0) {
		/* Subscriber 40001 was pushed first (sent_refs[0]), [::1]:40002 second. */
		unsigned who = (pick & 3) <= 1 ? 0 : 1;

		if ((pick & 4) || (pick & 3) == 3 || sent <= who || ack.ref != sent_refs[who] ||
		    st->unacked != before.unacked - 1)
			abort();
	}
	udp_reset(u);
	return 0;
}
