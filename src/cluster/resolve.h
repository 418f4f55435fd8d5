/*
 * resolve.h - member addresses, resolved off the peer thread.
 *
 * A cluster.conf host is an address (resolved once, at start, without a
 * lookup) or a name. Names are resolved by one resolver thread of our own,
 * before every dial, so a slow or dead DNS server delays that member's
 * dial and never the peer thread's loop, and a name that moved is
 * followed. (glibc's getaddrinfo_a would do the same from a thread the
 * sanitizers cannot see; ThreadSanitizer crashes in it.)
 *
 * Contract: resolver_get is called by the peer thread only; the resolver
 * thread and the peer thread share the per-member state under one mutex,
 * taken only for names, at most once per dial attempt - never per request.
 */
#ifndef DISTRO_CLUSTER_RESOLVE_H
#define DISTRO_CLUSTER_RESOLVE_H

#include "cluster/members.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

enum resolve_state { R_IDLE = 0, R_WANT, R_OK, R_FAILED };

struct resolve_entry {
	bool numeric; /* resolved at start: addr is final */
	enum resolve_state state;
	struct sockaddr_storage addr;
	socklen_t len;
};

struct resolver {
	struct members conf; /* its own copy: the peer thread's list may change (membership.c) */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool running; /* a thread was started (some host is a name) */
	bool stop;
	bool retired; /* resolver_retire: the thread frees the resolver when it ends */
	struct resolve_entry e[MEMBERS_MAX + 1]; /* by member id */
};

/*
 * Resolves the members given as addresses and starts the thread if any
 * host is a name. 0, or -errno (the thread could not start).
 */
int resolver_start(struct resolver *r, const struct members *conf);

/*
 * Member id's address: 1 and *addr filled when known (an address, or a
 * lookup that finished: the next call looks it up again); 0 while the
 * lookup runs (asked now if it was not); -1 when it failed (retry later).
 */
int resolver_get(struct resolver *r, uint16_t id, struct sockaddr_storage *addr, socklen_t *len);

/* Stops the thread (waits for a lookup in progress). */
void resolver_stop(struct resolver *r);

/*
 * Gives up a heap-allocated resolver without waiting: a lookup in progress
 * may take as long as DNS does, and the peer thread must not wait for it
 * (a member list change, membership.c). The thread frees r when it ends;
 * with no thread, r is freed now. r is not used after.
 */
void resolver_retire(struct resolver *r);

#endif
