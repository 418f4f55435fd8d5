/*
 * plan.h - what a distrobench run sends: services, instances, who owns which.
 *
 * Instances are numbered 0..population-1 and everything about instance i is
 * a pure function of i and the settings, so no thread needs a table of
 * instances and any thread can rebuild any instance:
 *
 *   address  198.(18 + ((i>>16) & 1)).(i>>8).(i), port 1024 + (i >> 17): the
 *            benchmarking range 198.18.0.0/15 (RFC 2544), never routed
 *   service  list and subscribe: i / list_size (blocks of list_size; the
 *            first of each block is the subscribe workload's probe);
 *            others: floor(i * services / instances), so a connection's
 *            share of consecutive instances lies in few services and a
 *            batch usually touches one store shard, like an application
 *            beating its own instances.
 *   name     "<prefix>-<instances>x<services>-<s>", or "<prefix>-l<size>-<s>"
 *            for list and subscribe: a run never meets a service a run with
 *            other sizes left behind (instances outlive a run until they
 *            expire), which would make list sizes wrong.
 *
 * Shares: connection j of C owns instances [j*N/C, (j+1)*N/C) of the
 * register, heartbeat, mix and churn population (N = --instances), and
 * registers or beats only those. The list and subscribe population is
 * registered on every target (nodes do not replicate yet), split among the
 * connections of that target. Everything here is read-only after plan_init
 * and shared by all threads.
 */
#ifndef DISTRO_DISTROBENCH_PLAN_H
#define DISTRO_DISTROBENCH_PLAN_H

#include "distrobench/args.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

#define PLAN_NAME_MAX 96u /* prefix (64) + "-" + sizes + "-" + index */
#define PLAN_WEIGHT   1000u

struct plan {
	const struct bench_config *cfg;
	uint32_t population;   /* instances numbered 0..population-1 */
	uint32_t services;     /* services they are spread over */
	uint32_t block;        /* list and subscribe: instances per service; else 0 */
	bool setup;            /* the population is registered (untimed) before the run */
	bool setup_per_target; /* ...on every target, not once in all */
	struct store_timing timing;
	char *names; /* services * PLAN_NAME_MAX bytes */
	uint8_t *name_len;
};

/* Builds the plan of c (which must outlive it). 0 or -ERR_NOMEM. O(services). */
int plan_init(struct plan *p, const struct bench_config *c);
void plan_free(struct plan *p);

/* The service of instance i, and the instances of service s: [*lo, *hi). */
uint32_t plan_service_of(const struct plan *p, uint32_t i);
void plan_service_range(const struct plan *p, uint32_t s, uint32_t *lo, uint32_t *hi);

/* The address of instance i. */
void plan_addr(uint32_t i, struct addr *a);

/* The service key of s (names borrowed from the plan). */
void plan_svc_key(const struct plan *p, uint32_t s, struct store_svc_key *k);

/* Instance i with the given weight (thousandths); strings borrowed from the plan. */
void plan_instance(const struct plan *p, uint32_t i, uint32_t weight_milli, struct store_key *k,
                   struct store_val *v);

/* The register/heartbeat/mix/churn share of connection j: [*lo, *hi). */
void plan_share(const struct plan *p, uint32_t j, uint32_t *lo, uint32_t *hi);

/*
 * Whether the writers (binary connections, one per thread and target)
 * register the setup population instead of the load connections: with
 * --proto grpc, whose connections could hold only one instance per service
 * (Nacos keeps one publication per connection and service).
 */
bool plan_setup_by_writers(const struct plan *p);

/* The part of the setup population writer w registers: [*lo, *hi), maybe empty. */
void plan_writer_setup_share(const struct plan *p, uint32_t w, uint32_t *lo, uint32_t *hi);

/* The part of the setup population connection j registers: [*lo, *hi), maybe empty. */
void plan_setup_share(const struct plan *p, uint32_t j, uint32_t *lo, uint32_t *hi);

/* The target of connection j. */
static inline uint32_t plan_target_of(const struct plan *p, uint32_t j)
{
	return j % p->cfg->targets_n;
}

/*
 * Open loop: the time between two frames of connection j, in ns, so that
 * all connections together make --rate ops/s (or each instance beats every
 * --interval-ms). 0 for a closed loop. Instances per frame are
 * min(batch, share); a LIST is one op.
 */
double plan_period_ns(const struct plan *p, uint32_t j);

/* Subscribe: writers in all, the services writer w changes, and its period. */
uint32_t plan_writers(const struct plan *p);
uint32_t plan_writer_services(const struct plan *p, uint32_t w);
double plan_writer_period_ns(const struct plan *p, uint32_t w);

/* mix: the term (MIX_*) a random number picks, in the --mix ratio. */
enum mix_term plan_mix_pick(const struct plan *p, uint64_t rnd);

#endif
