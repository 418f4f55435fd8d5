/*
 * wire_internal.h - the fixed-size writers, inline, for the encoders of
 * proto/: wire.c and view.c.
 *
 * proto_wr_u8 .. proto_wr_u64 are out-of-line functions for everyone else;
 * the encoders here write with these inline copies instead, so that an
 * encoder in view.c compiles to what it did when it was in wire.c (a list
 * entry is a dozen fixed fields, written once per instance of an answer).
 * Same rule as the public writers: once a writer overflows, nothing more
 * is written.
 */
#ifndef DISTRO_PROTO_WIRE_INTERNAL_H
#define DISTRO_PROTO_WIRE_INTERNAL_H

#include "proto/wire.h"

#include <endian.h>
#include <string.h>

/* The next n bytes of the output, or NULL (the writer then overflows). */
static inline uint8_t *wr_take(struct proto_wr *w, size_t n)
{
	uint8_t *p = w->p;

	if (w->overflow || (size_t)(w->end - w->p) < n) {
		w->overflow = true;
		return NULL;
	}
	w->p += n;
	return p;
}

static inline void wr_u8(struct proto_wr *w, uint8_t v)
{
	uint8_t *p = wr_take(w, 1);

	if (p)
		p[0] = v;
}

static inline void wr_u16(struct proto_wr *w, uint16_t v)
{
	uint8_t *p = wr_take(w, 2);

	v = htole16(v);
	if (p)
		memcpy(p, &v, 2);
}

static inline void wr_u32(struct proto_wr *w, uint32_t v)
{
	uint8_t *p = wr_take(w, 4);

	v = htole32(v);
	if (p)
		memcpy(p, &v, 4);
}

static inline void wr_u64(struct proto_wr *w, uint64_t v)
{
	uint8_t *p = wr_take(w, 8);

	v = htole64(v);
	if (p)
		memcpy(p, &v, 8);
}

static inline void wr_timing(struct proto_wr *w, const struct store_timing *t)
{
	wr_u32(w, t->interval_ms);
	wr_u32(w, t->timeout_ms);
	wr_u32(w, t->delete_ms);
}

#endif
