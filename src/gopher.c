/*
 * Gopher: one request line in, a menu or text out.  Pure.
 *
 * Besides RFC 1436 selectors this answers what real clients send:
 * Gopher+ requests (the UMN client opens with "TAB$" and gives up on a
 * server whose answer does not look like Gopher+), "URL:" links
 * (the h-type convention) and Floodgap's /caps.txt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "article.h"
#include "log.h"
#include "proto.h"
#include "render.h"
#include "search.h"
#include "text.h"
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
	render_escape(&r->dyn, url, len);
	buf_adds(&r->dyn,
	    "\">\n<title>Leaving Gopherspace</title></head>\n"
	    "<body><p>You are leaving Gopherspace for:</p>\n"
	    "<p><a href=\"");
	render_escape(&r->dyn, url, len);
	buf_adds(&r->dyn, "\">");
	render_escape(&r->dyn, url, len);
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

/* Formatted once per snapshot and thread: a "$" menu has one per item. */
static void
mod_date(struct buf *b, const struct snapshot *snap)
{
	static _Thread_local time_t done = (time_t)-1;
	static _Thread_local char line[48];
	struct tm tm;
	char ts[16];

	if (snap->loaded != done) {
		gmtime_r(&snap->loaded, &tm);
		strftime(ts, sizeof(ts), "%Y%m%d%H%M%S", &tm);
		snprintf(line, sizeof(line), " Mod-Date: <%s>" CRLF, ts);
		done = snap->loaded;
	}
	buf_adds(b, line);
}

/* An article's text is rendered when asked for (see archive.h). */
static void
article_text(struct buf *b, const struct snapshot *snap, const struct node *n)
{
	struct route rt;

	/* The way to n, for its breadcrumb: n was found by this path. */
	if (archive_route(snap, n->path, strlen(n->path), &rt) == n)
		render_gopher_article(b, &snap->opts, &rt, n->art);
}

/*
 * What a Gopher+ +VIEWS line states: the size of the page, in bytes.  An
 * article's is its source's, which the text differs from by its wrapping
 * only: rendering every article of a section for a "$" menu cost 30
 * times the plain menu (90 ms for 20,000 articles), per request.
 */
static size_t
page_size(const struct node *n)
{
	return n->kind == NODE_SECTION ? n->sec->gopher.len : n->art->len;
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
		    (page_size(n) + 1023) / 1024);
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
		article_text(&r->dyn, snap, n);
		return;
	}
	buf_adds(&r->dyn, "+-1" CRLF);
	if (plus == PLUS_ITEM)
		menu_lines(&n->sec->gopher, &r->dyn, snap, plus_item_line);
	else if (plus == PLUS_DIRATTR && n->kind == NODE_SECTION)
		menu_lines(&n->sec->gopher, &r->dyn, snap, attr_block);
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

/* A section's feed: type-0 text holding the Gemini side's XML. */
static void
gopher_feed(const struct gopher_ctx *g, const struct snapshot *snap,
    const struct node *n, enum plus plus, struct reply *r)
{
	struct buf line;

	r->status = '0';
	if (plus == PLUS_NONE) {
		r->body = &n->sec->feed;
		return;
	}
	if (plus == PLUS_ITEM) {
		buf_adds(&r->dyn, "+-2" CRLF);
		buf_add(&r->dyn, n->sec->feed.p, n->sec->feed.len);
		return;
	}
	buf_init(&line);
	buf_printf(&line, "0Atom feed (gemini links)\t%s%s\t%s\t%u", n->path,
	    FEED_NAME, g->hostname, g->port);
	buf_adds(&r->dyn, "+-1" CRLF);
	if (buf_failed(&line))
		r->dyn.oom = true;
	else
		attr_block(&r->dyn, snap, line.p, line.len);
	buf_adds(&r->dyn, "." CRLF);
	buf_free(&line);
}

/* An info line's text, user-supplied: no TAB, CR or LF can split it. */
static void
info_text(struct buf *b, const char *s, size_t len)
{
	buf_addc(b, 'i');
	for (size_t i = 0; i < len; i++)
		buf_addc(b, (unsigned char)s[i] < ' ' ? ' ' : s[i]);
	buf_adds(b, GOPHER_INFO_FIELDS CRLF);
}

/* One info line, cut to the menu width. */
static void
search_info(struct buf *b, const char *s, size_t width)
{
	struct buf t;

	buf_init(&t);
	text_truncate(&t, s, strlen(s), width, TEXT_DOTS, NULL);
	if (buf_failed(&t))
		b->oom = true;
	else
		info_text(b, t.p, t.len);
	buf_free(&t);
}

/*
 * Info lines wrapped to the menu width: a snippet is wider than one
 * line, and cut to one it would hide the matched word it is there for.
 */
static void
search_info_wrapped(
    struct buf *b, const char *s, size_t width, const char *lang)
{
	struct buf t;
	const char *p, *nl;

	buf_init(&t);
	text_wrap(&t, s, strlen(s), width, "\n", lang);
	if (buf_failed(&t)) {
		b->oom = true;
		buf_free(&t);
		return;
	}
	for (p = t.p; p != NULL && *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		info_text(b, p, (size_t)(nl - p));
	}
	buf_free(&t);
}

/*
 * The query in a selector ("/search/2?QUERY"), percent-encoded but for
 * unreserved bytes and '*': a selector must hold no TAB, CR or LF, and
 * clients that make gopher:// URLs of it want no spaces either.
 */
static void
query_selector(struct buf *b, size_t page, const char *q, size_t qlen)
{
	static const char hex[] = "0123456789ABCDEF";

	buf_adds(b, "/search");
	if (page > 1)
		buf_printf(b, "/%zu", page);
	buf_addc(b, '?');
	for (size_t i = 0; i < qlen; i++) {
		unsigned char c = (unsigned char)q[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~*", c) != NULL) {
			buf_addc(b, (char)c);
			continue;
		}
		buf_addc(b, '%');
		buf_addc(b, hex[c >> 4]);
		buf_addc(b, hex[c & 15]);
	}
}

/* A "Previous page"/"Next page" item: a menu, as Gemini's pages are. */
static void
page_item(const struct gopher_ctx *g, struct buf *b, const char *what,
    size_t page, const char *q, size_t qlen)
{
	buf_printf(b, "1%s\t", what);
	query_selector(b, page, q, qlen);
	buf_printf(b, "\t%s\t%u" CRLF, g->hostname, g->port);
}

/* The way on from any results page: a new search, and home. */
static void
search_footer(const struct gopher_ctx *g, struct buf *b)
{
	buf_printf(b,
	    "i" GOPHER_INFO_FIELDS CRLF "7New search\t/search\t%s\t%u" CRLF
	    "1Home\t/\t%s\t%u" CRLF "." CRLF,
	    g->hostname, g->port, g->hostname, g->port);
}

/*
 * "/search TAB QUERY" (type 7, RFC 1436), "/search/N TAB QUERY" for page
 * N, or the same with "?QUERY": a menu of hits, a page at a time, as on
 * Gemini.
 */
static void
search(const struct gopher_ctx *g, const struct snapshot *snap, const char *q,
    size_t qlen, size_t page, struct reply *r)
{
	struct search_result res;
	struct search_terms terms;
	struct search *se;
	struct buf d;
	const char *msg = NULL;
	size_t pages, width = snap->opts.menu_width;

	if (r->defer) {
		r->deferred = true;
		return;
	}

	if (qlen == 0) {
		error_menu(
		    g, r, "search needs a query (a type-7 item)", NULL, 0);
		return;
	}
	if (qlen > SEARCH_QUERY_MAX || !utf8_valid(q, qlen)) {
		error_menu(
		    g, r, "query not UTF-8 or longer than 256 bytes", NULL, 0);
		return;
	}
	if ((se = archive_search(snap)) == NULL) {
		error_menu(g, r,
		    atomic_load(&snap->indexing)
		        ? "the search index is being built: try again soon"
		        : "search is not available now",
		    NULL, 0);
		return;
	}
	r->status = '1';
	buf_init(&d);
	buf_adds(&d, "Search: ");
	buf_add(&d, q, qlen);
	buf_addc(&d, '\0');
	search_info(&r->dyn, buf_failed(&d) ? "Search" : d.p, width);
	switch (search_query(se, q, qlen, page, &res)) {
	case SEARCH_OK:
		break;
	case SEARCH_EMPTY:
		msg = "Nothing to search for: use words, \"phrases\", prefix*";
		break;
	case SEARCH_TOO_BROAD:
		msg = "The query is too broad: add words";
		break;
	case SEARCH_TOO_LONG:
	case SEARCH_FAILED:
		msg = "The search failed; try other words";
		break;
	}
	if (msg != NULL) {
		search_info(&r->dyn, msg, width);
		search_footer(g, &r->dyn);
		buf_free(&d);
		return;
	}
	pages = (res.total + SEARCH_PAGE_SIZE - 1) / SEARCH_PAGE_SIZE;
	d.len = 0;
	if (res.total == 0)
		buf_adds(&d, "No article matches");
	else if (res.nids == 0)
		buf_printf(&d, "%s%zu hits; no page %zu",
		    res.newest ? "Over " : "", res.total, page);
	else if (res.newest)
		buf_printf(&d, "Over %zu hits, newest first, page %zu of %zu",
		    res.total, page, pages);
	else
		buf_printf(&d, "%zu hit%s, page %zu of %zu", res.total,
		    res.total == 1 ? "" : "s", page, pages);
	buf_addc(&d, '\0');
	search_info(&r->dyn, buf_failed(&d) ? "" : d.p, width);
	search_terms_init(&terms, q, qlen);
	for (size_t i = 0; i < res.nids; i++) {
		struct route rt;
		const struct node *n = archive_route(
		    snap, res.paths[i], strlen(res.paths[i]), &rt);
		const char *lang;

		/* Gone since it was indexed, or a section there now. */
		if (n == NULL || n->kind != NODE_ARTICLE)
			continue;
		lang = route_lang(&rt);
		d.len = 0;
		if (n->date)
			buf_printf(&d, "%.10s ", n->date);
		buf_adds(&d, n->title);
		buf_addc(&d, '\0');
		if (buf_failed(&d))
			break;
		buf_adds(&r->dyn, "i" GOPHER_INFO_FIELDS CRLF "0");
		text_truncate(
		    &r->dyn, d.p, strlen(d.p), width, TEXT_DOTS, lang);
		buf_printf(&r->dyn, "\t%s\t%s\t%u" CRLF, n->path, g->hostname,
		    g->port);
		d.len = 0;
		search_snippet(&d, &terms, n->art->paras, n->art->npara);
		buf_addc(&d, '\0');
		if (buf_failed(&d))
			break;
		search_info_wrapped(&r->dyn, d.p, width, lang);
	}
	search_terms_free(&terms);
	if (buf_failed(&d))
		r->dyn.oom = true;
	buf_free(&d);
	if (res.nids > 0 && (page > 1 || page < pages))
		buf_adds(&r->dyn, "i" GOPHER_INFO_FIELDS CRLF);
	if (page > 1 && page <= pages + 1)
		page_item(g, &r->dyn, "Previous page", page - 1, q, qlen);
	if (res.nids > 0 && page < pages && page < SEARCH_PAGE_MAX)
		page_item(g, &r->dyn, "Next page", page + 1, q, qlen);
	search_footer(g, &r->dyn);
}

/*
 * Whether line (the selector, before any TAB) asks for search results:
 * "/search", "/search/N", either with "?QUERY" (curl sends gopher://
 * host/7/search?q so, and the page items carry the query so); no
 * archive name holds a '?'.  Sets the page and, for "?", the raw query.
 */
static bool
search_selector(
    const char *line, size_t len, size_t *page, const char **qs, size_t *qslen)
{
	const char *p = line + 7, *end = line + len;

	if (len < 7 || memcmp(line, "/search", 7) != 0)
		return false;
	*page = 1;
	*qs = NULL;
	if (p < end && *p == '/') {
		size_t n = 0;

		/* "1" to the last page served: no leading zero, no sign. */
		if (++p == end || *p < '1' || *p > '9')
			return false;
		for (; p < end && *p >= '0' && *p <= '9'; p++) {
			n = n * 10 + (size_t)(*p - '0');
			if (n > SEARCH_PAGE_MAX + 1)
				return false;
		}
		*page = n;
	}
	if (p < end && *p == '?') {
		*qs = p + 1;
		*qslen = (size_t)(end - p - 1);
		return true;
	}
	return p == end;
}

void
gopher_respond(const struct gopher_ctx *g, const struct snapshot *snap,
    const char *line, size_t len, struct reply *r)
{
	char sel[GOPHER_SELECTOR_MAX + 2], clean[GOPHER_SELECTOR_MAX + 3];
	const char *tab, *q = NULL, *qs;
	const struct node *n;
	enum plus plus = PLUS_NONE;
	size_t slen, clen, qlen = 0, qfull = 0, page, qslen = 0;

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
		/* The search string: up to a Gopher+ marker, if any. */
		q = tab + 1;
		qlen = (t = memchr(q, '\t', (size_t)(end - q))) != NULL
		    ? (size_t)(t - q)
		    : (size_t)(end - q);
		qfull = qlen;
		if (t == NULL && plus != PLUS_NONE && qlen == 1)
			qlen = 0;
		len = (size_t)(tab - line);
	}
	if (memchr(line, '\0', len) != NULL) {
		error_menu(g, r, "NUL in selector", NULL, 0);
		return;
	}
	if (search_selector(line, len, &page, &qs, &qslen)) {
		char dq[GOPHER_LINE_MAX + 1];
		size_t dlen;

		if (qs == NULL)
			search(g, snap, q, qfull, page, r);
		else if (url_pct_decode(qs, qslen, dq, sizeof(dq), &dlen) == -1)
			search(g, snap, qs, qslen, page, r);
		else
			search(g, snap, dq, dlen, page, r);
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
	/*
	 * "search", "//search", "/a/../search": the plain search too.  A
	 * search item (type 7) always has its words in the field after the
	 * TAB; a Gopher+ client puts its marker in a third field ("sel TAB
	 * words TAB +"), so "/search TAB +" is a search for "+".
	 */
	if (strcmp(clean, "/search") == 0) {
		search(g, snap, q, qfull, 1, r);
		return;
	}
	if ((n = archive_lookup_feed(snap, clean, clen)) != NULL) {
		gopher_feed(g, snap, n, plus, r);
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
	if (n->kind == NODE_SECTION) {
		r->status = '1';
		r->body = &n->sec->gopher;
	} else {
		r->status = '0';
		article_text(&r->dyn, snap, n);
	}
}
