/*
 * jsondoc.c - the Nacos documents (metadata, beat, batch instances) on the
 * reader of nacos/json.c.
 *
 * Each decoder runs json_parse on a token array on its own stack
 * (JSON_TOKENS_MAX * 16 bytes = 8 KiB) and writes strings to the caller's
 * scratch through struct scratch, which never writes past its cap. The
 * rules (what Nacos accepts, what Jackson coerces) are in jsondoc.h.
 */
#include "nacos/jsondoc.h"

#include "core/err.h"
#include "nacos/json.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The caller's scratch: decoded strings are appended, never past cap. */
struct scratch {
	char *p;
	size_t used, cap;
};

static char no_scratch[1]; /* stands in for a NULL scratch: empty strings point here */

/* The text of tok (null as "") appended to the scratch, its place in *out. */
static int scratch_str(struct scratch *sc, const struct json_doc *d, int tok, struct store_str *out)
{
	int n = 0;

	if (!json_is_null(d, tok)) {
		n = json_str(d, tok, sc->p + sc->used, sc->cap - sc->used);
		if (n < 0)
			return n;
	}
	out->p = sc->p + sc->used;
	out->len = (uint32_t)n;
	sc->used += (size_t)n;
	return 0;
}

/* A string field: a string or another primitive (as Jackson coerces), null -> absent. */
static int field_str(struct scratch *sc, const struct json_doc *d, int tok, struct store_str *out)
{
	if (d->t[tok].type != JSMN_STRING && d->t[tok].type != JSMN_PRIMITIVE)
		return -ERR_INVAL;
	if (json_is_null(d, tok)) {
		out->p = NULL;
		out->len = 0;
		return 0;
	}
	return scratch_str(sc, d, tok, out);
}

static int field_port(const struct json_doc *d, int tok, int32_t *out)
{
	int64_t v;

	if (json_is_null(d, tok)) {
		*out = -1;
		return 0;
	}
	if (json_int(d, tok, 0, 65535, &v) < 0)
		return -ERR_INVAL;
	*out = (int32_t)v;
	return 0;
}

static bool str_eq(struct store_str a, struct store_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* The pairs of object token obj appended to kv[*n, kv_max), a repeated key replacing its value. */
static int meta_from_obj(const struct json_doc *d, int obj, struct store_kv *kv, uint32_t *n,
                         uint32_t kv_max, struct scratch *sc)
{
	int i = obj + 1;

	for (int k = 0; k < d->t[obj].size && i + 1 < d->n; k++) {
		int v = i + 1;
		size_t used0 = sc->used;
		struct store_str key, val;
		uint32_t j;
		int rc;

		if (d->t[v].type != JSMN_STRING && d->t[v].type != JSMN_PRIMITIVE)
			return -ERR_INVAL; /* a nested object or array */
		rc = scratch_str(sc, d, i, &key);
		if (rc < 0)
			return rc;
		for (j = 0; j < *n && !str_eq(kv[j].key, key); j++)
			;
		if (j < *n) {
			sc->used = used0; /* keep the first copy of the key */
			key = kv[j].key;
		} else if (*n >= kv_max) {
			return -ERR_TOO_BIG;
		}
		rc = scratch_str(sc, d, v, &val);
		if (rc < 0)
			return rc;
		kv[j].key = key;
		kv[j].val = val;
		if (j == *n)
			(*n)++;
		i = json_next(d, v);
	}
	return 0;
}

/* Appends s[0, len) to the scratch; its place in *out. */
static int scratch_copy(struct scratch *sc, const char *s, size_t len, struct store_str *out)
{
	if (len > sc->cap - sc->used)
		return -ERR_TOO_BIG;
	memcpy(sc->p + sc->used, s, len);
	out->p = sc->p + sc->used;
	out->len = (uint32_t)len;
	sc->used += len;
	return 0;
}

/*
 * Nacos's fallback, Java split semantics: s.split(",") drops trailing empty
 * pieces, and each piece's split("=") must give exactly two fields (again
 * after dropping trailing empty ones): "k=v", "=v" and "k=v==" pass.
 */
static int meta_legacy(const char *s, size_t len, struct store_kv *kv, uint32_t kv_max,
                       struct scratch *sc)
{
	uint32_t n = 0;
	size_t end = len;

	while (end > 0 && s[end - 1] == ',')
		end--; /* trailing empty pieces */
	for (size_t i = 0; i < end;) {
		const char *piece = s + i, *comma, *eq;
		size_t plen, vlen, j;
		struct store_str key, val;
		uint32_t m;
		int rc;

		comma = memchr(piece, ',', end - i);
		plen = comma ? (size_t)(comma - piece) : end - i;
		i += plen + 1;
		eq = memchr(piece, '=', plen);
		if (eq == NULL)
			return -ERR_INVAL;
		vlen = 0;
		while ((size_t)(eq + 1 - piece) + vlen < plen && eq[1 + vlen] != '=')
			vlen++;
		if (vlen == 0)
			return -ERR_INVAL;
		for (j = (size_t)(eq + 1 - piece) + vlen; j < plen; j++)
			if (piece[j] != '=')
				return -ERR_INVAL; /* a third field */
		rc = scratch_copy(sc, piece, (size_t)(eq - piece), &key);
		if (rc < 0)
			return rc;
		for (m = 0; m < n && !str_eq(kv[m].key, key); m++)
			;
		if (m == n) {
			if (n >= kv_max)
				return -ERR_TOO_BIG;
			kv[n++].key = key;
		}
		rc = scratch_copy(sc, eq + 1, vlen, &val);
		if (rc < 0)
			return rc;
		kv[m].val = val;
	}
	return (int)n;
}

static bool is_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' && s[i] != '\f' &&
		    s[i] != '\v')
			return false;
	return true;
}

int json_parse_meta(const char *s, size_t len, struct store_kv *kv, uint32_t kv_max, char *scratch,
                    size_t cap)
{
	jsmntok_t toks[JSON_TOKENS_MAX];
	struct scratch sc = { scratch ? scratch : no_scratch, 0, scratch ? cap : 0 };
	struct json_doc d;
	uint32_t n = 0;
	int rc;

	if (is_blank(s, len))
		return 0;
	rc = json_parse(&d, s, len, toks, JSON_TOKENS_MAX);
	if (rc == -ERR_INVAL)
		return meta_legacy(s, len, kv, kv_max, &sc);
	if (rc < 0)
		return rc;
	if (d.t[0].type != JSMN_OBJECT)
		return -ERR_INVAL;
	rc = meta_from_obj(&d, 0, kv, &n, kv_max, &sc);
	return rc < 0 ? rc : (int)n;
}

static int field_bool(const struct json_doc *d, int tok, int8_t *out)
{
	const jsmntok_t *t = &d->t[tok];
	const char *p = d->s + t->start;
	size_t n = (size_t)(t->end - t->start);

	if (t->type != JSMN_PRIMITIVE && t->type != JSMN_STRING)
		return -ERR_INVAL;
	if (t->type == JSMN_PRIMITIVE && p[0] == 'n') {
		*out = -1;
		return 0;
	}
	if (n == 4 && strncasecmp(p, "true", 4) == 0)
		*out = 1;
	else if (n == 5 && strncasecmp(p, "false", 5) == 0)
		*out = 0;
	else
		return -ERR_INVAL;
	return 0;
}

int json_parse_beat(const char *s, size_t len, struct json_beat *out, struct store_kv *kv,
                    uint32_t kv_max, char *scratch, size_t cap)
{
	jsmntok_t toks[JSON_TOKENS_MAX];
	struct scratch sc = { scratch ? scratch : no_scratch, 0, scratch ? cap : 0 };
	struct json_doc d;
	int rc, i;

	memset(out, 0, sizeof(*out));
	out->port = -1;
	out->weight = -1;
	out->ephemeral = -1;
	out->period_ms = -1;
	out->meta = kv;
	rc = json_parse(&d, s, len, toks, JSON_TOKENS_MAX);
	if (rc < 0)
		return rc;
	if (d.t[0].type != JSMN_OBJECT)
		return -ERR_INVAL;
	i = 1;
	for (int k = 0; k < d.t[0].size && i + 1 < d.n; k++) {
		int v = i + 1;

		if (json_key_eq(&d, i, "serviceName", 11))
			rc = field_str(&sc, &d, v, &out->service);
		else if (json_key_eq(&d, i, "ip", 2))
			rc = field_str(&sc, &d, v, &out->ip);
		else if (json_key_eq(&d, i, "cluster", 7))
			rc = field_str(&sc, &d, v, &out->cluster);
		else if (json_key_eq(&d, i, "port", 4))
			rc = field_port(&d, v, &out->port);
		else if (json_key_eq(&d, i, "ephemeral", 9))
			rc = field_bool(&d, v, &out->ephemeral);
		else if (json_key_eq(&d, i, "weight", 6)) {
			if (json_is_null(&d, v))
				out->weight = -1;
			else if (json_double(&d, v, &out->weight) < 0)
				rc = -ERR_INVAL;
			else if (out->weight < 0)
				rc = -ERR_WEIGHT;
		} else if (json_key_eq(&d, i, "period", 6)) {
			if (json_is_null(&d, v))
				out->period_ms = -1;
			else if (json_int(&d, v, 0, INT64_MAX, &out->period_ms) < 0)
				rc = -ERR_INVAL;
		} else if (json_key_eq(&d, i, "metadata", 8)) {
			out->meta_n = 0; /* a repeated key: the last one wins */
			out->has_meta = false;
			if (d.t[v].type == JSMN_OBJECT) {
				out->has_meta = true;
				rc = meta_from_obj(&d, v, kv, &out->meta_n, kv_max, &sc);
			} else if (!json_is_null(&d, v)) {
				rc = -ERR_INVAL;
			}
		}
		if (rc < 0)
			return rc;
		i = json_next(&d, v);
	}
	return 0;
}

int json_parse_instances(const char *s, size_t len, struct json_inst *out, uint32_t max,
                         char *scratch, size_t cap)
{
	jsmntok_t toks[JSON_TOKENS_MAX];
	struct scratch sc = { scratch ? scratch : no_scratch, 0, scratch ? cap : 0 };
	struct json_doc d;
	uint32_t n = 0;
	int rc, e;

	rc = json_parse(&d, s, len, toks, JSON_TOKENS_MAX);
	if (rc < 0)
		return rc;
	if (d.t[0].type != JSMN_ARRAY)
		return -ERR_INVAL;
	e = 1;
	for (int k = 0; k < d.t[0].size && e < d.n; k++, e = json_next(&d, e)) {
		struct json_inst *in;
		int i = e + 1;

		if (d.t[e].type != JSMN_OBJECT)
			return -ERR_INVAL;
		if (n >= max)
			return -ERR_TOO_BIG;
		in = &out[n++];
		in->ip.p = in->cluster.p = NULL;
		in->ip.len = in->cluster.len = 0;
		in->port = -1;
		for (int f = 0; f < d.t[e].size && i + 1 < d.n; f++) {
			int v = i + 1;

			if (json_key_eq(&d, i, "ip", 2))
				rc = field_str(&sc, &d, v, &in->ip);
			else if (json_key_eq(&d, i, "clusterName", 11))
				rc = field_str(&sc, &d, v, &in->cluster);
			else if (json_key_eq(&d, i, "port", 4))
				rc = field_port(&d, v, &in->port);
			if (rc < 0)
				return rc;
			i = json_next(&d, v);
		}
	}
	return (int)n;
}
