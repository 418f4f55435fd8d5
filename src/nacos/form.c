/*
 * form.c - Nacos request parameters from query strings and form bodies.
 *
 * The grammar is the one Tomcat (under Nacos) applies to both sources:
 * pieces separated by '&', each `name` or `name=value` split at the first
 * '=', both halves percent-decoded with '+' as a space. We differ from
 * Tomcat in one place on purpose: a malformed escape refuses the request
 * (-ERR_INVAL, a 400 the user can read) instead of silently dropping the
 * parameter, which in Nacos turns a typo into a default value.
 *
 * Ownership and bounds: the struct form and its scratch belong to the
 * caller (one request). form_parse writes decoded bytes at scratch + used
 * and never past cap; parameters past FORM_PARAMS_MAX are an error, not a
 * silent cut (a dropped `ip` would register the wrong instance). A failed
 * call rolls n and used back, so the form is never half-extended.
 *
 * Lookups scan the parameters in order and take the first match: with the
 * query parsed before the body this is getParameter's rule. At most 64
 * short comparisons per lookup: cheaper than any index.
 */
#include "nacos/form.h"

#include "core/err.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void form_init(struct form *f, char *scratch, size_t cap)
{
	static char none[1]; /* no scratch: values can still point somewhere */

	f->n = 0;
	f->scratch = scratch ? scratch : none;
	f->used = 0;
	f->cap = scratch ? cap : 0;
}

static int hex_val(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int form_unescape(const char *s, size_t len, char *out, size_t cap, bool plus_is_space)
{
	size_t i = 0, o = 0;

	if (len > INT_MAX)
		return -ERR_TOO_BIG;
	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (len - i < 3)
				return -ERR_INVAL;
			hi = hex_val((unsigned char)s[i + 1]);
			lo = hex_val((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return -ERR_INVAL;
			c = (unsigned char)(hi << 4 | lo);
			i += 3;
		} else {
			if (c == '+' && plus_is_space)
				c = ' ';
			i++;
		}
		if (o >= cap)
			return -ERR_TOO_BIG;
		out[o++] = (char)c;
	}
	return (int)o;
}

/* Decodes one half of a piece into the scratch; its place in *out. */
static int decode_into(struct form *f, const char *s, size_t len, struct store_str *out)
{
	int n = form_unescape(s, len, f->scratch + f->used, f->cap - f->used, true);

	if (n < 0)
		return n;
	out->p = f->scratch + f->used;
	out->len = (uint32_t)n;
	f->used += (size_t)n;
	return 0;
}

int form_parse(struct form *f, const char *s, size_t len)
{
	uint32_t n0 = f->n;
	size_t used0 = f->used;
	size_t i = 0;
	int rc = 0;

	while (i < len) {
		const char *piece = s + i, *amp, *eq;
		size_t plen, klen;
		struct form_param *p;

		amp = memchr(piece, '&', len - i);
		plen = amp ? (size_t)(amp - piece) : len - i;
		i += plen + 1; /* past the '&' (or past the end: the loop stops) */
		if (plen == 0)
			continue;
		eq = memchr(piece, '=', plen);
		klen = eq ? (size_t)(eq - piece) : plen;
		if (klen == 0)
			continue; /* "=v": no name, Tomcat skips it too */
		if (f->n >= FORM_PARAMS_MAX) {
			rc = -ERR_TOO_BIG;
			goto err;
		}
		p = &f->p[f->n];
		rc = decode_into(f, piece, klen, &p->key);
		if (rc < 0)
			goto err;
		if (eq) {
			rc = decode_into(f, eq + 1, plen - klen - 1, &p->val);
			if (rc < 0)
				goto err;
		} else {
			p->val.p = f->scratch + f->used; /* present, empty */
			p->val.len = 0;
		}
		f->n++;
	}
	return 0;
err:
	f->n = n0;
	f->used = used0;
	return rc;
}

bool form_get(const struct form *f, const char *key, struct store_str *out)
{
	size_t klen = strlen(key);

	for (uint32_t i = 0; i < f->n; i++) {
		const struct form_param *p = &f->p[i];

		if (p->key.len == klen && memcmp(p->key.p, key, klen) == 0) {
			*out = p->val;
			return true;
		}
	}
	return false;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* The value of key without surrounding white space; false when absent or blank. */
static bool get_trimmed(const struct form *f, const char *key, const char **p, size_t *len)
{
	struct store_str v;
	size_t a = 0, b;

	if (!form_get(f, key, &v))
		return false;
	b = v.len;
	while (a < b && is_space(v.p[a]))
		a++;
	while (b > a && is_space(v.p[b - 1]))
		b--;
	if (a == b)
		return false;
	*p = v.p + a;
	*len = b - a;
	return true;
}

bool form_get_bool(const struct form *f, const char *key, bool dflt, int *err)
{
	const char *p;
	size_t len;

	if (!get_trimmed(f, key, &p, &len))
		return dflt;
	if (len == 4 && strncasecmp(p, "true", 4) == 0)
		return true;
	if (len == 5 && strncasecmp(p, "false", 5) == 0)
		return false;
	*err = -ERR_INVAL;
	return dflt;
}

int64_t form_get_int(const struct form *f, const char *key, int64_t dflt, int64_t lo, int64_t hi,
                     int *err)
{
	const char *p;
	size_t len, i = 0;
	bool neg = false;
	uint64_t mag = 0, limit;

	if (!get_trimmed(f, key, &p, &len))
		return dflt;
	if (p[0] == '+' || p[0] == '-') {
		neg = p[0] == '-';
		i++;
	}
	if (i == len)
		goto bad;
	/* Magnitude up to 2^63 for a negative number, 2^63 - 1 otherwise. */
	limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < len; i++) {
		unsigned d = (unsigned char)p[i] - '0';

		if (d > 9)
			goto bad;
		if (mag > (limit - d) / 10)
			goto bad;
		mag = mag * 10 + d;
	}
	{
		int64_t v = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag)
		                : (int64_t)mag;

		if (v < lo || v > hi)
			goto bad;
		return v;
	}
bad:
	*err = -ERR_INVAL;
	return dflt;
}

double form_get_double(const struct form *f, const char *key, double dflt, int *err)
{
	char copy[64];
	const char *p;
	size_t len;
	char *end;
	double v;

	if (!get_trimmed(f, key, &p, &len))
		return dflt;
	if (len >= sizeof(copy))
		goto bad;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' ||
		      c == 'E'))
			goto bad; /* keeps strtod away from hex, inf, nan and locales */
	}
	memcpy(copy, p, len);
	copy[len] = 0;
	v = strtod(copy, &end);
	if (end != copy + len || !isfinite(v))
		goto bad;
	return v;
bad:
	*err = -ERR_INVAL;
	return dflt;
}
