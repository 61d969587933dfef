/*
 * Gopher: one request line in, a menu or text out.  Pure.
 *
 * Besides RFC 1436 selectors this answers what real clients send:
 * Gopher+ requests (the UMN client opens with "TAB$" and gives up on a
 * server whose answer does not look like Gopher+), "URL:" links
 * (the h-type convention) and Floodgap's /caps.txt.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "proto.h"
#include "render.h"
#include "version.h"

#define CRLF "\r\n"

enum plus { PLUS_NONE, PLUS_ITEM, PLUS_ATTR, PLUS_DIRATTR };

static void
error_menu(const struct gopher_ctx *g, struct reply *r, const char *what,
    const char *sel, size_t len)
{
	char esc[GOPHER_SELECTOR_MAX * 4 + 1];
	struct buf msg;

	buf_init(&msg);
	buf_adds(&msg, what);
	if (sel != NULL) {
		log_escape(esc, sizeof(esc), sel,
		    len > GOPHER_SELECTOR_MAX ? GOPHER_SELECTOR_MAX : len);
		buf_printf(&msg, ": %s", esc);
	}
	r->status = '3';
	if (buf_failed(&msg))
		render_gopher_error(&r->dyn, g->hostname, g->port, what);
	else
		render_gopher_error(&r->dyn, g->hostname, g->port, msg.p);
	buf_free(&msg);
}

/* Gopher+ errors: "--1", a code (1: not available) and a message. */
static void
plus_error(struct reply *r, const char *what)
{
	r->status = '3';
	buf_printf(&r->dyn, "--1" CRLF "1 serai" CRLF "%s" CRLF "." CRLF, what);
}

static void
html_escape(struct buf *b, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		switch (s[i]) {
		case '&':
			buf_adds(b, "&amp;");
			break;
		case '<':
			buf_adds(b, "&lt;");
			break;
		case '>':
			buf_adds(b, "&gt;");
			break;
		case '"':
			buf_adds(b, "&quot;");
			break;
		case '\'':
			buf_adds(b, "&#39;");
			break;
		default:
			buf_addc(b, s[i]);
		}
	}
}

/*
 * "URL:" selectors: the HTML page that sends a Gopher client's user on
 * to the web.  Only well-known schemes (a "javascript:" URL would run in
 * the page even fully escaped) and only printable ASCII, all escaped:
 * Gophernicus and pygopherd both shipped XSS here in 2024.
 */
static void
url_redirect(
    const struct gopher_ctx *g, struct reply *r, const char *url, size_t len)
{
	static const char *const schemes[] = {"http://", "https://",
	    "gemini://", "gopher://", "ftp://", "ftps://", "mailto:", "irc://",
	    "ircs://", "news:", "nntp://", "telnet://", "ssh://", "finger://",
	    "spartan://", NULL};
	const char *const *s;

	for (s = schemes; *s != NULL; s++)
		if (len > strlen(*s) && strncasecmp(url, *s, strlen(*s)) == 0)
			break;
	if (*s == NULL) {
		error_menu(g, r, "URL: with an unknown scheme", url, len);
		return;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)url[i] <= 0x20 ||
		    (unsigned char)url[i] >= 0x7f) {
			error_menu(
			    g, r, "URL: holds spaces or non-ASCII", NULL, 0);
			return;
		}
	r->status = 'h';
	buf_adds(&r->dyn,
	    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8"
	    "\">\n<meta http-equiv=\"refresh\" content=\"2; url=");
	html_escape(&r->dyn, url, len);
	buf_adds(&r->dyn,
	    "\">\n<title>Leaving Gopherspace</title></head>\n"
	    "<body><p>You are leaving Gopherspace for:</p>\n"
	    "<p><a href=\"");
	html_escape(&r->dyn, url, len);
	buf_adds(&r->dyn, "\">");
	html_escape(&r->dyn, url, len);
	buf_adds(&r->dyn, "</a></p></body></html>\n");
}

/* Floodgap's CAPS: how clients should treat this server's selectors. */
static void
caps(const struct gopher_ctx *g, struct reply *r)
{
	r->status = '0';
	buf_printf(&r->dyn,
	    "CAPS" CRLF CRLF "CapsVersion=1" CRLF
	    "ExpireCapsAfter=3600" CRLF CRLF "PathDelimeter=/" CRLF
	    "PathIdentity=." CRLF "PathParent=.." CRLF
	    "PathParentDouble=FALSE" CRLF "PathEscapeCharacter=\\" CRLF
	    "PathKeepPreDelimeter=FALSE" CRLF CRLF "ServerSoftware=serai" CRLF
	    "ServerSoftwareVersion=" SERAI_VERSION CRLF
	    "ServerDescription=a news archive, also on Gemini" CRLF
	    "ServerDefaultEncoding=UTF-8" CRLF "ServerTextWidth=%u" CRLF
	    "ServerHost=%s" CRLF "ServerPort=%u" CRLF,
	    g->wrap, g->hostname, g->port);
}

static void
mod_date(struct buf *b, const struct snapshot *snap)
{
	struct tm tm;
	char ts[16];

	gmtime_r(&snap->loaded, &tm);
	strftime(ts, sizeof(ts), "%Y%m%d%H%M%S", &tm);
	buf_printf(b, " Mod-Date: <%s>" CRLF, ts);
}

/*
 * One Gopher+ attribute block for a menu line ("Xdisplay\tsel\thost\t
 * port", no CRLF): +INFO, and for real items +ADMIN and +VIEWS.
 */
static void
attr_block(
    struct buf *b, const struct snapshot *snap, const char *line, size_t len)
{
	const char *sel, *end;
	const struct node *n = NULL;

	buf_adds(b, "+INFO: ");
	buf_add(b, line, len);
	buf_adds(b, "\t+" CRLF);
	if (len == 0 || line[0] == 'i')
		return;
	buf_adds(b, "+ADMIN:" CRLF " Admin: serai" CRLF);
	mod_date(b, snap);
	if ((sel = memchr(line, '\t', len)) != NULL) {
		sel++;
		end = memchr(sel, '\t', len - (size_t)(sel - line));
		if (end != NULL)
			n = archive_lookup(snap, sel, (size_t)(end - sel));
	}
	if (n != NULL)
		buf_printf(b, "+VIEWS:" CRLF " %s: <%zuk>" CRLF,
		    n->kind == NODE_SECTION ? "application/gopher+-menu"
		                            : "text/plain",
		    (n->gopher.len + 1023) / 1024);
}

/* Calls fn for each line of a pre-rendered menu, "." excluded. */
static void
menu_lines(const struct blob *menu, struct buf *b, const struct snapshot *snap,
    void (*fn)(struct buf *, const struct snapshot *, const char *, size_t))
{
	const char *p = menu->p, *end = menu->p + menu->len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (!(n == 1 && p[0] == '.'))
			fn(b, snap, p, n);
		p = nl ? nl + 1 : end;
	}
}

static void
plus_item_line(
    struct buf *b, const struct snapshot *snap, const char *line, size_t len)
{
	(void)snap;
	buf_add(b, line, len);
	buf_adds(b, line[0] == 'i' ? CRLF : "\t+" CRLF);
}

static void
gopher_plus(const struct gopher_ctx *g, const struct snapshot *snap,
    const struct node *n, enum plus plus, struct reply *r)
{
	r->status = n->kind == NODE_SECTION ? '1' : '0';
	if (plus == PLUS_ITEM && n->kind == NODE_ARTICLE) {
		/* -2: the text runs to the close, as plain Gopher text does. */
		buf_adds(&r->dyn, "+-2" CRLF);
		buf_add(&r->dyn, n->gopher.p, n->gopher.len);
		return;
	}
	buf_adds(&r->dyn, "+-1" CRLF);
	if (plus == PLUS_ITEM)
		menu_lines(&n->gopher, &r->dyn, snap, plus_item_line);
	else if (plus == PLUS_DIRATTR && n->kind == NODE_SECTION)
		menu_lines(&n->gopher, &r->dyn, snap, attr_block);
	else {
		struct buf line;

		buf_init(&line);
		buf_printf(&line, "%c%s\t%s\t%s\t%u", r->status, n->title,
		    n->path, g->hostname, g->port);
		if (buf_failed(&line))
			r->dyn.oom = true;
		else
			attr_block(&r->dyn, snap, line.p, line.len);
		buf_free(&line);
	}
	buf_adds(&r->dyn, "." CRLF);
}

void
gopher_respond(const struct gopher_ctx *g, const struct snapshot *snap,
    const char *line, size_t len, struct reply *r)
{
	char sel[GOPHER_SELECTOR_MAX + 2], clean[GOPHER_SELECTOR_MAX + 3];
	const char *tab;
	const struct node *n;
	enum plus plus = PLUS_NONE;
	size_t slen, clen;

	/*
	 * A TAB ends the selector; then a search string and/or a Gopher+
	 * marker: "sel TAB +", "sel TAB !", "sel TAB $", "sel TAB q TAB +".
	 */
	if ((tab = memchr(line, '\t', len)) != NULL) {
		const char *last = tab + 1, *end = line + len, *t;

		while ((t = memchr(last, '\t', (size_t)(end - last))) != NULL)
			last = t + 1;
		if (last < end && *last == '+')
			plus = PLUS_ITEM;
		else if (last < end && *last == '!')
			plus = PLUS_ATTR;
		else if (last < end && *last == '$')
			plus = PLUS_DIRATTR;
		len = (size_t)(tab - line);
	}
	if (memchr(line, '\0', len) != NULL) {
		error_menu(g, r, "NUL in selector", NULL, 0);
		return;
	}
	if (len > 4 && strncmp(line, "URL:", 4) == 0) {
		url_redirect(g, r, line + 4, len - 4);
		return;
	}
	if (len > GOPHER_SELECTOR_MAX) {
		error_menu(g, r, "selector longer than 255 bytes", NULL, 0);
		return;
	}
	/* "" and "/" are the home menu; "news/" is taken as "/news/". */
	slen = 0;
	if (len == 0 || line[0] != '/')
		sel[slen++] = '/';
	memcpy(sel + slen, line, len);
	slen += len;
	sel[slen] = '\0';
	if (path_clean(sel, slen, clean, sizeof(clean) - 1, &clen) == -1) {
		if (plus != PLUS_NONE)
			plus_error(r, "bad selector");
		else
			error_menu(g, r, "bad selector", line, len);
		return;
	}
	if (strcmp(clean, "/caps.txt") == 0) {
		caps(g, r);
		return;
	}
	n = archive_lookup(snap, clean, clen);
	if (n == NULL && clean[clen - 1] != '/') {
		clean[clen] = '/';
		clean[clen + 1] = '\0';
		n = archive_lookup(snap, clean, clen + 1);
	}
	if (n == NULL) {
		if (plus != PLUS_NONE)
			plus_error(r, "not found");
		else
			error_menu(g, r, "not found", line, len);
		return;
	}
	if (plus != PLUS_NONE) {
		gopher_plus(g, snap, n, plus, r);
		return;
	}
	r->status = n->kind == NODE_SECTION ? '1' : '0';
	r->body = &n->gopher;
}
