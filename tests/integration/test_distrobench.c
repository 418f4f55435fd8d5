/*
 * distrobench against a real distrod: every workload runs to its end,
 * without errors, and checks what it must (lists hold their instances,
 * every change reaches every subscriber).
 *
 * The benchmark is the instrument of perf/: a workload that hangs or
 * miscounts would silently corrupt a figure. The subscribe cases put more
 * subscriptions on one connection than its setup pipeline (SUB_PIPELINE,
 * 64): setup must go on as answers come back (a bug once left it waiting
 * for ever at 64 per connection).
 *
 * --proto grpc runs the same workloads as a Nacos 2.x client on the gRPC
 * port: register (whose instances must really be listed by the node while
 * their connections live, and gone once they close), list (every answer
 * holds the service's instances) and subscribe (every change reaches every
 * subscriber by NotifySubscriberRequest).
 */
#include "http_node.h"
#include "node.h"
#include "tool.h"

#include <stdarg.h>

static struct node node;

static void start(void)
{
	static const char *const extra[] = { "--workers", "2", NULL };

	node_start(&node, extra);
}

static void stop(void)
{
	cr_assert_eq(node_stop(&node), 0);
}

TestSuite(distrobench, .init = start, .fini = stop, .timeout = 120);

/* Runs distrobench for 1 s with args (bounded by timeout(1)); stdout into out. */
static int bench(char *out, size_t cap, const char *fmt, ...)
{
	char head[256];
	va_list ap;
	int rc;

	snprintf(head, sizeof(head), "timeout 60 %s -s %s -d 1", DISTROBENCH_BIN, node.addr);
	va_start(ap, fmt);
	rc = tool_vrun(out, cap, head, "2>/dev/null", fmt, ap);
	va_end(ap);
	return rc;
}

/* The summary's "errors N" line says 0. */
static void no_errors(const char *out)
{
	const char *e = strstr(out, "\nerrors ");
	unsigned long n;

	cr_assert_not_null(e, "no errors line in:\n%s", out);
	cr_assert_eq(sscanf(e, "\nerrors %lu", &n), 1);
	cr_assert_eq(n, 0, "errors in:\n%s", out);
}

/* The window measured something: "ops N (R/s)" with N > 0, and a latency table. Returns N. */
static unsigned long measured(const char *out)
{
	const char *o = strstr(out, "\nops ");
	unsigned long n;

	cr_assert_not_null(o, "no ops line in:\n%s", out);
	cr_assert_eq(sscanf(o, "\nops %lu", &n), 1);
	cr_assert_gt(n, 0, "nothing measured:\n%s", out);
	cr_assert(strstr(out, "latency us") != NULL, "no latency table in:\n%s", out);
	return n;
}

Test(distrobench, closed_loop_workloads)
{
	static const char *const workloads[] = { "register", "heartbeat", "list",
		                                 "mix",      "churn",     "ping" };
	char out[16384];

	for (size_t i = 0; i < sizeof(workloads) / sizeof(workloads[0]); i++) {
		int rc =
		        bench(out, sizeof(out), "-W %s -c 4 -P 4 -b 8 -n 4000 -S 40", workloads[i]);

		cr_assert_eq(rc, 0, "%s exited %d:\n%s", workloads[i], rc, out);
		no_errors(out);
		measured(out);
	}
}

Test(distrobench, open_loop_heartbeat)
{
	char out[16384];
	int rc = bench(out, sizeof(out), "-W heartbeat --interval-ms 500 -c 4 -b 4 -n 4000");

	unsigned long ops;

	cr_assert_eq(rc, 0, "exited %d:\n%s", rc, out);
	no_errors(out);
	/* 4000 instances every 500 ms: 8000 beats scheduled in the 1 s window, each answered. */
	ops = measured(out);
	cr_assert(ops >= 7600 && ops <= 8400, "%lu beats in the window, 8000 scheduled:\n%s", ops,
	          out);
}

/*
 * Every change reaches every subscriber of its service:
 * "changes N (...), N*m deliveries expected, N*m seen", and every
 * subscription was set up: "(S*m subscriptions)".
 */
static void subscribe_case(const char *args, unsigned long m, unsigned long subs)
{
	char out[16384];
	unsigned long changes, expected, seen, untimed, set_up;
	const char *c, *p;
	int rc = bench(out, sizeof(out), "-W subscribe %s", args);

	cr_assert_eq(rc, 0, "subscribe %s exited %d:\n%s", args, rc, out);
	no_errors(out);
	c = strstr(out, "\nchanges ");
	cr_assert_not_null(c, "no changes line in:\n%s", out);
	cr_assert_eq(
	        sscanf(c, "\nchanges %lu (%*[^)]), %lu deliveries expected, %lu seen (%lu untimed)",
	               &changes, &expected, &seen, &untimed),
	        4, "changes line: %.120s", c + 1);
	cr_assert_gt(changes, 0);
	cr_assert_eq(expected, changes * m, "%.120s", c + 1);
	cr_assert_eq(seen, expected, "%.120s", c + 1);
	p = strstr(out, " subscriptions)");
	cr_assert_not_null(p, "no population line in:\n%s", out);
	while (p > out && p[-1] != '(')
		p--;
	cr_assert_eq(sscanf(p, "%lu", &set_up), 1);
	cr_assert_eq(set_up, subs, "%lu subscriptions set up, %lu wanted", set_up, subs);
}

Test(distrobench, subscribe_beyond_the_setup_pipeline)
{
	subscribe_case("-S 70 -m 1 -c 1", 1, 70);      /* 70 on one connection */
	subscribe_case("-S 100 -m 10 -c 4", 10, 1000); /* 250 per connection */
}

/* --proto grpc against this node's gRPC port, for bench(). */
static const char *grpc_flags(void)
{
	static char f[64];

	cr_assert_gt(node.grpc_port, 0, "the node has no gRPC port");
	snprintf(f, sizeof(f), "--proto grpc --grpc-port %u", node.grpc_port);
	return f;
}

/* Whether the Nacos API lists ip in service svc. */
static bool listed(const char *svc, const char *ip)
{
	char path[256], want[64], *body = NULL;
	bool yes;
	int status;

	snprintf(path, sizeof(path), "/nacos/v1/ns/instance/list?serviceName=%s", svc);
	snprintf(want, sizeof(want), "\"ip\":\"%s\"", ip);
	status = http_get(node.nacos_port, path, &body, NULL, 0);
	yes = status == 200 && strstr(body, want) != NULL;
	free(body);
	return yes;
}

/*
 * Registrations over gRPC are real: while distrobench runs, every one of
 * its 40 instances (one per service: 198.18.0.0 .. 198.18.0.39, port 1024)
 * is listed by the node; they belong to their connections, so they are
 * gone once distrobench has exited.
 */
Test(distrobench, grpc_register_is_listed)
{
	char cmd[512], out[16384], svc[64], ip[32];
	bool all = false;
	int status;
	size_t n;
	FILE *p;

	snprintf(cmd, sizeof(cmd),
	         "timeout 60 %s -s %s %s -W register -c 4 -P 4 -n 40 -S 40 -d 4 -q --prefix greg "
	         "2>/dev/null",
	         DISTROBENCH_BIN, node.addr, grpc_flags());
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	/* Bounded: the run lasts 5 s; the instances are there after its first calls. */
	for (int64_t end = now_ms() + 4000; !all && now_ms() < end; nap_ms(50)) {
		all = true;
		for (int i = 0; i < 40 && all; i++) {
			snprintf(svc, sizeof(svc), "greg-40x40-%d", i);
			snprintf(ip, sizeof(ip), "198.18.0.%d", i);
			all = listed(svc, ip);
		}
	}
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	status = pclose(p);
	cr_assert(all, "not every instance registered over gRPC was listed during the run");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "distrobench failed:\n%s", out);
	no_errors(out);
	measured(out);
	cr_assert(strstr(out, "(gRPC port ") != NULL, "%s", out);
	/* Closed connections take their instances with them (bounded wait). */
	bool gone = false;

	for (int64_t end = now_ms() + 10000; !gone && now_ms() < end; nap_ms(50))
		gone = !listed("greg-40x40-0", "198.18.0.0") &&
		       !listed("greg-40x40-39", "198.18.0.39");
	cr_assert(gone, "the instances outlived their gRPC connections");
}

/* ServiceQueryRequest: every answer lists exactly the service's 10 instances (else code 62). */
Test(distrobench, grpc_list)
{
	char out[16384];
	unsigned long views;
	const char *v;
	int rc = bench(out, sizeof(out), "%s -W list -c 4 -P 4 -S 20 --list-size 10", grpc_flags());

	cr_assert_eq(rc, 0, "exited %d:\n%s", rc, out);
	no_errors(out);
	unsigned long ops = measured(out);

	v = strstr(out, "\nlists ");
	cr_assert_not_null(v, "no lists line in:\n%s", out);
	cr_assert_eq(sscanf(v, "\nlists %lu", &views), 1);
	cr_assert_eq(views, 10 * ops, "%lu instances in %lu answers:\n%s", views, ops, out);
}

/*
 * SubscribeServiceRequest, changes by binary REGISTER: every change comes
 * to every subscriber as a NotifySubscriberRequest (acked). With 4
 * connections and 20 services x 2, a connection subscribes some services
 * twice: the node pushes once, both listeners count it.
 */
Test(distrobench, grpc_subscribe)
{
	char args[128];

	snprintf(args, sizeof(args), "%s -S 20 -m 2 -c 4 -r 100", grpc_flags());
	subscribe_case(args, 2, 40);
	snprintf(args, sizeof(args), "%s -S 70 -m 1 -c 1 -r 100",
	         grpc_flags()); /* > SUB_PIPELINE */
	subscribe_case(args, 1, 70);
}
