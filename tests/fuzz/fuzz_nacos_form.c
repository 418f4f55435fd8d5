/*
 * libFuzzer target for Nacos request parameters (nacos/form.h). The input
 * is two control bytes (where the query ends and the body starts, and how
 * much scratch there is), then the bytes themselves, each part copied to
 * a buffer of exactly its size so a read past it is an ASan report.
 *
 * Checks form.h's promises: parameters stay within FORM_PARAMS_MAX and
 * their bytes within the used part of scratch; a failed form_parse leaves
 * the form as it was; form_get answers the first parameter of a name (the
 * query before the body); the typed getters never write err on success;
 * form_unescape never writes past cap and turns a percent-encoding of any
 * bytes back into those bytes.
 */
#include "nacos/form.h"

#include "core/err.h"

#include <stdlib.h>
#include <string.h>

static char *dup_exact(const uint8_t *p, size_t n)
{
	char *c = malloc(n ? n : 1);

	if (c == NULL)
		abort();
	if (n)
		memcpy(c, p, n);
	return c;
}

static bool within(const struct form *f, struct store_str s)
{
	return s.p != NULL && s.p >= f->scratch && s.len <= f->used &&
	       (size_t)(s.p - f->scratch) <= f->used - s.len;
}

static void check_form(const struct form *f)
{
	if (f->n > FORM_PARAMS_MAX || f->used > f->cap)
		abort();
	for (uint32_t i = 0; i < f->n; i++) {
		const struct form_param *p = &f->p[i];
		char key[256];
		struct store_str v;
		uint32_t j;

		if (!within(f, p->key) || !within(f, p->val) || p->key.len == 0)
			abort();
		if (p->key.len >= sizeof(key) || memchr(p->key.p, 0, p->key.len))
			continue; /* form_get takes a C string */
		memcpy(key, p->key.p, p->key.len);
		key[p->key.len] = 0;
		for (j = 0; j < i; j++)
			if (f->p[j].key.len == p->key.len &&
			    memcmp(f->p[j].key.p, p->key.p, p->key.len) == 0)
				break;
		/* The first parameter of the name answers. */
		if (!form_get(f, key, &v) || v.p != f->p[j].val.p || v.len != f->p[j].val.len)
			abort();
		{
			int err = 0;

			form_get_bool(f, key, false, &err);
			if (err != 0 && err != -ERR_INVAL)
				abort();
			err = 0;
			int64_t x = form_get_int(f, key, 7, -100, 100, &err);
			if (err == 0 ? (x < -100 || x > 100) : (err != -ERR_INVAL || x != 7))
				abort();
			err = 0;
			form_get_double(f, key, 1.5, &err);
			if (err != 0 && err != -ERR_INVAL)
				abort();
		}
	}
}

static void parse_part(struct form *f, const char *s, size_t len)
{
	uint32_t n = f->n;
	size_t used = f->used;
	int rc = form_parse(f, s, len);

	if (rc != 0) {
		if (rc != -ERR_INVAL && rc != -ERR_TOO_BIG)
			abort();
		if (f->n != n || f->used != used)
			abort(); /* rolled back */
	} else if (f->n < n || f->used < used || f->used - used > len) {
		abort(); /* decoding never lengthens */
	}
	check_form(f);
}

static void round_trip(const uint8_t *data, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	char *enc = malloc(size * 3 + 1), *dec = malloc(size + 1);
	size_t n = 0;
	int rc;

	if (enc == NULL || dec == NULL)
		abort();
	for (size_t i = 0; i < size; i++) {
		uint8_t c = data[i];

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')
			enc[n++] = (char)c;
		else if (c == ' ' && (i & 1))
			enc[n++] = '+';
		else {
			enc[n++] = '%';
			enc[n++] = hex[c >> 4];
			enc[n++] =
			        (i & 2) ? (char)(hex[c & 15] | 0x20) : hex[c & 15]; /* any case */
		}
	}
	rc = form_unescape(enc, n, dec, size, true);
	if (rc != (int)size || (size && memcmp(dec, data, size) != 0))
		abort();
	if (size > 0 && form_unescape(enc, n, dec, size - 1, true) != -ERR_TOO_BIG)
		abort();
	free(enc);
	free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct form f;
	size_t q, cap;
	char *query, *body, *scratch, *out;
	int rc;

	if (size < 2)
		return 0;
	q = data[0];
	cap = data[1];
	data += 2, size -= 2;
	q = size ? q % (size + 1) : 0;
	cap = cap == 0 ? size : cap % (size + 1); /* often enough, sometimes short */

	query = dup_exact(data, q);
	body = dup_exact(data + q, size - q);
	scratch = malloc(cap ? cap : 1);
	if (scratch == NULL)
		abort();
	form_init(&f, cap ? scratch : NULL, cap);
	parse_part(&f, query, q);
	parse_part(&f, body, size - q);

	/* form_unescape alone, with a tight output. */
	out = malloc(cap ? cap : 1);
	if (out == NULL)
		abort();
	rc = form_unescape(query, q, out, cap, (q & 1) != 0);
	if (rc > (int)cap || (rc < 0 && rc != -ERR_INVAL && rc != -ERR_TOO_BIG))
		abort();
	round_trip(data, size);

	free(out);
	free(scratch);
	free(query);
	free(body);
	return 0;
}
