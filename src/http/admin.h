/*
 * admin.h - the HTTP admin port: GET /metrics (Prometheus), /health and
 * /cluster.
 */
#ifndef DISTRO_HTTP_ADMIN_H
#define DISTRO_HTTP_ADMIN_H

#include "http/metrics.h"
#include "server/server.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define ADMIN_CONNS_MAX 64    /* open admin connections; more are answered 503 */
#define ADMIN_IDLE_MS   10000 /* time a connection has for each request and its answer */
#define ADMIN_IN_BYTES  4096  /* read chunk; a head may span several (REQUEST_HEAD_MAX) */
#define ADMIN_LINGER_MS 2000  /* after a closing answer, unread input is drained this long */

struct admin_conn;

struct admin {
	struct server *srv;
	int listen_fd;
	int wake_fd;   /* eventfd: admin_stop's knock */
	uint16_t port; /* the port actually bound */
	bool running;
	pthread_t thread;
	struct admin_conn *conns;        /* ADMIN_CONNS_MAX slots */
	struct worker_stats *per_worker; /* scrape scratch, one per worker */
	struct peer_status *peer_status; /* /cluster, /health, /metrics scratch (~10 KiB) */
	struct metrics_http http;        /* the admin thread's own counters */
};

/*
 * Binds srv->cfg.http_bind:http_port (0: any free port, then in a->port)
 * and starts the admin thread, which serves until admin_stop. srv must be
 * started (server_start) and outlive the admin. 0, or -errno (a bind
 * failure is logged with the address); on failure nothing is left open.
 */
int admin_start(struct admin *a, struct server *srv);

/* Wakes the admin thread, joins it and closes everything. Safe after a failed start. */
void admin_stop(struct admin *a);

#endif
