/*
 * form.h - the parameters of a Nacos request: query strings and
 * application/x-www-form-urlencoded bodies.
 *
 * Nacos reads every parameter with the servlet's getParameter, which sees
 * the query string and a form body as one list, the query first, and
 * answers the first value of a name. Java 1.x clients put most parameters
 * in the query and the beat in the body; the npm client puts everything in
 * the query. So a request's parameters are one struct form, filled by
 * form_parse over the query and then over the body, and read by name.
 *
 * Nothing here allocates: the caller gives the scratch space the decoded
 * bytes are written to (decoding never lengthens text, so scratch as large
 * as query + body always suffices) and the struct holds at most
 * FORM_PARAMS_MAX parameters. Strings point into scratch and are not
 * NUL-terminated; they live as long as the caller's scratch.
 */
#ifndef DISTRO_NACOS_FORM_H
#define DISTRO_NACOS_FORM_H

#include "store/types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FORM_PARAMS_MAX 64

struct form_param {
	struct store_str key, val; /* decoded, NOT NUL-terminated */
};

struct form {
	struct form_param p[FORM_PARAMS_MAX];
	uint32_t n;
	char *scratch; /* decoded bytes live here */
	size_t used, cap;
};

/* An empty parameter list decoding into scratch[0, cap). */
void form_init(struct form *f, char *scratch, size_t cap);

/*
 * Decodes `k=v&k2=v2...` (a query string without its '?', or a form body)
 * and appends its parameters to f. '+' is a space in keys and values, %XX
 * a byte (either case of hex); empty pieces are skipped ("a=1&&b=2"), as
 * are pieces with an empty name ("=v", as Tomcat does); a name without '='
 * has an empty value. Decoded bytes may be anything (NUL, invalid UTF-8):
 * callers validate what they store.
 *
 * 0 on success. -ERR_INVAL on a bad or truncated escape ("%4", "%zz");
 * -ERR_TOO_BIG over FORM_PARAMS_MAX parameters in all or when scratch is
 * full. On an error f is as before the call (nothing of s was added).
 * Cost: one pass over s; no allocation.
 */
int form_parse(struct form *f, const char *s, size_t len);

/*
 * The value of the first parameter named key (exact bytes, case-sensitive)
 * in *out. False when there is none. A present but empty value gives true
 * with len 0 (and p non-NULL): Nacos treats blank as absent in most places
 * (the helpers below do), but `WebUtils.required` names the difference.
 */
bool form_get(const struct form *f, const char *key, struct store_str *out);

/*
 * The helpers below give Nacos's WebUtils.optional semantics: a parameter
 * absent or blank (empty or only white space) takes dflt. Leading and
 * trailing white space is ignored. A value that does not parse leaves dflt
 * as the result and sets *err to -ERR_INVAL; *err is never written on
 * success, so one err can collect several lookups (initialise it to 0).
 */

/* "true" / "false", any case (Java would take anything else as false; we refuse it). */
bool form_get_bool(const struct form *f, const char *key, bool dflt, int *err);

/* A decimal integer with an optional sign, within [lo, hi] (else -ERR_INVAL). */
int64_t form_get_int(const struct form *f, const char *key, int64_t dflt, int64_t lo, int64_t hi,
                     int *err);

/*
 * A decimal number (digits, sign, '.', exponent: no hex, inf or nan), read
 * by strtod from a bounded copy; trailing junk, NaN, infinities and text
 * longer than 63 bytes are refused. Needs the C locale (the server never
 * calls setlocale).
 */
double form_get_double(const struct form *f, const char *key, double dflt, int *err);

/*
 * Percent-decodes s[0, len) into out[0, cap): %XX is the byte XX, and '+'
 * is a space when plus_is_space (forms) or itself (paths). The length
 * written, -ERR_INVAL on a bad or truncated escape, -ERR_TOO_BIG when out
 * is too small (len bytes always suffice). out may equal s (decoding in
 * place never overtakes the reader). Never writes past cap.
 */
int form_unescape(const char *s, size_t len, char *out, size_t cap, bool plus_is_space);

#ifdef __cplusplus
}
#endif

#endif
