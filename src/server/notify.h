/*
 * notify.h - distrod's side of systemd's notification protocol
 * (sd_notify(3)): READY=1, STATUS=, WATCHDOG=1 and STOPPING=1.
 *
 * main owns one struct notify and calls it from its signal loop only, so
 * nothing here is shared or locked. Without NOTIFY_SOCKET in the
 * environment (a terminal, a test, any supervisor but systemd's
 * Type=notify) notify_init says so and main never calls the rest: the
 * module costs one getenv.
 */
#ifndef DISTRO_SERVER_NOTIFY_H
#define DISTRO_SERVER_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h" /* STORE_SHARDS_MAX: one loop counter per worker */

struct server;

/* READY=1 is not sent while the node is not READY: main looks this often. */
#define NOTIFY_STARTING_MS 50
/* Once READY, STATUS= is refreshed (sent when it changed) this often. */
#define NOTIFY_STATUS_MS 1000

struct notify {
	bool on;             /* NOTIFY_SOCKET is set: every other field matters */
	bool ready_sent;     /* READY=1 went out */
	bool stall_logged;   /* a worker's stall was logged; reset when all loop again */
	int64_t watchdog_ms; /* WATCHDOG_USEC for this pid, in ms; 0: no watchdog */
	int64_t wd_last_ms;  /* monotonic ms of the last WATCHDOG=1 (0: none yet) */
	uint64_t wd_loops[STORE_SHARDS_MAX]; /* each worker's loop count then */
	char status[160];                    /* the STATUS= last sent, to send changes only */
};

/*
 * Reads the environment: NOTIFY_SOCKET, and WATCHDOG_USEC when WATCHDOG_PID
 * names this process (sd_watchdog_enabled). Returns n->on. Nothing is
 * sent.
 */
bool notify_init(struct notify *n);

/*
 * How long main may wait for a signal before the next notify_tick, in ms:
 * NOTIFY_STARTING_MS until READY=1 went out, then the smaller of
 * NOTIFY_STATUS_MS and a third of the watchdog period. Only when n->on.
 */
int64_t notify_period_ms(const struct notify *n);

/*
 * Called by main after server_start and the admin port, then after every
 * wait: sends STATUS= when the node's state changed, READY=1 (with the
 * status) once every port listens and, in a cluster, the node is READY,
 * and WATCHDOG=1 when a third of the watchdog period passed and every
 * worker's loop counter advanced since the last one. A worker stuck in
 * its loop stops the pings, so systemd restarts the node after
 * WatchdogSec. Reads the workers' and the peer thread's published state
 * only (relaxed loads, server_admin_snapshot's rules). Only when n->on.
 */
void notify_tick(struct notify *n, struct server *srv);

/* STOPPING=1 with a STATUS= naming the signal: main got SIGTERM or SIGINT. */
void notify_stopping(struct notify *n, const char *why);

#endif
