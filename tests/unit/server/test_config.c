/*
 * distrod's settings: the default port layout (README.md, "Ports"),
 * --nacos-port from a flag and from the config file, and the refusal of two
 * listeners on one port number.
 */
#include "server/config.h"

#include "core/version.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARGV_MAX 32

static struct server_config cfg;

/* config_load on a NULL-terminated list of flags (the program name is added). */
static int load(const char *first, ...)
{
	char *argv[ARGV_MAX];
	int argc = 0;
	va_list ap;

	argv[argc++] = "distrod";
	va_start(ap, first);
	for (const char *a = first; a; a = va_arg(ap, const char *)) {
		cr_assert_lt(argc, ARGV_MAX - 1);
		argv[argc++] = (char *)a;
	}
	va_end(ap);
	argv[argc] = NULL;
	return config_load(&cfg, argc, argv);
}

Test(config, default_ports_leave_the_nacos_grpc_ports_free)
{
	cr_assert_eq(load(NULL), 0);
	cr_assert_eq(cfg.nacos_port, 8848);
	cr_assert_eq(cfg.port, 8850);
	cr_assert_eq(cfg.http_port, 8851);
	cr_assert_eq(cfg.peer_port, 7848);
	cr_assert_str_eq(cfg.bind, "0.0.0.0");
}

Test(config, nacos_port_flag)
{
	cr_assert_eq(load("--nacos-port", "18848", NULL), 0);
	cr_assert_eq(cfg.nacos_port, 18848);
	cr_assert_eq(load("--nacos-port", "0", NULL), 0, "0 picks a free one");
	cr_assert_eq(cfg.nacos_port, 0);
	cr_assert_eq(load("--nacos-port", "65535", NULL), 0);
	cr_assert_eq(cfg.nacos_port, 65535);
}

Test(config, grpc_port_follows_the_nacos_port, .init = cr_redirect_stderr)
{
	cr_assert_eq(load(NULL), 0);
	cr_assert(cfg.grpc_on);
	cr_assert_eq(cfg.grpc_port, 9848, "Nacos clients assume the Nacos port + 1000");
	cr_assert_eq(load("--nacos-port", "18848", NULL), 0);
	cr_assert_eq(cfg.grpc_port, 19848);
	cr_assert_eq(load("--nacos-port", "0", NULL), 0);
	cr_assert(cfg.grpc_on);
	cr_assert_eq(cfg.grpc_port, 0, "an ephemeral Nacos port: an ephemeral gRPC port");
	cr_assert_eq(load("--grpc-port", "off", NULL), 0);
	cr_assert_not(cfg.grpc_on);
	cr_assert_eq(load("--grpc-port", "12000", NULL), 0);
	cr_assert(cfg.grpc_on);
	cr_assert_eq(cfg.grpc_port, 12000);
	cr_assert_eq(load("--nacos-port", "65000", NULL), 0, "no +1000 there: off, not an error");
	cr_assert_not(cfg.grpc_on);
	cr_assert_eq(load("--grpc-port", "65536", NULL), -1);
	cr_assert_eq(load("--grpc-port", "x", NULL), -1);
	cr_assert_eq(load("--grpc-port", "8850", NULL), -1, "the binary port's number");
	cr_assert_eq(load("--nacos-port", "7850", "--port", "8850", NULL), -1,
	             "auto collides with --port");
	cr_assert_eq(load("--grpc-renew", "15000", NULL), -1, "renewals slower than the timeout");
}

Test(config, nacos_port_out_of_range, .init = cr_redirect_stderr)
{
	cr_assert_eq(load("--nacos-port", "65536", NULL), -1);
	cr_assert_eq(load("--nacos-port", "-1", NULL), -1);
	cr_assert_eq(load("--nacos-port", "x", NULL), -1);
}

Test(config, nacos_port_from_the_config_file)
{
	char path[] = "/tmp/distrod-config-XXXXXX";
	int fd = mkstemp(path);
	FILE *f;

	cr_assert_geq(fd, 0);
	f = fdopen(fd, "w");
	cr_assert_not_null(f);
	fputs("# ports\nnacos-port = 18848\nport = 18850\n", f);
	fclose(f);
	cr_assert_eq(load("--config", path, NULL), 0);
	cr_assert_eq(cfg.nacos_port, 18848);
	cr_assert_eq(cfg.port, 18850);
	cr_assert_eq(load("--config", path, "--nacos-port", "28848", NULL), 0);
	cr_assert_eq(cfg.nacos_port, 28848, "the flag wins over the file");
	unlink(path);
}

Test(config, port_on_the_nacos_port_is_refused, .init = cr_redirect_stderr)
{
	cr_assert_eq(load("--port", "8848", NULL), -1);
	fflush(stderr);
	cr_assert_stderr_eq_str("distrod: --port and --nacos-port are both 8848; each port needs "
	                        "its own number\n");
}

Test(config, two_listeners_on_one_number_are_refused, .init = cr_redirect_stderr)
{
	cr_assert_eq(load("--http-port", "8850", NULL), -1);
	cr_assert_eq(load("--nacos-port", "8851", NULL), -1);
	cr_assert_eq(load("--port", "9000", "--http-port", "9000", NULL), -1);
	cr_assert_eq(load("--bind", "127.0.0.1", "--http-bind", "127.0.0.2", "--port", "9000",
	                  "--http-port", "9000", NULL),
	             -1, "whatever the bind addresses");
}

Test(config, port_zero_never_collides)
{
	cr_assert_eq(load("--port", "0", "--http-port", "0", "--nacos-port", "0", NULL), 0);
	cr_assert_eq(load("--port", "8848", "--nacos-port", "0", NULL), 0);
	cr_assert_eq(cfg.port, 8848);
}

Test(config, peer_port_counts_only_when_this_node_listens_on_it, .init = cr_redirect_stderr)
{
	/* Standalone: nothing listens on --peer-port. */
	cr_assert_eq(load("--port", "7848", NULL), 0);
	/* In a cluster found through --peer-port, it does. */
	cr_assert_eq(load("--cluster-conf", "/nonexistent/cluster.conf", "--port", "7848", NULL),
	             -1);
	cr_assert_eq(load("--cluster-conf", "/nonexistent/cluster.conf", "--nacos-port", "7900",
	                  "--peer-port", "7900", NULL),
	             -1);
	/* --cluster-self names the peer address instead. */
	cr_assert_eq(load("--cluster-conf", "/nonexistent/cluster.conf", "--cluster-self",
	                  "10.0.0.1:7900", "--port", "7848", NULL),
	             0);
}

Test(config, help_lists_the_nacos_port)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cr_assert_not_null(f);
	config_usage(f);
	fclose(f);
	cr_assert_not_null(strstr(text, "--nacos-port"), "%s", text);
	cr_assert_not_null(strstr(text, "(default: 8848)"), "%s", text);
	cr_assert_not_null(strstr(text, "(default: 8850)"), "%s", text);
	cr_assert_not_null(strstr(text, "(default: 8851)"), "%s", text);
	free(text);
}

/*
 * --version prints the release and the commit and stops the start (1: exit
 * 0), before any other flag is checked, like --help; --help lists it.
 */
Test(config, version_prints_the_release_and_commit, .init = cr_redirect_stdout)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	cr_assert_eq(load("--port", "not-a-number", "--version", NULL), 1);
	fflush(stdout);
	cr_assert_stdout_eq_str("distrod " DISTRO_VERSION " (git " DISTRO_VERSION_COMMIT ")\n");
	cr_assert_neq(strlen(DISTRO_VERSION_COMMIT), 0);
	f = open_memstream(&text, &len);
	cr_assert_not_null(f);
	config_usage(f);
	fclose(f);
	cr_assert_not_null(strstr(text, "--version"), "%s", text);
	free(text);
}
