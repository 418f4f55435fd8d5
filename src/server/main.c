/*
 * main.c - distrod: parse the settings, start the workers, wait for
 * SIGTERM or SIGINT, drain and exit 0. SIGHUP reads cluster.conf again.
 *
 * Signals are blocked in every thread and taken synchronously here with
 * sigwait, so no handler runs inside a worker. Under systemd (NOTIFY_SOCKET
 * set) the wait is a sigtimedwait instead, and between signals main tells
 * systemd the node's state, READY and the watchdog pings (notify.c); with
 * no NOTIFY_SOCKET main sleeps in sigwait and never wakes for it.
 *
 * main is also where the HTTP admin port meets the server: http/ knows no
 * struct server, so server_admin_snapshot (server.c) is its struct
 * admin_source (http/admin.h), reading the workers', the store's and the
 * peer thread's counters with relaxed loads. The workers answer the same
 * paths on the Nacos port with the same source; main publishes the admin
 * port's own counters to them (server.admin_http) once it runs.
 */
#include "core/atomic.h"
#include "core/log.h"
#include "http/admin.h"
#include "server/config.h"
#include "server/notify.h"
#include "cluster/peer.h"
#include "server/server.h"
#include "store/store.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static int write_port_file(const char *path, uint16_t port)
{
	char tmp[300];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0)
		return -1;
	return rename(tmp, path); /* readers never see a half-written file */
}

/*
 * Every connection is a descriptor: raise the soft limit towards what
 * --conns-max needs (plus slack for listeners, rings and the admin port),
 * and say so when the hard limit stops short.
 */
static void raise_fd_limit(const struct server_config *cfg)
{
	rlim_t want = (rlim_t)cfg->conns_max + 256;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < want)
		log_warn("open-file limit %llu is below --conns-max %u: accepts will pause "
		         "when it is reached (raise ulimit -n)",
		         (unsigned long long)rl.rlim_cur, cfg->conns_max);
}

/*
 * The signal wait under systemd: tells systemd the node's state between
 * signals, every notify_period_ms. Returns the signal (SIGTERM or SIGINT).
 */
static int wait_notifying(struct notify *n, struct server *srv, const sigset_t *set)
{
	for (;;) {
		int64_t ms;
		struct timespec ts;
		int sig;

		notify_tick(n, srv);
		ms = notify_period_ms(n);
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (ms % 1000) * 1000000L;
		sig = sigtimedwait(set, NULL, &ts);
		if (sig > 0)
			return sig;
		/* EAGAIN: the period passed; EINTR: a signal outside the set. */
	}
}

int main(int argc, char **argv)
{
	static struct server srv;
	static struct admin admin;
	static struct notify notify; /* large (a loop count per worker): not on the stack */
	struct admin_source src;
	struct server_config cfg;
	sigset_t set;
	int rc, sig;

	rc = config_load(&cfg, argc, argv);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP); /* read cluster.conf again (cluster/membership.c) */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	raise_fd_limit(&cfg);
	rc = server_start(&srv, &cfg);
	if (rc < 0) {
		log_error("cannot start: %s", strerror(-rc));
		return 1;
	}
	src = (struct admin_source){
		.snapshot = server_admin_snapshot,
		.ctx = &srv,
		.nworkers = srv.nworkers,
		.header_timeout_ms = cfg.header_timeout_ms,
	};
	rc = admin_start(&admin, cfg.http_bind, cfg.http_port, &src);
	if (rc < 0) {
		log_error("cannot start the HTTP admin port (--http-bind %s --http-port %u): %s",
		          cfg.http_bind, cfg.http_port, strerror(-rc));
		server_stop(&srv);
		return 1;
	}
	STORE_RELEASE(&srv.admin_http, &admin.http); /* /metrics on the Nacos port shows them */
	log_info("HTTP admin on %s:%u", cfg.http_bind, admin.port);
	if (cfg.http_port_file[0] && write_port_file(cfg.http_port_file, admin.port) < 0)
		log_warn("cannot write --http-port-file %s: %s", cfg.http_port_file,
		         strerror(errno));
	if (cfg.nacos_port_file[0] && write_port_file(cfg.nacos_port_file, srv.nacos_port) < 0)
		log_warn("cannot write --nacos-port-file %s: %s", cfg.nacos_port_file,
		         strerror(errno));
	if (cfg.grpc_on && cfg.grpc_port_file[0] &&
	    write_port_file(cfg.grpc_port_file, srv.grpc_port) < 0)
		log_warn("cannot write --grpc-port-file %s: %s", cfg.grpc_port_file,
		         strerror(errno));
	if (cfg.port_file[0] && write_port_file(cfg.port_file, srv.port) < 0)
		log_warn("cannot write --port-file %s: %s", cfg.port_file, strerror(errno));
	(void)notify_init(&notify); /* notify.on: under systemd */
	for (;;) {
		if (notify.on)
			sig = wait_notifying(&notify, &srv, &set);
		else if (sigwait(&set, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
		if (srv.peer)
			peer_reload_request(srv.peer); /* cluster/membership.c */
		else
			log_info("SIGHUP: a standalone node has no cluster.conf to reload");
	}
	log_info("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	if (notify.on)
		notify_stopping(&notify, sig == SIGTERM ? "SIGTERM" : "SIGINT");
	admin_stop(&admin);
	server_stop(&srv);
	log_info("stopped");
	return 0;
}
