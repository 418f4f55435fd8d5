#include "cluster/auth.h"

#include "core/err.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>
#include <sys/random.h>

int auth_nonce(uint8_t nonce[AUTH_NONCE_BYTES])
{
	return getrandom(nonce, AUTH_NONCE_BYTES, 0) == AUTH_NONCE_BYTES ? 0 : -ERR_INVAL;
}

int auth_mac(const uint8_t *secret, size_t secret_len, enum auth_role role,
             const uint8_t nonce_i[AUTH_NONCE_BYTES], const uint8_t nonce_a[AUTH_NONCE_BYTES],
             uint16_t id_i, uint16_t id_a, uint8_t mac[AUTH_MAC_BYTES])
{
	static const char label[] = "distro-peer-v1";
	uint8_t msg[sizeof(label) - 1 + 1 + 2 * AUTH_NONCE_BYTES + 4];
	unsigned int len = 0;
	size_t n = 0;

	if (secret_len < AUTH_SECRET_MIN || (role != AUTH_INITIATOR && role != AUTH_ACCEPTOR))
		return -ERR_INVAL;
	memcpy(msg, label, sizeof(label) - 1);
	n += sizeof(label) - 1;
	msg[n++] = (uint8_t)role;
	memcpy(msg + n, nonce_i, AUTH_NONCE_BYTES);
	n += AUTH_NONCE_BYTES;
	memcpy(msg + n, nonce_a, AUTH_NONCE_BYTES);
	n += AUTH_NONCE_BYTES;
	msg[n++] = (uint8_t)(id_i >> 8);
	msg[n++] = (uint8_t)id_i;
	msg[n++] = (uint8_t)(id_a >> 8);
	msg[n++] = (uint8_t)id_a;
	if (HMAC(EVP_sha256(), secret, (int)secret_len, msg, n, mac, &len) == NULL ||
	    len != AUTH_MAC_BYTES)
		return -ERR_INVAL;
	return 0;
}

int auth_check(const uint8_t *secret, size_t secret_len, enum auth_role role,
               const uint8_t nonce_i[AUTH_NONCE_BYTES], const uint8_t nonce_a[AUTH_NONCE_BYTES],
               uint16_t id_i, uint16_t id_a, const uint8_t got[AUTH_MAC_BYTES])
{
	uint8_t want[AUTH_MAC_BYTES];

	if (auth_mac(secret, secret_len, role, nonce_i, nonce_a, id_i, id_a, want) < 0)
		return -ERR_INVAL;
	return CRYPTO_memcmp(want, got, AUTH_MAC_BYTES) == 0 ? 0 : -ERR_INVAL;
}
