#include "core/buf.h"

#include "core/mem.h"

#include <string.h>

bool buf_reserve(struct buf *b, size_t more, size_t max)
{
	size_t cap;
	uint8_t *n;

	if (b->off > 0 && b->off == b->len)
		b->off = b->len = 0;
	if (buf_used(b) + more > max)
		return false;
	if (b->len + more <= b->cap)
		return true;
	if (b->off > 0) { /* reclaim the consumed front before growing */
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->len + more <= b->cap)
			return true;
	}
	cap = b->cap ? b->cap : BUF_FIRST_BYTES;
	while (cap < b->len + more)
		cap *= 2;
	n = mem_alloc(cap);
	if (n == NULL)
		return false;
	if (b->len)
		memcpy(n, b->p, b->len);
	mem_free(b->p);
	b->p = n;
	b->cap = cap;
	return true;
}

bool buf_append(struct buf *b, const void *data, size_t n, size_t max)
{
	if (!buf_reserve(b, n, max))
		return false;
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	return true;
}

void buf_free(struct buf *b)
{
	mem_free(b->p);
	memset(b, 0, sizeof(*b));
}
