/*
 * report.h - what a run counts, and how it is printed.
 *
 * Each client thread owns one struct bench_stats and only it writes there;
 * the main thread merges them once the threads have finished, so nothing
 * here is shared while it changes. Counters are declared once
 * (BENCH_COUNTERS, an X-macro) and expanded into the struct, the merge, the
 * summary and the JSON, so a new counter cannot be left out of one of them.
 *
 * Ops: an instance of a REGISTER, HEARTBEAT or DEREGISTER batch, one LIST,
 * or one (subscriber, change) delivery by PUSH. Latency is per frame (a
 * batch's instances share it), or change-to-PUSH per delivery. Errors are
 * ops: a failed item, every item of a failed frame, the items in flight on
 * a connection that broke, a list of the wrong size, a delivery that never
 * came. Error codes below 64 are the server's (core/err.h); the client's
 * own are the REPORT_E_* codes.
 */
#ifndef DISTRO_DISTROBENCH_REPORT_H
#define DISTRO_DISTROBENCH_REPORT_H

#include "distrobench/args.h"
#include "distrobench/hist.h"

#include <stdint.h>
#include <stdio.h>

/* Op classes, each with its own latency histogram. */
enum op_class {
	CLS_REGISTER,
	CLS_HEARTBEAT,
	CLS_DEREGISTER,
	CLS_LIST,
	CLS_PUSH,
	CLS_PING,
	CLS_N,
};

#define REPORT_CODES    64u
#define REPORT_E_GRPC   59 /* a gRPC call failed: grpc-status, stream reset or resultCode */
#define REPORT_E_CONN   60 /* connection refused, broken or closed by the node */
#define REPORT_E_ANSWER 61 /* an answer that is malformed or answers nothing sent */
#define REPORT_E_LIST   62 /* a list of the wrong size */
#define REPORT_E_PUSH   63 /* a change some subscriber never got a PUSH for */

#define BENCH_COUNTERS(X)                                                                          \
	X(frames)     /* answers to the frames of the measured window */                           \
	X(ops)        /* ops answered in the window (see above) */                                 \
	X(errors)     /* failed ops */                                                             \
	X(created)    /* item results 2: a new instance */                                         \
	X(changed)    /* item results 1 */                                                         \
	X(same)       /* item results 0 (for a deregister: it existed) */                          \
	X(list_views) /* instances in the lists received */                                        \
	X(pushes)     /* PUSH frames received */                                                   \
	X(changes)    /* subscribe: changes acknowledged, sent in the window */                    \
	X(deliveries) /* subscribe: (subscriber, change) pairs a PUSH showed */                    \
	X(untimed)    /* deliveries whose change time was overwritten (not in latency) */          \
	X(busy)       /* ops the node refused as busy (code 29): also in errors, never retried */  \
	X(conns_lost) /* connections that broke */                                                 \
	X(unsent)     /* open loop: frames due in the window never sent (the node fell behind) */

struct bench_stats {
#define BENCH_COUNTER_FIELD(name) uint64_t name;
	BENCH_COUNTERS(BENCH_COUNTER_FIELD)
#undef BENCH_COUNTER_FIELD
	uint64_t ops_by[CLS_N];
	uint64_t err_codes[REPORT_CODES]; /* failed ops by code; [0] = other */
	struct hist lat[CLS_N];
};

/* Everything a run produced, for the summary and the JSON. */
struct report_run {
	struct bench_stats total;
	double seconds;        /* the measured window */
	double setup_seconds;  /* registering the population (0 if none) */
	uint64_t setup_ops;    /* instances registered in the setup */
	uint64_t setup_errors; /* failed setup items or subscriptions */
	uint64_t subscriptions;
	double cpu_user_s, cpu_sys_s; /* this process, the measured window */
	double error_rate;
	int exit_code;
};

void report_stats_init(struct bench_stats *s);
void report_stats_merge(struct bench_stats *dst, const struct bench_stats *src);

/* Counts n failed ops under code (positive; out of range goes to [0]). */
void report_error(struct bench_stats *s, int code, uint64_t n);

/* A name for an op class ("heartbeat") and a message for an error code. */
const char *report_class_name(enum op_class c);
const char *report_code_str(int code);

/* errors / ops of the window (1 when errors came and no op did). */
double report_error_rate(const struct bench_stats *s);

/* The human summary. */
void report_summary(FILE *out, const struct bench_config *c, const struct report_run *r);

/* The JSON result; 0 or -errno. */
int report_json(const char *path, const struct bench_config *c, const struct report_run *r);

#endif
