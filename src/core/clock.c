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
	return ts_ms(CLOCK_REALTIME_COARSE);
}
