/*
 * ptls.c - TLS 1.3 with a PSK from the cluster secret, over BIO pairs.
 *
 * The design and its reasons are in ptls.h and docs/distro.md ("Encrypted
 * peer links"). Here: the HKDF, the SSL_CTX (TLS 1.3 only, the PSK
 * callbacks, no tickets, no certificates), and thin wrappers that turn
 * OpenSSL's WANT_READ / WANT_WRITE into "again" and its errors into a
 * sentence for the log. OpenSSL's record layer bounds each record (16 KiB
 * plus overhead: a longer one is a record_overflow alert); the byte budget
 * before authentication is link.c's (PTLS_HANDSHAKE_BYTES_MAX).
 *
 * OpenSSL keeps an error queue per thread: every failure here drains it
 * into `why`, so a stale error never explains a later one.
 */
#include "cluster/ptls.h"

#include "cluster/auth.h"
#include "core/err.h"
#include "core/log.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char PSK_IDENTITY[] = "distro-peer-v1";
static const char HKDF_SALT[] = "distro-peer-tls-salt-v1";
static const char HKDF_INFO[] = "distro peer link TLS 1.3 PSK v1";
static const unsigned char AES128GCM_SHA256[2] = { 0x13, 0x01 };

int ptls_psk_derive(const uint8_t *secret, size_t secret_len, uint8_t psk[PTLS_PSK_BYTES])
{
	EVP_KDF *kdf;
	EVP_KDF_CTX *kctx;
	OSSL_PARAM params[5], *q = params;
	int ok;

	if (secret_len < AUTH_SECRET_MIN)
		return -ERR_INVAL;
	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (kdf == NULL)
		return -ERR_INVAL;
	kctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (kctx == NULL)
		return -ERR_INVAL;
	*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)HKDF_SALT,
	                                         sizeof(HKDF_SALT) - 1);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)HKDF_INFO,
	                                         sizeof(HKDF_INFO) - 1);
	*q = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(kctx, psk, PTLS_PSK_BYTES, params) == 1;
	EVP_KDF_CTX_free(kctx);
	return ok ? 0 : -ERR_INVAL;
}

/* The PSK session of the context an SSL belongs to. */
static SSL_SESSION *psk_of(SSL *ssl)
{
	const struct ptls *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));

	return t ? t->psk : NULL;
}

/*
 * The PSK is a session, and OpenSSL gives a session a lifetime (304 s from
 * SSL_SESSION_new): a server whose PSK session has "expired" rejects every
 * handshake ("no suitable signature algorithm"), so a node up longer than
 * five minutes could only make links, never accept them, and two such nodes
 * could never link again after a loss. An external PSK does not expire: its
 * time is renewed on every use (the peer thread's alone).
 */
static void psk_fresh(SSL_SESSION *s)
{
	SSL_SESSION_set_time(s, (long)time(NULL));
}

/* Client: offer the PSK (md is set on a HelloRetryRequest: it must match). */
static int use_session(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
                       SSL_SESSION **sess)
{
	SSL_SESSION *s = psk_of(ssl);

	*sess = NULL;
	if (s == NULL)
		return 0;
	if (md != NULL && md != SSL_CIPHER_get_handshake_digest(SSL_SESSION_get0_cipher(s)))
		return 1; /* no PSK for this hash: the handshake fails, as it must */
	psk_fresh(s);
	if (!SSL_SESSION_up_ref(s))
		return 0;
	*sess = s;
	*id = (const unsigned char *)PSK_IDENTITY;
	*idlen = sizeof(PSK_IDENTITY) - 1;
	return 1;
}

/* Server: the one identity we know; anything else finds no PSK (and fails). */
static int find_session(SSL *ssl, const unsigned char *id, size_t idlen, SSL_SESSION **sess)
{
	SSL_SESSION *s = psk_of(ssl);

	*sess = NULL;
	if (s == NULL)
		return 0;
	if (idlen != sizeof(PSK_IDENTITY) - 1 || memcmp(id, PSK_IDENTITY, idlen) != 0)
		return 1;
	psk_fresh(s);
	if (!SSL_SESSION_up_ref(s))
		return 0;
	*sess = s;
	return 1;
}

/* Drains OpenSSL's error queue into why (the first error's reason, which is the cause). */
static void why_from_queue(char *why, size_t why_len, const char *fallback)
{
	unsigned long e = ERR_get_error();

	if (why_len)
		snprintf(why, why_len, "%s", fallback);
	if (e != 0 && why_len) {
		const char *r = ERR_reason_error_string(e);

		if (r)
			snprintf(why, why_len, "%s", r);
		else
			ERR_error_string_n(e, why, why_len);
	}
	ERR_clear_error();
}

int ptls_init(struct ptls *t, const uint8_t *secret, size_t secret_len)
{
	uint8_t psk[PTLS_PSK_BYTES];
	const SSL_CIPHER *cipher;
	SSL *tmp = NULL;
	char why[128];

	memset(t, 0, sizeof(*t));
	if (ptls_psk_derive(secret, secret_len, psk) < 0) {
		log_error("peer TLS: cannot derive the key from the cluster secret");
		return -ERR_INVAL;
	}
	t->ctx = SSL_CTX_new(TLS_method());
	if (t->ctx == NULL)
		goto err;
	if (!SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(t->ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(t->ctx,
	                              "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256") ||
	    !SSL_CTX_set_num_tickets(t->ctx, 0))
		goto err;
	SSL_CTX_set_options(t->ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_clear_options(t->ctx, SSL_OP_ALLOW_NO_DHE_KEX); /* psk_dhe_ke only */
	SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(t->ctx,
	                 SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE,
	                   NULL); /* no certificates: the PSK is the proof */
	SSL_CTX_set_psk_use_session_callback(t->ctx, use_session);
	SSL_CTX_set_psk_find_session_callback(t->ctx, find_session);
	SSL_CTX_set_app_data(t->ctx, t);
	tmp = SSL_new(t->ctx);
	if (tmp == NULL)
		goto err;
	cipher = SSL_CIPHER_find(tmp, AES128GCM_SHA256);
	t->psk = SSL_SESSION_new();
	if (cipher == NULL || t->psk == NULL ||
	    !SSL_SESSION_set1_master_key(t->psk, psk, sizeof(psk)) ||
	    !SSL_SESSION_set_cipher(t->psk, cipher) ||
	    !SSL_SESSION_set_protocol_version(t->psk, TLS1_3_VERSION))
		goto err;
	SSL_free(tmp);
	OPENSSL_cleanse(psk, sizeof(psk));
	return 0;
err:
	why_from_queue(why, sizeof(why), "OpenSSL failed");
	log_error("peer TLS setup: %s", why);
	SSL_free(tmp);
	OPENSSL_cleanse(psk, sizeof(psk));
	return -ERR_INVAL;
}

void ptls_free(struct ptls *t)
{
	SSL_SESSION_free(t->psk);
	SSL_CTX_free(t->ctx);
	t->psk = NULL;
	t->ctx = NULL;
}

int ptls_link_new(const struct ptls *t, struct ptls_link *tl, bool client)
{
	BIO *inner = NULL;

	memset(tl, 0, sizeof(*tl));
	tl->ssl = SSL_new(t->ctx);
	if (tl->ssl == NULL || !BIO_new_bio_pair(&inner, PTLS_OUT_BYTES, &tl->net, PTLS_IN_BYTES)) {
		SSL_free(tl->ssl);
		ERR_clear_error();
		memset(tl, 0, sizeof(*tl));
		return -ERR_NOMEM;
	}
	SSL_set_bio(tl->ssl, inner, inner); /* the SSL owns the inner end now */
	if (client)
		SSL_set_connect_state(tl->ssl);
	else
		SSL_set_accept_state(tl->ssl);
	return 0;
}

int ptls_link_reset(const struct ptls *t, struct ptls_link *tl, bool client)
{
	BIO *inner = tl->ssl ? SSL_get_rbio(tl->ssl) : NULL; /* the rbio: never the bbio */
	SSL *ssl;

	if (inner == NULL)
		return ptls_link_new(t, tl, client);
	/* Ours keeps the pair alive through SSL_free; it becomes the new SSL's below. */
	if (!BIO_up_ref(inner))
		goto err;
	ssl = SSL_new(t->ctx);
	if (ssl == NULL) {
		BIO_free(inner);
		goto err;
	}
	SSL_free(tl->ssl);
	(void)BIO_reset(inner);   /* ciphertext out: len and offset 0, as a new pair's */
	(void)BIO_reset(tl->net); /* ciphertext in */
	tl->ssl = ssl;
	tl->done = false;
	SSL_set_bio(ssl, inner, inner); /* as in ptls_link_new: two references, ours and one more */
	if (client)
		SSL_set_connect_state(ssl);
	else
		SSL_set_accept_state(ssl);
	/* Nothing of the last session's errors may turn this one's WANT_READ into an error. */
	ERR_clear_error();
	return 0;
err:
	ERR_clear_error();
	ptls_link_free(tl);
	return -ERR_NOMEM;
}

void ptls_link_free(struct ptls_link *tl)
{
	if (tl->ssl == NULL)
		return;
	SSL_free(tl->ssl); /* frees the inner end; the pair's buffers go with the last end */
	BIO_free(tl->net);
	memset(tl, 0, sizeof(*tl));
}

/* OpenSSL's answer as again (0) or an error (PTLS_ERROR / PTLS_CLOSED, why filled). */
static int classify(struct ptls_link *tl, int ret, char *why, size_t why_len)
{
	switch (SSL_get_error(tl->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return PTLS_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		if (why_len)
			snprintf(why, why_len, "the peer ended the TLS session");
		return PTLS_CLOSED;
	default:
		why_from_queue(why, why_len, "TLS failed");
		return PTLS_ERROR;
	}
}

int ptls_handshake(struct ptls_link *tl, char *why, size_t why_len)
{
	int ret;

	if (tl->done)
		return PTLS_DONE;
	ret = SSL_do_handshake(tl->ssl);
	if (ret == 1) {
		/*
		 * Only a handshake keyed by the cluster's PSK counts: a dialler
		 * would otherwise finish one with any TLS server that shows a
		 * certificate (verification is off: there are no certificates).
		 */
		if (!SSL_session_reused(tl->ssl)) {
			snprintf(why, why_len,
			         "the peer did not use the cluster key (a certificate "
			         "handshake: not a member)");
			return PTLS_ERROR;
		}
		tl->done = true;
		return PTLS_DONE;
	}
	ret = classify(tl, ret, why, why_len);
	return ret == PTLS_CLOSED ? PTLS_ERROR : ret;
}

long ptls_read(struct ptls_link *tl, uint8_t *buf, size_t cap, char *why, size_t why_len)
{
	size_t n = 0;
	int ret = SSL_read_ex(tl->ssl, buf, cap, &n);

	if (ret == 1)
		return (long)n;
	return classify(tl, ret, why, why_len);
}

long ptls_write(struct ptls_link *tl, const uint8_t *buf, size_t len, char *why, size_t why_len)
{
	size_t n = 0;
	int ret = SSL_write_ex(tl->ssl, buf, len, &n);

	if (ret == 1)
		return (long)n;
	ret = classify(tl, ret, why, why_len);
	return ret == PTLS_CLOSED ? PTLS_ERROR : ret;
}

size_t ptls_in_space(struct ptls_link *tl, uint8_t **p)
{
	char *c = NULL;
	int n = BIO_nwrite0(tl->net, &c);

	*p = (uint8_t *)c;
	return n > 0 ? (size_t)n : 0;
}

void ptls_in_commit(struct ptls_link *tl, size_t n)
{
	char *c = NULL;

	if (n)
		(void)BIO_nwrite(tl->net, &c, (int)n);
}

size_t ptls_out_pending(struct ptls_link *tl, uint8_t **p)
{
	char *c = NULL;
	int n;

	if (tl->ssl == NULL)
		return 0;
	n = BIO_nread0(tl->net, &c);
	*p = (uint8_t *)c;
	return n > 0 ? (size_t)n : 0;
}

void ptls_out_consume(struct ptls_link *tl, size_t n)
{
	char *c = NULL;

	if (n)
		(void)BIO_nread(tl->net, &c, (int)n);
}
