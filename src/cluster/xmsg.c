#include "cluster/xmsg.h"

#include "core/mem.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct xrecords *xmsg_records_new(uint8_t kind, uint32_t cap)
{
	struct xrecords *m;

	assert(kind == XM_SYNC || kind == XM_APPLY || kind == XM_LOAD || kind == XM_REPAIR);
	m = mem_alloc(sizeof(*m) + cap);
	if (m == NULL)
		return NULL;
	memset(m, 0, sizeof(*m));
	m->head.kind = kind;
	m->cap = cap;
	return m;
}

struct xtakeover *xmsg_takeover_new(void)
{
	struct xtakeover *t = mem_calloc(1, sizeof(*t));

	if (t)
		t->head.kind = XM_TAKEOVER;
	return t;
}

void xmsg_release(void *m)
{
	uint8_t kind = xmsg_kind(m);

	assert(kind != XM_PENDING);
	if ((kind == XM_LOAD || kind == XM_APPLY) && ((struct xrecords *)m)->done)
		__atomic_add_fetch(((struct xrecords *)m)->done, 1, __ATOMIC_RELEASE);
	mem_free(m);
}
