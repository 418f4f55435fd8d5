/*
 * args.c - distrobench's command line (see args.h).
 *
 * One table, `flags`, names each flag (long and short), how its value is
 * parsed, its bounds, its default and its help line. args_defaults parses
 * each default through the same code as a user's value, so a default can
 * never be out of its own bounds, and --help prints the table, so every
 * flag is documented. Values: unsigned counts accept a k (x1000) or M
 * (x1000000) suffix; seconds and rates are decimals; nothing accepts a sign,
 * trailing bytes, NaN or infinity. Both "--name value" and "--name=value"
 * work, and short flags take "-t 4" or "-t4".
 */
#include "distrobench/args.h"

#include "core/version.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PORT  8850u /* distrod's binary protocol (--port) */
#define USAGE_COLUMNS 100

enum flag_kind {
	K_TARGETS,
	K_U32,
	K_SECONDS,
	K_RATE,
	K_FRACTION,
	K_WORKLOAD,
	K_PROTO,
	K_MIX,
	K_PREFIX,
	K_PATH,
	K_BOOL,
	K_HELP,
	K_VERSION
};

struct flag {
	const char *name;
	char short_name; /* 0: none */
	enum flag_kind kind;
	size_t off;
	uint32_t lo, hi; /* K_U32 bounds, inclusive */
	const char *metavar;
	const char *def; /* NULL: no value (flags) */
	const char *help;
};

#define OFF(f) offsetof(struct bench_config, f)

static const struct flag flags[] = {
	{ "server", 's', K_TARGETS, OFF(targets), 0, 0, "HOST:PORT[,...]", "127.0.0.1:8850",
	  "node(s) to load; connections are spread over them round-robin (IPv6 as [addr]:port)" },
	{ "threads", 't', K_U32, OFF(threads), 1, ARGS_THREADS_MAX, "N", "1",
	  "client threads, each with its own io_uring event loop" },
	{ "connections", 'c', K_U32, OFF(conns), 1, ARGS_CONNS_MAX, "N", "50",
	  "TCP connections in all, spread over the threads" },
	{ "pipeline", 'P', K_U32, OFF(pipeline), 1, ARGS_PIPELINE_MAX, "N", "1",
	  "frames in flight per connection; with --rate or --interval-ms it bounds the frames in "
	  "flight and defaults to 64" },
	{ "batch", 'b', K_U32, OFF(batch), 1, ARGS_BATCH_MAX, "N", "1",
	  "instances per REGISTER/HEARTBEAT/DEREGISTER frame" },
	{ "workload", 'W', K_WORKLOAD, OFF(workload), 0, 0, "NAME", "heartbeat",
	  "register, heartbeat, list, mix, subscribe, churn or ping" },
	{ "proto", 0, K_PROTO, OFF(proto), 0, 0, "NAME", "binary",
	  "binary, or grpc: register, list and subscribe as a Nacos 2.x client (InstanceRequest, "
	  "ServiceQueryRequest, SubscribeServiceRequest) on --grpc-port; setup and subscribe's "
	  "changes stay binary" },
	{ "grpc-port", 0, K_U32, OFF(grpc_port), 1, 65535, "PORT", "9848",
	  "--proto grpc: the Nacos gRPC port on each --server host" },
	{ "instances", 'n', K_U32, OFF(instances), 1, ARGS_INSTANCES_MAX, "N", "10000",
	  "instances of register, heartbeat, mix and churn (k and M suffixes)" },
	{ "services", 'S', K_U32, OFF(services), 1, ARGS_SERVICES_MAX, "N", "100",
	  "services the instances are spread over (list and subscribe: services listed/watched)" },
	{ "list-size", 0, K_U32, OFF(list_size), 1, ARGS_LIST_SIZE_MAX, "N", "10",
	  "list and subscribe: instances per service" },
	{ "mix", 0, K_MIX, OFF(mix), 0, 0, "R:H:L", "1:8:1",
	  "mix: register, heartbeat and list frames in this ratio" },
	{ "subscribers", 'm', K_U32, OFF(subscribers), 1, ARGS_SUBS_MAX, "M", "10",
	  "subscribe: subscriptions per service, spread over the connections" },
	{ "interval-ms", 0, K_U32, OFF(interval_ms), 0, ARGS_INTERVAL_MAX_MS, "MS", "0",
	  "heartbeat: beat each instance every MS ms (open loop); 0 = flat out" },
	{ "rate", 'r', K_RATE, OFF(rate), 0, 0, "OPS", "0",
	  "open loop: OPS ops/s in all, latency from the intended send time; 0 = closed loop "
	  "(subscribe: changes/s, default 100)" },
	{ "tick-us", 0, K_U32, OFF(tick_us), 0, ARGS_TICK_MAX_US, "US", "0",
	  "open loop: wake at most every US microseconds and send all that is due (frames up to US "
	  "late, which their latency includes; less CPU at high rates); 0 = wake for each frame" },
	{ "duration", 'd', K_SECONDS, OFF(duration_s), 0, 0, "SECONDS", "10",
	  "measured time, after the warm-up" },
	{ "warmup", 'w', K_SECONDS, OFF(warmup_s), 0, 0, "SECONDS", "1",
	  "load before measuring (shown in the progress lines, not in the results)" },
	{ "max-error-rate", 0, K_FRACTION, OFF(max_error_rate), 0, 0, "FRACTION", "0",
	  "exit 1 if errors / ops exceeds this (0..1)" },
	{ "json", 0, K_PATH, OFF(json_path), 0, 0, "FILE", "",
	  "also write the result as JSON to FILE" },
	{ "prefix", 0, K_PREFIX, OFF(prefix), 0, 0, "NAME", "bench",
	  "service names start with NAME (letters, digits, '.', '_', '-')" },
	{ "quiet", 'q', K_BOOL, OFF(quiet), 0, 0, NULL, NULL, "no progress lines on stderr" },
	{ "help", 'h', K_HELP, 0, 0, 0, NULL, NULL, "this text" },
	{ "version", 'V', K_VERSION, 0, 0, 0, NULL, NULL, "print the version and the commit" },
};

#define FLAGS_N (sizeof(flags) / sizeof(flags[0]))

static const char *const workload_names[WL_COUNT] = {
	[WL_REGISTER] = "register", [WL_HEARTBEAT] = "heartbeat", [WL_LIST] = "list",
	[WL_MIX] = "mix",           [WL_SUBSCRIBE] = "subscribe", [WL_CHURN] = "churn",
	[WL_PING] = "ping",
};

const char *args_workload_name(enum bench_workload w)
{
	return (unsigned)w < WL_COUNT ? workload_names[w] : NULL;
}

const char *const *args_flag_names(uint32_t *n)
{
	static const char *names[FLAGS_N];
	static char bufs[FLAGS_N][40];

	for (uint32_t i = 0; i < FLAGS_N; i++) {
		snprintf(bufs[i], sizeof(bufs[i]), "--%s", flags[i].name);
		names[i] = bufs[i];
	}
	*n = (uint32_t)FLAGS_N;
	return names;
}

static enum args_result fail(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
	return ARGS_BAD;
}

/* An unsigned count with an optional k/M suffix; 0 or -1. */
static int parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0, mult = 1;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p == 'k' || *p == 'K')
		mult = 1000, p++;
	else if (*p == 'M')
		mult = 1000000, p++;
	if (*p != '\0' || v > UINT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

/* A finite decimal without a sign; 0 or -1. */
static int parse_double(const char *s, double *out)
{
	char *end;
	double v;

	if ((*s < '0' || *s > '9') && *s != '.')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

static enum args_result parse_one_target(const char *s, size_t len, struct bench_target *t,
                                         char *err, size_t err_len)
{
	const char *host = s, *port = NULL;
	size_t host_len = len;
	char portbuf[16];
	uint64_t v;

	if (len == 0)
		return fail(err, err_len, "--server: an empty HOST:PORT in the list");
	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (close == NULL)
			return fail(err, err_len, "--server: '%.*s' has '[' without ']'", (int)len,
			            s);
		host = s + 1;
		host_len = (size_t)(close - host);
		if (close + 1 < s + len) {
			if (close[1] != ':')
				return fail(err, err_len,
				            "--server: '%.*s': expected ':' after ']'", (int)len,
				            s);
			port = close + 2;
		}
	} else {
		const char *colon = memchr(s, ':', len);

		if (colon) {
			if (memchr(colon + 1, ':', (size_t)(s + len - colon - 1)))
				return fail(
				        err, err_len,
				        "--server: '%.*s': write an IPv6 address as [addr]:port",
				        (int)len, s);
			host_len = (size_t)(colon - s);
			port = colon + 1;
		}
	}
	if (host_len == 0)
		return fail(err, err_len, "--server: '%.*s' has no host", (int)len, s);
	if (host_len >= ARGS_HOST_MAX)
		return fail(err, err_len, "--server: a host name longer than %u bytes",
		            ARGS_HOST_MAX - 1);
	memcpy(t->host, host, host_len);
	t->host[host_len] = '\0';
	t->port = DEFAULT_PORT;
	if (port) {
		size_t plen = (size_t)(s + len - port);

		if (plen == 0 || plen >= sizeof(portbuf))
			return fail(err, err_len, "--server: '%.*s': bad port", (int)len, s);
		memcpy(portbuf, port, plen);
		portbuf[plen] = '\0';
		for (size_t i = 0; i < plen; i++)
			if (portbuf[i] < '0' || portbuf[i] > '9')
				return fail(err, err_len, "--server: '%.*s': bad port", (int)len,
				            s);
		if (parse_u64(portbuf, &v) < 0 || v < 1 || v > 65535)
			return fail(err, err_len, "--server: '%.*s': port not in 1..65535",
			            (int)len, s);
		t->port = (uint16_t)v;
	}
	return ARGS_OK;
}

static enum args_result parse_targets(const char *s, struct bench_config *c, char *err,
                                      size_t err_len)
{
	const char *p = s;

	c->targets_n = 0;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		enum args_result r;

		if (c->targets_n == ARGS_TARGETS_MAX)
			return fail(err, err_len, "--server: more than %u targets",
			            ARGS_TARGETS_MAX);
		r = parse_one_target(p, len, &c->targets[c->targets_n], err, err_len);
		if (r != ARGS_OK)
			return r;
		c->targets_n++;
		if (comma == NULL)
			return ARGS_OK;
		p = comma + 1;
	}
}

static enum args_result parse_mix(const char *s, uint32_t *mix, char *err, size_t err_len)
{
	char buf[64];
	char *parts[MIX_TERMS], *save = NULL, *tok;
	uint32_t n = 0;
	uint64_t v, sum = 0;

	if (strlen(s) >= sizeof(buf))
		return fail(err, err_len, "--mix: '%s' is too long (expected R:H:L)", s);
	strcpy(buf, s);
	/* strtok_r would merge "1::2"; count the colons first. */
	for (const char *p = s; *p; p++)
		n += *p == ':';
	if (n != MIX_TERMS - 1)
		return fail(err, err_len,
		            "--mix: '%s' is not R:H:L (three counts for register:heartbeat:list)",
		            s);
	n = 0;
	for (tok = strtok_r(buf, ":", &save); tok && n < MIX_TERMS;
	     tok = strtok_r(NULL, ":", &save))
		parts[n++] = tok;
	if (n != MIX_TERMS)
		return fail(err, err_len, "--mix: '%s' has an empty term (expected R:H:L)", s);
	for (uint32_t i = 0; i < MIX_TERMS; i++) {
		if (parse_u64(parts[i], &v) < 0 || v > ARGS_MIX_MAX)
			return fail(err, err_len, "--mix: '%s' is not a count in 0..%u", parts[i],
			            ARGS_MIX_MAX);
		mix[i] = (uint32_t)v;
		sum += v;
	}
	if (sum == 0)
		return fail(err, err_len, "--mix: '%s': at least one term must be above 0", s);
	return ARGS_OK;
}

static enum args_result set_value(const struct flag *f, const char *v, struct bench_config *c,
                                  char *err, size_t err_len)
{
	char *base = (char *)c + f->off;
	uint64_t u;
	double d;
	size_t len;

	switch (f->kind) {
	case K_TARGETS:
		return parse_targets(v, c, err, err_len);
	case K_U32:
		if (parse_u64(v, &u) < 0 || u < f->lo || u > f->hi)
			return fail(err, err_len, "--%s: '%s' is not a whole number in %u..%u",
			            f->name, v, f->lo, f->hi);
		*(uint32_t *)(void *)base = (uint32_t)u;
		if (f->off == OFF(pipeline))
			c->pipeline_given = true;
		return ARGS_OK;
	case K_SECONDS:
		if (parse_double(v, &d) < 0 || d > ARGS_SECONDS_MAX)
			return fail(err, err_len,
			            "--%s: '%s' is not a number of seconds in 0..%.0f", f->name, v,
			            ARGS_SECONDS_MAX);
		if (f->off == OFF(duration_s) && d < 0.001)
			return fail(err, err_len, "--%s: '%s': must be at least 0.001 s", f->name,
			            v);
		*(double *)(void *)base = d;
		return ARGS_OK;
	case K_RATE:
		if (parse_double(v, &d) < 0 || d > ARGS_RATE_MAX)
			return fail(err, err_len, "--%s: '%s' is not a rate in 0..%.0f ops/s",
			            f->name, v, ARGS_RATE_MAX);
		*(double *)(void *)base = d;
		return ARGS_OK;
	case K_FRACTION:
		if (parse_double(v, &d) < 0 || d > 1.0)
			return fail(err, err_len, "--%s: '%s' is not a fraction in 0..1", f->name,
			            v);
		*(double *)(void *)base = d;
		return ARGS_OK;
	case K_WORKLOAD:
		for (int w = 0; w < WL_COUNT; w++) {
			if (strcmp(v, workload_names[w]) == 0) {
				c->workload = (enum bench_workload)w;
				return ARGS_OK;
			}
		}
		return fail(err, err_len,
		            "--%s: '%s' is not one of register, heartbeat, list, mix, subscribe, "
		            "churn, ping",
		            f->name, v);
	case K_PROTO:
		if (strcmp(v, "binary") == 0 || strcmp(v, "grpc") == 0) {
			c->proto = v[0] == 'g' ? PROTO_GRPC : PROTO_BINARY;
			return ARGS_OK;
		}
		return fail(err, err_len, "--%s: '%s' is not binary or grpc", f->name, v);
	case K_MIX:
		return parse_mix(v, c->mix, err, err_len);
	case K_PREFIX:
		len = strlen(v);
		if (len == 0 || len > ARGS_PREFIX_MAX)
			return fail(err, err_len, "--%s: must be 1..%u bytes", f->name,
			            ARGS_PREFIX_MAX);
		for (size_t i = 0; i < len; i++) {
			char ch = v[i];

			if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
				return fail(err, err_len,
				            "--%s: '%s': only letters, digits, '.', '_' and '-'",
				            f->name, v);
		}
		memcpy(c->prefix, v, len + 1);
		return ARGS_OK;
	case K_PATH:
		len = strlen(v);
		if (len >= ARGS_PATH_MAX)
			return fail(err, err_len, "--%s: a path longer than %u bytes", f->name,
			            ARGS_PATH_MAX - 1);
		memcpy(c->json_path, v, len + 1);
		return ARGS_OK;
	case K_BOOL:
	case K_HELP:
	case K_VERSION:
		break;
	}
	return fail(err, err_len, "--%s takes no value", f->name);
}

void args_defaults(struct bench_config *c)
{
	char err[256];

	memset(c, 0, sizeof(*c));
	for (uint32_t i = 0; i < FLAGS_N; i++) {
		/* The table's defaults are within their own bounds (a unit test checks). */
		if (flags[i].def &&
		    set_value(&flags[i], flags[i].def, c, err, sizeof(err)) != ARGS_OK)
			abort();
	}
	c->pipeline_given = false;
}

static const struct flag *find_long(const char *name, size_t len)
{
	for (uint32_t i = 0; i < FLAGS_N; i++)
		if (strlen(flags[i].name) == len && memcmp(flags[i].name, name, len) == 0)
			return &flags[i];
	return NULL;
}

static const struct flag *find_short(char ch)
{
	for (uint32_t i = 0; i < FLAGS_N; i++)
		if (flags[i].short_name && flags[i].short_name == ch)
			return &flags[i];
	return NULL;
}

/* Rules between flags, once all are read. */
static enum args_result check_all(struct bench_config *c, char *err, size_t err_len)
{
	enum bench_workload w = c->workload;
	bool owns = w == WL_REGISTER || w == WL_HEARTBEAT || w == WL_MIX || w == WL_CHURN;

	if (c->threads > c->conns)
		return fail(err, err_len, "--threads (%u) must not exceed --connections (%u)",
		            c->threads, c->conns);
	if (c->interval_ms && w != WL_HEARTBEAT)
		return fail(err, err_len, "--interval-ms applies only to --workload heartbeat");
	if (c->tick_us && c->rate == 0 && c->interval_ms == 0 && w != WL_SUBSCRIBE)
		return fail(err, err_len,
		            "--tick-us applies only to an open loop (--rate or "
		            "--interval-ms)");
	if (c->interval_ms && c->rate > 0)
		return fail(err, err_len, "--interval-ms and --rate exclude each other");
	if (owns && c->instances < c->conns)
		return fail(err, err_len,
		            "--instances (%u) must be at least --connections (%u): each "
		            "connection owns a share of the instances",
		            c->instances, c->conns);
	if (owns && c->services > c->instances)
		return fail(err, err_len, "--services (%u) must not exceed --instances (%u)",
		            c->services, c->instances);
	if ((w == WL_LIST || w == WL_SUBSCRIBE) &&
	    (uint64_t)c->services * c->list_size > ARGS_INSTANCES_MAX)
		return fail(err, err_len, "--services x --list-size (%llu) is over %u instances",
		            (unsigned long long)c->services * c->list_size, ARGS_INSTANCES_MAX);
	if (w == WL_SUBSCRIBE && c->services > ARGS_SUB_SERVICES)
		return fail(err, err_len, "--services (%u) is over %u for subscribe", c->services,
		            ARGS_SUB_SERVICES);
	if (w == WL_SUBSCRIBE && (uint64_t)c->services * c->subscribers > ARGS_SUBS_MAX)
		return fail(err, err_len,
		            "--services x --subscribers (%llu) is over %u subscriptions",
		            (unsigned long long)c->services * c->subscribers, ARGS_SUBS_MAX);
	if (c->proto == PROTO_GRPC) {
		if (w != WL_REGISTER && w != WL_LIST && w != WL_SUBSCRIBE)
			return fail(err, err_len,
			            "--proto grpc: only --workload register, list or subscribe");
		if (c->batch != 1)
			return fail(
			        err, err_len,
			        "--proto grpc: --batch must be 1 (one InstanceRequest per call)");
		if (c->pipeline > ARGS_GRPC_STREAMS)
			return fail(err, err_len,
			            "--proto grpc: --pipeline (%u) is over %u calls in flight (the "
			            "node's 128 streams less the bi-stream)",
			            c->pipeline, ARGS_GRPC_STREAMS);
		if ((w == WL_LIST || w == WL_SUBSCRIBE) && c->list_size > ARGS_GRPC_LIST_MAX)
			return fail(err, err_len, "--proto grpc: --list-size (%u) is over %u",
			            c->list_size, ARGS_GRPC_LIST_MAX);
	}
	if (w == WL_SUBSCRIBE && c->rate == 0)
		c->rate = ARGS_CHANGE_RATE;
	if (!c->pipeline_given && (c->rate > 0 || c->interval_ms > 0))
		c->pipeline = ARGS_PIPELINE_OPEN;
	if ((uint64_t)c->conns * c->pipeline > ARGS_INFLIGHT_MAX)
		return fail(err, err_len,
		            "--connections x --pipeline (%llu) is over %u frames in flight",
		            (unsigned long long)c->conns * c->pipeline, ARGS_INFLIGHT_MAX);
	return ARGS_OK;
}

enum args_result args_parse(int argc, char **argv, struct bench_config *c, char *err,
                            size_t err_len)
{
	args_defaults(c);
	if (err_len)
		err[0] = '\0';
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *value = NULL;
		const struct flag *f;
		enum args_result r;

		if (a[0] == '-' && a[1] == '-' && a[2] != '\0') {
			const char *eq = strchr(a + 2, '=');
			size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);

			f = find_long(a + 2, len);
			if (f == NULL)
				return fail(err, err_len, "unknown flag '%.*s'", (int)len + 2, a);
			if (eq)
				value = eq + 1;
		} else if (a[0] == '-' && a[1] != '\0' && a[1] != '-') {
			f = find_short(a[1]);
			if (f == NULL)
				return fail(err, err_len, "unknown flag '-%c'", a[1]);
			if (a[2] != '\0')
				value = a + 2;
		} else {
			return fail(err, err_len, "unexpected argument '%s' (flags only)", a);
		}
		if (f->kind == K_HELP)
			return ARGS_HELP;
		if (f->kind == K_VERSION)
			return ARGS_VERSION;
		if (f->kind == K_BOOL) {
			if (value)
				return fail(err, err_len, "--%s takes no value", f->name);
			*(bool *)((char *)c + f->off) = true;
			continue;
		}
		if (value == NULL) {
			if (i + 1 >= argc)
				return fail(err, err_len, "--%s needs a value (%s)", f->name,
				            f->metavar);
			value = argv[++i];
		}
		r = set_value(f, value, c, err, err_len);
		if (r != ARGS_OK)
			return r;
	}
	return check_all(c, err, err_len);
}

/* Prints text's words, each after a space, from column `indent` on, wrapped before `width`. */
static void print_wrapped(FILE *out, const char *text, int indent, int width)
{
	const char *p = text;
	int col = indent;

	while (*p) {
		const char *end = strchr(p, ' ');
		int len = end ? (int)(end - p) : (int)strlen(p);

		if (col > indent && col + 1 + len > width) {
			fprintf(out, "\n%*s", indent, "");
			col = indent;
		}
		fprintf(out, " %.*s", len, p);
		col += 1 + len;
		p += len;
		while (*p == ' ')
			p++;
	}
	fputc('\n', out);
}

void args_usage(FILE *out)
{
	fprintf(out,
	        "usage: distrobench [flags]\n"
	        "\n"
	        "Loads distrod nodes over the binary protocol and reports throughput, latency\n"
	        "percentiles and errors. Closed loop by default (connections x pipeline x\n"
	        "batch); open loop with --rate (or --interval-ms for heartbeat). Progress on\n"
	        "stderr every second, the summary on stdout. Exit 0, 1 if the error rate is\n"
	        "over --max-error-rate (or the load could not run), 2 for bad flags.\n"
	        "\n"
	        "Workloads:\n"
	        "  register   register --instances over --services, then re-register them\n"
	        "             (each pass flips the weight, so every later register changes)\n"
	        "  heartbeat  register the instances (untimed), then heartbeat them\n"
	        "  list       register --services x --list-size (untimed), then LIST services\n"
	        "  mix        register the instances, then --mix register:heartbeat:list frames\n"
	        "  subscribe  --subscribers per service watch --services of --list-size; a\n"
	        "             writer changes one instance --rate times/s; latency is change to\n"
	        "             PUSH showing it, for every subscriber\n"
	        "  churn      register then deregister each batch of instances, in cycles\n"
	        "  ping       PING frames, no store work: the transport's ceiling\n"
	        "\n"
	        "Flags:\n");
	for (uint32_t i = 0; i < FLAGS_N; i++) {
		const struct flag *f = &flags[i];
		char left[64];

		if (f->short_name)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", f->short_name, f->name,
			         f->metavar ? " " : "", f->metavar ? f->metavar : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", f->name, f->metavar ? " " : "",
			         f->metavar ? f->metavar : "");
		char text[512];

		if (f->def && f->def[0])
			snprintf(text, sizeof(text), "%s [%s]", f->help, f->def);
		else
			snprintf(text, sizeof(text), "%s", f->help);
		fprintf(out, "  %-30s", left);
		print_wrapped(out, text, 32, USAGE_COLUMNS);
	}
}

void args_parse_or_exit(int argc, char **argv, struct bench_config *c)
{
	char err[512];

	switch (args_parse(argc, argv, c, err, sizeof(err))) {
	case ARGS_OK:
		return;
	case ARGS_HELP:
		args_usage(stdout);
		exit(0);
	case ARGS_VERSION:
		printf("distrobench %s\n", DISTRO_VERSION_LINE);
		exit(0);
	case ARGS_BAD:
		break;
	}
	fprintf(stderr, "distrobench: %s\n(distrobench --help lists the flags)\n", err);
	exit(ARGS_BAD);
}
