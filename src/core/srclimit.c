/*
 * srclimit.c - connections per source address: see srclimit.h for the
 * why and the rules. Counters are plain uint32_t reached with __atomic
 * builtins (core/atomic.h's reasoning: TSan sees them), taken optimistically
 * (add, then undo when over the bound), so a count may read one high for
 * an instant while another thread backs out: that can only refuse, never
 * admit one too many.
 */
#include "core/srclimit.h"

#include "core/hash.h"
#include "core/mem.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

uint64_t srclimit_key(const struct sockaddr *sa, socklen_t len)
{
	uint8_t ip[16] = { 0 };

	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		ip[10] = ip[11] = 0xff;
		memcpy(ip + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		memcpy(ip, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else {
		return 0;
	}
	return XXH3_64bits(ip, sizeof(ip));
}

uint64_t srclimit_key_of_fd(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		return 0;
	return srclimit_key((const struct sockaddr *)&ss, len);
}

int srclimit_init(struct srclimit *l, uint32_t max)
{
	l->max = max;
	l->counts = NULL;
	if (max == 0)
		return 0;
	l->counts = mem_calloc(SRCLIMIT_BUCKETS, sizeof(l->counts[0]));
	return l->counts ? 0 : -ENOMEM;
}

void srclimit_free(struct srclimit *l)
{
	mem_free(l->counts);
	l->counts = NULL;
}

int64_t srclimit_take(struct srclimit *l, uint64_t key)
{
	uint32_t b = (uint32_t)(key & (SRCLIMIT_BUCKETS - 1));

	if (l->counts == NULL)
		return SRCLIMIT_NONE;
	if (__atomic_add_fetch(&l->counts[b], 1, __ATOMIC_RELAXED) > l->max) {
		__atomic_sub_fetch(&l->counts[b], 1, __ATOMIC_RELAXED);
		return -1;
	}
	return b;
}

void srclimit_put(struct srclimit *l, uint32_t bucket)
{
	if (bucket == SRCLIMIT_NONE || l->counts == NULL)
		return;
	__atomic_sub_fetch(&l->counts[bucket], 1, __ATOMIC_RELAXED);
}
