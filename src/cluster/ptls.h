/*
 * ptls.h - TLS 1.3 on the peer links, keyed from the cluster secret.
 *
 * Why a pre-shared key and not certificates: every member already holds
 * the cluster secret and nothing else; certificates would add a CA, expiry
 * and rotation to operate, for no gain in who may join (the secret decides
 * that today). So the TLS key is an external PSK (RFC 8446 section 4.2.11)
 * derived from the secret:
 *
 *   psk = HKDF-SHA256(ikm = secret, salt = "distro-peer-tls-salt-v1",
 *                     info = "distro peer link TLS 1.3 PSK v1", 32 bytes)
 *
 * so the TLS key is never the raw secret (the HMAC handshake, auth.h, keys
 * with the raw secret; the two uses cannot be confused). The PSK identity is
 * the fixed "distro-peer-v1". Key exchange is psk_dhe_ke only (ECDHE with
 * the PSK: OpenSSL's default unless SSL_OP_ALLOW_NO_DHE_KEX), so a secret
 * stolen later does not decrypt recorded traffic. Cipher suites
 * TLS_AES_128_GCM_SHA256 (AES-NI) then TLS_CHACHA20_POLY1305_SHA256; both
 * hash with SHA-256, which the PSK session names. No session tickets, no
 * early data, no certificates.
 *
 * The PSK proves the peer holds the secret but not which member it is: the
 * HELLO/AUTH handshake (auth.h) still runs inside the TLS channel and keeps
 * the member-id check.
 *
 * I/O: OpenSSL never touches the socket. Each link has a BIO pair: OpenSSL
 * reads and writes its internal end; link.c receives into our end's free
 * space (ptls_in_space / ptls_in_commit) and sends from its pending bytes
 * (ptls_out_pending / ptls_out_consume), without copies, on its own
 * non-blocking socket and epoll loop. The pair's buffers bound what one link
 * holds in ciphertext (PTLS_OUT_BYTES, PTLS_IN_BYTES), allocated once per
 * link, never per frame.
 *
 * Threads: a struct ptls and its links belong to the peer thread; the
 * SSL_CTX is only read by it after ptls_init, and the PSK session's time is
 * written by it at each handshake (ptls.c, psk_fresh): unlocked, so the
 * context must stay the peer thread's alone.
 */
#ifndef DISTRO_CLUSTER_PTLS_H
#define DISTRO_CLUSTER_PTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PTLS_PSK_BYTES 32
#define PTLS_OUT_BYTES (256u << 10) /* ciphertext waiting for the socket, per link */
#define PTLS_IN_BYTES  (128u << 10) /* ciphertext received, not yet decrypted, per link */
/* Bytes a link may receive until its TLS handshake is done (a PSK handshake takes ~1 KiB). */
#define PTLS_HANDSHAKE_BYTES_MAX (16u << 10)

struct ssl_ctx_st;
struct ssl_st;
struct ssl_session_st;
struct bio_st;

/* The node's TLS setup; ctx NULL when peer links are plaintext (--peer-tls off). */
struct ptls {
	struct ssl_ctx_st *ctx;
	struct ssl_session_st *psk; /* the external PSK as a session */
};

/* One link's TLS state; ssl NULL on a plaintext link. */
struct ptls_link {
	struct ssl_st *ssl;
	struct bio_st *net; /* our end of the BIO pair */
	bool done;          /* the TLS handshake finished */
};

/* Results besides byte counts. */
enum { PTLS_CLOSED = -2, PTLS_ERROR = -1, PTLS_AGAIN = 0, PTLS_DONE = 1 };

/*
 * The PSK for a secret: HKDF-SHA256 as above. 0 or -ERR_INVAL (a secret
 * shorter than AUTH_SECRET_MIN, or libcrypto failed).
 */
int ptls_psk_derive(const uint8_t *secret, size_t secret_len, uint8_t psk[PTLS_PSK_BYTES]);

/*
 * Sets up TLS from the secret: the context, the PSK session. 0 or
 * -ERR_INVAL with the reason logged. Free with ptls_free (also after a
 * failure).
 */
int ptls_init(struct ptls *t, const uint8_t *secret, size_t secret_len);
void ptls_free(struct ptls *t);

/*
 * A link's TLS, client side for the member that dialled. 0 or -ERR_NOMEM.
 * Nothing is sent until ptls_handshake.
 */
int ptls_link_new(const struct ptls *t, struct ptls_link *tl, bool client);
void ptls_link_free(struct ptls_link *tl);

/*
 * The link as ptls_link_new would make it, keeping its BIO pair: a new SSL
 * (nothing of the last session carries over, as it would with SSL_clear),
 * both ciphertext buffers emptied, their memory kept. For a caller that
 * makes link after link in one place - the fuzz target, where a new pair
 * (PTLS_OUT_BYTES + PTLS_IN_BYTES, past ASan's largest size class) was an
 * mmap, a munmap and a TLB shootdown per input; peer links are few and
 * long-lived and do not use it. 0, or -ERR_NOMEM with the link freed.
 */
int ptls_link_reset(const struct ptls *t, struct ptls_link *tl, bool client);

/*
 * Advances the handshake with what was received: PTLS_DONE once finished,
 * PTLS_AGAIN when more bytes must come (its own output then waits in
 * ptls_out_pending), or PTLS_ERROR with the reason in why.
 */
int ptls_handshake(struct ptls_link *tl, char *why, size_t why_len);

/*
 * Decrypts into buf: bytes (> 0), 0 when it needs more ciphertext, or
 * PTLS_ERROR (a bad record, an alert; reason in why) or PTLS_CLOSED (the
 * peer closed the TLS session).
 */
long ptls_read(struct ptls_link *tl, uint8_t *buf, size_t cap, char *why, size_t why_len);

/*
 * Encrypts from buf as much as the link's ciphertext room takes (a record,
 * at most 16 KiB, per call): bytes taken (0: no room now) or PTLS_ERROR.
 * A call that took nothing must be repeated later with the same bytes at
 * the front of buf (they may have moved; more may follow).
 */
long ptls_write(struct ptls_link *tl, const uint8_t *buf, size_t len, char *why, size_t why_len);

/* Room for received ciphertext: its length (0: full), *p where to put it. */
size_t ptls_in_space(struct ptls_link *tl, uint8_t **p);
/* n bytes were received into the room ptls_in_space gave. */
void ptls_in_commit(struct ptls_link *tl, size_t n);
/* Ciphertext to send: its length (0: none), *p where it starts. */
size_t ptls_out_pending(struct ptls_link *tl, uint8_t **p);
/* n bytes of it were sent. */
void ptls_out_consume(struct ptls_link *tl, size_t n);

#endif
