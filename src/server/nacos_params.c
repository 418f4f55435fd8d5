/*
 * nacos_params.c - the Nacos data shapes on a worker: parameters in
 * (names, instance keys and values, as Nacos reads them) and JSON out
 * (hosts, grouped names), shared by the endpoint files.
 *
 * Parameters come from the query and from form bodies alike (nacos.c); a
 * blank parameter counts as absent, as in Nacos's WebUtils.optional.
 * Names: namespaceId defaults to "public", a serviceName "G@@s" carries
 * its group (else groupName, else NACOS_DEFAULT_GROUP); `dom` is the pre-0.8
 * name of serviceName. Every function that can refuse a request answers
 * it (400 with Nacos's message) and returns -1, so a handler just returns.
 * JSON strings go through json_put_str, which escapes everything a client
 * or a browser could misread; answers are bounded by NACOS_BODY_MAX.
 */
#include "server/nacos_internal.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "nacos/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ---- */

struct store_str nacos_str_of(const char *s)
{
	return (struct store_str){ s, (uint32_t)strlen(s) };
}

bool nacos_str_eq(struct store_str a, const char *b)
{
	size_t n = strlen(b);

	return a.len == n && memcmp(a.p, b, n) == 0;
}

/* A parameter that is present and not blank. */
bool nacos_param(struct nctx *x, const char *key, struct store_str *out)
{
	return form_get(&x->form, key, out) && out->len > 0;
}

struct buf *nacos_body(struct nctx *x)
{
	struct buf *b = &x->w->nacos->body;

	buf_clear(b);
	return b;
}

/* Appends a NUL-terminated literal; false at the bound. */
bool nacos_put(struct buf *b, const char *s)
{
	return json_put_raw(b, s, strlen(s), NACOS_BODY_MAX);
}

bool nacos_put_str(struct buf *b, struct store_str s)
{
	return json_put_str(b, s.p ? s.p : "", s.p ? s.len : 0, NACOS_BODY_MAX);
}

void nacos_reply_400(struct nctx *x, const char *fmt, const char *arg)
{
	char msg[512];

	snprintf(msg, sizeof(msg), fmt, arg);
	nacos_reply_text(x, 400, msg);
}

void nacos_reply_json_or_500(struct nctx *x, struct buf *b, bool ok)
{
	if (ok)
		nacos_reply_json(x, b);
	else
		nacos_reply_text(x, 500, "answer larger than the server's bound");
}

/* The HTTP status and text of a store or routing error. */
uint16_t nacos_status_of(int code)
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
bool nacos_cluster_name_ok(struct store_str c)
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
int nacos_svc_of_or(struct nctx *x, struct store_svc_key *sk, struct store_str fallback)
{
	struct store_str name, group;
	const char *at;

	if (!nacos_param(x, "namespaceId", &sk->ns))
		sk->ns = nacos_str_of(NACOS_DEFAULT_NS);
	if (!nacos_param(x, "serviceName", &name) && !nacos_param(x, "dom", &name))
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
	} else if (!nacos_param(x, "groupName", &group)) {
		group = nacos_str_of(NACOS_DEFAULT_GROUP);
	}
	sk->group = group;
	sk->service = name;
	return 0;
}

int nacos_svc_of(struct nctx *x, struct store_svc_key *sk)
{
	return nacos_svc_of_or(x, sk, (struct store_str){ NULL, 0 });
}

/* "G@@s" of a service key, into b. */
bool nacos_put_grouped(struct buf *b, const struct store_svc_key *sk)
{
	char tmp[600];
	int n = snprintf(tmp, sizeof(tmp), "%.*s@@%.*s", (int)sk->group.len, sk->group.p,
	                 (int)sk->service.len, sk->service.p);

	return n > 0 && (size_t)n < sizeof(tmp) && json_put_str(b, tmp, (size_t)n, NACOS_BODY_MAX);
}

/* ---- instance keys and values from parameters ---- */

/* ip (required) and port (required), into a. 0 or -1 after answering. */
int nacos_addr_of(struct nctx *x, struct store_str ip, int64_t port, struct addr *a)
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
		nacos_reply_400(x, "instance format invalid: bad ip '%s'", tmp);
		return -1;
	}
	return 0;
}

int nacos_port_param(struct nctx *x, int64_t *port)
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
int nacos_cluster_of(struct nctx *x, struct store_str *c)
{
	if (!nacos_param(x, "clusterName", c) && !nacos_param(x, "cluster", c))
		*c = nacos_str_of(NACOS_DEFAULT_CLUSTER);
	if (!nacos_cluster_name_ok(*c)) {
		nacos_reply_text(x, 400,
		                 "Param 'clusterName' is illegal, it should match [0-9a-zA-Z-_]+");
		return -1;
	}
	return 0;
}

/* The instance key of a request (no beat). 0 or -1 after answering. */
int nacos_key_of(struct nctx *x, struct store_key *k)
{
	struct store_str ip = { 0 };
	int64_t port;

	if (nacos_svc_of(x, &k->svc) < 0 || nacos_cluster_of(x, &k->cluster) < 0 ||
	    nacos_port_param(x, &port) < 0)
		return -1;
	(void)nacos_param(x, "ip", &ip);
	return nacos_addr_of(x, ip, port, &k->addr);
}

static uint32_t nacos_meta_u32(const struct store_kv *kv, uint32_t n, const char *key)
{
	for (uint32_t i = 0; i < n; i++)
		if (nacos_str_eq(kv[i].key, key)) {
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
void nacos_timing_of(struct store_val *v)
{
	v->timing.interval_ms = nacos_meta_u32(v->meta, v->meta_n, NACOS_META_INTERVAL);
	v->timing.timeout_ms = nacos_meta_u32(v->meta, v->meta_n, NACOS_META_TIMEOUT);
	v->timing.delete_ms = nacos_meta_u32(v->meta, v->meta_n, NACOS_META_DELETE);
}

/* metadata parameter into v. 0 or -1 after answering. */
int nacos_meta_of(struct nctx *x, struct store_val *v, bool *given)
{
	struct nacos_worker *nw = x->w->nacos;
	struct store_str m;
	int n;

	*given = nacos_param(x, "metadata", &m);
	if (!*given)
		return 0;
	n = json_parse_meta(m.p, m.len, nw->kv, NACOS_KV_MAX, nw->meta_buf, nw->meta_cap);
	if (n < 0) {
		nacos_reply_400(x, "metadata format incorrect:%s",
		                n == -ERR_INVAL ? " not a JSON object of strings" : " too large");
		return -1;
	}
	v->meta = nw->kv;
	v->meta_n = (uint32_t)n;
	return 0;
}

int nacos_weight_of(struct nctx *x, double dflt, uint32_t *milli)
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
int nacos_val_of(struct nctx *x, struct store_val *v)
{
	struct store_str s;
	bool given;
	int err = 0;

	store_val_default(v);
	if (nacos_weight_of(x, 1.0, &v->weight_milli) < 0)
		return -1;
	v->healthy = form_get_bool(&x->form, "healthy", true, &err);
	v->enabled = nacos_param(x, "enabled", &s) ? form_get_bool(&x->form, "enabled", true, &err)
	                                           : form_get_bool(&x->form, "enable", true, &err);
	v->ephemeral = form_get_bool(&x->form, "ephemeral", true, &err);
	if (err) {
		nacos_reply_text(x, 400,
		                 "Param 'healthy', 'enabled' or 'ephemeral' is not a boolean.");
		return -1;
	}
	if (nacos_meta_of(x, v, &given) < 0)
		return -1;
	nacos_timing_of(v);
	return 0;
}

/* ---- JSON of instances ---- */

double nacos_weight_double(uint32_t milli)
{
	return (double)milli / STORE_WEIGHT_SCALE;
}

bool nacos_put_meta_of(struct buf *b, const struct store_meta *m)
{
	struct store_kv kv[NACOS_KV_MAX];
	uint32_t n = m ? store_meta_count(m) : 0;

	if (n > NACOS_KV_MAX)
		n = NACOS_KV_MAX;
	for (uint32_t i = 0; i < n; i++)
		kv[i] = store_meta_at(m, i);
	return json_put_meta(b, kv, n, NACOS_BODY_MAX);
}

bool nacos_put_instance_id(struct buf *b, const struct store_view *v, const char *ip)
{
	char tmp[1024];
	int n = snprintf(tmp, sizeof(tmp), "%s#%u#%.*s#%.*s@@%.*s", ip, v->addr.port,
	                 (int)v->cluster.len, v->cluster.p, (int)v->group.len, v->group.p,
	                 (int)v->service.len, v->service.p);

	return n > 0 && (size_t)n < sizeof(tmp) && json_put_str(b, tmp, (size_t)n, NACOS_BODY_MAX);
}

/* One host of a list answer: every field Nacos 1.x and 2.x clients read. */
bool nacos_put_host(struct buf *b, const struct store_view *v, bool as_healthy)
{
	const struct store_svc_key sk = { v->ns, v->group, v->service };
	bool healthy = as_healthy || (v->flags & STORE_F_HEALTHY);
	char ip[64];
	bool ok;

	addr_format(&v->addr, ip, sizeof(ip));
	ok = nacos_put(b, "{\"instanceId\":") && nacos_put_instance_id(b, v, ip) &&
	     nacos_put(b, ",\"ip\":") && json_put_str(b, ip, strlen(ip), NACOS_BODY_MAX) &&
	     nacos_put(b, ",\"port\":") && json_put_u64(b, v->addr.port, NACOS_BODY_MAX) &&
	     nacos_put(b, ",\"weight\":") &&
	     json_put_double(b, nacos_weight_double(v->weight_milli), NACOS_BODY_MAX) &&
	     nacos_put(b, ",\"healthy\":") && json_put_bool(b, healthy, NACOS_BODY_MAX) &&
	     nacos_put(b, ",\"enabled\":") &&
	     json_put_bool(b, v->flags & STORE_F_ENABLED, NACOS_BODY_MAX) &&
	     nacos_put(b, ",\"ephemeral\":") &&
	     json_put_bool(b, v->flags & STORE_F_EPHEMERAL, NACOS_BODY_MAX) &&
	     nacos_put(b, ",\"clusterName\":") && nacos_put_str(b, v->cluster) &&
	     nacos_put(b, ",\"serviceName\":") && nacos_put_grouped(b, &sk) &&
	     nacos_put(b, ",\"metadata\":") && nacos_put_meta_of(b, v->meta) &&
	     nacos_put(b, ",\"valid\":") && json_put_bool(b, healthy, NACOS_BODY_MAX) &&
	     nacos_put(b, ",\"marked\":false,\"instanceHeartBeatInterval\":") &&
	     json_put_u64(b, v->timing.interval_ms, NACOS_BODY_MAX) &&
	     nacos_put(b, ",\"instanceHeartBeatTimeOut\":") &&
	     json_put_u64(b, v->timing.timeout_ms, NACOS_BODY_MAX) &&
	     nacos_put(b, ",\"ipDeleteTimeout\":") &&
	     json_put_u64(b, v->timing.delete_ms, NACOS_BODY_MAX) &&
	     nacos_put(b, ",\"instanceIdGenerator\":\"simple\"}");
	return ok;
}

/* Copies a live instance's value (metadata strings into the worker's scratch). Inside the epoch. */
void nacos_val_from_view(struct worker *w, const struct store_view *sv, struct store_val *v)
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

/* The instance as this node holds it, its value copied out of the epoch (nacos_val_from_view). 0 or
 * -ERR_NOT_FOUND. */
int nacos_instance_read(struct nctx *x, const struct store_key *k, struct store_val *v)
{
	struct store_view sv;
	int rc;

	epoch_enter(x->w->rec);
	rc = store_get(x->w->srv->store, k, &sv);
	if (rc == 0)
		nacos_val_from_view(x->w, &sv, v);
	epoch_exit(x->w->rec);
	return rc;
}
