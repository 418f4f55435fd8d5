/*
 * Nacos UDP push (nacos/udp.h): coalescing, per-subscriber content, gzip,
 * escaping, acks, the one retry, supersession, expiry, bounds, too-big
 * packets, ack decoding and IPv4/IPv6 targets - all through a recording
 * send callback and a clock the test sets.
 */
#include "core/err.h"
#include "nacos/udp.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define PKTS_MAX 512

struct pkt {
	struct sockaddr_storage to;
	socklen_t to_len;
	uint8_t *bytes;
	size_t len;
};

/* The callbacks' side: what was sent, and what the render should produce. */
struct rec {
	struct pkt pkts[PKTS_MAX];
	size_t n;
	const char *raw; /* non-NULL: render exactly these raw_len bytes */
	size_t raw_len;
	int render_rc; /* non-zero: render fails with it */
	int send_rc;   /* non-zero: send fails with it */
	unsigned renders;
	unsigned gen; /* goes into every rendered list, so each render differs */
};

static int render_cb(void *ctx, const struct udp_sub_view *s, int64_t now_ms, char *buf, size_t cap)
{
	struct rec *r = ctx;
	int n;

	r->renders++;
	if (r->render_rc)
		return r->render_rc;
	if (r->raw) {
		if (r->raw_len > cap)
			return -ERR_PROTO_TOO_BIG;
		memcpy(buf, r->raw, r->raw_len);
		return (int)r->raw_len;
	}
	n = snprintf(buf, cap,
	             "{\"name\":\"%.*s@@%.*s\",\"ns\":\"%.*s\",\"clusters\":\"%.*s\","
	             "\"healthyOnly\":%s,\"shape\":%u,\"gen\":%u,\"now\":%lld}",
	             (int)s->svc.group.len, s->svc.group.p, (int)s->svc.service.len,
	             s->svc.service.p, (int)s->svc.ns.len, s->svc.ns.p, (int)s->clusters.len,
	             s->clusters.p, s->healthy_only ? "true" : "false", s->shape, r->gen,
	             (long long)now_ms);
	cr_assert(n > 0 && (size_t)n < cap);
	return n;
}

static int send_cb(void *ctx, const struct sockaddr_storage *to, socklen_t to_len,
                   const void *bytes, size_t len)
{
	struct rec *r = ctx;
	struct pkt *p;

	cr_assert(len >= 1 && len <= UDP_PACKET_BYTES_MAX);
	if (r->send_rc)
		return r->send_rc;
	cr_assert(r->n < PKTS_MAX);
	p = &r->pkts[r->n++];
	p->to = *to;
	p->to_len = to_len;
	p->bytes = malloc(len);
	memcpy(p->bytes, bytes, len);
	p->len = len;
	return 0;
}

static void rec_clear(struct rec *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->pkts[i].bytes);
	r->n = 0;
}

static struct rec rec;
static struct udp_push *u;

static void mk(const struct udp_config *c)
{
	struct udp_callbacks cb = { render_cb, send_cb };

	memset(&rec, 0, sizeof(rec));
	cr_assert_eq(udp_create(c, &cb, &rec, &u), 0);
}

static void mk_default(void)
{
	struct udp_config c;

	udp_config_default(&c);
	mk(&c);
}

static void teardown(void)
{
	udp_destroy(u);
	u = NULL;
	rec_clear(&rec);
}

static struct sockaddr_storage v4(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	cr_assert_eq(inet_pton(AF_INET, ip, &in->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage v6(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	cr_assert_eq(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
	return ss;
}

static struct store_str S(const char *s) {
	return (struct store_str){ s, (uint32_t)strlen(s) };
}

static struct store_svc_key
svc(const char *name)
{
	return (struct store_svc_key){ S("public"), S("DEFAULT_GROUP"), S(name) };
}

/* A poll of `name` from 127.0.0.1:<some TCP port> with udpPort = port. */
static int sub(const char *name, const char *clusters, uint16_t port, bool healthy, uint8_t shape,
               int64_t now)
{
	struct sockaddr_storage peer = v4("127.0.0.1", 51000);
	struct udp_sub_params p = {
		.svc = svc(name),
		.clusters = clusters ? S(clusters) : (struct store_str){ NULL, 0 },
		.peer = &peer,
		.udp_port = port,
		.healthy_only = healthy,
		.shape = shape,
	};

	return udp_sub_refresh(u, &p, now);
}

static uint16_t pkt_port(const struct pkt *p)
{
	if (p->to.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&p->to)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&p->to)->sin6_port);
}

/* A packet taken apart: gzip undone, the ref, and the data string unescaped. */
struct decoded {
	bool gz;
	uint64_t ref;
	char *plain; /* the outer JSON */
	size_t plain_len;
	char *data;
	size_t data_len;
};

static void decoded_free(struct decoded *d)
{
	free(d->plain);
	free(d->data);
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static struct decoded decode(const struct pkt *p)
{
	static const char head[] = "{\"type\":\"dom\",\"lastRefTime\":";
	struct decoded d = { 0 };
	const char *s, *end;
	char *o;

	d.gz = p->len >= 2 && p->bytes[0] == 0x1f && p->bytes[1] == 0x8b;
	if (d.gz) {
		z_stream z = { 0 };
		size_t cap = 1u << 20;

		d.plain = malloc(cap);
		cr_assert_eq(inflateInit2(&z, 15 + 16), Z_OK);
		z.next_in = p->bytes;
		z.avail_in = (uInt)p->len;
		z.next_out = (Bytef *)d.plain;
		z.avail_out = (uInt)cap;
		cr_assert_eq(inflate(&z, Z_FINISH), Z_STREAM_END, "a whole gzip stream");
		cr_assert_eq(z.avail_in, 0, "nothing after the gzip stream");
		d.plain_len = cap - z.avail_out;
		inflateEnd(&z);
	} else {
		d.plain = malloc(p->len);
		memcpy(d.plain, p->bytes, p->len);
		d.plain_len = p->len;
	}
	s = d.plain;
	end = d.plain + d.plain_len;
	cr_assert(d.plain_len > sizeof(head) && memcmp(s, head, sizeof(head) - 1) == 0,
	          "packet starts with type dom and lastRefTime");
	s += sizeof(head) - 1;
	cr_assert(*s >= '1' && *s <= '9');
	while (*s >= '0' && *s <= '9')
		d.ref = d.ref * 10 + (uint64_t)(*s++ - '0');
	cr_assert(end - s > 9 && memcmp(s, ",\"data\":\"", 9) == 0);
	s += 9;
	o = d.data = malloc(d.plain_len);
	for (;;) {
		cr_assert(s < end, "the data string is closed");
		unsigned char c = (unsigned char)*s++;

		cr_assert(c >= 0x20, "no raw control character in a JSON string");
		if (c == '"')
			break;
		if (c != '\\') {
			*o++ = (char)c;
			continue;
		}
		cr_assert(s < end);
		switch (*s++) {
		case '"':
			*o++ = '"';
			break;
		case '\\':
			*o++ = '\\';
			break;
		case '/':
			*o++ = '/';
			break;
		case 'b':
			*o++ = '\b';
			break;
		case 'f':
			*o++ = '\f';
			break;
		case 'n':
			*o++ = '\n';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 't':
			*o++ = '\t';
			break;
		case 'u':
			cr_assert(end - s >= 4 && s[0] == '0' && s[1] == '0');
			cr_assert(hexval(s[2]) >= 0 && hexval(s[3]) >= 0);
			*o++ = (char)(hexval(s[2]) * 16 + hexval(s[3]));
			s += 4;
			break;
		default:
			cr_assert_fail("bad escape");
		}
	}
	cr_assert(end - s == 1 && *s == '}', "the packet ends after data");
	d.data_len = (size_t)(o - d.data);
	return d;
}

static int ack(const struct sockaddr_storage *from, const char *fmt, uint64_t ref, int64_t now)
{
	char b[256];
	int n = snprintf(b, sizeof(b), fmt, (unsigned long long)ref);

	return udp_on_datagram(u, from, b, (size_t)n, now);
}

#define ACK_NUM "{\"type\":\"push-ack\",\"lastRefTime\":%llu,\"data\":\"\"}"
#define ACK_STR "{\"type\":\"push-ack\",\"lastRefTime\":\"%llu\",\"data\":\"\"}"

/* Number of digits of v. */
static size_t digits(uint64_t v)
{
	size_t n = 1;

	while (v >= 10)
		v /= 10, n++;
	return n;
}

/* The plain packet's length for ref and data of n bytes that need no escaping. */
static size_t plain_len(uint64_t ref, size_t n)
{
	return strlen("{\"type\":\"dom\",\"lastRefTime\":") + digits(ref) + strlen(",\"data\":\"") +
	       n + 2;
}

TestSuite(udp, .fini = teardown);

Test(udp, config_checked)
{
	struct udp_callbacks cb = { render_cb, send_cb }, none = { NULL, send_cb };
	struct udp_config c;
	struct udp_push *x;

	udp_config_default(&c);
	cr_assert_eq(c.sub_ttl_ms, 30000);
	cr_assert_eq(c.window_ms, 2);
	cr_assert_eq(c.retry_ms, 1000);
	cr_assert_eq(udp_create(&c, &none, NULL, &x), -ERR_INVAL);
	c.worker_id = UDP_WORKERS_MAX;
	cr_assert_eq(udp_create(&c, &cb, NULL, &x), -ERR_INVAL);
	cr_assert_null(x);
	udp_config_default(&c);
	c.subs_max = 0;
	cr_assert_eq(udp_create(&c, &cb, NULL, &x), -ERR_INVAL);
	udp_config_default(&c);
	c.unacked_max = 0; /* no retries at all is a valid choice */
	c.retry_bytes_max = 0;
	cr_assert_eq(udp_create(&c, &cb, NULL, &x), 0);
	udp_destroy(x);
}

Test(udp, idle_without_subscribers)
{
	mk_default();
	cr_assert_eq(udp_poll(u, 0), -1);
	cr_assert_eq(udp_service_changed(u, &(struct store_svc_key){ .service = S("x") }, 0), 0);
	cr_assert_eq(udp_poll(u, 0), -1);
	cr_assert_eq(udp_stats(u)->changes, 0);
}

Test(udp, three_changes_in_the_window_are_one_push_per_subscriber)
{
	struct store_svc_key k = svc("svc"), other = svc("other");

	mk_default();
	cr_assert_eq(sub("svc", "", 40001, false, 0, 1000), 0);
	cr_assert_eq(sub("svc", "", 40002, false, 0, 1000), 0);
	cr_assert_eq(udp_service_changed(u, &k, 1000), 2, "both marked");
	cr_assert_eq(udp_poll(u, 1000), 2, "due after the 2 ms window");
	cr_assert_eq(udp_service_changed(u, &k, 1001), 0, "already pending");
	cr_assert_eq(udp_service_changed(u, &other, 1001), 0, "nobody subscribes to it");
	cr_assert_eq(udp_poll(u, 1001), 1);
	cr_assert_eq(rec.n, 0);
	cr_assert_eq(udp_service_changed(u, &k, 1001), 0);
	cr_assert_eq(udp_poll(u, 1002), 1000 - 0, "next: the retry, 1000 ms on");
	cr_assert_eq(rec.n, 2, "one packet per subscriber");
	cr_assert_eq(rec.renders, 2);
	cr_assert_neq(pkt_port(&rec.pkts[0]), pkt_port(&rec.pkts[1]));
	cr_assert_eq(udp_stats(u)->pushes, 2);
	cr_assert_eq(udp_stats(u)->changes, 3);
	udp_poll(u, 1500);
	cr_assert_eq(rec.n, 2, "nothing more until the next change");

	/* The next change after the window is a new push. */
	cr_assert_eq(udp_service_changed(u, &k, 1600), 2);
	udp_poll(u, 1602);
	cr_assert_eq(rec.n, 4);
}

Test(udp, each_subscriber_gets_its_own_list)
{
	struct store_svc_key k = svc("svc");

	mk_default();
	rec.gen = 7;
	cr_assert_eq(sub("svc", "c1", 40001, false, 1, 0), 0);
	cr_assert_eq(sub("svc", "c1,c2", 40002, true, 2, 0), 0);
	cr_assert_eq(udp_service_changed(u, &k, 10), 2);
	udp_poll(u, 12);
	cr_assert_eq(rec.n, 2);
	for (size_t i = 0; i < 2; i++) {
		struct decoded d = decode(&rec.pkts[i]);
		const char *want =
		        pkt_port(&rec.pkts[i]) == 40001
		                ? "{\"name\":\"DEFAULT_GROUP@@svc\",\"ns\":\"public\",\"clusters\":"
		                  "\"c1\","
		                  "\"healthyOnly\":false,\"shape\":1,\"gen\":7,\"now\":12}"
		                : "{\"name\":\"DEFAULT_GROUP@@svc\",\"ns\":\"public\",\"clusters\":"
		                  "\"c1,c2\",\"healthyOnly\":true,\"shape\":2,\"gen\":7,\"now\":"
		                  "12}";

		cr_assert_not(d.gz);
		cr_assert_eq(d.data_len, strlen(want));
		cr_assert_arr_eq(d.data, want, d.data_len, "packet %zu: %.*s", i, (int)d.data_len,
		                 d.data);
		decoded_free(&d);
	}

	/* A refresh keeps the subscriber and takes the poll's healthyOnly and shape. */
	rec_clear(&rec);
	cr_assert_eq(sub("svc", "c1", 40001, true, 3, 20), 0);
	cr_assert_eq(udp_stats(u)->subs, 2);
	cr_assert_eq(udp_stats(u)->subs_refreshed, 1);
	udp_service_changed(u, &k, 20);
	udp_poll(u, 22);
	cr_assert_eq(rec.n, 2);
	for (size_t i = 0; i < 2; i++) {
		struct decoded d = decode(&rec.pkts[i]);

		if (pkt_port(&rec.pkts[i]) == 40001)
			cr_assert_not_null(strstr(d.data,
			                          "\"clusters\":\"c1\",\"healthyOnly\":true,"
			                          "\"shape\":3"));
		decoded_free(&d);
	}

	/* Another clusters string is another subscriber (the client's cache key). */
	cr_assert_eq(sub("svc", "c2", 40001, false, 0, 30), 0);
	cr_assert_eq(udp_stats(u)->subs, 3);
	cr_assert_eq(udp_stats(u)->services, 1);
}

Test(udp, absent_namespace_and_group_are_the_defaults)
{
	struct sockaddr_storage peer = v4("10.0.0.1", 1);
	struct udp_sub_params p = { .svc = { .service = S("svc") }, .peer = &peer, .udp_port = 9 };
	struct store_svc_key empty = { S(""), S(""), S("svc") };

	mk_default();
	cr_assert_eq(udp_sub_refresh(u, &p, 0), 0);
	cr_assert_eq(udp_service_changed(u, &(struct store_svc_key){ .service = S("") }, 0),
	             -ERR_NAME_EMPTY);
	cr_assert_eq(udp_service_changed(u, &empty, 0), 1, "\"\" is the default too");
	udp_poll(u, 2);
	cr_assert_eq(rec.n, 1);
	struct decoded d = decode(&rec.pkts[0]);
	cr_assert_not_null(strstr(d.data, "\"name\":\"DEFAULT_GROUP@@svc\",\"ns\":\"public\""));
	decoded_free(&d);
	p.svc.service = S("");
	cr_assert_eq(udp_sub_refresh(u, &p, 0), -ERR_NAME_EMPTY);
	cr_assert_eq(udp_stats(u)->subs_invalid, 1);
}

Test(udp, gzip_from_1024_bytes_on)
{
	struct udp_config c;
	struct store_svc_key k = svc("svc");
	struct sockaddr_storage from = v4("127.0.0.1", 40001);
	char *raw = malloc(200000);
	uint64_t ref = 1 * UDP_WORKERS_MAX + 5; /* the first ref of worker 5 */
	size_t n;

	udp_config_default(&c);
	c.worker_id = 5;
	mk(&c);
	for (size_t i = 0; i < 200000; i++)
		raw[i] = (char)('a' + i % 26);
	rec.raw = raw;
	cr_assert_eq(sub("svc", "", 40001, false, 0, 0), 0);

	/* 1023 bytes: plain. */
	n = 1023 - plain_len(ref, 0);
	rec.raw_len = n;
	udp_service_changed(u, &k, 0);
	udp_poll(u, 2);
	cr_assert_eq(rec.n, 1);
	cr_assert_eq(rec.pkts[0].len, 1023);
	cr_assert_neq(rec.pkts[0].bytes[0], 0x1f);
	struct decoded d = decode(&rec.pkts[0]);
	cr_assert_not(d.gz);
	cr_assert_eq(d.ref, ref);
	cr_assert_eq(d.data_len, n);
	cr_assert_arr_eq(d.data, raw, n);
	decoded_free(&d);
	cr_assert_eq(ack(&from, ACK_NUM, ref, 3), 0);

	/* 1024 bytes: gzip, and inflating gives exactly the plain packet. */
	ref += UDP_WORKERS_MAX;
	n = 1024 - plain_len(ref, 0);
	rec.raw_len = n;
	udp_service_changed(u, &k, 10);
	udp_poll(u, 12);
	cr_assert_eq(rec.n, 2);
	cr_assert_eq(rec.pkts[1].bytes[0], 0x1f);
	cr_assert_eq(rec.pkts[1].bytes[1], 0x8b);
	d = decode(&rec.pkts[1]);
	cr_assert(d.gz);
	cr_assert_eq(d.plain_len, 1024);
	cr_assert_eq(d.ref, ref);
	cr_assert_arr_eq(d.data, raw, n);
	decoded_free(&d);
	cr_assert_eq(ack(&from, ACK_NUM, ref, 13), 0);

	/* 200000 bytes of list: compressed far below the datagram limit, and intact. */
	ref += UDP_WORKERS_MAX;
	rec.raw_len = 200000;
	udp_service_changed(u, &k, 20);
	udp_poll(u, 22);
	cr_assert_eq(rec.n, 3);
	cr_assert_lt(rec.pkts[2].len, 20000);
	d = decode(&rec.pkts[2]);
	cr_assert_eq(d.ref, ref);
	cr_assert_eq(d.data_len, 200000);
	cr_assert_arr_eq(d.data, raw, 200000);
	decoded_free(&d);
	cr_assert_eq(udp_stats(u)->gzipped, 2);
	cr_assert_eq(udp_stats(u)->push_bytes, rec.pkts[0].len + rec.pkts[1].len + rec.pkts[2].len);
	free(raw);
}

Test(udp, data_is_escaped)
{
	static const char nasty[] =
	        "q\"b\\s/ n\nr\rt\tb\bf\f c\x01\x1f d\x7f utf8 \xc3\xa9 \xe4\xb8\xad";
	struct store_svc_key k = svc("svc");
	char *big = malloc(30000);

	mk_default();
	cr_assert_eq(sub("svc", "", 40001, false, 0, 0), 0);
	rec.raw = nasty;
	rec.raw_len = sizeof(nasty) - 1;
	udp_service_changed(u, &k, 0);
	udp_poll(u, 2);
	cr_assert_eq(rec.n, 1);
	struct decoded d = decode(&rec.pkts[0]);
	cr_assert_not(d.gz);
	cr_assert_eq(d.data_len, sizeof(nasty) - 1);
	cr_assert_arr_eq(d.data, nasty, d.data_len);
	decoded_free(&d);

	/* Escapes that cross the compressor's chunks (6 bytes out per byte in). */
	for (size_t i = 0; i < 30000; i++)
		big[i] = (char)(i % 7 == 0 ? '"' : i % 3 == 0 ? (char)(i % 32) : 'x');
	rec.raw = big;
	rec.raw_len = 30000;
	udp_service_changed(u, &k, 10);
	udp_poll(u, 12);
	cr_assert_eq(rec.n, 2);
	d = decode(&rec.pkts[1]);
	cr_assert(d.gz);
	cr_assert_eq(d.data_len, 30000);
	cr_assert_arr_eq(d.data, big, 30000);
	decoded_free(&d);
	free(big);
}

Test(udp, acks_match_by_address_and_ref)
{
	struct store_svc_key k = svc("svc");
	struct sockaddr_storage a = v4("127.0.0.1", 40001), b = v4("127.0.0.1", 40002);
	struct sockaddr_storage b_other_ip = v4("127.0.0.2", 40002);
	struct sockaddr_storage a_mapped = v6("::ffff:127.0.0.1", 40001);
	uint64_t ra = 0, rb = 0;

	mk_default();
	cr_assert_eq(sub("svc", "", 40001, false, 0, 0), 0);
	cr_assert_eq(sub("svc", "", 40002, false, 0, 0), 0);
	udp_service_changed(u, &k, 0);
	udp_poll(u, 2);
	cr_assert_eq(rec.n, 2);
	for (size_t i = 0; i < 2; i++) {
		struct decoded d = decode(&rec.pkts[i]);

		*(pkt_port(&rec.pkts[i]) == 40001 ? &ra : &rb) = d.ref;
		decoded_free(&d);
	}
	cr_assert(ra && rb && ra != rb);
	cr_assert_lt(ra, UDP_REF_MAX);
	cr_assert_eq(udp_stats(u)->unacked, 2);

	cr_assert_eq(ack(&b, ACK_NUM, ra, 3), -ERR_NOT_FOUND, "a's ref from b's address");
	cr_assert_eq(ack(&b_other_ip, ACK_NUM, rb, 3), -ERR_NOT_FOUND, "b's port, another ip");
	cr_assert_eq(ack(&a, ACK_NUM, ra + 1, 3), -ERR_NOT_FOUND, "an unknown ref");
	cr_assert_eq(udp_stats(u)->acks_unmatched, 3);
	cr_assert_eq(udp_stats(u)->unacked, 2);

	cr_assert_eq(ack(&a_mapped, ACK_NUM, ra, 4), 0, "numeric ref; v4-mapped source is v4");
	cr_assert_eq(ack(&a, ACK_NUM, ra, 4), -ERR_NOT_FOUND, "acked once only");
	cr_assert_eq(ack(&b, ACK_STR, rb, 5), 0, "string ref (Java 1.x)");
	cr_assert_eq(udp_stats(u)->acked, 2);
	cr_assert_eq(udp_stats(u)->unacked, 0);
	cr_assert_eq(udp_stats(u)->retry_bytes, 0);

	cr_assert_eq(udp_poll(u, 5000), 25000 - 0, "no retry left; next is the expiry");
	cr_assert_eq(rec.n, 2);
	cr_assert_eq(udp_stats(u)->retries, 0);
}

Test(udp, one_retry_then_give_up)
{
	struct store_svc_key k = svc("svc");
	struct sockaddr_storage a = v4("127.0.0.1", 40001);

	mk_default();
	cr_assert_eq(sub("svc", "", 40001, false, 0, 0), 0);
	udp_service_changed(u, &k, 0);
	cr_assert_eq(udp_poll(u, 2), 1000);
	cr_assert_eq(rec.n, 1);
	cr_assert_eq(udp_poll(u, 1001), 1);
	cr_assert_eq(rec.n, 1);
	cr_assert_eq(udp_poll(u, 1002), 1000, "the retry; next the give-up");
	cr_assert_eq(rec.n, 2);
	cr_assert_eq(rec.pkts[1].len, rec.pkts[0].len);
	cr_assert_arr_eq(rec.pkts[1].bytes, rec.pkts[0].bytes, rec.pkts[0].len, "same packet");
	cr_assert_eq(udp_stats(u)->retries, 1);
	udp_poll(u, 2001);
	cr_assert_eq(udp_stats(u)->failed, 0);
	udp_poll(u, 2002);
	cr_assert_eq(udp_stats(u)->failed, 1);
	cr_assert_eq(udp_stats(u)->unacked, 0);
	cr_assert_eq(udp_stats(u)->retry_bytes, 0);
	udp_poll(u, 9000);
	cr_assert_eq(rec.n, 2, "never a third send");
	struct decoded d = decode(&rec.pkts[0]);
	cr_assert_eq(ack(&a, ACK_NUM, d.ref, 9000), -ERR_NOT_FOUND, "given up: too late");
	decoded_free(&d);

	/* An ack after the retry still counts, and nothing is given up. */
	udp_service_changed(u, &k, 10000);
	udp_poll(u, 10002);
	udp_poll(u, 11002);
	cr_assert_eq(rec.n, 4);
	d = decode(&rec.pkts[3]);
	cr_assert_eq(ack(&a, ACK_STR, d.ref, 11500), 0);
	decoded_free(&d);
	udp_poll(u, 12002);
	cr_assert_eq(udp_stats(u)->failed, 1);
	cr_assert_eq(udp_stats(u)->acked, 1);
	cr_assert_eq(udp_stats(u)->retries, 2);
	cr_assert_eq(rec.n, 4);
}

Test(udp, newer_push_supersedes_the_unacked_one)
{
	struct store_svc_key k = svc("svc");
	struct sockaddr_storage a = v4("127.0.0.1", 40001);

	mk_default();
	cr_assert_eq(sub("svc", "", 40001, false, 0, 0), 0);
	udp_service_changed(u, &k, 0);
	udp_poll(u, 2);
	rec.gen = 1;
	udp_service_changed(u, &k, 500);
	udp_poll(u, 502);
	cr_assert_eq(rec.n, 2);
	cr_assert_eq(udp_stats(u)->superseded, 1);
	cr_assert_eq(udp_stats(u)->unacked, 1);
	struct decoded d1 = decode(&rec.pkts[0]), d2 = decode(&rec.pkts[1]);
	cr_assert_neq(d1.ref, d2.ref);
	cr_assert_not_null(strstr(d2.data, "\"gen\":1"));
	udp_poll(u, 1002);
	cr_assert_eq(rec.n, 2, "no retry of the older push");
	cr_assert_eq(udp_poll(u, 1502), 1000);
	cr_assert_eq(rec.n, 3, "the newer one is retried");
	cr_assert_arr_eq(rec.pkts[2].bytes, rec.pkts[1].bytes, rec.pkts[1].len);
	cr_assert_eq(ack(&a, ACK_NUM, d1.ref, 1600), -ERR_NOT_FOUND);
	cr_assert_eq(ack(&a, ACK_NUM, d2.ref, 1600), 0);
	decoded_free(&d1);
	decoded_free(&d2);
}

Test(udp, silent_subscribers_expire_and_polls_keep_them)
{
	struct store_svc_key k = svc("svc");

	mk_default();
	cr_assert_eq(sub("svc", "", 40001, false, 0, 0), 0);
	cr_assert_eq(sub("svc", "", 40002, false, 0, 0), 0);
	cr_assert_eq(udp_poll(u, 0), 30000);
	cr_assert_eq(sub("svc", "", 40001, false, 0, 20000), 0, "a poll at 20 s");
	cr_assert_eq(udp_poll(u, 29999), 1);
	cr_assert_eq(udp_stats(u)->subs, 2);
	cr_assert_eq(udp_poll(u, 30000), 20000, "40002 expired; 40001 lives until 50 s");
	cr_assert_eq(udp_stats(u)->subs, 1);
	cr_assert_eq(udp_stats(u)->subs_expired, 1);
	cr_assert_eq(udp_service_changed(u, &k, 30000), 1);
	udp_poll(u, 30002);
	cr_assert_eq(rec.n, 1);
	cr_assert_eq(pkt_port(&rec.pkts[0]), 40001);

	udp_poll(u, 31002);
	cr_assert_eq(rec.n, 2, "the retry");
	udp_poll(u, 32002);
	cr_assert_eq(udp_stats(u)->failed, 1);
	cr_assert_eq(udp_poll(u, 49989), 11, "expiry at 50000");

	/* Expiring with a push unacked drops the push too. */
	udp_service_changed(u, &k, 49990);
	udp_poll(u, 49992);
	cr_assert_eq(udp_stats(u)->unacked, 1);
	cr_assert_eq(udp_poll(u, 50000), -1, "nothing left at all");
	cr_assert_eq(udp_stats(u)->subs, 0);
	cr_assert_eq(udp_stats(u)->services, 0);
	cr_assert_eq(udp_stats(u)->unacked, 0);
	cr_assert_eq(udp_stats(u)->abandoned, 1);
	cr_assert_eq(udp_service_changed(u, &k, 50000), 0);
	udp_poll(u, 60000);
	cr_assert_eq(rec.n, 3);
	cr_assert_eq(udp_stats(u)->subs_expired, 2);
}

Test(udp, subscriber_bound)
{
	struct udp_config c;

	udp_config_default(&c);
	c.subs_max = 2;
	mk(&c);
	cr_assert_eq(sub("a", "", 40001, false, 0, 0), 0);
	cr_assert_eq(sub("b", "", 40001, false, 0, 0), 0);
	cr_assert_eq(sub("c", "", 40001, false, 0, 0), -ERR_LIMIT_SUBS);
	cr_assert_eq(udp_stats(u)->subs_refused, 1);
	cr_assert_eq(udp_stats(u)->services, 2, "a refused poll leaves no service behind");
	cr_assert_eq(sub("a", "", 40001, false, 0, 10), 0, "refreshing one is not creating one");
	udp_poll(u, 30000);
	cr_assert_eq(udp_stats(u)->subs, 1, "b expired");
	cr_assert_eq(sub("c", "", 40001, false, 0, 30000), 0, "room again");
}

Test(udp, unacked_bound)
{
	struct udp_config c;
	struct store_svc_key k = svc("svc");

	udp_config_default(&c);
	c.unacked_max = 2;
	mk(&c);
	for (uint16_t p = 40001; p <= 40003; p++)
		cr_assert_eq(sub("svc", "", p, false, 0, 0), 0);
	udp_service_changed(u, &k, 0);
	udp_poll(u, 2);
	cr_assert_eq(rec.n, 3, "all three sent");
	cr_assert_eq(udp_stats(u)->unacked, 2);
	cr_assert_eq(udp_stats(u)->not_retried, 1);
	udp_poll(u, 1002);
	cr_assert_eq(rec.n, 5, "two retries");
	cr_assert_eq(udp_stats(u)->retries, 2);
}

Test(udp, retry_bytes_bound)
{
	struct udp_config c;
	struct store_svc_key k = svc("svc");
	char raw[700];

	udp_config_default(&c);
	c.retry_bytes_max = 2000;
	mk(&c);
	memset(raw, 'x', sizeof(raw));
	rec.raw = raw;
	rec.raw_len = sizeof(raw); /* ~750-byte plain packets: two fit in 2000 */
	for (uint16_t p = 40001; p <= 40003; p++)
		cr_assert_eq(sub("svc", "", p, false, 0, 0), 0);
	udp_service_changed(u, &k, 0);
	udp_poll(u, 2);
	cr_assert_eq(rec.n, 3);
	cr_assert_eq(udp_stats(u)->unacked, 2);
	cr_assert_eq(udp_stats(u)->not_retried, 1);
	cr_assert_leq(udp_stats(u)->retry_bytes, 2000);
	for (size_t i = 0; i < 3; i++) {
		struct decoded d = decode(&rec.pkts[i]);
		struct sockaddr_storage from = v4("127.0.0.1", pkt_port(&rec.pkts[i]));

		ack(&from, ACK_NUM, d.ref, 5);
		decoded_free(&d);
	}
	cr_assert_eq(udp_stats(u)->acked, 2);
	cr_assert_eq(udp_stats(u)->retry_bytes, 0, "all space back");
}

static uint32_t rnd(uint64_t *seed)
{
	*seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(*seed >> 33);
}

/* Pushes, acks, losses and expiries at random: the books always balance. */
Test(udp, churn_keeps_the_books)
{
	struct udp_config c;
	static const char *names[3] = { "s0", "s1", "s2" };
	struct store_svc_key keys[3] = { svc("s0"), svc("s1"), svc("s2") };
	char *raw = malloc(3000);
	uint64_t seed = 42;
	int64_t now = 0;

	udp_config_default(&c);
	c.retry_bytes_max = 6000;
	c.unacked_max = 6;
	c.sub_ttl_ms = 5000;
	c.poll_budget = 4;
	mk(&c);
	for (size_t i = 0; i < 3000; i++)
		raw[i] = (char)('a' + i % 17);
	rec.raw = raw;
	for (int round = 0; round < 5000; round++) {
		uint32_t r = rnd(&seed);

		now += r % 200;
		if (((r >> 8) & 3) == 0) /* a poll of one of 3 x 2 x 12 subscribers */
			sub(names[(r >> 10) % 3], (r >> 12) & 1 ? "" : "c",
			    (uint16_t)(40000 + (r >> 13) % 12), false, 0, now);
		if (((r >> 17) & 3) == 0)
			udp_service_changed(u, &keys[(r >> 19) % 3], now);
		rec.raw_len = 100 + (r >> 21) % 1500; /* some gzipped, sizes vary: the ring wraps */
		udp_poll(u, now);
		for (size_t i = 0; i < rec.n; i++)
			if (rnd(&seed) % 3 == 0) { /* ack a third */
				struct decoded d = decode(&rec.pkts[i]);

				udp_on_datagram(u, &rec.pkts[i].to, "x", 1, now); /* garbage too */
				ack(&rec.pkts[i].to, (r & 1) ? ACK_NUM : ACK_STR, d.ref, now);
				decoded_free(&d);
			}
		rec_clear(&rec);

		const struct udp_stats *st = udp_stats(u);

		cr_assert_leq(st->unacked, c.unacked_max);
		cr_assert_leq(st->retry_bytes, c.retry_bytes_max);
		cr_assert_eq(st->pushes, st->not_retried + st->acked + st->failed + st->superseded +
		                                 st->abandoned + st->unacked);
		cr_assert_eq(st->subs, st->subs_created - st->subs_expired);
	}
	cr_assert_gt(udp_stats(u)->acked, 100);
	cr_assert_gt(udp_stats(u)->failed, 10);
	cr_assert_gt(udp_stats(u)->subs_expired, 10);
	cr_assert_gt(udp_stats(u)->gzipped, 100);
	cr_assert_gt(udp_stats(u)->not_retried, 10);
	cr_assert_gt(udp_stats(u)->abandoned, 10);
	cr_assert_gt(udp_stats(u)->superseded, 10);
	cr_assert_gt(udp_stats(u)->retries, 10);
	free(raw);
}

Test(udp, too_big_is_not_sent)
{
	struct udp_config c;
	struct store_svc_key k = svc("svc");
	size_t n = 70 * 1024;
	char *raw = malloc(n);
	uint64_t seed = 7;

	udp_config_default(&c);
	mk(&c);
	for (size_t i = 0; i < n; i++) { /* random bytes: nothing to compress */
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		raw[i] = (char)(seed >> 56);
	}
	rec.raw = raw;
	rec.raw_len = n;
	cr_assert_eq(sub("svc", "", 40001, false, 0, 0), 0);
	udp_service_changed(u, &k, 0);
	cr_assert_eq(udp_poll(u, 2), 30000 - 2, "nothing to retry");
	cr_assert_eq(rec.n, 0);
	cr_assert_eq(udp_stats(u)->too_big, 1);
	cr_assert_eq(udp_stats(u)->unacked, 0);

	/* A render larger than render_bytes_max: the callback says so. */
	udp_destroy(u);
	c.render_bytes_max = 4096;
	mk(&c);
	rec.raw = raw;
	rec.raw_len = 5000;
	cr_assert_eq(sub("svc", "", 40001, false, 0, 0), 0);
	udp_service_changed(u, &k, 0);
	udp_poll(u, 2);
	cr_assert_eq(udp_stats(u)->too_big, 1);
	rec.raw = NULL;
	rec.render_rc = -ERR_NOT_FOUND;
	udp_service_changed(u, &k, 10);
	udp_poll(u, 12);
	cr_assert_eq(udp_stats(u)->render_failed, 1);
	cr_assert_eq(rec.n, 0);

	/* The compressor is fine after a failed stream. */
	rec.render_rc = 0;
	udp_service_changed(u, &k, 20);
	udp_poll(u, 22);
	cr_assert_eq(rec.n, 1);
	free(raw);
}

Test(udp, send_failure_is_retried_like_a_loss)
{
	struct store_svc_key k = svc("svc");

	mk_default();
	cr_assert_eq(sub("svc", "", 40001, false, 0, 0), 0);
	rec.send_rc = -ERR_BUSY;
	udp_service_changed(u, &k, 0);
	udp_poll(u, 2);
	cr_assert_eq(udp_stats(u)->send_errors, 1);
	cr_assert_eq(udp_stats(u)->pushes, 0);
	cr_assert_eq(udp_stats(u)->unacked, 1);
	rec.send_rc = 0;
	udp_poll(u, 1002);
	cr_assert_eq(rec.n, 1);
	cr_assert_eq(udp_stats(u)->retries, 1);
}

Test(udp, poll_work_is_bounded)
{
	struct udp_config c;
	struct store_svc_key k = svc("svc");

	udp_config_default(&c);
	c.poll_budget = 3;
	mk(&c);
	for (uint16_t p = 40001; p <= 40005; p++)
		cr_assert_eq(sub("svc", "", p, false, 0, 0), 0);
	cr_assert_eq(udp_service_changed(u, &k, 0), 5);
	cr_assert_eq(udp_poll(u, 1), 1);
	cr_assert_eq(udp_poll(u, 2), 0, "budget spent, more due");
	cr_assert_eq(rec.n, 3);
	cr_assert_eq(udp_poll(u, 2), 1000);
	cr_assert_eq(rec.n, 5);
}

Test(udp, ipv4_and_ipv6_targets)
{
	struct store_svc_key k = svc("svc");
	struct sockaddr_storage p6 = v6("2001:db8::1", 55555), p4m = v6("::ffff:192.0.2.7", 55555);
	struct sockaddr_storage p4 = v4("192.0.2.9", 55555);
	struct sockaddr_storage unix_peer = { .ss_family = AF_UNIX };
	struct udp_sub_params p = { .svc = k, .peer = &p6, .udp_port = 40006 };
	char ip[INET6_ADDRSTRLEN];
	int seen = 0;

	mk_default();
	cr_assert_eq(udp_sub_refresh(u, &p, 0), 0);
	p.peer = &p4m;
	p.udp_port = 40004;
	cr_assert_eq(udp_sub_refresh(u, &p, 0), 0);
	p.peer = &p4;
	p.udp_port = 40005;
	cr_assert_eq(udp_sub_refresh(u, &p, 0), 0);
	p.udp_port = 0;
	cr_assert_eq(udp_sub_refresh(u, &p, 0), -ERR_ADDR);
	p.peer = &unix_peer;
	p.udp_port = 40007;
	cr_assert_eq(udp_sub_refresh(u, &p, 0), -ERR_ADDR);
	cr_assert_eq(udp_stats(u)->subs_invalid, 2);

	udp_service_changed(u, &k, 0);
	udp_poll(u, 2);
	cr_assert_eq(rec.n, 3);
	for (size_t i = 0; i < 3; i++) {
		struct pkt *x = &rec.pkts[i];
		struct decoded d = decode(x);

		if (x->to.ss_family == AF_INET6) {
			const struct sockaddr_in6 *in6 = (const void *)&x->to;

			cr_assert_eq(x->to_len, sizeof(struct sockaddr_in6));
			inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
			cr_assert_str_eq(ip, "2001:db8::1");
			cr_assert_eq(ntohs(in6->sin6_port), 40006, "the port is udpPort");
			seen |= 1;
		} else {
			const struct sockaddr_in *in = (const void *)&x->to;

			cr_assert_eq(x->to.ss_family, AF_INET);
			cr_assert_eq(x->to_len, sizeof(struct sockaddr_in));
			inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
			if (ntohs(in->sin_port) == 40004) {
				cr_assert_str_eq(ip, "192.0.2.7", "v4-mapped sends as IPv4");
				seen |= 2;
			} else {
				cr_assert_eq(ntohs(in->sin_port), 40005);
				cr_assert_str_eq(ip, "192.0.2.9");
				seen |= 4;
			}
		}
		cr_assert_eq(ack(&x->to, ACK_NUM, 0, 3), -ERR_NOT_FOUND);
		cr_assert_eq(ack(&x->to, ACK_NUM, d.ref, 3), 0);
		decoded_free(&d);
	}
	cr_assert_eq(seen, 7);
	cr_assert_eq(udp_stats(u)->acked, 3);
}

static void count_sub(void *ctx, const struct udp_sub_view *s)
{
	*(int *)ctx += 1;
	cr_assert_eq(s->target->ss_family, AF_INET);
	cr_assert(s->svc.ns.len == 6 && memcmp(s->svc.ns.p, "public", 6) == 0);
}

static void each_svc(void *ctx, const struct store_svc_key *k, uint64_t *word)
{
	(*(int *)ctx)++;
	cr_assert_eq(*word, 0, "a new service's word is 0");
	*word = k->service.len;
}

Test(udp, enumeration)
{
	struct store_svc_key k = svc("svc");
	int n = 0, m = 0;

	mk_default();
	cr_assert_eq(sub("svc", "", 40001, false, 0, 0), 0);
	cr_assert_eq(sub("svc", "a", 40001, false, 0, 0), 0);
	cr_assert_eq(sub("two", "", 40001, false, 0, 0), 0);
	cr_assert_eq(udp_each_sub(u, &k, count_sub, &n), 2);
	cr_assert_eq(n, 2);
	udp_each_service(u, each_svc, &m);
	cr_assert_eq(m, 2);
}

struct agent_seen {
	char agent[256], app[256];
	int n;
};

static void agent_sub(void *ctx, const struct udp_sub_view *s)
{
	struct agent_seen *a = ctx;

	snprintf(a->agent, sizeof(a->agent), "%.*s", (int)s->agent.len,
	         s->agent.p ? s->agent.p : "");
	snprintf(a->app, sizeof(a->app), "%.*s", (int)s->app.len, s->app.p ? s->app.p : "");
	a->n++;
}

/* /service/subscribers shows agent and app: kept from the creating poll, cut at the bound. */
Test(udp, agent_and_app_as_the_first_poll_gave_them)
{
	struct sockaddr_storage peer = v4("127.0.0.1", 51000);
	struct store_svc_key k = svc("svc");
	char longer[300];
	struct udp_sub_params p = {
		.svc = k,
		.clusters = S("c1"),
		.peer = &peer,
		.udp_port = 40001,
		.agent = S("Nacos-Java-Client:v1.4.1"),
		.app = S("shop"),
	};
	struct agent_seen a = { 0 };

	mk_default();
	cr_assert_eq(udp_sub_refresh(u, &p, 0), 0);
	p.agent = S("other");
	p.app = (struct store_str){ NULL, 0 };
	cr_assert_eq(udp_sub_refresh(u, &p, 1), 0);
	cr_assert_eq(udp_each_sub(u, &k, agent_sub, &a), 1);
	cr_assert_str_eq(a.agent, "Nacos-Java-Client:v1.4.1");
	cr_assert_str_eq(a.app, "shop");

	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	p.udp_port = 40002;
	p.clusters = (struct store_str){ NULL, 0 };
	p.agent = S(longer);
	p.app = (struct store_str){ NULL, 0 };
	cr_assert_eq(udp_sub_refresh(u, &p, 2), 0);
	memset(&a, 0, sizeof(a));
	cr_assert_eq(udp_each_sub(u, &k, agent_sub, &a), 2);
	/* The last one seen is the newest subscriber (creation order). */
	cr_assert_eq(strlen(a.agent), UDP_AGENT_BYTES_MAX);
	cr_assert_str_eq(a.app, "");
}

Test(udp, ack_decoding)
{
	struct udp_ack a;

#define OK(s) udp_ack_decode(s, strlen(s), &a)
	cr_assert_eq(OK("{\"type\":\"push-ack\",\"lastRefTime\":123,\"data\":\"\"}"), 0);
	cr_assert_eq(a.type, UDP_ACK_PUSH);
	cr_assert(a.has_ref);
	cr_assert_eq(a.ref, 123);
	cr_assert_eq(OK(" {\"lastRefTime\" : \"9007199254740991\", \"type\":\"push-ack\"}\r\n"), 0);
	cr_assert_eq(a.ref, UDP_REF_MAX);
	cr_assert_eq(OK("{\"type\":\"push-ack\",\"lastRefTime\":9999999999999999999}"), 0,
	             "19 digits parse; they just match nothing");
	cr_assert_eq(OK("{\"type\":\"dump-ack\",\"lastRefTime\":5,\"data\":\"{\\\"a\\\":1}\"}"), 0);
	cr_assert_eq(a.type, UDP_ACK_DUMP);
	cr_assert_eq(OK("{\"type\":\"unknown-ack\",\"data\":\"\"}"), 0, "no ref needed");
	cr_assert_eq(a.type, UDP_ACK_UNKNOWN);
	cr_assert_not(a.has_ref);
	cr_assert_eq(
	        OK("{\"x\":{\"y\":[1,2,{\"z\":null}]},\"type\":\"push-ack\",\"lastRefTime\":1}"), 0,
	        "other keys, nested, are skipped");
	cr_assert_eq(a.ref, 1);

	static const char *bad[] = {
		"",
		"hello",
		"{",
		"[]",
		"\"push-ack\"",
		"{\"type\":\"push-ack\"}",
		"{\"type\":\"push-ack\",\"lastRefTime\":-1}",
		"{\"type\":\"push-ack\",\"lastRefTime\":1.5}",
		"{\"type\":\"push-ack\",\"lastRefTime\":1e3}",
		"{\"type\":\"push-ack\",\"lastRefTime\":\"\"}",
		"{\"type\":\"push-ack\",\"lastRefTime\":true}",
		"{\"type\":\"push-ack\",\"lastRefTime\":[1]}",
		"{\"type\":\"push-ack\",\"lastRefTime\":18446744073709551616}",
		"{\"type\":\"dom\",\"lastRefTime\":1}",
		"{\"type\":1,\"lastRefTime\":1}",
		"{\"type\":\"push-ack\",\"type\":\"push-ack\",\"lastRefTime\":1}",
		"{\"type\":\"push-ack\",\"lastRefTime\":1,\"lastRefTime\":2}",
		"{\"type\":\"push-ack\",\"lastRefTime\":1}x",
		"{\"type\":\"push-ack\",\"lastRefTime\":1}{}",
		"{\"type\":\"push-ack\",\"lastRefTime\":1",
		"{\"type\":\"push-ack\",\"lastRefTime\":1,\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
		"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
		"]"
		"]]]]]]]]]]]]]]]}",
		"{1:2,\"type\":\"push-ack\",\"lastRefTime\":1}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(OK(bad[i]), -ERR_INVAL, "bad[%zu] %s", i, bad[i]);
	cr_assert_eq(udp_ack_decode("{\"type\":\"push-ack\",\"lastRefTime\":1}\0", 36, &a),
	             -ERR_INVAL, "a NUL byte");
#undef OK
}

Test(udp, dump_unknown_and_garbage_are_counted)
{
	struct sockaddr_storage a = v4("127.0.0.1", 40001);
	static const char dump[] = "{\"type\":\"dump-ack\",\"lastRefTime\":1,\"data\":\"{}\"}";
	static const char unk[] = "{\"type\":\"unknown-ack\",\"lastRefTime\":1,\"data\":\"\"}";
	uint8_t junk[300];

	mk_default();
	cr_assert_eq(udp_on_datagram(u, &a, dump, sizeof(dump) - 1, 0), -ERR_NOT_FOUND);
	cr_assert_eq(udp_on_datagram(u, &a, unk, sizeof(unk) - 1, 0), -ERR_NOT_FOUND);
	cr_assert_eq(udp_on_datagram(u, &a, "", 0, 0), -ERR_INVAL);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 131 + 7);
	cr_assert_eq(udp_on_datagram(u, &a, junk, sizeof(junk), 0), -ERR_INVAL);
	cr_assert_eq(ack(NULL, ACK_NUM, 64, 0), -ERR_NOT_FOUND,
	             "no source address: matches nothing");
	cr_assert_eq(udp_stats(u)->acks_dump, 1);
	cr_assert_eq(udp_stats(u)->acks_unknown, 1);
	cr_assert_eq(udp_stats(u)->garbage, 2);
	cr_assert_eq(udp_stats(u)->acks_unmatched, 1);
	cr_assert_eq(udp_stats(u)->acked, 0);
}

/* A poll with the service's word as its answer showed it. */
static int sub_word(const char *name, uint16_t port, uint64_t word, int64_t now)
{
	struct sockaddr_storage peer = v4("127.0.0.1", 51000);
	struct udp_sub_params p = {
		.svc = svc(name), .peer = &peer, .udp_port = port, .word = word
	};

	return udp_sub_refresh(u, &p, now);
}

static void word_is(void *ctx, const struct store_svc_key *k, uint64_t *word)
{
	(void)k;
	cr_assert_eq(*word, *(uint64_t *)ctx);
}

static void word_set(void *ctx, const struct store_svc_key *k, uint64_t *word)
{
	(void)k;
	*word = *(uint64_t *)ctx;
}

/*
 * A change between a poll's answer and the worker's next look at the
 * service is pushed: the new service starts from the answer's word, not
 * from that look; a subscriber whose answer is older than the last look
 * (its poll came through another worker) is pushed at once.
 */
Test(udp, a_change_right_after_the_poll_is_pushed)
{
	uint64_t w5 = 5, w7 = 7;

	mk_default();
	cr_assert_eq(sub_word("svc", 40001, 5, 1000), 0);
	udp_each_service(u, word_is, &w5);
	cr_assert_eq(udp_poll(u, 1000), 30000, "nothing due: the answer was fresh");
	udp_each_service(u, word_set, &w7); /* the caller's look: it moved */
	cr_assert_eq(sub_word("svc", 40002, 5, 1001), 0);
	cr_assert_eq(sub_word("svc", 40001, 7, 1001), 0, "as fresh as the look: no push");
	udp_poll(u, 1003);
	cr_assert_eq(rec.n, 1, "the subscriber whose answer was older is pushed");
	cr_assert_eq(pkt_port(&rec.pkts[0]), 40002);
}

/*
 * A scenario with every kind of state: subscribers of two services, a
 * push acked, one retried, one pending. Its packets go into rec.
 */
static void busy(int64_t t0, bool ack_one)
{
	struct store_svc_key a = svc("a"), b = svc("b");
	struct sockaddr_storage from = v4("127.0.0.1", 40001);

	cr_assert_eq(sub("a", "", 40001, false, 0, t0), 0);
	cr_assert_eq(sub("a", "east", 40002, true, 1, t0), 0);
	cr_assert_eq(sub("b", "", 40003, false, 0, t0), 0);
	udp_service_changed(u, &a, t0);
	udp_service_changed(u, &b, t0);
	udp_poll(u, t0 + 2);
	cr_assert_geq(rec.n, 3);
	for (size_t i = rec.n - 3; ack_one && i < rec.n; i++) {
		if (pkt_port(&rec.pkts[i]) == 40001) {
			struct decoded d = decode(&rec.pkts[i]);

			cr_assert_eq(ack(&from, ACK_NUM, d.ref, t0 + 3), 0);
			decoded_free(&d);
		}
	}
	udp_poll(u, t0 + 1002); /* the retries */
	/* And one pending at the reset. */
	udp_service_changed(u, &a, t0 + 1003);
}

Test(udp, reset_is_a_new_push)
{
	struct udp_config c;
	struct udp_callbacks cb = { render_cb, send_cb };
	struct udp_push *fresh;
	struct rec want;
	size_t before;

	udp_config_default(&c);
	c.subs_max = 8;
	c.unacked_max = 4;
	c.retry_bytes_max = 1u << 16;
	mk(&c);
	busy(0, true);
	cr_assert_gt(udp_stats(u)->unacked, 0);
	cr_assert_gt(udp_stats(u)->acked, 0);
	udp_reset(u);
	cr_assert_eq(memcmp(udp_stats(u), &(struct udp_stats){ 0 }, sizeof(struct udp_stats)), 0,
	             "every counter and gauge back to zero");
	before = rec.n;
	cr_assert_eq(udp_poll(u, 5000), -1, "nothing due: the old pending push is gone");
	cr_assert_eq(rec.n, before, "no push to a subscriber from before the reset");

	/* The same scenario on the reset push and on a new one: the same bytes. */
	rec_clear(&rec);
	busy(10000, false);
	memcpy(&want, &rec, sizeof(want));
	memset(&rec, 0, sizeof(rec));
	cr_assert_eq(udp_create(&c, &cb, &rec, &fresh), 0);
	struct udp_push *reset = u;

	u = fresh;
	busy(10000, false);
	cr_assert_eq(rec.n, want.n);
	for (size_t i = 0; i < rec.n; i++) {
		cr_assert_eq(rec.pkts[i].len, want.pkts[i].len, "packet %zu", i);
		cr_assert_arr_eq(rec.pkts[i].bytes, want.pkts[i].bytes, rec.pkts[i].len,
		                 "packet %zu: refs start again", i);
	}
	cr_assert_eq(memcmp(udp_stats(reset), udp_stats(fresh), sizeof(struct udp_stats)), 0);
	rec_clear(&want);
	udp_destroy(reset);
}
