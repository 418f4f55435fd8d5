/*
 * status.c - what GET /cluster and GET /health answer.
 *
 * Who owns the data: the peer thread. The admin thread takes one snapshot
 * per request with peer_status_read (relaxed reads: a member's fields may
 * be a few microseconds apart, which a status page tolerates) and renders
 * it here; nothing in this file touches live state, so both documents are
 * tested on made-up snapshots (tests/unit/http/test_status.c).
 *
 * /health is what a load balancer or an orchestrator probes before sending
 * traffic, so for a member it follows READY: a node that has not finished
 * its startup load owns no slot and may not yet list what its peers hold,
 * and answering 503 keeps probes from routing readers to it. A standalone
 * node is always ready.
 *
 * Bounds: one buffer of STATUS_JSON_MAX, sized for MEMBERS_MAX members at
 * the worst escaping; strings are read only up to their array's size, so a
 * snapshot with an unterminated address still renders within the bound.
 */
#include "http/status.h"

#include "core/err.h"
#include "core/mem.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char health_up[] = "{\"status\":\"UP\"}";
static const char health_not_ready[] = "{\"status\":\"not ready\"}";

const char *status_health_name(enum peer_health h)
{
	switch (h) {
	case PEER_UP:
		return "UP";
	case PEER_SUSPICIOUS:
		return "SUSPICIOUS";
	case PEER_DOWN:
	default:
		return "DOWN";
	}
}

unsigned status_health(const struct peer_status *st, const char **body, size_t *len)
{
	if (st && st->clustered && !st->ready) {
		*body = health_not_ready;
		*len = sizeof(health_not_ready) - 1;
		return 503;
	}
	*body = health_up;
	*len = sizeof(health_up) - 1;
	return 200;
}

/* A fixed buffer; overflow sticks (it cannot happen within STATUS_JSON_MAX). */
struct jw {
	char *p;
	size_t len, cap;
	bool err;
};

static __attribute__((format(printf, 2, 3))) void put(struct jw *w, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (w->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(w->p + w->len, w->cap - w->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= w->cap - w->len) {
		w->err = true;
		return;
	}
	w->len += (size_t)n;
}

/* A JSON string from at most max bytes of s (stops at a NUL). */
static void put_str(struct jw *w, const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	put(w, "\"");
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\')
			put(w, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			put(w, "\\u%04x", ch);
		else
			put(w, "%c", ch);
	}
	put(w, "\"");
}

static const char *jbool(bool b)
{
	return b ? "true" : "false";
}

static void put_member(struct jw *w, const struct peer_member_status *m)
{
	put(w, "{\"id\":%u,\"addr\":", m->id);
	put_str(w, m->addr, sizeof(m->addr));
	put(w, ",\"client_addr\":");
	put_str(w, m->client_addr, sizeof(m->client_addr));
	put(w, ",\"self\":%s,\"health\":\"%s\",\"ready\":%s,\"slots\":%" PRIu32 ",\"last_rx_ms\":",
	    jbool(m->self), status_health_name(m->health), jbool(m->ready), m->slots);
	if (m->last_rx_ms < 0)
		put(w, "null");
	else
		put(w, "%" PRId64, m->last_rx_ms);
	put(w, ",\"backlog_bytes\":%" PRIu64 ",\"map_version\":%" PRIu64 "}", m->backlog_bytes,
	    m->peer_map_version);
}

int status_cluster_json(const struct peer_status *st, char **out, size_t *len)
{
	struct jw w = { .cap = STATUS_JSON_MAX };
	uint32_t n;
	bool first = true;

	w.p = mem_alloc(w.cap);
	if (w.p == NULL)
		return -ERR_NOMEM;
	if (st == NULL || !st->clustered) {
		put(&w, "{\"clustered\":false}");
		goto done;
	}
	n = st->n < MEMBERS_MAX ? st->n : MEMBERS_MAX;
	put(&w,
	    "{\"clustered\":true,\"self\":%u,\"ready\":%s,\"quorum\":%s,\"map_version\":%" PRIu64
	    ",\"members\":[",
	    st->self_id, jbool(st->ready), jbool(st->quorum), st->map_version);
	for (uint32_t i = 0; i < n; i++) {
		if (i)
			put(&w, ",");
		put_member(&w, &st->m[i]);
	}
	put(&w, "],\"stats\":{");
#define STAT_JSON(name)                                                                            \
	put(&w, "%s\"" #name "\":%" PRIu64, first ? "" : ",", st->stats.name);                     \
	first = false;
	PEER_STATS(STAT_JSON)
#undef STAT_JSON
	put(&w, "}}");
done:
	if (w.err) {
		mem_free(w.p);
		return -ERR_NOMEM;
	}
	*out = w.p;
	*len = w.len;
	return 0;
}
