/*
 * Member addresses: numeric ones at once, names on the resolver thread,
 * never blocking. Only "localhost" is looked up (from /etc/hosts): tests
 * send nothing to a DNS server.
 */
#include "cluster/resolve.h"

#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

/* Member ids follow cluster.conf's sorted order: find a host's. */
static uint16_t id_of(const struct members *ms, const char *host)
{
	for (uint32_t i = 0; i < ms->n; i++)
		if (strcmp(ms->m[i].host, host) == 0)
			return ms->m[i].id;
	cr_assert_fail("%s not in the conf", host);
	return 0;
}

static struct members conf_of(const char *text)
{
	struct members ms;
	char err[128];

	cr_assert_eq(members_parse(text, strlen(text), &ms, err, sizeof(err)), 0, "%s", err);
	return ms;
}

Test(resolve, addresses_need_no_thread)
{
	static struct resolver r;
	struct members ms = conf_of("127.0.0.1:7001\n[::1]:7002\n");
	struct sockaddr_storage a;
	socklen_t len;

	cr_assert_eq(resolver_start(&r, &ms), 0);
	cr_assert(!r.running, "no name: no thread");
	cr_assert_eq(resolver_get(&r, id_of(&ms, "127.0.0.1"), &a, &len), 1);
	cr_assert_eq(a.ss_family, AF_INET);
	cr_assert_eq(ntohs(((struct sockaddr_in *)&a)->sin_port), 7001);
	cr_assert_eq(resolver_get(&r, id_of(&ms, "::1"), &a, &len), 1);
	cr_assert_eq(a.ss_family, AF_INET6);
	resolver_stop(&r);
}

Test(resolve, a_name_is_looked_up_off_the_caller_and_again_for_each_dial)
{
	static struct resolver r;
	struct members ms = conf_of("localhost:7001\n127.0.0.1:7002\n");
	uint16_t id = id_of(&ms, "localhost");
	struct sockaddr_storage a;
	socklen_t len;
	int rc = 0;

	cr_assert_eq(resolver_start(&r, &ms), 0);
	cr_assert(r.running);
	cr_assert_eq(resolver_get(&r, id, &a, &len), 0, "asked, not answered in the call");
	for (int t = 0; t < 500 && rc == 0; t++) {
		rc = resolver_get(&r, id, &a, &len);
		if (rc == 0)
			usleep(10000);
	}
	cr_assert_eq(rc, 1, "localhost resolves (from /etc/hosts)");
	cr_assert(a.ss_family == AF_INET || a.ss_family == AF_INET6);
	cr_assert_eq(resolver_get(&r, id, &a, &len), 0, "the next dial looks it up again");
	resolver_stop(&r);
}
