/*
 * nacos_list.c - the reads of the Nacos API: GET /instance/list (also the
 * data of every UDP push), /instance/statuses, /service/list and
 * /service/names, answered from this node's store under the epoch, like
 * binary LISTs. A list answer is the union of the Nacos 1.x and 2.x
 * shapes; see docs/nacos.md for each field.
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

/* ---- lists ---- */

/* Grows the worker's views to hold n (bounded by the per-service limit). */
bool nacos_views_grow(struct worker *w, uint32_t n)
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
 * the answer under name@@clusters), hosts with every field clients read,
 * the service metadata. *revision (if not NULL): the service's revision
 * the answer shows (a service record's changes move it too).
 *
 * Protection (Nacos 2.x, docs/nacos.md): on the instances the cluster and
 * enabled filters keep, when the service has a service record with a
 * protectThreshold > 0 and healthy/total <= protectThreshold, every one is
 * answered as healthy (healthyOnly then drops none) and
 * reachProtectionThreshold is true. Otherwise healthyOnly drops the
 * unhealthy ones. Inside the caller's epoch section.
 */
int nacos_render_list(struct worker *w, const struct store_svc_key *sk, struct store_str clusters,
                      bool healthy_only, struct buf *b, uint64_t *revision)
{
	return nacos_render_service(w, sk, clusters, healthy_only, false, b, revision);
}

int nacos_render_service(struct worker *w, const struct store_svc_key *sk,
                         struct store_str clusters, bool healthy_only, bool bare_name,
                         struct buf *b, uint64_t *revision)
{
	struct store_str names[16];
	struct store_filter f = { .enabled_only = true };
	struct store_list_info info;
	struct nacos_svc_state st;
	uint32_t healthy = 0;
	bool ok, protect, first = true;
	char sum[24];
	int n;

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
		if (info.total <= (uint32_t)n || !nacos_views_grow(w, info.total))
			break;
	}
	if (revision)
		*revision = info.revision;
	(void)nacos_service_state(w, sk, &st);
	for (int i = 0; i < n; i++)
		healthy += (w->views[i].flags & STORE_F_HEALTHY) != 0;
	protect = st.threshold > 0 && n > 0 && (double)healthy / n <= st.threshold;
	snprintf(sum, sizeof(sum), "%llx", (unsigned long long)info.revision);
	ok = nacos_put(b, "{\"name\":") &&
	     (bare_name ? nacos_put_str(b, sk->service) : nacos_put_grouped(b, sk)) &&
	     nacos_put(b, ",\"groupName\":") && nacos_put_str(b, sk->group) &&
	     nacos_put(b, ",\"clusters\":") && nacos_put_str(b, clusters) &&
	     nacos_put(b, ",\"cacheMillis\":") &&
	     json_put_u64(b, NACOS_CACHE_MILLIS, NACOS_BODY_MAX) &&
	     nacos_put(b, ",\"lastRefTime\":") &&
	     json_put_i64(b, clock_wall_ms(NULL), NACOS_BODY_MAX) &&
	     nacos_put(b, ",\"checksum\":") && json_put_str(b, sum, strlen(sum), NACOS_BODY_MAX) &&
	     nacos_put(b, ",\"allIPs\":false,\"reachProtectionThreshold\":") &&
	     json_put_bool(b, protect, NACOS_BODY_MAX) &&
	     nacos_put(b, ",\"valid\":true,\"useSpecifiedURL\":false,\"env\":\"\",\"metadata\":") &&
	     nacos_put_meta_of(b, st.meta) && nacos_put(b, ",\"dom\":") &&
	     nacos_put_grouped(b, sk) && nacos_put(b, ",\"hosts\":[");
	for (int i = 0; i < n && ok; i++) {
		if (healthy_only && !protect && !(w->views[i].flags & STORE_F_HEALTHY))
			continue;
		ok = (first || nacos_put(b, ",")) && nacos_put_host(b, &w->views[i], protect);
		first = false;
	}
	ok = ok && nacos_put(b, "]}");
	return ok ? 0 : -ERR_NOMEM;
}

void nacos_instance_list(struct nctx *x)
{
	struct store_svc_key sk;
	struct store_str clusters = { "", 0 };
	struct buf *b;
	bool healthy_only;
	int64_t udp_port;
	uint64_t revision = 0;
	int err = 0, rc;

	if (nacos_svc_of(x, &sk) < 0)
		return;
	(void)form_get(&x->form, "clusters", &clusters);
	healthy_only = form_get_bool(&x->form, "healthyOnly", false, &err);
	udp_port = form_get_int(&x->form, "udpPort", 0, 0, 65535, &err);
	if (err) {
		nacos_reply_text(x, 400, "Param 'healthyOnly' or 'udpPort' is invalid.");
		return;
	}
	b = nacos_body(x);
	epoch_enter(x->w->rec);
	rc = nacos_render_list(x->w, &sk, clusters, healthy_only, b, &revision);
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
		nacos_push_subscribe(x, &sk, clusters, healthy_only, (uint16_t)udp_port, revision);
	nacos_reply_json(x, b);
}

/* ---- statuses, services ---- */

/* GET /instance/statuses?key=[ns##]G@@s: {"ips":["ip:port_healthy",...]} */
void nacos_instance_statuses(struct nctx *x)
{
	struct store_str key, name;
	struct store_svc_key sk;
	struct store_list_info info;
	struct buf *b = nacos_body(x);
	const char *at;
	bool ok;
	int n;

	if (!nacos_param(x, "key", &key)) {
		nacos_reply_text(x, 400, "Param 'key' is required.");
		return;
	}
	sk.ns = nacos_str_of(NACOS_DEFAULT_NS);
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
		if (n < 0 || info.total <= (uint32_t)n || !nacos_views_grow(x->w, info.total))
			break;
	}
	ok = n >= 0 && nacos_put(b, "{\"ips\":[");
	for (int i = 0; i < n && ok; i++) {
		const struct store_view *v = &x->w->views[i];
		char ip[64], tmp[96];
		int len;

		addr_format(&v->addr, ip, sizeof(ip));
		len = snprintf(tmp, sizeof(tmp), "%s:%u_%s", ip, v->addr.port,
		               (v->flags & STORE_F_HEALTHY) ? "true" : "false");
		ok = (i == 0 || nacos_put(b, ",")) &&
		     json_put_str(b, tmp, (size_t)len, NACOS_BODY_MAX);
	}
	ok = ok && nacos_put(b, "]}");
	epoch_exit(x->w->rec);
	if (n < 0)
		nacos_reply_text(x, 400, err_str(n));
	else if (info.revision == 0)
		nacos_reply_text(x, 404, "service not found");
	else
		nacos_reply_json_or_500(x, b, ok);
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

		pg->ok = (pg->count == (uint64_t)pg->skip || nacos_put(pg->b, ",")) &&
		         (pg->grouped ? nacos_put_grouped(pg->b, &sk)
		                      : nacos_put_str(pg->b, v->service));
	}
	pg->count++;
	return true;
}

/*
 * GET /service/list?pageNo&pageSize: {"count":total,"doms":[names of the page]}.
 * The order is the store's (stable while the set of services is).
 */
void nacos_service_list(struct nctx *x)
{
	struct store_str ns, group;
	struct svc_page pg = { .b = nacos_body(x), .ok = true };
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
	if (!nacos_param(x, "namespaceId", &ns))
		ns = nacos_str_of(NACOS_DEFAULT_NS);
	if (!nacos_param(x, "groupName", &group))
		group = nacos_str_of(NACOS_DEFAULT_GROUP);
	pg.skip = (page_no - 1) * page_size;
	pg.take = page_size;
	/* count first: write the names into the body after the head */
	pg.ok = nacos_put(pg.b, "{\"doms\":[");
	epoch_enter(x->w->rec);
	store_services(x->w->srv->store, ns, nacos_str_eq(group, "*") ? NULL : &group, page_one,
	               &pg);
	epoch_exit(x->w->rec);
	snprintf(count, sizeof(count), "%llu", (unsigned long long)pg.count);
	pg.ok = pg.ok && nacos_put(pg.b, "],\"count\":") && nacos_put(pg.b, count) &&
	        nacos_put(pg.b, "}");
	nacos_reply_json_or_500(x, pg.b, pg.ok);
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

	sn->ok = sn->ok && (sn->count == 0 || nacos_put(sn->b, ",")) &&
	         nacos_put_grouped(sn->b, &sk);
	sn->count++;
	return sn->ok;
}

/* GET /service/names?namespaceId: {"services":{"ns":["G@@s",...]},"count":n} */
void nacos_service_names(struct nctx *x)
{
	struct store_str ns;
	struct svc_names sn = { .b = nacos_body(x), .ok = true };
	char count[24];

	if (!nacos_param(x, "namespaceId", &ns))
		ns = nacos_str_of(NACOS_DEFAULT_NS);
	sn.ok = nacos_put(sn.b, "{\"services\":{") && nacos_put_str(sn.b, ns) &&
	        nacos_put(sn.b, ":[");
	epoch_enter(x->w->rec);
	store_services(x->w->srv->store, ns, NULL, names_one, &sn);
	epoch_exit(x->w->rec);
	snprintf(count, sizeof(count), "%llu", (unsigned long long)sn.count);
	sn.ok = sn.ok && nacos_put(sn.b, "]},\"count\":") && nacos_put(sn.b, count) &&
	        nacos_put(sn.b, "}");
	nacos_reply_json_or_500(x, sn.b, sn.ok);
}
