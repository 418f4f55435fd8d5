/* CRUD, defaults, filters, and every bound and bad value of the store. */
#include "helpers.h"

static void setup(void)
{
	fixture_default(2, 0, true);
}

TestSuite(crud, .init = setup, .fini = fixture_close);

Test(crud, register_get_defaults)
{
	struct store_key k = key_n("orders", 1);
	struct store_view v;
	char ip[64];

	cr_assert_eq(up_default(s, &k), STORE_CREATED);
	cr_assert_eq(store_get(s, &k, &v), 0);
	cr_assert(str_is(v.ns, "public"));
	cr_assert(str_is(v.group, "DEFAULT_GROUP"));
	cr_assert(str_is(v.service, "orders"));
	cr_assert(str_is(v.cluster, "DEFAULT"));
	cr_assert_eq(v.weight_milli, 1000);
	cr_assert_eq(v.flags, STORE_F_HEALTHY | STORE_F_ENABLED | STORE_F_EPHEMERAL);
	cr_assert_eq(v.timing.interval_ms, 5000);
	cr_assert_eq(v.timing.timeout_ms, 15000);
	cr_assert_eq(v.timing.delete_ms, 30000);
	cr_assert_null(v.meta);
	cr_assert_eq(v.addr.port, k.addr.port);
	cr_assert_eq(v.slot, addr_slot(&k.addr));
	cr_assert_eq(v.beat_ms, fc.mono_ms);
	cr_assert_eq(v.version >> 16, (uint64_t)fc.wall_ms);
	addr_format(&v.addr, ip, sizeof(ip));
	cr_assert_str_eq(ip, "10.0.0.1");

	/* Explicit defaults name the same instance. */
	k.svc.ns = S("public");
	k.svc.group = S("DEFAULT_GROUP");
	k.cluster = S("DEFAULT");
	cr_assert_eq(up_default(s, &k), STORE_SAME);
}

Test(crud, update_reports_change_and_new_version)
{
	struct store_key k = key_n("orders", 2);
	struct store_view a, b;
	struct store_val v;

	store_val_default(&v);
	cr_assert_eq(up(s, &k, &v), STORE_CREATED);
	cr_assert_eq(store_get(s, &k, &a), 0);
	cr_assert_eq(up(s, &k, &v), STORE_SAME);
	v.weight_milli = 2500;
	cr_assert_eq(up(s, &k, &v), STORE_CHANGED);
	cr_assert_eq(store_get(s, &k, &b), 0);
	cr_assert_eq(b.weight_milli, 2500);
	cr_assert_gt(b.version, a.version);
	v.enabled = false;
	cr_assert_eq(up(s, &k, &v), STORE_CHANGED);
	cr_assert_eq(store_get(s, &k, &b), 0);
	cr_assert_eq(b.flags & STORE_F_ENABLED, 0);
}

Test(crud, delete_then_get_and_reregister)
{
	struct store_key k = key_n("orders", 3);
	struct store_view v;
	struct store_stats st;

	cr_assert_eq(up_default(s, &k), STORE_CREATED);
	cr_assert_eq(store_delete(shard_for(s, &k), &k), 0);
	cr_assert_eq(store_get(s, &k, &v), -ERR_NOT_FOUND);
	cr_assert_eq(store_delete(shard_for(s, &k), &k), -ERR_NOT_FOUND);
	cr_assert_eq(store_touch(shard_for(s, &k), &k), -ERR_NOT_FOUND);
	store_stats(s, &st);
	cr_assert_eq(st.instances, 0);
	cr_assert_eq(st.tombstones, 1);
	cr_assert_eq(up_default(s, &k), STORE_CREATED);
	cr_assert_eq(store_get(s, &k, &v), 0);
	store_stats(s, &st);
	cr_assert_eq(st.instances, 1);
	cr_assert_eq(st.tombstones, 0);
}

Test(crud, names_distinguish_instances)
{
	struct store_key a = key_n("orders", 4), b = a, c = a, d = a;
	struct store_view v;

	b.cluster = S("east");
	c.svc.group = S("g2");
	d.svc.ns = S("dev");
	cr_assert_eq(up_default(s, &a), STORE_CREATED);
	cr_assert_eq(up_default(s, &b), STORE_CREATED);
	cr_assert_eq(up_default(s, &c), STORE_CREATED);
	cr_assert_eq(up_default(s, &d), STORE_CREATED);
	cr_assert_eq(store_delete(shard_for(s, &b), &b), 0);
	cr_assert_eq(store_get(s, &a, &v), 0);
	cr_assert_eq(store_get(s, &b, &v), -ERR_NOT_FOUND);
	cr_assert_eq(store_get(s, &c, &v), 0);
	cr_assert(str_is(v.group, "g2"));
	cr_assert_eq(store_get(s, &d, &v), 0);
	cr_assert(str_is(v.ns, "dev"));
}

Test(crud, ipv6_and_ipv4_addresses)
{
	struct store_key k = key_n("orders", 0);
	struct store_view v;
	char ip[64];

	cr_assert_eq(addr_parse("2001:db8::7", 9090, &k.addr), 0);
	cr_assert_eq(up_default(s, &k), STORE_CREATED);
	cr_assert_eq(store_get(s, &k, &v), 0);
	addr_format(&v.addr, ip, sizeof(ip));
	cr_assert_str_eq(ip, "2001:db8::7");
	cr_assert_eq(v.addr.port, 9090);

	cr_assert_eq(addr_parse("192.168.1.20", 80, &k.addr), 0);
	cr_assert_eq(up_default(s, &k), STORE_CREATED);
	cr_assert_eq(store_get(s, &k, &v), 0);
	addr_format(&v.addr, ip, sizeof(ip));
	cr_assert_str_eq(ip, "192.168.1.20");
}

Test(crud, metadata_roundtrip_order_independent)
{
	struct store_key k = key_n("orders", 5);
	struct store_kv m1[] = { { S("zone"), S("a") },
		                 { S("version"), S("1.2") },
		                 { S("x"), S("") } };
	struct store_kv m2[] = { { S("version"), S("1.2") },
		                 { S("x"), S("") },
		                 { S("zone"), S("a") } };
	struct store_view v;
	struct store_val val;

	store_val_default(&val);
	val.meta = m1;
	val.meta_n = 3;
	cr_assert_eq(up(s, &k, &val), STORE_CREATED);
	val.meta = m2;
	cr_assert_eq(up(s, &k, &val), STORE_SAME, "same map in another order is no change");
	cr_assert_eq(store_get(s, &k, &v), 0);
	cr_assert_eq(store_meta_count(v.meta), 3);
	/* Sorted by key. */
	cr_assert(str_is(store_meta_at(v.meta, 0).key, "version"));
	cr_assert(str_is(store_meta_at(v.meta, 0).val, "1.2"));
	cr_assert(str_is(store_meta_at(v.meta, 1).key, "x"));
	cr_assert(str_is(store_meta_at(v.meta, 1).val, ""));
	cr_assert(str_is(store_meta_at(v.meta, 2).key, "zone"));
	m2[0].val = S("1.3");
	cr_assert_eq(up(s, &k, &val), STORE_CHANGED);
	val.meta_n = 0;
	cr_assert_eq(up(s, &k, &val), STORE_CHANGED);
	cr_assert_eq(store_get(s, &k, &v), 0);
	cr_assert_null(v.meta);
}

static void list_names(const char *svc, const struct store_filter *f, uint32_t expect)
{
	struct store_view out[64];
	struct store_svc_key sk = { .service = S(svc) };
	struct store_list_info info;
	int n = store_list(s, &sk, f, out, 64, &info);

	cr_assert_eq(n, (int)expect, "list %s: got %d want %u", svc, n, expect);
	cr_assert_eq(info.total, expect);
}

Test(crud, list_filters)
{
	struct store_val v;
	struct store_str east = S("east"), west = S("west"), none = S("nowhere");
	struct store_str both[] = { east, west };

	store_val_default(&v);
	for (uint32_t i = 0; i < 12; i++) {
		struct store_key k = key_n("pay", i + 100);

		k.cluster = i % 3 == 0 ? east : i % 3 == 1 ? west : S("DEFAULT");
		v.healthy = i % 2 == 0;
		v.enabled = i % 4 != 3;
		cr_assert_eq(up(s, &k, &v), STORE_CREATED);
	}
	list_names("pay", NULL, 12);
	list_names("pay", &(struct store_filter){ .clusters = &east, .clusters_n = 1 }, 4);
	list_names("pay", &(struct store_filter){ .clusters = both, .clusters_n = 2 }, 8);
	list_names("pay", &(struct store_filter){ .clusters = &none, .clusters_n = 1 }, 0);
	list_names("pay", &(struct store_filter){ .healthy_only = true }, 6);
	list_names("pay", &(struct store_filter){ .enabled_only = true }, 9);
	/* healthy: even i; enabled: i%4 != 3 (all even i pass); east: i%3==0 -> 0,6 */
	list_names("pay",
	           &(struct store_filter){ .clusters = &east,
	                                   .clusters_n = 1,
	                                   .healthy_only = true,
	                                   .enabled_only = true },
	           2);
	list_names("nosuch", NULL, 0);
}

Test(crud, list_truncates_but_counts_and_revision_moves)
{
	struct store_view out[4];
	struct store_svc_key sk = { .service = S("big") };
	struct store_list_info info, info2;

	for (uint32_t i = 0; i < 10; i++) {
		struct store_key k = key_n("big", i);

		cr_assert_eq(up_default(s, &k), STORE_CREATED);
	}
	cr_assert_eq(store_list(s, &sk, NULL, out, 4, &info), 4);
	cr_assert_eq(info.total, 10);
	struct store_key k = key_n("big", 3);

	cr_assert_eq(store_delete(shard_for(s, &k), &k), 0);
	cr_assert_eq(store_list(s, &sk, NULL, out, 4, &info2), 4);
	cr_assert_eq(info2.total, 9);
	cr_assert_gt(info2.revision, info.revision);
}

Test(crud, list_after_many_deletes_compacts)
{
	struct store_view out[300];
	struct store_svc_key sk = { .service = S("churn") };

	for (uint32_t i = 0; i < 300; i++) {
		struct store_key k = key_n("churn", i);

		cr_assert_eq(up_default(s, &k), STORE_CREATED);
	}
	for (uint32_t i = 0; i < 300; i += 3) {
		struct store_key k = key_n("churn", i);

		cr_assert_eq(store_delete(shard_for(s, &k), &k), 0);
		cr_assert_eq(store_delete(shard_for(s, &k), &k), -ERR_NOT_FOUND);
	}
	for (uint32_t i = 1; i < 300; i += 3) {
		struct store_key k = key_n("churn", i);

		cr_assert_eq(store_delete(shard_for(s, &k), &k), 0);
	}
	cr_assert_eq(store_list(s, &sk, NULL, out, 300, NULL), 100);
	for (uint32_t i = 0; i < 100; i++)
		cr_assert_eq(out[i].addr.ip[15] % 3 == 2 || out[i].addr.ip[14] != 0, true);
	for (uint32_t i = 2; i < 300; i += 3) {
		struct store_key k = key_n("churn", i);
		struct store_view v;

		cr_assert_eq(store_get(s, &k, &v), 0, "instance %u lost", i);
	}
}

/* ---- bounds and bad values ---- */

static int up_bad_key(struct store_key k)
{
	return up_default(s, &k);
}

/* A service record (reserved cluster): stored and found, never listed, counted apart. */
Test(crud, service_record_is_kept_but_never_listed)
{
	struct store_svc_key sk = { .service = S("orders") }, other = { .service = S("billing") };
	struct store_key rk, rk2, explicit, k = key_n("orders", 1);
	struct store_filter f = { 0 };
	struct store_str only = S(STORE_SERVICE_CLUSTER);
	struct store_list_info info;
	struct store_view out[4], v;
	struct store_stats st;
	struct store_val val;
	char ip[64];

	cr_assert_eq(store_service_key(s, &sk, &rk), 0);
	cr_assert(str_is(rk.cluster, STORE_SERVICE_CLUSTER));
	cr_assert_eq(rk.addr.port, 1);
	addr_format(&rk.addr, ip, sizeof(ip));
	cr_assert_eq(strncmp(ip, "100::", 5), 0, "%s is in 100::/64", ip);
	/* The same names give the same key, defaults spelled out or not; others another. */
	sk.ns = S("public");
	sk.group = S("DEFAULT_GROUP");
	cr_assert_eq(store_service_key(s, &sk, &explicit), 0);
	cr_assert_eq(memcmp(&explicit.addr, &rk.addr, sizeof(rk.addr)), 0);
	cr_assert_eq(store_service_key(s, &other, &rk2), 0);
	cr_assert_neq(memcmp(&rk2.addr, &rk.addr, sizeof(rk.addr)), 0);
	cr_assert_eq(store_service_key(s, &(struct store_svc_key){ .service = S("a@@b") }, &rk2),
	             -ERR_NAME_CHARS);

	store_val_default(&val);
	val.ephemeral = false;
	val.weight_milli = 500000;
	cr_assert_eq(up(s, &rk, &val), STORE_CREATED);
	cr_assert_eq(store_get(s, &rk, &v), 0);
	cr_assert_eq(v.weight_milli, 500000);
	store_stats(s, &st);
	cr_assert_eq(st.service_records, 1);
	cr_assert_eq(st.instances, 1);

	/* Not listed, not even when the filter names its cluster; the service exists. */
	cr_assert_eq(store_list(s, &sk, NULL, out, 4, &info), 0);
	cr_assert_eq(info.total, 0);
	cr_assert_neq(info.revision, 0);
	f.clusters = &only;
	f.clusters_n = 1;
	cr_assert_eq(store_list(s, &sk, &f, out, 4, &info), 0);
	cr_assert_eq(up_default(s, &k), STORE_CREATED);
	cr_assert_eq(store_list(s, &sk, NULL, out, 4, &info), 1);
	cr_assert_eq(info.total, 1);
	cr_assert(str_is(out[0].cluster, "DEFAULT"));

	/* Gone: the gauge follows. */
	cr_assert_eq(store_delete(shard_for(s, &rk), &rk), 0);
	store_stats(s, &st);
	cr_assert_eq(st.service_records, 0);
	cr_assert_eq(st.instances, 1);
}

Test(crud, bad_names)
{
	char longname[300];
	struct store_key k = key_n("ok", 1);

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';

	k.svc.service = S("");
	cr_assert_eq(up_bad_key(k), -ERR_NAME_EMPTY);
	k.svc.service = S(NULL);
	cr_assert_eq(up_bad_key(k), -ERR_NAME_EMPTY);
	k.svc.service = S(longname);
	cr_assert_eq(up_bad_key(k), -ERR_NAME_LONG);
	longname[256] = '\0';
	k.svc.service = S(longname);
	cr_assert_eq(up_bad_key(k), STORE_CREATED, "256 bytes is the default bound, allowed");
	k = key_n("ok", 1);
	k.svc.ns = S("");
	cr_assert_eq(up_bad_key(k), -ERR_NAME_EMPTY);
	k = key_n("ok", 1);
	k.svc.group = S("");
	cr_assert_eq(up_bad_key(k), -ERR_NAME_EMPTY);
	k = key_n("ok", 1);
	k.cluster = S("");
	cr_assert_eq(up_bad_key(k), -ERR_NAME_EMPTY);
	k = key_n("bad\nname", 1);
	cr_assert_eq(up_bad_key(k), -ERR_NAME_CHARS);
	k = key_n("grp@@svc", 1);
	cr_assert_eq(up_bad_key(k), -ERR_NAME_CHARS);
	k = key_n("ok", 1);
	k.cluster = S("a,b");
	cr_assert_eq(up_bad_key(k), -ERR_NAME_CHARS);
	k = key_n("ok", 1);
	k.svc.group = S("x\x7f");
	cr_assert_eq(up_bad_key(k), -ERR_NAME_CHARS);
	/* Nothing bad got stored, and it was counted. */
	struct store_stats st;

	store_stats(s, &st);
	cr_assert_eq(st.instances, 1);
	cr_assert_eq(st.rejected, 10);
}

/* Parsing is tested with its module (tests/unit/core/test_addr.c); here the store's own check. */
Test(crud, bad_addresses)
{
	struct store_key k = key_n("ok", 1);

	k.addr.port = 0;
	cr_assert_eq(up_bad_key(k), -ERR_ADDR);
	memset(k.addr.ip, 0, 16);
	k.addr.port = 80;
	cr_assert_eq(up_bad_key(k), -ERR_ADDR);
	k.addr.ip[10] = k.addr.ip[11] = 0xff; /* ::ffff:0.0.0.0 */
	cr_assert_eq(up_bad_key(k), -ERR_ADDR);
}

Test(crud, bad_values)
{
	struct store_key k = key_n("ok", 1);
	struct store_val v;
	char big[5000];
	struct store_kv kv[70];

	store_val_default(&v);
	v.weight_milli = STORE_WEIGHT_MAX * STORE_WEIGHT_SCALE + 1;
	cr_assert_eq(up(s, &k, &v), -ERR_WEIGHT);
	v.weight_milli = STORE_WEIGHT_MAX * STORE_WEIGHT_SCALE;
	cr_assert_eq(up(s, &k, &v), STORE_CREATED);
	v.weight_milli = 0;
	cr_assert_eq(up(s, &k, &v), STORE_CHANGED, "weight 0 is allowed (drained instance)");

	memset(big, 'v', sizeof(big));
	kv[0] = (struct store_kv){ S("k"), { big, 4096 } };
	v.meta = kv;
	v.meta_n = 1;
	cr_assert_eq(up(s, &k, &v), -ERR_META_LONG);
	kv[0].val.len = 4095;
	cr_assert_eq(up(s, &k, &v), STORE_CHANGED, "4096 bytes of key+value is the bound");
	for (int i = 0; i < 70; i++) {
		static char names[70][16];

		snprintf(names[i], sizeof(names[i]), "k%d", i);
		kv[i] = (struct store_kv){ S(names[i]), S("v") };
	}
	v.meta_n = 65;
	cr_assert_eq(up(s, &k, &v), -ERR_META_PAIRS);
	v.meta_n = 64;
	cr_assert_eq(up(s, &k, &v), STORE_CHANGED);
	kv[1].key = kv[0].key;
	v.meta_n = 2;
	cr_assert_eq(up(s, &k, &v), -ERR_META_KEY, "repeated key");
	kv[1].key = S("");
	cr_assert_eq(up(s, &k, &v), -ERR_META_KEY, "empty key");
	kv[1].key = (struct store_str){ big, 257 };
	cr_assert_eq(up(s, &k, &v), -ERR_META_KEY, "key over 256 bytes");
	v.meta_n = 0;

	v.timing = (struct store_timing){ 5000, 4000, 30000 };
	cr_assert_eq(up(s, &k, &v), -ERR_TIMING, "timeout before interval");
	v.timing = (struct store_timing){ 1000, 20000, 10000 };
	cr_assert_eq(up(s, &k, &v), -ERR_TIMING, "delete before timeout");
	v.timing = (struct store_timing){ 1000, 2000, 25u * 3600 * 1000 };
	cr_assert_eq(up(s, &k, &v), -ERR_TIMING, "over 24 h");
	v.timing = (struct store_timing){ 100, 300, 600 };
	cr_assert_eq(up(s, &k, &v), STORE_CHANGED);

	struct store_view got;

	cr_assert_eq(store_get(s, &k, &got), 0);
	cr_assert_eq(got.timing.interval_ms, 100);
	cr_assert_eq(got.timing.delete_ms, 600);
	cr_assert_eq(store_meta_count(got.meta), 0);
}

Test(crud, wrong_shard_is_refused)
{
	struct store_key k = key_n("orders", 9);
	uint32_t right = store_shard_of(s, &k.svc);

	cr_assert_eq(store_upsert(store_shard(s, 1 - right), &k,
	                          &(struct store_val){ .weight_milli = 1, .ephemeral = true }),
	             -ERR_WRONG_SHARD);
}

Test(crud, errors_have_messages)
{
	cr_assert_str_eq(err_str(-ERR_WEIGHT), "weight out of range 0..10000");
	cr_assert_str_eq(err_str(ERR_NOT_FOUND), "not found");
	cr_assert_str_eq(err_str(-9999), "unknown error");
}

static void limits_setup(void)
{
	store_config_default(&cfg);
	cfg.shards = 1;
	cfg.limits.instances_max = 20;
	cfg.limits.service_instances_max = 5;
	cfg.limits.services_max = 6;
	cfg.limits.clusters_max = 2;
	cfg.limits.timings_max = 3;
	cfg.limits.name_bytes_max = 8;
	fixture_open(true);
}

/* Its own suite: Criterion runs suite and test fixtures both. */
Test(crud_limits, configured_bounds, .init = limits_setup, .fini = fixture_close)
{
	struct store_key k;
	struct store_val v;
	char name[16];

	for (uint32_t i = 0; i < 5; i++) {
		k = key_n("a", i);
		cr_assert_eq(up_default(s, &k), STORE_CREATED);
	}
	k = key_n("a", 5);
	cr_assert_eq(up_default(s, &k), -ERR_LIMIT_SERVICE);
	k = key_n("a", 0);
	k.cluster = S("c2");
	cr_assert_eq(up_default(s, &k), -ERR_LIMIT_SERVICE, "service bound counts all clusters");

	k = key_n("b", 0);
	k.cluster = S("c2");
	cr_assert_eq(up_default(s, &k), STORE_CREATED);
	k.cluster = S(NULL);
	cr_assert_eq(up_default(s, &k), STORE_CREATED);
	k.cluster = S("c3");
	cr_assert_eq(up_default(s, &k), -ERR_LIMIT_CLUSTERS);

	for (uint32_t i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "s%u", i);
		k = key_n(name, 1);
		cr_assert_eq(up_default(s, &k), STORE_CREATED);
	}
	k = key_n("s9", 1);
	cr_assert_eq(up_default(s, &k), -ERR_LIMIT_SERVICES, "6 services is the bound");

	k = key_n("toolongname", 1);
	cr_assert_eq(up_default(s, &k), -ERR_NAME_LONG);

	store_val_default(&v);
	k = key_n("b", 1);
	v.timing = (struct store_timing){ 10, 20, 30 };
	cr_assert_eq(up(s, &k, &v), STORE_CREATED);
	v.timing = (struct store_timing){ 10, 20, 40 };
	cr_assert_eq(up(s, &k, &v), STORE_CHANGED);
	v.timing = (struct store_timing){ 10, 20, 50 };
	cr_assert_eq(up(s, &k, &v), -ERR_LIMIT_TIMINGS);

	/* 12 instances now; fill to the node bound of 20. */
	struct store_stats st;
	uint32_t made = 0;

	store_stats(s, &st);
	cr_assert_eq(st.instances, 12);
	for (uint32_t i = 2; i < 40; i++) {
		snprintf(name, sizeof(name), "s%u", i % 4);
		k = key_n(name, i);
		int rc = up_default(s, &k);

		if (rc == -ERR_LIMIT_INSTANCES)
			break;
		cr_assert_eq(rc, STORE_CREATED);
		made++;
	}
	cr_assert_eq(made, 8, "the node bound of 20 stops at 20, made %u", made);
}

Test(crud, bad_config_is_refused)
{
	struct store_config c;
	struct store *x;

	store_config_default(&c);
	c.shards = 0;
	cr_assert_eq(store_create(&c, &x), -ERR_INVAL);
	store_config_default(&c);
	c.shards = STORE_SHARDS_MAX + 1;
	cr_assert_eq(store_create(&c, &x), -ERR_INVAL);
	store_config_default(&c);
	c.timing = (struct store_timing){ 5000, 1000, 30000 };
	cr_assert_eq(store_create(&c, &x), -ERR_INVAL);
	store_config_default(&c);
	c.limits.timings_max = 300;
	cr_assert_eq(store_create(&c, &x), -ERR_INVAL);
}

/* Timings no instance uses any more come back; refused writes never take one. */
Test(crud_limits, timings_are_reclaimed, .init = limits_setup, .fini = fixture_close)
{
	struct store_val v;
	struct store_kv bad = { S(""), S("x") };
	struct store_key k;

	store_val_default(&v);
	v.meta = &bad;
	v.meta_n = 1;
	for (uint32_t i = 0; i < 10; i++) {
		k = key_n("t", i % 5);
		v.timing = (struct store_timing){ 10, 20, 30 + i };
		cr_assert_eq(up(s, &k, &v), -ERR_META_KEY);
	}
	v.meta_n = 0;
	/* timings_max = 3: the default and two more. */
	for (uint32_t round = 0; round < 5; round++) {
		for (uint32_t i = 0; i < 2; i++) {
			k = key_n("t", i);
			v.timing = (struct store_timing){ 10, 20, 100 * round + i + 30 };
			cr_assert_eq(up(s, &k, &v), STORE_CREATED, "round %u", round);
		}
		k = key_n("t", 2);
		v.timing = (struct store_timing){ 10, 20, 100 * round + 99 };
		cr_assert_eq(up(s, &k, &v), -ERR_LIMIT_TIMINGS, "two in use plus the default");
		for (uint32_t i = 0; i < 2; i++) {
			k = key_n("t", i);
			cr_assert_eq(store_delete(shard_for(s, &k), &k), 0);
		}
		/* Freed places come back after a grace period. */
		epoch_exit(&rd);
		store_poll(store_shard(s, 0));
		epoch_barrier(store_shard_rec(store_shard(s, 0)));
		epoch_enter(&rd);
	}
}
