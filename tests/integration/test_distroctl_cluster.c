/*
 * `distroctl cluster` against a fake node on loopback that answers SLOT_MAP
 * with crafted frames: the text and JSON tables (members, health, READY,
 * slots counted from the owners, the map version), standalone, and the
 * exit codes for a malformed answer, a node without SLOT_MAP and bad usage.
 * A fake node keeps these independent of the peer thread; the real
 * cluster's answers are checked by tests/cluster.
 */
#include "distro/client.h"

#include "core/err.h"
#include "proto/wire.h"
#include "tool.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BODY_MAX (4096 + 2 * DISTRO_SLOTS)

static struct {
	int lfd;
	uint16_t port;
	pthread_t thread;
	volatile int stop;
	uint16_t status, count;
	size_t len;
	uint8_t body[BODY_MAX];
} fake;

/* Answers every connection's first frame with the prepared answer, then closes it. */
static void *fake_main(void *arg)
{
	(void)arg;
	while (!fake.stop) {
		struct pollfd p = { fake.lfd, POLLIN, 0 };
		uint8_t hdr[PROTO_HEADER_BYTES], out[PROTO_HEADER_BYTES];
		struct proto_header h;
		size_t got = 0;
		int fd;

		if (poll(&p, 1, 50) != 1)
			continue;
		fd = accept(fake.lfd, NULL, NULL);
		if (fd < 0)
			continue;
		while (got < sizeof(hdr)) {
			ssize_t n = recv(fd, hdr + got, sizeof(hdr) - got, 0);

			if (n <= 0)
				break;
			got += (size_t)n;
		}
		if (got == sizeof(hdr) && proto_frame_check(hdr, got, 1u << 20, &h) >= 0) {
			proto_header_put(out, h.op | PROTO_RESPONSE, (uint32_t)fake.len,
			                 h.request_id, fake.status, fake.count);
			if (send(fd, out, sizeof(out), MSG_NOSIGNAL) < 0 ||
			    send(fd, fake.body, fake.len, MSG_NOSIGNAL) < 0)
				(void)0;
		}
		close(fd);
	}
	return NULL;
}

static void start(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	memset(&fake, 0, sizeof(fake));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fake.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fake.lfd, 0);
	cr_assert_eq(bind(fake.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(fake.lfd, 16), 0);
	cr_assert_eq(getsockname(fake.lfd, (struct sockaddr *)&a, &alen), 0);
	fake.port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&fake.thread, NULL, fake_main, NULL), 0);
}

static void stop(void)
{
	fake.stop = 1;
	pthread_join(fake.thread, NULL);
	close(fake.lfd);
}

TestSuite(distroctl_cluster, .init = start, .fini = stop, .timeout = 60);

static int ctl(char *out, size_t cap, const char *fmt, ...)
{
	char head[256];
	va_list ap;
	int rc;

	snprintf(head, sizeof(head), "%s -s 127.0.0.1:%u", DISTROCTL_BIN, fake.port);
	va_start(ap, fmt);
	rc = tool_vrun(out, cap, head, "2>/dev/null", fmt, ap);
	va_end(ap);
	return rc;
}

static void put_str(struct proto_wr *w, const char *s)
{
	proto_wr_str(w, (struct store_str){ s, (uint32_t)strlen(s) });
}

/*
 * Three members answered by member 2: 1 and 2 UP and READY, 3 DOWN with
 * no client address yet. Owners: slot s % 2 + 1, except `unowned` slots
 * at the end, and `bad_owner` (if not 0) written into slot 0.
 */
static void answer_three(uint32_t unowned, uint16_t bad_owner)
{
	struct proto_wr w;

	proto_wr_init(&w, fake.body, sizeof(fake.body));
	proto_wr_u64(&w, 42);
	proto_wr_u16(&w, 2);
	proto_wr_u8(&w, 1);
	proto_wr_u16(&w, 1);
	proto_wr_u8(&w, DISTRO_UP);
	proto_wr_u8(&w, 1);
	put_str(&w, "127.0.0.1:7848");
	put_str(&w, "127.0.0.1:8850");
	proto_wr_u16(&w, 2);
	proto_wr_u8(&w, DISTRO_UP);
	proto_wr_u8(&w, 1);
	put_str(&w, "127.0.0.1:7849");
	put_str(&w, "127.0.0.1:8860");
	proto_wr_u16(&w, 3);
	proto_wr_u8(&w, DISTRO_DOWN);
	proto_wr_u8(&w, 0);
	put_str(&w, "127.0.0.1:7850");
	put_str(&w, "");
	for (uint32_t s = 0; s < DISTRO_SLOTS; s++)
		proto_wr_u16(&w, s == 0 && bad_owner           ? bad_owner
		                 : s >= DISTRO_SLOTS - unowned ? 0
		                                               : (uint16_t)(s % 2 + 1));
	cr_assert_not(w.overflow);
	fake.len = (size_t)(w.p - fake.body);
	fake.count = 3;
	fake.status = 0;
}

Test(distroctl_cluster, prints_members_and_slots_owned)
{
	char out[8192];

	answer_three(0, 0);
	cr_assert_eq(ctl(out, sizeof(out), "cluster"), 0);
	cr_assert_not_null(strstr(out, "slot map version 42; this node is member 2, READY\n"), "%s",
	                   out);
	cr_assert_not_null(strstr(out, "  1   127.0.0.1:7848           127.0.0.1:8850           "
	                               "UP         yes    8192\n"),
	                   "%s", out);
	cr_assert_not_null(strstr(out, "* 2   127.0.0.1:7849           127.0.0.1:8860           "
	                               "UP         yes    8192\n"),
	                   "%s", out);
	cr_assert_not_null(strstr(out, "  3   127.0.0.1:7850           -                        "
	                               "DOWN       no        0\n"),
	                   "%s", out);
	cr_assert_null(strstr(out, "unowned"), "every slot owned: no unowned line");
}

Test(distroctl_cluster, json_has_every_member_and_the_unowned)
{
	char out[8192];

	answer_three(100, 0);
	cr_assert_eq(ctl(out, sizeof(out), "--json cluster"), 0);
	cr_assert_str_eq(
	        out,
	        "{\"clustered\":true,\"map_version\":42,\"self\":2,\"ready\":true,\"members\":["
	        "{\"id\":1,\"addr\":\"127.0.0.1:7848\",\"client_addr\":\"127.0.0.1:8850\","
	        "\"self\":false,\"health\":\"UP\",\"ready\":true,\"slots\":8142},"
	        "{\"id\":2,\"addr\":\"127.0.0.1:7849\",\"client_addr\":\"127.0.0.1:8860\","
	        "\"self\":true,\"health\":\"UP\",\"ready\":true,\"slots\":8142},"
	        "{\"id\":3,\"addr\":\"127.0.0.1:7850\",\"client_addr\":\"\",\"self\":false,"
	        "\"health\":\"DOWN\",\"ready\":false,\"slots\":0}],\"unowned_slots\":100}\n");
	cr_assert_eq(ctl(out, sizeof(out), "cluster"), 0);
	cr_assert_not_null(strstr(out, "unowned slots: 100\n"), "%s", out);
}

Test(distroctl_cluster, standalone_says_so)
{
	struct proto_wr w;
	char out[4096];

	proto_wr_init(&w, fake.body, sizeof(fake.body));
	proto_wr_u64(&w, 0);
	proto_wr_u16(&w, 0);
	proto_wr_u8(&w, 1);
	fake.len = (size_t)(w.p - fake.body);
	fake.count = 0;
	cr_assert_eq(ctl(out, sizeof(out), "cluster"), 0);
	cr_assert_str_eq(out, "standalone node (no cluster)\n");
	cr_assert_eq(ctl(out, sizeof(out), "--json cluster"), 0);
	cr_assert_str_eq(out, "{\"clustered\":false}\n");
}

Test(distroctl_cluster, malformed_answers_and_errors_exit_1)
{
	char out[4096];

	answer_three(0, 7); /* slot 0 owned by a member that is not listed */
	cr_assert_eq(ctl(out, sizeof(out), "cluster"), 1);
	cr_assert_str_eq(out, "", "nothing printed from a map that did not decode");
	cr_assert_eq(ctl(out, sizeof(out), "--json cluster"), 1);
	cr_assert_not_null(strstr(out, "\"ok\":false,\"error\":1003"), "%s", out);
	answer_three(0, 0);
	fake.len -= 1; /* truncated owners */
	cr_assert_eq(ctl(out, sizeof(out), "cluster"), 1);
	/* A node that does not know SLOT_MAP answers unknown operation. */
	memcpy(fake.body, "\x03\x00nop", 5);
	fake.len = 5;
	fake.count = 0;
	fake.status = ERR_PROTO_OP;
	cr_assert_eq(ctl(out, sizeof(out), "--json cluster"), 1);
	cr_assert_not_null(strstr(out, "\"error\":25"), "%s", out);
	cr_assert_eq(ctl(out, sizeof(out), "cluster extra"), 2, "bad usage");
}
