/* distroctl against a real distrod: output, JSON, exit codes. */
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

TestSuite(distroctl, .init = start, .fini = stop, .timeout = 60);

/* Runs distroctl with args; returns the exit status and fills out with stdout. */
static int ctl(char *out, size_t cap, const char *fmt, ...)
{
	char head[256];
	va_list ap;
	int rc;

	snprintf(head, sizeof(head), "%s -s %s", DISTROCTL_BIN, node.addr);
	va_start(ap, fmt);
	rc = tool_vrun(out, cap, head, "2>/dev/null", fmt, ap);
	va_end(ap);
	return rc;
}

Test(distroctl, register_list_deregister_text_and_json)
{
	char out[8192];

	cr_assert_eq(ctl(out, sizeof(out),
	                 "register orders 10.0.0.1:8080 --meta zone=a "
	                 "--weight 2.5"),
	             0);
	cr_assert_str_eq(out, "register orders 10.0.0.1:8080: created\n");
	cr_assert_eq(ctl(out, sizeof(out), "register orders [2001:db8::5]:9090 --cluster east"), 0);
	cr_assert_eq(ctl(out, sizeof(out), "list orders"), 0);
	cr_assert_not_null(strstr(out, "10.0.0.1:8080  cluster=DEFAULT weight=2.5 healthy zone=a"),
	                   "%s", out);
	cr_assert_not_null(strstr(out, "[2001:db8::5]:9090  cluster=east"), "%s", out);
	cr_assert_eq(ctl(out, sizeof(out), "--json list orders --cluster east"), 0);
	cr_assert_not_null(strstr(out, "{\"service\":\"orders\",\"hosts\":[{\"ip\":\"2001:db8::5\","
	                               "\"port\":9090,\"cluster\":\"east\""),
	                   "%s", out);
	cr_assert_null(strstr(out, "10.0.0.1"));
	cr_assert_eq(ctl(out, sizeof(out), "deregister orders 10.0.0.1:8080"), 0);
	cr_assert_str_eq(out, "deregister orders 10.0.0.1:8080: deregistered\n");
	cr_assert_eq(ctl(out, sizeof(out), "--json beat orders 10.0.0.9:1"), 0);
	cr_assert_str_eq(out, "{\"ok\":true,\"result\":\"created\"}\n");
	cr_assert_eq(ctl(out, sizeof(out), "list nothing-here"), 0);
	cr_assert_str_eq(out, "(no instances)\n");
	cr_assert_eq(ctl(out, sizeof(out), "ping"), 0);
	cr_assert_str_eq(out, "pong\n");
	cr_assert_eq(ctl(out, sizeof(out), "--json stats"), 0);
	cr_assert_not_null(strstr(out, "\"store_instances\":2"), "%s", out);
}

Test(distroctl, errors_exit_non_zero)
{
	char out[4096];

	cr_assert_eq(ctl(out, sizeof(out), "register orders 10.0.0.1:8080 --weight 20000"), 1);
	cr_assert_eq(ctl(out, sizeof(out), "--json register bad@@name 10.0.0.1:1"), 1);
	cr_assert_not_null(strstr(out, "\"ok\":false,\"error\":6"), "%s", out);
	cr_assert_eq(ctl(out, sizeof(out), "register orders not-an-address"), 2);
	cr_assert_eq(ctl(out, sizeof(out), "register orders"), 2);
	cr_assert_eq(ctl(out, sizeof(out), "frobnicate"), 2);
	cr_assert_eq(ctl(out, sizeof(out), "list orders --no-such-flag"), 2);
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "%s -s 127.0.0.1:1 ping 2>/dev/null", DISTROCTL_BIN);
	int status = system(cmd);

	cr_assert_eq(WEXITSTATUS(status), 1, "unreachable node");
}

Test(distroctl, watch_prints_the_list_and_changes)
{
	char out[8192], cmd[512];
	FILE *p;
	size_t n;

	cr_assert_eq(ctl(out, sizeof(out), "register w 10.0.0.1:1"), 0);
	snprintf(cmd, sizeof(cmd), "timeout --preserve-status -s INT 2 %s -s %s --json watch w",
	         DISTROCTL_BIN, node.addr);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	nap_ms(500);
	cr_assert_eq(ctl(out, sizeof(out), "register w 10.0.0.2:2"), 0);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	cr_assert_eq(WEXITSTATUS(pclose(p)), 0, "Ctrl-C ends watch cleanly");
	char *second = strchr(out, '\n');

	cr_assert_not_null(second, "%s", out);
	cr_assert_not_null(strstr(out, "\"hosts\":[{\"ip\":\"10.0.0.1\""), "%s", out);
	cr_assert_not_null(strstr(second, "10.0.0.2"), "the change is pushed: %s", out);
}
