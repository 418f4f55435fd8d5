/*
 * fuzz_peer_session.c - a stateful fuzzer of the peer protocol: a real
 * distrod node runs in this process, and every input is a session of a
 * peer that knows the cluster secret.
 *
 * fuzz_pwire checks the frame decoder on its own; this target goes past
 * it, into what a member does with frames that are well formed but say
 * anything: forwards of any op and count, sync and chunk records for any
 * slot, digests and sums for ranges it never asked about, pulls, acks of
 * tags it never sent, pings with any map version - in any order and
 * mixed, over a link that authenticated like a real member's.
 *
 * Set-up (once, LLVMFuzzerInitialize): cluster.conf names this node
 * (127.0.0.1, member 1: members are numbered by address text) and a
 * second member at 127.0.0.2 that nobody serves - the fuzzer plays it.
 * The node is started with server_start, as distrod's main does, with
 * short peer timers, one worker and plaintext peer links (TLS has its own
 * target, fuzz_ptls), and the fuzzer waits until it answers SUMS_REQ,
 * which it does only once READY.
 *
 * Each input: a new connection to the peer port, HELLO and AUTH as member
 * 2 (the real HMAC handshake), then the input cut into frames - per frame
 * an op byte (mapped onto the peer ops), id, status, count and a body
 * length, then the body - each with a correct header, so the bytes reach
 * the handlers instead of stopping at the framing. A SUMS_REQ goes last; its
 * answer (or the node closing the link) means every frame before it was
 * read and handled by the peer thread. The next input's connection is
 * dialled (and its HELLO sent) as soon as this one's frames are out, so the
 * node answers both in one turn of its loop: an input then waits for the
 * peer thread once, not twice (the HELLO's answer is usually there when the
 * next input starts). Server threads run in this process
 * under the same sanitizers: a crash, an out-of-bounds access or a
 * use-after-free there ends the run with the input that caused it.
 *
 * libFuzzer's per-input leak check is off (-detect_leaks=0, added to the
 * flags here unless given): the node's threads allocate between inputs,
 * so nearly every input ends with more allocations than frees, and for
 * each libFuzzer ran the input again and had LeakSanitizer scan the whole
 * process - costlier than the input - until, after 1000 of them, it gave
 * the check up anyway. LeakSanitizer's check at exit still runs: a block
 * nothing reaches fails the run (what the node holds is reachable from
 * its server struct). The frames of an input go out in one send after
 * the handshake. On a busy machine the rate is set by how soon the two
 * threads get a CPU.
 */
#include "cluster/auth.h"
#include "cluster/pwire.h"
#include "core/err.h"
#include "core/log.h"
#include "proto/wire.h"
#include "server/config.h"
#include "server/server.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SELF_ID   1
#define FUZZER_ID 2
#define SECRET    "00112233445566778899aabbccddeeff"

static struct server srv;
static uint16_t peer_port;

static const uint8_t ops[] = {
	P_HELLO,    P_AUTH, P_PING, P_FWD,   P_FWD_ACK,   P_SYNC, P_DIGEST,
	P_SUMS_REQ, P_SUMS, P_PULL, P_CHUNK, P_PULL_DONE, 0,      99,
};

static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		abort();
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		abort();
}

static bool send_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

/*
 * The frames of a session after the handshake's first round trip go out
 * together: queued here, sent when the queue is full and before waiting
 * for an answer. One send per session instead of two per frame: the node
 * reads them in a few loop turns instead of being woken once per segment.
 */
static uint8_t obuf[1u << 18]; /* > one frame: a header and a u16 length */
static size_t olen;

static bool out_flush(int fd)
{
	bool ok = send_all(fd, obuf, olen);

	olen = 0;
	return ok;
}

static bool out_frame(int fd, uint8_t op, const void *body, uint32_t len, uint32_t id,
                      uint16_t status, uint16_t count)
{
	if (olen + PROTO_HEADER_BYTES + len > sizeof(obuf) && !out_flush(fd))
		return false;
	pwire_header_put(obuf + olen, op, len, id, status, count);
	if (len > 0)
		memcpy(obuf + olen + PROTO_HEADER_BYTES, body, len);
	olen += PROTO_HEADER_BYTES + len;
	return true;
}

/*
 * Reads frames until one of `op` arrives (its body copied to out, up to
 * cap): 1, or 0 when the node closed the link or 2 s passed.
 */
static uint8_t rbuf[PWIRE_FRAME_MAX + PROTO_HEADER_BYTES];
static size_t rhave; /* bytes in rbuf: the frames after the one read_until returned */

static int read_until(int fd, uint8_t op, uint8_t *out, size_t cap)
{
	uint8_t *buf = rbuf;
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		struct proto_header h;
		long n = pwire_frame_check(buf, rhave, &h);
		ssize_t k;

		if (n < 0)
			return 0;
		if (n > 0) {
			bool hit = h.op == op;

			if (hit)
				memcpy(out, buf + PROTO_HEADER_BYTES,
				       h.body_len < cap ? h.body_len : cap);
			memmove(buf, buf + n, rhave - (size_t)n);
			rhave -= (size_t)n;
			if (hit)
				return 1;
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > 2000)
			return 0;
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		k = recv(fd, buf + rhave, sizeof(rbuf) - rhave, 0);
		if (k <= 0)
			return 0;
		rhave += (size_t)k;
	}
}

/*
 * A connection to the peer port with our HELLO sent (nonce: ours, kept for
 * the AUTH), or -1.
 */
static int session_dial(uint8_t nonce[AUTH_NONCE_BYTES])
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(peer_port) };
	uint8_t hello[PROTO_HEADER_BYTES + 8 + AUTH_NONCE_BYTES];
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct proto_wr w;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		abort();
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || auth_nonce(nonce) < 0) {
		close(fd);
		return -1;
	}
	pwire_header_put(hello, P_HELLO, 8 + AUTH_NONCE_BYTES, 0, 0, 0);
	proto_wr_init(&w, hello + PROTO_HEADER_BYTES, 8);
	proto_wr_u16(&w, PWIRE_VERSION);
	proto_wr_u16(&w, FUZZER_ID);
	proto_wr_u16(&w, SELF_ID);
	proto_wr_u16(&w, 1); /* our client port: any */
	memcpy(hello + PROTO_HEADER_BYTES + 8, nonce, AUTH_NONCE_BYTES);
	if (!send_all(fd, hello, sizeof(hello))) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The rest of the handshake on a dialled connection: the node's HELLO and
 * AUTH read and checked, our AUTH queued (not sent). The link, or -1
 * (closed).
 */
static int session_finish(int fd, const uint8_t nonce[AUTH_NONCE_BYTES])
{
	uint8_t theirs[8 + AUTH_NONCE_BYTES], mac[AUTH_MAC_BYTES];

	rhave = 0;
	olen = 0;
	if (!read_until(fd, P_HELLO, theirs, sizeof(theirs)) ||
	    !read_until(fd, P_AUTH, mac, sizeof(mac)) ||
	    auth_check((const uint8_t *)SECRET, strlen(SECRET), AUTH_ACCEPTOR, nonce, theirs + 8,
	               FUZZER_ID, SELF_ID, mac) != 0) {
		close(fd);
		return -1;
	}
	auth_mac((const uint8_t *)SECRET, strlen(SECRET), AUTH_INITIATOR, nonce, theirs + 8,
	         FUZZER_ID, SELF_ID, mac);
	out_frame(fd, P_AUTH, mac, sizeof(mac), 0, 0, 0); /* the queue is empty: it fits */
	return fd;
}

/*
 * The next input's connection, dialled while the node works on this one's
 * frames (barrier): its HELLO is answered in the same turn of the peer
 * loop, so an input waits for the node once instead of twice.
 */
static int next_fd = -1;
static uint8_t next_nonce[AUTH_NONCE_BYTES];
static int64_t next_dialled_ms;

/* Half of the node's --peer-down (500 ms): an unauthenticated link older than that is not used. */
#define PREDIAL_FRESH_MS 250

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Has the node closed fd (its FIN read, nothing before it)? */
static bool closed_by_node(int fd)
{
	uint8_t b;

	return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/*
 * A link authenticated as member 2 (its AUTH queued, not sent), or -1.
 * The connection dialled ahead is used only while the node cannot have
 * dropped it yet: it closes a link not authenticated within --peer-down,
 * and its HELLO and AUTH, read from our buffer, would still check out on a
 * link it has closed since - the input would go into a dead socket unseen.
 */
static int session_open(void)
{
	int fd = next_fd;

	next_fd = -1;
	if (fd >= 0 && mono_ms() - next_dialled_ms > PREDIAL_FRESH_MS) {
		close(fd);
		fd = -1;
	}
	if (fd >= 0 && (fd = session_finish(fd, next_nonce)) >= 0) {
		if (!closed_by_node(fd))
			return fd;
		close(fd);
	}
	fd = session_dial(next_nonce);
	return fd < 0 ? -1 : session_finish(fd, next_nonce);
}

/*
 * SUMS_REQ for no range: answered (once READY) after every frame before it.
 * The next session is dialled once this one's frames are out.
 */
static bool barrier(int fd)
{
	static const uint8_t none[2] = { 0, 0 };
	uint8_t ans[2];

	if (!out_frame(fd, P_SUMS_REQ, none, sizeof(none), 0, 0, 0) || !out_flush(fd))
		return false;
	if (next_fd < 0) {
		next_fd = session_dial(next_nonce);
		next_dialled_ms = mono_ms();
	}
	return read_until(fd, P_SUMS, ans, sizeof(ans));
}

/* Adds -detect_leaks=0 to libFuzzer's flags (it parses them after this), unless given. */
static void no_leak_check_per_input(int *argc, char ***argv)
{
	static char flag[] = "-detect_leaks=0";
	static char *args[256];

	for (int i = 1; i < *argc; i++)
		if (strncmp((*argv)[i], "-detect_leaks=", 14) == 0)
			return;
	if (*argc + 2 > (int)(sizeof(args) / sizeof(args[0])))
		return;
	args[0] = (*argv)[0];
	args[1] = flag; /* first: flags must come before the corpus directories */
	for (int i = 1; i < *argc; i++)
		args[i + 1] = (*argv)[i];
	args[*argc + 1] = NULL;
	*argc += 1;
	*argv = args;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char dir[] = "/tmp/fuzz-peer-XXXXXX";
	char conf[128], secret[128], text[128], port[16];
	struct server_config cfg;
	uint16_t fake = free_port();

	no_leak_check_per_input(argc, argv);
	/*
	 * The node's threads run until the process ends, and the connection
	 * dialled ahead for the next input may be in its HELLO (an HMAC) then:
	 * OpenSSL's exit handler freeing its locks under it crashed a run at
	 * exit. Nothing of OpenSSL's needs freeing at exit here.
	 */
	if (OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL) != 1)
		abort();
	signal(SIGPIPE, SIG_IGN);
	if (mkdtemp(dir) == NULL)
		abort();
	peer_port = free_port();
	snprintf(conf, sizeof(conf), "%s/cluster.conf", dir);
	snprintf(secret, sizeof(secret), "%s/secret", dir);
	snprintf(text, sizeof(text), "127.0.0.1:%u\n127.0.0.2:%u\n", peer_port, fake);
	write_file(conf, text);
	write_file(secret, SECRET);
	snprintf(port, sizeof(port), "%u", peer_port);
	const char *log = getenv("FUZZ_PEER_LOG"); /* e.g. info, to see the node's side */
	/* clang-format off */
	char *args[] = {
		"distrod", "--port", "0", "--http-port", "0", "--nacos-port", "0",
		"--grpc-port", "off", "--workers", "1",
		"--cluster-conf", conf, "--cluster-secret-file", secret,
		"--peer-port", port, "--peer-tls", "off",
		"--peer-ping", "50", "--peer-suspect", "200", "--peer-down", "500",
		"--startup-wait", "100", "--log-level", (char *)(log ? log : "error"), NULL,
	};
	/* clang-format on */

	if (config_load(&cfg, (int)(sizeof(args) / sizeof(args[0])) - 1, args) != 0 ||
	    server_start(&srv, &cfg) < 0) {
		fprintf(stderr, "fuzz_peer_session: the node did not start\n");
		abort();
	}
	for (int i = 0; i < 100; i++) { /* READY once the absent member is given up: ~1 s */
		int fd = session_open();
		bool ok = fd >= 0 && barrier(fd);

		if (fd >= 0)
			close(fd);
		if (ok)
			return 0;
		usleep(100 * 1000);
	}
	fprintf(stderr, "fuzz_peer_session: the node never became READY\n");
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = session_open();
	bool open;

	/*
	 * The node may be reloading: when this process is starved (a fuzzer
	 * at nice 19 beside a test run), its peer loop can stand still past
	 * --peer-down, and it then drops its links and loads again, as after
	 * any stall, taking members again once loaded. A handshake is retried
	 * for 10 s before the node is called broken.
	 */
	for (int64_t end = mono_ms() + 10000; fd < 0 && mono_ms() < end; usleep(50 * 1000))
		fd = session_open();
	if (fd < 0)
		abort(); /* the node stopped accepting its member: it is broken */
	open = true;
	/* Per frame: op, id, status, count (u16), length (u16), then the body. */
	while (open && size >= 7) {
		uint8_t op = ops[data[0] % sizeof(ops)];
		uint32_t id = data[1];
		uint16_t status = data[2];
		uint16_t count = (uint16_t)(data[3] | data[4] << 8);
		uint32_t len = (uint32_t)(data[5] | data[6] << 8);

		data += 7, size -= 7;
		if (len > size)
			len = (uint32_t)size;
		open = out_frame(fd, op, data, len, id, status, count);
		data += len, size -= len;
	}
	if (open)
		(void)barrier(fd); /* or the node closed the link: a refused frame */
	close(fd);
	return 0;
}
