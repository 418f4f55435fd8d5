/*
 * bench_store.cc - microbenchmarks of the store (src/store): the writer's
 * register, heartbeat and update paths, the readers' get, list, slot
 * checksum and slot scan.
 *
 * One thread plays both roles, as a shard's loop does: it writes as the
 * shard's writer (store_upsert, store_touch) and, every WRITER_TICK_OPS
 * operations, runs the "before sleep" step of the loop (drain the change
 * feed, store_poll), so retired memory is reclaimed and the feed stays short.
 * Reads go through a reader's own epoch record, registered with
 * epoch_register(store_epoch(s), ...), inside epoch_enter/epoch_exit.
 *
 * Keys are realistic: default namespace and group (p == NULL), services
 * "svc-%u" of POP_SVC_INSTANCES instances each, IPv4-mapped 10.x.y.z
 * addresses, ports from 8080. Populations are built once, outside the timed
 * loops, and shared by the benchmarks that do not change replicated state;
 * each key array is shuffled so lookups land in random order, as heartbeats
 * from many clients do.
 *
 * Bounds: populations up to POP_SCAN instances (about 130 MB with the keys
 * not kept); every loop checks the result code and stops the benchmark with
 * an error on a surprise, so a broken path never reports a fast figure.
 */
#include <benchmark/benchmark.h>

#include "store/store.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace
{

constexpr uint32_t WRITER_TICK_OPS = 1024;    /* ops between feed drain + store_poll */
constexpr uint32_t POP_SVC_INSTANCES = 100;   /* instances per service */
constexpr uint32_t POP_SMALL = 100000;        /* population of the per-key benchmarks */
constexpr uint32_t POP_SCAN = 1000000;        /* ~61 instances per slot (1M / 16384) */
constexpr uint32_t SVC_NAMES = 1u << 16;      /* distinct service names prepared */
constexpr uint32_t UPSERT_NEW_OPS = 1u << 20; /* new registrations per run */
constexpr uint32_t SCAN_CHUNK = 64;
constexpr uint32_t CHECKSUM_RANGE_SLOTS = 64;

/* Service names, built once; keys borrow them. */
const std::vector<std::string> &svc_names()
{
	static std::vector<std::string> names;

	if (names.empty()) {
		char buf[32];

		names.reserve(SVC_NAMES);
		for (uint32_t i = 0; i < SVC_NAMES; i++) {
			snprintf(buf, sizeof(buf), "svc-%u", i);
			names.emplace_back(buf);
		}
	}
	return names;
}

/* Instance i: service i / POP_SVC_INSTANCES, address 10.(i >> 16).(i >> 8).i:8080+(i >> 24). */
void key_fill(struct store_key *k, uint32_t i)
{
	const std::string &svc = svc_names()[(i / POP_SVC_INSTANCES) % SVC_NAMES];

	memset(k, 0, sizeof(*k));
	k->svc.service = { svc.data(), (uint32_t)svc.size() };
	k->addr.ip[10] = 0xff;
	k->addr.ip[11] = 0xff;
	k->addr.ip[12] = 10;
	k->addr.ip[13] = (uint8_t)(i >> 16);
	k->addr.ip[14] = (uint8_t)(i >> 8);
	k->addr.ip[15] = (uint8_t)i;
	k->addr.port = (uint16_t)(8080 + (i >> 24));
}

struct store *store_new(uint32_t shards)
{
	struct store_config c;
	struct store *s;

	store_config_default(&c);
	c.shards = shards;
	if (store_create(&c, &s) < 0)
		return nullptr;
	return s;
}

/* The loop's "before sleep" step for one shard: drain the change feed, reclaim. */
void writer_tick(struct store_shard *sh)
{
	static std::vector<struct store_view> views(WRITER_TICK_OPS);

	while (store_feed_len(sh) > 0)
		store_feed_drain(sh, views.data(), (uint32_t)views.size(), nullptr);
	store_poll(sh);
}

/*
 * A store of n instances in one shard, a reader record, and the keys in
 * random order. The record must outlive the store's epoch (core/epoch.h), so
 * a pop on a stack frame must be freed (pop_free) before the frame ends.
 */
struct pop {
	struct store *s = nullptr;
	struct store_shard *sh = nullptr;
	struct epoch_rec rec; /* registered in s; must stay valid until store_destroy */
	std::vector<struct store_key> keys;
};

bool pop_build(struct pop *p, uint32_t n, bool keep_keys)
{
	struct store_val v;
	struct store_key k;

	p->s = store_new(1);
	if (p->s == nullptr)
		return false;
	p->sh = store_shard(p->s, 0);
	epoch_register(store_epoch(p->s), &p->rec);
	store_val_default(&v);
	for (uint32_t i = 0; i < n; i++) {
		key_fill(&k, i);
		if (store_upsert(p->sh, &k, &v) != STORE_CREATED)
			return false;
		if (keep_keys)
			p->keys.push_back(k);
		if (i % WRITER_TICK_OPS == 0)
			writer_tick(p->sh);
	}
	writer_tick(p->sh);
	std::shuffle(p->keys.begin(), p->keys.end(), std::mt19937_64(42));
	return true;
}

void pop_free(struct pop *p)
{
	if (p->s == nullptr)
		return;
	epoch_unregister(&p->rec);
	store_destroy(p->s);
	p->s = nullptr;
}

/* Shared populations, built on first use and freed at exit (see main). */
struct pop pop_small, pop_scan;

struct pop *pop_get(struct pop *p, uint32_t n, bool keep_keys)
{
	if (p->s == nullptr && !pop_build(p, n, keep_keys))
		pop_free(p);
	return p->s ? p : nullptr;
}

/* Registers UPSERT_NEW_OPS new instances into an empty store: growth included. */
void BM_Upsert_New(benchmark::State &state)
{
	struct store *s = store_new(1);
	struct store_shard *sh;
	struct store_val v;
	struct store_key k;
	uint32_t i = 0;

	if (s == nullptr) {
		state.SkipWithError("store_create failed");
		return;
	}
	sh = store_shard(s, 0);
	store_val_default(&v);
	svc_names();
	for (auto _ : state) {
		key_fill(&k, i);
		if (store_upsert(sh, &k, &v) != STORE_CREATED) {
			state.SkipWithError("upsert did not create");
			break;
		}
		if (++i % WRITER_TICK_OPS == 0)
			writer_tick(sh);
	}
	state.SetItemsProcessed(state.iterations());
	store_destroy(s);
}
BENCHMARK(BM_Upsert_New)->Iterations(UPSERT_NEW_OPS);

/* Re-registers an unchanged instance: the heartbeat-like register path. */
void BM_Upsert_Same(benchmark::State &state)
{
	struct pop *p = pop_get(&pop_small, POP_SMALL, true);
	struct store_val v;
	size_t i = 0;

	if (p == nullptr) {
		state.SkipWithError("population build failed");
		return;
	}
	store_val_default(&v);
	for (auto _ : state) {
		if (store_upsert(p->sh, &p->keys[i], &v) != STORE_SAME) {
			state.SkipWithError("upsert did not return STORE_SAME");
			break;
		}
		if (++i == p->keys.size())
			i = 0;
		if (i % WRITER_TICK_OPS == 0)
			writer_tick(p->sh);
	}
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Upsert_Same);

/* Heartbeats over POP_SMALL instances in random order. */
void BM_Touch(benchmark::State &state)
{
	struct pop *p = pop_get(&pop_small, POP_SMALL, true);
	size_t i = 0;

	if (p == nullptr) {
		state.SkipWithError("population build failed");
		return;
	}
	for (auto _ : state) {
		if (store_touch(p->sh, &p->keys[i]) != STORE_SAME) {
			state.SkipWithError("touch did not return STORE_SAME");
			break;
		}
		if (++i == p->keys.size())
			i = 0;
		if (i % WRITER_TICK_OPS == 0)
			writer_tick(p->sh);
	}
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Touch);

/* Point reads over POP_SMALL instances; range(0) gets per epoch section. */
void BM_Get(benchmark::State &state)
{
	struct pop *p = pop_get(&pop_small, POP_SMALL, true);
	const size_t per_section = (size_t)state.range(0);
	struct store_view v;
	size_t i = 0;

	if (p == nullptr) {
		state.SkipWithError("population build failed");
		return;
	}
	epoch_enter(&p->rec);
	for (auto _ : state) {
		if (store_get(p->s, &p->keys[i], &v) != 0) {
			state.SkipWithError("get did not find the instance");
			break;
		}
		benchmark::DoNotOptimize(v);
		if (++i == p->keys.size())
			i = 0;
		if (i % per_section == 0) {
			epoch_exit(&p->rec);
			epoch_enter(&p->rec);
		}
	}
	epoch_exit(&p->rec);
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Get)->ArgName("per_section")->Arg(1)->Arg(64);

/* Lists a service of range(0) instances; items are instances listed. */
void BM_List(benchmark::State &state)
{
	const uint32_t n = (uint32_t)state.range(0);
	std::vector<struct store_view> out(n);
	struct store_list_info info;
	struct store_svc_key sk;
	struct store_shard *sh;
	struct epoch_rec rec; /* outlives the store: destroyed at the end of this frame */
	struct store_val v;
	struct store_key k;
	struct store *s = store_new(1);

	if (s == nullptr) {
		state.SkipWithError("store_create failed");
		return;
	}
	sh = store_shard(s, 0);
	epoch_register(store_epoch(s), &rec);
	store_val_default(&v);
	for (uint32_t i = 0; i < n; i++) {
		key_fill(&k, i);
		k.svc.service = { "svc-list", 8 };
		(void)store_upsert(sh, &k, &v);
	}
	writer_tick(sh);
	sk = k.svc;
	for (auto _ : state) {
		int rc;

		epoch_enter(&rec);
		rc = store_list(s, &sk, nullptr, out.data(), n, &info);
		epoch_exit(&rec);
		if (rc != (int)n || info.total != n) {
			state.SkipWithError("list returned the wrong count");
			break;
		}
		benchmark::DoNotOptimize(out.data());
	}
	state.SetItemsProcessed(state.iterations() * n);
	epoch_unregister(&rec);
	store_destroy(s);
}
BENCHMARK(BM_List)->Arg(10)->Arg(100)->Arg(1000);

/* An upsert that changes the weight: new version, slot checksum update, feed push. */
void BM_SlotChecksumUpdate(benchmark::State &state)
{
	struct pop p;
	struct store_val v;
	size_t i = 0;
	uint32_t pass = 0;

	if (!pop_build(&p, POP_SMALL, true)) {
		pop_free(&p);
		state.SkipWithError("population build failed");
		return;
	}
	store_val_default(&v);
	v.weight_milli = 2 * STORE_WEIGHT_SCALE;
	for (auto _ : state) {
		if (store_upsert(p.sh, &p.keys[i], &v) != STORE_CHANGED) {
			state.SkipWithError("upsert did not return STORE_CHANGED");
			break;
		}
		if (++i == p.keys.size()) {
			/* Next pass flips the weight back, so every op is a change. */
			i = 0;
			pass++;
			v.weight_milli = (pass & 1 ? 1 : 2) * STORE_WEIGHT_SCALE;
		}
		if (i % WRITER_TICK_OPS == 0)
			writer_tick(p.sh);
	}
	state.SetItemsProcessed(state.iterations());
	pop_free(&p);
}
BENCHMARK(BM_SlotChecksumUpdate);

/* The checksum and count of CHECKSUM_RANGE_SLOTS slots (one shard). */
void BM_SlotChecksumRead(benchmark::State &state)
{
	struct pop *p = pop_get(&pop_small, POP_SMALL, true);
	uint32_t lo = 0;
	uint64_t count;

	if (p == nullptr) {
		state.SkipWithError("population build failed");
		return;
	}
	for (auto _ : state) {
		epoch_enter(&p->rec);
		benchmark::DoNotOptimize(
		        store_range_checksum(p->s, lo, lo + CHECKSUM_RANGE_SLOTS, &count));
		epoch_exit(&p->rec);
		benchmark::DoNotOptimize(count);
		lo = (lo + CHECKSUM_RANGE_SLOTS) % STORE_SLOTS;
	}
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SlotChecksumRead);

/* Enumerates one slot of a POP_SCAN store in chunks of SCAN_CHUNK, one section per chunk. */
void BM_SlotScan(benchmark::State &state)
{
	struct pop *p = pop_get(&pop_scan, POP_SCAN, false);
	struct store_view out[SCAN_CHUNK];
	struct store_cursor c;
	uint64_t items = 0;
	uint32_t slot = 0;

	if (p == nullptr) {
		state.SkipWithError("population build failed");
		return;
	}
	for (auto _ : state) {
		store_cursor_init(&c, slot);
		while (!c.done) {
			epoch_enter(&p->rec);
			items += store_slot_scan(p->s, &c, out, SCAN_CHUNK);
			epoch_exit(&p->rec);
			benchmark::DoNotOptimize(out);
		}
		slot = (slot + 7919) % STORE_SLOTS; /* a prime stride visits every slot */
	}
	state.SetItemsProcessed((int64_t)items);
	state.counters["per_slot"] = benchmark::Counter((double)items / (double)state.iterations());
}
BENCHMARK(BM_SlotScan);

} // namespace

int main(int argc, char **argv)
{
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	pop_free(&pop_small);
	pop_free(&pop_scan);
	return 0;
}
