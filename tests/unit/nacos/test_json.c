/*
 * The Nacos JSON layer (nacos/json.h). Writer: escaping of every control
 * byte, quote, backslash and HTML-sensitive character, UTF-8 kept and
 * invalid UTF-8 replaced, numbers as Nacos prints them, bounds that leave
 * the buffer unchanged. Reader: what RFC 8259 refuses and jsmn alone would
 * take, the token and depth bounds, unescaping with surrogate pairs,
 * integer and number rules. Nacos documents: metadata as JSON and as the
 * k=v fallback, beats, batch instance lists, each with its bounds.
 */
#include "nacos/json.h"

#include "core/err.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX (1u << 20)

/* ---- helpers ---- */

static struct buf out;

static void reset(void)
{
	buf_free(&out);
}

/* The unconsumed bytes of out as a NUL-terminated string (a static copy). */
static const char *text(void)
{
	static char t[65536];
	size_t n = buf_used(&out);

	cr_assert_lt(n, sizeof(t));
	memcpy(t, out.p + out.off, n);
	t[n] = 0;
	return t;
}

static void put_str_eq(const char *in, size_t len, const char *want)
{
	reset();
	cr_assert(json_put_str(&out, in, len, MAX));
	cr_assert_str_eq(text(), want);
}

static jsmntok_t toks[JSON_TOKENS_MAX * 2];

static int parse(struct json_doc *d, const char *s)
{
	return json_parse(d, s, strlen(s), toks, JSON_TOKENS_MAX);
}

/* json_str of token tok equals want[0, wlen). */
static void str_eq(const struct json_doc *d, int tok, const char *want, size_t wlen)
{
	char o[256];
	int n = json_str(d, tok, o, sizeof(o));

	cr_assert_eq(n, (int)wlen, "json_str length %d, want %zu", n, wlen);
	cr_assert_eq(memcmp(o, want, wlen), 0);
}

static bool sstr_eq(struct store_str s, const char *want)
{
	return s.p != NULL && s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

/* ---- writer ---- */

Test(json_put, every_control_byte)
{
	static const char *want[32] = {
		"\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006",
		"\\u0007", "\\b",     "\\t",     "\\n",     "\\u000b", "\\f",     "\\r",
		"\\u000e", "\\u000f", "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014",
		"\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019", "\\u001a", "\\u001b",
		"\\u001c", "\\u001d", "\\u001e", "\\u001f",
	};
	char w[16];

	for (int c = 0; c < 32; c++) {
		char in = (char)c;

		snprintf(w, sizeof(w), "\"%s\"", want[c]);
		put_str_eq(&in, 1, w);
	}
	put_str_eq("\x7f", 1, "\"\\u007f\"");
	reset();
}

Test(json_put, quote_backslash_html)
{
	put_str_eq("\"", 1, "\"\\\"\"");
	put_str_eq("\\", 1, "\"\\\\\"");
	put_str_eq("</script>&'x'", 13, "\"\\u003c/script\\u003e\\u0026\\u0027x\\u0027\"");
	put_str_eq("a/b c~", 6, "\"a/b c~\"");
	put_str_eq("", 0, "\"\"");
	reset();
}

Test(json_put, utf8_kept_and_invalid_replaced)
{
	put_str_eq("\xc3\xa9\xe4\xbd\xa0\xf0\x9f\x98\x80", 9,
	           "\"\xc3\xa9\xe4\xbd\xa0\xf0\x9f\x98\x80\"");
	put_str_eq("\xe2\x80\xa8\xe2\x80\xa9", 6, "\"\\u2028\\u2029\"");
	put_str_eq("a\xff"
	           "b",
	           3,
	           "\"a\xef\xbf\xbd"
	           "b\"");
	put_str_eq("\xc3", 1, "\"\xef\xbf\xbd\"");                                 /* truncated */
	put_str_eq("\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"");                 /* overlong */
	put_str_eq("\xe0\x80\xaf", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* overlong */
	put_str_eq("\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* surrogate */
	put_str_eq("\xf4\x90\x80\x80", 4,
	           "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* > U+10FFFF */
	put_str_eq("\xe4\xbd", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"");          /* cut short */
	reset();
}

Test(json_put, bound_leaves_buffer_unchanged)
{
	reset();
	cr_assert(json_put_raw(&out, "[", 1, MAX));
	/* "[" + "\"a\\nb\"" is 7 bytes. */
	cr_assert_not(json_put_str(&out, "a\nb", 3, 6));
	cr_assert_str_eq(text(), "[");
	cr_assert(json_put_str(&out, "a\nb", 3, 7));
	cr_assert_str_eq(text(), "[\"a\\nb\"");
	cr_assert_not(json_put_raw(&out, "]", 1, 7));
	cr_assert_not(json_put_u64(&out, 1, 7));
	cr_assert_not(json_put_i64(&out, -1, 8));
	cr_assert_not(json_put_double(&out, 1.0, 9));
	cr_assert_not(json_put_bool(&out, false, 11));
	cr_assert_str_eq(text(), "[\"a\\nb\"");
	reset();
}

Test(json_put, integers_and_bools)
{
	reset();
	cr_assert(json_put_u64(&out, UINT64_MAX, MAX));
	cr_assert(json_put_raw(&out, ",", 1, MAX));
	cr_assert(json_put_i64(&out, INT64_MIN, MAX));
	cr_assert(json_put_raw(&out, ",", 1, MAX));
	cr_assert(json_put_i64(&out, 0, MAX));
	cr_assert(json_put_raw(&out, ",", 1, MAX));
	cr_assert(json_put_bool(&out, true, MAX));
	cr_assert(json_put_raw(&out, ",", 1, MAX));
	cr_assert(json_put_bool(&out, false, MAX));
	cr_assert_str_eq(text(), "18446744073709551615,-9223372036854775808,0,true,false");
	reset();
}

static void double_eq(double v, const char *want)
{
	reset();
	cr_assert(json_put_double(&out, v, MAX));
	cr_assert_str_eq(text(), want);
}

Test(json_put, doubles_as_nacos_prints_them)
{
	double_eq(1.0, "1.0");
	double_eq(0.5, "0.5");
	double_eq(0.1, "0.1");
	double_eq(0.0, "0.0");
	double_eq(10000.0, "10000.0");
	double_eq(-2.0, "-2.0");
	double_eq(1.5, "1.5");
	double_eq(0.3, "0.3");
	double_eq(1e20, "1e+20");
	double_eq(NAN, "null");
	double_eq(INFINITY, "null");
	double_eq(-INFINITY, "null");
	/* Others read back exactly. */
	const double v[] = { 1.0 / 3, 2.0 / 3, 1e-7, 123456.789, 5e-324, 1.7976931348623157e308 };
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		reset();
		cr_assert(json_put_double(&out, v[i], MAX));
		cr_assert_eq(strtod(text(), NULL), v[i], "%s", text());
	}
	reset();
}

Test(json_put, meta)
{
	struct store_kv kv[2] = {
		{ { "k", 1 }, { "v", 1 } },
		{ { "a\"b", 3 }, { "<x>", 3 } },
	};

	reset();
	cr_assert(json_put_meta(&out, kv, 0, MAX));
	cr_assert_str_eq(text(), "{}");
	reset();
	cr_assert(json_put_meta(&out, kv, 2, MAX));
	cr_assert_str_eq(text(), "{\"k\":\"v\",\"a\\\"b\":\"\\u003cx\\u003e\"}");
	reset();
}

Test(json_put, meta_bound_rolls_back_even_after_compaction)
{
	struct store_kv kv[1] = { { { "key", 3 }, { "value", 5 } } };
	const char *whole = "{\"key\":\"value\"}"; /* 15 bytes */

	reset();
	/* A consumed front: the reserve may move bytes down before failing. */
	cr_assert(buf_reserve(&out, BUF_FIRST_BYTES, MAX));
	memset(out.p, 'x', BUF_FIRST_BYTES - 4);
	out.len = BUF_FIRST_BYTES - 4;
	buf_consume(&out, BUF_FIRST_BYTES - 6);
	cr_assert_eq(buf_used(&out), 2);
	for (size_t max = 2; max < 2 + 15; max++) {
		cr_assert_not(json_put_meta(&out, kv, 1, max), "max %zu", max);
		cr_assert_str_eq(text(), "xx");
	}
	cr_assert(json_put_meta(&out, kv, 1, 2 + 15));
	cr_assert_eq(buf_used(&out), 17);
	cr_assert_eq(memcmp(out.p + out.off + 2, whole, 15), 0);
	reset();
}

Test(json_put, round_trip_through_reader)
{
	static const char *in[] = {
		"plain",
		"",
		"tab\there \"quoted\" back\\slash /",
		"\x01\x02\x1f\x7f<>&'",
		"\xc3\xa9t\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf",
		"\xe2\x80\xa8 line sep",
	};
	struct json_doc d;

	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		reset();
		cr_assert(json_put_str(&out, in[i], strlen(in[i]), MAX));
		cr_assert_eq(json_parse(&d, (const char *)out.p, out.len, toks, JSON_TOKENS_MAX),
		             0);
		cr_assert_eq(d.t[0].type, JSMN_STRING);
		str_eq(&d, 0, in[i], strlen(in[i]));
	}
	/* A NUL byte too. */
	reset();
	cr_assert(json_put_str(&out, "a\0b", 3, MAX));
	cr_assert_eq(json_parse(&d, (const char *)out.p, out.len, toks, JSON_TOKENS_MAX), 0);
	str_eq(&d, 0, "a\0b", 3);
	reset();
}

/* ---- reader ---- */

Test(json_parse, refuses_what_rfc8259_refuses)
{
	static const char *bad[] = {
		"",
		"  ",
		"{",
		"}",
		"[",
		"{\"a\":1",
		"{\"a\":1 \"b\":2}",
		"[1,,2]",
		"[1,]",
		"[,1]",
		"{\"a\":1,}",
		"{,}",
		"[,]",
		"{\"a\":}",
		"{\"a\"}",
		"{\"a\",1}",
		"{\"a\"::1}",
		"{\"a\":1:2}",
		"[\"a\":1]",
		"[1 2]",
		"tru",
		"nul",
		"truex",
		"t",
		"01",
		"-01",
		"1.",
		".5",
		"-",
		"1e",
		"1e+",
		"+1",
		"NaN",
		"Infinity",
		"0x10",
		"\"a\x01\"",
		"\"a\tb\"",
		"\"\\x\"",
		"\"\\u12\"",
		"\"\\u12G4\"",
		"\"abc",
		"\"abc\\",
		"{} {}",
		"{}x",
		"[}",
		"{]",
		"'a'",
		"{a:1}",
		"{1:2}",
		"[[]]]",
		"{\"a\":[}]",
		"[1]2",
	};
	struct json_doc d;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(parse(&d, bad[i]), -ERR_INVAL, "accepted %s", bad[i]);
	/* A NUL byte anywhere (jsmn alone stops there and says yes). */
	cr_assert_eq(json_parse(&d, "{}\0x", 4, toks, JSON_TOKENS_MAX), -ERR_INVAL);
	cr_assert_eq(json_parse(&d, "{\"a\":\"b\0\"}", 10, toks, JSON_TOKENS_MAX), -ERR_INVAL);
	cr_assert_eq(json_parse(&d, "\0", 1, toks, JSON_TOKENS_MAX), -ERR_INVAL);
}

Test(json_parse, accepts_every_shape)
{
	struct json_doc d;

	cr_assert_eq(parse(&d, "{}"), 0);
	cr_assert_eq(d.n, 1);
	cr_assert_eq(d.t[0].type, JSMN_OBJECT);
	cr_assert_eq(parse(&d, " [ ] "), 0);
	cr_assert_eq(d.t[0].type, JSMN_ARRAY);
	cr_assert_eq(parse(&d, " -0.5e+3 "), 0);
	cr_assert_eq(d.n, 1);
	cr_assert_eq(d.t[0].type, JSMN_PRIMITIVE);
	str_eq(&d, 0, "-0.5e+3", 7);
	cr_assert_eq(parse(&d, "true"), 0);
	str_eq(&d, 0, "true", 4);
	cr_assert_eq(parse(&d, "null"), 0);
	cr_assert_eq(parse(&d, "0"), 0);
	cr_assert_eq(parse(&d, "\"s\"\n"), 0);
	cr_assert_eq(d.t[0].type, JSMN_STRING);
	cr_assert_eq(parse(&d, "\t{\"a\" : [1, {\"b\":null}, \"c\", [], {}], \"d\":-1E-2}\r\n"), 0);
	cr_assert_eq(d.t[0].type, JSMN_OBJECT);
	cr_assert_eq(d.t[0].size, 2);
	cr_assert_eq(d.n, 12);
}

Test(json_parse, token_bound)
{
	static char s[8192];
	struct json_doc d;
	size_t n = 0;

	/* An array and 511 elements: exactly JSON_TOKENS_MAX tokens. */
	s[n++] = '[';
	for (int i = 0; i < JSON_TOKENS_MAX - 1; i++)
		n += (size_t)snprintf(s + n, sizeof(s) - n, "%s%d", i ? "," : "", i % 10);
	s[n++] = ']';
	cr_assert_eq(json_parse(&d, s, n, toks, JSON_TOKENS_MAX), 0);
	cr_assert_eq(d.n, JSON_TOKENS_MAX);
	cr_assert_eq(json_next(&d, 0), JSON_TOKENS_MAX);
	/* One more. */
	memcpy(s + n - 1, ",1]", 3);
	n += 2;
	cr_assert_eq(json_parse(&d, s, n, toks, JSON_TOKENS_MAX), -ERR_TOO_BIG);
	cr_assert_eq(json_parse(&d, s, n, toks, JSON_TOKENS_MAX + 1), 0);
	/* Small arrays. */
	cr_assert_eq(json_parse(&d, "{\"a\":1}", 7, toks, 2), -ERR_TOO_BIG);
	cr_assert_eq(json_parse(&d, "{\"a\":1}", 7, toks, 3), 0);
	cr_assert_eq(json_parse(&d, "1", 1, toks, 0), -ERR_TOO_BIG);
	cr_assert_eq(json_parse(&d, "1", 1, toks, 1), 0);
}

Test(json_parse, depth_bound)
{
	static char s[2 * JSON_TOKENS_MAX + 4];
	struct json_doc d;
	size_t depth = JSON_TOKENS_MAX;

	memset(s, '[', depth);
	memset(s + depth, ']', depth);
	cr_assert_eq(json_parse(&d, s, 2 * depth, toks, 2 * JSON_TOKENS_MAX), 0);
	cr_assert_eq(d.n, JSON_TOKENS_MAX);
	depth++;
	memset(s, '[', depth);
	memset(s + depth, ']', depth);
	cr_assert_eq(json_parse(&d, s, 2 * depth, toks, 2 * JSON_TOKENS_MAX), -ERR_TOO_BIG);
	/* Deep and unclosed: the bound, before any end is seen. */
	cr_assert_eq(json_parse(&d, s, depth, toks, 2 * JSON_TOKENS_MAX), -ERR_TOO_BIG);
}

Test(json_parse, reads_only_len_bytes)
{
	struct json_doc d;

	cr_assert_eq(json_parse(&d, "[1,2]", 4, toks, JSON_TOKENS_MAX), -ERR_INVAL);
	cr_assert_eq(json_parse(&d, "12345", 2, toks, JSON_TOKENS_MAX), 0);
	str_eq(&d, 0, "12", 2);
	cr_assert_eq(json_parse(&d, "\"ab\\u0041\"", 8, toks, JSON_TOKENS_MAX), -ERR_INVAL);
}

Test(json_obj, get)
{
	struct json_doc d;
	int v;

	cr_assert_eq(parse(&d, "{\"a\":{\"ip\":1,\"x\":[\"ip\"]},\"\\u0069p\":\"1.1.1.1\","
	                       "\"port\":80,\"port\":81,\"\":\"e\"}"),
	             0);
	v = json_obj_get(&d, 0, "ip");
	cr_assert_gt(v, 0);
	str_eq(&d, v, "1.1.1.1", 7);
	v = json_obj_get(&d, 0, "port"); /* the last of two */
	str_eq(&d, v, "81", 2);
	v = json_obj_get(&d, 0, "");
	str_eq(&d, v, "e", 1);
	cr_assert_eq(json_obj_get(&d, 0, "x"), -1); /* only nested */
	cr_assert_eq(json_obj_get(&d, 0, "i"), -1);
	cr_assert_eq(json_obj_get(&d, 0, "ipp"), -1);
	v = json_obj_get(&d, 0, "a");
	cr_assert_eq(d.t[v].type, JSMN_OBJECT);
	str_eq(&d, json_obj_get(&d, v, "ip"), "1", 1);
	cr_assert_eq(json_obj_get(&d, v, "port"), -1);
	/* Not an object, or not a token. */
	cr_assert_eq(json_obj_get(&d, json_obj_get(&d, 0, "port"), "x"), -1);
	cr_assert_eq(json_obj_get(&d, -1, "ip"), -1);
	cr_assert_eq(json_obj_get(&d, d.n, "ip"), -1);
	cr_assert_eq(parse(&d, "[\"ip\",1]"), 0);
	cr_assert_eq(json_obj_get(&d, 0, "ip"), -1);
}

Test(json_str, escapes)
{
	struct json_doc d;

	cr_assert_eq(parse(&d, "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""), 0);
	str_eq(&d, 0, "\"\\/\b\f\n\r\t", 8);
	cr_assert_eq(parse(&d, "\"\\u0041\\u00e9\\u4F60\\u0000z\""), 0);
	str_eq(&d, 0, "A\xc3\xa9\xe4\xbd\xa0\0z", 8);
}

Test(json_str, surrogates)
{
	struct json_doc d;

	cr_assert_eq(parse(&d, "\"\\ud83d\\ude00\""), 0); /* U+1F600 */
	str_eq(&d, 0, "\xf0\x9f\x98\x80", 4);
	cr_assert_eq(parse(&d, "\"\\uDBFF\\uDFFF\""), 0); /* U+10FFFF */
	str_eq(&d, 0, "\xf4\x8f\xbf\xbf", 4);
	cr_assert_eq(parse(&d, "\"\\ud83dx\""), 0); /* lone high */
	str_eq(&d, 0, "\xef\xbf\xbdx", 4);
	cr_assert_eq(parse(&d, "\"\\ude00\""), 0); /* lone low */
	str_eq(&d, 0, "\xef\xbf\xbd", 3);
	cr_assert_eq(parse(&d, "\"\\ud83d\\ud83d\\ude00\""), 0); /* high, then a pair */
	str_eq(&d, 0, "\xef\xbf\xbd\xf0\x9f\x98\x80", 7);
	cr_assert_eq(parse(&d, "\"\\ud83d\\u0041\""), 0); /* high, then not low */
	str_eq(&d, 0,
	       "\xef\xbf\xbd"
	       "A",
	       4);
	cr_assert_eq(parse(&d, "\"\\ud83d\""), 0); /* high at the end */
	str_eq(&d, 0, "\xef\xbf\xbd", 3);
}

Test(json_str, bounds_and_kinds)
{
	struct json_doc d;
	char o[8];

	cr_assert_eq(parse(&d, "{\"k\":\"abcdef\",\"n\":-12.5,\"a\":[1],\"t\":true}"), 0);
	int k = json_obj_get(&d, 0, "k");
	cr_assert_eq(json_str(&d, k, o, 6), 6);
	cr_assert_eq(memcmp(o, "abcdef", 6), 0);
	cr_assert_eq(json_str(&d, k, o, 5), -ERR_TOO_BIG);
	cr_assert_eq(json_str(&d, json_obj_get(&d, 0, "n"), o, 5), 5);
	cr_assert_eq(json_str(&d, json_obj_get(&d, 0, "n"), o, 4), -ERR_TOO_BIG);
	str_eq(&d, json_obj_get(&d, 0, "t"), "true", 4);
	cr_assert_eq(json_str(&d, json_obj_get(&d, 0, "a"), o, sizeof(o)), -ERR_INVAL);
	cr_assert_eq(json_str(&d, 0, o, sizeof(o)), -ERR_INVAL);
	cr_assert_eq(json_str(&d, -1, o, sizeof(o)), -ERR_INVAL);
	cr_assert_eq(json_str(&d, d.n, o, sizeof(o)), -ERR_INVAL);
	/* Escapes shrink: "\u00e9" is 6 bytes in, 2 out. */
	cr_assert_eq(parse(&d, "\"\\u00e9\\u00e9\""), 0);
	cr_assert_eq(json_str(&d, 0, o, 4), 4);
	cr_assert_eq(json_str(&d, 0, o, 3), -ERR_TOO_BIG);
}

Test(json_num, int)
{
	static const char *ok[] = { "8080", "\"8080\"", "0", "65535", "\"007\"" };
	static const int64_t okv[] = { 8080, 8080, 0, 65535, 7 };
	static const char *bad[] = { "8080.0",    "8.08e3",
		                     "1e3",       "-1",
		                     "65536",     "\"-1\"",
		                     "\"8080x\"", "\" 80\"",
		                     "\"+80\"",   "\"\"",
		                     "\"0x10\"",  "true",
		                     "null",      "99999999999999999999999",
		                     "\"-\"",     "[80]",
		                     "{}" };
	struct json_doc d;
	int64_t v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(parse(&d, ok[i]), 0);
		cr_assert_eq(json_int(&d, 0, 0, 65535, &v), 0, "%s", ok[i]);
		cr_assert_eq(v, okv[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(parse(&d, bad[i]), 0, "%s", bad[i]);
		cr_assert_eq(json_int(&d, 0, 0, 65535, &v), -ERR_INVAL, "%s", bad[i]);
	}
	cr_assert_eq(parse(&d, "-9223372036854775808"), 0);
	cr_assert_eq(json_int(&d, 0, INT64_MIN, INT64_MAX, &v), 0);
	cr_assert_eq(v, INT64_MIN);
	cr_assert_eq(parse(&d, "9223372036854775808"), 0);
	cr_assert_eq(json_int(&d, 0, INT64_MIN, INT64_MAX, &v), -ERR_INVAL);
}

Test(json_num, double)
{
	static const char *ok[] = { "1", "1.5", "\"0.5\"", "-1e3", "0" };
	static const double okv[] = { 1, 1.5, 0.5, -1000, 0 };
	static const char *bad[] = { "1e400", "\"NaN\"", "\"inf\"", "\"0x10\"", "\"1.0x\"",
		                     "\"\"",  "true",    "null",    "[1]" };
	struct json_doc d;
	double v;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(parse(&d, ok[i]), 0);
		cr_assert_eq(json_double(&d, 0, &v), 0, "%s", ok[i]);
		cr_assert_eq(v, okv[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(parse(&d, bad[i]), 0, "%s", bad[i]);
		cr_assert_eq(json_double(&d, 0, &v), -ERR_INVAL, "%s", bad[i]);
	}
}

/* ---- metadata ---- */

static struct store_kv kv[64];
static char scratch[4096];

static int meta(const char *s)
{
	memset(kv, 0, sizeof(kv));
	return json_parse_meta(s, strlen(s), kv, 64, scratch, sizeof(scratch));
}

static void pair_eq(uint32_t i, const char *k, const char *v)
{
	cr_assert(sstr_eq(kv[i].key, k), "key %u: %.*s, want %s", i, (int)kv[i].key.len,
	          kv[i].key.p, k);
	cr_assert(sstr_eq(kv[i].val, v), "val %u: %.*s, want %s", i, (int)kv[i].val.len,
	          kv[i].val.p, v);
}

Test(json_meta, json_object)
{
	cr_assert_eq(meta("{\"a\":\"1\",\"b\":2,\"c\":true,\"d\":null,\"e\":-1.5e3,\"f\":false}"),
	             6);
	pair_eq(0, "a", "1");
	pair_eq(1, "b", "2");
	pair_eq(2, "c", "true");
	pair_eq(3, "d", "");
	pair_eq(4, "e", "-1.5e3");
	pair_eq(5, "f", "false");
	cr_assert_eq(meta(" {\"k\\u00e9\":\"line\\nnext \\\"q\\\"\"} "), 1);
	pair_eq(0, "k\xc3\xa9", "line\nnext \"q\"");
	/* Values point into scratch, not into the input. */
	cr_assert_geq(kv[0].val.p, scratch);
	cr_assert_lt(kv[0].val.p, scratch + sizeof(scratch));
}

Test(json_meta, empty)
{
	cr_assert_eq(meta(""), 0);
	cr_assert_eq(meta("  \t"), 0);
	cr_assert_eq(meta("{}"), 0);
	cr_assert_eq(meta(" { } "), 0);
	cr_assert_eq(json_parse_meta(NULL, 0, kv, 64, NULL, 0), 0);
}

Test(json_meta, nested_and_non_objects_refused)
{
	cr_assert_eq(meta("{\"a\":{\"b\":\"c\"}}"), -ERR_INVAL);
	cr_assert_eq(meta("{\"a\":{\"b\":\"c=d\"}}"), -ERR_INVAL); /* not via k=v either */
	cr_assert_eq(meta("{\"a\":[1,2]}"), -ERR_INVAL);
	cr_assert_eq(meta("{\"a\":\"1\",\"b\":[]}"), -ERR_INVAL);
	cr_assert_eq(meta("[]"), -ERR_INVAL);
	cr_assert_eq(meta("[\"a=b\"]"), -ERR_INVAL);
	cr_assert_eq(meta("\"a\""), -ERR_INVAL);
	cr_assert_eq(meta("12"), -ERR_INVAL);
	cr_assert_eq(meta("null"), -ERR_INVAL);
}

Test(json_meta, duplicates_last_wins)
{
	cr_assert_eq(meta("{\"a\":\"1\",\"b\":\"2\",\"a\":\"3\"}"), 2);
	pair_eq(0, "a", "3");
	pair_eq(1, "b", "2");
	cr_assert_eq(meta("a=1,b=2,a=3"), 2);
	pair_eq(0, "a", "3");
	pair_eq(1, "b", "2");
	/* Repeats do not count against the bound. */
	cr_assert_eq(
	        json_parse_meta("{\"a\":1,\"a\":2,\"b\":3}", 19, kv, 2, scratch, sizeof(scratch)),
	        2);
	pair_eq(0, "a", "2");
}

Test(json_meta, legacy_kv)
{
	cr_assert_eq(meta("a=1,b=2"), 2);
	pair_eq(0, "a", "1");
	pair_eq(1, "b", "2");
	cr_assert_eq(meta("a=1,b=2,,"), 2); /* Java's split drops trailing empty pieces */
	cr_assert_eq(meta(",,,"), 0);
	cr_assert_eq(meta("=v"), 1);
	pair_eq(0, "", "v");
	cr_assert_eq(meta("a=b="), 1); /* split("=") drops the trailing empty field */
	pair_eq(0, "a", "b");
	cr_assert_eq(meta("k = v"), 1); /* no trimming, as in Java */
	pair_eq(0, "k ", " v");
	cr_assert_eq(meta("{a=1}"), 1); /* not JSON: Nacos reads it this way too */
	pair_eq(0, "{a", "1}");
	cr_assert_eq(meta("x=%41+"), 1); /* no decoding here: form_parse did that */
	pair_eq(0, "x", "%41+");
	static const char *bad[] = { "a=1,,b=2", "a=", "a",        "a=b=c",      "a==b", ",a=1",
		                     "=",        "==", "{\"a\":1", "{\"a\":1,}", "a=1,b" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(meta(bad[i]), -ERR_INVAL, "accepted %s", bad[i]);
}

Test(json_meta, pair_bound)
{
	cr_assert_eq(json_parse_meta("{\"a\":1,\"b\":2}", 13, kv, 2, scratch, sizeof(scratch)), 2);
	cr_assert_eq(
	        json_parse_meta("{\"a\":1,\"b\":2,\"c\":3}", 19, kv, 2, scratch, sizeof(scratch)),
	        -ERR_TOO_BIG);
	cr_assert_eq(json_parse_meta("a=1,b=2,c=3", 11, kv, 2, scratch, sizeof(scratch)),
	             -ERR_TOO_BIG);
	cr_assert_eq(json_parse_meta("a=1", 3, kv, 0, scratch, sizeof(scratch)), -ERR_TOO_BIG);
	cr_assert_eq(json_parse_meta("{}", 2, NULL, 0, scratch, sizeof(scratch)), 0);
}

Test(json_meta, scratch_bound)
{
	char small[8];
	/* "ab" + "cd\u00e9" (2 + 4 bytes) + "e" + "f" = 8 bytes exactly. */
	const char *s = "{\"ab\":\"cd\\u00e9\",\"e\":\"f\"}";

	cr_assert_eq(json_parse_meta(s, strlen(s), kv, 64, small, 8), 2);
	pair_eq(0, "ab", "cd\xc3\xa9");
	pair_eq(1, "e", "f");
	cr_assert_eq(json_parse_meta(s, strlen(s), kv, 64, small, 7), -ERR_TOO_BIG);
	cr_assert_eq(json_parse_meta("ab=cd,e=fgh", 11, kv, 64, small, 8), 2);
	cr_assert_eq(json_parse_meta("ab=cd,e=fghi", 12, kv, 64, small, 8), -ERR_TOO_BIG);
	cr_assert_eq(json_parse_meta("{\"a\":null}", 10, kv, 64, NULL, 0), -ERR_TOO_BIG);
	cr_assert_eq(json_parse_meta("{\"\":null}", 9, kv, 64, NULL, 0), 1);
}

Test(json_meta, token_bound)
{
	static char s[8192];
	static struct store_kv big[400];
	size_t n = 0;

	/* 255 pairs: 511 tokens, fits; 256 pairs: 513, does not. */
	s[n++] = '{';
	for (int i = 0; i < 255; i++)
		n += (size_t)snprintf(s + n, sizeof(s) - n, "%s\"k%d\":%d", i ? "," : "", i, i);
	s[n++] = '}';
	cr_assert_eq(json_parse_meta(s, n, big, 400, scratch, sizeof(scratch)), 255);
	n--;
	n += (size_t)snprintf(s + n, sizeof(s) - n, ",\"k255\":1}");
	cr_assert_eq(json_parse_meta(s, n, big, 400, scratch, sizeof(scratch)), -ERR_TOO_BIG);
}

/* ---- beat ---- */

static struct json_beat beat;

static int parse_beat(const char *s)
{
	return json_parse_beat(s, strlen(s), &beat, kv, 64, scratch, sizeof(scratch));
}

Test(json_beat, full)
{
	cr_assert_eq(parse_beat("{\"serviceName\":\"G@@s\",\"ip\":\"1.1.1.1\",\"port\":8080,"
	                        "\"cluster\":\"c\",\"weight\":1.0,\"ephemeral\":true,"
	                        "\"metadata\":{\"k\":\"v\",\"n\":1},\"scheduled\":true,"
	                        "\"period\":5000,\"stopped\":false}"),
	             0);
	cr_assert(sstr_eq(beat.service, "G@@s"));
	cr_assert(sstr_eq(beat.ip, "1.1.1.1"));
	cr_assert(sstr_eq(beat.cluster, "c"));
	cr_assert_eq(beat.port, 8080);
	cr_assert_eq(beat.weight, 1.0);
	cr_assert_eq(beat.ephemeral, 1);
	cr_assert_eq(beat.period_ms, 5000);
	cr_assert(beat.has_meta);
	cr_assert_eq(beat.meta, kv);
	cr_assert_eq(beat.meta_n, 2);
	pair_eq(0, "k", "v");
	pair_eq(1, "n", "1");
}

Test(json_beat, absent_and_null)
{
	cr_assert_eq(parse_beat("{}"), 0);
	cr_assert_null(beat.service.p);
	cr_assert_null(beat.ip.p);
	cr_assert_null(beat.cluster.p);
	cr_assert_eq(beat.port, -1);
	cr_assert_lt(beat.weight, 0);
	cr_assert_eq(beat.ephemeral, -1);
	cr_assert_eq(beat.period_ms, -1);
	cr_assert_not(beat.has_meta);
	cr_assert_eq(beat.meta_n, 0);
	cr_assert_eq(parse_beat("{\"serviceName\":null,\"ip\":null,\"port\":null,\"weight\":null,"
	                        "\"ephemeral\":null,\"period\":null,\"metadata\":null}"),
	             0);
	cr_assert_null(beat.service.p);
	cr_assert_eq(beat.port, -1);
	cr_assert_lt(beat.weight, 0);
	cr_assert_eq(beat.ephemeral, -1);
	cr_assert_eq(beat.period_ms, -1);
	cr_assert_not(beat.has_meta);
	/* Present and empty is not absent. */
	cr_assert_eq(parse_beat("{\"cluster\":\"\",\"metadata\":{}}"), 0);
	cr_assert_not_null(beat.cluster.p);
	cr_assert_eq(beat.cluster.len, 0);
	cr_assert(beat.has_meta);
	cr_assert_eq(beat.meta_n, 0);
}

Test(json_beat, unknown_keys_and_coercions)
{
	cr_assert_eq(parse_beat("{\"x\":{\"ip\":\"9.9.9.9\",\"y\":[1,{}]},\"ip\":\"1.1.1.1\","
	                        "\"instanceId\":\"i\",\"port\":\"80\",\"weight\":\"0.5\","
	                        "\"ephemeral\":\"FALSE\",\"cluster\":7,\"serviceName\":true}"),
	             0);
	cr_assert(sstr_eq(beat.ip, "1.1.1.1"));
	cr_assert_eq(beat.port, 80);
	cr_assert_eq(beat.weight, 0.5);
	cr_assert_eq(beat.ephemeral, 0);
	cr_assert(sstr_eq(beat.cluster, "7"));
	cr_assert(sstr_eq(beat.service, "true"));
}

Test(json_beat, repeated_keys_last_wins)
{
	cr_assert_eq(parse_beat("{\"ip\":\"1.1.1.1\",\"metadata\":{\"a\":\"1\",\"b\":\"2\"},"
	                        "\"ip\":\"2.2.2.2\",\"metadata\":{\"c\":\"3\"}}"),
	             0);
	cr_assert(sstr_eq(beat.ip, "2.2.2.2"));
	cr_assert_eq(beat.meta_n, 1);
	pair_eq(0, "c", "3");
	cr_assert_eq(parse_beat("{\"metadata\":{\"a\":\"1\"},\"metadata\":null}"), 0);
	cr_assert_not(beat.has_meta);
	cr_assert_eq(beat.meta_n, 0);
}

Test(json_beat, escaped_strings)
{
	cr_assert_eq(parse_beat("{\"serviceName\":\"G@@s\\u00e9\\t\",\"\\u0069p\":\"::1\"}"), 0);
	cr_assert(sstr_eq(beat.service, "G@@s\xc3\xa9\t"));
	cr_assert(sstr_eq(beat.ip, "::1"));
}

Test(json_beat, ports)
{
	static const char *bad[] = { "-1",
		                     "65536",
		                     "8080.0",
		                     "8080.5",
		                     "1e3",
		                     "\"80x\"",
		                     "true",
		                     "\"\"",
		                     "[80]",
		                     "{}",
		                     "99999999999999999999999",
		                     "-0.0",
		                     "\"-1\"",
		                     "4294967376" };
	char s[128];

	cr_assert_eq(parse_beat("{\"port\":0}"), 0);
	cr_assert_eq(beat.port, 0);
	cr_assert_eq(parse_beat("{\"port\":65535}"), 0);
	cr_assert_eq(beat.port, 65535);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(s, sizeof(s), "{\"port\":%s}", bad[i]);
		cr_assert_eq(parse_beat(s), -ERR_INVAL, "accepted %s", s);
	}
}

Test(json_beat, weights_and_other_numbers)
{
	cr_assert_eq(parse_beat("{\"weight\":0}"), 0);
	cr_assert_eq(beat.weight, 0.0);
	cr_assert_eq(parse_beat("{\"weight\":10000.5}"), 0); /* the range is the store's */
	cr_assert_eq(beat.weight, 10000.5);
	cr_assert_eq(parse_beat("{\"weight\":-1}"), -ERR_WEIGHT);
	cr_assert_eq(parse_beat("{\"weight\":-0.5}"), -ERR_WEIGHT);
	cr_assert_eq(parse_beat("{\"weight\":1e400}"), -ERR_INVAL);
	cr_assert_eq(parse_beat("{\"weight\":\"NaN\"}"), -ERR_INVAL);
	cr_assert_eq(parse_beat("{\"weight\":\"abc\"}"), -ERR_INVAL);
	cr_assert_eq(parse_beat("{\"weight\":true}"), -ERR_INVAL);
	cr_assert_eq(parse_beat("{\"period\":-5}"), -ERR_INVAL);
	cr_assert_eq(parse_beat("{\"period\":1.5}"), -ERR_INVAL);
	cr_assert_eq(parse_beat("{\"period\":\"3000\"}"), 0);
	cr_assert_eq(beat.period_ms, 3000);
	cr_assert_eq(parse_beat("{\"ephemeral\":1}"), -ERR_INVAL);
	cr_assert_eq(parse_beat("{\"ephemeral\":\"yes\"}"), -ERR_INVAL);
	cr_assert_eq(parse_beat("{\"ephemeral\":false}"), 0);
	cr_assert_eq(beat.ephemeral, 0);
}

Test(json_beat, wrong_shapes)
{
	cr_assert_eq(parse_beat("{\"metadata\":{\"a\":{\"b\":1}}}"), -ERR_INVAL);
	cr_assert_eq(parse_beat("{\"metadata\":{\"a\":[]}}"), -ERR_INVAL);
	cr_assert_eq(parse_beat("{\"metadata\":[]}"), -ERR_INVAL);
	cr_assert_eq(parse_beat("{\"metadata\":\"a=b\"}"), -ERR_INVAL);
	cr_assert_eq(parse_beat("{\"ip\":{}}"), -ERR_INVAL);
	cr_assert_eq(parse_beat("{\"serviceName\":[\"s\"]}"), -ERR_INVAL);
	cr_assert_eq(parse_beat("[]"), -ERR_INVAL);
	cr_assert_eq(parse_beat("\"beat\""), -ERR_INVAL);
	cr_assert_eq(parse_beat(""), -ERR_INVAL);
	cr_assert_eq(parse_beat("{\"ip\":\"1.1.1.1\""), -ERR_INVAL);
	cr_assert_eq(parse_beat("{\"ip\":\"1.1.1.1\" \"port\":1}"), -ERR_INVAL);
}

Test(json_beat, bounds)
{
	const char *s = "{\"serviceName\":\"abcd\",\"metadata\":{\"k\":\"v\",\"l\":\"w\"}}";
	char small[8];

	cr_assert_eq(json_parse_beat(s, strlen(s), &beat, kv, 64, small, 8), 0);
	cr_assert_eq(json_parse_beat(s, strlen(s), &beat, kv, 64, small, 7), -ERR_TOO_BIG);
	cr_assert_eq(json_parse_beat(s, strlen(s), &beat, kv, 2, small, 8), 0);
	cr_assert_eq(json_parse_beat(s, strlen(s), &beat, kv, 1, small, 8), -ERR_TOO_BIG);
	cr_assert_eq(json_parse_beat("{}", 2, &beat, NULL, 0, NULL, 0), 0);
}

/* ---- batch instances ---- */

static struct json_inst inst[8];

static int parse_inst(const char *s, uint32_t max)
{
	return json_parse_instances(s, strlen(s), inst, max, scratch, sizeof(scratch));
}

Test(json_inst, list)
{
	cr_assert_eq(parse_inst("[{\"ip\":\"1.1.1.1\",\"port\":8080,\"clusterName\":\"c\"},"
	                        "{\"ip\":\"2.2.2.2\",\"port\":\"81\",\"weight\":1.0,"
	                        "\"metadata\":{\"a\":\"b\"}},{}]",
	                        8),
	             3);
	cr_assert(sstr_eq(inst[0].ip, "1.1.1.1"));
	cr_assert_eq(inst[0].port, 8080);
	cr_assert(sstr_eq(inst[0].cluster, "c"));
	cr_assert(sstr_eq(inst[1].ip, "2.2.2.2"));
	cr_assert_eq(inst[1].port, 81);
	cr_assert_null(inst[1].cluster.p);
	cr_assert_null(inst[2].ip.p);
	cr_assert_eq(inst[2].port, -1);
	cr_assert_eq(parse_inst("[]", 8), 0);
	cr_assert_eq(parse_inst(" [ ] ", 0), 0);
}

Test(json_inst, refused)
{
	cr_assert_eq(parse_inst("[{},{},{}]", 2), -ERR_TOO_BIG);
	cr_assert_eq(parse_inst("[{}]", 0), -ERR_TOO_BIG);
	cr_assert_eq(parse_inst("{\"ip\":\"1.1.1.1\"}", 8), -ERR_INVAL);
	cr_assert_eq(parse_inst("[\"1.1.1.1:80\"]", 8), -ERR_INVAL);
	cr_assert_eq(parse_inst("[{},null]", 8), -ERR_INVAL);
	cr_assert_eq(parse_inst("[[]]", 8), -ERR_INVAL);
	cr_assert_eq(parse_inst("[{\"port\":70000}]", 8), -ERR_INVAL);
	cr_assert_eq(parse_inst("[{\"port\":80.5}]", 8), -ERR_INVAL);
	cr_assert_eq(parse_inst("[{\"ip\":[1]}]", 8), -ERR_INVAL);
	cr_assert_eq(parse_inst("[{\"ip\":\"1\"},]", 8), -ERR_INVAL);
	cr_assert_eq(parse_inst("", 8), -ERR_INVAL);
	cr_assert_eq(json_parse_instances("[{\"ip\":\"12345\"}]", 16, inst, 8, scratch, 4),
	             -ERR_TOO_BIG);
	cr_assert_eq(json_parse_instances("[{\"ip\":\"12345\"}]", 16, inst, 8, scratch, 5), 1);
}
