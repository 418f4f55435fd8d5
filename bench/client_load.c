/*
 * client_load.c - a simple closed-loop load through the blocking client
 * library (include/distro/client.h), for a first throughput figure.
 *
 *   client_load [-s HOST:PORT] [-c CONNS] [-d SECONDS] [-b BATCH] [-n INSTANCES]
 *               [--op register|heartbeat|list] [--server-pid PID]
 *
 * Each of CONNS threads owns one client (one TCP connection) and INSTANCES
 * instances of its own service "load-<INSTANCES>-<thread>", with addresses
 * 10.x.y.z (port 8080) numbered across all threads so no two threads share an
 * instance. Instances live on in the node after a run until they expire, so
 * the instance count is in the service's name: a later run with another -n
 * never finds a service holding more instances than it registered. A thread
 * first registers its instances (untimed, frames of up to 1024), waits for
 * the others at a barrier, then runs the chosen operation until the main
 * thread raises the stop flag after SECONDS:
 *
 *   register, heartbeat  BATCH instances per frame, walking its instances
 *                        round-robin; an op is one instance.
 *   list                 lists its own service (INSTANCES instances; BATCH is
 *                        ignored); an op is one list call, and every call must
 *                        return all INSTANCES instances.
 *
 * The client blocks on each call, so a connection has exactly one frame in
 * flight: this is a closed loop, and the throughput is CONNS / latency, not
 * what the node could take with pipelining. That is the later distrobench's
 * job; this program measures what an application using the library sees.
 *
 * Latency is the time around each library call (encode, send, wait, decode),
 * recorded per thread in a log-linear histogram of microseconds: exact below
 * 128 us, then 64 sub-buckets per power of two (at most 1.6 % high), merged
 * at the end. Percentiles are reported as the upper edge of their bucket.
 *
 * With --server-pid the node's CPU time (utime + stime from /proc/PID/stat)
 * is read at the start and the end of the timed window and reported per
 * million operations, next to this process's own CPU time, since on a small
 * machine the two compete for the same cores.
 *
 * Bounds: CONNS <= 256, BATCH <= 1024 (the protocol's), CONNS * INSTANCES <=
 * 2^24 (the 10.x.y.z space). A thread stops early after ERRORS_MAX errors.
 * Any error (a failed call, a failed item, a short list) makes the exit
 * status 1; bad usage is 2.
 */
#include "distro/client.h"

#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define CONNS_MAX         256u
#define BATCH_MAX         1024u
#define INSTANCES_ALL_MAX (1u << 24)
#define ERRORS_MAX        1000u
#define ERRORS_PRINTED    5u
#define SECONDS_MAX       3600u
#define TIMEOUT_MS        5000u
#define PORT_BASE         8080u

/* Histogram: values 0..127 us exactly, then 64 sub-buckets per power of two. */
#define HIST_LINEAR   128u
#define HIST_SUB_BITS 6u
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_EXP_MAX  40u /* 2^40 us: far beyond any call */
#define HIST_BUCKETS  (HIST_LINEAR + (HIST_EXP_MAX - 7u + 1u) * HIST_SUB)

enum load_op { OP_LOAD_REGISTER, OP_LOAD_HEARTBEAT, OP_LOAD_LIST };

struct hist {
	uint64_t count[HIST_BUCKETS];
	uint64_t n;
	uint64_t max_us;
};

struct load_config {
	const char *server;
	uint32_t conns;
	uint32_t seconds;
	uint32_t batch;
	uint32_t instances; /* per connection */
	enum load_op op;
	long server_pid; /* 0: not measured */
};

/* Shared between the main thread and the workers. */
struct load_shared {
	const struct load_config *cfg;
	pthread_barrier_t start; /* workers registered, timing begins */
	int stop;                /* set by main after the duration (atomic) */
};

struct load_thread {
	struct load_shared *sh;
	uint32_t index;
	pthread_t tid;
	/* results, read by main after join */
	uint64_t ops;    /* instances written, or list calls */
	uint64_t frames; /* library calls */
	uint64_t listed; /* instances returned by list calls */
	uint64_t errors;
	uint64_t end_ns; /* when its last timed call returned */
	int setup_rc;    /* non-zero: never reached the timed loop */
	struct hist hist;
};

static const char *op_name(enum load_op op)
{
	return op == OP_LOAD_REGISTER ? "register" : op == OP_LOAD_HEARTBEAT ? "heartbeat" : "list";
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t hist_index(uint64_t v)
{
	uint32_t e, shift;

	if (v < HIST_LINEAR)
		return (uint32_t)v;
	e = 63u - (uint32_t)__builtin_clzll(v);
	if (e > HIST_EXP_MAX)
		return HIST_BUCKETS - 1;
	shift = e - HIST_SUB_BITS;
	return HIST_LINEAR + (e - 7u) * HIST_SUB + (uint32_t)((v >> shift) - HIST_SUB);
}

/* The largest value that falls into bucket i. */
static uint64_t hist_upper(uint32_t i)
{
	uint32_t e, m;

	if (i < HIST_LINEAR)
		return i;
	e = (i - HIST_LINEAR) / HIST_SUB + 7u;
	m = (i - HIST_LINEAR) % HIST_SUB + HIST_SUB;
	return (((uint64_t)m + 1) << (e - HIST_SUB_BITS)) - 1;
}

static void hist_record(struct hist *h, uint64_t us)
{
	h->count[hist_index(us)]++;
	h->n++;
	if (us > h->max_us)
		h->max_us = us;
}

static void hist_merge(struct hist *into, const struct hist *from)
{
	for (uint32_t i = 0; i < HIST_BUCKETS; i++)
		into->count[i] += from->count[i];
	into->n += from->n;
	if (from->max_us > into->max_us)
		into->max_us = from->max_us;
}

/* The value at quantile q (0..1), bounded by the exact maximum. */
static uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->n == 0)
		return 0;
	rank = (uint64_t)(q * (double)h->n);
	if (rank >= h->n)
		rank = h->n - 1;
	for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen > rank) {
			uint64_t v = hist_upper(i);

			return v < h->max_us ? v : h->max_us;
		}
	}
	return h->max_us;
}

/* utime + stime of a process, in seconds; negative if unreadable. */
static double proc_cpu_s(long pid)
{
	char path[64], buf[1024];
	unsigned long long ut, st;
	const char *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields resume after the last ')'. */
	p = strrchr(buf, ')');
	if (p == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

/* Counts n errors; the first few of each thread are printed with rc's reason. */
static void note_errors(struct load_thread *t, const char *what, int rc, uint64_t n)
{
	if (t->errors < ERRORS_PRINTED)
		fprintf(stderr, "client_load: thread %u: %s: %s\n", t->index, what,
		        distro_strerror(rc));
	t->errors += n;
}

/* The first failed item's code, or 0; *bad gets how many failed. */
static int item_errors(const int *results, uint32_t n, uint32_t *bad)
{
	int first = 0;

	*bad = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (results[i] < 0) {
			if (first == 0)
				first = results[i];
			(*bad)++;
		}
	}
	return first;
}

static void count_entry(void *ctx, const struct distro_entry *e)
{
	(void)e;
	(*(uint32_t *)ctx)++;
}

/*
 * Registers the thread's instances in frames of up to BATCH_MAX. Returns 0 or
 * the first error; failed items count as errors.
 */
static int setup(struct load_thread *t, struct distro_client *c, const struct distro_instance *in,
                 uint32_t n, int *results)
{
	for (uint32_t i = 0; i < n; i += BATCH_MAX) {
		uint32_t k = n - i < BATCH_MAX ? n - i : BATCH_MAX;
		int rc = distro_register(c, in + i, k, results);
		uint32_t bad;

		if (rc < 0) {
			note_errors(t, "register (setup)", rc, 1);
			return rc;
		}
		if ((rc = item_errors(results, k, &bad)) < 0) {
			note_errors(t, "register item (setup)", rc, bad);
			return rc;
		}
	}
	return 0;
}

static void *load_thread_main(void *arg)
{
	struct load_thread *t = arg;
	const struct load_config *cfg = t->sh->cfg;
	uint32_t n = cfg->instances, b = cfg->batch, next = 0;
	struct distro_instance *in = NULL;
	struct distro_client *c = NULL;
	char(*ips)[16] = NULL;
	char service[32];
	int *results = NULL;
	int rc;

	/* The size in the name: a service always holds the same instances, whatever ran before. */
	snprintf(service, sizeof(service), "load-%u-%u", n, t->index);
	in = calloc(n, sizeof(*in));
	ips = calloc(n, sizeof(*ips));
	results = calloc(n > BATCH_MAX ? BATCH_MAX : n, sizeof(*results));
	if (in == NULL || ips == NULL || results == NULL) {
		rc = -DISTRO_ENOMEM;
		note_errors(t, "allocating instances", rc, 1);
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t g = t->index * n + i; /* < 2^24: checked in main */

		snprintf(ips[i], sizeof(ips[i]), "10.%u.%u.%u", (g >> 16) & 255u, (g >> 8) & 255u,
		         g & 255u);
		distro_instance_init(&in[i]);
		in[i].service = service;
		in[i].ip = ips[i];
		in[i].port = PORT_BASE;
	}
	if ((rc = distro_connect(cfg->server, TIMEOUT_MS, &c)) < 0)
		note_errors(t, "connect", rc, 1);
	else
		rc = setup(t, c, in, n, results);
out:
	t->setup_rc = rc;
	/* Every thread reaches the barrier, failed or not, so main never hangs. */
	pthread_barrier_wait(&t->sh->start);
	if (rc < 0)
		goto done;

	while (!__atomic_load_n(&t->sh->stop, __ATOMIC_RELAXED) && t->errors < ERRORS_MAX) {
		uint64_t t0 = now_ns(), t1;
		uint32_t got = 0, k = 0;

		switch (cfg->op) {
		case OP_LOAD_REGISTER:
		case OP_LOAD_HEARTBEAT:
			/* b <= n (checked in main); wrap to keep every frame b items long. */
			if (next + b > n)
				next = 0;
			k = b;
			rc = cfg->op == OP_LOAD_REGISTER
			             ? distro_register(c, in + next, k, results)
			             : distro_heartbeat(c, in + next, k, results);
			next += k;
			break;
		case OP_LOAD_LIST:
			rc = distro_list(c, NULL, NULL, service, NULL, count_entry, &got, NULL);
			break;
		}
		t1 = now_ns();
		if (rc < 0) {
			note_errors(t, op_name(cfg->op), rc, 1);
			continue;
		}
		hist_record(&t->hist, (t1 - t0) / 1000u);
		t->frames++;
		t->end_ns = t1;
		if (cfg->op == OP_LOAD_LIST) {
			t->ops++;
			t->listed += got;
			if (got != n || (uint32_t)rc != n) {
				if (t->errors < ERRORS_PRINTED)
					fprintf(stderr,
					        "client_load: thread %u: listed %u of %u "
					        "instances\n",
					        t->index, got, n);
				t->errors++;
			}
		} else {
			uint32_t bad;

			if ((rc = item_errors(results, k, &bad)) < 0)
				note_errors(t, "item", rc, bad);
			t->ops += k - bad;
		}
	}
done:
	if (c)
		distro_close(c);
	free(results);
	free(ips);
	free(in);
	return NULL;
}

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: client_load [-s HOST:PORT] [-c CONNS] [-d SECONDS] [-b BATCH] [-n "
	        "INSTANCES]\n"
	        "                   [--op register|heartbeat|list] [--server-pid PID]\n"
	        "  -s, --server HOST:PORT   node (default 127.0.0.1:8850)\n"
	        "  -c, --conns N            connections, one thread each (default 16, max %u)\n"
	        "  -d, --duration S         timed seconds (default 10)\n"
	        "  -b, --batch N            instances per frame for register/heartbeat (default 1, "
	        "max %u)\n"
	        "  -n, --instances N        instances per connection (default 1024; for list, the\n"
	        "                           size of the listed service)\n"
	        "  --op OP                  register, heartbeat (default) or list\n"
	        "  --server-pid PID         report the node's CPU time per million ops\n",
	        CONNS_MAX, BATCH_MAX);
}

static int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct load_config *cfg)
{
	static const struct option opts[] = { { "server", required_argument, NULL, 's' },
		                              { "conns", required_argument, NULL, 'c' },
		                              { "duration", required_argument, NULL, 'd' },
		                              { "batch", required_argument, NULL, 'b' },
		                              { "instances", required_argument, NULL, 'n' },
		                              { "op", required_argument, NULL, 'o' },
		                              { "server-pid", required_argument, NULL, 'p' },
		                              { "help", no_argument, NULL, 'h' },
		                              { NULL, 0, NULL, 0 } };
	uint32_t pid;
	int ch;

	*cfg = (struct load_config){ "127.0.0.1:8850", 16, 10, 1, 1024, OP_LOAD_HEARTBEAT, 0 };
	while ((ch = getopt_long(argc, argv, "s:c:d:b:n:h", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			cfg->server = optarg;
			break;
		case 'c':
			if (parse_u32(optarg, 1, CONNS_MAX, &cfg->conns) < 0)
				goto bad;
			break;
		case 'd':
			if (parse_u32(optarg, 1, SECONDS_MAX, &cfg->seconds) < 0)
				goto bad;
			break;
		case 'b':
			if (parse_u32(optarg, 1, BATCH_MAX, &cfg->batch) < 0)
				goto bad;
			break;
		case 'n':
			if (parse_u32(optarg, 1, INSTANCES_ALL_MAX, &cfg->instances) < 0)
				goto bad;
			break;
		case 'o':
			if (strcmp(optarg, "register") == 0)
				cfg->op = OP_LOAD_REGISTER;
			else if (strcmp(optarg, "heartbeat") == 0)
				cfg->op = OP_LOAD_HEARTBEAT;
			else if (strcmp(optarg, "list") == 0)
				cfg->op = OP_LOAD_LIST;
			else
				goto bad;
			break;
		case 'p':
			if (parse_u32(optarg, 1, UINT32_MAX, &pid) < 0)
				goto bad;
			cfg->server_pid = pid;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			goto bad;
		}
	}
	if (optind != argc)
		goto bad;
	if ((uint64_t)cfg->conns * cfg->instances > INSTANCES_ALL_MAX) {
		fprintf(stderr, "client_load: conns * instances must be at most %u\n",
		        INSTANCES_ALL_MAX);
		return -1;
	}
	if (cfg->op != OP_LOAD_LIST && cfg->batch > cfg->instances) {
		fprintf(stderr, "client_load: batch (%u) exceeds instances per connection (%u)\n",
		        cfg->batch, cfg->instances);
		return -1;
	}
	return 0;
bad:
	usage(stderr);
	return -1;
}

int main(int argc, char **argv)
{
	struct load_config cfg;
	struct load_shared sh;
	struct load_thread *th;
	struct hist *all;
	uint64_t t0, t_end = 0, ops = 0, frames = 0, listed = 0, errors = 0;
	double srv0 = -1, srv1 = -1, self0, elapsed_s, ops_s, mops;
	int setup_failed = 0;

	if (parse_args(argc, argv, &cfg) < 0)
		return 2;
	th = calloc(cfg.conns, sizeof(*th));
	all = calloc(1, sizeof(*all));
	if (th == NULL || all == NULL) {
		fprintf(stderr, "client_load: out of memory\n");
		return 1;
	}
	sh.cfg = &cfg;
	sh.stop = 0;
	pthread_barrier_init(&sh.start, NULL, cfg.conns + 1);
	for (uint32_t i = 0; i < cfg.conns; i++) {
		th[i].sh = &sh;
		th[i].index = i;
		if (pthread_create(&th[i].tid, NULL, load_thread_main, &th[i]) != 0) {
			/* The started threads wait at the barrier for this one: give up. */
			fprintf(stderr, "client_load: cannot start thread %u\n", i);
			return 1;
		}
	}
	pthread_barrier_wait(&sh.start);

	t0 = now_ns();
	self0 = self_cpu_s();
	if (cfg.server_pid)
		srv0 = proc_cpu_s(cfg.server_pid);
	{
		struct timespec ts = { (time_t)cfg.seconds, 0 };

		while (nanosleep(&ts, &ts) != 0)
			;
	}
	__atomic_store_n(&sh.stop, 1, __ATOMIC_RELAXED);
	if (cfg.server_pid)
		srv1 = proc_cpu_s(cfg.server_pid);
	for (uint32_t i = 0; i < cfg.conns; i++)
		pthread_join(th[i].tid, NULL);
	double self_cpu = self_cpu_s() - self0;

	for (uint32_t i = 0; i < cfg.conns; i++) {
		if (th[i].setup_rc)
			setup_failed++;
		ops += th[i].ops;
		frames += th[i].frames;
		listed += th[i].listed;
		errors += th[i].errors;
		if (th[i].end_ns > t_end)
			t_end = th[i].end_ns;
		hist_merge(all, &th[i].hist);
	}
	elapsed_s = t_end > t0 ? (double)(t_end - t0) / 1e9 : (double)cfg.seconds;
	ops_s = (double)ops / elapsed_s;
	mops = (double)ops / 1e6;

	printf("op %s, %u connections, batch %u, %u instances per connection, %.2f s\n",
	       op_name(cfg.op), cfg.conns, cfg.op == OP_LOAD_LIST ? 0 : cfg.batch, cfg.instances,
	       elapsed_s);
	printf("ops/s     %.0f  (%s)\n", ops_s,
	       cfg.op == OP_LOAD_LIST ? "list calls" : "instances");
	printf("frames/s  %.0f\n", (double)frames / elapsed_s);
	if (cfg.op == OP_LOAD_LIST)
		printf("listed/s  %.0f  (instances returned)\n", (double)listed / elapsed_s);
	printf("latency   p50 %" PRIu64 " us  p99 %" PRIu64 " us  max %" PRIu64 " us  (per call)\n",
	       hist_quantile(all, 0.50), hist_quantile(all, 0.99), all->max_us);
	printf("errors    %" PRIu64 "%s\n", errors,
	       setup_failed ? "  (including connections that failed to set up: see above)" : "");
	printf("cpu       client %.2f s", self_cpu);
	if (mops > 0)
		printf(" = %.2f s per M ops", self_cpu / mops);
	if (srv0 >= 0 && srv1 >= 0) {
		printf("; server %.2f s", srv1 - srv0);
		if (mops > 0)
			printf(" = %.2f s per M ops", (srv1 - srv0) / mops);
	} else if (cfg.server_pid) {
		printf("; server: /proc/%ld/stat unreadable", cfg.server_pid);
	}
	printf("\n");
	/* One line for scripts. */
	printf("RESULT op=%s conns=%u batch=%u instances=%u seconds=%.3f ops_s=%.0f frames_s=%.0f "
	       "p50_us=%" PRIu64 " p99_us=%" PRIu64 " max_us=%" PRIu64 " errors=%" PRIu64
	       " client_cpu_s=%.2f server_cpu_s=%.2f\n",
	       op_name(cfg.op), cfg.conns, cfg.op == OP_LOAD_LIST ? 0 : cfg.batch, cfg.instances,
	       elapsed_s, ops_s, (double)frames / elapsed_s, hist_quantile(all, 0.50),
	       hist_quantile(all, 0.99), all->max_us, errors, self_cpu,
	       srv0 >= 0 && srv1 >= 0 ? srv1 - srv0 : -1.0);
	pthread_barrier_destroy(&sh.start);
	free(all);
	free(th);
	return errors ? 1 : 0;
}
