/*
 * libFuzzer target for the Nacos JSON layer (nacos/json.h). The input is
 * one control byte (the token, pair and scratch bounds to use) and then a
 * document, copied to a buffer of exactly its size so a read past it is
 * an ASan report. Every decoder runs on it: json_parse and a walk of all
 * tokens through json_str, json_next and json_obj_get; json_parse_meta,
 * json_parse_beat and json_parse_instances with tight bounds.
 *
 * Checks: results within their bounds and every decoded string inside the
 * used part of scratch; tokens inside the text and nested properly. Then
 * the writer: json_put_str of the input is always one valid JSON string
 * (our reader accepts it) with no raw control byte, < > & ' or invalid
 * UTF-8 in it, and reads back as the input exactly when the input is
 * valid UTF-8. Metadata decoded from the input, written by json_put_meta
 * and decoded again gives the same pairs.
 */
#include "nacos/json.h"

#include "core/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KV_MAX 16

static jsmntok_t toks[JSON_TOKENS_MAX];

/* An independent UTF-8 check (code points, not byte ranges): the reference for the writer. */
static bool valid_utf8(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint32_t cp, min;
		size_t k;

		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0)
			k = 1, cp = s[i] & 0x1f, min = 0x80;
		else if ((s[i] & 0xf0) == 0xe0)
			k = 2, cp = s[i] & 0x0f, min = 0x800;
		else if ((s[i] & 0xf8) == 0xf0)
			k = 3, cp = s[i] & 0x07, min = 0x10000;
		else
			return false;
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

static bool in_scratch(struct store_str s, const char *scratch, size_t cap)
{
	if (s.p == NULL)
		return true;
	if (s.len == 0)
		return true; /* may point at a static stand-in when there is no scratch */
	return s.p >= scratch && s.len <= cap && (size_t)(s.p - scratch) <= cap - s.len;
}

static void walk(const struct json_doc *d, size_t len, size_t cap)
{
	char *out = malloc(cap ? cap : 1);

	if (out == NULL)
		abort();
	for (int i = 0; i < d->n; i++) {
		const jsmntok_t *t = &d->t[i];
		int next = json_next(d, i), rc;

		if (t->start < 0 || t->end < t->start || (size_t)t->end > len)
			abort();
		if (next <= i || next > d->n)
			abort();
		for (int j = i + 1; j < next; j++) /* descendants lie inside */
			if (d->t[j].start < t->start || d->t[j].end > t->end)
				abort();
		rc = json_str(d, i, out, cap);
		if (t->type == JSMN_OBJECT || t->type == JSMN_ARRAY) {
			if (rc != -ERR_INVAL)
				abort();
		} else if (rc > (int)cap || (rc < 0 && rc != -ERR_TOO_BIG) ||
		           (rc < 0 && (size_t)(t->end - t->start) <= cap)) {
			abort(); /* the raw length always fits */
		}
		if (t->type == JSMN_OBJECT) {
			/* Every key of the object is found (the last of its name). */
			int k = i + 1;

			for (int c = 0; c < t->size; c++) {
				char key[64];
				int n = json_str(d, k, key, sizeof(key) - 1), v;

				if (n >= 0 && memchr(key, 0, (size_t)n) == NULL) {
					key[n] = 0;
					v = json_obj_get(d, i, key);
					if (v < k + 1 || v >= next)
						abort();
				}
				k = json_next(d, k + 1);
			}
		}
		{
			int64_t iv;
			double dv;

			if (json_int(d, i, 0, 65535, &iv) == 0 && (iv < 0 || iv > 65535))
				abort();
			json_double(d, i, &dv);
		}
	}
	free(out);
}

static void check_meta(const struct store_kv *kv, int n, uint32_t kv_max, const char *scratch,
                       size_t cap)
{
	if (n < 0) {
		if (n != -ERR_INVAL && n != -ERR_TOO_BIG)
			abort();
		return;
	}
	if ((uint32_t)n > kv_max)
		abort();
	for (int i = 0; i < n; i++) {
		if (!in_scratch(kv[i].key, scratch, cap) || !in_scratch(kv[i].val, scratch, cap) ||
		    kv[i].key.p == NULL || kv[i].val.p == NULL)
			abort();
		for (int j = 0; j < i; j++) /* keys unique: a repeat replaced its value */
			if (kv[j].key.len == kv[i].key.len &&
			    memcmp(kv[j].key.p, kv[i].key.p, kv[i].key.len) == 0)
				abort();
	}
}

/* json_put_meta then json_parse_meta gives the same pairs (for valid UTF-8). */
static void meta_round_trip(const struct store_kv *kv, int n)
{
	struct buf b = { 0 };
	struct store_kv kv2[KV_MAX];
	static char scratch2[1 << 16];
	int m;

	for (int i = 0; i < n; i++)
		if (!valid_utf8((const uint8_t *)kv[i].key.p, kv[i].key.len) ||
		    !valid_utf8((const uint8_t *)kv[i].val.p, kv[i].val.len))
			return;
	if (!json_put_meta(&b, kv, (uint32_t)n, 1 << 20))
		abort();
	m = json_parse_meta((const char *)b.p, b.len, kv2, KV_MAX, scratch2, sizeof(scratch2));
	if (m != n)
		abort();
	for (int i = 0; i < n; i++)
		if (kv2[i].key.len != kv[i].key.len || kv2[i].val.len != kv[i].val.len ||
		    memcmp(kv2[i].key.p, kv[i].key.p, kv[i].key.len) != 0 ||
		    memcmp(kv2[i].val.p, kv[i].val.p, kv[i].val.len) != 0)
			abort();
	buf_free(&b);
}

static void writer(const char *s, size_t len)
{
	struct buf b = { 0 };
	struct json_doc d;
	char *back;
	size_t whole;
	int n;

	if (!json_put_str(&b, s, len, 1 << 20))
		abort();
	for (size_t i = 0; i < b.len; i++) {
		uint8_t c = b.p[i];

		if (c < 0x20 || c == 0x7f || c == '<' || c == '>' || c == '&' || c == '\'')
			abort();
	}
	if (!valid_utf8(b.p, b.len))
		abort();
	if (json_parse(&d, (const char *)b.p, b.len, toks, 1) != 0 || d.n != 1 ||
	    d.t[0].type != JSMN_STRING)
		abort();
	back = malloc(b.len ? b.len : 1);
	if (back == NULL)
		abort();
	n = json_str(&d, 0, back, b.len);
	if (n < 0 || !valid_utf8((const uint8_t *)back, (size_t)n))
		abort();
	if (valid_utf8((const uint8_t *)s, len) &&
	    ((size_t)n != len || (len && memcmp(back, s, len) != 0)))
		abort();
	/* A bound one byte short fails and leaves the buffer as it was. */
	whole = b.len;
	if (json_put_str(&b, s, len, 2 * whole - 1) || b.len != whole)
		abort();
	free(back);
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct store_kv kv[KV_MAX];
	static struct json_inst inst[8];
	struct json_beat beat;
	struct json_doc d;
	unsigned max_toks;
	uint32_t kv_max;
	size_t cap;
	char *s, *scratch;
	int rc;

	if (size < 1)
		return 0;
	max_toks = (data[0] & 3) == 0 ? 4 : JSON_TOKENS_MAX;
	kv_max = (data[0] >> 2) & 15;
	cap = (data[0] & 0xc0) == 0 ? 8 : size; /* the input's length always suffices */
	data++, size--;
	s = malloc(size ? size : 1);
	scratch = malloc(cap ? cap : 1);
	if (s == NULL || scratch == NULL)
		abort();
	if (size)
		memcpy(s, data, size);

	rc = json_parse(&d, s, size, toks, max_toks);
	if (rc == 0) {
		if (d.n < 1 || (unsigned)d.n > max_toks || json_next(&d, 0) != d.n)
			abort();
		walk(&d, size, cap);
	} else if (rc != -ERR_INVAL && rc != -ERR_TOO_BIG) {
		abort();
	}

	rc = json_parse_meta(s, size, kv, kv_max, scratch, cap);
	check_meta(kv, rc, kv_max, scratch, cap);
	if (rc > 0)
		meta_round_trip(kv, rc);

	rc = json_parse_beat(s, size, &beat, kv, kv_max, scratch, cap);
	if (rc == 0) {
		if (!in_scratch(beat.service, scratch, cap) || !in_scratch(beat.ip, scratch, cap) ||
		    !in_scratch(beat.cluster, scratch, cap) || beat.port < -1 ||
		    beat.port > 65535 || beat.ephemeral < -1 || beat.ephemeral > 1 ||
		    beat.period_ms < -1 || !isfinite(beat.weight) ||
		    (!beat.has_meta && beat.meta_n != 0) || beat.meta != kv)
			abort();
		check_meta(kv, (int)beat.meta_n, kv_max, scratch, cap);
	} else if (rc != -ERR_INVAL && rc != -ERR_TOO_BIG && rc != -ERR_WEIGHT) {
		abort();
	}

	rc = json_parse_instances(s, size, inst, (uint32_t)kv_max % 9, scratch, cap);
	if (rc >= 0) {
		if (rc > (int)(kv_max % 9))
			abort();
		for (int i = 0; i < rc; i++)
			if (!in_scratch(inst[i].ip, scratch, cap) ||
			    !in_scratch(inst[i].cluster, scratch, cap) || inst[i].port < -1 ||
			    inst[i].port > 65535)
				abort();
	} else if (rc != -ERR_INVAL && rc != -ERR_TOO_BIG) {
		abort();
	}

	writer(s, size);
	free(scratch);
	free(s);
	return 0;
}
