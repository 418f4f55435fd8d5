/*
 * args.h - distrobench's settings and their command line.
 *
 * Every flag lives in one table in args.c, which drives the parser, the
 * defaults and --help alike, so a flag cannot exist without its help line.
 * The parser is a pure function of argv: no globals (no getopt state), so
 * the unit tests can call it as often as they like. Each value is checked
 * against its bound here, with a message that names the flag, the value
 * and what was expected; the cross-flag rules (threads <= connections,
 * --interval-ms only for heartbeat, ...) are checked after all flags.
 */
#ifndef DISTRO_DISTROBENCH_ARGS_H
#define DISTRO_DISTROBENCH_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ARGS_TARGETS_MAX     64u
#define ARGS_HOST_MAX        256u
#define ARGS_THREADS_MAX     256u
#define ARGS_CONNS_MAX       100000u
#define ARGS_PIPELINE_MAX    4096u
#define ARGS_BATCH_MAX       1024u      /* the protocol's default --batch-max */
#define ARGS_INSTANCES_MAX   (1u << 26) /* 10.x.y.z times 4 ports */
#define ARGS_SERVICES_MAX    (1u << 20) /* the node's default --services-max */
#define ARGS_LIST_SIZE_MAX   65535u     /* a list frame's count is a u16 */
#define ARGS_SUBS_MAX        (1u << 20) /* subscriptions in all (services x subscribers) */
#define ARGS_SUB_SERVICES    16384u     /* services of the subscribe workload */
#define ARGS_MIX_MAX         1000000u   /* one ratio term */
#define ARGS_INTERVAL_MAX_MS 3600000u   /* 1 h: the timing (x3, x6) stays under the store's 24 h */
#define ARGS_TICK_MAX_US     100000u    /* 100 ms */
#define ARGS_RATE_MAX        1e9        /* ops/s */
#define ARGS_SECONDS_MAX     86400.0
#define ARGS_PREFIX_MAX      64u
#define ARGS_PATH_MAX        4096u
#define ARGS_INFLIGHT_MAX    (1u << 22) /* connections x pipeline: frames in flight */
#define ARGS_PIPELINE_OPEN   64u        /* --pipeline's default with --rate or --interval-ms */
#define ARGS_CHANGE_RATE     100.0      /* subscribe: changes/s without --rate */
#define ARGS_GRPC_STREAMS    127u  /* --proto grpc: the node's 128 streams less the bi-stream */
#define ARGS_GRPC_LIST_MAX   4096u /* --proto grpc: instances per answer we tokenize */

/* Results of args_parse, also the process exit codes. */
enum args_result {
	ARGS_OK = 0,
	ARGS_HELP = 1,    /* --help was given: print usage, exit 0 */
	ARGS_BAD = 2,     /* a bad flag or value: the message says which; exit 2 */
	ARGS_VERSION = 3, /* --version was given: print it, exit 0 */
};

enum bench_workload {
	WL_REGISTER,
	WL_HEARTBEAT,
	WL_LIST,
	WL_MIX,
	WL_SUBSCRIBE,
	WL_CHURN,
	WL_PING,
	WL_COUNT,
};

/* What the load connections speak: distrod's binary protocol or Nacos 2.x gRPC. */
enum bench_proto { PROTO_BINARY, PROTO_GRPC };

enum mix_term { MIX_REGISTER, MIX_HEARTBEAT, MIX_LIST, MIX_TERMS };

struct bench_target {
	char host[ARGS_HOST_MAX]; /* a name or a literal address, without brackets */
	uint16_t port;
};

struct bench_config {
	struct bench_target targets[ARGS_TARGETS_MAX];
	uint32_t targets_n;
	uint32_t threads;
	uint32_t conns;
	uint32_t pipeline;
	bool pipeline_given;
	uint32_t batch;
	enum bench_workload workload;
	enum bench_proto proto;
	uint32_t grpc_port; /* --proto grpc: the gRPC port on each target's host */
	uint32_t instances;
	uint32_t services;
	uint32_t list_size;
	uint32_t subscribers;
	uint32_t mix[MIX_TERMS];
	uint32_t interval_ms; /* heartbeat: 0 = flat out */
	double rate;          /* ops/s in all; 0 = closed loop */
	uint32_t tick_us;     /* open loop: wake-up granularity; 0 = exact */
	double duration_s;
	double warmup_s;
	double max_error_rate; /* a fraction, 0..1 */
	char json_path[ARGS_PATH_MAX];
	char prefix[ARGS_PREFIX_MAX + 1];
	bool quiet; /* no progress lines */
};

/* The defaults, as --help shows them. */
void args_defaults(struct bench_config *c);

/*
 * Parses argv[1..argc-1] into c (which it first sets to the defaults).
 * ARGS_OK, ARGS_HELP, ARGS_VERSION, or ARGS_BAD with a one-line reason in err (no
 * trailing newline). Nothing is printed. O(argc).
 */
enum args_result args_parse(int argc, char **argv, struct bench_config *c, char *err,
                            size_t err_len);

/* The full --help text. */
void args_usage(FILE *out);

/* A workload's name ("heartbeat"), or NULL for a bad value. */
const char *args_workload_name(enum bench_workload w);

/* The long names of every flag, for the tests ("--rate", ...); *n gets the count. */
const char *const *args_flag_names(uint32_t *n);

/*
 * args_parse for main(): on ARGS_HELP prints usage to stdout and exits 0; on
 * ARGS_VERSION prints "distrobench VERSION (git COMMIT)" and exits 0; on
 * ARGS_BAD prints "distrobench: <reason>" and a hint to stderr and exits 2.
 */
void args_parse_or_exit(int argc, char **argv, struct bench_config *c);

#endif
