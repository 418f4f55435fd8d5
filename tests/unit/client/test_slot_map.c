/*
 * The client's SLOT_MAP decoder (distro_slot_map_decode) and call
 * (distro_slot_map): a good answer decodes field by field; standalone is
 * the three-field body; every way an answer can be malformed — truncated,
 * trailing bytes, a count that disagrees, ids out of range or repeated,
 * bad health or READY bytes, addresses absent, empty, too long or not
 * printable, an owner that is not a member, this node not among the
 * members — is -DISTRO_EPROTO; random bytes never crash. The call is
 * exercised against a fake node on loopback that answers with crafted
 * frames.
 */
#include "distro/client.h"

#include "core/err.h"
#include "proto/wire.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BODY_MAX (64 + DISTRO_MEMBERS_MAX * 140 + 2 * DISTRO_SLOTS)

struct tmember {
	uint16_t id;
	uint8_t health, ready;
	const char *addr, *client_addr; /* NULL: absent (0xFFFF) */
};

struct tmap {
	uint64_t version;
	uint16_t self_id;
	uint8_t ready;
	uint32_t n;
	struct tmember m[DISTRO_MEMBERS_MAX + 2];
	uint16_t owners[DISTRO_SLOTS];
};

static struct store_str tstr(const char *s)
{
	return (struct store_str){ s, s ? (uint32_t)strlen(s) : 0 };
}

/* Encodes a map as a node would; returns the body length. */
static size_t encode(const struct tmap *t, uint8_t *out)
{
	struct proto_wr w;

	proto_wr_init(&w, out, BODY_MAX);
	proto_wr_u64(&w, t->version);
	proto_wr_u16(&w, t->self_id);
	proto_wr_u8(&w, t->ready);
	for (uint32_t i = 0; i < t->n; i++) {
		proto_wr_u16(&w, t->m[i].id);
		proto_wr_u8(&w, t->m[i].health);
		proto_wr_u8(&w, t->m[i].ready);
		proto_wr_str(&w, tstr(t->m[i].addr));
		proto_wr_str(&w, tstr(t->m[i].client_addr));
	}
	if (t->n > 0)
		for (uint32_t s = 0; s < DISTRO_SLOTS; s++)
			proto_wr_u16(&w, t->owners[s]);
	cr_assert_not(w.overflow);
	return (size_t)(w.p - out);
}

/* Three members, node 2 answering; slots dealt 1, 2, 3, 1, ... with every 100th unowned. */
static void three(struct tmap *t)
{
	static const char *const addrs[] = { "10.0.0.1:7848", "10.0.0.2:7848", "[fd00::3]:7848" };
	static const char *const caddrs[] = { "10.0.0.1:8850", "10.0.0.2:8850", "" };

	memset(t, 0, sizeof(*t));
	t->version = 0x0102030405060708ull;
	t->self_id = 2;
	t->ready = 1;
	t->n = 3;
	for (uint32_t i = 0; i < 3; i++)
		t->m[i] = (struct tmember){ (uint16_t)(i + 1), (uint8_t)(2 - i), i < 2, addrs[i],
			                    caddrs[i] };
	for (uint32_t s = 0; s < DISTRO_SLOTS; s++)
		t->owners[s] = s % 100 == 0 ? 0 : (uint16_t)(s % 3 + 1);
}

static struct distro_slot_map map; /* 40 KiB: not on the stack */
static uint8_t body[BODY_MAX];

static int decode_t(const struct tmap *t)
{
	size_t len = encode(t, body);

	return distro_slot_map_decode(body, len, (uint16_t)t->n, &map);
}

Test(slot_map, good_answer_decodes)
{
	struct tmap t;

	three(&t);
	cr_assert_eq(decode_t(&t), 0);
	cr_assert_eq(map.version, 0x0102030405060708ull);
	cr_assert_eq(map.self_id, 2);
	cr_assert(map.ready);
	cr_assert_eq(map.n, 3);
	cr_assert_eq(map.m[0].id, 1);
	cr_assert_eq(map.m[0].health, DISTRO_UP);
	cr_assert(map.m[0].ready);
	cr_assert_str_eq(map.m[0].addr, "10.0.0.1:7848");
	cr_assert_str_eq(map.m[0].client_addr, "10.0.0.1:8850");
	cr_assert_eq(map.m[1].health, DISTRO_SUSPICIOUS);
	cr_assert_eq(map.m[2].health, DISTRO_DOWN);
	cr_assert_not(map.m[2].ready);
	cr_assert_str_eq(map.m[2].addr, "[fd00::3]:7848");
	cr_assert_str_eq(map.m[2].client_addr, "", "not learned yet");
	for (uint32_t s = 0; s < DISTRO_SLOTS; s++)
		cr_assert_eq(map.owners[s], t.owners[s]);
	cr_assert_eq(distro_slot_map_count(&map, 0), (DISTRO_SLOTS + 99) / 100);
	cr_assert_eq(distro_slot_map_count(&map, 1) + distro_slot_map_count(&map, 2) +
	                     distro_slot_map_count(&map, 3) + distro_slot_map_count(&map, 0),
	             DISTRO_SLOTS);
	cr_assert_eq(distro_slot_map_member(&map, 3), &map.m[2]);
	cr_assert_null(distro_slot_map_member(&map, 4));
	cr_assert_null(distro_slot_map_member(&map, 0));
}

Test(slot_map, standalone_is_three_fields)
{
	struct tmap t = { .version = 0, .self_id = 0, .ready = 1, .n = 0 };
	size_t len = encode(&t, body);

	cr_assert_eq(len, 11);
	cr_assert_eq(distro_slot_map_decode(body, len, 0, &map), 0);
	cr_assert_eq(map.n, 0);
	cr_assert(map.ready);
	cr_assert_eq(distro_slot_map_count(&map, 0), DISTRO_SLOTS, "nobody owns anything");
	/* Standalone carries no owners: any byte more is trailing. */
	cr_assert_eq(distro_slot_map_decode(body, len + 1, 0, &map), -DISTRO_EPROTO);
}

Test(slot_map, truncated_or_trailing_is_an_error)
{
	struct tmap t;
	size_t len;

	three(&t);
	len = encode(&t, body);
	/* Every cut in the head and members, and a spread of cuts in the owners. */
	for (size_t cut = 0; cut < len; cut += cut < 200 ? 1 : 97)
		cr_assert_eq(distro_slot_map_decode(body, cut, 3, &map), -DISTRO_EPROTO, "cut %zu",
		             cut);
	cr_assert_eq(distro_slot_map_decode(body, len - 1, 3, &map), -DISTRO_EPROTO);
	body[len] = 0;
	cr_assert_eq(distro_slot_map_decode(body, len + 1, 3, &map), -DISTRO_EPROTO);
	cr_assert_eq(distro_slot_map_decode(NULL, 0, 0, &map), -DISTRO_EPROTO);
}

Test(slot_map, count_must_match_the_members)
{
	struct tmap t;
	size_t len;

	three(&t);
	len = encode(&t, body);
	cr_assert_eq(distro_slot_map_decode(body, len, 2, &map), -DISTRO_EPROTO);
	cr_assert_eq(distro_slot_map_decode(body, len, 4, &map), -DISTRO_EPROTO);
	cr_assert_eq(distro_slot_map_decode(body, len, 0, &map), -DISTRO_EPROTO);
	cr_assert_eq(distro_slot_map_decode(body, len, DISTRO_MEMBERS_MAX + 1, &map),
	             -DISTRO_EPROTO);
	cr_assert_eq(distro_slot_map_decode(body, len, UINT16_MAX, &map), -DISTRO_EPROTO);
}

Test(slot_map, sixty_four_members_fit_sixty_five_do_not)
{
	static char addrs[DISTRO_MEMBERS_MAX + 1][32];
	static struct tmap t;

	memset(&t, 0, sizeof(t));
	t.self_id = 64;
	for (uint32_t i = 0; i < DISTRO_MEMBERS_MAX + 1; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "10.0.1.%u:7848", i);
		t.m[i] = (struct tmember){ (uint16_t)(i + 1), 2, 1, addrs[i], addrs[i] };
	}
	for (uint32_t s = 0; s < DISTRO_SLOTS; s++)
		t.owners[s] = (uint16_t)(s % 64 + 1);
	t.n = 64;
	cr_assert_eq(decode_t(&t), 0);
	cr_assert_eq(distro_slot_map_count(&map, 64), DISTRO_SLOTS / 64);
	t.n = 65; /* id 65 and count 65: both over the bound */
	cr_assert_eq(decode_t(&t), -DISTRO_EPROTO);
}

Test(slot_map, bad_member_fields_are_errors)
{
	static const char long_addr[] =
	        "1234567890123456789012345678901234567890123456789012345678901:78";
	struct tmap t;

	_Static_assert(sizeof(long_addr) - 1 == DISTRO_ADDR_MAX, "one byte too long");
#define BAD(field, value, why)                                                                     \
	do {                                                                                       \
		three(&t);                                                                         \
		t.field = value;                                                                   \
		cr_assert_eq(decode_t(&t), -DISTRO_EPROTO, why);                                   \
	} while (0)
	BAD(m[1].id, 0, "id 0 is nobody");
	BAD(m[1].id, DISTRO_MEMBERS_MAX + 1, "id over the bound");
	BAD(m[1].id, 1, "a repeated id");
	BAD(m[0].health, 3, "health beyond UP");
	BAD(m[0].ready, 2, "READY is 0 or 1");
	BAD(ready, 2, "the node's READY is 0 or 1");
	BAD(m[0].addr, NULL, "peer address absent");
	BAD(m[0].addr, "", "peer address empty");
	BAD(m[0].addr, long_addr, "peer address too long");
	BAD(m[0].addr, "10.0.0.1 7848", "a space");
	BAD(m[0].addr, "10.0.0.1:78\n", "a control byte");
	BAD(m[0].addr, "10.0.0.1:\x80", "not ASCII");
	BAD(m[0].client_addr, NULL, "client address absent");
	BAD(m[0].client_addr, long_addr, "client address too long");
	BAD(self_id, 0, "a member answers with its id");
	BAD(self_id, 4, "its id is among the members");
	BAD(owners[7], 4, "an owner that is not a member");
	BAD(owners[DISTRO_SLOTS - 1], DISTRO_MEMBERS_MAX + 1, "an owner over the bound");
#undef BAD
	three(&t);
	t.m[0].addr = long_addr + 1; /* DISTRO_ADDR_MAX - 1 bytes: the longest that fits */
	cr_assert_eq(decode_t(&t), 0);
	cr_assert_eq(strlen(map.m[0].addr), DISTRO_ADDR_MAX - 1);
}

Test(slot_map, random_bytes_never_crash)
{
	uint32_t seed = 12345;
	struct tmap t;
	size_t good;

	three(&t);
	good = encode(&t, body);
	for (int round = 0; round < 3000; round++) {
		size_t len;
		uint16_t count;

		seed = seed * 1103515245u + 12345u;
		if (round % 2) {
			/* A good answer with a few bytes flipped: the checks deep inside run. */
			encode(&t, body);
			len = good;
			for (int k = 0; k < 1 + round % 5; k++) {
				seed = seed * 1103515245u + 12345u;
				body[(seed >> 8) % (len < 300 ? len : 300)] ^= (uint8_t)(seed >> 3);
			}
			count = 3;
		} else {
			len = (seed >> 4) % 400;
			for (size_t i = 0; i < len; i++) {
				seed = seed * 1103515245u + 12345u;
				body[i] = (uint8_t)(seed >> 16);
			}
			count = (uint16_t)((seed >> 7) % 5);
		}
		int rc = distro_slot_map_decode(body, len, count, &map);

		cr_assert(rc == 0 || rc == -DISTRO_EPROTO);
		if (rc == 0) {
			cr_assert_leq(map.n, DISTRO_MEMBERS_MAX);
			for (uint32_t i = 0; i < map.n; i++)
				cr_assert_lt(strlen(map.m[i].addr), DISTRO_ADDR_MAX);
		}
	}
}

Test(slot_map, slot_of_is_the_store_hash)
{
	cr_assert_eq(distro_slot_of("nonsense", 80), -DISTRO_EINVAL);
	cr_assert_eq(distro_slot_of(NULL, 80), -DISTRO_EINVAL);
	for (int i = 0; i < 100; i++) {
		char ip[32];
		int s;

		snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 7, i);
		s = distro_slot_of(ip, (uint16_t)(8000 + i));
		cr_assert(s >= 0 && s < DISTRO_SLOTS);
		cr_assert_eq(s, distro_slot_of(ip, (uint16_t)(8000 + i)));
	}
	cr_assert_eq(distro_slot_of("::ffff:10.0.0.1", 80), distro_slot_of("10.0.0.1", 80),
	             "IPv4 is hashed as ::ffff:a.b.c.d");
}

/* ---- the call, against a fake node ---- */

struct fake {
	int lfd;
	uint16_t port;
	pthread_t thread;
	uint16_t status; /* answer status */
	uint16_t count;
	size_t len; /* body bytes */
	uint8_t *body;
};

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	uint8_t hdr[PROTO_HEADER_BYTES], out[PROTO_HEADER_BYTES];
	struct proto_header h;
	int fd = accept(f->lfd, NULL, NULL);
	size_t got = 0;

	while (fd >= 0 && got < sizeof(hdr)) {
		ssize_t n = recv(fd, hdr + got, sizeof(hdr) - got, 0);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got == sizeof(hdr) && proto_frame_check(hdr, sizeof(hdr), 1u << 20, &h) >= 0 &&
	    h.op == OP_SLOT_MAP) {
		proto_header_put(out, OP_SLOT_MAP | PROTO_RESPONSE, (uint32_t)f->len, h.request_id,
		                 f->status, f->count);
		if (send(fd, out, sizeof(out), MSG_NOSIGNAL) < 0 ||
		    send(fd, f->body, f->len, MSG_NOSIGNAL) < 0)
			(void)0;
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void fake_start(struct fake *f)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(f->lfd, 0);
	cr_assert_eq(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(f->lfd, 4), 0);
	cr_assert_eq(getsockname(f->lfd, (struct sockaddr *)&a, &alen), 0);
	f->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static int ask(struct fake *f)
{
	struct distro_client *c;
	char addr[32];
	int rc;

	fake_start(f);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", f->port);
	cr_assert_eq(distro_connect(addr, 2000, &c), 0);
	rc = distro_slot_map(c, &map);
	distro_close(c);
	pthread_join(f->thread, NULL);
	close(f->lfd);
	return rc;
}

Test(slot_map, call_decodes_the_nodes_answer)
{
	struct tmap t;
	struct fake f = { 0 };

	three(&t);
	f.len = encode(&t, body);
	f.body = body;
	f.count = 3;
	cr_assert_eq(ask(&f), 0);
	cr_assert_eq(map.n, 3);
	cr_assert_eq(map.owners[1], t.owners[1]);
}

Test(slot_map, call_refuses_a_malformed_answer)
{
	struct tmap t;
	struct fake f = { 0 };

	three(&t);
	t.owners[5] = 9;
	f.len = encode(&t, body);
	f.body = body;
	f.count = 3;
	cr_assert_eq(ask(&f), -DISTRO_EPROTO);
}

Test(slot_map, call_passes_on_the_nodes_error)
{
	static uint8_t msg[] = { 3, 0, 'n', 'o', 'p' };
	struct fake f = { .status = ERR_PROTO_OP, .len = sizeof(msg), .body = msg };

	cr_assert_eq(ask(&f), -ERR_PROTO_OP, "a node without SLOT_MAP: its error code");
}
