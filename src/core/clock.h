/*
 * clock.h - time sources, injectable for tests.
 *
 * Two clocks: a monotonic one for deadlines (heartbeat expiry) and the wall
 * clock for version stamps (hybrid logical clock), because versions must be
 * comparable across nodes while deadlines must never jump. A struct clock with
 * NULL functions means the real clocks; tests install their own to drive
 * expiry without sleeping.
 */
#ifndef DISTRO_CORE_CLOCK_H
#define DISTRO_CORE_CLOCK_H

#include <stdint.h>

struct clock {
	int64_t (*mono_ms)(void *ctx);
	int64_t (*wall_ms)(void *ctx);
	void *ctx;
};

/*
 * The monotonic clock in ms: coarse (one tick, a few ms, behind at worst;
 * the cheapest read), for deadlines of seconds. c NULL: the real clock.
 */
int64_t clock_mono_ms(const struct clock *c);

/* The wall clock in ms, precise: versions are stamped with it. c NULL: the real clock. */
int64_t clock_wall_ms(const struct clock *c);

/* The real wall clock in us, precise: for latencies measured across processes. */
int64_t clock_wall_us(void);

/*
 * The real monotonic clock, precise (a vDSO read, no system call): for
 * latencies and for windows shorter than the coarse clock's tick.
 */
int64_t clock_mono_us(void);
uint64_t clock_mono_ns(void);

#endif
