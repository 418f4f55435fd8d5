/*
 * store_keypath - a fixed workload for callgrind: 10,000 instances in 100
 * services, then ROUNDS x 10,000 heartbeats (store_touch) in a fixed order.
 * Instructions per heartbeat = (Ir(rounds) - Ir(0)) / (rounds * 10,000):
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null bench/store_keypath 0
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null bench/store_keypath 20
 *
 * Instruction counts are repeatable on a noisy machine; wall time is not.
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 20;
	struct store_config c;
	struct store *s;
	struct store_shard *sh;
	struct store_val v;
	struct store_key k;
	char names[100][16];
	long found = 0;

	store_config_default(&c);
	c.shards = 1;
	if (store_create(&c, &s) < 0)
		return 1;
	sh = store_shard(s, 0);
	store_val_default(&v);
	for (int i = 0; i < 100; i++)
		snprintf(names[i], sizeof(names[i]), "svc-%d", i);
	memset(&k, 0, sizeof(k));
	k.addr.ip[10] = k.addr.ip[11] = 0xff;
	k.addr.ip[12] = 10;
	k.addr.port = 8080;
	for (int i = 0; i < 10000; i++) {
		k.svc.service =
		        (struct store_str){ names[i % 100], (uint32_t)strlen(names[i % 100]) };
		k.addr.ip[14] = (uint8_t)(i >> 8);
		k.addr.ip[15] = (uint8_t)i;
		if (store_upsert(sh, &k, &v) < 0)
			return 1;
	}
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < 10000; i++) {
			k.svc.service = (struct store_str){ names[i % 100],
				                            (uint32_t)strlen(names[i % 100]) };
			k.addr.ip[14] = (uint8_t)(i >> 8);
			k.addr.ip[15] = (uint8_t)i;
			found += store_touch(sh, &k) == STORE_SAME;
		}
	}
	printf("%ld heartbeats found their instance\n", found);
	store_destroy(s);
	return found == (long)rounds * 10000 ? 0 : 1;
}
