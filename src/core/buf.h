/*
 * buf.h - a growable byte buffer with a consumed front.
 *
 * One shape for every place that queues bytes: a connection's input that
 * carries a partial frame between receives, its output waiting for a send,
 * a peer link's frames, a repair slot being collected. Bytes live in
 * p[off, len): writers append at len, readers consume from off. Growing
 * doubles the capacity (from BUF_FIRST_BYTES) and first reclaims the
 * consumed front, so a buffer that is drained as fast as it fills never
 * grows. Every reserve takes a ceiling: nothing grows without a bound.
 *
 * Not thread-safe: a buffer belongs to one thread.
 */
#ifndef DISTRO_CORE_BUF_H
#define DISTRO_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUF_FIRST_BYTES 16384

struct buf {
	uint8_t *p;
	size_t len; /* end of the written bytes */
	size_t cap;
	size_t off; /* bytes consumed from the front */
};

/*
 * Room for `more` bytes at p + len. False when the buffer would hold more
 * than max unconsumed bytes, or memory ran out; the buffer is then
 * unchanged. May move the bytes (pointers into p do not survive it).
 */
bool buf_reserve(struct buf *b, size_t more, size_t max);

/* Appends n bytes (buf_reserve's rule). */
bool buf_append(struct buf *b, const void *data, size_t n, size_t max);

/* Bytes written and not consumed yet. */
static inline size_t buf_used(const struct buf *b)
{
	return b->len - b->off;
}

/* Marks n bytes consumed; an emptied buffer starts again at 0 (no copy). */
static inline void buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

/* Empties the buffer, keeping its memory. */
static inline void buf_clear(struct buf *b)
{
	b->off = b->len = 0;
}

/* Frees the memory; the buffer is empty and usable again. */
void buf_free(struct buf *b);

#endif
