/*
 * grpc_naming.c - the naming requests of the Nacos 2.x gRPC port
 * (docs/nacos.md, "gRPC", lists each and what distrod does with it).
 *
 * The bodies are the Jackson JSON of the Java request classes: namespace,
 * groupName, serviceName at the top, an `instance` (or `instances`) in
 * the shape of the v1 API's host JSON. They are decoded with the JSON
 * reader of the HTTP port (nacos/json.h) into the worker's scratch, and
 * answered with the Java response classes' JSON.
 *
 * Writes are the binary protocol's items, sent through ops_write and
 * answered when every item ran on its owner (grpc_write_done, grpc.c), the
 * unary stream waiting in a slot of the connection (struct gwait, at most
 * GRPC_WAITS_MAX at once). Ephemeral instances registered here are owned
 * by the connection (grpc.c: renewed while it lives, deregistered when it
 * ends); persistent ones (PersistentInstanceRequest) are not: they stay
 * until deregistered, as on the HTTP port with ephemeral=false.
 */
#include "server/grpc_internal.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/mem.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum naming_kind {
	NK_INSTANCE,
	NK_BATCH,
	NK_PERSISTENT,
	NK_QUERY,
	NK_SUBSCRIBE,
	NK_LIST,
};

static const struct {
	const char *request, *response;
	enum naming_kind kind;
} naming_types[] = {
	{ "InstanceRequest", "InstanceResponse", NK_INSTANCE },
	{ "BatchInstanceRequest", "BatchInstanceResponse", NK_BATCH },
	{ "PersistentInstanceRequest", "InstanceResponse", NK_PERSISTENT },
	{ "ServiceQueryRequest", "QueryServiceResponse", NK_QUERY },
	{ "SubscribeServiceRequest", "SubscribeServiceResponse", NK_SUBSCRIBE },
	{ "ServiceListRequest", "ServiceListResponse", NK_LIST },
};

#define NAMING_TYPES (sizeof(naming_types) / sizeof(naming_types[0]))

bool grpc_naming_type(struct store_str type)
{
	for (size_t i = 0; i < NAMING_TYPES; i++)
		if (nacos_str_eq(type, naming_types[i].request))
			return true;
	return false;
}

static void fail(struct greq *r, const char *rtype, int code, const char *msg)
{
	grpc_answer_fail(r->w, r->idx, r->stream, rtype, r->rid, code, msg);
}

/* namespace (default public), groupName (DEFAULT_GROUP), serviceName ("g@@s" also read). */
static int svc_of(struct greq *r, struct store_svc_key *sk)
{
	struct store_str ns, group, svc;

	if (!grpc_jstr(r, 0, "namespace", &ns) || ns.len == 0)
		ns = nacos_str_of(NACOS_DEFAULT_NS);
	if (!grpc_jstr(r, 0, "groupName", &group) || group.len == 0)
		group = nacos_str_of(NACOS_DEFAULT_GROUP);
	if (!grpc_jstr(r, 0, "serviceName", &svc) || svc.len == 0)
		return -ERR_NAME_EMPTY;
	for (uint32_t i = 0; i + 1 < svc.len; i++)
		if (svc.p[i] == '@' && svc.p[i + 1] == '@') {
			group = (struct store_str){ svc.p, i };
			svc = (struct store_str){ svc.p + i + 2, svc.len - i - 2 };
			break;
		}
	sk->ns = ns;
	sk->group = group;
	sk->service = svc;
	return 0;
}

/*
 * One instance object (tok) of the request into k, v: ip, port, weight,
 * healthy, enabled, clusterName, metadata (heartbeat timings read from it
 * as on the HTTP port). Metadata pairs go to the worker's kv array: the
 * instance must be encoded before the next one is decoded.
 */
static int inst_of(struct greq *r, int tok, const struct store_svc_key *sk, struct store_key *k,
                   struct store_val *v, const char **why)
{
	struct store_kv *kv = r->w->grpc->kv;
	struct store_str ip, cluster;
	const struct json_doc *d = &r->d;
	char ipz[64];
	int64_t port;
	double weight = 1.0;
	int t, n = 0;

	*why = "instance format invalid";
	if (tok < 0 || d->t[tok].type != JSMN_OBJECT)
		return -ERR_INVAL;
	store_val_default(v);
	k->svc = *sk;
	if (!grpc_jstr(r, tok, "ip", &ip) || ip.len == 0 || ip.len >= sizeof(ipz)) {
		*why = "instance ip is missing or invalid";
		return -ERR_ADDR;
	}
	t = json_obj_get(d, tok, "port");
	if (t < 0 || json_int(d, t, 1, 65535, &port) < 0) {
		*why = "instance port is missing or invalid";
		return -ERR_ADDR;
	}
	memcpy(ipz, ip.p, ip.len);
	ipz[ip.len] = '\0';
	if (addr_parse(ipz, (uint16_t)port, &k->addr) < 0) {
		*why = "instance ip is missing or invalid";
		return -ERR_ADDR;
	}
	t = json_obj_get(d, tok, "weight");
	if (t >= 0 && !json_is_null(d, t) &&
	    (json_double(d, t, &weight) < 0 || !(weight >= 0.0 && weight <= STORE_WEIGHT_MAX))) {
		*why = "instance format invalid: The weights range from 0.0 to 10000.0";
		return -ERR_WEIGHT;
	}
	v->weight_milli = (uint32_t)llround(weight * STORE_WEIGHT_SCALE);
	v->healthy = grpc_jbool(r, tok, "healthy", true);
	v->enabled = grpc_jbool(r, tok, "enabled", true);
	if (!grpc_jstr(r, tok, "clusterName", &cluster) || cluster.len == 0)
		cluster = nacos_str_of(NACOS_DEFAULT_CLUSTER);
	k->cluster = cluster;
	t = json_obj_get(d, tok, "metadata");
	if (t >= 0 && !json_is_null(d, t)) {
		int m, size;

		if (d->t[t].type != JSMN_OBJECT) {
			*why = "instance metadata is not an object";
			return -ERR_INVAL;
		}
		size = d->t[t].size;
		m = t + 1;
		for (int i = 0; i < size; i++) {
			char *at = r->w->grpc->scratch + r->scratch_used;
			int kl, vl, vt = m + 1;

			if (n >= NACOS_KV_MAX || d->t[vt].type == JSMN_OBJECT ||
			    d->t[vt].type == JSMN_ARRAY) {
				*why = "instance metadata: too many pairs, or a value not a string";
				return -ERR_META_PAIRS;
			}
			kl = json_str(d, m, at, GRPC_SCRATCH - r->scratch_used);
			if (kl < 0)
				return -ERR_TOO_BIG;
			r->scratch_used += (size_t)kl;
			kv[n].key = (struct store_str){ at, (uint32_t)kl };
			at += kl;
			if (json_is_null(d, vt)) {
				vl = 0;
			} else {
				vl = json_str(d, vt, at, GRPC_SCRATCH - r->scratch_used);
				if (vl < 0)
					return -ERR_TOO_BIG;
			}
			r->scratch_used += (size_t)vl;
			kv[n].val = (struct store_str){ at, (uint32_t)vl };
			n++;
			m = json_next(d, vt);
		}
	}
	v->meta = kv;
	v->meta_n = (uint32_t)n;
	nacos_timing_of(v);
	return 0;
}

/* The wire items of one instance, as a connection keeps them (NULL: too big, or memory). */
static struct ginst *ginst_of(struct worker *w, const struct store_svc_key *sk,
                              const struct store_key *k, const struct store_val *v)
{
	uint8_t *tmp = w->grpc->frame;
	struct proto_wr wr;
	uint32_t il;
	struct ginst *g;

	proto_wr_init(&wr, tmp, NACOS_ITEM_BYTES);
	proto_wr_instance(&wr, k, v);
	if (wr.overflow)
		return NULL;
	il = (uint32_t)(wr.p - tmp);
	proto_wr_init(&wr, tmp + il, NACOS_ITEM_BYTES);
	proto_wr_key(&wr, k);
	if (wr.overflow)
		return NULL;
	g = mem_alloc(sizeof(*g) + il + (size_t)(wr.p - (tmp + il)));
	if (g == NULL)
		return NULL;
	g->next = NULL;
	g->svc_hash = grpc_svc_hash(sk);
	g->addr = k->addr;
	g->interval_ms = v->timing.interval_ms;
	g->inst_len = il;
	g->key_len = (uint32_t)(wr.p - (tmp + il));
	memcpy(g->bytes, tmp, il + g->key_len);
	return g;
}

static void free_chain(struct ginst *x)
{
	while (x) {
		struct ginst *n = x->next;

		mem_free(x);
		x = n;
	}
}

/*
 * Sends the chain's items (grpc_item_put) as a frame of op, answered to
 * tag. A chain over NACOS_BATCH_MAX items or NACOS_FRAME_BYTES (the drops
 * of several superseded publishes) goes in several frames: the first
 * carries the tag, the rest are answered to nobody (GW_DROP).
 */
static void send_chain(struct greq *r, uint8_t op, struct ginst *chain, uint32_t tag)
{
	uint8_t *frame = r->w->grpc->frame;
	struct ginst *x = chain;

	while (x) {
		struct proto_header h = { .op = op, .request_id = tag };
		size_t len = 0;

		for (; x && h.count < NACOS_BATCH_MAX; x = x->next) {
			if (len + grpc_item_len(op, x) > NACOS_FRAME_BYTES)
				break;
			len += grpc_item_put(frame + len, r->g, op, x);
			h.count++;
		}
		if (h.count == 0)
			break; /* cannot happen: an item is at most NACOS_ITEM_BYTES */
		h.body_len = (uint32_t)len;
		ops_write(r->w, r->idx, &h, frame);
		tag = grpc_tag(GW_DROP, 0);
	}
}

/*
 * Publishes chain (count instances of the service sk, ephemeral, owned by
 * the connection once written) as the connection's whole set of that
 * service, as Nacos keeps one publication per connection and service (a
 * second register of the service replaces the first, a batch replaces
 * the set): what the connection had of the service and chain leaves out
 * is deregistered first. Answered with rtype (op_type its "type").
 */
static void publish(struct greq *r, const char *rtype, const char *op_type,
                    const struct store_svc_key *sk, struct ginst *chain, uint32_t count)
{
	struct gconn *g = r->g;
	struct ginst *drops = NULL;
	uint32_t ndrop = 0, same = 0, pending = 0;
	uint64_t h = grpc_svc_hash(sk);
	int slot;

	for (struct ginst *x = g->insts; x; x = x->next)
		same += x->svc_hash == h;
	/*
	 * Pending publishes of other services count against the bound (those
	 * of this service are superseded below): they become the
	 * connection's when answered.
	 */
	for (uint32_t i = 0; i < GRPC_WAITS_MAX; i++)
		if (g->waits[i].used && g->waits[i].publish && g->waits[i].svc_hash != h)
			for (struct ginst *x = g->waits[i].insts; x; x = x->next)
				pending++;
	if (g->insts_n - same + pending + count > GRPC_INSTS_MAX) {
		free_chain(chain);
		fail(r, rtype, 503, "too many instances on this connection");
		return;
	}
	slot = grpc_wait_new(r, rtype);
	if (slot < 0) {
		free_chain(chain);
		fail(r, rtype, 503, "too many requests in flight on this connection");
		return;
	}
	/*
	 * Publishes of the service still waiting for their answer are
	 * superseded: what this one leaves out of theirs is deregistered
	 * (after their register, on the same path), and they no longer
	 * replace anything when answered, so a later answer of the older one
	 * cannot undo this one.
	 */
	for (uint32_t i = 0; i < GRPC_WAITS_MAX; i++) {
		struct gwait *p = &g->waits[i];

		if (!p->used || !p->publish || p->svc_hash != h || (int)i == slot)
			continue;
		while (p->insts) {
			struct ginst *x = p->insts;
			bool kept = false;

			p->insts = x->next;
			for (struct ginst *n = chain; n && !kept; n = n->next)
				kept = n->key_len == x->key_len &&
				       memcmp(n->bytes + n->inst_len, x->bytes + x->inst_len,
				              x->key_len) == 0;
			if (kept) {
				mem_free(x);
			} else {
				x->next = drops;
				drops = x;
				ndrop++;
			}
		}
		p->publish = false;
	}
	for (struct ginst **pp = &g->insts; *pp;) {
		struct ginst *x = *pp;
		bool kept = false;

		if (x->svc_hash == h)
			for (struct ginst *n = chain; n && !kept; n = n->next)
				kept = n->key_len == x->key_len &&
				       memcmp(n->bytes + n->inst_len, x->bytes + x->inst_len,
				              x->key_len) == 0;
		if (x->svc_hash == h && !kept) {
			*pp = x->next;
			x->next = drops;
			drops = x;
			g->insts_n--;
			ndrop++;
		} else {
			pp = &x->next;
		}
	}
	if (drops)
		send_chain(r, OP_RELEASE, drops, grpc_tag(GW_DROP, 0));
	free_chain(drops);
	g->waits[slot].insts = chain;
	g->waits[slot].publish = true;
	g->waits[slot].svc_hash = h;
	g->waits[slot].op_type = op_type;
	if (count == 0) { /* an empty batch: nothing to write, answered at once */
		struct proto_header ph = { .op = OP_REGISTER,
			                   .request_id = grpc_tag(GW_ANSWER, (uint32_t)slot) };

		grpc_write_done(r->w, r->idx, &ph, NULL);
		return;
	}
	send_chain(r, OP_HOLD, chain, grpc_tag(GW_ANSWER, (uint32_t)slot));
}

/*
 * A deregister of the connection's: the instances it published of the
 * service at that ip and port (the client sends its own idea of the other
 * fields, the cluster among them), or the instance as named when it has
 * none there. A RELEASE under the connection's holder id, as Nacos
 * removes only that connection's publication: an instance another
 * connection holds stays; one nobody holds (the HTTP API's, or another
 * connection's whose lease ran out) is deleted.
 */
static void unpublish(struct greq *r, const char *rtype, struct ginst *named)
{
	struct gconn *g = r->g;
	struct ginst *drops = NULL;
	uint32_t ndrop = 0;
	int slot = grpc_wait_new(r, rtype);

	if (slot < 0) {
		mem_free(named);
		fail(r, rtype, 503, "too many requests in flight on this connection");
		return;
	}
	for (struct ginst **pp = &g->insts; *pp;) {
		struct ginst *x = *pp;

		if (x->svc_hash == named->svc_hash &&
		    memcmp(&x->addr, &named->addr, sizeof(x->addr)) == 0) {
			*pp = x->next;
			x->next = drops;
			drops = x;
			g->insts_n--;
			ndrop++;
		} else {
			pp = &x->next;
		}
	}
	/*
	 * A register of it still pending (pipelined before this deregister)
	 * must not be adopted when answered, or the renewals would bring the
	 * instance back: it leaves the pending set, and this deregister,
	 * sent after that register on the same path, removes it.
	 */
	for (uint32_t i = 0; i < GRPC_WAITS_MAX; i++) {
		struct gwait *p = &g->waits[i];

		if (!p->used || !p->publish || p->svc_hash != named->svc_hash)
			continue;
		for (struct ginst **pp = &p->insts; *pp;) {
			struct ginst *x = *pp;

			if (memcmp(&x->addr, &named->addr, sizeof(x->addr)) == 0) {
				*pp = x->next;
				x->next = drops;
				drops = x;
				ndrop++;
			} else {
				pp = &x->next;
			}
		}
	}
	g->waits[slot].op_type = "deregisterInstance";
	if (drops == NULL) {
		drops = named;
		ndrop = 1;
	} else {
		mem_free(named);
	}
	send_chain(r, OP_RELEASE, drops, grpc_tag(GW_ANSWER, (uint32_t)slot));
	free_chain(drops);
}

/* InstanceRequest and PersistentInstanceRequest: register or deregister one instance. */
static void instance(struct greq *r, const char *rtype, bool ephemeral)
{
	struct store_svc_key sk;
	struct store_key k;
	struct store_val v;
	struct store_str op;
	struct ginst *gi;
	const char *why;
	bool reg;
	int slot, rc;

	if (svc_of(r, &sk) < 0) {
		fail(r, rtype, 400, "Param 'serviceName' is illegal, it can't be empty");
		return;
	}
	if (!grpc_jstr(r, 0, "type", &op) ||
	    !(nacos_str_eq(op, "registerInstance") || nacos_str_eq(op, "deregisterInstance"))) {
		fail(r, rtype, 400,
		     "unsupported request type: need registerInstance or "
		     "deregisterInstance");
		return;
	}
	reg = nacos_str_eq(op, "registerInstance");
	rc = inst_of(r, json_obj_get(&r->d, 0, "instance"), &sk, &k, &v, &why);
	if (rc < 0) {
		fail(r, rtype, 400, why);
		return;
	}
	v.ephemeral = ephemeral;
	gi = ginst_of(r->w, &sk, &k, &v);
	if (gi == NULL) {
		fail(r, rtype, 400, "instance too large");
		return;
	}
	if (ephemeral && reg) {
		publish(r, rtype, "registerInstance", &sk, gi, 1);
		return;
	}
	if (ephemeral) {
		unpublish(r, rtype, gi);
		return;
	}
	/* Persistent: the connection does not own it; it stays until deregistered. */
	slot = grpc_wait_new(r, rtype);
	if (slot < 0) {
		mem_free(gi);
		fail(r, rtype, 503, "too many requests in flight on this connection");
		return;
	}
	r->g->waits[slot].op_type = reg ? "registerInstance" : "deregisterInstance";
	send_chain(r, reg ? OP_REGISTER : OP_DEREGISTER, gi, grpc_tag(GW_ANSWER, (uint32_t)slot));
	mem_free(gi);
}

/* BatchInstanceRequest (batchRegisterInstance): the connection's set of the service. */
static void batch(struct greq *r, const char *rtype)
{
	struct store_svc_key sk;
	struct ginst *chain = NULL, **tail = &chain;
	struct store_str op;
	uint32_t count = 0;
	size_t bytes = 0;
	int arr, t;

	if (svc_of(r, &sk) < 0) {
		fail(r, rtype, 400, "Param 'serviceName' is illegal, it can't be empty");
		return;
	}
	if (!grpc_jstr(r, 0, "type", &op) || !nacos_str_eq(op, "batchRegisterInstance")) {
		fail(r, rtype, 400, "unsupported request type: need batchRegisterInstance");
		return;
	}
	arr = json_obj_get(&r->d, 0, "instances");
	if (arr < 0 || r->d.t[arr].type != JSMN_ARRAY) {
		fail(r, rtype, 400, "instances is not an array");
		return;
	}
	t = arr + 1;
	for (int i = 0; i < r->d.t[arr].size; i++, t = json_next(&r->d, t)) {
		struct store_key k;
		struct store_val v;
		const char *why;
		struct ginst *gi;

		if (inst_of(r, t, &sk, &k, &v, &why) < 0) {
			free_chain(chain);
			fail(r, rtype, 400, why);
			return;
		}
		v.ephemeral = true;
		gi = ginst_of(r->w, &sk, &k, &v);
		if (gi == NULL || count >= NACOS_BATCH_MAX ||
		    bytes + gi->inst_len + gi->key_len > NACOS_FRAME_BYTES) {
			mem_free(gi);
			free_chain(chain);
			fail(r, rtype, 400, "batch too large");
			return;
		}
		/* The same instance twice in a batch is one. */
		bool dup = false;

		for (struct ginst *n = chain; n && !dup; n = n->next)
			dup = n->key_len == gi->key_len &&
			      memcmp(n->bytes + n->inst_len, gi->bytes + gi->inst_len,
			             gi->key_len) == 0;
		if (dup) {
			mem_free(gi);
			continue;
		}
		bytes += gi->inst_len + gi->key_len;
		*tail = gi;
		tail = &gi->next;
		count++;
	}
	publish(r, rtype, "batchRegisterInstance", &sk, chain, count);
}

/* {head,"serviceInfo":{...}} of type for the service, as the store holds it now. */
static void answer_service(struct greq *r, const char *rtype, const struct store_svc_key *sk,
                           struct store_str clusters, bool healthy_only)
{
	struct buf *b = grpc_body(r->w);
	int rc;

	if (!grpc_put_head(b, r->rid) || !grpc_put(b, ",\"serviceInfo\":")) {
		fail(r, rtype, 500, "answer too large");
		return;
	}
	epoch_enter(r->w->rec);
	rc = nacos_render_service(r->w, sk, clusters, healthy_only, true, b, NULL);
	epoch_exit(r->w->rec);
	if (rc < 0 || !grpc_put(b, "}")) {
		fail(r, rtype, 500, "answer too large");
		return;
	}
	grpc_answer(r->w, r->idx, r->stream, rtype);
}

static void query(struct greq *r, const char *rtype)
{
	struct store_svc_key sk;
	struct store_str clusters = { "", 0 };

	if (svc_of(r, &sk) < 0) {
		fail(r, rtype, 400, "Param 'serviceName' is illegal, it can't be empty");
		return;
	}
	/* Java sends "cluster", Go "clusters" */
	if (!grpc_jstr(r, 0, "cluster", &clusters))
		(void)grpc_jstr(r, 0, "clusters", &clusters);
	answer_service(r, rtype, &sk, clusters, grpc_jbool(r, 0, "healthyOnly", false));
}

static void subscribe(struct greq *r, const char *rtype)
{
	struct store_svc_key sk;
	struct store_str clusters = { "", 0 };
	int rc;

	if (svc_of(r, &sk) < 0) {
		fail(r, rtype, 400, "Param 'serviceName' is illegal, it can't be empty");
		return;
	}
	(void)grpc_jstr(r, 0, "clusters", &clusters);
	if (grpc_jbool(r, 0, "subscribe", true)) {
		rc = subs_grpc_add(r->w, r->idx, &sk);
		if (rc < 0) {
			fail(r, rtype, 503, err_str(rc));
			return;
		}
	} else {
		subs_grpc_remove(r->w, r->idx, &sk);
	}
	answer_service(r, rtype, &sk, clusters, false);
}

struct list_page {
	struct buf *b;
	int64_t skip, take;
	uint64_t count;
	bool ok;
};

static bool list_one(void *ctx, const struct store_svc_view *v)
{
	struct list_page *pg = ctx;

	if (pg->count >= (uint64_t)pg->skip && pg->count < (uint64_t)(pg->skip + pg->take) &&
	    pg->ok)
		pg->ok = (pg->count == (uint64_t)pg->skip || grpc_put(pg->b, ",")) &&
		         json_put_str(pg->b, v->service.p, v->service.len, NACOS_BODY_MAX);
	pg->count++;
	return true;
}

/* ServiceListRequest: {count, serviceNames of the page} of a namespace and group. */
static void service_list(struct greq *r, const char *rtype)
{
	struct list_page pg = { .b = grpc_body(r->w), .ok = true };
	struct store_str ns, group;
	int64_t page_no = 1, page_size = 10;
	char count[24];
	int t;

	if (!grpc_jstr(r, 0, "namespace", &ns) || ns.len == 0)
		ns = nacos_str_of(NACOS_DEFAULT_NS);
	if (!grpc_jstr(r, 0, "groupName", &group) || group.len == 0)
		group = nacos_str_of(NACOS_DEFAULT_GROUP);
	if ((t = json_obj_get(&r->d, 0, "pageNo")) >= 0 &&
	    json_int(&r->d, t, INT32_MIN, INT32_MAX, &page_no) < 0) {
		fail(r, rtype, 400, "Param 'pageNo' is invalid.");
		return;
	}
	if ((t = json_obj_get(&r->d, 0, "pageSize")) >= 0 &&
	    json_int(&r->d, t, 0, 100000, &page_size) < 0) {
		fail(r, rtype, 400, "Param 'pageSize' is invalid.");
		return;
	}
	if (page_no < 1)
		page_no = 1;
	pg.skip = (page_no - 1) * page_size;
	pg.take = page_size;
	pg.ok = grpc_put_head(pg.b, r->rid) && grpc_put(pg.b, ",\"serviceNames\":[");
	epoch_enter(r->w->rec);
	store_services(r->w->srv->store, ns, nacos_str_eq(group, "*") ? NULL : &group, list_one,
	               &pg);
	epoch_exit(r->w->rec);
	snprintf(count, sizeof(count), "%llu", (unsigned long long)pg.count);
	if (!(pg.ok && grpc_put(pg.b, "],\"count\":") && grpc_put(pg.b, count) &&
	      grpc_put(pg.b, "}"))) {
		fail(r, rtype, 500, "answer too large");
		return;
	}
	grpc_answer(r->w, r->idx, r->stream, rtype);
}

/* --auth-users: the request's accessToken (a metadata header, or in the body's headers). */
static bool authorized(struct greq *r, const char *rtype)
{
	struct store_str tok = { NULL, 0 };
	struct nauth_id who;
	int rc, hdrs;

	if (r->w->srv->auth == NULL)
		return true;
	if (!payload_header(&r->pl, "accessToken", &tok) &&
	    (hdrs = json_obj_get(&r->d, 0, "headers")) >= 0)
		(void)grpc_jstr(r, hdrs, "accessToken", &tok);
	if (tok.p == NULL || tok.len == 0) {
		WSTAT_INC(r->w, auth_refused);
		fail(r, rtype, 403, "user not found!");
		return false;
	}
	rc = nauth_verify(r->w->srv->auth, tok.p, tok.len, clock_wall_ms(NULL), &who);
	if (rc < 0) {
		WSTAT_INC(r->w, auth_refused);
		fail(r, rtype, 403,
		     rc == -ERR_AUTH_TOKEN_EXPIRED ? "token expired!" : "token invalid!");
		return false;
	}
	WSTAT_INC(r->w, auth_ok);
	return true;
}

void grpc_naming(struct greq *r, struct store_str type)
{
	for (size_t i = 0; i < NAMING_TYPES; i++) {
		const char *rtype = naming_types[i].response;

		if (!nacos_str_eq(type, naming_types[i].request))
			continue;
		if (!authorized(r, rtype))
			return;
		switch (naming_types[i].kind) {
		case NK_INSTANCE:
			instance(r, rtype, true);
			break;
		case NK_PERSISTENT:
			instance(r, rtype, false);
			break;
		case NK_BATCH:
			batch(r, rtype);
			break;
		case NK_QUERY:
			query(r, rtype);
			break;
		case NK_SUBSCRIBE:
			subscribe(r, rtype);
			break;
		case NK_LIST:
			service_list(r, rtype);
			break;
		}
		return;
	}
}
