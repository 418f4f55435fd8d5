/*
 * distrobench's command line: defaults, every flag in its long, short and
 * "=" forms, every bound, the rules between flags, --help listing every
 * flag, and exit code 2 with a message for bad usage.
 */
#include "distrobench/args.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARGV_MAX 64

static struct bench_config cfg;
static char err[512];

/* Parses a NULL-terminated list of arguments (the program name is added). */
static enum args_result parse(const char *first, ...)
{
	char *argv[ARGV_MAX];
	int argc = 0;
	va_list ap;

	argv[argc++] = "distrobench";
	va_start(ap, first);
	for (const char *a = first; a; a = va_arg(ap, const char *)) {
		cr_assert_lt(argc, ARGV_MAX);
		argv[argc++] = (char *)a;
	}
	va_end(ap);
	argv[argc] = NULL;
	return args_parse(argc, argv, &cfg, err, sizeof(err));
}

/* A bad value: ARGS_BAD, and the message mentions `needle`. */
#define BAD(needle, ...)                                                                           \
	do {                                                                                       \
		cr_assert_eq(parse(__VA_ARGS__, NULL), ARGS_BAD, "accepted; expected: %s",         \
		             needle);                                                              \
		cr_assert_not_null(strstr(err, needle), "message '%s' lacks '%s'", err, needle);   \
	} while (0)

#define OK(...) cr_assert_eq(parse(__VA_ARGS__, NULL), ARGS_OK, "refused: %s", err)

Test(args, defaults)
{
	cr_assert_eq(parse(NULL), ARGS_OK, "%s", err);
	cr_assert_eq(cfg.targets_n, 1);
	cr_assert_str_eq(cfg.targets[0].host, "127.0.0.1");
	cr_assert_eq(cfg.targets[0].port, 8850);
	cr_assert_eq(cfg.threads, 1);
	cr_assert_eq(cfg.conns, 50);
	cr_assert_eq(cfg.pipeline, 1);
	cr_assert_not(cfg.pipeline_given);
	cr_assert_eq(cfg.batch, 1);
	cr_assert_eq(cfg.workload, WL_HEARTBEAT);
	cr_assert_eq(cfg.instances, 10000);
	cr_assert_eq(cfg.services, 100);
	cr_assert_eq(cfg.list_size, 10);
	cr_assert_eq(cfg.subscribers, 10);
	cr_assert_eq(cfg.mix[MIX_REGISTER], 1);
	cr_assert_eq(cfg.mix[MIX_HEARTBEAT], 8);
	cr_assert_eq(cfg.mix[MIX_LIST], 1);
	cr_assert_eq(cfg.interval_ms, 0);
	cr_assert_eq(cfg.rate, 0.0);
	cr_assert_eq(cfg.tick_us, 0);
	cr_assert_eq(cfg.duration_s, 10.0);
	cr_assert_eq(cfg.warmup_s, 1.0);
	cr_assert_eq(cfg.max_error_rate, 0.0);
	cr_assert_str_eq(cfg.json_path, "");
	cr_assert_str_eq(cfg.prefix, "bench");
	cr_assert_not(cfg.quiet);
	cr_assert_str_eq(err, "");
}

Test(args, every_flag_long_form)
{
	OK("--server", "10.0.0.1:1234", "--threads", "4", "--connections", "100", "--pipeline", "8",
	   "--batch", "16", "--workload", "mix", "--instances", "20000", "--services", "50",
	   "--list-size", "20", "--mix", "2:5:3", "--subscribers", "3", "--rate", "1000.5",
	   "--tick-us", "100", "--duration", "2.5", "--warmup", "0", "--max-error-rate", "0.01",
	   "--json", "/tmp/x.json", "--prefix", "my-run_1.a", "--quiet");
	cr_assert_str_eq(cfg.targets[0].host, "10.0.0.1");
	cr_assert_eq(cfg.targets[0].port, 1234);
	cr_assert_eq(cfg.threads, 4);
	cr_assert_eq(cfg.conns, 100);
	cr_assert_eq(cfg.pipeline, 8);
	cr_assert(cfg.pipeline_given);
	cr_assert_eq(cfg.batch, 16);
	cr_assert_eq(cfg.workload, WL_MIX);
	cr_assert_eq(cfg.instances, 20000);
	cr_assert_eq(cfg.services, 50);
	cr_assert_eq(cfg.list_size, 20);
	cr_assert_eq(cfg.mix[0], 2);
	cr_assert_eq(cfg.mix[1], 5);
	cr_assert_eq(cfg.mix[2], 3);
	cr_assert_eq(cfg.subscribers, 3);
	cr_assert_float_eq(cfg.rate, 1000.5, 1e-9);
	cr_assert_eq(cfg.tick_us, 100);
	cr_assert_float_eq(cfg.duration_s, 2.5, 1e-9);
	cr_assert_eq(cfg.warmup_s, 0.0);
	cr_assert_float_eq(cfg.max_error_rate, 0.01, 1e-12);
	cr_assert_str_eq(cfg.json_path, "/tmp/x.json");
	cr_assert_str_eq(cfg.prefix, "my-run_1.a");
	cr_assert(cfg.quiet);
}

Test(args, short_and_equals_forms)
{
	OK("-s", "h:1", "-t", "2", "-c", "8", "-P", "4", "-b", "32", "-W", "register", "-n", "64",
	   "-S", "8", "-m", "5", "-r", "10", "-d", "1", "-w", "0.5", "-q");
	cr_assert_str_eq(cfg.targets[0].host, "h");
	cr_assert_eq(cfg.threads, 2);
	cr_assert_eq(cfg.conns, 8);
	cr_assert_eq(cfg.pipeline, 4);
	cr_assert_eq(cfg.batch, 32);
	cr_assert_eq(cfg.workload, WL_REGISTER);
	cr_assert_eq(cfg.instances, 64);
	cr_assert_eq(cfg.services, 8);
	cr_assert_eq(cfg.subscribers, 5);
	cr_assert_eq(cfg.rate, 10.0);
	cr_assert_eq(cfg.duration_s, 1.0);
	cr_assert_eq(cfg.warmup_s, 0.5);
	cr_assert(cfg.quiet);
	OK("-t3", "-c12", "--batch=7", "--workload=churn", "--interval-ms=0");
	cr_assert_eq(cfg.threads, 3);
	cr_assert_eq(cfg.conns, 12);
	cr_assert_eq(cfg.batch, 7);
	cr_assert_eq(cfg.workload, WL_CHURN);
}

Test(args, later_flags_win)
{
	OK("-c", "10", "-c", "20");
	cr_assert_eq(cfg.conns, 20);
}

Test(args, count_suffixes)
{
	OK("-n", "2M", "-c", "1k");
	cr_assert_eq(cfg.instances, 2000000);
	cr_assert_eq(cfg.conns, 1000);
	OK("-n", "64k");
	cr_assert_eq(cfg.instances, 64000);
	BAD("--instances", "-n", "2G");
	BAD("--instances", "-n", "1kk");
}

Test(args, every_workload)
{
	static const char *const names[] = { "register",  "heartbeat", "list", "mix",
		                             "subscribe", "churn",     "ping" };

	cr_assert_eq(sizeof(names) / sizeof(names[0]), WL_COUNT);

	for (int w = 0; w < WL_COUNT; w++) {
		cr_assert_eq(parse("-W", names[w], NULL), ARGS_OK, "%s: %s", names[w], err);
		cr_assert_eq(cfg.workload, (enum bench_workload)w);
		cr_assert_str_eq(args_workload_name((enum bench_workload)w), names[w]);
	}
	cr_assert_null(args_workload_name(WL_COUNT));
	BAD("'write' is not one of register, heartbeat", "-W", "write");
	BAD("--workload", "-W", "");
	BAD("--interval-ms applies only to --workload heartbeat", "-W", "ping", "--interval-ms",
	    "100");
}

Test(args, targets)
{
	OK("-s", "a:1,b:2,[::1]:3,[fe80::2],c");
	cr_assert_eq(cfg.targets_n, 5);
	cr_assert_str_eq(cfg.targets[0].host, "a");
	cr_assert_eq(cfg.targets[0].port, 1);
	cr_assert_str_eq(cfg.targets[1].host, "b");
	cr_assert_eq(cfg.targets[1].port, 2);
	cr_assert_str_eq(cfg.targets[2].host, "::1");
	cr_assert_eq(cfg.targets[2].port, 3);
	cr_assert_str_eq(cfg.targets[3].host, "fe80::2");
	cr_assert_eq(cfg.targets[3].port, 8850);
	cr_assert_str_eq(cfg.targets[4].host, "c");
	cr_assert_eq(cfg.targets[4].port, 8850);
	OK("-s", "h:65535");
	cr_assert_eq(cfg.targets[0].port, 65535);
}

Test(args, bad_targets)
{
	BAD("empty HOST:PORT", "-s", "");
	BAD("empty HOST:PORT", "-s", "a:1,");
	BAD("empty HOST:PORT", "-s", "a:1,,b:2");
	BAD("no host", "-s", ":8850");
	BAD("no host", "-s", "[]:1");
	BAD("bad port", "-s", "h:");
	BAD("bad port", "-s", "h:12x");
	BAD("bad port", "-s", "h:-1");
	BAD("port not in 1..65535", "-s", "h:0");
	BAD("port not in 1..65535", "-s", "h:65536");
	BAD("without ']'", "-s", "[::1:5");
	BAD("expected ':' after ']'", "-s", "[::1]5");
	BAD("[addr]:port", "-s", "::1:5");
}

Test(args, too_many_targets)
{
	char list[ARGS_TARGETS_MAX * 8 + 16];
	size_t n = 0;

	for (uint32_t i = 0; i <= ARGS_TARGETS_MAX; i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%sh:%u", i ? "," : "", i + 1);
	BAD("more than 64 targets", "-s", list);
}

Test(args, long_host)
{
	char host[ARGS_HOST_MAX + 8];

	memset(host, 'h', ARGS_HOST_MAX);
	host[ARGS_HOST_MAX] = '\0';
	BAD("longer than 255", "-s", host);
	host[ARGS_HOST_MAX - 1] = '\0';
	OK("-s", host);
}

Test(args, count_bounds)
{
	/* Each count flag: its bounds accepted, one past them refused, junk refused. */
	static const struct {
		const char *flag;
		const char *lo, *hi, *below, *above;
		const char *with, *with_value; /* what the bounds need to be valid */
	} counts[] = {
		{ "--threads", "1", "256", "0", "257", "-c", "256" },
		{ "--connections", "50", "100000", "0", "100001", "-n", "100000" },
		{ "--pipeline", "1", "4096", "0", "4097", "-c", "1000" },
		{ "--batch", "1", "1024", "0", "1025", "-d", "1" },
		{ "--instances", "10000", "67108864", "0", "67108865", "-d", "1" },
		{ "--services", "1", "1048576", "0", "1048577", "-W", "list" },
		{ "--list-size", "1", "65535", "0", "65536", "-d", "1" },
		{ "--subscribers", "1", "1048576", "0", "1048577", "-d", "1" },
		{ "--tick-us", "0", "100000", NULL, "100001", "--rate", "1000" },
		{ "--interval-ms", "0", "3600000", NULL, "3600001", "-d", "1" },
	};

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		const char *f = counts[i].flag, *extra = counts[i].with,
		           *extra_v = counts[i].with_value;

		cr_assert_eq(parse(f, counts[i].lo, extra, extra_v, NULL), ARGS_OK, "%s %s: %s", f,
		             counts[i].lo, err);
		cr_assert_eq(parse(f, counts[i].hi, extra, extra_v, NULL), ARGS_OK, "%s %s: %s", f,
		             counts[i].hi, err);
		if (counts[i].below) {
			cr_assert_eq(parse(f, counts[i].below, NULL), ARGS_BAD, "%s %s", f,
			             counts[i].below);
			cr_assert_not_null(strstr(err, f), "%s", err);
			cr_assert_not_null(strstr(err, "is not a whole number in"), "%s", err);
		}
		cr_assert_eq(parse(f, counts[i].above, NULL), ARGS_BAD, "%s %s", f,
		             counts[i].above);
		cr_assert_not_null(strstr(err, f), "%s", err);
		cr_assert_eq(parse(f, "12x", NULL), ARGS_BAD, "%s 12x", f);
		cr_assert_eq(parse(f, "-1", NULL), ARGS_BAD, "%s -1", f);
		cr_assert_eq(parse(f, "", NULL), ARGS_BAD, "%s ''", f);
		cr_assert_eq(parse(f, "99999999999999999999999", NULL), ARGS_BAD, "%s overflow", f);
	}
}

Test(args, seconds_rates_and_fractions)
{
	OK("-d", "0.001", "-w", "86400");
	cr_assert_float_eq(cfg.duration_s, 0.001, 1e-12);
	cr_assert_eq(cfg.warmup_s, 86400.0);
	OK("-d", ".5");
	cr_assert_eq(cfg.duration_s, 0.5);
	BAD("--duration: '0': must be at least 0.001 s", "-d", "0");
	BAD("--duration", "-d", "86401");
	BAD("--duration", "-d", "-1");
	BAD("--duration", "-d", "1s");
	BAD("--duration", "-d", "nan");
	BAD("--duration", "-d", "inf");
	BAD("--warmup", "-w", "x");
	OK("-r", "1000000000");
	BAD("--rate: '1000000001' is not a rate", "-r", "1000000001");
	BAD("--rate", "-r", "-5");
	BAD("--rate", "-r", "fast");
	OK("--max-error-rate", "1");
	OK("--max-error-rate", "0.5");
	BAD("--max-error-rate: '1.5' is not a fraction in 0..1", "--max-error-rate", "1.5");
	BAD("--max-error-rate", "--max-error-rate", "5%");
}

Test(args, mix)
{
	OK("--mix", "0:0:1");
	cr_assert_eq(cfg.mix[0], 0);
	cr_assert_eq(cfg.mix[2], 1);
	OK("--mix", "1000000:1:0");
	BAD("not R:H:L", "--mix", "1:2");
	BAD("not R:H:L", "--mix", "1:2:3:4");
	BAD("empty term", "--mix", "1::2");
	BAD("empty term", "--mix", ":1:2");
	BAD("at least one term must be above 0", "--mix", "0:0:0");
	BAD("'a' is not a count", "--mix", "a:1:1");
	BAD("is not a count in 0..1000000", "--mix", "1000001:1:1");
	BAD("too long", "--mix",
	    "1:1:111111111111111111111111111111111111111111111111111111111111111111111111");
}

Test(args, prefix_and_json)
{
	char longp[ARGS_PREFIX_MAX + 2];
	char longpath[ARGS_PATH_MAX + 1];

	OK("--prefix", "A.b_c-9");
	BAD("only letters, digits", "--prefix", "a b");
	BAD("only letters, digits", "--prefix", "a/b");
	BAD("only letters, digits", "--prefix", "a@@b");
	BAD("must be 1..64 bytes", "--prefix", "");
	memset(longp, 'p', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	BAD("must be 1..64 bytes", "--prefix", longp);
	longp[ARGS_PREFIX_MAX] = '\0';
	OK("--prefix", longp);
	memset(longpath, 'j', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	BAD("--json: a path longer than", "--json", longpath);
}

Test(args, usage_errors)
{
	BAD("unknown flag '--nope'", "--nope");
	BAD("unknown flag '--nope'", "--nope=3");
	BAD("unknown flag '-x'", "-x");
	BAD("unexpected argument 'extra'", "extra");
	BAD("unexpected argument '-'", "-");
	BAD("--threads needs a value (N)", "--threads");
	BAD("--server needs a value", "-s");
	BAD("--quiet takes no value", "--quiet=yes");
	BAD("--quiet takes no value", "-qx");
}

Test(args, rules_between_flags)
{
	BAD("--threads (8) must not exceed --connections (4)", "-t", "8", "-c", "4");
	BAD("--interval-ms applies only to --workload heartbeat", "-W", "list", "--interval-ms",
	    "100");
	BAD("--interval-ms and --rate exclude each other", "--interval-ms", "100", "-r", "5");
	BAD("--instances (10) must be at least --connections (50)", "-n", "10");
	BAD("--instances (10) must be at least --connections (50)", "-W", "churn", "-n", "10");
	BAD("--services (200) must not exceed --instances (100)", "-n", "100", "-S", "200");
	BAD("--tick-us applies only to an open loop", "--tick-us", "50");
	BAD("--connections x --pipeline", "-c", "2000", "-P", "4096", "-n", "2000");
	BAD("--services x --list-size", "-W", "list", "-S", "1048576", "--list-size", "65535");
	BAD("--services (16385) is over 16384 for subscribe", "-W", "subscribe", "-S", "16385");
	BAD("--services x --subscribers", "-W", "subscribe", "-S", "16384", "-m", "65");
	/* The instance rules do not apply where the instances do not matter. */
	OK("-W", "list", "-n", "1", "-S", "1000");
	OK("-W", "subscribe", "-n", "1", "-c", "200", "--tick-us", "50");
}

Test(args, open_loop_defaults)
{
	OK("-r", "1000");
	cr_assert_eq(cfg.pipeline, ARGS_PIPELINE_OPEN);
	OK("-r", "1000", "-P", "2");
	cr_assert_eq(cfg.pipeline, 2);
	OK("--interval-ms", "5000");
	cr_assert_eq(cfg.pipeline, ARGS_PIPELINE_OPEN);
	OK("-W", "subscribe");
	cr_assert_eq(cfg.rate, ARGS_CHANGE_RATE);
	OK("-W", "subscribe", "-r", "7");
	cr_assert_eq(cfg.rate, 7.0);
	OK("-W", "heartbeat");
	cr_assert_eq(cfg.pipeline, 1);
	cr_assert_eq(cfg.rate, 0.0);
}

Test(args, help)
{
	cr_assert_eq(parse("--help", NULL), ARGS_HELP);
	cr_assert_eq(parse("-h", NULL), ARGS_HELP);
	cr_assert_eq(parse("-c", "5", "-h", "--bogus", NULL), ARGS_HELP);
}

Test(args, version)
{
	cr_assert_eq(parse("--version", NULL), ARGS_VERSION);
	cr_assert_eq(parse("-V", NULL), ARGS_VERSION);
	cr_assert_eq(parse("-c", "5", "--version", "--bogus", NULL), ARGS_VERSION);
}

Test(args, version_exits_0_with_the_release, .init = cr_redirect_stdout, .exit_code = 0)
{
	char *argv[] = { "distrobench", "--version", NULL };

	args_parse_or_exit(2, argv, &cfg);
	cr_assert_fail("args_parse_or_exit returned on --version");
}

Test(args, usage_lists_every_flag)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	uint32_t n;
	const char *const *names = args_flag_names(&n);

	cr_assert_not_null(f);
	args_usage(f);
	fclose(f);
	cr_assert_geq(n, 20);
	for (uint32_t i = 0; i < n; i++)
		cr_assert_not_null(strstr(text, names[i]), "--help lacks %s", names[i]);
	for (int w = 0; w < WL_COUNT; w++)
		cr_assert_not_null(strstr(text, args_workload_name((enum bench_workload)w)));
	cr_assert_not_null(strstr(text, "[127.0.0.1:8850]"), "defaults are shown");
	free(text);
}

Test(args, bad_usage_exits_2, .exit_code = 2)
{
	char *argv[] = { "distrobench", "--pipeline", "0", NULL };

	args_parse_or_exit(3, argv, &cfg);
	cr_assert_fail("args_parse_or_exit returned on bad usage");
}

Test(args, bad_rule_exits_2, .exit_code = 2)
{
	char *argv[] = { "distrobench", "-t", "9", "-c", "3", NULL };

	args_parse_or_exit(5, argv, &cfg);
	cr_assert_fail("args_parse_or_exit returned on bad usage");
}

Test(args, help_exits_0, .exit_code = 0)
{
	char *argv[] = { "distrobench", "--help", NULL };

	cr_redirect_stdout();
	args_parse_or_exit(2, argv, &cfg);
	cr_assert_fail("args_parse_or_exit returned on --help");
}

Test(args, good_usage_returns)
{
	char *argv[] = { "distrobench", "-c", "3", NULL };

	args_parse_or_exit(3, argv, &cfg);
	cr_assert_eq(cfg.conns, 3);
}

Test(args, grpc_proto)
{
	OK("-W", "register");
	cr_assert_eq(cfg.proto, PROTO_BINARY);
	cr_assert_eq(cfg.grpc_port, 9848);
	OK("--proto", "grpc", "--grpc-port", "19848", "-W", "register", "-P", "127");
	cr_assert_eq(cfg.proto, PROTO_GRPC);
	cr_assert_eq(cfg.grpc_port, 19848);
	OK("--proto=grpc", "-W", "list", "--list-size", "4096");
	OK("--proto", "grpc", "-W", "subscribe");
	OK("--proto", "binary", "-W", "heartbeat");
	BAD("'http' is not binary or grpc", "--proto", "http");
	BAD("only --workload register, list or subscribe", "--proto", "grpc", "-W", "heartbeat");
	BAD("only --workload register, list or subscribe", "--proto", "grpc", "-W", "ping");
	BAD("--batch must be 1", "--proto", "grpc", "-W", "register", "-b", "2");
	BAD("over 127 calls in flight", "--proto", "grpc", "-W", "register", "-P", "128");
	BAD("--list-size (4097) is over 4096", "--proto", "grpc", "-W", "list", "--list-size",
	    "4097");
	BAD("--grpc-port", "--grpc-port", "0");
	BAD("--grpc-port", "--grpc-port", "65536");
}
