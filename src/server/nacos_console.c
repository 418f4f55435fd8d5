/*
 * nacos_console.c - the web console on the Nacos port: three static files
 * (src/console/index.html, console.css, console.js) built into the binary
 * and served at /, /nacos/ (the path Nacos users type) and
 * /nacos/console/{console.css,console.js}; /nacos redirects to /nacos/.
 * docs/console.md describes the page itself.
 *
 * Embedding. The files are bytes of this object: the assembler's .incbin
 * pulls each one in at compile time, between two symbols that give its
 * start and end. No generator, no bundler, no copy in the build tree; the
 * build knows this object depends on the three files (CMake's
 * OBJECT_DEPENDS), so editing one rebuilds it. CONSOLE_DIR, the absolute
 * path of src/console, comes from CMakeLists.txt.
 *
 * Who owns the data: nobody; the bytes are read-only and the ETags are
 * computed from them per request (FNV-1a over ~40 KiB: a few tens of
 * microseconds, on a path a browser visits once per page load, then
 * answered 304). Nothing here touches the store or allocates.
 *
 * What the answers say. Content-Type per file; Cache-Control: no-cache
 * (a browser keeps the file but asks again with If-None-Match every time,
 * so an upgraded node serves its own console at once, and a 304 costs a
 * head); the security headers: a Content-Security-Policy that allows
 * scripts, styles, images and fetch() from this origin only and no inline
 * script or style at all (the page has none: the one script and the one
 * style sheet are files), nosniff, and framing refused (DENY and
 * frame-ancestors 'none') so the console cannot be clickjacked.
 *
 * Authentication. The files hold no data: they are served without
 * credentials even with --auth-users (nacos_auth.c lets these paths
 * through), and the page then asks the gated API, which refuses it until
 * the user has logged in (the page shows its login form on a 403).
 */
#include "server/nacos_internal.h"

#include <stdio.h>
#include <string.h>

#ifndef CONSOLE_DIR
#error "CONSOLE_DIR (the absolute path of src/console) must be defined by the build"
#endif

/* One file: its bytes between two labels, in .rodata. */
#define CONSOLE_INCBIN(sym, file)                                                                  \
	__asm__(".pushsection .rodata\n"                                                           \
	        ".balign 16\n"                                                                     \
	        ".globl " #sym "\n" #sym ":\n"                                                     \
	        ".incbin \"" CONSOLE_DIR "/" file "\"\n"                                           \
	        ".globl " #sym "_end\n" #sym "_end:\n"                                             \
	        ".byte 0\n"                                                                        \
	        ".popsection\n")

CONSOLE_INCBIN(nacos_console_html, "index.html");
CONSOLE_INCBIN(nacos_console_css, "console.css");
CONSOLE_INCBIN(nacos_console_js, "console.js");

extern const char nacos_console_html[], nacos_console_html_end[];
extern const char nacos_console_css[], nacos_console_css_end[];
extern const char nacos_console_js[], nacos_console_js_end[];

#define CONSOLE_SECURITY                                                                           \
	"Content-Security-Policy: default-src 'self'; base-uri 'none'; form-action 'self'; "       \
	"frame-ancestors 'none'\r\n"                                                               \
	"X-Content-Type-Options: nosniff\r\n"                                                      \
	"X-Frame-Options: DENY\r\n"                                                                \
	"Referrer-Policy: no-referrer\r\n"

struct console_file {
	const char *path; /* as requested, query excluded */
	const char *ctype;
	const char *start, *end;
};

static const struct console_file files[] = {
	{ "/", "text/html; charset=utf-8", nacos_console_html, nacos_console_html_end },
	{ "/nacos/", "text/html; charset=utf-8", nacos_console_html, nacos_console_html_end },
	{ "/nacos/console/console.css", "text/css; charset=utf-8", nacos_console_css,
	  nacos_console_css_end },
	{ "/nacos/console/console.js", "text/javascript; charset=utf-8", nacos_console_js,
	  nacos_console_js_end },
};

bool nacos_console_path(struct store_str path)
{
	if (nacos_str_eq(path, "/nacos"))
		return true;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (nacos_str_eq(path, files[i].path))
			return true;
	return false;
}

/* FNV-1a, 64 bits: a validator, not a defence (the bytes are ours). */
static uint64_t etag_of(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

bool nacos_console_etag_match(struct store_str inm, const char *tag)
{
	size_t tl = strlen(tag);
	uint32_t i = 0;

	while (i < inm.len) {
		uint32_t s, e;

		while (i < inm.len && (inm.p[i] == ' ' || inm.p[i] == '\t' || inm.p[i] == ','))
			i++;
		s = i;
		while (i < inm.len && inm.p[i] != ',')
			i++;
		e = i;
		while (e > s && (inm.p[e - 1] == ' ' || inm.p[e - 1] == '\t'))
			e--;
		if (e - s == 1 && inm.p[s] == '*')
			return true;
		if (e - s >= 2 && inm.p[s] == 'W' && inm.p[s + 1] == '/')
			s += 2;
		if (e - s == tl && memcmp(inm.p + s, tag, tl) == 0)
			return true;
	}
	return false;
}

bool nacos_console_serve(struct nctx *x)
{
	const struct console_file *f = NULL;
	struct h1_span inm = x->h->headers[H1_H_IF_NONE_MATCH];
	char hdrs[NACOS_HDRS_MAX], tag[24];
	size_t len;
	int n;

	if (!nacos_console_path(x->path))
		return false;
	if (x->h->method != H1_GET && x->h->method != H1_HEAD) {
		nacos_reply_hdrs(x, 405, "text/plain;charset=UTF-8", "Allow: GET, HEAD\r\n", false,
		                 "405 Method Not Allowed\n", 23);
		return true;
	}
	if (nacos_str_eq(x->path, "/nacos")) {
		static const char body[] = "moved to /nacos/\n";

		nacos_reply_hdrs(x, 301, "text/plain;charset=UTF-8",
		                 "Location: /nacos/\r\n" CONSOLE_SECURITY, false, body,
		                 sizeof(body) - 1);
		return true;
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (nacos_str_eq(x->path, files[i].path))
			f = &files[i];
	len = (size_t)(f->end - f->start);
	snprintf(tag, sizeof(tag), "\"%016llx\"", (unsigned long long)etag_of(f->start, len));
	n = snprintf(hdrs, sizeof(hdrs), "Cache-Control: no-cache\r\nETag: %s\r\n" CONSOLE_SECURITY,
	             tag);
	if (n < 0 || (size_t)n >= sizeof(hdrs)) { /* cannot happen: our constants */
		nacos_reply_text(x, 500, "console headers over their bound");
		return true;
	}
	if (inm.set &&
	    nacos_console_etag_match((struct store_str){ h1_at(x->req, inm), inm.len }, tag)) {
		nacos_reply_hdrs(x, 304, f->ctype, hdrs, true, f->start, len);
		return true;
	}
	nacos_reply_hdrs(x, 200, f->ctype, hdrs, false, f->start, len);
	return true;
}
