/*
 * client_internal.h - what the C client's files share.
 *
 *   client.c     one connection: connect, send a request, read its answer,
 *                credentials, subscriptions and pushes, the slot map
 *   route.c      writes split by slot owner, each part sent to its owner
 *   keepalive.c  the heartbeat thread of distro_keepalive_start
 *
 * A struct distro_client is used by one thread at a time (the caller's, or
 * the keepalive thread's own connection); nothing here is shared between
 * threads except through struct keepalive's lock.
 */
#ifndef DISTRO_CLIENT_CLIENT_INTERNAL_H
#define DISTRO_CLIENT_CLIENT_INTERNAL_H

#include "distro/client.h"
#include "proto/wire.h"

#include <stdbool.h>
#include <stdint.h>

#define FRAME_MAX       (1u << 20)
#define BATCH_MAX       1024
#define KEEPALIVE_BATCH 256 /* below any sensible --batch-max */
#define META_MAX        256
#define RECONNECTS      3

#define SUBS_MAX 256

struct keepalive;

/* A subscription as the client remembers it, to renew it after a reconnect. */
struct csub {
	bool used;
	uint64_t epoch;     /* the connection it was last sent on (client conn_epoch) */
	uint32_t server_id; /* request id of the SUBSCRIBE that the node's pushes carry */
	char *ns, *group, *service;
	char **clusters;
	uint32_t clusters_n;
	bool healthy_only, include_disabled;
	distro_push_fn *fn;
	void *ctx;
};

struct route;

struct distro_client {
	char host[256];
	char port[8];
	uint32_t timeout_ms;
	int fd;
	uint32_t next_id;
	uint32_t last_id;
	uint64_t conn_epoch; /* bumped by every successful connect */
	uint8_t *buf;        /* FRAME_MAX: requests are built and answers read here */
	struct keepalive *ka;
	struct csub subs[SUBS_MAX];
	struct route *route; /* NULL: every write goes to this connection's node */
	/* Credentials (distro_auth_*), sent again on every new connection; method 0: none. */
	uint8_t auth_method; /* enum proto_auth_method */
	char *auth_a;        /* the token, or the user */
	char *auth_b;        /* the password; NULL for a token */
	uint64_t auth_epoch; /* the connection they were last accepted on (conn_epoch) */
};

/* Sends one write frame of n items on c's own connection (no routing). */
int client_write_batch(struct distro_client *c, uint8_t op, const struct distro_instance *in,
                       uint32_t n, int *results);
/* Gives dst (a fresh connection of c's: keepalive, routing) c's credentials. */
int client_creds_copy(struct distro_client *dst, const struct distro_client *c);

/* route.c: a write split by slot owner (c->route set); its owners' connections freed. */
int client_routed_write(struct distro_client *c, uint8_t op, const struct distro_instance *in,
                        uint32_t n, int *results);
void client_route_free(struct route *r);

#endif
