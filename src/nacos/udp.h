/*
 * udp.h - Nacos UDP push: subscribers, coalesced pushes, acks and retries,
 * independent of any transport.
 *
 * A Nacos 1.x client that polls `GET /nacos/v1/ns/instance/list?udpPort=N`
 * subscribes to that service: from then on every change of the service is
 * pushed to it as a UDP datagram
 *
 *     {"type":"dom","lastRefTime":<ref>,"data":"<its list answer, as a JSON string>"}
 *
 * gzip-compressed when it is 1024 bytes or more, and the client answers
 * {"type":"push-ack","lastRefTime":<ref>,"data":""} from the socket it
 * listens on. This module is that protocol's logic: the subscriber table,
 * the change-to-push coalescing, the packet encoding, the ack matching, the
 * retry and the expiry. It does no I/O and reads no clock: the worker that
 * owns it passes the time into every call, hands it the datagrams its UDP
 * socket receives (udp_on_datagram), and sends what it is given through a
 * callback (udp_send_fn); a subscriber's list JSON comes from another
 * callback (udp_render_fn), because the HTTP side owns that rendering. So
 * the whole protocol runs in unit tests with a recording callback and a
 * settable clock (tests/unit/nacos/test_udp.c), and the ack decoder runs
 * (nacos/udp_ack.c, on the project's strict JSON reader) under libFuzzer
 * (tests/fuzz/fuzz_nacos_udp.c). docs/nacos.md, "UDP push", is the user's view.
 *
 * Ownership. One struct udp_push per worker thread; only that thread calls
 * it, so there is no lock and no atomic. Its counters (struct udp_stats) are
 * plain uint64_t fields written by that thread; the worker copies them into
 * what /metrics reads. A subscriber lives on the worker chosen by a hash of its target
 * (server/nacos_push.c); the acks come back to that worker's socket, because a client
 * acks to the source of the push. Bounds are per udp_push: a node bound
 * is divided among the workers by whoever configures them.
 *
 * Subscribers. A subscriber is identified by (service, clusters string,
 * target address): the target is the SOURCE address of the subscriber's
 * HTTP connection with the port replaced by udpPort, and the clusters
 * string is kept byte for byte, because the client files a push under
 * "name@@clusters" and ignores one filed elsewhere. The client keeps one
 * cache entry per such key, so one push per key is what it can use:
 * healthyOnly and the answer shape are attributes that the latest poll
 * sets, not part of the identity. Each poll refreshes the subscriber
 * (udp_sub_refresh: no allocation when it exists); one that stops polling
 * is forgotten after sub_ttl_ms (default 30 s). Nacos 1.x forgets after
 * 10 s, but the npm client polls every cacheMillis (10 s, what the list
 * answers) plus the request's own time, so a 10 s limit drops a live
 * subscriber whenever one poll is a little late, and a poll that fails
 * over to another server (5 s urllib timeout) misses a full period. Three
 * periods ride over one or two lost polls; the cost of keeping a dead
 * subscriber 20 s longer is a few unacknowledged datagrams (bounded, below).
 *
 * Changes and coalescing. udp_service_changed() marks every subscriber of
 * the service (a hash table keyed by the service, then the service's list:
 * O(subscribers of the service)); a marked subscriber is pushed window_ms
 * after its first mark (default 2 ms), and further changes inside the
 * window add nothing: the list is rendered when the push goes out, so it
 * carries all of them. Nacos waits 500-1000 ms; we want changes at clients
 * in milliseconds, and 2 ms still folds a burst (a batch of registrations,
 * a replicated batch) into one push.
 *
 * Refs. The outer lastRefTime is the ack's id: counter * 64 + worker_id
 * (UDP_WORKERS_MAX workers), so refs of different workers never collide
 * and stay far below 2^53, where a JavaScript client's echo would lose
 * precision (Nacos sends System.nanoTime(), which passes 2^53 after ~104
 * days of uptime; then npm acks never match).
 *
 * Acks and retries. A sent push waits in the unacked table (bounded by
 * unacked_max entries, and its bytes in a ring of retry_bytes_max) until
 * an ack from the target address with the same ref clears it. Without an
 * ack it is sent once more after retry_ms (default 1000 ms), and given up
 * another retry_ms later (counted as failed). Nacos waits 10 s, which is
 * as late as the client's own next poll, so such a retry adds nothing; a
 * datagram that has not been acknowledged within 1 s on a LAN is lost, and
 * resending it then brings the change a poll period earlier. When the
 * table or the ring is full, the push is still sent but without a retry
 * (counted). A newer push to a subscriber drops the older unacked one:
 * newer data supersedes, and a late retry of older data would undo it.
 *
 * Packets. The data string is the render callback's output, JSON-escaped
 * (quotes, backslashes, every control character); a packet over 65507
 * bytes after compression (the UDP maximum, and the clients read into a
 * 64 KiB buffer) is not sent (counted): the client's next poll brings it.
 * Compression is zlib's gzip wrapper (magic 1f 8b, what Nacos clients
 * detect) at level 1 by default: the packet only has to fit the datagram,
 * and the compressing runs on a worker thread that serves requests.
 *
 * Bounds and memory. subs_max subscribers (refused beyond, counted),
 * unacked_max unacked pushes, retry_bytes_max bytes of them, poll_budget
 * items of work per udp_poll, render_bytes_max bytes of list JSON. Every
 * table and buffer is allocated by udp_create; afterwards memory is
 * allocated only when a subscriber (or the first subscriber of a service)
 * is created - once per subscriber, not per poll or per push - and freed
 * when it expires. The hot paths (refresh, change, push, ack, retry)
 * allocate nothing.
 *
 * Time. Every now_ms comes from one monotonic millisecond clock and never
 * goes back; deadlines are FIFOs ordered by it (marks, unacked entries,
 * refreshes each get now + a constant), so udp_poll's work is O(what is
 * due), never O(subscribers). The clock must be precise to the
 * millisecond (clock_mono_us() / 1000, not the coarse clock_mono_ms,
 * whose tick is longer than the 2 ms window).
 */
#ifndef DISTRO_NACOS_UDP_H
#define DISTRO_NACOS_UDP_H

#include "store/types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UDP_PACKET_BYTES_MAX 65507u /* the largest UDP payload over IPv4 */
#define UDP_GZIP_MIN_BYTES   1024u  /* packets this long or longer are gzipped (Nacos) */
#define UDP_WORKERS_MAX      64u    /* worker ids 0..63: the low 6 bits of every ref */
#define UDP_REF_MAX          ((1ull << 53) - 1) /* every ref is at most this: exact in a double */
#define UDP_AGENT_BYTES_MAX  128u /* a subscriber's agent and app are kept up to this */

/* Counters of one udp_push: plain fields written by its thread only. */
#define UDP_STATS(X)                                                                               \
	X(subs)           /* subscribers (gauge) */                                                \
	X(services)       /* services with subscribers (gauge) */                                  \
	X(unacked)        /* pushes waiting for an ack (gauge) */                                  \
	X(retry_bytes)    /* bytes of the retry ring in use, holes included (gauge) */             \
	X(subs_created)   /* polls that created a subscriber */                                    \
	X(subs_refreshed) /* polls that refreshed one */                                           \
	X(subs_expired)   /* subscribers forgotten after sub_ttl_ms without a poll */              \
	X(subs_refused)   /* polls refused: subs_max reached */                                    \
	X(subs_invalid)   /* polls refused: bad name, clusters or address */                       \
	X(changes)        /* udp_service_changed calls that found subscribers */                   \
	X(pushes)         /* pushes the send callback accepted (retries not included) */           \
	X(push_bytes)     /* their bytes, and the retries' */                                      \
	X(gzipped)        /* pushes sent compressed */                                             \
	X(acked)          /* pushes acknowledged */                                                \
	X(retries)        /* pushes sent a second time */                                          \
	X(failed)         /* pushes given up: no ack after the retry */                            \
	X(superseded)     /* unacked pushes dropped for a newer push to the same subscriber */     \
	X(abandoned)      /* unacked pushes dropped with their expired subscriber */               \
	X(not_retried)    /* pushes sent without retry state: unacked table or bytes full */       \
	X(too_big)        /* pushes not sent: over UDP_PACKET_BYTES_MAX or render_bytes_max */     \
	X(render_failed)  /* pushes not sent: the render callback failed otherwise */              \
	X(send_errors)    /* send callback failures (the retry covers a first send) */             \
	X(acks_unmatched) /* push-acks with an unknown ref or from another address */              \
	X(acks_dump)      /* dump-acks (we never send dump): counted, matched to nothing */        \
	X(acks_unknown)   /* unknown-acks (the client did not know our type) */                    \
	X(garbage)        /* datagrams that are not an ack */

struct udp_stats {
#define UDP_STAT_FIELD(name) uint64_t name;
	UDP_STATS(UDP_STAT_FIELD)
#undef UDP_STAT_FIELD
};

struct udp_config {
	uint32_t worker_id;   /* 0..UDP_WORKERS_MAX-1: makes refs unique across workers */
	uint32_t subs_max;    /* subscribers of this udp_push: 65536 (divide a node bound) */
	uint32_t sub_ttl_ms;  /* forget a subscriber this long after its last poll: 30000 */
	uint32_t window_ms;   /* push this long after a subscriber's first change: 2 */
	uint32_t retry_ms;    /* resend an unacked push after this; give up as long after: 1000 */
	uint32_t unacked_max; /* unacked pushes kept for a retry: 16384 (0: never retry) */
	uint32_t retry_bytes_max;    /* bytes of them kept: 8 MiB */
	uint32_t render_bytes_max;   /* list JSON a render may produce: 1 MiB */
	uint32_t poll_budget;        /* sends, retries and expiries per udp_poll: 256 */
	uint32_t name_bytes_max;     /* namespace, group, service: 256 (the store's limit) */
	uint32_t clusters_bytes_max; /* the clusters parameter: 1024 */
	int gzip_level;              /* zlib level 1..9: 1 */
};

/* The defaults above. */
void udp_config_default(struct udp_config *c);

/* What a list poll with udpPort > 0 gives udp_sub_refresh. Borrowed for the call. */
struct udp_sub_params {
	/*
	 * The service. ns or group absent (p NULL) or empty take "public" and
	 * "DEFAULT_GROUP"; service is required. udp_service_changed must name
	 * it the same way.
	 */
	struct store_svc_key svc;
	struct store_str clusters; /* the `clusters` parameter verbatim; absent = "" */
	/*
	 * The source address of the subscriber's HTTP connection (AF_INET or
	 * AF_INET6; an IPv4-mapped IPv6 address counts as IPv4). Its port is
	 * replaced by udp_port. (A "use clientIP" switch passes that address
	 * here instead: the module does not care where it comes from.)
	 */
	const struct sockaddr_storage *peer;
	uint16_t udp_port; /* 1..65535 */
	bool healthy_only;
	uint8_t shape; /* the HTTP side's answer shape (client kind): opaque here */
	/*
	 * The service's word (udp_each_service) as of the answer this poll got,
	 * 0 when unknown. A service this poll creates starts with it, so a
	 * change between the answer and the caller's next look at the service
	 * is not taken for its starting point; an existing service whose word
	 * differs (the answer is older, or newer, than what the other
	 * subscribers were last pushed) gets this subscriber a push.
	 */
	uint64_t word;
	/*
	 * The client's User-Agent and `app` (p NULL: none), shown by
	 * /service/subscribers: kept as the poll that created the subscriber
	 * gave them, cut at UDP_AGENT_BYTES_MAX; later polls do not change them.
	 */
	struct store_str agent, app;
};

/* A subscriber as the callbacks see it. Valid only during the call. */
struct udp_sub_view {
	struct store_svc_key svc; /* canonical: ns and group never absent */
	struct store_str clusters;
	struct store_str agent, app; /* as udp_sub_params says; len 0 when none */
	bool healthy_only;
	uint8_t shape;
	const struct sockaddr_storage *target; /* AF_INET or AF_INET6 (never v4-mapped) */
	socklen_t target_len;
	int64_t refreshed_ms; /* its last poll */
};

/*
 * Renders the list answer of one subscriber (its service, clusters,
 * healthyOnly and shape, with cacheMillis as a list answer would carry)
 * into buf[0..cap). Returns the length written (0..cap), -ERR_PROTO_TOO_BIG
 * when it does not fit (counted as too_big), or another -ERR_* (counted as
 * render_failed); either way nothing is sent. now_ms is the time udp_poll
 * was given; the inner lastRefTime must come from the same clock as the
 * list answers' (clients compare them), which the HTTP side owns. Called
 * only from udp_poll; it must not call back into this udp_push.
 */
typedef int udp_render_fn(void *ctx, const struct udp_sub_view *sub, int64_t now_ms, char *buf,
                          size_t cap);

/*
 * Sends one datagram of len (1..UDP_PACKET_BYTES_MAX) bytes to `to`.
 * `to` and `bytes` are valid only during the call: an asynchronous sender
 * copies both (the buffer is reused by the next packet). 0 when the
 * datagram was queued, or -ERR_* (counted as send_errors; a first send is
 * then retried like a lost datagram). Called only from udp_poll; it must
 * not call back into this udp_push.
 */
typedef int udp_send_fn(void *ctx, const struct sockaddr_storage *to, socklen_t to_len,
                        const void *bytes, size_t len);

struct udp_callbacks {
	udp_render_fn *render;
	udp_send_fn *send;
};

struct udp_push;

/*
 * Creates a udp_push with every table and buffer it will need: about
 * retry_bytes_max + render_bytes_max + 64 KiB, 16 bytes per subs_max,
 * about 100 per unacked_max, and zlib's ~270 KiB. cfg and cb are copied;
 * ctx is passed to the callbacks. 0, -ERR_INVAL (a field out of range, a
 * callback missing) or -ERR_NOMEM.
 */
int udp_create(const struct udp_config *cfg, const struct udp_callbacks *cb, void *ctx,
               struct udp_push **out);

/* Frees everything; u may be NULL. */
void udp_destroy(struct udp_push *u);

/*
 * Forgets every subscriber, service, unacked push, ref and counter: the
 * udp_push is then what udp_create made with the same config, keeping its
 * buffers (so a fuzzer starts each input from a new one without ~0.5 MiB
 * of allocations). O(subscribers + services + the tables' size).
 */
void udp_reset(struct udp_push *u);

/*
 * A list poll with udpPort > 0: creates the subscriber or refreshes it
 * (its ttl restarts; healthyOnly and shape take the poll's values). Does
 * not push while the poll's answer is as fresh as the service's word
 * (p->word); otherwise the subscriber is marked like a change. 0, or -ERR_LIMIT_SUBS at
 * subs_max (subs_refused), -ERR_NAME_EMPTY / -ERR_NAME_LONG for a missing
 * or oversized name or clusters, -ERR_ADDR for a peer that is not IPv4 or
 * IPv6 or a udp_port of 0 (subs_invalid), -ERR_NOMEM. O(name bytes); an
 * existing subscriber allocates nothing.
 */
int udp_sub_refresh(struct udp_push *u, const struct udp_sub_params *p, int64_t now_ms);

/*
 * The service's instances changed: every subscriber of it that has no
 * push pending gets one due at now_ms + window_ms. Returns the number of
 * subscribers newly marked (0 for a service nobody subscribes to), or
 * -ERR_NAME_EMPTY when k names no service. O(subscribers of the service).
 */
int udp_service_changed(struct udp_push *u, const struct store_svc_key *k, int64_t now_ms);

/*
 * Does what is due at now_ms, at most poll_budget items: first retries and
 * give-ups of unacked pushes, then the expiry of silent subscribers (with
 * their unacked pushes), then due pushes (render, encode, send, keep for
 * the retry). Returns the milliseconds until it next has something to do
 * (0: the budget ran out, call again soon), or -1 when nothing at all is
 * scheduled (no subscribers). Call it once per loop, after the loop's
 * udp_service_changed and udp_on_datagram calls, and sleep no longer than
 * it says.
 */
int64_t udp_poll(struct udp_push *u, int64_t now_ms);

/*
 * A datagram that arrived on the worker's push socket from `from`. A
 * push-ack whose ref matches an unacked push to that same address clears
 * it (0). Everything else is counted and ignored: -ERR_NOT_FOUND for a
 * push-ack that matches nothing, a dump-ack or an unknown-ack,
 * -ERR_INVAL for garbage. Never fails otherwise; O(len).
 */
int udp_on_datagram(struct udp_push *u, const struct sockaddr_storage *from, const void *bytes,
                    size_t len, int64_t now_ms);

enum udp_ack_type {
	UDP_ACK_PUSH = 1, /* "push-ack" */
	UDP_ACK_DUMP,     /* "dump-ack" */
	UDP_ACK_UNKNOWN,  /* "unknown-ack" */
};

struct udp_ack {
	enum udp_ack_type type;
	bool has_ref;
	uint64_t ref; /* lastRefTime, from a JSON number or a string of digits */
};

/*
 * Decodes a client's datagram: one JSON object with a string "type" of
 * push-ack, dump-ack or unknown-ack and a "lastRefTime" that is a
 * non-negative integer (1-19 digits) or a string of such digits (Java 1.x
 * quotes it); other keys are ignored. A push-ack needs the lastRefTime.
 * 0, or -ERR_INVAL for anything else (not JSON, NUL bytes, more than 64
 * tokens, a repeated or malformed field). No allocation; O(len). Pure.
 */
int udp_ack_decode(const void *bytes, size_t len, struct udp_ack *out);

/* The counters. Read on the owning thread (the worker copies them for /metrics). */
const struct udp_stats *udp_stats(const struct udp_push *u);

/*
 * Calls fn for every service that has subscribers, with a word the caller
 * may use as it likes (0 when the service got its first subscriber; e.g.
 * the store revision last seen, to call udp_service_changed when it moves).
 * fn may call udp_service_changed; nothing else of this udp_push.
 * O(services).
 */
void udp_each_service(struct udp_push *u,
                      void (*fn)(void *ctx, const struct store_svc_key *k, uint64_t *word),
                      void *ctx);

/*
 * Calls fn for every subscriber of service k (for /service/subscribers);
 * returns their number. fn must not call into this udp_push.
 * O(subscribers of the service).
 */
uint32_t udp_each_sub(struct udp_push *u, const struct store_svc_key *k,
                      void (*fn)(void *ctx, const struct udp_sub_view *sub), void *ctx);

#ifdef __cplusplus
}
#endif

#endif
