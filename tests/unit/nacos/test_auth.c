/*
 * Nacos authentication (nacos/auth.h): the users file, bcrypt checks behind
 * the cache, and tokens. Hashes are made here at bcrypt cost 4 so a check
 * takes about a millisecond.
 */
#include "core/err.h"
#include "nacos/auth.h"

#include <criterion/criterion.h>
#include <crypt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0  1700000000000LL /* a wall time, ms */
#define TTL NAUTH_TTL_MS_DEFAULT

static const char SECRET[] = "a shared cluster secret of some length";

/* A bcrypt hash of pass at cost 4, in a static buffer. */
static const char *hash_of(const char *pass)
{
	static struct crypt_data cd;
	static char out[NAUTH_HASH_MAX + 1];
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];

	cr_assert_not_null(crypt_gensalt_rn("$2b$", 4, NULL, 0, salt, sizeof(salt)));
	memset(&cd, 0, sizeof(cd));
	cr_assert_not_null(crypt_r(pass, salt, &cd));
	cr_assert_eq(strlen(cd.output), NAUTH_HASH_MAX);
	memcpy(out, cd.output, NAUTH_HASH_MAX + 1);
	return out;
}

/* Writes text to a fresh temporary file; returns its path (static buffer per call site). */
static void write_file(char *path, const char *text)
{
	int fd = mkstemp(path);
	FILE *f;

	cr_assert_geq(fd, 0);
	f = fdopen(fd, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static void rewrite_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

/* Standard users: alice (admin, password "right horse"), bob ("battery staple"). */
static char users_text[1024];

static struct nauth *load_standard(void)
{
	struct nauth *a;
	char why[NAUTH_WHY_CAP];
	int n;

	n = snprintf(users_text, sizeof(users_text), "# users of the test\n\nalice:%s:admin\n",
	             hash_of("right horse"));
	snprintf(users_text + n, sizeof(users_text) - (size_t)n, "  bob:%s  \r\n",
	         hash_of("battery staple"));
	cr_assert_eq(nauth_parse(users_text, strlen(users_text), "t", &a, why, sizeof(why)), 0,
	             "%s", why);
	cr_assert_eq(nauth_set_secret(a, SECRET, sizeof(SECRET) - 1), 0);
	return a;
}

static int check(struct nauth *a, const char *user, const char *pass, struct nauth_id *who)
{
	return nauth_check_password(a, user, strlen(user), pass, strlen(pass), who);
}

static int issue(struct nauth *a, const char *user, int64_t now, char *tok)
{
	return nauth_issue(a, user, strlen(user), now, tok, NAUTH_TOKEN_LEN_MAX + 1);
}

static int verify(struct nauth *a, const char *tok, int64_t now, struct nauth_id *who)
{
	return nauth_verify(a, tok, strlen(tok), now, who);
}

/* Test-side base64url, through OpenSSL's standard base64, to alter tokens' bytes. */
static size_t unb64(const char *tok, uint8_t *raw)
{
	char s[256];
	size_t n = strlen(tok), i;
	int len;

	for (i = 0; i < n; i++)
		s[i] = tok[i] == '-' ? '+' : tok[i] == '_' ? '/' : tok[i];
	while (i % 4)
		s[i++] = '=';
	s[i] = '\0';
	len = EVP_DecodeBlock(raw, (const uint8_t *)s, (int)i);
	cr_assert_gt(len, 0);
	return (size_t)len - (n % 4 == 2 ? 2 : n % 4 == 3 ? 1 : 0);
}

static void b64(const uint8_t *raw, size_t n, char *tok)
{
	int len = EVP_EncodeBlock((uint8_t *)tok, raw, (int)n);

	while (len > 0 && tok[len - 1] == '=')
		len--;
	tok[len] = '\0';
	for (int i = 0; i < len; i++)
		tok[i] = tok[i] == '+' ? '-' : tok[i] == '/' ? '_' : tok[i];
}

/* ---- passwords ---- */

Test(nauth, right_password_passes_wrong_and_unknown_are_refused)
{
	struct nauth *a = load_standard();
	struct nauth_id who;

	cr_assert_eq(nauth_user_count(a), 2);
	cr_assert_eq(check(a, "alice", "right horse", &who), 0);
	cr_assert_str_eq(who.name, "alice");
	cr_assert_eq(who.name_len, 5);
	cr_assert(who.admin, "the third field made alice an admin");
	cr_assert_eq(check(a, "bob", "battery staple", &who), 0);
	cr_assert_str_eq(who.name, "bob");
	cr_assert_not(who.admin);
	cr_assert_eq(check(a, "alice", "wrong horse", NULL), -ERR_AUTH_PASSWORD);
	cr_assert_eq(check(a, "alice", "battery staple", NULL), -ERR_AUTH_PASSWORD,
	             "another user's password");
	cr_assert_eq(check(a, "carol", "right horse", NULL), -ERR_AUTH_USER);
	cr_assert_eq(check(a, "Alice", "right horse", NULL), -ERR_AUTH_USER, "names are exact");
	cr_assert_eq(check(a, "alic", "right horse", NULL), -ERR_AUTH_USER);
	cr_assert_eq(check(a, "", "right horse", NULL), -ERR_AUTH_USER);
	cr_assert_eq(check(a, "alice", "", NULL), -ERR_AUTH_PASSWORD);
	/* A NUL inside would let crypt(3) see only "right horse". */
	cr_assert_eq(nauth_check_password(a, "alice", 5, "right horse\0x", 13, NULL),
	             -ERR_AUTH_PASSWORD);
	{
		char big[NAUTH_PASSWORD_MAX + 2];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		cr_assert_eq(check(a, "alice", big, NULL), -ERR_AUTH_PASSWORD);
	}
	nauth_free(a);
}

Test(nauth, cache_spares_bcrypt_and_never_lets_a_wrong_password_through)
{
	struct nauth *a = load_standard();

	cr_assert_eq(nauth_crypt_runs(a), 0, "loading runs no bcrypt");
	cr_assert_eq(check(a, "alice", "right horse", NULL), 0);
	cr_assert_eq(nauth_crypt_runs(a), 1);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(check(a, "alice", "right horse", NULL), 0);
	cr_assert_eq(nauth_crypt_runs(a), 1, "a cached right password costs no bcrypt");

	/* After the right one passed, wrong ones near it are still refused. */
	cr_assert_eq(check(a, "alice", "right horsE", NULL), -ERR_AUTH_PASSWORD);
	cr_assert_eq(check(a, "alice", "right hors", NULL), -ERR_AUTH_PASSWORD);
	cr_assert_eq(check(a, "alice", "right horse ", NULL), -ERR_AUTH_PASSWORD);
	cr_assert_eq(nauth_crypt_runs(a), 4);
	/* The cache is per user: bob with alice's password is bcrypt-checked, and refused. */
	cr_assert_eq(check(a, "bob", "right horse", NULL), -ERR_AUTH_PASSWORD);
	cr_assert_eq(nauth_crypt_runs(a), 5);

	/* A wrong password repeated (a misconfigured client) is refused from the cache. */
	for (int i = 0; i < 100; i++)
		cr_assert_eq(check(a, "alice", "right hors", NULL), -ERR_AUTH_PASSWORD);
	cr_assert_eq(nauth_crypt_runs(a), 5);
	/* And the right one still passes, still from the cache. */
	cr_assert_eq(check(a, "alice", "right horse", NULL), 0);
	cr_assert_eq(nauth_crypt_runs(a), 5);
	nauth_free(a);
}

static int cached(struct nauth *a, const char *user, const char *pass, struct nauth_id *who)
{
	return nauth_check_cached(a, user, strlen(user), pass, strlen(pass), who);
}

Test(nauth, cached_check_never_runs_bcrypt_and_says_when_one_is_needed)
{
	struct nauth *a = load_standard();
	struct nauth_id who;

	/* What the name or the shape tells needs no bcrypt. */
	cr_assert_eq(cached(a, "nobody", "x", NULL), -ERR_AUTH_USER);
	cr_assert_eq(cached(a, "alice", "", NULL), -ERR_AUTH_PASSWORD);
	/* A password not seen since the load: the caller must run the slow check. */
	cr_assert_eq(cached(a, "alice", "right horse", NULL), NAUTH_NEEDS_CRYPT);
	cr_assert_eq(cached(a, "alice", "wrong", NULL), NAUTH_NEEDS_CRYPT);
	cr_assert_eq(nauth_crypt_runs(a), 0, "the cached check never runs bcrypt");
	/* Once the slow check has run, both answers come from the cache. */
	cr_assert_eq(check(a, "alice", "right horse", NULL), 0);
	cr_assert_eq(check(a, "alice", "wrong", NULL), -ERR_AUTH_PASSWORD);
	memset(&who, 0, sizeof(who));
	cr_assert_eq(cached(a, "alice", "right horse", &who), 0);
	cr_assert_str_eq(who.name, "alice");
	cr_assert(who.admin);
	cr_assert_eq(cached(a, "alice", "wrong", NULL), -ERR_AUTH_PASSWORD);
	cr_assert_eq(cached(a, "alice", "wrong too", NULL), NAUTH_NEEDS_CRYPT);
	cr_assert_eq(cached(a, "bob", "right horse", NULL), NAUTH_NEEDS_CRYPT,
	             "the cache is per user");
	cr_assert_eq(nauth_crypt_runs(a), 2);
	nauth_free(a);
}

struct race {
	struct nauth *a;
	int seed;
	int bad;
};

static void *race_thread(void *arg)
{
	struct race *r = arg;
	char wrong[32];

	/* Mostly cache hits, with wrong passwords churning the refused slots. */
	for (int i = 0; i < 2000; i++) {
		if (check(r->a, "alice", "right horse", NULL) != 0)
			r->bad++;
		snprintf(wrong, sizeof(wrong), "wrong %d", (i / 50 + r->seed) % 5);
		if (check(r->a, "alice", wrong, NULL) != -ERR_AUTH_PASSWORD)
			r->bad++;
	}
	return NULL;
}

Test(nauth, cache_under_concurrent_checks_gives_only_right_answers)
{
	struct nauth *a = load_standard();
	struct race r[3] = { { a, 0, 0 }, { a, 5, 0 }, { a, 11, 0 } };
	pthread_t t[3];

	for (int i = 0; i < 3; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, race_thread, &r[i]), 0);
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(r[i].bad, 0, "thread %d got a wrong answer", i);
	}
	nauth_free(a);
}

/* ---- the users file ---- */

Test(nauth, users_file_comments_blanks_crlf_and_admin)
{
	char path[] = "/tmp/nauth-test-XXXXXX", text[512], why[NAUTH_WHY_CAP];
	struct nauth *a;
	struct nauth_id who;

	snprintf(text, sizeof(text),
	         "# comment\n\n   \t\n  # indented comment\r\nops.team-1@x+y:%s:admin\r\nlast:%s",
	         hash_of("one"), "$2y$04$0CkGn2DuWbwBRLn4ezM/Jubeu9GcprO6V/eE5Xjh5zJX57FXRjhym");
	write_file(path, text);
	cr_assert_eq(nauth_load(path, &a, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(nauth_user_count(a), 2);
	cr_assert_eq(check(a, "ops.team-1@x+y", "one", &who), 0);
	cr_assert(who.admin);
	/* A $2y$ hash (htpasswd -B) of "pw"; the last line has no newline. */
	cr_assert_eq(check(a, "last", "pw", &who), 0);
	cr_assert_not(who.admin);
	nauth_free(a);
	unlink(path);
}

Test(nauth, malformed_users_file_names_the_line)
{
	static const char *H = "$2b$04$0CkGn2DuWbwBRLn4ezM/Jubeu9GcprO6V/eE5Xjh5zJX57FXRjhym";
	struct {
		const char *fmt; /* %s is H */
		const char *want;
	} cases[] = {
		{ "a:%s\nno colon here\n", "t:2: expected name:hash" },
		{ "# c\n\nbad name:%s\n", "t:3: user name" },
		{ "a:%s\n:%s\n", "t:2: user name" },
		{ "a:%s\nb:$1$abc$def\n", "t:2: not a bcrypt hash" },
		{ "a:%s\nb:%.59s\n", "t:2: not a bcrypt hash" },
		{ "a:$2b$15$0CkGn2DuWbwBRLn4ezM/Jubeu9GcprO6V/eE5Xjh5zJX57FXRjhym\n",
		  "t:1: bcrypt cost 15 over 14" },
		{ "a:%s:root\n", "t:1: the third field may only be 'admin'" },
		{ "a:%s:admin:x\n", "t:1: the third field may only be 'admin'" },
		{ "a:%s\nb:%s\n\na:%s\n", "t:4: user 'a' repeated (first on line 1)" },
		{ "# only comments\n\n", "t: no users" },
		{ "", "t: no users" },
	};
	char text[4096], why[NAUTH_WHY_CAP];
	struct nauth *a = (struct nauth *)1;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), cases[i].fmt, H, H, H);
		why[0] = '\0';
		cr_assert_eq(nauth_parse(text, strlen(text), "t", &a, why, sizeof(why)),
		             -ERR_AUTH_USERS_FILE, "case %zu", i);
		cr_assert_null(a);
		cr_assert(strstr(why, cases[i].want) != NULL, "case %zu: got '%s', want '%s'", i,
		          why, cases[i].want);
	}

	/* A line over the bound, and more users than the bound. */
	memset(text, '#', NAUTH_LINE_MAX + 1);
	text[NAUTH_LINE_MAX + 1] = '\0';
	cr_assert_eq(nauth_parse(text, strlen(text), "t", &a, why, sizeof(why)),
	             -ERR_AUTH_USERS_FILE);
	cr_assert(strstr(why, "t:1: line over") != NULL, "%s", why);
	{
		size_t cap = (NAUTH_USERS_MAX + 1) * 80, n = 0;
		char *big = malloc(cap);

		size_t at_bound = 0;

		for (int u = 0; u <= NAUTH_USERS_MAX; u++) {
			at_bound = n;
			n += (size_t)snprintf(big + n, cap - n, "u%d:%s\n", u, H);
		}
		cr_assert_eq(nauth_parse(big, n, "t", &a, why, sizeof(why)), -ERR_AUTH_USERS_FILE);
		cr_assert(strstr(why, "t:1025: more than 1024 users") != NULL, "%s", why);
		/* Exactly the bound is fine. */
		cr_assert_eq(nauth_parse(big, at_bound, "t", &a, why, sizeof(why)), 0, "%s", why);
		cr_assert_eq(nauth_user_count(a), NAUTH_USERS_MAX);
		nauth_free(a);
		free(big);
	}
	cr_assert_eq(nauth_load("/nonexistent/users", &a, why, sizeof(why)), -ERR_AUTH_USERS_FILE);
	cr_assert(strstr(why, "/nonexistent/users: cannot open") != NULL, "%s", why);
}

/* ---- tokens ---- */

Test(nauth, token_round_trip)
{
	struct nauth *a = load_standard();
	char tok[NAUTH_TOKEN_LEN_MAX + 1];
	struct nauth_id who;
	int n;

	n = issue(a, "alice", T0, tok);
	cr_assert_gt(n, 0);
	cr_assert_eq((size_t)n, strlen(tok));
	cr_assert_leq(n, NAUTH_TOKEN_LEN_MAX);
	cr_assert_eq(
	        strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
	        (size_t)n, "base64url, no padding: safe in a query string");
	cr_assert_eq(verify(a, tok, T0, &who), 0);
	cr_assert_str_eq(who.name, "alice");
	cr_assert(who.admin);
	cr_assert_eq(verify(a, tok, T0 + TTL - 1, NULL), 0, "good until its last ms");
	cr_assert_gt(issue(a, "bob", T0, tok), 0);
	cr_assert_eq(verify(a, tok, T0, &who), 0);
	cr_assert_str_eq(who.name, "bob");
	cr_assert_not(who.admin);
	cr_assert_eq(issue(a, "carol", T0, tok), -ERR_AUTH_USER);
	cr_assert_eq(nauth_issue(a, "bob", 3, T0, tok, 10), -ERR_INVAL, "cap too small");
	cr_assert_eq(nauth_crypt_runs(a), 0, "tokens never run bcrypt");
	cr_assert_eq(nauth_ttl_ms(a), 18000000);
	nauth_free(a);
}

Test(nauth, token_known_answer)
{
	/*
	 * Pins the token format against an independent HMAC (Python's hmac and
	 * base64 over the same bytes): a change would break clusters of mixed
	 * versions and every token clients hold across an upgrade.
	 */
	static const char users[] =
	        "alice:$2b$04$0CkGn2DuWbwBRLn4ezM/Jubeu9GcprO6V/eE5Xjh5zJX57FXRjhym\n";
	static const char want[] =
	        "AQVhbGljZQAAAYvQ-BCAb3ppysj1mjYNuL_NaZhmA1HhYJ4aCzI8KyQRJNt5vas";
	char tok[NAUTH_TOKEN_LEN_MAX + 1];
	struct nauth *a;

	cr_assert_eq(nauth_parse(users, sizeof(users) - 1, "t", &a, NULL, 0), 0);
	cr_assert_eq(nauth_set_secret(a, SECRET, sizeof(SECRET) - 1), 0);
	cr_assert_eq(issue(a, "alice", T0, tok), (int)sizeof(want) - 1);
	cr_assert_str_eq(tok, want);
	nauth_free(a);
}

Test(nauth, token_mac_is_hmac_sha256_for_the_longest_name)
{
	char name[NAUTH_NAME_MAX + 1], users[256], tok[NAUTH_TOKEN_LEN_MAX + 1];
	uint8_t raw[128], key[32], want[32], msg[128 + NAUTH_HASH_MAX];
	const char *h = hash_of("long");
	unsigned int klen = 0, mlen = 0;
	struct nauth *a;
	struct nauth_id who;
	size_t n;

	memset(name, 'n', NAUTH_NAME_MAX);
	name[NAUTH_NAME_MAX] = '\0';
	snprintf(users, sizeof(users), "%s:%s\n", name, h);
	cr_assert_eq(nauth_parse(users, strlen(users), "t", &a, NULL, 0), 0);
	cr_assert_eq(nauth_set_secret(a, SECRET, sizeof(SECRET) - 1), 0);
	cr_assert_eq(issue(a, name, T0, tok), NAUTH_TOKEN_LEN_MAX, "the longest token");
	cr_assert_eq(verify(a, tok, T0, &who), 0);
	cr_assert_eq(who.name_len, NAUTH_NAME_MAX);
	n = unb64(tok, raw);
	cr_assert_eq(n, 2 + NAUTH_NAME_MAX + 8 + 32);
	/* OpenSSL's own HMAC over the same bytes (the MAC also covers the hash). */
	HMAC(EVP_sha256(), SECRET, sizeof(SECRET) - 1, (const uint8_t *)"distro-nacos-token-v1", 21,
	     key, &klen);
	memcpy(msg, raw, n - 32);
	memcpy(msg + n - 32, h, NAUTH_HASH_MAX);
	HMAC(EVP_sha256(), key, (int)klen, msg, n - 32 + NAUTH_HASH_MAX, want, &mlen);
	cr_assert_eq(mlen, 32);
	cr_assert_eq(memcmp(raw + n - 32, want, 32), 0);
	/* A prefix of the name is another (unknown) user; a longer name is none. */
	cr_assert_eq(nauth_issue(a, name, NAUTH_NAME_MAX - 1, T0, tok, sizeof(tok)),
	             -ERR_AUTH_USER);
	cr_assert_eq(nauth_issue(a, users, NAUTH_NAME_MAX + 1, T0, tok, sizeof(tok)),
	             -ERR_AUTH_USER);
	nauth_free(a);
}

Test(nauth, expired_token_is_refused_and_a_clock_step_back_does_not_revive_it)
{
	struct nauth *a = load_standard();
	char tok[NAUTH_TOKEN_LEN_MAX + 1], late[NAUTH_TOKEN_LEN_MAX + 1];

	cr_assert_gt(issue(a, "bob", T0, tok), 0);
	cr_assert_eq(verify(a, tok, T0 + TTL, NULL), -ERR_AUTH_TOKEN_EXPIRED);
	cr_assert_eq(verify(a, tok, T0 + 10 * TTL, NULL), -ERR_AUTH_TOKEN_EXPIRED);
	/* The wall clock steps back to when the token was young: still expired. */
	cr_assert_eq(verify(a, tok, T0, NULL), -ERR_AUTH_TOKEN_EXPIRED);
	cr_assert_eq(verify(a, tok, T0 - 1000, NULL), -ERR_AUTH_TOKEN_EXPIRED);
	/* A token issued while the clock is behind expires after the high water mark. */
	cr_assert_gt(issue(a, "bob", T0, late), 0);
	cr_assert_eq(verify(a, late, T0, NULL), 0);
	cr_assert_eq(verify(a, late, T0 + 10 * TTL + TTL, NULL), -ERR_AUTH_TOKEN_EXPIRED);
	nauth_free(a);
}

Test(nauth, token_from_a_clock_ahead_is_refused)
{
	struct nauth *a = load_standard(), *b;
	char tok[NAUTH_TOKEN_LEN_MAX + 1];

	/* b has a's users and secret but its clock runs ahead. */
	cr_assert_eq(nauth_parse(users_text, strlen(users_text), "t", &b, NULL, 0), 0);
	cr_assert_eq(nauth_set_secret(b, SECRET, sizeof(SECRET) - 1), 0);
	/* Within the tolerated skew it is accepted... */
	cr_assert_gt(issue(b, "alice", T0 + NAUTH_SKEW_MS_DEFAULT, tok), 0);
	cr_assert_eq(verify(a, tok, T0, NULL), 0);
	/* ...one ms further ahead it is not. */
	cr_assert_gt(issue(b, "alice", T0 + NAUTH_SKEW_MS_DEFAULT + 1, tok), 0);
	cr_assert_eq(verify(a, tok, T0, NULL), -ERR_AUTH_TOKEN_FUTURE);
	/* With no skew tolerated, one ms ahead is too much. */
	cr_assert_eq(nauth_set_times(a, TTL, 0), 0);
	cr_assert_gt(issue(b, "alice", T0 + 2 * NAUTH_SKEW_MS_DEFAULT, tok), 0);
	cr_assert_eq(verify(a, tok, T0 + 2 * NAUTH_SKEW_MS_DEFAULT, NULL), 0);
	cr_assert_gt(issue(b, "alice", T0 + 2 * NAUTH_SKEW_MS_DEFAULT + 1, tok), 0);
	cr_assert_eq(verify(a, tok, T0 + 2 * NAUTH_SKEW_MS_DEFAULT, NULL), -ERR_AUTH_TOKEN_FUTURE);
	nauth_free(a);
	nauth_free(b);
}

Test(nauth, tokens_cross_nodes_only_with_the_same_secret)
{
	static const char other[] = "another secret of some length";
	char tok[NAUTH_TOKEN_LEN_MAX + 1], own[NAUTH_TOKEN_LEN_MAX + 1];
	struct nauth *a, *b;

	/* Two nodes with the same users file and, at first, their random secrets. */
	nauth_free(load_standard()); /* fills users_text */
	cr_assert_eq(nauth_parse(users_text, strlen(users_text), "t", &a, NULL, 0), 0);
	cr_assert_eq(nauth_parse(users_text, strlen(users_text), "t", &b, NULL, 0), 0);
	cr_assert_gt(issue(a, "alice", T0, own), 0);
	cr_assert_eq(verify(a, own, T0, NULL), 0);
	cr_assert_eq(verify(b, own, T0, NULL), -ERR_AUTH_TOKEN_FORGED,
	             "random secrets: a token works only where it was made");
	cr_assert_eq(nauth_set_secret(a, SECRET, sizeof(SECRET) - 1), 0);
	cr_assert_eq(nauth_set_secret(b, SECRET, sizeof(SECRET) - 1), 0);
	cr_assert_gt(issue(a, "alice", T0, tok), 0);
	cr_assert_eq(verify(b, tok, T0, NULL), 0, "a shared secret: any member accepts it");
	cr_assert_eq(verify(a, own, T0, NULL), -ERR_AUTH_TOKEN_FORGED,
	             "tokens of the old key stop verifying");
	cr_assert_eq(nauth_set_secret(b, other, sizeof(other) - 1), 0);
	cr_assert_eq(verify(b, tok, T0, NULL), -ERR_AUTH_TOKEN_FORGED);
	cr_assert_eq(nauth_set_secret(b, "short", 5), -ERR_INVAL);
	cr_assert_eq(nauth_set_times(b, 999, 0), -ERR_INVAL);
	cr_assert_eq(nauth_set_times(b, TTL, -1), -ERR_INVAL);
	cr_assert_eq(nauth_set_times(b, NAUTH_TTL_MS_MAX + 1, 0), -ERR_INVAL);
	nauth_free(a);
	nauth_free(b);
}

Test(nauth, forged_and_altered_tokens_are_refused)
{
	struct nauth *a = load_standard();
	char tok[NAUTH_TOKEN_LEN_MAX + 1], bad[NAUTH_TOKEN_LEN_MAX + 8];
	uint8_t raw[128], alt[128];
	size_t n, len;

	len = (size_t)issue(a, "bob", T0, tok);
	n = unb64(tok, raw);
	cr_assert_eq(n, 2 + 3 + 8 + 32);

	/* Every single-bit flip of every character is refused. */
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(bad, tok, len + 1);
			bad[i] ^= (char)(1 << bit);
			cr_assert_neq(nauth_verify(a, bad, len, T0, NULL), 0, "char %zu bit %d", i,
			              bit);
		}
	}
	/* Every single-bit flip of the bytes, re-encoded: the MAC catches what parses. */
	for (size_t i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit++) {
			int rc;

			memcpy(alt, raw, n);
			alt[i] ^= (uint8_t)(1 << bit);
			b64(alt, n, bad);
			rc = verify(a, bad, T0, NULL);
			if (i >= 5) /* the expiry and the MAC */
				cr_assert_eq(rc, -ERR_AUTH_TOKEN_FORGED, "byte %zu bit %d", i, bit);
			else
				cr_assert_neq(rc, 0, "byte %zu bit %d", i, bit);
		}
	}
	/* A later expiry written in: forged. */
	memcpy(alt, raw, n);
	alt[5 + 3] += 1; /* expiry's top byte: far in the future */
	b64(alt, n, bad);
	cr_assert_eq(verify(a, bad, T0, NULL), -ERR_AUTH_TOKEN_FORGED);
	/* Bob's MAC under alice's name (same length): forged. */
	{
		char alice[NAUTH_TOKEN_LEN_MAX + 1];
		uint8_t ar[128];
		size_t an;

		issue(a, "alice", T0, alice);
		an = unb64(alice, ar);
		memcpy(ar + an - 32, raw + n - 32, 32);
		b64(ar, an, bad);
		cr_assert_eq(verify(a, bad, T0, NULL), -ERR_AUTH_TOKEN_FORGED);
	}
	/* Another version byte. */
	memcpy(alt, raw, n);
	alt[0] = 2;
	b64(alt, n, bad);
	cr_assert_eq(verify(a, bad, T0, NULL), -ERR_AUTH_TOKEN_VERSION);
	/* A name length that disagrees with the size. */
	memcpy(alt, raw, n);
	alt[1] = 4;
	b64(alt, n, bad);
	cr_assert_eq(verify(a, bad, T0, NULL), -ERR_AUTH_TOKEN_LENGTH);
	alt[1] = 0;
	b64(alt, n, bad);
	cr_assert_eq(verify(a, bad, T0, NULL), -ERR_AUTH_TOKEN_LENGTH);
	/* A name nobody has. */
	memcpy(alt, raw, n);
	alt[2] = 'x';
	b64(alt, n, bad);
	cr_assert_eq(verify(a, bad, T0, NULL), -ERR_AUTH_USER);
	cr_assert_eq(verify(a, tok, T0, NULL), 0, "the original still passes");
	nauth_free(a);
}

Test(nauth, truncated_and_garbage_tokens_are_refused)
{
	struct nauth *a = load_standard();
	char tok[NAUTH_TOKEN_LEN_MAX + 1], bad[512];
	size_t len = (size_t)issue(a, "alice", T0, tok);

	/* Every proper prefix is reported as truncated. */
	for (size_t i = 0; i < len; i++)
		cr_assert_eq(nauth_verify(a, tok, i, T0, NULL), -ERR_AUTH_TOKEN_LENGTH,
		             "prefix %zu", i);
	cr_assert_eq(nauth_verify(a, tok, len - 4, T0, NULL), -ERR_AUTH_TOKEN_LENGTH,
	             "three bytes short");
	cr_assert_eq(nauth_verify(a, tok, 0, T0, NULL), -ERR_AUTH_TOKEN_LENGTH);
	/* Longer: extra characters after a good token. */
	snprintf(bad, sizeof(bad), "%sAAAA", tok);
	cr_assert_eq(verify(a, bad, T0, NULL), -ERR_AUTH_TOKEN_LENGTH);
	memset(bad, 'A', 300);
	bad[300] = '\0';
	cr_assert_eq(verify(a, bad, T0, NULL), -ERR_AUTH_TOKEN_LENGTH, "over the bound");
	/* Not base64url: padding, the standard alphabet's + and /, spaces, NUL. */
	snprintf(bad, sizeof(bad), "%s==", tok);
	cr_assert_eq(verify(a, bad, T0, NULL), -ERR_AUTH_TOKEN_ENCODING);
	memcpy(bad, tok, len + 1);
	bad[3] = '+';
	cr_assert_eq(verify(a, bad, T0, NULL), -ERR_AUTH_TOKEN_ENCODING);
	bad[3] = '/';
	cr_assert_eq(verify(a, bad, T0, NULL), -ERR_AUTH_TOKEN_ENCODING);
	bad[3] = ' ';
	cr_assert_eq(verify(a, bad, T0, NULL), -ERR_AUTH_TOKEN_ENCODING);
	bad[3] = '\0';
	cr_assert_eq(nauth_verify(a, bad, len, T0, NULL), -ERR_AUTH_TOKEN_ENCODING);
	cr_assert_eq(verify(a, "!!!!", T0, NULL), -ERR_AUTH_TOKEN_ENCODING);
	cr_assert_eq(verify(a, "Bearer x", T0, NULL), -ERR_AUTH_TOKEN_ENCODING);
	/* Non-zero bits after the last byte: the same bytes, another spelling. */
	memcpy(bad, tok, len + 1);
	cr_assert(len % 4 == 2 || len % 4 == 3);
	bad[len - 1] = bad[len - 1] == 'A' ? 'B' : 'A';
	{
		int rc = verify(a, bad, T0, NULL);

		cr_assert(rc == -ERR_AUTH_TOKEN_ENCODING || rc == -ERR_AUTH_TOKEN_FORGED, "%d", rc);
	}
	nauth_free(a);
}

Test(nauth, reload_drops_removed_users_and_changed_passwords)
{
	char path[] = "/tmp/nauth-test-XXXXXX", text[512], why[NAUTH_WHY_CAP];
	char alice_tok[NAUTH_TOKEN_LEN_MAX + 1], bob_tok[NAUTH_TOKEN_LEN_MAX + 1];
	char carol_tok[NAUTH_TOKEN_LEN_MAX + 1];
	char carol_hash[NAUTH_HASH_MAX + 1];
	struct nauth *a, *b, *c;
	int n;

	n = snprintf(text, sizeof(text), "alice:%s\n", hash_of("a-pass"));
	n += snprintf(text + n, sizeof(text) - (size_t)n, "bob:%s\n", hash_of("b-pass"));
	memcpy(carol_hash, hash_of("c-pass"), sizeof(carol_hash)); /* hash_of's buffer is reused */
	snprintf(text + n, sizeof(text) - (size_t)n, "carol:%s\n", carol_hash);
	write_file(path, text);
	cr_assert_eq(nauth_load(path, &a, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(nauth_set_times(a, 60000, 1000), 0);
	cr_assert_eq(check(a, "bob", "b-pass", NULL), 0);
	cr_assert_gt(issue(a, "alice", T0, alice_tok), 0);
	cr_assert_gt(issue(a, "bob", T0, bob_tok), 0);
	cr_assert_gt(issue(a, "carol", T0 + 5000, carol_tok), 0);

	/* bob removed, alice's password changed, carol unchanged. */
	snprintf(text, sizeof(text), "alice:%s\ncarol:%s\n", hash_of("a-new"), carol_hash);
	rewrite_file(path, text);
	cr_assert_eq(nauth_reload(a, path, &b, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(verify(b, bob_tok, T0, NULL), -ERR_AUTH_USER, "bob is gone");
	cr_assert_eq(verify(b, alice_tok, T0, NULL), -ERR_AUTH_TOKEN_FORGED,
	             "a new password revokes the old tokens");
	cr_assert_eq(verify(b, carol_tok, T0, NULL), 0, "secret and times carried over");
	cr_assert_eq(nauth_ttl_ms(b), 60000);
	/* The high water mark carried over too (T0 + 5000 was seen). */
	cr_assert_eq(verify(b, carol_tok, T0, NULL), 0);
	cr_assert_eq(verify(a, carol_tok, T0 + 65000, NULL), -ERR_AUTH_TOKEN_EXPIRED);
	cr_assert_eq(check(b, "bob", "b-pass", NULL), -ERR_AUTH_USER);
	cr_assert_eq(check(b, "alice", "a-pass", NULL), -ERR_AUTH_PASSWORD);
	cr_assert_eq(check(b, "alice", "a-new", NULL), 0);
	cr_assert_eq(nauth_crypt_runs(b), 2, "the new table's cache started empty");
	nauth_free(a);

	/* A bad reload leaves the caller with the old table, and says where. */
	rewrite_file(path, "alice:nothash\n");
	cr_assert_eq(nauth_reload(b, path, &c, why, sizeof(why)), -ERR_AUTH_USERS_FILE);
	cr_assert(strstr(why, ":1: not a bcrypt hash") != NULL, "%s", why);
	cr_assert_null(c);
	cr_assert_eq(verify(b, carol_tok, T0, NULL), 0);
	nauth_free(b);
	unlink(path);
}

Test(nauth, reload_keeps_the_clock_high_water_mark)
{
	char path[] = "/tmp/nauth-test-XXXXXX", text[256];
	char tok[NAUTH_TOKEN_LEN_MAX + 1];
	struct nauth *a, *b;

	snprintf(text, sizeof(text), "alice:%s\n", hash_of("a-pass"));
	write_file(path, text);
	cr_assert_eq(nauth_load(path, &a, NULL, 0), 0);
	cr_assert_gt(issue(a, "alice", T0, tok), 0);
	cr_assert_eq(verify(a, tok, T0 + TTL, NULL), -ERR_AUTH_TOKEN_EXPIRED);
	cr_assert_eq(nauth_reload(a, path, &b, NULL, 0), 0);
	nauth_free(a);
	cr_assert_eq(verify(b, tok, T0, NULL), -ERR_AUTH_TOKEN_EXPIRED,
	             "a reload does not forget the clock and revive the token");
	nauth_free(b);
	unlink(path);
}
