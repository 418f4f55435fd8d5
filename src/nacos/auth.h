/*
 * auth.h - Nacos-compatible authentication: users, passwords, tokens.
 *
 * The pure core of `--auth` (docs/nacos.md, "Authentication"): no sockets,
 * no logging, no configuration parsing. The HTTP server (and later the
 * native protocol) asks three questions of it: is this user's password
 * right, make a token for this user, is this token good. Every refusal is
 * a distinct -ERR_AUTH_* code (core/err.h) so a log line says why; the
 * caller maps them all to the same answer (HTTP 403), so a client learns
 * nothing from which one it was.
 *
 * Users. A file of `name:hash[:admin]` lines, read once into an immutable
 * table (nauth_load). `#` starts a comment line; blank lines are ignored;
 * leading and trailing blanks (and a CR) are trimmed. The hash is a bcrypt
 * crypt(3) string (`$2a$`, `$2b$` or `$2y$`, 60 characters, as
 * `distroctl hash-password`, `htpasswd -B` and Nacos's own user table make
 * them), checked with libxcrypt's crypt_r. Other crypt methods are refused
 * at load: bcrypt's cost is in the string and bounded here
 * (NAUTH_BCRYPT_COST_MAX), so one check can never block a worker for
 * seconds. The optional third field `admin` makes the user a global admin
 * (the `globalAdmin` of the login answer); nothing else may stand there.
 * Names are 1..NAUTH_NAME_MAX bytes of [A-Za-z0-9._@+-]. A malformed line,
 * a repeated name, more than NAUTH_USERS_MAX users or none at all fail the
 * whole load with a message naming the line: a node never runs with half
 * of its users file.
 *
 * Passwords are slow by design. One bcrypt check costs milliseconds (about
 * 50-120 ms at cost 10 on the development machine), far too much for a worker
 * per request, and the npm client sends username and password on EVERY
 * call instead of logging in. So each user carries a tiny cache: the
 * SHA-256 of (a random salt of this table || the password) of the last
 * password that passed bcrypt, and of the last NAUTH_REFUSED_SLOTS that
 * failed. A repeated right password costs one SHA-256 (~0.15 us), a
 * repeated wrong one (a misconfigured client retrying) too; only a
 * password not seen since the load costs a bcrypt. The cache can never let
 * a wrong password pass: an entry is written only with the digest of a
 * password bcrypt just accepted, and the hash is fixed for the table's
 * life. It holds no password, only salted digests, and dies with the table
 * (a reload makes a fresh, empty one). Callers must still keep the slow
 * path off the hot loop: every new password (a typo, an attacker guessing)
 * costs one full bcrypt. nauth_check_cached is the half a worker may run;
 * the server runs the misses on its auth thread (server/authq.h).
 *
 * Tokens. Opaque strings, unpadded base64url of
 *
 *   version (1 byte, 1) | name length n (1 byte) | name (n bytes) |
 *   expiry (8 bytes, big-endian ms since the epoch) | HMAC-SHA256 (32 bytes)
 *
 * at most NAUTH_TOKEN_LEN_MAX characters. The MAC covers every byte before
 * it and the user's current password hash, so changing a user's password
 * (and reloading) revokes that user's tokens, and removing the user revokes
 * them too (-ERR_AUTH_USER). The MAC key is HMAC-SHA256(secret,
 * "distro-nacos-token-v1"): the secret is random per process by default
 * (tokens then work only on the node that issued them), or set with
 * nauth_set_secret. In a cluster every node must set the same secret so a
 * client may take its token to any member; the server derives it from the
 * cluster (peer) secret when one is configured, and the label above keeps
 * the two uses apart, so passing the peer secret itself is safe.
 *
 * Time. Tokens expire ttl_ms (NAUTH_TTL_MS_DEFAULT, Nacos's tokenTtl of
 * 18000 s) after issue. A clock step cannot extend them: the table keeps
 * the highest wall time any call has passed in and judges expiry by that,
 * so stepping the clock back does not revive an expired token; and a token
 * whose expiry lies more than ttl_ms + skew_ms past that clock is refused
 * (-ERR_AUTH_TOKEN_FUTURE): it came from a node whose clock runs ahead,
 * which would otherwise hand out longer lives. skew_ms is the clock
 * difference tolerated between members (NAUTH_SKEW_MS_DEFAULT). The high
 * water mark lives in memory only and a reload carries it over; a clock
 * that once jumped far ahead is forgotten only by a restart.
 *
 * Threads. Build and configure a table on one thread (nauth_load or
 * nauth_reload, then nauth_set_secret / nauth_set_times), then publish it;
 * after that every call below is safe from any number of threads at once,
 * without locks: the table is immutable but for the clock's high water mark
 * (an atomic max) and the cache entries (words written and read atomically;
 * a torn read mixes the digests of two passwords, which matches neither,
 * so it costs a bcrypt, never a wrong answer). Replace a table by loading
 * a new one with nauth_reload and swapping the pointer; free the old one
 * only when no thread can still be using it (the server's epochs).
 *
 * Costs per call, once published, measured at -O2 on the development
 * machine: nauth_verify ~0.5 us (base64 decode, a binary search of the
 * users, one HMAC from precomputed keyed states), nauth_issue the same,
 * nauth_check_password ~0.15 us on a cache hit (one SHA-256), one bcrypt
 * on a miss. None of them allocates, locks or makes a system call except
 * a cache miss (crypt_r's 32 KiB work area is allocated for it).
 */
#ifndef DISTRO_NACOS_AUTH_H
#define DISTRO_NACOS_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NAUTH_USERS_MAX       1024
#define NAUTH_NAME_MAX        64         /* bytes of a user name */
#define NAUTH_HASH_MAX        60         /* a bcrypt string is exactly this long */
#define NAUTH_PASSWORD_MAX    128        /* longer passwords are refused unchecked */
#define NAUTH_LINE_MAX        512        /* bytes of one users file line, comments included */
#define NAUTH_FILE_MAX        (1u << 20) /* bytes of a users file */
#define NAUTH_BCRYPT_COST_MAX 14         /* 2^14 rounds: about a second per check */
#define NAUTH_REFUSED_SLOTS   2          /* refused password digests remembered per user */
#define NAUTH_SECRET_MIN      16         /* bytes of a configured token secret */
#define NAUTH_TTL_MS_DEFAULT  18000000LL /* Nacos's tokenTtl, 18000 s */
#define NAUTH_TTL_MS_MIN      1000LL
#define NAUTH_TTL_MS_MAX      (7LL * 24 * 3600 * 1000)
#define NAUTH_SKEW_MS_DEFAULT 60000LL /* as the store's version_skew_ms */
#define NAUTH_SKEW_MS_MAX     3600000LL
#define NAUTH_TOKEN_VERSION   1
/* Characters of the longest token: base64url of 2 + NAUTH_NAME_MAX + 8 + 32 bytes. */
#define NAUTH_TOKEN_LEN_MAX (((2 + NAUTH_NAME_MAX + 8 + 32) * 4 + 2) / 3)
#define NAUTH_WHY_CAP       192 /* a buffer this big holds every load message whole */

/* The users, the token key, the clock's high water mark and the password cache. */
struct nauth;

/* Who a password or a token proved to be; a copy, valid after the table is gone. */
struct nauth_id {
	char name[NAUTH_NAME_MAX + 1]; /* NUL-terminated */
	uint32_t name_len;
	bool admin; /* the line said `admin`: Nacos's globalAdmin */
};

/*
 * Builds a table from the text of a users file (len bytes, need not be
 * NUL-terminated), with a random token secret and the default times.
 * origin names the text in messages (a path). On success *out owns the
 * table (free with nauth_free). On failure -ERR_AUTH_USERS_FILE (why says
 * "origin:LINE: what", truncated to why_cap) or -ERR_NOMEM; *out is NULL.
 * why may be NULL. Cost: one pass over the text; no bcrypt runs.
 */
int nauth_parse(const char *text, size_t len, const char *origin, struct nauth **out, char *why,
                size_t why_cap);

/* nauth_parse of the file at path (at most NAUTH_FILE_MAX bytes). */
int nauth_load(const char *path, struct nauth **out, char *why, size_t why_cap);

/*
 * Loads path into a new table that keeps old's token secret, times and
 * clock high water mark, so tokens stay valid across the reload unless
 * their user is gone or has a new password. The new table's password
 * cache starts empty. old is only read and may be in use on other threads;
 * the caller swaps its pointer to *out and frees old when nobody uses it.
 * On failure old stays as it was (keep serving with it) and *out is NULL.
 */
int nauth_reload(const struct nauth *old, const char *path, struct nauth **out, char *why,
                 size_t why_cap);

/* Frees a table and everything it holds. NULL is ignored. */
void nauth_free(struct nauth *a);

/*
 * Keys tokens with a secret every member of a cluster shares (at least
 * NAUTH_SECRET_MIN bytes; the cluster secret itself is fine, see above).
 * Tokens made under the previous key stop verifying. Not thread-safe:
 * before the table is published. 0, or -ERR_INVAL (short) / -ERR_NOMEM.
 */
int nauth_set_secret(struct nauth *a, const void *secret, size_t len);

/*
 * Token lifetime (NAUTH_TTL_MS_MIN..NAUTH_TTL_MS_MAX) and the clock skew
 * tolerated between members (0..NAUTH_SKEW_MS_MAX). Not thread-safe:
 * before the table is published. 0 or -ERR_INVAL.
 */
int nauth_set_times(struct nauth *a, int64_t ttl_ms, int64_t skew_ms);

/* The token lifetime: the login answer's tokenTtl is this / 1000. */
int64_t nauth_ttl_ms(const struct nauth *a);

/* Users in the table. */
uint32_t nauth_user_count(const struct nauth *a);

/* bcrypt checks run so far (cache misses): for tests and /metrics. */
uint64_t nauth_crypt_runs(const struct nauth *a);

/*
 * Checks a user's password (both as bytes with lengths, as decoded from a
 * request; they need no NUL). 0 and *who filled (who may be NULL) when
 * right; -ERR_AUTH_USER when no such user (or a bad name), -ERR_AUTH_PASSWORD
 * when wrong, empty, longer than NAUTH_PASSWORD_MAX or holding a NUL byte;
 * -ERR_NOMEM. Cost: one SHA-256 when the password is in the user's cache,
 * else one bcrypt (milliseconds; see above) and a 32 KiB allocation.
 */
int nauth_check_password(struct nauth *a, const char *user, size_t user_len, const char *pass,
                         size_t pass_len, struct nauth_id *who);

/* nauth_check_cached's answer when only a bcrypt can tell (a positive value: not an error). */
#define NAUTH_NEEDS_CRYPT 1

/*
 * nauth_check_password without the slow half, for a thread that must not
 * block (a worker): 0 and *who filled when the user's cache knows the
 * password as right; the refusals of nauth_check_password when the name,
 * the password's shape or the cache already tell; else NAUTH_NEEDS_CRYPT,
 * and the caller hands the same check to a thread that may take
 * milliseconds (nauth_check_password there runs the bcrypt and fills the
 * cache, so the next nauth_check_cached of that password answers at once).
 * Cost: one SHA-256; never allocates, locks or makes a system call.
 */
int nauth_check_cached(struct nauth *a, const char *user, size_t user_len, const char *pass,
                       size_t pass_len, struct nauth_id *who);

/*
 * Makes a token for a user of the table, expiring ttl_ms after now_wall_ms
 * (after the high water mark if the clock stepped back). Writes it with a
 * NUL to out (cap bytes; NAUTH_TOKEN_LEN_MAX + 1 always suffice) and
 * returns its length, or -ERR_AUTH_USER (unknown) / -ERR_INVAL (cap too
 * small). Check the password first: this only signs.
 */
int nauth_issue(struct nauth *a, const char *user, size_t user_len, int64_t now_wall_ms, char *out,
                size_t cap);

/*
 * Checks a token of len bytes at wall time now_wall_ms. 0 and *who filled
 * (who may be NULL; admin as the users file says now, not at issue) when
 * good. Refusals, in the order they are checked:
 *   -ERR_AUTH_TOKEN_ENCODING  a character outside base64url (padding included)
 *   -ERR_AUTH_TOKEN_LENGTH    empty, truncated, too long, or a bad name length
 *   -ERR_AUTH_TOKEN_VERSION   a version this build does not make
 *   -ERR_AUTH_TOKEN_ENCODING  bits set after the last byte (another spelling)
 *   -ERR_AUTH_USER            the user is not (or no longer) in the table
 *   -ERR_AUTH_TOKEN_FORGED    the MAC does not verify: forged, altered, made
 *                             with another secret, or before the user's
 *                             password changed
 *   -ERR_AUTH_TOKEN_EXPIRED   expiry at or before the high water mark
 *   -ERR_AUTH_TOKEN_FUTURE    expiry beyond the mark + ttl_ms + skew_ms
 * Cost: see above; no bcrypt.
 */
int nauth_verify(struct nauth *a, const char *token, size_t len, int64_t now_wall_ms,
                 struct nauth_id *who);

#endif
