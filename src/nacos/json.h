/*
 * json.h - the JSON of the Nacos API: answers written with correct
 * escaping, and the JSON that Nacos clients send (metadata, beats, batch
 * instance lists) decoded without allocating.
 *
 * Writing: every json_put_* appends to a struct buf and never lets it hold
 * more than `max` unconsumed bytes. Each is all or nothing: on false (the
 * bound was hit, or memory ran out) the buffer holds what it held before,
 * so the caller can answer 500 or 413 instead of sending half a document.
 *
 * Reading: jsmn (docs/nacos.md says why) tokenizes into a token array the
 * caller gives, after our own strict RFC 8259 syntax check (jsmn alone
 * accepts missing commas, `[1,]` and `tru`). A struct json_doc is the
 * text plus its tokens, in document order; a token's children follow it.
 * Nothing is copied: decoded strings go to caller-supplied space, bounded
 * by its size. Every function is total: on any input it reads only
 * [s, s + len) and writes only within the caller's bounds.
 *
 * Unicode policy, both ways: bytes >= 0x80 pass through; what is not valid
 * Unicode (invalid UTF-8 when writing, a lone surrogate escape when
 * reading) becomes U+FFFD instead of failing the request.
 */
#ifndef DISTRO_NACOS_JSON_H
#define DISTRO_NACOS_JSON_H

#include "core/buf.h"
#include "store/types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * jsmntok_t, from Debian's libjsmn-dev, declarations only. json.c, the one
 * file that compiles jsmn, includes jsmn.h itself before this header.
 * JSMN_PARENT_LINKS changes the token's layout, so it is used nowhere.
 */
#ifndef JSMN_H
#define JSMN_HEADER
#include <jsmn.h>
#undef JSMN_HEADER
#endif
#ifndef __cplusplus
_Static_assert(sizeof(jsmntok_t) == 4 * sizeof(int), "jsmntok_t must not have parent links");
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Tokens of one decoded document (each value and each key is one); also the nesting bound. */
#define JSON_TOKENS_MAX 512

/* ---- Writing ---- */

/*
 * A JSON string: s[0, len) between quotes, escaped. \" \\ \b \f \n \r \t;
 * other bytes < 0x20 and 0x7f as \u00XX; < > & ' as \u003c \u003e \u0026
 * \u0027 and U+2028/U+2029 as \u2028 \u2029, so the text is safe inside
 * HTML and JavaScript later. Other valid UTF-8 is copied as it is; each
 * byte that is not part of valid UTF-8 becomes U+FFFD (EF BF BD). '/' is
 * not escaped (Jackson does not either).
 */
bool json_put_str(struct buf *b, const char *s, size_t len, size_t max);

/* s[0, len) as it is (punctuation, keys known to need no escaping). */
bool json_put_raw(struct buf *b, const char *s, size_t len, size_t max);

bool json_put_u64(struct buf *b, uint64_t v, size_t max);
bool json_put_i64(struct buf *b, int64_t v, size_t max);

/*
 * A number as Java's Double.toString shows Nacos weights: integers with
 * one decimal ("1.0", "10000.0", for |v| < 1e15), others in the shortest
 * of %.15g / %.16g / %.17g that reads back as v ("0.5", "0.1", "1e+20").
 * NaN and infinities have no JSON form: they are written as null.
 */
bool json_put_double(struct buf *b, double v, size_t max);

bool json_put_bool(struct buf *b, bool v, size_t max);

/* {"k":"v",...} with json_put_str escaping; {} when n == 0. */
bool json_put_meta(struct buf *b, const struct store_kv *kv, uint32_t n, size_t max);

/* ---- Reading ---- */

struct json_doc {
	const char *s;
	jsmntok_t *t; /* t[0] is the whole document */
	int n;        /* tokens used */
};

/*
 * Tokenizes s[0, len), one JSON value (any type) with optional white space
 * around it, into toks (an array of max_toks jsmntok_t). 0 and *d filled,
 * or -ERR_INVAL (not RFC 8259 JSON: syntax, raw control characters in
 * strings, bad escapes, leading zeros, trailing bytes, NUL) or
 * -ERR_TOO_BIG (more than max_toks tokens, nesting deeper than
 * JSON_TOKENS_MAX, or len over INT_MAX). d->s is s: the doc borrows it.
 * Cost: two linear passes (jsmn's closing-bracket search is quadratic in
 * the nesting depth, bounded by the token count).
 */
int json_parse(struct json_doc *d, const char *s, size_t len, void *toks, unsigned max_toks);

/*
 * The token index of the value of key (exact bytes after unescaping) in the
 * object token obj; with duplicate keys the last (Jackson's rule). -1 when
 * absent or when obj is not an object token of d.
 */
int json_obj_get(const struct json_doc *d, int obj, const char *key);

/*
 * The text of token tok into out[0, cap): a string unescaped (\uXXXX and
 * surrogate pairs to UTF-8, a lone surrogate to U+FFFD, \u0000 to a NUL
 * byte), a primitive (number, true, false, null) as written. The length
 * (not NUL-terminated), -ERR_INVAL for an object, an array or a bad index,
 * -ERR_TOO_BIG when cap is too small (the raw token length always fits).
 */
int json_str(const struct json_doc *d, int tok, char *out, size_t cap);

/* Whether string token tok, unescaped, is key[0, klen): compared in place, no copy. */
bool json_key_eq(const struct json_doc *d, int tok, const char *key, size_t klen);

/* Whether tok is the literal null. */
bool json_is_null(const struct json_doc *d, int tok);

/* The index after tok and all its descendants: the next sibling, or d->n. */
int json_next(const struct json_doc *d, int tok);

/*
 * An integer in [lo, hi] from a number token without fraction or exponent,
 * or from a string holding one (Nacos clients send ports both ways).
 * 0 and *out, or -ERR_INVAL (null, 8080.0, "8080x", out of range, ...).
 */
int json_int(const struct json_doc *d, int tok, int64_t lo, int64_t hi, int64_t *out);

/* A finite number from a number token or a numeric string; 0 or -ERR_INVAL. */
int json_double(const struct json_doc *d, int tok, double *out);

#ifdef __cplusplus
}
#endif

/* The Nacos documents (metadata, beat, batch instances): nacos/jsondoc.h. */
#include "nacos/jsondoc.h"

#endif
