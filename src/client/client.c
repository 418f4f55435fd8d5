/*
 * client.c - the blocking C client (include/distro/client.h).
 *
 * One connection, one request at a time: build the frame with the
 * protocol's encoders (proto/wire.h), send it whole, read frames until the
 * one answering our request id arrives. A broken connection is closed; the
 * next call reconnects with a short backoff, sends the credentials again
 * (distro_auth_*, before anything else) and renews the subscriptions. Frames are bounded by the
 * protocol limit; nothing grows without bound.
 *
 * Answers are outside bytes: every decoder here checks each field against
 * its bound and the exact body length, and a malformed answer is
 * -DISTRO_EPROTO, never a crash or a half-filled result the caller could
 * mistake for a good one (the SLOT_MAP decoder is fuzzed:
 * tests/fuzz/fuzz_slot_map.c).
 *
 * Routing writes to their owners is in route.c, the heartbeat thread in
 * keepalive.c; client_internal.h is what the three share.
 */
#include "client/client_internal.h"

#include "cluster/members.h"
#include "core/clock.h"
#include "core/err.h"
#include "proto/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

const char *distro_strerror(int code)
{
	if (code < 0)
		code = -code;
	switch (code) {
	case DISTRO_EIO:
		return "connection to the node failed";
	case DISTRO_ETIMEDOUT:
		return "the node did not answer in time";
	case DISTRO_EPROTO:
		return "malformed answer from the node";
	case DISTRO_EINVAL:
		return "invalid argument";
	case DISTRO_ENOMEM:
		return "out of memory";
	}
	return err_str(code);
}

void distro_instance_init(struct distro_instance *i)
{
	memset(i, 0, sizeof(*i));
	i->weight = 1.0;
	i->healthy = true;
	i->enabled = true;
	i->ephemeral = true;
}

static int split_addr(const char *addr, char *host, size_t hlen, char *port, size_t plen)
{
	const char *colon;

	if (addr == NULL || *addr == '\0')
		return -DISTRO_EINVAL;
	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');

		if (end == NULL || (size_t)(end - addr - 1) >= hlen)
			return -DISTRO_EINVAL;
		memcpy(host, addr + 1, (size_t)(end - addr - 1));
		host[end - addr - 1] = '\0';
		colon = end[1] == ':' ? end + 1 : NULL;
	} else {
		colon = strrchr(addr, ':');
		if (colon && strchr(addr, ':') != colon)
			colon = NULL; /* a bare IPv6 address */
		size_t n = colon ? (size_t)(colon - addr) : strlen(addr);

		if (n >= hlen)
			return -DISTRO_EINVAL;
		memcpy(host, addr, n);
		host[n] = '\0';
	}
	if (colon)
		snprintf(port, plen, "%s", colon + 1);
	else
		snprintf(port, plen, "%d", DISTRO_DEFAULT_PORT);
	return 0;
}

static int connect_once(struct distro_client *c)
{
	struct addrinfo hints, *res, *ai;
	int fd = -1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(c->host, c->port, &hints, &res) != 0)
		return -DISTRO_EIO;
	rc = -DISTRO_EIO;
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd pfd;
		struct timeval tv = { c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000 };
		int one = 1, err = 0;
		socklen_t elen = sizeof(err);

		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			close(fd);
			fd = -1;
			continue;
		}
		pfd = (struct pollfd){ fd, POLLOUT, 0 };
		if (poll(&pfd, 1, (int)c->timeout_ms) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err != 0) {
			rc = err == 0 ? -DISTRO_ETIMEDOUT : -DISTRO_EIO;
			close(fd);
			fd = -1;
			continue;
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		break;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return rc;
	c->fd = fd;
	c->conn_epoch++;
	return 0;
}

static void drop(struct distro_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int ensure_connected(struct distro_client *c)
{
	int rc = 0;

	for (int i = 0; c->fd < 0 && i < RECONNECTS; i++) {
		if (i > 0) {
			struct timespec ts = { 0, (50L << i) * 1000000L };

			nanosleep(&ts, NULL);
		}
		rc = connect_once(c);
	}
	return c->fd >= 0 ? 0 : rc;
}

int distro_connect(const char *addr, uint32_t timeout_ms, struct distro_client **out)
{
	struct distro_client *c;
	int rc;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -DISTRO_ENOMEM;
	c->fd = -1;
	c->timeout_ms = timeout_ms ? timeout_ms : 5000;
	c->next_id = 1;
	if ((rc = split_addr(addr, c->host, sizeof(c->host), c->port, sizeof(c->port))) < 0) {
		free(c);
		return rc;
	}
	c->buf = malloc(FRAME_MAX);
	if (c->buf == NULL) {
		free(c);
		return -DISTRO_ENOMEM;
	}
	if ((rc = connect_once(c)) < 0) {
		free(c->buf);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

static int io_all(struct distro_client *c, uint8_t *p, size_t n, bool writing)
{
	while (n > 0) {
		ssize_t r = writing ? send(c->fd, p, n, MSG_NOSIGNAL) : recv(c->fd, p, n, 0);

		if (r <= 0) {
			int e = r == 0 ? 0 : errno;

			if (e == EINTR)
				continue;
			drop(c);
			return (e == EAGAIN || e == EWOULDBLOCK) ? -DISTRO_ETIMEDOUT : -DISTRO_EIO;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/*
 * Decodes a list body (revision, total, count views) into entries whose
 * strings live in one allocation *mem (free it after use). 0 or -DISTRO_E*.
 */
static int decode_entries(const uint8_t *body, size_t len, uint16_t count, uint64_t *revision,
                          struct distro_entry **out, void **mem)
{
	size_t arena = 2 * len + 16, used = 0;
	struct store_kv kv[META_MAX];
	struct distro_entry *e;
	struct distro_kv *dkv;
	struct proto_rd r;
	char *strs;

	*mem = malloc(sizeof(*e) * (count + 1u) + sizeof(*dkv) * (len / 4 + 1) + arena);
	if (*mem == NULL)
		return -DISTRO_ENOMEM;
	e = *mem;
	dkv = (struct distro_kv *)(e + count + 1);
	strs = (char *)(dkv + len / 4 + 1);
	proto_rd_init(&r, body, len);
	*revision = proto_rd_u64(&r);
	(void)proto_rd_u32(&r); /* total matched; may exceed what fit in one frame */
	for (uint32_t i = 0; i < count; i++) {
		struct proto_view v;

		proto_rd_view(&r, &v, kv, META_MAX);
		if (r.err || v.meta_total > META_MAX) {
			free(*mem);
			*mem = NULL;
			return -DISTRO_EPROTO; /* never hand out an entry not filled in */
		}
		memset(&e[i], 0, sizeof(e[i]));
		/* Strings arrive unterminated: copy them, terminated, into the arena. */
#define TERMINATE(dst, str)                                                                        \
	do {                                                                                       \
		memcpy(strs + used, (str).p ? (str).p : "", (str).len);                            \
		strs[used + (str).len] = '\0';                                                     \
		(dst) = strs + used;                                                               \
		used += (str).len + 1;                                                             \
	} while (0)
		TERMINATE(e[i].cluster, v.cluster);
		e[i].meta = dkv;
		e[i].meta_n = v.meta_n;
		for (uint32_t j = 0; j < v.meta_n; j++, dkv++) {
			TERMINATE(dkv->key, v.meta[j].key);
			TERMINATE(dkv->val, v.meta[j].val);
		}
#undef TERMINATE
		struct addr a = v.addr;

		addr_format(&a, e[i].ip, sizeof(e[i].ip));
		e[i].port = v.addr.port;
		e[i].weight = v.weight_milli / 1000.0;
		e[i].healthy = v.flags & PF_HEALTHY;
		e[i].enabled = v.flags & PF_ENABLED;
		e[i].ephemeral = v.flags & PF_EPHEMERAL;
		e[i].interval_ms = v.timing.interval_ms;
		e[i].timeout_ms = v.timing.timeout_ms;
		e[i].delete_ms = v.timing.delete_ms;
	}
	if (r.err || proto_rd_done(&r) < 0) {
		free(*mem);
		*mem = NULL;
		return -DISTRO_EPROTO;
	}
	*out = e;
	return 0;
}

static struct csub *sub_by_server_id(struct distro_client *c, uint32_t id)
{
	for (int i = 0; i < SUBS_MAX; i++)
		if (c->subs[i].used && c->subs[i].server_id == id)
			return &c->subs[i];
	return NULL;
}

/* Delivers a PUSH (or a SUBSCRIBE answer) sitting in c->buf. */
static void dispatch_push(struct distro_client *c, const struct proto_header *h)
{
	struct csub *cs = sub_by_server_id(c, h->request_id);
	struct distro_entry *e;
	uint64_t rev;
	void *mem;

	if (cs == NULL || h->status != 0)
		return;
	if (decode_entries(c->buf + PROTO_HEADER_BYTES, h->body_len, h->count, &rev, &e, &mem) < 0)
		return;
	cs->fn(cs->ctx, (uint32_t)(cs - c->subs) + 1, rev, e, h->count);
	free(mem);
}

static long call(struct distro_client *c, uint8_t op, uint32_t body_len, uint16_t count,
                 struct proto_header *h);

static struct store_str sv(const char *s);

/*
 * Builds a LIST or SUBSCRIBE body (service key and filter) in c->buf.
 * Returns the body length, or -DISTRO_EINVAL when it cannot be encoded.
 */
static long list_body(struct distro_client *c, const char *ns, const char *group,
                      const char *service, char *const *clusters, uint32_t clusters_n,
                      bool healthy_only, bool include_disabled)
{
	struct store_str cl[PROTO_FILTER_MAX];
	struct store_filter f;
	struct proto_wr w;

	if (clusters_n > PROTO_FILTER_MAX)
		return -DISTRO_EINVAL;
	for (uint32_t i = 0; i < clusters_n; i++)
		cl[i] = sv(clusters[i]);
	f = (struct store_filter){ cl, clusters_n, healthy_only, !include_disabled };
	proto_wr_init(&w, c->buf + PROTO_HEADER_BYTES, FRAME_MAX - PROTO_HEADER_BYTES);
	proto_wr_svc(&w, &(struct store_svc_key){ sv(ns), sv(group), sv(service) });
	proto_wr_filter(&w, &f);
	return w.overflow ? -DISTRO_EINVAL : (long)(w.p - (c->buf + PROTO_HEADER_BYTES));
}

/* Sends a SUBSCRIBE for cs and delivers the current list to its callback. */
static int sub_send(struct distro_client *c, struct csub *cs)
{
	struct proto_header h;
	long body = list_body(c, cs->ns, cs->group, cs->service, cs->clusters, cs->clusters_n,
	                      cs->healthy_only, cs->include_disabled);

	if (body < 0)
		return (int)body;
	body = call(c, OP_SUBSCRIBE, (uint32_t)body, 0, &h);
	if (body < 0)
		return (int)body;
	cs->server_id = c->last_id;
	dispatch_push(c, &h);
	return 0;
}

static long call(struct distro_client *c, uint8_t op, uint32_t body_len, uint16_t count,
                 struct proto_header *h);

/* Sends the remembered credentials on this connection. 0, or the node's refusal, or -DISTRO_E*. */
static int creds_send(struct distro_client *c)
{
	struct proto_header h;
	struct proto_wr wr;
	long body;

	proto_wr_init(&wr, c->buf + PROTO_HEADER_BYTES, FRAME_MAX - PROTO_HEADER_BYTES);
	proto_wr_u8(&wr, c->auth_method);
	proto_wr_str(&wr, sv(c->auth_a));
	if (c->auth_method == PROTO_AUTH_PASSWORD)
		proto_wr_str(&wr, sv(c->auth_b));
	if (wr.overflow)
		return -DISTRO_EINVAL;
	body = call(c, OP_AUTH, (uint32_t)(wr.p - (c->buf + PROTO_HEADER_BYTES)), 0, &h);
	if (body < 0)
		return (int)body;
	if (body < 3) {
		drop(c);
		return -DISTRO_EPROTO;
	}
	c->auth_epoch = c->conn_epoch;
	return 0;
}

static void creds_forget(struct distro_client *c)
{
	if (c->auth_a)
		explicit_bzero(c->auth_a, strlen(c->auth_a));
	if (c->auth_b)
		explicit_bzero(c->auth_b, strlen(c->auth_b));
	free(c->auth_a);
	free(c->auth_b);
	c->auth_a = c->auth_b = NULL;
	c->auth_method = 0;
	c->auth_epoch = 0;
}

/* Gives dst (a fresh connection of c's: keepalive, routing) c's credentials. */
int client_creds_copy(struct distro_client *dst, const struct distro_client *c)
{
	if (c->auth_method == 0)
		return 0;
	dst->auth_a = strdup(c->auth_a);
	dst->auth_b = c->auth_b ? strdup(c->auth_b) : NULL;
	if (dst->auth_a == NULL || (c->auth_b && dst->auth_b == NULL)) {
		creds_forget(dst);
		return -DISTRO_ENOMEM;
	}
	dst->auth_method = c->auth_method;
	return 0;
}

static bool transport_error(int rc)
{
	return rc == -DISTRO_EIO || rc == -DISTRO_ETIMEDOUT || rc == -DISTRO_EPROTO;
}

/*
 * Before building any request: a live connection (one the node closed, say
 * for idleness, is noticed here and replaced), and every subscription sent
 * on it. A subscription the node refuses on renewal (e.g. its limit) is
 * not retried on this connection and does not fail the caller's request;
 * only a broken connection does, and the next call carries on from there.
 */
static int prepare(struct distro_client *c)
{
	char b;
	int rc;

	if (c->fd >= 0 && recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
		drop(c);
	if ((rc = ensure_connected(c)) < 0)
		return rc;
	/* Credentials first: with auth on, the node serves nothing else before. */
	if (c->auth_method && c->auth_epoch != c->conn_epoch && (rc = creds_send(c)) < 0)
		return rc;
	for (int i = 0; i < SUBS_MAX; i++) {
		struct csub *cs = &c->subs[i];

		if (!cs->used || cs->epoch == c->conn_epoch)
			continue;
		rc = sub_send(c, cs);
		if (rc < 0 && transport_error(rc))
			return rc;
		cs->epoch = c->conn_epoch;
	}
	return 0;
}

/*
 * Sends the request built in c->buf (header to be filled) and reads the
 * answer to it into c->buf. Returns the body length, or a negative code.
 */
static long call(struct distro_client *c, uint8_t op, uint32_t body_len, uint16_t count,
                 struct proto_header *h)
{
	uint32_t id = c->next_id++;
	int rc;

	if (c->fd < 0)
		return -DISTRO_EIO; /* prepare() reconnects before a request is built */
	c->last_id = id;
	proto_header_put(c->buf, op, body_len, id, 0, count);
	if ((rc = io_all(c, c->buf, PROTO_HEADER_BYTES + body_len, true)) < 0)
		return rc;
	for (;;) {
		long n;

		if ((rc = io_all(c, c->buf, PROTO_HEADER_BYTES, false)) < 0)
			return rc;
		n = proto_frame_check(c->buf, PROTO_HEADER_BYTES, FRAME_MAX, h);
		if (n < 0) {
			drop(c);
			return -DISTRO_EPROTO;
		}
		if ((rc = io_all(c, c->buf + PROTO_HEADER_BYTES, h->body_len, false)) < 0)
			return rc;
		if (h->op == OP_ERROR) {
			drop(c); /* the node closes after a framing error */
			return h->status ? -(int)h->status : -DISTRO_EPROTO;
		}
		if (h->op == OP_PUSH) {
			dispatch_push(c, h);
			continue;
		}
		if (h->request_id != id)
			continue; /* an answer nobody waits for any more */
		if (h->op != (op | PROTO_RESPONSE)) {
			drop(c);
			return -DISTRO_EPROTO;
		}
		if (h->status)
			return -(int)h->status;
		return (long)h->body_len;
	}
}

static struct store_str sv(const char *s)
{
	return (struct store_str){ s, s ? (uint32_t)strlen(s) : 0 };
}

static int to_key(const struct distro_instance *i, struct store_key *k)
{
	memset(k, 0, sizeof(*k));
	k->svc.ns = sv(i->ns);
	k->svc.group = sv(i->group);
	k->svc.service = sv(i->service);
	k->cluster = sv(i->cluster);
	if (i->service == NULL)
		return -ERR_NAME_EMPTY;
	return addr_parse(i->ip, i->port, &k->addr);
}

int client_write_batch(struct distro_client *c, uint8_t op, const struct distro_instance *in,
                       uint32_t n, int *results)
{
	struct store_kv kv[META_MAX];
	struct proto_header h;
	struct proto_wr w;
	long body;
	int rc;

	if (n == 0 || n > BATCH_MAX)
		return -DISTRO_EINVAL;
	if ((rc = prepare(c)) < 0)
		return rc;
	proto_wr_init(&w, c->buf + PROTO_HEADER_BYTES, FRAME_MAX - PROTO_HEADER_BYTES);
	for (uint32_t i = 0; i < n; i++) {
		struct store_key k;

		if ((rc = to_key(&in[i], &k)) < 0)
			return rc;
		if (op == OP_DEREGISTER) {
			proto_wr_key(&w, &k);
			continue;
		}
		struct store_val v = {
			.weight_milli =
			        in[i].weight <= 0 ? 0 : (uint32_t)lround(in[i].weight * 1000),
			.healthy = in[i].healthy,
			.enabled = in[i].enabled,
			.ephemeral = in[i].ephemeral,
			.meta = kv,
			.meta_n = in[i].meta_n,
			.timing = { in[i].interval_ms, in[i].timeout_ms, in[i].delete_ms },
		};

		if (in[i].meta_n > META_MAX || in[i].weight > 10000)
			return in[i].weight > 10000 ? -ERR_WEIGHT : -ERR_META_PAIRS;
		for (uint32_t j = 0; j < in[i].meta_n; j++)
			kv[j] = (struct store_kv){ sv(in[i].meta[j].key), sv(in[i].meta[j].val) };
		proto_wr_instance(&w, &k, &v);
	}
	if (w.overflow)
		return -DISTRO_EINVAL;
	body = call(c, op, (uint32_t)(w.p - (c->buf + PROTO_HEADER_BYTES)), (uint16_t)n, &h);
	if (body < 0)
		return (int)body;
	if (h.count != n || (uint32_t)body != 2 * n)
		return -DISTRO_EPROTO;
	for (uint32_t i = 0; results && i < n; i++) {
		uint8_t *p = c->buf + PROTO_HEADER_BYTES + 2 * i;

		results[i] = (int16_t)(uint16_t)(p[0] | (p[1] << 8));
	}
	return 0;
}

int distro_register(struct distro_client *c, const struct distro_instance *in, uint32_t n,
                    int *results)
{
	return c->route ? client_routed_write(c, OP_REGISTER, in, n, results)
	                : client_write_batch(c, OP_REGISTER, in, n, results);
}

int distro_deregister(struct distro_client *c, const struct distro_instance *in, uint32_t n,
                      int *results)
{
	return c->route ? client_routed_write(c, OP_DEREGISTER, in, n, results)
	                : client_write_batch(c, OP_DEREGISTER, in, n, results);
}

int distro_heartbeat(struct distro_client *c, const struct distro_instance *in, uint32_t n,
                     int *results)
{
	return c->route ? client_routed_write(c, OP_HEARTBEAT, in, n, results)
	                : client_write_batch(c, OP_HEARTBEAT, in, n, results);
}

int distro_list(struct distro_client *c, const char *ns, const char *group, const char *service,
                const struct distro_list_opts *opts, distro_entry_fn *fn, void *ctx,
                uint64_t *revision)
{
	static const struct distro_list_opts none;
	struct distro_entry *e;
	struct proto_header h;
	uint64_t rev;
	void *mem;
	long body;
	int rc;

	if (service == NULL)
		return -ERR_NAME_EMPTY;
	if (opts == NULL)
		opts = &none;
	if (opts->clusters_n > PROTO_FILTER_MAX)
		return -DISTRO_EINVAL;
	if ((rc = prepare(c)) < 0)
		return rc;
	body = list_body(c, ns, group, service, (char *const *)opts->clusters, opts->clusters_n,
	                 opts->healthy_only, opts->include_disabled);
	if (body < 0)
		return (int)body;
	body = call(c, OP_LIST, (uint32_t)body, 0, &h);
	if (body < 0)
		return (int)body;
	if ((rc = decode_entries(c->buf + PROTO_HEADER_BYTES, (size_t)body, h.count, &rev, &e,
	                         &mem)) < 0)
		return rc;
	if (revision)
		*revision = rev;
	for (uint32_t i = 0; fn && i < h.count; i++)
		fn(ctx, &e[i]);
	free(mem);
	return h.count;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void csub_free(struct csub *cs)
{
	free(cs->ns);
	free(cs->group);
	free(cs->service);
	for (uint32_t i = 0; i < cs->clusters_n; i++)
		free(cs->clusters[i]);
	free(cs->clusters);
	memset(cs, 0, sizeof(*cs));
}

int distro_subscribe(struct distro_client *c, const char *ns, const char *group,
                     const char *service, const struct distro_list_opts *opts, distro_push_fn *fn,
                     void *ctx, uint32_t *id)
{
	struct csub *cs = NULL;
	int rc;

	if (service == NULL || fn == NULL || (opts && opts->clusters_n > PROTO_FILTER_MAX))
		return -DISTRO_EINVAL;
	for (int i = 0; i < SUBS_MAX && cs == NULL; i++)
		if (!c->subs[i].used)
			cs = &c->subs[i];
	if (cs == NULL)
		return -ERR_LIMIT_SUBS;
	if ((rc = prepare(c)) < 0)
		return rc;
	cs->ns = dup_or_null(ns);
	cs->group = dup_or_null(group);
	cs->service = strdup(service);
	cs->fn = fn;
	cs->ctx = ctx;
	if (opts) {
		cs->healthy_only = opts->healthy_only;
		cs->include_disabled = opts->include_disabled;
		cs->clusters = calloc(opts->clusters_n + 1, sizeof(char *));
		for (uint32_t i = 0; cs->clusters && i < opts->clusters_n; i++)
			cs->clusters[cs->clusters_n++] = dup_or_null(opts->clusters[i]);
	}
	cs->used = true;
	if ((rc = sub_send(c, cs)) < 0) {
		csub_free(cs);
		return rc;
	}
	cs->epoch = c->conn_epoch;
	*id = (uint32_t)(cs - c->subs) + 1;
	return 0;
}

int distro_unsubscribe(struct distro_client *c, uint32_t id)
{
	struct csub *cs;
	struct proto_header h;
	long body;
	int rc;

	if (id == 0 || id > SUBS_MAX || !c->subs[id - 1].used)
		return -DISTRO_EINVAL;
	cs = &c->subs[id - 1];
	if ((rc = prepare(c)) < 0) {
		csub_free(cs); /* no connection: nothing to renew it on either */
		return 0;
	}
	uint32_t server_id = cs->server_id;

	csub_free(cs);
	c->buf[PROTO_HEADER_BYTES] = (uint8_t)server_id;
	c->buf[PROTO_HEADER_BYTES + 1] = (uint8_t)(server_id >> 8);
	c->buf[PROTO_HEADER_BYTES + 2] = (uint8_t)(server_id >> 16);
	c->buf[PROTO_HEADER_BYTES + 3] = (uint8_t)(server_id >> 24);
	body = call(c, OP_UNSUBSCRIBE, 4, 0, &h);
	return body < 0 ? (int)body : 0;
}

int distro_poll(struct distro_client *c, int timeout_ms)
{
	int delivered = 0, rc;

	if ((rc = prepare(c)) < 0)
		return rc;
	for (;;) {
		struct pollfd p = { c->fd, POLLIN, 0 };
		struct proto_header h;

		rc = poll(&p, 1, delivered ? 0 : timeout_ms);
		if (rc <= 0)
			return delivered;
		if ((rc = io_all(c, c->buf, PROTO_HEADER_BYTES, false)) < 0)
			return rc;
		if (proto_frame_check(c->buf, PROTO_HEADER_BYTES, FRAME_MAX, &h) < 0) {
			drop(c);
			return -DISTRO_EPROTO;
		}
		if ((rc = io_all(c, c->buf + PROTO_HEADER_BYTES, h.body_len, false)) < 0)
			return rc;
		if (h.op == OP_PUSH) {
			dispatch_push(c, &h);
			delivered++;
		}
	}
}

static int creds_set(struct distro_client *c, uint8_t method, const char *a, const char *b)
{
	int rc;

	creds_forget(c);
	c->auth_a = strdup(a);
	c->auth_b = b ? strdup(b) : NULL;
	if (c->auth_a == NULL || (b && c->auth_b == NULL)) {
		creds_forget(c);
		return -DISTRO_ENOMEM;
	}
	c->auth_method = method;
	rc = prepare(c); /* connects if needed and sends them */
	if (rc < 0 && !transport_error(rc))
		creds_forget(c); /* refused: not sent again */
	return rc;
}

int distro_auth_token(struct distro_client *c, const char *token)
{
	if (token == NULL || *token == '\0')
		return -DISTRO_EINVAL;
	return creds_set(c, PROTO_AUTH_TOKEN, token, NULL);
}

int distro_auth_password(struct distro_client *c, const char *user, const char *password)
{
	if (user == NULL || password == NULL || *user == '\0' || *password == '\0')
		return -DISTRO_EINVAL;
	return creds_set(c, PROTO_AUTH_PASSWORD, user, password);
}

int distro_ping(struct distro_client *c)
{
	struct proto_header h;
	long body;
	int rc;

	if ((rc = prepare(c)) < 0)
		return rc;
	memcpy(c->buf + PROTO_HEADER_BYTES, "ping", 4);
	body = call(c, OP_PING, 4, 0, &h);
	if (body < 0)
		return (int)body;
	return (body == 4 && memcmp(c->buf + PROTO_HEADER_BYTES, "ping", 4) == 0) ? 0
	                                                                          : -DISTRO_EPROTO;
}

int distro_stats(struct distro_client *c, char *buf, size_t len)
{
	struct proto_header h;
	long body;
	int rc;

	if ((rc = prepare(c)) < 0)
		return rc;
	body = call(c, OP_STATS, 0, 0, &h);
	if (body < 0)
		return (int)body;
	if (len == 0)
		return -DISTRO_EINVAL;
	if ((size_t)body >= len)
		body = (long)len - 1;
	memcpy(buf, c->buf + PROTO_HEADER_BYTES, (size_t)body);
	buf[body] = '\0';
	return (int)body;
}

/* ---- the cluster's slot map ---- */

/*
 * An address text from the answer: present, shorter than DISTRO_ADDR_MAX,
 * printable ASCII without spaces (so it is safe to print and to parse as
 * host:port), not empty when required. 0 or -DISTRO_EPROTO.
 */
static int rd_addr_text(struct proto_rd *r, char *out, bool required)
{
	struct store_str s = proto_rd_str(r);

	if (r->err || s.p == NULL || s.len >= DISTRO_ADDR_MAX || (required && s.len == 0))
		return -DISTRO_EPROTO;
	for (uint32_t i = 0; i < s.len; i++)
		if ((unsigned char)s.p[i] <= 0x20 || (unsigned char)s.p[i] >= 0x7f)
			return -DISTRO_EPROTO;
	memcpy(out, s.p, s.len);
	out[s.len] = '\0';
	return 0;
}

int distro_slot_map_decode(const void *body, size_t len, uint16_t count,
                           struct distro_slot_map *out)
{
	bool listed[DISTRO_MEMBERS_MAX + 1] = { false };
	struct proto_rd r;
	uint8_t ready;

	_Static_assert(DISTRO_SLOTS == ADDR_SLOTS, "the client's slot count is the nodes'");
	_Static_assert(DISTRO_ADDR_MAX == MEMBER_ADDR_MAX, "addresses fit the member table's");
	if (out == NULL || (body == NULL && len > 0))
		return -DISTRO_EINVAL;
	memset(out, 0, sizeof(*out));
	if (count > DISTRO_MEMBERS_MAX)
		return -DISTRO_EPROTO;
	proto_rd_init(&r, body, len);
	out->version = proto_rd_u64(&r);
	out->self_id = proto_rd_u16(&r);
	ready = proto_rd_u8(&r);
	if (r.err || ready > 1)
		return -DISTRO_EPROTO;
	out->ready = ready;
	out->n = count;
	for (uint32_t i = 0; i < count; i++) {
		struct distro_member *m = &out->m[i];
		uint8_t mready;

		m->id = proto_rd_u16(&r);
		m->health = proto_rd_u8(&r);
		mready = proto_rd_u8(&r);
		if (r.err || m->id == 0 || m->id > DISTRO_MEMBERS_MAX || listed[m->id] ||
		    m->health > DISTRO_UP || mready > 1)
			return -DISTRO_EPROTO;
		listed[m->id] = true;
		m->ready = mready;
		if (rd_addr_text(&r, m->addr, true) < 0 ||
		    rd_addr_text(&r, m->client_addr, false) < 0)
			return -DISTRO_EPROTO;
	}
	if (count > 0) {
		/* A member answers with its own id among the members, then every slot's owner. */
		if (out->self_id > DISTRO_MEMBERS_MAX || !listed[out->self_id])
			return -DISTRO_EPROTO;
		if ((size_t)(r.end - r.p) < 2u * DISTRO_SLOTS)
			return -DISTRO_EPROTO;
		for (uint32_t s = 0; s < DISTRO_SLOTS; s++) {
			uint16_t o = proto_rd_u16(&r);

			if (o > DISTRO_MEMBERS_MAX || (o != 0 && !listed[o]))
				return -DISTRO_EPROTO;
			out->owners[s] = o;
		}
	}
	return proto_rd_done(&r) == 0 ? 0 : -DISTRO_EPROTO;
}

int distro_slot_map(struct distro_client *c, struct distro_slot_map *out)
{
	struct proto_header h;
	long body;
	int rc;

	if ((rc = prepare(c)) < 0)
		return rc;
	body = call(c, OP_SLOT_MAP, 0, 0, &h);
	if (body < 0)
		return (int)body;
	return distro_slot_map_decode(c->buf + PROTO_HEADER_BYTES, (size_t)body, h.count, out);
}

uint32_t distro_slot_map_count(const struct distro_slot_map *m, uint16_t id)
{
	uint32_t n = 0;

	for (uint32_t s = 0; s < DISTRO_SLOTS; s++)
		n += m->owners[s] == id;
	return n;
}

const struct distro_member *distro_slot_map_member(const struct distro_slot_map *m, uint16_t id)
{
	for (uint32_t i = 0; i < m->n && i < DISTRO_MEMBERS_MAX; i++)
		if (m->m[i].id == id)
			return &m->m[i];
	return NULL;
}

int distro_slot_of(const char *ip, uint16_t port)
{
	struct addr a;

	if (ip == NULL || addr_parse(ip, port, &a) < 0)
		return -DISTRO_EINVAL;
	return (int)addr_slot(&a);
}

void distro_close(struct distro_client *c)
{
	if (c == NULL)
		return;
	distro_keepalive_stop(c);
	client_route_free(c->route);
	drop(c);
	for (int i = 0; i < SUBS_MAX; i++)
		if (c->subs[i].used)
			csub_free(&c->subs[i]);
	creds_forget(c);
	free(c->buf);
	free(c);
}
