/*
 * The admin port's status documents (http/status.h) on made-up snapshots:
 * /cluster standalone and clustered (every member field, every counter,
 * escaping, the member bound), and /health following READY.
 */
#include "http/status.h"

#include "core/mem.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *render(const struct peer_status *st)
{
	char *text, *z;
	size_t len;

	cr_assert_eq(status_cluster_json(st, &text, &len), 0);
	cr_assert_leq(len, STATUS_JSON_MAX);
	z = malloc(len + 1);
	cr_assert_not_null(z);
	memcpy(z, text, len);
	z[len] = 0;
	mem_free(text);
	return z;
}

static void three_members(struct peer_status *st)
{
	uint64_t v = 500009;

	memset(st, 0, sizeof(*st));
	st->clustered = true;
	st->self_id = 2;
	st->ready = true;
	st->map_version = 17;
	st->quorum = true;
	st->n = 3;
	for (uint32_t i = 0; i < 3; i++) {
		struct peer_member_status *m = &st->m[i];

		m->id = (uint16_t)(i + 1);
		snprintf(m->addr, sizeof(m->addr), "127.0.0.1:%u", 7848 + i);
		snprintf(m->client_addr, sizeof(m->client_addr), "127.0.0.1:%u", 8850 + 10 * i);
		m->self = i == 1;
		m->health = (enum peer_health)(2 - i);
		m->ready = i < 2;
		m->slots = i < 2 ? 8192 : 0;
		m->last_rx_ms = i == 2 ? -1 : 12 + (int64_t)i;
		m->backlog_bytes = 1000 * i;
		m->peer_map_version = 5 + i;
	}
#define FILL(name) st->stats.name = (v += 7919);
	PEER_STATS(FILL)
#undef FILL
}

Test(status, standalone_is_not_clustered)
{
	struct peer_status st;
	char *text = render(NULL);

	cr_assert_str_eq(text, "{\"clustered\":false}");
	free(text);
	memset(&st, 0, sizeof(st));
	text = render(&st);
	cr_assert_str_eq(text, "{\"clustered\":false}");
	free(text);
}

Test(status, cluster_document_has_every_field)
{
	struct peer_status st;
	char *text;

	three_members(&st);
	text = render(&st);
	static const char head[] =
	        "{\"clustered\":true,\"self\":2,\"ready\":true,\"quorum\":true,\"map_version\":17,"
	        "\"members\":[{\"id\":1,\"addr\":\"127.0.0.1:7848\",\"client_addr\":"
	        "\"127.0.0.1:8850\",\"self\":false,\"health\":\"UP\",\"ready\":true,"
	        "\"slots\":8192,\"last_rx_ms\":12,\"backlog_bytes\":0,\"map_version\":5},";

	cr_assert(strncmp(text, head, strlen(head)) == 0, "%s", text);
	cr_assert(strstr(text, "{\"id\":2,\"addr\":\"127.0.0.1:7849\",\"client_addr\":"
	                       "\"127.0.0.1:8860\",\"self\":true,\"health\":\"SUSPICIOUS\""),
	          "%s", text);
	cr_assert(
	        strstr(text,
	               "\"health\":\"DOWN\",\"ready\":false,\"slots\":0,\"last_rx_ms\":"
	               "null,\"backlog_bytes\":2000,\"map_version\":7}],\"stats\":{\"links_up\":"),
	        "%s", text);
#define CHECK(name)                                                                                \
	do {                                                                                       \
		char want[96];                                                                     \
		snprintf(want, sizeof(want), "\"%s\":%llu", #name,                                 \
		         (unsigned long long)st.stats.name);                                       \
		cr_assert(strstr(text, want), "PEER_STATS %s missing: %s", #name, text);           \
	} while (0);
	PEER_STATS(CHECK)
#undef CHECK
	cr_assert_eq(text[strlen(text) - 1], '}');
	cr_assert_eq(text[strlen(text) - 2], '}');
	free(text);
}

Test(status, strings_are_escaped_and_bounded)
{
	struct peer_status st;
	char *text;

	three_members(&st);
	strcpy(st.m[0].client_addr, "a\"b\\c\n");
	memset(st.m[1].addr, 'x', sizeof(st.m[1].addr)); /* unterminated: read to its size */
	text = render(&st);
	cr_assert(strstr(text, "\"client_addr\":\"a\\\"b\\\\c\\u000a\""), "%s", text);
	cr_assert(strstr(text, "\"addr\":\"xxxxxxxx"), "%s", text);
	free(text);
}

Test(status, members_beyond_the_bound_are_not_read)
{
	static struct peer_status st;
	char *text;
	int n = 0;

	memset(&st, 0, sizeof(st));
	st.clustered = true;
	st.n = 1000; /* a torn snapshot can never make the renderer read past m[] */
	for (int i = 0; i < MEMBERS_MAX; i++) {
		st.m[i].id = (uint16_t)(i + 1);
		memset(st.m[i].addr, '"', sizeof(st.m[i].addr)); /* worst escaping */
		memset(st.m[i].client_addr, 1, sizeof(st.m[i].client_addr));
	}
	text = render(&st);
	for (const char *p = text; (p = strstr(p, "\"id\":")) != NULL; p++)
		n++;
	cr_assert_eq(n, MEMBERS_MAX);
	free(text);
}

Test(status, health_follows_ready)
{
	struct peer_status st;
	const char *body;
	size_t len;

	cr_assert_eq(status_health(NULL, &body, &len), 200);
	cr_assert_eq(len, strlen("{\"status\":\"UP\"}"));
	cr_assert(memcmp(body, "{\"status\":\"UP\"}", len) == 0);
	three_members(&st);
	cr_assert_eq(status_health(&st, &body, &len), 200);
	st.ready = false;
	cr_assert_eq(status_health(&st, &body, &len), 503);
	cr_assert_eq(len, strlen("{\"status\":\"not ready\"}"));
	cr_assert(memcmp(body, "{\"status\":\"not ready\"}", len) == 0);
	st.clustered = false;
	cr_assert_eq(status_health(&st, &body, &len), 200, "standalone is always ready");
}
