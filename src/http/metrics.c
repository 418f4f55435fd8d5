/*
 * metrics.c - Prometheus text for the admin port.
 *
 * Where the numbers come from. Every worker keeps plain counters
 * (WORKER_STATS in server/stats.h) that only its own thread writes; every
 * store shard keeps STORE_STATS, written by its owner. A scrape reads them
 * with relaxed loads and sums them (the admin port's source does, in
 * server/main.c; http/admin.h is the contract); nothing takes a lock or
 * stops a worker, so a scrape costs the workers nothing but cache misses.
 * Sums are not a consistent cut across workers: counters read a few
 * nanoseconds apart, which Prometheus tolerates.
 *
 * Names. The counters are declared once, as X-macros; this file expands
 * them into name and value arrays and renders them through a table of
 * families (name, type, help, optional label) that says where each counter
 * goes. A counter the table does not name is still exported, untyped, as
 * distrod_worker_<name> or distrod_store_<name>, so adding a counter to
 * an X-macro can never silently leave it out of /metrics; giving it a real
 * name is a one-line table entry. Table entries for counters this build
 * does not have are skipped, unless the family is marked `always` (then
 * it reads 0: distrod_subscribers before subscriptions existed).
 *
 * The cluster. A clustered node also exports the peer thread's counters
 * (PEER_STATS, as distrod_peer_<name>_total) and per-member gauges
 * (health, ready, slots, link backlog) labelled member="<peer address>",
 * from the snapshot peer_status_read took; a standalone node (no
 * snapshot, or one with clustered false) has none of them. Members are
 * bounded (MEMBERS_MAX), so the labels are too.
 *
 * Bounds beside values. The configured limits a caller passes (struct
 * metrics_limits: connections, instances, services, subscribers, a peer
 * link's backlog) are gauges named distrod_<thing>_max, so an alert
 * divides the value by its bound without knowing the flags.
 *
 * Format: exposition format 0.0.4. Each family's HELP and TYPE lines come
 * once, right before its samples, which stay together. Histograms are
 * cumulative with an le="+Inf" bucket equal to _count. Label values are
 * fixed strings or numbers, except member addresses, which are escaped.
 *
 * Bounds: the output grows with the number of workers (about 1 KiB each)
 * and members (about 250 bytes each) and is capped at METRICS_BYTES_MAX.
 */
#include "http/metrics.h"

#include "core/err.h"
#include "core/mem.h"
#include "core/version.h"
#include "cluster/view.h" /* PEER_STATS, struct peer_status */
#include "server/stats.h" /* WORKER_STATS, the histogram bounds */
#include "store/store.h"  /* STORE_STATS */

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The counters by name, as the X-macros declare them. */
static const char *const worker_names[] = {
#define STAT_NAME(name) #name,
	WORKER_STATS(STAT_NAME)
};
static const char *const store_names[] = { STORE_STATS(STAT_NAME) };
#undef STAT_NAME

#define WORKER_N (sizeof(worker_names) / sizeof(worker_names[0]))
#define STORE_N  (sizeof(store_names) / sizeof(store_names[0]))

static void worker_values(const struct worker_stats *s, uint64_t *v)
{
	size_t i = 0;

#define STAT_VALUE(name) v[i++] = s->name;
	WORKER_STATS(STAT_VALUE)
#undef STAT_VALUE
}

static void store_values(const struct store_stats *s, uint64_t *v)
{
	size_t i = 0;

#define STAT_VALUE(name) v[i++] = s->name;
	STORE_STATS(STAT_VALUE)
#undef STAT_VALUE
}

enum src { SRC_WORKER, SRC_STORE };

struct family_member {
	const char *stat;  /* name in the X-macro */
	const char *value; /* label value; NULL for an unlabelled family */
};

#define FAMILY_MEMBERS_MAX 9

struct family {
	const char *name;
	const char *type;
	const char *help;
	enum src src;
	bool always;       /* render 0 if none of the members exists in this build */
	const char *label; /* label name, NULL for one unlabelled sample */
	struct family_member m[FAMILY_MEMBERS_MAX];
};

/*
 * Where each counter goes. Op counters: register, deregister and heartbeat
 * count instances (a batch of 100 counts 100); the others count requests.
 */
static const struct family families[] = {
	{ "distrod_instances",
	  "gauge",
	  "Live instances in the store, service records (distrod_store_service_records) included.",
	  SRC_STORE,
	  false,
	  NULL,
	  { { "instances", NULL } } },
	{ "distrod_tombstones",
	  "gauge",
	  "Deleted instances remembered for replication.",
	  SRC_STORE,
	  false,
	  NULL,
	  { { "tombstones", NULL } } },
	{ "distrod_services",
	  "gauge",
	  "Services with at least one record.",
	  SRC_STORE,
	  false,
	  NULL,
	  { { "services", NULL } } },
	{ "distrod_subscribers",
	  "gauge",
	  "Open subscriptions.",
	  SRC_WORKER,
	  true,
	  NULL,
	  { { "subs", NULL } } },
	{ "distrod_watched_services",
	  "gauge",
	  "Distinct services with subscribers, per worker, summed.",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "watches", NULL } } },
	{ "distrod_operations_total",
	  "counter",
	  "Operations handled (register, deregister, heartbeat: instances; others: requests).",
	  SRC_WORKER,
	  false,
	  "op",
	  { { "op_register", "register" },
	    { "op_deregister", "deregister" },
	    { "op_heartbeat", "heartbeat" },
	    { "op_list", "list" },
	    { "op_ping", "ping" },
	    { "op_stats", "stats" },
	    { "op_subscribe", "subscribe" },
	    { "op_unsubscribe", "unsubscribe" },
	    { "op_auth", "auth" } } },
	{ "distrod_frames_total",
	  "counter",
	  "Request frames received on the client port.",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "frames", NULL } } },
	{ "distrod_item_errors_total",
	  "counter",
	  "Batch items answered with an error code.",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "item_errors", NULL } } },
	{ "distrod_protocol_errors_total",
	  "counter",
	  "Broken frames (magic, version, length, fields): answered with an error, then closed.",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "proto_errors", NULL } } },
	{ "distrod_busy_total",
	  "counter",
	  "Requests refused as busy (the client retries).",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "busy", NULL } } },
	{ "distrod_pushes_total",
	  "counter",
	  "Subscription pushes sent.",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "pushes", NULL } } },
	{ "distrod_expired_total",
	  "counter",
	  "Instances expired for missing heartbeats: marked unhealthy, or removed.",
	  SRC_STORE,
	  false,
	  "kind",
	  { { "expired_unhealthy", "unhealthy" }, { "expired_removed", "removed" } } },
	{ "distrod_store_writes_total",
	  "counter",
	  "Local writes: registers that created or changed, deregisters and heartbeats that "
	  "found their instance.",
	  SRC_STORE,
	  false,
	  "kind",
	  { { "upserts", "upsert" }, { "deletes", "delete" }, { "touches", "touch" } } },
	{ "distrod_store_rejected_total",
	  "counter",
	  "Writes the store refused with an error.",
	  SRC_STORE,
	  false,
	  NULL,
	  { { "rejected", NULL } } },
	{ "distrod_replica_applies_total",
	  "counter",
	  "Replicated records: applied, or refused as older than the stored one.",
	  SRC_STORE,
	  false,
	  "result",
	  { { "applies", "applied" }, { "applies_stale", "stale" } } },
	{ "distrod_tombstones_purged_total",
	  "counter",
	  "Tombstones forgotten after their time.",
	  SRC_STORE,
	  false,
	  NULL,
	  { { "tombstones_purged", NULL } } },
	{ "distrod_expiry_checks_total",
	  "counter",
	  "Expiry queue heads examined (the sweep's work).",
	  SRC_STORE,
	  false,
	  NULL,
	  { { "expiry_checks", NULL } } },
	{ "distrod_connections_total",
	  "counter",
	  "Client connections: accepted, refused over --conns-max or --conns-per-source, "
	  "closed as idle, too slow to read, or too slow to send a request "
	  "(--header-timeout).",
	  SRC_WORKER,
	  false,
	  "result",
	  { { "conns_accepted", "accepted" },
	    { "conns_refused", "refused" },
	    { "conns_idle_closed", "idle_closed" },
	    { "conns_slow_closed", "slow_closed" },
	    { "conns_source_refused", "source_refused" },
	    { "conns_header_closed", "header_timeout" } } },
	{ "distrod_accept_budget_used_total",
	  "counter",
	  "Worker loops that accepted their whole budget (32) with connections still waiting: "
	  "a connection storm, spread over loops.",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "accepts_deferred", NULL } } },
	{ "distrod_connections_closed_total",
	  "counter",
	  "Client connections closed, for any reason.",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "conns_closed", NULL } } },
	{ "distrod_bytes_total",
	  "counter",
	  "Bytes on the client port.",
	  SRC_WORKER,
	  false,
	  "dir",
	  { { "bytes_in", "in" }, { "bytes_out", "out" } } },
	{ "distrod_xcore_messages_total",
	  "counter",
	  "Requests handed to another core through its ring.",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "xcore_sent", NULL } } },
	{ "distrod_xcore_ring_full_total",
	  "counter",
	  "Cross-core messages that found the ring full and waited in the backlog.",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "xcore_full", NULL } } },
	{ "distrod_uring_loops_total",
	  "counter",
	  "Worker event loop iterations.",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "loops", NULL } } },
	{ "distrod_uring_completions_total",
	  "counter",
	  "io_uring completions reaped.",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "cqes", NULL } } },
	{ "distrod_uring_recv_nobufs_total",
	  "counter",
	  "Receives that found a worker's buffer ring empty (-ENOBUFS): the data waited in the "
	  "socket and the receive was re-armed; the ring grows if many connections had data.",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "recv_nobufs", NULL } } },
	{ "distrod_uring_recv_buffers",
	  "gauge",
	  "Receive buffers (16 KiB) given to the kernel, summed over the workers: each worker "
	  "starts with 64 and grows (doubling) to 512 when more connections have data at once "
	  "than it has buffers. Every one given is resident.",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "recv_bufs", NULL } } },
	{ "distrod_uring_recv_buffers_peak",
	  "gauge",
	  "Most receive buffers a worker had filled at once (between two reaps), its high-water "
	  "mark, summed over the workers.",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "recv_bufs_peak", NULL } } },
	{ "distrod_takeover_adopted_total",
	  "counter",
	  "Instances given a fresh heartbeat deadline because this node gained their slot.",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "takeover_adopted", NULL } } },
	{ "distrod_auth_total",
	  "counter",
	  "Authentication (--auth-users) of Nacos requests and AUTH frames: credentials that "
	  "passed, refused ones, and password checks refused at once as busy.",
	  SRC_WORKER,
	  false,
	  "result",
	  { { "auth_ok", "ok" }, { "auth_refused", "refused" }, { "auth_busy", "busy" } } },
	{ "distrod_auth_bcrypt_total",
	  "counter",
	  "Password checks the users cache could not answer: one bcrypt each, on the auth thread.",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "auth_bcrypt", NULL } } },
	{ "distrod_auth_logins_total",
	  "counter",
	  "Tokens issued by the Nacos login endpoint.",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "auth_logins", NULL } } },
	{ "distrod_stalls_total",
	  "counter",
	  "Worker loops that stood still over a second (a stopped process, a frozen VM): the "
	  "shard's expiry deadlines moved by the stall.",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "stalls", NULL } } },
	{ "distrod_stale_requests_dropped_total",
	  "counter",
	  "Work not run because its client had given up during a stall: connections closed unread, "
	  "and forwarded items that waited past --peer-down.",
	  SRC_WORKER,
	  false,
	  "kind",
	  { { "stale_dropped", "connection" }, { "fwd_stale", "forwarded_item" } } },
	{ "distrod_writes_refused_total",
	  "counter",
	  "Client write items answered unavailable (HTTP 503, -31) because this node reaches no "
	  "quorum of the members, or left the cluster: the client retries through another node.",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "writes_refused", NULL } } },
	{ "distrod_expiry_overridden_total",
	  "counter",
	  "Instances this node wrote again because it heard them beat within their healthy "
	  "timeout: over another node's expiry record, or over a repair that would have "
	  "forgotten them.",
	  SRC_STORE,
	  false,
	  NULL,
	  { { "reasserted", NULL } } },
	{ "distrod_repair_refed_total",
	  "counter",
	  "Records sent back to a slot's owner: its listing held an older one (a heal merging both "
	  "sides).",
	  SRC_STORE,
	  false,
	  NULL,
	  { { "refed", NULL } } },
	{ "distrod_leases",
	  "gauge",
	  "Instances held by at least one gRPC connection's lease, on their owner.",
	  SRC_STORE,
	  false,
	  NULL,
	  { { "leases", NULL } } },
	{ "distrod_lease_refused_total",
	  "counter",
	  "Leases not recorded: a shard's lease table was at its bound (releases then delete).",
	  SRC_STORE,
	  false,
	  NULL,
	  { { "lease_refused", NULL } } },
	{ "distrod_lease_evicted_total",
	  "counter",
	  "Holders displaced from an instance that had the most holders an instance keeps.",
	  SRC_STORE,
	  false,
	  NULL,
	  { { "lease_evicted", NULL } } },
	{ "distrod_releases_kept_total",
	  "counter",
	  "Releases of a gRPC connection's instance that kept it: another holder's lease ran.",
	  SRC_STORE,
	  false,
	  NULL,
	  { { "releases_kept", NULL } } },
	{ "distrod_blind_deletes_total",
	  "counter",
	  "Deregisters of instances this node did not hold, replicated as tombstones all the same.",
	  SRC_STORE,
	  false,
	  NULL,
	  { { "blind_deletes", NULL } } },
	{ "distrod_repair_forgotten_total",
	  "counter",
	  "Replicas a repair dropped because their slot's owner did not list them.",
	  SRC_WORKER,
	  false,
	  NULL,
	  { { "repair_forgotten", NULL } } },
};

#define FAMILY_N (sizeof(families) / sizeof(families[0]))

/* A growing output buffer, capped at METRICS_BYTES_MAX; errors stick. */
struct out {
	char *p;
	size_t len, cap;
	bool err;
};

static __attribute__((format(printf, 2, 3))) void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->err = true;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = o->cap * 2;
		char *p;

		if (cap > METRICS_BYTES_MAX || (p = mem_alloc(cap)) == NULL) {
			o->err = true;
			return;
		}
		memcpy(p, o->p, o->len);
		mem_free(o->p);
		o->p = p;
		o->cap = cap;
	}
}

static void head(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int find(const char *const *names, size_t n, const char *stat)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], stat) == 0)
			return (int)i;
	return -1;
}

static void render_families(struct out *o, const uint64_t *wv, bool *wused, const uint64_t *sv,
                            bool *sused)
{
	for (size_t f = 0; f < FAMILY_N; f++) {
		const struct family *fam = &families[f];
		const char *const *names = fam->src == SRC_WORKER ? worker_names : store_names;
		size_t n = fam->src == SRC_WORKER ? WORKER_N : STORE_N;
		const uint64_t *v = fam->src == SRC_WORKER ? wv : sv;
		bool *used = fam->src == SRC_WORKER ? wused : sused;
		int idx[FAMILY_MEMBERS_MAX];
		int present = 0;

		for (int m = 0; m < FAMILY_MEMBERS_MAX; m++) {
			idx[m] = fam->m[m].stat ? find(names, n, fam->m[m].stat) : -1;
			if (idx[m] >= 0)
				present++;
		}
		if (present == 0 && !fam->always)
			continue;
		head(o, fam->name, fam->type, fam->help);
		if (present == 0) {
			put(o, "%s 0\n", fam->name);
			continue;
		}
		for (int m = 0; m < FAMILY_MEMBERS_MAX; m++) {
			if (idx[m] < 0)
				continue;
			used[idx[m]] = true;
			if (fam->label)
				put(o, "%s{%s=\"%s\"} %llu\n", fam->name, fam->label,
				    fam->m[m].value, (unsigned long long)v[idx[m]]);
			else
				put(o, "%s %llu\n", fam->name, (unsigned long long)v[idx[m]]);
		}
	}
}

/* Counters no family names yet: exported untyped so none is ever missing. */
static void render_rest(struct out *o, const char *prefix, const char *macro,
                        const char *const *names, size_t n, const uint64_t *v, const bool *used)
{
	for (size_t i = 0; i < n; i++) {
		if (used[i])
			continue;
		put(o, "# HELP %s%s %s counter %s (no documented name yet).\n", prefix, names[i],
		    macro, names[i]);
		put(o, "# TYPE %s%s untyped\n%s%s %llu\n", prefix, names[i], prefix, names[i],
		    (unsigned long long)v[i]);
	}
}

static void render_connections(struct out *o, const uint64_t *wv)
{
	int a = find(worker_names, WORKER_N, "conns_accepted");
	int c = find(worker_names, WORKER_N, "conns_closed");

	if (a < 0 || c < 0)
		return;
	head(o, "distrod_connections", "gauge", "Open client connections (accepted - closed).");
	put(o, "distrod_connections %llu\n", (unsigned long long)(wv[a] - wv[c]));
}

static void render_latency(struct out *o, const struct worker_stats *t)
{
	const char *name = "distrod_request_duration_seconds";
	uint64_t cum = 0;

	head(o, name, "histogram",
	     "Client request latency, from the frame's arrival to its answer being queued.");
	for (int i = 0; i < WORKER_LAT_BUCKETS; i++) {
		cum += t->lat_count[i];
		if (i < WORKER_LAT_BUCKETS - 1)
			put(o, "%s_bucket{le=\"%g\"} %llu\n", name,
			    (double)worker_lat_bounds_us[i] / 1e6, (unsigned long long)cum);
		else
			put(o, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	}
	put(o, "%s_sum %llu.%06llu\n%s_count %llu\n", name,
	    (unsigned long long)(t->lat_sum_us / 1000000),
	    (unsigned long long)(t->lat_sum_us % 1000000), name, (unsigned long long)cum);
}

static void render_repl_lag(struct out *o, const struct worker_stats *t)
{
	const char *name = "distrod_replication_lag_seconds";
	uint64_t cum = 0;

	head(o, name, "histogram",
	     "Synced records by lag from the owner's version stamp to being applied here (ms "
	     "resolution; cluster only).");
	for (int i = 0; i < WORKER_REPL_BUCKETS; i++) {
		cum += t->repl_count[i];
		if (i < WORKER_REPL_BUCKETS - 1)
			put(o, "%s_bucket{le=\"%g\"} %llu\n", name,
			    (double)worker_repl_bounds_ms[i] / 1e3, (unsigned long long)cum);
		else
			put(o, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	}
	/* The sum is not kept (the buckets are what matter); 0 keeps the family valid. */
	put(o, "%s_sum 0\n%s_count %llu\n", name, name, (unsigned long long)cum);
}

static void render_batches(struct out *o, const struct worker_stats *w, uint32_t nworkers)
{
	const char *name = "distrod_uring_completions_per_loop";

	head(o, name, "histogram",
	     "Completions reaped per worker loop that reaped any (io_uring batch size), per "
	     "worker.");
	for (uint32_t k = 0; k < nworkers; k++) {
		uint64_t cum = 0;

		for (int i = 0; i < WORKER_BATCH_BUCKETS; i++) {
			cum += w[k].batch_count[i];
			if (i < WORKER_BATCH_BUCKETS - 1)
				put(o, "%s_bucket{worker=\"%u\",le=\"%llu\"} %llu\n", name, k,
				    (2ull << i) - 1, (unsigned long long)cum);
			else
				put(o, "%s_bucket{worker=\"%u\",le=\"+Inf\"} %llu\n", name, k,
				    (unsigned long long)cum);
		}
		put(o, "%s_sum{worker=\"%u\"} %llu\n%s_count{worker=\"%u\"} %llu\n", name, k,
		    (unsigned long long)w[k].cqes, name, k, (unsigned long long)cum);
	}
}

static const unsigned http_statuses[METRICS_HTTP_STATUS_N] = {
#define STATUS_VALUE(s) s,
	METRICS_HTTP_STATUSES(STATUS_VALUE)
#undef STATUS_VALUE
};

void metrics_http_count(struct metrics_http *h, unsigned status)
{
	for (int i = 0; i < METRICS_HTTP_STATUS_N; i++)
		if (http_statuses[i] == status)
			METRICS_HTTP_INC(&h->requests[i]);
}

void metrics_http_read(const struct metrics_http *h, struct metrics_http *out)
{
	for (int i = 0; i < METRICS_HTTP_STATUS_N; i++)
		out->requests[i] = __atomic_load_n(&h->requests[i], __ATOMIC_RELAXED);
	out->conns_accepted = __atomic_load_n(&h->conns_accepted, __ATOMIC_RELAXED);
	out->conns_refused = __atomic_load_n(&h->conns_refused, __ATOMIC_RELAXED);
	out->conns_idle_closed = __atomic_load_n(&h->conns_idle_closed, __ATOMIC_RELAXED);
	out->conns_source_refused = __atomic_load_n(&h->conns_source_refused, __ATOMIC_RELAXED);
	out->conns_evicted = __atomic_load_n(&h->conns_evicted, __ATOMIC_RELAXED);
	out->conns_header_closed = __atomic_load_n(&h->conns_header_closed, __ATOMIC_RELAXED);
}

struct worker_stats *metrics_worker_stats_new(uint32_t n)
{
	return mem_calloc(n ? n : 1, sizeof(struct worker_stats));
}

struct store_stats *metrics_store_stats_new(void)
{
	return mem_calloc(1, sizeof(struct store_stats));
}

static void render_http(struct out *o, const struct metrics_http *h)
{
	head(o, "distrod_http_requests_total", "counter",
	     "Requests answered on the HTTP admin port, by status.");
	for (int i = 0; i < METRICS_HTTP_STATUS_N; i++)
		put(o, "distrod_http_requests_total{code=\"%u\"} %llu\n", http_statuses[i],
		    (unsigned long long)h->requests[i]);
	head(o, "distrod_http_connections_total", "counter",
	     "HTTP admin connections: accepted, refused (503: every slot busy answering), "
	     "closed as idle, refused (503) over 16 from one address, evicted while "
	     "waiting for a request to make room, closed for a head not whole within "
	     "--header-timeout.");
	put(o,
	    "distrod_http_connections_total{result=\"accepted\"} %llu\n"
	    "distrod_http_connections_total{result=\"refused\"} %llu\n"
	    "distrod_http_connections_total{result=\"idle_closed\"} %llu\n"
	    "distrod_http_connections_total{result=\"source_refused\"} %llu\n"
	    "distrod_http_connections_total{result=\"evicted\"} %llu\n"
	    "distrod_http_connections_total{result=\"header_timeout\"} %llu\n",
	    (unsigned long long)h->conns_accepted, (unsigned long long)h->conns_refused,
	    (unsigned long long)h->conns_idle_closed, (unsigned long long)h->conns_source_refused,
	    (unsigned long long)h->conns_evicted, (unsigned long long)h->conns_header_closed);
}

/*
 * The peer thread's counters (PEER_STATS in cluster/view.h), each exported
 * as distrod_peer_<name>_total. Help texts by name; a counter without one
 * still appears, with a help line pointing at the X-macro, so adding a
 * counter can never leave it out.
 */
static const char *const peer_names[] = {
#define STAT_NAME(name) #name,
	PEER_STATS(STAT_NAME)
#undef STAT_NAME
};

#define PEER_N (sizeof(peer_names) / sizeof(peer_names[0]))

static const struct {
	const char *stat, *help;
} peer_help[] = {
	{ "links_up", "Peer links whose handshake completed." },
	{ "dials", "Connections this node attempted to members it has no link to." },
	{ "auth_failures", "Peer links refused: bad secret, unknown member or bad hello." },
	{ "preauth_refused",
	  "Peer port connections refused: one address already had 4 links not yet "
	  "authenticated." },
	{ "fwd_batches", "Forward frames sent to slot owners." },
	{ "fwd_items", "Client write items forwarded to their slot's owner." },
	{ "fwd_unavailable",
	  "Forwarded items answered retryable because the owner was unreachable." },
	{ "fwd_served", "Write items executed here for a peer." },
	{ "sync_frames_out", "Sync frames sent to peers." },
	{ "sync_records_out", "Records sent to peers in sync frames (counted per peer)." },
	{ "sync_dropped", "Records not sent: backlog full or link down (verify repairs them)." },
	{ "sync_frames_in", "Sync frames received from peers." },
	{ "sync_records_in", "Records received from peers in sync frames." },
	{ "verify_rounds", "Digests of owned slots sent to peers." },
	{ "verify_bytes_out", "Digest bytes sent, all peers." },
	{ "verify_mismatch", "Digest ranges that differed from a peer's." },
	{ "verify_confirms",
	  "Confirming looks asked: per-slot sums requested again soon after a slot differed." },
	{ "verify_sums_bytes_out", "Per-slot sum requests and answers sent, all peers." },
	{ "repair_slots", "Slots pulled from their owner to repair a mismatch." },
	{ "repair_records", "Records received by repairs." },
	{ "load_slots", "Slots loaded from peers at startup." },
	{ "load_records", "Records received by the startup load." },
	{ "snapshot_records", "Records served to peers for repairs and startup loads." },
	{ "takeover_slots", "Slots gained; every instance in them got a fresh deadline." },
	{ "map_changes", "Slot map recomputations that changed an owner." },
	{ "fault_dropped", "Sync frames dropped by the --fault-drop-sync test hook." },
	{ "proto_errors", "Peer frames refused; the link was closed." },
	{ "stalls",
	  "Peer loops that stood still past --peer-down: links dropped, copy loaded again." },
};

static void peer_values(const struct peer_stats *s, uint64_t *v)
{
	size_t i = 0;

#define STAT_VALUE(name) v[i++] = s->name;
	PEER_STATS(STAT_VALUE)
#undef STAT_VALUE
}

/* A label value: member addresses are plain text, but escape what the format needs. */
static void put_label(struct out *o, const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	put(o, "\"");
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' || s[i] == '"')
			put(o, "\\%c", s[i]);
		else if (s[i] == '\n')
			put(o, "\\n");
		else
			put(o, "%c", s[i]);
	}
	put(o, "\"");
}

static void render_peer(struct out *o, const struct peer_status *st)
{
	static const struct {
		const char *name, *help;
		int field; /* 0 health, 1 ready, 2 slots, 3 backlog */
	} gauges[] = {
		{ "distrod_peer_member_health",
		  "Each member's health as this node sees it: 0 DOWN, 1 SUSPICIOUS, 2 UP.", 0 },
		{ "distrod_peer_member_ready", "1 if the member is READY (loaded, may own slots).",
		  1 },
		{ "distrod_peer_member_slots", "Slots the member owns in this node's map.", 2 },
		{ "distrod_peer_member_backlog_bytes",
		  "Output waiting on this node's link to the member.", 3 },
	};
	uint64_t v[PEER_N];
	uint32_t n = st->n < MEMBERS_MAX ? st->n : MEMBERS_MAX;

	peer_values(&st->stats, v);
	for (size_t i = 0; i < PEER_N; i++) {
		const char *help = NULL;

		for (size_t k = 0; k < sizeof(peer_help) / sizeof(peer_help[0]); k++)
			if (strcmp(peer_help[k].stat, peer_names[i]) == 0)
				help = peer_help[k].help;
		if (help)
			put(o, "# HELP distrod_peer_%s_total %s\n", peer_names[i], help);
		else
			put(o, "# HELP distrod_peer_%s_total PEER_STATS counter %s.\n",
			    peer_names[i], peer_names[i]);
		put(o, "# TYPE distrod_peer_%s_total counter\ndistrod_peer_%s_total %llu\n",
		    peer_names[i], peer_names[i], (unsigned long long)v[i]);
	}
	head(o, "distrod_peer_ready", "gauge",
	     "1 once this node is READY: loaded, owning slots, healthy for clients.");
	put(o, "distrod_peer_ready %d\n", st->ready ? 1 : 0);
	head(o, "distrod_peer_quorum", "gauge",
	     "1 while this node reaches a quorum of the members; 0: it expires nothing and "
	     "refuses client writes.");
	put(o, "distrod_peer_quorum %d\n", st->quorum ? 1 : 0);
	head(o, "distrod_peer_map_version", "gauge",
	     "Version of this node's slot map (grows with every change).");
	put(o, "distrod_peer_map_version %llu\n", (unsigned long long)st->map_version);
	head(o, "distrod_peer_members", "gauge", "Members in cluster.conf, this node included.");
	put(o, "distrod_peer_members %u\n", n);
	for (size_t g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++) {
		head(o, gauges[g].name, "gauge", gauges[g].help);
		for (uint32_t i = 0; i < n; i++) {
			const struct peer_member_status *m = &st->m[i];
			unsigned long long val =
			        gauges[g].field == 0   ? (unsigned long long)m->health
			        : gauges[g].field == 1 ? (unsigned long long)m->ready
			        : gauges[g].field == 2 ? (unsigned long long)m->slots
			                               : m->backlog_bytes;

			put(o, "%s{member=", gauges[g].name);
			put_label(o, m->addr, sizeof(m->addr));
			put(o, "} %llu\n", val);
		}
	}
}

/*
 * The configured bounds (struct metrics_limits), one gauge each, beside the
 * value it bounds: alerts divide the two (docs/prometheus/). A zero is a
 * bound the caller did not give, left out.
 */
static void render_limits(struct out *o, const struct metrics_limits *l, bool clustered)
{
	const struct {
		const char *name, *help;
		uint64_t v;
	} g[] = {
		{ "distrod_connections_max",
		  "--conns-max: client connections (both ports), shared out evenly over the "
		  "workers.",
		  l->conns_max },
		{ "distrod_instances_max",
		  "--instances-max: live instances and tombstones the store holds at most.",
		  l->instances_max },
		{ "distrod_services_max", "--services-max: services the store holds at most.",
		  l->services_max },
		{ "distrod_subscribers_max",
		  "--subs-max times the workers: open subscriptions at most (a per-worker bound).",
		  l->subscribers_max },
		{ "distrod_peer_backlog_bytes_max",
		  "--peer-backlog: output waiting on one peer link before sync records are "
		  "dropped.",
		  clustered ? l->peer_backlog_bytes_max : 0 },
	};

	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
		if (g[i].v == 0)
			continue;
		head(o, g[i].name, "gauge", g[i].help);
		put(o, "%s %llu\n", g[i].name, (unsigned long long)g[i].v);
	}
}

int metrics_render(const struct metrics_input *in, char **out, size_t *len)
{
	uint64_t wv[WORKER_N], sv[STORE_N];
	bool wused[WORKER_N], sused[STORE_N];
	struct out o = { .cap = 8192 };

	o.p = mem_alloc(o.cap);
	if (o.p == NULL)
		return -ERR_NOMEM;
	worker_values(in->total, wv);
	store_values(in->store, sv);
	memset(wused, 0, sizeof(wused));
	memset(sused, 0, sizeof(sused));

	render_families(&o, wv, wused, sv, sused);
	render_connections(&o, wv);
	render_latency(&o, in->total);
	render_batches(&o, in->workers, in->nworkers);
	head(&o, "distrod_workers", "gauge", "Worker threads (one io_uring and store shard each).");
	put(&o, "distrod_workers %u\n", in->nworkers);
	/* An info metric: the labels are the data (version.h: no escaping needed). */
	head(&o, "distrod_build_info", "gauge",
	     "The release and commit this distrod was built from (always 1).");
	put(&o, "distrod_build_info{version=\"%s\",commit=\"%s\"} 1\n", DISTRO_VERSION,
	    DISTRO_VERSION_COMMIT);
	if (in->http)
		render_http(&o, in->http);
	if (in->peer && in->peer->clustered) {
		render_peer(&o, in->peer);
		render_repl_lag(&o, in->total);
	}
	if (in->limits)
		render_limits(&o, in->limits, in->peer && in->peer->clustered);
	render_rest(&o, "distrod_worker_", "WORKER_STATS", worker_names, WORKER_N, wv, wused);
	render_rest(&o, "distrod_store_", "STORE_STATS", store_names, STORE_N, sv, sused);
	if (o.err) {
		mem_free(o.p);
		return -ERR_NOMEM;
	}
	*out = o.p;
	*len = o.len;
	return 0;
}
