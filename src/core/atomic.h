/*
 * atomic.h - the few atomic accesses the lock-free structures use.
 *
 * GCC __atomic builtins on plain fields rather than _Atomic types, so a
 * struct can be written plainly by its single writer before it is published
 * and atomically afterwards. ThreadSanitizer understands these (it does not
 * understand ck_pr's inline assembly), which keeps the TSan build honest.
 */
#ifndef DISTRO_CORE_ATOMIC_H
#define DISTRO_CORE_ATOMIC_H

#define LOAD_RELAXED(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define LOAD_ACQUIRE(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE_RELAXED(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define STORE_RELEASE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

#define CACHELINE_BYTES 64

#endif
