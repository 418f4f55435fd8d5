#include "core/clock.h"

#include <time.h>

static int64_t ts_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_ms(const struct clock *c)
{
	if (c && c->mono_ms)
		return c->mono_ms(c->ctx);
	return ts_ms(CLOCK_MONOTONIC_COARSE);
}

int64_t clock_wall_ms(const struct clock *c)
{
	if (c && c->wall_ms)
		return c->wall_ms(c->ctx);
	/*
	 * Precise, not coarse: versions are stamped with it, and a coarse
	 * clock runs up to a tick (4 ms at HZ=250) behind - which would show
	 * as replication lag and make more versions tie on the logical part.
	 */
	return ts_ms(CLOCK_REALTIME);
}

int64_t clock_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t clock_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int64_t clock_mono_us(void)
{
	return (int64_t)(clock_mono_ns() / 1000);
}
