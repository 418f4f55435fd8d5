/*
 * main.c - distrobench: the load tool for distrod (docs/distrobench.md).
 *
 * The main thread sends nothing. It parses the flags (args.c), resolves the
 * targets, builds the plan (plan.c), starts -t client threads (loop.c) and
 * steps them through the phases together: connect, set up the population,
 * subscribe, run, tear down. Before the run it fixes the schedule: the
 * open-loop start, the end of the warm-up and the end of the window, all
 * on CLOCK_MONOTONIC, so every thread measures the same window. During the
 * run it prints a progress line every second from what the threads hand
 * over (ops and errors so far, a histogram of the last second), and
 * samples its own CPU time at both ends of the window. When the threads
 * have ended it merges their counts and histograms, adds the deliveries
 * that never came (subscribe), prints the summary, writes the JSON, and
 * exits 1 if the error rate is over --max-error-rate, the setup failed, or
 * nothing was measured.
 *
 * SIGINT during the run ends the window early (the result covers what was
 * measured); a second one kills the process.
 */
#include "distrobench/args.h"
#include "distrobench/hist.h"
#include "distrobench/loop.h"
#include "distrobench/plan.h"
#include "distrobench/report.h"

#include "core/atomic.h"
#include "core/clock.h"
#include "core/mem.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define POLL_NS        2000000ull /* the main thread looks at the threads this often */
#define TICK_NS        1000000000ull
#define TICK_WAIT_NS   100000000ull /* for the threads' hand-over of a progress tick */
#define START_DELAY_NS 1000000ull   /* the open-loop schedules start this far ahead */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };

	nanosleep(&ts, NULL);
}

static double cpu_seconds(const struct timeval *tv)
{
	return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

static int resolve(const struct bench_target *t, struct sockaddr_storage *out, socklen_t *len)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", t->port);
	rc = getaddrinfo(t->host, port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "distrobench: %s: %s\n", t->host, gai_strerror(rc));
		return -1;
	}
	memcpy(out, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

struct run {
	struct bench_config cfg;
	struct plan plan;
	struct bench_shared sh;
	struct bench_thread *th;
	uint32_t started;
};

/* A thread that could not start its phase (it said why), or -1. */
static int failed_thread(const struct run *r)
{
	for (uint32_t i = 0; i < r->started; i++)
		if (LOAD_ACQUIRE(&r->th[i].arrived) == PH_COUNT && r->th[i].rc)
			return (int)i;
	return -1;
}

static bool all_arrived(const struct run *r, enum bench_phase ph)
{
	for (uint32_t i = 0; i < r->started; i++)
		if (LOAD_ACQUIRE(&r->th[i].arrived) <= (uint32_t)ph)
			return false;
	return true;
}

/* Progress: hands the threads a tick and prints what they give back. */
struct progress {
	uint64_t last_ops, last_errors, last_ns;
	struct hist h;
};

static void progress_line(struct run *r, struct progress *p, uint64_t now)
{
	uint32_t tick = LOAD_RELAXED(&r->sh.tick) + 1;
	uint64_t ops = 0, errors = 0, waited = 0;
	const char *label;
	double dt;

	STORE_RELEASE(&r->sh.tick, tick);
	for (uint32_t i = 0; i < r->started; i++) {
		while (LOAD_ACQUIRE(&r->th[i].tick_seen) != tick &&
		       LOAD_ACQUIRE(&r->th[i].arrived) <= PH_RUN && waited < TICK_WAIT_NS) {
			sleep_ns(POLL_NS / 4);
			waited += POLL_NS / 4;
		}
	}
	hist_reset(&p->h);
	for (uint32_t i = 0; i < r->started; i++) {
		pthread_mutex_lock(&r->th[i].mu);
		hist_merge(&p->h, &r->th[i].pub_hist);
		hist_reset(&r->th[i].pub_hist);
		ops += r->th[i].pub_ops;
		errors += r->th[i].pub_errors;
		pthread_mutex_unlock(&r->th[i].mu);
	}
	dt = (double)(now - p->last_ns) / 1e9;
	/* The line is about the second that just ended: name it by its start. */
	label = p->last_ns < r->sh.t_measure_ns              ? "warmup"
	        : p->last_ns < LOAD_RELAXED(&r->sh.t_end_ns) ? "run"
	                                                     : "drain";
	if (!r->cfg.quiet)
		fprintf(stderr,
		        "[%6.1fs] %-6s %10.0f %s/s  p50 %llu us  p99 %llu us  errors %llu\n",
		        (double)(now - r->sh.t_start_ns) / 1e9, label,
		        dt > 0 ? (double)(ops - p->last_ops) / dt : 0.0,
		        r->cfg.workload == WL_SUBSCRIBE ? "deliveries" : "ops",
		        (unsigned long long)hist_percentile(&p->h, 50),
		        (unsigned long long)hist_percentile(&p->h, 99),
		        (unsigned long long)(errors - p->last_errors));
	p->last_ops = ops;
	p->last_errors = errors;
	p->last_ns = now;
}

/* Waits for every thread to finish phase ph; false if one failed or we were stopped. */
static bool wait_phase(struct run *r, enum bench_phase ph)
{
	uint64_t next = clock_mono_ns() + TICK_NS, t0 = clock_mono_ns();
	uint64_t total =
	        (uint64_t)r->plan.population * (r->plan.setup_per_target ? r->cfg.targets_n : 1);
	int bad;

	while (!all_arrived(r, ph)) {
		uint64_t now;

		bad = failed_thread(r);
		if (bad >= 0) {
			fprintf(stderr, "distrobench: %s\n", r->th[bad].why);
			return false;
		}
		if (interrupted)
			return false;
		sleep_ns(POLL_NS);
		now = clock_mono_ns();
		if (now >= next && !r->cfg.quiet) {
			if (ph == PH_SETUP)
				fprintf(stderr,
				        "[setup %5.1fs] %llu/%llu instances registered, %llu "
				        "errors\n",
				        (double)(now - t0) / 1e9,
				        (unsigned long long)LOAD_RELAXED(&r->sh.setup_ops),
				        (unsigned long long)total,
				        (unsigned long long)LOAD_RELAXED(&r->sh.setup_errors));
			else if (ph == PH_SUBSCRIBE)
				fprintf(stderr, "[subscribe %5.1fs] %llu subscriptions\n",
				        (double)(now - t0) / 1e9,
				        (unsigned long long)LOAD_RELAXED(&r->sh.subscriptions));
			next = now + TICK_NS;
		}
	}
	bad = failed_thread(r);
	if (bad >= 0)
		fprintf(stderr, "distrobench: %s\n", r->th[bad].why);
	return bad < 0;
}

/* The run phase: progress every second, CPU at both ends of the window. */
static void watch_run(struct run *r, struct rusage *cpu0, struct rusage *cpu1)
{
	struct progress p;
	uint64_t next, now;
	bool have0 = false, have1 = false;

	memset(&p, 0, sizeof(p));
	p.last_ns = r->sh.t_start_ns;
	next = r->sh.t_start_ns + TICK_NS;
	while (!all_arrived(r, PH_RUN)) {
		sleep_ns(POLL_NS);
		now = clock_mono_ns();
		if (interrupted && now < LOAD_RELAXED(&r->sh.t_end_ns)) {
			STORE_RELAXED(&r->sh.t_end_ns, now); /* the window ends here */
			interrupted = 0;
			signal(SIGINT, SIG_DFL); /* a second ^C kills */
		}
		if (!have0 && now >= r->sh.t_measure_ns) {
			getrusage(RUSAGE_SELF, cpu0);
			have0 = true;
		}
		if (!have1 && now >= LOAD_RELAXED(&r->sh.t_end_ns)) {
			getrusage(RUSAGE_SELF, cpu1);
			have1 = true;
			if (!have0) {
				*cpu0 = *cpu1;
				have0 = true;
			}
		}
		if (now >= next && now < LOAD_RELAXED(&r->sh.t_end_ns) + TICK_NS) {
			progress_line(r, &p, now);
			next += TICK_NS;
		}
	}
	/* The last second (or less) of the window, if no tick covered it. */
	now = clock_mono_ns();
	if (p.last_ns < LOAD_RELAXED(&r->sh.t_end_ns))
		progress_line(r, &p,
		              now < LOAD_RELAXED(&r->sh.t_end_ns) ? now
		                                                  : LOAD_RELAXED(&r->sh.t_end_ns));
	if (!have1)
		getrusage(RUSAGE_SELF, cpu1);
	if (!have0)
		*cpu0 = *cpu1;
}

static void release(struct run *r, enum bench_phase next)
{
	STORE_RELEASE(&r->sh.go, (uint32_t)next);
}

static void stop_threads(struct run *r)
{
	STORE_RELEASE(&r->sh.abort, 1);
	release(r, PH_COUNT);
	for (uint32_t i = 0; i < r->started; i++)
		pthread_join(r->th[i].tid, NULL);
}

int main(int argc, char **argv)
{
	static struct run r; /* large (histograms): not on the stack */
	struct rusage cpu0, cpu1;
	struct report_run res;
	struct sigaction sa;
	uint64_t setup_t0, lost, expected;
	int rc;

	args_parse_or_exit(argc, argv, &r.cfg);
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	for (uint32_t i = 0; i < r.cfg.targets_n; i++) {
		struct bench_target g = r.cfg.targets[i];

		if (resolve(&r.cfg.targets[i], &r.sh.addrs[i], &r.sh.addr_lens[i]) < 0)
			return 1;
		g.port = (uint16_t)r.cfg.grpc_port; /* --proto grpc: the same host's gRPC port */
		if (r.cfg.proto == PROTO_GRPC &&
		    resolve(&g, &r.sh.gaddrs[i], &r.sh.gaddr_lens[i]) < 0)
			return 1;
	}
	if (plan_init(&r.plan, &r.cfg) < 0) {
		fprintf(stderr, "distrobench: out of memory for %u service names\n",
		        r.cfg.services);
		return 1;
	}
	r.sh.cfg = &r.cfg;
	r.sh.plan = &r.plan;
	if (r.cfg.workload == WL_SUBSCRIBE) {
		r.sh.probes = mem_calloc(r.cfg.services, sizeof(r.sh.probes[0]));
		if (r.sh.probes == NULL) {
			fprintf(stderr, "distrobench: out of memory\n");
			return 1;
		}
	}
	r.th = mem_calloc(r.cfg.threads, sizeof(r.th[0]));
	if (r.th == NULL) {
		fprintf(stderr, "distrobench: out of memory\n");
		return 1;
	}
	for (uint32_t i = 0; i < r.cfg.threads; i++) {
		struct bench_thread *t = &r.th[i];

		t->id = i;
		t->sh = &r.sh;
		pthread_mutex_init(&t->mu, NULL);
		hist_reset(&t->pub_hist);
		report_stats_init(&t->stats);
		rc = pthread_create(&t->tid, NULL, loop_thread, t);
		if (rc != 0) {
			fprintf(stderr, "distrobench: pthread_create: %s\n", strerror(rc));
			stop_threads(&r);
			return 1;
		}
		r.started++;
	}

	if (!wait_phase(&r, PH_CONNECT)) {
		stop_threads(&r);
		return 1;
	}
	setup_t0 = clock_mono_ns();
	release(&r, PH_SETUP);
	if (!wait_phase(&r, PH_SETUP)) {
		stop_threads(&r);
		return 1;
	}
	memset(&res, 0, sizeof(res));
	res.setup_seconds = r.plan.setup ? (double)(clock_mono_ns() - setup_t0) / 1e9 : 0;
	res.setup_ops = LOAD_RELAXED(&r.sh.setup_ops);
	release(&r, PH_SUBSCRIBE);
	if (!wait_phase(&r, PH_SUBSCRIBE)) {
		stop_threads(&r);
		return 1;
	}
	if (!r.cfg.quiet && r.cfg.workload == WL_SUBSCRIBE)
		fprintf(stderr, "[subscribe] %llu subscriptions open\n",
		        (unsigned long long)LOAD_RELAXED(&r.sh.subscriptions));
	/* The schedule, fixed before any thread may start the run. */
	r.sh.t_start_ns = clock_mono_ns() + START_DELAY_NS;
	r.sh.t_measure_ns = r.sh.t_start_ns + (uint64_t)(r.cfg.warmup_s * 1e9);
	STORE_RELAXED(&r.sh.t_end_ns, r.sh.t_measure_ns + (uint64_t)(r.cfg.duration_s * 1e9));
	release(&r, PH_RUN);
	watch_run(&r, &cpu0, &cpu1);
	release(&r, PH_TEARDOWN);
	if (!wait_phase(&r, PH_TEARDOWN)) {
		stop_threads(&r);
		return 1;
	}
	release(&r, PH_COUNT);
	for (uint32_t i = 0; i < r.started; i++)
		pthread_join(r.th[i].tid, NULL);

	report_stats_init(&res.total);
	for (uint32_t i = 0; i < r.started; i++)
		report_stats_merge(&res.total, &r.th[i].stats);
	{
		uint64_t end = LOAD_RELAXED(&r.sh.t_end_ns);

		res.seconds = end > r.sh.t_measure_ns ? (double)(end - r.sh.t_measure_ns) / 1e9 : 0;
	}
	res.setup_errors = LOAD_RELAXED(&r.sh.setup_errors);
	res.subscriptions = LOAD_RELAXED(&r.sh.subscriptions);
	if (r.cfg.workload == WL_SUBSCRIBE) {
		expected = res.total.changes * r.cfg.subscribers;
		lost = expected > res.total.deliveries ? expected - res.total.deliveries : 0;
		if (lost) {
			report_error(&res.total, REPORT_E_PUSH, lost);
			res.total.ops += lost; /* a lost delivery is a failed op */
		}
	}
	res.cpu_user_s = cpu_seconds(&cpu1.ru_utime) - cpu_seconds(&cpu0.ru_utime);
	res.cpu_sys_s = cpu_seconds(&cpu1.ru_stime) - cpu_seconds(&cpu0.ru_stime);
	res.error_rate = report_error_rate(&res.total);
	res.exit_code =
	        (res.error_rate > r.cfg.max_error_rate || res.setup_errors || res.total.ops == 0)
	                ? 1
	                : 0;
	report_summary(stdout, &r.cfg, &res);
	fflush(stdout);
	if (res.total.ops == 0)
		fprintf(stderr, "distrobench: no operation completed in the window\n");
	if (res.setup_errors)
		fprintf(stderr, "distrobench: %llu setup errors (the population is incomplete)\n",
		        (unsigned long long)res.setup_errors);
	if (r.cfg.json_path[0]) {
		rc = report_json(r.cfg.json_path, &r.cfg, &res);
		if (rc < 0) {
			fprintf(stderr, "distrobench: --json %s: %s\n", r.cfg.json_path,
			        strerror(-rc));
			res.exit_code = 1;
		}
	}
	plan_free(&r.plan);
	mem_free(r.sh.probes);
	mem_free(r.th);
	return res.exit_code;
}
