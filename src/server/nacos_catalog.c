/*
 * nacos_catalog.c - the console's reads, in Nacos's console API shapes:
 *
 *   GET /v1/ns/catalog/services?pageNo&pageSize&namespaceId
 *       &serviceNameParam&groupNameParam&hasIpCount
 *     {"count":N,"serviceList":[{"name","groupName","clusterCount",
 *      "ipCount","healthyInstanceCount","triggerFlag"},...]}
 *   GET /v1/ns/catalog/instances?serviceName&groupName&namespaceId
 *       &clusterName&pageNo&pageSize
 *     {"count":N,"list":[instance,...]}, each instance as /instance/list
 *     writes its hosts plus "lastBeat"
 *
 * docs/nacos.md ("Console API") lists the parameters and the differences
 * from Nacos. Both are answered by the worker that read the request, from
 * this node's store under one epoch section, like /service/list.
 *
 * Cost of /catalog/services: one pass over the namespace's services
 * (store_services: O(services of the node), no allocation per service)
 * that filters by substring (Nacos matches ".*param.*") and counts every
 * match, keeping only the page's keys (the strings are the store's,
 * valid inside the epoch section), then one store_list per row of the page
 * for its counts. pageSize is bounded (CATALOG_PAGE_MAX), so the second
 * step is bounded whatever pageNo is: the last page of 100,000 services
 * costs the pass and one page of lookups, which the integration test
 * (test_nacos_catalog.c) measures. hasIpCount=true hides services without
 * instances, as Nacos's console does by default: a service whose only live
 * record is its service record (live == 1 and the record found).
 *
 * Order: the store's (shard by shard), stable while the set of services
 * is; Nacos's own order is a hash set's, so neither promises names in
 * order. Sorting 100,000 names per request would cost more than the pass.
 *
 * lastBeat: Nacos 1.x's Instance carries it (ms since the epoch). Here it
 * is this node's last news of the instance: on the instance's owner its
 * last heartbeat (or write), on a replica the last replicated write
 * (beats are not replicated: docs/distro.md). The store keeps it on the
 * monotonic clock; it is turned into wall time when written.
 */
#include "server/nacos_internal.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/mem.h"
#include "nacos/json.h"

#include <stdio.h>
#include <string.h>

#define CATALOG_PAGE_MAX 1000 /* rows of one page, both endpoints */

static bool str_has(struct store_str hay, struct store_str needle)
{
	return needle.len == 0 ||
	       (hay.len >= needle.len && memmem(hay.p, hay.len, needle.p, needle.len) != NULL);
}

/* pageNo (from 1; below 1 is 1, as Nacos's console never sends) and pageSize, or 400. */
static int page_of(struct nctx *x, int64_t *page_no, int64_t *page_size, int64_t dflt_size)
{
	int err = 0;

	*page_no = form_get_int(&x->form, "pageNo", 1, INT32_MIN, INT32_MAX, &err);
	*page_size = form_get_int(&x->form, "pageSize", dflt_size, 0, CATALOG_PAGE_MAX, &err);
	if (err) {
		nacos_reply_text(
		        x, 400, "Param 'pageNo' or 'pageSize' is invalid (pageSize at most 1000).");
		return -1;
	}
	if (*page_no < 1)
		*page_no = 1;
	return 0;
}

/* ---- /catalog/services ---- */

struct cat_scan {
	struct worker *w;
	struct store_str name_param, group_param;
	bool has_ip_count;
	uint64_t skip, take; /* matches to pass over, then to keep */
	uint64_t count;      /* every match */
	struct store_svc_key *rows;
	uint32_t rows_n;
};

static bool scan_one(void *ctx, const struct store_svc_view *v)
{
	struct cat_scan *cs = ctx;

	if (!str_has(v->service, cs->name_param) || !str_has(v->group, cs->group_param))
		return true;
	if (cs->has_ip_count && v->live <= 1) {
		const struct store_svc_key sk = { v->ns, v->group, v->service };
		struct nacos_svc_state st;

		/* live counts the service record too: alone, the service has no instance */
		if (v->live == 0 || nacos_service_state(cs->w, &sk, &st) == 0)
			return true;
	}
	if (cs->count >= cs->skip && cs->count - cs->skip < cs->take)
		cs->rows[cs->rows_n++] = (struct store_svc_key){ v->ns, v->group, v->service };
	cs->count++;
	return true;
}

/* One row: the service's counts from its instances (every one, disabled too, as Nacos). */
static bool put_row(struct worker *w, struct buf *b, const struct store_svc_key *sk, bool first)
{
	struct store_list_info info;
	struct nacos_svc_state st;
	uint32_t healthy = 0, clusters = 0;
	int n;

	for (;;) {
		n = store_list(w->srv->store, sk, NULL, w->views, w->views_cap, &info);
		if (n < 0 || info.total <= (uint32_t)n || !nacos_views_grow(w, info.total))
			break;
	}
	if (n < 0)
		n = 0; /* cannot happen: the name came from the store */
	for (int i = 0; i < n; i++) {
		bool seen = false;

		healthy += (w->views[i].flags & STORE_F_HEALTHY) != 0;
		/* distinct clusters: a service has a few, so a scan of those before is cheap */
		for (int j = 0; j < i && !seen; j++)
			seen = w->views[j].cluster.len == w->views[i].cluster.len &&
			       memcmp(w->views[j].cluster.p, w->views[i].cluster.p,
			              w->views[i].cluster.len) == 0;
		clusters += !seen;
	}
	(void)nacos_service_state(w, sk, &st);
	/* Nacos: healthy / ipCount <= protectThreshold, in float (0 / 0 is false) */
	return (first || nacos_put(b, ",")) && nacos_put(b, "{\"name\":") &&
	       nacos_put_str(b, sk->service) && nacos_put(b, ",\"groupName\":") &&
	       nacos_put_str(b, sk->group) && nacos_put(b, ",\"clusterCount\":") &&
	       json_put_u64(b, clusters, NACOS_BODY_MAX) && nacos_put(b, ",\"ipCount\":") &&
	       json_put_u64(b, (uint64_t)n, NACOS_BODY_MAX) &&
	       nacos_put(b, ",\"healthyInstanceCount\":") &&
	       json_put_u64(b, healthy, NACOS_BODY_MAX) && nacos_put(b, ",\"triggerFlag\":") &&
	       nacos_put(b,
	                 n > 0 && (double)healthy / n <= st.threshold ? "\"true\"}" : "\"false\"}");
}

void nacos_catalog_services(struct nctx *x)
{
	struct cat_scan cs = { .w = x->w };
	struct buf *b;
	int64_t page_no, page_size;
	struct store_str ns, with;
	int err = 0;
	bool ok;

	if (page_of(x, &page_no, &page_size, 10) < 0)
		return;
	cs.has_ip_count = form_get_bool(&x->form, "hasIpCount", false, &err);
	if (err) {
		nacos_reply_text(x, 400, "Param 'hasIpCount' is invalid.");
		return;
	}
	if (nacos_param(x, "withInstances", &with) && nacos_str_eq(with, "true")) {
		/* Nacos's pageListServiceDetail: no console of ours asks it */
		nacos_reply_text(x, 400, "withInstances=true is not supported by distrod");
		return;
	}
	if (!nacos_param(x, "namespaceId", &ns))
		ns = nacos_str_of(NACOS_DEFAULT_NS);
	if (!nacos_param(x, "serviceNameParam", &cs.name_param))
		cs.name_param = (struct store_str){ "", 0 };
	if (!nacos_param(x, "groupNameParam", &cs.group_param))
		cs.group_param = (struct store_str){ "", 0 };
	cs.skip = (uint64_t)(page_no - 1) * (uint64_t)page_size;
	cs.take = (uint64_t)page_size;
	cs.rows = mem_alloc(sizeof(cs.rows[0]) * (size_t)(page_size ? page_size : 1));
	if (cs.rows == NULL) {
		nacos_reply_text(x, 503, "out of memory for a catalog page");
		return;
	}
	b = nacos_body(x);
	epoch_enter(x->w->rec);
	store_services(x->w->srv->store, ns, NULL, scan_one, &cs);
	ok = nacos_put(b, "{\"count\":") && json_put_u64(b, cs.count, NACOS_BODY_MAX) &&
	     nacos_put(b, ",\"serviceList\":[");
	for (uint32_t i = 0; i < cs.rows_n && ok; i++)
		ok = put_row(x->w, b, &cs.rows[i], i == 0);
	epoch_exit(x->w->rec);
	mem_free(cs.rows);
	ok = ok && nacos_put(b, "]}");
	nacos_reply_json_or_500(x, b, ok);
}

/* ---- /catalog/instances ---- */

void nacos_catalog_instances(struct nctx *x)
{
	struct store_svc_key sk;
	struct store_str cluster;
	struct store_filter f = { 0 };
	struct store_list_info info;
	struct worker *w = x->w;
	struct buf *b;
	int64_t page_no, page_size, now_wall, now_mono;
	uint64_t skip;
	bool ok;
	int n;

	if (nacos_svc_of(x, &sk) < 0 || page_of(x, &page_no, &page_size, 10) < 0)
		return;
	if (nacos_param(x, "clusterName", &cluster)) {
		f.clusters = &cluster;
		f.clusters_n = 1;
	}
	skip = (uint64_t)(page_no - 1) * (uint64_t)page_size;
	now_wall = clock_wall_ms(NULL);
	now_mono = clock_mono_ms(NULL);
	b = nacos_body(x);
	epoch_enter(w->rec);
	for (;;) { /* as nacos_render_list: the worker's scratch grows to the service */
		n = store_list(w->srv->store, &sk, &f, w->views, w->views_cap, &info);
		if (n < 0 || info.total <= (uint32_t)n || !nacos_views_grow(w, info.total))
			break;
	}
	ok = n >= 0 && nacos_put(b, "{\"count\":") &&
	     json_put_u64(b, (uint64_t)n, NACOS_BODY_MAX) && nacos_put(b, ",\"list\":[");
	for (uint64_t i = skip; n >= 0 && i < (uint64_t)n && i - skip < (uint64_t)page_size && ok;
	     i++) {
		const struct store_view *v = &w->views[i];
		int64_t beat = v->beat_ms > 0 ? now_wall - (now_mono - v->beat_ms) : 0;

		ok = (i == skip || nacos_put(b, ",")) && nacos_put_host(b, v, false);
		/* the host's closing brace makes room for one more field */
		if (ok) {
			b->len--;
			ok = nacos_put(b, ",\"lastBeat\":") &&
			     json_put_i64(b, beat, NACOS_BODY_MAX) && nacos_put(b, "}");
		}
	}
	ok = ok && nacos_put(b, "]}");
	epoch_exit(w->rec);
	if (n < 0)
		nacos_reply_text(x, 400, err_str(n));
	else if (info.revision == 0) /* as Nacos: an unknown service is an error, not empty */
		nacos_reply_text(x, 404, "service not found");
	else
		nacos_reply_json_or_500(x, b, ok);
}
