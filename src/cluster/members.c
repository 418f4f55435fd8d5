#include "cluster/members.h"

#include "core/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses one "host:port" / "[v6]:port" token into m (addr canonicalised). */
static int parse_member(const char *tok, size_t len, struct member *m)
{
	char buf[MEMBER_ADDR_MAX + 8], *colon, *host, *end;
	unsigned char bin[16];
	long port;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, tok, len);
	buf[len] = '\0';
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		*close = '\0';
		host = buf + 1;
		colon = close + 1;
		if (inet_pton(AF_INET6, host, bin) != 1)
			return -1;
	} else {
		colon = strrchr(buf, ':');
		if (colon == NULL || strchr(buf, ':') != colon)
			return -1; /* a bare IPv6 address needs brackets */
		*colon = '\0';
		host = buf;
		if (*host == '\0')
			return -1;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end != '\0' || end == colon + 1 || port <= 0 || port > 65535)
		return -1;
	if (strlen(host) >= sizeof(m->host))
		return -1;
	memset(m, 0, sizeof(*m));
	strcpy(m->host, host);
	m->port = (uint16_t)port;
	snprintf(m->addr, sizeof(m->addr), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, m->port);
	return 0;
}

static int cmp_member(const void *a, const void *b)
{
	return strcmp(((const struct member *)a)->addr, ((const struct member *)b)->addr);
}

int members_parse(const char *text, size_t len, struct members *out, char *err, size_t err_len)
{
	size_t i = 0;
	int lineno = 0;

	memset(out, 0, sizeof(*out));
	while (i < len) {
		size_t start = i, end;

		while (i < len && text[i] != '\n')
			i++;
		end = i++;
		lineno++;
		/* Strip the comment, then split on commas and blanks. */
		for (size_t j = start; j < end; j++) {
			if (text[j] == '#') {
				end = j;
				break;
			}
		}
		for (size_t j = start; j < end;) {
			size_t t0, t1;

			while (j < end && (text[j] == ' ' || text[j] == '\t' || text[j] == ',' ||
			                   text[j] == '\r'))
				j++;
			t0 = j;
			while (j < end && text[j] != ' ' && text[j] != '\t' && text[j] != ',' &&
			       text[j] != '\r')
				j++;
			t1 = j;
			if (t1 == t0)
				continue;
			if (out->n == MEMBERS_MAX) {
				snprintf(err, err_len, "line %d: more than %d members", lineno,
				         MEMBERS_MAX);
				return -ERR_INVAL;
			}
			if (parse_member(text + t0, t1 - t0, &out->m[out->n]) < 0) {
				snprintf(err, err_len, "line %d: '%.*s' is not host:port", lineno,
				         (int)(t1 - t0), text + t0);
				return -ERR_INVAL;
			}
			for (uint32_t k = 0; k < out->n; k++) {
				if (strcmp(out->m[k].addr, out->m[out->n].addr) == 0) {
					snprintf(err, err_len, "line %d: %s listed twice", lineno,
					         out->m[k].addr);
					return -ERR_INVAL;
				}
			}
			out->n++;
		}
	}
	qsort(out->m, out->n, sizeof(out->m[0]), cmp_member);
	for (uint32_t k = 0; k < out->n; k++)
		out->m[k].id = (uint16_t)(k + 1);
	return 0;
}

int members_load(const char *path, struct members *out, char *err, size_t err_len)
{
	char text[64 * 1024];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		snprintf(err, err_len, "cannot read %s: %s", path, strerror(errno));
		return -ERR_NOT_FOUND;
	}
	n = fread(text, 1, sizeof(text), f);
	if (!feof(f)) {
		fclose(f);
		snprintf(err, err_len, "%s: larger than %zu bytes", path, sizeof(text));
		return -ERR_INVAL;
	}
	fclose(f);
	return members_parse(text, n, out, err, err_len);
}

int members_find_self(struct members *ms, const char *self_addr)
{
	struct member me;

	ms->self_id = 0;
	if (parse_member(self_addr, strlen(self_addr), &me) < 0)
		return -ERR_INVAL;
	for (uint32_t i = 0; i < ms->n; i++) {
		if (strcmp(ms->m[i].addr, me.addr) == 0) {
			ms->self_id = ms->m[i].id;
			return 0;
		}
	}
	return -ERR_NOT_FOUND;
}
