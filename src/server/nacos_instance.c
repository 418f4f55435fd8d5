/*
 * nacos_instance.c - the instance writes of the Nacos API: register,
 * deregister, update, patch, beat, health, and the instance detail.
 *
 * A write becomes one item of the binary protocol and takes its path
 * (nacos_write), so it is routed, forwarded and replicated like any binary
 * write and answered (nacos_write_answer) when the owner has run it.
 * Writes that change part of an instance (PATCH, PUT /health/instance, a
 * beat without a body, a metadata batch) start from the instance as this
 * node holds it. A metadata batch writes all its instances in one frame
 * of many items, answered once when every item has run on its owner.
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

/* ---- instance writes ---- */

static void instance_write(struct nctx *x, bool update)
{
	struct store_key k;
	struct store_val v;

	if (nacos_key_of(x, &k) < 0 || nacos_val_of(x, &v) < 0)
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

void nacos_instance_deregister(struct nctx *x)
{
	struct store_key k;

	if (nacos_key_of(x, &k) < 0)
		return;
	nacos_write(x, OP_DEREGISTER, nw_tag(NW_DEREGISTER, 0), &k, NULL);
}

/* PATCH /instance: the given fields over the instance as this node has it. */
void nacos_instance_patch(struct nctx *x)
{
	struct store_key k;
	struct store_val v;
	struct store_str s;
	bool given;
	int err = 0, rc;

	if (nacos_key_of(x, &k) < 0)
		return;
	rc = nacos_instance_read(x, &k, &v);
	if (rc < 0) {
		nacos_reply_text(x, 404, "instance not found");
		return;
	}
	if (nacos_param(x, "weight", &s) && nacos_weight_of(x, 1.0, &v.weight_milli) < 0)
		return;
	v.healthy = form_get_bool(&x->form, "healthy", v.healthy, &err);
	v.enabled = form_get_bool(&x->form, "enabled", v.enabled, &err);
	if (err) {
		nacos_reply_text(x, 400, "Param 'healthy' or 'enabled' is not a boolean.");
		return;
	}
	if (nacos_meta_of(x, &v, &given) < 0)
		return;
	if (given)
		nacos_timing_of(&v);
	nacos_write(x, OP_REGISTER, nw_tag(NW_REGISTER, 0), &k, &v);
}

/* GET /instance */
void nacos_instance_detail(struct nctx *x)
{
	struct store_key k;
	struct store_view sv;
	struct buf *b = nacos_body(x);
	char ip[64];
	bool ok;
	int rc;

	if (nacos_key_of(x, &k) < 0)
		return;
	epoch_enter(x->w->rec);
	rc = store_get(x->w->srv->store, &k, &sv);
	ok = rc == 0;
	if (ok) {
		addr_format(&sv.addr, ip, sizeof(ip));
		ok = nacos_put(b, "{\"service\":") && nacos_put_grouped(b, &k.svc) &&
		     nacos_put(b, ",\"ip\":") && json_put_str(b, ip, strlen(ip), NACOS_BODY_MAX) &&
		     nacos_put(b, ",\"port\":") && json_put_u64(b, sv.addr.port, NACOS_BODY_MAX) &&
		     nacos_put(b, ",\"clusterName\":") && nacos_put_str(b, sv.cluster) &&
		     nacos_put(b, ",\"weight\":") &&
		     json_put_double(b, nacos_weight_double(sv.weight_milli), NACOS_BODY_MAX) &&
		     nacos_put(b, ",\"healthy\":") &&
		     json_put_bool(b, sv.flags & STORE_F_HEALTHY, NACOS_BODY_MAX) &&
		     nacos_put(b, ",\"enabled\":") &&
		     json_put_bool(b, sv.flags & STORE_F_ENABLED, NACOS_BODY_MAX) &&
		     nacos_put(b, ",\"ephemeral\":") &&
		     json_put_bool(b, sv.flags & STORE_F_EPHEMERAL, NACOS_BODY_MAX) &&
		     nacos_put(b, ",\"instanceId\":") && nacos_put_instance_id(b, &sv, ip) &&
		     nacos_put(b, ",\"metadata\":") && nacos_put_meta_of(b, sv.meta) &&
		     nacos_put(b, "}");
	}
	epoch_exit(x->w->rec);
	if (rc < 0)
		nacos_reply_text(x, 404, "no matched ip found!");
	else
		nacos_reply_json_or_500(x, b, ok);
}

/*
 * PUT /instance/beat. With a beat body the instance is renewed, or
 * re-created from the body when this cluster lost it (a client's beats
 * heal any loss). Without one, an instance this node does not know is
 * answered code 20404 (Java 1.x clients then register again).
 */
void nacos_instance_beat(struct nctx *x)
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
	if (nacos_param(x, "beat", &s)) {
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
	if (nacos_svc_of_or(x, &k.svc, beat.service) < 0)
		return;
	if (nacos_port_param(x, &port) < 0)
		return;
	(void)nacos_param(x, "ip", &ip);
	if (beat.ip.p && beat.ip.len)
		ip = beat.ip;
	if (beat.port > 0)
		port = beat.port;
	if (nacos_cluster_of(x, &k.cluster) < 0)
		return;
	if (beat.cluster.p && beat.cluster.len) {
		if (!nacos_cluster_name_ok(beat.cluster)) {
			nacos_reply_text(x, 400,
			                 "beat cluster is illegal, it should match "
			                 "[0-9a-zA-Z-_]+");
			return;
		}
		k.cluster = beat.cluster;
	}
	if (nacos_addr_of(x, ip, port, &k.addr) < 0)
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
		nacos_timing_of(&v);
	} else {
		rc = nacos_instance_read(x, &k, &v);
		if (rc < 0) {
			static const char unknown[] =
			        "{\"clientBeatInterval\":5000,\"code\":20404}";

			nacos_reply(x, 200, NACOS_JSON_CT, unknown, sizeof(unknown) - 1);
			return;
		}
	}
	interval = v.timing.interval_ms ? v.timing.interval_ms : NACOS_BEAT_INTERVAL_MS;
	nacos_write(x, OP_HEARTBEAT, nw_tag(NW_BEAT, interval), &k, &v);
}

/* ---- metadata batch ---- */

/*
 * The given pairs merged into v's metadata (v->meta is the worker's kv
 * array, as nacos_val_from_view leaves it): PUT sets each key, DELETE
 * removes each key (values ignored). The order of the other keys stays.
 * 0, or -ERR_META_PAIRS when the result would exceed NACOS_KV_MAX pairs.
 */
static int meta_merge(struct store_val *v, struct store_kv *kv, const struct store_kv *given,
                      uint32_t n, bool remove)
{
	uint32_t m = v->meta_n;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t j = 0;

		while (j < m && !(kv[j].key.len == given[i].key.len &&
		                  memcmp(kv[j].key.p, given[i].key.p, given[i].key.len) == 0))
			j++;
		if (remove) {
			if (j < m) {
				memmove(&kv[j], &kv[j + 1], sizeof(kv[0]) * (m - j - 1));
				m--;
			}
		} else if (j < m) {
			kv[j].val = given[i].val;
		} else {
			if (m == NACOS_KV_MAX)
				return -ERR_META_PAIRS;
			kv[m++] = given[i];
		}
	}
	v->meta = kv;
	v->meta_n = m;
	nacos_timing_of(v); /* the preserved.* keys may have changed */
	return 0;
}

/* Adds the instance k, whose value is v, with the pairs merged. 0 or -1 after answering. */
static int batch_add(struct nctx *x, struct nacos_frame *f, const struct store_key *k,
                     struct store_val *v, uint32_t meta_n, bool remove)
{
	struct nacos_worker *nw = x->w->nacos;
	char msg[160];

	if (meta_merge(v, nw->kv, nw->batch_kv, meta_n, remove) < 0) {
		snprintf(msg, sizeof(msg), "metadata of an instance would exceed %u keys",
		         NACOS_KV_MAX);
		nacos_reply_text(x, 400, msg);
		return -1;
	}
	if (nacos_frame_add(f, k, v) < 0) {
		snprintf(msg, sizeof(msg),
		         "metadata batch too large: at most %u instances, %u bytes encoded",
		         NACOS_BATCH_MAX, NACOS_FRAME_BYTES);
		nacos_reply_text(x, 413, msg);
		return -1;
	}
	return 0;
}

/*
 * consistencyType: every instance of that kind (ephemeral or persistent)
 * this node holds of the service, disabled ones included. 0 or -1 after
 * answering.
 */
static int batch_of_kind(struct nctx *x, struct nacos_frame *f, const struct store_svc_key *sk,
                         bool ephemeral, uint32_t meta_n, bool remove)
{
	struct worker *w = x->w;
	struct store_filter flt = { .enabled_only = false };
	struct store_list_info info;
	int n, rc = 0;

	epoch_enter(w->rec);
	for (;;) {
		n = store_list(w->srv->store, sk, &flt, w->views, w->views_cap, &info);
		if (n < 0 || info.total <= (uint32_t)n || !nacos_views_grow(w, info.total))
			break;
	}
	for (int i = 0; i < n && rc == 0; i++) {
		const struct store_view *sv = &w->views[i];
		struct store_key k = { .svc = *sk, .cluster = sv->cluster, .addr = sv->addr };
		struct store_val v;

		if (!(sv->flags & STORE_F_EPHEMERAL) != !ephemeral)
			continue;
		/* Inside the epoch: the key's strings are the store's until the item is encoded. */
		nacos_val_from_view(w, sv, &v);
		rc = batch_add(x, f, &k, &v, meta_n, remove);
	}
	epoch_exit(w->rec);
	if (rc == 0 && n >= 0 && info.total > (uint32_t)n) {
		nacos_reply_text(x, 503, "the service has more instances than this node can list");
		return -1;
	}
	return rc;
}

/*
 * instances: [{"ip","port","clusterName"}, ...], each as this node holds
 * it; instances it does not hold are left out (Nacos skips them too), a
 * repeated one counts once. 0 or -1 after answering.
 */
static int batch_of_list(struct nctx *x, struct nacos_frame *f, const struct store_svc_key *sk,
                         struct store_str list, uint32_t meta_n, bool remove)
{
	struct nacos_worker *nw = x->w->nacos;
	size_t half = nw->batch_cap / 2;
	char msg[160];
	int n;

	n = json_parse_instances(list.p, list.len, nw->inst, NACOS_BATCH_MAX, nw->batch_buf + half,
	                         half);
	if (n < 0) {
		nacos_reply_text(
		        x, 400,
		        n == -ERR_TOO_BIG
		                ? "Param 'instances' is too large (at most 512 JSON tokens)"
		                : "Param 'instances' is not a JSON list of "
		                  "{\"ip\",\"port\",\"clusterName\"} objects");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const struct json_inst *in = &nw->inst[i];
		struct store_key *k = &nw->keys[i];
		struct store_val v;
		char ip[64];
		bool seen = false;

		k->svc = *sk;
		k->cluster = in->cluster.p && in->cluster.len ? in->cluster
		                                              : nacos_str_of(NACOS_DEFAULT_CLUSTER);
		if (in->ip.p == NULL || in->ip.len == 0 || in->ip.len >= sizeof(ip) ||
		    in->port < 1 || in->port > 65535 || !nacos_cluster_name_ok(k->cluster)) {
			snprintf(msg, sizeof(msg),
			         "Param 'instances': element %d needs an ip, a port 1..65535 and a "
			         "clusterName matching [0-9a-zA-Z-_]+",
			         i);
			nacos_reply_text(x, 400, msg);
			return -1;
		}
		memcpy(ip, in->ip.p, in->ip.len);
		ip[in->ip.len] = '\0';
		if (addr_parse(ip, (uint16_t)in->port, &k->addr) < 0) {
			nacos_reply_400(x, "Param 'instances': bad ip '%s'", ip);
			return -1;
		}
		for (int j = 0; j < i && !seen; j++)
			seen = memcmp(&nw->keys[j].addr, &k->addr, sizeof(k->addr)) == 0 &&
			       nw->keys[j].cluster.len == k->cluster.len &&
			       memcmp(nw->keys[j].cluster.p, k->cluster.p, k->cluster.len) == 0;
		if (seen || nacos_instance_read(x, k, &v) < 0)
			continue;
		if (batch_add(x, f, k, &v, meta_n, remove) < 0)
			return -1;
	}
	return 0;
}

/*
 * PUT /instance/metadata/batch merges `metadata` into each instance's,
 * DELETE removes its keys. The instances: `consistencyType` (ephemeral or
 * persist: all of that kind) or else `instances`. Each instance is read
 * here, merged and written whole, all in one write frame (each item goes
 * to its own shard and owner); the answer, once every item is done, lists
 * them as Nacos does: {"updated":["ip:port:unknown:cluster:ephemeral"]}.
 * A write racing with the batch on another node can be overwritten by it
 * (as with PATCH): the batch writes what this node held plus the change.
 */
void nacos_instance_metadata_batch(struct nctx *x)
{
	struct nacos_worker *nw = x->w->nacos;
	bool remove = x->h->method == H1_DELETE;
	struct store_svc_key sk;
	struct store_str meta, kind, list;
	struct nacos_frame f;
	int n, rc;

	if (nacos_svc_of(x, &sk) < 0)
		return;
	if (!nacos_param(x, "metadata", &meta)) {
		nacos_reply_text(x, 400, "Param 'metadata' is required.");
		return;
	}
	n = json_parse_meta(meta.p, meta.len, nw->batch_kv, NACOS_KV_MAX, nw->batch_buf,
	                    nw->batch_cap / 2);
	if (n < 0) {
		nacos_reply_400(x, "metadata format incorrect:%s",
		                n == -ERR_INVAL ? " not a JSON object of strings" : " too large");
		return;
	}
	nacos_frame_init(x, &f, OP_REGISTER);
	if (nacos_param(x, "consistencyType", &kind)) {
		if (!nacos_str_eq(kind, "ephemeral") && !nacos_str_eq(kind, "persist")) {
			nacos_reply_text(
			        x, 400, "Param 'consistencyType' must be 'ephemeral' or 'persist'");
			return;
		}
		rc = batch_of_kind(x, &f, &sk, nacos_str_eq(kind, "ephemeral"), (uint32_t)n,
		                   remove);
	} else if (nacos_param(x, "instances", &list)) {
		rc = batch_of_list(x, &f, &sk, list, (uint32_t)n, remove);
	} else {
		nacos_reply_text(x, 400, "Param 'instances' or 'consistencyType' is required.");
		return;
	}
	if (rc < 0)
		return;
	if (f.count == 0) {
		static const char none[] = "{\"updated\":[]}";

		nacos_reply(x, 200, NACOS_JSON_CT, none, sizeof(none) - 1);
		return;
	}
	nacos_frame_send(x, &f, nw_tag(NW_META_BATCH, 0));
}

/* A batch's answer: every item listed, or the first failure's status when any failed. */
static int batch_answer(const struct proto_header *h, const uint8_t *body, const int16_t *results,
                        struct buf *b, uint16_t *status, const char **ctype)
{
	struct proto_rd r;
	uint32_t failed = 0;
	int first = 0;
	bool ok;

	for (uint32_t i = 0; i < h->count; i++)
		if (results[i] < 0 && failed++ == 0)
			first = results[i];
	if (failed) {
		/* Some items ran: a retry is safe, the batch is idempotent. */
		char msg[200];
		int n = snprintf(msg, sizeof(msg), "metadata of %u of %u instances not updated: %s",
		                 failed, h->count, err_str(first));

		*status = nacos_status_of(first);
		*ctype = "text/plain;charset=UTF-8";
		return json_put_raw(b, msg, (size_t)n, NACOS_BODY_MAX) ? 0 : -ERR_NOMEM;
	}
	*status = 200;
	*ctype = NACOS_JSON_CT;
	ok = nacos_put(b, "{\"updated\":[");
	proto_rd_init(&r, body, h->body_len);
	for (uint32_t i = 0; i < h->count && ok; i++) {
		struct store_key k;
		struct store_val v;
		char ip[64], tmp[160];
		int e, n;

		proto_rd_item(&r, h->op, &k, &v, NULL, 0, &e);
		addr_format(&k.addr, ip, sizeof(ip));
		n = snprintf(tmp, sizeof(tmp), "%s:%u:unknown:%.*s:%s", ip, k.addr.port,
		             (int)k.cluster.len, k.cluster.p,
		             v.ephemeral ? "ephemeral" : "persist");
		ok = n > 0 && (size_t)n < sizeof(tmp) && (i == 0 || nacos_put(b, ",")) &&
		     json_put_str(b, tmp, (size_t)n, NACOS_BODY_MAX);
	}
	ok = ok && nacos_put(b, "]}");
	return ok ? 0 : -ERR_NOMEM;
}

/* The answer of a write frame that has run (nacos.c calls it with the items' results). */
int nacos_write_answer(const struct proto_header *h, const uint8_t *body, const int16_t *results,
                       struct buf *b, uint16_t *status, const char **ctype)
{
	uint32_t tag = h->request_id;
	enum nacos_write_kind kind = (enum nacos_write_kind)(tag >> 24);
	int result = results[0];
	const char *msg;

	if (kind == NW_META_BATCH)
		return batch_answer(h, body, results, b, status, ctype);
	if (kind == NW_DEREGISTER && result == -ERR_NOT_FOUND)
		result = 0; /* Nacos answers ok for an absent instance */
	if (kind == NW_BEAT && result == -ERR_NOT_FOUND) {
		/* Deregistered, and a beat does not undo that: Nacos's 20404 (a 1.x client
		 * registers again). */
		static const char gone[] = "{\"clientBeatInterval\":5000,\"code\":20404}";

		*status = 200;
		*ctype = NACOS_JSON_CT;
		return json_put_raw(b, gone, sizeof(gone) - 1, NACOS_BODY_MAX) ? 0 : -ERR_NOMEM;
	}
	if (result < 0) {
		msg = err_str(result);
		*status = nacos_status_of(result);
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

		*ctype = NACOS_JSON_CT;
		return json_put_raw(b, tmp, (size_t)n, NACOS_BODY_MAX) ? 0 : -ERR_NOMEM;
	}
	*ctype = "text/plain;charset=UTF-8";
	return json_put_raw(b, "ok", 2, NACOS_BODY_MAX) ? 0 : -ERR_NOMEM;
}

/* PUT /health/instance: sets an instance's healthy flag (valid is the old name). */
void nacos_health_instance(struct nctx *x)
{
	struct store_key k;
	struct store_val v;
	struct store_str s;
	int err = 0, rc;
	bool healthy;

	if (nacos_key_of(x, &k) < 0)
		return;
	if (!nacos_param(x, "healthy", &s) && !nacos_param(x, "valid", &s)) {
		nacos_reply_text(x, 400, "Param 'healthy' is required.");
		return;
	}
	healthy = nacos_param(x, "healthy", &s) ? form_get_bool(&x->form, "healthy", true, &err)
	                                        : form_get_bool(&x->form, "valid", true, &err);
	if (err) {
		nacos_reply_text(x, 400, "Param 'healthy' is not a boolean.");
		return;
	}
	rc = nacos_instance_read(x, &k, &v);
	if (rc < 0) {
		nacos_reply_text(x, 400, "instance not found");
		return;
	}
	v.healthy = healthy;
	nacos_write(x, OP_REGISTER, nw_tag(NW_REGISTER, 0), &k, &v);
}

/* POST /instance */
void nacos_instance_register(struct nctx *x)
{
	instance_write(x, false);
}

/* PUT /instance: a register, for a service that exists */
void nacos_instance_update(struct nctx *x)
{
	instance_write(x, true);
}
