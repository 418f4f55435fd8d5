/*
 * distro/client.h - the C client library for distrod.
 *
 * A client is one TCP connection to one node, used by one thread at a time.
 * Calls block until the node answers (or the timeout passes). If the
 * connection breaks, the next call reconnects (with backoff) before it
 * sends; a call that failed on a broken connection returns DISTRO_EIO and
 * may be retried: register, deregister and heartbeat are idempotent.
 *
 * distro_keepalive_start runs automatic heartbeats for instances in a
 * background thread with its own connection, re-sending the whole instance
 * so that a node that lost it (restart, expiry) re-creates it.
 *
 * Errors: functions return 0 (or a count) on success and a negative code on
 * failure: -DISTRO_E* below for the library's own failures, or the negated
 * server error code (see docs/protocol.md). distro_strerror names any of them.
 */
#ifndef DISTRO_CLIENT_H
#define DISTRO_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The binary protocol's port; 8848 is the Nacos HTTP API (docs/http.md, "Ports"). */
#define DISTRO_DEFAULT_PORT 8850

/* Library errors (server codes are below 1000). */
enum {
	DISTRO_EIO = 1001, /* connection failed or broke */
	DISTRO_ETIMEDOUT = 1002,
	DISTRO_EPROTO = 1003, /* the node answered something malformed */
	DISTRO_EINVAL = 1004, /* bad argument (address, too many instances...) */
	DISTRO_ENOMEM = 1005,
};

/* Server codes a caller may want to tell apart (docs/protocol.md, "Errors"). */
enum {
	DISTRO_EAUTH_REQUIRED = 33, /* the node has authentication on: distro_auth_* first */
	DISTRO_EAUTH_EXPIRED = 41,  /* the token expired: log in again for a new one */
	DISTRO_EAUTH_REFUSED = 43,  /* unknown user, wrong password or bad token */
	DISTRO_EBUSY = 29,          /* the node asks to retry */
};

struct distro_client;

struct distro_kv {
	const char *key;
	const char *val;
};

/* An instance. NULL names take the defaults (public, DEFAULT_GROUP, DEFAULT). */
struct distro_instance {
	const char *ns;
	const char *group;
	const char *service; /* required */
	const char *cluster;
	const char *ip; /* IPv4 or IPv6 text */
	uint16_t port;
	double weight; /* 0..10000 (0: receives no traffic); distro_instance_init sets 1 */
	bool healthy;
	bool enabled;
	bool ephemeral;
	const struct distro_kv *meta;
	uint32_t meta_n;
	uint32_t interval_ms, timeout_ms, delete_ms; /* 0 = the node's default */
};

/* Weight 1, healthy, enabled, ephemeral, everything else default. */
void distro_instance_init(struct distro_instance *i);

/* An instance in a list answer; strings valid during the callback only. */
struct distro_entry {
	const char *cluster;
	char ip[46];
	uint16_t port;
	double weight;
	bool healthy;
	bool enabled;
	bool ephemeral;
	uint32_t interval_ms, timeout_ms, delete_ms;
	const struct distro_kv *meta;
	uint32_t meta_n;
};

struct distro_list_opts {
	const char *const *clusters; /* NULL: all */
	uint32_t clusters_n;
	bool healthy_only;
	bool include_disabled;
};

typedef void distro_entry_fn(void *ctx, const struct distro_entry *e);

/* "host:port", "host" (DISTRO_DEFAULT_PORT), "[v6]:port". Timeout 0 = 5000 ms. */
int distro_connect(const char *addr, uint32_t timeout_ms, struct distro_client **out);
void distro_close(struct distro_client *c);

/*
 * Batched writes: n instances in one frame (n <= 1024). results[i] (may be
 * NULL) gets each item's outcome: 0 unchanged, 1 changed, 2 created, or a
 * negative error code. Returns 0 when the frame was answered (items may
 * still have failed: see results), or a negative code.
 */
int distro_register(struct distro_client *c, const struct distro_instance *in, uint32_t n,
                    int *results);
int distro_deregister(struct distro_client *c, const struct distro_instance *in, uint32_t n,
                      int *results);
int distro_heartbeat(struct distro_client *c, const struct distro_instance *in, uint32_t n,
                     int *results);

/*
 * Lists a service: calls fn for each instance. Returns how many were listed,
 * or a negative code. *revision (may be NULL) gets the service's revision.
 */
int distro_list(struct distro_client *c, const char *ns, const char *group, const char *service,
                const struct distro_list_opts *opts, distro_entry_fn *fn, void *ctx,
                uint64_t *revision);

/*
 * Subscriptions. fn gets the service's whole current list (filtered) at
 * once, then again after every change (changes within the node's push
 * window come as one call), with the service's revision. Pushes are read
 * by distro_poll and by any other call on the client. After a reconnect
 * every subscription is renewed (fn gets the list again). Returns 0 and the
 * subscription's id in *id, or a negative code.
 */
typedef void distro_push_fn(void *ctx, uint32_t id, uint64_t revision,
                            const struct distro_entry *entries, uint32_t n);

int distro_subscribe(struct distro_client *c, const char *ns, const char *group,
                     const char *service, const struct distro_list_opts *opts, distro_push_fn *fn,
                     void *ctx, uint32_t *id);
int distro_unsubscribe(struct distro_client *c, uint32_t id);

/* Waits up to timeout_ms for pushes and delivers them. Returns how many, or a negative code. */
int distro_poll(struct distro_client *c, int timeout_ms);

/*
 * Authentication, for a node started with --auth-users (docs/protocol.md,
 * "Authentication"). Proves this connection with a token (the accessToken
 * of a Nacos login, POST /nacos/v1/auth/users/login) or with a user's
 * password, now, and remembers the credentials: after a reconnect they are
 * sent again before anything else, and the client's own extra connections
 * (distro_keepalive_start, distro_route_enable) use them too. Returns 0; a
 * node without authentication also answers 0. -DISTRO_EAUTH_REFUSED or
 * -DISTRO_EAUTH_EXPIRED when the node refuses (the credentials are then
 * forgotten); a transport error keeps them for the next call. The first
 * check of a password the node has not seen since it started costs it a
 * bcrypt: tens of ms. The client keeps the password in memory until
 * distro_close (which wipes it) or the next distro_auth_* call.
 */
int distro_auth_token(struct distro_client *c, const char *token);
int distro_auth_password(struct distro_client *c, const char *user, const char *password);

int distro_ping(struct distro_client *c);

/* The node's counters as text ("name value" lines), NUL-terminated. Returns length. */
int distro_stats(struct distro_client *c, char *buf, size_t len);

/*
 * Automatic heartbeats: every interval_ms (0 = 5000) a background thread
 * beats the given instances (copied) on its own connection to addr. One
 * keepalive per client handle; stopped by distro_keepalive_stop or
 * distro_close.
 */
int distro_keepalive_start(struct distro_client *c, const struct distro_instance *in, uint32_t n,
                           uint32_t interval_ms);
void distro_keepalive_stop(struct distro_client *c);

/*
 * The cluster's slot map (SLOT_MAP, docs/protocol.md): who the members are,
 * how this node sees them, and which member owns each of the 16384 slots.
 * A smart client sends a write straight to its slot's owner (any node
 * accepts any write: a stale map costs a forward, never an error).
 */
#define DISTRO_SLOTS       16384
#define DISTRO_MEMBERS_MAX 64
#define DISTRO_ADDR_MAX    64 /* longest address text, with its terminator */

enum distro_health { DISTRO_DOWN = 0, DISTRO_SUSPICIOUS = 1, DISTRO_UP = 2 };

struct distro_member {
	uint16_t id;                       /* 1..64; ids number cluster.conf in address order */
	uint8_t health;                    /* enum distro_health, as the answering node sees it */
	bool ready;                        /* the member said it is READY */
	char addr[DISTRO_ADDR_MAX];        /* peer address, as in cluster.conf */
	char client_addr[DISTRO_ADDR_MAX]; /* host:port for clients; "" until learned */
};

struct distro_slot_map {
	uint64_t version; /* grows with every change of the answering node's map */
	uint16_t self_id; /* the answering node's member id (0: standalone) */
	bool ready;       /* the answering node is READY */
	uint32_t n;       /* members; 0: standalone (owners all 0) */
	struct distro_member m[DISTRO_MEMBERS_MAX];
	uint16_t owners[DISTRO_SLOTS]; /* member id owning each slot; 0: nobody */
};

/*
 * Asks the node for its slot map and decodes it into *out (about 40 KiB:
 * not for the stack of a small thread). 0, or a negative code;
 * -DISTRO_EPROTO when the answer is malformed (see distro_slot_map_decode).
 */
int distro_slot_map(struct distro_client *c, struct distro_slot_map *out);

/*
 * Decodes a SLOT_MAP answer body of len bytes whose frame header said
 * `count` members. Every field is checked: member count, ids (1..64,
 * unique), health, READY flag, address lengths and bytes (printable, not
 * empty for the peer address), the answering node's own id, every owner
 * (0 or a listed member) and the exact length. 0, or -DISTRO_EPROTO with
 * *out partly written; never reads outside body. O(len).
 */
int distro_slot_map_decode(const void *body, size_t len, uint16_t count,
                           struct distro_slot_map *out);

/* Slots owned by member id in the map (id 0 counts the unowned). */
uint32_t distro_slot_map_count(const struct distro_slot_map *m, uint16_t id);

/* The member with this id, or NULL. */
const struct distro_member *distro_slot_map_member(const struct distro_slot_map *m, uint16_t id);

/*
 * Smart routing: from now on this client sends each write item straight to
 * the member owning its slot (the slot map of the node it is connected to,
 * fetched now and every 5 s), over one extra connection per member, so no
 * node has to forward. A part whose owner cannot be reached goes through
 * this connection instead (its node forwards it), and the map is fetched
 * again. Results come back in the caller's order, as without routing. A
 * standalone node: nothing changes. 0, or the SLOT_MAP call's error.
 * Writes only; lists and subscriptions stay on this connection.
 */
int distro_route_enable(struct distro_client *c);

/* The slot of an instance address (0..16383), or -DISTRO_EINVAL for a bad address. */
int distro_slot_of(const char *ip, uint16_t port);

const char *distro_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif
