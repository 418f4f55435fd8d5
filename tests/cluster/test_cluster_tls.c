/*
 * Encrypted peer links (docs/distro.md, "Encrypted peer links"):
 *
 * - two members whose every peer byte passes through a recording relay
 *   converge and replicate; with TLS (the default) the recording never
 *   contains a registered service name nor an instance address as text;
 *   with --peer-tls off it does contain the name (so the first check can
 *   fail);
 * - a member with another secret is refused in the TLS handshake, counted,
 *   logged;
 * - a member with --peer-tls off and one with TLS refuse each other at
 *   once, each saying --peer-tls in its log; a plaintext HELLO sent by hand
 *   to a TLS node is closed promptly;
 * - garbage and an oversized TLS record on the peer port are closed and
 *   counted;
 * - a relay that stops forwarding in the middle of the TLS handshake: the
 *   node closes the link after --peer-down, and says so.
 *
 * The relay: cluster.conf names each member at a port of the relay, which
 * forwards to the member's real peer port (--peer-listen; --cluster-self
 * names its line). Every link, whoever dials, goes through it. The relay
 * runs on a thread of the test and records every byte both ways.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONVERGE_MS  20000
#define PEER_DOWN_MS 900 /* the harness's --peer-down */
#define SERVICE      "tls-canary-svc-7f3a9c51"
#define N_INSTANCES  300
#define RECORD_MAX   (64u << 20)
#define RELAY_CONNS  64

/* ---- the relay ---- */

struct rconn {
	int cfd, ufd; /* the dialling node's side, the listening node's side; -1 closed */
	int64_t accept_ms, up_closed_ms;
	size_t fwd[2]; /* bytes forwarded: client to upstream, upstream to client */
};

struct relay {
	int lfd[2];
	uint16_t port[2];   /* where the relay listens for member i (its cluster.conf line) */
	uint16_t target[2]; /* member i's real peer port (--peer-listen) */
	size_t stall_after; /* forward at most this much per direction per connection; 0: all */
	pthread_t thread;
	atomic_int stop;
	pthread_mutex_t mu;
	uint8_t *rec;
	size_t rec_len;
	bool rec_full;
	struct rconn conns[RELAY_CONNS];
	uint32_t nconns;
};

static struct relay rl;

static int64_t now_ms(void)
{
	return cluster_mono_ms();
}

static int listen_on(const char *host, uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	inet_pton(AF_INET, host, &a.sin_addr);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind %s: %s", host,
	             strerror(errno));
	cr_assert_eq(listen(fd, 16), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static int dial(const char *host, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, host, &a.sin_addr);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void record(const uint8_t *b, size_t n)
{
	pthread_mutex_lock(&rl.mu);
	if (rl.rec_len + n > RECORD_MAX)
		rl.rec_full = true;
	else {
		memcpy(rl.rec + rl.rec_len, b, n);
		rl.rec_len += n;
	}
	pthread_mutex_unlock(&rl.mu);
}

static void write_all(int fd, const uint8_t *b, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* the other side went away: its read sees it */
		b += w;
		n -= (size_t)w;
	}
}

static void conn_close(struct rconn *c, bool upstream)
{
	int *fd = upstream ? &c->ufd : &c->cfd;

	if (*fd < 0)
		return;
	close(*fd);
	*fd = -1;
	if (upstream)
		c->up_closed_ms = now_ms();
}

static void *relay_main(void *arg)
{
	static uint8_t buf[65536];

	(void)arg;
	while (!atomic_load(&rl.stop)) {
		struct pollfd pf[2 + 2 * RELAY_CONNS];
		struct rconn *who[2 + 2 * RELAY_CONNS];
		bool up[2 + 2 * RELAY_CONNS];
		nfds_t n = 0;

		for (int i = 0; i < 2; i++)
			pf[n++] = (struct pollfd){ rl.lfd[i], POLLIN, 0 };
		pthread_mutex_lock(&rl.mu);
		for (uint32_t k = 0; k < rl.nconns; k++) {
			struct rconn *c = &rl.conns[k];

			if (c->cfd >= 0) {
				who[n] = c;
				up[n] = false;
				pf[n++] = (struct pollfd){ c->cfd, POLLIN, 0 };
			}
			if (c->ufd >= 0) {
				who[n] = c;
				up[n] = true;
				pf[n++] = (struct pollfd){ c->ufd, POLLIN, 0 };
			}
		}
		pthread_mutex_unlock(&rl.mu);
		if (poll(pf, n, 20) <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			if (!(pf[i].revents & POLLIN))
				continue;
			int cfd = accept4(rl.lfd[i], NULL, NULL, SOCK_CLOEXEC), ufd;

			if (cfd < 0)
				continue;
			ufd = dial("127.0.0.1", rl.target[i]);
			pthread_mutex_lock(&rl.mu);
			if (ufd < 0 || rl.nconns == RELAY_CONNS) {
				close(cfd);
				if (ufd >= 0)
					close(ufd);
			} else {
				rl.conns[rl.nconns++] = (struct rconn){ .cfd = cfd,
					                                .ufd = ufd,
					                                .accept_ms = now_ms() };
			}
			pthread_mutex_unlock(&rl.mu);
		}
		for (nfds_t k = 2; k < n; k++) {
			struct rconn *c = who[k];
			int dir = up[k] ? 1 : 0, to;
			ssize_t r;

			if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(pf[k].fd, buf, sizeof(buf));
			pthread_mutex_lock(&rl.mu);
			if (r <= 0) {
				conn_close(c, up[k]);
				/*
				 * Forwarding everything: the close goes through too. Stalled:
				 * the other side stays open, so what closes it is its own
				 * node's deadline, not this one's.
				 */
				if (rl.stall_after == 0)
					conn_close(c, !up[k]);
				pthread_mutex_unlock(&rl.mu);
				continue;
			}
			to = up[k] ? c->cfd : c->ufd;
			pthread_mutex_unlock(&rl.mu);
			record(buf, (size_t)r);
			size_t give = (size_t)r;

			if (rl.stall_after) {
				size_t left = rl.stall_after > c->fwd[dir]
				                      ? rl.stall_after - c->fwd[dir]
				                      : 0;

				give = give < left ? give : left;
			}
			c->fwd[dir] += give;
			if (to >= 0 && give)
				write_all(to, buf, give);
		}
	}
	return NULL;
}

static void relay_start(size_t stall_after)
{
	memset(&rl, 0, sizeof(rl));
	pthread_mutex_init(&rl.mu, NULL);
	rl.rec = malloc(RECORD_MAX);
	cr_assert_not_null(rl.rec);
	rl.stall_after = stall_after;
	for (int i = 0; i < 2; i++)
		rl.lfd[i] = listen_on("127.0.0.1", &rl.port[i]);
	cr_assert_eq(pthread_create(&rl.thread, NULL, relay_main, NULL), 0);
}

static void relay_stop(void)
{
	if (rl.rec == NULL)
		return;
	atomic_store(&rl.stop, 1);
	pthread_join(rl.thread, NULL);
	for (int i = 0; i < 2; i++)
		close(rl.lfd[i]);
	for (uint32_t k = 0; k < rl.nconns; k++) {
		conn_close(&rl.conns[k], false);
		conn_close(&rl.conns[k], true);
	}
	free(rl.rec);
	rl.rec = NULL;
}

static bool recorded_bytes(const void *needle, size_t len)
{
	bool found;

	pthread_mutex_lock(&rl.mu);
	found = memmem(rl.rec, rl.rec_len, needle, len) != NULL;
	pthread_mutex_unlock(&rl.mu);
	return found;
}

static bool recorded(const char *needle)
{
	return recorded_bytes(needle, strlen(needle));
}

/* ---- the cluster behind the relay ---- */

static struct cluster cl;
static char conf_path[192], listen_addr[2][40];
static const char *node_args[2][12];
static char other_secret[256];

/*
 * Two members, every peer byte through the relay; extra: flags for both
 * (NULL-terminated, may be NULL). The relay must be started.
 */
static void start_relayed(const char *const *extra)
{
	char text[128];
	FILE *f;

	cluster_setup(&cl, &(struct cluster_opts){ .n = 2,
	                                           .node_extra = { node_args[0], node_args[1] } });
	/* Both read one file naming the relay's ports; each listens on its own port. */
	snprintf(conf_path, sizeof(conf_path), "%s/relay.conf", cl.dir);
	snprintf(text, sizeof(text), "127.0.0.1:%u\n127.0.0.1:%u\n", rl.port[0], rl.port[1]);
	f = fopen(conf_path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	for (int i = 0; i < 2; i++) {
		int k = 0;

		rl.target[i] = cl.node[i].peer_port;
		snprintf(listen_addr[i], sizeof(listen_addr[i]), "127.0.0.1:%u",
		         cl.node[i].peer_port);
		/* The harness numbers members by these (cluster_member_id). */
		snprintf(cl.node[i].peer_addr, sizeof(cl.node[i].peer_addr), "127.0.0.1:%u",
		         rl.port[i]);
		node_args[i][k++] = "--cluster-conf";
		node_args[i][k++] = conf_path;
		node_args[i][k++] = "--cluster-self";
		node_args[i][k++] = cl.node[i].peer_addr;
		node_args[i][k++] = "--peer-listen";
		node_args[i][k++] = listen_addr[i];
		for (int e = 0; extra && extra[e] && k < 10; e++)
			node_args[i][k++] = extra[e];
		node_args[i][k] = NULL;
	}
	cluster_start(&cl);
}

static void teardown(void)
{
	cluster_teardown(&cl);
	relay_stop();
}

/* A peer thread counter from node i's /cluster "stats" object. */
static unsigned long long stat_of(uint32_t i, const char *name)
{
	char key[96], *body, *stats, *p;
	unsigned long long v;
	int status = cluster_http_get(&cl, i, "/cluster", &body);

	cluster_assert(&cl, status == 200 && body, "node %u: GET /cluster answered %d", i, status);
	stats = strstr(body, "\"stats\":{");
	cr_assert_not_null(stats, "no stats in /cluster: %s", body);
	snprintf(key, sizeof(key), "\"%s\":", name);
	p = strstr(stats, key);
	cr_assert_not_null(p, "no %s in /cluster's stats: %s", name, stats);
	v = strtoull(p + strlen(key), NULL, 10);
	free(body);
	return v;
}

/* Within timeout_ms node i's log holds text. */
static bool wait_log(uint32_t i, const char *text, int timeout_ms)
{
	return cluster_wait_log(&cl, i, text, timeout_ms);
}

static struct distro_instance ins[N_INSTANCES];
static char ips[N_INSTANCES][24];

/* Registers N_INSTANCES of SERVICE (198.18.0.0/15, never probed), half through each node. */
static void register_canaries(void)
{
	for (uint32_t k = 0; k < N_INSTANCES; k++) {
		distro_instance_init(&ins[k]);
		ins[k].service = SERVICE;
		snprintf(ips[k], sizeof(ips[k]), "198.18.%u.%u", k / 200, 10 + k % 200);
		ins[k].ip = ips[k];
		ins[k].port = (uint16_t)(8000 + k);
	}
	cr_assert_eq(cluster_register(&cl, 0, ins, N_INSTANCES / 2, NULL), 0);
	cr_assert_eq(cluster_register(&cl, 1, ins + N_INSTANCES / 2, N_INSTANCES / 2, NULL), 0);
	for (uint32_t i = 0; i < 2; i++) {
		int last = -1;

		cluster_assert(&cl,
		               cluster_wait_listed(&cl, i, ins, N_INSTANCES, N_INSTANCES,
		                                   CONVERGE_MS, &last),
		               "node %u lists every instance (saw %d)", i, last);
	}
}

/*
 * Instance k's address as the peer records carry it (docs/protocol.md,
 * `addr`): family 4, the four address bytes, the port little-endian. A
 * dotted address never crosses a peer link, so that is what to look for.
 */
static bool addr_recorded(uint32_t k)
{
	uint8_t a[7] = { 4, 198, 18, (uint8_t)(k / 200), (uint8_t)(10 + k % 200) };
	uint16_t port = (uint16_t)(8000 + k);

	a[5] = (uint8_t)(port & 0xff);
	a[6] = (uint8_t)(port >> 8);
	return recorded_bytes(a, sizeof(a));
}

static void replicate_through_the_relay(void)
{
	cluster_assert(&cl, cluster_wait_converged(&cl, CONVERGE_MS), "converged via the relay");
	register_canaries();
	pthread_mutex_lock(&rl.mu);
	cr_assert(!rl.rec_full, "the recording holds every byte");
	cr_assert_gt(rl.rec_len, 4096, "the links went through the relay (%zu bytes)", rl.rec_len);
	pthread_mutex_unlock(&rl.mu);
}

static void relay_plain(void)
{
	relay_start(0);
}

Test(cluster_tls, a_relay_recording_tls_peer_links_sees_no_service_name_nor_address,
     .init = relay_plain, .fini = teardown, .timeout = 180)
{
	start_relayed(NULL);
	replicate_through_the_relay();
	cr_assert_eq(stat_of(0, "auth_failures") + stat_of(1, "auth_failures"), 0);
	cr_assert(!recorded(SERVICE), "the service name crossed the relay in the clear");
	for (uint32_t k = 0; k < N_INSTANCES; k++)
		cr_assert(!addr_recorded(k), "an instance address crossed in the clear: %s:%u",
		          ips[k], 8000 + k);
	cr_assert(!recorded("DEFAULT_GROUP"), "a group name crossed in the clear");
	cr_assert(wait_log(0, "TLS 1.3", 1000), "the node says its links are TLS");
}

Test(cluster_tls, with_peer_tls_off_the_relay_sees_the_service_name, .init = relay_plain,
     .fini = teardown, .timeout = 180)
{
	static const char *const off[] = { "--peer-tls", "off", NULL };

	start_relayed(off);
	replicate_through_the_relay();
	/* So each check of the TLS test can fail: */
	cr_assert(recorded(SERVICE), "plaintext links carry the service name");
	cr_assert(recorded("DEFAULT_GROUP"), "plaintext links carry the group");
	for (uint32_t k = 0; k < N_INSTANCES; k++)
		cr_assert(addr_recorded(k), "plaintext links carry %s:%u", ips[k], 8000 + k);
}

static void relay_stalling(void)
{
	relay_start(100); /* mid-ClientHello (a PSK ClientHello is ~300 bytes) */
}

Test(cluster_tls, a_handshake_stalled_by_the_relay_is_closed_after_peer_down,
     .init = relay_stalling, .fini = teardown, .timeout = 120)
{
	int64_t end, took = -1;

	start_relayed(NULL);
	/* The first relayed connection whose listening node hung up. */
	end = now_ms() + 10000;
	while (now_ms() < end && took < 0) {
		pthread_mutex_lock(&rl.mu);
		for (uint32_t k = 0; k < rl.nconns && took < 0; k++)
			if (rl.conns[k].up_closed_ms)
				took = rl.conns[k].up_closed_ms - rl.conns[k].accept_ms;
		pthread_mutex_unlock(&rl.mu);
		cluster_nap_ms(20);
	}
	cluster_assert(&cl, took >= 0, "a node closed the stalled handshake");
	cluster_assert(&cl, took >= PEER_DOWN_MS - 100 && took <= PEER_DOWN_MS + 1500,
	               "closed after --peer-down (%d ms), took %lld ms", PEER_DOWN_MS,
	               (long long)took);
	cluster_assert(&cl,
	               wait_log(0, "did not finish within --peer-down", 3000) ||
	                       wait_log(1, "did not finish within --peer-down", 3000),
	               "the timeout is logged");
	cr_assert_eq(stat_of(0, "links_up") + stat_of(1, "links_up"), 0, "no link came up");
}

/* ---- refusals without a relay ---- */

static void teardown_plain(void)
{
	cluster_teardown(&cl);
}

static const char *other_secret_args[] = { "--cluster-secret-file", other_secret, NULL };

static void start_two_secrets(void)
{
	FILE *f;

	cluster_setup(&cl,
	              &(struct cluster_opts){ .n = 2, .node_extra = { NULL, other_secret_args } });
	snprintf(other_secret, sizeof(other_secret), "%s/other-secret", cl.dir);
	f = fopen(other_secret, "w");
	cr_assert_not_null(f);
	fputs("a-different-cluster-secret-entirely", f);
	fclose(f);
	cluster_start(&cl);
}

Test(cluster_tls, another_secret_fails_the_tls_handshake, .init = start_two_secrets,
     .fini = teardown_plain, .timeout = 120)
{
	for (uint32_t i = 0; i < 2; i++)
		cluster_assert(&cl, cluster_wait_ready(&cl, i, CONVERGE_MS), "node %u READY alone",
		               i);
	cluster_assert(&cl,
	               wait_log(0, "TLS handshake failed", 5000) ||
	                       wait_log(1, "TLS handshake failed", 5000),
	               "the refusal names the TLS handshake");
	cr_assert_gt(stat_of(0, "auth_failures") + stat_of(1, "auth_failures"), 0);
	cr_assert_eq(stat_of(0, "links_up") + stat_of(1, "links_up"), 0);
}

static const char *tls_off_args[] = { "--peer-tls", "off", NULL };

static void start_mixed(void)
{
	cluster_setup(&cl, &(struct cluster_opts){ .n = 2, .node_extra = { NULL, tls_off_args } });
	cluster_start(&cl);
}

static int connect_port(uint16_t port)
{
	int fd = dial("127.0.0.1", port);

	cr_assert_geq(fd, 0, "connect %u: %s", port, strerror(errno));
	return fd;
}

/* Reads until EOF or error within timeout_ms; true when the peer closed. */
static bool closed_within(int fd, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	char buf[4096];

	while (now_ms() < end) {
		struct pollfd p = { fd, POLLIN, 0 };

		if (poll(&p, 1, 50) > 0) {
			ssize_t n = read(fd, buf, sizeof(buf));

			if (n == 0 || (n < 0 && errno == ECONNRESET))
				return true;
		}
	}
	return false;
}

Test(cluster_tls, a_plaintext_member_and_a_tls_member_refuse_each_other_saying_why,
     .init = start_mixed, .fini = teardown_plain, .timeout = 120)
{
	uint8_t hello[16 + 40] = { 'D', 'P', 1, 1, 40 };
	int64_t t0;
	int fd;

	cluster_assert(&cl, wait_log(0, "the peer speaks plaintext", 10000),
	               "the TLS node names the plaintext peer");
	cluster_assert(&cl, wait_log(1, "the peer speaks TLS", 10000),
	               "the plaintext node names the TLS peer");
	cr_assert_eq(stat_of(0, "links_up") + stat_of(1, "links_up"), 0);
	cr_assert_gt(stat_of(0, "auth_failures"), 0);
	cr_assert_gt(stat_of(1, "auth_failures"), 0);

	/* An old-style HELLO by hand: closed at once, not at --peer-down. */
	fd = connect_port(cl.node[0].peer_port);
	t0 = now_ms();
	cr_assert_eq(write(fd, hello, sizeof(hello)), (ssize_t)sizeof(hello));
	cr_assert(closed_within(fd, PEER_DOWN_MS / 2), "a plaintext HELLO is refused promptly");
	cr_assert_lt(now_ms() - t0, PEER_DOWN_MS / 2);
	close(fd);
	cr_assert_eq(distro_ping(cluster_client(&cl, 0)), 0, "the node still serves");
}

static void start_two(void)
{
	cluster_setup(&cl, &(struct cluster_opts){ .n = 2 });
	cluster_start(&cl);
}

Test(cluster_tls, garbage_and_oversized_records_are_closed_and_counted, .init = start_two,
     .fini = teardown_plain, .timeout = 120)
{
	static uint8_t junk[20000];
	/* A TLS handshake record header announcing 18 KiB: past the 16 KiB record limit. */
	static const uint8_t big[5] = { 0x16, 0x03, 0x01, 0x48, 0x00 };
	struct distro_slot_map map;
	unsigned long long before;
	int fd;

	cluster_assert(&cl, cluster_wait_converged(&cl, CONVERGE_MS), "two members UP over TLS");
	before = stat_of(0, "auth_failures");
	for (size_t k = 0; k < sizeof(junk); k++)
		junk[k] = (uint8_t)(k * 2654435761u >> 13);

	fd = connect_port(cl.node[0].peer_port);
	(void)!send(fd, junk, sizeof(junk), MSG_NOSIGNAL);
	cr_assert(closed_within(fd, 3000), "garbage closes the link");
	close(fd);

	fd = connect_port(cl.node[0].peer_port);
	cr_assert_eq(write(fd, big, sizeof(big)), (ssize_t)sizeof(big));
	(void)!send(fd, junk, 0x4800, MSG_NOSIGNAL);
	cr_assert(closed_within(fd, 3000), "an oversized record closes the link");
	close(fd);

	/*
	 * Well-formed records of a ClientHello announcing 60 KiB (OpenSSL waits
	 * for up to 128 KiB of one): only the node's own 16 KiB bound on
	 * handshake bytes before authentication closes it before --peer-down.
	 */
	{
		static uint8_t hello[5 + 16384 + 5 + 4096];

		memcpy(hello,
		       (const uint8_t[]){ 0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0xf0, 0x00 },
		       9);
		memcpy(hello + 9, junk, 16384 - 4);
		memcpy(hello + 5 + 16384, (const uint8_t[]){ 0x16, 0x03, 0x01, 0x10, 0x00 }, 5);
		memcpy(hello + 10 + 16384, junk, 4096);
		fd = connect_port(cl.node[0].peer_port);
		(void)!send(fd, hello, sizeof(hello), MSG_NOSIGNAL);
		cr_assert(closed_within(fd, 3000), "a long handshake closes the link");
		close(fd);
		cluster_assert(&cl, wait_log(0, "a TLS handshake longer than 16 KiB", 3000),
		               "by the byte bound, not by OpenSSL or the deadline");
	}

	cr_assert_geq(stat_of(0, "auth_failures"), before + 3, "each refusal counted");
	cr_assert_eq(distro_ping(cluster_client(&cl, 0)), 0, "the node still serves");
	cr_assert_eq(cluster_slot_map(&cl, 0, &map), 0);
	cr_assert_eq(distro_slot_map_member(&map, cluster_member_id(&cl, 1))->health, DISTRO_UP,
	             "the members' own link was not disturbed");
}
