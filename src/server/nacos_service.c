/*
 * nacos_service.c - service-level state of the Nacos API: POST, PUT,
 * DELETE and GET /service, and the protection threshold that lists apply.
 *
 * A service's own state (protectThreshold, service metadata) is one record
 * of the store: the service record (store.h, STORE_SERVICE_CLUSTER), in a
 * reserved cluster no Nacos client can name and at an address derived
 * from the service's names, so every node finds it by key
 * (store_service_key). Its value: weight = protectThreshold in millionths,
 * metadata = the service metadata, not ephemeral (never expired), not
 * enabled. Being a record, it is written exactly as an instance is
 * (nacos_write: one binary-protocol item, routed to its slot's owner,
 * replicated, verified and repaired by the same code) and converges like
 * one, last writer wins. The store never lists it, so no answer that shows
 * instances (lists, pushes, statuses, binary LIST and SUBSCRIBE) sees it;
 * it keeps a service alive in /service/list with no instance, as POST
 * /service must.
 *
 * Existence is Nacos 2.x's: a service exists when it has live instances
 * or a service record. The checks (exists, not empty) read this node's
 * store, like every Nacos read, so two nodes racing to create one service
 * may both answer ok (the later write wins); docs/nacos.md.
 */
#include "server/nacos_internal.h"

#include "core/err.h"
#include "nacos/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define THRESHOLD_SCALE  1000000.0 /* protectThreshold in the record's weight, in millionths */
#define GET_CLUSTERS_MAX 1024      /* clusters named by GET /service (the store's default bound) */

/* The service record as this node holds it. Inside an epoch section. */
int nacos_service_state(struct worker *w, const struct store_svc_key *sk,
                        struct nacos_svc_state *st)
{
	struct store_key k;
	struct store_view v;
	int rc;

	memset(st, 0, sizeof(*st));
	if ((rc = store_service_key(w->srv->store, sk, &k)) < 0 ||
	    (rc = store_get(w->srv->store, &k, &v)) < 0)
		return rc;
	st->found = true;
	st->threshold = (double)v.weight_milli / THRESHOLD_SCALE;
	st->meta = v.meta;
	return 0;
}

/* Whether a service exists here (record or instances) and how many instances it has. */
static int service_look(struct nctx *x, const struct store_svc_key *sk, bool *record,
                        uint32_t *instances)
{
	struct nacos_svc_state st;
	struct store_list_info info;
	int rc;

	epoch_enter(x->w->rec);
	rc = store_list(x->w->srv->store, sk, NULL, x->w->views, 0, &info);
	if (rc >= 0) {
		*instances = info.total;
		*record = nacos_service_state(x->w, sk, &st) == 0;
	}
	epoch_exit(x->w->rec);
	if (rc < 0)
		nacos_reply_text(x, 400, err_str(rc));
	return rc < 0 ? -1 : 0;
}

/* "<fmt with %s for G@@s>" as a 400. */
static void reply_400_grouped(struct nctx *x, const char *fmt, const struct store_svc_key *sk)
{
	char grouped[600];

	snprintf(grouped, sizeof(grouped), "%.*s@@%.*s", (int)sk->group.len, sk->group.p,
	         (int)sk->service.len, sk->service.p);
	nacos_reply_400(x, fmt, grouped);
}

/* protectThreshold (dflt when absent), clamped to 0..1. 0 or -1 after answering. */
static int threshold_of(struct nctx *x, double dflt, double *out)
{
	int err = 0;
	double t = form_get_double(&x->form, "protectThreshold", dflt, &err);

	if (err || !isfinite(t)) {
		nacos_reply_text(x, 400, "Param 'protectThreshold' is not a number.");
		return -1;
	}
	*out = t < 0 ? 0 : t > 1 ? 1 : t;
	return 0;
}

/* Writes the service record: threshold and metadata (v.meta set by the caller). */
static void record_write(struct nctx *x, const struct store_svc_key *sk, double threshold,
                         struct store_val *v)
{
	struct store_key k;
	int rc = store_service_key(x->w->srv->store, sk, &k);

	if (rc < 0) {
		nacos_reply_text(x, 400, err_str(rc));
		return;
	}
	v->weight_milli = (uint32_t)llround(threshold * THRESHOLD_SCALE);
	v->healthy = true;
	v->enabled = false;
	v->ephemeral = false;
	v->timing = (struct store_timing){ 0, 0, 0 };
	nacos_write(x, OP_REGISTER, nw_tag(NW_REGISTER, 0), &k, v);
}

/* POST /service: a new service (400 when it exists, with instances or a record). */
void nacos_service_create(struct nctx *x)
{
	struct store_svc_key sk;
	struct store_val v;
	uint32_t instances;
	double threshold;
	bool record, given;

	if (nacos_svc_of(x, &sk) < 0 || threshold_of(x, 0.0, &threshold) < 0)
		return;
	store_val_default(&v);
	if (nacos_meta_of(x, &v, &given) < 0 || service_look(x, &sk, &record, &instances) < 0)
		return;
	if (record || instances > 0) {
		reply_400_grouped(x, "specified service %s already exists!", &sk);
		return;
	}
	record_write(x, &sk, threshold, &v);
}

/*
 * PUT /service: protectThreshold (required, as Nacos) and metadata. An
 * absent metadata keeps the service's metadata (Nacos clears it).
 */
void nacos_service_update(struct nctx *x)
{
	struct store_svc_key sk;
	struct store_val v;
	struct store_str s;
	uint32_t instances;
	double threshold;
	bool record, given;

	if (nacos_svc_of(x, &sk) < 0)
		return;
	if (!nacos_param(x, "protectThreshold", &s)) {
		nacos_reply_text(x, 400, "Param 'protectThreshold' is required.");
		return;
	}
	if (threshold_of(x, 0.0, &threshold) < 0)
		return;
	store_val_default(&v);
	if (nacos_meta_of(x, &v, &given) < 0 || service_look(x, &sk, &record, &instances) < 0)
		return;
	if (!record && instances == 0) {
		reply_400_grouped(x, "service %s not found!", &sk);
		return;
	}
	if (!given && record) {
		struct store_key k;
		struct store_val old;

		if (store_service_key(x->w->srv->store, &sk, &k) == 0 &&
		    nacos_instance_read(x, &k, &old) == 0) {
			v.meta = old.meta;
			v.meta_n = old.meta_n;
		}
	}
	record_write(x, &sk, threshold, &v);
}

/* DELETE /service: only a service without instances (Nacos 2.x). */
void nacos_service_delete(struct nctx *x)
{
	struct store_svc_key sk;
	struct store_key k;
	uint32_t instances;
	bool record;
	int rc;

	if (nacos_svc_of(x, &sk) < 0 || service_look(x, &sk, &record, &instances) < 0)
		return;
	if (!record && instances == 0) {
		reply_400_grouped(x, "service %s not found!", &sk);
		return;
	}
	if (instances > 0) {
		reply_400_grouped(x,
		                  "Service %s is not empty, can't be delete. Please unregister "
		                  "instance first",
		                  &sk);
		return;
	}
	if ((rc = store_service_key(x->w->srv->store, &sk, &k)) < 0) {
		nacos_reply_text(x, 400, err_str(rc));
		return;
	}
	/* A delete racing another one finds nothing at the owner: still "ok". */
	nacos_write(x, OP_DEREGISTER, nw_tag(NW_DEREGISTER, 0), &k, NULL);
}

/* The distinct cluster names of views[0, n) as GET /service's "clusters". */
static bool put_clusters(struct buf *b, const struct store_view *views, int n)
{
	static __thread struct store_str seen[GET_CLUSTERS_MAX];
	uint32_t seen_n = 0;
	bool ok = nacos_put(b, "[");

	for (int i = 0; i < n && ok; i++) {
		struct store_str c = views[i].cluster;
		uint32_t j;

		for (j = 0; j < seen_n; j++)
			if (seen[j].len == c.len && memcmp(seen[j].p, c.p, c.len) == 0)
				break;
		if (j < seen_n || seen_n == GET_CLUSTERS_MAX)
			continue;
		seen[seen_n++] = c;
		ok = (seen_n == 1 || nacos_put(b, ",")) && nacos_put(b, "{\"name\":") &&
		     nacos_put_str(b, c) &&
		     nacos_put(b, ",\"healthChecker\":{\"type\":\"NONE\"},\"metadata\":{}}");
	}
	return ok && nacos_put(b, "]");
}

/* GET /service: the service's state and the clusters of its instances. */
void nacos_service_detail(struct nctx *x)
{
	struct store_svc_key sk;
	struct nacos_svc_state st;
	struct store_list_info info;
	struct store_str given = { 0 };
	struct buf *b = nacos_body(x);
	bool ok;
	int n;

	if (nacos_svc_of(x, &sk) < 0)
		return;
	epoch_enter(x->w->rec);
	for (;;) { /* the worker's scratch grows to the service, as for a list */
		n = store_list(x->w->srv->store, &sk, NULL, x->w->views, x->w->views_cap, &info);
		if (n < 0 || info.total <= (uint32_t)n || !nacos_views_grow(x->w, info.total))
			break;
	}
	if (n >= 0 && (nacos_service_state(x->w, &sk, &st) == 0 || n > 0)) {
		ok = nacos_put(b, "{\"name\":") && nacos_put_str(b, sk.service) &&
		     nacos_put(b, ",\"groupName\":") && nacos_put_str(b, sk.group) &&
		     nacos_put(b, ",\"namespaceId\":") && nacos_put_str(b, sk.ns) &&
		     nacos_put(b, ",\"protectThreshold\":") &&
		     json_put_double(b, st.threshold, NACOS_BODY_MAX) &&
		     nacos_put(b, ",\"metadata\":") && nacos_put_meta_of(b, st.meta) &&
		     nacos_put(b, ",\"selector\":{\"type\":\"none\"},\"clusters\":") &&
		     put_clusters(b, x->w->views, n) && nacos_put(b, "}");
		epoch_exit(x->w->rec);
		nacos_reply_json_or_500(x, b, ok);
		return;
	}
	epoch_exit(x->w->rec);
	if (n < 0) {
		nacos_reply_text(x, 400, err_str(n));
		return;
	}
	if (!nacos_param(x, "serviceName", &given))
		(void)nacos_param(x, "dom", &given);
	{
		char msg[700];

		snprintf(msg, sizeof(msg), "service not found, namespace: %.*s, serviceName: %.*s",
		         (int)sk.ns.len, sk.ns.p, (int)given.len, given.p ? given.p : "");
		nacos_reply_text(x, 400, msg);
	}
}
