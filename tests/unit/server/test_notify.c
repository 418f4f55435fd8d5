/*
 * The systemd notifications (server/notify.c) as systemd receives them: a
 * real datagram socket in NOTIFY_SOCKET, real libsystemd sd_notify. The
 * server is a standalone one with two workers whose loop counters the test
 * moves by hand, so the watchdog's rule is checked exactly: WATCHDOG=1
 * only once every worker looped since the last one. (tests/package checks
 * the same messages from a whole running distrod.)
 */
#include "server/notify.h"

#include "core/atomic.h"
#include "server/server.h"

#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static struct server srv;
static struct worker workers[2];
static struct notify n;
static int sock = -1;
static char path[108];

static void listen_notify(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	snprintf(path, sizeof(path), "/tmp/distro-notify-%d.sock", (int)getpid());
	unlink(path);
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(sock, 0);
	memcpy(a.sun_path, path, strlen(path) + 1);
	cr_assert_eq(bind(sock, (struct sockaddr *)&a, sizeof(a)), 0);
	setenv("NOTIFY_SOCKET", path, 1);
}

static void setup(void)
{
	memset(&srv, 0, sizeof(srv));
	memset(workers, 0, sizeof(workers));
	srv.workers = workers;
	srv.nworkers = 2;
	srv.port = 18850;
	srv.nacos_port = 18848;
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static void teardown(void)
{
	if (sock >= 0)
		close(sock);
	sock = -1;
	unlink(path);
}

/* The next datagram within 1 s, or "" when none came. */
static const char *next_msg(void)
{
	static char buf[512];
	struct pollfd p = { .fd = sock, .events = POLLIN };
	ssize_t len;

	buf[0] = '\0';
	if (poll(&p, 1, 1000) != 1)
		return buf;
	len = recv(sock, buf, sizeof(buf) - 1, 0);
	cr_assert_gt(len, 0);
	buf[len] = '\0';
	return buf;
}

static bool none_pending(void)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };

	return poll(&p, 1, 0) == 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void loop_worker(uint32_t i)
{
	STORE_RELAXED(&workers[i].stats.loops, workers[i].stats.loops + 1);
}

TestSuite(notify, .init = setup, .fini = teardown);

Test(notify, off_without_notify_socket)
{
	cr_assert_not(notify_init(&n));
	cr_assert_not(n.on);
}

Test(notify, ready_then_status_only_when_it_changes)
{
	listen_notify();
	cr_assert(notify_init(&n));
	cr_assert_eq(n.watchdog_ms, 0, "no WATCHDOG_USEC: no watchdog");
	cr_assert_eq(notify_period_ms(&n), NOTIFY_STARTING_MS);
	notify_tick(&n, &srv);
	cr_assert_str_eq(next_msg(), "READY=1\nSTATUS=standalone, serving (client port 18850, "
	                             "Nacos port 18848)");
	cr_assert_eq(notify_period_ms(&n), NOTIFY_STATUS_MS);
	notify_tick(&n, &srv);
	notify_tick(&n, &srv);
	cr_assert(none_pending(), "the same status is not sent again, READY=1 only once");
	notify_stopping(&n, "SIGTERM");
	cr_assert_str_eq(next_msg(), "STOPPING=1\nSTATUS=stopping (SIGTERM): draining connections");
}

Test(notify, watchdog_pings_only_while_every_worker_loops)
{
	char pid[32];

	listen_notify();
	setenv("WATCHDOG_USEC", "300000", 1); /* 300 ms: a ping at most every 100 ms */
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	cr_assert(notify_init(&n));
	cr_assert_eq(n.watchdog_ms, 300);
	cr_assert_eq(notify_period_ms(&n), NOTIFY_STARTING_MS, "50 ms is under 300 / 3");

	notify_tick(&n, &srv);
	cr_assert_str_eq(next_msg(), "READY=1\nSTATUS=standalone, serving (client port 18850, "
	                             "Nacos port 18848)");
	cr_assert_str_eq(next_msg(), "WATCHDOG=1", "the first ping sets the baseline");
	cr_assert_eq(notify_period_ms(&n), 100);

	notify_tick(&n, &srv); /* too soon: a third of the period has not passed */
	cr_assert(none_pending());

	sleep_ms(120);
	loop_worker(0); /* worker 1 is stuck */
	notify_tick(&n, &srv);
	cr_assert(none_pending(), "no ping while worker 1 has not looped");
	cr_assert(n.stall_logged);
	sleep_ms(120);
	loop_worker(0);
	notify_tick(&n, &srv);
	cr_assert(none_pending(), "still none, however long worker 0 runs");

	loop_worker(1);
	notify_tick(&n, &srv);
	cr_assert_str_eq(next_msg(), "WATCHDOG=1", "both looped: the pings resume");
	cr_assert_not(n.stall_logged);
	sleep_ms(120);
	loop_worker(0);
	loop_worker(1);
	notify_tick(&n, &srv);
	cr_assert_str_eq(next_msg(), "WATCHDOG=1");
}

Test(notify, no_watchdog_for_another_pid)
{
	listen_notify();
	setenv("WATCHDOG_USEC", "300000", 1);
	setenv("WATCHDOG_PID", "1", 1); /* systemd meant another process */
	cr_assert(notify_init(&n));
	cr_assert_eq(n.watchdog_ms, 0);
	notify_tick(&n, &srv);
	cr_assert_str_eq(next_msg(), "READY=1\nSTATUS=standalone, serving (client port 18850, "
	                             "Nacos port 18848)");
	cr_assert(none_pending(), "no WATCHDOG=1");
}
