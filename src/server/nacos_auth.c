/*
 * nacos_auth.c - authentication of the Nacos API (--auth-users), on the
 * worker that read the request: who may call what, the login endpoint,
 * and the 403 answers. The users, passwords and tokens themselves are
 * nacos/auth.h's; docs/nacos.md, "Authentication", is the contract.
 *
 * Which calls: with auth on, every request needs credentials except the
 * login endpoints (which check their own) and the two probes Nacos leaves
 * open too, GET /v1/ns/health/server and /v1/ns/operator/metrics (alias
 * /v1/ns/ops/metrics), and the admin port's GET /health and /metrics
 * served here too: load balancers and monitoring ask them without a
 * user; and the web console's static files (/, /nacos/, /nacos/console/),
 * which hold no data: the page needs them to show its login form. Everything else, unknown paths
 * included, is refused before it is routed, so nothing about the API leaks to a caller without
 * credentials.
 *
 * Credentials, in Nacos's order (NacosAuthManager.resolveToken): an
 * `Authorization: Bearer T` header, else an `accessToken` parameter, else
 * `username` + `password` parameters (query or form: the npm client sends
 * them on every call and never logs in). The first one present decides: a
 * bad token is refused even if a right password follows. A login takes
 * username + password first (that is what it is for), else a token (a
 * client renewing it).
 *
 * Answers: every refusal is a 403 with one JSON shape, Spring's error body
 * as Nacos's filter sends it: {"status":403,"error":"Forbidden",
 * "message":M,"path":P}, M in Nacos's words: "user not found!" (no
 * credentials), "token expired!", "token invalid!" (any other token
 * failure), "unknown user!" (wrong password and unknown user alike, so the
 * answer does not tell which names exist). The log says the precise
 * reason at debug level.
 *
 * Cost on the worker: a token is checked in place (~0.5 us); a password
 * through the users table's cache (one SHA-256). A password the cache does
 * not know needs a bcrypt, which never runs here: the request is parked
 * (NACOS_AUTH_PARKED; nacos.c keeps its bytes and reads nothing more from
 * the connection) and the check goes to the auth thread (authq.h); when
 * the answer is back nacos.c handles the same request again and the gate
 * takes the answer the auth thread left on the connection. With all of
 * this worker's job slots out the request is answered 503 at once.
 */
#include "server/nacos_internal.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "nacos/auth.h"
#include "nacos/json.h"
#include "server/authq.h"

#include <stdio.h>
#include <string.h>

enum route_class { RC_GATED, RC_OPEN, RC_LOGIN };

/* The path as nacos_api_dispatch matches it: after "/nacos", without a trailing '/'. */
static enum route_class classify(const struct nctx *x)
{
	struct store_str p = x->path;
	bool get = x->h->method == H1_GET || x->h->method == H1_HEAD;

	/*
	 * The admin probes this port serves too (nacos_api.c's admin_paths):
	 * the admin port answers them without credentials, so refusing them
	 * here would protect nothing and fail a load balancer's /health.
	 * /cluster names the members: gated, like /operator/servers.
	 */
	if (get && (nacos_str_eq(p, "/health") || nacos_str_eq(p, "/metrics")))
		return RC_OPEN;
	/* The console's files hold no data; the page logs in to ask the API (nacos_console.c). */
	if (nacos_console_path(p))
		return RC_OPEN;
	if (!(p.len >= 6 && memcmp(p.p, "/nacos", 6) == 0 && (p.len == 6 || p.p[6] == '/')))
		return RC_GATED;
	p.p += 6;
	p.len -= 6;
	if (p.len > 1 && p.p[p.len - 1] == '/')
		p.len--;
	if (nacos_str_eq(p, "/v1/auth/users/login") || nacos_str_eq(p, "/v1/auth/login"))
		return RC_LOGIN;
	if (get &&
	    (nacos_str_eq(p, "/v1/ns/health/server") ||
	     nacos_str_eq(p, "/v1/ns/operator/metrics") || nacos_str_eq(p, "/v1/ns/ops/metrics")))
		return RC_OPEN;
	return RC_GATED;
}

static void refuse(struct nctx *x, const char *message, int why)
{
	struct buf *b = nacos_body(x);
	bool ok = nacos_put(b, "{\"status\":403,\"error\":\"Forbidden\",\"message\":") &&
	          nacos_put(b, "\"") && nacos_put(b, message) && nacos_put(b, "\",\"path\":") &&
	          nacos_put_str(b, x->path) && nacos_put(b, "}");

	WSTAT_INC(x->w, auth_refused);
	log_debug("Nacos %.*s: 403 %s (%s)", (int)(x->path.len > 200 ? 200 : x->path.len),
	          x->path.p, message, why ? err_str(why) : "no credentials");
	if (ok)
		nacos_reply(x, 403, NACOS_JSON_CT, (const char *)b->p + b->off, buf_used(b));
	else
		nacos_reply_text(x, 403, message);
}

static int token_check(struct nctx *x, const char *tok, size_t len)
{
	int rc = nauth_verify(x->w->srv->auth, tok, len, clock_wall_ms(NULL), &x->who);

	if (rc == 0) {
		WSTAT_INC(x->w, auth_ok);
		return NACOS_AUTH_PASS;
	}
	refuse(x, rc == -ERR_AUTH_TOKEN_EXPIRED ? "token expired!" : "token invalid!", rc);
	return NACOS_AUTH_ANSWERED;
}

/* username + password: from the cache here, or parked for the auth thread. */
static int password_check(struct nctx *x, struct store_str user, struct store_str pass)
{
	struct worker *w = x->w;
	struct conn *c = conn_at(w, x->idx);
	struct nconn *n = c->http;
	struct authq_job *j;
	int rc;

	if (n->auth_ready) { /* this request's bcrypt is done: its answer */
		n->auth_ready = false;
		rc = n->auth_rc;
		x->who = n->auth_who;
	} else {
		rc = nauth_check_cached(w->srv->auth, user.p, user.len, pass.p, pass.len, &x->who);
	}
	if (rc == 0) {
		WSTAT_INC(w, auth_ok);
		return NACOS_AUTH_PASS;
	}
	if (rc != NAUTH_NEEDS_CRYPT) {
		refuse(x, "unknown user!", rc);
		return NACOS_AUTH_ANSWERED;
	}
	j = authq_job_get(w->srv->authq, w->id);
	if (j == NULL) {
		WSTAT_INC(w, auth_busy);
		nacos_reply_text(x, 503, "too many password checks in progress, retry");
		return NACOS_AUTH_ANSWERED;
	}
	/* The cached check refused longer names and passwords: they fit. */
	j->kind = AUTHQ_HTTP;
	j->conn = x->idx;
	j->conn_gen = c->gen;
	j->user_len = user.len;
	memcpy(j->user, user.p, user.len);
	j->pass_len = pass.len;
	memcpy(j->pass, pass.p, pass.len);
	c->pending++; /* holds the slot, stops the parser (nacos.c) */
	authq_submit(w->srv->authq, w->id, j);
	return NACOS_AUTH_PARKED;
}

int nacos_auth_gate(struct nctx *x)
{
	struct h1_span az = x->h->headers[H1_H_AUTHORIZATION];
	struct store_str tok, user, pass;
	enum route_class rc = classify(x);
	bool have_pw;

	if (rc == RC_OPEN)
		return NACOS_AUTH_PASS;
	have_pw = nacos_param(x, "username", &user) && nacos_param(x, "password", &pass);
	if (rc == RC_LOGIN && have_pw)
		return password_check(x, user, pass);
	if (az.set && az.len >= 7 && memcmp(h1_at(x->req, az), "Bearer ", 7) == 0)
		return token_check(x, h1_at(x->req, az) + 7, az.len - 7);
	if (nacos_param(x, "accessToken", &tok))
		return token_check(x, tok.p, tok.len);
	if (have_pw)
		return password_check(x, user, pass);
	refuse(x, "user not found!", 0);
	return NACOS_AUTH_ANSWERED;
}

/* POST /v1/auth/users/login and /v1/auth/login: the gate has checked the credentials. */
void nacos_auth_login(struct nctx *x)
{
	struct nauth *a = x->w->srv->auth;
	char tok[NAUTH_TOKEN_LEN_MAX + 1];
	struct buf *b;
	int len;
	bool ok;

	if (a == NULL) {
		nacos_reply_text(
		        x, 501,
		        "authentication is off on this node (start distrod with --auth-users)");
		return;
	}
	len = nauth_issue(a, x->who.name, x->who.name_len, clock_wall_ms(NULL), tok, sizeof(tok));
	if (len < 0) { /* only a bug: the gate proved this user a moment ago */
		refuse(x, "unknown user!", len);
		return;
	}
	b = nacos_body(x);
	ok = nacos_put(b, "{\"accessToken\":") &&
	     json_put_str(b, tok, (size_t)len, NACOS_BODY_MAX) && nacos_put(b, ",\"tokenTtl\":") &&
	     json_put_u64(b, (uint64_t)(nauth_ttl_ms(a) / 1000), NACOS_BODY_MAX) &&
	     nacos_put(b, ",\"globalAdmin\":") && json_put_bool(b, x->who.admin, NACOS_BODY_MAX) &&
	     nacos_put(b, ",\"username\":") &&
	     json_put_str(b, x->who.name, x->who.name_len, NACOS_BODY_MAX) && nacos_put(b, "}");
	WSTAT_INC(x->w, auth_logins);
	nacos_reply_json_or_500(x, b, ok);
}
