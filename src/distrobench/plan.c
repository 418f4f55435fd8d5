/*
 * plan.c - instances, services and shares of a run (see plan.h).
 *
 * The arithmetic is on 64 bits so that i * services (2^26 * 2^20) and
 * j * instances cannot overflow. Timing of the instances: the server's
 * defaults, except list and subscribe populations, which carry a 24 h
 * timeout because nobody beats them during the run and a list whose
 * instances expire mid-run would report wrong sizes; heartbeat at a fixed
 * interval advertises that interval (timeout x3, removal x6).
 */
#include "distrobench/plan.h"

#include "core/err.h"
#include "core/mem.h"

#include <stdio.h>
#include <string.h>

#define LONG_TIMEOUT_MS  86400000u
#define LONG_INTERVAL_MS 60000u

int plan_init(struct plan *p, const struct bench_config *c)
{
	memset(p, 0, sizeof(*p));
	p->cfg = c;
	p->services = c->services;
	switch (c->workload) {
	case WL_LIST:
	case WL_SUBSCRIBE:
		p->block = c->list_size;
		p->population = c->services * c->list_size;
		p->setup = true;
		p->setup_per_target = true;
		p->timing =
		        (struct store_timing){ LONG_INTERVAL_MS, LONG_TIMEOUT_MS, LONG_TIMEOUT_MS };
		break;
	case WL_HEARTBEAT:
	case WL_MIX:
		p->population = c->instances;
		p->setup = true;
		if (c->interval_ms)
			p->timing = (struct store_timing){ c->interval_ms, 3 * c->interval_ms,
				                           6 * c->interval_ms };
		break;
	case WL_REGISTER:
	case WL_CHURN:
	case WL_COUNT:
		p->population = c->instances;
		break;
	case WL_PING:
		break;
	}
	p->names = mem_alloc((size_t)p->services * PLAN_NAME_MAX);
	p->name_len = mem_alloc(p->services);
	if (p->names == NULL || p->name_len == NULL) {
		plan_free(p);
		return -ERR_NOMEM;
	}
	for (uint32_t s = 0; s < p->services; s++) {
		char *n = p->names + (size_t)s * PLAN_NAME_MAX;
		int len;

		if (p->block)
			len = snprintf(n, PLAN_NAME_MAX, "%s-l%u-%u", c->prefix, p->block, s);
		else
			len = snprintf(n, PLAN_NAME_MAX, "%s-%ux%u-%u", c->prefix, c->instances,
			               c->services, s);
		p->name_len[s] = (uint8_t)len;
	}
	return 0;
}

void plan_free(struct plan *p)
{
	mem_free(p->names);
	mem_free(p->name_len);
	p->names = NULL;
	p->name_len = NULL;
}

uint32_t plan_service_of(const struct plan *p, uint32_t i)
{
	if (p->block)
		return i / p->block;
	return (uint32_t)((uint64_t)i * p->services / p->population);
}

/* The first instance i with service_of(i) >= s: ceil(s * N / S). */
static uint32_t first_of(const struct plan *p, uint32_t s)
{
	if (p->block)
		return s * p->block;
	return (uint32_t)(((uint64_t)s * p->population + p->services - 1) / p->services);
}

void plan_service_range(const struct plan *p, uint32_t s, uint32_t *lo, uint32_t *hi)
{
	*lo = first_of(p, s);
	*hi = first_of(p, s + 1);
}

void plan_addr(uint32_t i, struct addr *a)
{
	memset(a, 0, sizeof(*a));
	a->ip[10] = a->ip[11] = 0xff; /* IPv4-mapped */
	a->ip[12] = 198;
	a->ip[13] = (uint8_t)(18u + ((i >> 16) & 1u));
	a->ip[14] = (uint8_t)(i >> 8);
	a->ip[15] = (uint8_t)i;
	a->port = (uint16_t)(1024u + (i >> 17));
}

void plan_svc_key(const struct plan *p, uint32_t s, struct store_svc_key *k)
{
	k->ns = (struct store_str){ NULL, 0 };
	k->group = (struct store_str){ NULL, 0 };
	k->service = (struct store_str){ p->names + (size_t)s * PLAN_NAME_MAX, p->name_len[s] };
}

void plan_instance(const struct plan *p, uint32_t i, uint32_t weight_milli, struct store_key *k,
                   struct store_val *v)
{
	plan_svc_key(p, plan_service_of(p, i), &k->svc);
	k->cluster = (struct store_str){ NULL, 0 };
	plan_addr(i, &k->addr);
	store_val_default(v);
	v->weight_milli = weight_milli;
	v->timing = p->timing;
}

void plan_share(const struct plan *p, uint32_t j, uint32_t *lo, uint32_t *hi)
{
	uint64_t n = p->population, c = p->cfg->conns;

	*lo = (uint32_t)(j * n / c);
	*hi = (uint32_t)((j + 1) * n / c);
}

/* Connection j of conns (round-robin over the targets): its part of the per-target population. */
static void per_target_share(const struct plan *p, uint32_t j, uint32_t conns, uint32_t *lo,
                             uint32_t *hi)
{
	uint64_t n = p->population, t = p->cfg->targets_n, g = j % t, r = j / t;
	/* Connections g, g + t, g + 2t, ... serve target g. */
	uint64_t cg = (conns - g + t - 1) / t;

	*lo = (uint32_t)(r * n / cg);
	*hi = (uint32_t)((r + 1) * n / cg);
}

bool plan_setup_by_writers(const struct plan *p)
{
	return p->cfg->proto == PROTO_GRPC && p->setup;
}

void plan_writer_setup_share(const struct plan *p, uint32_t w, uint32_t *lo, uint32_t *hi)
{
	if (!plan_setup_by_writers(p)) {
		*lo = *hi = 0;
		return;
	}
	per_target_share(p, w, plan_writers(p), lo, hi);
}

void plan_setup_share(const struct plan *p, uint32_t j, uint32_t *lo, uint32_t *hi)
{

	if (!p->setup || plan_setup_by_writers(p)) {
		*lo = *hi = 0;
		return;
	}
	if (!p->setup_per_target) {
		plan_share(p, j, lo, hi);
		return;
	}
	per_target_share(p, j, p->cfg->conns, lo, hi);
}

static uint32_t frame_items(const struct plan *p, uint32_t j)
{
	uint32_t lo, hi;

	plan_share(p, j, &lo, &hi);
	return hi - lo < p->cfg->batch ? hi - lo : p->cfg->batch;
}

double plan_period_ns(const struct plan *p, uint32_t j)
{
	const struct bench_config *c = p->cfg;
	double per_frame, rate_conn;
	uint32_t lo, hi, b;

	if (c->workload == WL_HEARTBEAT && c->interval_ms) {
		plan_share(p, j, &lo, &hi);
		b = frame_items(p, j);
		/* own instances beat once per interval: own / interval items per ms. */
		return (double)c->interval_ms * 1e6 * b / (double)(hi - lo);
	}
	if (c->rate <= 0)
		return 0;
	switch (c->workload) {
	case WL_LIST:
	case WL_PING:
		per_frame = 1;
		break;
	case WL_MIX:
		b = frame_items(p, j);
		per_frame =
		        ((double)c->mix[MIX_REGISTER] * b + (double)c->mix[MIX_HEARTBEAT] * b +
		         (double)c->mix[MIX_LIST]) /
		        ((double)c->mix[MIX_REGISTER] + c->mix[MIX_HEARTBEAT] + c->mix[MIX_LIST]);
		break;
	default:
		per_frame = frame_items(p, j);
		break;
	}
	rate_conn = c->rate / c->conns;
	return per_frame / rate_conn * 1e9;
}

uint32_t plan_writers(const struct plan *p)
{
	return p->cfg->threads * p->cfg->targets_n;
}

uint32_t plan_writer_services(const struct plan *p, uint32_t w)
{
	uint32_t n = plan_writers(p);

	/* Services w, w + n, w + 2n, ... below services. */
	return w < p->services ? (p->services - w + n - 1) / n : 0;
}

double plan_writer_period_ns(const struct plan *p, uint32_t w)
{
	uint32_t own = plan_writer_services(p, w);

	if (own == 0 || p->cfg->rate <= 0)
		return 0;
	/* Each writer gets the share of the rate its services are of all. */
	return (double)p->services / (p->cfg->rate * own) * 1e9;
}

enum mix_term plan_mix_pick(const struct plan *p, uint64_t rnd)
{
	const uint32_t *m = p->cfg->mix;
	uint64_t sum = (uint64_t)m[0] + m[1] + m[2], x = rnd % sum;

	if (x < m[MIX_REGISTER])
		return MIX_REGISTER;
	if (x < (uint64_t)m[MIX_REGISTER] + m[MIX_HEARTBEAT])
		return MIX_HEARTBEAT;
	return MIX_LIST;
}
