/* cluster.conf parsing: Nacos's format, canonical order, clear errors. */
#include "cluster/members.h"
#include "core/err.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static int parse(const char *text, struct members *ms, char *err)
{
	return members_parse(text, strlen(text), ms, err, 256);
}

Test(members, nacos_format_sorted_with_ids)
{
	struct members ms;
	char err[256] = "";
	const char *conf = "# the cluster\n"
	                   "10.0.0.3:7848\n"
	                   "\n"
	                   "  10.0.0.1:7848   # first\n"
	                   "10.0.0.2:7848,[2001:db8::1]:7848\r\n";

	cr_assert_eq(parse(conf, &ms, err), 0, "%s", err);
	cr_assert_eq(ms.n, 4);
	cr_assert_str_eq(ms.m[0].addr, "10.0.0.1:7848");
	cr_assert_str_eq(ms.m[1].addr, "10.0.0.2:7848");
	cr_assert_str_eq(ms.m[2].addr, "10.0.0.3:7848");
	cr_assert_str_eq(ms.m[3].addr, "[2001:db8::1]:7848");
	cr_assert_str_eq(ms.m[3].host, "2001:db8::1");
	for (uint32_t i = 0; i < ms.n; i++)
		cr_assert_eq(ms.m[i].id, i + 1);
	cr_assert_eq(members_find_self(&ms, "10.0.0.2:7848"), 0);
	cr_assert_eq(ms.self_id, 2);
	cr_assert_eq(members_find_self(&ms, "[2001:db8::1]:7848"), 0);
	cr_assert_eq(ms.self_id, 4);
	cr_assert_eq(members_find_self(&ms, "10.0.0.9:7848"), -ERR_NOT_FOUND);
	cr_assert_eq(ms.self_id, 0);
}

Test(members, empty_file_is_standalone)
{
	struct members ms;
	char err[256];

	cr_assert_eq(parse("# nobody\n\n", &ms, err), 0);
	cr_assert_eq(ms.n, 0);
}

Test(members, bad_lines_name_the_line)
{
	struct members ms;
	char err[256];

	cr_assert_eq(parse("10.0.0.1:7848\n10.0.0.2\n", &ms, err), -ERR_INVAL);
	cr_assert_str_eq(err, "line 2: '10.0.0.2' is not host:port");
	cr_assert_eq(parse("10.0.0.1:0\n", &ms, err), -ERR_INVAL);
	cr_assert_eq(parse("10.0.0.1:65536\n", &ms, err), -ERR_INVAL);
	cr_assert_eq(parse("10.0.0.1:78a\n", &ms, err), -ERR_INVAL);
	cr_assert_eq(parse("2001:db8::1:7848\n", &ms, err), -ERR_INVAL, "IPv6 needs brackets");
	cr_assert_eq(parse("[2001:db8::zz]:7848\n", &ms, err), -ERR_INVAL);
	cr_assert_eq(parse(":7848\n", &ms, err), -ERR_INVAL);
	cr_assert_eq(parse("10.0.0.1:7848\n# x\n10.0.0.1:7848\n", &ms, err), -ERR_INVAL);
	cr_assert_str_eq(err, "line 3: 10.0.0.1:7848 listed twice");
}

Test(members, bounded)
{
	char conf[8192];
	struct members ms;
	char err[256];
	int n = 0;

	for (int i = 0; i < MEMBERS_MAX + 1; i++)
		n += snprintf(conf + n, sizeof(conf) - (size_t)n, "10.0.%d.1:7848\n", i);
	cr_assert_eq(parse(conf, &ms, err), -ERR_INVAL);
	cr_assert_not_null(strstr(err, "more than 64 members"), "%s", err);
}

Test(members, load_reports_a_missing_file)
{
	struct members ms;
	char err[256];

	cr_assert_eq(members_load("/nonexistent/cluster.conf", &ms, err, sizeof(err)),
	             -ERR_NOT_FOUND);
	cr_assert_not_null(strstr(err, "cannot read /nonexistent/cluster.conf"));
}
