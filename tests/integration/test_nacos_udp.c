/*
 * Nacos UDP push through a real distrod (docs/nacos.md, "UDP push"): a poll
 * of GET /instance/list with udpPort subscribes the HTTP connection's source
 * address (127.0.0.1 here) with that port; the tests bind UDP sockets on
 * 127.0.0.1, subscribe them, change the service and read what arrives.
 *
 * Packets are parsed with jsmn (nacos_node.h), not the server's JSON code;
 * gzip packets are inflated with zlib. Every wait is a poll() with a
 * deadline; a "nothing arrives" check waits a bounded time chosen from the
 * node's --nacos-push-retry. Instance addresses are documentation ones
 * (192.0.2.0/24) only.
 */
#include "nacos_node.h"

#include <poll.h>
#include <zlib.h>

#define NS "/nacos/v1/ns"

static struct http_node hn;
static struct http_conn *C;
static struct nacos_ans A;
static struct njson J;            /* a packet */
static struct njson D;            /* its data: the list answer */
static struct http_conn *more[4]; /* a test's other connections, closed by stop() */
static int n_more;

/* Another connection to the Nacos port (another subscriber's polls). */
static struct http_conn *conn(void)
{
	cr_assert_lt(n_more, 4);
	return more[n_more++] = http_open(hn.node.nacos_port);
}

static void start(const char *const *extra)
{
	http_node_start(&hn, extra);
	cr_assert_gt(hn.node.nacos_port, 0, "no --nacos-port-file");
	cr_assert_gt(hn.http_port, 0, "no --http-port-file");
	C = http_open(hn.node.nacos_port);
}

static void stop(void)
{
	if (C)
		http_close(C);
	C = NULL;
	while (n_more > 0)
		http_close(more[--n_more]);
	cr_assert_eq(http_node_stop(&hn), 0, "distrod exits 0 on SIGTERM");
}

TestSuite(nacos_udp, .fini = stop, .timeout = 120);

/* ---- HTTP ---- */

static int call(struct http_conn *c, const char *method, const char *fmt, ...)
{
	static char t[1 << 16];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t, sizeof(t), fmt, ap);
	va_end(ap);
	cr_assert_lt((size_t)n, sizeof(t));
	return nacos_do(c, &A, method, t, NULL, NULL);
}

/* Registers ip:port in cluster of svc; extra is more query parameters or NULL. */
static void reg(const char *svc, const char *ip, int port, const char *cluster, const char *extra)
{
	call(C, "POST", NS "/instance?serviceName=%s&ip=%s&port=%d&clusterName=%s&%s", svc, ip,
	     port, cluster, extra ? extra : "");
	cr_assert_eq(A.status, 200, "register %s:%d: %d %s", ip, port, A.status, A.body);
	cr_assert_str_eq(A.body, "ok");
}

/* One poll of svc with udpPort over c (whose source address is 127.0.0.1): subscribes. */
static void subscribe(struct http_conn *c, const char *svc, uint16_t udp_port, const char *clusters,
                      bool healthy_only)
{
	call(c, "GET", NS "/instance/list?serviceName=%s&udpPort=%u&clusters=%s&healthyOnly=%s",
	     svc, udp_port, nacos_enc(clusters), healthy_only ? "true" : "false");
	cr_assert_eq(A.status, 200, "poll: %d %s", A.status, A.body);
}

/* The count of GET /service/subscribers for svc. */
static long subscriber_count(const char *svc)
{
	call(C, "GET", NS "/service/subscribers?serviceName=%s", svc);
	cr_assert_eq(A.status, 200, "%d %s", A.status, A.body);
	nj_parse(&J, A.body, A.len);
	return strtol(nj_s(&J, 0, "count"), NULL, 10);
}

/* The sum of the samples of metric name in the admin port's /metrics. */
static long metric(const char *name)
{
	char *body, *p;
	size_t n = strlen(name);
	long sum = 0;
	bool seen = false;

	cr_assert_eq(http_get(hn.http_port, "/metrics", &body, NULL, 0), 200);
	for (p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, name, n) == 0 && (p[n] == ' ' || p[n] == '{')) {
			sum += strtol(strchr(p + n, ' ') + 1, NULL, 10);
			seen = true;
		}
	}
	free(body);
	cr_assert(seen, "no %s in /metrics", name);
	return sum;
}

/* ---- UDP ---- */

struct usock {
	int fd;
	uint16_t port;
};

static struct usock usock_open(void)
{
	struct usock u;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	u.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(u.fd, 0);
	cr_assert_eq(bind(u.fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind: %s", strerror(errno));
	cr_assert_eq(getsockname(u.fd, (struct sockaddr *)&a, &al), 0);
	u.port = ntohs(a.sin_port);
	return u;
}

struct pkt {
	unsigned char raw[65536];
	size_t raw_len;
	bool gz;
	char json[1 << 20]; /* the packet's JSON (inflated when gz), NUL-terminated */
	size_t json_len;
	char ref[64];       /* lastRefTime as sent */
	char data[1 << 20]; /* the decoded "data" string, parsed into D */
	int64_t at;         /* now_ms() when received */
	struct sockaddr_in from;
};

static struct pkt P, Q;

static void inflate_gz(struct pkt *p)
{
	z_stream z = { 0 };
	int rc;

	cr_assert_eq(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
	z.next_in = p->raw;
	z.avail_in = (uInt)p->raw_len;
	z.next_out = (Bytef *)p->json;
	z.avail_out = sizeof(p->json) - 1;
	rc = inflate(&z, Z_FINISH);
	cr_assert_eq(rc, Z_STREAM_END, "gzip packet does not inflate: %d %s", rc,
	             z.msg ? z.msg : "");
	cr_assert_eq(z.avail_in, 0, "bytes after the gzip stream");
	p->json_len = z.total_out;
	inflateEnd(&z);
}

/*
 * Waits at most timeout_ms for a datagram on u; false when none came.
 * A datagram that comes is checked as a push: gzip exactly when 1024 bytes
 * or more, {"type":"dom","lastRefTime":<number>,"data":"<list JSON>"},
 * with D the parsed list.
 */
static bool recv_pkt(struct usock u, struct pkt *p, int timeout_ms)
{
	struct pollfd pf = { .fd = u.fd, .events = POLLIN };
	socklen_t al = sizeof(p->from);
	ssize_t n;
	int v;

	if (poll(&pf, 1, timeout_ms) <= 0)
		return false;
	n = recvfrom(u.fd, p->raw, sizeof(p->raw), 0, (struct sockaddr *)&p->from, &al);
	cr_assert_gt(n, 0, "recvfrom: %s", strerror(errno));
	p->at = now_ms();
	p->raw_len = (size_t)n;
	p->gz = n >= 2 && p->raw[0] == 0x1f && p->raw[1] == 0x8b;
	if (p->gz) {
		inflate_gz(p);
		cr_assert_geq(p->json_len, 1024, "a packet of %zu bytes is gzipped", p->json_len);
	} else {
		cr_assert_lt(p->raw_len, 1024, "a plain packet of %zu bytes", p->raw_len);
		memcpy(p->json, p->raw, p->raw_len);
		p->json_len = p->raw_len;
	}
	p->json[p->json_len] = '\0';
	nj_parse(&J, p->json, p->json_len);
	cr_assert_eq(J.t[0].type, JSMN_OBJECT, "%s", p->json);
	cr_assert_str_eq(nj_s(&J, 0, "type"), "dom", "%s", p->json);
	cr_assert_eq(nj_type(&J, 0, "lastRefTime"), JSMN_PRIMITIVE, "%s", p->json);
	snprintf(p->ref, sizeof(p->ref), "%s", nj_s(&J, 0, "lastRefTime"));
	cr_assert(p->ref[0] >= '0' && p->ref[0] <= '9', "lastRefTime %s", p->ref);
	v = nj_get(&J, 0, "data");
	cr_assert_geq(v, 0, "no data: %s", p->json);
	cr_assert_eq(J.t[v].type, JSMN_STRING, "data is a string: %s", p->json);
	nj_parse(&D, p->data, nj_str_at(&J, v, p->data, sizeof(p->data)));
	cr_assert_eq(D.t[0].type, JSMN_OBJECT, "%s", p->data);
	return true;
}

/* Acks p to its source, lastRefTime as a number or (quoted) as a string. */
static void ack(struct usock u, const struct pkt *p, bool as_string)
{
	char b[256];
	int n = snprintf(b, sizeof(b),
	                 "{\"type\":\"push-ack\",\"lastRefTime\":%s%s%s,\"data\":\"\"}",
	                 as_string ? "\"" : "", p->ref, as_string ? "\"" : "");

	cr_assert_eq(
	        sendto(u.fd, b, (size_t)n, 0, (const struct sockaddr *)&p->from, sizeof(p->from)),
	        n, "sendto: %s", strerror(errno));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The hosts of D as sorted "ip:port" joined by ',' (a static buffer). */
static const char *hosts_of(void)
{
	static char out[4096];
	static char ips[64][64];
	const char *sorted[64];
	int hosts = nj_get(&D, 0, "hosts"), n;

	cr_assert_geq(hosts, 0, "no hosts");
	n = D.t[hosts].size;
	cr_assert_leq(n, 64);
	for (int i = 0; i < n; i++) {
		int h = nj_at(&D, hosts, i);

		snprintf(ips[i], sizeof(ips[i]), "%s:%s", nj_s(&D, h, "ip"), nj_s(&D, h, "port"));
		sorted[i] = ips[i];
	}
	qsort(sorted, (size_t)n, sizeof(sorted[0]), cmp_str);
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		strcat(out, i ? "," : "");
		strcat(out, sorted[i]);
	}
	return out;
}

/*
 * Reads pushes on u (acking each) until one lists exactly want, within 3 s;
 * every packet read must echo clusters and list no host named in never.
 */
static void expect_push(struct usock u, struct pkt *p, const char *clusters, const char *want,
                        const char *never)
{
	const char *got = "(nothing)";

	for (int64_t end = now_ms() + 3000; now_ms() < end;) {
		if (!recv_pkt(u, p, (int)(end - now_ms()) + 1))
			break;
		ack(u, p, false);
		cr_assert_str_eq(nj_s(&D, 0, "clusters"), clusters, "clusters not echoed: %s",
		                 p->data);
		got = hosts_of();
		if (never)
			cr_assert_null(strstr(got, never), "udpPort %u was pushed %s: %s", u.port,
			               never, p->data);
		if (strcmp(got, want) == 0)
			return;
	}
	cr_assert_fail("udpPort %u: no push of [%s] within 3 s; last [%s]", u.port, want, got);
}

/* Nothing arrives on u for ms (the bounded negative check). */
static void expect_silence(struct usock u, int ms, const char *why)
{
	struct pollfd pf = { .fd = u.fd, .events = POLLIN };
	int64_t end = now_ms() + ms;
	int r;

	while ((r = poll(&pf, 1, (int)(end - now_ms()) + 1)) < 0 && errno == EINTR)
		;
	if (r > 0 && recv_pkt(u, &Q, 0))
		cr_assert_fail("%s: udpPort %u got a packet: %s", why, u.port, Q.json);
}

/* ---- 1. content per subscriber ---- */

Test(nacos_udp, content_per_subscriber)
{
	static const char *const extra[] = { NULL };
	struct http_conn *ca, *cb, *cc;
	struct usock a = usock_open(), b = usock_open(), c = usock_open();

	start(extra);
	ca = conn();
	cb = conn();
	cc = conn();
	subscribe(ca, "udp1", a.port, "c1", false);
	subscribe(cb, "udp1", b.port, "", true);
	/* a third, its clusters in an order and form only an exact echo keeps */
	subscribe(cc, "udp1", c.port, "c2,c1", false);
	cr_assert_eq(subscriber_count("DEFAULT_GROUP@@udp1"), 3);

	reg("udp1", "192.0.2.1", 8080, "c1", NULL);
	reg("udp1", "192.0.2.2", 8080, "c2", NULL);
	reg("udp1", "192.0.2.3", 8080, "c2", "healthy=false");

	/* c1 only */
	expect_push(a, &P, "c1", "192.0.2.1:8080", "192.0.2.2");
	cr_assert_str_eq(nj_s(&D, 0, "name"), "DEFAULT_GROUP@@udp1");
	cr_assert_null(strstr(hosts_of(), "192.0.2.3"));
	/* every cluster, healthy only */
	expect_push(b, &P, "", "192.0.2.1:8080,192.0.2.2:8080", "192.0.2.3");
	/* both clusters, unhealthy included */
	expect_push(c, &P, "c2,c1", "192.0.2.1:8080,192.0.2.2:8080,192.0.2.3:8080", NULL);
	close(a.fd);
	close(b.fd);
	close(c.fd);
}

/* ---- 2. gzip ---- */

Test(nacos_udp, gzip_when_large)
{
	static const char *const extra[] = { NULL };
	struct usock u = usock_open();
	static char blob[2049], meta[4096], q[8192];
	int hosts, found = 0;

	for (int i = 0; i < 2048; i++)
		blob[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[(i * 7 + i / 36) % 36];
	blob[2048] = '\0';
	start(extra);
	subscribe(C, "udp2", u.port, "", false);

	/* a small list: plain JSON */
	reg("udp2", "192.0.2.10", 80, "DEFAULT", NULL);
	expect_push(u, &P, "", "192.0.2.10:80", NULL);
	cr_assert_not(P.gz, "a %zu-byte packet is plain", P.raw_len);
	cr_assert_eq(P.raw[0], '{');

	/* ~2 KiB of metadata: gzip, inflating to that metadata */
	snprintf(meta, sizeof(meta), "{\"blob\":\"%s\"}", blob);
	snprintf(q, sizeof(q), "metadata=%s", nacos_enc(meta));
	reg("udp2", "192.0.2.11", 80, "DEFAULT", q);
	expect_push(u, &P, "", "192.0.2.10:80,192.0.2.11:80", NULL);
	cr_assert(P.gz, "a packet with 2 KiB of metadata is gzipped");
	cr_assert_eq(P.raw[0], 0x1f);
	cr_assert_eq(P.raw[1], 0x8b);
	cr_assert_gt(P.json_len, 2048);
	hosts = nj_get(&D, 0, "hosts");
	for (int i = 0; i < D.t[hosts].size; i++) {
		int h = nj_at(&D, hosts, i), m = nj_get(&D, h, "metadata");

		if (strcmp(nj_s(&D, h, "ip"), "192.0.2.11") != 0)
			continue;
		cr_assert_str_eq(nj_s(&D, m, "blob"), blob, "the metadata survives gzip");
		found++;
	}
	cr_assert_eq(found, 1);
	close(u.fd);
}

/* ---- 3. ack and retry ---- */

Test(nacos_udp, ack_and_retry)
{
	static const char *const extra[] = { "--nacos-push-retry", "300", NULL };
	struct usock u = usock_open();
	long acked0, acked1, retries0;

	start(extra);
	subscribe(C, "udp3", u.port, "", false);
	retries0 = metric("distrod_worker_nacos_push_retries");

	/* no ack: the same datagram once more after ~300 ms, then never again */
	reg("udp3", "192.0.2.20", 80, "DEFAULT", NULL);
	cr_assert(recv_pkt(u, &P, 3000), "no push within 3 s");
	cr_assert_str_eq(hosts_of(), "192.0.2.20:80");
	cr_assert(recv_pkt(u, &Q, 3000), "no retry within 3 s (retry 300 ms)");
	cr_assert_eq(Q.raw_len, P.raw_len, "the retry is the same datagram");
	cr_assert_eq(memcmp(Q.raw, P.raw, P.raw_len), 0, "the retry is the same datagram");
	cr_assert_geq(Q.at - P.at, 250, "retried after %lld ms, want ~300",
	              (long long)(Q.at - P.at));
	cr_assert_leq(Q.at - P.at, 1000, "retried after %lld ms, want ~300",
	              (long long)(Q.at - P.at));
	expect_silence(u, 1200, "a push is retried once");
	cr_assert_eq(metric("distrod_worker_nacos_push_retries"), retries0 + 1);

	/* a numeric ack: no second copy */
	acked0 = metric("distrod_worker_nacos_push_acked");
	reg("udp3", "192.0.2.21", 80, "DEFAULT", NULL);
	cr_assert(recv_pkt(u, &P, 3000), "no push within 3 s");
	cr_assert_str_eq(hosts_of(), "192.0.2.20:80,192.0.2.21:80");
	ack(u, &P, false);
	expect_silence(u, 900, "acked (number)");
	acked1 = metric("distrod_worker_nacos_push_acked");
	cr_assert_eq(acked1, acked0 + 1, "acked %ld -> %ld", acked0, acked1);

	/* a string ack (Java 1.x) matches too */
	reg("udp3", "192.0.2.22", 80, "DEFAULT", NULL);
	cr_assert(recv_pkt(u, &P, 3000), "no push within 3 s");
	cr_assert_str_eq(hosts_of(), "192.0.2.20:80,192.0.2.21:80,192.0.2.22:80");
	ack(u, &P, true);
	expect_silence(u, 900, "acked (string)");
	cr_assert_eq(metric("distrod_worker_nacos_push_acked"), acked1 + 1);
	cr_assert_eq(metric("distrod_worker_nacos_push_retries"), retries0 + 1);
	close(u.fd);
}

/* ---- 4. expiry ---- */

Test(nacos_udp, expiry)
{
	static const char *const extra[] = { "--nacos-push-ttl", "1000", NULL };
	struct usock dead = usock_open(), live = usock_open();
	struct http_conn *cl;
	int64_t dead_poll;

	start(extra);
	cl = conn();
	subscribe(C, "udp4", dead.port, "", false);
	dead_poll = now_ms();
	subscribe(cl, "udp4", live.port, "", false);
	reg("udp4", "192.0.2.30", 80, "DEFAULT", NULL);
	expect_push(dead, &P, "", "192.0.2.30:80", NULL);
	expect_push(live, &P, "", "192.0.2.30:80", NULL);

	/* the live one keeps polling; the dead one stops: forgotten after 1 s */
	for (int64_t end = now_ms() + 10000;; nap_ms(200)) {
		cr_assert_lt(now_ms(), end, "the silent subscriber is not forgotten within 10 s");
		subscribe(cl, "udp4", live.port, "", false);
		if (now_ms() - dead_poll >= 1500 && subscriber_count("DEFAULT_GROUP@@udp4") == 1)
			break;
	}
	reg("udp4", "192.0.2.31", 80, "DEFAULT", NULL);
	expect_push(live, &P, "", "192.0.2.30:80,192.0.2.31:80", NULL);
	expect_silence(dead, 1500, "a subscriber that stopped polling");
	close(dead.fd);
	close(live.fd);
}

/* ---- 5. bound ---- */

Test(nacos_udp, subscriber_bound)
{
	static const char *const extra[] = { "--workers", "1", "--nacos-push-subs-max", "2", NULL };
	struct usock s[3] = { usock_open(), usock_open(), usock_open() };
	long refused0, refused1;

	start(extra);
	refused0 = metric("distrod_worker_nacos_push_refused");
	subscribe(C, "udp5", s[0].port, "", false);
	subscribe(C, "udp5", s[1].port, "", false);
	cr_assert_eq(metric("distrod_worker_nacos_push_refused"), refused0);
	subscribe(C, "udp5", s[2].port, "", false); /* still answered (200 above) */
	nj_parse(&J, A.body, A.len);
	cr_assert_str_eq(nj_s(&J, 0, "name"), "DEFAULT_GROUP@@udp5");
	refused1 = metric("distrod_worker_nacos_push_refused");
	cr_assert_gt(refused1, refused0, "refused %ld -> %ld", refused0, refused1);
	cr_assert_eq(subscriber_count("DEFAULT_GROUP@@udp5"), 2);

	reg("udp5", "192.0.2.40", 80, "DEFAULT", NULL);
	expect_push(s[0], &P, "", "192.0.2.40:80", NULL);
	expect_push(s[1], &P, "", "192.0.2.40:80", NULL);
	expect_silence(s[2], 1000, "the subscriber beyond --nacos-push-subs-max");
	for (int i = 0; i < 3; i++)
		close(s[i].fd);
}
