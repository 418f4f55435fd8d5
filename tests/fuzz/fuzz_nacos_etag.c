/*
 * libFuzzer target for the console's If-None-Match matcher
 * (nacos_console_etag_match, src/server/nacos_console.c): the header's
 * bytes come from any client. Checks, on an exact-sized copy (so ASan sees
 * any read past the value):
 *
 *  - the verdict equals a reference written apart from it: split on ',',
 *    trim spaces and tabs, "*" matches, a "W/" prefix is dropped, then
 *    byte equality with the tag;
 *  - appending ", TAG" (or ", W/TAG") to any value makes it match, and a
 *    value made of the tag with one byte changed never matches.
 */
#include "server/nacos_internal.h"

#include <stdlib.h>
#include <string.h>

static const char TAG[] = "\"0123456789abcdef\"";

static bool reference(const char *p, size_t n, const char *tag)
{
	size_t tl = strlen(tag), i = 0;

	while (i <= n) {
		const char *comma = i < n ? memchr(p + i, ',', n - i) : NULL;
		size_t end = comma ? (size_t)(comma - p) : n, s = i, e = end;

		while (s < e && (p[s] == ' ' || p[s] == '\t'))
			s++;
		while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\t'))
			e--;
		if (e - s == 1 && p[s] == '*')
			return true;
		if (e - s >= 2 && p[s] == 'W' && p[s + 1] == '/')
			s += 2;
		if (e - s == tl && memcmp(p + s, tag, tl) == 0)
			return true;
		i = end + 1;
	}
	return false;
}

static bool match(const uint8_t *data, size_t n, const char *tag)
{
	char *copy = malloc(n ? n : 1);
	bool m;

	if (copy == NULL)
		abort();
	memcpy(copy, data, n);
	m = nacos_console_etag_match((struct store_str){ copy, (uint32_t)n }, tag);
	free(copy);
	return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *more;
	size_t tl = sizeof(TAG) - 1;

	if (size > 4096)
		return 0;
	if (match(data, size, TAG) != reference((const char *)data, size, TAG))
		abort();
	more = malloc(size + 4 + tl);
	if (more == NULL)
		abort();
	/* value + ", " [+ "W/"] + TAG: always a match */
	memcpy(more, data, size);
	memcpy(more + size, ", ", 2);
	memcpy(more + size + 2, (size & 1) ? "W/" : "", (size & 1) ? 2 : 0);
	memcpy(more + size + 2 + ((size & 1) ? 2 : 0), TAG, tl);
	if (!match(more, size + 2 + ((size & 1) ? 2 : 0) + tl, TAG))
		abort();
	/* the tag with one byte changed (position and byte from the input): never */
	if (size >= 2 && data[1] != (uint8_t)TAG[data[0] % tl]) {
		memcpy(more, TAG, tl);
		more[data[0] % tl] = data[1];
		if (more[data[0] % tl] != ',' && match(more, tl, TAG))
			abort();
	}
	free(more);
	return 0;
}
