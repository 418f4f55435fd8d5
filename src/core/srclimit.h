/*
 * srclimit.h - connections per source address, bounded.
 *
 * One client host must not be able to take every connection slot of a
 * port (a slowloris, a runaway pool, a connection storm from one box): so
 * each accept asks srclimit_take for one more connection of its source
 * address, and gives it back with srclimit_put when the connection ends.
 *
 * The count lives in a fixed table of counters indexed by a hash of the
 * address (IPv4 as its mapped IPv6 form, so one host counts once however
 * it connects; the port is not part of it). A table, not a map: taking and
 * giving back is one atomic add, from any thread, with no lock and no
 * allocation, so the workers of one port share one table and the bound is
 * per node, not per worker (SO_REUSEPORT spreads one source's connections
 * over every worker). The price is that two sources whose hashes meet in
 * one counter share its bound: with SRCLIMIT_BUCKETS counters that is one
 * chance in 65,536 for any two sources, and a refusal it causes is counted
 * like any other. Always errs towards refusing, never towards letting a
 * source past its bound.
 *
 * Bounds: SRCLIMIT_BUCKETS counters (256 KiB), allocated once at init.
 */
#ifndef DISTRO_CORE_SRCLIMIT_H
#define DISTRO_CORE_SRCLIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define SRCLIMIT_BUCKETS (1u << 16)
#define SRCLIMIT_NONE    UINT32_MAX /* "holds no count": what srclimit_take gives when off */

struct srclimit {
	uint32_t max;     /* connections per source; 0: no bound (nothing counted) */
	uint32_t *counts; /* SRCLIMIT_BUCKETS counters, atomic */
};

/* The 64-bit key of a socket address's host part (IPv4 folded into IPv6 form). */
uint64_t srclimit_key(const struct sockaddr *sa, socklen_t len);

/* The key of the peer of a connected socket; 0 when it cannot be read. */
uint64_t srclimit_key_of_fd(int fd);

/* A table for max connections per source (0: off, no memory). 0 or -ENOMEM. */
int srclimit_init(struct srclimit *l, uint32_t max);

void srclimit_free(struct srclimit *l);

/*
 * One more connection of the source with this key. Returns the bucket to
 * give back later (SRCLIMIT_NONE when the bound is off), or -1 when the
 * source is at its bound (nothing taken). Any thread; one atomic add.
 */
int64_t srclimit_take(struct srclimit *l, uint64_t key);

/* Gives back what srclimit_take returned (SRCLIMIT_NONE: nothing). Any thread. */
void srclimit_put(struct srclimit *l, uint32_t bucket);

#endif
