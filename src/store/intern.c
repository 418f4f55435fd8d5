#include "store/intern.h"

#include "core/err.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>
#include "core/hash.h"

#define INTERN_SEED 0x64697374726fULL /* "distro" */

uint64_t intern_hash(const char *p, uint32_t len)
{
	return XXH3_64bits_withSeed(p, len, INTERN_SEED);
}

int intern_init(struct intern *in, struct epoch_rec *rec)
{
	int rc = table_init(&in->strs, 6);

	if (rc < 0)
		return rc;
	rc = table_init(&in->metas, 4);
	if (rc < 0) {
		table_destroy(&in->strs);
		return rc;
	}
	in->rec = rec;
	in->bytes = 0;
	return 0;
}

static void destroy_all(struct table *t)
{
	struct table_arr *a = t->arr;

	for (uint64_t i = 0; i < ((uint64_t)1 << a->bits); i++)
		if (a->e[i] != TABLE_EMPTY && a->e[i] != TABLE_TOMB)
			mem_free(table_obj(a->e[i]));
	table_destroy(t);
}

void intern_destroy(struct intern *in)
{
	destroy_all(&in->metas);
	destroy_all(&in->strs);
}

struct str_key {
	const char *p;
	uint32_t len;
};

static bool str_eq(const void *obj, const void *key)
{
	const struct istr *s = obj;
	const struct str_key *k = key;

	return s->len == k->len && memcmp(s->s, k->p, k->len) == 0;
}

static uint64_t str_rehash(const void *obj)
{
	return ((const struct istr *)obj)->hash;
}

const struct istr *intern_str(struct intern *in, const char *p, uint32_t len)
{
	uint64_t h = intern_hash(p, len);
	struct str_key key = { p, len };
	struct istr *s = table_find(&in->strs, h, str_eq, &key);

	if (s) {
		s->refs++;
		return s;
	}
	s = mem_alloc(sizeof(*s) + len + 1);
	if (s == NULL)
		return NULL;
	s->refs = 1;
	s->len = len;
	s->hash = h;
	memcpy(s->s, p, len);
	s->s[len] = '\0';
	if (table_insert(&in->strs, in->rec, h, s, str_rehash) < 0) {
		mem_free(s);
		return NULL;
	}
	in->bytes += sizeof(*s) + len + 1;
	return s;
}

void intern_ref(const struct istr *s)
{
	((struct istr *)s)->refs++;
}

static void obj_free(void *ctx, void *obj)
{
	(void)ctx;
	mem_free(obj);
}

void intern_unref(struct intern *in, const struct istr *cs)
{
	struct istr *s = (struct istr *)cs;

	if (s == NULL || --s->refs > 0)
		return;
	table_remove(&in->strs, s->hash, s);
	in->bytes -= sizeof(*s) + s->len + 1;
	epoch_retire(in->rec, obj_free, NULL, s);
}

/* ---- metadata maps ---- */

static int kv_cmp(const void *a, const void *b)
{
	const struct meta_kv *x = a, *y = b;
	uint32_t n = x->key->len < y->key->len ? x->key->len : y->key->len;
	int c = memcmp(x->key->s, y->key->s, n);

	if (c != 0)
		return c;
	return (x->key->len > y->key->len) - (x->key->len < y->key->len);
}

/* Content hash: over the (key hash, value hash) pairs in key order. */
static uint64_t meta_pair_chain(uint64_t h, uint64_t key_hash, uint64_t val_hash)
{
	uint64_t pair[2] = { key_hash, val_hash };

	return XXH3_64bits_withSeed(pair, sizeof(pair), h);
}

static uint64_t meta_content_hash(const struct meta_kv *kv, uint32_t n)
{
	uint64_t h = INTERN_SEED;

	for (uint32_t i = 0; i < n; i++)
		h = meta_pair_chain(h, kv[i].key->hash, kv[i].val->hash);
	return h;
}

uint64_t intern_meta_hash_bytes(const struct store_meta *m)
{
	uint64_t h = INTERN_SEED;

	for (uint32_t i = 0; i < m->n; i++)
		h = meta_pair_chain(h, intern_hash(m->kv[i].key->s, m->kv[i].key->len),
		                    intern_hash(m->kv[i].val->s, m->kv[i].val->len));
	return h;
}

static bool meta_eq(const void *obj, const void *key)
{
	const struct store_meta *m = obj, *k = key;

	return m->n == k->n && memcmp(m->kv, k->kv, sizeof(m->kv[0]) * m->n) == 0;
}

static uint64_t meta_rehash(const void *obj)
{
	return ((const struct store_meta *)obj)->hash;
}

static void meta_release_pairs(struct intern *in, struct meta_kv *kv, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		intern_unref(in, kv[i].key);
		intern_unref(in, kv[i].val);
	}
}

int intern_meta(struct intern *in, const struct store_limits *lim, const struct store_kv *kv,
                uint32_t n, const struct store_meta **out)
{
	struct store_meta *m, *found;
	uint64_t bytes = 0;
	uint32_t i;

	*out = NULL;
	if (n == 0)
		return 0;
	if (n > lim->meta_pairs_max)
		return -ERR_META_PAIRS;
	for (i = 0; i < n; i++) {
		if (kv[i].key.p == NULL || kv[i].key.len == 0 ||
		    kv[i].key.len > lim->meta_key_bytes_max)
			return -ERR_META_KEY;
		if (kv[i].val.p == NULL && kv[i].val.len != 0)
			return -ERR_INVAL;
		bytes += (uint64_t)kv[i].key.len + kv[i].val.len;
	}
	if (bytes > lim->meta_bytes_max)
		return -ERR_META_LONG;

	m = mem_alloc(sizeof(*m) + sizeof(m->kv[0]) * n);
	if (m == NULL)
		return -ERR_NOMEM;
	m->refs = 1;
	m->n = 0;
	m->bytes = (uint32_t)bytes;
	for (i = 0; i < n; i++) {
		m->kv[i].key = intern_str(in, kv[i].key.p, kv[i].key.len);
		m->kv[i].val =
		        m->kv[i].key ? intern_str(in, kv[i].val.p ? kv[i].val.p : "", kv[i].val.len)
		                     : NULL;
		if (m->kv[i].val == NULL) {
			intern_unref(in, m->kv[i].key);
			meta_release_pairs(in, m->kv, i);
			mem_free(m);
			return -ERR_NOMEM;
		}
	}
	m->n = n;
	qsort(m->kv, n, sizeof(m->kv[0]), kv_cmp);
	for (i = 1; i < n; i++) {
		if (m->kv[i].key == m->kv[i - 1].key) {
			meta_release_pairs(in, m->kv, n);
			mem_free(m);
			return -ERR_META_KEY;
		}
	}
	m->hash = meta_content_hash(m->kv, n);

	found = table_find(&in->metas, m->hash, meta_eq, m);
	if (found) {
		meta_release_pairs(in, m->kv, n);
		mem_free(m);
		found->refs++;
		*out = found;
		return 0;
	}
	if (table_insert(&in->metas, in->rec, m->hash, m, meta_rehash) < 0) {
		meta_release_pairs(in, m->kv, n);
		mem_free(m);
		return -ERR_NOMEM;
	}
	in->bytes += sizeof(*m) + sizeof(m->kv[0]) * n;
	*out = m;
	return 0;
}

void intern_meta_ref(const struct store_meta *m)
{
	if (m)
		((struct store_meta *)m)->refs++;
}

void intern_meta_unref(struct intern *in, const struct store_meta *cm)
{
	struct store_meta *m = (struct store_meta *)cm;

	if (m == NULL || --m->refs > 0)
		return;
	table_remove(&in->metas, m->hash, m);
	in->bytes -= sizeof(*m) + sizeof(m->kv[0]) * m->n;
	meta_release_pairs(in, m->kv, m->n);
	epoch_retire(in->rec, obj_free, NULL, m);
}
