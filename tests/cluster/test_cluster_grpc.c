/*
 * gRPC connections in a cluster (docs/distro.md, "gRPC connections and
 * their instances"): a Nacos 2.x client's instances live while its
 * connection lives, renewed by the node holding the connection at their
 * owners, wherever those are. Three real nodes, the tests' own HTTP/2
 * client (tests/integration/grpc_node.h), short timers:
 *
 *   node death    the node holding a publisher is killed: its instances,
 *                 owned by every member, stay listed everywhere until the
 *                 delete timeout at their owners, then go, and a gRPC
 *                 subscriber on a survivor is pushed the removal
 *   reconnect     the publisher's node is killed and the client registers
 *                 again through another node within the delete timeout
 *                 (as the SDKs' redo does): a third node never stops
 *                 listing the instances, and they outlive the timeout
 *   close         a connection closed on a node that owns none of its
 *                 instances: the deregistration reaches the owner and
 *                 every node drops them at once, well before expiry; a
 *                 subscriber on the third node is pushed
 *   mixed writers a gRPC subscriber on one node is pushed the changes
 *                 written through the binary protocol and the Nacos HTTP
 *                 API on the other two
 *   moved         a node left without a quorum refuses writes, renewals
 *                 included: it sends its gRPC clients ConnectResetRequest
 *                 and closes them, so they reconnect where writes are taken
 *
 * The same instance held by two connections (the lease) is not here.
 * Instance addresses are documentation ranges (198.18.0.0/15); nothing
 * probes them. Every wait is bounded; none sleeps as an assertion.
 */
#include "grpc_node.h" /* tests/integration: the HTTP/2 gRPC client */
#include "harness.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONVERGE_MS 20000 /* start to READY and one agreed map, under ASan */
#define SPREAD_MS   5000  /* a write acknowledged by one node is listed by all */
#define RENEW_MS    250   /* --grpc-renew */
#define DELETE_MS   4000  /* --delete-timeout: instances no renewal reaches go after this */
#define PEER_DOWN   900   /* the harness's --peer-down */
#define GONE_MS     15000 /* the kill seen, a takeover, a full delete timeout, ASan slack */
/* A closed connection's instances are deregistered at once: far sooner than an expiry. */
#define CLOSE_MS 1500
#define PUSH_MS  3000 /* a change is pushed (10 ms window) and read, under ASan */
#define SVC_NS   "public"
#define SVC_GRP  "DEFAULT_GROUP"
#define INST_MAX 8

static struct cluster cl;
static struct distro_slot_map map;

static const char *const short_timers[] = {
	"--beat-interval",
	"250",
	"--beat-timeout",
	"1500",
	"--delete-timeout",
	"4000",
	"--grpc-renew",
	"250",
	NULL,
};

static void start3_with(const char *const *extra)
{
	char why[256];

	cluster_setup(&cl, &(struct cluster_opts){ .n = 3, .extra = extra });
	cluster_start(&cl);
	if (!cluster_wait_converged(&cl, CONVERGE_MS)) {
		cluster_converged(&cl, why, sizeof(why));
		cluster_assert(&cl, false, "no agreed slot map within %d ms: %s", CONVERGE_MS, why);
	}
	cr_assert_eq(cluster_slot_map(&cl, 0, &map), 0);
}

static void start_short(void)
{
	start3_with(short_timers);
}

static void start_default(void)
{
	start3_with(NULL);
}

static void teardown(void)
{
	cluster_teardown(&cl);
}

/*
 * Stops the running nodes, each of which must exit 0: a sanitizer's
 * report (ASan's, or TSan's in the Tsan tree) makes it exit non-zero.
 */
static void stop_clean(void)
{
	for (uint32_t i = 0; i < cl.n; i++) {
		int st;

		if (!cluster_node_running(&cl, i))
			continue;
		st = cluster_node_stop(&cl, i);
		cluster_assert(&cl, st == 0, "node %u exited %d on SIGTERM (a sanitizer report?)",
		               i, st);
	}
}

/* ---- instances ---- */

struct insts {
	uint32_t n;
	char ip[INST_MAX][16];
	char name[48];
	struct distro_instance in[INST_MAX];
};

/*
 * Adds an instance of set->name whose slot node i's member owns, at an
 * address from *next on (198.18.x.y, port 7000). Asserts.
 */
static void add_owned_by(struct insts *set, uint32_t i, uint32_t *next)
{
	uint16_t owner = cluster_member_id(&cl, i);
	struct distro_instance *in;
	char *ip;

	cr_assert_lt(set->n, INST_MAX);
	ip = set->ip[set->n];
	for (;; (*next)++) {
		cr_assert_lt(*next, 65536, "an address owned by node %u", i);
		snprintf(ip, 16, "198.18.%u.%u", (*next >> 8) & 255, *next & 255);
		if (map.owners[distro_slot_of(ip, 7000)] == owner)
			break;
	}
	(*next)++;
	in = &set->in[set->n++];
	distro_instance_init(in);
	in->ns = SVC_NS;
	in->group = SVC_GRP;
	in->service = set->name;
	in->ip = ip;
	in->port = 7000;
}

/* ---- the gRPC side ---- */

/* Connects to node i's gRPC port and sets the connection up (ServerCheck, bi-stream). */
static struct gstream *gconnect(struct gcli *c, uint32_t i)
{
	return gcli_setup(c, cl.node[i].grpc_port);
}

/* The set as the connection's instances of its service (a batch): true when answered 200. */
static bool gregister(struct gcli *c, const struct insts *set)
{
	char body[4096], code[8];
	struct gmsg a;
	int off, st;

	off = snprintf(body, sizeof(body),
	               "{\"headers\":{},\"requestId\":\"b\",\"namespace\":\"" SVC_NS "\","
	               "\"serviceName\":\"%s\",\"groupName\":\"" SVC_GRP "\",\"module\":\"naming\","
	               "\"type\":\"batchRegisterInstance\",\"instances\":[",
	               set->name);
	for (uint32_t k = 0; k < set->n; k++)
		off += snprintf(body + off, sizeof(body) - (size_t)off,
		                "%s{\"ip\":\"%s\",\"port\":7000,\"weight\":1.0,\"healthy\":true,"
		                "\"enabled\":true,\"ephemeral\":true,\"clusterName\":\"DEFAULT\"}",
		                k ? "," : "", set->ip[k]);
	snprintf(body + off, sizeof(body) - (size_t)off, "]}");
	st = gcli_call(c, "BatchInstanceRequest", body, &a);
	snprintf(code, sizeof(code), "%s",
	         st == 0 && strcmp(a.type, "BatchInstanceResponse") == 0
	                 ? nj_s(gjson(&a), 0, "resultCode")
	                 : "");
	if (strcmp(code, "200") != 0)
		fprintf(stderr, "register through gRPC: status %d, %s %s\n", st, a.type, a.json);
	gmsg_free(&a);
	return strcmp(code, "200") == 0;
}

/* A gRPC subscriber: what its last push said (each push is acknowledged as it is read). */
struct gsub {
	struct gcli c;
	struct gstream *bi;
	int hosts; /* -1: no push yet */
	char keys[INST_MAX * 2][56];
	uint32_t pushes;
};

static void gsub_start(struct gsub *s, uint32_t node, const char *svc)
{
	char body[512];
	struct gmsg a;

	memset(s, 0, sizeof(*s));
	s->hosts = -1;
	s->bi = gconnect(&s->c, node);
	snprintf(body, sizeof(body),
	         "{\"headers\":{},\"requestId\":\"s\",\"namespace\":\"" SVC_NS "\",\"serviceName\":"
	         "\"%s\",\"groupName\":\"" SVC_GRP "\",\"subscribe\":true,\"clusters\":\"\"}",
	         svc);
	cr_assert_eq(gcli_call(&s->c, "SubscribeServiceRequest", body, &a), 0);
	cr_assert_str_eq(nj_s(gjson(&a), 0, "resultCode"), "200", "%s", a.json);
	gmsg_free(&a);
}

/* Reads the pushes that come within ms (0: those already here), acking each. */
static void gsub_pump(struct gsub *s, int ms)
{
	int64_t end = cluster_mono_ms() + ms;
	struct gmsg m;

	for (;;) {
		int left = (int)(end - cluster_mono_ms());
		struct njson *d;
		char ack[160];
		int si, hosts;

		if (!gcli_bi_next(&s->c, s->bi, &m, left > 0 ? left : 1))
			return;
		cr_assert_str_eq(m.type, "NotifySubscriberRequest", "%s", m.json);
		d = gjson(&m);
		si = nj_get(d, 0, "serviceInfo");
		cr_assert_geq(si, 0, "%s", m.json);
		hosts = nj_get(d, si, "hosts");
		cr_assert_geq(hosts, 0, "%s", m.json);
		s->hosts = d->t[hosts].size;
		cr_assert_leq(s->hosts, INST_MAX * 2);
		for (int k = 0; k < s->hosts; k++) {
			int h = nj_at(d, hosts, k);

			snprintf(s->keys[k], sizeof(s->keys[k]), "%s:%s", nj_s(d, h, "ip"),
			         nj_s(d, h, "port"));
		}
		s->pushes++;
		snprintf(ack, sizeof(ack),
		         "{\"resultCode\":200,\"errorCode\":0,\"requestId\":\"%s\",\"success\":"
		         "true}",
		         nj_s(d, 0, "requestId"));
		gmsg_free(&m);
		gcli_bi_send(&s->c, s->bi, "NotifySubscriberResponse", ack);
		if (cluster_mono_ms() >= end)
			return;
	}
}

static bool gsub_has(const struct gsub *s, const char *ip, uint16_t port)
{
	char want[40];

	snprintf(want, sizeof(want), "%s:%u", ip, port);
	for (int k = 0; k < s->hosts; k++)
		if (strcmp(s->keys[k], want) == 0)
			return true;
	return false;
}

/* Within ms the last push has `hosts` hosts, with ip:port among them when ip is not NULL. */
static bool gsub_wait(struct gsub *s, int hosts, const char *ip, uint16_t port, int ms)
{
	int64_t end = cluster_mono_ms() + ms;

	for (;;) {
		if (s->hosts == hosts && (ip == NULL || gsub_has(s, ip, port)))
			return true;
		if (cluster_mono_ms() >= end)
			return false;
		gsub_pump(s, 50);
	}
}

/* Every running node lists the whole set, within SPREAD_MS. */
static void assert_listed_everywhere(const struct insts *set, int want)
{
	for (uint32_t i = 0; i < cl.n; i++) {
		int last = -1;

		if (!cluster_node_running(&cl, i))
			continue;
		cluster_assert(&cl,
		               cluster_wait_listed(&cl, i, set->in, set->n, want, SPREAD_MS, &last),
		               "node %u lists %d of %s's %u instances, want %d", i, last, set->name,
		               set->n, want);
	}
}

/*
 * Keeps the connection's side going for ms (its answers, a detection)
 * while checking that nodes `a` and `b` list the whole set throughout
 * and the subscriber's last push has it.
 */
static void hold_listed(struct gcli *pub, struct gsub *sub, const struct insts *set, uint32_t a,
                        uint32_t b, int ms, const char *when)
{
	for (int64_t end = cluster_mono_ms() + ms; cluster_mono_ms() < end;) {
		uint32_t nodes[2] = { a, b };

		for (uint32_t k = 0; k < 2; k++) {
			int n = cluster_listed(&cl, nodes[k], set->in, set->n);

			cluster_assert(&cl, n == (int)set->n,
			               "%s: node %u lists %d of %u instances", when, nodes[k], n,
			               set->n);
		}
		if (pub)
			(void)gcli_io(pub, 0);
		if (sub) {
			gsub_pump(sub, 20);
			cluster_assert(&cl, sub->hosts == (int)set->n,
			               "%s: the subscriber was last pushed %d hosts, want %u", when,
			               sub->hosts, set->n);
		} else {
			cluster_nap_ms(20);
		}
	}
}

/* ---- node death ---- */

Test(cluster_grpc, instances_of_a_dead_nodes_connection_expire_at_their_owners, .init = start_short,
     .fini = teardown, .timeout = 240)
{
	struct insts set = { .name = "grpc-death" };
	struct gcli pub;
	struct gsub sub;
	uint32_t next = 1;
	int64_t t0, hold_until;

	/* Two instances owned by each member; the client on node 0, the subscriber on node 1. */
	for (uint32_t i = 0; i < 3; i++) {
		add_owned_by(&set, i, &next);
		add_owned_by(&set, i, &next);
	}
	gsub_start(&sub, 1, set.name);
	cluster_assert(&cl, gsub_wait(&sub, 0, NULL, 0, PUSH_MS), "the push after subscribing");
	gconnect(&pub, 0);
	cr_assert(gregister(&pub, &set), "registered through node 0");
	assert_listed_everywhere(&set, (int)set.n);
	cluster_assert(&cl, gsub_wait(&sub, (int)set.n, NULL, 0, PUSH_MS),
	               "node 1's subscriber is pushed the %u instances (last: %d)", set.n,
	               sub.hosts);
	/* Renewed at their owners through node 0: they outlive the delete timeout. */
	hold_listed(&pub, &sub, &set, 1, 2, DELETE_MS + 500, "node 0 renewing");

	/*
	 * kill -9: nothing deregisters, nothing renews. Each instance stays
	 * until the delete timeout at its owner (node 0's slots move to a
	 * survivor, which gives them a fresh deadline): listed by both
	 * survivors, and pushed as listed, until then.
	 */
	t0 = cluster_mono_ms();
	cluster_node_kill(&cl, 0);
	gcli_close(&pub);
	hold_until = t0 + DELETE_MS - RENEW_MS - 400;
	hold_listed(NULL, &sub, &set, 1, 2, (int)(hold_until - cluster_mono_ms()),
	            "node 0 killed, before the delete timeout");

	/* Then gone from both survivors, and the subscriber on node 1 is pushed that. */
	for (uint32_t i = 1; i < 3; i++) {
		int64_t left = t0 + GONE_MS - cluster_mono_ms();
		int last = -1;

		cluster_assert(&cl,
		               cluster_wait_listed(&cl, i, set.in, set.n, 0,
		                                   left > 0 ? (int)left : 1, &last),
		               "node %u still lists %d instances %d ms after the kill", i, last,
		               GONE_MS);
	}
	cluster_assert(&cl, gsub_wait(&sub, 0, NULL, 0, PUSH_MS),
	               "node 1's subscriber is pushed the removal (last push: %d hosts)",
	               sub.hosts);
	gcli_close(&sub.c);
	stop_clean();
}

/* ---- the client moves to another node ---- */

/* Lists the set on one node in a loop of its own, for as long as it runs. */
struct watcher {
	struct distro_client *cl;
	const struct insts *set;
	atomic_bool stop;
	atomic_int min_seen; /* fewest of the set listed in one answer */
	atomic_int polls, errors;
	atomic_llong first_short_ms; /* when it first listed fewer; 0: never */
};

struct listed_keys {
	uint32_t n;
	char key[64][56];
};

static void listed_add(void *ctx, const struct distro_entry *e)
{
	struct listed_keys *k = ctx;

	if (k->n < 64)
		snprintf(k->key[k->n++], sizeof(k->key[0]), "%s:%u", e->ip, e->port);
}

static void *watch_run(void *arg)
{
	struct watcher *w = arg;

	while (!atomic_load(&w->stop)) {
		struct listed_keys k = { 0 };
		int found = 0;

		if (distro_list(w->cl, SVC_NS, SVC_GRP, w->set->name, NULL, listed_add, &k, NULL) <
		    0) {
			atomic_fetch_add(&w->errors, 1);
			cluster_nap_ms(5);
			continue;
		}
		for (uint32_t i = 0; i < w->set->n; i++) {
			char want[40];

			snprintf(want, sizeof(want), "%s:%u", w->set->ip[i], w->set->in[i].port);
			for (uint32_t j = 0; j < k.n; j++)
				if (strcmp(k.key[j], want) == 0) {
					found++;
					break;
				}
		}
		if (found < atomic_load(&w->min_seen))
			atomic_store(&w->min_seen, found);
		if (found < (int)w->set->n && atomic_load(&w->first_short_ms) == 0)
			atomic_store(&w->first_short_ms, cluster_mono_ms());
		atomic_fetch_add(&w->polls, 1);
		cluster_nap_ms(5);
	}
	return NULL;
}

Test(cluster_grpc, a_client_that_registers_again_through_another_node_never_disappears,
     .init = start_short, .fini = teardown, .timeout = 240)
{
	struct insts set = { .name = "grpc-move" };
	struct watcher w = { .set = &set };
	struct gcli pub, moved;
	pthread_t th;
	uint32_t next = 1000;
	int64_t t0, done_ms, end;
	bool again = false;
	int tries = 0;

	for (uint32_t i = 0; i < 3; i++)
		add_owned_by(&set, i, &next);
	gconnect(&pub, 0);
	cr_assert(gregister(&pub, &set), "registered through node 0");
	assert_listed_everywhere(&set, (int)set.n);
	hold_listed(&pub, NULL, &set, 1, 2, 2 * RENEW_MS, "node 0 renewing");

	/* Node 2 lists the set continuously from before the kill to the end. */
	w.cl = cluster_connect(&cl, 2);
	cr_assert_not_null(w.cl);
	atomic_store(&w.min_seen, (int)set.n);
	cr_assert_eq(pthread_create(&th, NULL, watch_run, &w), 0);

	/* Node 0 dies; the client (its redo) connects to node 1 and registers again. */
	t0 = cluster_mono_ms();
	cluster_node_kill(&cl, 0);
	gcli_close(&pub);
	gconnect(&moved, 1);
	/*
	 * A write to the dead node's slots is refused until node 1 sees it
	 * DOWN (--peer-down) and the slots move: the client tries again, as
	 * the SDKs' redo does.
	 */
	for (end = t0 + DELETE_MS / 2; !again && cluster_mono_ms() < end; tries++) {
		again = gregister(&moved, &set);
		if (!again)
			cluster_nap_ms(100);
	}
	done_ms = cluster_mono_ms() - t0;
	cluster_assert(&cl, again, "no register through node 1 succeeded within %d ms (%d tries)",
	               DELETE_MS / 2, tries);

	/*
	 * Well past the moment node 0's renewals would have let them expire
	 * (a delete timeout after the kill, after the takeover for node 0's
	 * slots): node 1's renewals keep them.
	 */
	for (end = t0 + PEER_DOWN + DELETE_MS + 2000; cluster_mono_ms() < end;)
		(void)gcli_io(&moved, 50);
	atomic_store(&w.stop, true);
	pthread_join(th, NULL);
	distro_close(w.cl);
	cluster_assert(&cl, atomic_load(&w.polls) > 100, "node 2 answered %d lists (%d errors)",
	               atomic_load(&w.polls), atomic_load(&w.errors));
	cluster_assert(&cl, atomic_load(&w.min_seen) == (int)set.n,
	               "node 2 listed only %d of the %u instances, first %lld ms after the kill "
	               "(registered again through node 1 %lld ms after it, in %d tries)",
	               atomic_load(&w.min_seen), set.n,
	               (long long)(atomic_load(&w.first_short_ms) - t0), (long long)done_ms, tries);
	for (uint32_t i = 1; i < 3; i++)
		cluster_assert(&cl, cluster_listed(&cl, i, set.in, set.n) == (int)set.n,
		               "node %u lists the set after the delete timeout", i);
	gcli_close(&moved);
	stop_clean();
}

/* ---- close on a node that owns none of the instances ---- */

Test(cluster_grpc, a_close_on_a_non_owner_deregisters_at_the_owner_at_once, .init = start_short,
     .fini = teardown, .timeout = 240)
{
	struct insts set = { .name = "grpc-close" };
	struct gcli pub;
	struct gsub sub;
	uint32_t next = 2000;
	int64_t t1;

	/* Owned by node 1; the client on node 0; the subscriber on node 2. */
	for (uint32_t k = 0; k < 3; k++)
		add_owned_by(&set, 1, &next);
	gsub_start(&sub, 2, set.name);
	cluster_assert(&cl, gsub_wait(&sub, 0, NULL, 0, PUSH_MS), "the push after subscribing");
	gconnect(&pub, 0);
	cr_assert(gregister(&pub, &set), "registered through node 0");
	assert_listed_everywhere(&set, (int)set.n);
	cluster_assert(&cl, gsub_wait(&sub, (int)set.n, NULL, 0, PUSH_MS),
	               "node 2's subscriber is pushed the %u instances (last: %d)", set.n,
	               sub.hosts);
	/* Renewed through node 0 at node 1, past the delete timeout. */
	hold_listed(&pub, &sub, &set, 1, 2, DELETE_MS + 500, "node 0 renewing");

	/*
	 * The client closes its connection: node 0 deregisters at node 1, and
	 * every node drops them within CLOSE_MS - an expiry would take the
	 * delete timeout (4 s) - and node 2's subscriber is pushed.
	 */
	t1 = cluster_mono_ms();
	gcli_close(&pub);
	for (uint32_t i = 0; i < 3; i++) {
		int64_t left = t1 + CLOSE_MS - cluster_mono_ms();
		int last = -1;

		cluster_assert(&cl,
		               cluster_wait_listed(&cl, i, set.in, set.n, 0,
		                                   left > 0 ? (int)left : 1, &last),
		               "node %u still lists %d instances %d ms after the close", i, last,
		               CLOSE_MS);
	}
	{
		int64_t left = t1 + CLOSE_MS + 500 - cluster_mono_ms();

		cluster_assert(&cl, gsub_wait(&sub, 0, NULL, 0, left > 0 ? (int)left : 1),
		               "node 2's subscriber is pushed the removal within %d ms (last push: "
		               "%d hosts)",
		               CLOSE_MS + 500, sub.hosts);
	}
	gcli_close(&sub.c);
	stop_clean();
}

/* ---- writers on the other ports ---- */

Test(cluster_grpc, a_grpc_subscriber_sees_binary_and_http_writes_on_other_nodes,
     .init = start_default, .fini = teardown, .timeout = 240)
{
	struct insts set = { .name = "grpc-mixed" };
	struct distro_instance *bin;
	struct gsub sub;
	uint32_t next = 3000;
	char target[256], *body = NULL;
	const char *http_ip;
	int st;

	/* One instance through the binary port of node 1, one through the HTTP API of node 2. */
	add_owned_by(&set, 2, &next);
	add_owned_by(&set, 1, &next);
	bin = &set.in[0];
	http_ip = set.ip[1];
	gsub_start(&sub, 0, set.name);
	cluster_assert(&cl, gsub_wait(&sub, 0, NULL, 0, PUSH_MS), "the push after subscribing");

	cr_assert_eq(cluster_register(&cl, 1, bin, 1, NULL), 0);
	cluster_assert(&cl, gsub_wait(&sub, 1, bin->ip, bin->port, PUSH_MS),
	               "a binary register through node 1 is pushed on node 0 (last: %d hosts)",
	               sub.hosts);

	snprintf(target, sizeof(target),
	         "/nacos/v1/ns/instance?serviceName=%s&groupName=" SVC_GRP "&ip=%s&port=7000",
	         set.name, http_ip);
	st = cluster_nacos(&cl, 2, "POST", target, &body);
	cluster_assert(&cl, st == 200 && strcmp(body, "ok") == 0, "HTTP register: %d %s", st,
	               body ? body : "");
	free(body);
	cluster_assert(&cl, gsub_wait(&sub, 2, http_ip, 7000, PUSH_MS),
	               "an HTTP register through node 2 is pushed on node 0 (last: %d hosts)",
	               sub.hosts);
	cr_assert(gsub_has(&sub, bin->ip, bin->port));

	st = cluster_nacos(&cl, 2, "DELETE", target, &body);
	cluster_assert(&cl, st == 200 && strcmp(body, "ok") == 0, "HTTP deregister: %d %s", st,
	               body ? body : "");
	free(body);
	cluster_assert(&cl, gsub_wait(&sub, 1, bin->ip, bin->port, PUSH_MS),
	               "an HTTP deregister through node 2 is pushed on node 0 (last: %d hosts)",
	               sub.hosts);

	cr_assert_eq(cluster_deregister(&cl, 1, bin, 1, NULL), 0);
	cluster_assert(&cl, gsub_wait(&sub, 0, NULL, 0, PUSH_MS),
	               "a binary deregister through node 1 is pushed on node 0 (last: %d hosts)",
	               sub.hosts);
	gcli_close(&sub.c);
	stop_clean();
}

/* ---- a node that takes no writes moves its clients ---- */

static const char *const move_timers[] = {
	"--grpc-move-after",
	"500",
	NULL,
};

static void start_moving(void)
{
	start3_with(move_timers);
}

/*
 * Node 2 alone (both others killed) has no quorum and refuses writes,
 * the renewals of its gRPC connections' instances included: after
 * --peer-down of that it sends ConnectResetRequest to each connection
 * older than --grpc-move-after, and closes it a second later, so the
 * client reconnects to a node that takes its writes. Before the kill,
 * with the cluster whole, the same connection is never asked to move.
 */
Test(cluster_grpc, a_node_without_quorum_moves_its_grpc_clients, .init = start_moving,
     .fini = teardown, .timeout = 120)
{
	struct gcli c;
	struct gstream *bi = gconnect(&c, 2);
	struct gmsg m;
	bool reset = false;
	int64_t t0;

	/* Past --grpc-move-after, with a quorum: nothing but the setup's answers. */
	for (int64_t end = now_ms() + 1500; now_ms() < end;)
		if (gcli_bi_next(&c, bi, &m, 100)) {
			cr_assert_str_neq(m.type, "ConnectResetRequest", "moved with a quorum");
			gmsg_free(&m);
		}
	cr_assert_eq(cluster_stat(&cl, 2, "grpc_moved"), 0);
	cluster_node_kill(&cl, 0);
	cluster_node_kill(&cl, 1);
	t0 = now_ms();
	/* Down after --peer-down, refusing for --peer-down more: ~2 s, ASan slack. */
	while (!reset && gcli_bi_next(&c, bi, &m, (int)(t0 + 15000 - now_ms()))) {
		reset = strcmp(m.type, "ConnectResetRequest") == 0;
		gmsg_free(&m);
	}
	cluster_assert(&cl, reset, "no ConnectResetRequest within 15 s of losing the quorum");
	cr_assert_geq(now_ms() - t0, PEER_DOWN, "asked to move before the peers were down");
	cr_assert_gt(cluster_stat(&cl, 2, "grpc_moved"), 0);
	/* Then closed: GOAWAY and EOF within a few seconds. */
	for (int64_t end = now_ms() + 5000; now_ms() < end && gcli_io(&c, 50);)
		;
	cr_assert(c.eof, "the connection asked to move is closed");
	gcli_close(&c);
	cr_assert(cluster_node_running(&cl, 2), "node 2 still runs");
}
