/*
 * store_grow.c - how long one registration waits while a shard's instance
 * table grows.
 *
 * Usage: store_grow [instances] [runs]   (default 1700000, 3)
 *
 * The instance table (src/store/table.c) doubles when it is 4/5 full,
 * rehashing every entry in one go: the registration that triggers it
 * stalls its worker, and every client of that worker with it. This
 * registers `instances` into one shard, as store_mem does (services of
 * 100 instances, IPv4-mapped 10.x.y.z addresses, the loop's "before sleep"
 * step every 1024 registrations), timing each registration with the
 * monotonic clock, and prints every one over 10 ms (the doublings) and
 * the worst. Wall time: on a shared machine, compare runs side by side
 * and quote medians.
 */
#include "core/epoch.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SVC_INSTANCES 100
#define TICK_OPS      1024
#define STALL_MS      10.0

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int run(uint32_t n)
{
	static struct store_view views[TICK_OPS];
	struct store_config c;
	struct store_shard *sh;
	struct epoch_rec rec;
	struct store_val v;
	struct store *s;
	double worst = 0;
	uint32_t worst_at = 0;

	store_config_default(&c);
	c.shards = 1;
	if (store_create(&c, &s) < 0)
		return -1;
	sh = store_shard(s, 0);
	epoch_register(store_epoch(s), &rec);
	store_val_default(&v);
	for (uint32_t i = 0; i < n; i++) {
		struct store_key k;
		char name[32];
		double t0, d;

		snprintf(name, sizeof(name), "svc-%u", i / SVC_INSTANCES);
		memset(&k, 0, sizeof(k));
		k.svc.service = (struct store_str){ name, (uint32_t)strlen(name) };
		k.addr.ip[10] = 0xff;
		k.addr.ip[11] = 0xff;
		k.addr.ip[12] = 10;
		k.addr.ip[13] = (uint8_t)(i >> 16);
		k.addr.ip[14] = (uint8_t)(i >> 8);
		k.addr.ip[15] = (uint8_t)i;
		k.addr.port = (uint16_t)(8080 + (i >> 24));
		t0 = now_ms();
		if (store_upsert(sh, &k, &v) != STORE_CREATED)
			return -1;
		d = now_ms() - t0;
		if (d > STALL_MS)
			printf("  %9u instances: one registration took %7.1f ms\n", i, d);
		if (d > worst) {
			worst = d;
			worst_at = i;
		}
		if (i % TICK_OPS == 0) {
			while (store_feed_len(sh) > 0)
				store_feed_drain(sh, views, TICK_OPS, NULL);
			store_poll(sh);
		}
	}
	printf("worst: %.1f ms at %u instances\n", worst, worst_at);
	epoch_unregister(&rec);
	store_destroy(s);
	return 0;
}

int main(int argc, char **argv)
{
	uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1700000;
	int runs = argc > 2 ? atoi(argv[2]) : 3;

	for (int r = 0; r < runs; r++) {
		printf("run %d: %u instances in one shard\n", r + 1, n);
		if (run(n) < 0) {
			fprintf(stderr, "store_grow: a registration failed\n");
			return 1;
		}
	}
	return 0;
}
