/*
 * core/srclimit: connections per source address. The bound holds exactly
 * per source, a place given back can be taken again, one host counts once
 * whether it comes as IPv4 or as its mapped IPv6 form, other hosts are not
 * counted against it, and two threads taking at once never pass the bound.
 */
#include "core/srclimit.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>

static uint64_t key4(const char *ip)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(1234) };

	cr_assert_eq(inet_pton(AF_INET, ip, &a.sin_addr), 1);
	return srclimit_key((struct sockaddr *)&a, sizeof(a));
}

static uint64_t key6(const char *ip)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(4321) };

	cr_assert_eq(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
	return srclimit_key((struct sockaddr *)&a, sizeof(a));
}

Test(srclimit, bound_per_source_exactly)
{
	struct srclimit l;
	int64_t b[3];
	uint64_t k = key4("192.0.2.1");

	cr_assert_eq(srclimit_init(&l, 3), 0);
	for (int i = 0; i < 3; i++) {
		b[i] = srclimit_take(&l, k);
		cr_assert_geq(b[i], 0, "place %d", i);
	}
	cr_assert_eq(srclimit_take(&l, k), -1, "the 4th is refused");
	cr_assert_eq(srclimit_take(&l, k), -1, "and again: a refusal takes nothing");
	cr_assert_geq(srclimit_take(&l, key4("192.0.2.2")), 0, "another host is not counted");
	srclimit_put(&l, (uint32_t)b[1]);
	cr_assert_geq(srclimit_take(&l, k), 0, "a place given back is taken again");
	cr_assert_eq(srclimit_take(&l, k), -1);
	srclimit_free(&l);
}

Test(srclimit, key_is_the_host_not_the_port_and_ipv4_is_its_mapped_form)
{
	cr_assert_eq(key4("198.18.0.1"), key6("::ffff:198.18.0.1"));
	cr_assert_neq(key4("198.18.0.1"), key4("198.18.0.2"));
	cr_assert_neq(key6("2001:db8::1"), key6("2001:db8::2"));
	cr_assert_neq(key4("198.18.0.1"), 0);
}

Test(srclimit, off_counts_nothing)
{
	struct srclimit l;

	cr_assert_eq(srclimit_init(&l, 0), 0);
	for (int i = 0; i < 10000; i++)
		cr_assert_eq(srclimit_take(&l, key4("192.0.2.9")), SRCLIMIT_NONE);
	srclimit_put(&l, SRCLIMIT_NONE);
	srclimit_free(&l);
}

static struct srclimit shared;
static uint64_t shared_key;

static void *taker(void *arg)
{
	long got = 0;

	(void)arg;
	for (int i = 0; i < 100000; i++) {
		int64_t b = srclimit_take(&shared, shared_key);

		if (b >= 0 && i % 2) /* odd turns give it back at once */
			srclimit_put(&shared, (uint32_t)b);
		else if (b >= 0)
			got++;
	}
	return (void *)got;
}

Test(srclimit, concurrent_takers_never_pass_the_bound)
{
	enum { T = 4, MAX = 50 };
	pthread_t t[T];
	long held = 0;

	shared_key = key4("192.0.2.77");
	cr_assert_eq(srclimit_init(&shared, MAX), 0);
	for (int i = 0; i < T; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, taker, NULL), 0);
	for (int i = 0; i < T; i++) {
		void *r;

		pthread_join(t[i], &r);
		held += (long)r;
	}
	cr_assert_eq(held, MAX, "the places still held are exactly the bound");
	cr_assert_eq(srclimit_take(&shared, shared_key), -1);
	srclimit_free(&shared);
}
