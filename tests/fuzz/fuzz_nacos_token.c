/*
 * libFuzzer target for the Nacos token decoder (nacos/auth.h nauth_verify)
 * and, on the same bytes, the users file parser (nauth_parse). Checks:
 *
 *  - verify answers 0 or one of its documented refusals, never anything
 *    else, never reads past the input, and accepts only a known user
 *    (finding a valid MAC by mutation would be a break of HMAC-SHA256,
 *    so 0 here is a bug in the decoder);
 *  - a token made by nauth_issue verifies, and changing any one of its
 *    characters (position and byte from the input) makes it refused: each
 *    token has exactly one spelling;
 *  - the parser answers 0 with 1..NAUTH_USERS_MAX users, or
 *    -ERR_AUTH_USERS_FILE with a message; nothing leaks either way.
 *
 * The table's clock stays at T0 (every call passes T0), so verdicts do not
 * depend on the order inputs arrive in.
 */
#include "core/err.h"
#include "nacos/auth.h"

#include <stdlib.h>
#include <string.h>

#define T0 1700000000000LL

static const char USERS[] = "alice:$2b$04$0CkGn2DuWbwBRLn4ezM/Jubeu9GcprO6V/eE5Xjh5zJX57FXRjhym\n"
                            "bob:$2b$04$7ePgu2SnOhrRrNRopybEmehhDsI/lABoKy30HGEY92y0xCDCUo61.\n";
static const char SECRET[] = "the fuzz target's token secret";

static struct nauth *table(void)
{
	static struct nauth *a;

	if (a == NULL) {
		if (nauth_parse(USERS, sizeof(USERS) - 1, "fuzz", &a, NULL, 0) < 0 ||
		    nauth_set_secret(a, SECRET, sizeof(SECRET) - 1) < 0)
			abort();
	}
	return a;
}

static bool refusal(int rc)
{
	switch (-rc) {
	case ERR_AUTH_TOKEN_ENCODING:
	case ERR_AUTH_TOKEN_LENGTH:
	case ERR_AUTH_TOKEN_VERSION:
	case ERR_AUTH_USER:
	case ERR_AUTH_TOKEN_FORGED:
	case ERR_AUTH_TOKEN_EXPIRED:
	case ERR_AUTH_TOKEN_FUTURE:
		return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nauth *a = table(), *p = NULL;
	char tok[NAUTH_TOKEN_LEN_MAX + 1], why[NAUTH_WHY_CAP];
	struct nauth_id who;
	int rc, len;

	/* A copy of exactly size bytes, so ASan sees any read past the input. */
	char *copy = malloc(size ? size : 1);

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	rc = nauth_verify(a, copy, size, T0, &who);
	if (rc == 0) {
		if (strcmp(who.name, "alice") != 0 && strcmp(who.name, "bob") != 0)
			abort();
	} else if (!refusal(rc)) {
		abort();
	}

	if (size >= 2) {
		const char *user = data[0] & 1 ? "alice" : "bob";

		len = nauth_issue(a, user, strlen(user), T0, tok, sizeof(tok));
		if (len <= 0 || nauth_verify(a, tok, (size_t)len, T0, NULL) != 0)
			abort();
		size_t pos = data[1] % (size_t)len;
		char c = size >= 3 ? (char)data[2] : 'A';

		if (tok[pos] != c) {
			tok[pos] = c;
			rc = nauth_verify(a, tok, (size_t)len, T0, NULL);
			if (rc == 0 || !refusal(rc))
				abort();
		}
	}

	why[0] = '\0';
	rc = nauth_parse(copy, size, "fuzz", &p, why, sizeof(why));
	if (rc == 0) {
		if (p == NULL || nauth_user_count(p) == 0 || nauth_user_count(p) > NAUTH_USERS_MAX)
			abort();
		nauth_free(p);
	} else if (rc != -ERR_AUTH_USERS_FILE || p != NULL || why[0] == '\0') {
		abort();
	}
	free(copy);
	return 0;
}
