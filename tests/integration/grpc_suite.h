/*
 * grpc_suite.h - what the gRPC integration tests share: one distrod with
 * short timers (started per suite, extra flags appended), and a
 * connection registered the way a Nacos 2.x client does (ServerCheck,
 * then ConnectionSetupRequest on the bi-stream). Included by one test
 * program each: the statics are that program's.
 */
#ifndef DISTRO_TEST_GRPC_SUITE_H
#define DISTRO_TEST_GRPC_SUITE_H

#include "grpc_node.h"

static struct node nd;

static inline void start_with(const char *const *more)
{
	const char *extra[32] = { "--beat-timeout",
		                  "2000",
		                  "--delete-timeout",
		                  "3000",
		                  "--beat-interval",
		                  "500",
		                  "--grpc-renew",
		                  "300",
		                  "--header-timeout",
		                  "1000",
		                  "--grpc-push-timeout",
		                  "300",
		                  NULL };
	int n = 12;

	for (int i = 0; more && more[i]; i++)
		extra[n++] = more[i];
	extra[n] = NULL;
	node_start(&nd, extra);
	cr_assert_gt(nd.grpc_port, 0, "the gRPC port is written to --grpc-port-file");
}

static inline void start(void)
{
	start_with(NULL);
}

static inline void stop(void)
{
	cr_assert_eq(node_stop(&nd), 0, "distrod exits 0 on SIGTERM");
}

/* ServerCheck, then the bi-stream with ConnectionSetupRequest: a registered connection. */
static inline struct gstream *setup_conn(struct gcli *c, char *conn_id, size_t cap)
{
	struct gmsg a;
	struct njson *d;

	gcli_connect(c, nd.grpc_port);
	cr_assert_eq(gcli_call(c, "ServerCheckRequest", "{\"headers\":{},\"requestId\":\"1\"}", &a),
	             0);
	cr_assert_str_eq(a.type, "ServerCheckResponse");
	d = gjson(&a);
	cr_assert_str_eq(nj_s(d, 0, "resultCode"), "200");
	if (conn_id)
		snprintf(conn_id, cap, "%s", nj_s(d, 0, "connectionId"));
	gmsg_free(&a);
	return gcli_setup_stream(c);
}

#endif
