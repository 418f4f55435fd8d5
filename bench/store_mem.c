/*
 * store_mem.c - bytes of memory per instance held by the store.
 *
 * Usage: store_mem [instances]   (default 1000000)
 *
 * For each configuration (1 and 2 shards, without and with metadata) a child
 * process starts from a fresh heap, reads VmRSS from /proc/self/status,
 * creates a store and registers the instances as a server would: services
 * of SVC_INSTANCES instances ("svc-%u"), default namespace, group and
 * cluster, IPv4-mapped 10.x.y.z addresses from port 8080, and every
 * TICK_OPS registrations the loop's "before sleep" step (drain the change
 * feed, store_poll). At the end each shard waits out a grace period
 * (epoch_barrier), so no retired array is still pending, and VmRSS is read
 * again. (RSS growth) / instances is the figure; it is read a second time
 * after mi_collect(true), which hands mimalloc's freed pages back, because
 * the old arrays of the tables' growth are freed but may still be resident.
 *
 * With metadata, each instance carries three pairs as clients send them:
 * "version" = "1.2.<0..19>", "zone" = "z<0..3>" and a unique "instance-id".
 * The unique value makes every map distinct, the worst case for interning.
 *
 * The "accounted" column and the breakdown read the store's internals
 * (store_internal.h): bytes the store asked the allocator for, before the
 * allocator's rounding. That coupling is deliberate and limited to
 * account(); keep it in step with store_internal.h.
 */
#include "core/epoch.h"
#include "core/err.h"
#include "store/store_internal.h"

#include <inttypes.h>
#include <mimalloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SVC_INSTANCES  100u
#define TICK_OPS       1024u
#define TARGET_BYTES   128.0 /* per instance, without metadata */
#define INSTANCES_MAX  (16u << 20)
#define INSTANCES_DFLT 1000000u
#define META_PAIRS     3u
#define NAME_BYTES_MAX 32u

/* Bytes the store requested, by part (internals; see the essay above). */
struct account {
	uint64_t records;  /* instance pool chunks */
	uint64_t table;    /* the instance hash table's array */
	uint64_t services; /* service structs, instance and cluster arrays, service table */
	uint64_t intern;   /* interned strings and metadata maps, and their tables */
	uint64_t feed;     /* change feed array */
	uint64_t fixed;    /* per shard: slot sums and counts, timings */
};

struct result {
	uint64_t rss_before_kb, rss_after_kb, rss_collected_kb;
	uint64_t instances, services;
	struct account acc;
};

/* VmRSS of this process in kB, or 0 if /proc cannot be read. */
static uint64_t rss_kb(void)
{
	char line[256];
	uint64_t kb = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtoull(line + 6, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

static uint64_t table_bytes(const struct table *t)
{
	return sizeof(struct table_arr) + (sizeof(uintptr_t) << t->arr->bits);
}

static void account(struct store *s, struct account *acc)
{
	memset(acc, 0, sizeof(*acc));
	for (uint32_t i = 0; i < store_shards(s); i++) {
		const struct store_shard *sh = store_shard(s, i);
		const struct table_arr *a = sh->svcs.arr;

		acc->records += sh->insts.bytes;
		acc->table += table_bytes(&sh->table);
		acc->services += table_bytes(&sh->svcs);
		for (uint64_t j = 0; j < ((uint64_t)1 << a->bits); j++) {
			const struct store_svc *svc;

			if (a->e[j] == TABLE_EMPTY || a->e[j] == TABLE_TOMB)
				continue;
			svc = table_obj(a->e[j]);
			acc->services += sizeof(*svc);
			if (svc->arr)
				acc->services +=
				        sizeof(*svc->arr) + sizeof(svc->arr->v[0]) * svc->arr->cap;
			if (svc->clusters)
				acc->services +=
				        sizeof(*svc->clusters) +
				        sizeof(svc->clusters->names[0]) * svc->clusters->cap;
		}
		acc->intern += sh->intern.bytes + table_bytes(&sh->intern.strs) +
		               table_bytes(&sh->intern.metas);
		acc->feed += sizeof(sh->feed[0]) * sh->feed_cap;
		acc->fixed += STORE_SLOTS * (sizeof(sh->slot_sum[0]) + sizeof(sh->slot_count[0])) +
		              sizeof(sh->timings[0]) * s->cfg.limits.timings_max + sizeof(*sh);
	}
}

static uint64_t account_total(const struct account *a)
{
	return a->records + a->table + a->services + a->intern + a->feed + a->fixed;
}

/* Instance i's key; svc_buf holds its service name. */
static void key_make(struct store_key *k, char *svc_buf, uint32_t i)
{
	int len = snprintf(svc_buf, NAME_BYTES_MAX, "svc-%u", i / SVC_INSTANCES);

	memset(k, 0, sizeof(*k));
	k->svc.service = (struct store_str){ svc_buf, (uint32_t)len };
	k->addr.ip[10] = 0xff;
	k->addr.ip[11] = 0xff;
	k->addr.ip[12] = 10;
	k->addr.ip[13] = (uint8_t)(i >> 16);
	k->addr.ip[14] = (uint8_t)(i >> 8);
	k->addr.ip[15] = (uint8_t)i;
	k->addr.port = (uint16_t)(8080 + (i >> 24));
}

/* Instance i's three metadata pairs; bufs holds the values. */
static void meta_make(struct store_kv kv[META_PAIRS], char bufs[META_PAIRS][NAME_BYTES_MAX],
                      uint32_t i)
{
	static const char *keys[META_PAIRS] = { "version", "zone", "instance-id" };
	int len[META_PAIRS];

	len[0] = snprintf(bufs[0], NAME_BYTES_MAX, "1.2.%u", i % 20);
	len[1] = snprintf(bufs[1], NAME_BYTES_MAX, "z%u", i % 4);
	/* Multiplying by an odd constant is a bijection mod 2^32: unique ids. */
	len[2] = snprintf(bufs[2], NAME_BYTES_MAX, "i-%08x", i * 2654435761u);
	for (uint32_t j = 0; j < META_PAIRS; j++) {
		kv[j].key = (struct store_str){ keys[j], (uint32_t)strlen(keys[j]) };
		kv[j].val = (struct store_str){ bufs[j], (uint32_t)len[j] };
	}
}

/* The loop's "before sleep" step: empty the change feed, reclaim retired memory. */
static void tick(struct store_shard *sh, struct store_view *views)
{
	while (store_feed_len(sh) > 0)
		store_feed_drain(sh, views, TICK_OPS, NULL);
	store_poll(sh);
}

/* Builds one population and measures it. 0 or a negative -ERR_* code. */
static int measure(uint32_t n, uint32_t shards, bool meta, struct result *r)
{
	struct store_view *views = malloc(sizeof(*views) * TICK_OPS);
	char svc_buf[NAME_BYTES_MAX], meta_bufs[META_PAIRS][NAME_BYTES_MAX];
	struct store_kv kv[META_PAIRS];
	struct store_config c;
	struct store_stats st;
	struct store_val v;
	struct store_key k;
	struct store *s;
	int rc;

	if (views == NULL)
		return -ERR_NOMEM;
	memset(views, 0, sizeof(*views) * TICK_OPS); /* resident before the first reading */
	memset(r, 0, sizeof(*r));
	r->rss_before_kb = rss_kb();
	store_config_default(&c);
	c.shards = shards;
	if ((rc = store_create(&c, &s)) < 0) {
		free(views);
		return rc;
	}
	store_val_default(&v);
	for (uint32_t i = 0; i < n; i++) {
		struct store_shard *sh;

		key_make(&k, svc_buf, i);
		if (meta) {
			meta_make(kv, meta_bufs, i);
			v.meta = kv;
			v.meta_n = META_PAIRS;
		}
		sh = store_shard(s, store_shard_of(s, &k.svc));
		rc = store_upsert(sh, &k, &v);
		if (rc != STORE_CREATED) {
			rc = rc < 0 ? rc : -ERR_INVAL;
			goto out;
		}
		if ((i + 1) % TICK_OPS == 0)
			for (uint32_t j = 0; j < shards; j++)
				tick(store_shard(s, j), views);
	}
	for (uint32_t j = 0; j < shards; j++) {
		tick(store_shard(s, j), views);
		epoch_barrier(store_shard_rec(store_shard(s, j)));
	}
	r->rss_after_kb = rss_kb();
	mi_collect(true);
	r->rss_collected_kb = rss_kb();
	store_stats(s, &st);
	r->instances = st.instances;
	r->services = st.services;
	account(s, &r->acc);
	rc = 0;
out:
	store_destroy(s);
	free(views);
	return rc;
}

static double per_inst(uint64_t bytes, const struct result *r)
{
	return r->instances ? (double)bytes / (double)r->instances : 0.0;
}

static double kb_per_inst(uint64_t after_kb, const struct result *r)
{
	return per_inst(after_kb > r->rss_before_kb ? (after_kb - r->rss_before_kb) * 1024 : 0, r);
}

static void print_row(uint32_t shards, bool meta, const struct result *r)
{
	printf("| %6u | %-8s | %9" PRIu64 " | %8" PRIu64 " | %10.1f | %8.1f | %9.1f | %10.1f |\n",
	       shards, meta ? "3 pairs" : "none", r->instances, r->services,
	       (double)(r->rss_after_kb - r->rss_before_kb) / 1024.0,
	       kb_per_inst(r->rss_after_kb, r), kb_per_inst(r->rss_collected_kb, r),
	       per_inst(account_total(&r->acc), r));
}

static void print_breakdown(uint32_t shards, bool meta, const struct result *r)
{
	const struct account *a = &r->acc;

	printf("| %6u | %-8s | %7.1f | %7.1f | %8.1f | %7.1f | %6.1f | %6.1f |\n", shards,
	       meta ? "3 pairs" : "none", per_inst(a->records, r), per_inst(a->table, r),
	       per_inst(a->services, r), per_inst(a->intern, r), per_inst(a->feed, r),
	       per_inst(a->fixed, r));
}

int main(int argc, char **argv)
{
	static const uint32_t shard_counts[] = { 1, 2 };
	struct result res[2][2];
	uint32_t n = INSTANCES_DFLT;
	bool ok[2][2] = { { false } };
	int failures = 0;

	if (argc > 2 || (argc == 2 && (n = (uint32_t)strtoul(argv[1], NULL, 10)) == 0) ||
	    n > INSTANCES_MAX) {
		fprintf(stderr, "usage: %s [instances, 1..%u, default %u]\n", argv[0],
		        INSTANCES_MAX, INSTANCES_DFLT);
		return 2;
	}
	/* One child per configuration, so each starts from an untouched heap. */
	for (uint32_t si = 0; si < 2; si++) {
		for (uint32_t m = 0; m < 2; m++) {
			int fds[2], status;
			ssize_t got;
			pid_t pid;

			if (pipe(fds) < 0)
				return 1;
			fflush(stdout);
			pid = fork();
			if (pid < 0)
				return 1;
			if (pid == 0) {
				struct result r;
				int rc = measure(n, shard_counts[si], m == 1, &r);

				close(fds[0]);
				if (rc == 0 && write(fds[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
					rc = -ERR_INVAL;
				_exit(rc == 0 ? 0 : 1);
			}
			close(fds[1]);
			got = read(fds[0], &res[si][m], sizeof(res[si][m]));
			close(fds[0]);
			ok[si][m] = waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
			            WEXITSTATUS(status) == 0 && got == (ssize_t)sizeof(res[si][m]);
			if (!ok[si][m])
				failures++;
		}
	}

	printf("store_mem: %u instances, %u per service, mimalloc %d\n\n", n, SVC_INSTANCES,
	       mi_version());
	printf("B/inst = bytes per instance; RSS = (VmRSS after - VmRSS before) / instances;\n"
	       "collected = the same after mi_collect(true); accounted = bytes the store "
	       "requested.\n\n");
	printf("| shards | metadata | instances | services | RSS growth | B/inst   | B/inst    "
	       "| B/inst     |\n");
	printf("|        |          |           |          | MiB        | RSS      | collected "
	       "| accounted  |\n");
	printf("|--------|----------|-----------|----------|------------|----------|-----------"
	       "|------------|\n");
	for (uint32_t si = 0; si < 2; si++)
		for (uint32_t m = 0; m < 2; m++)
			if (ok[si][m])
				print_row(shard_counts[si], m == 1, &res[si][m]);
	printf("\nAccounted bytes per instance, by part:\n\n");
	printf("| shards | metadata | records | table   | services | intern  | feed   | fixed  "
	       "|\n");
	printf("|--------|----------|---------|---------|----------|---------|--------|--------|"
	       "\n");
	for (uint32_t si = 0; si < 2; si++)
		for (uint32_t m = 0; m < 2; m++)
			if (ok[si][m])
				print_breakdown(shard_counts[si], m == 1, &res[si][m]);
	for (uint32_t si = 0; si < 2; si++) {
		if (!ok[si][0])
			continue;
		double b = kb_per_inst(res[si][0].rss_after_kb, &res[si][0]);

		printf("\ntarget <= %.0f B/instance without metadata, %u shard(s): %s (%.1f)",
		       TARGET_BYTES, shard_counts[si], b <= TARGET_BYTES ? "met" : "MISSED", b);
	}
	printf("\n");
	if (failures)
		fprintf(stderr, "store_mem: %d configuration(s) failed\n", failures);
	return failures ? 1 : 0;
}
