/*
 * nacos_api.c - the Nacos v1 naming API (/nacos/v1/ns) on the worker that
 * read the request: the routing table, and the operator and health
 * endpoints. The endpoints live by concept in nacos_params.c (shapes in
 * and out), nacos_instance.c (writes), nacos_list.c (reads) and
 * nacos_service.c (service-level state). docs/nacos.md lists each endpoint
 * with its parameters, answers and errors, and where distrod differs from
 * Nacos and why.
 *
 * Parameters come from the query and from form bodies alike (nacos.c);
 * a blank parameter counts as absent, as in Nacos's WebUtils.optional.
 * Names: namespaceId defaults to "public", a serviceName "G@@s" carries
 * its group (else groupName, else NACOS_DEFAULT_GROUP); `dom` is the pre-0.8
 * name of serviceName.
 *
 * Writes (register, deregister, update, patch, beat) become one item of
 * the binary protocol and take its path (nacos_write), so they are routed,
 * forwarded and replicated like any binary write and answered when the
 * owner has run them. Reads (list, detail, statuses, service list) are
 * answered from this node's store under the epoch, like binary LISTs.
 * A metadata batch is one frame of many items, answered once when all
 * have run. /service/subscribers visits every worker's push table
 * (nacos_push.c). /metrics, /health and /cluster answer here what the
 * admin port answers (admin_paths). /, /nacos/ and /nacos/console/ are
 * the web console's files (nacos_console.c), /v1/ns/catalog/ its reads
 * (nacos_catalog.c).
 *
 * Answers are built in the worker's body buffer (NACOS_BODY_MAX); JSON
 * strings go through json_put_str, which escapes everything a client or
 * a browser could misread.
 */
#include "server/nacos_internal.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "cluster/peer.h"
#include "cluster/view.h"
#include "http/admin.h"
#include "nacos/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- operator and health ---- */

static void operator_metrics(struct nctx *x)
{
	struct store_stats st;
	struct buf *b = nacos_body(x);
	char tmp[256];
	int n;

	store_stats(x->w->srv->store, &st);
	/* Service state is no instance (the two gauges are read apart: never below 0). */
	st.instances -= st.service_records < st.instances ? st.service_records : st.instances;
	n = snprintf(tmp, sizeof(tmp),
	             "{\"status\":\"UP\",\"serviceCount\":%llu,\"instanceCount\":%llu,"
	             "\"responsibleServiceCount\":%llu,\"responsibleInstanceCount\":%llu}",
	             (unsigned long long)st.services, (unsigned long long)st.instances,
	             (unsigned long long)st.services, (unsigned long long)st.instances);
	nacos_reply_json_or_500(x, b, json_put_raw(b, tmp, (size_t)n, NACOS_BODY_MAX));
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

		if (!nacos_param(x, "entry", &entry)) {
			nacos_reply_text(x, 400, "Param 'entry' is required.");
			return;
		}
		nacos_reply_text(x, 200, "ok");
		return;
	}
	nacos_reply(x, 200, NACOS_JSON_CT, sw, sizeof(sw) - 1);
}

static void operator_servers(struct nctx *x)
{
	struct buf *b = nacos_body(x);
	struct peer *p = x->w->srv->peer;
	struct peer_status st;
	bool ok = nacos_put(b, "{\"servers\":[");

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
	ok = ok && nacos_put(b, "]}");
	nacos_reply_json_or_500(x, b, ok);
}

static void health_server(struct nctx *x)
{
	static const char hello[] =
	        "{\"msg\":\"Hello! I am Nacos-Naming and healthy! total services: raft 0, local "
	        "port:8848\"}";

	nacos_reply(x, 200, NACOS_JSON_CT, hello, sizeof(hello) - 1);
}

/* ---- the admin endpoints, on this port too ---- */

/*
 * GET /metrics, /health, /cluster: the admin port's answers, rendered by
 * the same function (admin_answer_render) from the same source, so the
 * bytes are the same (headers aside: the admin port adds Cache-Control
 * and Allow). Nacos users expect one HTTP port. Not a hot path (a scrape,
 * a probe): the snapshot buffers (~10 KiB and a counter set per worker)
 * are allocated per request, and /metrics walks every worker's counters
 * and /cluster the slot map here, on this worker, for that request.
 * Returns false when the path is not one of them.
 */
static bool admin_paths(struct nctx *x)
{
	struct server *s = x->w->srv;
	struct admin_source src = { .snapshot = server_admin_snapshot,
		                    .ctx = s,
		                    .nworkers = s->nworkers };
	const struct metrics_http *mine = LOAD_ACQUIRE(&s->admin_http);
	struct metrics_http http;
	struct admin_snapshot snap;
	struct admin_answer ans;
	enum request_route route;

	if (nacos_str_eq(x->path, "/metrics"))
		route = REQUEST_ROUTE_METRICS;
	else if (nacos_str_eq(x->path, "/health"))
		route = REQUEST_ROUTE_HEALTH;
	else if (nacos_str_eq(x->path, "/cluster"))
		route = REQUEST_ROUTE_CLUSTER;
	else
		return false;
	if (x->h->method != H1_GET && x->h->method != H1_HEAD) {
		static const char body[] = "405 Method Not Allowed\n";

		nacos_reply(x, 405, ADMIN_TEXT_TYPE, body, sizeof(body) - 1);
		return true;
	}
	memset(&http, 0, sizeof(http));
	if (mine)
		metrics_http_read(mine, &http);
	if (admin_snapshot_alloc(&snap, s->nworkers) < 0) {
		static const char body[] = "503 Service Unavailable\n";

		nacos_reply(x, 503, ADMIN_TEXT_TYPE, body, sizeof(body) - 1);
		return true;
	}
	admin_answer_render(route, &src, &snap, &http, &ans);
	nacos_reply(x, (uint16_t)ans.status, ans.type, ans.body, ans.len);
	admin_answer_free(&ans);
	admin_snapshot_free(&snap);
	return true;
}

/* ---- routing ---- */

struct route {
	const char *path; /* after /nacos */
	uint8_t method;   /* enum h1_method; H1_OTHER: any */
	void (*fn)(struct nctx *x);
};

static const struct route routes[] = {
	{ "/v1/ns/instance", H1_POST, nacos_instance_register },
	{ "/v1/ns/instance", H1_DELETE, nacos_instance_deregister },
	{ "/v1/ns/instance", H1_PUT, nacos_instance_update },
	{ "/v1/ns/instance", H1_PATCH, nacos_instance_patch },
	{ "/v1/ns/instance", H1_GET, nacos_instance_detail },
	{ "/v1/ns/instance/beat", H1_PUT, nacos_instance_beat },
	{ "/v1/ns/instance/list", H1_GET, nacos_instance_list },
	{ "/v1/ns/instance/statuses", H1_GET, nacos_instance_statuses },
	{ "/v1/ns/service", H1_POST, nacos_service_create },
	{ "/v1/ns/service", H1_PUT, nacos_service_update },
	{ "/v1/ns/service", H1_DELETE, nacos_service_delete },
	{ "/v1/ns/service", H1_GET, nacos_service_detail },
	{ "/v1/ns/instance/metadata/batch", H1_PUT, nacos_instance_metadata_batch },
	{ "/v1/ns/instance/metadata/batch", H1_DELETE, nacos_instance_metadata_batch },
	{ "/v1/ns/service/list", H1_GET, nacos_service_list },
	{ "/v1/ns/catalog/services", H1_GET, nacos_catalog_services }, /* nacos_catalog.c */
	{ "/v1/ns/catalog/instances", H1_GET, nacos_catalog_instances },
	{ "/v1/ns/service/names", H1_GET, nacos_service_names },
	{ "/v1/ns/service/subscribers", H1_GET, nacos_service_subscribers },
	{ "/v1/ns/operator/metrics", H1_GET, operator_metrics },
	{ "/v1/ns/ops/metrics", H1_GET, operator_metrics },
	{ "/v1/ns/operator/switches", H1_GET, operator_switches },
	{ "/v1/ns/operator/switches", H1_PUT, operator_switches },
	{ "/v1/ns/operator/servers", H1_GET, operator_servers },
	{ "/v1/ns/health/server", H1_GET, health_server },
	{ "/v1/ns/health/instance", H1_PUT, nacos_health_instance },
	{ "/v1/ns/health", H1_PUT, nacos_health_instance },
	{ "/v1/auth/users/login", H1_POST, nacos_auth_login }, /* nacos_auth.c */
	{ "/v1/auth/login", H1_POST, nacos_auth_login },
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

	if (nacos_console_serve(x))
		return;
	if (path.len >= 6 && memcmp(path.p, "/nacos", 6) == 0 &&
	    (path.len == 6 || path.p[6] == '/')) {
		path.p += 6;
		path.len -= 6;
		if (path.len > 1 && path.p[path.len - 1] == '/')
			path.len--; /* "/v1/ns/instance/" is "/v1/ns/instance" */
		for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
			if (!nacos_str_eq(path, routes[i].path))
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
	if (admin_paths(x))
		return;
	snprintf(msg, sizeof(msg), "no such path:%.*s",
	         (int)(x->path.len > 200 ? 200 : x->path.len), x->path.p);
	nacos_reply_text(x, 404, msg);
}
