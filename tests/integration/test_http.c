/*
 * The HTTP admin port of a real distrod: /health, /metrics after real
 * traffic through the client library (checked by promtool), the error
 * answers, keep-alive and pipelining, the connection limit, the idle
 * timeout, and a port already taken failing the start.
 */
#include "http_node.h"

static struct http_node hn;
static struct distro_client *cl;

static void start(void)
{
	static const char *const extra[] = { "--workers", "2", NULL };

	http_node_start(&hn, extra);
	cl = node_client(&hn.node);
}

static void stop(void)
{
	distro_close(cl);
	cr_assert_eq(http_node_stop(&hn), 0, "distrod exits 0 on SIGTERM with the admin port open");
}

TestSuite(http, .init = start, .fini = stop, .timeout = 60);

/* Registers 3 instances in 2 services, deregisters 1, lists and pings. */
static void traffic(void)
{
	struct distro_instance in[3] = { inst("orders", "10.0.0.1", 80),
		                         inst("orders", "10.0.0.2", 80),
		                         inst("billing", "10.0.0.3", 81) };
	struct distro_instance gone = inst("orders", "10.0.0.9", 80);
	int res[3];

	cr_assert_eq(distro_register(cl, in, 3, res), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(res[i], 2, "created");
	cr_assert_eq(distro_register(cl, &gone, 1, NULL), 0);
	cr_assert_eq(distro_deregister(cl, &gone, 1, NULL), 0);
	cr_assert_eq(distro_list(cl, NULL, NULL, "orders", NULL, NULL, NULL, NULL), 2);
	cr_assert_eq(distro_ping(cl), 0);
}

static void has_line(const char *text, const char *line)
{
	char want[256];

	snprintf(want, sizeof(want), "\n%s\n", line);
	cr_assert_not_null(strstr(text, want), "no line \"%s\" in /metrics:\n%s", line, text);
}

static uint64_t value_of(const char *text, const char *series)
{
	char want[256];
	const char *p;

	snprintf(want, sizeof(want), "\n%s ", series);
	p = strstr(text, want);
	cr_assert_not_null(p, "no series %s in /metrics", series);
	return strtoull(p + strlen(want), NULL, 10);
}

Test(http, health_is_up)
{
	char *body, ctype[128];

	cr_assert_eq(http_get(hn.http_port, "/health", &body, ctype, sizeof(ctype)), 200);
	cr_assert_str_eq(ctype, "application/json");
	cr_assert_str_eq(body, "{\"status\":\"UP\"}");
	free(body);
}

Test(http, metrics_count_real_traffic)
{
	char *body, ctype[128];

	traffic();
	cr_assert_eq(http_get(hn.http_port, "/metrics", &body, ctype, sizeof(ctype)), 200);
	cr_assert_str_eq(ctype, "text/plain; version=0.0.4");
	has_line(body, "# TYPE distrod_instances gauge");
	has_line(body, "distrod_instances 3");
	has_line(body, "distrod_services 2");
	has_line(body, "distrod_operations_total{op=\"register\"} 4");
	has_line(body, "distrod_operations_total{op=\"deregister\"} 1");
	has_line(body, "distrod_operations_total{op=\"list\"} 1");
	has_line(body, "distrod_operations_total{op=\"ping\"} 1");
	has_line(body, "distrod_connections 1"); /* the client's */
	has_line(body, "distrod_connections_total{result=\"accepted\"} 1");
	has_line(body, "distrod_workers 2");
	has_line(body, "# TYPE distrod_request_duration_seconds histogram");
	cr_assert_geq(value_of(body, "distrod_request_duration_seconds_count"), 5);
	cr_assert_eq(value_of(body, "distrod_request_duration_seconds_bucket{le=\"+Inf\"}"),
	             value_of(body, "distrod_request_duration_seconds_count"));
	cr_assert_gt(value_of(body, "distrod_bytes_total{dir=\"in\"}"), 0);
	cr_assert_gt(value_of(body, "distrod_bytes_total{dir=\"out\"}"), 0);
	cr_assert_not_null(strstr(body, "\ndistrod_subscribers "));
	cr_assert_not_null(strstr(body, "\ndistrod_expired_total{kind=\"removed\"} "));
	cr_assert_not_null(strstr(body, "\ndistrod_xcore_messages_total "));
	cr_assert_not_null(strstr(body, "\ndistrod_protocol_errors_total "));
	cr_assert_not_null(strstr(body, "\ndistrod_item_errors_total "));
	cr_assert_not_null(strstr(
	        body, "\ndistrod_uring_completions_per_loop_bucket{worker=\"1\",le=\"+Inf\"} "));
	cr_assert_gt(value_of(body, "distrod_uring_completions_total"), 0);
	/* Two workers, 64 buffers each at start; one client's few requests need no more. */
	cr_assert_eq(value_of(body, "distrod_uring_recv_buffers"), 128);
	cr_assert_eq(value_of(body, "distrod_uring_recv_nobufs_total"), 0);
	cr_assert_geq(value_of(body, "distrod_uring_recv_buffers_peak"), 1);
	cr_assert_leq(value_of(body, "distrod_uring_recv_buffers_peak"), 128);
	free(body);
}

static const char *promtool_path(void)
{
	static const char *const paths[] = { "/usr/bin/promtool", "/usr/local/bin/promtool" };

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

Test(http, promtool_check_metrics)
{
	const char *promtool = promtool_path();
	char *body, cmd[512], out[8192], path[] = "/tmp/distrod-metrics-XXXXXX";
	size_t got;
	FILE *p;
	int fd, status;

	if (promtool == NULL)
		cr_skip_test("promtool is not installed (Debian package prometheus; tools/deps "
		             "installs it): /metrics not validated");
	traffic();
	cr_assert_eq(http_get(hn.http_port, "/metrics", &body, NULL, 0), 200);
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	close(fd);
	snprintf(cmd, sizeof(cmd), "%s check metrics < %s 2>&1", promtool, path);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	got = fread(out, 1, sizeof(out) - 1, p);
	out[got] = 0;
	status = pclose(p);
	unlink(path);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	          "promtool check metrics: exit %d:\n%s", WEXITSTATUS(status), out);
	cr_assert_eq(got, 0, "promtool check metrics printed:\n%s", out);
	free(body);
}

Test(http, errors_and_keep_alive)
{
	struct http_conn *c = http_open(hn.http_port);
	struct http_resp r;
	char v[128];
	const char *nope = "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n";
	const char *post = "POST /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
	const char *head = "HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n";
	const char *health = "GET /health HTTP/1.1\r\nHost: t\r\n\r\n";

	http_send(c, nope, strlen(nope));
	http_read(c, &r, false);
	cr_assert_eq(r.status, 404);
	cr_assert_str_eq(http_header(&r, "Connection", v, sizeof(v)), "keep-alive");

	http_send(c, post, strlen(post));
	http_read(c, &r, false);
	cr_assert_eq(r.status, 405);
	cr_assert_str_eq(http_header(&r, "Allow", v, sizeof(v)), "GET, HEAD");

	/* HEAD: the GET's headers, no body (the next answer would be garbled otherwise). */
	http_send(c, head, strlen(head));
	http_read(c, &r, true);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(http_header(&r, "Content-Length", v, sizeof(v)), "15");

	http_send(c, health, strlen(health));
	http_read(c, &r, false);
	cr_assert_eq(r.status, 200, "same connection still served");
	cr_assert_eq(r.body_len, 15);

	/* Garbage: 400, then the server closes. */
	http_send(c, "GARBAGE\r\n\r\n", 11);
	http_read(c, &r, false);
	cr_assert_eq(r.status, 400);
	cr_assert_str_eq(http_header(&r, "Connection", v, sizeof(v)), "close");
	cr_assert(http_eof(c), "closed after 400");
	http_close(c);
}

Test(http, bodies_and_big_heads_close)
{
	struct http_conn *c = http_open(hn.http_port);
	struct http_resp r;
	const char *body = "GET /health HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
	char *big = malloc(20000);

	http_send(c, body, strlen(body));
	http_read(c, &r, false);
	cr_assert_eq(r.status, 413);
	cr_assert(http_eof(c));
	http_close(c);

	c = http_open(hn.http_port);
	strcpy(big, "GET /health HTTP/1.1\r\nX-Big: ");
	memset(big + strlen(big), 'a', 10000);
	strcpy(big + 10029, "\r\n\r\n");
	http_send(c, big, strlen(big));
	http_read(c, &r, false);
	cr_assert_eq(r.status, 431);
	cr_assert(http_eof(c));
	http_close(c);
	free(big);
}

Test(http, pipelined_requests_answered_in_order)
{
	struct http_conn *c = http_open(hn.http_port);
	struct http_resp r;
	const char *three = "GET /health HTTP/1.1\r\n\r\n"
	                    "GET /nope HTTP/1.1\r\n\r\n"
	                    "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n";

	http_send(c, three, strlen(three));
	http_read(c, &r, false);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.body_len, 15);
	http_read(c, &r, false);
	cr_assert_eq(r.status, 404);
	http_read(c, &r, false);
	cr_assert_eq(r.status, 200);
	cr_assert_not_null(memmem(r.body, r.body_len, "distrod_instances", 17));
	cr_assert(http_eof(c), "Connection: close honoured");
	http_close(c);
}

/*
 * 64 slots, 16 per address: 64 idle keep-alive connections from four
 * addresses fill them; a 65th from a fifth address is served by evicting
 * the one that waited longest (it sees EOF), and a 17th from one address
 * is answered 503 and closed, so the client learns why.
 */
Test(http, connection_limit)
{
	enum { N = 64, PER = 16 };
	static struct http_conn *conns[N];
	const char *health = "GET /health HTTP/1.1\r\n\r\n";
	struct http_conn *extra;
	struct http_resp r;
	char *body, src[32];

	for (int i = 0; i < N; i++) {
		snprintf(src, sizeof(src), "127.0.0.%d", 1 + i / PER);
		conns[i] = http_open_from(hn.http_port, src);
		http_send(conns[i], health, strlen(health));
		http_read(conns[i], &r, false);
		cr_assert_eq(r.status, 200, "connection %d", i);
	}
	extra = http_open_from(hn.http_port, "127.0.0.5");
	http_send(extra, health, strlen(health));
	http_read(extra, &r, false);
	cr_assert_eq(r.status, 200, "the 65th is served: the longest-waiting one made room");
	http_close(extra);
	cr_assert(http_eof(conns[0]), "the longest-waiting connection was evicted");

	extra = http_open_from(hn.http_port, "127.0.0.2");
	http_read(extra, &r, false);
	cr_assert_eq(r.status, 503, "the 17th from one address is told why");
	cr_assert_not_null(memmem(r.body, r.body_len, "from this address", 17));
	cr_assert(http_eof(extra));
	http_close(extra);
	for (int i = 0; i < N; i++)
		http_close(conns[i]);
	cr_assert_eq(http_get(hn.http_port, "/metrics", &body, NULL, 0), 200);
	cr_assert_geq(value_of(body, "distrod_http_connections_total{result=\"evicted\"}"), 1);
	cr_assert_geq(value_of(body, "distrod_http_connections_total{result=\"source_refused\"}"),
	              1);
	free(body);
}

Test(http, idle_connections_close_after_10s, .timeout = 30)
{
	struct http_conn *quiet = http_open(hn.http_port), *slow = http_open(hn.http_port);
	struct timeval tv = { .tv_sec = 15 };
	int64_t t0 = now_ms(), waited;
	char *body;

	/* One says nothing; one starts a head and never finishes it. */
	http_send(slow, "GET /health HTTP/1.1\r\nX: ", 25);
	setsockopt(quiet->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(slow->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert(http_eof(quiet), "an idle connection is closed");
	cr_assert(http_eof(slow), "a never-finished head is closed");
	waited = now_ms() - t0;
	cr_assert(waited >= 9000 && waited <= 13000, "closed after %lld ms", (long long)waited);
	http_close(quiet);
	http_close(slow);
	cr_assert_eq(http_get(hn.http_port, "/metrics", &body, NULL, 0), 200);
	cr_assert_geq(value_of(body, "distrod_http_connections_total{result=\"idle_closed\"}"), 2);
	free(body);
}

/* The admin port taken: distrod must refuse to start, with a message naming it. */
Test(http, port_in_use_fails_the_start)
{
	char port[16], log[] = "/tmp/distrod-http-XXXXXX", text[4096] = "";
	int fd = mkstemp(log), status = 0;
	pid_t pid;
	FILE *f;

	cr_assert_geq(fd, 0);
	snprintf(port, sizeof(port), "%u", hn.http_port);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(fd, 2);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(DISTROD_BIN, DISTROD_BIN, "--bind", "127.0.0.1", "--port", "0",
		      "--nacos-port", "0", "--http-bind", "127.0.0.1", "--http-port", port,
		      (char *)NULL);
		_exit(127);
	}
	close(fd);
	for (int64_t end = now_ms() + 10000; now_ms() < end; nap_ms(10))
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
	if (kill(pid, 0) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		cr_assert_fail("distrod started although its HTTP port was taken");
	}
	f = fopen(log, "r");
	cr_assert_not_null(f);
	text[fread(text, 1, sizeof(text) - 1, f)] = 0;
	fclose(f);
	unlink(log);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "exit status %d", status);
	cr_assert_not_null(strstr(text, "HTTP"), "the message names the HTTP port:\n%s", text);
	cr_assert_not_null(strstr(text, "Address already in use"), "%s", text);
	cr_assert_not_null(strstr(text, port), "%s", text);
}
