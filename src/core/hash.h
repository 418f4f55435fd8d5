/*
 * hash.h - xxHash (Debian's libxxhash-dev), inlined: the store hashes on
 * every operation, and the inline XXH3 is several times faster than a call
 * into the shared library for the short keys we hash.
 */
#ifndef DISTRO_CORE_HASH_H
#define DISTRO_CORE_HASH_H

#define XXH_INLINE_ALL
#include <xxhash.h>

#endif
