/*
 * distrobench's plan: shares cover every instance exactly once, services
 * and their ranges agree, per-target setup shares, addresses, names, the
 * open-loop periods add up to --rate, and the mix ratio.
 */
#include "distrobench/plan.h"

#include "proto/wire.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static struct bench_config cfg;
static struct plan plan;

static void setup_plan(const char *first, ...)
{
	char *argv[32];
	char err[256];
	int argc = 0;
	va_list ap;

	argv[argc++] = "distrobench";
	va_start(ap, first);
	for (const char *a = first; a; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	cr_assert_eq(args_parse(argc, argv, &cfg, err, sizeof(err)), ARGS_OK, "%s", err);
	cr_assert_eq(plan_init(&plan, &cfg), 0);
}

static void done(void)
{
	plan_free(&plan);
}

Test(plan, shares_cover_everything_once, .fini = done)
{
	setup_plan("-W", "heartbeat", "-n", "1003", "-S", "7", "-c", "13", NULL);
	uint32_t next = 0;

	cr_assert(plan.setup);
	cr_assert_not(plan.setup_per_target);
	for (uint32_t j = 0; j < cfg.conns; j++) {
		uint32_t lo, hi, slo, shi;

		plan_share(&plan, j, &lo, &hi);
		cr_assert_eq(lo, next);
		cr_assert_gt(hi, lo, "connection %u owns nothing", j);
		plan_setup_share(&plan, j, &slo, &shi);
		cr_assert_eq(slo, lo);
		cr_assert_eq(shi, hi);
		next = hi;
	}
	cr_assert_eq(next, 1003);
}

Test(plan, services_and_ranges_agree, .fini = done)
{
	setup_plan("-W", "mix", "-n", "1000", "-S", "7", "-c", "10", NULL);
	uint32_t seen = 0;

	for (uint32_t s = 0; s < cfg.services; s++) {
		uint32_t lo, hi;

		plan_service_range(&plan, s, &lo, &hi);
		cr_assert_eq(lo, seen);
		for (uint32_t i = lo; i < hi; i++)
			cr_assert_eq(plan_service_of(&plan, i), s, "instance %u", i);
		cr_assert_geq(hi - lo, 142);
		cr_assert_leq(hi - lo, 143);
		seen = hi;
	}
	cr_assert_eq(seen, 1000);
}

Test(plan, list_blocks_and_per_target_setup, .fini = done)
{
	setup_plan("-W", "list", "-S", "10", "--list-size", "5", "-c", "7", "-s", "a:1,b:2", NULL);
	uint32_t count[2] = { 0, 0 };

	cr_assert_eq(plan.population, 50);
	cr_assert(plan.setup_per_target);
	cr_assert_eq(plan.timing.timeout_ms, 86400000);
	for (uint32_t i = 0; i < 50; i++)
		cr_assert_eq(plan_service_of(&plan, i), i / 5);
	/* Each target gets the whole population, from its own connections. */
	for (uint32_t j = 0; j < cfg.conns; j++) {
		uint32_t lo, hi, g = plan_target_of(&plan, j);

		plan_setup_share(&plan, j, &lo, &hi);
		cr_assert_eq(lo, count[g], "connection %u", j);
		count[g] = hi;
	}
	cr_assert_eq(count[0], 50);
	cr_assert_eq(count[1], 50);
}

Test(plan, addresses_and_names, .fini = done)
{
	setup_plan("-W", "register", "-n", "67108864", "-S", "3", "--prefix", "p", NULL);
	struct addr a;
	struct store_key k;
	struct store_val v;
	char ip[64];

	plan_addr(0x01020304, &a);
	addr_format(&a, ip, sizeof(ip));
	cr_assert_str_eq(ip, "198.18.3.4"); /* 198.18.0.0/15 (RFC 2544), never routed */
	cr_assert_eq(a.port, 1024 + (0x01020304 >> 17));
	plan_addr(0x10000, &a);
	addr_format(&a, ip, sizeof(ip));
	cr_assert_str_eq(ip, "198.19.0.0");
	plan_addr(0, &a);
	cr_assert_eq(a.port, 1024);
	plan_addr(ARGS_INSTANCES_MAX - 1, &a);
	addr_format(&a, ip, sizeof(ip));
	cr_assert_str_eq(ip, "198.19.255.255");
	cr_assert_eq(a.port, 1024 + 511);
	plan_instance(&plan, 5, 2000, &k, &v);
	cr_assert_eq(k.svc.service.len, strlen("p-67108864x3-0"));
	cr_assert_eq(memcmp(k.svc.service.p, "p-67108864x3-0", k.svc.service.len), 0);
	cr_assert_null(k.svc.ns.p);
	cr_assert_null(k.cluster.p);
	cr_assert_eq(v.weight_milli, 2000);
	cr_assert(v.ephemeral);
	cr_assert_eq(v.timing.interval_ms, 0);
}

Test(plan, heartbeat_interval_timing_and_period, .fini = done)
{
	setup_plan("-W", "heartbeat", "-n", "1000", "-c", "10", "-b", "10", "--interval-ms", "5000",
	           NULL);

	cr_assert_eq(plan.timing.interval_ms, 5000);
	cr_assert_eq(plan.timing.timeout_ms, 15000);
	cr_assert_eq(plan.timing.delete_ms, 30000);
	/* 100 instances per connection, 10 per frame, all once per 5 s: a frame per 0.5 s. */
	cr_assert_float_eq(plan_period_ns(&plan, 0), 5e8, 1);
}

Test(plan, periods_add_up_to_the_rate, .fini = done)
{
	setup_plan("-W", "heartbeat", "-n", "1000", "-c", "7", "-b", "4", "-r", "70000", NULL);
	double ops_per_s = 0;

	for (uint32_t j = 0; j < cfg.conns; j++)
		ops_per_s += 4 / (plan_period_ns(&plan, j) / 1e9);
	cr_assert_float_eq(ops_per_s, 70000, 1e-6);
	done();
	setup_plan("-W", "mix", "--mix", "1:2:1", "-b", "8", "-r", "1000", "-c", "10", NULL);
	/* A frame carries (8 + 2 * 8 + 1) / 4 = 6.25 ops on average. */
	cr_assert_float_eq(plan_period_ns(&plan, 3), 6.25 / 100 * 1e9, 1);
	done();
	setup_plan("-W", "heartbeat", NULL);
	cr_assert_eq(plan_period_ns(&plan, 0), 0); /* closed loop */
}

Test(plan, writers_split_services_and_rate, .fini = done)
{
	setup_plan("-W", "subscribe", "-S", "10", "-t", "2", "-c", "4", "-s", "a:1,b:2,c:3", "-r",
	           "60", NULL);
	uint32_t w = plan_writers(&plan), total = 0;
	double rate = 0;

	cr_assert_eq(w, 6);
	for (uint32_t i = 0; i < w; i++) {
		uint32_t own = plan_writer_services(&plan, i);

		total += own;
		if (own)
			rate += 1e9 / plan_writer_period_ns(&plan, i);
	}
	cr_assert_eq(total, 10);
	cr_assert_float_eq(rate, 60, 1e-9);
	done();
	setup_plan("-W", "subscribe", "-S", "2", "-t", "4", "-c", "4", NULL);
	cr_assert_eq(plan_writer_services(&plan, 3), 0);
	cr_assert_eq(plan_writer_period_ns(&plan, 3), 0);
}

Test(plan, mix_pick_follows_the_ratio, .fini = done)
{
	setup_plan("-W", "mix", "--mix", "1:8:1", NULL);
	uint32_t n[MIX_TERMS] = { 0 };

	for (uint64_t r = 0; r < 1000; r++)
		n[plan_mix_pick(&plan, r)]++;
	cr_assert_eq(n[MIX_REGISTER], 100);
	cr_assert_eq(n[MIX_HEARTBEAT], 800);
	cr_assert_eq(n[MIX_LIST], 100);
	done();
	setup_plan("-W", "mix", "--mix", "0:0:3", NULL);
	for (uint64_t r = 0; r < 100; r++)
		cr_assert_eq(plan_mix_pick(&plan, r * 7919), MIX_LIST);
}
