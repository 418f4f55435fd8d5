/*
 * nacos_api.c - the endpoints of the Nacos v1 naming API (/nacos/v1/ns),
 * on the worker that read the request. docs/nacos.md lists each endpoint
 * with its parameters, answers and errors, and where distrod differs from
 * Nacos and why.
 *
 * Parameters come from the query and from form bodies alike (nacos.c);
 * a blank parameter counts as absent, as in Nacos's WebUtils.optional.
 * Names: namespaceId defaults to "public", a serviceName "G@@s" carries
 * its group (else groupName, else DEFAULT_GROUP); `dom` is the pre-0.8
 * name of serviceName.
 *
 * Writes (register, deregister, update, patch, beat) become one item of
 * the binary protocol and take its path (nacos_write), so they are routed,
 * forwarded and replicated like any binary write and answered when the
 * owner has run them. Reads (list, detail, statuses, service list) are
 * answered from this node's store under the epoch, like binary LISTs.
 *
 * Answers are built in the worker's body buffer (NACOS_BODY_MAX); JSON
 * strings go through json_put_str, which escapes everything a client or
 * a browser could misread.
 */
#include "server/nacos_internal.h"

#include "cluster/peer.h"
#include "cluster/view.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "nacos/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_CT "application/json;charset=UTF-8"

#define DEFAULT_NS      "public"
#define DEFAULT_GROUP   "DEFAULT_GROUP"
#define DEFAULT_CLUSTER "DEFAULT"

#define BEAT_INTERVAL_MS 5000u /* Nacos's clientBeatInterval default */
#define CACHE_MILLIS     10000u

#define META_INTERVAL "preserved.heart.beat.interval"
#define META_TIMEOUT  "preserved.heart.beat.timeout"
#define META_DELETE   "preserved.ip.delete.timeout"

/* ---- small helpers ---- */

static struct store_str str_of(const char *s)
{
	return (struct store_str){ s, (uint32_t)strlen(s) };
}

static bool str_eq(struct store_str a, const char *b)
{
	size_t n = strlen(b);

	return a.len == n && memcmp(a.p, b, n) == 0;
}

/* A parameter that is present and not blank. */
static bool param(struct nctx *x, const char *key, struct store_str *out)
{
	return form_get(&x->form, key, out) && out->len > 0;
}

static struct buf *body(struct nctx *x)
{
	struct buf *b = &x->w->nacos->body;

	buf_clear(b);
	return b;
}

/* Appends a NUL-terminated literal; false at the bound. */
static bool put(struct buf *b, const char *s)
{
	return json_put_raw(b, s, strlen(s), NACOS_BODY_MAX);
}

static bool put_str(struct buf *b, struct store_str s)
{
	return json_put_str(b, s.p ? s.p : "", s.p ? s.len : 0, NACOS_BODY_MAX);
}

static void reply_400(struct nctx *x, const char *fmt, const char *arg)
{
	char msg[512];

	snprintf(msg, sizeof(msg), fmt, arg);
	nacos_reply_text(x, 400, msg);
}

static void reply_json_or_500(struct nctx *x, struct buf *b, bool ok)
{
	if (ok)
		nacos_reply_json(x, b);
	else
		nacos_reply_text(x, 500, "answer larger than the server's bound");
}

/* The HTTP status and text of a store or routing error. */
static uint16_t status_of(int code)
{
	switch (code) {
	case -ERR_BUSY:
	case -ERR_UNAVAILABLE:
	case -ERR_NOMEM:
		return 503;
	case -ERR_LIMIT_INSTANCES:
	case -ERR_LIMIT_SERVICE:
	case -ERR_LIMIT_SERVICES:
	case -ERR_LIMIT_CLUSTERS:
	case -ERR_LIMIT_TIMINGS:
		return 503;
	case -ERR_NOT_FOUND:
		return 404;
	default:
		return 400;
	}
}

/* ---- names ---- */

/* Nacos 2.x's rule for cluster names: [0-9a-zA-Z-_]+ (so '@' stays ours). */
static bool cluster_name_ok(struct store_str c)
{
	if (c.len == 0 || c.len > 64)
		return false;
	for (uint32_t i = 0; i < c.len; i++) {
		char ch = c.p[i];

		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_'))
			return false;
	}
	return true;
}

/*
 * The service key of a request: namespaceId, serviceName (or dom) with its
 * group. 0, or -1 after answering 400.
 */
static int svc_of_or(struct nctx *x, struct store_svc_key *sk, struct store_str fallback)
{
	struct store_str name, group;
	const char *at;

	if (!param(x, "namespaceId", &sk->ns))
		sk->ns = str_of(DEFAULT_NS);
	if (!param(x, "serviceName", &name) && !param(x, "dom", &name))
		name = fallback;
	if (name.p == NULL || name.len == 0) {
		nacos_reply_text(x, 400, "Param 'serviceName' is required.");
		return -1;
	}
	at = memmem(name.p, name.len, "@@", 2);
	if (at) {
		group.p = name.p;
		group.len = (uint32_t)(at - name.p);
		name.p = at + 2;
		name.len = (uint32_t)(name.len - group.len - 2);
		if (group.len == 0 || name.len == 0 || memmem(name.p, name.len, "@@", 2)) {
			nacos_reply_text(x, 400,
			                 "Param 'serviceName' is illegal, it should be format as "
			                 "'groupName@@serviceName'");
			return -1;
		}
	} else if (!param(x, "groupName", &group)) {
		group = str_of(DEFAULT_GROUP);
	}
	sk->group = group;
	sk->service = name;
	return 0;
}

static int svc_of(struct nctx *x, struct store_svc_key *sk)
{
	return svc_of_or(x, sk, (struct store_str){ NULL, 0 });
}

/* "G@@s" of a service key, into b. */
static bool put_grouped(struct buf *b, const struct store_svc_key *sk)
{
	char tmp[600];
	int n = snprintf(tmp, sizeof(tmp), "%.*s@@%.*s", (int)sk->group.len, sk->group.p,
	                 (int)sk->service.len, sk->service.p);

	return n > 0 && (size_t)n < sizeof(tmp) && json_put_str(b, tmp, (size_t)n, NACOS_BODY_MAX);
}

/* ---- instance keys and values from parameters ---- */

/* ip (required) and port (required), into a. 0 or -1 after answering. */
static int addr_of(struct nctx *x, struct store_str ip, int64_t port, struct addr *a)
{
	char tmp[64];

	if (ip.p == NULL || ip.len == 0) {
		nacos_reply_text(x, 400, "Param 'ip' is required.");
		return -1;
	}
	if (port < 0) {
		nacos_reply_text(x, 400, "Param 'port' is required.");
		return -1;
	}
	if (ip.len >= sizeof(tmp) || port < 1 || port > 65535) {
		nacos_reply_text(x, 400, "instance format invalid: bad ip or port");
		return -1;
	}
	memcpy(tmp, ip.p, ip.len);
	tmp[ip.len] = '\0';
	if (addr_parse(tmp, (uint16_t)port, a) < 0) {
		reply_400(x, "instance format invalid: bad ip '%s'", tmp);
		return -1;
	}
	return 0;
}

static int port_param(struct nctx *x, int64_t *port)
{
	int err = 0;

	*port = form_get_int(&x->form, "port", -1, -1, 65535, &err);
	if (err) {
		nacos_reply_text(x, 400, "Param 'port' is not a port number.");
		return -1;
	}
	return 0;
}

/* clusterName (or cluster), default DEFAULT. 0 or -1 after answering. */
static int cluster_of(struct nctx *x, struct store_str *c)
{
	if (!param(x, "clusterName", c) && !param(x, "cluster", c))
		*c = str_of(DEFAULT_CLUSTER);
	if (!cluster_name_ok(*c)) {
		nacos_reply_text(x, 400,
		                 "Param 'clusterName' is illegal, it should match [0-9a-zA-Z-_]+");
		return -1;
	}
	return 0;
}

/* The instance key of a request (no beat). 0 or -1 after answering. */
static int key_of(struct nctx *x, struct store_key *k)
{
	struct store_str ip = { 0 };
	int64_t port;

	if (svc_of(x, &k->svc) < 0 || cluster_of(x, &k->cluster) < 0 || port_param(x, &port) < 0)
		return -1;
	(void)param(x, "ip", &ip);
	return addr_of(x, ip, port, &k->addr);
}

static uint32_t meta_u32(const struct store_kv *kv, uint32_t n, const char *key)
{
	for (uint32_t i = 0; i < n; i++)
		if (str_eq(kv[i].key, key)) {
			char tmp[16];
			uint32_t len = kv[i].val.len < 15 ? kv[i].val.len : 15;
			long v;

			memcpy(tmp, kv[i].val.p, len);
			tmp[len] = '\0';
			v = strtol(tmp, NULL, 10);
			return v > 0 && v < 86400000 ? (uint32_t)v : 0;
		}
	return 0;
}

/* Heartbeat timing from the preserved.* metadata keys (0: the store's default). */
static void timing_of(struct store_val *v)
{
	v->timing.interval_ms = meta_u32(v->meta, v->meta_n, META_INTERVAL);
	v->timing.timeout_ms = meta_u32(v->meta, v->meta_n, META_TIMEOUT);
	v->timing.delete_ms = meta_u32(v->meta, v->meta_n, META_DELETE);
}

/* metadata parameter into v. 0 or -1 after answering. */
static int meta_of(struct nctx *x, struct store_val *v, bool *given)
{
	struct nacos_worker *nw = x->w->nacos;
	struct store_str m;
	int n;

	*given = param(x, "metadata", &m);
	if (!*given)
		return 0;
	n = json_parse_meta(m.p, m.len, nw->kv, NACOS_KV_MAX, nw->meta_buf, nw->meta_cap);
	if (n < 0) {
		reply_400(x, "metadata format incorrect:%s",
		          n == -ERR_INVAL ? " not a JSON object of strings" : " too large");
		return -1;
	}
	v->meta = nw->kv;
	v->meta_n = (uint32_t)n;
	return 0;
}

static int weight_of(struct nctx *x, double dflt, uint32_t *milli)
{
	int err = 0;
	double w = form_get_double(&x->form, "weight", dflt, &err);

	if (err || !(w >= 0.0 && w <= STORE_WEIGHT_MAX)) {
		nacos_reply_text(x, 400,
		                 "instance format invalid: The weights range from 0.0 to 10000.0");
		return -1;
	}
	*milli = (uint32_t)llround(w * STORE_WEIGHT_SCALE);
	return 0;
}

/* The full value of POST/PUT /instance. 0 or -1 after answering. */
static int val_of(struct nctx *x, struct store_val *v)
{
	struct store_str s;
	bool given;
	int err = 0;

	store_val_default(v);
	if (weight_of(x, 1.0, &v->weight_milli) < 0)
		return -1;
	v->healthy = form_get_bool(&x->form, "healthy", true, &err);
	v->enabled = param(x, "enabled", &s) ? form_get_bool(&x->form, "enabled", true, &err)
	                                     : form_get_bool(&x->form, "enable", true, &err);
	v->ephemeral = form_get_bool(&x->form, "ephemeral", true, &err);
	if (err) {
		nacos_reply_text(x, 400,
		                 "Param 'healthy', 'enabled' or 'ephemeral' is not a boolean.");
		return -1;
	}
	if (meta_of(x, v, &given) < 0)
		return -1;
	timing_of(v);
	return 0;
}

/* ---- JSON of instances ---- */

static double weight_double(uint32_t milli)
{
	return (double)milli / STORE_WEIGHT_SCALE;
}

static bool put_meta_of(struct buf *b, const struct store_meta *m)
{
	struct store_kv kv[NACOS_KV_MAX];
	uint32_t n = m ? store_meta_count(m) : 0;

	if (n > NACOS_KV_MAX)
		n = NACOS_KV_MAX;
	for (uint32_t i = 0; i < n; i++)
		kv[i] = store_meta_at(m, i);
	return json_put_meta(b, kv, n, NACOS_BODY_MAX);
}

static bool put_instance_id(struct buf *b, const struct store_view *v, const char *ip)
{
	char tmp[1024];
	int n = snprintf(tmp, sizeof(tmp), "%s#%u#%.*s#%.*s@@%.*s", ip, v->addr.port,
	                 (int)v->cluster.len, v->cluster.p, (int)v->group.len, v->group.p,
	                 (int)v->service.len, v->service.p);

	return n > 0 && (size_t)n < sizeof(tmp) && json_put_str(b, tmp, (size_t)n, NACOS_BODY_MAX);
}

/* One host of a list answer: every field Nacos 1.x and 2.x clients read. */
static bool put_host(struct buf *b, const struct store_view *v, bool as_healthy)
{
	const struct store_svc_key sk = { v->ns, v->group, v->service };
	bool healthy = as_healthy || (v->flags & STORE_F_HEALTHY);
	char ip[64];
	bool ok;

	addr_format(&v->addr, ip, sizeof(ip));
	ok = put(b, "{\"instanceId\":") && put_instance_id(b, v, ip) && put(b, ",\"ip\":") &&
	     json_put_str(b, ip, strlen(ip), NACOS_BODY_MAX) && put(b, ",\"port\":") &&
	     json_put_u64(b, v->addr.port, NACOS_BODY_MAX) && put(b, ",\"weight\":") &&
	     json_put_double(b, weight_double(v->weight_milli), NACOS_BODY_MAX) &&
	     put(b, ",\"healthy\":") && json_put_bool(b, healthy, NACOS_BODY_MAX) &&
	     put(b, ",\"enabled\":") &&
	     json_put_bool(b, v->flags & STORE_F_ENABLED, NACOS_BODY_MAX) &&
	     put(b, ",\"ephemeral\":") &&
	     json_put_bool(b, v->flags & STORE_F_EPHEMERAL, NACOS_BODY_MAX) &&
	     put(b, ",\"clusterName\":") && put_str(b, v->cluster) && put(b, ",\"serviceName\":") &&
	     put_grouped(b, &sk) && put(b, ",\"metadata\":") && put_meta_of(b, v->meta) &&
	     put(b, ",\"valid\":") && json_put_bool(b, healthy, NACOS_BODY_MAX) &&
	     put(b, ",\"marked\":false,\"instanceHeartBeatInterval\":") &&
	     json_put_u64(b, v->timing.interval_ms, NACOS_BODY_MAX) &&
	     put(b, ",\"instanceHeartBeatTimeOut\":") &&
	     json_put_u64(b, v->timing.timeout_ms, NACOS_BODY_MAX) &&
	     put(b, ",\"ipDeleteTimeout\":") &&
	     json_put_u64(b, v->timing.delete_ms, NACOS_BODY_MAX) &&
	     put(b, ",\"instanceIdGenerator\":\"simple\"}");
	return ok;
}

/* ---- lists ---- */

/* Grows the worker's views to hold n (bounded by the per-service limit). */
static bool views_grow(struct worker *w, uint32_t n)
{
	uint32_t max = w->srv->cfg.store.limits.service_instances_max;
	struct store_view *v;

	if (n > max)
		n = max;
	if (n <= w->views_cap)
		return false;
	v = mem_alloc(sizeof(v[0]) * n);
	if (v == NULL)
		return false;
	mem_free(w->views);
	w->views = v;
	w->views_cap = n;
	return true;
}

/*
 * The answer of GET /instance/list, the union of the 1.x and 2.x shapes:
 * grouped name and dom, clusters echoed byte for byte (the client files
 * the answer under name@@clusters), hosts with every field clients read.
 * Inside the caller's epoch section.
 */
int nacos_render_list(struct worker *w, const struct store_svc_key *sk, struct store_str clusters,
                      bool healthy_only, struct buf *b)
{
	struct store_str names[16];
	struct store_filter f = { .enabled_only = true, .healthy_only = healthy_only };
	struct store_list_info info;
	char sum[24];
	int n;
	bool ok;

	/* clusters: "a,b,c"; empty pieces ignored */
	for (uint32_t i = 0, start = 0; i <= clusters.len && f.clusters_n < 16; i++)
		if (i == clusters.len || clusters.p[i] == ',') {
			if (i > start)
				names[f.clusters_n++] =
				        (struct store_str){ clusters.p + start, i - start };
			start = i + 1;
		}
	f.clusters = names;
	for (;;) {
		n = store_list(w->srv->store, sk, &f, w->views, w->views_cap, &info);
		if (n < 0)
			return n;
		if (info.total <= (uint32_t)n || !views_grow(w, info.total))
			break;
	}
	snprintf(sum, sizeof(sum), "%llx", (unsigned long long)info.revision);
	ok = put(b, "{\"name\":") && put_grouped(b, sk) && put(b, ",\"groupName\":") &&
	     put_str(b, sk->group) && put(b, ",\"clusters\":") && put_str(b, clusters) &&
	     put(b, ",\"cacheMillis\":") && json_put_u64(b, CACHE_MILLIS, NACOS_BODY_MAX) &&
	     put(b, ",\"lastRefTime\":") && json_put_i64(b, clock_wall_ms(NULL), NACOS_BODY_MAX) &&
	     put(b, ",\"checksum\":") && json_put_str(b, sum, strlen(sum), NACOS_BODY_MAX) &&
	     put(b, ",\"allIPs\":false,\"reachProtectionThreshold\":false,\"valid\":true,"
	            "\"useSpecifiedURL\":false,\"env\":\"\",\"metadata\":{},\"dom\":") &&
	     put_grouped(b, sk) && put(b, ",\"hosts\":[");
	for (int i = 0; i < n && ok; i++)
		ok = (i == 0 || put(b, ",")) && put_host(b, &w->views[i], false);
	ok = ok && put(b, "]}");
	return ok ? 0 : -ERR_NOMEM;
}

static void instance_list(struct nctx *x)
{
	struct store_svc_key sk;
	struct store_str clusters = { "", 0 };
	struct buf *b;
	bool healthy_only;
	int64_t udp_port;
	int err = 0, rc;

	if (svc_of(x, &sk) < 0)
		return;
	(void)form_get(&x->form, "clusters", &clusters);
	healthy_only = form_get_bool(&x->form, "healthyOnly", false, &err);
	udp_port = form_get_int(&x->form, "udpPort", 0, 0, 65535, &err);
	if (err) {
		nacos_reply_text(x, 400, "Param 'healthyOnly' or 'udpPort' is invalid.");
		return;
	}
	b = body(x);
	epoch_enter(x->w->rec);
	rc = nacos_render_list(x->w, &sk, clusters, healthy_only, b);
	epoch_exit(x->w->rec);
	if (rc == -ERR_NOMEM) {
		nacos_reply_text(x, 500, "answer larger than the server's bound");
		return;
	}
	if (rc < 0) {
		nacos_reply_text(x, 400, err_str(rc));
		return;
	}
	/* udpPort: this poll subscribes (or keeps subscribed) its sender to UDP pushes. */
	if (udp_port > 0)
		nacos_push_subscribe(x, &sk, clusters, healthy_only, (uint16_t)udp_port);
	nacos_reply_json(x, b);
}

/* ---- instance writes ---- */

static void instance_register(struct nctx *x, bool update)
{
	struct store_key k;
	struct store_val v;

	if (key_of(x, &k) < 0 || val_of(x, &v) < 0)
		return;
	if (update) {
		uint64_t rev;

		epoch_enter(x->w->rec);
		rev = store_revision(x->w->srv->store, &k.svc);
		epoch_exit(x->w->rec);
		if (rev == 0) {
			char msg[700];

			snprintf(msg, sizeof(msg),
			         "service not found, namespace: %.*s, service: %.*s@@%.*s",
			         (int)k.svc.ns.len, k.svc.ns.p, (int)k.svc.group.len, k.svc.group.p,
			         (int)k.svc.service.len, k.svc.service.p);
			nacos_reply_text(x, 400, msg);
			return;
		}
	}
	nacos_write(x, OP_REGISTER, nw_tag(NW_REGISTER, 0), &k, &v);
}

static void instance_deregister(struct nctx *x)
{
	struct store_key k;

	if (key_of(x, &k) < 0)
		return;
	nacos_write(x, OP_DEREGISTER, nw_tag(NW_DEREGISTER, 0), &k, NULL);
}

/* Copies a live instance's value (metadata strings into the worker's scratch). Inside the epoch. */
static void val_from_view(struct worker *w, const struct store_view *sv, struct store_val *v)
{
	struct nacos_worker *nw = w->nacos;
	uint32_t n = sv->meta ? store_meta_count(sv->meta) : 0;
	size_t used = 0;

	store_val_default(v);
	v->weight_milli = sv->weight_milli;
	v->healthy = sv->flags & STORE_F_HEALTHY;
	v->enabled = sv->flags & STORE_F_ENABLED;
	v->ephemeral = sv->flags & STORE_F_EPHEMERAL;
	v->timing = sv->timing;
	if (n > NACOS_KV_MAX)
		n = NACOS_KV_MAX;
	for (uint32_t i = 0; i < n; i++) {
		struct store_kv kv = store_meta_at(sv->meta, i);

		if (used + kv.key.len + kv.val.len > nw->meta_cap)
			break;
		memcpy(nw->meta_buf + used, kv.key.p, kv.key.len);
		nw->kv[i].key = (struct store_str){ nw->meta_buf + used, kv.key.len };
		used += kv.key.len;
		memcpy(nw->meta_buf + used, kv.val.p, kv.val.len);
		nw->kv[i].val = (struct store_str){ nw->meta_buf + used, kv.val.len };
		used += kv.val.len;
		v->meta_n = i + 1;
	}
	v->meta = nw->kv;
}

/* PATCH /instance: the given fields over the instance as this node has it. */
static void instance_patch(struct nctx *x)
{
	struct store_key k;
	struct store_view sv;
	struct store_val v;
	struct store_str s;
	bool given;
	int err = 0, rc;

	if (key_of(x, &k) < 0)
		return;
	epoch_enter(x->w->rec);
	rc = store_get(x->w->srv->store, &k, &sv);
	if (rc == 0)
		val_from_view(x->w, &sv, &v);
	epoch_exit(x->w->rec);
	if (rc < 0) {
		nacos_reply_text(x, 404, "instance not found");
		return;
	}
	if (param(x, "weight", &s) && weight_of(x, 1.0, &v.weight_milli) < 0)
		return;
	v.healthy = form_get_bool(&x->form, "healthy", v.healthy, &err);
	v.enabled = form_get_bool(&x->form, "enabled", v.enabled, &err);
	if (err) {
		nacos_reply_text(x, 400, "Param 'healthy' or 'enabled' is not a boolean.");
		return;
	}
	if (meta_of(x, &v, &given) < 0)
		return;
	if (given)
		timing_of(&v);
	nacos_write(x, OP_REGISTER, nw_tag(NW_REGISTER, 0), &k, &v);
}

/* GET /instance */
static void instance_detail(struct nctx *x)
{
	struct store_key k;
	struct store_view sv;
	struct buf *b = body(x);
	char ip[64];
	bool ok;
	int rc;

	if (key_of(x, &k) < 0)
		return;
	epoch_enter(x->w->rec);
	rc = store_get(x->w->srv->store, &k, &sv);
	ok = rc == 0;
	if (ok) {
		addr_format(&sv.addr, ip, sizeof(ip));
		ok = put(b, "{\"service\":") && put_grouped(b, &k.svc) && put(b, ",\"ip\":") &&
		     json_put_str(b, ip, strlen(ip), NACOS_BODY_MAX) && put(b, ",\"port\":") &&
		     json_put_u64(b, sv.addr.port, NACOS_BODY_MAX) && put(b, ",\"clusterName\":") &&
		     put_str(b, sv.cluster) && put(b, ",\"weight\":") &&
		     json_put_double(b, weight_double(sv.weight_milli), NACOS_BODY_MAX) &&
		     put(b, ",\"healthy\":") &&
		     json_put_bool(b, sv.flags & STORE_F_HEALTHY, NACOS_BODY_MAX) &&
		     put(b, ",\"enabled\":") &&
		     json_put_bool(b, sv.flags & STORE_F_ENABLED, NACOS_BODY_MAX) &&
		     put(b, ",\"ephemeral\":") &&
		     json_put_bool(b, sv.flags & STORE_F_EPHEMERAL, NACOS_BODY_MAX) &&
		     put(b, ",\"instanceId\":") && put_instance_id(b, &sv, ip) &&
		     put(b, ",\"metadata\":") && put_meta_of(b, sv.meta) && put(b, "}");
	}
	epoch_exit(x->w->rec);
	if (rc < 0)
		nacos_reply_text(x, 404, "no matched ip found!");
	else
		reply_json_or_500(x, b, ok);
}

/*
 * PUT /instance/beat. With a beat body the instance is renewed, or
 * re-created from the body when this cluster lost it (a client's beats
 * heal any loss). Without one, an instance this node does not know is
 * answered code 20404 (Java 1.x clients then register again).
 */
static void instance_beat(struct nctx *x)
{
	struct nacos_worker *nw = x->w->nacos;
	struct json_beat beat;
	struct store_key k;
	struct store_val v;
	struct store_str s, ip = { 0 };
	int64_t port;
	uint32_t interval;
	int rc;

	memset(&beat, 0, sizeof(beat));
	beat.port = -1;
	if (param(x, "beat", &s)) {
		rc = json_parse_beat(s.p, s.len, &beat, nw->kv, NACOS_KV_MAX, nw->meta_buf,
		                     nw->meta_cap);
		if (rc < 0) {
			nacos_reply_text(x, 400, "Param 'beat' is not a beat JSON object.");
			return;
		}
	} else {
		s.p = NULL;
	}
	/* The serviceName parameter names the service; the beat's only without one (Nacos #12161).
	 */
	if (svc_of_or(x, &k.svc, beat.service) < 0)
		return;
	if (port_param(x, &port) < 0)
		return;
	(void)param(x, "ip", &ip);
	if (beat.ip.p && beat.ip.len)
		ip = beat.ip;
	if (beat.port > 0)
		port = beat.port;
	if (cluster_of(x, &k.cluster) < 0)
		return;
	if (beat.cluster.p && beat.cluster.len) {
		if (!cluster_name_ok(beat.cluster)) {
			nacos_reply_text(x, 400,
			                 "beat cluster is illegal, it should match "
			                 "[0-9a-zA-Z-_]+");
			return;
		}
		k.cluster = beat.cluster;
	}
	if (addr_of(x, ip, port, &k.addr) < 0)
		return;
	if (s.p) {
		store_val_default(&v);
		if (beat.weight >= 0) {
			if (!(beat.weight <= STORE_WEIGHT_MAX)) {
				nacos_reply_text(x, 400,
				                 "instance format invalid: The weights range "
				                 "from 0.0 to 10000.0");
				return;
			}
			v.weight_milli = (uint32_t)llround(beat.weight * STORE_WEIGHT_SCALE);
		}
		if (beat.ephemeral >= 0)
			v.ephemeral = beat.ephemeral;
		if (beat.has_meta) {
			v.meta = beat.meta;
			v.meta_n = beat.meta_n;
		}
		timing_of(&v);
	} else {
		struct store_view sv;

		epoch_enter(x->w->rec);
		rc = store_get(x->w->srv->store, &k, &sv);
		if (rc == 0)
			val_from_view(x->w, &sv, &v);
		epoch_exit(x->w->rec);
		if (rc < 0) {
			static const char unknown[] =
			        "{\"clientBeatInterval\":5000,\"code\":20404}";

			nacos_reply(x, 200, JSON_CT, unknown, sizeof(unknown) - 1);
			return;
		}
	}
	interval = v.timing.interval_ms ? v.timing.interval_ms : BEAT_INTERVAL_MS;
	nacos_write(x, OP_HEARTBEAT, nw_tag(NW_BEAT, interval), &k, &v);
}

/* The answer of a write that has run (nacos.c calls it with the item's result). */
int nacos_write_answer(uint32_t tag, int result, struct buf *b, uint16_t *status,
                       const char **ctype)
{
	enum nacos_write_kind kind = (enum nacos_write_kind)(tag >> 24);
	const char *msg;

	if (kind == NW_DEREGISTER && result == -ERR_NOT_FOUND)
		result = 0; /* Nacos answers ok for an absent instance */
	if (result < 0) {
		msg = err_str(result);
		*status = status_of(result);
		*ctype = "text/plain;charset=UTF-8";
		return json_put_raw(b, msg, strlen(msg), NACOS_BODY_MAX) ? 0 : -ERR_NOMEM;
	}
	*status = 200;
	if (kind == NW_BEAT) {
		char tmp[96];
		int n = snprintf(
		        tmp, sizeof(tmp),
		        "{\"clientBeatInterval\":%u,\"code\":10200,\"lightBeatEnabled\":false}",
		        tag & 0xffffffu);

		*ctype = JSON_CT;
		return json_put_raw(b, tmp, (size_t)n, NACOS_BODY_MAX) ? 0 : -ERR_NOMEM;
	}
	*ctype = "text/plain;charset=UTF-8";
	return json_put_raw(b, "ok", 2, NACOS_BODY_MAX) ? 0 : -ERR_NOMEM;
}

/* ---- statuses, services ---- */

/* GET /instance/statuses?key=[ns##]G@@s: {"ips":["ip:port_healthy",...]} */
static void instance_statuses(struct nctx *x)
{
	struct store_str key, name;
	struct store_svc_key sk;
	struct store_list_info info;
	struct buf *b = body(x);
	const char *at;
	bool ok;
	int n;

	if (!param(x, "key", &key)) {
		nacos_reply_text(x, 400, "Param 'key' is required.");
		return;
	}
	sk.ns = str_of(DEFAULT_NS);
	at = memmem(key.p, key.len, "##", 2);
	if (at) {
		sk.ns = (struct store_str){ key.p, (uint32_t)(at - key.p) };
		key.p = at + 2;
		key.len -= sk.ns.len + 2;
	}
	at = memmem(key.p, key.len, "@@", 2);
	if (at == NULL) {
		nacos_reply_text(
		        x, 400, "Param 'key' is illegal, it should be [namespace##]group@@service");
		return;
	}
	sk.group = (struct store_str){ key.p, (uint32_t)(at - key.p) };
	name = (struct store_str){ at + 2, (uint32_t)(key.len - sk.group.len - 2) };
	sk.service = name;
	epoch_enter(x->w->rec);
	for (;;) { /* as nacos_render_list: the worker's scratch grows to the service */
		n = store_list(x->w->srv->store, &sk, NULL, x->w->views, x->w->views_cap, &info);
		if (n < 0 || info.total <= (uint32_t)n || !views_grow(x->w, info.total))
			break;
	}
	ok = n >= 0 && put(b, "{\"ips\":[");
	for (int i = 0; i < n && ok; i++) {
		const struct store_view *v = &x->w->views[i];
		char ip[64], tmp[96];
		int len;

		addr_format(&v->addr, ip, sizeof(ip));
		len = snprintf(tmp, sizeof(tmp), "%s:%u_%s", ip, v->addr.port,
		               (v->flags & STORE_F_HEALTHY) ? "true" : "false");
		ok = (i == 0 || put(b, ",")) && json_put_str(b, tmp, (size_t)len, NACOS_BODY_MAX);
	}
	ok = ok && put(b, "]}");
	epoch_exit(x->w->rec);
	if (n < 0)
		nacos_reply_text(x, 400, err_str(n));
	else if (info.revision == 0)
		nacos_reply_text(x, 404, "service not found");
	else
		reply_json_or_500(x, b, ok);
}

struct svc_page {
	struct buf *b;
	int64_t skip, take; /* services to pass over, then to write */
	uint64_t count;     /* every match */
	bool ok;
	bool grouped; /* write "G@@s" rather than "s" */
};

static bool page_one(void *ctx, const struct store_svc_view *v)
{
	struct svc_page *pg = ctx;

	if (pg->count >= (uint64_t)pg->skip && pg->count < (uint64_t)(pg->skip + pg->take) &&
	    pg->ok) {
		const struct store_svc_key sk = { v->ns, v->group, v->service };

		pg->ok = (pg->count == (uint64_t)pg->skip || put(pg->b, ",")) &&
		         (pg->grouped ? put_grouped(pg->b, &sk) : put_str(pg->b, v->service));
	}
	pg->count++;
	return true;
}

/*
 * GET /service/list?pageNo&pageSize: {"count":total,"doms":[names of the page]}.
 * The order is the store's (stable while the set of services is).
 */
static void service_list(struct nctx *x)
{
	struct store_str ns, group;
	struct svc_page pg = { .b = body(x), .ok = true };
	int err = 0;
	int64_t page_no, page_size;
	char count[24];

	page_no = form_get_int(&x->form, "pageNo", 1, INT32_MIN, INT32_MAX, &err);
	page_size = form_get_int(&x->form, "pageSize", 10, 0, 100000, &err);
	if (err) {
		nacos_reply_text(x, 400, "Param 'pageNo' or 'pageSize' is invalid.");
		return;
	}
	if (page_no < 1)
		page_no = 1;
	if (!param(x, "namespaceId", &ns))
		ns = str_of(DEFAULT_NS);
	if (!param(x, "groupName", &group))
		group = str_of(DEFAULT_GROUP);
	pg.skip = (page_no - 1) * page_size;
	pg.take = page_size;
	/* count first: write the names into the body after the head */
	pg.ok = put(pg.b, "{\"doms\":[");
	epoch_enter(x->w->rec);
	store_services(x->w->srv->store, ns, str_eq(group, "*") ? NULL : &group, page_one, &pg);
	epoch_exit(x->w->rec);
	snprintf(count, sizeof(count), "%llu", (unsigned long long)pg.count);
	pg.ok = pg.ok && put(pg.b, "],\"count\":") && put(pg.b, count) && put(pg.b, "}");
	reply_json_or_500(x, pg.b, pg.ok);
}

struct svc_names {
	struct buf *b;
	struct store_str group; /* p NULL: all */
	uint64_t count;
	bool ok;
};

static bool names_one(void *ctx, const struct store_svc_view *v)
{
	struct svc_names *sn = ctx;
	const struct store_svc_key sk = { v->ns, v->group, v->service };

	sn->ok = sn->ok && (sn->count == 0 || put(sn->b, ",")) && put_grouped(sn->b, &sk);
	sn->count++;
	return sn->ok;
}

/* GET /service/names?namespaceId: {"services":{"ns":["G@@s",...]},"count":n} */
static void service_names(struct nctx *x)
{
	struct store_str ns;
	struct svc_names sn = { .b = body(x), .ok = true };
	char count[24];

	if (!param(x, "namespaceId", &ns))
		ns = str_of(DEFAULT_NS);
	sn.ok = put(sn.b, "{\"services\":{") && put_str(sn.b, ns) && put(sn.b, ":[");
	epoch_enter(x->w->rec);
	store_services(x->w->srv->store, ns, NULL, names_one, &sn);
	epoch_exit(x->w->rec);
	snprintf(count, sizeof(count), "%llu", (unsigned long long)sn.count);
	sn.ok = sn.ok && put(sn.b, "]},\"count\":") && put(sn.b, count) && put(sn.b, "}");
	reply_json_or_500(x, sn.b, sn.ok);
}

/* ---- operator and health ---- */

static void operator_metrics(struct nctx *x)
{
	struct store_stats st;
	struct buf *b = body(x);
	char tmp[256];
	int n;

	store_stats(x->w->srv->store, &st);
	n = snprintf(tmp, sizeof(tmp),
	             "{\"status\":\"UP\",\"serviceCount\":%llu,\"instanceCount\":%llu,"
	             "\"responsibleServiceCount\":%llu,\"responsibleInstanceCount\":%llu}",
	             (unsigned long long)st.services, (unsigned long long)st.instances,
	             (unsigned long long)st.services, (unsigned long long)st.instances);
	reply_json_or_500(x, b, json_put_raw(b, tmp, (size_t)n, NACOS_BODY_MAX));
}

static void operator_switches(struct nctx *x)
{
	static const char sw[] =
	        "{\"name\":\"00-00---000-NACOS_SWITCH_DOMAIN-000---00-00\",\"masters\":null,"
	        "\"adWeightMap\":{},\"defaultPushCacheMillis\":10000,\"clientBeatInterval\":5000,"
	        "\"defaultCacheMillis\":3000,\"distroThreshold\":0.7,\"healthCheckEnabled\":false,"
	        "\"autoChangeHealthCheckEnabled\":false,\"distroEnabled\":true,"
	        "\"enableStandalone\":true,\"pushEnabled\":true,\"checkTimes\":3,"
	        "\"httpHealthParams\":{\"max\":5000,\"min\":500,\"factor\":0.85},"
	        "\"tcpHealthParams\":{\"max\":5000,\"min\":1000,\"factor\":0.75},"
	        "\"mysqlHealthParams\":{\"max\":3000,\"min\":2000,\"factor\":0.65},"
	        "\"incrementalList\":[],\"serverStatusSynchronizationPeriodMillis\":2000,"
	        "\"serviceStatusSynchronizationPeriodMillis\":5000,\"disableAddIP\":false,"
	        "\"sendBeatOnly\":false,\"lightBeatEnabled\":false,\"limitedUrlMap\":{},"
	        "\"distroServerExpiredMillis\":10000,\"pushGoVersion\":\"0.1.0\","
	        "\"pushJavaVersion\":\"0.1.0\",\"pushPythonVersion\":\"0.4.3\","
	        "\"pushCVersion\":\"1.0.12\",\"pushCSharpVersion\":\"0.9.0\","
	        "\"enableAuthentication\":false,\"overriddenServerStatus\":null,"
	        "\"defaultInstanceEphemeral\":true,\"healthCheckWhiteList\":[],"
	        "\"checksum\":null}";

	if (x->h->method == H1_PUT) {
		/* Every switch is fixed in distrod (docs/nacos.md): accepted, not applied. */
		struct store_str entry;

		if (!param(x, "entry", &entry)) {
			nacos_reply_text(x, 400, "Param 'entry' is required.");
			return;
		}
		nacos_reply_text(x, 200, "ok");
		return;
	}
	nacos_reply(x, 200, JSON_CT, sw, sizeof(sw) - 1);
}

static void operator_servers(struct nctx *x)
{
	struct buf *b = body(x);
	struct peer *p = x->w->srv->peer;
	struct peer_status st;
	bool ok = put(b, "{\"servers\":[");

	if (p == NULL) {
		char tmp[160];
		int n = snprintf(
		        tmp, sizeof(tmp),
		        "{\"ip\":\"%s\",\"port\":%u,\"state\":\"UP\",\"address\":\"%s:%u\"}",
		        x->w->srv->cfg.bind, x->w->srv->nacos_port, x->w->srv->cfg.bind,
		        x->w->srv->nacos_port);

		ok = ok && json_put_raw(b, tmp, (size_t)n, NACOS_BODY_MAX);
	} else {
		peer_status_read(p, &st);
		for (uint32_t i = 0; i < st.n && ok; i++) {
			const struct peer_member_status *m = &st.m[i];
			char tmp[256];
			int n = snprintf(tmp, sizeof(tmp),
			                 "%s{\"address\":\"%s\",\"state\":\"%s\",\"self\":%s,"
			                 "\"ready\":%s,\"nodeId\":%u}",
			                 i ? "," : "", m->addr,
			                 m->self || m->health == PEER_UP ? "UP" : "DOWN",
			                 m->self ? "true" : "false", m->ready ? "true" : "false",
			                 m->id);

			ok = n > 0 && (size_t)n < sizeof(tmp) &&
			     json_put_raw(b, tmp, (size_t)n, NACOS_BODY_MAX);
		}
	}
	ok = ok && put(b, "]}");
	reply_json_or_500(x, b, ok);
}

static void health_server(struct nctx *x)
{
	static const char hello[] =
	        "{\"msg\":\"Hello! I am Nacos-Naming and healthy! total services: raft 0, local "
	        "port:8848\"}";

	nacos_reply(x, 200, JSON_CT, hello, sizeof(hello) - 1);
}

/* PUT /health/instance: sets an instance's healthy flag (valid is the old name). */
static void health_instance(struct nctx *x)
{
	struct store_key k;
	struct store_view sv;
	struct store_val v;
	struct store_str s;
	int err = 0, rc;
	bool healthy;

	if (key_of(x, &k) < 0)
		return;
	if (!param(x, "healthy", &s) && !param(x, "valid", &s)) {
		nacos_reply_text(x, 400, "Param 'healthy' is required.");
		return;
	}
	healthy = param(x, "healthy", &s) ? form_get_bool(&x->form, "healthy", true, &err)
	                                  : form_get_bool(&x->form, "valid", true, &err);
	if (err) {
		nacos_reply_text(x, 400, "Param 'healthy' is not a boolean.");
		return;
	}
	epoch_enter(x->w->rec);
	rc = store_get(x->w->srv->store, &k, &sv);
	if (rc == 0)
		val_from_view(x->w, &sv, &v);
	epoch_exit(x->w->rec);
	if (rc < 0) {
		nacos_reply_text(x, 400, "instance not found");
		return;
	}
	v.healthy = healthy;
	nacos_write(x, OP_REGISTER, nw_tag(NW_REGISTER, 0), &k, &v);
}

/* ---- routing ---- */

struct route {
	const char *path; /* after /nacos */
	uint8_t method;   /* enum h1_method; H1_OTHER: any */
	void (*fn)(struct nctx *x);
};

static void instance_register_new(struct nctx *x)
{
	instance_register(x, false);
}

static void instance_update(struct nctx *x)
{
	instance_register(x, true);
}

static const struct route routes[] = {
	{ "/v1/ns/instance", H1_POST, instance_register_new },
	{ "/v1/ns/instance", H1_DELETE, instance_deregister },
	{ "/v1/ns/instance", H1_PUT, instance_update },
	{ "/v1/ns/instance", H1_PATCH, instance_patch },
	{ "/v1/ns/instance", H1_GET, instance_detail },
	{ "/v1/ns/instance/beat", H1_PUT, instance_beat },
	{ "/v1/ns/instance/list", H1_GET, instance_list },
	{ "/v1/ns/instance/statuses", H1_GET, instance_statuses },
	{ "/v1/ns/service/list", H1_GET, service_list },
	{ "/v1/ns/service/names", H1_GET, service_names },
	{ "/v1/ns/operator/metrics", H1_GET, operator_metrics },
	{ "/v1/ns/ops/metrics", H1_GET, operator_metrics },
	{ "/v1/ns/operator/switches", H1_GET, operator_switches },
	{ "/v1/ns/operator/switches", H1_PUT, operator_switches },
	{ "/v1/ns/operator/servers", H1_GET, operator_servers },
	{ "/v1/ns/health/server", H1_GET, health_server },
	{ "/v1/ns/health/instance", H1_PUT, health_instance },
	{ "/v1/ns/health", H1_PUT, health_instance },
};

static const char *method_name(uint8_t m)
{
	static const char *const names[] = { "OTHER", "GET",    "HEAD", "POST",
		                             "PUT",   "DELETE", "PATCH" };

	return m < sizeof(names) / sizeof(names[0]) ? names[m] : "OTHER";
}

void nacos_api_dispatch(struct nctx *x)
{
	struct store_str path = x->path;
	bool path_known = false;
	char msg[256];

	if (path.len >= 6 && memcmp(path.p, "/nacos", 6) == 0 &&
	    (path.len == 6 || path.p[6] == '/')) {
		path.p += 6;
		path.len -= 6;
		if (path.len > 1 && path.p[path.len - 1] == '/')
			path.len--; /* "/v1/ns/instance/" is "/v1/ns/instance" */
		for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
			if (!str_eq(path, routes[i].path))
				continue;
			path_known = true;
			if (routes[i].method == x->h->method ||
			    (x->h->method == H1_HEAD && routes[i].method == H1_GET)) {
				routes[i].fn(x);
				return;
			}
		}
		if (path_known) {
			snprintf(msg, sizeof(msg), "Request method '%s' not supported",
			         method_name(x->h->method));
			nacos_reply_text(x, 405, msg);
			return;
		}
		snprintf(msg, sizeof(msg), "no such api:%.*s",
		         (int)(path.len > 200 ? 200 : path.len), path.p);
		nacos_reply_text(x, 501, msg);
		return;
	}
	snprintf(msg, sizeof(msg), "no such path:%.*s",
	         (int)(x->path.len > 200 ? 200 : x->path.len), x->path.p);
	nacos_reply_text(x, 404, msg);
}
