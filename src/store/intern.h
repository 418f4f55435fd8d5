/*
 * intern.h - one copy of each repeated string, and of each metadata map.
 *
 * A shard interns the names it stores (namespaces, groups, services,
 * clusters) and metadata keys and values, so a million instances of one
 * service share one copy of each name. Each interned object has a reference
 * count kept by the shard's writer; when it drops to zero the object leaves
 * the table and is retired through the epoch, because readers may still be
 * reading it.
 *
 * A metadata map is interned as a whole too: a sorted array of (key, value)
 * interned-string pairs. Sorting makes the map canonical, so the same map
 * given in any order is one object with one hash, and its hash is computed
 * from the content (not the pointers), so it is the same on every node.
 */
#ifndef DISTRO_STORE_INTERN_H
#define DISTRO_STORE_INTERN_H

#include "core/epoch.h"
#include "store/store.h"
#include "store/table.h"

#include <stdint.h>

struct istr {
	uint32_t refs;
	uint32_t len;
	uint64_t hash;
	char s[]; /* NUL-terminated */
};

struct meta_kv {
	const struct istr *key, *val;
};

struct store_meta {
	uint32_t refs;
	uint32_t n;
	uint64_t hash;  /* of the content, identical across nodes */
	uint32_t bytes; /* sum of key and value bytes */
	struct meta_kv kv[];
};

struct intern {
	struct table strs;
	struct table metas;
	struct epoch_rec *rec;
	uint64_t bytes; /* bytes held by interned objects */
};

uint64_t intern_hash(const char *p, uint32_t len);

int intern_init(struct intern *in, struct epoch_rec *rec);

/* Frees every object at once; no reader may remain. */
void intern_destroy(struct intern *in);

/* The interned copy of p[0..len) with one more reference, or NULL (out of memory). */
const struct istr *intern_str(struct intern *in, const char *p, uint32_t len);

/* Takes a reference to an object already held. */
void intern_ref(const struct istr *s);

/* Drops a reference; the last one retires the string. */
void intern_unref(struct intern *in, const struct istr *s);

/*
 * The interned map of kv[0..n) with one more reference. NULL map for n == 0.
 * Validates against the limits: -ERR_META_PAIRS, -ERR_META_LONG,
 * -ERR_META_KEY (empty, too long or repeated key), -ERR_NOMEM.
 */
int intern_meta(struct intern *in, const struct store_limits *lim, const struct store_kv *kv,
                uint32_t n, const struct store_meta **out);

/* A map's content hash recomputed from its bytes (checks the cached one). */
uint64_t intern_meta_hash_bytes(const struct store_meta *m);

/* Takes a reference to a map already held (NULL is fine). */
void intern_meta_ref(const struct store_meta *m);

void intern_meta_unref(struct intern *in, const struct store_meta *m);

#endif
