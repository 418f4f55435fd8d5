/*
 * loop.h - a distrobench client thread: its connections and its event loop.
 *
 * The main thread fills one struct bench_shared, starts one thread per -t
 * with loop_thread, and steps all of them through the phases together:
 * a thread finishes a phase, says so in `arrived`, and waits (still
 * serving its ring) until the main thread raises `go` past that phase.
 * Between phases the main thread reads the clock and fixes the measured
 * window. Everything a thread counts is its own (struct bench_thread's
 * stats), read by the main thread only after pthread_join; the only other
 * exchanges are the progress hand-over once a second under a per-thread
 * mutex, a few atomic counters, and the subscribe workload's change times
 * (struct loop_probe: written by the one writer of a service, read by
 * every thread holding one of its subscribers).
 */
#ifndef DISTRO_DISTROBENCH_LOOP_H
#define DISTRO_DISTROBENCH_LOOP_H

#include "distrobench/args.h"
#include "distrobench/hist.h"
#include "distrobench/plan.h"
#include "distrobench/report.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

enum bench_phase {
	PH_CONNECT,   /* open every connection */
	PH_SETUP,     /* register the population (untimed) */
	PH_SUBSCRIBE, /* subscribe workload: open every subscription */
	PH_RUN,       /* warm-up and the measured window, then the drain */
	PH_TEARDOWN,  /* list and subscribe: deregister the population */
	PH_COUNT,
};

/*
 * The send times of a service's recent changes (subscribe), by change
 * number mod LOOP_PROBE_RING. Each slot is one 64-bit word, change number
 * in the top LOOP_PROBE_SEQ_BITS and microseconds since t_start below, so a
 * reader sees a number and its time together or not at all (one atomic
 * load, no lock, no seqlock).
 */
#define LOOP_PROBE_RING     128u
#define LOOP_PROBE_SEQ_BITS 24u /* change numbers are weights: at most 10,000,000 */
#define LOOP_PROBE_US_BITS  (64u - LOOP_PROBE_SEQ_BITS)

struct loop_probe {
	uint64_t ring[LOOP_PROBE_RING]; /* atomic: seq << US_BITS | us since t_start */
	uint32_t next_seq;              /* the writer's own counter */
};

struct bench_shared {
	const struct bench_config *cfg;
	const struct plan *plan;
	struct sockaddr_storage addrs[ARGS_TARGETS_MAX];
	socklen_t addr_lens[ARGS_TARGETS_MAX];
	struct sockaddr_storage gaddrs[ARGS_TARGETS_MAX]; /* --proto grpc: the gRPC ports */
	socklen_t gaddr_lens[ARGS_TARGETS_MAX];
	struct loop_probe *probes; /* subscribe: one per service; else NULL */
	uint32_t go;               /* atomic: phases below it may run */
	uint32_t abort;            /* atomic: give up at the next phase boundary */
	uint32_t tick;             /* atomic: bumped by main once per progress line */
	uint64_t setup_ops;        /* atomic: setup items answered */
	uint64_t setup_errors;     /* atomic: failed setup items and subscriptions */
	uint64_t subscriptions;    /* atomic: subscriptions the node accepted */
	uint64_t t_start_ns;       /* open loop schedules start here (set before PH_RUN) */
	uint64_t t_measure_ns;     /* the window: [t_measure, t_end) */
	uint64_t t_end_ns;         /* atomic: main may move it earlier (SIGINT) */
};

struct bench_thread {
	uint32_t id;
	struct bench_shared *sh;
	pthread_t tid;
	uint32_t arrived;   /* atomic: phases this thread has finished */
	uint32_t tick_seen; /* atomic: the last tick it has published for */
	pthread_mutex_t mu; /* guards the three pub_ fields */
	struct hist pub_hist;
	uint64_t pub_ops, pub_errors; /* since the run started, warm-up included */
	struct bench_stats stats;     /* the window; main reads it after join */
	int rc;                       /* 0, or why the thread could not run */
	char why[512];
};

/* The thread body (arg: its struct bench_thread). */
void *loop_thread(void *arg);

#endif
