/*
 * Authentication in a cluster (docs/nacos.md, "Authentication"): every
 * member derives its token key from the cluster secret, so a token a
 * client got from one member's Nacos login is good on every member, on the
 * Nacos API and on the client port alike; and writes made with it
 * replicate as any other. Two nodes with --auth-users (the same users file,
 * made with distroctl hash-password); the harness's own clients
 * authenticate with a password first, which also shows the client
 * library's credentials surviving the reconnects of the harness.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READY_MS 20000

static struct cluster cl;
static char users[256];
static const char *every_node[] = { "--auth-users", users, NULL };
static uint16_t nacos_port[2];

static void make_users(void)
{
	char cmd[1024], hash[128];
	FILE *p, *f;

	snprintf(cmd, sizeof(cmd), "printf 'nacos-pw\\nnacos-pw\\n' | %s hash-password --cost 4",
	         DISTROCTL_BIN);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	cr_assert_not_null(fgets(hash, sizeof(hash), p));
	cr_assert_eq(pclose(p), 0);
	hash[strcspn(hash, "\n")] = '\0';
	f = fopen(users, "w");
	cr_assert_not_null(f);
	fprintf(f, "nacos:%s:admin\n", hash);
	fclose(f);
}

static void setup(void)
{
	cluster_setup(&cl, &(struct cluster_opts){ .n = 2, .extra = every_node });
	snprintf(users, sizeof(users), "%s/users", cl.dir);
	make_users();
	cluster_start(&cl);
	for (uint32_t i = 0; i < 2; i++) {
		nacos_port[i] = cl.node[i].nacos_port; /* the harness gives each node its own */
		cr_assert_eq(distro_auth_password(cluster_client(&cl, i), "nacos", "nacos-pw"), 0);
		cluster_assert(&cl, cluster_wait_ready(&cl, i, READY_MS), "node %u READY", i);
	}
}

static void teardown(void)
{
	cluster_teardown(&cl);
}

TestSuite(cluster_nacos_auth, .init = setup, .fini = teardown, .timeout = 300);

/* One request on a fresh connection (Connection: close); the status, the body in out. */
static int http(uint16_t port, const char *method, const char *target, const char *body, char *out,
                size_t cap)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 5 };
	char req[2048];
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), n, status = 0;
	ssize_t r;
	char *b;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = snprintf(req, sizeof(req),
	             "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s%zu\r\n\r\n%s", method,
	             target,
	             body ? "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "
	                  : "Content-Length: ",
	             body ? strlen(body) : 0, body ? body : "");
	cr_assert_eq(send(fd, req, (size_t)n, 0), n);
	while (got < cap - 1 && (r = recv(fd, out + got, cap - 1 - got, 0)) > 0)
		got += (size_t)r;
	close(fd);
	out[got] = '\0';
	cr_assert_eq(sscanf(out, "HTTP/1.1 %d", &status), 1, "an answer: %s", out);
	b = strstr(out, "\r\n\r\n");
	if (b)
		memmove(out, b + 4, strlen(b + 4) + 1);
	return status;
}

Test(cluster_nacos_auth, a_token_from_one_member_is_good_on_every_member)
{
	char out[8192], tok[256], target[1024];
	const char *t, *e;
	struct distro_client *c;
	struct distro_instance in;

	cr_assert_eq(http(nacos_port[0], "POST", "/nacos/v1/auth/users/login?username=nacos",
	                  "password=nacos-pw", out, sizeof(out)),
	             200, "%s", out);
	t = strstr(out, "\"accessToken\":\"");
	cr_assert_not_null(t, "%s", out);
	t += 15;
	e = strchr(t, '"');
	cr_assert_not_null(e);
	snprintf(tok, sizeof(tok), "%.*s", (int)(e - t), t);

	/* Node 1's Nacos API takes node 0's token, for a write and a read. */
	snprintf(target, sizeof(target),
	         "/nacos/v1/ns/instance?serviceName=auth-svc&ip=192.0.2.40&port=80&accessToken=%s",
	         tok);
	cr_assert_eq(http(nacos_port[1], "POST", target, NULL, out, sizeof(out)), 200, "%s", out);
	/* The write went to the slot's owner; node 1 lists it once replicated back. */
	snprintf(target, sizeof(target),
	         "/nacos/v1/ns/instance/list?serviceName=auth-svc&accessToken=%s", tok);
	for (int64_t end = cluster_mono_ms() + 5000;; cluster_nap_ms(20)) {
		cr_assert_eq(http(nacos_port[1], "GET", target, NULL, out, sizeof(out)), 200, "%s",
		             out);
		if (strstr(out, "192.0.2.40") || cluster_mono_ms() > end)
			break;
	}
	cr_assert_not_null(strstr(out, "192.0.2.40"), "%s", out);
	/* Without it, refused on both. */
	for (int i = 0; i < 2; i++)
		cr_assert_eq(http(nacos_port[i], "GET",
		                  "/nacos/v1/ns/instance/list?serviceName=auth-svc", NULL, out,
		                  sizeof(out)),
		             403);

	/* Node 1's client port takes it too; the write replicates to node 0. */
	c = cluster_connect(&cl, 1);
	cr_assert_eq(distro_list(c, NULL, NULL, "auth-svc", NULL, NULL, NULL, NULL),
	             -DISTRO_EAUTH_REQUIRED);
	cr_assert_eq(distro_auth_token(c, tok), 0);
	distro_instance_init(&in);
	in.service = "auth-svc";
	in.ip = "192.0.2.41";
	in.port = 80;
	cr_assert_eq(distro_register(c, &in, 1, NULL), 0);
	cluster_assert(&cl, cluster_wait_listed(&cl, 0, &in, 1, 1, 10000, NULL),
	               "node 0 lists what node 1 took with node 0's token");
	distro_close(c);
}
