/*
 * nacos_instance.c - the instance writes of the Nacos API: register,
 * deregister, update, patch, beat, health, and the instance detail.
 *
 * A write becomes one item of the binary protocol and takes its path
 * (nacos_write), so it is routed, forwarded and replicated like any binary
 * write and answered (nacos_write_answer) when the owner has run it.
 * Writes that change part of an instance (PATCH, PUT /health/instance, a
 * beat without a body) start from the instance as this node holds it.
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
