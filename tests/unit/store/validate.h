/*
 * Helpers for validate programs (tests/validate): the store helpers without
 * Criterion, and CHECK, which prints the failure and exits non-zero.
 */
#ifndef DISTRO_TESTS_VALIDATE_H
#define DISTRO_TESTS_VALIDATE_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);   \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define DISTRO_NO_CRITERION
#include "helpers.h"

#endif
