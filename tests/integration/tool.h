/*
 * tool.h - running a command-line tool (distroctl, distrobench) from a test.
 *
 * The tests drive the real binaries as a user would, through the shell:
 * the command is "head args tail" (tail redirects stderr, say), its
 * standard output comes back NUL-terminated (cut at cap - 1 bytes), and
 * the answer is its exit status, -1 if it did not exit normally.
 */
#ifndef DISTRO_TESTS_TOOL_H
#define DISTRO_TESTS_TOOL_H

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>

static inline int tool_vrun(char *out, size_t cap, const char *head, const char *tail,
                            const char *fmt, va_list ap)
{
	char args[2048], cmd[4096];
	FILE *p;
	size_t n;
	int status, len;

	len = vsnprintf(args, sizeof(args), fmt, ap);
	cr_assert(len >= 0 && (size_t)len < sizeof(args), "arguments too long");
	len = snprintf(cmd, sizeof(cmd), "%s %s %s", head, args, tail);
	cr_assert(len >= 0 && (size_t)len < sizeof(cmd), "command too long");
	p = popen(cmd, "r");
	cr_assert_not_null(p, "popen %s", cmd);
	n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#endif
