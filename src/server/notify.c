/*
 * notify.c - systemd's notification protocol for distrod (Type=notify).
 *
 * What systemd is told, and when. distrod runs under the unit
 * debian/distrod.service (docs/operations.md, "systemd"), Type=notify:
 *
 *   READY=1     once every port listens (server_start bound the client,
 *               Nacos and peer ports, admin_start the HTTP admin port) and,
 *               in a cluster, once the peer thread published READY (loaded
 *               from READY peers, or --startup-wait passed with none). So
 *               `systemctl start` returns, and units ordered After= start,
 *               only when the node answers with the cluster's data, the
 *               same rule as /health (http/status.c).
 *   STATUS=     a line with the node's state, sent when it changes:
 *               "standalone, serving", "cluster: loading from peers (1/3
 *               members up)", "cluster: READY, 3/3 members up" (and ", no
 *               quorum" when expiry is paused). `systemctl status` shows it.
 *   WATCHDOG=1  when WATCHDOG_USEC is set for this pid (WatchdogSec=). The
 *               ping proves the workers run, not that main does: main sends
 *               one only when every worker's loop counter (WORKER_STATS
 *               loops, bumped once per loop iteration) moved since the last
 *               one. A worker wakes at least every WAIT_MS (50 ms,
 *               worker_internal.h) on its timer even when idle, so with any
 *               WatchdogSec over a few hundred ms a live worker always has;
 *               a worker stuck in a loop or a system call stops the pings,
 *               and systemd kills and (Restart=on-failure) restarts the
 *               node after WatchdogSec. The peer thread is not watched: a
 *               stuck peer thread shows in /health and in the peers' view.
 *   STOPPING=1  on SIGTERM or SIGINT, before the drain starts.
 *
 * Threads and cost. Only main calls this module, from its signal wait
 * (sigtimedwait with notify_period_ms), so nothing here is shared. It reads
 * the workers' counters and the peer thread's view with relaxed or acquire
 * loads, never a lock, like a /metrics scrape. Without NOTIFY_SOCKET main
 * never calls past notify_init and keeps its plain sigwait: no wake-ups,
 * no reads, one getenv. With it, main wakes every NOTIFY_STARTING_MS while
 * starting and then every NOTIFY_STATUS_MS (or a third of the watchdog
 * period, if smaller); a cluster's status costs one peer_status_read (the
 * slot map copied and counted: tens of microseconds) per wake-up.
 *
 * Errors. sd_notify's failures (a socket gone, a full queue) are ignored:
 * systemd going away must not stop a registry, and a missed READY or
 * watchdog ping is systemd's to act on.
 */
#include "server/notify.h"

#include "cluster/peer.h"
#include "cluster/view.h"
#include "core/clock.h"
#include "core/log.h"
#include "server/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

bool notify_init(struct notify *n)
{
	uint64_t usec = 0;

	memset(n, 0, sizeof(*n));
	if (getenv("NOTIFY_SOCKET") == NULL)
		return false;
	n->on = true;
	/* > 0 only when WATCHDOG_PID, if set, is this process. */
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		n->watchdog_ms = (int64_t)(usec / 1000);
		if (n->watchdog_ms < 1)
			n->watchdog_ms = 1;
	}
	return true;
}

int64_t notify_period_ms(const struct notify *n)
{
	int64_t ms = n->ready_sent ? NOTIFY_STATUS_MS : NOTIFY_STARTING_MS;

	if (n->watchdog_ms > 0 && n->watchdog_ms / 3 < ms)
		ms = n->watchdog_ms / 3 > 0 ? n->watchdog_ms / 3 : 1;
	return ms;
}

/* The node's state in one line; returns whether the node is READY. */
static bool node_state(struct server *srv, char *out, size_t len)
{
	/* Only main calls this: one copy, not 10 KiB on its stack each time. */
	static struct peer_status st;
	uint32_t up = 0;

	if (srv->peer == NULL) {
		snprintf(out, len, "standalone, serving (client port %u, Nacos port %u)", srv->port,
		         srv->nacos_port);
		return true;
	}
	peer_status_read(srv->peer, &st);
	for (uint32_t i = 0; i < st.n; i++)
		up += st.m[i].health == PEER_UP;
	if (!st.ready)
		snprintf(out, len, "cluster: loading from peers (%u/%u members up)", up, st.n);
	else
		snprintf(out, len, "cluster: READY, %u/%u members up%s", up, st.n,
		         st.quorum ? "" : ", no quorum (expiry paused, writes refused)");
	return st.ready;
}

/* Every worker looped since the last ping? Logs the first that did not, once. */
static bool workers_alive(struct notify *n, struct server *srv, int64_t now)
{
	for (uint32_t i = 0; i < srv->nworkers; i++)
		if (server_worker_loops(srv, i) == n->wd_loops[i]) {
			if (!n->stall_logged)
				log_warn("worker %u has not looped for %lld ms: no watchdog ping "
				         "(systemd restarts the node after WatchdogSec)",
				         i, (long long)(now - n->wd_last_ms));
			n->stall_logged = true;
			return false;
		}
	return true;
}

void notify_tick(struct notify *n, struct server *srv)
{
	char status[sizeof(n->status)], msg[sizeof(n->status) + 32];
	int64_t now = clock_mono_ms(NULL);
	bool ready = node_state(srv, status, sizeof(status));

	if (!n->ready_sent && ready) {
		snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
		sd_notify(0, msg);
		n->ready_sent = true;
		memcpy(n->status, status, sizeof(status));
		log_info("told systemd READY (%s)", status);
	} else if (strcmp(status, n->status) != 0) {
		snprintf(msg, sizeof(msg), "STATUS=%s", status);
		sd_notify(0, msg);
		memcpy(n->status, status, sizeof(status));
	}
	if (n->watchdog_ms == 0 || now - n->wd_last_ms < n->watchdog_ms / 3)
		return;
	if (n->wd_last_ms != 0 && !workers_alive(n, srv, now))
		return;
	/* The first ping goes out at once: the counters then are the baseline. */
	for (uint32_t i = 0; i < srv->nworkers; i++)
		n->wd_loops[i] = server_worker_loops(srv, i);
	sd_notify(0, "WATCHDOG=1");
	if (n->stall_logged)
		log_info("every worker loops again: watchdog pings resume");
	n->stall_logged = false;
	n->wd_last_ms = now;
}

void notify_stopping(struct notify *n, const char *why)
{
	char msg[96];

	snprintf(msg, sizeof(msg), "STOPPING=1\nSTATUS=stopping (%s): draining connections", why);
	sd_notify(0, msg);
	memcpy(n->status, "stopping", sizeof("stopping"));
}
