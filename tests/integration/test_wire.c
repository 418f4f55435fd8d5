/*
 * The real distrod against raw bytes: pipelining, and every framing error
 * answered with its code and a closed connection while other connections
 * carry on.
 */
#include "node.h"
#include "core/err.h"
#include "proto/wire.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

static struct node node;

static void start(void)
{
	static const char *const extra[] = { "--workers", "2", "--frame-max", "65536", NULL };

	node_start(&node, extra);
}

static void stop(void)
{
	cr_assert_eq(node_stop(&node), 0);
}

TestSuite(wire, .init = start, .fini = stop, .timeout = 60);

static int raw_connect(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(node.port) };
	struct timeval tv = { 5, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
	cr_assert_eq(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads one frame; returns false on EOF. */
static bool read_frame(int fd, struct proto_header *h, uint8_t *body, size_t cap)
{
	uint8_t hdr[PROTO_HEADER_BYTES];
	size_t got = 0;

	while (got < sizeof(hdr)) {
		ssize_t r = recv(fd, hdr + got, sizeof(hdr) - got, 0);

		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	cr_assert_geq(proto_frame_check(hdr, sizeof(hdr), 1 << 20, h), 0, "a valid header");
	cr_assert_leq(h->body_len, cap);
	got = 0;
	while (got < h->body_len) {
		ssize_t r = recv(fd, body + got, h->body_len - got, 0);

		cr_assert_gt(r, 0, "truncated answer");
		got += (size_t)r;
	}
	return true;
}

static bool closed_by_peer(int fd)
{
	uint8_t b;
	struct pollfd p = { fd, POLLIN, 0 };

	cr_assert_eq(poll(&p, 1, 5000), 1, "no close within 5 s");
	return recv(fd, &b, 1, 0) == 0;
}

static size_t ping_frame(uint8_t *out, uint32_t id)
{
	proto_header_put(out, OP_PING, 3, id, 0, 0);
	memcpy(out + PROTO_HEADER_BYTES, "abc", 3);
	return PROTO_HEADER_BYTES + 3;
}

/* Sends bytes, expects one ERROR frame with code, then the close. */
static void expect_refused(const void *bytes, size_t n, int code)
{
	int fd = raw_connect(), other = raw_connect();
	struct proto_header h;
	uint8_t body[256];
	uint8_t ping[64];

	send_all(fd, bytes, n);
	cr_assert(read_frame(fd, &h, body, sizeof(body)), "an error frame comes first");
	cr_assert_eq(h.op, OP_ERROR);
	cr_assert_eq(h.status, code, "status %u, want %d", h.status, code);
	cr_assert_eq(body[0] | (body[1] << 8), (int)strlen(err_str(code)));
	cr_assert_eq(memcmp(body + 2, err_str(code), strlen(err_str(code))), 0);
	cr_assert(closed_by_peer(fd));
	close(fd);
	/* The other connection is untouched. */
	send_all(other, ping, ping_frame(ping, 9));
	cr_assert(read_frame(other, &h, body, sizeof(body)));
	cr_assert_eq(h.op, OP_PING | PROTO_RESPONSE);
	cr_assert_eq(h.request_id, 9);
	close(other);
}

Test(wire, bad_magic)
{
	expect_refused("GET / HTTP/1.1\r\n\r\n", 18, ERR_PROTO_MAGIC);
}

Test(wire, bad_version)
{
	uint8_t f[PROTO_HEADER_BYTES];

	proto_header_put(f, OP_PING, 0, 1, 0, 0);
	f[2] = 9;
	expect_refused(f, sizeof(f), ERR_PROTO_VERSION);
}

Test(wire, length_over_the_limit)
{
	uint8_t f[PROTO_HEADER_BYTES];

	proto_header_put(f, OP_PING, 65536, 1, 0, 0);
	expect_refused(f, sizeof(f), ERR_PROTO_TOO_BIG);
	proto_header_put(f, OP_PING, 0xffffffffu, 1, 0, 0);
	expect_refused(f, sizeof(f), ERR_PROTO_TOO_BIG);
}

Test(wire, unknown_op)
{
	uint8_t f[PROTO_HEADER_BYTES];

	proto_header_put(f, 77, 0, 1, 0, 0);
	expect_refused(f, sizeof(f), ERR_PROTO_OP);
}

Test(wire, truncated_and_trailing_bodies)
{
	uint8_t f[PROTO_HEADER_BYTES + 8];

	/* A REGISTER saying 1 item with 3 bytes of body. */
	proto_header_put(f, OP_REGISTER, 3, 1, 0, 1);
	memset(f + PROTO_HEADER_BYTES, 0xff, 3);
	expect_refused(f, PROTO_HEADER_BYTES + 3, ERR_PROTO_TRUNCATED);
	/* STATS with a body. */
	proto_header_put(f, OP_STATS, 4, 1, 0, 0);
	expect_refused(f, PROTO_HEADER_BYTES + 4, ERR_PROTO_TRAILING);
}

Test(wire, garbage_after_a_valid_frame)
{
	uint8_t f[64];
	size_t n = ping_frame(f, 5);
	int fd = raw_connect();
	struct proto_header h;
	uint8_t body[256];

	memcpy(f + n, "\x00\x01garbage", 9);
	send_all(fd, f, n + 9);
	cr_assert(read_frame(fd, &h, body, sizeof(body)));
	cr_assert_eq(h.op, OP_PING | PROTO_RESPONSE, "the valid frame is answered");
	cr_assert(read_frame(fd, &h, body, sizeof(body)));
	cr_assert_eq(h.op, OP_ERROR);
	cr_assert_eq(h.status, ERR_PROTO_MAGIC);
	cr_assert(closed_by_peer(fd));
	close(fd);
}

Test(wire, frame_split_byte_by_byte)
{
	uint8_t f[64];
	size_t n = ping_frame(f, 6);
	int fd = raw_connect();
	struct proto_header h;
	uint8_t body[64];

	for (size_t i = 0; i < n; i++) {
		send_all(fd, f + i, 1);
		nap_ms(2);
	}
	cr_assert(read_frame(fd, &h, body, sizeof(body)));
	cr_assert_eq(h.request_id, 6);
	cr_assert_eq(memcmp(body, "abc", 3), 0);
	close(fd);
}

Test(wire, pipelining_many_requests_in_one_write)
{
	enum { N = 500 };
	static uint8_t out[N * 200];
	static bool seen[N];
	size_t len = 0;
	int fd = raw_connect();
	struct proto_wr w;

	/* Alternate pings and single-instance registers over many services (both workers). */
	for (uint32_t i = 0; i < N; i++) {
		if (i % 2) {
			len += ping_frame(out + len, i);
			continue;
		}
		char svc[16], ip[16];
		struct store_key k = { .svc = { { NULL, 0 }, { NULL, 0 }, { svc, 0 } } };
		struct store_val v = {
			.weight_milli = 1000, .healthy = true, .enabled = true, .ephemeral = true
		};

		k.svc.service.len = (uint32_t)snprintf(svc, sizeof(svc), "pipe%u", i % 16);
		snprintf(ip, sizeof(ip), "10.9.%u.%u", i / 250, i % 250 + 1);
		cr_assert_eq(addr_parse(ip, 80, &k.addr), 0);
		proto_wr_init(&w, out + len + PROTO_HEADER_BYTES,
		              sizeof(out) - len - PROTO_HEADER_BYTES);
		proto_wr_instance(&w, &k, &v);
		uint32_t body = (uint32_t)(w.p - (out + len + PROTO_HEADER_BYTES));

		proto_header_put(out + len, OP_REGISTER, body, i, 0, 1);
		len += PROTO_HEADER_BYTES + body;
	}
	send_all(fd, out, len);
	for (uint32_t got = 0; got < N; got++) {
		struct proto_header h;
		uint8_t body[64];

		cr_assert(read_frame(fd, &h, body, sizeof(body)), "answer %u of %u", got, N);
		cr_assert_lt(h.request_id, N);
		cr_assert_not(seen[h.request_id], "answered twice");
		seen[h.request_id] = true;
		if (h.request_id % 2)
			cr_assert_eq(h.op, OP_PING | PROTO_RESPONSE);
		else
			cr_assert(h.op == (OP_REGISTER | PROTO_RESPONSE) && body[0] == 2,
			          "register %u: op %u result %u", h.request_id, h.op, body[0]);
	}
	close(fd);
}

/* One connection with tens of thousands of subscriptions closes: others are not stalled. */
Test(wire, closing_a_connection_with_many_subscriptions_is_cheap)
{
	enum { N = 30000 };
	static uint8_t out[N * 40];
	size_t len = 0;
	int fd = raw_connect(), other = raw_connect();
	struct proto_header h;
	uint8_t body[256], ping[64];

	for (uint32_t i = 0; i < N; i++) {
		struct proto_wr w;

		proto_wr_init(&w, out + len + PROTO_HEADER_BYTES, sizeof(out) - len - 16);
		proto_wr_svc(&w, &(struct store_svc_key){ { NULL, 0 }, { NULL, 0 }, { "one", 3 } });
		proto_wr_filter(&w, &(struct store_filter){ 0 });
		uint32_t b = (uint32_t)(w.p - (out + len + PROTO_HEADER_BYTES));

		proto_header_put(out + len, OP_SUBSCRIBE, b, i + 1, 0, 0);
		len += PROTO_HEADER_BYTES + b;
	}
	send_all(fd, out, len);
	for (uint32_t i = 0; i < N; i++)
		cr_assert(read_frame(fd, &h, body, sizeof(body)), "answer %u", i);
	close(fd);
	int64_t t0 = now_ms();

	/* The node may serve this from either worker; ask both a few times. */
	for (int i = 0; i < 4; i++) {
		send_all(other, ping, ping_frame(ping, 77));
		cr_assert(read_frame(other, &h, body, sizeof(body)));
	}
	cr_assert_lt(now_ms() - t0, 1000, "stalled for %ld ms", (long)(now_ms() - t0));
	close(other);
}

/* Answers stay within --frame-max (65536 here): a big list is cut, total says so. */
Test(wire, lists_are_cut_at_the_frame_limit)
{
	static struct distro_instance b[1000];
	static char ips[1000][32];
	static char big[200];
	struct distro_kv meta = { "blob", big };
	struct distro_client *c = node_client(&node);
	int res[1000];

	memset(big, 'x', sizeof(big) - 1);
	for (int i = 0; i < 1000; i++) {
		snprintf(ips[i], sizeof(ips[i]), "10.12.%d.%d", i / 250, i % 250 + 1);
		distro_instance_init(&b[i]);
		b[i].service = "bulky";
		b[i].ip = ips[i];
		b[i].port = 1;
		b[i].meta = &meta;
		b[i].meta_n = 1;
	}
	for (int i = 0; i < 1000; i += 100) /* frames of 100 stay under the 64 KiB limit */
		cr_assert_eq(distro_register(c, b + i, 100, res), 0);
	distro_close(c);

	int fd = raw_connect();
	uint8_t f[128];
	struct proto_wr w;
	struct proto_header h;
	static uint8_t body[65536];

	proto_wr_init(&w, f + PROTO_HEADER_BYTES, sizeof(f) - PROTO_HEADER_BYTES);
	proto_wr_svc(&w, &(struct store_svc_key){ { NULL, 0 }, { NULL, 0 }, { "bulky", 5 } });
	proto_wr_filter(&w, &(struct store_filter){ 0 });
	proto_header_put(f, OP_LIST, (uint32_t)(w.p - (f + PROTO_HEADER_BYTES)), 3, 0, 0);
	send_all(fd, f, (size_t)(w.p - f));
	cr_assert(read_frame(fd, &h, body, sizeof(body)));
	cr_assert_leq(PROTO_HEADER_BYTES + h.body_len, 65536u);
	uint32_t total = body[8] | body[9] << 8 | body[10] << 16 | (uint32_t)body[11] << 24;

	cr_assert_eq(total, 1000);
	cr_assert_lt(h.count, 1000, "cut: %u entries", h.count);
	cr_assert_gt(h.count, 100);
	close(fd);
}

/* A counter of the node's STATS text. */
static uint64_t stat_of(struct distro_client *c, const char *name)
{
	static char text[16384];
	char want[64];
	const char *p;

	cr_assert_gt(distro_stats(c, text, sizeof(text)), 0);
	snprintf(want, sizeof(want), "\n%s ", name);
	p = strstr(text, want);
	cr_assert_not_null(p, "no %s in STATS", name);
	return strtoull(p + strlen(want), NULL, 10);
}

/*
 * Receive buffers start few (64 per worker) and grow on demand. Requests
 * from many connections at once - sent while the node is stopped, so all
 * of them wait for it when it resumes - are each answered, whether or not
 * the ring ran out on the way (the kernel may run the receives in slices,
 * so it need not: tests/unit/io/test_uring.c makes it run out for sure);
 * the counters agree with what happened: a ring grows only after it ran
 * out, within its bound (512 per worker), and never held more filled
 * buffers than it had.
 */
#define BURST_CONNS 400

Test(wire, a_burst_from_many_connections_is_answered_within_the_buffers)
{
	static int fds[BURST_CONNS];
	struct distro_client *c = node_client(&node);
	uint64_t nobufs, bufs, peak;
	struct proto_header h;
	uint8_t f[64], body[64];

	cr_assert_eq(stat_of(c, "recv_bufs"), 2 * 64, "two workers, 64 buffers each at start");
	for (int i = 0; i < BURST_CONNS; i++) {
		fds[i] = raw_connect();
		send_all(fds[i], f, ping_frame(f, (uint32_t)i + 1)); /* set up, receive armed */
		cr_assert(read_frame(fds[i], &h, body, sizeof(body)));
		cr_assert_eq(h.request_id, (uint32_t)i + 1);
	}
	cr_assert_eq(kill(node.pid, SIGSTOP), 0);
	node_wait_stopped(node.pid, true);
	for (int i = 0; i < BURST_CONNS; i++)
		send_all(fds[i], f, ping_frame(f, (uint32_t)i + 100000));
	cr_assert_eq(kill(node.pid, SIGCONT), 0);
	node_wait_stopped(node.pid, false);
	for (int i = 0; i < BURST_CONNS; i++) {
		cr_assert(read_frame(fds[i], &h, body, sizeof(body)), "connection %d answered", i);
		cr_assert_eq(h.op, OP_PING | PROTO_RESPONSE);
		cr_assert_eq(h.request_id, (uint32_t)i + 100000);
		close(fds[i]);
	}
	nobufs = stat_of(c, "recv_nobufs");
	bufs = stat_of(c, "recv_bufs");
	peak = stat_of(c, "recv_bufs_peak");
	cr_log_info("burst of %d connections: recv_nobufs %llu, recv_bufs %llu, peak %llu",
	            BURST_CONNS, (unsigned long long)nobufs, (unsigned long long)bufs,
	            (unsigned long long)peak);
	if (nobufs == 0)
		cr_assert_eq(bufs, 2 * 64, "a ring that never ran out did not grow");
	else
		cr_assert_gt(bufs, 2 * 64, "a ring that ran out grew");
	cr_assert_leq(bufs, 2 * 512, "within the bound");
	cr_assert_geq(peak, 1);
	cr_assert_leq(peak, bufs, "never more filled than given");
	distro_close(c);
}
