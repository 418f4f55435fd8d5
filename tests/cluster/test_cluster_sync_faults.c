/*
 * The fault hook on the peer link (--fault-drop-sync, --fault-delay-sync):
 * sync frames lost or late, verify and repair must find every difference.
 *
 * - half of every node's outgoing sync frames dropped: 500 instances
 *   registered through all three nodes and 150 of them deregistered; within
 *   a bounded wait every node lists exactly the 350, and over the next 2 s
 *   none of the 150 ever comes back; the repair counters show it was
 *   repair, not luck;
 * - every sync frame held 400 ms: the same, and the deleted stay deleted
 *   after the late frames (carrying the old registrations) arrive.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_INST      500
#define N_GONE      150
#define CONVERGE_MS 20000
#define REPAIR_MS   15000 /* verify every 200 ms (harness), two rounds, pulls */
#define WATCH_MS    2000

static struct cluster cl;
static struct distro_instance inst[N_INST];
static char ips[N_INST][16];

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start_with(const char *flag, const char *value)
{
	static const char *extra[3];

	extra[0] = flag;
	extra[1] = value;
	extra[2] = NULL;
	cluster_setup(&cl, &(struct cluster_opts){ .n = 3, .extra = extra });
	cluster_start(&cl);
	cluster_instances(inst, ips, N_INST, "faulty");
}

static void start_drop(void)
{
	start_with("--fault-drop-sync", "50");
}

static void start_delay(void)
{
	start_with("--fault-delay-sync", "400");
}

static void teardown(void)
{
	cluster_teardown(&cl);
}

/* Registers all through the three nodes in turn, then deregisters the first N_GONE. */
static void write_then_delete(void)
{
	static int res[N_INST];
	char why[256];

	if (!cluster_wait_converged(&cl, CONVERGE_MS)) {
		cluster_converged(&cl, why, sizeof(why));
		cluster_assert(&cl, false, "no agreed map: %s", why);
	}
	for (uint32_t part = 0; part < 5; part++) {
		uint32_t off = part * (N_INST / 5);

		cr_assert_eq(cluster_register(&cl, part % 3, inst + off, N_INST / 5, res), 0);
		for (uint32_t k = 0; k < N_INST / 5; k++)
			cluster_assert(&cl, res[k] >= 0, "register: %s", distro_strerror(res[k]));
	}
	cr_assert_eq(cluster_deregister(&cl, 1, inst, N_GONE, res), 0);
	for (uint32_t k = 0; k < N_GONE; k++)
		cluster_assert(&cl, res[k] >= 0 || res[k] == -3 /* not found: ok */,
		               "deregister: %s", distro_strerror(res[k]));
}

struct exact {
	int gone[3], kept[3];
};

static bool all_exact(void *arg)
{
	struct exact *x = arg;

	for (uint32_t i = 0; i < 3; i++) {
		x->gone[i] = cluster_listed(&cl, i, inst, N_GONE);
		x->kept[i] = cluster_listed(&cl, i, inst + N_GONE, N_INST - N_GONE);
		if (x->gone[i] != 0 || x->kept[i] != N_INST - N_GONE ||
		    cluster_list_count(&cl, i, "faulty") != N_INST - N_GONE)
			return false;
	}
	return true;
}

static void converge_and_stay(void)
{
	struct exact x;
	int64_t end;

	cluster_assert(&cl, wait_until(all_exact, &x, REPAIR_MS),
	               "not converged in %d ms: deleted listed %d/%d/%d, kept %d/%d/%d of %d",
	               REPAIR_MS, x.gone[0], x.gone[1], x.gone[2], x.kept[0], x.kept[1], x.kept[2],
	               N_INST - N_GONE);
	/* A deleted instance never comes back, whatever arrives late. */
	end = mono_ms() + WATCH_MS;
	while (mono_ms() < end) {
		for (uint32_t i = 0; i < 3; i++) {
			int g = cluster_listed(&cl, i, inst, N_GONE);

			cluster_assert(&cl, g == 0, "node %u lists %d deleted instances again", i,
			               g);
		}
		struct timespec ts = { 0, 50 * 1000000L };

		nanosleep(&ts, NULL);
	}
}

/* A counter of the peer thread from node i's STATS. */
static unsigned long long stat_of(uint32_t i, const char *name)
{
	static char buf[16384];
	char key[96];
	const char *p;

	cr_assert_gt(distro_stats(cluster_client(&cl, i), buf, sizeof(buf)), 0);
	snprintf(key, sizeof(key), "\n%s ", name);
	p = strstr(buf, key);
	cr_assert_not_null(p, "no %s in STATS", name);
	return strtoull(p + strlen(key), NULL, 10);
}

Test(cluster_sync_faults, half_the_sync_lost_verify_repairs_every_difference_deletes_stay_deleted,
     .init = start_drop, .fini = teardown, .timeout = 300)
{
	unsigned long long dropped = 0, repaired = 0;

	write_then_delete();
	converge_and_stay();
	for (uint32_t i = 0; i < 3; i++) {
		dropped += stat_of(i, "peer_fault_dropped");
		repaired += stat_of(i, "peer_repair_slots");
	}
	cr_assert_gt(dropped, 0, "the hook dropped sync frames");
	cr_assert_gt(repaired, 0, "and repair, not sync, made the copies equal");
}

Test(cluster_sync_faults, late_sync_is_repaired_and_never_resurrects_a_delete, .init = start_delay,
     .fini = teardown, .timeout = 300)
{
	write_then_delete();
	converge_and_stay();
	/* The late frames did arrive: sync counted them on the receivers. */
	unsigned long long in = 0;

	for (uint32_t i = 0; i < 3; i++)
		in += stat_of(i, "peer_sync_frames_in");
	cr_assert_gt(in, 0);
}
