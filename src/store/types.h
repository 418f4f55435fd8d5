/*
 * types.h - the store's keys and values, as a client writes them.
 *
 * An instance's key (service names, cluster, address) and its replicated
 * value (weight, flags, heartbeat timing, metadata), a list filter, and the
 * bounds that define them: what the wire codec (proto/wire.h) reads and
 * writes, and so what the client library builds its requests from.
 *
 * Header only, on purpose: it is everything of the store that the client
 * library sees, and the client links none of the store's code. The store's
 * own state (records, views, cursors, the API) is in store.h, which
 * includes this. Strings are borrowed: nothing here owns memory.
 */
#ifndef DISTRO_STORE_TYPES_H
#define DISTRO_STORE_TYPES_H

#include "core/addr.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Slots are the address slots of core/addr.h, the unit of cluster responsibility. */
#define STORE_SLOT_BITS ADDR_SLOT_BITS
#define STORE_SLOTS     ADDR_SLOTS

#define STORE_WEIGHT_MAX   10000u
#define STORE_WEIGHT_SCALE 1000u /* weights are kept in thousandths: 1.5 -> 1500 */

/* A borrowed string. p == NULL means absent (the default applies where there is one). */
struct store_str {
	const char *p;
	uint32_t len;
};

struct store_svc_key {
	struct store_str ns;      /* default "public" */
	struct store_str group;   /* default "DEFAULT_GROUP" */
	struct store_str service; /* required */
};

struct store_key {
	struct store_svc_key svc;
	struct store_str cluster; /* default "DEFAULT" */
	struct addr addr;
};

struct store_kv {
	struct store_str key, val;
};

/* Heartbeat timing of an instance; a zero field takes the store default. */
struct store_timing {
	uint32_t interval_ms; /* how often the client beats (advice, replicated) */
	uint32_t timeout_ms;  /* unhealthy after this long without a beat */
	uint32_t delete_ms;   /* removed after this long without a beat */
};

/* The replicated value of an instance, as a client gives it. */
struct store_val {
	uint32_t weight_milli; /* 0..STORE_WEIGHT_MAX * STORE_WEIGHT_SCALE */
	bool healthy;
	bool enabled;
	bool ephemeral; /* false: never expired by missing heartbeats */
	const struct store_kv *meta;
	uint32_t meta_n;
	struct store_timing timing;
};

struct store_filter {
	const struct store_str *clusters; /* NULL or clusters_n == 0: every cluster */
	uint32_t clusters_n;
	bool healthy_only;
	bool enabled_only;
};

#ifdef __cplusplus
}
#endif

#endif
