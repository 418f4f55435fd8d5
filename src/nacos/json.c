/*
 * json.c - JSON for the Nacos API: an escaping writer over struct buf and
 * a non-allocating reader over jsmn.
 *
 * Why jsmn (docs/nacos.md): it tokenizes into the caller's fixed array of
 * tokens, so decoding a beat allocates nothing and its cost is bounded by
 * JSON_TOKENS_MAX. Its weakness is validation: even with JSMN_STRICT it
 * takes `{"a":1 "b":2}`, `[1,,2]`, `{"a":}`, `tru`, `01`, raw control
 * characters in strings and stops quietly at a NUL byte. So json_parse
 * first runs check(), a strict RFC 8259 recogniser (an explicit state
 * machine with a bit stack, no recursion, depth bounded by
 * JSON_TOKENS_MAX), and hands jsmn only text that check() accepted. jsmn
 * then only has to find token boundaries, which it does right on valid
 * JSON. jsmn cannot take a bare number or literal at the top level (it
 * wants a delimiter after a primitive): json_parse makes that one token
 * itself.
 *
 * Strings are unescaped one unit at a time (str_unit), the same code for
 * copying out (json_str) and for comparing keys in place (key_eq), so
 * lookups never need a buffer and "\u0069p" is the key "ip" everywhere.
 *
 * The writer computes the exact escaped length first (esc with no output)
 * and reserves it once: all or nothing, and never a reservation of 6x the
 * input that could fail a bound the real text fits in.
 *
 * The Nacos documents built on this reader are nacos/jsondoc.c.
 */
#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

#include "nacos/json.h"

#include "core/err.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Writing ---- */

/* Length of the valid UTF-8 sequence at s[0, n), or 0 when s[0] does not start one. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
	uint8_t c = s[0];
	uint8_t lo = 0x80, hi = 0xbf; /* range of the second byte */
	size_t need;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		if (c == 0xe0)
			lo = 0xa0; /* no overlong forms */
		else if (c == 0xed)
			hi = 0x9f; /* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f; /* nothing above U+10FFFF */
	} else
		return 0;
	if (n < need || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return need;
}

static const char hexdig[] = "0123456789abcdef";

/*
 * Escapes s[0, len) (without quotes) into out, or only counts when out is
 * NULL. Returns the escaped length.
 */
static size_t esc(const uint8_t *s, size_t len, uint8_t *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len;) {
		uint8_t c = s[i];
		const char *e = NULL;
		char u[7];
		size_t n;

		if (c >= 0x80) {
			n = utf8_seq(s + i, len - i);
			if (n == 3 && c == 0xe2 && s[i + 1] == 0x80 &&
			    (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
				e = s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029";
				n = 6;
				i += 3;
			} else if (n == 0) {
				e = "\xef\xbf\xbd"; /* U+FFFD for one stray byte */
				n = 3;
				i++;
			} else {
				if (out)
					memcpy(out + o, s + i, n);
				o += n;
				i += n;
				continue;
			}
		} else {
			i++;
			switch (c) {
			case '"':
				e = "\\\"";
				break;
			case '\\':
				e = "\\\\";
				break;
			case '\b':
				e = "\\b";
				break;
			case '\f':
				e = "\\f";
				break;
			case '\n':
				e = "\\n";
				break;
			case '\r':
				e = "\\r";
				break;
			case '\t':
				e = "\\t";
				break;
			default:
				if (c < 0x20 || c == 0x7f || c == '<' || c == '>' || c == '&' ||
				    c == '\'') {
					u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0';
					u[4] = hexdig[c >> 4], u[5] = hexdig[c & 15], u[6] = 0;
					e = u;
				}
			}
			if (e == NULL) {
				if (out)
					out[o] = c;
				o++;
				continue;
			}
			n = strlen(e);
		}
		if (out)
			memcpy(out + o, e, n);
		o += n;
	}
	return o;
}

bool json_put_str(struct buf *b, const char *s, size_t len, size_t max)
{
	size_t n = esc((const uint8_t *)s, len, NULL);

	if (n > SIZE_MAX - 2 || !buf_reserve(b, n + 2, max))
		return false;
	b->p[b->len] = '"';
	esc((const uint8_t *)s, len, b->p + b->len + 1);
	b->p[b->len + 1 + n] = '"';
	b->len += n + 2;
	return true;
}

bool json_put_raw(struct buf *b, const char *s, size_t len, size_t max)
{
	return buf_append(b, s, len, max);
}

bool json_put_u64(struct buf *b, uint64_t v, size_t max)
{
	char t[24];
	int n = snprintf(t, sizeof(t), "%llu", (unsigned long long)v);

	return buf_append(b, t, (size_t)n, max);
}

bool json_put_i64(struct buf *b, int64_t v, size_t max)
{
	char t[24];
	int n = snprintf(t, sizeof(t), "%lld", (long long)v);

	return buf_append(b, t, (size_t)n, max);
}

bool json_put_double(struct buf *b, double v, size_t max)
{
	char t[40];
	int n;

	if (!isfinite(v))
		return buf_append(b, "null", 4, max);
	if (v == trunc(v) && fabs(v) < 1e15) {
		n = snprintf(t, sizeof(t), "%.1f", v);
	} else {
		for (int prec = 15;; prec++) {
			n = snprintf(t, sizeof(t), "%.*g", prec, v);
			if (prec == 17 || strtod(t, NULL) == v)
				break;
		}
	}
	return buf_append(b, t, (size_t)n, max);
}

bool json_put_bool(struct buf *b, bool v, size_t max)
{
	return v ? buf_append(b, "true", 4, max) : buf_append(b, "false", 5, max);
}

bool json_put_meta(struct buf *b, const struct store_kv *kv, uint32_t n, size_t max)
{
	size_t used0 = buf_used(b);

	if (!buf_append(b, "{", 1, max))
		return false;
	for (uint32_t i = 0; i < n; i++) {
		if ((i > 0 && !buf_append(b, ",", 1, max)) ||
		    !json_put_str(b, kv[i].key.p, kv[i].key.len, max) ||
		    !buf_append(b, ":", 1, max) ||
		    !json_put_str(b, kv[i].val.p, kv[i].val.len, max))
			goto err;
	}
	if (buf_append(b, "}", 1, max))
		return true;
err:
	/* Reserves may move the unconsumed bytes to the front, never drop them. */
	b->len = b->off + used0;
	return false;
}

/* ---- Syntax check ---- */

static size_t skip_ws(const char *s, size_t i, size_t len)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The index after the string opening at s[i] == '"', or 0 when it is not valid. */
static size_t scan_string(const char *s, size_t i, size_t len)
{
	for (i++; i < len;) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"')
			return i + 1;
		if (c < 0x20)
			return 0;
		if (c != '\\') {
			i++;
			continue;
		}
		if (len - i < 2)
			return 0;
		switch (s[i + 1]) {
		case '"':
		case '\\':
		case '/':
		case 'b':
		case 'f':
		case 'n':
		case 'r':
		case 't':
			i += 2;
			break;
		case 'u':
			if (len - i < 6 || !is_hex(s[i + 2]) || !is_hex(s[i + 3]) ||
			    !is_hex(s[i + 4]) || !is_hex(s[i + 5]))
				return 0;
			i += 6;
			break;
		default:
			return 0;
		}
	}
	return 0;
}

static size_t scan_digits(const char *s, size_t i, size_t len)
{
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	return i;
}

/* The index after the number starting at s[i], or 0 when it is not valid. */
static size_t scan_number(const char *s, size_t i, size_t len)
{
	size_t j;

	if (i < len && s[i] == '-')
		i++;
	if (i >= len)
		return 0;
	if (s[i] == '0')
		i++;
	else if (s[i] >= '1' && s[i] <= '9')
		i = scan_digits(s, i, len);
	else
		return 0;
	if (i < len && s[i] == '.') {
		j = scan_digits(s, i + 1, len);
		if (j == i + 1)
			return 0;
		i = j;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		j = scan_digits(s, i, len);
		if (j == i)
			return 0;
		i = j;
	}
	return i;
}

static size_t scan_word(const char *s, size_t i, size_t len, const char *w)
{
	size_t n = strlen(w);

	return len - i >= n && memcmp(s + i, w, n) == 0 ? i + n : 0;
}

enum expect {
	X_VALUE,          /* a value */
	X_VALUE_OR_CLOSE, /* after '[' */
	X_KEY,            /* after ',' in an object */
	X_KEY_OR_CLOSE,   /* after '{' */
	X_AFTER,          /* after a value: ',' or a closing bracket (or the end) */
};

/*
 * Whether s[0, len) is exactly one JSON value with white space around it:
 * 0 and the value's extent [*vs, *ve), -ERR_INVAL, or -ERR_TOO_BIG when
 * nesting is deeper than JSON_TOKENS_MAX.
 */
static int check(const char *s, size_t len, size_t *vs, size_t *ve)
{
	uint64_t obj[JSON_TOKENS_MAX / 64] = {
		0
	}; /* bit d: the container at depth d is an object */
	enum expect x = X_VALUE;
	unsigned depth = 0;
	size_t i = skip_ws(s, 0, len), j;

	*vs = i;
	while ((i = skip_ws(s, i, len)) < len) {
		char c = s[i];

		switch (x) {
		case X_VALUE_OR_CLOSE:
			if (c == ']') {
				depth--;
				i++;
				x = X_AFTER;
				break;
			}
			/* fall through */
		case X_VALUE:
			if (c == '{' || c == '[') {
				if (depth >= JSON_TOKENS_MAX)
					return -ERR_TOO_BIG;
				if (c == '{')
					obj[depth / 64] |= 1ull << (depth % 64);
				else
					obj[depth / 64] &= ~(1ull << (depth % 64));
				depth++;
				i++;
				x = c == '{' ? X_KEY_OR_CLOSE : X_VALUE_OR_CLOSE;
				continue;
			}
			if (c == '"')
				j = scan_string(s, i, len);
			else if (c == '-' || (c >= '0' && c <= '9'))
				j = scan_number(s, i, len);
			else if (c == 't')
				j = scan_word(s, i, len, "true");
			else if (c == 'f')
				j = scan_word(s, i, len, "false");
			else if (c == 'n')
				j = scan_word(s, i, len, "null");
			else
				j = 0;
			if (j == 0)
				return -ERR_INVAL;
			i = j;
			x = X_AFTER;
			break;
		case X_KEY_OR_CLOSE:
			if (c == '}') {
				depth--;
				i++;
				x = X_AFTER;
				break;
			}
			/* fall through */
		case X_KEY:
			if (c != '"' || (j = scan_string(s, i, len)) == 0)
				return -ERR_INVAL;
			i = skip_ws(s, j, len);
			if (i >= len || s[i] != ':')
				return -ERR_INVAL;
			i++;
			x = X_VALUE;
			continue;
		case X_AFTER: {
			bool in_obj;

			if (depth == 0)
				return -ERR_INVAL; /* bytes after the value */
			in_obj = obj[(depth - 1) / 64] >> ((depth - 1) % 64) & 1;
			if (c == ',') {
				x = in_obj ? X_KEY : X_VALUE;
				i++;
				continue;
			}
			if (c != (in_obj ? '}' : ']'))
				return -ERR_INVAL;
			depth--;
			i++;
			break;
		}
		}
		if (depth == 0)
			*ve = i; /* the top-level value ends here */
	}
	return x == X_AFTER && depth == 0 ? 0 : -ERR_INVAL;
}

/* ---- Reading ---- */

int json_parse(struct json_doc *d, const char *s, size_t len, void *toks, unsigned max_toks)
{
	jsmntok_t *t = toks;
	jsmn_parser p;
	size_t vs = 0, ve = 0; /* set by check(); gcc -O1 with TSan cannot see it */
	int rc;

	d->s = s;
	d->t = t;
	d->n = 0;
	if (len > INT_MAX)
		return -ERR_TOO_BIG;
	rc = check(s, len, &vs, &ve);
	if (rc < 0)
		return rc;
	if (max_toks == 0)
		return -ERR_TOO_BIG;
	if (s[vs] != '{' && s[vs] != '[' && s[vs] != '"') {
		/* A bare number or literal: jsmn wants a delimiter after it. */
		t[0].type = JSMN_PRIMITIVE;
		t[0].start = (int)vs;
		t[0].end = (int)ve;
		t[0].size = 0;
		d->n = 1;
		return 0;
	}
	jsmn_init(&p);
	rc = jsmn_parse(&p, s, ve, t, max_toks);
	if (rc == JSMN_ERROR_NOMEM)
		return -ERR_TOO_BIG;
	if (rc <= 0)
		return -ERR_INVAL; /* not after check(); kept so a jsmn change cannot pass */
	d->n = (int)p.toknext;
	return 0;
}

int json_next(const struct json_doc *d, int tok)
{
	int j = tok + 1;

	if (tok < 0 || tok >= d->n)
		return d->n;
	while (j < d->n && d->t[j].start < d->t[tok].end)
		j++;
	return j;
}

static unsigned hex4(const char *s)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];

		v = v << 4 | (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

static size_t put_utf8(uint32_t cp, char u[4])
{
	if (cp < 0x80) {
		u[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	u[0] = (char)(0xf0 | cp >> 18);
	u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	u[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static bool is_u_escape(const char *s, size_t i, size_t end)
{
	return end - i >= 6 && s[i] == '\\' && s[i + 1] == 'u' && is_hex(s[i + 2]) &&
	       is_hex(s[i + 3]) && is_hex(s[i + 4]) && is_hex(s[i + 5]);
}

/*
 * The next unit of the string body s[*i, end) unescaped into u (1..4
 * bytes), advancing *i. A malformed escape (only in text check() did not
 * see) comes out as its bytes, one at a time: never a read past end.
 */
static size_t str_unit(const char *s, size_t *i, size_t end, char u[4])
{
	size_t k = *i;
	uint32_t cp;

	if (s[k] != '\\' || end - k < 2) {
		u[0] = s[k];
		*i = k + 1;
		return 1;
	}
	switch (s[k + 1]) {
	case '"':
	case '\\':
	case '/':
		u[0] = s[k + 1];
		break;
	case 'b':
		u[0] = '\b';
		break;
	case 'f':
		u[0] = '\f';
		break;
	case 'n':
		u[0] = '\n';
		break;
	case 'r':
		u[0] = '\r';
		break;
	case 't':
		u[0] = '\t';
		break;
	case 'u':
		if (!is_u_escape(s, k, end))
			goto raw;
		cp = hex4(s + k + 2);
		*i = k + 6;
		if (cp >= 0xd800 && cp <= 0xdbff && is_u_escape(s, k + 6, end)) {
			uint32_t lo = hex4(s + k + 8);

			if (lo >= 0xdc00 && lo <= 0xdfff) {
				*i = k + 12;
				return put_utf8(0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00), u);
			}
		}
		if (cp >= 0xd800 && cp <= 0xdfff)
			cp = 0xfffd; /* a lone surrogate */
		return put_utf8(cp, u);
	default:
		goto raw;
	}
	*i = k + 2;
	return 1;
raw:
	u[0] = s[k];
	*i = k + 1;
	return 1;
}

int json_str(const struct json_doc *d, int tok, char *out, size_t cap)
{
	const jsmntok_t *t;
	size_t i, end, o = 0;

	if (tok < 0 || tok >= d->n)
		return -ERR_INVAL;
	t = &d->t[tok];
	if (t->type != JSMN_STRING && t->type != JSMN_PRIMITIVE)
		return -ERR_INVAL;
	i = (size_t)t->start;
	end = (size_t)t->end;
	if (t->type == JSMN_PRIMITIVE) {
		if (end - i > cap)
			return -ERR_TOO_BIG;
		memcpy(out, d->s + i, end - i);
		return (int)(end - i);
	}
	while (i < end) {
		char u[4];
		size_t n = str_unit(d->s, &i, end, u);

		if (n > cap - o)
			return -ERR_TOO_BIG;
		memcpy(out + o, u, n);
		o += n;
	}
	return (int)o;
}

/* Whether string token tok, unescaped, is key[0, klen). No copy. */
bool json_key_eq(const struct json_doc *d, int tok, const char *key, size_t klen)
{
	const jsmntok_t *t = &d->t[tok];
	size_t i = (size_t)t->start, end = (size_t)t->end, o = 0;

	if (t->type != JSMN_STRING)
		return false;
	while (i < end) {
		char u[4];
		size_t n = str_unit(d->s, &i, end, u);

		if (n > klen - o || memcmp(key + o, u, n) != 0)
			return false;
		o += n;
	}
	return o == klen;
}

int json_obj_get(const struct json_doc *d, int obj, const char *key)
{
	size_t klen = strlen(key);
	int found = -1, i;

	if (obj < 0 || obj >= d->n || d->t[obj].type != JSMN_OBJECT)
		return -1;
	i = obj + 1;
	for (int k = 0; k < d->t[obj].size && i + 1 < d->n; k++) {
		if (json_key_eq(d, i, key, klen))
			found = i + 1;
		i = json_next(d, i + 1);
	}
	return found;
}

bool json_is_null(const struct json_doc *d, int tok)
{
	const jsmntok_t *t = &d->t[tok];

	return t->type == JSMN_PRIMITIVE && d->s[t->start] == 'n';
}

/* The numeric text of tok (a number, or a string) in a NUL-terminated copy. */
static int num_text(const struct json_doc *d, int tok, char *copy, size_t cap)
{
	const jsmntok_t *t = &d->t[tok];
	int n;

	if (t->type == JSMN_PRIMITIVE) {
		char c = d->s[t->start];

		if (c != '-' && (c < '0' || c > '9'))
			return -ERR_INVAL; /* true, false, null */
	} else if (t->type != JSMN_STRING)
		return -ERR_INVAL;
	n = json_str(d, tok, copy, cap - 1);
	if (n <= 0)
		return -ERR_INVAL;
	copy[n] = 0;
	return n;
}

int json_int(const struct json_doc *d, int tok, int64_t lo, int64_t hi, int64_t *out)
{
	char copy[24], *end;
	long long v;
	int n, i;

	if (tok < 0 || tok >= d->n)
		return -ERR_INVAL;
	n = num_text(d, tok, copy, sizeof(copy));
	if (n < 0)
		return n;
	/* Only -?[0-9]+: strtoll alone would take spaces, '+' and "0x". */
	for (i = copy[0] == '-' ? 1 : 0; i < n; i++)
		if (copy[i] < '0' || copy[i] > '9')
			return -ERR_INVAL;
	if (n == (copy[0] == '-' ? 1 : 0))
		return -ERR_INVAL;
	errno = 0;
	v = strtoll(copy, &end, 10);
	if (errno == ERANGE || v < lo || v > hi)
		return -ERR_INVAL;
	*out = v;
	return 0;
}

int json_double(const struct json_doc *d, int tok, double *out)
{
	char copy[64], *end;
	double v;
	int n;

	if (tok < 0 || tok >= d->n)
		return -ERR_INVAL;
	n = num_text(d, tok, copy, sizeof(copy));
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		char c = copy[i];

		if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' ||
		      c == 'E'))
			return -ERR_INVAL; /* keeps strtod away from hex, inf and nan */
	}
	v = strtod(copy, &end);
	if (end != copy + n || !isfinite(v))
		return -ERR_INVAL;
	*out = v;
	return 0;
}
