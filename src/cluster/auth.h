/*
 * auth.h - peers prove they hold the cluster secret.
 *
 * Mutual challenge-response with HMAC-SHA256 (OpenSSL's libcrypto, from
 * Debian). On a new peer link each side sends a fresh 32-byte random nonce;
 * each then answers with
 *
 *   HMAC-SHA256(secret, "distro-peer-v1" || role || nonce_initiator ||
 *               nonce_acceptor || initiator_id || acceptor_id)
 *
 * where role is 'I' for the initiator's answer and 'A' for the acceptor's,
 * so an answer can never be reflected back as the other side's. Both nonces
 * are fresh per link, so a recorded answer is useless on a new link. The
 * secret itself never crosses the wire. Comparison is constant-time. Until
 * its answer verifies, a link may carry nothing but the handshake.
 */
#ifndef DISTRO_CLUSTER_AUTH_H
#define DISTRO_CLUSTER_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_NONCE_BYTES 32
#define AUTH_MAC_BYTES   32
#define AUTH_SECRET_MIN  16 /* bytes: a shorter secret is refused at start */

enum auth_role { AUTH_INITIATOR = 'I', AUTH_ACCEPTOR = 'A' };

/* Fills a nonce from the kernel's random source. 0 or -ERR_INVAL. */
int auth_nonce(uint8_t nonce[AUTH_NONCE_BYTES]);

/* The answer `role` sends on a link with these nonces and member ids. 0 or -ERR_INVAL. */
int auth_mac(const uint8_t *secret, size_t secret_len, enum auth_role role,
             const uint8_t nonce_i[AUTH_NONCE_BYTES], const uint8_t nonce_a[AUTH_NONCE_BYTES],
             uint16_t id_i, uint16_t id_a, uint8_t mac[AUTH_MAC_BYTES]);

/* 0 when `got` is the right answer from `role`, else -ERR_INVAL. Constant time. */
int auth_check(const uint8_t *secret, size_t secret_len, enum auth_role role,
               const uint8_t nonce_i[AUTH_NONCE_BYTES], const uint8_t nonce_a[AUTH_NONCE_BYTES],
               uint16_t id_i, uint16_t id_a, const uint8_t got[AUTH_MAC_BYTES]);

#endif
