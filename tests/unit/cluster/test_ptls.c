/*
 * Peer TLS (cluster/ptls.h) with two links in one process, their BIO pairs
 * wired to each other by hand: the key derivation matches RFC 5869 HKDF
 * computed independently; the same secret completes a TLS 1.3 handshake
 * with ECDHE (forward secrecy) and carries a megabyte both ways intact,
 * and none of its plaintext is visible in the ciphertext; another secret
 * fails the handshake on both sides; a link reset after any use
 * (ptls_link_reset) does everything a new one does, result for result.
 */
#include "cluster/ptls.h"
#include "core/err.h"

#include <criterion/criterion.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t secret[] = "a cluster secret of some length";
#define SLEN (sizeof(secret) - 1)

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

Test(ptls, the_key_is_hkdf_sha256_of_the_secret_and_never_the_secret)
{
	uint8_t psk[PTLS_PSK_BYTES], again[PTLS_PSK_BYTES];
	char text[2 * PTLS_PSK_BYTES + 1];

	cr_assert_eq(ptls_psk_derive(secret, SLEN, psk), 0);
	hex(psk, sizeof(psk), text);
	/* Python: HKDF(salt "distro-peer-tls-salt-v1", info "distro peer link TLS 1.3 PSK v1"). */
	cr_assert_str_eq(text, "afba9b53ebbcf713e465384ff801d6a39e972f93d5f6d79db03676741598f659");
	cr_assert_eq(ptls_psk_derive(secret, SLEN, again), 0);
	cr_assert_eq(memcmp(psk, again, sizeof(psk)), 0, "deterministic");
	cr_assert_eq(ptls_psk_derive(secret, 15, psk), -ERR_INVAL, "a short secret is refused");
}

/* Moves every pending ciphertext byte from one link to the other; the bytes moved. */
static size_t pump(struct ptls_link *from, struct ptls_link *to, uint8_t *seen, size_t *seen_len,
                   size_t seen_cap)
{
	size_t moved = 0;

	for (;;) {
		uint8_t *src, *dst;
		size_t n = ptls_out_pending(from, &src), room;

		if (n == 0)
			return moved;
		room = ptls_in_space(to, &dst);
		if (room == 0)
			return moved;
		n = n < room ? n : room;
		memcpy(dst, src, n);
		if (seen && *seen_len + n <= seen_cap) {
			memcpy(seen + *seen_len, src, n);
			*seen_len += n;
		}
		ptls_in_commit(to, n);
		ptls_out_consume(from, n);
		moved += n;
	}
}

/* Drives both handshakes to their end: true when both finished. */
static bool handshake(struct ptls_link *c, struct ptls_link *s, int *rc_c, int *rc_s)
{
	char why[160];

	for (int turn = 0; turn < 20; turn++) {
		*rc_c = ptls_handshake(c, why, sizeof(why));
		pump(c, s, NULL, NULL, 0);
		*rc_s = ptls_handshake(s, why, sizeof(why));
		pump(s, c, NULL, NULL, 0);
		if (*rc_c < 0 || *rc_s < 0)
			return false;
		if (*rc_c == PTLS_DONE && *rc_s == PTLS_DONE)
			return true;
	}
	return false;
}

Test(ptls, the_same_secret_connects_with_ecdhe_and_carries_data_unseen)
{
	static uint8_t msg[1 << 20], got[1 << 20], wire[(1 << 20) + (1 << 16)];
	struct ptls t;
	struct ptls_link c, s;
	size_t off = 0, have = 0, wire_len = 0;
	int rc_c, rc_s;
	char why[160];

	cr_assert_eq(ptls_init(&t, secret, SLEN), 0);
	cr_assert_eq(ptls_link_new(&t, &c, true), 0);
	cr_assert_eq(ptls_link_new(&t, &s, false), 0);
	cr_assert(handshake(&c, &s, &rc_c, &rc_s), "handshake: client %d, server %d", rc_c, rc_s);
	cr_assert_eq(SSL_version(c.ssl), TLS1_3_VERSION);
	cr_assert_str_eq(SSL_CIPHER_get_name(SSL_get_current_cipher(c.ssl)),
	                 "TLS_AES_128_GCM_SHA256");
	cr_assert(SSL_session_reused(c.ssl) && SSL_session_reused(s.ssl), "the PSK was used");
	cr_assert_neq(SSL_get_negotiated_group(s.ssl), 0, "ECDHE with the PSK (psk_dhe_ke)");
	cr_assert_null(SSL_get0_peer_certificate(c.ssl), "no certificates");

	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)("distro-plaintext-marker "[i % 24]);
	/* Through pair-sized pieces, as link.c does with a long output buffer. */
	while (have < sizeof(msg)) {
		long w = 1;

		while (off < sizeof(msg) && w > 0) {
			w = ptls_write(&c, msg + off, sizeof(msg) - off, why, sizeof(why));
			cr_assert_geq(w, 0, "write: %s", why);
			off += (size_t)w;
		}
		pump(&c, &s, wire, &wire_len, sizeof(wire));
		for (;;) {
			long r = ptls_read(&s, got + have, sizeof(got) - have, why, sizeof(why));

			cr_assert_geq(r, 0, "read: %s", why);
			if (r == 0)
				break;
			have += (size_t)r;
		}
	}
	cr_assert_eq(memcmp(msg, got, sizeof(msg)), 0, "the data arrived intact");
	cr_assert_gt(wire_len, sizeof(msg), "every byte crossed (with record overhead)");
	cr_assert_null(memmem(wire, wire_len, "plaintext-marker", 16), "ciphertext only");

	/* And back. */
	cr_assert_eq(ptls_write(&s, (const uint8_t *)"pong", 4, why, sizeof(why)), 4);
	pump(&s, &c, NULL, NULL, 0);
	cr_assert_eq(ptls_read(&c, got, sizeof(got), why, sizeof(why)), 4);
	cr_assert_eq(memcmp(got, "pong", 4), 0);
	ptls_link_free(&c);
	ptls_link_free(&s);
	ptls_free(&t);
}

Test(ptls, another_secret_fails_the_handshake)
{
	static const uint8_t other[] = "another secret of some length!!";
	struct ptls a, b;
	struct ptls_link c, s;
	int rc_c = 0, rc_s = 0;

	cr_assert_eq(ptls_init(&a, secret, SLEN), 0);
	cr_assert_eq(ptls_init(&b, other, sizeof(other) - 1), 0);
	cr_assert_eq(ptls_link_new(&a, &c, true), 0);
	cr_assert_eq(ptls_link_new(&b, &s, false), 0);
	cr_assert_not(handshake(&c, &s, &rc_c, &rc_s));
	cr_assert(rc_c == PTLS_ERROR || rc_s == PTLS_ERROR, "refused (client %d, server %d)", rc_c,
	          rc_s);
	ptls_link_free(&c);
	ptls_link_free(&s);
	ptls_free(&a);
	ptls_free(&b);
}

Test(ptls, garbage_fails_the_server_handshake)
{
	struct ptls t;
	struct ptls_link s;
	uint8_t *dst;
	char why[160];
	size_t room;

	cr_assert_eq(ptls_init(&t, secret, SLEN), 0);
	cr_assert_eq(ptls_link_new(&t, &s, false), 0);
	room = ptls_in_space(&s, &dst);
	cr_assert_geq(room, 64);
	memcpy(dst, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
	ptls_in_commit(&s, 27);
	cr_assert_eq(ptls_handshake(&s, why, sizeof(why)), PTLS_ERROR);
	cr_assert_gt(strlen(why), 0, "a reason");
	ptls_link_free(&s);
	ptls_free(&t);
}

/*
 * The PSK is an SSL_SESSION, and OpenSSL gives a new session a 304 s
 * lifetime from its creation: a node running longer than five minutes
 * must still accept and make handshakes (a restarted peer, a link lost
 * under load). Each side's PSK is aged by an hour, one side at a time and
 * both: every handshake must complete with the PSK.
 */
Test(ptls, a_node_older_than_the_session_lifetime_still_connects)
{
	for (int aged = 1; aged <= 3; aged++) { /* 1: the server's, 2: the client's, 3: both */
		struct ptls cs, ss;
		struct ptls_link c, s;
		int rc_c = 0, rc_s = 0;

		cr_assert_eq(ptls_init(&cs, secret, SLEN), 0);
		cr_assert_eq(ptls_init(&ss, secret, SLEN), 0);
		if (aged & 1)
			SSL_SESSION_set_time(ss.psk, SSL_SESSION_get_time(ss.psk) - 3600);
		if (aged & 2)
			SSL_SESSION_set_time(cs.psk, SSL_SESSION_get_time(cs.psk) - 3600);
		cr_assert_eq(ptls_link_new(&cs, &c, true), 0);
		cr_assert_eq(ptls_link_new(&ss, &s, false), 0);
		cr_assert(handshake(&c, &s, &rc_c, &rc_s),
		          "aged %s: handshake client %d, server %d",
		          aged == 1   ? "server"
		          : aged == 2 ? "client"
		                      : "both",
		          rc_c, rc_s);
		cr_assert(SSL_session_reused(c.ssl) && SSL_session_reused(s.ssl),
		          "the PSK was used");
		ptls_link_free(&c);
		ptls_link_free(&s);
		ptls_free(&cs);
		ptls_free(&ss);
	}
}

/* Every result of a pair of links from their start, in order. */
struct trace {
	long v[64];
	int n;
};

static void note(struct trace *t, long v)
{
	cr_assert_lt(t->n, 64);
	t->v[t->n++] = v;
}

/*
 * The same steps on any client and server: the rooms a new pair has, the
 * handshake turn by turn (each side's result, the bytes it sent), then the
 * client's output room filled by writes and as much of it as the server's
 * input room takes, and a record read. Lengths and results only: the bytes
 * themselves differ (nonces, keys).
 */
static void steps(struct ptls_link *c, struct ptls_link *s, struct trace *t)
{
	static uint8_t msg[1 << 20], got[1 << 16];
	char why[160];
	uint8_t *p;
	size_t off = 0;
	long w;

	t->n = 0;
	note(t, (long)ptls_out_pending(c, &p));
	note(t, (long)ptls_out_pending(s, &p));
	note(t, (long)ptls_in_space(c, &p));
	note(t, (long)ptls_in_space(s, &p));
	for (int turn = 0; turn < 3; turn++) {
		note(t, ptls_handshake(c, why, sizeof(why)));
		note(t, (long)pump(c, s, NULL, NULL, 0));
		note(t, ptls_handshake(s, why, sizeof(why)));
		note(t, (long)pump(s, c, NULL, NULL, 0));
	}
	note(t, SSL_session_reused(c->ssl) && SSL_session_reused(s->ssl));
	while ((w = ptls_write(c, msg + off, sizeof(msg) - off, why, sizeof(why))) > 0)
		off += (size_t)w;
	note(t, w);
	note(t, (long)off);
	note(t, (long)ptls_out_pending(c, &p));
	note(t, (long)pump(c, s, NULL, NULL, 0));
	note(t, (long)ptls_in_space(s, &p));
	note(t, ptls_read(s, got, sizeof(got), why, sizeof(why)));
}

static void traces_equal(const struct trace *a, const struct trace *b, const char *what)
{
	cr_assert_eq(a->n, b->n, "%s: %d results against %d", what, b->n, a->n);
	for (int i = 0; i < a->n; i++)
		cr_assert_eq(a->v[i], b->v[i], "%s: result %d is %ld, a new pair's %ld", what, i,
		             b->v[i], a->v[i]);
}

/*
 * ptls_link_reset keeps the BIO pair and nothing else: links reset with
 * ciphertext left in both directions, with plaintext unread, after a
 * failed handshake, or twice in a row do exactly what new links do.
 * (ASan: the pair is neither leaked nor freed early by the SSL it outlives.)
 */
Test(ptls, a_reset_link_behaves_as_a_new_one)
{
	struct ptls t;
	struct ptls_link c, s, c2, s2;
	struct trace fresh, again;
	uint8_t *dst;
	char why[160];

	cr_assert_eq(ptls_init(&t, secret, SLEN), 0);
	cr_assert_eq(ptls_link_new(&t, &c, true), 0);
	cr_assert_eq(ptls_link_new(&t, &s, false), 0);
	steps(&c, &s, &fresh);
	/* 4 + 4 per turn: the third turn finds both done; then the data's results. */
	cr_assert(fresh.v[12] == PTLS_DONE && fresh.v[14] == PTLS_DONE, "the handshake finished");
	cr_assert_eq(fresh.v[16], 1, "with the PSK");
	cr_assert_eq(fresh.v[17], 0, "the client's room filled");
	cr_assert_gt(fresh.v[19], fresh.v[20], "ciphertext is left in the client's pair");
	cr_assert_eq(fresh.v[22], 16384, "a record read, more left in the server's pair");

	/* Left as steps() left them: bytes both ways, the server mid-stream. */
	cr_assert_eq(ptls_link_reset(&t, &c, true), 0);
	cr_assert_eq(ptls_link_reset(&t, &s, false), 0);
	cr_assert_not(c.done);
	steps(&c, &s, &again);
	traces_equal(&fresh, &again, "reset after use");

	/* A server that refused garbage, reset; and a reset of a reset link. */
	cr_assert_eq(ptls_link_reset(&t, &s, false), 0);
	cr_assert_gt(ptls_in_space(&s, &dst), 64);
	memcpy(dst, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
	ptls_in_commit(&s, 27);
	cr_assert_eq(ptls_handshake(&s, why, sizeof(why)), PTLS_ERROR);
	cr_assert_eq(ptls_link_reset(&t, &s, false), 0);
	cr_assert_eq(ptls_link_reset(&t, &c, true), 0);
	cr_assert_eq(ptls_link_reset(&t, &c, true), 0);
	steps(&c, &s, &again);
	traces_equal(&fresh, &again, "reset after a failed handshake");

	/* A freed link is made anew; and the roles may change. */
	ptls_link_free(&c);
	cr_assert_eq(ptls_link_reset(&t, &c, true), 0);
	cr_assert_eq(ptls_link_reset(&t, &s, false), 0);
	steps(&c, &s, &again);
	traces_equal(&fresh, &again, "reset of a freed link");
	cr_assert_eq(ptls_link_new(&t, &c2, true), 0);
	cr_assert_eq(ptls_link_new(&t, &s2, false), 0);
	cr_assert_eq(ptls_link_reset(&t, &c2, false), 0);
	cr_assert_eq(ptls_link_reset(&t, &s2, true), 0);
	steps(&s2, &c2, &again);
	traces_equal(&fresh, &again, "reset into the other role");

	ptls_link_free(&c);
	ptls_link_free(&s);
	ptls_link_free(&c2);
	ptls_link_free(&s2);
	ptls_free(&t);
}
