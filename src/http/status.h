/*
 * status.h - the admin port's status documents: GET /cluster (JSON) and
 * the /health decision.
 *
 * Both work on a snapshot the caller took with peer_status_read (relaxed
 * reads, never a lock), so they can be tested without a running cluster.
 * A NULL snapshot, or one with clustered false, is a standalone node.
 */
#ifndef DISTRO_HTTP_STATUS_H
#define DISTRO_HTTP_STATUS_H

#include "cluster/view.h"

#include <stddef.h>

/*
 * The largest /cluster document: every member with both addresses at the
 * worst JSON escaping (6 bytes a byte), plus every counter. The renderer
 * never writes more.
 */
#define STATUS_MEMBER_JSON_MAX (256 + 2 * 6 * MEMBER_ADDR_MAX)
#define STATUS_JSON_MAX        (4096 + MEMBERS_MAX * STATUS_MEMBER_JSON_MAX)

/* "UP", "SUSPICIOUS" or "DOWN" ("DOWN" for a value outside the enum). */
const char *status_health_name(enum peer_health h);

/*
 * Renders the /cluster document into a new buffer: *out (free with
 * mem_free) holds *len bytes, no terminator. Standalone:
 * {"clustered":false}. Clustered: self, ready, map_version, members (id,
 * addr, client_addr, self, health, ready, slots, last_rx_ms — null when
 * nothing ever arrived — and backlog_bytes) and stats (every PEER_STATS
 * counter by its name). At most st->n, and never more than MEMBERS_MAX,
 * members. 0 or -ERR_NOMEM. O(members + counters); allocates
 * STATUS_JSON_MAX once.
 */
int status_cluster_json(const struct peer_status *st, char **out, size_t *len);

/*
 * The /health answer: 200 and {"status":"UP"} for a standalone node or a
 * READY member; 503 and {"status":"not ready"} for a member that is not
 * READY yet (still loading, or waiting for its peers). *body is static.
 */
unsigned status_health(const struct peer_status *st, const char **body, size_t *len);

#endif
