/*
 * auth.c - users file, bcrypt checks behind a per-user cache, signed tokens.
 *
 * The design is in auth.h; here, how the pieces hold it.
 *
 * The table is one allocation of users sorted by name (memcmp, then
 * length), searched by bisection: at most 10 steps for NAUTH_USERS_MAX,
 * no hashing, and the order makes repeated names adjacent at load. Each
 * user owns its cache words (passed digest, refused digests, a validity
 * mask), so the cache is bounded by the users bound and needs no eviction
 * policy beyond a round-robin over the refused slots.
 *
 * Cache safety, spelled out: a digest enters `passed` only right after
 * crypt_r produced exactly the stored hash for that password; a digest
 * enters `refused` only right after it did not. bcrypt is deterministic
 * for a fixed hash, so no password's digest can land in both; a wrong
 * password could match `passed` only through a SHA-256 collision. Readers and writers use relaxed
 * atomic words: a reader racing a writer may see a mix of two digests, which is no password's
 * digest at all, so it falls through to bcrypt. The mask is published with release after the words,
 * and read with acquire, only so a fresh table is not consulted before its first write (a zero
 * digest would not match either; the mask makes it plain).
 *
 * Hashing per request without allocation or shared writes. The token
 * MAC is HMAC-SHA256 (RFC 2104) built on OpenSSL's SHA-256 with the two
 * keyed states precomputed: H((K ^ opad) || H((K ^ ipad) || m)), where
 * the states after the ipad and opad blocks are kept in the table and
 * copied (a plain struct copy) per token, so a verification is two short
 * SHA-256 runs on the stack. The password digest starts likewise from a
 * state that has absorbed the salt. OpenSSL 3's EVP interfaces would
 * allocate a context per call and bump reference counts on objects all
 * workers share (measured: ~2 us per verification against ~0.3 us here);
 * its low-level SHA256_* functions do neither, but are marked deprecated
 * in 3.0, hence OPENSSL_SUPPRESS_DEPRECATED below (they remain in every
 * 3.x release). The construction is pinned by a known-answer test against
 * Python's hmac (tests/unit/nacos/test_auth.c).
 */
#include "nacos/auth.h"

#include "core/atomic.h"
#include "core/err.h"

#include <crypt.h>
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_*: see the top of this file */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define DIGEST_WORDS  4 /* a SHA-256 digest as 64-bit words, for atomic access */
#define KEY_BYTES     32
#define MAC_BYTES     32
#define SALT_BYTES    32
#define TOKEN_RAW_MAX (2 + NAUTH_NAME_MAX + 8 + MAC_BYTES)
#define PASSED_BIT    (1u << NAUTH_REFUSED_SLOTS) /* mask: bits 0.. the refused slots */

_Static_assert(NAUTH_NAME_MAX <= 255, "a token carries the name length in one byte");
_Static_assert(NAUTH_TOKEN_LEN_MAX == (TOKEN_RAW_MAX * 8 + 5) / 6, "token length bound");
_Static_assert(NAUTH_REFUSED_SLOTS < 31, "the validity mask is 32 bits");

static const char TOKEN_KEY_LABEL[] = "distro-nacos-token-v1";

struct nauth_user {
	char name[NAUTH_NAME_MAX + 1];
	uint8_t name_len;
	bool admin;
	uint32_t line; /* where the users file defined it, for messages */
	char hash[NAUTH_HASH_MAX + 1];
	/* The cache: atomic words (see the top of this file). */
	uint64_t passed[DIGEST_WORDS];
	uint64_t refused[NAUTH_REFUSED_SLOTS][DIGEST_WORDS];
	uint32_t valid;        /* PASSED_BIT | one bit per refused slot */
	uint32_t refused_next; /* round-robin over the refused slots */
};

struct nauth {
	struct nauth_user *users; /* sorted by name */
	uint32_t n_users;
	int64_t ttl_ms;
	int64_t skew_ms;
	int64_t clock_ms;    /* high water mark of the wall clock; atomic max */
	uint64_t crypt_runs; /* atomic */
	uint8_t salt[SALT_BYTES];
	uint8_t key[KEY_BYTES]; /* the MAC key, derived from the secret */
	SHA256_CTX mac_inner;   /* after (key ^ ipad): copied per token, never advanced */
	SHA256_CTX mac_outer;   /* after (key ^ opad) */
	SHA256_CTX salted;      /* after the salt: copied per password digest */
};

/* ---- small helpers ---- */

static void why_set(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || cap == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
}

static bool name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '@' || c == '+' || c == '-';
}

static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || n > NAUTH_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!name_char((unsigned char)s[i]))
			return false;
	return true;
}

static bool bcrypt_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '/';
}

/*
 * A bcrypt string: `$2a$`, `$2b$` or `$2y$`, two cost digits, `$`, 22
 * characters of salt and 31 of hash in bcrypt's base64 alphabet. Returns
 * the cost, or -1 when s is not one.
 */
static int bcrypt_cost(const char *s, size_t n)
{
	int cost;

	if (n != NAUTH_HASH_MAX || s[0] != '$' || s[1] != '2' ||
	    (s[2] != 'a' && s[2] != 'b' && s[2] != 'y') || s[3] != '$' || s[4] < '0' ||
	    s[4] > '9' || s[5] < '0' || s[5] > '9' || s[6] != '$')
		return -1;
	for (size_t i = 7; i < n; i++)
		if (!bcrypt_char((unsigned char)s[i]))
			return -1;
	cost = (s[4] - '0') * 10 + (s[5] - '0');
	return cost >= 4 && cost <= 31 ? cost : -1;
}

static int name_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);

	if (c != 0)
		return c;
	return an < bn ? -1 : an > bn;
}

static int user_cmp(const void *x, const void *y)
{
	const struct nauth_user *a = x, *b = y;

	return name_cmp(a->name, a->name_len, b->name, b->name_len);
}

static struct nauth_user *user_find(const struct nauth *a, const char *name, size_t n)
{
	uint32_t lo = 0, hi = a->n_users;

	if (n == 0 || n > NAUTH_NAME_MAX)
		return NULL;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		struct nauth_user *u = &a->users[mid];
		int c = name_cmp(name, n, u->name, u->name_len);

		if (c == 0)
			return u;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static void id_fill(struct nauth_id *who, const struct nauth_user *u)
{
	if (who == NULL)
		return;
	memcpy(who->name, u->name, u->name_len);
	who->name[u->name_len] = '\0';
	who->name_len = u->name_len;
	who->admin = u->admin;
}

/* The wall clock that never goes back: max(now, every now seen before). */
static int64_t clock_advance(struct nauth *a, int64_t now_ms)
{
	int64_t seen = LOAD_RELAXED(&a->clock_ms);

	while (now_ms > seen) {
		if (__atomic_compare_exchange_n(&a->clock_ms, &seen, now_ms, true, __ATOMIC_RELAXED,
		                                __ATOMIC_RELAXED))
			return now_ms;
	}
	return seen;
}

/* ---- base64url without padding ---- */

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t o = 0, i = 0;

	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = B64URL[v >> 18];
		out[o++] = B64URL[(v >> 12) & 63];
		out[o++] = B64URL[(v >> 6) & 63];
		out[o++] = B64URL[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		out[o++] = B64URL[v >> 18];
		out[o++] = B64URL[(v >> 12) & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[o++] = B64URL[v >> 18];
		out[o++] = B64URL[(v >> 12) & 63];
		out[o++] = B64URL[(v >> 6) & 63];
	}
	return o;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Decodes len characters into out (room for TOKEN_RAW_MAX bytes). Returns
 * the byte count, -ERR_AUTH_TOKEN_LENGTH when len is 0, over the bound, or
 * a length no byte string encodes to, -ERR_AUTH_TOKEN_ENCODING for a
 * character outside the alphabet. *loose tells whether bits after the last
 * byte are set: another spelling of the same bytes, refused by the caller
 * (so each token has exactly one) once it knows the length is right, so
 * that a truncated token is reported as such.
 */
static int b64_decode(const char *in, size_t len, uint8_t *out, bool *loose)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;

	if (len == 0 || len > NAUTH_TOKEN_LEN_MAX)
		return -ERR_AUTH_TOKEN_LENGTH;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value((unsigned char)in[i]);

		if (v < 0)
			return -ERR_AUTH_TOKEN_ENCODING;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (len % 4 == 1) /* 6 bits: no byte string encodes to this */
		return -ERR_AUTH_TOKEN_LENGTH;
	*loose = acc != 0;
	return (int)o;
}

/* ---- the table ---- */

static struct nauth *nauth_new(void)
{
	struct nauth *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	a->ttl_ms = NAUTH_TTL_MS_DEFAULT;
	a->skew_ms = NAUTH_SKEW_MS_DEFAULT;
	if (getrandom(a->salt, sizeof(a->salt), 0) != sizeof(a->salt))
		goto err;
	SHA256_Init(&a->salted);
	SHA256_Update(&a->salted, a->salt, sizeof(a->salt));
	/* A random secret until nauth_set_secret: tokens work on this node only. */
	if (getrandom(a->key, sizeof(a->key), 0) != sizeof(a->key))
		goto err;
	if (nauth_set_secret(a, a->key, sizeof(a->key)) < 0)
		goto err;
	return a;
err:
	nauth_free(a);
	return NULL;
}

void nauth_free(struct nauth *a)
{
	if (a == NULL)
		return;
	if (a->users != NULL)
		OPENSSL_cleanse(a->users, sizeof(*a->users) * a->n_users);
	free(a->users);
	OPENSSL_cleanse(a, sizeof(*a)); /* the key, the keyed states, the salt */
	free(a);
}

/* Precomputes the two keyed HMAC states from a->key (RFC 2104; the key is one block or less). */
static void mac_rekey(struct nauth *a)
{
	uint8_t pad[SHA256_CBLOCK];

	_Static_assert(KEY_BYTES <= SHA256_CBLOCK,
	               "an HMAC key longer than a block is hashed first");
	memset(pad, 0x36, sizeof(pad));
	for (size_t i = 0; i < KEY_BYTES; i++)
		pad[i] ^= a->key[i];
	SHA256_Init(&a->mac_inner);
	SHA256_Update(&a->mac_inner, pad, sizeof(pad));
	memset(pad, 0x5c, sizeof(pad));
	for (size_t i = 0; i < KEY_BYTES; i++)
		pad[i] ^= a->key[i];
	SHA256_Init(&a->mac_outer);
	SHA256_Update(&a->mac_outer, pad, sizeof(pad));
	OPENSSL_cleanse(pad, sizeof(pad));
}

int nauth_set_secret(struct nauth *a, const void *secret, size_t len)
{
	uint8_t key[KEY_BYTES];
	unsigned int n = 0;

	if (a == NULL || secret == NULL || len < NAUTH_SECRET_MIN || len > INT32_MAX)
		return -ERR_INVAL;
	if (HMAC(EVP_sha256(), secret, (int)len, (const uint8_t *)TOKEN_KEY_LABEL,
	         sizeof(TOKEN_KEY_LABEL) - 1, key, &n) == NULL ||
	    n != KEY_BYTES)
		return -ERR_NOMEM;
	memcpy(a->key, key, sizeof(key));
	OPENSSL_cleanse(key, sizeof(key));
	mac_rekey(a);
	return 0;
}

int nauth_set_times(struct nauth *a, int64_t ttl_ms, int64_t skew_ms)
{
	if (a == NULL || ttl_ms < NAUTH_TTL_MS_MIN || ttl_ms > NAUTH_TTL_MS_MAX || skew_ms < 0 ||
	    skew_ms > NAUTH_SKEW_MS_MAX)
		return -ERR_INVAL;
	a->ttl_ms = ttl_ms;
	a->skew_ms = skew_ms;
	return 0;
}

int64_t nauth_ttl_ms(const struct nauth *a)
{
	return a->ttl_ms;
}

uint32_t nauth_user_count(const struct nauth *a)
{
	return a->n_users;
}

uint64_t nauth_crypt_runs(const struct nauth *a)
{
	return LOAD_RELAXED(&a->crypt_runs);
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/*
 * One non-blank, non-comment line [s, s + n) into u. 0, or -1 with why
 * set to what is wrong (the caller adds origin and line).
 */
static int parse_line(const char *s, size_t n, struct nauth_user *u, char *why, size_t cap)
{
	const char *c1 = memchr(s, ':', n), *c2, *hash, *third = NULL;
	size_t name_n, hash_n, third_n = 0;
	int cost;

	if (c1 == NULL) {
		why_set(why, cap, "expected name:hash or name:hash:admin");
		return -1;
	}
	name_n = (size_t)(c1 - s);
	hash = c1 + 1;
	c2 = memchr(hash, ':', n - name_n - 1);
	if (c2 != NULL) {
		hash_n = (size_t)(c2 - hash);
		third = c2 + 1;
		third_n = n - name_n - 1 - hash_n - 1;
	} else {
		hash_n = n - name_n - 1;
	}
	if (!name_ok(s, name_n)) {
		why_set(why, cap, "user name empty, over %d bytes, or not of [A-Za-z0-9._@+-]",
		        NAUTH_NAME_MAX);
		return -1;
	}
	cost = bcrypt_cost(hash, hash_n);
	if (cost < 0) {
		why_set(why, cap,
		        "not a bcrypt hash ($2b$NN$ and 53 characters; make one with distroctl "
		        "hash-password)");
		return -1;
	}
	if (cost > NAUTH_BCRYPT_COST_MAX) {
		why_set(why, cap, "bcrypt cost %d over %d: one check would block for seconds", cost,
		        NAUTH_BCRYPT_COST_MAX);
		return -1;
	}
	if (third != NULL && !(third_n == 5 && memcmp(third, "admin", 5) == 0)) {
		why_set(why, cap, "the third field may only be 'admin'");
		return -1;
	}
	memset(u, 0, sizeof(*u));
	memcpy(u->name, s, name_n);
	u->name_len = (uint8_t)name_n;
	memcpy(u->hash, hash, hash_n);
	u->admin = third != NULL;
	return 0;
}

int nauth_parse(const char *text, size_t len, const char *origin, struct nauth **out, char *why,
                size_t why_cap)
{
	struct nauth_user *users = NULL;
	struct nauth *a = NULL;
	uint32_t n = 0, cap = 0, line = 0;
	size_t pos = 0;
	char what[NAUTH_WHY_CAP];

	*out = NULL;
	if (origin == NULL)
		origin = "users";
	while (pos < len) {
		const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
		size_t n_line = nl != NULL ? (size_t)(nl - s) : len - pos;

		line++;
		pos += n_line + (nl != NULL);
		if (n_line > NAUTH_LINE_MAX) {
			why_set(why, why_cap, "%s:%u: line over %d bytes", origin, line,
			        NAUTH_LINE_MAX);
			goto bad;
		}
		while (n_line > 0 && blank(s[0]))
			s++, n_line--;
		while (n_line > 0 && blank(s[n_line - 1]))
			n_line--;
		if (n_line == 0 || s[0] == '#')
			continue;
		if (n == NAUTH_USERS_MAX) {
			why_set(why, why_cap, "%s:%u: more than %d users", origin, line,
			        NAUTH_USERS_MAX);
			goto bad;
		}
		if (n == cap) {
			uint32_t grown = cap == 0 ? 16 : cap * 2;
			struct nauth_user *more;

			if (grown > NAUTH_USERS_MAX)
				grown = NAUTH_USERS_MAX;
			more = realloc(users, grown * sizeof(*users));
			if (more == NULL) {
				free(users);
				why_set(why, why_cap, "%s: out of memory", origin);
				return -ERR_NOMEM;
			}
			users = more;
			cap = grown;
		}
		if (parse_line(s, n_line, &users[n], what, sizeof(what)) < 0) {
			why_set(why, why_cap, "%s:%u: %s", origin, line, what);
			goto bad;
		}
		users[n++].line = line;
	}
	if (n == 0) {
		why_set(why, why_cap, "%s: no users (auth on with no users lets nobody in)",
		        origin);
		goto bad;
	}
	qsort(users, n, sizeof(*users), user_cmp);
	for (uint32_t i = 1; i < n; i++) {
		if (user_cmp(&users[i - 1], &users[i]) == 0) {
			const struct nauth_user *x = &users[i - 1], *y = &users[i];

			why_set(why, why_cap, "%s:%u: user '%s' repeated (first on line %u)",
			        origin, x->line > y->line ? x->line : y->line, x->name,
			        x->line < y->line ? x->line : y->line);
			goto bad;
		}
	}
	a = nauth_new();
	if (a == NULL) {
		free(users);
		why_set(why, why_cap, "%s: out of memory", origin);
		return -ERR_NOMEM;
	}
	a->users = users;
	a->n_users = n;
	*out = a;
	return 0;
bad:
	free(users);
	return -ERR_AUTH_USERS_FILE;
}

int nauth_load(const char *path, struct nauth **out, char *why, size_t why_cap)
{
	FILE *f;
	char *text;
	size_t n;
	int rc;

	*out = NULL;
	f = fopen(path, "re");
	if (f == NULL) {
		why_set(why, why_cap, "%s: cannot open: %m", path);
		return -ERR_AUTH_USERS_FILE;
	}
	text = malloc(NAUTH_FILE_MAX + 1);
	if (text == NULL) {
		fclose(f);
		return -ERR_NOMEM;
	}
	n = fread(text, 1, NAUTH_FILE_MAX + 1, f);
	if (ferror(f) || n > NAUTH_FILE_MAX) {
		why_set(why, why_cap, "%s: %s", path,
		        ferror(f) ? "read error" : "larger than 1 MiB");
		rc = -ERR_AUTH_USERS_FILE;
	} else {
		rc = nauth_parse(text, n, path, out, why, why_cap);
	}
	fclose(f);
	free(text);
	return rc;
}

int nauth_reload(const struct nauth *old, const char *path, struct nauth **out, char *why,
                 size_t why_cap)
{
	struct nauth *a;
	int rc;

	*out = NULL;
	rc = nauth_load(path, &a, why, why_cap);
	if (rc < 0)
		return rc;
	memcpy(a->key, old->key, sizeof(a->key));
	mac_rekey(a);
	a->ttl_ms = old->ttl_ms;
	a->skew_ms = old->skew_ms;
	a->clock_ms = LOAD_RELAXED(&old->clock_ms);
	*out = a;
	return 0;
}

/* ---- passwords ---- */

/* SHA-256(salt || password) as words, the cache key. */
static void pass_digest(const struct nauth *a, const char *pass, size_t n, uint64_t d[DIGEST_WORDS])
{
	SHA256_CTX c = a->salted;

	SHA256_Update(&c, pass, n);
	SHA256_Final((uint8_t *)d, &c);
	OPENSSL_cleanse(&c, sizeof(c)); /* it held the password's last block */
}

/* Constant-time equality of a digest with cache words read atomically. */
static bool digest_eq(const uint64_t *slot, const uint64_t d[DIGEST_WORDS])
{
	uint64_t diff = 0;

	for (int i = 0; i < DIGEST_WORDS; i++)
		diff |= LOAD_RELAXED(&slot[i]) ^ d[i];
	return diff == 0;
}

static void digest_store(uint64_t *slot, const uint64_t d[DIGEST_WORDS])
{
	for (int i = 0; i < DIGEST_WORDS; i++)
		STORE_RELAXED(&slot[i], d[i]);
}

/* 0 when bcrypt(pass) is the user's hash, -ERR_AUTH_PASSWORD when not, or -ERR_NOMEM. */
static int crypt_check(struct nauth *a, const struct nauth_user *u, const char *pass, size_t n)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	char phrase[NAUTH_PASSWORD_MAX + 1];
	const char *h;
	int rc;

	if (cd == NULL)
		return -ERR_NOMEM;
	memcpy(phrase, pass, n);
	phrase[n] = '\0';
	__atomic_fetch_add(&a->crypt_runs, 1, __ATOMIC_RELAXED);
	h = crypt_r(phrase, u->hash, cd);
	/* crypt_r answers a string starting with '*' on failure; no hash starts so. */
	rc = h != NULL && strlen(h) == NAUTH_HASH_MAX &&
	                     CRYPTO_memcmp(h, u->hash, NAUTH_HASH_MAX) == 0
	             ? 0
	             : -ERR_AUTH_PASSWORD;
	OPENSSL_cleanse(phrase, sizeof(phrase));
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	return rc;
}

/*
 * Everything a password check can answer without bcrypt: 0 (the cache
 * says right), a refusal, or NAUTH_NEEDS_CRYPT with *found set and d the
 * password's digest, for the slow half.
 */
static int check_fast(struct nauth *a, const char *user, size_t user_len, const char *pass,
                      size_t pass_len, struct nauth_id *who, struct nauth_user **found,
                      uint64_t d[DIGEST_WORDS])
{
	struct nauth_user *u = user_find(a, user, user_len);
	uint32_t valid;

	if (u == NULL)
		return -ERR_AUTH_USER;
	if (pass_len == 0 || pass_len > NAUTH_PASSWORD_MAX || memchr(pass, '\0', pass_len))
		return -ERR_AUTH_PASSWORD;
	pass_digest(a, pass, pass_len, d);
	valid = LOAD_ACQUIRE(&u->valid);
	if ((valid & PASSED_BIT) && digest_eq(u->passed, d)) {
		id_fill(who, u);
		return 0;
	}
	for (int i = 0; i < NAUTH_REFUSED_SLOTS; i++)
		if ((valid & (1u << i)) && digest_eq(u->refused[i], d))
			return -ERR_AUTH_PASSWORD;
	*found = u;
	return NAUTH_NEEDS_CRYPT;
}

int nauth_check_cached(struct nauth *a, const char *user, size_t user_len, const char *pass,
                       size_t pass_len, struct nauth_id *who)
{
	struct nauth_user *u;
	uint64_t d[DIGEST_WORDS];

	return check_fast(a, user, user_len, pass, pass_len, who, &u, d);
}

int nauth_check_password(struct nauth *a, const char *user, size_t user_len, const char *pass,
                         size_t pass_len, struct nauth_id *who)
{
	struct nauth_user *u = NULL;
	uint64_t d[DIGEST_WORDS];
	int rc = check_fast(a, user, user_len, pass, pass_len, who, &u, d);

	if (rc != NAUTH_NEEDS_CRYPT)
		return rc;
	rc = crypt_check(a, u, pass, pass_len);
	if (rc == 0) {
		digest_store(u->passed, d);
		__atomic_fetch_or(&u->valid, PASSED_BIT, __ATOMIC_RELEASE);
		id_fill(who, u);
	} else if (rc == -ERR_AUTH_PASSWORD) {
		uint32_t slot = __atomic_fetch_add(&u->refused_next, 1, __ATOMIC_RELAXED) %
		                NAUTH_REFUSED_SLOTS;

		digest_store(u->refused[slot], d);
		__atomic_fetch_or(&u->valid, 1u << slot, __ATOMIC_RELEASE);
	}
	return rc;
}

/* ---- tokens ---- */

/* The MAC of a token's first n bytes, bound to the user's current hash. */
static void token_mac(const struct nauth *a, const struct nauth_user *u, const uint8_t *raw,
                      size_t n, uint8_t mac[MAC_BYTES])
{
	uint8_t inner[SHA256_DIGEST_LENGTH];
	SHA256_CTX c = a->mac_inner;

	SHA256_Update(&c, raw, n);
	SHA256_Update(&c, u->hash, NAUTH_HASH_MAX);
	SHA256_Final(inner, &c);
	c = a->mac_outer;
	SHA256_Update(&c, inner, sizeof(inner));
	SHA256_Final(mac, &c);
}

int nauth_issue(struct nauth *a, const char *user, size_t user_len, int64_t now_wall_ms, char *out,
                size_t cap)
{
	const struct nauth_user *u = user_find(a, user, user_len);
	uint8_t raw[TOKEN_RAW_MAX];
	uint64_t expiry;
	size_t n = 0, len;

	if (u == NULL)
		return -ERR_AUTH_USER;
	len = ((2 + u->name_len + 8 + MAC_BYTES) * 8 + 5) / 6;
	if (out == NULL || cap < len + 1)
		return -ERR_INVAL;
	expiry = (uint64_t)(clock_advance(a, now_wall_ms) + a->ttl_ms);
	raw[n++] = NAUTH_TOKEN_VERSION;
	raw[n++] = u->name_len;
	memcpy(raw + n, u->name, u->name_len);
	n += u->name_len;
	for (int i = 7; i >= 0; i--)
		raw[n++] = (uint8_t)(expiry >> (8 * i));
	token_mac(a, u, raw, n, raw + n);
	n += MAC_BYTES;
	if (b64_encode(raw, n, out) != len)
		return -ERR_INVAL; /* unreachable: len is the encoded size of n bytes */
	out[len] = '\0';
	return (int)len;
}

int nauth_verify(struct nauth *a, const char *token, size_t len, int64_t now_wall_ms,
                 struct nauth_id *who)
{
	uint8_t raw[TOKEN_RAW_MAX + 3], mac[MAC_BYTES];
	const struct nauth_user *u;
	uint64_t expiry = 0;
	size_t name_n, head;
	int64_t clock;
	bool loose;
	int n;

	n = b64_decode(token, len, raw, &loose);
	if (n < 0)
		return n;
	if (n < 2)
		return -ERR_AUTH_TOKEN_LENGTH;
	if (raw[0] != NAUTH_TOKEN_VERSION)
		return -ERR_AUTH_TOKEN_VERSION;
	name_n = raw[1];
	head = 2 + name_n + 8;
	if (name_n == 0 || name_n > NAUTH_NAME_MAX || (size_t)n != head + MAC_BYTES)
		return -ERR_AUTH_TOKEN_LENGTH;
	if (loose)
		return -ERR_AUTH_TOKEN_ENCODING;
	u = user_find(a, (const char *)raw + 2, name_n);
	if (u == NULL)
		return -ERR_AUTH_USER;
	token_mac(a, u, raw, head, mac);
	if (CRYPTO_memcmp(mac, raw + head, MAC_BYTES) != 0)
		return -ERR_AUTH_TOKEN_FORGED;
	for (size_t i = 2 + name_n; i < head; i++)
		expiry = expiry << 8 | raw[i];
	clock = clock_advance(a, now_wall_ms);
	if (expiry <= (uint64_t)clock)
		return -ERR_AUTH_TOKEN_EXPIRED;
	if (expiry - (uint64_t)clock > (uint64_t)(a->ttl_ms + a->skew_ms))
		return -ERR_AUTH_TOKEN_FUTURE;
	id_fill(who, u);
	return 0;
}
