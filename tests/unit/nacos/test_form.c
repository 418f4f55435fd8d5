/*
 * Nacos request parameters (nacos/form.h): query and form-body decoding,
 * getParameter's first-wins rule across query then body, '+' and %2B,
 * bad and truncated escapes, blank values, the parameter and scratch
 * bounds with their roll-back, and the typed helpers' defaults and errors.
 */
#include "nacos/form.h"

#include "core/err.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static char scratch[4096];

static void parse_ok(struct form *f, const char *s)
{
	cr_assert_eq(form_parse(f, s, strlen(s)), 0, "form_parse(%s)", s);
}

/* Asserts the first value of key is want (NULL: absent). */
static void expect(const struct form *f, const char *key, const char *want)
{
	struct store_str v;
	bool found = form_get(f, key, &v);

	if (want == NULL) {
		cr_assert_not(found, "%s should be absent", key);
		return;
	}
	cr_assert(found, "%s should be present", key);
	cr_assert_not_null(v.p);
	cr_assert_eq(v.len, strlen(want), "%s: len %u, want %zu", key, v.len, strlen(want));
	cr_assert_eq(memcmp(v.p, want, v.len), 0, "%s: got %.*s", key, (int)v.len, v.p);
}

Test(form, pairs_and_shapes)
{
	struct form f;

	form_init(&f, scratch, sizeof(scratch));
	parse_ok(&f, "serviceName=svc&ip=1.2.3.4&port=8080");
	cr_assert_eq(f.n, 3);
	expect(&f, "serviceName", "svc");
	expect(&f, "ip", "1.2.3.4");
	expect(&f, "port", "8080");
	expect(&f, "Port", NULL); /* case-sensitive */
	expect(&f, "por", NULL);
	expect(&f, "portx", NULL);
}

Test(form, empty_pieces_and_keys_without_values)
{
	struct form f;

	form_init(&f, scratch, sizeof(scratch));
	parse_ok(&f, "&a=1&&b=2&&&flag&=orphan&c=&");
	cr_assert_eq(f.n, 4); /* a, b, flag, c: empty pieces and "=orphan" skipped */
	expect(&f, "a", "1");
	expect(&f, "b", "2");
	expect(&f, "flag", ""); /* no '=': present and empty */
	expect(&f, "c", "");
	expect(&f, "", NULL);
	parse_ok(&f, "");
	parse_ok(&f, "&&&");
	cr_assert_eq(f.n, 4);
}

Test(form, value_keeps_later_equals_signs)
{
	struct form f;

	form_init(&f, scratch, sizeof(scratch));
	parse_ok(&f, "metadata=a=1,b=2&x==");
	expect(&f, "metadata", "a=1,b=2");
	expect(&f, "x", "=");
}

Test(form, plus_and_percent)
{
	struct form f;

	form_init(&f, scratch, sizeof(scratch));
	parse_ok(&f, "a=x+y&b=x%2By&c=%2b%2B+&d%20e=%41%62%7e&g+h=1");
	expect(&f, "a", "x y");
	expect(&f, "b", "x+y");
	expect(&f, "c", "++ ");
	expect(&f, "d e", "Ab~");
	expect(&f, "g h", "1");
	/* An encoded '&' and '=' are data, not separators. */
	parse_ok(&f, "k%3D1=v%26w%3Dz");
	expect(&f, "k=1", "v&w=z");
}

Test(form, decodes_any_byte)
{
	struct form f;
	struct store_str v;

	form_init(&f, scratch, sizeof(scratch));
	parse_ok(&f, "n=a%00b&u=%E4%BD%A0%ff");
	cr_assert(form_get(&f, "n", &v));
	cr_assert_eq(v.len, 3);
	cr_assert_eq(memcmp(v.p, "a\0b", 3), 0);
	cr_assert(form_get(&f, "u", &v));
	cr_assert_eq(v.len, 4);
	cr_assert_eq(memcmp(v.p, "\xe4\xbd\xa0\xff", 4), 0);
}

Test(form, bad_escapes_refused_and_rolled_back)
{
	static const char *bad[] = { "a=%",  "a=%4",    "a=%zz", "a=%4g",  "a=%g4", "%=1",
		                     "%2=1", "b=1&a=%", "a=1%",  "a=%%41", "a=%-1", "a=% 1" };
	struct form f;

	form_init(&f, scratch, sizeof(scratch));
	parse_ok(&f, "keep=1");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t used = f.used;

		cr_assert_eq(form_parse(&f, bad[i], strlen(bad[i])), -ERR_INVAL, "%s", bad[i]);
		cr_assert_eq(f.n, 1, "%s left params behind", bad[i]);
		cr_assert_eq(f.used, used, "%s left scratch used", bad[i]);
	}
	expect(&f, "keep", "1");
	expect(&f, "b", NULL);
}

Test(form, first_occurrence_wins_query_then_body)
{
	struct form f;

	form_init(&f, scratch, sizeof(scratch));
	parse_ok(&f, "ip=1.1.1.1&port=80&ip=2.2.2.2");           /* the query */
	parse_ok(&f, "ip=3.3.3.3&beat=%7B%7D&port=81&weight=2"); /* then the body */
	expect(&f, "ip", "1.1.1.1");
	expect(&f, "port", "80");
	expect(&f, "beat", "{}");
	expect(&f, "weight", "2");
	cr_assert_eq(f.n, 7);
}

Test(form, blank_first_value_still_wins)
{
	struct form f;
	int err = 0;

	form_init(&f, scratch, sizeof(scratch));
	parse_ok(&f, "udpPort=&udpPort=99");
	expect(&f, "udpPort", "");
	/* The helpers treat blank as absent: the default, not the later 99. */
	cr_assert_eq(form_get_int(&f, "udpPort", 0, 0, 65535, &err), 0);
	cr_assert_eq(err, 0);
}

Test(form, param_bound)
{
	struct form f;
	char s[1024];
	size_t len = 0;

	form_init(&f, scratch, sizeof(scratch));
	for (int i = 0; i < FORM_PARAMS_MAX; i++)
		len += (size_t)snprintf(s + len, sizeof(s) - len, "k%d=%d&", i, i);
	cr_assert_eq(form_parse(&f, s, len), 0);
	cr_assert_eq(f.n, FORM_PARAMS_MAX);
	expect(&f, "k63", "63");
	size_t used = f.used;
	cr_assert_eq(form_parse(&f, "one=more", 8), -ERR_TOO_BIG);
	cr_assert_eq(f.n, FORM_PARAMS_MAX);
	cr_assert_eq(f.used, used);
	/* Empty pieces do not count against the bound. */
	cr_assert_eq(form_parse(&f, "&&&=x&", 6), 0);

	/* 65 params in one call: refused whole. */
	form_init(&f, scratch, sizeof(scratch));
	len += (size_t)snprintf(s + len, sizeof(s) - len, "k64=64");
	cr_assert_eq(form_parse(&f, s, len), -ERR_TOO_BIG);
	cr_assert_eq(f.n, 0);
	cr_assert_eq(f.used, 0);
}

Test(form, scratch_bound)
{
	char small[8];
	struct form f;

	form_init(&f, small, sizeof(small));
	parse_ok(&f, "ab=cd");     /* 4 bytes */
	parse_ok(&f, "e=%66%67g"); /* 4 more: exactly full */
	cr_assert_eq(f.used, 8);
	expect(&f, "e", "fgg");
	cr_assert_eq(form_parse(&f, "h", 1), -ERR_TOO_BIG);
	cr_assert_eq(f.n, 2);
	/* A key longer than the whole scratch. */
	form_init(&f, small, sizeof(small));
	cr_assert_eq(form_parse(&f, "123456789=1", 11), -ERR_TOO_BIG);
	cr_assert_eq(f.n, 0);
	cr_assert_eq(f.used, 0);
	/* No scratch at all. */
	form_init(&f, NULL, 0);
	cr_assert_eq(form_parse(&f, "a=b", 3), -ERR_TOO_BIG);
	cr_assert_eq(form_parse(&f, "&&", 2), 0);
}

Test(form, parse_reads_only_len_bytes)
{
	struct form f;
	const char s[] = "a=1&b=2"; /* only "a=1&b" is given */

	form_init(&f, scratch, sizeof(scratch));
	cr_assert_eq(form_parse(&f, s, 5), 0);
	expect(&f, "a", "1");
	expect(&f, "b", "");
	cr_assert_eq(form_parse(&f, "c=%41", 4), -ERR_INVAL); /* "c=%4": truncated */
}

Test(form, unescape_alone)
{
	char out[16];

	cr_assert_eq(form_unescape("a+b%20c", 7, out, sizeof(out), true), 5);
	cr_assert_eq(memcmp(out, "a b c", 5), 0);
	cr_assert_eq(form_unescape("a+b%2Bc", 7, out, sizeof(out), false), 5);
	cr_assert_eq(memcmp(out, "a+b+c", 5), 0);
	cr_assert_eq(form_unescape("", 0, out, 0, true), 0);
	cr_assert_eq(form_unescape("%4", 2, out, sizeof(out), true), -ERR_INVAL);
	cr_assert_eq(form_unescape("%", 1, out, sizeof(out), true), -ERR_INVAL);
	cr_assert_eq(form_unescape("%x1", 3, out, sizeof(out), true), -ERR_INVAL);
	/* The output bound: exactly enough, then one short. */
	cr_assert_eq(form_unescape("%41%42c", 7, out, 3, true), 3);
	cr_assert_eq(form_unescape("%41%42c", 7, out, 2, true), -ERR_TOO_BIG);
	/* In place. */
	char in[] = "%68%69+x";
	cr_assert_eq(form_unescape(in, 8, in, 8, true), 4);
	cr_assert_eq(memcmp(in, "hi x", 4), 0);
}

Test(form, unescape_round_trip_every_byte)
{
	char enc[256 * 3 + 1], dec[256];
	size_t n = 0;

	for (int c = 0; c < 256; c++)
		n += (size_t)snprintf(enc + n, sizeof(enc) - n, "%%%02X", c);
	cr_assert_eq(form_unescape(enc, n, dec, sizeof(dec), true), 256);
	for (int c = 0; c < 256; c++)
		cr_assert_eq((unsigned char)dec[c], c);
}

Test(form, get_bool)
{
	struct form f;
	int err = 0;

	form_init(&f, scratch, sizeof(scratch));
	parse_ok(&f, "a=true&b=FALSE&c=TrUe&d=&e=+&f=yes&g=1&h=+true+&i=truex");
	cr_assert_eq(form_get_bool(&f, "a", false, &err), true);
	cr_assert_eq(form_get_bool(&f, "b", true, &err), false);
	cr_assert_eq(form_get_bool(&f, "c", false, &err), true);
	cr_assert_eq(form_get_bool(&f, "d", true, &err), true); /* blank: default */
	cr_assert_eq(form_get_bool(&f, "e", false, &err), false);
	cr_assert_eq(form_get_bool(&f, "h", false, &err), true); /* spaces around */
	cr_assert_eq(form_get_bool(&f, "absent", true, &err), true);
	cr_assert_eq(err, 0);
	cr_assert_eq(form_get_bool(&f, "f", true, &err), true);
	cr_assert_eq(err, -ERR_INVAL);
	err = 0;
	cr_assert_eq(form_get_bool(&f, "g", false, &err), false);
	cr_assert_eq(err, -ERR_INVAL);
	err = 0;
	form_get_bool(&f, "i", false, &err);
	cr_assert_eq(err, -ERR_INVAL);
	/* The error sticks through later successes. */
	cr_assert_eq(form_get_bool(&f, "a", false, &err), true);
	cr_assert_eq(err, -ERR_INVAL);
}

Test(form, get_int)
{
	struct form f;
	int err = 0;

	form_init(&f, scratch, sizeof(scratch));
	parse_ok(&f, "p=8080&n=-5&plus=%2B7&sp=+42+&z=0&big=9223372036854775807"
	             "&min=-9223372036854775808&over=9223372036854775808"
	             "&under=-9223372036854775809&f=1.5&x=12a&s=-&hex=0x10&blank=");
	cr_assert_eq(form_get_int(&f, "p", 0, 0, 65535, &err), 8080);
	cr_assert_eq(form_get_int(&f, "n", 0, -10, 10, &err), -5);
	cr_assert_eq(form_get_int(&f, "plus", 0, 0, 10, &err), 7);
	cr_assert_eq(form_get_int(&f, "sp", 0, 0, 100, &err), 42);
	cr_assert_eq(form_get_int(&f, "z", 9, 0, 100, &err), 0);
	cr_assert_eq(form_get_int(&f, "big", 0, INT64_MIN, INT64_MAX, &err), INT64_MAX);
	cr_assert_eq(form_get_int(&f, "min", 0, INT64_MIN, INT64_MAX, &err), INT64_MIN);
	cr_assert_eq(form_get_int(&f, "blank", 77, 0, 100, &err), 77);
	cr_assert_eq(form_get_int(&f, "absent", 78, 0, 100, &err), 78);
	cr_assert_eq(err, 0);
	static const char *bad[] = { "over", "under", "f", "x", "s", "hex" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = 0;
		cr_assert_eq(form_get_int(&f, bad[i], 5, INT64_MIN, INT64_MAX, &err), 5, "%s",
		             bad[i]);
		cr_assert_eq(err, -ERR_INVAL, "%s", bad[i]);
	}
	/* Range. */
	err = 0;
	cr_assert_eq(form_get_int(&f, "p", 1, 0, 8079, &err), 1);
	cr_assert_eq(err, -ERR_INVAL);
	err = 0;
	cr_assert_eq(form_get_int(&f, "n", 1, 0, 10, &err), 1);
	cr_assert_eq(err, -ERR_INVAL);
}

Test(form, get_double)
{
	struct form f;
	int err = 0;

	form_init(&f, scratch, sizeof(scratch));
	parse_ok(&f, "w=0.5&i=2&e=1e3&neg=-1.25&sp=+1.0+&nan=NaN&inf=inf&Inf=Infinity"
	             "&big=1e400&junk=1.0x&hex=0x10&dot=.&blank=&two=1..2&d=1.0d");
	cr_assert_float_eq(form_get_double(&f, "w", 1, &err), 0.5, 0);
	cr_assert_float_eq(form_get_double(&f, "i", 1, &err), 2.0, 0);
	cr_assert_float_eq(form_get_double(&f, "e", 1, &err), 1000.0, 0);
	cr_assert_float_eq(form_get_double(&f, "neg", 1, &err), -1.25, 0);
	cr_assert_float_eq(form_get_double(&f, "sp", 0, &err), 1.0, 0);
	cr_assert_float_eq(form_get_double(&f, "blank", 1.5, &err), 1.5, 0);
	cr_assert_float_eq(form_get_double(&f, "absent", 2.5, &err), 2.5, 0);
	cr_assert_eq(err, 0);
	static const char *bad[] = { "nan", "inf", "Inf", "big", "junk", "hex", "dot", "two", "d" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = 0;
		cr_assert_float_eq(form_get_double(&f, bad[i], 3.0, &err), 3.0, 0, "%s", bad[i]);
		cr_assert_eq(err, -ERR_INVAL, "%s", bad[i]);
	}
	/* Longer than the bounded copy. */
	char s[128] = "long=0.";
	memset(s + 7, '1', 80);
	s[87] = 0;
	parse_ok(&f, s);
	err = 0;
	form_get_double(&f, "long", 0, &err);
	cr_assert_eq(err, -ERR_INVAL);
}
